// Reduced schedules (lutdose/stp.h): the single-time-point estimators of methods.md §4 against
// its tables and exact cases, the population kinetics file, and the fit of one to three points
// with population priors (maximum a posteriori, methods.md §2.2).
#include <doctest/doctest.h>
#include <stdlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "lutdose/error.h"
#include "lutdose/kinetics/fitting.h"
#include "lutdose/kinetics/stp.h"

using namespace lutdose;
using Eigen::MatrixXd;
using Eigen::VectorXd;

namespace {
const double LN2 = std::log(2.0);
const double LP = LN2 / (6.647 * 24.0);  // Lu-177, ICRP-107 half-life 6.647 d (methods.md §0)
const std::string DATA = LUTDOSE_TEST_DATA_DIR;

const models::ExponentialFunction& fn(const std::string& id) {
  const auto* f = models::find_exponential(id);
  REQUIRE(f != nullptr);
  return *f;
}

VectorXd vec(std::initializer_list<double> v) {
  VectorXd x(static_cast<Eigen::Index>(v.size()));
  Eigen::Index i = 0;
  for (double d : v) x(i++) = d;
  return x;
}

// Mono-exponential TAC A0 e^{-lambda t} and its TIA A0/lambda.
double mono(double a0, double lambda_eff, double t) { return a0 * std::exp(-lambda_eff * t); }

// Kidney prior of data/kinetics/population_kinetics.csv, from its derivation (T_eff 56 +- 13 h).
const double KIDNEY_LAMBDA_EFF = LN2 / 56.0;
const double KIDNEY_LAMBDA_BIO = KIDNEY_LAMBDA_EFF - LP;
const double KIDNEY_SD = LN2 * 13.0 / (56.0 * 56.0);
std::vector<ParameterPrior> kidney_prior() { return {{"lambda1_bio_per_h", KIDNEY_LAMBDA_BIO, KIDNEY_SD, "test"}}; }

// A temporary data directory with one kinetics/population_kinetics.csv, removed on destruction.
struct TempDataDir {
  std::string path;
  explicit TempDataDir(const std::string& csv) {
    char name[] = "/tmp/lutdose_stp_XXXXXX";
    REQUIRE(mkdtemp(name) != nullptr);
    path = name;
    std::filesystem::create_directories(path + "/kinetics");
    std::ofstream(path + "/kinetics/population_kinetics.csv") << csv;
  }
  ~TempDataDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};
}  // namespace

// ---------------------------------------------------------------------------------------------
// Hänscheid (methods.md §4.1)

TEST_CASE("Hänscheid ratio: methods.md §4.1 table reproduced at the table's precision") {
  // The table gives R to 3 decimals (and 1.0615 to 4): a rounded entry is within half a unit of
  // its last digit of the exact value, so that is the tolerance (5e-4, resp. 5e-5).
  const struct { double r, R, half_unit; } table[] = {
      {0.25, 0.420, 5e-4}, {0.5, 0.707, 5e-4},   {0.75, 0.892, 5e-4}, {1.0, 1.000, 5e-4},
      {1.443, 1.0615, 5e-5}, {1.5, 1.061, 5e-4}, {2.0, 1.000, 5e-4},  {2.5, 0.884, 5e-4},
      {3.0, 0.750, 5e-4},  {4.0, 0.500, 5e-4}};
  for (const auto& row : table) {
    CAPTURE(row.r);
    CHECK(std::abs(hanscheid_ratio(row.r) - row.R) <= row.half_unit);
  }
  // the exact points: R(1) = R(2) = 1, R(3) = 3/4, R(4) = 1/2 (rounding error only)
  CHECK(hanscheid_ratio(1.0) == doctest::Approx(1.0).epsilon(1e-15));
  CHECK(hanscheid_ratio(2.0) == doctest::Approx(1.0).epsilon(1e-15));
  CHECK(hanscheid_ratio(3.0) == doctest::Approx(0.75).epsilon(1e-15));
  CHECK(hanscheid_ratio(4.0) == doctest::Approx(0.5).epsilon(1e-15));
}

