// Earlier cycles as prior (population.h; methods.md §10): the prior of a later cycle of one VOI
// from the patient's own earlier cycles, and its MAP fit through population_map_fit.
#include <algorithm>
#include <cmath>
#include <map>

#include "lutdose/error.h"
#include "lutdose/kinetics/population.h"
#include "population_model.h"

namespace lutdose {

using Eigen::MatrixXd;
using Eigen::VectorXd;

namespace {

// An earlier cycle whose fit can enter the prior: an accepted individual fit of a function with
// positive terms, and a known administered activity (the amplitudes are per administered activity).
bool usable(const EarlierCycle& e) {
  return e.fit.method == "fit" && e.fit.accepted && e.fit.selected >= 0 &&
         population_function_supported(e.fit.function) && std::isfinite(e.administered_MBq) &&
         e.administered_MBq > 0;
}

// The function of most usable earlier fits; a tie goes to the latest cycle's ("" when none).
std::string prior_function(const std::vector<EarlierCycle>& earlier) {
  std::map<std::string, int> count;
  for (const auto& e : earlier)
    if (usable(e)) ++count[e.fit.function];
  std::string best;
  for (const auto& e : earlier)  // in cycle order: a later cycle wins a tie
    if (usable(e) && count[e.fit.function] >= (best.empty() ? 0 : count[best])) best = e.fit.function;
  return best;
}

// One earlier cycle on the log scale: phi (amplitudes per administered activity), its covariance
// V = D^-1 C D^-T (D = dp/dphi, the delta method), and the sum of squared log residuals with
// their count.
struct LogCycle {
  VectorXd phi;
  MatrixXd v;
  double ss_log = 0;
  int n_log = 0;
};

std::optional<LogCycle> log_cycle(const models::ExponentialFunction& f, const EarlierCycle& e) {
  const CandidateFit& c = e.fit.candidates[static_cast<size_t>(e.fit.selected)];
  LogCycle l;
  l.phi = population_detail::phi_from_natural(f, c.parameters);
  const MatrixXd d = population_detail::dnatural_dphi(f, l.phi);
  const Eigen::FullPivLU<MatrixXd> lu(d);
  if (!l.phi.allFinite() || !c.covariance.allFinite() || !lu.isInvertible()) return std::nullopt;
  const MatrixXd d_inv = lu.inverse();
  l.v = d_inv * c.covariance * d_inv.transpose();
  l.phi.head(f.n_amplitudes()).array() -= std::log(e.administered_MBq);
  for (Eigen::Index j = 0; j < e.tac.activity_MBq.size() && j < c.fitted_MBq.size(); ++j)
    if (e.tac.activity_MBq(j) > 0 && c.fitted_MBq(j) > 0) {
      const double r = std::log(e.tac.activity_MBq(j) / c.fitted_MBq(j));
      l.ss_log += r * r;
      ++l.n_log;
    }
  return l;
}

// theta, Omega (diagonal) and the inter-cycle SD from the earlier cycles' log parameters.
void set_prior_moments(const std::vector<LogCycle>& cycles, PreviousCyclesPrior& p) {
  const auto k = cycles.front().phi.size();
  const double n = static_cast<double>(cycles.size());
  VectorXd mean = VectorXd::Zero(k), v_mean = VectorXd::Zero(k), ss = VectorXd::Zero(k);
  for (const auto& c : cycles) mean += c.phi / n, v_mean += c.v.diagonal() / n;
  for (const auto& c : cycles) ss += (c.phi - mean).cwiseAbs2();
  VectorXd w2 = VectorXd::Constant(k, INTER_CYCLE_SD_LOG * INTER_CYCLE_SD_LOG);
  if (cycles.size() >= 3)  // the moment estimate E[s^2] = w^2 + mean V, where larger than the default
    for (Eigen::Index i = 0; i < k; ++i)
      if (ss(i) / (n - 1) - v_mean(i) > w2(i)) w2(i) = ss(i) / (n - 1) - v_mean(i), p.spread_from_data = true;
  p.model.theta = mean;
  p.model.theta_se = ((w2 + v_mean) / n).cwiseSqrt();
  // the predictive variance of a new cycle: its own change w^2 plus the error of the mean
  p.model.omega = (w2 * (1.0 + 1.0 / n) + v_mean / n).asDiagonal();
  p.model.omega_includes_theta_error = true;  // theta_se^2 = (w^2 + mean V) / n is in it
  p.inter_cycle_sd_log = w2.cwiseSqrt();
}

// "1, 2 and 3"
std::string cycle_list(const std::vector<int>& cycles) {
  std::string s;
  for (size_t i = 0; i < cycles.size(); ++i)
    s += (i == 0 ? "" : i + 1 == cycles.size() ? " and " : ", ") + std::to_string(cycles[i]);
  return s;
}

}  // namespace

std::optional<PreviousCyclesPrior> previous_cycles_prior(const std::vector<EarlierCycle>& earlier,
                                                         std::string& why_not) {
  const std::string id = prior_function(earlier);
  if (id.empty()) {
    why_not = "no earlier cycle of this VOI has an accepted individual fit of E1p, E1, E2u or E2 with a known "
              "administered activity";
    return std::nullopt;
  }
  const auto& f = *models::find_exponential(id);
  PreviousCyclesPrior p;
  std::vector<LogCycle> logs;
  double ss = 0;
  int n_log = 0, dof = 0;
  for (const auto& e : earlier) {
    if (!usable(e) || e.fit.function != id) continue;
    const auto l = log_cycle(f, e);
    if (!l) continue;  // a covariance that is not finite or a flat parameterisation: not usable
    logs.push_back(*l);
    p.cycles.push_back(e.cycle);
    ss += l->ss_log, n_log += l->n_log, dof += l->n_log - f.n_parameters();
  }
  if (logs.empty() || dof < 1) {
    why_not = logs.empty() ? "the earlier " + id + " fits have no finite covariance"
                           : "the earlier " + id + " fits leave no residual degrees of freedom to estimate the noise";
    return std::nullopt;
  }
  set_prior_moments(logs, p);
  auto& m = p.model;
  m.voi_kind = earlier.front().tac.voi;
  m.function = id;
  m.phi_names = population_parameter_names(f);
  m.sigma_log = std::max(std::sqrt(ss / dof), PRIOR_MIN_SIGMA_LOG);
  m.sigma_log_dof = dof;  // an estimate: the MAP's residual criterion allows for its upper bound
  m.n_patients = static_cast<int>(logs.size());
  m.n_observations = n_log;
  m.converged = true;  // closed form: nothing iterated
  return p;
}

TacFit previous_cycles_map_fit(const PreviousCyclesPrior& prior, const TacSeries& tac, double administered_MBq,
                               double lambda_p_per_h, const std::string& where) {
  TacFit fit = population_map_fit(prior.model, tac, administered_MBq, lambda_p_per_h, where);
  auto& w = fit.candidates.front().warnings;  // the cohort-size warning is for learned populations
  w.erase(std::remove_if(w.begin(), w.end(),
                         [](const std::string& x) { return x.rfind("population_below_50_tacs", 0) == 0; }),
          w.end());
  const std::string cycles = cycle_list(prior.cycles);
  fit.method = "previous-cycles MAP";
  fit.selection = "previous-cycles kinetics: MAP estimate with the patient's earlier cycle(s) " + cycles +
                  " of " + tac.voi + " as prior (" + prior.model.function + ")";
  fit.notes.front() =
      "the estimate uses the patient's earlier cycles: this cycle's points combined with a prior from cycle(s) " +
      cycles + " of this VOI (their mean log parameters; their fits' variance plus an inter-cycle SD of up to " +
      format_number(prior.inter_cycle_sd_log.maxCoeff()) + " on the log scale, " +
      (prior.spread_from_data ? "from their spread" : "the stated default") +
      "); u(TIA) from the posterior covariance (the prior taken as known)";
  if (!fit.accepted) {
    auto& last = fit.notes.back();
    const std::string from = "the population MAP";
    if (last.rfind(from, 0) == 0) last.replace(0, from.size(), "the previous-cycles MAP");
  }
  return fit;
}

}  // namespace lutdose
