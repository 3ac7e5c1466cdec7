// Follow-ups of issues 10 and 11: model averaging over accepted fits only.
#include <doctest/doctest.h>

#include <cmath>

#include "lutdose/kinetics/fitting.h"

using namespace lutdose;
using Eigen::VectorXd;

namespace {
const double kLambdaLu177_per_h = std::log(2.0) / (6.647 * 24.0);  // ICRP-107 half-life 6.647 d
}

TEST_CASE("model averaging: fits that fail the acceptance criteria get no Akaike weight") {
  // Bi-exponential data with a few per cent noise: the richer functions (E3...) over-fit and are
  // flagged, yet they have an AICc; they must not enter the average (issue 11 item 4).
  const auto& e2 = *models::find_exponential("E2");
  const VectorXd t = (VectorXd(7) << 0.5, 2, 6, 24, 48, 96, 168).finished();
  VectorXd y = e2.evaluate(t, (VectorXd(4) << 125.0, 22.0, 0.0081, 0.22).finished(), kLambdaLu177_per_h);
  const double noise[] = {0.03, -0.05, 0.02, 0.04, -0.03, 0.01, -0.02};
  for (Eigen::Index i = 0; i < t.size(); ++i) y(i) *= 1 + noise[i];
  FitOptions o;
  o.model_averaging = true;
  const TacFit fit = fit_tac(t, y, VectorXd(), kLambdaLu177_per_h, o, "averaging");
  int rejected_with_aicc = 0;
  double sum = 0, avg = 0;
  for (const auto& c : fit.candidates) {
    CAPTURE(c.function);
    if (c.fitted && std::isfinite(c.aicc) && c.tia_MBq_h > 0 && !c.accepted) ++rejected_with_aicc;
    if (!c.accepted) CHECK(std::isnan(c.akaike_weight));
    if (!std::isnan(c.akaike_weight)) {
      sum += c.akaike_weight;
      avg += c.akaike_weight * c.tia_MBq_h;
    }
  }
  REQUIRE(rejected_with_aicc > 0);  // otherwise this test could not fail
  CHECK(sum == doctest::Approx(1.0).epsilon(1e-14));  // weights normalised; only rounding
  CHECK(fit.averaged_tia_MBq_h == doctest::Approx(avg).epsilon(1e-14));  // same sum, only rounding
  CHECK(fit.tia_MBq_h == doctest::Approx(avg).epsilon(1e-14));
}
