// `lutdose report` and `lutdose plot` (cli/report.h).
#include "report.h"

#include <filesystem>

#include "lutdose/error.h"
#include "lutdose/io/data_dir.h"
#include "lutdose/io/output_dir.h"
#include "lutdose/report/chromium.h"
#include "lutdose/report/cohort_report.h"
#include "lutdose/report/patient_report.h"
#include "lutdose/report/results_loader.h"
#include "lutdose/report/store_patient.h"
#include "lutdose/version.h"

namespace lutdose_cli {

namespace fs = std::filesystem;
namespace rep = lutdose::report;

namespace {

const std::string kPdfMarker = "\n%lutdose-report\n";  // a PDF comment after %%EOF: the file is lutdose's
const std::string kPngMark = std::string("tEXtSoftware") + '\0' + "lutdose plot";  // a PNG text chunk

std::string extension_of(const std::string& path) { return fs::path(path).extension().string(); }

bool is_store_path(const std::string& arg) {
  std::error_code ec;
  return extension_of(arg) == ".h5" && fs::is_regular_file(arg, ec) && rep::is_cohort_store(arg);
}

// True when `old`, the content of an existing file ending in `ext`, is an earlier output of lutdose.
bool is_earlier_report(const std::string& ext, const std::string& old) {
  if (ext == ".pdf") return old.size() >= kPdfMarker.size() && old.compare(old.size() - kPdfMarker.size(), kPdfMarker.size(), kPdfMarker) == 0;
  if (ext == ".svg") return old.find("<!-- written by lutdose plot -->") != std::string::npos;
  if (ext == ".png") return old.find(kPngMark) != std::string::npos;
  return old.find("<meta name=\"generator\" content=\"lutdose report\">") != std::string::npos;
}

// Refuses, before any work, an output path write_report_file would refuse.
void check_report_file(const std::string& path) {
  const std::string ext = extension_of(path);
  lutdose::check_file_writable(path, [&](const std::string& old) { return is_earlier_report(ext, old); });
}

}  // namespace

void write_report_file(const std::string& path, const std::string& bytes) {
  const std::string ext = extension_of(path);
  lutdose::write_file_atomically(path, ext == ".pdf" ? bytes + kPdfMarker : bytes,
                                 [&](const std::string& old) { return is_earlier_report(ext, old); });
}

ReportCommand::ReportCommand(CLI::App& app) {
  cmd_ = app.add_subcommand("report",
                            "Self-contained HTML report (docs/report.md): from a run's output directory, its "
                            "results.json or results.h5, a patient report with fit plots, dose tables, budgets, the "
                            "history over cycles and provenance; from a batch store (STORE.h5) a cohort report.");
  cmd_->add_option("results", input_, "A run's output directory, results.json, results.h5, or a batch store")->required();
  cmd_->add_option("--out", out_, "The report: FILE.html (new, or an earlier lutdose report: replaced in one step)")
      ->required();
  cmd_->add_flag("--pdf", pdf_, "Also print it to FILE.pdf with headless Chromium (scripts/install-deps.sh --browser)");
  cmd_->add_option("--plan", plan_, "A plan of `lutdose plan --out PLAN.json` to include");
  cmd_->add_option("--patient", patient_, "With a batch store: that patient's report from the store's rows (no plots)");
  cmd_->add_option("--data-dir", data_dir_, "Reference data directory (limits of the organs at risk)");
  cmd_->footer("Examples: lutdose report out/p004 --out p004.html --pdf\n"
               "          lutdose report cohort.h5 --out cohort.html");
}

int ReportCommand::run() const {
  if (extension_of(out_) != ".html" && extension_of(out_) != ".htm")
    lutdose::throw_input_error("command line", "--out", out_, "a file name ending in .html");
  const std::string pdf_path = fs::path(out_).replace_extension(".pdf").string();
  std::error_code ec;
  const fs::path out_dir = fs::path(out_).parent_path().empty() ? fs::path(".") : fs::path(out_).parent_path();
  if (fs::exists(out_dir / "manifest.json", ec))  // a file the manifest does not list makes the set another's
    lutdose::throw_input_error("command line", "--out", out_,
                               "a file outside a lutdose result set (its directory holds manifest.json); "
                               "use `lutdose run ... --report` to have report.html in the set");
  const bool store = is_store_path(input_);
  if (!store && !patient_.empty())  // a run's report holds all its patients: no option is ignored
    lutdose::throw_input_error("command line", "--patient", patient_,
                               "no --patient with a run's results (their report holds every patient); "
                               "--patient picks a patient of a batch store");
  if (store && !plan_.empty())
    lutdose::throw_input_error("command line", "--plan", plan_,
                               "no --plan with a batch store (a plan belongs to a run's patient report)");
  if (pdf_ && rep::find_chromium().empty()) throw lutdose::InputError(rep::chromium_missing_message());
  check_report_file(out_);  // both before writing either: a refused PDF must not leave a new HTML
  if (pdf_) check_report_file(pdf_path);
  std::string html;
  if (store) {
    if (patient_.empty()) {
      html = rep::cohort_report_html(input_, LUTDOSE_VERSION);
    } else {
      const auto doc = rep::store_patient_json(input_, patient_);
      auto ctx = rep::make_store_context(input_, patient_, lutdose::find_data_dir(data_dir_));
      ctx.writer_version = LUTDOSE_VERSION;
      html = rep::patient_report_html(doc, ctx);
    }
  } else {
    const auto loaded = rep::load_results(input_);
    auto ctx = rep::make_context(loaded.path, loaded.sha256, lutdose::find_data_dir(data_dir_), plan_);
    ctx.writer_version = LUTDOSE_VERSION;
    html = rep::patient_report_html(loaded.doc, ctx);
  }
  const std::string pdf = pdf_ ? rep::html_to_pdf(html) : std::string();  // before writing anything
  write_report_file(out_, html);
  if (pdf_) write_report_file(pdf_path, pdf);
  return 0;
}

PlotCommand::PlotCommand(CLI::App& app) {
  cmd_ = app.add_subcommand("plot", "One VOI's fit plot (points, every candidate, the selected one with its 95 % band) "
                                    "as SVG, or PNG/PDF with headless Chromium (docs/report.md)");
  cmd_->add_option("results", input_, "A run's output directory, results.json or results.h5")->required();
  cmd_->add_option("--voi", voi_, "The VOI")->required();
  cmd_->add_option("--out", out_, "FILE.svg, FILE.png or FILE.pdf")->required();
  cmd_->add_option("--cycle", cycle_, "The cycle (default: the first holding the VOI)");
  cmd_->add_option("--patient", patient_, "The patient (default: the first)");
  cmd_->add_option("--scale", scale_, "linear (default) or log activity axis")->check(CLI::IsMember({"linear", "log"}));
}

int PlotCommand::run() const {
  const std::string ext = extension_of(out_);
  if (ext != ".svg" && ext != ".png" && ext != ".pdf")
    lutdose::throw_input_error("command line", "--out", out_, "a file name ending in .svg, .png or .pdf");
  if (ext != ".svg" && rep::find_chromium().empty()) throw lutdose::InputError(rep::chromium_missing_message());
  check_report_file(out_);
  const auto loaded = rep::load_results(input_);
  const std::string svg = rep::voi_plot_svg(loaded.doc, patient_, voi_, cycle_, scale_ == "log", loaded.path);
  if (ext == ".svg") {
    write_report_file(out_, svg);
    return 0;
  }
  const std::string page = "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><style>@page{size:540px 400px;margin:0}"
                           "body{margin:0}</style></head><body>" + svg.substr(svg.find("<svg")) + "</body></html>";
  write_report_file(out_, ext == ".png" ? rep::png_with_text(rep::html_to_png(page, 540, 400), "Software", "lutdose plot")
                                         : rep::html_to_pdf(page));
  return 0;
}

std::string run_report_html(const std::string& results_text, const std::string& input_sha256,
                            const std::string& data_dir) {
  rep::ReportContext ctx;
  ctx.results_name = "results.json (beside this report)";
  ctx.results_sha256 = lutdose::sha256_hex(results_text);
  ctx.input_sha256 = input_sha256;
  ctx.manifest_note = "manifest.json beside this report lists the files of the set with their SHA-256";
  ctx.limits = lutdose::load_limits(data_dir);
  ctx.limits_path = (fs::path(data_dir) / "radiobiology" / "limits.csv").string();
  ctx.writer_version = LUTDOSE_VERSION;
  return rep::patient_report_html(nlohmann::json::parse(results_text), ctx);
}

}  // namespace lutdose_cli
