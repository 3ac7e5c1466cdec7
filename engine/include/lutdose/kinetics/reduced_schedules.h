// Reduced imaging schedules (methods.md §4, docs/reduced-schedules.md): a VOI's TIA from its last
// time point with a single-time-point estimator, or a MAP fit with population priors.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "lutdose/io/tac_table.h"
#include "lutdose/kinetics/fitting.h"
#include "lutdose/kinetics/stp.h"

namespace lutdose {

enum class ReducedSchedule {
  none,        //!< no reduced schedule: the fit of the whole TAC
  hanscheid,   //!< single time point, T_eff = t (Hänscheid 2018)
  madsen,      //!< single time point, the population's effective decay (Madsen 2018)
  population,  //!< single time point on the population curve
  prior,       //!< MAP fit with the population priors (needs activity_u_MBq)
};
//! "none", "hanscheid", "madsen", "population", "prior".
std::string to_string(ReducedSchedule r);
//! The inverse of to_string; std::nullopt for any other text.
std::optional<ReducedSchedule> parse_reduced_schedule(const std::string& text);

//! A TacFit from a reduced-schedule estimator `method` (not none): an E1 curve through the last
//! point with the estimator's effective rate (Hänscheid: T_eff = t, capped at the physical
//! half-life; Madsen and population: the population's), so that dose-rate curves and BED follow;
//! or the MAP fit with the population priors. TIAs in MBq h, lambda_p in 1/h. Throws InputError
//! (naming `where`) for a VOI without E1 population kinetics (all but Hänscheid) or, for prior,
//! without activity_u_MBq.
TacFit reduced_schedule_fit(const TacSeries& tac, ReducedSchedule method,
                            const std::vector<PopulationKinetics>& population, double lambda_p,
                            const std::string& where);

}  // namespace lutdose
