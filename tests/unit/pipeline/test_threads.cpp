// The per-patient pipeline on one shared ReferenceData from several threads gives results equal,
// field by field and to the bit, to a serial run (issue 12: reference data loaded once, no global
// mutable state). The jobs cover residual handling (subtract, integrate-to-next), the Monte Carlo
// cross-check, a compartment model, the reduced schedules madsen and prior, and both marrow methods. scripts/tsan.sh runs this test under ThreadSanitizer (docs/validation.md).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "../cohort.h"
#include "../test_util.h"
#include "lutdose/io/case_file.h"
#include "lutdose/io/results.h"
#include "lutdose/io/run_files.h"
#include "lutdose/pipeline/pipeline.h"
#include "lutdose/pipeline/reference_data.h"

using namespace lutdose;

namespace {
const std::string DATA = LUTDOSE_TEST_DATA_DIR;
const std::string SRC = LUTDOSE_TEST_SOURCE_DIR;

// One patient's work: a case file, or a TAC table with its options.
struct Job {
  std::string name;
  std::shared_ptr<const CaseFile> case_file;  // null for a TAC table
  std::vector<TacSeries> series;
  RunOptions options;
};

RunResult run_job(const Job& j, const ReferenceData& ref) {
  return j.case_file ? run_case(*j.case_file, j.options, ref) : run_tac_table(j.series, j.options, ref);
}

// A seeded synthetic patient of the cohort (kidneys, liver, spleen, a tumour; 4 time points),
// with doses on the ICRP 89 male phantom; the reduced schedule or residual handling varies.
Job cohort_patient(unsigned long long seed, const ReferenceData& ref) {
  std::mt19937_64 rng(seed);
  const Eigen::VectorXd t = (Eigen::VectorXd(4) << 4, 24, 48, 168).finished();
  Job j;
  j.name = "cohort seed " + std::to_string(seed);
  for (const auto& kind : cohort::voi_kinds()) {
    const cohort::Tac tac = cohort::draw(rng, kind, t, 0.05);
    TacSeries s;
    s.voi = kind.name == "tumour" ? "tumour_1" : kind.name;
    s.patient = "P" + std::to_string(seed);
    s.time_h = tac.time_h;
    s.activity_MBq = tac.activity_MBq;
    s.volume_mL.assign(4, kind.name == "tumour" ? 20.0 : NAN);
    s.mass_g.assign(4, NAN);
    s.lines.assign(4, 0);
    j.series.push_back(s);
  }
  j.options.data_dir = ref.data_dir();
  j.options.tac_path = j.name;
  j.options.administered_MBq = cohort::A0_MBQ;
  DoseOptions d;
  d.phantom = seed % 2 ? "icrp89-male" : "icrp89-female";
  j.options.dose = d;
  if (seed % 3 == 0) j.options.reduced = ReducedSchedule::madsen;
  return j;
}

Job case_patient(const std::string& path, const ReferenceData& ref) {
  Job j;
  j.name = path;
  j.case_file = std::make_shared<const CaseFile>(load_case_file(SRC + path));
  j.options = run_options_from_case(*j.case_file, ref, 0, 0);
  read_run_files(j.options, ref);
  return j;
}

// A case file with a radiobiology.residual handling ("subtract", "integrate-to-next"); the
// examples' cycles have date-times, which the residual handling needs.
Job case_with_residual(const std::string& path, const std::string& residual, const ReferenceData& ref) {
  std::ifstream in(SRC + path);
  nlohmann::json j;
  in >> j;
  j["radiobiology"] = {{"residual", residual}};
  const std::string tmp = test::write_temp(j.dump());
  Job job;
  job.name = path + " residual " + residual;
  job.case_file = std::make_shared<const CaseFile>(load_case_file(tmp));
  std::remove(tmp.c_str());
  job.options = run_options_from_case(*job.case_file, ref, 0, 0);
  REQUIRE(job.options.residual != ResidualHandling::none);
  read_run_files(job.options, ref);
  return job;
}

// The paths the plain cohort patients do not take: the Monte Carlo cross-check (a seeded RNG per
// run; 40 samples keep the test short), a shipped compartment model (it observes the cohort's
// kidneys, liver and spleen), the "prior" reduced schedule (MAP fit with population priors), and
// the image-based marrow (an L2-L4 VOI; the fraction is an input of this test, not a reference
// value). The blood-based marrow runs in the synthetic case files.
std::vector<Job> special_patients(const ReferenceData& ref) {
  std::vector<Job> jobs;
  Job mc = cohort_patient(7, ref);
  mc.name += ", Monte Carlo";
  mc.options.mc_samples = 40;
  jobs.push_back(mc);
  Job model = cohort_patient(8, ref);
  model.name += ", compartment model";
  model.options.compartment_model = find_compartment_model("prrt_multiorgan_linear", ref.data_dir());
  read_run_files(model.options, ref);
  jobs.push_back(model);
  Job prior = cohort_patient(10, ref);
  prior.name += ", reduced prior";
  prior.options.reduced = ReducedSchedule::prior;
  for (auto& series : prior.series) series.activity_u_MBq = 0.05 * series.activity_MBq;  // the cohort's noise
  jobs.push_back(prior);
  Job marrow = cohort_patient(11, ref);
  marrow.name += ", image marrow";
  TacSeries l2l4 = marrow.series.front();  // kidneys' curve scaled down: a marrow-like uptake
  l2l4.voi = "marrow_l2l4";
  l2l4.activity_MBq *= 0.02;
  marrow.series.push_back(l2l4);
  marrow.options.dose->marrow.method = MarrowMethod::image;
  marrow.options.dose->marrow.l2l4_fraction = 0.067;
  jobs.push_back(marrow);
  Job user = cohort_patient(12, ref);  // a user S-value table, read and indexed once, shared by the threads
  user.name += ", user S-value table";
  const std::string table = test::write_temp(
      "target,source,s_mGy_per_MBq_s,target_mass_g\n"
      "kidneys,kidneys,8.5e-5,310\nkidneys,liver,2e-7,310\nkidneys,spleen,4e-7,310\n"
      "liver,kidneys,2e-7,1800\nliver,liver,1.4e-5,1800\nliver,spleen,1e-7,1800\n"
      "spleen,kidneys,4e-7,150\nspleen,liver,1e-7,150\nspleen,spleen,1.6e-4,150\n");
  user.options.dose->phantom = "user";
  user.options.dose->svalue_table = table;
  read_run_files(user.options, ref);
  std::remove(table.c_str());
  REQUIRE(user.options.user_svalue_set);
  jobs.push_back(user);
  return jobs;
}

// Bit-for-bit equality of two doubles (NaN equals NaN).
bool same(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0 || (std::isnan(a) && std::isnan(b)); }

void compare_dose(const TargetDose& a, const TargetDose& b) {
  CAPTURE(a.target);
  CHECK(a.target == b.target);
  for (auto [x, y] : {std::pair{a.dose_Gy, b.dose_Gy}, {a.dose_u_Gy, b.dose_u_Gy}, {a.dose_u_dof, b.dose_u_dof},
                      {a.self_Gy, b.self_Gy}, {a.cross_Gy, b.cross_Gy}, {a.bed_Gy, b.bed_Gy}, {a.eqd2_Gy, b.eqd2_Gy},
                      {a.bed_g, b.bed_g}, {a.mass_g, b.mass_g}, {a.s_mGy_per_MBq_s, b.s_mGy_per_MBq_s},
                      {a.dose_ci95_Gy.low, b.dose_ci95_Gy.low}, {a.dose_ci95_Gy.high, b.dose_ci95_Gy.high},
                      {a.dose_u_mc_Gy, b.dose_u_mc_Gy}, {a.dose_Gy_per_GBq, b.dose_Gy_per_GBq}})
    CHECK(same(x, y));
  REQUIRE(a.sensitivity_Gy.size() == b.sensitivity_Gy.size());
  for (size_t k = 0; k < a.sensitivity_Gy.size(); ++k) CHECK(same(a.sensitivity_Gy[k], b.sensitivity_Gy[k]));
  CHECK(a.u_missing == b.u_missing);
}

void compare_voi(const VoiResult& a, const VoiResult& b) {
  CAPTURE(a.tac.voi);
  CHECK(a.fit.function == b.fit.function);
  CHECK(a.fit.selected == b.fit.selected);
  for (auto [x, y] : {std::pair{a.fit.tia_MBq_h, b.fit.tia_MBq_h}, {a.fit.tia_u_MBq_h, b.fit.tia_u_MBq_h},
                      {a.fit.tia_u_dof, b.fit.tia_u_dof}, {a.tia_h, b.tia_h}, {a.mean_mass_g, b.mean_mass_g}})
    CHECK(same(x, y));
  REQUIRE(a.fit.candidates.size() == b.fit.candidates.size());
  for (size_t c = 0; c < a.fit.candidates.size(); ++c) {
    const auto &pa = a.fit.candidates[c].parameters, &pb = b.fit.candidates[c].parameters;
    REQUIRE(pa.size() == pb.size());
    for (Eigen::Index i = 0; i < pa.size(); ++i) CHECK(same(pa(i), pb(i)));
    CHECK(same(a.fit.candidates[c].tia_MBq_h, b.fit.candidates[c].tia_MBq_h));
  }
  CHECK(a.fit.notes == b.fit.notes);
}

void compare(const RunResult& a, const RunResult& b) {
  REQUIRE(a.cycles.size() == b.cycles.size());
  for (size_t c = 0; c < a.cycles.size(); ++c) {
    CAPTURE(c);
    REQUIRE(a.cycles[c].vois.size() == b.cycles[c].vois.size());
    for (size_t v = 0; v < a.cycles[c].vois.size(); ++v) compare_voi(a.cycles[c].vois[v], b.cycles[c].vois[v]);
    REQUIRE(a.cycles[c].doses.size() == b.cycles[c].doses.size());
    for (size_t t = 0; t < a.cycles[c].doses.size(); ++t) compare_dose(a.cycles[c].doses[t], b.cycles[c].doses[t]);
  }
  REQUIRE(a.cumulative.size() == b.cumulative.size());
  for (const auto& [patient, sums] : a.cumulative) {
    const auto& other = b.cumulative.at(patient);
    REQUIRE(sums.size() == other.size());
    for (size_t t = 0; t < sums.size(); ++t)
      for (auto [x, y] : {std::pair{sums[t].dose_Gy, other[t].dose_Gy}, {sums[t].bed_Gy, other[t].bed_Gy},
                          {sums[t].dose_u_Gy, other[t].dose_u_Gy}, {sums[t].eqd2_Gy, other[t].eqd2_Gy}})
        CHECK(same(x, y));
  }
  // and everything else the writers show (the JSON prints doubles to round-trip precision)
  CHECK(to_json(a, true).dump() == to_json(b, true).dump());
}
}  // namespace

