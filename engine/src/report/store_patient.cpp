// One patient of a store as a results.json-shaped document (report/store_patient.h).
#include "lutdose/report/store_patient.h"

#include <cmath>
#include <map>
#include <sstream>

#include "lutdose/error.h"
#include "lutdose/io/results.h"
#include "lutdose/io/store.h"

namespace lutdose::report {

using nlohmann::json;

namespace {

json number(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

json interval(double low, double high) {
  return std::isfinite(low) && std::isfinite(high) ? json::array({low, high}) : json(nullptr);
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < s.size()) {
    std::size_t end = s.find("; ", start);
    if (end == std::string::npos) end = s.size();
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 2;
  }
  return out;
}

// A candidate row: its "name=value u=value; ..." parameters become parameters and parameter_u.
json candidate_json(const CandidateRow& c) {
  json j{{"function", c.function}, {"fitted", c.fitted != 0}, {"accepted", c.accepted != 0},
         {"n_parameters", c.n_parameters}, {"aicc", number(c.aicc)}, {"akaike_weight", number(c.akaike_weight)},
         {"r_squared", number(c.r_squared)}, {"tia_MBq_h", number(c.tia_MBq_h)}, {"tia_u_MBq_h", number(c.tia_u_MBq_h)},
         {"flags", split(c.flags)}, {"warnings", json::array()}, {"parameters", json::object()},
         {"parameter_names", json::array()}, {"parameter_u", json::array()}};
  for (const auto& item : split(c.parameters)) {
    const auto eq = item.find('='), u = item.find(" u=");
    if (eq == std::string::npos || u == std::string::npos || u < eq) continue;
    const std::string name = item.substr(0, eq);
    j["parameter_names"].push_back(name);
    j["parameters"][name] = number(std::strtod(item.c_str() + eq + 1, nullptr));
    j["parameter_u"].push_back(number(std::strtod(item.c_str() + u + 3, nullptr)));
  }
  return j;
}

json voi_json(const VoiRow& v) {
  return {{"name", v.voi}, {"mass_g", number(v.mass_g)}, {"time_h", json::array()}, {"activity_MBq", json::array()},
          {"fit", {{"function", v.function}, {"method", v.method}, {"accepted", v.fit_ok != 0},
                   {"selection", "(not in the store)"}, {"notes", json::array()}, {"candidates", json::array()}}},
          {"tia_MBq_h", number(v.tia_MBq_h)}, {"tia_u_MBq_h", number(v.tia_u_MBq_h)}, {"tia_h", number(v.tia_h)},
          {"tia_ci95_MBq_h", interval(v.tia_ci95_low_MBq_h, v.tia_ci95_high_MBq_h)}};
}

json target_json(const TargetRow& t) {
  const auto missing = split(t.u_missing);
  return {{"target", t.target}, {"kind", t.kind}, {"dose_Gy", number(t.dose_Gy)}, {"dose_u_Gy", number(t.dose_u_Gy)},
          {"dose_Gy_per_GBq", number(t.dose_Gy_per_GBq)}, {"dose_ci95_Gy", interval(t.dose_ci95_low_Gy, t.dose_ci95_high_Gy)},
          {"bed_Gy", number(t.bed_Gy)}, {"eqd2_Gy", number(t.eqd2_Gy)}, {"uncertainty_incomplete", !missing.empty()},
          {"uncertainty_missing_inputs", missing}, {"uncertainty_budget", json::array()}};
}

// The patient's cycles, keyed by cycle number, built up from the store's slices.
struct Collected {
  std::map<int, json> cycles;
  json cumulative = json::array();
  json& cycle(int c) {
    auto& j = cycles[c];
    if (j.is_null()) j = {{"cycle", c}, {"administered_MBq", nullptr}, {"vois", json::array()}, {"doses", json::array()},
                          {"dose_notes", json::array()}};
    return j;
  }
};

json* find_named(json& list, const char* key, const std::string& name) {
  for (auto& x : list)
    if (x.value(key, std::string()) == name) return &x;
  return nullptr;
}

void take(Collected& d, const StoreRows& rows, const std::string& id) {
  for (const auto& p : rows.patients)
    if (p.patient == id && p.status == "done") d.cycle(p.cycle)["administered_MBq"] = number(p.administered_MBq);
  for (const auto& v : rows.vois)
    if (v.patient == id) d.cycle(v.cycle)["vois"].push_back(voi_json(v));
  for (const auto& t : rows.targets)
    if (t.patient == id) d.cycle(t.cycle)["doses"].push_back(target_json(t));
  for (const auto& c : rows.candidates)
    if (c.patient == id)
      if (json* v = find_named(d.cycle(c.cycle)["vois"], "name", c.voi)) (*v)["fit"]["candidates"].push_back(candidate_json(c));
  for (const auto& b : rows.budget)
    if (b.patient == id)
      if (json* t = find_named(d.cycle(b.cycle)["doses"], "target", b.target))
        (*t)["uncertainty_budget"].push_back({{"input", b.input}, {"u_Gy", number(b.term_Gy)}});
  for (const auto& n : rows.notes) {
    if (n.patient != id) continue;
    json* v = n.stage == "fit" ? find_named(d.cycle(n.cycle)["vois"], "name", n.voi) : nullptr;
    (v ? (*v)["fit"]["notes"] : d.cycle(n.cycle)["dose_notes"]).push_back(n.note);
  }
  for (const auto& c : rows.cumulative)
    if (c.patient == id)
      d.cumulative.push_back({{"target", c.target}, {"dose_Gy", number(c.dose_Gy)}, {"dose_u_Gy", number(c.dose_u_Gy)},
                              {"bed_Gy", number(c.bed_Gy)}, {"eqd2_Gy", number(c.eqd2_Gy)},
                              {"dose_ci95_Gy", interval(c.dose_ci95_low_Gy, c.dose_ci95_high_Gy)},
                              {"uncertainty_incomplete", !c.u_missing.empty()},
                              {"uncertainty_missing_inputs", split(c.u_missing)}, {"cycles", c.cycles}});
}

}  // namespace

json store_patient_json(const std::string& path, const std::string& patient) {
  const auto index = read_store_index(path, StoreVersions::readable);
  Collected d;
  for_each_store_chunk(path, [&](const StoreRows& rows) { take(d, rows, patient); }, StoreVersions::readable);
  if (d.cycles.empty()) throw_input_error(path, "--patient", patient, "a patient computed in the store");
  const auto provenance = json::parse(index.header.provenance_json, nullptr, false);
  json doc{{"format", "lutdose-results"}, {"format_version", RESULTS_FORMAT_VERSION},
           {"lutdose_version", index.header.lutdose_version},
           {"nuclide", provenance.is_object() ? provenance.value("nuclide", json::object()) : json::object()},
           {"options", provenance.is_object() ? provenance.value("options", json::object()) : json::object()}};
  json p{{"id", patient}, {"cycles", json::array()}};
  for (auto& [c, cycle] : d.cycles) p["cycles"].push_back(std::move(cycle));
  if (!d.cumulative.empty()) p["cumulative"] = {{"doses", d.cumulative}};
  doc["patients"] = json::array({p});
  return doc;
}

}  // namespace lutdose::report
