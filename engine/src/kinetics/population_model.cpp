#include "population_model.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <unsupported/Eigen/NonLinearOptimization>

namespace lutdose::population_detail {

using Eigen::MatrixXd;
using Eigen::VectorXd;

VectorXd natural_from_phi(const models::ExponentialFunction& f, const VectorXd& phi) {
  const int na = f.n_amplitudes(), nr = f.n_rates();
  VectorXd p(na + nr);
  for (int j = 0; j < na; ++j) p(j) = std::exp(std::clamp(phi(j), -50.0, 50.0));
  if (nr > 0) p.tail(nr) = models::rates_from_log_increments(phi.tail(nr));
  return p;
}

VectorXd phi_from_natural(const models::ExponentialFunction& f, const VectorXd& p) {
  const int na = f.n_amplitudes(), nr = f.n_rates();
  VectorXd phi(na + nr);
  for (int j = 0; j < na; ++j) phi(j) = p(j) > 0 ? std::log(p(j)) : std::numeric_limits<double>::quiet_NaN();
  if (nr > 0) phi.tail(nr) = models::log_increments_from_rates(p.tail(nr));
  return phi;
}

MatrixXd dnatural_dphi(const models::ExponentialFunction& f, const VectorXd& phi) {
  const int na = f.n_amplitudes(), nr = f.n_rates();
  MatrixXd d = MatrixXd::Zero(na + nr, na + nr);
  const VectorXd p = natural_from_phi(f, phi);
  for (int j = 0; j < na; ++j) d(j, j) = p(j);
  for (int m = 0; m < nr; ++m) {
    const double x = phi(na + m);
    if (x < models::RATE_THETA_MIN || x > models::RATE_THETA_MAX) continue;  // flat outside the clamp
    for (int r = m; r < nr; ++r) d(na + r, na + m) = std::exp(x);
  }
  return d;
}

std::vector<std::string> phi_names(const models::ExponentialFunction& f) {
  std::vector<std::string> names;
  for (int j = 0; j < f.n_amplitudes(); ++j) names.push_back("log_A" + std::to_string(j + 1) + "_per_administered");
  for (int r = 0; r < f.n_rates(); ++r) names.push_back("log_dlambda" + std::to_string(r + 1) + "_bio_per_h");
  return names;
}

namespace {

// Whitened residuals of one patient for Eigen's Levenberg-Marquardt: (ln y - ln f)/b, then
// (phi - theta)/omega^(1/2).
struct MapFunctor {
  using Scalar = double;
  enum { InputsAtCompileTime = Eigen::Dynamic, ValuesAtCompileTime = Eigen::Dynamic };
  using InputType = VectorXd;
  using ValueType = VectorXd;
  using JacobianType = MatrixXd;

  const Prior& prior;
  const VectorXd& t;
  const VectorXd& log_y;
  VectorXd omega_sd;

  int inputs() const { return static_cast<int>(prior.theta.size()); }
  int values() const { return static_cast<int>(t.size() + prior.theta.size()); }

  // ln f at phi and d ln f / d phi (n x K).
  void log_f(const VectorXd& phi, VectorXd& lf, MatrixXd* jac) const {
    const VectorXd p = natural_from_phi(*prior.f, phi);
    const VectorXd fv = prior.f->evaluate(t, p, prior.lambda_p);
    lf = fv.array().log().matrix();
    if (!jac) return;
    *jac = prior.f->jacobian(t, p, prior.lambda_p) * dnatural_dphi(*prior.f, phi);
    for (Eigen::Index i = 0; i < jac->rows(); ++i) jac->row(i) /= fv(i);
  }

  int operator()(const VectorXd& phi, VectorXd& r) const {
    VectorXd lf;
    log_f(phi, lf, nullptr);
    const auto n = t.size();
    r.resize(values());
    r.head(n) = (log_y - lf) / prior.b;
    r.tail(phi.size()) = (phi - prior.theta).cwiseQuotient(omega_sd);
    if (!r.allFinite()) r.setConstant(1e30);
    return 0;
  }

  int df(const VectorXd& phi, MatrixXd& jac) const {
    VectorXd lf;
    MatrixXd jl;
    log_f(phi, lf, &jl);
    const auto n = t.size(), k = phi.size();
    jac.setZero(values(), k);
    jac.topRows(n) = -jl / prior.b;
    jac.bottomRows(k).diagonal() = omega_sd.cwiseInverse();
    if (!jac.allFinite()) jac.topRows(n).setZero();
    return 0;
  }
};

}  // namespace

MapResult map_fit(const Prior& prior, const VectorXd& t_h, const VectorXd& y, const VectorXd& start) {
  const VectorXd log_y = y.array().log().matrix();
  MapFunctor functor{prior, t_h, log_y, prior.omega_diag.cwiseSqrt()};
  MapResult m;
  m.phi = start.allFinite() ? start : prior.theta;
  Eigen::LevenbergMarquardt<MapFunctor> lm(functor);
  lm.parameters.ftol = 1e-12;
  lm.parameters.xtol = 1e-10;
  lm.parameters.maxfev = 200 * static_cast<int>(start.size() + 1);
  const auto status = lm.minimize(m.phi);
  m.evaluations = static_cast<int>(lm.nfev);
  VectorXd r(functor.values());
  functor(m.phi, r);
  MatrixXd jac;
  functor.df(m.phi, jac);
  functor.log_f(m.phi, m.residual, &m.j_logf);
  m.residual = log_y - m.residual;
  m.objective = r.squaredNorm();
  const MatrixXd h = jac.transpose() * jac;
  const Eigen::LLT<MatrixXd> llt(h);
  m.ok = llt.info() == Eigen::Success && r.allFinite() && m.phi.allFinite() &&
         status != Eigen::LevenbergMarquardtSpace::ImproperInputParameters && r.maxCoeff() < 1e29;
  if (!m.ok) return m;
  m.v = llt.solve(MatrixXd::Identity(h.rows(), h.cols()));
  m.log_det_h = 2.0 * llt.matrixLLT().diagonal().array().log().sum();
  return m;
}

}  // namespace lutdose::population_detail
