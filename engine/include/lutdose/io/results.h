// Output of a run: results.json (stable fields of design.md §4.4), results.csv and the printed
// table, read from the plain RunResult structs (lutdose/pipeline/run_result.h); written as one
// result set by lutdose/io/output_dir.h. results.h5 is a results store (lutdose/io/store.h).
#pragma once

#include <nlohmann/json.hpp>

#include <ostream>
#include <string>

#include "lutdose/pipeline/run_result.h"

namespace lutdose {

//! "format_version" of results.json (member "format": "lutdose-results"); bump on an incompatible
//! change of docs/results.md. results.json of lutdose <= 0.8 has neither member (readers such as
//! `lutdose report` refuse it: rerun lutdose run).
inline constexpr int RESULTS_FORMAT_VERSION = 1;

//! The results.json document: format and format_version, version, nuclide, options (Provenance), then per patient its
//! cycles (VOIs with TAC, fit, TIA [MBq h] and its uncertainty; doses [Gy] with budgets, BED,
//! marrow and Monte Carlo blocks) and, with several cycles, the sums over the cycles. A value
//! that is not known (NaN) is null; degrees of freedom are a number, "infinite" or null. With
//! include_doses false the dose members are left out (lutdose fit). Under population kinetics the
//! last member, "population", has the population's source (population_source_json) and its
//! models ("vois", as in the population file). Does not throw.
nlohmann::ordered_json to_json(const RunResult& r, bool include_doses);

//! Where a population came from (options.fit.population of results.json, docs/results.md):
//! "source" (the file, or "learned from the input (--kinetics population)") and for a file its
//! "sha256" and "own_checksum" ("verified": its lutdose_sha256 matched; "absent": it has none),
//! for a learned population its "vois_sha256" (population_models_sha256). Does not throw.
nlohmann::ordered_json population_source_json(const PopulationSource& s);

//! The provenance members of results.json: lutdose_version, nuclide (the decay data used) and
//! options (with the S-value set and its files when include_doses). Does not throw.
nlohmann::ordered_json provenance_json(const Provenance& p, bool include_doses);

//! results.csv: one row per VOI (with its dose), then one per dosed target that is not a VOI;
//! unknown values are empty cells. Does not throw.
std::string to_csv(const RunResult& r);

//! The human-readable table of TIAs and doses per cycle, with notes, the history of the organs
//! at risk against r.limits and the sums over cycles; unknown values are "-" or "n/a". Writes
//! to `out` only (stream errors are the caller's to check).
void print_table(const RunResult& r, std::ostream& out);

}  // namespace lutdose
