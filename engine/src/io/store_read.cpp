// Reading a results store (a finished store or the virtual master of an unfinished batch).
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "io/store_hdf5.h"
#include "lutdose/error.h"

namespace lutdose::store_detail {

namespace {

//! The segment folder of the store at `path`: PATH.parts.
std::string parts_of(const std::string& path) { return path + ".parts"; }

}  // namespace

StoreFileReader::StoreFileReader(const std::string& path, StoreVersions versions)
    : path_(path), shown_(output_fs::in_quotes(path)), versions_(versions) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    throw InputError("results store " + shown_ + ": " + std::strerror(errno) + "; expected a lutdose results store");
  if (!S_ISREG(st.st_mode)) throw InputError("results store " + shown_ + " is not a regular file");
  if (H5Fis_hdf5(path.c_str()) <= 0) {
    hdf5::hdf5_error_detail();  // clears the stack
    throw InputError("results store " + shown_ + " is not an HDF5 file; expected a lutdose results store");
  }
  Handle fapl = own(ok_id(H5Pcreate(H5P_FILE_ACCESS), "H5Pcreate(H5P_FILE_ACCESS)", ""), H5Pclose);
  ok(H5Pset_file_locking(fapl.get(), 0, 1), "H5Pset_file_locking", path);
  open(fapl.get());
  check_segments();
}

StoreFileReader::StoreFileReader(const std::string& bytes, const std::string& shown)
    : shown_(output_fs::in_quotes(shown)), image_(bytes) {
  Handle fapl = own(ok_id(H5Pcreate(H5P_FILE_ACCESS), "H5Pcreate(H5P_FILE_ACCESS)", ""), H5Pclose);
  ok(H5Pset_fapl_core(fapl.get(), 1024 * 1024, 0), "H5Pset_fapl_core", shown);
  ok(H5Pset_file_image(fapl.get(), image_.data(), image_.size()), "H5Pset_file_image", shown);
  open(fapl.get());
}

void StoreFileReader::open(hid_t fapl) {
  const std::string file_name = path_.empty() ? "lutdose-store-image.h5" : path_;
  file_ = own(ok_id(H5Fopen(file_name.c_str(), H5F_ACC_RDONLY, fapl), "H5Fopen", shown_), H5Fclose);
  const hid_t f = file_.get();
  const auto not_store = [&](const std::string& why) {
    return InputError("results store " + shown_ + " is not a lutdose results store (" + why + ")");
  };
  const auto has = [&](const char* name) { return H5Aexists(f, name) > 0; };
  const auto text = [&](const char* name) {
    if (!has(name)) throw not_store(std::string("no root attribute \"") + name + "\"");
    Handle a = own(ok_id(H5Aopen(f, name, H5P_DEFAULT), "H5Aopen", name), H5Aclose);
    Handle type = string_type(true);
    char* p = nullptr;
    ok(H5Aread(a.get(), type.get(), &p), "H5Aread", name);
    std::string s = p != nullptr ? p : "";
    H5free_memory(p);
    return s;
  };
  const auto integer = [&](const char* name) {
    if (!has(name)) throw not_store(std::string("no root attribute \"") + name + "\"");
    Handle a = own(ok_id(H5Aopen(f, name, H5P_DEFAULT), "H5Aopen", name), H5Aclose);
    long long v = 0;
    ok(H5Aread(a.get(), H5T_NATIVE_LLONG, &v), "H5Aread", name);
    return v;
  };
  const long long version = integer("format_version");
  check_version(version);
  format_version = static_cast<int>(version);
  header = {text("lutdose_version"), text("kind"),  text("provenance_json"), text("fingerprint"),
            text("cohort"),          text("shard"), integer("cohort_patients"), {}, {}};
  consolidated = !has("segments");
  if (!consolidated) segments = parse_segments(text("segments"), "results store " + shown_, format_version);
  for (const auto& t : table_names())  // a table of a later format is read as one without rows
    if (table_in_format(t, format_version) && H5Lexists(f, t.c_str(), H5P_DEFAULT) <= 0)
      throw not_store("no dataset /" + t);
  if (version < 3) return;  // format 2 (lutdose 0.10): no /population, no population kinetics
  // formats 3 and 4 lack columns of /population: their rows keep them empty or NaN (unknown)
  read_header_table(population_table_of_format(static_cast<int>(version)), header.population, not_store);
  if (version < 5) return;  // no /population_omega before format 5
  // formats 5 and 6 lack its column correlation_se: NaN (not known)
  read_header_table(population_omega_table_of_format(static_cast<int>(version)), header.population_omega, not_store);
}

