// The results store (docs/store.md): one versioned, tabular HDF5 layout for `lutdose run` (a store
// with one patient, results.h5) and `lutdose batch` (a cohort). Plain compound datasets, one per
// table, keyed by patient and cycle, readable with h5dump, h5py and pandas without lutdose; the
// run's provenance (version, nuclide data, S-value set, options, data files) once per store as
// root attributes.
//
// Tables (one row per ...): /patients (patient-cycle, done or failed), /vois (VOI of a cycle: fit,
// TIA, mass, self-dose), /candidates (candidate fit of a VOI), /targets (dose to every target),
// /budget (GUM budget term of a VOI target's dose), /cumulative (target summed over a patient's
// cycles), /failures (patient whose computation failed, with the error), /notes (notes and
// warnings of fits and dose steps), /points (TAC point a cycle's VOI was fitted from). Key and name columns are fixed-length UTF-8 strings of
// STORE_NAME_BYTES bytes (NUL-padded); free text (errors, notes, sources, a target's region and
// method) is variable-length.
// A value that is not known is NaN, never 0.
//
// Kill-safety of a batch (StoreWriter): results are committed in segments, each a complete store
// file written atomically into PATH.parts/ (temporary name, fsync, rename, directory fsync); after
// every segment PATH itself is atomically replaced by a small master store whose tables are HDF5
// virtual datasets over the committed segments (HDF5 1.10 VDS, relative paths, resolved by the
// library next to PATH). At any instant PATH is therefore absent (nothing committed yet) or a
// complete store that h5dump, h5py and pandas open, holding every committed patient. Each commit
// also appends its rows to the finished file (a temporary file beside PATH); finish() renames it
// to PATH (atomically) and removes PATH.parts. After a resume, finish() consolidates the segments
// into that file instead.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "lutdose/io/store_names.h"
#include "lutdose/pipeline/run_result.h"

