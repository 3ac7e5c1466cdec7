// The options of `lutdose plan` from a case file's "plan" block (docs/case-file.md, docs/plan.md).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "lutdose/planning/planning.h"
#include "lutdose/radiobiology/radiobiology.h"

namespace lutdose {

//! Plan options: the default limits (data/radiobiology/limits.csv) and priors of `data_dir`, the
//! tissue parameters of `targets` (data/radiobiology/tissue_parameters.csv, then
//! `tissue_overrides` by pattern), then the members of `plan_block` (null: none): strategy,
//! prediction, planned_cycles (1 to MAX_CYCLES), a_min_MBq, a_max_MBq, a_standard_MBq [MBq],
//! safety_k, prediction_cv, allow_incomplete, limits (extra "TARGET:QUANTITY:VALUE" texts).
//! Throws InputError naming `where` and plan.FIELD for a value of the wrong type or out of its
//! range, and the loaders' InputError for unreadable reference data.
PlanOptions plan_options_from_case(const nlohmann::json& plan_block, const std::string& data_dir,
                                   const std::vector<std::string>& targets,
                                   const std::vector<std::pair<std::string, TissueParameters>>& tissue_overrides,
                                   const std::string& where);

}  // namespace lutdose
