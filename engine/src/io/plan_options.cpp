#include "lutdose/io/plan_options.h"

#include "lutdose/error.h"
#include "lutdose/io/input_file.h"

namespace lutdose {

PlanOptions plan_options_from_case(const nlohmann::json& b, const std::string& data_dir,
                                   const std::vector<std::string>& targets,
                                   const std::vector<std::pair<std::string, TissueParameters>>& overrides,
                                   const std::string& where) {
  PlanOptions o;
  o.limits = load_limits(data_dir);
  o.priors = load_population_priors(data_dir);
  TissueTable tissue = TissueTable::load(data_dir);
  for (const auto& [pattern, p] : overrides) tissue.set(pattern, p);
  for (const auto& t : targets)
    if (const TissueParameters* p = tissue.find(t)) o.tissue[t] = *p;
  if (b.is_null()) return o;
  auto number = [&](const char* key, double& out, const PlausibleRange& range) {
    if (!b.contains(key)) return;
    if (!b[key].is_number() || !range.contains(b[key].get<double>()))
      throw_input_error(where, std::string("plan.") + key, b[key].dump(), "a number " + range.text());
    out = b[key].get<double>();
  };
  auto text = [&](const char* key) {
    if (!b[key].is_string()) throw_input_error(where, std::string("plan.") + key, b[key].dump(), "a text value");
    return b[key].get<std::string>();
  };
  if (b.contains("strategy")) o.strategy = parse_strategy(text("strategy"));
  if (b.contains("prediction")) o.prediction = parse_prediction(text("prediction"));
  if (b.contains("planned_cycles")) {
    if (!b["planned_cycles"].is_number_integer() || b["planned_cycles"].get<long long>() < 1 ||
        b["planned_cycles"].get<long long>() > static_cast<long long>(MAX_CYCLES) ||
        (b["planned_cycles"].is_number_unsigned() && b["planned_cycles"].get<unsigned long long>() > MAX_CYCLES))
      throw_input_error(where, "plan.planned_cycles", b["planned_cycles"].dump(),
                        "a whole number from 1 to " + std::to_string(MAX_CYCLES));
    o.planned_cycles = static_cast<int>(b["planned_cycles"].get<long long>());
  }
  number("a_min_MBq", o.a_min_MBq, ACTIVITY_RANGE_MBQ);
  number("a_max_MBq", o.a_max_MBq, ACTIVITY_RANGE_MBQ);
  number("a_standard_MBq", o.a_standard_MBq, ACTIVITY_RANGE_MBQ);
  number("safety_k", o.safety_k, SAFETY_K_RANGE);
  number("prediction_cv", o.prediction_cv, PREDICTION_CV_RANGE);
  if (b.contains("allow_incomplete")) {
    if (!b["allow_incomplete"].is_boolean())
      throw_input_error(where, "plan.allow_incomplete", b["allow_incomplete"].dump(), "true or false");
    o.allow_incomplete = b["allow_incomplete"].get<bool>();
  }
  if (b.contains("limits")) {
    if (!b["limits"].is_array())
      throw_input_error(where, "plan.limits", b["limits"].dump(), "an array of \"TARGET:QUANTITY:VALUE\" texts");
    for (const auto& l : b["limits"]) {
      if (!l.is_string())
        throw_input_error(where, "plan.limits[]", l.dump(), "a text \"TARGET:QUANTITY:VALUE\", e.g. \"kidney*:bed_Gy:28\"");
      o.limits.push_back(parse_limit(l.get<std::string>()));
    }
  }
  return o;
}

}  // namespace lutdose
