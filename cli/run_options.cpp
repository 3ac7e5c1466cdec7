// Command-line options shared by `run`, `fit` and `batch` (run_options.h).
#include "run_options.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <cstdlib>
#include <sstream>

#include "lutdose/dosimetry/nuclide.h"
#include "lutdose/error.h"
#include "lutdose/io/data_dir.h"
#include "lutdose/io/input_file.h"
#include "lutdose/io/output_dir.h"
#include "lutdose/io/population_file.h"
#include "lutdose/io/run_files.h"
#include "lutdose/models/exponential.h"
#include "lutdose/pipeline/pipeline.h"

namespace lutdose_cli {

namespace {

std::string function_help() {
  std::ostringstream s;
  s << "Fit function: auto (choose by AICc among --functions) or one of:";
  for (const auto& f : lutdose::models::exponential_family())
    s << "\n  " << f.id() << " (K=" << f.n_parameters() << "): " << f.formula();
  return s.str();
}

// NaN stands for "not given" in the options: a value typed as nan or inf is refused here, so that
// it is not reported as missing (or taken as not given).
const CLI::Validator finite_MBq(
    [](std::string& text) {
      return std::isfinite(std::strtod(text.c_str(), nullptr)) ? std::string()
                                                               : "'" + text + "'; expected a finite activity in MBq";
    },
    "MBq");

}  // namespace

const CLI::Validator population_file_path(
    [](std::string& text) {
      return text.empty() ? std::string("''; expected a population file (lutdose population learn)") : std::string();
    },
    "FILE");

namespace {

// The command-line option of a case file's field (run_option_specs): fit.error_model -> --error-model.
std::string cli_option_of(const std::string& field) {
  for (const auto& spec : lutdose::run_option_specs())
    if (spec.key == field && !spec.cli.empty()) return spec.cli;
  return field;  // not reached: every option of individual fits is on both sides
}

// --population FILE or --kinetics population (`how`) with options of individual fits (`f`, as the
// command line set them; the list is the engine's, individual_fit_options_given): a problem for
// each, naming it and its value (0.13 ignored them silently: no silent fallbacks).
void refuse_individual_fit_options(const lutdose::FitOptions& f, const std::string& how,
                                   std::vector<std::string>& problems) {
  for (const auto& [field, value] : lutdose::individual_fit_options_given(f)) {
    const std::string option = cli_option_of(field);
    problems.push_back(option + " is '" + value + "' with " + how + "; expected no " + option + ": " +
                       lutdose::population_map_fit_options_reason());
  }
}

// --kinetics population --model (a compartment population, as population learn --model): --free-parameters
// are the learning's, --functions are refused (the structural model is the compartment model); without
// --kinetics population --model, --free-parameters are refused.
void set_compartment_learning(const FitArgs& a, lutdose::RunOptions& o, std::vector<std::string>& problems) {
  const bool compartment = a.kinetics == "population" && !a.model.empty();
  if (!compartment && !a.free_parameters.empty())
    problems.push_back("--free-parameters is '" + a.free_parameters.front() + "' without --kinetics population "
                       "--model; expected it only with both: the compartment model's parameters the population "
                       "learns (as population learn --model --free-parameters)");
  if (!compartment) return;
  if (a.functions != FitArgs().functions)
    problems.push_back("--functions with --kinetics population --model; expected no --functions: the compartment "
                       "model is the structural model (--free-parameters chooses what is learned)");
  o.population_free_parameters = a.free_parameters;
  o.population_free_parameters_name = a.free_parameters_name;
}

// --kinetics population: --functions, --error-model, --omega, --e-step and --max-iterations are the
// learning's options (o.population_learning, as population learn takes them); --omega, --e-step and
// --max-iterations are refused without it.
void set_learning_options(const FitArgs& a, lutdose::RunOptions& o, std::vector<std::string>& problems) {
  set_compartment_learning(a, o, problems);
  if (a.kinetics == "population") {
    o.population_learning.candidates = a.functions;
    set_population_learning(o.population_learning, a.error_model, a.omega, a.e_step, problems);
    if (a.max_iterations > 0) o.population_learning.max_iterations = a.max_iterations;
    return;
  }
  for (const auto& [option, text] : learning_only_options(a))
    if (!text.empty())
      problems.push_back(std::string(option) + " is '" + text + "' without --kinetics population; expected it only "
                         "with --kinetics population: it is an option of the learning (as population learn " +
                         option + "), not of individual fits or of a population file's MAP");
}

// InputError: `a` gives no administered activity (NaN), which `needed_with` needs, named as `a`
// names it (--activity-MBq on the command line).
[[noreturn]] void throw_activity_missing(const FitArgs& a, const std::string& needed_with) {
  lutdose::throw_input_error(a.given_in, a.activity_name, "missing", "the administered activity in MBq with " + needed_with);
}

}  // namespace

// The options of --kinetics population's learning that nothing else takes, with their values as given
// ("" where not given).
std::vector<std::pair<std::string, std::string>> learning_only_options(const FitArgs& a) {
  return {{"--omega", a.omega},
          {"--e-step", a.e_step},
          {"--max-iterations", a.max_iterations > 0 ? std::to_string(a.max_iterations) : ""}};
}

void set_population_learning(lutdose::PopulationOptions& o, const std::string& error_model, const std::string& omega,
                             const std::string& e_step, std::vector<std::string>& problems) {
  if (const auto m = lutdose::parse_population_error_model(error_model))
    o.error_model = *m;
  else if (!error_model.empty())
    problems.push_back("--error-model is '" + error_model + "' with --kinetics population; expected proportional, "
                       "combined, constant or input: the population's residual error model (population learn "
                       "--error-model; docs/population.md)");
  if (omega == "full" || omega == "diagonal")
    o.omega_structure = omega == "full" ? lutdose::OmegaStructure::full : lutdose::OmegaStructure::diagonal;
  else if (!omega.empty())
    problems.push_back("--omega is '" + omega + "'; expected diagonal or full");
  if (e_step == "sampled" || e_step == "laplace") o.sampled_e_step = e_step == "sampled";
  else if (!e_step.empty()) problems.push_back("--e-step is '" + e_step + "'; expected sampled or laplace");
}

void add_fit_options(CLI::App* cmd, FitArgs& a, bool tac_required) {
  auto* tac = cmd->add_option("--tac", a.tac,
                  "TAC table (CSV): columns voi, time_h, activity_MBq; optional patient, cycle, "
                  "volume_mL, mass_g, activity_u_MBq. Activities as measured, not decay-corrected.");
  if (tac_required) tac->required();
  cmd->add_option("--activity-MBq", a.activity_MBq,
                  "Administered activity [MBq], net of the residual in syringe and line")
      ->check(finite_MBq);
  cmd->add_option("--function", a.function, function_help())->capture_default_str();
  cmd->add_option("--functions", a.functions,
                  "Candidates for --function auto (ids separated by commas); with --kinetics population the "
                  "population's candidates, chosen by BIC (as population learn --functions)")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--error-model", a.error_model,
                  "Weighting: proportional (sigma = b*y, weights 1/y^2), proportional-model (sigma = "
                  "b*f(t), iteratively reweighted), constant (unweighted least squares), combined "
                  "(sigma^2 = sigma0^2 + (b y)^2, see --combined-*), poisson (case files: sigma from the counts, "
                  "sqrt(C) through the quantification) or input (sigma = activity_u_MBq); default: "
                  "proportional-model for tumour VOIs, proportional for the others. With --kinetics population: "
                  "the population's residual error model, proportional (default), combined, constant or input "
                  "(as population learn --error-model)")
      ->check([](const std::string& s) { return s.empty() ? std::string("an empty text; expected a model name") : ""; })
      ->capture_default_str();
  cmd->add_option("--combined-sigma0-MBq", a.combined_sigma0, "sigma0 of the combined error model [MBq]");
  cmd->add_option("--combined-b", a.combined_b, "Relative b of the combined error model");
  cmd->add_option("--integration", a.integration,
                  "TIA: analytic (the fitted function) or trapezoid (numerical, with --trapezoid-*)")
      ->capture_default_str();
  cmd->add_option("--trapezoid-body", a.body, "Between points: linear or log (exponential interpolation)")
      ->capture_default_str();
  cmd->add_option("--trapezoid-tail", a.tail,
                  "After the last point: physical (A_n/lambda_p) or fit (A_n/k, k from the last 3 points, k >= lambda_p)")
      ->capture_default_str();
  cmd->add_option("--reduced", a.reduced,
                  "Reduced schedule for every VOI (docs/reduced-schedules.md): none (fit), hanscheid, "
                  "madsen, population (single time point: the last) or prior (MAP fit with population "
                  "priors; needs activity_u_MBq)")
      ->capture_default_str();
  cmd->add_option("--model", a.model,
                  "Compartment model (a file, or a shipped one: blood_organ_linear, prrt_multiorgan_linear, "
                  "receptor_pbpk_template; docs/compartment-models.md): the VOIs it observes are fitted "
                  "jointly (needs --activity-MBq); the others keep the exponential family");
  cmd->add_flag("--model-averaging", a.model_averaging,
                "Use the Akaike-weighted average of the candidates' TIAs (always reported)");
  cmd->add_option("--aicc-k", a.aicc_k,
                  "K in AIC/AICc: fit (fitted parameters) or fit+1 (plus the estimated variance)")
      ->capture_default_str();
  cmd->add_option("--trapezoid-head", a.head,
                  "Head of the trapezoid fallback (0 to first point): linear (from A(0)=0) or "
                  "constant")
      ->capture_default_str();
  cmd->add_flag("--reject-correlated", a.reject_correlated,
                "Reject fits with a parameter correlation |r| >= 0.8 (by default it is a warning)");
  cmd->add_option("--half-life-h", a.half_life_h,
                  "Override the ICRP-107 half-life [h] (recorded in the output)");
  cmd->add_option("--population", a.population,
                  "Population file (lutdose population learn): every VOI is fitted by MAP with its VOI kind's "
                  "population as prior (docs/population.md); TAC tables and case files (run CASE.json, batch "
                  "CASES_DIR: a case's fit.population, if any, must be the same file); needs the administered activity "
                  "(--activity-MBq, batch's patients table, or the case's cycles): amplitudes are per activity; the "
                  "options of individual fits (--function, --error-model, ...) are refused with it")
      ->check(population_file_path);
  cmd->add_option("--omega", a.omega,
                  "With --kinetics population: the learned random-effect covariance, diagonal (default) or full "
                  "(as population learn --omega; docs/population.md)")
      ->check(CLI::IsMember({"diagonal", "full"}));
  cmd->add_option("--e-step", a.e_step,
                  "With --kinetics population: the learning's E-step, sampled (default) or laplace (as population "
                  "learn --e-step)")
      ->check(CLI::IsMember({"sampled", "laplace"}));
  cmd->add_option("--max-iterations", a.max_iterations,
                  "With --kinetics population: the learning's iterations at most, per stage (as population learn "
                  "--max-iterations; default 100)")
      ->check(CLI::Range(1, 100000));
  cmd->add_option("--free-parameters", a.free_parameters,
                  "With --kinetics population --model: the model's parameters with random effects (as population "
                  "learn --free-parameters; default: those with \"fit\": true)")
      ->delimiter(',');
  cmd->add_option("--kinetics", a.kinetics,
                  "individual (each TAC alone, default); population: learn the population from the input TAC "
                  "table or batch's folder of case files (as lutdose population learn), then fit every TAC by MAP "
                  "with it (not run CASE.json; needs the administered activities, --activity-MBq, batch's patients "
                  "table or the cases' cycles; not with --population; --functions, --error-model, --omega, "
                  "--e-step and --max-iterations are then the learning's, as population learn's; with --model the "
                  "compartment model's population, as population learn --model, and --free-parameters); previous-cycles (multi-cycle inputs, also case files: each later cycle by MAP "
                  "with the patient's earlier cycles of the VOI as prior, the first cycle individually); "
                  "docs/population.md")
      ->check(CLI::IsMember({"individual", "population", "previous-cycles"}))
      ->each([&a](const std::string&) { a.kinetics_given = true; })
      ->capture_default_str();
  cmd->add_option("--data-dir", a.data_dir,
                  "Reference data directory (default: $LUTDOSE_DATA_DIR, the install prefix, or "
                  "the build's source tree)");
}

