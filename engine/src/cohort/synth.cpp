// Seeded synthetic cohorts with known truth (lutdose/cohort/synth.h, docs/synth.md).
#include "lutdose/cohort/synth.h"

#include <boost/random/mersenne_twister.hpp>
#include <boost/random/normal_distribution.hpp>
#include <boost/random/poisson_distribution.hpp>
#include <boost/random/seed_seq.hpp>

#include <algorithm>
#include <set>
#include <charconv>
#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "lutdose/dosimetry/dose.h"
#include "lutdose/error.h"
#include "lutdose/io/output_dir.h"
#include "lutdose/kinetics/stp.h"
#include "lutdose/pipeline/reference_data.h"

namespace lutdose {

namespace {

//! Shortest text that reads back as the same double (std::to_chars): the same bytes on every
//! platform with IEEE-754 doubles.
std::string num(double x) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, x);
  return std::string(buf, r.ptr);
}

std::string join(const std::vector<double>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + num(v[i]);
  return s;
}

//! Soft-tissue density of the sphere table (data/PROVENANCE.md §3), turning a tumour's mass into
//! the volume its recovery coefficient is read at [g/mL]: the one value dosimetry/svalues.cpp keeps.
const double kTumourDensity_g_per_mL = sphere_density_g_per_mL("100%/0%");

bool with_counts(const SynthOptions& o) { return o.cf_cps_per_MBq > 0; }

bool is_tumour_name(const std::string& voi) {
  for (const char* p : {"tumour_", "tumor_", "lesion_"})
    if (voi.rfind(p, 0) == 0 && voi.size() > std::string(p).size()) return true;
  return false;
}

//! Uptake fraction f_pop of A0 (methods.md §9.3's table of synthetic-patient kinetics, [derived
//! from published Gy/GBq, not literature fits]); a kidney of the pair carries half of it [derived].
struct Fraction {
  double f;
  const char* source;
};
bool fraction_of(const std::string& voi, Fraction& out) {
  if (voi == "whole_body") {  // no variability: a patient's whole body cannot hold more than A0
    out = {1.0, "f = 1: the whole body holds all of A0 at the end of the administration, nothing excreted "
                "yet (mass balance; no inter-patient variability)"};
    return true;
  }
  static const std::map<std::string, Fraction> table = {
      {"kidneys", {0.020, "f = 0.020, methods.md §9.3"}},
      {"kidney_left", {0.010, "f = 0.010, half of the kidney pair's 0.020, methods.md §9.3"}},
      {"kidney_right", {0.010, "f = 0.010, half of the kidney pair's 0.020, methods.md §9.3"}},
      {"liver", {0.055, "f = 0.055, methods.md §9.3"}},
      {"spleen", {0.020, "f = 0.020, methods.md §9.3"}}};
  if (is_tumour_name(voi)) {
    out = {0.006, "f = 0.006 (20 mL tumour), methods.md §9.3"};
    return true;
  }
  const auto it = table.find(voi);
  if (it == table.end()) return false;
  out = it->second;
  return true;
}

std::string problem(const std::string& option, const std::string& value, const std::string& expected) {
  return "command line: " + option + " is '" + value + "'; expected " + expected;
}

void check_noise(const std::map<std::string, SynthNoise>& noise, std::vector<std::string>& problems) {
  const auto& kinds = synth_voi_kinds();
  for (const auto& [kind, n] : noise) {
    if (std::find(kinds.begin(), kinds.end(), kind) == kinds.end())
      problems.push_back(problem("--noise", kind + "=" + to_string(n), "a VOI kind: organ, tumour or whole_body"));
    else if (!(n.b >= 0 && n.b < 1) || !(n.sigma0_MBq >= 0) || !std::isfinite(n.sigma0_MBq))
      problems.push_back(problem("--noise", kind + "=" + to_string(n), "b in [0, 1) and sigma0 >= 0 MBq"));
    else if (n.model == SynthNoiseModel::poisson &&
             !(n.cf_cps_per_MBq > 0 && n.cf_cps_per_MBq <= 1e6 && n.frame_min > 0 && n.frame_min <= 600))
      problems.push_back(problem("--noise", kind + "=" + to_string(n),
                                 "poisson:CF:T with CF in (0, 1e6] cps/MBq and T in (0, 600] min"));
  }
}

