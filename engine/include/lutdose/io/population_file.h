// The population file (`lutdose population learn --out FILE`, docs/population.md): the learned
// population kinetics of a cohort with their provenance, read back as the prior of MAP fits
// (`lutdose fit --population FILE`).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lutdose/kinetics/population.h"

namespace lutdose {

//! The "format" of a population file and its version (format_version).
inline constexpr const char* POPULATION_FORMAT = "lutdose-population";
//! Version 2: amplitudes per administered activity (log_A1_per_administered, ...); version 1
//! (amplitudes in MBq) is refused: learn again.
inline constexpr int POPULATION_FORMAT_VERSION = 2;

struct PopulationFile {
  std::vector<PopulationModel> models;
  double half_life_h = 0;      //!< of the nuclide the population was learned with [h]
  std::string input_path;      //!< the TAC table learned from
  std::string input_sha256;    //!< of its bytes
  std::string patients_path;   //!< the patients table of the administered activities ("" if none)
  std::string patients_sha256; //!< of its bytes
  PopulationOptions options;
  std::string lutdose_version;
};

//! Learns the population of `series` (learn_population) with the physical decay of the nuclide
//! (data_dir's Lu-177, or half_life_override_h [h] > 0), amplitudes per administered activity
//! (`administered_MBq[i]` of `series[i]`), and records the provenance: `input_path`, the SHA-256
//! of `input_bytes`, the options, `lutdose_version` (the caller sets patients_path and
//! patients_sha256). InputError as learn_population.
PopulationFile learn_population_file(const std::vector<TacSeries>& series, const std::vector<double>& administered_MBq,
                                     const std::string& data_dir,
                                     double half_life_override_h, const PopulationOptions& o,
                                     const std::string& input_path, const std::string& input_bytes,
                                     const std::string& lutdose_version);

//! One model as JSON (also in `lutdose fit --kinetics population`'s results). Throws nothing.
nlohmann::ordered_json to_json(const PopulationModel& m);

//! The file's text (JSON, with its own checksum as last member). Throws nothing.
std::string population_file_text(const PopulationFile& p);

//! Reads and checks a population file. InputError naming the file, the field, the value and what
//! was expected for: a missing or unreadable file, bad JSON, another format or version (version 1,
//! amplitudes in MBq: learn again), a missing
//! or non-finite number, an unknown or unsupported function, sizes that do not match the
//! function, an Omega that is not symmetric positive-definite, a sigma <= 0, a half_life_h <= 0,
//! a VOI kind twice.
PopulationFile read_population_file(const std::string& path);

//! InputError naming `path`, the field half_life_h, the file's value and `half_life_h` (the run's
//! half-life [h]) when they differ by a relative 1e-9 or more: the population's rates are
//! biological rates learned with that physical decay. Throws nothing otherwise.
void check_population_half_life(const PopulationFile& p, const std::string& path, double half_life_h);

//! InputError naming `path` when a TAC's VOI kind has no model in the file (lists the kinds it
//! has). Throws nothing otherwise.
void check_population_covers(const std::vector<PopulationModel>& models, const std::string& path,
                             const std::vector<TacSeries>& series);

}  // namespace lutdose
