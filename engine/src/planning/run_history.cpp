#include "lutdose/planning/run_history.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <tuple>
#include <utility>

namespace lutdose {

namespace {
// What a cycle's dose to `d` lacks (CycleRecord::incomplete), with the input that would supply
// it: the red-marrow self-dose without a marrow method; for a region target (its dose is only
// cross-dose from the VOIs) the remainder of body without a whole_body VOI (dose.cpp). A VOI has
// its self-dose, so the missing remainder cross-dose is a minor omission (CycleRecord::note;
// about 0.1-1 % of 177Lu kidney doses, docs/plan.md).
std::pair<std::string, std::string> incomplete_dose(const CycleResult& c, const TargetDose& d) {
  std::vector<std::string> missing;
  std::string lower = d.target, note;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char ch) { return std::tolower(ch); });
  if (lower.find("marrow") != std::string::npos && !c.marrow)
    missing.push_back("no red-marrow self-dose: give blood samples (dose.marrow.method blood) or an L2-L4 VOI "
                      "(dose.marrow.method image)");
  const std::string no_remainder = "the remainder of body is not a source: add a whole_body VOI to the time points";
  if (std::isnan(c.remainder_tia_MBq_h)) {
    if (d.kind == "region") missing.push_back(no_remainder);
    else note = "cross-dose from the remainder of body not included (" + no_remainder + ")";
  }
  std::string out;
  for (const auto& m : missing) out += (out.empty() ? "" : "; ") + m;
  return {out, note};
}
}  // namespace

std::map<std::string, std::vector<TargetHistory>> history_from_run(const RunResult& r) {
  std::map<std::string, std::vector<TargetHistory>> out;
  for (const auto& c : r.cycles)
    for (const auto& d : c.doses) {
      auto& list = out[c.patient];
      auto it = std::find_if(list.begin(), list.end(), [&](const TargetHistory& h) { return h.target == d.target; });
      if (it == list.end()) {
        list.push_back({d.target, {}});
        it = list.end() - 1;
      }
      CycleRecord rec;
      rec.cycle = c.cycle;
      rec.administered_MBq = c.administered_MBq;
      rec.dose_Gy = d.dose_Gy;
      rec.bed_Gy = d.bed_Gy;
      rec.g = d.bed_g;
      std::tie(rec.incomplete, rec.note) = incomplete_dose(c, d);
      it->cycles.push_back(rec);
    }
  return out;
}

std::vector<DeliveredDoseUncertainty> delivered_dose_uncertainty(const RunResult& r, const std::vector<Limit>& limits) {
  std::vector<DeliveredDoseUncertainty> out;
  for (const auto& c : r.cycles)
    for (const auto& d : c.doses) {
      if (std::none_of(limits.begin(), limits.end(),
                       [&](const Limit& l) { return target_matches(l.target_pattern, d.target); }))
        continue;
      out.push_back({c.cycle, d.target, d.dose_Gy, d.dose_u_Gy, d.dose_u_dof, d.dose_ci95_Gy, d.u_missing});
    }
  return out;
}

}  // namespace lutdose