void check_cv_mass(const std::map<std::string, double>& cv, std::vector<std::string>& problems) {
  const auto& kinds = synth_voi_kinds();
  for (const auto& [kind, c] : cv) {
    if (std::find(kinds.begin(), kinds.end(), kind) == kinds.end())
      problems.push_back(problem("--cv-mass", kind + "=" + num(c), "a VOI kind: organ, tumour or whole_body"));
    else if (!(c >= 0 && c <= 2))
      problems.push_back(problem("--cv-mass", kind + "=" + num(c), "a coefficient of variation in [0, 2]"));
    else if (kind == "whole_body" && c != 0)  // the dose step takes the whole body's mass from the phantom
      problems.push_back(problem("--cv-mass", kind + "=" + num(c),
                                 "0 for whole_body: the dose step uses the phantom's whole-body mass"));
  }
}

void check_times(const std::vector<double>& t, std::vector<std::string>& problems) {
  bool ok = !t.empty() && t.size() <= 1000;  // the TAC reader's limit (docs/tac-format.md)
  for (size_t i = 0; ok && i < t.size(); ++i)
    ok = std::isfinite(t[i]) && t[i] >= 0 && t[i] <= 1e4 && (i == 0 || t[i] > t[i - 1]);
  if (!ok)
    problems.push_back(problem("--times-h", join(t),
                               "1 to 1000 times in h after administration, each in [0, 1e4], strictly "
                               "increasing, separated by commas (e.g. 4,24,48,96,168)"));
}

void check_counts(const SynthOptions& o, std::vector<std::string>& problems) {
  if (o.format != "tables" && o.format != "cases")
    problems.push_back(problem("--format", o.format, "tables (tacs.csv + patients.csv) or cases (case files)"));
  const bool counts = !std::isnan(o.cf_cps_per_MBq);
  if (counts && !(o.cf_cps_per_MBq > 0 && o.cf_cps_per_MBq <= 1e6))
    problems.push_back(problem("--cf-cps-per-MBq", num(o.cf_cps_per_MBq), "a calibration factor in (0, 1e6] cps/MBq"));
  if (counts && o.format != "cases")
    problems.push_back(problem("--cf-cps-per-MBq", num(o.cf_cps_per_MBq), "counts only with --format cases"));
  if (!(o.frame_min > 0 && o.frame_min <= 600))
    problems.push_back(problem("--frame-min", num(o.frame_min), "an acquisition time in (0, 600] min"));
  if (!(o.dead_time_us >= 0 && o.dead_time_us <= 1e4))
    problems.push_back(problem("--dead-time-us", num(o.dead_time_us), "a dead time in [0, 1e4] us"));
  if (o.dead_time_us > 0 && !counts)
    problems.push_back(problem("--dead-time-us", num(o.dead_time_us), "counts: give --cf-cps-per-MBq too"));
  if (!o.recovery.rc.empty() && !counts)
    problems.push_back(problem("--recovery", "given", "counts: give --cf-cps-per-MBq too"));
  if (!o.recovery.rc.empty())
    for (const auto& p : o.recovery.problems("command line: --recovery")) problems.push_back(p);
}

}  // namespace

double SynthNoise::sigma_MBq(double true_MBq) const {
  switch (model) {
    case SynthNoiseModel::proportional: return b * true_MBq;
    case SynthNoiseModel::constant: return sigma0_MBq;
    case SynthNoiseModel::combined: return std::sqrt(sigma0_MBq * sigma0_MBq + b * b * true_MBq * true_MBq);
    case SynthNoiseModel::poisson: return counts_per_MBq() > 0 ? std::sqrt(true_MBq / counts_per_MBq()) : 0;
    case SynthNoiseModel::none: break;
  }
  return 0;
}

std::string to_string(const SynthNoise& n) {
  switch (n.model) {
    case SynthNoiseModel::proportional: return "proportional:" + num(n.b);
    case SynthNoiseModel::constant: return "constant:" + num(n.sigma0_MBq);
    case SynthNoiseModel::combined: return "combined:" + num(n.sigma0_MBq) + ":" + num(n.b);
    case SynthNoiseModel::poisson: return "poisson:" + num(n.cf_cps_per_MBq) + ":" + num(n.frame_min);
    case SynthNoiseModel::none: break;
  }
  return "none";
}

