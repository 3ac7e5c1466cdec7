#include "lutdose/nan.h"
#include "lutdose/io/case_file.h"
#include "lutdose/pipeline/options.h"

#include <algorithm>
#include <cctype>
#include <climits>
#include <initializer_list>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <unordered_set>

#include <date/date.h>
#include <date/tz.h>

#include "lutdose/io/csv.h"
#include "lutdose/error.h"
#include "lutdose/io/input_file.h"
#include "lutdose/io/output_dir.h"  // sha256_hex
#include "lutdose/models/exponential.h"
#include "lutdose/dosimetry/svalues.h"

using nlohmann::json;

namespace lutdose {

// ------------------------------------------------------------------------------- date-time

namespace {
// A date-time as written: its clock reading in hours since 1970-01-01 00:00 on that clock, and
// its UTC offset when one is written.
struct WrittenTime {
  double clock_h = 0;
  bool has_offset = false;
  double offset_h = 0;
};

// Parses "YYYY-MM-DD[T ]HH:MM[:SS[.fff]][Z|+HH:MM|-HH:MM]"; the calendar library validates the
// date (2021-02-31 is no date). Returns "" or what is wrong.
std::string parse_written_time(const std::string& text, WrittenTime& out) {
  const std::string syntax = "a date-time YYYY-MM-DDTHH:MM[:SS][Z|+HH:MM]";
  int y, mo, d, h, mi;
  double s = 0;
  char sep;
  int consumed = 0;
  // Digits exactly where the format has them: sscanf alone would take signs, spaces and short
  // fields ("+-5:00", " 9:00", "2026-1-5").
  auto digits_at = [&text](std::initializer_list<std::size_t> at) {
    for (std::size_t i : at)
      if (i >= text.size() || !std::isdigit(static_cast<unsigned char>(text[i]))) return false;
    return true;
  };
  if (text.size() < 16 || !digits_at({0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15})) return syntax;
  if (text.size() > 64 ||
      std::sscanf(text.c_str(), "%4d-%2d-%2d%c%2d:%2d%n", &y, &mo, &d, &sep, &h, &mi, &consumed) != 6 ||
      (sep != 'T' && sep != ' '))
    return syntax;
  std::string rest = text.substr(static_cast<size_t>(consumed));
  if (!rest.empty() && rest[0] == ':') {
    size_t n = 1;
    while (n < rest.size() && (std::isdigit(static_cast<unsigned char>(rest[n])) || rest[n] == '.')) ++n;
    if (!parse_double(rest.substr(1, n - 1), s)) return syntax;
    rest = rest.substr(n);
  }
  out = WrittenTime{};
  if (rest == "Z") {
    out.has_offset = true;
  } else if (!rest.empty() && (rest[0] == '+' || rest[0] == '-')) {
    int oh, om;
    const auto digit = [&rest](std::size_t i) { return std::isdigit(static_cast<unsigned char>(rest[i])) != 0; };
    if (rest.size() != 6 || rest[3] != ':' || !digit(1) || !digit(2) || !digit(4) || !digit(5) || std::sscanf(rest.c_str() + 1, "%2d:%2d", &oh, &om) != 2 ||
        oh > 18 || om > 59)
      return syntax;
    out.has_offset = true;
    out.offset_h = (rest[0] == '+' ? 1 : -1) * (oh + om / 60.0);
  } else if (!rest.empty()) {
    return syntax;
  }
  if (h < 0 || h > 23 || mi < 0 || mi > 59 || !(s >= 0 && s < 60)) return syntax + " (a time of day that exists)";
  const date::year_month_day ymd{date::year{y}, date::month{static_cast<unsigned>(mo)},
                                 date::day{static_cast<unsigned>(d)}};
  if (!ymd.ok()) return "a calendar date that exists (" + text.substr(0, 10) + " is none)";
  const auto days = date::sys_days{ymd}.time_since_epoch().count();
  out.clock_h = static_cast<double>(days) * 24.0 + h + mi / 60.0 + s / 3600.0;
  return "";
}
}  // namespace

bool parse_date_time_h(const std::string& text, double& hours) {
  WrittenTime w;
  if (!parse_written_time(text, w).empty()) return false;
  hours = w.clock_h - w.offset_h;
  return true;
}

// ------------------------------------------------------------------------------- validation

namespace {


// Units of one dimension: name -> factor to the canonical unit.
struct Dimension {
  const char* canonical;
  std::vector<std::pair<std::string, double>> units;
};
const Dimension TIME_H{"h", {{"s", 1 / 3600.0}, {"min", 1 / 60.0}, {"h", 1.0}, {"d", 24.0}}};
const Dimension DURATION_S{"s", {{"s", 1.0}, {"min", 60.0}, {"h", 3600.0}}};
const Dimension ACTIVITY_MBQ{"MBq", {{"Bq", 1e-6}, {"kBq", 1e-3}, {"MBq", 1.0}, {"GBq", 1e3},
                                     {"mCi", 37.0}, {"uCi", 0.037}}};  // 1 Ci = 3.7e10 Bq exactly
const Dimension VOLUME_ML{"mL", {{"mL", 1.0}, {"cm3", 1.0}, {"L", 1000.0}}};
const Dimension MASS_G{"g", {{"g", 1.0}, {"kg", 1000.0}}};
const Dimension DEAD_TIME_S{"s", {{"s", 1.0}, {"ms", 1e-3}, {"us", 1e-6}, {"ns", 1e-9}}};
const Dimension CF_CPS_PER_MBQ{"cps/MBq", {{"cps/MBq", 1.0}, {"cps/kBq", 1e3}, {"cps/Bq", 1e6}}};
const Dimension CONC_MBQ_PER_ML{"MBq/mL", {{"MBq/mL", 1.0}, {"kBq/mL", 1e-3}, {"Bq/mL", 1e-6}}};
const Dimension RATE_CPS{"cps", {{"cps", 1.0}, {"kcps", 1e3}}};

std::string key_suffix(const std::string& unit) {
  std::string s;
  for (char c : unit) s += c == '/' ? std::string("_per_") : std::string(1, c);
  return s;
}

std::string unit_list(const Dimension& d) {
  std::string s;
  for (const auto& [u, f] : d.units) s += (s.empty() ? "" : ", ") + u;
  return s;
}

class Validator {
 public:
  explicit Validator(std::string file) : file_(std::move(file)) {}

  void problem(const std::string& path, const std::string& value, const std::string& expected) {
    add(file_ + ": " + path + " is " + models::quote_value(value) + "; expected " + expected);
  }
  //! A name (protocol) within the limits, in UTF-8 without control characters.
  bool name(const std::string& path, const std::string& n) {
    const std::string p = name_problem(n);
    if (!p.empty()) problem(path, "'" + models::quote_value(n) + "' (" + p + ")", "a name of 1 to " +
                            std::to_string(MAX_NAME_BYTES) + " bytes of UTF-8 text");
    return p.empty();
  }
  //! A name that becomes a key of the results store (patient id; VOI and protocol names with their
  //! budget prefixes: max_bytes, lutdose/io/store_names.h): also at most max_bytes bytes.
  bool key_name(const std::string& path, const std::string& n, std::size_t max_bytes = STORE_NAME_BYTES) {
    const std::string e = key_name_expected(n, "a name of UTF-8 text", max_bytes);
    if (!e.empty()) problem(path, "'" + n + "'", e);
    return e.empty();
  }
  //! At most `limit` entries in an array or object.
  bool count(const json& j, const std::string& path, size_t limit, const std::string& what) {
    if (j.size() <= limit) return true;
    problem(path, std::to_string(j.size()) + " " + what, "at most " + std::to_string(limit) + " (the limit)");
    return false;
  }
  void problem_text(const std::string& text) { add(file_ + ": " + text); }
  const std::vector<std::string>& problems() const { return problems_; }

  // Unknown keys of an object are problems; `allowed` may name quantities (base names).
  void keys(const json& obj, const std::string& path, const std::set<std::string>& allowed,
            const std::vector<std::pair<std::string, const Dimension*>>& quantities = {}) {
    std::string expected;
    for (auto it = obj.begin(); it != obj.end(); ++it) {
      const std::string& k = it.key();
      if (allowed.count(k)) continue;
      bool ok = false;
      for (const auto& [base, dim] : quantities) {
        if (k == base) ok = true;
        for (const auto& [u, f] : dim->units)
          if (k == base + "_" + key_suffix(u)) ok = true;
      }
      if (!ok) {
        if (expected.empty()) {
          for (const auto& a : allowed) expected += (expected.empty() ? "" : ", ") + a;
          for (const auto& [base, dim] : quantities)
            expected += (expected.empty() ? "" : ", ") + base + "_" + key_suffix(dim->canonical);
        }
        problem(join(path, models::quote_value(k)), "an unknown key", "one of: " + expected);
      }
    }
  }

