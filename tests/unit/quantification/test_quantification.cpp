// Counts to activity: the analytic test vectors of methods.md §1.2-1.3, the recovery table, the
// date-time arithmetic and the case-file quantification on a hand-computable case.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <fstream>

#include "lutdose/io/case_file.h"
#include "lutdose/error.h"
#include "../test_util.h"
#include "lutdose/pipeline/pipeline.h"
#include "lutdose/quantification/quantification.h"

using namespace lutdose;

namespace {
const double LP = std::log(2.0) / (6.647 * 24.0);  // Lu-177, ICRP-107 half-life 6.647 d

using test::write_temp;
}  // namespace

TEST_CASE("dead time: methods.md §1.3 test vector") {
  const double tau = 4.6e-6;
  // paralysable: R_t = 39 635 cps -> R_o = 33 029 cps (the vector is given to the cps)
  const double r_o = observed_rate_cps(DeadTimeModel::paralysable, 39635.0, tau);
  CHECK(r_o == doctest::Approx(33029.0).epsilon(0.5 / 33029.0));
  // Lambert-W inversion recovers 39 635 cps from the rounded 33 029 cps (to the cps)
  CHECK(true_rate_cps(DeadTimeModel::paralysable, 33029.0, tau, "x") ==
        doctest::Approx(39635.0).epsilon(1.0 / 39635.0));
  // and exactly inverts its own forward model (round trip to rounding)
  CHECK(true_rate_cps(DeadTimeModel::paralysable, r_o, tau, "x") ==
        doctest::Approx(39635.0).epsilon(1e-12));
  // non-paralysable inversion of the same R_o: 38 947 cps
  CHECK(true_rate_cps(DeadTimeModel::non_paralysable, 33029.0, tau, "x") ==
        doctest::Approx(38947.0).epsilon(1.0 / 38947.0));
  CHECK(observed_rate_cps(DeadTimeModel::non_paralysable,
                          true_rate_cps(DeadTimeModel::non_paralysable, 33029.0, tau, "x"), tau) ==
        doctest::Approx(33029.0).epsilon(1e-12));
  // saturation: paralysable above 1/(e tau), non-paralysable at or above 1/tau
  CHECK_THROWS_AS(true_rate_cps(DeadTimeModel::paralysable, 1.01 / (std::exp(1.0) * tau), tau, "x"),
                  InputError);
  CHECK_NOTHROW(true_rate_cps(DeadTimeModel::paralysable, 0.99 / (std::exp(1.0) * tau), tau, "x"));
  CHECK_THROWS_AS(true_rate_cps(DeadTimeModel::non_paralysable, 1.0 / tau, tau, "x"), InputError);
  CHECK(true_rate_cps(DeadTimeModel::none, 1234.0, tau, "x") == 1234.0);
}

TEST_CASE("decay during the frame: 1/k = 1.0011 for 30 min of Lu-177") {
  const double k = decay_in_frame_factor(LP, 0.5);
  CHECK(1.0 / k == doctest::Approx(1.0011).epsilon(0.5e-4));  // methods.md gives 4 decimals
  // closed form against its series 1 - x/2 + x^2/6 (x = lambda T, error x^3/24 ~ 5e-10)
  const double x = LP * 0.5;
  CHECK(k == doctest::Approx(1 - x / 2 + x * x / 6).epsilon(1e-9));
  // mid-frame factor x/sinh(x) = 1 - O(x^2): 1 - (x/2)^2/6
  CHECK(mid_frame_factor(LP, 0.5) == doctest::Approx(1 - (x / 2) * (x / 2) / 6).epsilon(1e-12));
  CHECK(decay_in_frame_factor(LP, 0.0) == 1.0);
}

TEST_CASE("recovery table: validation, PCHIP in log volume, plateau and floor") {
  RecoveryTable t;
  t.volume_mL = {1, 10, 100, 1000};
  t.rc = {0.35, 0.62, 0.86, 0.95};
  t.rc_u = {0.05, 0.04, 0.03, 0.02};
  CHECK(t.problems("r").empty());
  for (size_t i = 0; i < t.rc.size(); ++i) CHECK(t.rc_at(t.volume_mL[i], "x") == doctest::Approx(t.rc[i]).epsilon(1e-14));
  // monotone between the points
  double prev = 0;
  for (double v = 1; v <= 1000; v *= 1.1) {
    const double rc = t.rc_at(v, "x");
    CHECK(rc >= prev);
    CHECK(rc <= 0.95);
    prev = rc;
  }
  CHECK(t.rc_at(5000, "x") == 0.95);  // plateau above the largest volume (documented rule)
  CHECK_THROWS_AS(t.rc_at(0.5, "x"), InputError);  // no extrapolation below
  CHECK(t.rc_u_at(std::sqrt(10.0)) == doctest::Approx(0.045).epsilon(1e-12));  // linear in log V
  RecoveryTable bad = t;
  bad.rc = {0.35, 0.62, 0.5, 1.2};
  const auto p = bad.problems("r");
  CHECK(p.size() == 2);  // not monotone at [2], outside (0, 1] at [3]
  RecoveryTable three;
  three.volume_mL = {1, 10, 100};
  three.rc = {0.4, 0.6, 0.9};
  CHECK(three.rc_at(std::sqrt(10.0), "x") == doctest::Approx(0.5).epsilon(1e-12));
}

