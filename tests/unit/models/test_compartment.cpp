// Compartment (ODE) models: the linear blood -> organ model against its closed form (methods.md
// §3.1), ODE TIAs of every shipped linear model against the linear-algebra integral, the joint
// multi-VOI fit on a synthetic patient, bad model files, and the receptor template (saturation,
// and an independent explicit integration of the same equations).
#include <doctest/doctest.h>

#include <boost/numeric/odeint.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "lutdose/models/compartment.h"
#include "../test_util.h"

using lutdose::models::CompartmentModel;
using lutdose::models::FitOptions;
using lutdose::models::ModelError;
using lutdose::models::VoiData;
using Eigen::MatrixXd;
using Eigen::VectorXd;

namespace {
const double LP = std::log(2.0) / (6.647 * 24.0);  // Lu-177, ICRP-107 half-life 6.647 d
const std::string FILES = std::string(LUTDOSE_TEST_SOURCE_DIR) + "/models/files/";
const double A0 = 7400.0;  // MBq

std::string message_of(const std::string& text) {
  try {
    CompartmentModel::from_string(text, "bad.json");
  } catch (const ModelError& e) {
    return e.what();
  }
  return "(no ModelError)";
}

// A valid blood -> organ model to break in the bad-file tests.
std::string good_model(const std::string& transfers, const std::string& observations,
                       const std::string& parameters) {
  return R"({ "name": "t", "compartments": [ { "name": "blood", "initial_fraction": 1 },
                                              { "name": "organ" } ],
              "transfers": )" + transfers + R"(, "observations": )" + observations +
         R"(, "parameters": )" + parameters + "}";
}
const std::string TRANSFERS =
    R"([ { "from": "blood", "to": "organ", "rate": "k_in" }, { "from": "organ", "to": null, "rate": "k_out" } ])";
const std::string OBSERVATIONS = R"([ { "voi": "organ", "compartments": ["organ"] } ])";
const std::string PARAMETERS =
    R"({ "k_in": { "value": 0.1, "unit": "1/h", "source": "test" },
         "k_out": { "value": 0.01, "unit": "1/h", "source": "test" } })";

std::map<std::string, VoiData> synthetic_patient(const CompartmentModel& m, const VectorXd& p,
                                                 double noise, std::mt19937_64* rng) {
  const VectorXd t = (VectorXd(7) << 0.5, 2, 6, 24, 48, 96, 168).finished();
  const MatrixXd y = m.observe(t, p, A0, LP);
  std::normal_distribution<double> z(0.0, 1.0);
  std::map<std::string, VoiData> data;
  for (const std::string voi : {"blood", "kidneys", "liver", "spleen", "tumour"}) {
    const int o = m.observation_index(voi);
    REQUIRE(o >= 0);
    VoiData d;
    for (Eigen::Index i = 0; i < t.size(); ++i) {
      const double yi = y(i, o) * (1.0 + (rng ? noise * z(*rng) : 0.0));
      d.t_h.push_back(t(i));
      d.activity_MBq.push_back(yi);
      d.sigma_MBq.push_back(0.05 * yi);  // proportional, from the data (methods.md §2.3)
    }
    data[voi] = d;
  }
  return data;
}
}  // namespace