  bool is_object(const json& j, const std::string& path) {
    if (j.is_object()) return true;
    problem(path, "'" + j.dump() + "'", "an object { ... }");
    return false;
  }

  // A quantity: "base_UNIT": number, or "base": "number unit". NaN when absent. With a range,
  // values outside it are problems too.
  double quantity(const json& obj, const std::string& path, const std::string& base,
                  const Dimension& dim, bool required, double lo, bool lo_inclusive,
                  const PlausibleRange* range = nullptr) {
    double value = NaN;
    std::string found;
    for (auto it = obj.begin(); it != obj.end(); ++it) {
      const std::string& k = it.key();
      double factor = 0;
      std::string unit;
      if (k == base) {
        if (!it->is_string()) {
          problem(join(path, k), "'" + it->dump() + "'",
                  "a text \"number unit\" with a unit of " + unit_list(dim) + " (or the key " + base +
                      "_" + key_suffix(dim.canonical) + " with a number)");
          return NaN;
        }
        std::istringstream in(it->get<std::string>());
        double x;
        if (!(in >> x) || !(in >> unit)) {
          problem(join(path, k), "'" + it->get<std::string>() + "'", "\"number unit\", e.g. \"1 " + std::string(dim.canonical) + "\"");
          return NaN;
        }
        std::string extra;
        if (in >> extra) {
          problem(join(path, k), "'" + it->get<std::string>() + "'", "\"number unit\"");
          return NaN;
        }
        for (const auto& [u, f] : dim.units)
          if (u == unit) factor = f;
        if (factor == 0) {
          problem(join(path, k), "'" + it->get<std::string>() + "' (unknown unit '" + unit + "')",
                  "a unit of " + unit_list(dim));
          return NaN;
        }
        if (!found.empty()) problem(join(path, k), "given twice (also as " + found + ")", "one of them");
        found = k;
        value = x * factor;
      } else {
        for (const auto& [u, f] : dim.units)
          if (k == base + "_" + key_suffix(u)) factor = f;
        if (factor == 0) continue;
        if (!it->is_number()) {
          problem(join(path, k), "'" + it->dump() + "'", "a number");
          return NaN;
        }
        if (!found.empty()) problem(join(path, k), "given twice (also as " + found + ")", "one of them");
        found = k;
        value = it->get<double>() * factor;
      }
    }
    if (found.empty()) {
      if (required)
        problem(join(path, base + "_" + key_suffix(dim.canonical)), "missing",
                "a value (or \"" + base + "\": \"number unit\")");
      return NaN;
    }
    if (!std::isfinite(value) || (lo_inclusive ? value < lo : value <= lo)) {
      problem(join(path, found), format_number(value) + " " + dim.canonical,
              std::string("a finite value ") + (lo_inclusive ? ">= " : "> ") + format_number(lo) + " " +
                  dim.canonical);
      return NaN;
    }
    if (range && !range->contains(value)) {
      problem(join(path, found), format_number(value) + " " + dim.canonical, "a value " + range->text());
      return NaN;
    }
    return value;
  }

  // A plain number "key" of obj within range, stored in out; absent: out unchanged (a problem if required).
  void number_in(const json& obj, const std::string& path, const std::string& key, const PlausibleRange& range,
                 double& out, bool required = false) {
    if (!obj.contains(key)) {
      if (required) problem(join(path, key), "missing", "a number " + range.text());
      return;
    }
    const json& x = obj[key];
    if (x.is_number() && range.contains(x.get<double>())) out = x.get<double>();
    else problem(join(path, key), "'" + x.dump() + "'", "a number " + range.text());
  }

  std::string string(const json& obj, const std::string& path, const std::string& key, bool required,
                     const std::string& fallback = "") {
    if (!obj.contains(key)) {
      if (required) problem(join(path, key), "missing", "a text value");
      return fallback;
    }
    if (!obj[key].is_string()) {
      problem(join(path, key), "'" + obj[key].dump() + "'", "a text value");
      return fallback;
    }
    return obj[key].get<std::string>();
  }

  std::string choice(const json& obj, const std::string& path, const std::string& key,
                     const std::vector<std::string>& choices, const std::string& fallback) {
    const std::string v = string(obj, path, key, false, fallback);
    for (const auto& c : choices)
      if (v == c) return v;
    std::string list;
    for (const auto& c : choices) list += (list.empty() ? "" : ", ") + c;
    problem(join(path, key), "'" + v + "'", "one of " + list);
    return fallback;
  }

  static std::string join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }

  //! Whether a quantity is written in the object in any of its forms (valid or not).
  static bool present(const json& obj, const std::string& base, const Dimension& dim) {
    if (!obj.is_object()) return false;
    if (obj.contains(base)) return true;
    for (const auto& [u, f] : dim.units)
      if (obj.contains(base + "_" + key_suffix(u))) return true;
    return false;
  }

 private:
  // Each problem once, in the order found (a hash set keeps this linear in the problems).
  void add(const std::string& text) {
    if (seen_.insert(text).second) problems_.push_back(text);
  }

