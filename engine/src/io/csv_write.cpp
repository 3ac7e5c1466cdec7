// CSV cells appended to a text (lutdose/io/csv.h; csv_field and csv_number return them as strings),
// written into the caller's buffer (`lutdose fit --format csv` writes 20 cells per VOI).
#include <charconv>
#include <cmath>

#include "lutdose/io/csv.h"

namespace lutdose {

namespace {

// As csv_field decides: a comma, a quote, CR or LF inside, or a blank (space, tab) at an edge.
bool needs_quotes(const std::string& s) {
  if (s.empty()) return false;
  const auto blank = [](char c) { return c == ' ' || c == '\t'; };
  if (blank(s.front()) || blank(s.back())) return true;
  for (const char c : s)  // one pass (find_first_of compares each character with each of the set)
    if (c == ',' || c == '"' || c == '\r' || c == '\n') return true;
  return false;
}

}  // namespace

void append_csv_field(std::string& out, const std::string& s) {
  if (!needs_quotes(s)) {
    out += s;
    return;
  }
  out += '"';
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
}

void append_csv_number(std::string& out, double x) {
  if (std::isnan(x)) return;  // unknown: an empty cell
  if (std::isinf(x)) {
    out += x > 0 ? "inf" : "-inf";
    return;
  }
  char text[32];
  const auto [end, ec] = std::to_chars(text, text + sizeof text, x);
  if (ec == std::errc()) out.append(text, static_cast<std::size_t>(end - text));  // (pointer, count): no replace()
}

}  // namespace lutdose