// The serial results show that each special job took its path (so the comparison covers it).
void check_paths_taken(const std::vector<Job>& jobs, const std::vector<RunResult>& serial) {
  auto has = [&](const std::string& suffix) {
    for (size_t i = 0; i < jobs.size(); ++i)
      if (jobs[i].name.size() >= suffix.size() && jobs[i].name.compare(jobs[i].name.size() - suffix.size(), suffix.size(), suffix) == 0)
        return &serial[i];
    FAIL("no job " << suffix);
    return static_cast<const RunResult*>(nullptr);
  };
  const auto& mc = has(", Monte Carlo")->cycles.at(0).doses;
  CHECK(std::any_of(mc.begin(), mc.end(), [](const TargetDose& d) { return std::isfinite(d.dose_u_mc_Gy); }));
  const auto& model = has(", compartment model")->cycles.at(0).vois;
  CHECK(std::any_of(model.begin(), model.end(), [](const VoiResult& v) {
    return v.fit.function == "compartment:prrt_multiorgan_linear";
  }));
  const auto& prior = has(", reduced prior")->cycles.at(0).vois;
  CHECK(std::all_of(prior.begin(), prior.end(), [](const VoiResult& v) {
    return v.fit.method == "MAP fit with population priors";
  }));
  const auto& marrow = has(", image marrow")->cycles.at(0).doses;
  CHECK(std::any_of(marrow.begin(), marrow.end(), [](const TargetDose& d) { return d.target == "red_marrow"; }));
  const auto& subtract = has(" residual subtract")->cycles.at(1).vois;
  CHECK(std::any_of(subtract.begin(), subtract.end(), [](const VoiResult& v) { return !v.residual_subtracted_MBq.empty(); }));
  CHECK(std::isfinite(has(" residual integrate-to-next")->cycles.at(0).horizon_h));
}

