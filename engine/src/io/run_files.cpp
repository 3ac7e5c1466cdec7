#include "lutdose/io/run_files.h"

#include "lutdose/error.h"
#include "lutdose/io/population_file.h"
#include "lutdose/pipeline/pipeline.h"

namespace lutdose {

namespace {

// The population file a case file names (fit.population) or a command line gave, read once
// (checked: format, checksum, half-life of this run), unless the population is already there.
void read_population(RunOptions& options, const ReferenceData& reference) {
  if (options.population || options.population_source.path.empty()) return;
  const std::string& path = options.population_source.path;
  const auto file = read_population_file(path);
  check_population_half_life(file, path, reference.nuclide(options.nuclide, options.half_life_override_h).half_life_h);
  options.population = std::make_shared<const std::vector<PopulationModel>>(file.models);
  options.population_source = {path, file.sha256, file.own_checksum_verified, ""};
}

}  // namespace

void read_run_files(RunOptions& options, const ReferenceData& reference) {
  read_population(options, reference);
  if (options.dose && !options.dose->svalue_table.empty() && !options.user_svalue_set)
    options.user_svalue_set = load_indexed_user_svalue_table(options.dose->svalue_table);
  if (options.compartment_model.empty() || options.compartment_model_file) return;
  options.compartment_model = find_compartment_model(options.compartment_model, reference.data_dir());
  if (reference.shipped_compartment_model(options.compartment_model)) return;
  try {
    options.compartment_model_file =
        std::make_shared<const models::CompartmentModel>(models::CompartmentModel::from_file(options.compartment_model));
  } catch (const models::ModelError& e) {
    throw InputError(e.what());
  }
}

}  // namespace lutdose
