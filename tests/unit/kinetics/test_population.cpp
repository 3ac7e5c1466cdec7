// Population (NLME) kinetics (lutdose/kinetics/population.h): recovery of known population
// parameters from seeded synthetic cohorts drawn here (not by the code under test), the MAP
// estimates against individual fits of the same sparse TACs, and bad inputs.
#include <doctest/doctest.h>

#include <algorithm>
#include <boost/random/mersenne_twister.hpp>
#include <boost/random/normal_distribution.hpp>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "lutdose/error.h"
#include "lutdose/kinetics/fitting.h"
#include "lutdose/kinetics/population.h"
#include "population_cohorts.h"

using namespace lutdose;
using Eigen::VectorXd;

namespace {

const double LP = std::log(2.0) / (6.647 * 24.0);  // Lu-177, ICRP-107 half-life 6.647 d

struct Truth {
  double a_MBq, lambda_bio, tia_MBq_h;
};

// A cohort of E1 TACs: ln A ~ N(ln a_pop, w_a), ln lambda_bio ~ N(ln l_pop, w_l), measured
// activities y = f exp(b e), e ~ N(0, 1) (the log-normal residual the estimator assumes).
std::vector<TacSeries> e1_cohort(int n, const std::vector<double>& times, double b, unsigned seed,
                                 std::vector<Truth>& truth, double lambda_pop = 0.02, double w_lambda = 0.4) {
  boost::random::mt19937_64 rng(seed);
  boost::random::normal_distribution<double> z(0.0, 1.0);
  std::vector<TacSeries> out;
  for (int i = 0; i < n; ++i) {
    const double a = std::exp(std::log(50.0) + 0.3 * z(rng));
    const double l = std::exp(std::log(lambda_pop) + w_lambda * z(rng));
    truth.push_back({a, l, a / (l + LP)});
    out.push_back(population_test::e1_tac(i, a, l, LP, times, [&](double f, Eigen::Index) {
      return f * std::exp(b * z(rng));
    }));
  }
  return out;
}

// The administered activity [MBq] of every TAC of a cohort drawn by e1_cohort: all the same. The
// amplitudes drawn (about 50 MBq) are then 50/7400 of it.
const double A0_MBQ = 7400;
std::vector<double> same_activity(const std::vector<TacSeries>& cohort) {
  return std::vector<double>(cohort.size(), A0_MBQ);
}

// The E1 population of a small cohort, learned serially (one model: the one VOI kind).
std::vector<PopulationModel> learn_e1(const std::vector<TacSeries>& cohort) {
  PopulationOptions o;
  o.candidates = {"E1"};
  o.threads = 1;
  return learn_population(cohort, same_activity(cohort), LP, o, "t.csv");
}

// x within `rel` (relative) of `truth`. Not doctest::Approx(truth).epsilon(rel): its tolerance is
// rel x (1 + max(|x|, |truth|)): about 0.3 absolute for epsilon 0.3, wider than the variances tested here.
bool within(double x, double truth, double rel) { return std::abs(x / truth - 1) <= rel; }

double quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5)];
}

}  // namespace

TEST_CASE("population: E1 cohort of 200 patients, 5 scans: known theta, Omega and b recovered, E1 chosen") {
  std::vector<Truth> truth;
  const auto cohort = e1_cohort(200, {4, 24, 48, 96, 168}, 0.10, 20261206u, truth);
  PopulationOptions o;
  o.candidates = {"E1", "E2u"};
  o.threads = 2;
  const auto models = learn_population(cohort, same_activity(cohort), LP, o, "test");
  REQUIRE(models.size() == 1);
  const auto& m = models[0];
  CHECK(m.voi_kind == "kidneys");
  CHECK(m.function == "E1");  // the data are E1: BIC must not prefer the richer E2u
  CHECK(m.converged);
  REQUIRE(m.theta.size() == 2);
  // Fixed effects within 3 standard errors of the truth (a 3-sigma band: fails by chance with
  // probability 0.3 % per parameter if the SEs are right; the seed is fixed, so it cannot flicker).
  CHECK(std::abs(m.theta(0) - std::log(50.0 / A0_MBQ)) < 3 * m.theta_se(0));  // per administered activity
  CHECK(std::abs(m.theta(1) - std::log(0.02)) < 3 * m.theta_se(1));
  // The SEs themselves near sqrt(omega / N) (rich data: little posterior variance per patient):
  // 0.3/sqrt(200) = 0.021 and 0.4/sqrt(200) = 0.028; within 30 % (the data add a little variance).
  CHECK(within(m.theta_se(0), 0.3 / std::sqrt(200.0), 0.3));
  CHECK(within(m.theta_se(1), 0.4 / std::sqrt(200.0), 0.3));
  // Variance components: the sampling SD of a variance estimated from N = 200 draws is
  // omega sqrt(2/N) = 10 % of omega; 30 % allows 3 such SDs (the Laplace approximation's bias
  // is small with 5 points at 10 % noise).
  CHECK(within(m.omega(0, 0), 0.09, 0.3));
  CHECK(within(m.omega(1, 1), 0.16, 0.3));
  // b from 1000 residuals less 400 effective parameters: its SD is about b/sqrt(2 x 600) = 3 %;
  // 10 % allows 3 of them.
  CHECK(within(m.sigma_log, 0.10, 0.1));
  CHECK(m.shrinkage.maxCoeff() < 0.3);  // 5 scans at 10 %: the data dominate the prior
  REQUIRE(m.candidates.size() == 2);
  CHECK(m.n_patients == 200);
  CHECK(m.n_observations == 1000);
}

