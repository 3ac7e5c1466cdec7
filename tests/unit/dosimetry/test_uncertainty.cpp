// Honest uncertainties (issue #11): unknown is never zero, goodness of fit under absolute sigmas,
// degrees of freedom and coverage intervals that cover what they claim.
#include <doctest/doctest.h>

#include "../result_lookup.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "../cohort.h"
#include "lutdose/io/case_file.h"
#include "lutdose/error.h"
#include "lutdose/kinetics/fitting.h"
#include "lutdose/pipeline/pipeline.h"
#include "lutdose/kinetics/stp.h"
#include "lutdose/dosimetry/uncertainty.h"
#include "../test_util.h"

using namespace lutdose;
using Eigen::VectorXd;

namespace {
const std::string DATA = LUTDOSE_TEST_DATA_DIR;
const std::string SRC = LUTDOSE_TEST_SOURCE_DIR;

using test::target;

RunOptions kidney_run(const std::string& reduced) {
  RunOptions o;
  o.data_dir = DATA;
  o.administered_MBq = 7400;
  DoseOptions d;
  d.phantom = "icrp89-male";
  o.dose = d;
  o.reduced = *parse_reduced_schedule(reduced);
  return o;
}

TacSeries series(const std::string& voi, std::vector<double> t, std::vector<double> a) {
  TacSeries s;
  s.voi = voi;
  s.time_h = Eigen::Map<VectorXd>(t.data(), static_cast<Eigen::Index>(t.size()));
  s.activity_MBq = Eigen::Map<VectorXd>(a.data(), static_cast<Eigen::Index>(a.size()));
  s.volume_mL = std::vector<double>(t.size(), 290.0);
  s.mass_g = std::vector<double>(t.size(), NAN);
  for (size_t i = 0; i < t.size(); ++i) s.lines.push_back(static_cast<int>(i) + 2);
  return s;
}
}  // namespace

TEST_CASE("finding 1: kidneys, one point at 96 h, Hanscheid: u(D) is not 0") {
  const RunResult r = run_tac_table({series("kidneys", {96.0}, {40.0})}, kidney_run("hanscheid"));
  const TargetDose& d = target(r.cycles[0], "kidneys");
  CHECK_FALSE(d.dose_u_Gy == 0.0);
  CHECK(d.dose_u_Gy > 0.0);
  CHECK(std::isfinite(r.cycles[0].vois[0].fit.tia_u_MBq_h));
}

TEST_CASE("finding 1: a fit without degrees of freedom has no u(TIA): the dose's u is unknown, not 0") {
  // relative weights, E1 forced through 2 points: n - K = 0, the variance cannot be estimated
  RunOptions o = kidney_run("none");
  o.fit.forced_function = "E1";
  const RunResult r = run_tac_table({series("kidneys", {24.0, 96.0}, {60.0, 40.0})}, o);
  CHECK(std::isnan(r.cycles[0].vois[0].fit.tia_u_MBq_h));
  const TargetDose& d = target(r.cycles[0], "kidneys");
  CHECK(std::isnan(d.dose_u_Gy));
  REQUIRE(d.u_missing.size() == 1);
  CHECK(d.u_missing[0] == "fit:cycle1:kidneys");
}

TEST_CASE("finding 2: Patient_004 with the Poisson error model: chi-square flagged, covariance scaled") {
  std::ifstream in(SRC + "/examples/snmmi-patient004/case.json");
  nlohmann::json j;
  in >> j;
  j["fit"]["error_model"] = "poisson";
  const std::string path = test::write_temp(j.dump());
  const RunResult r = run_case(load_case_file(path), DATA);
  std::remove(path.c_str());
  for (const auto& v : r.cycles[0].vois) {
    CAPTURE(v.tac.voi);
    REQUIRE(v.fit.selected >= 0);
    const auto& c = v.fit.candidates[static_cast<size_t>(v.fit.selected)];
    // the issue measured reduced chi-square 240-5710 for these VOIs
    CHECK(std::count(c.warnings.begin(), c.warnings.end(), "chi_square_p_below_0.01") == 1);
    // Birge: u(TIA) is no longer 15-75x below the proportional model's 1-4 % (0.07-0.11 %)
    CHECK(v.fit.tia_u_MBq_h / v.fit.tia_MBq_h > 0.005);
  }
}

