// The results store's files (lutdose/io/store.h): store_image read back, the batch writer
// (segments, virtual master, finish, resume after a kill, lock), merge, CSV export; the master and
// the finished file opened by h5dump and by h5py, independently of lutdose's reader.
#include <doctest/doctest.h>
#include <hdf5.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <tuple>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>

#include "../test_util.h"
#include "lutdose/error.h"
#include "lutdose/io/output_dir.h"
#include "lutdose/io/store.h"
#include "lutdose/kinetics/population.h"
#include "lutdose/report/cohort_report.h"

namespace fs = std::filesystem;
using namespace lutdose;

namespace {

using test::TempDir;

using test::read;

void write(const std::string& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary);
  out << bytes;
  REQUIRE(out.good());
}

std::set<std::string> names(const fs::path& dir) {
  std::set<std::string> n;
  for (const auto& e : fs::directory_iterator(dir)) n.insert(e.path().filename().string());
  return n;
}

//! Output and exit status of a shell command.
std::pair<std::string, int> run(const std::string& cmd) {
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  return {out, ::pclose(p)};
}

// Every member of every row as text, written here member by member (not through the store's own
// column lists, so that a column the store forgets is noticed). Doubles in hex: exact, NaN "nan".
std::string num(double x) {
  char t[64];
  std::snprintf(t, sizeof t, "%a", x);
  return t;
}
std::string describe(const PatientRow& r) {
  return r.patient + "|" + std::to_string(r.cycle) + "|" + r.status + "|" + r.source + "|" + r.input_sha256 + "|" +
         num(r.administered_MBq) + "|" + std::to_string(r.n_vois) + "|" + std::to_string(r.n_fits_flagged) + "|" +
         std::to_string(r.n_doses_u_unknown);
}
std::string describe(const VoiRow& r) {
  std::string s = r.patient + "|" + r.voi + "|" + r.function + "|" + r.method + "|" + std::to_string(r.cycle) + "|" +
                  std::to_string(r.fit_ok) + "|" + std::to_string(r.n_points);
  for (double x : {r.tia_MBq_h, r.tia_u_MBq_h, r.tia_u_dof, r.tia_ci95_low_MBq_h, r.tia_ci95_high_MBq_h, r.tia_h,
                   r.mass_g, r.dose_Gy, r.dose_u_Gy, r.dose_Gy_per_GBq, r.bed_Gy, r.eqd2_Gy})
    s += "|" + num(x);
  return s;
}
std::string describe(const CandidateRow& r) {
  std::string s = r.patient + "|" + r.voi + "|" + r.function + "|" + std::to_string(r.cycle) + "|" +
                  std::to_string(r.fitted) + std::to_string(r.accepted) + std::to_string(r.selected) + "|" +
                  std::to_string(r.n_parameters);
  for (double x : {r.aicc, r.akaike_weight, r.r_squared, r.tia_MBq_h, r.tia_u_MBq_h}) s += "|" + num(x);
  return s + "|" + r.parameters + "|" + r.flags;
}
std::string describe(const TargetRow& r) {
  std::string s = r.patient + "|" + r.target + "|" + r.kind + "|" + r.region + "|" + r.method + "|" +
                  std::to_string(r.cycle);
  for (double x : {r.mass_g, r.self_Gy, r.cross_Gy, r.dose_Gy, r.dose_u_Gy, r.dose_u_dof, r.dose_ci95_low_Gy,
                   r.dose_ci95_high_Gy, r.dose_Gy_per_GBq, r.bed_Gy, r.eqd2_Gy, r.dose_u_mc_Gy})
    s += "|" + num(x);
  return s + "|" + r.u_missing;
}
std::string describe(const BudgetRow& r) {
  return r.patient + "|" + r.target + "|" + r.input + "|" + std::to_string(r.cycle) + "|" + num(r.u_rel) + "|" +
         num(r.dof) + "|" + num(r.term_Gy);
}
std::string describe(const CumulativeRow& r) {
  std::string s = r.patient + "|" + r.target + "|" + std::to_string(r.cycles);
  for (double x : {r.dose_Gy, r.dose_u_Gy, r.bed_Gy, r.eqd2_Gy, r.dose_ci95_low_Gy, r.dose_ci95_high_Gy})
    s += "|" + num(x);
  return s + "|" + r.u_missing;
}
std::string describe(const FailureRow& r) {
  return r.patient + "|" + std::to_string(r.cycle) + "|" + r.source + "|" + r.error;
}
std::string describe(const NoteRow& r) {
  return r.patient + "|" + r.voi + "|" + r.stage + "|" + std::to_string(r.cycle) + "|" + r.note;
}
std::string describe(const PointRow& r) {
  return r.patient + "|" + std::to_string(r.cycle) + "|" + r.voi + "|" + num(r.time_h) + "|" + num(r.activity_MBq) +
         "|" + num(r.activity_u_MBq);
}
template <class Row>
void describe_all(const char* table, const std::vector<Row>& rows, std::vector<std::string>& out) {
  for (const auto& r : rows) out.push_back(std::string(table) + ": " + describe(r));
}
//! Every row of `rows`, table by table (the order of for_each_store_chunk).
std::vector<std::string> describe(const StoreRows& rows) {
  std::vector<std::string> out;
  describe_all("patients", rows.patients, out);
  describe_all("vois", rows.vois, out);
  describe_all("candidates", rows.candidates, out);
  describe_all("targets", rows.targets, out);
  describe_all("budget", rows.budget, out);
  describe_all("cumulative", rows.cumulative, out);
  describe_all("failures", rows.failures, out);
  describe_all("notes", rows.notes, out);
  describe_all("points", rows.points, out);
  return out;
}

//! The rows of a store, read by for_each_store_chunk, in the order of describe().
std::vector<std::string> stored(const std::string& path) {
  StoreRows all;
  for_each_store_chunk(path, [&](const StoreRows& chunk) { all.append(StoreRows(chunk)); });
  return describe(all);
}

const double kNaN = std::numeric_limits<double>::quiet_NaN();

//! Rows of one patient in every table, with NaNs, infinities, UTF-8 and awkward text.
StoreRows sample(const std::string& patient, int cycle = 1) {
  StoreRows s;
  s.patients.push_back({patient, cycle, "done", "cases/" + patient + ".json", std::string(64, 'f'), 7400.5, 2, 1, 0});
  VoiRow v{patient, "Leber-ø, rechts", "f3", "fit", cycle, 1, 5};
  v.tia_MBq_h = 0.1 + 0.2;  // 0.30000000000000004: needs 17 digits
  v.tia_u_dof = std::numeric_limits<double>::infinity();
  v.dose_Gy = 1e-300;
  s.vois.push_back(v);
  s.vois.push_back(VoiRow{patient, "Niere \"links\"", "trapezoid", "trapezoid", cycle, 0, 3});
  CandidateRow c;
  c.patient = patient;
  c.voi = "Leber-ø, rechts";
  c.function = "f3";
  c.cycle = cycle;
  c.fitted = c.accepted = c.selected = 1;
  c.n_parameters = 3;
  c.aicc = -12.25;
  c.parameters = "A1=1.5 u=0.1; lambda1=0.01 u=NaN";
  c.flags = "";
  s.candidates.push_back(c);
  TargetRow t;
  t.patient = patient;
  t.target = "Kidney_L";
  t.kind = "organ";
  t.region = "kidneys";
  t.method = "self: phantom self-S scaled to the mass (electron-photon); cross: phantom S (none)";  // > 64 bytes
  t.cycle = cycle;
  t.dose_Gy = 3.25;
  t.dose_u_Gy = kNaN;
  t.u_missing = "S-value; mass";
  s.targets.push_back(t);
  s.budget.push_back({patient, "Kidney_L", "tia_MBq_h", cycle, 0.05, 12.5, 0.1625});
  s.budget.push_back({patient, "Kidney_L", "mass_g", cycle, kNaN, kNaN, kNaN});
  CumulativeRow cum;
  cum.patient = patient;
  cum.target = "Kidney_L";
  cum.cycles = 2;
  cum.dose_Gy = 6.5;
  s.cumulative.push_back(cum);
  s.failures.push_back({patient, 0, "cases/x.json", "line 1,\nline 2 \"quoted\""});
  s.notes.push_back({patient, "", "dose", cycle, std::string(100000, 'n') + " Ende ✓"});
  s.points.push_back({patient, cycle, "Leber-ø, rechts", 4.0, 0.1 + 0.2, kNaN});
  s.points.push_back({patient, cycle, "Leber-ø, rechts", 24.5, 1e-300, 0.015625});
  return s;
}

