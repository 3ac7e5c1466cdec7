#include "lutdose/io/plan_json.h"

#include <cmath>

#include "io/json_number.h"

using nlohmann::ordered_json;

namespace lutdose {

using detail::json_number;

namespace {

ordered_json targets_json(const PlanResult& r) {
  ordered_json targets = ordered_json::array();
  for (const auto& t : r.targets) {
    ordered_json x;
    x["name"] = t.name;
    x["prediction_method"] = t.prediction_method;
    x["predicted_dose_Gy_per_GBq"] = json_number(t.predicted_dose_Gy_per_GBq);
    x["predicted_u_Gy_per_GBq"] = json_number(t.predicted_u_Gy_per_GBq);
    x["predicted_dose_Gy"] = json_number(t.predicted_dose_Gy);
    x["predicted_bed_Gy"] = json_number(t.predicted_bed_Gy);
    x["cumulative_dose_Gy"] = json_number(t.cumulative_dose_Gy);
    x["cumulative_bed_Gy"] = json_number(t.cumulative_bed_Gy);
    x["limit_dose_Gy"] = json_number(t.limit_dose_Gy);
    x["limit_bed_Gy"] = json_number(t.limit_bed_Gy);
    x["p_exceed_dose"] = json_number(t.p_exceed_dose);
    x["p_exceed_bed"] = json_number(t.p_exceed_bed);
    x["max_activity_MBq"] = json_number(t.max_activity_MBq);
    x["g"] = json_number(t.g);
    x["incomplete"] = t.incomplete.empty() ? ordered_json(nullptr) : ordered_json(t.incomplete);
    x["note"] = t.note.empty() ? ordered_json(nullptr) : ordered_json(t.note);
    targets.push_back(x);
  }
  return targets;
}

ordered_json options_json(const PlanOptions& o) {
  ordered_json opt;
  opt["strategy"] = to_string(o.strategy);
  opt["prediction"] = to_string(o.prediction);
  opt["planned_cycles"] = o.planned_cycles;
  opt["a_min_MBq"] = json_number(o.a_min_MBq);
  opt["a_max_MBq"] = json_number(o.a_max_MBq);
  opt["a_standard_MBq"] = json_number(o.a_standard_MBq);
  opt["safety_k"] = json_number(o.safety_k);
  opt["prediction_cv"] = json_number(o.prediction_cv);
  opt["allow_incomplete"] = o.allow_incomplete;
  ordered_json limits = ordered_json::array();
  for (const auto& l : o.limits)
    limits.push_back({{"target_pattern", l.target_pattern}, {"quantity", l.quantity}, {"value", json_number(l.value)},
                      {"source", l.source}});
  opt["limits"] = limits;
  ordered_json priors = ordered_json::array();
  for (const auto& p : o.priors)
    priors.push_back({{"target_pattern", p.target_pattern}, {"mean_Gy_per_GBq", json_number(p.mean_Gy_per_GBq)},
                      {"sd_Gy_per_GBq", json_number(p.sd_Gy_per_GBq)}, {"source", p.source}});
  opt["priors"] = priors;
  ordered_json tissue = ordered_json::object();
  for (const auto& [name, p] : o.tissue)
    tissue[name] = {{"alpha_beta_Gy", json_number(p.alpha_beta_Gy)}, {"repair_half_time_h", json_number(p.repair_half_time_h)},
                    {"source", p.source}};
  opt["tissue"] = tissue;
  return opt;
}

}  // namespace

ordered_json to_json(const PlanResult& r) {
  ordered_json j;
  j["next_cycle"] = r.next_cycle;
  j["activity_MBq"] = json_number(r.activity_MBq);
  j["stop"] = r.stop;
  j["incomplete"] = r.incomplete;
  ordered_json b;
  b["target"] = r.binding.target.empty() ? ordered_json(nullptr) : ordered_json(r.binding.target);
  b["quantity"] = r.binding.quantity;
  b["limit"] = json_number(r.binding.limit);
  j["binding"] = b;
  j["targets"] = targets_json(r);
  j["reasoning"] = r.reasoning;
  j["options"] = options_json(r.options);
  return j;
}

ordered_json to_json(const std::vector<DeliveredDoseUncertainty>& delivered) {
  ordered_json out = ordered_json::array();
  auto dof = [](double d) { return std::isinf(d) && d > 0 ? ordered_json("infinite") : json_number(d); };
  for (const auto& d : delivered) {
    ordered_json ci = nullptr;
    if (std::isfinite(d.dose_ci95_Gy.low)) ci = ordered_json::array({d.dose_ci95_Gy.low, d.dose_ci95_Gy.high});
    out.push_back({{"cycle", d.cycle}, {"target", d.target}, {"dose_Gy", json_number(d.dose_Gy)},
                   {"dose_u_Gy", json_number(d.dose_u_Gy)}, {"dose_u_dof", dof(d.dose_u_dof)},
                   {"dose_ci95_Gy", ci}, {"uncertainty_incomplete", d.incomplete()},
                   {"uncertainty_missing_inputs", d.missing_inputs}});
  }
  return out;
}

}  // namespace lutdose
