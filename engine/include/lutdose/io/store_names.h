// The width of the results store's fixed-length name columns (docs/store.md), shared by the store
// (lutdose/io/store.h), which cannot hold a longer name, and the input readers
// (lutdose/io/input_file.h), which refuse a longer patient id or VOI name with its file and line.
#pragma once

#include <cstddef>

namespace lutdose {

//! Width of the fixed-length key and name columns (patient, voi, target, function, input, ...):
//! UTF-8, NUL-padded. A longer name cannot be stored: store_rows throws InputError naming it.
inline constexpr std::size_t STORE_NAME_BYTES = 64;

}  // namespace lutdose