SynthNoise parse_synth_noise(const std::string& option, const std::string& text) {
  std::vector<std::string> parts;
  std::stringstream ss(text);
  for (std::string p; std::getline(ss, p, ':');) parts.push_back(p);
  const std::string expected =
      "none, proportional:B, constant:SIGMA0_MBQ, combined:SIGMA0_MBQ:B (B a relative SD in [0, 1), "
      "SIGMA0 >= 0 MBq) or poisson:CF_CPS_PER_MBQ:FRAME_MIN (CF in (0, 1e6], FRAME_MIN in (0, 600])";
  auto number = [&](const std::string& s) {
    double x = NAN;
    const auto r = std::from_chars(s.data(), s.data() + s.size(), x);
    if (s.empty() || r.ec != std::errc() || r.ptr != s.data() + s.size() || !std::isfinite(x) || x < 0)
      throw_input_error("command line", option, text, expected);
    return x;
  };
  SynthNoise n;
  if (parts.size() == 1 && parts[0] == "none") return n;
  if (parts.size() == 2 && parts[0] == "proportional") n = {SynthNoiseModel::proportional, number(parts[1]), 0};
  else if (parts.size() == 2 && parts[0] == "constant") n = {SynthNoiseModel::constant, 0, number(parts[1])};
  else if (parts.size() == 3 && parts[0] == "combined")
    n = {SynthNoiseModel::combined, number(parts[2]), number(parts[1])};
  else if (parts.size() == 3 && parts[0] == "poisson")
    n = {SynthNoiseModel::poisson, 0, 0, number(parts[1]), number(parts[2])};
  else throw_input_error("command line", option, text, expected);
  if (!(n.b < 1)) throw_input_error("command line", option, text, expected);
  if (n.model == SynthNoiseModel::poisson &&
      !(n.cf_cps_per_MBq > 0 && n.cf_cps_per_MBq <= 1e6 && n.frame_min > 0 && n.frame_min <= 600))
    throw_input_error("command line", option, text, expected);
  return n;
}

const std::vector<std::string>& synth_voi_kinds() {
  static const std::vector<std::string> kinds = {"organ", "tumour", "whole_body"};
  return kinds;
}

std::string synth_voi_kind(const std::string& voi) {
  return is_tumour_name(voi) ? "tumour" : voi == "whole_body" ? "whole_body" : "organ";
}

std::vector<std::string> validate(const SynthOptions& o) {
  std::vector<std::string> problems;
  if (o.n_patients < 1 || o.n_patients > 1000000)
    problems.push_back(problem("the number of patients", std::to_string(o.n_patients), "a whole number from 1 to 1000000"));
  check_times(o.times_h, problems);
  if (o.cycles < 1 || o.cycles > 100)
    problems.push_back(problem("--cycles", std::to_string(o.cycles), "a whole number from 1 to 100"));
  if (!(o.administered_MBq > 0 && o.administered_MBq <= 1e5))
    problems.push_back(problem("--activity-MBq", num(o.administered_MBq), "an activity in (0, 1e5] MBq"));
  if (o.vois.empty()) problems.push_back(problem("--vois", "", "at least one VOI name"));
  std::set<std::string> seen, repeated;
  for (const auto& v : o.vois)
    if (!seen.insert(v).second && repeated.insert(v).second)
      problems.push_back(problem("--vois", v, "each VOI once (it is named more than once)"));
  check_noise(o.noise, problems);
  check_cv_mass(o.cv_mass, problems);
  if (!(o.cv_fraction >= 0 && o.cv_fraction <= 2))
    problems.push_back(problem("--cv-fraction", num(o.cv_fraction), "a coefficient of variation in [0, 2]"));
  if (!std::isnan(o.cv_clearance) && !(o.cv_clearance >= 0 && o.cv_clearance <= 2))
    problems.push_back(problem("--cv-clearance", num(o.cv_clearance), "a coefficient of variation in [0, 2]"));
  check_counts(o, problems);
  if (!(o.tumour_mass_g >= 1e-3 && o.tumour_mass_g <= 1e6))
    problems.push_back(problem("--tumour-mass-g", num(o.tumour_mass_g), "a mass in [1e-3, 1e6] g"));
  return problems;
}

