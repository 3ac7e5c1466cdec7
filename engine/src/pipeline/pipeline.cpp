#include "lutdose/pipeline/pipeline.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <functional>
#include <optional>
#include <random>

#include "lutdose/error.h"
#include "lutdose/io/input_file.h"
#include "lutdose/pipeline/result_checks.h"
#include "io/json_number.h"
#include "lutdose/kinetics/stp.h"
#include "lutdose/kinetics/compartment_fit.h"
#include "lutdose/kinetics/reduced_schedules.h"
#include "lutdose/io/run_files.h"
#include "lutdose/models/compartment.h"
#include <filesystem>
#include "lutdose/version.h"

namespace lutdose {

namespace {

// The activity of a source over time, for dose-rate curves (BED): a sum of exponentials when the
// source's fit is one, else a general function (trapezoid TACs).
struct ActivityCurve {
  std::vector<double> c_MBq, k_per_h;  // sum c e^{-k t}
  std::function<double(double)> general;  // when not a sum of exponentials
  std::vector<double> scales_h;           // time scales for numerical integration
  bool exponential() const { return !general; }
  double operator()(double t) const {
    if (general) return general(t);
    double a = 0;
    for (size_t i = 0; i < c_MBq.size(); ++i) a += c_MBq[i] * std::exp(-k_per_h[i] * t);
    return a;
  }
};

ActivityCurve curve_of(const TacFit& fit, const TacSeries& tac, const FitOptions& o, double lambda_p) {
  ActivityCurve c;
  if (fit.selected >= 0) {
    const auto& cand = fit.candidates[static_cast<size_t>(fit.selected)];
    Eigen::VectorXd coef, k;
    models::find_exponential(cand.function)->terms_of(cand.parameters, lambda_p, coef, k);
    for (Eigen::Index i = 0; i < coef.size(); ++i) {
      c.c_MBq.push_back(coef(i));
      c.k_per_h.push_back(k(i));
      c.scales_h.push_back(1.0 / k(i));
    }
    return c;
  }
  // Trapezoid: the head rule from 0 to t1, linear between points, physical decay after the last.
  const Eigen::VectorXd t = tac.time_h, y = tac.activity_MBq;
  const bool linear_head = o.trapezoid_head == TrapezoidHead::linear;
  c.general = [t, y, linear_head, lambda_p](double time) {
    const Eigen::Index n = t.size();
    if (time <= t(0)) return linear_head ? y(0) * time / t(0) : y(0);
    if (time >= t(n - 1)) return y(n - 1) * std::exp(-lambda_p * (time - t(n - 1)));
    Eigen::Index i = 0;
    while (t(i + 1) < time) ++i;
    return y(i) + (y(i + 1) - y(i)) * (time - t(i)) / (t(i + 1) - t(i));
  };
  for (Eigen::Index i = 0; i < t.size(); ++i) c.scales_h.push_back(std::max(t(i), 0.1));
  c.scales_h.push_back(1.0 / lambda_p);
  return c;
}

double mean_of_given(const std::vector<double>& v) {
  double s = 0;
  int n = 0;
  for (double x : v)
    if (!std::isnan(x)) s += x, ++n;
  return n > 0 ? s / n : std::numeric_limits<double>::quiet_NaN();
}
// The fit options of a VOI: the default error model by VOI kind (FitOptions::error_model_by_voi_kind).
FitOptions fit_options_for(const std::string& voi, const FitOptions& o) {
  FitOptions v = o;
  if (o.error_model_by_voi_kind && is_tumour_voi(voi)) v.error_model = ErrorModel::proportional_model;
  return v;
}

// The dose step's view of a fitted VOI, with the inputs of its uncertainty budget.
DoseSourceInput dose_input(const VoiResult& v) {
  DoseSourceInput in;
  in.voi = v.tac.voi;
  in.tia_MBq_h = v.fit.tia_MBq_h;
  in.tia_u_MBq_h = v.fit.tia_u_MBq_h;  // NaN when unknown: the dose's u is then unknown too
  in.tia_u_dof = v.fit.tia_u_dof;
  in.mean_mass_g = v.mean_mass_g;
  in.mean_volume_mL = v.mean_volume_mL;
  if (!v.quantification.empty()) {
    const auto& q = v.quantification;
    // CF: one factor for all points (they share the cycle's protocol)
    if (q.front().kind == "counts") {
      in.calibration = q.front().calibration;
      in.u_rel_cf = q.front().u_cf_rel;
    }
    double rc = 0, dln = 0;  // RC: common to the points of the VOI; mean over the points
    for (const auto& p : q) rc += p.u_rc_rel, dln += p.dln_rc_dln_volume;
    in.u_rel_rc = rc / static_cast<double>(q.size());
    in.dln_rc_dln_volume = dln / static_cast<double>(q.size());
  }
  if (v.tac.volume_u_mL > 0 && v.mean_volume_mL > 0) in.u_rel_volume = v.tac.volume_u_mL / v.mean_volume_mL;
  return in;
}

// The red-marrow source (methods.md §6.5) from blood samples or from an L2-L4 VOI.
void add_marrow(const DoseCalculator& dose, const RunOptions& options, double lambda_p, CycleResult& cycle,
                std::vector<DoseSourceInput>& inputs, const std::string& where,
                std::map<std::string, ActivityCurve>& curves) {
  const MarrowOptions& m = dose.options().marrow;
  if (m.method == "none") return;
  for (const auto& in : inputs)
    if (in.voi == "red_marrow")
      throw_input_error(where, "the VOI", "red_marrow",
                        "no red_marrow VOI when the marrow method is '" + m.method + "' (it makes one)");
  if (!dose.voi_map().count("red_marrow"))
    throw_input_error(where, "the marrow method", m.method,
                      "an S-value set with red marrow (icrp89-male, icrp89-female, or a user table "
                      "with red_marrow); " + dose.svalue_set().name + " has none");
  const SelfS ref = self_s_value(dose.svalue_set(), dose.voi_map().at("red_marrow"));
  const double mass = std::isnan(m.mass_g) ? ref.default_voi_mass_g : m.mass_g;
  nlohmann::ordered_json block;
  block["method"] = m.method;
  block["mass_g"] = mass;
  block["mass_source"] = std::isnan(m.mass_g) ? "phantom reference mass" : "dose.marrow.mass_g";
  DoseSourceInput rm;
  if (m.method == "blood") {
    const auto it = options.blood_by_cycle.find(cycle.cycle);
    if (it == options.blood_by_cycle.end())
      throw_input_error(where, "the marrow method", "blood",
                        "blood samples in the cycle (\"blood\": {\"samples\": [...]}) for the "
                        "blood-based marrow dose");
    const BloodData& b = it->second;
    double rmblr = m.rmblr;
    std::string rmblr_source = "rmblr";
    if (!std::isnan(m.rmecff)) {
      if (std::isnan(b.hematocrit))
        throw_input_error(where, "blood.hematocrit", "missing", "the hematocrit, as dose.marrow.rmecff is given");
      rmblr = m.rmecff / (1 - b.hematocrit);
      rmblr_source = "rmecff / (1 - hematocrit)";
    }
    const Eigen::Map<const Eigen::VectorXd> t(b.time_h.data(), static_cast<Eigen::Index>(b.time_h.size()));
    const Eigen::Map<const Eigen::VectorXd> c(b.concentration_MBq_per_mL.data(), t.size());
    Eigen::VectorXd u;
    if (!b.concentration_u_MBq_per_mL.empty())
      u = Eigen::Map<const Eigen::VectorXd>(b.concentration_u_MBq_per_mL.data(), t.size());
    const TacFit fit = fit_tac(t, c, u, lambda_p, options.fit, where + ", blood samples");
    // marrow activity per gram = RMBLR x blood activity per mL (blood density taken as 1 g/mL)
    rm.tia_MBq_h = fit.tia_MBq_h * rmblr * mass;
    rm.tia_u_MBq_h = fit.tia_u_MBq_h * rmblr * mass;  // NaN when unknown
    rm.tia_u_dof = fit.tia_u_dof;
    block["blood_fit_function"] = fit.function;
    block["blood_fit_accepted"] = fit.accepted;
    block["blood_tiac_MBq_h_per_mL"] = fit.tia_MBq_h;
    block["blood_tiac_u_MBq_h_per_mL"] = detail::json_number(fit.tia_u_MBq_h);
    block["rmblr"] = rmblr;
    block["rmblr_source"] = rmblr_source;
    TacSeries blood_tac;
    blood_tac.time_h = t;
    blood_tac.activity_MBq = c;
    ActivityCurve curve = curve_of(fit, blood_tac, options.fit, lambda_p);
    for (auto& a : curve.c_MBq) a *= rmblr * mass;
    if (curve.general) {
      auto g = curve.general;
      const double factor = rmblr * mass;
      curve.general = [g, factor](double time) { return factor * g(time); };
    }
    curves["red_marrow"] = curve;
  } else {  // image
    auto it = std::find_if(inputs.begin(), inputs.end(),
                           [&](const DoseSourceInput& in) { return in.voi == m.l2l4_voi; });
    if (it == inputs.end())
      throw_input_error(where, "the marrow method", "image",
                        "a VOI named " + m.l2l4_voi + " (the L2-L4 marrow) in the cycle");
    rm = *it;
    inputs.erase(it);
    ActivityCurve curve = curves.at(m.l2l4_voi);
    for (auto& a : curve.c_MBq) a /= m.l2l4_fraction;
    if (curve.general) {
      auto g = curve.general;
      const double f = m.l2l4_fraction;
      curve.general = [g, f](double time) { return g(time) / f; };
    }
    curves["red_marrow"] = curve;
    rm.tia_MBq_h /= m.l2l4_fraction;
    rm.tia_u_MBq_h /= m.l2l4_fraction;
    block["l2l4_voi"] = m.l2l4_voi;
    block["l2l4_fraction"] = m.l2l4_fraction;
  }
  rm.voi = "red_marrow";
  rm.mean_mass_g = mass;
  rm.mean_volume_mL = std::numeric_limits<double>::quiet_NaN();
  block["tia_MBq_h"] = rm.tia_MBq_h;
  block["tia_u_MBq_h"] = detail::json_number(rm.tia_u_MBq_h);
  block["tia_u_dof"] = detail::json_number(rm.tia_u_dof);
  inputs.push_back(rm);
  cycle.marrow = block;
}

// Monte Carlo cross-check of the GUM budget (methods.md §5 item 6): sample the inputs (counts by
// Poisson, CF common to the cycle, RC and volume per VOI, S-values), re-quantify, refit each VOI
// with its chosen function, recompute all doses; the SD over the samples is the MC uncertainty.
void monte_carlo(const DoseCalculator& dose, const RunOptions& options, double lambda_p,
                 CycleResult& cycle, const std::vector<DoseSourceInput>& inputs, CycleDoses& doses,
                 const std::string& where) {
  std::mt19937_64 rng(options.mc_seed + static_cast<unsigned long long>(cycle.cycle));
  std::normal_distribution<double> normal(0.0, 1.0);
  const size_t nt = doses.targets.size();
  std::vector<double> sum(nt, 0.0), sum2(nt, 0.0);
  int used = 0, failed = 0;
  for (int k = 0; k < options.mc_samples; ++k) {
    std::map<std::string, double> cf;
    for (const auto& in : inputs)
      if (!in.calibration.empty() && !cf.count(in.calibration))
        cf[in.calibration] = 1.0 + in.u_rel_cf * normal(rng);
    std::vector<DoseSourceInput> sample = inputs;
    bool ok = true;
    for (auto& in : sample) {
      const double f_v = 1.0 + in.u_rel_volume * normal(rng);
      const double f_rc = (1.0 + in.u_rel_rc * normal(rng)) * std::pow(f_v, in.dln_rc_dln_volume);
      const double f_cf = in.calibration.empty() ? 1.0 : cf.at(in.calibration);
      in.s_factor = 1.0 + dose.self_s_u_rel(in.voi) * normal(rng);
      if (!std::isnan(in.mean_volume_mL)) in.mean_volume_mL *= f_v;
      const auto it = std::find_if(cycle.vois.begin(), cycle.vois.end(),
                                   [&](const VoiResult& v) { return v.tac.voi == in.voi; });
      const bool refit = it != cycle.vois.end() && it->fit.selected >= 0 && !it->quantification.empty() &&
                         it->quantification.front().kind == "counts";
      if (refit) {  // counts resampled (Poisson, normal approximation for the large counts of SPECT VOIs)
        const auto& v = *it;
        Eigen::VectorXd y = v.tac.activity_MBq, u = v.tac.activity_u_MBq;
        // a fit whose chi-square failed had its covariance Birge-scaled: the counts' spread is
        // taken as that much larger than Poisson, as the GUM term assumes
        const auto& chosen = v.fit.candidates[static_cast<size_t>(v.fit.selected)];
        const double inflate = chosen.covariance_scaled ? chosen.birge_ratio : 1.0;
        for (Eigen::Index i = 0; i < y.size(); ++i) {
          // sd of the counts: sqrt(C), or with a subtracted scatter window its larger sd (u_poisson_rel)
          const auto& qp = v.quantification[static_cast<size_t>(i)];
          const double c = qp.value, sd = qp.u_poisson_rel * c;
          const double c_new = std::max(c + inflate * sd * normal(rng), 0.0);
          y(i) *= (c > 0 ? c_new / c : 1.0) / (f_cf * f_rc);
          if (u.size() > 0) u(i) = y(i) * qp.u_poisson_rel * std::sqrt(c / std::max(c_new, 1.0));
        }
        const auto& f = *models::find_exponential(v.fit.function);
        const CandidateFit c = fit_function(f, v.tac.time_h, y, u, lambda_p, fit_options_for(v.tac.voi, options.fit));
        if (!c.fitted || !(c.tia_MBq_h > 0) || !std::isfinite(c.tia_MBq_h)) {
          ok = false;
          break;
        }
        in.tia_MBq_h = c.tia_MBq_h;
      } else {  // activities given, or a derived source: the TIA with its fit uncertainty
        // an unknown u(TIA) cannot be sampled: the TIA is held fixed and the summary says so
        const double u_tia = std::isnan(in.tia_u_MBq_h) ? 0.0 : in.tia_u_MBq_h;
        in.tia_MBq_h = (in.tia_MBq_h + u_tia * normal(rng)) / (f_cf * f_rc);
      }
      in.tia_u_MBq_h = 0;  // no GUM inside the samples
      in.u_rel_cf = in.u_rel_rc = in.u_rel_volume = 0;
    }
    if (!ok) {
      ++failed;
      continue;
    }
    CycleDoses d;
    try {
      d = dose.compute(sample, cycle.administered_MBq, where + ", Monte Carlo sample");
    } catch (const InputError&) {  // e.g. a sampled whole-body TIA below the organs' sum
      ++failed;
      continue;
    }
    for (size_t t = 0; t < nt; ++t) {
      sum[t] += d.targets[t].dose_Gy;
      sum2[t] += d.targets[t].dose_Gy * d.targets[t].dose_Gy;
    }
    ++used;
  }
  for (size_t t = 0; t < nt && used > 1; ++t) {
    const double mean = sum[t] / used;
    doses.targets[t].dose_mc_mean_Gy = mean;
    doses.targets[t].dose_u_mc_Gy = std::sqrt(std::max(sum2[t] / used - mean * mean, 0.0) * used / (used - 1));
  }
  nlohmann::ordered_json mc;
  mc["samples"] = options.mc_samples;
  mc["seed"] = options.mc_seed;
  mc["used"] = used;
  mc["failed"] = failed;
  mc["method"] = "counts ~ N(C, B sqrt C) (B the Birge ratio where the fit's covariance was scaled, else 1); "
                "CF, RC, volume, S ~ N(1, u_rel); refit with the chosen function";
  nlohmann::ordered_json fixed = nlohmann::ordered_json::array();
  for (const auto& in : inputs)
    if (std::isnan(in.tia_u_MBq_h)) fixed.push_back("fit:cycle" + std::to_string(cycle.cycle) + ":" + in.voi);
  mc["incomplete"] = !fixed.empty();
  mc["held_fixed_unknown_u"] = fixed;  // TIAs without a known u: not sampled, the MC SD misses them
  cycle.monte_carlo = mc;
}

// BED and EQD2 of every target with tissue parameters (methods.md §7.1): the target's dose-rate
// curve is sum over sources of (contribution / TIA) x A_source(t) [Gy/h]; closed form when every
// source is a sum of exponentials, numerical integration otherwise.
void add_bed(const TissueTable& tissue, const std::map<std::string, ActivityCurve>& curves, CycleResult& cycle,
             double lambda_p) {
  // The remainder's activity: whole body minus the organ sources (tumours stay in it).
  std::map<std::string, ActivityCurve> all = curves;
  if (!std::isnan(cycle.remainder_tia_MBq_h) && curves.count("whole_body")) {
    std::vector<std::string> organs;
    for (const auto& d : cycle.doses)
      if (d.kind == "organ" && curves.count(d.target)) organs.push_back(d.target);
    ActivityCurve rb;
    bool exponential = curves.at("whole_body").exponential();
    for (const auto& o : organs) exponential = exponential && curves.at(o).exponential();
    if (exponential) {
      rb = curves.at("whole_body");
      for (const auto& o : organs)
        for (size_t i = 0; i < curves.at(o).c_MBq.size(); ++i) {
          rb.c_MBq.push_back(-curves.at(o).c_MBq[i]);
          rb.k_per_h.push_back(curves.at(o).k_per_h[i]);
        }
    } else {
      const ActivityCurve wb = curves.at("whole_body");
      std::vector<ActivityCurve> parts;
      for (const auto& o : organs) parts.push_back(curves.at(o));
      rb.general = [wb, parts](double t) {
        double a = wb(t);
        for (const auto& p : parts) a -= p(t);
        return a;
      };
    }
    for (const auto& [name, c] : curves)
      rb.scales_h.insert(rb.scales_h.end(), c.scales_h.begin(), c.scales_h.end());
    all["remainder"] = rb;
  }
  std::map<std::string, double> tia;
  for (const auto& v : cycle.vois) tia[v.tac.voi] = v.fit.tia_MBq_h;
  if (!cycle.marrow.is_null()) tia["red_marrow"] = cycle.marrow.value("tia_MBq_h", 0.0);
  if (!std::isnan(cycle.remainder_tia_MBq_h)) tia["remainder"] = cycle.remainder_tia_MBq_h;
  for (auto& d : cycle.doses) {
    const TissueParameters* p = tissue.find(d.target);
    if (!p || !(d.dose_Gy > 0)) continue;
    ExpSum rate;
    std::vector<std::pair<double, const ActivityCurve*>> parts;  // (Gy per MBq h, curve)
    bool exponential = true;
    std::vector<double> scales{1.0 / lambda_p};
    for (const auto& [source, gy] : d.contributions_Gy) {
      if (!all.count(source) || !tia.count(source) || tia[source] == 0) continue;
      const double g = gy / tia[source];
      const ActivityCurve& c = all.at(source);
      parts.emplace_back(g, &c);
      exponential = exponential && c.exponential();
      scales.insert(scales.end(), c.scales_h.begin(), c.scales_h.end());
      for (size_t i = 0; i < c.c_MBq.size(); ++i) {
        rate.a_Gy_per_h.push_back(g * c.c_MBq[i]);
        rate.lambda_per_h.push_back(c.k_per_h[i]);
      }
    }
    if (parts.empty()) continue;
    BedResult b;
    if (exponential && std::isinf(cycle.horizon_h)) {
      b = bed_closed_form(rate, *p);
      d.bed_method = "closed form (sum of exponentials)";
    } else {
      b = bed_numeric([&parts](double t) {
                        double r = 0;
                        for (const auto& [g, c] : parts) r += g * (*c)(t);
                        return r;
                      },
                      cycle.horizon_h, *p, scales);
      d.bed_method = "numerical (Boost.Odeint, Dormand-Prince)";
    }
    // BED scales with the dose actually reported (the curve integrates to it up to rounding)
    d.bed_g = b.g;
    d.bed_Gy = bed_from_dose(d.dose_Gy, b.g, p->alpha_beta_Gy);
    d.eqd2_Gy = eqd2(d.bed_Gy, p->alpha_beta_Gy);
    d.alpha_beta_Gy = p->alpha_beta_Gy;
    d.repair_half_time_h = p->repair_half_time_h;
  }
}

}  // namespace

std::string find_compartment_model(const std::string& name, const std::string& data_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  // A value with '/' or ".json" is a file; a bare name only a shipped model (never the current folder).
  const bool file = name.find('/') != std::string::npos || name.find(".json") != std::string::npos;
  if (file && fs::is_regular_file(name, ec)) return name;
  if (!file)
    for (const std::string& c : {data_dir + "/models/" + name + ".json", data_dir + "/../models/files/" + name + ".json"})
      if (fs::is_regular_file(c, ec)) return c;
  throw_input_error("--model", "the compartment model", name,
                    "a model file, or a shipped model: blood_organ_linear, prrt_multiorgan_linear, "
                    "receptor_pbpk_template");
}

namespace {

// The dose step of a run: the S-value set the options choose (shipped, from the reference data, or
// the user's table read before the pipeline) with the sphere table of the options.
DoseCalculator make_dose_calculator(const DoseOptions& d, const RunOptions& options, const ReferenceData& ref,
                                    const Nuclide& nuclide) {
  if (d.phantom == "user" || !d.svalue_table.empty()) {
    if (d.svalue_table.empty())
      throw_input_error("--phantom", "the phantom", "user", "an S-value table given with --svalues");
    if (!options.user_svalue_set)
      throw std::logic_error("the user S-value table " + d.svalue_table +
                             " was not read before the pipeline (read_run_files)");
    const SValueSet& set = *options.user_svalue_set;
    return DoseCalculator(set, user_voi_region_map(set), ref.sphere_table(d.sphere_composition), nuclide, d);
  }
  const PhantomData& p = ref.phantom(d.phantom);
  return DoseCalculator(p.set, p.voi_map, ref.sphere_table(d.sphere_composition), nuclide, d);
}

// The cycle of a series in the result, made at its first series: administered activity and the
// horizon of its TIAs (the next cycle's reference time with residual integrate-to-next).
CycleResult& cycle_for(const TacSeries& s, const RunOptions& options, RunResult& result,
                       std::map<std::pair<std::string, int>, size_t>& index) {
  const auto key = std::make_pair(s.patient, s.cycle);
  const auto found = index.find(key);
  if (found != index.end()) return result.cycles[found->second];
  index[key] = result.cycles.size();
  CycleResult c;
  c.patient = s.patient;
  c.cycle = s.cycle;
  const auto it = options.administered_by_cycle_MBq.find(s.cycle);
  c.administered_MBq = it != options.administered_by_cycle_MBq.end() ? it->second : options.administered_MBq;
  const auto start = options.cycle_start_h.find(s.cycle);
  const auto next = start == options.cycle_start_h.end() ? start : std::next(start);
  if (options.residual == ResidualHandling::integrate_to_next && next != options.cycle_start_h.end())
    c.horizon_h = next->second - start->second;
  result.cycles.push_back(c);
  return result.cycles.back();
}

// Residual of the previous cycle (residual subtract): its fitted curve at this cycle's times,
// subtracted from the VOI's activities (never below zero) and recorded.
void subtract_previous_cycle(VoiResult& v, const RunOptions& options, const RunResult& result, double lambda_p) {
  const auto start = options.cycle_start_h.find(v.tac.cycle);
  if (options.residual != ResidualHandling::subtract || start == options.cycle_start_h.begin() ||
      start == options.cycle_start_h.end())
    return;
  const auto prev = std::prev(start);
  const double delta = start->second - prev->second;
  for (const auto& pc : result.cycles) {
    if (pc.patient != v.tac.patient || pc.cycle != prev->first) continue;
    for (const auto& pv : pc.vois) {
      if (pv.tac.voi != v.tac.voi) continue;
      const ActivityCurve residual = curve_of(pv.fit, pv.tac, options.fit, lambda_p);
      v.residual_subtracted_MBq.resize(static_cast<size_t>(v.tac.time_h.size()));
      for (Eigen::Index i = 0; i < v.tac.time_h.size(); ++i) {
        const double r = residual(delta + v.tac.time_h(i));
        v.residual_subtracted_MBq[static_cast<size_t>(i)] = r;
        v.tac.activity_MBq(i) = std::max(v.tac.activity_MBq(i) - r, 0.0);
      }
    }
  }
}

// The TIA to a finite horizon T [h] instead of infinity (residual integrate-to-next).
void integrate_to_horizon(TacFit& fit, const TacSeries& tac, double T, double lambda_p) {
  if (fit.selected >= 0) {
    const auto& c = fit.candidates[static_cast<size_t>(fit.selected)];
    const auto& f = *models::find_exponential(c.function);
    fit.tia_MBq_h = f.integral(c.parameters, lambda_p, T);
    const Eigen::VectorXd g = f.integral_gradient(c.parameters, lambda_p, T);
    fit.tia_u_MBq_h = std::sqrt(g.dot(c.covariance * g));
  } else {  // trapezoid: the physical-decay tail stops at the next cycle
    const double tn = tac.time_h(tac.time_h.size() - 1), an = tac.activity_MBq(tac.activity_MBq.size() - 1);
    fit.tia_MBq_h -= an / lambda_p * std::exp(-lambda_p * std::max(T - tn, 0.0));
  }
  fit.notes.push_back("integrated to the next cycle, " + format_number(T) + " h (residual option)");
}

// One VOI of a cycle: residual, fit (or reduced schedule), TIA to the horizon, its intervals.
VoiResult fit_voi(const TacSeries& s, const std::vector<QuantifiedPoint>* quantification, const CycleResult& cycle,
                  const RunResult& result, const RunOptions& options, const ReferenceData& ref, double lambda_p) {
  VoiResult v;
  v.tac = s;
  if (quantification) v.quantification = *quantification;
  const std::string where = options.tac_path + ": " + s.where();
  subtract_previous_cycle(v, options, result, lambda_p);
  if (options.reduced == ReducedSchedule::none)
    v.fit = fit_tac(v.tac.time_h, v.tac.activity_MBq, v.tac.activity_u_MBq, lambda_p,
                    fit_options_for(v.tac.voi, options.fit), where);
  else
    v.fit = reduced_schedule_fit(v.tac, options.reduced, ref.population_kinetics(), lambda_p, where);
  if (std::isfinite(cycle.horizon_h)) integrate_to_horizon(v.fit, v.tac, cycle.horizon_h, lambda_p);
  set_tia_intervals(v.fit);
  v.mean_mass_g = mean_of_given(s.mass_g);
  v.mean_volume_mL = mean_of_given(s.volume_mL);
  if (cycle.administered_MBq > 0) v.tia_h = v.fit.tia_MBq_h / cycle.administered_MBq;
  return v;
}

// The joint compartment-model fits of every cycle replace the fits of the VOIs the model observes
// (where the joint fit is accepted; a note says why not otherwise).
void apply_compartment_model(const models::CompartmentModel& model, const RunOptions& options, double lambda_p,
                             RunResult& result) {
  bool any = false;
  for (auto& cycle : result.cycles) {
    std::vector<TacSeries> tacs;
    for (const auto& v : cycle.vois) tacs.push_back(v.tac);
    const CompartmentCycleFit cf = fit_compartment_cycle(model, tacs, cycle.administered_MBq, lambda_p,
                                                         options.fit.error_model,
                                                         options.tac_path + ": cycle " + std::to_string(cycle.cycle));
    any = any || !cf.observed.empty();
    for (auto& v : cycle.vois) {
      if (std::find(cf.observed.begin(), cf.observed.end(), v.tac.voi) == cf.observed.end()) continue;
      if (!cf.accepted) {
        v.fit.notes.push_back("compartment model " + model.name() + ": the joint fit failed its acceptance criteria (" +
                              cf.failure + "); not used: this VOI keeps its own fit or fallback");
        continue;
      }
      const auto it = std::find_if(cf.vois.begin(), cf.vois.end(),
                                   [&](const CompartmentVoiFit& f) { return f.voi == v.tac.voi; });
      if (it == cf.vois.end()) continue;
      TacFit f = it->fit;
      f.numerical_tia_MBq_h = v.fit.numerical_tia_MBq_h;
      set_tia_intervals(f);
      v.fit = f;
      if (cycle.administered_MBq > 0) v.tia_h = f.tia_MBq_h / cycle.administered_MBq;
      v.model_curve_t_h = it->curve_t_h;
      v.model_curve_MBq = it->curve_MBq;
    }
  }
  if (!any) {
    std::string observed;
    for (const auto& n : model.observation_names()) observed += (observed.empty() ? "" : ", ") + n;
    throw_input_error(options.compartment_model, "the model's observed VOIs", observed,
                      "VOIs of the input with these names (no VOI of the input is observed by the model)");
  }
}

// The compartment model of the options: a file read before the pipeline, or a shipped one.
const models::CompartmentModel& compartment_model_of(const RunOptions& options, const ReferenceData& ref) {
  if (options.compartment_model_file) return *options.compartment_model_file;
  if (const auto* m = ref.shipped_compartment_model(options.compartment_model)) return *m;
  throw std::logic_error("the compartment model " + options.compartment_model +
                         " was not read before the pipeline (read_run_files)");
}

// A compartment model's sampled curve of a VOI, interpolated linearly (zero after the samples).
ActivityCurve sampled_curve(const VoiResult& v, double lambda_p) {
  ActivityCurve c;
  const auto ts = v.model_curve_t_h, as = v.model_curve_MBq;
  c.general = [ts, as](double time) {
    if (time <= ts.front()) return as.front() * time / ts.front();
    if (time >= ts.back()) return 0.0;
    const auto it = std::upper_bound(ts.begin(), ts.end(), time);
    const size_t i = static_cast<size_t>(it - ts.begin());
    return as[i - 1] + (as[i] - as[i - 1]) * (time - ts[i - 1]) / (ts[i] - ts[i - 1]);
  };
  c.scales_h = {ts.front(), 1.0 / lambda_p};
  return c;
}

// Inputs that belong to one cycle (fit, RC, volume) get the cycle in their name; the CF and the
// S-values keep theirs, being common to all cycles of the patient.
void name_inputs_per_cycle(CycleDoses& d, int cycle) {
  auto per_cycle = [cycle](const std::string& name) {
    for (const char* prefix : {"fit:", "rc:", "volume:"})
      if (name.rfind(prefix, 0) == 0)
        return std::string(prefix) + "cycle" + std::to_string(cycle) + ":" +
               name.substr(std::char_traits<char>::length(prefix));
    return name;
  };
  for (auto& name : d.input_names) name = per_cycle(name);
  for (auto& t : d.targets)
    for (auto& name : t.u_missing) name = per_cycle(name);
}

// Doses of one cycle: sources (with the red marrow), MIRD and GUM, Monte Carlo, BED.
void dose_cycle(const DoseCalculator& dose, const TissueTable& tissue, const RunOptions& options, double lambda_p,
                CycleResult& cycle) {
  std::vector<DoseSourceInput> inputs;
  for (const auto& v : cycle.vois) inputs.push_back(dose_input(v));
  std::string where = options.tac_path + ": ";
  if (!cycle.patient.empty()) where += "patient " + cycle.patient + ", ";
  where += "cycle " + std::to_string(cycle.cycle);
  std::map<std::string, ActivityCurve> curves;
  for (const auto& v : cycle.vois)
    curves[v.tac.voi] = v.model_curve_t_h.empty() ? curve_of(v.fit, v.tac, options.fit, lambda_p)
                                                  : sampled_curve(v, lambda_p);
  add_marrow(dose, options, lambda_p, cycle, inputs, where, curves);
  CycleDoses d = dose.compute(inputs, cycle.administered_MBq, where);
  if (options.mc_samples > 0) monte_carlo(dose, options, lambda_p, cycle, inputs, d, where);
  name_inputs_per_cycle(d, cycle.cycle);
  cycle.doses = std::move(d.targets);
  cycle.dose_input_names = std::move(d.input_names);
  cycle.dose_input_u_rel = std::move(d.input_u_rel);
  cycle.dose_input_dof = std::move(d.input_dof);
  cycle.remainder_tia_MBq_h = d.remainder_tia_MBq_h;
  cycle.dose_notes = std::move(d.notes);
  add_bed(tissue, curves, cycle, lambda_p);
}

// The GUM inputs of a patient's cycles, summed per target, for the sums over cycles.
struct PatientSums {
  std::vector<CumulativeDose> sums;
  std::map<std::string, std::map<std::string, double>> sensitivity;  // target -> input -> sum of c
  std::map<std::string, double> alpha_beta, u_rel, u_dof;
};

PatientSums sum_patient_cycles(const RunResult& result, const std::string& patient) {
  PatientSums p;
  for (const auto& c : result.cycles) {
    if (c.patient != patient) continue;
    for (size_t k = 0; k < c.dose_input_names.size(); ++k) {
      p.u_rel[c.dose_input_names[k]] = c.dose_input_u_rel[k];
      p.u_dof[c.dose_input_names[k]] = k < c.dose_input_dof.size() ? c.dose_input_dof[k] : INFINITY;
    }
    for (const auto& t : c.doses) {
      auto it = std::find_if(p.sums.begin(), p.sums.end(), [&](const CumulativeDose& x) { return x.target == t.target; });
      if (it == p.sums.end()) {
        CumulativeDose x;
        x.target = t.target;
        p.sums.push_back(x);
        it = p.sums.end() - 1;
      }
      it->dose_Gy += t.dose_Gy;
      if (!std::isnan(t.bed_Gy)) it->bed_Gy = (std::isnan(it->bed_Gy) ? 0.0 : it->bed_Gy) + t.bed_Gy;
      if (!std::isnan(t.alpha_beta_Gy)) p.alpha_beta[t.target] = t.alpha_beta_Gy;
      ++it->cycles;
      for (size_t k = 0; k < t.sensitivity_Gy.size(); ++k)
        p.sensitivity[t.target][c.dose_input_names[k]] += t.sensitivity_Gy[k];
    }
  }
  return p;
}

// A summed dose's uncertainty, tumour repopulation (methods.md §7.2) and EQD2.
void finish_sum(CumulativeDose& x, PatientSums& p, const RunOptions& options) {
  std::vector<double> cs, us, dofs;
  std::vector<std::string> names;
  for (const auto& [k, c] : p.sensitivity[x.target]) {
    names.push_back(k);
    cs.push_back(c);
    us.push_back(p.u_rel[k]);
    dofs.push_back(p.u_dof[k]);
  }
  combine_uncertainty(cs, names, us, dofs, x.dose_Gy, x.dose_u_Gy, x.dose_u_dof, x.dose_ci68_Gy, x.dose_ci95_Gy,
                      x.u_missing);
  if (!options.repopulation_targets.empty() && !std::isnan(x.bed_Gy) &&
      target_matches(options.repopulation_targets, x.target) && !options.cycle_start_h.empty()) {
    // -ln2 (T - T_k) / (alpha T_pot), T from the first to the last cycle (methods.md §7.2)
    const double T_d = (options.cycle_start_h.rbegin()->second - options.cycle_start_h.begin()->second) / 24.0;
    if (T_d > options.repopulation_kickoff_d) {
      x.repopulation_Gy = std::log(2.0) * (T_d - options.repopulation_kickoff_d) /
                          (options.repopulation_alpha_per_Gy * options.repopulation_t_pot_d);
      x.bed_Gy -= x.repopulation_Gy;
    }
  }
  if (!std::isnan(x.bed_Gy) && p.alpha_beta.count(x.target)) x.eqd2_Gy = eqd2(x.bed_Gy, p.alpha_beta[x.target]);
}

// Sums over the cycles of each patient with more than one cycle.
void sum_cycles(RunResult& result, const RunOptions& options) {
  std::map<std::string, int> cycles_per_patient;
  for (const auto& c : result.cycles) ++cycles_per_patient[c.patient];
  for (const auto& [patient, n] : cycles_per_patient) {
    if (n < 2) continue;
    PatientSums p = sum_patient_cycles(result, patient);
    for (auto& x : p.sums) finish_sum(x, p, options);
    result.cumulative[patient] = p.sums;
  }
}

}  // namespace

RunResult run_tac_table(const std::vector<TacSeries>& series, const RunOptions& options, const ReferenceData& ref,
                        const std::vector<std::vector<QuantifiedPoint>>* points) {
  validate_or_throw(options, options.tac_path.empty() ? "options" : options.tac_path);
  RunResult result;
  result.version = LUTDOSE_VERSION;
  result.options = options;
  result.nuclide = ref.nuclide(options.nuclide, options.half_life_override_h);
  std::optional<DoseCalculator> dose;
  TissueTable tissue = ref.tissue();
  if (options.dose) {
    dose.emplace(make_dose_calculator(*options.dose, options, ref, result.nuclide));
    result.svalue_files = dose->svalue_set().files;
    result.svalue_files.push_back("spheres/pytheranostics_spheres.json");
    result.svalue_set_description = dose->svalue_set().description;
    for (const auto& [pattern, p] : options.tissue_overrides) tissue.set(pattern, p);
    result.tissue_file = tissue.path;
    result.limits = ref.limits();
  }
  const double lambda_p = result.nuclide.lambda_per_h();
  std::map<std::pair<std::string, int>, size_t> cycle_index;
  for (size_t idx = 0; idx < series.size(); ++idx) {
    CycleResult& cycle = cycle_for(series[idx], options, result, cycle_index);  // no reallocation below
    cycle.vois.push_back(
        fit_voi(series[idx], points ? &points->at(idx) : nullptr, cycle, result, options, ref, lambda_p));
  }
  if (!options.compartment_model.empty()) {  // with residual none or subtract (validate)
    apply_compartment_model(compartment_model_of(options, ref), options, lambda_p, result);
  }
  if (dose) {
    for (auto& cycle : result.cycles) dose_cycle(*dose, tissue, options, lambda_p, cycle);
    sum_cycles(result, options);
  }
  check_results_finite(result);  // nothing non-finite reaches the writers
  return result;
}

RunResult run_tac_table(const std::vector<TacSeries>& series, const RunOptions& options,
                        const std::vector<std::vector<QuantifiedPoint>>* points) {
  const ReferenceData ref = ReferenceData::load(options.data_dir);
  RunOptions o = options;
  read_run_files(o, ref);
  return run_tac_table(series, o, ref, points);
}

RunOptions run_options_from_case(const CaseFile& c, const ReferenceData& ref, int mc_samples,
                                 unsigned long long mc_seed) {
  RunOptions o;
  o.data_dir = ref.data_dir();
  o.tac_path = c.path;
  o.input_kind = InputKind::case_file;
  o.fit = c.fit;
  o.dose = c.dose;
  o.nuclide = c.nuclide;
  o.half_life_override_h = c.half_life_override_h;
  o.residual = c.residual;
  o.reduced = c.reduced;
  o.compartment_model = c.compartment_model;
  for (const auto& cy : c.cycles)
    if (!std::isnan(cy.reference_abs_h)) o.cycle_start_h[cy.cycle] = cy.reference_abs_h;
  o.tissue_overrides = c.tissue_overrides;
  o.repopulation_targets = c.repopulation_targets;
  o.repopulation_alpha_per_Gy = c.repopulation_alpha_per_Gy;
  o.repopulation_t_pot_d = c.repopulation_t_pot_d;
  o.repopulation_kickoff_d = c.repopulation_kickoff_d;
  o.mc_samples = mc_samples >= 0 ? mc_samples : c.mc_samples;
  o.mc_seed = mc_seed > 0 ? mc_seed : c.mc_seed;
  return o;
}

namespace {
// The case-file details of a cycle (reference time, protocol, conventions) for its provenance.
nlohmann::ordered_json cycle_provenance(const CaseFile& c, const CaseCycle& cy) {
  nlohmann::ordered_json p;
  p["reference_time"] = cy.reference_time;
  p["administered_measured_MBq"] = cy.administered_measured_MBq;
  p["administered_measured_at_h"] = cy.administered_measured_at_h;
  p["residual_measured_MBq"] = cy.residual_measured_MBq;
  p["residual_measured_at_h"] = cy.residual_measured_at_h;
  p["protocol"] = cy.protocol;
  if (c.protocols.count(cy.protocol)) {
    const Protocol& pr = c.protocols.at(cy.protocol);
    p["cf_cps_per_MBq"] = detail::json_number(pr.cf_cps_per_MBq);
    p["cf_u_cps_per_MBq"] = pr.cf_u_cps_per_MBq;
    p["dead_time_model"] = to_string(pr.dead_time);
    p["dead_time_tau_s"] = pr.tau_s;
    p["recovery_table"] = pr.recovery.has_value();
  }
  p["timing"] = to_string(cy.timing);
  p["decay_corrected_to"] = to_string(cy.decay_corrected_to);
  return p;
}
}  // namespace

RunResult run_case(const CaseFile& c, const RunOptions& options, const ReferenceData& ref) {
  const Nuclide nuclide = ref.nuclide(c.nuclide, c.half_life_override_h);
  const QuantifiedCase q = quantify_case(c, nuclide.lambda_per_h());
  RunOptions o = options;
  o.administered_by_cycle_MBq = q.administered_MBq;
  o.blood_by_cycle = q.blood;
  RunResult r = run_tac_table(q.series, o, ref, &q.points);
  for (auto& cycle : r.cycles)
    for (const auto& cy : c.cycles)
      if (cy.cycle == cycle.cycle) cycle.provenance = cycle_provenance(c, cy);
  return r;
}

RunResult run_case(const CaseFile& c, const std::string& data_dir, int mc_samples, unsigned long long mc_seed) {
  const ReferenceData ref = ReferenceData::load(data_dir);
  RunOptions o = run_options_from_case(c, ref, mc_samples, mc_seed);
  read_run_files(o, ref);
  return run_case(c, o, ref);
}
}  // namespace lutdose

