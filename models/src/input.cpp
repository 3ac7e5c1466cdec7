#include "lutdose/models/input.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <unordered_set>
#include <vector>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace lutdose::models {

namespace {

// Closes a file descriptor when it goes out of scope.
struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// The JSON path of the first non-finite number or NUL-holding string under `j` ("" when none).
// Recursion is bounded by MAX_JSON_DEPTH, checked while parsing.
bool find_bad_value(const nlohmann::json& j, const std::string& path, std::string& problem) {
  if (j.is_number_float() && !std::isfinite(j.get<double>())) {
    problem = path + " is a number beyond the range of a double (about 1.8e308)";
    return true;
  }
  if (j.is_string() && j.get_ref<const std::string&>().find('\0') != std::string::npos) {
    problem = quote_value(path) + " contains a NUL character (\\u0000)";
    return true;
  }
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string child = path.empty() ? it.key() : path + "." + it.key();
      if (it.key().find('\0') != std::string::npos) {
        problem = quote_value(child) + ": the key contains a NUL character (\\u0000)";
        return true;
      }
      if (find_bad_value(*it, child, problem)) return true;
    }
  } else if (j.is_array()) {
    for (std::size_t i = 0; i < j.size(); ++i)
      if (find_bad_value(j[i], path + "[" + std::to_string(i) + "]", problem)) return true;
  }
  return false;
}

// Follows the JSON path during a SAX parse, to name the value where the parse stops (a number
// beyond the double range has no position in the DOM parser's message).
class PathLocator : public nlohmann::json_sax<nlohmann::json> {
 public:
  std::string where;
  bool null() override { return value(); }
  bool boolean(bool) override { return value(); }
  bool number_integer(number_integer_t) override { return value(); }
  bool number_unsigned(number_unsigned_t) override { return value(); }
  bool number_float(number_float_t, const string_t&) override { return value(); }
  bool string(string_t&) override { return value(); }
  bool binary(binary_t&) override { return value(); }
  bool start_object(std::size_t) override { return open(false); }
  bool key(string_t& k) override {
    levels_.back().key = k;
    if (levels_.back().keys.insert(k).second) return true;
    for (const auto& l : levels_)  // stops at the second use of a key, naming it
      where += l.array ? "[" + std::to_string(l.index) + "]" : (where.empty() ? "" : ".") + l.key;
    return false;
  }
  bool end_object() override { return close(); }
  bool start_array(std::size_t) override { return open(true); }
  bool end_array() override { return close(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    for (const auto& l : levels_)
      where += l.array ? "[" + std::to_string(l.index) + "]" : (where.empty() ? "" : ".") + l.key;
    return false;
  }

 private:
  struct Level {
    bool array;
    std::size_t index;
    std::string key;
    std::unordered_set<std::string> keys;  // of this object so far
  };
  bool value() {
    if (!levels_.empty() && levels_.back().array) ++levels_.back().index;
    return true;
  }
  bool open(bool array) {
    levels_.push_back({array, 0, "", {}});
    return levels_.size() <= static_cast<std::size_t>(MAX_JSON_DEPTH);
  }
  bool close() {
    levels_.pop_back();
    return value();
  }
  std::vector<Level> levels_;
};

}  // namespace

std::string read_input_bytes(const std::string& path, bool regular_only, std::string& bytes,
                             std::size_t max_bytes) {
  // O_NONBLOCK: opening a FIFO without a writer must not block; cleared before reading.
  Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK)};
  if (f.fd < 0) return std::string("cannot open it (") + std::strerror(errno) + ")";
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) return std::string("cannot examine it (") + std::strerror(errno) + ")";
  if (S_ISDIR(st.st_mode)) return "it is a directory, not a file";
  if (regular_only && !S_ISREG(st.st_mode)) return "it is not a regular file (a device, pipe or socket)";
  if (S_ISREG(st.st_mode) && static_cast<std::size_t>(st.st_size) > max_bytes)
    return "it has " + std::to_string(st.st_size) + " bytes, more than the limit of " +
           std::to_string(max_bytes);
  ::fcntl(f.fd, F_SETFL, ::fcntl(f.fd, F_GETFL) & ~O_NONBLOCK);
  bytes.clear();
  char buffer[65536];
  for (;;) {
    const ssize_t n = ::read(f.fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::string("read error (") + std::strerror(errno) + ")";
    if (n == 0) return "";
    if (bytes.size() + static_cast<std::size_t>(n) > max_bytes)
      return "it has more than the limit of " + std::to_string(max_bytes) + " bytes";
    bytes.append(buffer, static_cast<std::size_t>(n));
  }
}

