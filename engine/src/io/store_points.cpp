// The TACs of a results store (/points, format 6) with their administered activities (/patients),
// for learning a population from a store (lutdose population learn STORE.h5, docs/population.md).
#include <fcntl.h>

#include <limits>
#include <map>
#include <set>
#include <tuple>

#include "io/store_hdf5.h"
#include "lutdose/error.h"
#include "lutdose/io/store.h"

namespace lutdose {

using namespace store_detail;

namespace {

using PatientCycle = std::pair<std::string, std::int32_t>;

//! The administered activity [MBq] of each patient-cycle of status done; the ids of the failed
//! patients in `failed`.
std::map<PatientCycle, double> done_cycles(const StoreFileReader& r, std::set<std::string>& failed) {
  std::map<PatientCycle, double> done;
  std::vector<PatientRow> rows;
  for_each_slice(r, patients_table(), kSliceRows, rows, [&] {
    for (const auto& p : rows) {
      if (p.status == "done") done.emplace(PatientCycle{p.patient, p.cycle}, p.administered_MBq);
      else failed.insert(p.patient);
    }
  });
  return done;
}

//! The points of one TAC as they are read.
struct PointsOf {
  TacSeries series;
  std::vector<double> time_h, activity_MBq, activity_u_MBq;
};

//! The TacSeries of `p`: activity_u_MBq empty when no point has one (the input gave none).
TacSeries series_of(PointsOf& p) {
  const auto vector = [](const std::vector<double>& x) {
    return Eigen::Map<const Eigen::VectorXd>(x.data(), static_cast<Eigen::Index>(x.size())).eval();
  };
  TacSeries s = std::move(p.series);
  s.time_h = vector(p.time_h);
  s.activity_MBq = vector(p.activity_MBq);
  for (const double u : p.activity_u_MBq)
    if (!std::isnan(u)) {
      s.activity_u_MBq = vector(p.activity_u_MBq);
      break;
    }
  s.volume_mL.assign(p.time_h.size(), std::numeric_limits<double>::quiet_NaN());
  s.mass_g = s.volume_mL;
  return s;
}

//! The /points rows of `r` grouped by patient, cycle and VOI, in the order of their first rows.
std::vector<PointsOf> points_of(const StoreFileReader& r) {
  std::vector<PointsOf> tacs;
  std::map<std::tuple<std::string, std::int32_t, std::string>, std::size_t> index;
  std::vector<PointRow> rows;
  for_each_slice(r, points_table(), kSliceRows, rows, [&] {
    for (const auto& p : rows) {
      const auto [it, fresh] = index.emplace(std::make_tuple(p.patient, p.cycle, p.voi), tacs.size());
      if (fresh) {
        tacs.emplace_back();
        tacs.back().series.patient = p.patient;
        tacs.back().series.cycle = p.cycle;
        tacs.back().series.voi = p.voi;
      }
      PointsOf& t = tacs[it->second];
      t.time_h.push_back(p.time_h);
      t.activity_MBq.push_back(p.activity_MBq);
      t.activity_u_MBq.push_back(p.activity_u_MBq);
    }
  });
  return tacs;
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
                     " in /failures); no TAC points to learn a population from");
}

//! The SHA-256 of the store file's bytes (read in blocks: memory bounded whatever its size).
std::string store_file_sha256(const std::string& path) {
  std::uint64_t size = 0;
  std::string sha;
  if (!output_fs::regular_file_sha256(AT_FDCWD, path, std::numeric_limits<off_t>::max(), size, sha))
    throw InputError("results store " + output_fs::in_quotes(path) + ": cannot read it to compute its SHA-256");
  return sha;
}

}  // namespace

StoreTacs read_store_tacs(const std::string& path) {
  hdf5::QuietHdf5Errors quiet;
  const std::string shown = output_fs::in_quotes(path);
  StoreFileReader r(path, StoreVersions::readable);
  std::set<std::string> failed;
  const auto done = done_cycles(r, failed);
  check_learnable(r, shown, failed, done.size());
  StoreTacs out;
  out.failed_patients = failed.size();
  out.sha256 = store_file_sha256(path);
  for (auto& p : points_of(r)) {
    const auto it = done.find({p.series.patient, p.series.cycle});
    if (it == done.end())
      throw InputError("results store " + shown + ": /points holds " + p.series.where() +
                       ", whose patient-cycle has no /patients row of status done; expected the points of done cycles");
    if (!(it->second > 0) || !std::isfinite(it->second))
      throw_input_error("results store " + shown + ": /patients, " + p.series.where(), "administered_MBq",
                        std::to_string(it->second),
                        "a finite activity > 0 (population amplitudes are per administered activity)");
    out.administered_MBq.push_back(it->second);
    out.series.push_back(series_of(p));
  }
  if (out.series.empty())
    throw InputError("results store " + shown + " holds no TAC points (/points has no rows); expected a store of "
                     "lutdose batch or run with its patients' points");
  return out;
}

}  // namespace lutdose
