// The writers of io/ read the plain result structs: a hand-built RunResult (no pipeline) gives
// results.json blocks, the plan's delivered-dose block and the table from its fields, and an
// unknown value (NaN) is written as null or "n/a", never as 0.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "lutdose/io/plan_json.h"
#include "lutdose/io/results.h"
#include "lutdose/planning/run_history.h"

using namespace lutdose;

namespace {
constexpr double NaN = std::numeric_limits<double>::quiet_NaN();

// One cycle with a red-marrow dose from the image method, an incomplete Monte Carlo and a case
// file's protocol; the provenance names version, input and nuclide.
RunResult sample_run() {
  RunResult r;
  r.provenance.lutdose_version = "9.9.9-test";
  r.provenance.nuclide.name = "Lu-177";
  r.provenance.nuclide.half_life_h = 159.5;
  r.provenance.options.tac_path = "case.json";
  r.provenance.options.input_kind = InputKind::case_file;
  r.provenance.options.dose = DoseOptions{};
  r.provenance.svalue_set_description = "test set";
  r.provenance.tissue_file = "tissue.csv";
  CycleResult c;
  c.patient = "P1";
  c.cycle = 2;
  c.administered_MBq = 7400;
  TargetDose d;
  d.target = "red_marrow";
  d.kind = "organ";
  d.dose_Gy = 0.5;
  d.dose_u_Gy = NaN;
  d.dose_u_dof = NaN;
  d.u_missing = {"fit:cycle2:red_marrow"};
  c.doses.push_back(d);
  MarrowResult m;
  m.method = MarrowMethod::image;
  m.mass_g = 1170;
  m.mass_source = "phantom reference mass";
  m.l2l4_voi = "l2l4";
  m.l2l4_fraction = 0.12;
  m.tia_MBq_h = 3000;
  m.tia_u_MBq_h = NaN;
  m.tia_u_dof = NaN;
  c.marrow = m;
  MonteCarloSummary mc;
  mc.samples = 10;
  mc.seed = 5;
  mc.used = 9;
  mc.failed = 1;
  mc.held_fixed_unknown_u = {"fit:cycle2:l2l4"};
  c.monte_carlo = mc;
  CycleProvenance p;
  p.reference_time = "2026-01-05T09:00:00";
  p.protocol = "SPECT";
  p.protocol_details = ProtocolSummary{5.5, 0.1, DeadTimeModel::none, 0, true};
  c.provenance = p;
  r.cycles.push_back(c);
  return r;
}
}  // namespace

TEST_CASE("results.json: provenance, marrow, Monte Carlo and case blocks come from the structs") {
  const auto j = to_json(sample_run(), true);
  CHECK(j["lutdose_version"] == "9.9.9-test");
  CHECK(j["nuclide"]["half_life_h"] == 159.5);
  CHECK(j["options"]["input"] == "case.json");
  CHECK(j["options"]["dose"]["svalue_set"] == "test set");
  CHECK(j["options"]["dose"]["tissue_parameters"] == "tissue.csv");
  const auto& c = j["patients"][0]["cycles"][0];
  CHECK(c["cycle"] == 2);
  CHECK(c["marrow"]["method"] == "image");
  CHECK(c["marrow"]["l2l4_voi"] == "l2l4");
  CHECK(c["marrow"]["l2l4_fraction"] == 0.12);
  CHECK_FALSE(c["marrow"].contains("rmblr"));  // blood-method fields only with that method
  CHECK(c["marrow"]["tia_MBq_h"] == 3000.0);
  CHECK(c["marrow"]["tia_u_MBq_h"].is_null());  // unknown, not 0
  CHECK(c["monte_carlo"]["samples"] == 10);
  CHECK(c["monte_carlo"]["used"] == 9);
  CHECK(c["monte_carlo"]["incomplete"] == true);
  CHECK(c["monte_carlo"]["held_fixed_unknown_u"][0] == "fit:cycle2:l2l4");
  CHECK(c["quantification"]["protocol"] == "SPECT");
  CHECK(c["quantification"]["cf_cps_per_MBq"] == 5.5);
  CHECK(c["quantification"]["recovery_table"] == true);
  CHECK(c["doses"][0]["dose_u_Gy"].is_null());
  CHECK(c["doses"][0]["uncertainty_incomplete"] == true);
}

TEST_CASE("results.json: cycles without marrow, Monte Carlo or case details have no such blocks") {
  RunResult r = sample_run();
  r.cycles[0].marrow.reset();
  r.cycles[0].monte_carlo.reset();
  r.cycles[0].provenance->protocol_details.reset();
  auto j = to_json(r, true);
  auto c = j["patients"][0]["cycles"][0];
  CHECK_FALSE(c.contains("marrow"));
  CHECK_FALSE(c.contains("monte_carlo"));
  CHECK_FALSE(c["quantification"].contains("cf_cps_per_MBq"));  // the protocol is not in the file
  r.cycles[0].provenance.reset();
  j = to_json(r, false);
  c = j["patients"][0]["cycles"][0];
  CHECK_FALSE(c.contains("quantification"));
  CHECK_FALSE(c.contains("doses"));  // lutdose fit
}

