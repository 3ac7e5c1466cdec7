// lutdose synth (lutdose/cohort/synth.h): analytic truth, the requested inter-patient spread and
// noise, determinism and the seeding scheme, validation of the options.
#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <cmath>
#include <numeric>

#include "lutdose/cohort/synth.h"
#include "lutdose/error.h"
#include "lutdose/io/output_dir.h"
#include "lutdose/pipeline/reference_data.h"
#include "../test_util.h"

namespace {

const lutdose::ReferenceData& ref() {
  static const auto r = lutdose::ReferenceData::load(LUTDOSE_TEST_DATA_DIR);
  return r;
}

// 177Lu: ln2 / (6.647 d x 24 h/d) (ICRP-107, methods.md §0), computed here, not by the engine.
const double kLambdaP = std::log(2.0) / (6.647 * 24.0);
// data/kinetics/population_kinetics.csv: mean lambda_bio of liver (T_eff 70 h) and tumour_* (90 h).
const double kLiverLambdaBio = 0.00555711, kTumourLambdaBio = 0.00335665;

lutdose::SynthOptions noise_free(int n) {
  lutdose::SynthOptions o;
  o.n_patients = n;
  o.seed = 42;
  o.noise = {{"organ", {}}, {"tumour", {}}};
  o.cv_fraction = 0;
  o.cv_clearance = 0;
  o.data_dir = LUTDOSE_TEST_DATA_DIR;
  return o;
}

const lutdose::SynthVoi& voi_of(const lutdose::SynthPatient& p, const std::string& name, int cycle = 1) {
  for (const auto& v : p.cycles.at(static_cast<size_t>(cycle - 1)).vois)
    if (v.voi == name) return v;
  FAIL("no VOI " << name);
  throw;
}

double sd_of(const std::vector<double>& x) {
  const double m = std::accumulate(x.begin(), x.end(), 0.0) / static_cast<double>(x.size());
  double s = 0;
  for (double v : x) s += (v - m) * (v - m);
  return std::sqrt(s / static_cast<double>(x.size() - 1));
}

}  // namespace

TEST_CASE("synth: without variability and noise the TAC and TIA are the closed forms of E1") {
  const auto m = lutdose::make_synth_model(ref(), noise_free(1));
  const auto p = lutdose::synth_patient(m, 1);
  // methods.md §9.3: liver f = 0.055, tumour f = 0.006; A0 = 7400 MBq (default).
  for (const auto& [name, f, lbio] : {std::tuple{"liver", 0.055, kLiverLambdaBio}, {"tumour_1", 0.006, kTumourLambdaBio}}) {
    const auto& v = voi_of(p, name);
    const double k = lbio + kLambdaP;
    // 1e-12: data/decay/Lu-177.json has the same 6.647 d, so only the rounding of a few double
    // operations (about 1e-15 each) separates the two; 1e-12 leaves room for a different order.
    CHECK(v.tia_MBq_h == doctest::Approx(f * 7400 / k).epsilon(1e-12));
    for (size_t i = 0; i < m.options.times_h.size(); ++i) {
      const double expected = f * 7400 * std::exp(-k * m.options.times_h[i]);
      CHECK(v.true_MBq[i] == doctest::Approx(expected).epsilon(1e-12));  // as above
      CHECK(v.measured_MBq[i] == v.true_MBq[i]);  // no noise: exactly the true value
    }
  }
}

TEST_CASE("synth: the true tumour dose lies between local electron and electron+photon deposition") {
  const auto m = lutdose::make_synth_model(ref(), noise_free(1));
  const auto p = lutdose::synth_patient(m, 1);
  const auto& v = voi_of(p, "tumour_1");
  CHECK(v.mass_g == 20);  // methods.md §9.3's tumour
  // methods.md §0: electrons absorbed locally give 0.085306 TIA/m; all photons too add 0.020245
  // TIA/m. A 20 g sphere absorbs nearly all electrons and few photons; the organs' cross-dose is
  // small, so the dose lies in between (0.99: the electrons' escape from a 20 g sphere is < 1 %).
  const double local = 0.085306 * v.tia_MBq_h / v.mass_g;
  CHECK(v.dose_Gy > 0.99 * local);
  CHECK(v.dose_Gy < local + 0.020245 * v.tia_MBq_h / v.mass_g);
}

