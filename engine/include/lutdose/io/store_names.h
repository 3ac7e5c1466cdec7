// The width of the results store's fixed-length name columns (docs/store.md), shared by the store
// (lutdose/io/store.h), which cannot hold a longer name, and the input readers
// (lutdose/io/input_file.h), which refuse a longer patient id or VOI name with its file and line.
#pragma once

#include <cstddef>

namespace lutdose {

//! Width of the fixed-length key and name columns (patient, voi, target, function, input, ...):
//! UTF-8, NUL-padded. A longer name cannot be stored: store_rows throws InputError naming it.
inline constexpr std::size_t STORE_NAME_BYTES = 64;

//! The longest prefix the store's uncertainty budget puts before a VOI name in its `input` column
//! (STORE_NAME_BYTES wide): "volume:cycle1000:", a cycle's volume input at the highest cycle
//! number (MAX_CYCLE_NUMBER, 1000); "fit:cycleN:", "rc:cycleN:" and "svalue:" are shorter.
inline constexpr std::size_t STORE_BUDGET_VOI_PREFIX_BYTES = 17;
//! A VOI name may have at most this many bytes (47): with any prefix it fits the budget's column.
inline constexpr std::size_t STORE_VOI_NAME_BYTES = STORE_NAME_BYTES - STORE_BUDGET_VOI_PREFIX_BYTES;
//! A protocol name likewise, after the budget's "cf:" (61 bytes).
inline constexpr std::size_t STORE_PROTOCOL_NAME_BYTES = STORE_NAME_BYTES - 3;

}  // namespace lutdose
