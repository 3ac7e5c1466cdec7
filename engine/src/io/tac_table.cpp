#include "lutdose/io/tac_table.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <limits>
#include <functional>
#include <map>
#include <string_view>
#include <tuple>

#include "lutdose/io/csv.h"
#include "lutdose/error.h"
#include "lutdose/io/input_file.h"

namespace lutdose {

std::string TacSeries::where() const {
  std::string w;
  if (!patient.empty()) w += "patient " + patient + ", ";
  w += "cycle " + std::to_string(cycle) + ", VOI " + voi;
  return w;
}

const std::vector<std::string>& tac_columns() {
  static const std::vector<std::string> cols = {"voi",     "time_h",    "activity_MBq",
                                                "patient", "cycle",     "volume_mL",
                                                "mass_g",  "activity_u_MBq"};
  return cols;
}

namespace {

// The header: only TAC columns, each once, the required ones present; and at least one row.
void check_header(const std::vector<std::string>& header, const std::string& path) {
  std::string known;
  for (const auto& c : tac_columns()) known += (known.empty() ? "" : ", ") + c;
  const auto has = [&header](const char* name) { return std::find(header.begin(), header.end(), name) != header.end(); };
  for (size_t i = 0; i < header.size(); ++i) {
    const auto& h = header[i];
    bool ok = false;
    for (const auto& c : tac_columns()) ok = ok || c == h;
    if (!ok)
      throw_input_error(path + ": header", "column " + std::to_string(i + 1), h,
                        "one of the TAC columns " + known);
    for (size_t j = 0; j < i; ++j)
      if (header[j] == h)
        throw_input_error(path + ": header", "column " + std::to_string(i + 1), h,
                          "each column once");
  }
  for (const char* required : {"voi", "time_h", "activity_MBq"})
    if (!has(required))
      throw InputError(path + ": header: the required column '" + std::string(required) +
                       "' is missing; expected columns voi, time_h, activity_MBq (and optionally "
                       "patient, cycle, volume_mL, mass_g, activity_u_MBq)");
}

// Column indices of the TAC table (-1: an optional column that is absent).
struct TacColumns {
  int voi, t, a, p, cy, v, m, u;
  explicit TacColumns(const std::vector<std::string>& header)
      : voi(column(header, "voi")), t(column(header, "time_h")), a(column(header, "activity_MBq")),
        p(column(header, "patient")), cy(column(header, "cycle")), v(column(header, "volume_mL")),
        m(column(header, "mass_g")), u(column(header, "activity_u_MBq")) {}
  static int column(const std::vector<std::string>& header, const char* name) {
    const auto it = std::find(header.begin(), header.end(), name);
    return it == header.end() ? -1 : static_cast<int>(it - header.begin());
  }
};

// One data row; NaN for an optional value not given.
struct Row {
  double t, a, u, v, m;
  int line;
  size_t next = 0;  // TacGroups: index of the next row of the same TAC
};

// The TAC a row belongs to: (patient, cycle, VOI).
using TacKey = std::tuple<std::string, int, std::string>;

// The same, as the texts of a row's cells (valid while the row is): no copy for each row.
struct RowTac {
  std::string_view patient;
  int cycle = 1;
  std::string_view voi;
  bool operator==(const TacKey& key) const {
    return cycle == std::get<1>(key) && voi == std::get<2>(key) && patient == std::get<0>(key);
  }
  TacKey key() const { return {std::string(patient), cycle, std::string(voi)}; }
};

// Where a row is, "path:line", made only for a message (most rows never need it).
struct RowLoc {
  const std::string& path;
  int line;
  operator std::string() const { return path + ":" + std::to_string(line); }
};

// A number > lo (>= lo when lo_inclusive) within the plausibility range; `loc` names the row.
double row_number(const CsvRecord& row, int col, const char* name, double lo, bool lo_inclusive,
                  const PlausibleRange& range, const char* expect, const RowLoc& loc) {
  const std::string_view text = row.cells[static_cast<size_t>(col)];
  double x;
  if (!parse_double(text, x) || !std::isfinite(x) || (lo_inclusive ? x < lo : x <= lo))
    throw_input_error(loc, std::string("column ") + name, std::string(text), expect);
  if (!range.contains(x))
    throw_input_error(loc, std::string("column ") + name, std::string(text), "a value " + range.text());
  return x;
}

// An optional number > 0 (NaN when the column is absent or the cell empty).
double row_optional(const CsvRecord& row, int col, const char* name, const PlausibleRange& range, const char* expect,
                    const RowLoc& loc) {
  if (col < 0 || row.cells[static_cast<size_t>(col)].empty()) return std::numeric_limits<double>::quiet_NaN();
  return row_number(row, col, name, 0.0, false, range, expect, loc);
}

// The row's values and, in `tac`, the TAC it belongs to. `last` (null for the first row) is the TAC
// of the row before: its names passed the checks, so the same names are not checked again.
Row read_row(const CsvRecord& row, const TacColumns& c, const RowLoc& loc, const TacKey* last, RowTac& tac) {
  const std::string_view voi = row.cells[static_cast<size_t>(c.voi)];
  if (!(last && voi == std::get<2>(*last)))
    if (const std::string e = key_name_expected(voi, "a VOI name", STORE_VOI_NAME_BYTES); !e.empty())
      throw_input_error(loc, "column voi", std::string(voi), e);
  Row r;
  r.t = row_number(row, c.t, "time_h", 0.0, true, TIME_RANGE_H, "a finite time >= 0 h after the reference time", loc);
  r.a = row_number(row, c.a, "activity_MBq", 0.0, true, ACTIVITY_RANGE_MBQ, "a finite activity >= 0 MBq", loc);
  r.u = row_optional(row, c.u, "activity_u_MBq", ACTIVITY_RANGE_MBQ, "a finite uncertainty > 0 MBq (or empty)", loc);
  r.v = row_optional(row, c.v, "volume_mL", MASS_RANGE_G, "a finite volume > 0 mL (or empty)", loc);
  r.m = row_optional(row, c.m, "mass_g", MASS_RANGE_G, "a finite mass > 0 g (or empty)", loc);
  r.line = row.line;
  const std::string_view patient = c.p >= 0 ? row.cells[static_cast<size_t>(c.p)] : "";  // "": no patient column
  if (!patient.empty() && !(last && patient == std::get<0>(*last)))
    if (const std::string e = key_name_expected(patient, "a patient id"); !e.empty())
      throw_input_error(loc, "column patient", std::string(patient), e);
  int cycle = 1;
  if (c.cy >= 0) {
    const std::string_view text = row.cells[static_cast<size_t>(c.cy)];
    double x;
    if (!parse_double(text, x) || x < 1 || x != std::floor(x) || x > static_cast<double>(MAX_CYCLE_NUMBER))
      throw_input_error(loc, "column cycle", std::string(text),
                        "a whole number from 1 to " + std::to_string(MAX_CYCLE_NUMBER));
    cycle = static_cast<int>(x);
  }
  tac = {patient, cycle, voi};
  return r;
}

// The rows of one TAC: a list through Row::next in TacGroups' rows (one vector for all rows, not
// one growing vector for each TAC).
struct TacRows {
  TacKey key;
  size_t count = 0, first = 0, last = 0;  // number of rows; indices of the first and last one
};

// The rows grouped by TAC, in the order of their first row, within the size limits.
class TacGroups {
 public:
  // Adds row r (its text `time_text`, at `loc`) to the TAC `tac`.
  void add(const RowTac& tac, const Row& r, std::string_view time_text, const RowLoc& loc) {
    // the rows of a TAC usually follow each other: the TAC is looked up only when it changes
    if (last_ == npos || !(tac == groups_[last_].key)) last_ = group_of(tac, loc);
    auto& g = groups_[last_];
    const std::string& voi = std::get<2>(g.key);
    if (g.count == MAX_POINTS_PER_TAC)
      throw_input_error(loc, "the number of points of VOI " + voi, "more than " + std::to_string(MAX_POINTS_PER_TAC),
                        "at most " + std::to_string(MAX_POINTS_PER_TAC) + " points per TAC (the limit)");
    if (g.count > 0 && !(r.t > rows_[g.last].t))
      throw_input_error(loc, "column time_h", std::string(time_text),
                        "times strictly increasing within VOI " + voi + " (previous " +
                            format_number(rows_[g.last].t) + " h at line " +
                            std::to_string(rows_[g.last].line) + ")");
    rows_.push_back(r);
    (g.count > 0 ? rows_[g.last].next : g.first) = rows_.size() - 1;
    g.last = rows_.size() - 1;
    ++g.count;
  }
  const std::vector<TacRows>& groups() const { return groups_; }
  // Room for n rows (an upper bound known beforehand): the row vector is not regrown, each page of
  // it touched once (a regrown vector of 100 000 rows touched twice its size and copied it).
  void reserve(size_t n) { rows_.reserve(n); }
  // The TAC of the last row added, null before the first one.
  const TacKey* last_key() const { return last_ == npos ? nullptr : &groups_[last_].key; }
  // The rows of group g, in file order.
  void rows_of(const TacRows& g, std::vector<Row>& rows) const {
    rows.clear();
    for (size_t i = g.first, k = 0; k < g.count; ++k, i = rows_[i].next) rows.push_back(rows_[i]);
  }