TEST_CASE("compartment: blood -> organ reproduces the E2u closed form and TIA of methods.md §3.1") {
  const auto m = CompartmentModel::from_file(FILES + "blood_organ_linear.json");
  REQUIRE(m.is_linear());
  const VectorXd p = m.default_parameters();
  const double kb = p(m.parameter_index("k_b")), kin = p(m.parameter_index("k_in")),
               kout = p(m.parameter_index("k_out"));
  const VectorXd t = VectorXd::LinSpaced(60, -1.0, 2.7).unaryExpr([](double e) {
    return std::pow(10.0, e);  // 0.1 h .. 500 h, log-spaced
  });
  const MatrixXd x = m.simulate(t, p, A0, LP);
  const int blood = m.compartment_index("blood"), organ = m.compartment_index("organ");
  for (Eigen::Index i = 0; i < t.size(); ++i) {
    CAPTURE(t(i));
    const double e_b = std::exp(-(kb + LP) * t(i)), e_o = std::exp(-(kout + LP) * t(i));
    // 1e-8: the solver's relative tolerance is 1e-10 per step; the global error stays below
    // 1e-8 out to 500 h (where the organ holds ~2e-3 of its peak).
    CHECK(x(i, organ) == doctest::Approx(A0 * kin / (kout - kb) * (e_b - e_o)).epsilon(1e-8));
    CHECK(x(i, blood) == doctest::Approx(A0 * e_b).epsilon(1e-8));
  }
  // The observation of the organ VOI is the organ compartment.
  const MatrixXd obs = m.observe(t, p, A0, LP);
  CHECK(obs(10, m.observation_index("organ")) == x(10, organ));
  // TIA: ODE augmented with the running integrals, stopped at 1e-12 of A0 left.
  const VectorXd tia = m.tia_per_compartment(p, A0, LP);
  // 1e-8: solver tolerance 1e-10; the truncated tail is < 1e-12 A0 / lambda_p ~ 2e-10 A0 h.
  CHECK(tia(organ) == doctest::Approx(A0 * kin / ((kb + LP) * (kout + LP))).epsilon(1e-8));
  CHECK(tia(blood) == doctest::Approx(A0 / (kb + LP)).epsilon(1e-8));
  // Times in any order, repeated, and t = 0.
  const VectorXd t2 = (VectorXd(4) << 24.0, 0.0, 2.0, 24.0).finished();
  const MatrixXd x2 = m.simulate(t2, p, A0, LP);
  CHECK(x2(1, blood) == A0);
  CHECK(x2(0, organ) == x2(3, organ));
  CHECK(x2(0, organ) == doctest::Approx(A0 * kin / (kout - kb) *
                                        (std::exp(-(kb + LP) * 24) - std::exp(-(kout + LP) * 24)))
                            .epsilon(1e-8));
}

TEST_CASE("compartment: ODE TIA of every shipped linear model equals -(K - lambda_p I)^-1 x0") {
  int n_linear = 0;
  for (const auto& entry : std::filesystem::directory_iterator(FILES)) {
    if (entry.path().extension() != ".json") continue;
    const auto m = CompartmentModel::from_file(entry.path().string());
    CAPTURE(m.name());
    if (!m.is_linear()) {
      CHECK_THROWS_AS(m.linear_tia_eigen(m.default_parameters(), A0, LP), ModelError);
      continue;
    }
    ++n_linear;
    const VectorXd p = m.default_parameters();
    const VectorXd ode = m.tia_per_compartment(p, A0, LP);
    const VectorXd exact = m.linear_tia_eigen(p, A0, LP);
    for (int c = 0; c < m.n_compartments(); ++c) {
      CAPTURE(m.compartments()[c].name);
      // 1e-8: as above (solver tolerance 1e-10, truncated tail < 1e-12 A0 / lambda_p)
      CHECK(ode(c) == doctest::Approx(exact(c)).epsilon(1e-8));
    }
    // VOI TIAs are the sums of their compartments' TIAs. 1e-12: rounding of a few additions
    // (the two calls repeat the same integration).
    const VectorXd voi = m.tia_per_observation(p, A0, LP);
    const VectorXd sums = m.observation_matrix() * ode;
    for (Eigen::Index v = 0; v < voi.size(); ++v)
      CHECK(voi(v) == doctest::Approx(sums(v)).epsilon(1e-12));
    // The trajectory itself against the matrix exponential. 1e-8 relative to A0: the solver's
    // absolute tolerance is 1e-15 A0 and relative 1e-10 per step.
    const VectorXd t = (VectorXd(6) << 0.5, 2, 6, 24, 96, 168).finished();
    const MatrixXd diff = m.simulate(t, p, A0, LP) - m.linear_simulate_expm(t, p, A0, LP);
    CHECK(diff.cwiseAbs().maxCoeff() < 1e-8 * A0);
  }
  CHECK(n_linear >= 2);
}

