// Reading results.json and plans for reports (report/results_loader.h).
#include "lutdose/report/results_loader.h"

#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "lutdose/error.h"
#include "lutdose/io/output_dir.h"
#include "lutdose/io/results.h"

namespace lutdose::report {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// 1 GiB: far above the results.json of a 500-VOI, 100-cycle run; a guard against reading a
// device or a wrong, huge file into memory.
constexpr std::uintmax_t kMaxResultsBytes = 1ull << 30;

std::string read_text(const std::string& path, const std::string& what) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec))
    throw_input_error(path, what, fs::exists(path, ec) ? "not a regular file" : "missing",
                      "a " + what + " written by lutdose");
  if (fs::file_size(path, ec) > kMaxResultsBytes)
    throw_input_error(path, what, "larger than 1 GiB", "a " + what + " written by lutdose");
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  if (!in.good() && !in.eof()) throw_input_error(path, what, "unreadable", "a readable file");
  return s.str();
}

json parse_json(const std::string& path, const std::string& text, const std::string& what) {
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    throw_input_error(path, what, "not valid JSON (byte " + std::to_string(e.byte) + ")",
                      "the complete " + what + " written by lutdose");
  } catch (const json::out_of_range& e) {  // a number beyond double's range, e.g. 1e999
    const std::string reason = e.what();
    throw_input_error(path, what, reason.substr(reason.find(']') + 2), "numbers within double's range");
  }
}

// Requires j[key] to be of the kind `is` tests; `where` is the JSON path of j for the message.
void require(const std::string& path, const json& j, const std::string& where, const char* key, bool (*is)(const json&),
             const std::string& expected) {
  const std::string field = where.empty() ? key : where + "." + key;
  if (!j.is_object() || !j.contains(key)) throw_input_error(path, field, "missing", expected);
  if (!is(j.at(key))) throw_input_error(path, field, j.at(key).dump().substr(0, 60), expected);
}

bool is_array(const json& j) { return j.is_array(); }
bool is_object(const json& j) { return j.is_object(); }
bool is_number(const json& j) { return j.is_number(); }
bool is_string(const json& j) { return j.is_string(); }

void check_cycles(const std::string& path, const json& doc) {
  const auto& patients = doc.at("patients");
  for (std::size_t p = 0; p < patients.size(); ++p) {
    const std::string wp = "patients[" + std::to_string(p) + "]";
    if (!patients[p].is_object()) throw_input_error(path, wp, patients[p].dump().substr(0, 60), "an object");
    require(path, patients[p], wp, "cycles", is_array, "an array of cycles");
    const auto& cycles = patients[p].at("cycles");
    for (std::size_t c = 0; c < cycles.size(); ++c) {
      const std::string wc = wp + ".cycles[" + std::to_string(c) + "]";
      if (!cycles[c].is_object()) throw_input_error(path, wc, cycles[c].dump().substr(0, 60), "an object");
      require(path, cycles[c], wc, "vois", is_array, "an array of VOIs");
      for (std::size_t v = 0; v < cycles[c].at("vois").size(); ++v) {
        const auto& voi = cycles[c].at("vois")[v];
        const std::string wv = wc + ".vois[" + std::to_string(v) + "]";
        require(path, voi, wv, "name", is_string, "a VOI name");
        require(path, voi, wv, "time_h", is_array, "the VOI's times [h]");
        require(path, voi, wv, "activity_MBq", is_array, "the VOI's activities [MBq]");
        require(path, voi, wv, "fit", is_object, "the VOI's fit block");
      }
    }
  }
}

}  // namespace

std::string results_json_path(const std::string& arg) {
  std::error_code ec;
  if (arg.empty()) throw_input_error("command line", "RESULTS", "empty", "a run's output directory or results.json");
  if (!fs::exists(arg, ec))
    throw_input_error(arg, "RESULTS", "missing", "a run's output directory, its results.json or its results.h5");
  if (fs::is_directory(arg, ec)) return (fs::path(arg) / "results.json").string();
  if (fs::path(arg).extension() == ".h5") {
    const auto beside = (fs::path(arg).parent_path() / "results.json").string();
    if (!fs::exists(beside, ec))
      throw_input_error(arg, "results.json beside it", "missing",
                        "a run's results.h5 with its results.json (a cohort store gives a cohort report)");
    return beside;
  }
  return arg;
}

LoadedResults load_results(const std::string& arg) {
  LoadedResults r;
  r.path = results_json_path(arg);
  const std::string text = read_text(r.path, "results.json");
  r.sha256 = sha256_hex(text);
  r.doc = parse_json(r.path, text, "results.json");
  const std::string expected_version = std::to_string(RESULTS_FORMAT_VERSION);
  if (!r.doc.is_object()) throw_input_error(r.path, "(document)", r.doc.dump().substr(0, 60), "a JSON object");
  require(r.path, r.doc, "", "format_version", is_number,
          expected_version + " (a results.json without it is of an older lutdose: rerun lutdose run to update it)");
  if (r.doc.at("format_version") != RESULTS_FORMAT_VERSION)
    throw_input_error(r.path, "format_version", r.doc.at("format_version").dump(),
                      expected_version + " (this lutdose reads results format " + expected_version + ")");
  if (!r.doc.contains("format") || r.doc.at("format") != "lutdose-results")
    throw_input_error(r.path, "format", r.doc.contains("format") ? r.doc.at("format").dump() : "missing",
                      "\"lutdose-results\"");
  require(r.path, r.doc, "", "nuclide", is_object, "the nuclide block");
  require(r.path, r.doc.at("nuclide"), "nuclide", "lambda_per_h", is_number, "the decay constant [1/h]");
  require(r.path, r.doc, "", "lutdose_version", is_string, "the lutdose version");
  require(r.path, r.doc, "", "options", is_object, "the options block");
  require(r.path, r.doc, "", "patients", is_array, "an array of patients");
  check_cycles(r.path, r.doc);
  return r;
}

json load_plan(const std::string& path) {
  const std::string text = read_text(path, "plan");
  json j = parse_json(path, text, "plan");
  if (!j.is_object()) throw_input_error(path, "(document)", j.dump().substr(0, 60), "a plan (JSON object)");
  require(path, j, "", "next_cycle", is_number, "the next cycle's number");
  if (!j.contains("activity_MBq")) throw_input_error(path, "activity_MBq", "missing", "a number or null");
  require(path, j, "", "targets", is_array, "the limited targets");
  require(path, j, "", "reasoning", is_array, "the reasoning");
  return j;
}

double num(const json& j, const char* key) {
  if (!j.is_object()) return std::numeric_limits<double>::quiet_NaN();
  const auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : std::numeric_limits<double>::quiet_NaN();
}

std::string str(const json& j, const char* key) {
  if (!j.is_object()) return {};
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

const json& arr(const json& j, const char* key) {
  static const json empty = json::array();
  if (!j.is_object()) return empty;
  const auto it = j.find(key);
  return it != j.end() && it->is_array() ? *it : empty;
}

const json& obj(const json& j, const char* key) {
  static const json empty = json::object();
  if (!j.is_object()) return empty;
  const auto it = j.find(key);
  return it != j.end() && it->is_object() ? *it : empty;
}

}  // namespace lutdose::report
