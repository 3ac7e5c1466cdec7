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

//! The HDF5 file of `results` (the results.json document), as bytes: built in memory (core
//! driver), so that writing it to disk is the caller's (lutdose/output_dir.h) and a full disk
//! never reaches HDF5. `inputs` are (name, text) pairs stored verbatim under /inputs (e.g. the
//! case file and the TAC table as read). Every HDF5 call's status is checked; throws
//! std::runtime_error naming the failing call and object.
//!
//! `results` must be a JSON object with a string member "lutdose_version" and without members
//! named "inputs" or "table" (those names are taken by /inputs and /table). Not thread-safe (the
//! serial HDF5 library is not); HDF5's automatic error printing is switched off during the call
//! and restored afterwards.
std::string results_h5_image(const nlohmann::ordered_json& results,
                             const std::vector<std::pair<std::string, std::string>>& inputs);

//! results_h5_image written to `path` (created or truncated; a link there is not followed).
//! Throws std::runtime_error with the path and the reason; an incomplete file is removed.
void write_results_h5(const std::string& path, const nlohmann::ordered_json& results,
                      const std::vector<std::pair<std::string, std::string>>& inputs);

}  // namespace lutdose