TEST_CASE("synth: inter-patient spread is log-normal with the requested CVs") {
  auto o = noise_free(2000);
  o.cv_fraction = 0.30;
  o.cv_clearance = 0.25;
  const auto m = lutdose::make_synth_model(ref(), o);
  std::vector<double> log_f, log_l, f;
  for (int k = 1; k <= o.n_patients; ++k) {
    const auto p = lutdose::synth_patient(m, k);
    const auto& v = voi_of(p, "liver");
    log_f.push_back(std::log(v.fraction / 0.055));
    log_l.push_back(std::log(v.lambda_bio_per_h / kLiverLambdaBio));
    f.push_back(v.fraction);
  }
  const double n = static_cast<double>(o.n_patients);
  // Log-normal with CV c: SD of the log s = sqrt(ln(1 + c^2)). The sample SD of n normal values
  // has a standard error s / sqrt(2 (n - 1)); 4 standard errors: a false failure once in 15 000.
  for (const auto& [x, cv] : {std::pair{log_f, 0.30}, {log_l, 0.25}}) {
    const double s = std::sqrt(std::log1p(cv * cv));
    CHECK(std::abs(sd_of(x) - s) < 4 * s / std::sqrt(2 * (n - 1)));
  }
  // Arithmetic mean f_pop: standard error of the sample mean CV f_pop / sqrt(n); 4 of them.
  const double mean_f = std::accumulate(f.begin(), f.end(), 0.0) / n;
  CHECK(std::abs(mean_f - 0.055) < 4 * 0.30 * 0.055 / std::sqrt(n));
}

TEST_CASE("synth: proportional noise has the requested relative SD per VOI kind") {
  auto o = noise_free(400);
  o.noise = {{"organ", {lutdose::SynthNoiseModel::proportional, 0.10, 0}},
             {"tumour", {lutdose::SynthNoiseModel::proportional, 0.15, 0}}};
  const auto m = lutdose::make_synth_model(ref(), o);
  std::vector<double> organ, tumour;
  for (int k = 1; k <= o.n_patients; ++k) {
    const auto p = lutdose::synth_patient(m, k);
    for (const auto& v : p.cycles[0].vois)
      for (size_t i = 0; i < v.true_MBq.size(); ++i)
        (v.kind == "tumour" ? tumour : organ).push_back(v.measured_MBq[i] / v.true_MBq[i] - 1);
  }
  // Standard error of a sample SD: b / sqrt(2 (n - 1)); 4 of them as above. Values <= 0 are
  // redrawn, which at 10 sigma (b = 0.1) and 6.7 sigma (0.15) changes nothing measurable.
  for (const auto& [r, b] : {std::pair{organ, 0.10}, {tumour, 0.15}}) {
    const double nr = static_cast<double>(r.size());
    CHECK(std::abs(sd_of(r) - b) < 4 * b / std::sqrt(2 * (nr - 1)));
    std::vector<double> sorted = r;
    std::nth_element(sorted.begin(), sorted.begin() + static_cast<long>(sorted.size() / 2), sorted.end());
    // Median of n normal values: standard error 1.2533 b / sqrt(n); 4 of them.
    CHECK(std::abs(sorted[sorted.size() / 2]) < 4 * 1.2533 * b / std::sqrt(nr));
  }
}

