// The files a run names besides its input (a user S-value table, a compartment model file, a
// population file):
// read here, in io/, before the pipeline, which reads no file.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "lutdose/io/case_file.h"
#include "lutdose/pipeline/options.h"
#include "lutdose/pipeline/reference_data.h"

namespace lutdose {

//! Resolves options.compartment_model (a shipped model name or a file, find_compartment_model)
//! and reads what the pipeline needs that ReferenceData does not hold: the user S-value table of
//! options.dose->svalue_table into options.user_svalue_set, and a model file that is not shipped
//! into options.compartment_model_file, and the population file of options.population_source.path
//! (a case's fit.population) into options.population when it is not there yet (read_population_file,
//! check_population_half_life with the run's nuclide). Throws InputError naming the file (load_user_svalue_table,
//! the model's validation) or the model name that is neither shipped nor a file.
void read_run_files(RunOptions& options, const ReferenceData& reference);

//! --population FILE given on the command line with case files (`run CASE.json`, `plan CASE.json`,
//! `batch CASES_DIR`; empty: not given) and --kinetics (its value when given): the case's
//! population file becomes FILE when the case names none. InputError naming --population and
//! both files with their SHA-256 when the case names another file (fit.population; the same bytes
//! are the same population and pass: the case's path is recorded), and naming --kinetics for
//! `individual` with a population file from either side, and naming the case file's field for an
//! option of individual fits it gives beside the population (check_case_fit_options).
void use_case_population(CaseFile& c, const std::string& population, const std::optional<Kinetics>& kinetics);

//! The options of individual fits that `f` gives a value other than FitOptions' default, as
//! (case file field, value): fit.function, fit.functions, fit.error_model, fit.aicc_k,
//! fit.integration, fit.trapezoid_head/body/tail, fit.model_averaging, fit.combined_sigma0_MBq,
//! fit.combined_b, fit.reject_correlated. A population MAP fit does not use them
//! (docs/population.md): check_case_fit_options refuses a case file's, the command line its
//! options of the same names (fit.error_model: --error-model). Throws nothing.
std::vector<std::pair<std::string, std::string>> individual_fit_options_given(const FitOptions& f);

//! Why those options do not apply to a population MAP fit, the end of the refusals' expected text
//! (check_case_fit_options and the command line's). Throws nothing.
std::string population_map_fit_options_reason();

//! InputError naming the case file, the field and its value when the case's "fit" block gives an
//! option of individual fits (fit.function, fit.functions, fit.error_model, ...: a value other than
//! the default) while its VOIs are fitted by population MAP with `population` (a file, or "the
//! population learned by --kinetics population"), which does not use them.
void check_case_fit_options(const CaseFile& c, const std::string& population);

}  // namespace lutdose
