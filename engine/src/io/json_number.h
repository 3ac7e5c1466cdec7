#pragma once
// Internal helper shared by the JSON writers (results.cpp, planning.cpp, pipeline.cpp).

#include <cmath>

#include <nlohmann/json.hpp>

namespace lutdose::detail {

//! A number for a JSON document: JSON has no NaN or infinity, so a value that is not finite
//! ("not available", e.g. an uncertainty that could not be estimated) is written as null.
inline nlohmann::ordered_json json_number(double x) {
  return std::isfinite(x) ? nlohmann::ordered_json(x) : nlohmann::ordered_json(nullptr);
}

}  // namespace lutdose::detail
