// Internals of the population estimator shared by population.cpp and population_map.cpp: the
// log-scale parameterisation and the MAP (empirical Bayes) fit of one patient.
#pragma once

#include <Eigen/Dense>

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

//! The prior of one patient: phi ~ N(theta, Omega), and ln y ~ N(ln f, b^2) or, with
//! `additive` (the combined and constant error models), y ~ N(f, sigma0^2 + (b f)^2) with
//! sigma0 = sigma0_MBq / a0_MBq on the scale of y (per administered activity). Omega is
//! diag(omega_diag) when omega_full is empty, else omega_full (symmetric positive-definite, its
//! diagonal equal to omega_diag).
struct Prior {
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

//! MAP by Eigen's Levenberg-Marquardt from `start` (t [h], y > 0 per administered activity; with
//! prior.additive any finite y). Throws nothing.
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
PosteriorMoments posterior_moments(const Prior& prior, const Eigen::VectorXd& t_h, const Eigen::VectorXd& y,
                                   const MapResult& map, unsigned long long seed);

}  // namespace lutdose::population_detail
