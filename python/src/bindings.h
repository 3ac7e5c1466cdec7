// The areas of the extension module lutdose._lutdose, one source file each (module.cpp joins them).
#pragma once

#include <pybind11/pybind11.h>

#include "lutdose/pipeline/options.h"
#include "lutdose/pipeline/run_result.h"
#include "lutdose/io/tac_table.h"

namespace lutdose_py {

namespace py = pybind11;

void bind_fit(py::module_& m);        // fit.cpp: fit_tac, fit_many, curves
void bind_run(py::module_& m);        // run.cpp: run_case, run_tac
void bind_store(py::module_& m);      // store.cpp: read_store, batch, synth
void bind_reference(py::module_& m);  // reference.cpp: reference data
void bind_dose(py::module_& m);       // dose.cpp: dose, bed, plan

//! The result of run_tac_parallel and the threads it used (one per block of whole patients).
struct ParallelRun {
  lutdose::RunResult result;
  std::size_t threads = 0;
};

//! run_tac_table over blocks of whole patients in at most `threads` threads (0: every core),
//! results in the engine's order (patients in order of first appearance, as `lutdose fit`) whatever
//! `threads`; call without the GIL. Throws what run_tac_table throws (the first block's error).
ParallelRun run_tac_parallel(const std::vector<lutdose::TacSeries>& series, const lutdose::RunOptions& o,
                             unsigned threads);

}  // namespace lutdose_py
