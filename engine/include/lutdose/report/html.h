// HTML text helpers of the reports (docs/report.md): escaping every string that comes from an
// input file (patient ids, VOI names, messages) and number formatting for tables.
#pragma once

#include <string>

namespace lutdose::report {

//! `text` with & < > " ' replaced by &amp; &lt; &gt; &quot; &#39; (safe in element content and in
//! quoted attribute values). Bytes that are not valid UTF-8 become U+FFFD, and control characters
//! other than tab, newline and carriage return are dropped, so that the page stays well-formed.
//! Throws nothing.
std::string html_escape(const std::string& text);

//! A number for a table: `digits` significant digits (default 4) in fixed or exponent notation,
//! whichever is shorter; "—" when not finite (the caller says why next to it). Throws nothing.
std::string fmt(double x, int digits = 4);

//! `x` as in the JSON (the shortest text that reads back to the same double, "%.17g"-exact); "—"
//! when not finite. Used where a test compares the shown number with results.json. Throws nothing.
std::string fmt_exact(double x);

}  // namespace lutdose::report
