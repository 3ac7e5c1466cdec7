// The rows of the results store (lutdose/io/store.h) from a run's plain result structs, and the
// store header of a run's provenance. No HDF5 here: engine/src/io/store.cpp writes the rows.
#include <cmath>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "lutdose/error.h"
#include "lutdose/io/output_dir.h"
#include "lutdose/io/population_file.h"
#include "lutdose/io/results.h"
#include "lutdose/io/store.h"

namespace lutdose {
namespace {

// A key or name column's value: refused when longer than the column (never cut silently).
const std::string& key(const std::string& value, const std::string& field) {
  if (value.size() > STORE_NAME_BYTES)
    throw_input_error("results store", field, value,
                      "at most " + std::to_string(STORE_NAME_BYTES) +
                          " bytes (the store's name columns, docs/store.md)");
  return value;
}

// The shortest text that reads back to x exactly, appended to s; "nan", "inf", "-inf".
void append_exact(std::string& s, double x) {
  if (std::isnan(x)) {
    s += "nan";
    return;
  }
  char buf[40];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, x);
  if (ec == std::errc()) s.append(buf, end);
  else s += "nan";
}

std::string joined(const std::vector<std::string>& parts, const std::string& separator = "; ") {
  std::string s;
  for (const auto& p : parts) s += (s.empty() ? "" : separator) + p;
  return s;
}

// "A1=1.5 u=0.1; lambda1=0.01 u=0.002": natural parameters with their standard uncertainties.
std::string parameter_text(const CandidateFit& c) {
  std::string s;
  for (Eigen::Index i = 0; i < c.parameters.size(); ++i) {
    if (i > 0) s += "; ";
    if (static_cast<size_t>(i) < c.parameter_names.size()) s += c.parameter_names[static_cast<size_t>(i)];
    else s += "p" + std::to_string(i);
    const double var = i < c.covariance.rows() && i < c.covariance.cols() ? c.covariance(i, i) : NAN;
    s += '=';
    append_exact(s, c.parameters[i]);
    s += " u=";
    append_exact(s, std::sqrt(var));
  }
  return s;
}

std::string candidate_flags(const CandidateFit& c) {
  std::vector<std::string> all = c.flags;
  for (const auto& w : c.warnings) all.push_back("warning: " + w);
  return joined(all);
}

VoiRow voi_row(const CycleResult& c, const VoiResult& v) {
  VoiRow r;
  r.patient = key(c.patient, "patient");
  r.cycle = c.cycle;
  r.voi = key(v.tac.voi, "voi");
  r.function = key(v.fit.function, "function");
  r.method = key(v.fit.method, "method");
  r.fit_ok = v.fit.accepted ? 1 : 0;
  r.n_points = static_cast<std::int32_t>(v.tac.time_h.size());
  r.tia_MBq_h = v.fit.tia_MBq_h;
  r.tia_u_MBq_h = v.fit.tia_u_MBq_h;
  r.tia_u_dof = v.fit.tia_u_dof;
  r.tia_ci95_low_MBq_h = v.fit.tia_ci95_MBq_h.low;
  r.tia_ci95_high_MBq_h = v.fit.tia_ci95_MBq_h.high;
  r.tia_h = v.tia_h;
  r.mass_g = v.mean_mass_g;
  if (const TargetDose* d = c.dose_of(v.tac.voi)) {
    r.mass_g = d->mass_g;
    r.dose_Gy = d->dose_Gy;
    r.dose_u_Gy = d->dose_u_Gy;
    r.dose_Gy_per_GBq = d->dose_Gy_per_GBq;
    r.bed_Gy = d->bed_Gy;
    r.eqd2_Gy = d->eqd2_Gy;
  }
  return r;
}

void add_candidates(const CycleResult& c, const VoiResult& v, std::vector<CandidateRow>& out) {
  for (size_t i = 0; i < v.fit.candidates.size(); ++i) {
    const CandidateFit& f = v.fit.candidates[i];
    CandidateRow r;
    r.patient = key(c.patient, "patient");
    r.cycle = c.cycle;
    r.voi = key(v.tac.voi, "voi");
    r.function = key(f.function, "function");
    r.fitted = f.fitted ? 1 : 0;
    r.accepted = f.accepted ? 1 : 0;
    r.selected = static_cast<int>(i) == v.fit.selected ? 1 : 0;
    r.n_parameters = f.n_parameters;
    r.aicc = f.aicc;
    r.akaike_weight = f.akaike_weight;
    r.r_squared = f.r_squared;
    r.tia_MBq_h = f.tia_MBq_h;
    r.tia_u_MBq_h = f.tia_u_MBq_h;
    r.parameters = parameter_text(f);
    r.flags = candidate_flags(f);
    out.push_back(std::move(r));
  }
}

TargetRow target_row(const CycleResult& c, const TargetDose& d) {
  TargetRow r;
  r.patient = key(c.patient, "patient");
  r.cycle = c.cycle;
  r.target = key(d.target, "target");
  r.kind = key(d.kind, "kind");
  r.region = d.region;
  r.method = d.method;
  r.mass_g = d.mass_g;
  r.self_Gy = d.self_Gy;
  r.cross_Gy = d.cross_Gy;
  r.dose_Gy = d.dose_Gy;
  r.dose_u_Gy = d.dose_u_Gy;
  r.dose_u_dof = d.dose_u_dof;
  r.dose_ci95_low_Gy = d.dose_ci95_Gy.low;
  r.dose_ci95_high_Gy = d.dose_ci95_Gy.high;
  r.dose_Gy_per_GBq = d.dose_Gy_per_GBq;
  r.bed_Gy = d.bed_Gy;
  r.eqd2_Gy = d.eqd2_Gy;
  r.dose_u_mc_Gy = d.dose_u_mc_Gy;
  r.u_missing = joined(d.u_missing);
  return r;
}

// The budget of the targets that are VOIs of the cycle (organs and tumours, not phantom regions).
void add_budget(const CycleResult& c, const TargetDose& d, std::vector<BudgetRow>& out) {
  if (d.kind == "region") return;
  const auto terms = uncertainty_budget(d, c.dose_input_names, c.dose_input_u_rel, c.dose_input_dof);
  for (const auto& t : terms) {
    BudgetRow r;
    r.patient = key(c.patient, "patient");
    r.cycle = c.cycle;
    r.target = key(d.target, "target");
    r.input = key(t.input, "input");
    for (size_t k = 0; k < c.dose_input_names.size(); ++k)
      if (c.dose_input_names[k] == t.input && k < c.dose_input_u_rel.size()) r.u_rel = c.dose_input_u_rel[k];
    r.dof = t.dof;
    r.term_Gy = t.u_Gy;
    out.push_back(std::move(r));
  }
}

// The /points rows of a VOI: its TAC as fitted (activity_u_MBq NaN where the TAC has none).
void add_points(const CycleResult& c, const VoiResult& v, std::vector<PointRow>& out) {
  const TacSeries& t = v.tac;
  const bool u_given = t.activity_u_MBq.size() == t.activity_MBq.size();
  for (Eigen::Index i = 0; i < t.time_h.size(); ++i)
    out.push_back({key(c.patient, "patient"), c.cycle, key(t.voi, "voi"), t.time_h(i), t.activity_MBq(i),
                   u_given ? t.activity_u_MBq(i) : store_nan()});
}

void add_notes(const CycleResult& c, StoreRows& rows) {
  for (const auto& v : c.vois)
    for (const auto& n : v.fit.notes)
      rows.notes.push_back({key(c.patient, "patient"), key(v.tac.voi, "voi"), "fit", c.cycle, n});
  for (const auto& n : c.dose_notes) rows.notes.push_back({key(c.patient, "patient"), "", "dose", c.cycle, n});
}

PatientRow patient_row(const CycleResult& c, const std::string& source, const std::string& sha) {
  PatientRow p;
  p.patient = key(c.patient, "patient");
  p.cycle = c.cycle;
  p.status = "done";
  p.source = source;
  p.input_sha256 = sha;
  p.administered_MBq = c.administered_MBq;
  p.n_vois = static_cast<std::int32_t>(c.vois.size());
  for (const auto& v : c.vois) p.n_fits_flagged += v.fit.accepted ? 0 : 1;
  for (const auto& d : c.doses) p.n_doses_u_unknown += std::isnan(d.dose_u_Gy) ? 1 : 0;
  return p;
}

void add_cycle(const CycleResult& c, const std::string& source, const std::string& sha, StoreRows& rows) {
  rows.patients.push_back(patient_row(c, source, sha));
  for (const auto& v : c.vois) {
    rows.vois.push_back(voi_row(c, v));
    add_candidates(c, v, rows.candidates);
    add_points(c, v, rows.points);
  }
  for (const auto& d : c.doses) {
    rows.targets.push_back(target_row(c, d));
    add_budget(c, d, rows.budget);
  }
  add_notes(c, rows);
}

CumulativeRow cumulative_row(const std::string& patient, const CumulativeDose& x) {
  CumulativeRow r;
  r.patient = key(patient, "patient");
  r.target = key(x.target, "target");
  r.cycles = x.cycles;
  r.dose_Gy = x.dose_Gy;
  r.dose_u_Gy = x.dose_u_Gy;
  r.bed_Gy = x.bed_Gy;
  r.eqd2_Gy = x.eqd2_Gy;
  r.dose_ci95_low_Gy = x.dose_ci95_Gy.low;
  r.dose_ci95_high_Gy = x.dose_ci95_Gy.high;
  r.u_missing = joined(x.u_missing);
  return r;
}

// A name cut to the column width at a UTF-8 character boundary (failure rows only).
std::string shortened(const std::string& s) {
  if (s.size() <= STORE_NAME_BYTES) return s;
  size_t n = STORE_NAME_BYTES;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n);
}

