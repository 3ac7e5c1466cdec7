// A compartment model as the structural model of a population (compartment_population.h).
#include "lutdose/kinetics/compartment_population.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>

#include "lutdose/error.h"
#include "population_model.h"

namespace lutdose {

using Eigen::MatrixXd;
using Eigen::VectorXd;

namespace {

// The solver of a unit's f: the individual fit's (1e-5 relative) with its absolute tolerance below the
// unit's smallest point. The log-scale error model compares ln y with ln f at every point, so f must be
// accurate relative to itself however small: with the fit's floor of 1e-12 of A0 a blood point at 96 h
// (2.6e-15 of A0 in blood_organ_linear) had a ln f of solver noise, and 60 patients sampled to 168 h
// learned b = 1.4 instead of 0.10 (review of 0.18). 1e-4 of the smallest point (`y_min`, a fraction of
// A0) bounds ln f's error there by about 1e-4, far below any b; no floor at all (1e-300) resolved the
// organ's start from 0 to no purpose and made learning 2.5 times slower.
models::SolverOptions unit_solver(double y_min) {
  models::SolverOptions s = models::FitOptions().fit_solver;
  if (y_min > 0) s.abs_tol_fraction = std::min(s.abs_tol_fraction, 1e-4 * y_min);
  return s;
}

constexpr double NaN = std::numeric_limits<double>::quiet_NaN();

// The smallest y > 0 (0 when none): the additive error models keep readings <= 0, which set no scale.
double smallest_positive(const VectorXd& y) {
  double out = 0;
  for (Eigen::Index j = 0; j < y.size(); ++j)
    if (y(j) > 0 && (out == 0 || y(j) < out)) out = y(j);
  return out;
}

// The points of one unit, stacked VOI by VOI in the model's order of observations.
struct UnitPoints {
  VectorXd t_h, y;               // time [h] and activity per administered activity
  VectorXd u;                    // the input error model: each point's activity_u_MBq / A0; empty otherwise
  std::vector<int> column;       // the point's observation (column of CompartmentModel::observe)
  std::vector<std::string> vois;  // the observed VOIs with points, in that order
  std::vector<Eigen::Index> first, count;  // their points in t_h / y
};

VectorXd as_vector(std::vector<double>& v) {
  return Eigen::Map<VectorXd>(v.data(), static_cast<Eigen::Index>(v.size()));
}

// The input error model needs every point's standard uncertainty: InputError naming `where` and the TAC.
void check_input_u(const TacSeries& s, const std::string& where) {
  if (s.activity_u_MBq.size() != s.activity_MBq.size())
    throw_input_error(where + ": " + s.where(), "activity_u_MBq", "missing",
                      "every point's standard uncertainty (activity_u_MBq > 0) with the input error model");
}

// The unit's points of the VOIs `model` observes under the error model `e`: the proportional one
// models ln A and keeps the points > 0, the additive ones (combined, constant, input) every point with
// a finite activity (a reading of 0 is data). A point not kept is left out (`left_out` counts it) or,
// with `where` non-empty, refused (InputError naming the TAC). The input model's points without
// activity_u_MBq are refused, naming `where` or else `map_where`.
UnitPoints unit_points(const models::CompartmentModel& model, const std::vector<TacSeries>& tacs, double a0,
                       PopulationErrorModel e, const std::string& where, int* left_out,
                       const std::string& map_where = "") {
  const bool additive = e != PopulationErrorModel::proportional, input = e == PopulationErrorModel::input;
  std::vector<double> t, y, sd;
  UnitPoints u;
  for (const auto& name : model.observation_names())
    for (const auto& s : tacs) {
      if (s.voi != name) continue;
      if (input) check_input_u(s, where.empty() ? map_where : where);
      u.vois.push_back(name);
      u.first.push_back(static_cast<Eigen::Index>(t.size()));
      for (Eigen::Index j = 0; j < s.activity_MBq.size(); ++j) {
        if (additive ? std::isfinite(s.activity_MBq(j)) : s.activity_MBq(j) > 0) {
          t.push_back(s.time_h(j)), y.push_back(s.activity_MBq(j) / a0);
          if (input) sd.push_back(s.activity_u_MBq(j) / a0);
          u.column.push_back(model.observation_index(name));
        } else if (!where.empty()) {
          throw_input_error(where + ": " + s.where(), "activity_MBq", format_number(s.activity_MBq(j)),
                            additive ? "finite activities" : "activities > 0 for a compartment population of the "
                                       "proportional error model (the logarithm of the activity is modelled)");
        } else if (left_out) {
          ++*left_out;
        }
      }
      u.count.push_back(static_cast<Eigen::Index>(t.size()) - u.first.back());
    }
  u.t_h = as_vector(t), u.y = as_vector(y);
  if (input) u.u = as_vector(sd);
  return u;
}

// The compartment model at one unit's points: f = observe(t; p)[voi] / A0 with p the model's values
// and the free ones e^phi. A rate expression that comes out negative for some phi (e.g. "k_b - k_in"
// with k_in > k_b) makes the model throw ModelError: that is a failed evaluation (NaN), which the MAP
// functors map to a residual of 1e30, so Levenberg-Marquardt steps back; it is not clamped to 0
// (clamp_negative_rates), which would make the objective flat there and the MAP's Jacobian wrong.
class CompartmentStructure final : public population_detail::StructuralModel {
 public:
  CompartmentStructure(const models::CompartmentModel& model, std::vector<int> free, const UnitPoints& points,
                       double a0, double lambda_p)
      : model_(model), free_(std::move(free)), base_(model.default_parameters()), a0_(a0), lambda_p_(lambda_p),
        solver_(unit_solver(smallest_positive(points.y))) {
    std::vector<double> times(points.t_h.data(), points.t_h.data() + points.t_h.size());
    std::sort(times.begin(), times.end());
    times.erase(std::unique(times.begin(), times.end()), times.end());
    times_ = Eigen::Map<VectorXd>(times.data(), static_cast<Eigen::Index>(times.size()));
    for (Eigen::Index j = 0; j < points.t_h.size(); ++j)
      row_.push_back(static_cast<Eigen::Index>(std::lower_bound(times.begin(), times.end(), points.t_h(j)) - times.begin()));
    column_ = points.column;
  }

