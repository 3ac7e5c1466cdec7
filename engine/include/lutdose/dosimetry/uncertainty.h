// Degrees of freedom and coverage intervals of standard uncertainties (GUM, JCGM 100:2008,
// §6.3 and annex G). Conventions: an uncertainty that is not known is NaN (null in the outputs),
// never 0; a degree of freedom that is infinite means the variance was stated, not estimated.
#pragma once

#include <limits>
#include <vector>

namespace lutdose {

//! A coverage interval [low, high] of a value (NaN bounds when the uncertainty is unknown).
struct Interval {
  double low = std::numeric_limits<double>::quiet_NaN();
  double high = std::numeric_limits<double>::quiet_NaN();
};

//! coverage_interval of a quantity that cannot be negative (a TIA, a dose): the low bound is
//! max(0, value - k u); the high bound is unchanged (docs/methods.md, "Coverage intervals").
//! value and u in the quantity's unit. Throws nothing.
Interval nonnegative_coverage_interval(double value, double u, double dof, double level);

//! Coverage factor k (dimensionless) of a two-sided interval value +- k u with probability `level`
//! (0 < level < 1): the Student-t quantile t_{(1+level)/2, dof} when the variance was estimated
//! from dof >= 1 degrees of freedom (GUM G.3), the normal quantile when dof is infinite.
//! Fractional dof (from Welch-Satterthwaite) are used as they are. NaN for dof < 1 or NaN, or a
//! level outside (0, 1). Throws nothing.
double coverage_factor(double dof, double level);

//! value +- k u with k = coverage_factor(dof, level), in the unit of value and u; NaN bounds when
//! value, u or k is not finite (u or dof unknown). Throws nothing.
Interval coverage_interval(double value, double u, double dof, double level);

//! Welch-Satterthwaite effective degrees of freedom of u_c^2 = sum_i u_i^2 (GUM G.4.1):
//! nu_eff = u_c^4 / sum_i u_i^4 / nu_i, with u_i the contributions c_i u(x_i) and nu_i their
//! degrees of freedom (infinite for stated, type-B inputs). Infinite when every nu_i is; NaN when
//! a contribution or dof is NaN or the sizes differ. Contributions in any one unit. Throws nothing.
double welch_satterthwaite(const std::vector<double>& contributions, const std::vector<double>& dof);

}  // namespace lutdose
