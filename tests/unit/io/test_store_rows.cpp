// The rows of the results store from a run (lutdose/io/store.h: store_rows, failure_rows,
// store_header_of): one row per patient-cycle, VOI, candidate, target and budget term, with the
// numbers of the result structs, unknowns as NaN, and names that do not fit refused.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "lutdose/error.h"
#include "lutdose/io/case_file.h"
#include "lutdose/io/store.h"
#include "lutdose/pipeline/pipeline.h"

using namespace lutdose;

namespace {
const std::string DATA = LUTDOSE_TEST_DATA_DIR;
const std::string SRC = LUTDOSE_TEST_SOURCE_DIR;

const RunResult& patient004() {
  static const RunResult r = run_case(load_case_file(SRC + "/examples/snmmi-patient004/case.json"), DATA);
  return r;
}

// Both NaN, or equal.
bool same(double a, double b) { return (std::isnan(a) && std::isnan(b)) || a == b; }
}  // namespace

TEST_CASE("store rows of Patient_004: one row per cycle, VOI, candidate and target, numbers as computed") {
  const RunResult& r = patient004();
  const StoreRows rows = store_rows(r, "case.json", std::string(64, 'a'));
  REQUIRE(r.cycles.size() == 1);
  const CycleResult& c = r.cycles[0];
  REQUIRE(rows.patients.size() == 1);
  CHECK(rows.patients[0].patient == c.patient);
  CHECK(rows.patients[0].status == "done");
  CHECK(rows.patients[0].n_vois == static_cast<int>(c.vois.size()));
  REQUIRE(rows.vois.size() == c.vois.size());
  size_t candidates = 0;
  for (size_t i = 0; i < c.vois.size(); ++i) {
    CAPTURE(c.vois[i].tac.voi);
    candidates += c.vois[i].fit.candidates.size();
    CHECK(rows.vois[i].voi == c.vois[i].tac.voi);
    CHECK(same(rows.vois[i].tia_MBq_h, c.vois[i].fit.tia_MBq_h));
    CHECK(same(rows.vois[i].tia_u_MBq_h, c.vois[i].fit.tia_u_MBq_h));
    CHECK(rows.vois[i].fit_ok == (c.vois[i].fit.accepted ? 1 : 0));
  }
  CHECK(rows.candidates.size() == candidates);
  REQUIRE(rows.targets.size() == c.doses.size());
  for (size_t i = 0; i < c.doses.size(); ++i) {
    CHECK(rows.targets[i].target == c.doses[i].target);
    CHECK(same(rows.targets[i].dose_Gy, c.doses[i].dose_Gy));
    CHECK(same(rows.targets[i].dose_u_Gy, c.doses[i].dose_u_Gy));
  }
  // A VOI row carries the dose of the target of the same name.
  for (const auto& v : rows.vois)
    for (const auto& d : c.doses)
      if (d.target == v.voi) CHECK(same(v.dose_Gy, d.dose_Gy));
}

TEST_CASE("store rows: the budget terms of a VOI target add in quadrature to its dose u (GUM, independent inputs)") {
  const RunResult& r = patient004();
  const StoreRows rows = store_rows(r, "case.json", "");
  int checked = 0;
  for (const auto& t : rows.targets) {
    if (t.kind == "region" || std::isnan(t.dose_u_Gy)) continue;
    double sum2 = 0;
    int terms = 0;
    for (const auto& b : rows.budget)
      if (b.target == t.target && b.cycle == t.cycle) {
        sum2 += b.term_Gy * b.term_Gy;
        ++terms;
      }
    CAPTURE(t.target);
    CHECK(terms > 0);
    // u^2 = sum of the squared terms; 1e-12 relative: rounding of the sum of squares only.
    CHECK(std::sqrt(sum2) == doctest::Approx(t.dose_u_Gy).epsilon(1e-12));
    ++checked;
  }
  CHECK(checked > 0);
  // Phantom regions have no budget rows (the table holds the VOI targets' budgets).
  for (const auto& b : rows.budget)
    for (const auto& t : rows.targets)
      if (t.target == b.target) CHECK(t.kind != "region");
}

