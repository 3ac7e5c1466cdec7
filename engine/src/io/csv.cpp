#include "lutdose/io/csv.h"

#include <functional>

#include <openssl/evp.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <algorithm>
#include <string_view>

#include "lutdose/io/input_file.h"

#include "lutdose/error.h"

namespace lutdose {

namespace {

// (lambdas rather than functions: strip is then compiled for each, with the test inlined)
constexpr auto is_blank = [](char c) { return c == ' ' || c == '\t'; };
constexpr auto is_blank_or_line_end = [](char c) { return is_blank(c) || c == '\r' || c == '\n'; };

// `v` without the characters `drop` accepts at both ends (a loop: the find_*_not_of of
// string_view searches the set once per character, several times slower on short cells).
template <class Drop>
inline std::string_view strip(std::string_view v, Drop drop) {
  while (!v.empty() && drop(v.front())) v.remove_prefix(1);
  while (!v.empty() && drop(v.back())) v.remove_suffix(1);
  return v;
}

}  // namespace

std::string trim(const std::string& s) { return std::string(strip(s, is_blank_or_line_end)); }

std::string csv_field(const std::string& s) {
  std::string cell;
  append_csv_field(cell, s);  // csv_write.cpp
  return cell;
}

std::string csv_number(double x) {
  std::string cell;
  append_csv_number(cell, x);
  return cell;
}

bool parse_double(std::string_view text, double& value) {
  const std::string_view t = strip(text, is_blank_or_line_end);  // trim's text, without a copy
  if (t.empty()) return false;
  const char* first = t.data();
  const char* const end = t.data() + t.size();
  if (*first == '+') ++first;
  const auto [ptr, ec] = std::from_chars(first, end, value);
  return ec == std::errc() && ptr == end;
}

void CsvTable::missing_column(const char* name, const std::vector<const char*>& expected) const {
  std::string list;
  for (const char* e : expected) list += (list.empty() ? "" : ", ") + std::string(e);
  throw InputError(path + ": header: the required column '" + name + "' is missing; expected columns " + list);
}

int CsvTable::column(const std::string& name) const {
  for (size_t i = 0; i < header.size(); ++i)
    if (header[i] == name) return static_cast<int>(i);
  return -1;
}

namespace {

// Lines of an input, with their numbers; a record may continue over newlines inside quotes.
// `capture` (optional) receives every line read, each ended by '\n' (a record's bytes).
class Lines {
 public:
  virtual ~Lines() = default;
  bool next(std::string_view& line) {
    if (!read(line)) return false;
    ++number_;
    if (capture) capture->append(line.data(), line.size()).push_back('\n');
    return true;
  }
  int number() const { return number_; }
  std::string* capture = nullptr;

 protected:
  virtual bool read(std::string_view& line) = 0;
  int number_ = 0;
};

// The lines of a buffer.
class BufferLines : public Lines {
 public:
  explicit BufferLines(std::string_view text) : text_(text) {}

