// The results store (lutdose/io/store.h, docs/store.md): in-memory store files, reading in slices,
// CSV export, merge of shards. The batch writer is in store_writer.cpp, the HDF5 files in
// store_hdf5.cpp and store_read.cpp.
#include "lutdose/io/store.h"

#include <sys/stat.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <stdexcept>
#include <nlohmann/json.hpp>

#include "io/store_hdf5.h"
#include "lutdose/error.h"
#include "lutdose/io/csv.h"
#include "lutdose/io/output_dir.h"
#include "lutdose/version.h"

namespace lutdose {

using namespace store_detail;

namespace {

//! Every table of `r`, table by table in store order, each in slices of at most kSliceRows rows:
//! `fn` receives StoreRows holding one slice of one table.
void for_each_chunk(const StoreFileReader& r, const std::function<void(const StoreRows&)>& fn) {
  for_each_table([&](const auto& t) {
    StoreRows chunk;
    for_each_slice(r, t, kSliceRows, chunk.*(t.rows), [&] { fn(chunk); });
  });
}

StoreIndex index_of(const StoreFileReader& r) {
  StoreIndex index;
  index.header = r.header;
  index.consolidated = r.consolidated;
  const hsize_t n = r.rows("patients");
  for (hsize_t at = 0; at < n; at += kSliceRows) {
    std::vector<PatientRow> rows;
    r.read(patient_keys_table(), at, static_cast<std::size_t>(std::min<hsize_t>(kSliceRows, n - at)), rows);
    for (auto& p : rows) {
      index.patient_cycles.emplace_back(std::move(p.patient), p.cycle);
      index.status.push_back(std::move(p.status));
    }
  }
  return index;
}

template <class Row>
std::string csv_header(const Table<Row>& t) {
  std::string line;
  for (const auto& c : t.columns) line += (line.empty() ? "" : ",") + std::string(c.spec.name);
  return line + "\n";
}

void append_int(std::string& out, std::int32_t x) {
  char text[16];  // an int32 has at most 11 characters
  const char* end = std::to_chars(text, text + sizeof text, x).ptr;
  out.append(text, static_cast<std::size_t>(end - text));
}

template <class Row>
void append_csv_line(const Table<Row>& t, const Row& r, std::string& out) {
  bool first = true;
  for (const auto& c : t.columns) {
    if (!first) out += ',';
    first = false;
    switch (c.spec.kind) {
      case Kind::Key:
      case Kind::Text: append_csv_field(out, r.*c.str); break;
      case Kind::I8: append_int(out, r.*c.i8); break;
      case Kind::I32: append_int(out, r.*c.i32); break;
      case Kind::F64: append_csv_number(out, r.*c.f64); break;
    }
  }
  out += '\n';
}

//! The header of a merge: the first shard's provenance, kind "batch", shard "1/1", the patients
//! summed, the cohort the shards share (else a JSON list of their cohorts).
StoreHeader merged_header(const std::vector<StoreIndex>& shards) {
  StoreHeader h = shards.front().header;
  h.kind = "batch";
  h.shard = "1/1";
  h.cohort_patients = 0;
  for (const auto& s : shards) h.cohort_patients += s.header.cohort_patients;
  return h;
}

//! Shard i (0-based) of `paths` must be shard i+1 of N = paths.size(), of the first shard's cohort:
//! then the merge is the one-process batch of that cohort. InputError naming the store otherwise.
void check_shard_set(const std::vector<std::string>& paths, const std::vector<StoreIndex>& indexes) {
  const std::string n = std::to_string(paths.size());
  const std::string& last_of = indexes.front().header.shard;
  const std::string of = last_of.substr(last_of.find('/') + 1);
  for (std::size_t i = 0; i < paths.size(); ++i) {
    const StoreHeader& h = indexes[i].header;
    const std::string expected = std::to_string(i + 1) + "/" + n;
    if (of != n && i == 0 && h.shard == "1/" + of)
      throw InputError("lutdose merge: " + output_fs::in_quotes(paths[0]) + " is shard 1/" + of + " but " + n +
                       " shard(s) were given: shard " + std::to_string(paths.size() + 1) + "/" + of +
                       " is missing; give every shard of the cohort, in order");
    if (h.shard != expected)
      throw InputError("lutdose merge: " + output_fs::in_quotes(paths[i]) + " is shard " + h.shard + "; expected shard " +
                       expected + " at position " + std::to_string(i + 1) +
                       " (every shard of the cohort once, in order, so that the merge equals a one-process batch)");
    if (h.cohort != indexes.front().header.cohort)
      throw InputError("lutdose merge: " + output_fs::in_quotes(paths[i]) + " is a shard of another cohort than " +
                       output_fs::in_quotes(paths[0]) + " (" + h.cohort + " vs " + indexes.front().header.cohort + ")");
  }
}

//! The shards' indexes; InputError for an unfinished shard, another fingerprint, or a
//! patient-cycle held twice.
std::vector<StoreIndex> check_shards(const std::vector<std::string>& shards) {
  if (shards.empty()) throw InputError("lutdose merge: no shard given; expected one or more finished stores");
  std::vector<StoreIndex> indexes;
  std::map<std::pair<std::string, std::int32_t>, std::size_t> seen;
  for (std::size_t i = 0; i < shards.size(); ++i) {
    indexes.push_back(read_store_index(shards[i]));
    const auto& h = indexes.back().header;
    if (!indexes.back().consolidated)
      throw InputError("lutdose merge: " + output_fs::in_quotes(shards[i]) +
                       " is an unfinished batch; resume and finish it before merging");
    if (h.fingerprint != indexes.front().header.fingerprint)
      throw InputError("lutdose merge: " + output_fs::in_quotes(shards[i]) + " and " + output_fs::in_quotes(shards[0]) +
                       " differ in their fingerprint (options and reference data: " + h.fingerprint + " vs " +
                       indexes.front().header.fingerprint + ")" +
                       option_differences(h.provenance_json, indexes.front().header.provenance_json) +
                       "; only stores computed alike can be merged");
    for (const auto& key : indexes.back().patient_cycles) {
      const auto [it, fresh] = seen.emplace(key, i);
      if (!fresh)
        throw InputError("lutdose merge: patient '" + key.first + "' cycle " + std::to_string(key.second) +
                         " is in " + output_fs::in_quotes(shards[it->second]) +
                         (it->second == i ? " twice" : " and in " + output_fs::in_quotes(shards[i])) +
                         "; each patient-cycle must be in one shard only");
    }
  }
  return indexes;
}

}  // namespace

std::string store_image(const StoreHeader& header, const StoreRows& rows,
                        const std::vector<std::pair<std::string, std::string>>& inputs) {
  hdf5::QuietHdf5Errors quiet;
  StoreFileWriter w;
  w.write_header(header);
  w.write_inputs(inputs);
  w.create_tables(&rows);
  w.append_all(rows);
  return w.image();
}

StoreIndex read_store_index(const std::string& path, StoreVersions versions) {
  hdf5::QuietHdf5Errors quiet;
  return index_of(StoreFileReader(path, versions));
}

void for_each_store_chunk(const std::string& path, const std::function<void(const StoreRows&)>& fn,
                          StoreVersions versions) {
  hdf5::QuietHdf5Errors quiet;
  for_each_chunk(StoreFileReader(path, versions), fn);
}

void append_store_table_csv(const StoreRows& rows, const std::string& table, bool header, std::string& out) {
  bool found = false;
  for_each_table([&](const auto& t) {
    if (t.name != table) return;
    found = true;
    if (header) out += csv_header(t);
    for (const auto& row : rows.*(t.rows)) append_csv_line(t, row, out);
  });
  if (!found) throw std::invalid_argument("store_table_csv: no table '" + table + "' in a results store");
}

std::string store_table_csv(const StoreRows& rows, const std::string& table, bool header) {
  std::string out;
  append_store_table_csv(rows, table, header, out);
  return out;
}

// A slice of the export reads whole chunks of the datasets (a chunk is decompressed whole).
static_assert(STORE_EXPORT_SLICE_ROWS % kChunkRows == 0, "export slices of whole dataset chunks");

void export_store_csv(const std::string& path, const std::string& dir, std::size_t slice_rows) {
  if (slice_rows == 0) throw std::invalid_argument("export_store_csv: slice_rows is 0");
  check_output_dir(dir, ResultKind::store_export);
  hdf5::QuietHdf5Errors quiet;
  StoreFileReader r(path, StoreVersions::readable);  // format 2: population.csv a header only
  ResultSetWriter out(dir, ResultKind::store_export, LUTDOSE_VERSION);
  std::string text;  // one slice's CSV lines, written before the next slice is read
  const auto csv_file = [&](const auto& t, const auto& write_rows) {
    out.begin_file(std::string(t.name) + ".csv");
    text = csv_header(t);
    write_rows();
    out.write(text);
  };
  for_each_table([&](const auto& t) {
    csv_file(t, [&] {
      StoreRows slice;
      const auto& rows = slice.*(t.rows);
      for_each_slice(r, t, slice_rows, slice.*(t.rows), [&] {
        for (const auto& row : rows) append_csv_line(t, row, text);
        out.write(text);
        text.clear();
      });
    });
  });
  const auto header_csv = [&](const auto& t, const auto& rows) {  // held in the header (a few rows per VOI kind)
    csv_file(t, [&] {
      for (const auto& row : rows) append_csv_line(t, row, text);
    });
  };
  header_csv(population_table(), r.header.population);
  header_csv(population_omega_table(), r.header.population_omega);  // format < 5: a header line only
  out.publish();
}

void merge_stores(const std::string& out, const std::vector<std::string>& shards) {
  struct stat st;
  if (::lstat(out.c_str(), &st) == 0)
    throw InputError("lutdose merge: the output " + output_fs::in_quotes(out) +
                     " exists; choose a new name (lutdose never overwrites a store)");
  const auto indexes = check_shards(shards);
  check_shard_set(shards, indexes);
  std::uint64_t bytes = 0;
  for (const auto& shard : shards) bytes += file_bytes(shard);
  hdf5::QuietHdf5Errors quiet;
  const auto never = [](const std::string&) { return false; };
  publish_store_file(out, false, never, merged_header(indexes), bytes, [&](StoreFileWriter& w) {
    for (const auto& shard : shards) for_each_chunk(StoreFileReader(shard), [&](const StoreRows& r) { w.append_all(r); });
  });
}

}  // namespace lutdose