TEST_CASE("population: 3 scans to 48 h: MAP |TIA error| median and p95 below the individual fits'") {
  // Kidney-like kinetics (lambda_bio 0.008 /h, CV 35 %, as data/kinetics/population_kinetics.csv)
  // scanned at 4, 24 and 48 h with 10 % noise: the data span a third of the effective half-life,
  // so a single TAC has little to say about its rate.
  std::vector<Truth> truth;
  const auto cohort = e1_cohort(200, {4, 24, 48}, 0.10, 7u, truth, 0.008, 0.35);
  PopulationOptions o;
  o.candidates = {"E1"};
  o.threads = 2;
  const auto models = learn_population(cohort, same_activity(cohort), LP, o, "test");
  REQUIRE(models.size() == 1);
  std::vector<double> err_ind, err_pop;
  int covered95 = 0;
  for (size_t i = 0; i < cohort.size(); ++i) {
    const auto& s = cohort[i];
    const TacFit ind = fit_tac(s.time_h, s.activity_MBq, s.activity_u_MBq, LP, FitOptions(), "test");
    const TacFit pop = population_map_fit(models[0], s, A0_MBQ, LP, "test");
    CHECK(pop.accepted);
    err_ind.push_back(std::abs(ind.tia_MBq_h / truth[i].tia_MBq_h - 1));
    err_pop.push_back(std::abs(pop.tia_MBq_h / truth[i].tia_MBq_h - 1));
    if (std::abs(pop.tia_MBq_h - truth[i].tia_MBq_h) <= 1.96 * pop.tia_u_MBq_h) ++covered95;
  }
  MESSAGE("median |err| individual " << quantile(err_ind, 0.5) << " population " << quantile(err_pop, 0.5));
  MESSAGE("p95 |err| individual " << quantile(err_ind, 0.95) << " population " << quantile(err_pop, 0.95));
  MESSAGE("95 % coverage " << covered95 << " / 200");
  CHECK(quantile(err_pop, 0.5) < quantile(err_ind, 0.5));
  CHECK(quantile(err_pop, 0.95) < quantile(err_ind, 0.95));
  // 95 % intervals: the count of 200 is binomial with SD 3. The interval is symmetric (delta
  // method) on a right-skewed posterior and takes the population as known, so it undercovers by a
  // few percent (measured 178/200 here; docs/validation.md): 170 (85 %) is the floor tested, a
  // clearly broken u (e.g. the data-only covariance, or none) gives far fewer.
  CHECK(covered95 >= 170);
  CHECK(covered95 <= 198);
}

TEST_CASE("population: bad inputs are input errors naming the value") {
  std::vector<Truth> truth;
  auto cohort = e1_cohort(5, {4, 24, 96}, 0.1, 1u, truth);
  PopulationOptions o;
  o.candidates = {"E2b"};
  CHECK_THROWS_WITH_AS(learn_population(cohort, same_activity(cohort), LP, o, "t.csv"), doctest::Contains("E2b"), InputError);
  o.candidates = {"E1"};
  cohort[2].activity_MBq(1) = 0;
  CHECK_THROWS_WITH_AS(learn_population(cohort, same_activity(cohort), LP, o, "t.csv"), doctest::Contains("activities > 0"), InputError);
  cohort.resize(1);
  cohort[0].activity_MBq(1) = 1;
  CHECK_THROWS_WITH_AS(learn_population(cohort, same_activity(cohort), LP, o, "t.csv"), doctest::Contains("at least 2 TACs"), InputError);
}

TEST_CASE("population: an administered activity that is not > 0 is an input error naming the TAC") {
  std::vector<Truth> truth;
  const auto cohort = e1_cohort(5, {4, 24, 96}, 0.1, 12u, truth);
  PopulationOptions o;
  o.candidates = {"E1"};
  o.threads = 1;
  auto activities = same_activity(cohort);
  activities[3] = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_WITH_AS(learn_population(cohort, activities, LP, o, "t.csv"),
                       doctest::Contains("t.csv: patient P4, cycle 1, VOI kidneys: the administered activity is 'nan'"),
                       InputError);
  activities[3] = 0;
  CHECK_THROWS_WITH_AS(learn_population(cohort, activities, LP, o, "t.csv"), doctest::Contains("is '0'"), InputError);
  const auto models = learn_population(cohort, same_activity(cohort), LP, o, "t.csv");
  REQUIRE(models.size() == 1);
  CHECK_THROWS_WITH_AS(population_map_fit(models[0], cohort[0], std::numeric_limits<double>::quiet_NaN(), LP, "x.csv"),
                       doctest::Contains("x.csv: the administered activity is 'nan'; expected an activity > 0 MBq"),
                       InputError);
}

// Review of 2026-12-06: a hand-edited population file with ln(A1/A0) = 50 gave a kidney TIA of
// 1.9e6 MBq h from 7400 MBq, above what the whole activity decaying in the VOI would give, accepted.
TEST_CASE("population: a MAP whose TIA exceeds the administered activity's physical maximum is not accepted") {
  std::vector<Truth> truth;
  const auto cohort = e1_cohort(20, {4, 24, 96}, 0.1, 21u, truth);
  PopulationOptions o;
  o.candidates = {"E1"};
  o.threads = 1;
  auto models = learn_population(cohort, same_activity(cohort), LP, o, "t.csv");
  REQUIRE(models.size() == 1);
  const TacFit plausible = population_map_fit(models[0], cohort[0], A0_MBQ, LP, "test");
  CHECK(plausible.accepted);
  models[0].theta(0) = 1e5;  // A1 = e^100000 A0: the prior outweighs the three points
  const TacFit fit = population_map_fit(models[0], cohort[0], A0_MBQ, LP, "test");
  const auto& c = fit.candidates.at(0);
  CHECK(c.tia_MBq_h > A0_MBQ / LP);  // A0 / lambda_p: all of A0 in the VOI forever, decaying
  CHECK(std::find(c.flags.begin(), c.flags.end(), "tia_above_physical_maximum") != c.flags.end());
  CHECK_FALSE(c.accepted);
}

TEST_CASE("population: learned from a cohort of mixed activities, the per-activity parameters are recovered") {
  // 200 TACs whose amplitudes are fractions of their administered activity, A = F A0 with
  // ln F ~ N(ln 0.01, 0.3^2), A0 one of 3700, 5550, 7400 MBq (reduced and full cycles). A
  // population per administered activity recovers ln 0.01 and omega_A = 0.09; one in MBq would
  // add the spread of ln A0 (variance 0.08) to omega_A.
  boost::random::mt19937_64 rng(13u);
  boost::random::normal_distribution<double> z(0.0, 1.0);
  const std::vector<double> times = {4, 24, 48, 96, 168}, doses = {3700, 5550, 7400};
  std::vector<TacSeries> cohort;
  std::vector<double> activities;
  for (int i = 0; i < 200; ++i) {
    const double a0 = doses[static_cast<size_t>(i) % doses.size()];
    const double a = a0 * std::exp(std::log(0.01) + 0.3 * z(rng));
    const double l = std::exp(std::log(0.02) + 0.4 * z(rng));
    cohort.push_back(population_test::e1_tac(i, a, l, LP, times, [&](double f, Eigen::Index) {
      return f * std::exp(0.1 * z(rng));
    }));
    activities.push_back(a0);
  }
  PopulationOptions o;
  o.candidates = {"E1"};
  o.threads = 2;
  const auto models = learn_population(cohort, activities, LP, o, "mixed.csv");
  REQUIRE(models.size() == 1);
  const auto& m = models[0];
  CHECK(m.phi_names.at(0) == "log_A1_per_administered");
  // theta within 3 standard errors of the truth (a 3-sigma band; fixed seed, so no flicker)
  CHECK(std::abs(m.theta(0) - std::log(0.01)) < 3 * m.theta_se(0));
  CHECK(std::abs(m.theta(1) - std::log(0.02)) < 3 * m.theta_se(1));
  // omega_A: sampling SD 10 % of omega with N = 200 (omega sqrt(2/N)); 30 % allows 3 of them and
  // excludes 0.17, the value with the spread of the activities added.
  CHECK(within(m.omega(0, 0), 0.09, 0.3));
  CHECK(within(m.omega(1, 1), 0.16, 0.3));
}

