// results.h5 writer: the HDF5 C API behind small RAII handles. Layout: docs/hdf5-layout.md.
#include "lutdose/io/hdf5_results.h"

#include <fcntl.h>
#include <hdf5.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "io/hdf5_handle.h"

using nlohmann::ordered_json;

namespace lutdose {

namespace {

using hdf5::Handle;
using hdf5::QuietHdf5Errors;
using hdf5::hdf5_error_detail;
using hdf5::escape_name;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
//! Type-conversion buffer of every H5Dwrite. HDF5's default (1 MiB) is allocated afresh for every
//! write that converts (each variable-length string), and that allocation dominated the writer's
//! time; 64 KiB holds thousands of elements of any type written here.
constexpr size_t kConversionBufferBytes = 64 * 1024;
//! Growth step of the in-memory file image (core driver).
constexpr size_t kImageIncrementBytes = 1024 * 1024;

std::string child_path(const std::string& parent, const std::string& name) {
  return parent == "/" ? "/" + name : parent + "/" + name;
}

bool is_number_or_null(const ordered_json& v) { return v.is_number() || v.is_null(); }

double number_or_nan(const ordered_json& v) { return v.is_number() ? v.get<double>() : kNaN; }

//! For an array of objects: the element names by the first key of name, target, id, cycle that
//! every element has (string or integer); empty id -> "_". std::nullopt (name by index) when no
//! such key exists, a value is empty or not usable, or two names coincide after escaping.
std::optional<std::vector<std::string>> element_names(const ordered_json& array) {
  for (const auto& e : array)
    if (!e.is_object()) return std::nullopt;
  for (const char* key : {"name", "target", "id", "cycle"}) {
    bool all_have = true;
    for (const auto& e : array)
      if (e.find(key) == e.end()) {
        all_have = false;
        break;
      }
    if (!all_have) continue;
    std::vector<std::string> names;
    std::set<std::string> seen;
    for (const auto& e : array) {
      const auto& v = e.at(key);
      std::string text;
      if (v.is_string())
        text = v.get<std::string>();
      else if (v.is_number_integer())  // also true for unsigned
        text = v.dump();
      else
        return std::nullopt;
      if (text.empty()) {
        if (std::string(key) != "id") return std::nullopt;
        text = "_";
      }
      std::string name = escape_name(text);
      if (!seen.insert(name).second) return std::nullopt;
      names.push_back(std::move(name));
    }
    return names;
  }
  return std::nullopt;
}

enum class ArrayKind { Empty, Numbers, Bools, Strings, Matrix, Group };

ArrayKind classify(const ordered_json& a) {
  if (a.empty()) return ArrayKind::Empty;
  bool numbers = true, bools = true, strings = true, matrix = true;
  size_t columns = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const auto& e = a[i];
    numbers = numbers && is_number_or_null(e);
    bools = bools && e.is_boolean();
    strings = strings && e.is_string();
    if (matrix) {
      if (!e.is_array() || (i > 0 && e.size() != columns)) {
        matrix = false;
      } else {
        columns = e.size();
        for (const auto& x : e)
          if (!is_number_or_null(x)) {
            matrix = false;
            break;
          }
      }
    }
  }
  if (numbers) return ArrayKind::Numbers;
  if (bools) return ArrayKind::Bools;
  if (strings) return ArrayKind::Strings;
  if (matrix) return ArrayKind::Matrix;
  return ArrayKind::Group;
}

//! One row of /table; the strings are owned here, the record below points into them.
struct TableRow {
  std::string patient, voi, function;
  std::int32_t cycle = -1;
  std::int8_t accepted = -1;
  double tia_MBq_h = kNaN, tia_u_MBq_h = kNaN, tia_h = kNaN, mass_g = kNaN;
  double dose_Gy = kNaN, dose_u_Gy = kNaN, dose_Gy_per_GBq = kNaN;
  // degrees of freedom (+inf: stated sigmas; NaN: u unknown) and 95 % intervals (NaN: unknown)
  double tia_u_dof = kNaN, tia_ci95_low_MBq_h = kNaN, tia_ci95_high_MBq_h = kNaN;
  double dose_u_dof = kNaN, dose_ci95_low_Gy = kNaN, dose_ci95_high_Gy = kNaN;
};

//! The in-memory record of /table (HDF5 compound type built from its offsets).
struct TableRecord {
  const char* patient;
  std::int32_t cycle;
  const char* voi;
  const char* function;
  std::int8_t accepted;
  double tia_MBq_h, tia_u_MBq_h, tia_h, mass_g, dose_Gy, dose_u_Gy, dose_Gy_per_GBq;
  double tia_u_dof, tia_ci95_low_MBq_h, tia_ci95_high_MBq_h, dose_u_dof, dose_ci95_low_Gy, dose_ci95_high_Gy;
};

const ordered_json* member(const ordered_json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

double member_number(const ordered_json& obj, const char* key) {
  const auto* v = member(obj, key);
  return v != nullptr ? number_or_nan(*v) : kNaN;
}

std::string member_text(const ordered_json& obj, const char* key) {
  const auto* v = member(obj, key);
  if (v == nullptr || v->is_null()) return "";
  return v->is_string() ? v->get<std::string>() : v->dump();
}

const ordered_json& member_array(const ordered_json& obj, const char* key) {
  static const ordered_json empty = ordered_json::array();
  const auto* v = member(obj, key);
  return v != nullptr && v->is_array() ? *v : empty;
}

// Degrees of freedom of the JSON ("infinite", a number, or null) as a double (+inf, value, NaN).
double member_dof(const ordered_json& obj, const char* key) {
  const auto* v = member(obj, key);
  if (v != nullptr && v->is_string() && v->get<std::string>() == "infinite")
    return std::numeric_limits<double>::infinity();
  return v != nullptr ? number_or_nan(*v) : kNaN;
}

// Bound i (0: low, 1: high) of a JSON interval [low, high], NaN when null.
double member_bound(const ordered_json& obj, const char* key, size_t i) {
  const auto* v = member(obj, key);
  return v != nullptr && v->is_array() && v->size() == 2 ? number_or_nan((*v)[i]) : kNaN;
}

std::vector<TableRow> table_rows(const ordered_json& results) {
  std::vector<TableRow> rows;
  for (const auto& patient : member_array(results, "patients")) {
    for (const auto& cycle : member_array(patient, "cycles")) {
      const auto& doses = member_array(cycle, "doses");
      for (const auto& voi : member_array(cycle, "vois")) {
        TableRow r;
        r.patient = member_text(patient, "id");
        if (const auto* c = member(cycle, "cycle"); c != nullptr && c->is_number_integer()) {
          const auto n = c->get<std::int64_t>();
          if (n >= std::numeric_limits<std::int32_t>::min() && n <= std::numeric_limits<std::int32_t>::max())
            r.cycle = static_cast<std::int32_t>(n);
        }
        r.voi = member_text(voi, "name");
        if (const auto* fit = member(voi, "fit")) {
          r.function = member_text(*fit, "function");
          if (const auto* a = member(*fit, "accepted"); a != nullptr && a->is_boolean())
            r.accepted = a->get<bool>() ? 1 : 0;
        }
        r.tia_MBq_h = member_number(voi, "tia_MBq_h");
        r.tia_u_MBq_h = member_number(voi, "tia_u_MBq_h");
        r.tia_u_dof = member_dof(voi, "tia_u_dof");
        r.tia_ci95_low_MBq_h = member_bound(voi, "tia_ci95_MBq_h", 0);
        r.tia_ci95_high_MBq_h = member_bound(voi, "tia_ci95_MBq_h", 1);
        r.tia_h = member_number(voi, "tia_h");
        r.mass_g = member_number(voi, "mass_g");
        for (const auto& d : doses) {
          const auto* target = member(d, "target");
          if (target != nullptr && target->is_string() && target->get<std::string>() == r.voi) {
            r.dose_Gy = member_number(d, "dose_Gy");
            r.dose_u_Gy = member_number(d, "dose_u_Gy");
            r.dose_Gy_per_GBq = member_number(d, "dose_Gy_per_GBq");
            r.dose_u_dof = member_dof(d, "dose_u_dof");
            r.dose_ci95_low_Gy = member_bound(d, "dose_ci95_Gy", 0);
            r.dose_ci95_high_Gy = member_bound(d, "dose_ci95_Gy", 1);
            break;
          }
        }
        rows.push_back(std::move(r));
      }
    }
  }
  return rows;
}

bool valid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1Fu;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0Fu;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07u;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3Fu);
    }
    // Overlong forms, surrogates and code points beyond U+10FFFF are not UTF-8.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
      return false;
    i += len;
  }
  return true;
}

