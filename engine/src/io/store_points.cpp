// The TACs of a results store (/points, format 6) with their administered activities (/patients),
// for learning a population from a store (lutdose population learn STORE.h5, docs/population.md).
#include <fcntl.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <set>
#include <tuple>

#include <nlohmann/json.hpp>

#include "io/store_hdf5.h"
#include "lutdose/error.h"
#include "lutdose/io/csv.h"
#include "lutdose/io/store.h"
#include "lutdose/io/tac_table.h"

namespace lutdose {

using namespace store_detail;

namespace {

using PatientCycle = std::pair<std::string, std::int32_t>;

//! The administered activity [MBq] of each patient-cycle of status done; the ids of the failed
//! patients in `failed`. InputError for a second done row of a patient-cycle (a hand-edited store:
//! which activity applies is not known).
std::map<PatientCycle, double> done_cycles(const StoreFileReader& r, const std::string& shown,
                                           std::set<std::string>& failed) {
  std::map<PatientCycle, double> done;
  std::vector<PatientRow> rows;
  for_each_slice(r, patients_table(), kSliceRows, rows, [&] {
    for (const auto& p : rows) {
      if (p.status != "done") {
        failed.insert(p.patient);
      } else if (!done.emplace(PatientCycle{p.patient, p.cycle}, p.administered_MBq).second) {
        throw InputError("results store " + shown + ": two /patients rows of status done for patient " + p.patient +
                         ", cycle " + std::to_string(p.cycle) + "; expected one row per patient-cycle");
      }
    }
  });
  return done;
}

//! A number of a /points row as the TAC table's text: exact (17 significant digits), "" for a NaN u
//! (not given); NaN and infinite values as "nan" / "inf", which the table's checks refuse.
std::string cell(double x, bool nan_is_empty = false) {
  if (std::isnan(x) && nan_is_empty) return "";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", x);
  return buf;
}

//! The /points rows of `r` as TACs, grouped by patient, cycle and VOI in the order of their first rows,
//! checked row by row as a TAC table's (TacRowParser: finite times from 0 to the limit, strictly
//! increasing within a TAC, finite activities, u > 0 for every point or none, names): a store edited
//! by hand is refused as a table would be, naming "STORE /points row:N" and the column.
std::vector<TacSeries> points_of(const StoreFileReader& r, const std::string& shown) {
  TacRowParser parser({"patient", "cycle", "voi", "time_h", "activity_MBq", "activity_u_MBq"},
                      "results store " + shown + " /points row");
  std::vector<PointRow> rows;
  int row = 0;
  CsvRow csv;
  for_each_slice(r, points_table(), kSliceRows, rows, [&] {
    for (const auto& p : rows) {
      csv.line = ++row;
      csv.cells = {p.patient, std::to_string(p.cycle), p.voi, cell(p.time_h), cell(p.activity_MBq),
                   cell(p.activity_u_MBq, true)};
      parser.add(csv);
    }
  });
  return parser.take();
}

using VoiKey = std::tuple<std::string, std::int32_t, std::string>;

//! Each VOI's number of points in /vois (patient, cycle, VOI): what /points must hold.
std::map<VoiKey, std::int32_t> voi_points(const StoreFileReader& r) {
  std::map<VoiKey, std::int32_t> n;
  std::vector<VoiRow> rows;
  for_each_slice(r, vois_table(), kSliceRows, rows, [&] {
    for (const auto& v : rows) n[VoiKey{v.patient, v.cycle, v.voi}] = v.n_points;
  });
  return n;
}

//! InputError when /points does not hold the points /vois records (rows deleted or cut from a
//! store): every TAC has its /vois row's n_points, and every /vois row with points has its TAC.
void check_against_vois(const StoreFileReader& r, const std::string& shown, const std::vector<TacSeries>& series) {
  auto expected = voi_points(r);
  for (const auto& s : series) {
    const auto it = expected.find(VoiKey{s.patient, s.cycle, s.voi});
    const auto n = static_cast<std::int32_t>(s.time_h.size());
    if (it == expected.end() || it->second != n)
      throw_input_error("results store " + shown + ": /vois, " + s.where(), "n_points",
                        it == expected.end() ? "missing" : std::to_string(it->second),
                        std::to_string(n) + ", the points /points holds (a store whose points and VOIs differ was "
                        "edited or cut; learn from the TAC table or case files it was made from)");
    expected.erase(it);
  }
  for (const auto& entry : expected)
    if (entry.second > 0)
      throw_input_error("results store " + shown + ": /points, patient " + std::get<0>(entry.first) + ", cycle " +
                            std::to_string(std::get<1>(entry.first)) + ", VOI " + std::get<2>(entry.first),
                        "the points", "none",
                        std::to_string(entry.second) + " points, the /vois row's n_points (points lost)");
}

//! InputError naming the store when it cannot be learned from: older than format 6 (no points),
//! an unfinished batch, no patient done.
void check_learnable(const StoreFileReader& r, const std::string& shown, const std::set<std::string>& failed,
                     std::size_t done) {
  if (r.format_version < 6)
    throw InputError("results store " + shown + " has format_version " + std::to_string(r.format_version) +
                     ": it holds no TAC points (/points, format 6, written by lutdose >= 0.19) to learn a population "
                     "from; learn from the TAC table (with --patients) or the case files the store was made from (its "
                     "cohort attribute names them with their SHA-256), or run the batch again with lutdose >= 0.19");
  if (!r.consolidated)
    throw InputError("results store " + shown + " is an unfinished batch (a master over segments); finish it "
                     "(lutdose batch --resume) before learning from it");
  if (done == 0)
    throw InputError("results store " + shown + ": every patient of the store failed (" + std::to_string(failed.size()) +
                     " patients without a /patients row of status done); no TAC points to learn a population from");
}

//! The SHA-256 of the store file's bytes (read in blocks: memory bounded whatever its size).
std::string store_file_sha256(const std::string& path) {
  std::uint64_t size = 0;
  std::string sha;
  if (!output_fs::regular_file_sha256(AT_FDCWD, path, std::numeric_limits<off_t>::max(), size, sha))
    throw InputError("results store " + output_fs::in_quotes(path) + ": cannot read it to compute its SHA-256");
  return sha;
}

//! nuclide.half_life_h of a store's provenance JSON; NaN where it is not there (not an error: the
//! caller then cannot compare it).
double store_half_life_h(const std::string& provenance_json) {
  const auto j = nlohmann::json::parse(provenance_json, nullptr, false);
  if (j.is_discarded() || !j.contains("nuclide") || !j["nuclide"].is_object()) return std::numeric_limits<double>::quiet_NaN();
  const auto h = j["nuclide"].find("half_life_h");
  return h != j["nuclide"].end() && h->is_number() ? h->get<double>() : std::numeric_limits<double>::quiet_NaN();
}

}  // namespace

StoreTacs read_store_tacs(const std::string& path) {
  hdf5::QuietHdf5Errors quiet;
  const std::string shown = output_fs::in_quotes(path);
  StoreFileReader r(path, StoreVersions::readable);
  std::set<std::string> failed;
  const auto done = done_cycles(r, shown, failed);
  check_learnable(r, shown, failed, done.size());
  StoreTacs out;
  out.failed_patients = failed.size();
  out.sha256 = store_file_sha256(path);
  out.half_life_h = store_half_life_h(r.header.provenance_json);
  out.series = points_of(r, shown);
  for (const auto& s : out.series) {
    const auto it = done.find({s.patient, s.cycle});
    if (it == done.end())
      throw InputError("results store " + shown + ": /points holds " + s.where() +
                       ", whose patient-cycle has no /patients row of status done; expected the points of done cycles");
    if (!(it->second > 0) || !std::isfinite(it->second))
      throw_input_error("results store " + shown + ": /patients, patient " + s.patient + ", cycle " +
                            std::to_string(s.cycle),
                        "administered_MBq", format_number(it->second),
                        "a finite activity > 0 (population amplitudes are per administered activity)");
    out.administered_MBq.push_back(it->second);
  }
  if (out.series.empty())
    throw InputError("results store " + shown + " holds no TAC points (/points has no rows); expected a store of "
                     "lutdose batch or run with its patients' points");
  check_against_vois(r, shown, out.series);
  return out;
}

}  // namespace lutdose
