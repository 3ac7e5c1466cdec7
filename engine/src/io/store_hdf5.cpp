// HDF5 files of the results store: types, writer (in memory or on disk), virtual master, reader.
// Layout: docs/store.md. RAII handles (io/hdf5_handle.h), every status checked.
#include "io/store_hdf5.h"

#include <algorithm>
#include <sys/stat.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "lutdose/error.h"

namespace lutdose::store_detail {

namespace {

//! Type-conversion buffer of every read and write (HDF5's 1 MiB default
//! is allocated afresh for every converting call).
constexpr size_t kConversionBufferBytes = 64 * 1024;
constexpr size_t kImageIncrementBytes = 1024 * 1024;
//! Chunk cache per table dataset: two chunks of the widest table (8192 rows of about 400 bytes),
//! so that an append that starts inside a chunk (a segment boundary) finds it in the cache
//! instead of reading and decompressing it again. HDF5's default (1 MiB) holds none.
constexpr size_t kChunkCacheBytes = 8 * 1024 * 1024;

}  // namespace

Handle own(hid_t id, Handle::Closer closer, int* failures) { return Handle(id, closer, failures); }

Handle string_type(bool variable) {
  Handle t = own(ok_id(H5Tcopy(H5T_C_S1), "H5Tcopy(H5T_C_S1)", ""), H5Tclose);
  ok(H5Tset_size(t.get(), variable ? H5T_VARIABLE : STORE_NAME_BYTES), "H5Tset_size", "");
  if (!variable) ok(H5Tset_strpad(t.get(), H5T_STR_NULLPAD), "H5Tset_strpad", "");
  ok(H5Tset_cset(t.get(), H5T_CSET_UTF8), "H5Tset_cset", "");
  return t;
}

namespace {

//! A member's type: the file's (little-endian, standard) or the memory's (native).
Handle member_type(Kind k, bool in_file) {
  switch (k) {
    case Kind::Key: return string_type(false);
    case Kind::Text: return string_type(true);
    case Kind::I8: return own(ok_id(H5Tcopy(in_file ? H5T_STD_I8LE : H5T_NATIVE_INT8), "H5Tcopy", ""), H5Tclose);
    case Kind::I32: return own(ok_id(H5Tcopy(in_file ? H5T_STD_I32LE : H5T_NATIVE_INT32), "H5Tcopy", ""), H5Tclose);
    case Kind::F64: break;
  }
  return own(ok_id(H5Tcopy(in_file ? H5T_IEEE_F64LE : H5T_NATIVE_DOUBLE), "H5Tcopy", ""), H5Tclose);
}

}  // namespace

Handle compound_type(const std::vector<ColumnSpec>& specs, const Layout* mem) {
  std::vector<Handle> members;
  size_t packed = 0;
  for (const auto& s : specs) {
    members.push_back(member_type(s.kind, mem == nullptr));
    packed += H5Tget_size(members.back().get());
  }
  Handle t = own(ok_id(H5Tcreate(H5T_COMPOUND, mem != nullptr ? mem->size : packed), "H5Tcreate", ""), H5Tclose);
  size_t at = 0;
  for (size_t i = 0; i < specs.size(); ++i) {
    const size_t offset = mem != nullptr ? mem->offsets[i] : at;
    ok(H5Tinsert(t.get(), specs[i].name, offset, members[i].get()), "H5Tinsert", specs[i].name);
    at += H5Tget_size(members[i].get());
  }
  return t;
}

Handle simple_space(hsize_t n, hsize_t max) {
  return own(ok_id(H5Screate_simple(1, &n, &max), "H5Screate_simple", ""), H5Sclose);
}

void select_rows(hid_t space, hsize_t offset, hsize_t count, const std::string& where) {
  ok(H5Sselect_hyperslab(space, H5S_SELECT_SET, &offset, nullptr, &count, nullptr), "H5Sselect_hyperslab", where);
}

hid_t ok_id(hid_t id, const char* call, const std::string& where) {
  if (id < 0) ok(-1, call, where);
  return id;
}

void ok(herr_t rc, const char* call, const std::string& where) {
  if (rc >= 0) return;
  const std::string detail = hdf5::hdf5_error_detail();
  throw std::runtime_error(std::string("results store: ") + call + " failed" + (where.empty() ? "" : " (" + where + ")") +
                           (detail.empty() ? "" : ": " + detail));
}

std::string segment_name(int number) {
  char name[32];
  std::snprintf(name, sizeof name, "seg-%06d.h5", number);
  return name;
}

bool is_segment_name(const std::string& name, int* number) {
  const std::string prefix = "seg-", suffix = ".h5";
  if (name.size() < prefix.size() + 6 + suffix.size() || name.size() > prefix.size() + 9 + suffix.size() ||
      name.compare(0, prefix.size(), prefix) != 0 || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
    return false;
  const std::string digits = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
  for (char c : digits)
    if (c < '0' || c > '9') return false;
  if (number != nullptr) *number = std::stoi(digits);
  return true;
}

std::string segments_json(const std::vector<Segment>& segments) {
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const auto& s : segments) {
    nlohmann::ordered_json rows = nlohmann::ordered_json::object();
    for (const auto& name : table_names()) rows[name] = s.rows.count(name) ? s.rows.at(name) : 0;
    list.push_back({{"file", s.file}, {"rows", rows}});
  }
  return list.dump();
}

std::vector<Segment> parse_segments(const std::string& json, const std::string& where, int version) {
  const auto list = nlohmann::json::parse(json, nullptr, false);
  const auto bad = [&] {
    return InputError(where + ": the root attribute \"segments\" is not a lutdose segment list (" + json.substr(0, 80) + ")");
  };
  if (!list.is_array()) throw bad();
  std::vector<Segment> segments;
  for (const auto& e : list) {
    if (!e.is_object() || !e.contains("file") || !e["file"].is_string() || !is_segment_name(e["file"]) ||
        !e.contains("rows") || !e["rows"].is_object())
      throw bad();
    Segment s{e["file"].get<std::string>(), {}};
    for (const auto& name : table_names()) {
      if (!table_in_format(name, version)) continue;
      if (!e["rows"].contains(name) || !e["rows"][name].is_number_unsigned()) throw bad();
      s.rows[name] = e["rows"][name].get<hsize_t>();
    }
    segments.push_back(std::move(s));
  }
  return segments;
}

// ---------------------------------------------------------------------------------------------
// Writer

StoreFileWriter::StoreFileWriter(const std::string& disk_path) {
  fapl_ = own(ok_id(H5Pcreate(H5P_FILE_ACCESS), "H5Pcreate(H5P_FILE_ACCESS)", ""), H5Pclose);
  if (disk_path.empty()) {
    ok(H5Pset_fapl_core(fapl_.get(), kImageIncrementBytes, 0), "H5Pset_fapl_core", "");
  } else {
    ok(H5Pset_fapl_sec2(fapl_.get()), "H5Pset_fapl_sec2", disk_path);
    ok(H5Pset_file_locking(fapl_.get(), 0, 1), "H5Pset_file_locking", disk_path);
  }
  const std::string name = disk_path.empty() ? "lutdose-store-image.h5" : disk_path;
  file_ = own(ok_id(H5Fcreate(name.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl_.get()), "H5Fcreate", name), H5Fclose,
              &close_failures_);
  dxpl_ = own(ok_id(H5Pcreate(H5P_DATASET_XFER), "H5Pcreate(H5P_DATASET_XFER)", ""), H5Pclose);
  ok(H5Pset_buffer(dxpl_.get(), kConversionBufferBytes, nullptr, nullptr), "H5Pset_buffer", "");
  lcpl_ = own(ok_id(H5Pcreate(H5P_LINK_CREATE), "H5Pcreate(H5P_LINK_CREATE)", ""), H5Pclose);
  ok(H5Pset_char_encoding(lcpl_.get(), H5T_CSET_UTF8), "H5Pset_char_encoding", "");
  dapl_ = own(ok_id(H5Pcreate(H5P_DATASET_ACCESS), "H5Pcreate(H5P_DATASET_ACCESS)", ""), H5Pclose);
  ok(H5Pset_chunk_cache(dapl_.get(), 521, kChunkCacheBytes, 1.0), "H5Pset_chunk_cache", "");
}

void StoreFileWriter::string_attribute(const char* name, const std::string& value) {
  Handle type = string_type(true);
  Handle scalar = own(ok_id(H5Screate(H5S_SCALAR), "H5Screate", ""), H5Sclose);
  const std::string where = std::string("/ @") + name;
  Handle a = own(ok_id(H5Acreate2(file_.get(), name, type.get(), scalar.get(), H5P_DEFAULT, H5P_DEFAULT), "H5Acreate2", where),
                 H5Aclose, &close_failures_);
  const char* p = value.c_str();
  ok(H5Awrite(a.get(), type.get(), &p), "H5Awrite", where);
}

void StoreFileWriter::write_header(const StoreHeader& h, const std::string& segments) {
  Handle scalar = own(ok_id(H5Screate(H5S_SCALAR), "H5Screate", ""), H5Sclose);
  const auto int_attribute = [&](const char* name, hid_t file_type, long long value) {
    const std::string where = std::string("/ @") + name;
    Handle a = own(ok_id(H5Acreate2(file_.get(), name, file_type, scalar.get(), H5P_DEFAULT, H5P_DEFAULT), "H5Acreate2",
                         where),
                   H5Aclose, &close_failures_);
    ok(H5Awrite(a.get(), H5T_NATIVE_LLONG, &value), "H5Awrite", where);
  };
  int_attribute("format_version", H5T_STD_I32LE, STORE_FORMAT_VERSION);
  string_attribute("lutdose_version", h.lutdose_version);
  string_attribute("kind", h.kind);
  string_attribute("provenance_json", h.provenance_json);
  string_attribute("fingerprint", h.fingerprint);
  string_attribute("cohort", h.cohort);
  string_attribute("shard", h.shard);
  int_attribute("cohort_patients", H5T_STD_I64LE, h.cohort_patients);
  if (!segments.empty()) string_attribute("segments", segments);
  write_header_table(population_table(), h.population);
  write_header_table(population_omega_table(), h.population_omega);
}

// /population and /population_omega: ordinary tables (never virtual: the header's rows, the same
// in every file of a store), chunked to their size.
template <class Row>
void StoreFileWriter::write_header_table(const Table<Row>& t, const std::vector<Row>& rows) {
  const std::string where = std::string("/") + t.name;
  Handle type = compound_type(t.specs(), nullptr), dcpl = dataset_creation();
  const hsize_t chunk = std::clamp<hsize_t>(rows.size(), 1, kChunkRows);
  ok(H5Pset_chunk(dcpl.get(), 1, &chunk), "H5Pset_chunk", where);
  Handle space = simple_space(0, H5S_UNLIMITED);
  tables_[t.name] = own(ok_id(H5Dcreate2(file_.get(), t.name, type.get(), space.get(), lcpl_.get(), dcpl.get(), dapl_.get()),
                              "H5Dcreate2", where),
                        H5Dclose, &close_failures_);
  sizes_[t.name] = 0;
  append(t, rows);
}

void StoreFileWriter::write_inputs(const std::vector<std::pair<std::string, std::string>>& inputs) {
  Handle group = own(ok_id(H5Gcreate2(file_.get(), "inputs", lcpl_.get(), H5P_DEFAULT, H5P_DEFAULT), "H5Gcreate2", "/inputs"),
                     H5Gclose, &close_failures_);
  Handle type = string_type(true);
  Handle scalar = own(ok_id(H5Screate(H5S_SCALAR), "H5Screate", ""), H5Sclose);
  for (const auto& [name, bytes] : inputs) {
    const std::string link = hdf5::escape_name(name), where = "/inputs/" + link;
    if (link.empty()) throw std::logic_error("results store: an input has an empty name");
    Handle d = own(ok_id(H5Dcreate2(group.get(), link.c_str(), type.get(), scalar.get(), lcpl_.get(), H5P_DEFAULT,
                                    H5P_DEFAULT),
                         "H5Dcreate2", where),
                   H5Dclose, &close_failures_);
    const char* p = bytes.c_str();
    ok(H5Dwrite(d.get(), type.get(), H5S_ALL, H5S_ALL, dxpl_.get(), &p), "H5Dwrite", where);
  }
}

Handle StoreFileWriter::dataset_creation() {
  Handle dcpl = own(ok_id(H5Pcreate(H5P_DATASET_CREATE), "H5Pcreate(H5P_DATASET_CREATE)", ""), H5Pclose);
  ok(H5Pset_obj_track_times(dcpl.get(), 0), "H5Pset_obj_track_times", "");  // same rows, same bytes
  return dcpl;
}

void StoreFileWriter::create_tables(const StoreRows* rows) { create_virtual_tables({}, "", rows); }

void StoreFileWriter::create_virtual_tables(const std::vector<Segment>& segments, const std::string& parts_name,
                                            const StoreRows* rows) {
  for_each_table([&](const auto& t) {
    const std::string where = std::string("/") + t.name;
    const auto specs = t.specs();
    Handle type = compound_type(specs, nullptr), dcpl = dataset_creation();
    hsize_t total = 0;
    for (const auto& s : segments) total += s.rows.at(t.name);
    Handle space = total == 0 ? simple_space(0, H5S_UNLIMITED) : simple_space(total, total);
    if (total == 0) {  // an ordinary table: chunked, extendible, compressed
      const hsize_t chunk =
          rows ? std::clamp<hsize_t>((*rows.*(t.rows)).size(), 1, kChunkRows) : kChunkRows;
      ok(H5Pset_chunk(dcpl.get(), 1, &chunk), "H5Pset_chunk", where);
      ok(H5Pset_shuffle(dcpl.get()), "H5Pset_shuffle", where);
      ok(H5Pset_deflate(dcpl.get(), 1), "H5Pset_deflate", where);
    }
    hsize_t offset = 0;
    for (const auto& s : segments) {
      const hsize_t n = s.rows.at(t.name);
      if (n == 0) continue;
      select_rows(space.get(), offset, n, where);
      Handle source = simple_space(n, n);
      const std::string file = parts_name + "/" + s.file;
      ok(H5Pset_virtual(dcpl.get(), space.get(), file.c_str(), where.c_str(), source.get()), "H5Pset_virtual", where);
      offset += n;
    }
    if (total > 0) ok(H5Sselect_all(space.get()), "H5Sselect_all", where);
    tables_[t.name] = own(ok_id(H5Dcreate2(file_.get(), t.name, type.get(), space.get(), lcpl_.get(), dcpl.get(), dapl_.get()),
                                "H5Dcreate2", where),
                          H5Dclose, &close_failures_);
    sizes_[t.name] = total;
  });
}

void StoreFileWriter::append_records(const char* table, const std::vector<ColumnSpec>& specs, const Layout& l,
                                     const void* buf, std::size_t n) {
  if (n == 0) return;
  const std::string where = std::string("/") + table;
  const hid_t d = tables_.at(table).get();
  const hsize_t offset = sizes_.at(table), count = n, size = offset + count;
  ok(H5Dset_extent(d, &size), "H5Dset_extent", where);
  Handle file_space = own(ok_id(H5Dget_space(d), "H5Dget_space", where), H5Sclose);
  select_rows(file_space.get(), offset, count, where);
  Handle memory_space = simple_space(count, count);
  Handle type = compound_type(specs, &l);
  ok(H5Dwrite(d, type.get(), memory_space.get(), file_space.get(), dxpl_.get(), buf), "H5Dwrite", where);
  sizes_[table] = size;
}

void StoreFileWriter::append_all(const StoreRows& rows) {
  for_each_table([&](const auto& t) { append(t, rows.*(t.rows)); });
}

std::string StoreFileWriter::image() {
  tables_.clear();
  if (close_failures_ > 0) throw std::runtime_error("results store: closing an HDF5 object (H5Dclose, H5Aclose, ...) failed");
  ok(H5Fflush(file_.get(), H5F_SCOPE_GLOBAL), "H5Fflush", "");
  const ssize_t size = H5Fget_file_image(file_.get(), nullptr, 0);
  if (size < 0) ok(-1, "H5Fget_file_image", "");
  std::string data(static_cast<size_t>(size), '\0');
  if (H5Fget_file_image(file_.get(), data.data(), data.size()) != size) ok(-1, "H5Fget_file_image", "");
  close();
  return data;
}

void StoreFileWriter::close() {
  tables_.clear();
  for (Handle* h : {&dapl_, &lcpl_, &dxpl_}) h->reset();
  file_.reset();
  fapl_.reset();
  if (close_failures_ > 0) throw std::runtime_error("results store: closing the HDF5 file (H5Fclose, H5Dclose, ...) failed");
}

}  // namespace lutdose::store_detail
