// A full random-effect covariance Omega (PopulationOptions::omega_structure, methods.md §10 "Full
// Omega"): recovery of a known correlation between ln A and ln lambda_bio from seeded cohorts drawn
// here (not by the code under test), BIC's choice between diagonal and full, the MAP of one scan
// with the full prior, and the population file's round trip.
#include <doctest/doctest.h>

#include <algorithm>
#include <boost/random/mersenne_twister.hpp>
#include <boost/random/normal_distribution.hpp>
#include <cmath>
#include <fstream>
#include <map>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "lutdose/error.h"
#include "lutdose/io/population_file.h"
#include "lutdose/kinetics/population.h"
#include "lutdose/models/exponential.h"
#include "population_cohorts.h"
#include "../test_util.h"

using namespace lutdose;

namespace {

const double LP = std::log(2.0) / (6.647 * 24.0);  // Lu-177, ICRP-107 half-life 6.647 d
const double A0_MBQ = 7400;                         // every TAC's administered activity [MBq]
const double W_A = 0.3, W_L = 0.4;                  // SDs of ln A and ln lambda_bio (as test_population.cpp)
const double A_POP_MBQ = 50, L_POP = 0.02;          // population medians: amplitude [MBq], lambda_bio [1/h]
const int N_TACS = 200;                             // TACs of a learning cohort

struct Cohort {
  std::vector<TacSeries> tacs;
  std::vector<double> tia_MBq_h;  //!< the true TIA of each TAC
};

// E1 TACs with (ln A, ln lambda_bio) bivariate normal: SDs W_A, W_L, correlation rho; measured
// y = f exp(b e), e ~ N(0, 1) (the estimator's error model).
Cohort e1_cohort(int n, double rho, const std::vector<double>& times, unsigned seed, double b = 0.10) {
  boost::random::mt19937_64 rng(seed);
  boost::random::normal_distribution<double> z(0.0, 1.0);
  Cohort c;
  for (int i = 0; i < n; ++i) {
    const double z1 = z(rng), z2 = z(rng);
    const double a = A_POP_MBQ * std::exp(W_A * z1);
    const double l = L_POP * std::exp(W_L * (rho * z1 + std::sqrt(1 - rho * rho) * z2));
    c.tacs.push_back(population_test::e1_tac(i, a, l, LP, times, [&](double f, Eigen::Index) {
      return f * std::exp(b * z(rng));
    }));
    c.tia_MBq_h.push_back(a / (l + LP));
  }
  return c;
}

const std::vector<double> LEARN_TIMES = {4, 24, 72, 168};  // 4 scans at 10 %: the data dominate

// The E1 population of a cohort of N_TACS with correlation rho, learned with `structure`; kept per
// (rho, structure) so that the test cases share the fits (each takes about a second).
const PopulationModel& learned(double rho, OmegaStructure structure) {
  static std::map<std::pair<double, int>, PopulationModel> cache;
  const auto key = std::make_pair(rho, static_cast<int>(structure));
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  const auto c = e1_cohort(N_TACS, rho, LEARN_TIMES, 20261207u);
  PopulationOptions o;
  o.candidates = {"E1"};
  o.threads = 1;
  o.omega_structure = structure;
  auto models = learn_population(c.tacs, std::vector<double>(c.tacs.size(), A0_MBQ), LP, o, "t.csv");
  REQUIRE(models.size() == 1);
  return cache.emplace(key, models[0]).first->second;
}

double correlation(const PopulationModel& m) { return m.omega(0, 1) / std::sqrt(m.omega(0, 0) * m.omega(1, 1)); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Median |TIA error| (relative) of the MAPs of one scan at 24 h of 300 TACs drawn from the
// population with correlation rho (another seed than the learning cohort's).
double one_scan_median_error(const PopulationModel& m, double rho) {
  const auto c = e1_cohort(300, rho, {24}, 77u);
  std::vector<double> err;
  for (size_t i = 0; i < c.tacs.size(); ++i) {
    const TacFit f = population_map_fit(m, c.tacs[i], A0_MBQ, LP, "t");
    err.push_back(std::abs(f.tia_MBq_h / c.tia_MBq_h[i] - 1));
  }
  return median(err);
}

// The known E1 population of e1_cohort with correlation rho as a full-Omega model (no learning;
// no theta_se: taken as known by the MAP's residual criterion).
PopulationModel e1_truth_full(double rho) {
  PopulationModel m;
  m.voi_kind = "kidneys";
  m.function = "E1";
  m.phi_names = {"log_A1_per_administered", "log_dlambda1_bio_per_h"};
  m.theta = Eigen::Vector2d(std::log(A_POP_MBQ / A0_MBQ), std::log(L_POP));
  const double cov = rho * W_A * W_L;
  m.omega = (Eigen::Matrix2d() << W_A * W_A, cov, cov, W_L * W_L).finished();
  m.omega_structure = "full";
  m.sigma_log = 0.1;
  m.n_patients = 200;
  m.n_observations = 800;
  return m;
}

// TACs of `c` whose MAP under `m` has the residual criterion's flag; `other` counts TACs with any other flag.
int rejected_by_residual_check(const PopulationModel& m, const Cohort& c, int& other) {
  int rejected = 0;
  other = 0;
  for (const auto& tac : c.tacs) {
    const TacFit fit = population_map_fit(m, tac, A0_MBQ, LP, "t");
    const auto& cand = fit.candidates.at(0);
    const bool flagged = std::any_of(cand.flags.begin(), cand.flags.end(), [](const std::string& f) {
      return f.rfind("map_residuals_exceed_population_model", 0) == 0;
    });
    rejected += flagged;
    other += cand.flags.size() != static_cast<size_t>(flagged);
  }
  return rejected;
}

}  // namespace

TEST_CASE("population, full Omega: corr(ln A, ln lambda) of -0.7 and +0.7 recovered with theta and the variances") {
  for (const double rho : {-0.7, 0.7}) {
    CAPTURE(rho);
    const auto& m = learned(rho, OmegaStructure::full);
    CHECK(m.omega_structure == "full");
    CHECK(m.converged);
    CHECK(m.e_step == "sampled");
    CHECK(m.n_population_parameters == 2 + 3 + 1);  // K + K (K + 1) / 2 + 1, K = 2
    REQUIRE(m.omega.rows() == 2);
    CHECK(m.omega(0, 1) == m.omega(1, 0));
    // The sampling SD of a correlation estimated from n draws is about (1 - rho^2) / sqrt(n) =
    // 0.036 for n = 200 (4 scans at 10 %: the MAPs are close to the true eta, little shrinkage);
    // 3 SDs, 0.11: fails by chance with probability 0.3 % if right (the seed is fixed).
    const double sd_rho = (1 - rho * rho) / std::sqrt(static_cast<double>(N_TACS));
    MESSAGE("rho " << rho << ": estimated " << correlation(m) << ", omega " << m.omega(0, 0) << " " << m.omega(1, 1));
    CHECK(std::abs(correlation(m) - rho) < 3 * sd_rho);
    // theta within 3 of its standard errors (which now come from the full Fisher information)
    CHECK(std::abs(m.theta(0) - std::log(A_POP_MBQ / A0_MBQ)) < 3 * m.theta_se(0));
    CHECK(std::abs(m.theta(1) - std::log(L_POP)) < 3 * m.theta_se(1));
    // variances: sampling SD omega sqrt(2 / n) = 10 % of omega; 30 % allows 3 of them
    CHECK(std::abs(m.omega(0, 0) / (W_A * W_A) - 1) < 0.3);
    CHECK(std::abs(m.omega(1, 1) / (W_L * W_L) - 1) < 0.3);
    // b: 800 residuals less 400 effective parameters, SD about b / sqrt(2 x 400) = 3.5 %; 3 of them
    CHECK(std::abs(m.sigma_log / 0.10 - 1) < 0.11);
  }
}

TEST_CASE("population, full Omega: BIC prefers the diagonal Omega on uncorrelated data and the full one on correlated data") {
  const auto& full0 = learned(0.0, OmegaStructure::full);
  const auto& diag0 = learned(0.0, OmegaStructure::diagonal);
  CHECK(diag0.omega_structure == "diagonal");
  CHECK(diag0.omega.isDiagonal(0.0));
  CHECK(diag0.n_population_parameters == 5);
  // rho = 0: the estimate's sampling SD is 1 / sqrt(200) = 0.071; 3 SDs
  CHECK(std::abs(correlation(full0)) < 3 / std::sqrt(static_cast<double>(N_TACS)));
  // One parameter more buys -2 log L about a chi-square(1) when rho = 0, less than BIC's ln(200) =
  // 5.3 with probability 98 %; with rho = 0.7 it buys about -n ln(1 - rho^2) = 135.
  MESSAGE("rho 0: BIC full " << full0.bic << ", diagonal " << diag0.bic);
  CHECK(diag0.bic < full0.bic);
  const auto& full7 = learned(0.7, OmegaStructure::full);
  const auto& diag7 = learned(0.7, OmegaStructure::diagonal);
  MESSAGE("rho 0.7: BIC full " << full7.bic << ", diagonal " << diag7.bic);
  CHECK(full7.bic < diag7.bic - 10);  // 10: "very strong" evidence on Kass & Raftery's (1995) scale
}

TEST_CASE("population, full Omega: one scan at 24 h, the MAP with the full Omega has the smaller TIA error") {
  // With ln A and ln lambda correlated, one point of the curve tells about both: the full prior
  // uses that, the diagonal one cannot (the benefit measured in docs/validation.md §10).
  for (const double rho : {-0.7, 0.7}) {
    CAPTURE(rho);
    const double full = one_scan_median_error(learned(rho, OmegaStructure::full), rho);
    const double diag = one_scan_median_error(learned(rho, OmegaStructure::diagonal), rho);
    MESSAGE("rho " << rho << ": median |TIA error| full " << full << ", diagonal " << diag);
    CHECK(full < diag);
  }
}

TEST_CASE("population, full Omega: the population file keeps the full Omega, and the MAP read back is the same") {
  PopulationFile p;
  p.models = {learned(-0.7, OmegaStructure::full)};
  p.half_life_h = 159.528;
  p.input_path = "t.csv";
  p.input_sha256 = std::string(64, '0');
  p.options.omega_structure = OmegaStructure::full;
  p.lutdose_version = "test";
  test::TempDir dir;
  const std::string path = dir / "pop.json";
  {
    std::ofstream out(path, std::ios::binary);
    out << population_file_text(p);
  }
  const PopulationFile back = read_population_file(path);
  REQUIRE(back.models.size() == 1);
  const auto& m = back.models[0];
  CHECK(m.omega_structure == "full");
  CHECK(m.omega == p.models[0].omega);  // nlohmann's JSON numbers round-trip doubles exactly
  CHECK(!m.omega.isDiagonal(0.0));
  const auto tac = e1_cohort(1, -0.7, {24}, 5u).tacs[0];
  const TacFit a = population_map_fit(p.models[0], tac, A0_MBQ, LP, "t");
  const TacFit b = population_map_fit(m, tac, A0_MBQ, LP, "t");
  CHECK(b.tia_MBq_h == a.tia_MBq_h);
  CHECK(b.tia_u_MBq_h == a.tia_u_MBq_h);
}

TEST_CASE("population, full Omega: the MAP of one scan minimises the objective with the full prior (its gradient is 0)") {
  // A known E1 population with corr(ln A, ln lambda) = 0.7 (no learning) and one scan at 24 h:
  // the MAP must be a stationary point of Q(phi) = ((ln y - ln f(t; phi)) / b)^2 +
  // (phi - theta)^T Omega^-1 (phi - theta), computed here on its own. A MAP under the diagonal of
  // Omega alone misses the cross term: its gradient here is of order 1.
  const PopulationModel m = e1_truth_full(0.7);
  const Eigen::Matrix2d omega_inv = m.omega.inverse();
  for (const double y_MBq : {40.0, 25.0, 12.0}) {  // at, below and far below the population's 30 MBq at 24 h
    CAPTURE(y_MBq);
    TacSeries tac;
    tac.patient = "P1";
    tac.voi = "kidneys";
    tac.time_h = Eigen::VectorXd::Constant(1, 24.0);
    tac.activity_MBq = Eigen::VectorXd::Constant(1, y_MBq);
    const TacFit fit = population_map_fit(m, tac, A0_MBQ, LP, "t");
    const auto& p = fit.candidates.at(0).parameters;  // A1 [MBq], lambda1_bio [1/h]
    const Eigen::Vector2d phi(std::log(p(0) / A0_MBQ), std::log(p(1)));
    const auto q = [&](const Eigen::Vector2d& x) {
      const double r = (std::log(y_MBq / A0_MBQ) - (x(0) - (std::exp(x(1)) + LP) * 24.0)) / m.sigma_log;
      const Eigen::Vector2d d = x - m.theta;
      return r * r + d.dot(omega_inv * d);
    };
    // central differences with h = 1e-5: truncation error h^2 Q''' ~ 1e-9, rounding 1e-16 Q / h ~
    // 1e-10. The LM stops on its tolerances (ftol 1e-12, xtol 1e-10) with a gradient of up to 6e-6
    // here; 1e-3 leaves a margin of 100 over that and is 1000 times below the miss of a MAP under
    // the diagonal alone: 2 (Omega^-1)_01 eta = 2 x (-11.4) x 0.1 ~ 2 (Omega^-1's cross term
    // -rho / ((1 - rho^2) w_A w_L))
    const double h = 1e-5;
    const Eigen::Vector2d e0(h, 0), e1(0, h);
    const Eigen::Vector2d grad((q(phi + e0) - q(phi - e0)) / (2 * h), (q(phi + e1) - q(phi - e1)) / (2 * h));
    MESSAGE("MAP eta " << (phi - m.theta).transpose() << ", gradient " << grad.transpose());
    CHECK(grad.cwiseAbs().maxCoeff() < 1e-3);
  }
}

TEST_CASE("population, full Omega: MAPs of TACs drawn from the population are rejected at the criterion's rate") {
  // As test_population.cpp's diagonal case: the residual criterion's false-rejection probability is
  // 1e-3 per TAC, so of 2000 TACs about 2 are rejected; 10 is exceeded by Binomial(2000, 1e-3) with
  // probability 8e-6. With a full Omega, Q's prior term is (phi - theta)^T Omega^-1 (phi - theta):
  // chi-square(n) in the linearised model only if the whitening is right. Judged by the true
  // population (taken as known) and by the one learned from 200 TACs (its theta_se and the factor
  // K F(K, n - 1) / chi2(K) on the whole matrix). The seeds are fixed: the counts cannot flicker.
  // (Checked once by hand: the 3-scan TACs judged with the covariance's sign flipped gave 80
  // rejections, with the covariance dropped 5; one scan cannot tell, n = 1 < K.)
  const PopulationModel& learned_full = learned(0.7, OmegaStructure::full);
  for (const auto& times : {std::vector<double>{4, 24, 48}, std::vector<double>{24}}) {
    const auto c = e1_cohort(2000, 0.7, times, 41u + static_cast<unsigned>(times.size()));
    const size_t n_times = times.size();
    CAPTURE(n_times);
    int other = 0;
    const int by_truth = rejected_by_residual_check(e1_truth_full(0.7), c, other);
    CHECK(other == 0);  // no other flag on data drawn from the population
    const int by_learned = rejected_by_residual_check(learned_full, c, other);
    CHECK(other == 0);
    MESSAGE("rejected " << by_truth << " (true population), " << by_learned << " (learned) of 2000 (expected about 2)");
    CHECK(by_truth <= 10);
    CHECK(by_learned <= 10);
  }
}

TEST_CASE("population, full Omega: the population's own uncertainty of Omega's variances reaches u(TIA)") {
  // Regression (merge with 0.17's population uncertainty): the shifted Omega_kk was set on the
  // prior's diagonal only, which a full prior does not use, so log_omega_se added nothing to u.
  // Now Omega's row and column k are scaled by e^(s/2): with SEs of theta and b 0 and of ln Omega
  // 0.5, u(TIA) must grow. A 3-scan kidney-like TAC (4, 24, 48 h: the rate is partly prior).
  PopulationModel m = e1_truth_full(0.7);
  m.theta_se = Eigen::Vector2d::Zero();
  m.log_sigma_log_se = 0.0;
  m.log_omega_se = Eigen::Vector2d::Zero();
  const auto tac = e1_cohort(1, 0.7, {4, 24, 48}, 9u).tacs[0];
  const TacFit known = population_map_fit(m, tac, A0_MBQ, LP, "t");
  m.log_omega_se = Eigen::Vector2d(0.5, 0.5);
  const TacFit uncertain = population_map_fit(m, tac, A0_MBQ, LP, "t");
  CHECK(uncertain.tia_MBq_h == known.tia_MBq_h);  // the estimate itself is unchanged
  MESSAGE("u(TIA) " << known.tia_u_MBq_h << " -> " << uncertain.tia_u_MBq_h);
  // measured 1.012 times (exactly 1 before the fix); 0.5 % more at least is far above the refits'
  // rounding (relative 1e-8)
  CHECK(uncertain.tia_u_MBq_h > 1.005 * known.tia_u_MBq_h);
}

TEST_CASE("population, full Omega: the SEs of ln Omega's variances are marginal, at least those of n exact draws") {
  // Review of 0.17 (finding 2): with the covariances held, the SE of ln Omega_kk shrinks like
  // sqrt(1 - rho^2) as the correlation grows, below sqrt(2 / n), the SE of a variance from n exactly
  // known draws (which holds whatever rho). With rho = -0.7 and 4 scans at 10 % (each TAC's phi nearly
  // known) the marginal SE is near sqrt(2 / 200) = 0.100: not below it (0.999: rounding), at most 30 %
  // above (the data's own variance C_i lowers the information a little, as in the diagonal test).
  const auto& m = learned(-0.7, OmegaStructure::full);
  REQUIRE(m.log_omega_se.size() == 2);
  for (int k = 0; k < 2; ++k) {
    CAPTURE(k);
    CHECK(m.log_omega_se(k) >= std::sqrt(2.0 / N_TACS) * 0.999);
    CHECK(m.log_omega_se(k) <= std::sqrt(2.0 / N_TACS) * 1.3);
  }
}

namespace {

using population_test::sample_sd;

// `m` with every population standard error 0 (the population taken as known) but the correlations'
// `se_rho` (0: known too).
PopulationModel known_but_correlation(PopulationModel m, double se_rho) {
  m.theta_se = Eigen::Vector2d::Zero();
  m.log_sigma_log_se = 0.0;
  m.log_omega_se = Eigen::Vector2d::Zero();
  m.omega_correlation_se = (Eigen::Matrix2d() << 0, se_rho, se_rho, 0).finished();
  return m;
}

bool has_note(const TacFit& f, const std::string& text) {
  return std::any_of(f.notes.begin(), f.notes.end(), [&](const std::string& n) { return n.find(text) != std::string::npos; });
}

}  // namespace

// Issue 15 "honest uncertainty" (0.20): the SE of a full Omega's correlation (delta method from the
// inverted Fisher information of Omega's elements) is checked against what it estimates, the spread
// of the correlation estimated from cohorts drawn alike (seeded here, not by the code under test).
TEST_CASE("population, full Omega: the SEs of the correlation match its spread over 24 cohorts") {
  const int reps = 24;
  const double rho = 0.5;
  std::vector<double> estimates, ses;
  for (int r = 0; r < reps; ++r) {
    const auto c = e1_cohort(POPULATION_MIN_TACS + 10, rho, LEARN_TIMES, 31000u + static_cast<unsigned>(r));
    PopulationOptions o;
    o.candidates = {"E1"};
    o.threads = 1;
    o.omega_structure = OmegaStructure::full;
    o.sampled_e_step = false;  // the Laplace EM: the SEs are of its estimates; 24 cohorts in about a second
    const auto m = learn_population(c.tacs, std::vector<double>(c.tacs.size(), A0_MBQ), LP, o, "t.csv").at(0);
    REQUIRE(m.omega_correlation_se.rows() == 2);
    CHECK(m.omega_correlation_se(0, 0) == 0);  // rho_kk = 1 exactly
    CHECK(m.omega_correlation_se(0, 1) == m.omega_correlation_se(1, 0));
    estimates.push_back(correlation(m));
    ses.push_back(m.omega_correlation_se(0, 1));
  }
  const double mean_se = std::accumulate(ses.begin(), ses.end(), 0.0) / reps;
  MESSAGE("correlation: SD over cohorts " << sample_sd(estimates) << ", mean SE " << mean_se << " ((1 - rho^2) / sqrt(n) = "
                                          << (1 - rho * rho) / std::sqrt(POPULATION_MIN_TACS + 10.0) << ")");
  REQUIRE(std::isfinite(mean_se));
  // An SD from 24 draws has a sampling SD of 1 / sqrt(2 x 23) = 15 %: a ratio within 0.6-1.6 allows
  // about 3 of them (and the linearisation's few per cent); an SE of 0, or of a covariance instead
  // of a correlation (about 0.03 here), fails
  CHECK(mean_se / sample_sd(estimates) > 0.6);
  CHECK(mean_se / sample_sd(estimates) < 1.6);
  // a diagonal Omega has no correlations: no SEs
  CHECK(learned(0.0, OmegaStructure::diagonal).omega_correlation_se.size() == 0);
}

// The correlation's SE reaches the MAP's u(TIA): u equals u_posterior combined with the TIA's change
// over one SE of the correlation, recomputed here through the public call with the correlation
// moved (on the atanh scale, the documented shift) and taken as known.
TEST_CASE("population, full Omega: the correlation's standard error reaches u(TIA), as recomputed through the public calls") {
  // se_rho 0.15: twice the SE of a correlation of 0.7 from the least cohort of a full Omega, 50 TACs
  // ((1 - 0.49) / sqrt(50) = 0.072): large enough that its part of u is visible
  const double rho = 0.7, se_rho = 0.15;
  const auto tac = e1_cohort(1, rho, {24}, 9u).tacs[0];  // one scan: the correlation carries the rate
  const TacFit known = population_map_fit(known_but_correlation(e1_truth_full(rho), 0.0), tac, A0_MBQ, LP, "t");
  const TacFit uncertain = population_map_fit(known_but_correlation(e1_truth_full(rho), se_rho), tac, A0_MBQ, LP, "t");
  const auto tia_at = [&](double dz) {
    const double moved = std::tanh(std::atanh(rho) + dz);
    return population_map_fit(known_but_correlation(e1_truth_full(moved), 0.0), tac, A0_MBQ, LP, "t").tia_MBq_h;
  };
  const double dz = se_rho / (1 - rho * rho);  // the SE on the atanh scale (delta method)
  const double d = 0.5 * (tia_at(dz) - tia_at(-dz));
  const double expected = std::sqrt(known.tia_u_MBq_h * known.tia_u_MBq_h + d * d);
  MESSAGE("u(TIA) " << known.tia_u_MBq_h << " -> " << uncertain.tia_u_MBq_h << " (expected " << expected << ")");
  CHECK(uncertain.tia_MBq_h == known.tia_MBq_h);  // the estimate itself is unchanged
  CHECK(expected > 1.05 * known.tia_u_MBq_h);     // u 5 % or more above: the 1 % below sees it
  // 1 %: the implementation's u is the delta method on the MAP's parameters (its covariance plus the
  // parameters' secants) where this test differences MAP TIAs, and its refits start from the MAP (the
  // test's from theta): both within the refits' convergence, far below the change checked above
  CHECK(uncertain.tia_u_MBq_h == doctest::Approx(expected).epsilon(0.01));
  CHECK(has_note(uncertain, "Omega's correlations (atanh scale)"));
  // a full Omega without the correlations' SEs (a file of 0.19): taken as known, and noted
  auto old = known_but_correlation(e1_truth_full(rho), 0.0);
  old.omega_correlation_se.resize(0, 0);
  const TacFit as_old = population_map_fit(old, tac, A0_MBQ, LP, "t");
  CHECK(as_old.tia_u_MBq_h == doctest::Approx(known.tia_u_MBq_h).epsilon(1e-12));
  CHECK(has_note(as_old, "not known, taken as exact: the error of Omega's correlations"));
}

namespace {

// A known E2u population (K = 3: ln A1 / A0, ln lambda1, ln (lambda2 - lambda1)) with SDs 0.3 and
// the correlations `corr`, every population SE 0 but the correlations' `se_rho` (no learning).
PopulationModel e2u_known(const Eigen::Matrix3d& corr, double se_rho) {
  PopulationModel m;
  m.voi_kind = "kidneys";
  m.function = "E2u";
  m.phi_names = population_parameter_names(*models::find_exponential("E2u"));
  m.theta = Eigen::Vector3d(std::log(60.0 / A0_MBQ), std::log(0.02), std::log(0.3));
  m.omega = 0.09 * corr;
  m.omega_structure = "full";
  m.sigma_log = 0.1;
  m.n_patients = 200;
  m.n_observations = 800;
  m.theta_se = Eigen::Vector3d::Zero();
  m.log_omega_se = Eigen::Vector3d::Zero();
  m.log_sigma_log_se = 0.0;
  m.omega_correlation_se = se_rho * (Eigen::Matrix3d::Ones() - Eigen::Matrix3d::Identity());
  return m;
}

// `corr` with its correlation (i, j) moved by dz on the atanh scale.
Eigen::Matrix3d moved(Eigen::Matrix3d corr, int i, int j, double dz) {
  corr(i, j) = corr(j, i) = std::tanh(std::atanh(corr(i, j)) + dz);
  return corr;
}

bool positive_definite(const Eigen::Matrix3d& m) { return Eigen::LLT<Eigen::Matrix3d>(m).info() == Eigen::Success; }

}  // namespace

// With K = 3 a correlation shifted by its SE can leave Omega not positive definite (correlations of
// 0.9, 0.9 and 0.7: det = 0.024, and 0.7 moved down by one SE makes it negative): the shift is halved
// until Omega is positive definite both ways and the secant scaled back to one SE, as recomputed here
// through the public call (the fraction found here on its own), and the note says so.
TEST_CASE("population, full Omega: a correlation whose shift would leave Omega indefinite is shifted by a fraction, scaled back") {
  Eigen::Matrix3d corr;
  corr << 1, 0.9, 0.9, 0.9, 1, 0.7, 0.9, 0.7, 1;
  REQUIRE(positive_definite(corr));
  const double se_rho = 0.2;
  TacSeries tac;  // one scan at 24 h, 1.5 times the population's curve: the correlations carry the rates
  tac.patient = "P1";
  tac.voi = "kidneys";
  tac.time_h = Eigen::VectorXd::Constant(1, 24.0);
  tac.activity_MBq = Eigen::VectorXd::Constant(1, 1.5 * 60.0 * (std::exp(-(0.02 + LP) * 24) - std::exp(-(0.32 + LP) * 24)));
  const TacFit known = population_map_fit(e2u_known(corr, 0.0), tac, A0_MBQ, LP, "t");
  const TacFit uncertain = population_map_fit(e2u_known(corr, se_rho), tac, A0_MBQ, LP, "t");
  double u2 = known.tia_u_MBq_h * known.tia_u_MBq_h;
  int shortened = 0;
  for (int i = 0; i < 3; ++i)
    for (int j = i + 1; j < 3; ++j) {
      const double dz = se_rho / (1 - corr(i, j) * corr(i, j));
      double kept = 1;
      while (!(positive_definite(moved(corr, i, j, kept * dz)) && positive_definite(moved(corr, i, j, -kept * dz))))
        kept /= 2;
      shortened += kept < 1;
      const auto tia = [&](double sign) {
        return population_map_fit(e2u_known(moved(corr, i, j, sign * kept * dz), 0.0), tac, A0_MBQ, LP, "t").tia_MBq_h;
      };
      const double d = (tia(1) - tia(-1)) / (2 * kept);
      u2 += d * d;
    }
  MESSAGE("u(TIA) " << known.tia_u_MBq_h << " -> " << uncertain.tia_u_MBq_h << " (expected " << std::sqrt(u2) << ", "
                    << shortened << " shifts shortened)");
  CHECK(shortened >= 1);  // the case in point
  CHECK(std::sqrt(u2) > 1.03 * known.tia_u_MBq_h);  // the correlations' part of u visible to the 1 % below
  REQUIRE(std::isfinite(uncertain.tia_u_MBq_h));
  // 1 %: as the E1 case above (the delta method on the MAP's parameters against differenced TIAs)
  CHECK(uncertain.tia_u_MBq_h == doctest::Approx(std::sqrt(u2)).epsilon(0.01));
  CHECK(has_note(uncertain, "shifted by a fraction of the standard error to keep Omega positive definite"));
}

TEST_CASE("population, full Omega: refused for a VOI kind of fewer than 50 TACs") {
  // Review of 0.17 (finding 2): from 20 TACs a full Omega learned a correlation of 0.92 where the
  // truth has none, and the 2-scan MAP intervals of new TACs covered 38 / 66 % at 68 / 95 %: below
  // POPULATION_MIN_TACS a full Omega is an input error naming the kind and its TACs, not a fit.
  const auto c = e1_cohort(POPULATION_MIN_TACS - 1, 0.0, LEARN_TIMES, 20261209u);
  PopulationOptions o;
  o.candidates = {"E1"};
  o.threads = 1;
  o.omega_structure = OmegaStructure::full;
  try {
    learn_population(c.tacs, std::vector<double>(c.tacs.size(), A0_MBQ), LP, o, "t.csv");
    FAIL("a full Omega was learned from 49 TACs");
  } catch (const InputError& e) {
    const std::string what = e.what();
    CHECK(what.find("kidneys") != std::string::npos);
    CHECK(what.find("49") != std::string::npos);
    CHECK(what.find("--omega diagonal") != std::string::npos);
  }
  o.omega_structure = OmegaStructure::diagonal;  // the diagonal one is learned (with its warning on MAPs)
  CHECK(learn_population(c.tacs, std::vector<double>(c.tacs.size(), A0_MBQ), LP, o, "t.csv").size() == 1);
}
