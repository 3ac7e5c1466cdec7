#include "lutdose/pipeline/options.h"

namespace lutdose {

std::string to_string(InputKind k) { return k == InputKind::case_file ? "case-file" : "tac-table"; }

}  // namespace lutdose
