// Errors of lutdose. Bad input (a file, a field or a value the user can fix) is an InputError:
// the CLI turns it into exit status 2. Anything else is an internal error (exit status 1).
//
// Conventions of the public headers (engine/include/lutdose, models/include/lutdose/models):
// units are in the names (`_h`, `_MBq`, `_MBq_h`, `_Gy`, `_g`, `_mL`, `_per_h`, `_mGy_per_MBq_s`)
// or stated in brackets; every function says which exceptions it throws; "Throws nothing" means
// no exception of lutdose's (std::bad_alloc, as anywhere, aside).
#pragma once

#include <stdexcept>
#include <string>

namespace lutdose {

//! Bad input the user can fix; what() names the file or option, the field, the value and what was
//! expected (exit status 2 in the CLI).
class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

//! "WHERE: FIELD is VALUE; expected EXPECTED" — the one message form for bad input. A long VALUE
//! is quoted in part (models::quote_value). Always throws InputError.
[[noreturn]] void throw_input_error(const std::string& where, const std::string& field,
                                    const std::string& value, const std::string& expected);

//! Text of a number for messages ("%.10g"; "nan", "inf", "-inf"). Throws nothing.
std::string format_number(double x);

}  // namespace lutdose
