#include "population_model.h"

#include <algorithm>
#include <boost/random/mersenne_twister.hpp>
#include <boost/random/normal_distribution.hpp>
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

VectorXd ExponentialStructure::evaluate(const VectorXd& phi, MatrixXd* jac) const {
  const VectorXd p = natural_from_phi(f_, phi);
  if (jac) *jac = f_.jacobian(t_, p, lambda_p_) * dnatural_dphi(f_, phi);
  return f_.evaluate(t_, p, lambda_p_);
}

VectorXd residual_variance(const Prior& prior, const VectorXd& f) {
  if (prior.sd_y.size()) return prior.sd_y.cwiseAbs2();
  const double s0 = prior.sigma0();
  return (s0 * s0 + (prior.b * f.array()).square()).matrix();
}

double log_2pi_base_variance(const Prior& prior, Eigen::Index n) {
  if (prior.sd_y.size()) return (2 * M_PI * prior.sd_y.array().square()).log().sum();
  const double s0 = prior.sigma0();
  return static_cast<double>(n) * std::log(2 * M_PI * s0 * s0);
}

MatrixXd omega_matrix(const Prior& p) {
  return p.omega_full.size() ? p.omega_full : MatrixXd(p.omega_diag.asDiagonal());
}

MatrixXd omega_cholesky(const Prior& p) {
  if (!p.omega_full.size()) return MatrixXd(p.omega_diag.cwiseSqrt().asDiagonal());
  return Eigen::LLT<MatrixXd>(p.omega_full).matrixL();
}

double log_det_omega(const Prior& p) {
  if (!p.omega_full.size()) return p.omega_diag.array().log().sum();
  return 2.0 * omega_cholesky(p).diagonal().array().log().sum();
}

void set_omega(Prior& p, const MatrixXd& omega) {
  p.omega_diag = omega.diagonal();
  p.omega_full = omega.isDiagonal(0.0) ? MatrixXd() : omega;
}

namespace {

// L^-1 of a full Omega = L L^T (the whitening of the random effects); empty for a diagonal Omega.
MatrixXd omega_l_inverse(const Prior& prior) {
  if (!prior.omega_full.size()) return MatrixXd();
  const auto k = prior.theta.size();
  return omega_cholesky(prior).triangularView<Eigen::Lower>().solve(MatrixXd::Identity(k, k));
}

// What both MAP functors share for Eigen's Levenberg-Marquardt: the typedefs it asks for, one
// patient's data (`data`: ln y for the proportional model, y for the additive ones) and the
// whitening of the random effects, (phi - theta)/omega^(1/2) or L^-1 (phi - theta) with a full
// Omega = L L^T (the prior term (phi - theta)^T Omega^-1 (phi - theta) as a sum of squares).
struct MapFunctorBase {
  using Scalar = double;
  enum { InputsAtCompileTime = Eigen::Dynamic, ValuesAtCompileTime = Eigen::Dynamic };
  using InputType = VectorXd;
  using ValueType = VectorXd;
  using JacobianType = MatrixXd;

  const Prior& prior;
  const StructuralModel& model;
  const VectorXd& data;
  VectorXd omega_sd;
  MatrixXd omega_l_inv;  // L^-1 of a full Omega; empty: diagonal (omega_sd)

  // The base of a functor for `prior`: the whitening derived from its Omega in one place.
  static MapFunctorBase of(const Prior& prior, const StructuralModel& model, const VectorXd& data) {
    return {prior, model, data, prior.omega_diag.cwiseSqrt(), omega_l_inverse(prior)};
  }

  int inputs() const { return static_cast<int>(prior.theta.size()); }
  // d r_prior / d phi: the whitening of the random effects
  MatrixXd prior_jacobian() const {
    return omega_l_inv.size() ? omega_l_inv : MatrixXd(omega_sd.cwiseInverse().asDiagonal());
  }
  VectorXd prior_residual(const VectorXd& phi) const {
    if (omega_l_inv.size()) return omega_l_inv * (phi - prior.theta);
    return (phi - prior.theta).cwiseQuotient(omega_sd);
  }
};

// Whitened residuals of one patient for Eigen's Levenberg-Marquardt: (ln y - ln f)/b, then
// (phi - theta)/omega^(1/2), or L^-1 (phi - theta) with a full Omega = L L^T (its prior term
// (phi - theta)^T Omega^-1 (phi - theta) as a sum of squares; Jacobian L^-1).
struct MapFunctor : MapFunctorBase {
  int values() const { return static_cast<int>(data.size() + prior.theta.size()); }

