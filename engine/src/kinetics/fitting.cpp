#include "lutdose/nan.h"
#include "lutdose/kinetics/fitting.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <initializer_list>
#include <boost/math/distributions/chi_squared.hpp>
#include <boost/math/distributions/fisher_f.hpp>
#include <ceres/tiny_solver.h>
#include <stdexcept>
#include <type_traits>
#include <variant>

#include "lutdose/error.h"

namespace lutdose {

using models::ExponentialFunction;
using Eigen::MatrixXd;
using Eigen::VectorXd;

std::string to_string(ErrorModel m) {
  switch (m) {
    case ErrorModel::constant: return "constant";
    case ErrorModel::proportional: return "proportional";
    case ErrorModel::proportional_model: return "proportional-model";
    case ErrorModel::combined: return "combined";
    case ErrorModel::input: return "input";
  }
  return "?";
}

ErrorModel parse_error_model(const std::string& s) {
  if (s == "constant") return ErrorModel::constant;
  if (s == "proportional") return ErrorModel::proportional;
  if (s == "proportional-model") return ErrorModel::proportional_model;
  if (s == "combined") return ErrorModel::combined;
  // "poisson": the per-point uncertainty of case-file counts (sqrt(C) through the quantification),
  // which the quantification step puts in activity_u_MBq: the same weights as "input".
  if (s == "input" || s == "poisson") return ErrorModel::input;
  throw_input_error("--error-model", "the error model", s,
                    "constant, proportional, proportional-model, combined, poisson or input");
}

std::string error_model_label(const FitOptions& o) {
  return o.error_model_name.empty() ? to_string(o.error_model) : o.error_model_name;
}

std::string to_string(Integration i) { return i == Integration::analytic ? "analytic" : "trapezoid"; }
std::string to_string(TrapezoidBody b) { return b == TrapezoidBody::linear ? "linear" : "log"; }
std::string to_string(TrapezoidTail t) { return t == TrapezoidTail::physical ? "physical" : "fit"; }
std::string to_string(Kinetics k) { return k == Kinetics::individual ? "individual" : "previous-cycles"; }
std::optional<Kinetics> parse_kinetics(const std::string& text) {
  for (const Kinetics k : {Kinetics::individual, Kinetics::previous_cycles})
    if (to_string(k) == text) return k;
  return std::nullopt;
}

double runs_test_p_value(int runs, int n1, int n2) {
  // P(R <= runs) under random order: P(R = 2k) = 2 C(n1-1,k-1) C(n2-1,k-1) / C(n,n1),
  // P(R = 2k+1) = [C(n1-1,k-1) C(n2-1,k) + C(n1-1,k) C(n2-1,k-1)] / C(n,n1).
  if (n1 == 0 || n2 == 0) return 1.0;
  auto choose = [](int n, int k) {
    if (k < 0 || k > n) return 0.0;
    double c = 1;
    for (int i = 1; i <= k; ++i) c = c * (n - k + i) / i;
    return c;
  };
  const double total = choose(n1 + n2, n1);
  double p = 0;
  for (int r = 2; r <= runs; ++r) {
    const int k = r / 2;
    if (r % 2 == 0)
      p += 2 * choose(n1 - 1, k - 1) * choose(n2 - 1, k - 1);
    else
      p += choose(n1 - 1, k - 1) * choose(n2 - 1, k) + choose(n1 - 1, k) * choose(n2 - 1, k - 1);
  }
  return p / total;
}

std::string to_string(AiccParameterCount k) {
  return k == AiccParameterCount::fit_parameters ? "fit-parameters" : "fit-parameters+1";
}

std::string to_string(TrapezoidHead h) { return h == TrapezoidHead::linear ? "linear" : "constant"; }

namespace {

// Range of the log-transformed rate increments (models::RATE_THETA_MIN/MAX).
constexpr double THETA_MIN = models::RATE_THETA_MIN;
constexpr double THETA_MAX = models::RATE_THETA_MAX;
using models::RATE_AT_BOUND_PER_H;  // [1/h], models/exponential.h
// A component whose value at the first time point is below this fraction of its amplitude
// was over before the first measurement: its rate is not identifiable from the data.
constexpr double FAST_COMPONENT_FRACTION = 1e-6;
// Acceptance criteria of methods.md §2.4 (K12): every CV < 50 %, all |correlations| < 0.8.
constexpr double MAX_CV = 0.5;
constexpr double MAX_ABS_CORRELATION = 0.8;
// Weighted RSS below (RSS_FLOOR_RELATIVE * rms of weighted data)^2 per point is taken as equal to
// that floor in AIC: differences beyond the numerical resolution of the fit carry no information
// and would otherwise decide AICc ties between exact fits of noise-free data.
constexpr double RSS_FLOOR_RELATIVE = 1e-9;
// Relative pivot threshold for the rank of the column-scaled Jacobian.
constexpr double RANK_THRESHOLD = 1e-9;

VectorXd rates_from_theta(const VectorXd& theta) { return models::rates_from_log_increments(theta); }


// Variable projection: for given rates, amplitudes by weighted linear least squares.
struct Projection {
  const ExponentialFunction& f;
  const VectorXd& t;
  const VectorXd& s;   // sqrt of the weights, 1/sigma_i
  const VectorXd& sy;  // s .* y
  double lambda_p;

  // The weighted design Phi_w, the amplitudes a and a way to project onto the orthogonal
  // complement of Phi_w's columns. One or two amplitudes (the whole family): the normal equations
  // with an explicit 1x1/2x2 inverse, fast and exact enough while the columns are well apart;
  // else (near-collinear columns) a column-pivoting QR.
  struct Solved {
    MatrixXd phi_w;
    VectorXd a;
    MatrixXd g_inv;  // (Phi_w^T Phi_w)^-1 when the normal equations were used
    MatrixXd q1;     // orthonormal basis of the column space otherwise
    bool normal = false;
    // P_perp d = d - Phi_w (Phi_w^T Phi_w)^-1 Phi_w^T d
    MatrixXd project(const MatrixXd& d) const {
      if (normal) return d - phi_w * (g_inv * (phi_w.transpose() * d));
      return d - q1 * (q1.transpose() * d);
    }
  };

  Solved solve(const VectorXd& lambda, bool need_projector) const {
    Solved r;
    r.phi_w = f.basis(t, lambda, lambda_p);
    for (Eigen::Index i = 0; i < r.phi_w.rows(); ++i) r.phi_w.row(i) *= s(i);
    const Eigen::Index na = r.phi_w.cols();
    const MatrixXd g = r.phi_w.transpose() * r.phi_w;
    if (na == 1 && g(0, 0) > 0) {
      r.g_inv = MatrixXd::Constant(1, 1, 1.0 / g(0, 0));
      r.normal = true;
    } else if (na == 2) {
      const double det = g(0, 0) * g(1, 1) - g(0, 1) * g(1, 0);
      // a relative determinant above 1e-8 keeps the normal equations' error (cond^2 eps) small
      if (det > 1e-8 * g(0, 0) * g(1, 1)) {
        r.g_inv.resize(2, 2);
        r.g_inv << g(1, 1) / det, -g(0, 1) / det, -g(1, 0) / det, g(0, 0) / det;
        r.normal = true;
      }
    }
    if (r.normal) {
      r.a = r.g_inv * (r.phi_w.transpose() * sy);
    } else {
      Eigen::ColPivHouseholderQR<MatrixXd> qr(r.phi_w);
      r.a = qr.solve(sy);
      if (need_projector) {
        // thin Q (n x rank): the full Q would be n x n, memory quadratic in the points; rank 0 (a
        // design of zeros or non-finite values): no column (Eigen's product of an empty Identity
        // offsets a null pointer, undefined behaviour that UBSan reports)
        r.q1 = qr.rank() > 0 ? MatrixXd(qr.householderQ() * MatrixXd::Identity(r.phi_w.rows(), qr.rank()))
                             : MatrixXd(r.phi_w.rows(), 0);
      }
    }
    return r;
  }
};

// x * 0 is 0 for a finite x and NaN for an infinite or NaN one, so the sum is 0 exactly when every
// value is finite: one pass without a branch per value (the hot path checks every evaluation).
bool all_finite(const double* x, Eigen::Index n) {
  double zero = 0.0;
  for (Eigen::Index i = 0; i < n; ++i) zero += x[i] * 0.0;
  return zero == 0.0;
}

// Residuals and Kaufman Jacobian of the projected problem, for the Levenberg-Marquardt solver.
// The hot path of every fit: plain loops over raw arrays in buffers allocated once per functor (no
// heap traffic per evaluation; at 5 points Eigen's reductions cost more than their arithmetic),
// each exponential computed once per evaluation. The function's structure is copied into small
// fixed arrays: at most MAX_TERMS terms, MAX_AMPLITUDES amplitudes and MAX_RATES log-rate
// increments (the richest function of the family, E3u, has 3 terms, 2 amplitudes, 3 rates).
struct ProjectedFunctor {
  static constexpr int MAX_RATES = 3, MAX_TERMS = 3, MAX_AMPLITUDES = 2;
  const Projection* proj;  // rebound by rebind() when the weights change (reweighting)
  int n_inputs, n_values, n_terms, n_amplitudes;
  std::array<int, MAX_TERMS> term_rate{};  // rate index of term m, or -1 (physical decay only)
  std::array<std::array<double, MAX_AMPLITUDES>, MAX_TERMS> term_coefficient{};  // M(m, j)
  mutable int evaluations = 0;
  // scratch
  mutable MatrixXd e;        // e^{-k_m t_i} per term m
  mutable MatrixXd phi_w;    // weighted design
  mutable VectorXd a, lambda;
  mutable VectorXd rate_increments;  // e^theta_r (clamped): d lambda_r / d theta_m for r >= m
  mutable MatrixXd d_lambda;  // weighted d(Phi a)/d lambda_r
  mutable MatrixXd projected;  // its projection (Kaufman)
  mutable Eigen::Matrix2d g_inv;
  mutable std::array<double, MAX_RATES> last_theta{};  // the design above belongs to these rates
  mutable bool have_last = false, last_ok = false;    // (LM asks df at the point it has just evaluated)