TEST_CASE("coverage factors and Welch-Satterthwaite: analytic values") {
  // Student-t quantiles t_{0.975, nu} (any table): 12.7062 (1), 4.3027 (2), 2.77645 (4); normal 1.95996
  CHECK(coverage_factor(1, 0.95) == doctest::Approx(12.7062).epsilon(1e-5));
  CHECK(coverage_factor(2, 0.95) == doctest::Approx(4.3027).epsilon(1e-5));
  CHECK(coverage_factor(4, 0.95) == doctest::Approx(2.77645).epsilon(1e-5));
  CHECK(coverage_factor(INFINITY, 0.95) == doctest::Approx(1.959964).epsilon(1e-6));
  CHECK(coverage_factor(INFINITY, LEVEL_68) == doctest::Approx(1.0).epsilon(1e-9));
  CHECK(std::isnan(coverage_factor(0, 0.95)));
  // Closed forms at full double precision (the quantile is evaluated in double, not long double):
  // nu = 1 (Cauchy): tan(pi (p - 1/2)); nu = 2: (2p - 1) / sqrt(2 p (1 - p)), p = (1 + level) / 2.
  // 1e-13 relative: a few hundred units in the last place, far above double rounding, far below
  // any printed digit.
  for (double level : {0.5, 0.682689492137, 0.9, 0.95, 0.99}) {
    const double p = (1 + level) / 2;
    CAPTURE(level);
    CHECK(coverage_factor(1, level) == doctest::Approx(std::tan(std::acos(-1.0) * (p - 0.5))).epsilon(1e-13));
    CHECK(coverage_factor(2, level) == doctest::Approx((2 * p - 1) / std::sqrt(2 * p * (1 - p))).epsilon(1e-13));
  }
  // two equal contributions with 4 dof each: (2u^2)^2 / (2 u^4 / 4) = 8
  CHECK(welch_satterthwaite({0.3, 0.3}, {4, 4}) == doctest::Approx(8.0).epsilon(1e-12));
  // one estimated contribution among stated ones: nu_eff = nu (u_c / u_1)^4
  CHECK(welch_satterthwaite({1.0, 1.0}, {3, INFINITY}) == doctest::Approx(3.0 * 4).epsilon(1e-12));
  CHECK(std::isinf(welch_satterthwaite({1.0, 2.0}, {INFINITY, INFINITY})));
  CHECK(std::isnan(welch_satterthwaite({NAN}, {INFINITY})));
}

namespace {
// Root-mean-square error of c A against the true TIA A g(lambda), g = e^{lambda t}/lambda, over
// lambda = mean exp(s z) (log-normal, s from the CV) or lambda = mean + sd z (normal), z ~ N(0,1),
// by Simpson's rule on z in [-8, 8].
double exact_stp_u(double t, double a, double c, double mean, double sd, bool lognormal) {
  const int m = 4000;
  const double h = 16.0 / m, s = std::sqrt(std::log(1 + sd * sd / (mean * mean)));
  double mse = 0;
  for (int i = 0; i <= m; ++i) {
    const double z = -8 + i * h, w = (i == 0 || i == m) ? 1 : (i % 2 ? 4 : 2);
    const double l = lognormal ? mean * std::exp(-s * s / 2 + s * z) : mean + sd * z;
    mse += w * std::exp(-z * z / 2) / std::sqrt(2 * M_PI) * std::pow(a * (std::exp(l * t) / l - c), 2);
  }
  return std::sqrt(mse * h / 3);
}
}  // namespace