TEST_CASE("population: tumours pool as one VOI kind") {
  CHECK(population_voi_kind("tumour_3") == "tumour");
  CHECK(population_voi_kind("lesion_1") == "tumour");
  CHECK(population_voi_kind("liver") == "liver");
}

TEST_CASE("population: TACs with too few points for every candidate are an input error") {
  // One scan per TAC: amplitude and rate of E1 cannot be told apart, whatever the cohort size.
  std::vector<Truth> truth;
  const auto cohort = e1_cohort(60, {24}, 0.1, 3u, truth);
  PopulationOptions o;
  o.candidates = {"E1", "E2u"};
  o.threads = 1;
  CHECK_THROWS_WITH_AS(learn_population(cohort, same_activity(cohort), LP, o, "one_scan.csv"), doctest::Contains("one_scan.csv"),
                       InputError);
  CHECK_THROWS_WITH_AS(learn_population(cohort, same_activity(cohort), LP, o, "one_scan.csv"), doctest::Contains("kidneys"), InputError);
  CHECK_THROWS_WITH_AS(learn_population(cohort, same_activity(cohort), LP, o, "one_scan.csv"), doctest::Contains("at most 1"), InputError);
}

TEST_CASE("population: candidates with more parameters than the data determine are not fitted") {
  std::vector<Truth> truth;
  // 2 TACs of 3 points: E2u (3 parameters per TAC) needs a TAC with 4 points; only E1 is fitted.
  const auto three = e1_cohort(2, {4, 24, 96}, 0.1, 5u, truth);
  PopulationOptions o;
  o.candidates = {"E1", "E2u"};
  o.threads = 1;
  auto models = learn_population(three, same_activity(three), LP, o, "t.csv");
  REQUIRE(models.size() == 1);
  CHECK(models[0].function == "E1");
  REQUIRE(models[0].candidates.size() == 1);
  CHECK(models[0].candidates[0].function == "E1");
  // 4 points + 1 point = 5 observations: E2u has a TAC of 4 points but P = 2 x 3 + 1 = 7
  // population parameters > 5 observations; E1 (P = 5) is fitted.
  auto mixed = e1_cohort(2, {4, 24, 48, 96}, 0.1, 6u, truth);
  mixed[1].time_h.conservativeResize(1);
  mixed[1].activity_MBq.conservativeResize(1);
  models = learn_population(mixed, same_activity(mixed), LP, o, "t.csv");
  REQUIRE(models.size() == 1);
  REQUIRE(models[0].candidates.size() == 1);
  CHECK(models[0].candidates[0].function == "E1");
}

TEST_CASE("population: MAP fits with a population of fewer than 50 TACs are warned") {
  // docs/population.md: below 50 TACs per VOI kind the MAP intervals are overconfident.
  std::vector<Truth> truth;
  const auto cohort = e1_cohort(10, {4, 24, 96}, 0.1, 8u, truth);
  auto models = learn_e1(cohort);
  REQUIRE(models.size() == 1);
  REQUIRE(models[0].n_patients == 10);
  const TacFit small = population_map_fit(models[0], cohort[0], A0_MBQ, LP, "test");
  const auto& warned = small.candidates.at(0).warnings;
  CHECK(std::count(warned.begin(), warned.end(), "population_below_50_tacs:10") == 1);
  models[0].n_patients = 50;  // as read from a file of 50 TACs: no warning
  const TacFit large = population_map_fit(models[0], cohort[0], A0_MBQ, LP, "test");
  const auto& quiet = large.candidates.at(0).warnings;
  CHECK(std::none_of(quiet.begin(), quiet.end(),
                     [](const std::string& w) { return w.rfind("population_below_50_tacs", 0) == 0; }));
}

TEST_CASE("population: a MAP candidate reports its one start, its evaluations and n - K, not 0") {
  // Regression (review): starts, evaluations and chi_square_dof were left at 0, an unknown shown
  // as zero. One start (the population mean), the Levenberg-Marquardt evaluations, 3 points - 2.
  std::vector<Truth> truth;
  const auto cohort = e1_cohort(10, {4, 24, 96}, 0.1, 9u, truth);
  const auto models = learn_e1(cohort);
  REQUIRE(models.size() == 1);
  const TacFit fit = population_map_fit(models[0], cohort[0], A0_MBQ, LP, "test");  // held: c refers into it
  const auto& c = fit.candidates.at(0);
  CHECK(c.starts == 1);
  CHECK(c.evaluations > 0);
  CHECK(c.chi_square_dof == 1);
}

TEST_CASE("population: MAP TIA of a TAC and activity scaled by c is exactly c times (amplitudes per administered activity)") {
  // Regression (review): the amplitude prior was in MBq, so halving a TAC's activities gave a MAP
  // TIA ratio of 0.52-0.57 instead of 0.5. Sparse data (3 scans to 48 h) and 10 TACs: the prior
  // weighs much, so an amplitude prior in MBq pulls the scaled TAC's TIA far from c times.
  std::vector<Truth> truth;
  const auto cohort = e1_cohort(10, {4, 24, 48}, 0.1, 10u, truth);
  const auto models = learn_e1(cohort);
  REQUIRE(models.size() == 1);
  for (const double c : {0.5, 0.37, 2.0}) {
    TacSeries scaled = cohort[0];
    scaled.activity_MBq *= c;
    const TacFit base = population_map_fit(models[0], cohort[0], A0_MBQ, LP, "test");
    const TacFit fit = population_map_fit(models[0], scaled, c * A0_MBQ, LP, "test");
    // The fit divides the activities by the administered activity: for c a power of 2 the data
    // are bit-identical; otherwise they differ by rounding (1e-16) and the Levenberg-Marquardt
    // stops within its xtol 1e-10 of the same optimum, so 1e-8 relative is ample and far below
    // the 4-14 % error of an amplitude prior in MBq.
    CHECK(fit.tia_MBq_h / base.tia_MBq_h == doctest::Approx(c).epsilon(1e-8));
    CHECK(fit.tia_u_MBq_h / base.tia_u_MBq_h == doctest::Approx(c).epsilon(1e-8));
  }
}

