// Speed of the TAC -> TIA -> dose pipeline (Google Benchmark). Run:
//   ./build/benchmarks/lutdose_benchmarks
// The figures quoted in README.md come from this program.
#include <benchmark/benchmark.h>

#include <cmath>

#include "lutdose/io/case_file.h"
#include "lutdose/models/compartment.h"
#include <map>
#include <random>
#include "lutdose/kinetics/fitting.h"
#include "lutdose/pipeline/pipeline.h"
#include "lutdose/pipeline/reference_data.h"
#include "lutdose/io/run_files.h"
#include "lutdose/io/results.h"
#include "lutdose/io/plan_options.h"
#include "lutdose/planning/run_history.h"
#include "lutdose/io/tac_table.h"

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

// Loading the reference data once (every S-value set and sphere table shipped, decay data, tissue
// table, limits, population kinetics and priors, shipped compartment models): the fixed cost of a
// batch, paid once however many patients follow.
void BM_ReferenceDataLoad(benchmark::State& state) {
  for (auto _ : state) {
    auto ref = ReferenceData::load(SRC + "/data");
    benchmark::DoNotOptimize(&ref);
  }
}
BENCHMARK(BM_ReferenceDataLoad)->Unit(benchmark::kMillisecond);

// The per-patient pipeline with the reference data loaded once (what a batch repeats per
// patient): Patient_004's case file, already read (quantification, 4 fits with AICc selection,
// doses to every target of ICRP 110 with the GUM budget, BED), no file I/O, no serialisation.
void BM_Patient004PerPatient_Case(benchmark::State& state) {
  const ReferenceData ref = ReferenceData::load(SRC + "/data");
  const CaseFile c = load_case_file(SRC + "/examples/snmmi-patient004/case.json");
  RunOptions o = run_options_from_case(c, ref, 0, 0);
  read_run_files(o, ref);
  for (auto _ : state) {
    auto r = run_case(c, o, ref);
    benchmark::DoNotOptimize(r.cycles.data());
  }
}
BENCHMARK(BM_Patient004PerPatient_Case)->Unit(benchmark::kMicrosecond);

// The same from Patient_004's TAC table (activities given), icrp110-am.
void BM_Patient004PerPatient_TacTable(benchmark::State& state) {
  const ReferenceData ref = ReferenceData::load(SRC + "/data");
  RunOptions o;
  o.data_dir = ref.data_dir();
  o.tac_path = SRC + "/examples/snmmi-patient004/tac.csv";
  o.administered_MBq = 7210.4;
  DoseOptions d;
  d.phantom = "icrp110-am";
  o.dose = d;
  const auto series = read_tac_table(o.tac_path);
  for (auto _ : state) {
    auto r = run_tac_table(series, o, ref);
    benchmark::DoNotOptimize(r.cycles.data());
  }
}
BENCHMARK(BM_Patient004PerPatient_TacTable)->Unit(benchmark::kMicrosecond);

// Full-matrix dose with the GUM budget for one patient-cycle: 6 sources (kidneys, liver, spleen,
// red marrow, tumour, whole body -> remainder) x every target of the set, every source with fit,
// CF, RC and volume inputs (and the OpenDose S-value errors where published).
void BM_DoseMatrixWithGUM(benchmark::State& state, const std::string& phantom) {
  const std::string data = SRC + "/data";
  const Nuclide lu = load_nuclide(data, "Lu-177");
  DoseOptions d;
  d.phantom = phantom;
  const DoseCalculator calc(data, lu, d);
  const bool olinda = phantom.rfind("icrp89", 0) == 0;
  std::vector<DoseSourceInput> in;
  const std::vector<std::pair<std::string, double>> vois =
      olinda ? std::vector<std::pair<std::string, double>>{{"kidneys", 10300}, {"liver", 40500}, {"spleen", 14500},
                                                           {"red_marrow", 6900}, {"tumour_1", 5400}, {"whole_body", 304000}}
             : std::vector<std::pair<std::string, double>>{{"kidney_left", 5200}, {"kidney_right", 5100}, {"liver", 40500},
                                                           {"spleen", 14500}, {"tumour_1", 5400}};
  for (const auto& [name, tia] : vois) {
    DoseSourceInput v;
    v.voi = name;
    v.tia_MBq_h = tia;
    v.tia_u_MBq_h = 0.05 * tia;
    v.mean_volume_mL = name == "tumour_1" ? 20.0 : (name == "whole_body" ? NAN : 200.0);
    v.calibration = "SPECT";
    v.u_rel_cf = 0.014;
    v.u_rel_rc = 0.03;
    v.dln_rc_dln_volume = 0.1;
    v.u_rel_volume = 0.05;
    in.push_back(v);
  }
  size_t targets = 0;
  for (auto _ : state) {
    auto doses = calc.compute(in, 7400, "bench");
    targets = doses.targets.size();
    benchmark::DoNotOptimize(doses.targets.data());
  }
  state.counters["targets"] = static_cast<double>(targets);
  state.counters["sources"] = static_cast<double>(in.size());
}
BENCHMARK_CAPTURE(BM_DoseMatrixWithGUM, icrp89_male, std::string("icrp89-male"))->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_DoseMatrixWithGUM, icrp110_am, std::string("icrp110-am"))->Unit(benchmark::kMicrosecond);