  ProjectedFunctor(const Projection& p, int inputs, int values)
      : proj(&p), n_inputs(inputs), n_values(values), n_terms(static_cast<int>(p.f.terms().size())),
        n_amplitudes(p.f.n_amplitudes()) {
    if (inputs > MAX_RATES || n_terms > MAX_TERMS || n_amplitudes > MAX_AMPLITUDES || n_amplitudes < 1)
      throw std::logic_error("ProjectedFunctor: a function outside the exponential family's sizes");
    for (int m = 0; m < n_terms; ++m) {
      const auto& term = p.f.terms()[static_cast<size_t>(m)];
      term_rate[static_cast<size_t>(m)] = term.rate_index;
      for (int j = 0; j < n_amplitudes; ++j)
        term_coefficient[static_cast<size_t>(m)][static_cast<size_t>(j)] = term.amplitude_coefficients[static_cast<size_t>(j)];
    }
    const auto n = p.t.size();
    e.resize(n, n_terms);
    phi_w.resize(n, n_amplitudes);
    d_lambda.resize(n, inputs);
    projected.resize(n, inputs);
    lambda.resize(inputs);
    rate_increments.resize(inputs);
    a.resize(n_amplitudes);
  }

  // The same function and times with other weights: forgets the cached design.
  void rebind(const Projection& p) {
    proj = &p;
    have_last = false;
    last_ok = false;
  }

  // Fills e, phi_w and a for the rates of theta (n_inputs values); false when the normal
  // equations do not apply (near-collinear columns), then the general Projection::solve is used.
  bool evaluate_design(const double* theta) const {
    if (have_last && std::equal(theta, theta + n_inputs, last_theta.begin())) return last_ok;
    std::copy(theta, theta + n_inputs, last_theta.begin());
    have_last = true;
    last_ok = evaluate_design_uncached(theta);
    return last_ok;
  }

  bool evaluate_design_uncached(const double* theta) const {
    double acc = 0.0;  // models::rates_from_log_increments, in place (hot path)
    for (int r = 0; r < n_inputs; ++r) {
      rate_increments(r) = std::exp(std::clamp(theta[r], THETA_MIN, THETA_MAX));
      acc += rate_increments(r);
      lambda(r) = acc;
    }
    const Eigen::Index n = n_values;
    const double *t = proj->t.data(), *s = proj->s.data(), *sy = proj->sy.data();
    double* p0 = phi_w.col(0).data();
    double* p1 = n_amplitudes == 2 ? phi_w.col(1).data() : nullptr;
    std::fill(p0, p0 + n, 0.0);
    if (p1) std::fill(p1, p1 + n, 0.0);
    for (int m = 0; m < n_terms; ++m) {
      const int rate = term_rate[static_cast<size_t>(m)];
      const double k = proj->lambda_p + (rate >= 0 ? lambda(rate) : 0.0);
      const auto& c = term_coefficient[static_cast<size_t>(m)];
      double* e_m = e.col(m).data();
      for (Eigen::Index i = 0; i < n; ++i) {
        e_m[i] = std::exp(-k * t[i]);
        p0[i] += c[0] * e_m[i] * s[i];
        if (p1) p1[i] += c[1] * e_m[i] * s[i];
      }
    }
    if (!p1) {
      double g = 0, b = 0;
      for (Eigen::Index i = 0; i < n; ++i) g += p0[i] * p0[i], b += p0[i] * sy[i];
      if (!(g > 0)) return false;
      g_inv(0, 0) = 1.0 / g;
      a(0) = b / g;
      return true;
    }
    double g00 = 0, g11 = 0, g01 = 0, b0 = 0, b1 = 0;
    for (Eigen::Index i = 0; i < n; ++i) {
      g00 += p0[i] * p0[i], g11 += p1[i] * p1[i], g01 += p0[i] * p1[i];
      b0 += p0[i] * sy[i], b1 += p1[i] * sy[i];
    }
    const double det = g00 * g11 - g01 * g01;
    // a relative determinant above 1e-8 keeps the normal equations' error (cond^2 eps) small
    if (!(det > 1e-8 * g00 * g11)) return false;
    g_inv << g11 / det, -g01 / det, -g01 / det, g00 / det;
    a << g_inv(0, 0) * b0 + g_inv(0, 1) * b1, g_inv(1, 0) * b0 + g_inv(1, 1) * b1;
    return true;
  }

  // The weighted residuals Phi_w a - s y at theta into fvec (n_values); all 1e30 when not finite.
  void residuals(const double* theta, double* fvec) const {
    ++evaluations;
    const Eigen::Index n = n_values;
    const double* sy = proj->sy.data();
    if (evaluate_design(theta)) {
      const double* p0 = phi_w.col(0).data();
      if (n_amplitudes == 1) {
        for (Eigen::Index i = 0; i < n; ++i) fvec[i] = p0[i] * a(0) - sy[i];
      } else {
        const double* p1 = phi_w.col(1).data();
        for (Eigen::Index i = 0; i < n; ++i) fvec[i] = (p0[i] * a(0) + p1[i] * a(1)) - sy[i];
      }
    } else {
      const auto solved = proj->solve(lambda, false);
      Eigen::Map<VectorXd>(fvec, n) = solved.phi_w * solved.a - proj->sy;
    }
    if (!all_finite(fvec, n)) std::fill(fvec, fvec + n, 1e30);
  }
  void operator()(const VectorXd& theta, VectorXd& fvec) const { residuals(theta.data(), fvec.data()); }

  // Kaufman: projected = d_lambda projected onto the orthogonal complement of the design's column
  // space, d - Phi_w G^-1 Phi_w^T d (normal equations: G^-1 in g_inv).
  void project_design_derivatives() const {
    const Eigen::Index n = n_values;
    const double* p0 = phi_w.col(0).data();
    const double* p1 = n_amplitudes == 2 ? phi_w.col(1).data() : nullptr;
    for (int r = 0; r < n_inputs; ++r) {
      const double* d = d_lambda.col(r).data();
      double* out = projected.col(r).data();
      double q0 = 0, q1 = 0;  // Phi_w^T d
      for (Eigen::Index i = 0; i < n; ++i) q0 += p0[i] * d[i];
      if (!p1) {
        const double w0 = g_inv(0, 0) * q0;
        for (Eigen::Index i = 0; i < n; ++i) out[i] = d[i] - p0[i] * w0;
        continue;
      }
      for (Eigen::Index i = 0; i < n; ++i) q1 += p1[i] * d[i];
      const double w0 = g_inv(0, 0) * q0 + g_inv(0, 1) * q1, w1 = g_inv(1, 0) * q0 + g_inv(1, 1) * q1;
      for (Eigen::Index i = 0; i < n; ++i) out[i] = d[i] - (p0[i] * w0 + p1[i] * w1);
    }
  }

  // projected = the weighted d(Phi_w a)/d lambda_r, projected (Kaufman), at theta.
  void projected_rate_derivatives(const double* theta) const {
    if (evaluate_design(theta)) {  // also sets rate_increments for theta
      // d(Phi_w a)/d lambda_r = -sum_{terms with rate r} c_m t_i e^{-k_m t_i}, weighted
      const Eigen::Index n = n_values;
      const double *t = proj->t.data(), *s = proj->s.data();
      d_lambda.setZero();
      for (int m = 0; m < n_terms; ++m) {
        const int rate = term_rate[static_cast<size_t>(m)];
        if (rate < 0) continue;
        double c = 0;
        for (int j = 0; j < n_amplitudes; ++j) c += term_coefficient[static_cast<size_t>(m)][static_cast<size_t>(j)] * a(j);
        const double* e_m = e.col(m).data();
        double* d_r = d_lambda.col(rate).data();
        for (Eigen::Index i = 0; i < n; ++i) d_r[i] -= c * t[i] * e_m[i] * s[i];
      }
      project_design_derivatives();
    } else {
      const auto solved = proj->solve(lambda, true);
      VectorXd p(n_amplitudes + lambda.size());
      p << solved.a, lambda;
      MatrixXd dl = proj->f.jacobian(proj->t, p, proj->lambda_p).rightCols(lambda.size());
      for (Eigen::Index i = 0; i < dl.rows(); ++i) dl.row(i) *= proj->s(i);
      projected = solved.project(dl);
    }
  }

