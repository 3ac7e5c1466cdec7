// `lutdose batch`, `export`, `merge`: option parsing, progress display and the summary only.
#include "batch.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "lutdose/io/output_dir.h"
#include "lutdose/cohort/batch.h"
#include "lutdose/error.h"
#include "lutdose/io/data_dir.h"
#include "lutdose/io/store.h"
#include "lutdose/pipeline/reference_data.h"

namespace lutdose_cli {

namespace {

// SIGINT / SIGTERM during a batch: the batch stops (BatchOptions::stop: no further commit). The
// handlers are installed with SA_RESETHAND: a second signal has its default effect at once (a
// kill, after which the store is resumable too).
std::atomic<bool> g_stop{false};
std::atomic<int> g_signal{0};
static_assert(std::atomic<bool>::is_always_lock_free && std::atomic<int>::is_always_lock_free,
              "the signal handler may only touch lock-free atomics");

extern "C" void request_stop(int sig) {
  g_signal = sig;
  g_stop = true;
}

// Installs request_stop for SIGINT and SIGTERM for its lifetime, then restores the previous actions.
class StopOnSignals {
 public:
  StopOnSignals() {
    struct sigaction a {};
    a.sa_handler = request_stop;
    sigemptyset(&a.sa_mask);
    a.sa_flags = SA_RESETHAND;
    ::sigaction(SIGINT, &a, &old_int_);
    ::sigaction(SIGTERM, &a, &old_term_);
  }
  ~StopOnSignals() {
    ::sigaction(SIGINT, &old_int_, nullptr);
    ::sigaction(SIGTERM, &old_term_, nullptr);
  }
  StopOnSignals(const StopOnSignals&) = delete;
  StopOnSignals& operator=(const StopOnSignals&) = delete;

 private:
  struct sigaction old_int_ {}, old_term_ {};
};

// "1:02:03" or "2:03" for a duration in seconds; "?" when unknown.
std::string clock_text(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const long long t = std::llround(s);
  char buf[32];
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", t / 3600, t / 60 % 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%lld:%02lld", t / 60, t % 60);
  return buf;
}

// One progress text: count, percentage, rate, ETA, failures.
std::string progress_text(const lutdose::BatchProgress& p) {
  const double rate = p.elapsed_s > 0 ? static_cast<double>(p.committed - p.resumed) / p.elapsed_s : 0;
  const double eta = rate > 0 ? static_cast<double>(p.total - p.committed) / rate : NAN;
  std::ostringstream s;
  s << p.committed << "/" << p.total << " patients ("
    << (p.total ? 100.0 * static_cast<double>(p.committed) / static_cast<double>(p.total) : 100.0) << " %), ";
  s.precision(3);
  s << rate << " patients/s, ETA " << clock_text(eta) << ", failed " << p.failed;
  return s.str();
}

// The progress display of --progress: a bar redrawn with '\r' on a terminal, plain lines every 5 s
// otherwise, or nothing.
std::function<void(const lutdose::BatchProgress&)> progress_display(const std::string& mode, bool bar) {
  if (mode == "never") return nullptr;
  auto last = std::make_shared<double>(-1e9);
  return [bar, last](const lutdose::BatchProgress& p) {
    if (bar) {
      const int width = 30;
      const int filled = p.total ? static_cast<int>(width * p.committed / p.total) : width;
      std::cerr << "\r[" << std::string(static_cast<size_t>(filled), '#') << std::string(static_cast<size_t>(width - filled), '.')
                << "] " << progress_text(p) << "   " << std::flush;
    } else if (p.elapsed_s - *last >= 5.0) {
      *last = p.elapsed_s;
      std::cerr << "batch: " << progress_text(p) << "\n" << std::flush;
    }
  };
}

const char* const kFitAndDoseOptions[] = {
    "--function", "--functions", "--error-model", "--aicc-k", "--trapezoid-head", "--reject-correlated",
    "--trapezoid-body", "--trapezoid-tail", "--integration", "--model-averaging", "--combined-sigma0-MBq",
    "--combined-b", "--reduced", "--model", "--half-life-h", "--tumour-method", "--sphere-composition",
    "--density-g-per-mL", "--mass-scaling", "--cross-scaling", "--svalues"};

// With --kinetics population and case files: the fit options that are the learning's (as population
// learn takes them), not the cases' own.
bool is_learning_option(const std::string& opt) {
  return opt == "--functions" || opt == "--error-model" || opt == "--model";
}

}  // namespace

void note_left_out_case_files(const std::string& dir) {
  std::vector<std::string> notes;
  lutdose::batch_case_files(dir, &notes);
  for (const auto& n : notes) std::cerr << "lutdose: note: " << n << "\n";
}

