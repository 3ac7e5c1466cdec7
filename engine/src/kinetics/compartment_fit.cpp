#include "lutdose/kinetics/compartment_fit.h"

#include <algorithm>
#include <limits>
#include <map>

#include "lutdose/error.h"

namespace lutdose {

namespace {

// The data of the VOIs the model observes, with their sigmas by the error model.
std::map<std::string, models::VoiData> observed_data(const std::vector<std::string>& names,
                                                     const std::vector<TacSeries>& tacs, ErrorModel error_model) {
  std::map<std::string, models::VoiData> data;
  for (const auto& tac : tacs) {
    if (std::find(names.begin(), names.end(), tac.voi) == names.end()) continue;
    models::VoiData d;
    for (Eigen::Index i = 0; i < tac.time_h.size(); ++i) {
      d.t_h.push_back(tac.time_h(i));
      d.activity_MBq.push_back(tac.activity_MBq(i));
      double sigma = 1.0;  // constant error model: equal relative weights
      if (error_model == ErrorModel::input && tac.activity_u_MBq.size() > 0)
        sigma = tac.activity_u_MBq(i);
      else if (error_model != ErrorModel::constant)
        sigma = std::max(tac.activity_MBq(i), 1e-3 * tac.activity_MBq.maxCoeff());
      d.sigma_MBq.push_back(sigma);
    }
    data[tac.voi] = d;
  }
  return data;
}

// The TacFit of VOI k of an accepted joint fit.
TacFit voi_fit(const models::CompartmentModel& model, const models::CompartmentFit& cf, Eigen::Index k,
               size_t n_vois, bool relative_sigmas) {
  TacFit f;
  f.method = "compartment model";
  f.function = "compartment:" + model.name();
  f.tia_MBq_h = cf.tia_voi_MBq_h(k);
  f.tia_u_MBq_h = cf.tia_voi_u_MBq_h(k);
  const int dof = cf.n_points - static_cast<int>(cf.free_parameters.size());
  f.tia_u_dof = !relative_sigmas ? std::numeric_limits<double>::infinity()
                : dof > 0        ? static_cast<double>(dof)
                                 : std::numeric_limits<double>::quiet_NaN();
  f.accepted = true;
  f.selection = "joint fit of " + model.name() + " to " + std::to_string(n_vois) + " VOIs (" +
                std::to_string(cf.n_points) + " points, " + std::to_string(cf.free_parameters.size()) +
                " free rates, reduced chi-square " + format_number(cf.reduced_chi_square) + ")";
  for (size_t j = 0; j < cf.free_parameters.size(); ++j)
    f.notes.push_back(cf.free_parameters[j] + " = " + format_number(cf.free_values(static_cast<Eigen::Index>(j))) +
                      " +- " + format_number(cf.standard_errors(static_cast<Eigen::Index>(j))));
  return f;
}

}  // namespace

Eigen::MatrixXd sample_compartment_curves(const models::CompartmentModel& model, const Eigen::VectorXd& p,
                                          double administered_MBq, double lambda_p, std::vector<double>& t_h) {
  t_h.clear();
  for (double t = 0.05; t < 40.0 / lambda_p; t *= 1.08) t_h.push_back(t);
  const Eigen::Map<const Eigen::VectorXd> tv(t_h.data(), static_cast<Eigen::Index>(t_h.size()));
  return model.observe(tv, p, administered_MBq, lambda_p);
}

CompartmentCycleFit fit_compartment_cycle(const models::CompartmentModel& model, const std::vector<TacSeries>& tacs,
                                          double administered_MBq, double lambda_p, ErrorModel error_model,
                                          const std::string& where) {
  CompartmentCycleFit out;
  const auto data = observed_data(model.observation_names(), tacs, error_model);
  for (const auto& [voi, d] : data) out.observed.push_back(voi);
  if (data.empty()) return out;
  if (!(administered_MBq > 0))
    throw InputError(where + ": a compartment model needs the administered activity (--activity-MBq or the case file)");
  try {
    models::FitOptions fo;
    fo.relative_sigmas = error_model != ErrorModel::input;
    const models::CompartmentFit cf = models::fit(model, data, administered_MBq, lambda_p, fo);
    // A fit that fails its acceptance criteria (or could not run: no parameters) is never the result.
    out.accepted = cf.converged && cf.flags.empty() && cf.parameters.size() == model.n_parameters();
    if (!out.accepted) {
      for (const auto& fl : cf.flags) out.failure += (out.failure.empty() ? "" : ", ") + fl;
      if (!cf.status.empty()) out.failure += (out.failure.empty() ? "" : "; ") + cf.status;
      return out;
    }
    // the fitted curves, sampled once for dose-rate curves (BED)
    std::vector<double> ts;
    const Eigen::MatrixXd curve = sample_compartment_curves(model, cf.parameters, administered_MBq, lambda_p, ts);
    for (size_t j = 0; j < cf.vois.size(); ++j) {
      if (!data.count(cf.vois[j])) continue;
      const auto k = static_cast<Eigen::Index>(j);
      CompartmentVoiFit v{cf.vois[j], voi_fit(model, cf, k, data.size(), fo.relative_sigmas), ts, {}};
      v.curve_MBq.resize(ts.size());
      for (size_t i = 0; i < ts.size(); ++i) v.curve_MBq[i] = curve(static_cast<Eigen::Index>(i), k);
      out.vois.push_back(std::move(v));
    }
  } catch (const models::ModelError& e) {
    throw InputError(e.what());
  }
  return out;
}

}  // namespace lutdose
