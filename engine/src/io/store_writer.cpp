// The batch writer of a results store (lutdose/io/store.h): segments in PATH.parts, a virtual
// master at PATH replaced atomically after every commit, consolidation by finish(), resume after a
// kill. The folder PATH.parts is locked (flock) by its writer and marked as lutdose's by the file
// "lutdose-store-parts" (JSON: fingerprint, cohort, shard, provenance). Layout: docs/store.md.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "io/output_fs.h"
#include "io/store_hdf5.h"
#include "lutdose/error.h"
#include "lutdose/io/output_dir.h"
#include "lutdose/io/store.h"

namespace lutdose {

using namespace store_detail;
namespace fs = output_fs;

namespace {

constexpr const char* kPartsFormat = "lutdose-store-parts";
constexpr off_t kMaxMarkerBytes = 1024 * 1024;


//! True for the bytes of a master store of the batch whose fingerprint is `fingerprint`: the
//! only file at PATH a commit or finish() may replace.
std::function<bool(const std::string&)> is_master_of(const std::string& fingerprint) {
  return [fingerprint](const std::string& content) {
    try {
      hdf5::QuietHdf5Errors quiet;
      StoreFileReader r(content, "the previous master");
      return !r.consolidated && r.header.fingerprint == fingerprint;
    } catch (const std::exception&) {
      return false;
    }
  };
}

std::string marker_text(const StoreHeader& h) {
  nlohmann::ordered_json m = {{"format", kPartsFormat}, {"fingerprint", h.fingerprint}, {"cohort", h.cohort},
                              {"shard", h.shard}, {"provenance_json", h.provenance_json}};
  return m.dump(2) + "\n";
}

//! InputError unless `stored` (of the store or its marker at `shown`) is of the same batch as `h`.
void check_same_run(const StoreHeader& stored, const StoreHeader& h, const std::string& shown) {
  const std::pair<const char*, std::pair<std::string, std::string>> items[] = {
      {"fingerprint (options and reference data)", {stored.fingerprint, h.fingerprint}},
      {"cohort", {stored.cohort, h.cohort}},
      {"shard", {stored.shard, h.shard}}};
  for (const auto& [item, values] : items)
    if (values.first != values.second)
      throw InputError(shown + ": its " + item + " is " + fs::in_quotes(values.first.substr(0, 200)) + ", this run's is " +
                       fs::in_quotes(values.second.substr(0, 200)) +
                       (item == items[0].first ? option_differences(stored.provenance_json, h.provenance_json) : "") +
                       "; only the same batch can be resumed (start a new store for another one)");
}

//! The header recorded in the marker of PATH.parts; nothing when there is no valid marker.
std::optional<StoreHeader> read_marker(int partsfd) {
  std::string text;
  nlohmann::json m;
  if (fs::read_regular(partsfd, kPartsMarker, kMaxMarkerBytes, text)) m = nlohmann::json::parse(text, nullptr, false);
  if (!m.is_object() || m.value("format", "") != kPartsFormat || !m.contains("fingerprint") ||
      !m["fingerprint"].is_string() || !m.contains("cohort") || !m["cohort"].is_string() || !m.contains("shard") ||
      !m["shard"].is_string())
    return std::nullopt;
  StoreHeader h;
  h.fingerprint = m["fingerprint"];
  h.cohort = m["cohort"];
  h.shard = m["shard"];
  if (m.contains("provenance_json") && m["provenance_json"].is_string())  // since 0.12: names what differs
    h.provenance_json = m["provenance_json"];
  return h;
}

//! Opens and locks PATH.parts (`name` in `parentfd`); InputError when another writer holds it.
fs::Fd lock_parts(int parentfd, const std::string& name, const std::string& shown) {
  fs::Fd fd(::openat(parentfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) fs::fail("cannot open the segment folder " + shown, errno);
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK)
      throw InputError("results store segment folder " + shown +
                       " is locked by another lutdose batch writing the same store; wait for it to end, or "
                       "choose another store name");
    fs::fail("cannot lock the segment folder " + shown, errno);
  }
  return fd;
}

//! Removes from PATH.parts the segment files not in `keep` and killed runs' temporary files.
void remove_segments(int partsfd, const std::set<std::string>& keep, const std::string& shown) {
  fs::remove_leftovers(partsfd);
  for (const auto& n : fs::directory_entries(partsfd)) {
    struct stat st;
    if (is_segment_name(n) && keep.count(n) == 0 && ::fstatat(partsfd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISREG(st.st_mode) && ::unlinkat(partsfd, n.c_str(), 0) != 0)
      fs::fail("cannot remove the uncommitted segment " + fs::in_quotes(n) + " of " + shown, errno);
  }
  fs::sync_directory(partsfd, shown);
}

}  // namespace

namespace store_detail {

namespace {

//! Adds to `out` the JSON paths (under `path`) where a and b differ, as "path (A vs B)".
void collect_differences(const nlohmann::json& a, const nlohmann::json& b, const std::string& path,
                         std::vector<std::string>& out) {
  if (a == b) return;
  if (a.is_object() && b.is_object()) {
    std::set<std::string> keys;
    for (auto it = a.begin(); it != a.end(); ++it) keys.insert(it.key());
    for (auto it = b.begin(); it != b.end(); ++it) keys.insert(it.key());
    for (const auto& k : keys)
      collect_differences(a.value(k, nlohmann::json()), b.value(k, nlohmann::json()), path + "." + k, out);
    return;
  }
  const auto shown = [](const nlohmann::json& v) { return v.is_null() ? std::string("absent") : v.dump().substr(0, 80); };
  out.push_back(path + " (" + shown(a) + " vs " + shown(b) + ")");
}

}  // namespace

std::string option_differences(const std::string& stored_json, const std::string& this_json) {
  const auto a = nlohmann::json::parse(stored_json, nullptr, false), b = nlohmann::json::parse(this_json, nullptr, false);
  if (!a.is_object() || !b.is_object() || !a.contains("options") || !b.contains("options")) return "";
  auto oa = a["options"], ob = b["options"];
  for (auto* o : {&oa, &ob}) {  // what the fingerprint leaves out (store_header_of): paths
    o->erase("input");
    o->erase("data_dir");
    if (o->contains("fit") && (*o)["fit"].is_object() && (*o)["fit"].contains("population") &&
        (*o)["fit"]["population"].is_object())
      (*o)["fit"]["population"].erase("source");
  }
  std::vector<std::string> d;
  collect_differences(a.value("nuclide", nlohmann::json()), b.value("nuclide", nlohmann::json()), "nuclide", d);
  collect_differences(oa, ob, "options", d);
  constexpr size_t kShown = 5;
  std::string text;
  for (size_t i = 0; i < std::min(d.size(), kShown); ++i) text += (i == 0 ? "; differing: " : ", ") + d[i];
  if (d.size() > kShown) text += " and " + std::to_string(d.size() - kShown) + " more";
  return text;
}

std::uint64_t file_bytes(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) ? static_cast<std::uint64_t>(st.st_size) : 0;
}

void check_free_space(int dirfd, const std::string& shown, std::uint64_t bytes) {
  struct statvfs fs_info;
  if (::fstatvfs(dirfd, &fs_info) != 0) return;  // unknown: the write itself will tell
  const auto available = static_cast<std::uint64_t>(fs_info.f_bavail) * fs_info.f_frsize;
  const std::uint64_t needed = bytes + bytes / 10 + (1u << 20);  // margin: chunk and heap overhead
  if (available < needed)
    throw OutputError("cannot write the results store in " + fs::in_quotes(shown) + ": " +
                      std::to_string(available >> 20) + " MiB free, about " + std::to_string(needed >> 20) +
                      " MiB needed (nothing was changed)");
}

}  // namespace store_detail

