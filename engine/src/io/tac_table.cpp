#include "lutdose/io/tac_table.h"

#include <cmath>
#include <limits>
#include <map>
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

std::vector<TacSeries> read_tac_table(const std::string& path, std::string* bytes) {
  std::string content = read_input_file(path, "TAC table", false);
  const CsvTable table = parse_csv(content, path);
  if (bytes) *bytes = std::move(content);
  std::string known;
  for (const auto& c : tac_columns()) known += (known.empty() ? "" : ", ") + c;
  for (size_t i = 0; i < table.header.size(); ++i) {
    const auto& h = table.header[i];
    bool ok = false;
    for (const auto& c : tac_columns()) ok = ok || c == h;
    if (!ok)
      throw_input_error(path + ": header", "column " + std::to_string(i + 1), h,
                        "one of the TAC columns " + known);
    for (size_t j = 0; j < i; ++j)
      if (table.header[j] == h)
        throw_input_error(path + ": header", "column " + std::to_string(i + 1), h,
                          "each column once");
  }
  for (const char* required : {"voi", "time_h", "activity_MBq"})
    if (table.column(required) < 0)
      throw InputError(path + ": header: the required column '" + std::string(required) +
                       "' is missing; expected columns voi, time_h, activity_MBq (and optionally "
                       "patient, cycle, volume_mL, mass_g, activity_u_MBq)");
  if (table.rows.empty()) throw InputError(path + ": no data rows; expected one row per VOI per time point");

  const int c_voi = table.column("voi"), c_t = table.column("time_h"),
            c_a = table.column("activity_MBq"), c_p = table.column("patient"),
            c_cy = table.column("cycle"), c_v = table.column("volume_mL"),
            c_m = table.column("mass_g"), c_u = table.column("activity_u_MBq");

  struct Row { double t, a, u, v, m; int line; };
  std::map<std::tuple<std::string, int, std::string>, std::vector<Row>> groups;
  std::vector<std::tuple<std::string, int, std::string>> order;
  std::map<std::pair<std::string, int>, std::size_t> vois_of;  // (patient, cycle) -> VOIs
  std::map<std::string, std::size_t> cycles_of;               // patient -> cycles

  for (const auto& row : table.rows) {
    const std::string loc = path + ":" + std::to_string(row.line);
    // A number > lo (>= lo when lo_inclusive) within the plausibility range.
    auto number = [&](int col, const char* name, double lo, bool lo_inclusive, const PlausibleRange& range,
                      const std::string& expect) {
      const std::string& text = row.cells[static_cast<size_t>(col)];
      double x;
      if (!parse_double(text, x) || !std::isfinite(x) || (lo_inclusive ? x < lo : x <= lo))
        throw_input_error(loc, std::string("column ") + name, text, expect);
      if (!range.contains(x))
        throw_input_error(loc, std::string("column ") + name, text, "a value " + range.text());
      return x;
    };
    auto optional = [&](int col, const char* name, const PlausibleRange& range, const char* expect) {
      if (col < 0 || row.cells[static_cast<size_t>(col)].empty())
        return std::numeric_limits<double>::quiet_NaN();
      return number(col, name, 0.0, false, range, expect);
    };
    const std::string voi = row.cells[static_cast<size_t>(c_voi)];
    if (const std::string p = name_problem(voi); !p.empty())
      throw_input_error(loc, "column voi", voi, "a VOI name (this one is " + p + ")");
    Row r;
    r.t = number(c_t, "time_h", 0.0, true, TIME_RANGE_H, "a finite time >= 0 h after the reference time");
    r.a = number(c_a, "activity_MBq", 0.0, true, ACTIVITY_RANGE_MBQ, "a finite activity >= 0 MBq");
    r.u = optional(c_u, "activity_u_MBq", ACTIVITY_RANGE_MBQ, "a finite uncertainty > 0 MBq (or empty)");
    r.v = optional(c_v, "volume_mL", MASS_RANGE_G, "a finite volume > 0 mL (or empty)");
    r.m = optional(c_m, "mass_g", MASS_RANGE_G, "a finite mass > 0 g (or empty)");
    r.line = row.line;
    std::string patient = c_p >= 0 ? row.cells[static_cast<size_t>(c_p)] : "";
    if (const std::string p = name_problem(patient); c_p >= 0 && !patient.empty() && !p.empty())
      throw_input_error(loc, "column patient", patient, "a patient id (this one is " + p + ")");
    int cycle = 1;
    if (c_cy >= 0) {
      const std::string& text = row.cells[static_cast<size_t>(c_cy)];
      double x;
      if (!parse_double(text, x) || x < 1 || x != std::floor(x) || x > static_cast<double>(MAX_CYCLE_NUMBER))
        throw_input_error(loc, "column cycle", text, "a whole number from 1 to " + std::to_string(MAX_CYCLE_NUMBER));
      cycle = static_cast<int>(x);
    }
    auto key = std::make_tuple(patient, cycle, voi);
    auto& g = groups[key];
    if (g.empty()) {
      order.push_back(key);
      if (++vois_of[{patient, cycle}] > MAX_VOIS_PER_CYCLE)
        throw_input_error(loc, "column voi", voi, "at most " + std::to_string(MAX_VOIS_PER_CYCLE) +
                                                      " VOIs per patient and cycle (the limit)");
      if (vois_of[{patient, cycle}] == 1 && ++cycles_of[patient] > MAX_CYCLES)
        throw_input_error(loc, "column cycle", std::to_string(cycle),
                          "at most " + std::to_string(MAX_CYCLES) + " cycles per patient (the limit)");
    }
    if (g.size() == MAX_POINTS_PER_TAC)
      throw_input_error(loc, "the number of points of VOI " + voi, "more than " + std::to_string(MAX_POINTS_PER_TAC),
                        "at most " + std::to_string(MAX_POINTS_PER_TAC) + " points per TAC (the limit)");
    if (!g.empty() && !(r.t > g.back().t))
      throw_input_error(loc, "column time_h", row.cells[static_cast<size_t>(c_t)],
                        "times strictly increasing within VOI " + voi + " (previous " +
                            format_number(g.back().t) + " h at line " +
                            std::to_string(g.back().line) + ")");
    g.push_back(r);
  }

  std::vector<TacSeries> out;
  for (const auto& key : order) {
    const auto& rows = groups[key];
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
    for (Eigen::Index i = 0; i < n; ++i) {
      const auto& r = rows[static_cast<size_t>(i)];
      s.time_h(i) = r.t;
      s.activity_MBq(i) = r.a;
      if (any_u) s.activity_u_MBq(i) = r.u;
      s.volume_mL.push_back(r.v);
      s.mass_g.push_back(r.m);
      s.lines.push_back(r.line);
    }
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace lutdose
