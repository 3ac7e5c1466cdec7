// The columns of the results store's tables, in the order of store.h's members (docs/store.md).
#include "io/store_tables.h"

#include <stdexcept>

namespace lutdose::store_detail {

const Table<PatientRow>& patients_table() {
  using R = PatientRow;
  static const Table<R> t{"patients", &StoreRows::patients,
                          {key("patient", &R::patient), int32("cycle", &R::cycle), key("status", &R::status),
                           text("source", &R::source), key("input_sha256", &R::input_sha256),
                           float64("administered_MBq", &R::administered_MBq), int32("n_vois", &R::n_vois),
                           int32("n_fits_flagged", &R::n_fits_flagged),
                           int32("n_doses_u_unknown", &R::n_doses_u_unknown)}};
  return t;
}

const Table<PatientRow>& patient_keys_table() {
  using R = PatientRow;
  static const Table<R> t{"patients", &StoreRows::patients,
                          {key("patient", &R::patient), int32("cycle", &R::cycle), key("status", &R::status)}};
  return t;
}

const Table<VoiRow>& vois_table() {
  using R = VoiRow;
  static const Table<R> t{
      "vois",
      &StoreRows::vois,
      {key("patient", &R::patient), key("voi", &R::voi), key("function", &R::function), key("method", &R::method),
       int32("cycle", &R::cycle), int8("fit_ok", &R::fit_ok), int32("n_points", &R::n_points),
       float64("tia_MBq_h", &R::tia_MBq_h), float64("tia_u_MBq_h", &R::tia_u_MBq_h),
       float64("tia_u_dof", &R::tia_u_dof), float64("tia_ci95_low_MBq_h", &R::tia_ci95_low_MBq_h),
       float64("tia_ci95_high_MBq_h", &R::tia_ci95_high_MBq_h), float64("tia_h", &R::tia_h),
       float64("mass_g", &R::mass_g), float64("dose_Gy", &R::dose_Gy), float64("dose_u_Gy", &R::dose_u_Gy),
       float64("dose_Gy_per_GBq", &R::dose_Gy_per_GBq), float64("bed_Gy", &R::bed_Gy),
       float64("eqd2_Gy", &R::eqd2_Gy)}};
  return t;
}

const Table<CandidateRow>& candidates_table() {
  using R = CandidateRow;
  static const Table<R> t{
      "candidates",
      &StoreRows::candidates,
      {key("patient", &R::patient), key("voi", &R::voi), key("function", &R::function), int32("cycle", &R::cycle),
       int8("fitted", &R::fitted), int8("accepted", &R::accepted), int8("selected", &R::selected),
       int32("n_parameters", &R::n_parameters), float64("aicc", &R::aicc),
       float64("akaike_weight", &R::akaike_weight), float64("r_squared", &R::r_squared),
       float64("tia_MBq_h", &R::tia_MBq_h), float64("tia_u_MBq_h", &R::tia_u_MBq_h),
       text("parameters", &R::parameters), text("flags", &R::flags)}};
  return t;
}

const Table<TargetRow>& targets_table() {
  using R = TargetRow;
  static const Table<R> t{
      "targets",
      &StoreRows::targets,
      {key("patient", &R::patient), key("target", &R::target), key("kind", &R::kind), text("region", &R::region),
       text("method", &R::method), int32("cycle", &R::cycle), float64("mass_g", &R::mass_g),
       float64("self_Gy", &R::self_Gy), float64("cross_Gy", &R::cross_Gy), float64("dose_Gy", &R::dose_Gy),
       float64("dose_u_Gy", &R::dose_u_Gy), float64("dose_u_dof", &R::dose_u_dof),
       float64("dose_ci95_low_Gy", &R::dose_ci95_low_Gy), float64("dose_ci95_high_Gy", &R::dose_ci95_high_Gy),
       float64("dose_Gy_per_GBq", &R::dose_Gy_per_GBq), float64("bed_Gy", &R::bed_Gy),
       float64("eqd2_Gy", &R::eqd2_Gy), float64("dose_u_mc_Gy", &R::dose_u_mc_Gy),
       text("u_missing", &R::u_missing)}};
  return t;
}

const Table<BudgetRow>& budget_table() {
  using R = BudgetRow;
  static const Table<R> t{"budget", &StoreRows::budget,
                          {key("patient", &R::patient), key("target", &R::target), key("input", &R::input),
                           int32("cycle", &R::cycle), float64("u_rel", &R::u_rel), float64("dof", &R::dof),
                           float64("term_Gy", &R::term_Gy)}};
  return t;
}

const Table<CumulativeRow>& cumulative_table() {
  using R = CumulativeRow;
  static const Table<R> t{
      "cumulative",
      &StoreRows::cumulative,
      {key("patient", &R::patient), key("target", &R::target), int32("cycles", &R::cycles),
       float64("dose_Gy", &R::dose_Gy), float64("dose_u_Gy", &R::dose_u_Gy), float64("bed_Gy", &R::bed_Gy),
       float64("eqd2_Gy", &R::eqd2_Gy), float64("dose_ci95_low_Gy", &R::dose_ci95_low_Gy),
       float64("dose_ci95_high_Gy", &R::dose_ci95_high_Gy), text("u_missing", &R::u_missing)}};
  return t;
}

const Table<FailureRow>& failures_table() {
  using R = FailureRow;
  static const Table<R> t{"failures", &StoreRows::failures,
                          {key("patient", &R::patient), int32("cycle", &R::cycle), text("source", &R::source),
                           text("error", &R::error)}};
  return t;
}

const Table<NoteRow>& notes_table() {
  using R = NoteRow;
  static const Table<R> t{"notes", &StoreRows::notes,
                          {key("patient", &R::patient), key("voi", &R::voi), key("stage", &R::stage),
                           int32("cycle", &R::cycle), text("note", &R::note)}};
  return t;
}

const Table<PointRow>& points_table() {
  using R = PointRow;
  static const Table<R> t{"points", &StoreRows::points,
                          {key("patient", &R::patient), int32("cycle", &R::cycle), key("voi", &R::voi),
                           float64("time_h", &R::time_h), float64("activity_MBq", &R::activity_MBq),
                           float64("activity_u_MBq", &R::activity_u_MBq)}};
  return t;
}

bool table_in_format(const std::string& name, int version) { return name != "points" || version >= 6; }

const Table<PopulationRow>& population_table() {
  using R = PopulationRow;
  static const Table<R> t{"population", nullptr,
                          {key("voi_kind", &R::voi_kind), key("function", &R::function),
                           key("parameter", &R::parameter), float64("theta", &R::theta),
                           float64("theta_se", &R::theta_se), float64("omega_diag", &R::omega_diag),
                           float64("shrinkage", &R::shrinkage), float64("sigma_log", &R::sigma_log),
                           int32("n_tacs", &R::n_tacs), int32("n_observations", &R::n_observations),
                           key("e_step", &R::e_step),
                           // format 5
                           key("error_model", &R::error_model), key("omega_structure", &R::omega_structure),
                           float64("sigma0_MBq", &R::sigma0_MBq), float64("b_proportional", &R::b_proportional),
                           float64("log_omega_se", &R::log_omega_se),
                           float64("log_sigma_log_se", &R::log_sigma_log_se),
                           // format 6
                           float64("log_sigma0_se", &R::log_sigma0_se),
                           float64("log_b_proportional_se", &R::log_b_proportional_se)}};
  return t;
}

const Table<PopulationRow>& population_table_of_format(int version) {
  // The columns each format has: the first 10 (format 3), e_step (4), six more (5), the rest (6).
  // HDF5 converts compound members by name, so the older formats' tables are read with their columns only.
  static const auto first = [](std::size_t n) {
    Table<PopulationRow> t = population_table();
    t.columns.resize(n);
    return t;
  };
  static const Table<PopulationRow> v3 = first(10), v4 = first(11), v5 = first(17);
  if (version == 3) return v3;
  if (version == 4) return v4;
  if (version == 5) return v5;
  if (version >= 6 && version <= STORE_FORMAT_VERSION) return population_table();
  throw std::logic_error("population_table_of_format: format " + std::to_string(version) + " has no /population");
}

const Table<PopulationOmegaRow>& population_omega_table() {
  using R = PopulationOmegaRow;
  static const Table<R> t{"population_omega", nullptr,
                          {key("voi_kind", &R::voi_kind), key("function", &R::function),
                           key("parameter_i", &R::parameter_i), key("parameter_j", &R::parameter_j),
                           float64("covariance", &R::covariance), float64("correlation", &R::correlation),
                           // format 7
                           float64("correlation_se", &R::correlation_se)}};
  return t;
}

const Table<PopulationOmegaRow>& population_omega_table_of_format(int version) {
  // formats 5 and 6: the columns before correlation_se (read by member name, as /population's)
  static const Table<PopulationOmegaRow> v5 = [] {
    Table<PopulationOmegaRow> t = population_omega_table();
    t.columns.resize(6);
    return t;
  }();
  if (version == 5 || version == 6) return v5;
  if (version >= 7 && version <= STORE_FORMAT_VERSION) return population_omega_table();
  throw std::logic_error("population_omega_table_of_format: format " + std::to_string(version) +
                         " has no /population_omega");
}

const std::vector<std::string>& table_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for_each_table([&](const auto& t) { n.push_back(t.name); });
    return n;
  }();
  return names;
}

