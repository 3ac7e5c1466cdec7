#include "lutdose/radiobiology/radiobiology.h"

#include <algorithm>
#include <array>
#include <boost/numeric/odeint.hpp>
#include <cmath>

#include "lutdose/io/csv.h"
#include "lutdose/error.h"
#include "lutdose/planning/planning.h"  // target_matches: the one name-pattern rule

namespace lutdose {

double TissueParameters::mu_per_h() const { return std::log(2.0) / repair_half_time_h; }

TissueTable TissueTable::load(const std::string& data_dir) {
  TissueTable t;
  t.path = data_dir + "/radiobiology/tissue_parameters.csv";
  const CsvTable csv = read_csv(t.path);
  const auto [ct, ca, cr, cs] = csv.require<4>({"target", "alpha_beta_Gy", "repair_half_time_h", "source"});
  for (const auto& r : csv.rows) {
    TissueParameters p;
    p.tissue = r.cells[static_cast<size_t>(ct)];
    const std::string where = t.path + ":" + std::to_string(r.line);
    if (!parse_double(r.cells[static_cast<size_t>(ca)], p.alpha_beta_Gy) || !(p.alpha_beta_Gy > 0))
      throw_input_error(where, "alpha_beta_Gy", r.cells[static_cast<size_t>(ca)], "a value > 0 Gy");
    if (!parse_double(r.cells[static_cast<size_t>(cr)], p.repair_half_time_h) || !(p.repair_half_time_h > 0))
      throw_input_error(where, "repair_half_time_h", r.cells[static_cast<size_t>(cr)], "a value > 0 h");
    p.source = r.cells[static_cast<size_t>(cs)];
    t.entries_.emplace_back(p.tissue, p);
  }
  return t;
}


const TissueParameters* TissueTable::find(const std::string& target) const {
  for (const auto& [pattern, p] : entries_)
    if (target_matches(pattern, target)) return &p;
  return nullptr;
}

void TissueTable::set(const std::string& pattern, const TissueParameters& p) {
  // Overrides go first, so that they win over the table's rows.
  entries_.insert(entries_.begin(), {pattern, p});
}

double ExpSum::dose_Gy() const {
  double d = 0;
  for (size_t i = 0; i < a_Gy_per_h.size(); ++i) d += a_Gy_per_h[i] / lambda_per_h[i];
  return d;
}

double eqd2(double bed_Gy, double alpha_beta_Gy) { return bed_Gy / (1.0 + 2.0 / alpha_beta_Gy); }

double bed_from_dose(double dose_Gy, double g, double alpha_beta_Gy) {
  return dose_Gy + g * dose_Gy * dose_Gy / alpha_beta_Gy;
}

BedResult bed_closed_form(const ExpSum& rate, const TissueParameters& t) {
  const double mu = t.mu_per_h();
  BedResult r;
  r.dose_Gy = rate.dose_Gy();
  double gd2 = 0;  // G D^2 = 2 sum_ij a_i a_j / ((l_i + l_j)(l_i + mu))
  for (size_t i = 0; i < rate.a_Gy_per_h.size(); ++i)
    for (size_t j = 0; j < rate.a_Gy_per_h.size(); ++j)
      gd2 += 2.0 * rate.a_Gy_per_h[i] * rate.a_Gy_per_h[j] /
             ((rate.lambda_per_h[i] + rate.lambda_per_h[j]) * (rate.lambda_per_h[i] + mu));
  r.g = r.dose_Gy != 0 ? gd2 / (r.dose_Gy * r.dose_Gy) : 0.0;
  r.bed_Gy = r.dose_Gy + gd2 / t.alpha_beta_Gy;
  r.eqd2_Gy = eqd2(r.bed_Gy, t.alpha_beta_Gy);
  return r;
}

namespace {

// Adds to the state (D, I, J) at tail.from_h the integrals of the tail to infinity (methods.md §8
// with I(t_T) carried over): D += sum_j a_j/l_j, J += 2 sum_j a_j [I/(l_j+mu) + sum_i
// a_i/((l_i+l_j)(l_j+mu))].
void add_tail(const ExpTail& tail, double mu, std::array<double, 3>& x) {
  const auto& a = tail.rate.a_Gy_per_h;
  const auto& l = tail.rate.lambda_per_h;
  for (size_t j = 0; j < a.size(); ++j) {
    x[0] += a[j] / l[j];
    double inner = x[1] / (l[j] + mu);
    for (size_t i = 0; i < a.size(); ++i) inner += a[i] / ((l[i] + l[j]) * (l[j] + mu));
    x[2] += 2.0 * a[j] * inner;
  }
}

}  // namespace

BedResult bed_numeric(const std::function<double(double)>& rate, double t_end_h, const TissueParameters& t,
                      const std::vector<double>& time_scales_h, const ExpTail* tail) {
  // State (D, I, J): D' = Ddot, I' = Ddot - mu I (I(t) = int Ddot(w) e^{-mu(t-w)} dw), J' = 2 Ddot I,
  // so J(t_end) = G D^2 (methods.md §8; spec §7.1). Solved with Boost.Odeint's adaptive Dormand-Prince.
  const double mu = t.mu_per_h();
  double longest = 1.0 / mu;
  for (double s : time_scales_h) longest = std::max(longest, s);
  // To infinity: 60 of the longest time scales leave e^-60 of any component.
  const double end = std::isinf(t_end_h) ? 60.0 * longest : t_end_h;
  using State = std::array<double, 3>;
  // Every evaluation counted and checked: a dose rate that is not finite, or a solution that needs
  // more than MAX_EVALUATIONS, ends the integral with an error instead of a NaN or a hang.
  constexpr std::size_t MAX_EVALUATIONS = 2000000;  // some 300 000 Dormand-Prince steps
  std::size_t evaluations = 0;
  auto fail = [&](const std::string& what) {
    throw InputError("the numerical BED integral of " + t.tissue + " " + what +
                     "; expected a dose-rate curve of plausible magnitude (check the inputs of this target)");
  };
  auto system = [&](const State& x, State& dxdt, double time) {
    if (++evaluations > MAX_EVALUATIONS) fail("needs more than " + std::to_string(MAX_EVALUATIONS) + " evaluations");
    const double d = rate(time);
    if (!std::isfinite(d)) fail("meets a dose rate of " + format_number(d) + " Gy/h at t = " + format_number(time) + " h");
    dxdt[0] = d;
    dxdt[1] = d - mu * x[1];
    dxdt[2] = 2.0 * d * x[1];
  };
  State x{0.0, 0.0, 0.0};
  namespace ode = boost::numeric::odeint;
  // Tolerances 1e-12 (abs, rel): the BED tests compare with the closed form to 1e-6.
  auto stepper = ode::make_controlled(1e-12, 1e-12, ode::runge_kutta_dopri5<State>());
  double shortest = 1.0 / mu;
  for (double s : time_scales_h) shortest = std::min(shortest, s);
  const bool closed_tail = tail && std::isinf(t_end_h) && tail->from_h < end;
  const double numeric_end = closed_tail ? tail->from_h : end;
  if (numeric_end > 0) ode::integrate_adaptive(stepper, system, x, 0.0, numeric_end, shortest / 100.0);
  if (closed_tail) add_tail(*tail, mu, x);
  for (double component : x)
    if (!std::isfinite(component)) fail("is not finite (" + format_number(component) + ")");
  BedResult r;
  r.dose_Gy = x[0];
  r.g = r.dose_Gy != 0 ? x[2] / (r.dose_Gy * r.dose_Gy) : 0.0;
  r.bed_Gy = r.dose_Gy + x[2] / t.alpha_beta_Gy;
  r.eqd2_Gy = eqd2(r.bed_Gy, t.alpha_beta_Gy);
  return r;
}

}  // namespace lutdose