namespace {

// A whole_body VOI needs its noise given: there is no sourced default (docs/synth.md).
bool lacks_whole_body_noise(const SynthOptions& o, const std::string& voi) {
  return synth_voi_kind(voi) == "whole_body" && o.noise.count("whole_body") == 0;
}

SynthVoiModel voi_model(const ReferenceData& ref, const std::vector<PopulationKinetics>& user, const SynthOptions& o,
                        const std::string& voi) {
  Fraction f{};
  const auto* pk = find_population_kinetics(user, voi, "E1");
  if (pk == nullptr) pk = find_population_kinetics(ref.population_kinetics(), voi, "E1");
  if (voi == "whole_body" && pk == nullptr)
    throw_input_error("command line", "--vois", voi,
                      "population kinetics of whole_body from --population-kinetics FILE (a row whole_body,E1,"
                      "lambda1_bio_per_h,MEAN,SD,SOURCE): lutdose ships no sourced whole-body kinetics");
  if (!fraction_of(voi, f) || pk == nullptr)
    throw_input_error("command line", "--vois", voi,
                      "a VOI with population kinetics (data/kinetics/population_kinetics.csv or "
                      "--population-kinetics) and an uptake fraction (methods.md §9.3): kidneys, kidney_left, "
                      "kidney_right, liver, spleen, tumour_*, tumor_*, lesion_*, whole_body");
  if (lacks_whole_body_noise(o, voi))
    throw_input_error("command line", "--noise", "no whole_body=SPEC",
                      "a noise model for the VOI kind whole_body (--noise whole_body=SPEC, e.g. poisson:CF:T): "
                      "there is no sourced default");
  const ParameterPrior* rate = nullptr;
  for (const auto& p : pk->priors)
    if (p.parameter == "lambda1_bio_per_h") rate = &p;
  if (rate == nullptr || !(rate->mean > 0))
    throw_input_error(pk->where, "lambda1_bio_per_h", voi, "a mean biological clearance rate > 0 1/h for synth");
  SynthVoiModel m;
  m.voi = voi;
  m.kind = synth_voi_kind(voi);
  m.fraction_mean = f.f;
  m.lambda_bio_mean_per_h = rate->mean;
  m.cv_fraction = m.kind == "whole_body" ? 0.0 : o.cv_fraction;
  m.cv_clearance = std::isnan(o.cv_clearance) ? rate->sd / rate->mean : o.cv_clearance;
  if (const auto it = o.cv_mass.find(m.kind); it != o.cv_mass.end()) m.cv_mass = it->second;
  m.source = std::string(f.source) + "; lambda_bio " + num(rate->mean) + " +- " + num(rate->sd) + " 1/h, " + pk->where;
  if (m.kind == "tumour") m.mass_g = o.tumour_mass_g;
  return m;
}

//! True doses of one cycle's VOIs [Gy], in order; the VOIs' masses (NaN: the phantom's) are set
//! from the calculator's. A whole_body VOI is no target of its own: its dose and mass are those of
//! the set's whole-body region (e.g. ICRP 89 "Total Body"), as `lutdose run` reports them.
std::vector<double> true_doses(const DoseCalculator& dose, std::vector<SynthVoi>& vois, double a0_MBq,
                               const std::string& where) {
  std::vector<DoseSourceInput> in;
  for (const auto& v : vois) {
    DoseSourceInput s;
    s.voi = v.voi;
    s.tia_MBq_h = v.tia_MBq_h;
    s.mean_mass_g = v.mass_g;
    in.push_back(s);
  }
  const auto doses = dose.compute(in, a0_MBq, where);
  std::vector<double> out;
  const std::string& whole_body = dose.svalue_set().whole_body_target;
  for (auto& v : vois)
    for (const auto& t : doses.targets)
      if (t.target == (v.voi == "whole_body" ? whole_body : v.voi)) {
        out.push_back(t.dose_Gy);
        v.mass_g = t.mass_g;
      }
  if (out.size() != vois.size()) throw std::logic_error("synth: a VOI has no dose target");
  return out;
}

}  // namespace

