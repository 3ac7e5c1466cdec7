// Sums of exponentials with physical decay built in (methods.md §2.2).
//
// Every function of the family is written as
//     A(t) = sum_k c_k * exp(-(lambda_bio[r_k] + lambda_p) * t),   c_k = sum_j M(k, j) * A_j
// with amplitudes A_j [MBq] entering linearly and biological rates lambda_bio >= 0 [1/h]. Because
// every exponent is a biological rate plus the physical decay constant, no component can clear
// more slowly than physical decay. Rates are ordered (lambda_1 < lambda_2 < ...) so that each fit
// has one representation.
//
// The natural parameter vector of a function is p = (A_1..A_na, lambda_1..lambda_nr).
#pragma once

#include <Eigen/Dense>

#include <string>
#include <vector>

namespace lutdose::models {

//! One function of the family. Every member function below throws nothing, unless it says so;
//! vectors must have the sizes stated (not checked: the family is built in, the callers size them).
class ExponentialFunction {
 public:
  //! One exponential term: coefficient row of M and index of its biological rate (-1: none, i.e.
  //! the term decays with physical decay alone).
  struct Term {
    std::vector<double> amplitude_coefficients;  //!< M(k, :), size n_amplitudes()
    int rate_index;                              //!< index into the biological rates, or -1
  };

  //! Throws std::logic_error when a term's coefficient row is not n_amplitudes long or its rate
  //! index is beyond n_rates (a programming error in the registry).
  ExponentialFunction(std::string id, std::string formula, std::string use, int n_amplitudes,
                      int n_rates, std::vector<Term> terms);

  //! The id ("E2u"), the formula in words, when to use it, and the sizes of p = (A, lambda).
  const std::string& id() const { return id_; }
  const std::string& formula() const { return formula_; }
  const std::string& use() const { return use_; }
  int n_amplitudes() const { return n_amplitudes_; }
  int n_rates() const { return n_rates_; }
  //! Number of free parameters K.
  int n_parameters() const { return n_amplitudes_ + n_rates_; }
  const std::vector<Term>& terms() const { return terms_; }
  //! Names of the natural parameters, with units: "A1_MBq", "lambda1_bio_per_h", ... (built once,
  //! by the constructor: every fit copies them).
  const std::vector<std::string>& parameter_names() const { return parameter_names_; }

  //! Design matrix Phi(t_i, j) = d A(t_i) / d A_j (dimensionless; n x n_amplitudes) at times t_h
  //! [h] for given biological rates (size n_rates) and physical decay lambda_p_per_h [1/h].
  Eigen::MatrixXd basis(const Eigen::VectorXd& t_h, const Eigen::VectorXd& lambda_bio_per_h,
                        double lambda_p_per_h) const;
  //! A(t) [MBq] at times t_h [h] for natural parameters p (size K; A [MBq], lambda_bio [1/h]).
  Eigen::VectorXd evaluate(const Eigen::VectorXd& t_h, const Eigen::VectorXd& p,
                           double lambda_p_per_h) const;
  //! Jacobian d A(t_i) / d p (n x K), natural parameters: dimensionless for amplitudes,
  //! [MBq h] for rates.
  Eigen::MatrixXd jacobian(const Eigen::VectorXd& t_h, const Eigen::VectorXd& p,
                           double lambda_p_per_h) const;
  //! Integral from 0 to T_h [h] of A(t) dt [MBq h]; T = +infinity gives the TIA. p as evaluate().
  double integral(const Eigen::VectorXd& p, double lambda_p_per_h, double T_h) const;
  //! Gradient of integral() with respect to p (size K: [h] for amplitudes, [MBq h^2] for rates).
  Eigen::VectorXd integral_gradient(const Eigen::VectorXd& p, double lambda_p_per_h,
                                    double T_h) const;

  //! Term coefficients c_k [MBq] and effective rates k_k = lambda_bio + lambda_p [1/h] of the
  //! terms, written into c and k_eff (resized).
  void terms_of(const Eigen::VectorXd& p, double lambda_p_per_h, Eigen::VectorXd& c,
                Eigen::VectorXd& k_eff) const;

 private:
  std::string id_, formula_, use_;
  int n_amplitudes_, n_rates_;
  std::vector<Term> terms_;
  std::vector<std::string> parameter_names_;
};

//! The fitting parameterisation of a function's ordered biological rates: log increments theta,
//! lambda_1 = e^theta_1, lambda_r = lambda_(r-1) + e^theta_r, so every rate is >= 0 and the
//! rates stay ordered. theta is clamped to [RATE_THETA_MIN, RATE_THETA_MAX]: e^-30 ~ 1e-13 1/h
//! (no clearance) to e^7 ~ 1100 1/h (gone within seconds); outside it the data carry no
//! information on a rate.
inline constexpr double RATE_THETA_MIN = -30.0;
//! A biological rate (or a rate increment) below this is "at its lower bound" [1/h]: a
//! biological half-life of 80 years.
inline constexpr double RATE_AT_BOUND_PER_H = 1e-6;
//! Upper clamp of theta (see RATE_THETA_MIN).
inline constexpr double RATE_THETA_MAX = 7.0;
//! Ordered biological rates [1/h] from log increments theta (clamped to [RATE_THETA_MIN,
//! RATE_THETA_MAX]). Throws nothing.
Eigen::VectorXd rates_from_log_increments(const Eigen::VectorXd& theta);
//! The inverse; increments below 1e-8 1/h are raised to it so that the logarithm exists.
//! lambda [1/h], increasing. Throws nothing.
Eigen::VectorXd log_increments_from_rates(const Eigen::VectorXd& lambda);

//! The registry of the family (methods.md §2.2): E1, E1p, E2u, E2, E2b, E3u. Throws nothing.
const std::vector<ExponentialFunction>& exponential_family();
//! The function with this id, or nullptr (a pointer into the registry). Throws nothing.
const ExponentialFunction* find_exponential(const std::string& id);
//! Ids of the family, in the order of the registry. Throws nothing.
std::vector<std::string> exponential_ids();

}  // namespace lutdose::models
