// results.h5: the results.json document in HDF5, readable with h5dump and h5py without lutdose.
// The layout (groups, datasets, attributes, names, the /table summary) is documented in
// docs/hdf5-layout.md; HDF5_FORMAT_VERSION changes whenever that layout changes.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <utility>
#include <vector>

namespace lutdose {

//! HDF5 layout version written as the root attribute "format_version" (integer). Bump on change.
inline constexpr int HDF5_FORMAT_VERSION = 1;

//! Writes `results` (the results.json document) to an HDF5 file at `path` (created/truncated).
//! `inputs` are (name, text) pairs stored verbatim under /inputs (e.g. the case file and the TAC table as read).
//! Throws std::runtime_error with the path and the failing HDF5 call on any error.
//!
//! `results` must be a JSON object with a string member "lutdose_version" and without members
//! named "inputs" or "table" (those names are taken by /inputs and /table). On failure after the
//! file was created, the incomplete file is removed. Not thread-safe (the serial HDF5 library is
//! not); HDF5's automatic error printing is switched off during the call and restored afterwards.
void write_results_h5(const std::string& path, const nlohmann::ordered_json& results,
                      const std::vector<std::pair<std::string, std::string>>& inputs);

}  // namespace lutdose
