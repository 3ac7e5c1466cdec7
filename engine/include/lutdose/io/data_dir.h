// Where lutdose finds its reference data (decay data, S-values, sphere S-values).
//
// Search order: an explicit directory (the CLI's --data-dir), the environment variable
// LUTDOSE_DATA_DIR, the install prefix (<prefix>/share/lutdose, found relative to the executable
// and at the configured install path), and last the source tree's data/ folder of the build.
#pragma once

#include <string>

namespace lutdose {

//! Returns the data directory to use, or throws InputError naming every place looked at.
std::string find_data_dir(const std::string& explicit_dir = "");

}  // namespace lutdose