TEST_CASE("date-times: hours since 1970, offsets") {
  double h0, h1;
  REQUIRE(parse_date_time_h("1970-01-01T00:00:00Z", h0));
  CHECK(h0 == 0.0);
  REQUIRE(parse_date_time_h("2021-03-01T10:15:30", h1));
  // 18687 days from 1970-01-01 to 2021-03-01 (51 years, 13 leap days: 51*365 + 12 + ...)
  CHECK(h1 == doctest::Approx(18687 * 24 + 10.25 + 30.0 / 3600).epsilon(1e-15));
  double h2;
  REQUIRE(parse_date_time_h("2021-03-01T12:15:30+02:00", h2));
  CHECK(h2 == doctest::Approx(h1).epsilon(1e-15));
  double h3;
  REQUIRE(parse_date_time_h("2020-02-28T23:00", h3));
  double h4;
  REQUIRE(parse_date_time_h("2020-03-01T01:00", h4));
  CHECK(h4 - h3 == doctest::Approx(26.0));  // 2020 is a leap year
  double x;
  CHECK_FALSE(parse_date_time_h("2021-13-01T00:00", x));
  CHECK_FALSE(parse_date_time_h("yesterday", x));
  CHECK_FALSE(parse_date_time_h("2021-03-01T10:15:30 CET", x));
  // dates that do not exist in the calendar (issue 10 finding 10: read as 3 March and 1 May before)
  CHECK_FALSE(parse_date_time_h("2021-02-31T10:00", x));
  CHECK_FALSE(parse_date_time_h("2021-04-31T10:00", x));
  CHECK_FALSE(parse_date_time_h("2021-02-29T10:00", x));  // 2021 is no leap year
  CHECK(parse_date_time_h("2020-02-29T10:00", x));        // 2020 is one
}

TEST_CASE("case file: counts to activity by hand") {
  // One VOI, two frames of 20 min; CF 10 cps/MBq, no dead time, no RC.
  const std::string path = write_temp(R"({
    "lutdose_case_version": 1, "patient": {"id": "p", "sex": "female"},
    "protocols": {"P": {"cf": "10 cps/MBq", "cf_u_cps_per_MBq": 0.2}},
    "cycles": [{"cycle": 1, "reference_time": "2021-03-01T10:00:00",
      "administered": {"activity": "7.4 GBq", "residual_MBq": 100, "residual_measured_at": "2021-03-01T11:00:00"},
      "protocol": "P",
      "timepoints": [
        {"start": "2021-03-01T14:00:00", "duration": "20 min", "vois": {"liver": {"counts": 1.2e6}}},
        {"start_h": 24, "duration_s": 1200, "vois": {"liver": {"counts": 1.0e6}}}]}]})");
  const CaseFile c = load_case_file(path);
  CHECK(c.phantom == "icrp110-af");  // from the sex
  const QuantifiedCase q = quantify_case(c, LP);
  REQUIRE(q.series.size() == 1);
  const double k = decay_in_frame_factor(LP, 1.0 / 3);
  CHECK(q.series[0].time_h(0) == doctest::Approx(4.0).epsilon(1e-12));
  CHECK(q.series[0].activity_MBq(0) == doctest::Approx(1.2e6 / (1200 * 10 * k)).epsilon(1e-12));
  CHECK(q.series[0].activity_MBq(1) == doctest::Approx(1.0e6 / (1200 * 10 * k)).epsilon(1e-12));
  // per-point u = A / sqrt(C) (Poisson); the CF's 2 % is recorded, common to all points
  CHECK(q.series[0].activity_u_MBq(1) ==
        doctest::Approx(q.series[0].activity_MBq(1) * std::sqrt(1e-6)).epsilon(1e-12));
  CHECK(q.points[0][1].u_cf_rel == doctest::Approx(0.02).epsilon(1e-12));
  // residual measured 1 h after t0 is decayed back to t0
  CHECK(q.administered_MBq.at(1) == doctest::Approx(7400 - 100 * std::exp(LP * 1.0)).epsilon(1e-12));
  std::remove(path.c_str());
}

