// Output of a run: results.json (stable fields of design.md §4.4), results.csv, a text table,
// and the atomic writing of an output directory.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <ostream>
#include <string>

#include "lutdose/pipeline.h"

namespace lutdose {

//! The results.json document. With include_doses false, the `doses` are left out (lutdose fit).
nlohmann::ordered_json to_json(const RunResult& r, bool include_doses);

//! One row per VOI (and its dose): the flat table for spreadsheets.
std::string to_csv(const RunResult& r);

//! The human-readable table of TIAs and doses.
void print_table(const RunResult& r, std::ostream& out);

//! One output file: its name and a function that writes it completely to a given path.
struct OutputFile {
  std::string name;
  std::function<void(const std::string& path)> write;
};
//! An output file with this text content.
OutputFile text_output(const std::string& name, std::string content);

//! Writes files into `dir` (created if needed) so that nothing partial is left behind: every file
//! is first written to a temporary name in `dir`, and all are renamed only when all are complete;
//! a directory created here is removed again if any write fails. Throws std::runtime_error.
void write_output_files(const std::string& dir, const std::vector<OutputFile>& files);

}  // namespace lutdose
