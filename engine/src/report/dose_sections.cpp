// Dose, cumulative and plan sections of the patient report (report/sections.h).
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <sstream>

#include "lutdose/report/html.h"
#include "lutdose/report/results_loader.h"
#include "lutdose/report/svg_plot.h"
#include "sections.h"

namespace lutdose::report::detail {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

bool is_organ_at_risk(const ReportContext& ctx, const std::string& target) {
  return std::isfinite(limit_of(ctx, target, "dose_Gy")) || std::isfinite(limit_of(ctx, target, "bed_Gy"));
}

std::string interval_cells(const json& d, const char* key) {
  const auto& ci = arr(d, key);
  const bool known = ci.size() == 2 && ci[0].is_number() && ci[1].is_number();
  return num_cell("ci95_low_Gy", known ? ci[0].get<double>() : kNaN) +
         num_cell("ci95_high_Gy", known ? ci[1].get<double>() : kNaN);
}

std::string percent_cell(const ReportContext& ctx, const std::string& target, double dose, double bed) {
  const double ld = limit_of(ctx, target, "dose_Gy"), lb = limit_of(ctx, target, "bed_Gy");
  std::string s;
  if (std::isfinite(ld)) s += fmt(100 * dose / ld, 3) + " % of " + fmt(ld) + " Gy";
  if (std::isfinite(lb)) s += std::string(s.empty() ? "" : "; ") + "BED " + fmt(100 * bed / lb, 3) + " % of " + fmt(lb) + " Gy";
  return "<td class=\"l\" data-field=\"pct_limit\">" + (s.empty() ? std::string("no limit") : s) + "</td>";
}

std::string unknown_u_why(const json& d) {
  if (!d.value("uncertainty_incomplete", false)) return "";
  std::string s;
  for (const auto& m : arr(d, "uncertainty_missing_inputs"))
    if (m.is_string()) s += (s.empty() ? "" : ", ") + m.get<std::string>();
  return "<div class=\"why\">u unknown: no u for " + html_escape(s) + "</div>";
}

std::string dose_row(const json& d, const ReportContext& ctx) {
  const std::string target = str(d, "target");
  std::ostringstream o;
  o << "<tr data-target=\"" << html_escape(target) << "\"><td class=\"l\">" << html_escape(target) << unknown_u_why(d)
    << "</td><td class=\"l\">" << html_escape(str(d, "kind")) << "</td>" << num_cell("dose_Gy", num(d, "dose_Gy"))
    << num_cell("dose_Gy_per_GBq", num(d, "dose_Gy_per_GBq")) << num_cell("dose_u_Gy", num(d, "dose_u_Gy"), 3)
    << interval_cells(d, "dose_ci95_Gy") << num_cell("bed_Gy", num(d, "bed_Gy")) << num_cell("eqd2_Gy", num(d, "eqd2_Gy"))
    << percent_cell(ctx, target, num(d, "dose_Gy"), num(d, "bed_Gy")) << "</tr>";
  return o.str();
}

const char* kDoseHeader =
    "<tr><th class=\"l\">target</th><th class=\"l\">kind</th><th>dose [Gy]</th><th>Gy/GBq</th><th>u [Gy]</th>"
    "<th>95 % low [Gy]</th><th>95 % high [Gy]</th><th>BED [Gy]</th><th>EQD2 [Gy]</th><th class=\"l\">of the limit</th></tr>";

std::string budget_chart(const json& d, const std::string& patient, int cycle) {
  std::vector<Bar> bars;
  for (const auto& b : arr(d, "uncertainty_budget"))
    bars.push_back({str(b, "input"), num(b, "u_Gy"), okabe_ito()[5], "unknown (no u for this input)"});
  if (bars.empty())
    return "<p>" + html_escape(str(d, "target")) + ": no uncertainty budget (cross-dose only).</p>";
  return render_bar_chart("Uncertainty budget of " + str(d, "target") + ", cycle " + std::to_string(cycle) +
                              " (u = " + fmt(num(d, "dose_u_Gy"), 3) + " Gy)",
                          "contribution |c u| [Gy] (k = 1)", bars,
                          {{"target", str(d, "target")}, {"patient", patient}, {"cycle", std::to_string(cycle)}});
}

}  // namespace

double limit_of(const ReportContext& ctx, const std::string& target, const std::string& quantity) {
  double v = kNaN;
  for (const auto& l : ctx.limits)
    if (l.quantity == quantity && target_matches(l.target_pattern, target)) v = std::isfinite(v) ? std::min(v, l.value) : l.value;
  return v;
}

