#include "population.h"

#include <iostream>

#include "lutdose/cohort/batch.h"
#include "lutdose/error.h"
#include "lutdose/io/data_dir.h"
#include "lutdose/io/output_dir.h"
#include "lutdose/io/population_file.h"
#include "lutdose/io/tac_table.h"
#include "lutdose/version.h"

namespace lutdose_cli {

PopulationCommand::PopulationCommand(CLI::App& app) {
  auto* population = app.add_subcommand(
      "population", "Population (nonlinear mixed-effects) kinetics: lutdose population learn (docs/population.md)");
  population->require_subcommand(1);
  learn_ = population->add_subcommand(
      "learn", "Learns the population kinetics of a cohort's TAC table (per VOI kind: function by BIC, fixed "
               "effects, random-effect variances, residual error, shrinkage) and writes a population file");
  learn_->add_option("INPUT,--tac", tac_, "TAC table (docs/tac-format.md) with a patient column")->required();
  learn_->add_option("--patients", patients_,
                     "Patients table (docs/batch.md; lutdose synth writes patients.csv): columns patient, optional "
                     "cycle, administered_MBq; amplitudes are learned per administered activity")
      ->required();
  learn_->add_option("--out", out_, "The population file to write (JSON; replaced only if lutdose wrote it)")
      ->required();
  learn_->add_option("--functions", options_.candidates, "Candidate functions (E1p, E1, E2u, E2)")
      ->delimiter(',')
      ->capture_default_str();
  learn_->add_option("--max-iterations", options_.max_iterations, "Iterations of the estimator at most")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  learn_->add_option("--threads", options_.threads, "Threads (0: all cores)")->check(CLI::Range(0, 256));
  learn_->add_option("--half-life-h", half_life_h_, "Override the ICRP-107 half-life [h]");
  learn_->add_option("--data-dir", data_dir_, "Reference data directory");
  learn_->add_flag("--quiet", quiet_, "Print nothing on success");
  learn_->footer("Example: lutdose population learn cohort/tacs.csv --patients cohort/patients.csv --out population.json\n"
                 "         lutdose fit --tac new_patient.csv --activity-MBq 7400 --population population.json");
}

namespace {

// A population file lutdose wrote (its own checksum and format): the only file --out may replace.
bool is_own_population_file(const std::string& content) {
  return lutdose::has_own_checksum(content) && content.find(lutdose::POPULATION_FORMAT) != std::string::npos;
}

}  // namespace

void PopulationCommand::run() const {
  lutdose::check_file_writable(out_, is_own_population_file);  // before the learning, which takes a while
  std::string bytes;
  const auto series = lutdose::read_tac_table(tac_, &bytes);
  std::string patients_sha256;
  const auto administered_MBq = lutdose::administered_activities_MBq(series, patients_, tac_, &patients_sha256);
  auto p = lutdose::learn_population_file(series, administered_MBq, lutdose::find_data_dir(data_dir_), half_life_h_,
                                          options_, tac_, bytes, LUTDOSE_VERSION);
  p.patients_path = patients_;
  p.patients_sha256 = patients_sha256;
  lutdose::write_file_atomically(out_, lutdose::population_file_text(p), is_own_population_file);
  if (quiet_) return;
  for (const auto& m : p.models)
    std::cout << m.voi_kind << ": " << m.function << ", " << m.n_patients << " TACs, sigma_log "
              << lutdose::format_number(m.sigma_log) << (m.converged ? "" : " (NOT converged)") << "\n";
  std::cout << "written: " << out_ << "\n";
}

void add_kinetics_option(CLI::App* cmd, std::string& kinetics, bool with_population) {
  std::vector<std::string> choices{"individual", "previous-cycles"};
  std::string help =
      "individual (each TAC alone, default); previous-cycles (multi-cycle inputs: each later cycle by MAP with "
      "the patient's earlier cycles of the VOI as prior, the first cycle individually; docs/population.md)";
  if (with_population) {
    choices.push_back("population");
    help += "; population (learn the population from the input, then MAP per TAC; needs --activity-MBq, taken "
            "for every TAC of the table)";
  }
  cmd->add_option("--kinetics", kinetics, help)->check(CLI::IsMember(choices))->capture_default_str();
}

}  // namespace lutdose_cli
