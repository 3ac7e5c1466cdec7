// The options of a whole run (TAC table or case file): what the stages are asked to do.
#pragma once

#include <limits>
#include <memory>
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
#include "lutdose/kinetics/compartment_population.h"
#include "lutdose/kinetics/population.h"
#include "lutdose/kinetics/reduced_schedules.h"
#include "lutdose/radiobiology/residual.h"
#include "lutdose/models/compartment.h"

namespace lutdose {

//! What the run was given.
enum class InputKind { tac_table, case_file };
//! "tac-table", "case-file".
std::string to_string(InputKind k);

//! Where the population of RunOptions::population comes from, for the results' provenance.
struct PopulationSource {
  std::string path;    //!< the population file as given; empty: learned from the input
  std::string sha256;  //!< of the file's bytes as read (empty when learned)
  bool own_checksum_verified = false;  //!< the file's lutdose_sha256 was there and matched
  //! Learned from the input (--kinetics population): the SHA-256 of the learned models as JSON
  //! (population_models_sha256), so that a resumed batch or a merge sees the same population.
  std::string vois_sha256;
  //! Learned from the input: the options it was learned with (RunOptions::population_learning, threads
  //! aside), recorded as options.fit.population.learning; std::nullopt for a population file.
  std::optional<PopulationOptions> learning;
};

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
  InputKind input_kind = InputKind::tac_table;
  std::map<int, BloodData> blood_by_cycle;  //!< blood samples per cycle (blood-based marrow)
  //! Reduced schedules (spec §4, docs/reduced-schedules.md): none (fit), or for every VOI one single-time-point
  //! estimator or the MAP fit with population priors (kinetics/reduced_schedules.h).
  ReducedSchedule reduced = ReducedSchedule::none;
  //! Population kinetics (kinetics/population.h, issue 15): when set, every VOI is fitted by MAP
  //! (empirical Bayes) with the model of its VOI kind as prior, instead of the individual fit.
  std::shared_ptr<const std::vector<PopulationModel>> population;
  //! The file of `population` (recorded in options.fit.population of the results).
  PopulationSource population_source;
  //! The options population kinetics learns with (--kinetics population: --functions, --error-model,
  //! --omega, --e-step; population learn's defaults unless given; threads are the caller's).
  PopulationOptions population_learning;
  //! --kinetics population with a compartment model (compartment_model): the model's parameters
  //! learned with random effects (--free-parameters, as population learn takes them); empty: the
  //! model file's "fit": true ones.
  std::vector<std::string> population_free_parameters;
  //! How population_free_parameters are named in messages (the Python module: "options: free_parameters").
  std::string population_free_parameters_name = "command line: --free-parameters";
  //! A compartment model file (docs/compartment-models.md): the VOIs it observes are fitted jointly
  //! per cycle (needs the administered activity); the others keep the exponential family.
  std::string compartment_model;
  //! The model of a compartment_model that is not shipped, read before the pipeline
  //! (read_run_files); a shipped model comes from ReferenceData.
  std::shared_ptr<const models::CompartmentModel> compartment_model_file;
  //! A compartment population (a population file of format_version 4, kinetics/compartment_population.h):
  //! the VOIs compartment_model observes are fitted per cycle by MAP with it as prior instead of the
  //! individual joint fit (the others keep the individual exponential fit). compartment_model is then
  //! the population's model (or --model), checked against the population's SHA-256 by read_run_files.
  std::shared_ptr<const CompartmentPopulation> compartment_population;
  //! The user S-value table named by dose->svalue_table with its VOI map (user_voi_region_map),
  //! read and indexed before the pipeline (read_run_files).
  std::shared_ptr<const IndexedSValueSet> user_svalue_set;
  //! Residual activity of the previous cycle (default none). Needs cycle_start_h.
  ResidualHandling residual = ResidualHandling::none;
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

//! The options a case file asks for (fit, dose, nuclide, residual, reduced schedules, compartment
//! model, cycle reference times, tissue overrides, repopulation, Monte Carlo), with input_kind and
//! tac_path set; the data directory and the files the options name are not read (read_run_files).
//! The one mapping of a CaseFile to RunOptions, used by the case file's own checks and by the run.
RunOptions run_options_of_case(const CaseFile& c);

//! Problems of the options that the stages would only find later (or not at all), every one at
//! once, each as "fit.combined_b (--combined-b) = '-1': expected a number >= 0": the administered
//! activity, the half-life override, the combined error model, the fit functions, the organ
//! density, the Monte Carlo samples, a compartment model with residual integrate-to-next. Empty
//! when the options are valid.
std::vector<std::string> validate(const RunOptions& options);

//! Problems of the Monte Carlo samples (0 to 1000000) and seed (>= 0), in validate()'s words; used by
//! validate() and by the command line, whose --mc-samples and --mc-seed may override a case file's.
std::vector<std::string> validate_monte_carlo(long long samples, long long seed);

//! A problem of a run option in validate()'s words: "fit.combined_b (--combined-b) = '-1': expected
//! a number >= 0" (`name`: case-file key or command-line name).
std::string option_problem(const std::string& name, const std::string& value, const std::string& expected);

//! Throws InputError listing validate()'s problems, one per line after "`where`: ", if any.
void validate_or_throw(const RunOptions& options, const std::string& where);

// ---- The one mapping from option names to fields (command line and case file) ----

//! A run option as the command line and the case file name it.
struct OptionSpec {
  std::string cli;  //!< "--error-model"; empty when the option exists only in case files
  std::string key;  //!< "fit.error_model"; empty when the option exists only on the command line
  //! The allowed values of a choice option (texts); empty for other options.
  std::vector<std::string> choices;
  //! Why the option exists on one side only (empty when on both); documented in docs/case-file.md,
  //! "Options on one side only".
  std::string one_sided;
};

//! Every option of `lutdose run` and `lutdose fit` and of the case file's option blocks.
const std::vector<OptionSpec>& run_option_specs();

//! The spec of an option by its case-file key or its command-line name; std::out_of_range when
//! there is none.
const OptionSpec& option_spec(const std::string& name);

//! The typed fields the command line and a case file fill.
struct OptionFields {
  FitOptions& fit;
  DoseOptions& dose;
  ReducedSchedule& reduced;
  ResidualHandling& residual;
};

//! Sets the choice option `name` (case-file key or command-line name) from its text: the one
//! mapping from texts to typed fields, used by cli/main.cpp and io/case_file.cpp. Returns
//! std::nullopt when set, else what was expected ("one of proportional, ...") and changes nothing.
std::optional<std::string> set_choice_option(const OptionFields& fields, const std::string& name,
                                             const std::string& text);

}  // namespace lutdose
