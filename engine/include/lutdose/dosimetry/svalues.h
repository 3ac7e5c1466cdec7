// S-value sets (phantoms), the VOI name map, and the sphere model for tumours (methods.md §6).
// S-values are in mGy / (MBq s); masses in g.
#pragma once

#include <limits>
#include <map>
#include <memory>
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

  //! Whether S(target <- source) is in the set (region names). Throws nothing.
  bool has(const std::string& target, const std::string& source) const;
  //! S(target <- source) [mGy/(MBq s)]; throws InputError naming the set and regions if absent.
  double s(const std::string& target, const std::string& source) const;
};

//! How one of our VOI names maps onto a set's regions (data/svalues/voi_region_map.csv).
struct VoiRegionMap {
  std::vector<std::string> source_regions;  //!< activity shared by the regions' phantom masses
  std::string target_region;  //!< its phantom mass is the VOI's reference mass
  double voi_mass_fraction = 1.0;  //!< the VOI's default mass / the target region's mass
};

//! The phantoms lutdose knows: name and description. Throws nothing.
const std::vector<std::pair<std::string, std::string>>& phantoms();

//! Loads a set from data_dir/svalues/ (S in mGy/(MBq s), masses in g); throws InputError for an
//! unknown name (listing the known ones) and for a data file that is missing, malformed or holds a
//! negative or non-numeric S-value or mass (file, line, column and value).
SValueSet load_svalue_set(const std::string& data_dir, const std::string& name);

//! Loads a user-supplied S-value table (CSV, docs/svalues.md): columns target, source,
//! s_mGy_per_MBq_s, target_mass_g and optionally s_u_mGy_per_MBq_s, source_mass_g. Every target
//! must have a value from every source. Region names are lutdose VOI names (whole_body enables
//! the remainder correction). Throws InputError naming the line, column and value.
SValueSet load_user_svalue_table(const std::string& path);

//! The VOI map of a user table: every VOI name that is both a source and a target region.
//! Throws nothing.
std::map<std::string, VoiRegionMap> user_voi_region_map(const SValueSet& set);

//! The VOI names a set can map, with their regions (data_dir/svalues/voi_region_map.csv, the rows
//! of `set_name`). Throws InputError for a missing file or column or a voi_mass_fraction that is not
//! a number >= 0 (file, line and value).
std::map<std::string, VoiRegionMap> load_voi_region_map(const std::string& data_dir,
                                                        const std::string& set_name);

//! An S-value set with the VOI names it maps and a dense index of its S matrix, built once per
//! set (ReferenceData keeps one for each shipped set; read_run_files one for a user table) and
//! shared, immutable, by every DoseCalculator that uses it: a patient's dose step copies and
//! indexes nothing.
struct IndexedSValueSet {
  //! Indexes `set`; `voi_map` is the set's VOI map (load_voi_region_map, user_voi_region_map).
  //! Throws nothing.
  IndexedSValueSet(SValueSet set, std::map<std::string, VoiRegionMap> voi_map);
  const SValueSet set;
  const std::map<std::string, VoiRegionMap> voi_map;
  //! Position of a region among set.targets / set.sources; npos when it is none. Throw nothing.
  static constexpr size_t npos = static_cast<size_t>(-1);
  size_t target_index(const std::string& region) const;
  size_t source_index(const std::string& region) const;
  //! S(target <- source) [mGy/(MBq s)] by positions; NaN where the set has no value or a
  //! position is npos. Throws nothing.
  double s_dense(size_t target, size_t source) const {
    return target == npos || source == npos ? std::numeric_limits<double>::quiet_NaN()
                                            : s_dense_[target * set.sources.size() + source];
  }

 private:
  std::map<std::string, size_t> target_index_, source_index_;
  std::vector<double> s_dense_;  // s_dense_[target * n_sources + source], NaN where the set has none
};

//! A user S-value table (load_user_svalue_table) with its VOI map (user_voi_region_map), indexed.
//! Throws as load_user_svalue_table.
std::shared_ptr<const IndexedSValueSet> load_indexed_user_svalue_table(const std::string& path);

//! Self-dose S-value of a mapped VOI in the phantom, with its reference (phantom) mass:
//! S = sum over the source regions s of (m_s / sum m) * S(target <- s).
struct SelfS {
  double s_ref_mGy_per_MBq_s;  //!< phantom self-S [mGy/(MBq s)]
  double reference_mass_g;  //!< phantom mass of the target region
  double default_voi_mass_g;  //!< reference_mass_g * voi_mass_fraction
};
//! Throws InputError when the set lacks the target region's mass, a source region's mass (several
//! sources) or an S-value of the map (the message names the set and the region).
SelfS self_s_value(const SValueSet& set, const VoiRegionMap& map);

//! True for VOI names handled as tumours: tumour_*, tumor_*, lesion_* (with a non-empty rest).
//! Throws nothing.
bool is_tumour_voi(const std::string& voi);

//! Sphere S-values (self-dose of uniformly filled spheres) for one composition.
struct SphereTable {
  std::string composition;       //!< e.g. "100%/0%" (soft tissue / bone)
  std::vector<double> mass_g;    //!< increasing [g]
  std::vector<double> s_mGy_per_MBq_s;  //!< self-S of each sphere [mGy/(MBq s)]
  //! Self-S [mGy/(MBq s)] at mass_g [g] by log-log linear interpolation (table points exact);
  //! throws InputError outside the tabulated masses (`where` names the tumour).
  double s_at(double mass_g, const std::string& where) const;
};
//! The table of one composition ("soft tissue %/bone %", e.g. "100%/0%") from
//! data_dir/spheres/pytheranostics_spheres.json, converted from Gy/(Bq s) to mGy/(MBq s). Throws
//! InputError for a missing file or an unknown composition (listing the known ones);
//! nlohmann::json::exception for a malformed file.
SphereTable load_sphere_table(const std::string& data_dir, const std::string& composition);
//! The compositions of the sphere table. Throws as load_sphere_table for the file.
std::vector<std::string> sphere_compositions(const std::string& data_dir);
//! Density of a sphere composition [g/mL] as assigned with the sphere table (PROVENANCE §3).
//! Throws InputError for an unknown composition.
double sphere_density_g_per_mL(const std::string& composition);

}  // namespace lutdose
