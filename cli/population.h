// `lutdose population learn`: learns the population (NLME) kinetics of a TAC table, a folder of case
// files or a results store and writes a
// population file (engine: lutdose/kinetics/population.h, lutdose/io/population_file.h).
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "lutdose/io/population_file.h"
#include "lutdose/io/store.h"

namespace lutdose_cli {

class PopulationCommand {
 public:
  //! Adds the subcommand `population` with `learn` to `app`.
  explicit PopulationCommand(CLI::App& app);
  bool parsed() const { return learn_->parsed(); }
  //! Learns and writes the file atomically. Throws InputError (exit 2, nothing written) or OutputError.
  void run() const;

 private:
  lutdose::PopulationFile learn() const;
  lutdose::PopulationFile learn_from_store(const std::string& data_dir, const lutdose::PopulationOptions& options) const;
  void check_store_half_life(const lutdose::StoreTacs& tacs, const std::string& data_dir) const;
  lutdose::PopulationFile learn_series(const std::vector<lutdose::TacSeries>& series,
                                       const std::vector<double>& administered_MBq, const std::string& data_dir,
                                       const lutdose::PopulationOptions& options, const std::string& bytes) const;
  lutdose::PopulationFile learn_compartment(const std::vector<lutdose::TacSeries>& series,
                                            const std::vector<double>& administered_MBq, const std::string& data_dir,
                                            const lutdose::PopulationOptions& options, const std::string& bytes) const;
  CLI::App* learn_;
  std::string tac_, patients_, out_, data_dir_;
  std::string e_step_ = "sampled";
  std::string error_model_ = "proportional";
  std::string omega_ = "diagonal";
  std::string model_;                          // --model: a compartment model as the structural model
  std::vector<std::string> free_parameters_;   // --free-parameters of the compartment model
  double half_life_h_ = 0;
  lutdose::PopulationOptions options_;
  bool quiet_ = false, allow_external_ = false;
};

}  // namespace lutdose_cli
