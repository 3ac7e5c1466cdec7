#include "lutdose/csv.h"

#include <charconv>
#include <fstream>

#include "lutdose/error.h"

namespace lutdose {

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
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

// Splits one record starting at `line`; continues over newlines inside quotes.
std::vector<std::string> split_record(std::istream& in, std::string line, int& line_no,
                                      const std::string& path) {
  std::vector<std::string> cells;
  std::string cell;
  bool quoted = false;
  const int start_line = line_no;
  for (size_t i = 0;; ++i) {
    if (i == line.size()) {
      if (!quoted) break;
      std::string next;
      if (!std::getline(in, next))
        throw InputError(path + ":" + std::to_string(start_line) +
                         ": a quoted field is not closed; expected a closing '\"'");
      ++line_no;
      line += "\n" + next;
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

}  // namespace

CsvTable read_csv(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InputError(path + ": cannot open the file; expected a readable CSV file");
  CsvTable table;
  table.path = path;
  std::string line;
  int line_no = 0;
  bool have_header = false;
  while (std::getline(in, line)) {
    ++line_no;
    const std::string t = trim(line);
    if (t.empty() || t[0] == '#') continue;
    const int record_line = line_no;
    auto cells = split_record(in, line, line_no, path);
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
