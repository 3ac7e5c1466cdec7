// Compartment (ODE) kinetic models from declarative JSON model files (methods.md §3).
//
// A model is a set of compartments holding the labelled compound, first-order transfers between
// them (or out of the body: "excretion"), optional non-linear receptor-binding terms, and the VOIs
// that an image sees (each the sum of some compartments). The state is the activity of every
// compartment; every compartment also loses activity by physical decay (lambda_p), so for a linear
// model
//     dx/dt = (K - lambda_p I) x,   x(0) = A0 * initial_fraction,
// where K holds the transfer rates (column sums <= 0; methods.md §3.1). Binding terms add, for a
// free/bound pair with receptor amount R0 [nmol],
//     J = k_on * x_free * (R0 - P_bound(t)) - k_off * x_bound,   dx_free -= J, dx_bound += J,
// where P_bound(t) [nmol] is the total peptide (labelled + unlabelled) bound: hot and cold peptide
// are kinetically identical, so the peptide in a compartment is x_i(t) e^{lambda_p t} n_total/A0.
// The total peptide amount therefore drives saturation (methods.md §3.2).
//
// ODEs are solved with Boost.Odeint's stiff Rosenbrock method (rosenbrock4, dense output) with the
// analytic Jacobian; time-integrated activities (TIA) integrate the ODE augmented by the running
// integrals until the activity left is below a fraction (1e-12) of the administered activity.
// Fits use Eigen's Levenberg-Marquardt in the logarithms of the free parameters (all parameters
// are >= 0: rates, receptor and peptide amounts).
//
// The file format is documented in docs/compartment-models.md. Units: time h, activity MBq, TIA
// MBq h, rates 1/h, amounts nmol.
#pragma once

#include <Eigen/Dense>
#include <nlohmann/json_fwd.hpp>

#include <cstddef>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace lutdose::models {

//! A bad model file, a bad parameter vector or bad fit data: something the user can fix. The
//! message names the file, the JSON path and the offending value ("FILE: PATH is VALUE; expected
//! ..."); a file with several problems reports them all, one per line. The models library does not
//! depend on the engine: the engine maps ModelError to its InputError (exit status 2).
class ModelError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

//! Size limits of a model file (docs/compartment-models.md "Limits"): published PRRT PBPK models
//! have 10 to 40 compartments; the rate matrix is dense, so memory and time grow with the square.
inline constexpr std::size_t MAX_COMPARTMENTS = 100;   //!< also the limit of observations
inline constexpr std::size_t MAX_TRANSFERS = 1000;
inline constexpr std::size_t MAX_MODEL_PARAMETERS = 200;
inline constexpr std::size_t MAX_IDENTIFIER_CHARS = 64;  //!< compartment and parameter names
//! Problems listed in one ModelError; the rest are counted.
inline constexpr std::size_t MAX_MODEL_PROBLEMS_LISTED = 50;

//! A rate written in a model file: a parameter name, or a linear combination of parameters such as
//! "k_b - k_in" or "0.5*k_x + k_y" [1/h]; or a fixed number (value_per_h without a rate name).
struct RateExpression {
  std::string text;                            //!< as written in the file ("" for a fixed value)
  std::vector<std::pair<int, double>> terms;   //!< (parameter index, coefficient)
  double constant_per_h = 0.0;                 //!< fixed part [1/h]
  //! Value for the parameter vector p [1/h] (may be negative for a difference of parameters).
  //! p must have the model's size (not checked here; the model's callers check it). Throws nothing.
  double evaluate(const Eigen::VectorXd& p) const;
};

struct Compartment {
  std::string name;
  double initial_fraction = 0.0;  //!< fraction of the administered activity at t = 0
};

struct Transfer {
  int from = -1;             //!< compartment index
  int to = -1;               //!< compartment index, or -1: leaves the system (excretion)
  RateExpression rate;       //!< first-order rate constant [1/h]
};

struct Observation {
  std::string voi;               //!< name of the VOI as in TAC tables and case files
  std::vector<int> compartments; //!< the VOI's activity is the sum of these compartments
};

//! Receptor binding between a free and a bound compartment (non-linear, methods.md §3.2).
struct Binding {
  int free_compartment = -1;
  int bound_compartment = -1;
  int receptor_total_nmol = -1;  //!< parameter index: receptor amount R0 [nmol]
  int k_on_per_nmol_h = -1;      //!< parameter index: lumped association rate [1/(nmol h)]
  int k_off_per_h = -1;          //!< parameter index: dissociation rate [1/h]
};

