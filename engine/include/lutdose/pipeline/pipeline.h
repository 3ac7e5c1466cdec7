// The whole pipeline on a TAC table: fits and TIAs per VOI, then self-doses (design.md §1).
#pragma once

#include <limits>
#include <optional>
#include <string>
#include <vector>

#include <map>
#include <nlohmann/json.hpp>

#include "lutdose/io/case_file.h"
#include "lutdose/dosimetry/dose.h"
#include "lutdose/kinetics/fitting.h"
#include "lutdose/dosimetry/nuclide.h"
#include "lutdose/planning/planning.h"
#include "lutdose/radiobiology/radiobiology.h"
#include "lutdose/io/tac_table.h"

namespace lutdose {

struct RunOptions {
  FitOptions fit;
  //! Dose options; without a value the run stops after the TIAs (lutdose fit).
  std::optional<DoseOptions> dose;
  //! Administered activity [MBq] (net of residual); NaN when not given (no tia_h, no Gy/GBq).
  double administered_MBq = std::numeric_limits<double>::quiet_NaN();
  //! Administered activity per cycle number [MBq]; overrides administered_MBq (case files).
  std::map<int, double> administered_by_cycle_MBq;
  std::string nuclide = "Lu-177";
  double half_life_override_h = 0;  //!< > 0 replaces the ICRP-107 half-life
  std::string data_dir;             //!< resolved data directory
  std::string tac_path;             //!< input file, recorded in the output
  std::string input_kind = "tac-table";  //!< "tac-table" or "case-file"
  std::map<int, BloodData> blood_by_cycle;  //!< blood samples per cycle (blood-based marrow)
  //! Reduced schedules (methods.md §4): "none" (fit), or for every VOI "hanscheid", "madsen",
  //! "population" (single time point, the last one) or "prior" (MAP fit with the population priors
  //! of data/kinetics/population_kinetics.csv; needs activity_u_MBq).
  std::string reduced = "none";
  //! A compartment model file (docs/compartment-models.md): the VOIs it observes are fitted jointly
  //! per cycle (needs the administered activity); the others keep the exponential family.
  std::string compartment_model;
  //! Residual activity of the previous cycle: "none", "integrate-to-next" (each cycle's TIA and
  //! BED to the next cycle's reference time) or "subtract" (the previous cycle's fitted curve is
  //! subtracted from the next cycle's activities). Needs cycle_start_h.
  std::string residual = "none";
  //! Reference time of each cycle [h since 1970 UTC] (case files with date-times).
  std::map<int, double> cycle_start_h;
  //! Tumour repopulation on the summed BED: -ln2 (T - T_k) / (alpha T_pot) for T > T_k, T the
  //! time from the first to the last cycle (optional; no defaults).
  std::string repopulation_targets;
  double repopulation_alpha_per_Gy = std::numeric_limits<double>::quiet_NaN();
  double repopulation_t_pot_d = std::numeric_limits<double>::quiet_NaN();
  double repopulation_kickoff_d = 0;
  //! Tissue parameters overriding data/radiobiology/tissue_parameters.csv (pattern -> params).
  std::vector<std::pair<std::string, TissueParameters>> tissue_overrides;
  //! Monte Carlo cross-check of the dose uncertainty: samples (0 = off) and seed.
  int mc_samples = 0;
  unsigned long long mc_seed = 20261124;
};

struct VoiResult {
  TacSeries tac;
  TacFit fit;
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

struct CycleResult {
  std::string patient;
  int cycle = 1;
  double administered_MBq = std::numeric_limits<double>::quiet_NaN();
  std::vector<VoiResult> vois;
  std::vector<TargetDose> doses;  //!< every target (VOIs first), empty without dose options
  std::vector<std::string> dose_input_names;  //!< the GUM inputs (fit:cycle1:liver, cf:P, ...)
  std::vector<double> dose_input_u_rel;       //!< their relative standard uncertainties (NaN: unknown)
  std::vector<double> dose_input_dof;         //!< their degrees of freedom (infinite: stated)
  double remainder_tia_MBq_h = std::numeric_limits<double>::quiet_NaN();
  std::vector<std::string> dose_notes;
  //! How the red-marrow TIA was obtained (null when the marrow method is "none").
  nlohmann::ordered_json marrow;
  //! Monte Carlo summary (null when not run).
  nlohmann::ordered_json monte_carlo;
  //! TIAs and BEDs are integrated to this time [h] (the next cycle with "integrate-to-next").
  double horizon_h = std::numeric_limits<double>::infinity();
  //! Case-file details of the cycle (reference time, protocol, conventions); null for TAC tables.
  nlohmann::ordered_json provenance;
};

//! A target's dose summed over a patient's cycles.
struct CumulativeDose {
  std::string target;
  double dose_Gy = 0;
  double bed_Gy = std::numeric_limits<double>::quiet_NaN();  //!< sum of the cycles' BED (§7.2)
  double eqd2_Gy = std::numeric_limits<double>::quiet_NaN();
  double repopulation_Gy = 0;  //!< subtracted from bed_Gy (tumours, when configured)
  double dose_u_Gy = 0;  //!< GUM: per-cycle inputs independent; CF and S-values common to cycles
  double dose_u_dof = std::numeric_limits<double>::infinity();  //!< Welch-Satterthwaite
  Interval dose_ci68_Gy, dose_ci95_Gy;
  std::vector<std::string> u_missing;  //!< inputs without a known u (dose_u_Gy is then NaN)
  int cycles = 0;        //!< cycles in which the target was dosed
};

struct RunResult {
  std::string version;
  Nuclide nuclide;
  RunOptions options;
  std::vector<std::string> svalue_files;  //!< data files of the S-value set and spheres
  std::string tissue_file;                //!< the tissue-parameter table used for BED
  std::vector<Limit> limits;              //!< limits of the organs at risk (history view, plan)
  std::string svalue_set_description;
  std::vector<CycleResult> cycles;  //!< in the order of the table (patient, then cycle)
  //! Per patient id, the doses summed over the cycles (patients with more than one cycle).
  std::map<std::string, std::vector<CumulativeDose>> cumulative;
};

//! Runs fits (and doses when options.dose is set) for every series of the table. Throws
//! InputError on bad input before anything is written.
//! `points` (optional, same order as `series`) carries the quantification of each point.
RunResult run_tac_table(const std::vector<TacSeries>& series, const RunOptions& options,
                        const std::vector<std::vector<QuantifiedPoint>>* points = nullptr);

//! Resolves a compartment model name (shipped: blood_organ_linear, prrt_multiorgan_linear,
//! receptor_pbpk_template) or path to a file; InputError when not found.
std::string find_compartment_model(const std::string& name_or_path, const std::string& data_dir);

//! The dose history of a run (every target of every cycle: administered activity, dose, BED and
//! G), per patient id, for `lutdose plan`.
std::map<std::string, std::vector<TargetHistory>> history_from_run(const RunResult& r);

//! The measurement uncertainty of the delivered doses of the organs at risk (targets matching a
//! limit's pattern) for `lutdose plan`: per cycle and target, dose_Gy, dose_u_Gy (null when
//! unknown), dose_u_dof ("infinite", a number or null), dose_ci95_Gy ([low, high] or null),
//! uncertainty_incomplete and uncertainty_missing_inputs. An array (empty without doses).
nlohmann::ordered_json delivered_dose_uncertainty(const RunResult& r, const std::vector<Limit>& limits);

//! Plan options from a case file's "plan" block (validated; InputError naming plan.FIELD), the
//! default limits and priors of the data directory, and the tissue parameters of `targets`.
PlanOptions plan_options_from_case(const nlohmann::json& plan_block, const std::string& data_dir,
                                   const std::vector<std::string>& targets,
                                   const std::vector<std::pair<std::string, TissueParameters>>& tissue_overrides,
                                   const std::string& where);

//! The whole pipeline on a case file: quantification, fits, doses. Options come from the case;
//! `data_dir` is the resolved data directory; mc_samples > 0 overrides the case's Monte Carlo.
RunResult run_case(const CaseFile& c, const std::string& data_dir, int mc_samples = -1,
                   unsigned long long mc_seed = 0);

}  // namespace lutdose
