// Bindings of the dose step alone and of the BED of a dose-rate curve (docs/python.md): the
// engine's DoseCalculator and bed_closed_form, with the CLI's option mapping.
#include <pybind11/stl.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "bindings.h"
#include "convert.h"
#include "lutdose/dosimetry/dose.h"
#include "lutdose/error.h"
#include "lutdose/io/input_file.h"
#include "lutdose/radiobiology/radiobiology.h"
#include "plan_args.h"

namespace lutdose_py {

namespace {

// The dose options of `lutdose run --tac` (DoseArgs through make_dose_options) and the S-value set.
lutdose::DoseCalculator calculator(const py::dict& options, const lutdose::ReferenceData& ref) {
  lutdose::RunOptions run;  // only for the shared option mapping (OptionFields)
  std::vector<std::string> problems;
  auto d = lutdose_cli::make_dose_options(dose_args_from(options), run, problems);
  lutdose_cli::throw_problems(problems);
  d.phantom = options.contains("phantom") ? cast_argument<std::string>(options["phantom"], "dose", "phantom") : "";
  if (d.phantom.empty() && !options.contains("svalues"))  // svalues: a user table in place of a phantom's
    lutdose::throw_input_error("dose", "phantom", "missing",
                               "a phantom: icrp110-am, icrp110-af, icrp89-male, icrp89-female (or svalues)");
  if (options.contains("body_mass_kg"))
    d.body_mass_g = cast_argument<double>(options["body_mass_kg"], "dose", "body_mass_kg") * 1000.0;
  std::shared_ptr<const lutdose::IndexedSValueSet> set;
  if (options.contains("svalues")) {
    d.svalue_table = cast_argument<std::string>(options["svalues"], "dose", "svalues");
    if (!d.phantom.empty())  // the table's S-values would replace the phantom's unseen (as run --tac refuses)
      lutdose::throw_input_error("dose", "phantom", d.phantom,
                                 "no phantom beside svalues=" + d.svalue_table +
                                     " (the table's S-values replace a phantom's): give one of the two");
    d.phantom = "user";
    set = lutdose::load_indexed_user_svalue_table(d.svalue_table);
  } else {
    set = ref.phantom(d.phantom);
  }
  return lutdose::DoseCalculator(set, ref.sphere_table(d.sphere_composition), ref.nuclide("Lu-177"), d);
}

py::dict dose_columns(const lutdose::CycleDoses& c) {
  py::list target, kind, region, method;
  std::vector<double> mass, self, cross, dose, u, dof, lo, hi, per_gbq;
  for (const auto& t : c.targets) {
    target.append(t.target); kind.append(t.kind); region.append(t.region); method.append(t.method);
    mass.push_back(t.mass_g); self.push_back(t.self_Gy); cross.push_back(t.cross_Gy); dose.push_back(t.dose_Gy);
    u.push_back(t.dose_u_Gy); dof.push_back(t.dose_u_dof); lo.push_back(t.dose_ci95_Gy.low);
    hi.push_back(t.dose_ci95_Gy.high); per_gbq.push_back(t.dose_Gy_per_GBq);
  }
  py::dict d;
  d["target"] = target; d["kind"] = kind; d["region"] = region; d["method"] = method;
  d["mass_g"] = numpy_of(mass); d["self_Gy"] = numpy_of(self); d["cross_Gy"] = numpy_of(cross);
  d["dose_Gy"] = numpy_of(dose); d["dose_u_Gy"] = numpy_of(u); d["dose_u_dof"] = numpy_of(dof);
  d["dose_ci95_low_Gy"] = numpy_of(lo); d["dose_ci95_high_Gy"] = numpy_of(hi);
  d["dose_Gy_per_GBq"] = numpy_of(per_gbq);
  return d;
}

// The budget terms of every target that is a source VOI (as results.json gives them).
py::dict budget_columns(const lutdose::CycleDoses& c, const std::vector<lutdose::DoseSourceInput>& vois) {
  py::list target, input;
  std::vector<double> term, dof;
  for (const auto& t : c.targets) {
    if (std::none_of(vois.begin(), vois.end(), [&t](const auto& v) { return v.voi == t.target; })) continue;
    for (const auto& b : lutdose::uncertainty_budget(t, c.input_names, c.input_u_rel, c.input_dof)) {
      target.append(t.target); input.append(b.input);
      term.push_back(b.u_Gy); dof.push_back(b.dof);
    }
  }
  py::dict d;
  d["target"] = target; d["input"] = input; d["term_Gy"] = numpy_of(term); d["dof"] = numpy_of(dof);
  return d;
}

// Doses [Gy] to every target from VOI TIAs [MBq h] (u [MBq h], NaN: unknown) and masses [g] (NaN:
// the phantom's), for an administered activity [MBq] (NaN: no Gy/GBq).
py::tuple dose(const std::vector<std::string>& voi, const std::vector<double>& tia_MBq_h,
               const std::vector<double>& tia_u_MBq_h, const std::vector<double>& mass_g, double administered_MBq,
               const py::dict& options) {
  if (tia_MBq_h.size() != voi.size() || tia_u_MBq_h.size() != voi.size() || mass_g.size() != voi.size())
    throw lutdose::InputError("dose: tia_MBq_h, tia_u_MBq_h and mass_g need one value per VOI");
  std::string given_dir;
  take(options, "data_dir", given_dir, "dose");
  const auto& ref = reference_of(data_dir_of(given_dir));
  const auto calc = calculator(options, ref);
  if (voi.empty()) throw lutdose::InputError("dose: tia_MBq_h is empty; expected at least one VOI and its TIA [MBq h]");
  // NaN: no Gy/GBq; else the engine's plausibility range of an activity, above 0.
  if (!std::isnan(administered_MBq) && !(administered_MBq > 0 && lutdose::ACTIVITY_RANGE_MBQ.contains(administered_MBq)))
    lutdose::throw_input_error("dose", "administered_MBq", lutdose::format_number(administered_MBq),
                               "an activity > 0 and " + lutdose::ACTIVITY_RANGE_MBQ.text() + ", or NaN (no Gy/GBq)");
  std::vector<lutdose::DoseSourceInput> vois(voi.size());
  for (std::size_t i = 0; i < voi.size(); ++i) {
    if (!(tia_MBq_h[i] >= 0) || !std::isfinite(tia_MBq_h[i]))
      lutdose::throw_input_error("dose", "tia_MBq_h of " + voi[i], lutdose::format_number(tia_MBq_h[i]),
                                 "a finite number >= 0 [MBq h]");
    if (!std::isnan(tia_u_MBq_h[i]) && !(tia_u_MBq_h[i] >= 0 && std::isfinite(tia_u_MBq_h[i])))
      lutdose::throw_input_error("dose", "tia_u_MBq_h of " + voi[i], lutdose::format_number(tia_u_MBq_h[i]),
                                 "a finite number >= 0 [MBq h], or NaN (unknown)");
    if (!std::isnan(mass_g[i]) && !lutdose::MASS_RANGE_G.contains(mass_g[i]))
      lutdose::throw_input_error("dose", "mass_g of " + voi[i], lutdose::format_number(mass_g[i]),
                                 "a mass " + lutdose::MASS_RANGE_G.text() + ", or NaN (the phantom's)");
    vois[i].voi = voi[i]; vois[i].tia_MBq_h = tia_MBq_h[i]; vois[i].tia_u_MBq_h = tia_u_MBq_h[i];
    vois[i].mean_mass_g = mass_g[i];
  }
  lutdose::CycleDoses c;
  {
    py::gil_scoped_release release;
    c = calc.compute(vois, administered_MBq, "dose");
  }
  return py::make_tuple(dose_columns(c), budget_columns(c, vois), c.notes, c.remainder_tia_MBq_h);
}

// Rounding allowance of the dose-rate checks: a sum counts as negative only below -64 eps times the
// sum of its terms' magnitudes (an uptake curve's terms cancel at t = 0 to +-1 ulp).
constexpr double kRoundingUlps = 64 * std::numeric_limits<double>::epsilon();

// The dose rate sum_i a_i exp(-lambda_i t) [Gy/h] at 256 times spread geometrically from 1e-3 /
// lambda_max to 50 / lambda_min [h] (a dip below 0 between the start and the late times).
void check_rate_between(const std::vector<double>& a, const std::vector<double>& lambda) {
  const auto [lo, hi] = std::minmax_element(lambda.begin(), lambda.end());
  const double t0 = 1e-3 / *hi, t1 = 50.0 / *lo;
  for (int k = 0; k < 256; ++k) {
    const double t = t0 * std::pow(t1 / t0, k / 255.0);
    double rate = 0, scale = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
      const double e = std::exp(-lambda[i] * t);
      rate += a[i] * e, scale += std::abs(a[i]) * e;
    }
    if (rate < -kRoundingUlps * scale)
      lutdose::throw_input_error("bed", "the dose rate at t = " + lutdose::format_number(t) + " h",
                                 lutdose::format_number(rate), "a dose rate >= 0 [Gy/h] at every time");
  }
}

// A dose rate sum_i a_i exp(-lambda_i t) [Gy/h] that is not a dose is refused: a negative dose in
// total (sum a_i / lambda_i), at t = 0 (sum a_i), at late times (the slowest terms with an
// amplitude) or in between (check_rate_between). A negative term alone is fine: an uptake curve
// has one.
void check_dose_rate(const std::vector<double>& a, const std::vector<double>& lambda) {
  double dose = 0, dose_scale = 0, start = 0, scale = 0, slowest_rate = std::numeric_limits<double>::infinity(), slowest = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    dose += a[i] / lambda[i], dose_scale += std::abs(a[i] / lambda[i]);
    start += a[i], scale += std::abs(a[i]);
    if (a[i] != 0 && lambda[i] < slowest_rate) slowest_rate = lambda[i], slowest = 0;
    if (a[i] != 0 && lambda[i] == slowest_rate) slowest += a[i];
  }
  if (!(dose >= -kRoundingUlps * dose_scale))
    lutdose::throw_input_error("bed", "dose_Gy", lutdose::format_number(dose),
                               "a dose >= 0 [Gy] (sum of a_Gy_per_h / lambda_per_h)");
  if (!(start >= -kRoundingUlps * scale))
    lutdose::throw_input_error("bed", "the sum of a_Gy_per_h", lutdose::format_number(start),
                               "a dose rate >= 0 [Gy/h] at t = 0");
  if (!(slowest >= 0))
    lutdose::throw_input_error("bed", "the slowest term's a_Gy_per_h", lutdose::format_number(slowest),
                               "a dose rate >= 0 [Gy/h] at late times, where the slowest term is all that is left");
  check_rate_between(a, lambda);
}

