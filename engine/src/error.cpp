#include "lutdose/error.h"

#include "lutdose/models/format.h"
#include "lutdose/models/input.h"

#include <cmath>
#include <cstdio>

namespace lutdose {

void throw_input_error(const std::string& where, const std::string& field, const std::string& value,
                       const std::string& expected) {
  throw InputError(where + ": " + field + " is '" + models::quote_value(value) + "'; expected " + expected);
}

std::string format_number(double x) { return models::format_number(x); }

}  // namespace lutdose
