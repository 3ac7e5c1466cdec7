#include "lutdose/models/exponential.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace lutdose::models {

ExponentialFunction::ExponentialFunction(std::string id, std::string formula, std::string use,
                                         int n_amplitudes, int n_rates, std::vector<Term> terms)
    : id_(std::move(id)),
      formula_(std::move(formula)),
      use_(std::move(use)),
      n_amplitudes_(n_amplitudes),
      n_rates_(n_rates),
      terms_(std::move(terms)) {
  for (const auto& term : terms_) {
    if (static_cast<int>(term.amplitude_coefficients.size()) != n_amplitudes_ ||
        term.rate_index >= n_rates_)
      throw std::logic_error("ExponentialFunction " + id_ + ": inconsistent term table");
  }
  for (int j = 0; j < n_amplitudes_; ++j) parameter_names_.push_back("A" + std::to_string(j + 1) + "_MBq");
  for (int r = 0; r < n_rates_; ++r)
    parameter_names_.push_back("lambda" + std::to_string(r + 1) + "_bio_per_h");
}

void ExponentialFunction::terms_of(const Eigen::VectorXd& p, double lambda_p, Eigen::VectorXd& c,
                                   Eigen::VectorXd& k_eff) const {
  const auto n_terms = static_cast<Eigen::Index>(terms_.size());
  c.setZero(n_terms);
  k_eff.resize(n_terms);
  for (Eigen::Index k = 0; k < n_terms; ++k) {
    const auto& term = terms_[static_cast<size_t>(k)];
    for (int j = 0; j < n_amplitudes_; ++j) c(k) += term.amplitude_coefficients[j] * p(j);
    k_eff(k) = lambda_p + (term.rate_index >= 0 ? p(n_amplitudes_ + term.rate_index) : 0.0);
  }
}

Eigen::MatrixXd ExponentialFunction::basis(const Eigen::VectorXd& t, const Eigen::VectorXd& lambda,
                                           double lambda_p) const {
  Eigen::MatrixXd phi = Eigen::MatrixXd::Zero(t.size(), n_amplitudes_);
  for (const auto& term : terms_) {
    const double k = lambda_p + (term.rate_index >= 0 ? lambda(term.rate_index) : 0.0);
    for (Eigen::Index i = 0; i < t.size(); ++i) {
      const double e = std::exp(-k * t(i));
      for (int j = 0; j < n_amplitudes_; ++j) phi(i, j) += term.amplitude_coefficients[j] * e;
    }
  }
  return phi;
}

Eigen::VectorXd ExponentialFunction::evaluate(const Eigen::VectorXd& t, const Eigen::VectorXd& p,
                                              double lambda_p) const {
  Eigen::VectorXd c, k;
  terms_of(p, lambda_p, c, k);
  Eigen::VectorXd a = Eigen::VectorXd::Zero(t.size());
  for (Eigen::Index i = 0; i < c.size(); ++i) a += c(i) * (-k(i) * t.array()).exp().matrix();
  return a;
}

Eigen::MatrixXd ExponentialFunction::jacobian(const Eigen::VectorXd& t, const Eigen::VectorXd& p,
                                              double lambda_p) const {
  Eigen::VectorXd c, k;
  terms_of(p, lambda_p, c, k);
  Eigen::MatrixXd jac = Eigen::MatrixXd::Zero(t.size(), n_parameters());
  for (size_t m = 0; m < terms_.size(); ++m) {
    const auto& term = terms_[m];
    const auto km = static_cast<Eigen::Index>(m);
    for (Eigen::Index i = 0; i < t.size(); ++i) {
      const double e = std::exp(-k(km) * t(i));
      for (int j = 0; j < n_amplitudes_; ++j) jac(i, j) += term.amplitude_coefficients[j] * e;
      if (term.rate_index >= 0) jac(i, n_amplitudes_ + term.rate_index) -= c(km) * t(i) * e;
    }
  }
  return jac;
}

double ExponentialFunction::integral(const Eigen::VectorXd& p, double lambda_p, double T) const {
  Eigen::VectorXd c, k;
  terms_of(p, lambda_p, c, k);
  double sum = 0.0;
  for (Eigen::Index i = 0; i < c.size(); ++i) {
    // (1 - exp(-kT)) / k, written with expm1 so that small kT keeps its precision
    const double f = std::isinf(T) ? 1.0 / k(i) : -std::expm1(-k(i) * T) / k(i);
    sum += c(i) * f;
  }
  return sum;
}

