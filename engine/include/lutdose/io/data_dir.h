// Where lutdose finds its reference data (decay data, S-values, sphere S-values, tissue
// parameters, limits, population kinetics, compartment models).
//
// Search order: an explicit directory (the CLI's --data-dir), the environment variable
// LUTDOSE_DATA_DIR, the install prefix (<prefix>/share/lutdose, found relative to the running
// executable (<exe dir>/../share/lutdose) and at the configured install path), and last the
// source tree's data/ folder of the build. A directory counts when it holds decay/Lu-177.json.
//
// A program built against the installed package (find_package(lutdose)) whose executable does not
// sit in <prefix>/bin, with lutdose installed under another prefix than the configured one
// (cmake --install build --prefix P), passes the package's lutdose_DATA_DIR (P/share/lutdose) as
// `explicit_dir` or sets LUTDOSE_DATA_DIR; examples/cpp shows the first.
#pragma once

#include <string>

namespace lutdose {

//! Returns the data directory to use (a path, as given or as found). Throws InputError when
//! `explicit_dir` (non-empty) or LUTDOSE_DATA_DIR (set) is not a data directory, or when no place
//! of the search order is one (the message names every place looked at).
std::string find_data_dir(const std::string& explicit_dir = "");

}  // namespace lutdose