TEST_CASE("population: a TAC of only zeros is flagged and not accepted, not the population mean") {
  // Regression (review): a TAC of zeros returned the population mean as an accepted fit. No point
  // is > 0, so the data contradict every curve of the family: flagged, not accepted.
  std::vector<Truth> truth;
  const auto cohort = e1_cohort(10, {4, 24, 96}, 0.1, 11u, truth);
  const auto models = learn_e1(cohort);
  REQUIRE(models.size() == 1);
  TacSeries zeros = cohort[0];
  zeros.activity_MBq.setZero();
  const TacFit fit = population_map_fit(models[0], zeros, A0_MBQ, LP, "test");  // held: flags refers into it
  CHECK_FALSE(fit.accepted);
  const auto& flags = fit.candidates.at(0).flags;
  CHECK(std::count(flags.begin(), flags.end(), "no_positive_points") == 1);
  CHECK(std::count(flags.begin(), flags.end(), "near_zero_activity_at_3_points") == 1);
  // Regression (review): n_points counted the 3 points left out and chi_square_dof was 0 - 2 = -2.
  CHECK(fit.candidates.at(0).n_points == 0);
  CHECK(fit.candidates.at(0).chi_square_dof == 0);
  // One point of three near zero (as in an individual fit under the proportional error model)
  TacSeries one = cohort[0];
  one.activity_MBq(2) = 0;
  const TacFit fit1 = population_map_fit(models[0], one, A0_MBQ, LP, "test");
  CHECK_FALSE(fit1.accepted);
  const auto& flags1 = fit1.candidates.at(0).flags;
  CHECK(std::count(flags1.begin(), flags1.end(), "near_zero_activity_at_1_points") == 1);
  // The TAC itself: accepted
  const TacFit own = population_map_fit(models[0], cohort[0], A0_MBQ, LP, "test");
  CHECK(own.accepted);
}

// The sampled E-step on a small, informative cohort (5 scans to 168 h, little shrinkage): it runs
// its whole code (the sanitizer pass runs this, not the 1000-TAC test below) and agrees with the
// Laplace E-step, as both estimate the same population where the posteriors are near Gaussian.
TEST_CASE("population: the sampled E-step on a small informative cohort agrees with the Laplace E-step") {
  std::vector<Truth> truth;
  const auto cohort = e1_cohort(40, {4, 24, 48, 96, 168}, 0.1, 17u, truth);
  PopulationOptions o;
  o.candidates = {"E1"};
  o.threads = 1;
  o.sampled_e_step = false;
  const auto laplace = learn_population(cohort, same_activity(cohort), LP, o, "t.csv");
  o.sampled_e_step = true;
  const auto sampled = learn_population(cohort, same_activity(cohort), LP, o, "t.csv");
  REQUIRE(laplace.size() == 1);
  REQUIRE(sampled.size() == 1);
  CHECK(laplace[0].e_step == "laplace");
  CHECK(sampled[0].e_step == "sampled");
  // the sampled EM starts from the Laplace estimates: its iterations count on from the Laplace EM's
  CHECK(sampled[0].iterations > laplace[0].iterations);
  CHECK(sampled[0].converged);
  CHECK(sampled[0].theta.allFinite());
  CHECK(sampled[0].omega.allFinite());
  // within one standard error of each other: the two differ by the E-step's approximation, which
  // is small here, far less than the sampling error of 40 TACs that theta_se measures
  for (int k = 0; k < 2; ++k) CHECK(std::abs(sampled[0].theta(k) - laplace[0].theta(k)) < laplace[0].theta_se(k));
}

TEST_CASE("population: high shrinkage (a slow rate scanned to 48 h at 15 %): the rate's theta and Omega recovered") {
  // Tumour-like kinetics (docs/validation.md §10): lambda_bio 0.00336 /h (T_eff 90 h with Lu-177,
  // data/kinetics/population_kinetics.csv) with a CV of 50 %, so the true Omega of ln lambda_bio is
  // ln(1 + 0.5^2) = 0.2231; amplitudes CV 30 % (e1_cohort: SD 0.3, Omega 0.09); 3 scans at 4, 24,
  // 48 h with 15 % log-normal noise, 1000 TACs. The rate moves ln y by lambda t = 0.16 over the
  // scans, about the noise: the rate's shrinkage is high (about 0.6). With the Laplace moments in
  // the E-step only (MAP and Gauss-Newton covariance, sampled_e_step false; the default of 0.12)
  // this cohort gave theta of the rate 0.218 too high (5.7 standard errors) and Omega 0.143 (-36 %):
  // the Laplace posterior of a rate the data barely see is too narrow and centred too fast. The
  // default since 0.13 refines the Laplace estimates with the sampled E-step.
  const double w_rate = std::log1p(0.5 * 0.5);
  std::vector<Truth> truth;
  const auto cohort = e1_cohort(1000, {4, 24, 48}, 0.15, 20261206u, truth, 0.00336, std::sqrt(w_rate));
  PopulationOptions o;
  o.candidates = {"E1"};
  o.threads = 1;
  // the estimator under test: the default (Laplace EM, then the sampled E-step from its estimates)
  const auto models = learn_population(cohort, same_activity(cohort), LP, o, "t.csv");
  REQUIRE(models.size() == 1);
  const auto& m = models[0];
  CHECK(m.e_step == "sampled");
  MESSAGE("omega " << m.omega(0, 0) << " " << m.omega(1, 1) << ", theta - truth "
                   << m.theta(0) - std::log(50.0 / A0_MBQ) << " " << m.theta(1) - std::log(0.00336) << ", se "
                   << m.theta_se.transpose() << ", b " << m.sigma_log << ", shrinkage " << m.shrinkage.transpose());
  CHECK(m.converged);
  CHECK(m.shrinkage(1) > 0.4);  // the case meant: the data say little about the rate
  // theta within 3 standard errors of the truth (a 3-sigma band, as in the 5-scan test above)
  CHECK(std::abs(m.theta(0) - std::log(50.0 / A0_MBQ)) < 3 * m.theta_se(0));
  CHECK(std::abs(m.theta(1) - std::log(0.00336)) < 3 * m.theta_se(1));
  // Omega of the rate within 20 %. The tolerance is a check of this seeded cohort, not a bound
  // another seed would keep: at this shrinkage the rate's Omega is poorly determined by 1000 TACs
  // (over 6 other seeded cohorts of 1000 the sampled E-step gave 0.150-0.369, mean 0.220, SD 0.08;
  // the Laplace E-step 0.129-0.254, mean 0.166: docs/validation.md §10). The theta check above is
  // the one that separates the two E-steps on any seed (Laplace: 6-9 standard errors off).
  CHECK(within(m.omega(1, 1), w_rate, 0.20));
  // Omega of ln A: little shrinkage, sampling SD 0.09 sqrt(2/1000) = 4.5 %; 15 % is 3 of them.
  CHECK(within(m.omega(0, 0), 0.09, 0.15));
  // b from 3000 residuals less about 1000 effective parameters: SD about b/sqrt(2 x 2000) = 1.6 %;
  // 5 % is 3 of them.
  CHECK(within(m.sigma_log, 0.15, 0.05));
}

