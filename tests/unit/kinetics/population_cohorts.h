// The seeded synthetic TACs of the population tests (test_population*.cpp): one builder of an E1
// curve sampled at the scan times; each test draws its own parameters and noise (not the code under
// test), so the truth stays the test's.
#pragma once

#include <Eigen/Dense>

#include <cmath>
#include <string>
#include <vector>

#include "lutdose/io/tac_table.h"

namespace population_test {

//! The E1 TAC of patient "P<index + 1>", VOI kidneys: f(t) = a e^-(lambda_bio + lambda_p) t [MBq]
//! at `times_h`, each point's activity measure(f, j) [MBq] (the test's noise model; called point by
//! point in time order, so a test's random draws keep their order).
template <class Measure>
lutdose::TacSeries e1_tac(int index, double a_MBq, double lambda_bio_per_h, double lambda_p_per_h,
                          const std::vector<double>& times_h, Measure measure) {
  lutdose::TacSeries s;
  s.patient = "P" + std::to_string(index + 1);
  s.voi = "kidneys";
  const auto n = static_cast<Eigen::Index>(times_h.size());
  s.time_h = Eigen::Map<const Eigen::VectorXd>(times_h.data(), n);
  s.activity_MBq.resize(n);
  for (Eigen::Index j = 0; j < n; ++j)
    s.activity_MBq(j) = measure(a_MBq * std::exp(-(lambda_bio_per_h + lambda_p_per_h) * s.time_h(j)), j);
  return s;
}

//! The sample SD of x (n - 1 in the denominator): the spread of estimates over replicate cohorts.
inline double sample_sd(const std::vector<double>& x) {
  double m = 0, s = 0;
  for (double v : x) m += v;
  m /= static_cast<double>(x.size());
  for (double v : x) s += (v - m) * (v - m);
  return std::sqrt(s / static_cast<double>(x.size() - 1));
}

}  // namespace population_test
