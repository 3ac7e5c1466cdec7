// How the residual activity of the previous cycle is handled (radiobiology.residual; spec §7.2, docs/methods.md §8).
#pragma once

#include <optional>
#include <string>

namespace lutdose {

enum class ResidualHandling {
  none,               //!< each cycle integrated to infinity, nothing subtracted
  integrate_to_next,  //!< each cycle's TIA and BED integrated to the next cycle's reference time
  subtract,           //!< the previous cycle's fitted curve subtracted from the next cycle's activities
};
//! "none", "integrate-to-next", "subtract".
std::string to_string(ResidualHandling r);
//! The inverse of to_string; std::nullopt for any other text.
std::optional<ResidualHandling> parse_residual_handling(const std::string& text);

}  // namespace lutdose