  // ln f at phi and d ln f / d phi (n x K).
  void log_f(const VectorXd& phi, VectorXd& lf, MatrixXd* jac) const {
    const VectorXd fv = model.evaluate(phi, jac);
    lf = fv.array().log().matrix();
    if (!jac) return;
    for (Eigen::Index i = 0; i < jac->rows(); ++i) jac->row(i) /= fv(i);
  }

  int operator()(const VectorXd& phi, VectorXd& r) const {
    VectorXd lf;
    log_f(phi, lf, nullptr);
    const auto n = data.size();
    r.resize(values());
    r.head(n) = (data - lf) / prior.b;
    r.tail(phi.size()) = prior_residual(phi);
    if (!r.allFinite()) r.setConstant(1e30);
    return 0;
  }

  int df(const VectorXd& phi, MatrixXd& jac) const {
    VectorXd lf;
    MatrixXd jl;
    log_f(phi, lf, &jl);
    const auto n = data.size(), k = phi.size();
    jac.setZero(values(), k);
    jac.topRows(n) = -jl / prior.b;
    jac.bottomRows(k) = prior_jacobian();
    if (!jac.allFinite()) jac.topRows(n).setZero();
    return 0;
  }
};

// The additive (combined, constant) error models on the linear scale: y_j ~ N(f_j, V_j),
// V_j = sigma0^2 + (b f_j)^2. The MAP minimises -2 ln p(y, phi) up to a constant,
// sum_j [(y_j - f_j)^2 / V_j + ln V_j] + (phi - theta)^T Omega^-1 (phi - theta): the ln V_j term
// stays because V depends on phi (the conditional mode of FOCE with interaction, Beal & Sheiner,
// NONMEM Users Guide VII; Wang, J Pharmacokinet Pharmacodyn 34 (2007) 575-593). As a sum of
// squares for Levenberg-Marquardt: (y_j - f_j) / V_j^(1/2), then sqrt(ln(V_j / sigma0^2)) (>= 0,
// as V_j >= sigma0^2; the constant n ln sigma0^2 is added back in the likelihood), then the
// random effects (phi - theta) / omega^(1/2), or L^-1 (phi - theta) with a full Omega (MapFunctor).
struct AdditiveMapFunctor : MapFunctorBase {
  int values() const { return static_cast<int>(2 * data.size() + prior.theta.size()); }

  // f at phi and d f / d phi (n x K).
  void f_at(const VectorXd& phi, VectorXd& fv, MatrixXd* jac) const { fv = model.evaluate(phi, jac); }

  // with the input model (b = 0) the ln V terms below are 0: V does not depend on phi
  VectorXd variance(const VectorXd& fv) const { return residual_variance(prior, fv); }

  int operator()(const VectorXd& phi, VectorXd& r) const {
    VectorXd fv;
    f_at(phi, fv, nullptr);
    const auto n = data.size();
    const double s0 = prior.sigma0();
    r.resize(values());
    r.head(n) = (data - fv).cwiseQuotient(variance(fv).cwiseSqrt());
    r.segment(n, n) = (prior.b * fv.array() / s0).square().log1p().sqrt().matrix();
    r.tail(phi.size()) = prior_residual(phi);
    if (!r.allFinite()) r.setConstant(1e30);
    return 0;
  }