TEST_CASE("store rows: a name longer than the store's name columns is refused, not cut") {
  RunResult r = patient004();
  r.cycles[0].vois[0].tac.voi = std::string(STORE_NAME_BYTES + 1, 'v');
  CHECK_THROWS_AS(store_rows(r, "case.json", ""), InputError);
  r.cycles[0].vois[0].tac.voi = std::string(STORE_NAME_BYTES, 'v');
  for (auto& d : r.cycles[0].doses) d.target = d.target.substr(0, STORE_NAME_BYTES);
  CHECK_NOTHROW(store_rows(r, "case.json", ""));
}

TEST_CASE("failure rows: always recorded, a long patient id is shortened on a UTF-8 boundary and said so") {
  const StoreRows f = failure_rows("P1", 0, "cases/p1.json", "cases/p1.json: bad");
  REQUIRE(f.patients.size() == 1);
  CHECK(f.patients[0].status == "failed");
  CHECK(std::isnan(f.patients[0].administered_MBq));
  REQUIRE(f.failures.size() == 1);
  CHECK(f.failures[0].error == "cases/p1.json: bad");
  // 63 ASCII bytes then a 2-byte character: the cut at 64 would split it, so 63 bytes are kept.
  const std::string id = std::string(63, 'x') + "\xc3\xa9" + "tail";
  const StoreRows g = failure_rows(id, 2, "t.csv", "bad");
  CHECK(g.patients[0].patient == std::string(63, 'x'));
  CHECK(g.failures[0].error.find("full id: " + id) != std::string::npos);
}

TEST_CASE("store header: the fingerprint ignores paths but not options or data") {
  const RunResult& r = patient004();
  const StoreHeader a = store_header_of(r.provenance, "run");
  CHECK(a.fingerprint.size() == 64);
  CHECK(a.provenance_json.find("Lu-177") != std::string::npos);
  Provenance moved = r.provenance;
  moved.options.tac_path = "/elsewhere/case.json";
  CHECK(store_header_of(moved, "run").fingerprint == a.fingerprint);
  Provenance other = r.provenance;
  other.options.fit.model_averaging = !other.options.fit.model_averaging;
  CHECK(store_header_of(other, "run").fingerprint != a.fingerprint);
  Provenance data = r.provenance;
  REQUIRE(!data.svalue_files.empty());
  data.svalue_files[0] = "/nonexistent/" + data.svalue_files[0].substr(data.svalue_files[0].rfind('/') + 1);
  CHECK(store_header_of(data, "run").fingerprint != a.fingerprint);  // same name, content unreadable
}

TEST_CASE("store rows: a candidate's parameter text reads back to its exact parameters and standard uncertainties") {
  const RunResult& r = patient004();
  const StoreRows rows = store_rows(r, "case.json", std::string(64, 'a'));
  size_t row = 0;
  for (const auto& v : r.cycles[0].vois)
    for (const auto& c : v.fit.candidates) {
      REQUIRE(row < rows.candidates.size());
      const std::string& text = rows.candidates[row++].parameters;
      CAPTURE(text);
      size_t at = 0;
      for (Eigen::Index i = 0; i < c.parameters.size(); ++i) {
        const size_t eq = text.find('=', at), u = text.find(" u=", eq);
        REQUIRE(eq != std::string::npos);
        REQUIRE(u != std::string::npos);
        CHECK(text.substr(at, eq - at) == c.parameter_names[static_cast<size_t>(i)]);
        CHECK(std::strtod(text.c_str() + eq + 1, nullptr) == c.parameters[i]);  // exact: shortest round-trip form
        CHECK(same(std::strtod(text.c_str() + u + 3, nullptr), std::sqrt(c.covariance(i, i))));
        at = text.find("; ", u);
        at = at == std::string::npos ? text.size() : at + 2;
      }
      CHECK(at == text.size());
    }
}

TEST_CASE("store header: the population file's SHA-256 is in the fingerprint, its path is not") {
  Provenance p = patient004().provenance;
  p.options.population = std::make_shared<const std::vector<PopulationModel>>();
  p.options.population_source = {"/a/pop.json", std::string(64, 'a'), true, "", std::nullopt};
  const StoreHeader a = store_header_of(p, "batch");
  CHECK(a.provenance_json.find("/a/pop.json") != std::string::npos);
  Provenance moved = p;
  moved.options.population_source.path = "/b/pop.json";
  CHECK(store_header_of(moved, "batch").fingerprint == a.fingerprint);
  Provenance other = p;
  other.options.population_source.sha256 = std::string(64, 'b');
  CHECK(store_header_of(other, "batch").fingerprint != a.fingerprint);
}