struct Parameter {
  std::string name;
  double value = 0.0;  //!< default, in `unit`
  std::string unit;    //!< "1/h", "nmol" or "1/(nmol h)"
  std::string source;  //!< provenance tag, e.g. "[unsourced]"
  bool fit = false;    //!< free in fits unless FitOptions says otherwise
};

//! Tolerances of the ODE solver. Activities are integrated as fractions of A0, so the absolute
//! tolerance is relative to the administered activity.
struct SolverOptions {
  double rel_tol = 1e-10;               //!< relative tolerance per state component
  double abs_tol_fraction = 1e-15;      //!< absolute tolerance, as a fraction of A0
  double tia_stop_fraction = 1e-12;     //!< TIA: integrate until the activity left < this x A0
  double max_time_h = 1e7;              //!< TIA: give up (ModelError) if not reached by then
  double initial_step_h = 1e-3;         //!< first step tried
  //! Steps of one solve (between two requested times, for the sampled solution): beyond it the
  //! solve ends with a ModelError instead of running without bound.
  int max_steps = 1000000;
};

class CompartmentModel {
 public:
  //! Reads and validates a model file. Throws ModelError (all problems, with JSON paths).
  static CompartmentModel from_file(const std::string& path);
  //! Validates a parsed document; `origin` names it in messages. Throws ModelError (all problems).
  static CompartmentModel from_json(const nlohmann::json& document,
                                    const std::string& origin = "(model)");
  //! Parses and validates JSON text. Throws ModelError (not JSON, or all problems of the model).
  static CompartmentModel from_string(const std::string& text,
                                      const std::string& origin = "(model)");

  // The accessors and look-ups below throw nothing.
  const std::string& name() const { return name_; }
  const std::string& description() const { return description_; }
  const std::string& origin() const { return origin_; }
  const std::vector<Compartment>& compartments() const { return compartments_; }
  const std::vector<Transfer>& transfers() const { return transfers_; }
  const std::vector<Observation>& observations() const { return observations_; }
  const std::vector<Binding>& bindings() const { return bindings_; }
  //! In alphabetical order of name (the object order of nlohmann::json): look them up by name.
  const std::vector<Parameter>& parameters() const { return parameters_; }
  bool physical_decay() const { return physical_decay_; }
  //! No binding terms: dx/dt = (K - lambda_p I) x.
  bool is_linear() const { return bindings_.empty(); }
  int n_compartments() const { return static_cast<int>(compartments_.size()); }
  int n_parameters() const { return static_cast<int>(parameters_.size()); }

  int compartment_index(const std::string& name) const;  //!< -1 if none
  int observation_index(const std::string& voi) const;   //!< -1 if none
  int parameter_index(const std::string& name) const;    //!< -1 if none
  //! Names in model order (observation names are VOI names).
  std::vector<std::string> compartment_names() const;
  std::vector<std::string> observation_names() const;
  std::vector<std::string> parameter_names() const;

  //! The file's parameter values, in the order of parameters(), each in its Parameter::unit.
  //! Throws nothing.
  Eigen::VectorXd default_parameters() const;
  //! The file's values with some replaced by name. Throws ModelError for an unknown name or a
  //! value that is negative or not finite.
  Eigen::VectorXd parameters_with(const std::map<std::string, double>& values) const;

  //! Transfer rates [1/h] for parameter vector p, in the order of transfers(). Throws ModelError
  //! if p is malformed (size, negative or non-finite value) or a rate comes out negative.
  Eigen::VectorXd transfer_rates_per_h(const Eigen::VectorXd& p) const;
  //! The linear part as a matrix M = K - lambda_p I [1/h] (lambda_p ignored without
  //! physical_decay), so that dx/dt = M x for a linear model. Throws ModelError as
  //! transfer_rates_per_h.
  Eigen::MatrixXd rate_matrix_per_h(const Eigen::VectorXd& p, double lambda_p_per_h) const;
  //! Initial activity per compartment [MBq] for the administered activity A0_MBq [MBq]. Throws
  //! nothing.
  Eigen::VectorXd initial_activity_MBq(double A0_MBq) const;

