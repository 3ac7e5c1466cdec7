// Conversions shared by the bindings (docs/python.md): option dictionaries to the CLI's argument
// structs, long columns to TAC series, result tables to dictionaries of numpy columns, and the
// reference data loaded once per data directory.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "lutdose/io/store.h"
#include "lutdose/io/tac_table.h"
#include "lutdose/pipeline/reference_data.h"
#include "run_options.h"

namespace lutdose_py {

namespace py = pybind11;

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
py::dict population_table(const std::vector<lutdose::PopulationRow>& rows);

//! The whole of a columns' vector of doubles as a numpy array (copy).
py::array_t<double> numpy_of(const std::vector<double>& v);

}  // namespace lutdose_py