// The SHA-256 of a data file, or "unreadable" (the fingerprint then differs from a readable one).
std::string file_sha256(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "unreadable";
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return in.bad() ? "unreadable" : sha256_hex(bytes);
}

// The /population rows of the models: one per log parameter. sigma_log is the proportional model's
// SD of ln A; an additive model has none (NaN: its sigma0 and b are not an SD of ln A): its
// sigma0_MBq and b_proportional have their own columns (format 5), NaN where the model has none.
std::vector<PopulationRow> population_rows(const std::vector<PopulationModel>& models) {
  std::vector<PopulationRow> rows;
  for (const auto& m : models) {
    key(m.voi_kind, "population voi_kind");
    const bool proportional = m.error_model == PopulationErrorModel::proportional;
    const bool additive_sd = has_additive_sd(m.error_model);
    const bool se_known = m.log_omega_se.size() == m.theta.size();  // empty: an older population file
    for (Eigen::Index k = 0; k < m.theta.size(); ++k) {
      rows.push_back({m.voi_kind, m.function, m.phi_names.at(static_cast<std::size_t>(k)), m.theta(k), m.theta_se(k),
                      m.omega(k, k), m.shrinkage(k), proportional ? m.sigma_log : store_nan(), m.n_patients,
                      m.n_observations, m.e_step, to_string(m.error_model), m.omega_structure,
                      additive_sd ? m.sigma0_MBq : store_nan(),
                      additive_sd ? m.sigma_log : store_nan(),  // b of combined; 0 for constant
                      se_known ? m.log_omega_se(k) : store_nan(), proportional ? m.log_sigma_log_se : store_nan(),
                      additive_sd ? m.log_sigma0_se : store_nan(),
                      m.error_model == PopulationErrorModel::combined ? m.log_sigma_log_se : store_nan()});
    }
  }
  return rows;
}

