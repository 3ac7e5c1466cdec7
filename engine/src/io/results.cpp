#include "lutdose/io/results.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <iomanip>
#include <map>
#include <sstream>

#include "lutdose/error.h"
#include "lutdose/io/population_file.h"
#include "io/json_number.h"

using nlohmann::ordered_json;

namespace lutdose {

using detail::json_number;

namespace {


ordered_json vec(const Eigen::VectorXd& v) {
  ordered_json a = ordered_json::array();
  for (Eigen::Index i = 0; i < v.size(); ++i) a.push_back(json_number(v(i)));
  return a;
}

ordered_json mat(const Eigen::MatrixXd& m) {
  ordered_json a = ordered_json::array();
  for (Eigen::Index i = 0; i < m.rows(); ++i) a.push_back(vec(m.row(i).transpose()));
  return a;
}

//! {"A1_MBq": ..., "lambda1_bio_per_h": ...}
// Degrees of freedom: a number, "infinite" (stated sigmas: the variance was not estimated), or
// null (the uncertainty is unknown).
ordered_json dof_json(double dof) {
  if (std::isinf(dof) && dof > 0) return "infinite";
  return json_number(dof);
}

// A coverage interval as [low, high], or null when the uncertainty is unknown.
ordered_json interval_json(const Interval& i) {
  if (!std::isfinite(i.low) || !std::isfinite(i.high)) return nullptr;
  return ordered_json::array({i.low, i.high});
}

// Per-point budgets use each point's stated sigma, times the Birge ratio where the fit's
// covariance was scaled by it (the sigmas were then too small by that factor).
double effective_sigma_factor(const CandidateFit& c) { return c.covariance_scaled ? c.birge_ratio : 1.0; }

ordered_json parameters_json(const CandidateFit& c) {
  ordered_json p;
  for (size_t i = 0; i < c.parameter_names.size(); ++i)
    p[c.parameter_names[i]] = json_number(c.parameters(static_cast<Eigen::Index>(i)));
  return p;
}

ordered_json candidate_json(const CandidateFit& c) {
  ordered_json j;
  j["function"] = c.function;
  j["n_points"] = c.n_points;
  j["n_parameters"] = c.n_parameters;
  j["fitted"] = c.fitted;
  j["accepted"] = c.accepted;
  j["flags"] = c.flags;
  j["warnings"] = c.warnings;
  if (!c.fitted) return j;
  j["parameters"] = parameters_json(c);
  j["parameter_names"] = c.parameter_names;
  j["parameter_cv"] = vec(c.parameter_cv);
  j["covariance"] = mat(c.covariance);
  j["correlation"] = mat(c.correlation);
  j["weighted_rss"] = json_number(c.weighted_rss);
  j["r_squared"] = json_number(c.r_squared);
  j["aic"] = json_number(c.aic);
  j["aicc"] = json_number(c.aicc);
  j["rank"] = c.rank;
  j["tia_MBq_h"] = json_number(c.tia_MBq_h);
  j["tia_u_MBq_h"] = json_number(c.tia_u_MBq_h);
  j["tia_u_dof"] = dof_json(c.tia_u_dof);
  j["chi_square"] = json_number(c.chi_square);
  j["chi_square_dof"] = c.chi_square_dof;
  j["chi_square_p_value"] = json_number(c.chi_square_p_value);
  j["reduced_chi_square"] = json_number(c.reduced_chi_square);
  j["birge_ratio"] = json_number(c.birge_ratio);
  j["covariance_scaled_by_birge_ratio"] = c.covariance_scaled;
  j["fitted_MBq"] = vec(c.fitted_MBq);
  j["standardized_residuals"] = vec(c.standardized_residuals);
  j["akaike_weight"] = json_number(c.akaike_weight);
  if (c.runs > 0) {
    j["runs"] = c.runs;
    j["runs_p_value"] = json_number(c.runs_p_value);
  }
  if (c.reweighting_iterations > 0) j["reweighting_iterations"] = c.reweighting_iterations;
  j["starts"] = c.starts;
  j["evaluations"] = c.evaluations;
  return j;
}

ordered_json fit_json(const TacFit& f) {
  ordered_json j;
  j["function"] = f.function;
  j["method"] = f.method;
  j["accepted"] = f.accepted;
  j["selection"] = f.selection;
  if (f.selected >= 0) {
    const auto& c = f.candidates[static_cast<size_t>(f.selected)];
    j["parameters"] = parameters_json(c);
    j["flags"] = c.flags;
    j["warnings"] = c.warnings;
  }
  j["notes"] = f.notes;
  j["model_averaged_tia_MBq_h"] = json_number(f.averaged_tia_MBq_h);
  j["model_averaged_tia_u_MBq_h"] = json_number(f.averaged_tia_u_MBq_h);
  j["numerical_tia_MBq_h"] = json_number(f.numerical_tia_MBq_h);
  ordered_json tests = ordered_json::array();
  for (const auto& t : f.f_tests)
    tests.push_back({{"simpler", t.simpler}, {"richer", t.richer}, {"F", json_number(t.f)}, {"df1", t.df1},
                     {"df2", t.df2}, {"p_value", json_number(t.p_value)}});
  j["f_tests"] = tests;
  ordered_json cands = ordered_json::array();
  for (const auto& c : f.candidates) cands.push_back(candidate_json(c));
  j["candidates"] = cands;
  return j;
}

}  // namespace

ordered_json population_source_json(const PopulationSource& s) {
  if (s.path.empty()) {
    ordered_json j = {{"source", "learned from the input (--kinetics population)"}, {"vois_sha256", s.vois_sha256}};
    if (s.learning) j["learning"] = population_learning_json(*s.learning);
    return j;
  }
  return {{"source", s.path}, {"sha256", s.sha256}, {"own_checksum", s.own_checksum_verified ? "verified" : "absent"}};
}

namespace {

ordered_json nuclide_json(const Nuclide& n) {
  return {{"name", n.name},
          {"half_life_h", n.half_life_h},
          {"lambda_per_h", n.lambda_per_h()},
          {"electron_MeV_per_decay", n.electron_MeV_per_decay},
          {"photon_MeV_per_decay", n.photon_MeV_per_decay},
          {"source", n.source}};
}

// The error model of the population's MAP fits: the proportional text of every version before 0.17
// when every VOI kind has it; else per VOI kind (a population file with combined or constant models).
std::string population_error_models_text(const RunOptions& o) {
  const std::string proportional = "the population's: proportional on the log scale, ln A ~ N(ln f, sigma_log^2), "
                                   "sigma_log of the VOI kind";
  const auto models = population_models_of(o);
  if (std::all_of(models.begin(), models.end(),
                  [](const PopulationModel& m) { return m.error_model == PopulationErrorModel::proportional; }))
    return proportional;
  return "the population's, per VOI kind (its error_model): proportional on the log scale, ln A ~ N(ln f, "
         "sigma_log^2); combined on the linear scale, A ~ N(f, sigma0_MBq^2 + (b_proportional f)^2); constant: "
         "combined with b_proportional 0; input: A ~ N(f, activity_u_MBq^2), each point's own";
}

// The fit options that apply under population kinetics: the MAP fit with the population of the
// VOI kind as prior; the options of individual fits (functions, AICc, error model, acceptance,
// trapezoid, model averaging) do not (docs/population.md).
ordered_json population_fit_options_json(const RunOptions& o) {
  ordered_json j = {{"method", "population MAP"},
                    {"population", population_source_json(o.population_source)},
                    {"selection", "the function of the VOI kind's population (lowest BIC when learned)"},
                    {"error_model", population_error_models_text(o)},
                    {"integration", to_string(Integration::analytic)}};
  if (o.compartment_population) {  // the model's VOIs jointly by MAP; the others individually
    j["selection"] = "the compartment model of the population (structural_model), for the VOIs it observes; the "
                     "others: the individual fit with the default options";
    j["structural_model"] = structural_model_json(*o.compartment_population);
  }
  return j;
}

ordered_json individual_fit_options_json(const RunOptions& o) {
  return {{"functions", o.fit.forced_function.empty() ? ordered_json(o.fit.candidates)
                                                      : ordered_json(std::vector<std::string>{o.fit.forced_function})},
          {"selection", o.fit.forced_function.empty() ? "auto (AICc)" : "forced"},
          {"error_model", error_model_label(o.fit)},
          {"error_model_tumours", o.fit.error_model_by_voi_kind ? to_string(ErrorModel::proportional_model)
                                                                : error_model_label(o.fit)},
          {"aicc_parameter_count", to_string(o.fit.aicc_k)},
          {"acceptance", o.fit.reject_on_correlation
                             ? "CV < 50 %, |correlation| < 0.8, no rate at a bound, full rank, TIA > 0"
                             : "CV < 50 %, no rate at a bound, full rank, TIA > 0; |correlation| >= 0.8 is a warning"},
          {"integration", to_string(o.fit.integration)},
          {"trapezoid_head", to_string(o.fit.trapezoid_head)},
          {"trapezoid_body", to_string(o.fit.trapezoid_body)},
          {"trapezoid_tail", to_string(o.fit.trapezoid_tail)},
          {"model_averaging", o.fit.model_averaging},
          {"reduced", to_string(o.reduced)},
          {"compartment_model", o.compartment_model},
          {"combined_sigma0_MBq", o.fit.combined_sigma0_MBq},
          {"combined_b", o.fit.combined_b}};
}

// The previous-cycles prior (methods.md §10, "Earlier cycles as prior"), for options.fit.
ordered_json previous_cycles_json() {
  return {{"method", "previous-cycles MAP"},
          {"prior", "per VOI, the patient's earlier cycles' accepted individual fits (E1p, E1, E2u, E2): theta their "
                    "mean log parameters per administered activity, Omega the predictive variance w^2 (1 + 1/n) + "
                    "mean(V)/n (V their fits' variances, w the inter-cycle SD " + format_number(INTER_CYCLE_SD_LOG) +
                        " on the log scale, or their spread with >= 3 cycles where larger), sigma_log their pooled "
                        "log residual SD"},
          {"first_cycle", "the individual fit (no earlier cycle), with a note"},
          {"fallback", "the individual fit, with a note saying why, where no prior can be formed or the MAP fails "
                       "its criteria"}};
}

ordered_json fit_options_json(const RunOptions& o) {
  if (o.population || o.compartment_population) return population_fit_options_json(o);
  ordered_json j = individual_fit_options_json(o);
  j["kinetics"] = to_string(o.fit.kinetics);
  if (o.fit.kinetics == Kinetics::previous_cycles) j["previous_cycles"] = previous_cycles_json();
  return j;
}

ordered_json dose_options_json(const Provenance& p, const DoseOptions& d) {
  return {{"phantom", d.phantom},
          {"svalue_set", p.svalue_set_description},
          {"svalue_files", p.svalue_files},
          {"schema", "MIRD: every target of the set from every VOI (and the remainder with a whole_body VOI)"},
          {"mass_scaling", to_string(d.mass_scaling)},
          {"cross_scaling", to_string(d.cross_scaling)},
          {"body_mass_g", json_number(d.body_mass_g)},
          {"organ_density_g_per_mL", d.organ_density_g_per_mL},
          {"tumour_method", to_string(d.tumour_method)},
          {"sphere_composition", d.sphere_composition},
          {"dose_uncertainty", "GUM, first order, independent named inputs (fit, cf, rc, volume, svalue); k = 1; "
                               "Welch-Satterthwaite dof; intervals Student-t (normal for infinite dof); "
                               "null when an input's u is unknown"},
          {"tissue_parameters", p.tissue_file}};
}

ordered_json options_json(const Provenance& p, bool include_doses) {
  const auto& o = p.options;
  ordered_json opts;
  opts["input"] = o.tac_path;
  opts["input_kind"] = to_string(o.input_kind);
  opts["residual"] = to_string(o.residual);
  opts["data_dir"] = o.data_dir;
  opts["fit"] = fit_options_json(o);
  if (include_doses && o.dose) opts["dose"] = dose_options_json(p, *o.dose);
  return opts;
}

// The case-file details of a cycle (the cycle's "quantification" block). Plain numbers here and
// in marrow_json are written as they are (as before these blocks became structs), so that
// results.json and results.h5 keep their exact form.
ordered_json cycle_provenance_json(const CycleProvenance& p) {
  ordered_json j;
  j["reference_time"] = p.reference_time;
  j["administered_measured_MBq"] = p.administered_measured_MBq;
  j["administered_measured_at_h"] = p.administered_measured_at_h;
  j["residual_measured_MBq"] = p.residual_measured_MBq;
  j["residual_measured_at_h"] = p.residual_measured_at_h;
  j["protocol"] = p.protocol;
  if (p.protocol_details) {
    const ProtocolSummary& pr = *p.protocol_details;
    j["cf_cps_per_MBq"] = json_number(pr.cf_cps_per_MBq);
    j["cf_u_cps_per_MBq"] = pr.cf_u_cps_per_MBq;
    j["dead_time_model"] = to_string(pr.dead_time_model);
    j["dead_time_tau_s"] = pr.dead_time_tau_s;
    j["recovery_table"] = pr.recovery_table;
  }
  j["timing"] = to_string(p.timing);
  j["decay_corrected_to"] = to_string(p.decay_corrected_to);
  return j;
}

ordered_json marrow_json(const MarrowResult& m) {
  ordered_json j;
  j["method"] = to_string(m.method);
  j["mass_g"] = m.mass_g;
  j["mass_source"] = m.mass_source;
  if (m.method == MarrowMethod::blood) {
    j["blood_fit_function"] = m.blood_fit_function;
    j["blood_fit_accepted"] = m.blood_fit_accepted;
    j["blood_tiac_MBq_h_per_mL"] = m.blood_tiac_MBq_h_per_mL;
    j["blood_tiac_u_MBq_h_per_mL"] = json_number(m.blood_tiac_u_MBq_h_per_mL);
    j["rmblr"] = m.rmblr;
    j["rmblr_source"] = m.rmblr_source;
  } else {
    j["l2l4_voi"] = m.l2l4_voi;
    j["l2l4_fraction"] = m.l2l4_fraction;
  }
  j["tia_MBq_h"] = m.tia_MBq_h;
  j["tia_u_MBq_h"] = json_number(m.tia_u_MBq_h);
  j["tia_u_dof"] = json_number(m.tia_u_dof);
  return j;
}

ordered_json monte_carlo_json(const MonteCarloSummary& mc) {
  ordered_json j;
  j["samples"] = mc.samples;
  j["seed"] = mc.seed;
  j["used"] = mc.used;
  j["failed"] = mc.failed;
  j["method"] = mc.method;
  j["incomplete"] = mc.incomplete();
  j["held_fixed_unknown_u"] = mc.held_fixed_unknown_u;  // not sampled: the MC SD misses them
  return j;
}

ordered_json quantification_json(const std::vector<QuantifiedPoint>& points) {
  ordered_json q = ordered_json::array();
  for (const auto& qp : points)
    q.push_back({{"kind", qp.kind},
                 {"start_h", json_number(qp.start_h)},
                 {"time_h", json_number(qp.time_h)},
                 {"duration_s", json_number(qp.duration_s)},
                 {"value", json_number(qp.value)},
                 {"cf_cps_per_MBq", json_number(qp.cf_cps_per_MBq)},
                 {"dtcf", json_number(qp.dtcf)},
                 {"decay_factor", json_number(qp.decay_factor)},
                 {"rc", json_number(qp.rc)},
                 {"rc_u", json_number(qp.rc_u)},
                 {"activity_MBq", json_number(qp.activity_MBq)},
                 {"u_poisson_rel", json_number(qp.u_poisson_rel)},
                 {"u_cf_rel", json_number(qp.u_cf_rel)},
                 {"u_rc_rel", json_number(qp.u_rc_rel)},
                 {"activity_u_MBq", json_number(qp.activity_u_MBq)},
                 {"flags", qp.flags}});
  return q;
}

// The per-point part of u(TIA) [MBq h] of a VOI times `scale`: each point's own (independent)
// uncertainty through the chosen fit; empty when the VOI has no per-point u or derivatives.
Eigen::VectorXd tia_u_by_point(const VoiResult& v, double scale) {
  if (v.fit.selected < 0 || v.tac.activity_u_MBq.size() == 0) return {};
  const auto& chosen = v.fit.candidates[static_cast<size_t>(v.fit.selected)];
  if (chosen.tia_dy.size() != v.tac.activity_u_MBq.size()) return {};
  return chosen.tia_dy.cwiseProduct(v.tac.activity_u_MBq).cwiseAbs() * (scale * effective_sigma_factor(chosen));
}

ordered_json voi_json(const CycleResult& c, const VoiResult& v) {
  ordered_json vj;
  vj["name"] = v.tac.voi;
  const TargetDose* vd = c.dose_of(v.tac.voi);
  vj["mass_g"] = json_number(vd ? vd->mass_g : v.mean_mass_g);
  if (vd) vj["mass_source"] = vd->mass_source;
  vj["volume_mL"] = json_number(v.mean_volume_mL);
  vj["time_h"] = vec(v.tac.time_h);
  vj["activity_MBq"] = vec(v.tac.activity_MBq);
  if (v.tac.activity_u_MBq.size() > 0) vj["activity_u_MBq"] = vec(v.tac.activity_u_MBq);
  if (!v.residual_subtracted_MBq.empty()) {
    ordered_json residual = ordered_json::array();
    for (double x : v.residual_subtracted_MBq) residual.push_back(json_number(x));
    vj["residual_subtracted_MBq"] = residual;
  }
  if (!v.quantification.empty()) vj["quantification"] = quantification_json(v.quantification);
  vj["fit"] = fit_json(v.fit);
  vj["tia_MBq_h"] = json_number(v.fit.tia_MBq_h);
  vj["tia_u_MBq_h"] = json_number(v.fit.tia_u_MBq_h);
  vj["tia_u_dof"] = dof_json(v.fit.tia_u_dof);
  vj["tia_ci68_MBq_h"] = interval_json(v.fit.tia_ci68_MBq_h);
  vj["tia_ci95_MBq_h"] = interval_json(v.fit.tia_ci95_MBq_h);
  vj["tia_u_unknown_reason"] =
      v.fit.tia_u_unknown_reason.empty() ? ordered_json(nullptr) : ordered_json(v.fit.tia_u_unknown_reason);
  vj["tia_h"] = json_number(v.tia_h);
  // Per-point budget: the part of u(TIA) due to each point's own (independent) uncertainty.
  const Eigen::VectorXd by_point = tia_u_by_point(v, 1.0);
  if (by_point.size() > 0) vj["tia_u_by_point_MBq_h"] = vec(by_point);
  return vj;
}

// Uncertainty, Monte Carlo and BED members of a dose.
void dose_uncertainty_json(const TargetDose& d, ordered_json& dj) {
  dj["dose_u_Gy"] = json_number(d.dose_u_Gy);
  dj["dose_u_dof"] = dof_json(d.dose_u_dof);
  dj["dose_ci68_Gy"] = interval_json(d.dose_ci68_Gy);
  dj["dose_ci95_Gy"] = interval_json(d.dose_ci95_Gy);
  dj["uncertainty_incomplete"] = !d.u_missing.empty();
  dj["uncertainty_missing_inputs"] = d.u_missing;
  dj["dose_Gy_per_GBq"] = json_number(d.dose_Gy_per_GBq);
  if (!std::isnan(d.dose_u_mc_Gy)) {
    dj["dose_u_mc_Gy"] = json_number(d.dose_u_mc_Gy);
    dj["dose_mc_mean_Gy"] = json_number(d.dose_mc_mean_Gy);
  }
  if (!std::isnan(d.bed_Gy)) {
    dj["bed_Gy"] = json_number(d.bed_Gy);
    dj["eqd2_Gy"] = json_number(d.eqd2_Gy);
    dj["bed_g"] = json_number(d.bed_g);
    dj["alpha_beta_Gy"] = json_number(d.alpha_beta_Gy);
    dj["repair_half_time_h"] = json_number(d.repair_half_time_h);
    dj["bed_method"] = d.bed_method;
  }
}

ordered_json dose_json(const CycleResult& c, const TargetDose& d) {
  ordered_json dj;
  dj["target"] = d.target;
  dj["dose_Gy"] = json_number(d.dose_Gy);
  dose_uncertainty_json(d, dj);
  dj["kind"] = d.kind;
  dj["self_Gy"] = json_number(d.self_Gy);
  dj["cross_Gy"] = json_number(d.cross_Gy);
  dj["method"] = d.method;
  dj["target_region"] = d.region;
  dj["mass_g"] = json_number(d.mass_g);
  dj["mass_source"] = d.mass_source;
  dj["reference_mass_g"] = json_number(d.reference_mass_g);
  dj["s_reference_mGy_per_MBq_s"] = json_number(d.s_reference_mGy_per_MBq_s);
  dj["s_mGy_per_MBq_s"] = json_number(d.s_mGy_per_MBq_s);
  ordered_json contributions;
  for (const auto& [src, gy] : d.contributions_Gy) contributions[src] = json_number(gy);
  dj["contributions_Gy"] = contributions;
  ordered_json budget = ordered_json::array();
  for (const auto& b : uncertainty_budget(d, c.dose_input_names, c.dose_input_u_rel, c.dose_input_dof))
    budget.push_back({{"input", b.input}, {"u_Gy", json_number(b.u_Gy)}, {"dof", dof_json(b.dof)}});
  dj["uncertainty_budget"] = budget;
  // Per-point part for a VOI target: each point's own uncertainty through its TIA.
  for (const auto& v : c.vois) {
    if (v.tac.voi != d.target || !(v.fit.tia_MBq_h > 0)) continue;
    const Eigen::VectorXd by_point = tia_u_by_point(v, d.self_Gy / v.fit.tia_MBq_h);
    if (by_point.size() > 0) dj["dose_u_by_point_Gy"] = vec(by_point);
  }
  return dj;
}

// The dose members of a cycle: doses, uncertainty inputs, remainder, notes, marrow, Monte Carlo.
void cycle_doses_json(const CycleResult& c, ordered_json& cj) {
  ordered_json doses = ordered_json::array();
  for (const auto& d : c.doses) doses.push_back(dose_json(c, d));
  cj["doses"] = doses;
  ordered_json inputs;
  for (size_t k = 0; k < c.dose_input_names.size(); ++k) inputs[c.dose_input_names[k]] = json_number(c.dose_input_u_rel[k]);
  cj["uncertainty_inputs_rel"] = inputs;
  ordered_json input_dof;
  for (size_t k = 0; k < c.dose_input_names.size() && k < c.dose_input_dof.size(); ++k)
    input_dof[c.dose_input_names[k]] = dof_json(c.dose_input_dof[k]);
  cj["uncertainty_inputs_dof"] = input_dof;
  cj["remainder_tia_MBq_h"] = json_number(c.remainder_tia_MBq_h);
  cj["dose_notes"] = c.dose_notes;
  if (c.marrow) cj["marrow"] = marrow_json(*c.marrow);
  if (c.monte_carlo) cj["monte_carlo"] = monte_carlo_json(*c.monte_carlo);
}

ordered_json cycle_json(const CycleResult& c, bool include_doses) {
  ordered_json cj;
  cj["cycle"] = c.cycle;
  cj["administered_MBq"] = json_number(c.administered_MBq);
  if (std::isfinite(c.horizon_h)) cj["integrated_to_h"] = json_number(c.horizon_h);
  if (c.provenance) cj["quantification"] = cycle_provenance_json(*c.provenance);
  ordered_json vois = ordered_json::array();
  for (const auto& v : c.vois) vois.push_back(voi_json(c, v));
  cj["vois"] = vois;
  if (include_doses) cycle_doses_json(c, cj);
  return cj;
}

ordered_json cumulative_json(const std::vector<CumulativeDose>& sums) {
  ordered_json doses = ordered_json::array();
  for (const auto& x : sums)
    doses.push_back({{"target", x.target}, {"dose_Gy", json_number(x.dose_Gy)}, {"dose_u_Gy", json_number(x.dose_u_Gy)},
                     {"dose_u_dof", dof_json(x.dose_u_dof)}, {"dose_ci95_Gy", interval_json(x.dose_ci95_Gy)},
                     {"uncertainty_incomplete", !x.u_missing.empty()}, {"uncertainty_missing_inputs", x.u_missing},
                     {"bed_Gy", json_number(x.bed_Gy)}, {"eqd2_Gy", json_number(x.eqd2_Gy)},
                     {"repopulation_Gy", json_number(x.repopulation_Gy)}, {"cycles", x.cycles}});
  return {{"doses", doses}};
}

}  // namespace

ordered_json provenance_json(const Provenance& p, bool include_doses) {
  ordered_json j;
  j["lutdose_version"] = p.lutdose_version;
  j["nuclide"] = nuclide_json(p.nuclide);
  j["options"] = options_json(p, include_doses);
  return j;
}

ordered_json to_json(const RunResult& r, bool include_doses) {
  ordered_json j{{"format", "lutdose-results"}, {"format_version", RESULTS_FORMAT_VERSION}};
  ordered_json provenance = provenance_json(r.provenance, include_doses);
  for (auto& [key, value] : provenance.items()) j[key] = std::move(value);
  // Group cycles by patient, in order of appearance.
  ordered_json patients = ordered_json::array();
  std::vector<std::string> ids;
  for (const auto& c : r.cycles) {
    size_t p = 0;
    while (p < ids.size() && ids[p] != c.patient) ++p;
    if (p == ids.size()) {
      ids.push_back(c.patient);
      patients.push_back({{"id", c.patient}, {"cycles", ordered_json::array()}});
    }
    patients[p]["cycles"].push_back(cycle_json(c, include_doses));
  }
  if (include_doses)
    for (size_t p = 0; p < ids.size(); ++p) {
      const auto it = r.cumulative.find(ids[p]);
      if (it != r.cumulative.end()) patients[p]["cumulative"] = cumulative_json(it->second);
    }
  j["patients"] = patients;
  if (const auto& o = r.provenance.options; o.population || o.compartment_population) {  // docs/population.md
    j["population"] = population_source_json(o.population_source);
    j["population"]["vois"] = population_vois_json(population_models_of(o));
    if (o.compartment_population) j["population"]["structural_model"] = structural_model_json(*o.compartment_population);
  }
  return j;
}

namespace {
std::string csv_cell(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}
std::string csv_num(double x) {
  if (!std::isfinite(x)) return "";
  std::ostringstream s;
  s << std::setprecision(10) << x;
  return s.str();
}
// Degrees of freedom in CSV: a number, "inf" (stated sigmas), or empty (unknown).
std::string csv_dof(double dof) { return std::isinf(dof) && dof > 0 ? "inf" : csv_num(dof); }
// dose_u_dof, the 95 % interval and the inputs without a known u (joined by ';', empty if none).
std::string csv_dose_uncertainty(const TargetDose& d) {
  std::string missing;
  for (const auto& m : d.u_missing) missing += (missing.empty() ? "" : ";") + m;
  return csv_dof(d.dose_u_dof) + ',' + csv_num(d.dose_ci95_Gy.low) + ',' + csv_num(d.dose_ci95_Gy.high) + ',' +
         csv_cell(missing);
}
}  // namespace

std::string to_csv(const RunResult& r) {
  std::ostringstream s;
  s << "patient,cycle,voi,function,accepted,tia_MBq_h,tia_u_MBq_h,tia_h,mass_g,mass_source,"
       "s_mGy_per_MBq_s,dose_Gy,dose_u_Gy,dose_Gy_per_GBq,tia_u_dof,tia_ci95_low_MBq_h,tia_ci95_high_MBq_h,"
       "dose_u_dof,dose_ci95_low_Gy,dose_ci95_high_Gy,uncertainty_missing_inputs\n";
  for (const auto& c : r.cycles)
    for (size_t i = 0; i < c.vois.size(); ++i) {
      const auto& v = c.vois[i];
      const TargetDose* d = c.dose_of(v.tac.voi);
      s << csv_cell(c.patient) << ',' << c.cycle << ',' << csv_cell(v.tac.voi) << ','
        << v.fit.function << ',' << (v.fit.accepted ? "yes" : "no") << ','
        << csv_num(v.fit.tia_MBq_h) << ',' << csv_num(v.fit.tia_u_MBq_h) << ','
        << csv_num(v.tia_h) << ',' << csv_num(d ? d->mass_g : v.mean_mass_g) << ','
        << csv_cell(d ? d->mass_source : "") << ',' << csv_num(d ? d->s_mGy_per_MBq_s : NAN)
        << ',' << csv_num(d ? d->dose_Gy : NAN) << ',' << csv_num(d ? d->dose_u_Gy : NAN) << ','
        << csv_num(d ? d->dose_Gy_per_GBq : NAN) << ',' << csv_dof(v.fit.tia_u_dof) << ','
        << csv_num(v.fit.tia_ci95_MBq_h.low) << ',' << csv_num(v.fit.tia_ci95_MBq_h.high) << ','
        << (d ? csv_dose_uncertainty(*d) : ",,,") << '\n';
    }
  // Then the targets that are not VOIs (red marrow made by the dose step, the set's regions):
  // doses only.
  for (const auto& c : r.cycles)
    for (const auto& d : c.doses) {
      if (std::any_of(c.vois.begin(), c.vois.end(), [&](const VoiResult& v) { return v.tac.voi == d.target; }))
        continue;
      s << csv_cell(c.patient) << ',' << c.cycle << ',' << csv_cell(d.target) << ",,,,,,"
        << csv_num(d.mass_g) << ',' << csv_cell(d.mass_source) << ',' << csv_num(d.s_mGy_per_MBq_s) << ','
        << csv_num(d.dose_Gy) << ',' << csv_num(d.dose_u_Gy) << ',' << csv_num(d.dose_Gy_per_GBq) << ",,,,"
        << csv_dose_uncertainty(d) << '\n';
    }
  return s.str();
}

namespace {

// A number with `prec` decimals, "-" when not finite.
std::string fixed(double x, int prec) {
  if (!std::isfinite(x)) return "-";
  std::ostringstream s;
  s << std::fixed << std::setprecision(prec) << x;
  return s.str();
}

// An uncertainty: "n/a" when unknown (never 0); a known nonzero u below 10^(1-prec), which fixed
// decimals would show as 0 or with one digit, with 3 significant digits.
std::string fixed_u(double x, int prec) {
  if (std::isnan(x)) return "n/a";
  if (x == 0 || !(std::fabs(x) < std::pow(10.0, 1 - prec))) return fixed(x, prec);
  std::ostringstream s;
  s << std::setprecision(3) << x;
  return s.str();
}

std::string table_dof(double d) {
  if (std::isnan(d)) return "n/a";
  if (std::isinf(d)) return "inf";
  // Welch-Satterthwaite can give 1e+59 when one input dominates; above 1e4 the Student-t and
  // normal 97.5 % quantiles agree to 1e-4, so the column (6 wide) says ">9999" (JSON/CSV keep the value)
  if (d >= 1e4) return ">9999";
  std::ostringstream s;
  s << std::fixed << std::setprecision(d == std::floor(d) || d >= 10 ? 0 : 1) << d;
  return s.str();
}

// dof and 95 % interval columns of a dose (blank without a dose)
std::string ci_columns(const TargetDose* d) {
  std::ostringstream s;
  s << " " << std::setw(6) << (d ? table_dof(d->dose_u_dof) : "") << "  ";
  if (d && std::isfinite(d->dose_ci95_Gy.low))
    s << "[" << fixed(d->dose_ci95_Gy.low, 3) << ", " << fixed(d->dose_ci95_Gy.high, 3) << "]";
  else if (d)
    s << "n/a";
  return s.str();
}

bool is_voi(const CycleResult& c, const std::string& target) {
  return std::any_of(c.vois.begin(), c.vois.end(), [&](const VoiResult& v) { return v.tac.voi == target; });
}

void print_cycle_header(const CycleResult& c, std::ostream& out) {
  out << "\n";
  if (!c.patient.empty()) out << "patient " << c.patient << ", ";
  out << "cycle " << c.cycle << ", administered " << fixed(c.administered_MBq, 1) << " MBq\n";
  out << std::left << std::setw(22) << "VOI" << std::setw(10) << "fit" << std::setw(5) << "ok"
      << std::right << std::setw(12) << "TIA MBq h" << std::setw(10) << "u(TIA) %"
      << std::setw(9) << "TIA h" << std::setw(10) << "mass g" << std::setw(10) << "dose Gy"
      << std::setw(9) << "u(D) Gy" << std::setw(9) << "Gy/GBq" << std::setw(7) << "dof"
      << "  95 % interval Gy\n";
}

// One row per VOI, then the organ sources made by the dose step (red marrow from blood or L2-L4),
// then cross-dose to the set's regions most asked for in PRRT: red marrow and the total body.
void print_cycle_rows(const CycleResult& c, std::ostream& out) {
  for (const auto& v : c.vois) {
    const TargetDose* d = c.dose_of(v.tac.voi);
    // a fit name of 10 or more characters ("compartment:NAME") keeps a space before the "ok" column
    out << std::left << std::setw(22) << v.tac.voi << std::setw(10) << (v.fit.function.size() < 10 ? v.fit.function : v.fit.function + " ")
        << std::setw(5) << (v.fit.accepted ? "yes" : "NO") << std::right << std::setw(12)
        << fixed(v.fit.tia_MBq_h, 0) << std::setw(10)
        << fixed_u(100.0 * v.fit.tia_u_MBq_h / v.fit.tia_MBq_h, 1) << std::setw(9) << fixed(v.tia_h, 3)
        << std::setw(10) << fixed(d ? d->mass_g : v.mean_mass_g, 1) << std::setw(10)
        << fixed(d ? d->dose_Gy : NAN, 3) << std::setw(9) << (d ? fixed_u(d->dose_u_Gy, 3) : "-")
        << std::setw(9) << fixed(d ? d->dose_Gy_per_GBq : NAN, 3) << ci_columns(d) << "\n";
  }
  for (const auto& d : c.doses) {
    if (d.kind != "organ" || is_voi(c, d.target)) continue;
    const std::string method = c.marrow ? to_string(c.marrow->method) : std::string("?");
    out << std::left << std::setw(22) << d.target << std::setw(15) << "(" + method + ")"
        << std::right << std::setw(12) << fixed(c.marrow ? c.marrow->tia_MBq_h : NAN, 0) << std::setw(19) << ""
        << std::setw(10) << fixed(d.mass_g, 1) << std::setw(10) << fixed(d.dose_Gy, 3) << std::setw(9)
        << fixed_u(d.dose_u_Gy, 3) << std::setw(9) << fixed(d.dose_Gy_per_GBq, 3) << ci_columns(&d) << "\n";
  }
  for (const auto& d : c.doses) {
    if (d.kind != "region") continue;
    std::string lower = d.target;
    for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (lower.find("marrow") == std::string::npos && lower.find("total body") == std::string::npos)
      continue;
    out << std::left << std::setw(22) << d.target.substr(0, 21) << std::setw(15) << "(region)"
        << std::right << std::setw(31) << "" << std::setw(10) << fixed(d.mass_g, 0) << std::setw(10)
        << fixed(d.dose_Gy, 3) << std::setw(9) << fixed_u(d.dose_u_Gy, 3) << std::setw(9)
        << fixed(d.dose_Gy_per_GBq, 3) << ci_columns(&d) << "\n";
  }
}

// The remainder's TIA, the fit and dose notes, unknown uncertainties, an incomplete Monte Carlo.
void print_cycle_notes(const CycleResult& c, std::ostream& out) {
  if (!std::isnan(c.remainder_tia_MBq_h))
    out << "  remainder of body: TIA " << fixed(c.remainder_tia_MBq_h, 0) << " MBq h\n";
  for (const auto& v : c.vois)
    for (const auto& n : v.fit.notes) out << "  note (" << v.tac.voi << "): " << n << "\n";
  for (const auto& n : c.dose_notes) out << "  note: " << n << "\n";
  for (const auto& v : c.vois)
    if (!v.fit.tia_u_unknown_reason.empty())
      out << "  note (" << v.tac.voi << "): u(TIA) unknown: " << v.fit.tia_u_unknown_reason << "\n";
  std::map<std::string, std::vector<std::string>> unknown;  // missing inputs -> targets
  for (const auto& d : c.doses)
    if (!d.u_missing.empty()) {
      std::string m;
      for (const auto& x : d.u_missing) m += (m.empty() ? "" : ", ") + x;
      unknown[m].push_back(d.target);
    }
  for (const auto& [m, targets] : unknown) {
    std::string list;
    for (size_t k = 0; k < targets.size() && k < 3; ++k) list += (k ? ", " : "") + targets[k];
    if (targets.size() > 3) list += " and " + std::to_string(targets.size() - 3) + " other targets";
    out << "  note: u(D) unknown (budget incomplete) for " << list << ": no uncertainty for " << m << "\n";
  }
  if (c.monte_carlo && c.monte_carlo->incomplete())
    out << "  note: Monte Carlo incomplete: TIAs without a known u held fixed\n";
}

// The rows of one limited target, cycle by cycle, with its cumulative dose and BED against the
// strictest dose and BED limits.
void print_history_target(const RunResult& r, const std::string& patient, const std::string& name, std::ostream& out) {
  double lim_dose = NAN, lim_bed = NAN;
  for (const auto& l : r.limits)
    if (target_matches(l.target_pattern, name)) {
      double& lim = l.quantity == "bed_Gy" ? lim_bed : lim_dose;
      lim = std::isnan(lim) ? l.value : std::min(lim, l.value);
    }
  double cum = 0, cum_bed = 0;
  bool bed_known = true;
  for (const auto& c : r.cycles) {
    if (c.patient != patient) continue;
    const TargetDose* d = c.dose_of(name);
    if (!d) continue;
    cum += d->dose_Gy;
    bed_known = bed_known && !std::isnan(d->bed_Gy);
    if (bed_known) cum_bed += d->bed_Gy;
    out << std::left << std::setw(14) << name.substr(0, 13) << std::right << std::setw(6) << c.cycle
        << std::setw(10) << fixed(c.administered_MBq, 0) << std::setw(9) << fixed(d->dose_Gy_per_GBq, 3)
        << std::setw(9) << fixed(d->dose_Gy, 2) << std::setw(10) << fixed(cum, 2) << std::setw(12)
        << fixed(bed_known ? cum_bed : NAN, 2) << std::setw(12) << fixed(100 * cum / lim_dose, 0)
        << std::setw(11) << fixed(bed_known ? 100 * cum_bed / lim_bed : NAN, 0) << "\n";
  }
}

// History view (several cycles): the organs at risk, cycle by cycle, against their limits.
void print_history(const RunResult& r, std::ostream& out) {
  for (const auto& [patient, doses] : r.cumulative) {
    std::vector<std::string> limited;
    for (const auto& x : doses)
      for (const auto& l : r.limits)
        if (target_matches(l.target_pattern, x.target) &&
            std::find(limited.begin(), limited.end(), x.target) == limited.end())
          limited.push_back(x.target);
    if (limited.empty()) continue;
    out << "\n" << (patient.empty() ? std::string("") : "patient " + patient + ", ")
        << "history of the organs at risk (limits: data/radiobiology/limits.csv)\n"
        << std::left << std::setw(14) << "target" << std::right << std::setw(6) << "cycle" << std::setw(10)
        << "MBq" << std::setw(9) << "Gy/GBq" << std::setw(9) << "dose Gy" << std::setw(10) << "cum. Gy"
        << std::setw(12) << "cum. BED Gy" << std::setw(12) << "% dose lim" << std::setw(11) << "% BED lim" << "\n";
    for (const auto& name : limited) print_history_target(r, patient, name, out);
  }
}

// The doses summed over the cycles: VOIs, red marrow and the total body.
void print_sums(const RunResult& r, std::ostream& out) {
  for (const auto& [patient, doses] : r.cumulative) {
    out << "\n" << (patient.empty() ? std::string("") : "patient " + patient + ", ")
        << "sum over cycles\n"
        << std::left << std::setw(34) << "target" << std::right << std::setw(8) << "cycles"
        << std::setw(10) << "dose Gy" << std::setw(9) << "u(D) Gy" << std::setw(10) << "BED Gy"
        << std::setw(10) << "EQD2 Gy" << "\n";
    for (const auto& x : doses) {
      const bool voi = std::any_of(r.cycles.begin(), r.cycles.end(),
                                   [&](const CycleResult& c) { return is_voi(c, x.target); });
      if (!voi && x.target != "red_marrow" && x.target != "Total Body") continue;
      out << std::left << std::setw(34) << x.target << std::right << std::setw(8) << x.cycles
          << std::setw(10) << fixed(x.dose_Gy, 3) << std::setw(9) << fixed(x.dose_u_Gy, 3) << std::setw(10)
          << fixed(x.bed_Gy, 3) << std::setw(10) << fixed(x.eqd2_Gy, 3) << "\n";
    }
  }
}

}  // namespace

void print_table(const RunResult& r, std::ostream& out) {
  const RunOptions& o = r.provenance.options;
  out << "lutdose " << r.provenance.lutdose_version << " | " << r.provenance.nuclide.name << ", T1/2 = "
      << fixed(r.provenance.nuclide.half_life_h, 2) << " h (" << "ICRP-107" << ")";
  if (o.dose) out << " | phantom " << o.dose->phantom;
  if (o.population || o.compartment_population)
    out << " | population MAP (" << population_source_json(o.population_source)["source"].get<std::string>() << ")\n";
  else
    out << " | error model " << error_model_label(o.fit)
        << (o.fit.error_model_by_voi_kind ? " (tumours proportional-model)" : "")
        << (o.fit.kinetics == Kinetics::previous_cycles ? " | kinetics previous-cycles (later cycles: MAP, earlier cycles as prior)" : "")
        << "\n";
  for (const auto& c : r.cycles) {
    print_cycle_header(c, out);
    print_cycle_rows(c, out);
    print_cycle_notes(c, out);
  }
  print_history(r, out);
  print_sums(r, out);
}

}  // namespace lutdose
