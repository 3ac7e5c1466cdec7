#include "lutdose/kinetics/activity_curve.h"

#include <algorithm>
#include <cmath>

#include "lutdose/models/exponential.h"

namespace lutdose {

double ActivityCurve::operator()(double t_h) const {
  if (general) return general(t_h);
  double a = 0;
  for (size_t i = 0; i < c_MBq.size(); ++i) a += c_MBq[i] * std::exp(-k_per_h[i] * t_h);
  return a;
}

ActivityCurve curve_of(const TacFit& fit, const TacSeries& tac, const FitOptions& o, double lambda_p) {
  ActivityCurve c;
  if (fit.selected >= 0) {
    const auto& cand = fit.candidates[static_cast<size_t>(fit.selected)];
    Eigen::VectorXd coef, k;
    models::find_exponential(cand.function)->terms_of(cand.parameters, lambda_p, coef, k);
    for (Eigen::Index i = 0; i < coef.size(); ++i) {
      c.c_MBq.push_back(coef(i));
      c.k_per_h.push_back(k(i));
      c.scales_h.push_back(1.0 / k(i));
    }
    return c;
  }
  // Trapezoid: the head rule from 0 to t1, linear between points, physical decay after the last.
  const Eigen::VectorXd t = tac.time_h, y = tac.activity_MBq;
  const bool linear_head = o.trapezoid_head == TrapezoidHead::linear;
  c.general = [t, y, linear_head, lambda_p](double time) {
    const Eigen::Index n = t.size();
    if (time <= t(0)) return linear_head ? y(0) * time / t(0) : y(0);
    if (time >= t(n - 1)) return y(n - 1) * std::exp(-lambda_p * (time - t(n - 1)));
    Eigen::Index i = 0;
    while (t(i + 1) < time) ++i;
    return y(i) + (y(i + 1) - y(i)) * (time - t(i)) / (t(i + 1) - t(i));
  };
  for (Eigen::Index i = 0; i < t.size(); ++i) c.scales_h.push_back(std::max(t(i), 0.1));
  c.tail_from_h = t(t.size() - 1);
  c.tail_c_MBq = {y(y.size() - 1)};
  c.tail_k_per_h = {lambda_p};
  c.scales_h.push_back(1.0 / lambda_p);
  return c;
}

ActivityCurve scaled(ActivityCurve c, double factor) {
  for (auto& a : c.c_MBq) a *= factor;
  for (auto& a : c.tail_c_MBq) a *= factor;
  if (c.general) {
    auto g = c.general;
    c.general = [g, factor](double time) { return factor * g(time); };
  }
  return c;
}

ActivityCurve divided(ActivityCurve c, double divisor) {
  for (auto& a : c.c_MBq) a /= divisor;
  for (auto& a : c.tail_c_MBq) a /= divisor;
  if (c.general) {
    auto g = c.general;
    c.general = [g, divisor](double time) { return g(time) / divisor; };
  }
  return c;
}

}  // namespace lutdose
