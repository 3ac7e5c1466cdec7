// The per-cycle BED composition and the tumour repopulation of radiobiology/cycle_bed.h
// (methods.md §8): analytic cases.
#include <doctest/doctest.h>

#include <cmath>

#include "lutdose/radiobiology/cycle_bed.h"

using namespace lutdose;

TEST_CASE("tumour repopulation: ln2 (T - T_k) / (alpha T_pot), none before the kick-off") {
  // 100 d from the first to the last cycle, T_k 28 d, alpha 0.3/Gy, T_pot 5 d: ln2 * 72 / 1.5 Gy
  const auto r = tumour_repopulation_Gy(0.0, 100 * 24.0, 28, 0.3, 5);
  REQUIRE(r);
  CHECK(*r == doctest::Approx(std::log(2.0) * 72 / 1.5).epsilon(1e-14));  // rounding only
  CHECK_FALSE(tumour_repopulation_Gy(0.0, 28 * 24.0, 28, 0.3, 5));  // T = T_k: none
  CHECK_FALSE(tumour_repopulation_Gy(0.0, 10 * 24.0, 28, 0.3, 5));
}

TEST_CASE("remainder curve: the whole body's exponentials minus the organ targets' (tumours stay)") {
  std::map<std::string, ActivityCurve> curves;
  curves["whole_body"].c_MBq = {5000, 2000};
  curves["whole_body"].k_per_h = {0.01, 0.2};
  curves["kidneys"].c_MBq = {100};
  curves["kidneys"].k_per_h = {0.015};
  curves["tumour_1"].c_MBq = {50};
  curves["tumour_1"].k_per_h = {0.005};
  std::vector<TargetDose> doses(2);
  doses[0].target = "kidneys", doses[0].kind = "organ";
  doses[1].target = "tumour_1", doses[1].kind = "tumour";
  const auto rb = remainder_curve(curves, doses);
  REQUIRE(rb);
  CHECK(rb->exponential());
  for (double t : {0.0, 5.0, 100.0})  // exact sums of the same terms, up to rounding
    CHECK((*rb)(t) == doctest::Approx(curves["whole_body"](t) - curves["kidneys"](t)).epsilon(1e-14));
  curves.erase("whole_body");
  CHECK_FALSE(remainder_curve(curves, doses));
}

TEST_CASE("per-cycle BED: one mono-exponential source equals the closed form of its dose-rate curve") {
  // kidneys 5 Gy from a source A(t) = 100 e^{-k t}, k = ln2/56 h; tissue table row "kidneys"
  TissueTable tissue;
  TissueParameters kid;
  kid.tissue = "kidney", kid.alpha_beta_Gy = 2.6, kid.repair_half_time_h = 2.8;
  tissue.set("kidneys", kid);
  const double k = std::log(2.0) / 56;
  std::map<std::string, ActivityCurve> curves;
  curves["kidneys"].c_MBq = {100};
  curves["kidneys"].k_per_h = {k};
  const double tia = 100 / k;
  std::vector<TargetDose> doses(1);
  doses[0].target = "kidneys", doses[0].dose_Gy = 5, doses[0].contributions_Gy = {{"kidneys", 5.0}};
  add_cycle_bed(tissue, curves, {{"kidneys", tia}}, INFINITY, std::log(2.0) / (6.647 * 24), doses);
  // methods.md §8: mono-exponential G = lambda / (lambda + mu); BED = D + G D^2/(a/b)
  const double mu = std::log(2.0) / 2.8, g = k / (k + mu);
  CHECK(doses[0].bed_g == doctest::Approx(g).epsilon(1e-12));  // closed form, rounding only
  CHECK(doses[0].bed_Gy == doctest::Approx(5 + g * 25 / 2.6).epsilon(1e-12));
  CHECK(doses[0].bed_method == "closed form (sum of exponentials)");
}