StoreHeader header(const std::string& fingerprint = std::string(64, 'a'), const std::string& cohort = "c1") {
  StoreHeader h;
  h.lutdose_version = "0.7.0-test";
  h.kind = "batch";
  h.provenance_json = R"({"lutdose_version":"0.7.0-test"})";
  h.fingerprint = fingerprint;
  h.cohort = cohort;
  h.shard = "1/1";
  h.cohort_patients = 4;
  return h;
}

}  // namespace

TEST_CASE("store image: every table read back exactly (NaN stays NaN, UTF-8, long free text)") {
  TempDir tmp;
  StoreRows rows = sample("p001");
  rows.append(sample(std::string(STORE_NAME_BYTES, 'k')));  // a key of exactly the fixed width
  write(tmp / "s.h5", store_image(header(), rows, {{"case.json", "{\"a\": 1}"}}));
  CHECK(stored(tmp / "s.h5") == describe(rows));
  const StoreIndex index = read_store_index(tmp / "s.h5");
  CHECK(index.consolidated);
  CHECK(index.header.fingerprint == header().fingerprint);
  CHECK(index.header.cohort_patients == 4);
  CHECK(index.header.provenance_json == header().provenance_json);
  REQUIRE(index.patient_cycles.size() == 2);
  CHECK(index.patient_cycles[1].first == std::string(STORE_NAME_BYTES, 'k'));
  CHECK(index.status == std::vector<std::string>{"done", "done"});
}

// Rows as text, one line each by `members` (which writes a row's members to a stream with 17
// significant digits, NaN as "nan"): vectors of them compare where NaN != NaN.
template <class Row, class F>
std::vector<std::string> rows_text(const std::vector<Row>& rows, F members) {
  std::vector<std::string> out;
  for (const auto& r : rows) {
    std::ostringstream s;
    s.precision(17);
    members(s, r);
    out.push_back(s.str());
  }
  return out;
}

// The /population rows of a header, as text.
std::vector<std::string> population_text(const std::vector<PopulationRow>& rows) {
  return rows_text(rows, [](std::ostream& s, const PopulationRow& r) {
    s << r.voi_kind << "|" << r.function << "|" << r.parameter << "|" << r.theta << "|" << r.theta_se << "|"
      << r.omega_diag << "|" << r.shrinkage << "|" << r.sigma_log << "|" << r.n_tacs << "|" << r.n_observations
      << "|" << r.e_step << "|" << r.error_model << "|" << r.omega_structure << "|" << r.sigma0_MBq << "|"
      << r.b_proportional << "|" << r.log_omega_se << "|" << r.log_sigma_log_se << "|" << r.log_sigma0_se << "|"
      << r.log_b_proportional_se;
  });
}

// The /population_omega rows of a header, as text.
std::vector<std::string> omega_text(const std::vector<PopulationOmegaRow>& rows) {
  return rows_text(rows, [](std::ostream& s, const PopulationOmegaRow& r) {
    s << r.voi_kind << "|" << r.function << "|" << r.parameter_i << "|" << r.parameter_j << "|" << r.covariance << "|"
      << r.correlation << "|" << r.correlation_se;
  });
}

//! A header's population rows of format 5: a kidneys E1 model of the combined error model with a
//! full Omega (its three elements in /population_omega) and a tumour row of a proportional one.
StoreHeader header_with_population() {
  StoreHeader h = header();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  h.population = {{"kidneys", "E1", "log_A1_per_administered", -4.25, 0.03125, 0.0625, 0.1, nan, 60, 300, "laplace",
                   "combined", "full", 0.75, 0.05, 0.125, nan},
                  {"kidneys", "E1", "log_dlambda1_bio_per_h", -3.5, nan, 0.01, nan, nan, 60, 300, "laplace", "combined",
                   "full", 0.75, 0.05, nan, nan},
                  {std::string(STORE_NAME_BYTES, 't'), "E2u", "log_A1_per_administered", 1e-300, 0.5, 2.0, 0.0, 0.2, 2,
                   7, "sampled", "proportional", "diagonal", nan, nan, 0.25, 0.5}};
  h.population_omega = {{"kidneys", "E1", "log_A1_per_administered", "log_A1_per_administered", 0.0625, 1.0, 0.0},
                        {"kidneys", "E1", "log_dlambda1_bio_per_h", "log_A1_per_administered", -0.0125, -0.5, 0.125},
                        {"kidneys", "E1", "log_dlambda1_bio_per_h", "log_dlambda1_bio_per_h", 0.01, 1.0, 0.0},
                        {std::string(STORE_NAME_BYTES, 't'), "E2u", "log_A1_per_administered",
                         "log_A1_per_administered", 2.0, 1.0, nan}};
  return h;
}

TEST_CASE("store: /population and /population_omega are written once with the header - in an image, a master and "
          "the finished store") {
  TempDir tmp;
  const StoreHeader h = header_with_population();
  write(tmp / "s.h5", store_image(h, sample("p1")));
  CHECK(population_text(read_store_index(tmp / "s.h5").header.population) == population_text(h.population));
  CHECK(omega_text(read_store_index(tmp / "s.h5").header.population_omega) == omega_text(h.population_omega));
  CHECK(read_store_index(tmp / "s.h5").header.population.size() == 3);
  write(tmp / "e.h5", store_image(header(), StoreRows{}));
  CHECK(read_store_index(tmp / "e.h5").header.population.empty());  // the tables exist, without rows
  CHECK(read_store_index(tmp / "e.h5").header.population_omega.empty());
  const std::string path = tmp / "batch.h5";
  auto w = StoreWriter::create(path, h);
  w->commit(sample("p1"));
  w->commit(sample("p2"));
  CHECK(population_text(read_store_index(path).header.population) == population_text(h.population));  // master
  CHECK(omega_text(read_store_index(path).header.population_omega) == omega_text(h.population_omega));
  w->finish();
  CHECK(population_text(read_store_index(path).header.population) == population_text(h.population));
  CHECK(omega_text(read_store_index(path).header.population_omega) == omega_text(h.population_omega));
  export_store_csv(path, tmp / "csv");
  const std::string csv = read(tmp / "csv/population.csv");
  CHECK(csv.substr(0, csv.find('\n')) ==
        "voi_kind,function,parameter,theta,theta_se,omega_diag,shrinkage,sigma_log,n_tacs,n_observations,e_step,"
        "error_model,omega_structure,sigma0_MBq,b_proportional,log_omega_se,log_sigma_log_se,log_sigma0_se,log_b_proportional_se");
  CHECK(csv.find("\nkidneys,E1,log_dlambda1_bio_per_h,-3.5,,0.01,,,60,300,laplace,combined,full,0.75,0.05,,,,\n") !=
        std::string::npos);
  CHECK(read(tmp / "csv/population_omega.csv") ==
        "voi_kind,function,parameter_i,parameter_j,covariance,correlation,correlation_se\n"
        "kidneys,E1,log_A1_per_administered,log_A1_per_administered,0.0625,1,0\n"
        "kidneys,E1,log_dlambda1_bio_per_h,log_A1_per_administered,-0.0125,-0.5,0.125\n"
        "kidneys,E1,log_dlambda1_bio_per_h,log_dlambda1_bio_per_h,0.01,1,0\n" +
            std::string(STORE_NAME_BYTES, 't') + ",E2u,log_A1_per_administered,log_A1_per_administered,2,1,\n");
}

namespace {

//! A kidneys E1 population of the proportional error model with a diagonal Omega (made-up numbers:
//! the store copies them).
PopulationModel kidneys_model() {
  PopulationModel m;
  m.voi_kind = "kidneys";
  m.function = "E1";
  m.phi_names = {"log_A1_per_administered", "log_dlambda1_bio_per_h"};
  m.theta = Eigen::Vector2d(-4.0, -3.0);
  m.theta_se = Eigen::Vector2d(0.02, 0.03);
  m.omega = Eigen::Vector2d(0.04, 0.09).asDiagonal();
  m.shrinkage = Eigen::Vector2d(0.1, 0.2);
  m.sigma_log = 0.15;
  m.n_patients = 50;
  m.n_observations = 200;
  m.e_step = "sampled";
  return m;
}

}  // namespace