 private:
  bool read(std::string_view& line) override {
    if (pos_ >= text_.size()) return false;
    const size_t end = std::min(text_.find('\n', pos_), text_.size());
    line = text_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return true;
  }
  std::string_view text_;
  size_t pos_ = 0;
};

// A cell's text problem (null when fine): invalid UTF-8 or a NUL byte.
const char* text_problem(std::string_view text) {
  if (text.find('\0') != std::string_view::npos) return "holds a NUL byte";
  if (!models::valid_utf8(text)) return "is not valid UTF-8";
  return nullptr;
}

// True when `text` is ASCII without NUL bytes: then every cell cut from it passes text_problem.
// For a byte b, (b - 1) | b has its top bit (0x80) set exactly when b is 0 or at least 0x80. Eight
// bytes are tested at once: in w - 0x0101..01 no byte borrows from the next unless one is 0 (which
// is then found), so the top bits of (w - 0x0101..01) | w are those of its bytes.
bool plain_ascii(std::string_view text) {
  constexpr std::uint64_t ones = 0x0101010101010101u, tops = 0x8080808080808080u;
  std::uint64_t odd = 0;
  size_t i = 0;
  for (; i + 8 <= text.size(); i += 8) {
    std::uint64_t w;
    std::memcpy(&w, text.data() + i, 8);
    odd |= (w - ones) | w;
  }
  for (; i < text.size(); ++i) {
    const std::uint64_t b = static_cast<unsigned char>(text[i]);
    odd |= (b - 1) | b;
  }
  return (odd & tops) == 0;
}

// `v` without blanks (space, tab) at both ends: a cell's text. A CR or LF inside a cell is data
// (kept, and refused where names or numbers are expected), never trimmed away.
std::string_view trimmed(std::string_view v) { return strip(v, is_blank); }

// `line` without its final CR (CRLF line ends).
std::string_view without_final_cr(std::string_view line) {
  return !line.empty() && line.back() == '\r' ? line.substr(0, line.size() - 1) : line;
}

// The cells of a line without quotes, as views of the line: split at the commas, each trimmed
// (the same cells as split_record, which a quote needs). False when the line holds a quote.
bool split_unquoted(std::string_view line, std::vector<std::string_view>& cells) {
  if (line.find('"') != std::string_view::npos) return false;
  line = without_final_cr(line);
  cells.clear();
  for (size_t start = 0;;) {
    const size_t comma = line.find(',', start);
    cells.push_back(trimmed(line.substr(start, comma == std::string_view::npos ? comma : comma - start)));
    if (comma == std::string_view::npos) return true;
    start = comma + 1;
  }
}

// The InputError of a quote that does not enclose a whole field (RFC 4180).
[[noreturn]] void stray_quote(const std::string& path, int line) {
  throw InputError(path + ":" + std::to_string(line) +
                   ": a '\"' inside a field; expected quotes only around a whole field (RFC 4180), a quote "
                   "inside a quoted field doubled (\"\")");
}

// Splits one record with quotes starting at `line`; continues over newlines inside quotes. A field
// is quoted when its first non-blank character is '"'; after its closing quote only blanks may
// follow.
void split_record(Lines& lines, std::string_view first, const std::string& path, std::vector<std::string>& cells) {
  cells.clear();
  std::string cell;
  bool quoted = false, closed = false;  // inside a quoted part; a quoted part has ended
  const int start_line = lines.number();
  std::string_view line = first;
  for (size_t i = 0;; ++i) {
    if (i == line.size()) {
      if (!quoted) break;
      if (!lines.next(line))
        throw InputError(path + ":" + std::to_string(start_line) +
                         ": a quoted field is not closed; expected a closing '\"'");
      cell += '\n';
      i = static_cast<size_t>(-1);
      continue;
    }
    const char c = line[i];
    if (quoted) {
      if (c != '"') {
        cell += c;
      } else if (i + 1 < line.size() && line[i + 1] == '"') {
        cell += '"';
        ++i;
      } else {
        quoted = false;
        closed = true;
      }
    } else if (c == '\r' && i + 1 == line.size()) {
      // the CR of a CRLF line end (outside quotes; inside them it is data)
    } else if (c == ',') {
      cells.emplace_back(trimmed(cell));
      cell.clear();
      closed = false;
    } else if (c == '"' || (closed && c != ' ' && c != '\t')) {
      if (c != '"' || closed || !trimmed(cell).empty()) stray_quote(path, lines.number());
      quoted = true;
    } else {
      cell += c;
    }
  }
  cells.emplace_back(trimmed(cell));
}

// Every cell valid UTF-8 without NUL bytes; the message names the line and the column (by its
// position while the header itself is read: `header` empty).
void check_cells(const std::vector<std::string_view>& cells, const std::vector<std::string>& header, int line,
                 const std::string& path) {
  for (size_t i = 0; i < cells.size(); ++i) {
    const char* const problem = text_problem(cells[i]);
    if (!problem) continue;
    const std::string column = i < header.size() && !text_problem(header[i])
                                   ? "column " + models::quote_value(header[i])
                                   : "header column " + std::to_string(i + 1);
    throw InputError(path + ":" + std::to_string(line) + ": " + column + " " + problem +
                     "; expected text in UTF-8 without NUL bytes");
  }
}

// True for a line that is skipped: a comment line (its text checked) or a blank line.
bool skipped_line(std::string_view line, int number, const std::string& path) {
  // most lines start with their first cell: neither a blank, nor '#', nor a line's final CR
  if (!line.empty() && !is_blank(line[0]) && line[0] != '#' && line[0] != '\r') return false;
  const std::string_view bare = without_final_cr(line);  // a CRLF line's CR is its end, not text
  const std::string_view t = trimmed(bare.substr(0, std::min<size_t>(bare.size(), 2 * MAX_QUOTED_CHARS)));
  if (!t.empty() && t[0] == '#') {
    const char* const problem = text_problem(line);
    if (problem)
      throw InputError(path + ":" + std::to_string(number) + ": the comment line " + problem +
                       "; expected text in UTF-8 without NUL bytes");
    return true;
  }
  return t.empty() && trimmed(bare).empty();
}

// A record as read: its cells are views of the line, or of `quoted` (the cells of a record with
// quotes, unquoted).
struct RecordBuffer {
  CsvRecord record;
  std::vector<std::string> quoted;
};

// The next record of `lines` (comment and blank lines skipped), its cells checked; `header` is
// null while reading the header, else the data row must have as many cells. False at the end.
bool next_record(Lines& lines, const std::string& path, const std::vector<std::string>* header, RecordBuffer& buffer) {
  static const std::vector<std::string> no_header;
  CsvRecord& row = buffer.record;
  std::string_view line;
  while (lines.next(line)) {
    if (skipped_line(line, lines.number(), path)) {
      if (lines.capture) lines.capture->clear();
      continue;
    }
    row.line = lines.number();
    // A line without quotes is a whole record; when it is plain ASCII, its cells need no check.
    const bool one_line = split_unquoted(line, row.cells);
    if (!one_line) {
      split_record(lines, line, path, buffer.quoted);
      row.cells.assign(buffer.quoted.begin(), buffer.quoted.end());
    }
    if (!one_line || !plain_ascii(line)) check_cells(row.cells, header ? *header : no_header, row.line, path);
    if (header && row.cells.size() != header->size())
      throw InputError(path + ":" + std::to_string(row.line) + ": the row has " + std::to_string(row.cells.size()) +
                       " cells; expected " + std::to_string(header->size()) + " as in the header");
    return true;
  }
  return false;
}

// The cells of a record as strings; the strings of `row`'s previous cells are reused.
void copy_record(const CsvRecord& record, CsvRow& row) {
  row.line = record.line;
  row.cells.resize(record.cells.size());
  for (size_t i = 0; i < record.cells.size(); ++i) row.cells[i].assign(record.cells[i].data(), record.cells[i].size());
}

}  // namespace

CsvTable read_csv(const std::string& path, bool regular_only) {
  return parse_csv(read_input_file(path, "CSV file", regular_only), path);
}

namespace {

// A CR inside a header cell: no column name holds one, but a file whose lines end with CR alone
// (classic Mac OS) reads as one header line with such cells. InputError naming that cause.
void check_header_line_ends(const std::vector<std::string>& header, const std::string& path, int line) {
  for (const auto& cell : header)
    if (cell.find('\r') != std::string::npos)
      throw InputError(path + ":" + std::to_string(line) +
                       ": the header holds a carriage return (CR) inside a cell: the file's lines seem to end with "
                       "CR only (classic Mac OS); expected LF or CRLF line ends");
}

}  // namespace

void for_each_csv_record(const std::string& bytes, const std::string& path,
                         const std::function<void(const std::vector<std::string>&)>& on_header,
                         const std::function<void(const CsvRecord&)>& on_row) {
  BufferLines lines(models::without_bom(bytes));
  RecordBuffer buffer;
  if (!next_record(lines, path, nullptr, buffer))
    throw InputError(path + ": the file is empty; expected a header line");
  const std::vector<std::string> header(buffer.record.cells.begin(), buffer.record.cells.end());
  check_header_line_ends(header, path, buffer.record.line);
  on_header(header);
  while (next_record(lines, path, &header, buffer)) on_row(buffer.record);
}

void for_each_csv_row(const std::string& bytes, const std::string& path,
                      const std::function<void(const std::vector<std::string>&)>& on_header,
                      const std::function<void(const CsvRow&)>& on_row) {
  CsvRow row;
  for_each_csv_record(bytes, path, on_header, [&](const CsvRecord& record) {
    copy_record(record, row);
    on_row(row);
  });
}

CsvTable parse_csv(const std::string& bytes, const std::string& path) {
  CsvTable table;
  table.path = path;
  for_each_csv_row(
      bytes, path, [&](const std::vector<std::string>& header) { table.header = header; },
      [&](const CsvRow& row) { table.rows.push_back(row); });
  return table;
}

// ---- CsvReader: the lines of a file read in chunks, hashed as they are read ----

class CsvReader::Impl : public Lines {
 public:
  explicit Impl(const std::string& path) : path_(path), in_(path, std::ios::binary), hash_(EVP_MD_CTX_new(), &EVP_MD_CTX_free) {
    if (!in_) throw InputError(path + ": cannot read the CSV file: " + std::strerror(errno));
    if (!hash_ || EVP_DigestInit_ex(hash_.get(), EVP_sha256(), nullptr) != 1)
      throw std::runtime_error("SHA-256 (OpenSSL EVP_DigestInit_ex) failed");
  }
  CsvReader::Position position() const { return {base_ + pos_, number_ + 1}; }
  void seek(const CsvReader::Position& p) {
    in_.clear();
    in_.seekg(static_cast<std::streamoff>(p.offset));
    if (!in_) throw InputError(path_ + ": cannot read the CSV file at byte " + std::to_string(p.offset));
    buf_.clear();
    base_ = p.offset;
    pos_ = 0;
    eof_ = false;
    number_ = p.line - 1;
    hashing_ = false;  // the hash covers a file read from its start only
  }
  std::string sha256() {
    if (!hashing_ || !eof_ || pos_ < buf_.size()) throw std::logic_error("CsvReader::sha256: the file was not read whole");
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (EVP_DigestFinal_ex(hash_.get(), digest, &length) != 1) throw std::runtime_error("SHA-256 failed");
    hashing_ = false;
    static const char hex[] = "0123456789abcdef";
    std::string s;
    for (unsigned int i = 0; i < length; ++i) s += {hex[digest[i] >> 4], hex[digest[i] & 0xF]};
    return s;
  }
  const std::string path_;
  std::vector<std::string> header;
  RecordBuffer buffer;  // the record being read