  //! Activity per compartment [MBq] at the times t_h (any order, >= 0): rows = times,
  //! columns = compartments. Boost.Odeint rosenbrock4 with dense output. p as
  //! default_parameters(), A0_MBq [MBq] > 0, lambda_p_per_h [1/h] >= 0. Throws ModelError for a
  //! malformed p or a negative rate, A0 or lambda_p out of range, a negative or non-finite time, a
  //! solve that exceeds solver.max_steps or gives a non-finite solution.
  Eigen::MatrixXd simulate(const Eigen::VectorXd& t_h, const Eigen::VectorXd& p, double A0_MBq,
                           double lambda_p_per_h, const SolverOptions& solver = {}) const;
  //! Activity per observed VOI [MBq] (sum of its compartments): rows = times, columns =
  //! observations(). Arguments and errors as simulate().
  Eigen::MatrixXd observe(const Eigen::VectorXd& t_h, const Eigen::VectorXd& p, double A0_MBq,
                          double lambda_p_per_h, const SolverOptions& solver = {}) const;
  //! Observation matrix (observations x compartments) of 0/1 entries. Throws nothing.
  Eigen::MatrixXd observation_matrix() const;

  //! TIA per compartment [MBq h], integral 0..infinity, by integrating the ODE augmented with
  //! the running integrals until the activity left is below solver.tia_stop_fraction x A0.
  //! Throws ModelError if that is not reached by solver.max_time_h (e.g. a compartment without
  //! any loss in a model without physical decay), and as simulate() for bad arguments.
  Eigen::VectorXd tia_per_compartment(const Eigen::VectorXd& p, double A0_MBq,
                                      double lambda_p_per_h,
                                      const SolverOptions& solver = {}) const;
  //! TIA per observed VOI [MBq h]. Arguments and errors as tia_per_compartment().
  Eigen::VectorXd tia_per_observation(const Eigen::VectorXd& p, double A0_MBq,
                                      double lambda_p_per_h,
                                      const SolverOptions& solver = {}) const;

  //! Linear models only (else ModelError): TIA per compartment [MBq h] in closed form,
  //! -(K - lambda_p I)^{-1} x0, solved with Eigen (column-pivoting QR). For cross-checks.
  //! ModelError also for a singular rate matrix and as simulate() for bad arguments.
  Eigen::VectorXd linear_tia_eigen(const Eigen::VectorXd& p, double A0_MBq,
                                   double lambda_p_per_h) const;
  //! Linear models only: activity per compartment [MBq] by the matrix exponential
  //! x(t) = e^{M t} x0 (Eigen's MatrixFunctions) at t_h [h]. For cross-checks. Throws ModelError
  //! for a model with binding and as simulate() for bad arguments.
  Eigen::MatrixXd linear_simulate_expm(const Eigen::VectorXd& t_h, const Eigen::VectorXd& p,
                                       double A0_MBq, double lambda_p_per_h) const;

  //! Right-hand side dx/dt [MBq/h] at activities x [MBq] and time t [h] (A0 enters the binding
  //! terms through the peptide per MBq). Throws ModelError when x has not one value per
  //! compartment, and as simulate() for p and lambda_p.
  Eigen::VectorXd rhs_MBq_per_h(const Eigen::VectorXd& x_MBq, double t_h, const Eigen::VectorXd& p,
                                double A0_MBq, double lambda_p_per_h) const;
  //! Its analytic Jacobian d(dx/dt)/dx [1/h], as used by the solver; d_dt (optional) receives
  //! the explicit time derivative d(dx/dt)/dt [MBq/h^2]. Throws as rhs_MBq_per_h.
  Eigen::MatrixXd jacobian_per_h(const Eigen::VectorXd& x_MBq, double t_h,
                                 const Eigen::VectorXd& p, double A0_MBq, double lambda_p_per_h,
                                 Eigen::VectorXd* d_dt = nullptr) const;

  //! Parameter indices of the hot (labelled) and cold peptide amounts [nmol]; -1 without binding.
  //! Throw nothing.
  int peptide_hot_parameter() const { return peptide_hot_nmol_; }
  int peptide_cold_parameter() const { return peptide_cold_nmol_; }

  // Internal (compartment.cpp): the right-hand side on fractions of A0 (u = x/A0) and its
  // Jacobian, for parameters p; clamp_negative_rates sets a rate expression that comes out
  // negative to 0 (used inside fits) instead of throwing.
  struct Dynamics;
  Dynamics dynamics(const Eigen::VectorXd& p, double lambda_p_per_h,
                    bool clamp_negative_rates = false) const;

 private:
  class Reader;  // from_json, block by block (compartment.cpp)
  std::string name_, description_, origin_;
  std::vector<Compartment> compartments_;
  std::vector<Transfer> transfers_;
  std::vector<Observation> observations_;
  std::vector<Binding> bindings_;
  std::vector<Parameter> parameters_;
  int peptide_hot_nmol_ = -1;   //!< parameter index, models with binding
  int peptide_cold_nmol_ = -1;  //!< parameter index, models with binding
  bool physical_decay_ = true;

  void check_parameters(const Eigen::VectorXd& p) const;
};

