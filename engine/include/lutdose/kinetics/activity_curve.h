// The activity of a source over time, A(t) [MBq] at t [h] after the reference time, from its TAC
// fit: used for dose-rate curves (BED), the residual of a previous cycle, and derived sources
// (red marrow from blood or from an L2-L4 VOI).
#pragma once

#include <functional>
#include <limits>
#include <vector>

#include "lutdose/io/tac_table.h"
#include "lutdose/kinetics/fitting.h"

namespace lutdose {

//! A(t) [MBq], t [h]: a sum of exponentials sum_i c_i exp(-k_i t) when the source's fit is one,
//! else a general function (trapezoid TACs, sampled compartment-model curves).
struct ActivityCurve {
  std::vector<double> c_MBq, k_per_h;     //!< sum c e^{-k t} (unused when `general` is set)
  std::function<double(double)> general;  //!< when not a sum of exponentials
  std::vector<double> scales_h;           //!< time scales [h] for numerical integration
  //! A general curve's exponential tail: for t >= tail_from_h [h], A(t) = sum tail_c_MBq
  //! e^{-tail_k_per_h (t - tail_from_h)} (a trapezoid's physical decay after its last point);
  //! tail_from_h infinite when the curve has none.
  double tail_from_h = std::numeric_limits<double>::infinity();
  std::vector<double> tail_c_MBq, tail_k_per_h;
  //! True when the curve is a sum of exponentials (closed-form integrals apply).
  bool exponential() const { return !general; }
  //! A(t) [MBq] at t [h]. Does not throw.
  double operator()(double t_h) const;
};

//! The curve of a fitted TAC: the selected exponential's terms (decay included, lambda_p [1/h]),
//! or for a trapezoid fit the head rule from 0 to the first point, linear between the points and
//! physical decay after the last. The selected candidate must be a function of the exponential
//! family (as every fit of fit_tac is). Does not throw.
ActivityCurve curve_of(const TacFit& fit, const TacSeries& tac, const FitOptions& o, double lambda_p);

//! `c` multiplied by `factor` (both the exponential coefficients and a general function).
ActivityCurve scaled(ActivityCurve c, double factor);

//! `c` divided by `divisor` (both the exponential coefficients and a general function).
ActivityCurve divided(ActivityCurve c, double divisor);

}  // namespace lutdose
