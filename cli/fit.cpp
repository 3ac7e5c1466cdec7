#include "fit.h"

#include <chrono>
#include <iostream>

#include "lutdose/error.h"
#include "lutdose/io/output_dir.h"
#include "lutdose/io/population_file.h"
#include "lutdose/io/results.h"
#include "lutdose/io/store.h"
#include "lutdose/io/tac_table.h"
#include "lutdose/pipeline/pipeline.h"
#include "lutdose/version.h"
#include "run_options.h"

namespace lutdose_cli {

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

//! Standard output failed (full disk, closed pipe): what was written is incomplete.
void check_stdout() {
  std::cout.flush();
  if (!std::cout) throw lutdose::OutputError("cannot write the results to standard output (full disk or closed pipe?)");
}

void print_timing(std::size_t tacs, double seconds, const char* what) {
  std::cerr << "[timing] fit loop: " << tacs << " TACs in " << seconds << " s = " << static_cast<double>(tacs) / seconds
            << " TAC fits/s (all candidates x starts, selection, TIA +- u; " << what << ")\n";
}

}  // namespace

FitCommand::FitCommand(CLI::App& app) {
  fit_ = app.add_subcommand("fit",
                            "Fits only (no doses), to standard output: results.json, or with --format csv one line "
                            "per VOI (the columns of the store's vois table), written patient by patient.");
  add_fit_options(fit_, args_, false);
  fit_->add_option("--format", format_,
                   "json (default): results.json without doses; csv: the columns of vois.csv of `lutdose export` "
                   "(docs/store.md; dose columns empty), one line per VOI, streamed patient by patient: for "
                   "tables of many TACs")
      ->check(CLI::IsMember({"json", "csv"}));
  fit_->add_flag("--timing", timing_, "Print the time of the fit loop (TAC fits per second) on standard error");
  fit_->footer("Examples: lutdose fit --tac examples/snmmi-patient004/tac.csv --function E2u --error-model constant\n"
               "          lutdose fit --tac cohort_tacs.csv --format csv > fits.csv\n"
               "Fields: docs/results.md (json), docs/store.md (csv).");
}

int FitCommand::run() const {
  std::vector<std::string> problems;
  auto o = make_run_options(args_, problems);
  finish_run_options(o, problems);
  const auto series = lutdose::read_tac_table(args_.tac);
  use_fit_population(args_, series, o);
  check_previous_cycles_input(series, o, args_.tac);
  const auto start = std::chrono::steady_clock::now();
  if (format_ == "csv") {
    bool header = true;
    lutdose::StoreRows rows;  // both reused from patient to patient
    std::string text;
    lutdose::for_each_patient_result(series, o, [&](const lutdose::RunResult& r) {
      lutdose::store_voi_rows(r, rows);
      text.clear();
      lutdose::append_store_table_csv(rows, "vois", header, text);
      header = false;
      std::cout << text;
    });
    check_stdout();
    if (timing_) print_timing(series.size(), seconds_since(start), "reading excluded, CSV output included");
    return 0;
  }
  const auto result = lutdose::run_tac_table(series, o);
  if (timing_) print_timing(series.size(), seconds_since(start), "reading and JSON excluded");
  std::cout << lutdose::to_json(result, false).dump(2) << "\n";
  check_stdout();
  return 0;
}

}  // namespace lutdose_cli