namespace lutdose {

namespace {
// What a cycle's dose to `d` lacks (CycleRecord::incomplete), with the input that would supply
// it: the red-marrow self-dose without a marrow method; for a region target (its dose is only
// cross-dose from the VOIs) the remainder of body without a whole_body VOI (dose.cpp). A VOI has
// its self-dose, so the missing remainder cross-dose is a minor omission (CycleRecord::note;
// about 0.1-1 % of 177Lu kidney doses, docs/plan.md).
std::pair<std::string, std::string> incomplete_dose(const CycleResult& c, const TargetDose& d) {
  std::vector<std::string> missing;
  std::string lower = d.target, note;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char ch) { return std::tolower(ch); });
  if (lower.find("marrow") != std::string::npos && c.marrow.is_null())
    missing.push_back("no red-marrow self-dose: give blood samples (dose.marrow.method blood) or an L2-L4 VOI "
                      "(dose.marrow.method image)");
  const std::string no_remainder = "the remainder of body is not a source: add a whole_body VOI to the time points";
  if (std::isnan(c.remainder_tia_MBq_h)) {
    if (d.kind == "region") missing.push_back(no_remainder);
    else note = "cross-dose from the remainder of body not included (" + no_remainder + ")";
  }
  std::string out;
  for (const auto& m : missing) out += (out.empty() ? "" : "; ") + m;
  return {out, note};
}
}  // namespace

