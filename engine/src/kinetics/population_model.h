// Internals of the population estimator shared by population.cpp and population_map.cpp: the
// log-scale parameterisation and the MAP (empirical Bayes) fit of one patient.
#pragma once

#include <Eigen/Dense>
#include <functional>
#include <string>
#include <vector>

#include "lutdose/kinetics/population.h"
#include "lutdose/models/exponential.h"

namespace lutdose::population_detail {

//! Natural parameters p = (A, lambda_bio [1/h]) from phi = (ln A, ln rate increments); A in the
//! unit of the data (per administered activity while learning, MBq once shifted by ln A0).
Eigen::VectorXd natural_from_phi(const models::ExponentialFunction& f, const Eigen::VectorXd& phi);
//! phi from natural parameters (amplitudes > 0, rates increasing); non-positive values give NaN.
Eigen::VectorXd phi_from_natural(const models::ExponentialFunction& f, const Eigen::VectorXd& p);
//! d p / d phi (K x K).
Eigen::MatrixXd dnatural_dphi(const models::ExponentialFunction& f, const Eigen::VectorXd& phi);
//! Names of phi: "log_A1_per_administered", "log_dlambda1_bio_per_h", ...
std::vector<std::string> phi_names(const models::ExponentialFunction& f);

//! The structural model of one unit (a TAC, or one patient's cycle of several VOIs): what the MAP,
//! the E-step (Laplace and sampled) and the EM need of it, f per administered activity at the
//! unit's points as a function of phi, and d f / d phi (n x K). The exponential family
//! (ExponentialStructure) and a compartment model (compartment_population.cpp) implement it.
class StructuralModel {
 public:
  virtual ~StructuralModel() = default;
  //! f at phi (one value per point of the unit) and, when `jac` is given, d f / d phi (n x K).
  //! A failed evaluation gives non-finite values (the MAP functors map them to a residual of
  //! 1e30). Throws nothing.
  virtual Eigen::VectorXd evaluate(const Eigen::VectorXd& phi, Eigen::MatrixXd* jac) const = 0;
};

//! The exponential family at one TAC's times t [h] (referenced, not copied) with physical decay
//! lambda_p [1/h]: f = f(t; natural_from_phi(phi)), its Jacobian analytic (f.jacobian times
//! dnatural_dphi).
class ExponentialStructure final : public StructuralModel {
 public:
  ExponentialStructure(const models::ExponentialFunction& f, const Eigen::VectorXd& t_h, double lambda_p_per_h)
      : f_(f), t_(t_h), lambda_p_(lambda_p_per_h) {}
  Eigen::VectorXd evaluate(const Eigen::VectorXd& phi, Eigen::MatrixXd* jac) const override;