std::string_view without_bom(std::string_view bytes) {
  return bytes.substr(0, 3) == "\xEF\xBB\xBF" ? bytes.substr(3) : bytes;
}

std::string parse_json_checked(std::string_view text, nlohmann::json& out) {
  using json = nlohmann::json;
  // The callback sees every value as it is completed, with its depth: deeper nesting stops the
  // parse before any recursive code (dump, destructors) meets it.
  // It also keeps the keys of each open object: a key written twice stops the parse (the parser
  // would keep the last value and drop the other silently).
  std::vector<std::unordered_set<std::string>> keys;
  struct DuplicateKey {};
  const json::parser_callback_t depth_limit = [&keys](int depth, json::parse_event_t event, json& parsed) {
    if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) &&
        depth >= MAX_JSON_DEPTH) {
      throw std::length_error("nesting");
    }
    if (event == json::parse_event_t::object_start) keys.emplace_back();
    if (event == json::parse_event_t::object_end) keys.pop_back();
    if (event == json::parse_event_t::key && !keys.back().insert(parsed.get<std::string>()).second)
      throw DuplicateKey{};
    return true;
  };
  try {
    const std::string_view body = without_bom(text);
    out = json::parse(body.begin(), body.end(), depth_limit);
  } catch (const std::length_error&) {
    return "arrays and objects nested deeper than the limit of " + std::to_string(MAX_JSON_DEPTH) +
           " levels (nesting depth)";
  } catch (const DuplicateKey&) {
    PathLocator locator;
    const std::string_view body = without_bom(text);
    json::sax_parse(body.begin(), body.end(), &locator);
    return quote_value(locator.where) + " is written twice in one object (only one value can hold)";
  } catch (const json::out_of_range&) {  // 406: a number beyond the double range
    PathLocator locator;
    const std::string_view body = without_bom(text);
    json::sax_parse(body.begin(), body.end(), &locator);
    return quote_value(locator.where.empty() ? "(top level)" : locator.where) +
           " is a number beyond the range of a double (about 1.8e308)";
  } catch (const json::parse_error& e) {
    // The path where the parse stopped, and the parser's message without its "last read" part
    // (it can hold the raw bytes of a long value).
    PathLocator locator;
    const std::string_view body = without_bom(text);
    json::sax_parse(body.begin(), body.end(), &locator);
    std::string what = e.what();
    what = what.substr(0, what.find("; last read:"));
    return "not valid JSON" + (locator.where.empty() ? std::string() : " at " + quote_value(locator.where)) +
           " (" + quote_value(what) + ")";
  }
  std::string problem;
  if (find_bad_value(out, "", problem)) return problem.empty() ? "a bad value" : problem;
  return "";
}

namespace {

// Length of the valid UTF-8 sequence at s[i] (no overlong forms, surrogates or code points above
// U+10FFFF), or 0 when the bytes there are not one.
std::size_t utf8_length(std::string_view s, std::size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  std::size_t len = 0;
  unsigned lo = 0x80, hi = 0xBF;  // range of the second byte
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) len = 2;
  else if (c == 0xE0) len = 3, lo = 0xA0;
  else if (c == 0xED) len = 3, hi = 0x9F;
  else if (c >= 0xE1 && c <= 0xEF) len = 3;
  else if (c == 0xF0) len = 4, lo = 0x90;
  else if (c >= 0xF1 && c <= 0xF3) len = 4;
  else if (c == 0xF4) len = 4, hi = 0x8F;
  else return 0;
  if (i + len > s.size()) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return 0;
  }
  return len;
}

}  // namespace

bool valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t len = utf8_length(s, i);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

std::string quote_value(std::string_view text) {
  // Control characters and bytes that are not UTF-8 are written as escapes (\u0000, \xFF): a
  // message must print whole and be valid text.
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  std::size_t i = 0;
  for (; i < text.size() && out.size() < MAX_QUOTED_CHARS;) {
    const auto c = static_cast<unsigned char>(text[i]);
    const std::size_t len = utf8_length(text, i);
    if (len == 1 && (c < 0x20 || c == 0x7F)) {
      out += std::string("\\u00") + hex[c >> 4] + hex[c & 15];
    } else if (len == 0) {
      out += std::string("\\x") + hex[c >> 4] + hex[c & 15];
    } else {
      out.append(text.substr(i, len));
      i += len;
      continue;
    }
    ++i;
  }
  if (i < text.size()) out += "... (" + std::to_string(text.size()) + " bytes in all)";
  return out;
}

}  // namespace lutdose::models
