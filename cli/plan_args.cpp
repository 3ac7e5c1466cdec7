// `lutdose plan` without its printing (plan_args.h).
#include "plan_args.h"

#include <cmath>

#include "lutdose/error.h"
#include "lutdose/io/case_file.h"
#include "lutdose/io/data_dir.h"
#include "lutdose/io/plan_json.h"
#include "lutdose/io/plan_options.h"
#include "lutdose/io/results.h"
#include "lutdose/pipeline/pipeline.h"
#include "lutdose/io/run_files.h"
#include "run_options.h"

namespace lutdose_cli {

namespace {

std::vector<std::string> targets_of(const std::vector<lutdose::TargetHistory>& h) {
  std::vector<std::string> t;
  for (const auto& x : h) t.push_back(x.target);
  return t;
}

// The command-line options replace the case's (or the defaults).
void apply_options(const PlanArgs& a, lutdose::PlanOptions& o) {
  if (!a.strategy.empty()) o.strategy = lutdose::parse_strategy(a.strategy);
  if (!a.prediction.empty()) o.prediction = lutdose::parse_prediction(a.prediction);
  if (a.planned_cycles) {
    if (*a.planned_cycles < 1)
      lutdose::throw_input_error("--planned-cycles", "the planned cycles", std::to_string(*a.planned_cycles),
                                 "a number >= 1");
    o.planned_cycles = *a.planned_cycles;
  }
  auto set = [](const char* opt, const std::optional<double>& v, double& out) {
    if (!v) return;
    if (!(*v >= 0) || !std::isfinite(*v))
      lutdose::throw_input_error(opt, "the value", lutdose::format_number(*v), "a number >= 0");
    out = *v;
  };
  set("--a-min-MBq", a.a_min_MBq, o.a_min_MBq);
  set("--a-max-MBq", a.a_max_MBq, o.a_max_MBq);
  set("--a-standard-MBq", a.a_standard_MBq, o.a_standard_MBq);
  set("--safety-k", a.safety_k, o.safety_k);
  set("--prediction-cv", a.prediction_cv, o.prediction_cv);
  for (const auto& l : a.limits) o.limits.push_back(lutdose::parse_limit(l));
  if (a.allow_incomplete) o.allow_incomplete = true;
}

}  // namespace

PlanOutcome run_plan(const PlanArgs& a) {
  const std::string dir = lutdose::find_data_dir(a.data_dir);
  std::vector<lutdose::TargetHistory> history;
  lutdose::PlanOptions o;
  PlanOutcome out;
  if (!a.case_path.empty() == !a.history_path.empty())
    throw lutdose::InputError("command line: expected either a case file or --history DOSES.csv");
  if (!a.population.empty() && a.case_path.empty())
    lutdose::throw_input_error("command line", "--population", a.population,
                               "a case file with it (--history gives doses, not TACs to fit)");
  if (!a.case_path.empty()) {
    auto c = lutdose::load_case_file(a.case_path, a.allow_external_files);
    lutdose::use_case_population(c, a.population, std::nullopt);  // the case's fit.population or --population
    const auto run_result = lutdose::run_case(c, dir, 0, 0);
    if (const auto& ro = run_result.provenance.options; ro.population || ro.compartment_population)
      out.population = lutdose::population_source_json(ro.population_source);
    history = lutdose::history_from_run(run_result)[c.patient_id];
    o = lutdose::plan_options_from_case(c.plan, dir, targets_of(history), c.tissue_overrides, a.case_path);
    out.delivered_u = lutdose::delivered_dose_uncertainty(run_result, o.limits);
  } else {
    history = lutdose::read_dose_history(a.history_path);
    o = lutdose::plan_options_from_case(nullptr, dir, targets_of(history), {}, a.history_path);
  }
  apply_options(a, o);
  out.result = lutdose::plan_next_cycle(history, o);
  out.document = lutdose::to_json(out.result);
  if (out.population) out.document["population"] = *out.population;
  if (out.delivered_u) out.document["delivered_dose_uncertainty"] = lutdose::to_json(*out.delivered_u);
  return out;
}

}  // namespace lutdose_cli
