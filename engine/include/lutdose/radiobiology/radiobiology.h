// Radiobiology: biologically effective dose (BED) and EQD2 for decaying continuous irradiation
// (methods.md §7), the tissue parameters, and sums over cycles.
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
  double alpha_beta_Gy = 0;
  double repair_half_time_h = 0;
  std::string source;     //!< citation and its tag ([seen: ...], [unverified])
  double mu_per_h() const;  //!< repair rate ln2 / T_rep
};

//! The tissue table (data/radiobiology/tissue_parameters.csv): target name -> parameters. Target
//! names are lutdose VOI names, tumour prefixes (tumour_*) and phantom region names.
class TissueTable {
 public:
  static TissueTable load(const std::string& data_dir);
  //! Parameters for a target, or nullptr when the table has none.
  const TissueParameters* find(const std::string& target) const;
  //! Overrides (or adds) the parameters of a target name or pattern (case files).
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
  double dose_Gy() const;  //!< sum a_i / lambda_i
};

//! Result of a BED computation for one curve.
struct BedResult {
  double dose_Gy = 0;
  double g = 0;  //!< Lea-Catcheside factor: BED = D + G D^2 / (alpha/beta)
  double bed_Gy = 0;
  double eqd2_Gy = 0;
};

//! Closed form (methods.md §7.1): BED = D + (2/(a/b)) sum_ij a_i a_j / ((l_i + l_j)(l_i + mu)).
BedResult bed_closed_form(const ExpSum& rate, const TissueParameters& t);

//! Numerical BED for any dose-rate function on [0, t_end] (t_end may be +infinity): the recursive
//! update of methods.md §7.1 on a fine grid. `time_scales_h` are characteristic times of the curve
//! (e.g. 1/lambda of its components) used to place the grid.
BedResult bed_numeric(const std::function<double(double)>& rate_Gy_per_h, double t_end_h,
                      const TissueParameters& t, const std::vector<double>& time_scales_h);

//! EQD2 = BED / (1 + 2/(alpha/beta)).
double eqd2(double bed_Gy, double alpha_beta_Gy);

//! BED of a dose D delivered with a given G: D + G D^2 / (alpha/beta).
double bed_from_dose(double dose_Gy, double g, double alpha_beta_Gy);

}  // namespace lutdose
