// Next-cycle prescription (engine/src/planning.cpp, docs/plan.md): every expected activity is
// computed by hand in the comments from the formulas of methods.md §8.5.
//
// Tolerances: closed-form answers are compared with a relative 1e-12 (a handful of double
// roundings, each ~1e-16, in both the engine and the hand formula); the BED root check b(A) =
// R_BED/N uses the 1e-9 asked for by the specification (in fact it holds to ~1e-15); the normal
// tail 1 - Phi(1) is compared to 1e-6 (the 7 digits quoted, 0.1586553).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <string>

#include "lutdose/error.h"
#include "lutdose/planning/planning.h"
#include "lutdose/io/plan_json.h"
#include "../test_util.h"

using namespace lutdose;

namespace {

using test::write_temp;

constexpr double kRel = 1e-12;  // closed forms: a few double roundings

//! n cycles of `dose_Gy` each at `mbq`, cycles 1..n.
TargetHistory cycles_of(const std::string& target, int n, double dose_Gy, double mbq = 7400) {
  TargetHistory h{target, {}};
  for (int i = 1; i <= n; ++i) {
    CycleRecord c;
    c.cycle = i;
    c.administered_MBq = mbq;
    c.dose_Gy = dose_Gy;
    h.cycles.push_back(c);
  }
  return h;
}

Limit limit(const std::string& pattern, const std::string& quantity, double value) {
  return {pattern, quantity, value, "test"};
}

TissueParameters kidney_tissue() {
  TissueParameters t;
  t.tissue = "kidney";
  t.alpha_beta_Gy = 2.6;  // methods.md §7.3 / §7.5
  t.repair_half_time_h = 2.8;
  return t;
}

bool reasoning_has(const PlanResult& r, const std::string& text) {
  for (const auto& s : r.reasoning)
    if (s.find(text) != std::string::npos) return true;
  return false;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("planning: equal split of the remaining dose budget") {
  // 2 cycles of 5 Gy at 7400 MBq: d = 5/7.4 = 0.675676 Gy/GBq; R = 23 - 10 = 13 Gy; N_rem = 4 - 2
  // = 2; safety_k = 0: A = R/(N_rem d) = 13/(2 x 5/7.4) GBq = 13 x 7.4/10 = 9.62 GBq = 9620 MBq.
  // kidney_right has 4 Gy cycles: d = 4/7.4, R = 15, A = 15 x 7.4/8 = 13.875 GBq, so kidney_left binds.
  std::vector<TargetHistory> history = {cycles_of("kidney_left", 2, 5.0), cycles_of("kidney_right", 2, 4.0),
                                        cycles_of("liver", 2, 3.0)};
  PlanOptions o;
  o.safety_k = 0;
  o.a_max_MBq = 1e6;  // no clamp: see the raw value
  o.limits = {limit("kidney*", "dose_Gy", 23)};
  PlanResult r = plan_next_cycle(history, o);
  CHECK(r.next_cycle == 3);
  CHECK_FALSE(r.stop);
  CHECK(r.activity_MBq == doctest::Approx(9620.0).epsilon(kRel));
  CHECK(r.binding.target == "kidney_left");
  CHECK(r.binding.quantity == "dose_Gy");
  CHECK(r.binding.limit == 23.0);
  REQUIRE(r.targets.size() == 2);  // liver has no limit: not planned
  CHECK(r.targets[0].predicted_dose_Gy_per_GBq == doctest::Approx(5.0 / 7.4).epsilon(kRel));
  CHECK(r.targets[0].predicted_u_Gy_per_GBq == doctest::Approx(0.1 * 5.0 / 7.4).epsilon(kRel));
  CHECK(r.targets[0].prediction_method.find("previous") == 0);
  CHECK(r.targets[1].max_activity_MBq == doctest::Approx(13875.0).epsilon(kRel));
  // At 9620 MBq kidney_left gets 9.62 x 5/7.4 = 6.5 Gy: cumulative 16.5 Gy.
  CHECK(r.targets[0].predicted_dose_Gy == doctest::Approx(6.5).epsilon(kRel));
  CHECK(r.targets[0].cumulative_dose_Gy == doctest::Approx(16.5).epsilon(kRel));
  CHECK(std::isnan(r.targets[0].limit_bed_Gy));
  CHECK(reasoning_has(r, "liver"));

  // The standard bound: 9620 > 7400, so A_max decides.
  o.a_max_MBq = 7400;
  r = plan_next_cycle(history, o);
  CHECK(r.activity_MBq == 7400.0);
  CHECK(r.binding.quantity == "a_max");
  CHECK(r.binding.limit == 7400.0);
  CHECK(r.binding.target.empty());
  CHECK(r.targets[0].max_activity_MBq == doctest::Approx(9620.0).epsilon(kRel));
  CHECK(reasoning_has(r, "Clamped to A_max"));
}

TEST_CASE("planning: fixed activity until the limit, then a reduced last cycle") {
  PlanOptions o;
  o.strategy = Strategy::fixed_until_limit;
  o.planned_cycles = 9;  // Lund: cycles until the limit (up to 9 seen, methods §8.2)
  o.safety_k = 0;
  o.limits = {limit("kidney*", "dose_Gy", 23)};

  // 2 cycles of 5 Gy: 10 + (5/7.4) x 7.4 = 15 Gy <= 23 Gy, so the standard 7400 MBq.
  PlanResult r = plan_next_cycle({cycles_of("kidneys", 2, 5.0)}, o);
  CHECK(r.activity_MBq == 7400.0);
  CHECK(r.binding.quantity == "a_standard");
  CHECK(r.targets[0].cumulative_dose_Gy == doctest::Approx(15.0).epsilon(kRel));

  // 3 cycles of 6 Gy: d = 6/7.4 = 0.810811 Gy/GBq; 18 + 6 = 24 > 23, so the last cycle is
  // reduced to A = R/d = 5/(6/7.4) GBq = 37/6 GBq = 6166.667 MBq, and the cumulative is 23 Gy.
  r = plan_next_cycle({cycles_of("kidneys", 3, 6.0)}, o);
  CHECK(r.activity_MBq == doctest::Approx(37000.0 / 6.0).epsilon(kRel));
  CHECK(r.binding.target == "kidneys");
  CHECK(r.binding.quantity == "dose_Gy");
  CHECK(r.targets[0].cumulative_dose_Gy == doctest::Approx(23.0).epsilon(kRel));
  CHECK(reasoning_has(r, "last cycle"));

  // The next plan after that last cycle (23 Gy reached) stops.
  auto h = cycles_of("kidneys", 3, 6.0);
  h.cycles.push_back({4, 37000.0 / 6.0, 5.0});
  r = plan_next_cycle({h}, o);
  CHECK(r.stop);
  CHECK(r.activity_MBq == 0.0);
}

TEST_CASE("planning: BED limit, the quadratic for the activity") {
  // G = lambda/(lambda + mu) with lambda = ln2/56 h, mu = ln2/2.8 h: G = 2.8/(56 + 2.8) = 1/21
  // (methods.md §7.5).
  CHECK(g_mono_exponential(56, 2.8) == doctest::Approx(1.0 / 21).epsilon(kRel));
  // 2 cycles of 5 Gy at 7400 MBq, t_eff 56 h; alpha/beta 2.6 Gy: BED_j = 5 + (1/21) 25/2.6 =
  // 5.457875 Gy (§7.5). R_BED = 40 - 10.915751 = 29.084249 Gy; N_rem = 2: b = 14.542125 Gy per cycle.
  // d = 5/7.4 Gy/GBq, safety_k 0: A = (a/b)(-1 + sqrt(1 + 4 G b/(a/b)))/(2 G d)
  //   = 2.6 (-1 + sqrt(1 + 4 x 14.542125/(21 x 2.6)))/(2/21 x 0.675676) GBq = 17.662004 GBq.
  auto h = cycles_of("kidneys", 2, 5.0);
  for (auto& c : h.cycles) c.t_eff_h = 56;
  PlanOptions o;
  o.safety_k = 0;
  o.a_max_MBq = 1e6;
  o.limits = {limit("kidney*", "bed_Gy", 40)};
  o.tissue["kidney*"] = kidney_tissue();
  const PlanResult r = plan_next_cycle({h}, o);
  const double g = 1.0 / 21, ab = 2.6, d = 5.0 / 7.4;
  const double bed_j = 5 + g * 25 / ab, per_cycle = (40 - 2 * bed_j) / 2;
  const double a_closed = 1000 * ab * (-1 + std::sqrt(1 + 4 * g * per_cycle / ab)) / (2 * g * d);
  CHECK(a_closed == doctest::Approx(17662.003961).epsilon(1e-10));  // the value written above
  // Closed form vs the engine's cancellation-free form: 1e-9 relative (the textbook form loses
  // ~1e-14 to the subtraction -1 + sqrt(...)).
  CHECK(r.activity_MBq == doctest::Approx(a_closed).epsilon(1e-9));
  CHECK(r.binding.quantity == "bed_Gy");
  const double x = d * r.activity_MBq / 1000;  // cycle dose at the returned activity
  CHECK(std::fabs(x + g * x * x / ab - per_cycle) < 1e-9);
  REQUIRE(r.targets.size() == 1);
  CHECK(r.targets[0].g == doctest::Approx(g).epsilon(kRel));
  CHECK(r.targets[0].predicted_bed_Gy == doctest::Approx(per_cycle).epsilon(1e-12));
  CHECK(r.targets[0].cumulative_bed_Gy == doctest::Approx(2 * bed_j + per_cycle).epsilon(1e-12));
  // G -> 0: the BED is the dose, A = b/d exactly.
  CHECK(activity_for_bed_MBq(10, 0.5, 0, 2.6) == doctest::Approx(20000.0).epsilon(kRel));

  // The same history given as bed_Gy + g, or as bed_Gy alone (G from (BED - D)(a/b)/D^2):
  // identical plan.
  auto h2 = cycles_of("kidneys", 2, 5.0);
  for (auto& c : h2.cycles) c.bed_Gy = bed_j;
  const PlanResult r2 = plan_next_cycle({h2}, o);
  CHECK(r2.activity_MBq == doctest::Approx(r.activity_MBq).epsilon(1e-9));  // G recovered from rounding-free BED

  // max-bed ignores a dose limit where a target has a BED limit: with 23 Gy added, equal split
  // is bound by the dose (9620 MBq, test above), max-bed still by the BED (17662 MBq).
  o.limits.push_back(limit("kidney*", "dose_Gy", 23));
  CHECK(plan_next_cycle({h}, o).activity_MBq == doctest::Approx(9620.0).epsilon(kRel));
  o.strategy = Strategy::max_bed;
  const PlanResult r3 = plan_next_cycle({h}, o);
  CHECK(r3.activity_MBq == doctest::Approx(r.activity_MBq).epsilon(kRel));
  CHECK(r3.targets[0].limit_dose_Gy == 23.0);  // reported
  // The unapplied dose limit: cycle dose 0.675676 x 17.662 = 11.934 Gy, cumulative 21.934 Gy < 23
  // Gy, but with u = 10 % (1.1934 Gy) 23 Gy is only (13 - 11.934)/1.1934 = 0.893 SD away:
  // P = 1 - Phi(0.893) = 0.186.
  CHECK(r3.targets[0].p_exceed_dose == doctest::Approx(0.186).epsilon(0.005));  // 3 digits above
  const double mean = d * r3.activity_MBq / 1000, sd = 0.1 * mean;
  CHECK(r3.targets[0].p_exceed_dose ==
        doctest::Approx(0.5 * std::erfc((13 - mean) / sd / std::sqrt(2.0))).epsilon(kRel));
}

TEST_CASE("planning: marrow binding instead of kidney, and the clamps") {
  // Cycle 1 at 7400 MBq: kidneys 2.96 Gy (0.4 Gy/GBq), red marrow 1.48 Gy (0.2 Gy/GBq, high).
  // N_rem = 3, safety_k 0. Kidneys: R = 20.04 Gy, A = 20.04/(3 x 0.4) = 16.7 GBq.
  // Marrow: R = 2 - 1.48 = 0.52 Gy, A = 0.52/(3 x 0.2) = 0.866667 GBq: marrow binds.
  PlanOptions o;
  o.safety_k = 0;
  o.limits = {limit("kidney*", "dose_Gy", 23), limit("red_marrow", "dose_Gy", 2),
              limit("Red Marrow", "dose_Gy", 2)};
  const std::vector<TargetHistory> history = {cycles_of("kidneys", 1, 2.96), cycles_of("red_marrow", 1, 1.48)};
  PlanResult r = plan_next_cycle(history, o);
  CHECK(r.activity_MBq == doctest::Approx(2600.0 / 3).epsilon(kRel));
  CHECK(r.binding.target == "red_marrow");
  CHECK(r.binding.limit == 2.0);
  CHECK(r.targets[0].max_activity_MBq == doctest::Approx(16700.0).epsilon(kRel));
  CHECK(reasoning_has(r, "'Red Marrow'"));  // said to match no target

  // A_min above what the marrow allows: raised to A_min, binding a_min.
  o.a_min_MBq = 1000;
  r = plan_next_cycle(history, o);
  CHECK(r.activity_MBq == 1000.0);
  CHECK(r.binding.quantity == "a_min");
  CHECK(reasoning_has(r, "Raised to A_min"));
  // Marrow at 1000 MBq: 1.48 + 0.2 x 1 = 1.68 Gy, still under 2 Gy (the limit was split over 3 cycles).
  CHECK(r.targets[1].cumulative_dose_Gy == doctest::Approx(1.68).epsilon(kRel));
  o.a_min_MBq = 0;

  // Low marrow dose (0.02 Gy/GBq): kidneys allow 16700 MBq, marrow 1.852/(3 x 0.02) = 30.9 GBq;
  // clamped to 7400.
  r = plan_next_cycle({cycles_of("kidneys", 1, 2.96), cycles_of("red_marrow", 1, 0.148)}, o);
  CHECK(r.activity_MBq == 7400.0);
  CHECK(r.binding.quantity == "a_max");
}

TEST_CASE("planning: a limit already reached stops the treatment") {
  // 3 cycles of 8 Gy: 24 Gy >= 23 Gy.
  PlanOptions o;
  o.limits = {limit("kidney*", "dose_Gy", 23)};
  PlanResult r = plan_next_cycle({cycles_of("kidney_left", 3, 8.0)}, o);
  CHECK(r.stop);
  CHECK(r.activity_MBq == 0.0);
  CHECK(r.binding.target == "kidney_left");
  CHECK(r.binding.quantity == "dose_Gy");
  CHECK(r.binding.limit == 23.0);
  CHECK(reasoning_has(r, "kidney_left's cumulative dose 24 Gy has reached its limit of 23 Gy"));
  CHECK(r.targets[0].cumulative_dose_Gy == 24.0);
  CHECK(r.targets[0].max_activity_MBq == 0.0);
  CHECK(r.targets[0].p_exceed_dose == 1.0);  // already above, nothing uncertain

  // All planned cycles delivered.
  r = plan_next_cycle({cycles_of("kidney_left", 4, 3.0)}, o);
  CHECK(r.stop);
  CHECK(r.activity_MBq == 0.0);
  CHECK(r.binding.quantity == "planned_cycles");
  CHECK(r.next_cycle == 5);
}

TEST_CASE("planning: bayes prediction by the normal-normal update") {
  // Prior 0.43 +- 0.13 Gy/GBq; cycles: 3.7 Gy and 4.44 Gy at 7400 MBq = 0.5 and 0.6 Gy/GBq,
  // each with SD 10 % of itself: 0.05, 0.06.
  // precision = 1/0.13^2 + 1/0.05^2 + 1/0.06^2 = 59.171598 + 400 + 277.777778 = 736.949375
  // mean = (0.43 x 59.171598 + 0.5 x 400 + 0.6 x 277.777778)/736.949375 = 392.110454/736.949375
  //      = 0.532072442 Gy/GBq;  SD = 1/sqrt(736.949375) = 0.0368367386 Gy/GBq.
  TargetHistory h = cycles_of("kidneys", 2, 3.7);
  h.cycles[1].dose_Gy = 4.44;
  PlanOptions o;
  o.prediction = Prediction::bayes;
  o.limits = {limit("kidney*", "dose_Gy", 23)};
  o.priors = {{"kidney*", 0.43, 0.13, "test"}};
  const PlanResult r = plan_next_cycle({h}, o);
  const double precision = 1 / (0.13 * 0.13) + 1 / (0.05 * 0.05) + 1 / (0.06 * 0.06);
  const double mean = (0.43 / (0.13 * 0.13) + 0.5 / (0.05 * 0.05) + 0.6 / (0.06 * 0.06)) / precision;
  CHECK(mean == doctest::Approx(0.532072442).epsilon(1e-9));  // the hand value above, 9 digits
  CHECK(r.targets[0].predicted_dose_Gy_per_GBq == doctest::Approx(mean).epsilon(kRel));
  CHECK(r.targets[0].predicted_u_Gy_per_GBq == doctest::Approx(0.0368367386).epsilon(1e-9));
  CHECK(r.targets[0].prediction_method.find("bayes") == 0);
  // safety_k 1: R = 23 - 8.14 = 14.86 Gy, A = 14.86/(2 x (0.53207 + 0.03684)) = 13.06 GBq > 7.4 GBq.
  CHECK(r.activity_MBq == 7400.0);
  CHECK(r.targets[0].max_activity_MBq ==
        doctest::Approx(1000 * 14.86 / (2 * (mean + 1 / std::sqrt(precision)))).epsilon(kRel));

  // No cycle yet: the prior alone.
  const PlanResult r0 = plan_next_cycle({TargetHistory{"kidneys", {}}}, o);
  CHECK(r0.next_cycle == 1);
  CHECK(r0.targets[0].predicted_dose_Gy_per_GBq == 0.43);
  CHECK(r0.targets[0].predicted_u_Gy_per_GBq == 0.13);

  // A limited target without a prior is an InputError naming it.
  o.limits.push_back(limit("red_marrow", "dose_Gy", 2));
  const std::string msg = error_of([&] { plan_next_cycle({cycles_of("red_marrow", 1, 0.3)}, o); });
  CHECK(msg.find("red_marrow") != std::string::npos);
  CHECK(msg.find("prior") != std::string::npos);
}

TEST_CASE("planning: P(exceed) at the k = 1 upper bound is 1 - Phi(1)") {
  // One cycle left (planned 3, 2 done) and safety_k 1: A = R/(d + u), so the cumulative reaches
  // the limit exactly when the true d is d + u, one SD above the prediction:
  // P = 1 - Phi(1) = 0.1586553.
  PlanOptions o;
  o.planned_cycles = 3;
  o.safety_k = 1;
  o.a_max_MBq = 1e6;
  o.limits = {limit("kidney*", "dose_Gy", 23)};
  PlanResult r = plan_next_cycle({cycles_of("kidneys", 2, 5.0)}, o);
  CHECK(r.binding.quantity == "dose_Gy");
  CHECK(r.activity_MBq == doctest::Approx(13 / (1.1 * 5 / 7.4) * 1000).epsilon(kRel));
  CHECK(r.targets[0].p_exceed_dose == doctest::Approx(0.1586553).epsilon(1e-6));
  CHECK(std::fabs(r.targets[0].p_exceed_dose - 0.5 * std::erfc(1 / std::sqrt(2.0))) < 1e-12);

  // The same for a binding BED limit: d* = d + u by construction.
  auto h = cycles_of("kidneys", 2, 5.0);
  for (auto& c : h.cycles) c.g = 1.0 / 21;
  o.limits = {limit("kidney*", "bed_Gy", 40)};
  o.tissue["kidneys"] = kidney_tissue();
  r = plan_next_cycle({h}, o);
  CHECK(r.binding.quantity == "bed_Gy");
  CHECK(r.targets[0].cumulative_bed_Gy < 40.0);
  CHECK(r.targets[0].p_exceed_bed == doctest::Approx(0.1586553).epsilon(1e-6));
}

TEST_CASE("planning: BED limit without its inputs is an InputError naming what is missing") {
  PlanOptions o;
  o.limits = {limit("kidney*", "bed_Gy", 40)};
  auto h = cycles_of("kidney_left", 1, 5.0);
  std::string msg = error_of([&] { plan_next_cycle({h}, o); });  // no tissue parameters
  CHECK(msg.find("kidney_left") != std::string::npos);
  CHECK(msg.find("tissue") != std::string::npos);
  o.tissue["kidney*"] = kidney_tissue();
  msg = error_of([&] { plan_next_cycle({h}, o); });  // no bed_Gy, g or t_eff_h
  CHECK(msg.find("kidney_left") != std::string::npos);
  CHECK(msg.find("t_eff_h") != std::string::npos);
  // Bad options and history.
  o.a_max_MBq = -1;
  CHECK(error_of([&] { plan_next_cycle({h}, o); }).find("a_max_MBq") != std::string::npos);
  o.a_max_MBq = 7400;
  h.cycles[0].administered_MBq = -7400;
  CHECK(error_of([&] { plan_next_cycle({h}, o); }).find("'-7400'") != std::string::npos);
}

TEST_CASE("planning: read_dose_history") {
  const auto path = write_temp(
      "# doses from elsewhere\n"
      "target,cycle,administered_MBq,dose_Gy,bed_Gy,t_eff_h,g\n"
      "kidney_left,2,7400,4.5,,56,\n"
      "kidney_left,1,7400,5,5.4579,,\n"
      "red_marrow,1,7400,0.3,,,0.1\n");
  const auto h = read_dose_history(path);
  REQUIRE(h.size() == 2);
  CHECK(h[0].target == "kidney_left");
  REQUIRE(h[0].cycles.size() == 2);
  CHECK(h[0].cycles[0].cycle == 1);  // sorted
  CHECK(h[0].cycles[0].bed_Gy == 5.4579);
  CHECK(std::isnan(h[0].cycles[0].t_eff_h));
  CHECK(h[0].cycles[1].t_eff_h == 56.0);
  CHECK(h[1].cycles[0].g == 0.1);
  std::remove(path.c_str());

  const std::string header = "cycle,administered_MBq,target,dose_Gy\n";
  struct Bad {
    std::string content, expected1, expected2;
  };
  const Bad bad[] = {
      {header + "1,7400,kidneys,five\n", ":2:", "'five'"},                 // non-numeric dose
      {header + "1,-7400,kidneys,5\n", ":2:", "'-7400'"},                  // negative activity
      {header + "1,7400,kidneys\n", ":2:", "cells"},                       // a missing cell
      {"cycle,administered_MBq,target\n1,7400,kidneys\n", "dose_Gy", "missing"},  // missing column
      {header + "0,7400,kidneys,5\n", ":2:", "cycle is '0'"},
      {header + "1.5,7400,kidneys,5\n", ":2:", "'1.5'"},
      {header + "1,7400,kidneys,5\n1,7400,kidneys,6\n", ":3:", "line 2"},    // duplicate
      {header + "1,7400,kidneys,5\n1,7000,red_marrow,0.3\n", ":3:", "'7000'"},  // one activity per cycle
      {"cycle,administered_MBq,target,dose_Gy,bed_Gy\n1,7400,kidneys,5,4\n", ":2:", "bed_Gy is '4'"},
      {"cycle,administered_MBq,target,dose_Gy,colour\n1,7400,kidneys,5,red\n", "colour", "t_eff_h"},
  };
  for (const auto& b : bad) {
    CAPTURE(b.content);
    const auto p = write_temp(b.content);
    const std::string msg = error_of([&] { read_dose_history(p); });
    CHECK(msg.find(p) != std::string::npos);
    CHECK(msg.find(b.expected1) != std::string::npos);
    CHECK(msg.find(b.expected2) != std::string::npos);
    std::remove(p.c_str());
  }
}

TEST_CASE("planning: the reference tables and option parsing") {
  const auto limits = load_limits(LUTDOSE_TEST_DATA_DIR);
  REQUIRE(limits.size() == 4);  // kidney dose 23, kidney BED 40, marrow 2 under two names
  CHECK(limits[0].target_pattern == "kidney*");
  CHECK(limits[0].quantity == "dose_Gy");
  CHECK(limits[0].value == 23.0);
  CHECK(limits[1].quantity == "bed_Gy");
  CHECK(limits[1].value == 40.0);
  CHECK(limits[1].source.find("K27") != std::string::npos);
  CHECK(limits[2].target_pattern == "red_marrow");
  CHECK(limits[3].target_pattern == "Red Marrow");
  const auto priors = load_population_priors(LUTDOSE_TEST_DATA_DIR);
  REQUIRE(priors.size() == 3);
  CHECK(priors[0].mean_Gy_per_GBq == 0.43);
  CHECK(priors[0].sd_Gy_per_GBq == 0.13);
  CHECK(priors[1].mean_Gy_per_GBq == 0.04);

  CHECK(target_matches("kidney*", "kidney_right"));
  CHECK(target_matches("kidney*", "kidney"));
  CHECK_FALSE(target_matches("kidney*", "Kidneys"));  // case-sensitive
  CHECK_FALSE(target_matches("red_marrow", "red_marrow_2"));

  const Limit l = parse_limit("kidney*:bed_Gy:28");
  CHECK(l.target_pattern == "kidney*");
  CHECK(l.quantity == "bed_Gy");
  CHECK(l.value == 28.0);
  CHECK(parse_limit("Red Marrow:dose_Gy:1.5").target_pattern == "Red Marrow");
  CHECK_THROWS_AS(parse_limit("kidneys:dose:23"), InputError);
  CHECK_THROWS_AS(parse_limit("kidneys:dose_Gy:-1"), InputError);
  CHECK(parse_strategy("fixed-until-limit") == Strategy::fixed_until_limit);
  CHECK(parse_strategy("max_bed") == Strategy::max_bed);
  CHECK_THROWS_AS(parse_prediction("median"), InputError);
}

TEST_CASE("planning: JSON output with null for NaN") {
  PlanOptions o;
  o.limits = {limit("kidney*", "dose_Gy", 23)};
  const PlanResult r = plan_next_cycle({cycles_of("kidneys", 2, 5.0)}, o);
  const auto j = to_json(r);
  CHECK(j["next_cycle"] == 3);
  CHECK(j["activity_MBq"].get<double>() == r.activity_MBq);
  CHECK(j["stop"] == false);
  CHECK(j["binding"]["quantity"] == "a_max");
  CHECK(j["binding"]["target"].is_null());
  REQUIRE(j["targets"].size() == 1);
  CHECK(j["targets"][0]["name"] == "kidneys");
  CHECK(j["targets"][0]["limit_dose_Gy"] == 23.0);
  CHECK(j["targets"][0]["limit_bed_Gy"].is_null());
  CHECK(j["targets"][0]["cumulative_bed_Gy"].is_null());
  for (const char* key : {"predicted_dose_Gy_per_GBq", "predicted_u_Gy_per_GBq", "predicted_dose_Gy",
                          "cumulative_dose_Gy", "p_exceed_dose", "max_activity_MBq"})
    CHECK(j["targets"][0][key].is_number());
  CHECK(j["reasoning"].size() == r.reasoning.size());
  CHECK(j["options"]["strategy"] == "equal-split");
}
