#include "lutdose/dosimetry/svalues.h"

#include <algorithm>
#include <set>
#include <cmath>
#include <limits>
#include <fstream>
#include <nlohmann/json.hpp>

#include "lutdose/io/csv.h"
#include "lutdose/error.h"
#include "lutdose/io/input_file.h"

namespace lutdose {

bool SValueSet::has(const std::string& target, const std::string& source) const {
  return s_mGy_per_MBq_s.count({target, source}) > 0;
}

double SValueSet::s(const std::string& target, const std::string& source) const {
  const auto it = s_mGy_per_MBq_s.find({target, source});
  if (it == s_mGy_per_MBq_s.end())
    throw InputError("S-value set " + name + ": no S-value for target '" + target +
                     "' from source '" + source + "'");
  return it->second;
}

IndexedSValueSet::IndexedSValueSet(SValueSet s, std::map<std::string, VoiRegionMap> map)
    : set(std::move(s)), voi_map(std::move(map)) {
  for (size_t i = 0; i < set.targets.size(); ++i) target_index_[set.targets[i]] = i;
  for (size_t i = 0; i < set.sources.size(); ++i) source_index_[set.sources[i]] = i;
  s_dense_.assign(set.targets.size() * set.sources.size(), std::numeric_limits<double>::quiet_NaN());
  for (const auto& [key, value] : set.s_mGy_per_MBq_s) {
    const auto t = target_index_.find(key.first), src = source_index_.find(key.second);
    if (t != target_index_.end() && src != source_index_.end())
      s_dense_[t->second * set.sources.size() + src->second] = value;
  }
}

std::shared_ptr<const IndexedSValueSet> load_indexed_user_svalue_table(const std::string& path) {
  SValueSet set = load_user_svalue_table(path);
  auto map = user_voi_region_map(set);
  return std::make_shared<const IndexedSValueSet>(std::move(set), std::move(map));
}

size_t IndexedSValueSet::target_index(const std::string& region) const {
  const auto it = target_index_.find(region);
  return it == target_index_.end() ? npos : it->second;
}

size_t IndexedSValueSet::source_index(const std::string& region) const {
  const auto it = source_index_.find(region);
  return it == source_index_.end() ? npos : it->second;
}

const std::vector<std::pair<std::string, std::string>>& phantoms() {
  static const std::vector<std::pair<std::string, std::string>> list = {
      {"icrp110-am", "ICRP 110 adult male voxel phantom, OpenDose S-values (Lu-177)"},
      {"icrp110-af", "ICRP 110 adult female voxel phantom, OpenDose S-values (Lu-177)"},
      {"icrp89-male", "ICRP 89 adult male stylized phantom, OLINDA/EXM 2 S-values (Lu-177)"},
      {"icrp89-female", "ICRP 89 adult female stylized phantom, OLINDA/EXM 2 S-values (Lu-177)"},
  };
  return list;
}

namespace {

std::string known_phantoms() {
  std::string s;
  for (const auto& [n, d] : phantoms()) s += (s.empty() ? "" : ", ") + n;
  return s;
}

void remember(std::vector<std::string>& list, const std::string& name) {
  if (std::find(list.begin(), list.end(), name) == list.end()) list.push_back(name);
}

double positive_number(const std::string& text, const std::string& where, const std::string& field) {
  double x;
  if (!parse_double(text, x) || !std::isfinite(x) || x < 0)
    throw_input_error(where, field, text, "a finite number >= 0");
  return x;
}

void load_opendose(SValueSet& set, const std::string& dir, const std::string& phantom_id,
                   const std::string& masses_file) {
  const std::string s_file = "svalues/opendose_lu177_icrp110_svalues.csv";
  set.files = {s_file, masses_file};
  const CsvTable t = read_csv(dir + "/" + s_file);
  const auto [cp, cs, ct, cv, cm] =
      t.require<5>({"phantom", "source_region", "target_region", "S_mGy_per_MBq_s", "target_mass_g"});
  const int cu = t.column("std_error_as_published");
  for (const auto& r : t.rows) {
    if (r.cells[cp] != phantom_id) continue;
    const std::string where = t.path + ":" + std::to_string(r.line);
    set.s_mGy_per_MBq_s[{r.cells[ct], r.cells[cs]}] =
        positive_number(r.cells[cv], where, "S_mGy_per_MBq_s");
    if (cu >= 0)
      set.s_u_mGy_per_MBq_s[{r.cells[ct], r.cells[cs]}] =
          positive_number(r.cells[cu], where, "std_error_as_published");
    set.target_mass_g[r.cells[ct]] = positive_number(r.cells[cm], where, "target_mass_g");
    remember(set.sources, r.cells[cs]);
    remember(set.targets, r.cells[ct]);
  }
  const CsvTable m = read_csv(dir + "/" + masses_file);
  const auto [mr, mm] = m.require<2>({"region", "mass_g"});
  for (const auto& r : m.rows)
    set.source_mass_g[r.cells[mr]] =
        positive_number(r.cells[mm], m.path + ":" + std::to_string(r.line), "mass_g");
}

void load_olinda(SValueSet& set, const std::string& dir, const std::string& matrix_file,
                 const std::string& phantom_label) {
  const std::string masses_file = "svalues/olinda_icrp89_phantom_masses_from_cas_templates.csv";
  set.files = {matrix_file, masses_file};
  // Matrix: rows = targets, columns = sources (OLINDA short names), mGy/(MBq s).
  const CsvTable t = read_csv(dir + "/" + matrix_file);
  for (size_t c = 1; c < t.header.size(); ++c) remember(set.sources, trim(t.header[c]));
  for (const auto& r : t.rows) {
    const std::string target = trim(r.cells[0]);
    remember(set.targets, target);
    for (size_t c = 1; c < t.header.size(); ++c)
      set.s_mGy_per_MBq_s[{target, trim(t.header[c])}] = positive_number(
          r.cells[c], t.path + ":" + std::to_string(r.line), "column '" + t.header[c] + "'");
  }
  set.whole_body_source = "Tot Body";
  set.whole_body_target = "Total Body";
  const CsvTable m = read_csv(dir + "/" + masses_file);
  const auto [cp, cr, co, cm] = m.require<4>({"phantom", "role", "organ", "mass_g"});
  for (const auto& r : m.rows) {
    if (r.cells[cp] != phantom_label) continue;
    const double mass = positive_number(r.cells[cm], m.path + ":" + std::to_string(r.line), "mass_g");
    if (mass <= 0) continue;  // organs absent from this phantom (e.g. ovaries of the male)
    (r.cells[cr] == "target" ? set.target_mass_g : set.source_mass_g)[r.cells[co]] = mass;
  }
}

}  // namespace

SValueSet load_svalue_set_data(const std::string& dir, const std::string& name);  // below

SValueSet load_svalue_set(const std::string& dir, const std::string& name) {
  SValueSet set = load_svalue_set_data(dir, name);
  // ICRP 89 reference body masses (OLINDA case templates, "Total Body"); the ICRP 110 voxel
  // phantoms are built to the same reference masses (73 kg male, 60 kg female).
  const bool male = name == "icrp110-am" || name == "icrp89-male";
  const CsvTable m = read_csv(dir + "/svalues/olinda_icrp89_phantom_masses_from_cas_templates.csv");
  for (const auto& r : m.rows)
    if (r.cells[0] == (male ? "ICRP 89 Adult Male" : "ICRP 89 Adult Female") && r.cells[1] == "target" &&
        r.cells[2] == "Total Body")
      set.body_mass_g = positive_number(r.cells[3], m.path + ":" + std::to_string(r.line), "mass_g");
  return set;
}

SValueSet load_svalue_set_data(const std::string& dir, const std::string& name) {
  SValueSet set;
  set.name = name;
  for (const auto& [n, d] : phantoms())
    if (n == name) set.description = d;
  if (set.description.empty())
    throw_input_error("--phantom", "the phantom", name, "one of " + known_phantoms());
  if (name == "icrp110-am")
    load_opendose(set, dir, "ICRP110AM", "svalues/icrp110am_region_masses_from_opendose.csv");
  else if (name == "icrp110-af")
    load_opendose(set, dir, "ICRP110AF", "svalues/icrp110af_region_masses_from_opendose.csv");
  else if (name == "icrp89-male")
    load_olinda(set, dir, "svalues/pytheranostics_Lu177-Male-Svalues_ICRP89_OLINDA.csv",
                "ICRP 89 Adult Male");
  else
    load_olinda(set, dir, "svalues/pytheranostics_Lu177-Female-Svalues_ICRP89_OLINDA.csv",
                "ICRP 89 Adult Female");
  return set;
}

std::map<std::string, VoiRegionMap> load_voi_region_map(const std::string& dir,
                                                        const std::string& set_name) {
  const CsvTable t = read_csv(dir + "/svalues/voi_region_map.csv");
  const auto [cv, cs, cr, ct, cf] =
      t.require<5>({"voi", "svalue_set", "source_regions", "target_region", "voi_mass_fraction"});
  std::map<std::string, VoiRegionMap> out;
  for (const auto& r : t.rows) {
    if (r.cells[cs] != set_name) continue;
    VoiRegionMap m;
    std::string rest = r.cells[cr];
    for (size_t pos; (pos = rest.find(';')) != std::string::npos; rest = rest.substr(pos + 1))
      m.source_regions.push_back(trim(rest.substr(0, pos)));
    m.source_regions.push_back(trim(rest));
    m.target_region = r.cells[ct];
    m.voi_mass_fraction =
        positive_number(r.cells[cf], t.path + ":" + std::to_string(r.line), "voi_mass_fraction");
    out[r.cells[cv]] = m;
  }
  return out;
}

SelfS self_s_value(const SValueSet& set, const VoiRegionMap& map) {
  const auto mt = set.target_mass_g.find(map.target_region);
  if (mt == set.target_mass_g.end())
    throw InputError("S-value set " + set.name + ": no phantom mass for region '" +
                     map.target_region + "'");
  double s = 0;
  if (map.source_regions.size() == 1) {
    s = set.s(map.target_region, map.source_regions[0]);
  } else {
    double m_sum = 0;
    for (const auto& src : map.source_regions) {
      const auto ms = set.source_mass_g.find(src);
      if (ms == set.source_mass_g.end())
        throw InputError("S-value set " + set.name + ": no phantom mass for source '" + src + "'");
      m_sum += ms->second;
      s += ms->second * set.s(map.target_region, src);
    }
    s /= m_sum;
  }
  return {s, mt->second, mt->second * map.voi_mass_fraction};
}

SValueSet load_user_svalue_table(const std::string& path) {
  const CsvTable t = read_csv(path);
  const int ct = t.column("target"), cs = t.column("source"), cv = t.column("s_mGy_per_MBq_s"),
            cm = t.column("target_mass_g"), cu = t.column("s_u_mGy_per_MBq_s"),
            csm = t.column("source_mass_g");
  for (const char* required : {"target", "source", "s_mGy_per_MBq_s", "target_mass_g"})
    if (t.column(required) < 0)
      throw InputError(path + ": header: the required column '" + std::string(required) +
                       "' is missing; expected target, source, s_mGy_per_MBq_s, target_mass_g "
                       "(optional s_u_mGy_per_MBq_s, source_mass_g)");
  SValueSet set;
  set.name = "user";
  set.description = "user-supplied S-value table " + path;
  set.files = {path};
  auto value = [&](const CsvRow& r, int col, const char* field, bool strictly_positive) {
    const std::string& text = r.cells[static_cast<size_t>(col)];
    double x;
    if (!parse_double(text, x) || !std::isfinite(x) || x < 0 || (strictly_positive && x == 0))
      throw_input_error(path + ":" + std::to_string(r.line), std::string("column ") + field, text,
                        strictly_positive ? "a finite number > 0" : "a finite number >= 0");
    return x;
  };
  for (const auto& r : t.rows) {
    const std::string target = r.cells[static_cast<size_t>(ct)], source = r.cells[static_cast<size_t>(cs)];
    if (target.empty() || source.empty())
      throw_input_error(path + ":" + std::to_string(r.line), "target/source", target + "/" + source,
                        "region names");
    if (set.s_mGy_per_MBq_s.count({target, source}))
      throw_input_error(path + ":" + std::to_string(r.line), "the pair target/source",
                        target + " <- " + source, "each pair once");
    set.s_mGy_per_MBq_s[{target, source}] = value(r, cv, "s_mGy_per_MBq_s", false);
    if (cu >= 0 && !r.cells[static_cast<size_t>(cu)].empty())
      set.s_u_mGy_per_MBq_s[{target, source}] = value(r, cu, "s_u_mGy_per_MBq_s", false);
    const double m = value(r, cm, "target_mass_g", true);
    if (!MASS_RANGE_G.contains(m))
      throw_input_error(path + ":" + std::to_string(r.line), "column target_mass_g", r.cells[static_cast<size_t>(cm)],
                        "a mass " + MASS_RANGE_G.text());
    const double s_value = set.s_mGy_per_MBq_s[{target, source}];
    if (!S_TIMES_MASS_RANGE.contains(s_value * m))
      throw_input_error(path + ":" + std::to_string(r.line), "column s_mGy_per_MBq_s", r.cells[static_cast<size_t>(cv)],
                        "an S-value whose product with target_mass_g (" + format_number(m) + " g) is " +
                            S_TIMES_MASS_RANGE.text());
    if (set.target_mass_g.count(target) && set.target_mass_g[target] != m)
      throw_input_error(path + ":" + std::to_string(r.line), "column target_mass_g", r.cells[static_cast<size_t>(cm)],
                        "the same mass for target " + target + " on every row (" +
                            format_number(set.target_mass_g[target]) + " before)");
    set.target_mass_g[target] = m;
    if (csm >= 0 && !r.cells[static_cast<size_t>(csm)].empty()) {
      set.source_mass_g[source] = value(r, csm, "source_mass_g", true);
      if (!MASS_RANGE_G.contains(set.source_mass_g[source]))
        throw_input_error(path + ":" + std::to_string(r.line), "column source_mass_g",
                          r.cells[static_cast<size_t>(csm)], "a mass " + MASS_RANGE_G.text());
    }
    for (const std::string* n : {&target, &source})
      if (const std::string p = name_problem(*n); !p.empty())
        throw_input_error(path + ":" + std::to_string(r.line), "the region name", *n, "a name (this one is " + p + ")");
    remember(set.sources, source);
    remember(set.targets, target);
  }
  for (const auto& target : set.targets)
    for (const auto& source : set.sources)
      if (!set.s_mGy_per_MBq_s.count({target, source}))
        throw_input_error(path, "the S-value for target " + target + " from source " + source, "missing",
                          "a value for every target from every source (a rectangular table)");
  for (const auto& source : set.sources)
    if (!set.source_mass_g.count(source) && set.target_mass_g.count(source))
      set.source_mass_g[source] = set.target_mass_g[source];
  if (set.target_mass_g.count("whole_body") &&
      std::find(set.sources.begin(), set.sources.end(), "whole_body") != set.sources.end()) {
    set.whole_body_source = set.whole_body_target = "whole_body";
    set.body_mass_g = set.target_mass_g["whole_body"];
  }
  return set;
}

std::map<std::string, VoiRegionMap> user_voi_region_map(const SValueSet& set) {
  std::map<std::string, VoiRegionMap> out;
  for (const auto& source : set.sources)
    if (set.target_mass_g.count(source)) out[source] = VoiRegionMap{{source}, source, 1.0};
  return out;
}

bool is_tumour_voi(const std::string& voi) {
  for (const char* prefix : {"tumour_", "tumor_", "lesion_"})
    if (voi.rfind(prefix, 0) == 0 && voi.size() > std::char_traits<char>::length(prefix)) return true;
  return false;
}

namespace {
nlohmann::json read_spheres(const std::string& dir) {
  const std::string path = dir + "/spheres/pytheranostics_spheres.json";
  std::ifstream in(path);
  if (!in) throw InputError(path + ": cannot open the sphere S-value table");
  nlohmann::json j;
  in >> j;
  return j;
}
}  // namespace

std::vector<std::string> sphere_compositions(const std::string& dir) {
  const nlohmann::json j = read_spheres(dir);
  std::vector<std::string> out;
  for (auto it = j.begin(); it != j.end(); ++it) out.push_back(it.key());
  return out;
}

SphereTable load_sphere_table(const std::string& dir, const std::string& composition) {
  const auto j = read_spheres(dir);
  if (!j.contains(composition)) {
    std::string known;
    for (auto it = j.begin(); it != j.end(); ++it) known += (known.empty() ? "" : ", ") + it.key();
    throw_input_error("--sphere-composition", "the sphere composition", composition,
                      "one of " + known + " (soft tissue / bone)");
  }
  SphereTable t;
  t.composition = composition;
  t.mass_g = j.at(composition).at("tumor_mass").get<std::vector<double>>();
  // The table is in Gy / (Bq s): x 1e3 mGy/Gy x 1e6 Bq/MBq -> mGy / (MBq s).
  for (double s : j.at(composition).at("total_s_value").get<std::vector<double>>())
    t.s_mGy_per_MBq_s.push_back(s * 1e9);
  return t;
}

double SphereTable::s_at(double m, const std::string& where) const {
  if (!(m >= mass_g.front() && m <= mass_g.back()))
    throw_input_error(where, "the tumour mass (g)", format_number(m),
                      "a mass within the sphere table " + format_number(mass_g.front()) + " to " +
                          format_number(mass_g.back()) + " g (composition " + composition +
                          "); use --tumour-method local outside it");
  const auto it = std::lower_bound(mass_g.begin(), mass_g.end(), m);
  const size_t i = static_cast<size_t>(it - mass_g.begin());
  if (mass_g[i] == m) return s_mGy_per_MBq_s[i];
  const double x0 = std::log(mass_g[i - 1]), x1 = std::log(mass_g[i]);
  const double y0 = std::log(s_mGy_per_MBq_s[i - 1]), y1 = std::log(s_mGy_per_MBq_s[i]);
  return std::exp(y0 + (y1 - y0) * (std::log(m) - x0) / (x1 - x0));
}

double sphere_density_g_per_mL(const std::string& composition) {
  // Densities assigned to the compositions of the sphere table (data/PROVENANCE.md §3).
  if (composition == "100%/0%") return 1.03;
  if (composition == "75%/25%") return 1.255;
  if (composition == "50%/50%") return 1.48;
  if (composition == "25%/75%") return 1.7;
  if (composition == "0%/100%") return 1.92;
  throw_input_error("--sphere-composition", "the sphere composition", composition,
                    "one of 100%/0%, 75%/25%, 50%/50%, 25%/75%, 0%/100%");
}

}  // namespace lutdose