std::map<std::string, std::vector<TargetHistory>> history_from_run(const RunResult& r) {
  std::map<std::string, std::vector<TargetHistory>> out;
  for (const auto& c : r.cycles)
    for (const auto& d : c.doses) {
      auto& list = out[c.patient];
      auto it = std::find_if(list.begin(), list.end(), [&](const TargetHistory& h) { return h.target == d.target; });
      if (it == list.end()) {
        list.push_back({d.target, {}});
        it = list.end() - 1;
      }
      CycleRecord rec;
      rec.cycle = c.cycle;
      rec.administered_MBq = c.administered_MBq;
      rec.dose_Gy = d.dose_Gy;
      rec.bed_Gy = d.bed_Gy;
      rec.g = d.bed_g;
      std::tie(rec.incomplete, rec.note) = incomplete_dose(c, d);
      it->cycles.push_back(rec);
    }
  return out;
}

nlohmann::ordered_json delivered_dose_uncertainty(const RunResult& r, const std::vector<Limit>& limits) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  auto dof = [](double d) {
    return std::isinf(d) && d > 0 ? nlohmann::ordered_json("infinite") : detail::json_number(d);
  };
  for (const auto& c : r.cycles)
    for (const auto& d : c.doses) {
      if (std::none_of(limits.begin(), limits.end(),
                       [&](const Limit& l) { return target_matches(l.target_pattern, d.target); }))
        continue;
      nlohmann::ordered_json ci = nullptr;
      if (std::isfinite(d.dose_ci95_Gy.low)) ci = nlohmann::ordered_json::array({d.dose_ci95_Gy.low, d.dose_ci95_Gy.high});
      out.push_back({{"cycle", c.cycle}, {"target", d.target}, {"dose_Gy", detail::json_number(d.dose_Gy)},
                     {"dose_u_Gy", detail::json_number(d.dose_u_Gy)}, {"dose_u_dof", dof(d.dose_u_dof)},
                     {"dose_ci95_Gy", ci}, {"uncertainty_incomplete", !d.u_missing.empty()},
                     {"uncertainty_missing_inputs", d.u_missing}});
    }
  return out;
}

