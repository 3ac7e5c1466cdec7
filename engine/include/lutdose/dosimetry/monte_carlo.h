// Monte Carlo cross-check of a cycle's GUM dose uncertainty (methods.md §5 item 6).
#pragma once

#include <string>
#include <vector>

#include "lutdose/dosimetry/dose.h"
#include "lutdose/kinetics/fitting.h"
#include "lutdose/pipeline/run_result.h"

namespace lutdose {

//! What a Monte Carlo run samples: the number of samples (> 0) and the seed of the run (the
//! cycle number is added, so that cycles draw independent streams).
struct MonteCarloOptions {
  int samples = 0;
  unsigned long long seed = 0;
};

//! Samples the dose inputs of `cycle` `mc.samples` times: counts by Poisson (normal
//! approximation, widened by the Birge ratio where the fit's covariance was scaled), the CF
//! common to the cycle, RC, volume and self-S per VOI; refits each counts VOI with its chosen
//! function (options of `fit`, per VOI kind; lambda_p [1/h]) and recomputes all doses with
//! `dose`. Writes dose_mc_mean_Gy and dose_u_mc_Gy (sample SD) [Gy] into every target of `doses`
//! when more than one sample succeeded (else leaves them NaN), and returns the summary. A sample
//! whose refit fails or whose doses are inconsistent (InputError) is counted as failed; TIAs
//! without a known u are held fixed and listed. `inputs` are the cycle's sources as given to
//! DoseCalculator::compute; `where` names the cycle in messages. Does not throw InputError.
MonteCarloSummary monte_carlo(const DoseCalculator& dose, const MonteCarloOptions& mc, const FitOptions& fit,
                              double lambda_p, const CycleResult& cycle, const std::vector<DoseSourceInput>& inputs,
                              CycleDoses& doses, const std::string& where);

}  // namespace lutdose
