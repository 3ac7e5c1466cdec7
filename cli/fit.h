// `lutdose fit`: fits only, no doses; results.json (default) or one CSV line per VOI, streamed
// patient by patient (--format csv), on standard output.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "run_options.h"

namespace lutdose_cli {

class FitCommand {
 public:
  //! Adds the subcommand fit to `app`.
  explicit FitCommand(CLI::App& app);
  bool parsed() const { return fit_->parsed(); }
  //! Runs it; returns the exit status 0. Throws InputError (exit 2) or std::exception (exit 1).
  int run() const;

 private:
  CLI::App* fit_;
  FitArgs args_;
  std::string format_ = "json";
  bool timing_ = false;
};

}  // namespace lutdose_cli