BatchCommand::BatchCommand(CLI::App& app) {
  batch_ = app.add_subcommand(
      "batch",
      "Dosimetry of a whole cohort into one results store (docs/batch.md): every case file of CASES_DIR, or "
      "the patients of a TAC table (--tac) with a patients table (--patients). Threads, kill-safe commits, "
      "--resume, --shard. Exit status: 0 every patient done, 3 some patients failed (recorded in the store's "
      "/failures), 2 bad invocation or unreadable cohort, 1 internal or output error.");
  batch_->add_option("cases", cases_dir_,
                     "Folder of case files: every *.json in it (not in subfolders), sorted by name, but lutdose's "
                     "own manifest.json and synth.json and population files (left out with a note)");
  add_fit_options(batch_, fit_, false);
  batch_->remove_option(batch_->get_option("--activity-MBq"));  // per patient: the patients table
  batch_->add_option("--patients", patients_,
                     "With --tac: patients table (CSV): patient, administered_MBq, phantom; optional cycle, "
                     "body_mass_kg, mass_g_<VOI>");
  add_dose_options(batch_, dose_);
  batch_->add_option("--svalues", svalues_,
                     "With --tac: a user S-value table (CSV, docs/svalues.md) for every patient instead of a phantom, "
                     "as run --svalues; the patients table's phantom column is then optional, its cells empty or "
                     "'user'");
  batch_->add_option("--out", out_, "The store (HDF5, docs/store.md): new, or the one to --resume")->required();
  batch_->add_option("--threads", threads_, "Worker threads, 0 to 256 (default or 0: all cores); the results do not depend on it");
  batch_->add_flag("--resume", resume_,
                   "Continue the store of a killed or stopped batch of the same cohort, shard and options "
                   "(the patients it holds are not redone)");
  batch_->add_option("--shard", shard_,
                     "I/N: process the I-th of N contiguous blocks of the cohort (merge the N stores with lutdose "
                     "merge)")
      ->capture_default_str();
  batch_->add_option("--progress", progress_,
                     "auto (a progress bar on a terminal, else a line every 5 s on standard error), always (the "
                     "bar), never")
      ->check(CLI::IsMember({"auto", "always", "never"}))
      ->capture_default_str();
  batch_->add_option("--commit-interval-s", commit_interval_s_,
                     "Commit the patients computed at least this often [s] (each commit is a durable segment of the "
                     "store; smaller: less lost to a kill, more segments)")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  batch_->add_option("--mc-samples", mc_samples_, "Case files: Monte Carlo samples, overriding each case's");
  batch_->add_option("--mc-seed", mc_seed_, "Case files: Monte Carlo seed, overriding each case's");
  batch_->add_flag("--allow-external-files", allow_external_,
                   "Case files: let them name files outside their folder");
  batch_->footer(
      "Examples: lutdose batch cohort/ --out cohort.h5\n"
      "          lutdose batch --tac tacs.csv --patients patients.csv --out cohort.h5 --threads 2\n"
      "          lutdose batch cohort/ --out cohort.h5 --resume\n"
      "A failed patient (bad input, failing computation) is recorded with its error and the batch goes on.");

  export_ = app.add_subcommand("export", "Flat CSV tables of a results store (docs/store.md): DIR/vois.csv, "
                                         "targets.csv, failures.csv, ...");
  export_->add_option("store", export_store_, "The store (HDF5)")->required();
  export_->add_option("--csv", export_dir_, "Output directory (a new result set, as for run; or an earlier export set)")->required();
  merge_ = app.add_subcommand("merge", "Joins the stores of the shards of one batch, in the order given, into a new "
                                       "store (refused for stores of other options or reference data)");
  merge_->add_option("out", merge_out_, "The merged store (new)")->required();
  merge_->add_option("shards", merge_shards_, "The shards' stores, in order")->required();
}

int BatchCommand::run() const {
  if (export_->parsed()) {
    lutdose::export_store_csv(export_store_, export_dir_);
    return 0;
  }
  if (merge_->parsed()) {
    lutdose::merge_stores(merge_out_, merge_shards_);
    return 0;
  }
  return run_batch();
}

