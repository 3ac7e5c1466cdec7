// Fitting a time-activity curve (TAC) with the exponential family and choosing among candidates
// (methods.md §2.3-2.6).
//
// Each function is fitted by weighted least squares with variable projection: the amplitudes
// enter linearly and are solved exactly for given rates; the biological rates are fitted by
// Eigen's Levenberg-Marquardt (MINPACK port) in log-transformed, ordered parameters
// (lambda_1 = e^theta_1, lambda_2 = lambda_1 + e^theta_2, ...), so every rate is >= 0 and rates
// stay ordered. Several deterministic starting points (curve stripping plus a grid of fast rates)
// are tried and the best weighted RSS kept. Covariance, TIA and its uncertainty are computed in
// the natural parameters (amplitudes in MBq, rates in 1/h).
#pragma once

#include <Eigen/Dense>

#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "lutdose/models/exponential.h"
#include "lutdose/dosimetry/uncertainty.h"

namespace lutdose {

//! How the standard deviation of each activity is modelled (methods.md §2.3).
enum class ErrorModel {
  constant,            //!< sigma_i = sigma0 (unknown): ordinary least squares
  proportional,        //!< sigma_i = b * y_i (b unknown): weights 1/y_i^2 (data-based)
  proportional_model,  //!< sigma_i = b * f(t_i): iteratively reweighted with the fitted curve
  combined,            //!< sigma_i^2 = sigma0^2 + (b y_i)^2 with stated sigma0 and b (absolute)
  input,               //!< sigma_i = activity_u_MBq from the TAC table (absolute)
};
//! "constant", "proportional", "proportional-model", "combined", "input". Throws nothing.
std::string to_string(ErrorModel m);
//! Parses "constant" / "proportional" / "proportional-model" / "combined" / "input"; throws
//! InputError otherwise.
ErrorModel parse_error_model(const std::string& s);

struct FitOptions;
//! The error model for the outputs: the user's name for it, else to_string(o.error_model).
//! Throws nothing.
std::string error_model_label(const FitOptions& o);

//! What counts as K in AIC/AICc (methods.md §2.5: papers differ).
enum class AiccParameterCount {
  fit_parameters,           //!< K = number of fitted parameters
  fit_parameters_plus_one,  //!< K = fitted parameters + 1 for the estimated variance
};
//! "fit-parameters" or "fit-parameters+1". Throws nothing.
std::string to_string(AiccParameterCount k);

//! Head (0 -> t1) rule of the trapezoid integration (methods.md §2.6).
enum class TrapezoidHead {
  linear,    //!< linear rise from A(0) = 0: A1 * t1 / 2
  constant,  //!< A(t) = A1 on [0, t1]: A1 * t1
};
//! "linear" or "constant". Throws nothing.
std::string to_string(TrapezoidHead h);

//! How the TIA is integrated (methods.md §2.6).
enum class Integration {
  analytic,   //!< the fitted function, 0 to infinity (or to a finite time)
  trapezoid,  //!< head + segments between points + tail, no fit needed (fits still reported)
};
//! Segments between points of the numerical integration.
enum class TrapezoidBody {
  linear,  //!< (t2 - t1)(A1 + A2)/2
  log,     //!< exponential interpolation: (t2 - t1)(A1 - A2)/ln(A1/A2)
};
//! Tail after the last point of the numerical integration.
enum class TrapezoidTail {
  physical,  //!< A_n / lambda_p (physical decay only: an upper bound)
  fit,       //!< A_n / k, k from a log-linear fit of the last 3 points, k >= lambda_p
};
//! The option spellings: "analytic"/"trapezoid", "linear"/"log", "physical"/"fit". Throw nothing.
std::string to_string(Integration i);
std::string to_string(TrapezoidBody b);
std::string to_string(TrapezoidTail t);

//! How the VOIs of a run are fitted (methods.md §10, "Earlier cycles as prior").
enum class Kinetics {
  individual,       //!< each TAC alone (fit_tac)
  previous_cycles,  //!< a later cycle by MAP with the patient's earlier cycles of the VOI as prior
};
//! "individual" or "previous-cycles". Throws nothing.
std::string to_string(Kinetics k);
//! The Kinetics of its option text, std::nullopt for any other text. Throws nothing.
std::optional<Kinetics> parse_kinetics(const std::string& text);

struct FitOptions {
  //! Candidate functions for automatic selection (ids of the exponential family). E1p (physical
  //! decay only) is not a default candidate: with its single parameter it wins AICc on 3-4 point
  //! TACs whenever the richer functions' small-sample penalty is large, although it is meant as a
  //! conservative last resort; add it explicitly when wanted.
  std::vector<std::string> candidates = {"E1", "E2u", "E2"};
  //! A function id to force, or empty for automatic selection by AICc.
  std::string forced_function;
  ErrorModel error_model = ErrorModel::proportional;
  //! The error model as the user named it, shown in the outputs ("poisson" is fitted as input);
  //! empty: to_string(error_model).
  std::string error_model_name;
  //! The error model was not chosen by the user: tumour VOIs (tumour_*, tumor_*, lesion_*) are
  //! fitted with proportional-model, the others with error_model (proportional). Chosen by the
  //! seeded study of docs/validation.md ("Choice of the default error model"): at the 10-20 %
  //! noise of small tumours proportional-model has the smaller spread and no larger bias; at the
  //! 5-10 % of organs proportional has the smaller bias.
  bool error_model_by_voi_kind = true;
  AiccParameterCount aicc_k = AiccParameterCount::fit_parameters;
  TrapezoidHead trapezoid_head = TrapezoidHead::linear;
  TrapezoidBody trapezoid_body = TrapezoidBody::linear;
  TrapezoidTail trapezoid_tail = TrapezoidTail::physical;
  Integration integration = Integration::analytic;
  //! Combined error model: sigma0 [MBq] and relative b (stated, not estimated).
  double combined_sigma0_MBq = 0;
  double combined_b = 0;
  //! Use the model-averaged TIA (Akaike weights, Burnham & Anderson) as the result instead of
  //! the lowest-AICc fit's. Always reported; spec: use it when no model has w > 0.9.
  bool model_averaging = false;
  //! Activities at or below this fraction of the TAC's largest are zero or near-zero inputs:
  //! the TAC gets a note and, under the proportional models, a fit through them is flagged
  //! (near_zero_activity_at_N_points) and never used. Separately, the relative sigma of both
  //! proportional models is floored at median(y)/10, so no point weighs more than 100 times a
  //! point at the median activity (warning relative_weight_capped_at_N_points).
  double proportional_floor_fraction = 1e-3;
  //! Reject fits with a parameter correlation |r| >= 0.8 (K12's criterion) instead of only
  //! warning. Off by default: amplitude-rate correlations above 0.8 are intrinsic to exponential
  //! fits of sparse schedules and do not shrink with the noise (noise-free E2u data on a
  //! 0.5-168 h schedule have them), so as a hard rule it rejects exact fits.
  bool reject_on_correlation = false;
  //! Individual fits, or previous-cycles MAP fits of later cycles (run_tac_table; fit_tac ignores it).
  Kinetics kinetics = Kinetics::individual;
};

//! The fit of one function to one TAC.
struct CandidateFit {
  std::string function;
  int n_points = 0;
  int n_parameters = 0;  //!< K of the function (fitted parameters)
  bool fitted = false;   //!< the optimiser produced parameters
  std::vector<std::string> parameter_names;
  Eigen::VectorXd parameters;   //!< natural parameters (A in MBq, lambda_bio in 1/h)
  Eigen::MatrixXd covariance;   //!< of the parameters; NaN where not estimable
  Eigen::VectorXd parameter_cv;  //!< standard uncertainty / |value|
  Eigen::MatrixXd correlation;
  Eigen::VectorXd fitted_MBq;             //!< f(t_i)
  //! (y_i - f_i) / sigma_i (sigma scaled where relative); of a population or previous-cycles MAP:
  //! (ln y_i - ln f_i) / b, NaN at points <= 0 (left out of the MAP)
  Eigen::VectorXd standardized_residuals;
  double weighted_rss = std::numeric_limits<double>::quiet_NaN();
  double r_squared = std::numeric_limits<double>::quiet_NaN();
  double aic = std::numeric_limits<double>::quiet_NaN();
  double aicc = std::numeric_limits<double>::quiet_NaN();  //!< NaN when n < K' + 2
  int rank = 0;
  double tia_MBq_h = std::numeric_limits<double>::quiet_NaN();
  double tia_u_MBq_h = std::numeric_limits<double>::quiet_NaN();
  //! d TIA / d y_i of the weighted least-squares estimate (h): how much each point moves the TIA.
  Eigen::VectorXd tia_dy;
  double akaike_weight = std::numeric_limits<double>::quiet_NaN();  //!< among AICc-ranked fits
  //! Runs test of the residual signs (n >= 6): number of runs and the exact one-sided p-value
  //! of so few runs (small p: systematic misfit). NaN when not done.
  int runs = 0;
  double runs_p_value = std::numeric_limits<double>::quiet_NaN();
  //! Goodness of fit (docs/methods.md, "Goodness of fit and coverage intervals"). Under absolute
  //! sigmas (input, poisson, combined): chi_square = weighted RSS with chi_square_dof = n - K and
  //! its upper-tail p-value; below CHI_SQUARE_P_FLAG the fit is warned and its covariance scaled by
  //! birge_ratio^2 = chi_square / (n - K). Under relative weights chi_square and its p-value are
  //! NaN (the scale is estimated, not tested) and reduced_chi_square is the estimated variance
  //! factor.
  double chi_square = std::numeric_limits<double>::quiet_NaN();
  int chi_square_dof = 0;
  double chi_square_p_value = std::numeric_limits<double>::quiet_NaN();
  double reduced_chi_square = std::numeric_limits<double>::quiet_NaN();  //!< weighted RSS / (n - K)
  double birge_ratio = std::numeric_limits<double>::quiet_NaN();  //!< sqrt(reduced chi-square), absolute sigmas
  bool covariance_scaled = false;  //!< the covariance was multiplied by birge_ratio^2
  //! Degrees of freedom of tia_u_MBq_h: n - K where the variance was estimated from the residuals
  //! (relative weights, or a Birge-scaled covariance), infinite for stated absolute sigmas, NaN
  //! when the uncertainty is unknown.
  double tia_u_dof = std::numeric_limits<double>::quiet_NaN();
  int reweighting_iterations = 0;  //!< proportional-model: iterations of reweighting
  int starts = 0;
  int evaluations = 0;
  //! Quality findings (methods.md §2.4) that make accepted false.
  std::vector<std::string> flags;
  //! Findings reported without rejecting the fit (correlations unless reject_on_correlation).
  std::vector<std::string> warnings;
  bool accepted = false;
};

//! The result for one TAC: every candidate and the chosen TIA.
struct TacFit {
  std::string method;    //!< "fit" or "trapezoid"
  std::string function;  //!< chosen function id, or "trapezoid"
  int selected = -1;     //!< index into candidates, -1 for the trapezoid
  std::vector<CandidateFit> candidates;
  double tia_MBq_h = std::numeric_limits<double>::quiet_NaN();
  double tia_u_MBq_h = std::numeric_limits<double>::quiet_NaN();
  bool accepted = false;       //!< the chosen result meets the quality criteria
  std::string selection;       //!< why this result was chosen, in words
  std::vector<std::string> notes;
  //! Degrees of freedom of tia_u_MBq_h (see CandidateFit::tia_u_dof; infinite for the trapezoid
  //! with per-point sigmas and single-time-point methods' population spread; NaN when unknown).
  double tia_u_dof = std::numeric_limits<double>::quiet_NaN();
  //! TIA +- k u with k the Student-t (or normal, infinite dof) quantile: 68.27 % and 95 %.
  Interval tia_ci68_MBq_h, tia_ci95_MBq_h;
  //! Why tia_u_MBq_h is unknown (empty when it is known).
  std::string tia_u_unknown_reason;
  //! Model-averaged TIA over the AICc-ranked fits (Akaike weights) and its unconditional
  //! standard uncertainty sum_i w_i sqrt(var_i + (TIA_i - TIA_avg)^2) (Burnham & Anderson).
  double averaged_tia_MBq_h = std::numeric_limits<double>::quiet_NaN();
  double averaged_tia_u_MBq_h = std::numeric_limits<double>::quiet_NaN();
  //! Nested F-tests between fitted candidates (report only).
  struct FTest {
    std::string simpler, richer;
    double f = std::numeric_limits<double>::quiet_NaN();
    int df1 = 0, df2 = 0;
    double p_value = std::numeric_limits<double>::quiet_NaN();
  };
  std::vector<FTest> f_tests;
  //! The numerical integration (trapezoid family), always computed for comparison.
  double numerical_tia_MBq_h = std::numeric_limits<double>::quiet_NaN();
  //! The trapezoid results only: how the part after the data was integrated ("physical",
  //! "fit" or "washout"; see TrapezoidResult::tail). Empty for a fit.
  std::string tail;
};

//! The candidate's flags joined by ", " (for notes); "" when it has none.
std::string joined_flags(const CandidateFit& c);

//! Fits one function to the activities a_MBq [MBq] (not decay-corrected) at times t_h [h after
//! the reference time], with the physical decay constant lambda_p_per_h [1/h]. `sigma_MBq` [MBq]
//! is used with ErrorModel::input (size n), else ignored. A fit that fails is a result (fitted or
//! accepted false, with flags such as too_few_points), not an exception: throws nothing.
//! Preconditions (checked by the readers, not here): t_h increasing, a_MBq of the same size, finite.
CandidateFit fit_function(const models::ExponentialFunction& f, const Eigen::VectorXd& t_h,
                          const Eigen::VectorXd& a_MBq, const Eigen::VectorXd& sigma_MBq,
                          double lambda_p_per_h, const FitOptions& options);

//! Points whose activity is at or below o.proportional_floor_fraction x the TAC's maximum: zero or
//! near-zero inputs (a fit through them under the proportional error models is flagged
//! near_zero_activity_at_N_points; the TAC gets a note). Throws nothing.
int near_zero_points(const Eigen::VectorXd& y, const FitOptions& o);

//! Fits all candidates (or the forced function) and selects the lowest-AICc accepted fit (or,
//! without AICc, the simplest accepted one). A fit failing the criteria is never selected: then
//! the result is peak_washout_tia (method "trapezoid", tail says "washout" or "physical"). A
//! forced function is used as fitted (flagged when it fails).
//! Throws InputError for an unknown function id or a forced function with more parameters than
//! points, and for ErrorModel::input without a sigma per point. `where` names the TAC in messages.
//! Units as fit_function; TacFit holds TIAs in MBq h.
TacFit fit_tac(const Eigen::VectorXd& t_h, const Eigen::VectorXd& a_MBq,
               const Eigen::VectorXd& sigma_MBq, double lambda_p_per_h, const FitOptions& options,
               const std::string& where);

//! p-value below which an absolute-sigma fit's chi-square is flagged (the 99th percentile of the
//! chi-square distribution with n - K degrees of freedom) and its covariance Birge-scaled.
constexpr double CHI_SQUARE_P_FLAG = 0.01;
//! Levels of the reported coverage intervals: +-1 u for infinite dof, and 95 %.
constexpr double LEVEL_68 = 0.682689492137;  // erf(1/sqrt 2)
constexpr double LEVEL_95 = 0.95;

//! Sets tia_u_dof (NaN when u is unknown), both coverage intervals and, when u is unknown and no
//! reason is set, tia_u_unknown_reason. Call again after changing tia_MBq_h or tia_u_MBq_h.
//! Throws nothing.
void set_tia_intervals(TacFit& fit);

//! Trapezoid integration with the chosen head and a physical-decay tail A_n / lambda_p
//! (methods.md §2.6). u_MBq_h is NaN unless sigma_MBq is given (size n). t_h [h], a_MBq and
//! sigma_MBq [MBq], lambda_p_per_h [1/h]; all results in MBq h. Throws nothing.
struct TrapezoidResult {
  double tia_MBq_h;    //!< head + body + tail
  double tia_u_MBq_h;  //!< NaN without per-point sigmas
  double head_MBq_h, body_MBq_h, tail_MBq_h;  //!< 0 -> t1, t1 -> t_n, t_n -> infinity
  //! "physical" (A / lambda_p), "fit" (last-3-point log-linear rate) or "washout" (the
  //! mono-exponential fitted to the peak and the points after it, peak_washout_tia).
  std::string tail;
};
//! The trapezoid integration itself (see the comment above TrapezoidResult).
TrapezoidResult trapezoid_tia(const Eigen::VectorXd& t_h, const Eigen::VectorXd& a_MBq,
                              const Eigen::VectorXd& sigma_MBq, double lambda_p_per_h,
                              TrapezoidHead head, TrapezoidBody body = TrapezoidBody::linear,
                              TrapezoidTail tail = TrapezoidTail::physical);

//! The fallback for sparse or rising data (methods.md §2.6): the trapezoid (chosen head, linear
//! body) from 0 to the peak, then the washout: a log-linear mono-exponential fitted to the peak
//! and the positive points after it, integrated from the peak to infinity, its rate bounded below
//! by physical decay. The physical tail A_peak / lambda_p only when it must: the peak is the last
//! point, fewer than two positive points from the peak on, or the fitted rate is below lambda_p.
//! tail says which ("washout" or "physical"). u_MBq_h by linear propagation when sigma is given.
//! Units as trapezoid_tia. Throws nothing.
TrapezoidResult peak_washout_tia(const Eigen::VectorXd& t_h, const Eigen::VectorXd& a_MBq,
                                 const Eigen::VectorXd& sigma_MBq, double lambda_p_per_h, TrapezoidHead head);

//! The exact one-sided p-value of at most `runs` runs among n1 positive and n2 negative signs
//! (Wald-Wolfowitz, the exact distribution); 1 when n1 or n2 is 0. Throws nothing.
double runs_test_p_value(int runs, int n1, int n2);

}  // namespace lutdose