TEST_CASE("store_header_of: /population rows of the options' population, its SHA-256 in the fingerprint") {
  const PopulationModel m = kidneys_model();
  Provenance p;
  p.lutdose_version = "test";
  CHECK(store_header_of(p, "run").population.empty());
  p.options.population = std::make_shared<const std::vector<PopulationModel>>(std::vector<PopulationModel>{m});
  p.options.population_source.vois_sha256 = std::string(64, 'a');
  const StoreHeader h = store_header_of(p, "batch");
  CHECK(population_text(h.population) ==
        std::vector<std::string>{"kidneys|E1|log_A1_per_administered|-4|0.02|0.040000000000000001|0.10000000000000001|"
                                 "0.14999999999999999|50|200|sampled|proportional|diagonal|nan|nan|nan|nan|nan|nan",
                                 "kidneys|E1|log_dlambda1_bio_per_h|-3|0.029999999999999999|"
                                 "0.089999999999999997|0.20000000000000001|0.14999999999999999|50|200|sampled|"
                                 "proportional|diagonal|nan|nan|nan|nan|nan|nan"});
  // a diagonal Omega: its variances only (the covariances are not parameters of the model)
  CHECK(omega_text(h.population_omega) ==
        std::vector<std::string>{"kidneys|E1|log_A1_per_administered|log_A1_per_administered|0.040000000000000001|1|nan",
                                 "kidneys|E1|log_dlambda1_bio_per_h|log_dlambda1_bio_per_h|0.089999999999999997|1|nan"});
  p.options.population_source.vois_sha256 = std::string(64, 'b');  // another learned population
  CHECK(store_header_of(p, "batch").fingerprint != h.fingerprint);
}

TEST_CASE("store_header_of: an additive error model's sigma0_MBq and b, a full Omega's covariances, the standard "
          "errors (store formats 5 and 6)") {
  PopulationModel m = kidneys_model();
  m.omega_structure = "full";
  m.omega = (Eigen::Matrix2d() << 0.04, 0.012, 0.012, 0.09).finished();  // correlation 0.012 / (0.2 * 0.3) = 0.2
  m.error_model = PopulationErrorModel::combined;
  m.sigma_log = 0.05;  // b of the combined model (PopulationModel::sigma_log)
  m.sigma0_MBq = 1.5;
  m.log_omega_se = Eigen::Vector2d(0.25, 0.5);
  m.log_sigma_log_se = 0.125;  // the combined model's SE of ln b: log_b_proportional_se (format 6)
  m.log_sigma0_se = 0.375;
  m.omega_correlation_se = (Eigen::Matrix2d() << 0, 0.0625, 0.0625, 0).finished();  // format 7 (0.20)
  PopulationModel c = m;  // the constant model: b fixed at 0; an older file without log_omega_se
  c.voi_kind = "liver";
  c.error_model = PopulationErrorModel::constant;
  c.sigma_log = 0;
  c.log_omega_se.resize(0);
  c.omega_correlation_se.resize(0, 0);  // nor omega_correlation_se
  c.log_sigma_log_se = std::numeric_limits<double>::quiet_NaN();  // b fixed at 0: no SE
  PopulationModel in = m;  // input: neither sigma0 nor b (each point's u is given)
  in.voi_kind = "spleen";
  in.error_model = PopulationErrorModel::input;
  in.omega_structure = "diagonal";
  in.omega = Eigen::Vector2d(0.04, 0.09).asDiagonal();
  Provenance p;
  p.lutdose_version = "test";
  p.options.population = std::make_shared<const std::vector<PopulationModel>>(std::vector<PopulationModel>{m, c, in});
  p.options.population_source.vois_sha256 = std::string(64, 'a');
  const StoreHeader h = store_header_of(p, "batch");
  REQUIRE(h.population.size() == 6);
  for (const auto& r : h.population) {
    CAPTURE(r.voi_kind);
    CHECK(std::isnan(r.sigma_log));  // no residual SD of ln A in an additive model
    CHECK(std::isnan(r.log_sigma_log_se));  // ln sigma_log: not in an additive model
  }
  const auto& k = h.population[1];
  CHECK(k.error_model == "combined");
  CHECK(k.omega_structure == "full");
  CHECK(k.sigma0_MBq == 1.5);
  CHECK(k.b_proportional == 0.05);
  CHECK(k.log_omega_se == 0.5);
  CHECK(k.log_sigma0_se == 0.375);  // format 6 (0.19)
  CHECK(k.log_b_proportional_se == 0.125);
  CHECK(h.population[2].error_model == "constant");
  CHECK(h.population[2].log_sigma0_se == 0.375);
  CHECK(std::isnan(h.population[2].log_b_proportional_se));  // b fixed at 0
  CHECK(std::isnan(h.population[4].log_sigma0_se));  // input: nothing estimated
  CHECK(h.population[2].sigma0_MBq == 1.5);
  CHECK(h.population[2].b_proportional == 0);
  CHECK(std::isnan(h.population[2].log_omega_se));  // not known: never 0
  CHECK(h.population[4].error_model == "input");
  CHECK(std::isnan(h.population[4].sigma0_MBq));
  CHECK(std::isnan(h.population[4].b_proportional));
  const auto omega = omega_text(h.population_omega);
  REQUIRE(omega.size() == 3 + 3 + 2);  // full: the lower triangle of 2 x 2; diagonal: the variances
  CHECK(omega[0] == "kidneys|E1|log_A1_per_administered|log_A1_per_administered|0.040000000000000001|1|0");
  CHECK(h.population_omega[1].parameter_i == "log_dlambda1_bio_per_h");
  CHECK(h.population_omega[1].parameter_j == "log_A1_per_administered");
  CHECK(h.population_omega[1].covariance == 0.012);
  // 0.012 / (0.04 * 0.09)^(1/2) = 0.2 in exact arithmetic; a product, a root and a division: 1e-15
  CHECK(h.population_omega[1].correlation == doctest::Approx(0.2).epsilon(1e-15));
  CHECK(h.population_omega[1].correlation_se == 0.0625);  // format 7 (0.20)
  CHECK(std::isnan(h.population_omega[4].correlation_se));  // the constant model's: not known, never 0
  CHECK(omega[2] == "kidneys|E1|log_dlambda1_bio_per_h|log_dlambda1_bio_per_h|0.089999999999999997|1|0");
  CHECK(omega[7] == "spleen|E1|log_dlambda1_bio_per_h|log_dlambda1_bio_per_h|0.089999999999999997|1|nan");
}

TEST_CASE("store image: a key longer than the fixed width is a programming error") {
  StoreRows rows = sample(std::string(STORE_NAME_BYTES + 1, 'k'));
  CHECK_THROWS_AS(store_image(header(), rows), std::logic_error);
}