// Monte Carlo check with 1000 samples: resampled counts, CF, RC, volumes; a refit per VOI and
// sample; all doses per sample (Patient_004 case, 4 VOIs).
void BM_MonteCarlo1000_Patient004(benchmark::State& state) {
  const CaseFile c = load_case_file(SRC + "/examples/snmmi-patient004/case.json");
  for (auto _ : state) {
    auto r = run_case(c, SRC + "/data", 1000, 20261124);
    benchmark::DoNotOptimize(r.cycles.data());
  }
}
BENCHMARK(BM_MonteCarlo1000_Patient004)->Unit(benchmark::kMillisecond);

// lutdose plan on a 4-cycle patient: the prescription step alone (history already computed), and
// the whole command (run the four cycles of the case, then plan).
void BM_Plan_FourCycles(benchmark::State& state) {
  const CaseFile c = load_case_file(SRC + "/examples/synthetic-four-cycles/case.json");
  const auto run = run_case(c, SRC + "/data", 0, 0);
  const auto history = history_from_run(run).at(c.patient_id);
  std::vector<std::string> targets;
  for (const auto& h : history) targets.push_back(h.target);
  const PlanOptions o = plan_options_from_case(c.plan, SRC + "/data", targets, c.tissue_overrides, "bench");
  for (auto _ : state) {
    auto p = plan_next_cycle(history, o);
    benchmark::DoNotOptimize(p.activity_MBq);
  }
}
BENCHMARK(BM_Plan_FourCycles)->Unit(benchmark::kMicrosecond);

void BM_Plan_FourCycles_WithRun(benchmark::State& state) {
  const CaseFile c = load_case_file(SRC + "/examples/synthetic-four-cycles/case.json");
  for (auto _ : state) {
    const auto run = run_case(c, SRC + "/data", 0, 0);
    const auto history = history_from_run(run).at(c.patient_id);
    std::vector<std::string> targets;
    for (const auto& h : history) targets.push_back(h.target);
    const PlanOptions o = plan_options_from_case(c.plan, SRC + "/data", targets, c.tissue_overrides, "bench");
    auto p = plan_next_cycle(history, o);
    benchmark::DoNotOptimize(p.activity_MBq);
  }
}
BENCHMARK(BM_Plan_FourCycles_WithRun)->Unit(benchmark::kMillisecond);

// One joint ODE fit of the shipped 5-VOI multi-organ model (blood, kidneys, liver, spleen,
// tumour at 0.5-168 h, 5 % noise, fixed seed), from the file's rate values: Boost.Odeint
// Rosenbrock solutions inside Eigen's Levenberg-Marquardt, 3 starts, covariance and TIAs.
void BM_CompartmentJointFit_5Voi(benchmark::State& state) {
  using namespace lutdose::models;
  const CompartmentModel model = CompartmentModel::from_file(SRC + "/models/files/prrt_multiorgan_linear.json");
  const double lp = std::log(2.0) / (6.647 * 24.0), a0 = 7400.0;
  const VectorXd t = (VectorXd(7) << 0.5, 2, 6, 24, 48, 96, 168).finished();
  const Eigen::MatrixXd obs = model.observe(t, model.default_parameters(), a0, lp);
  const auto names = model.observation_names();
  std::mt19937_64 rng(20261124);
  std::normal_distribution<double> noise(0.0, 0.05);
  std::map<std::string, VoiData> data;
  for (size_t v = 0; v < names.size(); ++v) {
    VoiData d;
    for (Eigen::Index i = 0; i < t.size(); ++i) {
      const double y = obs(i, static_cast<Eigen::Index>(v)) * (1 + noise(rng));  // rows = times
      d.t_h.push_back(t(i));
      d.activity_MBq.push_back(y);
      d.sigma_MBq.push_back(0.05 * y);
    }
    data[names[v]] = d;
  }
  for (auto _ : state) {
    auto f = lutdose::models::fit(model, data, a0, lp);
    benchmark::DoNotOptimize(f);
  }
}
BENCHMARK(BM_CompartmentJointFit_5Voi)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
