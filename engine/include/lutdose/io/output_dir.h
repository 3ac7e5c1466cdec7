// Crash-safe, data-safe output (docs/results.md, "How results are written").
//
// The guarantee: after any failure (bad input, full disk, I/O error, SIGKILL at any instant, a
// concurrent run into the same place) the output directory holds either the previous complete
// result set or the new complete one, never a mix and never a partial file; lutdose removes or
// overwrites nothing except what it created itself under a name unique to the run, a previous
// lutdose result set of the same kind (ResultKind) in the output directory, and the leftovers of
// killed lutdose runs. A set of another kind (e.g. a synth cohort with its truth.csv where a run
// would write) is refused, never replaced.
//
// How: the set is written into a fresh staging directory `.lutdose-tmp-` + 12 random characters
// beside the output directory (created exclusively, files created with O_EXCL|O_NOFOLLOW, every
// file and the directory fsync'ed, a manifest.json with the run id and the files' sizes and
// SHA-256 written last), which is then renamed to the output name in one step (renameat2
// RENAME_NOREPLACE, or RENAME_EXCHANGE with a previous lutdose set whose files all match its
// manifest, which is removed afterwards). A staging directory is locked (flock) for its run's
// lifetime; the next run into the same parent removes the unlocked ones (killed runs), and from
// them only lutdose's own file names.
//
// Needs Linux renameat2 (ext4, xfs, btrfs, tmpfs). Not for concurrent use from several threads of
// one process (the staging directory's mode is set from the process umask, read by umask(2)).
#pragma once

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace lutdose {

//! Output could not be written for a reason outside the input (full disk, I/O error): exit 1.
//! Output-path problems the user can fix (a file in the way, no permission, an empty name, a
//! directory holding other files) are InputErrors (exit 2). Both messages carry the reason.
class OutputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

//! The kinds of result set. A set is replaced only by a set of its own kind: run results do not
//! replace a synth cohort (the user's study data), nor export tables a run's results.
enum class ResultKind {
  run,           //!< lutdose run: results.json, results.csv, results.h5 (and report.html with --report)
  synth,         //!< lutdose synth: tacs.csv, patients.csv, truth.csv, synth.json, case-*.json
  store_export,  //!< lutdose export --csv: patients.csv, vois.csv, candidates.csv, targets.csv,
                 //!< budget.csv, cumulative.csv, failures.csv, notes.csv, points.csv, population.csv,
                 //!< population_omega.csv
};

//! One output file: its name in the result set and its complete content.
struct OutputFile {
  std::string name;
  std::string bytes;
};

//! The names a result set may hold: results.json, results.csv, results.h5, report.html (lutdose run);
//! tacs.csv, patients.csv, truth.csv, synth.json (lutdose synth); patients.csv, vois.csv,
//! candidates.csv, targets.csv, budget.csv, cumulative.csv, failures.csv, notes.csv, points.csv, population.csv,
//! population_omega.csv (lutdose
//! export of a results store, docs/store.md); and manifest.json. Besides
//! them, a set may hold case files named as is_case_file_name says. Throws nothing.
const std::vector<std::string>& result_set_names();

//! True for "case-" + 1 to 64 letters, digits, '_' or '-' + ".json": the case files of lutdose
//! synth, which a result set may hold besides result_set_names(). Throws nothing.
bool is_case_file_name(const std::string& name);

//! Checks, before any work is done and without writing, that `dir` can receive a result set: a
//! non-empty name whose last part is not '.' or '..', not a symbolic link or a file, either
//! absent (with a writable nearest existing parent) or a directory that is empty or holds only a
//! previous lutdose result set of the same `kind` whose files all match its manifest. The kind of
//! a previous set is decided by its files: it is `kind` when every file but manifest.json is a
//! name a set of `kind` holds (patients.csv is both synth's and export's; synth.json, vois.csv,
//! results.json and the others tell them apart). Throws InputError with the reason otherwise (for
//! a set of another kind: which kind it is, and to choose another directory).
void check_output_dir(const std::string& dir, ResultKind kind);

//! Writes `files` plus manifest.json (run id, `lutdose_version`, UTC time, each file's size and
//! SHA-256) as one result set of `kind` into `dir` with the guarantee above; a previous set there
//! is replaced only if it is of the same kind (as check_output_dir); creates missing parents (and
//! removes those it created if the run fails). Throws InputError (path problems, a set of another
//! kind) or OutputError (I/O); std::logic_error for a file name that is not a name of a `kind`
//! set (a programming error). Returns the run id.
std::string write_output_files(const std::string& dir, ResultKind kind, const std::vector<OutputFile>& files,
                               const std::string& lutdose_version);

//! A result set written file by file, each streamed in pieces, for sets too large to hold in
//! memory (lutdose export): the guarantee and the mechanism of write_output_files, whose files it
//! writes (write_output_files is this writer given whole files). The constructor checks `dir` (as
//! check_output_dir), creates its missing parents and the locked staging directory; each file is
//! written into the staging directory as it comes, its size and SHA-256 computed on the way;
//! publish() writes the manifest and publishes the set in one step. Destroyed before publish()
//! has succeeded (an exception meanwhile), it removes its staging directory (only lutdose's names
//! in it) and the parents it created: the previous set at `dir`, if any, stays as it was.
//! Throws as write_output_files (InputError, OutputError; std::logic_error for a name that is
//! not a name of a `kind` set).
class ResultSetWriter {
 public:
  ResultSetWriter(const std::string& dir, ResultKind kind, const std::string& lutdose_version);
  ~ResultSetWriter();
  ResultSetWriter(const ResultSetWriter&) = delete;
  ResultSetWriter& operator=(const ResultSetWriter&) = delete;
  //! Starts the file `name` of the set (the file before it is flushed and closed).
  void begin_file(const std::string& name);
  //! Appends `bytes` to the file begun last (std::logic_error when none was begun).
  void write(const std::string& bytes);
  //! Ends the last file, writes manifest.json, publishes the set at `dir`; returns the run id.
  std::string publish();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

//! Writes one file at `path` atomically: a locked, exclusively created temporary file in the
//! same directory, fsync'ed, renamed over `path`, directory fsync'ed. An existing `path` is
//! replaced only if it is a regular file for which `is_previous_output(content)` is true
//! (an earlier output of the same kind); a symbolic link, a directory or another file there is an
//! InputError. Killed runs' temporaries in that directory are removed first. Throws InputError
//! (path problems the user can fix, e.g. no permission) or OutputError (full disk, I/O error).
void write_file_atomically(const std::string& path, const std::string& bytes,
                           const std::function<bool(const std::string& content)>& is_previous_output);

//! Checks, without writing, that write_file_atomically(path, ..., is_previous_output) may write
//! `path` now: its directory exists and nothing is there, or an earlier output for which
//! `is_previous_output` is true. For commands writing several files: check them all first, so
//! that a refused second file leaves the first unwritten. Throws as write_file_atomically.
void check_file_writable(const std::string& path,
                         const std::function<bool(const std::string& content)>& is_previous_output);

//! `json_object_text` (a non-empty JSON object) with a last member "lutdose_sha256": the SHA-256
//! of the file's bytes before that member. The file then recognises itself as unedited.
//! Throws std::logic_error when the text is not a non-empty JSON object (a programming error).
std::string with_own_checksum(const std::string& json_object_text);

//! True when `text` ends in the member with_own_checksum appends and that checksum matches the
//! bytes before it: a file lutdose wrote, not edited since. Throws nothing.
bool has_own_checksum(const std::string& text);

//! Lowercase hex SHA-256 of `bytes` (OpenSSL; 64 characters). Throws std::runtime_error if
//! OpenSSL fails.
std::string sha256_hex(const std::string& bytes);

}  // namespace lutdose