//! Measured activities of one VOI; sigma_MBq is the standard deviation of each point (or, with
//! FitOptions::relative_sigmas, known up to a common factor).
struct VoiData {
  std::vector<double> t_h;           //!< [h] after administration, finite, >= 0
  std::vector<double> activity_MBq;  //!< [MBq], not decay-corrected
  std::vector<double> sigma_MBq;     //!< [MBq], > 0
};

struct FitOptions {
  //! Names of the free parameters; empty: those marked "fit": true in the model file.
  std::vector<std::string> free_parameters;
  //! Starting values of all parameters (model order); empty: the file's values.
  Eigen::VectorXd start;
  //! Multi-start: every free parameter of the start multiplied by each factor in turn; the best
  //! chi-square wins. Deterministic.
  std::vector<double> start_factors{1.0, 0.3, 3.0};
  //! The sigmas are relative weights only: the covariance is scaled by chi^2/(n - p).
  bool relative_sigmas = false;
  //! Solver inside the optimiser and for the finite-difference Jacobian and TIA gradients
  //! (covariance, uncertainties): 1e-5 relative, a thousandth of a 1 % measurement error, at a
  //! fifteenth of the steps of 1e-10. On the synthetic 5-VOI patients of the unit tests the TIAs
  //! and their uncertainties differ by < 1e-4 (relative) from fits with 1e-6.
  SolverOptions fit_solver{1e-5, 1e-12, 1e-12, 1e7, 1e-3};
  //! Solver for the reported chi-square, fitted curves and TIAs at the optimum: 1e-8 relative,
  //! far below the statistical uncertainty of any fitted quantity.
  SolverOptions solver{1e-8, 1e-13, 1e-12, 1e7, 1e-3};
  int max_function_evaluations = 2000;  //!< per start (ODE solutions, Jacobian columns included)
};

struct CompartmentFit {
  bool converged = false;          //!< Levenberg-Marquardt stopped on a tolerance (best start)
  std::string status;              //!< Eigen's status of the best start, as text
  std::vector<std::string> flags;  //!< "not_converged", "rank_deficient", "parameter_at_bound", ...
  int starts = 0;                  //!< starts tried
  int best_start = -1;             //!< index into FitOptions::start_factors
  int iterations = 0;              //!< LM iterations, all starts
  int ode_solutions = 0;           //!< ODE solutions, all starts, Jacobians included

  std::vector<std::string> free_parameters;
  Eigen::VectorXd parameters;      //!< all parameters (model order), fitted ones replaced
  Eigen::VectorXd free_values;     //!< fitted values of the free parameters
  Eigen::MatrixXd covariance;      //!< of the free parameters, natural units
  Eigen::VectorXd standard_errors; //!< sqrt of the covariance diagonal

  int n_points = 0;
  int dof = 0;                     //!< n_points - free parameters
  double chi_square = 0.0;         //!< sum of squared weighted residuals
  double reduced_chi_square = 0.0; //!< chi_square / dof (NaN if dof = 0)

  std::vector<std::string> vois;           //!< observations(), model order
  Eigen::VectorXd tia_voi_MBq_h, tia_voi_u_MBq_h;
  std::vector<std::string> compartments;   //!< compartment names, model order
  Eigen::VectorXd tia_compartment_MBq_h, tia_compartment_u_MBq_h;

  //! The fitted curve at the data's times, per VOI of the data [MBq].
  std::map<std::string, std::vector<double>> fitted_MBq;
};

//! Joint weighted least-squares fit of the free parameters to several VOIs at once (shared blood
//! input): minimises sum_voi sum_i ((y_i - f_voi(t_i)) / sigma_i)^2 with Eigen's
//! Levenberg-Marquardt in theta = ln(parameter), Jacobian by forward differences of ODE
//! solutions. Covariance (J^T W J)^{-1} from a forward-difference Jacobian at the optimum
//! (scaled by the reduced chi-square with relative sigmas); TIA uncertainties by Gaussian
//! propagation with forward-difference gradients (one augmented ODE solution per parameter gives
//! both). Throws ModelError for bad data (unknown VOI,
//! sizes, non-positive sigma, unknown free parameter, a free parameter starting at 0), A0_MBq
//! [MBq] <= 0, lambda_p_per_h [1/h] < 0, no data or no free parameter. A fit that does not
//! converge is a result (converged = false, flags), not an exception.
CompartmentFit fit(const CompartmentModel& model, const std::map<std::string, VoiData>& data,
                   double A0_MBq, double lambda_p_per_h, const FitOptions& options = {});

}  // namespace lutdose::models
