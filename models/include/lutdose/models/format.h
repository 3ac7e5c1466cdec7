// Text helpers shared by the model and engine libraries.
#pragma once

#include <string>

namespace lutdose::models {

//! A number as "%.10g" (shortest faithful text for messages); "nan", "inf", "-inf". Throws
//! nothing.
std::string format_number(double x);

}  // namespace lutdose::models