  std::string file_;
  std::vector<std::string> problems_;
  std::unordered_set<std::string> seen_;
};

std::vector<double> number_array(Validator& v, const json& obj, const std::string& path,
                                 const std::string& key, bool required) {
  std::vector<double> out;
  if (!obj.contains(key)) {
    if (required) v.problem(Validator::join(path, key), "missing", "an array of numbers");
    return out;
  }
  const json& a = obj[key];
  if (!a.is_array()) {
    v.problem(Validator::join(path, key), "'" + a.dump() + "'", "an array of numbers");
    return out;
  }
  for (size_t i = 0; i < a.size(); ++i) {
    if (!a[i].is_number()) {
      v.problem(Validator::join(path, key) + "[" + std::to_string(i) + "]", "'" + a[i].dump() + "'",
                "a number");
      out.push_back(NaN);
    } else {
      out.push_back(a[i].get<double>());
    }
  }
  return out;
}

Protocol read_protocol(Validator& v, const json& j, const std::string& path, const std::string& name) {
  Protocol p;
  p.name = name;
  if (!v.is_object(j, path)) return p;
  v.keys(j, path, {"dead_time", "recovery"}, {{"cf", &CF_CPS_PER_MBQ}, {"cf_u", &CF_CPS_PER_MBQ}});
  p.cf_cps_per_MBq = v.quantity(j, path, "cf", CF_CPS_PER_MBQ, false, 0.0, false, &CF_RANGE_CPS_PER_MBQ);
  p.cf_given = Validator::present(j, "cf", CF_CPS_PER_MBQ);
  p.recovery_given = j.contains("recovery");
  const double u = v.quantity(j, path, "cf_u", CF_CPS_PER_MBQ, false, 0.0, true, &CF_RANGE_CPS_PER_MBQ);
  p.cf_u_cps_per_MBq = std::isnan(u) ? 0.0 : u;
  if (j.contains("dead_time")) {
    const std::string dp = path + ".dead_time";
    const json& d = j["dead_time"];
    if (v.is_object(d, dp)) {
      v.keys(d, dp, {"model"}, {{"tau", &DEAD_TIME_S}});
      const std::string m =
          v.choice(d, dp, "model", {"none", "paralysable", "non-paralysable"}, "none");
      p.dead_time = m == "paralysable"       ? DeadTimeModel::paralysable
                    : m == "non-paralysable" ? DeadTimeModel::non_paralysable
                                             : DeadTimeModel::none;
      if (p.dead_time != DeadTimeModel::none) {
        p.tau_s = v.quantity(d, dp, "tau", DEAD_TIME_S, true, 0.0, false);
        if (std::isnan(p.tau_s)) p.tau_s = 0;
      }
    }
  }
  if (j.contains("recovery")) {
    const std::string rp = path + ".recovery";
    const json& r = j["recovery"];
    if (v.is_object(r, rp)) {
      v.keys(r, rp, {"volume_mL", "rc", "rc_u", "floor"});
      RecoveryTable t;
      t.volume_mL = number_array(v, r, rp, "volume_mL", true);
      t.rc = number_array(v, r, rp, "rc", true);
      t.rc_u = number_array(v, r, rp, "rc_u", false);
      if (r.contains("floor")) {
        if (r["floor"].is_number()) t.floor = r["floor"].get<double>();
        else v.problem(rp + ".floor", "'" + r["floor"].dump() + "'", "a number in (0, 1]");
      }
      const auto problems = t.problems(rp);
      for (const auto& pr : problems) v.problem_text(pr);
      if (problems.empty()) p.recovery = t;
    }
  }
  return p;
}

// The optional scatter window of a counts measurement: scatter_window_counts (raw counts W >= 0)
// and scatter_window_k (the subtraction factor k >= 0), both or neither, only with counts.
void read_scatter_window(Validator& v, const json& j, const std::string& path, CaseMeasurement& m) {
  const bool w = j.contains("scatter_window_counts"), k = j.contains("scatter_window_k");
  if (!w && !k) return;
  if (w != k || m.kind != "counts") {
    v.problem(path + (w ? ".scatter_window_counts" : ".scatter_window_k"), "given",
              "scatter_window_counts and scatter_window_k together, with counts");
    return;
  }
  for (const auto& [key, out] : {std::make_pair("scatter_window_counts", &m.scatter_window_counts),
                                 std::make_pair("scatter_window_k", &m.scatter_window_k)}) {
    const json& x = j[key];
    if (x.is_number() && std::isfinite(x.get<double>()) && x.get<double>() >= 0) *out = x.get<double>();
    else v.problem(path + "." + key, "'" + x.dump() + "'", "a finite number >= 0");
  }
}

// A choice option of the case file, through the one mapping of option texts to typed fields
// (set_choice_option, shared with the command line). Absent: the field keeps its default.
void choose(Validator& v, const json& obj, const std::string& path, const std::string& key, const OptionFields& f) {
  if (!obj.contains(key)) return;
  const std::string full = Validator::join(path, key);
  if (!obj[key].is_string()) {
    v.problem(full, "'" + obj[key].dump() + "'", "a text value");
    return;
  }
  const std::string text = obj[key].get<std::string>();
  if (const auto expected = set_choice_option(f, full, text)) v.problem(full, "'" + text + "'", *expected);
}

void read_fit_options(Validator& v, const json& j, const std::string& path, const OptionFields& f,
                      std::string& model, std::string& population) {
  if (!v.is_object(j, path)) return;
  FitOptions& o = f.fit;
  model = v.string(j, path, "model", false);
  population = v.string(j, path, "population", false);
  v.keys(j, path, {"function", "functions", "error_model", "aicc_k", "trapezoid_head", "reject_correlated",
                   "trapezoid_body", "trapezoid_tail", "integration", "model_averaging", "combined_sigma0_MBq",
                   "combined_b", "reduced", "model", "kinetics", "population"});
  // a population file fits every VOI by MAP: individual kinetics written beside it contradicts it
  // (previous-cycles with it is refused by validate(), as on the command line)
  if (!population.empty() && j.contains("kinetics") && j["kinetics"] == "individual")
    v.problem(path + ".kinetics", "'individual'",
              "fit.kinetics left out with fit.population: a population file fits every VOI by MAP with its "
              "population as prior (choose one)");
  if (j.contains("population") && j["population"].is_string() && population.empty())
    v.problem(path + ".population", "''", "a population file (lutdose population learn), relative to the case file");
  for (const char* key : {"reduced", "function", "error_model", "trapezoid_body", "trapezoid_tail", "integration",
                          "aicc_k", "trapezoid_head", "kinetics"})
    choose(v, j, path, key, f);
  if (j.contains("functions")) {
    if (!j["functions"].is_array() || j["functions"].empty()) {
      v.problem(path + ".functions", "'" + j["functions"].dump() + "'", "a non-empty array of function ids");
    } else {
      o.candidates.clear();
      for (size_t i = 0; i < j["functions"].size(); ++i) {
        const json& id = j["functions"][i];
        if (!id.is_string() || !models::find_exponential(id.get<std::string>()))
          v.problem(path + ".functions[" + std::to_string(i) + "]", "'" + id.dump() + "'",
                    "a function id (E1p, E1, E2u, E2, E2b, E3u)");
        else
          o.candidates.push_back(id.get<std::string>());
      }
    }
  }
  for (const auto& [key, out] : {std::make_pair("combined_sigma0_MBq", &o.combined_sigma0_MBq),
                                 std::make_pair("combined_b", &o.combined_b)})
    if (j.contains(key)) {
      if (j[key].is_number() && j[key].get<double>() >= 0) *out = j[key].get<double>();
      else v.problem(path + "." + key, "'" + j[key].dump() + "'", "a number >= 0");
    }
  for (const auto& [key, out] : {std::make_pair("model_averaging", &o.model_averaging),
                                 std::make_pair("reject_correlated", &o.reject_on_correlation)})
    if (j.contains(key)) {
      if (j[key].is_boolean()) *out = j[key].get<bool>();
      else v.problem(path + "." + key, "'" + j[key].dump() + "'", "true or false");
    }
}

void read_dose_options(Validator& v, const json& j, const std::string& path, const OptionFields& f) {
  if (!v.is_object(j, path)) return;
  DoseOptions& o = f.dose;
  v.keys(j, path, {"tumour_method", "sphere_composition", "organ_density_g_per_mL", "mass_scaling",
                   "cross_scaling", "svalues", "marrow"});
  for (const char* key : {"tumour_method", "sphere_composition", "mass_scaling", "cross_scaling"})
    choose(v, j, path, key, f);
  if (j.contains("organ_density_g_per_mL")) {  // its range is checked by validate(), as on the command line
    if (j["organ_density_g_per_mL"].is_number()) o.organ_density_g_per_mL = j["organ_density_g_per_mL"].get<double>();
    else v.problem(Validator::join(path, "organ_density_g_per_mL"), "'" + j["organ_density_g_per_mL"].dump() + "'",
                   "a number " + DENSITY_RANGE_G_PER_ML.text());
  }
  const std::string table = v.string(j, path, "svalues", false);
  o.svalue_table = table;  // resolved against the case file's folder by the caller
  if (j.contains("marrow") && v.is_object(j["marrow"], path + ".marrow")) {
    const json& m = j["marrow"];
    const std::string mp = path + ".marrow";
    v.keys(m, mp, {"method", "rmblr", "rmecff", "l2l4_fraction", "l2l4_voi"}, {{"mass", &MASS_G}});
    choose(v, m, mp, "method", f);
    auto fraction = [&](const char* key, double& out) {
      if (!m.contains(key)) return;
      if (m[key].is_number() && m[key].get<double>() > 0 && m[key].get<double>() <= 1)
        out = m[key].get<double>();
      else
        v.problem(mp + "." + key, "'" + m[key].dump() + "'", "a number > 0 and <= 1");
    };
    v.number_in(m, mp, "rmblr", RMBLR_RANGE, o.marrow.rmblr);
    fraction("rmecff", o.marrow.rmecff);
    fraction("l2l4_fraction", o.marrow.l2l4_fraction);
    o.marrow.mass_g = v.quantity(m, mp, "mass", MASS_G, false, 0.0, false, &MASS_RANGE_G);
    o.marrow.l2l4_voi = v.string(m, mp, "l2l4_voi", false, "marrow_l2l4");
    if (o.marrow.method == MarrowMethod::image && std::isnan(o.marrow.l2l4_fraction))
      v.problem(mp + ".l2l4_fraction", "missing",
                "the fraction of the red marrow in the L2-L4 VOI, for the image method");
  }
}

// Date-times of one case file, in hours since 1970-01-01 UTC (docs/case-file.md, "Dates and times"):
// a written offset is used as given; a time without one is local time of the file's time_zone, or,
// without a time_zone, a reading of one clock without daylight-saving changes. Without a time_zone
// all date-times must be written alike (all with offsets or none), as a mix has no common clock.
class TimeReader {
 public:
  explicit TimeReader(const date::time_zone* zone) : zone_(zone) {}

  bool read(Validator& v, const std::string& path, const std::string& text, double& hours) {
    WrittenTime w;
    const std::string why = parse_written_time(text, w);
    if (!why.empty()) {
      v.problem(path, "'" + text + "'", why);
      return false;
    }
    if (w.has_offset) {
      hours = w.clock_h - w.offset_h;
    } else if (zone_) {
      if (!from_zone(v, path, text, w.clock_h, hours)) return false;
    } else {
      hours = w.clock_h;
    }
    if (!zone_ && !first_path_.empty() && w.has_offset != first_has_offset_) {
      v.problem(path, "'" + text + "' (" + (w.has_offset ? "with" : "without") + " a UTC offset)",
                std::string("date-times written alike: ") + first_path_ + " has " +
                    (first_has_offset_ ? "one" : "none") + " (or a top-level \"time_zone\", e.g. \"Europe/Berlin\")");
      return false;
    }
    if (first_path_.empty()) first_path_ = path, first_has_offset_ = w.has_offset;
    return true;
  }

