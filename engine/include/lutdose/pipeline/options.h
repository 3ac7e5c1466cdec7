// The options of a whole run (TAC table or case file): what the stages are asked to do.
#pragma once

#include <limits>
#include <optional>
#include <string>
#include <vector>
#include <map>
#include <nlohmann/json.hpp>
#include "lutdose/io/case_file.h"
#include "lutdose/dosimetry/dose.h"
#include "lutdose/kinetics/fitting.h"
#include "lutdose/dosimetry/nuclide.h"
#include "lutdose/planning/planning.h"
#include "lutdose/radiobiology/radiobiology.h"
#include "lutdose/io/tac_table.h"

namespace lutdose {

struct RunOptions {
  FitOptions fit;
  //! Dose options; without a value the run stops after the TIAs (lutdose fit).
  std::optional<DoseOptions> dose;
  //! Administered activity [MBq] (net of residual); NaN when not given (no tia_h, no Gy/GBq).
  double administered_MBq = std::numeric_limits<double>::quiet_NaN();
  //! Administered activity per cycle number [MBq]; overrides administered_MBq (case files).
  std::map<int, double> administered_by_cycle_MBq;
  std::string nuclide = "Lu-177";
  double half_life_override_h = 0;  //!< > 0 replaces the ICRP-107 half-life
  std::string data_dir;             //!< resolved data directory
  std::string tac_path;             //!< input file, recorded in the output
  std::string input_kind = "tac-table";  //!< "tac-table" or "case-file"
  std::map<int, BloodData> blood_by_cycle;  //!< blood samples per cycle (blood-based marrow)
  //! Reduced schedules (methods.md §4): "none" (fit), or for every VOI "hanscheid", "madsen",
  //! "population" (single time point, the last one) or "prior" (MAP fit with the population priors
  //! of data/kinetics/population_kinetics.csv; needs activity_u_MBq).
  std::string reduced = "none";
  //! A compartment model file (docs/compartment-models.md): the VOIs it observes are fitted jointly
  //! per cycle (needs the administered activity); the others keep the exponential family.
  std::string compartment_model;
  //! Residual activity of the previous cycle: "none", "integrate-to-next" (each cycle's TIA and
  //! BED to the next cycle's reference time) or "subtract" (the previous cycle's fitted curve is
  //! subtracted from the next cycle's activities). Needs cycle_start_h.
  std::string residual = "none";
  //! Reference time of each cycle [h since 1970 UTC] (case files with date-times).
  std::map<int, double> cycle_start_h;
  //! Tumour repopulation on the summed BED: -ln2 (T - T_k) / (alpha T_pot) for T > T_k, T the
  //! time from the first to the last cycle (optional; no defaults).
  std::string repopulation_targets;
  double repopulation_alpha_per_Gy = std::numeric_limits<double>::quiet_NaN();
  double repopulation_t_pot_d = std::numeric_limits<double>::quiet_NaN();
  double repopulation_kickoff_d = 0;
  //! Tissue parameters overriding data/radiobiology/tissue_parameters.csv (pattern -> params).
  std::vector<std::pair<std::string, TissueParameters>> tissue_overrides;
  //! Monte Carlo cross-check of the dose uncertainty: samples (0 = off) and seed.
  int mc_samples = 0;
  unsigned long long mc_seed = 20261124;
};

}  // namespace lutdose
