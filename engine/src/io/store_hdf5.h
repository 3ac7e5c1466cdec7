// Internal: HDF5 files of the results store (docs/store.md). StoreFileWriter builds a store (in
// memory with the core driver, or streamed to a file on disk), StoreFileReader reads one in slices,
// master_image builds the virtual master of an unfinished batch. Every HDF5 status is checked;
// failures are std::runtime_error naming the call. Not thread-safe (serial HDF5).
#pragma once

#include <hdf5.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "io/hdf5_handle.h"
#include "io/output_fs.h"
#include "io/store_tables.h"

namespace lutdose::store_detail {

using hdf5::Handle;

//! Chunk of every table dataset (rows); deflate level 1 and shuffle.
inline constexpr hsize_t kChunkRows = 8192;
//! Rows read or written per HDF5 call (bounds the memory of streaming).
inline constexpr std::size_t kSliceRows = 65536;
//! The marker file of a segment folder PATH.parts (JSON: fingerprint, cohort, shard).
inline constexpr const char* kPartsMarker = "lutdose-store-parts";

//! A committed segment of a batch: its file name in PATH.parts and its rows per table.
struct Segment {
  std::string file;
  std::map<std::string, hsize_t> rows;
};
std::string segments_json(const std::vector<Segment>& segments);
//! InputError naming `where` when the text is not a segment list of a store of format `version`
//! (its tables: table_in_format).
std::vector<Segment> parse_segments(const std::string& json, const std::string& where,
                                    int version = STORE_FORMAT_VERSION);
//! "seg-000001.h5" for 1; is_segment_name recognises such names (and gives the number).
std::string segment_name(int number);
bool is_segment_name(const std::string& name, int* number = nullptr);

//! The status of an HDF5 call: std::runtime_error naming `call` and `where` when negative.
hid_t ok_id(hid_t id, const char* call, const std::string& where);
void ok(herr_t rc, const char* call, const std::string& where);
//! The compound type of a table: in memory at `mem`'s offsets, or (mem null) packed for the file.
Handle compound_type(const std::vector<ColumnSpec>& specs, const Layout* mem);
Handle own(hid_t id, Handle::Closer closer, int* failures = nullptr);
//! A variable-length (or fixed-length key) UTF-8 string type.
Handle string_type(bool variable);
//! A 1-D dataspace of n rows (at most max).
Handle simple_space(hsize_t n, hsize_t max);
//! `space` with the rows [offset, offset + count) selected.
void select_rows(hid_t space, hsize_t offset, hsize_t count, const std::string& where);

class StoreFileWriter {
 public:
  //! `disk_path` empty: a file in memory (core driver), whose bytes image() returns; else a new
  //! file on disk (truncated; HDF5's own file locking off: the caller holds a lock on it).
  explicit StoreFileWriter(const std::string& disk_path = "");
  //! Root attributes: format_version, the header, and "segments" when `segments` is not empty;
  //! the /population and /population_omega tables of the header's rows.
  void write_header(const StoreHeader& h, const std::string& segments = "");
  //! /inputs/<name> string datasets (verbatim text).
  void write_inputs(const std::vector<std::pair<std::string, std::string>>& inputs);
  //! Every table, empty, chunked and extendible. With `rows` (the rows an in-memory image will
  //! hold), a table's chunk is no longer than its rows: HDF5 compresses whole chunks, and a
  //! segment or a one-patient results.h5 would otherwise compress 8192 rows of padding per table.
  void create_tables(const StoreRows* rows = nullptr);
  //! Every table as a virtual dataset over the tables of `segments` in PATH.parts (`parts_name`).
  void create_virtual_tables(const std::vector<Segment>& segments, const std::string& parts_name,
                             const StoreRows* rows = nullptr);
  template <class Row>
  void append(const Table<Row>& t, const std::vector<Row>& rows) {
    const auto specs = t.specs();
    const Layout l = layout_of(specs);
    std::vector<unsigned char> buf;
    for (std::size_t begin = 0; begin < rows.size(); begin += kSliceRows) {
      const std::size_t n = std::min(kSliceRows, rows.size() - begin);
      pack(t, l, rows, begin, n, buf);
      append_records(t.name, specs, l, buf.data(), n);
    }
  }
  void append_all(const StoreRows& rows);
  //! The file's bytes (in-memory files); closes the file.
  std::string image();
  //! Closes the file, checking every close.
  void close();

