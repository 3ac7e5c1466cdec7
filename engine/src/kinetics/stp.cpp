#include "lutdose/nan.h"
#include "lutdose/kinetics/stp.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <unsupported/Eigen/NonLinearOptimization>
#include <utility>

#include "lutdose/io/csv.h"
#include "lutdose/error.h"
#include "lutdose/planning/planning.h"  // target_matches: the one meaning of "kidney*" in lutdose

namespace lutdose {

using Eigen::Index;
using Eigen::MatrixXd;
using Eigen::VectorXd;
using models::ExponentialFunction;

namespace {

constexpr double INF = std::numeric_limits<double>::infinity();

// Range of the log-transformed rate increments (models::RATE_THETA_MIN/MAX).
constexpr double THETA_MIN = models::RATE_THETA_MIN;
constexpr double THETA_MAX = models::RATE_THETA_MAX;
using models::RATE_AT_BOUND_PER_H;  // [1/h], models/exponential.h
// Relative pivot threshold for the rank of the column-scaled stacked Jacobian.
constexpr double RANK_THRESHOLD = 1e-9;
// Starting rate of the slowest component when neither a prior nor two points give one [1/h]
// (a biological half-life of about 70 h).
constexpr double DEFAULT_START_RATE_PER_H = 0.01;

// ---- argument checks: "FUNCTION: FIELD is 'VALUE'; expected ..." ----
void require_positive(const char* where, const char* field, double x, const char* expected) {
  if (!(std::isfinite(x) && x > 0)) throw_input_error(where, field, format_number(x), expected);
}
void require_non_negative(const char* where, const char* field, double x, const char* expected) {
  if (!(std::isfinite(x) && x >= 0)) throw_input_error(where, field, format_number(x), expected);
}

bool is_rate(const ExponentialFunction& f, Index j) { return j >= f.n_amplitudes(); }

int parameter_index(const ExponentialFunction& f, const std::string& name) {
  const auto names = f.parameter_names();
  for (size_t j = 0; j < names.size(); ++j)
    if (names[j] == name) return static_cast<int>(j);
  return -1;
}

std::string joined_names(const ExponentialFunction& f) {
  std::string s;
  for (const auto& n : f.parameter_names()) s += (s.empty() ? "" : ", ") + n;
  return s;
}

// Rates from log increments (the parameterisation of fit_function, models/exponential.h).
VectorXd rates_from_theta(const VectorXd& theta) { return models::rates_from_log_increments(theta); }
VectorXd theta_from_rates(const VectorXd& lambda) { return models::log_increments_from_rates(lambda); }

// The MAP problem: data, priors and the map x = (A, theta) -> p = (A, lambda).
struct MapProblem {
  const ExponentialFunction& f;
  const VectorXd& t;
  const VectorXd& y;
  VectorXd s;          // 1/sigma_i
  VectorXd mean, sd;   // per parameter, NaN where flat
  std::vector<Index> prior_index;  // parameters with a prior
  double lambda_p;

  Index n_amplitudes() const { return f.n_amplitudes(); }
  Index n_parameters() const { return f.n_parameters(); }
  Index n_residuals() const { return t.size() + static_cast<Index>(prior_index.size()); }

  VectorXd natural(const VectorXd& x) const {
    const Index na = n_amplitudes();
    VectorXd p(x.size());
    p << x.head(na), rates_from_theta(x.tail(x.size() - na));
    return p;
  }

  // dp/dx (K x K): identity on the amplitudes, d lambda_r / d theta_m = e^theta_m for m <= r
  // (zero where theta is clamped: the map is flat there).
  MatrixXd dp_dx(const VectorXd& x) const {
    const Index K = x.size(), na = n_amplitudes();
    MatrixXd d = MatrixXd::Zero(K, K);
    d.topLeftCorner(na, na).setIdentity();
    for (Index m = na; m < K; ++m) {
      const double clamped = std::clamp(x(m), THETA_MIN, THETA_MAX);
      if (clamped != x(m)) continue;
      for (Index r = m; r < K; ++r) d(r, m) = std::exp(clamped);
    }
    return d;
  }