TEST_CASE("synth: Poisson noise is counting noise: relative SD 1/sqrt(N), integer counts, unbiased") {
  auto o = noise_free(4000);
  // 0.01 cps/MBq x 1 min = 0.6 counts/MBq: from ~17 counts (spleen at 168 h) to ~240 (liver at
  // 4 h), where Poisson is not yet a normal distribution and a wrong model would show.
  const double per_MBq = 0.01 * 1.0 * 60.0;
  o.noise = {{"organ", {lutdose::SynthNoiseModel::poisson, 0, 0, 0.01, 1.0}}, {"tumour", {}}};
  o.vois = {"liver", "spleen"};
  const auto m = lutdose::make_synth_model(ref(), o);
  std::map<std::pair<std::string, size_t>, std::vector<double>> counts;  // (VOI, time) -> counts drawn
  std::map<std::pair<std::string, size_t>, double> expected;             // -> N = A CF T
  for (int k = 1; k <= o.n_patients; ++k) {
    const auto p = lutdose::synth_patient(m, k);
    for (const auto& v : p.cycles[0].vois)
      for (size_t i = 0; i < v.true_MBq.size(); ++i) {
        const double c = v.measured_MBq[i] * per_MBq;
        CHECK(std::abs(c - std::round(c)) < 1e-9 * c);  // a whole number of counts, converted back
        counts[{v.voi, i}].push_back(std::round(c));
        expected[{v.voi, i}] = v.true_MBq[i] * per_MBq;
      }
  }
  const double n = o.n_patients;
  for (const auto& entry : counts) {
    // plain references, not structured bindings: clang refuses CHECK_MESSAGE's lambda capturing those
    const auto& key = entry.first;
    const auto& c = entry.second;
    const double N = expected[key];
    REQUIRE(N > 10);  // the level where 0 counts (redrawn) has a probability < 5e-5: no bias
    const double mean = std::accumulate(c.begin(), c.end(), 0.0) / n;
    // Poisson: SD sqrt(N), so the relative SD of the activity is 1/sqrt(N). The sample SD's
    // standard error is sqrt(N) sqrt((2 + 1/N) / (4 n)) ~ sqrt(N) / sqrt(2 (n - 1)) (excess kurtosis
    // 1/N); 4 standard errors, times 1.05 for the kurtosis term: a false failure once in 15 000.
    CHECK_MESSAGE(std::abs(sd_of(c) - std::sqrt(N)) < 4.2 * std::sqrt(N) / std::sqrt(2 * (n - 1)), key.first);
    // Mean N: standard error sqrt(N / n); 4 of them.
    CHECK_MESSAGE(std::abs(mean - N) < 4 * std::sqrt(N / n), key.first);
  }
  // sigma_MBq is the same law: sqrt(A / (CF T)).
  CHECK(o.noise["organ"].sigma_MBq(100) == doctest::Approx(std::sqrt(100 / per_MBq)).epsilon(1e-12));
  CHECK(lutdose::to_string(lutdose::parse_synth_noise("--noise", "poisson:5:30")) == "poisson:5:30");
  CHECK_THROWS_AS(lutdose::parse_synth_noise("--noise", "poisson:0:30"), lutdose::InputError);
  CHECK_THROWS_AS(lutdose::parse_synth_noise("--noise", "poisson:5"), lutdose::InputError);
  CHECK_THROWS_AS(lutdose::parse_synth_noise("--noise", "poisson:5:601"), lutdose::InputError);
}

TEST_CASE("synth: --cv-mass draws log-normal masses with the requested CV, kinetics and truth follow") {
  auto o = noise_free(4000);
  o.cv_fraction = 0.3;
  const auto base_model = lutdose::make_synth_model(ref(), o);
  o.cv_mass = {{"organ", 0.25}, {"tumour", 0.5}};
  const auto m = lutdose::make_synth_model(ref(), o);
  std::map<std::string, std::vector<double>> log_ratio, ratio;
  for (int k = 1; k <= o.n_patients; ++k) {
    const auto p = lutdose::synth_patient(m, k);
    const auto base = lutdose::synth_patient(base_model, k);
    for (size_t i = 0; i < p.cycles[0].vois.size(); ++i) {
      const auto& v = p.cycles[0].vois[i];
      const auto& b = base.cycles[0].vois[i];
      // the kinetics are drawn before the masses: the same patient with or without --cv-mass
      REQUIRE(v.fraction == b.fraction);
      REQUIRE(v.lambda_bio_per_h == b.lambda_bio_per_h);
      REQUIRE(v.tia_MBq_h == b.tia_MBq_h);
      log_ratio[v.voi].push_back(std::log(v.mass_g / b.mass_g));
      ratio[v.voi].push_back(v.mass_g / b.mass_g);
    }
  }
  const double n = o.n_patients;
  for (const auto& entry : log_ratio) {
    const auto& voi = entry.first;  // not structured bindings: CHECK_MESSAGE's lambda (clang)
    const auto& x = entry.second;
    const double cv = voi == "tumour_1" ? 0.5 : 0.25;
    const double s = std::sqrt(std::log1p(cv * cv));
    // SD of the log: standard error s / sqrt(2 (n - 1)); 4 of them (as the spread test above).
    CHECK_MESSAGE(std::abs(sd_of(x) - s) < 4 * s / std::sqrt(2 * (n - 1)), voi);
    // Arithmetic mean of the factor 1: standard error cv / sqrt(n); 4 of them.
    const auto& r = ratio.at(voi);
    CHECK_MESSAGE(std::abs(std::accumulate(r.begin(), r.end(), 0.0) / n - 1) < 4 * cv / std::sqrt(n), voi);
  }
  // The true dose is that of the patient's own mass: a tumour (self-dose only, sphere S-values)
  // of patient 3 has the dose of a cohort whose every tumour has that mass.
  const auto p3 = lutdose::synth_patient(m, 3);
  auto fixed = noise_free(3);
  fixed.cv_fraction = 0.3;
  fixed.tumour_mass_g = voi_of(p3, "tumour_1").mass_g;
  const auto q3 = lutdose::synth_patient(lutdose::make_synth_model(ref(), fixed), 3);
  CHECK(voi_of(p3, "tumour_1").mass_g != doctest::Approx(20));  // the draw moved it
  CHECK(voi_of(p3, "tumour_1").dose_Gy == doctest::Approx(voi_of(q3, "tumour_1").dose_Gy).epsilon(1e-12));
  CHECK(voi_of(p3, "tumour_1").tia_MBq_h == voi_of(q3, "tumour_1").tia_MBq_h);
}

