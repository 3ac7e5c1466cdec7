// BED of the targets of one cycle from their dose-rate curves, and the tumour repopulation of a BED
// summed over cycles (methods.md §8; spec §7.1, §7.2). Composed per cycle by pipeline/pipeline.cpp.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "lutdose/dosimetry/dose.h"
#include "lutdose/kinetics/activity_curve.h"
#include "lutdose/radiobiology/radiobiology.h"

namespace lutdose {

//! The remainder of body's activity curve A(t) [MBq]: the whole body's curve (`curves` key
//! "whole_body") minus those of the organ targets of `doses` that have a curve (tumours stay in
//! it); a sum of exponentials when every one of these curves is one, else a general function. Its
//! time scales are those of every curve. Empty when `curves` has no "whole_body". Throws nothing.
std::optional<ActivityCurve> remainder_curve(const std::map<std::string, ActivityCurve>& curves,
                                             const std::vector<TargetDose>& doses);

//! Sets bed_g, bed_Gy, eqd2_Gy, bed_method, alpha_beta_Gy and repair_half_time_h of every target
//! of `doses` with tissue parameters and a dose > 0. The target's dose-rate curve [Gy/h] is
//! sum over its contributions_Gy of (contribution [Gy] / TIA of the source [MBq h]) x A_source(t),
//! over the sources with a curve in `curves` and a TIA != 0 in `tia_MBq_h`; targets without such a
//! source are left unchanged. Closed form when every source curve is a sum of exponentials and
//! `horizon_h` is infinite, else numerical integration from 0 to `horizon_h` [h] (time scales of
//! the curves and 1/lambda_p, lambda_p the physical decay constant [1/h]). BED is then scaled to
//! the dose reported. Throws InputError as bed_numeric does (a non-finite dose rate or integral, or
//! the solver's evaluation budget exceeded).
void add_cycle_bed(const TissueTable& tissue, const std::map<std::string, ActivityCurve>& curves,
                   const std::map<std::string, double>& tia_MBq_h, double horizon_h, double lambda_p,
                   std::vector<TargetDose>& doses);

//! Tumour repopulation over a course of cycles [Gy of BED]: ln2 (T - T_k) / (alpha T_pot), with T
//! [d] the time from the first to the last cycle's reference time (first_h, last_h [h]), T_k the
//! kick-off time kickoff_d [d], alpha [1/Gy] and T_pot [d]. Empty when T <= T_k (no repopulation).
//! The caller subtracts it from the summed BED. Throws nothing (no checks of alpha or T_pot).
std::optional<double> tumour_repopulation_Gy(double first_h, double last_h, double kickoff_d, double alpha_per_Gy,
                                             double t_pot_d);

}  // namespace lutdose
