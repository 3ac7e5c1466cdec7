// Counts to activity (methods.md §1.2-1.5): calibration factor, frame duration and decay during
// the frame, dead-time correction, recovery coefficients, and decay-correction conventions.
#pragma once

#include <string>
#include <vector>

namespace lutdose {

//! Dead-time models (methods.md §1.3). R_t = true rate, R_o = observed rate, tau = dead time.
enum class DeadTimeModel {
  none,
  paralysable,      //!< R_o = R_t exp(-R_t tau); inverse by the principal Lambert-W branch
  non_paralysable,  //!< R_o = R_t / (1 + R_t tau)
};
//! "none", "paralysable", "non-paralysable". Throws nothing.
std::string to_string(DeadTimeModel m);

//! Observed rate [cps] for a true rate [cps] and dead time tau_s [s]. Throws nothing.
double observed_rate_cps(DeadTimeModel m, double true_rate_cps, double tau_s);
//! True rate [cps] for an observed rate [cps] and dead time tau_s [s] (paralysable: the principal
//! Lambert-W branch, the solution below the rate of the maximum). Throws InputError when the
//! observed rate is beyond
//! saturation (paralysable: R_o tau > 1/e; non-paralysable: R_o tau >= 1); `where` names it.
double true_rate_cps(DeadTimeModel m, double observed_rate_cps, double tau_s, const std::string& where);

//! Decay during a frame of duration T: k = (1 - e^{-lambda T}) / (lambda T) (< 1), so that
//! counts C = CF T A(t_start) k. lambda [1/h], T [h]; k = 1 for lambda T = 0. Throws nothing.
double decay_in_frame_factor(double lambda_per_h, double duration_h);
//! Mid-frame convention: A(t_mid) = C / (CF T) * x / sinh(x), x = lambda T / 2; lambda [1/h],
//! T [h]; returns x / sinh(x) (dimensionless, 1 for x = 0). Throws nothing.
double mid_frame_factor(double lambda_per_h, double duration_h);

//! Recovery coefficients of one protocol: RC(V) = A_measured / A_true for objects of volume V.
struct RecoveryTable {
  std::vector<double> volume_mL;  //!< strictly increasing, > 0
  std::vector<double> rc;         //!< in (0, 1], non-decreasing with volume
  std::vector<double> rc_u;       //!< standard uncertainties, or empty
  //! Below this RC the activity is not divided by RC: the point is flagged instead.
  double floor = 0.3;
  //! Problems with the table, each "FIELD: ...", empty when valid. `where` prefixes them.
  //! Throws nothing (the caller throws InputError with join_problems).
  std::vector<std::string> problems(const std::string& where) const;
  //! Monotone cubic (PCHIP, Boost.Math: Fritsch-Butland slopes, one-sided end slopes)
  //! interpolation in log volume, linear in log volume for tables of 2-3 points; above the
  //! largest volume the last RC (the plateau) is used; below the smallest it throws InputError
  //! (`where` names the VOI). volume_mL [mL]; RC dimensionless. Needs a valid table.
  double rc_at(double volume_mL, const std::string& where) const;
  //! u(RC) interpolated linearly in log volume (0 without rc_u), volume_mL [mL], constant outside
  //! the table. Throws nothing.
  double rc_u_at(double volume_mL) const;
  //! d ln RC / d ln V (dimensionless) at volume_mL [mL] inside the table (0 on the plateau above
  //! it). Throws nothing.
  double dln_rc_dln_volume(double volume_mL) const;
};

//! How the images' values relate to decay.
enum class DecayCorrection {
  none,               //!< counts collected over the frame as the activity decayed (default)
  acquisition_start,  //!< values already represent the activity at the acquisition start
  reference,          //!< values decay-corrected to the cycle's reference time t0: undone here
};
//! "none", "acquisition-start", "reference". Throws nothing.
std::string to_string(DecayCorrection d);

//! Which time the activity of a frame is assigned to.
enum class TimingConvention { acquisition_start, mid_frame };
//! "acquisition-start", "mid-frame". Throws nothing.
std::string to_string(TimingConvention t);

//! Everything known about one quantified point, for the result's provenance.
struct QuantifiedPoint {
  std::string kind;        //!< "counts", "activity" or "concentration"
  std::string calibration; //!< protocol whose CF converted the counts ("" otherwise)
  double time_h = 0;       //!< time assigned to the activity, after t0
  double start_h = 0;      //!< acquisition start after t0
  double duration_s = 0;
  double value = 0;        //!< counts, MBq or MBq/mL as given
  double cf_cps_per_MBq = 0;
  double dtcf = 1;         //!< dead-time correction factor R_t / R_o
  double decay_factor = 1; //!< k, x/sinh(x), or exp(-lambda t) undoing a decay correction
  double rc = 1;           //!< recovery coefficient applied (1 when none or below the floor)
  double rc_u = 0;
  double activity_MBq = 0;
  double u_poisson_rel = 0;  //!< 1/sqrt(C) for counts, else 0
  double u_cf_rel = 0;
  double u_rc_rel = 0;
  double dln_rc_dln_volume = 0;  //!< sensitivity of RC to the volume at this point
  double activity_u_MBq = 0;  //!< A u_poisson: the part independent between points
  std::vector<std::string> flags;
};

}  // namespace lutdose
