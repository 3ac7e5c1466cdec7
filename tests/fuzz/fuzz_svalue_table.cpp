// libFuzzer target: a user S-value table (docs/svalues.md), as `--svalues FILE` and
// `lutdose info svalues --svalues FILE` read it: the table, then its VOI-name map.
#include "fuzz_common.h"
#include "lutdose/dosimetry/svalues.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = lutdose_fuzz::write_input("svalues.csv", data, size);
  lutdose_fuzz::run_expecting("svalue_table", [&] {
    const auto set = lutdose::load_user_svalue_table(path);
    (void)lutdose::user_voi_region_map(set);
  });
  return 0;
}