  // The Jacobian of the residuals by theta into fjac (n_values x n_inputs, column-major, column m
  // at fjac + m ld; rows n_values to ld - 1 set to zero); all zero when not finite, and a column is
  // zero where its theta is outside the clamped range (flat).
  void jacobian(const double* theta, double* fjac, Eigen::Index ld) const {
    projected_rate_derivatives(theta);
    const Eigen::Index n = n_values;
    for (int m = 0; m < n_inputs; ++m) {
      double* col = fjac + m * ld;
      std::fill(col, col + ld, 0.0);
      const double clamped = std::clamp(theta[m], THETA_MIN, THETA_MAX);
      if (clamped != theta[m]) continue;  // flat outside the range
      const double dlam = rate_increments(m);  // d lambda_r / d theta_m for r >= m
      for (int r = m; r < n_inputs; ++r) {
        const double* pr = projected.col(r).data();
        for (Eigen::Index i = 0; i < n; ++i) col[i] += dlam * pr[i];
      }
    }
    const Eigen::Index size = ld * n_inputs;
    if (!all_finite(fjac, size)) std::fill(fjac, fjac + size, 0.0);
  }
};

// Starting rates [1/h] of one fit: `count` rows of n_rates increasing rates, held in place so that
// choosing them allocates nothing. At most 16 rows (the 4 x 4 grid of fast half-lives) of at most 3
// rates (E3u, the richest function of the family).
struct StartingRates {
  static constexpr int MAX_STARTS = 16, MAX_RATES = 3;
  int count = 0, n_rates = 0;
  std::array<std::array<double, MAX_RATES>, MAX_STARTS> rates{};

  void add(std::initializer_list<double> r) {
    std::copy(r.begin(), r.end(), rates[static_cast<size_t>(count)].begin());
    ++count;
  }
  // The log-rate increments theta of row k.
  VectorXd theta(int k) const {
    return models::log_increments_from_rates(
        Eigen::Map<const VectorXd>(rates[static_cast<size_t>(k)].data(), n_rates));
  }
};

// Starting rates: curve stripping for the slowest rate, a grid for the faster ones.
StartingRates starting_rates(int n_rates, const VectorXd& t, const VectorXd& y, double lambda_p) {
  // Log-linear fit of the last (up to 3) positive points gives the slowest effective rate.
  std::array<std::pair<double, double>, 3> tail;
  size_t n_tail = 0;
  for (Eigen::Index i = t.size() - 1; i >= 0 && n_tail < 3; --i)
    if (y(i) > 0) tail[n_tail++] = {t(i), std::log(y(i))};
  double k_slow = lambda_p + 0.01;
  if (n_tail >= 2) {
    double st = 0, sl = 0, stt = 0, stl = 0;
    for (size_t k = 0; k < n_tail; ++k) {
      const auto& [ti, li] = tail[k];
      st += ti, sl += li, stt += ti * ti, stl += ti * li;
    }
    const double m = static_cast<double>(n_tail);
    const double den = m * stt - st * st;
    if (den > 0) k_slow = -(m * stl - st * sl) / den;
  }
  const double slow = std::max(k_slow - lambda_p, 1e-4);
  // Fast components: effective half-lives from half an hour to a day [h].
  const double fast_half_lives_h[] = {0.5, 2.0, 8.0, 30.0};
  StartingRates starts;
  starts.n_rates = n_rates;
  if (n_rates == 0) {
    starts.add({});
  } else if (n_rates == 1) {
    for (double factor : {1.0, 0.2, 5.0}) starts.add({std::max(slow * factor, 1e-5)});
  } else {
    for (double th : fast_half_lives_h) {
      const double fast = std::log(2.0) / th - lambda_p;
      if (fast <= 1.5 * slow) continue;
      if (n_rates == 2) {
        starts.add({slow, fast});
      } else {
        for (double th3 : fast_half_lives_h) {
          const double fastest = std::log(2.0) / th3 - lambda_p;
          if (fastest > 1.5 * fast) starts.add({slow, fast, fastest});
        }
      }
    }
    if (starts.count == 0) {  // slow rate already fast: spread upwards from it
      auto& row = starts.rates[0];
      row[0] = slow;
      for (int r = 1; r < n_rates; ++r) row[static_cast<size_t>(r)] = row[static_cast<size_t>(r - 1)] * 5.0;
      starts.count = 1;
    }
  }
  return starts;
}

// Floor of the activity used as a relative sigma (proportional models): no point may weigh more
// than MAX_WEIGHT_TO_MEDIAN times a point at the TAC's median activity, so a zero or near-zero
// activity cannot dominate the fit (issue 11: a zero point got 10^6 times the others' weight).
// 100 = two orders of magnitude: a point ten times below the median still counts fully.
constexpr double MAX_WEIGHT_TO_MEDIAN = 100.0;

double median_of(VectorXd v) {
  std::sort(v.data(), v.data() + v.size());
  const Eigen::Index n = v.size();
  return n % 2 ? v(n / 2) : 0.5 * (v(n / 2 - 1) + v(n / 2));
}

double relative_sigma_floor(const VectorXd& y) {
  return median_of(y.cwiseAbs()) / std::sqrt(MAX_WEIGHT_TO_MEDIAN);
}

}  // namespace

int near_zero_points(const VectorXd& y, const FitOptions& o) {
  const double limit = o.proportional_floor_fraction * y.maxCoeff();
  return static_cast<int>((y.array() <= limit).count());
}

namespace {

// Standard deviations (up to a common factor for relative models) -> s = 1/sigma. n_floored
// counts the points whose relative sigma was raised to the floor above.
VectorXd inverse_sigma(const VectorXd& y, const VectorXd& sigma, const FitOptions& o,
                       int* n_floored) {
  const Eigen::Index n = y.size();
  VectorXd s(n);
  *n_floored = 0;
  switch (o.error_model) {
    case ErrorModel::constant: s.setOnes(); break;
    case ErrorModel::combined:
      for (Eigen::Index i = 0; i < n; ++i)
        s(i) = 1.0 / std::sqrt(o.combined_sigma0_MBq * o.combined_sigma0_MBq +
                               o.combined_b * o.combined_b * y(i) * y(i));
      break;
    case ErrorModel::proportional_model:  // first pass data-based, then reweighted with f(t_i)
    case ErrorModel::proportional: {
      const double floor = relative_sigma_floor(y);
      for (Eigen::Index i = 0; i < n; ++i) {
        double yi = y(i);
        if (yi < floor) {
          yi = floor;
          ++*n_floored;
        }
        s(i) = 1.0 / yi;
      }
      break;
    }
    case ErrorModel::input:
      s = sigma.cwiseInverse();
      break;
  }
  return s;
}

// Goodness of fit and the degrees of freedom of u(TIA) (docs/methods.md, "Goodness of fit and
// coverage intervals"). Absolute sigmas: chi-square test; a fit beyond the CHI_SQUARE_P_FLAG
// quantile is warned and its covariance scaled by the Birge ratio squared, whose variance is then
// estimated (n - K dof). Relative weights: the variance was estimated from n - K dof.
void assess_goodness_of_fit(CandidateFit& c, bool relative) {
  const int dof = c.n_points - c.n_parameters;
  c.chi_square_dof = dof;
  c.reduced_chi_square = dof > 0 ? c.weighted_rss / dof : NaN;
  if (relative) {
    c.tia_u_dof = dof > 0 ? dof : NaN;
    return;
  }
  c.chi_square = c.weighted_rss;
  c.tia_u_dof = std::numeric_limits<double>::infinity();
  if (dof <= 0 || !std::isfinite(c.chi_square)) return;
  c.chi_square_p_value = boost::math::cdf(
      boost::math::complement(boost::math::chi_squared_distribution<double>(dof), c.chi_square));
  c.birge_ratio = std::sqrt(c.reduced_chi_square);
  if (c.chi_square_p_value < CHI_SQUARE_P_FLAG) {
    c.warnings.push_back("chi_square_p_below_0.01");
    if (c.birge_ratio > 1) {
      c.covariance *= c.reduced_chi_square;
      c.covariance_scaled = true;
      c.tia_u_dof = dof;
    }
  }
}


// ceres::TinySolver (Levenberg-Marquardt for small dense problems, without heap traffic per
// iteration when its sizes are fixed at compile time) on the projected functor: NR log-rate
// increments; the residuals of the TAC's n points held in P rows (P >= n, the rows below n zero:
// they add nothing to the cost, the gradient or J^T J), or in a dynamic vector (P = Dynamic) for
// TACs of more than MAX_FIXED_ROWS points. Two fixed row counts, 6 (up to 6 points: the usual
// schedules) and 8: each row count is another instantiation of the solver for every NR, and each
// cost about 3 s of compile time (five row counts made this file 100 s of the CI's build).
constexpr int MAX_FIXED_ROWS = 8;
template <int NR, int P>
struct TinyLm {
  struct Adapter {
    using Scalar = double;
    enum { NUM_RESIDUALS = P, NUM_PARAMETERS = NR };
    ProjectedFunctor* functor = nullptr;
    int NumResiduals() const { return functor->n_values; }  // P = Dynamic only
    bool operator()(const double* x, double* residuals, double* jacobian) const {
      const int n = functor->n_values, rows = P == Eigen::Dynamic ? n : P;
      functor->residuals(x, residuals);
      std::fill(residuals + n, residuals + rows, 0.0);
      if (jacobian) functor->jacobian(x, jacobian, rows);
      return true;
    }
  };
  Adapter adapter;
  ceres::TinySolver<Adapter> solver;

