// libFuzzer target: the dose-history table of `lutdose plan --history FILE` (docs/plan.md): the
// table, the default plan options for its targets, and the plan itself, as the CLI runs them.
#include "fuzz_common.h"
#include "lutdose/io/plan_options.h"
#include "lutdose/pipeline/pipeline.h"
#include "lutdose/planning/planning.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = lutdose_fuzz::write_input("history.csv", data, size);
  lutdose_fuzz::run_expecting("dose_history", [&] {
    const auto history = lutdose::read_dose_history(path);
    std::vector<std::string> targets;
    for (const auto& h : history) targets.push_back(h.target);
    const auto options = lutdose::plan_options_from_case(nullptr, lutdose_fuzz::data_dir(), targets, {}, path);
    (void)lutdose::plan_next_cycle(history, options);
  });
  return 0;
}
