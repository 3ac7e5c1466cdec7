#include "population.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "batch.h"
#include "lutdose/cohort/batch.h"
#include "lutdose/dosimetry/nuclide.h"
#include "lutdose/error.h"
#include "lutdose/io/data_dir.h"
#include "lutdose/io/output_dir.h"
#include "lutdose/io/population_file.h"
#include "lutdose/io/store.h"
#include "lutdose/io/tac_table.h"
#include "lutdose/version.h"

namespace lutdose_cli {

PopulationCommand::PopulationCommand(CLI::App& app) {
  auto* population = app.add_subcommand(
      "population", "Population (nonlinear mixed-effects) kinetics: lutdose population learn (docs/population.md)");
  population->require_subcommand(1);
  learn_ = population->add_subcommand(
      "learn", "Learns the population kinetics of a cohort's TAC table, folder of case files or results store (per VOI kind: "
               "function by BIC, fixed effects, random-effect variances, residual error, shrinkage) and writes a population file");
  learn_->add_option("INPUT,--tac", tac_,
                     "TAC table (docs/tac-format.md) with a patient column, a folder of case files (as lutdose "
                     "batch CASES_DIR reads them: their TACs and administered activities; also with --model), or a "
                     "results store of "
                     "lutdose >= 0.19 (lutdose batch or run: the TAC points its patients were fitted from, /points, "
                     "and their administered activities; failed patients left out; docs/population.md)")
      ->required();
  learn_->add_option("--patients", patients_,
                     "With a TAC table (required; not with a folder or a store): patients table (docs/batch.md; lutdose synth writes patients.csv): "
                     "columns patient, optional cycle, administered_MBq; amplitudes are learned per administered "
                     "activity");
  learn_->add_flag("--allow-external-files", allow_external_,
                   "Case files: let them name files outside their folder");
  learn_->add_option("--out", out_,
                     "The population file to write (JSON; replaced only if lutdose wrote it; not a *.json file "
                     "directly in the folder of case files learned from)")
      ->required();
  learn_->add_option("--functions", options_.candidates, "Candidate functions (E1p, E1, E2u, E2)")
      ->delimiter(',')
      ->capture_default_str();
  learn_->add_option("--max-iterations", options_.max_iterations, "Iterations of the estimator at most, per stage (the Laplace EM, then the sampled one)")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  learn_->add_option("--e-step", e_step_,
                     "sampled (default): the chosen function refined with importance-sampled posterior moments "
                     "after the Laplace EM (less biased where the data barely see a rate); laplace: the Laplace "
                     "E-step only (docs/population.md)")
      ->check(CLI::IsMember({"sampled", "laplace"}))
      ->capture_default_str();
  learn_->add_option("--error-model", error_model_,
                     "Residual error model: proportional (default; on the log scale, points > 0), combined (linear "
                     "scale, variance sigma0^2 + (b f)^2, sigma0 [MBq] and b estimated; points <= 0 used) or constant "
                     "(combined with b = 0) or input (linear scale, each point's activity_u_MBq of the TAC table as its SD, "
                     "nothing estimated; every point needs one, also in MAP fits); docs/population.md")
      ->check(CLI::IsMember({"proportional", "combined", "constant", "input"}))
      ->capture_default_str();
  learn_->add_option("--omega", omega_,
                     "diagonal (default): random-effect variances only; full: also their covariances (e.g. of "
                     "amplitude and rate), used by the MAP of sparse TACs; BIC counts K(K-1)/2 more parameters "
                     "(docs/population.md)")
      ->check(CLI::IsMember({"diagonal", "full"}))
      ->capture_default_str();
  learn_->add_option("--model", model_,
                     "A compartment model (shipped name, e.g. blood_organ_linear, or a model file) as the structural "
                     "model instead of the exponential functions: one unit per patient's cycle, the TACs of the VOIs "
                     "the model observes fitted jointly (a TAC table or a folder of case files; docs/population.md, "
                     "Compartment models)");
  learn_->add_option("--free-parameters", free_parameters_,
                     "With --model: the model's parameters with random effects (default: those with \"fit\": true)")
      ->delimiter(',');
  learn_->add_option("--threads", options_.threads,
                     "Threads (0: all cores) over the VOI kinds' candidate functions and each fit's patients (or "
                     "patients' cycles); the population learned is the same whatever the number")->check(CLI::Range(0, 256));
  learn_->add_option("--half-life-h", half_life_h_, "Override the ICRP-107 half-life [h]");
  learn_->add_option("--data-dir", data_dir_, "Reference data directory");
  learn_->add_flag("--quiet", quiet_, "Print nothing on success (notes of left-out files and failed patients excepted, on standard error)");
  learn_->footer("Example: lutdose population learn cohort/tacs.csv --patients cohort/patients.csv --out population.json\n"
                 "         lutdose population learn cases/ --out population.json\n"
                 "         lutdose population learn cohort.h5 --out population.json\n"
                 "         lutdose fit --tac new_patient.csv --activity-MBq 7400 --population population.json");
}

namespace {

// A population file lutdose wrote (its own checksum and format): the only file --out may replace.
bool is_own_population_file(const std::string& content) {
  return lutdose::has_own_checksum(content) && content.find(lutdose::POPULATION_FORMAT) != std::string::npos;
}

// The file starts with the HDF5 signature (HDF5 File Format Specification, "Format Signature":
// \211 H D F \r \n \032 \n at offset 0, where lutdose's stores have their superblock).
bool is_hdf5_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char head[8] = {};
  return f.read(head, sizeof head) && std::string(head, sizeof head) == std::string("\x89HDF\r\n\x1a\n", 8);
}

}  // namespace

