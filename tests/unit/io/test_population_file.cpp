// Reading a population file (lutdose/io/population_file.h, docs/population.md "The population
// file"): the file's own checksum, JSON syntax errors with their position, candidates; and the
// check of a case's population file against --population (use_case_population, io/run_files.h). The files
// are written here from a model built by hand (no learning), then changed as a person would.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include "lutdose/error.h"
#include "lutdose/io/output_dir.h"
#include "lutdose/io/population_file.h"
#include "lutdose/io/run_files.h"
#include "lutdose/pipeline/options.h"
#include "lutdose/pipeline/reference_data.h"
#include "../test_util.h"

using namespace lutdose;

namespace {

// An E1 population of one VOI kind, with made-up but valid numbers (the reader checks form, not
// plausibility): theta = (ln(50 MBq / 7400 MBq), ln 0.02 /h), amplitudes per administered
// activity as in format 2, Omega diagonal, two candidates.
PopulationFile kidneys_e1() {
  PopulationModel m;
  m.voi_kind = "kidneys";
  m.function = "E1";
  m.phi_names = {"log_A1_per_administered", "log_dlambda1_bio_per_h"};
  m.theta = Eigen::Vector2d(-5.0, -3.912);
  m.theta_se = Eigen::Vector2d(0.03, 0.04);
  m.omega = Eigen::Vector2d(0.09, 0.16).asDiagonal();
  m.sigma_log = 0.1;
  m.shrinkage = Eigen::Vector2d(0.05, 0.1);
  m.n_patients = 60;
  m.n_observations = 300;
  m.candidates = {{"E1", -100.0, -88.0, -80.0, true, 12}, {"E2u", -101.0, -85.0, -75.0, true, 20}};
  PopulationFile p;
  p.models = {m};
  p.half_life_h = 159.528;
  p.input_path = "tacs.csv";
  p.input_sha256 = std::string(64, '0');
  p.lutdose_version = "test";
  return p;
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  REQUIRE(out.good());
}

// `text` with the first `from` replaced by `to` (REQUIREs that `from` is there).
std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

// The message of the InputError that reading `text` as a population file throws ("" if none).
std::string read_error(const std::string& text) {
  test::TempDir dir;
  const std::string path = dir / "pop.json";
  write_text(path, text);
  try {
    read_population_file(path);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("population file: a file as population learn wrote it is read, with its candidates") {
  test::TempDir dir;
  const std::string path = dir / "pop.json";
  write_text(path, population_file_text(kidneys_e1()));
  const PopulationFile p = read_population_file(path);
  REQUIRE(p.models.size() == 1);
  const PopulationModel& m = p.models.front();
  REQUIRE(m.candidates.size() == 2);
  CHECK(m.candidates[1].function == "E2u");
  CHECK(m.candidates[1].bic == -75.0);  // written and read as JSON numbers: exact
  CHECK(m.candidates[1].iterations == 20);
  CHECK(m.n_observations == 300);
}

TEST_CASE("population file: an edited or damaged file is refused by its own checksum") {
  const std::string text = population_file_text(kidneys_e1());
  // A hand edit of a number: the checksum no longer matches the bytes before it.
  const std::string edited = replaced(text, "0.09", "0.25");
  const std::string e = read_error(edited);
  CHECK(e.find("pop.json") != std::string::npos);
  CHECK(e.find("lutdose_sha256") != std::string::npos);
  CHECK(e.find("population learn") != std::string::npos);  // says how to proceed
  // Damage that keeps the JSON valid (a character lost in a string) is found as well.
  CHECK(read_error(replaced(text, "\"tacs.csv\"", "\"tacs.cs\"")).find("lutdose_sha256") != std::string::npos);
  // The unedited file is read.
  CHECK(read_error(text).empty());
  // A file without the member (written by hand, or the member removed on purpose) is read as it is.
  const auto member = text.rfind(",\n  \"lutdose_sha256\"");
  REQUIRE(member != std::string::npos);
  CHECK(read_error(text.substr(0, member) + "\n}\n").empty());
}

TEST_CASE("population file: a JSON syntax error is reported with its line and column") {
  // Line 3 ends without a comma: the parser stops at the next token, the string "vois" of line 4,
  // and reports where that token ends (nlohmann::json's convention): line 4, column 8.
  const std::string text = "{\n  \"format\": \"lutdose-population\",\n  \"format_version\": 1\n  \"vois\": []\n}\n";
  const std::string e = read_error(text);
  CHECK(e.find("pop.json") != std::string::npos);
  CHECK(e.find("line 4, column 8") != std::string::npos);
}

TEST_CASE("population file: a function twice in a VOI kind's candidates is refused") {
  auto p = kidneys_e1();
  p.models[0].candidates[1].function = "E1";
  const std::string e = read_error(population_file_text(p));
  CHECK(e.find("pop.json: vois[0] (kidneys)") != std::string::npos);
  CHECK(e.find("candidates[1].function is '\"E1\"'") != std::string::npos);
}

TEST_CASE("population file: values out of their range are refused, naming the file, field, value and expectation (issue 15)") {
  // Each file below is written by population_file_text (its own checksum matches): only the range
  // checks of the reader are under test.
  const auto error_with = [](const std::function<void(PopulationModel&)>& change) {
    auto p = kidneys_e1();
    change(p.models[0]);
    return read_error(population_file_text(p));
  };
  // shrinkage = 1 - SD(eta_MAP) / omega^(1/2) (population.h): at most 1 (an SD is >= 0). It may be
  // below 0 (the MAPs spread more than omega says; population learn wrote -8.2e-05 for the spleen of
  // `lutdose synth --patients 30 --seed 1 --times-h 4,24,48,96,168`): such files are read.
  std::string e = error_with([](PopulationModel& m) { m.shrinkage(1) = 1.5; });
  CHECK(e.find("pop.json: vois[0] (kidneys)") != std::string::npos);
  CHECK(e.find("shrinkage[1] is '1.5'") != std::string::npos);
  CHECK(e.find("<= 1") != std::string::npos);
  CHECK(error_with([](PopulationModel& m) { m.shrinkage(0) = -8.2e-05; }).empty());
  CHECK(error_with([](PopulationModel& m) { m.shrinkage(0) = 1.0; }).empty());
  // Review of 0.15 (N7): no lower bound. Learned, SD(eta_MAP) (divisor n - 1, about theta, the MAPs'
  // mean) is at most sqrt(n / (n - 1)) omega^(1/2) (the EM's omega is the MAPs' mean square plus
  // their posterior variance, divisor n): shrinkage >= 1 - sqrt(2) = -0.41 even for 2 TACs. -0.45 is
  // read; -1.5 (the MAPs spread 2.5 times what omega says; e.g. a sign or a percentage typed) is not.
  CHECK(error_with([](PopulationModel& m) { m.shrinkage(0) = -0.45; }).empty());
  e = error_with([](PopulationModel& m) { m.shrinkage(0) = -1.5; });
  CHECK(e.find("pop.json: vois[0] (kidneys)") != std::string::npos);
  CHECK(e.find("shrinkage[0] is '-1.5'") != std::string::npos);
  CHECK(e.find(">= -1") != std::string::npos);
  // a VOI kind no VOI has: a tumour VOI's kind is "tumour" (population_voi_kind)
  for (const char* kind : {"tumour_1", "lesion_2", "tumor_a"}) {
    CAPTURE(kind);
    e = error_with([&](PopulationModel& m) { m.voi_kind = kind; });
    CHECK(e.find("pop.json: vois[0]") != std::string::npos);
    CHECK(e.find("voi_kind is '" + std::string(kind) + "'") != std::string::npos);
    CHECK(e.find("tumour") != std::string::npos);
  }
  CHECK(error_with([](PopulationModel& m) { m.voi_kind = "tumour"; }).empty());
  // a standard error is > 0 (or null: not computed)
  for (const double se : {0.0, -0.03}) {
    CAPTURE(se);
    e = error_with([&](PopulationModel& m) { m.theta_se(1) = se; });
    CHECK(e.find("theta_se[1] is '" + format_number(se) + "'") != std::string::npos);
  }
  CHECK(error_with([](PopulationModel& m) { m.theta_se(1) = std::numeric_limits<double>::quiet_NaN(); }).empty());
  // counts: TACs >= 2 (a population), observations >= TACs (each TAC has a point > 0)
  CHECK(error_with([](PopulationModel& m) { m.n_patients = 1; }).find("n_patients is '1'") != std::string::npos);
  CHECK(error_with([](PopulationModel& m) { m.n_observations = 59; }).find("n_observations is '59'") !=
        std::string::npos);
}

TEST_CASE("population file: e_step is written and read back, a 0.12 file without it is Laplace, one changed by hand without it unknown, a bad one refused") {
  // Edits below are made to a file without its own checksum member (read as it is, test above):
  // the checks of e_step are what is under test, not the checksum's.
  auto unchecked = [](const std::string& text) {
    const auto member = text.rfind(",\n  \"lutdose_sha256\"");
    REQUIRE(member != std::string::npos);
    return text.substr(0, member) + "\n}\n";
  };
  // the model's e_step, the last in the file (its keys are written in order: options before vois)
  auto in_model = [](std::string text, const std::string& from, const std::string& to) {
    const auto at = text.rfind(from);
    REQUIRE(at != std::string::npos);
    REQUIRE(text.find("\"vois\"") < at);
    return text.replace(at, from.size(), to);
  };
  auto p = kidneys_e1();
  p.models[0].e_step = "sampled";
  const std::string text = population_file_text(p);
  test::TempDir dir;
  const std::string path = dir / "pop.json";
  write_text(path, text);
  CHECK(read_population_file(path).models.at(0).e_step == "sampled");
  // 0.12 wrote no e_step: its files (their own checksum intact) are read as the Laplace estimator's
  const std::string without = unchecked(in_model(text, "\"e_step\": \"sampled\",", ""));
  write_text(path, with_own_checksum(without));
  CHECK(read_population_file(path).models.at(0).e_step == "laplace");
  // a file written or changed by hand (no checksum) without e_step, or with null: unknown, never a guess
  write_text(path, without);
  CHECK(read_population_file(path).models.at(0).e_step.empty());
  write_text(path, unchecked(in_model(text, "\"e_step\": \"sampled\"", "\"e_step\": null")));
  CHECK(read_population_file(path).models.at(0).e_step.empty());
  for (const char* bad : {"\"SAMPLED\"", "3", "[\"sampled\"]"}) {
    CAPTURE(bad);
    const std::string e = read_error(unchecked(in_model(text, "\"e_step\": \"sampled\"", std::string("\"e_step\": ") + bad)));
    CHECK(e.find("pop.json") != std::string::npos);
    CHECK(e.find("e_step") != std::string::npos);
    CHECK(e.find("\"laplace\" or \"sampled\"") != std::string::npos);
  }
}

TEST_CASE("use_case_population: the command line's file when the case names none, the same bytes pass, others are refused naming both SHA-256") {
  test::TempDir dir;
  const std::string text = population_file_text(kidneys_e1());
  const std::string given = dir / "given.json", same = dir / "same.json", other = dir / "other.json";
  write_text(given, text);
  write_text(same, text);
  write_text(other, replaced(text, "\"sigma_log\"", "\"sigma_log\" "));  // other bytes, the same JSON
  CaseFile none;
  use_case_population(none, given, std::nullopt);
  CHECK(none.population_file == given);
  CaseFile own;
  own.population_file = same;  // a copy: the case's path is kept (it is the one recorded)
  use_case_population(own, given, std::nullopt);
  CHECK(own.population_file == same);
  own.population_file = other;
  try {
    use_case_population(own, given, std::nullopt);
    FAIL("another population file than the case's was accepted");
  } catch (const InputError& e) {
    const std::string msg = e.what();
    CHECK(msg.find(sha256_hex(text)) != std::string::npos);
    CHECK(msg.find(sha256_hex(replaced(text, "\"sigma_log\"", "\"sigma_log\" "))) != std::string::npos);
    CHECK(msg.find(other) != std::string::npos);
  }
  CaseFile fresh;
  CHECK_THROWS_WITH_AS(use_case_population(fresh, given, Kinetics::individual), doctest::Contains("--kinetics"),
                       InputError);
  CaseFile without;  // no file on either side: nothing to check, individual kinetics is fine
  CHECK_NOTHROW(use_case_population(without, "", Kinetics::individual));
  CHECK(without.population_file.empty());
}

TEST_CASE("population file: a full omega is read with omega_structure \"full\", a non-symmetric or non-positive-definite one, a covariance without it and an unknown structure are refused") {
  const auto with_omega = [](double c01, double c10, const std::string& structure) {
    auto p = kidneys_e1();
    p.models[0].omega(0, 1) = c01;
    p.models[0].omega(1, 0) = c10;
    p.models[0].omega_structure = structure;
    return population_file_text(p);
  };
  // corr 0.05 / sqrt(0.09 x 0.16) = 0.42: symmetric positive-definite, read as it is
  const std::string full = with_omega(0.05, 0.05, "full");
  CHECK(full.find("\"omega_structure\": \"full\"") != std::string::npos);
  CHECK(read_error(full).empty());
  {
    test::TempDir dir;
    write_text(dir / "pop.json", full);
    const auto m = read_population_file(dir / "pop.json").models.at(0);
    CHECK(m.omega_structure == "full");
    CHECK(m.omega(0, 1) == 0.05);
  }
  // a diagonal model writes no omega_structure (0.16's bytes) and reads back as diagonal
  const std::string diagonal = population_file_text(kidneys_e1());
  CHECK(diagonal.find("\"omega_structure\": \"full\"") == std::string::npos);
  CHECK(diagonal.find("\"omega_structure\": \"diagonal\"") != std::string::npos);  // in options only
  // corr 0.2 / 0.12 = 1.67: not positive-definite; 0.05 / 0.04: not symmetric
  for (const auto& [c01, c10] : {std::pair{0.2, 0.2}, std::pair{0.05, 0.04}}) {
    const double a = c01, b = c10;  // not the structured binding in CAPTURE (common.md)
    CAPTURE(a);
    CAPTURE(b);
    const std::string e = read_error(with_omega(a, b, "full"));
    CHECK(e.find("pop.json: vois[0] (kidneys)") != std::string::npos);
    CHECK(e.find("omega is '") != std::string::npos);
    CHECK(e.find("a symmetric positive-definite covariance matrix") != std::string::npos);
  }
  // a covariance in a file without omega_structure (absent: diagonal), as 0.16 refuses any
  std::string e = read_error(with_omega(0.05, 0.05, "diagonal"));
  CHECK(e.find("omega is '") != std::string::npos);
  CHECK(e.find("a diagonal matrix") != std::string::npos);
  CHECK(e.find("omega_structure \"full\"") != std::string::npos);
  // an unknown structure (the file's own checksum dropped: changed on purpose)
  std::string text = replaced(full, "\"omega_structure\": \"full\"", "\"omega_structure\": \"block\"");
  text = text.substr(0, text.rfind(",\n  \"lutdose_sha256\"")) + "\n}\n";
  e = read_error(text);
  CHECK(e.find("omega_structure is '\"block\"'") != std::string::npos);
  CHECK(e.find("\"diagonal\" or \"full\"") != std::string::npos);
}

namespace {

// The population file text of `text` (without its own checksum: as edited by hand) with the first
// model's member omega_correlation_se set to `value`.
std::string with_correlation_se(const std::string& text, const nlohmann::json& value) {
  auto doc = nlohmann::json::parse(text);
  doc.erase("lutdose_sha256");
  doc["vois"][0]["omega_correlation_se"] = value;
  return doc.dump(2);
}

}  // namespace

// Issue 15 "honest uncertainty" (0.20): the SEs of a full Omega's correlations are written where known
// and read back exactly; a file of 0.19 or earlier (no member) is read with them not known (empty).
TEST_CASE("population file: omega_correlation_se round trips, absent is not known, bad values and a diagonal Omega refused") {
  auto p = kidneys_e1();
  auto& full = p.models[0];
  full.omega(0, 1) = full.omega(1, 0) = 0.05;
  full.omega_structure = "full";
  full.log_omega_se = Eigen::Vector2d(0.125, 0.375);
  full.omega_correlation_se = (Eigen::Matrix2d() << 0, 0.0625, 0.0625, 0).finished();  // binary fractions: exact
  test::TempDir dir;
  const std::string path = dir / "pop.json";
  const std::string text = population_file_text(p);
  write_text(path, text);
  const PopulationFile back = read_population_file(path);
  CHECK(back.own_checksum_verified);
  CHECK(back.models.at(0).omega_correlation_se == full.omega_correlation_se);
  // written again as read: the same models' JSON (their checksum, the results' vois_sha256, unchanged)
  CHECK(population_models_sha256(back.models) == population_models_sha256(p.models));
  // absent (0.19 and earlier): not known, empty; null: not known
  auto old = p;
  old.models[0].omega_correlation_se.resize(0, 0);
  const std::string old_text = population_file_text(old);
  CHECK(old_text.find("omega_correlation_se") == std::string::npos);
  write_text(path, old_text);
  CHECK(read_population_file(path).models.at(0).omega_correlation_se.size() == 0);
  write_text(path, with_correlation_se(text, nullptr));
  CHECK(read_population_file(path).models.at(0).omega_correlation_se.size() == 0);
  // a null entry is that one not known (NaN), its mirror null too
  write_text(path, with_correlation_se(text, {{0.0, nullptr}, {nullptr, 0.0}}));
  CHECK(std::isnan(read_population_file(path).models.at(0).omega_correlation_se(0, 1)));
  // refused, naming file, field, value and what was expected
  std::string e = read_error(with_correlation_se(text, {{0.0, -0.0625}, {-0.0625, 0.0}}));
  CHECK(e.find("pop.json: vois[0] (kidneys)") != std::string::npos);
  CHECK(e.find("omega_correlation_se[0][1] is '-0.0625'") != std::string::npos);
  CHECK(e.find("a standard error >= 0 and at most 1 of the correlation") != std::string::npos);
  e = read_error(with_correlation_se(text, {{0.0, 0.0625}, {0.125, 0.0}}));
  CHECK(e.find("omega_correlation_se[0][1] is '0.0625'") != std::string::npos);
  CHECK(e.find("symmetric") != std::string::npos);
  // above 1: a correlation lies in [-1, 1], so the SD of its estimate is at most 1 (review of 0.20: 50
  // was accepted)
  e = read_error(with_correlation_se(text, {{0.0, 1.5}, {1.5, 0.0}}));
  CHECK(e.find("omega_correlation_se[0][1] is '1.5'") != std::string::npos);
  CHECK(e.find("at most 1") != std::string::npos);
  // null against a number: the message shows the null as written (review of 0.20: it said 'nan')
  e = read_error(with_correlation_se(text, {{0.0, nullptr}, {0.0625, 0.0}}));
  CHECK(e.find("omega_correlation_se[0][1] is 'null'") != std::string::npos);
  CHECK(e.find("null in both or neither") != std::string::npos);
  e = read_error(with_correlation_se(text, {{0.5, 0.0625}, {0.0625, 0.0}}));
  CHECK(e.find("omega_correlation_se[0][0] is '0.5'") != std::string::npos);
  CHECK(e.find("1 exactly") != std::string::npos);
  e = read_error(with_correlation_se(text, {{0.0, 0.0625}}));
  CHECK(e.find("omega_correlation_se is '") != std::string::npos);
  CHECK(e.find("a 2 x 2 matrix") != std::string::npos);
  // beside a diagonal Omega it would be ignored: refused
  auto diagonal_doc = nlohmann::json::parse(with_correlation_se(text, {{0.0, 0.0625}, {0.0625, 0.0}}));
  diagonal_doc["vois"][0].erase("omega_structure");
  diagonal_doc["vois"][0]["omega"] = {{0.09, 0.0}, {0.0, 0.16}};
  e = read_error(diagonal_doc.dump(2));
  CHECK(e.find("omega_correlation_se") != std::string::npos);
  CHECK(e.find("no omega_correlation_se with a diagonal Omega") != std::string::npos);
}

TEST_CASE("population file: log_omega_se and log_sigma_log_se round trip, absent or null is not known, bad values refused") {
  auto p = kidneys_e1();
  p.models[0].log_omega_se = Eigen::Vector2d(0.125, 0.375);
  p.models[0].log_sigma_log_se = 0.03125;  // binary fractions: written and read back exactly
  test::TempDir dir;
  const std::string path = dir / "pop.json";
  write_text(path, population_file_text(p));
  const PopulationModel m = read_population_file(path).models.at(0);
  REQUIRE(m.log_omega_se.size() == 2);
  CHECK(m.log_omega_se(0) == 0.125);
  CHECK(m.log_omega_se(1) == 0.375);
  CHECK(m.log_sigma_log_se == 0.03125);
  // A file of 0.16 has neither member: read, and not known (empty, NaN), never 0.
  const std::string old_text = population_file_text(kidneys_e1());
  CHECK(old_text.find("log_omega_se") == std::string::npos);  // a model without them is written without
  write_text(path, old_text);
  const PopulationModel o = read_population_file(path).models.at(0);
  CHECK(o.log_omega_se.size() == 0);
  CHECK(std::isnan(o.log_sigma_log_se));
  // Edits below are made without the file's own checksum (read as written by hand).
  const std::string text = population_file_text(p);
  const auto member = text.rfind(",\n  \"lutdose_sha256\"");
  REQUIRE(member != std::string::npos);
  const std::string unchecked = text.substr(0, member) + "\n}\n";
  write_text(path, replaced(replaced(unchecked, "\"log_omega_se\": [", "\"log_omega_se\": null, \"x\": ["),
                            "\"log_sigma_log_se\": 0.03125", "\"log_sigma_log_se\": null"));
  const PopulationModel n = read_population_file(path).models.at(0);
  CHECK(n.log_omega_se.size() == 0);
  CHECK(std::isnan(n.log_sigma_log_se));
  // negative and non-finite (1e999 parses as infinity) are refused, naming file, field and value
  std::string e = read_error(replaced(unchecked, "0.375", "-0.375"));
  CHECK(e.find("pop.json: vois[0] (kidneys)") != std::string::npos);
  CHECK(e.find("log_omega_se[1] is '-0.375'") != std::string::npos);
  CHECK(e.find("a standard error >= 0") != std::string::npos);
  // 1e999 overflows a double: the JSON reader itself names the member (parse_json_checked)
  e = read_error(replaced(unchecked, "0.375", "1e999"));
  CHECK(e.find("log_omega_se[1] is a number beyond the range of a double") != std::string::npos);
  e = read_error(replaced(unchecked, "0.375", "\"0.375\""));
  CHECK(e.find("log_omega_se[1] is '\"0.375\"'") != std::string::npos);
  CHECK(e.find("a finite number") != std::string::npos);
  e = read_error(replaced(unchecked, "\"log_sigma_log_se\": 0.03125", "\"log_sigma_log_se\": -0.5"));
  CHECK(e.find("log_sigma_log_se is '-0.5'") != std::string::npos);
  e = read_error(replaced(unchecked, "\"log_sigma_log_se\": 0.03125", "\"log_sigma_log_se\": \"x\""));
  CHECK(e.find("log_sigma_log_se") != std::string::npos);
  CHECK(e.find("a finite number") != std::string::npos);
}

namespace {

// A compartment population of blood_organ_linear.json built by hand (made-up but valid numbers).
PopulationFile compartment_file(const std::string& model_sha256) {
  CompartmentPopulation c;
  c.model_name = "blood_organ_linear";
  c.model_sha256 = model_sha256;
  c.free_parameters = {"k_b", "k_in", "k_out"};
  c.observed_vois = {"organ", "blood"};
  auto& m = c.model;
  m.voi_kind = COMPARTMENT_POPULATION_KIND;
  m.function = "compartment:blood_organ_linear";
  m.phi_names = {"log_k_b", "log_k_in", "log_k_out"};
  m.theta = Eigen::Vector3d(std::log(0.3422), std::log(0.006684), std::log(0.008033));
  m.theta_se = Eigen::Vector3d(0.02, 0.03, 0.02);
  m.omega = Eigen::Vector3d(0.04, 0.09, 0.04).asDiagonal();
  m.log_omega_se = Eigen::Vector3d(0.13, 0.13, 0.14);
  m.log_sigma_log_se = 0.026;
  m.sigma_log = 0.1;
  m.shrinkage = Eigen::Vector3d(0.05, 0.02, 0.1);
  m.n_patients = 120;
  m.n_observations = 1080;
  m.converged = true;
  m.iterations = 30;
  m.e_step = "sampled";
  m.candidates = {{m.function, -100.0, -80.0, -70.0, true, 30}};
  PopulationFile p = kidneys_e1();
  p.models.clear();
  p.compartment = c;
  return p;
}

const models::CompartmentModel& blood_organ_model() {
  static const auto m = models::CompartmentModel::from_file(std::string(LUTDOSE_TEST_SOURCE_DIR) +
                                                            "/models/files/blood_organ_linear.json");
  return m;
}

}  // namespace

TEST_CASE("population file: a compartment population round trip (format_version 4, structural_model)") {
  const std::string sha(64, 'a');
  const std::string text = population_file_text(compartment_file(sha));
  CHECK(text.find("\"format_version\": 4") != std::string::npos);
  const std::string path = test::write_temp(text);
  const auto read = read_population_file(path);
  std::remove(path.c_str());
  REQUIRE(read.compartment);
  CHECK(read.models.empty());
  const auto& c = *read.compartment;
  CHECK(c.model_name == "blood_organ_linear");
  CHECK(c.model_sha256 == sha);
  CHECK(c.free_parameters == std::vector<std::string>{"k_b", "k_in", "k_out"});
  CHECK(c.observed_vois == std::vector<std::string>{"organ", "blood"});
  const PopulationFile written = compartment_file(sha);
  const auto& want = written.compartment->model;
  CHECK(c.model.theta.isApprox(want.theta, 1e-15));  // 17 significant digits in the JSON text: exact
  CHECK(c.model.omega.isApprox(want.omega, 1e-15));
  CHECK(c.model.sigma_log == want.sigma_log);
  CHECK(c.model.n_patients == 120);
  CHECK(c.model.phi_names == want.phi_names);
  CHECK(read.own_checksum_verified);
  // the model written again as read: the same JSON (nothing lost)
  CHECK(population_vois_json({c.model}) == population_vois_json({want}));
}

TEST_CASE("population file: a compartment population with another model file, an edited SHA-256 or an unknown parameter is refused") {
  const auto& model = blood_organ_model();
  const std::string right(64, 'a'), other(64, 'b');
  const auto p = *compartment_file(right).compartment;
  CHECK_NOTHROW(check_compartment_population_model(p, "pop.json", model, "m.json", right));
  const auto message = [&](const CompartmentPopulation& c, const std::string& sha) {
    try {
      check_compartment_population_model(c, "pop.json", model, "m.json", sha);
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  // another model file (its SHA-256 differs): the file, the member, the value and the expected one
  const std::string m = message(p, other);
  CHECK(m.find("pop.json") != std::string::npos);
  CHECK(m.find("structural_model.model_sha256") != std::string::npos);
  CHECK(m.find(right) != std::string::npos);
  CHECK(m.find(other) != std::string::npos);
  auto renamed = p;
  renamed.model_name = "prrt_multiorgan_linear";
  CHECK(message(renamed, right).find("structural_model.model") != std::string::npos);
  auto unknown = p;
  unknown.free_parameters[1] = "k_x";
  CHECK(message(unknown, right).find("structural_model.free_parameters is 'k_x'") != std::string::npos);
  // read back: a SHA-256 that is not 64 hex digits, parameters that do not match free_parameters,
  // and version 4 without structural_model
  const std::string text = population_file_text(compartment_file(right));
  // the case's parts by name, not a structured binding: clang 14 (the sanitizer build) cannot capture one
  // in INFO's lambda
  for (const auto& edit : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"\"model_sha256\": \"" + right, "\"model_sha256\": \"xyz" + right, "model_sha256"},
           {"\"log_k_in\"", "\"log_k_x\"", "parameters"},
           {"\"structural_model\"", "\"structural_modelx\"", "format_version is '4'"}}) {
    const std::string& expected = std::get<2>(edit);
    std::string edited = replaced(text, std::get<0>(edit), std::get<1>(edit));
    edited = edited.substr(0, edited.rfind(",\n  \"lutdose_sha256\"")) + "\n}\n";  // a deliberate edit
    const std::string path = test::write_temp(edited);
    std::string what;
    try {
      read_population_file(path);
    } catch (const InputError& e) {
      what = e.what();
    }
    std::remove(path.c_str());
    INFO(expected, ": ", what);
    CHECK(what.find(expected) != std::string::npos);
  }
}

TEST_CASE("read_run_files: a case's compartment population file (fit.population) is read with its model, "
          "checked by its SHA-256; another model (fit.model) is refused") {
  const std::string model_path = std::string(LUTDOSE_TEST_SOURCE_DIR) + "/models/files/blood_organ_linear.json";
  const auto bytes_of = [](const std::string& file) {
    std::ifstream in(file, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  const std::string path = test::write_temp(population_file_text(compartment_file(sha256_hex(bytes_of(model_path)))));
  const auto ref = ReferenceData::load(LUTDOSE_TEST_DATA_DIR);
  RunOptions o;  // as run_options_of_case leaves a case with fit.population and no fit.model
  o.population_source.path = path;
  read_run_files(o, ref);
  REQUIRE(o.compartment_population);
  CHECK_FALSE(o.population);
  CHECK(o.compartment_population->model_name == "blood_organ_linear");
  REQUIRE(o.compartment_model_file);  // the population's model, read by its name and checked
  CHECK(o.compartment_model_file->name() == "blood_organ_linear");
  CHECK(o.population_source.sha256 == sha256_hex(bytes_of(path)));
  CHECK(o.population_source.own_checksum_verified);
  CHECK(validate(o).empty());
  RunOptions other;  // fit.model naming another model than the population's
  other.population_source.path = path;
  other.compartment_model = "prrt_multiorgan_linear";
  CHECK(validate(other).empty());  // decided when the file is read: it may be a compartment population
  std::string what;
  try {
    read_run_files(other, ref);
  } catch (const InputError& e) {
    what = e.what();
  }
  std::remove(path.c_str());
  CHECK(what.find("structural_model.model is 'blood_organ_linear'") != std::string::npos);
}
