// The results of a whole run: per cycle and VOI the fits, TIAs and doses, summed over cycles,
// and where they came from (Provenance). Plain data: no output format inside; the writers of
// lutdose/io/results.h (JSON, CSV, table) and lutdose/io/store.h (HDF5 store) only read these structs.
// Units are in the field names; a value that is not known is NaN (or an empty optional), never 0.
#pragma once

#include <limits>
#include <optional>
#include <string>
#include <vector>
#include <map>
#include "lutdose/io/case_file.h"
#include "lutdose/quantification/quantification.h"
#include "lutdose/dosimetry/dose.h"
#include "lutdose/kinetics/fitting.h"
#include "lutdose/dosimetry/nuclide.h"
#include "lutdose/planning/planning.h"
#include "lutdose/radiobiology/radiobiology.h"
#include "lutdose/io/tac_table.h"
#include "lutdose/pipeline/options.h"

namespace lutdose {

//! One VOI of one cycle: its TAC (as fitted, after any residual subtraction), fit and TIA.
struct VoiResult {
  TacSeries tac;  //!< time [h], activity [MBq] and its u as fitted
  TacFit fit;     //!< the selected fit, its candidates and TIA [MBq h] with u, dof, intervals
  double mean_mass_g = std::numeric_limits<double>::quiet_NaN();      //!< from the table
  double mean_volume_mL = std::numeric_limits<double>::quiet_NaN();   //!< from the table
  double tia_h = std::numeric_limits<double>::quiet_NaN();  //!< TIA / administered activity
  //! How each activity was obtained from counts (case files); empty for TAC tables.
  std::vector<QuantifiedPoint> quantification;
  //! The fitted compartment-model curve of the VOI, sampled (t [h], A [MBq]), for dose rates.
  std::vector<double> model_curve_t_h, model_curve_MBq;
  //! Residual of the previous cycle subtracted from each point [MBq] (residual "subtract").
  std::vector<double> residual_subtracted_MBq;
};

//! How the red-marrow TIA of a cycle was obtained (methods.md §6.5; dose.marrow options).
struct MarrowResult {
  MarrowMethod method = MarrowMethod::none;  //!< blood or image (MarrowOptions::method)
  double mass_g = std::numeric_limits<double>::quiet_NaN();  //!< red-marrow mass used [g]
  std::string mass_source;            //!< "phantom reference mass" or "dose.marrow.mass_g"
  //! Blood method: the fit of the blood concentrations (function, accepted, TIAC and its u).
  std::string blood_fit_function;
  bool blood_fit_accepted = false;
  double blood_tiac_MBq_h_per_mL = std::numeric_limits<double>::quiet_NaN();
  double blood_tiac_u_MBq_h_per_mL = std::numeric_limits<double>::quiet_NaN();  //!< NaN: unknown
  double rmblr = std::numeric_limits<double>::quiet_NaN();  //!< marrow-to-blood ratio used
  std::string rmblr_source;           //!< "rmblr" or "rmecff / (1 - hematocrit)"
  //! Image method: the L2-L4 VOI and the fraction of the red marrow it holds.
  std::string l2l4_voi;
  double l2l4_fraction = std::numeric_limits<double>::quiet_NaN();
  //! The red-marrow source: TIA [MBq h], its standard uncertainty (NaN: unknown) and dof.
  double tia_MBq_h = std::numeric_limits<double>::quiet_NaN();
  double tia_u_MBq_h = std::numeric_limits<double>::quiet_NaN();
  double tia_u_dof = std::numeric_limits<double>::quiet_NaN();
};

//! Summary of the Monte Carlo cross-check of a cycle's dose uncertainty (methods.md §5 item 6);
//! the per-target results are TargetDose::dose_u_mc_Gy and dose_mc_mean_Gy.
struct MonteCarloSummary {
  int samples = 0;                  //!< samples asked for
  unsigned long long seed = 0;      //!< seed of the run (the cycle number is added per cycle)
  int used = 0;                     //!< samples whose refits and doses succeeded
  int failed = 0;                   //!< samples dropped (failed refit, inconsistent TIAs)
  std::string method;               //!< what is sampled and how, in words
  //! GUM inputs whose u is unknown (fit:cycleN:VOI): not sampled, so the MC SD misses them.
  std::vector<std::string> held_fixed_unknown_u;
  bool incomplete() const { return !held_fixed_unknown_u.empty(); }
};

//! The calibration protocol a cycle's counts were quantified with (case files).
struct ProtocolSummary {
  double cf_cps_per_MBq = std::numeric_limits<double>::quiet_NaN();  //!< NaN: not given
  double cf_u_cps_per_MBq = std::numeric_limits<double>::quiet_NaN();
  DeadTimeModel dead_time_model = DeadTimeModel::none;
  double dead_time_tau_s = std::numeric_limits<double>::quiet_NaN();
  bool recovery_table = false;      //!< the protocol has a recovery-coefficient table
};

//! Case-file details of a cycle: reference time, measured activities, protocol, conventions.
struct CycleProvenance {
  std::string reference_time;       //!< as written in the case file
  double administered_measured_MBq = std::numeric_limits<double>::quiet_NaN();
  double administered_measured_at_h = std::numeric_limits<double>::quiet_NaN();  //!< after the reference time
  double residual_measured_MBq = std::numeric_limits<double>::quiet_NaN();
  double residual_measured_at_h = std::numeric_limits<double>::quiet_NaN();
  std::string protocol;             //!< protocol name
  std::optional<ProtocolSummary> protocol_details;  //!< empty when the name is not a protocol of the file
  TimingConvention timing = TimingConvention::acquisition_start;
  DecayCorrection decay_corrected_to = DecayCorrection::none;
};

//! One cycle of one patient: VOIs, doses of every target with their GUM inputs, and how the
//! derived sources and the case-file quantities were obtained.
struct CycleResult {
  std::string patient;  //!< patient id ("" for a TAC table without one)
  int cycle = 1;
  double administered_MBq = std::numeric_limits<double>::quiet_NaN();  //!< NaN: not given
  std::vector<VoiResult> vois;
  std::vector<TargetDose> doses;  //!< every target (VOIs first), empty without dose options
  std::vector<std::string> dose_input_names;  //!< the GUM inputs (fit:cycle1:liver, cf:P, ...)
  std::vector<double> dose_input_u_rel;       //!< their relative standard uncertainties (NaN: unknown)
  std::vector<double> dose_input_dof;         //!< their degrees of freedom (infinite: stated)
  double remainder_tia_MBq_h = std::numeric_limits<double>::quiet_NaN();  //!< NaN: no whole_body VOI
  std::vector<std::string> dose_notes;  //!< notes of the dose step, in words
  //! How the red-marrow TIA was obtained (empty when the marrow method is "none").
  std::optional<MarrowResult> marrow;
  //! Monte Carlo summary (empty when not run).
  std::optional<MonteCarloSummary> monte_carlo;
  //! TIAs and BEDs are integrated to this time [h] (the next cycle with "integrate-to-next").
  double horizon_h = std::numeric_limits<double>::infinity();
  //! Case-file details of the cycle (reference time, protocol, conventions); empty for TAC tables.
  std::optional<CycleProvenance> provenance;
  //! The dose of `target` in `doses`, null when there is none.
  const TargetDose* dose_of(const std::string& target) const {
    for (const auto& d : doses)
      if (d.target == target) return &d;
    return nullptr;
  }
};

//! A target's dose summed over a patient's cycles.
struct CumulativeDose {
  std::string target;
  double dose_Gy = 0;
  double bed_Gy = std::numeric_limits<double>::quiet_NaN();  //!< sum of the cycles' BED (methods.md §8)
  double eqd2_Gy = std::numeric_limits<double>::quiet_NaN();
  double repopulation_Gy = 0;  //!< subtracted from bed_Gy (tumours, when configured)
  double dose_u_Gy = 0;  //!< GUM: per-cycle inputs independent; CF and S-values common to cycles
  double dose_u_dof = std::numeric_limits<double>::infinity();  //!< Welch-Satterthwaite
  Interval dose_ci68_Gy, dose_ci95_Gy;
  std::vector<std::string> u_missing;  //!< inputs without a known u (dose_u_Gy is then NaN)
  int cycles = 0;        //!< cycles in which the target was dosed
};

//! Where a run's results came from: program version, reference data and options.
struct Provenance {
  std::string lutdose_version;            //!< LUTDOSE_VERSION of the program that ran
  Nuclide nuclide;                        //!< nuclide data used (ICRP-107, or an override)
  RunOptions options;                     //!< the options as used, with the input file (tac_path)
  std::string svalue_set_description;     //!< the S-value set (empty without doses)
  std::vector<std::string> svalue_files;  //!< data files of the S-value set and spheres
  std::string tissue_file;                //!< the tissue-parameter table used for BED
};

//! The results of a whole run (TAC table or case file), as written by the io/ writers.
struct RunResult {
  Provenance provenance;                  //!< version, reference data, options and input
  std::vector<Limit> limits;              //!< limits of the organs at risk (history view, plan)
  std::vector<CycleResult> cycles;  //!< in the order of the table (patient, then cycle)
  //! Per patient id, the doses summed over the cycles (patients with more than one cycle).
  std::map<std::string, std::vector<CumulativeDose>> cumulative;
};

}  // namespace lutdose