Layout layout_of(const std::vector<ColumnSpec>& specs) {
  Layout l;
  std::size_t at = 0;
  for (const auto& s : specs) {
    std::size_t size = 0, align = 1;
    switch (s.kind) {
      case Kind::Key: size = STORE_NAME_BYTES; break;
      case Kind::Text: size = align = sizeof(const char*); break;
      case Kind::I8: size = align = sizeof(std::int8_t); break;
      case Kind::I32: size = align = sizeof(std::int32_t); break;
      case Kind::F64: size = align = sizeof(double); break;
    }
    at = (at + align - 1) / align * align;
    l.offsets.push_back(at);
    at += size;
  }
  l.size = (at + alignof(double) - 1) / alignof(double) * alignof(double);
  return l;
}

void put_key(const std::string& s, const char* column, unsigned char* at) {
  if (s.size() > STORE_NAME_BYTES)
    throw std::logic_error(std::string("results store: the ") + column + " '" + s.substr(0, STORE_NAME_BYTES) +
                           "...' is longer than " + std::to_string(STORE_NAME_BYTES) +
                           " bytes (store_rows refuses such names)");
  std::memset(at, 0, STORE_NAME_BYTES);
  std::memcpy(at, s.data(), s.size());
}

std::string get_key(const unsigned char* at) {
  const char* p = reinterpret_cast<const char*>(at);
  return std::string(p, strnlen(p, STORE_NAME_BYTES));
}

}  // namespace lutdose::store_detail