int BatchCommand::run_batch() const {
  // Checked before anything is read or written. NaN passes CLI11's range check.
  lutdose_cli::checked_threads(threads_);
  if (!(commit_interval_s_ >= 0 && commit_interval_s_ <= 3600))
    lutdose::throw_input_error("command line", "--commit-interval-s", lutdose::format_number(commit_interval_s_),
                               "a number of seconds from 0 to 3600");
  lutdose::BatchCohort cohort;
  const std::string data_dir = lutdose::find_data_dir(fit_.data_dir);
  if (cases_dir_.empty() == fit_.tac.empty())
    throw lutdose::InputError("command line: expected either a folder of case files (lutdose batch CASES_DIR --out "
                              "STORE.h5) or --tac TACS.csv --patients PATIENTS.csv");
  throw_problems(lutdose::validate_monte_carlo(mc_samples_, mc_seed_));
  if (!cases_dir_.empty()) {
    if (batch_->count("--patients"))
      lutdose::throw_input_error("command line", "--patients", patients_, "--patients only with --tac");
    for (const std::string opt : kFitAndDoseOptions)  // with --kinetics population three are the learning's
      if (batch_->count(opt) > 0 && !(fit_.kinetics == "population" && is_learning_option(opt)))
        throw_option_with_case_files(opt);
    cohort.kind = lutdose::BatchCohort::Kind::case_files;
    cohort.cases_dir = cases_dir_;
    cohort.allow_external_files = allow_external_;
    if (batch_->count("--mc-samples")) cohort.mc_samples = static_cast<int>(mc_samples_);
    if (batch_->count("--mc-seed")) cohort.mc_seed = static_cast<unsigned long long>(mc_seed_);
    set_case_cohort_population(fit_, cohort);
    note_left_out_case_files(cases_dir_);
  } else {
    if (patients_.empty()) lutdose::throw_input_error("command line", "--patients", "missing", "the patients table with --tac");
    std::vector<std::string> problems;
    cohort.kind = lutdose::BatchCohort::Kind::tac_tables;
    cohort.tac_path = fit_.tac;
    cohort.patients_path = patients_;
    cohort.options = make_run_options(fit_, problems);
    cohort.learn_population = fit_.kinetics == "population";
    cohort.options.dose = make_dose_options(dose_, cohort.options, problems);
    use_user_svalues(*cohort.options.dose, svalues_);  // as run --tac --svalues: the set "user"
    if (batch_->count("--mc-samples")) cohort.options.mc_samples = static_cast<int>(mc_samples_);
    if (batch_->count("--mc-seed")) cohort.options.mc_seed = static_cast<unsigned long long>(mc_seed_);
    finish_run_options(cohort.options, problems);
  }
  lutdose::BatchOptions o;
  o.store_path = out_;
  o.threads = threads_;
  o.resume = resume_;
  o.commit_interval_s = commit_interval_s_;
  std::tie(o.shard_index, o.shard_count) = lutdose::parse_shard(shard_);
  const bool bar = progress_ == "always" || (progress_ == "auto" && ::isatty(STDERR_FILENO));
  o.progress = progress_display(progress_, bar);
  const auto reference = lutdose::ReferenceData::load(data_dir);
  lutdose::BatchProgress p;
  o.stop = &g_stop;
  o.note = [](const std::string& n) { std::cerr << "lutdose: note: " << n << "\n"; };  // as population learn's
  try {
    StopOnSignals on_signals;
    p = lutdose::run_batch(cohort, reference, o);
  } catch (const lutdose::OutputError& e) {  // full disk, I/O error: what was committed stays
    throw lutdose::OutputError(std::string(e.what()) + "; the store keeps every patient committed before: make " +
                               "room and continue it with the same command and --resume");
  }
  if (bar) std::cerr << "\n";  // after the bar's last redraw
  std::ostringstream s;
  s.precision(3);
  s << "batch: " << p.done << " patients done (" << p.patient_cycles << " patient-cycles this run), " << p.failed
    << " failed, fits flagged in " << p.cycles_flagged << " patient-cycles, " << p.elapsed_s << " s, "
    << (p.elapsed_s > 0 ? static_cast<double>(p.patient_cycles) / p.elapsed_s : 0.0) << " patient-cycles/s"
    << (p.resumed ? ", " + std::to_string(p.resumed) + " patients from the earlier run" : std::string()) << "; store "
    << out_ << "\n";
  if (p.maps_not_used > 0)  // a population far from the cohort (or wrong activities) shows here, not only in notes
    s << "batch: the MAP was not used in " << p.maps_not_used << " of " << p.maps_used + p.maps_not_used
      << " VOIs fitted with a population or previous-cycles prior (it failed its criteria: see the notes; those VOIs "
         "have their individual fit)\n";
  std::cout << s.str();
  if (p.interrupted) {
    const int sig = g_signal.load();
    std::cerr << "lutdose batch: stopped by " << (sig == SIGTERM ? "SIGTERM" : "SIGINT") << " after " << p.committed
              << " of " << p.total << " patients; the store " << out_
              << " holds every committed patient: continue it with the same command and --resume\n";
    return 128 + sig;  // as the shell reports a command ended by that signal
  }
  return p.failed > 0 ? 3 : 0;
}

}  // namespace lutdose_cli
