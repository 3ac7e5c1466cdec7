// The per-VOI fit section of the patient report: plots and the fit table (report/sections.h).
#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "lutdose/report/fit_curve.h"
#include "lutdose/report/html.h"
#include "lutdose/report/results_loader.h"
#include "lutdose/report/svg_plot.h"
#include "sections.h"

namespace lutdose::report::detail {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr int kCurveSamples = 200;  // 200 samples: smooth at the plot's 430-pixel width

std::vector<double> numbers(const json& a) {
  std::vector<double> v;
  for (const auto& x : a) v.push_back(x.is_number() ? x.get<double>() : kNaN);
  return v;
}

// The index of the selected candidate, or -1 (trapezoid, reduced schedule, compartment model). A
// MAP (population or previous-cycles kinetics) has its one candidate as the result.
int selected_candidate(const json& fit) {
  const std::string method = str(fit, "method"), function = str(fit, "function");
  const bool map = method == "population MAP" || method == "previous-cycles MAP";
  if (method != "fit" && method != "model average" && !map) return -1;
  const auto& c = arr(fit, "candidates");
  for (std::size_t i = 0; i < c.size(); ++i)
    if (str(c[i], "function") == function) return static_cast<int>(i);
  return -1;
}

// The measured points with error bars (activity_u_MBq: +-1 standard uncertainty).
Series measured_points(const json& voi) {
  Series s;
  s.kind = Series::Kind::points;
  s.label = "measured (error bars: \xC2\xB1 u)";
  s.css_class = "point";
  s.colour = okabe_ito()[0];
  s.x = numbers(arr(voi, "time_h"));
  s.y = numbers(arr(voi, "activity_MBq"));
  const auto u = numbers(arr(voi, "activity_u_MBq"));
  for (std::size_t i = 0; i < s.y.size(); ++i) {
    const double ui = i < u.size() ? u[i] : kNaN;
    s.low.push_back(std::isfinite(ui) ? s.y[i] - ui : kNaN);
    s.high.push_back(std::isfinite(ui) ? s.y[i] + ui : kNaN);
  }
  return s;
}

double t_max_of(const std::vector<double>& t) {
  double m = 0;
  for (double v : t)
    if (std::isfinite(v)) m = std::max(m, v);
  return m > 0 ? 1.15 * m : 1;  // 15 % beyond the last scan shows where the curve heads
}

// Curves of every fitted candidate (selected: thick, vermillion, with its band); notes why not.
void add_curves(PlotSpec& spec, const json& doc, const json& fit, double t_max, std::string& note) {
  const double lambda_p = num(obj(doc, "nuclide"), "lambda_per_h");
  const int sel = selected_candidate(fit);
  const auto& cands = arr(fit, "candidates");
  std::size_t colour = 1;
  for (std::size_t i = 0; i < cands.size(); ++i) {
    const bool selected = static_cast<int>(i) == sel;
    const auto curve = sample_candidate(cands[i], lambda_p, t_max, kCurveSamples, 0.95);
    const std::string fn = str(cands[i], "function");
    if (!curve.drawn) continue;
    if (selected && curve.band) {
      Series b{Series::Kind::band, "95 % band of " + fn, "band", okabe_ito()[6], curve.t_h, {}, curve.low_MBq,
               curve.high_MBq, false, 1, {}};
      spec.series.insert(spec.series.begin(), b);
    } else if (selected) {
      note += "No 95 % band: " + curve.band_why_not + ". ";
    }
    Series s{Series::Kind::line, fn + (selected ? " (selected)" : ""), selected ? "curve candidate selected" : "curve candidate",
             selected ? okabe_ito()[6] : okabe_ito()[colour == 6 ? ++colour : colour], curve.t_h, curve.a_MBq, {}, {},
             !selected, selected ? 2.5 : 1.3, {{"function", fn}}};
    if (!selected) colour = colour % 7 + 1;
    spec.series.push_back(s);
  }
  if (sel < 0) note += "Selected: " + str(fit, "function") + " (" + str(fit, "method") + "), not a fitted curve. ";
}

// A trapezoid result: a line through the measured points (its head and tail rules are in the notes).
void add_trapezoid(PlotSpec& spec, const json& fit, const Series& points, std::string& note) {
  if (str(fit, "method") != "trapezoid") return;
  spec.series.push_back({Series::Kind::line, "trapezoid (selected)", "curve trapezoid selected", okabe_ito()[6], points.x,
                         points.y, {}, {}, false, 2.5, {{"function", "trapezoid"}}});
  note += "The trapezoid is drawn between the points; its head and tail: see the notes. ";
}

}  // namespace

