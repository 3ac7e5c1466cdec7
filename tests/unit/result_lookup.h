// Test helper shared by the unit tests: a target's dose in a cycle result, by name.
#pragma once

#include <stdexcept>
#include <string>

#include "lutdose/pipeline/pipeline.h"

namespace lutdose::test {

//! The dose of `name` in `c`; throws (failing the test case) when the cycle has no such target.
inline const TargetDose& target(const CycleResult& c, const std::string& name) {
  for (const auto& t : c.doses)
    if (t.target == name) return t;
  throw std::runtime_error("no target " + name);
}

}  // namespace lutdose::test
