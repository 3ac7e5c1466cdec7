#include "lutdose/error.h"

#include <cmath>
#include <cstdio>

namespace lutdose {

void throw_input_error(const std::string& where, const std::string& field, const std::string& value,
                       const std::string& expected) {
  throw InputError(where + ": " + field + " is '" + value + "'; expected " + expected);
}

std::string format_number(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.10g", x);
  return buf;
}

}  // namespace lutdose