// A choice option of the command line, through the one mapping of option texts to typed fields
// (lutdose::set_choice_option, shared with the case file); a bad text is added to `problems`.
void choose(const lutdose::OptionFields& f, const std::string& cli, const std::string& text,
            std::vector<std::string>& problems) {
  if (const auto expected = lutdose::set_choice_option(f, cli, text))
    problems.push_back(lutdose::option_problem(cli, text, *expected));
}

// Throws InputError listing every problem of the command line, one per line, if any.
void throw_problems(const std::vector<std::string>& problems) {
  if (problems.empty()) return;
  std::string text;
  for (const auto& p : problems) text += (text.empty() ? "" : "\n") + std::string("command line: ") + p;
  throw lutdose::InputError(text);
}

// The run options of `fit` and `run --tac` without validation: the bad choices are added to `problems`;
// the dose options of `run` are set by the caller.
lutdose::RunOptions make_run_options(const FitArgs& a, std::vector<std::string>& problems) {
  lutdose::RunOptions o;
  o.data_dir = lutdose::find_data_dir(a.data_dir);
  o.tac_path = a.tac;
  o.administered_MBq = a.activity_MBq;
  o.half_life_override_h = a.half_life_h;
  lutdose::DoseOptions no_dose;
  const lutdose::OptionFields f{o.fit, no_dose, o.reduced, o.residual};
  if (!a.error_model.empty() && a.kinetics != "population") choose(f, "--error-model", a.error_model, problems);
  for (const auto& [cli, text] : {std::pair{"--aicc-k", a.aicc_k}, {"--trapezoid-body", a.body},
                                  {"--trapezoid-tail", a.tail}, {"--integration", a.integration},
                                  {"--reduced", a.reduced}, {"--trapezoid-head", a.head}, {"--function", a.function}})
    choose(f, cli, text, problems);
  o.fit.model_averaging = a.model_averaging;
  o.compartment_model = a.model;
  o.fit.combined_sigma0_MBq = a.combined_sigma0;
  o.fit.combined_b = a.combined_b;
  o.fit.reject_on_correlation = a.reject_correlated;
  if (a.kinetics != "population") o.fit.candidates = a.functions;  // population: the learning's candidates
  set_learning_options(a, o, problems);
  if (a.kinetics != "population")  // individual or previous-cycles: o.fit.kinetics (population: learned later)
    choose(f, "--kinetics", a.kinetics, problems);
  if (a.kinetics == "population" || !a.population.empty())
    refuse_individual_fit_options(o.fit, a.kinetics == "population" ? "--kinetics population" : "--population",
                                  problems);
  if (a.kinetics == "population") {
    if (!a.population.empty())
      problems.push_back("--kinetics population with --population: choose one (--population uses a learned "
                         "population file, --kinetics population learns the population from the input)");
    if (!a.reduced.empty() && a.reduced != "none") problems.push_back("--kinetics population with --reduced: choose one");
  } else if (!a.population.empty()) {
    // --population fits every TAC by MAP: individual kinetics asked for contradicts it (previous-cycles
    // with it is refused by validate(), with its own message)
    if (a.kinetics_given && a.kinetics == "individual")
      problems.push_back("--kinetics " + a.kinetics + " with --population: choose one (--population fits every TAC "
                         "by MAP with the file's population as prior)");
    const auto file = lutdose::read_population_file(a.population);
    lutdose::check_population_half_life(
        file, a.population, lutdose::load_nuclide(o.data_dir, "Lu-177", o.half_life_override_h).half_life_h);
    if (file.compartment) {  // its structural model: --model, else the model it names (read_run_files checks it)
      o.compartment_population = std::make_shared<const lutdose::CompartmentPopulation>(*file.compartment);
      if (a.model.empty()) o.compartment_model = file.compartment->model_name;
    } else {
      o.population = std::make_shared<const std::vector<lutdose::PopulationModel>>(file.models);
    }
    o.population_source = {a.population, file.sha256, file.own_checksum_verified, "", std::nullopt};
    // with --reduced or --model: refused by validate() (finish_run_options), as in case files
  }
  return o;
}

