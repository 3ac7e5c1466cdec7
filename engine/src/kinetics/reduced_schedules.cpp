#include "lutdose/kinetics/reduced_schedules.h"

#include <cmath>
#include <limits>

#include "lutdose/error.h"
#include "lutdose/models/exponential.h"

namespace lutdose {

namespace {

constexpr const char* REDUCED_NAMES[] = {"none", "hanscheid", "madsen", "population", "prior"};

// u(TIA) of the Hänscheid and Madsen estimates TIA = c_h A(t) from the population spread of the
// VOI's effective rate (stp_population_u, data/kinetics/population_kinetics.csv); unknown (NaN,
// with the reason) when the table has no E1 rate for the VOI. Without activity_u_MBq the
// activity's own uncertainty is left out, and a note says so.
void set_stp_uncertainty(const TacSeries& tac, const std::vector<PopulationKinetics>& population,
                         double lambda_p, double c_h, CandidateFit& c, TacFit& fit) {
  const Eigen::Index last = tac.time_h.size() - 1;
  const double t = tac.time_h(last), a = tac.activity_MBq(last);
  const bool has_u = tac.activity_u_MBq.size() > 0 && std::isfinite(tac.activity_u_MBq(last));
  const PopulationKinetics* pop = find_population_kinetics(population, tac.voi, "E1");
  const ParameterPrior* rate = nullptr;
  if (pop)
    for (const auto& p : pop->priors)
      if (p.parameter == "lambda1_bio_per_h") rate = &p;
  if (!rate) {
    c.tia_u_MBq_h = NAN;
    fit.tia_u_unknown_reason = "no population spread of the effective half-life for " + tac.voi +
                               " (an E1 lambda1_bio_per_h row in data/kinetics/population_kinetics.csv)";
    return;
  }
  c.tia_u_MBq_h = stp_population_u(t, a, has_u ? tac.activity_u_MBq(last) : 0.0, c_h, rate->mean + lambda_p, rate->sd);
  fit.notes.push_back("u(TIA) from the population spread of the effective rate (" + pop->target_pattern +
                      ": lambda_bio " + format_number(rate->mean) + " +- " + format_number(rate->sd) +
                      " 1/h), second order, estimator bias included" +
                      (has_u ? "" : "; the activity's own uncertainty is not included (no activity_u_MBq)"));
}

// The MAP fit with the population priors of the VOI (`pop`, not null).
void prior_fit(const TacSeries& tac, const PopulationKinetics& pop, double lambda_p, const std::string& where,
               CandidateFit& c, TacFit& fit) {
  if (tac.activity_u_MBq.size() == 0)
    throw_input_error(where, "activity_u_MBq", "missing",
                      "per-point uncertainties for the MAP fit with population priors (they weigh the data "
                      "against the priors)");
  const PriorFit pf = fit_with_prior(pop, tac.time_h, tac.activity_MBq, tac.activity_u_MBq, lambda_p);
  c.parameters = pf.parameters;
  c.covariance = pf.covariance;
  c.tia_MBq_h = pf.tia_MBq_h;
  c.tia_u_MBq_h = pf.tia_u_MBq_h;
  c.fitted_MBq = pf.fitted_MBq;
  c.flags = pf.flags;
  fit.method = "MAP fit with population priors";
}

// The effective rate [1/h] of a single-time-point method through the point at t, and its
// population sd (NaN for Hänscheid); sets the method's name and notes.
double single_point_rate(ReducedSchedule method, double t, const PopulationKinetics* pop, double lambda_p,
                         double& lambda_u, TacFit& fit) {
  if (method == ReducedSchedule::hanscheid) {
    // the Hänscheid estimate is E1 with T_eff = t through the point; beyond the physical
    // half-life T_eff = t would be slower than physical decay: capped at T_phys there
    const double lambda_eff = std::max(std::log(2.0) / t, lambda_p);
    fit.method = "single time point: Hanscheid (T_eff = t)";
    if (lambda_eff == lambda_p)
      fit.notes.push_back("Hanscheid at " + format_number(t) + " h, beyond the physical half-life: T_eff capped at "
                          "the physical half-life (no effective half-life is longer), TIA = A e^(lambda_p t)/lambda_p");
    return lambda_eff;
  }
  double mean = NAN, sd = NAN;
  for (const auto& p : pop->priors)
    if (p.parameter == "lambda1_bio_per_h") mean = p.mean, sd = p.sd;
  lambda_u = sd;
  fit.method = method == ReducedSchedule::madsen ? "single time point: Madsen (population effective decay)"
                                                 : "single time point: population curve";
  return mean + lambda_p;
}

// A single-time-point estimate (Hänscheid, Madsen, population) from the last point of the TAC.
void single_point_fit(const TacSeries& tac, ReducedSchedule method, const PopulationKinetics* pop,
                      const std::vector<PopulationKinetics>& population, double lambda_p, CandidateFit& c,
                      TacFit& fit) {
  const auto& e1 = *models::find_exponential("E1");
  const Eigen::Index last = tac.time_h.size() - 1;
  const double t = tac.time_h(last), a = tac.activity_MBq(last);
  const double u_a = tac.activity_u_MBq.size() > 0 ? tac.activity_u_MBq(last) : 0.0;
  double lambda_u = NAN;
  const double lambda_eff = single_point_rate(method, t, pop, lambda_p, lambda_u, fit);
  const double lambda_bio = std::max(lambda_eff - lambda_p, 0.0);
  c.parameters = (Eigen::VectorXd(2) << a * std::exp(lambda_eff * t), lambda_bio).finished();
  if (method == ReducedSchedule::hanscheid)
    c.tia_MBq_h = lambda_eff > lambda_p ? tia_hanscheid(t, a) : a * std::exp(lambda_p * t) / lambda_p;
  else if (method == ReducedSchedule::madsen)
    c.tia_MBq_h = tia_madsen(t, a, lambda_eff);
  if (method == ReducedSchedule::population) {
    // uncertainty: the population's rate spread and the activity's
    Eigen::MatrixXd cov = Eigen::MatrixXd::Zero(2, 2);
    cov(1, 1) = lambda_u * lambda_u;
    const StpEstimate e = tia_population_curve(t, a, e1, c.parameters, lambda_p, cov, u_a);
    c.tia_MBq_h = e.tia_MBq_h;
    c.tia_u_MBq_h = e.tia_u_MBq_h;
  } else {
    set_stp_uncertainty(tac, population, lambda_p,
                        method == ReducedSchedule::hanscheid ? 2.0 * t / std::log(2.0)
                                                             : std::exp(lambda_eff * t) / lambda_eff,
                        c, fit);
  }
  c.covariance = Eigen::MatrixXd::Constant(2, 2, NAN);
  c.fitted_MBq = e1.evaluate(tac.time_h, c.parameters, lambda_p);
}

}  // namespace

std::string to_string(ReducedSchedule r) { return REDUCED_NAMES[static_cast<int>(r)]; }

std::optional<ReducedSchedule> parse_reduced_schedule(const std::string& text) {
  for (int i = 0; i < 5; ++i)
    if (text == REDUCED_NAMES[i]) return static_cast<ReducedSchedule>(i);
  return std::nullopt;
}

TacFit reduced_schedule_fit(const TacSeries& tac, ReducedSchedule method,
                            const std::vector<PopulationKinetics>& population, double lambda_p,
                            const std::string& where) {
  const PopulationKinetics* pop = nullptr;
  if (method != ReducedSchedule::hanscheid) {
    pop = find_population_kinetics(population, tac.voi, "E1");
    if (!pop)
      throw_input_error(where, "the VOI", tac.voi,
                        "a VOI with E1 population kinetics in data/kinetics/population_kinetics.csv for the "
                        "reduced method " + to_string(method));
  }
  TacFit fit;
  CandidateFit c;
  c.function = "E1";
  c.n_points = static_cast<int>(tac.time_h.size());
  c.n_parameters = 2;
  c.parameter_names = models::find_exponential("E1")->parameter_names();
  c.fitted = true;
  if (method == ReducedSchedule::prior) prior_fit(tac, *pop, lambda_p, where, c, fit);
  else single_point_fit(tac, method, pop, population, lambda_p, c, fit);
  c.accepted = c.flags.empty();
  c.rank = 2;
  fit.candidates.push_back(c);
  fit.selected = 0;
  fit.function = "E1";
  fit.tia_MBq_h = c.tia_MBq_h;
  fit.tia_u_MBq_h = c.tia_u_MBq_h;
  // the population's spread and the stated activity sigma are taken as known: infinite dof
  fit.tia_u_dof = std::numeric_limits<double>::infinity();
  fit.candidates[0].tia_u_dof = fit.tia_u_dof;
  fit.accepted = c.accepted;
  const double t = tac.time_h(tac.time_h.size() - 1);
  fit.selection = "reduced schedule (" + to_string(method) + ") chosen by the user; time point " +
                  format_number(t) + " h";
  if (tac.time_h.size() > 1 && method != ReducedSchedule::prior)
    fit.notes.push_back("single-time-point method: only the last time point (" + format_number(t) + " h) is used");
  return fit;
}

}  // namespace lutdose
