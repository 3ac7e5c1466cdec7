// Whole runs: per-point budgets, sums over cycles, and the GUM against its Monte Carlo check.
#include <doctest/doctest.h>

#include "../cohort.h"
#include "../result_lookup.h"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "lutdose/io/case_file.h"
#include "lutdose/io/results.h"
#include "lutdose/dosimetry/dose.h"
#include "lutdose/error.h"
#include "lutdose/dosimetry/nuclide.h"
#include "lutdose/pipeline/pipeline.h"
#include "lutdose/models/compartment.h"
#include "../test_util.h"

using namespace lutdose;

namespace {
const std::string DATA = LUTDOSE_TEST_DATA_DIR;
const std::string SRC = LUTDOSE_TEST_SOURCE_DIR;

using test::target;
}  // namespace

TEST_CASE("two cycles: cumulative dose is the sum, CF common to the cycles, fits independent") {
  // The Patient_004 case twice, as cycles 1 and 2 of one patient.
  std::ifstream in(SRC + "/examples/snmmi-patient004/case.json");
  nlohmann::json j;
  in >> j;
  nlohmann::json second = j["cycles"][0];
  second["cycle"] = 2;
  second["reference_time"] = "2021-03-01T10:00:00";
  second["administered"]["measured_at"] = "2021-03-01T09:00:00";
  j["cycles"].push_back(second);
  const std::string path = test::write_temp(j.dump());
  const CaseFile c = load_case_file(path);
  const RunResult r = run_case(c, DATA);
  REQUIRE(r.cycles.size() == 2);
  const auto& cum = r.cumulative.at("SNMMI-Patient_004");
  for (const char* name : {"kidney_left", "liver", "Total body except organ contents"}) {
    CAPTURE(name);
    const TargetDose& d1 = target(r.cycles[0], name);
    const TargetDose& d2 = target(r.cycles[1], name);
    const auto it = std::find_if(cum.begin(), cum.end(), [&](const CumulativeDose& x) { return x.target == name; });
    REQUIRE(it != cum.end());
    CHECK(it->cycles == 2);
    CHECK(it->dose_Gy == doctest::Approx(d1.dose_Gy + d2.dose_Gy).epsilon(1e-14));
    // identical cycles: the common inputs (CF, S-values) add linearly, the per-cycle ones in
    // quadrature, so u(sum)^2 = 4 u_common^2 + 2 u_cycle^2 with u(cycle)^2 = u_common^2 + u_cycle^2
    double common2 = 0, all2 = 0;
    for (const auto& b : uncertainty_budget(d1, r.cycles[0].dose_input_names, r.cycles[0].dose_input_u_rel)) {
      all2 += b.u_Gy * b.u_Gy;
      if (b.input.rfind("cf:", 0) == 0 || b.input.rfind("svalue:", 0) == 0) common2 += b.u_Gy * b.u_Gy;
    }
    CHECK(it->dose_u_Gy == doctest::Approx(std::sqrt(4 * common2 + 2 * (all2 - common2))).epsilon(1e-9));
  }
  std::remove(path.c_str());
}

TEST_CASE("GUM against Monte Carlo on Patient_004 with stated CF, RC and volume uncertainties") {
  // Poisson-only per-point sigmas (error model input), so that the fit term is what the Monte
  // Carlo resamples; CF 1.4 %, kidney RC 3 %, volumes 5 % (examples/snmmi-patient004/make_case.py).
  std::ifstream in(SRC + "/examples/snmmi-patient004/case.json");
  nlohmann::json j;
  in >> j;
  j["fit"]["error_model"] = "input";
  const std::string path = test::write_temp(j.dump());
  const RunResult r = run_case(load_case_file(path), DATA, 2000, 20261124);
  for (const char* name : {"kidney_left", "kidney_right", "liver", "spleen"}) {
    CAPTURE(name);
    const TargetDose& d = target(r.cycles[0], name);
    REQUIRE(std::isfinite(d.dose_u_mc_Gy));
    // the criterion: relative uncertainties agree within 10 % (relative); with 2000
    // samples the MC standard deviation itself is known to about 1.6 %
    CHECK(d.dose_u_mc_Gy / d.dose_u_Gy == doctest::Approx(1.0).epsilon(0.10));
    CHECK(d.dose_mc_mean_Gy == doctest::Approx(d.dose_Gy).epsilon(0.01));
  }
  std::remove(path.c_str());
}

