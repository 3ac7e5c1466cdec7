// Batch dosimetry of a cohort into one results store (`lutdose batch`, docs/batch.md).
//
// A cohort is a list of work items, one per patient (all its cycles): the case files of a folder,
// or the patients of a long TAC table with a patients table. Items are computed by a pool of
// threads sharing one ReferenceData and committed to the store (io/store.h, StoreWriter) by one
// thread strictly in the order of the list, in segments (every commit_interval_s or commit_rows
// rows, and at the end): the committed items are always a prefix of the list, so a killed batch
// resumes after the last committed item, and the store's numbers are the same whatever the number
// of threads. A patient whose input is bad or whose computation fails is recorded as a failure
// (its error message in /failures) and the batch goes on.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "lutdose/io/population_file.h"
#include "lutdose/io/tac_table.h"
#include "lutdose/pipeline/options.h"

namespace lutdose {

class ReferenceData;

//! What the batch reads.
struct BatchCohort {
  enum class Kind { case_files, tac_tables };
  Kind kind = Kind::case_files;
  //! Case files: the folder, and the command-line overrides as for `lutdose run CASE`.
  std::string cases_dir;
  bool allow_external_files = false;
  int mc_samples = -1;            //!< >= 0 overrides each case's Monte Carlo samples
  unsigned long long mc_seed = 0;  //!< > 0 overrides each case's seed
  //! Overrides each case's fit.kinetics when set.
  std::optional<Kinetics> kinetics;
  //! Case files use only the population of `options` (below): options.population_source.path,
  //! --population FILE (read by run_batch before anything is written; every case is fitted by MAP
  //! with it, a case naming another file in fit.population fails), or, with learn_population, the
  //! population learned from the folder (its TACs as learn_population_from_cases reads them; with
  //! options.compartment_model the model's population, a case naming another fit.model fails; a case
  //! naming fit.population fails).
  //! TAC tables: the long TAC table (docs/tac-format.md, with a patient column; each patient's
  //! rows contiguous), the patients table (docs/batch.md) and the options shared by every patient
  //! (fit and dose options; options.dose must be set; the phantom, body mass, administered
  //! activity and VOI masses come from the patients table). Files named by the options are read
  //! once by run_batch (read_run_files).
  std::string tac_path, patients_path;
  RunOptions options;
  //! --kinetics population: before the batch, the population is learned from the whole TAC table
  //! (every shard learns from the whole cohort), each TAC with its administered activity from the
  //! patients table (administered_activities_MBq), or from every case file of cases_dir as
  //! `population learn CASES_DIR` does, and set in `options` (use_learned_population: with
  //! options.compartment_model a compartment population, as `population learn --model`).
  bool learn_population = false;
};

//! Where a batch stands; given to the progress callback after every commit and returned at the
//! end. Counts are of work items (patients) of this shard unless said otherwise.
struct BatchProgress {
  long long total = 0;           //!< items in this shard
  long long committed = 0;       //!< items in the store (resumed ones included)
  long long resumed = 0;         //!< items an earlier run had committed (skipped)
  long long done = 0;            //!< committed items with results (resumed included)
  long long failed = 0;          //!< committed items recorded as failures (resumed included)
  long long patient_cycles = 0;  //!< committed patient-cycles with results, computed by this run
  long long cycles_flagged = 0;  //!< of those, patient-cycles with a fit not accepted (n_fits_flagged > 0)
  long long maps_used = 0;       //!< VOIs of this run fitted by a population or previous-cycles MAP
  long long maps_not_used = 0;   //!< VOIs of this run whose MAP failed its criteria: the individual fit instead
  double elapsed_s = 0;          //!< since run_batch started
  bool interrupted = false;      //!< stopped by BatchOptions::stop before the end (the store is resumable)
};

struct BatchOptions {
  std::string store_path;  //!< the store (StoreWriter)
  unsigned threads = 0;    //!< 0: std::thread::hardware_concurrency()
  bool resume = false;     //!< continue the store at store_path (else it must not exist)
  int shard_index = 1, shard_count = 1;  //!< --shard I/N
  double commit_interval_s = 2.0;        //!< a segment at least this often (when items are ready)
  std::size_t commit_rows = 200000;      //!< ... or when this many rows wait
  //! Called by the committing thread after every commit (and once at the start).
  std::function<void(const BatchProgress&)> progress;
  //! When set and it becomes true (e.g. from a SIGINT handler or Python's Ctrl-C), the batch
  //! stops: it ends the commit under way (if any), commits nothing more, waits for the items in
  //! work, does not finish the store (it stays resumable with `resume`, as after a kill; items
  //! computed but not committed are computed again) and returns with `interrupted` set. Checked
  //! at least every 0.1 s by the committing thread.
  const std::atomic<bool>* stop = nullptr;
  //! Called with each note of the population the batch learns (BatchCohort::learn_population: the VOIs
  //! a compartment model does not observe, left out of it; use_learned_population), before the store is
  //! made.
  std::function<void(const std::string&)> note;
};

//! The case files of a folder: every "*.json" directly in it (not in subfolders), sorted by name
//! (bytes), but the files lutdose itself writes beside case files (result_set_names() of
//! io/output_dir.h, e.g. manifest.json and synth.json) and population files (a JSON object whose
//! "format" is POPULATION_FORMAT: `population learn --out` into the folder, issue 15), each of
//! which adds a note to `left_out` (if given): "DIR/NAME: a population file (format
//! lutdose-population), not a case file: left out". A file that cannot be read or parsed stays a
//! case file (its error is given when it is loaded). InputError when `dir` is not a readable
//! folder.
std::vector<std::string> batch_case_files(const std::string& dir, std::vector<std::string>* left_out = nullptr);

//! InputError (naming "command line", `option`, `path` and why) when `path` is a file that
//! batch_case_files(`dir`) would list: a *.json file (not lutdose's own manifest.json or
//! synth.json) directly in the folder `dir`, compared after resolving "." , ".." and symbolic
//! links of the folders (std::filesystem::weakly_canonical). `population learn CASES_DIR --out`:
//! its population file would be read as a case file by the next batch or learning of the folder.
//! Throws nothing otherwise.
void check_outside_case_folder(const std::string& path, const std::string& dir, const std::string& option);

//! Items [first, last) of shard `index` (1-based) of `count` shards of `n` items: contiguous blocks,
//! first = floor((index-1) n / count), last = floor(index n / count). Shards 1..count in order
//! cover 0..n once. InputError unless 1 <= index <= count.
std::pair<std::size_t, std::size_t> shard_range(std::size_t n, int index, int count);

//! Parses "I/N" (--shard) into (I, N). InputError naming the value unless 1 <= I <= N.
std::pair<int, int> parse_shard(const std::string& text);

//! Runs the batch (file comment). Throws InputError before writing anything for an unreadable
//! cohort (missing folder or file, bad header, a TAC table whose patients are not contiguous),
//! an existing store without `resume`, or a store to resume made from another cohort, shard or
//! options (or whose committed patients are not the first ones of this shard's list); OutputError
//! or std::runtime_error when the store cannot be written (the committed prefix stays valid).
BatchProgress run_batch(const BatchCohort& cohort, const ReferenceData& reference, const BatchOptions& options);

//! The administered activity [MBq] of each of `series` (read from `tac_path`) from a patients
//! table (docs/batch.md: columns patient, optional cycle, administered_MBq; phantom, body mass and
//! masses are not needed and not read): the row of its patient and cycle, or, in a table without
//! a cycle column, its patient's one row (`lutdose population learn --patients`). InputError
//! naming `patients_path`, the patient (and cycle) and administered_MBq for a TAC without a row
//! or an empty cell; naming the row for a bad header, a patient or cycle twice, or an activity
//! that is not a number > 0 in the plausible range. `sha256`, if given: the table's SHA-256.
std::vector<double> administered_activities_MBq(const std::vector<TacSeries>& series, const std::string& patients_path,
                                                const std::string& tac_path, std::string* sha256 = nullptr);

//! The TACs of every case file of a folder (batch_case_files; quantified as `lutdose run CASE` does),
//! each with its cycle's administered activity [MBq] (net of the residual), and the files' names and
//! SHA-256 in name order.
struct CaseFolderTacs {
  std::vector<TacSeries> series;
  std::vector<double> administered_MBq;  //!< of series[i]
  std::vector<std::pair<std::string, std::string>> files;
};

//! The CaseFolderTacs of `dir` (a case without a patient id is the patient of its file's stem).
//! InputError (naming the file) as batch_case_files, load_case_file and quantify_case; for a folder
//! without case files, a patient in two case files, or a case whose nuclide's half-life differs from
//! the Lu-177 of `data_dir` (or half_life_override_h > 0; relative 1e-9).
CaseFolderTacs read_case_folder_tacs(const std::string& dir, const std::string& data_dir, double half_life_override_h,
                                     bool allow_external_files);

//! Records case files (CaseFolderTacs::files) as the input of `p` learned from their folder:
//! case_files, and input_sha256 case_files_sha256 of them. Throws nothing.
void set_case_files_input(PopulationFile& p, std::vector<std::pair<std::string, std::string>> files);

//! `lutdose population learn CASES_DIR`: the population of the TACs of every case file of `dir`
//! (batch_case_files; quantified as `lutdose run CASE` does), each TAC with its cycle's
//! administered activity (net of the residual), learned as learn_population_file with the
//! Lu-177 of `data_dir` (or half_life_override_h > 0); input_path is `dir`, case_files the files'
//! names and SHA-256, input_sha256 case_files_sha256 of them. A case without a patient id is the
//! patient of its file's stem. InputError (naming the file) as batch_case_files, load_case_file
//! and quantify_case; for a folder without case files, a patient in two case files, or a case
//! whose nuclide's half-life differs from the learning's (relative 1e-9); as learn_population.
//! (read_case_folder_tacs, learn_population_file, set_case_files_input.)
PopulationFile learn_population_from_cases(const std::string& dir, const std::string& data_dir,
                                           double half_life_override_h, const PopulationOptions& o,
                                           bool allow_external_files, const std::string& lutdose_version);

}  // namespace lutdose
