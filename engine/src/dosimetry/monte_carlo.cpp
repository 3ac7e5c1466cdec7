#include "lutdose/dosimetry/monte_carlo.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <random>

#include "lutdose/error.h"
#include "lutdose/kinetics/voi_fit_options.h"
#include "lutdose/models/exponential.h"

namespace lutdose {

namespace {

// One Monte Carlo stream: the random generator and the run's fixed inputs.
struct Sampler {
  const DoseCalculator& dose;
  const FitOptions& fit;
  double lambda_p;
  const CycleResult& cycle;
  std::mt19937_64 rng;
  std::normal_distribution<double> normal{0.0, 1.0};
  double draw() { return normal(rng); }
};

// The VOI of `in` when its TIA comes from an individual fit to counts (it is then refitted), else
// nullptr. A MAP (population or previous-cycles) is not refitted: an individual refit of its few
// scans is not the estimate being checked (and fails for 1-2 scans); it is sampled from its TIA
// and posterior u as a TIA given with its uncertainty.
const VoiResult* counts_voi(const CycleResult& cycle, const DoseSourceInput& in) {
  const auto it = std::find_if(cycle.vois.begin(), cycle.vois.end(),
                               [&](const VoiResult& v) { return v.tac.voi == in.voi; });
  const bool refit = it != cycle.vois.end() && it->fit.selected >= 0 && !it->quantification.empty() &&
                     it->quantification.front().kind == "counts" &&
                     it->fit.method.find("MAP") == std::string::npos;
  return refit ? &*it : nullptr;
}

// The TIA of a counts VOI refitted to resampled counts (Poisson, normal approximation for the
// large counts of SPECT VOIs), its activities divided by the sampled CF and RC factors;
// std::nullopt when the refit fails.
std::optional<double> refit_tia(Sampler& s, const VoiResult& v, double f_cf, double f_rc) {
  Eigen::VectorXd y = v.tac.activity_MBq, u = v.tac.activity_u_MBq;
  // a fit whose chi-square failed had its covariance Birge-scaled: the counts' spread is
  // taken as that much larger than Poisson, as the GUM term assumes
  const auto& chosen = v.fit.candidates[static_cast<size_t>(v.fit.selected)];
  const double inflate = chosen.covariance_scaled ? chosen.birge_ratio : 1.0;
  for (Eigen::Index i = 0; i < y.size(); ++i) {
    // sd of the counts: sqrt(C), or with a subtracted scatter window its larger sd (u_poisson_rel)
    const auto& qp = v.quantification[static_cast<size_t>(i)];
    const double c = qp.value, sd = qp.u_poisson_rel * c;
    const double c_new = std::max(c + inflate * sd * s.draw(), 0.0);
    y(i) *= (c > 0 ? c_new / c : 1.0) / (f_cf * f_rc);
    if (u.size() > 0) u(i) = y(i) * qp.u_poisson_rel * std::sqrt(c / std::max(c_new, 1.0));
  }
  const auto& f = *models::find_exponential(v.fit.function);
  const CandidateFit c = fit_function(f, v.tac.time_h, y, u, s.lambda_p, fit_options_for(v.tac.voi, s.fit));
  if (!c.fitted || !(c.tia_MBq_h > 0) || !std::isfinite(c.tia_MBq_h)) return std::nullopt;
  return c.tia_MBq_h;
}

// One sample of the inputs; std::nullopt when a refit fails.
std::optional<std::vector<DoseSourceInput>> sample_inputs(Sampler& s, const std::vector<DoseSourceInput>& inputs) {
  std::map<std::string, double> cf;
  for (const auto& in : inputs)
    if (!in.calibration.empty() && !cf.count(in.calibration)) cf[in.calibration] = 1.0 + in.u_rel_cf * s.draw();
  std::vector<DoseSourceInput> sample = inputs;
  for (auto& in : sample) {
    const double f_v = 1.0 + in.u_rel_volume * s.draw();
    const double f_rc = (1.0 + in.u_rel_rc * s.draw()) * std::pow(f_v, in.dln_rc_dln_volume);
    const double f_cf = in.calibration.empty() ? 1.0 : cf.at(in.calibration);
    in.s_factor = 1.0 + s.dose.self_s_u_rel(in.voi) * s.draw();
    if (!std::isnan(in.mean_volume_mL)) in.mean_volume_mL *= f_v;
    if (const VoiResult* v = counts_voi(s.cycle, in)) {
      const auto tia = refit_tia(s, *v, f_cf, f_rc);
      if (!tia) return std::nullopt;
      in.tia_MBq_h = *tia;
    } else {  // activities given, or a derived source: the TIA with its fit uncertainty
      // an unknown u(TIA) cannot be sampled: the TIA is held fixed and the summary says so
      const double u_tia = std::isnan(in.tia_u_MBq_h) ? 0.0 : in.tia_u_MBq_h;
      in.tia_MBq_h = (in.tia_MBq_h + u_tia * s.draw()) / (f_cf * f_rc);
    }
    in.tia_u_MBq_h = 0;  // no GUM inside the samples
    in.u_rel_cf = in.u_rel_rc = in.u_rel_volume = 0;
  }
  return sample;
}

}  // namespace

MonteCarloSummary monte_carlo(const DoseCalculator& dose, const MonteCarloOptions& mc, const FitOptions& fit,
                              double lambda_p, const CycleResult& cycle, const std::vector<DoseSourceInput>& inputs,
                              CycleDoses& doses, const std::string& where) {
  Sampler s{dose, fit, lambda_p, cycle, std::mt19937_64(mc.seed + static_cast<unsigned long long>(cycle.cycle))};
  const size_t nt = doses.targets.size();
  std::vector<double> sum(nt, 0.0), sum2(nt, 0.0);
  MonteCarloSummary summary;
  for (int k = 0; k < mc.samples; ++k) {
    const auto sample = sample_inputs(s, inputs);
    if (!sample) {  // a refit failed
      ++summary.failed;
      continue;
    }
    CycleDoses d;
    try {
      d = dose.compute(*sample, cycle.administered_MBq, where + ", Monte Carlo sample");
    } catch (const InputError&) {  // e.g. a sampled whole-body TIA below the organs' sum
      ++summary.failed;
      continue;
    }
    for (size_t t = 0; t < nt; ++t) {
      sum[t] += d.targets[t].dose_Gy;
      sum2[t] += d.targets[t].dose_Gy * d.targets[t].dose_Gy;
    }
    ++summary.used;
  }
  const int used = summary.used;
  for (size_t t = 0; t < nt && used > 1; ++t) {
    const double mean = sum[t] / used;
    doses.targets[t].dose_mc_mean_Gy = mean;
    doses.targets[t].dose_u_mc_Gy = std::sqrt(std::max(sum2[t] / used - mean * mean, 0.0) * used / (used - 1));
  }
  summary.samples = mc.samples;
  summary.seed = mc.seed;
  summary.method = "counts ~ N(C, B sqrt C) (B the Birge ratio where the fit's covariance was scaled, else 1); "
                   "CF, RC, volume, S ~ N(1, u_rel); refit with the chosen function";
  for (const auto& in : inputs)
    if (std::isnan(in.tia_u_MBq_h)) summary.held_fixed_unknown_u.push_back("fit:cycle" + std::to_string(cycle.cycle) + ":" + in.voi);
  return summary;
}

}  // namespace lutdose
