// BED and EQD2 (methods.md §7): the test vectors of §7.5, closed form against numerical
// integration of the Lea-Catcheside double integral, and the tissue table.
#include <doctest/doctest.h>

#include <cmath>
#include <random>

#include "lutdose/error.h"
#include "lutdose/radiobiology/radiobiology.h"

using namespace lutdose;

namespace {
TissueParameters kidney() {
  TissueParameters t;
  t.tissue = "kidney";
  t.alpha_beta_Gy = 2.6;
  t.repair_half_time_h = 2.8;
  return t;
}
}  // namespace

TEST_CASE("methods.md §7.5: mono-exponential kidney, 5 Gy, T_eff 56 h -> G = 1/21, BED 5.4579 Gy") {
  const double lambda = std::log(2.0) / 56.0;
  ExpSum rate{{5.0 * lambda}, {lambda}};  // D = a / lambda = 5 Gy
  const BedResult r = bed_closed_form(rate, kidney());
  CHECK(r.dose_Gy == doctest::Approx(5.0).epsilon(1e-14));
  CHECK(r.g == doctest::Approx(1.0 / 21.0).epsilon(1e-12));  // lambda/(lambda + mu), exact
  CHECK(r.bed_Gy == doctest::Approx(5.4579).epsilon(1e-4));  // the vector is given to 5 digits
  // four identical cycles (BED adds over cycles, §7.2) and their EQD2
  CHECK(4 * r.bed_Gy == doctest::Approx(21.8315).epsilon(1e-4));
  CHECK(eqd2(4 * r.bed_Gy, 2.6) == doctest::Approx(12.3395).epsilon(1e-4));
  CHECK(bed_from_dose(5.0, 1.0 / 21.0, 2.6) == doctest::Approx(r.bed_Gy).epsilon(1e-14));
}

TEST_CASE("methods.md §7.5: uptake and clearance, G = 0.043488, BED 5.41815 Gy at 5 Gy") {
  const double l1 = std::log(2.0) / 60.0, l2 = std::log(2.0) / 3.0;
  const double scale = 5.0 / (1.0 / l1 - 1.0 / l2);  // normalise to D = 5 Gy
  ExpSum rate{{scale, -scale}, {l1, l2}};
  const BedResult r = bed_closed_form(rate, kidney());
  CHECK(r.dose_Gy == doctest::Approx(5.0).epsilon(1e-14));
  CHECK(r.g == doctest::Approx(0.043488).epsilon(1e-4));
  CHECK(r.bed_Gy == doctest::Approx(5.41815).epsilon(1e-4));
}

TEST_CASE("closed form equals the numerical double integral on random exponential sums") {
  std::mt19937_64 rng(20261124);
  std::uniform_real_distribution<double> amp(-1.0, 1.0), logk(std::log(0.004345), std::log(2.0));
  for (int trial = 0; trial < 20; ++trial) {
    CAPTURE(trial);
    ExpSum rate;
    std::vector<double> scales;
    const int n = 1 + trial % 4;
    for (int i = 0; i < n; ++i) {
      rate.a_Gy_per_h.push_back(amp(rng));  // negative amplitudes included
      rate.lambda_per_h.push_back(std::exp(logk(rng)));
      scales.push_back(1.0 / rate.lambda_per_h.back());
    }
    const BedResult closed = bed_closed_form(rate, kidney());
    auto f = [&](double t) {
      double d = 0;
      for (size_t i = 0; i < rate.a_Gy_per_h.size(); ++i) d += rate.a_Gy_per_h[i] * std::exp(-rate.lambda_per_h[i] * t);
      return d;
    };
    const BedResult numeric = bed_numeric(f, INFINITY, kidney(), scales);
    // the criterion: 1e-6 relative (absolute for sums that nearly cancel)
    const double scale = std::abs(closed.dose_Gy) + 1e-3;
    CHECK(numeric.dose_Gy == doctest::Approx(closed.dose_Gy).epsilon(1e-6).scale(scale));
    CHECK(numeric.bed_Gy - numeric.dose_Gy ==
          doctest::Approx(closed.bed_Gy - closed.dose_Gy).epsilon(1e-6).scale(std::abs(closed.bed_Gy - closed.dose_Gy) + 1e-9));
  }
}

TEST_CASE("numerical BED of a finite irradiation time: constant dose rate over T") {
  // Ddot = R for 0 < t < T: G D^2 = 2 R^2 [T/mu - (1 - e^{-mu T})/mu^2] (Lea-Catcheside, exact)
  const TissueParameters k = kidney();
  const double mu = k.mu_per_h(), rate = 0.1, T = 24.0;
  const BedResult r = bed_numeric([&](double) { return rate; }, T, k, {T});
  const double gd2 = 2 * rate * rate * (T / mu - (1 - std::exp(-mu * T)) / (mu * mu));
  CHECK(r.dose_Gy == doctest::Approx(rate * T).epsilon(1e-9));
  CHECK(r.bed_Gy - r.dose_Gy == doctest::Approx(gd2 / k.alpha_beta_Gy).epsilon(1e-8));
}