void check_previous_cycles_input(const std::vector<lutdose::TacSeries>& series, const lutdose::RunOptions& o,
                                 const std::string& path) {
  if (o.fit.kinetics != lutdose::Kinetics::previous_cycles) return;
  std::map<std::string, std::set<int>> cycles;
  for (const auto& s : series) cycles[s.patient].insert(s.cycle);
  if (std::none_of(cycles.begin(), cycles.end(), [](const auto& p) { return p.second.size() > 1; }))
    lutdose::throw_input_error(path, "the cycles of each patient", "one cycle",
                               "a patient with several cycles (a cycle column) for --kinetics previous-cycles: the "
                               "earlier cycles are the prior of the later ones");
  if (!(o.administered_MBq > 0) && o.administered_by_cycle_MBq.empty())
    lutdose::throw_input_error("command line", "--activity-MBq", "missing",
                               "the administered activity in MBq with --kinetics previous-cycles: the prior's "
                               "amplitudes are per administered activity");
}

lutdose::Kinetics case_file_kinetics(const std::string& kinetics) {
  if (kinetics == "population")
    lutdose::throw_input_error("command line", "--kinetics", kinetics,
                               "individual or previous-cycles with a case file (--kinetics population learns from a "
                               "cohort: fit, run --tac, batch --tac, batch CASES_DIR; docs/population.md)");
  const auto k = lutdose::parse_kinetics(kinetics);  // CLI11 checked the choices (add_fit_options)
  if (!k) lutdose::throw_input_error("command line", "--kinetics", kinetics, "individual or previous-cycles");
  return *k;
}

