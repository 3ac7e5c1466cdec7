// The exponential family: closed-form integrals (methods.md §2.2 table), finite-time integrals
// against independent numerical quadrature, and analytic derivatives against finite differences.
#include <doctest/doctest.h>

#include <cmath>

#include "lutdose/models/exponential.h"

using lutdose::models::ExponentialFunction;
using lutdose::models::find_exponential;
using Eigen::VectorXd;

namespace {
const double LP = std::log(2.0) / (6.647 * 24.0);  // Lu-177, ICRP-107 half-life 6.647 d

// Natural parameters per function: amplitudes [MBq], then ordered biological rates [1/h].
VectorXd params_for(const std::string& id) {
  VectorXd p;
  if (id == "E1p") p = (VectorXd(1) << 120.0).finished();
  if (id == "E1") p = (VectorXd(2) << 120.0, 0.008).finished();
  if (id == "E2u") p = (VectorXd(3) << 150.0, 0.006, 0.4).finished();
  if (id == "E2") p = (VectorXd(4) << 100.0, 40.0, 0.009, 0.25).finished();
  if (id == "E2b") p = (VectorXd(4) << 100.0, 60.0, 0.009, 0.25).finished();
  if (id == "E3u") p = (VectorXd(5) << 100.0, 40.0, 0.005, 0.05, 0.7).finished();
  return p;
}

// Closed forms of the integral 0..inf written out by hand from methods.md §2.2.
double closed_form_tia(const std::string& id, const VectorXd& p) {
  if (id == "E1p") return p(0) / LP;
  if (id == "E1") return p(0) / (p(1) + LP);
  if (id == "E2u") return p(0) * (1 / (p(1) + LP) - 1 / (p(2) + LP));
  if (id == "E2") return p(0) / (p(2) + LP) + p(1) / (p(3) + LP);
  if (id == "E2b") return p(0) / (p(2) + LP) - p(1) / (p(3) + LP);
  if (id == "E3u")
    return p(0) / (p(2) + LP) + p(1) / (p(3) + LP) - (p(0) + p(1)) / (p(4) + LP);
  return NAN;
}

// Composite Simpson rule on [0, T] with m (even) intervals.
double simpson(const ExponentialFunction& f, const VectorXd& p, double T, int m) {
  VectorXd t = VectorXd::LinSpaced(m + 1, 0.0, T);
  VectorXd y = f.evaluate(t, p, LP);
  double s = y(0) + y(m);
  for (int i = 1; i < m; ++i) s += (i % 2 ? 4.0 : 2.0) * y(i);
  return s * (T / m) / 3.0;
}
}  // namespace

TEST_CASE("every function of the family: TIA equals the closed form of methods.md §2.2") {
  for (const auto& f : lutdose::models::exponential_family()) {
    CAPTURE(f.id());
    const VectorXd p = params_for(f.id());
    REQUIRE(p.size() == f.n_parameters());
    // 1e-13: both are a handful of floating-point operations on the same numbers
    CHECK(f.integral(p, LP, INFINITY) ==
          doctest::Approx(closed_form_tia(f.id(), p)).epsilon(1e-13));
  }
}

TEST_CASE("finite-time integral equals Simpson quadrature and tends to the TIA") {
  for (const auto& f : lutdose::models::exponential_family()) {
    CAPTURE(f.id());
    const VectorXd p = params_for(f.id());
    for (double T : {5.0, 96.0, 1344.0}) {  // 1344 h = 8 weeks, the cycle interval
      CAPTURE(T);
      // Simpson with 200 000 intervals: error ~ h^4 f''''; for the fastest rate (0.7+LP)/h and
      // h <= 0.0067 h the relative error is far below 1e-9.
      CHECK(f.integral(p, LP, T) == doctest::Approx(simpson(f, p, T, 200000)).epsilon(1e-9));
    }
    // After 8 weeks about 0.3 % of a physically decaying component remains (methods.md §2.6);
    // after 50 years nothing does.
    CHECK(f.integral(p, LP, 50 * 8766.0) == doctest::Approx(f.integral(p, LP, INFINITY)).epsilon(1e-12));
  }
}

TEST_CASE("Jacobian and TIA gradient agree with central differences") {
  const VectorXd t = (VectorXd(7) << 0.5, 2, 6, 24, 48, 96, 168).finished();
  for (const auto& f : lutdose::models::exponential_family()) {
    CAPTURE(f.id());
    const VectorXd p = params_for(f.id());
    const auto jac = f.jacobian(t, p, LP);
    const VectorXd g = f.integral_gradient(p, LP, INFINITY);
    const VectorXd g96 = f.integral_gradient(p, LP, 96.0);
    for (int j = 0; j < f.n_parameters(); ++j) {
      CAPTURE(j);
      const double h = 1e-6 * std::abs(p(j));
      VectorXd hi = p, lo = p;
      hi(j) += h;
      lo(j) -= h;
      const VectorXd d = (f.evaluate(t, hi, LP) - f.evaluate(t, lo, LP)) / (2 * h);
      // central differences with relative step 1e-6: truncation ~1e-12 relative, rounding
      // ~1e-16 * |f| / h, far below 1e-6 of the column's largest entry
      const double col_max = jac.col(j).cwiseAbs().maxCoeff();
      for (Eigen::Index i = 0; i < t.size(); ++i)
        CHECK(std::abs(jac(i, j) - d(i)) <= 1e-6 * col_max);
      const double dg = (f.integral(hi, LP, INFINITY) - f.integral(lo, LP, INFINITY)) / (2 * h);
      CHECK(g(j) == doctest::Approx(dg).epsilon(1e-6));
      const double dg96 = (f.integral(hi, LP, 96.0) - f.integral(lo, LP, 96.0)) / (2 * h);
      CHECK(g96(j) == doctest::Approx(dg96).epsilon(1e-6));
    }
  }
}

TEST_CASE("registry: ids, parameter counts and lookup") {
  CHECK(lutdose::models::exponential_ids() ==
        std::vector<std::string>{"E1p", "E1", "E2u", "E2", "E2b", "E3u"});
  CHECK(find_exponential("E2u")->n_parameters() == 3);
  CHECK(find_exponential("E3u")->n_parameters() == 5);
  CHECK(find_exponential("E9") == nullptr);
  CHECK(find_exponential("E2")->parameter_names() ==
        std::vector<std::string>{"A1_MBq", "A2_MBq", "lambda1_bio_per_h", "lambda2_bio_per_h"});
}

TEST_CASE("E2u is zero at t = 0 and every component decays at least physically") {
  const auto& f = *find_exponential("E2u");
  const VectorXd p = params_for("E2u");
  CHECK(f.evaluate(VectorXd::Zero(1), p, LP)(0) == doctest::Approx(0.0).scale(1.0));
  VectorXd c, k;
  f.terms_of(p, LP, c, k);
  CHECK(k.minCoeff() >= LP);
}