TEST_CASE("Hänscheid ratio: maximum +6.15 % at r = 1/ln2, and R >= 0.90 for about 0.765 <= r <= 2.44") {
  const double r_max = 1.0 / LN2;
  const double peak = hanscheid_ratio(r_max);
  CHECK(peak == doctest::Approx(2.0 / (std::exp(1.0) * LN2)).epsilon(1e-14));  // closed form
  CHECK(std::abs(100.0 * (peak - 1.0) - 6.15) <= 0.005);  // "+6.15 %": 3 digits given
  // a maximum: neighbours lower, central-difference slope zero. With h = 1e-4 the difference
  // quotient's truncation error is h^2 R'''/6 = 1.18e-9 (R''' = 4 ln^2(2)/e at r_max), rounding
  // ~1e-12: tolerance 2e-9.
  const double h = 1e-4;
  CHECK(hanscheid_ratio(r_max - h) < peak);
  CHECK(hanscheid_ratio(r_max + h) < peak);
  CHECK(std::abs((hanscheid_ratio(r_max + h) - hanscheid_ratio(r_max - h)) / (2 * h)) < 2e-9);
  // the +-10 % window: the text's bounds 0.765 and 2.44 are given to 3 digits, so the roots of
  // R = 0.9 are bracketed at that resolution
  CHECK(hanscheid_ratio(0.760) < 0.9);
  CHECK(hanscheid_ratio(0.770) > 0.9);
  CHECK(hanscheid_ratio(2.430) > 0.9);
  CHECK(hanscheid_ratio(2.450) < 0.9);
}

TEST_CASE("Hänscheid: methods.md §4.1 kidney examples (T_eff 56 h) from mono-exponential data") {
  // estimate/true of tia_hanscheid applied to the activity of a 56 h mono-exponential TAC; the
  // examples are given to 3 decimals: tolerance half a unit of the last digit (5e-4)
  const double a0 = 150.0, truth = a0 / KIDNEY_LAMBDA_EFF;
  const struct { double t, R; } examples[] = {{24, 0.637}, {48, 0.946}, {72, 1.055},
                                              {96, 1.045}, {120, 0.970}, {168, 0.750}};
  for (const auto& e : examples) {
    CAPTURE(e.t);
    const double ratio = tia_hanscheid(e.t, mono(a0, KIDNEY_LAMBDA_EFF, e.t)) / truth;
    CHECK(std::abs(ratio - e.R) <= 5e-4);
    CHECK(ratio == doctest::Approx(hanscheid_ratio(e.t / 56.0)).epsilon(1e-13));  // same formula
  }
}

TEST_CASE("Hänscheid is exact for a mono-exponential TAC imaged at r = 1 and r = 2") {
  // exact mathematics: the only error is floating-point rounding (1e-13 relative)
  for (double t_eff : {40.0, 56.0, 90.0}) {
    CAPTURE(t_eff);
    const double lambda = LN2 / t_eff, a0 = 200.0;
    for (double r : {1.0, 2.0})
      CHECK(tia_hanscheid(r * t_eff, mono(a0, lambda, r * t_eff)) == doctest::Approx(a0 / lambda).epsilon(1e-13));
  }
  CHECK(tia_hanscheid(96.0, 0.0) == 0.0);
}

// ---------------------------------------------------------------------------------------------
// Madsen (methods.md §4.2)

TEST_CASE("Madsen: d ln TIA / d lambda_pop vanishes at t = 1/lambda_pop (kidneys: 1.443 x 56 h = 81 h)") {
  const double lam = KIDNEY_LAMBDA_EFF, a = 80.0;
  const double t_opt = madsen_optimal_time_h(lam);
  CHECK(t_opt == doctest::Approx(56.0 / LN2).epsilon(1e-14));
  CHECK(std::round(t_opt) == 81.0);  // methods.md: "about 81 h for kidneys with 56 h"
  CHECK(t_opt / 56.0 == doctest::Approx(1.443).epsilon(5e-4));  // "1.443 T_eff": 4 digits given
  // Central differences in lambda with h = 1e-4 lambda: truncation h^2/(3 lambda^3) ~ 3e-9 t,
  // rounding ~ 1e-16 |ln TIA| / h ~ 1e-9 h; both far below the 1e-6 t tolerance.
  auto dlog = [&](double t) {
    const double h = 1e-4 * lam;
    return (std::log(tia_madsen(t, a, lam + h)) - std::log(tia_madsen(t, a, lam - h))) / (2 * h);
  };
  CHECK(std::abs(dlog(t_opt)) < 1e-6 * t_opt);
  for (double t : {24.0, 48.0, 168.0}) {  // elsewhere it equals t - 1/lambda (methods.md §4.2)
    CAPTURE(t);
    CHECK(dlog(t) == doctest::Approx(t - 1.0 / lam).epsilon(1e-6));
  }
}

