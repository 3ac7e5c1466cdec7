#include "lutdose/pipeline/pipeline.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <functional>
#include <optional>

#include "lutdose/error.h"
#include "lutdose/io/input_file.h"
#include "lutdose/pipeline/result_checks.h"
#include "lutdose/dosimetry/marrow.h"
#include "lutdose/dosimetry/monte_carlo.h"
#include "lutdose/kinetics/activity_curve.h"
#include "lutdose/kinetics/voi_fit_options.h"
#include "lutdose/kinetics/stp.h"
#include "lutdose/models/compartment.h"
#include <filesystem>
#include "lutdose/version.h"

namespace lutdose {

namespace {

double mean_of_given(const std::vector<double>& v) {
  double s = 0;
  int n = 0;
  for (double x : v)
    if (!std::isnan(x)) s += x, ++n;
  return n > 0 ? s / n : std::numeric_limits<double>::quiet_NaN();
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
  if (cycle.marrow) tia["red_marrow"] = cycle.marrow->tia_MBq_h;
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

// A TacFit from a reduced-schedule estimator (methods.md §4): an E1 curve through the point with
// the estimator's effective rate (Hänscheid: T_eff = t; Madsen and population: the population's),
// so that dose-rate curves and BED follow; or the MAP fit with population priors.
TacFit reduced_schedule_fit(const TacSeries& tac, const RunOptions& options,
                            const std::vector<PopulationKinetics>& population, double lambda_p,
                            const std::string& where) {
  const auto& e1 = *models::find_exponential("E1");
  const Eigen::Index last = tac.time_h.size() - 1;
  const double t = tac.time_h(last), a = tac.activity_MBq(last);
  const double u_a = tac.activity_u_MBq.size() > 0 ? tac.activity_u_MBq(last) : 0.0;
  const PopulationKinetics* pop = nullptr;
  if (options.reduced != "hanscheid") {
    pop = find_population_kinetics(population, tac.voi, "E1");
    if (!pop)
      throw_input_error(where, "the VOI", tac.voi,
                        "a VOI with E1 population kinetics in data/kinetics/population_kinetics.csv for the "
                        "reduced method " + options.reduced);
  }
  TacFit fit;
  CandidateFit c;
  c.function = "E1";
  c.n_points = static_cast<int>(tac.time_h.size());
  c.n_parameters = 2;
  c.parameter_names = e1.parameter_names();
  c.fitted = true;
  double lambda_eff = 0, lambda_u = NAN;
  if (options.reduced == "prior") {
    if (tac.activity_u_MBq.size() == 0)
      throw_input_error(where, "activity_u_MBq", "missing",
                        "per-point uncertainties for the MAP fit with population priors (they weigh the data "
                        "against the priors)");
    const PriorFit pf = fit_with_prior(*pop, tac.time_h, tac.activity_MBq, tac.activity_u_MBq, lambda_p);
    c.parameters = pf.parameters;
    c.covariance = pf.covariance;
    c.tia_MBq_h = pf.tia_MBq_h;
    c.tia_u_MBq_h = pf.tia_u_MBq_h;
    c.fitted_MBq = pf.fitted_MBq;
    c.flags = pf.flags;
    fit.method = "MAP fit with population priors";
  } else {
    if (options.reduced == "hanscheid") {
      // the Hänscheid estimate is E1 with T_eff = t through the point; beyond the physical
      // half-life T_eff = t would be slower than physical decay: capped at T_phys there
      lambda_eff = std::max(std::log(2.0) / t, lambda_p);
      fit.method = "single time point: Hanscheid (T_eff = t)";
      if (lambda_eff == lambda_p)
        fit.notes.push_back("Hanscheid at " + format_number(t) + " h, beyond the physical half-life: T_eff capped at "
                            "the physical half-life (no effective half-life is longer), TIA = A e^(lambda_p t)/lambda_p");
    } else {
      double mean = NAN, sd = NAN;
      for (const auto& p : pop->priors)
        if (p.parameter == "lambda1_bio_per_h") mean = p.mean, sd = p.sd;
      lambda_eff = mean + lambda_p;
      lambda_u = sd;
      fit.method = options.reduced == "madsen" ? "single time point: Madsen (population effective decay)"
                                               : "single time point: population curve";
    }
    const double lambda_bio = std::max(lambda_eff - lambda_p, 0.0);
    c.parameters = (Eigen::VectorXd(2) << a * std::exp(lambda_eff * t), lambda_bio).finished();
    c.tia_MBq_h = options.reduced == "hanscheid" ? (lambda_eff > lambda_p ? tia_hanscheid(t, a) : a * std::exp(lambda_p * t) / lambda_p)
                  : options.reduced == "madsen"  ? tia_madsen(t, a, lambda_eff)
                                                 : c.parameters(0) / lambda_eff;
    // uncertainty: the population's rate spread and the activity's (population method)
    if (options.reduced == "population") {
      Eigen::MatrixXd cov = Eigen::MatrixXd::Zero(2, 2);
      cov(1, 1) = lambda_u * lambda_u;
      const StpEstimate e = tia_population_curve(t, a, e1, c.parameters, lambda_p, cov, u_a);
      c.tia_MBq_h = e.tia_MBq_h;
      c.tia_u_MBq_h = e.tia_u_MBq_h;
    }
    if (options.reduced != "population")
      set_stp_uncertainty(tac, population, lambda_p, options.reduced == "hanscheid" ? 2.0 * t / std::log(2.0)
                                                                                  : std::exp(lambda_eff * t) / lambda_eff,
                          c, fit);
    c.covariance = Eigen::MatrixXd::Constant(2, 2, NAN);
    c.fitted_MBq = e1.evaluate(tac.time_h, c.parameters, lambda_p);
  }
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
  fit.selection = "reduced schedule (" + options.reduced + ") chosen by the user; time point " +
                  format_number(t) + " h";
  if (tac.time_h.size() > 1 && options.reduced != "prior")
    fit.notes.push_back("single-time-point method: only the last time point (" + format_number(t) + " h) is used");
  return fit;
}

// Joint fit of a compartment model to the VOIs it observes, per cycle (methods.md §3).
void fit_compartment_model(const RunOptions& options, double lambda_p, RunResult& result) {
  try {
    const auto model = models::CompartmentModel::from_file(options.compartment_model);
    const auto names = model.observation_names();
    bool any = false;
    for (auto& cycle : result.cycles) {
      std::map<std::string, models::VoiData> data;
      for (const auto& v : cycle.vois) {
        if (std::find(names.begin(), names.end(), v.tac.voi) == names.end()) continue;
        models::VoiData d;
        for (Eigen::Index i = 0; i < v.tac.time_h.size(); ++i) {
          d.t_h.push_back(v.tac.time_h(i));
          d.activity_MBq.push_back(v.tac.activity_MBq(i));
          double sigma = 1.0;  // constant error model: equal relative weights
          if (options.fit.error_model == ErrorModel::input && v.tac.activity_u_MBq.size() > 0)
            sigma = v.tac.activity_u_MBq(i);
          else if (options.fit.error_model != ErrorModel::constant)
            sigma = std::max(v.tac.activity_MBq(i), 1e-3 * v.tac.activity_MBq.maxCoeff());
          d.sigma_MBq.push_back(sigma);
        }
        data[v.tac.voi] = d;
      }
      if (data.empty()) continue;
      any = true;
      if (!(cycle.administered_MBq > 0))
        throw InputError(options.tac_path + ": cycle " + std::to_string(cycle.cycle) +
                         ": a compartment model needs the administered activity (--activity-MBq or the case file)");
      models::FitOptions fo;
      fo.relative_sigmas = options.fit.error_model != ErrorModel::input;
      const models::CompartmentFit cf = models::fit(model, data, cycle.administered_MBq, lambda_p, fo);
      // A fit that fails its acceptance criteria (or could not run: no parameters) is never the
      // result: each VOI keeps its exponential-family result or fallback, with a note why.
      const bool accepted = cf.converged && cf.flags.empty() && cf.parameters.size() == model.n_parameters();
      if (!accepted) {
        std::string why;
        for (const auto& fl : cf.flags) why += (why.empty() ? "" : ", ") + fl;
        if (!cf.status.empty()) why += (why.empty() ? "" : "; ") + cf.status;
        for (auto& v : cycle.vois)
          if (data.count(v.tac.voi))
            v.fit.notes.push_back("compartment model " + model.name() + ": the joint fit failed its acceptance criteria (" +
                                  why + "); not used: this VOI keeps its own fit or fallback");
        continue;
      }
      // the fitted curves, sampled once for dose-rate curves (BED)
      std::vector<double> ts;
      for (double t = 0.05; t < 40.0 / lambda_p; t *= 1.08) ts.push_back(t);
      const Eigen::Map<const Eigen::VectorXd> tv(ts.data(), static_cast<Eigen::Index>(ts.size()));
      const Eigen::MatrixXd curve = model.observe(tv, cf.parameters, cycle.administered_MBq, lambda_p);
      for (auto& v : cycle.vois) {
        const auto it = std::find(cf.vois.begin(), cf.vois.end(), v.tac.voi);
        if (it == cf.vois.end() || !data.count(v.tac.voi)) continue;
        const auto k = static_cast<Eigen::Index>(it - cf.vois.begin());
        TacFit f;
        f.method = "compartment model";
        f.function = "compartment:" + model.name();
        f.tia_MBq_h = cf.tia_voi_MBq_h(k);
        f.tia_u_MBq_h = cf.tia_voi_u_MBq_h(k);
        const int dof = cf.n_points - static_cast<int>(cf.free_parameters.size());
        f.tia_u_dof = !fo.relative_sigmas ? std::numeric_limits<double>::infinity() : dof > 0 ? static_cast<double>(dof) : std::numeric_limits<double>::quiet_NaN();
        f.accepted = true;
        f.selection = "joint fit of " + model.name() + " to " + std::to_string(data.size()) + " VOIs (" +
                      std::to_string(cf.n_points) + " points, " + std::to_string(cf.free_parameters.size()) +
                      " free rates, reduced chi-square " + format_number(cf.reduced_chi_square) + ")";
        for (size_t j = 0; j < cf.free_parameters.size(); ++j)
          f.notes.push_back(cf.free_parameters[j] + " = " + format_number(cf.free_values(static_cast<Eigen::Index>(j))) +
                            " +- " + format_number(cf.standard_errors(static_cast<Eigen::Index>(j))));
        f.numerical_tia_MBq_h = v.fit.numerical_tia_MBq_h;
        set_tia_intervals(f);
        v.fit = f;
        if (cycle.administered_MBq > 0) v.tia_h = f.tia_MBq_h / cycle.administered_MBq;
        v.model_curve_t_h = ts;
        v.model_curve_MBq.resize(ts.size());
        for (size_t i = 0; i < ts.size(); ++i) v.model_curve_MBq[i] = curve(static_cast<Eigen::Index>(i), k);
      }
    }
    if (!any) {
      std::string observed;
      for (const auto& n : names) observed += (observed.empty() ? "" : ", ") + n;
      throw_input_error(options.compartment_model, "the model's observed VOIs", observed,
                        "VOIs of the input with these names (no VOI of the input is observed by the model)");
    }
  } catch (const models::ModelError& e) {
    throw InputError(e.what());
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
}  // namespace

RunResult run_tac_table(const std::vector<TacSeries>& series, const RunOptions& options,
                        const std::vector<std::vector<QuantifiedPoint>>* points) {
  RunResult result;
  result.provenance.lutdose_version = LUTDOSE_VERSION;
  result.provenance.options = options;
  result.provenance.nuclide = load_nuclide(options.data_dir, options.nuclide, options.half_life_override_h);
  if (!std::isnan(options.administered_MBq) &&
      !(options.administered_MBq > 0 && std::isfinite(options.administered_MBq)))
    throw_input_error("--activity-MBq", "the administered activity",
                      format_number(options.administered_MBq), "an activity > 0 MBq");
  std::optional<DoseCalculator> dose;
  if (options.dose) {
    dose.emplace(options.data_dir, result.provenance.nuclide, *options.dose);
    result.provenance.svalue_files = dose->svalue_set().files;
    result.provenance.svalue_files.push_back("spheres/pytheranostics_spheres.json");
    result.provenance.svalue_set_description = dose->svalue_set().description;
  }
  const double lambda_p = result.provenance.nuclide.lambda_per_h();
  std::vector<PopulationKinetics> population;
  if (options.reduced != "none") population = load_population_kinetics(options.data_dir);
  std::optional<TissueTable> tissue;
  if (dose) {
    tissue = TissueTable::load(options.data_dir);
    for (const auto& [pattern, p] : options.tissue_overrides) tissue->set(pattern, p);
    result.provenance.tissue_file = tissue->path;
    result.limits = load_limits(options.data_dir);
  }

  std::map<std::pair<std::string, int>, size_t> cycle_index;
  for (size_t idx = 0; idx < series.size(); ++idx) {
    const auto& s = series[idx];
    const auto key = std::make_pair(s.patient, s.cycle);
    if (!cycle_index.count(key)) {
      cycle_index[key] = result.cycles.size();
      CycleResult c;
      c.patient = s.patient;
      c.cycle = s.cycle;
      const auto it = options.administered_by_cycle_MBq.find(s.cycle);
      c.administered_MBq =
          it != options.administered_by_cycle_MBq.end() ? it->second : options.administered_MBq;
      result.cycles.push_back(c);
    }
    auto& cycle = result.cycles[cycle_index[key]];
    VoiResult v;
    v.tac = s;
    if (points) v.quantification = points->at(idx);
    const std::string where = options.tac_path + ": " + s.where();
    // Time to the next cycle (residual handling), from the cycles' reference times.
    const auto start = options.cycle_start_h.find(s.cycle);
    const auto next = start == options.cycle_start_h.end() ? start : std::next(start);
    if (options.residual == "integrate-to-next" && next != options.cycle_start_h.end())
      cycle.horizon_h = next->second - start->second;
    // Residual of the previous cycle: its fitted curve at this cycle's times, subtracted.
    if (options.residual == "subtract" && start != options.cycle_start_h.begin() &&
        start != options.cycle_start_h.end()) {
      const auto prev = std::prev(start);
      const double delta = start->second - prev->second;
      for (const auto& pc : result.cycles) {
        if (pc.patient != s.patient || pc.cycle != prev->first) continue;
        for (const auto& pv : pc.vois) {
          if (pv.tac.voi != s.voi) continue;
          const ActivityCurve residual = curve_of(pv.fit, pv.tac, options.fit, lambda_p);
          v.residual_subtracted_MBq.resize(static_cast<size_t>(s.time_h.size()));
          for (Eigen::Index i = 0; i < s.time_h.size(); ++i) {
            const double r = residual(delta + s.time_h(i));
            v.residual_subtracted_MBq[static_cast<size_t>(i)] = r;
            v.tac.activity_MBq(i) = std::max(v.tac.activity_MBq(i) - r, 0.0);
          }
        }
      }
    }
    if (options.reduced == "none")
      v.fit = fit_tac(v.tac.time_h, v.tac.activity_MBq, v.tac.activity_u_MBq, lambda_p,
                      fit_options_for(v.tac.voi, options.fit), where);
    else
      v.fit = reduced_schedule_fit(v.tac, options, population, lambda_p, where);
    if (std::isfinite(cycle.horizon_h)) {  // TIA to the next cycle instead of infinity
      const double T = cycle.horizon_h;
      if (v.fit.selected >= 0) {
        const auto& c = v.fit.candidates[static_cast<size_t>(v.fit.selected)];
        const auto& f = *models::find_exponential(c.function);
        v.fit.tia_MBq_h = f.integral(c.parameters, lambda_p, T);
        const Eigen::VectorXd g = f.integral_gradient(c.parameters, lambda_p, T);
        v.fit.tia_u_MBq_h = std::sqrt(g.dot(c.covariance * g));
      } else {  // trapezoid: the physical-decay tail stops at the next cycle
        const double tn = v.tac.time_h(v.tac.time_h.size() - 1), an = v.tac.activity_MBq(v.tac.activity_MBq.size() - 1);
        v.fit.tia_MBq_h -= an / lambda_p * std::exp(-lambda_p * std::max(T - tn, 0.0));
      }
      v.fit.notes.push_back("integrated to the next cycle, " + format_number(T) + " h (residual option)");
    }
    set_tia_intervals(v.fit);
    v.mean_mass_g = mean_of_given(s.mass_g);
    v.mean_volume_mL = mean_of_given(s.volume_mL);
    if (cycle.administered_MBq > 0) v.tia_h = v.fit.tia_MBq_h / cycle.administered_MBq;
    cycle.vois.push_back(std::move(v));
  }
  if (!options.compartment_model.empty()) {
    if (options.residual == "integrate-to-next")
      throw_input_error("radiobiology.residual", "the residual option", "integrate-to-next",
                        "none or subtract with a compartment model (its TIA is integrated to infinity; a "
                        "finite horizon is not implemented for ODE models yet)");
    fit_compartment_model(options, lambda_p, result);
  }
  if (dose) {
    for (auto& cycle : result.cycles) {
      std::vector<DoseSourceInput> inputs;
      for (const auto& v : cycle.vois) inputs.push_back(dose_input(v));
      std::string where = options.tac_path + ": ";
      if (!cycle.patient.empty()) where += "patient " + cycle.patient + ", ";
      where += "cycle " + std::to_string(cycle.cycle);
      std::map<std::string, ActivityCurve> curves;
      for (const auto& v : cycle.vois) {
        if (!v.model_curve_t_h.empty()) {  // compartment model: its sampled curve, interpolated
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
          curves[v.tac.voi] = c;
        } else {
          curves[v.tac.voi] = curve_of(v.fit, v.tac, options.fit, lambda_p);
        }
      }
      const auto blood = options.blood_by_cycle.find(cycle.cycle);
      cycle.marrow = add_marrow(*dose, blood == options.blood_by_cycle.end() ? nullptr : &blood->second, options.fit,
                                lambda_p, inputs, curves, where);
      CycleDoses d = dose->compute(inputs, cycle.administered_MBq, where);
      if (options.mc_samples > 0)
        cycle.monte_carlo = monte_carlo(*dose, {options.mc_samples, options.mc_seed}, options.fit, lambda_p, cycle,
                                        inputs, d, where);
      // Inputs that belong to one cycle (fit, RC, volume) get the cycle in their name; the CF and
      // the S-values keep theirs, being common to all cycles of the patient.
      auto per_cycle = [&](const std::string& name) {
        for (const char* prefix : {"fit:", "rc:", "volume:"})
          if (name.rfind(prefix, 0) == 0)
            return std::string(prefix) + "cycle" + std::to_string(cycle.cycle) + ":" +
                   name.substr(std::char_traits<char>::length(prefix));
        return name;
      };
      for (auto& name : d.input_names) name = per_cycle(name);
      for (auto& t : d.targets)
        for (auto& name : t.u_missing) name = per_cycle(name);
      cycle.doses = std::move(d.targets);
      cycle.dose_input_names = std::move(d.input_names);
      cycle.dose_input_u_rel = std::move(d.input_u_rel);
      cycle.dose_input_dof = std::move(d.input_dof);
      cycle.remainder_tia_MBq_h = d.remainder_tia_MBq_h;
      cycle.dose_notes = std::move(d.notes);
      add_bed(*tissue, curves, cycle, lambda_p);
    }
  }
  // Sums over the cycles of each patient.
  std::map<std::string, int> cycles_per_patient;
  for (const auto& c : result.cycles) ++cycles_per_patient[c.patient];
  for (const auto& [patient, n] : cycles_per_patient) {
    if (n < 2 || !dose) continue;
    std::vector<CumulativeDose> sums;
    std::map<std::string, std::map<std::string, double>> sens;  // target -> input -> sum of c
    std::map<std::string, double> alpha_beta;
    std::map<std::string, double> u_rel, u_dof;
    for (const auto& c : result.cycles) {
      if (c.patient != patient) continue;
      for (size_t k = 0; k < c.dose_input_names.size(); ++k) {
        u_rel[c.dose_input_names[k]] = c.dose_input_u_rel[k];
        u_dof[c.dose_input_names[k]] = k < c.dose_input_dof.size() ? c.dose_input_dof[k] : INFINITY;
      }
      for (const auto& t : c.doses) {
        auto it = std::find_if(sums.begin(), sums.end(), [&](const CumulativeDose& x) { return x.target == t.target; });
        if (it == sums.end()) {
          CumulativeDose x;
          x.target = t.target;
          sums.push_back(x);
          it = sums.end() - 1;
        }
        it->dose_Gy += t.dose_Gy;
        if (!std::isnan(t.bed_Gy)) it->bed_Gy = (std::isnan(it->bed_Gy) ? 0.0 : it->bed_Gy) + t.bed_Gy;
        if (!std::isnan(t.alpha_beta_Gy)) alpha_beta[t.target] = t.alpha_beta_Gy;
        ++it->cycles;
        for (size_t k = 0; k < t.sensitivity_Gy.size(); ++k) sens[t.target][c.dose_input_names[k]] += t.sensitivity_Gy[k];
      }
    }
    for (auto& x : sums) {
      std::vector<double> cs, us, dofs;
      std::vector<std::string> names;
      for (const auto& [k, c] : sens[x.target]) {
        names.push_back(k);
        cs.push_back(c);
        us.push_back(u_rel[k]);
        dofs.push_back(u_dof[k]);
      }
      combine_uncertainty(cs, names, us, dofs, x.dose_Gy, x.dose_u_Gy, x.dose_u_dof, x.dose_ci68_Gy, x.dose_ci95_Gy,
                          x.u_missing);
      if (!options.repopulation_targets.empty() && !std::isnan(x.bed_Gy) &&
          target_matches(options.repopulation_targets, x.target) &&
          !options.cycle_start_h.empty()) {
        // -ln2 (T - T_k) / (alpha T_pot), T from the first to the last cycle (methods.md §7.2)
        const double T_d = (options.cycle_start_h.rbegin()->second - options.cycle_start_h.begin()->second) / 24.0;
        if (T_d > options.repopulation_kickoff_d) {
          x.repopulation_Gy = std::log(2.0) * (T_d - options.repopulation_kickoff_d) /
                              (options.repopulation_alpha_per_Gy * options.repopulation_t_pot_d);
          x.bed_Gy -= x.repopulation_Gy;
        }
      }
      if (!std::isnan(x.bed_Gy) && alpha_beta.count(x.target)) x.eqd2_Gy = eqd2(x.bed_Gy, alpha_beta[x.target]);
    }
    result.cumulative[patient] = sums;
  }
  check_results_finite(result);  // nothing non-finite reaches the writers
  return result;
}

}  // namespace lutdose

namespace lutdose {

RunResult run_case(const CaseFile& c, const std::string& data_dir, int mc_samples,
                   unsigned long long mc_seed) {
  RunOptions o;
  o.data_dir = data_dir;
  o.tac_path = c.path;
  o.input_kind = "case-file";
  o.fit = c.fit;
  o.dose = c.dose;
  o.nuclide = c.nuclide;
  o.half_life_override_h = c.half_life_override_h;
  const Nuclide nuclide = load_nuclide(data_dir, c.nuclide, c.half_life_override_h);
  const QuantifiedCase q = quantify_case(c, nuclide.lambda_per_h());
  o.administered_by_cycle_MBq = q.administered_MBq;
  o.blood_by_cycle = q.blood;
  o.residual = c.residual;
  o.reduced = c.reduced;
  if (!c.compartment_model.empty()) o.compartment_model = find_compartment_model(c.compartment_model, data_dir);
  for (const auto& cy : c.cycles)
    if (!std::isnan(cy.reference_abs_h)) o.cycle_start_h[cy.cycle] = cy.reference_abs_h;
  o.tissue_overrides = c.tissue_overrides;
  o.repopulation_targets = c.repopulation_targets;
  o.repopulation_alpha_per_Gy = c.repopulation_alpha_per_Gy;
  o.repopulation_t_pot_d = c.repopulation_t_pot_d;
  o.repopulation_kickoff_d = c.repopulation_kickoff_d;
  o.mc_samples = mc_samples >= 0 ? mc_samples : c.mc_samples;
  o.mc_seed = mc_seed > 0 ? mc_seed : c.mc_seed;
  RunResult r = run_tac_table(q.series, o, &q.points);
  for (auto& cycle : r.cycles) {
    for (const auto& cy : c.cycles) {
      if (cy.cycle != cycle.cycle) continue;
      CycleProvenance p;
      p.reference_time = cy.reference_time;
      p.administered_measured_MBq = cy.administered_measured_MBq;
      p.administered_measured_at_h = cy.administered_measured_at_h;
      p.residual_measured_MBq = cy.residual_measured_MBq;
      p.residual_measured_at_h = cy.residual_measured_at_h;
      p.protocol = cy.protocol;
      if (c.protocols.count(cy.protocol)) {
        const Protocol& pr = c.protocols.at(cy.protocol);
        p.protocol_details = ProtocolSummary{pr.cf_cps_per_MBq, pr.cf_u_cps_per_MBq, pr.dead_time, pr.tau_s,
                                             pr.recovery.has_value()};
      }
      p.timing = cy.timing;
      p.decay_corrected_to = cy.decay_corrected_to;
      cycle.provenance = p;
    }
  }
  return r;
}

}  // namespace lutdose