std::string tac_plot(const json& doc, const json& voi, const std::string& patient, int cycle, bool log_y) {
  PlotSpec spec;
  const std::string name = str(voi, "name");
  spec.title = name + " (cycle " + std::to_string(cycle) + "), " + (log_y ? "log" : "linear") + " scale";
  spec.x_label = "time after administration [h]";
  spec.y_label = "activity [MBq]";
  spec.log_y = log_y;
  const Series pts = measured_points(voi);  // a copy: the series vector grows below
  spec.series.push_back(pts);
  std::size_t n_points = 0, not_shown = 0;
  for (std::size_t i = 0; i < pts.y.size() && i < pts.x.size(); ++i) {
    if (!std::isfinite(pts.x[i]) || !std::isfinite(pts.y[i])) continue;
    ++n_points;
    if (log_y && pts.y[i] <= 0) ++not_shown;
  }
  std::string note;
  add_curves(spec, doc, obj(voi, "fit"), t_max_of(pts.x), note);
  add_trapezoid(spec, obj(voi, "fit"), pts, note);
  std::size_t n_curves = 0;
  for (const auto& s : spec.series) n_curves += s.css_class.rfind("curve", 0) == 0 ? 1 : 0;
  if (not_shown > 0) note += std::to_string(not_shown) + " point(s) <= 0 MBq not shown on the log scale. ";
  spec.note = note;
  spec.data = {{"voi", name}, {"patient", patient}, {"cycle", std::to_string(cycle)}, {"kind", "tac"},
               {"points", std::to_string(n_points)}, {"curves", std::to_string(n_curves)}};
  return render_plot(spec);
}