TEST_CASE("Madsen is exact when the TAC is mono-exponential with the population rate, and its ratio formula") {
  const double a0 = 120.0;
  for (double lam : {KIDNEY_LAMBDA_EFF, LN2 / 90.0}) {
    for (double t : {4.0, 24.0, 96.0, 168.0}) {
      CAPTURE(lam);
      CAPTURE(t);
      // exact mathematics: rounding only (1e-13 relative)
      CHECK(tia_madsen(t, mono(a0, lam, t), lam) == doctest::Approx(a0 / lam).epsilon(1e-13));
      // true rate differs from the population's: estimate/true = (l/l_pop) e^{(l_pop - l) t}
      const double lam_true = 1.3 * lam;
      const double ratio = tia_madsen(t, mono(a0, lam_true, t), lam) / (a0 / lam_true);
      CHECK(ratio == doctest::Approx(madsen_ratio(t, lam_true, lam)).epsilon(1e-13));
    }
  }
  CHECK(madsen_ratio(50.0, 0.01, 0.01) == doctest::Approx(1.0).epsilon(1e-15));
}

// ---------------------------------------------------------------------------------------------
// Population curve (methods.md §4.3)

TEST_CASE("population-curve estimator is exact for data generated by the population curve, at any t") {
  const struct { const char* id; VectorXd p; } curves[] = {
      {"E1", vec({150.0, KIDNEY_LAMBDA_BIO})},
      {"E2", vec({130.0, 25.0, 0.0081, 0.22})},   // kidney-like: fast 16 % with t1/2 ~ 3 h
      {"E2u", vec({200.0, 0.0055, 0.35})},        // spleen-like uptake and washout
      {"E2b", vec({150.0, 60.0, 0.0081, 0.3})},
  };
  for (const auto& c : curves) {
    const auto& f = fn(c.id);
    const double truth = f.integral(c.p, LP, INFINITY);
    for (double t : {0.5, 2.0, 24.0, 72.0, 96.0, 168.0, 400.0}) {
      CAPTURE(c.id);
      CAPTURE(t);
      const double a = f.evaluate(VectorXd::Constant(1, t), c.p, LP)(0);
      // The patient's amplitude differs from the population's by a factor 0.37: only the shape
      // matters. Exact mathematics: rounding only (1e-12 relative).
      const StpEstimate e = tia_population_curve(t, 0.37 * a, f, c.p, LP);
      CHECK(e.tia_MBq_h == doctest::Approx(0.37 * truth).epsilon(1e-12));
      CHECK(e.tia_per_activity_h == doctest::Approx(truth / a).epsilon(1e-12));
      CHECK(std::isnan(e.tia_u_MBq_h));  // no covariance given
    }
  }
}

TEST_CASE("population-curve estimator: Madsen and Hänscheid are its E1 special cases") {
  const auto& e1 = fn("E1");
  for (double t : {24.0, 72.0, 96.0}) {
    CAPTURE(t);
    // Madsen: E1 with lambda_bio = lambda_pop - lambda_p (rounding only: 1e-13)
    const double lam = KIDNEY_LAMBDA_EFF;
    CHECK(tia_population_curve(t, 50.0, e1, vec({1.0, lam - LP}), LP).tia_MBq_h ==
          doctest::Approx(tia_madsen(t, 50.0, lam)).epsilon(1e-13));
    // Hänscheid: E1 with T_eff = t or t/2 (2^r = 2r at r = 1, 2); the curve needs
    // lambda_eff >= lambda_p, true for t/2 and t up to 159 h
    for (double t_eff : {t, t / 2.0})
      CHECK(tia_population_curve(t, 50.0, e1, vec({1.0, LN2 / t_eff - LP}), LP).tia_MBq_h ==
            doctest::Approx(tia_hanscheid(t, 50.0)).epsilon(1e-13));
  }
}

TEST_CASE("population-curve estimator: uncertainty from the population covariance and the activity") {
  const auto& f = fn("E2u");
  const VectorXd p = vec({200.0, 0.0055, 0.35});
  MatrixXd cov(3, 3);
  cov << 400.0, 0.01, 0.0, 0.01, 1.5e-6, 2e-5, 0.0, 2e-5, 0.004;
  const double t = 24.0, a = 40.0, ua = 2.0;
  const StpEstimate e = tia_population_curve(t, a, f, p, LP, cov, ua);
  // independent gradient by central differences (relative step 1e-6: truncation and rounding
  // both ~1e-10 relative, far below the 1e-6 tolerance)
  VectorXd g(3);
  for (int j = 0; j < 3; ++j) {
    VectorXd hi = p, lo = p;
    const double h = 1e-6 * std::abs(p(j));
    hi(j) += h;
    lo(j) -= h;
    g(j) = (tia_population_curve(t, a, f, hi, LP).tia_MBq_h - tia_population_curve(t, a, f, lo, LP).tia_MBq_h) / (2 * h);
  }
  CHECK(std::abs(g(0)) < 1e-9 * e.tia_MBq_h);  // a single amplitude cancels
  // second order (Gaussian parameters): var = g^T C g + tr(H C H C)/2, H by second differences
  // of the TIA (relative step 1e-4: truncation and rounding ~1e-8 relative on H, and the H term
  // is a few % of the variance, far below the 1e-6 tolerance on u)
  MatrixXd hess(3, 3);
  auto tia = [&](const VectorXd& q) { return tia_population_curve(t, a, f, q, LP).tia_MBq_h; };
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) {
      const double hi_ = 1e-4 * std::abs(p(i)), hj = 1e-4 * std::abs(p(j));
      VectorXd pp = p, pm = p, mp = p, mm = p;
      pp(i) += hi_, pp(j) += hj;
      pm(i) += hi_, pm(j) -= hj;
      mp(i) -= hi_, mp(j) += hj;
      mm(i) -= hi_, mm(j) -= hj;
      hess(i, j) = (tia(pp) - tia(pm) - tia(mp) + tia(mm)) / (4 * hi_ * hj);
    }
  const MatrixXd hc = hess * cov;
  CHECK(e.tia_u_population_MBq_h == doctest::Approx(std::sqrt(g.dot(cov * g) + 0.5 * (hc * hc).trace())).epsilon(1e-6));
  CHECK(e.tia_u_activity_MBq_h == doctest::Approx(ua * e.tia_per_activity_h).epsilon(1e-14));
  CHECK(e.tia_u_MBq_h == doctest::Approx(std::hypot(e.tia_u_population_MBq_h, e.tia_u_activity_MBq_h)).epsilon(1e-14));
}