// The population of a folder of case files (their administered activities) or of a TAC table
// with its patients table.
lutdose::PopulationFile PopulationCommand::learn() const {
  const std::string data_dir = lutdose::find_data_dir(data_dir_);
  auto options = options_;
  std::vector<std::string> problems;  // none: CLI::IsMember checked the choices
  set_population_learning(options, error_model_, omega_, e_step_, problems);
  throw_problems(problems);
  if (!model_.empty() && learn_->count("--functions") > 0)  // the structural model is the compartment model
    lutdose::throw_input_error("command line", "--functions", options.candidates.empty() ? "" : options.candidates.front(),
                               "no --functions with --model (the compartment model is the structural model; "
                               "--free-parameters chooses what is learned)");
  if (model_.empty() && !free_parameters_.empty())
    lutdose::throw_input_error("command line", "--free-parameters", free_parameters_.front(),
                               "no --free-parameters without --model (they are a compartment model's)");
  if (std::filesystem::is_directory(tac_)) {
    if (!patients_.empty())
      lutdose::throw_input_error("command line", "--patients", patients_,
                                 "no patients table with a folder of case files (their administered activities "
                                 "are in the case files)");
    note_left_out_case_files(tac_);
    if (model_.empty())
      return lutdose::learn_population_from_cases(tac_, data_dir, half_life_h_, options, allow_external_, LUTDOSE_VERSION);
    auto cases = lutdose::read_case_folder_tacs(tac_, data_dir, half_life_h_, allow_external_);  // as the exponential's
    auto p = learn_compartment(cases.series, cases.administered_MBq, data_dir, options, "");
    lutdose::set_case_files_input(p, std::move(cases.files));
    return p;
  }
  if (!std::filesystem::exists(tac_))
    lutdose::throw_input_error("command line", "INPUT", tac_,
                               "an existing TAC table, folder of case files or results store (it does not exist)");
  if (is_hdf5_file(tac_)) return learn_from_store(data_dir, options);
  if (patients_.empty())
    lutdose::throw_input_error("command line", "--patients", "missing",
                               "the patients table (administered_MBq) with a TAC table: population amplitudes are "
                               "per administered activity");
  std::string bytes;
  const auto series = lutdose::read_tac_table(tac_, &bytes);
  std::string patients_sha256;
  const auto administered_MBq = lutdose::administered_activities_MBq(series, patients_, tac_, &patients_sha256);
  auto p = learn_series(series, administered_MBq, data_dir, options, bytes);
  p.patients_path = patients_;
  p.patients_sha256 = patients_sha256;
  return p;
}

// The store's points are not decay-corrected: learned with another half-life than the store's, every
// biological rate would shift by the difference of the physical decay constants. InputError unless
// the learning's half-life (--half-life-h, else ICRP-107's) is the store's (review of 0.19).
void PopulationCommand::check_store_half_life(const lutdose::StoreTacs& tacs, const std::string& data_dir) const {
  const double learning_h = lutdose::load_nuclide(data_dir, "Lu-177", half_life_h_).half_life_h;
  if (std::isnan(tacs.half_life_h) || std::abs(tacs.half_life_h - learning_h) <= 1e-12 * learning_h) return;
  lutdose::throw_input_error(tac_ + ": provenance_json", "nuclide.half_life_h", lutdose::format_number(tacs.half_life_h),
                             "the half-life of this learning, " + lutdose::format_number(learning_h) +
                                 " h (--half-life-h, else ICRP-107's): the store's activities are not decay-corrected, "
                                 "so another half-life shifts every learned biological rate; give --half-life-h " +
                                 lutdose::format_number(tacs.half_life_h));
}

