// The results of a whole run: per cycle and VOI the fits, TIAs and doses, summed over cycles.
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
#include "lutdose/pipeline/options.h"

namespace lutdose {

struct VoiResult {
  TacSeries tac;
  TacFit fit;
  double mean_mass_g = std::numeric_limits<double>::quiet_NaN();      //!< from the table
  double mean_volume_mL = std::numeric_limits<double>::quiet_NaN();   //!< from the table
  double tia_h = std::numeric_limits<double>::quiet_NaN();  //!< TIA / administered activity
  //! How each activity was obtained from counts (case files); empty for TAC tables.
  std::vector<QuantifiedPoint> quantification;
  //! The fitted compartment-model curve of the VOI, sampled (t [h], A [MBq]), for dose rates.
  std::vector<double> model_curve_t_h, model_curve_MBq;
  //! Residual of the previous cycle subtracted from each point [MBq] (residual "subtract").
  std::vector<double> residual_subtracted_MBq;
};

struct CycleResult {
  std::string patient;
  int cycle = 1;
  double administered_MBq = std::numeric_limits<double>::quiet_NaN();
  std::vector<VoiResult> vois;
  std::vector<TargetDose> doses;  //!< every target (VOIs first), empty without dose options
  std::vector<std::string> dose_input_names;  //!< the GUM inputs (fit:cycle1:liver, cf:P, ...)
  std::vector<double> dose_input_u_rel;       //!< their relative standard uncertainties (NaN: unknown)
  std::vector<double> dose_input_dof;         //!< their degrees of freedom (infinite: stated)
  double remainder_tia_MBq_h = std::numeric_limits<double>::quiet_NaN();
  std::vector<std::string> dose_notes;
  //! How the red-marrow TIA was obtained (null when the marrow method is "none").
  nlohmann::ordered_json marrow;
  //! Monte Carlo summary (null when not run).
  nlohmann::ordered_json monte_carlo;
  //! TIAs and BEDs are integrated to this time [h] (the next cycle with "integrate-to-next").
  double horizon_h = std::numeric_limits<double>::infinity();
  //! Case-file details of the cycle (reference time, protocol, conventions); null for TAC tables.
  nlohmann::ordered_json provenance;
};

//! A target's dose summed over a patient's cycles.
struct CumulativeDose {
  std::string target;
  double dose_Gy = 0;
  double bed_Gy = std::numeric_limits<double>::quiet_NaN();  //!< sum of the cycles' BED (§7.2)
  double eqd2_Gy = std::numeric_limits<double>::quiet_NaN();
  double repopulation_Gy = 0;  //!< subtracted from bed_Gy (tumours, when configured)
  double dose_u_Gy = 0;  //!< GUM: per-cycle inputs independent; CF and S-values common to cycles
  double dose_u_dof = std::numeric_limits<double>::infinity();  //!< Welch-Satterthwaite
  Interval dose_ci68_Gy, dose_ci95_Gy;
  std::vector<std::string> u_missing;  //!< inputs without a known u (dose_u_Gy is then NaN)
  int cycles = 0;        //!< cycles in which the target was dosed
};

struct RunResult {
  std::string version;
  Nuclide nuclide;
  RunOptions options;
  std::vector<std::string> svalue_files;  //!< data files of the S-value set and spheres
  std::string tissue_file;                //!< the tissue-parameter table used for BED
  std::vector<Limit> limits;              //!< limits of the organs at risk (history view, plan)
  std::string svalue_set_description;
  std::vector<CycleResult> cycles;  //!< in the order of the table (patient, then cycle)
  //! Per patient id, the doses summed over the cycles (patients with more than one cycle).
  std::map<std::string, std::vector<CumulativeDose>> cumulative;
};

}  // namespace lutdose