// ---------------------------------------------------------------------------------------------
// Population kinetics file

TEST_CASE("population_kinetics.csv: the rows, their derivation and the target patterns") {
  const auto table = load_population_kinetics(DATA);
  // the file gives 6 significant digits: relative tolerance 1e-5 against the derivation
  const PopulationKinetics* k = find_population_kinetics(table, "kidney_left");
  REQUIRE(k != nullptr);
  CHECK(k->target_pattern == "kidney*");
  CHECK(k->function == "E1");
  REQUIRE(k->priors.size() == 1);
  CHECK(k->priors[0].parameter == "lambda1_bio_per_h");
  CHECK(k->priors[0].mean == doctest::Approx(KIDNEY_LAMBDA_BIO).epsilon(1e-5));
  CHECK(k->priors[0].sd == doctest::Approx(KIDNEY_SD).epsilon(1e-5));
  CHECK(k->priors[0].source.find("K19") != std::string::npos);
  for (const char* name : {"kidneys", "kidney_right", "kidney_cortex_left"})
    CHECK(find_population_kinetics(table, name) == k);
  const struct { const char* target; double t_eff; } others[] = {
      {"liver", 70}, {"spleen", 70}, {"tumour_1", 90}, {"tumor_a", 90}, {"lesion_3", 90}};
  for (const auto& o : others) {
    CAPTURE(o.target);
    const PopulationKinetics* e = find_population_kinetics(table, o.target, "E1");
    REQUIRE(e != nullptr);
    REQUIRE(e->priors.size() == 1);
    CHECK(e->priors[0].mean == doctest::Approx(LN2 / o.t_eff - LP).epsilon(1e-5));
    CHECK(e->priors[0].sd == doctest::Approx(0.22 * LN2 / o.t_eff).epsilon(1e-5));  // SD 22 % of T_eff
  }
  CHECK(find_population_kinetics(table, "liver_left") == nullptr);  // "liver" is exact
  CHECK(find_population_kinetics(table, "red_marrow") == nullptr);
  CHECK(find_population_kinetics(table, "kidneys", "E2") == nullptr);
}

TEST_CASE("population kinetics: an exact pattern wins over a prefix, the longest prefix over shorter ones") {
  const TempDataDir dir(
      "target_pattern,function,parameter,mean,sd,source\n"
      "kidney*,E1,lambda1_bio_per_h,0.008,0.003,a\n"
      "kidney_l*,E1,lambda1_bio_per_h,0.007,0.003,b\n"
      "kidney_left,E1,lambda1_bio_per_h,0.006,0.003,c\n"
      "kidney*,E2,lambda1_bio_per_h,0.008,0.003,d\n"
      "kidney*,E2,lambda2_bio_per_h,0.2,0.1,d\n");
  const auto t = load_population_kinetics(dir.path);
  REQUIRE(t.size() == 4);  // rows of one pattern and function form one entry
  CHECK(find_population_kinetics(t, "kidney_left")->priors[0].source == "c");
  CHECK(find_population_kinetics(t, "kidney_lower")->priors[0].source == "b");
  CHECK(find_population_kinetics(t, "kidneys", "E1")->priors[0].source == "a");
  CHECK(find_population_kinetics(t, "kidneys", "E2")->priors.size() == 2);
}