TEST_CASE("compartment: joint 5-VOI fit recovers the multi-organ model's rates (noise-free)") {
  const auto m = CompartmentModel::from_file(FILES + "prrt_multiorgan_linear.json");
  const VectorXd truth = m.default_parameters();
  const auto data = synthetic_patient(m, truth, 0.0, nullptr);
  FitOptions o;
  o.start = 1.5 * truth;  // every rate 50 % off
  o.relative_sigmas = true;
  const auto f = fit(m, data, A0, LP, o);
  CHECK(f.converged);
  CHECK(f.flags.empty());
  CHECK(f.n_points == 35);
  REQUIRE(f.free_parameters.size() == 9);
  for (size_t j = 0; j < f.free_parameters.size(); ++j) {
    const int i = m.parameter_index(f.free_parameters[j]);
    CAPTURE(f.free_parameters[j]);
    // 1 %: the brief's criterion; noise-free data leave only the ODE tolerance (1e-9)
    CHECK(f.parameters(i) == doctest::Approx(truth(i)).epsilon(0.01));
  }
  const VectorXd tia_true = m.tia_per_observation(truth, A0, LP);
  for (size_t v = 0; v < f.vois.size(); ++v)
    CHECK(f.tia_voi_MBq_h(static_cast<Eigen::Index>(v)) ==
          doctest::Approx(tia_true(static_cast<Eigen::Index>(v))).epsilon(0.01));
  CHECK(f.fitted_MBq.at("kidneys").size() == 7);
}

// 5 % proportional noise on 7 points leaves a standard uncertainty of 1 % (blood) to 3 %
// (tumour) on the fitted TIAs (an offline study of 100 seeded patients: empirical SD 1.0 / 2.5 /
// 2.6 / 2.5 / 3.1 % for blood / kidneys / liver / spleen / tumour, reported uncertainties 1.0 /
// 2.2 / 2.7 / 2.5 / 3.3 %, bias < 1 %). "Every TIA within 3 %" therefore holds for only about a
// quarter of single patients (this seed's tumour is 3.7 % off) and is not asserted per patient:
// the single patient is checked against its reported uncertainty, and the 3 % bound applies to
// the mean error of a seeded cohort.
TEST_CASE("compartment: joint 5-VOI fit with 5 % proportional noise: TIAs within their uncertainty") {
  const auto m = CompartmentModel::from_file(FILES + "prrt_multiorgan_linear.json");
  const VectorXd truth = m.default_parameters();
  std::mt19937_64 rng(20240613);
  const auto data = synthetic_patient(m, truth, 0.05, &rng);
  FitOptions o;
  o.start = 1.5 * truth;
  o.relative_sigmas = true;
  const auto f = fit(m, data, A0, LP, o);
  CHECK(f.converged);
  CHECK(f.starts == 3);
  const VectorXd tia_true = m.tia_per_observation(truth, A0, LP);
  for (const std::string voi : {"blood", "kidneys", "liver", "spleen", "tumour"}) {
    CAPTURE(voi);
    const auto v = m.observation_index(voi);
    const double error = f.tia_voi_MBq_h(v) - tia_true(v);
    CAPTURE(error / tia_true(v));
    CAPTURE(f.tia_voi_u_MBq_h(v) / tia_true(v));
    // 3 standard uncertainties: a 0.3 % chance per VOI for a calibrated uncertainty
    CHECK(std::abs(error) < 3.0 * f.tia_voi_u_MBq_h(v));
    // the uncertainty itself is at the few-% level expected from 5 % noise (see above)
    CHECK(f.tia_voi_u_MBq_h(v) > 0.005 * tia_true(v));
    CHECK(f.tia_voi_u_MBq_h(v) < 0.05 * tia_true(v));
  }
  // chi^2 of 26 degrees of freedom with relative sigmas of the right size: chi^2/dof within
  // [0.3, 2.5] holds with probability > 0.999.
  CHECK(f.reduced_chi_square > 0.3);
  CHECK(f.reduced_chi_square < 2.5);
  CHECK(f.standard_errors.allFinite());
}

