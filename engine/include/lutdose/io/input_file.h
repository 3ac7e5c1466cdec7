// Limits and checks for untrusted input (docs/case-file.md "Limits", docs/tac-format.md): bounded
// reading of files, confinement of files named inside a case file, names, plausibility ranges, and
// the list of problems of one input.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "lutdose/io/store_names.h"
#include "lutdose/models/input.h"

namespace lutdose {

using models::MAX_INPUT_BYTES;
using models::MAX_JSON_DEPTH;
using models::MAX_QUOTED_CHARS;

//! Points of one TAC (clinical dosimetry uses 3 to 10, dynamic series a few hundred).
inline constexpr std::size_t MAX_POINTS_PER_TAC = 1000;
//! VOIs of one patient's cycle (a whole-body segmentation has about 100 regions).
inline constexpr std::size_t MAX_VOIS_PER_CYCLE = 500;
//! Cycles of one patient (PRRT gives 4 to 6; re-treatment rarely more than 10).
inline constexpr std::size_t MAX_CYCLES = 100;
//! Largest cycle number (the TAC table's cycle column and a case file's cycles[].cycle).
inline constexpr long long MAX_CYCLE_NUMBER = 1000;
//! Bytes of a name: patient id, VOI, protocol, region or target name.
inline constexpr std::size_t MAX_NAME_BYTES = 256;
//! Problems listed in one message; the rest are counted ("... and K more problems").
inline constexpr std::size_t MAX_PROBLEMS_LISTED = 50;

//! Reads a whole input file (at most MAX_INPUT_BYTES) once; InputError "PATH: cannot read the
//! WHAT: REASON" otherwise. `regular_only` refuses devices, pipes and directories.
std::string read_input_file(const std::string& path, const std::string& what, bool regular_only);

//! A file named inside a case file (`field`, e.g. "dose.svalues"): resolved relative to the case
//! file's folder; absolute paths, ".." and links leading out of that folder are refused unless
//! `allow_external`. Checks that it is a regular file. InputError naming the case file and field.
std::string resolve_case_reference(const std::string& case_path, const std::string& field,
                                   const std::string& value, bool allow_external);

//! The problem with a name used as an identifier ("" when fine): empty, longer than
//! MAX_NAME_BYTES, invalid UTF-8, or holding NUL or other control characters. Throws nothing.
std::string name_problem(std::string_view name);

//! What is expected of a name that becomes a key of the results store (a patient id, a VOI name),
//! "" when `name` is one: `what` (e.g. "a patient id") of at most max_bytes bytes (the
//! store's name columns; this one's length said), or `what` with the problem name_problem finds.
//! For the readers' messages, so that a name the store cannot hold is refused where it is read,
//! with its file and line. Throws nothing but std::bad_alloc.
std::string key_name_expected(std::string_view name, const std::string& what,
                              std::size_t max_bytes = STORE_NAME_BYTES);

//! One message from a list of problems: the first MAX_PROBLEMS_LISTED, one per line, then
//! "... and K more problems". Throws nothing.
std::string join_problems(const std::vector<std::string>& problems);

//! Physical plausibility ranges of inputs (docs/case-file.md "Plausibility ranges"): values outside
//! are input errors, as no measurement of 177Lu dosimetry produces them.
struct PlausibleRange {
  double lo, hi;       //!< inclusive bounds, in `unit`
  const char* unit;    //!< e.g. "MBq"
  const char* reason;  //!< why the bounds, in words (for the message)
  //! lo <= x <= hi (false for NaN), x in `unit`. Throws nothing.
  bool contains(double x) const { return x >= lo && x <= hi; }
  std::string text() const;  //!< "from LO to HI UNIT (REASON)"; throws nothing
};
//! Activity of a VOI or an administration [MBq]: 100 GBq is above any therapy activity.
extern const PlausibleRange ACTIVITY_RANGE_MBQ;
//! Counts of one VOI in one frame.
extern const PlausibleRange COUNTS_RANGE;
//! Duration of one acquisition frame [s].
extern const PlausibleRange FRAME_DURATION_RANGE_S;
//! Mass of a VOI, target or patient [g] (also volumes in mL).
extern const PlausibleRange MASS_RANGE_G;
//! Volume of a VOI [mL].
extern const PlausibleRange VOLUME_RANGE_ML;
//! Time after the reference time [h].
extern const PlausibleRange TIME_RANGE_H;
//! Activity concentration [MBq/mL].
extern const PlausibleRange CONCENTRATION_RANGE_MBQ_PER_ML;
//! S-value times the target mass [mGy g / (MBq s)]: the energy absorbed per decay.
extern const PlausibleRange S_TIMES_MASS_RANGE;
//! Calibration factor [cps/MBq].
extern const PlausibleRange CF_RANGE_CPS_PER_MBQ;
//! Absorbed dose or BED of one cycle [Gy] (dose-history table).
extern const PlausibleRange DOSE_RANGE_GY;
//! Physical or effective half-life [h].
extern const PlausibleRange HALF_LIFE_RANGE_H;
//! Hematocrit (a fraction).
extern const PlausibleRange HEMATOCRIT_RANGE;
//! Repair half-time of a tissue [h].
extern const PlausibleRange REPAIR_HALF_TIME_RANGE_H;
//! alpha/beta of a tissue [Gy].
extern const PlausibleRange ALPHA_BETA_RANGE_GY;
//! Red-marrow-to-blood activity concentration ratio.
extern const PlausibleRange RMBLR_RANGE;
//! Organ density [g/mL].
extern const PlausibleRange DENSITY_RANGE_G_PER_ML;
//! Coverage factor k of the plan's safety margin.
extern const PlausibleRange SAFETY_K_RANGE;
//! Relative SD of the plan's dose prediction.
extern const PlausibleRange PREDICTION_CV_RANGE;

}  // namespace lutdose
