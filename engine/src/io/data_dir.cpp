#include "lutdose/io/data_dir.h"

#include <cstdlib>
#include <filesystem>
#include <vector>

#include "lutdose/error.h"

#ifndef LUTDOSE_SOURCE_DATA_DIR
#define LUTDOSE_SOURCE_DATA_DIR ""
#endif
#ifndef LUTDOSE_INSTALL_DATA_DIR
#define LUTDOSE_INSTALL_DATA_DIR ""
#endif

namespace fs = std::filesystem;

namespace lutdose {

namespace {
// A data directory is recognised by its decay data file.
bool looks_like_data_dir(const fs::path& p) {
  std::error_code ec;
  return !p.empty() && fs::exists(p / "decay" / "Lu-177.json", ec);
}
}  // namespace

std::string find_data_dir(const std::string& explicit_dir) {
  if (!explicit_dir.empty()) {
    if (!looks_like_data_dir(explicit_dir))
      throw_input_error("--data-dir", "the data directory", explicit_dir,
                        "a lutdose data directory (with decay/Lu-177.json)");
    return explicit_dir;
  }
  if (const char* env = std::getenv("LUTDOSE_DATA_DIR"); env && *env) {
    if (!looks_like_data_dir(env))
      throw_input_error("environment", "LUTDOSE_DATA_DIR", env,
                        "a lutdose data directory (with decay/Lu-177.json)");
    return env;
  }
  std::vector<fs::path> candidates;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) candidates.push_back(exe.parent_path().parent_path() / "share" / "lutdose");
  candidates.emplace_back(LUTDOSE_INSTALL_DATA_DIR);
  candidates.emplace_back(LUTDOSE_SOURCE_DATA_DIR);
  std::string tried;
  for (const auto& c : candidates) {
    if (looks_like_data_dir(c)) return c.string();
    if (!c.empty()) tried += (tried.empty() ? "" : ", ") + c.string();
  }
  throw InputError("lutdose data directory not found (looked in " + tried +
                   "); expected --data-dir DIR or LUTDOSE_DATA_DIR");
}

}  // namespace lutdose