TEST_CASE("compartment: 20 seeded noisy patients: TIA bias within 3 %, uncertainties calibrated") {
  const auto m = CompartmentModel::from_file(FILES + "prrt_multiorgan_linear.json");
  const VectorXd truth = m.default_parameters();
  const VectorXd tia_true = m.tia_per_observation(truth, A0, LP);
  const std::vector<std::string> vois{"blood", "kidneys", "liver", "spleen", "tumour"};
  const int n_patients = 20;
  std::vector<double> mean_error(vois.size(), 0.0), mean_z2(vois.size(), 0.0);
  std::mt19937_64 rng(7);
  for (int k = 0; k < n_patients; ++k) {
    const auto data = synthetic_patient(m, truth, 0.05, &rng);
    FitOptions o;
    o.start = 1.5 * truth;
    o.relative_sigmas = true;
    const auto f = fit(m, data, A0, LP, o);
    REQUIRE(f.converged);
    for (size_t i = 0; i < vois.size(); ++i) {
      const auto v = m.observation_index(vois[i]);
      const double e = f.tia_voi_MBq_h(v) - tia_true(v);
      mean_error[i] += e / tia_true(v) / n_patients;
      mean_z2[i] += (e / f.tia_voi_u_MBq_h(v)) * (e / f.tia_voi_u_MBq_h(v)) / n_patients;
    }
  }
  for (size_t i = 0; i < vois.size(); ++i) {
    CAPTURE(vois[i]);
    CAPTURE(mean_error[i]);
    CAPTURE(mean_z2[i]);
    // The brief's 3 %, as a bound on the bias: the mean of 20 errors has an SD of at most
    // 3.1 % / sqrt(20) = 0.7 %, so 3 % is > 3 SD beyond the < 1 % bias seen offline (25 other
    // seeded cohorts of 20: |mean error| <= 1.8 %).
    CHECK(std::abs(mean_error[i]) < 0.03);
    // Calibration: the mean of (error / reported u)^2 is ~1 for calibrated uncertainties. With
    // u estimated from each patient's own data it spreads wider than chi^2_20 / 20: 25 other
    // seeded cohorts of 20 gave 0.42 .. 2.47 over the five VOIs (median 1.1). [0.3, 3.0]
    // catches an uncertainty wrong by a factor of ~1.7 either way.
    CHECK(mean_z2[i] > 0.3);
    CHECK(mean_z2[i] < 3.0);
  }
}

TEST_CASE("compartment: bad fit input is a ModelError naming the problem") {
  const auto m = CompartmentModel::from_file(FILES + "blood_organ_linear.json");
  std::map<std::string, VoiData> data{{"kidney", {{1, 2, 3}, {1, 2, 3}, {1, 1, 1}}}};
  try {
    fit(m, data, A0, LP);
    FAIL("no ModelError");
  } catch (const ModelError& e) {
    CHECK(std::string(e.what()).find("'kidney'") != std::string::npos);
  }
  data = {{"organ", {{1, 2, 3}, {1, 2, 3}, {1, 0, 1}}}};
  CHECK_THROWS_AS(fit(m, data, A0, LP), ModelError);  // sigma 0
  data = {{"organ", {{1, 2, 3}, {1, 2, 3}, {1, 1, 1}}}};
  FitOptions o;
  o.free_parameters = {"k_x"};
  CHECK_THROWS_AS(fit(m, data, A0, LP, o), ModelError);  // unknown parameter
  o.free_parameters = {"k_in"};
  CHECK(fit(m, data, A0, LP, o).n_points == 3);
}