 private:
  bool from_zone(Validator& v, const std::string& path, const std::string& text, double clock_h, double& hours) {
    const auto whole_s = static_cast<long long>(std::floor(clock_h * 3600.0));
    const date::local_seconds local{std::chrono::seconds{whole_s}};
    const date::local_info info = zone_->get_info(local);
    if (info.result != date::local_info::unique) {
      v.problem(path, "'" + text + "'",
                std::string("a local time that exists once in ") + std::string(zone_->name()) +
                    (info.result == date::local_info::nonexistent
                         ? " (the clocks skip it at the change to daylight-saving time)"
                         : " (it occurs twice when the clocks go back; write its UTC offset)"));
      return false;
    }
    hours = clock_h - static_cast<double>(info.first.offset.count()) / 3600.0;
    return true;
  }

  const date::time_zone* zone_;
  std::string first_path_;
  bool first_has_offset_ = false;
};

// Time of an event: "KEY": ISO date-time (needs the reference) or "KEY_h": hours after it.
double event_time_h(Validator& v, TimeReader& clock, const json& obj, const std::string& path, const std::string& key,
                    bool has_reference, double reference_h, bool required) {
  const bool iso = obj.contains(key);
  const bool rel = obj.contains(key + "_h");
  if (iso && rel) {
    v.problem(path + "." + key, "given twice (also as " + key + "_h)", "one of them");
    return NaN;
  }
  if (rel) {
    const json& x = obj[key + "_h"];
    if (!x.is_number() || !(std::abs(x.get<double>()) <= TIME_RANGE_H.hi)) {
      v.problem(path + "." + key + "_h", "'" + x.dump() + "'",
                "hours after the reference time, at most " + format_number(TIME_RANGE_H.hi) + " h before or after");
      return NaN;
    }
    return x.get<double>();
  }
  if (iso) {
    double h;
    if (!obj[key].is_string()) {
      v.problem(path + "." + key, "'" + obj[key].dump() + "'", "a date-time YYYY-MM-DDTHH:MM[:SS][Z|+HH:MM]");
      return NaN;
    }
    if (!clock.read(v, path + "." + key, obj[key].get<std::string>(), h)) return NaN;
    if (!has_reference) {
      v.problem(path + "." + key, "'" + obj[key].get<std::string>() + "'",
                "a reference_time in the cycle to measure it from (or " + key + "_h)");
      return NaN;
    }
    return h - reference_h;
  }
  if (required) v.problem(path + "." + key, "missing", "a date-time, or " + key + "_h in hours after the reference time");
  return NaN;
}

// Where a cycle's times are measured from: its reference time (hours since 1970 UTC), when given.
struct CycleClock {
  TimeReader& clock;
  bool has_reference = false;
  double reference_h = 0;
};

void read_cycle_number(Validator& v, const json& j, const std::string& path, CaseCycle& c) {
  if (!j.contains("cycle") || !j["cycle"].is_number_integer() || j["cycle"].get<long long>() < 1 ||
      (j["cycle"].is_number_unsigned() && j["cycle"].get<unsigned long long>() > MAX_CYCLE_NUMBER) ||
      j["cycle"].get<long long>() > static_cast<long long>(MAX_CYCLE_NUMBER))
    v.problem(path + ".cycle", j.contains("cycle") ? "'" + j["cycle"].dump() + "'" : "missing",
              "a whole number from 1 to " + std::to_string(MAX_CYCLE_NUMBER));
  else
    c.cycle = static_cast<int>(j["cycle"].get<long long>());
}

void read_administered(Validator& v, CycleClock& cc, const json& j, const std::string& path, CaseCycle& c) {
  TimeReader& clock = cc.clock;
  const bool has_reference = cc.has_reference;
  const double reference_h = cc.reference_h;
  if (!j.contains("administered")) {
    v.problem(path + ".administered", "missing", "{\"activity_MBq\": ...}");
  } else if (v.is_object(j["administered"], path + ".administered")) {
    const json& a = j["administered"];
    const std::string ap = path + ".administered";
    v.keys(a, ap, {"measured_at", "measured_at_h", "residual_measured_at", "residual_measured_at_h"},
           {{"activity", &ACTIVITY_MBQ}, {"residual", &ACTIVITY_MBQ}});
    c.administered_measured_MBq = v.quantity(a, ap, "activity", ACTIVITY_MBQ, true, 0.0, false, &ACTIVITY_RANGE_MBQ);
    const double r = v.quantity(a, ap, "residual", ACTIVITY_MBQ, false, 0.0, true, &ACTIVITY_RANGE_MBQ);
    c.residual_measured_MBq = std::isnan(r) ? 0.0 : r;
    const double at = event_time_h(v, clock, a, ap, "measured_at", has_reference, reference_h, false);
    c.administered_measured_at_h = std::isnan(at) ? 0.0 : at;
    const double rat = event_time_h(v, clock, a, ap, "residual_measured_at", has_reference, reference_h, false);
    c.residual_measured_at_h = std::isnan(rat) ? 0.0 : rat;
  }
}

void read_protocol_and_conventions(Validator& v, const json& j, const std::string& path,
                                   const std::map<std::string, Protocol>& protocols, CaseCycle& c) {
  c.protocol = v.string(j, path, "protocol", false);
  if (!c.protocol.empty()) v.name(path + ".protocol", c.protocol);
  if (!c.protocol.empty() && !protocols.count(c.protocol)) {
    std::string names;
    for (const auto& [n, p] : protocols) names += (names.empty() ? "" : ", ") + n;
    v.problem(path + ".protocol", "'" + c.protocol + "'",
              "a protocol defined under \"protocols\" (" + (names.empty() ? "none defined" : names) + ")");
  }
  c.timing = v.choice(j, path, "timing", {"acquisition-start", "mid-frame"}, "acquisition-start") ==
                     "acquisition-start"
                 ? TimingConvention::acquisition_start
                 : TimingConvention::mid_frame;
  const std::string dc =
      v.choice(j, path, "decay_corrected_to", {"none", "acquisition-start", "reference"}, "none");
  c.decay_corrected_to = dc == "none"                ? DecayCorrection::none
                         : dc == "acquisition-start" ? DecayCorrection::acquisition_start
                                                     : DecayCorrection::reference;
}

void read_cycle_vois(Validator& v, const json& j, const std::string& path, CaseCycle& c) {
  if (j.contains("vois") && v.is_object(j["vois"], path + ".vois") &&
      v.count(j["vois"], path + ".vois", MAX_VOIS_PER_CYCLE, "VOIs")) {
    for (auto it = j["vois"].begin(); it != j["vois"].end(); ++it) {
      const std::string vp = path + ".vois." + models::quote_value(it.key());
      if (!v.key_name(vp, it.key(), STORE_VOI_NAME_BYTES)) continue;
      CaseVoi cv;
      if (v.is_object(*it, vp)) {
        v.keys(*it, vp, {"recovery"}, {{"volume", &VOLUME_ML}, {"volume_u", &VOLUME_ML}, {"mass", &MASS_G}});
        const double vu = v.quantity(*it, vp, "volume_u", VOLUME_ML, false, 0.0, true, &VOLUME_RANGE_ML);
        cv.volume_u_mL = std::isnan(vu) ? 0.0 : vu;
        cv.volume_mL = v.quantity(*it, vp, "volume", VOLUME_ML, false, 0.0, false, &VOLUME_RANGE_ML);
        cv.volume_given = Validator::present(*it, "volume", VOLUME_ML);
        cv.mass_g = v.quantity(*it, vp, "mass", MASS_G, false, 0.0, false, &MASS_RANGE_G);
        if (it->contains("recovery")) {
          if ((*it)["recovery"].is_boolean()) cv.recovery = (*it)["recovery"].get<bool>();
          else v.problem(vp + ".recovery", "'" + (*it)["recovery"].dump() + "'", "true or false");
        }
      }
      c.vois[it.key()] = cv;
    }
  }
}

void read_blood(Validator& v, CycleClock& cc, const json& j, const std::string& path, CaseCycle& c) {
  TimeReader& clock = cc.clock;
  const bool has_reference = cc.has_reference;
  const double reference_h = cc.reference_h;
  if (j.contains("blood") && v.is_object(j["blood"], path + ".blood")) {
    const json& b = j["blood"];
    const std::string bp = path + ".blood";
    v.keys(b, bp, {"hematocrit", "samples"});
    BloodData blood;
    v.number_in(b, bp, "hematocrit", HEMATOCRIT_RANGE, blood.hematocrit);
    const bool samples_array = b.contains("samples") && b["samples"].is_array();
    if (samples_array && !v.count(b["samples"], bp + ".samples", MAX_POINTS_PER_TAC, "samples")) {
      // beyond the limit: reported by count()
    } else if (!samples_array || b["samples"].empty()) {
      v.problem(bp + ".samples", b.contains("samples") ? "'" + b["samples"].dump() + "'" : "missing",
                "a non-empty array of {\"time\" or \"time_h\", \"concentration_MBq_per_mL\"}");
    } else {
      bool all_u = true;
      for (size_t i = 0; i < b["samples"].size(); ++i) {
        const json& smp = b["samples"][i];
        const std::string sp = bp + ".samples[" + std::to_string(i) + "]";
        if (!v.is_object(smp, sp)) continue;
        v.keys(smp, sp, {"time", "time_h"},
               {{"concentration", &CONC_MBQ_PER_ML}, {"concentration_u", &CONC_MBQ_PER_ML}});
        const double t = event_time_h(v, clock, smp, sp, "time", has_reference, reference_h, true);
        if (!std::isnan(t) && t < 0)
          v.problem(sp + ".time", format_number(t) + " h", "a sample at or after the reference time");
        if (!std::isnan(t) && !blood.time_h.empty() && !(t > blood.time_h.back()))
          v.problem(sp + ".time", format_number(t) + " h",
                    "samples in increasing time order (previous " + format_number(blood.time_h.back()) + " h)");
        const double conc = v.quantity(smp, sp, "concentration", CONC_MBQ_PER_ML, true, 0.0, true,
                                       &CONCENTRATION_RANGE_MBQ_PER_ML);
        const double u = v.quantity(smp, sp, "concentration_u", CONC_MBQ_PER_ML, false, 0.0, false,
                                    &CONCENTRATION_RANGE_MBQ_PER_ML);
        all_u = all_u && !std::isnan(u);
        blood.time_h.push_back(t);
        blood.concentration_MBq_per_mL.push_back(conc);
        blood.concentration_u_MBq_per_mL.push_back(u);
      }
      if (!all_u) blood.concentration_u_MBq_per_mL.clear();
    }
    c.blood = blood;
  }
}

// One measurement of a time point (counts, activity or concentration, with volume and mass).
CaseMeasurement read_measurement(Validator& v, const json::const_iterator& it, const std::string& mp) {
  CaseMeasurement m;
  m.path = mp;
  v.keys(*it, mp, {"counts", "scatter_window_counts", "scatter_window_k"},
         {{"activity", &ACTIVITY_MBQ}, {"activity_u", &ACTIVITY_MBQ},
          {"concentration", &CONC_MBQ_PER_ML}, {"volume", &VOLUME_ML}, {"mass", &MASS_G}});
  int kinds = 0;
  if (it->contains("counts")) {
    ++kinds;
    m.kind = "counts";
    const json& n = (*it)["counts"];
    if (!n.is_number() || !std::isfinite(n.get<double>()) || n.get<double>() < 0)
      v.problem(mp + ".counts", "'" + n.dump() + "'", "a finite number of counts >= 0");
    else if (!COUNTS_RANGE.contains(n.get<double>()))
      v.problem(mp + ".counts", "'" + n.dump() + "'", "a number of counts " + COUNTS_RANGE.text());
    else
      m.value = n.get<double>();
  }
  const double a = v.quantity(*it, mp, "activity", ACTIVITY_MBQ, false, 0.0, true, &ACTIVITY_RANGE_MBQ);
  bool has_activity = false, has_conc = false;
  for (auto k = it->begin(); k != it->end(); ++k) {
    if (k.key().rfind("activity", 0) == 0 && k.key().rfind("activity_u", 0) != 0) has_activity = true;
    if (k.key().rfind("concentration", 0) == 0) has_conc = true;
  }
  if (has_activity) {
    ++kinds;
    m.kind = "activity";
    m.value = a;
  }
  const double conc = v.quantity(*it, mp, "concentration", CONC_MBQ_PER_ML, false, 0.0, true,
                                 &CONCENTRATION_RANGE_MBQ_PER_ML);
  if (has_conc) {
    ++kinds;
    m.kind = "concentration";
    m.value = conc;
  }
  if (kinds != 1)
    v.problem(mp, kinds == 0 ? "without a measurement" : "with several measurements",
              "exactly one of counts, activity_MBq, concentration_MBq_per_mL");
  m.activity_u_MBq = v.quantity(*it, mp, "activity_u", ACTIVITY_MBQ, false, 0.0, false, &ACTIVITY_RANGE_MBQ);
  read_scatter_window(v, *it, mp, m);
  m.volume_mL = v.quantity(*it, mp, "volume", VOLUME_ML, false, 0.0, false, &VOLUME_RANGE_ML);
  m.volume_given = Validator::present(*it, "volume", VOLUME_ML);
  m.mass_g = v.quantity(*it, mp, "mass", MASS_G, false, 0.0, false, &MASS_RANGE_G);
  return m;
}

// One time point; `previous` is the one before (nullptr for the first). Nothing when it has more
// VOIs than the limit (reported).
std::optional<CaseTimepoint> read_timepoint(Validator& v, CycleClock& cc, const json& t, const std::string& tp_path, size_t i,
                             const CaseTimepoint* previous) {
  TimeReader& clock = cc.clock;
  const bool has_reference = cc.has_reference;
  const double reference_h = cc.reference_h;
  CaseTimepoint tp;
  tp.path = tp_path;
  v.keys(t, tp_path, {"start", "start_h", "vois"}, {{"duration", &DURATION_S}, {"observed_rate", &RATE_CPS}});
  tp.start_h = event_time_h(v, clock, t, tp_path, "start", has_reference, reference_h, true);
  if (!std::isnan(tp.start_h) && tp.start_h > TIME_RANGE_H.hi)
    v.problem(tp_path + (t.contains("start") ? ".start" : ".start_h"), format_number(tp.start_h) + " h",
              "a time after the reference time " + TIME_RANGE_H.text());
  if (!std::isnan(tp.start_h) && tp.start_h < 0)
    v.problem(tp_path + (t.contains("start") ? ".start" : ".start_h"),
              (t.contains("start") ? "'" + t["start"].get<std::string>() + "' (" : "'") +
                  format_number(tp.start_h) + " h after the reference time" + (t.contains("start") ? ")" : "'"),
              "an acquisition at or after the reference time");
  if (i > 0 && !std::isnan(tp.start_h) && previous && !std::isnan(previous->start_h) &&
      !(tp.start_h > previous->start_h))
    v.problem(tp_path + ".start", format_number(tp.start_h) + " h",
              "time points in increasing order (previous " + format_number(previous->start_h) + " h)");
  tp.duration_s = v.quantity(t, tp_path, "duration", DURATION_S, false, 0.0, false, &FRAME_DURATION_RANGE_S);
  tp.duration_given = Validator::present(t, "duration", DURATION_S);
  tp.observed_rate_cps = v.quantity(t, tp_path, "observed_rate", RATE_CPS, false, 0.0, true);
  tp.observed_rate_given = Validator::present(t, "observed_rate", RATE_CPS);
  if (!t.contains("vois") || !t["vois"].is_object() || t["vois"].empty()) {
    v.problem(tp_path + ".vois", t.contains("vois") ? "'" + t["vois"].dump() + "'" : "missing",
              "an object of VOI measurements {\"liver\": {\"counts\": ...}, ...}");
    return tp;
  }
  if (!v.count(t["vois"], tp_path + ".vois", MAX_VOIS_PER_CYCLE, "VOIs")) return std::nullopt;
  for (auto it = t["vois"].begin(); it != t["vois"].end(); ++it) {
    const std::string mp = tp_path + ".vois." + models::quote_value(it.key());
    if (!v.key_name(mp, it.key(), STORE_VOI_NAME_BYTES)) continue;
    if (!v.is_object(*it, mp)) continue;
    tp.vois[it.key()] = read_measurement(v, it, mp);
    tp.voi_order.push_back(it.key());
  }
  return tp;
}

// Every VOI at every time point, and every static VOI measured.
void check_vois_measured(Validator& v, const std::string& path, const CaseCycle& c) {
  std::set<std::string> all;
  for (const auto& tp : c.timepoints)
    for (const auto& [name, m] : tp.vois) all.insert(name);
  for (const auto& tp : c.timepoints)
    for (const auto& name : all)
      if (!tp.vois.empty() && !tp.vois.count(name))
        v.problem(tp.path + ".vois." + name, "missing",
                  "a measurement of VOI " + name + " at every time point (it is measured at others)");
  for (const auto& [name, cv] : c.vois)
    if (!all.count(name)) v.problem(path + ".vois." + name, "a VOI without measurements", "a VOI measured in the time points");
}

// Counts need a protocol with a CF and a duration (and the observed rate with dead time).
void check_counts(Validator& v, const std::string& path, const CaseCycle& c, const Protocol* prot,
                  const CaseTimepoint& tp) {
  bool counts = false;
  for (const auto& [name, m] : tp.vois) counts = counts || m.kind == "counts";
  if (counts) {
    if (!prot)
      v.problem(path + ".protocol", c.protocol.empty() ? "missing" : "'" + c.protocol + "'",
                "a protocol with a calibration factor, as " + tp.path + " gives counts");
    else if (!prot->cf_given)
      v.problem("protocols." + prot->name + ".cf_cps_per_MBq", "missing",
                "a calibration factor > 0 cps/MBq, as " + tp.path + " gives counts");
    if (!tp.duration_given)
      v.problem(tp.path + ".duration_s", "missing", "the frame duration > 0 s, as the time point gives counts");
    if (prot && prot->dead_time != DeadTimeModel::none && prot->tau_s > 0) {
      if (!tp.observed_rate_given) {
        v.problem(tp.path + ".observed_rate_cps", "missing",
                  "the camera's observed count rate for the dead-time correction of protocol " + prot->name);
      } else if (!std::isnan(tp.observed_rate_cps)) {
        try {  // saturation is a property of the input: report it with the other problems
          true_rate_cps(prot->dead_time, tp.observed_rate_cps, prot->tau_s, tp.path);
        } catch (const InputError& e) {
          v.problem_text(e.what());
        }
      }
    }
  }
}

// Concentrations need a volume; recovery a protocol with a table and a volume inside it.
void check_volumes(Validator& v, const std::string& path, const CaseCycle& c, const Protocol* prot,
                   const CaseTimepoint& tp) {
  for (const auto& [name, m] : tp.vois) {
    const CaseVoi* cv = c.vois.count(name) ? &c.vois.at(name) : nullptr;
    const double volume = !std::isnan(m.volume_mL) ? m.volume_mL : (cv ? cv->volume_mL : NaN);
    const bool volume_given = m.volume_given || (cv && cv->volume_given);
    if (m.kind == "concentration" && !volume_given)
      v.problem(m.path + ".volume_mL", "missing", "the VOI volume, to turn the concentration into activity");
    if (cv && cv->recovery) {
      if (!prot || !prot->recovery_given)
        v.problem(path + ".vois." + name + ".recovery", "true",
                  "a protocol with a recovery table (\"recovery\": {\"volume_mL\", \"rc\"})");
      else if (!volume_given)
        v.problem(m.path + ".volume_mL", "missing", "the VOI volume, for its recovery coefficient");
      else if (prot->recovery && !std::isnan(volume) && volume < prot->recovery->volume_mL.front())
        v.problem(m.path + ".volume_mL", format_number(volume) + " mL",
                  "a volume within the recovery table of protocol " + prot->name + " (smallest " +
                      format_number(prot->recovery->volume_mL.front()) +
                      " mL); RC is not extrapolated below the smallest calibrated volume");
    }
  }
}

CaseCycle read_cycle(Validator& v, TimeReader& clock, const json& j, const std::string& path,
                     const std::map<std::string, Protocol>& protocols) {
  CaseCycle c;
  c.path = path;
  if (!v.is_object(j, path)) return c;
  v.keys(j, path, {"cycle", "reference_time", "administered", "protocol", "timing",
                   "decay_corrected_to", "vois", "timepoints", "blood"});
  read_cycle_number(v, j, path, c);
  CycleClock cc{clock};
  if (j.contains("reference_time")) {
    c.reference_time = v.string(j, path, "reference_time", true);
    cc.has_reference = clock.read(v, path + ".reference_time", c.reference_time, cc.reference_h);
    if (cc.has_reference) c.reference_abs_h = cc.reference_h;
  }
  read_administered(v, cc, j, path, c);
  read_protocol_and_conventions(v, j, path, protocols, c);
  read_cycle_vois(v, j, path, c);
  read_blood(v, cc, j, path, c);
  if (!j.contains("timepoints") || !j["timepoints"].is_array() || j["timepoints"].empty()) {
    v.problem(path + ".timepoints", j.contains("timepoints") ? "'" + j["timepoints"].dump() + "'" : "missing",
              "a non-empty array of time points");
    return c;
  }
  const json& tps = j["timepoints"];
  if (!v.count(tps, path + ".timepoints", MAX_POINTS_PER_TAC, "time points")) return c;
  for (size_t i = 0; i < tps.size(); ++i) {
    const std::string tp_path = path + ".timepoints[" + std::to_string(i) + "]";
    if (!v.is_object(tps[i], tp_path)) continue;
    auto tp = read_timepoint(v, cc, tps[i], tp_path, i, c.timepoints.empty() ? nullptr : &c.timepoints.back());
    if (tp) c.timepoints.push_back(std::move(*tp));
  }
  check_vois_measured(v, path, c);
  // A value written but invalid was reported where it stands and is not reported again as missing.
  const Protocol* prot = protocols.count(c.protocol) ? &protocols.at(c.protocol) : nullptr;
  for (const auto& tp : c.timepoints) {
    check_counts(v, path, c, prot, tp);
    check_volumes(v, path, c, prot, tp);
  }
  return c;
}

// The top-level "time_zone" (an IANA name such as "Europe/Berlin"), or null when not given.
const date::time_zone* read_time_zone(Validator& v, const json& j) {
  if (!j.contains("time_zone")) return nullptr;
  const std::string name = v.string(j, "", "time_zone", false);
  const bool plain = !name.empty() && name.size() <= 64 && name.find("..") == std::string::npos &&
                     std::all_of(name.begin(), name.end(), [](char ch) {
                       return std::isalnum(static_cast<unsigned char>(ch)) || ch == '/' || ch == '_' ||
                              ch == '-' || ch == '+';
                     });
  try {
    if (plain) return date::locate_zone(name);
  } catch (const std::exception&) {  // not in the system's time-zone database
  }
  v.problem("time_zone", "'" + name + "'", "an IANA time-zone name of the system's tz database, e.g. Europe/Berlin");
  return nullptr;
}

}  // namespace

