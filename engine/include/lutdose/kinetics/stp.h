// Reduced imaging schedules: single-time-point (STP) estimators of the time-integrated activity
// (methods.md §4) and a fit of one or two time points with population priors (methods.md §2.2,
// "Bayesian/population variant"). User documentation: docs/reduced-schedules.md.
//
// Conventions (methods.md, "Conventions"): time t in h from the cycle's reference time t0;
// activities in MBq as present at the time of measurement (not decay-corrected); rates in 1/h;
// TIA in MBq h. "Effective" rates include physical decay (lambda_eff = lambda_bio + lambda_p),
// "biological" rates do not.
//
// Bad arguments (t <= 0, A < 0, rates <= 0, NaN, wrong sizes) throw InputError with the message
// "FUNCTION: FIELD is 'VALUE'; expected ..." (lutdose/error.h).
#pragma once

#include <Eigen/Dense>

#include <limits>
#include <string>
#include <vector>

#include "lutdose/models/exponential.h"

namespace lutdose {

// ---------------------------------------------------------------------------------------------
// Hänscheid et al. 2018 (methods.md §4.1)

//! TIA from one activity, Hänscheid's estimator A(t) 2t/ln2 [MBq h]. Exact for a mono-exponential
//! TAC whose effective half-life is t or t/2 (hanscheid_ratio). t_h [h] > 0, activity_MBq >= 0;
//! InputError otherwise.
double tia_hanscheid(double t_h, double activity_MBq);

//! Estimate/true of tia_hanscheid for a mono-exponential TAC: R(r) = 2 r 2^-r with r = t/T_eff
//! (dimensionless, > 0). R = 1 at r = 1 and 2, maximum 2/(e ln2) = 1.0615 at r = 1/ln2.
//! InputError for r <= 0 or not finite.
double hanscheid_ratio(double r);

// ---------------------------------------------------------------------------------------------
// Madsen et al. 2018 (methods.md §4.2)

//! TIA from one activity and a population effective decay constant: A(t) e^{lambda t}/lambda
//! [MBq h]. Exact for a mono-exponential TAC with that effective rate. t_h > 0, activity_MBq >= 0,
//! lambda_eff_pop_per_h [1/h] > 0; InputError otherwise.
double tia_madsen(double t_h, double activity_MBq, double lambda_eff_pop_per_h);

//! The imaging time at which tia_madsen is insensitive to the population rate,
//! d ln TIA / d lambda = t - 1/lambda = 0: t = 1/lambda = T_eff,pop/ln2 [h]. lambda [1/h] > 0;
//! InputError otherwise.
double madsen_optimal_time_h(double lambda_eff_pop_per_h);

//! Estimate/true of tia_madsen for a mono-exponential TAC with effective rate
//! lambda_eff_true_per_h, imaged at t_h: (lambda/lambda_pop) e^{(lambda_pop - lambda) t}
//! (dimensionless). t_h [h], rates [1/h], all > 0 and finite; InputError otherwise.
double madsen_ratio(double t_h, double lambda_eff_true_per_h, double lambda_eff_pop_per_h);

// ---------------------------------------------------------------------------------------------
// Uncertainty of the single-time-point estimators from the population spread of the kinetics

//! Standard uncertainty [MBq h] of a single-time-point estimate TIA = c A(t) (Hänscheid: c =
//! 2t/ln2; Madsen: c = e^{lambda_pop t}/lambda_pop) when the patient's TAC is mono-exponential
//! with an effective rate lambda ~ N(lambda_mean, lambda_sd^2) (the population of
//! data/kinetics/population_kinetics.csv): the root-mean-square error
//! u^2 = A^2 (Var[g] + (E[g] - c)^2) + c^2 u(A)^2 with g(lambda) = e^{lambda t}/lambda the true
//! TIA per activity, E[g] and Var[g] to second order in lambda_sd (GUM 5.1.2 note; for a Gaussian
//! lambda: E[g] = g + g'' s^2/2, Var[g] = g'^2 s^2 + (g''^2/2 + g' g''') s^4). The bias E[g] - c of the
//! estimator is thus part of u. t_h > 0, activity_MBq >= 0, activity_u_MBq >= 0,
//! lambda_mean_per_h > 0, lambda_sd_per_h >= 0, c_h > 0; InputError otherwise.
double stp_population_u(double t_h, double activity_MBq, double activity_u_MBq, double c_h,
                        double lambda_mean_per_h, double lambda_sd_per_h);

// ---------------------------------------------------------------------------------------------
// Population-curve estimator (methods.md §4.3)

//! Result of a population-curve STP estimate.
struct StpEstimate {
  double tia_MBq_h = std::numeric_limits<double>::quiet_NaN();
  //! TIA / A(t) = integral_0^inf f / f(t) [h]: the population curve's TIA per activity at t.
  double tia_per_activity_h = std::numeric_limits<double>::quiet_NaN();
  //! Standard uncertainty from the population parameters' covariance [MBq h]; NaN when no
  //! covariance was given.
  double tia_u_population_MBq_h = std::numeric_limits<double>::quiet_NaN();
  //! Standard uncertainty from the activity's uncertainty [MBq h] (0 when none was given).
  double tia_u_activity_MBq_h = 0.0;
  //! Both in quadrature [MBq h]; NaN when no covariance was given.
  double tia_u_MBq_h = std::numeric_limits<double>::quiet_NaN();
};

//! Population-based STP: TIA = A(t) * integral_0^inf f(tau) dtau / f(t), with f the function of
//! the exponential family at the population's natural parameters (amplitudes [MBq], biological
//! rates [1/h]; only the shape matters: the amplitudes' overall scale cancels). Hänscheid and
//! Madsen are the special cases f = E1 with T_eff = t (or t/2), resp. lambda_eff = lambda_pop.
//! `population_covariance` (K x K, natural parameters; empty: none) gives the uncertainty of the
//! estimate from the spread of the population curve, by first-order propagation through
//! integral/f(t); `activity_u_MBq` >= 0 adds the activity's uncertainty. Throws InputError for
//! t_h <= 0, activity_MBq < 0, lambda_p_per_h <= 0, wrong sizes, or f(t) <= 0 / integral <= 0.
StpEstimate tia_population_curve(double t_h, double activity_MBq,
                                 const models::ExponentialFunction& f,
                                 const Eigen::VectorXd& population_parameters,
                                 double lambda_p_per_h,
                                 const Eigen::MatrixXd& population_covariance = Eigen::MatrixXd(),
                                 double activity_u_MBq = 0.0);

// ---------------------------------------------------------------------------------------------
// Population kinetics (data/kinetics/population_kinetics.csv)

//! A Gaussian prior N(mean, sd^2) on one natural parameter of a function.
struct ParameterPrior {
  std::string parameter;  //!< natural parameter name, e.g. "lambda1_bio_per_h" (unit in the name)
  double mean = 0;        //!< [unit of the parameter]
  double sd = 0;          //!< [unit of the parameter], > 0
  std::string source;     //!< citation and tag ([seen: Kx], [derived], [unverified])
};

//! The population priors of one target pattern and one function. Parameters without a prior
//! (usually the amplitudes) are free (flat prior).
struct PopulationKinetics {
  std::string target_pattern;  //!< "kidney*" matches names starting with "kidney"; else exact
  std::string function;        //!< id of the exponential family, e.g. "E1"
  std::vector<ParameterPrior> priors;
  std::string where;  //!< file and line of the first row, for messages
};

//! Reads data_dir/kinetics/population_kinetics.csv (columns target_pattern, function, parameter,
//! mean, sd, source; '#' comments). Rows with the same target_pattern and function form one
//! entry, in order of first appearance. InputError (file, line, field, value) for an unknown
//! function or parameter, a repeated parameter, a non-finite mean, a negative rate mean, sd <= 0.
std::vector<PopulationKinetics> load_population_kinetics(const std::string& data_dir);
//! The same for a file in that format at `path` (a user's population entries, e.g. lutdose synth
//! --population-kinetics).
std::vector<PopulationKinetics> load_population_kinetics_file(const std::string& path);

//! The entry for a target name: an exact pattern wins, else the longest matching "name*"
//! pattern; restricted to one function id unless `function` is empty. nullptr if none matches.
//! The pointer is into `table`. Throws nothing.
const PopulationKinetics* find_population_kinetics(const std::vector<PopulationKinetics>& table,
                                                   const std::string& target,
                                                   const std::string& function = "");

// ---------------------------------------------------------------------------------------------
// Fit of few time points with population priors (maximum a posteriori)

//! Result of fit_with_prior.
struct PriorFit {
  std::string function;
  int n_points = 0;
  int n_parameters = 0;  //!< K
  int n_priors = 0;
  bool fitted = false;     //!< the optimiser produced finite parameters
  bool converged = false;  //!< Levenberg-Marquardt stopped on a tolerance, not on its budget
  std::vector<std::string> parameter_names;
  Eigen::VectorXd parameters;  //!< MAP estimate, natural parameters (A [MBq], lambda_bio [1/h])
  Eigen::VectorXd prior_mean;  //!< per parameter; NaN where the prior is flat
  Eigen::VectorXd prior_sd;    //!< per parameter; NaN where the prior is flat
  //! Posterior covariance (Laplace approximation): (J^T J)^-1 with J the Jacobian of the stacked
  //! residuals in the natural parameters at the MAP. NaN when J is rank deficient.
  Eigen::MatrixXd covariance;
  Eigen::VectorXd fitted_MBq;            //!< f(t_i)
  Eigen::VectorXd data_residuals;        //!< (y_i - f(t_i)) / sigma_i
  Eigen::VectorXd prior_residuals;       //!< (p_j - mean_j) / sd_j; NaN where flat
  double chi2_data = std::numeric_limits<double>::quiet_NaN();  //!< sum of data_residuals^2
  double penalty = std::numeric_limits<double>::quiet_NaN();    //!< sum of prior_residuals^2
  double objective = std::numeric_limits<double>::quiet_NaN();  //!< chi2_data + penalty
  int rank = 0;
  double tia_MBq_h = std::numeric_limits<double>::quiet_NaN();
  double tia_u_MBq_h = std::numeric_limits<double>::quiet_NaN();  //!< from the posterior covariance
  int starts = 0;
  int evaluations = 0;
  //! Findings: not_converged, rank_deficient, rate_at_lower_bound:NAME, rates_coincide:NAME,
  //! negative_amplitude:NAME, tia_not_positive.
  std::vector<std::string> flags;
};

//! Maximum a posteriori fit of f to n >= 1 points with Gaussian priors on some parameters:
//! minimises sum_i ((y_i - f(t_i; p))/sigma_i)^2 + sum_j ((p_j - mean_j)/sd_j)^2 (methods.md
//! §2.2; the exact form of NUKFIT's penalty is [unverified]) with Eigen's Levenberg-Marquardt on
//! the stacked residual vector. Rates are optimised as log increments (so they stay >= 0 and
//! ordered, as in fit_function); parameters without a prior are free. sigma_MBq are absolute
//! standard uncertainties (> 0) of the activities: they set the weight of the data against the
//! priors. TIA = integral_0^inf f at the MAP, its uncertainty by propagation of the posterior
//! covariance. Throws InputError for bad values or sizes, unknown or repeated prior parameters,
//! lambda_p_per_h <= 0, or fewer points plus priors than parameters.
PriorFit fit_with_prior(const models::ExponentialFunction& f, const Eigen::VectorXd& t_h,
                        const Eigen::VectorXd& a_MBq, const Eigen::VectorXd& sigma_MBq,
                        double lambda_p_per_h, const std::vector<ParameterPrior>& priors);

//! The same with the function and priors of a population entry (load_population_kinetics); also
//! InputError when the entry's function is not of the exponential family.
PriorFit fit_with_prior(const PopulationKinetics& population, const Eigen::VectorXd& t_h,
                        const Eigen::VectorXd& a_MBq, const Eigen::VectorXd& sigma_MBq,
                        double lambda_p_per_h);

}  // namespace lutdose