TEST_CASE("population kinetics: bad rows are InputErrors naming file, line, field and value") {
  const std::string head = "target_pattern,function,parameter,mean,sd,source\n";
  const struct { const char* row; const char* message; } bad[] = {
      {"kidney*,E9,lambda1_bio_per_h,0.008,0.003,x\n", "function is 'E9'"},
      {"kidney*,E1,lambda2_bio_per_h,0.008,0.003,x\n", "parameter is 'lambda2_bio_per_h'"},
      {"kidney*,E1,lambda1_bio_per_h,-0.008,0.003,x\n", "mean is '-0.008'"},
      {"kidney*,E1,lambda1_bio_per_h,abc,0.003,x\n", "mean is 'abc'"},
      {"kidney*,E1,lambda1_bio_per_h,0.008,0,x\n", "sd is '0'"},
      {"kidney*,E1,lambda1_bio_per_h,0.008,0.003,x\nkidney*,E1,lambda1_bio_per_h,0.008,0.003,x\n",
       "population_kinetics.csv:3: parameter is 'lambda1_bio_per_h'"},
      {",E1,lambda1_bio_per_h,0.008,0.003,x\n", "target_pattern is ''"},
  };
  for (const auto& b : bad) {
    CAPTURE(b.row);
    const TempDataDir dir(head + b.row);
    CHECK_THROWS_WITH_AS(load_population_kinetics(dir.path), doctest::Contains(b.message), InputError);
  }
  const TempDataDir no_sd("target_pattern,function,parameter,mean,source\n");
  CHECK_THROWS_AS(load_population_kinetics(no_sd.path), InputError);
  CHECK_THROWS_AS(load_population_kinetics("/nonexistent"), InputError);
}

// ---------------------------------------------------------------------------------------------
// Fit with priors (maximum a posteriori)

TEST_CASE("MAP fit: data exactly on the prior mean curve return the prior mean") {
  const auto& e1 = fn("E1");
  const double a1 = 150.0, k = KIDNEY_LAMBDA_BIO + LP;
  for (const VectorXd& t : {vec({96.0}), vec({24.0, 96.0}), vec({4.0, 24.0, 168.0})}) {
    CAPTURE(t.size());
    VectorXd y(t.size());
    for (Eigen::Index i = 0; i < t.size(); ++i) y(i) = mono(a1, k, t(i));
    const PriorFit fit = fit_with_prior(e1, t, y, 0.05 * y, LP, kidney_prior());
    REQUIRE(fit.fitted);
    CHECK(fit.converged);
    CHECK(fit.flags.empty());
    // zero residuals and zero penalty at the truth: recovered to the optimiser's tolerance
    // (xtol 1e-12), checked at 1e-9 relative
    CHECK(fit.parameters(0) == doctest::Approx(a1).epsilon(1e-9));
    CHECK(fit.parameters(1) == doctest::Approx(KIDNEY_LAMBDA_BIO).epsilon(1e-9));
    CHECK(fit.objective < 1e-16);
    CHECK(fit.tia_MBq_h == doctest::Approx(a1 / k).epsilon(1e-9));
  }
}

TEST_CASE("MAP fit: one point with a free amplitude gives the population-curve estimate") {
  const auto& e1 = fn("E1");
  const auto table = load_population_kinetics(DATA);
  const PopulationKinetics* kid = find_population_kinetics(table, "kidneys");
  REQUIRE(kid != nullptr);
  const double pop_lambda = kid->priors[0].mean;
  // A point off the population curve (true T_eff 45 h): the amplitude absorbs it, the rate stays
  // at the prior mean, so the MAP TIA is the population-curve (here: Madsen) estimate.
  for (double t : {24.0, 72.0, 96.0, 168.0}) {
    CAPTURE(t);
    const double a = mono(150.0, LN2 / 45.0, t);
    const PriorFit fit = fit_with_prior(*kid, vec({t}), vec({a}), vec({0.05 * a}), LP);
    REQUIRE(fit.fitted);
    const StpEstimate pop = tia_population_curve(t, a, e1, vec({1.0, pop_lambda}), LP);
    CHECK(fit.tia_MBq_h == doctest::Approx(pop.tia_MBq_h).epsilon(1e-6));  // the brief's 1e-6
    CHECK(fit.tia_MBq_h == doctest::Approx(tia_madsen(t, a, pop_lambda + LP)).epsilon(1e-6));
    // With one point the data say nothing about the rate: the posterior SD of lambda is the
    // prior SD (exact for a square stacked Jacobian; 1e-9 for rounding and the MAP tolerance).
    CHECK(std::sqrt(fit.covariance(1, 1)) == doctest::Approx(kid->priors[0].sd).epsilon(1e-9));
    // ... and the TIA uncertainty is the first-order one of the population curve with the prior
    // variance and the activity's uncertainty: h(lambda) = a e^{lambda t}/lambda,
    // h' = a e^{lambda t}(t/lambda - 1/lambda^2) (1e-6: the MAP tolerance). The population-curve
    // estimator itself propagates to second order (issue 11), so it is not smaller.
    const double lam = pop_lambda + LP, sd = kid->priors[0].sd, ex = a * std::exp(lam * t);
    const double first = std::hypot((ex * (t / lam - 1 / (lam * lam))) * sd, 0.05 * ex / lam);
    CHECK(fit.tia_u_MBq_h == doctest::Approx(first).epsilon(1e-6));
    MatrixXd cov = MatrixXd::Zero(2, 2);
    cov(1, 1) = sd * sd;
    const StpEstimate popu = tia_population_curve(t, a, e1, vec({1.0, pop_lambda}), LP, cov, 0.05 * a);
    CHECK(popu.tia_u_MBq_h >= fit.tia_u_MBq_h);
  }
}