TEST_CASE("store image: empty tables exist, columns named and ordered as store.h's members") {
  TempDir tmp;
  write(tmp / "e.h5", store_image(header(), StoreRows{}));
  CHECK(stored(tmp / "e.h5").empty());
  // Read with the HDF5 C API, independently of lutdose's reader.
  const hid_t f = H5Fopen((tmp / "e.h5").c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  REQUIRE(f >= 0);
  const hid_t d = H5Dopen2(f, "budget", H5P_DEFAULT);
  REQUIRE(d >= 0);
  const hid_t type = H5Dget_type(d);
  std::vector<std::string> members;
  for (int i = 0; i < H5Tget_nmembers(type); ++i) {
    char* name = H5Tget_member_name(type, static_cast<unsigned>(i));
    members.push_back(name);
    H5free_memory(name);
  }
  CHECK(members == std::vector<std::string>{"patient", "target", "input", "cycle", "u_rel", "dof", "term_Gy"});
  const hid_t patient = H5Tget_member_type(type, 0);
  CHECK(H5Tget_size(patient) == STORE_NAME_BYTES);
  CHECK(H5Tget_cset(patient) == H5T_CSET_UTF8);
  H5Tclose(patient);
  H5Tclose(type);
  H5Dclose(d);
  H5Fclose(f);
}

TEST_CASE("read_store_index: a missing file, a file that is not HDF5, an HDF5 file of another format") {
  TempDir tmp;
  CHECK_THROWS_AS(read_store_index(tmp / "none.h5"), InputError);
  write(tmp / "text.h5", "not hdf5");
  CHECK_THROWS_WITH_AS(read_store_index(tmp / "text.h5"), doctest::Contains("not an HDF5 file"), InputError);
  const hid_t f = H5Fcreate((tmp / "v1.h5").c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  const hid_t scalar = H5Screate(H5S_SCALAR);
  const hid_t a = H5Acreate2(f, "format_version", H5T_STD_I32LE, scalar, H5P_DEFAULT, H5P_DEFAULT);
  const int one = 1;
  H5Awrite(a, H5T_NATIVE_INT, &one);
  H5Aclose(a);
  H5Sclose(scalar);
  H5Fclose(f);
  CHECK_THROWS_WITH_AS(read_store_index(tmp / "v1.h5"), doctest::Contains("format_version 1"), InputError);
}

TEST_CASE("store writer: three commits, a master readable by lutdose, h5dump and h5py, finish") {
  TempDir tmp;
  const std::string path = tmp / "batch.h5";
  auto w = StoreWriter::create(path, header());
  CHECK(!fs::exists(path));  // nothing committed yet
  CHECK(fs::exists(path + ".parts/lutdose-store-parts"));
  StoreRows all;
  for (const char* p : {"p1", "p2", "p3"}) {
    w->commit(sample(p));
    all.append(sample(p));
  }
  CHECK(names(path + ".parts") ==
        std::set<std::string>{"lutdose-store-parts", "seg-000001.h5", "seg-000002.h5", "seg-000003.h5"});
  const StoreIndex index = read_store_index(path);
  CHECK(!index.consolidated);
  CHECK(index.patient_cycles.size() == 3);
  CHECK(w->index().patient_cycles == index.patient_cycles);
  CHECK(stored(path) == describe(all));
  // h5dump resolves the virtual datasets next to the master, from another working directory.
  // Named results, not structured bindings: doctest's macros use lambdas, which may not capture
  // a structured binding before C++20 (clang refuses it).
  const auto dumped = run("cd / && h5dump -d /vois '" + path + "'");
  const std::string& dump = dumped.first;
  CHECK(dumped.second == 0);
  INFO(dump.substr(0, 3000));
  // h5dump prints the NUL padding of the fixed-length keys as \000.
  CHECK(dump.find("DATASPACE  SIMPLE { ( 6 ) / ( 6 ) }") != std::string::npos);
  CHECK(dump.find("\"p3\\000") != std::string::npos);
  const std::string script =
      "import h5py, sys, pandas as pd\n"
      "f = h5py.File(sys.argv[1], 'r')\n"
      "v = pd.DataFrame(f['vois'][:])\n"
      "print(int(f.attrs['format_version']), len(v), v['patient'].str.decode('utf-8').tolist(), "
      "repr(float(v['tia_MBq_h'][0])), f['vois'].dtype.names[:4])\n";
  write(tmp / "read.py", script);
  const auto read = run("cd / && /usr/bin/python3 '" + (tmp / "read.py") + "' '" + path + "'");
  const std::string& py = read.first;
  CHECK(read.second == 0);
  CHECK(py == std::to_string(STORE_FORMAT_VERSION) + " 6 ['p1', 'p1', 'p2', 'p2', 'p3', 'p3'] 0.30000000000000004 ('patient', 'voi', 'function', 'method')\n");
  w->finish();
  CHECK(!fs::exists(path + ".parts"));
  CHECK(read_store_index(path).consolidated);
  CHECK(stored(path) == describe(all));
  CHECK(names(tmp.path) == std::set<std::string>{"batch.h5", "read.py"});
  const auto read2 = run("/usr/bin/python3 '" + (tmp / "read.py") + "' '" + path + "'");
  CHECK(read2.first == py);
  w->finish();  // a no-op once finished
}

TEST_CASE("store writer: resume after a kill removes the uncommitted segment and temporary file") {
  TempDir tmp;
  const std::string path = tmp / "b.h5", parts = path + ".parts";
  {
    auto w = StoreWriter::create(path, header());
    w->commit(sample("p1"));
    w->commit(sample("p2"));
  }  // killed: the lock goes with the process
  // A third segment written but never published in the master, and a killed write's temporary.
  fs::copy_file(parts + "/seg-000001.h5", parts + "/seg-000003.h5");
  write(parts + "/.lutdose-tmp-ABCDEFGHIJKL", "partial");
  auto w = StoreWriter::resume(path, header());
  CHECK(!w->index().consolidated);
  CHECK(w->index().patient_cycles ==
        std::vector<std::pair<std::string, std::int32_t>>{{"p1", 1}, {"p2", 1}});
  CHECK(names(parts) == std::set<std::string>{"lutdose-store-parts", "seg-000001.h5", "seg-000002.h5"});
  w->commit(sample("p3"));
  CHECK(fs::exists(parts + "/seg-000003.h5"));
  w->finish();
  StoreRows all = sample("p1");
  all.append(sample("p2"));
  all.append(sample("p3"));
  CHECK(stored(path) == describe(all));
  // Resuming the finished store: nothing to do.
  auto again = StoreWriter::resume(path, header());
  CHECK(again->index().consolidated);
  CHECK(again->index().patient_cycles.size() == 3);
  again->finish();
  CHECK(stored(path) == describe(all));
}

TEST_CASE("store writer: resume before the first commit - another batch's header is refused") {
  TempDir tmp;
  const std::string path = tmp / "b.h5";
  StoreWriter::create(path, header());  // killed before its first commit
  CHECK_THROWS_WITH_AS(StoreWriter::resume(path, header(std::string(64, 'b'))), doctest::Contains("fingerprint"),
                       InputError);
  CHECK_THROWS_WITH_AS(StoreWriter::resume(path, header(std::string(64, 'a'), "c2")), doctest::Contains("cohort"),
                       InputError);
  auto w = StoreWriter::resume(path, header());
  CHECK(w->index().patient_cycles.empty());
  w->commit(sample("p1"));
  w->finish();
  CHECK(stored(path) == describe(sample("p1")));
  CHECK_THROWS_AS(StoreWriter::resume(tmp / "none.h5", header()), InputError);
}

TEST_CASE("store writer: finish without commits gives an empty store") {
  TempDir tmp;
  auto w = StoreWriter::create(tmp / "e.h5", header());
  w->finish();
  CHECK(read_store_index(tmp / "e.h5").consolidated);
  CHECK(stored(tmp / "e.h5").empty());
  CHECK(names(tmp.path) == std::set<std::string>{"e.h5"});
}

TEST_CASE("store writer: a second writer is refused - an existing path is left as it is") {
  TempDir tmp;
  const std::string path = tmp / "b.h5";
  auto w = StoreWriter::create(path, header());
  w->commit(sample("p1"));
  CHECK_THROWS_AS(StoreWriter::create(path, header()), InputError);
  CHECK_THROWS_WITH_AS(StoreWriter::resume(path, header()), doctest::Contains("locked"), InputError);
  write(tmp / "mine.h5", "a user's file");
  CHECK_THROWS_WITH_AS(StoreWriter::create(tmp / "mine.h5", header()), doctest::Contains("exists"), InputError);
  CHECK(read(tmp / "mine.h5") == "a user's file");
  CHECK(!fs::exists(tmp / "mine.h5.parts"));
  // A master is replaced only by the master of the same batch: a user's file put at PATH stays.
  fs::remove(path);
  write(path, "a user's file");
  CHECK_THROWS_AS(w->commit(sample("p2")), InputError);
  CHECK(read(path) == "a user's file");
}

TEST_CASE("merge: shards into one store - different fingerprints, duplicates, unfinished shards refused") {
  TempDir tmp;
  const auto finished = [&](const std::string& name, const StoreHeader& h, const std::vector<std::string>& patients) {
    auto w = StoreWriter::create(tmp / name, h);
    for (const auto& p : patients) w->commit(sample(p));
    w->finish();
    return tmp / name;
  };
  const auto shard = [](const std::string& s, const std::string& fingerprint = std::string(64, 'a'),
                        const std::string& cohort = "c1") {
    StoreHeader h = header(fingerprint, cohort);
    h.shard = s;
    return h;
  };
  const std::string a = finished("a.h5", shard("1/2"), {"p1", "p2"});
  const std::string b = finished("b.h5", shard("2/2"), {"p3"});
  merge_stores(tmp / "m.h5", {a, b});
  StoreRows all = sample("p1");
  all.append(sample("p2"));
  all.append(sample("p3"));
  CHECK(stored(tmp / "m.h5") == describe(all));
  const StoreIndex m = read_store_index(tmp / "m.h5");
  CHECK(m.consolidated);
  CHECK(m.header.cohort_patients == 8);
  CHECK(m.header.shard == "1/1");
  CHECK(m.header.cohort == "c1");
  CHECK_THROWS_WITH_AS(merge_stores(tmp / "m.h5", {a, b}), doctest::Contains("exists"), InputError);
  const std::string other = finished("o.h5", shard("2/2", std::string(64, 'b')), {"p9"});
  CHECK_THROWS_WITH_AS(merge_stores(tmp / "m2.h5", {a, other}), doctest::Contains("fingerprint"), InputError);
  const std::string dup = finished("d.h5", shard("2/2"), {"p2"});
  CHECK_THROWS_WITH_AS(merge_stores(tmp / "m3.h5", {a, dup}), doctest::Contains("'p2' cycle 1"), InputError);
  auto open = StoreWriter::create(tmp / "u.h5", shard("2/2"));
  open->commit(sample("p7"));
  CHECK_THROWS_WITH_AS(merge_stores(tmp / "m4.h5", {a, tmp / "u.h5"}), doctest::Contains("unfinished"), InputError);
  // The review's finding: a shard missing, the shards out of order, or a shard of another cohort
  // gave a store labelled complete. Shards 1..N of one cohort, each once, in order, are required.
  CHECK_THROWS_WITH_AS(merge_stores(tmp / "m5.h5", {a}), doctest::Contains("shard 2/2 is missing"), InputError);
  CHECK_THROWS_WITH_AS(merge_stores(tmp / "m6.h5", {b, a}), doctest::Contains("expected shard 1/2"), InputError);
  const std::string foreign = finished("f.h5", shard("2/2", std::string(64, 'a'), "c2"), {"p4"});
  CHECK_THROWS_WITH_AS(merge_stores(tmp / "m7.h5", {a, foreign}), doctest::Contains("another cohort"), InputError);
  const std::string third = finished("t.h5", shard("2/3"), {"p5"});
  CHECK_THROWS_WITH_AS(merge_stores(tmp / "m8.h5", {a, third}), doctest::Contains("expected shard 2/2"), InputError);
  for (const char* n : {"m2.h5", "m3.h5", "m4.h5", "m5.h5", "m6.h5", "m7.h5", "m8.h5"}) CHECK(!fs::exists(tmp / n));
}

namespace {

//! Rewrites the root attribute format_version of the store at `path`; with `drop_population` also
//! deletes /population, /population_omega and /points. Version 2 without them is the format-2 store of lutdose 0.10
//! (docs/store.md: the same layout without /population).
void set_format_version(const std::string& path, int version, bool drop_population) {
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  REQUIRE(f >= 0);
  const hid_t a = H5Aopen(f, "format_version", H5P_DEFAULT);
  CHECK(H5Awrite(a, H5T_NATIVE_INT, &version) >= 0);
  H5Aclose(a);
  if (drop_population) {
    CHECK(H5Ldelete(f, "population", H5P_DEFAULT) >= 0);
    CHECK(H5Ldelete(f, "population_omega", H5P_DEFAULT) >= 0);
    CHECK(H5Ldelete(f, "points", H5P_DEFAULT) >= 0);
  }
  H5Fclose(f);
}

}  // namespace

TEST_CASE("format 2 stores (lutdose 0.10): export and the cohort report read them, resume and merge refuse them") {
  TempDir tmp;
  write(tmp / "v3.h5", store_image(header(), sample("p1")));
  write(tmp / "v2.h5", store_image(header(), sample("p1")));
  set_format_version(tmp / "v2.h5", 2, true);
  // the readers of today's format only (batch --resume, merge): refused, naming the version
  CHECK_THROWS_WITH_AS(read_store_index(tmp / "v2.h5"), doctest::Contains("has format_version 2"), InputError);
  CHECK_THROWS_WITH_AS(StoreWriter::resume(tmp / "v2.h5", header()), doctest::Contains("format_version 2"), InputError);
  CHECK_THROWS_WITH_AS(merge_stores(tmp / "m.h5", {tmp / "v2.h5", tmp / "v3.h5"}),
                       doctest::Contains("format_version 2"), InputError);
  CHECK(!fs::exists(tmp / "m.h5"));
  // export: the same CSV files as of the format-3 store, population.csv a header only
  const auto index = read_store_index(tmp / "v2.h5", StoreVersions::readable);
  CHECK(index.header.population.empty());
  CHECK(index.patient_cycles == read_store_index(tmp / "v3.h5").patient_cycles);
  export_store_csv(tmp / "v2.h5", tmp / "csv2");
  export_store_csv(tmp / "v3.h5", tmp / "csv3");
  for (const std::string t : {"patients", "vois", "candidates", "targets", "budget", "cumulative", "failures", "notes"})
    CHECK(read(tmp / ("csv2/" + t + ".csv")) == read(tmp / ("csv3/" + t + ".csv")));
  CHECK(read(tmp / "csv2/population.csv") ==
        "voi_kind,function,parameter,theta,theta_se,omega_diag,shrinkage,sigma_log,n_tacs,n_observations,e_step,"
        "error_model,omega_structure,sigma0_MBq,b_proportional,log_omega_se,log_sigma_log_se,log_sigma0_se,log_b_proportional_se\n");
  CHECK(read(tmp / "csv2/population_omega.csv") ==
        "voi_kind,function,parameter_i,parameter_j,covariance,correlation,correlation_se\n");
  CHECK(read(tmp / "csv2/points.csv") == "patient,cycle,voi,time_h,activity_MBq,activity_u_MBq\n");  // format 6
  // lutdose report STORE.h5: the cohort page
  CHECK(report::is_cohort_store(tmp / "v2.h5"));
  CHECK(!report::cohort_report_html(tmp / "v2.h5", "test").empty());
  // older than 2 (1: the JSON mirror) or newer than today's: refused by the readers of export too
  for (const int version : {1, STORE_FORMAT_VERSION + 1}) {
    write(tmp / "other.h5", store_image(header(), sample("p1")));
    set_format_version(tmp / "other.h5", version, false);
    CHECK_THROWS_WITH_AS(export_store_csv(tmp / "other.h5", tmp / "csv_other"),
                         doctest::Contains(("has format_version " + std::to_string(version)).c_str()), InputError);
    CHECK(!fs::exists(tmp / "csv_other"));
  }
}

namespace {

//! The name of member `i` of the compound `type`.
std::string member_name(hid_t type, int i) {
  char* name = H5Tget_member_name(type, static_cast<unsigned>(i));
  REQUIRE(name != nullptr);
  std::string s = name;
  H5free_memory(name);
  return s;
}

//! Rewrites the store at `path` as an older lutdose wrote it: format 4 (lutdose 0.14 to 0.17)
//! has /population up to its column e_step, format 3 (lutdose 0.11 to 0.13) without e_step too (a
//! compound of the kept members, packed, their values copied by HDF5's conversion by member name);
//! neither has /population_omega (format 5) nor /points (format 6). Sets format_version.
//! Rewrites the dataset `name` of the file `f` with the first `kept` members of its compound only
//! (packed, their values copied by HDF5's conversion by member name): a table of an older format.
void keep_first_members(hid_t f, const char* name, int kept) {
  const hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
  const hid_t full = H5Dget_type(d);
  std::size_t size = 0;
  for (int i = 0; i < kept; ++i) {
    const hid_t m = H5Tget_member_type(full, static_cast<unsigned>(i));
    size += H5Tget_size(m);
    H5Tclose(m);
  }
  const hid_t old = H5Tcreate(H5T_COMPOUND, size);
  for (std::size_t i = 0, at = 0; i < static_cast<std::size_t>(kept); ++i) {
    const hid_t m = H5Tget_member_type(full, static_cast<unsigned>(i));
    CHECK(H5Tinsert(old, member_name(full, static_cast<int>(i)).c_str(), at, m) >= 0);
    at += H5Tget_size(m);
    H5Tclose(m);
  }
  const hid_t space = H5Dget_space(d);
  const auto rows = static_cast<hsize_t>(H5Sget_simple_extent_npoints(space));
  REQUIRE(rows > 0);
  std::vector<unsigned char> buf(size * rows);
  CHECK(H5Dread(d, old, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()) >= 0);
  H5Sclose(space);
  H5Tclose(full);
  H5Dclose(d);
  CHECK(H5Ldelete(f, name, H5P_DEFAULT) >= 0);
  const hid_t s_old = H5Screate_simple(1, &rows, nullptr);
  const hid_t d_old = H5Dcreate2(f, name, old, s_old, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  REQUIRE(d_old >= 0);
  CHECK(H5Dwrite(d_old, old, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()) >= 0);
  H5Dclose(d_old);
  H5Sclose(s_old);
  H5Tclose(old);
}

void to_older_format(const std::string& path, int version) {
  REQUIRE((version == 3 || version == 4));
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  REQUIRE(f >= 0);
  {
    const hid_t d = H5Dopen2(f, "population", H5P_DEFAULT);
    const hid_t full = H5Dget_type(d);
    int kept = 0;  // the members up to e_step (format 4) or before it (format 3)
    while (kept < H5Tget_nmembers(full) && member_name(full, kept) != "e_step") ++kept;
    REQUIRE(kept == 10);
    H5Tclose(full);
    H5Dclose(d);
    keep_first_members(f, "population", version == 4 ? kept + 1 : kept);
  }
  CHECK(H5Ldelete(f, "population_omega", H5P_DEFAULT) >= 0);
  CHECK(H5Ldelete(f, "points", H5P_DEFAULT) >= 0);  // format 6
  H5Fclose(f);
  set_format_version(path, version, false);
}

//! Rewrites the store at `path` as lutdose 0.19 wrote it (format 6): /population_omega without its
//! column correlation_se (format 7).
void to_format6(const std::string& path) {
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  REQUIRE(f >= 0);
  keep_first_members(f, "population_omega", 6);
  H5Fclose(f);
  set_format_version(path, 6, false);
}

}  // namespace

namespace {

//! The lines of `csv` after its header, each with its last `n` fields emptied (no field of the
//! /population rows of these tests holds a comma).
std::vector<std::string> rows_with_last_fields_empty(const std::string& csv, std::size_t n) {
  std::vector<std::string> out;
  std::istringstream in(csv);
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    std::size_t end = line.size();
    for (std::size_t i = 0; i < n; ++i) end = line.rfind(',', end - 1);
    out.push_back(line.substr(0, end) + std::string(n, ','));
  }
  return out;
}

std::vector<std::string> rows_of(const std::string& csv) { return rows_with_last_fields_empty(csv, 0); }

}  // namespace

TEST_CASE("format 3 and 4 stores (lutdose 0.11 to 0.17): /population without the later columns reads them as "
          "unknown (empty, NaN), no /population_omega; export writes those cells empty, resume and merge refuse them") {
  TempDir tmp;
  const StoreHeader h = header_with_population();
  for (const char* name : {"v5.h5", "v4.h5", "v3.h5"}) write(tmp / name, store_image(h, sample("p1")));
  to_older_format(tmp / "v4.h5", 4);
  to_older_format(tmp / "v3.h5", 3);
  auto expected4 = h.population;
  for (auto& row : expected4) {  // unknown: never a made-up value
    const PopulationRow blank;
    row.error_model = row.omega_structure = "";
    row.sigma0_MBq = row.b_proportional = row.log_omega_se = row.log_sigma_log_se = blank.sigma0_MBq;
  }
  auto expected3 = expected4;
  for (auto& row : expected3) row.e_step.clear();
  // not a structured binding: clang 14 (the sanitizer build) cannot capture one in CAPTURE's lambda
  for (const auto& version : {std::pair{"v4.h5", &expected4}, std::pair{"v3.h5", &expected3}}) {
    const char* name = version.first;
    const auto* expected = version.second;
    CAPTURE(name);
    const auto index = read_store_index(tmp / name, StoreVersions::readable);
    CHECK(population_text(index.header.population) == population_text(*expected));
    CHECK(index.header.population_omega.empty());
  }
  CHECK(population_text(read_store_index(tmp / "v5.h5").header.population) == population_text(h.population));
  for (const char* v : {"3", "4", "5"}) export_store_csv(tmp / ("v" + std::string(v) + ".h5"), tmp / (std::string("csv") + v));
  const std::string csv5 = read(tmp / "csv5/population.csv");
  CHECK(read(tmp / "csv4/population.csv").substr(0, csv5.find('\n')) == csv5.substr(0, csv5.find('\n')));
  CHECK(rows_of(read(tmp / "csv4/population.csv")) == rows_with_last_fields_empty(csv5, 8));
  CHECK(rows_of(read(tmp / "csv3/population.csv")) == rows_with_last_fields_empty(csv5, 9));
  CHECK(rows_of(read(tmp / "csv3/population.csv"))[0] == "kidneys,E1,log_A1_per_administered,-4.25,0.03125,0.0625,0.1,,60,300,,,,,,,,,");
  for (const char* v : {"csv3", "csv4"}) {
    CHECK(read(tmp / (std::string(v) + "/population_omega.csv")) ==
          "voi_kind,function,parameter_i,parameter_j,covariance,correlation,correlation_se\n");
    CHECK(read(tmp / (std::string(v) + "/points.csv")) == "patient,cycle,voi,time_h,activity_MBq,activity_u_MBq\n");
  }
  for (const std::string t : {"patients", "vois", "candidates", "targets", "budget", "cumulative", "failures", "notes"}) {
    CHECK(read(tmp / ("csv3/" + t + ".csv")) == read(tmp / ("csv5/" + t + ".csv")));
    CHECK(read(tmp / ("csv4/" + t + ".csv")) == read(tmp / ("csv5/" + t + ".csv")));
  }
  for (const char* v : {"3", "4"}) {
    const std::string old = tmp / ("v" + std::string(v) + ".h5");
    const std::string found = "results store '" + old + "' has format_version " + v + "; this lutdose reads format_version " +
                              std::to_string(STORE_FORMAT_VERSION);
    CHECK_THROWS_WITH_AS(read_store_index(old), doctest::Contains(found.c_str()), InputError);
    CHECK_THROWS_WITH_AS(StoreWriter::resume(old, h), doctest::Contains(found.c_str()), InputError);
    CHECK_THROWS_WITH_AS(merge_stores(tmp / "m.h5", {old, tmp / "v5.h5"}), doctest::Contains(found.c_str()), InputError);
    CHECK(!fs::exists(tmp / "m.h5"));
  }
}

TEST_CASE("format 6 stores (lutdose 0.19): /population_omega without correlation_se reads it as unknown (NaN), "
          "export writes it empty, resume and merge refuse them") {
  TempDir tmp;
  const StoreHeader h = header_with_population();
  for (const char* name : {"v7.h5", "v6.h5"}) write(tmp / name, store_image(h, sample("p1")));
  to_format6(tmp / "v6.h5");
  auto expected = h.population_omega;
  for (auto& row : expected) row.correlation_se = std::numeric_limits<double>::quiet_NaN();  // unknown, never 0
  const auto index = read_store_index(tmp / "v6.h5", StoreVersions::readable);
  CHECK(omega_text(index.header.population_omega) == omega_text(expected));
  CHECK(population_text(index.header.population) == population_text(h.population));
  export_store_csv(tmp / "v6.h5", tmp / "csv6");
  export_store_csv(tmp / "v7.h5", tmp / "csv7");
  const std::string csv7 = read(tmp / "csv7/population_omega.csv");
  CHECK(read(tmp / "csv6/population_omega.csv").substr(0, csv7.find('\n')) == csv7.substr(0, csv7.find('\n')));
  CHECK(rows_of(read(tmp / "csv6/population_omega.csv")) == rows_with_last_fields_empty(csv7, 1));
  const std::string old = tmp / "v6.h5";
  const std::string found =
      "results store '" + old + "' has format_version 6; this lutdose reads format_version " + std::to_string(STORE_FORMAT_VERSION);
  CHECK_THROWS_WITH_AS(read_store_index(old), doctest::Contains(found.c_str()), InputError);
  CHECK_THROWS_WITH_AS(StoreWriter::resume(old, h), doctest::Contains(found.c_str()), InputError);
  CHECK_THROWS_WITH_AS(merge_stores(tmp / "m.h5", {old, tmp / "v7.h5"}), doctest::Contains(found.c_str()), InputError);
  CHECK(!fs::exists(tmp / "m.h5"));
}

TEST_CASE("export: one CSV per table, exact numbers, NaN empty, text quoted") {
  TempDir tmp;
  write(tmp / "s.h5", store_image(header(), sample("p1")));
  export_store_csv(tmp / "s.h5", tmp / "csv");
  CHECK(names(tmp.path / "csv") ==
        std::set<std::string>{"manifest.json", "patients.csv", "vois.csv", "candidates.csv", "targets.csv",
                              "budget.csv", "cumulative.csv", "failures.csv", "notes.csv", "points.csv",
                              "population.csv", "population_omega.csv"});
  CHECK(read(tmp / "csv/points.csv") ==
        "patient,cycle,voi,time_h,activity_MBq,activity_u_MBq\np1,1,\"Leber-ø, rechts\",4,0.30000000000000004,\n"
        "p1,1,\"Leber-ø, rechts\",24.5,1e-300,0.015625\n");
  const std::string vois = read(tmp / "csv/vois.csv");
  CHECK(vois.substr(0, vois.find('\n')) ==
        "patient,voi,function,method,cycle,fit_ok,n_points,tia_MBq_h,tia_u_MBq_h,tia_u_dof,tia_ci95_low_MBq_h,"
        "tia_ci95_high_MBq_h,tia_h,mass_g,dose_Gy,dose_u_Gy,dose_Gy_per_GBq,bed_Gy,eqd2_Gy");
  CHECK(vois.find("\np1,\"Leber-ø, rechts\",f3,fit,1,1,5,0.30000000000000004,,inf,,,,,1e-300,,,,\n") !=
        std::string::npos);
  CHECK(vois.find("\np1,\"Niere \"\"links\"\"\",trapezoid,trapezoid,1,0,3,,,,,,,,,,,,\n") != std::string::npos);
  CHECK(read(tmp / "csv/budget.csv") ==
        "patient,target,input,cycle,u_rel,dof,term_Gy\np1,Kidney_L,tia_MBq_h,1,0.05,12.5,0.1625\n"
        "p1,Kidney_L,mass_g,1,,,\n");
  CHECK(read(tmp / "csv/failures.csv") ==
        "patient,cycle,source,error\np1,0,cases/x.json,\"line 1,\nline 2 \"\"quoted\"\"\"\n");
  CHECK_THROWS_AS(export_store_csv(tmp / "none.h5", tmp / "csv2"), InputError);
  CHECK(!fs::exists(tmp / "csv2"));
}

TEST_CASE("export: streamed in slices of any size - each file equals the one-shot CSV of all its rows") {
  TempDir tmp;
  // Three patients (one failed, with a multi-line error) and population rows in the header; the
  // big store also 9000 budget rows (more than one default slice of 8192). A slice costs an HDF5
  // read (some ms): slices of 1 and 7 rows on the small store, 1000 and the default on the big one.
  StoreRows rows = sample("p1");
  rows.append(failure_rows("p2", 0, "cases/p2.json", "line 1,\nline 2 \"quoted\""));
  rows.append(sample("p3", 2));
  StoreRows big = rows;
  const BudgetRow term = big.budget[0];
  big.budget.assign(9000, term);
  for (size_t i = 0; i < big.budget.size(); ++i) big.budget[i].cycle = static_cast<std::int32_t>(i);
  StoreHeader h = header();
  h.population.push_back(
      {"kidney", "f2", "log_lambda", -3.5, 0.1, 0.04, 0.2, 0.1, 40, 160, "sampled", "proportional", "diagonal",
       std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::quiet_NaN(), 0.5, 0.25});
  h.population_omega.push_back({"kidney", "f2", "log_lambda", "log_lambda", 0.04, 1.0, 0.0});
  write(tmp / "small.h5", store_image(h, rows));
  write(tmp / "big.h5", store_image(h, big));
  const std::pair<const StoreRows*, std::size_t> runs[] = {
      {&rows, 1}, {&rows, 7}, {&big, 1000}, {&big, STORE_EXPORT_SLICE_ROWS}};
  for (const auto& run : runs) {
    // plain variables, not structured bindings: clang refuses a lambda (CAPTURE) capturing those
    const StoreRows* stored = run.first;
    const std::size_t slice_rows = run.second;
    CAPTURE(slice_rows);
    const fs::path out = tmp.path / ("csv" + std::to_string(slice_rows));
    export_store_csv(tmp / (stored == &rows ? "small.h5" : "big.h5"), out.string(), slice_rows);
    for (const std::string table : {"patients", "vois", "candidates", "targets", "budget", "cumulative", "failures",
                                    "notes", "points"})
      CHECK(read(out / (table + ".csv")) == store_table_csv(*stored, table, true));  // the one-shot text
    CHECK(read(out / "population.csv") ==
          "voi_kind,function,parameter,theta,theta_se,omega_diag,shrinkage,sigma_log,n_tacs,n_observations,e_step,"
          "error_model,omega_structure,sigma0_MBq,b_proportional,log_omega_se,log_sigma_log_se,log_sigma0_se,log_b_proportional_se\n"
          "kidney,f2,log_lambda,-3.5,0.1,0.04,0.2,0.1,40,160,sampled,proportional,diagonal,,,0.5,0.25,,\n");
    CHECK(read(out / "population_omega.csv") ==
          "voi_kind,function,parameter_i,parameter_j,covariance,correlation,correlation_se\n"
          "kidney,f2,log_lambda,log_lambda,0.04,1,0\n");
    const auto manifest = nlohmann::json::parse(read(out / "manifest.json"));
    REQUIRE(manifest["files"].size() == 11);
    for (const auto& f : manifest["files"]) {
      const std::string bytes = read(out / f["name"].get<std::string>());
      CHECK(f["size_bytes"] == bytes.size());
      CHECK(f["sha256"] == sha256_hex(bytes));
    }
  }
  CHECK_THROWS_AS(export_store_csv(tmp / "small.h5", tmp / "csv0", 0), std::invalid_argument);
  CHECK(!fs::exists(tmp / "csv0"));
}

TEST_CASE("store_table_csv: the text of export's TABLE.csv, with or without its header, unknown table refused") {
  TempDir tmp;
  const StoreRows rows = sample("p1");
  write(tmp / "s.h5", store_image(header(), rows));
  export_store_csv(tmp / "s.h5", tmp / "csv");
  for (const std::string table : {"vois", "budget", "failures"}) {
    const std::string exported = read(tmp / ("csv/" + table + ".csv"));
    CHECK(store_table_csv(rows, table, true) == exported);
    CHECK(store_table_csv(rows, table, false) == exported.substr(exported.find('\n') + 1));
  }
  CHECK_THROWS_AS(store_table_csv(rows, "doses", true), std::invalid_argument);
}

TEST_CASE("for_each_store_chunk: table by table, in slices of at most 65536 rows, in stored order") {
  TempDir tmp;
  StoreRows rows = sample("p1");
  const BudgetRow term = rows.budget[0];
  rows.budget.assign(70000, term);
  for (size_t i = 0; i < rows.budget.size(); ++i) rows.budget[i].cycle = static_cast<std::int32_t>(i);
  write(tmp / "big.h5", store_image(header(), rows));
  std::vector<std::string> calls;
  std::int32_t next_cycle = 0;
  bool in_order = true;
  for_each_store_chunk(tmp / "big.h5", [&](const StoreRows& chunk) {
    const size_t tables = !chunk.patients.empty() + !chunk.vois.empty() + !chunk.candidates.empty() +
                          !chunk.targets.empty() + !chunk.budget.empty() + !chunk.cumulative.empty() +
                          !chunk.failures.empty() + !chunk.notes.empty() + !chunk.points.empty();
    CHECK(tables == 1);
    if (!chunk.patients.empty()) calls.push_back("patients " + std::to_string(chunk.patients.size()));
    if (!chunk.vois.empty()) calls.push_back("vois " + std::to_string(chunk.vois.size()));
    if (!chunk.budget.empty()) calls.push_back("budget " + std::to_string(chunk.budget.size()));
    if (!chunk.notes.empty()) calls.push_back("notes " + std::to_string(chunk.notes.size()));
    if (!chunk.points.empty()) calls.push_back("points " + std::to_string(chunk.points.size()));
    for (const auto& b : chunk.budget) in_order = in_order && b.cycle == next_cycle++;
  });
  CHECK(calls ==
        std::vector<std::string>{"patients 1", "vois 2", "budget 65536", "budget 4464", "notes 1", "points 2"});
  CHECK(in_order);
  CHECK(next_cycle == 70000);
}

TEST_CASE("read_store_index: a master whose segment file is missing is refused") {
  TempDir tmp;
  const std::string path = tmp / "b.h5";
  {
    auto w = StoreWriter::create(path, header());
    w->commit(sample("p1"));
    w->commit(sample("p2"));
  }
  fs::remove(path + ".parts/seg-000002.h5");
  CHECK_THROWS_WITH_AS(read_store_index(path), doctest::Contains("seg-000002.h5"), InputError);
  CHECK_THROWS_AS(StoreWriter::resume(path, header()), InputError);
  CHECK(fs::exists(path + ".parts/seg-000001.h5"));  // nothing removed
}

TEST_CASE("store writer: SIGKILL at any instant leaves a store that resumes to every committed patient") {
  TempDir tmp;
  const std::string path = tmp / "k.h5";
  const auto patient = [](int i) { return "p" + std::to_string(i); };
  int next = 0;  // first patient not yet known to be committed
  // Kills at different instants of the commit loop (first commit, later commits, mid-write).
  for (int delay_ms : {0, 30, 150, 600, 1500}) {
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      try {
        auto w = next == 0 && !fs::exists(path + ".parts") ? StoreWriter::create(path, header())
                                                          : StoreWriter::resume(path, header());
        for (int i = static_cast<int>(w->index().patient_cycles.size());; ++i) w->commit(sample(patient(i)));
      } catch (...) {
        ::_exit(3);
      }
    }
    ::usleep(static_cast<useconds_t>(delay_ms) * 1000);
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    CHECK(WIFSIGNALED(status));  // killed in its loop, not failed
    if (!fs::exists(path + ".parts")) continue;  // killed before create() made anything
    auto w = StoreWriter::resume(path, header());
    const auto& committed = w->index().patient_cycles;
    CHECK(static_cast<int>(committed.size()) >= next);
    StoreRows all;
    for (size_t i = 0; i < committed.size(); ++i) {
      CHECK(committed[i].first == patient(static_cast<int>(i)));
      all.append(sample(patient(static_cast<int>(i))));
    }
    if (!committed.empty()) CHECK(stored(path) == describe(all));
    next = static_cast<int>(committed.size());
    for (const auto& n : names(path + ".parts"))  // only committed segments and the marker are left
      CHECK((n == "lutdose-store-parts" || n.rfind("seg-", 0) == 0));
  }
  CHECK(next > 0);  // the children committed something in 2.3 s (a commit takes 20 to 200 ms)
  auto w = StoreWriter::resume(path, header());
  w->commit(sample(patient(next)));
  w->finish();
  CHECK(read_store_index(path).patient_cycles.size() == static_cast<size_t>(next + 1));
  CHECK(names(tmp.path) == std::set<std::string>{"k.h5"});
}

TEST_CASE("store writer: a folder left without its marker by a kill is resumed - a foreign folder is not") {
  TempDir tmp;
  const std::string path = tmp / "b.h5";
  fs::create_directory(path + ".parts");  // as left by a kill just after mkdir
  auto w = StoreWriter::resume(path, header());
  CHECK(w->index().patient_cycles.empty());
  w->commit(sample("p1"));
  w->finish();
  CHECK(stored(path) == describe(sample("p1")));
  // finish() killed after removing the marker, before removing the (then empty) folder.
  fs::create_directory(path + ".parts");
  auto finished = StoreWriter::resume(path, header());
  CHECK(finished->index().consolidated);
  CHECK(!fs::exists(path + ".parts"));
  fs::create_directory(tmp / "c.h5.parts");
  write(tmp / "c.h5.parts/notes.txt", "a user's file");
  CHECK_THROWS_WITH_AS(StoreWriter::resume(tmp / "c.h5", header()), doctest::Contains("not the segment folder"),
                       InputError);
  CHECK(read(tmp / "c.h5.parts/notes.txt") == "a user's file");
}

namespace {

//! A store of patient p1 (cycles 1 and 2, done) with TAC points of two VOIs in cycle 1 (liver with
//! activity_u_MBq) and one in cycle 2, and patient p9, failed.
StoreRows points_sample() {
  StoreRows rows;
  rows.patients.push_back({"p1", 1, "done", "t.csv", "", 7400, 2, 0, 0});
  rows.patients.push_back({"p1", 2, "done", "t.csv", "", 3700, 1, 0, 0});
  rows.append(failure_rows("p9", 0, "t.csv", "bad row"));
  rows.points = {{"p1", 1, "kidneys", 4, 100, kNaN}, {"p1", 1, "kidneys", 24, 80, kNaN}, {"p1", 1, "liver", 4, 50, 2.5},
                 {"p1", 1, "liver", 24, 40, 2}, {"p1", 2, "kidneys", 4, 60, kNaN}};
  // each VOI's /vois row with its number of points (the cross-check of /points: review of 0.19)
  for (const auto& [voi, cycle, n] : {std::tuple{"kidneys", 1, 2}, {"liver", 1, 2}, {"kidneys", 2, 1}}) {
    VoiRow v;
    v.patient = "p1", v.voi = voi, v.function = "E1", v.method = "fit", v.cycle = cycle, v.n_points = n;
    rows.vois.push_back(v);
  }
  return rows;
}

// read_store_tacs's error of `rows` written as a store in `tmp` (empty when it reads them).
std::string store_tacs_error(const TempDir& tmp, const StoreRows& rows) {
  write(tmp / "bad.h5", store_image(header(), rows));
  try {
    read_store_tacs(tmp / "bad.h5");
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("read_store_tacs: /points grouped by patient, cycle and VOI in row order, with the administered "
          "activities of /patients; failed patients counted and left out; the store's SHA-256") {
  TempDir tmp;
  write(tmp / "s.h5", store_image(header(), points_sample()));
  const StoreTacs t = read_store_tacs(tmp / "s.h5");
  REQUIRE(t.series.size() == 3);
  std::vector<std::string> keys;
  for (const auto& s : t.series) keys.push_back(s.patient + "|" + std::to_string(s.cycle) + "|" + s.voi);
  CHECK(keys == std::vector<std::string>{"p1|1|kidneys", "p1|1|liver", "p1|2|kidneys"});
  CHECK(t.administered_MBq == std::vector<double>{7400, 7400, 3700});
  CHECK(t.series[0].time_h == Eigen::Vector2d(4, 24));
  CHECK(t.series[0].activity_MBq == Eigen::Vector2d(100, 80));
  CHECK(t.series[0].activity_u_MBq.size() == 0);  // NaN in every point: the input gave none
  CHECK(t.series[1].activity_u_MBq == Eigen::Vector2d(2.5, 2));
  CHECK(t.series[2].activity_MBq == Eigen::VectorXd::Constant(1, 60));
  CHECK(t.failed_patients == 1);
  CHECK(t.sha256 == sha256_hex(read(tmp / "s.h5")));
}

TEST_CASE("read_store_tacs: refused - a store older than format 6, an unfinished batch, every patient failed, no "
          "points, a point of no done cycle, an administered activity that is not > 0") {
  TempDir tmp;
  write(tmp / "v5.h5", store_image(header(), points_sample()));
  set_format_version(tmp / "v5.h5", 5, false);  // its /points is not read: format 5 has none
  CHECK_THROWS_WITH_AS(read_store_tacs(tmp / "v5.h5"), doctest::Contains("has format_version 5: it holds no TAC points"),
                       InputError);
  CHECK_THROWS_WITH_AS(read_store_tacs(tmp / "v5.h5"), doctest::Contains("lutdose >= 0.19"), InputError);
  auto w = StoreWriter::create(tmp / "m.h5", header());
  w->commit(points_sample());
  CHECK_THROWS_WITH_AS(read_store_tacs(tmp / "m.h5"), doctest::Contains("unfinished batch"), InputError);
  write(tmp / "failed.h5", store_image(header(), failure_rows("p9", 0, "t.csv", "bad row")));
  CHECK_THROWS_WITH_AS(read_store_tacs(tmp / "failed.h5"), doctest::Contains("every patient of the store failed (1"),
                       InputError);
  StoreRows none = points_sample();
  none.points.clear();
  write(tmp / "none.h5", store_image(header(), none));
  CHECK_THROWS_WITH_AS(read_store_tacs(tmp / "none.h5"), doctest::Contains("holds no TAC points"), InputError);
  StoreRows orphan = points_sample();
  orphan.points.push_back({"p9", 1, "liver", 4, 10, kNaN});
  write(tmp / "orphan.h5", store_image(header(), orphan));
  CHECK_THROWS_WITH_AS(read_store_tacs(tmp / "orphan.h5"), doctest::Contains("patient p9, cycle 1, VOI liver"),
                       InputError);
  StoreRows unknown = points_sample();
  unknown.patients[1].administered_MBq = kNaN;  // a run --tac without --activity-MBq
  write(tmp / "unknown.h5", store_image(header(), unknown));
  CHECK_THROWS_WITH_AS(read_store_tacs(tmp / "unknown.h5"), doctest::Contains("administered_MBq is 'nan'"), InputError);
}

// Review of 0.19, findings 2 and 3: a hand-edited store's points were learned from without the TAC
// table's checks (NaN, negative or huge times, infinite activities, times not increasing, u for some
// points only, a negative u), a second /patients row of a cycle was ignored, and points deleted from
// /points went unnoticed although /vois records each VOI's number of points.
TEST_CASE("read_store_tacs: the points are checked as a TAC table's, and against /vois and /patients") {
  TempDir tmp;
  REQUIRE(store_tacs_error(tmp, points_sample()).empty());
  const auto edited = [&](auto edit) {
    StoreRows r = points_sample();
    edit(r);
    return store_tacs_error(tmp, r);
  };
  CHECK(edited([](StoreRows& r) { r.points[1].time_h = kNaN; }).find("time_h") != std::string::npos);
  CHECK(edited([](StoreRows& r) { r.points[0].time_h = -5; }).find("time_h") != std::string::npos);
  CHECK(edited([](StoreRows& r) { r.points[1].time_h = 1e300; }).find("time_h") != std::string::npos);
  CHECK(edited([](StoreRows& r) { r.points[1].time_h = 4; }).find("strictly increasing") != std::string::npos);
  CHECK(edited([](StoreRows& r) { r.points[0].activity_MBq = INFINITY; }).find("activity_MBq") != std::string::npos);
  CHECK(edited([](StoreRows& r) { r.points[2].activity_u_MBq = -3; }).find("activity_u_MBq") != std::string::npos);
  CHECK(edited([](StoreRows& r) { r.points[3].activity_u_MBq = kNaN; }).find("some time points only") !=
        std::string::npos);
  CHECK(edited([](StoreRows& r) { r.points[0].time_h = kNaN; }).find("/points") != std::string::npos);  // where
  CHECK(edited([](StoreRows& r) { r.patients.push_back({"p1", 1, "done", "t.csv", "", 3700, 2, 0, 0}); })
            .find("two /patients rows") != std::string::npos);
  CHECK(edited([](StoreRows& r) { r.points.erase(r.points.begin() + 1); }).find("n_points") != std::string::npos);
  CHECK(edited([](StoreRows& r) { r.points.pop_back(); }).find("n_points") != std::string::npos);  // a TAC lost
}
