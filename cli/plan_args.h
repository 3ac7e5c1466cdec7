// `lutdose plan` without its printing: the options as given (PlanArgs) to the plan document, for
// the program and the Python module (lutdose.plan) alike.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "lutdose/planning/planning.h"
#include "lutdose/planning/run_history.h"

namespace lutdose_cli {

// The options of `lutdose plan`; an empty optional is an option not given.
struct PlanArgs {
  std::string case_path, history_path, strategy, prediction, data_dir;
  std::string population;  // --population FILE (a case file only; empty: not given)
  std::optional<int> planned_cycles;
  std::optional<double> a_min_MBq, a_max_MBq, a_standard_MBq, safety_k, prediction_cv;
  std::vector<std::string> limits;
  bool allow_incomplete = false, allow_external_files = false;
};

// The plan and its JSON document (with "delivered_dose_uncertainty" for a case file, and
// "population", the population file used as prior, under population kinetics).
struct PlanOutcome {
  lutdose::PlanResult result;
  std::optional<std::vector<lutdose::DeliveredDoseUncertainty>> delivered_u;
  //! The population file of the run (source, sha256, own_checksum; results.json's
  //! options.fit.population), when the case's VOIs were fitted by MAP with one.
  std::optional<nlohmann::ordered_json> population;
  nlohmann::ordered_json document;
};

// Runs the case's cycles (or reads the dose history), applies the options and plans the next
// cycle. InputError naming the option or file for bad input.
PlanOutcome run_plan(const PlanArgs& a);

}  // namespace lutdose_cli
