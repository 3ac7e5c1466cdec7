// The per-patient HTML report of `lutdose report RESULTS` and `lutdose run --report`
// (docs/report.md): one self-contained HTML file (inline CSS and SVG, no script, no network),
// printable, from results.json (docs/results.md). Every string from the input is escaped.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "lutdose/planning/planning.h"

namespace lutdose::report {

//! What the report says about where its numbers come from, besides results.json itself.
struct ReportContext {
  std::string results_name;     //!< the results.json shown in the provenance
  std::string results_sha256;   //!< its SHA-256 ("" unknown)
  std::string input_sha256;     //!< SHA-256 of the run's input file ("" unknown: input_sha_why says why)
  std::string input_sha_why;
  std::vector<std::pair<std::string, std::string>> manifest_files;  //!< (name, SHA-256) of the result set
  std::string manifest_note;    //!< why the manifest is not listed, if not
  std::vector<Limit> limits;    //!< organ-at-risk limits (data/radiobiology/limits.csv)
  std::string limits_path;
  nlohmann::json plan;          //!< a plan of `lutdose plan --out` (null: none)
  std::string plan_path;
  std::string writer_version;   //!< the lutdose writing the report
  std::string source_note;      //!< shown at the top: what the input lacks (a store's rows), "" none
};

//! The report context of results read from `results_json_path` (report/results_loader.h): the
//! input's SHA-256 from the results.h5 beside it (if any), the result set's manifest.json (if
//! any), the limits of `data_dir` and the plan at `plan_path` ("" none). InputError for a bad
//! plan or limits table.
ReportContext make_context(const std::string& results_json_path, const std::string& results_sha256,
                           const std::string& data_dir, const std::string& plan_path);

//! The report context of one patient of the store at `store_path` (report/store_patient.h): the
//! store's SHA-256, the patient's input checksum, a note on what the store lacks, the limits.
ReportContext make_store_context(const std::string& store_path, const std::string& patient, const std::string& data_dir);

//! The complete HTML page for every patient of `doc` (a checked results.json). Throws nothing
//! beyond std::bad_alloc: a missing value is shown as "—" with the reason.
std::string patient_report_html(const nlohmann::json& doc, const ReportContext& ctx);

//! One VOI's plot (linear or log activity scale) as SVG: points with error bars, every fitted
//! candidate, the selected one highlighted with its 95 % band. `cycle` 0: the first cycle holding
//! the VOI; `patient` "": the first patient. When there is no such plot: InputError naming
//! `source` (the results file) and the option that matches nothing (--patient, --cycle or --voi)
//! with the values there are.
std::string voi_plot_svg(const nlohmann::json& doc, const std::string& patient, const std::string& voi, int cycle,
                         bool log_y, const std::string& source = "results.json");

//! The page around `body`: doctype, title, inline CSS (screen and print), footer. Throws nothing.
std::string html_page(const std::string& title, const std::string& body);

}  // namespace lutdose::report