template <class Row, class NotStore>
void StoreFileReader::read_header_table(const Table<Row>& t, std::vector<Row>& out, const NotStore& not_store) const {
  if (H5Lexists(file_.get(), t.name, H5P_DEFAULT) <= 0) throw not_store(std::string("no dataset /") + t.name);
  read(t, 0, static_cast<std::size_t>(rows(t.name)), out);
}

void StoreFileReader::check_version(long long version) const {
  const bool readable = versions_ == StoreVersions::readable;
  const int oldest = readable ? OLDEST_READABLE_STORE_FORMAT_VERSION : STORE_FORMAT_VERSION;
  if (version >= oldest && version <= STORE_FORMAT_VERSION) return;
  const std::string reads = oldest == STORE_FORMAT_VERSION
                                ? "format_version " + std::to_string(STORE_FORMAT_VERSION)
                                : "format_version " + std::to_string(oldest) + " to " + std::to_string(STORE_FORMAT_VERSION);
  std::string why;
  if (version == 1) why = " (1 is the JSON-mirror results.h5 of lutdose <= 0.6)";
  else if (!readable && version >= OLDEST_READABLE_STORE_FORMAT_VERSION && version < STORE_FORMAT_VERSION)
    why = " here (lutdose export and report read format_version " + std::to_string(version) +
          "; a batch is resumed and stores are merged in today's format only)";
  throw InputError("results store " + shown_ + " has format_version " + std::to_string(version) + "; this lutdose reads " +
                   reads + why);
}

void StoreFileReader::check_segments() {
  for (const auto& s : segments) {
    const std::string file = parts_of(path_) + "/" + s.file;
    struct stat st;
    if (::stat(file.c_str(), &st) != 0)
      throw InputError("results store " + shown_ + " is an unfinished batch whose segment " + output_fs::in_quotes(file) +
                       " is missing (" + std::strerror(errno) + "); its committed rows cannot be read");
  }
}

hsize_t StoreFileReader::rows(const std::string& table) const {
  if (!table_in_format(table, format_version)) return 0;  // e.g. /points of a format-5 store
  Handle d = own(ok_id(H5Dopen2(file_.get(), table.c_str(), H5P_DEFAULT), "H5Dopen2", "/" + table), H5Dclose);
  Handle space = own(ok_id(H5Dget_space(d.get()), "H5Dget_space", "/" + table), H5Sclose);
  hsize_t n = 0;
  if (H5Sget_simple_extent_ndims(space.get()) != 1) throw InputError("results store " + shown_ + ": /" + table + " is not 1-D");
  ok(H5Sget_simple_extent_dims(space.get(), &n, nullptr), "H5Sget_simple_extent_dims", "/" + table);
  return n;
}

Handle StoreFileReader::read_records(const char* table, const std::vector<ColumnSpec>& specs, const Layout& l,
                                     hsize_t offset, std::size_t count, void* buf) const {
  const std::string where = std::string("/") + table;
  Handle type = compound_type(specs, &l);
  if (count == 0) return type;
  Handle d = own(ok_id(H5Dopen2(file_.get(), table, H5P_DEFAULT), "H5Dopen2", where), H5Dclose);
  Handle file_space = own(ok_id(H5Dget_space(d.get()), "H5Dget_space", where), H5Sclose);
  select_rows(file_space.get(), offset, count, where);
  Handle memory_space = simple_space(count, count);
  ok(H5Dread(d.get(), type.get(), memory_space.get(), file_space.get(), H5P_DEFAULT, buf), "H5Dread",
     where + " of " + shown_);
  return type;
}

void StoreFileReader::reclaim(hid_t type, std::size_t count, void* buf) const {
  if (count == 0) return;
  Handle space = simple_space(count, count);
  ok(H5Dvlen_reclaim(type, space.get(), H5P_DEFAULT, buf), "H5Dvlen_reclaim", "");
}

}  // namespace lutdose::store_detail