PlanOptions plan_options_from_case(const nlohmann::json& b, const std::string& data_dir,
                                   const std::vector<std::string>& targets,
                                   const std::vector<std::pair<std::string, TissueParameters>>& overrides,
                                   const std::string& where) {
  PlanOptions o;
  o.limits = load_limits(data_dir);
  o.priors = load_population_priors(data_dir);
  TissueTable tissue = TissueTable::load(data_dir);
  for (const auto& [pattern, p] : overrides) tissue.set(pattern, p);
  for (const auto& t : targets)
    if (const TissueParameters* p = tissue.find(t)) o.tissue[t] = *p;
  if (b.is_null()) return o;
  auto number = [&](const char* key, double& out, const PlausibleRange& range) {
    if (!b.contains(key)) return;
    if (!b[key].is_number() || !range.contains(b[key].get<double>()))
      throw_input_error(where, std::string("plan.") + key, b[key].dump(), "a number " + range.text());
    out = b[key].get<double>();
  };
  auto text = [&](const char* key) {
    if (!b[key].is_string()) throw_input_error(where, std::string("plan.") + key, b[key].dump(), "a text value");
    return b[key].get<std::string>();
  };
  if (b.contains("strategy")) o.strategy = parse_strategy(text("strategy"));
  if (b.contains("prediction")) o.prediction = parse_prediction(text("prediction"));
  if (b.contains("planned_cycles")) {
    if (!b["planned_cycles"].is_number_integer() || b["planned_cycles"].get<long long>() < 1 ||
        b["planned_cycles"].get<long long>() > static_cast<long long>(MAX_CYCLES) ||
        (b["planned_cycles"].is_number_unsigned() && b["planned_cycles"].get<unsigned long long>() > MAX_CYCLES))
      throw_input_error(where, "plan.planned_cycles", b["planned_cycles"].dump(),
                        "a whole number from 1 to " + std::to_string(MAX_CYCLES));
    o.planned_cycles = static_cast<int>(b["planned_cycles"].get<long long>());
  }
  number("a_min_MBq", o.a_min_MBq, ACTIVITY_RANGE_MBQ);
  number("a_max_MBq", o.a_max_MBq, ACTIVITY_RANGE_MBQ);
  number("a_standard_MBq", o.a_standard_MBq, ACTIVITY_RANGE_MBQ);
  number("safety_k", o.safety_k, SAFETY_K_RANGE);
  number("prediction_cv", o.prediction_cv, PREDICTION_CV_RANGE);
  if (b.contains("allow_incomplete")) {
    if (!b["allow_incomplete"].is_boolean())
      throw_input_error(where, "plan.allow_incomplete", b["allow_incomplete"].dump(), "true or false");
    o.allow_incomplete = b["allow_incomplete"].get<bool>();
  }
  if (b.contains("limits")) {
    if (!b["limits"].is_array())
      throw_input_error(where, "plan.limits", b["limits"].dump(), "an array of \"TARGET:QUANTITY:VALUE\" texts");
    for (const auto& l : b["limits"]) {
      if (!l.is_string())
        throw_input_error(where, "plan.limits[]", l.dump(), "a text \"TARGET:QUANTITY:VALUE\", e.g. \"kidney*:bed_Gy:28\"");
      o.limits.push_back(parse_limit(l.get<std::string>()));
    }
  }
  return o;
}

}  // namespace lutdose