class Writer {
 public:
  explicit Writer(std::string file) : file_(std::move(file)) {}

  [[noreturn]] void fail(const std::string& call, const std::string& object) const {
    const std::string detail = hdf5_error_detail();
    std::string msg = "cannot write HDF5 results file '" + file_ + "': " + call + " failed";
    if (!object.empty()) msg += " for '" + object + "'";
    if (!detail.empty()) msg += " (" + detail + ")";
    throw std::runtime_error(msg);
  }
  [[noreturn]] void reject(const std::string& what, const std::string& object) const {
    throw std::runtime_error("cannot write HDF5 results file '" + file_ + "': " + what + " at '" +
                             object + "'");
  }

  hid_t check(hid_t id, const char* call, const std::string& object) const {
    if (id < 0) fail(call, object);
    return id;
  }
  void check_status(herr_t rc, const char* call, const std::string& object) const {
    if (rc < 0) fail(call, object);
  }

  //! The complete HDF5 file, as bytes.
  std::string image(const ordered_json& results, const std::vector<std::pair<std::string, std::string>>& inputs) {
    if (!results.is_object()) reject("the results document is not a JSON object", "/");
    const auto version = results.find("lutdose_version");
    if (version == results.end() || !version->is_string())
      reject("the results document has no string \"lutdose_version\"", "/");
    for (const char* reserved : {"inputs", "table"})
      if (results.contains(reserved))
        reject(std::string("the results document has a member \"") + reserved +
                   "\", a name reserved for /" + reserved,
               "/");

    make_property_lists();
    Handle file = own(check(H5Fcreate(file_.c_str(), H5F_ACC_TRUNC, fcpl_.get(), fapl_.get()), "H5Fcreate", ""), H5Fclose);
    {
      Handle root = own(check(H5Gopen2(file.get(), "/", H5P_DEFAULT), "H5Gopen2", "/"), H5Gclose);
      int_attribute(root.get(), "format_version", HDF5_FORMAT_VERSION, H5T_STD_I32LE, "/");
      string_attribute(root.get(), "lutdose_version", version->get<std::string>(), "/");
      write_members(root.get(), "/", results);

      Handle group = create_group(root.get(), "inputs", "/inputs");
      for (const auto& [name, text] : inputs) {
        if (name.empty()) reject("an input has an empty name", "/inputs");
        const std::string path = child_path("/inputs", escape_name(name));
        // Verbatim bytes; tagged UTF-8 when they are (h5py then decodes them), else ASCII
        // ("bytes of unknown encoding").
        write_strings(group.get(), escape_name(name), path, {text}, false,
                      valid_utf8(text) ? utf8_.get() : bytes_.get());
      }
      write_table(root.get(), table_rows(results));
    }
    // The remaining identifiers are closed before the file is flushed and its image taken.
    for (Handle* h : {&scalar_, &utf8_, &bytes_, &lcpl_, &gcpl_, &dcpl_, &dxpl_, &fcpl_, &fapl_}) h->reset();
    if (close_failures_ > 0) fail("closing an HDF5 object (H5Dclose, H5Gclose, H5Aclose, ...)", "");
    check_status(H5Fflush(file.get(), H5F_SCOPE_GLOBAL), "H5Fflush", "");
    const ssize_t size = H5Fget_file_image(file.get(), nullptr, 0);
    if (size < 0) fail("H5Fget_file_image", "");
    std::string data(static_cast<size_t>(size), '\0');
    if (H5Fget_file_image(file.get(), data.data(), data.size()) != size) fail("H5Fget_file_image", "");
    if (file.reset() < 0) fail("H5Fclose", "");
    return data;
  }

