#include "lutdose/io/csv.h"

#include <charconv>
#include <cmath>
#include <algorithm>
#include <string_view>

#include "lutdose/io/input_file.h"

#include "lutdose/error.h"

namespace lutdose {

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::string csv_field(const std::string& s) {
  const bool blank_edge = !s.empty() && (s.front() == ' ' || s.front() == '\t' || s.back() == ' ' || s.back() == '\t');
  if (s.find_first_of(",\"\r\n") == std::string::npos && !blank_edge) return s;
  std::string q = "\"";
  for (char c : s) {
    if (c == '"') q += '"';
    q += c;
  }
  return q + "\"";
}

std::string csv_number(double x) {
  if (std::isnan(x)) return "";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  char text[32];
  const auto [end, ec] = std::to_chars(text, text + sizeof text, x);
  return ec == std::errc() ? std::string(text, end) : std::string();
}

bool parse_double(const std::string& text, double& value) {
  const std::string t = trim(text);
  if (t.empty()) return false;
  const char* first = t.data();
  if (*first == '+') ++first;
  const auto [ptr, ec] = std::from_chars(first, t.data() + t.size(), value);
  return ec == std::errc() && ptr == t.data() + t.size();
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

// Lines of a buffer, with their numbers; a record may continue over newlines inside quotes.
class Lines {
 public:
  explicit Lines(std::string_view text) : text_(text) {}
  bool next(std::string_view& line) {
    if (pos_ >= text_.size()) return false;
    const size_t end = std::min(text_.find('\n', pos_), text_.size());
    line = text_.substr(pos_, end - pos_);
    pos_ = end + 1;
    ++number_;
    return true;
  }
  int number() const { return number_; }

 private:
  std::string_view text_;
  size_t pos_ = 0;
  int number_ = 0;
};

// A cell's text problem ("" when fine): invalid UTF-8 or a NUL byte.
std::string text_problem(std::string_view text) {
  if (text.find('\0') != std::string_view::npos) return "holds a NUL byte";
  if (!models::valid_utf8(text)) return "is not valid UTF-8";
  return "";
}

// Splits one record starting at `line`; continues over newlines inside quotes.
std::vector<std::string> split_record(Lines& lines, std::string_view first, const std::string& path) {
  std::vector<std::string> cells;
  std::string cell;
  bool quoted = false;
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
      if (c == '"') {
        if (i + 1 < line.size() && line[i + 1] == '"') {
          cell += '"';
          ++i;
        } else {
          quoted = false;
        }
      } else {
        cell += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      cells.push_back(trim(cell));
      cell.clear();
    } else if (c != '\r') {
      cell += c;
    }
  }
  cells.push_back(trim(cell));
  return cells;
}

// Every cell valid UTF-8 without NUL bytes; the message names the line and the column.
void check_cells(const std::vector<std::string>& cells, const std::vector<std::string>& header, int line,
                 const std::string& path) {
  for (size_t i = 0; i < cells.size(); ++i) {
    const std::string problem = text_problem(cells[i]);
    if (problem.empty()) continue;
    const std::string column = i < header.size() && text_problem(header[i]).empty()
                                   ? "column " + models::quote_value(header[i])
                                   : "header column " + std::to_string(i + 1);
    throw InputError(path + ":" + std::to_string(line) + ": " + column + " " + problem +
                     "; expected text in UTF-8 without NUL bytes");
  }
}

}  // namespace

CsvTable read_csv(const std::string& path, bool regular_only) {
  return parse_csv(read_input_file(path, "CSV file", regular_only), path);
}

CsvTable parse_csv(const std::string& bytes, const std::string& path) {
  CsvTable table;
  table.path = path;
  Lines lines(models::without_bom(bytes));
  std::string_view line;
  bool have_header = false;
  while (lines.next(line)) {
    const std::string t = trim(std::string(line.substr(0, std::min<size_t>(line.size(), 2 * MAX_QUOTED_CHARS))));
    if (!t.empty() && t[0] == '#') {
      const std::string problem = text_problem(line);
      if (!problem.empty())
        throw InputError(path + ":" + std::to_string(lines.number()) + ": the comment line " + problem +
                         "; expected text in UTF-8 without NUL bytes");
      continue;
    }
    if (t.empty() && trim(std::string(line)).empty()) continue;
    const int record_line = lines.number();
    auto cells = split_record(lines, line, path);
    check_cells(cells, have_header ? table.header : cells, record_line, path);
    if (!have_header) {
      table.header = std::move(cells);
      have_header = true;
      continue;
    }
    if (cells.size() != table.header.size())
      throw InputError(path + ":" + std::to_string(record_line) + ": the row has " +
                       std::to_string(cells.size()) + " cells; expected " +
                       std::to_string(table.header.size()) + " as in the header");
    table.rows.push_back({record_line, std::move(cells)});
  }
  if (!have_header) throw InputError(path + ": the file is empty; expected a header line");
  return table;
}

}  // namespace lutdose
