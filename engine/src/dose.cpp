#include "lutdose/dose.h"

#include <cmath>

#include "lutdose/error.h"

namespace lutdose {

std::string to_string(TumourMethod m) {
  return m == TumourMethod::sphere ? "sphere" : "local";
}

TumourMethod parse_tumour_method(const std::string& s) {
  if (s == "sphere") return TumourMethod::sphere;
  if (s == "local") return TumourMethod::local_deposition;
  throw_input_error("--tumour-method", "the tumour method", s, "sphere or local");
}

DoseCalculator::DoseCalculator(const std::string& data_dir, const Nuclide& nuclide,
                               DoseOptions options)
    : nuclide_(nuclide), options_(std::move(options)) {
  if (!(options_.organ_density_g_per_mL > 0) || !std::isfinite(options_.organ_density_g_per_mL))
    throw_input_error("--density-g-per-mL", "the organ density",
                      format_number(options_.organ_density_g_per_mL), "a density > 0 g/mL");
  set_ = load_svalue_set(data_dir, options_.phantom);
  map_ = load_voi_region_map(data_dir, options_.phantom);
  spheres_ = load_sphere_table(data_dir, options_.sphere_composition);
  if (nuclide_.name != "Lu-177")
    throw_input_error("nuclide", "the nuclide", nuclide_.name,
                      "Lu-177 (the S-value sets shipped are for Lu-177)");
}

std::vector<std::string> DoseCalculator::mapped_vois() const {
  std::vector<std::string> v;
  for (const auto& [name, m] : map_) v.push_back(name);
  return v;
}

SelfDose DoseCalculator::self_dose(const std::string& voi, double mean_mass_g, double mean_volume_mL,
                                   double tia_MBq_h, double tia_u_MBq_h, double administered_MBq,
                                   const std::string& where) const {
  SelfDose d;
  d.target = voi;
  const bool tumour = is_tumour_voi(voi);
  double density = options_.organ_density_g_per_mL;
  if (tumour && options_.tumour_method == TumourMethod::sphere)
    density = sphere_density_g_per_mL(options_.sphere_composition);
  if (!std::isnan(mean_mass_g)) {
    d.mass_g = mean_mass_g;
    d.mass_source = "mass_g";
  } else if (!std::isnan(mean_volume_mL)) {
    d.mass_g = mean_volume_mL * density;
    d.mass_source = "volume_mL x " + format_number(density) + " g/mL";
  }

  if (tumour) {
    if (d.mass_source.empty())
      throw InputError(where + ": a tumour needs mass_g or volume_mL; expected one of them in the "
                       "TAC table");
    if (options_.tumour_method == TumourMethod::sphere) {
      d.method = "sphere S-value, log-log interpolation in mass";
      d.target_region = "sphere " + options_.sphere_composition + " soft tissue/bone";
      d.s_mGy_per_MBq_s = spheres_.s_at(d.mass_g, where);
    } else {
      d.method = "local deposition of the electron energy";
      d.target_region = "local deposition";
      d.s_mGy_per_MBq_s = nuclide_.local_deposition_s_mGy_per_MBq_s(d.mass_g);
    }
  } else {
    const auto it = map_.find(voi);
    if (it == map_.end()) {
      std::string names;
      for (const auto& [n, m] : map_) names += (names.empty() ? "" : ", ") + n;
      throw_input_error(where, "the VOI name", voi,
                        "a VOI that phantom " + options_.phantom + " can map: " + names +
                            ", or tumour_*/tumor_*/lesion_* for tumours");
    }
    const SelfS s = self_s_value(set_, it->second);
    if (d.mass_source.empty()) {
      d.mass_g = s.default_voi_mass_g;
      d.mass_source = "phantom reference mass";
    }
    d.method = "phantom self-S scaled by inverse mass";
    d.target_region = it->second.target_region;
    d.reference_mass_g = s.reference_mass_g;
    d.s_reference_mGy_per_MBq_s = s.s_ref_mGy_per_MBq_s;
    d.s_mGy_per_MBq_s = s.s_ref_mGy_per_MBq_s * s.reference_mass_g / d.mass_g;
  }
  // mGy/(MBq s) * MBq h * 3600 s/h * 1e-3 Gy/mGy
  const double gy_per_mbq_h = d.s_mGy_per_MBq_s * 3600.0 * 1e-3;
  d.dose_Gy = tia_MBq_h * gy_per_mbq_h;
  d.dose_u_Gy = tia_u_MBq_h * gy_per_mbq_h;
  if (administered_MBq > 0) d.dose_Gy_per_GBq = d.dose_Gy / (administered_MBq * 1e-3);
  return d;
}

}  // namespace lutdose