SynthModel make_synth_model(const ReferenceData& ref, const SynthOptions& o) {
  std::string text;
  for (const auto& p : validate(o)) text += (text.empty() ? "" : "\n") + p;
  if (!text.empty()) throw InputError(text);
  SynthModel m;
  m.options = o;
  const Nuclide lu = ref.nuclide("Lu-177");
  m.lambda_p_per_h = lu.lambda_per_h();
  m.nuclide_source = lu.source;
  DoseOptions d;
  d.phantom = o.phantom;
  m.dose = std::make_shared<const DoseCalculator>(ref.phantom(o.phantom), ref.sphere_table(d.sphere_composition), lu, d);
  std::vector<SynthVoi> probe;
  const auto user = o.population_kinetics_path.empty() ? std::vector<PopulationKinetics>{}
                                                       : load_population_kinetics_file(o.population_kinetics_path);
  for (const auto& voi : o.vois) {
    m.vois.push_back(voi_model(ref, user, o, voi));
    SynthVoi v;
    v.voi = voi;
    // 1 MBq h each; the whole body at least the sum of the others (the dose step's check)
    v.tia_MBq_h = voi == "whole_body" ? static_cast<double>(o.vois.size()) : 1.0;
    v.mass_g = m.vois.back().mass_g;
    probe.push_back(v);
  }
  true_doses(*m.dose, probe, o.administered_MBq, "synth");  // checks the VOIs, gives the organ masses
  for (size_t i = 0; i < probe.size(); ++i) {
    m.vois[i].mass_g = probe[i].mass_g;
    if (m.vois[i].kind == "tumour" && !o.recovery.rc.empty())  // a volume inside the RC table
      o.recovery.rc_at(m.vois[i].mass_g / kTumourDensity_g_per_mL, "--recovery, tumour " + m.vois[i].voi);
  }
  return m;
}

namespace {

using Engine = boost::random::mt19937_64;

Engine patient_engine(unsigned long long seed, int index) {
  boost::random::seed_seq seq{static_cast<uint32_t>(seed & 0xFFFFFFFFu), static_cast<uint32_t>(seed >> 32),
                              static_cast<uint32_t>(index)};
  return Engine(seq);
}

//! A log-normal factor with arithmetic mean 1 and coefficient of variation cv:
//! exp(s z - s^2/2), s^2 = ln(1 + cv^2).
double lognormal_factor(Engine& e, double cv) {
  boost::random::normal_distribution<double> z(0.0, 1.0);
  const double s = std::sqrt(std::log1p(cv * cv));
  return std::exp(s * z(e) - 0.5 * s * s);
}

//! Counting noise: N ~ Poisson(f CF T), the activity N / (CF T); a draw of 0 counts is redrawn
//! like a value <= 0 of the other models (docs/synth.md). false when 1000 draws gave 0 counts.
bool poisson_noisy(Engine& e, const SynthNoise& n, double true_MBq, double& out_MBq) {
  const double per_MBq = n.counts_per_MBq();
  boost::random::poisson_distribution<long long, double> counts(true_MBq * per_MBq);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const long long c = counts(e);
    if (c > 0) {
      out_MBq = static_cast<double>(c) / per_MBq;
      return true;
    }
  }
  return false;
}

//! True activity plus noise, redrawn while <= 0 (activities are >= 0; docs/synth.md).
double noisy(Engine& e, const SynthNoise& n, double true_MBq, const std::string& where) {
  boost::random::normal_distribution<double> z(0.0, 1.0);
  const double sigma = n.sigma_MBq(true_MBq);
  double y = NAN;
  if (!(sigma > 0)) return true_MBq;
  if (n.model == SynthNoiseModel::poisson && poisson_noisy(e, n, true_MBq, y)) return y;
  for (int attempt = 0; n.model != SynthNoiseModel::poisson && attempt < 1000; ++attempt) {
    y = true_MBq + sigma * z(e);
    if (y > 0) return y;
  }
  throw_input_error("command line", "--noise", to_string(n),
                    "a noise level that leaves activities > 0 (" + where + ": true " + num(true_MBq) + " MBq)");
}

std::string patient_id(int index) {
  std::string digits = std::to_string(index);
  if (digits.size() < 5) digits.insert(0, 5 - digits.size(), '0');
  return "P" + digits;
}

}  // namespace

