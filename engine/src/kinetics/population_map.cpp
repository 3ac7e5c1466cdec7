// The MAP (empirical Bayes) fit of one TAC with a learned population as its prior (population.h).
#include <algorithm>
#include <array>
#include <boost/math/distributions/chi_squared.hpp>
#include <boost/math/distributions/fisher_f.hpp>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <optional>

#include "lutdose/error.h"
#include "lutdose/kinetics/population.h"
#include "population_model.h"

namespace lutdose {

using Eigen::MatrixXd;
using Eigen::VectorXd;

namespace {

// The TAC's points with activity > 0 (the model is of ln y), activities per administered
// activity a0 [MBq], and how many were left out.
int positive_points(const TacSeries& tac, double a0, VectorXd& t, VectorXd& y) {
  std::vector<double> tv, yv;
  for (Eigen::Index j = 0; j < tac.activity_MBq.size(); ++j)
    if (tac.activity_MBq(j) > 0) tv.push_back(tac.time_h(j)), yv.push_back(tac.activity_MBq(j) / a0);
  t = Eigen::Map<VectorXd>(tv.data(), static_cast<Eigen::Index>(tv.size()));
  y = Eigen::Map<VectorXd>(yv.data(), static_cast<Eigen::Index>(yv.size()));
  return static_cast<int>(tac.activity_MBq.size() - t.size());
}

// Every point of the TAC with a finite activity (the additive error models: a point <= 0 is data),
// per administered activity a0 [MBq]; the number left out (not finite).
int finite_points(const TacSeries& tac, double a0, VectorXd& t, VectorXd& y) {
  std::vector<double> tv, yv;
  for (Eigen::Index j = 0; j < tac.activity_MBq.size(); ++j)
    if (std::isfinite(tac.activity_MBq(j))) tv.push_back(tac.time_h(j)), yv.push_back(tac.activity_MBq(j) / a0);
  t = Eigen::Map<VectorXd>(tv.data(), static_cast<Eigen::Index>(tv.size()));
  y = Eigen::Map<VectorXd>(yv.data(), static_cast<Eigen::Index>(yv.size()));
  return static_cast<int>(tac.activity_MBq.size() - t.size());
}

// The MAP's amplitudes in MBq: ln A_j = ln(A_j / A0) + ln A0 (the rates unchanged; the shift
// leaves d p / d phi and the posterior covariance of phi as they are).
population_detail::MapResult in_MBq(const models::ExponentialFunction& f, population_detail::MapResult r, double a0) {
  r.phi.head(f.n_amplitudes()).array() += std::log(a0);
  return r;
}

// The candidate judged against the TAC's own data as an individual fit under the proportional
// error model (fitting.h): no point > 0 (the MAP is then the population's), points near zero.
// Under the additive error models (combined, constant) points near zero are what the model is for:
// no near-zero flag there.
void judge_against_data(CandidateFit& c, const TacSeries& tac, bool additive) {
  if (!(tac.activity_MBq.array() > 0).any()) c.flags.push_back("no_positive_points");
  if (additive) return;
  if (const int nz = tac.activity_MBq.size() ? near_zero_points(tac.activity_MBq, FitOptions()) : 0; nz > 0)
    c.flags.push_back("near_zero_activity_at_" + std::to_string(nz) + "_points");
}

// "%.4g" of x: the numbers of a flag, short and stable.
std::string g4(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", x);
  return buf;
}

// The limit of the MAP objective Q of n points (judge_against_population): the 1 - alpha quantile
// of chi-square with n degrees of freedom; those of up to 64 points computed once (every MAP fit
// of a cohort asks for one).
double residual_limit(int n) {
  auto quantile = [](int dof) {
    return boost::math::quantile(boost::math::complement(boost::math::chi_squared_distribution<double>(dof),
                                                         POPULATION_MAP_FALSE_REJECTION));
  };
  static const std::array<double, 65> table = [&] {
    std::array<double, 65> a{};
    for (int k = 1; k < 65; ++k) a[static_cast<size_t>(k)] = quantile(k);
    return a;
  }();
  return n < 65 ? table[static_cast<size_t>(n)] : quantile(n);
}

// The b under which Q is judged. A known b (learned population, sigma_dof infinite): b. An estimate
// b_hat from d residual degrees of freedom (previous-cycles prior): d b_hat^2 / b^2 ~ chi-square(d),
// so b <= b_hat sqrt(d / q) with probability 1 - alpha', q the alpha' quantile of chi-square(d)
// (alpha' = alpha). Under any b_check >= b the predictive covariance J Omega J^T + b_check^2 I is at
// least the true one, so Q(b_check) <= Q(b) ~ chi-square(n) in the linearised model: false
// rejections at most alpha + alpha'. The bound is capped at MAP_CHECK_MAX_SIGMA_LOG (with d = 1 it
// is about 800 b_hat and would let any conflict pass; the cap assumes quantitative SPECT, see
// population.h) and is never below b_hat. (0.15's review: n F(n, d) instead, a worst case that also
// scaled the prior's Omega, had limits of 1e2 to 1e6 for d <= 3 and caught no 20x activity typo.)
double sigma_for_check(double b, double sigma_dof) {
  if (!std::isfinite(sigma_dof)) return b;
  const double q = boost::math::quantile(boost::math::chi_squared_distribution<double>(sigma_dof),
                                         POPULATION_MAP_FALSE_REJECTION);
  return std::max(b, std::min(b * std::sqrt(sigma_dof / q), MAP_CHECK_MAX_SIGMA_LOG));
}

// m F_q(m, d) / chi2_q(m), q the 1 - alpha quantiles: how much a sum of m squared terms whose
// variance is estimated from d degrees of freedom exceeds the chi-square limit (the allowances of
// sigma_for_learned_check and check_omega_diag). Kept per (m, d) and thread: one quantile
// inversion per cohort rather than per MAP.
double f_to_chi2_ratio(int m, int d) {
  thread_local std::map<std::pair<int, int>, double> ratios;
  auto it = ratios.find({m, d});
  if (it == ratios.end()) {
    const double f_q = boost::math::quantile(
        boost::math::complement(boost::math::fisher_f_distribution<double>(m, d), POPULATION_MAP_FALSE_REJECTION));
    it = ratios.emplace(std::pair{m, d}, m * f_q / residual_limit(m)).first;
  }
  return it->second;
}

// The b under which Q is judged for a learned population (sigma_log_dof infinite: a learned
// population or a population file), allowing for b's estimation error from few TACs. b was
// estimated from about d = n_observations - K n_patients residual degrees of freedom (every TAC's
// K random effects counted as K parameters: d is at most that many fewer, so the allowance errs
// on the side of fewer rejections). Of Q's N terms, m = max(1, N - K) (`dof`) are residual directions,
// scaled by b^2 / b_hat^2 ~ d / chi-square(d): their sum is m F(m, d) instead of chi-square(m). b is
// raised by sqrt(m F_q(m, d) / chi2_q(m)) (q the 1 - alpha quantiles) so that the residual part
// exceeds the chi-square limit with probability alpha again; K directions are the prior's,
// judged under check_omega_diag. The factor is 1.11 for 10 TACs of 6 points (E1: d = 40, m = 4)
// and near 1 learned from many TACs (200 TACs of 6 points: d = 800, 1.005). d < 1 (no residual
// degree of freedom by that count): b is taken as known, as in 0.15. Capped as sigma_for_check
// (MAP_CHECK_MAX_SIGMA_LOG), never below b.
double sigma_for_learned_check(const PopulationModel& m, int n_points, int k) {
  const int d = m.n_observations - k * m.n_patients;
  if (d < 1 || n_points < 1) return m.sigma_log;
  const double ratio = f_to_chi2_ratio(std::max(1, n_points - k), d);
  return std::max(m.sigma_log, std::min(m.sigma_log * std::sqrt(ratio), MAP_CHECK_MAX_SIGMA_LOG));
}

// The input error model: each point's SD u / A0 from the TAC's activity_u_MBq (every point of a
// TAC table has one or none, tac_table.h). InputError naming `where` when the TAC has none.
void set_input_sd(const TacSeries& tac, double a0, const std::string& where, population_detail::Prior& p) {
  if (tac.activity_u_MBq.size() != tac.activity_MBq.size())
    throw_input_error(where, "activity_u_MBq", "missing",
                      "every point's standard uncertainty with a population of the input error model");
  std::vector<double> u;
  for (Eigen::Index j = 0; j < tac.activity_MBq.size(); ++j)
    if (std::isfinite(tac.activity_MBq(j))) u.push_back(tac.activity_u_MBq(j) / a0);
  p.sd_y = Eigen::Map<VectorXd>(u.data(), static_cast<Eigen::Index>(u.size()));
  p.b = 0, p.sigma0_MBq = 1;  // as set_error_model_start: the ln V terms are 0
}

// The additive models' residual SDs under which Q is judged for a learned population: sigma0 and b
// both raised by the factor sqrt(m F_q(m, d) / chi2_q(m)) of sigma_for_learned_check (V scales by
// its square), for the same reason (sigma0 and b estimated from about d residual degrees of
// freedom). MAP_CHECK_MAX_SIGMA_LOG, a bound on the SD of ln A, has no counterpart here; the factor
// is near 1 for a cohort of many points (d large) and is not applied for d < 1.
void scale_additive_for_check(const PopulationModel& m, int n_points, int k, population_detail::Prior& p) {
  const int d = m.n_observations - k * m.n_patients;
  if (d < 1 || n_points < 1) return;
  const double factor = std::sqrt(f_to_chi2_ratio(std::max(1, n_points - k), d));
  p.b *= factor;
  p.sigma0_MBq *= factor;
}

// check_omega_diag's matrix: Omega (full or diagonal) + diag(theta_se^2), times K F_q(K, n - 1) /
// chi2_q(K); Omega itself where check_omega_diag takes the population as known.
MatrixXd check_omega_full(const PopulationModel& m) {
  MatrixXd v = m.omega;
  const auto k = v.rows();
  if (m.omega_includes_theta_error || m.theta_se.size() != k || !m.theta_se.allFinite() || m.n_patients < 2) return v;
  v.diagonal() += m.theta_se.cwiseAbs2();
  return v * std::max(1.0, f_to_chi2_ratio(static_cast<int>(k), m.n_patients - 1));
}

// The prior variance of phi under which the MAP is judged (judge_against_population), allowing
// for the population's own estimation error. The criterion asks whether the TAC is probable under
// the population; a new TAC's phi = theta + eta judged against the estimates theta_hat and
// Omega_hat: phi - theta_hat ~ N(0, Omega + Var(theta_hat)) (theta_hat's error independent of the
// new TAC's eta), and Omega_hat is itself estimated from n_patients TACs, Omega / Omega_hat about
// (n - 1) / chi-square(n - 1) (as in the prediction interval of a new draw, a t with n - 1 degrees
// of freedom). So the prior terms of Q, K of them, are about K F(K, n - 1) instead of
// chi-square(K): the variance is Omega + theta_se^2 raised by K F_q(K, n - 1) / chi2_q(K) (q the
// 1 - alpha quantiles; a common factor for the K parameters, an approximation: their Omega_kk are
// estimated separately), so that the prior part exceeds the chi-square limit with probability
// alpha again. Taken as known, a population learned from 10 TACs rejected 2.5-3 % of the MAPs of
// 6-scan synth VOIs drawn like its own (review of 0.15), where alpha is 1e-3. theta_se is on phi's
// log scale, as Omega (population.h); only its diagonal is kept (the file has no covariance of
// theta). The factor is 2.37 for 10 TACs (K = 2), 1.16 for 50; learned from many TACs the check
// hardly changes: theta_se^2 is about Omega / n, the factor 1.04 with 200 TACs, 1.007 with 1000. A population without theta_se (a hand-written file, null;
// the unit tests' known truths) is taken as known; a previous-cycles prior's Omega already is the
// predictive variance of a new cycle, the error of its mean included (omega_includes_theta_error).
// With a full Omega (methods.md §10, "Full Omega") the same statistics on the whole matrix:
// (Omega + diag(theta_se^2)) times the same factor (check_omega_full); theta_se's covariances are
// not known (not in the file), only its diagonal is added, as for a diagonal Omega.
VectorXd check_omega_diag(const PopulationModel& m) { return check_omega_full(m).diagonal(); }

// The TAC's points used against the population (and its error model, proportional on the log
// scale: ln y_j = ln f(t_j; phi) + e_j, e_j ~ N(0, b^2), phi ~ N(theta, Omega)). The statistic is
// the MAP's objective Q = sum_j ((ln y_j - ln f_j) / b)^2 + sum_k (phi_k - theta_k)^2 / Omega_kk:
// in the linearised model its minimum equals (z - m)^T (J Omega J^T + b^2 I)^-1 (z - m), z = ln y,
// m = ln f(theta), the Mahalanobis distance of the data from their prior predictive distribution,
// chi-square with n degrees of freedom whatever K (the prior-predictive check of Box, "Sampling
// and Bayes' inference in scientific modelling and robustness", JRSS A 143 (1980) 383-430; a test
// of prior-data conflict, Evans & Moshonov, Bayesian Analysis 1 (2006) 893-914). The data's
// residuals alone are not that statistic: at the MAP they are shrunk by the random effects (with
// n <= K points they can be near 0 whatever the prior), so a rate far from the population's
// would pass unseen. Nothing to judge without a MAP or without points (flagged otherwise).
// `check` is the MAP under sigma_for_check's b and check_omega_diag's prior variance (the MAP
// itself when both are the population's).
void judge_against_population(CandidateFit& c, const population_detail::MapResult& r,
                              const population_detail::MapResult& check) {
  if (!r.ok || !check.ok || c.n_points == 0) return;
  const double limit = residual_limit(c.n_points);
  // Q: the objective without the ln V terms of the additive models (0 for the proportional one)
  const double q = check.objective - check.log_variance_terms;
  if (!(q <= limit))
    c.flags.push_back("map_residuals_exceed_population_model:chi2=" + g4(q) + ",limit=" + g4(limit) +
                      ",n=" + std::to_string(c.n_points));
}

// (ln y_j - ln f_j) / b at the points used: the standardized residuals of the error model, the
// data's terms of the criterion; NaN (unknown) at points <= 0, left out of the fit.
VectorXd log_standardized_residuals(const VectorXd& y, const VectorXd& fitted, double b) {
  VectorXd r = VectorXd::Constant(y.size(), std::numeric_limits<double>::quiet_NaN());
  for (Eigen::Index j = 0; j < y.size(); ++j)
    if (y(j) > 0) r(j) = std::log(y(j) / fitted(j)) / b;
  return r;
}

// (y_j - f_j) / (sigma0^2 + (b f_j)^2)^(1/2) [MBq] at every point with a finite activity: the
// standardized residuals of the additive error models; NaN where not finite.
VectorXd additive_standardized_residuals(const VectorXd& y, const VectorXd& fitted, double sigma0, double b) {
  VectorXd r = VectorXd::Constant(y.size(), std::numeric_limits<double>::quiet_NaN());
  for (Eigen::Index j = 0; j < y.size(); ++j)
    if (std::isfinite(y(j))) r(j) = (y(j) - fitted(j)) / std::sqrt(sigma0 * sigma0 + b * b * fitted(j) * fitted(j));
  return r;
}

// The candidate of the MAP: natural parameters, their posterior covariance D V D^T, TIA and u(TIA).
CandidateFit map_candidate(const models::ExponentialFunction& f, const population_detail::MapResult& r,
                           const population_detail::MapResult& check, const TacSeries& tac,
                           const population_detail::Prior& prior, double lambda_p) {
  CandidateFit c;
  c.function = f.id();
  c.n_points = static_cast<int>(r.residual.size());  // the points used (activity > 0)
  c.n_parameters = f.n_parameters();
  c.parameter_names = f.parameter_names();
  c.fitted = r.phi.allFinite();
  c.parameters = population_detail::natural_from_phi(f, r.phi);
  const MatrixXd d = population_detail::dnatural_dphi(f, r.phi);
  c.covariance = r.ok ? MatrixXd(d * r.v * d.transpose())
                      : MatrixXd::Constant(f.n_parameters(), f.n_parameters(), std::numeric_limits<double>::quiet_NaN());
  population_detail::set_parameter_figures(c);
  c.fitted_MBq = f.evaluate(tac.time_h, c.parameters, lambda_p);
  c.standardized_residuals = population_detail::standardized_residuals(prior, tac, c.fitted_MBq);
  c.rank = r.ok ? f.n_parameters() : 0;
  c.starts = 1;  // from the population mean
  c.evaluations = r.evaluations;
  // n - K of the points used; none left (one scan, or no point > 0) is 0, not a negative count
  c.chi_square_dof = std::max(0, c.n_points - f.n_parameters());
  c.tia_MBq_h = f.integral(c.parameters, lambda_p, std::numeric_limits<double>::infinity());
  const VectorXd g = f.integral_gradient(c.parameters, lambda_p, std::numeric_limits<double>::infinity());
  c.tia_u_MBq_h = r.ok ? std::sqrt(g.dot(c.covariance * g)) : std::numeric_limits<double>::quiet_NaN();
  c.tia_dy = VectorXd::Constant(tac.time_h.size(), std::numeric_limits<double>::quiet_NaN());
  // the posterior combines the data with a population taken as known: infinite dof
  c.tia_u_dof = r.ok ? std::numeric_limits<double>::infinity() : std::numeric_limits<double>::quiet_NaN();
  if (!r.ok) c.flags.push_back("population_map_failed");
  if (!(c.tia_MBq_h > 0)) c.flags.push_back("tia_not_positive");
  judge_against_data(c, tac, prior.additive);
  judge_against_population(c, r, check);
  c.accepted = c.flags.empty();
  return c;
}

// The candidate's covariance with `extra` added (population_uncertainty), and what follows from it:
// parameter CVs, correlations and u(TIA).
void add_covariance(CandidateFit& c, const models::ExponentialFunction& f, const MatrixXd& extra, double lambda_p) {
  c.covariance += extra;
  population_detail::set_parameter_figures(c);
  const VectorXd g = f.integral_gradient(c.parameters, lambda_p, std::numeric_limits<double>::infinity());
  c.tia_u_MBq_h = std::sqrt(g.dot(c.covariance * g));
}

// "a, b and c" of names.
std::string listed(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i)
    out += (i == 0 ? "" : i + 1 == names.size() ? " and " : ", ") + names[i];
  return out;
}

// The kinds of population parameters in `names` (population_error's shifted ones), in words: "theta,
// ln Omega and ln sigma_log", ...
std::string shifted_kinds(const std::vector<std::string>& names) {
  std::vector<std::string> kinds;
  const auto add = [&](const std::string& prefix, const std::string& word) {
    if (std::any_of(names.begin(), names.end(), [&](const std::string& n) { return n.rfind(prefix, 0) == 0; }))
      kinds.push_back(word);
  };
  add("theta of ", "theta");
  add("Omega of ", "ln Omega");
  add("correlation of ", "Omega's correlations (atanh scale)");
  add("sigma_log", "ln sigma_log");
  add("b_proportional", "ln b_proportional");
  add("sigma0_MBq", "ln sigma0_MBq");
  return kinds.empty() ? std::string("none") : listed(kinds);
}

// The note of a candidate that fails the criteria: its flags and what they mean.
std::string rejection_note(const CandidateFit& c) {
  const bool conflict = std::any_of(c.flags.begin(), c.flags.end(), [](const std::string& f) {
    return f.rfind("map_residuals_exceed_population_model", 0) == 0;
  });
  return "the population MAP fails the quality criteria: " + joined_flags(c) +
         (std::count(c.flags.begin(), c.flags.end(), "no_positive_points")
              ? " (no point with activity > 0: the estimate would be the population's, not this TAC's)"
              : "") +
         (conflict ? " (the TAC's points are improbable under the population and its error model: chi2, the sum of "
                     "squared standardized residuals (of ln A for the proportional error model) and random effects of "
                     "the MAP, is above its limit; a "
                     "population far from this TAC, e.g. an edited population file, or a TAC unlike the "
                     "population's: check the administered activity, to which the population's amplitudes are "
                     "scaled, and that the population file was learned for this VOI kind and calibration)"
                   : "");
}

// The MAP's prior from a population model: theta, Omega (full where it has covariances), the
// residual error model (the additive ones on the scale of y for this administered activity; input:
// the TAC's own activity_u_MBq, InputError naming `where` without it).
population_detail::Prior map_prior(const PopulationModel& m, const models::ExponentialFunction& f, const TacSeries& tac,
                                   double administered_MBq, double lambda_p, const std::string& where) {
  auto prior = population_detail::model_prior(&f, m, lambda_p);
  prior.a0_MBq = administered_MBq;
  if (m.error_model == PopulationErrorModel::input) set_input_sd(tac, administered_MBq, where, prior);
  return prior;
}

// The prior under which the residual criterion judges a MAP of `n_points` points: the residual error
// and Omega widened for the population's estimation error (sigma_for_check, sigma_for_learned_check,
// scale_additive_for_check, check_omega_diag / check_omega_full); input: the points' own u as they are.
population_detail::Prior prior_for_check(const PopulationModel& m, const population_detail::Prior& prior, int n_points) {
  auto check = prior;
  const int k = static_cast<int>(prior.theta.size());
  if (m.error_model == PopulationErrorModel::input) {
    // nothing estimated: the points' own u, judged as they are
  } else if (prior.additive) {
    scale_additive_for_check(m, n_points, k, check);
  } else {
    check.b = std::isfinite(m.sigma_log_dof) ? sigma_for_check(m.sigma_log, m.sigma_log_dof)
                                             : sigma_for_learned_check(m, n_points, k);
  }
  check.omega_diag = check_omega_diag(m);
  if (prior.omega_full.size()) population_detail::set_omega(check, check_omega_full(m));
  return check;
}

// The population's own estimation error added to the MAP candidate's covariance and u(TIA) (not for a
// previous-cycles prior: its Omega already has the error of its mean; nor for a population without
// log_omega_se: taken as known, as before). Returns the note on u.
std::string add_population_error(const PopulationModel& m, const population_detail::Prior& prior, const VectorXd& t,
                                 const VectorXd& y, const population_detail::MapResult& r, double administered_MBq,
                                 TacFit& fit) {
  const auto& f = *prior.f;
  if (m.omega_includes_theta_error) return "u(TIA) from the posterior covariance (population parameters taken as known)";
  if (m.log_omega_se.size() != f.n_parameters()) return population_detail::population_known_note();
  if (!r.ok) return "u(TIA) from the posterior covariance (population parameters taken as known)";
  // the natural parameters of the MAP under `shifted`, NaN where it fails
  const auto natural_map = [&](const population_detail::Prior& shifted) -> VectorXd {
    const auto rs = population_detail::map_fit(shifted, t, y, r.phi);
    return rs.ok ? population_detail::natural_from_phi(f, in_MBq(f, rs, administered_MBq).phi)
                 : VectorXd::Constant(f.n_parameters(), std::numeric_limits<double>::quiet_NaN());
  };
  auto& c = fit.candidates[0];
  const double u_posterior = c.tia_u_MBq_h;
  const auto e = population_detail::population_error(
      m, prior, natural_map, population_detail::natural_from_phi(f, in_MBq(f, r, administered_MBq).phi));
  add_covariance(c, f, e.extra, prior.lambda_p);
  return population_detail::population_error_note(m, e, u_posterior, fit);
}

}  // namespace