 private:
  void make_property_lists() {
    // The file is built in memory (core driver, no backing store) and its image returned: a full
    // disk or an I/O error then happens in the caller's checked POSIX write, never inside HDF5
    // (1.10.8 crashes in its exit handler after a failed write).
    fapl_ = own(check(H5Pcreate(H5P_FILE_ACCESS), "H5Pcreate(H5P_FILE_ACCESS)", ""), H5Pclose);
    check_status(H5Pset_fapl_core(fapl_.get(), kImageIncrementBytes, 0), "H5Pset_fapl_core", "");
    dxpl_ = own(check(H5Pcreate(H5P_DATASET_XFER), "H5Pcreate(H5P_DATASET_XFER)", ""), H5Pclose);
    check_status(H5Pset_buffer(dxpl_.get(), kConversionBufferBytes, nullptr, nullptr), "H5Pset_buffer", "");
    // The file creation list is also the root group's: track link creation order so that
    // readers list members in JSON order.
    fcpl_ = own(check(H5Pcreate(H5P_FILE_CREATE), "H5Pcreate(H5P_FILE_CREATE)", ""), H5Pclose);
    check_status(H5Pset_link_creation_order(fcpl_.get(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED),
                 "H5Pset_link_creation_order", "/");
    gcpl_ = own(check(H5Pcreate(H5P_GROUP_CREATE), "H5Pcreate(H5P_GROUP_CREATE)", ""), H5Pclose);
    check_status(H5Pset_link_creation_order(gcpl_.get(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED),
                 "H5Pset_link_creation_order", "");
    // No object modification times: the same results give the same bytes (reproducible files).
    check_status(H5Pset_obj_track_times(gcpl_.get(), 0), "H5Pset_obj_track_times", "");
    dcpl_ = own(check(H5Pcreate(H5P_DATASET_CREATE), "H5Pcreate(H5P_DATASET_CREATE)", ""), H5Pclose);
    check_status(H5Pset_obj_track_times(dcpl_.get(), 0), "H5Pset_obj_track_times", "");
    lcpl_ = own(check(H5Pcreate(H5P_LINK_CREATE), "H5Pcreate(H5P_LINK_CREATE)", ""), H5Pclose);
    check_status(H5Pset_char_encoding(lcpl_.get(), H5T_CSET_UTF8), "H5Pset_char_encoding", "");
    utf8_ = string_type(H5T_CSET_UTF8);
    bytes_ = string_type(H5T_CSET_ASCII);
    scalar_ = own(check(H5Screate(H5S_SCALAR), "H5Screate(H5S_SCALAR)", ""), H5Sclose);

  }

  Handle string_type(H5T_cset_t cset) {
    Handle t = own(check(H5Tcopy(H5T_C_S1), "H5Tcopy(H5T_C_S1)", ""), H5Tclose);
    check_status(H5Tset_size(t.get(), H5T_VARIABLE), "H5Tset_size(H5T_VARIABLE)", "");
    check_status(H5Tset_cset(t.get(), cset), "H5Tset_cset", "");
    return t;
  }

  Handle create_group(hid_t parent, const std::string& name, const std::string& path) {
    return own(check(H5Gcreate2(parent, name.c_str(), lcpl_.get(), gcpl_.get(), H5P_DEFAULT), "H5Gcreate2", path),
                  H5Gclose);
  }

  Handle create_dataset(hid_t parent, const std::string& name, const std::string& path, hid_t file_type,
                        hid_t space) {
    return own(check(H5Dcreate2(parent, name.c_str(), file_type, space, lcpl_.get(), dcpl_.get(), H5P_DEFAULT),
                        "H5Dcreate2", path),
                  H5Dclose);
  }

  Handle simple_space(const std::vector<hsize_t>& dims, const std::string& path) {
    return own(check(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), "H5Screate_simple", path),
                  H5Sclose);
  }

  size_t type_size(hid_t type, const std::string& path) const {
    const size_t size = H5Tget_size(type);
    if (size == 0) fail("H5Tget_size", path);
    return size;
  }

  void write_data(hid_t dataset, hid_t mem_type, const void* data, const std::string& path) {
    check_status(H5Dwrite(dataset, mem_type, H5S_ALL, H5S_ALL, dxpl_.get(), data), "H5Dwrite", path);
  }

  void int_attribute(hid_t obj, const char* name, std::int64_t value, hid_t file_type, const std::string& path) {
    const std::string where = path + " @" + name;
    Handle a = own(check(H5Acreate2(obj, name, file_type, scalar_.get(), H5P_DEFAULT, H5P_DEFAULT), "H5Acreate2", where),
             H5Aclose);
    check_status(H5Awrite(a.get(), H5T_NATIVE_INT64, &value), "H5Awrite", where);
  }

  void string_attribute(hid_t obj, const char* name, const std::string& value, const std::string& path) {
    const std::string where = path + " @" + name;
    if (value.find('\0') != std::string::npos) reject("a string contains a NUL character", where);
    Handle a = own(check(H5Acreate2(obj, name, utf8_.get(), scalar_.get(), H5P_DEFAULT, H5P_DEFAULT), "H5Acreate2", where),
             H5Aclose);
    const char* p = value.c_str();
    check_status(H5Awrite(a.get(), utf8_.get(), &p), "H5Awrite", where);
  }

  void json_type(hid_t obj, const char* type, const std::string& path) { string_attribute(obj, "json_type", type, path); }

  //! The members of a JSON object, in order, below `group`.
  void write_members(hid_t group, const std::string& path, const ordered_json& obj) {
    for (const auto& [key, value] : obj.items()) {
      if (key.empty()) reject("a JSON object has an empty key", path);
      const std::string name = escape_name(key);
      write_value(group, name, child_path(path, name), value);
    }
  }

  //! Writes `value` as the link `name` of `parent`; returns the created group or dataset.
  Handle write_value(hid_t parent, const std::string& name, const std::string& path, const ordered_json& value) {
    switch (value.type()) {
      case ordered_json::value_t::object: {
        Handle g = create_group(parent, name, path);
        write_members(g.get(), path, value);
        return g;
      }
      case ordered_json::value_t::array:
        return write_array(parent, name, path, value);
      case ordered_json::value_t::string:
        return write_strings(parent, name, path, {value.get<std::string>()}, false, utf8_.get());
      case ordered_json::value_t::boolean: {
        const std::int8_t b = value.get<bool>() ? 1 : 0;
        Handle d = create_dataset(parent, name, path, H5T_STD_I8LE, scalar_.get());
        write_data(d.get(), H5T_NATIVE_INT8, &b, path);
        json_type(d.get(), "bool", path);
        return d;
      }
      case ordered_json::value_t::number_integer: {
        const auto i = value.get<std::int64_t>();
        Handle d = create_dataset(parent, name, path, H5T_STD_I64LE, scalar_.get());
        write_data(d.get(), H5T_NATIVE_INT64, &i, path);
        return d;
      }
      case ordered_json::value_t::number_unsigned: {
        const auto u = value.get<std::uint64_t>();
        if (u <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
          const auto i = static_cast<std::int64_t>(u);
          Handle d = create_dataset(parent, name, path, H5T_STD_I64LE, scalar_.get());
          write_data(d.get(), H5T_NATIVE_INT64, &i, path);
          return d;
        }
        Handle d = create_dataset(parent, name, path, H5T_STD_U64LE, scalar_.get());
        write_data(d.get(), H5T_NATIVE_UINT64, &u, path);
        return d;
      }
      case ordered_json::value_t::number_float: {
        const double x = value.get<double>();
        Handle d = create_dataset(parent, name, path, H5T_IEEE_F64LE, scalar_.get());
        write_data(d.get(), H5T_NATIVE_DOUBLE, &x, path);
        return d;
      }
      case ordered_json::value_t::null: {
        Handle d = create_dataset(parent, name, path, H5T_IEEE_F64LE, scalar_.get());
        write_data(d.get(), H5T_NATIVE_DOUBLE, &kNaN, path);
        json_type(d.get(), "null", path);
        return d;
      }
      default:
        reject("a JSON value of an unsupported type (binary or discarded)", path);
    }
  }

  //! Variable-length strings: a scalar dataset when `as_array` is false (one string), else 1-D.
  Handle write_strings(hid_t parent, const std::string& name, const std::string& path,
                       const std::vector<std::string>& values, bool as_array, hid_t type) {
    std::vector<const char*> pointers;
    for (const auto& s : values) {
      if (s.find('\0') != std::string::npos) reject("a string contains a NUL character", path);
      pointers.push_back(s.c_str());
    }
    Handle space = as_array ? simple_space({values.size()}, path) : Handle();
    Handle d = create_dataset(parent, name, path, type, as_array ? space.get() : scalar_.get());
    if (!pointers.empty()) write_data(d.get(), type, pointers.data(), path);
    return d;
  }

  Handle write_doubles(hid_t parent, const std::string& name, const std::string& path,
                       const std::vector<double>& values, const std::vector<hsize_t>& dims) {
    Handle space = simple_space(dims, path);
    Handle d = create_dataset(parent, name, path, H5T_IEEE_F64LE, space.get());
    if (!values.empty()) write_data(d.get(), H5T_NATIVE_DOUBLE, values.data(), path);
    return d;
  }

  Handle write_array(hid_t parent, const std::string& name, const std::string& path, const ordered_json& a) {
    switch (classify(a)) {
      case ArrayKind::Empty: {
        Handle d = write_doubles(parent, name, path, {}, {0});
        json_type(d.get(), "empty_array", path);
        return d;
      }
      case ArrayKind::Numbers: {
        std::vector<double> v;
        for (const auto& e : a) v.push_back(number_or_nan(e));
        return write_doubles(parent, name, path, v, {v.size()});
      }
      case ArrayKind::Matrix: {
        std::vector<double> v;  // row-major, as HDF5 stores it
        for (const auto& row : a)
          for (const auto& e : row) v.push_back(number_or_nan(e));
        return write_doubles(parent, name, path, v, {a.size(), a[0].size()});
      }
      case ArrayKind::Bools: {
        std::vector<std::int8_t> v;
        for (const auto& e : a) v.push_back(e.get<bool>() ? 1 : 0);
        Handle space = simple_space({v.size()}, path);
        Handle d = create_dataset(parent, name, path, H5T_STD_I8LE, space.get());
        write_data(d.get(), H5T_NATIVE_INT8, v.data(), path);
        json_type(d.get(), "bool", path);
        return d;
      }
      case ArrayKind::Strings: {
        std::vector<std::string> v;
        for (const auto& e : a) v.push_back(e.get<std::string>());
        return write_strings(parent, name, path, v, true, utf8_.get());
      }
      case ArrayKind::Group:
        break;
    }
    // Objects (named by a key or by index) and anything else (mixed arrays, ragged or deeper
    // nesting): a group whose children carry their position in the attribute "order".
    Handle g = create_group(parent, name, path);
    int_attribute(g.get(), "json_array", 1, H5T_STD_I32LE, path);
    const auto names = element_names(a);
    for (size_t i = 0; i < a.size(); ++i) {
      const std::string child = names ? (*names)[i] : std::to_string(i);
      const std::string child_p = child_path(path, child);
      Handle h = write_value(g.get(), child, child_p, a[i]);
      int_attribute(h.get(), "order", static_cast<std::int64_t>(i), H5T_STD_I64LE, child_p);
    }
    return g;
  }

  void write_table(hid_t root, const std::vector<TableRow>& rows) {
    const std::string path = "/table";
    std::vector<TableRecord> records;
    records.reserve(rows.size());
    for (const auto& r : rows)
      records.push_back({r.patient.c_str(), r.cycle, r.voi.c_str(), r.function.c_str(), r.accepted, r.tia_MBq_h,
                         r.tia_u_MBq_h, r.tia_h, r.mass_g, r.dose_Gy, r.dose_u_Gy, r.dose_Gy_per_GBq,
                         r.tia_u_dof, r.tia_ci95_low_MBq_h, r.tia_ci95_high_MBq_h, r.dose_u_dof,
                         r.dose_ci95_low_Gy, r.dose_ci95_high_Gy});
    struct Field {
      const char* name;
      size_t offset;
      hid_t mem_type, file_type;
    };
    const hid_t str = utf8_.get();
    const Field fields[] = {
        {"patient", offsetof(TableRecord, patient), str, str},
        {"cycle", offsetof(TableRecord, cycle), H5T_NATIVE_INT32, H5T_STD_I32LE},
        {"voi", offsetof(TableRecord, voi), str, str},
        {"function", offsetof(TableRecord, function), str, str},
        {"accepted", offsetof(TableRecord, accepted), H5T_NATIVE_INT8, H5T_STD_I8LE},
        {"tia_MBq_h", offsetof(TableRecord, tia_MBq_h), H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE},
        {"tia_u_MBq_h", offsetof(TableRecord, tia_u_MBq_h), H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE},
        {"tia_h", offsetof(TableRecord, tia_h), H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE},
        {"mass_g", offsetof(TableRecord, mass_g), H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE},
        {"dose_Gy", offsetof(TableRecord, dose_Gy), H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE},
        {"dose_u_Gy", offsetof(TableRecord, dose_u_Gy), H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE},
        {"dose_Gy_per_GBq", offsetof(TableRecord, dose_Gy_per_GBq), H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE},
        {"tia_u_dof", offsetof(TableRecord, tia_u_dof), H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE},
        {"tia_ci95_low_MBq_h", offsetof(TableRecord, tia_ci95_low_MBq_h), H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE},
        {"tia_ci95_high_MBq_h", offsetof(TableRecord, tia_ci95_high_MBq_h), H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE},
        {"dose_u_dof", offsetof(TableRecord, dose_u_dof), H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE},
        {"dose_ci95_low_Gy", offsetof(TableRecord, dose_ci95_low_Gy), H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE},
        {"dose_ci95_high_Gy", offsetof(TableRecord, dose_ci95_high_Gy), H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE},
    };
    // In memory: the struct's layout; in the file: the same fields packed, little-endian.
    size_t file_size = 0;
    for (const auto& f : fields) file_size += type_size(f.file_type, path);
    Handle mem = own(check(H5Tcreate(H5T_COMPOUND, sizeof(TableRecord)), "H5Tcreate(H5T_COMPOUND)", path), H5Tclose);
    Handle file = own(check(H5Tcreate(H5T_COMPOUND, file_size), "H5Tcreate(H5T_COMPOUND)", path), H5Tclose);
    size_t file_offset = 0;
    for (const auto& f : fields) {
      check_status(H5Tinsert(mem.get(), f.name, f.offset, f.mem_type), "H5Tinsert", path);
      check_status(H5Tinsert(file.get(), f.name, file_offset, f.file_type), "H5Tinsert", path);
      file_offset += type_size(f.file_type, path);
    }
    Handle space = simple_space({records.size()}, path);
    Handle d = create_dataset(root, "table", path, file.get(), space.get());
    if (!records.empty()) write_data(d.get(), mem.get(), records.data(), path);
  }

  //! A handle whose failing close is counted (and reported by image()).
  Handle own(hid_t id, Handle::Closer closer) { return Handle(id, closer, &close_failures_); }

  std::string file_;
  int close_failures_ = 0;
  Handle fapl_, fcpl_, gcpl_, dcpl_, lcpl_, dxpl_, utf8_, bytes_, scalar_;
};

}  // namespace

