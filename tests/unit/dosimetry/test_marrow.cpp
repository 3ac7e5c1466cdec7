// The red-marrow source (methods.md §6.5): TIA_RM = TIA_L2L4 / fraction (image) and
// TIA_RM = TIAC_blood x RMBLR x m_RM (blood), with the marrow block recorded as plain data.
#include <doctest/doctest.h>

#include <cmath>
#include <map>

#include "lutdose/dosimetry/marrow.h"
#include "lutdose/dosimetry/nuclide.h"
#include "lutdose/error.h"

using namespace lutdose;

namespace {
const std::string DATA = LUTDOSE_TEST_DATA_DIR;

DoseCalculator calculator(const MarrowOptions& m) {
  DoseOptions o;
  o.phantom = "icrp89-male";  // has red marrow
  o.marrow = m;
  return DoseCalculator(DATA, load_nuclide(DATA, "Lu-177"), o);
}

DoseSourceInput source(const std::string& voi, double tia, double u) {
  DoseSourceInput in;
  in.voi = voi;
  in.tia_MBq_h = tia;
  in.tia_u_MBq_h = u;
  in.tia_u_dof = 7;
  return in;
}
}  // namespace

TEST_CASE("marrow, image method: the L2-L4 VOI divided by its fraction becomes the red marrow") {
  MarrowOptions m;
  m.method = MarrowMethod::image;
  m.l2l4_voi = "l2l4";
  m.l2l4_fraction = 0.1;
  m.mass_g = 1000;
  const DoseCalculator calc = calculator(m);
  std::vector<DoseSourceInput> inputs = {source("liver", 5000, 100), source("l2l4", 1000, 50)};
  std::map<std::string, ActivityCurve> curves;
  curves["l2l4"].c_MBq = {10};
  curves["l2l4"].k_per_h = {0.05};
  const auto r = add_marrow(calc, nullptr, FitOptions{}, 0.004, inputs, curves, "test");
  REQUIRE(r.has_value());
  // exact: divisions by 0.1 of exactly representable products are the same operation the code does
  CHECK(r->tia_MBq_h == 1000 / 0.1);
  CHECK(r->tia_u_MBq_h == 50 / 0.1);
  CHECK(r->tia_u_dof == 7);
  CHECK(r->method == MarrowMethod::image);
  CHECK(r->l2l4_voi == "l2l4");
  CHECK(r->l2l4_fraction == 0.1);
  CHECK(r->mass_g == 1000);
  CHECK(r->mass_source == "dose.marrow.mass_g");
  // the blood method's fields stay unknown (NaN), never 0
  CHECK(std::isnan(r->blood_tiac_MBq_h_per_mL));
  CHECK(std::isnan(r->rmblr));
  REQUIRE(inputs.size() == 2);  // l2l4 replaced by red_marrow
  CHECK(inputs[0].voi == "liver");
  CHECK(inputs[1].voi == "red_marrow");
  CHECK(inputs[1].mean_mass_g == 1000);
  CHECK(inputs[1].tia_MBq_h == r->tia_MBq_h);
  REQUIRE(curves.count("red_marrow") == 1);
  CHECK(curves.at("red_marrow")(0.0) == doctest::Approx(100.0).epsilon(1e-15));  // c / fraction at t = 0
}

TEST_CASE("marrow, blood method: TIAC of noise-free E1 samples x RMBLR x mass") {
  MarrowOptions m;
  m.method = MarrowMethod::blood;
  m.rmecff = 0.19;
  m.mass_g = 1170;
  const DoseCalculator calc = calculator(m);
  const double lambda_p = load_nuclide(DATA, "Lu-177").lambda_per_h();
  const double a0 = 2.0, lambda_bio = 0.3;  // MBq/mL, 1/h
  BloodData b;
  for (double t : {0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 24.0}) {
    b.time_h.push_back(t);
    b.concentration_MBq_per_mL.push_back(a0 * std::exp(-(lambda_bio + lambda_p) * t));
  }
  b.hematocrit = 0.42;
  std::vector<DoseSourceInput> inputs = {source("liver", 5000, 100)};
  std::map<std::string, ActivityCurve> curves;
  FitOptions fit;
  fit.forced_function = "E1";
  const auto r = add_marrow(calc, &b, fit, lambda_p, inputs, curves, "test");
  REQUIRE(r.has_value());
  const double rmblr = 0.19 / (1 - 0.42);
  CHECK(r->rmblr == doctest::Approx(rmblr).epsilon(1e-15));
  CHECK(r->rmblr_source == "rmecff / (1 - hematocrit)");
  CHECK(r->blood_fit_function == "E1");
  // noise-free E1 data: the fit recovers the analytic TIAC a0 / (lambda_bio + lambda_p) to the
  // optimizer's tolerance (1e-6 relative is far above it and far below any modelling effect)
  const double tiac = a0 / (lambda_bio + lambda_p);
  CHECK(r->blood_tiac_MBq_h_per_mL == doctest::Approx(tiac).epsilon(1e-6));
  CHECK(r->tia_MBq_h == doctest::Approx(tiac * rmblr * 1170).epsilon(1e-6));
  CHECK(std::isnan(r->l2l4_fraction));  // the image method's field stays unknown
  REQUIRE(inputs.size() == 2);
  CHECK(inputs[1].voi == "red_marrow");
  REQUIRE(curves.count("red_marrow") == 1);
  // the curve integrates to the marrow TIA: A(0) = a0 x RMBLR x mass
  CHECK(curves.at("red_marrow")(0.0) == doctest::Approx(a0 * rmblr * 1170).epsilon(1e-6));
}

TEST_CASE("marrow: method none adds nothing, missing blood samples or L2-L4 VOI are input errors") {
  std::vector<DoseSourceInput> inputs = {source("liver", 5000, 100)};
  std::map<std::string, ActivityCurve> curves;
  CHECK_FALSE(add_marrow(calculator(MarrowOptions{}), nullptr, FitOptions{}, 0.004, inputs, curves, "t").has_value());
  CHECK(inputs.size() == 1);
  CHECK(curves.empty());
  MarrowOptions blood;
  blood.method = MarrowMethod::blood;
  CHECK_THROWS_AS(add_marrow(calculator(blood), nullptr, FitOptions{}, 0.004, inputs, curves, "t"), InputError);
  MarrowOptions image;
  image.method = MarrowMethod::image;
  image.l2l4_fraction = 0.1;
  CHECK_THROWS_AS(add_marrow(calculator(image), nullptr, FitOptions{}, 0.004, inputs, curves, "t"), InputError);
  CHECK(inputs.size() == 1);
}
