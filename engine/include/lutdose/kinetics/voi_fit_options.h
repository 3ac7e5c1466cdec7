// The fit options of one VOI, from the run's fit options and the VOI's kind.
#pragma once

#include <string>

#include "lutdose/kinetics/fitting.h"

namespace lutdose {

//! `o` for the VOI named `voi`: with FitOptions::error_model_by_voi_kind, tumour VOIs (tumour_*,
//! tumor_*, lesion_*) get the proportional-model error model, the others keep o.error_model.
//! Does not throw.
FitOptions fit_options_for(const std::string& voi, const FitOptions& o);

}  // namespace lutdose
