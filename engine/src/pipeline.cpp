#include "lutdose/pipeline.h"

#include <cmath>
#include <map>

#include "lutdose/error.h"
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
  in.tia_u_MBq_h = std::isfinite(v.fit.tia_u_MBq_h) ? v.fit.tia_u_MBq_h : 0.0;
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

}  // namespace

RunResult run_tac_table(const std::vector<TacSeries>& series, const RunOptions& options,
                        const std::vector<std::vector<QuantifiedPoint>>* points) {
  RunResult result;
  result.version = LUTDOSE_VERSION;
  result.options = options;
  result.nuclide = load_nuclide(options.data_dir, options.nuclide, options.half_life_override_h);
  if (!std::isnan(options.administered_MBq) &&
      !(options.administered_MBq > 0 && std::isfinite(options.administered_MBq)))
    throw_input_error("--activity-MBq", "the administered activity",
                      format_number(options.administered_MBq), "an activity > 0 MBq");
  std::optional<DoseCalculator> dose;
  if (options.dose) {
    dose.emplace(options.data_dir, result.nuclide, *options.dose);
    result.svalue_files = dose->svalue_set().files;
    result.svalue_files.push_back("spheres/pytheranostics_spheres.json");
    result.svalue_set_description = dose->svalue_set().description;
  }
  const double lambda_p = result.nuclide.lambda_per_h();

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
    v.fit = fit_tac(s.time_h, s.activity_MBq, s.activity_u_MBq, lambda_p, options.fit, where);
    v.mean_mass_g = mean_of_given(s.mass_g);
    v.mean_volume_mL = mean_of_given(s.volume_mL);
    if (cycle.administered_MBq > 0) v.tia_h = v.fit.tia_MBq_h / cycle.administered_MBq;
    cycle.vois.push_back(std::move(v));
  }
  if (dose) {
    for (auto& cycle : result.cycles) {
      std::vector<DoseSourceInput> inputs;
      for (const auto& v : cycle.vois) inputs.push_back(dose_input(v));
      std::string where = options.tac_path + ": ";
      if (!cycle.patient.empty()) where += "patient " + cycle.patient + ", ";
      where += "cycle " + std::to_string(cycle.cycle);
      CycleDoses d = dose->compute(inputs, cycle.administered_MBq, where);
      cycle.doses = std::move(d.targets);
      cycle.dose_input_u_rel = std::move(d.input_u_rel);
      cycle.remainder_tia_MBq_h = d.remainder_tia_MBq_h;
      cycle.dose_notes = std::move(d.notes);
    }
  }
  return result;
}

}  // namespace lutdose

namespace lutdose {

RunResult run_case(const CaseFile& c, const std::string& data_dir) {
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
  RunResult r = run_tac_table(q.series, o, &q.points);
  for (auto& cycle : r.cycles) {
    for (const auto& cy : c.cycles) {
      if (cy.cycle != cycle.cycle) continue;
      nlohmann::ordered_json p;
      p["reference_time"] = cy.reference_time;
      p["administered_measured_MBq"] = cy.administered_measured_MBq;
      p["administered_measured_at_h"] = cy.administered_measured_at_h;
      p["residual_measured_MBq"] = cy.residual_measured_MBq;
      p["residual_measured_at_h"] = cy.residual_measured_at_h;
      p["protocol"] = cy.protocol;
      if (c.protocols.count(cy.protocol)) {
        const Protocol& pr = c.protocols.at(cy.protocol);
        p["cf_cps_per_MBq"] = std::isnan(pr.cf_cps_per_MBq) ? nlohmann::ordered_json(nullptr)
                                                             : nlohmann::ordered_json(pr.cf_cps_per_MBq);
        p["cf_u_cps_per_MBq"] = pr.cf_u_cps_per_MBq;
        p["dead_time_model"] = to_string(pr.dead_time);
        p["dead_time_tau_s"] = pr.tau_s;
        p["recovery_table"] = pr.recovery.has_value();
      }
      p["timing"] = to_string(cy.timing);
      p["decay_corrected_to"] = to_string(cy.decay_corrected_to);
      cycle.provenance = p;
    }
  }
  return r;
}

}  // namespace lutdose
