// The plan document of `lutdose plan` (stable fields of design.md §4.5) as JSON.
#pragma once

#include <vector>

#include <nlohmann/json.hpp>

#include "lutdose/planning/planning.h"
#include "lutdose/planning/run_history.h"

namespace lutdose {

//! The plan document: next cycle, activity [MBq], binding limit, per target the prediction,
//! cumulative doses, limits and P(exceed), the reasoning and the options used. A value that is
//! not known (NaN) is null. Does not throw.
nlohmann::ordered_json to_json(const PlanResult& r);

//! The "delivered_dose_uncertainty" array of the plan document: per cycle and target dose_Gy,
//! dose_u_Gy (null when unknown), dose_u_dof ("infinite", a number or null), dose_ci95_Gy
//! ([low, high] or null), uncertainty_incomplete and uncertainty_missing_inputs. Does not throw.
nlohmann::ordered_json to_json(const std::vector<DeliveredDoseUncertainty>& delivered);

}  // namespace lutdose