// ---- A MAP fit far from its own data (issue 15, review of 0.14) ----

namespace {

// The population e1_cohort draws from, as a model: ln(A / A0) ~ N(ln(50 / A0), 0.3^2),
// ln lambda_bio ~ N(ln lambda_pop, w_lambda^2), ln y ~ N(ln f, b^2). n_patients is large (no
// cohort-size warning: the population is known, not learned).
PopulationModel e1_truth(double b, double lambda_pop, double w_lambda) {
  PopulationModel m;
  m.voi_kind = "kidneys";
  m.function = "E1";
  m.phi_names = population_parameter_names(*models::find_exponential("E1"));
  m.theta = VectorXd(2);
  m.theta << std::log(50.0 / A0_MBQ), std::log(lambda_pop);
  m.omega = VectorXd((VectorXd(2) << 0.09, w_lambda * w_lambda).finished()).asDiagonal();
  m.sigma_log = b;
  m.n_patients = 1000;
  return m;
}

bool has_flag_starting(const CandidateFit& c, const std::string& prefix) {
  return std::any_of(c.flags.begin(), c.flags.end(), [&](const std::string& f) { return f.rfind(prefix, 0) == 0; });
}

const std::string RESIDUAL_FLAG = "map_residuals_exceed_population_model";

}  // namespace

// Review of 0.14: a hand-edited population file (theta shifted) gave a MAP curve 60x above the
// TAC's points and a TIA 16x too large, accepted with only the cohort-size warning.
TEST_CASE("population: a MAP curve far above its own points (edited theta and Omega) is not accepted") {
  std::vector<Truth> truth;
  const auto cohort = e1_cohort(20, {4, 24, 96}, 0.1, 21u, truth);
  auto models = learn_e1(cohort);
  REQUIRE(models.size() == 1);
  // amplitudes 100 times the cohort's, and an SD of 1 % between patients for amplitude and rate:
  // the prior outweighs the three points, so the MAP stays near the edited population
  models[0].theta(0) += std::log(100.0);
  models[0].omega.diagonal().setConstant(1e-4);
  const TacFit fit = population_map_fit(models[0], cohort[0], A0_MBQ, LP, "test");  // held: c refers into it
  const auto& c = fit.candidates.at(0);
  // the case meant: the curve at least 10 times every point, the TIA below the physical maximum
  // (so that the flag of that bound does not decide), the MAP itself converged
  CHECK((c.fitted_MBq.array() > 10 * cohort[0].activity_MBq.array()).all());
  CHECK(c.tia_MBq_h < A0_MBQ / LP);
  CHECK(std::find(c.flags.begin(), c.flags.end(), "population_map_failed") == c.flags.end());
  CHECK(has_flag_starting(c, RESIDUAL_FLAG + ":"));
  // the limit of 3 points: 16.27, the 0.999 quantile of chi-square(3) (tables: 16.266)
  CHECK(std::any_of(c.flags.begin(), c.flags.end(),
                    [](const std::string& f) { return f.find(",limit=16.27,n=3") != std::string::npos; }));
  CHECK_FALSE(c.accepted);
  CHECK_FALSE(fit.accepted);
  REQUIRE_FALSE(fit.notes.empty());
  CHECK(fit.notes.back().find(RESIDUAL_FLAG) != std::string::npos);
}

TEST_CASE("population: one point 60 times below the population's curve is not accepted (n = 1)") {
  const PopulationModel m = e1_truth(0.1, 0.008, 0.35);
  std::vector<Truth> truth;
  auto one = e1_cohort(1, {24}, 0.1, 22u, truth, 0.008, 0.35);
  const TacFit own = population_map_fit(m, one[0], A0_MBQ, LP, "test");
  CHECK(own.accepted);  // the TAC drawn from the population: accepted
  one[0].activity_MBq /= 60;
  const TacFit fit = population_map_fit(m, one[0], A0_MBQ, LP, "test");  // held: c refers into it
  const auto& c = fit.candidates.at(0);
  CHECK(c.n_points == 1);
  CHECK(has_flag_starting(c, RESIDUAL_FLAG + ":"));
  CHECK_FALSE(fit.accepted);
}

TEST_CASE("population: the residual criterion counts only the points used (points <= 0 left out)") {
  const PopulationModel m = e1_truth(0.1, 0.008, 0.35);
  std::vector<Truth> truth;
  auto tac = e1_cohort(1, {4, 24, 48}, 0.1, 23u, truth, 0.008, 0.35);
  tac[0].activity_MBq(1) = -1;  // left out of the fit (and flagged near zero, as an individual fit)
  tac[0].activity_MBq(2) /= 60;
  const TacFit fit = population_map_fit(m, tac[0], A0_MBQ, LP, "test");  // held: c refers into it
  const auto& c = fit.candidates.at(0);
  CHECK(c.n_points == 2);
  CHECK(has_flag_starting(c, RESIDUAL_FLAG + ":"));
  CHECK(std::any_of(c.flags.begin(), c.flags.end(),
                    [](const std::string& f) { return f.find("n=2") != std::string::npos; }));
  // the standardized residuals are those of the error model, ln(y / f) / b, and unknown (NaN, not
  // a number made up) at the point left out
  REQUIRE(c.standardized_residuals.size() == 3);
  CHECK(std::isnan(c.standardized_residuals(1)));
  for (const Eigen::Index j : {0, 2})
    CHECK(c.standardized_residuals(j) ==
          doctest::Approx(std::log(tac[0].activity_MBq(j) / c.fitted_MBq(j)) / m.sigma_log).epsilon(1e-12));
}