TEST_CASE("per-point budget: with absolute sigmas the points' parts add up to the fit's u(TIA)") {
  std::ifstream in(SRC + "/examples/snmmi-patient004/case.json");
  nlohmann::json j;
  in >> j;
  j["fit"]["error_model"] = "input";
  const std::string path = test::write_temp(j.dump());
  const RunResult r = run_case(load_case_file(path), DATA);
  for (const auto& v : r.cycles[0].vois) {
    CAPTURE(v.tac.voi);
    const auto& c = v.fit.candidates.at(static_cast<size_t>(v.fit.selected));
    // u(TIA)^2 = sum_i (dTIA/dy_i sigma_i)^2 for the WLS estimator with W = 1/sigma^2; where the
    // chi-square test failed the covariance was scaled by the Birge ratio^2, so are the sigmas
    const double b = c.covariance_scaled ? c.birge_ratio : 1.0;
    const double sum2 = (b * c.tia_dy.cwiseProduct(v.tac.activity_u_MBq)).squaredNorm();
    CHECK(std::sqrt(sum2) == doctest::Approx(v.fit.tia_u_MBq_h).epsilon(1e-8));
  }
  std::remove(path.c_str());
}

TEST_CASE("synthetic 4-cycle patient: cumulative doses equal the sum of the per-cycle truths within 2 %") {
  // examples/synthetic-four-cycles: known kinetics (make_case.py); the truth of each cycle is the
  // dose engine fed the exact TIAs of true_tia.json, with the same masses and S-values.
  const CaseFile c = load_case_file(SRC + "/examples/synthetic-four-cycles/case.json");
  const RunResult r = run_case(c, DATA);
  REQUIRE(r.cycles.size() == 4);
  std::ifstream in(SRC + "/examples/synthetic-four-cycles/true_tia.json");
  nlohmann::json truth;
  in >> truth;
  const Nuclide lu = load_nuclide(DATA, "Lu-177");
  const DoseCalculator calc(DATA, lu, c.dose);
  std::map<std::string, double> true_sum;
  for (int cycle = 1; cycle <= 4; ++cycle) {
    std::vector<DoseSourceInput> in_true;
    for (const auto& [voi, tia] : truth[std::to_string(cycle)].items()) {
      DoseSourceInput d;
      d.voi = voi;
      d.tia_MBq_h = tia.get<double>();
      for (const auto& v : r.cycles[static_cast<size_t>(cycle - 1)].vois)
        if (v.tac.voi == voi) d.mean_volume_mL = v.mean_volume_mL;  // the case's volumes
      if (voi == "red_marrow") d.mean_mass_g = 1170.0;
      in_true.push_back(d);
    }
    for (const auto& t : calc.compute(in_true, 7400, "truth").targets) true_sum[t.target] += t.dose_Gy;
  }
  const auto& cum = r.cumulative.at("SYN-001");
  for (const char* name : {"kidneys", "liver", "spleen", "tumour_1", "red_marrow", "Total Body"}) {
    CAPTURE(name);
    const auto it = std::find_if(cum.begin(), cum.end(), [&](const CumulativeDose& x) { return x.target == name; });
    REQUIRE(it != cum.end());
    CHECK(it->cycles == 4);
    // the criterion: 2 %; the fits of noise-free data leave model error only (E1 for the
    // bi-exponential kidneys with 5 points, E1 for the whole body)
    CHECK(it->dose_Gy == doctest::Approx(true_sum[name]).epsilon(0.02));
  }
}

TEST_CASE("residual of the previous cycle: integrate to the next cycle, or subtract its curve") {
  std::ifstream in(SRC + "/examples/synthetic-two-cycles/case.json");
  nlohmann::json j;
  in >> j;
  const double lambda_p = std::log(2.0) / (6.647 * 24);
  const double delta_h = 8 * 7 * 24;  // the example's cycles are 8 weeks apart
  SUBCASE("integrate-to-next") {
    j["radiobiology"] = {{"residual", "integrate-to-next"}};
    const std::string path = test::write_temp(j.dump());
    const RunResult r = run_case(load_case_file(path), DATA);
    const auto& v = r.cycles[0].vois[0];  // kidneys, cycle 1
    const auto& c = v.fit.candidates.at(static_cast<size_t>(v.fit.selected));
    const auto& f = *models::find_exponential(c.function);
    CHECK(r.cycles[0].horizon_h == doctest::Approx(delta_h));
    CHECK(v.fit.tia_MBq_h == doctest::Approx(f.integral(c.parameters, lambda_p, delta_h)).epsilon(1e-12));
    CHECK(v.fit.tia_MBq_h < c.tia_MBq_h);
    CHECK(std::isinf(r.cycles[1].horizon_h));  // the last cycle goes to infinity
    std::remove(path.c_str());
  }
  SUBCASE("subtract") {
    j["radiobiology"] = {{"residual", "subtract"}};
    const std::string path = test::write_temp(j.dump());
    const RunResult r = run_case(load_case_file(path), DATA);
    const auto& prev = r.cycles[0].vois[0];
    const auto& c = prev.fit.candidates.at(static_cast<size_t>(prev.fit.selected));
    const auto& f = *models::find_exponential(c.function);
    const auto& cur = r.cycles[1].vois[0];
    REQUIRE(cur.residual_subtracted_MBq.size() == static_cast<size_t>(cur.tac.time_h.size()));
    Eigen::VectorXd t = cur.tac.time_h.array() + delta_h;
    const Eigen::VectorXd expected = f.evaluate(t, c.parameters, lambda_p);
    for (Eigen::Index i = 0; i < t.size(); ++i)
      CHECK(cur.residual_subtracted_MBq[static_cast<size_t>(i)] == doctest::Approx(expected(i)).epsilon(1e-12));
    std::remove(path.c_str());
  }
}