TEST_CASE("synth: --cv-mass 0 and the default give today's bytes") {
  auto o = noise_free(20);
  o.cv_fraction = 0.3;
  o.noise["organ"] = {lutdose::SynthNoiseModel::proportional, 0.1, 0};
  auto files = [&] {
    std::map<std::string, std::string> f;
    for (auto& x : lutdose::synth_cohort_files(lutdose::make_synth_model(ref(), o), "test")) f[x.name] = x.bytes;
    return f;
  };
  const auto a = files();
  o.cv_mass = {{"organ", 0.0}, {"tumour", 0.0}};
  const auto b = files();
  for (const char* name : {"tacs.csv", "patients.csv", "truth.csv"}) CHECK(a.at(name) == b.at(name));
  CHECK(a.at("synth.json").find("cv_mass") == std::string::npos);
}

TEST_CASE("synth: a whole_body VOI needs a user population entry, then f = 1 and E1 with its rate") {
  auto o = noise_free(300);
  o.phantom = "icrp89-male";  // the phantoms with a whole_body VOI (data/svalues/voi_region_map.csv)
  o.vois = {"liver", "whole_body"};
  o.cv_fraction = 0.3;
  o.cv_clearance = NAN;  // the population entries' sd / mean
  // no shipped whole-body kinetics: refused, naming the option that supplies them
  CHECK_THROWS_WITH_AS(lutdose::make_synth_model(ref(), o), doctest::Contains("--population-kinetics"),
                       lutdose::InputError);
  // A test fixture, not sourced kinetics: lambda_bio 0.01 +- 0.002 1/h (CV 20 %).
  const lutdose::test::TempDir dir;
  {
    std::ofstream f(dir / "pk.csv");
    f << "target_pattern,function,parameter,mean,sd,source\nwhole_body,E1,lambda1_bio_per_h,0.01,0.002,test\n";
  }
  o.population_kinetics_path = dir / "pk.csv";
  CHECK_THROWS_WITH_AS(lutdose::make_synth_model(ref(), o), doctest::Contains("--noise whole_body=SPEC"),
                       lutdose::InputError);  // no sourced default noise either
  o.noise["whole_body"] = {};
  auto m = lutdose::make_synth_model(ref(), o);
  REQUIRE(m.vois.size() == 2);
  CHECK(m.vois[1].kind == "whole_body");
  CHECK(m.vois[1].cv_fraction == 0);                           // f = 1 for every patient
  CHECK(m.vois[1].cv_clearance == doctest::Approx(0.2).epsilon(1e-12));  // the entry's sd / mean
  CHECK(m.vois[0].lambda_bio_mean_per_h == kLiverLambdaBio);    // the shipped entries still apply
  o.cv_mass = {{"whole_body", 0.1}};  // the dose step takes the whole body's mass from the phantom
  CHECK_THROWS_WITH_AS(lutdose::make_synth_model(ref(), o), doctest::Contains("--cv-mass is 'whole_body=0.1'"),
                       lutdose::InputError);
  o.cv_mass.clear();
  std::vector<double> log_l;
  for (int k = 1; k <= o.n_patients; ++k) {
    const auto p = lutdose::synth_patient(m, k);
    const auto& v = voi_of(p, "whole_body");
    CHECK(v.fraction == 1.0);
    const double keff = v.lambda_bio_per_h + kLambdaP;
    CHECK(v.tia_MBq_h == doctest::Approx(7400 / keff).epsilon(1e-12));
    CHECK(v.true_MBq[1] == doctest::Approx(7400 * std::exp(-keff * 24)).epsilon(1e-12));
    CHECK(v.mass_g == 73000);  // the set's whole-body region: ICRP 89 male "Total Body", 73 kg
    CHECK(v.dose_Gy > 0);
    log_l.push_back(std::log(v.lambda_bio_per_h / 0.01));
  }
  // the rate's log-normal spread: SD of the log sqrt(ln(1 + 0.2^2)), 4 standard errors as above
  const double s = std::sqrt(std::log1p(0.04)), n = o.n_patients;
  CHECK(std::abs(sd_of(log_l) - s) < 4 * s / std::sqrt(2 * (n - 1)));
}

