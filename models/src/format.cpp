#include "lutdose/models/format.h"

#include <cmath>
#include <cstdio>

namespace lutdose::models {

std::string format_number(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.10g", x);
  return buf;
}

}  // namespace lutdose::models
