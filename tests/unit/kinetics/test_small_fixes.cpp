// The smaller findings of issue 11 (item 8) on kinetics, one test each (the recovery-table one is in
// tests/unit/quantification/test_quantification.cpp).
#include <doctest/doctest.h>

#include <cmath>

#include "lutdose/kinetics/fitting.h"

using namespace lutdose;

namespace {
const double LP_SF = std::log(2.0) / (6.647 * 24.0);  // Lu-177, ICRP-107 half-life 6.647 d
Eigen::VectorXd sf_vec(std::initializer_list<double> v) {
  Eigen::VectorXd x(static_cast<Eigen::Index>(v.size()));
  Eigen::Index i = 0;
  for (double d : v) x(i++) = d;
  return x;
}
}  // namespace

TEST_CASE("proportional-model AIC is the Gaussian likelihood's, with its sum 2 ln f term") {
  // sigma_i = b f_i with b estimated: -2 ln L = n ln(RSS_w/n) + 2 sum ln f_i + const, so
  // AIC = n ln(RSS_w/n) + 2 sum ln f_i + 2K. The f_i differ between functions, so the term does
  // not cancel between candidates.
  const Eigen::VectorXd t = sf_vec({1, 4, 24, 48, 96, 168});
  const Eigen::VectorXd y = sf_vec({60, 95, 88, 70, 45, 21});
  FitOptions o;
  o.error_model = ErrorModel::proportional_model;
  for (const char* id : {"E1", "E2u"}) {
    CAPTURE(id);
    const auto c = fit_function(*models::find_exponential(id), t, y, Eigen::VectorXd(), LP_SF, o);
    REQUIRE(c.fitted);
    const double n = 6;
    const double expected = n * std::log(c.weighted_rss / n) + 2 * c.fitted_MBq.array().log().sum() + 2 * c.n_parameters;
    CHECK(c.aic == doctest::Approx(expected).epsilon(1e-12));  // same formula, rounding only
  }
}

TEST_CASE("proportional-model: no F-test between RSS under different weights") {
  const Eigen::VectorXd t = sf_vec({1, 4, 24, 48, 96, 168});
  const Eigen::VectorXd y = sf_vec({60, 95, 88, 70, 45, 21});
  FitOptions o;
  o.error_model = ErrorModel::proportional_model;
  o.candidates = {"E1", "E2u", "E2"};
  const TacFit fit = fit_tac(t, y, Eigen::VectorXd(), LP_SF, o, "F-test");
  CHECK(fit.f_tests.empty());
  bool said = false;
  for (const auto& n : fit.notes) said = said || n.find("F-test") != std::string::npos;
  CHECK(said);
  o.error_model = ErrorModel::proportional;  // same weights 1/y_i^2 for every function: F-tests done
  CHECK_FALSE(fit_tac(t, y, Eigen::VectorXd(), LP_SF, o, "F-test").f_tests.empty());
}

TEST_CASE("E2 and E2b are one model: they do not split the Akaike weight") {
  // A biexponential clearance (both amplitudes positive): E2 fits it with A2 > 0, E2b reaches the
  // same curve with its A2 < 0. Listing E2b as well must not change E2's Akaike weight or the
  // model-averaged TIA.
  const auto& e2 = *models::find_exponential("E2");
  const Eigen::VectorXd t = sf_vec({0.5, 2, 6, 24, 48, 96, 168});
  Eigen::VectorXd y = e2.evaluate(t, sf_vec({130.0, 25.0, 0.0081, 0.22}), LP_SF);
  y(2) *= 1.02, y(4) *= 0.98, y(5) *= 1.01;  // some scatter so the fits are not exact
  FitOptions o;
  o.candidates = {"E1", "E2u", "E2"};
  const TacFit without = fit_tac(t, y, Eigen::VectorXd(), LP_SF, o, "without E2b");
  o.candidates = {"E1", "E2u", "E2", "E2b"};
  const TacFit with = fit_tac(t, y, Eigen::VectorXd(), LP_SF, o, "with E2b");
  auto weight = [](const TacFit& f, const std::string& id) {
    for (const auto& c : f.candidates)
      if (c.function == id) return c.akaike_weight;
    return -1.0;
  };
  REQUIRE(weight(without, "E2") > 0);
  CHECK(weight(with, "E2") == doctest::Approx(weight(without, "E2")).epsilon(1e-6));  // fits agree to ~1e-8
  CHECK(with.averaged_tia_MBq_h == doctest::Approx(without.averaged_tia_MBq_h).epsilon(1e-6));
  CHECK(std::isnan(weight(with, "E2b")));
}