void read_patient_and_phantom(Validator& v, const json& j, CaseFile& c) {
  if (!j.contains("patient")) {
    v.problem("patient", "missing", "{\"id\": ..., \"sex\": \"male\" | \"female\"}");
  } else if (v.is_object(j["patient"], "patient")) {
    v.keys(j["patient"], "patient", {"id", "sex"}, {{"mass", &MASS_G}});
    c.body_mass_g = v.quantity(j["patient"], "patient", "mass", MASS_G, false, 0.0, false, &MASS_RANGE_G);
    c.patient_id = v.string(j["patient"], "patient", "id", true);
    if (j["patient"].contains("id") && j["patient"]["id"].is_string()) v.key_name("patient.id", c.patient_id);
    c.sex = j["patient"].contains("sex") ? v.choice(j["patient"], "patient", "sex", {"male", "female"}, "") : "";
  }
  c.phantom = v.string(j, "", "phantom", false);
  if (c.phantom.empty()) {
    if (c.sex == "male") c.phantom = "icrp110-am";
    else if (c.sex == "female") c.phantom = "icrp110-af";
    else v.problem("phantom", "missing", "a phantom (icrp110-am, icrp110-af, icrp89-male, icrp89-female) or patient.sex");
  } else {
    bool known = false;
    for (const auto& [n, d] : phantoms()) known = known || n == c.phantom;
    if (!known) v.problem("phantom", "'" + c.phantom + "'", "one of icrp110-am, icrp110-af, icrp89-male, icrp89-female");
  }
  c.dose.phantom = c.phantom;
  c.nuclide = v.string(j, "", "nuclide", false, "Lu-177");
  const double hl = v.quantity(j, "", "half_life", TIME_H, false, 0.0, false, &HALF_LIFE_RANGE_H);
  c.half_life_override_h = std::isnan(hl) ? 0.0 : hl;
}