TEST_CASE("MAP fit: the posterior SD shrinks as points are added") {
  const auto& e1 = fn("E1");
  const double k_true = LN2 / 48.0;  // patient faster than the population (56 h)
  const VectorXd schedules[] = {vec({96.0}), vec({24.0, 96.0}), vec({24.0, 96.0, 168.0}),
                                vec({4.0, 24.0, 48.0, 96.0, 168.0})};
  double prev_sd = INFINITY, prev_tia_cv = INFINITY;
  for (const VectorXd& t : schedules) {
    CAPTURE(t.size());
    VectorXd y(t.size());
    for (Eigen::Index i = 0; i < t.size(); ++i) y(i) = mono(150.0, k_true, t(i));
    const PriorFit fit = fit_with_prior(e1, t, y, 0.05 * y, LP, kidney_prior());
    REQUIRE(fit.fitted);
    CHECK(fit.flags.empty());
    const double sd = std::sqrt(fit.covariance(1, 1));
    const double tia_cv = fit.tia_u_MBq_h / fit.tia_MBq_h;
    CHECK(sd < prev_sd);
    CHECK(tia_cv < prev_tia_cv);
    CHECK(sd <= KIDNEY_SD * (1 + 1e-9));  // never wider than the prior
    prev_sd = sd;
    prev_tia_cv = tia_cv;
  }
}

TEST_CASE("MAP fit: the optimum is a stationary point of chi^2 + penalty, and the covariance is the inverse half Hessian") {
  const auto& e1 = fn("E1");
  const VectorXd t = vec({24.0, 96.0});
  VectorXd y(2);
  y << mono(150.0, LN2 / 45.0, 24.0) * 1.04, mono(150.0, LN2 / 45.0, 96.0) * 0.97;  // off any E1
  const VectorXd sigma = 0.05 * y;
  const PriorFit fit = fit_with_prior(e1, t, y, sigma, LP, kidney_prior());
  REQUIRE(fit.fitted);
  CHECK(fit.penalty > 0);    // the prior pulls
  CHECK(fit.chi2_data > 0);  // and the data pull back
  auto objective = [&](const VectorXd& p) {
    const double r0 = (y(0) - e1.evaluate(t, p, LP)(0)) / sigma(0);
    const double r1 = (y(1) - e1.evaluate(t, p, LP)(1)) / sigma(1);
    const double z = (p(1) - KIDNEY_LAMBDA_BIO) / KIDNEY_SD;
    return r0 * r0 + r1 * r1 + z * z;  // written out independently of the engine's residuals
  };
  CHECK(objective(fit.parameters) == doctest::Approx(fit.objective).epsilon(1e-12));
  // central-difference gradient, scaled by the parameter (relative step 1e-6): at the optimum it
  // is zero up to the optimiser's tolerance and the differencing error (both < 1e-6)
  const VectorXd p = fit.parameters;
  for (int j = 0; j < 2; ++j) {
    VectorXd hi = p, lo = p;
    const double h = 1e-6 * p(j);
    hi(j) += h;
    lo(j) -= h;
    CHECK(std::abs((objective(hi) - objective(lo)) / (2 * h) * p(j)) < 1e-6);
  }
  // A point with exact data (zero residuals): there the Gauss-Newton matrix J^T J equals half
  // the Hessian of the objective, so the covariance is its inverse; numerical Hessian with
  // relative steps 1e-4 (truncation ~1e-8, rounding ~1e-8): 1e-5 relative.
  VectorXd y0(2);
  y0 << mono(150.0, KIDNEY_LAMBDA_EFF, 24.0), mono(150.0, KIDNEY_LAMBDA_EFF, 96.0);
  const VectorXd s0 = 0.05 * y0;
  const PriorFit f0 = fit_with_prior(e1, t, y0, s0, LP, kidney_prior());
  auto obj0 = [&](const VectorXd& q) {
    const VectorXd r = (y0 - e1.evaluate(t, q, LP)).cwiseQuotient(s0);
    const double z = (q(1) - KIDNEY_LAMBDA_BIO) / KIDNEY_SD;
    return r.squaredNorm() + z * z;
  };
  MatrixXd hess(2, 2);
  const VectorXd q = f0.parameters;
  const VectorXd hs = 1e-4 * q;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j) {
      auto at = [&](double di, double dj) {
        VectorXd x = q;
        x(i) += di * hs(i);
        x(j) += dj * hs(j);
        return obj0(x);
      };
      hess(i, j) = (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1)) / (4 * hs(i) * hs(j));
    }
  const MatrixXd cov_num = (0.5 * hess).inverse();
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j)
      CHECK(f0.covariance(i, j) == doctest::Approx(cov_num(i, j)).epsilon(1e-5));
}