  // Stacked residuals: data (f(t_i) - y_i)/sigma_i, then priors (p_j - mean_j)/sd_j.
  VectorXd residuals(const VectorXd& p) const {
    VectorXd r(n_residuals());
    r.head(t.size()) = s.cwiseProduct(f.evaluate(t, p, lambda_p) - y);
    for (size_t k = 0; k < prior_index.size(); ++k) {
      const Index j = prior_index[k];
      r(t.size() + static_cast<Index>(k)) = (p(j) - mean(j)) / sd(j);
    }
    return r;
  }

  // Jacobian of the stacked residuals with respect to the natural parameters.
  MatrixXd jacobian_natural(const VectorXd& p) const {
    MatrixXd j = MatrixXd::Zero(n_residuals(), n_parameters());
    j.topRows(t.size()) = s.asDiagonal() * f.jacobian(t, p, lambda_p);
    for (size_t k = 0; k < prior_index.size(); ++k) {
      const Index jj = prior_index[k];
      j(t.size() + static_cast<Index>(k), jj) = 1.0 / sd(jj);
    }
    return j;
  }

  // Amplitudes for given rates: linear least squares on the stacked rows (data, amplitude priors).
  VectorXd amplitudes(const VectorXd& lambda) const {
    const Index na = n_amplitudes(), n = t.size();
    std::vector<Index> amp_priors;
    for (Index j : prior_index)
      if (j < na) amp_priors.push_back(j);
    const Index m = n + static_cast<Index>(amp_priors.size());
    MatrixXd a = MatrixXd::Zero(m, na);
    VectorXd b = VectorXd::Zero(m);
    a.topRows(n) = s.asDiagonal() * f.basis(t, lambda, lambda_p);
    b.head(n) = s.cwiseProduct(y);
    for (size_t k = 0; k < amp_priors.size(); ++k) {
      const Index row = n + static_cast<Index>(k), j = amp_priors[k];
      a(row, j) = 1.0 / sd(j);
      b(row) = mean(j) / sd(j);
    }
    return Eigen::ColPivHouseholderQR<MatrixXd>(a).solve(b);
  }
};

struct MapFunctor {
  using Scalar = double;
  enum { InputsAtCompileTime = Eigen::Dynamic, ValuesAtCompileTime = Eigen::Dynamic };
  using InputType = VectorXd;
  using ValueType = VectorXd;
  using JacobianType = MatrixXd;

  const MapProblem& problem;
  mutable int evaluations = 0;

  int inputs() const { return static_cast<int>(problem.n_parameters()); }
  int values() const { return static_cast<int>(problem.n_residuals()); }

  int operator()(const VectorXd& x, VectorXd& fvec) const {
    ++evaluations;
    fvec = problem.residuals(problem.natural(x));
    if (!fvec.allFinite()) fvec.setConstant(1e30);
    return 0;
  }

