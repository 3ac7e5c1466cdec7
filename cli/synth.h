// `lutdose synth`: the command line of the synthetic cohort generator (engine: lutdose/cohort/synth.h).
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "lutdose/cohort/synth.h"

namespace lutdose_cli {

class SynthCommand {
 public:
  //! Adds the subcommand `synth` with its options to `app`.
  explicit SynthCommand(CLI::App& app);
  bool parsed() const { return cmd_->parsed(); }
  //! Generates the cohort and publishes it as one set in --out. Throws InputError (bad option: exit
  //! 2, nothing written) or OutputError.
  void run() const;

 private:
  CLI::App* cmd_;
  lutdose::SynthOptions options_;
  std::vector<std::string> noise_, recovery_, cv_mass_;
  std::string out_, data_dir_;
  bool quiet_ = false;
  long long seed_ = 20261124;
};

}  // namespace lutdose_cli
