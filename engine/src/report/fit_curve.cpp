// Sampled candidate curves with coverage bands (report/fit_curve.h).
#include "lutdose/report/fit_curve.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "lutdose/dosimetry/uncertainty.h"
#include "lutdose/models/exponential.h"
#include "lutdose/report/results_loader.h"

namespace lutdose::report {

using nlohmann::json;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// The candidate's parameter vector in the order of its parameter names, or an empty vector
// (and the reason) when a name is missing or not a finite number.
Eigen::VectorXd parameter_vector(const json& candidate, const models::ExponentialFunction& f, std::string& why) {
  const auto& names = f.parameter_names();
  const auto& params = obj(candidate, "parameters");
  Eigen::VectorXd p(static_cast<Eigen::Index>(names.size()));
  for (std::size_t i = 0; i < names.size(); ++i) {
    const double v = num(params, names[i].c_str());
    if (!std::isfinite(v)) {
      why = "parameter " + names[i] + " unknown";
      return {};
    }
    p(static_cast<Eigen::Index>(i)) = v;
  }
  return p;
}

// The K x K covariance of the candidate, or an empty matrix when missing, of another size or not finite.
Eigen::MatrixXd covariance_of(const json& candidate, Eigen::Index k) {
  const auto& c = arr(candidate, "covariance");
  if (static_cast<Eigen::Index>(c.size()) != k) return {};
  Eigen::MatrixXd m(k, k);
  for (Eigen::Index i = 0; i < k; ++i) {
    const auto& row = c[static_cast<std::size_t>(i)];
    if (!row.is_array() || static_cast<Eigen::Index>(row.size()) != k) return {};
    for (Eigen::Index j = 0; j < k; ++j) {
      const auto& x = row[static_cast<std::size_t>(j)];
      if (!x.is_number() || !std::isfinite(x.get<double>())) return {};
      m(i, j) = x.get<double>();
    }
  }
  return m;
}

// Degrees of freedom of the candidate's TIA: a number, "infinite", else NaN (unknown).
double dof_of(const json& candidate) {
  const auto it = candidate.find("tia_u_dof");
  if (it == candidate.end()) return kNaN;
  if (it->is_string() && *it == "infinite") return std::numeric_limits<double>::infinity();
  return it->is_number() ? it->get<double>() : kNaN;
}

// Fills the band of `s` from the Jacobian at the sample times and the covariance.
void add_band(SampledCurve& s, const models::ExponentialFunction& f, const Eigen::VectorXd& t, const Eigen::VectorXd& p,
              const Eigen::MatrixXd& cov, double lambda_p, double k) {
  const Eigen::MatrixXd jac = f.jacobian(t, p, lambda_p);
  s.low_MBq.assign(s.t_h.size(), kNaN);
  s.high_MBq.assign(s.t_h.size(), kNaN);
  for (Eigen::Index i = 0; i < t.size(); ++i) {
    const double var = jac.row(i) * cov * jac.row(i).transpose();
    const double u = std::sqrt(std::max(0.0, var));
    const auto ui = static_cast<std::size_t>(i);
    s.low_MBq[ui] = std::max(0.0, s.a_MBq[ui] - k * u);
    s.high_MBq[ui] = s.a_MBq[ui] + k * u;
  }
  s.band = true;
}

}  // namespace

SampledCurve sample_candidate(const json& candidate, double lambda_p_per_h, double t_max_h, int n, double level) {
  SampledCurve s;
  const std::string id = str(candidate, "function");
  const auto* f = models::find_exponential(id);
  if (!f) {
    s.why_not = id.empty() ? "no function" : id + ": not a function of the exponential family";
    return s;
  }
  if (!candidate.value("fitted", false)) {
    s.why_not = id + ": not fitted";
    return s;
  }
  const Eigen::VectorXd p = parameter_vector(candidate, *f, s.why_not);
  if (p.size() == 0 || n < 2 || !(t_max_h > 0) || !std::isfinite(lambda_p_per_h)) {
    if (s.why_not.empty()) s.why_not = "no time range";
    return s;
  }
  Eigen::VectorXd t(n);
  for (int i = 0; i < n; ++i) t(i) = t_max_h * i / (n - 1);
  const Eigen::VectorXd a = f->evaluate(t, p, lambda_p_per_h);
  s.t_h.assign(t.data(), t.data() + t.size());
  s.a_MBq.assign(a.data(), a.data() + a.size());
  s.drawn = true;
  const Eigen::MatrixXd cov = covariance_of(candidate, p.size());
  const double k = coverage_factor(dof_of(candidate), level);
  if (cov.size() == 0) s.band_why_not = "covariance unknown";
  else if (!std::isfinite(k)) s.band_why_not = "degrees of freedom unknown";
  else add_band(s, *f, t, p, cov, lambda_p_per_h, k);
  return s;
}

}  // namespace lutdose::report