  // Minimises from theta (in place): false when stopped by the iteration limit.
  bool run(ProjectedFunctor& f, VectorXd& theta, double cost_change_tolerance, double xtol, int max_iterations) {
    adapter.functor = &f;
    solver.options.function_tolerance = cost_change_tolerance;
    solver.options.parameter_tolerance = xtol;
    solver.options.gradient_tolerance = 0;  // as MINPACK's gtol = 0: stop on the cost or the step
    solver.options.max_num_iterations = max_iterations;
    Eigen::Matrix<double, NR, 1> x = theta;
    const auto status = solver.Solve(adapter, &x).status;
    theta = x;
    return status != ceres::TinySolver<Adapter>::HIT_MAX_ITERATIONS;
  }
};

// The functor and the Levenberg-Marquardt state of one candidate fit, reused by all its starts
// and reweighting iterations: after the first run no run allocates its buffers anew. Every run
// starts from a fresh state, with the tolerances given.
struct LmWorkspace {
  ProjectedFunctor functor;
  std::variant<std::monostate, TinyLm<1, 6>, TinyLm<1, MAX_FIXED_ROWS>, TinyLm<1, Eigen::Dynamic>, TinyLm<2, 6>,
               TinyLm<2, MAX_FIXED_ROWS>, TinyLm<2, Eigen::Dynamic>, TinyLm<3, 6>, TinyLm<3, MAX_FIXED_ROWS>,
               TinyLm<3, Eigen::Dynamic>>
      lm;
  VectorXd f0;

  LmWorkspace(const Projection& p, int n_rates, int n) : functor(p, n_rates, n), f0(n) {
    if (n_rates == 1) emplace<1>(n);
    else if (n_rates == 2) emplace<2>(n);
    else if (n_rates == 3) emplace<3>(n);
  }
  LmWorkspace(const LmWorkspace&) = delete;
  LmWorkspace& operator=(const LmWorkspace&) = delete;

  // The solver of NR rates with the fewest rows that hold n points.
  template <int NR>
  void emplace(int n) {
    if (n <= 6) lm.emplace<TinyLm<NR, 6>>();
    else if (n <= MAX_FIXED_ROWS) lm.emplace<TinyLm<NR, MAX_FIXED_ROWS>>();
    else lm.emplace<TinyLm<NR, Eigen::Dynamic>>();
  }