SynthPatient synth_patient(const SynthModel& model, int index) {
  const auto& o = model.options;
  Engine e = patient_engine(o.seed, index);
  SynthPatient p;
  p.id = patient_id(index);
  p.index = index;
  std::vector<SynthVoi> vois;
  for (const auto& vm : model.vois) {  // the patient's kinetics: drawn first, in VOI order
    SynthVoi v;
    v.voi = vm.voi;
    v.kind = vm.kind;
    v.fraction = vm.fraction_mean * lognormal_factor(e, vm.cv_fraction);
    v.lambda_bio_per_h = vm.lambda_bio_mean_per_h * lognormal_factor(e, vm.cv_clearance);
    v.lambda_eff_per_h = v.lambda_bio_per_h + model.lambda_p_per_h;
    v.amplitude_MBq = v.fraction * o.administered_MBq;
    v.tia_MBq_h = v.amplitude_MBq / v.lambda_eff_per_h;
    v.mass_g = vm.mass_g;
    vois.push_back(v);
  }
  // Then the masses (docs/synth.md): a factor is drawn only for a CV > 0, so that without
  // --cv-mass the draws, and the cohort, are those of the versions without it.
  for (size_t i = 0; i < vois.size(); ++i)
    if (model.vois[i].cv_mass > 0) vois[i].mass_g *= lognormal_factor(e, model.vois[i].cv_mass);
  for (int c = 1; c <= o.cycles; ++c) {
    SynthCycle cy{c, o.administered_MBq, vois};
    const std::string where = "patient " + p.id + ", cycle " + std::to_string(c);
    const auto doses = true_doses(*model.dose, cy.vois, o.administered_MBq, where);
    for (size_t i = 0; i < cy.vois.size(); ++i) {
      auto& v = cy.vois[i];
      v.dose_Gy = doses[i];
      const auto it = o.noise.find(v.kind);
      const SynthNoise n = it == o.noise.end() ? SynthNoise{} : it->second;
      for (double t : o.times_h) {
        v.true_MBq.push_back(v.amplitude_MBq * std::exp(-v.lambda_eff_per_h * t));
        v.measured_MBq.push_back(noisy(e, n, v.true_MBq.back(), where + ", " + v.voi));
      }
    }
    p.cycles.push_back(std::move(cy));
  }
  return p;
}

namespace {

std::string sha256_of_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return in ? sha256_hex(s.str()) : std::string("unreadable");
}

nlohmann::ordered_json options_json(const SynthModel& m) {
  const auto& o = m.options;
  nlohmann::ordered_json j;
  j["n_patients"] = o.n_patients;
  j["seed"] = o.seed;
  j["times_h"] = o.times_h;
  j["cycles"] = o.cycles;
  j["administered_MBq"] = o.administered_MBq;
  j["phantom"] = o.phantom;
  j["vois"] = o.vois;
  for (const auto& [kind, n] : o.noise) j["noise"][kind] = to_string(n);
  j["cv_fraction"] = o.cv_fraction;
  j["cv_clearance"] = std::isnan(o.cv_clearance) ? nlohmann::ordered_json("population file") : nlohmann::ordered_json(o.cv_clearance);
  for (const auto& [kind, cv] : o.cv_mass) j["cv_mass"][kind] = cv;  // absent: 0 for every kind
  if (!o.population_kinetics_path.empty())  // absent: the shipped entries only
    j["population_kinetics"] = {{"file", o.population_kinetics_path},
                                {"sha256", sha256_of_file(o.population_kinetics_path)}};
  j["tumour_mass_g"] = o.tumour_mass_g;
  j["format"] = o.format;
  if (with_counts(o)) {
    j["cf_cps_per_MBq"] = o.cf_cps_per_MBq;
    j["frame_min"] = o.frame_min;
    j["dead_time_us"] = o.dead_time_us;
    j["recovery"] = {{"volume_mL", o.recovery.volume_mL}, {"rc", o.recovery.rc}};
  }
  return j;
}

