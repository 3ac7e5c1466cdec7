#include "lutdose/pipeline/pipeline.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <functional>
#include <optional>

#include "lutdose/error.h"
#include "lutdose/io/input_file.h"
#include "lutdose/io/population_file.h"
#include "lutdose/pipeline/result_checks.h"
#include "lutdose/dosimetry/marrow.h"
#include "lutdose/dosimetry/monte_carlo.h"
#include "lutdose/kinetics/activity_curve.h"
#include "lutdose/kinetics/voi_fit_options.h"
#include "lutdose/kinetics/stp.h"
#include "lutdose/kinetics/compartment_fit.h"
#include "lutdose/kinetics/reduced_schedules.h"
#include "lutdose/io/run_files.h"
#include "lutdose/models/compartment.h"
#include "lutdose/radiobiology/cycle_bed.h"
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

// BED and EQD2 of every target of the cycle with tissue parameters (radiobiology/cycle_bed.h): the
// source curves with the remainder's, and the sources' TIAs (VOIs, red marrow, remainder).
void add_bed(const TissueTable& tissue, const std::map<std::string, ActivityCurve>& curves, CycleResult& cycle,
             double lambda_p) {
  std::map<std::string, ActivityCurve> all = curves;
  if (!std::isnan(cycle.remainder_tia_MBq_h))
    if (auto rb = remainder_curve(curves, cycle.doses)) all["remainder"] = std::move(*rb);
  std::map<std::string, double> tia;
  for (const auto& v : cycle.vois) tia[v.tac.voi] = v.fit.tia_MBq_h;
  if (cycle.marrow) tia["red_marrow"] = cycle.marrow->tia_MBq_h;
  if (!std::isnan(cycle.remainder_tia_MBq_h)) tia["remainder"] = cycle.remainder_tia_MBq_h;
  add_cycle_bed(tissue, all, tia, cycle.horizon_h, lambda_p, cycle.doses);
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
    return DoseCalculator(options.user_svalue_set, ref.sphere_table(d.sphere_composition), nuclide, d);
  }
  return DoseCalculator(ref.phantom(d.phantom), ref.sphere_table(d.sphere_composition), nuclide, d);
}

// The cycle of a series, made at its first series: administered activity and the horizon of its
// TIAs (the next cycle's reference time with residual integrate-to-next).
CycleResult new_cycle(const TacSeries& s, const RunOptions& options) {
  CycleResult c;
  c.patient = s.patient;
  c.cycle = s.cycle;
  const auto it = options.administered_by_cycle_MBq.find(s.cycle);
  c.administered_MBq = it != options.administered_by_cycle_MBq.end() ? it->second : options.administered_MBq;
  const auto start = options.cycle_start_h.find(s.cycle);
  const auto next = start == options.cycle_start_h.end() ? start : std::next(start);
  if (options.residual == ResidualHandling::integrate_to_next && next != options.cycle_start_h.end())
    c.horizon_h = next->second - start->second;
  return c;
}