// Validates the options with the bad choices found before (every problem at once), then resolves
// the compartment model. Throws InputError.
void finish_run_options(lutdose::RunOptions& o, std::vector<std::string> problems) {
  for (auto& p : lutdose::validate(o)) problems.push_back(std::move(p));
  throw_problems(problems);
  if (!o.compartment_model.empty()) o.compartment_model = lutdose::find_compartment_model(o.compartment_model, o.data_dir);
}

void throw_option_with_case_files(const std::string& option) {
  lutdose::throw_input_error("command line", option, "given with case files",
                             "the option in the case files (their \"fit\", \"dose\" or cycle blocks)");
}

void set_case_cohort_population(const FitArgs& a, lutdose::BatchCohort& cohort) {
  std::vector<std::string> problems;
  cohort.options = make_run_options(a, problems);  // only the population of these options is used
  finish_run_options(cohort.options, problems);
  cohort.learn_population = a.kinetics == "population";
  if (a.kinetics_given && !cohort.learn_population) cohort.kinetics = case_file_kinetics(a.kinetics);
}


void add_dose_options(CLI::App* cmd, DoseArgs& a) {
  cmd->add_option("--tumour-method", a.tumour_method,
                  "Dose to tumour_*/lesion_* VOIs: sphere (sphere S-values) or local (electron "
                  "energy deposited locally)")
      ->capture_default_str();
  cmd->add_option("--sphere-composition", a.composition,
                  "Sphere composition, soft tissue/bone: 100%/0%, 75%/25%, 50%/50%, 25%/75%, 0%/100%")
      ->capture_default_str();
  cmd->add_option("--density-g-per-mL", a.density, "Density that turns an organ's volume_mL into mass [g/mL]")
      ->capture_default_str();
  cmd->add_option("--mass-scaling", a.mass_scaling,
                  "Organ self-S scaled to the patient's mass: electron-photon (Delta_e/m plus the "
                  "photon part x (m_ref/m)^(2/3)) or inverse-mass (S_ref m_ref/m)")
      ->capture_default_str();
  cmd->add_option("--cross-scaling", a.cross_scaling,
                  "Cross-dose S: none (phantom values) or body-mass (x phantom/patient body mass)")
      ->capture_default_str();
}

