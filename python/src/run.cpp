// Bindings of whole runs (docs/python.md): run_case (a case file) and run_tac (TAC columns or a TAC
// table), as `lutdose run` computes them: the same options, the same engine calls, and the same
// results.json text, results.csv, table and store rows.
#include <pybind11/stl.h>

#include <sstream>

#include "bindings.h"
#include "convert.h"
#include "lutdose/io/case_file.h"
#include "lutdose/io/output_dir.h"
#include "lutdose/io/results.h"
#include "lutdose/io/run_files.h"
#include "lutdose/io/store.h"
#include "lutdose/pipeline/pipeline.h"
#include "run_options.h"

namespace lutdose_py {

namespace {

// What a run gives Python: the results.json text, the store tables of the run, the printed table
// and results.csv. `source` and `sha256` name the input as in results.h5.
py::tuple outputs(const lutdose::RunResult& r, const std::string& source, const std::string& sha256) {
  std::string json, csv, table;
  lutdose::StoreRows rows;
  {
    py::gil_scoped_release release;
    json = lutdose::to_json(r, true).dump(2) + "\n";
    csv = lutdose::to_csv(r);
    std::ostringstream s;
    lutdose::print_table(r, s);
    table = s.str();
    rows = lutdose::store_rows(r, source, sha256);
  }
  return py::make_tuple(json, tables_of(rows), table, csv);
}

// `lutdose run CASE.json` with --mc-samples / --mc-seed when >= 0 / given (None).
py::tuple run_case_file(const std::string& path, bool allow_external, const py::object& mc_samples,
                        const py::object& mc_seed, const std::string& data_dir) {
  auto c = lutdose::load_case_file(path, allow_external);
  const long long samples = mc_samples.is_none() ? 0 : whole_number(mc_samples, "run_case", "mc_samples");
  const long long seed = mc_seed.is_none() ? 0 : whole_number(mc_seed, "run_case", "mc_seed");
  lutdose_cli::throw_problems(lutdose::validate_monte_carlo(samples, seed));
  if (!mc_samples.is_none()) c.mc_samples = static_cast<int>(samples);
  if (!mc_seed.is_none()) c.mc_seed = static_cast<unsigned long long>(seed);
  const auto& ref = reference_of(data_dir_of(data_dir));
  lutdose::RunResult r;
  {
    py::gil_scoped_release release;
    auto o = lutdose::run_options_from_case(c, ref);
    lutdose::read_run_files(o, ref);
    r = lutdose::run_case(c, o, ref);
  }
  return outputs(r, r.provenance.options.tac_path, c.sha256);
}

// `lutdose run --tac`: the table is a file (`path`, read as the CLI reads it) or columns (`columns`,
// checked row by row as a file's rows; `path` then names them in messages and results).
py::tuple run_tac_columns(const py::object& columns, const std::string& path, const py::dict& options,
                          const py::object& mc_samples, const py::object& mc_seed) {
  lutdose_cli::TacRunArgs a;
  a.fit = fit_args_from(options);
  a.fit.tac = path;
  a.fit.activity_name = "administered_MBq";  // run_tac's argument (options' activity_MBq)
  a.fit.given_in = "run_tac";
  a.dose = dose_args_from(options);
  take(options, "phantom", a.phantom, "run_tac");
  take(options, "svalues", a.svalues, "run_tac");
  take(options, "body_mass_kg", a.body_mass_kg, "run_tac");
  if (!mc_samples.is_none()) a.mc_samples = whole_number(mc_samples, "run_tac", "mc_samples");
  if (!mc_seed.is_none()) a.mc_seed = whole_number(mc_seed, "run_tac", "mc_seed");
  auto o = lutdose_cli::make_tac_run_options(a);
  std::string bytes;
  const auto series = columns.is_none() ? lutdose::read_tac_table(path, &bytes)
                                        : series_from_columns(tac_columns_from(columns.cast<py::dict>()), path);
  lutdose_cli::learn_if_population_kinetics(a.fit, series, o);  // kinetics="population", as `lutdose run --tac`
  lutdose_cli::check_previous_cycles_input(series, o, path);
  const auto& ref = reference_of(o.data_dir);
  lutdose::RunResult r;
  {
    py::gil_scoped_release release;
    lutdose::read_run_files(o, ref);
    r = lutdose::run_tac_table(series, o, ref);
  }
  return outputs(r, path, columns.is_none() ? lutdose::sha256_hex(bytes) : "");
}

}  // namespace

void bind_run(py::module_& m) {
  m.def("_run_case", &run_case_file, py::arg("path"), py::arg("allow_external_files"), py::arg("mc_samples"),
        py::arg("mc_seed"), py::arg("data_dir"));
  m.def("_run_tac", &run_tac_columns, py::arg("columns"), py::arg("path"), py::arg("options"),
        py::arg("mc_samples"), py::arg("mc_seed"));
}

}  // namespace lutdose_py