 private:
  void append_records(const char* table, const std::vector<ColumnSpec>& specs, const Layout& l, const void* buf,
                      std::size_t n);
  Handle dataset_creation();
  //! An ordinary table of header rows (/population, /population_omega).
  template <class Row>
  void write_header_table(const Table<Row>& t, const std::vector<Row>& rows);
  void string_attribute(const char* name, const std::string& value);
  int close_failures_ = 0;
  Handle fapl_, file_, dxpl_, lcpl_, dapl_;
  std::map<std::string, Handle> tables_;
  std::map<std::string, hsize_t> sizes_;
};

class StoreFileReader {
 public:
  //! Opens the store at `path`: InputError naming it when missing, not HDF5, not a lutdose store,
  //! of a format_version `versions` do not accept, or a master whose segment files are missing.
  explicit StoreFileReader(const std::string& path, StoreVersions versions = StoreVersions::current);
  //! A store held in memory (e.g. the previous master read back); `shown` names it in errors.
  StoreFileReader(const std::string& bytes, const std::string& shown);
  StoreHeader header;  //!< with its /population and /population_omega rows
  int format_version = 0;  //!< the store's
  bool consolidated = false;
  std::vector<Segment> segments;  //!< of a master
  //! Rows of the table `table`; 0 for a table the store's format has not (table_in_format).
  hsize_t rows(const std::string& table) const;
  template <class Row>
  void read(const Table<Row>& t, hsize_t offset, std::size_t count, std::vector<Row>& out) const {
    const auto specs = t.specs();
    const Layout l = layout_of(specs);
    std::vector<unsigned char> buf(count * l.size, 0);
    Handle type = read_records(t.name, specs, l, offset, count, buf.data());
    try {
      unpack(t, l, buf.data(), count, out);
    } catch (...) {
      reclaim(type.get(), count, buf.data());
      throw;
    }
    reclaim(type.get(), count, buf.data());
  }

 private:
  void open(hid_t fapl);
  void check_segments();
  //! InputError naming the store when `versions_` do not accept `version`.
  void check_version(long long version) const;
  //! The rows of a header table (/population, /population_omega); not_store(why) when it is missing.
  template <class Row, class NotStore>
  void read_header_table(const Table<Row>& t, std::vector<Row>& out, const NotStore& not_store) const;
  Handle read_records(const char* table, const std::vector<ColumnSpec>& specs, const Layout& l, hsize_t offset,
                      std::size_t count, void* buf) const;
  void reclaim(hid_t type, std::size_t count, void* buf) const;
  std::string path_, shown_;
  StoreVersions versions_ = StoreVersions::current;
  std::string image_;  //!< the bytes of an in-memory store (kept alive while open)
  Handle file_;
};

//! The table `t` of `r` in slices of at most `slice_rows` rows, in stored order: each slice read
//! (by hyperslab) into `rows` (replacing what it held), then `fn()` called.
template <class Row, class Fn>
void for_each_slice(const StoreFileReader& r, const Table<Row>& t, std::size_t slice_rows, std::vector<Row>& rows,
                    Fn&& fn) {
  const hsize_t n = r.rows(t.name);
  for (hsize_t at = 0; at < n; at += slice_rows) {
    rows.clear();
    r.read(t, at, static_cast<std::size_t>(std::min<hsize_t>(slice_rows, n - at)), rows);
    fn();
  }
}

//! A store file being written beside `path`: a locked temporary file (".lutdose-tmp-...") holding
//! the header and the (empty) tables when constructed, filled through fill(), published by
//! publish(); the destructor removes it unless published. `expected_bytes` (about the size of what
//! will be written; 0 when unknown) is checked against the free space first: HDF5 is not left to
//! meet a full disk halfway. An HDF5 failure while writing is an OutputError naming `path`.
class PendingStoreFile {
 public:
  PendingStoreFile(const std::string& path, const StoreHeader& header, std::uint64_t expected_bytes);
  ~PendingStoreFile();
  PendingStoreFile(const PendingStoreFile&) = delete;
  PendingStoreFile& operator=(const PendingStoreFile&) = delete;
  //! Calls `f` with the file's writer (appends), mapping HDF5 failures to OutputError.
  void fill(const std::function<void(StoreFileWriter&)>& f);
  //! Closes, fsyncs and renames the file to `path` (over an existing file only when `replace` and
  //! `is_previous(content)` say it is the earlier output), then fsyncs the directory. InputError /
  //! OutputError as write_file_atomically.
  void publish(bool replace, const std::function<bool(const std::string&)>& is_previous);

 private:
  void discard() noexcept;
  void guarded(const std::function<void()>& f);
  std::string path_, temp_;
  output_fs::Location loc_;
  output_fs::Fd parent_, fd_;
  std::unique_ptr<StoreFileWriter> writer_;
};

//! Publishes a store file at `path`, streamed with bounded memory, through a PendingStoreFile:
//! filled by `fill`, then published (see PendingStoreFile::publish).
void publish_store_file(const std::string& path, bool replace, const std::function<bool(const std::string&)>& is_previous,
                        const StoreHeader& header, std::uint64_t expected_bytes,
                        const std::function<void(StoreFileWriter&)>& fill);
//! Size of the regular file at `path`, 0 when there is none.
//! "; differing: options.fit.x (A vs B), ..." between two provenance JSON texts (StoreHeader::
//! provenance_json): what makes their fingerprints differ (their options and nuclide data; paths do
//! not count: options.input, data_dir, fit.population.source), the first five and how many more;
//! "" when either is unknown. For a refused resume or merge.
std::string option_differences(const std::string& stored_json, const std::string& this_json);

std::uint64_t file_bytes(const std::string& path);
//! OutputError when the file system of `dirfd` has less than about `bytes` free.
void check_free_space(int dirfd, const std::string& shown, std::uint64_t bytes);

}  // namespace lutdose::store_detail
