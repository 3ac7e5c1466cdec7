// The extension module lutdose._lutdose (docs/python.md): the engine's errors as Python
// exceptions, and the bindings of each area. The Python package lutdose wraps it.
#include <pybind11/pybind11.h>

#include <chrono>
#include <future>
#include <new>
#include <stdexcept>

#include "bindings.h"
#include "lutdose/error.h"
#include "lutdose/io/output_dir.h"
#include "lutdose/version.h"

namespace lutdose_py {

void run_interruptible(const std::function<void()>& job, std::atomic<bool>& stop) {
  bool signalled = false;
  std::exception_ptr error;
  {
    py::gil_scoped_release release;
    auto done = std::async(std::launch::async, job);
    while (done.wait_for(std::chrono::milliseconds(100)) != std::future_status::ready) {
      if (signalled) continue;
      py::gil_scoped_acquire acquire;
      if (PyErr_CheckSignals() != 0) {  // the handler raised: the exception is now pending
        signalled = true;
        stop = true;
      }
    }
    try {
      done.get();
    } catch (...) {
      error = std::current_exception();
    }
  }
  if (signalled) throw py::error_already_set();  // the pending KeyboardInterrupt
  if (error) std::rethrow_exception(error);
}

}  // namespace lutdose_py

PYBIND11_MODULE(_lutdose, m) {
  m.doc() = "lutdose engine bindings (use the package lutdose, docs/python.md)";
  m.attr("__version__") = LUTDOSE_VERSION;
  // Bad input: a ValueError with the CLI's message. Output errors (full disk): OSError. Any other
  // C++ exception is a RuntimeError (pybind11's default translation).
  static pybind11::exception<lutdose::InputError> input_error(m, "InputError", PyExc_ValueError);
  pybind11::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const lutdose::InputError& e) {
      input_error(e.what());
    } catch (const lutdose::OutputError& e) {
      PyErr_SetString(PyExc_OSError, e.what());
    } catch (const pybind11::builtin_exception&) {
      throw;  // pybind11's own (TypeError of a bad argument, ...): its translation
    } catch (const pybind11::error_already_set&) {
      throw;
    } catch (const std::bad_alloc&) {
      throw;  // MemoryError
    } catch (const std::exception& e) {
      PyErr_SetString(PyExc_RuntimeError, e.what());  // any internal error, whatever its C++ type
    }
  });
  // For the tests: an internal error of each kind std::out_of_range (pybind11 would make it an
  // IndexError), std::logic_error and std::runtime_error must arrive as RuntimeError.
  m.def("_internal_error_for_test", [](const std::string& kind) {
    if (kind == "out_of_range") throw std::out_of_range("test: out of range");
    if (kind == "logic") throw std::logic_error("test: logic error");
    throw std::runtime_error("test: runtime error");
  });
  lutdose_py::bind_fit(m);
  lutdose_py::bind_run(m);
  lutdose_py::bind_store(m);
  lutdose_py::bind_reference(m);
  lutdose_py::bind_dose(m);
}
