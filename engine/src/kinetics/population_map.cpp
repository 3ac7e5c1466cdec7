// The MAP (empirical Bayes) fit of one TAC with a learned population as its prior (population.h).
#include <cmath>
#include <limits>

#include "lutdose/error.h"
#include "lutdose/kinetics/population.h"
#include "population_model.h"

namespace lutdose {

using Eigen::MatrixXd;
using Eigen::VectorXd;

namespace {

// The TAC's points with activity > 0 (the model is of ln y), and how many were left out.
int positive_points(const TacSeries& tac, VectorXd& t, VectorXd& y) {
  std::vector<double> tv, yv;
  for (Eigen::Index j = 0; j < tac.activity_MBq.size(); ++j)
    if (tac.activity_MBq(j) > 0) tv.push_back(tac.time_h(j)), yv.push_back(tac.activity_MBq(j));
  t = Eigen::Map<VectorXd>(tv.data(), static_cast<Eigen::Index>(tv.size()));
  y = Eigen::Map<VectorXd>(yv.data(), static_cast<Eigen::Index>(yv.size()));
  return static_cast<int>(tac.activity_MBq.size() - t.size());
}

// The candidate of the MAP: natural parameters, their posterior covariance D V D^T, TIA and u(TIA).
CandidateFit map_candidate(const models::ExponentialFunction& f, const population_detail::MapResult& r,
                           const TacSeries& tac, double b, double lambda_p) {
  CandidateFit c;
  c.function = f.id();
  c.n_points = static_cast<int>(tac.time_h.size());
  c.n_parameters = f.n_parameters();
  c.parameter_names = f.parameter_names();
  c.fitted = r.phi.allFinite();
  c.parameters = population_detail::natural_from_phi(f, r.phi);
  const MatrixXd d = population_detail::dnatural_dphi(f, r.phi);
  c.covariance = r.ok ? MatrixXd(d * r.v * d.transpose())
                      : MatrixXd::Constant(f.n_parameters(), f.n_parameters(), std::numeric_limits<double>::quiet_NaN());
  c.parameter_cv = c.covariance.diagonal().cwiseSqrt().cwiseQuotient(c.parameters.cwiseAbs());
  const VectorXd sd = c.covariance.diagonal().cwiseSqrt();
  c.correlation = c.covariance.cwiseQuotient(sd * sd.transpose());
  c.fitted_MBq = f.evaluate(tac.time_h, c.parameters, lambda_p);
  c.standardized_residuals = (tac.activity_MBq - c.fitted_MBq).cwiseQuotient(b * c.fitted_MBq);
  c.rank = r.ok ? f.n_parameters() : 0;
  c.starts = 1;  // from the population mean
  c.evaluations = r.evaluations;
  c.chi_square_dof = static_cast<int>(r.residual.size()) - f.n_parameters();  // the points used, n - K
  c.tia_MBq_h = f.integral(c.parameters, lambda_p, std::numeric_limits<double>::infinity());
  const VectorXd g = f.integral_gradient(c.parameters, lambda_p, std::numeric_limits<double>::infinity());
  c.tia_u_MBq_h = r.ok ? std::sqrt(g.dot(c.covariance * g)) : std::numeric_limits<double>::quiet_NaN();
  c.tia_dy = VectorXd::Constant(tac.time_h.size(), std::numeric_limits<double>::quiet_NaN());
  // the posterior combines the data with a population taken as known: infinite dof
  c.tia_u_dof = r.ok ? std::numeric_limits<double>::infinity() : std::numeric_limits<double>::quiet_NaN();
  if (!r.ok) c.flags.push_back("population_map_failed");
  if (!(c.tia_MBq_h > 0)) c.flags.push_back("tia_not_positive");
  c.accepted = c.flags.empty();
  return c;
}

}  // namespace

TacFit population_map_fit(const PopulationModel& m, const TacSeries& tac, double lambda_p) {
  const auto& f = *models::find_exponential(m.function);
  population_detail::Prior prior{&f, m.theta, m.omega.diagonal(), m.sigma_log, lambda_p};
  VectorXd t, y;
  const int left_out = positive_points(tac, t, y);
  const auto r = population_detail::map_fit(prior, t, y, m.theta);
  TacFit fit;
  fit.candidates.push_back(map_candidate(f, r, tac, m.sigma_log, lambda_p));
  if (m.n_patients < POPULATION_MIN_TACS)
    fit.candidates[0].warnings.push_back("population_below_50_tacs:" + std::to_string(m.n_patients));
  const auto& c = fit.candidates[0];
  fit.method = "population MAP";
  fit.function = m.function;
  fit.selected = 0;
  fit.tia_MBq_h = c.tia_MBq_h;
  fit.tia_u_MBq_h = c.tia_u_MBq_h;
  fit.tia_u_dof = c.tia_u_dof;
  fit.accepted = c.accepted;
  fit.selection = "population kinetics: MAP (empirical Bayes) estimate with the population of " + m.voi_kind +
                  " (" + m.function + ", " + std::to_string(m.n_patients) + " TACs) as prior";
  fit.notes.push_back("the estimate is population-based: the TAC's points combined with the population of " +
                      m.voi_kind + "; u(TIA) from the posterior covariance (population parameters taken as known)");
  if (left_out > 0)
    fit.notes.push_back(std::to_string(left_out) + " point(s) with activity <= 0 left out (the model is of ln A)");
  set_tia_intervals(fit);
  return fit;
}

}  // namespace lutdose
