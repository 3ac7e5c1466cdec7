// Speed of the TAC -> TIA -> dose pipeline (Google Benchmark). Run:
//   ./build/benchmarks/lutdose_benchmarks
// The figures quoted in README.md come from this program.
#include <benchmark/benchmark.h>

#include <cmath>

#include "lutdose/fitting.h"
#include "lutdose/pipeline.h"
#include "lutdose/results.h"
#include "lutdose/tac_table.h"

using namespace lutdose;
using Eigen::VectorXd;

namespace {
const std::string SRC = LUTDOSE_BENCH_SOURCE_DIR;
const double LP = std::log(2.0) / (6.647 * 24.0);

const TacSeries& kidney_left() {
  static const auto series = read_tac_table(SRC + "/examples/snmmi-patient004/tac.csv");
  return series.front();
}

// One VOI (Patient_004 left kidney, 4 points): all default candidates (E1p, E1, E2u, E2) x
// their starting points, AICc selection, TIA and its uncertainty.
void BM_FitOneVoiAutoSelect_4points(benchmark::State& state) {
  const auto& s = kidney_left();
  const FitOptions o;
  for (auto _ : state) {
    auto fit = fit_tac(s.time_h, s.activity_MBq, s.activity_u_MBq, LP, o, "bench");
    benchmark::DoNotOptimize(fit.tia_MBq_h);
  }
  state.counters["TAC_fits_per_s"] = benchmark::Counter(
      static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_FitOneVoiAutoSelect_4points);

// The same on a 7-point schedule (0.5, 2, 6, 24, 48, 96, 168 h) of a bi-exponential kidney,
// where every default candidate has an AICc.
void BM_FitOneVoiAutoSelect_7points(benchmark::State& state) {
  const auto& f = *models::find_exponential("E2");
  const VectorXd t = (VectorXd(7) << 0.5, 2, 6, 24, 48, 96, 168).finished();
  VectorXd y = f.evaluate(t, (VectorXd(4) << 125.0, 22.0, 0.0081, 0.22).finished(), LP);
  const double noise[] = {0.03, -0.05, 0.02, 0.04, -0.03, 0.01, -0.02};  // fixed 5 % scale
  for (Eigen::Index i = 0; i < t.size(); ++i) y(i) *= 1 + noise[i];
  const FitOptions o;
  for (auto _ : state) {
    auto fit = fit_tac(t, y, VectorXd(), LP, o, "bench");
    benchmark::DoNotOptimize(fit.tia_MBq_h);
  }
  state.counters["TAC_fits_per_s"] = benchmark::Counter(
      static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_FitOneVoiAutoSelect_7points);

// Whole Patient_004 run as `lutdose run` does it, without the file writes: read the TAC table,
// load nuclide and S-value data, fit 4 VOIs, doses, and serialise results.json and results.csv.
void BM_Patient004WholeRun(benchmark::State& state) {
  RunOptions o;
  o.data_dir = SRC + "/data";
  o.tac_path = SRC + "/examples/snmmi-patient004/tac.csv";
  o.administered_MBq = 7210.4;
  DoseOptions d;
  d.phantom = "icrp110-am";
  o.dose = d;
  for (auto _ : state) {
    const auto series = read_tac_table(o.tac_path);
    const auto result = run_tac_table(series, o);
    auto json = to_json(result, true).dump(2);
    auto csv = to_csv(result);
    benchmark::DoNotOptimize(json.data());
    benchmark::DoNotOptimize(csv.data());
  }
}
BENCHMARK(BM_Patient004WholeRun)->Unit(benchmark::kMillisecond);

// The same with the data already loaded: fits and doses only (what a batch run repeats).
void BM_Patient004FitsAndDoses(benchmark::State& state) {
  RunOptions o;
  o.data_dir = SRC + "/data";
  o.administered_MBq = 7210.4;
  const auto series = read_tac_table(SRC + "/examples/snmmi-patient004/tac.csv");
  const Nuclide lu = load_nuclide(o.data_dir, "Lu-177");
  DoseOptions d;
  d.phantom = "icrp110-am";
  const DoseCalculator calc(o.data_dir, lu, d);
  for (auto _ : state) {
    std::vector<DoseSourceInput> inputs;
    for (const auto& s : series) {
      auto fit = fit_tac(s.time_h, s.activity_MBq, s.activity_u_MBq, lu.lambda_per_h(), o.fit, "b");
      DoseSourceInput in;
      in.voi = s.voi;
      in.tia_MBq_h = fit.tia_MBq_h;
      in.tia_u_MBq_h = fit.tia_u_MBq_h;
      in.mean_volume_mL = 240.0;
      inputs.push_back(in);
    }
    auto doses = calc.compute(inputs, 7210.4, "b");
    benchmark::DoNotOptimize(doses.targets.data());
  }
}
BENCHMARK(BM_Patient004FitsAndDoses)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
