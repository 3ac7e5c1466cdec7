// The areas of the extension module lutdose._lutdose, one source file each (module.cpp joins them).
#pragma once

#include <pybind11/pybind11.h>

#include <atomic>
#include <functional>

#include "lutdose/pipeline/options.h"
#include "lutdose/pipeline/run_result.h"
#include "lutdose/io/store.h"
#include "lutdose/io/tac_table.h"

namespace lutdose_py {

namespace py = pybind11;

void bind_fit(py::module_& m);        // fit.cpp: fit_tac, fit_many, curves
void bind_run(py::module_& m);        // run.cpp: run_case, run_tac
void bind_store(py::module_& m);      // store.cpp: read_store, batch, synth
void bind_reference(py::module_& m);  // reference.cpp: reference data
void bind_dose(py::module_& m);       // dose.cpp: dose, bed, plan

//! The rows of run_tac_parallel (the store's tables), one part per block of whole patients in the
//! engine's order (not joined: tables_of reads them as one table each), and the threads it used.
struct ParallelRun {
  std::vector<lutdose::StoreRows> parts;
  std::size_t threads = 0;
  std::vector<const lutdose::StoreRows*> part_pointers() const;
};

//! run_tac_table over small blocks of whole patients, taken in turn by at most `threads` threads
//! (0: every core), each block's results turned into store rows (named `source`) as soon as it is
//! done, so the memory of one block's results is reused by the next (holding every block's results
//! until the end cost page faults on every call under glibc's malloc, which returns freed memory to
//! the system). Rows in the engine's order (patients in order of first appearance, as `lutdose
//! fit`) whatever `threads`; call without the GIL. Throws what run_tac_table throws (the first
//! block's error). When `stop` becomes true the threads take no further block (the result is then
//! incomplete: for a caller that discards it).
ParallelRun run_tac_parallel(std::vector<lutdose::TacSeries> series, const lutdose::RunOptions& o,
                             unsigned threads, const std::string& source, const std::atomic<bool>* stop = nullptr);

//! Runs `job` on a thread of its own while the calling thread, holding the GIL on entry, waits
//! without it and looks every 0.1 s for a signal (PyErr_CheckSignals: Ctrl-C). On a signal whose
//! handler raises (KeyboardInterrupt), sets `stop`, waits for the job to return and raises that
//! exception; else rethrows what `job` threw. `job` must not touch Python objects.
void run_interruptible(const std::function<void()>& job, std::atomic<bool>& stop);

}  // namespace lutdose_py
