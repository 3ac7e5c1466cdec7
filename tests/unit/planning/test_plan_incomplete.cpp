// The planner refuses incomplete organ-at-risk doses (issue 11, finding 7): a limit whose dose
// lacks a major contribution is not applied silently; with allow_incomplete it proceeds, marks
// the result and never reports P(exceed) from the incomplete dose.
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "lutdose/planning/planning.h"

using namespace lutdose;

namespace {
TargetHistory two_cycles(const std::string& target, double dose_Gy, const std::string& incomplete) {
  TargetHistory h{target, {}};
  for (int i = 1; i <= 2; ++i) {
    CycleRecord c;
    c.cycle = i;
    c.administered_MBq = 7400;
    c.dose_Gy = dose_Gy;
    c.incomplete = incomplete;
    h.cycles.push_back(c);
  }
  return h;
}

PlanOptions options() {
  PlanOptions o;
  o.limits = {{"kidneys", "dose_Gy", 23, "test"}, {"Red Marrow", "dose_Gy", 2, "test"}};
  o.a_max_MBq = 1e9;  // no clamp: the limits alone decide
  return o;
}

bool mentions(const PlanResult& r, const std::string& text) {
  for (const auto& s : r.reasoning)
    if (s.find(text) != std::string::npos) return true;
  return false;
}
}  // namespace

TEST_CASE("a marrow dose without its self-dose is not used to prescribe") {
  // Red Marrow 0.0077 Gy per 7.4 GBq cycle: the cross-dose only. Applied, it would allow
  // 1.985 Gy / (2 x 1.1 x 0.00104 Gy/GBq) = 864 GBq.
  const std::vector<TargetHistory> h = {two_cycles("kidneys", 3.0, ""),
                                        two_cycles("Red Marrow", 0.0077, "no red-marrow self-dose")};
  const PlanResult r = plan_next_cycle(h, options());
  CHECK(std::isnan(r.activity_MBq));  // no prescription: unknown, not 0 and not 864 GBq
  CHECK_FALSE(r.stop);
  CHECK(r.incomplete);
  CHECK(r.binding.quantity == "incomplete_dose");
  CHECK(r.binding.target == "Red Marrow");
  CHECK(mentions(r, "cannot be evaluated"));
  CHECK(mentions(r, "no red-marrow self-dose"));
  for (const auto& t : r.targets) {
    CHECK(std::isnan(t.p_exceed_dose));
    CHECK(std::isnan(t.p_exceed_bed));
  }
}

TEST_CASE("allow_incomplete proceeds, marks the result and gives no P(exceed) for the incomplete dose") {
  const std::vector<TargetHistory> h = {two_cycles("kidneys", 3.0, ""),
                                        two_cycles("Red Marrow", 0.0077, "no red-marrow self-dose")};
  PlanOptions o = options();
  o.allow_incomplete = true;
  const PlanResult r = plan_next_cycle(h, o);
  // kidneys: (23 - 6) Gy / (2 x 1.1 x 3/7.4 Gy/GBq) = 19.06 GBq binds before the marrow's 864 GBq
  CHECK(r.activity_MBq == doctest::Approx(1000 * 17.0 / (2 * 1.1 * 3.0 / 7.4)).epsilon(1e-12));  // closed form
  CHECK(r.incomplete);
  for (const auto& t : r.targets) {
    CAPTURE(t.name);
    if (t.name == "Red Marrow") {
      CHECK(t.incomplete == "no red-marrow self-dose");
      CHECK(std::isnan(t.p_exceed_dose));
    } else {
      CHECK(t.incomplete.empty());
      CHECK(std::isfinite(t.p_exceed_dose));
    }
  }
}

TEST_CASE("complete doses: no incomplete mark") {
  const std::vector<TargetHistory> h = {two_cycles("kidneys", 3.0, ""), two_cycles("Red Marrow", 0.37, "")};
  const PlanResult r = plan_next_cycle(h, options());
  CHECK_FALSE(r.incomplete);
  CHECK(std::isfinite(r.activity_MBq));
}

#include <cstdio>

#include "../test_util.h"

TEST_CASE("a dose history table can mark a dose incomplete (column incomplete)") {
  const std::string path = test::write_temp(
      "cycle,administered_MBq,target,dose_Gy,incomplete\n"
      "1,7400,kidneys,3.0,\n"
      "1,7400,red_marrow,0.01,no red-marrow self-dose\n");
  const auto h = read_dose_history(path);
  std::remove(path.c_str());
  REQUIRE(h.size() == 2);
  CHECK(h[0].cycles[0].incomplete.empty());
  CHECK(h[1].cycles[0].incomplete == "no red-marrow self-dose");
}
