// The provenance section of the patient report (report/sections.h).
#include <sstream>

#include "lutdose/report/html.h"
#include "lutdose/report/results_loader.h"
#include "sections.h"

namespace lutdose::report::detail {

namespace {

std::string item(const std::string& where, const std::string& text) {
  return "<li><b>" + html_escape(where) + "</b>: " + html_escape(text) + "</li>";
}

// Every flag, warning and note of the selected fits and every dose note, with where it is from.
std::string findings(const json& doc) {
  std::ostringstream o;
  std::size_t n = 0;
  for (const auto& p : arr(doc, "patients"))
    for (const auto& c : arr(p, "cycles")) {
      const std::string at = (str(p, "id").empty() ? "" : str(p, "id") + ", ") + "cycle " + std::to_string(cycle_number(c));
      for (const auto& v : arr(c, "vois")) {
        const auto& fit = obj(v, "fit");
        for (const char* key : {"flags", "warnings", "notes"})
          for (const auto& f : arr(fit, key))
            if (f.is_string()) {
              o << item(at + ", " + str(v, "name") + " (" + key + ")",
                        key[0] == 'n' ? f.get<std::string>() : flag_words(f.get<std::string>()) + " [" + f.get<std::string>() + "]");
              ++n;
            }
        if (!str(v, "tia_u_unknown_reason").empty()) { o << item(at + ", " + str(v, "name"), "u(TIA) unknown: " + str(v, "tia_u_unknown_reason")); ++n; }
      }
      for (const auto& note : arr(c, "dose_notes"))
        if (note.is_string()) { o << item(at + ", doses", note.get<std::string>()); ++n; }
      for (const auto& d : arr(c, "doses"))
        if (d.value("uncertainty_incomplete", false)) {
          o << item(at + ", " + str(d, "target"), "dose uncertainty incomplete: no u for " + arr(d, "uncertainty_missing_inputs").dump());
          ++n;
        }
    }
  return n == 0 ? "<p>No warnings or notes.</p>" : "<ul class=\"findings\">" + o.str() + "</ul>";
}

std::string files_table(const ReportContext& ctx) {
  std::ostringstream o;
  o << "<table class=\"files-table\"><tr><th class=\"l\">file</th><th class=\"l\">SHA-256</th></tr><tr><td class=\"l\">"
    << html_escape(ctx.results_name) << "</td><td class=\"l\">"
    << (ctx.results_sha256.empty() ? "unknown" : html_escape(ctx.results_sha256)) << "</td></tr>";
  for (const auto& [name, sha] : ctx.manifest_files)
    o << "<tr><td class=\"l\">" << html_escape(name) << " (manifest.json)</td><td class=\"l\">" << html_escape(sha) << "</td></tr>";
  o << "</table>";
  if (!ctx.manifest_note.empty()) o << "<p>Result set manifest: " << html_escape(ctx.manifest_note) << ".</p>";
  return o.str();
}

}  // namespace

std::string provenance_section(const json& doc, const ReportContext& ctx) {
  const auto& options = obj(doc, "options");
  const auto& dose = obj(options, "dose");
  std::ostringstream o;
  o << "<section class=\"provenance major\"><h2>Provenance</h2><table class=\"provenance-table\">"
    << "<tr><th class=\"l\">results written by</th><td class=\"l\">lutdose " << html_escape(str(doc, "lutdose_version"))
    << "</td></tr><tr><th class=\"l\">report written by</th><td class=\"l\">lutdose " << html_escape(ctx.writer_version)
    << "</td></tr><tr><th class=\"l\">input</th><td class=\"l\">" << html_escape(str(options, "input")) << " ("
    << html_escape(str(options, "input_kind")) << ")</td></tr><tr><th class=\"l\">input SHA-256</th><td class=\"l\">"
    << (ctx.input_sha256.empty() ? "unknown (" + html_escape(ctx.input_sha_why) + ")" : html_escape(ctx.input_sha256))
    << "</td></tr><tr><th class=\"l\">data directory</th><td class=\"l\">" << html_escape(str(options, "data_dir"))
    << "</td></tr><tr><th class=\"l\">data files</th><td class=\"l\">";
  for (const auto& f : arr(dose, "svalue_files"))
    if (f.is_string()) o << html_escape(f.get<std::string>()) << "<br>";
  o << html_escape(str(dose, "tissue_parameters")) << "<br>" << html_escape(ctx.limits_path)
    << " (limits, read by this report)</td></tr><tr><th class=\"l\">nuclide data</th><td class=\"l\">"
    << html_escape(str(obj(doc, "nuclide"), "source")) << "</td></tr></table>" << files_table(ctx)
    << "<h3>Warnings and notes</h3>" << findings(doc) << "<h3>Options</h3><pre>" << html_escape(options.dump(2))
    << "</pre></section>";
  return o.str();
}

}  // namespace lutdose::report::detail