namespace {

std::string residual_plot(const json& voi, const std::string& patient, int cycle) {
  PlotSpec spec;
  spec.title = str(voi, "name") + ": standardized residuals";
  spec.x_label = "time after administration [h]";
  spec.y_label = "standardized residual [1]";
  spec.zero_line = true;
  spec.height = 220;
  const auto t = numbers(arr(voi, "time_h"));
  const auto& fit = obj(voi, "fit");
  const int sel = selected_candidate(fit);
  const auto& cands = arr(fit, "candidates");
  for (std::size_t i = 0; i < cands.size(); ++i) {
    const auto r = numbers(arr(cands[i], "standardized_residuals"));
    if (r.empty()) continue;
    const bool selected = static_cast<int>(i) == sel;
    Series s{Series::Kind::points, str(cands[i], "function") + (selected ? " (selected)" : ""), "residual",
             selected ? okabe_ito()[6] : okabe_ito()[1 + i % 5], t, r, {}, {}, false, 1,
             {{"function", str(cands[i], "function")}}};
    spec.series.push_back(s);
  }
  spec.data = {{"voi", str(voi, "name")}, {"patient", patient}, {"cycle", std::to_string(cycle)}, {"kind", "residuals"}};
  return render_plot(spec);
}

// "value ± u" of each parameter (u from the covariance's diagonal).
std::string parameters_cell(const json& c) {
  const auto& names = arr(c, "parameter_names");
  const auto& cov = arr(c, "covariance");
  std::string s;
  for (std::size_t i = 0; i < names.size(); ++i) {
    const std::string n = names[i].is_string() ? names[i].get<std::string>() : "?";
    double u = kNaN;
    if (i < cov.size() && cov[i].is_array() && i < cov[i].size() && cov[i][i].is_number())
      u = std::sqrt(std::max(0.0, cov[i][i].get<double>()));
    const auto& pu = arr(c, "parameter_u");  // a store's candidates: the u itself
    if (cov.empty() && i < pu.size() && pu[i].is_number()) u = pu[i].get<double>();
    s += "<div>" + html_escape(n) + " = " + fmt(num(obj(c, "parameters"), n.c_str())) + " \xC2\xB1 " + fmt(u, 2) +
         "</div>";
  }
  return s.empty() ? "\xE2\x80\x94" : s;
}

std::string words_of(const json& c) {
  std::string s;
  for (const char* key : {"flags", "warnings"})
    for (const auto& f : arr(c, key))
      if (f.is_string())
        s += std::string("<div class=\"") + (key[0] == 'f' ? "flag" : "warning") + "\">" + html_escape(flag_words(f)) +
             "</div>";
  return s.empty() ? "none" : s;
}

std::string fit_table(const json& voi) {
  const auto& fit = obj(voi, "fit");
  const int sel = selected_candidate(fit);
  std::ostringstream o;
  o << "<table class=\"fit-table\" data-voi=\"" << html_escape(str(voi, "name")) << "\"><tr><th>function</th>"
    << "<th>parameters \xC2\xB1 u</th><th>TIA [MBq h]</th><th>u(TIA) [MBq h]</th><th>AICc</th><th>Akaike weight</th>"
    << "<th>R\xC2\xB2</th><th>accepted</th><th class=\"l\">quality findings</th></tr>";
  const auto& cands = arr(fit, "candidates");
  for (std::size_t i = 0; i < cands.size(); ++i) {
    const auto& c = cands[i];
    const bool selected = static_cast<int>(i) == sel;
    o << "<tr data-function=\"" << html_escape(str(c, "function")) << "\"" << (selected ? " class=\"selected\"" : "")
      << "><td class=\"l\">" << html_escape(str(c, "function")) << (selected ? " (selected)" : "") << "</td><td class=\"l params\">"
      << parameters_cell(c) << "</td>" << num_cell("tia_MBq_h", num(c, "tia_MBq_h"))
      << num_cell("tia_u_MBq_h", num(c, "tia_u_MBq_h")) << num_cell("aicc", num(c, "aicc"))
      << num_cell("akaike_weight", num(c, "akaike_weight"), 3) << num_cell("r_squared", num(c, "r_squared"))
      << "<td>" << (c.value("accepted", false) ? "yes" : "no") << "</td><td class=\"l\">" << words_of(c) << "</td></tr>";
  }
  o << "</table><p class=\"note\">u: standard uncertainty (k = 1) from the covariance. AICc \xE2\x80\x94: fewer than "
    << "K + 2 points (AICc undefined); Akaike weight \xE2\x80\x94: no AICc, not accepted, or the same curve as another "
    << "candidate.</p>";
  if (cands.empty()) o << "<p>No candidate fits.</p>";
  return o.str();
}

std::string tia_summary(const json& voi) {
  std::ostringstream o;
  const auto& fit = obj(voi, "fit");
  o << "<p class=\"tia\">Result: <b>" << html_escape(str(fit, "function")) << "</b> (" << html_escape(str(fit, "method"))
    << (fit.value("accepted", false) ? ", meets the quality criteria" : ", does NOT meet the quality criteria")
    << "): TIA <span data-field=\"tia_MBq_h\">" << fmt(num(voi, "tia_MBq_h")) << "</span> MBq h, u "
    << fmt(num(voi, "tia_u_MBq_h"), 3) << " MBq h";
  if (!std::isfinite(num(voi, "tia_u_MBq_h")))
    o << " (unknown: " << html_escape(str(voi, "tia_u_unknown_reason").empty() ? "not computed" : str(voi, "tia_u_unknown_reason")) << ")";
  const auto& ci = arr(voi, "tia_ci95_MBq_h");
  if (ci.size() == 2 && ci[0].is_number() && ci[1].is_number())
    o << ", 95 % interval [" << fmt(ci[0].get<double>()) << ", " << fmt(ci[1].get<double>()) << "] MBq h";
  o << ". Selection: " << html_escape(str(fit, "selection")) << ".</p>";
  for (const auto& n : arr(fit, "notes"))
    if (n.is_string()) o << "<p class=\"note\">Note: " << html_escape(n.get<std::string>()) << "</p>";
  return o.str();
}

}  // namespace