TEST_CASE("cycles out of time order or overlapping are bad input") {
  std::ifstream in(SRC + "/examples/synthetic-two-cycles/case.json");
  nlohmann::json j;
  in >> j;
  j["cycles"][1]["reference_time"] = "2026-01-08T09:00:00";  // 3 days after cycle 1: inside its scans
  const std::string path = test::write_temp(j.dump());
  try {
    load_case_file(path);
    FAIL("no error");
  } catch (const InputError& e) {
    CHECK(std::string(e.what()).find("cycles[1].reference_time") != std::string::npos);
    CHECK(std::string(e.what()).find("2026-01-08T09:00:00") != std::string::npos);
  }
  std::remove(path.c_str());
}

TEST_CASE("tumour repopulation: ln2 (T - T_k)/(alpha T_pot) is taken from the summed BED") {
  std::ifstream in(SRC + "/examples/synthetic-two-cycles/case.json");
  nlohmann::json j;
  in >> j;
  j["radiobiology"] = {{"repopulation", {{"targets", "tumour_*"}, {"alpha_per_Gy", 0.3}, {"t_pot_d", 10.0}, {"kickoff_d", 7.0}}}};
  const std::string path = test::write_temp(j.dump());
  const RunResult r = run_case(load_case_file(path), DATA);
  const auto& cum = r.cumulative.at("SYN-001");
  const auto it = std::find_if(cum.begin(), cum.end(), [](const CumulativeDose& x) { return x.target == "tumour_1"; });
  REQUIRE(it != cum.end());
  const double sum = target(r.cycles[0], "tumour_1").bed_Gy + target(r.cycles[1], "tumour_1").bed_Gy;
  const double term = std::log(2.0) * (56.0 - 7.0) / (0.3 * 10.0);  // cycles 56 days apart
  CHECK(it->repopulation_Gy == doctest::Approx(term).epsilon(1e-12));
  CHECK(it->bed_Gy == doctest::Approx(sum - term).epsilon(1e-12));
  // organs are not repopulation targets
  const auto kid = std::find_if(cum.begin(), cum.end(), [](const CumulativeDose& x) { return x.target == "kidneys"; });
  CHECK(kid->repopulation_Gy == 0.0);
  std::remove(path.c_str());
}

TEST_CASE("reduced schedules in a run: Hanscheid and Madsen on single-time-point TACs") {
  TacSeries s;
  s.voi = "kidneys";
  s.time_h = (Eigen::VectorXd(1) << 96.0).finished();
  s.activity_MBq = (Eigen::VectorXd(1) << 40.0).finished();
  s.volume_mL = {290.0};
  s.mass_g = {NAN};
  s.lines = {2};
  RunOptions o;
  o.data_dir = DATA;
  o.administered_MBq = 7400;
  DoseOptions d;
  d.phantom = "icrp89-male";
  o.dose = d;
  o.reduced = ReducedSchedule::hanscheid;
  const RunResult h = run_tac_table({s}, o);
  CHECK(h.cycles[0].vois[0].fit.tia_MBq_h == doctest::Approx(40.0 * 2 * 96 / std::log(2.0)).epsilon(1e-12));
  o.reduced = ReducedSchedule::madsen;
  const RunResult m = run_tac_table({s}, o);
  // kidneys' population T_eff 56 h (data/kinetics/population_kinetics.csv, K19)
  const double lambda = std::log(2.0) / 56.0;
  CHECK(m.cycles[0].vois[0].fit.tia_MBq_h == doctest::Approx(40.0 * std::exp(lambda * 96) / lambda).epsilon(1e-6));
  // the dose follows from the TIA, and the E1 curve through the point gives a BED
  CHECK(target(m.cycles[0], "kidneys").bed_Gy > target(m.cycles[0], "kidneys").dose_Gy);
}