// The /population_omega rows of the models: the elements i >= j of each Omega that its model has
// (a diagonal Omega's variances; a full one's lower triangle), with the correlation's SE where known.
std::vector<PopulationOmegaRow> population_omega_rows(const std::vector<PopulationModel>& models) {
  std::vector<PopulationOmegaRow> rows;
  for (const auto& m : models) {
    const bool full = m.omega_structure == "full";
    const bool se_known = full && m.omega_correlation_se.rows() == m.omega.rows();  // empty: an older file
    for (Eigen::Index i = 0; i < m.omega.rows(); ++i)
      for (Eigen::Index j = full ? 0 : i; j <= i; ++j)
        rows.push_back({m.voi_kind, m.function, m.phi_names.at(static_cast<std::size_t>(i)),
                        m.phi_names.at(static_cast<std::size_t>(j)), m.omega(i, j),
                        m.omega(i, j) / std::sqrt(m.omega(i, i) * m.omega(j, j)),  // 1 when i == j
                        se_known ? m.omega_correlation_se(i, j) : store_nan()});
  }
  return rows;
}

}  // namespace

void StoreRows::append(StoreRows&& o) {
  auto move_into = [](auto& to, auto& from) {
    to.insert(to.end(), std::make_move_iterator(from.begin()), std::make_move_iterator(from.end()));
  };
  move_into(patients, o.patients);
  move_into(vois, o.vois);
  move_into(candidates, o.candidates);
  move_into(targets, o.targets);
  move_into(budget, o.budget);
  move_into(cumulative, o.cumulative);
  move_into(failures, o.failures);
  move_into(notes, o.notes);
  move_into(points, o.points);
  o.clear();
}

