#include "lutdose/quantification/quantification.h"

#include <algorithm>
// fpclassify first: Boost 1.74's pchip.hpp calls isnan unqualified before declaring it
#include <boost/math/special_functions/fpclassify.hpp>
#include <boost/math/interpolators/pchip.hpp>
#include <boost/math/special_functions/lambert_w.hpp>
#include <cmath>

#include "lutdose/error.h"

namespace lutdose {

std::string to_string(DeadTimeModel m) {
  switch (m) {
    case DeadTimeModel::none: return "none";
    case DeadTimeModel::paralysable: return "paralysable";
    case DeadTimeModel::non_paralysable: return "non-paralysable";
  }
  return "?";
}

std::string to_string(DecayCorrection d) {
  switch (d) {
    case DecayCorrection::none: return "none";
    case DecayCorrection::acquisition_start: return "acquisition-start";
    case DecayCorrection::reference: return "reference";
  }
  return "?";
}

std::string to_string(TimingConvention t) {
  return t == TimingConvention::acquisition_start ? "acquisition-start" : "mid-frame";
}

double observed_rate_cps(DeadTimeModel m, double r_t, double tau) {
  switch (m) {
    case DeadTimeModel::none: return r_t;
    case DeadTimeModel::paralysable: return r_t * std::exp(-r_t * tau);
    case DeadTimeModel::non_paralysable: return r_t / (1 + r_t * tau);
  }
  return r_t;
}

double true_rate_cps(DeadTimeModel m, double r_o, double tau, const std::string& where) {
  const double x = r_o * tau;
  switch (m) {
    case DeadTimeModel::none: return r_o;
    case DeadTimeModel::paralysable:
      // R_t = -W0(-R_o tau) / tau, defined for R_o tau <= 1/e (methods.md §1.3)
      if (x > std::exp(-1.0))
        throw_input_error(where, "observed_rate_cps", format_number(r_o),
                          "a rate below paralysable saturation 1/(e tau) = " +
                              format_number(std::exp(-1.0) / tau) + " cps (the measurement is saturated)");
      return x == 0 ? 0.0 : -boost::math::lambert_w0(-x) / tau;
    case DeadTimeModel::non_paralysable:
      if (x >= 1.0)
        throw_input_error(where, "observed_rate_cps", format_number(r_o),
                          "a rate below non-paralysable saturation 1/tau = " + format_number(1.0 / tau) +
                              " cps");
      return r_o / (1 - x);
  }
  return r_o;
}

double decay_in_frame_factor(double lambda, double duration_h) {
  const double x = lambda * duration_h;
  return x == 0 ? 1.0 : -std::expm1(-x) / x;
}

double mid_frame_factor(double lambda, double duration_h) {
  const double x = lambda * duration_h / 2;
  return x == 0 ? 1.0 : x / std::sinh(x);
}

std::vector<std::string> RecoveryTable::problems(const std::string& where) const {
  std::vector<std::string> p;
  if (volume_mL.size() < 2) p.push_back(where + ".volume_mL: needs at least 2 volumes");
  if (rc.size() != volume_mL.size())
    p.push_back(where + ".rc: has " + std::to_string(rc.size()) + " values; expected one per volume (" +
                std::to_string(volume_mL.size()) + ")");
  if (!rc_u.empty() && rc_u.size() != volume_mL.size())
    p.push_back(where + ".rc_u: has " + std::to_string(rc_u.size()) + " values; expected one per volume");
  for (size_t i = 0; i < volume_mL.size(); ++i) {
    if (!(volume_mL[i] > 0) || !std::isfinite(volume_mL[i]))
      p.push_back(where + ".volume_mL[" + std::to_string(i) + "] is " + format_number(volume_mL[i]) +
                  "; expected a volume > 0 mL");
    if (i > 0 && !(volume_mL[i] > volume_mL[i - 1]))
      p.push_back(where + ".volume_mL[" + std::to_string(i) + "] is " + format_number(volume_mL[i]) +
                  "; expected volumes strictly increasing");
  }
  for (size_t i = 0; i < rc.size(); ++i) {
    if (!(rc[i] > 0 && rc[i] <= 1))
      p.push_back(where + ".rc[" + std::to_string(i) + "] is " + format_number(rc[i]) +
                  "; expected a recovery coefficient in (0, 1]");
    if (i > 0 && rc[i] < rc[i - 1])
      p.push_back(where + ".rc[" + std::to_string(i) + "] is " + format_number(rc[i]) +
                  "; expected RC non-decreasing with volume (previous " + format_number(rc[i - 1]) + ")");
  }
  for (size_t i = 0; i < rc_u.size(); ++i)
    if (!(rc_u[i] >= 0) || !std::isfinite(rc_u[i]))
      p.push_back(where + ".rc_u[" + std::to_string(i) + "] is " + format_number(rc_u[i]) +
                  "; expected an uncertainty >= 0");
  if (!(floor > 0 && floor <= 1))
    p.push_back(where + ".floor is " + format_number(floor) + "; expected a value in (0, 1]");
  return p;
}

double RecoveryTable::rc_at(double v, const std::string& where) const {
  if (!(v >= volume_mL.front()))
    throw_input_error(where, "volume_mL", format_number(v),
                      "a volume within the recovery table (smallest " + format_number(volume_mL.front()) +
                          " mL); RC is not extrapolated below the smallest calibrated volume");
  if (v >= volume_mL.back()) return rc.back();
  if (volume_mL.size() < 4) {  // Boost's PCHIP needs 4 points; fewer: linear in log V (monotone too)
    const auto it = std::upper_bound(volume_mL.begin(), volume_mL.end(), v);
    const size_t i = static_cast<size_t>(it - volume_mL.begin());
    const double f = std::log(v / volume_mL[i - 1]) / std::log(volume_mL[i] / volume_mL[i - 1]);
    return rc[i - 1] + f * (rc[i] - rc[i - 1]);
  }
  std::vector<double> x(volume_mL.size()), y(rc);
  std::transform(volume_mL.begin(), volume_mL.end(), x.begin(), [](double a) { return std::log(a); });
  const boost::math::interpolators::pchip<std::vector<double>> spline(std::move(x), std::move(y));
  return spline(std::log(v));
}

double RecoveryTable::dln_rc_dln_volume(double v) const {
  if (v >= volume_mL.back()) return 0.0;
  // Central difference in ln V (one-sided at the lower end of the table); step 1e-5 in ln V:
  // the interpolant is a cubic in ln V, so the truncation error is ~1e-10.
  const double h = 1e-5;
  const double lo = std::max(std::log(v) - h, std::log(volume_mL.front()));
  const double hi = std::log(v) + h;
  // exp(log(V)) can land one ulp below V: the lower end is the table's first volume itself.
  const double v_lo = lo <= std::log(volume_mL.front()) ? volume_mL.front() : std::exp(lo);
  return (std::log(rc_at(std::exp(hi), "")) - std::log(rc_at(v_lo, ""))) / (hi - lo);
}

double RecoveryTable::rc_u_at(double v) const {
  if (rc_u.empty()) return 0.0;
  if (v <= volume_mL.front()) return rc_u.front();
  if (v >= volume_mL.back()) return rc_u.back();
  const auto it = std::upper_bound(volume_mL.begin(), volume_mL.end(), v);
  const size_t i = static_cast<size_t>(it - volume_mL.begin());
  const double f = std::log(v / volume_mL[i - 1]) / std::log(volume_mL[i] / volume_mL[i - 1]);
  return rc_u[i - 1] + f * (rc_u[i] - rc_u[i - 1]);
}

}  // namespace lutdose
