#include "lutdose/models/compartment.h"
#include "lutdose/models/format.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include <boost/numeric/odeint.hpp>

#include "lutdose/models/input.h"
#include <nlohmann/json.hpp>
#include <unsupported/Eigen/MatrixFunctions>
#include <unsupported/Eigen/NonLinearOptimization>

namespace lutdose::models {

using Eigen::MatrixXd;
using Eigen::VectorXd;
using json = nlohmann::json;

namespace {

constexpr double NaN = std::numeric_limits<double>::quiet_NaN();
// Initial fractions may add up to 1 within this rounding margin.
constexpr double FRACTION_SUM_MARGIN = 1e-9;
// Range of theta = ln(parameter) in fits: e^-30 ~ 1e-13 (a rate of 1e-13 1/h is no transfer at
// all) to e^12 ~ 1.6e5 (a rate of 1.6e5 1/h is instantaneous; 1.6e5 nmol is far above any
// injected peptide amount). Outside it the data carry no information on the parameter.
constexpr double THETA_MIN = -30.0;
constexpr double THETA_MAX = 12.0;
// Forward-difference step in theta (a 0.1 % change of the parameter) for the optimiser's
// Jacobian and for the covariance and TIA gradients. Truncation error ~1e-3 relative; the ODE
// error of the fit solver (1e-5 relative) is smooth in the parameters as long as the step
// sequence does not change, so the noise it adds is far below its bound of 1e-5 / 1e-3.
constexpr double FD_STEP = 1e-3;
// Relative eigenvalue threshold of the column-scaled J^T W J below which the fit is rank
// deficient (its pseudo-inverse is then used and the fit flagged).
constexpr double RANK_THRESHOLD = 1e-12;


std::string join_names(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

bool is_identifier(const std::string& s) {
  if (s.empty() || s.size() > MAX_IDENTIFIER_CHARS || !(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  return true;
}

//! Parses "k_b - k_in", "0.5*k_x + k_y": (name, coefficient) pairs; false on a syntax error.
bool parse_rate_expression(const std::string& text,
                           std::vector<std::pair<std::string, double>>& terms) {
  terms.clear();
  size_t i = 0;
  const size_t n = text.size();
  auto skip = [&] {
    while (i < n && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  };
  auto read_name = [&](std::string& name) {
    skip();
    const size_t start = i;
    while (i < n && (std::isalnum(static_cast<unsigned char>(text[i])) || text[i] == '_')) ++i;
    name = text.substr(start, i - start);
    return is_identifier(name);
  };
  bool first = true;
  while (true) {
    skip();
    double sign = 1.0;
    if (i < n && (text[i] == '+' || text[i] == '-')) {
      sign = text[i] == '-' ? -1.0 : 1.0;
      ++i;
      skip();
    } else if (!first) {
      return false;
    }
    if (i >= n) return false;
    double coefficient = 1.0;
    if (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.') {
      const char* begin = text.c_str() + i;
      char* end = nullptr;
      coefficient = std::strtod(begin, &end);
      if (end == begin || !std::isfinite(coefficient)) return false;
      i += static_cast<size_t>(end - begin);
      skip();
      if (i >= n || text[i] != '*') return false;
      ++i;
    }
    std::string name;
    if (!read_name(name)) return false;
    terms.emplace_back(name, sign * coefficient);
    first = false;
    skip();
    if (i >= n) return true;
  }
}

// Collects the problems of a model file; each becomes one line of the ModelError.
class Problems {
 public:
  explicit Problems(std::string origin) : origin_(std::move(origin)) {}
  void add(const std::string& path, const std::string& value, const std::string& expected) {
    lines_.push_back(origin_ + ": " + path + " is " + value + "; expected " + expected);
  }
  void text(const std::string& t) { lines_.push_back(origin_ + ": " + t); }
  bool empty() const { return lines_.empty(); }
  [[noreturn]] void raise() const {  // the first MAX_MODEL_PROBLEMS_LISTED lines, then a count
    std::string all;
    for (std::size_t i = 0; i < std::min(lines_.size(), MAX_MODEL_PROBLEMS_LISTED); ++i)
      all += (all.empty() ? "" : "\n") + lines_[i];
    if (lines_.size() > MAX_MODEL_PROBLEMS_LISTED)
      all += "\n... and " + std::to_string(lines_.size() - MAX_MODEL_PROBLEMS_LISTED) + " more problems";
    throw ModelError(all);
  }
  void raise_if_any() const {
    if (!lines_.empty()) raise();
  }

  void keys(const json& obj, const std::string& path, const std::set<std::string>& allowed) {
    for (auto it = obj.begin(); it != obj.end(); ++it) {
      if (allowed.count(it.key())) continue;
      std::string expected;
      for (const auto& a : allowed) expected += (expected.empty() ? "" : ", ") + a;
      add(join(path, it.key()), "an unknown key", "one of: " + expected);
    }
  }
  static std::string join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }
  static std::string at(const std::string& path, size_t i) {
    return path + "[" + std::to_string(i) + "]";
  }
  static std::string quoted(const json& j) { return "'" + quote_value(j.dump()) + "'"; }

 private:
  std::string origin_;
  std::vector<std::string> lines_;
};

const char* status_text(Eigen::LevenbergMarquardtSpace::Status s) {
  using namespace Eigen::LevenbergMarquardtSpace;
  switch (s) {
    case NotStarted: return "not started";
    case Running: return "running";
    case ImproperInputParameters: return "improper input parameters";
    case RelativeReductionTooSmall: return "relative reduction of chi-square below ftol";
    case RelativeErrorTooSmall: return "relative change of the parameters below xtol";
    case RelativeErrorAndReductionTooSmall: return "relative reduction and change below ftol, xtol";
    case CosinusTooSmall: return "residuals orthogonal to the Jacobian columns (gtol)";
    case TooManyFunctionEvaluation: return "too many function evaluations";
    case FtolTooSmall: return "ftol too small: no further reduction possible";
    case XtolTooSmall: return "xtol too small: no further improvement possible";
    case GtolTooSmall: return "gtol too small: residuals orthogonal to the Jacobian";
    case UserAsked: return "stopped by the functor";
  }
  return "?";
}

}  // namespace

// ------------------------------------------------------------------------------------------------
// Rate expressions

double RateExpression::evaluate(const VectorXd& p) const {
  double k = constant_per_h;
  for (const auto& [index, coefficient] : terms) k += coefficient * p(index);
  return k;
}

// ------------------------------------------------------------------------------------------------
// Loading and validation

CompartmentModel CompartmentModel::from_file(const std::string& path) {
  std::string bytes;  // bounded: a device or a huge file is refused, not read whole
  const std::string problem = read_input_bytes(path, true, bytes);
  if (!problem.empty())
    throw ModelError(path + ": cannot read the model file: " + problem + "; expected a regular JSON file of at most " +
                     std::to_string(MAX_INPUT_BYTES) + " bytes");
  return from_string(bytes, path);
}

CompartmentModel CompartmentModel::from_string(const std::string& text, const std::string& origin) {
  json document;
  const std::string problem = parse_json_checked(text, document);
  if (!problem.empty()) throw ModelError(origin + ": " + problem + "; expected a compartment-model file");
  return from_json(document, origin);
}

namespace {
// Sizes beyond the documented limits (docs/compartment-models.md) end the reading at once: the
// rate matrix is dense (memory and time quadratic in the compartments).
void check_sizes(const json& doc, Problems& pr) {
  if (!doc.is_object()) return;
  bool too_big = false;
  for (const auto& [key, limit] : {std::make_pair("compartments", MAX_COMPARTMENTS),
                                   std::make_pair("transfers", MAX_TRANSFERS),
                                   std::make_pair("observations", MAX_COMPARTMENTS),
                                   std::make_pair("parameters", MAX_MODEL_PARAMETERS)})
    if (doc.contains(key) && (doc[key].is_array() || doc[key].is_object()) && doc[key].size() > limit) {
      pr.add(key, std::to_string(doc[key].size()) + " entries", "at most " + std::to_string(limit));
      too_big = true;
    }
  if (too_big) pr.raise();
}
}  // namespace

// Reads a model document block by block into a CompartmentModel; every problem found is collected
// (with its JSON path) and all are raised together.
class CompartmentModel::Reader {
 public:
  Reader(const json& doc, const std::string& origin) : doc_(doc), pr_(origin) { m_.origin_ = origin; }

  CompartmentModel read() {
    if (!doc_.is_object()) {
      pr_.add("(top level)", Problems::quoted(doc_), "an object { ... }");
      pr_.raise();
    }
    pr_.keys(doc_, "", {"name", "description", "notes", "compartments", "transfers", "observations",
                        "binding", "peptide", "parameters", "physical_decay"});
    check_sizes(doc_, pr_);
    read_header();
    read_compartments();
    compartment_names_ = m_.compartment_names();
    read_parameters();
    read_transfers();
    read_observations();
    read_bindings();
    read_peptide();
    check_parameter_use();
    pr_.raise_if_any();
    check_rates_at_file_values();
    pr_.raise_if_any();
    return std::move(m_);
  }

 private:
  const json& doc_;
  Problems pr_;
  CompartmentModel m_;
  std::map<std::string, int> compartment_of_;
  std::vector<std::string> compartment_names_;
  std::map<std::string, int> parameter_of_;
  // Where each parameter is used, with the unit that use needs.
  std::map<int, std::pair<std::string, std::string>> use_of_;  // index -> (unit, path)

  void read_header();
  void read_compartments();
  void read_compartment(const json& c, size_t i, double& fraction_sum);
  int compartment(const json& j, const std::string& path, bool allow_null);
  void read_parameters();
  void read_parameter(const std::string& name, const json& q);
  void need_unit(int index, const std::string& unit, const std::string& path);
  int parameter(const json& j, const std::string& path, const std::string& unit);
  void read_transfers();
  void read_transfer(const json& t, const std::string& path);
  void read_rate(const json& t, const std::string& path, double value, Transfer& tr);
  void read_observations();
  void read_observation(const json& o, const std::string& path, std::set<std::string>& vois);
  void read_bindings();
  void read_binding(const json& b, const std::string& path, std::set<int>& bound_used);
  void read_peptide();
  void check_parameter_use();
  void check_rates_at_file_values();
};

// name, description, notes, physical_decay
void CompartmentModel::Reader::read_header() {
  if (!doc_.contains("name") || !doc_["name"].is_string() ||
      doc_["name"].get<std::string>().empty())
    pr_.add("name", doc_.contains("name") ? Problems::quoted(doc_["name"]) : "missing",
            "a non-empty string");
  else
    m_.name_ = doc_["name"].get<std::string>();
  if (doc_.contains("description")) {
    if (doc_["description"].is_string())
      m_.description_ = doc_["description"].get<std::string>();
    else
      pr_.add("description", Problems::quoted(doc_["description"]), "a string");
  }
  if (doc_.contains("notes") && !doc_["notes"].is_string() && !doc_["notes"].is_array())
    pr_.add("notes", Problems::quoted(doc_["notes"]), "a string or an array of strings");
  if (doc_.contains("physical_decay")) {
    if (doc_["physical_decay"].is_boolean())
      m_.physical_decay_ = doc_["physical_decay"].get<bool>();
    else
      pr_.add("physical_decay", Problems::quoted(doc_["physical_decay"]), "true or false");
  }
}

void CompartmentModel::Reader::read_compartments() {
  if (!doc_.contains("compartments") || !doc_["compartments"].is_array() ||
      doc_["compartments"].empty()) {
    pr_.add("compartments", doc_.contains("compartments") ? Problems::quoted(doc_["compartments"])
                                                          : "missing",
            "a non-empty array of { \"name\", \"initial_fraction\" }");
    return;
  }
  double sum = 0.0;
  const json& cs = doc_["compartments"];
  for (size_t i = 0; i < cs.size(); ++i) read_compartment(cs[i], i, sum);
  if (!(sum > 0.0 && sum <= 1.0 + FRACTION_SUM_MARGIN))
    pr_.add("compartments[].initial_fraction (sum)", format_number(sum),
            "a sum in (0, 1]: the administered activity starts in the compartments");
}

void CompartmentModel::Reader::read_compartment(const json& c, size_t i, double& fraction_sum) {
  const std::string path = Problems::at("compartments", i);
  if (!c.is_object()) {
    pr_.add(path, Problems::quoted(c), "an object { \"name\", \"initial_fraction\" }");
    return;
  }
  pr_.keys(c, path, {"name", "initial_fraction", "description"});
  Compartment comp;
  if (!c.contains("name") || !c["name"].is_string() ||
      !is_identifier(c["name"].get<std::string>())) {
    pr_.add(path + ".name", c.contains("name") ? Problems::quoted(c["name"]) : "missing",
            "a name of letters, digits and '_' (at most " + std::to_string(MAX_IDENTIFIER_CHARS) + ")");
    comp.name = "?" + std::to_string(i);
  } else {
    comp.name = c["name"].get<std::string>();
    if (compartment_of_.count(comp.name))
      pr_.add(path + ".name", "'" + comp.name + "'",
              "a name not used before (duplicate compartment)");
  }
  if (c.contains("initial_fraction")) {
    const json& f = c["initial_fraction"];
    if (!f.is_number() || !(f.get<double>() >= 0.0 && f.get<double>() <= 1.0))
      pr_.add(path + ".initial_fraction", Problems::quoted(f), "a number in [0, 1]");
    else
      comp.initial_fraction = f.get<double>();
  }
  fraction_sum += comp.initial_fraction;
  compartment_of_.emplace(comp.name, static_cast<int>(m_.compartments_.size()));
  m_.compartments_.push_back(comp);
}

// The index of the compartment named by j; -1 for null where allowed (excretion), -2 if unknown.
int CompartmentModel::Reader::compartment(const json& j, const std::string& path, bool allow_null) {
  if (allow_null && j.is_null()) return -1;
  if (j.is_string() && compartment_of_.count(j.get<std::string>()))
    return compartment_of_.at(j.get<std::string>());
  pr_.add(path, Problems::quoted(j),
          std::string("a compartment (") + quote_value(join_names(compartment_names_)) + ")" +
              (allow_null ? " or null (excretion)" : "") + ": unknown compartment");
  return -2;
}

void CompartmentModel::Reader::read_parameters() {
  if (doc_.contains("parameters") && !doc_["parameters"].is_object()) {
    pr_.add("parameters", Problems::quoted(doc_["parameters"]),
            "an object { \"NAME\": { \"value\", \"unit\", \"source\", \"fit\" } }");
  } else if (doc_.contains("parameters")) {
    for (auto it = doc_["parameters"].begin(); it != doc_["parameters"].end(); ++it)
      read_parameter(it.key(), it.value());
  }
}

void CompartmentModel::Reader::read_parameter(const std::string& name, const json& q) {
  const std::string path = "parameters." + name;
  Parameter par;
  par.name = name;
  if (!is_identifier(par.name))
    pr_.add(path, Problems::quoted(par.name), "a parameter name of letters, digits and '_' (at most " +
                                                  std::to_string(MAX_IDENTIFIER_CHARS) + ")");
  if (!q.is_object()) {
    pr_.add(path, Problems::quoted(q), "an object { \"value\", \"unit\", \"source\", \"fit\" }");
    return;
  }
  pr_.keys(q, path, {"value", "unit", "source", "fit", "description"});
  if (!q.contains("value") || !q["value"].is_number() || !(q["value"].get<double>() >= 0.0) ||
      !std::isfinite(q["value"].get<double>()))
    pr_.add(path + ".value", q.contains("value") ? Problems::quoted(q["value"]) : "missing",
            "a finite number >= 0 (negative rate or amount)");
  else
    par.value = q["value"].get<double>();
  if (!q.contains("unit") || !q["unit"].is_string())
    pr_.add(path + ".unit", q.contains("unit") ? Problems::quoted(q["unit"]) : "missing",
            "\"1/h\", \"nmol\" or \"1/(nmol h)\"");
  else
    par.unit = q["unit"].get<std::string>();
  if (!q.contains("source") || !q["source"].is_string() ||
      q["source"].get<std::string>().empty())
    pr_.add(path + ".source", q.contains("source") ? Problems::quoted(q["source"]) : "missing",
            "a non-empty string saying where the value comes from");
  else
    par.source = q["source"].get<std::string>();
  if (q.contains("fit")) {
    if (q["fit"].is_boolean())
      par.fit = q["fit"].get<bool>();
    else
      pr_.add(path + ".fit", Problems::quoted(q["fit"]), "true or false");
  }
  parameter_of_.emplace(par.name, static_cast<int>(m_.parameters_.size()));
  m_.parameters_.push_back(par);
}

void CompartmentModel::Reader::need_unit(int index, const std::string& unit, const std::string& path) {
  auto [it, inserted] = use_of_.emplace(index, std::make_pair(unit, path));
  if (!inserted && it->second.first != unit)
    pr_.add(path, "'" + m_.parameters_[index].name + "'",
            "a parameter in " + unit + ", but it is also used in " + it->second.first + " at " +
                it->second.second);
}

// The index of the parameter named by j, used in `unit`; -1 if unknown.
int CompartmentModel::Reader::parameter(const json& j, const std::string& path, const std::string& unit) {
  if (j.is_string() && parameter_of_.count(j.get<std::string>())) {
    const int index = parameter_of_.at(j.get<std::string>());
    need_unit(index, unit, path);
    return index;
  }
  pr_.add(path, Problems::quoted(j),
          "the name of a parameter in " + unit +
              " declared in \"parameters\" (missing parameter)");
  return -1;
}

void CompartmentModel::Reader::read_transfers() {
  if (!doc_.contains("transfers") || !doc_["transfers"].is_array()) {
    pr_.add("transfers", doc_.contains("transfers") ? Problems::quoted(doc_["transfers"]) : "missing",
            "an array of { \"from\", \"to\", \"rate\" }");
    return;
  }
  const json& ts = doc_["transfers"];
  for (size_t i = 0; i < ts.size(); ++i) read_transfer(ts[i], Problems::at("transfers", i));
}

void CompartmentModel::Reader::read_transfer(const json& t, const std::string& path) {
  if (!t.is_object()) {
    pr_.add(path, Problems::quoted(t), "an object { \"from\", \"to\", \"rate\" }");
    return;
  }
  pr_.keys(t, path, {"from", "to", "rate", "value_per_h", "description"});
  Transfer tr;
  tr.from = t.contains("from") ? compartment(t["from"], path + ".from", false) : -2;
  if (!t.contains("from")) pr_.add(path + ".from", "missing", "a compartment");
  tr.to = t.contains("to") ? compartment(t["to"], path + ".to", true) : -2;
  if (!t.contains("to"))
    pr_.add(path + ".to", "missing", "a compartment or null (excretion)");
  if (tr.from >= 0 && tr.from == tr.to)
    pr_.add(path + ".to", Problems::quoted(t["to"]), "a compartment other than \"from\"");
  const bool has_rate = t.contains("rate"), has_value = t.contains("value_per_h");
  double value = NaN;
  if (has_value) {
    const json& v = t["value_per_h"];
    if (!v.is_number() || !(v.get<double>() >= 0.0) || !std::isfinite(v.get<double>()))
      pr_.add(path + ".value_per_h", Problems::quoted(v),
              "a finite number >= 0 [1/h] (negative rate)");
    else
      value = v.get<double>();
  }
  if (!has_rate && !has_value)
    pr_.add(path, "without a rate", "\"rate\" (a parameter) or \"value_per_h\" (fixed)");
  else if (!has_rate)
    tr.rate.constant_per_h = std::isnan(value) ? 0.0 : value;
  else
    read_rate(t, path, value, tr);
  m_.transfers_.push_back(tr);
}

// The transfer's "rate" expression; `value` is its value_per_h (NaN: none or invalid).
void CompartmentModel::Reader::read_rate(const json& t, const std::string& path, double value, Transfer& tr) {
  const bool has_value = t.contains("value_per_h");
  const json& r = t["rate"];
  std::vector<std::pair<std::string, double>> terms;
  if (!r.is_string() || !parse_rate_expression(r.get<std::string>(), terms)) {
    pr_.add(path + ".rate", Problems::quoted(r),
            "a parameter name or a sum such as \"k_b - k_in\" or \"0.5*k_x\"");
    return;
  }
  tr.rate.text = r.get<std::string>();
  for (const auto& [name, coefficient] : terms) {
    if (!parameter_of_.count(name) && has_value && terms.size() == 1 &&
        coefficient == 1.0 && !std::isnan(value)) {
      // "rate" + "value_per_h" declares the parameter inline.
      Parameter par;
      par.name = name;
      par.value = value;
      par.unit = "1/h";
      par.source = "(declared in " + path + ")";
      parameter_of_.emplace(name, static_cast<int>(m_.parameters_.size()));
      m_.parameters_.push_back(par);
    }
    if (!parameter_of_.count(name)) {
      pr_.add(path + ".rate", Problems::quoted(r),
              "parameters declared in \"parameters\" (missing parameter '" + name + "')");
      continue;
    }
    const int index = parameter_of_.at(name);
    need_unit(index, "1/h", path + ".rate");
    if (has_value && terms.size() == 1 && !std::isnan(value) &&
        m_.parameters_[index].value != value * coefficient)
      pr_.add(path + ".value_per_h", format_number(value),
              "the value of parameter '" + name + "' (" +
                  format_number(m_.parameters_[index].value) + ") or no value_per_h");
    tr.rate.terms.emplace_back(index, coefficient);
  }
}

void CompartmentModel::Reader::read_observations() {
  if (!doc_.contains("observations") || !doc_["observations"].is_array() ||
      doc_["observations"].empty()) {
    pr_.add("observations",
            doc_.contains("observations") ? Problems::quoted(doc_["observations"]) : "missing",
            "a non-empty array of { \"voi\", \"compartments\": [...] }");
    return;
  }
  std::set<std::string> vois;
  const json& os = doc_["observations"];
  for (size_t i = 0; i < os.size(); ++i) read_observation(os[i], Problems::at("observations", i), vois);
}

void CompartmentModel::Reader::read_observation(const json& o, const std::string& path,
                                                std::set<std::string>& vois) {
  if (!o.is_object()) {
    pr_.add(path, Problems::quoted(o), "an object { \"voi\", \"compartments\" }");
    return;
  }
  pr_.keys(o, path, {"voi", "compartments", "description"});
  Observation ob;
  if (!o.contains("voi") || !o["voi"].is_string() || o["voi"].get<std::string>().empty()) {
    pr_.add(path + ".voi", o.contains("voi") ? Problems::quoted(o["voi"]) : "missing",
            "a non-empty VOI name");
  } else {
    ob.voi = o["voi"].get<std::string>();
    if (!vois.insert(ob.voi).second)
      pr_.add(path + ".voi", "'" + ob.voi + "'", "a VOI not observed before (duplicate VOI)");
  }
  if (!o.contains("compartments") || !o["compartments"].is_array() ||
      o["compartments"].empty()) {
    pr_.add(path + ".compartments",
            o.contains("compartments") ? Problems::quoted(o["compartments"]) : "missing",
            "a non-empty array of compartment names");
  } else {
    std::set<int> seen;
    for (size_t k = 0; k < o["compartments"].size(); ++k) {
      const std::string cpath = Problems::at(path + ".compartments", k);
      const int c = compartment(o["compartments"][k], cpath, false);
      if (c < 0) continue;
      if (!seen.insert(c).second)
        pr_.add(cpath, Problems::quoted(o["compartments"][k]),
                "a compartment not listed before in this VOI (duplicate)");
      else
        ob.compartments.push_back(c);
    }
  }
  m_.observations_.push_back(ob);
}

void CompartmentModel::Reader::read_bindings() {
  if (!doc_.contains("binding")) return;
  if (!doc_["binding"].is_array()) {
    pr_.add("binding", Problems::quoted(doc_["binding"]), "an array of binding terms");
    return;
  }
  std::set<int> bound_used;
  const json& bs = doc_["binding"];
  for (size_t i = 0; i < bs.size(); ++i) read_binding(bs[i], Problems::at("binding", i), bound_used);
}

void CompartmentModel::Reader::read_binding(const json& b, const std::string& path, std::set<int>& bound_used) {
  if (!b.is_object()) {
    pr_.add(path, Problems::quoted(b), "an object { \"free\", \"bound\", ... }");
    return;
  }
  const std::set<std::string> required{"free", "bound", "receptor_total_nmol",
                                       "k_on_per_nmol_h", "k_off_per_h"};
  std::set<std::string> allowed = required;
  allowed.insert("description");
  pr_.keys(b, path, allowed);
  bool complete = true;
  for (const auto& k : required)
    if (!b.contains(k)) {
      pr_.add(path + "." + k, "missing", "a compartment or parameter name");
      complete = false;
    }
  if (!complete) return;
  Binding bi;
  bi.free_compartment = compartment(b["free"], path + ".free", false);
  bi.bound_compartment = compartment(b["bound"], path + ".bound", false);
  if (bi.free_compartment >= 0 && bi.free_compartment == bi.bound_compartment)
    pr_.add(path + ".bound", Problems::quoted(b["bound"]),
            "a compartment other than \"free\"");
  if (bi.bound_compartment >= 0 && !bound_used.insert(bi.bound_compartment).second)
    pr_.add(path + ".bound", Problems::quoted(b["bound"]),
            "a bound compartment not used by another binding term");
  bi.receptor_total_nmol =
      parameter(b["receptor_total_nmol"], path + ".receptor_total_nmol", "nmol");
  bi.k_on_per_nmol_h =
      parameter(b["k_on_per_nmol_h"], path + ".k_on_per_nmol_h", "1/(nmol h)");
  bi.k_off_per_h = parameter(b["k_off_per_h"], path + ".k_off_per_h", "1/h");
  m_.bindings_.push_back(bi);
}

void CompartmentModel::Reader::read_peptide() {
  if (doc_.contains("peptide")) {
    const json& pe = doc_["peptide"];
    if (!pe.is_object()) {
      pr_.add("peptide", Problems::quoted(pe), "an object { \"hot_nmol\", \"cold_nmol\" }");
    } else {
      pr_.keys(pe, "peptide", {"hot_nmol", "cold_nmol", "description"});
      for (const char* k : {"hot_nmol", "cold_nmol"})
        if (!pe.contains(k)) pr_.add(std::string("peptide.") + k, "missing", "a parameter in nmol");
      if (pe.contains("hot_nmol"))
        m_.peptide_hot_nmol_ = parameter(pe["hot_nmol"], "peptide.hot_nmol", "nmol");
      if (pe.contains("cold_nmol"))
        m_.peptide_cold_nmol_ = parameter(pe["cold_nmol"], "peptide.cold_nmol", "nmol");
    }
  } else if (!m_.bindings_.empty()) {
    pr_.add("peptide", "missing",
            "{ \"hot_nmol\", \"cold_nmol\" } (the total peptide amount drives receptor saturation)");
  }
}

// Units of the parameters as used; unused parameters.
void CompartmentModel::Reader::check_parameter_use() {
  for (size_t i = 0; i < m_.parameters_.size(); ++i) {
    const Parameter& par = m_.parameters_[i];
    const auto it = use_of_.find(static_cast<int>(i));
    if (it == use_of_.end()) {
      pr_.add("parameters." + par.name, "not used",
              "a parameter used by a transfer, binding or peptide");
    } else if (!par.unit.empty() && par.unit != it->second.first) {
      pr_.add("parameters." + par.name + ".unit", "'" + par.unit + "'",
              "'" + it->second.first + "' (used at " + it->second.second + ")");
    }
  }
}

// Rates at the file's values must not be negative ("k_b - k_in" with k_in > k_b).
void CompartmentModel::Reader::check_rates_at_file_values() {
  const VectorXd p0 = m_.default_parameters();
  for (size_t i = 0; i < m_.transfers_.size(); ++i) {
    const double k = m_.transfers_[i].rate.evaluate(p0);
    if (k < 0.0)
      pr_.add(Problems::at("transfers", i) + ".rate",
              "'" + m_.transfers_[i].rate.text + "' = " + format_number(k) +
                  " 1/h at the file's parameter values",
              "a rate >= 0 (negative rate)");
  }
}

CompartmentModel CompartmentModel::from_json(const json& doc, const std::string& origin) {
  return Reader(doc, origin).read();
}

// ------------------------------------------------------------------------------------------------
// Accessors

int CompartmentModel::compartment_index(const std::string& n) const {
  for (size_t i = 0; i < compartments_.size(); ++i)
    if (compartments_[i].name == n) return static_cast<int>(i);
  return -1;
}
int CompartmentModel::observation_index(const std::string& voi) const {
  for (size_t i = 0; i < observations_.size(); ++i)
    if (observations_[i].voi == voi) return static_cast<int>(i);
  return -1;
}
int CompartmentModel::parameter_index(const std::string& n) const {
  for (size_t i = 0; i < parameters_.size(); ++i)
    if (parameters_[i].name == n) return static_cast<int>(i);
  return -1;
}
std::vector<std::string> CompartmentModel::compartment_names() const {
  std::vector<std::string> v;
  for (const auto& c : compartments_) v.push_back(c.name);
  return v;
}
std::vector<std::string> CompartmentModel::observation_names() const {
  std::vector<std::string> v;
  for (const auto& o : observations_) v.push_back(o.voi);
  return v;
}
std::vector<std::string> CompartmentModel::parameter_names() const {
  std::vector<std::string> v;
  for (const auto& p : parameters_) v.push_back(p.name);
  return v;
}

VectorXd CompartmentModel::default_parameters() const {
  VectorXd p(n_parameters());
  for (int i = 0; i < n_parameters(); ++i) p(i) = parameters_[i].value;
  return p;
}

VectorXd CompartmentModel::parameters_with(const std::map<std::string, double>& values) const {
  VectorXd p = default_parameters();
  for (const auto& [n, v] : values) {
    const int i = parameter_index(n);
    if (i < 0)
      throw ModelError(origin_ + ": parameter '" + n + "' is unknown; expected one of: " +
                       join_names(parameter_names()));
    p(i) = v;
  }
  check_parameters(p);
  return p;
}

void CompartmentModel::check_parameters(const VectorXd& p) const {
  if (p.size() != n_parameters())
    throw ModelError(origin_ + ": the parameter vector has " + std::to_string(p.size()) +
                     " values; expected " + std::to_string(n_parameters()) + " (" +
                     join_names(parameter_names()) + ")");
  for (int i = 0; i < n_parameters(); ++i)
    if (!(p(i) >= 0.0) || !std::isfinite(p(i)))
      throw ModelError(origin_ + ": parameter " + parameters_[i].name + " is " +
                       format_number(p(i)) + "; expected a finite number >= 0");
}

VectorXd CompartmentModel::transfer_rates_per_h(const VectorXd& p) const {
  check_parameters(p);
  VectorXd k(static_cast<Eigen::Index>(transfers_.size()));
  for (size_t i = 0; i < transfers_.size(); ++i) {
    k(static_cast<Eigen::Index>(i)) = transfers_[i].rate.evaluate(p);
    if (k(static_cast<Eigen::Index>(i)) < 0.0)
      throw ModelError(origin_ + ": transfers[" + std::to_string(i) + "].rate '" +
                       transfers_[i].rate.text + "' is " +
                       format_number(k(static_cast<Eigen::Index>(i))) +
                       " 1/h for these parameters; expected a rate >= 0");
  }
  return k;
}

MatrixXd CompartmentModel::rate_matrix_per_h(const VectorXd& p, double lambda_p) const {
  const VectorXd k = transfer_rates_per_h(p);
  const int n = n_compartments();
  MatrixXd M = MatrixXd::Zero(n, n);
  for (size_t i = 0; i < transfers_.size(); ++i) {
    const auto& t = transfers_[i];
    const double ki = k(static_cast<Eigen::Index>(i));
    M(t.from, t.from) -= ki;
    if (t.to >= 0) M(t.to, t.from) += ki;
  }
  if (physical_decay_) M.diagonal().array() -= lambda_p;
  return M;
}

VectorXd CompartmentModel::initial_activity_MBq(double A0) const {
  VectorXd x(n_compartments());
  for (int i = 0; i < n_compartments(); ++i) x(i) = A0 * compartments_[i].initial_fraction;
  return x;
}

MatrixXd CompartmentModel::observation_matrix() const {
  MatrixXd O = MatrixXd::Zero(static_cast<Eigen::Index>(observations_.size()), n_compartments());
  for (size_t i = 0; i < observations_.size(); ++i)
    for (int c : observations_[i].compartments) O(static_cast<Eigen::Index>(i), c) = 1.0;
  return O;
}

// ------------------------------------------------------------------------------------------------
// Dynamics on fractions of the administered activity, u = x / A0.

namespace ublas = boost::numeric::ublas;
namespace odeint = boost::numeric::odeint;
using OdeState = ublas::vector<double>;
using OdeMatrix = ublas::matrix<double>;

struct CompartmentModel::Dynamics {
  int n = 0;
  MatrixXd M;  // linear part incl. physical decay [1/h]
  struct Bind {
    int f, b;
    double R0_nmol, kon_per_nmol_h, koff_per_h;
  };
  std::vector<Bind> binds;
  double peptide_nmol = 0.0;  // hot + cold
  double decay_per_h = 0.0;   // lambda_p if the model decays, else 0

  // Total peptide bound in compartment b [nmol] = u_b e^{lambda_p t} n_total.
  double peptide_factor(double t) const { return peptide_nmol * std::exp(decay_per_h * t); }

  void rhs(const OdeState& u, OdeState& dudt, double t) const {
    for (int i = 0; i < n; ++i) {
      double s = 0.0;
      for (int j = 0; j < n; ++j) s += M(i, j) * u(j);
      dudt(i) = s;
    }
    if (binds.empty()) return;
    const double c = peptide_factor(t);
    for (const auto& b : binds) {
      const double flux =
          b.kon_per_nmol_h * u(b.f) * (b.R0_nmol - c * u(b.b)) - b.koff_per_h * u(b.b);
      dudt(b.f) -= flux;
      dudt(b.b) += flux;
    }
  }
  // J = d rhs / d u (rows 0..n-1, columns 0..n-1 of J), dfdt = d rhs / dt.
  void jacobian(const OdeState& u, OdeMatrix& J, double t, OdeState& dfdt) const {
    for (int i = 0; i < n; ++i) {
      for (int j = 0; j < n; ++j) J(i, j) = M(i, j);
      dfdt(i) = 0.0;
    }
    if (binds.empty()) return;
    const double c = peptide_factor(t);
    for (const auto& b : binds) {
      const double d_free = b.kon_per_nmol_h * (b.R0_nmol - c * u(b.b));
      const double d_bound = -b.kon_per_nmol_h * u(b.f) * c - b.koff_per_h;
      const double d_t = -b.kon_per_nmol_h * u(b.f) * u(b.b) * c * decay_per_h;
      J(b.f, b.f) -= d_free;
      J(b.f, b.b) -= d_bound;
      J(b.b, b.f) += d_free;
      J(b.b, b.b) += d_bound;
      dfdt(b.f) -= d_t;
      dfdt(b.b) += d_t;
    }
  }
};

namespace {

// Rosenbrock system objects. `Augmented` adds the running integrals z' = u after the n states.
template <bool Augmented>
struct OdeSystem {
  const CompartmentModel::Dynamics* d;
  void operator()(const OdeState& x, OdeState& dxdt, double t) const {
    d->rhs(x, dxdt, t);  // reads x(0..n-1), writes dxdt(0..n-1)
    if (Augmented)
      for (int i = 0; i < d->n; ++i) dxdt(d->n + i) = x(i);
  }
};
template <bool Augmented>
struct OdeJacobian {
  const CompartmentModel::Dynamics* d;
  void operator()(const OdeState& x, OdeMatrix& J, double t, OdeState& dfdt) const {
    if (Augmented) {
      J.clear();
      dfdt.clear();
    }
    d->jacobian(x, J, t, dfdt);
    if (Augmented)
      for (int i = 0; i < d->n; ++i) J(d->n + i, i) = 1.0;
  }
};

OdeState initial_state(const CompartmentModel& model, bool augmented) {
  const int n = model.n_compartments();
  OdeState u(static_cast<size_t>(augmented ? 2 * n : n));
  u.clear();
  for (int i = 0; i < n; ++i) u(i) = model.compartments()[i].initial_fraction;
  return u;
}

// u (fractions of A0) at the sorted, non-negative times; rows = times.
MatrixXd solve_fractions(const CompartmentModel& model, const CompartmentModel::Dynamics& d,
                         const std::vector<double>& sorted_times, const SolverOptions& s) {
  const int n = model.n_compartments();
  MatrixXd out(static_cast<Eigen::Index>(sorted_times.size()), n);
  OdeState u = initial_state(model, false);
  std::vector<double> times;
  times.reserve(sorted_times.size() + 1);
  if (sorted_times.empty() || sorted_times.front() > 0.0) times.push_back(0.0);
  times.insert(times.end(), sorted_times.begin(), sorted_times.end());
  const size_t offset = times.size() - sorted_times.size();
  size_t k = 0;
  auto observer = [&](const OdeState& x, double) {
    if (k >= offset) {
      const auto row = static_cast<Eigen::Index>(k - offset);
      for (int i = 0; i < n; ++i) out(row, i) = x(i);
    }
    ++k;
  };
  if (times.back() <= 0.0) {  // all at t = 0
    for (size_t i = 0; i < times.size(); ++i) observer(u, 0.0);
    return out;
  }
  auto stepper = odeint::make_dense_output(s.abs_tol_fraction, s.rel_tol,
                                           odeint::rosenbrock4<double>());
  try {  // a step limit between requested times; a solution that is not finite is an error
    odeint::integrate_times(stepper,
                            std::make_pair(OdeSystem<false>{&d}, OdeJacobian<false>{&d}), u,
                            times.begin(), times.end(), s.initial_step_h, observer,
                            odeint::max_step_checker(s.max_steps));
  } catch (const odeint::odeint_error& e) {
    throw ModelError(model.origin() + ": the ODE solve did not finish (" + e.what() + ")");
  }
  if (!out.allFinite()) throw ModelError(model.origin() + ": the ODE solution is not finite");
  return out;
}

// u (fractions of A0) at the sorted, non-negative times (rows; may be empty) and the TIA per
// compartment as fractions of A0 [h]: the ODE augmented with the running integrals z' = u,
// stepped with dense output until every time is passed and sum |u| < stop fraction.
void solve_with_tia(const CompartmentModel& model, const CompartmentModel::Dynamics& d,
                    const std::vector<double>& sorted_times, const SolverOptions& s,
                    MatrixXd& values, VectorXd& tia) {
  const int n = model.n_compartments();
  values.resize(static_cast<Eigen::Index>(sorted_times.size()), n);
  OdeState x = initial_state(model, true), at(x.size());
  double initial = 0.0;
  for (int i = 0; i < n; ++i) initial += std::abs(x(i));
  size_t k = 0;
  auto record = [&](const OdeState& state) {
    for (int i = 0; i < n; ++i) values(static_cast<Eigen::Index>(k), i) = state(i);
    ++k;
  };
  while (k < sorted_times.size() && sorted_times[k] <= 0.0) record(x);
  auto stepper = odeint::make_dense_output(s.abs_tol_fraction, s.rel_tol,
                                           odeint::rosenbrock4<double>());
  stepper.initialize(x, 0.0, s.initial_step_h);
  const auto system = std::make_pair(OdeSystem<true>{&d}, OdeJacobian<true>{&d});
  for (int steps = 0;; ++steps) {
    if (steps >= s.max_steps)
      throw ModelError(model.origin() + ": the TIA integration needs more than " + std::to_string(s.max_steps) +
                       " steps (at t = " + format_number(stepper.current_time()) + " h)");
    stepper.do_step(system);
    const double now = stepper.current_time();
    while (k < sorted_times.size() && sorted_times[k] <= now) {
      stepper.calc_state(sorted_times[k], at);
      record(at);
    }
    const OdeState& cur = stepper.current_state();
    double left = 0.0;
    for (int i = 0; i < n; ++i) left += std::abs(cur(i));
    if (!std::isfinite(left))
      throw ModelError(model.origin() + ": the ODE solution is not finite at t = " +
                       format_number(now) + " h");
    if (k == sorted_times.size() && left < s.tia_stop_fraction * initial) {
      tia.resize(n);
      for (int i = 0; i < n; ++i) tia(i) = cur(n + i);
      return;
    }
    if (now > s.max_time_h)
      throw ModelError(model.origin() + ": the activity left at t = " + format_number(now) +
                       " h is " + format_number(left / initial) +
                       " of the administered activity; expected it to fall below " +
                       format_number(s.tia_stop_fraction) +
                       " (a compartment without any loss makes the TIA infinite)");
  }
}

}  // namespace

CompartmentModel::Dynamics CompartmentModel::dynamics(const VectorXd& p, double lambda_p,
                                                      bool clamp_negative_rates) const {
  if (!(lambda_p >= 0.0) || !std::isfinite(lambda_p))
    throw ModelError(origin_ + ": lambda_p is " + format_number(lambda_p) +
                     " 1/h; expected a finite number >= 0");
  Dynamics d;
  d.n = n_compartments();
  if (clamp_negative_rates) {
    check_parameters(p);
    d.M = MatrixXd::Zero(d.n, d.n);
    for (const auto& t : transfers_) {
      const double k = std::max(0.0, t.rate.evaluate(p));
      d.M(t.from, t.from) -= k;
      if (t.to >= 0) d.M(t.to, t.from) += k;
    }
    if (physical_decay_) d.M.diagonal().array() -= lambda_p;
  } else {
    d.M = rate_matrix_per_h(p, lambda_p);
  }
  d.decay_per_h = physical_decay_ ? lambda_p : 0.0;
  if (!bindings_.empty()) d.peptide_nmol = p(peptide_hot_nmol_) + p(peptide_cold_nmol_);
  for (const auto& b : bindings_)
    d.binds.push_back({b.free_compartment, b.bound_compartment, p(b.receptor_total_nmol),
                       p(b.k_on_per_nmol_h), p(b.k_off_per_h)});
  return d;
}

namespace {
void check_activity(const std::string& origin, double A0) {
  if (!(A0 > 0.0) || !std::isfinite(A0))
    throw ModelError(origin + ": the administered activity is " + format_number(A0) +
                     " MBq; expected a finite number > 0");
}
}  // namespace

MatrixXd CompartmentModel::simulate(const VectorXd& t, const VectorXd& p, double A0,
                                    double lambda_p, const SolverOptions& s) const {
  check_activity(origin_, A0);
  for (Eigen::Index i = 0; i < t.size(); ++i)
    if (!(t(i) >= 0.0) || !std::isfinite(t(i)))
      throw ModelError(origin_ + ": time " + format_number(t(i)) +
                       " h; expected a finite time >= 0 (after administration)");
  const Dynamics d = dynamics(p, lambda_p);
  std::vector<double> sorted(t.data(), t.data() + t.size());
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  const MatrixXd u = solve_fractions(*this, d, sorted, s);
  MatrixXd x(t.size(), n_compartments());
  for (Eigen::Index i = 0; i < t.size(); ++i) {
    const auto row = std::lower_bound(sorted.begin(), sorted.end(), t(i)) - sorted.begin();
    x.row(i) = A0 * u.row(row);
  }
  return x;
}

VectorXd CompartmentModel::rhs_MBq_per_h(const VectorXd& x, double t, const VectorXd& p, double A0,
                                         double lambda_p) const {
  check_activity(origin_, A0);
  if (x.size() != n_compartments())
    throw ModelError(origin_ + ": the state has " + std::to_string(x.size()) +
                     " values; expected " + std::to_string(n_compartments()));
  const Dynamics d = dynamics(p, lambda_p);
  OdeState u(static_cast<size_t>(d.n)), du(static_cast<size_t>(d.n));
  for (int i = 0; i < d.n; ++i) u(i) = x(i) / A0;
  d.rhs(u, du, t);
  VectorXd r(d.n);
  for (int i = 0; i < d.n; ++i) r(i) = A0 * du(i);
  return r;
}

MatrixXd CompartmentModel::jacobian_per_h(const VectorXd& x, double t, const VectorXd& p,
                                          double A0, double lambda_p, VectorXd* d_dt) const {
  check_activity(origin_, A0);
  if (x.size() != n_compartments())
    throw ModelError(origin_ + ": the state has " + std::to_string(x.size()) +
                     " values; expected " + std::to_string(n_compartments()));
  const Dynamics d = dynamics(p, lambda_p);
  OdeState u(static_cast<size_t>(d.n)), dfdt(static_cast<size_t>(d.n));
  OdeMatrix J(static_cast<size_t>(d.n), static_cast<size_t>(d.n));
  for (int i = 0; i < d.n; ++i) u(i) = x(i) / A0;
  d.jacobian(u, J, t, dfdt);
  MatrixXd r(d.n, d.n);
  for (int i = 0; i < d.n; ++i)
    for (int j = 0; j < d.n; ++j) r(i, j) = J(i, j);
  if (d_dt) {
    d_dt->resize(d.n);
    for (int i = 0; i < d.n; ++i) (*d_dt)(i) = A0 * dfdt(i);
  }
  return r;
}

MatrixXd CompartmentModel::observe(const VectorXd& t, const VectorXd& p, double A0,
                                   double lambda_p, const SolverOptions& s) const {
  return simulate(t, p, A0, lambda_p, s) * observation_matrix().transpose();
}

VectorXd CompartmentModel::tia_per_compartment(const VectorXd& p, double A0, double lambda_p,
                                               const SolverOptions& s) const {
  check_activity(origin_, A0);
  const Dynamics d = dynamics(p, lambda_p);
  MatrixXd none;
  VectorXd tia;
  solve_with_tia(*this, d, {}, s, none, tia);
  return A0 * tia;
}

VectorXd CompartmentModel::tia_per_observation(const VectorXd& p, double A0, double lambda_p,
                                               const SolverOptions& s) const {
  return observation_matrix() * tia_per_compartment(p, A0, lambda_p, s);
}

VectorXd CompartmentModel::linear_tia_eigen(const VectorXd& p, double A0, double lambda_p) const {
  if (!is_linear())
    throw ModelError(origin_ + ": linear_tia_eigen needs a linear model (no binding terms)");
  check_activity(origin_, A0);
  const MatrixXd M = rate_matrix_per_h(p, lambda_p);
  Eigen::ColPivHouseholderQR<MatrixXd> qr(M);
  if (qr.rank() < M.rows())
    throw ModelError(origin_ + ": the rate matrix is singular (a compartment without any loss):"
                     " the TIA is infinite");
  return -qr.solve(initial_activity_MBq(A0));
}

MatrixXd CompartmentModel::linear_simulate_expm(const VectorXd& t, const VectorXd& p, double A0,
                                                double lambda_p) const {
  if (!is_linear())
    throw ModelError(origin_ + ": linear_simulate_expm needs a linear model (no binding terms)");
  check_activity(origin_, A0);
  const MatrixXd M = rate_matrix_per_h(p, lambda_p);
  const VectorXd x0 = initial_activity_MBq(A0);
  MatrixXd x(t.size(), n_compartments());
  for (Eigen::Index i = 0; i < t.size(); ++i) {
    const MatrixXd Mt = M * t(i);
    const MatrixXd E = Mt.exp();
    x.row(i) = (E * x0).transpose();
  }
  return x;
}


// ------------------------------------------------------------------------------------------------
// Fitting

namespace {

struct DataPoint {
  int time_index;    // into FitProblem::times
  int observation;   // model observation index
  double y_MBq;
  double inv_sigma;  // 1 / sigma [1/MBq]
};

struct FitProblem {
  const CompartmentModel& model;
  std::vector<int> free;      // parameter indices
  VectorXd base;              // all parameters; the free entries come from theta
  std::vector<double> times;  // sorted, unique
  std::vector<DataPoint> points;
  MatrixXd O;                 // observation matrix
  double A0 = 0.0, lambda_p = 0.0;
  mutable int solutions = 0;

  VectorXd parameters(const VectorXd& theta) const {
    VectorXd p = base;
    for (size_t j = 0; j < free.size(); ++j)
      p(free[j]) = std::exp(std::clamp(theta(static_cast<Eigen::Index>(j)), THETA_MIN, THETA_MAX));
    return p;
  }

  // Weighted residuals (y - f) / sigma; false if the ODE could not be solved.
  bool residuals(const VectorXd& theta, const SolverOptions& s, VectorXd& r) const {
    ++solutions;
    r.resize(static_cast<Eigen::Index>(points.size()));
    try {
      const auto d = model.dynamics(parameters(theta), lambda_p, true);
      const MatrixXd u = solve_fractions(model, d, times, s);
      for (size_t i = 0; i < points.size(); ++i) {
        const auto& pt = points[i];
        const double f = A0 * O.row(pt.observation).dot(u.row(pt.time_index));
        r(static_cast<Eigen::Index>(i)) = (pt.y_MBq - f) * pt.inv_sigma;
      }
    } catch (const std::exception&) {  // odeint's step-size errors, ModelError
      return false;
    }
    return r.allFinite();
  }

  // Weighted residuals and TIA per compartment [MBq h] in one integration; false if the ODE
  // could not be solved.
  bool residuals_and_tia(const VectorXd& theta, const SolverOptions& s, VectorXd& r,
                         VectorXd& tia) const {
    ++solutions;
    r.resize(static_cast<Eigen::Index>(points.size()));
    try {
      const auto d = model.dynamics(parameters(theta), lambda_p, true);
      MatrixXd u;
      solve_with_tia(model, d, times, s, u, tia);
      tia *= A0;
      for (size_t i = 0; i < points.size(); ++i) {
        const auto& pt = points[i];
        const double f = A0 * O.row(pt.observation).dot(u.row(pt.time_index));
        r(static_cast<Eigen::Index>(i)) = (pt.y_MBq - f) * pt.inv_sigma;
      }
    } catch (const std::exception&) {
      return false;
    }
    return r.allFinite() && tia.allFinite();
  }
};

// Residual of a point whose ODE could not be solved: far worse than any real fit, so that
// Levenberg-Marquardt rejects the step.
constexpr double FAILED_RESIDUAL = 1e30;

// Residuals and forward-difference Jacobian for Eigen's Levenberg-Marquardt.
struct LmFunctor {
  using Scalar = double;
  enum { InputsAtCompileTime = Eigen::Dynamic, ValuesAtCompileTime = Eigen::Dynamic };
  using InputType = VectorXd;
  using ValueType = VectorXd;
  using JacobianType = MatrixXd;

  const FitProblem& problem;
  const SolverOptions& solver;
  int n_inputs, n_values;
  // The last evaluations: LM asks for the Jacobian at a point whose residuals it has computed.
  mutable std::vector<std::pair<VectorXd, VectorXd>> cache;

  int inputs() const { return n_inputs; }
  int values() const { return n_values; }

  void evaluate(const VectorXd& theta, VectorXd& r) const {
    for (const auto& [th, res] : cache)
      if (th == theta) {
        r = res;
        return;
      }
    if (!problem.residuals(theta, solver, r)) r.setConstant(n_values, FAILED_RESIDUAL);
    if (cache.size() >= 2) cache.erase(cache.begin());
    cache.emplace_back(theta, r);
  }
  int operator()(const VectorXd& theta, VectorXd& fvec) const {
    evaluate(theta, fvec);
    return 0;
  }
  int df(const VectorXd& theta, MatrixXd& fjac) const {
    VectorXd r0, r1;
    evaluate(theta, r0);
    fjac.resize(n_values, n_inputs);
    for (int j = 0; j < n_inputs; ++j) {
      VectorXd th = theta;
      th(j) += FD_STEP;
      if (!problem.residuals(th, solver, r1) || !r0.allFinite()) {
        fjac.col(j).setZero();
        continue;
      }
      fjac.col(j) = (r1 - r0) / FD_STEP;
    }
    return 0;
  }
};

// The arguments every fit needs.
void check_fit_arguments(const std::string& origin, const std::map<std::string, VoiData>& data, double A0,
                         double lambda_p) {
  if (!(A0 > 0.0) || !std::isfinite(A0))
    throw ModelError(origin + ": fit: the administered activity is " + format_number(A0) +
                     " MBq; expected a finite number > 0");
  if (!(lambda_p >= 0.0) || !std::isfinite(lambda_p))
    throw ModelError(origin + ": fit: lambda_p is " + format_number(lambda_p) +
                     " 1/h; expected a finite number >= 0");
  if (data.empty()) throw ModelError(origin + ": fit: no data; expected at least one VOI");
}

// The parameters the fit starts from: the file's values, or o.start; all finite and >= 0.
VectorXd start_parameters(const CompartmentModel& model, const FitOptions& o) {
  const std::string& origin = model.origin();
  VectorXd base = model.default_parameters();
  if (o.start.size() > 0) {
    if (o.start.size() != model.n_parameters())
      throw ModelError(origin + ": fit: the start vector has " + std::to_string(o.start.size()) +
                       " values; expected " + std::to_string(model.n_parameters()) + " (" +
                       join_names(model.parameter_names()) + ")");
    base = o.start;
  }
  for (int i = 0; i < model.n_parameters(); ++i)
    if (!(base(i) >= 0.0) || !std::isfinite(base(i)))
      throw ModelError(origin + ": fit: parameter " + model.parameters()[i].name + " is " +
                       format_number(base(i)) + "; expected a finite number >= 0");
  return base;
}

// Free parameters: o.free_parameters, else those the file marks "fit"; their indices go to
// problem.free. Also checks the start factors.
std::vector<std::string> set_free_parameters(FitProblem& problem, const FitOptions& o) {
  const CompartmentModel& model = problem.model;
  const std::string& origin = model.origin();
  std::vector<std::string> free_names = o.free_parameters;
  if (free_names.empty())
    for (const auto& par : model.parameters())
      if (par.fit) free_names.push_back(par.name);
  if (free_names.empty())
    throw ModelError(origin + ": fit: no free parameter (none marked \"fit\": true, none given)");
  for (const auto& name : free_names) {
    const int i = model.parameter_index(name);
    if (i < 0)
      throw ModelError(origin + ": fit: free parameter '" + name +
                       "' is unknown; expected one of: " + join_names(model.parameter_names()));
    if (std::find(problem.free.begin(), problem.free.end(), i) != problem.free.end())
      throw ModelError(origin + ": fit: free parameter '" + name + "' is listed twice");
    if (!(problem.base(i) > 0.0))
      throw ModelError(origin + ": fit: free parameter '" + name + "' starts at " +
                       format_number(problem.base(i)) +
                       "; expected a value > 0 (fits work in log(parameter))");
    problem.free.push_back(i);
  }
  for (double f : o.start_factors)
    if (!(f > 0.0) || !std::isfinite(f))
      throw ModelError(origin + ": fit: start factor " + format_number(f) +
                       "; expected a finite number > 0");
  return free_names;
}

// Data: the times of all VOIs, then one point per measurement.
void add_data(FitProblem& problem, const std::map<std::string, VoiData>& data) {
  const CompartmentModel& model = problem.model;
  for (const auto& [voi, d] : data) {
    const std::string where = model.origin() + ": fit: data of VOI '" + voi + "'";
    if (model.observation_index(voi) < 0)
      throw ModelError(where + ": the VOI is not observed by the model; expected one of: " +
                       join_names(model.observation_names()));
    if (d.t_h.empty() || d.activity_MBq.size() != d.t_h.size() ||
        d.sigma_MBq.size() != d.t_h.size())
      throw ModelError(where + ": " + std::to_string(d.t_h.size()) + " times, " +
                       std::to_string(d.activity_MBq.size()) + " activities, " +
                       std::to_string(d.sigma_MBq.size()) +
                       " sigmas; expected the same number (> 0) of each");
    for (size_t i = 0; i < d.t_h.size(); ++i) {
      if (!(d.t_h[i] >= 0.0) || !std::isfinite(d.t_h[i]))
        throw ModelError(where + ": t_h[" + std::to_string(i) + "] is " +
                         format_number(d.t_h[i]) + "; expected a finite time >= 0");
      if (!std::isfinite(d.activity_MBq[i]))
        throw ModelError(where + ": activity_MBq[" + std::to_string(i) + "] is " +
                         format_number(d.activity_MBq[i]) + "; expected a finite number");
      if (!(d.sigma_MBq[i] > 0.0) || !std::isfinite(d.sigma_MBq[i]))
        throw ModelError(where + ": sigma_MBq[" + std::to_string(i) + "] is " +
                         format_number(d.sigma_MBq[i]) + "; expected a finite number > 0");
      problem.times.push_back(d.t_h[i]);
    }
  }
  std::sort(problem.times.begin(), problem.times.end());
  problem.times.erase(std::unique(problem.times.begin(), problem.times.end()),
                      problem.times.end());
  for (const auto& [voi, d] : data)
    for (size_t i = 0; i < d.t_h.size(); ++i) {
      const auto ti = std::lower_bound(problem.times.begin(), problem.times.end(), d.t_h[i]) -
                      problem.times.begin();
      problem.points.push_back({static_cast<int>(ti), model.observation_index(voi),
                                d.activity_MBq[i], 1.0 / d.sigma_MBq[i]});
    }
}

// The best of the starts: its theta, chi-square and Levenberg-Marquardt status.
struct BestStart {
  VectorXd theta;
  double cost = std::numeric_limits<double>::infinity();
  Eigen::LevenbergMarquardtSpace::Status status = Eigen::LevenbergMarquardtSpace::NotStarted;
};

// Multi-start Levenberg-Marquardt in theta = ln(parameter); counts starts and iterations in r.
BestStart multi_start(const FitProblem& problem, const FitOptions& o, CompartmentFit& r) {
  using namespace Eigen::LevenbergMarquardtSpace;
  const int nf = static_cast<int>(problem.free.size());
  const int n = static_cast<int>(problem.points.size());
  BestStart best;
  for (size_t s = 0; s < o.start_factors.size(); ++s) {
    VectorXd theta(nf);
    for (int j = 0; j < nf; ++j)
      theta(j) = std::clamp(std::log(problem.base(problem.free[j]) * o.start_factors[s]),
                            THETA_MIN, THETA_MAX);
    LmFunctor functor{problem, o.fit_solver, nf, n, {}};
    Eigen::LevenbergMarquardt<LmFunctor> lm(functor);
    // ftol, xtol 1e-8: far below the 1 % at which rates matter; progress below that is noise of
    // the ODE solutions anyway.
    lm.parameters.ftol = 1e-8;
    lm.parameters.xtol = 1e-8;
    lm.parameters.maxfev = std::max(10, o.max_function_evaluations / (nf + 1));
    const Status status = lm.minimize(theta);
    ++r.starts;
    r.iterations += static_cast<int>(lm.iter);
    VectorXd res;
    functor.evaluate(theta, res);
    const double cost = res.squaredNorm();
    if (cost < best.cost) {
      best.cost = cost;
      best.theta = theta;
      best.status = status;
      r.best_start = static_cast<int>(s);
    }
  }
  return best;
}

// The parameters at the optimum (theta clamped to its range) and the flags they raise.
void set_optimum(const FitProblem& problem, const std::vector<std::string>& free_names, VectorXd& best_theta,
                 CompartmentFit& r) {
  const int nf = static_cast<int>(problem.free.size());
  for (int j = 0; j < nf; ++j)
    if (best_theta(j) <= THETA_MIN + 1e-6 || best_theta(j) >= THETA_MAX - 1e-6)
      r.flags.push_back("parameter_at_bound:" + free_names[static_cast<size_t>(j)]);
  best_theta = best_theta.cwiseMax(THETA_MIN).cwiseMin(THETA_MAX);
  r.parameters = problem.parameters(best_theta);
  r.free_values.resize(nf);
  for (int j = 0; j < nf; ++j) r.free_values(j) = r.parameters(problem.free[j]);
  for (size_t i = 0; i < problem.model.transfers().size(); ++i)
    if (problem.model.transfers()[i].rate.evaluate(r.parameters) < 0.0)
      r.flags.push_back("negative_rate_clamped:transfers[" + std::to_string(i) + "]");
}

// The fitted curve at each measurement: y - r sigma from the weighted residuals r.
void set_fitted_curves(const std::map<std::string, VoiData>& data, const VectorXd& res, CompartmentFit& r) {
  size_t k = 0;
  for (const auto& [voi, d] : data) {
    auto& curve = r.fitted_MBq[voi];
    for (size_t i = 0; i < d.t_h.size(); ++i, ++k)
      curve.push_back(d.activity_MBq[i] - res(static_cast<Eigen::Index>(k)) * d.sigma_MBq[i]);
  }
}

// Forward-difference Jacobian J of the weighted residuals and gradients G of the TIAs in theta,
// from one augmented integration per parameter (fit solver); false if an ODE failed.
bool jacobian_and_tia_gradient(const FitProblem& problem, const VectorXd& best_theta, const FitOptions& o,
                               MatrixXd& J, MatrixXd& G) {
  const int nf = static_cast<int>(problem.free.size());
  J.resize(static_cast<Eigen::Index>(problem.points.size()), nf);
  G = MatrixXd::Zero(problem.model.n_compartments(), nf);  // d TIA / d theta [MBq h]
  VectorXd r0, tia0;
  bool jacobian_ok = problem.residuals_and_tia(best_theta, o.fit_solver, r0, tia0);
  for (int j = 0; j < nf && jacobian_ok; ++j) {
    VectorXd plus = best_theta, r1, tia1;
    plus(j) += FD_STEP;
    jacobian_ok = problem.residuals_and_tia(plus, o.fit_solver, r1, tia1);
    if (!jacobian_ok) break;
    J.col(j) = (r1 - r0) / FD_STEP;
    G.col(j) = (tia1 - tia0) / FD_STEP;
  }
  return jacobian_ok;
}

// Covariance in theta: (J^T J)^{-1} (J already weighted), via the column-scaled normal matrix
// so that the rank test does not depend on the parameters' units.
MatrixXd covariance_theta(const MatrixXd& J, const FitOptions& o, CompartmentFit& r) {
  const Eigen::Index nf = J.cols();
  VectorXd scale(nf);
  for (Eigen::Index j = 0; j < nf; ++j) scale(j) = J.col(j).norm() > 0 ? 1.0 / J.col(j).norm() : 1.0;
  const MatrixXd Js = J * scale.asDiagonal();
  Eigen::SelfAdjointEigenSolver<MatrixXd> es(Js.transpose() * Js);
  const VectorXd ev = es.eigenvalues();
  const double largest = ev.maxCoeff();
  VectorXd inverse(nf);
  int rank = 0;
  for (Eigen::Index j = 0; j < nf; ++j) {
    const bool kept = ev(j) > RANK_THRESHOLD * largest;
    inverse(j) = kept ? 1.0 / ev(j) : 0.0;
    rank += kept ? 1 : 0;
  }
  if (rank < nf) r.flags.push_back("rank_deficient");
  const MatrixXd pinv = es.eigenvectors() * inverse.asDiagonal() * es.eigenvectors().transpose();
  MatrixXd cov_theta = scale.asDiagonal() * pinv * scale.asDiagonal();
  if (o.relative_sigmas) cov_theta *= r.reduced_chi_square;  // NaN when dof = 0
  return cov_theta;
}

// Standard uncertainties of quantities with gradients `grad` (rows) in theta: var = g^T Cov_theta g.
VectorXd propagate(const MatrixXd& grad, const MatrixXd& cov_theta) {
  VectorXd u(grad.rows());
  for (Eigen::Index i = 0; i < grad.rows(); ++i) {
    const double var = grad.row(i) * cov_theta * grad.row(i).transpose();
    u(i) = std::isnan(var) ? NaN : std::sqrt(std::max(0.0, var));
  }
  return u;
}

// The covariance of the free parameters and the TIAs' uncertainties at the optimum.
void set_uncertainties(const FitProblem& problem, const VectorXd& best_theta, const FitOptions& o,
                       CompartmentFit& r) {
  const int nf = static_cast<int>(problem.free.size());
  MatrixXd J, G;
  MatrixXd cov_theta = MatrixXd::Constant(nf, nf, NaN);
  if (jacobian_and_tia_gradient(problem, best_theta, o, J, G))
    cov_theta = covariance_theta(J, o, r);
  else
    r.flags.push_back("ode_failed_near_optimum");
  // Natural units: p = e^theta, dp/dtheta = p.
  r.covariance = r.free_values.asDiagonal() * cov_theta * r.free_values.asDiagonal();
  r.standard_errors = r.covariance.diagonal().unaryExpr(
      [](double v) { return std::isnan(v) ? NaN : std::sqrt(std::max(0.0, v)); });
  r.tia_compartment_u_MBq_h = propagate(G, cov_theta);
  r.tia_voi_u_MBq_h = propagate(problem.O * G, cov_theta);
}

}  // namespace

CompartmentFit fit(const CompartmentModel& model, const std::map<std::string, VoiData>& data,
                   double A0, double lambda_p, const FitOptions& o) {
  check_fit_arguments(model.origin(), data, A0, lambda_p);
  FitProblem problem{model, {}, start_parameters(model, o), {}, {}, model.observation_matrix(),
                     A0, lambda_p};
  const std::vector<std::string> free_names = set_free_parameters(problem, o);
  add_data(problem, data);

  CompartmentFit r;
  r.free_parameters = free_names;
  r.vois = model.observation_names();
  r.compartments = model.compartment_names();
  const int nf = static_cast<int>(problem.free.size());
  const int n = static_cast<int>(problem.points.size());
  r.n_points = n;
  r.dof = n - nf;
  if (n < nf) {
    r.flags.push_back("too_few_points");
    r.status = "not fitted: " + std::to_string(n) + " points for " + std::to_string(nf) +
               " free parameters";
    return r;
  }

  using namespace Eigen::LevenbergMarquardtSpace;
  BestStart best = multi_start(problem, o, r);
  r.status = status_text(best.status);
  r.converged = best.cost < FAILED_RESIDUAL && best.status != TooManyFunctionEvaluation &&
                best.status != ImproperInputParameters && best.status != UserAsked &&
                best.status != NotStarted;
  if (!r.converged) r.flags.push_back("not_converged");
  if (!(best.cost < FAILED_RESIDUAL)) {
    r.ode_solutions = problem.solutions;
    return r;
  }
  set_optimum(problem, free_names, best.theta, r);

  // Chi-square, fitted curves and TIAs with the accurate solver.
  VectorXd res;
  if (!problem.residuals_and_tia(best.theta, o.solver, res, r.tia_compartment_MBq_h)) {
    r.flags.push_back("ode_failed_at_optimum");
    r.converged = false;
    r.ode_solutions = problem.solutions;
    return r;
  }
  r.tia_voi_MBq_h = problem.O * r.tia_compartment_MBq_h;
  r.chi_square = res.squaredNorm();
  r.reduced_chi_square = r.dof > 0 ? r.chi_square / r.dof : NaN;
  set_fitted_curves(data, res, r);
  set_uncertainties(problem, best.theta, o, r);
  r.ode_solutions = problem.solutions;
  return r;
}

}  // namespace lutdose::models
