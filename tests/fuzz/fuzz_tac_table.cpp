// libFuzzer target: the TAC table (docs/tac-format.md), as `lutdose run/fit --tac FILE` reads it.
#include "fuzz_common.h"
#include "lutdose/io/tac_table.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = lutdose_fuzz::write_input("tac.csv", data, size);
  lutdose_fuzz::run_expecting("tac_table", [&] { (void)lutdose::read_tac_table(path); });
  return 0;
}
