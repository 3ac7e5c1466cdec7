// Shared by the libFuzzer targets (tests/fuzz/README.md): the policy on exceptions and the file a
// path-reading public reader is given.
//
// Policy: an input error of lutdose (lutdose::InputError; for model files also
// lutdose::models::ModelError, which the engine maps to an InputError) is a correct answer to a
// bad input. Any other exception would reach the CLI's "internal error" (exit 1), which the issue
// counts as a defect, so it is reported here as a finding by aborting. Crashes, hangs and
// sanitizer reports are found by libFuzzer and the sanitizers themselves.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <typeinfo>

#include "lutdose/error.h"

namespace lutdose_fuzz {

//! Writes the input to a file of this process's own temporary directory (created once under
//! $TMPDIR, removed at exit) named `name`, and returns its path.
std::string write_input(const char* name, const uint8_t* data, size_t size);

//! The lutdose data directory of the build (the source tree's data/).
const std::string& data_dir();

[[noreturn]] inline void finding(const char* target, const char* what, const char* detail) {
  std::fprintf(stderr, "FINDING in %s: %s: %s\n", target, what, detail);
  std::abort();
}

//! Runs `f`; a lutdose::InputError or an exception of one of the types Allowed... is expected,
//! anything else is a finding.
template <class... Allowed, class F>
void run_expecting(const char* target, F&& f) {
  try {
    f();
  } catch (const lutdose::InputError&) {
  } catch (const std::exception& e) {
    if (((dynamic_cast<const Allowed*>(&e) != nullptr) || ...)) return;
    finding(target, typeid(e).name(), e.what());
  } catch (...) {
    finding(target, "a non-standard exception", "(no message)");
  }
}

}  // namespace lutdose_fuzz