TEST_CASE("compartment: bad model files are ModelErrors naming the JSON path and value") {
  std::string msg;
  SUBCASE("unknown compartment in a transfer") {
    msg = message_of(good_model(
        R"([ { "from": "blood", "to": "kidny", "rate": "k_in" }, { "from": "organ", "to": null, "rate": "k_out" } ])",
        OBSERVATIONS, PARAMETERS));
    CHECK(msg.find("bad.json: transfers[0].to is '\"kidny\"'") != std::string::npos);
    CHECK(msg.find("unknown compartment") != std::string::npos);
  }
  SUBCASE("unknown compartment in an observation") {
    msg = message_of(good_model(TRANSFERS, R"([ { "voi": "organ", "compartments": ["organ", "liver"] } ])",
                                PARAMETERS));
    CHECK(msg.find("observations[0].compartments[1] is '\"liver\"'") != std::string::npos);
  }
  SUBCASE("negative rate value") {
    msg = message_of(good_model(TRANSFERS, OBSERVATIONS,
                                R"({ "k_in": { "value": -0.1, "unit": "1/h", "source": "test" },
                                     "k_out": { "value": 0.01, "unit": "1/h", "source": "test" } })"));
    CHECK(msg.find("parameters.k_in.value is '-0.1'") != std::string::npos);
    msg = message_of(good_model(
        R"([ { "from": "blood", "to": "organ", "rate": "k_in" }, { "from": "organ", "to": null, "rate": "k_out" },
             { "from": "blood", "to": null, "value_per_h": -2 } ])",
        OBSERVATIONS, PARAMETERS));
    CHECK(msg.find("transfers[2].value_per_h is '-2'") != std::string::npos);
    // A difference of parameters that is negative at the file's values.
    msg = message_of(good_model(
        R"([ { "from": "blood", "to": "organ", "rate": "k_in" }, { "from": "organ", "to": null, "rate": "k_out - k_in" } ])",
        OBSERVATIONS, PARAMETERS));
    CHECK(msg.find("transfers[1].rate is 'k_out - k_in' = -0.09") != std::string::npos);
  }
  SUBCASE("missing parameter") {
    msg = message_of(good_model(
        R"([ { "from": "blood", "to": "organ", "rate": "k_in" }, { "from": "organ", "to": null, "rate": "k_uot" } ])",
        OBSERVATIONS, R"({ "k_in": { "value": 0.1, "unit": "1/h", "source": "test" } })"));
    CHECK(msg.find("transfers[1].rate is '\"k_uot\"'") != std::string::npos);
    CHECK(msg.find("missing parameter 'k_uot'") != std::string::npos);
  }
  SUBCASE("duplicate names") {
    msg = message_of(R"({ "name": "t", "compartments": [ { "name": "blood", "initial_fraction": 1 },
                                                        { "name": "blood" } ],
                          "transfers": [], "observations": [ { "voi": "b", "compartments": ["blood"] },
                                                             { "voi": "b", "compartments": ["blood"] } ] })");
    CHECK(msg.find("compartments[1].name is 'blood'") != std::string::npos);
    CHECK(msg.find("observations[1].voi is 'b'") != std::string::npos);
  }
  SUBCASE("several problems at once, a wrong unit, an unknown key, a binding without peptide") {
    msg = message_of(R"J({ "name": "t", "compartmnets": [],
                          "compartments": [ { "name": "blood", "initial_fraction": 1 }, { "name": "f" }, { "name": "b" } ],
                          "transfers": [ { "from": "blood", "to": "f", "rate": "k" } ],
                          "observations": [ { "voi": "t", "compartments": ["f", "b"] } ],
                          "binding": [ { "free": "f", "bound": "b", "receptor_total_nmol": "R0",
                                         "k_on_per_nmol_h": "kon", "k_off_per_h": "k" } ],
                          "parameters": { "k": { "value": 1, "unit": "1/h", "source": "x" },
                                          "R0": { "value": 1, "unit": "1/h", "source": "x" },
                                          "kon": { "value": 1, "unit": "1/(nmol h)", "source": "x" } } })J");
    CHECK(msg.find("compartmnets is an unknown key") != std::string::npos);
    CHECK(msg.find("parameters.R0.unit is '1/h'; expected 'nmol'") != std::string::npos);
    CHECK(msg.find("peptide is missing") != std::string::npos);
  }
  SUBCASE("not JSON, and a file that does not exist") {
    CHECK(message_of("{ \"name\": ").find("bad.json: not valid JSON") != std::string::npos);
    CHECK_THROWS_AS(CompartmentModel::from_file(FILES + "no_such_model.json"), ModelError);
  }
  CAPTURE(msg);
}