std::string dose_section(const json& cycle, const std::string& patient, const ReportContext& ctx) {
  const int c = cycle_number(cycle);
  std::ostringstream main, regions, budgets;
  std::size_t n_regions = 0;
  for (const auto& d : arr(cycle, "doses")) {
    const std::string target = str(d, "target");
    if (str(d, "kind") != "region" || is_organ_at_risk(ctx, target)) main << dose_row(d, ctx);
    else { regions << dose_row(d, ctx); ++n_regions; }
    if (is_organ_at_risk(ctx, target)) budgets << budget_chart(d, patient, c);
  }
  std::ostringstream o;
  o << "<section class=\"doses major\" data-cycle=\"" << c << "\"><h2>Absorbed doses, cycle " << c << "</h2>"
    << "<p>Administered " << fmt(num(cycle, "administered_MBq")) << " MBq. u: standard uncertainty (k = 1, GUM); "
    << "95 % interval: Student-t with the Welch-Satterthwaite degrees of freedom; % of the limit: this cycle's dose "
    << "against the cumulative limit of " << html_escape(ctx.limits_path) << ". BED and EQD2 \xE2\x80\x94: no tissue "
    << "parameters for the target; u \xE2\x80\x94: an input's u is unknown (named under the target).</p>"
    << "<table class=\"dose-table\" data-cycle=\"" << c << "\" data-patient=\"" << html_escape(patient) << "\">"
    << kDoseHeader << main.str() << "</table>";
  for (const auto& n : arr(cycle, "dose_notes"))
    if (n.is_string()) o << "<p class=\"note\">Note: " << html_escape(n.get<std::string>()) << "</p>";
  o << "<h3>Uncertainty budget of the organs at risk</h3>" << budgets.str();
  if (n_regions > 0)
    o << "<details><summary>Cross-dose to the " << n_regions << " other regions of the phantom</summary>"
      << "<table class=\"region-table\">" << kDoseHeader << regions.str() << "</table></details>";
  o << "</section>";
  return o.str();
}

namespace {

// Cumulative sums after each cycle of `field` for the target (NaN once a cycle's value is unknown).
std::vector<double> running_sum(const json& patient, const std::string& target, const char* field) {
  std::vector<double> out;
  double sum = 0;
  for (const auto& c : arr(patient, "cycles")) {
    double v = kNaN;
    for (const auto& d : arr(c, "doses"))
      if (str(d, "target") == target) v = num(d, field);
    sum += v;
    out.push_back(sum);
  }
  return out;
}

std::string history_plot(const json& patient, const std::vector<std::string>& targets, const ReportContext& ctx,
                         const char* field, const char* quantity) {
  PlotSpec spec;
  spec.title = std::string("Cumulative ") + (field[0] == 'b' ? "BED" : "absorbed dose") + " of the organs at risk";
  spec.x_label = "after cycle [number]";
  spec.integer_x = true;
  spec.y_label = std::string(field[0] == 'b' ? "cumulative BED" : "cumulative dose") + " [Gy]";
  std::vector<double> cycles;
  for (const auto& c : arr(patient, "cycles")) cycles.push_back(num(c, "cycle"));
  std::size_t k = 0;
  for (const auto& t : targets) {
    const std::string colour = okabe_ito()[1 + k++ % 7];
    spec.series.push_back({Series::Kind::line, t, "curve cumulative", colour, cycles, running_sum(patient, t, field), {}, {},
                           false, 2, {{"target", t}}});
    spec.series.push_back({Series::Kind::points, "", "cumulative-point", colour, cycles, running_sum(patient, t, field),
                           {}, {}, false, 1, {{"target", t}}});
    const double lim = limit_of(ctx, t, quantity);
    if (std::isfinite(lim) && !cycles.empty())
      spec.series.push_back({Series::Kind::line, "limit " + t + " " + fmt(lim) + " Gy", "limit", colour,
                             {cycles.front(), cycles.back()}, {lim, lim}, {}, {}, true, 1.2, {{"target", t}}, true});
  }
  return render_plot(spec);
}

}  // namespace

