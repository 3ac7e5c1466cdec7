// Population (nonlinear mixed-effects, NLME) kinetics of a cohort (methods.md §10, issue 15).
//
// Per VOI kind (the VOI name; tumour_*, tumor_* and lesion_* pool as "tumour") and per function
// of the exponential family with positive terms (E1p, E1, E2u, E2), the log parameters of patient
// i are phi_i = theta + eta_i with eta_i ~ N(0, Omega), Omega diagonal or full (PopulationOptions). phi holds
// the log amplitudes per administered activity, ln(A_j / A0_i) (A0_i the TAC's administered
// activity: a population learned at one activity applies to a patient given another, and the
// MAP TIA scales with A0), and the log rate increments of fit_function (lambda_1 = e^phi,
// lambda_r = lambda_(r-1) + e^phi), so amplitudes and rates are log-normal and rates stay
// ordered. Physical decay is built into every term. Residual error: proportional, modelled on the
// log scale, ln(y_ij / A0_i) = ln f(t_ij; phi_i) + e_ij, e_ij ~ N(0, b^2) (b the relative SD).
//
// Estimator: the alternating algorithm of Lindstrom & Bates (1990): a MAP (empirical Bayes) fit
// per patient with Eigen's Levenberg-Marquardt, then the linearised mixed model at the MAPs
// updated by one EM step (theta, Omega, b), until the parameters settle. The objective reported
// is the Laplace approximation of -2 log L with the Gauss-Newton Hessian (FOCE; the residual
// variance does not depend on eta on the log scale, so FOCE and FOCE-I coincide).
#pragma once

#include <Eigen/Dense>

#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lutdose/io/tac_table.h"
#include "lutdose/kinetics/fitting.h"
#include "lutdose/models/exponential.h"