void read_radiobiology(Validator& v, const json& r, const OptionFields& fields, CaseFile& c) {
  const std::string& path = c.path;
  v.keys(r, "radiobiology", {"tissues", "residual", "repopulation"});
  choose(v, r, "radiobiology", "residual", fields);
  if (r.contains("tissues") && v.is_object(r["tissues"], "radiobiology.tissues"))
    for (auto it = r["tissues"].begin(); it != r["tissues"].end(); ++it) {
      const std::string tp = "radiobiology.tissues." + it.key();
      if (!v.is_object(*it, tp)) continue;
      v.keys(*it, tp, {"alpha_beta_Gy", "repair_half_time_h", "source"});
      TissueParameters p;
      p.tissue = it.key();
      v.number_in(*it, tp, "alpha_beta_Gy", ALPHA_BETA_RANGE_GY, p.alpha_beta_Gy, true);
      v.number_in(*it, tp, "repair_half_time_h", REPAIR_HALF_TIME_RANGE_H, p.repair_half_time_h, true);
      p.source = it->contains("source") && (*it)["source"].is_string() ? (*it)["source"].get<std::string>()
                                                                      : "case file " + path;
      c.tissue_overrides.emplace_back(it.key(), p);
    }
  if (r.contains("repopulation") && v.is_object(r["repopulation"], "radiobiology.repopulation")) {
    const json& rp = r["repopulation"];
    v.keys(rp, "radiobiology.repopulation", {"targets", "alpha_per_Gy", "t_pot_d", "kickoff_d"});
    c.repopulation_targets = v.string(rp, "radiobiology.repopulation", "targets", false, "tumour_*");
    for (const auto& [key, out] : {std::make_pair("alpha_per_Gy", &c.repopulation_alpha_per_Gy),
                                   std::make_pair("t_pot_d", &c.repopulation_t_pot_d)}) {
      if (!rp.contains(key) || !rp[key].is_number() || !(rp[key].get<double>() > 0))
        v.problem(std::string("radiobiology.repopulation.") + key, rp.contains(key) ? "'" + rp[key].dump() + "'" : "missing",
                  "a number > 0 (no default: the parameters are not verified here)");
      else
        *out = rp[key].get<double>();
    }
    if (rp.contains("kickoff_d")) {
      if (rp["kickoff_d"].is_number() && rp["kickoff_d"].get<double>() >= 0) c.repopulation_kickoff_d = rp["kickoff_d"].get<double>();
      else v.problem("radiobiology.repopulation.kickoff_d", "'" + rp["kickoff_d"].dump() + "'", "a number >= 0 (days)");
    }
  }
}

