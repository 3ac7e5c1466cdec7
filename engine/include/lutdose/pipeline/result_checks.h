// The last step of a run before anything is written: every reported TIA, dose and BED must be a
// finite number. A non-finite one is an input error naming the input and the target behind it
// (inputs within the plausibility ranges do not produce one; this is the safety net).
#pragma once

#include "lutdose/pipeline/pipeline.h"

namespace lutdose {

//! Throws InputError listing every non-finite TIA, dose or BED of `r`, each with the input file
//! and the patient, cycle and VOI or target that produced it. Returns normally (nothing changed)
//! when every value is finite; a value that is unknown by design (NaN uncertainty, NaN BED of a
//! target without tissue parameters) is not checked.
void check_results_finite(const RunResult& r);

}  // namespace lutdose