  // Minimises from theta (updated in place); adds the function evaluations to *evaluations. Stops
  // when a step changes the cost by less than ftol times the starting cost, or moves theta by less
  // than xtol relative to |theta|; false when the iteration limit (200 (NR + 1), as MINPACK's
  // default maxfev for analytic Jacobians) was reached first.
  bool minimize(VectorXd& theta, double ftol, double xtol, int* evaluations) {
    functor.evaluations = 0;
    functor(theta, f0);
    const double tolerance = ftol * f0.squaredNorm();
    const int max_iterations = 200 * (functor.n_inputs + 1);
    const bool converged = std::visit(
        [&](auto& s) {
          if constexpr (std::is_same_v<std::decay_t<decltype(s)>, std::monostate>) return true;  // no rate
          else return s.run(functor, theta, tolerance, xtol, max_iterations);
        },
        lm);
    *evaluations += functor.evaluations;
    return converged;
  }
};

// The best of the starting points (starting_rates) for the weights s0 of ws: its log-rate
// increments theta, and whether its Levenberg-Marquardt run converged. Counts starts and
// evaluations in c.
// True when theta's rates coincide: a log increment of a faster rate below RATE_AT_BOUND_PER_H
// (assess_quality's "rates_coincide"), the flat valley where two terms act as one.
bool rates_coincide(const VectorXd& theta) {
  for (Eigen::Index r = 1; r < theta.size(); ++r)
    if (std::exp(std::clamp(theta(r), THETA_MIN, THETA_MAX)) < RATE_AT_BOUND_PER_H) return true;
  return false;
}

VectorXd best_start(const ExponentialFunction& f, LmWorkspace& ws, const VectorXd& y, bool& best_converged,
                    CandidateFit& c) {
  const Projection& proj0 = *ws.functor.proj;
  const VectorXd& t = proj0.t;
  const int n = static_cast<int>(t.size()), nr = f.n_rates();
  VectorXd best_theta(nr);
  double best_cost = std::numeric_limits<double>::infinity();
  best_converged = false;
  bool best_coincide = false;
  VectorXd fvec(n);
  const StartingRates starts = starting_rates(nr, t, y, proj0.lambda_p);
  for (int k = 0; k < starts.count; ++k) {
    ++c.starts;
    VectorXd theta = starts.theta(k);
    bool converged = true;
    if (nr > 0) {
      converged = ws.minimize(theta, 1e-12, 1e-10, &c.evaluations);
    } else {
      c.evaluations += 1;
    }
    ws.functor(theta, fvec);
    const double cost = fvec.squaredNorm();
    // Two converged starts that reach the same cost (within 1e-9, relative) are in the same
    // minimum, or in one flat valley (a rate the data cannot identify): the remaining starts are
    // skipped. Not when they end where rates coincide: every start that falls into that valley has
    // the cost of the function with one term less, whatever the function's own minimum (0.12 review).
    const bool coincide = rates_coincide(theta);
    const bool same = converged && best_converged && !coincide && !best_coincide && std::isfinite(best_cost) &&
                      std::abs(cost - best_cost) <= 1e-9 * std::max(best_cost, 1e-300);
    if (cost < best_cost) {
      best_cost = cost;
      best_theta = theta;
      best_converged = converged;
      best_coincide = coincide;
    }
    if (same) break;
  }
  return best_theta;
}

// Proportional to the model: reweight with the fitted curve until the TIA settles. Updates the
// weights s (1/sigma) and the fit's theta; counts evaluations and iterations in c. ws is rebound
// to each iteration's weights.
void reweight_with_fitted_curve(const ExponentialFunction& f, const VectorXd& t, const VectorXd& y,
                                double lambda_p, VectorXd& s, VectorXd& best_theta, LmWorkspace& ws,
                                CandidateFit& c) {
  const int K = f.n_parameters();
  double previous_tia = NaN;
  VectorXd sy_it(t.size());
  for (int iteration = 0; iteration < 20; ++iteration) {
    const VectorXd lam = rates_from_theta(best_theta);
    VectorXd p_it(K);
    const VectorXd sy_tmp = s.cwiseProduct(y);
    p_it << Projection{f, t, s, sy_tmp, lambda_p}.solve(lam, false).a, lam;
    const double tia_it = f.integral(p_it, lambda_p, std::numeric_limits<double>::infinity());
    if (std::abs(tia_it - previous_tia) <= 1e-10 * std::abs(tia_it)) break;
    previous_tia = tia_it;
    const VectorXd fit_values = f.evaluate(t, p_it, lambda_p);
    const double floor = relative_sigma_floor(y);
    for (Eigen::Index i = 0; i < t.size(); ++i) s(i) = 1.0 / std::max(fit_values(i), floor);
    sy_it = s.cwiseProduct(y);
    const Projection proj_it{f, t, s, sy_it, lambda_p};
    ws.functor.rebind(proj_it);
    ws.minimize(best_theta, 1e-14, 1e-12, &c.evaluations);
    ++c.reweighting_iterations;
  }
}

// K x K matrices of a fit (K <= MAX_K parameters: E3u has 5), and the weighted Jacobian of a TAC
// of at most SMALL_N points, held without heap allocation (the statistics of every candidate).
constexpr int MAX_K = 8;
constexpr int SMALL_N = 16;
using SmallMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, 0, MAX_K, MAX_K>;
using SmallVector = Eigen::Matrix<double, Eigen::Dynamic, 1, 0, MAX_K, 1>;
using SmallJacobian = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, 0, SMALL_N, MAX_K>;

// The rank of the column-scaled Jacobian js (c.rank) and, at full rank, (J^T J)^-1 = S (js^T js)^-1 S
// with S = diag(col_scale) in jtj_inv and the covariance variance_scale * (J^T J)^-1, from the
// pivoting QR of js.
template <class Jacobian>
void covariance_from_scaled(CandidateFit& c, const Jacobian& js, const SmallVector& col_scale, double variance_scale,
                            SmallMatrix& jtj_inv) {
  const int K = c.n_parameters;
  Eigen::ColPivHouseholderQR<Jacobian> qr(js);
  qr.setThreshold(RANK_THRESHOLD);
  c.rank = static_cast<int>(qr.rank());
  c.covariance = MatrixXd::Constant(K, K, NaN);
  if (c.rank != K) {
    c.flags.push_back("rank_deficient");
    return;
  }
  const SmallMatrix r = qr.matrixR().topLeftCorner(K, K).template triangularView<Eigen::Upper>();
  const SmallMatrix r_inv = r.triangularView<Eigen::Upper>().solve(SmallMatrix::Identity(K, K));
  const SmallMatrix cov_perm = r_inv * r_inv.transpose();
  const SmallMatrix cov_scaled = qr.colsPermutation() * cov_perm * qr.colsPermutation().transpose();
  jtj_inv = col_scale.asDiagonal() * cov_scaled * col_scale.asDiagonal();
  c.covariance = variance_scale * jtj_inv;
}

// Covariance from the weighted Jacobian jw, columns scaled to unit norm for a scale-free rank.
// Sets c.rank and c.covariance (NaN when rank deficient) and, at full rank, jtj_inv = (jw^T jw)^-1;
// returns the variance scale (the estimated variance for relative weights, else 1).
double set_covariance(CandidateFit& c, const MatrixXd& jw, bool relative, SmallMatrix& jtj_inv) {
  const int n = c.n_points, K = c.n_parameters;
  if (K > MAX_K) throw std::logic_error("fit_function: more than " + std::to_string(MAX_K) + " parameters");
  SmallVector col_scale(K);
  for (int j = 0; j < K; ++j) {
    const double nrm = jw.col(j).norm();
    col_scale(j) = nrm > 0 ? 1.0 / nrm : 1.0;
  }
  double variance_scale = 1.0;
  if (relative) variance_scale = n > K ? c.weighted_rss / (n - K) : NaN;
  if (n <= SMALL_N) covariance_from_scaled(c, SmallJacobian(jw * col_scale.asDiagonal()), col_scale, variance_scale, jtj_inv);
  else covariance_from_scaled(c, MatrixXd(jw * col_scale.asDiagonal()), col_scale, variance_scale, jtj_inv);
  return variance_scale;
}

// Coefficients of variation of the parameters p and their correlation matrix, from c.covariance.
void set_cv_and_correlation(CandidateFit& c, const VectorXd& p) {
  const int K = c.n_parameters;
  c.parameter_cv = VectorXd::Constant(K, NaN);
  c.correlation = MatrixXd::Constant(K, K, NaN);
  for (int i = 0; i < K; ++i) {
    c.parameter_cv(i) = std::sqrt(c.covariance(i, i)) / std::abs(p(i));
    for (int j = 0; j < K; ++j)
      c.correlation(i, j) = c.covariance(i, j) / std::sqrt(c.covariance(i, i) * c.covariance(j, j));
  }
}

// Runs test on the residual signs (methods.md §2.4).
void set_runs_test(CandidateFit& c, const VectorXd& resid) {
  int n_pos = 0, n_neg = 0, runs = 0;
  int last = 0;
  for (Eigen::Index i = 0; i < resid.size(); ++i) {
    const int sign = resid(i) > 0 ? 1 : (resid(i) < 0 ? -1 : 0);
    if (sign == 0) continue;
    (sign > 0 ? n_pos : n_neg)++;
    if (sign != last) ++runs;
    last = sign;
  }
  c.runs = runs;
  c.runs_p_value = runs_test_p_value(runs, n_pos, n_neg);
}

// Information criteria AIC and AICc; sy are the weighted data s .* y.
void set_information_criteria(CandidateFit& c, const VectorXd& y, const VectorXd& sy, bool relative,
                              const FitOptions& o) {
  const int n = c.n_points;
  const int k_aic = c.n_parameters + (o.aicc_k == AiccParameterCount::fit_parameters_plus_one ? 1 : 0);
  const double floor = n * std::pow(RSS_FLOOR_RELATIVE * sy.norm() / std::sqrt(n), 2);
  const double rss_eff = std::max(c.weighted_rss, floor);
  // Proportional to the model: sigma_i = b f_i depends on the function, so the likelihood keeps
  // its sum ln sigma_i = n ln b + sum ln f_i (the f_i as floored for the weights).
  double log_f_sum = 0;
  if (o.error_model == ErrorModel::proportional_model)
    log_f_sum = c.fitted_MBq.cwiseMax(relative_sigma_floor(y)).array().log().sum();
  c.aic = relative ? n * std::log(rss_eff / n) + 2.0 * log_f_sum + 2.0 * k_aic : c.weighted_rss + 2.0 * k_aic;
  if (n >= k_aic + 2) c.aicc = c.aic + 2.0 * k_aic * (k_aic + 1) / (n - k_aic - 1);
}

// TIA and its uncertainty (Gaussian propagation with the analytic gradient), and d TIA / d y
// (jtj_inv = (jw^T jw)^-1 from set_covariance, at full rank).
void set_tia(CandidateFit& c, const ExponentialFunction& f, const VectorXd& p, double lambda_p,
             const MatrixXd& jw, const VectorXd& s, const SmallMatrix& jtj_inv) {
  const int K = c.n_parameters;
  c.tia_MBq_h = f.integral(p, lambda_p, std::numeric_limits<double>::infinity());
  const SmallVector g = f.integral_gradient(p, lambda_p, std::numeric_limits<double>::infinity());
  c.tia_u_MBq_h = std::sqrt(g.dot(SmallVector(c.covariance * g)));
  if (c.rank == K)  // dTIA/dy = g^T (Jw^T Jw)^-1 Jw^T diag(s)
    c.tia_dy = (jw * SmallVector(jtj_inv * g)).cwiseProduct(s);
}

// Quality findings (methods.md §2.4 and engine rules): flags (the fit is not accepted) and
// warnings; sets c.accepted.
void assess_quality(CandidateFit& c, const ExponentialFunction& f, const VectorXd& p, const VectorXd& t,
                    double lambda_p, const FitOptions& o) {
  const int K = c.n_parameters, nr = f.n_rates(), na = f.n_amplitudes();
  const VectorXd a = p.head(na), lambda = p.tail(nr);
  for (int j = 0; j < na; ++j)
    if (a(j) < 0) c.flags.push_back("negative_amplitude:" + c.parameter_names[j]);
  double prev = 0.0;
  for (int r = 0; r < nr; ++r) {
    if (lambda(r) - prev < RATE_AT_BOUND_PER_H)
      c.flags.push_back((r == 0 ? "rate_at_lower_bound:" : "rates_coincide:") +
                        c.parameter_names[na + r]);
    prev = lambda(r);
  }
  for (const auto& term : f.terms()) {
    if (term.rate_index < 0) continue;
    const double k = lambda(term.rate_index) + lambda_p;
    if (std::exp(-k * t.minCoeff()) < FAST_COMPONENT_FRACTION)
      c.flags.push_back("rate_not_identifiable:" + c.parameter_names[na + term.rate_index]);
  }
  std::sort(c.flags.begin(), c.flags.end());
  c.flags.erase(std::unique(c.flags.begin(), c.flags.end()), c.flags.end());
  for (int i = 0; i < K; ++i)
    if (c.parameter_cv(i) >= MAX_CV) c.flags.push_back("cv_at_least_50_percent:" + c.parameter_names[i]);
  for (int i = 0; i < K; ++i)
    for (int j = i + 1; j < K; ++j)
      if (std::abs(c.correlation(i, j)) >= MAX_ABS_CORRELATION)
        (o.reject_on_correlation ? c.flags : c.warnings).push_back("correlation_at_least_0.8:" + c.parameter_names[i] + "," +
                          c.parameter_names[j]);
  if (!(c.tia_MBq_h > 0) || !std::isfinite(c.tia_MBq_h)) c.flags.push_back("tia_not_positive");
  // Too few runs of residual signs: systematic misfit (a warning; 5 % one-sided).
  if (c.runs_p_value < 0.05) c.warnings.push_back("runs_test_p_below_0.05");
  c.accepted = c.flags.empty();
}

}  // namespace

std::string joined_flags(const CandidateFit& c) {
  std::string flags;
  for (const auto& fl : c.flags) flags += (flags.empty() ? "" : ", ") + fl;
  return flags;
}

CandidateFit fit_function(const ExponentialFunction& f, const VectorXd& t, const VectorXd& y,
                          const VectorXd& sigma, double lambda_p, const FitOptions& o) {
  CandidateFit c;
  c.function = f.id();
  c.n_points = static_cast<int>(t.size());
  c.n_parameters = f.n_parameters();
  c.parameter_names = f.parameter_names();
  const int n = c.n_points, K = c.n_parameters, nr = f.n_rates();
  if (n < K) {
    c.flags.push_back("too_few_points");
    return c;
  }
  int n_floored = 0;
  const VectorXd s0 = inverse_sigma(y, sigma, o, &n_floored);
  const VectorXd sy0 = s0.cwiseProduct(y);
  const Projection proj0{f, t, s0, sy0, lambda_p};
  LmWorkspace ws(proj0, nr, n);
  bool best_converged = false;
  VectorXd best_theta = best_start(f, ws, y, best_converged, c);
  VectorXd s = s0;
  const bool reweighted = o.error_model == ErrorModel::proportional_model && nr > 0;
  if (reweighted) reweight_with_fitted_curve(f, t, y, lambda_p, s, best_theta, ws, c);
  const VectorXd sy = s.cwiseProduct(y);
  const Projection proj{f, t, s, sy, lambda_p};
  const VectorXd lambda = rates_from_theta(best_theta);
  // the amplitudes of the best rates: the workspace's normal equations for the weights s0 when they
  // apply, else the general solve
  const VectorXd a = !reweighted && ws.functor.evaluate_design(best_theta.data()) ? ws.functor.a
                                                                                  : proj.solve(lambda, false).a;
  VectorXd p(K);
  p << a, lambda;
  if (!p.allFinite()) {
    c.flags.push_back("not_converged");
    return c;
  }
  c.fitted = true;
  c.parameters = p;
  if (!best_converged) c.flags.push_back("not_converged");
  if (n_floored > 0) c.warnings.push_back("relative_weight_capped_at_" + std::to_string(n_floored) + "_points");
  if (const int nz = near_zero_points(y, o);
      nz > 0 && (o.error_model == ErrorModel::proportional || o.error_model == ErrorModel::proportional_model))
    c.flags.push_back("near_zero_activity_at_" + std::to_string(nz) + "_points");

  c.fitted_MBq = f.evaluate(t, p, lambda_p);
  const VectorXd resid = y - c.fitted_MBq;
  c.weighted_rss = s.cwiseProduct(resid).squaredNorm();
  const double mean_y = y.mean();
  const double tss = (y.array() - mean_y).square().sum();
  c.r_squared = tss > 0 ? 1.0 - resid.squaredNorm() / tss : NaN;

  const MatrixXd jw = s.asDiagonal() * f.jacobian(t, p, lambda_p);
  const bool relative = o.error_model != ErrorModel::input && o.error_model != ErrorModel::combined;
  SmallMatrix jtj_inv;
  const double variance_scale = set_covariance(c, jw, relative, jtj_inv);
  assess_goodness_of_fit(c, relative);
  if (relative && n <= K) c.flags.push_back("no_degrees_of_freedom");
  else if (c.rank == K && !c.covariance.allFinite()) c.flags.push_back("covariance_not_finite");
  set_cv_and_correlation(c, p);
  c.standardized_residuals = s.cwiseProduct(resid) / std::sqrt(relative ? variance_scale : 1.0);
  if (n >= 6) set_runs_test(c, resid);
  set_information_criteria(c, y, sy, relative, o);
  set_tia(c, f, p, lambda_p, jw, s, jtj_inv);
  assess_quality(c, f, p, t, lambda_p, o);
  return c;
}

namespace {

// sum_i (d TIA / d y_i)^2 sigma_i^2, the derivatives by central differences (exact for rules that
// are linear in the activities, up to rounding).
template <class Total>
double propagated_u(const Total& total, const VectorXd& y, const VectorXd& sigma) {
  double u2 = 0;
  for (Eigen::Index i = 0; i < y.size(); ++i) {
    const double h = 1e-6 * std::max(std::abs(y(i)), 1e-12);
    VectorXd hi = y, lo = y;
    hi(i) += h;
    lo(i) -= h;
    const double w = (total(hi) - total(lo)) / (2 * h);
    u2 += w * w * sigma(i) * sigma(i);
  }
  return std::sqrt(u2);
}

// The washout of peak_washout_tia: integral from t_p to infinity of the log-linear
// mono-exponential through the positive points from index p on, rate >= lambda_p. NaN when
// fewer than two positive points. *bounded: the rate was raised to lambda_p (the amplitude then
// refitted with that slope).
double washout_integral(const VectorXd& t, const VectorXd& v, Eigen::Index p, double lambda_p, bool* bounded) {
  double st = 0, sl = 0, stt = 0, stl = 0, m = 0;
  for (Eigen::Index i = p; i < t.size(); ++i) {
    if (!(v(i) > 0)) continue;
    const double dt = t(i) - t(p), l = std::log(v(i));
    st += dt, sl += l, stt += dt * dt, stl += dt * l, m += 1;
  }
  const double den = m * stt - st * st;
  if (m < 2 || !(den > 0)) return NaN;
  double k = -(m * stl - st * sl) / den;
  *bounded = !(k > lambda_p);
  if (*bounded) k = lambda_p;
  const double log_b = (sl + k * st) / m;  // least-squares intercept at t_p for the slope -k
  return std::exp(log_b) / k;
}

}  // namespace

TrapezoidResult trapezoid_tia(const VectorXd& t, const VectorXd& y, const VectorXd& sigma,
                              double lambda_p, TrapezoidHead head, TrapezoidBody body, TrapezoidTail tail) {
  const Eigen::Index n = t.size();
  // The TIA as sum_i w_i y_i: linear in the activities for the linear body and the physical tail
  // (so the weights give the uncertainty exactly); the log body and the fitted tail are
  // linearised at the data (w_i = d TIA / d y_i).
  // (the body is also summed on its own for the report: TIA - head - tail leaves a rounding residue)
  auto total = [&](const VectorXd& v, double* head_part, double* body_part, double* tail_part) {
    double h = head == TrapezoidHead::linear ? v(0) * t(0) / 2.0 : v(0) * t(0);
    double sum = h, body_sum = 0;
    for (Eigen::Index i = 0; i + 1 < n; ++i) {
      const double dt = t(i + 1) - t(i);
      const double a1 = v(i), a2 = v(i + 1);
      const double segment = body == TrapezoidBody::log && a1 > 0 && a2 > 0 &&
                                     std::abs(a1 - a2) > 1e-12 * std::max(a1, a2)
                                 ? dt * (a1 - a2) / std::log(a1 / a2)
                                 : dt * (a1 + a2) / 2.0;
      sum += segment;
      body_sum += segment;
    }
    double k = lambda_p;
    if (tail == TrapezoidTail::fit && n >= 2) {  // log-linear fit of the last (up to) 3 points
      double st = 0, sl = 0, stt = 0, stl = 0, m = 0;
      for (Eigen::Index i = std::max<Eigen::Index>(0, n - 3); i < n; ++i) {
        if (!(v(i) > 0)) continue;
        const double l = std::log(v(i));
        st += t(i), sl += l, stt += t(i) * t(i), stl += t(i) * l, m += 1;
      }
      const double den = m * stt - st * st;
      if (m >= 2 && den > 0) k = std::max(-(m * stl - st * sl) / den, lambda_p);
    }
    const double tl = v(n - 1) / k;
    if (head_part) *head_part = h, *body_part = body_sum, *tail_part = tl;
    return sum + tl;
  };
  TrapezoidResult r;
  r.tail = to_string(tail);
  r.tia_MBq_h = total(y, &r.head_MBq_h, &r.body_MBq_h, &r.tail_MBq_h);
  r.tia_u_MBq_h = sigma.size() == n
                      ? propagated_u([&](const VectorXd& v) { return total(v, nullptr, nullptr, nullptr); }, y, sigma)
                      : NaN;
  return r;
}

TrapezoidResult peak_washout_tia(const VectorXd& t, const VectorXd& y, const VectorXd& sigma, double lambda_p,
                                 TrapezoidHead head) {
  const Eigen::Index n = t.size();
  Eigen::Index peak = 0;
  y.maxCoeff(&peak);
  // The washout needs two positive points from the peak on, falling faster than physical decay;
  // otherwise no clearance is measurable: the plain trapezoid through every point with the
  // physical tail from the last (physical decay from the peak would run below the later points).
  bool bounded = false;
  if (std::isnan(washout_integral(t, y, peak, lambda_p, &bounded)) || bounded) {
    return trapezoid_tia(t, y, sigma, lambda_p, head);
  }
  TrapezoidResult r;
  r.tail = "washout";
  auto total = [&](const VectorXd& v, double* head_part, double* body_part, double* tail_part) {
    const double h = head == TrapezoidHead::linear ? v(0) * t(0) / 2.0 : v(0) * t(0);
    double sum = h, body_sum = 0;  // the body also on its own, as in trapezoid_tia
    for (Eigen::Index i = 0; i < peak; ++i) {
      const double segment = (t(i + 1) - t(i)) * (v(i) + v(i + 1)) / 2.0;
      sum += segment;
      body_sum += segment;
    }
    bool b = false;
    const double tl = washout_integral(t, v, peak, lambda_p, &b);
    if (head_part) *head_part = h, *body_part = body_sum, *tail_part = tl;
    return sum + tl;
  };
  r.tia_MBq_h = total(y, &r.head_MBq_h, &r.body_MBq_h, &r.tail_MBq_h);
  r.tia_u_MBq_h = sigma.size() == n
                      ? propagated_u([&](const VectorXd& v) { return total(v, nullptr, nullptr, nullptr); }, y, sigma)
                      : NaN;
  return r;
}

namespace {

// Candidates whose fit is another candidate's curve (E2 and E2b are one model when the amplitudes
// are free in sign: A2 -> -A2): true for all but one of each such group, which enters the Akaike
// weights once (an accepted fit is kept, else the first). Same K and fitted values within 1e-6
// relative of the largest (the optimiser's tolerance on the rates, not the data's noise).
std::vector<bool> duplicate_fits(std::vector<CandidateFit>& cs) {
  std::vector<bool> dup(cs.size(), false);
  auto same = [](const CandidateFit& a, const CandidateFit& b) {
    if (!a.fitted || !b.fitted || a.n_parameters != b.n_parameters) return false;
    const double scale = std::max(a.fitted_MBq.cwiseAbs().maxCoeff(), 1e-300);
    return (a.fitted_MBq - b.fitted_MBq).cwiseAbs().maxCoeff() <= 1e-6 * scale;
  };
  for (size_t i = 0; i < cs.size(); ++i)
    for (size_t j = 0; j < cs.size(); ++j) {
      if (i == j || dup[j] || !same(cs[i], cs[j])) continue;
      const bool j_kept = (cs[j].accepted && !cs[i].accepted) || (cs[j].accepted == cs[i].accepted && j < i);
      if (!j_kept) continue;
      dup[i] = true;
      cs[i].warnings.push_back("same_fit_as:" + cs[j].function);
      break;
    }
  return dup;
}

// Data that no function can describe well are said so up front.
void add_data_notes(TacFit& result, const VectorXd& t, const VectorXd& y, const FitOptions& o) {
  const int n = static_cast<int>(t.size());
  if (y.maxCoeff() <= 0)
    result.notes.push_back("all activities are zero: the TIA is zero (check the VOI and the quantification)");
  else if (n >= 2 && y(n - 1) >= y.maxCoeff())
    result.notes.push_back("the activity is highest at the last time point (" + format_number(t(n - 1)) +
                           " h): no clearance observed, so the TIA rests on the assumed tail");
  if (const int nz = near_zero_points(y, o); nz > 0 && y.maxCoeff() > 0)
    result.notes.push_back(std::to_string(nz) + " activit" + (nz == 1 ? "y is" : "ies are") + " near zero (<= " +
                           format_number(o.proportional_floor_fraction) +
                           " x the maximum): check the VOI and the quantification; a fit through them is not used");
}

// The exponential function `id`; `field` names the option in the error for an unknown id.
const models::ExponentialFunction* lookup_function(const std::string& id, const std::string& field) {
  const auto* f = models::find_exponential(id);
  if (!f) {
    std::string ids;
    for (const auto& i : models::exponential_ids()) ids += (ids.empty() ? "" : ", ") + i;
    throw_input_error(field, "the fit function", id, "one of " + ids + " (or auto)");
  }
  return f;
}

// The one function the user forced.
void fit_forced_function(TacFit& result, const VectorXd& t, const VectorXd& y, const VectorXd& sigma,
                         double lambda_p, const FitOptions& o, const std::string& where) {
  const int n = static_cast<int>(t.size());
  const auto* f = lookup_function(o.forced_function, "--function");
  if (n < f->n_parameters())
    throw_input_error(where, "the number of time points", std::to_string(n),
                      "at least " + std::to_string(f->n_parameters()) + " for function " +
                          f->id() + " (it has " + std::to_string(f->n_parameters()) +
                          " parameters)");
  result.candidates.push_back(fit_function(*f, t, y, sigma, lambda_p, o));
  const CandidateFit& c = result.candidates.front();
  if (!std::isfinite(c.tia_MBq_h)) {  // nothing to report as its TIA: the numerical fallback, saying why
    const std::string flags = joined_flags(c);
    result.notes.push_back("the forced function " + f->id() + " gave no finite TIA" +
                           (flags.empty() ? std::string() : " (" + flags + ")") + "; the numerical fallback is used");
    return;  // selected stays -1
  }
  result.selected = 0;
  result.selection = "function " + f->id() + " forced by the user";
}

// Lowest AICc among the usable fits (accepted ones only if need_accepted); -1 if none.
int lowest_aicc(const std::vector<CandidateFit>& candidates, bool need_accepted) {
  int idx = -1;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const auto& c = candidates[i];
    if (!c.fitted || std::isnan(c.aicc) || !(c.tia_MBq_h > 0) || c.rank < c.n_parameters)
      continue;
    if (need_accepted && !c.accepted) continue;
    if (idx < 0 || c.aicc < candidates[static_cast<size_t>(idx)].aicc)
      idx = static_cast<int>(i);
  }
  return idx;
}

// Fits the candidate functions and selects one.
void fit_candidates(TacFit& result, const VectorXd& t, const VectorXd& y, const VectorXd& sigma, double lambda_p,
                    const FitOptions& o) {
  const int n = static_cast<int>(t.size());
  // A function is a candidate only when the data can rank it: AICc needs n >= K' + 2
  // (methods.md §2.5). When no function qualifies, those with at least one degree of freedom
  // are fitted for the simplest-accepted-fit rule below.
  const int extra_k = o.aicc_k == AiccParameterCount::fit_parameters_plus_one ? 1 : 0;
  std::vector<const models::ExponentialFunction*> rankable, fittable;
  rankable.reserve(o.candidates.size());
  fittable.reserve(o.candidates.size());
  for (const auto& id : o.candidates) {
    const auto* f = lookup_function(id, "--functions");
    if (n >= f->n_parameters() + extra_k + 2) rankable.push_back(f);
    else if (n >= f->n_parameters() + 1) fittable.push_back(f);
  }
  const auto& chosen = rankable.empty() ? fittable : rankable;
  result.candidates.reserve(chosen.size());
  for (const auto* f : chosen)
    result.candidates.push_back(fit_function(*f, t, y, sigma, lambda_p, o));
  // A fit that fails the criteria is never the result (issue 11): without an accepted fit the
  // TAC falls back to peak_washout_tia below.
  result.selected = lowest_aicc(result.candidates, true);
  if (result.selected >= 0) result.selection = "lowest AICc among the fits that meet the quality criteria";
  if (result.selected < 0) {
    // No candidate has an AICc (n < K + 2 for all): the simplest accepted fit, if any.
    for (size_t i = 0; i < result.candidates.size(); ++i) {
      const auto& c = result.candidates[i];
      if (c.accepted && (result.selected < 0 ||
                         c.n_parameters < result.candidates[static_cast<size_t>(result.selected)].n_parameters))
        result.selected = static_cast<int>(i);
    }
    if (result.selected >= 0)
      result.selection = "AICc is undefined for every candidate (n = " + std::to_string(n) +
                         " points); the simplest fit that meets the quality criteria";
  }
}

// Akaike weights over the accepted candidates with an AICc (and full rank, TIA > 0): a fit that
// fails the criteria has no weight (issue 11); the model-averaged TIA with its unconditional
// uncertainty (methods.md §2.5).
void set_akaike_weights(TacFit& result) {
  const std::vector<bool> duplicate = duplicate_fits(result.candidates);
  auto ranked = [&](size_t i) {
    const auto& c = result.candidates[i];
    return c.fitted && c.accepted && !std::isnan(c.aicc) && c.tia_MBq_h > 0 && c.rank == c.n_parameters &&
           !duplicate[i];
  };
  double best = std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < result.candidates.size(); ++i)
    if (ranked(i)) best = std::min(best, result.candidates[i].aicc);
  double sum = 0;
  for (size_t i = 0; i < result.candidates.size(); ++i)
    if (auto& c = result.candidates[i]; ranked(i)) {
      c.akaike_weight = std::exp(-(c.aicc - best) / 2);
      sum += c.akaike_weight;
    }
  if (!(sum > 0)) return;
  double avg = 0;
  for (auto& c : result.candidates)
    if (!std::isnan(c.akaike_weight)) {
      c.akaike_weight /= sum;
      avg += c.akaike_weight * c.tia_MBq_h;
    }
  double u = 0;
  bool u_known = true;
  for (const auto& c : result.candidates)
    if (!std::isnan(c.akaike_weight)) {
      const double var = std::isfinite(c.tia_u_MBq_h) ? c.tia_u_MBq_h * c.tia_u_MBq_h : NaN;
      u_known = u_known && !std::isnan(var);
      u += c.akaike_weight * std::sqrt(var + (c.tia_MBq_h - avg) * (c.tia_MBq_h - avg));
    }
  result.averaged_tia_MBq_h = avg;
  result.averaged_tia_u_MBq_h = u_known ? u : NaN;
}