  int df(const VectorXd& phi, MatrixXd& jac) const {
    VectorXd fv;
    MatrixXd jf;
    f_at(phi, fv, &jf);
    const auto n = data.size(), k = phi.size();
    const double s0 = prior.sigma0(), b2 = prior.b * prior.b;
    const VectorXd v = variance(fv);
    jac.setZero(values(), k);
    for (Eigen::Index j = 0; j < n; ++j) {
      const double sd = std::sqrt(v(j));
      // d/dphi of (y - f) V^(-1/2), with dV = 2 b^2 f df
      jac.row(j) = -jf.row(j) / sd - (data(j) - fv(j)) * b2 * fv(j) * jf.row(j) / (v(j) * sd);
      // d/dphi of sqrt(u), u = ln(1 + q), q = (b f / sigma0)^2: du = 2 b^2 f df / V; for q -> 0,
      // sqrt(u) -> b |f| / sigma0 (its first-order form avoids 0/0)
      const double q = b2 * fv(j) * fv(j) / (s0 * s0);
      if (q < 1e-8)
        jac.row(n + j) = (fv(j) >= 0 ? 1.0 : -1.0) * prior.b / s0 * jf.row(j);
      else
        jac.row(n + j) = b2 * fv(j) * jf.row(j) / (v(j) * std::sqrt(std::log1p(q)));
    }
    jac.bottomRows(k) = prior_jacobian();
    if (!jac.allFinite()) jac.topRows(2 * n).setZero();
    return 0;
  }
};

// Eigen's Levenberg-Marquardt from `start` for either MAP functor: m.phi, m.evaluations and the
// whitened residuals `r` at the minimum; its status.
template <class Functor>
Eigen::LevenbergMarquardtSpace::Status minimize_map(Functor& functor, const VectorXd& start, MapResult& m,
                                                    VectorXd& r) {
  m.phi = start;
  Eigen::LevenbergMarquardt<Functor> lm(functor);
  lm.parameters.ftol = 1e-12;
  lm.parameters.xtol = 1e-10;
  lm.parameters.maxfev = 200 * static_cast<int>(start.size() + 1);
  const auto status = lm.minimize(m.phi);
  m.evaluations = static_cast<int>(lm.nfev);
  r.resize(functor.values());
  functor(m.phi, r);
  return status;
}

// map_fit for the additive models. The posterior covariance V = H^-1 and ln det H use the expected
// (Fisher) information of the data, sum_j [g_j g_j^T / V_j + h_j h_j^T / (2 V_j^2)] (g = df/dphi,
// h = dV/dphi = 2 b^2 f g), plus Omega^-1: the FOCE-I Hessian (Wang 2007, above), the Gauss-Newton
// form of the proportional model's J^T J.
MapResult map_fit_additive(const Prior& prior, const StructuralModel& model, const VectorXd& y, const VectorXd& start) {
  AdditiveMapFunctor functor{MapFunctorBase::of(prior, model, y)};
  MapResult m;
  VectorXd r;
  const auto status = minimize_map(functor, start.allFinite() ? start : prior.theta, m, r);
  const auto n = y.size(), k = m.phi.size();
  functor.f_at(m.phi, m.fitted, &m.j_logf);
  m.residual = y - m.fitted;
  m.variance = functor.variance(m.fitted);
  m.objective = r.squaredNorm();
  m.log_variance_terms = r.segment(n, n).squaredNorm();
  MatrixXd a(2 * n + k, k);
  a.setZero();
  for (Eigen::Index j = 0; j < n; ++j) {
    a.row(j) = m.j_logf.row(j) / std::sqrt(m.variance(j));
    a.row(n + j) = 2 * prior.b * prior.b * m.fitted(j) * m.j_logf.row(j) / (std::sqrt(2.0) * m.variance(j));
  }
  a.bottomRows(k) = functor.prior_jacobian();
  const MatrixXd h = a.transpose() * a;
  const Eigen::LLT<MatrixXd> llt(h);
  m.ok = llt.info() == Eigen::Success && r.allFinite() && m.phi.allFinite() && h.allFinite() &&
         status != Eigen::LevenbergMarquardtSpace::ImproperInputParameters && r.maxCoeff() < 1e29;
  if (!m.ok) return m;
  m.v = llt.solve(MatrixXd::Identity(k, k));
  m.log_det_h = 2.0 * llt.matrixLLT().diagonal().array().log().sum();
  return m;
}

}  // namespace

