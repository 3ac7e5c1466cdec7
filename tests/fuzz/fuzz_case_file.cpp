// libFuzzer target: the case file (docs/case-file.md), as `lutdose run CASE.json` and
// `lutdose plan CASE.json` read it: parsing and validation, quantification of the measurements
// (counts to activities), and the plan block's options.
#include "fuzz_common.h"
#include "lutdose/io/case_file.h"
#include "lutdose/dosimetry/nuclide.h"
#include "lutdose/io/plan_options.h"
#include "lutdose/pipeline/pipeline.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const double lambda_per_h = lutdose::load_nuclide(lutdose_fuzz::data_dir(), "Lu-177").lambda_per_h();
  const std::string path = lutdose_fuzz::write_input("case.json", data, size);
  lutdose_fuzz::run_expecting("case_file", [&] {
    const auto c = lutdose::load_case_file(path);
    const auto q = lutdose::quantify_case(c, lambda_per_h);
    std::vector<std::string> targets;
    for (const auto& s : q.series) targets.push_back(s.voi);
    (void)lutdose::plan_options_from_case(c.plan, lutdose_fuzz::data_dir(), targets, c.tissue_overrides, path);
  });
  return 0;
}