 private:
  const models::ExponentialFunction& f_;
  const Eigen::VectorXd& t_;
  double lambda_p_;
};

//! The prior of one patient: phi ~ N(theta, Omega), and ln y ~ N(ln f, b^2) or, with
//! `additive` (the combined and constant error models), y ~ N(f, sigma0^2 + (b f)^2) with
//! sigma0 = sigma0_MBq / a0_MBq on the scale of y (per administered activity). Omega is
//! diag(omega_diag) when omega_full is empty, else omega_full (symmetric positive-definite, its
//! diagonal equal to omega_diag).
struct Prior {
  //! The exponential family of the population; nullptr for a compartment population (each unit's
  //! StructuralModel then comes with the data: PopulationData::structure).
  const models::ExponentialFunction* f = nullptr;
  Eigen::VectorXd theta, omega_diag;  //!< log scale; omega > 0
  double b = 0.1;                     //!< SD of ln y; additive: the proportional coefficient (>= 0)
  double lambda_p = 0;                //!< [1/h]
  bool additive = false;              //!< the linear-scale model with an additive term
  double sigma0_MBq = 0;              //!< additive: the additive SD [MBq] (> 0)
  double a0_MBq = 1;                  //!< additive: the patient's administered activity [MBq]
  double sigma0() const { return sigma0_MBq / a0_MBq; }  //!< additive SD on the scale of y
  //! The input error model (additive, b = 0): each point's SD on the scale of y, u_j / A0, given
  //! with the data (activity_u_MBq), not estimated; empty for every other model.
  Eigen::VectorXd sd_y = Eigen::VectorXd();
  Eigen::MatrixXd omega_full = Eigen::MatrixXd();  //!< empty: Omega diagonal
};

//! The additive models' residual variance at f: sd_y^2 (input), else sigma0^2 + (b f)^2.
Eigen::VectorXd residual_variance(const Prior& prior, const Eigen::VectorXd& f);
//! sum_j ln(2 pi V0_j) of the additive models, V0 the variance at f = 0 (sigma0^2, or sd_y_j^2 for
//! input): with the MAP's objective (whose ln V terms are relative to V0) -2 ln p(y, phi).
double log_2pi_base_variance(const Prior& prior, Eigen::Index n);

//! Omega of `p` as a matrix (diagonal or full).
Eigen::MatrixXd omega_matrix(const Prior& p);
//! The lower Cholesky factor L of Omega (L L^T = Omega); diag(omega^(1/2)) for a diagonal Omega.
Eigen::MatrixXd omega_cholesky(const Prior& p);
//! ln det Omega.
double log_det_omega(const Prior& p);
//! Sets Omega of `p` from a population model's omega: full when it has a covariance, else its diagonal.
void set_omega(Prior& p, const Eigen::MatrixXd& omega);

//! The starting residual error of a population learned with `model` from `d` (its points and
//! administered activities): b = 0.1 (proportional, combined; 0 for constant) and, for the additive
//! models, sigma0 = 10 % of the median |activity| [MBq] of the points; input: b = 0 and sd_y marking
//! the model (each unit's own from d.u_per_administered). Throws nothing.
void set_error_model_start(Prior& prior, PopulationErrorModel model, const PopulationData& d);
//! The prior of a population model's estimates: theta, Omega (full where it has covariances) and its
//! residual error model (additive ones with a0_MBq 1; input: b = 0 and sd_y a marker of one point, to
//! be replaced by the points' own). `f`: the exponential family, nullptr for a compartment population.
Prior model_prior(const models::ExponentialFunction* f, const PopulationModel& m, double lambda_p);

//! The MAP fit of one patient under a prior.
struct MapResult {
  Eigen::VectorXd phi;       //!< the MAP
  Eigen::MatrixXd v;         //!< posterior covariance of phi, (J^T J)^-1 of the whitened residuals
  Eigen::VectorXd residual;  //!< ln y - ln f at the MAP (additive: y - f)
  Eigen::MatrixXd j_logf;    //!< d ln f / d phi at the MAP (n x K) (additive: d f / d phi)
  Eigen::VectorXd fitted;    //!< additive: f at the MAP
  Eigen::VectorXd variance;  //!< additive: sigma0^2 + (b f)^2 at the MAP
  //! sum of squared whitened residuals (data and prior); additive: plus sum ln(V_j / sigma0^2)
  double objective = 0;
  //! additive: sum ln(V_j / sigma0^2), the part of `objective` that is not the chi-square Q; 0 else
  double log_variance_terms = 0;
  double log_det_h = 0;      //!< ln det(J^T J)
  bool ok = false;           //!< finite, converged, positive-definite Hessian
  int evaluations = 0;       //!< residual evaluations of the Levenberg-Marquardt
};

//! MAP by Eigen's Levenberg-Marquardt from `start` (y > 0 per administered activity at the points
//! of `model`; with prior.additive any finite y). Throws nothing.
MapResult map_fit(const Prior& prior, const StructuralModel& model, const Eigen::VectorXd& y,
                  const Eigen::VectorXd& start);
//! map_fit of the exponential family prior.f at the times t [h] (ExponentialStructure).
MapResult map_fit(const Prior& prior, const Eigen::VectorXd& t_h, const Eigen::VectorXd& y,
                  const Eigen::VectorXd& start);

//! The posterior moments of one patient's phi that the EM step needs, by importance sampling.
struct PosteriorMoments {
  Eigen::VectorXd mean;      //!< E[phi | y]
  Eigen::VectorXd variance;  //!< Var[phi_k | y] (the diagonal M-step)
  Eigen::MatrixXd covariance;  //!< Cov[phi | y] (the full M-step)
  double residual_ss = 0;    //!< E[ sum_j (ln y_j - ln f(t_j; phi))^2 | y ]
  Eigen::VectorXd residual_sq;  //!< additive: E[(y_j - f_j)^2 | y] per point
  Eigen::VectorXd fitted;       //!< additive: f at the MAP (Laplace) or E[f_j | y] (sampled)
  //! ln p(y) with y per administered activity (the marginal likelihood, ln y's Jacobian included)
  double log_marginal = 0;
  double effective_draws = 0;  //!< Kish's effective sample size of the weights
  bool sampled = false;        //!< false: the weights failed and the Laplace moments are returned
};

//! The Laplace moments of one patient (sampled = false): the MAP, the diagonal of its Gauss-Newton
//! covariance V, E[residual SS] linearised (|r|^2 + tr(J V J^T)) and ln p(y) as minus half the
//! patient's term of the Laplace -2 log L. `map.ok` must hold; `log_y` = ln y. Throws nothing.
PosteriorMoments laplace_moments(const Prior& prior, const MapResult& map, const Eigen::VectorXd& log_y);

//! Draws of the importance sampler per patient: 2 x 150 antithetic pairs (below).
inline constexpr int POSTERIOR_DRAWS = 300;

//! E[phi], Var[phi] and E[residual SS] of one patient under `prior`, by importance sampling with
//! the defensive mixture q = 1/2 N(MAP, (1.5)^2 V) + 1/2 N(theta, Omega) (V the Laplace posterior
//! covariance of `map`; the prior component keeps the weights bounded by the likelihood where the
//! Laplace approximation is too narrow, e.g. a rate the data barely see). POSTERIOR_DRAWS draws in
//! antithetic pairs from a generator seeded by `seed` (the patient's index): the same draws in every
//! EM iteration, so the EM map is smooth and deterministic. When the weights are not usable (none
//! finite), the Laplace moments (MAP, V) with sampled = false. `map.ok` must hold. Throws nothing.
PosteriorMoments posterior_moments(const Prior& prior, const StructuralModel& model, const Eigen::VectorXd& y,
                                   const MapResult& map, unsigned long long seed);
//! posterior_moments of the exponential family prior.f at the times t [h] (ExponentialStructure).
PosteriorMoments posterior_moments(const Prior& prior, const Eigen::VectorXd& t_h, const Eigen::VectorXd& y,
                                   const MapResult& map, unsigned long long seed);

//! The estimator of population.h (methods.md §10) from the start `prior` (theta, the diagonal of
//! Omega, b; full Omega started diagonal when o.omega_structure is full) on the data `d` (each
//! unit's structural model: d.structure, or the exponential family prior.f at d.t_h): the EM with
//! the Laplace E-step and, with o.sampled_e_step, then the sampled one; m receives the estimates
//! and figures (m.n_patients, n_observations, error_model and names are the caller's). Throws nothing.
void estimate_population(Prior prior, const PopulationData& d, const PopulationOptions& o, PopulationModel& m);

// The MAP's criteria of population_map_fit (population_map.cpp), shared with the compartment
// population's MAP (compartment_population.cpp).

//! The MAP under which the residual criterion judges `r` (the MAP of y under `prior` with `model`):
//! refitted under the prior widened for the population's estimation error when r's Q is above the
//! limit and the widened prior differs; r itself otherwise. Throws nothing.
MapResult map_for_check(const PopulationModel& m, const Prior& prior, const StructuralModel& model,
                        const Eigen::VectorXd& y, const MapResult& r);
//! The standardized residuals of a MAP's curve `fitted_MBq` at the TAC's points under the error model
//! of `prior`: (ln y - ln f) / b (proportional; NaN at points <= 0), (y - f) / (sigma0^2 + (b f)^2)^(1/2)
//! (combined, constant) or (y - f) / u (input: the TAC's activity_u_MBq); NaN where y is not finite.
Eigen::VectorXd standardized_residuals(const Prior& prior, const TacSeries& tac, const Eigen::VectorXd& fitted_MBq);
//! The candidate judged against the TAC's own data under the proportional error model (no point
//! > 0, points near zero). Throws nothing.
void judge_map_against_data(CandidateFit& c, const TacSeries& tac);
//! The candidate judged against the population: the MAP objective Q (at `check`) of c.n_points
//! points against its chi-square limit ("map_residuals_exceed_population_model"). Throws nothing.
void judge_map_against_population(CandidateFit& c, const MapResult& r, const MapResult& check);
//! The candidate's parameter CVs and correlations from its covariance (NaN where it is). Throws nothing.
void set_parameter_figures(CandidateFit& c);
//! The TacFit of a MAP from its one candidate (fit.candidates[0]): method "population MAP", the
//! candidate's function, TIA, u(TIA), its dof and acceptance. Throws nothing.
void set_map_result(TacFit& fit);
//! The population's own estimation error in quantities q of a MAP (methods.md §10, "The population's
//! own uncertainty"): `extra`, their covariance sum_j dq_j dq_j^T over the population parameters j with a
//! known standard error; `missing` names those whose SE is not known (taken as exact), `undetermined`
//! those above MAX_POPULATION_LOG_SE (u then unknown).
struct PopulationError {
  Eigen::MatrixXd extra;
  std::vector<std::string> missing, undetermined;
  std::vector<std::string> shifted;   //!< the parameters propagated
  std::vector<std::string> at_bound;  //!< residual parameters at their bound, shifted by MAX_POPULATION_LOG_SE
  //! correlations shifted by a fraction of their SE only (Omega positive definite): name and fraction
  std::vector<std::string> shrunk;
};
//! PopulationError of `m` (whose MAP prior is `prior`): `q(shifted)` the quantities of the MAP
//! refitted under `shifted` (NaN where it fails), `q0` those of the MAP. Throws nothing but what q throws.
PopulationError population_error(const PopulationModel& m, const Prior& prior,
                                 const std::function<Eigen::VectorXd(const Prior&)>& q, const Eigen::VectorXd& q0);
//! The note on u(TIA) of fit.candidates[0], whose u(TIA) already includes e.extra (u_posterior without
//! it); an undetermined parameter makes u(TIA) unknown (NaN, fit.tia_u_unknown_reason), as does a
//! non-finite u. Throws nothing.
std::string population_error_note(const PopulationModel& m, const PopulationError& e, double u_posterior, TacFit& fit);
//! The note on u(TIA) of a MAP under a population without standard errors (taken as known).
std::string population_known_note();
//! The warnings of a MAP under `m`: population_below_50_tacs:N, population_not_converged.
void add_population_warnings(const PopulationModel& m, CandidateFit& c);

}  // namespace lutdose::population_detail