// BED and EQD2 [Gy] of a dose-rate curve sum_i a_i exp(-lambda_i t) [Gy/h] delivered in full (closed
// form), with the tissue parameters of `target` or the given alpha/beta [Gy] and repair half-time [h].
py::dict bed(const std::vector<double>& a_Gy_per_h, const std::vector<double>& lambda_per_h, const std::string& target,
             double alpha_beta_Gy, double repair_half_time_h, const std::string& data_dir) {
  if (target.empty() && (std::isnan(alpha_beta_Gy) || std::isnan(repair_half_time_h)))
    throw lutdose::InputError("bed: the tissue parameters are missing; give target or alpha_beta_Gy and "
                              "repair_half_time_h");
  lutdose::TissueParameters t;
  if (!target.empty()) {
    const auto* found = reference_of(data_dir_of(data_dir)).tissue().find(target);
    if (!found)
      lutdose::throw_input_error("bed", "target", target, "a target of data/radiobiology/tissue_parameters.csv");
    t = *found;
  }
  if (!std::isnan(alpha_beta_Gy)) t.alpha_beta_Gy = alpha_beta_Gy;
  if (!std::isnan(repair_half_time_h)) t.repair_half_time_h = repair_half_time_h;
  if (!(t.alpha_beta_Gy > 0) || !std::isfinite(t.alpha_beta_Gy))
    lutdose::throw_input_error("bed", "alpha_beta_Gy", lutdose::format_number(t.alpha_beta_Gy), "a number > 0 [Gy]");
  if (!(t.repair_half_time_h > 0) || !std::isfinite(t.repair_half_time_h))
    lutdose::throw_input_error("bed", "repair_half_time_h", lutdose::format_number(t.repair_half_time_h),
                               "a number > 0 [h]");
  if (a_Gy_per_h.size() != lambda_per_h.size() || a_Gy_per_h.empty())
    throw lutdose::InputError("bed: a_Gy_per_h and lambda_per_h need the same number of terms, at least one");
  for (const double a : a_Gy_per_h)
    if (!std::isfinite(a)) lutdose::throw_input_error("bed", "a_Gy_per_h", lutdose::format_number(a), "finite numbers [Gy/h]");
  for (const double l : lambda_per_h)
    if (!(l > 0) || !std::isfinite(l))
      lutdose::throw_input_error("bed", "lambda_per_h", lutdose::format_number(l), "rates > 0 [1/h]");
  check_dose_rate(a_Gy_per_h, lambda_per_h);
  const auto r = lutdose::bed_closed_form(lutdose::ExpSum{a_Gy_per_h, lambda_per_h}, t);
  py::dict d;
  d["dose_Gy"] = r.dose_Gy; d["g"] = r.g; d["bed_Gy"] = r.bed_Gy; d["eqd2_Gy"] = r.eqd2_Gy;
  d["alpha_beta_Gy"] = t.alpha_beta_Gy; d["repair_half_time_h"] = t.repair_half_time_h;
  return d;
}

