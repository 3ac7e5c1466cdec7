// `lutdose batch`, `lutdose export` and `lutdose merge`: the command line of the cohort batch and
// of the results store (engine: lutdose/cohort/batch.h, lutdose/io/store.h).
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "run_options.h"

namespace lutdose_cli {

//! Prints the note of each file of the folder of case files `dir` that is left out
//! (batch_case_files: population files) to standard error, "lutdose: note: DIR/NAME: ...", for
//! batch CASES_DIR and population learn CASES_DIR. InputError as batch_case_files.
void note_left_out_case_files(const std::string& dir);

class BatchCommand {
 public:
  //! Adds the subcommands batch, export and merge to `app`.
  explicit BatchCommand(CLI::App& app);
  bool parsed() const { return batch_->parsed() || export_->parsed() || merge_->parsed(); }
  //! Runs the parsed subcommand; returns the exit status (batch: 0 all done, 3 some patients
  //! failed). Throws InputError (exit 2), OutputError or std::exception (exit 1).
  int run() const;

 private:
  int run_batch() const;
  CLI::App *batch_, *export_, *merge_;
  std::string cases_dir_, patients_, out_, shard_ = "1/1", progress_ = "auto", svalues_;
  FitArgs fit_;
  DoseArgs dose_;
  unsigned threads_ = 0;
  bool resume_ = false, allow_external_ = false;
  long long mc_samples_ = 0, mc_seed_ = 0;
  double commit_interval_s_ = 2.0;
  std::string export_store_, export_dir_, merge_out_;
  std::vector<std::string> merge_shards_;
};

}  // namespace lutdose_cli