TEST_CASE("store header: a compartment population's estimates are in /population, its file in the provenance") {
  // review of 0.18: a run --tac with a compartment population wrote no /population rows and no trace
  // of its file
  Provenance p = patient004().provenance;
  auto cp = std::make_shared<CompartmentPopulation>();
  cp->model.voi_kind = "compartment";
  cp->model.function = "compartment:blood_organ_linear";
  cp->model.phi_names = {"log_k_b", "log_k_in"};
  cp->model.theta = Eigen::Vector2d(std::log(0.34), std::log(0.0068));
  cp->model.theta_se = Eigen::Vector2d(0.02, 0.03);
  cp->model.omega = Eigen::Vector2d(0.04, 0.09).asDiagonal();
  cp->model.sigma_log = 0.1;
  cp->model.shrinkage = Eigen::Vector2d(0.1, 0.2);
  cp->model_name = "blood_organ_linear";
  p.options.compartment_population = cp;
  p.options.population_source = {"/a/cpop.json", std::string(64, 'c'), true, "", std::nullopt};
  const StoreHeader h = store_header_of(p, "run");
  REQUIRE(h.population.size() == 2);
  CHECK(h.population[1].parameter == "log_k_in");
  CHECK(h.population[1].theta == std::log(0.0068));
  CHECK(h.population_omega.size() == 2);
  CHECK(h.provenance_json.find("/a/cpop.json") != std::string::npos);
}

TEST_CASE("store rows: /points holds every point of each VOI's TAC as fitted, activity_u_MBq NaN where none was given") {
  RunResult r;
  CycleResult c;
  c.patient = "P1";
  c.cycle = 2;
  c.administered_MBq = 7400;
  VoiResult kidneys, tumour;
  kidneys.tac.voi = "kidneys";
  kidneys.tac.time_h = Eigen::Vector3d(4, 24, 96);
  kidneys.tac.activity_MBq = Eigen::Vector3d(120.5, 90.25, 30.125);
  tumour.tac.voi = "tumour_1";
  tumour.tac.time_h = Eigen::Vector2d(24, 48);
  tumour.tac.activity_MBq = Eigen::Vector2d(10, 8);
  tumour.tac.activity_u_MBq = Eigen::Vector2d(0.5, 0.25);
  c.vois = {kidneys, tumour};
  r.cycles = {c};
  const StoreRows rows = store_rows(r, "t.csv", "");
  REQUIRE(rows.points.size() == 5);
  const double t[] = {4, 24, 96, 24, 48}, a[] = {120.5, 90.25, 30.125, 10, 8}, u[] = {NAN, NAN, NAN, 0.5, 0.25};
  for (size_t i = 0; i < 5; ++i) {
    CAPTURE(i);
    CHECK(rows.points[i].patient == "P1");
    CHECK(rows.points[i].cycle == 2);
    CHECK(rows.points[i].voi == (i < 3 ? "kidneys" : "tumour_1"));
    CHECK(rows.points[i].time_h == t[i]);
    CHECK(rows.points[i].activity_MBq == a[i]);
    CHECK(same(rows.points[i].activity_u_MBq, u[i]));
  }
}

TEST_CASE("store rows of Patient_004: /points are the fitted TACs, point by point") {
  const RunResult& r = patient004();
  const StoreRows rows = store_rows(r, "case.json", "");
  size_t k = 0;
  for (const auto& v : r.cycles[0].vois)
    for (Eigen::Index i = 0; i < v.tac.time_h.size(); ++i, ++k) {
      REQUIRE(k < rows.points.size());
      CHECK(rows.points[k].voi == v.tac.voi);
      CHECK(rows.points[k].time_h == v.tac.time_h(i));
      CHECK(rows.points[k].activity_MBq == v.tac.activity_MBq(i));
    }
  CHECK(k == rows.points.size());
  CHECK(k > 0);
}