TEST_CASE("compartment: from_file, inline rate declaration, parameters_with") {
  const std::string path = lutdose::test::write_temp(
      good_model(R"([ { "from": "blood", "to": "organ", "rate": "k_in", "value_per_h": 0.1 },
                      { "from": "organ", "to": null, "value_per_h": 0.01 } ])",
                 OBSERVATIONS, "{}"));
  const auto m = CompartmentModel::from_file(path);
  std::remove(path.c_str());
  REQUIRE(m.n_parameters() == 1);
  CHECK(m.parameters()[0].name == "k_in");
  CHECK(m.parameters()[0].value == 0.1);
  const VectorXd p = m.parameters_with({{"k_in", 0.2}});
  CHECK(p(0) == 0.2);
  CHECK_THROWS_AS(m.parameters_with({{"k_on", 0.2}}), ModelError);
  CHECK_THROWS_AS(m.parameters_with({{"k_in", -0.2}}), ModelError);
  // Organ TIA with a fixed release rate: A0 k_in / ((k_in + lp)(k_out + lp)).
  const VectorXd tia = m.tia_per_compartment(p, A0, LP);
  // 1e-8: as for the shipped models
  CHECK(tia(1) == doctest::Approx(A0 * 0.2 / ((0.2 + LP) * (0.01 + LP))).epsilon(1e-8));
}

TEST_CASE("compartment: the receptor template loads, simulates and saturates") {
  const auto m = CompartmentModel::from_file(FILES + "receptor_pbpk_template.json");
  CHECK_FALSE(m.is_linear());
  CHECK(m.bindings().size() == 2);
  for (const auto& par : m.parameters()) {
    CAPTURE(par.name);
    const bool tagged = par.source.find("[unsourced]") != std::string::npos ||
                        par.source.find("[derived]") != std::string::npos;
    CHECK(tagged);
  }
  const VectorXd t = (VectorXd(6) << 0.5, 4, 24, 48, 96, 168).finished();
  const VectorXd p = m.default_parameters();
  const MatrixXd x = m.simulate(t, p, A0, LP);
  CHECK(x.allFinite());
  CHECK(x.minCoeff() > -1e-9 * A0);  // no negative activity beyond the solver tolerance
  const int bound = m.compartment_index("tumour_bound");
  CHECK(x(1, bound) > 0.0);

  // Doubling the cold peptide occupies more receptors with unlabelled peptide: less of the
  // administered activity is bound in the tumour, at every time and in the TIA.
  const int cold = m.peptide_cold_parameter();
  VectorXd p2 = p;
  p2(cold) *= 2.0;
  const MatrixXd x2 = m.simulate(t, p2, A0, LP);
  for (Eigen::Index i = 0; i < t.size(); ++i) {
    CAPTURE(t(i));
    CHECK(x2(i, bound) < x(i, bound));
  }
  const VectorXd tia = m.tia_per_compartment(p, A0, LP), tia2 = m.tia_per_compartment(p2, A0, LP);
  CHECK(tia2(bound) < tia(bound));
  // Tracer limit: with almost no peptide the binding is linear in the activity, so the bound
  // fraction no longer depends on the peptide amount.
  VectorXd p3 = p, p4 = p;
  p3(m.peptide_hot_parameter()) = 1e-6;
  p3(cold) = 1e-6;
  p4(m.peptide_hot_parameter()) = 2e-6;
  p4(cold) = 2e-6;
  // 1e-5: the occupancy changes by ~1e-6 nmol / 2 nmol between the two
  CHECK(m.simulate(t, p3, A0, LP)(2, bound) ==
        doctest::Approx(m.simulate(t, p4, A0, LP)(2, bound)).epsilon(1e-5));
}

