// Follow-ups of issues 10 and 11: model averaging over accepted fits only.
#include <doctest/doctest.h>

#include <cmath>

#include <nlohmann/json.hpp>

#include "lutdose/kinetics/fitting.h"

using namespace lutdose;
using Eigen::VectorXd;

namespace {
const double kLambdaLu177_per_h = std::log(2.0) / (6.647 * 24.0);  // ICRP-107 half-life 6.647 d
}

TEST_CASE("model averaging: fits that fail the acceptance criteria get no Akaike weight") {
  // Bi-exponential data with a few per cent noise: the richer functions (E3...) over-fit and are
  // flagged, yet they have an AICc; they must not enter the average (issue 11 item 4).
  const auto& e2 = *models::find_exponential("E2");
  const VectorXd t = (VectorXd(7) << 0.5, 2, 6, 24, 48, 96, 168).finished();
  VectorXd y = e2.evaluate(t, (VectorXd(4) << 125.0, 22.0, 0.0081, 0.22).finished(), kLambdaLu177_per_h);
  const double noise[] = {0.03, -0.05, 0.02, 0.04, -0.03, 0.01, -0.02};
  for (Eigen::Index i = 0; i < t.size(); ++i) y(i) *= 1 + noise[i];
  FitOptions o;
  o.model_averaging = true;
  const TacFit fit = fit_tac(t, y, VectorXd(), kLambdaLu177_per_h, o, "averaging");
  int rejected_with_aicc = 0;
  double sum = 0, avg = 0;
  for (const auto& c : fit.candidates) {
    CAPTURE(c.function);
    if (c.fitted && std::isfinite(c.aicc) && c.tia_MBq_h > 0 && !c.accepted) ++rejected_with_aicc;
    if (!c.accepted) CHECK(std::isnan(c.akaike_weight));
    if (!std::isnan(c.akaike_weight)) {
      sum += c.akaike_weight;
      avg += c.akaike_weight * c.tia_MBq_h;
    }
  }
  REQUIRE(rejected_with_aicc > 0);  // otherwise this test could not fail
  CHECK(sum == doctest::Approx(1.0).epsilon(1e-14));  // weights normalised; only rounding
  CHECK(fit.averaged_tia_MBq_h == doctest::Approx(avg).epsilon(1e-14));  // same sum, only rounding
  CHECK(fit.tia_MBq_h == doctest::Approx(avg).epsilon(1e-14));
}

// ------------------------------------------------------------------ plan --out: own checksum

#include <fstream>
#include <sstream>
#include <unistd.h>

#include <filesystem>

#include "lutdose/error.h"
#include "lutdose/io/output_dir.h"

namespace {
std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}
}  // namespace

TEST_CASE("a file with its own checksum recognises itself, and any edit is seen") {
  const std::string json = "{\n  \"next_cycle\": 3,\n  \"activity_MBq\": 7400.0\n}\n";
  const std::string file = with_own_checksum(json);
  CHECK(has_own_checksum(file));
  CHECK(nlohmann::json::parse(file)["next_cycle"] == 3);  // still valid JSON with the same members
  for (size_t i = 0; i < file.size(); i += 7) {  // a byte changed anywhere (every 7th position)
    std::string edited = file;
    edited[i] = edited[i] == 'x' ? 'y' : 'x';
    CAPTURE(i);
    CHECK_FALSE(has_own_checksum(edited));
  }
  CHECK_FALSE(has_own_checksum(json));
  CHECK_THROWS_AS(with_own_checksum("{}"), std::logic_error);
}

TEST_CASE("write_file_atomically swaps back a file put at the name after the check") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("lutdose-followup-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string path = (dir / "plan.json").string();
  { std::ofstream(path) << "someone else's file\n"; }
  int calls = 0;
  // The first check (before writing) accepts, the recheck of what the swap took out refuses: as if
  // another file had been put at the name between the two.
  auto first_only = [&](const std::string&) { return ++calls == 1; };
  CHECK_THROWS_AS(write_file_atomically(path, "new\n", first_only), InputError);
  CHECK(calls == 2);
  CHECK(slurp(path) == "someone else's file\n");
  int entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++entries;
  CHECK(entries == 1);  // no temporary left
  fs::remove_all(dir);
}
