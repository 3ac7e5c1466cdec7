// NaN: the value of a quantity that is not known (lutdose never shows an unknown as 0).
#pragma once

#include <limits>

namespace lutdose {

inline constexpr double NaN = std::numeric_limits<double>::quiet_NaN();

}  // namespace lutdose