TEST_CASE("threads: patients run concurrently on one shared ReferenceData equal a serial run, bit for bit") {
  const ReferenceData ref = ReferenceData::load(DATA);
  std::vector<Job> jobs;
  for (const char* path : {"/examples/snmmi-patient004/case.json", "/examples/synthetic-two-cycles/case.json",
                           "/examples/synthetic-four-cycles/case.json"})
    jobs.push_back(case_patient(path, ref));
  jobs.push_back(case_with_residual("/examples/synthetic-four-cycles/case.json", "subtract", ref));
  jobs.push_back(case_with_residual("/examples/synthetic-two-cycles/case.json", "integrate-to-next", ref));
  for (unsigned long long seed = 1; seed <= 6; ++seed) jobs.push_back(cohort_patient(seed, ref));
  for (auto& j : special_patients(ref)) jobs.push_back(std::move(j));
  std::vector<RunResult> serial;
  for (const auto& j : jobs) {
    CAPTURE(j.name);
    serial.push_back(run_job(j, ref));
  }
  check_paths_taken(jobs, serial);

  constexpr size_t THREADS = 6;  // the brief's 4-8; every thread runs every patient, in its own order
  std::vector<std::vector<RunResult>> parallel(THREADS, std::vector<RunResult>(jobs.size()));
  std::vector<std::string> errors(THREADS);
  std::vector<std::thread> pool;
  for (size_t k = 0; k < THREADS; ++k)
    pool.emplace_back([&, k] {
      try {
        for (size_t n = 0; n < jobs.size(); ++n) {
          const size_t i = (n + k) % jobs.size();  // threads start on different patients
          parallel[k][i] = run_job(jobs[i], ref);
        }
      } catch (const std::exception& e) {
        errors[k] = e.what();
      }
    });
  for (auto& t : pool) t.join();
  for (size_t k = 0; k < THREADS; ++k) {
    CAPTURE(k);
    REQUIRE(errors[k].empty());
    for (size_t i = 0; i < jobs.size(); ++i) {
      CAPTURE(jobs[i].name);
      compare(parallel[k][i], serial[i]);
    }
  }
}
