// Bindings of the fits (docs/python.md): fit_tac, fit_many and the fitted curve. The options go
// through the CLI's mapping (run_options.h), the fits through the engine's run_tac_table, as
// `lutdose fit` does.
#include <pybind11/eigen.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <iterator>
#include <thread>

#include "bindings.h"
#include "convert.h"
#include "lutdose/error.h"
#include "lutdose/io/results.h"
#include "lutdose/models/exponential.h"
#include "lutdose/pipeline/pipeline.h"
#include "lutdose/io/run_files.h"

namespace lutdose_py {

namespace {

// The run options of `lutdose fit` (make_run_options, finish_run_options) for `series` (named
// `source`), with the population of population kinetics (use_fit_population) and the files they name
// read, and the reference data of their data directory. `activity_name`, if given, names the
// administered activity in messages (given in `source`; else the command line's --activity-MBq).
lutdose::RunOptions fit_options(const py::dict& options, const std::vector<lutdose::TacSeries>& series,
                                const std::string& source, const std::string& activity_name = "") {
  std::vector<std::string> problems;
  auto a = fit_args_from(options);
  a.tac = source;
  if (!activity_name.empty()) {
    a.activity_name = activity_name;
    a.given_in = source;
  }
  auto o = lutdose_cli::make_run_options(a, problems);
  lutdose_cli::finish_run_options(o, problems);
  lutdose_cli::use_fit_population(a, series, o);
  lutdose_cli::check_previous_cycles_input(series, o, source);
  lutdose::read_run_files(o, reference_of(o.data_dir));
  return o;
}

// The patients' series (series_by_patient: the engine's order) in blocks of whole patients (a
// patient's TACs stay together, as a compartment model fits them jointly), about equal in TACs, at
// most `parts`. Every block's series are in the engine's order, so the blocks' results joined in
// block order do not depend on `parts`.
std::vector<std::vector<lutdose::TacSeries>> patient_blocks(std::vector<lutdose::TacSeries> series,
                                                            std::size_t parts) {
  const std::size_t target = (series.size() + parts - 1) / parts;
  std::vector<std::vector<lutdose::TacSeries>> blocks(1);
  for (const auto& patient : lutdose::patient_indices(series)) {  // moved, not copied
    if (blocks.back().size() >= target) blocks.emplace_back();
    for (const std::size_t i : patient) blocks.back().push_back(std::move(series[i]));
  }
  if (blocks.back().empty()) blocks.pop_back();
  return blocks;
}

}  // namespace

ParallelRun run_tac_parallel(std::vector<lutdose::TacSeries> series, const lutdose::RunOptions& o,
                             unsigned threads, const std::string& source, const std::atomic<bool>* stop) {
  const auto& reference = reference_of(o.data_dir);
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  // Several blocks per thread and at most about kBlockTacs TACs each: the threads stay busy to
  // the end, and a stop request is seen within one block's time (milliseconds).
  constexpr std::size_t kBlockTacs = 256;
  const std::size_t n_blocks = std::max<std::size_t>(8 * std::size_t{threads}, (series.size() + kBlockTacs - 1) / kBlockTacs);
  const auto blocks = patient_blocks(std::move(series), n_blocks);
  const std::size_t n_threads = std::min<std::size_t>(threads, blocks.size());
  std::vector<lutdose::StoreRows> parts(blocks.size());
  std::vector<std::exception_ptr> errors(blocks.size());
  std::atomic<std::size_t> next{0};
  std::vector<std::thread> pool;
  for (std::size_t t = 0; t < n_threads; ++t)
    pool.emplace_back([&] {
      for (std::size_t b = next++; b < blocks.size() && !(stop && *stop); b = next++) {
        try {
          parts[b] = lutdose::store_rows(lutdose::run_tac_table(blocks[b], o, reference), source, "");
        } catch (...) {
          errors[b] = std::current_exception();
        }
      }
    });
  for (auto& t : pool) t.join();
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);  // the first failing block in the engine's order, as a serial run
  return ParallelRun{std::move(parts), n_threads};
}

std::vector<const lutdose::StoreRows*> ParallelRun::part_pointers() const {
  std::vector<const lutdose::StoreRows*> out;
  for (const auto& p : parts) out.push_back(&p);
  return out;
}