TEST_CASE("compartment: the non-linear solution agrees with an independent explicit integration") {
  // The receptor template's equations written out here from the file's structure and integrated
  // with Boost.Odeint's explicit Dormand-Prince method (no Jacobian): checks the library's
  // analytic Jacobian and binding terms through the Rosenbrock solution.
  const auto m = CompartmentModel::from_file(FILES + "receptor_pbpk_template.json");
  const VectorXd p = m.default_parameters();
  const MatrixXd M = m.rate_matrix_per_h(p, LP);
  const double n_total = p(m.peptide_hot_parameter()) + p(m.peptide_cold_parameter());
  using State = std::vector<double>;
  auto rhs = [&](const State& u, State& du, double t) {
    const Eigen::Map<const VectorXd> uu(u.data(), static_cast<Eigen::Index>(u.size()));
    Eigen::Map<VectorXd> d(du.data(), static_cast<Eigen::Index>(du.size()));
    d = M * uu;
    for (const auto& b : m.bindings()) {
      const double bound_nmol = u[b.bound_compartment] * n_total * std::exp(LP * t);
      const double j = p(b.k_on_per_nmol_h) * u[b.free_compartment] *
                           (p(b.receptor_total_nmol) - bound_nmol) -
                       p(b.k_off_per_h) * u[b.bound_compartment];
      du[b.free_compartment] -= j;
      du[b.bound_compartment] += j;
    }
  };
  const std::vector<double> times{0.0, 0.5, 4, 24, 96};
  State u(static_cast<size_t>(m.n_compartments()));
  for (int c = 0; c < m.n_compartments(); ++c) u[c] = m.compartments()[c].initial_fraction;
  MatrixXd ref(static_cast<Eigen::Index>(times.size()), m.n_compartments());
  Eigen::Index row = 0;
  namespace ode = boost::numeric::odeint;
  ode::integrate_times(ode::make_dense_output(1e-13, 1e-11, ode::runge_kutta_dopri5<State>()), rhs,
                       u, times.begin(), times.end(), 1e-4, [&](const State& s, double) {
                         for (int c = 0; c < m.n_compartments(); ++c) ref(row, c) = A0 * s[c];
                         ++row;
                       });
  const VectorXd t = Eigen::Map<const VectorXd>(times.data(), 5);
  const MatrixXd x = m.simulate(t, p, A0, LP);
  // 1e-8 A0: both solvers run at relative tolerances of 1e-10..1e-11.
  CHECK((x - ref).cwiseAbs().maxCoeff() < 1e-8 * A0);
}

TEST_CASE("compartment: the analytic Jacobian of the receptor template equals finite differences") {
  // Rosenbrock's error control compensates for a wrong Jacobian (the solution stays accurate,
  // only slower), so the Jacobian is checked directly against the right-hand side.
  const auto m = CompartmentModel::from_file(FILES + "receptor_pbpk_template.json");
  const VectorXd p = m.default_parameters();
  const VectorXd times = (VectorXd(3) << 0.5, 4.0, 24.0).finished();
  const MatrixXd states = m.simulate(times, p, A0, LP);
  for (Eigen::Index k = 0; k < times.size(); ++k) {
    CAPTURE(times(k));
    const VectorXd x = states.row(k).transpose();
    VectorXd d_dt;
    const MatrixXd J = m.jacobian_per_h(x, times(k), p, A0, LP, &d_dt);
    const double scale = J.cwiseAbs().maxCoeff();
    for (int j = 0; j < m.n_compartments(); ++j) {
      const double h = 1e-4 * std::max(std::abs(x(j)), 1e-3 * A0);
      VectorXd xp = x, xm = x;
      xp(j) += h;
      xm(j) -= h;
      const VectorXd column =
          (m.rhs_MBq_per_h(xp, times(k), p, A0, LP) - m.rhs_MBq_per_h(xm, times(k), p, A0, LP)) /
          (2 * h);
      // 1e-8 of the largest entry: the right-hand side is at most quadratic in x, so central
      // differences are exact up to rounding (~1e-16 / 1e-4 relative).
      for (int i = 0; i < m.n_compartments(); ++i)
        CHECK(std::abs(column(i) - J(i, j)) < 1e-8 * scale);
    }
    const double ht = 1e-3;
    const VectorXd dt_fd = (m.rhs_MBq_per_h(x, times(k) + ht, p, A0, LP) -
                            m.rhs_MBq_per_h(x, times(k) - ht, p, A0, LP)) /
                           (2 * ht);
    // 1e-6 relative to the largest entry: central differences of e^(lambda_p t), error
    // (lambda_p ht)^2 / 6 ~ 3e-12, plus rounding.
    CHECK((dt_fd - d_dt).cwiseAbs().maxCoeff() <= 1e-6 * d_dt.cwiseAbs().maxCoeff() + 1e-12);
    CHECK(d_dt.cwiseAbs().maxCoeff() > 0.0);  // the binding terms depend on time
  }
  // The linear part: the Jacobian of a linear model is K - lambda_p I.
  const auto lin = CompartmentModel::from_file(FILES + "prrt_multiorgan_linear.json");
  const VectorXd pl = lin.default_parameters();
  const VectorXd x0 = lin.initial_activity_MBq(A0);
  const MatrixXd J_lin = lin.jacobian_per_h(x0, 1.0, pl, A0, LP);
  CHECK((J_lin - lin.rate_matrix_per_h(pl, LP)).cwiseAbs().maxCoeff() == 0.0);
}