// lutdose plan: the plan document's text, as `lutdose plan` prints it (JSON, 2-space indent).
std::string plan(const py::dict& k) {
  lutdose_cli::PlanArgs a;
  auto text = [&k](const char* key, std::string& out) {
    if (k.contains(key) && !k[key].is_none()) out = cast_argument<std::string>(py::str(k[key]), "plan", key);
  };
  auto number = [&k](const char* key, std::optional<double>& out) {
    if (k.contains(key) && !k[key].is_none()) out = cast_argument<double>(k[key], "plan", key);
  };
  text("case", a.case_path);
  text("history", a.history_path);
  text("strategy", a.strategy);
  text("prediction", a.prediction);
  text("data_dir", a.data_dir);
  text("population", a.population);
  if (k.contains("planned_cycles") && !k["planned_cycles"].is_none())
    a.planned_cycles = static_cast<int>(whole_number(k["planned_cycles"], "plan", "planned_cycles", INT_MIN, INT_MAX));
  number("a_min_MBq", a.a_min_MBq);
  number("a_max_MBq", a.a_max_MBq);
  number("a_standard_MBq", a.a_standard_MBq);
  number("safety_k", a.safety_k);
  number("prediction_cv", a.prediction_cv);
  take(k, "limits", a.limits, "plan");
  take(k, "allow_incomplete", a.allow_incomplete, "plan");
  take(k, "allow_external_files", a.allow_external_files, "plan");
  py::gil_scoped_release release;
  return lutdose_cli::run_plan(a).document.dump(2) + "\n";
}

}  // namespace

void bind_dose(py::module_& m) {
  m.def("_dose", &dose, py::arg("voi"), py::arg("tia_MBq_h"), py::arg("tia_u_MBq_h"), py::arg("mass_g"),
        py::arg("administered_MBq"), py::arg("options"));
  m.def("_bed", &bed, py::arg("a_Gy_per_h"), py::arg("lambda_per_h"), py::arg("target"), py::arg("alpha_beta_Gy"),
        py::arg("repair_half_time_h"), py::arg("data_dir"));
  m.def("_plan", &plan, py::arg("keywords"));
}

}  // namespace lutdose_py