namespace {
//! The image, with `shown` naming the file in messages.
std::string image_named(const std::string& shown, const ordered_json& results,
                        const std::vector<std::pair<std::string, std::string>>& inputs) {
  QuietHdf5Errors quiet;
  return Writer(shown).image(results, inputs);
}
}  // namespace

std::string results_h5_image(const ordered_json& results,
                             const std::vector<std::pair<std::string, std::string>>& inputs) {
  return image_named("results.h5", results, inputs);
}

void write_results_h5(const std::string& path, const ordered_json& results,
                      const std::vector<std::pair<std::string, std::string>>& inputs) {
  const std::string data = image_named(path, results, inputs);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0666);
  if (fd < 0) throw std::runtime_error("cannot write HDF5 results file '" + path + "': " + std::strerror(errno));
  size_t done = 0;
  int err = 0;
  while (done < data.size() && err == 0) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n >= 0) done += static_cast<size_t>(n);
    else if (errno != EINTR) err = errno;
  }
  if (::close(fd) != 0 && err == 0) err = errno;
  if (err != 0) {
    ::unlink(path.c_str());  // an incomplete results.h5 is worse than none
    throw std::runtime_error("cannot write HDF5 results file '" + path + "': " + std::strerror(err));
  }
}

}  // namespace lutdose
