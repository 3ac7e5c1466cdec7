// The whole pipeline on a TAC table: fits and TIAs per VOI, then self-doses (design.md §1).
#pragma once

#include <map>
#include <string>
#include <vector>


#include "lutdose/io/case_file.h"
#include "lutdose/pipeline/options.h"
#include "lutdose/pipeline/run_result.h"
#include "lutdose/planning/planning.h"

namespace lutdose {


//! Runs fits (and doses when options.dose is set) for every series of the table. Throws
//! InputError on bad input before anything is written.
//! `points` (optional, same order as `series`) carries the quantification of each point.
RunResult run_tac_table(const std::vector<TacSeries>& series, const RunOptions& options,
                        const std::vector<std::vector<QuantifiedPoint>>* points = nullptr);

//! Resolves a compartment model name (shipped: blood_organ_linear, prrt_multiorgan_linear,
//! receptor_pbpk_template) or path to a file; InputError when not found.
std::string find_compartment_model(const std::string& name_or_path, const std::string& data_dir);

//! The whole pipeline on a case file: quantification, fits, doses. Options come from the case;
//! `data_dir` is the resolved data directory; mc_samples > 0 overrides the case's Monte Carlo.
RunResult run_case(const CaseFile& c, const std::string& data_dir, int mc_samples = -1,
                   unsigned long long mc_seed = 0);

}  // namespace lutdose