TEST_CASE("population: MAPs of TACs drawn from the population itself are rejected at the criterion's rate") {
  // Seeded cohorts drawn here from a known population (e1_cohort), each TAC fitted with that
  // population as prior: the residual criterion's false-rejection probability is 1e-3 per TAC
  // (population_map.cpp), so of 2000 TACs about 2 are rejected. The bound 10 is the count that
  // Binomial(2000, 1e-3) (Poisson(2)) exceeds with probability 8e-6: a criterion calibrated as
  // stated passes; one whose rate is several times too high (e.g. the data's residuals at the MAP
  // judged with a too small spread, or the prior term left out of the degrees of freedom) fails.
  // The seeds are fixed, so the count cannot flicker.
  struct Design {
    std::vector<double> times_h;
    double b, lambda_pop, w_lambda;
    unsigned seed;
  };
  for (const Design& d : {Design{{4, 24, 48}, 0.10, 0.008, 0.35, 31u},  // kidney-like, 3 scans
                          Design{{24}, 0.10, 0.008, 0.35, 32u},         // one scan: n = 1 < K
                          Design{{4, 24, 48, 96, 168}, 0.15, 0.006, 0.4, 33u},
                          Design{{4, 24, 48}, 0.15, 0.00336, 0.47, 34u}}) {  // tumour-like, high shrinkage
    const PopulationModel m = e1_truth(d.b, d.lambda_pop, d.w_lambda);
    std::vector<Truth> truth;
    const auto cohort = e1_cohort(2000, d.times_h, d.b, d.seed, truth, d.lambda_pop, d.w_lambda);
    int rejected = 0, other = 0;
    for (const auto& s : cohort) {
      const TacFit fit = population_map_fit(m, s, A0_MBQ, LP, "test");
      const auto& c = fit.candidates.at(0);
      if (has_flag_starting(c, RESIDUAL_FLAG)) ++rejected;
      if (c.flags.size() != static_cast<size_t>(has_flag_starting(c, RESIDUAL_FLAG))) ++other;
    }
    const size_t n_times = d.times_h.size();
    CAPTURE(n_times);
    CAPTURE(d.seed);
    MESSAGE("rejected " << rejected << " of 2000 (expected about 2)");
    CHECK(rejected <= 10);
    CHECK(other == 0);  // no other flag on data drawn from the population
  }
}

TEST_CASE("population: the residual limit is the chi-square quantile, with b at its capped upper bound when estimated") {
  // One point at 24 h, c times the population's typical curve (theta). Its prior predictive SD of
  // ln y is about sqrt(b^2 + omega_A + (lambda t)^2 omega_lambda) = 0.32, so c = 5 puts it about
  // 5 SD out (chi2 near 25): above the chi-square(1) limit 10.83 (the 0.999 quantile, tables).
  // With b estimated from 1 residual dof its upper bound is capped at MAP_CHECK_MAX_SIGMA_LOG = 0.5:
  // the predictive SD becomes sqrt(0.32^2 - 0.1^2 + 0.5^2) = 0.58, c = 5 is 2.8 SD out (chi2 near
  // 7.6, not flagged), c = 20 is 5.1 SD out (near 26) and c = 1e5 (11.5 on the log scale) far out:
  // both flagged against the same chi-square(1) limit.
  PopulationModel m = e1_truth(0.1, 0.008, 0.35);
  TacSeries tac;
  tac.patient = "P1";
  tac.voi = "kidneys";
  tac.time_h = VectorXd::Constant(1, 24.0);
  const double typical = A0_MBQ * std::exp(m.theta(0)) * std::exp(-(std::exp(m.theta(1)) + LP) * 24.0);
  auto flag_of = [&](double c) {
    tac.activity_MBq = VectorXd::Constant(1, c * typical);
    const TacFit fit = population_map_fit(m, tac, A0_MBQ, LP, "test");
    const auto& flags = fit.candidates.at(0).flags;
    const auto it = std::find_if(flags.begin(), flags.end(),
                                 [](const std::string& f) { return f.rfind(RESIDUAL_FLAG, 0) == 0; });
    return it == flags.end() ? std::string() : *it;
  };
  CHECK(flag_of(1.0).empty());
  CHECK(flag_of(5.0).find(",limit=10.83,n=1") != std::string::npos);
  m.sigma_log_dof = 1;  // as a previous-cycles prior from one earlier cycle of 3 points (E1)
  CHECK(flag_of(5.0).empty());
  CHECK(flag_of(20.0).find(",limit=10.83,n=1") != std::string::npos);
  CHECK(flag_of(1e5).find(",limit=10.83,n=1") != std::string::npos);
}

// Review of 0.15 (D2): the criterion took a learned population as known, so a population learned
// from 10 TACs rejected 2.5-3 % of the MAPs of TACs drawn like its own (synth cohorts, 6 scans),
// where the design rate is 1e-3.
TEST_CASE("population: MAPs with a population learned from 10 TACs are rejected at about the criterion's rate") {
  // Seeded: R populations, each learned from 10 TACs (E1, kidney-like rates as above, 6 scans to
  // 168 h, b = 0.1 as synth's organ default), each applied by MAP to M other TACs drawn from the same known truth
  // (e1_cohort's), so that the count averages over the learned populations' own estimation
  // errors (the design rate is a rate over populations and TACs alike).
  const std::vector<double> times_h = {1, 4, 24, 48, 96, 168};
  const int R = 4, M = 500;
  int rejected = 0, other = 0;
  for (int r = 0; r < R; ++r) {
    std::vector<Truth> truth;
    const auto learned_from = e1_cohort(10, times_h, 0.1, 41u + static_cast<unsigned>(r), truth, 0.008, 0.35);
    const auto models = learn_e1(learned_from);
    REQUIRE(models.size() == 1);
    const auto cohort = e1_cohort(M, times_h, 0.1, 51u + static_cast<unsigned>(r), truth, 0.008, 0.35);
    for (const auto& s : cohort) {
      const TacFit fit = population_map_fit(models[0], s, A0_MBQ, LP, "test");
      const auto& c = fit.candidates.at(0);
      const bool conflict = has_flag_starting(c, RESIDUAL_FLAG);
      rejected += conflict;
      // the cohort-size warning is a warning, not a flag: no other flag on data drawn like its own
      if (c.flags.size() != static_cast<size_t>(conflict)) ++other;
    }
  }
  MESSAGE("rejected " << rejected << " of " << R * M << " (expected about 2)");
  // The design rate is 1e-3 per TAC: about 2 of 2000. The bound 6 (3 per 1000) is the count that
  // Binomial(2000, 1e-3) (Poisson(2)) exceeds with probability 4.5e-3: a criterion calibrated as
  // stated passes; one taking the learned population as known fails (0.15: 14 of 2000 here, 10 of
  // them with the population whose b and Omega of the amplitude came out low; 11 with theta_se
  // alone allowed for, 7 with theta_se and b's error, 0 with Omega's too). The seeds are fixed, so
  // the count cannot flicker.
  CHECK(rejected <= 6);
  CHECK(other == 0);
}

