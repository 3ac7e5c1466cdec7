// HTML text helpers (report/html.h).
#include "lutdose/report/html.h"

#include <cmath>
#include <cstdio>

#include "lutdose/io/csv.h"

namespace lutdose::report {

namespace {

// Length of the valid UTF-8 sequence starting at s[i], or 0 when it is not valid (overlong forms,
// surrogates and code points above U+10FFFF are invalid).
std::size_t utf8_length(const std::string& s, std::size_t i) {
  const auto b = static_cast<unsigned char>(s[i]);
  std::size_t n = 0;
  unsigned cp = 0;
  if (b < 0x80) return 1;
  if (b >= 0xC2 && b <= 0xDF) { n = 2; cp = b & 0x1Fu; }
  else if (b >= 0xE0 && b <= 0xEF) { n = 3; cp = b & 0x0Fu; }
  else if (b >= 0xF0 && b <= 0xF4) { n = 4; cp = b & 0x07u; }
  else return 0;
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    const auto c = static_cast<unsigned char>(s[i + k]);
    if ((c & 0xC0u) != 0x80u) return 0;
    cp = (cp << 6) | (c & 0x3Fu);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return n;
}

}  // namespace

std::string html_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size() + 16);
  for (std::size_t i = 0; i < text.size();) {
    const char c = text[i];
    const std::size_t n = utf8_length(text, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD REPLACEMENT CHARACTER
      ++i;
      continue;
    }
    if (n > 1) {
      out.append(text, i, n);
      i += n;
      continue;
    }
    ++i;
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default:
        if (static_cast<unsigned char>(c) >= 0x20 && c != 0x7F) out += c;
        else if (c == '\t' || c == '\n' || c == '\r') out += c;
    }
  }
  return out;
}

std::string fmt(double x, int digits) {
  if (!std::isfinite(x)) return "\xE2\x80\x94";  // em dash
  char fixed_text[64], exp_text[64];
  const double ax = std::fabs(x);
  const int magnitude = ax > 0 ? static_cast<int>(std::floor(std::log10(ax))) : 0;
  const int decimals = std::max(0, digits - 1 - magnitude);
  std::snprintf(fixed_text, sizeof fixed_text, "%.*f", decimals, x);
  std::snprintf(exp_text, sizeof exp_text, "%.*g", digits, x);
  const std::string f = fixed_text, e = exp_text;
  if (ax != 0 && (ax >= 1e6 || ax < 1e-3)) return e;
  return f;
}

std::string fmt_exact(double x) {
  if (!std::isfinite(x)) return "\xE2\x80\x94";
  return csv_number(x);
}

}  // namespace lutdose::report
