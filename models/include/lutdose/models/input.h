// Reading untrusted input files: bounded reads, JSON parsing with a depth limit and range checks,
// UTF-8 checks and short quotations of values for messages. The limits are documented in
// docs/case-file.md ("Limits"); every reader of a user file goes through these functions.
#pragma once

#include <cstddef>
#include <string>

#include <nlohmann/json.hpp>

namespace lutdose::models {

//! Largest input file read, in bytes (16 MiB): a cohort TAC table of 500 patients x 4 cycles x 10 VOIs
//! x 6 points takes about 5 MB; reading stops here, so /dev/zero or a huge file cannot exhaust memory.
inline constexpr std::size_t MAX_INPUT_BYTES = 16u * 1024u * 1024u;
//! Deepest nesting of JSON arrays and objects (a case file needs 6 levels).
inline constexpr int MAX_JSON_DEPTH = 64;
//! Characters of a value quoted in a message; longer values are cut, with their length given.
inline constexpr std::size_t MAX_QUOTED_CHARS = 200;

//! Reads a whole file once. `regular_only` refuses devices, pipes and directories (files named
//! inside a case file). Returns "" on success, else why it could not be read (no file content).
//! max_bytes in bytes. Throws nothing: every problem is the returned text.
std::string read_input_bytes(const std::string& path, bool regular_only, std::string& bytes,
                             std::size_t max_bytes = MAX_INPUT_BYTES);

//! Removes a leading UTF-8 byte-order mark (spreadsheet exports write one); a view into `bytes`.
//! Throws nothing.
std::string_view without_bom(std::string_view bytes);

//! Parses JSON text with a nesting limit; numbers beyond the double range, and strings or keys
//! with NUL characters, are reported with their JSON path, as are duplicate keys and nesting deeper
//! than MAX_JSON_DEPTH. Returns "" or the problem (one line). Throws nothing.
std::string parse_json_checked(std::string_view text, nlohmann::json& out);

//! Whether `text` is valid UTF-8 (no overlong forms, no surrogates). Throws nothing.
bool valid_utf8(std::string_view text);

//! A value for a message: cut to MAX_QUOTED_CHARS bytes (at a UTF-8 boundary) with "... (N bytes)".
//! Throws nothing.
std::string quote_value(std::string_view text);

}  // namespace lutdose::models
