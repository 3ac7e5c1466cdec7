// A compartment model (Boost.Odeint) as the structural model of a population (NLME) fit
// (methods.md §10, "Compartment models as the structural model"; docs/population.md; issue 15).
//
// phi = ln of the model's free parameters (the file's "fit": true ones, or a given list), log-normal
// random effects phi_i = theta + eta_i, eta_i ~ N(0, Omega). One unit is one patient's cycle: the
// points of every VOI the model observes, stacked; f of a point is model.observe(t; p)[voi] / A0 with
// the unit's administered activity A0 (binding models depend on A0 through the peptide amount).
// Residual error: the error models of the exponential family (population.h): proportional on the log
// scale, ln(y / A0) = ln f + e, e ~ N(0, b^2); combined, constant and input on the linear scale (a
// reading <= 0 is data there). The estimator
// is the one of the exponential family (population.h: MAP per unit, EM, Laplace then sampled E-step),
// with d f / d phi by central differences of ODE solutions.
#pragma once

#include <limits>
#include <string>
#include <vector>

#include "lutdose/io/tac_table.h"
#include "lutdose/kinetics/compartment_fit.h"
#include "lutdose/kinetics/fitting.h"
#include "lutdose/kinetics/population.h"
#include "lutdose/models/compartment.h"

namespace lutdose {

//! The kind of a compartment population's model (PopulationModel::voi_kind): it spans the VOIs the
//! model observes, not one VOI kind.
inline constexpr const char* COMPARTMENT_POPULATION_KIND = "compartment";

//! The step of the central differences of d f / d phi and d TIA / d phi, on the log scale of the
//! parameters: 1e-3, a 0.1 % change of a rate, the step of models::fit's forward differences. Central
//! differences have a truncation error of order step^2 (1e-6 relative) and the ODE solver's error
//! (FitOptions().fit_solver, 1e-5 relative) largely cancels between the two nearby solutions, which
//! take the same steps.
inline constexpr double COMPARTMENT_POPULATION_FD_STEP = 1e-3;

//! One unit: the TACs of one patient's cycle (those of VOIs the model does not observe are ignored)
//! and its administered activity [MBq].
struct CompartmentUnit {
  std::vector<TacSeries> tacs;
  double administered_MBq = std::numeric_limits<double>::quiet_NaN();
};

//! A learned compartment population: the population (voi_kind COMPARTMENT_POPULATION_KIND, function
//! "compartment:NAME", phi_names "log_NAME" of the free parameters, n_patients the units) and the
//! structural model it was learned with.
struct CompartmentPopulation {
  PopulationModel model;
  std::string model_name;                   //!< CompartmentModel::name()
  std::string model_sha256;                 //!< of the model file's bytes
  std::vector<std::string> free_parameters;  //!< names in the model, the order of phi
  std::vector<std::string> observed_vois;   //!< the model's observations (VOI names)
};

//! The free parameters of `model`: `names` when given (each a parameter of the model, once), else
//! those marked "fit": true. InputError naming `where` (where `names` were given: "command line:
//! --free-parameters") for an unknown or repeated name, or naming `model_path` (the model file) when
//! none is named and none is marked.
std::vector<std::string> compartment_free_parameters(const models::CompartmentModel& model,
                                                     const std::vector<std::string>& names, const std::string& where,
                                                     const std::string& model_path);

//! The note for the VOIs of `series` that `model` does not observe (left out of its population),
//! "VOIs the model NAME does not observe, left out of the population: A, B"; "" when it observes
//! them all. Throws nothing.
std::string unobserved_vois_note(const models::CompartmentModel& model, const std::vector<TacSeries>& series);

//! The units of a cohort: `series` grouped by (patient, cycle), each with the administered activity
//! of its series (`administered_MBq[i]` of `series[i]`); only the VOIs `model` observes are kept, and
//! a group without any is left out. std::invalid_argument when the sizes differ. Throws nothing else.
std::vector<CompartmentUnit> compartment_units(const models::CompartmentModel& model,
                                               const std::vector<TacSeries>& series,
                                               const std::vector<double>& administered_MBq);

//! Learns the population of `units` with `model` as the structural model (free parameters as
//! compartment_free_parameters; start: theta the log of the file's values, Omega 0.09 on the
//! diagonal, b 0.1; the additive models' sigma0 as the exponential family's). o.candidates is not
//! used; o.omega_structure full needs POPULATION_MIN_TACS units. InputError naming `path` for: fewer
//! than 2 units, an activity <= 0 (proportional) or not finite, a point without activity_u_MBq (input),
//! an administered activity that is not > 0, a full Omega from too few units, and as
//! compartment_free_parameters. `model_sha256` is recorded.
CompartmentPopulation learn_compartment_population(const models::CompartmentModel& model,
                                                   const std::string& model_sha256,
                                                   const std::vector<CompartmentUnit>& units, double lambda_p_per_h,
                                                   const PopulationOptions& o,
                                                   const std::vector<std::string>& free_parameters,
                                                   const std::string& path);

//! The MAP fit of one observed VOI of a new patient's cycle.
struct CompartmentMapFit {
  std::string voi;
  TacFit fit;
  Eigen::VectorXd parameters;  //!< every model parameter at the MAP (model order)
};

//! The MAP (empirical Bayes) fit of a new patient's cycle (its `tacs`, the administered activity
//! [MBq]) with `population` as prior and `model` (the model it was learned with) as the structural
//! model: per observed VOI with points a TacFit of method "population MAP", one candidate of function
//! "compartment:NAME" (the free parameters at the MAP and their posterior covariance), TIA [MBq h]
//! by model.tia_per_observation at the MAP, u(TIA) by the delta method with the MAP's posterior
//! covariance of phi (gradient by central differences, COMPARTMENT_POPULATION_FD_STEP) plus the
//! population's own estimation error where the population has standard errors (methods.md §10).
//! Points <= 0 are left out (noted) under the proportional error model; the additive ones keep every
//! finite point. Flags and warnings as population_map_fit where they apply:
//! "population_map_failed", "tia_not_positive", "no_positive_points",
//! "near_zero_activity_at_N_points" (proportional: readings <= 1e-3 of the VOI's largest where the
//! model at theta is not that low), "map_residuals_exceed_population_model"
//! (the criterion of the whole cycle's points, on every VOI's candidate), "population_below_50_tacs:N"
//! (N units), "population_not_converged". InputError naming `where` when the administered activity
//! is not > 0, `model` is not the population's (name or free parameters differ), or an observed TAC
//! has no activity_u_MBq under the input error model.
std::vector<CompartmentMapFit> compartment_population_map_fit(const CompartmentPopulation& population,
                                                              const models::CompartmentModel& model,
                                                              const std::vector<TacSeries>& tacs,
                                                              double administered_MBq, double lambda_p_per_h,
                                                              const std::string& where);

//! compartment_population_map_fit of one cycle for the pipeline, as fit_compartment_cycle gives the
//! individual joint fit: `observed` the observed VOIs with points, `accepted` when every one's MAP
//! is (else `failure` lists the flags, and the pipeline keeps the individual fits), per VOI its
//! TacFit and the curve at the MAP (sample_compartment_curves). Nothing observed: an empty
//! `observed`. InputError as compartment_population_map_fit.
CompartmentCycleFit compartment_population_cycle(const CompartmentPopulation& population,
                                                 const models::CompartmentModel& model,
                                                 const std::vector<TacSeries>& tacs, double administered_MBq,
                                                 double lambda_p_per_h, const std::string& where);

}  // namespace lutdose
