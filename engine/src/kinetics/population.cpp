// The population estimator (population.h; methods.md §10).
#include "lutdose/kinetics/population.h"

#include <algorithm>
#include <boost/math/tools/minima.hpp>
#include <cmath>
#include <exception>
#include <optional>
#include <stdexcept>

#include "lutdose/dosimetry/svalues.h"
#include "lutdose/error.h"
#include "parallel_for.h"
#include "population_model.h"

namespace lutdose {

using Eigen::MatrixXd;
using Eigen::VectorXd;
using population_detail::MapResult;
using population_detail::Prior;

std::string population_voi_kind(const std::string& voi) { return is_tumour_voi(voi) ? "tumour" : voi; }

bool population_function_supported(const std::string& id) {
  return id == "E1p" || id == "E1" || id == "E2u" || id == "E2";
}

std::string omega_structure_name(OmegaStructure s) { return s == OmegaStructure::full ? "full" : "diagonal"; }

std::vector<std::string> population_parameter_names(const models::ExponentialFunction& f) {
  return population_detail::phi_names(f);
}

std::string to_string(PopulationErrorModel m) {
  switch (m) {
    case PopulationErrorModel::combined: return "combined";
    case PopulationErrorModel::constant: return "constant";
    case PopulationErrorModel::input: return "input";
    default: return "proportional";
  }
}

std::optional<PopulationErrorModel> parse_population_error_model(const std::string& s) {
  for (auto m : {PopulationErrorModel::proportional, PopulationErrorModel::combined, PopulationErrorModel::constant,
                 PopulationErrorModel::input})
    if (to_string(m) == s) return m;
  return std::nullopt;
}

namespace {

constexpr double NaN = std::numeric_limits<double>::quiet_NaN();
// Omega_kk is kept above this (log scale): below it a parameter has no spread between patients and
// its eta is fixed at 0 in effect; the floor keeps Omega invertible.
constexpr double OMEGA_FLOOR = 1e-8;
// b is kept above this: a relative SD of 1e-6 is beyond any measured activity's precision.
constexpr double SIGMA_FLOOR = 1e-6;
// sigma0 of the additive models is kept above this [MBq]: 1 Bq, far below any SPECT/CT's noise floor
// in a VOI (a camera detects on the order of 10 counts/s per MBq; a floor of 1 Bq would need days of
// acquisition), and it keeps V = sigma0^2 + (b f)^2 > 0 where f is ~0.
constexpr double SIGMA0_FLOOR_MBQ = 1e-6;

double median(std::vector<double> v) {
  if (v.empty()) return NaN;
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

// Start of theta: the medians of ln(A / A0) and ln lambda_bio of per-TAC mono-exponential fits, extended
// to the function: a second amplitude of 30 % and a second rate 0.2 /h faster (an effective
// half-life of a few hours, the uptake or fast washout phase).
VectorXd initial_theta(const models::ExponentialFunction& f, const PopulationData& d, double lambda_p) {
  const auto& e1 = *models::find_exponential("E1");
  FitOptions o;
  std::vector<double> log_a, log_k;
  for (size_t i = 0; i < d.t_h.size(); ++i) {
    // the points > 0 (all of them under the proportional model; the additive models keep points <= 0)
    std::vector<double> tv, yv;
    for (Eigen::Index j = 0; j < d.t_h[i].size(); ++j)
      if (d.y_per_administered[i](j) > 0) tv.push_back(d.t_h[i](j)), yv.push_back(d.y_per_administered[i](j));
    if (tv.size() < 2) continue;
    const VectorXd t = Eigen::Map<VectorXd>(tv.data(), static_cast<Eigen::Index>(tv.size()));
    const VectorXd y = Eigen::Map<VectorXd>(yv.data(), static_cast<Eigen::Index>(yv.size()));
    const CandidateFit c = fit_function(e1, t, y, VectorXd(), lambda_p, o);
    if (!c.fitted || !c.parameters.allFinite() || !(c.parameters(0) > 0)) continue;
    log_a.push_back(std::log(c.parameters(0)));
    log_k.push_back(std::log(std::max(c.parameters(1), 1e-6)));
  }
  const double la = log_a.empty() ? std::log(std::max(d.y_per_administered[0].maxCoeff(), 1e-6)) : median(log_a);
  const double lk = log_k.empty() ? std::log(0.01) : median(log_k);
  VectorXd theta(f.n_parameters());
  theta(0) = la;
  if (f.n_amplitudes() == 2) theta(1) = la + std::log(0.3);
  if (f.n_rates() >= 1) theta(f.n_amplitudes()) = lk;
  if (f.n_rates() >= 2) theta(f.n_amplitudes() + 1) = std::log(0.2);
  return theta;
}

// The prior of patient i: the population's, with the patient's administered activity for the
// additive models (sigma0 [MBq] / A0 on the scale of y); the population's itself otherwise.
const Prior& patient_prior(const Prior& prior, const PopulationData& d, size_t i, Prior& buffer) {
  if (!prior.additive) return prior;
  buffer = prior;
  buffer.a0_MBq = d.administered_MBq.at(i);
  if (prior.sd_y.size()) buffer.sd_y = d.u_per_administered.at(i);  // input: the points' own SDs
  return buffer;
}

// The structural model of unit i: d.structure[i] where the data bring one (a compartment
// population), else the population's exponential family at the TAC's times (held in `buffer`).
const population_detail::StructuralModel& unit_model(const Prior& prior, const PopulationData& d, size_t i,
                                                     std::optional<population_detail::ExponentialStructure>& buffer) {
  if (!d.structure.empty()) return *d.structure.at(i);
  buffer.emplace(*prior.f, d.t_h[i], prior.lambda_p);
  return *buffer;
}

// The E-step: every patient's MAP under `prior`, warm-started from `phis` (updated), the patients
// split over `threads` threads (parallel_for; each writes only its own MAP and phi, so the results
// do not depend on the number of threads).
std::vector<MapResult> e_step(const Prior& population, const PopulationData& d, std::vector<VectorXd>& phis,
                              unsigned threads) {
  std::vector<MapResult> maps(d.t_h.size());
  parallel_for(maps.size(), threads, [&](size_t i) {
    Prior buffer;
    std::optional<population_detail::ExponentialStructure> exponential;
    const Prior& prior = patient_prior(population, d, i, buffer);
    const auto& model = unit_model(prior, d, i, exponential);
    maps[i] = population_detail::map_fit(prior, model, d.y_per_administered[i], phis[i]);
    if (!maps[i].ok) maps[i] = population_detail::map_fit(prior, model, d.y_per_administered[i], prior.theta);
    if (maps[i].ok) phis[i] = maps[i].phi;
  });
  return maps;
}

// Every patient's posterior moments under `prior` (posterior_moments, importance sampling around
// its MAP; the patient's index seeds its draws); a patient whose MAP failed has none (empty mean).
// With sampled = false, the Laplace moments (MAP and its Gauss-Newton covariance). The patients are
// split over `threads` threads as in e_step.
std::vector<population_detail::PosteriorMoments> moments(const Prior& population, const PopulationData& d,
                                                         const std::vector<MapResult>& maps, bool sampled,
                                                         unsigned threads) {
  std::vector<population_detail::PosteriorMoments> out(maps.size());
  parallel_for(maps.size(), threads, [&](size_t i) {
    Prior buffer;
    std::optional<population_detail::ExponentialStructure> exponential;
    if (const Prior& prior = patient_prior(population, d, i, buffer); maps[i].ok)
      out[i] = sampled ? population_detail::posterior_moments(prior, unit_model(prior, d, i, exponential),
                                                              d.y_per_administered[i], maps[i], i + 1)
                       : population_detail::laplace_moments(prior, maps[i], d.y_per_administered[i].array().log());
  });
  return out;
}

// -2 ln p(y) of the cohort from the sampled marginal likelihoods: the objective of the EM's
// stopping rule (EM raises it); NaN when a patient has no moments.
double minus2_log_marginal(const std::vector<population_detail::PosteriorMoments>& pm) {
  double total = 0;
  for (const auto& m : pm) {
    if (m.mean.size() == 0) return NaN;
    total += -2 * m.log_marginal;
  }
  return total;
}

// The M-step of the additive models' (sigma0 [MBq], b): the maximum over both of the expected
// log-likelihood of the points, -1/2 sum_ij [ln V_ij + E(y_ij - f_ij)^2 / V_ij],
// V_ij = (sigma0 / A0_i)^2 + b^2 f_ij^2, with E(y - f)^2 from the E-step and f at the MAP (Laplace)
// or its posterior mean (sampled): V is taken at that f, not averaged over the posterior (the
// approximation of the FOCE-I EM; the squared residual's expectation is exact for the sampled
// E-step). A 2-parameter maximisation, profiled: V_ij = tau^2 ((1 - p) a_ij + p c_ij) with a_ij =
// A0_i^-2 / mean(A0^-2) and c_ij = f_ij^2 / mean(f^2) (each mean 1), tau^2(p) = mean(E r^2 / g(p))
// in closed form and p in [0, 1] by Brent's method (Boost.Math brent_find_minima); constant: p = 0.
void additive_m_step(const std::vector<population_detail::PosteriorMoments>& pm, const PopulationData& d, Prior& p) {
  std::vector<double> r2, a, c;
  for (size_t i = 0; i < pm.size(); ++i) {
    if (!pm[i].mean.size()) continue;
    const double inv_a0_2 = 1.0 / (d.administered_MBq.at(i) * d.administered_MBq.at(i));
    for (Eigen::Index j = 0; j < pm[i].residual_sq.size(); ++j)
      r2.push_back(pm[i].residual_sq(j)), a.push_back(inv_a0_2), c.push_back(pm[i].fitted(j) * pm[i].fitted(j));
  }
  const double n = static_cast<double>(r2.size());
  if (n == 0) return;
  double mean_a = 0, mean_c = 0;
  for (size_t j = 0; j < r2.size(); ++j) mean_a += a[j] / n, mean_c += c[j] / n;
  auto tau2 = [&](double q) {
    double t = 0;
    for (size_t j = 0; j < r2.size(); ++j) t += r2[j] / ((1 - q) * a[j] / mean_a + q * c[j] / mean_c) / n;
    return t;
  };
  // minus the expected log-likelihood (times 2, without constants) at its maximum over tau^2
  auto profile = [&](double q) {
    double s = 0;
    for (size_t j = 0; j < r2.size(); ++j) s += std::log((1 - q) * a[j] / mean_a + q * c[j] / mean_c);
    const double t = tau2(q);
    return t > 0 && std::isfinite(s) ? s + n * std::log(t) : std::numeric_limits<double>::infinity();
  };
  double q = 0;
  if (p.b > 0 && mean_c > 0)  // combined (constant: b stays 0)
    // 1 - 1e-9: V stays > 0 where f is ~0; 26 bits (Boost caps it at half the mantissa's 53): p to
    // about 1.5e-8, far below what a cohort's data determine
    q = boost::math::tools::brent_find_minima(profile, 0.0, 1.0 - 1e-9, 26).first;
  const double t = tau2(q);
  if (!(t > 0) || !std::isfinite(t)) return;
  p.sigma0_MBq = std::max(std::sqrt(t * (1 - q) / mean_a), SIGMA0_FLOOR_MBQ);
  if (p.b > 0) p.b = std::max(std::sqrt(t * q / mean_c), SIGMA_FLOOR);
}

// The M-step's full Omega: the mean over the `used` patients with moments of (eta_i eta_i^T + V_i),
// eta_i = E[phi_i | y] - theta, V_i = Cov[phi_i | y] (the EM update of Omega in the linear mixed
// model, Laird & Ware 1982 and Lindstrom & Bates 1990, with the conditional covariance sampled or
// Laplace as the diagonal's). Guard: symmetrised, and its eigenvalues kept above OMEGA_FLOOR (a
// mean of positive semi-definite matrices plus positive-definite V_i is positive-definite in exact
// arithmetic; a sampled V_i of few effective draws or rounding may not be, and the floor is the
// diagonal's own reason: below it a direction of eta has no spread between patients, and it keeps
// Omega's Cholesky factor, which whitens the MAP's prior term, invertible).
MatrixXd full_omega_update(const std::vector<population_detail::PosteriorMoments>& pm, const VectorXd& theta,
                           int used) {
  const auto k = theta.size();
  MatrixXd sum = MatrixXd::Zero(k, k);
  for (const auto& m : pm)
    if (m.mean.size()) sum += (m.mean - theta) * (m.mean - theta).transpose() + m.covariance;
  const MatrixXd omega = 0.5 * (sum + sum.transpose()) / used;
  const Eigen::SelfAdjointEigenSolver<MatrixXd> eig(omega);
  if (eig.info() != Eigen::Success || eig.eigenvalues().minCoeff() >= OMEGA_FLOOR) return omega;
  return eig.eigenvectors() * eig.eigenvalues().cwiseMax(OMEGA_FLOOR).asDiagonal() * eig.eigenvectors().transpose();
}

// The M-step: theta, Omega (diagonal; full with a full prior: full_omega_update) and b from the
// patients' posterior moments (Monte Carlo EM,
// Wei & Tanner 1990; the conditional variance of eta is in Omega's update, as in the EM of
// Lindstrom & Bates, but sampled: the Laplace covariance of a rate the data barely see is too
// narrow, which made Omega low, docs/population.md). Patients whose MAP failed are left out.
Prior m_step(const Prior& old, const std::vector<population_detail::PosteriorMoments>& pm,
             const PopulationData& d) {
  Prior p = old;
  const auto k = old.theta.size();
  VectorXd sum = VectorXd::Zero(k);
  int used = 0;
  for (const auto& m : pm)
    if (m.mean.size()) sum += m.mean, ++used;
  if (used == 0) return old;
  p.theta = sum / used;
  VectorXd var = VectorXd::Zero(k);
  double ss = 0;
  long n_obs = 0;
  for (size_t i = 0; i < pm.size(); ++i) {
    if (!pm[i].mean.size()) continue;
    var += (pm[i].mean - p.theta).cwiseAbs2() + pm[i].variance;
    ss += pm[i].residual_ss;
    n_obs += d.y_per_administered[i].size();
  }
  p.omega_diag = (var / used).cwiseMax(OMEGA_FLOOR);
  if (old.omega_full.size()) {
    p.omega_full = full_omega_update(pm, p.theta, used);
    p.omega_diag = p.omega_full.diagonal();
  }
  if (old.additive) {
    if (old.sd_y.size() == 0) additive_m_step(pm, d, p);  // input (sd_y): nothing to estimate
  } else {
    p.b = std::max(std::sqrt(ss / static_cast<double>(n_obs)), SIGMA_FLOOR);
  }
  return p;
}

// Laplace -2 log L of y = A / A0 (Gauss-Newton Hessian): per patient n ln(2 pi b^2) + ln det Omega +
// objective + ln det H, plus 2 sum ln y (the change of variables from ln y to y). The additive
// models: n ln(2 pi sigma0_i^2) + ln det Omega + objective + ln det H (expected-information Hessian).
double minus2_log_likelihood(const Prior& prior, const std::vector<MapResult>& maps, const PopulationData& d) {
  const double log_det_omega = population_detail::log_det_omega(prior);
  double total = 0;
  for (size_t i = 0; i < maps.size(); ++i) {
    if (!maps[i].ok) return NaN;
    const double n = static_cast<double>(d.y_per_administered[i].size());
    if (prior.additive) {  // the density of y itself: n ln(2 pi sigma0_i^2) + the MAP's objective (its ln V / sigma0^2)
      Prior buffer;
      total += population_detail::log_2pi_base_variance(patient_prior(prior, d, i, buffer), maps[i].residual.size()) +
               log_det_omega + maps[i].objective + maps[i].log_det_h;
      continue;
    }
    total += n * std::log(2 * M_PI * prior.b * prior.b) + log_det_omega + maps[i].objective + maps[i].log_det_h +
             2 * d.y_per_administered[i].array().log().sum();
  }
  return total;
}

// (Omega + C_i)^-1 = Omega^-1 - Omega^-1 V_i Omega^-1 of one patient's MAP (C_i the data's
// covariance of phi_i, V_i its posterior covariance; Woodbury), Omega full or diagonal: the
// precision of the MAP's phi_i about theta in the linearised model.
// `w` is Omega^-1 (omega_inverse), the same for every patient: computed once by the callers.
MatrixXd marginal_precision(const MatrixXd& w, const MapResult& m) { return w - w * m.v * w; }

// Omega^-1, full or diagonal.
MatrixXd omega_inverse(const Prior& prior) {
  const auto k = prior.theta.size();
  return prior.omega_full.size() ? MatrixXd(prior.omega_full.llt().solve(MatrixXd::Identity(k, k)))
                                 : MatrixXd(prior.omega_diag.cwiseInverse().asDiagonal());
}

// Standard errors of theta from the Fisher information of the linearised model,
// sum_i (Omega + C_i)^-1 = sum_i (Omega^-1 - Omega^-1 V_i Omega^-1) (C_i the data's covariance of
// phi_i, V_i = (Omega^-1 + C_i^-1)^-1 its posterior covariance; Woodbury), Omega full or diagonal.
VectorXd theta_standard_errors(const Prior& prior, const std::vector<MapResult>& maps) {
  const auto k = prior.theta.size();
  MatrixXd info = MatrixXd::Zero(k, k);
  const MatrixXd w = omega_inverse(prior);
  for (const auto& m : maps)
    if (m.ok) info += marginal_precision(w, m);
  const Eigen::LDLT<MatrixXd> ldlt(info);
  if (ldlt.info() != Eigen::Success) return VectorXd::Constant(k, NaN);
  const VectorXd var = ldlt.solve(MatrixXd::Identity(k, k)).diagonal();
  return var.unaryExpr([](double x) { return x > 0 ? std::sqrt(x) : NaN; });
}

// Standard errors of ln Omega_kk from the Fisher information of the same linearised model as
// theta_standard_errors: patient i's MAP phi_i ~ N(theta, Omega + C_i) (C_i the data-only variance),
// so I(omega_k, omega_l) = 1/2 sum_i [(Omega + C_i)^-1]_kl^2 (the Gaussian information of a
// covariance parameter, 1/2 tr(S^-1 dS_k S^-1 dS_l) with dS_k = e_k e_k^T), and on the log scale
// omega_k omega_l times that. (Omega + C_i)^-1 = Omega^-1 - Omega^-1 V_i Omega^-1 (V_i the MAP's
// posterior covariance) needs no inverse of C_i, which is singular for a rate the TAC barely sees:
// such a TAC adds little information about that Omega_kk. With C_i = 0 it is n / 2 per variance,
// Var(ln s^2) = 2 / n of n exact draws. Theta and Omega are orthogonal in this model (the
// information has no cross block), so the SEs are the diagonal of the inverse of this K x K block.
// With a full Omega: full_log_omega_standard_errors.

// The elements (k, l), k <= l, of a full K x K Omega: the variances first, then the covariances
// row by row of the upper triangle.
std::vector<std::pair<Eigen::Index, Eigen::Index>> omega_elements(Eigen::Index k) {
  std::vector<std::pair<Eigen::Index, Eigen::Index>> elements;
  for (Eigen::Index i = 0; i < k; ++i) elements.emplace_back(i, i);
  for (Eigen::Index i = 0; i < k; ++i)
    for (Eigen::Index j = i + 1; j < k; ++j) elements.emplace_back(i, j);
  return elements;
}

// The covariance of the estimates of a full Omega's K (K + 1) / 2 elements (omega_elements' order):
// the inverse of their information I_ab = 1/2 sum_i tr(P_i dS_a P_i dS_b), P_i = (Omega + C_i)^-1,
// dS_a = E_kl + E_lk. Empty where the information is singular.
MatrixXd full_omega_covariance(const Prior& prior, const std::vector<MapResult>& maps) {
  const auto elements = omega_elements(prior.theta.size());
  const auto q = static_cast<Eigen::Index>(elements.size());
  MatrixXd info = MatrixXd::Zero(q, q);
  const MatrixXd w = omega_inverse(prior);
  for (const auto& m : maps) {
    if (!m.ok) continue;
    const MatrixXd p = marginal_precision(w, m);
    // P dS_a has the columns l and k of P in the columns k and l (dS_a = E_kl + E_lk)
    std::vector<MatrixXd> pd(static_cast<size_t>(q), MatrixXd::Zero(p.rows(), p.cols()));
    for (Eigen::Index a = 0; a < q; ++a) {
      const auto [i, j] = elements[static_cast<size_t>(a)];
      auto& e = pd[static_cast<size_t>(a)];
      e.col(i) += p.col(j);
      if (i != j) e.col(j) += p.col(i);
    }
    for (Eigen::Index a = 0; a < q; ++a)
      for (Eigen::Index b = 0; b < q; ++b)
        info(a, b) += 0.5 * (pd[static_cast<size_t>(a)] * pd[static_cast<size_t>(b)]).trace();
  }
  const Eigen::LDLT<MatrixXd> ldlt(info);
  if (ldlt.info() != Eigen::Success) return MatrixXd();
  return ldlt.solve(MatrixXd::Identity(q, q));
}

// With a full Omega: the variances' SEs from full_omega_covariance, on the log scale: the marginal
// SEs (the covariances estimated too). With the covariances held instead, the SEs shrink like
// (1 - rho^2)^(1/2) as the correlation grows, below (2 / n)^(1/2) of n exactly known draws (review of 0.17).
// `cov`: full_omega_covariance (empty: the information is singular).
VectorXd full_log_omega_standard_errors(const Prior& prior, const MatrixXd& cov) {
  const auto k = prior.theta.size();
  if (!cov.size()) return VectorXd::Constant(k, NaN);
  VectorXd se(k);
  for (Eigen::Index i = 0; i < k; ++i)
    se(i) = cov(i, i) > 0 ? std::sqrt(cov(i, i)) / prior.omega_full(i, i) : NaN;  // d ln w = dw / w
  return se;
}

// The standard errors of a full Omega's correlations rho_kl = w_kl / (w_kk w_ll)^(1/2) (a symmetric
// K x K matrix, diagonal 0: rho_kk = 1 exactly) by the delta method from full_omega_covariance:
// d rho / d w_kl = 1 / (w_kk w_ll)^(1/2), d rho / d w_kk = -rho / (2 w_kk), d rho / d w_ll = -rho / (2 w_ll).
// Empty for a diagonal Omega; NaN where the information is singular (not known).
MatrixXd omega_correlation_standard_errors(const Prior& prior, const MatrixXd& cov) {
  if (!prior.omega_full.size()) return MatrixXd();
  const auto k = prior.theta.size();
  const auto elements = omega_elements(k);
  const MatrixXd& w = prior.omega_full;
  MatrixXd se = MatrixXd::Zero(k, k);
  for (size_t a = static_cast<size_t>(k); a < elements.size(); ++a) {
    const auto [i, j] = elements[a];
    VectorXd g = VectorXd::Zero(static_cast<Eigen::Index>(elements.size()));
    const double rho = w(i, j) / std::sqrt(w(i, i) * w(j, j));
    g(static_cast<Eigen::Index>(a)) = 1 / std::sqrt(w(i, i) * w(j, j));
    g(i) = -rho / (2 * w(i, i));
    g(j) = -rho / (2 * w(j, j));
    const double var = cov.size() ? g.dot(cov * g) : NaN;
    se(i, j) = se(j, i) = var > 0 ? std::sqrt(var) : NaN;
  }
  return se;
}

// `full_cov`: a full Omega's full_omega_covariance (computed once for these SEs and the correlations').
VectorXd log_omega_standard_errors(const Prior& prior, const std::vector<MapResult>& maps, const MatrixXd& full_cov) {
  if (prior.omega_full.size()) return full_log_omega_standard_errors(prior, full_cov);
  const auto k = prior.theta.size();
  MatrixXd info = MatrixXd::Zero(k, k);
  const MatrixXd w = omega_inverse(prior);
  for (const auto& m : maps)
    if (m.ok) info += 0.5 * marginal_precision(w, m).cwiseAbs2();
  info = prior.omega_diag.asDiagonal() * info * prior.omega_diag.asDiagonal();
  const Eigen::LDLT<MatrixXd> ldlt(info);
  if (ldlt.info() != Eigen::Success) return VectorXd::Constant(k, NaN);
  const VectorXd var = ldlt.solve(MatrixXd::Identity(k, k)).diagonal();
  return var.unaryExpr([](double x) { return x > 0 ? std::sqrt(x) : NaN; });
}

// Standard error of ln b: b^2 is estimated from d residual degrees of freedom, Var(b_hat^2) =
// 2 b^4 / d, so Var(ln b_hat) = 1 / (2 d). d = n_observations minus the effective number of
// random-effect parameters, sum_i tr(J_i V_i J_i^T) / b^2 (the trace of each TAC's hat matrix:
// Hodges & Sargent, Biometrika 88 (2001) 367-379): a random effect the data barely see is shrunk
// to theta and uses almost no degree of freedom. NaN (not known) below 1 degree of freedom.
double log_sigma_standard_error(const Prior& prior, const std::vector<MapResult>& maps, const PopulationData& d) {
  double dof = 0;
  for (size_t i = 0; i < maps.size(); ++i) {
    if (!maps[i].ok) continue;
    dof += static_cast<double>(d.y_per_administered[i].size()) -
           (maps[i].j_logf * maps[i].v * maps[i].j_logf.transpose()).trace() / (prior.b * prior.b);
  }
  return dof >= 1 ? 1 / std::sqrt(2 * dof) : NaN;
}

// Standard errors of ln sigma0 and ln b of the additive error models (combined: both; constant:
// sigma0 only, b fixed at 0). Each point's residual variance at the MAPs is V_j = s_i^2 + b^2 f_j^2
// (s_i = sigma0 / A0_i on the scale of y); the Gaussian information of the variance parameters a =
// (ln sigma0, ln b) is I_ab = 1/2 sum_j (dV_j/da)(dV_j/db) / V_j^2, dV_j/d ln sigma0 = 2 s_i^2,
// dV_j/d ln b = 2 b^2 f_j^2, scaled by d / n (n points, d the residual degrees of freedom, n less
// each unit's hat-matrix trace sum_j (J V J^T)_jj / V_j: log_sigma_standard_error's correction). With
// b = 0 this is 1 / (2 d), the proportional model's Var(ln b). NaN (not known) below 1 degree of
// freedom or where the information is singular (a b of 0 in the combined model).
Eigen::Vector2d additive_log_standard_errors(const Prior& prior, const std::vector<MapResult>& maps, bool with_b) {
  Eigen::Matrix2d info = Eigen::Matrix2d::Zero();
  double n = 0, dof = 0;
  for (const auto& m : maps) {
    if (!m.ok || m.variance.size() != m.fitted.size()) continue;
    const VectorXd bf2 = prior.b * prior.b * m.fitted.cwiseAbs2();
    const VectorXd s2 = (m.variance - bf2).cwiseMax(0.0);
    info(0, 0) += 2 * (s2.array().square() / m.variance.array().square()).sum();
    info(0, 1) += 2 * (s2.array() * bf2.array() / m.variance.array().square()).sum();
    info(1, 1) += 2 * (bf2.array().square() / m.variance.array().square()).sum();
    n += static_cast<double>(m.fitted.size());
    dof += static_cast<double>(m.fitted.size()) -
           ((m.j_logf * m.v * m.j_logf.transpose()).diagonal().array() / m.variance.array()).sum();
  }
  info(1, 0) = info(0, 1);
  Eigen::Vector2d se = Eigen::Vector2d::Constant(NaN);
  if (!(dof >= 1) || !(n > 0)) return se;
  info *= dof / n;
  if (!with_b) return se(0) = info(0, 0) > 0 ? 1 / std::sqrt(info(0, 0)) : NaN, se;
  const double det = info.determinant();
  if (!(det > 0)) return se;
  se(0) = std::sqrt(info(1, 1) / det);
  se(1) = std::sqrt(info(0, 0) / det);
  return se;
}

// eta shrinkage per parameter: 1 - SD(eta_MAP) / omega^(1/2).
VectorXd shrinkage(const Prior& prior, const std::vector<MapResult>& maps) {
  const auto k = prior.theta.size();
  VectorXd sum = VectorXd::Zero(k), sum2 = VectorXd::Zero(k);
  double n = 0;
  for (const auto& m : maps)
    if (m.ok) sum += m.phi - prior.theta, sum2 += (m.phi - prior.theta).cwiseAbs2(), n += 1;
  if (n < 2) return VectorXd::Constant(k, NaN);
  const VectorXd sd = ((sum2 - sum.cwiseAbs2() / n) / (n - 1)).cwiseMax(0.0).cwiseSqrt();
  return VectorXd::Ones(k) - sd.cwiseQuotient(prior.omega_diag.cwiseSqrt());
}

// The correlation matrix of a full Omega (empty for a diagonal one).
MatrixXd correlations(const Prior& p) {
  if (!p.omega_full.size()) return MatrixXd();
  const VectorXd sd_inv = p.omega_diag.cwiseSqrt().cwiseInverse();
  return sd_inv.asDiagonal() * p.omega_full * sd_inv.asDiagonal();
}

// Largest change between two priors on the log scale (theta, ln omega^(1/2), ln b; ln sigma0) and,
// with a full Omega, of its correlations (in [-1, 1], the same tolerance: 1e-5 in a correlation is
// far below its sampling error).
double change(const Prior& a, const Prior& b) {
  const double dt = (a.theta - b.theta).cwiseAbs().maxCoeff();
  const double dw = 0.5 * (a.omega_diag.array().log() - b.omega_diag.array().log()).abs().maxCoeff();
  const double dr = a.omega_full.size() && b.omega_full.size()
                        ? (correlations(a) - correlations(b)).cwiseAbs().maxCoeff() : 0.0;
  if (a.additive)  // ln sigma0, and ln b where it is estimated (constant: b = 0)
    return std::max({dt, dw, dr, std::abs(std::log(a.sigma0_MBq / b.sigma0_MBq)),
                     a.b > 0 && b.b > 0 ? std::abs(std::log(a.b / b.b)) : 0.0});
  return std::max({dt, dw, dr, std::abs(std::log(a.b / b.b))});
}

// -2 log L changed by less than objective_tolerance in the last iteration, or improved by less
// than plateau_improvement over the last plateau_iterations.
bool plateau(const std::vector<double>& h, const PopulationOptions& o) {
  const size_t n = h.size();
  if (n >= 2 && std::abs(h[n - 1] - h[n - 2]) < o.objective_tolerance) return true;
  const auto w = static_cast<size_t>(o.plateau_iterations);
  return n > w && h[n - 1 - w] - h[n - 1] < o.plateau_improvement;
}

// The figures of a converged (or stopped) fit.
void summarise(const Prior& prior, const std::vector<MapResult>& maps, const PopulationData& d,
               PopulationModel& m) {
  m.theta = prior.theta;
  m.omega = population_detail::omega_matrix(prior);
  m.omega_structure = prior.omega_full.size() ? "full" : "diagonal";
  m.sigma_log = prior.b;
  if (prior.additive) m.sigma0_MBq = prior.sigma0_MBq;
  if (m.error_model == PopulationErrorModel::input)  // nothing estimated: the points' own u
    m.sigma0_MBq = NaN, m.sigma_log = NaN;
  m.theta_se = theta_standard_errors(prior, maps);
  const MatrixXd omega_cov = prior.omega_full.size() ? full_omega_covariance(prior, maps) : MatrixXd();
  m.log_omega_se = log_omega_standard_errors(prior, maps, omega_cov);
  m.omega_correlation_se = omega_correlation_standard_errors(prior, omega_cov);
  // the SE of ln b (the log-scale model's b, or the combined model's proportional coefficient) and
  // of ln sigma0 (combined, constant); the input model estimates nothing
  m.log_sigma_log_se = m.error_model == PopulationErrorModel::proportional ? log_sigma_standard_error(prior, maps, d) : NaN;
  if (has_additive_sd(m.error_model)) {
    const auto se = additive_log_standard_errors(prior, maps, m.error_model == PopulationErrorModel::combined);
    m.log_sigma0_se = se(0);
    m.log_sigma_log_se = se(1);
  }
  m.shrinkage = shrinkage(prior, maps);
  m.minus2_log_likelihood = minus2_log_likelihood(prior, maps, d);
  const int k = static_cast<int>(prior.theta.size());
  m.n_population_parameters = k + (prior.omega_full.size() ? k * (k + 1) / 2 : k) +
                              (m.error_model == PopulationErrorModel::combined ? 2
                               : m.error_model == PopulationErrorModel::input  ? 0
                                                                               : 1);
  const double p = m.n_population_parameters, n = m.n_observations;
  m.aicc = n - p - 1 > 0 ? m.minus2_log_likelihood + 2 * p + 2 * p * (p + 1) / (n - p - 1) : NaN;
  m.bic = m.minus2_log_likelihood + p * std::log(static_cast<double>(m.n_patients));
}


// The EM from `prior` (the MAPs warm-started from phis, updated) with the Laplace or the sampled
// posterior moments, until the estimates settle or the objective reaches a plateau; the
// iterations and convergence are added to m (a refinement follows a Laplace run: its iterations
// count on, and it has converged only if both have). Returns the final estimates.
Prior run_em(Prior prior, const PopulationData& d, const PopulationOptions& o, bool sampled,
             std::vector<VectorXd>& phis, PopulationModel& m) {
  std::vector<double> history;
  bool converged = false;
  int iterations = 0;
  while (iterations < o.max_iterations) {
    ++iterations;
    const auto maps = e_step(prior, d, phis, o.threads);
    const auto pm = moments(prior, d, maps, sampled, o.threads);
    history.push_back(minus2_log_marginal(pm));
    const Prior next = m_step(prior, pm, d);
    const double moved = change(prior, next);
    prior = next;
    if (moved < o.tolerance || plateau(history, o)) {
      converged = true;
      break;
    }
  }
  m.converged = (m.iterations == 0 || m.converged) && converged;
  m.iterations += iterations;
  return prior;
}

// The figures of `m` under the final estimates `prior`: the MAPs, theta's SEs, shrinkage, -2 log L.
void finish(const Prior& prior, const PopulationData& d, std::vector<VectorXd>& phis, unsigned threads,
            PopulationModel& m) {
  const auto maps = e_step(prior, d, phis, threads);
  summarise(prior, maps, d, m);
}

}  // namespace

// The starting residual error of a population: b = 0.1 (proportional, combined; 0 for constant) and,
// for the additive models, sigma0 = 10 % of the median |activity| [MBq] of the points (a start of
// the order of the data; the EM moves it).
void population_detail::set_error_model_start(Prior& prior, PopulationErrorModel model, const PopulationData& d) {
  if (model == PopulationErrorModel::proportional) return;
  prior.additive = true;
  if (model == PopulationErrorModel::input) {  // V_ij = (u_ij / A0_i)^2, set per patient (patient_prior)
    prior.b = 0;
    prior.sigma0_MBq = 1;  // not a parameter of this model: only a non-zero scale for the functor's ln V terms (all 0)
    prior.sd_y = VectorXd::Ones(1);  // marks the model; replaced by each patient's
    return;
  }
  if (model == PopulationErrorModel::constant) prior.b = 0;
  std::vector<double> a;
  for (size_t i = 0; i < d.y_per_administered.size(); ++i)
    for (Eigen::Index j = 0; j < d.y_per_administered[i].size(); ++j)
      a.push_back(std::abs(d.y_per_administered[i](j)) * d.administered_MBq.at(i));
  prior.sigma0_MBq = std::max(0.1 * median(a), SIGMA0_FLOOR_MBQ);
}

// The prior of a population model's estimates (its error model included).
Prior population_detail::model_prior(const models::ExponentialFunction* f, const PopulationModel& m, double lambda_p) {
  Prior prior{f, m.theta, m.omega.diagonal(), m.sigma_log, lambda_p};
  set_omega(prior, m.omega);  // full when the model has covariances
  if (m.error_model != PopulationErrorModel::proportional) prior.additive = true, prior.sigma0_MBq = m.sigma0_MBq;
  if (m.error_model == PopulationErrorModel::input) prior.b = 0, prior.sigma0_MBq = 1, prior.sd_y = VectorXd::Ones(1);
  return prior;
}

namespace {

void check_fit_input(const models::ExponentialFunction& f, const PopulationData& d, const std::string& voi_kind) {
  if (!population_function_supported(f.id()))
    throw_input_error("population kinetics of " + voi_kind, "the function", f.id(),
                      "a function with positive terms: E1p, E1, E2u or E2");
  if (d.t_h.size() < 2)
    throw_input_error("population kinetics of " + voi_kind, "the number of TACs", std::to_string(d.t_h.size()),
                      "at least 2 TACs (patients) of the VOI kind");
}

}  // namespace

PopulationModel fit_population_model(const models::ExponentialFunction& f, const PopulationData& d,
                                     double lambda_p, const PopulationOptions& o, const std::string& voi_kind) {
  check_fit_input(f, d, voi_kind);
  PopulationModel m;
  m.voi_kind = voi_kind;
  m.function = f.id();
  m.phi_names = population_parameter_names(f);
  m.n_patients = static_cast<int>(d.t_h.size());
  for (const auto& y : d.y_per_administered) m.n_observations += static_cast<int>(y.size());
  m.error_model = o.error_model;
  if (o.error_model != PopulationErrorModel::proportional && d.administered_MBq.size() != d.t_h.size())
    throw std::invalid_argument("fit_population_model: the " + to_string(o.error_model) +
                                " error model needs every TAC's administered activity");
  if (o.error_model == PopulationErrorModel::input && d.u_per_administered.size() != d.t_h.size())
    throw_input_error("population kinetics of " + voi_kind, "activity_u_MBq",
                      std::to_string(d.u_per_administered.size()) + " of " + std::to_string(d.t_h.size()) +
                          " TACs with it",
                      "every point's standard uncertainty (activity_u_MBq > 0) for --error-model input");
  Prior prior{&f, initial_theta(f, d, lambda_p), VectorXd::Constant(f.n_parameters(), 0.09), 0.1, lambda_p};
  population_detail::set_error_model_start(prior, o.error_model, d);
  population_detail::estimate_population(prior, d, o, m);
  return m;
}

void population_detail::estimate_population(Prior prior, const PopulationData& d, const PopulationOptions& o,
                                            PopulationModel& m) {
  if (o.omega_structure == OmegaStructure::full) prior.omega_full = MatrixXd(prior.omega_diag.asDiagonal());
  std::vector<VectorXd> phis(d.t_h.size(), prior.theta);
  prior = run_em(prior, d, o, false, phis, m);
  if (o.sampled_e_step) {
    prior = run_em(prior, d, o, true, phis, m);
    m.e_step = "sampled";
  }
  finish(prior, d, phis, o.threads, m);
}

PopulationModel refine_population_model(const PopulationModel& laplace, const PopulationData& d, double lambda_p,
                                        const PopulationOptions& o) {
  const auto* f = models::find_exponential(laplace.function);
  if (!f) throw std::invalid_argument("refine_population_model: unknown function " + laplace.function);
  check_fit_input(*f, d, laplace.voi_kind);
  PopulationModel m = laplace;
  Prior prior = population_detail::model_prior(f, laplace, lambda_p);
  std::vector<VectorXd> phis(d.t_h.size(), prior.theta);
  prior = run_em(prior, d, o, true, phis, m);
  m.e_step = "sampled";
  finish(prior, d, phis, o.threads, m);
  return m;
}

std::map<std::string, PopulationData> population_data(const std::vector<TacSeries>& series,
                                                      const std::vector<double>& administered_MBq,
                                                      const std::string& path) {
  return population_data(series, administered_MBq, path, false);
}

std::map<std::string, PopulationData> population_data(const std::vector<TacSeries>& series,
                                                      const std::vector<double>& administered_MBq,
                                                      const std::string& path, bool nonpositive_allowed) {
  if (administered_MBq.size() != series.size())
    throw std::invalid_argument("population_data: " + std::to_string(administered_MBq.size()) +
                                " administered activities for " + std::to_string(series.size()) + " TACs");
  std::map<std::string, PopulationData> out;
  for (size_t i = 0; i < series.size(); ++i) {
    const auto& s = series[i];
    const double a0 = administered_MBq[i];
    if (!(std::isfinite(a0) && a0 > 0))
      throw_input_error(path + ": " + s.where(), "the administered activity", format_number(a0),
                        "an activity > 0 MBq (population amplitudes are per administered activity)");
    for (Eigen::Index j = 0; j < s.activity_MBq.size(); ++j)
      if (!(s.activity_MBq(j) > 0) && !(nonpositive_allowed && std::isfinite(s.activity_MBq(j))))
        throw_input_error(path + ": " + s.where() + (j < static_cast<Eigen::Index>(s.lines.size())
                                                         ? ", line " + std::to_string(s.lines[static_cast<size_t>(j)])
                                                         : std::string()),
                          "activity_MBq", format_number(s.activity_MBq(j)),
                          "activities > 0 for population kinetics (the logarithm of the activity is modelled)");
    if (s.time_h.size() < 1) continue;
    auto& d = out[population_voi_kind(s.voi)];
    d.t_h.push_back(s.time_h);
    d.y_per_administered.push_back(s.activity_MBq / a0);
    d.administered_MBq.push_back(a0);
    if (s.activity_u_MBq.size() == s.activity_MBq.size()) d.u_per_administered.push_back(s.activity_u_MBq / a0);
  }
  return out;
}

const PopulationModel* find_population_model(const std::vector<PopulationModel>& models, const std::string& voi) {
  const std::string kind = population_voi_kind(voi);
  for (const auto& m : models)
    if (m.voi_kind == kind) return &m;
  return nullptr;
}

}  // namespace lutdose