TEST_CASE("case file: every problem is reported, with its JSON path") {
  const std::string path = write_temp(R"({
    "lutdose_case_version": 1, "patient": {"id": "p"}, "phantom": "icrp110-am", "colour": 1,
    "protocols": {"P": {"cf_cps_per_MBq": -5, "dead_time": {"model": "paralysable", "tau": "4.6 parsecs"}}},
    "cycles": [{"cycle": 1, "administered": {"activity_MBq": 7400}, "protocol": "P",
      "timepoints": [
        {"start_h": 4, "duration_s": 0, "observed_rate_cps": 1000, "vois": {"liver": {"counts": -3}, "spleen": {"counts": 5}}},
        {"start_h": 2, "duration_s": 1800, "observed_rate_cps": 1000, "vois": {"liver": {"counts": "nan"}}}]}]})");
  try {
    load_case_file(path);
    FAIL("no error");
  } catch (const InputError& e) {
    const std::string m = e.what();
    for (const char* expected :
         {"colour", "protocols.P.cf_cps_per_MBq", "parsecs", "cycles[0].timepoints[0].duration_s",
          "cycles[0].timepoints[0].vois.liver.counts", "cycles[0].timepoints[1].start",
          "cycles[0].timepoints[1].vois.liver.counts", "cycles[0].timepoints[1].vois.spleen"}) {
      CAPTURE(expected);
      CHECK(m.find(expected) != std::string::npos);
    }
  }
  std::remove(path.c_str());
}

namespace {
// A one-cycle case around one cycle object (JSON text), written to a temporary file.
std::string one_cycle_case(const std::string& protocol, const std::string& cycle,
                           const std::string& fit = R"({"function": "auto"})") {
  return write_temp(R"({"lutdose_case_version": 1, "patient": {"id": "p"}, "phantom": "icrp110-am",
    "protocols": {"P": )" + protocol + R"(}, "fit": )" + fit + R"(, "cycles": [)" + cycle + "]}");
}
}  // namespace

TEST_CASE("mid-frame convention: time at the frame centre and A = C/(CF T) x/sinh(x)") {
  const auto path = one_cycle_case(R"({"cf_cps_per_MBq": 10})", R"({"cycle": 1,
      "administered": {"activity_MBq": 7400}, "protocol": "P", "timing": "mid-frame",
      "timepoints": [{"start_h": 24, "duration": "1 h", "vois": {"liver": {"counts": 3.6e6}}}]})");
  const QuantifiedCase q = quantify_case(load_case_file(path), LP);
  const double x = LP * 1.0 / 2;
  CHECK(q.series[0].time_h(0) == doctest::Approx(24.5).epsilon(1e-15));
  CHECK(q.series[0].activity_MBq(0) == doctest::Approx(3.6e6 / (10 * 3600) * x / std::sinh(x)).epsilon(1e-14));
  CHECK(q.points[0][0].decay_factor == doctest::Approx(x / std::sinh(x)).epsilon(1e-15));
  std::remove(path.c_str());
}

TEST_CASE("images decay-corrected to t0 are un-corrected: A = value x exp(-lambda t)") {
  const auto path = one_cycle_case(R"({"cf_cps_per_MBq": 10})", R"({"cycle": 1,
      "administered": {"activity_MBq": 7400}, "decay_corrected_to": "reference",
      "timepoints": [{"start_h": 96, "vois": {"liver": {"activity_MBq": 200}}},
                     {"start_h": 120, "vois": {"liver": {"concentration": "100 kBq/mL", "volume_mL": 1500}}}]})");
  const QuantifiedCase q = quantify_case(load_case_file(path), LP);
  CHECK(q.series[0].activity_MBq(0) == doctest::Approx(200 * std::exp(-LP * 96)).epsilon(1e-14));
  CHECK(q.series[0].activity_MBq(1) == doctest::Approx(0.1 * 1500 * std::exp(-LP * 120)).epsilon(1e-14));
  std::remove(path.c_str());
}