TEST_CASE("compartment: every ODE solve has a step limit (issue 10 finding 7)") {
  // With a step limit of 5, the TIA integration (thousands of hours with steps of hours) and the
  // sampled solution over a week must stop with a ModelError instead of running on.
  const auto m = CompartmentModel::from_file(FILES + "blood_organ_linear.json");
  lutdose::models::SolverOptions few;
  few.max_steps = 5;
  const VectorXd p = m.default_parameters();
  CHECK_THROWS_AS(m.tia_per_compartment(p, A0, LP, few), ModelError);
  const VectorXd t = (VectorXd(2) << 1.0, 168.0).finished();
  CHECK_THROWS_AS(m.simulate(t, p, A0, LP, few), ModelError);
  CHECK_NOTHROW(m.tia_per_compartment(p, A0, LP));  // the default limit is far above what it needs
}

TEST_CASE("compartment: model files beyond the size limits are refused at once (issue 10 finding 6)") {
  // 20 000 compartments held 3 GB (a dense matrix of rates) for 47 s before an unrelated message;
  // 3000 compartments with transfers ran for minutes. Now refused before any matrix is built.
  std::string many = R"({ "name": "t", "compartments": [ { "name": "blood", "initial_fraction": 1 })";
  for (int i = 0; i < 20000; ++i) many += R"(, { "name": "c)" + std::to_string(i) + R"(" })";
  many += R"(], "transfers": [], "observations": [ { "voi": "b", "compartments": ["blood"] } ] })";
  const std::string why = message_of(many);
  CHECK(why.find("compartments") != std::string::npos);
  CHECK(why.find("100") != std::string::npos);
  // (no clock here: unit tests are not timed; a refusal that came only after building the model
  // would show as a slow test, and CTest's TIMEOUT ends a hang)
  // a name of 300 characters (identifiers are bounded like every other name)
  const std::string long_name = message_of(good_model(
      R"([ { "from": "blood", "to": "organ", "rate": "k" } ])", R"([ { "voi": "o", "compartments": ["organ"] } ])",
      R"({ ")" + std::string(300, 'k') + R"(": { "value": 0.1, "unit": "1/h", "source": "s" } })"));
  CHECK(long_name.find("64") != std::string::npos);
  CHECK(long_name.size() < 2000);
  // a compartment name of 1 MB: it was quoted whole in each message naming the compartments
  // (15 MB of message for a 5 MB name); the bound allows a few quoted values of 200 bytes
  const std::string huge = message_of(R"({ "name": "t", "compartments": [ { "name": "blood", "initial_fraction": 1 },
      { "name": ")" + std::string(1000000, 'x') + R"(" } ], "transfers": [ { "from": "blood", "to": "organ", "rate": "k" } ],
      "observations": [ { "voi": "o", "compartments": ["organ"] } ] })");
  CHECK(huge.size() < 5000);
}
