// A fitted candidate of results.json as a sampled curve with its coverage band, for plots
// (docs/report.md). The curve is the exponential family's own evaluation
// (models/exponential.h: ExponentialFunction::evaluate and jacobian); the band is the delta
// method on the curve: u(A(t))^2 = J(t) C J(t)^T with the candidate's parameter covariance C,
// times the coverage factor of the candidate's degrees of freedom (dosimetry/uncertainty.h).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lutdose::report {

//! A sampled curve: A(t) [MBq] at t [h], the band's bounds (NaN where unknown; low >= 0), and
//! why a curve or band is missing ("" when present).
struct SampledCurve {
  std::vector<double> t_h, a_MBq, low_MBq, high_MBq;
  bool drawn = false;
  bool band = false;
  std::string why_not;       //!< no curve: e.g. "compartment model: not a function of the exponential family"
  std::string band_why_not;  //!< no band: e.g. "covariance unknown"
};

//! Samples `candidate` (an element of fit.candidates[] of results.json) at n times evenly spread
//! over [0, t_max_h] (n >= 2, t_max_h > 0) with physical decay lambda_p_per_h [1/h]; the band is
//! the `level` coverage interval (e.g. 0.95) from its covariance and tia_u_dof. Throws nothing:
//! a candidate it cannot evaluate gives drawn false and the reason.
SampledCurve sample_candidate(const nlohmann::json& candidate, double lambda_p_per_h, double t_max_h, int n,
                              double level);

}  // namespace lutdose::report