  // the model's parameters at phi: the file's values, the free ones e^phi (phi clamped to +-50, as the
  // exponential family's amplitudes: beyond, e^phi overflows the solver)
  VectorXd parameters(const VectorXd& phi) const {
    VectorXd p = base_;
    for (size_t k = 0; k < free_.size(); ++k)
      p(free_[k]) = std::exp(std::clamp(phi(static_cast<Eigen::Index>(k)), -50.0, 50.0));
    return p;
  }

  VectorXd evaluate(const VectorXd& phi, MatrixXd* jac) const override {
    const VectorXd f = values(phi);
    if (!jac) return f;
    const auto k = phi.size();
    const double h = COMPARTMENT_POPULATION_FD_STEP;
    jac->resize(f.size(), k);
    for (Eigen::Index c = 0; c < k; ++c) {
      VectorXd up = phi, down = phi;
      up(c) += h, down(c) -= h;
      const VectorXd fu = values(up), fd = values(down);
      // central where both solve; one-sided next to a failed evaluation (a rate at 0)
      jac->col(c) = fu.allFinite() && fd.allFinite() ? VectorXd((fu - fd) / (2 * h))
                    : fu.allFinite()                 ? VectorXd((fu - f) / h)
                                                     : VectorXd((f - fd) / h);
    }
    return f;
  }

 private:
  VectorXd values(const VectorXd& phi) const {
    VectorXd f(static_cast<Eigen::Index>(row_.size()));
    try {
      const MatrixXd obs = model_.observe(times_, parameters(phi), a0_, lambda_p_, solver_);
      for (size_t j = 0; j < row_.size(); ++j)
        f(static_cast<Eigen::Index>(j)) = obs(row_[j], column_[j]) / a0_;
    } catch (const models::ModelError&) {
      f.setConstant(NaN);
    }
    return f;
  }

