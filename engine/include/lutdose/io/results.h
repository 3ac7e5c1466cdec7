// Output of a run: results.json (stable fields of design.md §4.4), results.csv, a text table,
// (written as one result set by lutdose/output_dir.h).
#pragma once

#include <nlohmann/json.hpp>

#include <ostream>
#include <string>

#include "lutdose/pipeline/pipeline.h"

namespace lutdose {

//! The results.json document. With include_doses false, the `doses` are left out (lutdose fit).
nlohmann::ordered_json to_json(const RunResult& r, bool include_doses);

//! One row per VOI (and its dose): the flat table for spreadsheets.
std::string to_csv(const RunResult& r);

//! The human-readable table of TIAs and doses.
void print_table(const RunResult& r, std::ostream& out);

}  // namespace lutdose