TEST_CASE("MAP fit: a very wide prior gives the weighted least-squares fit of fit_function") {
  const auto& e1 = fn("E1");
  const VectorXd t = vec({4.0, 24.0, 96.0, 168.0});
  VectorXd y(4);
  y << 140.0, 118.0, 48.0, 20.5;
  const VectorXd sigma = 0.05 * y;
  FitOptions o;
  o.error_model = ErrorModel::input;
  const CandidateFit wls = fit_function(e1, t, y, sigma, LP, o);
  REQUIRE(wls.fitted);
  // prior SD 1e3 1/h against a data SD of ~1e-3 1/h: the prior's weight is ~1e-12 of the data's
  const PriorFit map = fit_with_prior(e1, t, y, sigma, LP, {{"lambda1_bio_per_h", 0.008, 1e3, ""}});
  REQUIRE(map.fitted);
  for (int j = 0; j < 2; ++j) {
    CHECK(map.parameters(j) == doctest::Approx(wls.parameters(j)).epsilon(1e-7));  // both fits' tolerances
    for (int k = 0; k < 2; ++k)
      CHECK(map.covariance(j, k) == doctest::Approx(wls.covariance(j, k)).epsilon(1e-6));
  }
  CHECK(map.tia_MBq_h == doctest::Approx(wls.tia_MBq_h).epsilon(1e-7));
  CHECK(map.tia_u_MBq_h == doctest::Approx(wls.tia_u_MBq_h).epsilon(1e-6));
}

TEST_CASE("MAP fit: two-rate function with priors on both rates and two points") {
  // E2 (4 parameters) from 2 points and 2 rate priors: fitted and identifiable (rank 4) only
  // thanks to the priors; data on the prior-mean curve are returned (1e-8: LM tolerance).
  const auto& e2 = fn("E2");
  const VectorXd p = vec({130.0, 25.0, 0.0081, 0.22});
  const VectorXd t = vec({2.0, 24.0});
  const VectorXd y = e2.evaluate(t, p, LP);
  const std::vector<ParameterPrior> priors = {{"lambda1_bio_per_h", 0.0081, 0.003, ""},
                                              {"lambda2_bio_per_h", 0.22, 0.1, ""}};
  const PriorFit fit = fit_with_prior(e2, t, y, 0.05 * y, LP, priors);
  REQUIRE(fit.fitted);
  CHECK(fit.rank == 4);
  for (int j = 0; j < 4; ++j) CHECK(fit.parameters(j) == doctest::Approx(p(j)).epsilon(1e-8));
  // without the priors two points cannot determine four parameters
  CHECK_THROWS_WITH_AS(fit_with_prior(e2, t, y, 0.05 * y, LP, {}), doctest::Contains("points plus priors"), InputError);
}

// ---------------------------------------------------------------------------------------------
// Bad input

