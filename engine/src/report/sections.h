// Private: the sections of the per-patient report (report/patient_report.h).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "lutdose/report/patient_report.h"

namespace lutdose::report::detail {

using nlohmann::json;

//! A quality flag or warning of results.json in plain words ("rate lambda1_bio_per_h at its lower
//! bound (no biological clearance)"); an unknown code as is.
std::string flag_words(const std::string& code);

//! The fit section of one VOI: plots (linear, log, residuals), fit table, selection and notes.
std::string voi_section(const json& doc, const json& voi, const std::string& patient, int cycle);

//! The TAC plot of a VOI (see voi_plot_svg).
std::string tac_plot(const json& doc, const json& voi, const std::string& patient, int cycle, bool log_y);

//! The dose table of a cycle and the uncertainty budgets of its organs at risk.
std::string dose_section(const json& cycle, const std::string& patient, const ReportContext& ctx);

//! Cycle-by-cycle cumulative dose and BED of the organs at risk against their limits (2+ cycles).
std::string cumulative_section(const json& patient, const ReportContext& ctx);

//! The plan (ctx.plan), when present.
std::string plan_section(const ReportContext& ctx);

//! Provenance: versions, checksums, options, data files, every warning and note.
std::string provenance_section(const json& doc, const ReportContext& ctx);

//! The "cycle" number of a cycle object of results.json; 0 when missing or not a finite number.
int cycle_number(const json& cycle);

//! "<td data-field=F data-value=EXACT>shown</td>" (right-aligned number; "—" when unknown).
std::string num_cell(const std::string& field, double v, int digits = 4);

//! The strictest limit of `quantity` ("dose_Gy", "bed_Gy") that applies to `target`; NaN if none.
double limit_of(const ReportContext& ctx, const std::string& target, const std::string& quantity);

}  // namespace lutdose::report::detail
