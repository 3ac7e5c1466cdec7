// A compartment model as the structural model of a population (kinetics/compartment_population.h):
// recovery of known population parameters from a seeded synthetic cohort drawn here (the truth is
// drawn by the test, the activities simulated with the model and multiplied by log-normal noise),
// the MAP of sparse cycles against the individual joint fit (models::fit) of the same TACs, and
// bad inputs.
#include <doctest/doctest.h>

#include <algorithm>
#include <boost/random/mersenne_twister.hpp>
#include <boost/random/normal_distribution.hpp>
#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "lutdose/error.h"
#include "lutdose/kinetics/compartment_population.h"
#include "lutdose/models/compartment.h"

using namespace lutdose;
using Eigen::VectorXd;

namespace {

const double LP = std::log(2.0) / (6.647 * 24.0);  // Lu-177, ICRP-107 half-life 6.647 d
const double A0_MBQ = 7400;                         // a standard 177Lu-DOTATATE cycle

const models::CompartmentModel& blood_organ() {
  static const auto m =
      models::CompartmentModel::from_file(std::string(LUTDOSE_TEST_SOURCE_DIR) + "/models/files/blood_organ_linear.json");
  return m;
}

// The population's truth: the file's values of k_b, k_in, k_out as theta, and an inter-patient SD of
// 0.2, 0.3, 0.2 on their logarithms (a 20-30 % spread, of the order of PRRT organ kinetics).
const VectorXd& omega_sd_true() {
  static const VectorXd w = (VectorXd(3) << 0.2, 0.3, 0.2).finished();
  return w;
}
constexpr double B_TRUE = 0.10;  // relative SD of the measured activities

struct Cohort {
  std::vector<CompartmentUnit> units;
  std::vector<VectorXd> p_true;   // each patient's model parameters
  std::vector<double> organ_tia;  // each patient's true organ TIA [MBq h]
};

// The combined error model's truth (methods.md §2.3): A = f + e, e ~ N(0, SIGMA0_TRUE_MBQ^2 + (B_TRUE f)^2).
// 2 MBq: of the order of a SPECT VOI's noise floor, and about the blood's activity at 24 h (1.8 MBq in
// blood_organ_linear), so that readings there are near zero or below, and the organ's at 168 h (19 MBq),
// where the additive part is a third of the variance: both parameters are seen by the data.
constexpr double SIGMA0_TRUE_MBQ = 2.0;

// One TAC of `voi` at `times` from the patient's simulated curve, times e^(b z) or, with `sigma0_MBq`
// finite, plus the combined model's e (SIGMA0_TRUE_MBQ's comment).
TacSeries measured(const std::string& id, const std::string& voi, const std::vector<double>& times,
                   const VectorXd& p, boost::random::mt19937_64& rng, double sigma0_MBq) {
  boost::random::normal_distribution<double> z(0.0, 1.0);
  const auto& m = blood_organ();
  TacSeries s;
  s.patient = id;
  s.voi = voi;
  s.time_h = Eigen::Map<const VectorXd>(times.data(), static_cast<Eigen::Index>(times.size()));
  // the truth accurate relative to itself at any size (1e-10 relative, no absolute floor above 1e-300
  // of A0: the blood at 168 h is 6e-26 of A0)
  models::SolverOptions truth;
  truth.abs_tol_fraction = 1e-300;
  const VectorXd a = m.observe(s.time_h, p, A0_MBQ, LP, truth).col(m.observation_index(voi));
  s.activity_MBq = a;
  for (Eigen::Index j = 0; j < a.size(); ++j)
    s.activity_MBq(j) = std::isfinite(sigma0_MBq)
                            ? a(j) + std::sqrt(sigma0_MBq * sigma0_MBq + B_TRUE * B_TRUE * a(j) * a(j)) * z(rng)
                            : a(j) * std::exp(B_TRUE * z(rng));
  return s;
}

// n patients: ln k ~ N(ln k_file, Omega) for k_b, k_in, k_out (the model's free parameters, in the
// model's alphabetical order), Omega with the SDs omega_sd_true and the correlations `corr` (the
// identity by default: independent), organ and blood measured at their schedules (with the combined
// error model when `sigma0_MBq` is finite, else the proportional one).
Cohort cohort(int n, unsigned seed, const std::vector<double>& organ_times, const std::vector<double>& blood_times,
              const Eigen::Matrix3d& corr = Eigen::Matrix3d::Identity(),
              double sigma0_MBq = std::numeric_limits<double>::quiet_NaN()) {
  boost::random::mt19937_64 rng(seed);
  boost::random::normal_distribution<double> z(0.0, 1.0);
  const auto& m = blood_organ();
  const Eigen::Matrix3d l = Eigen::LLT<Eigen::Matrix3d>(corr).matrixL();  // L z has the correlations corr
  Cohort c;
  for (int i = 0; i < n; ++i) {
    VectorXd p = m.default_parameters();
    Eigen::Vector3d draws;
    for (Eigen::Index k = 0; k < 3; ++k) draws(k) = z(rng);  // in the order of 0.18's independent draws
    const Eigen::Vector3d eta = omega_sd_true().cwiseProduct(l * draws);
    for (Eigen::Index k = 0; k < 3; ++k) p(k) *= std::exp(eta(k));
    const std::string id = "P" + std::to_string(i + 1);
    CompartmentUnit u;
    u.administered_MBq = A0_MBQ;
    u.tacs.push_back(measured(id, "organ", organ_times, p, rng, sigma0_MBq));
    if (!blood_times.empty()) u.tacs.push_back(measured(id, "blood", blood_times, p, rng, sigma0_MBq));
    c.units.push_back(u);
    c.p_true.push_back(p);
    c.organ_tia.push_back(m.tia_per_observation(p, A0_MBQ, LP)(m.observation_index("organ")));
  }
  return c;
}

// Organ at 1, 4, 24, 48, 96, 168 h (the schedule of issue 15's six-scan cohorts); blood sampled at
// the first three (at 48 h the blood holds e^-16.6, 6e-8, of A0: below any measurement).
const std::vector<double> ORGAN_RICH{1, 4, 24, 48, 96, 168}, BLOOD_RICH{1, 4, 24};

PopulationOptions learning_options(bool sampled = true) {
  PopulationOptions o;
  o.threads = 1;
  o.sampled_e_step = sampled;
  return o;
}

// The population learned from 120 rich patients (seed 15) with the default estimator (the sampled
// E-step after the Laplace EM: about 9 s in Release) for the recovery test.
CompartmentPopulation learned() {
  const Cohort c = cohort(120, 15, ORGAN_RICH, BLOOD_RICH);
  return learn_compartment_population(blood_organ(), "sha", c.units, LP, learning_options(), {}, "cohort");
}

// The same cohort learned with the Laplace E-step only (about 2 s; theta and Omega within 0.01 and
// 3 % of the sampled estimates on this cohort), the prior of the MAP tests: the MAP does not depend
// on how its population was learned.
const CompartmentPopulation& learned_laplace() {
  static const CompartmentPopulation pop = [] {
    const Cohort c = cohort(120, 15, ORGAN_RICH, BLOOD_RICH);
    return learn_compartment_population(blood_organ(), "sha", c.units, LP, learning_options(false), {}, "cohort");
  }();
  return pop;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

}  // namespace

TEST_CASE("compartment population: recovery of theta, Omega and b from 120 seeded patients") {
  const auto pop = learned();
  const auto& m = pop.model;
  CHECK(pop.free_parameters == std::vector<std::string>{"k_b", "k_in", "k_out"});
  CHECK(m.phi_names == std::vector<std::string>{"log_k_b", "log_k_in", "log_k_out"});
  CHECK(m.n_patients == 120);
  CHECK(m.n_observations == 120 * 9);
  CHECK(m.converged);
  MESSAGE("theta ", m.theta.transpose(), " se ", m.theta_se.transpose(), " omega ", m.omega.diagonal().transpose(),
          " log_omega_se ", m.log_omega_se.transpose(), " b ", m.sigma_log, " iterations ", m.iterations);
  const VectorXd p0 = blood_organ().default_parameters();
  for (Eigen::Index k = 0; k < 3; ++k) {
    INFO("parameter ", pop.free_parameters[static_cast<size_t>(k)]);
    // fixed effects within 3 of their standard errors (the acceptance of issue 15)
    CHECK(std::abs(m.theta(k) - std::log(p0(k))) < 3 * m.theta_se(k));
    // Omega_kk within 3 standard errors of ln Omega_kk (log_omega_se of the linearised model): the
    // variance of 120 draws alone has a relative SE of sqrt(2/120) = 0.13, so the tolerance is the
    // estimate's own sampling error, as for theta
    CHECK(std::abs(std::log(m.omega(k, k)) - 2 * std::log(omega_sd_true()(k))) < 3 * m.log_omega_se(k));
  }
  // b from 120 x 9 points: ln b within 3 of its standard error 1 / sqrt(2 d)
  CHECK(std::abs(std::log(m.sigma_log / B_TRUE)) < 3 * m.log_sigma_log_se);
  CHECK(std::isfinite(m.minus2_log_likelihood));
  CHECK(std::isfinite(m.bic));
}

// Issue 15 "honest uncertainty" (0.20): a compartment population with a full Omega (--omega full)
// learned from a seeded cohort whose ln k_in and ln k_out are correlated (0.6; k_b independent):
// theta, the variances and the three correlations recovered within 3 of their standard errors. The
// Laplace E-step (about 3 s in Release for 80 patients; the sampled one is 4 times slower): its
// estimates are within 0.01 (theta) and 3 % (Omega) of the sampled ones on this model's cohorts
// (learned_laplace), far inside the tolerances.
TEST_CASE("compartment population: recovery of a full Omega (correlated k_in and k_out) from 80 seeded patients") {
  const double rho_true = 0.6;
  Eigen::Matrix3d corr = Eigen::Matrix3d::Identity();
  corr(1, 2) = corr(2, 1) = rho_true;
  const Cohort c = cohort(80, 1507, ORGAN_RICH, BLOOD_RICH, corr);
  PopulationOptions o = learning_options(false);
  o.omega_structure = OmegaStructure::full;
  const auto pop = learn_compartment_population(blood_organ(), "sha", c.units, LP, o, {}, "cohort");
  const auto& m = pop.model;
  CHECK(m.omega_structure == "full");
  REQUIRE(m.omega_correlation_se.rows() == 3);
  REQUIRE(m.log_omega_se.size() == 3);
  MESSAGE("theta ", m.theta.transpose(), " se ", m.theta_se.transpose(), "\nomega\n", m.omega,
          "\nlog_omega_se ", m.log_omega_se.transpose(), "\ncorrelation SEs\n", m.omega_correlation_se);
  const VectorXd p0 = blood_organ().default_parameters();
  for (Eigen::Index k = 0; k < 3; ++k) {
    INFO("parameter ", pop.free_parameters[static_cast<size_t>(k)]);
    // theta within 3 of its standard errors, Omega_kk within 3 SEs of ln Omega_kk (each the estimate's
    // own sampling error: fails by chance with probability 0.3 % if right; the seed is fixed)
    CHECK(std::abs(m.theta(k) - std::log(p0(k))) < 3 * m.theta_se(k));
    CHECK(std::abs(std::log(m.omega(k, k)) - 2 * std::log(omega_sd_true()(k))) < 3 * m.log_omega_se(k));
    for (Eigen::Index l = k + 1; l < 3; ++l) {
      INFO("with parameter ", pop.free_parameters[static_cast<size_t>(l)]);
      const double rho = m.omega(k, l) / std::sqrt(m.omega(k, k) * m.omega(l, l));
      // the correlation within 3 of its SE; its SE of the order of (1 - rho^2) / sqrt(80) = 0.07 for
      // 0.6 (0.11 for 0), the SE of 80 exactly known draws: at least that less 10 % (the linearised
      // information may be a little optimistic, not more), and at most twice it: the random effects are
      // estimated from 9 points each (b = 0.10), not observed, which adds to the SE, but this rich
      // schedule loses little (1.0-1.2 times on seed 1507); twice, an effective sample of a quarter of
      // the patients, would mean the data's information was miscounted
      CHECK(std::abs(rho - corr(k, l)) < 3 * m.omega_correlation_se(k, l));
      const double exact = (1 - corr(k, l) * corr(k, l)) / std::sqrt(80.0);
      CHECK(m.omega_correlation_se(k, l) > 0.9 * exact);
      CHECK(m.omega_correlation_se(k, l) < 2.0 * exact);
    }
  }
  // the MAP of a sparse cycle under it: its u(TIA) carries the correlations' error (named in the note)
  const Cohort one = cohort(1, 91, {24, 96}, {1}, corr);
  const auto fits = compartment_population_map_fit(pop, blood_organ(), one.units[0].tacs, A0_MBQ, LP, "test");
  REQUIRE(!fits.empty());
  CHECK(fits[0].fit.notes.at(0).find("Omega's correlations (atanh scale)") != std::string::npos);
}

TEST_CASE("compartment population: blood points of 1e-15 of A0 and below are modelled, not solver noise") {
  // Blood sampled to 168 h as the organ: the model's blood at 96 h is 2.6e-15 of A0, at 168 h 6e-26,
  // measured here exactly as the model says (times e^(b z)). The log-scale error model compares ln y
  // with ln f there, so f must be accurate relative to itself: with the individual fit's absolute
  // tolerance (1e-12 of A0) ln f was the solver's noise and 60 such patients learned b = 1.5 instead
  // of 0.10 (review of 0.18). Laplace E-step (the MAP does not depend on it; 2 s).
  const Cohort c = cohort(60, 21, ORGAN_RICH, ORGAN_RICH);
  const auto pop = learn_compartment_population(blood_organ(), "sha", c.units, LP, learning_options(false), {}, "c");
  // b from 60 x 12 points: ln b's SE 1 / sqrt(2 d) = 0.03; 3 SEs and a margin: within 15 %
  CHECK(std::abs(std::log(pop.model.sigma_log / B_TRUE)) < 0.15);
  const VectorXd p0 = blood_organ().default_parameters();
  for (Eigen::Index k = 0; k < 3; ++k) CHECK(std::abs(pop.model.theta(k) - std::log(p0(k))) < 3 * pop.model.theta_se(k));
}

TEST_CASE("compartment population: the MAP of sparse cycles beats the individual joint fit of the same TACs") {
  const auto& pop = learned_laplace();
  // a second cohort, another seed: organ at 24 and 96 h, blood at 1 and 4 h (four points for three
  // free rates: the individual fit has one degree of freedom)
  const Cohort c = cohort(30, 1515, {4, 24}, {1, 4});
  std::vector<double> map_error, individual_error;
  for (size_t i = 0; i < c.units.size(); ++i) {
    const auto fits = compartment_population_map_fit(pop, blood_organ(), c.units[i].tacs, A0_MBQ, LP, "test");
    REQUIRE(fits.size() == 2);
    const auto& organ = fits[0].voi == "organ" ? fits[0].fit : fits[1].fit;
    CHECK(organ.method == "population MAP");
    map_error.push_back(std::abs(organ.tia_MBq_h / c.organ_tia[i] - 1));
    std::map<std::string, models::VoiData> data;
    for (const auto& s : c.units[i].tacs) {
      auto& d = data[s.voi];
      for (Eigen::Index j = 0; j < s.time_h.size(); ++j)
        d.t_h.push_back(s.time_h(j)), d.activity_MBq.push_back(s.activity_MBq(j)),
            d.sigma_MBq.push_back(s.activity_MBq(j));  // relative weights: the proportional error
    }
    models::FitOptions fo;
    fo.relative_sigmas = true;
    const auto f = models::fit(blood_organ(), data, A0_MBQ, LP, fo);
    // a fit without a finite organ TIA counts as an infinite error (the median is robust to it)
    const double tia = f.tia_voi_MBq_h.size() ? f.tia_voi_MBq_h(blood_organ().observation_index("organ")) : NAN;
    individual_error.push_back(std::isfinite(tia) ? std::abs(tia / c.organ_tia[i] - 1) : HUGE_VAL);
  }
  const double m_map = median(map_error), m_ind = median(individual_error);
  MESSAGE("median |TIA error| of the organ: MAP ", m_map, ", individual ", m_ind);
  // conservative: the MAP at least 15 % lower (issue 15's target for three scans) than the individual fit
  CHECK(m_map < 0.85 * m_ind);
}

TEST_CASE("compartment population: a MAP of a rich cycle is accepted, with TIA, u(TIA) and the warnings") {
  const auto& pop = learned_laplace();
  const Cohort c = cohort(1, 77, ORGAN_RICH, {1, 4});
  const auto fits = compartment_population_map_fit(pop, blood_organ(), c.units[0].tacs, A0_MBQ, LP, "test");
  REQUIRE(fits.size() == 2);
  for (const auto& f : fits) {
    INFO(f.voi, ": ", joined_flags(f.fit.candidates[0]), " ", f.fit.notes.back());
    CHECK(f.fit.accepted);
    CHECK(f.fit.tia_u_MBq_h > 0);
    CHECK(f.fit.tia_u_MBq_h < 0.5 * f.fit.tia_MBq_h);
    CHECK(f.fit.candidates[0].function == "compartment:blood_organ_linear");
  }
  // no cohort warning: 120 units >= POPULATION_MIN_TACS
  CHECK(fits[0].fit.candidates[0].warnings.empty());
}

TEST_CASE("compartment population: a cycle far from the population is flagged by the residual criterion") {
  const auto& pop = learned_laplace();
  Cohort c = cohort(1, 78, ORGAN_RICH, BLOOD_RICH);
  for (auto& s : c.units[0].tacs)
    if (s.voi == "organ") s.activity_MBq *= 60;  // an organ curve 60 times the population's
  const auto fits = compartment_population_map_fit(pop, blood_organ(), c.units[0].tacs, A0_MBQ, LP, "test");
  REQUIRE(!fits.empty());
  for (const auto& f : fits) {
    CHECK_FALSE(f.fit.accepted);
    CHECK(joined_flags(f.fit.candidates[0]).find("map_residuals_exceed_population_model") != std::string::npos);
  }
}

TEST_CASE("compartment population: a rate expression that comes out negative is a failed evaluation, not a crash") {
  CompartmentPopulation pop = learned_laplace();
  // k_in (index 1) above k_b: the transfer "k_b - k_in" is negative at theta, the MAP's start
  pop.model.theta(1) = pop.model.theta(0) + 1.0;
  const Cohort c = cohort(1, 79, {24, 96}, {1, 4});
  std::vector<CompartmentMapFit> fits;
  CHECK_NOTHROW(fits = compartment_population_map_fit(pop, blood_organ(), c.units[0].tacs, A0_MBQ, LP, "test"));
  for (const auto& f : fits) CHECK_FALSE(f.fit.accepted);
}

TEST_CASE("compartment population: refusals") {
  const Cohort c = cohort(3, 5, ORGAN_RICH, BLOOD_RICH);
  PopulationOptions o = learning_options();
  CHECK_THROWS_AS(learn_compartment_population(blood_organ(), "sha", c.units, LP, learning_options(), {"k_x"}, "cohort"),
                  InputError);
  CHECK_THROWS_AS(learn_compartment_population(blood_organ(), "sha", {c.units[0]}, LP, learning_options(), {}, "cohort"),
                  InputError);
  auto bad = c.units;
  bad[1].tacs[0].activity_MBq(2) = 0;
  CHECK_THROWS_AS(learn_compartment_population(blood_organ(), "sha", bad, LP, learning_options(), {}, "cohort"),
                  InputError);
  o = learning_options();
  o.omega_structure = OmegaStructure::full;  // from 3 units
  CHECK_THROWS_AS(learn_compartment_population(blood_organ(), "sha", c.units, LP, o, {}, "cohort"), InputError);
  // blood only: k_in and k_out are not seen (the blood curve depends on k_b alone); 0.18 learned them at
  // the model file's values with theta_se 194 or none and wrote converged: true (review of 0.18)
  const Cohort rich = cohort(40, 7, ORGAN_RICH, BLOOD_RICH);
  std::vector<CompartmentUnit> blood_only = rich.units;
  for (auto& u : blood_only) u.tacs.erase(u.tacs.begin());  // the organ TAC (measured first)
  try {
    learn_compartment_population(blood_organ(), "sha", blood_only, LP, learning_options(false), {}, "blood.csv");
    FAIL("a population whose data do not determine k_in was learned");
  } catch (const InputError& e) {
    CHECK(std::string(e.what()).find("log_k_in") != std::string::npos);
    CHECK(std::string(e.what()).find("blood.csv") != std::string::npos);
  }
  CompartmentPopulation pop;
  pop.model_name = "another_model";
  CHECK_THROWS_AS(compartment_population_map_fit(pop, blood_organ(), c.units[0].tacs, A0_MBQ, LP, "test"), InputError);
}

namespace {

// The organ's TIA [MBq h] of the MAP of `tacs` under `pop` with its standard errors zeroed (the
// population taken as known): the MAP under a shifted population, computed through the public call.
double organ_tia_known(CompartmentPopulation pop, const std::vector<TacSeries>& tacs, double* u_posterior = nullptr) {
  pop.model.theta_se.setZero();
  pop.model.log_omega_se.setZero();
  pop.model.log_sigma_log_se = 0;
  const auto fits = compartment_population_map_fit(pop, blood_organ(), tacs, A0_MBQ, LP, "test");
  for (const auto& f : fits)
    if (f.voi == "organ") {
      if (u_posterior) *u_posterior = f.fit.tia_u_MBq_h;
      return f.fit.tia_MBq_h;
    }
  return std::numeric_limits<double>::quiet_NaN();
}

}  // namespace

// Issue 15 "honest uncertainty": the exponential MAP's u(TIA) has carried the population's own
// estimation error since 0.17 (methods.md §10); the compartment MAP took the population as known.
// The expected u is computed here through the public call, independently of the implementation's
// warm-started refits: u^2 = u_posterior^2 + sum_j ((TIA(+s_j) - TIA(-s_j)) / 2)^2 over theta_k,
// ln Omega_kk and ln b, each shifted by its standard error s_j.
TEST_CASE("compartment population: u(TIA) of the MAP includes the population's own estimation error") {
  CompartmentPopulation pop = learned_laplace();
  REQUIRE(pop.model.log_omega_se.size() == 3);
  // standard errors of the order of a 10-unit learning cohort (SE(theta) ~ omega / sqrt(10), SE(ln
  // Omega) ~ sqrt(2 / 10), SE(ln b) ~ 0.2): large enough that u_pop is a visible part of u
  const double se_theta = 0.12, se_log_omega = 0.45, se_log_b = 0.2;
  pop.model.theta_se = VectorXd::Constant(3, se_theta);
  pop.model.log_omega_se = VectorXd::Constant(3, se_log_omega);
  pop.model.log_sigma_log_se = se_log_b;
  const Cohort c = cohort(1, 91, {24, 96}, {1});  // a sparse cycle: the population matters
  const auto& tacs = c.units[0].tacs;
  double u_posterior = 0;
  organ_tia_known(pop, tacs, &u_posterior);
  double u_pop2 = 0;
  for (int j = 0; j < 3; ++j)
    for (int which = 0; which < 3; ++which) {  // theta_j, ln Omega_jj, ln b (once)
      if (which == 2 && j > 0) continue;
      auto up = pop, down = pop;
      const double s = which == 0 ? se_theta : which == 1 ? se_log_omega : se_log_b;
      if (which == 0) up.model.theta(j) += s, down.model.theta(j) -= s;
      if (which == 1) up.model.omega(j, j) *= std::exp(s), down.model.omega(j, j) *= std::exp(-s);
      if (which == 2) up.model.sigma_log *= std::exp(s), down.model.sigma_log *= std::exp(-s);
      const double d = 0.5 * (organ_tia_known(up, tacs) - organ_tia_known(down, tacs));
      u_pop2 += d * d;
    }
  const double expected = std::sqrt(u_posterior * u_posterior + u_pop2);
  const auto fits = compartment_population_map_fit(pop, blood_organ(), tacs, A0_MBQ, LP, "test");
  const auto organ = std::find_if(fits.begin(), fits.end(), [](const auto& f) { return f.voi == "organ"; });
  REQUIRE(organ != fits.end());
  INFO("u_posterior ", u_posterior, " u_pop ", std::sqrt(u_pop2), " u ", organ->fit.tia_u_MBq_h);
  CHECK(std::sqrt(u_pop2) > 0.3 * u_posterior);  // u 5 % or more above u_posterior: the 1 % below sees it
  // 1 %: the implementation's TIA is the model's integral with the gradient (delta method) where this
  // test differences MAP TIAs, and its refits start from the MAP (the test's from theta): both within
  // the refits' convergence, far below the 20 % the population's error adds here
  CHECK(organ->fit.tia_u_MBq_h == doctest::Approx(expected).epsilon(0.01));
  CHECK(organ->fit.notes.back().find("population's own estimation error") != std::string::npos);
}

// A blood curve clearing with a half-life of about 2 h is at 2e-4 of its 1-h value at 24 h: a point
// below 1e-3 of the VOI's largest that the model predicts. Flagged near zero, it made every cycle with
// blood at 24 h keep its individual fits (0.18's limit). A reading near zero where the MAP's curve is
// not (a zero typed in) is still flagged.
TEST_CASE("compartment population: blood at 24 h as the model predicts it is not a near-zero point") {
  const auto& pop = learned_laplace();
  Cohort c = cohort(1, 77, ORGAN_RICH, BLOOD_RICH);
  for (const auto& s : c.units[0].tacs)
    if (s.voi == "blood") REQUIRE(s.activity_MBq(2) < 1e-3 * s.activity_MBq.maxCoeff());  // the case in point
  auto fits = compartment_population_map_fit(pop, blood_organ(), c.units[0].tacs, A0_MBQ, LP, "test");
  REQUIRE(fits.size() == 2);
  for (const auto& f : fits) {
    INFO(f.voi, ": ", joined_flags(f.fit.candidates[0]));
    CHECK(f.fit.accepted);
  }
  for (auto& s : c.units[0].tacs)
    if (s.voi == "organ") s.activity_MBq(5) = 1e-4 * s.activity_MBq.maxCoeff();  // 168 h: a near-zero reading
  fits = compartment_population_map_fit(pop, blood_organ(), c.units[0].tacs, A0_MBQ, LP, "test");
  for (const auto& f : fits)
    if (f.voi == "organ")
      CHECK_MESSAGE(joined_flags(f.fit.candidates[0]).find("near_zero_activity_at_1_points") != std::string::npos, joined_flags(f.fit.candidates[0]), " fitted ", f.fit.candidates[0].fitted_MBq.transpose());
}

namespace {

// Every estimate of two learned populations bit for bit (==, not within a tolerance: the threads only
// split the units' E-step, whose results are each unit's own and summed in unit order).
void check_identical(const PopulationModel& a, const PopulationModel& b) {
  CHECK(a.theta == b.theta);
  CHECK(a.omega == b.omega);
  CHECK(a.sigma_log == b.sigma_log);
  CHECK(a.theta_se == b.theta_se);
  CHECK(a.shrinkage == b.shrinkage);
  CHECK(a.minus2_log_likelihood == b.minus2_log_likelihood);
  CHECK(a.iterations == b.iterations);
}

}  // namespace

TEST_CASE("compartment population: learned on 1 and 2 threads, bit-identical theta, Omega and b") {
  // 16 rich units (seed 16), two iterations of each E-step: the Laplace EM and then the sampled one
  // (300 seeded draws per unit); the estimates need not have converged, only be the same
  const Cohort c = cohort(16, 16, ORGAN_RICH, BLOOD_RICH);
  for (const bool sampled : {false, true}) {
    CAPTURE(sampled);
    PopulationOptions o = learning_options(sampled);
    o.max_iterations = 2;
    const auto one = learn_compartment_population(blood_organ(), "sha", c.units, LP, o, {}, "cohort");
    REQUIRE(one.model.theta.allFinite());
    o.threads = 2;
    check_identical(one.model, learn_compartment_population(blood_organ(), "sha", c.units, LP, o, {}, "cohort").model);
  }
}

// Issue 15, point 1: "the error models of methods.md §2.3" for a compartment population (0.19 refused all
// but the proportional one). A cohort with combined noise (SIGMA0_TRUE_MBQ, B_TRUE) drawn here.
namespace {

// The blood's 24-h points: readings near zero and below (SIGMA0_TRUE_MBQ's comment), kept as data by the
// additive models.
const std::vector<double> BLOOD_WITH_24H{1, 4, 24};

// 100 rich patients (seed 150) with combined noise, learned with the combined model and the Laplace
// E-step (about 2 s in Release; the sampled one takes five times as long, and the recovery below is of
// the estimator's EM, the same code under both E-steps).
const CompartmentPopulation& learned_combined() {
  static const CompartmentPopulation pop = [] {
    const Cohort c = cohort(100, 150, ORGAN_RICH, BLOOD_WITH_24H, Eigen::Matrix3d::Identity(), SIGMA0_TRUE_MBQ);
    PopulationOptions o = learning_options(false);
    o.error_model = PopulationErrorModel::combined;
    return learn_compartment_population(blood_organ(), "sha", c.units, LP, o, {}, "cohort");
  }();
  return pop;
}

}  // namespace

TEST_CASE("compartment population: the combined error model recovers theta, sigma0 and b from 100 seeded patients") {
  const Cohort c = cohort(100, 150, ORGAN_RICH, BLOOD_WITH_24H, Eigen::Matrix3d::Identity(), SIGMA0_TRUE_MBQ);
  int nonpositive = 0;
  for (const auto& u : c.units)
    for (const auto& s : u.tacs) nonpositive += static_cast<int>((s.activity_MBq.array() <= 0).count());
  REQUIRE(nonpositive > 0);  // the case in point: readings <= 0, refused by the proportional model, are data here
  const auto& m = learned_combined().model;
  MESSAGE("theta ", m.theta.transpose(), " se ", m.theta_se.transpose(), " sigma0 ", m.sigma0_MBq, " se(ln) ",
          m.log_sigma0_se, " b ", m.sigma_log, " se(ln) ", m.log_sigma_log_se, " readings <= 0: ", nonpositive);
  CHECK(m.error_model == PopulationErrorModel::combined);
  CHECK(m.n_observations == 100 * 9);  // every point, those <= 0 included
  CHECK(m.converged);
  const VectorXd p0 = blood_organ().default_parameters();
  for (Eigen::Index k = 0; k < 3; ++k) {
    INFO("parameter ", m.phi_names[static_cast<size_t>(k)]);
    // fixed effects within 3 of their standard errors (issue 15's acceptance), as the proportional test
    CHECK(std::abs(m.theta(k) - std::log(p0(k))) < 3 * m.theta_se(k));
  }
  // sigma0 and b within 3 standard errors of their logs (log_sigma0_se, log_b_proportional_se: the
  // Gaussian information of the variance parameters at the MAPs): the estimates' own sampling error
  REQUIRE(m.log_sigma0_se > 0);
  REQUIRE(m.log_sigma_log_se > 0);
  CHECK(std::abs(std::log(m.sigma0_MBq / SIGMA0_TRUE_MBQ)) < 3 * m.log_sigma0_se);
  CHECK(std::abs(std::log(m.sigma_log / B_TRUE)) < 3 * m.log_sigma_log_se);
  CHECK(std::isfinite(m.minus2_log_likelihood));
}

TEST_CASE("compartment population: a MAP under the combined model keeps a reading of 0 MBq as data") {
  const auto& pop = learned_combined();
  // a sparse new cycle (seed 151): organ at 24 and 96 h, blood at 1, 4 and 24 h, the blood's 24-h
  // reading typed as 0 MBq (below detection: the truth there is about 1.8 MBq, within one SD of the
  // noise floor, so 0 is a probable reading under the combined model; the proportional one cannot use it)
  Cohort c = cohort(1, 151, {24, 96}, BLOOD_WITH_24H, Eigen::Matrix3d::Identity(), SIGMA0_TRUE_MBQ);
  for (auto& s : c.units[0].tacs)
    if (s.voi == "blood") s.activity_MBq(2) = 0;
  std::vector<CompartmentMapFit> fits;
  REQUIRE_NOTHROW(fits = compartment_population_map_fit(pop, blood_organ(), c.units[0].tacs, A0_MBQ, LP, "test"));
  REQUIRE(fits.size() == 2);
  for (const auto& f : fits) {
    const auto& cand = f.fit.candidates.at(0);
    INFO(f.voi, ": ", joined_flags(cand), " notes ", f.fit.notes.back());
    CHECK(std::isfinite(f.fit.tia_MBq_h));
    CHECK(f.fit.tia_MBq_h > 0);
    CHECK(std::isfinite(f.fit.tia_u_MBq_h));
    CHECK(f.fit.tia_u_MBq_h > 0);
    CHECK(cand.standardized_residuals.allFinite());  // the 0 MBq point too: (y - f) / V^(1/2), no ln 0
    CHECK(cand.n_points == static_cast<int>(cand.fitted_MBq.size()));  // no point left out
    for (const auto& note : f.fit.notes) CHECK(note.find("left out") == std::string::npos);
    // the criteria of the additive model: a reading of 0 where the truth is within the noise floor (blood
    // at 24 h) is what sigma0 is for (no near-zero flag), and the cycle is drawn like the population's
    CHECK(f.fit.accepted);
  }
  const auto& organ = fits[0].voi == "organ" ? fits[0] : fits[1];
  const double truth = c.organ_tia[0];
  MESSAGE("organ TIA ", organ.fit.tia_MBq_h, " +- ", organ.fit.tia_u_MBq_h, ", truth ", truth);
  // the truth within 3 u(TIA): u includes the posterior and the population's own error
  CHECK(std::abs(organ.fit.tia_MBq_h - truth) < 3 * organ.fit.tia_u_MBq_h);
  // the population's own error of sigma0 and b is propagated (population_error's note names them)
  CHECK(std::any_of(organ.fit.notes.begin(), organ.fit.notes.end(), [](const std::string& n) {
    return n.find("ln sigma0_MBq") != std::string::npos && n.find("ln b_proportional") != std::string::npos;
  }));
}

TEST_CASE("compartment population: the constant and input error models learn and fit") {
  // 40 patients (seed 152) with combined noise, learned with the constant model (b fixed at 0) and with
  // the input model (each point's u the truth's SD, given with the data): both learn and give a MAP
  Cohort c = cohort(40, 152, ORGAN_RICH, BLOOD_WITH_24H, Eigen::Matrix3d::Identity(), SIGMA0_TRUE_MBQ);
  PopulationOptions o = learning_options(false);
  o.error_model = PopulationErrorModel::constant;
  const auto constant = learn_compartment_population(blood_organ(), "sha", c.units, LP, o, {}, "cohort");
  CHECK(constant.model.error_model == PopulationErrorModel::constant);
  CHECK(constant.model.sigma_log == 0);
  // the constant model puts the organ's 10 % spread into one sigma0: far above the truth's 2 MBq
  CHECK(constant.model.sigma0_MBq > SIGMA0_TRUE_MBQ);
  o.error_model = PopulationErrorModel::input;
  CHECK_THROWS_AS(learn_compartment_population(blood_organ(), "sha", c.units, LP, o, {}, "no_u.csv"), InputError);
  for (size_t i = 0; i < c.units.size(); ++i)
    for (auto& s : c.units[i].tacs) {
      const auto& m = blood_organ();
      models::SolverOptions truth;
      truth.abs_tol_fraction = 1e-300;
      const VectorXd f = m.observe(s.time_h, c.p_true[i], A0_MBQ, LP, truth).col(m.observation_index(s.voi));
      s.activity_u_MBq = (SIGMA0_TRUE_MBQ * SIGMA0_TRUE_MBQ + (B_TRUE * f.array()).square()).sqrt().matrix();
    }
  const auto input = learn_compartment_population(blood_organ(), "sha", c.units, LP, o, {}, "cohort");
  CHECK(input.model.error_model == PopulationErrorModel::input);
  const VectorXd p0 = blood_organ().default_parameters();
  for (Eigen::Index k = 0; k < 3; ++k)  // as the combined recovery: within 3 SEs
    CHECK(std::abs(input.model.theta(k) - std::log(p0(k))) < 3 * input.model.theta_se(k));
  for (const auto* pop : {&constant, &input}) {
    const auto fits = compartment_population_map_fit(*pop, blood_organ(), c.units[0].tacs, A0_MBQ, LP, "test");
    REQUIRE(fits.size() == 2);
    for (const auto& f : fits) {
      CHECK(std::isfinite(f.fit.tia_MBq_h));
      CHECK(f.fit.candidates.at(0).standardized_residuals.allFinite());
    }
  }
  // a new cycle without activity_u_MBq under the input model: refused, naming the call's `where`
  auto bare = c.units[0].tacs;
  for (auto& s : bare) s.activity_u_MBq.resize(0);
  CHECK_THROWS_WITH_AS(compartment_population_map_fit(input, blood_organ(), bare, A0_MBQ, LP, "new.csv"),
                       doctest::Contains("new.csv"), InputError);
}
