// Learning the population of every VOI kind of a table: candidates in parallel, choice by BIC
// (population.h; methods.md §10).
#include <algorithm>
#include <cmath>

#include "lutdose/error.h"
#include "lutdose/kinetics/population.h"
#include "parallel_for.h"

namespace lutdose {

namespace {

struct Task {
  const std::string* kind;
  const PopulationData* data;
  const models::ExponentialFunction* f;
  PopulationModel result;
};

// The threads of each of `items` fits run in parallel on `threads` threads (their E-steps split the
// units over them): the threads left over, at least 1 (no more threads than cores asked for).
unsigned threads_per_item(unsigned threads, size_t items) {
  return std::max(1u, resolved_threads(threads) / static_cast<unsigned>(std::max<size_t>(items, 1)));
}

// Distinct time points of one TAC.
int distinct_points(const Eigen::VectorXd& t) {
  std::vector<double> v(t.data(), t.data() + t.size());
  std::sort(v.begin(), v.end());
  return static_cast<int>(std::unique(v.begin(), v.end()) - v.begin());
}

// The candidates the TACs of one VOI kind can determine (docs/population.md, "Identifiability"):
// at least one TAC has more distinct time points than the function has parameters (K), and the
// kind has at least as many observations as population parameters (P = 2 K + error_parameters:
// 1 for b or sigma0 alone, 2 for the combined model's sigma0 and b). InputError
// naming `path`, the kind, the points and what is expected when none is left. Fewer than 2 TACs:
// every candidate (fit_population_model refuses them).
std::vector<const models::ExponentialFunction*> identifiable(
    const std::vector<const models::ExponentialFunction*>& functions, const PopulationData& d,
    const std::string& kind, const std::string& path, int error_parameters) {
  if (d.t_h.size() < 2) return functions;
  int most = 0, total = 0;
  for (const auto& t : d.t_h) most = std::max(most, distinct_points(t)), total += static_cast<int>(t.size());
  std::vector<const models::ExponentialFunction*> out;
  std::string need;
  for (const auto* f : functions) {
    const int k = f->n_parameters();
    if (most > k && 2 * k + error_parameters <= total) out.push_back(f);
    need += (need.empty() ? "" : "; ") + f->id() + ": a TAC with more than " + std::to_string(k) +
            " distinct time points and at least " + std::to_string(2 * k + error_parameters) + " observations";
  }
  if (out.empty())
    throw_input_error(path + ": VOI kind " + kind, "the time points of its TACs",
                      "at most " + std::to_string(most) + " distinct time points per TAC, " + std::to_string(total) +
                          " observations in " + std::to_string(d.t_h.size()) + " TACs",
                      "for at least one candidate function (" + need + ")");
  return out;
}

// The candidate with the lowest BIC among those with a finite -2 log L (converged first), with
// every candidate's figures.
PopulationModel choose(const std::vector<Task>& tasks, size_t from, size_t to) {
  size_t best = from;
  auto better = [&](const PopulationModel& a, const PopulationModel& b) {
    if (std::isfinite(a.bic) != std::isfinite(b.bic)) return std::isfinite(a.bic);
    if (a.converged != b.converged) return a.converged;
    return a.bic < b.bic;
  };
  for (size_t i = from + 1; i < to; ++i)
    if (better(tasks[i].result, tasks[best].result)) best = i;
  PopulationModel m = tasks[best].result;
  for (size_t i = from; i < to; ++i) {
    const auto& r = tasks[i].result;
    m.candidates.push_back({r.function, r.minus2_log_likelihood, r.aicc, r.bic, r.converged, r.iterations});
  }
  return m;
}

}  // namespace

std::vector<PopulationModel> learn_population(const std::vector<TacSeries>& series,
                                              const std::vector<double>& administered_MBq, double lambda_p,
                                              const PopulationOptions& o, const std::string& path) {
  std::vector<const models::ExponentialFunction*> functions;
  for (const auto& id : o.candidates) {
    const auto* f = models::find_exponential(id);
    if (!f || !population_function_supported(id))
      throw_input_error(path.empty() ? "--functions" : path, "a population candidate function", id,
                        "one of E1p, E1, E2u, E2 (functions with positive terms)");
    if (std::find(functions.begin(), functions.end(), f) != functions.end())  // a file would list it twice
      throw_input_error(path.empty() ? "--functions" : path, "a population candidate function", id,
                        "each function once among the candidates (a population file lists each once)");
    functions.push_back(f);
  }
  if (functions.empty()) throw_input_error("--functions", "the candidate functions", "none", "at least one");
  if (o.error_model == PopulationErrorModel::input)  // each point's SD is its activity_u_MBq
    for (const auto& s : series)
      if (s.activity_u_MBq.size() != s.activity_MBq.size())
        throw_input_error(path + ": " + s.where(), "activity_u_MBq", "missing",
                          "every point's standard uncertainty (activity_u_MBq > 0) with --error-model input");
  const auto data = population_data(series, administered_MBq, path, o.error_model != PopulationErrorModel::proportional);
  for (const auto& [kind, d] : data)
    if (d.t_h.size() < 2)
      throw_input_error((path.empty() ? std::string("the input") : path) + ": VOI kind " + kind,
                        "the number of TACs (patients)", std::to_string(d.t_h.size()),
                        "at least 2 TACs (patients) of the VOI kind to learn a population from");
  // A full Omega from few TACs learns spurious correlations (review of 0.17: 0.92 from 20 TACs whose
  // truth has none; the MAP intervals of new 2-scan TACs then covered 38 / 66 % at 68 / 95 %).
  if (o.omega_structure == OmegaStructure::full)
    for (const auto& [kind, d] : data)
      if (d.t_h.size() < static_cast<size_t>(POPULATION_MIN_TACS))
        throw_input_error((path.empty() ? std::string("the input") : path) + ": VOI kind " + kind,
                          "the number of TACs for a full Omega", std::to_string(d.t_h.size()),
                          "at least " + std::to_string(POPULATION_MIN_TACS) +
                              " TACs of each VOI kind to learn the random effects' covariances "
                              "(docs/population.md, Full Omega); learn with --omega diagonal");
  std::vector<Task> tasks;
  std::vector<size_t> first;  // the first task of each VOI kind
  for (const auto& [kind, d] : data) {
    first.push_back(tasks.size());
    const int error_parameters = o.error_model == PopulationErrorModel::combined ? 2 : 1;
    for (const auto* f : identifiable(functions, d, kind, path, error_parameters)) tasks.push_back({&kind, &d, f, {}});
  }
  first.push_back(tasks.size());
  PopulationOptions laplace = o;  // the candidates are compared on their Laplace fits
  laplace.sampled_e_step = false;
  laplace.threads = threads_per_item(o.threads, tasks.size());
  parallel_for(tasks.size(), o.threads, [&](size_t i) {
    tasks[i].result = fit_population_model(*tasks[i].f, *tasks[i].data, lambda_p, laplace, *tasks[i].kind);
  });
  std::vector<PopulationModel> out;
  std::vector<const PopulationData*> data_of;
  for (size_t i = 0; i + 1 < first.size(); ++i) {
    out.push_back(choose(tasks, first[i], first[i + 1]));
    data_of.push_back(tasks[first[i]].data);
  }
  PopulationOptions sampled = o;
  sampled.threads = threads_per_item(o.threads, out.size());
  if (o.sampled_e_step)
    parallel_for(out.size(), o.threads, [&](size_t i) {
      if (out[i].theta.allFinite()) out[i] = refine_population_model(out[i], *data_of[i], lambda_p, sampled);
    });
  return out;
}

}  // namespace lutdose