TacFit population_map_fit(const PopulationModel& m, const TacSeries& tac, double administered_MBq, double lambda_p,
                          const std::string& where) {
  if (!(std::isfinite(administered_MBq) && administered_MBq > 0))
    throw_input_error(where, "the administered activity", format_number(administered_MBq),
                      "an activity > 0 MBq: population amplitudes are per administered activity (--activity-MBq, "
                      "or administered_MBq of the patients table)");
  const auto& f = *models::find_exponential(m.function);
  const auto prior = map_prior(m, f, tac, administered_MBq, lambda_p, where);
  const bool additive = prior.additive;
  VectorXd t, y;
  const int left_out =
      additive ? finite_points(tac, administered_MBq, t, y) : positive_points(tac, administered_MBq, t, y);
  const auto r = population_detail::map_fit(prior, t, y, m.theta);
  const auto check = population_detail::map_for_check(m, prior, population_detail::ExponentialStructure(f, t, lambda_p),
                                                      y, r);
  TacFit fit;
  fit.candidates.push_back(map_candidate(f, in_MBq(f, r, administered_MBq), check, tac, prior, lambda_p));
  const std::string u_note = add_population_error(m, prior, t, y, r, administered_MBq, fit);
  // No VOI can hold more than the whole administered activity decaying physically: a TIA above
  // A0 / lambda_p is impossible (a prior far from the data, e.g. an edited population file).
  if (auto& c = fit.candidates.back(); c.tia_MBq_h > administered_MBq / lambda_p) {
    c.flags.push_back("tia_above_physical_maximum");
    c.accepted = false;
  }
  population_detail::add_population_warnings(m, fit.candidates[0]);
  population_detail::set_map_result(fit);
  const auto& c = fit.candidates[0];
  fit.selection = "population kinetics: MAP (empirical Bayes) estimate with the population of " + m.voi_kind +
                  " (" + m.function + ", " + std::to_string(m.n_patients) + " TACs) as prior";
  fit.notes.push_back("the estimate is population-based: the TAC's points combined with the population of " +
                      m.voi_kind + "; " + u_note);
  if (left_out > 0)
    fit.notes.push_back(additive ? std::to_string(left_out) + " point(s) with an activity that is not a number left out"
                                 : std::to_string(left_out) + " point(s) with activity <= 0 left out (the model is of ln A)");
  if (!c.accepted) fit.notes.push_back(rejection_note(c));
  set_tia_intervals(fit);
  return fit;
}