 private:
  static constexpr size_t npos = static_cast<size_t>(-1);

  // The TACs of one patient: their groups by (cycle, VOI) and the number of VOIs of each cycle.
  struct PatientTacs {
    std::map<std::pair<int, std::string>, size_t> groups;  // (cycle, VOI) -> index in groups_
    std::map<int, size_t> vois_of_cycle;                   // cycle -> VOIs
  };

  // The index of the TAC's group; a new TAC gets one, within the limits of VOIs and cycles.
  // Ordered maps, not hash maps: no input makes a lookup slower than log(n) comparisons.
  size_t group_of(const RowTac& tac, const RowLoc& loc) {
    if (!last_patient_ || last_patient_->first != tac.patient) {
      auto found = patients_.find(tac.patient);
      if (found == patients_.end()) found = patients_.emplace(std::string(tac.patient), PatientTacs()).first;
      last_patient_ = &*found;
    }
    PatientTacs& p = last_patient_->second;
    const auto [it, added] = p.groups.try_emplace({tac.cycle, std::string(tac.voi)}, groups_.size());
    if (!added) return it->second;
    groups_.push_back({tac.key()});
    const size_t vois = ++p.vois_of_cycle[tac.cycle];
    if (vois > MAX_VOIS_PER_CYCLE)
      throw_input_error(loc, "column voi", std::string(tac.voi), "at most " + std::to_string(MAX_VOIS_PER_CYCLE) +
                                                                     " VOIs per patient and cycle (the limit)");
    if (vois == 1 && p.vois_of_cycle.size() > MAX_CYCLES)
      throw_input_error(loc, "column cycle", std::to_string(tac.cycle),
                        "at most " + std::to_string(MAX_CYCLES) + " cycles per patient (the limit)");
    return it->second;
  }

