// Conversions shared by the bindings (docs/python.md): option dictionaries to the CLI's argument
// structs, long columns to TAC series, result tables to dictionaries of numpy columns, and the
// reference data loaded once per data directory.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <climits>
#include <string>
#include <type_traits>
#include <vector>

#include "lutdose/error.h"
#include "lutdose/io/store.h"
#include "lutdose/io/tac_table.h"
#include "lutdose/pipeline/reference_data.h"
#include "run_options.h"

namespace lutdose_py {

namespace py = pybind11;

//! A Python value as a message shows it: its str(), or its ascii() where str() is not UTF-8 (a lone
//! surrogate such as "\udcff").
std::string text_of(py::handle value);

//! The InputError of an argument or option of the wrong type: "WHERE: NAME is VALUE; expected
//! EXPECTED, not TYPE" (a text that is not UTF-8 is named as such), never pybind's cast error.
[[noreturn]] void throw_wrong_type(py::handle value, const std::string& where, const std::string& name,
                                   const std::string& expected);

//! What a value of type T must be, for throw_wrong_type.
template <class T>
const char* expected_type() {
  if constexpr (std::is_same_v<T, std::string>) return "a text (str or os.PathLike for a file)";
  else if constexpr (std::is_same_v<T, bool>) return "True or False";
  else if constexpr (std::is_integral_v<T>) return "a whole number";
  else if constexpr (std::is_arithmetic_v<T>) return "a number";
  else if constexpr (std::is_same_v<T, std::vector<std::string>>) return "a list of texts";
  else if constexpr (std::is_same_v<T, std::vector<double>>) return "a list of numbers";
  else if constexpr (std::is_same_v<T, std::vector<int>>) return "a list of whole numbers";
  else return "a value as docs/python.md gives";
}

//! `value` as T (pybind11's conversion); a value of another type is an InputError naming `where`
//! and `name` (throw_wrong_type); a bool is refused as a number and a number as a bool. The one
//! guarded cast of the bindings: no bare .cast<>() on input.
//! True for Python's and numpy's bool.
bool is_bool(py::handle value);

template <class T>
T cast_argument(py::handle value, const std::string& where, const std::string& name) {
  // A bool is a flag, not the number 1 (a CSV cell "True" is not a number either), and only a bool
  // is a flag (pybind11 would take 1 or 0.5 as True).
  if constexpr (std::is_arithmetic_v<T>)
    if (is_bool(value) != std::is_same_v<T, bool>) throw_wrong_type(value, where, name, expected_type<T>());
  try {
    return value.cast<T>();
  } catch (const py::cast_error&) {
    throw_wrong_type(value, where, name, expected_type<T>());
  }
}

//! The option `key` of `d` into `out` when given and not None (else `out` stays), by cast_argument.
template <class T>
void take(const py::dict& d, const char* key, T& out, const std::string& where = "options") {
  if (!d.contains(key) || d[key].is_none()) return;
  out = cast_argument<T>(d[key], where, key);
}

//! A whole-number argument (an int or numpy integer; not a bool, and 10.5 is refused, not cut) in
//! [lo, hi], else an InputError naming `where` and `name`. None is the caller's (not given).
long long whole_number(py::handle value, const std::string& where, const std::string& name,
                       long long lo = LLONG_MIN, long long hi = LLONG_MAX);

//! A `threads` argument (whole_number) checked as the command line's --threads (checked_threads: 0
//! to 256, its message); 1.7 is refused, not cut to 1.
unsigned threads_of(py::handle threads, const std::string& where);

//! The fit options of the CLI (run_options.h FitArgs) from a dict whose keys are the option names
//! with '_' for '-' (function, functions, error_model, ...). A key that is not an option is a
//! TypeError naming it. Values keep the CLI's texts, so bad choices give the CLI's messages.
lutdose_cli::FitArgs fit_args_from(const py::dict& options);

//! The dose options of the CLI (DoseArgs) from the same dict (tumour_method, sphere_composition,
//! density_g_per_mL, mass_scaling, cross_scaling); other keys are ignored here.
lutdose_cli::DoseArgs dose_args_from(const py::dict& options);

//! The data directory: `explicit_dir` when not empty, else the engine's search (find_data_dir).
std::string data_dir_of(const std::string& explicit_dir);

//! The reference data of a data directory, loaded once per directory and kept for the process.
const lutdose::ReferenceData& reference_of(const std::string& data_dir);

//! Long TAC columns (one row per VOI per time point); every one may be None (no such column: the
//! TAC table's header check names the missing required ones). Each is a list of cell texts (as a
//! CSV file has them) or a numpy array of numbers.
struct TacColumns {
  py::object voi, time_h, activity_MBq, patient, cycle, activity_u_MBq, volume_mL, mass_g;
};

//! The columns of a dict {voi, time_h, activity_MBq, patient, cycle, activity_u_MBq, volume_mL, mass_g}.
TacColumns tac_columns_from(const py::dict& d);

//! Long TAC columns to series, through the TAC table's own row checks (TacRowParser), so that bad
//! values give `lutdose fit`'s messages; `source` names the table in messages, rows are numbered
//! from 2 as in a CSV file with its header. NaN in activity_u_MBq, volume_mL, mass_g is an empty cell.
std::vector<lutdose::TacSeries> series_from_columns(const TacColumns& columns, const std::string& source);

//! The tables of a store (or of a run's rows) as {table name: {column: numpy array or list}}, the
//! columns in the order of docs/store.md (and of lutdose export's CSV files).
py::dict tables_of(const lutdose::StoreRows& rows);
//! The same of rows in parts (a parallel run's blocks, in order), read as one table each: no join.
py::dict tables_of(const std::vector<const lutdose::StoreRows*>& parts);
//! Only the /vois table of `parts` and, where `candidates`, /candidates (what fit_many returns).
py::dict fit_tables_of(const std::vector<const lutdose::StoreRows*>& parts, bool candidates);

//! The /population table of a store header (docs/store.md) as {column: numpy array or list}.
//! The format-5 columns (error_model ... log_sigma_log_se) are None in every row of an older store.
py::dict population_table(const std::vector<lutdose::PopulationRow>& rows);
//! The /population_omega table of a store header (format 5; no rows in an older store).
py::dict population_omega_table(const std::vector<lutdose::PopulationOmegaRow>& rows);

//! The whole of a columns' vector of doubles as a numpy array (copy).
py::array_t<double> numpy_of(const std::vector<double>& v);

}  // namespace lutdose_py
