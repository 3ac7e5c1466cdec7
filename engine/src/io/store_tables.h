// Internal: the columns of the results store's tables (docs/store.md) and the packing of rows into
// the in-memory records that HDF5 converts. One description per table drives the writer, the
// reader, the virtual master and the CSV export, so the layout is stated once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "lutdose/io/store.h"

namespace lutdose::store_detail {

//! Key: fixed-length NUL-padded UTF-8 of STORE_NAME_BYTES; Text: variable-length UTF-8.
enum class Kind { Key, Text, I8, I32, F64 };

struct ColumnSpec {
  const char* name;
  Kind kind;
};

//! A column: its name and kind and the row member it holds.
template <class Row>
struct Column {
  ColumnSpec spec;
  std::string Row::*str = nullptr;
  std::int8_t Row::*i8 = nullptr;
  std::int32_t Row::*i32 = nullptr;
  double Row::*f64 = nullptr;
};

template <class Row>
Column<Row> key(const char* name, std::string Row::*m) {
  Column<Row> c{{name, Kind::Key}};
  c.str = m;
  return c;
}
template <class Row>
Column<Row> text(const char* name, std::string Row::*m) {
  Column<Row> c{{name, Kind::Text}};
  c.str = m;
  return c;
}
template <class Row>
Column<Row> int8(const char* name, std::int8_t Row::*m) {
  Column<Row> c{{name, Kind::I8}};
  c.i8 = m;
  return c;
}
template <class Row>
Column<Row> int32(const char* name, std::int32_t Row::*m) {
  Column<Row> c{{name, Kind::I32}};
  c.i32 = m;
  return c;
}
template <class Row>
Column<Row> float64(const char* name, double Row::*m) {
  Column<Row> c{{name, Kind::F64}};
  c.f64 = m;
  return c;
}

//! A table: its dataset name (below the root), its rows in StoreRows, its columns in order.
template <class Row>
struct Table {
  const char* name;
  std::vector<Row> StoreRows::*rows;
  std::vector<Column<Row>> columns;
  std::vector<ColumnSpec> specs() const {
    std::vector<ColumnSpec> s;
    for (const auto& c : columns) s.push_back(c.spec);
    return s;
  }
};

const Table<PatientRow>& patients_table();
const Table<VoiRow>& vois_table();
const Table<CandidateRow>& candidates_table();
const Table<TargetRow>& targets_table();
const Table<BudgetRow>& budget_table();
const Table<CumulativeRow>& cumulative_table();
const Table<FailureRow>& failures_table();
const Table<NoteRow>& notes_table();
//! /points (format 6).
const Table<PointRow>& points_table();
//! True when a store of format `version` has the table `name` of for_each_table: every table
//! but /points (format 6) in every readable format.
bool table_in_format(const std::string& name, int version);
//! /population: not a table of StoreRows (rows = nullptr): written once with the header.
const Table<PopulationRow>& population_table();
//! /population as a store of `version` (3 to STORE_FORMAT_VERSION) has it: format 3 (lutdose 0.11
//! to 0.13) without e_step and the columns after it, format 4 (0.14 to 0.17) without the columns
//! after e_step. std::logic_error for another version.
const Table<PopulationRow>& population_table_of_format(int version);
//! /population_omega (format 5): written once with the header, as /population.
const Table<PopulationOmegaRow>& population_omega_table();
//! The /population_omega columns a store of format `version` (5 or later) has: without correlation_se
//! before format 7. std::logic_error for another version.
const Table<PopulationOmegaRow>& population_omega_table_of_format(int version);
//! The /patients columns read_store_index reads (patient, cycle, status).
const Table<PatientRow>& patient_keys_table();

//! The number of tables and their names in store order.
inline constexpr std::size_t kTables = 9;
const std::vector<std::string>& table_names();

//! Calls `f` with every table, in store order (patients, vois, candidates, targets, budget,
//! cumulative, failures, notes, points).
template <class F>
void for_each_table(F&& f) {
  f(patients_table());
  f(vois_table());
  f(candidates_table());
  f(targets_table());
  f(budget_table());
  f(cumulative_table());
  f(failures_table());
  f(notes_table());
  f(points_table());
}

//! Byte offsets of the members of one in-memory record (each member aligned) and its size.
struct Layout {
  std::vector<std::size_t> offsets;
  std::size_t size = 0;
};
Layout layout_of(const std::vector<ColumnSpec>& specs);

//! Copies `s` NUL-padded into the STORE_NAME_BYTES at `at`; std::logic_error when it is longer
//! (store_rows refuses such names before they reach a writer).
void put_key(const std::string& s, const char* column, unsigned char* at);
std::string get_key(const unsigned char* at);

template <class Row>
void pack_value(const Column<Row>& c, const Row& r, unsigned char* at) {
  switch (c.spec.kind) {
    case Kind::Key: put_key(r.*c.str, c.spec.name, at); break;
    case Kind::Text: {
      const char* p = (r.*c.str).c_str();  // the rows outlive the write
      std::memcpy(at, &p, sizeof p);
      break;
    }
    case Kind::I8: std::memcpy(at, &(r.*c.i8), sizeof(std::int8_t)); break;
    case Kind::I32: std::memcpy(at, &(r.*c.i32), sizeof(std::int32_t)); break;
    case Kind::F64: std::memcpy(at, &(r.*c.f64), sizeof(double)); break;
  }
}

template <class Row>
void unpack_value(const Column<Row>& c, const unsigned char* at, Row& r) {
  switch (c.spec.kind) {
    case Kind::Key: r.*c.str = get_key(at); break;
    case Kind::Text: {
      const char* p = nullptr;
      std::memcpy(&p, at, sizeof p);
      r.*c.str = p != nullptr ? p : "";
      break;
    }
    case Kind::I8: std::memcpy(&(r.*c.i8), at, sizeof(std::int8_t)); break;
    case Kind::I32: std::memcpy(&(r.*c.i32), at, sizeof(std::int32_t)); break;
    case Kind::F64: std::memcpy(&(r.*c.f64), at, sizeof(double)); break;
  }
}

//! The records of rows[begin, begin + count) in `buf` (text members point into the rows).
template <class Row>
void pack(const Table<Row>& t, const Layout& l, const std::vector<Row>& rows, std::size_t begin, std::size_t count,
          std::vector<unsigned char>& buf) {
  buf.assign(count * l.size, 0);
  for (std::size_t i = 0; i < count; ++i)
    for (std::size_t c = 0; c < t.columns.size(); ++c)
      pack_value(t.columns[c], rows[begin + i], buf.data() + i * l.size + l.offsets[c]);
}

//! Appends the `count` records in `buf` to `rows`.
template <class Row>
void unpack(const Table<Row>& t, const Layout& l, const unsigned char* buf, std::size_t count, std::vector<Row>& rows) {
  for (std::size_t i = 0; i < count; ++i) {
    Row r;
    for (std::size_t c = 0; c < t.columns.size(); ++c) unpack_value(t.columns[c], buf + i * l.size + l.offsets[c], r);
    rows.push_back(std::move(r));
  }
}

}  // namespace lutdose::store_detail