// Nested F-tests (report) between the fitted candidates, n points.
void add_f_tests(TacFit& result, int n, const FitOptions& o) {
  // F-tests need both RSS under the same weights: not so for proportional-model (each function
  // is weighted with its own curve), so none are reported there.
  const std::pair<const char*, const char*> nested[] = {{"E1p", "E1"}, {"E1", "E2"}, {"E1", "E2b"}, {"E2u", "E3u"}};
  if (o.error_model == ErrorModel::proportional_model && result.candidates.size() > 1)
    result.notes.push_back("no F-tests: under proportional-model each function has its own weights, so their "
                           "weighted RSS are not comparable (use the AICc ranking)");
  for (const auto& [lo_id, hi_id] : nested) {
    if (o.error_model == ErrorModel::proportional_model) break;
    const CandidateFit *lo = nullptr, *hi = nullptr;
    for (const auto& c : result.candidates) {
      if (c.function == lo_id && c.fitted) lo = &c;
      if (c.function == hi_id && c.fitted) hi = &c;
    }
    if (!lo || !hi || n <= hi->n_parameters) continue;
    TacFit::FTest ft;
    ft.simpler = lo_id;
    ft.richer = hi_id;
    ft.df1 = hi->n_parameters - lo->n_parameters;
    ft.df2 = n - hi->n_parameters;
    const double rss1 = lo->weighted_rss, rss2 = std::max(hi->weighted_rss, 1e-300);
    ft.f = std::max((rss1 - rss2) / ft.df1, 0.0) / (rss2 / ft.df2);
    ft.p_value = boost::math::cdf(boost::math::complement(
        boost::math::fisher_f_distribution<double>(ft.df1, ft.df2), ft.f));
    result.f_tests.push_back(ft);
  }
}

