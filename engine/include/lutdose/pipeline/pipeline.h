// The whole pipeline on a TAC table: fits and TIAs per VOI, then self-doses (design.md §1).
#pragma once

#include <functional>

#include <map>
#include <string>
#include <vector>


#include "lutdose/io/case_file.h"
#include "lutdose/pipeline/options.h"
#include "lutdose/pipeline/reference_data.h"
#include "lutdose/pipeline/run_result.h"
#include "lutdose/planning/planning.h"

namespace lutdose {


//! The per-patient pipeline: fits and TIAs [MBq h] for every series of the table (patient, cycle,
//! VOI), then, when options.dose is set, doses [Gy] with their GUM budgets, BED [Gy] and the sums
//! over cycles. Reads no file and no global state: everything comes from `series`, `options` (whose
//! files were read by read_run_files) and `reference`; safe to call from many threads at once on
//! one shared ReferenceData. `points` (optional, same order as `series`) carries the quantification
//! of each point. Throws InputError on bad input (naming the file, the field and the value);
//! std::logic_error when a file named by the options was not read before.
RunResult run_tac_table(const std::vector<TacSeries>& series, const RunOptions& options,
                        const ReferenceData& reference,
                        const std::vector<std::vector<QuantifiedPoint>>* points = nullptr);

//! The same for one-off use: loads the reference data of options.data_dir and reads the files the
//! options name (read_run_files) first. Throws InputError as the loaders and the pipeline.
RunResult run_tac_table(const std::vector<TacSeries>& series, const RunOptions& options,
                        const std::vector<std::vector<QuantifiedPoint>>* points = nullptr);

//! The series of each patient: patients in the order of their first series, each patient's series
//! in table order (the order of run_tac_table's and for_each_patient_result's results).
std::vector<std::vector<TacSeries>> series_by_patient(const std::vector<TacSeries>& series);
//! The same as indices into `series`, without copying a series.
std::vector<std::vector<size_t>> patient_indices(const std::vector<TacSeries>& series);

//! run_tac_table one patient at a time, for output streamed patient by patient (`lutdose fit
//! --format csv`): loads the reference data and reads the files the options name once, then calls
//! `fn` with the result of each patient's series (every cycle and VOI of the patient, in the order
//! of their first series), so that memory holds one patient's result. Each patient's result equals
//! the part of run_tac_table(series, options) about that patient (the patients are independent).
//! Throws InputError as run_tac_table; what `fn` throws passes.
void for_each_patient_result(const std::vector<TacSeries>& series, const RunOptions& options,
                             const std::function<void(const RunResult&)>& fn);

//! Resolves a compartment model name (shipped: blood_organ_linear, prrt_multiorgan_linear,
//! receptor_pbpk_template) or path to a file; InputError when not found.
std::string find_compartment_model(const std::string& name_or_path, const std::string& data_dir);

//! The run options of a case file (no file read): its fit, dose, radiobiology and uncertainty
//! blocks. mc_samples >= 0 and mc_seed > 0 override the case's Monte Carlo settings. The files it
//! names are read by read_run_files afterwards.
RunOptions run_options_from_case(const CaseFile& c, const ReferenceData& reference, int mc_samples = -1,
                                 unsigned long long mc_seed = 0);

//! The per-patient pipeline on a case file: quantification (counts to MBq), then run_tac_table
//! with `options` (from run_options_from_case, files read), and the cycles' provenance. Reads no
//! file; thread-safe on a shared ReferenceData. Throws InputError as quantify_case and run_tac_table.
RunResult run_case(const CaseFile& c, const RunOptions& options, const ReferenceData& reference);

//! The same for one-off use: loads the reference data of `data_dir` (the resolved data
//! directory), maps the case's options and reads the files it names; mc_samples >= 0 overrides
//! the case's Monte Carlo samples and mc_seed > 0 its seed.
RunResult run_case(const CaseFile& c, const std::string& data_dir, int mc_samples = -1,
                   unsigned long long mc_seed = 0);

}  // namespace lutdose