TEST_CASE("a compartment model in a run: the observed VOIs are fitted jointly, their TIAs recovered") {
  // Noise-free data of the shipped multi-organ model at its file values; the fit starts there,
  // so the TIAs must come back to the model's own integral (1e-4: the ODE solver's tolerance).
  const std::string path = SRC + "/models/files/prrt_multiorgan_linear.json";
  const auto model = models::CompartmentModel::from_file(path);
  const double lp = std::log(2.0) / (6.647 * 24.0), a0 = 7400.0;
  const Eigen::VectorXd t = (Eigen::VectorXd(7) << 0.5, 2, 6, 24, 48, 96, 168).finished();
  const Eigen::MatrixXd obs = model.observe(t, model.default_parameters(), a0, lp);
  const Eigen::VectorXd truth = model.tia_per_observation(model.default_parameters(), a0, lp);
  const auto names = model.observation_names();
  std::vector<TacSeries> series;
  for (size_t v = 0; v < names.size(); ++v) {
    TacSeries s;
    s.voi = names[v];
    s.time_h = t;
    s.activity_MBq = obs.col(static_cast<Eigen::Index>(v));
    s.volume_mL.assign(7, NAN);
    s.mass_g.assign(7, NAN);
    s.lines.assign(7, 0);
    series.push_back(s);
  }
  RunOptions o;
  o.data_dir = DATA;
  o.administered_MBq = a0;
  o.compartment_model = find_compartment_model("prrt_multiorgan_linear", DATA);
  const RunResult r = run_tac_table(series, o);
  for (size_t v = 0; v < names.size(); ++v) {
    CAPTURE(names[v]);
    const auto& fit = r.cycles[0].vois[v].fit;
    CHECK(fit.function == "compartment:" + model.name());
    CHECK(fit.tia_MBq_h == doctest::Approx(truth(static_cast<Eigen::Index>(v))).epsilon(1e-4));
  }
  CHECK_THROWS_AS(find_compartment_model("no_such_model", DATA), InputError);
}

TEST_CASE("for_each_patient_result: each patient's result is run_tac_table of that patient's series alone") {
  // Patients interleaved in the table and a patient's cycle 2 before its cycle 1: for_each_patient_result
  // groups the series by index, series_by_patient copies them; with previous-cycles kinetics (cycle 1
  // is the prior of cycle 2) and with individual fits, both give the same results, bit for bit.
  std::mt19937_64 rng(20261206);
  const Eigen::VectorXd t = (Eigen::VectorXd(4) << 4, 24, 48, 168).finished();
  std::vector<TacSeries> series;
  const std::vector<std::pair<std::string, int>> order = {{"P1", 2}, {"P2", 1}, {"P1", 1}, {"P3", 1},
                                                          {"P2", 2}, {"P3", 2}};
  for (const auto& [patient, cycle] : order)
    for (const auto& kind : cohort::voi_kinds()) {
      if (kind.name == "tumour") continue;
      const cohort::Tac tac = cohort::draw(rng, kind, t, 0.05);
      TacSeries s;
      s.patient = patient;
      s.cycle = cycle;
      s.voi = kind.name;
      s.time_h = tac.time_h;
      s.activity_MBq = tac.activity_MBq;
      s.volume_mL.assign(4, NAN);
      s.mass_g.assign(4, NAN);
      s.lines.assign(4, 0);
      series.push_back(s);
    }
  for (const Kinetics kinetics : {Kinetics::individual, Kinetics::previous_cycles}) {
    RunOptions o;
    o.data_dir = DATA;
    o.tac_path = "t.csv";
    o.administered_MBq = 7400;
    o.fit.kinetics = kinetics;
    const auto groups = series_by_patient(series);
    REQUIRE(groups.size() == 3);
    std::vector<std::string> each;
    for_each_patient_result(series, o, [&](const RunResult& r) { each.push_back(to_json(r, true).dump()); });
    REQUIRE(each.size() == 3);
    for (size_t k = 0; k < groups.size(); ++k) {
      CHECK(groups[k].front().patient == "P" + std::to_string(k + 1));  // patients in order of appearance
      CHECK(each[k] == to_json(run_tac_table(groups[k], o), true).dump());
    }
  }
}