namespace lutdose {

//! Layout version, root attribute "format_version" (int32). 1 was the JSON-mirror results.h5 of
//! lutdose <= 0.6; 2 is the tabular store. Bump on any change of docs/store.md.
//! 3 adds /population (the population models of population kinetics); 4 adds its column e_step;
//! 5 adds its columns error_model ... log_sigma_log_se and the table /population_omega; 6 adds
//! the table /points (the TAC points each VOI was fitted from); 7 adds /population_omega's column
//! correlation_se.
inline constexpr int STORE_FORMAT_VERSION = 7;

//! Which format_versions a reader accepts. `current`: STORE_FORMAT_VERSION only (batch --resume
//! and merge, which extend or join a store: it must have today's layout). `readable`: also
//! OLDEST_READABLE_STORE_FORMAT_VERSION up to it (lutdose export, the reports, the Python
//! module); a format 2 store (lutdose 0.10) has no /population table and is read as one without
//! population kinetics (no /population rows); a format 3 store (lutdose 0.11 to 0.13) has no
//! /population column e_step, read as unknown (empty); a format 3 or 4 store (lutdose 0.14 to 0.17)
//! has none of the columns of format 5 (error_model ... log_sigma_log_se: empty or NaN, unknown)
//! and no /population_omega (no rows); a store older than format 6 (lutdose <= 0.18) has no /points
//! (read as a table without rows); a store older than format 7 (lutdose <= 0.19) has no
//! /population_omega column correlation_se (NaN: not known).
enum class StoreVersions { current, readable };
inline constexpr int OLDEST_READABLE_STORE_FORMAT_VERSION = 2;

// STORE_NAME_BYTES, the width of the fixed-length key and name columns: lutdose/io/store_names.h.

constexpr double store_nan() { return std::numeric_limits<double>::quiet_NaN(); }

//! /population: one row per log parameter of a VOI kind's population model (population
//! kinetics: --population FILE or --kinetics population), written once per store with the header.
struct PopulationRow {
  std::string voi_kind, function, parameter;  //!< parameter: population_parameter_names
  double theta = store_nan();       //!< fixed effect (log scale)
  double theta_se = store_nan();    //!< its standard error
  double omega_diag = store_nan();  //!< the random effect's variance (diagonal of Omega)
  double shrinkage = store_nan();   //!< eta shrinkage
  double sigma_log = store_nan();   //!< residual SD of ln A (the VOI kind's; the same in its rows)
  std::int32_t n_tacs = 0;          //!< TACs learned from (the file's n_patients)
  std::int32_t n_observations = 0;  //!< points learned from
  //! The E-step the population was learned with: "sampled" or "laplace" (the population file's
  //! e_step); empty: unknown (a format 3 store, written before the column existed).
  std::string e_step;
  // Format 5 (lutdose 0.18); in a store of format 4 or older: empty strings and NaN (unknown).
  //! The residual error model: "proportional", "combined", "constant" or "input" (to_string).
  std::string error_model;
  //! "diagonal" or "full": the structure of Omega (its elements: /population_omega).
  std::string omega_structure;
  //! The additive residual SD [MBq] of combined and constant; NaN for proportional and input (not
  //! part of those models).
  double sigma0_MBq = store_nan();
  //! The proportional coefficient b of combined (0 for constant, which fixes it at 0); NaN for
  //! proportional (its residual SD of ln A is sigma_log) and input.
  double b_proportional = store_nan();
  //! Standard error of ln Omega_kk of this parameter; NaN when not known.
  double log_omega_se = store_nan();
  //! Standard error of ln sigma_log of the kind (the same in its rows); NaN when not known or when
  //! the model has no sigma_log (the additive models).
  double log_sigma_log_se = store_nan();
  // Format 6 (lutdose 0.19); NaN in a store of format 5 or older (unknown).
  //! Standard error of ln sigma0_MBq (combined, constant); NaN when not known or not in the model.
  double log_sigma0_se = store_nan();
  //! Standard error of ln b_proportional (combined); NaN when not known or not in the model.
  double log_b_proportional_se = store_nan();
};

//! /population_omega (format 5): one row per element (parameter_i, parameter_j), i >= j, of a VOI
//! kind's Omega that its model has: the variances of a diagonal Omega, the lower triangle of a full one.
struct PopulationOmegaRow {
  std::string voi_kind, function, parameter_i, parameter_j;  //!< parameter_*: population_parameter_names
  double covariance = store_nan();   //!< Omega_ij (log scale^2); the variance when i == j
  double correlation = store_nan();  //!< Omega_ij / (Omega_ii Omega_jj)^(1/2) (1 when i == j; NaN for a variance 0)
  //! Format 7 (lutdose 0.20): the standard error of `correlation` (PopulationModel::omega_correlation_se),
  //! 0 when i == j (exactly 1); NaN when not known (a population file of lutdose <= 0.19, a store of
  //! format <= 6) and for a diagonal Omega's rows.
  double correlation_se = store_nan();
};

//! What a store holds once: root attributes (all strings UTF-8) and the /population table.
struct StoreHeader {
  std::string lutdose_version;  //!< "format_version" is written besides it
  std::string kind;             //!< "run" or "batch"
  //! JSON text: the provenance of the run (lutdose version, nuclide data, S-value set, options
  //! as used, data directory and the data files' SHA-256, input description). Case-file batches
  //! record the command-line options here; each case's own options are in its input's checksum.
  std::string provenance_json;
  //! SHA-256 (hex) of what must be equal for two stores to be merged or a batch resumed: the
  //! options and reference data (not paths, not times). merge_stores refuses different ones.
  std::string fingerprint;
  //! What the cohort is (input kind and files with their SHA-256) and this store's shard "I/N";
  //! resume refuses a different cohort or shard.
  std::string cohort;
  std::string shard = "1/1";
  long long cohort_patients = 0;  //!< patients (work items) in this shard of the cohort
  //! The /population rows (none without population kinetics); not in the fingerprint itself (the
  //! fingerprint has the population's SHA-256).
  std::vector<PopulationRow> population;
  //! The /population_omega rows (none without population kinetics, and in a store older than format 5).
  std::vector<PopulationOmegaRow> population_omega;
};

//! /patients: one row per patient-cycle (status "done") or per failed patient (status
//! "failed", cycle 0 when the failure is not tied to a cycle).
struct PatientRow {
  std::string patient;  //!< key (fixed-length)
  std::int32_t cycle = 0;
  std::string status;   //!< "done" or "failed" (fixed-length)
  std::string source;   //!< case file or "TACS.csv + PATIENTS.csv" (variable-length)
  std::string input_sha256;  //!< of the case file / of the patient's rows (fixed-length)
  double administered_MBq = store_nan();
  std::int32_t n_vois = 0;
  std::int32_t n_fits_flagged = 0;   //!< VOIs whose selected fit is not accepted
  std::int32_t n_doses_u_unknown = 0;  //!< targets whose dose u is unknown (incomplete budget)
};

//! /vois: one row per VOI of a cycle.
struct VoiRow {
  std::string patient, voi, function, method;  //!< function: selected id or "trapezoid"
  std::int32_t cycle = 0;
  std::int8_t fit_ok = 0;            //!< the selected result meets the quality criteria
  std::int32_t n_points = 0;
  double tia_MBq_h = store_nan(), tia_u_MBq_h = store_nan(), tia_u_dof = store_nan();
  double tia_ci95_low_MBq_h = store_nan(), tia_ci95_high_MBq_h = store_nan();
  double tia_h = store_nan();        //!< TIA / administered activity [h]
  double mass_g = store_nan();       //!< mass used for the dose (the target's), else the table's
  double dose_Gy = store_nan(), dose_u_Gy = store_nan(), dose_Gy_per_GBq = store_nan();
  double bed_Gy = store_nan(), eqd2_Gy = store_nan();
};

//! /candidates: one row per candidate function fitted to a VOI.
struct CandidateRow {
  std::string patient, voi, function;
  std::int32_t cycle = 0;
  std::int8_t fitted = 0, accepted = 0, selected = 0;
  std::int32_t n_parameters = 0;
  double aicc = store_nan(), akaike_weight = store_nan(), r_squared = store_nan();
  double tia_MBq_h = store_nan(), tia_u_MBq_h = store_nan();
  std::string parameters;  //!< "name=value u=value; ..." (variable-length), natural units
  std::string flags;       //!< flags and warnings joined by "; " (variable-length)
};

//! /targets: one row per target of a cycle's dose.
struct TargetRow {
  std::string patient, target, kind;
  std::string region, method;  //!< variable-length (a dose method is a sentence)
  std::int32_t cycle = 0;
  double mass_g = store_nan(), self_Gy = store_nan(), cross_Gy = store_nan();
  double dose_Gy = store_nan(), dose_u_Gy = store_nan(), dose_u_dof = store_nan();
  double dose_ci95_low_Gy = store_nan(), dose_ci95_high_Gy = store_nan();
  double dose_Gy_per_GBq = store_nan(), bed_Gy = store_nan(), eqd2_Gy = store_nan();
  double dose_u_mc_Gy = store_nan();
  std::string u_missing;  //!< inputs without a known u, joined by "; " (variable-length)
};

//! /budget: one row per nonzero GUM budget term of a VOI target's dose (uncertainty_budget()).
struct BudgetRow {
  std::string patient, target, input;
  std::int32_t cycle = 0;
  double u_rel = store_nan();  //!< the input's relative standard uncertainty
  double dof = store_nan();
  double term_Gy = store_nan();  //!< |c_i| u_i; NaN when unknown
};

//! /cumulative: a target's dose summed over a patient's cycles (patients with > 1 cycle).
struct CumulativeRow {
  std::string patient, target;
  std::int32_t cycles = 0;
  double dose_Gy = store_nan(), dose_u_Gy = store_nan(), bed_Gy = store_nan(), eqd2_Gy = store_nan();
  double dose_ci95_low_Gy = store_nan(), dose_ci95_high_Gy = store_nan();
  std::string u_missing;
};

//! /failures: a patient that could not be computed, with the message `lutdose run` would print.
struct FailureRow {
  std::string patient;
  std::int32_t cycle = 0;  //!< 0: the whole patient
  std::string source, error;  //!< variable-length
};

//! /notes: notes and warnings of a VOI's fit ("fit") or of a cycle's dose step ("dose").
struct NoteRow {
  std::string patient, voi, stage;  //!< voi empty for the dose step
  std::int32_t cycle = 0;
  std::string note;  //!< variable-length
};

//! /points (format 6): one row per TAC point a cycle's VOI was fitted from (VoiResult::tac: after
//! any residual subtraction, not decay-corrected), in the TAC's order.
struct PointRow {
  std::string patient;
  std::int32_t cycle = 0;
  std::string voi;
  double time_h = store_nan();
  double activity_MBq = store_nan();
  double activity_u_MBq = store_nan();  //!< NaN where the input gave none
};

//! The rows of one or more patients, in the order they are stored.
struct StoreRows {
  std::vector<PatientRow> patients;
  std::vector<VoiRow> vois;
  std::vector<CandidateRow> candidates;
  std::vector<TargetRow> targets;
  std::vector<BudgetRow> budget;
  std::vector<CumulativeRow> cumulative;
  std::vector<FailureRow> failures;
  std::vector<NoteRow> notes;
  std::vector<PointRow> points;
  void append(StoreRows&& other);
  void clear();
  std::size_t total_rows() const;
};

//! The rows of a run's result (every patient and cycle of `r`); `source` names the input and
//! `input_sha256` its checksum (recorded per patient-cycle). Throws InputError naming the field
//! and the value for a key or name longer than STORE_NAME_BYTES.
StoreRows store_rows(const RunResult& r, const std::string& source, const std::string& input_sha256);

//! Only the /vois rows of store_rows(r, ...) (the same values): `lutdose fit --format csv`, which
//! prints that table alone. Throws as store_rows.
StoreRows store_voi_rows(const RunResult& r);

//! The same into `rows`: rows.vois becomes r's VOI rows (its storage reused from call to call);
//! the other tables of `rows` are left as they are. Throws as store_rows.
void store_voi_rows(const RunResult& r, StoreRows& rows);

//! The rows of a patient that failed: one /patients row (status "failed") and one /failures row.
//! Names longer than STORE_NAME_BYTES are shortened here (the error message says so): a failure
//! is always recorded.
StoreRows failure_rows(const std::string& patient, int cycle, const std::string& source,
                       const std::string& error);

//! The store header of a run's provenance (kind, version, provenance JSON, fingerprint and the
//! /population and /population_omega rows of p.options.population); `cohort` and `shard` are left for the caller.
StoreHeader store_header_of(const Provenance& p, const std::string& kind);

//! A complete store file built in memory (core driver): header, rows, and `inputs` (name, text)
//! stored verbatim as string datasets under /inputs (e.g. the case file, the TAC table). Every
//! HDF5 call's status is checked; std::runtime_error names the failing call. Not thread-safe
//! (serial HDF5): call from one thread at a time.
std::string store_image(const StoreHeader& header, const StoreRows& rows,
                        const std::vector<std::pair<std::string, std::string>>& inputs = {});

//! The committed state of a store: its header and the keys of the /patients rows in order.
struct StoreIndex {
  StoreHeader header;
  std::vector<std::pair<std::string, std::int32_t>> patient_cycles;  //!< (patient, cycle) per /patients row
  std::vector<std::string> status;  //!< per /patients row
  bool consolidated = false;        //!< an ordinary file (finished), not a master over segments
};

//! Reads the header and the /patients keys of the store at `path` (a finished store or a
//! master). InputError naming the path when it is missing, not HDF5, not a lutdose store, or of
//! another format_version than `versions` accept (the message says which version was found and
//! which are read).
StoreIndex read_store_index(const std::string& path, StoreVersions versions = StoreVersions::current);

//! The batch writer of one store path (see the file comment). Holds an exclusive lock (flock on
//! PATH.parts) for its lifetime: a second writer on the same path is an InputError. Not
//! thread-safe: one thread commits.
class StoreWriter {
 public:
  //! A new store at `path`. InputError when `path` exists (resume it or choose another name),
  //! when PATH.parts exists (a killed batch: resume it), or when the directory is not writable.
  static std::unique_ptr<StoreWriter> create(const std::string& path, const StoreHeader& header);
  //! Continues the store at `path` (a master left by a killed or stopped batch, or PATH.parts
  //! with nothing committed yet). InputError when its fingerprint, cohort or shard differ from
  //! `header`'s, when it is not a lutdose store, when PATH.parts is locked by another writer, or
  //! when neither PATH nor PATH.parts exists. A store already finished is not an error:
  //! index().consolidated is true, finish() is a no-op and commit() a std::logic_error (a
  //! PATH.parts left by a finish() killed after publishing is removed). Segment files that were
  //! never committed (written by a killed run, not in the master) and killed writes' temporary
  //! files in PATH.parts are removed; numbering continues after the last committed segment.
  static std::unique_ptr<StoreWriter> resume(const std::string& path, const StoreHeader& header);
  ~StoreWriter();

