// Next-cycle prescription (methods.md §8.5, design.md §4.5; docs/plan.md): from the doses of the
// cycles delivered so far, predict the next cycle's absorbed dose per activity of every organ at
// risk, take what remains of each limit (absorbed dose or BED), and prescribe the largest
// activity that keeps every limited target under all its limits, within [A_min, A_max].
//
//  * Prediction of d (Gy/GBq): the previous cycle's, the mean of the previous cycles', or a
//    normal-normal Bayesian update of a population prior; u(d) = prediction_cv x d (previous,
//    mean) or the posterior SD (bayes). The prescription uses d_safe = d + safety_k u(d).
//  * Strategies: equal split of the remaining budget over the remaining planned cycles;
//    fixed standard activity until a limit would be passed, then a reduced last cycle (Lund
//    style); max BED (BED limits only, split equally; dose limits only where a target has no
//    BED limit).
//  * A limit already reached (remaining budget <= 0) stops the treatment (activity 0).
// The history's doses are taken as known; only the prediction's uncertainty enters the
// probabilities of exceeding a limit.
#pragma once

#include <limits>
#include <map>
#include <string>
#include <vector>


#include "lutdose/radiobiology/radiobiology.h"

namespace lutdose {

//! One delivered cycle of one target.
struct CycleRecord {
  int cycle = 0;  //!< cycle number, >= 1
  double administered_MBq = std::numeric_limits<double>::quiet_NaN();  //!< [MBq], > 0
  double dose_Gy = std::numeric_limits<double>::quiet_NaN();           //!< absorbed dose [Gy]
  double bed_Gy = std::numeric_limits<double>::quiet_NaN();  //!< BED [Gy]; NaN: from dose and G
  double g = std::numeric_limits<double>::quiet_NaN();  //!< Lea-Catcheside G (dimensionless)
  double t_eff_h = std::numeric_limits<double>::quiet_NaN();  //!< effective half-life [h] -> G
  //! Empty when the dose is complete; else what it lacks and the input that would supply it
  //! (e.g. no red-marrow self-dose: blood samples or an L2-L4 VOI). A limit on such a dose is
  //! not evaluated unless PlanOptions::allow_incomplete.
  std::string incomplete = "";
  //! Empty, or a minor omission that does not stop the limit being evaluated (a VOI's dose
  //! without the remainder-of-body cross-dose); reported with the target.
  std::string note = "";
};

//! The delivered cycles of one target, in increasing cycle order.
struct TargetHistory {
  std::string target;
  std::vector<CycleRecord> cycles;
};

//! A cumulative limit on a target (or a pattern of targets).
struct Limit {
  std::string target_pattern;  //!< "kidney*" matches names starting with "kidney"; else exact
  std::string quantity;        //!< "dose_Gy" or "bed_Gy"
  double value = 0;            //!< [Gy], cumulative over all cycles
  std::string source;          //!< citation with its tag
};

//! Population prior of the dose per activity, N(mean, sd^2), for the bayes prediction.
struct PopulationPrior {
  std::string target_pattern;
  double mean_Gy_per_GBq = std::numeric_limits<double>::quiet_NaN();
  double sd_Gy_per_GBq = std::numeric_limits<double>::quiet_NaN();
  std::string source;
};

enum class Prediction { previous, mean, bayes };
enum class Strategy { equal_split, fixed_until_limit, max_bed };

std::string to_string(Prediction p);  //!< "previous", "mean", "bayes"; throws nothing
std::string to_string(Strategy s);    //!< "equal-split", "fixed-until-limit", "max-bed"; throws nothing
//! Parse the CLI spellings above (also with '_'); InputError (options --prediction, --strategy)
//! otherwise.
Prediction parse_prediction(const std::string& s);
Strategy parse_strategy(const std::string& s);
//! Parses a --limit option "TARGET:QUANTITY:VALUE" (e.g. "kidney*:bed_Gy:28"); InputError on a
//! missing part, a bad quantity or a value that is not a finite limit > 0 Gy. value in Gy. The
//! source is "command line".
Limit parse_limit(const std::string& text);

struct PlanOptions {
  Prediction prediction = Prediction::previous;
  Strategy strategy = Strategy::equal_split;
  int planned_cycles = 4;        //!< total cycles planned; remaining = planned - cycles done
  double a_min_MBq = 0;          //!< lower clamp [MBq]
  double a_max_MBq = 7400;       //!< upper clamp [MBq] (standard 7.4 GBq, methods §8.1)
  double a_standard_MBq = 7400;  //!< fixed activity of fixed_until_limit [MBq]
  //! Prescribe with d + k u(d) (methods §8.5 step 4); 0 = no margin (dimensionless).
  double safety_k = 1.0;
  //! Relative standard uncertainty of a cycle's dose per activity as a prediction of the next
  //! (dimensionless; K25: the previous cycle predicted the next to -0.7 +- 9.9 %).
  double prediction_cv = 0.10;
  std::vector<Limit> limits;
  std::vector<PopulationPrior> priors;
  //! Target name (or "name*" pattern) -> LQ parameters, needed for BED limits.
  std::map<std::string, TissueParameters> tissue;
  //! Apply limits to doses known to be incomplete (CycleRecord::incomplete) instead of refusing
  //! to prescribe; the result is marked and no P(exceed) is given for those targets.
  bool allow_incomplete = false;
};

//! The plan of one limited target at the prescribed activity. NaN where not applicable.
struct TargetPlan {
  std::string name;
  std::string prediction_method;  //!< e.g. "previous (cycle 2)", "bayes (prior + 2 cycles)"
  double predicted_dose_Gy_per_GBq = std::numeric_limits<double>::quiet_NaN();  //!< d
  double predicted_u_Gy_per_GBq = std::numeric_limits<double>::quiet_NaN();     //!< u(d)
  double predicted_dose_Gy = std::numeric_limits<double>::quiet_NaN();  //!< d A of the cycle
  double predicted_bed_Gy = std::numeric_limits<double>::quiet_NaN();   //!< its BED (with g)
  double cumulative_dose_Gy = std::numeric_limits<double>::quiet_NaN();  //!< incl. this cycle
  double cumulative_bed_Gy = std::numeric_limits<double>::quiet_NaN();   //!< incl. this cycle
  double limit_dose_Gy = std::numeric_limits<double>::quiet_NaN();  //!< strictest dose limit
  double limit_bed_Gy = std::numeric_limits<double>::quiet_NaN();   //!< strictest BED limit
  double p_exceed_dose = std::numeric_limits<double>::quiet_NaN();  //!< P(cumulative > limit)
  double p_exceed_bed = std::numeric_limits<double>::quiet_NaN();
  double max_activity_MBq = std::numeric_limits<double>::quiet_NaN();  //!< this target's bound
  double g = std::numeric_limits<double>::quiet_NaN();  //!< G used for the planned cycle
  std::string incomplete;  //!< what the dose lacks (from its cycles), empty when complete
  std::string note;        //!< minor omissions of the dose (CycleRecord::note), empty if none
};

//! What decided the activity. quantity: "dose_Gy", "bed_Gy" (a target's limit), "a_max",
//! "a_min" (the clamp), "a_standard" (fixed_until_limit, no limit binding), "planned_cycles"
//! (all planned cycles delivered). target is empty for the last four.
struct Binding {
  std::string target;
  std::string quantity;
  double limit = std::numeric_limits<double>::quiet_NaN();
};

struct PlanResult {
  int next_cycle = 1;
  double activity_MBq = 0;  //!< prescribed activity [MBq]; 0 when stop
  bool stop = false;        //!< no further cycle: a limit is reached or all cycles are given
  //! A limited target's dose is incomplete: without allow_incomplete there is no prescription
  //! (activity NaN, binding quantity "incomplete_dose"); with it the activity is marked.
  bool incomplete = false;
  Binding binding;
  std::vector<TargetPlan> targets;  //!< the limited targets, in history order
  std::vector<std::string> reasoning;
  PlanOptions options;  //!< the options used (recorded in the output)
};

//! The prescription for the next cycle (algorithm: docs/plan.md). Throws InputError for bad
//! options or history (naming the target and what is wrong or missing): options out of range, a
//! limit or prior without its target, quantity or a positive value, an empty history, a target
//! twice, cycles not increasing, a non-positive activity or a negative dose, a bayes prediction
//! without a population prior, a BED limit without tissue parameters or without the cycle's BED,
//! G or t_eff. Units: PlanOptions, CycleRecord and TargetPlan name them; activity in MBq.
PlanResult plan_next_cycle(const std::vector<TargetHistory>& history, const PlanOptions& options);

//! Reads a dose history table (design.md §4.5): columns cycle, administered_MBq, target, dose_Gy,
//! optional bed_Gy, t_eff_h, g, incomplete (what the dose lacks; empty: complete); '#' comments. Targets in order of first appearance, cycles
//! sorted. InputError (file, line, column, value) for a missing or unreadable file, bad cells,
//! unknown columns, duplicates. Units as CycleRecord (MBq, Gy, h).
std::vector<TargetHistory> read_dose_history(const std::string& csv_path);

//! data_dir/radiobiology/limits.csv (target_pattern, quantity, value [Gy], source). InputError
//! (file, line, field, value) for a missing file or column, an empty pattern, a quantity other
//! than dose_Gy or bed_Gy, a value that is not a finite number > 0.
std::vector<Limit> load_limits(const std::string& data_dir);
//! data_dir/radiobiology/population_gy_per_gbq.csv (target_pattern, mean_Gy_per_GBq,
//! sd_Gy_per_GBq, source; Gy/GBq). InputError (file, line, field, value) for a missing file or
//! column, an empty pattern, a mean or sd that is not a finite number > 0.
std::vector<PopulationPrior> load_population_priors(const std::string& data_dir);

//! "kidney*" matches names starting with "kidney"; any other pattern matches exactly. Throws
//! nothing.
bool target_matches(const std::string& pattern, const std::string& name);

//! G of a mono-exponential dose rate: lambda/(lambda + mu), lambda = ln2/t_eff, mu = ln2/T_rep
//! (dimensionless; t_eff_h and repair_half_time_h [h], > 0, checked by the callers). Throws
//! nothing.
double g_mono_exponential(double t_eff_h, double repair_half_time_h);

//! The activity [MBq] whose cycle BED is b: d A + G (d A)^2/(a/b) = b, with d in Gy/GBq
//! (A = (a/b)(-1 + sqrt(1 + 4 G b/(a/b)))/(2 G d), written in a form exact as G -> 0).
//! bed_Gy and alpha_beta_Gy [Gy], g dimensionless. +infinity for d <= 0. Throws nothing.
double activity_for_bed_MBq(double bed_Gy, double d_Gy_per_GBq, double g, double alpha_beta_Gy);

}  // namespace lutdose
