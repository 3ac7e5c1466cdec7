// The red-marrow source of a cycle (methods.md §6.5): from blood samples (TIA_RM = TIAC_blood x
// RMBLR x m_RM) or from an L2-L4 VOI (TIA_RM = TIA_L2L4 / fraction), per dose.marrow options.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "lutdose/dosimetry/dose.h"
#include "lutdose/io/case_file.h"
#include "lutdose/kinetics/activity_curve.h"
#include "lutdose/kinetics/fitting.h"
#include "lutdose/pipeline/run_result.h"

namespace lutdose {

//! Adds the red-marrow source of a cycle, per dose.options().marrow: appends its DoseSourceInput
//! ("red_marrow", mass the option's or the phantom's) to `inputs` and its activity curve to
//! `curves["red_marrow"]`, and returns how its TIA [MBq h] was obtained. Returns an empty
//! optional (and changes nothing) when the method is "none".
//!
//! Blood method: the blood concentrations `blood` [MBq/mL] are fitted with `fit` (lambda_p the
//! physical decay constant [1/h]); RMBLR is the option's, or RMECFF / (1 - hematocrit).
//! Image method: the VOI named by the option is removed from `inputs` and its TIA and curve,
//! divided by l2l4_fraction, become the marrow's (`curves` must hold that VOI's curve).
//!
//! Throws InputError (naming `where`) when `inputs` already has a red_marrow VOI, the S-value set
//! has no red marrow, the blood method has no `blood` (nullptr) or needs a missing hematocrit, or
//! the image method's VOI is not in `inputs`; fit_tac's errors for unusable blood samples.
std::optional<MarrowResult> add_marrow(const DoseCalculator& dose, const BloodData* blood, const FitOptions& fit,
                                       double lambda_p, std::vector<DoseSourceInput>& inputs,
                                       std::map<std::string, ActivityCurve>& curves, const std::string& where);

}  // namespace lutdose