// The population of the TACs of a results store (/points) with the administered activities of its
// /patients: failed patients left out with a note; the file records the store and its SHA-256.
lutdose::PopulationFile PopulationCommand::learn_from_store(const std::string& data_dir,
                                                            const lutdose::PopulationOptions& options) const {
  if (!patients_.empty())
    lutdose::throw_input_error("command line", "--patients", patients_,
                               "no --patients with a results store (its administered activities are in its "
                               "/patients table)");
  const auto tacs = lutdose::read_store_tacs(tac_);
  check_store_half_life(tacs, data_dir);
  if (tacs.failed_patients > 0)
    std::cerr << "lutdose: note: " << tacs.failed_patients << " failed patient" << (tacs.failed_patients == 1 ? "" : "s")
              << " of the store left out (no TAC points; their errors are in /failures)\n";
  auto p = learn_series(tacs.series, tacs.administered_MBq, data_dir, options, "");
  p.input_sha256 = tacs.sha256;
  p.input_kind = "results-store";
  return p;
}

// The population of `series` read from INPUT (whose bytes are `bytes`): the exponential functions, or
// the compartment model of --model.
lutdose::PopulationFile PopulationCommand::learn_series(const std::vector<lutdose::TacSeries>& series,
                                                        const std::vector<double>& administered_MBq,
                                                        const std::string& data_dir,
                                                        const lutdose::PopulationOptions& options,
                                                        const std::string& bytes) const {
  if (!model_.empty()) return learn_compartment(series, administered_MBq, data_dir, options, bytes);
  return lutdose::learn_population_file(series, administered_MBq, data_dir, half_life_h_, options, tac_, bytes,
                                        LUTDOSE_VERSION);
}

// The compartment population of a TAC table (--model): the model read, its SHA-256 recorded.
lutdose::PopulationFile PopulationCommand::learn_compartment(const std::vector<lutdose::TacSeries>& series,
                                                             const std::vector<double>& administered_MBq,
                                                             const std::string& data_dir,
                                                             const lutdose::PopulationOptions& options,
                                                             const std::string& bytes) const {
  const auto model = lutdose::read_compartment_model_file(model_, data_dir);
  // the VOIs the model does not observe are left out, with a note (review of 0.18: dropped without a word,
  // also a VOI spelled "Blood")
  const auto note = lutdose::check_compartment_learning(model, series, free_parameters_, "command line: --free-parameters");
  if (!note.empty()) std::cerr << "lutdose: note: " << note << "\n";
  return lutdose::learn_compartment_population_file(model, series, administered_MBq, data_dir, half_life_h_, options,
                                                    free_parameters_, tac_, bytes, LUTDOSE_VERSION);
}

namespace {

// The summary's residual error of a learned model: its error model's own figures.
std::string residual_error_text(const lutdose::PopulationModel& m) {
  if (m.error_model == lutdose::PopulationErrorModel::proportional)
    return "sigma_log " + lutdose::format_number(m.sigma_log);
  if (m.error_model == lutdose::PopulationErrorModel::input) return "input error (each point's activity_u_MBq)";
  return to_string(m.error_model) + " error, sigma0 " + lutdose::format_number(m.sigma0_MBq) + " MBq, b " +
         lutdose::format_number(m.sigma_log);
}

}  // namespace

void PopulationCommand::run() const {
  if (std::filesystem::is_directory(tac_)) lutdose::check_outside_case_folder(out_, tac_, "--out");
  lutdose::check_file_writable(out_, is_own_population_file);  // before the learning, which takes a while
  const auto p = learn();
  lutdose::write_file_atomically(out_, lutdose::population_file_text(p), is_own_population_file);
  if (quiet_) return;
  if (p.compartment)
    std::cout << "compartment model " << p.compartment->model_name << ": " << p.compartment->model.n_patients
              << " patients' cycles, " << residual_error_text(p.compartment->model)
              << (p.compartment->model.converged ? "" : " (NOT converged)") << "\n";
  for (const auto& m : p.models)
    std::cout << m.voi_kind << ": " << m.function << ", " << m.n_patients << " TACs, " << residual_error_text(m)
              << (m.converged ? "" : " (NOT converged)") << "\n";
  std::cout << "written: " << out_ << "\n";
}

}  // namespace lutdose_cli