namespace population_detail {

VectorXd standardized_residuals(const Prior& prior, const TacSeries& tac, const VectorXd& fitted_MBq) {
  if (prior.sd_y.size()) return (tac.activity_MBq - fitted_MBq).cwiseQuotient(tac.activity_u_MBq);  // input
  return prior.additive ? additive_standardized_residuals(tac.activity_MBq, fitted_MBq, prior.sigma0_MBq, prior.b)
                        : log_standardized_residuals(tac.activity_MBq, fitted_MBq, prior.b);
}

MapResult map_for_check(const PopulationModel& m, const Prior& prior, const StructuralModel& model, const VectorXd& y,
                        const MapResult& r) {
  const auto n = static_cast<int>(y.size());
  const auto check_prior = prior_for_check(m, prior, n);
  // The MAP under the check's larger b or prior variance, only where it can change the verdict:
  // Q falls as b and Omega grow at every phi, and the refit descends from the MAP (Levenberg-
  // Marquardt accepts only steps that lower it), so its Q is at most the MAP's own. A MAP within
  // the limit (nearly every TAC) passes under the check's prior too: no refit (it cost about a
  // third more CPU per MAP for a learned population).
  const bool check_differs = check_prior.b != prior.b || check_prior.omega_diag != prior.omega_diag ||
                             check_prior.sigma0_MBq != prior.sigma0_MBq;
  if (check_differs && r.ok && n > 0 && !(r.objective - r.log_variance_terms <= residual_limit(n)))
    return map_fit(check_prior, model, y, r.phi);
  return r;
}

namespace {

// `p` with the correlation (i, j) of its full Omega moved by dz on the atanh scale (Fisher's z),
// the variances kept: rho' = tanh(atanh(rho) + dz), always inside (-1, 1).
// (A full Omega whose covariances are all 0 has an empty omega_full: set from its diagonal.)
Prior with_correlation_shifted(Prior p, Eigen::Index i, Eigen::Index j, double dz) {
  MatrixXd w = omega_matrix(p);
  const double sd = std::sqrt(w(i, i) * w(j, j));
  w(i, j) = w(j, i) = sd * std::tanh(std::atanh(w(i, j) / sd) + dz);
  p.omega_full = w;
  return p;
}

bool positive_definite(const MatrixXd& w) { return Eigen::LLT<MatrixXd>(w).info() == Eigen::Success; }

// The correlations of a full Omega propagated as population_error's other parameters, each on the
// atanh scale (z = atanh(rho), SE s_rho / (1 - rho^2) by the delta method: a shift that cannot leave
// (-1, 1)). With K >= 3 a shifted correlation can still make Omega not positive definite: the shift
// is then halved (at most 30 times) until it is both ways, the secant scaled back to one SE, and the
// correlation named in e.shrunk. A full Omega without omega_correlation_se (a population file of
// lutdose 0.19 or earlier): its correlations named in e.missing (taken as known).
template <class Propagate>
void propagate_correlations(const PopulationModel& m, const Prior& prior, PopulationError& e, Propagate& propagate) {
  const auto k = prior.theta.size();
  if (m.omega_structure != "full") return;
  if (m.omega_correlation_se.rows() != k || m.omega_correlation_se.cols() != k)
    return e.missing.push_back("Omega's correlations");
  const MatrixXd w = omega_matrix(prior);
  for (Eigen::Index i = 0; i < k; ++i)
    for (Eigen::Index j = i + 1; j < k; ++j) {
      const double rho = w(i, j) / std::sqrt(w(i, i) * w(j, j));
      const double se_z = m.omega_correlation_se(i, j) / (1 - rho * rho);
      const auto shift = [i, j](Prior& p, double s) { p = with_correlation_shifted(p, i, j, s); };
      double kept = 1;
      while (std::isfinite(se_z) && se_z > 0 && se_z <= MAX_POPULATION_LOG_SE && kept > 1e-9 &&
             !(positive_definite(with_correlation_shifted(prior, i, j, se_z * kept).omega_full) &&
               positive_definite(with_correlation_shifted(prior, i, j, -se_z * kept).omega_full)))
        kept /= 2;
      const std::string name = "correlation of " + m.phi_names.at(static_cast<size_t>(i)) + " and " +
                               m.phi_names.at(static_cast<size_t>(j));
      if (kept < 1) e.shrunk.push_back(name + " (by " + g4(kept) + " of its standard error)");
      propagate(name, se_z, shift, false, kept);
    }
}

}  // namespace

// The population's own estimation error carried into quantities q of the MAP (methods.md §10,
// "The population's own uncertainty"): for each population parameter j of (theta_k, ln Omega_kk,
// a full Omega's correlations on the atanh scale (propagate_correlations), ln b, ln sigma0) with a
// known standard error s_j > 0, the MAP refitted (by `q`, warm-started from the MAP)
// under the population with j shifted by +s_j and by -s_j; dq_j = (q(+s_j) - q(-s_j)) / 2, the change
// over one SE (a central secant: the step is the SE itself, the range over which the population's
// error moves the MAP, so the linearisation holds where it is used, and the difference is many orders
// above the Levenberg-Marquardt tolerance of the refits). With the population parameters' errors
// independent (the file has SEs only: Cov_pop diagonal; theta and Omega are orthogonal in the
// linearised model; the covariances between a full Omega's variances and correlations are left out),
// their covariance in q is sum_j dq_j dq_j^T. A side whose MAP fails gives a one-sided secant; both
// failing make the addition unknown (NaN). Costs 2 (2K + 1) MAP fits, 2 K (K - 1) / 2 more with a full Omega.
PopulationError population_error(const PopulationModel& m, const Prior& prior,
                                 const std::function<VectorXd(const Prior&)>& q, const VectorXd& q0) {
  constexpr double NaN = std::numeric_limits<double>::quiet_NaN();
  const auto k = prior.theta.size();
  PopulationError e;
  e.extra = MatrixXd::Zero(q0.size(), q0.size());
  // the population parameter `name`: its SE `se` and `shift(prior, s)`, which moves it by s in the prior.
  // A residual error parameter (`residual`) with an SE above MAX_POPULATION_LOG_SE is at its bound
  // (sigma0 of data without additive noise: its information vanishes with it, the SE of its log with
  // it), not a population the cohort does not determine: shifted by MAX_POPULATION_LOG_SE (a factor
  // e^3 = 20 either way) and named in `at_bound` (review of 0.19: u(TIA) was unknown).
  // `kept` (correlations, population_error's note): the fraction of the SE shifted by; the secant is
  // scaled back to one SE.
  auto propagate = [&](const std::string& name, double se, auto shift, bool residual = false, double kept = 1.0) {
    if (!(se >= 0)) return e.missing.push_back(name);
    if (se == 0) return;  // known exactly: no contribution
    if (se > MAX_POPULATION_LOG_SE && residual) {
      e.at_bound.push_back(name + " at its bound (standard error " + g4(se) + ")");
      se = MAX_POPULATION_LOG_SE;
    }
    if (se > MAX_POPULATION_LOG_SE) return e.undetermined.push_back(name + " (standard error " + g4(se) + ")");
    e.shifted.push_back(name);
    auto up = prior, down = prior;
    shift(up, se * kept);
    shift(down, -se * kept);
    const VectorXd qu = q(up), qd = q(down);
    const VectorXd dq = qu.allFinite() && qd.allFinite() ? VectorXd(0.5 * (qu - qd))
                        : qu.allFinite()                 ? VectorXd(qu - q0)
                        : qd.allFinite()                 ? VectorXd(q0 - qd)
                                                         : VectorXd::Constant(q0.size(), NaN);
    e.extra += (dq / kept) * (dq / kept).transpose();
  };
  for (Eigen::Index j = 0; j < k; ++j) {
    const std::string& name = m.phi_names.at(static_cast<size_t>(j));
    propagate("theta of " + name, m.theta_se.size() == k ? m.theta_se(j) : NaN,
              [j](Prior& p, double s) { p.theta(j) += s; });
    propagate("Omega of " + name, m.log_omega_se(j), [j](Prior& p, double s) {
      p.omega_diag(j) *= std::exp(s);
      // a full Omega: its row and column j scaled by e^(s/2), so Omega_jj moves by e^s and the
      // correlations stay (they are shifted on their own: propagate_correlations)
      if (p.omega_full.size()) {
        p.omega_full.row(j) *= std::exp(s / 2);
        p.omega_full.col(j) *= std::exp(s / 2);
      }
    });
  }
  propagate_correlations(m, prior, e, propagate);
  // the residual error: ln b (proportional: sigma_log; combined: b_proportional) and ln sigma0
  // (combined, constant); input: each point's own u, nothing learned
  const bool additive = has_additive_sd(m.error_model);
  if (m.error_model == PopulationErrorModel::proportional || m.error_model == PopulationErrorModel::combined)
    propagate(additive ? "b_proportional" : "sigma_log", m.log_sigma_log_se,
              [](Prior& p, double s) { p.b *= std::exp(s); }, true);
  if (additive)
    propagate("sigma0_MBq", m.log_sigma0_se, [](Prior& p, double s) { p.sigma0_MBq *= std::exp(s); }, true);
  return e;
}

std::string population_error_note(const PopulationModel& m, const PopulationError& e, double u_posterior,
                                   TacFit& fit) {
  auto& c = fit.candidates.at(0);
  if (!e.undetermined.empty()) {
    c.tia_u_MBq_h = std::numeric_limits<double>::quiet_NaN();
    fit.tia_u_unknown_reason = "the population's " + listed(e.undetermined) +
                               " not determined by its learning cohort (a standard error above " +
                               g4(MAX_POPULATION_LOG_SE) + " on the log scale, a correlation's on the atanh scale): u(TIA) with it is not known";
    return "u(TIA) not known: " + fit.tia_u_unknown_reason + "; from the posterior alone " + g4(u_posterior) +
           " MBq h";
  }
  if (!std::isfinite(c.tia_u_MBq_h))
    fit.tia_u_unknown_reason = "the MAP under the population shifted by a standard error of its parameters failed";
  return "u(TIA) = " + g4(c.tia_u_MBq_h) + " MBq h from the posterior covariance and the population's own " +
         "estimation error (" + shifted_kinds(e.shifted) + " shifted by their standard errors of learning from " +
         std::to_string(m.n_patients) + " " + (m.voi_kind == "compartment" ? "patients' cycles" : "TACs") +
         "); from the posterior alone " + g4(u_posterior) + " MBq h" +
         (e.at_bound.empty() ? "" : "; " + listed(e.at_bound) + ": shifted by a factor e^3 only") +
         (e.shrunk.empty() ? "" : "; shifted by a fraction of the standard error to keep Omega positive definite, "
                                  "the change scaled to one standard error: " + listed(e.shrunk)) +
         (e.missing.empty() ? "" : "; not known, taken as exact: the error of " + listed(e.missing));
}

std::string population_known_note() {
  return "u(TIA) from the posterior covariance (population parameters taken as known); the population has no "
         "standard errors of ln Omega (log_omega_se: a population file of lutdose 0.16 or earlier, or written by "
         "hand), so its own estimation error is not in u";
}

void judge_map_against_data(CandidateFit& c, const TacSeries& tac) { judge_against_data(c, tac, false); }

void set_parameter_figures(CandidateFit& c) {
  const VectorXd sd = c.covariance.diagonal().cwiseSqrt();
  c.parameter_cv = sd.cwiseQuotient(c.parameters.cwiseAbs());
  c.correlation = c.covariance.cwiseQuotient(sd * sd.transpose());
}

void judge_map_against_population(CandidateFit& c, const MapResult& r, const MapResult& check) {
  judge_against_population(c, r, check);
}

void set_map_result(TacFit& fit) {
  const auto& c = fit.candidates.at(0);
  fit.method = "population MAP";
  fit.function = c.function;
  fit.selected = 0;
  fit.tia_MBq_h = c.tia_MBq_h;
  fit.tia_u_MBq_h = c.tia_u_MBq_h;
  fit.tia_u_dof = c.tia_u_dof;
  fit.accepted = c.accepted;
}

void add_population_warnings(const PopulationModel& m, CandidateFit& c) {
  if (m.n_patients < POPULATION_MIN_TACS) c.warnings.push_back("population_below_50_tacs:" + std::to_string(m.n_patients));
  if (!m.converged)  // learned, but stopped at its iteration limit (population learn --max-iterations)
    c.warnings.push_back("population_not_converged");
}

}  // namespace population_detail

}  // namespace lutdose