TEST_CASE("synth: the same seed gives the same bytes, another seed other ones, patient k is independent of N") {
  auto o = noise_free(10);
  o.cv_fraction = 0.3;
  o.noise["organ"] = {lutdose::SynthNoiseModel::combined, 0.1, 2.0};
  auto files = [&] {
    std::map<std::string, std::string> f;
    for (auto& x : lutdose::synth_cohort_files(lutdose::make_synth_model(ref(), o), "test")) f[x.name] = x.bytes;
    return f;
  };
  const auto a = files(), b = files();
  CHECK(a.size() == 4);
  CHECK(a == b);
  for (const auto& file : a)  // nothing that depends on where the data directory is
    CHECK_MESSAGE(file.second.find(LUTDOSE_TEST_DATA_DIR) == std::string::npos, file.first);
  o.seed = 43;
  const auto c = files();
  CHECK(c.at("tacs.csv") != a.at("tacs.csv"));
  CHECK(c.at("truth.csv") != a.at("truth.csv"));
  o.seed = 42;
  o.n_patients = 20;
  const auto d = files();
  for (const char* name : {"tacs.csv", "truth.csv", "patients.csv"})  // patients 1-10 first, unchanged
    CHECK(d.at(name).compare(0, a.at(name).size(), a.at(name)) == 0);
}

TEST_CASE("synth: bad options name the option, the value and what was expected") {
  auto o = noise_free(0);
  o.times_h = {4, -1};
  o.cycles = 0;
  o.noise["bone"] = {lutdose::SynthNoiseModel::proportional, 0.1, 0};
  const auto problems = lutdose::validate(o);
  REQUIRE(problems.size() == 4);
  CHECK(problems[0].find("patients is '0'") != std::string::npos);
  CHECK(problems[1].find("--times-h is '4,-1'; expected") != std::string::npos);
  CHECK(problems[2].find("--cycles is '0'") != std::string::npos);
  CHECK(problems[3].find("--noise is 'bone=proportional:0.1'; expected a VOI kind") != std::string::npos);
  CHECK_THROWS_AS(lutdose::make_synth_model(ref(), o), lutdose::InputError);
  CHECK_THROWS_AS(lutdose::parse_synth_noise("--noise", "proportional:-0.1"), lutdose::InputError);
  CHECK_THROWS_AS(lutdose::parse_synth_noise("--noise", "gaussian:0.1"), lutdose::InputError);
  CHECK(lutdose::to_string(lutdose::parse_synth_noise("--noise", "combined:2:0.1")) == "combined:2:0.1");
  auto w = noise_free(1);
  w.cv_mass = {{"bone", 0.1}, {"organ", -0.1}};
  const auto mass_problems = lutdose::validate(w);
  REQUIRE(mass_problems.size() == 2);
  CHECK(mass_problems[0].find("--cv-mass is 'bone=0.1'; expected a VOI kind") != std::string::npos);
  CHECK(mass_problems[1].find("--cv-mass is 'organ=-0.1'; expected a coefficient of variation") != std::string::npos);
  auto v = noise_free(1);
  v.vois = {"kidneys", "heart"};
  CHECK_THROWS_WITH_AS(lutdose::make_synth_model(ref(), v), doctest::Contains("--vois is 'heart'"), lutdose::InputError);
}

TEST_CASE("synth: case file names are a result set's own names, nothing else is") {
  CHECK(lutdose::is_case_file_name("case-P00001.json"));
  CHECK(lutdose::is_case_file_name("case-a_b-C.json"));
  for (const char* other : {"case-.json", "case-../x.json", "case-a b.json", "case-P1.json.bak", "notes.json",
                            "Case-P1.json", "case-P1.JSON"})
    CHECK_FALSE(lutdose::is_case_file_name(other));
  CHECK_FALSE(lutdose::is_case_file_name("case-" + std::string(65, 'a') + ".json"));  // at most 64 characters
}