void StoreRows::clear() {
  patients.clear();
  vois.clear();
  candidates.clear();
  targets.clear();
  budget.clear();
  cumulative.clear();
  failures.clear();
  notes.clear();
  points.clear();
}

std::size_t StoreRows::total_rows() const {
  return patients.size() + vois.size() + candidates.size() + targets.size() + budget.size() +
         cumulative.size() + failures.size() + notes.size() + points.size();
}

StoreRows store_voi_rows(const RunResult& r) {
  StoreRows rows;
  store_voi_rows(r, rows);
  return rows;
}

void store_voi_rows(const RunResult& r, StoreRows& rows) {
  rows.vois.clear();
  for (const auto& c : r.cycles)
    for (const auto& v : c.vois) rows.vois.push_back(voi_row(c, v));
}

StoreRows store_rows(const RunResult& r, const std::string& source, const std::string& input_sha256) {
  StoreRows rows;
  key(input_sha256, "input_sha256");
  for (const auto& c : r.cycles) add_cycle(c, source, input_sha256, rows);
  for (const auto& [patient, sums] : r.cumulative)
    for (const auto& x : sums) rows.cumulative.push_back(cumulative_row(patient, x));
  return rows;
}

StoreRows failure_rows(const std::string& patient, int cycle, const std::string& source,
                       const std::string& error) {
  StoreRows rows;
  const std::string id = shortened(patient);
  const std::string note = id == patient ? "" : " (patient id shortened to " + std::to_string(STORE_NAME_BYTES) +
                                                    " bytes in the store; full id: " + patient + ")";
  PatientRow p;
  p.patient = id;
  p.cycle = cycle;
  p.status = "failed";
  p.source = source;
  rows.patients.push_back(std::move(p));
  rows.failures.push_back({id, cycle, source, error + note});
  return rows;
}

StoreHeader store_header_of(const Provenance& p, const std::string& kind) {
  StoreHeader h;
  h.lutdose_version = p.lutdose_version;
  h.kind = kind;
  auto prov = provenance_json(p, p.options.dose.has_value());
  // A user S-value table (--svalues FILE) is not in the data directory: its path is as given and
  // its content is recorded by its SHA-256 (of its bytes, as sha256sum prints it).
  const std::string user_table = p.options.dose ? p.options.dose->svalue_table : std::string();
  if (!user_table.empty() && prov["options"].contains("dose"))
    prov["options"]["dose"]["svalue_table_sha256"] = file_sha256(user_table);
  h.provenance_json = prov.dump();
  if (p.options.population || p.options.compartment_population) {
    const auto models = population_models_of(p.options);
    h.population = population_rows(models);
    h.population_omega = population_omega_rows(models);
  }
  // The fingerprint: the provenance without paths (input, data directory, S-value file paths,
  // population file: its SHA-256 stays), plus the content of the data files the doses used.
  auto& o = prov["options"];
  o.erase("input");
  o.erase("data_dir");
  if (o["fit"].contains("population")) o["fit"]["population"].erase("source");
  nlohmann::ordered_json data = nlohmann::ordered_json::array();
  if (o.contains("dose")) {
    for (const auto& f : p.svalue_files)  // shipped sets' files are relative to the data directory
      data.push_back({std::filesystem::path(f).filename().string(),
                      file_sha256(f == user_table ? std::filesystem::path(f) : std::filesystem::path(p.options.data_dir) / f)});
    o["dose"].erase("svalue_files");
    if (!p.tissue_file.empty())
      data.push_back({std::filesystem::path(p.tissue_file).filename().string(), file_sha256(p.tissue_file)});
    o["dose"].erase("tissue_parameters");
  }
  prov["data_files"] = data;
  h.fingerprint = sha256_hex(prov.dump());
  return h;
}

}  // namespace lutdose