namespace lutdose {

namespace population_detail {
class StructuralModel;  // kinetics/population_model.h (internal)
}

//! The population kind of a VOI name: "tumour" for tumour_*, tumor_*, lesion_*; else the name.
//! Throws nothing.
std::string population_voi_kind(const std::string& voi);

//! Functions a population model can use: every term positive (ln f exists): E1p, E1, E2u, E2.
//! Throws nothing.
bool population_function_supported(const std::string& id);

//! Names of the log-scale parameters phi of `f`: "log_A1_per_administered", ... (ln of the
//! amplitude over the administered activity, a fraction), "log_dlambda1_bio_per_h", ... (the log
//! of the first rate, then of each increment to the next). Throws nothing.
std::vector<std::string> population_parameter_names(const models::ExponentialFunction& f);

//! Below this many TACs of a VOI kind the MAP intervals are overconfident (docs/population.md,
//! "Cohort size"): each MAP fit then has the warning "population_below_50_tacs:N".
inline constexpr int POPULATION_MIN_TACS = 50;

//! The false-rejection probability per TAC of the residual criterion of a MAP fit
//! (population_map_fit, "map_residuals_exceed_population_model"): the probability that a TAC
//! drawn from the population itself is rejected. 1e-3: about one TAC in a thousand falls back to
//! its individual fit for nothing, while a TAC far from the population (an edited population file,
//! a curve 60 times above the points) exceeds the limit by orders of magnitude (docs/population.md).
inline constexpr double POPULATION_MAP_FALSE_REJECTION = 1e-3;
//! The largest residual SD b of ln A the MAP's residual criterion allows for when b is estimated
//! from few residuals (a previous-cycles prior, sigma_log_dof finite): 0.5, a factor e^0.5 = 1.65
//! at one SD. Quantitative SPECT activities of one treatment are known to about 13 % (Staanum et
//! al., EJNMMI Physics 8 (2021) 78) and the synthetic default is 5-10 % (methods.md §9.3): a
//! series noisier than four times that is not taken as quantitative. Without such a cap, one
//! residual degree of freedom bounds b only by about 800 b_hat (docs/population.md).
inline constexpr double MAP_CHECK_MAX_SIGMA_LOG = 0.5;

//! The residual error model of a population (methods.md §10, "Residual error"; issue 15).
//! proportional: on the log scale, ln y = ln f + e, e ~ N(0, b^2) (b = sigma_log; points <= 0 refused
//! when learning, left out of a MAP). combined: on the linear scale, y = f + e with
//! Var e = (sigma0_MBq / A0)^2 + (b f)^2 (y = A / A0; sigma0 [MBq] and b estimated; every point used,
//! <= 0 included). constant: combined with b = 0 (sigma0 estimated). input: Var e = (u / A0)^2 with
//! each point's u = activity_u_MBq of the TAC table (given, nothing estimated; every point needs one).
enum class PopulationErrorModel { proportional, combined, constant, input };
//! "proportional", "combined", "constant", "input". Throws nothing.
std::string to_string(PopulationErrorModel m);
//! The model of a name of to_string; std::nullopt for any other text. Throws nothing.
std::optional<PopulationErrorModel> parse_population_error_model(const std::string& s);
//! The error model has an additive SD sigma0_MBq (combined, constant): sigma0 and, for combined, b
//! are estimated on the linear scale. Throws nothing.
inline bool has_additive_sd(PopulationErrorModel m) {
  return m == PopulationErrorModel::combined || m == PopulationErrorModel::constant;
}

//! The largest standard error, on the log scale, of a population parameter (theta, ln Omega_kk,
//! ln b) that its learning cohort is taken to have determined: 3, a factor e^3 = 20 at one standard
//! error. Above it the parameter is not determined (e.g. the second rate of a non-converged E2
//! population), and a MAP's u(TIA), which carries the population's own estimation error, is unknown
//! (NaN with the reason naming it) rather than a shift by e^SE of Omega (review of 0.17: 1e6 overflowed).
inline constexpr double MAX_POPULATION_LOG_SE = 3.0;

//! The learned population of one VOI kind and one function.
struct PopulationModel {
  std::string voi_kind;
  std::string function;                 //!< id of the exponential family
  std::vector<std::string> phi_names;   //!< "log_A1_per_administered", "log_dlambda1_bio_per_h", ...
  Eigen::VectorXd theta;                //!< fixed effects (log scale)
  Eigen::VectorXd theta_se;             //!< their standard errors (linearised Fisher information)
  Eigen::MatrixXd omega;                //!< covariance of eta (diagonal unless omega_structure is "full")
  //! "diagonal" (variances only: PopulationOptions::omega_structure's default) or "full" (the
  //! covariances between the log parameters estimated too).
  std::string omega_structure = "diagonal";
  //! Standard errors of ln Omega_kk (the log of each variance), from the Fisher information of the
  //! linearised model (methods.md §10, "The population's own uncertainty"). Empty (absent from an
  //! older population file) or NaN: not known; then the MAP takes Omega as known.
  Eigen::VectorXd log_omega_se;
  //! Standard errors of the correlations rho_kl = Omega_kl / (Omega_kk Omega_ll)^(1/2) of a full
  //! Omega (K x K, symmetric, diagonal 0: rho_kk = 1 exactly), by the delta method from the same
  //! inverted Fisher information as log_omega_se (methods.md §10, "The population's own
  //! uncertainty"). Empty for a diagonal Omega and where not known (a population file of lutdose
  //! 0.19 or earlier: the MAP then takes the correlations as known); a NaN entry is not known.
  Eigen::MatrixXd omega_correlation_se;
  //! Standard error of ln sigma_log, 1 / (2 d)^(1/2) with d the residual degrees of freedom of
  //! learning (methods.md §10); of the combined model, the SE of ln b (sigma_log holds b there).
  //! NaN: not known (an older population file; the constant model, whose b is fixed at 0).
  double log_sigma_log_se = std::numeric_limits<double>::quiet_NaN();
  //! Standard error of ln sigma0_MBq (the combined and constant error models; methods.md §10).
  //! NaN: not known (another error model, or a population file of lutdose 0.18 or earlier).
  double log_sigma0_se = std::numeric_limits<double>::quiet_NaN();
  //! Omega is already the predictive variance of a new TAC's phi, theta's estimation error
  //! included (a previous-cycles prior): the MAP's residual criterion then adds no theta_se^2
  //! (population_map_fit). False for a learned population or a population file. Not in the file.
  bool omega_includes_theta_error = false;
  double sigma_log = std::numeric_limits<double>::quiet_NaN();  //!< b: SD of ln y (relative SD)
  //! The residual error model. With combined or constant, sigma_log holds b, the proportional
  //! coefficient on the linear scale (SD of y / f at sigma0 = 0; 0 for constant), and sigma0_MBq
  //! the additive SD [MBq] (NaN for proportional: not part of that model).
  PopulationErrorModel error_model = PopulationErrorModel::proportional;
  double sigma0_MBq = std::numeric_limits<double>::quiet_NaN();
  //! Degrees of freedom of sigma_log as an estimate: infinite where it is taken as known (a learned
  //! population or a population file, as its other parameters), the residual degrees of freedom
  //! of the earlier fits for a previous-cycles prior. Not in the population file.
  double sigma_log_dof = std::numeric_limits<double>::infinity();
  Eigen::VectorXd shrinkage;            //!< eta shrinkage 1 - SD(eta_MAP) / omega_k^(1/2)
  //! TACs (units with their own random effects; named patients in the file format) and points.
  int n_patients = 0, n_observations = 0;
  double minus2_log_likelihood = std::numeric_limits<double>::quiet_NaN();  //!< Laplace (FOCE)
  double aicc = std::numeric_limits<double>::quiet_NaN();
  double bic = std::numeric_limits<double>::quiet_NaN();  //!< penalty P ln(n_patients)
  //! P = K (theta) + K (Omega diagonal) or K (K + 1) / 2 (Omega full) + 1 (b; or sigma0 for constant), + 1
  //! (sigma0) for combined, + 0 for input
  int n_population_parameters = 0;
  int iterations = 0;  //!< of the EM, both stages (Laplace, then sampled) together
  bool converged = false;
  //! The E-step of the final estimates: "laplace" (MAP and Gauss-Newton covariance) or "sampled"
  //! (importance sampling of each patient's posterior, after the Laplace EM: PopulationOptions).
  std::string e_step = "laplace";
  //! For the chosen model: every candidate's function, -2 log L, AICc, BIC, converged.
  struct Candidate {
    std::string function;
    double minus2_log_likelihood, aicc, bic;
    bool converged;
    int iterations;
  };
  std::vector<Candidate> candidates;
};

//! The structure of Omega, the covariance of the random effects (PopulationOptions).
enum class OmegaStructure {
  diagonal,  //!< variances only (the default)
  full       //!< variances and covariances (methods.md §10, "Full Omega")
};

//! "diagonal" or "full". Throws nothing.
std::string omega_structure_name(OmegaStructure s);

struct PopulationOptions {
  //! Candidate functions; the one with the lowest BIC is chosen per VOI kind.
  std::vector<std::string> candidates = {"E1", "E2u", "E2"};
  int max_iterations = 100;
  //! Stop when no theta, ln omega or ln b moves by more than this between iterations,
  double tolerance = 1e-5;
  //! or when -2 log L changes by less than this (a parameter that the data do not determine,
  //! e.g. the amplitude of a second phase absent from the data, drifts without changing it; BIC
  //! differences below 1 do not matter for the choice).
  double objective_tolerance = 1e-3;
  //! Stop when -2 log L has improved by less than plateau_improvement over the last
  //! plateau_iterations iterations: a candidate the data cannot determine (over-parameterised)
  //! creeps or cycles there; 0.5 in 20 iterations is far below the BIC margins that decide.
  int plateau_iterations = 20;
  double plateau_improvement = 0.5;
  //! Threads over (VOI kind, function) pairs and, within one fit, over the patients (units) of its
  //! E-step (the threads the pairs leave over); 0: hardware concurrency. The estimates are the same
  //! whatever the number (each patient's MAP and sampled moments are its own, the sums in patient
  //! order).
  unsigned threads = 0;
  //! The E-step's posterior moments of each patient. The EM always runs first with the Laplace
  //! approximation (MAP and its Gauss-Newton covariance): the candidates are compared (BIC) on
  //! those fits. With sampled_e_step (the default) the chosen candidate of each VOI kind is then
  //! refined by the EM with moments sampled around each MAP (importance sampling), starting from
  //! its Laplace estimates: that removes the Laplace E-step's bias where shrinkage is high (a rate
  //! the data barely see: theta too high, Omega too low; docs/population.md). Sampling every
  //! candidate from the start made learning about 11 times slower; only the chosen one, from the
  //! Laplace estimates, costs little more than the Laplace EM (docs/validation.md §10).
  bool sampled_e_step = true;
  //! The residual error model learned (PopulationErrorModel); proportional by default.
  PopulationErrorModel error_model = PopulationErrorModel::proportional;
  //! Omega diagonal (the default) or full: a full Omega estimates the correlations between the
  //! patients' log parameters (e.g. amplitude and rate), which the MAP of a sparse TAC uses
  //! (docs/population.md, "Full Omega"); BIC counts K (K - 1) / 2 more parameters.
  OmegaStructure omega_structure = OmegaStructure::diagonal;
};

//! The TACs of one VOI kind with the points the population uses.
struct PopulationData {
  //! per TAC: times [h] and activities per administered activity y / A0 (a fraction, > 0)
  std::vector<Eigen::VectorXd> t_h, y_per_administered;
  //! per TAC: its administered activity A0 [MBq] (population_data fills it; the additive error
  //! models need it: sigma0 is in MBq, sigma0 / A0 on the scale of y)
  std::vector<double> administered_MBq;
  //! per TAC: activity_u_MBq / A0 of its points (the input error model; empty when not given)
  std::vector<Eigen::VectorXd> u_per_administered;
  //! per unit: its structural model (f per administered activity at its points, and d f / d phi)
  //! when it is not the exponential family of the population at t_h (a compartment population,
  //! kinetics/compartment_population.h); empty for the exponential family.
  std::vector<std::shared_ptr<const population_detail::StructuralModel>> structure;
};

//! Groups the TACs by VOI kind, each TAC's activities divided by its administered activity
//! (`administered_MBq[i]` [MBq] of `series[i]`). InputError naming the TAC (`path`, patient, VOI)
//! and the value for an activity <= 0 (the logarithm is modelled) or an administered activity
//! that is not a finite number > 0; std::invalid_argument when the sizes differ.
std::map<std::string, PopulationData> population_data(const std::vector<TacSeries>& series,
                                                      const std::vector<double>& administered_MBq,
                                                      const std::string& path);
//! As population_data; with `nonpositive_allowed` (the additive error models, combined and
//! constant: a point <= 0 is data there) activities <= 0 are kept, not refused.
std::map<std::string, PopulationData> population_data(const std::vector<TacSeries>& series,
                                                      const std::vector<double>& administered_MBq,
                                                      const std::string& path, bool nonpositive_allowed);

//! Fits one function to one VOI kind (needs >= 2 TACs): the EM with the Laplace E-step and, with
//! o.sampled_e_step, then with the sampled E-step from those estimates. InputError for an
//! unsupported function or fewer than 2 TACs (naming `where`).
PopulationModel fit_population_model(const models::ExponentialFunction& f, const PopulationData& d,
                                     double lambda_p_per_h, const PopulationOptions& o,
                                     const std::string& voi_kind);

//! The sampled-E-step EM of a model fitted with the Laplace E-step (`laplace`, e.g. the chosen
//! candidate of fit_population_model with sampled_e_step false), from its estimates, on the same
//! data `d`; the candidates' figures are kept. InputError as fit_population_model.
PopulationModel refine_population_model(const PopulationModel& laplace, const PopulationData& d,
                                        double lambda_p_per_h, const PopulationOptions& o);

//! Every VOI kind of the table: the identifiable candidates fitted (in parallel over kind x
//! function) with the Laplace E-step, the lowest BIC kept, with their figures, and then refined
//! with the sampled E-step when o.sampled_e_step (refine_population_model). A candidate with K parameters is
//! identifiable if some TAC of the kind has more than K distinct time points and the kind has at
//! least 2K + 1 observations. InputError as population_data and fit_population_model; for an
//! unsupported candidate; naming `path`, the kind and its points when no candidate is identifiable.
//! `administered_MBq[i]`: the administered activity of `series[i]` (amplitudes are learned per
//! administered activity).
std::vector<PopulationModel> learn_population(const std::vector<TacSeries>& series,
                                              const std::vector<double>& administered_MBq, double lambda_p_per_h,
                                              const PopulationOptions& o, const std::string& path);

//! The MAP (empirical Bayes) fit of one TAC given `administered_MBq` [MBq] with a population model
//! as prior: a TacFit with one candidate (the model's function; parameters in MBq and 1/h,
//! posterior covariance in natural units, TIA and its u by the delta method, infinite dof), method
//! "population MAP", a note that the estimate is population-based. Points with activity <= 0 are
//! left out (noted). The candidate is judged against the TAC's own data: flags (not accepted)
//! "no_positive_points" when no point is > 0 (the MAP would be the population's, not the
//! patient's) and "near_zero_activity_at_N_points" as an individual fit under the proportional
//! error model (fitting.h), besides "population_map_failed" and "tia_not_positive"; and
//! "map_residuals_exceed_population_model:chi2=Q,limit=L,n=N" when the TAC's N points used are
//! improbable under the population: Q, the MAP's objective (sum of squared standardized log
//! residuals (ln y - ln f) / b and random effects), is the Mahalanobis distance of ln y from its
//! prior predictive distribution in the linearised model, chi-square with N degrees of freedom;
//! L its 1 - POPULATION_MAP_FALSE_REJECTION quantile. For a population with its theta_se (learned),
//! Q allows for the population's estimation error: it is that of the MAP under the prior variance
//! (Omega + theta_se^2) K F_q(K, n_patients - 1) / chi2_q(K) and, with sigma_log_dof infinite, b
//! raised for its n_observations - K n_patients degrees of freedom (population_map.cpp); the
//! estimate uses theta, Omega and b as they are (its u adds their error, below). With b estimated from sigma_log_dof residual
//! degrees of freedom, Q is that of the MAP under b's upper 1 - POPULATION_MAP_FALSE_REJECTION
//! confidence bound, at most MAP_CHECK_MAX_SIGMA_LOG (and at least b).
//! The candidate's standardized residuals are (ln y - ln f) / b, NaN at points left out. A population
//! The estimate's u(TIA) combines the posterior's with the population's own estimation error
//! where the model has it (log_omega_se known; not for a previous-cycles prior, whose Omega already
//! includes the error of its mean): the candidate's covariance gets sum_j dp_j dp_j^T, dp_j half the
//! change of the MAP's natural parameters between the population parameter j (theta_k, ln Omega_kk,
//! a full Omega's correlations on the atanh scale where omega_correlation_se is known, ln b) shifted
//! by + and - its standard error (population_uncertainty, methods.md §10), and a note
//! gives u(TIA) without and with it. A population without log_omega_se is taken as known (noted).
//! A population
//! of fewer than POPULATION_MIN_TACS TACs gives the candidate the warning
//! "population_below_50_tacs:N". InputError naming `where` when administered_MBq is not a finite
//! number > 0 (the amplitudes are per administered activity).
TacFit population_map_fit(const PopulationModel& m, const TacSeries& tac, double administered_MBq,
                          double lambda_p_per_h, const std::string& where);

//! The model of `voi`'s kind, or nullptr. Throws nothing.
const PopulationModel* find_population_model(const std::vector<PopulationModel>& models,
                                             const std::string& voi);

// ---- Earlier cycles as prior (methods.md §10, "Earlier cycles as prior"; docs/population.md) ----

//! One earlier cycle of a patient's VOI for the previous-cycles prior: its TAC (as fitted), its
//! individual fit and its administered activity [MBq].
struct EarlierCycle {
  int cycle = 0;
  TacSeries tac;
  TacFit fit;
  double administered_MBq = std::numeric_limits<double>::quiet_NaN();
};

//! The stated inter-cycle SD of every log parameter (amplitude per administered activity and
//! rate increments) of one patient's VOI between 177Lu-DOTATATE cycles: 0.2 (about 20 %). A
//! stated default, wider than the intra-patient changes reported for the kidneys: cycle 1's
//! patient-specific clearance applied to the later cycles' single scans gave renal doses with an
//! average deviation of 2 % (24 h scans) and 13 % (4 h scans) from the full-imaging doses
//! ("Feasibility and accuracy of single time point imaging for renal dosimetry following
//! 177Lu-DOTATATE ('Lutate') therapy", EJNMMI Physics 2018, doi:10.1186/s40658-018-0232-9; 18
//! patients, 80 cycles). With >= 3 earlier cycles their own spread replaces it where larger.
inline constexpr double INTER_CYCLE_SD_LOG = 0.2;
//! The least relative residual SD b of the prior: quantitative SPECT activities are not known
//! better than a few per cent (about 13 % per treatment in Staanum et al., EJNMMI Physics 8
//! (2021) 78); 1 % keeps the whitened residuals finite for noise-free earlier fits.
inline constexpr double PRIOR_MIN_SIGMA_LOG = 0.01;

//! A prior formed from earlier cycles: the model (voi_kind the VOI's name, n_patients the earlier
//! cycles used, n_observations their points), the cycles used and where the inter-cycle SD came from.
struct PreviousCyclesPrior {
  PopulationModel model;
  std::vector<int> cycles;
  Eigen::VectorXd inter_cycle_sd_log;  //!< per log parameter, as used
  bool spread_from_data = false;       //!< some parameter's SD from the earlier cycles' spread
};

//! The prior of a later cycle of one VOI from the patient's earlier cycles: the function of most
//! of the usable earlier fits (accepted individual fits of E1p, E1, E2u or E2 with a known
//! administered activity; a tie: the latest cycle's); theta the mean of their log parameters
//! phi_k (amplitudes per that cycle's administered activity); Omega diagonal,
//! w^2 (1 + 1/n) + mean(V_k)/n (V_k the fit's covariance carried to phi by the delta method, w the
//! inter-cycle SD: INTER_CYCLE_SD_LOG, or with n >= 3 cycles sqrt(s^2 - mean V_k) where larger, s^2
//! their sample variance): the predictive variance of a new cycle's phi; sigma_log the pooled SD
//! of the earlier fits' log residuals (at least PRIOR_MIN_SIGMA_LOG). std::nullopt with the reason
//! in `why_not` when no prior can be formed. Throws nothing.
std::optional<PreviousCyclesPrior> previous_cycles_prior(const std::vector<EarlierCycle>& earlier,
                                                         std::string& why_not);

//! population_map_fit of `tac` [MBq, h] given `administered_MBq` with a previous-cycles prior,
//! labelled: method "previous-cycles MAP", the selection and a note naming the cycles used; no
//! cohort-size warning (the prior is the patient's own). InputError as population_map_fit.
TacFit previous_cycles_map_fit(const PreviousCyclesPrior& prior, const TacSeries& tac, double administered_MBq,
                               double lambda_p_per_h, const std::string& where);

}  // namespace lutdose
