#include "lutdose/pipeline/reference_data.h"

#include <filesystem>
#include <stdexcept>

#include "lutdose/error.h"

namespace lutdose {

namespace {

// Every data/decay/NAME.json (the nuclides with ICRP-107 data), by name.
std::map<std::string, Nuclide> load_nuclides(const std::string& data_dir) {
  namespace fs = std::filesystem;
  std::map<std::string, Nuclide> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(data_dir + "/decay", ec)) {
    if (entry.path().extension() != ".json") continue;
    const std::string name = entry.path().stem().string();
    out.emplace(name, load_nuclide(data_dir, name));
  }
  return out;
}

std::string joined_keys(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

}  // namespace

std::vector<std::string> compartment_model_dirs(const std::string& data_dir) {
  return {data_dir + "/models", data_dir + "/../models/files"};
}

void ReferenceData::load_dose_data() {
  for (const auto& [name, description] : phantoms())
    phantoms_.emplace(name, std::make_shared<const IndexedSValueSet>(load_svalue_set(data_dir_, name),
                                                                    load_voi_region_map(data_dir_, name)));
  sphere_order_ = lutdose::sphere_compositions(data_dir_);
  for (const auto& c : sphere_order_) spheres_.emplace(c, load_sphere_table(data_dir_, c));
  dose_data_ = true;
}

void ReferenceData::check_dose_data() const {
  if (!dose_data_)
    throw std::logic_error("the reference data of " + data_dir_ +
                           " were loaded without the dose data (ReferenceParts::without_dose_data)");
}

ReferenceData ReferenceData::load(const std::string& data_dir, ReferenceParts parts) {
  ReferenceData r;
  r.data_dir_ = data_dir;
  r.nuclides_ = load_nuclides(data_dir);
  if (parts == ReferenceParts::all) r.load_dose_data();
  r.tissue_ = TissueTable::load(data_dir);
  r.limits_ = load_limits(data_dir);
  r.population_kinetics_ = load_population_kinetics(data_dir);
  r.population_priors_ = load_population_priors(data_dir);
  namespace fs = std::filesystem;
  for (const auto& dir : compartment_model_dirs(data_dir)) {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      if (entry.path().extension() != ".json") continue;
      // the key is the path as find_compartment_model builds it (dir + "/" + name + ".json")
      const std::string path = dir + "/" + entry.path().filename().string();
      try {
        r.compartment_models_.emplace(
            path, std::make_shared<const models::CompartmentModel>(models::CompartmentModel::from_file(path)));
      } catch (const models::ModelError& e) {
        throw InputError(e.what());
      }
    }
  }
  return r;
}

Nuclide ReferenceData::nuclide(const std::string& name, double half_life_override_h) const {
  const auto it = nuclides_.find(name);
  if (it == nuclides_.end())
    throw_input_error(data_dir_ + "/decay/" + name + ".json", "nuclide", name,
                      "a nuclide with ICRP-107 data in data/decay/");
  Nuclide n = it->second;
  if (half_life_override_h > 0) {  // as load_nuclide does it
    n.half_life_h = half_life_override_h;
    n.source += "; half-life overridden by the user";
  }
  return n;
}

const std::shared_ptr<const IndexedSValueSet>& ReferenceData::phantom(const std::string& name) const {
  check_dose_data();
  const auto it = phantoms_.find(name);
  if (it == phantoms_.end()) {
    std::vector<std::string> known;
    for (const auto& [n, d] : phantoms()) known.push_back(n);
    throw_input_error("--phantom", "the phantom", name, "one of " + joined_keys(known));
  }
  return it->second;
}

const std::vector<std::string>& ReferenceData::sphere_compositions() const {
  check_dose_data();
  return sphere_order_;
}

const SphereTable& ReferenceData::sphere_table(const std::string& composition) const {
  check_dose_data();
  const auto it = spheres_.find(composition);
  if (it == spheres_.end())
    throw_input_error("--sphere-composition", "the sphere composition", composition,
                      "one of " + joined_keys(sphere_order_) + " (soft tissue / bone)");
  return it->second;
}

const models::CompartmentModel* ReferenceData::shipped_compartment_model(const std::string& path) const {
  const auto it = compartment_models_.find(path);
  return it == compartment_models_.end() ? nullptr : it->second.get();
}

}  // namespace lutdose
