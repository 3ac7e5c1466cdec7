#include "lutdose/io/run_files.h"

#include "lutdose/error.h"
#include "lutdose/pipeline/pipeline.h"

namespace lutdose {

void read_run_files(RunOptions& options, const ReferenceData& reference) {
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