std::string cumulative_section(const json& patient, const ReportContext& ctx) {
  const auto& cycles = arr(patient, "cycles");
  if (cycles.size() < 2) return "";
  std::vector<std::string> oars;
  std::ostringstream rows;
  for (const auto& d : arr(obj(patient, "cumulative"), "doses")) {
    const std::string t = str(d, "target");
    if (!is_organ_at_risk(ctx, t)) continue;
    oars.push_back(t);
    rows << "<tr data-target=\"" << html_escape(t) << "\"><td class=\"l\">" << html_escape(t) << unknown_u_why(d) << "</td>";
    const auto dose = running_sum(patient, t, "dose_Gy"), bed = running_sum(patient, t, "bed_Gy");
    for (std::size_t i = 0; i < cycles.size(); ++i)
      rows << num_cell("dose_Gy_after_" + std::to_string(i + 1), dose[i]) << num_cell("bed_Gy_after_" + std::to_string(i + 1), bed[i]);
    rows << num_cell("dose_Gy", num(d, "dose_Gy")) << num_cell("dose_u_Gy", num(d, "dose_u_Gy"), 3)
         << num_cell("bed_Gy", num(d, "bed_Gy")) << percent_cell(ctx, t, num(d, "dose_Gy"), num(d, "bed_Gy")) << "</tr>";
  }
  std::ostringstream o;
  o << "<section class=\"cumulative major\"><h2>Organs at risk over the cycles</h2><table class=\"cumulative-table\"><tr>"
    << "<th class=\"l\">target</th>";
  for (std::size_t i = 0; i < cycles.size(); ++i)
    o << "<th>dose after cycle " << i + 1 << " [Gy]</th><th>BED after cycle " << i + 1 << " [Gy]</th>";
  o << "<th>total dose [Gy]</th><th>u [Gy]</th><th>total BED [Gy]</th><th class=\"l\">of the limit</th></tr>" << rows.str()
    << "</table><div class=\"plots\">" << history_plot(patient, oars, ctx, "dose_Gy", "dose_Gy")
    << history_plot(patient, oars, ctx, "bed_Gy", "bed_Gy") << "</div></section>";
  return o.str();
}

std::string plan_section(const ReportContext& ctx) {
  if (!ctx.plan.is_object()) return "";
  const auto& p = ctx.plan;
  std::ostringstream o;
  const double a = num(p, "activity_MBq");
  o << "<section class=\"plan major\"><h2>Plan of the next cycle</h2><p>From " << html_escape(ctx.plan_path)
    << ". Cycle " << fmt(num(p, "next_cycle"), 1) << ": <b>"
    << (p.value("stop", false) ? std::string("stop, no further cycle")
                               : std::isfinite(a) ? fmt(a) + " MBq" : std::string("no prescription (incomplete doses)"))
    << "</b>. Binding: " << html_escape(str(obj(p, "binding"), "target")) << " "
    << html_escape(str(obj(p, "binding"), "quantity")) << " " << fmt(num(obj(p, "binding"), "limit")) << ".</p>"
    << "<table class=\"plan-table\"><tr><th class=\"l\">target</th><th>predicted Gy/GBq</th><th>predicted dose [Gy]</th>"
    << "<th>cumulative dose [Gy]</th><th>limit dose [Gy]</th><th>P(exceed dose)</th><th>cumulative BED [Gy]</th>"
    << "<th>limit BED [Gy]</th><th>P(exceed BED)</th><th>max activity [MBq]</th></tr>";
  for (const auto& t : arr(p, "targets"))
    o << "<tr data-target=\"" << html_escape(str(t, "name")) << "\"><td class=\"l\">" << html_escape(str(t, "name")) << "</td>"
      << num_cell("predicted_dose_Gy_per_GBq", num(t, "predicted_dose_Gy_per_GBq"))
      << num_cell("predicted_dose_Gy", num(t, "predicted_dose_Gy")) << num_cell("cumulative_dose_Gy", num(t, "cumulative_dose_Gy"))
      << num_cell("limit_dose_Gy", num(t, "limit_dose_Gy")) << num_cell("p_exceed_dose", num(t, "p_exceed_dose"), 3)
      << num_cell("cumulative_bed_Gy", num(t, "cumulative_bed_Gy")) << num_cell("limit_bed_Gy", num(t, "limit_bed_Gy"))
      << num_cell("p_exceed_bed", num(t, "p_exceed_bed"), 3) << num_cell("max_activity_MBq", num(t, "max_activity_MBq"))
      << "</tr>";
  o << "</table><h3>Reasoning</h3><ol>";
  for (const auto& r : arr(p, "reasoning"))
    if (r.is_string()) o << "<li>" << html_escape(r.get<std::string>()) << "</li>";
  o << "</ol></section>";
  return o.str();
}

}  // namespace lutdose::report::detail