lutdose::DoseOptions make_dose_options(const DoseArgs& a, lutdose::RunOptions& o, std::vector<std::string>& problems) {
  lutdose::DoseOptions d;
  const lutdose::OptionFields f{o.fit, d, o.reduced, o.residual};
  for (const auto& [cli, text] : {std::pair{"--tumour-method", a.tumour_method}, {"--sphere-composition", a.composition},
                                  {"--mass-scaling", a.mass_scaling}, {"--cross-scaling", a.cross_scaling}})
    choose(f, cli, text, problems);
  d.organ_density_g_per_mL = a.density;
  return d;
}

void use_user_svalues(lutdose::DoseOptions& d, const std::string& svalues) {
  if (svalues.empty()) return;
  if (!d.phantom.empty() && d.phantom != "user")  // the table's S-values would replace the phantom's unseen
    lutdose::throw_input_error("command line", "--phantom", d.phantom,
                               "no phantom beside --svalues " + svalues +
                                   " (the table's S-values replace a phantom's): give one of the two");
  d.svalue_table = svalues;
  d.phantom = "user";
}

lutdose::RunOptions make_tac_run_options(const TacRunArgs& a) {
  if (std::isnan(a.fit.activity_MBq)) throw_activity_missing(a.fit, "--tac");
  if (a.phantom.empty() && a.svalues.empty())
    lutdose::throw_input_error("command line", "--phantom", "missing",
                               "a phantom with --tac: icrp110-am, icrp110-af, icrp89-male, "
                               "icrp89-female (or --svalues FILE)");
  std::vector<std::string> problems;
  auto o = make_run_options(a.fit, problems);
  auto d = make_dose_options(a.dose, o, problems);
  d.phantom = a.phantom;
  d.body_mass_g = a.body_mass_kg * 1000.0;
  use_user_svalues(d, a.svalues);
  o.dose = d;
  const auto mc = lutdose::validate_monte_carlo(a.mc_samples.value_or(0), a.mc_seed.value_or(0));
  problems.insert(problems.end(), mc.begin(), mc.end());
  if (mc.empty() && a.mc_samples) o.mc_samples = static_cast<int>(*a.mc_samples);
  if (mc.empty() && a.mc_seed) o.mc_seed = static_cast<unsigned long long>(*a.mc_seed);
  finish_run_options(o, problems);
  return o;
}

