#include "lutdose/radiobiology/residual.h"

namespace lutdose {

namespace {
constexpr const char* RESIDUAL_NAMES[] = {"none", "integrate-to-next", "subtract"};
}

std::string to_string(ResidualHandling r) { return RESIDUAL_NAMES[static_cast<int>(r)]; }

std::optional<ResidualHandling> parse_residual_handling(const std::string& text) {
  for (int i = 0; i < 3; ++i)
    if (text == RESIDUAL_NAMES[i]) return static_cast<ResidualHandling>(i);
  return std::nullopt;
}

}  // namespace lutdose
