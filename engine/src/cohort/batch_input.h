// The inputs of a batch (cohort/batch.h), private to the engine: a cohort as an ordered list of
// work items, read in order by one thread at a time and computed on any thread.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "lutdose/cohort/batch.h"
#include "lutdose/io/store.h"
#include "lutdose/pipeline/reference_data.h"

namespace lutdose::batch_detail {

//! One work item (one patient) with its inputs read.
class BatchItem {
 public:
  virtual ~BatchItem() = default;
  //! The item's rows: its results (store_rows), or failure_rows with the error message when its
  //! input is bad or its computation fails. Thread-safe on a shared ReferenceData.
  virtual StoreRows compute(const ReferenceData& reference) const = 0;
};

//! A cohort: its work items in order, its description and the provenance common to every item.
class BatchInput {
 public:
  virtual ~BatchInput() = default;
  virtual std::size_t size() const = 0;  //!< items of the whole cohort
  //! StoreHeader::cohort: the input kind, the file names and their SHA-256 (JSON text).
  virtual std::string cohort() const = 0;
  //! The provenance recorded in the store header: the same for every shard and resumed run.
  virtual Provenance provenance() const = 0;
  //! The patient key item i's rows are stored under (for the check of a resumed store).
  virtual std::string patient_of(std::size_t i) = 0;
  //! The next read() gives item i.
  virtual void seek(std::size_t i) = 0;
  //! The next item in list order; not thread-safe (the caller serialises). Throws on I/O errors.
  virtual std::unique_ptr<BatchItem> read() = 0;
};

//! The case files of cohort.cases_dir (batch_case_files); InputError when the folder cannot be read.
std::unique_ptr<BatchInput> open_case_input(const BatchCohort& cohort, const ReferenceData& reference);

//! The TAC table and patients table of the cohort, read once to list the patients (streaming);
//! InputError for a file that cannot be read, a bad header, no data rows, or a patient whose rows
//! are not contiguous.
std::unique_ptr<BatchInput> open_tac_input(const BatchCohort& cohort, const ReferenceData& reference);

//! BatchCohort::learn_population: learns the population of the cohort's TAC table (read whole)
//! with the administered activities of its patients table into cohort.options, on `threads`
//! threads. InputError (the whole batch: nothing written) for a table that cannot be read or
//! learned from, or a TAC without an administered activity. The learning's notes (use_learned_population)
//! are added to `notes`.
void learn_cohort_population(BatchCohort& cohort, unsigned threads, std::vector<std::string>& notes);

//! BatchCohort::learn_population with case files: learns the population of the folder's case
//! files (their TACs as read_case_folder_tacs reads them, with `reference`'s data directory;
//! use_learned_population, so a compartment population with cohort.options.compartment_model;
//! `threads` threads) into cohort.options. InputError (the whole batch: nothing written) as
//! read_case_folder_tacs and use_learned_population. The learning's notes are added to `notes`.
void learn_cases_population(BatchCohort& cohort, const ReferenceData& reference, unsigned threads,
                            std::vector<std::string>& notes);

//! `run()`, or failure_rows(patient(), 0, source, message) when it throws InputError or another
//! std::exception (then "internal error: " precedes the message). `patient` is called after the
//! failure (it may have learnt the id meanwhile).
StoreRows guarded_rows(const std::function<std::string()>& patient, const std::string& source,
                       const std::function<StoreRows()>& run);

//! The last part of a path ("a/b/c.csv" -> "c.csv"; a trailing '/' is ignored).
std::string file_name_of(const std::string& path);

}  // namespace lutdose::batch_detail
