// results.h5 (docs/hdf5-layout.md): written by write_results_h5, read back here with the HDF5 C
// API and with h5dump, independently of the writer's code.
#include <doctest/doctest.h>

#include <hdf5.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "lutdose/io/hdf5_results.h"

using nlohmann::ordered_json;
using namespace lutdose;

namespace {

namespace fs = std::filesystem;

//! A file name in the temporary directory, removed at the end of the test.
struct TempH5 {
  std::string path;
  explicit TempH5(const std::string& tag)
      : path((fs::temp_directory_path() / ("lutdose_test_hdf5_" + std::to_string(getpid()) + "_" + tag + ".h5"))
                 .string()) {
    std::remove(path.c_str());
  }
  ~TempH5() { std::remove(path.c_str()); }
};

//! An HDF5 identifier closed at scope exit.
struct Id {
  hid_t id;
  herr_t (*close)(hid_t);
  Id(hid_t i, herr_t (*c)(hid_t)) : id(i), close(c) {}
  Id(const Id&) = delete;
  Id& operator=(const Id&) = delete;
  ~Id() {
    if (id >= 0) close(id);
  }
};

//! A results.json-like document: two VOIs (one named with '/'), nulls, a 2x2 covariance, an
//! empty array, booleans, strings, an empty patient id, doses listed in another order than the
//! VOIs and with a target that is not a VOI.
ordered_json sample_results() {
  return ordered_json::parse(R"({
    "lutdose_version": "9.8.7-test",
    "nuclide": {"name": "Lu-177", "half_life_h": 159.528},
    "options": {"fit": {"functions": ["E1", "E2u"], "trapezoid_head": "linear"}},
    "patients": [{
      "id": "",
      "cycles": [{
        "cycle": 1,
        "administered_MBq": 7210.4,
        "vois": [
          {"name": "liver", "mass_g": 2178.9, "time_h": [3.7, 27.7, null],
           "fit": {"function": "E1", "method": "fit", "accepted": true, "flags": [],
                   "parameters": {"A1_MBq": 105.49468933269540, "lambda1_bio_per_h": 0.009443812057048504},
                   "candidates": [
                     {"function": "E1", "fitted": true, "aicc": -18.222879849398417,
                      "covariance": [[2.83304818032087, 0.00025836937320153797],
                                     [0.00025836937320153797, 3.7885975e-08]]},
                     {"function": "E2u", "fitted": false, "aicc": null, "covariance": []}]},
           "tia_MBq_h": 58398.123456789012, "tia_u_MBq_h": 2452.7, "tia_h": 8.0993},
          {"name": "lesion/1", "mass_g": 12.5, "time_h": [3.7, 27.7],
           "fit": {"function": "trapezoid", "method": "trapezoid", "accepted": false, "flags": ["tia_not_positive"]},
           "tia_MBq_h": 301.25, "tia_u_MBq_h": null, "tia_h": 0.04178}
        ],
        "doses": [
          {"target": "remainder", "dose_Gy": 0.5, "dose_u_Gy": null, "dose_Gy_per_GBq": 0.07},
          {"target": "liver", "dose_Gy": 17.51, "dose_u_Gy": 0.7356, "dose_Gy_per_GBq": 2.4284}
        ]
      }]
    }]
  })");
}

const std::vector<std::pair<std::string, std::string>> kInputs = {
    {"tac.csv", "voi,time_h,activity_MBq\nliver,3.7,98.5 \xC2\xB5\n"},  // with a UTF-8 "µ"
    {"case/file.json", "{\"tac\": \"tac.csv\"}\n"},
    {"latin1.csv", "voi\n\xB5\n"}};  // not UTF-8: stored as bytes