void read_uncertainty(Validator& v, const json& u, CaseFile& c) {
  v.keys(u, "uncertainty", {"monte_carlo_samples", "seed"});
  if (u.contains("monte_carlo_samples")) {
    const json& n = u["monte_carlo_samples"];  // its range: validate_monte_carlo, as on the command line
    const bool whole = n.is_number_integer() && (!n.is_number_unsigned() || n.get<unsigned long long>() <= static_cast<unsigned long long>(LLONG_MAX));
    const auto problems = validate_monte_carlo(whole ? n.get<long long>() : -1, 0);
    if (!whole) v.problem("uncertainty.monte_carlo_samples", "'" + n.dump() + "'", "a whole number");
    else if (!problems.empty()) v.problem_text(problems.front());
    else c.mc_samples = static_cast<int>(n.get<long long>());
  }
  if (u.contains("seed")) {
    if (u["seed"].is_number_unsigned()) c.mc_seed = u["seed"].get<unsigned long long>();
    else v.problem("uncertainty.seed", "'" + u["seed"].dump() + "'", "a whole number >= 0");
  }
}

// The cycles, in increasing number and time order, none overlapping the previous one's scans.
void read_cycles(Validator& v, TimeReader& clock, const json& j, CaseFile& c) {
  const bool cycles_array = j.contains("cycles") && j["cycles"].is_array();
  if (cycles_array && !v.count(j["cycles"], "cycles", MAX_CYCLES, "cycles")) {
    // beyond the limit: reported by count()
  } else if (!cycles_array || j["cycles"].empty()) {
    v.problem("cycles", j.contains("cycles") ? "'" + j["cycles"].dump().substr(0, 40) + "'" : "missing",
              "a non-empty array of cycles");
  } else {
    for (size_t i = 0; i < j["cycles"].size(); ++i) {
      c.cycles.push_back(read_cycle(v, clock, j["cycles"][i], "cycles[" + std::to_string(i) + "]", c.protocols));
      if (i > 0 && c.cycles[i].cycle <= c.cycles[i - 1].cycle)
        v.problem("cycles[" + std::to_string(i) + "].cycle", std::to_string(c.cycles[i].cycle),
                  "cycle numbers increasing (previous " + std::to_string(c.cycles[i - 1].cycle) + ")");
      // Cycles in time order, each after the previous cycle's last scan (no overlap).
      const auto& cur = c.cycles[i];
      if (i > 0 && !std::isnan(cur.reference_abs_h) && !std::isnan(c.cycles[i - 1].reference_abs_h)) {
        const auto& prev = c.cycles[i - 1];
        double last = 0;
        for (const auto& tp : prev.timepoints)
          if (!std::isnan(tp.start_h)) last = std::max(last, tp.start_h + (std::isnan(tp.duration_s) ? 0.0 : tp.duration_s / 3600));
        if (!(cur.reference_abs_h > prev.reference_abs_h + last))
          v.problem("cycles[" + std::to_string(i) + "].reference_time", "'" + cur.reference_time + "'",
                    "a time after the previous cycle's last scan (" + prev.reference_time + " + " +
                        format_number(last) + " h): cycles in time order, not overlapping");
      }
    }
  }
}

// Residual handling and repopulation need the time between cycles.
void check_reference_times(Validator& v, const CaseFile& c) {
  if (c.residual != ResidualHandling::none || !c.repopulation_targets.empty())
    for (size_t i = 0; i < c.cycles.size(); ++i)
      if (std::isnan(c.cycles[i].reference_abs_h))
        v.problem("cycles[" + std::to_string(i) + "].reference_time", "missing",
                  "a date-time for every cycle, as radiobiology." +
                      std::string(c.residual != ResidualHandling::none ? "residual" : "repopulation") +
                      " needs the time between cycles");
}

CaseFile load_case_file(const std::string& path, bool allow_external_files) {
  CaseFile c;
  c.path = path;
  c.text = read_input_file(path, "case file", false);
  c.sha256 = sha256_hex(c.text);
  json j;
  if (const std::string problem = models::parse_json_checked(c.text, j); !problem.empty())
    throw InputError(path + ": " + problem + "; expected a lutdose case file");
  Validator v(path);
  if (!v.is_object(j, "(top level)")) throw InputError(v.problems().front());
  v.keys(j, "", {"lutdose_case_version", "patient", "phantom", "nuclide", "protocols", "fit", "dose", "cycles",
                 "uncertainty", "radiobiology", "plan", "time_zone"},
         {{"half_life", &TIME_H}});
  if (!j.contains("lutdose_case_version"))
    v.problem("lutdose_case_version", "missing", std::to_string(CASE_FORMAT_VERSION));
  else if (j["lutdose_case_version"] != CASE_FORMAT_VERSION)
    v.problem("lutdose_case_version", "'" + j["lutdose_case_version"].dump() + "'",
              std::to_string(CASE_FORMAT_VERSION) + " (the version this lutdose reads)");
  read_patient_and_phantom(v, j, c);
  if (j.contains("protocols") && v.is_object(j["protocols"], "protocols") &&
      v.count(j["protocols"], "protocols", MAX_VOIS_PER_CYCLE, "protocols"))
    for (auto it = j["protocols"].begin(); it != j["protocols"].end(); ++it)
      // a protocol's name is also a key of the store's budget ("cf:" + name)
      if (v.key_name("protocols." + models::quote_value(it.key()), it.key(), STORE_PROTOCOL_NAME_BYTES))
        c.protocols[it.key()] = read_protocol(v, *it, "protocols." + it.key(), it.key());
  // Files named in the case file: relative to its folder, confined to it (docs/case-file.md).
  auto reference = [&](const std::string& field, std::string& value) {
    if (value.empty()) return;
    try {
      value = resolve_case_reference(path, field, value, allow_external_files);
      c.named_files.emplace_back(field, value);
    } catch (const InputError& e) {
      v.problem_text(std::string(e.what()).substr(path.size() + 2));
      value.clear();
    }
  };
  const OptionFields fields{c.fit, c.dose, c.reduced, c.residual};
  if (j.contains("fit")) {
    read_fit_options(v, j["fit"], "fit", fields, c.compartment_model, c.population_file);
    // a model file (a path or a .json name); a bare name is a shipped model
    if (c.compartment_model.find('/') != std::string::npos || c.compartment_model.find(".json") != std::string::npos)
      reference("fit.model", c.compartment_model);
    reference("fit.population", c.population_file);
  }
  if (j.contains("dose")) {
    read_dose_options(v, j["dose"], "dose", fields);
    reference("dose.svalues", c.dose.svalue_table);
  }
  c.dose.body_mass_g = c.body_mass_g;
  if (j.contains("radiobiology") && v.is_object(j["radiobiology"], "radiobiology"))
    read_radiobiology(v, j["radiobiology"], fields, c);
  if (j.contains("plan") && v.is_object(j["plan"], "plan")) {
    v.keys(j["plan"], "plan", {"strategy", "prediction", "planned_cycles", "a_min_MBq", "a_max_MBq",
                               "a_standard_MBq", "safety_k", "prediction_cv", "limits"});
    c.plan = j["plan"];
  }
  if (j.contains("uncertainty") && v.is_object(j["uncertainty"], "uncertainty")) read_uncertainty(v, j["uncertainty"], c);
  TimeReader clock(read_time_zone(v, j));
  read_cycles(v, clock, j, c);
  check_reference_times(v, c);
  for (const auto& p : validate(run_options_of_case(c))) v.problem_text(p);  // the checks shared with the command line
  if (!v.problems().empty()) throw InputError(join_problems(v.problems()));
  return c;
}

