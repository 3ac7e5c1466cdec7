// Binding of the reference data (docs/python.md): the phantoms with their S-values and masses,
// the VOI names they map, the tissue parameters and the limits, as the engine loaded them.
#include <pybind11/stl.h>

#include "bindings.h"
#include "convert.h"
#include "lutdose/dosimetry/svalues.h"

namespace lutdose_py {

namespace {

// Long columns of every S-value of every phantom: phantom, target, source, S [mGy/(MBq s)], u(S).
py::dict svalue_columns(const lutdose::ReferenceData& ref) {
  py::list phantom, target, source;
  std::vector<double> s, u;
  for (const auto& p : lutdose::phantoms()) {
    const auto& set = ref.phantom(p.first)->set;
    for (const auto& [key, value] : set.s_mGy_per_MBq_s) {
      phantom.append(p.first);
      target.append(key.first);
      source.append(key.second);
      s.push_back(value);
      const auto it = set.s_u_mGy_per_MBq_s.find(key);
      u.push_back(it == set.s_u_mGy_per_MBq_s.end() ? std::numeric_limits<double>::quiet_NaN() : it->second);
    }
  }
  py::dict d;
  d["phantom"] = phantom;
  d["target"] = target;
  d["source"] = source;
  d["s_mGy_per_MBq_s"] = numpy_of(s);
  d["s_u_mGy_per_MBq_s"] = numpy_of(u);
  return d;
}

// One row per phantom (name, description, reference body mass [g]) and per target region mass [g].
py::tuple phantom_columns(const lutdose::ReferenceData& ref) {
  py::list name, description, mass_phantom, region;
  std::vector<double> body_g, mass_g;
  for (const auto& p : lutdose::phantoms()) {
    const auto& set = ref.phantom(p.first)->set;
    name.append(p.first);
    description.append(p.second);
    body_g.push_back(set.body_mass_g);
    for (const auto& [r, m] : set.target_mass_g) {
      mass_phantom.append(p.first);
      region.append(r);
      mass_g.push_back(m);
    }
  }
  py::dict phantoms, masses;
  phantoms["phantom"] = name;
  phantoms["description"] = description;
  phantoms["body_mass_g"] = numpy_of(body_g);
  masses["phantom"] = mass_phantom;
  masses["region"] = region;
  masses["mass_g"] = numpy_of(mass_g);
  return py::make_tuple(phantoms, masses);
}

// The VOI names each phantom maps to its regions.
py::dict voi_map_columns(const lutdose::ReferenceData& ref) {
  py::list phantom, voi, sources, target;
  std::vector<double> fraction;
  for (const auto& p : lutdose::phantoms())
    for (const auto& [name, m] : ref.phantom(p.first)->voi_map) {
      phantom.append(p.first);
      voi.append(name);
      std::string joined;
      for (const auto& s : m.source_regions) joined += (joined.empty() ? "" : "; ") + s;
      sources.append(joined);
      target.append(m.target_region);
      fraction.push_back(m.voi_mass_fraction);
    }
  py::dict d;
  d["phantom"] = phantom;
  d["voi"] = voi;
  d["source_regions"] = sources;
  d["target_region"] = target;
  d["voi_mass_fraction"] = numpy_of(fraction);
  return d;
}

py::dict tissue_and_limit_columns(const lutdose::ReferenceData& ref, py::dict out) {
  py::list pattern, tissue, source;
  std::vector<double> ab, trep;
  for (const auto& [p, t] : ref.tissue().entries()) {
    pattern.append(p);
    tissue.append(t.tissue);
    ab.push_back(t.alpha_beta_Gy);
    trep.push_back(t.repair_half_time_h);
    source.append(t.source);
  }
  py::dict tissues;
  tissues["target"] = pattern;
  tissues["tissue"] = tissue;
  tissues["alpha_beta_Gy"] = numpy_of(ab);
  tissues["repair_half_time_h"] = numpy_of(trep);
  tissues["source"] = source;
  py::list lt, lq, ls;
  std::vector<double> lv;
  for (const auto& l : ref.limits()) {
    lt.append(l.target_pattern);
    lq.append(l.quantity);
    lv.push_back(l.value);
    ls.append(l.source);
  }
  py::dict limits;
  limits["target"] = lt;
  limits["quantity"] = lq;
  limits["value_Gy"] = numpy_of(lv);
  limits["source"] = ls;
  out["tissues"] = tissues;
  out["limits"] = limits;
  return out;
}

py::dict reference_data(const std::string& data_dir) {
  const auto dir = data_dir_of(data_dir);
  const auto& ref = reference_of(dir);
  py::dict out;
  const auto pm = phantom_columns(ref);
  out["data_dir"] = dir;
  out["phantoms"] = pm[0];
  out["masses"] = pm[1];
  out["svalues"] = svalue_columns(ref);
  out["voi_map"] = voi_map_columns(ref);
  return tissue_and_limit_columns(ref, out);
}

}  // namespace

void bind_reference(py::module_& m) { m.def("_reference_data", &reference_data, py::arg("data_dir")); }

}  // namespace lutdose_py