Eigen::VectorXd ExponentialFunction::integral_gradient(const Eigen::VectorXd& p, double lambda_p,
                                                       double T) const {
  Eigen::VectorXd c, k;
  terms_of(p, lambda_p, c, k);
  Eigen::VectorXd g = Eigen::VectorXd::Zero(n_parameters());
  for (size_t m = 0; m < terms_.size(); ++m) {
    const auto km = static_cast<Eigen::Index>(m);
    const double kk = k(km);
    double f, df_dk;  // f = integral of exp(-k t) over [0, T], df_dk its derivative in k
    if (std::isinf(T)) {
      f = 1.0 / kk;
      df_dk = -1.0 / (kk * kk);
    } else {
      const double e = std::exp(-kk * T);
      f = -std::expm1(-kk * T) / kk;
      df_dk = (T * e - f) / kk;
    }
    for (int j = 0; j < n_amplitudes_; ++j) g(j) += terms_[m].amplitude_coefficients[j] * f;
    if (terms_[m].rate_index >= 0) g(n_amplitudes_ + terms_[m].rate_index) += c(km) * df_dk;
  }
  return g;
}

Eigen::VectorXd rates_from_log_increments(const Eigen::VectorXd& theta) {
  Eigen::VectorXd lambda(theta.size());
  double acc = 0.0;
  for (Eigen::Index r = 0; r < theta.size(); ++r) {
    acc += std::exp(std::clamp(theta(r), RATE_THETA_MIN, RATE_THETA_MAX));
    lambda(r) = acc;
  }
  return lambda;
}

Eigen::VectorXd log_increments_from_rates(const Eigen::VectorXd& lambda) {
  Eigen::VectorXd theta(lambda.size());
  double prev = 0.0;
  for (Eigen::Index r = 0; r < lambda.size(); ++r) {
    const double inc = std::max(lambda(r) - prev, 1e-8);
    theta(r) = std::clamp(std::log(inc), RATE_THETA_MIN, RATE_THETA_MAX);
    prev = std::max(lambda(r), prev + inc);
  }
  return theta;
}

const std::vector<ExponentialFunction>& exponential_family() {
  using T = ExponentialFunction::Term;
  static const std::vector<ExponentialFunction> family = {
      {"E1p", "A1*exp(-lambda_p*t)", "last resort / tail: physical decay only (conservative)", 1, 0,
       {T{{1.0}, -1}}},
      {"E1", "A1*exp(-(lambda1+lambda_p)*t)", "decreasing organ TAC, few points", 1, 1,
       {T{{1.0}, 0}}},
      {"E2u", "A1*(exp(-(lambda1+lambda_p)*t) - exp(-(lambda2+lambda_p)*t)), lambda2 > lambda1",
       "uptake and washout with A(0) = 0 (tumours, spleen)", 1, 2, {T{{1.0}, 0}, T{{-1.0}, 1}}},
      {"E2", "A1*exp(-(lambda1+lambda_p)*t) + A2*exp(-(lambda2+lambda_p)*t), lambda2 > lambda1",
       "bi-phasic clearance (kidney, whole body)", 2, 2, {T{{1.0, 0.0}, 0}, T{{0.0, 1.0}, 1}}},
      {"E2b", "A1*exp(-(lambda1+lambda_p)*t) - A2*exp(-(lambda2+lambda_p)*t), lambda2 > lambda1",
       "uptake with non-zero A(0)", 2, 2, {T{{1.0, 0.0}, 0}, T{{0.0, -1.0}, 1}}},
      {"E3u",
       "A1*exp(-(lambda1+lambda_p)*t) + A2*exp(-(lambda2+lambda_p)*t) - (A1+A2)*exp(-(lambda3+lambda_p)*t)",
       "rich data only (>= 7 points)", 2, 3,
       {T{{1.0, 0.0}, 0}, T{{0.0, 1.0}, 1}, T{{-1.0, -1.0}, 2}}},
  };
  return family;
}

const ExponentialFunction* find_exponential(const std::string& id) {
  for (const auto& f : exponential_family())
    if (f.id() == id) return &f;
  return nullptr;
}

std::vector<std::string> exponential_ids() {
  std::vector<std::string> ids;
  for (const auto& f : exponential_family()) ids.push_back(f.id());
  return ids;
}

}  // namespace lutdose::models