std::string voi_section(const json& doc, const json& voi, const std::string& patient, int cycle) {
  std::ostringstream o;
  const std::string name = str(voi, "name");
  o << "<section class=\"voi\" data-voi=\"" << html_escape(name) << "\" data-cycle=\"" << cycle << "\" data-patient=\""
    << html_escape(patient) << "\" data-points=\"" << arr(voi, "time_h").size() << "\"><h3>" << html_escape(name)
    << " <small>cycle " << cycle << "</small></h3>";
  if (arr(voi, "time_h").empty())
    o << "<p class=\"note\">No plot: the measured points are not in this input.</p>";
  else
    o << "<div class=\"plots\">" << tac_plot(doc, voi, patient, cycle, false) << tac_plot(doc, voi, patient, cycle, true)
      << "</div><div class=\"plots\">" << residual_plot(voi, patient, cycle) << "</div>";
  o << tia_summary(voi) << fit_table(voi) << "</section>";
  return o.str();
}

std::string flag_words(const std::string& code) {
  static const std::vector<std::pair<std::string, std::string>> words = {
      {"not_converged", "the fit did not converge"},
      {"rank_deficient", "parameters not identifiable (rank-deficient)"},
      {"no_degrees_of_freedom", "no degrees of freedom (as many parameters as points)"},
      {"covariance_not_finite", "uncertainty not computable (covariance not finite)"},
      {"negative_amplitude:", "negative amplitude: "},
      {"rate_at_lower_bound:", "rate at its lower bound (no biological clearance): "},
      {"rates_coincide:", "two rates coincide: "},
      {"rate_not_identifiable:", "rate not identifiable (its component was over before the first scan): "},
      {"cv_at_least_50_percent:", "parameter uncertain (CV at least 50 %): "},
      {"tia_not_positive", "TIA not positive"},
      {"near_zero_activity_at_", "near-zero activity at points: "},
      {"correlation_at_least_0.8:", "parameters strongly correlated (|r| at least 0.8): "},
      {"relative_weight_capped_at_", "relative weight capped at points: "},
      {"same_fit_as:", "same curve as another candidate: "},
      {"runs_test_p_below_0.05", "residuals not random (runs test p < 0.05)"},
      {"chi_square_p_below_0.01", "poor fit to the stated sigmas (chi-square p < 0.01; covariance scaled)"}};
  for (const auto& [prefix, text] : words)
    if (code.rfind(prefix, 0) == 0) {
      const std::string rest = code.substr(prefix.size());
      return rest.empty() || prefix.back() != ':' ? (rest.empty() ? text : text + rest) : text + rest;
    }
  return code;
}

int cycle_number(const json& cycle) {
  const double c = num(cycle, "cycle");
  return std::isfinite(c) && std::fabs(c) < 1e9 ? static_cast<int>(c) : 0;
}

std::string num_cell(const std::string& field, double v, int digits) {
  return "<td data-field=\"" + html_escape(field) + "\" data-value=\"" + (std::isfinite(v) ? fmt_exact(v) : "") + "\">" +
         fmt(v, digits) + "</td>";
}

}  // namespace lutdose::report::detail