TEST_CASE("single-time-point u: second order against the exact mean square error over the population") {
  // kidneys (data/kinetics/population_kinetics.csv): lambda_eff 0.0123776 +- 0.00287338 1/h (23 %)
  const double lm = 0.0123776, ls = 0.00287338, a = 40.0;
  for (double t : {24.0, 48.0, 96.0, 168.0}) {
    CAPTURE(t);
    for (const double c : {2 * t / std::log(2.0), std::exp(lm * t) / lm}) {  // Hanscheid, Madsen
      // a small spread (CV 5 %): the expansion converges; the exact normal case within 1 %
      CHECK(stp_population_u(t, a, 0.0, c, lm, 0.05 * lm) ==
            doctest::Approx(exact_stp_u(t, a, c, lm, 0.05 * lm, false)).epsilon(0.01));
      // the kidneys' 23 %, against a log-normal rate (closer to populations, K17): second order
      // is an approximation there (the moments beyond the fourth of a skewed rate are left out);
      // docs/validation.md gives the ratios, 0.75-1.16 at 24-168 h: allow 0.7-1.2
      const double exact = exact_stp_u(t, a, c, lm, ls, true);
      const double u = stp_population_u(t, a, 0.0, c, lm, ls);
      MESSAGE("t " << t << " h, c " << c << " h: second order / exact (log-normal rate) " << u / exact);
      CHECK(u / exact > 0.7);
      CHECK(u / exact < 1.2);
    }
  }
  // the activity's own uncertainty adds in quadrature, scaled by c
  const double u0 = stp_population_u(96, a, 0.0, 277.0, lm, ls), u1 = stp_population_u(96, a, 2.0, 277.0, lm, ls);
  CHECK(u1 * u1 - u0 * u0 == doctest::Approx(277.0 * 277.0 * 4.0).epsilon(1e-9));
}

TEST_CASE("chi-square under absolute sigmas: right sigmas flagged at the documented rate, wrong ones always") {
  // E1 TACs with 6 points and Gaussian noise of known sigma (5 % of the noise-free value)
  std::mt19937_64 rng(11);
  std::normal_distribution<double> z(0.0, 1.0);
  const VectorXd t = (VectorXd(6) << 1, 4, 24, 48, 96, 168).finished();
  const double lp = cohort::lambda_p_per_h();
  FitOptions o;
  o.error_model = ErrorModel::input;
  o.forced_function = "E1";
  const auto& e1 = *models::find_exponential("E1");
  const int N = 400;
  int flagged = 0, flagged_small = 0;
  for (int k = 0; k < N; ++k) {
    const VectorXd f = e1.evaluate(t, (VectorXd(2) << 150.0, 0.008).finished(), lp);
    const VectorXd sigma = 0.05 * f;
    VectorXd y = f;
    for (Eigen::Index i = 0; i < y.size(); ++i) y(i) += sigma(i) * z(rng);
    const TacFit right = fit_tac(t, y, sigma, lp, o, "chi2");
    const TacFit small = fit_tac(t, y, sigma / 10, lp, o, "chi2");  // sigmas stated 10x too small
    const auto& c = right.candidates[0];
    CHECK(c.chi_square_dof == 4);
    flagged += c.covariance_scaled;
    flagged_small += small.candidates[0].covariance_scaled;
    if (small.candidates[0].covariance_scaled) {
      // Birge: the scaled u is the one with the right sigmas (chi-square scales by 100, u by 10),
      // up to the ratio of the estimated to the true variance
      CHECK(small.tia_u_dof == 4);
      // (1 when the right fit was itself flagged and scaled)
      CHECK(small.tia_u_MBq_h / right.tia_u_MBq_h ==
            doctest::Approx(c.covariance_scaled ? 1.0 : std::sqrt(c.reduced_chi_square)).epsilon(1e-6));
    }
  }
  // p < 0.01 happens to 1 % of right fits: binomial sd sqrt(400 0.01 0.99) = 2 fits; allow 3 sd
  CHECK(flagged <= 4 + 6);
  // with sigmas 10x too small the chi-square (100x the right one) is beyond the 99th percentile
  // for nearly every TAC (P(chi2_4 > 13.3 / 100 ...) = 1 - P(chi2_4 < 0.133) > 0.99)
  CHECK(flagged_small >= 0.97 * N);
}