 private:
  bool read(std::string_view& line) override {
    for (;;) {
      const size_t nl = buf_.find('\n', pos_);
      if (nl != std::string::npos || (eof_ && pos_ < buf_.size())) {
        const size_t end = nl == std::string::npos ? buf_.size() : nl;
        line = std::string_view(buf_).substr(pos_, end - pos_);
        if (base_ + pos_ == 0) line = models::without_bom(line);
        pos_ = std::min(end + 1, buf_.size());
        return true;
      }
      if (eof_) return false;
      fill();
    }
  }
  // Drops the lines consumed and appends the next chunk of the file (hashed).
  void fill() {
    buf_.erase(0, pos_);
    base_ += pos_;
    pos_ = 0;
    if (buf_.size() > MAX_INPUT_BYTES)
      throw InputError(path_ + ":" + std::to_string(number_ + 1) + ": the line is longer than " +
                       std::to_string(MAX_INPUT_BYTES) + " bytes; expected CSV lines");
    const size_t old = buf_.size();
    buf_.resize(old + kChunk);
    in_.read(buf_.data() + old, static_cast<std::streamsize>(kChunk));
    const auto got = static_cast<size_t>(in_.gcount());
    buf_.resize(old + got);
    if (in_.bad()) throw InputError(path_ + ": cannot read the CSV file: I/O error");
    if (got == 0) eof_ = true;
    if (hashing_ && got > 0 && EVP_DigestUpdate(hash_.get(), buf_.data() + old, got) != 1)
      throw std::runtime_error("SHA-256 (OpenSSL EVP_DigestUpdate) failed");
  }
  static constexpr size_t kChunk = 1 << 20;
  std::ifstream in_;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> hash_;
  std::string buf_;
  std::uint64_t base_ = 0;  // file offset of buf_[0]
  size_t pos_ = 0;
  bool eof_ = false, hashing_ = true;
};

CsvReader::CsvReader(const std::string& path) : impl_(std::make_unique<Impl>(path)) {
  auto& cells = impl_->buffer.record.cells;
  if (!next_record(*impl_, path, nullptr, impl_->buffer))
    throw InputError(path + ": the file is empty; expected a header line");
  impl_->header.assign(cells.begin(), cells.end());
  check_header_line_ends(impl_->header, path, impl_->buffer.record.line);
}

CsvReader::~CsvReader() = default;

const std::vector<std::string>& CsvReader::header() const { return impl_->header; }

const std::string& CsvReader::path() const { return impl_->path_; }

int CsvReader::column(const std::string& name) const {
  for (size_t i = 0; i < impl_->header.size(); ++i)
    if (impl_->header[i] == name) return static_cast<int>(i);
  return -1;
}

bool CsvReader::next(CsvRow& row, std::string* raw) {
  if (raw) raw->clear();
  impl_->capture = raw;
  const bool got = next_record(*impl_, impl_->path_, &impl_->header, impl_->buffer);
  impl_->capture = nullptr;
  if (got) copy_record(impl_->buffer.record, row);  // before the next read moves the lines it views
  return got;
}

CsvReader::Position CsvReader::position() const { return impl_->position(); }

void CsvReader::seek(const Position& p) { impl_->seek(p); }

std::string CsvReader::sha256() { return impl_->sha256(); }

}  // namespace lutdose
