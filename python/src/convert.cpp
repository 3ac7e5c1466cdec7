// Conversions shared by the bindings (convert.h).
#include "convert.h"

#include "lutdose/error.h"

#include <pybind11/stl.h>

#include <charconv>
#include <map>
#include <memory>
#include <mutex>
#include <type_traits>

#include "lutdose/error.h"
#include "lutdose/io/data_dir.h"

namespace lutdose_py {

namespace {

// The number as a CSV cell that reads back to the same double; NaN is an empty cell
// only where `nan_empty` (activity_u_MBq), else "nan" (which the row checks reject by name).
std::string cell(double x, bool nan_empty) {
  if (x != x) return nan_empty ? "" : "nan";
  char buf[40];  // the shortest text that reads back to x (Python's repr), not printf's slower "%.17g"
  const auto end = std::to_chars(buf, buf + sizeof buf, x).ptr;
  return std::string(buf, end);
}

// A table's rows in parts (the blocks of a parallel run, in order), read as one table.
template <class Row>
using Parts = std::vector<const std::vector<Row>*>;

// A column of a table given in parts: numbers as a numpy array, strings as a list.
template <class Row, class T>
void column(py::dict& table, const char* name, const Parts<Row>& parts, T Row::*member) {
  std::size_t n = 0;
  for (const auto* p : parts) n += p->size();
  if constexpr (std::is_same_v<T, std::string>) {
    py::list out(n);
    std::size_t i = 0;
    for (const auto* p : parts)
      for (const auto& row : *p) out[i++] = py::str(row.*member);
    table[name] = out;
  } else {
    py::array_t<T> out(static_cast<py::ssize_t>(n));
    T* w = out.mutable_data();
    for (const auto* p : parts)
      for (const auto& row : *p) *w++ = row.*member;
    table[name] = out;
  }
}

template <class Row, class T>
void column(py::dict& table, const char* name, const std::vector<Row>& rows, T Row::*member) {
  column(table, name, Parts<Row>{&rows}, member);
}

// One table of every part, e.g. the /vois rows of each block.
template <class Row>
Parts<Row> parts_of(const std::vector<const lutdose::StoreRows*>& all, std::vector<Row> lutdose::StoreRows::*table) {
  Parts<Row> out;
  for (const auto* rows : all) out.push_back(&(rows->*table));
  return out;
}

#define LUTDOSE_COL(t, rows, Row, m) column(t, #m, rows, &Row::m)

py::dict vois_table(const Parts<lutdose::VoiRow>& r) {
  using R = lutdose::VoiRow;
  py::dict t;
  LUTDOSE_COL(t, r, R, patient); LUTDOSE_COL(t, r, R, voi); LUTDOSE_COL(t, r, R, function);
  LUTDOSE_COL(t, r, R, method); LUTDOSE_COL(t, r, R, cycle); LUTDOSE_COL(t, r, R, fit_ok);
  LUTDOSE_COL(t, r, R, n_points); LUTDOSE_COL(t, r, R, tia_MBq_h); LUTDOSE_COL(t, r, R, tia_u_MBq_h);
  LUTDOSE_COL(t, r, R, tia_u_dof); LUTDOSE_COL(t, r, R, tia_ci95_low_MBq_h); LUTDOSE_COL(t, r, R, tia_ci95_high_MBq_h);
  LUTDOSE_COL(t, r, R, tia_h); LUTDOSE_COL(t, r, R, mass_g); LUTDOSE_COL(t, r, R, dose_Gy);
  LUTDOSE_COL(t, r, R, dose_u_Gy); LUTDOSE_COL(t, r, R, dose_Gy_per_GBq); LUTDOSE_COL(t, r, R, bed_Gy);
  LUTDOSE_COL(t, r, R, eqd2_Gy);
  return t;
}

py::dict candidates_table(const Parts<lutdose::CandidateRow>& r) {
  using R = lutdose::CandidateRow;
  py::dict t;
  LUTDOSE_COL(t, r, R, patient); LUTDOSE_COL(t, r, R, voi); LUTDOSE_COL(t, r, R, function);
  LUTDOSE_COL(t, r, R, cycle); LUTDOSE_COL(t, r, R, fitted); LUTDOSE_COL(t, r, R, accepted);
  LUTDOSE_COL(t, r, R, selected); LUTDOSE_COL(t, r, R, n_parameters); LUTDOSE_COL(t, r, R, aicc);
  LUTDOSE_COL(t, r, R, akaike_weight); LUTDOSE_COL(t, r, R, r_squared); LUTDOSE_COL(t, r, R, tia_MBq_h);
  LUTDOSE_COL(t, r, R, tia_u_MBq_h); LUTDOSE_COL(t, r, R, parameters); LUTDOSE_COL(t, r, R, flags);
  return t;
}

py::dict targets_table(const Parts<lutdose::TargetRow>& r) {
  using R = lutdose::TargetRow;
  py::dict t;
  LUTDOSE_COL(t, r, R, patient); LUTDOSE_COL(t, r, R, target); LUTDOSE_COL(t, r, R, kind);
  LUTDOSE_COL(t, r, R, region); LUTDOSE_COL(t, r, R, method); LUTDOSE_COL(t, r, R, cycle);
  LUTDOSE_COL(t, r, R, mass_g); LUTDOSE_COL(t, r, R, self_Gy); LUTDOSE_COL(t, r, R, cross_Gy);
  LUTDOSE_COL(t, r, R, dose_Gy); LUTDOSE_COL(t, r, R, dose_u_Gy); LUTDOSE_COL(t, r, R, dose_u_dof);
  LUTDOSE_COL(t, r, R, dose_ci95_low_Gy); LUTDOSE_COL(t, r, R, dose_ci95_high_Gy);
  LUTDOSE_COL(t, r, R, dose_Gy_per_GBq); LUTDOSE_COL(t, r, R, bed_Gy); LUTDOSE_COL(t, r, R, eqd2_Gy);
  LUTDOSE_COL(t, r, R, dose_u_mc_Gy); LUTDOSE_COL(t, r, R, u_missing);
  return t;
}

// /points (store format 6): the TAC points each VOI was fitted from.
py::dict points_table(const Parts<lutdose::PointRow>& r) {
  using R = lutdose::PointRow;
  py::dict t;
  LUTDOSE_COL(t, r, R, patient); LUTDOSE_COL(t, r, R, cycle); LUTDOSE_COL(t, r, R, voi);
  LUTDOSE_COL(t, r, R, time_h); LUTDOSE_COL(t, r, R, activity_MBq); LUTDOSE_COL(t, r, R, activity_u_MBq);
  return t;
}

py::dict small_tables(const std::vector<const lutdose::StoreRows*>& all, py::dict out) {
  py::dict p, b, c, f, n;
  const auto pr = parts_of(all, &lutdose::StoreRows::patients);
  using P = lutdose::PatientRow;
  LUTDOSE_COL(p, pr, P, patient); LUTDOSE_COL(p, pr, P, cycle); LUTDOSE_COL(p, pr, P, status);
  LUTDOSE_COL(p, pr, P, source); LUTDOSE_COL(p, pr, P, input_sha256); LUTDOSE_COL(p, pr, P, administered_MBq);
  LUTDOSE_COL(p, pr, P, n_vois); LUTDOSE_COL(p, pr, P, n_fits_flagged); LUTDOSE_COL(p, pr, P, n_doses_u_unknown);
  const auto br = parts_of(all, &lutdose::StoreRows::budget);
  const auto cr = parts_of(all, &lutdose::StoreRows::cumulative);
  const auto fr = parts_of(all, &lutdose::StoreRows::failures);
  const auto nr = parts_of(all, &lutdose::StoreRows::notes);
  using B = lutdose::BudgetRow;
  LUTDOSE_COL(b, br, B, patient); LUTDOSE_COL(b, br, B, target); LUTDOSE_COL(b, br, B, input);
  LUTDOSE_COL(b, br, B, cycle); LUTDOSE_COL(b, br, B, u_rel); LUTDOSE_COL(b, br, B, dof);
  LUTDOSE_COL(b, br, B, term_Gy);
  using C = lutdose::CumulativeRow;
  LUTDOSE_COL(c, cr, C, patient); LUTDOSE_COL(c, cr, C, target); LUTDOSE_COL(c, cr, C, cycles);
  LUTDOSE_COL(c, cr, C, dose_Gy); LUTDOSE_COL(c, cr, C, dose_u_Gy); LUTDOSE_COL(c, cr, C, bed_Gy);
  LUTDOSE_COL(c, cr, C, eqd2_Gy); LUTDOSE_COL(c, cr, C, dose_ci95_low_Gy); LUTDOSE_COL(c, cr, C, dose_ci95_high_Gy);
  LUTDOSE_COL(c, cr, C, u_missing);
  using F = lutdose::FailureRow;
  LUTDOSE_COL(f, fr, F, patient); LUTDOSE_COL(f, fr, F, cycle);
  LUTDOSE_COL(f, fr, F, source); LUTDOSE_COL(f, fr, F, error);
  using N = lutdose::NoteRow;
  LUTDOSE_COL(n, nr, N, patient); LUTDOSE_COL(n, nr, N, voi); LUTDOSE_COL(n, nr, N, stage);
  LUTDOSE_COL(n, nr, N, cycle); LUTDOSE_COL(n, nr, N, note);
  out["patients"] = p;
  out["budget"] = b;
  out["cumulative"] = c;
  out["failures"] = f;
  out["notes"] = n;
  out["points"] = points_table(parts_of(all, &lutdose::StoreRows::points));
  return out;
}

}  // namespace

std::string text_of(py::handle value) {
  try {
    return py::str(value).cast<std::string>();
  } catch (const py::cast_error&) {  // not UTF-8 (a lone surrogate): shown escaped, "\udcff"
    return py::str(value).attr("encode")("utf-8", "backslashreplace").cast<std::string>();
  }
}

void throw_wrong_type(py::handle value, const std::string& where, const std::string& name,
                      const std::string& expected) {
  if (py::isinstance<py::str>(value) && !PyUnicode_AsUTF8AndSize(value.ptr(), nullptr)) {  // not valid UTF-8
    PyErr_Clear();
    lutdose::throw_input_error(where, name, text_of(value),
                               "a text without lone surrogates (valid Unicode; e.g. not a name read with "
                               "errors='surrogateescape')");
  }
  lutdose::throw_input_error(where, name, text_of(value),
                             expected + ", not " + text_of(py::type::of(value).attr("__name__")));
}

bool is_bool(py::handle value) {
  if (py::isinstance<py::bool_>(value)) return true;
  const py::handle type = reinterpret_cast<PyObject*>(Py_TYPE(value.ptr()));
  return py::str(type.attr("__module__")).cast<std::string>() == "numpy" &&
         py::str(type.attr("__name__")).cast<std::string>().rfind("bool", 0) == 0;  // numpy.bool_ / numpy.bool
}

long long whole_number(py::handle value, const std::string& where, const std::string& name, long long lo,
                       long long hi) {
  // int and numpy integers have __index__; bool is an int but no count; float (10.5) is refused, not cut.
  if (is_bool(value) || !PyIndex_Check(value.ptr()))
    throw_wrong_type(value, where, name, "a whole number");
  const py::int_ n = py::reinterpret_steal<py::int_>(PyNumber_Index(value.ptr()));
  if (!n) throw py::error_already_set();
  int overflow = 0;
  const long long v = PyLong_AsLongLongAndOverflow(n.ptr(), &overflow);
  if (overflow != 0 || v < lo || v > hi)
    lutdose::throw_input_error(where, name, text_of(n),
                               "a whole number from " + std::to_string(lo) + " to " + std::to_string(hi));
  return v;
}

unsigned threads_of(py::handle threads, const std::string& where) {
  return lutdose_cli::checked_threads(whole_number(threads, where, "threads"));
}

lutdose_cli::FitArgs fit_args_from(const py::dict& o) {
  static const char* const known[] = {
      "function", "functions", "error_model", "aicc_k", "trapezoid_head", "trapezoid_body", "trapezoid_tail",
      "integration", "combined_sigma0_MBq", "combined_b", "model_averaging", "reduced", "model",
      "reject_correlated", "activity_MBq", "half_life_h", "data_dir", "tumour_method", "sphere_composition",
      "density_g_per_mL", "mass_scaling", "cross_scaling", "phantom", "svalues", "body_mass_kg", "population",
      "kinetics", "omega", "e_step", "max_iterations", "free_parameters"};
  for (const auto& item : o) {
    const auto key = cast_argument<std::string>(item.first, "options", "option name");
    if (std::find(std::begin(known), std::end(known), key) == std::end(known))
      throw py::type_error("unexpected option '" + key + "'");
  }
  lutdose_cli::FitArgs a;
  take(o, "function", a.function);
  take(o, "functions", a.functions);
  take(o, "error_model", a.error_model);
  take(o, "aicc_k", a.aicc_k);
  take(o, "trapezoid_head", a.head);
  take(o, "trapezoid_body", a.body);
  take(o, "trapezoid_tail", a.tail);
  take(o, "integration", a.integration);
  take(o, "combined_sigma0_MBq", a.combined_sigma0);
  take(o, "combined_b", a.combined_b);
  take(o, "model_averaging", a.model_averaging);
  take(o, "reduced", a.reduced);
  take(o, "model", a.model);
  take(o, "reject_correlated", a.reject_correlated);
  take(o, "activity_MBq", a.activity_MBq);
  take(o, "half_life_h", a.half_life_h);
  take(o, "data_dir", a.data_dir);
  take(o, "population", a.population);  // --population FILE
  take(o, "omega", a.omega);            // --omega, --e-step: the learning's, with kinetics="population"
  take(o, "e_step", a.e_step);
  take(o, "max_iterations", a.max_iterations);  // kinetics="population": the learning's (0: not given)
  take(o, "free_parameters", a.free_parameters);  // kinetics="population" with model=: the learning's
  a.free_parameters_name = "options: free_parameters";
  if (o.contains("max_iterations") && !o["max_iterations"].is_none() && !(a.max_iterations >= 1 && a.max_iterations <= 100000))
    lutdose::throw_input_error("options", "max_iterations", std::to_string(a.max_iterations),
                               "an iteration count from 1 to 100000 (as --max-iterations)");
  for (const auto& [key, text] : {std::pair{"omega", &a.omega}, {"e_step", &a.e_step}, {"error_model", &a.error_model}})
    if (o.contains(key) && !o[key].is_none() && text->empty())  // "" is not None (the default): refused as the CLI does
      lutdose::throw_input_error("options", key, "''", "a choice, not an empty text (None or no argument: the default)");
  if (o.contains("kinetics") && !o["kinetics"].is_none()) {  // --kinetics, checked as the CLI checks it
    take(o, "kinetics", a.kinetics);
    if (a.kinetics != "individual" && a.kinetics != "population" && a.kinetics != "previous-cycles")
      lutdose::throw_input_error("options", "kinetics", a.kinetics, "individual, population or previous-cycles");
    a.kinetics_given = true;
  }
  return a;
}

lutdose_cli::DoseArgs dose_args_from(const py::dict& o) {
  lutdose_cli::DoseArgs a;
  take(o, "tumour_method", a.tumour_method);
  take(o, "sphere_composition", a.composition);
  take(o, "density_g_per_mL", a.density);
  take(o, "mass_scaling", a.mass_scaling);
  take(o, "cross_scaling", a.cross_scaling);
  return a;
}

std::string data_dir_of(const std::string& explicit_dir) { return lutdose::find_data_dir(explicit_dir); }

const lutdose::ReferenceData& reference_of(const std::string& data_dir) {
  static std::mutex mutex;
  static std::map<std::string, std::unique_ptr<lutdose::ReferenceData>> loaded;
  const std::lock_guard<std::mutex> lock(mutex);
  auto& slot = loaded[data_dir];
  if (!slot) slot = std::make_unique<lutdose::ReferenceData>(lutdose::ReferenceData::load(data_dir));
  return *slot;
}

namespace {
// The checks that the columns have one value per row each (the row checks see single rows).
void check_lengths(std::size_t n, const std::vector<std::size_t>& sizes, const std::string& source) {
  for (const auto s : sizes)
    if (s != n)
      throw lutdose::InputError(source + ": the columns have different lengths (" + std::to_string(s) + " and " +
                                std::to_string(n) + "); expected one value per row in each");
  if (n == 0) throw lutdose::InputError(source + ": no data rows; expected one row per VOI per time point");
}
}  // namespace

namespace {
// One column of a TAC table: cell texts (a list), or numbers (a numpy array; NaN is "nan" or, where
// `nan_empty`, an empty cell).
struct TacColumn {
  std::string name;
  py::list text;
  py::array_t<double> number;
  bool is_text = false, nan_empty = false;
  std::size_t size() const { return is_text ? text.size() : static_cast<std::size_t>(number.size()); }
  // Row i's cell; a text that is not UTF-8 is named by table, line (as in a CSV file) and column.
  std::string cell_of(std::size_t i, const std::string& source) const {
    return is_text ? cast_argument<std::string>(py::str(text[i]), source + " line " + std::to_string(i + 2), name)
                   : cell(number.unchecked<1>()(static_cast<py::ssize_t>(i)), nan_empty);
  }
};
}  // namespace

std::vector<lutdose::TacSeries> series_from_columns(const TacColumns& in, const std::string& source) {
  // The columns given; the parser checks the header as a file's (a missing column, by name).
  std::vector<std::string> header;
  std::vector<TacColumn> columns;
  for (const auto& [name, column] : {std::pair{"voi", &in.voi}, {"patient", &in.patient}, {"cycle", &in.cycle},
                                     {"time_h", &in.time_h}, {"activity_MBq", &in.activity_MBq},
                                     {"activity_u_MBq", &in.activity_u_MBq}, {"volume_mL", &in.volume_mL},
                                     {"mass_g", &in.mass_g}})
    if (!column->is_none()) {
      header.push_back(name);
      TacColumn c;
      c.name = name;
      c.is_text = py::isinstance<py::list>(*column);
      if (c.is_text) c.text = column->cast<py::list>();
      else c.number = column->cast<py::array_t<double>>();
      c.nan_empty = column != &in.time_h && column != &in.activity_MBq;
      columns.push_back(c);
    }
  lutdose::TacRowParser parser(header, source);
  std::vector<std::size_t> sizes;
  for (const auto& c : columns) sizes.push_back(c.size());
  const std::size_t n = sizes.empty() ? 0 : sizes.front();
  check_lengths(n, sizes, source);
  lutdose::CsvRow row;
  for (std::size_t i = 0; i < n; ++i) {
    row.line = static_cast<int>(i) + 2;  // as in a CSV file whose first line is the header
    row.cells.clear();
    for (const auto& c : columns) row.cells.push_back(c.cell_of(i, source));
    parser.add(row);
  }
  return parser.take();
}

TacColumns tac_columns_from(const py::dict& d) {
  auto optional = [&d](const char* key) { return d.contains(key) ? py::object(d[key]) : py::object(py::none()); };
  TacColumns c;
  c.voi = optional("voi");
  c.time_h = optional("time_h");
  c.activity_MBq = optional("activity_MBq");
  c.patient = optional("patient");
  c.cycle = optional("cycle");
  c.activity_u_MBq = optional("activity_u_MBq");
  c.volume_mL = optional("volume_mL");
  c.mass_g = optional("mass_g");
  return c;
}

py::dict tables_of(const std::vector<const lutdose::StoreRows*>& parts) {
  py::dict out;
  out["vois"] = vois_table(parts_of(parts, &lutdose::StoreRows::vois));
  out["candidates"] = candidates_table(parts_of(parts, &lutdose::StoreRows::candidates));
  out["targets"] = targets_table(parts_of(parts, &lutdose::StoreRows::targets));
  return small_tables(parts, out);
}

py::dict fit_tables_of(const std::vector<const lutdose::StoreRows*>& parts, bool candidates) {
  py::dict out;
  out["vois"] = vois_table(parts_of(parts, &lutdose::StoreRows::vois));
  if (candidates) out["candidates"] = candidates_table(parts_of(parts, &lutdose::StoreRows::candidates));
  return out;
}

py::dict tables_of(const lutdose::StoreRows& rows) { return tables_of(std::vector<const lutdose::StoreRows*>{&rows}); }

namespace {

// A /population column of store format 5: None in every row of an older store (its error_model is
// empty: the column is not in the store, unknown, never a guess), else the value (a number is NaN
// where the model has none).
template <class T>
void format5_column(py::dict& t, const char* name, const std::vector<lutdose::PopulationRow>& r,
                    T lutdose::PopulationRow::*m) {
  py::list out(r.size());
  for (std::size_t i = 0; i < r.size(); ++i)
    out[i] = r[i].error_model.empty() ? py::object(py::none()) : py::object(py::cast(r[i].*m));
  t[name] = out;
}

}  // namespace

py::dict population_table(const std::vector<lutdose::PopulationRow>& r) {
  using R = lutdose::PopulationRow;
  py::dict t;
  LUTDOSE_COL(t, r, R, voi_kind); LUTDOSE_COL(t, r, R, function); LUTDOSE_COL(t, r, R, parameter);
  LUTDOSE_COL(t, r, R, theta); LUTDOSE_COL(t, r, R, theta_se); LUTDOSE_COL(t, r, R, omega_diag);
  LUTDOSE_COL(t, r, R, shrinkage); LUTDOSE_COL(t, r, R, sigma_log); LUTDOSE_COL(t, r, R, n_tacs);
  LUTDOSE_COL(t, r, R, n_observations);
  py::list e_step(r.size());  // None where unknown (a format 3 store has no e_step), never a guess
  for (std::size_t i = 0; i < r.size(); ++i)
    e_step[i] = r[i].e_step.empty() ? py::object(py::none()) : py::object(py::str(r[i].e_step));
  t["e_step"] = e_step;
  format5_column(t, "error_model", r, &R::error_model);
  format5_column(t, "omega_structure", r, &R::omega_structure);
  format5_column(t, "sigma0_MBq", r, &R::sigma0_MBq);
  format5_column(t, "b_proportional", r, &R::b_proportional);
  format5_column(t, "log_omega_se", r, &R::log_omega_se);
  format5_column(t, "log_sigma_log_se", r, &R::log_sigma_log_se);
  format5_column(t, "log_sigma0_se", r, &R::log_sigma0_se);  // format 6: NaN in a format 5 store
  format5_column(t, "log_b_proportional_se", r, &R::log_b_proportional_se);
  return t;
}

py::dict population_omega_table(const std::vector<lutdose::PopulationOmegaRow>& r) {
  using R = lutdose::PopulationOmegaRow;
  py::dict t;
  LUTDOSE_COL(t, r, R, voi_kind); LUTDOSE_COL(t, r, R, function); LUTDOSE_COL(t, r, R, parameter_i);
  LUTDOSE_COL(t, r, R, parameter_j); LUTDOSE_COL(t, r, R, covariance); LUTDOSE_COL(t, r, R, correlation);
  LUTDOSE_COL(t, r, R, correlation_se);  // format 7: NaN in an older store (not known)
  return t;
}

py::array_t<double> numpy_of(const std::vector<double>& v) {
  py::array_t<double> out(static_cast<py::ssize_t>(v.size()));
  std::copy(v.begin(), v.end(), out.mutable_data());
  return out;
}

}  // namespace lutdose_py