// The cycles of `result`, one per patient and cycle in the order of their first series in `order`
// (indices into `series`), each with room for its VOIs (no reallocation while they are fitted).
// Returns the position in result.cycles of the cycle of each series of `order`. A series of the
// previous series' patient and cycle needs no look-up.
std::vector<size_t> add_cycles(const std::vector<TacSeries>& series, const std::vector<size_t>& order,
                               const RunOptions& options, RunResult& result) {
  std::map<std::pair<std::string, int>, size_t> index;
  std::vector<size_t> cycle_of;
  cycle_of.reserve(order.size());
  for (size_t k = 0; k < order.size(); ++k) {
    const TacSeries& s = series[order[k]];
    const TacSeries* previous = k > 0 ? &series[order[k - 1]] : nullptr;
    if (previous && previous->cycle == s.cycle && previous->patient == s.patient) {
      cycle_of.push_back(cycle_of.back());
      continue;
    }
    const auto [it, fresh] = index.try_emplace({s.patient, s.cycle}, result.cycles.size());
    if (fresh) result.cycles.push_back(new_cycle(s, options));
    cycle_of.push_back(it->second);
  }
  std::vector<size_t> vois(result.cycles.size(), 0);
  for (const size_t c : cycle_of) ++vois[c];
  for (size_t c = 0; c < vois.size(); ++c) result.cycles[c].vois.reserve(vois[c]);
  return cycle_of;
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

// The individual fit of a VOI (fit_tac with the options of its VOI kind).
TacFit individual_fit(const TacSeries& tac, const RunOptions& options, double lambda_p, const std::string& where) {
  return fit_tac(tac.time_h, tac.activity_MBq, tac.activity_u_MBq, lambda_p, fit_options_for(tac.voi, options.fit),
                 where);
}

// The population MAP of a VOI. A MAP that fails its criteria is not used (it would be the
// population's estimate, not this TAC's: a TAC of zeros got the population mean): the VOI gets the
// individual fit, with its own fallback, and a note saying why the MAP was not used.
TacFit population_fit(const TacSeries& tac, const CycleResult& cycle, const RunOptions& options, double lambda_p,
                      const std::string& where) {
  const PopulationModel* model = find_population_model(*options.population, tac.voi);
  if (!model)  // throws the InputError naming the file, the VOI and the TAC (as fit and batch do)
    check_population_covers(*options.population, options.population_source.path, VoiPatients{{tac.voi, {}}}, where);
  TacFit map = population_map_fit(*model, tac, cycle.administered_MBq, lambda_p, where);
  if (map.accepted) return map;
  TacFit own = individual_fit(tac, options, lambda_p, where);
  own.notes.push_back("population MAP not used: " + map.notes.back() + "; the individual fit instead");
  return own;
}

// The earlier cycles of `tac`'s patient and VOI fitted so far, in cycle order, each with its
// individual fit (recomputed where a previous-cycles MAP replaced it: each cycle's own data enter
// a later prior once, not through an earlier MAP).
std::vector<EarlierCycle> earlier_cycles(const TacSeries& tac, const RunResult& result, const RunOptions& options,
                                         double lambda_p) {
  std::vector<EarlierCycle> out;
  for (const auto& c : result.cycles) {
    if (c.patient != tac.patient || c.cycle >= tac.cycle) continue;
    for (const auto& v : c.vois)
      if (v.tac.voi == tac.voi)
        out.push_back({c.cycle, v.tac,
                       v.fit.method != "previous-cycles MAP"
                           ? v.fit
                           : individual_fit(v.tac, options, lambda_p, options.tac_path + ": " + v.tac.where()),
                       c.administered_MBq});
  }
  std::sort(out.begin(), out.end(), [](const EarlierCycle& a, const EarlierCycle& b) { return a.cycle < b.cycle; });
  return out;
}

// Previous-cycles kinetics (methods.md §10): the MAP of a later cycle with the patient's earlier
// cycles of the VOI as prior. The first cycle, a cycle whose prior cannot be formed and a MAP that
// fails its criteria get the individual fit, with a note saying why.
TacFit previous_cycles_fit(const TacSeries& tac, const CycleResult& cycle, const RunResult& result,
                           const RunOptions& options, double lambda_p, const std::string& where) {
  const auto earlier = earlier_cycles(tac, result, options, lambda_p);
  std::string why_not;
  std::optional<PreviousCyclesPrior> prior;
  if (earlier.empty())
    why_not = "cycle " + std::to_string(tac.cycle) + " has no earlier cycle of this VOI";
  else if (!(cycle.administered_MBq > 0))
    why_not = "the administered activity of cycle " + std::to_string(tac.cycle) +
              " is not known (the prior's amplitudes are per administered activity)";
  else
    prior = previous_cycles_prior(earlier, why_not);
  if (prior) {
    TacFit map = previous_cycles_map_fit(*prior, tac, cycle.administered_MBq, lambda_p, where);
    if (map.accepted) return map;
    why_not = "MAP not used: " + map.notes.back();
  }
  TacFit own = individual_fit(tac, options, lambda_p, where);
  own.notes.push_back("previous-cycles kinetics: " + why_not + "; the individual fit instead");
  return own;
}

// One VOI of a cycle: residual, fit (or reduced schedule), TIA to the horizon, its intervals.
VoiResult fit_voi(const TacSeries& s, const std::vector<QuantifiedPoint>* quantification, const CycleResult& cycle,
                  const RunResult& result, const RunOptions& options, const ReferenceData& ref, double lambda_p) {
  VoiResult v;
  v.tac = s;
  if (quantification) v.quantification = *quantification;
  const std::string tac = s.where();
  std::string where;  // "FILE: patient P, cycle C, VOI V", for messages
  where.reserve(options.tac_path.size() + 2 + tac.size());
  where.append(options.tac_path).append(": ").append(tac);
  subtract_previous_cycle(v, options, result, lambda_p);
  if (options.population)
    v.fit = population_fit(v.tac, cycle, options, lambda_p, where);
  else if (options.fit.kinetics == Kinetics::previous_cycles)
    v.fit = previous_cycles_fit(v.tac, cycle, result, options, lambda_p, where);
  else if (options.reduced == ReducedSchedule::none)
    v.fit = individual_fit(v.tac, options, lambda_p, where);
  else
    v.fit = reduced_schedule_fit(v.tac, options.reduced, ref.population_kinetics(), lambda_p, where);
  if (std::isfinite(cycle.horizon_h)) integrate_to_horizon(v.fit, v.tac, cycle.horizon_h, lambda_p);
  set_tia_intervals(v.fit);
  v.mean_mass_g = mean_of_given(s.mass_g);
  v.mean_volume_mL = mean_of_given(s.volume_mL);
  if (cycle.administered_MBq > 0) v.tia_h = v.fit.tia_MBq_h / cycle.administered_MBq;
  return v;
}

// A VOI the model of a compartment population does not observe keeps its individual fit (the exponential
// family), with a note saying so (review of 0.20: a VOI spelled "Organ" beside "organ" fell back silently).
void note_not_observed(const models::CompartmentModel& model, CycleResult& cycle) {
  for (auto& v : cycle.vois)
    if (model.observation_index(v.tac.voi) < 0)
      v.fit.notes.push_back("not observed by the compartment model " + model.name() +
                            " of the population: fitted individually (the exponential family)");
}

// The joint compartment-model fits of every cycle replace the fits of the VOIs the model observes
// (where the joint fit is accepted; a note says why not otherwise).
void apply_compartment_model(const models::CompartmentModel& model, const RunOptions& options, double lambda_p,
                             RunResult& result) {
  bool any = false;
  for (auto& cycle : result.cycles) {
    std::vector<TacSeries> tacs;
    for (const auto& v : cycle.vois) tacs.push_back(v.tac);
    const std::string where = options.tac_path + ": cycle " + std::to_string(cycle.cycle);
    const CompartmentCycleFit cf =
        options.compartment_population
            ? compartment_population_cycle(*options.compartment_population, model, tacs, cycle.administered_MBq,
                                           lambda_p, where)
            : fit_compartment_cycle(model, tacs, cycle.administered_MBq, lambda_p, options.fit.error_model, where);
    any = any || !cf.observed.empty();
    if (options.compartment_population) note_not_observed(model, cycle);
    for (auto& v : cycle.vois) {
      if (std::find(cf.observed.begin(), cf.observed.end(), v.tac.voi) == cf.observed.end()) continue;
      if (!cf.accepted) {
        v.fit.notes.push_back("compartment model " + model.name() +
                              (options.compartment_population ? ": the population MAP" : ": the joint fit") +
                              " failed its acceptance criteria (" + cf.failure +
                              "); not used: this VOI keeps its own fit or fallback");
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
  const auto blood = options.blood_by_cycle.find(cycle.cycle);
  cycle.marrow = add_marrow(dose, blood == options.blood_by_cycle.end() ? nullptr : &blood->second, options.fit,
                            lambda_p, inputs, curves, where);
  CycleDoses d = dose.compute(inputs, cycle.administered_MBq, where);
  if (options.mc_samples > 0)
    cycle.monte_carlo =
        monte_carlo(dose, {options.mc_samples, options.mc_seed}, options.fit, lambda_p, cycle, inputs, d, where);
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

// A summed dose's uncertainty, tumour repopulation (radiobiology/cycle_bed.h) and EQD2.
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
      target_matches(options.repopulation_targets, x.target) && !options.cycle_start_h.empty())
    if (const auto r = tumour_repopulation_Gy(options.cycle_start_h.begin()->second,
                                              options.cycle_start_h.rbegin()->second, options.repopulation_kickoff_d,
                                              options.repopulation_alpha_per_Gy, options.repopulation_t_pot_d)) {
      x.repopulation_Gy = *r;
      x.bed_Gy -= *r;
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

// The order the TACs of `order` (indices into `series`, in table order) are fitted in: the input's,
// but with previous-cycles kinetics each patient's cycles in increasing number (a later cycle's prior
// needs the earlier fits), patients in the order they first appear.
std::vector<size_t> processing_order(const std::vector<TacSeries>& series, std::vector<size_t> order,
                                     const RunOptions& options) {
  if (options.fit.kinetics != Kinetics::previous_cycles) return order;
  std::map<std::string, size_t> first;
  for (const size_t i : order) first.emplace(series[i].patient, i);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return std::make_pair(first[series[a].patient], series[a].cycle) <
           std::make_pair(first[series[b].patient], series[b].cycle);
  });
  return order;
}

std::vector<size_t> all_indices(size_t n) {
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  return order;
}

// What every patient of a run shares: the provenance (of options validated here), the dose step
// with the tissue table of the options, the limits (these three only with doses).
struct RunSetup {
  Provenance provenance;
  std::optional<DoseCalculator> dose;
  TissueTable tissue;
  std::vector<Limit> limits;
};

RunSetup setup_run(const RunOptions& options, const ReferenceData& ref) {
  validate_or_throw(options, options.tac_path.empty() ? "options" : options.tac_path);
  RunSetup s;
  s.provenance.lutdose_version = LUTDOSE_VERSION;
  s.provenance.options = options;
  s.provenance.nuclide = ref.nuclide(options.nuclide, options.half_life_override_h);
  if (!options.dose) return s;
  s.dose.emplace(make_dose_calculator(*options.dose, options, ref, s.provenance.nuclide));
  s.provenance.svalue_files = s.dose->svalue_set().files;
  s.provenance.svalue_files.push_back("spheres/pytheranostics_spheres.json");
  s.provenance.svalue_set_description = s.dose->svalue_set().description;
  s.tissue = ref.tissue();
  for (const auto& [pattern, p] : options.tissue_overrides) s.tissue.set(pattern, p);
  s.provenance.tissue_file = s.tissue.path;
  s.limits = ref.limits();
  return s;
}

// The pipeline on the series of `order` (indices into `series` and `points`, in processing order).
RunResult run_series(const std::vector<TacSeries>& series, const std::vector<size_t>& order,
                     const RunOptions& options, const ReferenceData& ref, const RunSetup& setup,
                     const std::vector<std::vector<QuantifiedPoint>>* points) {
  RunResult result;
  result.provenance = setup.provenance;
  result.limits = setup.limits;
  const double lambda_p = result.provenance.nuclide.lambda_per_h();
  const std::vector<size_t> cycle_of = add_cycles(series, order, options, result);
  for (size_t k = 0; k < order.size(); ++k) {
    CycleResult& cycle = result.cycles[cycle_of[k]];  // no reallocation below (add_cycles)
    const size_t i = order[k];
    cycle.vois.push_back(fit_voi(series[i], points ? &points->at(i) : nullptr, cycle, result, options, ref, lambda_p));
  }
  if (!options.compartment_model.empty()) {  // with residual none or subtract (validate)
    apply_compartment_model(compartment_model_of(options, ref), options, lambda_p, result);
  }
  if (setup.dose) {
    for (auto& cycle : result.cycles) dose_cycle(*setup.dose, setup.tissue, options, lambda_p, cycle);
    sum_cycles(result, options);
  }
  check_results_finite(result);  // nothing non-finite reaches the writers
  return result;
}

}  // namespace

RunResult run_tac_table(const std::vector<TacSeries>& series, const RunOptions& options, const ReferenceData& ref,
                        const std::vector<std::vector<QuantifiedPoint>>* points) {
  return run_series(series, processing_order(series, all_indices(series.size()), options), options, ref,
                    setup_run(options, ref), points);
}

namespace {
// The reference data a run needs: the S-value sets and sphere tables only with doses.
ReferenceData load_reference_for(const RunOptions& options) {
  return ReferenceData::load(options.data_dir,
                             options.dose ? ReferenceParts::all : ReferenceParts::without_dose_data);
}
}  // namespace

RunResult run_tac_table(const std::vector<TacSeries>& series, const RunOptions& options,
                        const std::vector<std::vector<QuantifiedPoint>>* points) {
  const ReferenceData ref = load_reference_for(options);
  RunOptions o = options;
  read_run_files(o, ref);
  return run_tac_table(series, o, ref, points);
}

// A series of the previous series' patient needs no look-up.
std::vector<std::vector<size_t>> patient_indices(const std::vector<TacSeries>& series) {
  std::vector<std::vector<size_t>> groups;
  std::map<std::string, std::size_t> index;
  size_t group = 0;
  for (size_t i = 0; i < series.size(); ++i) {
    if (i == 0 || series[i].patient != series[i - 1].patient) {
      const auto [it, fresh] = index.try_emplace(series[i].patient, groups.size());
      if (fresh) groups.emplace_back();
      group = it->second;
    }
    groups[group].push_back(i);
  }
  return groups;
}

std::vector<std::vector<TacSeries>> series_by_patient(const std::vector<TacSeries>& series) {
  std::vector<std::vector<TacSeries>> groups;
  for (const auto& indices : patient_indices(series)) {
    groups.emplace_back();
    groups.back().reserve(indices.size());
    for (const size_t i : indices) groups.back().push_back(series[i]);
  }
  return groups;
}

// Each patient's run_tac_table without copying its series, with the setup of the run made once.
void for_each_patient_result(const std::vector<TacSeries>& series, const RunOptions& options,
                             const std::function<void(const RunResult&)>& fn) {
  const ReferenceData ref = load_reference_for(options);
  RunOptions o = options;
  read_run_files(o, ref);
  const RunSetup setup = setup_run(o, ref);
  for (auto& indices : patient_indices(series))
    fn(run_series(series, processing_order(series, std::move(indices), o), o, ref, setup, nullptr));
}

RunOptions run_options_from_case(const CaseFile& c, const ReferenceData& ref, int mc_samples,
                                 unsigned long long mc_seed) {
  RunOptions o = run_options_of_case(c);
  o.data_dir = ref.data_dir();
  if (mc_samples >= 0) o.mc_samples = mc_samples;
  if (mc_seed > 0) o.mc_seed = mc_seed;
  return o;
}

namespace {
// The case-file details of a cycle (reference time, protocol, conventions) for its provenance.
CycleProvenance cycle_provenance(const CaseFile& c, const CaseCycle& cy) {
  CycleProvenance p;
  p.reference_time = cy.reference_time;
  p.administered_measured_MBq = cy.administered_measured_MBq;
  p.administered_measured_at_h = cy.administered_measured_at_h;
  p.residual_measured_MBq = cy.residual_measured_MBq;
  p.residual_measured_at_h = cy.residual_measured_at_h;
  p.protocol = cy.protocol;
  if (c.protocols.count(cy.protocol)) {
    const Protocol& pr = c.protocols.at(cy.protocol);
    p.protocol_details =
        ProtocolSummary{pr.cf_cps_per_MBq, pr.cf_u_cps_per_MBq, pr.dead_time, pr.tau_s, pr.recovery.has_value()};
  }
  p.timing = cy.timing;
  p.decay_corrected_to = cy.decay_corrected_to;
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