//! `text` with every "DATA_DIR/" removed: paths relative to the data directory, so that the file
//! does not depend on where the data directory is.
std::string without_data_dir(std::string text, const std::string& data_dir) {
  const std::string prefix = data_dir + "/";
  for (size_t at = text.find(prefix); !data_dir.empty() && at != std::string::npos; at = text.find(prefix, at))
    text.erase(at, prefix.size());
  return text;
}

std::string synth_json(const SynthModel& m, const std::string& version) {
  nlohmann::ordered_json j;
  j["format"] = "lutdose-synth";
  j["format_version"] = 1;
  j["lutdose_version"] = version;
  j["options"] = options_json(m);
  j["seeding"] = "patient k: boost::random::mt19937_64 seeded by boost::random::seed_seq{seed & 0xffffffff, "
                 "seed >> 32, k}; Boost.Random normal_distribution; docs/synth.md";
  j["model"] = "E1: A(t) = f A0 exp(-(lambda_bio + lambda_p) t); f, lambda_bio log-normal (mean as below)";
  j["lambda_p_per_h"] = m.lambda_p_per_h;
  j["nuclide_source"] = m.nuclide_source;
  for (const auto& v : m.vois)
    j["vois"].push_back({{"voi", v.voi}, {"kind", v.kind}, {"fraction_mean", v.fraction_mean},
                         {"cv_fraction", v.cv_fraction}, {"lambda_bio_mean_per_h", v.lambda_bio_mean_per_h},
                         {"cv_clearance", v.cv_clearance}, {"mass_g", v.mass_g}, {"source", v.source}});
  for (size_t i = 0; i < m.vois.size(); ++i)  // only when drawn: a cohort without --cv-mass keeps its bytes
    if (m.vois[i].cv_mass > 0) j["vois"][i]["cv_mass"] = m.vois[i].cv_mass;
  const auto& set = m.dose->svalue_set();
  j["data"]["phantom"] = {{"name", set.name}, {"description", set.description}, {"files", set.files}};
  const std::string pk = m.options.data_dir + "/kinetics/population_kinetics.csv";
  j["data"]["population_kinetics_csv_sha256"] = sha256_of_file(pk);
  for (const auto& f : set.files) j["data"]["files_sha256"][f] = sha256_of_file(m.options.data_dir + "/" + f);
  return without_data_dir(j.dump(2), m.options.data_dir) + "\n";
}

void append_patient(const SynthPatient& p, std::string& tacs, std::string& patients, std::string& truth,
                    const std::vector<double>& times, const std::string& phantom) {
  for (const auto& c : p.cycles) {
    const std::string key = p.id + "," + std::to_string(c.cycle) + ",";
    patients += key + num(c.administered_MBq) + "," + phantom;
    for (const auto& v : c.vois) {
      patients += "," + num(v.mass_g);
      for (size_t i = 0; i < times.size(); ++i)
        tacs += key + v.voi + "," + num(times[i]) + "," + num(v.measured_MBq[i]) + "," + num(v.mass_g) + "\n";
      truth += key + v.voi + "," + v.kind + ",E1," + num(v.fraction) + "," + num(v.lambda_bio_per_h) + "," +
               num(v.lambda_eff_per_h) + "," + num(v.amplitude_MBq) + "," + num(v.tia_MBq_h) + "," +
               num(v.mass_g) + "," + num(v.dose_Gy) + "\n";
    }
    patients += "\n";
  }
}

nlohmann::ordered_json protocol_json(const SynthOptions& o) {
  nlohmann::ordered_json p;
  p["cf_cps_per_MBq"] = o.cf_cps_per_MBq;
  if (o.dead_time_us > 0) p["dead_time"] = {{"model", "paralysable"}, {"tau_us", o.dead_time_us}};
  if (!o.recovery.rc.empty())
    p["recovery"] = {{"volume_mL", o.recovery.volume_mL}, {"rc", o.recovery.rc}, {"floor", o.recovery.floor}};
  return p;
}