// One measurement turned into activity [MBq] at its time (counts: CF, dead time, decay in the
// frame; concentrations: times volume; decay corrections undone; recovery), with its uncertainty
// terms. Problems are added to `problems`.
QuantifiedPoint quantify_point(const CaseFile& c, const CaseCycle& cy, const Protocol* prot, const CaseTimepoint& tp,
                               const CaseMeasurement& m, const CaseVoi& cv, double lambda,
                               std::vector<std::string>& problems) {
  QuantifiedPoint p;
  p.kind = m.kind;
  p.start_h = tp.start_h;
  p.duration_s = tp.duration_s;
  p.value = m.value;
  const double volume = !std::isnan(m.volume_mL) ? m.volume_mL : cv.volume_mL;
  const double duration_h = std::isnan(tp.duration_s) ? 0.0 : tp.duration_s / 3600.0;
  const bool mid = cy.timing == TimingConvention::mid_frame && duration_h > 0;
  p.time_h = mid ? tp.start_h + duration_h / 2 : tp.start_h;
  double a = 0;
  try {
    if (m.kind == "counts") {
      p.cf_cps_per_MBq = prot->cf_cps_per_MBq;
      p.calibration = prot->name;
      p.u_cf_rel = prot->cf_u_cps_per_MBq / prot->cf_cps_per_MBq;
      if (prot->dead_time != DeadTimeModel::none) {
        const double r_t = true_rate_cps(prot->dead_time, tp.observed_rate_cps, prot->tau_s,
                                         c.path + ": " + tp.path);
        p.dtcf = tp.observed_rate_cps > 0 ? r_t / tp.observed_rate_cps : 1.0;
      }
      a = m.value * p.dtcf / (tp.duration_s * p.cf_cps_per_MBq);  // mean rate / CF
      // Poisson variance of the counts, plus the scatter window's when it was subtracted
      const double var = std::isnan(m.scatter_window_counts)
                             ? m.value
                             : m.value + (m.scatter_window_k + m.scatter_window_k * m.scatter_window_k) *
                                             m.scatter_window_counts;
      p.u_poisson_rel = m.value > 0 ? std::sqrt(var) / m.value : 0.0;
    } else if (m.kind == "activity") {
      a = m.value;
    } else {
      a = m.value * volume;
    }
    // Decay: counts collected over the frame; values decay-corrected to t0 are undone.
    if (cy.decay_corrected_to == DecayCorrection::reference) {
      p.decay_factor = std::exp(-lambda * p.time_h);
    } else if (cy.decay_corrected_to == DecayCorrection::none && m.kind == "counts") {
      p.decay_factor = mid ? mid_frame_factor(lambda, duration_h)
                           : 1.0 / decay_in_frame_factor(lambda, duration_h);
    }
    a *= p.decay_factor;
    if (cv.recovery) {
      const double rc = prot->recovery->rc_at(volume, c.path + ": " + m.path);
      if (rc < prot->recovery->floor) {
        p.flags.push_back("rc_below_floor: RC " + format_number(rc) + " < " +
                          format_number(prot->recovery->floor) + "; not corrected");
      } else {
        p.rc = rc;
        p.rc_u = prot->recovery->rc_u_at(volume);
        p.u_rc_rel = p.rc_u / rc;
        p.dln_rc_dln_volume = prot->recovery->dln_rc_dln_volume(volume);
        a /= rc;
      }
    }
    // the activity derived from plausible inputs must be plausible too (a CF of 1e-9 is not)
    if (!ACTIVITY_RANGE_MBQ.contains(a))
      problems.push_back(c.path + ": " + m.path + ": the activity obtained from the " + m.kind + " is " +
                         format_number(a) + " MBq; expected an activity " + ACTIVITY_RANGE_MBQ.text() +
                         " (check the calibration factor, duration and value)");
  } catch (const InputError& e) {
    problems.push_back(e.what());
  }
  p.activity_MBq = a;
  if (m.kind == "counts") {
    // Per point only what is independent between points: Poisson. CF and RC are common to
    // the points (methods.md §5 item 3) and enter the dose budget as single factors.
    p.activity_u_MBq = a * p.u_poisson_rel;
  } else {
    p.activity_u_MBq = m.activity_u_MBq / p.rc * p.decay_factor;
  }
  return p;
}

// The TAC of one VOI of a cycle, point by point (quantify_point), appended to q.
void quantify_voi(const CaseFile& c, const CaseCycle& cy, const Protocol* prot, const std::string& name,
                  double lambda, QuantifiedCase& q, std::vector<std::string>& problems) {
  TacSeries s;
  s.patient = c.patient_id;
  s.cycle = cy.cycle;
  s.voi = name;
  const auto n = static_cast<Eigen::Index>(cy.timepoints.size());
  s.time_h.resize(n);
  s.activity_MBq.resize(n);
  s.activity_u_MBq.resize(n);
  std::vector<QuantifiedPoint> pts;
  bool all_u = true;
  const CaseVoi cv = cy.vois.count(name) ? cy.vois.at(name) : CaseVoi{};
  for (Eigen::Index i = 0; i < n; ++i) {
    const auto& tp = cy.timepoints[static_cast<size_t>(i)];
    const CaseMeasurement& m = tp.vois.at(name);
    const QuantifiedPoint p = quantify_point(c, cy, prot, tp, m, cv, lambda, problems);
    const double a = p.activity_MBq;
    const double volume = !std::isnan(m.volume_mL) ? m.volume_mL : cv.volume_mL;
    const double mass = !std::isnan(m.mass_g) ? m.mass_g : cv.mass_g;
    if (!(p.activity_u_MBq > 0)) all_u = false;
    s.time_h(i) = p.time_h;
    s.activity_MBq(i) = a;
    s.activity_u_MBq(i) = p.activity_u_MBq;
    s.volume_mL.push_back(volume);
    s.mass_g.push_back(mass);
    s.lines.push_back(0);
    pts.push_back(p);
  }
  if (!all_u) s.activity_u_MBq.resize(0);
  s.volume_u_mL = cv.volume_u_mL;
  q.series.push_back(std::move(s));
  q.points.push_back(std::move(pts));
}

QuantifiedCase quantify_case(const CaseFile& c, double lambda) {
  QuantifiedCase q;
  std::vector<std::string> problems;
  for (const auto& cy : c.cycles) {
    // Administered activity at the reference time, net of the residual (methods.md §1.5 rule 1).
    const double a0 = cy.administered_measured_MBq * std::exp(lambda * cy.administered_measured_at_h) -
                      cy.residual_measured_MBq * std::exp(lambda * cy.residual_measured_at_h);
    if (!(a0 > 0))
      problems.push_back(c.path + ": " + cy.path + ".administered: the net activity is " + format_number(a0) +
                         " MBq; expected the residual to be smaller than the administered activity");
    q.administered_MBq[cy.cycle] = a0;
    if (cy.blood) q.blood[cy.cycle] = *cy.blood;
    const Protocol* prot = c.protocols.count(cy.protocol) ? &c.protocols.at(cy.protocol) : nullptr;
    // VOIs in order of first appearance.
    std::vector<std::string> names;
    for (const auto& tp : cy.timepoints)
      for (const auto& n : tp.voi_order)
        if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
    for (const auto& name : names) quantify_voi(c, cy, prot, name, lambda, q, problems);
  }
  if (!problems.empty()) throw InputError(join_problems(problems));
  return q;
}

}  // namespace lutdose