// ---- The population's own estimation error in the MAP's u (issue 15; methods.md §10) ----

TEST_CASE("population uncertainty: learned SEs of ln Omega and ln b near their analytic values (rich data)") {
  // 200 TACs of 5 scans at 10 %: each TAC's phi is nearly known (shrinkage < 0.3), so Omega_kk is
  // about the variance of 200 draws: Var(ln s^2) = 2 / n, SE 0.100. The data's own variance C_i
  // lowers the information a little (the amplitude's C_i about 1e-3 against Omega 0.09); the rate's
  // more (Omega 0.16, shrinkage up to 0.3): 20 % above 0.100 allowed, and not below it (less
  // information than n exact draws is impossible in this model). ln b: b^2 from about 1000 - 400
  // residual degrees of freedom (the 2 x 200 random effects, fewer where shrunk), SE 1 / sqrt(2 d)
  // between 1 / sqrt(2 x 1000) = 0.0224 and 1 / sqrt(2 x 600) = 0.0289.
  std::vector<Truth> truth;
  const auto cohort = e1_cohort(200, {4, 24, 48, 96, 168}, 0.10, 20261206u, truth);
  const auto models = learn_e1(cohort);
  REQUIRE(models.size() == 1);
  const auto& m = models[0];
  REQUIRE(m.log_omega_se.size() == 2);
  MESSAGE("log_omega_se " << m.log_omega_se.transpose() << ", log_sigma_log_se " << m.log_sigma_log_se);
  for (int k = 0; k < 2; ++k) {
    CHECK(m.log_omega_se(k) >= std::sqrt(2.0 / 200) * 0.999);  // 0.999: rounding only
    CHECK(m.log_omega_se(k) <= std::sqrt(2.0 / 200) * 1.2);
  }
  CHECK(m.log_sigma_log_se >= 1 / std::sqrt(2.0 * 1000));
  CHECK(m.log_sigma_log_se <= 1 / std::sqrt(2.0 * 600));
}

namespace {

// An E1 population of known numbers (a hand-written file's), with the given SEs of theta, ln Omega
// and ln b: the MAP is then judged against recomputations under shifted populations, not learning.
PopulationModel e1_known(const VectorXd& theta_se, const VectorXd& log_omega_se, double log_sigma_se) {
  PopulationModel m;
  m.voi_kind = "kidneys";
  m.function = "E1";
  m.phi_names = population_parameter_names(*models::find_exponential("E1"));
  m.theta = Eigen::Vector2d(std::log(50.0 / A0_MBQ), std::log(0.008));
  m.omega = Eigen::Vector2d(0.09, 0.12).asDiagonal();
  m.sigma_log = 0.1;
  m.theta_se = theta_se;
  m.log_omega_se = log_omega_se;
  m.log_sigma_log_se = log_sigma_se;
  m.n_patients = 200;
  m.n_observations = 600;
  return m;
}

}  // namespace

TEST_CASE("population uncertainty: SEs of 0 give the old u, SEs > 0 add the MAP's change under shifted populations") {
  // Kidney-like TAC scanned at 4, 24, 48 h (the rate is barely seen: the prior matters).
  std::vector<Truth> truth;
  const auto cohort = e1_cohort(1, {4, 24, 48}, 0.10, 31u, truth, 0.008, 0.35);
  const auto& tac = cohort[0];
  const VectorXd none;  // empty: not known
  const PopulationModel known = e1_known(Eigen::Vector2d(0.03, 0.04), none, std::numeric_limits<double>::quiet_NaN());
  const TacFit old_fit = population_map_fit(known, tac, A0_MBQ, LP, "test");  // as 0.16: population taken as known
  REQUIRE(old_fit.accepted);
  CHECK(old_fit.notes.at(0).find("no standard errors of ln Omega") != std::string::npos);
  // every SE 0: the population known exactly; u exactly the old one (no refit is made)
  const TacFit zero = population_map_fit(e1_known(VectorXd::Zero(2), VectorXd::Zero(2), 0.0), tac, A0_MBQ, LP, "test");
  CHECK(zero.tia_MBq_h == old_fit.tia_MBq_h);
  CHECK(zero.tia_u_MBq_h == old_fit.tia_u_MBq_h);
  // SEs of theta of the rate 0.2, ln Omega of the rate 1.0 (Omega known to a factor e), ln b 0.3;
  // the amplitude's 0: u grows by the MAP's change under those shifts
  const Eigen::Vector2d theta_se(0.0, 0.2), omega_se(0.0, 1.0);
  const double sigma_se = 0.3;
  const TacFit fit = population_map_fit(e1_known(theta_se, omega_se, sigma_se), tac, A0_MBQ, LP, "test");
  REQUIRE(fit.accepted);
  CHECK(fit.tia_MBq_h == old_fit.tia_MBq_h);  // the estimate itself is unchanged
  CHECK(fit.tia_u_MBq_h > 1.05 * old_fit.tia_u_MBq_h);  // clearly more (measured 1.12x); its size is checked below
  CHECK(fit.notes.at(0).find("population's own estimation error") != std::string::npos);
  // The truth: each shifted population as its own (hand-written) population, MAP from scratch.
  auto map_at = [&](int j, double sign) {
    PopulationModel s = e1_known(theta_se, none, std::numeric_limits<double>::quiet_NaN());
    if (j == 0) s.theta(1) += sign * theta_se(1);
    if (j == 1) s.omega(1, 1) *= std::exp(sign * omega_se(1));
    if (j == 2) s.sigma_log *= std::exp(sign * sigma_se);
    return population_map_fit(s, tac, A0_MBQ, LP, "test");
  };
  Eigen::MatrixXd expected = old_fit.candidates[0].covariance;
  double u_pop2_tia = 0;  // sum of squared half TIA differences, the TIA's own secants
  for (int j = 0; j < 3; ++j) {
    const TacFit up = map_at(j, +1), down = map_at(j, -1);
    const VectorXd dp = 0.5 * (up.candidates[0].parameters - down.candidates[0].parameters);
    expected += dp * dp.transpose();
    u_pop2_tia += std::pow(0.5 * (up.tia_MBq_h - down.tia_MBq_h), 2);
  }
  const Eigen::MatrixXd& got = fit.candidates[0].covariance;
  // The refits start from the MAP, the truth's from theta: both stop within the Levenberg-Marquardt's
  // xtol (1e-10 relative) of the same optima, so the parameter differences agree to about 1e-8 of the
  // parameters; 1e-5 of the largest entry is ample and far below any change tested.
  CHECK((got - expected).cwiseAbs().maxCoeff() <= 1e-5 * expected.cwiseAbs().maxCoeff());
  // u_pop^2 = sum_j (g^T dp_j)^2 (the TIA's gradient at the MAP) against the TIA's own half
  // differences: they differ by the curvature of TIA = A / (lambda_bio + lambda_p) over the
  // shifts (dp of the rate up to a third of it here): 5 % of u_pop^2 allowed (measured 1.4 %).
  const double u_pop2 = fit.tia_u_MBq_h * fit.tia_u_MBq_h - old_fit.tia_u_MBq_h * old_fit.tia_u_MBq_h;
  MESSAGE("u old " << old_fit.tia_u_MBq_h << ", with population error " << fit.tia_u_MBq_h << ", u_pop^2 " << u_pop2
                   << " against the TIA's secants " << u_pop2_tia);
  CHECK(u_pop2 == doctest::Approx(u_pop2_tia).epsilon(0.05));
}