class StoreWriter::Impl {
 public:
  std::string path, parts, parts_name;  //!< PATH, PATH.parts, its name in PATH's directory
  fs::Location loc;
  StoreHeader header;
  StoreIndex index;
  fs::Fd parent, lock;  //!< PATH's directory; PATH.parts, flock'ed while this writer lives
  std::vector<Segment> segments;
  int next = 1;  //!< number of the next segment file
  //! The finished store, filled as the segments are committed so that finish() only publishes it
  //! (no consolidation pass at the end). Not after a resume (the rows committed before the kill
  //! are in segments only), nor after a failed append (e.g. a full disk): finish() consolidates then.
  std::unique_ptr<PendingStoreFile> final_file;

  Impl(const std::string& p, const StoreHeader& h) : path(p), loc(fs::split_location(p)), header(h) {
    parts_name = loc.name + ".parts";
    parts = (loc.parent == "." && p.find('/') == std::string::npos ? "" : loc.parent + "/") + parts_name;
    parent = fs::open_directory(loc.parent);
    if (!parent.valid()) fs::fail("cannot use the directory " + fs::in_quotes(loc.parent) + " of the store", errno);
    index.header = h;
  }
  bool exists(const std::string& name) const {
    struct stat st;
    return ::fstatat(parent.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
  }
  void make_parts();
  void write_marker();
  //! InputError unless PATH.parts (locked) is this batch's.
  void check_parts();
  void resume_master();
  void commit(const StoreRows& rows);
  std::string master_image() const;
  void finish();
  void remove_parts();
  void start_final_file();
  void append_to_final_file(const StoreRows& rows);
};

void StoreWriter::Impl::write_marker() {
  const std::string shown = fs::in_quotes(parts + "/" + kPartsMarker);
  if (::unlinkat(lock.get(), kPartsMarker, 0) != 0 && errno != ENOENT) fs::fail("cannot replace " + shown, errno);
  fs::Fd marker(::openat(lock.get(), kPartsMarker, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666));
  if (!marker.valid()) fs::fail("cannot create " + shown, errno);
  fs::write_all(marker.get(), marker_text(header), shown);
  if (::fsync(marker.get()) != 0) fs::fail("cannot write " + shown, errno);
  if (const int err = marker.close_checked()) fs::fail("cannot write " + shown, err);
  fs::sync_directory(lock.get(), parts);
}

void StoreWriter::Impl::make_parts() {
  if (::mkdirat(parent.get(), parts_name.c_str(), 0777) != 0) fs::fail("cannot create " + fs::in_quotes(parts), errno);
  try {
    lock = lock_parts(parent.get(), parts_name, fs::in_quotes(parts));
    write_marker();
    fs::sync_directory(parent.get(), loc.parent);
  } catch (...) {
    if (lock.valid()) ::unlinkat(lock.get(), kPartsMarker, 0);
    ::unlinkat(parent.get(), parts_name.c_str(), AT_REMOVEDIR);
    throw;
  }
}

void StoreWriter::Impl::check_parts() {
  const std::string shown = fs::in_quotes(parts);
  if (const auto marked = read_marker(lock.get())) return check_same_run(*marked, header, shown);
  // A kill between making the folder and its marker being durable (create), or between removing
  // the marker and the folder (finish): the folder is empty or holds only a partial marker. Then
  // it is this batch's to take; the master, if any, says what was committed.
  const auto entries = fs::directory_entries(lock.get());
  const bool only_marker = entries.empty() || (entries.size() == 1 && entries[0] == kPartsMarker);
  if (!only_marker)
    throw InputError(shown + " has no valid lutdose marker file " + fs::in_quotes(kPartsMarker) +
                     ": it is not the segment folder of a lutdose store; lutdose leaves it alone");
  write_marker();
}

std::string StoreWriter::Impl::master_image() const {
  hdf5::QuietHdf5Errors quiet;
  StoreFileWriter w;
  w.write_header(header, segments_json(segments));
  w.write_inputs({});
  w.create_virtual_tables(segments, parts_name);
  return w.image();
}

void StoreWriter::Impl::commit(const StoreRows& rows) {
  if (index.consolidated) throw std::logic_error("StoreWriter::commit: the store " + fs::in_quotes(path) + " is finished");
  Segment s{segment_name(next), {}};
  for_each_table([&](const auto& t) { s.rows[t.name] = (rows.*(t.rows)).size(); });
  const std::string bytes = store_image(header, rows);
  // A failure from here on leaves at most an uncommitted segment file (removed by resume) or a
  // master that already lists it; the next commit takes the next number either way.
  ++next;
  write_file_atomically(parts + "/" + s.file, bytes, [](const std::string&) { return false; });
  segments.push_back(s);
  try {
    write_file_atomically(path, master_image(), is_master_of(header.fingerprint));
  } catch (...) {
    segments.pop_back();
    throw;
  }
  for (const auto& r : rows.patients) {
    index.patient_cycles.emplace_back(r.patient, r.cycle);
    index.status.push_back(r.status);
  }
  append_to_final_file(rows);
}

void StoreWriter::Impl::start_final_file() {
  try {
    final_file = std::make_unique<PendingStoreFile>(path, header, 0);
  } catch (const std::exception&) {  // the same rows are in the segments: finish() consolidates them
    final_file.reset();
  }
}

void StoreWriter::Impl::append_to_final_file(const StoreRows& rows) {
  if (!final_file) return;
  try {
    final_file->fill([&](StoreFileWriter& w) { w.append_all(rows); });
  } catch (const std::exception&) {  // e.g. a full disk: drop it (freeing its space); finish() consolidates
    final_file.reset();
  }
}

void StoreWriter::Impl::remove_parts() {
  remove_segments(lock.get(), {}, fs::in_quotes(parts));
  ::unlinkat(lock.get(), kPartsMarker, 0);
  // Only if empty: anything else put there by someone else stays.
  if (::unlinkat(parent.get(), parts_name.c_str(), AT_REMOVEDIR) == 0) fs::sync_directory(parent.get(), loc.parent);
  lock.reset();
}

void StoreWriter::Impl::finish() {
  if (index.consolidated) return;
  hdf5::QuietHdf5Errors quiet;
  const bool committed = !segments.empty();
  if (final_file) {
    final_file->publish(committed, is_master_of(header.fingerprint));
    final_file.reset();
  } else {
    std::uint64_t bytes = 0;
    for (const auto& s : segments) bytes += file_bytes(parts + "/" + s.file);
    publish_store_file(path, committed, is_master_of(header.fingerprint), header, bytes, [&](StoreFileWriter& w) {
      if (committed) for_each_store_chunk(path, [&](const StoreRows& r) { w.append_all(r); });
    });
  }
  index.consolidated = true;
  segments.clear();
  remove_parts();
}

void StoreWriter::Impl::resume_master() {
  hdf5::QuietHdf5Errors quiet;
  StoreFileReader r(path);
  check_same_run(r.header, header, "results store " + fs::in_quotes(path));
  index = read_store_index(path);
  if (r.consolidated) return;
  if (!lock.valid())
    throw InputError("results store " + fs::in_quotes(path) + " is an unfinished batch but its segment folder " +
                     fs::in_quotes(parts) + " is missing");
  segments = r.segments;
  for (const auto& s : segments) {
    int number = 0;
    is_segment_name(s.file, &number);
    next = std::max(next, number + 1);
  }
}

std::unique_ptr<StoreWriter> StoreWriter::create(const std::string& path, const StoreHeader& header) {
  auto impl = std::make_unique<Impl>(path, header);
  if (impl->exists(impl->loc.name))
    throw InputError("results store " + fs::in_quotes(path) +
                     " exists; resume it or choose another name (lutdose never overwrites a store)");
  if (impl->exists(impl->parts_name))
    throw InputError(fs::in_quotes(impl->parts) + " exists: a batch into " + fs::in_quotes(path) +
                     " was stopped before its first commit or before it finished; resume it, or choose another name");
  impl->make_parts();
  impl->start_final_file();
  return std::unique_ptr<StoreWriter>(new StoreWriter(std::move(impl)));
}

std::unique_ptr<StoreWriter> StoreWriter::resume(const std::string& path, const StoreHeader& header) {
  auto impl = std::make_unique<Impl>(path, header);
  const bool has_path = impl->exists(impl->loc.name), has_parts = impl->exists(impl->parts_name);
  if (!has_path && !has_parts)
    throw InputError("nothing to resume at " + fs::in_quotes(path) + ": neither it nor " + fs::in_quotes(impl->parts) +
                     " exists; start a new batch");
  if (has_parts) {
    impl->lock = lock_parts(impl->parent.get(), impl->parts_name, fs::in_quotes(impl->parts));
    impl->check_parts();
  }
  if (has_path) impl->resume_master();
  if (impl->index.consolidated) {
    // finish() was killed after publishing the store, before removing the segments: they are
    // all in the finished store.
    if (impl->lock.valid()) impl->remove_parts();
  } else {
    std::set<std::string> keep;
    for (const auto& s : impl->segments) keep.insert(s.file);
    remove_segments(impl->lock.get(), keep, fs::in_quotes(impl->parts));
  }
  return std::unique_ptr<StoreWriter>(new StoreWriter(std::move(impl)));
}

StoreWriter::StoreWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
StoreWriter::~StoreWriter() = default;
const StoreIndex& StoreWriter::index() const { return impl_->index; }
void StoreWriter::commit(const StoreRows& rows) { impl_->commit(rows); }
void StoreWriter::finish() { impl_->finish(); }

namespace store_detail {

PendingStoreFile::PendingStoreFile(const std::string& path, const StoreHeader& header, std::uint64_t expected_bytes)
    : path_(path), loc_(fs::split_location(path)), parent_(fs::open_directory(loc_.parent)) {
  if (!parent_.valid()) fs::fail("cannot write " + fs::in_quotes(path), errno);
  fs::remove_leftovers(parent_.get());
  check_free_space(parent_.get(), loc_.parent, expected_bytes);
  // The file stays open (and locked against other runs' cleaning) until it has its name.
  fd_ = fs::make_temporary_file(parent_.get(), loc_.parent, temp_);
  try {
    guarded([&] {
      writer_ = std::make_unique<StoreFileWriter>(loc_.parent + "/" + temp_);
      writer_->write_header(header);
      writer_->write_inputs({});
      writer_->create_tables();
    });
  } catch (...) {
    discard();
    throw;
  }
}

PendingStoreFile::~PendingStoreFile() { discard(); }

void PendingStoreFile::discard() noexcept {
  try {
    writer_.reset();
  } catch (...) {  // closing a file that is being thrown away: nothing to report
  }
  if (!temp_.empty()) ::unlinkat(parent_.get(), temp_.c_str(), 0);
  temp_.clear();
}

void PendingStoreFile::guarded(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError&) {
    throw;
  } catch (const OutputError&) {
    throw;
  } catch (const std::runtime_error& e) {  // HDF5 failing to write a file on disk: full disk, I/O error
    throw OutputError("cannot write the results store " + fs::in_quotes(path_) + ": " + e.what());
  }
}

void PendingStoreFile::fill(const std::function<void(StoreFileWriter&)>& f) {
  guarded([&] { f(*writer_); });
}

void PendingStoreFile::publish(bool replace, const std::function<bool(const std::string&)>& is_previous) {
  guarded([&] { writer_->close(); });
  writer_.reset();
  if (::fsync(fd_.get()) != 0) fs::fail("cannot write " + fs::in_quotes(path_), errno);
  fs::rename_over(parent_.get(), temp_, loc_, replace, is_previous);
  temp_.clear();
  if (const int err = fd_.close_checked()) fs::fail("cannot write " + fs::in_quotes(path_), err);
  fs::sync_directory(parent_.get(), loc_.parent);
}

void publish_store_file(const std::string& path, bool replace, const std::function<bool(const std::string&)>& is_previous,
                        const StoreHeader& header, std::uint64_t expected_bytes,
                        const std::function<void(StoreFileWriter&)>& fill) {
  PendingStoreFile file(path, header, expected_bytes);
  file.fill(fill);
  file.publish(replace, is_previous);
}

}  // namespace store_detail

}  // namespace lutdose
