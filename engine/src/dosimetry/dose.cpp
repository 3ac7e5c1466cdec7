#include "lutdose/nan.h"
#include "lutdose/dosimetry/dose.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <set>
#include <stdexcept>

#include "lutdose/error.h"
#include "lutdose/io/input_file.h"

namespace lutdose {

std::string to_string(TumourMethod m) { return m == TumourMethod::sphere ? "sphere" : "local"; }

TumourMethod parse_tumour_method(const std::string& s) {
  if (s == "sphere") return TumourMethod::sphere;
  if (s == "local") return TumourMethod::local_deposition;
  throw_input_error("--tumour-method", "the tumour method", s, "sphere or local");
}

std::string to_string(MarrowMethod m) {
  switch (m) {
    case MarrowMethod::none: return "none";
    case MarrowMethod::blood: return "blood";
    case MarrowMethod::image: return "image";
  }
  return "none";
}

std::optional<MarrowMethod> parse_marrow_method(const std::string& text) {
  for (MarrowMethod m : {MarrowMethod::none, MarrowMethod::blood, MarrowMethod::image})
    if (text == to_string(m)) return m;
  return std::nullopt;
}

std::string to_string(MassScaling m) {
  return m == MassScaling::electron_photon ? "electron-photon" : "inverse-mass";
}

MassScaling parse_mass_scaling(const std::string& s) {
  if (s == "electron-photon") return MassScaling::electron_photon;
  if (s == "inverse-mass") return MassScaling::inverse_mass;
  throw_input_error("--mass-scaling", "the mass scaling", s, "electron-photon or inverse-mass");
}

std::string to_string(CrossScaling m) { return m == CrossScaling::none ? "none" : "body-mass"; }

CrossScaling parse_cross_scaling(const std::string& s) {
  if (s == "none") return CrossScaling::none;
  if (s == "body-mass") return CrossScaling::body_mass;
  throw_input_error("--cross-scaling", "the cross-dose scaling", s, "none or body-mass");
}

namespace {

// mGy/(MBq s) x MBq h -> Gy: 3600 s/h x 1e-3 Gy/mGy
constexpr double GY_PER_S_UNIT_MBQ_H = 3.6;
// Relative step of the central differences that give the GUM sensitivities. The dose is smooth
// (products, powers and sums) in every input, so the truncation error is ~h^2 = 1e-12 relative.
constexpr double SENSITIVITY_STEP = 1e-6;

bool is_air(const std::string& region) { return region.rfind("Air ", 0) == 0; }

}  // namespace

DoseCalculator::DoseCalculator(const std::string& data_dir, const Nuclide& nuclide, DoseOptions options)
    : nuclide_(nuclide), options_(std::move(options)) {
  check_options();
  if (options_.phantom == "user" || !options_.svalue_table.empty()) {
    if (options_.svalue_table.empty())
      throw_input_error("--phantom", "the phantom", "user", "an S-value table given with --svalues");
    options_.phantom = "user";
    svalues_ = load_indexed_user_svalue_table(options_.svalue_table);
  } else {
    svalues_ = std::make_shared<const IndexedSValueSet>(load_svalue_set(data_dir, options_.phantom),
                                                        load_voi_region_map(data_dir, options_.phantom));
  }
  spheres_ = load_sphere_table(data_dir, options_.sphere_composition);
  check_set();
}

DoseCalculator::DoseCalculator(std::shared_ptr<const IndexedSValueSet> svalues, SphereTable spheres,
                               const Nuclide& nuclide, DoseOptions options)
    : nuclide_(nuclide), options_(std::move(options)), svalues_(std::move(svalues)), spheres_(std::move(spheres)) {
  if (!svalues_) throw std::logic_error("DoseCalculator: no S-value set");
  check_options();
  if (!options_.svalue_table.empty()) options_.phantom = "user";
  check_set();
}

void DoseCalculator::check_options() const {
  if (!(options_.organ_density_g_per_mL > 0) || !std::isfinite(options_.organ_density_g_per_mL))
    throw_input_error("--density-g-per-mL", "the organ density",
                      format_number(options_.organ_density_g_per_mL), "a density > 0 g/mL");
  if (nuclide_.name != "Lu-177")
    throw_input_error("nuclide", "the nuclide", nuclide_.name,
                      "Lu-177 (the S-value sets shipped are for Lu-177)");
}

void DoseCalculator::check_set() const {
  // A body mass given is checked whether or not a scaling uses it: it is recorded in the results
  // (review of 0.15: -70 kg was written as body_mass_g -70000 without cross-scaling by body mass).
  if (!std::isnan(options_.body_mass_g) && !MASS_RANGE_G.contains(options_.body_mass_g))
    throw_input_error("--body-mass-kg (patient.mass_kg in a case file)", "the patient's body mass",
                      format_number(options_.body_mass_g / 1000.0) + " kg",
                      "a body mass from " + format_number(MASS_RANGE_G.lo / 1000.0) + " to " +
                          format_number(MASS_RANGE_G.hi / 1000.0) + " kg (" + MASS_RANGE_G.reason + ")");
  if (options_.cross_scaling == CrossScaling::body_mass &&
      !(options_.body_mass_g > 0 && std::isfinite(options_.body_mass_g)))
    throw_input_error("--cross-scaling body-mass (dose.cross_scaling)", "the patient's body mass",
                      std::isnan(options_.body_mass_g) ? "missing" : format_number(options_.body_mass_g) + " g",
                      "a body mass > 0 (--body-mass-kg, or patient.mass_kg in a case file)");
  if (options_.cross_scaling == CrossScaling::body_mass && !(svalue_set().body_mass_g > 0))
    throw_input_error("cross-dose scaling body-mass", "the phantom body mass of " + svalue_set().name, "unknown",
                      "an S-value set with a whole_body region");
}

std::vector<BudgetTerm> uncertainty_budget(const TargetDose& t, const std::vector<std::string>& names,
                                           const std::vector<double>& u_rel, const std::vector<double>& dof) {
  std::vector<BudgetTerm> b;
  for (size_t i = 0; i < t.sensitivity_Gy.size() && i < names.size(); ++i)
    if (t.sensitivity_Gy[i] != 0)
      b.push_back({names[i], std::abs(t.sensitivity_Gy[i]) * u_rel[i],
                   i < dof.size() ? dof[i] : std::numeric_limits<double>::infinity()});
  // largest first; unknown terms (NaN) last
  std::stable_sort(b.begin(), b.end(), [](const BudgetTerm& x, const BudgetTerm& y) {
    if (std::isnan(x.u_Gy) || std::isnan(y.u_Gy)) return !std::isnan(x.u_Gy) && std::isnan(y.u_Gy);
    return x.u_Gy > y.u_Gy;
  });
  return b;
}

void combine_uncertainty(const std::vector<double>& sensitivity_Gy, const std::vector<std::string>& names,
                         const std::vector<double>& u_rel, const std::vector<double>& dof, double dose_Gy,
                         double& u_Gy, double& u_dof, Interval& ci68, Interval& ci95,
                         std::vector<std::string>& u_missing) {
  std::vector<double> parts, part_dof;
  parts.reserve(sensitivity_Gy.size());
  part_dof.reserve(sensitivity_Gy.size());
  u_missing.clear();
  for (size_t k = 0; k < sensitivity_Gy.size(); ++k) {
    if (sensitivity_Gy[k] == 0) continue;
    if (std::isnan(u_rel[k])) {
      u_missing.push_back(names[k]);
      continue;
    }
    parts.push_back(sensitivity_Gy[k] * u_rel[k]);
    part_dof.push_back(k < dof.size() ? dof[k] : std::numeric_limits<double>::infinity());
  }
  double u2 = 0;
  for (double p : parts) u2 += p * p;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  u_Gy = u_missing.empty() ? std::sqrt(u2) : nan;
  u_dof = u_missing.empty() ? welch_satterthwaite(parts, part_dof) : nan;
  ci68 = nonnegative_coverage_interval(dose_Gy, u_Gy, u_dof, 0.682689492137);  // +-1 u for infinite dof
  ci95 = nonnegative_coverage_interval(dose_Gy, u_Gy, u_dof, 0.95);
}

std::vector<std::string> DoseCalculator::mapped_vois() const {
  std::vector<std::string> v;
  for (const auto& [name, m] : voi_map())
    if (name != "whole_body") v.push_back(name);
  return v;
}

double DoseCalculator::organ_self_s(const std::string& voi, double m) const {
  const SelfS s = self_s_value(svalue_set(), voi_map().at(voi));
  if (options_.mass_scaling == MassScaling::inverse_mass)
    return s.s_ref_mGy_per_MBq_s * s.reference_mass_g / m;
  // Electron part: full local absorption Delta_e/m; photon part: the rest of the phantom's self-S,
  // scaled as m^(-2/3) (methods.md §6.3). A phantom self-S below Delta_e/m_ref (electrons escaping
  // a small region) has no photon part to separate and is scaled by inverse mass.
  const double s_e_ref = nuclide_.local_deposition_s_mGy_per_MBq_s(s.reference_mass_g);
  if (s.s_ref_mGy_per_MBq_s < s_e_ref) return s.s_ref_mGy_per_MBq_s * s.reference_mass_g / m;
  return nuclide_.local_deposition_s_mGy_per_MBq_s(m) +
         (s.s_ref_mGy_per_MBq_s - s_e_ref) * std::pow(s.reference_mass_g / m, 2.0 / 3.0);
}

double DoseCalculator::self_s_u_rel(const std::string& voi) const {
  if (!voi_map().count(voi)) return 0.0;
  const auto& m = voi_map().at(voi);
  double s = 0, u = 0;  // the self-S and its published standard error, averaged over the regions
  const double n = static_cast<double>(m.source_regions.size());
  for (const auto& r : m.source_regions) {
    const auto key = std::make_pair(m.target_region, r);
    s += svalue_set().s(m.target_region, r) / n;
    if (svalue_set().s_u_mGy_per_MBq_s.count(key)) u += svalue_set().s_u_mGy_per_MBq_s.at(key) / n;
  }
  return s > 0 ? u / s : 0.0;
}

double DoseCalculator::tumour_self_s(double m, const std::string& where) const {
  return options_.tumour_method == TumourMethod::sphere
             ? spheres_.s_at(m, where)
             : nuclide_.local_deposition_s_mGy_per_MBq_s(m);
}

namespace {

// A phantom source region with its position among the set's sources and a factor: the weight of
// a VOI's region, or the mass of an organ region in the remainder.
struct RegionRef {
  std::string name;
  size_t index = IndexedSValueSet::npos;
  double factor = 0;
};

// A source of activity: a VOI (its phantom regions, weighted by phantom mass) or the remainder.
struct Source {
  std::string label;
  std::vector<RegionRef> regions;  // a VOI's regions and their weights (empty for the remainder)
  int voi = -1;          // index into the inputs, -1 for the remainder
  bool tumour = false;
};

// A target: an organ VOI, a tumour VOI or a region of the set.
struct Target {
  TargetDose d;
  int voi = -1;
  std::string region;
  bool volume_mass = false;  // mass derived from the volume (so the volume input scales it)
};

// Self-S of an organ VOI as a function of mass, prepared once (the phantom lookups are slow):
// s(m) = a / m + b (m_ref/m)^(2/3), a and b from the scaling rule (organ_self_s).
struct SelfScaling {
  double a = 0, b = 0, m_ref = 1;
};

// Relative input factors of the dose function (all 1 at the nominal values).
struct Factors {
  std::vector<double> fit, rc, volume, svalue;
  std::map<std::string, double> cf;
};

// A named independent input of the GUM budget with its relative standard uncertainty.
struct GumInput {
  std::string name;
  double u_rel;  // NaN: unknown
  std::function<double&(Factors&)> factor;
  double dof = std::numeric_limits<double>::infinity();
};

}  // namespace

// One call of compute(), step by step: the VOIs classified, the targets and sources, the fixed
// (cross) part of the S matrix, then the dose as a function of relative input factors, evaluated
// at the nominal inputs and around them for the GUM sensitivities.
class DoseCalculator::Cycle {
 public:
  Cycle(const DoseCalculator& calc, const std::vector<DoseSourceInput>& vois, const std::string& where)
      : c_(calc), vois_(vois), where_(where), n_vois_(vois.size()) {
    classify_vois();
    check_no_overlap();
    add_voi_targets();
    add_sources();
    add_region_targets();
    build_cross_matrix();
    prepare_self_scaling();
  }

