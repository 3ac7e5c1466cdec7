// The inputs of next-cycle planning taken from a run's results: the dose history of every
// target and the measurement uncertainty of the delivered doses of the organs at risk.
#pragma once

#include <limits>
#include <map>
#include <string>
#include <vector>

#include "lutdose/dosimetry/uncertainty.h"
#include "lutdose/pipeline/run_result.h"
#include "lutdose/planning/planning.h"

namespace lutdose {

//! The dose history of a run, per patient id: for every target of every cycle the administered
//! activity [MBq], dose [Gy], BED [Gy] and G, and what the dose lacks (CycleRecord::incomplete:
//! the red-marrow self-dose without a marrow method; for a region target the remainder of body
//! without a whole_body VOI) or omits as a minor part (CycleRecord::note). Does not throw.
std::map<std::string, std::vector<TargetHistory>> history_from_run(const RunResult& r);

//! The measurement uncertainty of one delivered dose of an organ at risk.
struct DeliveredDoseUncertainty {
  int cycle = 0;
  std::string target;
  double dose_Gy = std::numeric_limits<double>::quiet_NaN();
  double dose_u_Gy = std::numeric_limits<double>::quiet_NaN();  //!< NaN: unknown
  double dose_u_dof = std::numeric_limits<double>::quiet_NaN();  //!< +inf: stated; NaN: unknown
  Interval dose_ci95_Gy;                                         //!< NaN bounds: unknown
  std::vector<std::string> missing_inputs;  //!< GUM inputs without a known u
  bool incomplete() const { return !missing_inputs.empty(); }
};

//! The delivered doses of the organs at risk (targets matching a pattern of `limits`), per cycle
//! and target in the order of the run; empty without doses. Does not throw.
std::vector<DeliveredDoseUncertainty> delivered_dose_uncertainty(const RunResult& r, const std::vector<Limit>& limits);

}  // namespace lutdose