TEST_CASE("recovery: RC applied at the VOI volume, flagged and not applied below the floor") {
  const auto path = one_cycle_case(
      R"({"cf_cps_per_MBq": 10, "recovery": {"volume_mL": [1, 10, 100], "rc": [0.2, 0.5, 0.8], "floor": 0.3}})",
      R"({"cycle": 1, "administered": {"activity_MBq": 7400}, "protocol": "P", "decay_corrected_to": "acquisition-start",
          "vois": {"tumour_a": {"volume_mL": 10, "recovery": true}, "tumour_b": {"volume_mL": 1.5, "recovery": true}},
          "timepoints": [{"start_h": 24, "duration_s": 100,
                          "vois": {"tumour_a": {"counts": 1000}, "tumour_b": {"counts": 1000}}}]})");
  const QuantifiedCase q = quantify_case(load_case_file(path), LP);
  // acquisition-start values: no decay-in-frame factor; A = C/(T CF RC)
  CHECK(q.series[0].activity_MBq(0) == doctest::Approx(1000.0 / (100 * 10 * 0.5)).epsilon(1e-14));
  // 1.5 mL: RC = 0.2 + 0.3 log(1.5)/log(10) = 0.253 < 0.3: not divided, flagged
  CHECK(q.series[1].activity_MBq(0) == doctest::Approx(1.0).epsilon(1e-14));
  REQUIRE(q.points[1][0].flags.size() == 1);
  CHECK(q.points[1][0].flags[0].find("rc_below_floor") == 0);
  std::remove(path.c_str());
}

TEST_CASE("error model input: the Poisson per-point uncertainties are the fit's sigmas") {
  const auto path = one_cycle_case(R"({"cf_cps_per_MBq": 10, "cf_u_cps_per_MBq": 0.3})", R"({"cycle": 1,
      "administered": {"activity_MBq": 7400}, "protocol": "P",
      "timepoints": [
        {"start_h": 4, "duration_s": 1800, "vois": {"liver": {"counts": 5.0e6}}},
        {"start_h": 24, "duration_s": 1800, "vois": {"liver": {"counts": 4.3e6}}},
        {"start_h": 72, "duration_s": 1800, "vois": {"liver": {"counts": 3.3e6}}},
        {"start_h": 96, "duration_s": 1800, "vois": {"liver": {"counts": 2.8e6}}},
        {"start_h": 168, "duration_s": 1800, "vois": {"liver": {"counts": 1.9e6}}}]})",
                                   R"({"function": "E1", "error_model": "input"})");
  const CaseFile c = load_case_file(path);
  const RunResult r = run_case(c, LUTDOSE_TEST_DATA_DIR);
  const auto& v = r.cycles.at(0).vois.at(0);
  const auto& fit = v.fit.candidates.at(0);
  for (Eigen::Index i = 0; i < 5; ++i) {
    const double a = v.tac.activity_MBq(i);
    const double counts = v.quantification.at(static_cast<size_t>(i)).value;
    const double sigma = a / std::sqrt(counts);  // Poisson; the 3 % CF is common to all points
    CHECK(v.tac.activity_u_MBq(i) == doctest::Approx(sigma).epsilon(1e-12));
    // absolute sigmas: standardized residual = (y - f) / sigma, not rescaled
    CHECK(fit.standardized_residuals(i) == doctest::Approx((a - fit.fitted_MBq(i)) / sigma).epsilon(1e-9));
  }
  std::remove(path.c_str());
}

TEST_CASE("date-times: only digits where the format has digits (no signs, spaces or short fields)") {
  double x;
  for (const char* bad : {"2026-01-05T09:00+05:-3", "2026-01-05T09:00+-5:00", "2026-01-05T09:00+ 5:00",
                          "2026-1-5T9:0", "2026-01-05T 9:00", " 2026-01-05T09:00", "+202-01-05T09:00",
                          "2026-01-05T09:00:+1", "2026-01-05T09:00:-1"})
    CHECK_MESSAGE(!parse_date_time_h(bad, x), std::string(bad));
  CHECK(parse_date_time_h("2026-01-05T09:00+14:00", x));
  CHECK(parse_date_time_h("2026-01-05 09:00:30.25-12:00", x));
}

TEST_CASE("a VOI volume equal to the smallest recovery-table volume is inside the table") {
  // 20 and 6.5 mL are volumes with exp(log(V)) < V in double precision (checked: the round trip
  // lands one ulp below): the slope d ln RC / d ln V at the lower end must not reject them.
  for (double v0 : {20.0, 6.5}) {
    CAPTURE(v0);
    REQUIRE(std::exp(std::log(v0)) < v0);  // the case the finding is about
    RecoveryTable t;
    t.volume_mL = {v0, 2 * v0, 10 * v0, 100 * v0};
    t.rc = {0.4, 0.6, 0.8, 0.95};
    CHECK(t.rc_at(v0, "test") == doctest::Approx(0.4).epsilon(1e-12));  // a table node: exact up to rounding
    double slope = 0;
    CHECK_NOTHROW(slope = t.dln_rc_dln_volume(v0));
    CHECK(slope > 0);  // RC rises with volume at the lower end
    CHECK(std::isfinite(slope));
  }
}