TEST_CASE("table: the marrow row and the Monte Carlo note come from the structs") {
  std::ostringstream s;
  print_table(sample_run(), s);
  const std::string t = s.str();
  CHECK(t.find("lutdose 9.9.9-test | Lu-177") != std::string::npos);
  CHECK(t.find("(image)") != std::string::npos);
  CHECK(t.find("Monte Carlo incomplete") != std::string::npos);
  CHECK(t.find("n/a") != std::string::npos);  // u(D) unknown
}

TEST_CASE("plan: delivered dose uncertainty of the organs at risk, unknown u as null") {
  RunResult r = sample_run();
  TargetDose k;
  k.target = "kidneys";
  k.dose_Gy = 3.0;
  k.dose_u_Gy = 0.3;
  k.dose_u_dof = std::numeric_limits<double>::infinity();
  k.dose_ci95_Gy = {2.4, 3.6};
  r.cycles[0].doses.push_back(k);
  TargetDose liver;
  liver.target = "liver";  // no limit: not an organ at risk here
  r.cycles[0].doses.push_back(liver);
  const std::vector<Limit> limits = {{"kidney*", "dose_Gy", 23, "test"}, {"red_marrow", "dose_Gy", 2, "test"}};
  const auto d = delivered_dose_uncertainty(r, limits);
  REQUIRE(d.size() == 2);
  CHECK(d[0].target == "red_marrow");
  CHECK(d[0].incomplete());
  CHECK(d[1].target == "kidneys");
  CHECK_FALSE(d[1].incomplete());
  const auto j = to_json(d);
  CHECK(j[0]["cycle"] == 2);
  CHECK(j[0]["dose_u_Gy"].is_null());
  CHECK(j[0]["dose_u_dof"].is_null());
  CHECK(j[0]["dose_ci95_Gy"].is_null());
  CHECK(j[0]["uncertainty_missing_inputs"][0] == "fit:cycle2:red_marrow");
  CHECK(j[1]["dose_u_Gy"] == 0.3);
  CHECK(j[1]["dose_u_dof"] == "infinite");
  CHECK(j[1]["dose_ci95_Gy"][1] == 3.6);
  CHECK(j[1]["uncertainty_incomplete"] == false);
}

TEST_CASE("results.json: with a population the fit options are the population MAP's, with its file") {
  RunResult r = sample_run();
  r.provenance.options.population = std::make_shared<const std::vector<PopulationModel>>();
  r.provenance.options.population_source = {"pop.json", std::string(64, 'a'), true, "", std::nullopt};
  const auto j = to_json(r, true);
  const auto& fit = j["options"]["fit"];
  CHECK(fit["method"] == "population MAP");
  CHECK(fit["population"]["source"] == "pop.json");
  CHECK(fit["population"]["sha256"] == std::string(64, 'a'));
  CHECK(fit["population"]["own_checksum"] == "verified");
  // the options of individual fits do not apply and are not recorded
  for (const char* individual : {"functions", "aicc_parameter_count", "error_model_tumours", "acceptance",
                                 "trapezoid_head", "model_averaging", "combined_b"})
    CHECK_FALSE(fit.contains(individual));
  r.provenance.options.population_source = {"hand.json", std::string(64, 'b'), false, "", std::nullopt};
  const auto hand = to_json(r, true);
  CHECK(hand["options"]["fit"]["population"]["own_checksum"] == "absent");
  std::ostringstream table;
  print_table(r, table);
  CHECK(table.str().find("population MAP (hand.json)") != std::string::npos);
  CHECK(table.str().find("error model") == std::string::npos);
  // a long function name (a compartment population's "compartment:NAME") keeps a space before the
  // "ok" column (review of 0.18: "compartment:blood_organ_linearyes")
  REQUIRE_FALSE(r.cycles.empty());
  VoiResult organ;
  organ.tac.voi = "organ";
  organ.fit.function = "compartment:blood_organ_linear";
  organ.fit.accepted = true;
  organ.fit.tia_MBq_h = 1000;
  r.cycles[0].vois.push_back(organ);
  std::ostringstream long_table;
  print_table(r, long_table);
  CHECK(long_table.str().find("compartment:blood_organ_linear yes") != std::string::npos);
  // learned from the input: the learning's options recorded (0.18), none for a file
  CHECK_FALSE(hand["options"]["fit"]["population"].contains("learning"));
  PopulationOptions learning;
  learning.candidates = {"E1"};
  learning.error_model = PopulationErrorModel::combined;
  learning.omega_structure = OmegaStructure::full;
  learning.sampled_e_step = false;
  learning.max_iterations = 7;  // recorded since 0.19
  r.provenance.options.population_source = {"", "", false, std::string(64, 'c'), learning};
  const auto learned = to_json(r, true)["options"]["fit"]["population"];
  CHECK(learned["learning"].dump() ==
        R"({"candidates":["E1"],"error_model":"combined","omega_structure":"full","e_step":"laplace","max_iterations":7})");
}
