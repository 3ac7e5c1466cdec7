// `lutdose report` (HTML patient or cohort report, optional PDF) and `lutdose plot` (one VOI's
// fit plot as SVG, PNG or PDF): option parsing and calls into the engine (report/).
#pragma once

#include <CLI/CLI.hpp>

#include <string>

namespace lutdose_cli {

class ReportCommand {
 public:
  //! Adds the subcommand report to `app`.
  explicit ReportCommand(CLI::App& app);
  bool parsed() const { return cmd_->parsed(); }
  //! Writes the report; returns 0. InputError (exit 2, nothing written), OutputError, std::exception.
  int run() const;

 private:
  CLI::App* cmd_;
  std::string input_, out_, plan_, data_dir_, patient_;
  bool pdf_ = false;
};

class PlotCommand {
 public:
  explicit PlotCommand(CLI::App& app);
  bool parsed() const { return cmd_->parsed(); }
  int run() const;

 private:
  CLI::App* cmd_;
  std::string input_, out_, voi_, patient_, scale_ = "linear";
  int cycle_ = 0;
};

//! The report.html of `lutdose run --report`: the report of `doc` (results.json as written, whose
//! text has SHA-256 `results_sha256`) with the input's SHA-256. InputError for a bad limits table.
std::string run_report_html(const std::string& results_text, const std::string& input_sha256,
                            const std::string& data_dir);

//! Writes `bytes` to `path` atomically, replacing only an earlier lutdose output of that kind.
void write_report_file(const std::string& path, const std::string& bytes);

}  // namespace lutdose_cli