TEST_CASE("coverage on a seeded cohort (5-6 scans, 5-15 % noise): 95 % and 68 % intervals cover what they claim") {
  // small version of benchmarks/coverage_study.cpp: 4 VOI kinds x 2 schedules x 2 noise levels
  const std::vector<VectorXd> schedules = {(VectorXd(5) << 4, 24, 48, 96, 168).finished(),
                                           (VectorXd(6) << 1, 4, 24, 48, 96, 168).finished()};
  int n = 0, in68 = 0, in95 = 0;
  unsigned long long seed = 100;
  for (const auto& kind : cohort::voi_kinds())
    for (const auto& t : schedules)
      for (double noise : {0.05, 0.15}) {
        const cohort::Study s = cohort::run_study(kind, t, noise, 40, ++seed, FitOptions{});
        n += s.with_u;
        in68 += s.in68;
        in95 += s.in95;
      }
  const double c68 = static_cast<double>(in68) / n, c95 = static_cast<double>(in95) / n;
  MESSAGE("coverage of " << n << " TACs: 68 % interval " << 100 * c68 << " %, 95 % interval " << 100 * c95 << " %");
  // the targets 63-73 % and 92-97 %, widened by 2 binomial sd of ~600 TACs (1.9 % and
  // 0.9 %) since this small study only samples them
  CHECK(c68 >= 0.63 - 0.04);
  CHECK(c68 <= 0.73 + 0.04);
  CHECK(c95 >= 0.92 - 0.02);
  CHECK(c95 <= 0.97 + 0.02);
}

TEST_CASE("default error model by VOI kind: proportional-model for tumours, proportional for organs") {
  // the choice of docs/validation.md's error-model study; an explicit error model applies to all
  RunOptions o;
  o.data_dir = DATA;
  const auto tac = [](const std::string& voi) {
    return series(voi, {1, 4, 24, 48, 96, 168}, {20.0, 35.0, 40.0, 33.0, 22.0, 10.0});
  };
  const RunResult r = run_tac_table({tac("kidneys"), tac("tumour_1")}, o);
  auto reweighted = [](const VoiResult& v) {
    return v.fit.candidates[static_cast<size_t>(v.fit.selected)].reweighting_iterations > 0;
  };
  CHECK_FALSE(reweighted(r.cycles[0].vois[0]));
  CHECK(reweighted(r.cycles[0].vois[1]));
  o.fit.error_model_by_voi_kind = false;  // as --error-model proportional
  const RunResult p = run_tac_table({tac("kidneys"), tac("tumour_1")}, o);
  CHECK_FALSE(reweighted(p.cycles[0].vois[1]));
}

TEST_CASE("finding 2: scatter-corrected counts: the scatter window's variance is in the Poisson sigma") {
  // C = P - k W with P and W Poisson: Var C = P + k^2 W = C + k W + k^2 W
  std::ifstream in(SRC + "/examples/snmmi-patient004/case.json");
  nlohmann::json j;
  in >> j;
  auto& m = j["cycles"][0]["timepoints"][0]["vois"]["kidney_left"];
  const double c = m["counts"].get<double>(), w = 200000.0, k = 1.1;
  m["scatter_window_counts"] = w;
  m["scatter_window_k"] = k;
  const std::string path = test::write_temp(j.dump());
  const RunResult r = run_case(load_case_file(path), DATA);
  std::remove(path.c_str());
  const auto& q = r.cycles[0].vois[0].quantification;
  REQUIRE(r.cycles[0].vois[0].tac.voi == "kidney_left");
  CHECK(q[0].u_poisson_rel == doctest::Approx(std::sqrt(c + k * w + k * k * w) / c).epsilon(1e-12));
  CHECK(q[1].u_poisson_rel == doctest::Approx(1 / std::sqrt(q[1].value)).epsilon(1e-12));  // none given
  // one without the other is bad input
  m.erase("scatter_window_k");
  const std::string bad = test::write_temp(j.dump());
  CHECK_THROWS_AS(load_case_file(bad), InputError);
  std::remove(bad.c_str());
}

