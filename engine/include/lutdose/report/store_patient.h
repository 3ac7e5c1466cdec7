// One patient of a results store as a results.json-shaped document, for `lutdose report STORE.h5
// --patient ID` (docs/report.md). The store holds no measured points, no candidate covariances
// and no quantification, so the report made from it has no plots (it says so).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace lutdose::report {

//! The rows of `patient` in the store at `path` (read in slices) as a results.json document
//! (docs/results.md) with the members the store has: per cycle the administered activity, per VOI
//! the fit (function, method, accepted, notes; candidates with parameters, their u in
//! "parameter_u", AICc, Akaike weight, R², TIA, flags), TIA and its u and interval, and the doses
//! with budgets, BED, EQD2 and the cumulative doses; "time_h" and "activity_MBq" empty. NaN is
//! null. InputError as read_store_index, or naming the patient when the store does not hold it.
nlohmann::json store_patient_json(const std::string& path, const std::string& patient);

}  // namespace lutdose::report