Id open_file(const std::string& path) {
  Id f(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  REQUIRE_MESSAGE(f.id >= 0, "cannot open " << path);
  return Id(std::exchange(f.id, H5I_INVALID_HID), H5Fclose);
}

//! True when every component of `path` exists (H5Lexists needs the parents to exist).
bool exists(hid_t file, const std::string& path) {
  std::string prefix;
  size_t start = 1;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    prefix += "/" + path.substr(start, end - start);
    if (H5Lexists(file, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
    start = end + 1;
  }
  return true;
}

std::vector<hsize_t> dims_of(hid_t file, const std::string& path) {
  Id d(H5Dopen2(file, path.c_str(), H5P_DEFAULT), H5Dclose);
  REQUIRE_MESSAGE(d.id >= 0, path);
  Id s(H5Dget_space(d.id), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(s.id);
  REQUIRE(rank >= 0);
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  H5Sget_simple_extent_dims(s.id, dims.data(), nullptr);
  return dims;
}

H5T_class_t class_of(hid_t file, const std::string& path) {
  Id d(H5Dopen2(file, path.c_str(), H5P_DEFAULT), H5Dclose);
  REQUIRE_MESSAGE(d.id >= 0, path);
  Id t(H5Dget_type(d.id), H5Tclose);
  return H5Tget_class(t.id);
}

//! All values of a numeric dataset (any shape) as doubles, row-major.
std::vector<double> read_doubles(hid_t file, const std::string& path) {
  Id d(H5Dopen2(file, path.c_str(), H5P_DEFAULT), H5Dclose);
  REQUIRE_MESSAGE(d.id >= 0, path);
  Id s(H5Dget_space(d.id), H5Sclose);
  const hssize_t n = H5Sget_simple_extent_npoints(s.id);
  REQUIRE(n >= 0);
  std::vector<double> v(static_cast<size_t>(n));
  if (n > 0) REQUIRE(H5Dread(d.id, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) >= 0);
  return v;
}

double read_double(hid_t file, const std::string& path) {
  REQUIRE_MESSAGE(dims_of(file, path).empty(), path << " is not scalar");
  return read_doubles(file, path).at(0);
}

std::int64_t read_int(hid_t file, const std::string& path) {
  REQUIRE_MESSAGE(class_of(file, path) == H5T_INTEGER, path << " is not an integer dataset");
  Id d(H5Dopen2(file, path.c_str(), H5P_DEFAULT), H5Dclose);
  std::int64_t v = -999;
  REQUIRE(H5Dread(d.id, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v) >= 0);
  return v;
}

//! The strings of a variable-length string dataset (scalar: one string).
std::vector<std::string> read_strings(hid_t file, const std::string& path) {
  Id d(H5Dopen2(file, path.c_str(), H5P_DEFAULT), H5Dclose);
  REQUIRE_MESSAGE(d.id >= 0, path);
  Id t(H5Dget_type(d.id), H5Tclose);
  REQUIRE_MESSAGE(H5Tis_variable_str(t.id) > 0, path << " is not a variable-length string");
  Id s(H5Dget_space(d.id), H5Sclose);
  std::vector<char*> p(static_cast<size_t>(H5Sget_simple_extent_npoints(s.id)), nullptr);
  Id mem(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(mem.id, H5T_VARIABLE);
  H5Tset_cset(mem.id, H5Tget_cset(t.id));
  std::vector<std::string> out;
  if (p.empty()) return out;
  REQUIRE(H5Dread(d.id, mem.id, H5S_ALL, H5S_ALL, H5P_DEFAULT, p.data()) >= 0);
  for (char* c : p) {
    out.emplace_back(c != nullptr ? c : "");
    H5free_memory(c);
  }
  return out;
}

std::string read_string(hid_t file, const std::string& path) {
  REQUIRE_MESSAGE(dims_of(file, path).empty(), path << " is not scalar");
  return read_strings(file, path).at(0);
}

H5T_cset_t cset_of(hid_t file, const std::string& path) {
  Id d(H5Dopen2(file, path.c_str(), H5P_DEFAULT), H5Dclose);
  REQUIRE_MESSAGE(d.id >= 0, path);
  Id t(H5Dget_type(d.id), H5Tclose);
  return H5Tget_cset(t.id);
}

std::int64_t int_attribute(hid_t file, const std::string& object, const char* name) {
  Id a(H5Aopen_by_name(file, object.c_str(), name, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  REQUIRE_MESSAGE(a.id >= 0, object << " has no attribute " << name);
  std::int64_t v = -999;
  REQUIRE(H5Aread(a.id, H5T_NATIVE_INT64, &v) >= 0);
  return v;
}

std::string string_attribute(hid_t file, const std::string& object, const char* name) {
  Id a(H5Aopen_by_name(file, object.c_str(), name, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  REQUIRE_MESSAGE(a.id >= 0, object << " has no attribute " << name);
  Id t(H5Aget_type(a.id), H5Tclose);
  REQUIRE(H5Tis_variable_str(t.id) > 0);
  char* p = nullptr;
  REQUIRE(H5Aread(a.id, t.id, &p) >= 0);
  std::string s = p != nullptr ? p : "";
  H5free_memory(p);
  return s;
}

bool has_attribute(hid_t file, const std::string& object, const char* name) {
  return H5Aexists_by_name(file, object.c_str(), name, H5P_DEFAULT) > 0;
}

//! How many HDF5 identifiers of the kinds the writer opens are open now.
std::vector<hsize_t> open_identifiers() {
  std::vector<hsize_t> counts;
  for (H5I_type_t t : {H5I_FILE, H5I_GROUP, H5I_DATATYPE, H5I_DATASPACE, H5I_DATASET, H5I_ATTR, H5I_GENPROP_LST}) {
    hsize_t n = 0;
    H5Inmembers(t, &n);
    counts.push_back(n);
  }
  return counts;
}

const char* const kCycle = "/patients/_/cycles/1";
const std::string kLiver = std::string(kCycle) + "/vois/liver";
const std::string kLesion = std::string(kCycle) + "/vois/lesion%2F1";

}  // namespace

TEST_CASE("results.h5: the JSON document round trip through the HDF5 C API") {
  const auto j = sample_results();
  TempH5 tmp("roundtrip");
  write_results_h5(tmp.path, j, kInputs);
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // the probes below fail on purpose
  const Id f = open_file(tmp.path);

  // Root attributes.
  CHECK(int_attribute(f.id, "/", "format_version") == HDF5_FORMAT_VERSION);
  CHECK(string_attribute(f.id, "/", "lutdose_version") == "9.8.7-test");
  CHECK(read_string(f.id, "/lutdose_version") == "9.8.7-test");

  // Objects -> groups, scalars -> scalar datasets. Doubles are stored as IEEE binary64, so they
  // come back bit for bit: exact comparison.
  CHECK(read_double(f.id, "/nuclide/half_life_h") == 159.528);
  CHECK(read_string(f.id, "/nuclide/name") == "Lu-177");
  CHECK(read_strings(f.id, "/options/fit/functions") == std::vector<std::string>{"E1", "E2u"});
  CHECK(dims_of(f.id, "/options/fit/functions") == std::vector<hsize_t>{2});

  // Arrays of objects: groups named by id ("" -> "_"), cycle, name (with '/' escaped); order kept.
  CHECK(int_attribute(f.id, "/patients", "json_array") == 1);
  CHECK(int_attribute(f.id, "/patients/_", "order") == 0);
  CHECK(read_string(f.id, "/patients/_/id").empty());
  CHECK(int_attribute(f.id, std::string(kCycle) + "/vois", "json_array") == 1);
  CHECK(int_attribute(f.id, kLiver, "order") == 0);
  CHECK(int_attribute(f.id, kLesion, "order") == 1);
  CHECK(read_string(f.id, kLesion + "/name") == "lesion/1");
  CHECK_FALSE(exists(f.id, std::string(kCycle) + "/vois/0"));
  CHECK(int_attribute(f.id, std::string(kCycle) + "/doses/remainder", "order") == 0);
  CHECK(int_attribute(f.id, std::string(kCycle) + "/doses/liver", "order") == 1);

  // Integers stay integers; doubles.
  CHECK(read_int(f.id, std::string(kCycle) + "/cycle") == 1);
  CHECK(class_of(f.id, std::string(kCycle) + "/administered_MBq") == H5T_FLOAT);
  CHECK(read_double(f.id, kLiver + "/tia_MBq_h") == j["patients"][0]["cycles"][0]["vois"][0]["tia_MBq_h"].get<double>());
  CHECK(read_double(f.id, kLiver + "/fit/parameters/lambda1_bio_per_h") == 0.009443812057048504);

  // null -> NaN with json_type "null".
  CHECK(std::isnan(read_double(f.id, kLesion + "/tia_u_MBq_h")));
  CHECK(string_attribute(f.id, kLesion + "/tia_u_MBq_h", "json_type") == "null");
  CHECK_FALSE(has_attribute(f.id, kLiver + "/tia_u_MBq_h", "json_type"));

  // Arrays of numbers with a null -> 1-D double, NaN for the null.
  const auto t = read_doubles(f.id, kLiver + "/time_h");
  REQUIRE(t.size() == 3);
  CHECK(dims_of(f.id, kLiver + "/time_h") == std::vector<hsize_t>{3});
  CHECK(t[0] == 3.7);
  CHECK(t[1] == 27.7);
  CHECK(std::isnan(t[2]));

  // bool -> int8 with json_type "bool".
  CHECK(read_int(f.id, kLiver + "/fit/accepted") == 1);
  CHECK(read_int(f.id, kLesion + "/fit/accepted") == 0);
  CHECK(string_attribute(f.id, kLiver + "/fit/accepted", "json_type") == "bool");

  // Candidates have none of name/target/id/cycle: named by index.
  const std::string cands = kLiver + "/fit/candidates";
  CHECK(int_attribute(f.id, cands, "json_array") == 1);
  CHECK(read_string(f.id, cands + "/1/function") == "E2u");
  CHECK(int_attribute(f.id, cands + "/1", "order") == 1);
  CHECK(std::isnan(read_double(f.id, cands + "/1/aicc")));

  // 2x2 covariance -> 2-D double, row-major.
  CHECK(dims_of(f.id, cands + "/0/covariance") == std::vector<hsize_t>{2, 2});
  CHECK(read_doubles(f.id, cands + "/0/covariance") ==
        std::vector<double>{2.83304818032087, 0.00025836937320153797, 0.00025836937320153797, 3.7885975e-08});

  // Empty arrays -> zero-length double with json_type "empty_array".
  CHECK(dims_of(f.id, cands + "/1/covariance") == std::vector<hsize_t>{0});
  CHECK(class_of(f.id, cands + "/1/covariance") == H5T_FLOAT);
  CHECK(string_attribute(f.id, cands + "/1/covariance", "json_type") == "empty_array");
  CHECK(string_attribute(f.id, kLiver + "/fit/flags", "json_type") == "empty_array");
  CHECK(read_strings(f.id, kLesion + "/fit/flags") == std::vector<std::string>{"tia_not_positive"});

  // Inputs, verbatim; '/' in a name escaped.
  CHECK(read_string(f.id, "/inputs/tac.csv") == kInputs[0].second);
  CHECK(read_string(f.id, "/inputs/case%2Ffile.json") == kInputs[1].second);
  CHECK(read_string(f.id, "/inputs/latin1.csv") == kInputs[2].second);
  CHECK(cset_of(f.id, "/inputs/tac.csv") == H5T_CSET_UTF8);
  CHECK(cset_of(f.id, "/inputs/latin1.csv") == H5T_CSET_ASCII);
  CHECK(cset_of(f.id, kLesion + "/name") == H5T_CSET_UTF8);
}

TEST_CASE("results.h5: array naming falls back to the index and escapes % and the name .") {
  const auto j = ordered_json::parse(R"({
    "lutdose_version": "x",
    "dup": [{"name": "a"}, {"name": "a"}],
    "empty_name": [{"name": "b"}, {"name": ""}],
    "ids": [{"id": "p%1"}, {"id": "."}],
    "mixed": [1, "two", null, [3]],
    "bools": [true, false, true],
    "ragged": [[1, 2], [3]],
    "matrix": [[1, 2, 3], [4, 5, null]]
  })");
  TempH5 tmp("naming");
  write_results_h5(tmp.path, j, {});
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  const Id f = open_file(tmp.path);
  CHECK(read_string(f.id, "/dup/1/name") == "a");
  CHECK_FALSE(exists(f.id, "/dup/a"));
  CHECK(read_string(f.id, "/empty_name/0/name") == "b");
  CHECK(read_string(f.id, "/ids/p%251/id") == "p%1");
  CHECK(read_string(f.id, "/ids/%2E/id") == ".");
  CHECK(int_attribute(f.id, "/mixed", "json_array") == 1);
  CHECK(read_int(f.id, "/mixed/0") == 1);
  CHECK(read_string(f.id, "/mixed/1") == "two");
  CHECK(std::isnan(read_double(f.id, "/mixed/2")));
  CHECK(read_doubles(f.id, "/mixed/3") == std::vector<double>{3.0});
  CHECK(int_attribute(f.id, "/mixed/3", "order") == 3);
  CHECK(read_doubles(f.id, "/bools") == std::vector<double>{1.0, 0.0, 1.0});
  CHECK(string_attribute(f.id, "/bools", "json_type") == "bool");
  CHECK(read_doubles(f.id, "/ragged/1") == std::vector<double>{3.0});
  CHECK(dims_of(f.id, "/matrix") == std::vector<hsize_t>{2, 3});
  const auto m = read_doubles(f.id, "/matrix");
  REQUIRE(m.size() == 6);
  CHECK(m[2] == 3.0);  // row-major: [0][2]
  CHECK(m[3] == 4.0);  // [1][0]
  CHECK(std::isnan(m[5]));
  CHECK(exists(f.id, "/inputs"));
}

TEST_CASE("results.h5: h5dump prints the TIA of the JSON") {
  const auto j = sample_results();
  const double tia = j["patients"][0]["cycles"][0]["vois"][0]["tia_MBq_h"].get<double>();
  TempH5 tmp("h5dump");
  write_results_h5(tmp.path, j, kInputs);

  // The number after "(0):" in h5dump's DATA block.
  auto dumped = [&](const std::string& options) {
    const std::string cmd = "h5dump " + options + " -d " + kLiver + "/tia_MBq_h '" + tmp.path + "' 2>&1";
    std::FILE* p = popen(cmd.c_str(), "r");
    REQUIRE_MESSAGE(p != nullptr, cmd);
    std::string out;
    char buf[4096];
    while (std::fgets(buf, sizeof buf, p) != nullptr) out += buf;
    const int status = pclose(p);
    REQUIRE_MESSAGE(status == 0, cmd << " failed:\n" << out);
    const auto at = out.find("(0):");
    REQUIRE_MESSAGE(at != std::string::npos, out);
    CHECK(out.find("H5T_IEEE_F64LE") != std::string::npos);
    return std::strtod(out.c_str() + at + 4, nullptr);
  };

  // h5dump prints doubles with printf "%g", i.e. 6 significant digits ("58398.1"): the rounding
  // error is at most half a unit in the 6th digit, 5e-6 relative to the value.
  const double shown = dumped("");
  CHECK(std::fabs(shown - tia) <= 5e-6 * std::fabs(tia));
  CHECK(shown != 0.0);
  // With 17 significant digits the binary64 value round-trips through text exactly.
  CHECK(dumped("-m %.17g") == tia);
}

TEST_CASE("results.h5: /table has one row per VOI with the VOI's dose") {
  const auto j = sample_results();
  TempH5 tmp("table");
  write_results_h5(tmp.path, j, kInputs);
  const Id f = open_file(tmp.path);
  Id d(H5Dopen2(f.id, "/table", H5P_DEFAULT), H5Dclose);
  REQUIRE(d.id >= 0);
  REQUIRE(dims_of(f.id, "/table") == std::vector<hsize_t>{2});

  // Read by field name into a struct of a different order than the writer's.
  struct Row {
    double dose_Gy_per_GBq, dose_u_Gy, dose_Gy, mass_g, tia_h, tia_u_MBq_h, tia_MBq_h;
    std::int64_t accepted, cycle;
    char *function, *voi, *patient;
  };
  Id str(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(str.id, H5T_VARIABLE);
  H5Tset_cset(str.id, H5T_CSET_UTF8);
  Id mem(H5Tcreate(H5T_COMPOUND, sizeof(Row)), H5Tclose);
  H5Tinsert(mem.id, "dose_Gy_per_GBq", HOFFSET(Row, dose_Gy_per_GBq), H5T_NATIVE_DOUBLE);
  H5Tinsert(mem.id, "dose_u_Gy", HOFFSET(Row, dose_u_Gy), H5T_NATIVE_DOUBLE);
  H5Tinsert(mem.id, "dose_Gy", HOFFSET(Row, dose_Gy), H5T_NATIVE_DOUBLE);
  H5Tinsert(mem.id, "mass_g", HOFFSET(Row, mass_g), H5T_NATIVE_DOUBLE);
  H5Tinsert(mem.id, "tia_h", HOFFSET(Row, tia_h), H5T_NATIVE_DOUBLE);
  H5Tinsert(mem.id, "tia_u_MBq_h", HOFFSET(Row, tia_u_MBq_h), H5T_NATIVE_DOUBLE);
  H5Tinsert(mem.id, "tia_MBq_h", HOFFSET(Row, tia_MBq_h), H5T_NATIVE_DOUBLE);
  H5Tinsert(mem.id, "accepted", HOFFSET(Row, accepted), H5T_NATIVE_INT64);
  H5Tinsert(mem.id, "cycle", HOFFSET(Row, cycle), H5T_NATIVE_INT64);
  H5Tinsert(mem.id, "function", HOFFSET(Row, function), str.id);
  H5Tinsert(mem.id, "voi", HOFFSET(Row, voi), str.id);
  H5Tinsert(mem.id, "patient", HOFFSET(Row, patient), str.id);
  Row rows[2];
  REQUIRE(H5Dread(d.id, mem.id, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows) >= 0);
  auto text = [](char* p) {
    std::string s = p != nullptr ? p : "(null)";
    H5free_memory(p);
    return s;
  };

  const auto& cyc = j["patients"][0]["cycles"][0];
  const auto& liver = cyc["vois"][0];
  const auto& lesion = cyc["vois"][1];
  const auto& liver_dose = cyc["doses"][1];  // the doses are not in the VOIs' order
  // Doubles pass through binary64 unchanged: exact comparisons.
  CHECK(text(rows[0].patient).empty());
  CHECK(rows[0].cycle == 1);
  CHECK(text(rows[0].voi) == "liver");
  CHECK(text(rows[0].function) == "E1");
  CHECK(rows[0].accepted == 1);
  CHECK(rows[0].tia_MBq_h == liver["tia_MBq_h"].get<double>());
  CHECK(rows[0].tia_u_MBq_h == liver["tia_u_MBq_h"].get<double>());
  CHECK(rows[0].tia_h == liver["tia_h"].get<double>());
  CHECK(rows[0].mass_g == liver["mass_g"].get<double>());
  CHECK(rows[0].dose_Gy == liver_dose["dose_Gy"].get<double>());
  CHECK(rows[0].dose_u_Gy == liver_dose["dose_u_Gy"].get<double>());
  CHECK(rows[0].dose_Gy_per_GBq == liver_dose["dose_Gy_per_GBq"].get<double>());

  CHECK(text(rows[1].patient).empty());
  CHECK(rows[1].cycle == 1);
  CHECK(text(rows[1].voi) == "lesion/1");
  CHECK(text(rows[1].function) == "trapezoid");
  CHECK(rows[1].accepted == 0);
  CHECK(rows[1].tia_MBq_h == lesion["tia_MBq_h"].get<double>());
  CHECK(std::isnan(rows[1].tia_u_MBq_h));  // null in the JSON
  CHECK(rows[1].mass_g == lesion["mass_g"].get<double>());
  CHECK(std::isnan(rows[1].dose_Gy));  // no dose has target "lesion/1"
  CHECK(std::isnan(rows[1].dose_u_Gy));
  CHECK(std::isnan(rows[1].dose_Gy_per_GBq));
}

TEST_CASE("results.h5: errors name the path and leave nothing incomplete behind") {
  const auto j = sample_results();
  const std::string bad = "/nonexistent_dir/x.h5";
  REQUIRE_FALSE(fs::exists("/nonexistent_dir"));
  {
    TempH5 ok("warmup");  // the library's own identifiers exist after its first use
    write_results_h5(ok.path, j, kInputs);
  }
  const auto identifiers = open_identifiers();
  try {
    write_results_h5(bad, j, kInputs);
    FAIL("no exception for " << bad);
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    CHECK_MESSAGE(msg.find(bad) != std::string::npos, msg);
    CHECK_MESSAGE(msg.find(std::strerror(ENOENT)) != std::string::npos, msg);
  }

  // Failing after the file was created (a NUL byte cannot be stored in an HDF5 string): the
  // message names the object and the partial file is removed.
  TempH5 tmp("error");
  auto k = j;
  k["patients"][0]["cycles"][0]["vois"][1]["fit"]["function"] = std::string("a\0b", 3);
  try {
    write_results_h5(tmp.path, k, kInputs);
    FAIL("no exception for a NUL character");
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    CHECK_MESSAGE(msg.find(tmp.path) != std::string::npos, msg);
    CHECK_MESSAGE(msg.find("/vois/lesion%2F1/fit/function") != std::string::npos, msg);
  }
  CHECK_FALSE(fs::exists(tmp.path));
  // The RAII handles closed every file, group, type, space, dataset, attribute and property list.
  CHECK(open_identifiers() == identifiers);

  CHECK_THROWS_AS(write_results_h5(tmp.path, ordered_json::array(), {}), std::runtime_error);
  CHECK_THROWS_AS(write_results_h5(tmp.path, {{"lutdose_version", "x"}, {"table", 1}}, {}), std::runtime_error);
  CHECK_FALSE(fs::exists(tmp.path));
  {
    TempH5 ok("after");
    write_results_h5(ok.path, j, kInputs);
  }
  CHECK(open_identifiers() == identifiers);
}