TEST_CASE("bad input: t <= 0, A < 0, lambda <= 0 and NaN are InputErrors naming the value") {
  const auto& e1 = fn("E1");
  CHECK_THROWS_WITH_AS(tia_hanscheid(0.0, 10.0), doctest::Contains("t_h is '0'"), InputError);
  CHECK_THROWS_WITH_AS(tia_hanscheid(-24.0, 10.0), doctest::Contains("t_h is '-24'"), InputError);
  CHECK_THROWS_WITH_AS(tia_hanscheid(24.0, -1.5), doctest::Contains("activity_MBq is '-1.5'"), InputError);
  CHECK_THROWS_WITH_AS(tia_hanscheid(NAN, 1.0), doctest::Contains("t_h is 'nan'"), InputError);
  CHECK_THROWS_WITH_AS(hanscheid_ratio(-0.5), doctest::Contains("r is '-0.5'"), InputError);
  CHECK_THROWS_WITH_AS(tia_madsen(-1.0, 10.0, 0.01), doctest::Contains("t_h is '-1'"), InputError);
  CHECK_THROWS_WITH_AS(tia_madsen(24.0, -3.0, 0.01), doctest::Contains("activity_MBq is '-3'"), InputError);
  CHECK_THROWS_WITH_AS(tia_madsen(24.0, 10.0, 0.0), doctest::Contains("lambda_eff_pop_per_h is '0'"), InputError);
  CHECK_THROWS_WITH_AS(tia_madsen(24.0, 10.0, -0.01), doctest::Contains("lambda_eff_pop_per_h is '-0.01'"), InputError);
  CHECK_THROWS_WITH_AS(madsen_optimal_time_h(0.0), doctest::Contains("lambda_eff_pop_per_h is '0'"), InputError);
  CHECK_THROWS_WITH_AS(madsen_ratio(24.0, -0.01, 0.01), doctest::Contains("lambda_eff_true_per_h is '-0.01'"), InputError);
  const VectorXd pe1 = vec({1.0, 0.008});
  CHECK_THROWS_WITH_AS(tia_population_curve(0.0, 10.0, e1, pe1, LP), doctest::Contains("t_h is '0'"), InputError);
  CHECK_THROWS_WITH_AS(tia_population_curve(24.0, -2.0, e1, pe1, LP), doctest::Contains("activity_MBq is '-2'"), InputError);
  CHECK_THROWS_WITH_AS(tia_population_curve(24.0, 2.0, e1, pe1, 0.0), doctest::Contains("lambda_p_per_h is '0'"), InputError);
  CHECK_THROWS_WITH_AS(tia_population_curve(24.0, 2.0, e1, vec({1.0, -0.008}), LP),
                       doctest::Contains("lambda1_bio_per_h is '-0.008'"), InputError);
  CHECK_THROWS_WITH_AS(tia_population_curve(24.0, 2.0, e1, vec({1.0}), LP),
                       doctest::Contains("number of population parameters is '1'"), InputError);
  CHECK_THROWS_WITH_AS(tia_population_curve(24.0, 2.0, e1, vec({-1.0, 0.008}), LP),
                       doctest::Contains("at t_h = 24"), InputError);  // curve negative at t
  CHECK_THROWS_AS(tia_population_curve(24.0, 2.0, e1, pe1, LP, MatrixXd::Identity(3, 3)), InputError);
  // the fit
  const VectorXd t = vec({24.0, 96.0}), y = vec({100.0, 50.0}), s = vec({5.0, 2.5});
  CHECK_THROWS_WITH_AS(fit_with_prior(e1, vec({-24.0, 96.0}), y, s, LP, kidney_prior()),
                       doctest::Contains("t_h[0] is '-24'"), InputError);
  CHECK_THROWS_WITH_AS(fit_with_prior(e1, t, vec({100.0, -50.0}), s, LP, kidney_prior()),
                       doctest::Contains("a_MBq[1] is '-50'"), InputError);
  CHECK_THROWS_WITH_AS(fit_with_prior(e1, t, y, vec({5.0, 0.0}), LP, kidney_prior()),
                       doctest::Contains("sigma_MBq[1] is '0'"), InputError);
  CHECK_THROWS_WITH_AS(fit_with_prior(e1, t, y, s, -LP, kidney_prior()),
                       doctest::Contains("lambda_p_per_h is '-0.00434"), InputError);
  CHECK_THROWS_WITH_AS(fit_with_prior(e1, t, y, s, LP, {{"lambda1_bio_per_h", -0.008, 0.003, ""}}),
                       doctest::Contains("prior mean of lambda1_bio_per_h is '-0.008'"), InputError);
  CHECK_THROWS_WITH_AS(fit_with_prior(e1, t, y, s, LP, {{"lambda1_bio_per_h", 0.008, 0.0, ""}}),
                       doctest::Contains("prior sd of lambda1_bio_per_h is '0'"), InputError);
  CHECK_THROWS_WITH_AS(fit_with_prior(e1, t, y, s, LP, {{"lambda2_bio_per_h", 0.008, 0.003, ""}}),
                       doctest::Contains("prior parameter is 'lambda2_bio_per_h'"), InputError);
  CHECK_THROWS_WITH_AS(fit_with_prior(e1, vec({24.0}), y, s, LP, kidney_prior()),
                       doctest::Contains("sizes of a_MBq and sigma_MBq"), InputError);
  CHECK_THROWS_WITH_AS(fit_with_prior(e1, vec({24.0}), vec({100.0}), vec({5.0}), LP, {}),
                       doctest::Contains("points plus priors is '1 + 0'"), InputError);
}
