// Nuclide data from ICRP Publication 107 (Endo & Eckerman 2008), read from data/decay/<name>.json.
#pragma once

#include <string>

namespace lutdose {

//! 1 MeV in joules (CODATA 2018 exact value of the elementary charge, 1.602176634e-19 C).
inline constexpr double JOULE_PER_MEV = 1.602176634e-13;

struct Nuclide {
  std::string name;                    //!< e.g. "Lu-177"
  double half_life_h = 0;              //!< [h]
  double electron_MeV_per_decay = 0;   //!< beta +/- mean energies + internal conversion + Auger [MeV]
  double photon_MeV_per_decay = 0;     //!< gamma + X-rays + annihilation photons [MeV]
  std::string source;                  //!< data file and publication

  double lambda_per_h() const;  //!< physical decay constant ln2 / T1/2 [1/h]; throws nothing
  //! Absorbed dose per TIA per mass if all electron energy is absorbed locally:
  //! D[Gy] = k * TIA[MBq h] / m[g], k in Gy g / (MBq h). Throws nothing.
  double local_deposition_Gy_g_per_MBq_h() const;
  //! The same in S-value units for a mass m [g]: mGy / (MBq s). Throws nothing (m <= 0 gives
  //! an infinite or negative value: the caller checks the mass).
  double local_deposition_s_mGy_per_MBq_s(double mass_g) const;
};

//! Reads data/decay/<name>.json (ICRP-107 emissions) and sums the energy per decay.
//! half_life_override_h [h] > 0 replaces the ICRP-107 half-life (recorded in Nuclide::source).
//! Throws InputError when the file is missing (no data for that nuclide) or not JSON, or its
//! time_unit is not s, m, h, d or y; nlohmann::json::exception when a key of the ICRP-107 layout
//! (name, half_life, time_unit, emissions) is missing (the shipped data are checked by the tests).
Nuclide load_nuclide(const std::string& data_dir, const std::string& name,
                     double half_life_override_h = 0);

}  // namespace lutdose