TEST_CASE("population uncertainty: a previous-cycles-like prior (Omega with its mean's error) is not widened") {
  // omega_includes_theta_error: the prior's Omega already is the predictive variance; SEs present
  // (here by hand) must not be added again.
  std::vector<Truth> truth;
  const auto cohort = e1_cohort(1, {4, 24, 48}, 0.10, 32u, truth, 0.008, 0.35);
  PopulationModel m = e1_known(Eigen::Vector2d(0.1, 0.2), Eigen::Vector2d(0.5, 1.0), 0.3);
  const TacFit widened = population_map_fit(m, cohort[0], A0_MBQ, LP, "test");
  m.omega_includes_theta_error = true;
  const TacFit fit = population_map_fit(m, cohort[0], A0_MBQ, LP, "test");
  m.log_omega_se = VectorXd();
  const TacFit plain = population_map_fit(m, cohort[0], A0_MBQ, LP, "test");
  CHECK(fit.tia_u_MBq_h == plain.tia_u_MBq_h);
  CHECK(widened.tia_u_MBq_h > fit.tia_u_MBq_h);
}

TEST_CASE("population uncertainty: a parameter its cohort did not determine makes u unknown, with the reason") {
  // Review of 0.17 (finding 4): a log_omega_se of 1e6 (or 120, learned by a non-converged E2 population)
  // overflowed the shifted Omega: u became NaN with the reason that a MAP had failed, or huge
  // (1.8e5 x the TIA). An SE above MAX_POPULATION_LOG_SE on the log scale (a factor e^3 = 20 at one
  // SE) is a parameter the learning cohort did not determine: u is unknown, saying which.
  std::vector<Truth> truth;
  const auto cohort = e1_cohort(1, {4, 24, 48}, 0.10, 31u, truth, 0.008, 0.35);
  for (const double se : {1e6, 120.0}) {
    CAPTURE(se);
    const TacFit fit = population_map_fit(e1_known(Eigen::Vector2d(0.03, 0.04), Eigen::Vector2d(0.1, se), 0.1),
                                          cohort[0], A0_MBQ, LP, "test");
    CHECK(std::isnan(fit.tia_u_MBq_h));
    CHECK(fit.tia_u_unknown_reason.find("not determined") != std::string::npos);
    CHECK(fit.tia_u_unknown_reason.find("Omega of log_dlambda1_bio_per_h") != std::string::npos);
    CHECK(std::isfinite(fit.tia_MBq_h));
  }
}

TEST_CASE("population MAP: a population that did not converge gives its MAPs a warning") {
  // Review of 0.17 (finding 4): a learned population stopped at its iteration limit was used without a word.
  std::vector<Truth> truth;
  const auto cohort = e1_cohort(1, {4, 24, 48}, 0.10, 31u, truth, 0.008, 0.35);
  auto m = e1_known(Eigen::Vector2d(0.03, 0.04), Eigen::Vector2d(0.1, 0.1), 0.1);
  m.converged = true;
  const auto ok = population_map_fit(m, cohort[0], A0_MBQ, LP, "test");
  CHECK(std::none_of(ok.candidates[0].warnings.begin(), ok.candidates[0].warnings.end(),
                     [](const std::string& w) { return w == "population_not_converged"; }));
  m.converged = false;
  const auto stopped = population_map_fit(m, cohort[0], A0_MBQ, LP, "test");
  CHECK(std::count(stopped.candidates[0].warnings.begin(), stopped.candidates[0].warnings.end(),
                   "population_not_converged") == 1);
}

TEST_CASE("population: learned on 1, 2 and 3 threads, bit-identical theta, Omega and b of every candidate") {
  // 30 TACs (seed 19), two candidates and the sampled refinement: the threads split the candidates and,
  // left over, each fit's TACs (its E-step); each TAC's MAP and draws are its own, summed in TAC order
  std::vector<Truth> truth;
  const auto tacs = e1_cohort(30, {4, 24, 48, 96, 168}, 0.1, 19u, truth);
  const auto learned_on = [&tacs](unsigned threads) {
    PopulationOptions o;
    o.candidates = {"E1", "E2u"};
    o.max_iterations = 5;  // need not converge, only be the same
    o.threads = threads;
    return learn_population(tacs, same_activity(tacs), LP, o, "t.csv");
  };
  const auto one = learned_on(1);
  REQUIRE(one.size() == 1);
  for (const unsigned threads : {2u, 3u}) {
    CAPTURE(threads);
    const auto more = learned_on(threads);
    REQUIRE(more.size() == 1);
    CHECK(more[0].function == one[0].function);
    CHECK(more[0].theta == one[0].theta);
    CHECK(more[0].omega == one[0].omega);
    CHECK(more[0].sigma_log == one[0].sigma_log);
    CHECK(more[0].minus2_log_likelihood == one[0].minus2_log_likelihood);
    REQUIRE(more[0].candidates.size() == one[0].candidates.size());
    for (size_t i = 0; i < one[0].candidates.size(); ++i)
      CHECK(more[0].candidates[i].bic == one[0].candidates[i].bic);
  }
}
