// S-value sets (phantoms), the VOI name map, and the sphere model for tumours (methods.md §6).
// S-values are in mGy / (MBq s); masses in g.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace lutdose {

//! One phantom's S-values for one nuclide: S(target <- source) with region masses.
struct SValueSet {
  std::string name;         //!< "icrp110-am", "icrp110-af", "icrp89-male", "icrp89-female"
  std::string description;  //!< phantom and data origin, in words
  std::vector<std::string> files;  //!< data files read (relative to the data directory)
  std::map<std::pair<std::string, std::string>, double> s_mGy_per_MBq_s;  //!< (target, source)
  //! Standard uncertainty of S where the data give one (OpenDose's published standard error).
  std::map<std::pair<std::string, std::string>, double> s_u_mGy_per_MBq_s;
  std::map<std::string, double> target_mass_g;
  std::map<std::string, double> source_mass_g;
  std::vector<std::string> sources;  //!< source regions, in file order
  std::vector<std::string> targets;  //!< target regions, in file order
  //! Reference body mass of the phantom [g] (ICRP 89: 73 kg male, 60 kg female).
  double body_mass_g = 0;
  //! Source and target region of the whole body, for the remainder-of-body correction ("" if none).
  std::string whole_body_source, whole_body_target;

  bool has(const std::string& target, const std::string& source) const;
  double s(const std::string& target, const std::string& source) const;  //!< throws if absent
};

//! How one of our VOI names maps onto a set's regions (data/svalues/voi_region_map.csv).
struct VoiRegionMap {
  std::vector<std::string> source_regions;
  std::string target_region;
  double voi_mass_fraction = 1.0;
};

//! The phantoms lutdose knows: name and description.
const std::vector<std::pair<std::string, std::string>>& phantoms();

//! Loads a set; throws InputError for an unknown name (listing the known ones).
SValueSet load_svalue_set(const std::string& data_dir, const std::string& name);

//! Loads a user-supplied S-value table (CSV, docs/svalues.md): columns target, source,
//! s_mGy_per_MBq_s, target_mass_g and optionally s_u_mGy_per_MBq_s, source_mass_g. Every target
//! must have a value from every source. Region names are lutdose VOI names (whole_body enables
//! the remainder correction). Throws InputError naming the line, column and value.
SValueSet load_user_svalue_table(const std::string& path);

//! The VOI map of a user table: every VOI name that is both a source and a target region.
std::map<std::string, VoiRegionMap> user_voi_region_map(const SValueSet& set);

//! The VOI names a set can map, with their regions.
std::map<std::string, VoiRegionMap> load_voi_region_map(const std::string& data_dir,
                                                        const std::string& set_name);

//! Self-dose S-value of a mapped VOI in the phantom, with its reference (phantom) mass:
//! S = sum over the source regions s of (m_s / sum m) * S(target <- s).
struct SelfS {
  double s_ref_mGy_per_MBq_s;
  double reference_mass_g;  //!< phantom mass of the target region
  double default_voi_mass_g;  //!< reference_mass_g * voi_mass_fraction
};
SelfS self_s_value(const SValueSet& set, const VoiRegionMap& map);

//! True for VOI names handled as tumours: tumour_*, tumor_*, lesion_*.
bool is_tumour_voi(const std::string& voi);

//! Sphere S-values (self-dose of uniformly filled spheres) for one composition.
struct SphereTable {
  std::string composition;       //!< e.g. "100%/0%" (soft tissue / bone)
  std::vector<double> mass_g;    //!< increasing
  std::vector<double> s_mGy_per_MBq_s;
  //! Log-log linear interpolation; throws InputError outside the tabulated masses.
  double s_at(double mass_g, const std::string& where) const;
};
SphereTable load_sphere_table(const std::string& data_dir, const std::string& composition);
std::vector<std::string> sphere_compositions(const std::string& data_dir);
//! Density of a sphere composition [g/mL] as assigned with the sphere table (PROVENANCE §3).
double sphere_density_g_per_mL(const std::string& composition);

}  // namespace lutdose