  const models::CompartmentModel& model_;
  std::vector<int> free_;
  VectorXd base_;
  double a0_, lambda_p_;
  models::SolverOptions solver_;
  VectorXd times_;
  std::vector<Eigen::Index> row_;
  std::vector<int> column_;
};

std::vector<int> parameter_indices(const models::CompartmentModel& model, const std::vector<std::string>& names) {
  std::vector<int> out;
  for (const auto& n : names) out.push_back(model.parameter_index(n));
  return out;
}

// The units as PopulationData with their structural models. InputError naming `path` as
// learn_compartment_population.
PopulationData compartment_data(const models::CompartmentModel& model, const std::vector<int>& free,
                                const std::vector<CompartmentUnit>& units, double lambda_p, PopulationErrorModel e,
                                const std::string& path) {
  PopulationData d;
  for (size_t i = 0; i < units.size(); ++i) {
    const double a0 = units[i].administered_MBq;
    const std::string where = path + ": unit " + std::to_string(i + 1) +
                              (units[i].tacs.empty() ? std::string() : " (" + units[i].tacs[0].where() + ")");
    if (!(std::isfinite(a0) && a0 > 0))
      throw_input_error(where, "the administered activity", format_number(a0),
                        "an activity > 0 MBq (the compartment model is simulated with it)");
    const UnitPoints u = unit_points(model, units[i].tacs, a0, e, path, nullptr);
    if (u.y.size() == 0) continue;
    d.t_h.push_back(u.t_h);
    d.y_per_administered.push_back(u.y);
    if (u.u.size()) d.u_per_administered.push_back(u.u);
    d.administered_MBq.push_back(a0);
    d.structure.push_back(std::make_shared<CompartmentStructure>(model, free, u, a0, lambda_p));
  }
  return d;
}

void check_compartment_options(const PopulationOptions& o, size_t n_units, const std::string& path) {
  if (n_units < 2)
    throw_input_error(path, "the number of units (patients' cycles with a VOI the model observes)",
                      std::to_string(n_units), "at least 2");
  if (o.omega_structure == OmegaStructure::full && n_units < static_cast<size_t>(POPULATION_MIN_TACS))
    throw_input_error(path, "the number of units for a full Omega", std::to_string(n_units),
                      "at least " + std::to_string(POPULATION_MIN_TACS) + " (docs/population.md, Full Omega)");
}

}  // namespace

std::vector<std::string> compartment_free_parameters(const models::CompartmentModel& model,
                                                     const std::vector<std::string>& names, const std::string& where,
                                                     const std::string& model_path) {
  std::vector<std::string> out;
  if (names.empty()) {
    for (const auto& p : model.parameters())
      if (p.fit) out.push_back(p.name);
  }
  for (const auto& n : names) {
    if (model.parameter_index(n) < 0)
      throw_input_error(where, "a free parameter", n, "a parameter of the model " + model.name());
    if (std::find(out.begin(), out.end(), n) != out.end())
      throw_input_error(where, "a free parameter", n, "each free parameter once");
    out.push_back(n);
  }
  if (out.empty())  // nothing named: the model file has no parameter marked (review of 0.20: the TACs were named)
    throw_input_error(model_path, "the parameters with \"fit\": true", "none",
                      "at least one: the parameters a population of " + model.name() + " learns when " + where +
                          " names none");
  return out;
}

std::string unobserved_vois_note(const models::CompartmentModel& model, const std::vector<TacSeries>& series) {
  std::set<std::string> left_out;
  for (const auto& s : series)
    if (model.observation_index(s.voi) < 0) left_out.insert(s.voi);
  if (left_out.empty()) return "";
  std::string names;
  for (const auto& v : left_out) names += (names.empty() ? "" : ", ") + v;
  return "VOIs the model " + model.name() + " does not observe, left out of the population: " + names;
}

std::vector<CompartmentUnit> compartment_units(const models::CompartmentModel& model,
                                               const std::vector<TacSeries>& series,
                                               const std::vector<double>& administered_MBq) {
  if (series.size() != administered_MBq.size())
    throw std::invalid_argument("compartment_units: " + std::to_string(administered_MBq.size()) +
                                " administered activities for " + std::to_string(series.size()) + " TACs");
  std::map<std::pair<std::string, int>, CompartmentUnit> groups;
  std::vector<std::pair<std::string, int>> order;
  for (size_t i = 0; i < series.size(); ++i) {
    if (model.observation_index(series[i].voi) < 0) continue;
    const std::pair<std::string, int> key{series[i].patient, series[i].cycle};
    auto [it, added] = groups.try_emplace(key);
    if (added) order.push_back(key), it->second.administered_MBq = administered_MBq[i];
    it->second.tacs.push_back(series[i]);
  }
  std::vector<CompartmentUnit> out;
  for (const auto& key : order) out.push_back(std::move(groups[key]));
  return out;
}

namespace {

// A free parameter the cohort's points do not determine (theta_se not finite or above
// MAX_POPULATION_LOG_SE, a factor e^3 = 20 at one SE) is refused: the EM leaves it near its start, the
// model file's value, with its Omega there too, and every MAP would carry that value as if learned
// (review of 0.18: blood-only points learned k_in and k_out with standard errors of none and 194, the
// file saying converged).
void refuse_undetermined(const PopulationModel& m, const std::string& path) {
  for (Eigen::Index k = 0; k < m.theta.size(); ++k) {
    const double se = m.theta_se.size() == m.theta.size() ? m.theta_se(k) : NaN;
    if (se <= MAX_POPULATION_LOG_SE) continue;
    const std::string& name = m.phi_names.at(static_cast<size_t>(k));
    throw_input_error(path, "the standard error of " + name + " learned", format_number(se),
                      "at most " + format_number(MAX_POPULATION_LOG_SE) + " on the log scale: the cohort's points "
                      "do not determine " + name.substr(4) + " (give the VOIs whose curves depend on it, or leave "
                      "it out of --free-parameters: it then keeps the model file's value)");
  }
}

}  // namespace

CompartmentPopulation learn_compartment_population(const models::CompartmentModel& model,
                                                   const std::string& model_sha256,
                                                   const std::vector<CompartmentUnit>& units, double lambda_p,
                                                   const PopulationOptions& o,
                                                   const std::vector<std::string>& free_parameters,
                                                   const std::string& path) {
  CompartmentPopulation out;
  out.model_name = model.name();
  out.model_sha256 = model_sha256;
  out.observed_vois = model.observation_names();
  out.free_parameters = compartment_free_parameters(model, free_parameters, path, "the model file of " + model.name());
  const auto free = parameter_indices(model, out.free_parameters);
  const PopulationData d = compartment_data(model, free, units, lambda_p, o.error_model, path);
  check_compartment_options(o, d.t_h.size(), path);
  auto& m = out.model;
  m.voi_kind = COMPARTMENT_POPULATION_KIND;
  m.function = "compartment:" + model.name();
  m.error_model = o.error_model;
  for (const auto& n : out.free_parameters) m.phi_names.push_back("log_" + n);
  m.n_patients = static_cast<int>(d.t_h.size());
  for (const auto& y : d.y_per_administered) m.n_observations += static_cast<int>(y.size());
  const auto k = static_cast<Eigen::Index>(free.size());
  VectorXd theta(k);
  const VectorXd p0 = model.default_parameters();
  for (Eigen::Index j = 0; j < k; ++j) theta(j) = std::log(p0(free[static_cast<size_t>(j)]));
  if (!theta.allFinite())
    throw_input_error(path, "the start of the free parameters (the model file's values)", "0",
                      "values > 0 (the population is learned on their logarithms)");
  population_detail::Prior prior{nullptr, theta, VectorXd::Constant(k, 0.09), 0.1, lambda_p};
  population_detail::set_error_model_start(prior, o.error_model, d);
  population_detail::estimate_population(prior, d, o, m);
  refuse_undetermined(m, path);
  m.candidates.push_back({m.function, m.minus2_log_likelihood, m.aicc, m.bic, m.converged, m.iterations});
  return out;
}

namespace {

// TIA per observation [MBq h] at phi (FitOptions().solver, as the individual fit's reported TIAs);
// NaN where the model fails (a negative rate).
VectorXd tia_at(const models::CompartmentModel& model, const CompartmentStructure& s, const VectorXd& phi, double a0,
                double lambda_p) {
  try {
    return model.tia_per_observation(s.parameters(phi), a0, lambda_p, models::FitOptions().solver);
  } catch (const models::ModelError&) {
    return VectorXd::Constant(static_cast<Eigen::Index>(model.observations().size()), NaN);
  }
}

// d TIA / d phi (observations x K) by central differences (COMPARTMENT_POPULATION_FD_STEP).
MatrixXd tia_gradient(const models::CompartmentModel& model, const CompartmentStructure& s, const VectorXd& phi,
                      double a0, double lambda_p) {
  const double h = COMPARTMENT_POPULATION_FD_STEP;
  MatrixXd g(static_cast<Eigen::Index>(model.observations().size()), phi.size());
  for (Eigen::Index c = 0; c < phi.size(); ++c) {
    VectorXd up = phi, down = phi;
    up(c) += h, down(c) -= h;
    g.col(c) = (tia_at(model, s, up, a0, lambda_p) - tia_at(model, s, down, a0, lambda_p)) / (2 * h);
  }
  return g;
}

// The MAP and what every observed VOI's candidate shares.
struct CycleMap {
  population_detail::MapResult r;
  VectorXd p;        // all model parameters at the MAP
  VectorXd p_typical;  // all model parameters at the population's theta (its typical curve)
  VectorXd tia;      // per observation [MBq h]
  MatrixXd tia_g;    // d TIA / d phi
  std::vector<std::string> cycle_flags;  // the criterion of the whole cycle's points
  // the population's own estimation error in (the free parameters, each observation's TIA); none when
  // the MAP failed or the population has no standard errors (taken as known)
  std::optional<population_detail::PopulationError> pop_error;
};

// Points near zero where the population does not expect them: a reading at or below
// proportional_floor_fraction (1e-3) of the VOI's largest while the population's typical curve
// (`typical`, the model at theta) is above that fraction of its largest at the VOI's points there (a
// zero typed in, activity below detection). The exponential MAP's rule (any point below 1e-3 of the
// largest) flagged a point the model itself puts that low, e.g. a blood curve clearing with a 2 h
// half-life at 24 h (2e-4 of its 1-h value), so every such cycle kept its individual fits (0.18).
// The typical curve, not the MAP's: the MAP follows a near-zero reading part of the way (a typed-in
// organ zero at 168 h took the MAP's curve there to 3e-4 of its largest). Also no point > 0 at all.
// Under the additive error models points near zero are what the model is for: no near-zero flag.
void judge_against_data(CandidateFit& c, const TacSeries& tac, const VectorXd& typical, bool additive) {
  if (!(tac.activity_MBq.array() > 0).any()) return c.flags.push_back("no_positive_points");
  if (additive) return;
  const double fraction = FitOptions().proportional_floor_fraction;
  const double y_limit = fraction * tac.activity_MBq.maxCoeff(), f_limit = fraction * typical.maxCoeff();
  int near_zero = 0;
  for (Eigen::Index j = 0; j < tac.activity_MBq.size(); ++j)
    if (tac.activity_MBq(j) <= y_limit && !(typical(j) <= f_limit)) ++near_zero;
  if (near_zero > 0) c.flags.push_back("near_zero_activity_at_" + std::to_string(near_zero) + "_points");
}

// The model's observation `col` at `t` with parameters `p`; NaN where the model fails.
VectorXd observed_at(const models::CompartmentModel& model, const VectorXd& t, const VectorXd& p, double a0,
                     double lambda_p, int col) {
  try {
    return model.observe(t, p, a0, lambda_p, models::FitOptions().solver).col(col);
  } catch (const models::ModelError&) {
    return VectorXd::Constant(t.size(), NaN);
  }
}

// The candidate of the observed VOI `tac` (column `col` of the model's observations).
CandidateFit voi_candidate(const CompartmentPopulation& pop, const models::CompartmentModel& model, const TacSeries& tac,
                           int col, const CycleMap& cm, const population_detail::Prior& prior, double a0,
                           double lambda_p) {
  const auto& r = cm.r;
  const auto k = r.phi.size();
  CandidateFit c;
  c.function = pop.model.function;
  // the points used: > 0 (proportional), finite (additive)
  c.n_points = static_cast<int>(prior.additive ? tac.activity_MBq.array().isFinite().count()
                                               : (tac.activity_MBq.array() > 0).count());
  c.n_parameters = static_cast<int>(k);
  c.parameter_names = pop.free_parameters;
  c.fitted = r.phi.allFinite();
  c.parameters = r.phi.array().exp().matrix();
  const MatrixXd d = c.parameters.asDiagonal();
  c.covariance = r.ok ? MatrixXd(d * r.v * d) : MatrixXd::Constant(k, k, NaN);
  population_detail::set_parameter_figures(c);
  c.fitted_MBq = observed_at(model, tac.time_h, cm.p, a0, lambda_p, col);
  c.standardized_residuals = population_detail::standardized_residuals(prior, tac, c.fitted_MBq);
  c.rank = r.ok ? static_cast<int>(k) : 0;
  c.starts = 1;  // from the population mean
  c.evaluations = r.evaluations;
  c.chi_square_dof = std::max(0, c.n_points - static_cast<int>(k));
  c.tia_MBq_h = cm.tia(col);
  const VectorXd g = cm.tia_g.row(col).transpose();
  c.tia_u_MBq_h = r.ok ? std::sqrt(g.dot(r.v * g)) : NaN;
  c.tia_dy = VectorXd::Constant(tac.time_h.size(), NaN);
  c.tia_u_dof = r.ok ? std::numeric_limits<double>::infinity() : NaN;
  if (!r.ok) c.flags.push_back("population_map_failed");
  if (!(c.tia_MBq_h > 0)) c.flags.push_back("tia_not_positive");
  judge_against_data(c, tac, observed_at(model, tac.time_h, cm.p_typical, a0, lambda_p, col), prior.additive);
  // the population's criterion is the cycle's (cm)
  c.flags.insert(c.flags.end(), cm.cycle_flags.begin(), cm.cycle_flags.end());
  c.accepted = c.flags.empty();
  population_detail::add_population_warnings(pop.model, c);
  return c;
}

// The population's own estimation error added to the candidate of observation `col` (its covariance
// and u(TIA)); the note on u.
std::string add_population_error(const CompartmentPopulation& pop, const CycleMap& cm, int col, TacFit& fit) {
  if (!cm.pop_error)
    return cm.r.ok && pop.model.log_omega_se.size() != cm.r.phi.size()
               ? population_detail::population_known_note()
               : "u(TIA) from the posterior covariance (population parameters taken as known)";
  const auto& e = *cm.pop_error;
  auto& c = fit.candidates.at(0);
  const auto k = c.parameters.size();
  const double u_posterior = c.tia_u_MBq_h;
  c.covariance += e.extra.topLeftCorner(k, k);
  population_detail::set_parameter_figures(c);
  c.tia_u_MBq_h = std::sqrt(u_posterior * u_posterior + e.extra(k + col, k + col));
  return population_detail::population_error_note(pop.model, e, u_posterior, fit);
}

// The TacFit of observation `col` from its candidate.
TacFit voi_fit(const CompartmentPopulation& pop, CandidateFit c, int left_out, const CycleMap& cm, int col) {
  TacFit fit;
  const bool accepted = c.accepted;
  const std::string flags = joined_flags(c);
  fit.candidates.push_back(std::move(c));
  const std::string u_note = add_population_error(pop, cm, col, fit);
  population_detail::set_map_result(fit);
  fit.selection = "population kinetics: MAP (empirical Bayes) estimate of the compartment model " + pop.model_name +
                  " (free parameters " + std::to_string(pop.free_parameters.size()) + ", population of " +
                  std::to_string(pop.model.n_patients) + " patients' cycles) fitted jointly to the cycle's VOIs";
  fit.notes.push_back("the estimate is population-based: the cycle's points combined with the compartment population; " +
                      u_note);
  if (left_out > 0)
    fit.notes.push_back(std::to_string(left_out) +
                        (pop.model.error_model == PopulationErrorModel::proportional
                             ? " point(s) of the cycle with activity <= 0 left out (the model is of ln A)"
                             : " point(s) of the cycle with an activity that is not a number left out"));
  if (!accepted) fit.notes.push_back("the population MAP fails the quality criteria: " + flags);
  set_tia_intervals(fit);
  return fit;
}

// The population's own estimation error at the cycle's MAP in (the free parameters, each observation's
// TIA), from MAPs refitted under the population shifted by its standard errors (warm-started from the
// MAP); none when the MAP failed or the population has no standard errors.
std::optional<population_detail::PopulationError> cycle_population_error(const PopulationModel& m,
                                                                          const population_detail::Prior& prior,
                                                                          const models::CompartmentModel& model,
                                                                          const CompartmentStructure& s,
                                                                          const VectorXd& y, const CycleMap& cm,
                                                                          double a0, double lambda_p) {
  const auto k = cm.r.phi.size();
  if (!cm.r.ok || m.omega_includes_theta_error || m.log_omega_se.size() != k) return std::nullopt;
  const auto n = cm.tia.size();
  const auto q = [&](const population_detail::Prior& shifted) -> VectorXd {
    const auto rs = population_detail::map_fit(shifted, s, y, cm.r.phi);
    if (!rs.ok) return VectorXd::Constant(k + n, NaN);
    VectorXd out(k + n);
    out << rs.phi.array().exp().matrix(), tia_at(model, s, rs.phi, a0, lambda_p);
    return out;
  };
  VectorXd q0(k + n);
  q0 << cm.r.phi.array().exp().matrix(), cm.tia;
  return population_detail::population_error(m, prior, q, q0);
}

// The prior of a compartment population's MAP of the unit `u` with administered activity a0 [MBq]
// (the additive error models' sigma0 on the scale of y; input: the points' own u).
population_detail::Prior compartment_prior(const PopulationModel& m, const UnitPoints& u, double a0, double lambda_p) {
  auto prior = population_detail::model_prior(nullptr, m, lambda_p);
  prior.a0_MBq = a0;
  if (m.error_model == PopulationErrorModel::input) prior.sd_y = u.u;
  return prior;
}

void check_same_model(const CompartmentPopulation& pop, const models::CompartmentModel& model, const std::string& where) {
  if (model.name() != pop.model_name)
    throw_input_error(where, "the compartment model", model.name(),
                      pop.model_name + ", the structural model of the population");
  for (const auto& n : pop.free_parameters)
    if (model.parameter_index(n) < 0)
      throw_input_error(where, "a free parameter of the population", n, "a parameter of the model " + model.name());
}

}  // namespace

std::vector<CompartmentMapFit> compartment_population_map_fit(const CompartmentPopulation& pop,
                                                              const models::CompartmentModel& model,
                                                              const std::vector<TacSeries>& tacs, double a0,
                                                              double lambda_p, const std::string& where) {
  if (!(std::isfinite(a0) && a0 > 0))
    throw_input_error(where, "the administered activity", format_number(a0),
                      "an activity > 0 MBq: the compartment model is simulated with it (--activity-MBq)");
  check_same_model(pop, model, where);
  int left_out = 0;
  const UnitPoints u = unit_points(model, tacs, a0, pop.model.error_model, "", &left_out, where);
  const auto prior = compartment_prior(pop.model, u, a0, lambda_p);
  const CompartmentStructure s(model, parameter_indices(model, pop.free_parameters), u, a0, lambda_p);
  CycleMap cm;
  cm.r = population_detail::map_fit(prior, s, u.y, pop.model.theta);
  cm.p = s.parameters(cm.r.phi);
  cm.p_typical = s.parameters(pop.model.theta);
  cm.tia = tia_at(model, s, cm.r.phi, a0, lambda_p);
  cm.tia_g = tia_gradient(model, s, cm.r.phi, a0, lambda_p);
  CandidateFit cycle;  // the residual criterion of the whole cycle's points
  cycle.n_points = static_cast<int>(u.y.size());
  population_detail::judge_map_against_population(cycle, cm.r,
                                                  population_detail::map_for_check(pop.model, prior, s, u.y, cm.r));
  cm.cycle_flags = cycle.flags;
  cm.pop_error = cycle_population_error(pop.model, prior, model, s, u.y, cm, a0, lambda_p);
  std::vector<CompartmentMapFit> out;
  for (const auto& tac : tacs) {
    const int col = model.observation_index(tac.voi);
    if (col < 0 || tac.time_h.size() == 0) continue;
    out.push_back(
        {tac.voi, voi_fit(pop, voi_candidate(pop, model, tac, col, cm, prior, a0, lambda_p), left_out, cm, col), cm.p});
  }
  return out;
}

CompartmentCycleFit compartment_population_cycle(const CompartmentPopulation& pop, const models::CompartmentModel& model,
                                                 const std::vector<TacSeries>& tacs, double a0, double lambda_p,
                                                 const std::string& where) {
  CompartmentCycleFit out;
  for (const auto& tac : tacs)
    if (model.observation_index(tac.voi) >= 0 && tac.time_h.size() > 0) out.observed.push_back(tac.voi);
  if (out.observed.empty()) return out;
  const auto fits = compartment_population_map_fit(pop, model, tacs, a0, lambda_p, where);
  out.accepted = std::all_of(fits.begin(), fits.end(), [](const CompartmentMapFit& f) { return f.fit.accepted; });
  for (const auto& f : fits)
    if (!f.fit.accepted)
      out.failure += (out.failure.empty() ? "population MAP of " : "; ") + f.voi + ": " + joined_flags(f.fit.candidates[0]);
  if (!out.accepted) return out;
  std::vector<double> t;
  MatrixXd curve;
  try {
    curve = sample_compartment_curves(model, fits.front().parameters, a0, lambda_p, t);
  } catch (const models::ModelError& e) {
    throw InputError(where + ": " + e.what());
  }
  for (const auto& f : fits) {
    const VectorXd c = curve.col(model.observation_index(f.voi));
    out.vois.push_back({f.voi, f.fit, t, std::vector<double>(c.data(), c.data() + c.size())});
  }
  return out;
}

}  // namespace lutdose