TEST_CASE("finding 1: Hanscheid without population kinetics for the VOI: u unknown with its reason, not 0") {
  RunOptions o;
  o.data_dir = DATA;
  o.reduced = ReducedSchedule::hanscheid;
  const RunResult r = run_tac_table({series("pancreas", {96.0}, {4.0})}, o);  // no pancreas row
  const TacFit& f = r.cycles[0].vois[0].fit;
  CHECK(std::isnan(f.tia_u_MBq_h));
  CHECK(std::isnan(f.tia_ci95_MBq_h.low));
  CHECK(f.tia_u_unknown_reason.find("population") != std::string::npos);
}

TEST_CASE("finding 1: a trapezoid fallback under relative weights gets u from the residual scatter, with its dof") {
  // the rising TAC: no fit meets the criteria, the result is numerical (fallback)
  const VectorXd t = (VectorXd(4) << 4, 24, 96, 168).finished(), y = (VectorXd(4) << 10, 20, 30, 35).finished();
  const TacFit f = fit_tac(t, y, VectorXd(), cohort::lambda_p_per_h(), FitOptions{}, "rising");
  REQUIRE(f.method == "trapezoid");
  CHECK(std::isfinite(f.tia_u_MBq_h));
  CHECK(f.tia_u_MBq_h > 0);
  CHECK(f.tia_u_dof == 2);  // E1, the fitted candidate with the most degrees of freedom: 4 - 2
  CHECK(f.tia_ci95_MBq_h.low < f.tia_MBq_h);
}

TEST_CASE("issue 11 follow-up: TIA and dose intervals never go below zero (lower bound max(0, .))") {
  // value 7, u 5 with 2 dof: symmetric Student-t 95 % would be 7 -+ 4.3027 * 5 = [-14.5, 28.5]
  // (t_{0.975,2} = 4.3027, any table); a TIA or dose cannot be negative, so the low bound is 0
  // and the high bound is unchanged.
  TacFit f;
  f.method = "trapezoid";
  f.tia_MBq_h = 7;
  f.tia_u_MBq_h = 5;
  f.tia_u_dof = 2;
  set_tia_intervals(f);
  CHECK(f.tia_ci95_MBq_h.low == 0.0);
  CHECK(f.tia_ci95_MBq_h.high == doctest::Approx(7 + 4.3027 * 5).epsilon(1e-5));
  // 68 %: with 2 dof the t quantile has the closed form t = sqrt(2 q^2 / (1 - q^2)), q = 0.682689
  // -> 1.32128; 7 - 6.6 > 0, not truncated
  const double q = LEVEL_68, t68 = std::sqrt(2 * q * q / (1 - q * q));
  CHECK(f.tia_ci68_MBq_h.low == doctest::Approx(7 - t68 * 5).epsilon(1e-9));
  double u = 0, dof = 0;
  Interval ci68, ci95;
  std::vector<std::string> missing;
  // one input with sensitivity 7 Gy and u_rel 5/7 with 2 dof: u(D) = 5 Gy, same figures as above
  combine_uncertainty({7.0}, {"tia"}, {5.0 / 7.0}, {2.0}, 7.0, u, dof, ci68, ci95, missing);
  CHECK(u == doctest::Approx(5.0));
  CHECK(ci95.low == 0.0);
  CHECK(ci95.high == doctest::Approx(7 + 4.3027 * 5).epsilon(1e-5));
  // 68 % with u_rel 10: 7 - 1.32 * 70 < 0, truncated too
  combine_uncertainty({7.0}, {"tia"}, {10.0}, {2.0}, 7.0, u, dof, ci68, ci95, missing);
  CHECK(ci68.low == 0.0);
  CHECK(ci68.high > 7.0);
}
