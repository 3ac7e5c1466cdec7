// The whole pipeline on a TAC table: fits and TIAs per VOI, then self-doses (design.md §1).
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

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

//! The dose history of a run (every target of every cycle: administered activity, dose, BED and
//! G), per patient id, for `lutdose plan`.
std::map<std::string, std::vector<TargetHistory>> history_from_run(const RunResult& r);

//! The measurement uncertainty of the delivered doses of the organs at risk (targets matching a
//! limit's pattern) for `lutdose plan`: per cycle and target, dose_Gy, dose_u_Gy (null when
//! unknown), dose_u_dof ("infinite", a number or null), dose_ci95_Gy ([low, high] or null),
//! uncertainty_incomplete and uncertainty_missing_inputs. An array (empty without doses).
nlohmann::ordered_json delivered_dose_uncertainty(const RunResult& r, const std::vector<Limit>& limits);

//! Plan options from a case file's "plan" block (validated; InputError naming plan.FIELD), the
//! default limits and priors of the data directory, and the tissue parameters of `targets`.
PlanOptions plan_options_from_case(const nlohmann::json& plan_block, const std::string& data_dir,
                                   const std::vector<std::string>& targets,
                                   const std::vector<std::pair<std::string, TissueParameters>>& tissue_overrides,
                                   const std::string& where);

//! The whole pipeline on a case file: quantification, fits, doses. Options come from the case;
//! `data_dir` is the resolved data directory; mc_samples > 0 overrides the case's Monte Carlo.
RunResult run_case(const CaseFile& c, const std::string& data_dir, int mc_samples = -1,
                   unsigned long long mc_seed = 0);

}  // namespace lutdose
