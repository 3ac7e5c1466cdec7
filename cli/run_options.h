// Command-line options shared by `run`, `fit` and `batch`: the fit options (FitArgs) and the dose
// options of a TAC table (DoseArgs), and their mapping to lutdose::RunOptions.
#pragma once

#include <CLI/CLI.hpp>

#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "lutdose/cohort/batch.h"
#include "lutdose/io/tac_table.h"
#include "lutdose/pipeline/options.h"

namespace lutdose_cli {

// Options shared by `run` and `fit`.
struct FitArgs {
  std::string tac;
  std::string function = "auto";
  std::vector<std::string> functions = {"E1", "E2u", "E2"};
  std::string error_model;  // empty: by VOI kind (FitOptions::error_model_by_voi_kind)
  std::string aicc_k = "fit";
  std::string head = "linear", body = "linear", tail = "physical", integration = "analytic";
  double combined_sigma0 = 0, combined_b = 0;
  bool model_averaging = false;
  std::string reduced = "none";
  std::string model;
  bool reject_correlated = false;
  double activity_MBq = NAN;
  double half_life_h = 0;
  std::string data_dir;
  std::string population;  // --population FILE (docs/population.md)
  std::string kinetics = "individual";  // --kinetics: individual, population (learn from the input) or previous-cycles
  bool kinetics_given = false;          // --kinetics was on the command line (not only its default)
  // --kinetics population's learning (population learn's --omega, --e-step); empty: not given
  std::string omega, e_step;
  int max_iterations = 0;  // population learn's --max-iterations; 0: not given
  // --kinetics population --model: population learn's --free-parameters; empty: the model file's
  std::vector<std::string> free_parameters;
  // How free_parameters are named in messages (Python: "options: free_parameters"; review of 0.20)
  std::string free_parameters_name = "command line: --free-parameters";
  // How a missing administered activity is named in messages: the option and where it is given
  // (Python's fit_tac and run_tac: their argument administered_MBq; issue 15).
  std::string activity_name = "--activity-MBq", given_in = "command line";
};

// Dose options of a TAC table shared by `run --tac` and `batch --tac` (the phantom, body mass and
// activity are per run or per patient: not here).
struct DoseArgs {
  std::string tumour_method = "sphere", composition = "100%/0%";
  double density = 1.03;
  std::string mass_scaling = "electron-photon", cross_scaling = "none";
};

//! Adds the fit options (--tac required when `tac_required`) to `cmd`.
void add_fit_options(CLI::App* cmd, FitArgs& a, bool tac_required);

//! Adds --tumour-method, --sphere-composition, --density-g-per-mL, --mass-scaling, --cross-scaling.
void add_dose_options(CLI::App* cmd, DoseArgs& a);

//! The dose options of `a`; bad choices are added to `problems`.
lutdose::DoseOptions make_dose_options(const DoseArgs& a, lutdose::RunOptions& o, std::vector<std::string>& problems);

//! --svalues FILE (run --tac, batch --tac): the user S-value table, as the set "user"; nothing when empty.
//! InputError when d already names a phantom (other than "user"): one of the two, not both.
void use_user_svalues(lutdose::DoseOptions& d, const std::string& svalues);

// A choice option of the command line, through the one mapping of option texts to typed fields
// (lutdose::set_choice_option, shared with the case file); a bad text is added to `problems`.
void choose(const lutdose::OptionFields& f, const std::string& cli, const std::string& text,
            std::vector<std::string>& problems);

// Throws InputError listing every problem of the command line, one per line, if any.
void throw_problems(const std::vector<std::string>& problems);

// The run options of `fit` and `run --tac` without validation: the bad choices are added to `problems`
// (also --population or --kinetics population with --reduced or --model, and both together);
// the dose options of `run` are set by the caller.
lutdose::RunOptions make_run_options(const FitArgs& a, std::vector<std::string>& problems);

// --kinetics previous-cycles on a TAC table (`fit`, `run --tac`): InputError naming `path` when no
// patient has more than one cycle (nothing to use as prior) or the administered activity is missing.
void check_previous_cycles_input(const std::vector<lutdose::TacSeries>& series, const lutdose::RunOptions& o,
                                 const std::string& path);

// --kinetics given with case files (`run CASE.json`, `batch CASES_DIR`): the kinetics that replaces
// their fit.kinetics. InputError naming --kinetics for population (it learns from a cohort: batch
// CASES_DIR handles it before, BatchCohort::learn_population); the case's options that exclude it,
// fit.reduced and fit.model, are refused by validate().
lutdose::Kinetics case_file_kinetics(const std::string& kinetics);

// Validates the options with the bad choices found before (every problem at once), then resolves
// the compartment model. Throws InputError.
void finish_run_options(lutdose::RunOptions& o, std::vector<std::string> problems);

// `batch CASES_DIR` (the CLI and the Python module): InputError naming the fit or dose option
// `option` ("--function") given with case files, where it belongs in the case files.
[[noreturn]] void throw_option_with_case_files(const std::string& option);

// `batch CASES_DIR`: the two fit options of `a` that apply to a folder of case files, --kinetics
// when given (a.kinetics_given; it replaces each case's fit.kinetics, and population learns the
// population from the folder first: cohort.learn_population) and --population FILE (read and
// checked into cohort.options with their conflicts, as for batch --tac: make_run_options,
// finish_run_options). InputError (nothing written) for a bad file or a conflict.
void set_case_cohort_population(const FitArgs& a, lutdose::BatchCohort& cohort);

// What `lutdose run --tac` takes besides the table: fit and dose options, the phantom or a user
// S-value table, the body mass and the Monte Carlo settings (used when given).
struct TacRunArgs {
  FitArgs fit;
  DoseArgs dose;
  std::string phantom, svalues;
  double body_mass_kg = NAN;
  std::optional<long long> mc_samples, mc_seed;
};

// The validated run options of `lutdose run --tac` (and of the Python module's run_tac): InputError
// for a missing --activity-MBq or --phantom, and listing every bad option.
lutdose::RunOptions make_tac_run_options(const TacRunArgs& a);

// --kinetics population of `fit` and `run --tac`: learns the population from `series` (read from
// a.tac), every TAC given --activity-MBq, into `o` (lutdose::use_learned_population). Nothing
// with individual kinetics. InputError when --activity-MBq is missing or learning fails.
void learn_if_population_kinetics(const FitArgs& a, const std::vector<lutdose::TacSeries>& series,
                                  lutdose::RunOptions& o);

// The population of `lutdose fit` (and of the Python module's fit_tac, fit_many): --population FILE
// needs --activity-MBq and a model for every VOI kind of `series` (InputError naming the file, the
// kind and its patients); --kinetics population learns it from `series` into `o`
// (learn_if_population_kinetics). Nothing with individual kinetics.
void use_fit_population(const FitArgs& a, const std::vector<lutdose::TacSeries>& series, lutdose::RunOptions& o);

//! The options of --kinetics population's learning that nothing else takes (--omega, --e-step,
//! --max-iterations), with their values as given ("" where not given).
std::vector<std::pair<std::string, std::string>> learning_only_options(const FitArgs& a);

// The learning options of population kinetics from their texts as population learn takes them
// (--error-model: proportional, combined, constant, input; --omega: diagonal, full; --e-step:
// sampled, laplace; empty: population learn's default) into `o`; a problem naming the option, its
// text and the choices for any other text.
void set_population_learning(lutdose::PopulationOptions& o, const std::string& error_model, const std::string& omega,
                             const std::string& e_step, std::vector<std::string>& problems);

// --population's check: an empty path is refused (it would read as no population at all).
extern const CLI::Validator population_file_path;

// The most worker threads of `batch --threads` (more only cost memory: the machine's cores do the work).
constexpr long long kMaxThreads = 256;

// `threads` checked to be 0..kMaxThreads (0: all cores); InputError naming --threads otherwise.
unsigned checked_threads(long long threads);

}  // namespace lutdose_cli
