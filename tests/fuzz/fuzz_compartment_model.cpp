// libFuzzer target: a compartment-model file (docs/compartment-models.md), as `--model FILE` and
// a case file's fit.model read it. ModelError is the models library's input error.
#include "fuzz_common.h"
#include "lutdose/models/compartment.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = lutdose_fuzz::write_input("model.json", data, size);
  lutdose_fuzz::run_expecting<lutdose::models::ModelError>(
      "compartment_model", [&] { (void)lutdose::models::CompartmentModel::from_file(path); });
  return 0;
}
