// The population file (`lutdose population learn --out FILE`, docs/population.md): the learned
// population kinetics of a cohort with their provenance, read back as the prior of MAP fits
// (`lutdose fit --population FILE`).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lutdose/kinetics/compartment_population.h"
#include "lutdose/kinetics/population.h"

namespace lutdose {

struct RunOptions;

//! The "format" of a population file and its version (format_version).
inline constexpr const char* POPULATION_FORMAT = "lutdose-population";
//! Version 2: amplitudes per administered activity (log_A1_per_administered, ...); version 1
//! (amplitudes in MBq) is refused: learn again.
inline constexpr int POPULATION_FORMAT_VERSION = 2;
//! Version 3: a file with a VOI kind of an additive error model (vois[].error_model combined or
//! constant, with sigma0_MBq and b_proportional instead of sigma_log). lutdose 0.16 ignores unknown
//! members and would read such a model as proportional (with no sigma_log it refuses the file, but
//! a hand-added sigma_log would be misread): it refuses format_version 3. Files of proportional
//! models only are still written as version 2 (older versions keep reading them).
inline constexpr int POPULATION_FORMAT_VERSION_ERROR_MODELS = 3;
//! Version 4: a compartment population (member structural_model: {"kind": "compartment", "model",
//! "model_sha256", "free_parameters", "observed_vois"}; vois holds its one model, voi_kind
//! "compartment", function "compartment:NAME"). lutdose 0.17 ignores unknown members: a version 3
//! reader would read vois and refuse the function with a message about exponentials; version 4 makes
//! it refuse the file for its version, the honest reason.
inline constexpr int POPULATION_FORMAT_VERSION_COMPARTMENT = 4;

struct PopulationFile {
  std::vector<PopulationModel> models;  //!< the exponential populations per VOI kind (none with `compartment`)
  //! A compartment population (format_version 4): the structural model and its population.
  std::optional<CompartmentPopulation> compartment;
  double half_life_h = 0;      //!< of the nuclide the population was learned with [h]
  std::string input_path;      //!< the TAC table learned from (or the folder, or the results store)
  std::string input_sha256;    //!< of its bytes
  //! "results-store" when learned from a store's /points (input_path the store); "" otherwise
  //! (a folder of case files is told by case_files).
  std::string input_kind;
  std::string patients_path;   //!< the patients table of the administered activities ("" if none)
  std::string patients_sha256; //!< of its bytes
  //! Learned from a folder of case files (input_path the folder): each case file's name and the
  //! SHA-256 of its bytes, in name order; input_sha256 is then case_files_sha256 of them.
  std::vector<std::pair<std::string, std::string>> case_files;
  PopulationOptions options;
  std::string lutdose_version;
  //! Set by read_population_file: the SHA-256 of the file's bytes, and whether the file's own
  //! checksum (lutdose_sha256) was there and matched (false: the file has none).
  std::string sha256;
  bool own_checksum_verified = false;
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

//! A compartment model file read for a compartment population: its path (find_compartment_model),
//! the SHA-256 of its bytes and the model.
struct CompartmentModelFile {
  std::string path, sha256;
  std::shared_ptr<const models::CompartmentModel> model;
};

//! Reads the compartment model `name_or_path` (a shipped model's name or a file; find_compartment_model
//! in `data_dir`). InputError naming the model for one that is neither, or that is not valid.
CompartmentModelFile read_compartment_model_file(const std::string& name_or_path, const std::string& data_dir);

//! Learns the compartment population of `series` (compartment_units of `model`, each unit with the
//! administered activity of its series; learn_compartment_population with the free parameters
//! `free_parameters`, empty: the file's "fit": true ones) with the physical decay of the nuclide
//! (as learn_population_file) and the provenance of learn_population_file. InputError as
//! learn_compartment_population.
PopulationFile learn_compartment_population_file(const CompartmentModelFile& model, const std::vector<TacSeries>& series,
                                                 const std::vector<double>& administered_MBq,
                                                 const std::string& data_dir, double half_life_override_h,
                                                 const PopulationOptions& o,
                                                 const std::vector<std::string>& free_parameters,
                                                 const std::string& input_path, const std::string& input_bytes,
                                                 const std::string& lutdose_version);

//! What population learn --model and --kinetics population --model check before learning the compartment
//! population of `series` with `model`: its free parameters (compartment_free_parameters of
//! `free_parameters`, `named_in` naming them in messages, the model file when it marks none). Returns
//! the note for the VOIs of `series` the model does not observe ("" if none; unobserved_vois_note).
//! InputError as compartment_free_parameters.
std::string check_compartment_learning(const CompartmentModelFile& model, const std::vector<TacSeries>& series,
                                       const std::vector<std::string>& free_parameters, const std::string& named_in);

//! The SHA-256 of the lines "SHA256  NAME\n" of `files` (name, SHA-256) in their order, the text
//! `sha256sum` prints for them: the digest of a folder of case files. Throws nothing.
std::string case_files_sha256(const std::vector<std::pair<std::string, std::string>>& files);

//! One model as JSON (also in `lutdose fit --kinetics population`'s results). Throws nothing.
nlohmann::ordered_json to_json(const PopulationModel& m);

//! The models as JSON: the `vois` array of the population file and of the results. Throws nothing.
nlohmann::ordered_json population_vois_json(const std::vector<PopulationModel>& models);

//! The SHA-256 (hex) of population_vois_json(models).dump() (compact): what identifies a learned
//! population in the results and in a store's fingerprint. Throws nothing.
std::string population_models_sha256(const std::vector<PopulationModel>& models);

//! The structural_model member of a compartment population's file (and of the results' population):
//! kind, model, model_sha256, free_parameters, observed_vois. Throws nothing.
nlohmann::ordered_json structural_model_json(const CompartmentPopulation& c);

//! The population models a run uses: its exponential ones (RunOptions::population) and its
//! compartment population's model (voi_kind "compartment"), for the results and the store. Throws nothing.
std::vector<PopulationModel> population_models_of(const RunOptions& o);

//! The options a population was learned with, as the results record them (options.fit.population.
//! learning): candidates (left out when empty: a compartment population has none), error_model,
//! omega_structure, e_step, max_iterations. Throws nothing.
nlohmann::ordered_json population_learning_json(const PopulationOptions& o);

//! Makes learned `models` o's population: o.population, and o.population_source with no path and
//! the models' SHA-256 (vois_sha256). Throws nothing.
void use_population_models(RunOptions& o, std::vector<PopulationModel> models);

//! Makes a learned compartment population `c` of `model` o's (o.compartment_population, the model as
//! o.compartment_model and compartment_model_file, o.population_source with no path, the learning
//! options with no candidates and the SHA-256 of its model, vois_sha256). Throws nothing.
void use_compartment_population(RunOptions& o, CompartmentPopulation c, const CompartmentModelFile& model);

//! --kinetics population: learns the population of `series` (learn_population_file with o's
//! data directory and half-life, amplitudes per `administered_MBq[i]`, `threads` as
//! PopulationOptions::threads) and makes it o's population (use_population_models). With a
//! compartment model (o.compartment_model, --kinetics population --model) the population is the
//! model's, learned as `population learn --model` learns it (learn_compartment_population_file with
//! o.population_free_parameters, checked first by check_compartment_learning, named in messages by
//! o.population_free_parameters_name), and becomes o's compartment_population (use_compartment_population);
//! the note on the VOIs the model does not observe, if any, is added to `notes` (if given).
//! `tac_path` names the table (or folder) in messages.
//! InputError as learn_population or learn_compartment_population (nothing is changed then).
void use_learned_population(RunOptions& o, const std::vector<TacSeries>& series,
                            const std::vector<double>& administered_MBq, const std::string& tac_path,
                            unsigned threads = 0, std::vector<std::string>* notes = nullptr);

//! The file's text (JSON, with its own checksum as last member). Throws nothing.
std::string population_file_text(const PopulationFile& p);

//! True when `text` is a JSON object whose "format" is POPULATION_FORMAT: a population file,
//! whatever its version and other members (read_population_file checks those). Throws nothing.
bool is_population_file_text(const std::string& text);

//! Reads and checks a population file. InputError naming the file, the field, the value and what
//! was expected for: a missing or unreadable file, bad JSON (with its line and column), another
//! format or version (version 1, amplitudes in MBq: learn again), a lutdose_sha256 that does not
//! match the bytes before it (the file was edited or damaged; a file without that member is read,
//! as written by hand), a missing or non-finite number, an unknown or unsupported function, sizes
//! that do not match the function, an Omega that is not symmetric positive-definite, a sigma <= 0,
//! a half_life_h <= 0, a VOI kind twice or one no VOI has (tumour_1: a tumour VOI's kind is
//! tumour), a theta_se <= 0 or a shrinkage > 1 (null: not computed), a log_omega_se or
//! log_sigma_log_se < 0 or not a number (optional: absent or null is not known), n_patients < 2,
//! n_observations < n_patients, a function twice in a VOI kind's candidates or a chosen function
//! not among them.
PopulationFile read_population_file(const std::string& path);

//! InputError naming `path` (the population file), the member of structural_model, its value and
//! what was expected when `model` (read from `model_path`, whose bytes have the SHA-256
//! `model_sha256`) is not the compartment population's structural model: another name, another
//! SHA-256 (an edited or other model file), or a free parameter the model does not have. Throws
//! nothing otherwise.
void check_compartment_population_model(const CompartmentPopulation& population, const std::string& path,
                                        const models::CompartmentModel& model, const std::string& model_path,
                                        const std::string& model_sha256);

//! InputError naming `path`, the field half_life_h, the file's value and `half_life_h` (the run's
//! half-life [h]) when they differ by a relative 1e-9 or more: the population's rates are
//! biological rates learned with that physical decay. Throws nothing otherwise.
void check_population_half_life(const PopulationFile& p, const std::string& path, double half_life_h);

//! The VOI names of a TAC table with the patients that have each ("" for a table without a
//! patient column).
using VoiPatients = std::map<std::string, std::set<std::string>>;

//! InputError naming `path` when a VOI kind of `vois` has no model in the file (the first such
//! kind by name): the field names the VOIs of that kind, `table` (the TAC table, for the message)
//! and the patients that have them (their number and the first five); the expected value lists
//! the kinds the file has. Throws nothing otherwise.
void check_population_covers(const std::vector<PopulationModel>& models, const std::string& path,
                             const VoiPatients& vois, const std::string& table);

//! The same for the TACs of `series`, read from `table`.
void check_population_covers(const std::vector<PopulationModel>& models, const std::string& path,
                             const std::vector<TacSeries>& series, const std::string& table);

//! InputError naming `table` and its column activity_u_MBq when `header` (the TAC table's columns)
//! lacks that column and a model of the input error model (each point's SD is its activity_u_MBq)
//! covers one of `vois`; the message names the population file `path`, the VOI kind and its error
//! model. Throws nothing otherwise (batch --tac: found before the batch starts, not once per patient).
void check_population_uncertainties(const std::vector<PopulationModel>& models, const std::string& path,
                                    const std::vector<std::string>& vois, const std::vector<std::string>& header,
                                    const std::string& table);

}  // namespace lutdose