  CycleDoses doses(double administered_MBq);

 private:
  const DoseCalculator& c_;
  const std::vector<DoseSourceInput>& vois_;
  const std::string& where_;
  const size_t n_vois_;
  CycleDoses out_;
  std::vector<std::string> kind_;  // "organ", "tumour", "whole_body"
  int whole_body_ = -1;
  std::vector<Target> targets_;
  std::vector<double> voi_mass_;
  std::vector<bool> voi_mass_from_volume_;
  std::vector<Source> sources_;
  std::set<std::string> organ_regions_;  // phantom source regions covered by organ VOIs
  std::map<std::string, double> organ_region_mass_;
  std::vector<RegionRef> remainder_regions_;  // the organ regions with their masses, for the remainder
  RegionRef whole_body_region_;               // the set's whole-body source (remainder only)
  double m_rb_ = NaN, m_wb_ = NaN;
  std::vector<std::vector<double>> cross_;  // [target][source], S x cross-scaling factor
  std::vector<int> self_source_;            // per target: its own source, -1 if none
  std::vector<SelfScaling> self_scaling_;   // per VOI (organs only)

  void classify_vois();
  void check_no_overlap() const;
  void add_voi_targets();
  void set_tumour_self_s(Target& t, const DoseSourceInput& v) const;
  void set_organ_self_s(Target& t, const DoseSourceInput& v) const;
  void add_sources();
  double s_of(const std::string& target_region, size_t target, const RegionRef& source) const;
  double s_region(const std::string& target_region, size_t target, const Source& s) const;
  void add_region_targets();
  void build_cross_matrix();
  void prepare_self_scaling();
  Factors nominal_factors();
  double tia_of(const Factors& f, size_t i) const;
  std::vector<double> eval(const Factors& f, std::vector<std::vector<double>>* contributions) const;
  std::vector<GumInput> gum_inputs(const Factors& nominal) const;
  std::vector<std::vector<double>> sensitivities(const std::vector<GumInput>& inputs, const Factors& nominal);
};

// The kind of each VOI; throws for a name the set cannot map.
void DoseCalculator::Cycle::classify_vois() {
  kind_.resize(n_vois_);
  for (size_t i = 0; i < n_vois_; ++i) {
    const auto& v = vois_[i];
    if (is_tumour_voi(v.voi)) {
      kind_[i] = "tumour";
    } else if (v.voi == "whole_body" && !c_.svalue_set().whole_body_source.empty()) {
      kind_[i] = "whole_body";
      whole_body_ = static_cast<int>(i);
    } else if (c_.voi_map().count(v.voi)) {
      kind_[i] = "organ";
    } else if (v.voi == "whole_body") {
      throw_input_error(where_, "the VOI", "whole_body",
                        "an S-value set with a whole-body source for the remainder-of-body "
                        "correction (icrp89-male, icrp89-female, or a user table with whole_body); " +
                            c_.svalue_set().name + " has none");
    } else {
      std::string names;
      for (const auto& n : c_.mapped_vois()) names += (names.empty() ? "" : ", ") + n;
      throw_input_error(where_, "the VOI name", v.voi,
                        "a VOI that S-value set " + c_.svalue_set().name + " can map: " + names +
                            (c_.svalue_set().whole_body_source.empty() ? "" : ", whole_body") +
                            ", or tumour_*/tumor_*/lesion_* for tumours");
    }
  }
}

// Overlapping organ VOIs would count activity twice.
void DoseCalculator::Cycle::check_no_overlap() const {
  for (size_t a = 0; a < n_vois_; ++a)
    for (size_t b = a + 1; b < n_vois_; ++b) {
      if (kind_[a] != "organ" || kind_[b] != "organ") continue;
      const auto& ma = c_.voi_map().at(vois_[a].voi);
      const auto& mb = c_.voi_map().at(vois_[b].voi);
      bool shared = false;
      for (const auto& ra : ma.source_regions)
        for (const auto& rb : mb.source_regions) shared = shared || ra == rb;
      if (shared && ma.voi_mass_fraction + mb.voi_mass_fraction > 1.0 + 1e-9)
        throw_input_error(where_, "the VOIs", vois_[a].voi + " and " + vois_[b].voi,
                          "VOIs that do not overlap (both contain the same phantom region)");
    }
}

// Targets for the VOIs, with their masses.
void DoseCalculator::Cycle::add_voi_targets() {
  const auto& options = c_.options_;
  voi_mass_.assign(n_vois_, NaN);
  voi_mass_from_volume_.assign(n_vois_, false);
  for (size_t i = 0; i < n_vois_; ++i) {
    const auto& v = vois_[i];
    if (kind_[i] == "whole_body") continue;
    Target t;
    t.voi = static_cast<int>(i);
    t.d.target = v.voi;
    t.d.kind = kind_[i];
    double density = options.organ_density_g_per_mL;
    if (kind_[i] == "tumour" && options.tumour_method == TumourMethod::sphere)
      density = sphere_density_g_per_mL(options.sphere_composition);
    if (!std::isnan(v.mean_mass_g)) {
      t.d.mass_g = v.mean_mass_g;
      t.d.mass_source = "mass_g";
    } else if (!std::isnan(v.mean_volume_mL)) {
      t.d.mass_g = v.mean_volume_mL * density;
      t.d.mass_source = "volume_mL x " + format_number(density) + " g/mL";
      t.volume_mass = true;
    }
    if (kind_[i] == "tumour")
      set_tumour_self_s(t, v);
    else
      set_organ_self_s(t, v);
    voi_mass_[i] = t.d.mass_g;
    voi_mass_from_volume_[i] = t.volume_mass;
    targets_.push_back(std::move(t));
  }
}

void DoseCalculator::Cycle::set_tumour_self_s(Target& t, const DoseSourceInput& v) const {
  if (t.d.mass_source.empty())
    throw InputError(where_ + ", VOI " + v.voi + ": a tumour needs mass_g or volume_mL; expected one of them");
  if (c_.options_.tumour_method == TumourMethod::sphere) {
    t.d.method = "self-dose only: sphere S-value, log-log interpolation in mass";
    t.d.region = "sphere " + c_.options_.sphere_composition + " soft tissue/bone";
  } else {
    t.d.method = "self-dose only: local deposition of the electron energy";
    t.d.region = "local deposition";
  }
  t.d.s_mGy_per_MBq_s = c_.tumour_self_s(t.d.mass_g, where_ + ", VOI " + v.voi);
}

void DoseCalculator::Cycle::set_organ_self_s(Target& t, const DoseSourceInput& v) const {
  const auto& m = c_.voi_map().at(v.voi);
  const SelfS s = self_s_value(c_.svalue_set(), m);
  if (t.d.mass_source.empty()) {
    t.d.mass_g = s.default_voi_mass_g;
    t.d.mass_source = "phantom reference mass";
  }
  t.region = m.target_region;
  t.d.region = m.target_region;
  t.d.reference_mass_g = s.reference_mass_g;
  t.d.s_reference_mGy_per_MBq_s = s.s_ref_mGy_per_MBq_s;
  t.d.s_mGy_per_MBq_s = c_.organ_self_s(v.voi, t.d.mass_g);
  t.d.method = "self: phantom self-S scaled to the mass (" + to_string(c_.options_.mass_scaling) +
               "); cross: phantom S (" + to_string(c_.options_.cross_scaling) + ")";
}

// Sources: the VOIs (an organ's phantom regions weighted by phantom mass) and, with a whole_body
// VOI, the remainder of the body.
void DoseCalculator::Cycle::add_sources() {
  const auto& set = c_.svalue_set();
  const IndexedSValueSet& set_index = *c_.svalues_;
  for (size_t i = 0; i < n_vois_; ++i) {
    if (kind_[i] == "whole_body") continue;
    Source s;
    s.label = vois_[i].voi;
    s.voi = static_cast<int>(i);
    s.tumour = kind_[i] == "tumour";
    if (!s.tumour) {
      const auto& m = c_.voi_map().at(vois_[i].voi);
      if (m.source_regions.size() == 1) {
        s.regions.push_back({m.source_regions[0], set_index.source_index(m.source_regions[0]), 1.0});
        organ_regions_.insert(m.source_regions[0]);
        organ_region_mass_[m.source_regions[0]] = set.target_mass_g.at(m.target_region);
      } else {
        double sum = 0;
        for (const auto& r : m.source_regions) sum += set.source_mass_g.at(r);
        for (const auto& r : m.source_regions) {
          s.regions.push_back({r, set_index.source_index(r), set.source_mass_g.at(r) / sum});
          organ_regions_.insert(r);
          organ_region_mass_[r] = set.source_mass_g.at(r);
        }
      }
    }
    sources_.push_back(s);
  }
  if (whole_body_ >= 0) {
    m_wb_ = set.target_mass_g.count(set.whole_body_target) ? set.target_mass_g.at(set.whole_body_target)
                                                           : set.body_mass_g;
    m_rb_ = m_wb_;
    for (const auto& [r, m] : organ_region_mass_) {
      m_rb_ -= m;
      remainder_regions_.push_back({r, set_index.source_index(r), m});
    }
    whole_body_region_ = {set.whole_body_source, set_index.source_index(set.whole_body_source), 1.0};
    Source rb;
    rb.label = "remainder";
    sources_.push_back(rb);
  } else {
    out_.notes.push_back("no whole_body VOI: activity outside the VOIs (remainder of body) is not a source");
  }
  if (std::any_of(kind_.begin(), kind_.end(), [](const std::string& k) { return k == "tumour"; }))
    out_.notes.push_back("tumours: self-dose only; their cross-dose to organs and the organs' to them "
                         "are not included");
}

// S(target region <- source region) [mGy/(MBq s)] by positions (`target`: of the target region);
// by names, which throws naming both, when the set has no value.
double DoseCalculator::Cycle::s_of(const std::string& target_region, size_t target, const RegionRef& source) const {
  const double v = c_.svalues_->s_dense(target, source.index);
  return std::isnan(v) ? c_.svalue_set().s(target_region, source.name) : v;
}

// S(target region <- source), phantom values [mGy/(MBq s)]; `t`: the target region's index.
double DoseCalculator::Cycle::s_region(const std::string& target_region, size_t t, const Source& s) const {
  if (s.voi < 0) {  // remainder (Cloutier): S(T<-WB) m_WB/m_RB - sum_h S(T<-h) m_h/m_RB
    double v = s_of(target_region, t, whole_body_region_) * m_wb_ / m_rb_;
    for (const auto& r : remainder_regions_) v -= s_of(target_region, t, r) * r.factor / m_rb_;
    return v;
  }
  double v = 0;
  for (const auto& r : s.regions) v += r.factor * s_of(target_region, t, r);
  return v;
}

// Regions of the set reported as targets: all but air, those of the VOIs, and those that
// overlap a VOI (e.g. both kidneys when one kidney is a VOI).
void DoseCalculator::Cycle::add_region_targets() {
  std::set<std::string> voi_target_regions;
  for (const auto& t : targets_)
    if (!t.region.empty()) voi_target_regions.insert(t.region);
  std::set<std::string> excluded = voi_target_regions;
  for (const auto& [name, m] : c_.voi_map()) {
    bool overlaps = false;
    for (const auto& r : m.source_regions) overlaps = overlaps || organ_regions_.count(r);
    if (overlaps) excluded.insert(m.target_region);
  }
  const std::string method = "cross-dose from the VOIs" + std::string(whole_body_ >= 0 ? " and the remainder" : "") +
                             ", phantom S (" + to_string(c_.options_.cross_scaling) + ")";
  const auto& masses = c_.svalue_set().target_mass_g;
  targets_.reserve(targets_.size() + c_.svalue_set().targets.size());
  for (const auto& region : c_.svalue_set().targets) {
    if (is_air(region) || excluded.count(region)) continue;
    Target& t = targets_.emplace_back();
    t.region = region;
    t.d.target = region;
    t.d.kind = "region";
    t.d.region = region;
    const auto mass = masses.find(region);
    t.d.mass_g = mass != masses.end() ? mass->second : NaN;
    t.d.mass_source = "phantom";
    t.d.method = method;
  }
}

// The cross part of the S matrix, fixed; self terms depend on the mass and are computed in eval.
void DoseCalculator::Cycle::build_cross_matrix() {
  const double cross_factor = c_.options_.cross_scaling == CrossScaling::body_mass
                                  ? c_.svalue_set().body_mass_g / c_.options_.body_mass_g
                                  : 1.0;
  const size_t nt = targets_.size(), ns = sources_.size();
  cross_.assign(nt, std::vector<double>(ns, 0.0));
  self_source_.assign(nt, -1);
  for (size_t ti = 0; ti < nt; ++ti) {
    const auto& t = targets_[ti];
    const size_t t_index = c_.svalues_->target_index(t.region);
    for (size_t si = 0; si < ns; ++si) {
      const auto& s = sources_[si];
      if (t.voi >= 0 && s.voi == t.voi) {
        self_source_[ti] = static_cast<int>(si);
        continue;
      }
      if (t.d.kind == "tumour" || s.tumour) continue;  // tumours: self only
      if (t.voi >= 0 && s.voi >= 0 && c_.voi_map().at(vois_[static_cast<size_t>(s.voi)].voi).source_regions ==
                                         c_.voi_map().at(vois_[static_cast<size_t>(t.voi)].voi).source_regions)
        continue;  // two VOIs of one phantom region (one OLINDA kidney to the other): no cross S
      cross_[ti][si] = s_region(t.region, t_index, s) * cross_factor;
    }
  }
}

// a and b of each organ VOI's s(m) by the scaling rule of organ_self_s.
void DoseCalculator::Cycle::prepare_self_scaling() {
  self_scaling_.assign(n_vois_, SelfScaling{});
  for (size_t i = 0; i < n_vois_; ++i) {
    if (kind_[i] != "organ") continue;
    const SelfS ref = self_s_value(c_.svalue_set(), c_.voi_map().at(vois_[i].voi));
    const double s_e_ref = c_.nuclide_.local_deposition_s_mGy_per_MBq_s(ref.reference_mass_g);
    SelfScaling& sc = self_scaling_[i];
    sc.m_ref = ref.reference_mass_g;
    if (c_.options_.mass_scaling == MassScaling::inverse_mass || ref.s_ref_mGy_per_MBq_s < s_e_ref) {
      sc.a = ref.s_ref_mGy_per_MBq_s * ref.reference_mass_g;
    } else {
      sc.a = s_e_ref * ref.reference_mass_g;
      sc.b = ref.s_ref_mGy_per_MBq_s - s_e_ref;
    }
  }
}

// Every factor 1; also sets the remainder's TIA, which must not be negative.
Factors DoseCalculator::Cycle::nominal_factors() {
  Factors nominal{std::vector<double>(n_vois_, 1.0), std::vector<double>(n_vois_, 1.0),
                  std::vector<double>(n_vois_, 1.0), std::vector<double>(n_vois_, 1.0), {}};
  for (const auto& v : vois_)
    if (!v.calibration.empty()) nominal.cf[v.calibration] = 1.0;
  if (whole_body_ >= 0) {
    double organs = 0;
    for (size_t i = 0; i < n_vois_; ++i)
      if (kind_[i] == "organ") organs += vois_[i].tia_MBq_h;
    out_.remainder_tia_MBq_h = vois_[static_cast<size_t>(whole_body_)].tia_MBq_h - organs;
    if (out_.remainder_tia_MBq_h < 0)
      throw_input_error(where_, "the whole-body TIA",
                        format_number(vois_[static_cast<size_t>(whole_body_)].tia_MBq_h) + " MBq h",
                        "at least the sum of the organ TIAs (" + format_number(organs) + " MBq h)");
  }
  return nominal;
}

double DoseCalculator::Cycle::tia_of(const Factors& f, size_t i) const {
  const auto& v = vois_[i];
  double tia = v.tia_MBq_h * f.fit[i] / f.rc[i];
  if (!v.calibration.empty()) tia /= f.cf.at(v.calibration);
  if (f.volume[i] != 1.0 && v.dln_rc_dln_volume != 0) tia /= std::pow(f.volume[i], v.dln_rc_dln_volume);
  return tia;
}

// The dose function of relative input factors [Gy per target]; with `contributions`, also each
// source's part [target][source].
std::vector<double> DoseCalculator::Cycle::eval(const Factors& f,
                                                std::vector<std::vector<double>>* contributions) const {
  const size_t nt = targets_.size(), ns = sources_.size();
  std::vector<double> tia_source(ns, 0.0);
  for (size_t si = 0; si < ns; ++si) {
    if (sources_[si].voi >= 0) {
      tia_source[si] = tia_of(f, static_cast<size_t>(sources_[si].voi));
    } else {
      double rb = tia_of(f, static_cast<size_t>(whole_body_));
      for (size_t sj = 0; sj < ns; ++sj)
        if (sources_[sj].voi >= 0 && !sources_[sj].tumour) rb -= tia_source[sj];
      tia_source[si] = rb;
    }
  }
  std::vector<double> dose(nt, 0.0);
  if (contributions) contributions->assign(nt, std::vector<double>(ns, 0.0));
  for (size_t ti = 0; ti < nt; ++ti) {
    for (size_t si = 0; si < ns; ++si) {
      double s = cross_[ti][si];
      if (static_cast<int>(si) == self_source_[ti]) {
        const auto i = static_cast<size_t>(targets_[ti].voi);
        const double m = voi_mass_[i] * (voi_mass_from_volume_[i] ? f.volume[i] : 1.0);
        const SelfScaling& sc = self_scaling_[i];
        s = (targets_[ti].d.kind == "tumour"
                 ? c_.tumour_self_s(m, where_)
                 : sc.a / m + (sc.b != 0 ? sc.b * std::pow(sc.m_ref / m, 2.0 / 3.0) : 0.0)) *
            f.svalue[i] * vois_[i].s_factor;
      }
      const double d = tia_source[si] * s * GY_PER_S_UNIT_MBQ_H;
      dose[ti] += d;
      if (contributions) (*contributions)[ti][si] = d;
    }
  }
  return dose;
}

// GUM: named independent inputs with relative standard uncertainties.
std::vector<GumInput> DoseCalculator::Cycle::gum_inputs(const Factors& nominal) const {
  std::vector<GumInput> inputs;
  for (size_t i = 0; i < n_vois_; ++i) {
    const auto& v = vois_[i];
    // a TIA whose u is unknown (NaN) is an input too: the doses depending on it get no u
    if (v.tia_MBq_h > 0 && (v.tia_u_MBq_h > 0 || std::isnan(v.tia_u_MBq_h)))
      inputs.push_back({"fit:" + v.voi, v.tia_u_MBq_h / v.tia_MBq_h, [i](Factors& f) -> double& { return f.fit[i]; },
                        v.tia_u_dof});
    if (v.u_rel_rc > 0)
      inputs.push_back({"rc:" + v.voi, v.u_rel_rc, [i](Factors& f) -> double& { return f.rc[i]; }});
    if (v.u_rel_volume > 0)
      inputs.push_back({"volume:" + v.voi, v.u_rel_volume, [i](Factors& f) -> double& { return f.volume[i]; }});
    if (kind_[i] == "organ") {
      const double u = c_.self_s_u_rel(v.voi);
      if (u > 0)
        inputs.push_back({"svalue:" + v.voi, u, [i](Factors& f) -> double& { return f.svalue[i]; }});
    }
  }
  for (const auto& [name, one] : nominal.cf) {
    double u = 0;
    for (const auto& v : vois_)
      if (v.calibration == name) u = std::max(u, v.u_rel_cf);
    const std::string key = name;
    if (u > 0) inputs.push_back({"cf:" + name, u, [key](Factors& f) -> double& { return f.cf.at(key); }});
  }
  return inputs;
}

// d dose / d input by central differences, [input][target]; records the inputs in out_.
std::vector<std::vector<double>> DoseCalculator::Cycle::sensitivities(const std::vector<GumInput>& inputs,
                                                                      const Factors& nominal) {
  const size_t nt = targets_.size();
  std::vector<std::vector<double>> sens(inputs.size());
  Factors f = nominal;  // one input moved at a time, then put back
  for (size_t k = 0; k < inputs.size(); ++k) {
    double& x = inputs[k].factor(f);
    const double x0 = x;
    x = x0 + SENSITIVITY_STEP;
    const auto dh = eval(f, nullptr);
    x = x0 - SENSITIVITY_STEP;
    const auto dl = eval(f, nullptr);
    x = x0;
    sens[k].resize(nt);
    for (size_t ti = 0; ti < nt; ++ti) sens[k][ti] = (dh[ti] - dl[ti]) / (2 * SENSITIVITY_STEP);
    out_.input_names.push_back(inputs[k].name);
    out_.input_u_rel.push_back(inputs[k].u_rel);
    out_.input_dof.push_back(inputs[k].dof);
  }
  return sens;
}

// The nominal doses, their split by source and their combined uncertainty.
CycleDoses DoseCalculator::Cycle::doses(double administered_MBq) {
  const Factors nominal = nominal_factors();
  std::vector<std::vector<double>> contrib;
  const std::vector<double> dose = eval(nominal, &contrib);
  const std::vector<GumInput> inputs = gum_inputs(nominal);
  const auto sens = sensitivities(inputs, nominal);
  const size_t nt = targets_.size(), ns = sources_.size();
  out_.targets.reserve(nt);
  for (size_t ti = 0; ti < nt; ++ti) {
    auto& d = targets_[ti].d;
    d.dose_Gy = dose[ti];
    for (size_t si = 0; si < ns; ++si) {
      if (contrib[ti][si] == 0) continue;
      d.contributions_Gy.emplace_back(sources_[si].label, contrib[ti][si]);
      (static_cast<int>(si) == self_source_[ti] ? d.self_Gy : d.cross_Gy) += contrib[ti][si];
    }
    d.sensitivity_Gy.resize(inputs.size());
    for (size_t k = 0; k < inputs.size(); ++k) d.sensitivity_Gy[k] = sens[k][ti];
    combine_uncertainty(d.sensitivity_Gy, out_.input_names, out_.input_u_rel, out_.input_dof, d.dose_Gy,
                        d.dose_u_Gy, d.dose_u_dof, d.dose_ci68_Gy, d.dose_ci95_Gy, d.u_missing);
    if (administered_MBq > 0) d.dose_Gy_per_GBq = d.dose_Gy / (administered_MBq * 1e-3);
    out_.targets.push_back(std::move(d));
  }
  return std::move(out_);
}

CycleDoses DoseCalculator::compute(const std::vector<DoseSourceInput>& vois, double administered_MBq,
                                   const std::string& where) const {
  return Cycle(*this, vois, where).doses(administered_MBq);
}

}  // namespace lutdose
