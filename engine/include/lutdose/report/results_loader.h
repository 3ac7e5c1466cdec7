// Reading a run's results for a report (docs/report.md): results.json of `lutdose run`
// (docs/results.md), found from the run's output directory, the file itself, or the run's
// results.h5 beside it. The format is checked before anything is drawn.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace lutdose::report {

//! A loaded results.json: the document, the path it was read from and the file's SHA-256.
struct LoadedResults {
  nlohmann::json doc;
  std::string path;
  std::string sha256;
};

//! Where results.json is for `arg`: ARG/results.json for a directory, ARG for a .json file, the
//! results.json beside ARG for a results.h5 of `lutdose run`. InputError naming the path when it
//! does not exist or no results.json is where it should be. Reads nothing else.
std::string results_json_path(const std::string& arg);

//! Reads and checks results.json at results_json_path(arg): a regular file of at most 1 GiB, valid
//! JSON, "format" "lutdose-results", "format_version"
//! RESULTS_FORMAT_VERSION (io/results.h), the nuclide's lambda_per_h, and patients -> cycles ->
//! vois / doses as arrays of objects. InputError naming the file, the field, the value found and
//! what is expected (an older results.json has no format_version: rerun lutdose run).
LoadedResults load_results(const std::string& arg);

//! Reads and checks a plan written by `lutdose plan --out FILE` (docs/plan.md): a JSON object with
//! next_cycle, activity_MBq, binding, targets and reasoning. InputError naming the file and field.
nlohmann::json load_plan(const std::string& path);

//! Accessors that never throw: the number at j[key] (NaN when missing, null or not a number),
//! the string (empty when missing or not a string), the array or object (empty when missing or of
//! another type). Every report reads its input through them.
double num(const nlohmann::json& j, const char* key);
std::string str(const nlohmann::json& j, const char* key);
const nlohmann::json& arr(const nlohmann::json& j, const char* key);
const nlohmann::json& obj(const nlohmann::json& j, const char* key);

}  // namespace lutdose::report
