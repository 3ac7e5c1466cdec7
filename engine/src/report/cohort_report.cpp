// The cohort report (report/cohort_report.h).
#include "lutdose/report/cohort_report.h"

#include <cmath>
#include <map>
#include <set>
#include <sstream>

#include "lutdose/io/store.h"
#include "lutdose/report/html.h"
#include "lutdose/report/patient_report.h"
#include "lutdose/report/svg_plot.h"

namespace lutdose::report {

namespace {

constexpr std::size_t kMaxListed = 200;  // rows listed of flagged fits and failures; the rest are counted

// What the report keeps of the store: values by group, counts and the listed rows.
struct CohortData {
  std::map<std::string, std::vector<double>> tia_h, dose_per_GBq;
  std::map<std::string, std::map<std::string, long>> functions;  // voi -> function -> count
  std::set<std::string> all_functions;
  std::vector<VoiRow> flagged;
  std::size_t n_flagged = 0, n_done = 0, n_failed_rows = 0, n_notes = 0;
  std::set<std::string> patients;
  std::vector<FailureRow> failures;
};

void take(CohortData& d, const StoreRows& rows) {
  for (const auto& p : rows.patients) {
    d.patients.insert(p.patient);
    d.n_done += p.status == "done" ? 1 : 0;
  }
  for (const auto& v : rows.vois) {
    d.tia_h[v.voi].push_back(v.tia_h);
    ++d.functions[v.voi][v.function];
    d.all_functions.insert(v.function);
    if (!v.fit_ok && ++d.n_flagged <= kMaxListed) d.flagged.push_back(v);
  }
  for (const auto& t : rows.targets)
    if (t.kind != "region" || t.target == "Red Marrow") d.dose_per_GBq[t.target].push_back(t.dose_Gy_per_GBq);
  for (const auto& f : rows.failures)
    if (++d.n_failed_rows <= kMaxListed) d.failures.push_back(f);
  d.n_notes += rows.notes.size();
}

// The box plot of `m` by group, or a sentence when no group holds a known value (all failed).
std::string box_plot_of(const std::string& title, const std::string& x_label,
                        const std::map<std::string, std::vector<double>>& m, const std::string& kind) {
  std::vector<BoxGroup> g;
  bool known = false;
  for (const auto& [k, v] : m) {
    g.push_back({k, v});
    for (double x : v) known = known || std::isfinite(x);
  }
  if (!known) return "<p class=\"no-data\"><b>" + html_escape(title) + "</b>: No known values in the store.</p>";
  return render_box_plot(title, x_label, g, {{"kind", kind}});
}

std::string function_table(const CohortData& d) {
  std::ostringstream o;
  o << "<table class=\"function-table\"><tr><th class=\"l\">VOI</th>";
  for (const auto& f : d.all_functions) o << "<th>" << html_escape(f) << "</th>";
  o << "</tr>";
  for (const auto& [voi, counts] : d.functions) {
    o << "<tr data-voi=\"" << html_escape(voi) << "\"><td class=\"l\">" << html_escape(voi) << "</td>";
    for (const auto& f : d.all_functions) {
      const auto it = counts.find(f);
      o << "<td data-function=\"" << html_escape(f) << "\">" << (it == counts.end() ? 0 : it->second) << "</td>";
    }
    o << "</tr>";
  }
  o << "</table>";
  return o.str();
}

std::string flagged_table(const CohortData& d) {
  std::ostringstream o;
  o << "<h2>Flagged fits</h2><p>" << d.n_flagged << " VOI results whose selected fit does not meet the quality criteria"
    << (d.n_flagged > kMaxListed ? " (the first " + std::to_string(kMaxListed) + " listed)" : std::string()) << ". "
    << "Per-patient details: <code>lutdose report STORE.h5 --patient ID --out ID.html</code> (from the store's rows, "
    << "without plots), or run the patient with <code>lutdose run ... --report</code>.</p><table class=\"flagged-table\"><tr><th class=\"l\">patient</th>"
    << "<th>cycle</th><th class=\"l\">VOI</th><th class=\"l\">function</th><th class=\"l\">method</th></tr>";
  for (const auto& v : d.flagged)
    o << "<tr><td class=\"l\">" << html_escape(v.patient) << "</td><td>" << v.cycle << "</td><td class=\"l\">"
      << html_escape(v.voi) << "</td><td class=\"l\">" << html_escape(v.function) << "</td><td class=\"l\">"
      << html_escape(v.method) << "</td></tr>";
  o << "</table>";
  return o.str();
}

std::string failure_table(const CohortData& d) {
  std::ostringstream o;
  o << "<h2>Failures</h2><p>" << d.n_failed_rows << " patients could not be computed"
    << (d.n_failed_rows > kMaxListed ? " (the first " + std::to_string(kMaxListed) + " listed)" : std::string())
    << ".</p><table class=\"failure-table\"><tr><th class=\"l\">patient</th><th>cycle</th><th class=\"l\">source</th>"
    << "<th class=\"l\">error</th></tr>";
  for (const auto& f : d.failures)
    o << "<tr data-patient=\"" << html_escape(f.patient) << "\"><td class=\"l\">" << html_escape(f.patient) << "</td><td>"
      << (f.cycle == 0 ? std::string("whole patient") : std::to_string(f.cycle)) << "</td><td class=\"l\">"
      << html_escape(f.source) << "</td><td class=\"l\">" << html_escape(f.error)
      << "</td></tr>";
  o << "</table>";
  return o.str();
}

}  // namespace

bool is_cohort_store(const std::string& path) {
  return read_store_index(path, StoreVersions::readable).header.kind != "run";
}

std::string cohort_report_html(const std::string& path, const std::string& writer_version) {
  const auto index = read_store_index(path, StoreVersions::readable);
  CohortData d;
  for_each_store_chunk(path, [&](const StoreRows& rows) { take(d, rows); }, StoreVersions::readable);
  std::ostringstream o;
  o << "<article class=\"cohort\" data-patients=\"" << d.patients.size() << "\"><h1>Cohort report</h1>";
  if (!index.consolidated)  // a master over segments: the batch runs, or was stopped
    o << "<p class=\"unfinished\"><b>Unfinished store:</b> a batch is still writing it or was stopped. This report "
      << "shows only the patients committed so far; <code>lutdose batch ... --resume</code> completes a stopped "
      << "batch.</p>";
  o
    << "<table class=\"overview-table\"><tr><th class=\"l\">store</th><td class=\"l\">" << html_escape(path)
    << "</td></tr><tr><th class=\"l\">patients</th><td class=\"l\" data-field=\"patients\">" << d.patients.size()
    << "</td></tr><tr><th class=\"l\">patient-cycles done</th><td class=\"l\">" << d.n_done
    << "</td></tr><tr><th class=\"l\">written by</th><td class=\"l\">lutdose " << html_escape(index.header.lutdose_version)
    << " (" << html_escape(index.header.kind) << ", shard " << html_escape(index.header.shard) << ")</td></tr>"
    << "<tr><th class=\"l\">cohort</th><td class=\"l\">" << html_escape(index.header.cohort) << "</td></tr>"
    << "<tr><th class=\"l\">notes and warnings</th><td class=\"l\">" << d.n_notes << " (in the store's /notes table)</td></tr>"
    << "</table><section class=\"major\"><h2>Distributions</h2><p>Box: quartiles; line: median; whiskers: the most "
    << "extreme values within 1.5 IQR; circles: values beyond. Unknown values are left out (n counts the known).</p>"
    << box_plot_of("TIA per administered activity by VOI", "TIA / administered activity [h] (MBq h per MBq)",
                   d.tia_h, "tia")
    << box_plot_of("Absorbed dose per administered activity by target", "dose per activity [Gy/GBq]",
                   d.dose_per_GBq, "dose")
    << "</section><section class=\"major\"><h2>Selected fit functions</h2>" << function_table(d) << flagged_table(d)
    << failure_table(d) << "</section></article>";
  return html_page("lutdose cohort report", o.str() + "<footer>Report written by lutdose " + html_escape(writer_version) +
                                                "</footer>");
}

}  // namespace lutdose::report