//! One VOI's value at one time point: its activity, or the counts the camera would record for it
//! (methods.md §1.2-1.4): C = A CF T k RC / DTCF, DTCF = R_t / R_o.
nlohmann::ordered_json point_value(const SynthOptions& o, const SynthVoi& v, double a_MBq, double dtcf,
                                   double lambda_p_per_h) {
  if (!with_counts(o)) return {{"activity_MBq", a_MBq}};
  const double frame_h = o.frame_min / 60.0;
  double rc = 1;
  if (v.kind == "tumour" && !o.recovery.rc.empty()) rc = o.recovery.rc_at(v.mass_g / kTumourDensity_g_per_mL, v.voi);
  const double counts = a_MBq * o.cf_cps_per_MBq * frame_h * 3600.0 *
                        decay_in_frame_factor(lambda_p_per_h, frame_h) * rc / dtcf;
  return {{"counts", counts}};
}

nlohmann::ordered_json cycle_json(const SynthModel& m, const SynthCycle& c) {
  const auto& o = m.options;
  nlohmann::ordered_json j;
  j["cycle"] = c.cycle;
  j["administered"] = {{"activity_MBq", c.administered_MBq}};
  if (with_counts(o)) j["protocol"] = "synth";
  for (const auto& v : c.vois) {
    j["vois"][v.voi]["mass_g"] = v.mass_g;
    if (v.kind == "tumour" && !o.recovery.rc.empty()) {
      j["vois"][v.voi]["volume_mL"] = v.mass_g / kTumourDensity_g_per_mL;
      j["vois"][v.voi]["recovery"] = true;
    }
  }
  for (size_t i = 0; i < o.times_h.size(); ++i) {
    nlohmann::ordered_json tp;
    tp["start_h"] = o.times_h[i];
    double dtcf = 1;
    if (with_counts(o)) tp["duration_min"] = o.frame_min;
    if (with_counts(o) && o.dead_time_us > 0) {
      // The camera's true rate: CF x the administered activity decayed physically (all of it in
      // the field of view, none excreted: the upper bound of the rate; docs/synth.md).
      const double r_t = o.cf_cps_per_MBq * c.administered_MBq * std::exp(-m.lambda_p_per_h * o.times_h[i]);
      const double r_o = observed_rate_cps(DeadTimeModel::paralysable, r_t, o.dead_time_us * 1e-6);
      tp["observed_rate_cps"] = r_o;
      dtcf = r_t / r_o;
    }
    for (const auto& v : c.vois) tp["vois"][v.voi] = point_value(o, v, v.measured_MBq[i], dtcf, m.lambda_p_per_h);
    j["timepoints"].push_back(tp);
  }
  return j;
}

}  // namespace

std::string synth_case_name(const SynthPatient& p) { return "case-" + p.id + ".json"; }

std::string synth_case_json(const SynthModel& m, const SynthPatient& p) {
  nlohmann::ordered_json j;
  j["lutdose_case_version"] = 1;
  j["patient"] = {{"id", p.id}};
  j["phantom"] = m.options.phantom;
  if (with_counts(m.options)) j["protocols"]["synth"] = protocol_json(m.options);
  for (const auto& c : p.cycles) j["cycles"].push_back(cycle_json(m, c));
  return j.dump(2) + "\n";
}

std::vector<OutputFile> synth_cohort_files(const SynthModel& model, const std::string& lutdose_version) {
  const auto& o = model.options;
  std::string tacs = "patient,cycle,voi,time_h,activity_MBq,mass_g\n";
  std::string patients = "patient,cycle,administered_MBq,phantom";
  for (const auto& v : o.vois) patients += ",mass_g_" + v;
  patients += "\n";
  std::string truth = "patient,cycle,voi,kind,function,fraction,lambda_bio_per_h,lambda_eff_per_h,amplitude_MBq,"
                      "tia_MBq_h,mass_g,dose_Gy\n";
  std::vector<OutputFile> files;
  for (int k = 1; k <= o.n_patients; ++k) {
    const auto p = synth_patient(model, k);
    append_patient(p, tacs, patients, truth, o.times_h, o.phantom);
    if (o.format == "cases") files.push_back({synth_case_name(p), synth_case_json(model, p)});
  }
  if (o.format == "cases") {
    tacs.clear();
    patients.clear();
  } else {
    files.push_back({"tacs.csv", std::move(tacs)});
    files.push_back({"patients.csv", std::move(patients)});
  }
  files.push_back({"truth.csv", std::move(truth)});
  files.push_back({"synth.json", synth_json(model, lutdose_version)});
  return files;
}

}  // namespace lutdose
