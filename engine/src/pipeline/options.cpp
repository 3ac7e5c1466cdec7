#include "lutdose/pipeline/options.h"

#include <cmath>
#include <functional>
#include <stdexcept>

#include "lutdose/error.h"
#include "lutdose/io/input_file.h"
#include "lutdose/models/exponential.h"

namespace lutdose {

std::string to_string(InputKind k) { return k == InputKind::case_file ? "case-file" : "tac-table"; }

namespace {

// "a, b, c"
std::string listed(const std::vector<std::string>& items) {
  std::string s;
  for (const auto& i : items) s += (s.empty() ? "" : ", ") + i;
  return s;
}

std::vector<std::string> function_choices() {
  std::vector<std::string> c = models::exponential_ids();
  c.insert(c.begin(), "auto");
  return c;
}

// The setters of the choice options: the text is one of the spec's choices.
using Setter = std::function<void(const OptionFields&, const std::string&)>;

const std::map<std::string, Setter>& choice_setters() {
  static const std::map<std::string, Setter> setters = {
      {"fit.function", [](const OptionFields& f, const std::string& t) { f.fit.forced_function = t == "auto" ? "" : t; }},
      {"fit.error_model",
       [](const OptionFields& f, const std::string& t) {
         f.fit.error_model = parse_error_model(t);
         f.fit.error_model_name = t;
         f.fit.error_model_by_voi_kind = false;
       }},
      {"fit.aicc_k",
       [](const OptionFields& f, const std::string& t) {
         f.fit.aicc_k = t == "fit" ? AiccParameterCount::fit_parameters : AiccParameterCount::fit_parameters_plus_one;
       }},
      {"fit.trapezoid_head",
       [](const OptionFields& f, const std::string& t) {
         f.fit.trapezoid_head = t == "linear" ? TrapezoidHead::linear : TrapezoidHead::constant;
       }},
      {"fit.trapezoid_body",
       [](const OptionFields& f, const std::string& t) {
         f.fit.trapezoid_body = t == "linear" ? TrapezoidBody::linear : TrapezoidBody::log;
       }},
      {"fit.trapezoid_tail",
       [](const OptionFields& f, const std::string& t) {
         f.fit.trapezoid_tail = t == "physical" ? TrapezoidTail::physical : TrapezoidTail::fit;
       }},
      {"fit.integration",
       [](const OptionFields& f, const std::string& t) {
         f.fit.integration = t == "analytic" ? Integration::analytic : Integration::trapezoid;
       }},
      {"fit.reduced", [](const OptionFields& f, const std::string& t) { f.reduced = *parse_reduced_schedule(t); }},
      {"fit.kinetics",
       [](const OptionFields& f, const std::string& t) {
         f.fit.kinetics = *parse_kinetics(t);
       }},
      {"dose.tumour_method", [](const OptionFields& f, const std::string& t) { f.dose.tumour_method = parse_tumour_method(t); }},
      {"dose.sphere_composition", [](const OptionFields& f, const std::string& t) { f.dose.sphere_composition = t; }},
      {"dose.mass_scaling", [](const OptionFields& f, const std::string& t) { f.dose.mass_scaling = parse_mass_scaling(t); }},
      {"dose.cross_scaling", [](const OptionFields& f, const std::string& t) { f.dose.cross_scaling = parse_cross_scaling(t); }},
      {"dose.marrow.method", [](const OptionFields& f, const std::string& t) { f.dose.marrow.method = *parse_marrow_method(t); }},
      {"radiobiology.residual",
       [](const OptionFields& f, const std::string& t) { f.residual = *parse_residual_handling(t); }},
  };
  return setters;
}

}  // namespace

const std::vector<OptionSpec>& run_option_specs() {
  static const std::vector<OptionSpec> specs = {
      {"--tac", "", {}, "the case file holds its measurements in its cycles"},
      {"--activity-MBq", "", {}, "a case file gives the administered activity per cycle (cycles[].administered)"},
      {"--function", "fit.function", function_choices(), ""},
      {"--functions", "fit.functions", {}, ""},
      {"--error-model", "fit.error_model",
       {"proportional", "proportional-model", "constant", "combined", "poisson", "input"}, ""},
      {"--combined-sigma0-MBq", "fit.combined_sigma0_MBq", {}, ""},
      {"--combined-b", "fit.combined_b", {}, ""},
      {"--integration", "fit.integration", {"analytic", "trapezoid"}, ""},
      {"--trapezoid-head", "fit.trapezoid_head", {"linear", "constant"}, ""},
      {"--trapezoid-body", "fit.trapezoid_body", {"linear", "log"}, ""},
      {"--trapezoid-tail", "fit.trapezoid_tail", {"physical", "fit"}, ""},
      {"--reduced", "fit.reduced", {"none", "hanscheid", "madsen", "population", "prior"}, ""},
      {"--model", "fit.model", {}, ""},
      {"--kinetics", "fit.kinetics", {"individual", "previous-cycles"}, ""},
      {"--population", "fit.population", {}, ""},
      {"--model-averaging", "fit.model_averaging", {}, ""},
      {"--aicc-k", "fit.aicc_k", {"fit", "fit+1"}, ""},
      {"--reject-correlated", "fit.reject_correlated", {}, ""},
      {"--half-life-h", "half_life", {}, ""},
      {"--phantom", "phantom", {}, ""},
      {"--tumour-method", "dose.tumour_method", {"sphere", "local"}, ""},
      {"--sphere-composition", "dose.sphere_composition", {"100%/0%", "75%/25%", "50%/50%", "25%/75%", "0%/100%"}, ""},
      {"--density-g-per-mL", "dose.organ_density_g_per_mL", {}, ""},
      {"--mass-scaling", "dose.mass_scaling", {"electron-photon", "inverse-mass"}, ""},
      {"--cross-scaling", "dose.cross_scaling", {"none", "body-mass"}, ""},
      {"--body-mass-kg", "patient.mass", {}, ""},
      {"--svalues", "dose.svalues", {}, ""},
      {"--mc-samples", "uncertainty.monte_carlo_samples", {}, ""},
      {"--mc-seed", "uncertainty.seed", {}, ""},
      {"--data-dir", "", {}, "where this installation keeps its reference data, not a property of the patient"},
      {"--out", "", {}, "where to write is chosen per run, not per patient"},
      {"--quiet", "", {}, "terminal output only"},
      {"--allow-external-files", "", {}, "a case file may not allow itself to read outside its folder"},
      {"", "dose.marrow.method", {"none", "blood", "image"},
       "needs blood samples or an L2-L4 VOI with its fraction, which only a case file carries"},
      {"", "radiobiology.residual", {"none", "integrate-to-next", "subtract"},
       "needs the cycles' reference times, which only a case file carries"},
      {"", "radiobiology.tissues", {}, "per-tissue parameter blocks, too structured for a command line"},
      {"", "radiobiology.repopulation", {}, "needs several cycles with reference times (case files)"},
  };
  return specs;
}

const OptionSpec& option_spec(const std::string& name) {
  for (const auto& s : run_option_specs())
    if ((!s.key.empty() && s.key == name) || (!s.cli.empty() && s.cli == name)) return s;
  throw std::out_of_range("no run option named " + name);
}

std::optional<std::string> set_choice_option(const OptionFields& fields, const std::string& name,
                                             const std::string& text) {
  const OptionSpec& s = option_spec(name);
  const auto setter = choice_setters().find(s.key);
  if (s.choices.empty() || setter == choice_setters().end())
    throw std::logic_error("set_choice_option: " + name + " is not a choice option");
  for (const auto& c : s.choices)
    if (c == text) {
      setter->second(fields, text);
      return std::nullopt;
    }
  return "one of " + listed(s.choices);
}

// "fit.combined_b (--combined-b) = '-1': expected a number >= 0"
std::string option_problem(const std::string& key, const std::string& value, const std::string& expected) {
  const OptionSpec& s = option_spec(key);
  std::string name = s.key.empty() ? s.cli : s.key;
  if (!s.key.empty() && !s.cli.empty()) name += " (" + s.cli + ")";
  return name + " = '" + value + "': expected " + expected;
}

RunOptions run_options_of_case(const CaseFile& c) {
  RunOptions o;
  o.tac_path = c.path;
  o.input_kind = InputKind::case_file;
  o.fit = c.fit;
  o.dose = c.dose;
  o.nuclide = c.nuclide;
  o.half_life_override_h = c.half_life_override_h;
  o.residual = c.residual;
  o.reduced = c.reduced;
  o.compartment_model = c.compartment_model;
  o.population_source.path = c.population_file;  // read with the other files (read_run_files)
  for (const auto& cy : c.cycles)
    if (!std::isnan(cy.reference_abs_h)) o.cycle_start_h[cy.cycle] = cy.reference_abs_h;
  o.tissue_overrides = c.tissue_overrides;
  o.repopulation_targets = c.repopulation_targets;
  o.repopulation_alpha_per_Gy = c.repopulation_alpha_per_Gy;
  o.repopulation_t_pot_d = c.repopulation_t_pot_d;
  o.repopulation_kickoff_d = c.repopulation_kickoff_d;
  o.mc_samples = c.mc_samples;
  o.mc_seed = c.mc_seed;
  return o;
}

std::vector<std::string> validate_monte_carlo(long long samples, long long seed) {
  // More samples than this give no useful precision for a cross-check and take hours (each sample refits
  // every VOI).
  constexpr long long max_samples = 1000000;
  std::vector<std::string> p;
  if (samples < 0 || samples > max_samples)
    p.push_back(option_problem("uncertainty.monte_carlo_samples", std::to_string(samples),
                               "a whole number from 0 to " + std::to_string(max_samples) + " (0: no Monte Carlo)"));
  if (seed < 0) p.push_back(option_problem("uncertainty.seed", std::to_string(seed), "a whole number >= 0"));
  return p;
}

std::vector<std::string> validate(const RunOptions& o) {
  const auto problem = option_problem;
  std::vector<std::string> p;
  if (!std::isnan(o.administered_MBq) && !(o.administered_MBq > 0 && std::isfinite(o.administered_MBq)))
    p.push_back(problem("--activity-MBq", format_number(o.administered_MBq), "an activity > 0 MBq"));
  if (!(o.half_life_override_h >= 0) || !std::isfinite(o.half_life_override_h))
    p.push_back(problem("half_life", format_number(o.half_life_override_h), "a half-life > 0 h (0: ICRP-107)"));
  if (!(o.fit.combined_sigma0_MBq >= 0) || !std::isfinite(o.fit.combined_sigma0_MBq))
    p.push_back(problem("fit.combined_sigma0_MBq", format_number(o.fit.combined_sigma0_MBq), "a number >= 0"));
  if (!(o.fit.combined_b >= 0) || !std::isfinite(o.fit.combined_b))
    p.push_back(problem("fit.combined_b", format_number(o.fit.combined_b), "a number >= 0"));
  if (o.fit.error_model == ErrorModel::combined && o.fit.combined_sigma0_MBq == 0 && o.fit.combined_b == 0)
    p.push_back(problem("fit.error_model", "combined",
                        "fit.combined_sigma0_MBq (--combined-sigma0-MBq) and/or fit.combined_b (--combined-b) > 0 with it"));
  for (const auto& id : o.fit.candidates)
    if (!models::find_exponential(id))
      p.push_back(problem("fit.functions", id, "ids of the exponential family (" + listed(models::exponential_ids()) + ")"));
  if (o.fit.candidates.empty() && o.fit.forced_function.empty())
    p.push_back(problem("fit.functions", "", "at least one function id"));
  if (!o.fit.forced_function.empty() && !models::find_exponential(o.fit.forced_function))
    p.push_back(problem("fit.function", o.fit.forced_function, "one of " + listed(function_choices())));
  if (o.dose && !DENSITY_RANGE_G_PER_ML.contains(o.dose->organ_density_g_per_mL))
    p.push_back(problem("dose.organ_density_g_per_mL", format_number(o.dose->organ_density_g_per_mL),
                        "a density " + DENSITY_RANGE_G_PER_ML.text()));
  for (auto& mc : validate_monte_carlo(o.mc_samples, 0)) p.push_back(std::move(mc));
  // a population file asked for (read or not yet read, read_run_files) or a learned population
  const bool population = o.population || o.compartment_population || !o.population_source.path.empty();
  if (population && o.reduced != ReducedSchedule::none)
    p.push_back(problem("fit.population", o.population_source.path.empty() ? "learned" : o.population_source.path,
                        "no fit.reduced (--reduced) with it: both replace the individual fit (choose one)"));
  // a file not yet read may be a compartment population of that model (read_run_files checks the model)
  if (o.population && !o.compartment_model.empty())
    p.push_back(problem("fit.population", o.population_source.path.empty() ? "learned" : o.population_source.path,
                        "no fit.model (--model) with it: the MAP of a population of the exponential family fits "
                        "exponentials, not a compartment model (choose one, or learn a compartment population: "
                        "population learn --model)"));
  if (o.fit.kinetics == Kinetics::previous_cycles && (o.reduced != ReducedSchedule::none || !o.compartment_model.empty() || population))
    p.push_back(problem("fit.kinetics", "previous-cycles",
                        "individual kinetics with fit.reduced (--reduced), fit.model (--model) or --population (the "
                        "previous-cycles MAP replaces the individual fit; choose one)"));
  if (o.fit.kinetics == Kinetics::previous_cycles && o.fit.integration == Integration::trapezoid)
    p.push_back(problem("fit.kinetics", "previous-cycles",
                        "analytic integration with it (fit.integration = trapezoid fits no function to form the "
                        "prior from; choose one)"));
  if (!o.compartment_model.empty() && o.residual == ResidualHandling::integrate_to_next)
    p.push_back(problem("radiobiology.residual", "integrate-to-next",
                        "none or subtract with a compartment model (its TIA is integrated to infinity; a finite "
                        "horizon is not implemented for ODE models yet)"));
  return p;
}

void validate_or_throw(const RunOptions& options, const std::string& where) {
  const auto problems = validate(options);
  if (problems.empty()) return;
  std::string text;
  for (const auto& p : problems) text += (text.empty() ? "" : "\n") + where + ": " + p;
  throw InputError(text);
}

}  // namespace lutdose
