// The per-patient HTML report (report/patient_report.h).
#include "lutdose/report/patient_report.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "lutdose/error.h"
#include "lutdose/io/store.h"
#include "lutdose/report/html.h"
#include "lutdose/report/results_loader.h"
#include "sections.h"

namespace lutdose::report {

namespace fs = std::filesystem;
using nlohmann::json;
using detail::num_cell;

namespace {

const char* kCss =
    "body{font-family:sans-serif;max-width:1120px;margin:0 auto;padding:12px;color:#111;font-size:14px}"
    "h1{font-size:22px}h2{font-size:18px;border-bottom:2px solid #0072B2}h3{font-size:15px}"
    "table{border-collapse:collapse;margin:6px 0;font-size:12.5px;break-inside:avoid}"
    "td,th{border:1px solid #bbb;padding:2px 6px;text-align:right;vertical-align:top}th{background:#eef}"
    ".l{text-align:left}td.params{white-space:nowrap}tr.selected td{background:#fde9d9;font-weight:bold}.flag{color:#a00}.warning{color:#8a5a00}"
    ".why{font-size:11px;color:#a00}.plots{display:flex;flex-wrap:wrap;gap:8px}svg{break-inside:avoid;max-width:100%;height:auto}"
    "section.voi{break-inside:avoid;border-top:1px solid #ccc}pre{white-space:pre-wrap;font-size:11px;background:#f6f6f6}"
    ".note{font-size:12.5px}footer{font-size:11px;color:#555;margin-top:2em}"
    "@media print{body{max-width:none;font-size:11px}section.major{break-before:page}details::details-content{content-visibility:visible;display:block}"
    "svg.plot{width:49%}h2,h3{break-after:avoid}@page{size:A4;margin:12mm}}";

std::string row(const std::string& name, const std::string& value) {
  return "<tr><th class=\"l\">" + name + "</th><td class=\"l\">" + value + "</td></tr>";
}

std::string or_unknown(const std::string& s, const std::string& why) {
  return s.empty() ? "unknown (" + html_escape(why) + ")" : html_escape(s);
}

std::string overview_section(const json& doc, const json& patient) {
  const auto& nuc = obj(doc, "nuclide");
  const auto& dose = obj(obj(doc, "options"), "dose");
  std::ostringstream o;
  o << "<section class=\"overview\"><table class=\"overview-table\">"
    << row("patient", or_unknown(str(patient, "id"), "the input names no patient"))
    << row("nuclide", html_escape(str(nuc, "name")) + ", T\xC2\xBD = " + fmt(num(nuc, "half_life_h"), 6) + " h, \xCE\xBB = " +
                          fmt(num(nuc, "lambda_per_h"), 6) + " 1/h; " + html_escape(str(nuc, "source")))
    << row("phantom", or_unknown(str(dose, "phantom"), "not in the results"))
    << row("S-value set", or_unknown(str(dose, "svalue_set"), "not in the results"))
    << row("fit options", html_escape(obj(doc, "options").value("fit", json::object()).dump()))
    << "</table><table class=\"cycles-table\"><tr><th>cycle</th><th>administered [MBq]</th><th class=\"l\">reference time</th>"
    << "<th>VOIs</th></tr>";
  for (const auto& c : arr(patient, "cycles")) {
    const std::string ref = str(obj(c, "quantification"), "reference_time");
    o << "<tr data-cycle=\"" << std::to_string(detail::cycle_number(c)) << "\"><td>" << std::to_string(detail::cycle_number(c)) << "</td>"
      << num_cell("administered_MBq", num(c, "administered_MBq"), 6) << "<td class=\"l\">"
      << (ref.empty() ? "\xE2\x80\x94 (TAC input: times are hours after administration)" : html_escape(ref)) << "</td><td>"
      << arr(c, "vois").size() << "</td></tr>";
  }
  o << "</table></section>";
  return o.str();
}

std::string patient_html(const json& doc, const json& patient, const ReportContext& ctx) {
  std::ostringstream o;
  const std::string id = str(patient, "id");
  o << "<article class=\"patient\" data-patient=\"" << html_escape(id) << "\"><h1>Dosimetry report: patient "
    << (id.empty() ? "(unnamed)" : html_escape(id)) << "</h1>";
  if (!ctx.source_note.empty()) o << "<p class=\"source-note\"><b>" << html_escape(ctx.source_note) << "</b></p>";
  o << overview_section(doc, patient);
  for (const auto& c : arr(patient, "cycles")) {
    const int cycle = detail::cycle_number(c);
    o << "<section class=\"fits major\" data-cycle=\"" << cycle << "\"><h2>Time-activity curves and fits, cycle " << cycle
      << "</h2>";
    if (ctx.source_note.empty())
      o << "<p>Points: measured activities (not decay-corrected) with \xC2\xB1 1 standard uncertainty where known. "
        << "Curves: every fitted candidate function (dashed), the selected one thick with its 95 % band (delta method "
        << "on the parameter covariance, Student-t with the fit's degrees of freedom).</p>";
    for (const auto& v : arr(c, "vois")) o << detail::voi_section(doc, v, id, cycle);
    o << "</section>" << detail::dose_section(c, id, ctx);
  }
  o << detail::cumulative_section(patient, ctx) << "</article>";
  return o.str();
}

}  // namespace

std::string html_page(const std::string& title, const std::string& body) {
  return "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" + html_escape(title) +
         "</title><meta name=\"generator\" content=\"lutdose report\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><style>" + kCss +
         "</style></head><body>" + body +
         "<footer>Colours: Okabe-Ito palette (Okabe &amp; Ito 2008, Color Universal Design; Wong, Nat Methods "
         "2011;8:441), readable with the common colour-vision deficiencies. Unknown values are shown as "
         "\xE2\x80\x94 with the reason, never as 0.</footer></body></html>\n";
}

std::string patient_report_html(const json& doc, const ReportContext& ctx) {
  std::ostringstream body;
  for (const auto& p : arr(doc, "patients")) body << patient_html(doc, p, ctx);
  body << detail::plan_section(ctx) << detail::provenance_section(doc, ctx);
  std::string title = "lutdose report";
  const auto& patients = arr(doc, "patients");
  if (patients.size() == 1) title += ": " + str(patients[0], "id");
  return html_page(title, body.str());
}

namespace {

// "a, b" for a message, "none" when empty.
std::string listed(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
  return s.empty() ? std::string("none") : s;
}

void add_once(std::vector<std::string>& names, const std::string& name) {
  if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
}

}  // namespace

std::string voi_plot_svg(const json& doc, const std::string& patient, const std::string& voi, int cycle, bool log_y,
                         const std::string& source) {
  std::vector<std::string> ids, cycles, vois;
  bool patient_found = false, cycle_found = false;
  for (const auto& p : arr(doc, "patients")) {
    add_once(ids, str(p, "id"));
    if (!patient.empty() && str(p, "id") != patient) continue;
    patient_found = true;
    for (const auto& c : arr(p, "cycles")) {
      add_once(cycles, std::to_string(detail::cycle_number(c)));
      if (cycle != 0 && detail::cycle_number(c) != cycle) continue;
      cycle_found = true;
      for (const auto& v : arr(c, "vois")) {
        if (str(v, "name") == voi)
          return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- written by lutdose plot -->\n" +
                 detail::tac_plot(doc, v, str(p, "id"), detail::cycle_number(c), log_y) + "\n";
        add_once(vois, str(v, "name"));
      }
    }
  }
  const std::string where = patient.empty() ? std::string("the results") : "patient " + patient;
  if (!patient_found) throw_input_error(source, "--patient", patient, "a patient of the results: " + listed(ids));
  if (!cycle_found) throw_input_error(source, "--cycle", std::to_string(cycle), "a cycle of " + where + ": " + listed(cycles));
  throw_input_error(source, "--voi", voi,
                    "a VOI of " + where + (cycle ? ", cycle " + std::to_string(cycle) : std::string()) + ": " + listed(vois));
}

ReportContext make_store_context(const std::string& store_path, const std::string& patient, const std::string& data_dir) {
  ReportContext ctx;
  ctx.results_name = store_path + " (patient " + patient + ")";
  ctx.input_sha_why = "see the store's /patients table (input_sha256 per patient-cycle)";
  ctx.manifest_note = "a store has no manifest; its provenance is in its root attributes";
  ctx.source_note = "Made from the rows of a results store: it holds no measured points, no candidate covariances and "
                    "no quantification, so there are no plots and no bands. For the full report run the patient with "
                    "`lutdose run ... --report`.";
  ctx.limits = load_limits(data_dir);
  ctx.limits_path = (fs::path(data_dir) / "radiobiology" / "limits.csv").string();
  return ctx;
}

ReportContext make_context(const std::string& results_json_path, const std::string& results_sha256,
                           const std::string& data_dir, const std::string& plan_path) {
  ReportContext ctx;
  ctx.results_name = results_json_path;
  ctx.results_sha256 = results_sha256;
  const fs::path dir = fs::path(results_json_path).parent_path();
  std::error_code ec;
  const auto h5 = (dir / "results.h5").string();
  if (fs::exists(h5, ec)) {
    try {
      const auto cohort = json::parse(read_store_index(h5, StoreVersions::readable).header.cohort, nullptr, false);
      ctx.input_sha256 = str(cohort, "sha256");
    } catch (const InputError& e) {
      ctx.input_sha_why = std::string("results.h5 beside results.json is unreadable: ") + e.what();
    }
  } else {
    ctx.input_sha_why = "no results.h5 beside results.json (it records the input's SHA-256)";
  }
  const auto manifest_path = (dir / "manifest.json").string();
  std::ifstream in(manifest_path);
  const auto manifest = in ? json::parse(in, nullptr, false) : json();
  for (const auto& f : arr(manifest, "files")) ctx.manifest_files.emplace_back(str(f, "name"), str(f, "sha256"));
  if (ctx.manifest_files.empty()) ctx.manifest_note = "no lutdose manifest.json beside results.json";
  ctx.limits = load_limits(data_dir);
  ctx.limits_path = (fs::path(data_dir) / "radiobiology" / "limits.csv").string();
  if (!plan_path.empty()) {
    ctx.plan = load_plan(plan_path);
    ctx.plan_path = plan_path;
  }
  return ctx;
}

}  // namespace lutdose::report
