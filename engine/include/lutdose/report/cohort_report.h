// The cohort report of `lutdose report STORE.h5` (docs/report.md): distributions of TIA per
// administered activity and dose per GBq by VOI and target (box plots), fit-function counts,
// flagged fits and failures, from a results store (docs/store.md), read in slices.
#pragma once

#include <string>

namespace lutdose::report {

//! True when `path` names a results store of kind "batch" (a cohort), false for a run's
//! results.h5 (kind "run"). InputError as read_store_index (missing, not a store, other version).
bool is_cohort_store(const std::string& path);

//! The complete HTML page of the cohort in the store at `path`; `writer_version` is the lutdose
//! writing it. InputError as read_store_index.
std::string cohort_report_html(const std::string& path, const std::string& writer_version);

}  // namespace lutdose::report
