// Radiobiology: biologically effective dose (BED) and EQD2 for decaying continuous irradiation
// (methods.md §8; spec §7), the tissue parameters, and sums over cycles.
#pragma once

#include <functional>
#include <limits>
#include <map>
#include <string>
#include <vector>

namespace lutdose {

//! Linear-quadratic parameters of a tissue, with their source.
struct TissueParameters {
  std::string tissue;     //!< e.g. "kidney"
  double alpha_beta_Gy = 0;       //!< alpha/beta [Gy], > 0
  double repair_half_time_h = 0;  //!< T_rep [h], > 0
  std::string source;     //!< citation and its tag ([seen: ...], [unverified])
  double mu_per_h() const;  //!< repair rate ln2 / T_rep [1/h]; throws nothing
};

//! The tissue table (data/radiobiology/tissue_parameters.csv): target name -> parameters. Target
//! names are lutdose VOI names, tumour prefixes (tumour_*) and phantom region names.
class TissueTable {
 public:
  //! Reads data_dir/radiobiology/tissue_parameters.csv (target, alpha_beta_Gy,
  //! repair_half_time_h, source). Throws InputError for a missing file or column, or an
  //! alpha/beta or T_rep that is not a number > 0 (file, line, value).
  static TissueTable load(const std::string& data_dir);
  //! Parameters for a target ("x*" patterns match prefixes; overrides first, then table order), or
  //! nullptr when the table has none. Throws nothing.
  const TissueParameters* find(const std::string& target) const;
  //! Overrides (or adds) the parameters of a target name or pattern (case files); not validated
  //! here (the case-file reader checks them). Throws nothing.
  void set(const std::string& pattern, const TissueParameters& p);
  const std::vector<std::pair<std::string, TissueParameters>>& entries() const { return entries_; }
  std::string path;

 private:
  std::vector<std::pair<std::string, TissueParameters>> entries_;  // pattern ("x" or "x*"), params
};

//! A dose-rate curve that is a sum of exponentials, Ddot(t) = sum_i a_i exp(-lambda_i t)
//! [Gy/h], lambda_i > 0 effective rates [1/h]; amplitudes may be negative (uptake phases).
struct ExpSum {
  std::vector<double> a_Gy_per_h;
  std::vector<double> lambda_per_h;
  double dose_Gy() const;  //!< sum a_i / lambda_i [Gy]; throws nothing
};

//! A dose rate that is a sum of exponentials from `from_h` [h] on: rate(t) = sum_i a_i
//! e^{-lambda_i (t - from_h)} for t >= from_h (amplitudes at from_h; e.g. a trapezoid's physical
//! decay after its last point).
struct ExpTail {
  double from_h = std::numeric_limits<double>::infinity();
  ExpSum rate;
};

//! Result of a BED computation for one curve.
struct BedResult {
  double dose_Gy = 0;
  double g = 0;  //!< Lea-Catcheside factor (dimensionless): BED = D + G D^2 / (alpha/beta)
  double bed_Gy = 0;   //!< [Gy]
  double eqd2_Gy = 0;  //!< [Gy]
};

//! Closed form (methods.md §8; spec §7.1): BED = D + (2/(a/b)) sum_ij a_i a_j / ((l_i + l_j)(l_i + mu)).
//! Units as ExpSum and TissueParameters; G = 0 for D = 0. Throws nothing (the caller ensures
//! lambda_i > 0 and valid tissue parameters).
BedResult bed_closed_form(const ExpSum& rate, const TissueParameters& t);

//! Numerical BED for any dose-rate function on [0, t_end] (t_end may be +infinity): the recursive
//! update of spec §7.1 (methods.md §8) on a fine grid. `time_scales_h` are characteristic times of the curve
//! (e.g. 1/lambda of its components) used to place the grid. rate_Gy_per_h(t_h) [Gy/h] at t [h].
//! With `tail` (the curve's exponential part after tail->from_h, lambda_i > 0) and t_end infinite,
//! only [0, tail->from_h] is solved numerically and the rest is added in closed form (the explicit
//! solver's steps are bounded by about 3/mu, so a long tail costs thousands of steps).
//! Throws InputError (naming the tissue) when the curve gives a non-finite dose rate, the integral
//! is not finite, or the solver needs more than its evaluation budget (an implausible curve).
BedResult bed_numeric(const std::function<double(double)>& rate_Gy_per_h, double t_end_h,
                      const TissueParameters& t, const std::vector<double>& time_scales_h,
                      const ExpTail* tail = nullptr);

//! EQD2 = BED / (1 + 2/(alpha/beta)) [Gy]; bed_Gy and alpha_beta_Gy [Gy]. Throws nothing.
double eqd2(double bed_Gy, double alpha_beta_Gy);

//! BED of a dose D delivered with a given G: D + G D^2 / (alpha/beta) [Gy]; dose_Gy and
//! alpha_beta_Gy [Gy], g dimensionless. Throws nothing.
double bed_from_dose(double dose_Gy, double g, double alpha_beta_Gy);

}  // namespace lutdose
