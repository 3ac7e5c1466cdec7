#include "lutdose/dosimetry/nuclide.h"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "lutdose/error.h"

namespace lutdose {

double Nuclide::lambda_per_h() const { return std::log(2.0) / half_life_h; }

double Nuclide::local_deposition_Gy_g_per_MBq_h() const {
  // E [J per decay] * 1e6 decays/(MBq s) * 3600 s/h / 1e-3 kg/g  ->  Gy g / (MBq h)
  return electron_MeV_per_decay * JOULE_PER_MEV * 1e6 * 3600.0 / 1e-3;
}

double Nuclide::local_deposition_s_mGy_per_MBq_s(double mass_g) const {
  // E [J] * 1e6 decays/(MBq s) / (m [g] * 1e-3 kg/g) [Gy] * 1e3 mGy/Gy
  return electron_MeV_per_decay * JOULE_PER_MEV * 1e6 / (mass_g * 1e-3) * 1e3;
}

Nuclide load_nuclide(const std::string& data_dir, const std::string& name,
                     double half_life_override_h) {
  const std::string path = data_dir + "/decay/" + name + ".json";
  std::ifstream in(path);
  if (!in) throw_input_error(path, "nuclide", name, "a nuclide with ICRP-107 data in data/decay/");
  nlohmann::json j;
  try {
    in >> j;
  } catch (const std::exception& e) {
    throw InputError(path + ": not valid JSON (" + e.what() + ")");
  }
  Nuclide n;
  n.name = j.at("name").get<std::string>();
  const double t = j.at("half_life").get<double>();
  const std::string unit = j.at("time_unit").get<std::string>();
  double hours_per_unit = 0;
  if (unit == "s") hours_per_unit = 1.0 / 3600.0;
  else if (unit == "m") hours_per_unit = 1.0 / 60.0;
  else if (unit == "h") hours_per_unit = 1.0;
  else if (unit == "d") hours_per_unit = 24.0;
  else if (unit == "y") hours_per_unit = 24.0 * 365.25;
  else throw_input_error(path, "time_unit", unit, "one of s, m, h, d, y");
  n.half_life_h = t * hours_per_unit;
  auto sum = [&](const char* key) {
    double s = 0;
    const auto& em = j.at("emissions");
    if (!em.contains(key)) return 0.0;
    for (const auto& line : em.at(key)) s += line.at(0).get<double>() * line.at(1).get<double>();
    return s;
  };
  n.electron_MeV_per_decay = sum("beta-") + sum("beta+") + sum("IE") + sum("auger");
  n.photon_MeV_per_decay = sum("gamma") + sum("X") + sum("annihilation");
  n.source = "ICRP Publication 107 (" + path + ")";
  if (half_life_override_h > 0) {
    n.half_life_h = half_life_override_h;
    n.source += "; half-life overridden by the user";
  }
  return n;
}

}  // namespace lutdose
