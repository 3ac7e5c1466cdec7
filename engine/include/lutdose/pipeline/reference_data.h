// The reference data of lutdose (data directory, docs/architecture.md), loaded once: decay data,
// every shipped S-value set with its VOI map, every sphere table, the tissue table, the limits,
// the population kinetics and priors, and the shipped compartment models.
//
// ReferenceData::load reads and validates all of it eagerly (a few tens of milliseconds; the
// benchmark BM_ReferenceDataLoad measures it), so that one object serves every patient and
// every run option (a run without doses may load all but the dose data: ReferenceParts). The
// object is immutable after load: any number of threads may share it by
// const reference (the per-patient pipeline, run_tac_table and run_case, reads nothing else).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "lutdose/dosimetry/nuclide.h"
#include "lutdose/dosimetry/svalues.h"
#include "lutdose/kinetics/stp.h"
#include "lutdose/models/compartment.h"
#include "lutdose/planning/planning.h"
#include "lutdose/radiobiology/radiobiology.h"

namespace lutdose {

//! What ReferenceData::load reads: everything, or everything but the dose step's S-value sets and
//! sphere tables (for runs without doses, such as `lutdose fit`: they are most of the loading).
enum class ReferenceParts { all, without_dose_data };

class ReferenceData {
 public:
  //! Reads and validates everything in `data_dir` (a directory from find_data_dir), or all but the
  //! dose data (`parts`). Throws InputError naming the file, the field and the value of the first
  //! problem of a loader.
  static ReferenceData load(const std::string& data_dir, ReferenceParts parts = ReferenceParts::all);

  //! The directory it was loaded from (recorded in results).
  const std::string& data_dir() const { return data_dir_; }

  //! The ICRP-107 nuclide `name` (data/decay/NAME.json); half_life_override_h > 0 replaces its
  //! half-life [h] and says so in Nuclide::source. InputError for a nuclide without decay data.
  Nuclide nuclide(const std::string& name, double half_life_override_h = 0) const;

  //! A shipped S-value set with its VOI map (data/svalues/voi_region_map.csv), indexed, by name
  //! (icrp110-am, ...), shared by the runs' dose steps. InputError listing the known names for
  //! another name. These three: std::logic_error when loaded without the dose data.
  const std::shared_ptr<const IndexedSValueSet>& phantom(const std::string& name) const;

  //! The sphere S-values of a composition ("100%/0%", ...). InputError listing the known ones.
  const SphereTable& sphere_table(const std::string& composition) const;

  //! The sphere compositions shipped, in file order.
  const std::vector<std::string>& sphere_compositions() const;

  //! data/radiobiology/tissue_parameters.csv.
  const TissueTable& tissue() const { return tissue_; }
  //! data/radiobiology/limits.csv.
  const std::vector<Limit>& limits() const { return limits_; }
  //! data/kinetics/population_kinetics.csv.
  const std::vector<PopulationKinetics>& population_kinetics() const { return population_kinetics_; }
  //! data/radiobiology/population_gy_per_gbq.csv.
  const std::vector<PopulationPrior>& population_priors() const { return population_priors_; }

  //! A shipped compartment model by the path find_compartment_model returns for it, or nullptr
  //! when `path` is not a shipped model (a user's file, read by read_run_files).
  const models::CompartmentModel* shipped_compartment_model(const std::string& path) const;

 private:
  void load_dose_data();
  void check_dose_data() const;

  std::string data_dir_;
  bool dose_data_ = false;
  std::map<std::string, Nuclide> nuclides_;
  std::map<std::string, std::shared_ptr<const IndexedSValueSet>> phantoms_;
  std::map<std::string, SphereTable> spheres_;
  std::vector<std::string> sphere_order_;
  TissueTable tissue_;
  std::vector<Limit> limits_;
  std::vector<PopulationKinetics> population_kinetics_;
  std::vector<PopulationPrior> population_priors_;
  std::map<std::string, std::shared_ptr<const models::CompartmentModel>> compartment_models_;
};

//! The folders where shipped compartment models are looked for, in order (the installed data
//! directory's models/, then the source tree's models/files/).
std::vector<std::string> compartment_model_dirs(const std::string& data_dir);

}  // namespace lutdose
