#include "lutdose/io/input_file.h"

#include <algorithm>
#include <filesystem>

#include "lutdose/error.h"
#include "lutdose/models/format.h"

namespace lutdose {

namespace fs = std::filesystem;

// Sources of the ranges: docs/case-file.md, "Plausibility ranges".
const PlausibleRange ACTIVITY_RANGE_MBQ{0, 1e5, "MBq", "100 GBq is above any administered 177Lu activity"};
const PlausibleRange COUNTS_RANGE{0, 1e12, "counts",
                                  "a camera saturates near 1e6 cps: 1e12 counts would need 11 days of frame"};
const PlausibleRange FRAME_DURATION_RANGE_S{1, 86400, "s", "one acquisition frame lasts seconds to hours"};
const PlausibleRange MASS_RANGE_G{1e-3, 1e6, "g",
                                  "1 mg is far below the SPECT resolution, 1000 kg above any patient"};
const PlausibleRange VOLUME_RANGE_ML{1e-3, 1e6, "mL",
                                     "1 uL is far below the SPECT resolution, 1000 L above any patient"};
const PlausibleRange TIME_RANGE_H{0, 1e4, "h", "about 14 months after the reference time"};
const PlausibleRange CONCENTRATION_RANGE_MBQ_PER_ML{0, 1e5, "MBq/mL",
                                                    "100 GBq in 1 mL is above any administered activity"};
// 10 mGy g/(MBq s) = 1e-11 J per decay = 62 MeV absorbed per decay: more than any radionuclide
// emits (225Ac with its daughters, about 28 MeV per decay chain).
const PlausibleRange S_TIMES_MASS_RANGE{0, 10, "mGy g/(MBq s)",
                                        "62 MeV absorbed per decay, more than any radionuclide emits"};

// Parameters of the calibration, the radiobiology, the marrow and the plan.
const PlausibleRange CF_RANGE_CPS_PER_MBQ{1e-3, 1e6, "cps/MBq",
                                         "1e6 cps/MBq would count every decay; below 1e-3 no image forms"};
const PlausibleRange DOSE_RANGE_GY{0, 1e4, "Gy", "10 kGy is far above any tumour dose of one PRRT cycle"};
const PlausibleRange HALF_LIFE_RANGE_H{0.01, 1e4, "h",
                                       "36 s to 417 days, past every therapy radionuclide (177mLu: 160 d)"};
const PlausibleRange HEMATOCRIT_RANGE{0.1, 0.7, "",
                                      "severe anaemia to polycythaemia; lower or higher is not survivable"};
const PlausibleRange REPAIR_HALF_TIME_RANGE_H{0.01, 100, "h", "published repair half-times are 0.1 h to 10 h"};
const PlausibleRange ALPHA_BETA_RANGE_GY{0.1, 100, "Gy", "published alpha/beta ratios are 0.5 Gy to 30 Gy"};
const PlausibleRange RMBLR_RANGE{0.1, 2, "", "published red-marrow-to-blood ratios are 0.19 to 1"};
const PlausibleRange DENSITY_RANGE_G_PER_ML{0.2, 3, "g/mL", "inflated lung (0.26 g/mL) to cortical bone (1.9 g/mL)"};
const PlausibleRange SAFETY_K_RANGE{0, 10, "", "a coverage factor; 1 to 3 are used"};
const PlausibleRange PREDICTION_CV_RANGE{0, 10, "", "a relative SD of 1000%; observed ones are near 0.2"};

std::string PlausibleRange::text() const {
  return "from " + format_number(lo) + " to " + format_number(hi) + (*unit ? " " : "") + unit + " (" + reason +
         ")";
}

std::string read_input_file(const std::string& path, const std::string& what, bool regular_only) {
  std::string bytes;
  const std::string problem = models::read_input_bytes(path, regular_only, bytes);
  if (!problem.empty())
    throw InputError(path + ": cannot read the " + what + ": " + problem + "; expected a readable " + what +
                     " of at most " + std::to_string(MAX_INPUT_BYTES) + " bytes");
  return bytes;
}

std::string resolve_case_reference(const std::string& case_path, const std::string& field,
                                   const std::string& value, bool allow_external) {
  const fs::path v(value);
  const fs::path dir = fs::path(case_path).parent_path();
  auto refuse = [&](const std::string& why) {
    throw_input_error(case_path, field, models::quote_value(value),
                      "a file in the case file's folder or below it (" + why +
                          "; lutdose run --allow-external-files admits it)");
  };
  bool dotdot = false;
  for (const auto& part : v) dotdot = dotdot || part == "..";
  if (!allow_external && v.is_absolute()) refuse("an absolute path");
  if (!allow_external && dotdot) refuse("a path with '..'");
  const fs::path resolved = v.is_absolute() ? v : (dir.empty() ? fs::path(".") : dir) / v;
  std::error_code ec;
  if (!allow_external) {  // links must not lead out of the folder either
    const fs::path base = fs::weakly_canonical(dir.empty() ? fs::path(".") : dir, ec);
    const fs::path real = fs::weakly_canonical(resolved, ec);
    const auto mismatch = std::mismatch(base.begin(), base.end(), real.begin(), real.end());
    if (ec || mismatch.first != base.end()) refuse("it leads out of the folder through a link");
  }
  const auto status = fs::status(resolved, ec);
  if (ec || !fs::exists(status))
    throw_input_error(case_path, field, models::quote_value(value),
                      "an existing file (relative to the case file's folder)");
  if (!fs::is_regular_file(status))
    throw_input_error(case_path, field, models::quote_value(value), "a regular file (not a directory or device)");
  return resolved.string();
}

std::string name_problem(std::string_view name) {
  if (name.empty()) return "empty";
  if (name.size() > MAX_NAME_BYTES)
    return std::to_string(name.size()) + " bytes long, more than the limit of " + std::to_string(MAX_NAME_BYTES);
  // names go into CSV outputs: a first '=', '+', '-' or '@' makes a spreadsheet run the cell as a
  // formula (CSV injection)
  if (std::string_view("=+-@").find(name.front()) != std::string_view::npos)
    return std::string("starting with '") + name.front() + "' (a spreadsheet would run it as a formula)";
  // the usual name, printable ASCII only (0x20 to 0x7E), is valid UTF-8 without control characters
  if (std::all_of(name.begin(), name.end(), [](char c) { return c >= 0x20 && c < 0x7F; })) return "";
  if (!models::valid_utf8(name)) return "not valid UTF-8";
  for (size_t i = 0; i < name.size(); ++i) {
    const auto c = static_cast<unsigned char>(name[i]);
    const auto next = [&](size_t k) { return i + k < name.size() ? static_cast<unsigned char>(name[i + k]) : 0; };
    if (c == 0) return "holding a NUL character";
    if (c < 0x20 || c == 0x7F) return "holding a control character";
    // C1 controls U+0080-U+009F (0xC2 0x80-0x9F) and the line and paragraph separators U+2028/U+2029
    // (0xE2 0x80 0xA8/0xA9): they break or hide lines as the C0 controls do
    if ((c == 0xC2 && next(1) >= 0x80 && next(1) <= 0x9F) || (c == 0xE2 && next(1) == 0x80 && (next(2) == 0xA8 || next(2) == 0xA9)))
      return "holding a control character";
  }
  return "";
}

std::string key_name_expected(std::string_view name, const std::string& what, std::size_t max_bytes) {
  if (name.size() > max_bytes)
    return what + " of at most " + std::to_string(max_bytes) +
           " bytes (the results store's name columns, docs/store.md; this one is " + std::to_string(name.size()) +
           " bytes)";
  if (const std::string p = name_problem(name); !p.empty()) return what + " (this one is " + p + ")";
  return "";
}

std::string join_problems(const std::vector<std::string>& problems) {
  std::string all;
  const std::size_t shown = std::min(problems.size(), MAX_PROBLEMS_LISTED);
  for (std::size_t i = 0; i < shown; ++i) all += (i ? "\n" : "") + problems[i];
  if (problems.size() > shown)
    all += "\n... and " + std::to_string(problems.size() - shown) + " more problems (only the first " +
           std::to_string(MAX_PROBLEMS_LISTED) + " are listed)";
  return all;
}

}  // namespace lutdose
