#include "lutdose/io/run_files.h"

#include "lutdose/error.h"
#include "lutdose/io/input_file.h"
#include "lutdose/io/output_dir.h"
#include "lutdose/io/population_file.h"
#include "lutdose/pipeline/pipeline.h"

namespace lutdose {

namespace {

// The population file a case file names (fit.population) or a command line gave, read once
// (checked: format, checksum, half-life of this run), unless the population is already there. A
// compartment population's structural model is fit.model (--model), or else the model the file
// names; read_run_files checks it against the file's SHA-256.
void read_population(RunOptions& options, const ReferenceData& reference) {
  if (options.population || options.compartment_population || options.population_source.path.empty()) return;
  const std::string& path = options.population_source.path;
  const auto file = read_population_file(path);
  check_population_half_life(file, path, reference.nuclide(options.nuclide, options.half_life_override_h).half_life_h);
  if (file.compartment) {
    options.compartment_population = std::make_shared<const CompartmentPopulation>(*file.compartment);
    if (options.compartment_model.empty()) options.compartment_model = file.compartment->model_name;
  } else {
    options.population = std::make_shared<const std::vector<PopulationModel>>(file.models);
  }
  options.population_source = {path, file.sha256, file.own_checksum_verified, "", std::nullopt};
}

}  // namespace

void read_run_files(RunOptions& options, const ReferenceData& reference) {
  read_population(options, reference);
  if (options.dose && !options.dose->svalue_table.empty() && !options.user_svalue_set)
    options.user_svalue_set = load_indexed_user_svalue_table(options.dose->svalue_table);
  if (options.compartment_model.empty() || options.compartment_model_file) return;
  options.compartment_model = find_compartment_model(options.compartment_model, reference.data_dir());
  if (options.compartment_population) {  // the population's structural model, by its SHA-256
    const auto model = read_compartment_model_file(options.compartment_model, reference.data_dir());
    const std::string& path = options.population_source.path;  // empty: learned (batch CASES_DIR --kinetics population)
    check_compartment_population_model(*options.compartment_population,
                                       path.empty() ? "the population learned by --kinetics population" : path,
                                       *model.model, model.path, model.sha256);
    options.compartment_model_file = model.model;
    return;
  }
  if (reference.shipped_compartment_model(options.compartment_model)) return;
  try {
    options.compartment_model_file =
        std::make_shared<const models::CompartmentModel>(models::CompartmentModel::from_file(options.compartment_model));
  } catch (const models::ModelError& e) {
    throw InputError(e.what());
  }
}

std::vector<std::pair<std::string, std::string>> individual_fit_options_given(const FitOptions& f) {
  const FitOptions d;
  std::vector<std::pair<std::string, std::string>> given;
  const auto add = [&](bool differs, const char* field, const std::string& value) {
    if (differs) given.emplace_back(field, value);
  };
  std::string candidates;
  for (const auto& id : f.candidates) candidates += (candidates.empty() ? "" : ",") + id;
  add(!f.forced_function.empty(), "fit.function", f.forced_function);
  add(f.candidates != d.candidates, "fit.functions", candidates);
  add(!f.error_model_by_voi_kind, "fit.error_model", error_model_label(f));
  // the option's text, as given (run_option_specs' choices "fit", "fit+1"), not to_string's name
  add(f.aicc_k != d.aicc_k, "fit.aicc_k", f.aicc_k == AiccParameterCount::fit_parameters ? "fit" : "fit+1");
  add(f.integration != d.integration, "fit.integration", to_string(f.integration));
  add(f.trapezoid_head != d.trapezoid_head, "fit.trapezoid_head", to_string(f.trapezoid_head));
  add(f.trapezoid_body != d.trapezoid_body, "fit.trapezoid_body", to_string(f.trapezoid_body));
  add(f.trapezoid_tail != d.trapezoid_tail, "fit.trapezoid_tail", to_string(f.trapezoid_tail));
  add(f.model_averaging, "fit.model_averaging", "true");
  add(f.combined_sigma0_MBq != d.combined_sigma0_MBq, "fit.combined_sigma0_MBq", format_number(f.combined_sigma0_MBq));
  add(f.combined_b != d.combined_b, "fit.combined_b", format_number(f.combined_b));
  add(f.reject_on_correlation, "fit.reject_correlated", "true");
  return given;
}

std::string population_map_fit_options_reason() {
  return "a population MAP fit uses the function and the error model of its VOI kind's population and the analytic "
         "integral; a VOI whose MAP is not accepted gets the individual fit with the default options "
         "(docs/population.md)";
}

void check_case_fit_options(const CaseFile& c, const std::string& population) {
  for (const auto& [field, value] : individual_fit_options_given(c.fit))
    throw_input_error(c.path, field, value, "no " + field + " with " + population + ": " +
                                                population_map_fit_options_reason());
}

void use_case_population(CaseFile& c, const std::string& population, const std::optional<Kinetics>& kinetics) {
  if (!population.empty() && !c.population_file.empty()) {
    // both name a file: the same bytes are the same population (the case's path is recorded);
    // different files would silently disagree, so neither wins
    const auto sha = [](const std::string& path) { return sha256_hex(read_input_file(path, "population file", true)); };
    const std::string given = sha(population), own = sha(c.population_file);
    if (given != own)
      throw_input_error("command line", "--population", population + " (SHA-256 " + given + ")",
                        "no --population, or the population file of the case file (fit.population: " +
                            c.population_file + ", SHA-256 " + own +
                            "): the two files differ; give the one to use in one place only (docs/population.md)");
  } else if (!population.empty()) {
    c.population_file = population;
  }
  if (!c.population_file.empty())
    check_case_fit_options(c, "a population file (" + c.population_file + ", fit.population or --population)");
  if (kinetics && *kinetics == Kinetics::individual && !c.population_file.empty())
    throw_input_error("command line", "--kinetics", "individual",
                      "no --kinetics individual with a population file (" + c.population_file +
                          ", fit.population or --population): it fits every VOI by MAP with the file's population "
                          "as prior (choose one)");
}

}  // namespace lutdose