  std::vector<Row> rows_;        // all rows, in file order
  std::vector<TacRows> groups_;  // in the order of their first row
  size_t last_ = npos;           // the group of the last row
  std::map<std::string, PatientTacs, std::less<>> patients_;  // patient -> its TACs
  // the patient of the last new TAC (a map node: it stays valid as patients are added, and moves
  // with the map)
  std::pair<const std::string, PatientTacs>* last_patient_ = nullptr;
};

// One TAC from its rows; activity_u_MBq must be given for all of its points or none.
TacSeries make_series(const TacKey& key, const std::vector<Row>& rows, const std::string& path) {
  TacSeries s;
  std::tie(s.patient, s.cycle, s.voi) = key;
  const auto n = static_cast<Eigen::Index>(rows.size());
  s.time_h.resize(n);
  s.activity_MBq.resize(n);
  bool any_u = false, all_u = true;
  for (const auto& r : rows) {
    any_u = any_u || !std::isnan(r.u);
    all_u = all_u && !std::isnan(r.u);
  }
  if (any_u && !all_u)
    throw InputError(path + ": " + s.where() +
                     ": activity_u_MBq is given for some time points only; expected it for all "
                     "or none of them");
  if (any_u) s.activity_u_MBq.resize(n);
  s.volume_mL.reserve(rows.size());
  s.mass_g.reserve(rows.size());
  s.lines.reserve(rows.size());
  for (Eigen::Index i = 0; i < n; ++i) {
    const auto& r = rows[static_cast<size_t>(i)];
    s.time_h(i) = r.t;
    s.activity_MBq(i) = r.a;
    if (any_u) s.activity_u_MBq(i) = r.u;
    s.volume_mL.push_back(r.v);
    s.mass_g.push_back(r.m);
    s.lines.push_back(r.line);
  }
  return s;
}

}  // namespace

class TacRowParser::Impl {
 public:
  Impl(const std::vector<std::string>& header, const std::string& file) : path(file), columns(header) {}
  std::string path;
  TacColumns columns;
  TacGroups groups;
  CsvRecord views;  // a CsvRow's cells as views, for add(const CsvRow&)
};

TacRowParser::TacRowParser(const std::vector<std::string>& header, const std::string& path) {
  check_header(header, path);
  impl_ = std::make_unique<Impl>(header, path);
}

TacRowParser::~TacRowParser() = default;

void TacRowParser::reserve_rows(size_t n) { impl_->groups.reserve(n); }

void TacRowParser::add(const CsvRow& row) {
  impl_->views.line = row.line;
  impl_->views.cells.assign(row.cells.begin(), row.cells.end());
  add_record(impl_->views);
}

void TacRowParser::add_record(const CsvRecord& row) {
  const RowLoc loc{impl_->path, row.line};
  RowTac tac;
  const Row r = read_row(row, impl_->columns, loc, impl_->groups.last_key(), tac);
  impl_->groups.add(tac, r, row.cells[static_cast<size_t>(impl_->columns.t)], loc);
}

std::vector<TacSeries> TacRowParser::take() {
  std::vector<TacSeries> out;
  TacGroups groups;
  std::swap(groups, impl_->groups);
  out.reserve(groups.groups().size());
  std::vector<Row> rows;
  for (const auto& g : groups.groups()) {
    groups.rows_of(g, rows);
    out.push_back(make_series(g.key, rows, impl_->path));
  }
  return out;
}

int TacRowParser::patient_column() const { return impl_->columns.p; }

int TacRowParser::voi_column() const { return impl_->columns.voi; }

std::vector<TacSeries> read_tac_table(const std::string& path, std::string* bytes) {
  std::string content = read_input_file(path, "TAC table", false);
  std::unique_ptr<TacRowParser> parser;
  bool any_row = false;
  for_each_csv_record(
      content, path,
      [&](const std::vector<std::string>& header) {
        parser = std::make_unique<TacRowParser>(header, path);
        // at most one row per line, and per 6 bytes: the shortest data row ("v,0,0" and its LF);
        // blank and comment lines are no rows (a file of blank lines must not reserve millions)
        const auto lines = static_cast<size_t>(std::count(content.begin(), content.end(), '\n')) + 1;
        parser->reserve_rows(std::min(lines, content.size() / 6 + 1));
      },
      [&](const CsvRecord& row) {
        parser->add_record(row);
        any_row = true;
      });
  if (!any_row) throw InputError(path + ": no data rows; expected one row per VOI per time point");
  if (bytes) *bytes = std::move(content);
  return parser->take();
}

}  // namespace lutdose