  int df(const VectorXd& x, MatrixXd& fjac) const {
    fjac = problem.jacobian_natural(problem.natural(x)) * problem.dp_dx(x);
    if (!fjac.allFinite()) fjac.setZero();
    return 0;
  }
};

// Starting rates: prior means where given; else, for the slowest rate, the log-linear slope of
// the points (two or more positive ones), and faster rates spread by factors of 5.
VectorXd base_rates(const MapProblem& pr) {
  const Index na = pr.n_amplitudes(), nr = pr.n_parameters() - na;
  VectorXd lambda(nr);
  double slope_rate = DEFAULT_START_RATE_PER_H;
  {
    std::vector<std::pair<double, double>> pts;
    for (Index i = 0; i < pr.t.size(); ++i)
      if (pr.y(i) > 0) pts.emplace_back(pr.t(i), std::log(pr.y(i)));
    if (pts.size() >= 2) {
      double st = 0, sl = 0, stt = 0, stl = 0;
      for (const auto& [ti, li] : pts) st += ti, sl += li, stt += ti * ti, stl += ti * li;
      const double m = static_cast<double>(pts.size());
      const double den = m * stt - st * st;
      if (den > 0) slope_rate = std::max(-(m * stl - st * sl) / den - pr.lambda_p, 1e-4);
    }
  }
  double prev = 0.0;
  for (Index r = 0; r < nr; ++r) {
    const Index j = na + r;
    double v = std::isnan(pr.mean(j)) ? (r == 0 ? slope_rate : 5.0 * prev) : pr.mean(j);
    if (!(v > prev)) v = prev > 0 ? 1.5 * prev : DEFAULT_START_RATE_PER_H;
    lambda(r) = v;
    prev = v;
  }
  return lambda;
}

// Inverse of J^T J through a column-scaled, column-pivoted QR (as fit_function does); NaN if
// rank deficient. Returns the rank.
int posterior_covariance(const MatrixXd& j, MatrixXd& cov) {
  const Index K = j.cols();
  VectorXd scale(K);
  for (Index c = 0; c < K; ++c) {
    const double nrm = j.col(c).norm();
    scale(c) = nrm > 0 ? 1.0 / nrm : 1.0;
  }
  Eigen::ColPivHouseholderQR<MatrixXd> qr(j * scale.asDiagonal());
  qr.setThreshold(RANK_THRESHOLD);
  const int rank = static_cast<int>(qr.rank());
  cov = MatrixXd::Constant(K, K, NaN);
  if (rank == K) {
    const MatrixXd r = qr.matrixR().topLeftCorner(K, K).triangularView<Eigen::Upper>();
    const MatrixXd r_inv = r.triangularView<Eigen::Upper>().solve(MatrixXd::Identity(K, K));
    const MatrixXd c = qr.colsPermutation() * (r_inv * r_inv.transpose()) *
                       qr.colsPermutation().transpose();
    cov = scale.asDiagonal() * c * scale.asDiagonal();
  }
  return rank;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

double tia_hanscheid(double t_h, double activity_MBq) {
  require_positive("tia_hanscheid", "t_h", t_h, "a finite time > 0 h");
  require_non_negative("tia_hanscheid", "activity_MBq", activity_MBq, "a finite activity >= 0 MBq");
  return activity_MBq * 2.0 * t_h / std::log(2.0);
}

double hanscheid_ratio(double r) {
  require_positive("hanscheid_ratio", "r", r, "a finite ratio t/T_eff > 0");
  return 2.0 * r * std::exp2(-r);
}

double tia_madsen(double t_h, double activity_MBq, double lambda_eff_pop_per_h) {
  require_positive("tia_madsen", "t_h", t_h, "a finite time > 0 h");
  require_non_negative("tia_madsen", "activity_MBq", activity_MBq, "a finite activity >= 0 MBq");
  require_positive("tia_madsen", "lambda_eff_pop_per_h", lambda_eff_pop_per_h,
                   "a finite effective decay constant > 0 1/h");
  return activity_MBq * std::exp(lambda_eff_pop_per_h * t_h) / lambda_eff_pop_per_h;
}

double madsen_optimal_time_h(double lambda_eff_pop_per_h) {
  require_positive("madsen_optimal_time_h", "lambda_eff_pop_per_h", lambda_eff_pop_per_h,
                   "a finite effective decay constant > 0 1/h");
  return 1.0 / lambda_eff_pop_per_h;
}

double madsen_ratio(double t_h, double lambda_eff_true_per_h, double lambda_eff_pop_per_h) {
  require_positive("madsen_ratio", "t_h", t_h, "a finite time > 0 h");
  require_positive("madsen_ratio", "lambda_eff_true_per_h", lambda_eff_true_per_h,
                   "a finite effective decay constant > 0 1/h");
  require_positive("madsen_ratio", "lambda_eff_pop_per_h", lambda_eff_pop_per_h,
                   "a finite effective decay constant > 0 1/h");
  return lambda_eff_true_per_h / lambda_eff_pop_per_h *
         std::exp((lambda_eff_pop_per_h - lambda_eff_true_per_h) * t_h);
}

double stp_population_u(double t_h, double activity_MBq, double activity_u_MBq, double c_h,
                        double lambda_mean_per_h, double lambda_sd_per_h) {
  const char* w = "stp_population_u";
  require_positive(w, "t_h", t_h, "a finite time > 0 h");
  require_non_negative(w, "activity_MBq", activity_MBq, "a finite activity >= 0 MBq");
  require_non_negative(w, "activity_u_MBq", activity_u_MBq, "a finite uncertainty >= 0 MBq");
  require_positive(w, "c_h", c_h, "a finite TIA per activity > 0 h");
  require_positive(w, "lambda_mean_per_h", lambda_mean_per_h, "a finite effective decay constant > 0 1/h");
  require_non_negative(w, "lambda_sd_per_h", lambda_sd_per_h, "a finite standard deviation >= 0 1/h");
  // g = e^{lambda t}/lambda = e^h with h = lambda t - ln lambda, d = h' = t - 1/lambda:
  // g' = g d, g'' = g (d^2 + 1/lambda^2), g''' = g (d^3 + 3 d/lambda^2 - 2/lambda^3)
  const double l = lambda_mean_per_h, s2 = lambda_sd_per_h * lambda_sd_per_h;
  const double g = std::exp(l * t_h) / l, d = t_h - 1.0 / l;
  const double g1 = g * d, g2 = g * (d * d + 1.0 / (l * l));
  const double g3 = g * (d * d * d + 3 * d / (l * l) - 2 / (l * l * l));
  const double mean_g = g + g2 * s2 / 2.0;
  // GUM 5.1.2 note: Var = g'^2 s^2 + (g''^2/2 + g' g''') s^4
  const double var_g = g1 * g1 * s2 + (g2 * g2 / 2.0 + g1 * g3) * s2 * s2;
  const double bias = mean_g - c_h;
  return std::sqrt(activity_MBq * activity_MBq * (var_g + bias * bias) +
                   c_h * c_h * activity_u_MBq * activity_u_MBq);
}

StpEstimate tia_population_curve(double t_h, double activity_MBq, const ExponentialFunction& f,
                                 const VectorXd& p, double lambda_p_per_h, const MatrixXd& cov,
                                 double activity_u_MBq) {
  const char* w = "tia_population_curve";
  require_positive(w, "t_h", t_h, "a finite time > 0 h");
  require_non_negative(w, "activity_MBq", activity_MBq, "a finite activity >= 0 MBq");
  require_positive(w, "lambda_p_per_h", lambda_p_per_h, "a finite physical decay constant > 0 1/h");
  require_non_negative(w, "activity_u_MBq", activity_u_MBq, "a finite uncertainty >= 0 MBq");
  const Index K = f.n_parameters();
  if (p.size() != K)
    throw_input_error(w, "the number of population parameters", std::to_string(p.size()),
                      std::to_string(K) + " for " + f.id() + " (" + joined_names(f) + ")");
  const auto names = f.parameter_names();
  for (Index j = 0; j < K; ++j)
    if (!std::isfinite(p(j)) || (is_rate(f, j) && p(j) < 0))
      throw_input_error(w, "population parameter " + names[static_cast<size_t>(j)],
                        format_number(p(j)),
                        is_rate(f, j) ? "a finite rate >= 0 1/h" : "a finite amplitude");
  if (cov.size() != 0 && (cov.rows() != K || cov.cols() != K || !cov.allFinite()))
    throw_input_error(w, "population_covariance",
                      std::to_string(cov.rows()) + " x " + std::to_string(cov.cols()),
                      "an empty matrix or a finite " + std::to_string(K) + " x " + std::to_string(K) +
                          " matrix");

  const VectorXd tv = VectorXd::Constant(1, t_h);
  const double ft = f.evaluate(tv, p, lambda_p_per_h)(0);
  const double integral = f.integral(p, lambda_p_per_h, INF);
  if (!(ft > 0))
    throw_input_error(w, "the population curve " + f.id() + " at t_h = " + format_number(t_h),
                      format_number(ft), "a value > 0 (a curve that is positive at the imaging time)");
  if (!(integral > 0 && std::isfinite(integral)))
    throw_input_error(w, "the integral of the population curve " + f.id(), format_number(integral),
                      "a finite value > 0");

  StpEstimate e;
  e.tia_per_activity_h = integral / ft;
  e.tia_MBq_h = activity_MBq * e.tia_per_activity_h;
  e.tia_u_activity_MBq_h = activity_u_MBq * e.tia_per_activity_h;
  if (cov.size() != 0) {
    // d(I/f(t))/dp = (dI/dp - (I/f(t)) df(t)/dp) / f(t)
    auto gradient = [&](const VectorXd& q) -> VectorXd {
      const double fq = f.evaluate(tv, q, lambda_p_per_h)(0);
      const double ratio = f.integral(q, lambda_p_per_h, INF) / fq;
      const VectorXd g_i = f.integral_gradient(q, lambda_p_per_h, INF);
      const VectorXd g_f = f.jacobian(tv, q, lambda_p_per_h).row(0).transpose();
      return activity_MBq * (g_i - ratio * g_f) / fq;
    };
    const VectorXd g = gradient(p);
    // Second order for Gaussian parameters: var = g^T C g + tr(H C H C)/2 (the first-order term
    // alone vanishes where dTIA/dlambda = 0, at t = 1/lambda_eff for E1). H by central differences
    // of the analytic gradient, step 1e-4 relative (truncation ~1e-8, rounding ~1e-12).
    MatrixXd hess(K, K);
    for (Index j = 0; j < K; ++j) {
      const double h = 1e-4 * std::max(std::abs(p(j)), 1e-6);
      VectorXd hi = p, lo = p;
      hi(j) += h;
      lo(j) -= h;
      hess.col(j) = (gradient(hi) - gradient(lo)) / (2 * h);
    }
    hess = 0.5 * (hess + hess.transpose()).eval();
    const MatrixXd hc = hess * cov;
    e.tia_u_population_MBq_h = std::sqrt(std::max(g.dot(cov * g) + 0.5 * (hc * hc).trace(), 0.0));
    e.tia_u_MBq_h = std::hypot(e.tia_u_population_MBq_h, e.tia_u_activity_MBq_h);
  }
  return e;
}

// ---------------------------------------------------------------------------------------------

std::vector<PopulationKinetics> load_population_kinetics(const std::string& data_dir) {
  return load_population_kinetics_file(data_dir + "/kinetics/population_kinetics.csv");
}

std::vector<PopulationKinetics> load_population_kinetics_file(const std::string& path) {
  const CsvTable t = read_csv(path);
  const auto [cp, cf, cn, cm, cs, cr] =
      t.require<6>({"target_pattern", "function", "parameter", "mean", "sd", "source"});
  std::vector<PopulationKinetics> out;
  std::map<std::pair<std::string, std::string>, size_t> index;
  for (const auto& row : t.rows) {
    const std::string where = t.path + ":" + std::to_string(row.line);
    auto cell = [&](size_t c) { return trim(row.cells[c]); };
    const std::string pattern = cell(cp), id = cell(cf), name = cell(cn);
    if (pattern.empty()) throw_input_error(where, "target_pattern", "", "a target name or 'name*'");
    const auto* f = models::find_exponential(id);
    if (!f) {
      std::string ids;
      for (const auto& i : models::exponential_ids()) ids += (ids.empty() ? "" : ", ") + i;
      throw_input_error(where, "function", id, "one of " + ids);
    }
    const int j = parameter_index(*f, name);
    if (j < 0) throw_input_error(where, "parameter", name, "a parameter of " + id + ": " + joined_names(*f));
    ParameterPrior prior;
    prior.parameter = name;
    prior.source = cell(cr);
    const bool rate = is_rate(*f, j);
    if (!parse_double(cell(cm), prior.mean) || !std::isfinite(prior.mean) || (rate && prior.mean < 0))
      throw_input_error(where, "mean", cell(cm), rate ? "a finite rate >= 0 1/h" : "a finite number");
    if (!parse_double(cell(cs), prior.sd) || !std::isfinite(prior.sd) || !(prior.sd > 0))
      throw_input_error(where, "sd", cell(cs), "a finite standard deviation > 0");
    auto [it, fresh] = index.emplace(std::make_pair(pattern, id), out.size());
    if (fresh) out.push_back({pattern, id, {}, where});
    auto& entry = out[it->second];
    for (const auto& other : entry.priors)
      if (other.parameter == name)
        throw_input_error(where, "parameter", name,
                          "one row per parameter of '" + pattern + "' " + id + " (first at " +
                              entry.where + ")");
    entry.priors.push_back(prior);
  }
  return out;
}

const PopulationKinetics* find_population_kinetics(const std::vector<PopulationKinetics>& table,
                                                   const std::string& target,
                                                   const std::string& function) {
  const PopulationKinetics* best = nullptr;
  for (const auto& e : table) {
    if (!function.empty() && e.function != function) continue;
    if (e.target_pattern == target) return &e;
    if (target_matches(e.target_pattern, target) &&
        (best == nullptr || e.target_pattern.size() > best->target_pattern.size()))
      best = &e;
  }
  return best;
}

// ---------------------------------------------------------------------------------------------

namespace {

// The data of a MAP fit: n >= 1 points, finite times >= 0, activities >= 0 and sigmas > 0.
void check_prior_fit_data(const std::string& w, const VectorXd& t, const VectorXd& y, const VectorXd& sigma,
                          double lambda_p) {
  const Index n = t.size();
  if (n < 1) throw_input_error(w, "the number of points", "0", "at least 1");
  if (y.size() != n || sigma.size() != n)
    throw_input_error(w, "the sizes of a_MBq and sigma_MBq",
                      std::to_string(y.size()) + " and " + std::to_string(sigma.size()),
                      std::to_string(n) + " each (one per time point)");
  require_positive(w.c_str(), "lambda_p_per_h", lambda_p, "a finite physical decay constant > 0 1/h");
  for (Index i = 0; i < n; ++i) {
    const std::string k = "[" + std::to_string(i) + "]";
    if (!(std::isfinite(t(i)) && t(i) >= 0))
      throw_input_error(w, "t_h" + k, format_number(t(i)), "a finite time >= 0 h");
    if (!(std::isfinite(y(i)) && y(i) >= 0))
      throw_input_error(w, "a_MBq" + k, format_number(y(i)), "a finite activity >= 0 MBq");
    if (!(std::isfinite(sigma(i)) && sigma(i) > 0))
      throw_input_error(w, "sigma_MBq" + k, format_number(sigma(i)), "a finite uncertainty > 0 MBq");
  }
}

// The priors into fit.prior_mean and fit.prior_sd (NaN: no prior), each checked; returns the
// indices of the parameters with a prior, sorted.
std::vector<Index> set_priors(const ExponentialFunction& f, const std::vector<ParameterPrior>& priors,
                              const std::string& w, PriorFit& fit) {
  const Index K = f.n_parameters();
  fit.prior_mean = VectorXd::Constant(K, NaN);
  fit.prior_sd = VectorXd::Constant(K, NaN);
  std::vector<Index> prior_index;
  for (const auto& pr : priors) {
    const int j = parameter_index(f, pr.parameter);
    if (j < 0) throw_input_error(w, "prior parameter", pr.parameter, "a parameter of " + f.id() + ": " + joined_names(f));
    if (!std::isnan(fit.prior_mean(j)))
      throw_input_error(w, "prior parameter", pr.parameter, "one prior per parameter");
    if (!std::isfinite(pr.mean) || (is_rate(f, j) && pr.mean < 0))
      throw_input_error(w, "prior mean of " + pr.parameter, format_number(pr.mean),
                        is_rate(f, j) ? "a finite rate >= 0 1/h" : "a finite number");
    if (!(std::isfinite(pr.sd) && pr.sd > 0))
      throw_input_error(w, "prior sd of " + pr.parameter, format_number(pr.sd), "a finite standard deviation > 0");
    fit.prior_mean(j) = pr.mean;
    fit.prior_sd(j) = pr.sd;
    prior_index.push_back(j);
  }
  std::sort(prior_index.begin(), prior_index.end());
  return prior_index;
}

// Levenberg-Marquardt (Eigen's MINPACK port) from a few starts: the rates at the prior means
// (or from the data), and those scaled by 0.3 and 3; the best objective is kept. Returns its x
// (amplitudes, log-rate increments) with its cost (INF: none finite) and convergence.
VectorXd best_map_start(const MapProblem& problem, PriorFit& fit, double& best_cost, bool& best_converged) {
  const Index K = problem.f.n_parameters();
  const VectorXd base = base_rates(problem);
  VectorXd best_x;
  best_cost = INF;
  best_converged = false;
  for (double factor : {1.0, 0.3, 3.0}) {
    ++fit.starts;
    const VectorXd lambda0 = factor * base;
    VectorXd x(K);
    x << problem.amplitudes(lambda0), theta_from_rates(lambda0);
    bool converged = true;
    if (x.allFinite()) {
      MapFunctor functor{problem};
      Eigen::LevenbergMarquardt<MapFunctor> lm(functor);
      lm.parameters.ftol = 1e-14;
      lm.parameters.xtol = 1e-12;
      lm.parameters.maxfev = static_cast<int>(400 * (K + 1));
      const auto status = lm.minimize(x);
      converged = status != Eigen::LevenbergMarquardtSpace::TooManyFunctionEvaluation &&
                  status != Eigen::LevenbergMarquardtSpace::ImproperInputParameters;
      fit.evaluations += functor.evaluations;
    }
    const VectorXd r = problem.residuals(problem.natural(x));
    const double cost = r.allFinite() ? r.squaredNorm() : INF;
    if (cost < best_cost) {
      best_cost = cost;
      best_x = x;
      best_converged = converged;
    }
  }
  return best_x;
}

// Quality flags of the MAP estimate p.
void add_prior_fit_flags(const ExponentialFunction& f, const VectorXd& p, PriorFit& fit) {
  const Index K = f.n_parameters(), na = f.n_amplitudes();
  for (Index j = 0; j < na; ++j)
    if (p(j) < 0) fit.flags.push_back("negative_amplitude:" + fit.parameter_names[static_cast<size_t>(j)]);
  double prev = 0.0;
  for (Index j = na; j < K; ++j) {
    if (p(j) - prev < RATE_AT_BOUND_PER_H)
      fit.flags.push_back((j == na ? "rate_at_lower_bound:" : "rates_coincide:") +
                          fit.parameter_names[static_cast<size_t>(j)]);
    prev = p(j);
  }
  if (!(fit.tia_MBq_h > 0) || !std::isfinite(fit.tia_MBq_h)) fit.flags.push_back("tia_not_positive");
}

}  // namespace

PriorFit fit_with_prior(const ExponentialFunction& f, const VectorXd& t, const VectorXd& y,
                        const VectorXd& sigma, double lambda_p, const std::vector<ParameterPrior>& priors) {
  const std::string w = "fit_with_prior (" + f.id() + ")";
  const Index n = t.size(), K = f.n_parameters();
  check_prior_fit_data(w, t, y, sigma, lambda_p);

  PriorFit fit;
  fit.function = f.id();
  fit.n_points = static_cast<int>(n);
  fit.n_parameters = static_cast<int>(K);
  fit.parameter_names = f.parameter_names();
  const std::vector<Index> prior_index = set_priors(f, priors, w, fit);
  fit.n_priors = static_cast<int>(prior_index.size());
  if (n + fit.n_priors < K)
    throw_input_error(w, "the number of points plus priors",
                      std::to_string(n) + " + " + std::to_string(fit.n_priors),
                      "at least the " + std::to_string(K) + " parameters of " + f.id() +
                          " (add points or priors)");

  const MapProblem problem{f, t, y, sigma.cwiseInverse(), fit.prior_mean, fit.prior_sd, prior_index, lambda_p};
  double best_cost = INF;
  bool best_converged = false;
  const VectorXd best_x = best_map_start(problem, fit, best_cost, best_converged);
  if (!std::isfinite(best_cost)) {
    fit.flags.push_back("not_converged");
    return fit;
  }

  const VectorXd p = problem.natural(best_x);
  fit.fitted = true;
  fit.converged = best_converged;
  if (!best_converged) fit.flags.push_back("not_converged");
  fit.parameters = p;
  fit.fitted_MBq = f.evaluate(t, p, lambda_p);
  fit.data_residuals = (y - fit.fitted_MBq).cwiseProduct(problem.s);
  fit.prior_residuals = (p - fit.prior_mean).cwiseQuotient(fit.prior_sd);
  fit.chi2_data = fit.data_residuals.squaredNorm();
  fit.penalty = 0.0;
  for (Index j : prior_index) fit.penalty += fit.prior_residuals(j) * fit.prior_residuals(j);
  fit.objective = fit.chi2_data + fit.penalty;

  fit.rank = posterior_covariance(problem.jacobian_natural(p), fit.covariance);
  if (fit.rank < K) fit.flags.push_back("rank_deficient");

  fit.tia_MBq_h = f.integral(p, lambda_p, INF);
  const VectorXd g = f.integral_gradient(p, lambda_p, INF);
  fit.tia_u_MBq_h = std::sqrt(g.dot(fit.covariance * g));
  add_prior_fit_flags(f, p, fit);
  return fit;
}

PriorFit fit_with_prior(const PopulationKinetics& population, const VectorXd& t_h, const VectorXd& a_MBq,
                        const VectorXd& sigma_MBq, double lambda_p_per_h) {
  const auto* f = models::find_exponential(population.function);
  if (!f)
    throw_input_error(population.where.empty() ? "fit_with_prior" : population.where, "function",
                      population.function, "a function of the exponential family");
  return fit_with_prior(*f, t_h, a_MBq, sigma_MBq, lambda_p_per_h, population.priors);
}

}  // namespace lutdose
