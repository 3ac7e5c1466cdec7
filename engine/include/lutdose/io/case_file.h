// The case file (design.md §4.3): one patient, one or more cycles, measurements as counts,
// activities or concentrations with their calibration. The schema is in docs/case-file.md.
// Loading validates everything and reports every problem it finds, not only the first.
#pragma once

#include <limits>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "lutdose/dosimetry/dose.h"
#include "lutdose/kinetics/fitting.h"
#include "lutdose/quantification/quantification.h"
#include "lutdose/radiobiology/radiobiology.h"
#include <nlohmann/json.hpp>
#include "lutdose/io/tac_table.h"
#include "lutdose/kinetics/reduced_schedules.h"
#include "lutdose/radiobiology/residual.h"

namespace lutdose {

inline constexpr int CASE_FORMAT_VERSION = 1;

//! A calibration protocol: one camera, collimator, window and reconstruction.
struct Protocol {
  std::string name;
  double cf_cps_per_MBq = std::numeric_limits<double>::quiet_NaN();
  double cf_u_cps_per_MBq = 0;
  DeadTimeModel dead_time = DeadTimeModel::none;
  double tau_s = 0;
  std::optional<RecoveryTable> recovery;  //!< empty when absent or invalid
  bool cf_given = false;        //!< the file gives a CF (valid or not)
  bool recovery_given = false;  //!< the file gives a recovery table (valid or not)
};

struct CaseMeasurement {
  std::string kind;  //!< "counts", "activity", "concentration"
  double value = 0;  //!< counts, MBq or MBq/mL
  double activity_u_MBq = std::numeric_limits<double>::quiet_NaN();  //!< given with activity
  //! Scatter correction of counts (optional, together): raw counts W of the scatter window(s) and
  //! the factor k of the subtraction C = P - k W; then Var C = C + k W + k^2 W (NaN: not given).
  double scatter_window_counts = std::numeric_limits<double>::quiet_NaN();
  double scatter_window_k = std::numeric_limits<double>::quiet_NaN();
  double volume_mL = std::numeric_limits<double>::quiet_NaN();
  double mass_g = std::numeric_limits<double>::quiet_NaN();
  bool volume_given = false;  //!< written in the file (valid or not)
  std::string path;  //!< JSON path, for messages
};

struct CaseTimepoint {
  double start_h = 0;  //!< acquisition start after the reference time
  double duration_s = std::numeric_limits<double>::quiet_NaN();
  double observed_rate_cps = std::numeric_limits<double>::quiet_NaN();
  std::map<std::string, CaseMeasurement> vois;
  std::vector<std::string> voi_order;
  std::string path;
  bool duration_given = false;       //!< written in the file (valid or not)
  bool observed_rate_given = false;  //!< written in the file (valid or not)
};

struct CaseVoi {
  double volume_mL = std::numeric_limits<double>::quiet_NaN();
  double mass_g = std::numeric_limits<double>::quiet_NaN();
  bool recovery = false;  //!< divide by the protocol's RC(volume)
  double volume_u_mL = 0;  //!< standard uncertainty of the volume (segmentation), for the budget
  bool volume_given = false;  //!< written in the file (valid or not)
};

//! Blood samples of a cycle (for the blood-based marrow dose): activity concentration over time.
struct BloodData {
  std::vector<double> time_h;
  std::vector<double> concentration_MBq_per_mL;
  std::vector<double> concentration_u_MBq_per_mL;  //!< empty when not given
  double hematocrit = std::numeric_limits<double>::quiet_NaN();
};

struct CaseCycle {
  int cycle = 1;
  std::string reference_time;  //!< as written ("" when only start_h is used)
  double reference_abs_h = std::numeric_limits<double>::quiet_NaN();  //!< hours since 1970 UTC
  double administered_measured_MBq = 0;  //!< dose-calibrator reading
  double administered_measured_at_h = 0;  //!< its time after the reference time (may be < 0)
  double residual_measured_MBq = 0;       //!< residual in syringe and line
  double residual_measured_at_h = 0;
  std::string protocol;
  TimingConvention timing = TimingConvention::acquisition_start;
  DecayCorrection decay_corrected_to = DecayCorrection::none;
  std::map<std::string, CaseVoi> vois;
  std::vector<CaseTimepoint> timepoints;
  std::optional<BloodData> blood;
  std::string path;
};

struct CaseFile {
  std::string path;
  std::string text;    //!< the file as read (exactly the bytes analysed)
  std::string sha256;  //!< SHA-256 of `text`, hexadecimal
  //! The files the case file names, as (field, path resolved against its folder): "dose.svalues",
  //! "fit.model" (when a file); read by read_run_files, not part of `text`.
  std::vector<std::pair<std::string, std::string>> named_files;
  std::string patient_id;
  std::string sex;
  std::string phantom;
  std::string nuclide = "Lu-177";
  double half_life_override_h = 0;
  double body_mass_g = std::numeric_limits<double>::quiet_NaN();  //!< patient.mass
  std::map<std::string, Protocol> protocols;
  FitOptions fit;
  DoseOptions dose;
  //! radiobiology.tissues: LQ parameters overriding the table (pattern -> parameters).
  std::vector<std::pair<std::string, TissueParameters>> tissue_overrides;
  //! radiobiology.residual (needs reference times).
  ResidualHandling residual = ResidualHandling::none;
  //! fit.reduced (methods.md §4).
  ReducedSchedule reduced = ReducedSchedule::none;
  //! fit.model: a compartment model name, or a file (resolved against the case file's folder).
  std::string compartment_model;
  //! fit.population: a population file (lutdose population learn; docs/population.md), resolved against
  //! the case file's folder as the other files it names; empty: none (individual or previous-cycles
  //! kinetics). Every VOI is then fitted by MAP with it as prior, as with --population.
  std::string population_file;
  //! radiobiology.repopulation (tumours, optional; parameters [unverified], no defaults).
  std::string repopulation_targets;
  double repopulation_alpha_per_Gy = std::numeric_limits<double>::quiet_NaN();
  double repopulation_t_pot_d = std::numeric_limits<double>::quiet_NaN();
  double repopulation_kickoff_d = 0;
  //! The "plan" block as written (validated keys), for `lutdose plan CASE.json`.
  nlohmann::json plan;
  int mc_samples = 0;                        //!< uncertainty.monte_carlo_samples
  unsigned long long mc_seed = 20261124;     //!< uncertainty.seed
  std::vector<CaseCycle> cycles;
};

//! Reads and validates a case file (read once; limits in docs/case-file.md). Throws InputError
//! listing the problems (one per line, the first MAX_PROBLEMS_LISTED). Files it names (dose.svalues,
//! fit.model) resolve relative to its folder and must stay in it unless `allow_external_files`.
CaseFile load_case_file(const std::string& path, bool allow_external_files = false);

//! Turns the case's measurements into TACs (activity at time after t0, with per-point
//! uncertainty and provenance). `lambda_per_h` is the physical decay constant. Throws InputError
//! listing every problem (saturation, volume outside the RC table, ...).
struct QuantifiedCase {
  std::vector<TacSeries> series;
  //! Per series (same order), per point: how the activity was obtained.
  std::vector<std::vector<QuantifiedPoint>> points;
  //! Administered activity per cycle number [MBq], at the reference time, net of the residual.
  std::map<int, double> administered_MBq;
  //! Blood samples per cycle number, where given.
  std::map<int, BloodData> blood;
};
QuantifiedCase quantify_case(const CaseFile& c, double lambda_per_h);

//! Parses "YYYY-MM-DDTHH:MM[:SS[.fff]][Z|+HH:MM|-HH:MM]" into hours since 1970-01-01 UTC (a time
//! without an offset as UTC). Returns false when the text is not such a date-time or the date does
//! not exist in the calendar (2021-02-31).
bool parse_date_time_h(const std::string& text, double& hours);

}  // namespace lutdose