void learn_if_population_kinetics(const FitArgs& a, const std::vector<lutdose::TacSeries>& series,
                                  lutdose::RunOptions& o) {
  if (a.kinetics != "population") return;
  if (!(o.administered_MBq > 0))  // NaN: not given (make_run_options refuses values <= 0)
    throw_activity_missing(a, "--kinetics population: a population models amplitudes per administered activity");
  std::vector<std::string> notes;  // the VOIs a compartment model does not observe, as population learn's
  lutdose::use_learned_population(o, series, std::vector<double>(series.size(), o.administered_MBq), a.tac, 0, &notes);
  for (const auto& n : notes) std::cerr << "lutdose: note: " << n << "\n";
}

void use_fit_population(const FitArgs& a, const std::vector<lutdose::TacSeries>& series, lutdose::RunOptions& o) {
  if (!a.population.empty()) {
    if (!(o.administered_MBq > 0))  // NaN: not given (make_run_options refuses values <= 0)
      throw_activity_missing(a, "--population: a population models amplitudes per administered activity");
    if (o.population) lutdose::check_population_covers(*o.population, a.population, series, a.tac);
  }
  learn_if_population_kinetics(a, series, o);
}

unsigned checked_threads(long long threads) {
  if (threads < 0 || threads > kMaxThreads)
    lutdose::throw_input_error("command line", "--threads", std::to_string(threads),
                               "a whole number from 0 to " + std::to_string(kMaxThreads) + " (0: all cores)");
  return static_cast<unsigned>(threads);
}

}  // namespace lutdose_cli
