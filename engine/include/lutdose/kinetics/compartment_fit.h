// Joint fit of a compartment model to the VOIs of one cycle it observes (methods.md §3,
// docs/compartment-models.md), turned into per-VOI TIAs and sampled curves.
#pragma once

#include <string>
#include <vector>

#include "lutdose/io/tac_table.h"
#include "lutdose/kinetics/fitting.h"
#include "lutdose/models/compartment.h"

namespace lutdose {

//! The result of the joint fit for one observed VOI.
struct CompartmentVoiFit {
  std::string voi;
  TacFit fit;  //!< method "compartment model", TIA [MBq h] and its u from the joint fit
  //! The fitted curve of the VOI sampled at t [h] (0.05 h to 40 physical mean lives), A [MBq].
  std::vector<double> curve_t_h, curve_MBq;
};

struct CompartmentCycleFit {
  std::vector<std::string> observed;  //!< the VOIs of the cycle the model observes
  bool accepted = false;              //!< the joint fit converged and passed its criteria
  std::string failure;                //!< why not accepted (flags and solver status)
  std::vector<CompartmentVoiFit> vois;  //!< per observed VOI when accepted, else empty
};

//! The curves of `model` at parameters p (all of them, model order) for dose-rate curves (BED): t_h
//! receives the times [h], 0.05 h to 40 physical mean lives by a factor 1.08; the result is the
//! activity [MBq] per time (rows) and observation (columns). Throws ModelError as observe().
Eigen::MatrixXd sample_compartment_curves(const models::CompartmentModel& model, const Eigen::VectorXd& p,
                                          double administered_MBq, double lambda_p_per_h, std::vector<double>& t_h);

//! Fits `model` jointly to the TACs of one cycle that it observes (by VOI name); the others are
//! ignored. Weights follow `error_model` (input: activity_u_MBq; constant: equal; otherwise
//! relative). Nothing observed: an empty `observed`. Throws InputError (naming `where`) when a VOI
//! is observed but administered_MBq is not > 0, or when the model cannot be solved.
CompartmentCycleFit fit_compartment_cycle(const models::CompartmentModel& model, const std::vector<TacSeries>& tacs,
                                          double administered_MBq, double lambda_p_per_h, ErrorModel error_model,
                                          const std::string& where);

}  // namespace lutdose