// The TIA by numerical integration, chosen by the user; the fits are reported.
void use_trapezoid(TacFit& result, const VectorXd& t, const VectorXd& y, const VectorXd& sigma, double lambda_p,
                   const FitOptions& o) {
  const auto tr = trapezoid_tia(t, y, sigma.size() == t.size() ? sigma : VectorXd(), lambda_p,
                                o.trapezoid_head, o.trapezoid_body, o.trapezoid_tail);
  result.method = "trapezoid";
  result.function = "trapezoid";
  result.tail = tr.tail;
  result.selected = -1;
  result.tia_MBq_h = tr.tia_MBq_h;
  result.tia_u_MBq_h = tr.tia_u_MBq_h;
  result.accepted = false;
  result.selection = "numerical integration chosen by the user (" + to_string(o.trapezoid_head) + " head, " +
                     to_string(o.trapezoid_body) + " body, " + to_string(o.trapezoid_tail) + " tail); fits reported";
  result.notes.push_back("trapezoid: head " + format_number(tr.head_MBq_h) + ", body " + format_number(tr.body_MBq_h) +
                         ", tail " + format_number(tr.tail_MBq_h) + " MBq h");
}

// The TIA of the selected fit, or the model average when the user asked for it.
void use_selected_fit(TacFit& result, const FitOptions& o) {
  const auto& c = result.candidates[static_cast<size_t>(result.selected)];
  result.method = "fit";
  result.function = c.function;
  result.tia_MBq_h = c.tia_MBq_h;
  result.tia_u_MBq_h = c.tia_u_MBq_h;
  result.accepted = c.accepted;
  if (o.model_averaging && o.forced_function.empty() && std::isfinite(result.averaged_tia_MBq_h)) {
    result.tia_MBq_h = result.averaged_tia_MBq_h;
    result.tia_u_MBq_h = result.averaged_tia_u_MBq_h;
    result.method = "model average";
    result.selection += "; TIA model-averaged with Akaike weights (option)";
  }
  if (!c.accepted) {
    result.notes.push_back("the chosen fit " + c.function + " fails the quality criteria: " + joined_flags(c));
  }
}

