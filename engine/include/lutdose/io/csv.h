// A small CSV reader (RFC 4180 quoting, '#' comment lines, blank lines skipped) that keeps line
// numbers for error messages. Used for the TAC table and the reference data tables.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <map>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace lutdose {

struct CsvRow {
  int line = 0;  //!< 1-based line number in the file
  std::vector<std::string> cells;  //!< trimmed cell texts, as many as the header has
};

struct CsvTable {
  std::string path;
  std::vector<std::string> header;
  std::vector<CsvRow> rows;
  //! Column index of a header name, or -1. Throws nothing.
  int column(const std::string& name) const;
  //! Indices of required columns, in the order asked; throws InputError naming the missing
  //! column and the expected ones. Use: `const auto [a, b] = t.require<2>({"a", "b"});`
  template <size_t N>
  std::array<size_t, N> require(const std::array<const char*, N>& names) const {
    std::array<size_t, N> out{};
    for (size_t i = 0; i < N; ++i) {
      const int c = column(names[i]);
      if (c < 0) missing_column(names[i], std::vector<const char*>(names.begin(), names.end()));
      out[i] = static_cast<size_t>(c);
    }
    return out;
  }
  //! Always throws InputError: PATH: header: the required column NAME is missing; expected ...
  [[noreturn]] void missing_column(const char* name, const std::vector<const char*>& expected) const;
};

//! Reads a CSV file with a header line (read once, at most MAX_INPUT_BYTES; a UTF-8 byte-order
//! mark is skipped). Throws InputError for a missing or unreadable file, an unterminated quote, a
//! cell or comment that is not UTF-8 or holds a NUL byte, or a row whose number of cells differs
//! from the header. `regular_only` refuses devices and pipes (files named inside a case file).
CsvTable read_csv(const std::string& path, bool regular_only = false);
//! The same, from bytes already read (`path` names them in messages); the same InputErrors but
//! those of reading.
CsvTable parse_csv(const std::string& bytes, const std::string& path);

//! The rows of bytes already read, one at a time (the same records and InputErrors as
//! parse_csv, without holding them): `on_header` gets the header, then `on_row` each data row (a
//! row object reused between calls).
void for_each_csv_row(const std::string& bytes, const std::string& path,
                      const std::function<void(const std::vector<std::string>&)>& on_header,
                      const std::function<void(const CsvRow&)>& on_row);

//! A data row as views of its cells' texts (the same texts as CsvRow's), valid until the next row
//! is read.
struct CsvRecord {
  int line = 0;                         //!< 1-based line number in the file
  std::vector<std::string_view> cells;  //!< as many as the header has
};

//! for_each_csv_row without a string for each cell: `on_row` gets views (the same records and
//! InputErrors). For a reader that converts each cell at once (the TAC table).
void for_each_csv_record(const std::string& bytes, const std::string& path,
                         const std::function<void(const std::vector<std::string>&)>& on_header,
                         const std::function<void(const CsvRecord&)>& on_row);

//! Reads a CSV file record by record in bounded memory, without the size limit of read_csv: the
//! cohort tables of `lutdose batch`. The same records and InputErrors as parse_csv (but the size).
class CsvReader {
 public:
  //! Opens `path` and reads its header. InputError when it cannot be read or has no header.
  explicit CsvReader(const std::string& path);
  ~CsvReader();
  CsvReader(const CsvReader&) = delete;
  CsvReader& operator=(const CsvReader&) = delete;
  const std::string& path() const;
  const std::vector<std::string>& header() const;
  int column(const std::string& name) const;  //!< index of a header name, or -1
  //! The next data row; false at the end of the file. `raw` (optional) receives the record's lines
  //! as in the file, each ended by '\n' (without the comment and blank lines before it).
  bool next(CsvRow& row, std::string* raw = nullptr);
  //! Where the next record starts: byte offset and line number (for seek).
  struct Position {
    std::uint64_t offset = 0;
    int line = 1;
  };
  Position position() const;
  void seek(const Position& p);
  //! Lowercase hex SHA-256 of the whole file, once next() has returned false on a reader that was
  //! never moved by seek; std::logic_error otherwise.
  std::string sha256();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

//! Strict number parsing: the whole cell must be a number (surrounding blanks and a leading '+'
//! allowed; "nan" and "inf" parse, callers check finiteness). Returns false, leaving `value`
//! unspecified, when it is not a number. Throws nothing.
bool parse_double(std::string_view text, double& value);

//! `s` without leading and trailing blanks (space, tab, CR, LF). Throws nothing.
std::string trim(const std::string& s);

//! A CSV cell for the text `s` (RFC 4180): in double quotes, inner quotes doubled, when it holds a
//! comma, a quote, CR or LF or starts or ends with a blank; else as is. Throws nothing.
std::string csv_field(const std::string& s);

//! A CSV cell for a number that reads back to the same double (shortest round-trip form,
//! std::to_chars): "" for NaN (unknown), "inf" and "-inf" for infinities. Throws nothing.
std::string csv_number(double x);

//! csv_field(s) appended to `out`, without a string of its own (engine/src/io/csv_write.cpp: for
//! output of many lines into one reused buffer). Throws nothing but std::bad_alloc.
void append_csv_field(std::string& out, const std::string& s);

//! csv_number(x) appended to `out`, without a string of its own. Throws nothing but std::bad_alloc.
void append_csv_number(std::string& out, double x);

}  // namespace lutdose
