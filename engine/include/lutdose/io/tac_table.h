// The TAC table (design.md §4.2): long-format CSV, one row per VOI per time point.
// Columns (header required, any order): voi, time_h, activity_MBq; optional patient, cycle,
// volume_mL, mass_g, activity_u_MBq. Lines starting with '#' are comments.
#pragma once

#include <Eigen/Dense>

#include "lutdose/io/csv.h"

#include <memory>
#include <string>
#include <vector>

namespace lutdose {

//! One VOI's time-activity curve of one patient and cycle, in file order.
struct TacSeries {
  std::string patient;  //!< "" when the table has no patient column
  int cycle = 1;
  std::string voi;
  Eigen::VectorXd time_h;
  Eigen::VectorXd activity_MBq;    //!< activity present at time_h, not decay-corrected
  Eigen::VectorXd activity_u_MBq;  //!< standard uncertainty, empty when not given
  std::vector<double> volume_mL;   //!< per row; NaN where not given
  std::vector<double> mass_g;      //!< per row; NaN where not given
  std::vector<int> lines;          //!< line numbers in the file, for messages
  double volume_u_mL = 0;          //!< standard uncertainty of the volume (case files)
  std::string where() const;       //!< "patient P, cycle C, VOI V" for messages; throws nothing
};

//! The columns a TAC table may have (names with units: time_h, activity_MBq, ...). Throws nothing.
const std::vector<std::string>& tac_columns();

//! The checks of a TAC table row by row, for read_tac_table and for the streaming reader of
//! `lutdose batch` (whose cohort tables exceed the input size limit): one parser per file.
class TacRowParser {
 public:
  //! Checks the header: only TAC columns, each once, the required ones present. InputError
  //! naming `path` (used in every message) and the column otherwise.
  TacRowParser(const std::vector<std::string>& header, const std::string& path);
  ~TacRowParser();
  TacRowParser(const TacRowParser&) = delete;
  TacRowParser& operator=(const TacRowParser&) = delete;
  //! Checks and adds one data row: read_tac_table's checks of the row and of its TAC so far (times
  //! increasing, limits). InputError naming the file, line, column and value.
  void add(const CsvRow& row);
  //! The same for a row read as views (for_each_csv_record), without copying its cells.
  void add_record(const CsvRecord& row);
  //! Room for n rows before adding them (an upper bound, e.g. the number of lines): fewer page
  //! faults and copies than a regrown vector. Optional.
  void reserve_rows(size_t n);
  //! The TACs of the rows added since the last take(), in the order of their first row.
  //! InputError when activity_u_MBq is given for some points of a TAC only.
  std::vector<TacSeries> take();
  //! Index of the patient column, -1 when there is none. Throws nothing.
  int patient_column() const;
  //! Index of the voi column (a required column). Throws nothing.
  int voi_column() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

//! Reads and validates a TAC table. Throws InputError naming the file, line, column and value
//! for: a missing file or column, an unknown column, a malformed or non-finite number, a negative
//! activity or time, a non-positive uncertainty, volume or mass, times not strictly increasing
//! within a VOI, an empty VOI name, values outside the plausibility ranges, and inputs beyond the
//! limits (file size, points per TAC, VOIs per cycle, cycles, name length; lutdose/input_file.h).
//! The file is read once; `bytes` (optional) receives exactly the bytes analysed.
std::vector<TacSeries> read_tac_table(const std::string& path, std::string* bytes = nullptr);

}  // namespace lutdose
