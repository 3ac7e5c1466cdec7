// Absorbed dose, first version: self-dose of each VOI (methods.md §6).
//  * organs: phantom self-S scaled to the patient's mass by inverse mass, S_pat = S_ref m_ref / m;
//  * tumours (tumour_*, tumor_*, lesion_*): sphere S-values interpolated in log mass, or local
//    deposition of the electron energy, S = Delta_e / m.
// D [Gy] = TIA [MBq h] * S [mGy/(MBq s)] * 3600 s/h * 1e-3 Gy/mGy.
#pragma once

#include <limits>
#include <string>

#include "lutdose/nuclide.h"
#include "lutdose/svalues.h"

namespace lutdose {

enum class TumourMethod { sphere, local_deposition };
std::string to_string(TumourMethod m);
TumourMethod parse_tumour_method(const std::string& s);

struct DoseOptions {
  std::string phantom;  //!< S-value set name
  TumourMethod tumour_method = TumourMethod::sphere;
  std::string sphere_composition = "100%/0%";
  //! Density that turns an organ's volume_mL into mass_g [g/mL]. 1.03 g/mL is the soft-tissue
  //! density of the sphere table (data/PROVENANCE.md §3); tumours use their composition's density.
  double organ_density_g_per_mL = 1.03;
};

//! The mass used for a VOI and where it came from.
struct VoiMass {
  double mass_g = std::numeric_limits<double>::quiet_NaN();
  std::string source;  //!< "mass_g", "volume_mL x 1.03 g/mL", "phantom reference mass"
};

struct SelfDose {
  std::string target;
  std::string method;        //!< how S was obtained, in words
  std::string target_region;  //!< phantom region or sphere composition
  double mass_g = 0;
  std::string mass_source;
  double reference_mass_g = std::numeric_limits<double>::quiet_NaN();
  double s_reference_mGy_per_MBq_s = std::numeric_limits<double>::quiet_NaN();
  double s_mGy_per_MBq_s = 0;  //!< S used for this patient
  double dose_Gy = 0;
  double dose_u_Gy = 0;  //!< from the TIA uncertainty only (S-value uncertainty not included)
  double dose_Gy_per_GBq = std::numeric_limits<double>::quiet_NaN();
};

//! Everything the dose step needs, loaded once per run.
class DoseCalculator {
 public:
  DoseCalculator(const std::string& data_dir, const Nuclide& nuclide, DoseOptions options);
  //! Throws InputError for a VOI name the phantom cannot map (listing the names it can), a tumour
  //! without mass or volume, or a tumour mass outside the sphere table. `where` names the VOI.
  SelfDose self_dose(const std::string& voi, double mean_mass_g, double mean_volume_mL,
                     double tia_MBq_h, double tia_u_MBq_h, double administered_MBq,
                     const std::string& where) const;
  //! The VOI names this phantom maps (besides tumour_*/lesion_*).
  std::vector<std::string> mapped_vois() const;
  const SValueSet& svalue_set() const { return set_; }
  const DoseOptions& options() const { return options_; }
  const SphereTable& sphere_table() const { return spheres_; }

 private:
  Nuclide nuclide_;
  DoseOptions options_;
  SValueSet set_;
  std::map<std::string, VoiRegionMap> map_;
  SphereTable spheres_;
};

}  // namespace lutdose
