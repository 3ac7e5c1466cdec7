// Errors of lutdose. Bad input (a file, a field or a value the user can fix) is an InputError:
// the CLI turns it into exit status 2. Anything else is an internal error (exit status 1).
#pragma once

#include <stdexcept>
#include <string>

namespace lutdose {

class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

//! "WHERE: FIELD is VALUE; expected EXPECTED" — the one message form for bad input. A long VALUE
//! is quoted in part (models::quote_value).
[[noreturn]] void throw_input_error(const std::string& where, const std::string& field,
                                    const std::string& value, const std::string& expected);

//! Shortest round-trip text of a number, for messages.
std::string format_number(double x);

}  // namespace lutdose
