// The whole pipeline on a TAC table: fits and TIAs per VOI, then self-doses (design.md §1).
#pragma once

#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "lutdose/dose.h"
#include "lutdose/fitting.h"
#include "lutdose/nuclide.h"
#include "lutdose/tac_table.h"

namespace lutdose {

struct RunOptions {
  FitOptions fit;
  //! Dose options; without a value the run stops after the TIAs (lutdose fit).
  std::optional<DoseOptions> dose;
  //! Administered activity [MBq] (net of residual); NaN when not given (no tia_h, no Gy/GBq).
  double administered_MBq = std::numeric_limits<double>::quiet_NaN();
  std::string nuclide = "Lu-177";
  double half_life_override_h = 0;  //!< > 0 replaces the ICRP-107 half-life
  std::string data_dir;             //!< resolved data directory
  std::string tac_path;             //!< input file, recorded in the output
};

struct VoiResult {
  TacSeries tac;
  TacFit fit;
  double mean_mass_g = std::numeric_limits<double>::quiet_NaN();      //!< from the table
  double mean_volume_mL = std::numeric_limits<double>::quiet_NaN();   //!< from the table
  double tia_h = std::numeric_limits<double>::quiet_NaN();  //!< TIA / administered activity
};

struct CycleResult {
  std::string patient;
  int cycle = 1;
  double administered_MBq = std::numeric_limits<double>::quiet_NaN();
  std::vector<VoiResult> vois;
  std::vector<SelfDose> doses;
};

struct RunResult {
  std::string version;
  Nuclide nuclide;
  RunOptions options;
  std::vector<std::string> svalue_files;  //!< data files of the S-value set and spheres
  std::string svalue_set_description;
  std::vector<CycleResult> cycles;  //!< in the order of the table (patient, then cycle)
};

//! Runs fits (and doses when options.dose is set) for every series of the table. Throws
//! InputError on bad input before anything is written.
RunResult run_tac_table(const std::vector<TacSeries>& series, const RunOptions& options);

}  // namespace lutdose