  //! What is committed so far (for resume: the patients to skip).
  const StoreIndex& index() const;
  //! Writes `rows` as a new segment and publishes the new master (both atomic, fsync'ed). When
  //! it returns, the rows are durable and visible in the store. Throws OutputError (full disk,
  //! I/O error: the store keeps its previous content) or std::runtime_error (HDF5).
  void commit(const StoreRows& rows);
  //! Publishes the finished file at `path` (atomically; it was appended to by every commit, or,
  //! after a resume, consolidated now from the segments, streamed with bounded memory), then
  //! removes PATH.parts. Throws OutputError; the master stays valid.
  void finish();

  class Impl;
 private:
  explicit StoreWriter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

//! Calls `fn` with the rows of `path`, a bounded number at a time, for export and merge: table by
//! table in store order (patients, vois, candidates, targets, budget, cumulative, failures, notes,
//! points),
//! each in slices of at most 65536 rows in stored order; each call's StoreRows holds one slice of
//! one table (the other tables empty). InputError as read_store_index.
void for_each_store_chunk(const std::string& path, const std::function<void(const StoreRows&)>& fn,
                          StoreVersions versions = StoreVersions::current);

//! The rows of the table named `table` ("patients", "vois", "candidates", "targets", "budget",
//! "cumulative", "failures", "notes", "points") of `rows` as CSV text, preceded by the header line when
//! `header`: the columns and number format of `lutdose export`'s TABLE.csv (docs/store.md), for
//! streaming output such as `lutdose fit --format csv`. std::invalid_argument for another name.
std::string store_table_csv(const StoreRows& rows, const std::string& table, bool header);

//! store_table_csv(rows, table, header) appended to `out` (a buffer reused line after line).
void append_store_table_csv(const StoreRows& rows, const std::string& table, bool header, std::string& out);

//! Rows of one table that lutdose export reads and writes at a time: the export's memory is about
//! one such slice of the widest table (/targets: some 10 MB), whatever the store's size.
inline constexpr std::size_t STORE_EXPORT_SLICE_ROWS = 8192;

//! lutdose export: DIR/vois.csv, targets.csv, failures.csv (and candidates.csv, budget.csv,
//! cumulative.csv, patients.csv, notes.csv, points.csv, population.csv, population_omega.csv) of the store at `path`, as one result set
//! (io/output_dir.h). Columns in docs/store.md; numbers in their shortest exact form, NaN written
//! as an empty field. Streams: each table is read in slices of `slice_rows` rows (hyperslabs of
//! its dataset) whose CSV lines are written to the set's file (ResultSetWriter) before the next
//! slice is read; the files are the same whatever `slice_rows` (tests use small ones).
//! InputError as read_store_index and check_output_dir; OutputError as write_output_files;
//! std::invalid_argument for `slice_rows` 0.
void export_store_csv(const std::string& path, const std::string& dir,
                      std::size_t slice_rows = STORE_EXPORT_SLICE_ROWS);

//! lutdose merge: one finished store at `out` (new; refused when it exists) holding the patients
//! of every shard in `shards` in the order given. InputError when a shard is unfinished, of another
//! format version, or has another fingerprint (the message names both stores and what differs),
//! or when two shards hold the same patient-cycle. The merged header: the first shard's version and
//! provenance, kind "batch", shard "1/1", cohort_patients summed, cohort the shards' one if they
//! all have the same, else a JSON list of theirs. The shards' /inputs are not copied. Streams
//! (bounded memory) into a temporary file published atomically; OutputError for I/O failures.
void merge_stores(const std::string& out, const std::vector<std::string>& shards);

//! The TACs a store's cycles were fitted from, for learning a population (lutdose population learn
//! STORE.h5): /points grouped by patient, cycle and VOI (in row order), each series' administered
//! activity from its /patients row (status done).
struct StoreTacs {
  std::vector<TacSeries> series;         //!< activity_u_MBq empty where every point's is NaN
  std::vector<double> administered_MBq;  //!< of series[i]'s patient-cycle [MBq]
  std::size_t failed_patients = 0;       //!< patients of status "failed": not in `series`
  std::string sha256;                    //!< of the store file's bytes (the population's provenance)
  //! The half-life [h] the store was computed with (its provenance's nuclide.half_life_h; NaN when not
  //! recorded): its points are not decay-corrected, so a population is learned with this half-life.
  double half_life_h = std::numeric_limits<double>::quiet_NaN();
};

//! Reads the TACs of the store at `path` (a finished store or a master). InputError naming the
//! store: as read_store_index (StoreVersions::readable), a store older than format 6 (no /points:
//! the version found and what to do), an unfinished batch (a master: its SHA-256 would not cover
//! its segments), a store whose patients all failed, one without points, and a point whose
//! patient-cycle has no /patients row of status done or one whose administered_MBq is not > 0.
StoreTacs read_store_tacs(const std::string& path);

}  // namespace lutdose