#include "lutdose/pipeline/pipeline.h"
#include "lutdose/kinetics/stp.h"

TEST_CASE("population single-time-point u(TIA) is second order: not zero at t = 1/lambda") {
  // E1 population curve, only the rate uncertain (sd s): TIA(lambda) = a e^{lambda t}/lambda. At
  // t = 1/lambda its first derivative is zero; to second order (Gaussian lambda)
  // var = h'^2 s^2 + h''^2 s^4 / 2 with h'' = a e^{lambda t}(t^2/lambda - 2t/lambda^2 + 2/lambda^3).
  const auto& e1 = *models::find_exponential("E1");
  const double lambda_bio = 0.01, lambda = lambda_bio + LP_SF, s = 0.004, a = 40;
  for (double t : {1 / lambda, 24.0, 200.0}) {
    CAPTURE(t);
    const Eigen::VectorXd p = sf_vec({a * std::exp(lambda * t), lambda_bio});
    Eigen::MatrixXd cov = Eigen::MatrixXd::Zero(2, 2);
    cov(1, 1) = s * s;
    const StpEstimate e = tia_population_curve(t, a, e1, p, LP_SF, cov, 0.0);
    const double ex = a * std::exp(lambda * t);
    const double h1 = ex * (t / lambda - 1 / (lambda * lambda));
    const double h2 = ex * (t * t / lambda - 2 * t / (lambda * lambda) + 2 / (lambda * lambda * lambda));
    const double expected = std::sqrt(h1 * h1 * s * s + 0.5 * h2 * h2 * s * s * s * s);
    CHECK(e.tia_u_population_MBq_h > 0);
    // the Hessian is taken by central differences of the analytic gradient: ~1e-6 relative
    CHECK(e.tia_u_population_MBq_h == doctest::Approx(expected).epsilon(1e-5));
  }
}

TEST_CASE("Hanscheid beyond the physical half-life: the stored curve integrates to the reported TIA") {
  // One point at 168 h > T_phys = 159.528 h: T_eff = t would be slower than physical decay. The
  // curve is E1 with lambda_bio >= 0, so T_eff is capped at T_phys and the TIA is that curve's
  // integral a e^{lambda_p t}/lambda_p (not 2 a t/ln2, 5 % above the curve's integral).
  TacSeries s;
  s.voi = "kidneys";
  s.time_h = sf_vec({168.0});
  s.activity_MBq = sf_vec({40.0});
  s.volume_mL = {290.0};
  s.mass_g = {NAN};
  s.lines = {2};
  RunOptions o;
  o.data_dir = LUTDOSE_TEST_DATA_DIR;
  o.administered_MBq = 7400;
  o.reduced = ReducedSchedule::hanscheid;
  const RunResult r = run_tac_table({s}, o);
  const auto& fit = r.cycles[0].vois[0].fit;
  const auto& c = fit.candidates[0];
  const double curve_integral = c.parameters(0) / (c.parameters(1) + LP_SF);
  CHECK(fit.tia_MBq_h == doctest::Approx(curve_integral).epsilon(1e-12));  // rounding only
  CHECK(fit.tia_MBq_h == doctest::Approx(40.0 * std::exp(LP_SF * 168) / LP_SF).epsilon(1e-12));
  bool said = false;
  for (const auto& n : fit.notes) said = said || n.find("physical half-life") != std::string::npos;
  CHECK(said);
}
