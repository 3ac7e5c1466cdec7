#include "lutdose/dosimetry/marrow.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "lutdose/dosimetry/svalues.h"
#include "lutdose/error.h"

namespace lutdose {

namespace {

// The method can be applied: no red_marrow VOI of the user's, red marrow in the S-value set.
void check_marrow_possible(const DoseCalculator& dose, const std::vector<DoseSourceInput>& inputs,
                           const std::string& where) {
  const MarrowOptions& m = dose.options().marrow;
  for (const auto& in : inputs)
    if (in.voi == "red_marrow")
      throw_input_error(where, "the VOI", "red_marrow",
                        "no red_marrow VOI when the marrow method is '" + to_string(m.method) + "' (it makes one)");
  if (!dose.voi_map().count("red_marrow"))
    throw_input_error(where, "the marrow method", to_string(m.method),
                      "an S-value set with red marrow (icrp89-male, icrp89-female, or a user table "
                      "with red_marrow); " + dose.svalue_set().name + " has none");
}

// Blood method: TIA_RM = TIAC_blood x RMBLR x m_RM, its curve the blood fit's scaled alike.
DoseSourceInput blood_source(const MarrowOptions& m, const BloodData* blood, const FitOptions& fit_options,
                             double lambda_p, MarrowResult& r, std::map<std::string, ActivityCurve>& curves,
                             const std::string& where) {
  if (blood == nullptr)
    throw_input_error(where, "the marrow method", "blood",
                      "blood samples in the cycle (\"blood\": {\"samples\": [...]}) for the "
                      "blood-based marrow dose");
  const BloodData& b = *blood;
  r.rmblr = m.rmblr;
  r.rmblr_source = "rmblr";
  if (!std::isnan(m.rmecff)) {
    if (std::isnan(b.hematocrit))
      throw_input_error(where, "blood.hematocrit", "missing", "the hematocrit, as dose.marrow.rmecff is given");
    r.rmblr = m.rmecff / (1 - b.hematocrit);
    r.rmblr_source = "rmecff / (1 - hematocrit)";
  }
  TacSeries blood_tac;
  blood_tac.time_h = Eigen::Map<const Eigen::VectorXd>(b.time_h.data(), static_cast<Eigen::Index>(b.time_h.size()));
  blood_tac.activity_MBq = Eigen::Map<const Eigen::VectorXd>(b.concentration_MBq_per_mL.data(), blood_tac.time_h.size());
  Eigen::VectorXd u;
  if (!b.concentration_u_MBq_per_mL.empty())
    u = Eigen::Map<const Eigen::VectorXd>(b.concentration_u_MBq_per_mL.data(), blood_tac.time_h.size());
  const TacFit fit = fit_tac(blood_tac.time_h, blood_tac.activity_MBq, u, lambda_p, fit_options, where + ", blood samples");
  // marrow activity per gram = RMBLR x blood activity per mL (blood density taken as 1 g/mL)
  DoseSourceInput rm;
  rm.tia_MBq_h = fit.tia_MBq_h * r.rmblr * r.mass_g;
  rm.tia_u_MBq_h = fit.tia_u_MBq_h * r.rmblr * r.mass_g;  // NaN when unknown
  rm.tia_u_dof = fit.tia_u_dof;
  r.blood_fit_function = fit.function;
  r.blood_fit_accepted = fit.accepted;
  r.blood_tiac_MBq_h_per_mL = fit.tia_MBq_h;
  r.blood_tiac_u_MBq_h_per_mL = fit.tia_u_MBq_h;
  curves["red_marrow"] = scaled(curve_of(fit, blood_tac, fit_options, lambda_p), r.rmblr * r.mass_g);
  return rm;
}

// Image method: the L2-L4 VOI leaves the sources; its TIA and curve / fraction are the marrow's.
DoseSourceInput image_source(const MarrowOptions& m, std::vector<DoseSourceInput>& inputs, MarrowResult& r,
                             std::map<std::string, ActivityCurve>& curves, const std::string& where) {
  auto it = std::find_if(inputs.begin(), inputs.end(), [&](const DoseSourceInput& in) { return in.voi == m.l2l4_voi; });
  if (it == inputs.end())
    throw_input_error(where, "the marrow method", "image",
                      "a VOI named " + m.l2l4_voi + " (the L2-L4 marrow) in the cycle");
  DoseSourceInput rm = *it;
  inputs.erase(it);
  curves["red_marrow"] = divided(curves.at(m.l2l4_voi), m.l2l4_fraction);
  rm.tia_MBq_h /= m.l2l4_fraction;
  rm.tia_u_MBq_h /= m.l2l4_fraction;
  r.l2l4_voi = m.l2l4_voi;
  r.l2l4_fraction = m.l2l4_fraction;
  return rm;
}

}  // namespace

std::optional<MarrowResult> add_marrow(const DoseCalculator& dose, const BloodData* blood, const FitOptions& fit,
                                       double lambda_p, std::vector<DoseSourceInput>& inputs,
                                       std::map<std::string, ActivityCurve>& curves, const std::string& where) {
  const MarrowOptions& m = dose.options().marrow;
  if (m.method == MarrowMethod::none) return std::nullopt;
  check_marrow_possible(dose, inputs, where);
  const SelfS ref = self_s_value(dose.svalue_set(), dose.voi_map().at("red_marrow"));
  MarrowResult r;
  r.method = m.method;
  r.mass_g = std::isnan(m.mass_g) ? ref.default_voi_mass_g : m.mass_g;
  r.mass_source = std::isnan(m.mass_g) ? "phantom reference mass" : "dose.marrow.mass_g";
  DoseSourceInput rm = m.method == MarrowMethod::blood ? blood_source(m, blood, fit, lambda_p, r, curves, where)
                                           : image_source(m, inputs, r, curves, where);
  rm.voi = "red_marrow";
  rm.mean_mass_g = r.mass_g;
  rm.mean_volume_mL = std::numeric_limits<double>::quiet_NaN();
  r.tia_MBq_h = rm.tia_MBq_h;
  r.tia_u_MBq_h = rm.tia_u_MBq_h;
  r.tia_u_dof = rm.tia_u_dof;
  inputs.push_back(rm);
  return r;
}

}  // namespace lutdose
