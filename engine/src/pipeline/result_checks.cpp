#include "lutdose/pipeline/result_checks.h"

#include <cmath>

#include "lutdose/error.h"
#include "lutdose/io/input_file.h"

namespace lutdose {

namespace {

// "TAC line(s) L1, L2, ..." of a VOI read from a table (case files name their JSON paths instead).
std::string input_lines(const VoiResult& v) {
  std::string lines;
  for (int l : v.tac.lines)
    if (l > 0) lines += (lines.empty() ? "" : ", ") + std::to_string(l);
  return lines.empty() ? "" : " (input lines " + lines + ")";
}

// `where` makes the text naming the value: called only for a non-finite value (the check of a run
// whose values are all finite builds no text).
template <class Where>
void check(std::vector<std::string>& problems, double x, const Where& where, const char* what) {
  if (std::isfinite(x)) return;
  problems.push_back(where() + ": " + what + " is " + format_number(x) +
                     "; expected a finite value (the inputs of this target give none; check their magnitudes)");
}

std::string input_of(const RunResult& r) {
  return r.provenance.options.tac_path.empty() ? "input" : r.provenance.options.tac_path;
}

std::string cycle_where(const RunResult& r, const CycleResult& c) {
  return input_of(r) + ": " + (c.patient.empty() ? "" : "patient " + c.patient + ", ") + "cycle " +
         std::to_string(c.cycle);
}

void check_cycle(std::vector<std::string>& problems, const RunResult& r, const CycleResult& c) {
  for (const auto& v : c.vois)
    check(problems, v.fit.tia_MBq_h, [&] { return input_of(r) + ": " + v.tac.where() + input_lines(v); },
          "the TIA (MBq h)");
  for (const auto& d : c.doses) {
    const auto where = [&] { return cycle_where(r, c) + ", target " + d.target; };
    check(problems, d.dose_Gy, where, "the dose (Gy)");
    if (std::isfinite(d.alpha_beta_Gy)) check(problems, d.bed_Gy, where, "the BED (Gy)");
  }
}

}  // namespace

void check_results_finite(const RunResult& r) {
  std::vector<std::string> problems;
  for (const auto& c : r.cycles) check_cycle(problems, r, c);
  for (const auto& patient_sums : r.cumulative)
    for (const auto& s : patient_sums.second) {
      const std::string& patient = patient_sums.first;  // a lambda may not capture a structured binding (C++17)
      const auto where = [&] { return input_of(r) + ": patient " + patient + ", all cycles, target " + s.target; };
      check(problems, s.dose_Gy, where, "the summed dose (Gy)");
      if (!std::isnan(s.bed_Gy)) check(problems, s.bed_Gy, where, "the summed BED (Gy)");
    }
  if (!problems.empty()) throw InputError(join_problems(problems));
}

}  // namespace lutdose