// No accepted fit: the trapezoid to the peak and the washout after it (peak_washout_tia).
void use_peak_washout(TacFit& result, const VectorXd& t, const VectorXd& y, const VectorXd& sigma, double lambda_p,
                      const FitOptions& o) {
  const auto n = t.size();
  const auto tr = peak_washout_tia(t, y, sigma.size() == n ? sigma : VectorXd(), lambda_p,
                                   o.trapezoid_head);
  result.method = "trapezoid";
  result.function = "trapezoid";
  result.tail = tr.tail;
  result.tia_MBq_h = tr.tia_MBq_h;
  result.tia_u_MBq_h = tr.tia_u_MBq_h;
  result.accepted = false;
  const std::string why = !(y.maxCoeff() > 0) ? "all activities are zero: no function is fitted"
                          : !o.forced_function.empty() ? "the forced function " + o.forced_function + " gave no finite TIA"
                          : result.candidates.empty()
                              ? "no candidate function could be fitted (n = " + std::to_string(n) + " points)"
                              : "no candidate meets the quality criteria";
  result.selection = why +
                     "; fallback: trapezoid (" + to_string(o.trapezoid_head) + " head) to the peak, then " +
                     (tr.tail == "washout" ? "the washout fitted to the peak and the later points"
                                           : "physical decay (no clearance measurable after the peak)");
  result.notes.push_back("fallback: head " + format_number(tr.head_MBq_h) + ", body " + format_number(tr.body_MBq_h) +
                         ", tail " + format_number(tr.tail_MBq_h) + " MBq h; tail: " +
                         (tr.tail == "washout" ? "mono-exponential washout fitted from the peak on"
                                               : "physical decay only (an upper bound)"));
  // an unknown u(TIA) is explained by tia_u_unknown_reason once numerical_u_from_residuals has
  // tried the residual scatter (set_tia_intervals)
}

}  // namespace

static TacFit select_tac_result(const VectorXd& t, const VectorXd& y, const VectorXd& sigma,
                                double lambda_p, const FitOptions& o, const std::string& where) {
  TacFit result;
  const int n = static_cast<int>(t.size());
  add_data_notes(result, t, y, o);
  if (o.error_model == ErrorModel::input && sigma.size() != n)
    throw InputError(where + ": the error model 'input' needs activity_u_MBq for every point");
  if (!(y.maxCoeff() > 0)) {
    // all zero (add_data_notes says so): no function is fitted (under the proportional error models
    // the weights would be 1/0); the fallback's trapezoid gives TIA 0
  } else if (!o.forced_function.empty()) {
    fit_forced_function(result, t, y, sigma, lambda_p, o, where);
  } else {
    fit_candidates(result, t, y, sigma, lambda_p, o);
  }
  set_akaike_weights(result);
  add_f_tests(result, n, o);
  result.numerical_tia_MBq_h =
      trapezoid_tia(t, y, VectorXd(), lambda_p, o.trapezoid_head, o.trapezoid_body, o.trapezoid_tail).tia_MBq_h;
  if (o.integration == Integration::trapezoid)
    use_trapezoid(result, t, y, sigma, lambda_p, o);
  else if (result.selected >= 0)
    use_selected_fit(result, o);
  else
    use_peak_washout(result, t, y, sigma, lambda_p, o);
  return result;
}

void set_tia_intervals(TacFit& r) {
  const bool known = std::isfinite(r.tia_u_MBq_h) && std::isfinite(r.tia_MBq_h);
  if (!known) {
    r.tia_u_dof = NaN;
    if (r.tia_u_unknown_reason.empty()) {
      const CandidateFit* c =
          r.selected >= 0 && r.method != "trapezoid" ? &r.candidates[static_cast<size_t>(r.selected)] : nullptr;
      r.tia_u_unknown_reason =
          !c ? "numerical integration without per-point uncertainties (activity_u_MBq)"
          : c->n_points <= c->n_parameters ? "no degree of freedom to estimate the variance of relative weights (n = K)"
                                           : "the covariance of the fit is not estimable";
    }
  } else {
    r.tia_u_unknown_reason.clear();
  }
  r.tia_ci68_MBq_h = nonnegative_coverage_interval(r.tia_MBq_h, r.tia_u_MBq_h, r.tia_u_dof, LEVEL_68);
  r.tia_ci95_MBq_h = nonnegative_coverage_interval(r.tia_MBq_h, r.tia_u_MBq_h, r.tia_u_dof, LEVEL_95);
}

// u(TIA) of a numerical integration under relative weights, without stated point sigmas: the
// point sigmas of the error model (b y_i, b f(t_i), or b) with the scale b^2 estimated by the
// reduced chi-square of the fitted candidate with the most degrees of freedom (n - K of it, which
// become the dof of u). Floored at proportional_floor_fraction x max(y), as the weights.
void numerical_u_from_residuals(TacFit& r, const VectorXd& t, const VectorXd& y, double lambda_p,
                                const FitOptions& o) {
  const bool relative = o.error_model != ErrorModel::input && o.error_model != ErrorModel::combined;
  if (r.method != "trapezoid" || std::isfinite(r.tia_u_MBq_h) || !relative) return;
  const CandidateFit* best = nullptr;
  for (const auto& c : r.candidates)
    if (c.fitted && c.chi_square_dof > 0 && std::isfinite(c.reduced_chi_square) &&
        (!best || c.chi_square_dof > best->chi_square_dof))
      best = &c;
  if (!best) return;
  const double b = std::sqrt(best->reduced_chi_square), floor = o.proportional_floor_fraction * y.maxCoeff();
  VectorXd sigma(y.size());
  for (Eigen::Index i = 0; i < y.size(); ++i)
    sigma(i) = o.error_model == ErrorModel::constant ? b
               : b * std::max(o.error_model == ErrorModel::proportional_model ? best->fitted_MBq(i) : y(i), floor);
  r.tia_u_MBq_h = o.integration == Integration::trapezoid
                      ? trapezoid_tia(t, y, sigma, lambda_p, o.trapezoid_head, o.trapezoid_body, o.trapezoid_tail).tia_u_MBq_h
                      : peak_washout_tia(t, y, sigma, lambda_p, o.trapezoid_head).tia_u_MBq_h;
  r.tia_u_dof = best->chi_square_dof;
  r.notes.push_back("u(TIA) of the numerical integration from point sigmas of the " + error_model_label(o) +
                    " model scaled by the residual scatter of " + best->function + " (" +
                    std::to_string(best->chi_square_dof) + " degrees of freedom)");
}

TacFit fit_tac(const VectorXd& t, const VectorXd& y, const VectorXd& sigma, double lambda_p,
               const FitOptions& o, const std::string& where) {
  TacFit r = select_tac_result(t, y, sigma, lambda_p, o, where);
  // degrees of freedom of the chosen u: the fit's, or infinite for stated per-point sigmas
  if (r.method != "trapezoid" && r.selected >= 0) {
    const CandidateFit& c = r.candidates[static_cast<size_t>(r.selected)];
    r.tia_u_dof = c.tia_u_dof;
    if (c.covariance_scaled)
      r.notes.push_back("chi-square " + format_number(c.chi_square) + " with " + std::to_string(c.chi_square_dof) +
                        " degrees of freedom (p = " + format_number(c.chi_square_p_value) +
                        " < 0.01): the stated sigmas are too small for the scatter; covariance scaled by the "
                        "reduced chi-square " + format_number(c.reduced_chi_square) + " (Birge)");
  } else {
    r.tia_u_dof = std::numeric_limits<double>::infinity();
    numerical_u_from_residuals(r, t, y, lambda_p, o);
  }
  set_tia_intervals(r);
  return r;
}

}  // namespace lutdose