MapResult map_fit(const Prior& prior, const VectorXd& t_h, const VectorXd& y, const VectorXd& start) {
  return map_fit(prior, ExponentialStructure(*prior.f, t_h, prior.lambda_p), y, start);
}

MapResult map_fit(const Prior& prior, const StructuralModel& model, const VectorXd& y, const VectorXd& start) {
  if (prior.additive) return map_fit_additive(prior, model, y, start);
  const VectorXd log_y = y.array().log().matrix();
  MapFunctor functor{MapFunctorBase::of(prior, model, log_y)};
  MapResult m;
  VectorXd r;
  const auto status = minimize_map(functor, start.allFinite() ? start : prior.theta, m, r);
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

PosteriorMoments laplace_moments(const Prior& prior, const MapResult& map, const VectorXd& log_y) {
  PosteriorMoments pm;
  pm.mean = map.phi;
  pm.variance = map.v.diagonal();
  pm.covariance = map.v;
  if (prior.additive) {  // log_y is not used: the model is of y; -2 ln p(y) as in the likelihood
    pm.residual_sq = map.residual.cwiseAbs2() + (map.j_logf * map.v * map.j_logf.transpose()).diagonal();
    pm.residual_ss = pm.residual_sq.sum();
    pm.fitted = map.fitted;
    pm.log_marginal = -0.5 * (log_2pi_base_variance(prior, map.residual.size()) +
                              log_det_omega(prior) + map.objective + map.log_det_h);
    return pm;
  }
  pm.residual_ss = map.residual.squaredNorm() + (map.j_logf * map.v * map.j_logf.transpose()).trace();
  const auto n = static_cast<double>(log_y.size());
  pm.log_marginal = -0.5 * (n * std::log(2 * M_PI * prior.b * prior.b) + log_det_omega(prior) +
                            map.objective + map.log_det_h) -
                    log_y.sum();
  return pm;
}

namespace {

// ln of the N(mean, L L^T) density at x, L lower-triangular (Cholesky factor).
double log_normal_density(const VectorXd& x, const VectorXd& mean, const MatrixXd& l) {
  const VectorXd u = l.triangularView<Eigen::Lower>().solve(x - mean);
  const auto k = static_cast<double>(x.size());
  return -0.5 * (u.squaredNorm() + k * std::log(2 * M_PI)) - l.diagonal().array().log().sum();
}

// ln(e^a + e^b) without overflow.
double log_add(double a, double b) {
  const double hi = std::max(a, b), lo = std::min(a, b);
  return hi + std::log1p(std::exp(lo - hi));
}

}  // namespace

PosteriorMoments posterior_moments(const Prior& prior, const VectorXd& t_h, const VectorXd& y, const MapResult& map,
                                   unsigned long long seed) {
  return posterior_moments(prior, ExponentialStructure(*prior.f, t_h, prior.lambda_p), y, map, seed);
}

PosteriorMoments posterior_moments(const Prior& prior, const StructuralModel& model, const VectorXd& y,
                                   const MapResult& map, unsigned long long seed) {
  const auto k = prior.theta.size();
  const auto n = static_cast<double>(y.size());
  // the additive models use y itself (it may be <= 0); ln y only for the proportional model
  const VectorXd log_y = prior.additive ? VectorXd::Zero(y.size()) : VectorXd(y.array().log().matrix());
  // proposal components: around the MAP with the Laplace covariance widened by 1.5 in SD (a
  // Laplace covariance too narrow for the posterior is the failure this sampler is for), and the prior
  const Eigen::LLT<MatrixXd> llt_v(2.25 * map.v);
  if (llt_v.info() != Eigen::Success) return laplace_moments(prior, map, log_y);
  const MatrixXd l_map = llt_v.matrixL();
  const MatrixXd l_prior = omega_cholesky(prior);
  const double log_half = std::log(0.5);
  boost::random::mt19937_64 rng(seed);
  boost::random::normal_distribution<double> normal(0.0, 1.0);
  std::vector<VectorXd> draws;
  std::vector<double> log_w, ss;
  std::vector<VectorXd> sq, fs;  // additive: squared residuals and f per point of each draw
  draws.reserve(POSTERIOR_DRAWS), log_w.reserve(POSTERIOR_DRAWS), ss.reserve(POSTERIOR_DRAWS);
  VectorXd z(k);
  for (int s = 0; s < POSTERIOR_DRAWS; ++s) {
    if (s % 2 == 0)
      for (Eigen::Index j = 0; j < k; ++j) z(j) = normal(rng);
    else
      z = -z;  // the antithetic partner of the previous draw
    // the first half of the draws from the MAP component, the second from the prior
    const VectorXd phi = s < POSTERIOR_DRAWS / 2 ? VectorXd(map.phi + l_map * z) : VectorXd(prior.theta + l_prior * z);
    const VectorXd fv = model.evaluate(phi, nullptr);
    double r2 = 0, log_lik = 0;
    VectorXd r2_points;
    if (prior.additive) {  // y ~ N(f, V), V = sigma0^2 + (b f)^2
      const VectorXd v = residual_variance(prior, fv);
      r2_points = (y - fv).cwiseAbs2();
      r2 = r2_points.sum();
      log_lik = -0.5 * (r2_points.cwiseQuotient(v).sum() + v.array().log().sum() + n * std::log(2 * M_PI));
    } else {
      r2 = (log_y - fv.array().log().matrix()).squaredNorm();
      log_lik = -0.5 * r2 / (prior.b * prior.b) - n * std::log(prior.b) - 0.5 * n * std::log(2 * M_PI);
    }
    const double log_prior = log_normal_density(phi, prior.theta, l_prior);
    const double log_q = log_add(log_half + log_normal_density(phi, map.phi, l_map), log_half + log_prior);
    const double lw = log_lik + log_prior - log_q;
    if (!std::isfinite(lw) || !std::isfinite(r2)) continue;
    draws.push_back(phi), log_w.push_back(lw), ss.push_back(r2);
    if (prior.additive) sq.push_back(r2_points), fs.push_back(fv);
  }
  if (draws.empty()) return laplace_moments(prior, map, log_y);
  const double top = *std::max_element(log_w.begin(), log_w.end());
  double sum_w = 0, sum_w2 = 0;
  PosteriorMoments pm;
  pm.mean = VectorXd::Zero(k);
  VectorXd second = VectorXd::Zero(k);
  MatrixXd outer = MatrixXd::Zero(k, k);  // sum w d d^T, d = phi - MAP (centred: no cancellation)
  for (size_t s = 0; s < draws.size(); ++s) {
    const double w = std::exp(log_w[s] - top);
    sum_w += w, sum_w2 += w * w;
    pm.mean += w * draws[s];
    second += w * draws[s].cwiseAbs2();
    const VectorXd d = draws[s] - map.phi;
    outer += w * d * d.transpose();
    pm.residual_ss += w * ss[s];
    if (prior.additive) {
      if (s == 0) pm.residual_sq = VectorXd::Zero(y.size()), pm.fitted = VectorXd::Zero(y.size());
      pm.residual_sq += w * sq[s];
      pm.fitted += w * fs[s];
    }
  }
  if (prior.additive) pm.residual_sq /= sum_w, pm.fitted /= sum_w;
  pm.mean /= sum_w;
  pm.variance = (second / sum_w - pm.mean.cwiseAbs2()).cwiseMax(0.0);
  const VectorXd shift = pm.mean - map.phi;
  pm.covariance = outer / sum_w - shift * shift.transpose();
  pm.residual_ss /= sum_w;
  // ln p(y): the mean weight over all draws (failed ones weigh 0), minus ln y's Jacobian sum ln y
  // (zero for the additive models: log_y is 0 there, the density is of y itself)
  pm.log_marginal = top + std::log(sum_w / POSTERIOR_DRAWS) - log_y.sum();
  pm.effective_draws = sum_w * sum_w / sum_w2;
  pm.sampled = true;
  return pm;
}

}  // namespace lutdose::population_detail