namespace {

// fit_tac: one TAC; the fit of its single VOI, lambda_p [1/h] and the `lutdose fit` JSON.
py::tuple fit_one(const py::dict& columns, const py::dict& options) {
  const auto series = series_from_columns(tac_columns_from(columns), "fit_tac");
  if (series.size() != 1)
    throw lutdose::InputError("fit_tac: " + std::to_string(series.size()) +
                              " TACs given; expected one (use fit_many for several)");
  const auto o = fit_options(options, series, "fit_tac", "administered_MBq");  // fit_tac's argument
  lutdose::RunResult r;
  {
    py::gil_scoped_release release;
    r = lutdose::run_tac_table(series, o, reference_of(o.data_dir));
  }
  const auto& v = r.cycles.at(0).vois.at(0);
  return py::make_tuple(v.fit, r.provenance.nuclide.lambda_per_h(), lutdose::to_json(r, false).dump(2));
}

// fit_many: the /vois table of every TAC (and /candidates where asked), the fit time [s] and the threads used.
py::tuple fit_columns(const py::dict& columns, const py::dict& options, const py::object& threads,
                      const std::string& source, bool candidates) {
  const unsigned requested = threads_of(threads, "fit_many");
  auto series = series_from_columns(tac_columns_from(columns), source);
  const auto o = fit_options(options, series, source);
  ParallelRun run;
  double seconds = 0;
  std::atomic<bool> stop{false};
  run_interruptible(
      [&] {
        const auto start = std::chrono::steady_clock::now();
        auto r = run_tac_parallel(std::move(series), o, requested, source, &stop);
        seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (stop) return;  // interrupted: incomplete, discarded
        run = std::move(r);
      },
      stop);
  return py::make_tuple(fit_tables_of(run.part_pointers(), candidates), seconds, run.threads);
}

// A(t) [MBq] of a fitted function at times t_h [h]; NaN everywhere for an unknown function id.
Eigen::VectorXd curve(const std::string& function, const Eigen::VectorXd& parameters, double lambda_p_per_h,
                      const Eigen::VectorXd& t_h) {
  const auto* f = lutdose::models::find_exponential(function);
  if (!f || parameters.size() != f->n_parameters())
    return Eigen::VectorXd::Constant(t_h.size(), std::numeric_limits<double>::quiet_NaN());
  return f->evaluate(t_h, parameters, lambda_p_per_h);
}

}  // namespace

void bind_fit(py::module_& m) {
  using C = lutdose::CandidateFit;
  py::class_<C>(m, "CandidateFit", "One candidate function fitted to a TAC (natural units: A in MBq, rates in 1/h).")
      .def_readonly("function", &C::function).def_readonly("n_points", &C::n_points)
      .def_readonly("n_parameters", &C::n_parameters).def_readonly("fitted", &C::fitted)
      .def_readonly("parameter_names", &C::parameter_names).def_readonly("parameters", &C::parameters)
      .def_readonly("covariance", &C::covariance).def_readonly("parameter_cv", &C::parameter_cv)
      .def_readonly("correlation", &C::correlation).def_readonly("fitted_MBq", &C::fitted_MBq)
      .def_readonly("standardized_residuals", &C::standardized_residuals)
      .def_readonly("weighted_rss", &C::weighted_rss).def_readonly("r_squared", &C::r_squared)
      .def_readonly("aic", &C::aic).def_readonly("aicc", &C::aicc).def_readonly("tia_MBq_h", &C::tia_MBq_h)
      .def_readonly("tia_u_MBq_h", &C::tia_u_MBq_h).def_readonly("tia_u_dof", &C::tia_u_dof)
      .def_readonly("akaike_weight", &C::akaike_weight).def_readonly("chi_square", &C::chi_square)
      .def_readonly("chi_square_p_value", &C::chi_square_p_value)
      .def_readonly("reduced_chi_square", &C::reduced_chi_square).def_readonly("flags", &C::flags)
      .def_readonly("warnings", &C::warnings).def_readonly("accepted", &C::accepted);
  using T = lutdose::TacFit;
  py::class_<T>(m, "TacFit", "The fit of one TAC: every candidate and the chosen TIA [MBq h].")
      .def_readonly("method", &T::method).def_readonly("function", &T::function)
      .def_readonly("selected", &T::selected).def_readonly("candidates", &T::candidates)
      .def_readonly("tia_MBq_h", &T::tia_MBq_h).def_readonly("tia_u_MBq_h", &T::tia_u_MBq_h)
      .def_readonly("accepted", &T::accepted).def_readonly("selection", &T::selection)
      .def_readonly("notes", &T::notes).def_readonly("tia_u_dof", &T::tia_u_dof)
      .def_property_readonly("tia_ci68_MBq_h", [](const T& t) { return py::make_tuple(t.tia_ci68_MBq_h.low, t.tia_ci68_MBq_h.high); })
      .def_property_readonly("tia_ci95_MBq_h", [](const T& t) { return py::make_tuple(t.tia_ci95_MBq_h.low, t.tia_ci95_MBq_h.high); })
      .def_readonly("tia_u_unknown_reason", &T::tia_u_unknown_reason)
      .def_readonly("averaged_tia_MBq_h", &T::averaged_tia_MBq_h)
      .def_readonly("averaged_tia_u_MBq_h", &T::averaged_tia_u_MBq_h)
      .def_readonly("numerical_tia_MBq_h", &T::numerical_tia_MBq_h).def_readonly("tail", &T::tail);
  m.def("_fit_tac", &fit_one, py::arg("columns"), py::arg("options"));
  m.def("_fit_many", &fit_columns, py::arg("columns"), py::arg("options"), py::arg("threads"), py::arg("source"),
        py::arg("candidates"));
  m.def("_curve", &curve, py::arg("function"), py::arg("parameters"), py::arg("lambda_p_per_h"), py::arg("t_h"));
}

}  // namespace lutdose_py