TEST_CASE("tissue table: patterns, first match, overrides") {
  TissueTable t = TissueTable::load(LUTDOSE_TEST_DATA_DIR);
  REQUIRE(t.find("kidney_left") != nullptr);
  CHECK(t.find("kidney_left")->alpha_beta_Gy == 2.6);
  CHECK(t.find("kidneys")->repair_half_time_h == 2.8);
  CHECK(t.find("tumour_3")->alpha_beta_Gy == 10);
  CHECK(t.find("Red Marrow")->repair_half_time_h == 0.5);
  CHECK(t.find("Adrenals") == nullptr);
  TissueParameters p = kidney();
  p.alpha_beta_Gy = 1.5;
  t.set("kidney*", p);
  CHECK(t.find("kidney_right")->alpha_beta_Gy == 1.5);
}

TEST_CASE("numerical BED: a step limit and a finiteness check (issue 10 finding 7)") {
  // A dose rate of 1e170 Gy/h (from counts of 1e170) hung the integral: it now ends, with an
  // error or a finite result (a hang is ended by CTest's TIMEOUT and fails; unit tests are not timed).
  const double lambda = std::log(2.0) / 56.0;
  bool finite_or_error = false;
  try {
    const BedResult r = bed_numeric([&](double t) { return 1e170 * std::exp(-lambda * t); }, INFINITY, kidney(),
                                    {1.0 / lambda});
    finite_or_error = std::isfinite(r.bed_Gy);
  } catch (const InputError&) {
    finite_or_error = true;
  }
  CHECK(finite_or_error);
  // a dose rate that is not finite is an error, not a NaN BED
  CHECK_THROWS_AS(bed_numeric([](double t) { return t > 5 ? NAN : 1.0; }, 10.0, kidney(), {10.0}), InputError);
}

TEST_CASE("numerical BED with an exponential tail: the part after the last point in closed form") {
  // A trapezoid-like dose rate: linear from 0 to t1, linear between points, then a sum of two
  // exponentials from t_n on. The tail's integrals are exact (methods.md §8: D += sum a_j/l_j,
  // G D^2 += 2 sum_j a_j [I(t_n)/(l_j+mu) + sum_i a_i/((l_i+l_j)(l_j+mu))]); the reference is the
  // same curve integrated numerically to infinity.
  const TissueParameters k = kidney();
  const std::vector<double> t{4, 24, 48, 96, 168}, y{0.30, 0.42, 0.35, 0.22, 0.09};  // Gy/h
  ExpTail tail;
  tail.from_h = t.back();
  tail.rate.a_Gy_per_h = {0.06, 0.03};  // sum = y.back()
  tail.rate.lambda_per_h = {std::log(2.0) / 159.5, 0.05};
  long calls_full = 0, calls_tail = 0;
  auto curve = [&](long& calls) {
    return [&](double x) {
      ++calls;
      if (x <= t[0]) return y[0] * x / t[0];
      if (x >= t.back()) {
        double r = 0;
        for (size_t i = 0; i < tail.rate.a_Gy_per_h.size(); ++i)
          r += tail.rate.a_Gy_per_h[i] * std::exp(-tail.rate.lambda_per_h[i] * (x - t.back()));
        return r;
      }
      size_t i = 0;
      while (t[i + 1] < x) ++i;
      return y[i] + (y[i + 1] - y[i]) * (x - t[i]) / (t[i + 1] - t[i]);
    };
  };
  const std::vector<double> scales{4, 24, 48, 96, 168, 159.5 / std::log(2.0), 20};
  const BedResult full = bed_numeric(curve(calls_full), INFINITY, k, scales);
  const BedResult fast = bed_numeric(curve(calls_tail), INFINITY, k, scales, &tail);
  // 1e-8 relative: both integrals are solved to 1e-12 (the full one over ~60 time scales more).
  CHECK(fast.dose_Gy == doctest::Approx(full.dose_Gy).epsilon(1e-8));
  CHECK(fast.bed_Gy - fast.dose_Gy == doctest::Approx(full.bed_Gy - full.dose_Gy).epsilon(1e-8));
  // The explicit solver's steps are bounded by 1/mu over the whole tail; without it they are not.
  CHECK(calls_tail * 5 < calls_full);
  // A tail from 0: the closed form itself.
  const BedResult from0 = bed_numeric([](double) { return 0.0; }, INFINITY, k, {1.0}, nullptr);
  CHECK(from0.dose_Gy == 0);
  ExpTail whole{0.0, tail.rate};
  const BedResult closed = bed_closed_form(tail.rate, k);
  const BedResult tail_only = bed_numeric(curve(calls_tail), INFINITY, k, scales, &whole);
  CHECK(tail_only.dose_Gy == doctest::Approx(closed.dose_Gy).epsilon(1e-14));
  CHECK(tail_only.bed_Gy == doctest::Approx(closed.bed_Gy).epsilon(1e-14));
  // A finite end inside the tail: numerical only (the tail applies to integrals to infinity).
  long calls_end = 0;
  const BedResult to_end = bed_numeric(curve(calls_end), 200.0, k, scales, &tail);
  const BedResult to_end_ref = bed_numeric(curve(calls_end), 200.0, k, scales);
  CHECK(to_end.bed_Gy == to_end_ref.bed_Gy);
}
