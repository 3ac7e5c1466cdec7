// The full seeded studies of issue #11 (docs/validation.md, "Coverage of the intervals" and
// "Choice of the default error model"); small versions run in tests/unit/dosimetry/test_uncertainty.cpp.
//   ./build/benchmarks/lutdose_uncertainty_study [TACs per cell, default 500]
// Cohort: tests/unit/cohort.h (the kinetics of ../shared/peers/make_cohort.py), four VOI kinds.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "cohort.h"

using namespace lutdose;
using Eigen::VectorXd;

namespace {

const std::vector<std::pair<std::string, VectorXd>>& schedules() {
  static const std::vector<std::pair<std::string, VectorXd>> s = {
      {"5 scans 4-168 h", (VectorXd(5) << 4, 24, 48, 96, 168).finished()},
      {"6 scans 1-168 h", (VectorXd(6) << 1, 4, 24, 48, 96, 168).finished()}};
  return s;
}

void coverage(int n) {
  std::printf("## Coverage of the 68.27 %% and 95 %% intervals (default options), %d TACs per cell\n\n", n);
  std::printf("| schedule | noise | VOI | 68 %% covers | 95 %% covers | u known |\n|---|---|---|---|---|---|\n");
  unsigned long long seed = 1000;
  int all = 0, in68 = 0, in95 = 0;
  for (const auto& [label, t] : schedules())
    for (double noise : {0.05, 0.10, 0.15})
      for (const auto& kind : cohort::voi_kinds()) {
        const cohort::Study s = cohort::run_study(kind, t, noise, n, ++seed, FitOptions{});
        std::printf("| %s | %.0f %% | %s | %.1f %% | %.1f %% | %d/%d |\n", label.c_str(), 100 * noise,
                    kind.name.c_str(), 100 * s.coverage68(), 100 * s.coverage95(), s.with_u, s.n);
        all += s.with_u, in68 += s.in68, in95 += s.in95;
      }
  std::printf("\nAll: 68 %% interval %.1f %%, 95 %% interval %.1f %% of %d TACs\n\n", 100.0 * in68 / all,
              100.0 * in95 / all, all);
}

void error_models(int n) {
  std::printf("## Error models: relative TIA error (bias, spread) and coverage, 6 scans, %d TACs per cell\n\n", n);
  std::printf("| noise | VOI | error model | bias | spread | 68 %% covers | 95 %% covers |\n|---|---|---|---|---|---|---|\n");
  const VectorXd t = schedules()[1].second;
  unsigned long long seed = 5000;
  for (double noise : {0.05, 0.10, 0.20})
    for (const auto& kind : cohort::voi_kinds()) {
      ++seed;  // the same TACs for the three models
      for (ErrorModel m : {ErrorModel::proportional, ErrorModel::proportional_model, ErrorModel::combined}) {
        FitOptions o;
        o.error_model = m;
        const cohort::Study s = cohort::run_study(kind, t, noise, n, seed, o);
        std::printf("| %.0f %% | %s | %s | %+.2f %% | %.2f %% | %.1f %% | %.1f %% |\n", 100 * noise, kind.name.c_str(),
                    to_string(m).c_str(), 100 * s.bias(), 100 * s.spread(), 100 * s.coverage68(),
                    100 * s.coverage95());
      }
    }
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 500;
  coverage(n);
  error_models(n);
  return 0;
}
