// The MIRD schema: cross-dose, the remainder-of-body correction, mass scaling, user S-value
// tables, and the GUM budget's analytic properties (methods.md §5-6).
#include <doctest/doctest.h>

#include <cmath>
#include <map>

#include "lutdose/dosimetry/dose.h"
#include "lutdose/error.h"
#include "lutdose/dosimetry/nuclide.h"
#include "../test_util.h"

using namespace lutdose;

namespace {
const std::string DATA = LUTDOSE_TEST_DATA_DIR;

DoseSourceInput voi(const std::string& name, double tia, double mass_g = NAN) {
  DoseSourceInput in;
  in.voi = name;
  in.tia_MBq_h = tia;
  in.mean_mass_g = mass_g;
  return in;
}

std::map<std::string, TargetDose> by_target(const CycleDoses& d) {
  std::map<std::string, TargetDose> m;
  for (const auto& t : d.targets) m[t.target] = t;
  return m;
}
}  // namespace

TEST_CASE("cross-dose: every target gets TIA x S(target <- source) from every VOI") {
  const Nuclide lu = load_nuclide(DATA, "Lu-177");
  DoseOptions o;
  o.phantom = "icrp89-male";
  const DoseCalculator calc(DATA, lu, o);
  const SValueSet& set = calc.svalue_set();
  // organs at the phantom masses, so self-S is the phantom's whatever the scaling
  const auto d = by_target(calc.compute({voi("liver", 50000, 1800), voi("spleen", 9000, 150),
                                         voi("kidneys", 14000, 310)}, 7400, "t"));
  const double k = 3.6;  // Gy per (mGy/(MBq s) x MBq h)
  auto expected = [&](const std::string& target_region) {
    return k * (50000 * set.s(target_region, "Liver") + 9000 * set.s(target_region, "Spleen") +
                14000 * set.s(target_region, "Kidneys"));
  };
  // tolerance 1e-12: the same products summed in another order
  CHECK(d.at("liver").dose_Gy == doctest::Approx(expected("Liver")).epsilon(1e-12));
  CHECK(d.at("kidneys").dose_Gy == doctest::Approx(expected("Kidneys")).epsilon(1e-12));
  CHECK(d.at("Red Marrow").dose_Gy == doctest::Approx(expected("Red Marrow")).epsilon(1e-12));
  CHECK(d.at("Adrenals").dose_Gy == doctest::Approx(expected("Adrenals")).epsilon(1e-12));
  CHECK(d.at("liver").self_Gy == doctest::Approx(k * 50000 * set.s("Liver", "Liver")).epsilon(1e-12));
  CHECK(d.at("liver").cross_Gy > 0);
  CHECK(d.count("Liver") == 0);  // reported under the VOI name
}

TEST_CASE("remainder of body: organs holding all the activity give the same doses with whole_body") {
  const Nuclide lu = load_nuclide(DATA, "Lu-177");
  for (const char* phantom : {"icrp89-male", "icrp89-female"}) {
    CAPTURE(phantom);
    DoseOptions o;
    o.phantom = phantom;
    const DoseCalculator calc(DATA, lu, o);
    const std::vector<DoseSourceInput> organs = {voi("liver", 52000, 1700), voi("spleen", 9000, 180),
                                                 voi("kidney_left", 7000, 160), voi("kidney_right", 6500, 150)};
    std::vector<DoseSourceInput> with_wb = organs;
    with_wb.push_back(voi("whole_body", 52000 + 9000 + 7000 + 6500));
    const auto a = by_target(calc.compute(organs, 7400, "organs"));
    const CycleDoses db = calc.compute(with_wb, 7400, "organs + whole body");
    const auto b = by_target(db);
    CHECK(db.remainder_tia_MBq_h == doctest::Approx(0.0).scale(1.0));
    for (const auto& entry : a) {
      const auto& name = entry.first;  // not a structured binding: doctest's macros use lambdas
      const auto& t = entry.second;
      CAPTURE(name);
      // the remainder has zero TIA, so every dose is the same up to rounding
      CHECK(b.at(name).dose_Gy == doctest::Approx(t.dose_Gy).epsilon(1e-12).scale(1e-15));
    }
  }
}

TEST_CASE("remainder of body: activity spread uniformly gives TIA_WB x S(T <- whole body)") {
  // Cloutier's S(T <- RB) is built so that organs holding TIA_WB m_h/m_WB and the remainder the
  // rest reproduce the whole-body S exactly (phantom masses, no scaling).
  const Nuclide lu = load_nuclide(DATA, "Lu-177");
  DoseOptions o;
  o.phantom = "icrp89-male";
  const DoseCalculator calc(DATA, lu, o);
  const SValueSet& set = calc.svalue_set();
  const double wb = 100000, m_wb = set.body_mass_g;
  REQUIRE(m_wb == doctest::Approx(73000.0));
  const std::vector<std::pair<std::string, double>> organs = {{"liver", 1800}, {"spleen", 150}, {"kidneys", 310}};
  std::vector<DoseSourceInput> in;
  for (const auto& [name, m] : organs) in.push_back(voi(name, wb * m / m_wb, m));
  in.push_back(voi("whole_body", wb));
  const auto d = by_target(calc.compute(in, 7400, "uniform"));
  for (const auto& pair : std::vector<std::pair<std::string, std::string>>{
           {"liver", "Liver"}, {"kidneys", "Kidneys"}, {"Red Marrow", "Red Marrow"}, {"Lungs", "Lungs"},
           {"Total Body", "Total Body"}, {"Thyroid", "Thyroid"}}) {
    const auto& target = pair.first;  // not a structured binding: doctest's macros use lambdas
    const auto& region = pair.second;
    CAPTURE(target);
    // exact algebraic identity; 1e-10 for the cancellations in S(T <- RB)
    CHECK(d.at(target).dose_Gy == doctest::Approx(3.6 * wb * set.s(region, "Tot Body")).epsilon(1e-10));
  }
}

TEST_CASE("remainder: bad input") {
  const Nuclide lu = load_nuclide(DATA, "Lu-177");
  DoseOptions o;
  o.phantom = "icrp89-male";
  const DoseCalculator calc(DATA, lu, o);
  // a whole-body TIA smaller than the organs' sum, naming both values
  try {
    calc.compute({voi("liver", 50000), voi("whole_body", 40000)}, 7400, "cycle 1");
    FAIL("no error");
  } catch (const InputError& e) {
    const std::string m = e.what();
    CHECK(m.find("40000") != std::string::npos);
    CHECK(m.find("50000") != std::string::npos);
  }
  // overlapping VOIs
  CHECK_THROWS_AS(calc.compute({voi("kidneys", 1), voi("kidney_left", 1)}, 7400, "c"), InputError);
  // OpenDose (as scraped) has no whole-body source
  DoseOptions od;
  od.phantom = "icrp110-am";
  const DoseCalculator calc_od(DATA, lu, od);
  CHECK_THROWS_AS(calc_od.compute({voi("liver", 1), voi("whole_body", 2)}, 7400, "c"), InputError);
}

TEST_CASE("electron-photon mass scaling: Delta_e/m + photon part x (m_ref/m)^(2/3)") {
  const Nuclide lu = load_nuclide(DATA, "Lu-177");
  DoseOptions o;
  o.phantom = "icrp110-am";
  const DoseCalculator calc(DATA, lu, o);
  const double s_ref = 1.3713e-5, m_ref = 1799.776;  // OpenDose AM liver (reference-data.md §2)
  CHECK(calc.organ_self_s("liver", m_ref) == doctest::Approx(s_ref).epsilon(1e-12));
  const double s_e = lu.local_deposition_s_mGy_per_MBq_s(m_ref);
  CHECK(calc.organ_self_s("liver", m_ref / 2) ==
        doctest::Approx(2 * s_e + (s_ref - s_e) * std::pow(2.0, 2.0 / 3.0)).epsilon(1e-12));
  // larger organ: less than the inverse-mass value, more than electrons alone
  const double s_big = calc.organ_self_s("liver", 2 * m_ref);
  CHECK(s_big > s_ref / 2);
  CHECK(s_big < s_ref / 2 + (s_ref - s_e));
}

TEST_CASE("GUM: a CF uncertainty of x % gives exactly x % on every dose") {
  const Nuclide lu = load_nuclide(DATA, "Lu-177");
  DoseOptions o;
  o.phantom = "icrp89-female";
  const DoseCalculator calc(DATA, lu, o);
  std::vector<DoseSourceInput> in = {voi("liver", 52000, 1500), voi("spleen", 9000, 200),
                                     voi("kidneys", 13000, 290), voi("whole_body", 120000)};
  for (auto& v : in) {
    v.calibration = "SPECT";
    v.u_rel_cf = 0.05;
  }
  const CycleDoses d = calc.compute(in, 7400, "c");
  for (const auto& t : d.targets) {
    CAPTURE(t.target);
    // every TIA scales with 1/CF, hence every dose; central differences: 1e-9
    CHECK(t.dose_u_Gy / t.dose_Gy == doctest::Approx(0.05).epsilon(1e-8));
  }
}

TEST_CASE("GUM: the volume enters RC and mass together, |dlnRC/dlnV + 1| u(V)/V") {
  const Nuclide lu = load_nuclide(DATA, "Lu-177");
  DoseOptions o;
  o.phantom = "icrp110-am";
  o.mass_scaling = MassScaling::inverse_mass;
  const DoseCalculator calc(DATA, lu, o);
  DoseSourceInput in = voi("spleen", 9000);
  in.mean_volume_mL = 200;
  in.dln_rc_dln_volume = 0.25;
  in.u_rel_volume = 0.1;
  const CycleDoses d = calc.compute({in}, 7400, "c");
  const auto t = by_target(d).at("spleen");
  // methods.md §5 item 5: both parts have the same sign and add (1e-8: central differences)
  CHECK(t.dose_u_Gy / t.dose_Gy == doctest::Approx((0.25 + 1) * 0.1).epsilon(1e-8));
}

TEST_CASE("user S-value table: read, used, and bad entries rejected with their line") {
  const Nuclide lu = load_nuclide(DATA, "Lu-177");
  const std::string good = test::write_temp(
      "target,source,s_mGy_per_MBq_s,target_mass_g\n"
      "liver,liver,1.4e-5,1800\nliver,spleen,1e-7,1800\nspleen,liver,1e-7,150\nspleen,spleen,1.6e-4,150\n");
  DoseOptions o;
  o.phantom = "user";
  o.svalue_table = good;
  o.mass_scaling = MassScaling::inverse_mass;
  const DoseCalculator calc(DATA, lu, o);
  const auto d = by_target(calc.compute({voi("liver", 1000, 900), voi("spleen", 100, 150)}, 7400, "c"));
  CHECK(d.at("liver").dose_Gy == doctest::Approx(3.6 * (1000 * 1.4e-5 * 2 + 100 * 1e-7)).epsilon(1e-12));
  std::remove(good.c_str());
  const std::pair<const char*, const char*> bad[] = {
      {"target,source,s_mGy_per_MBq_s,target_mass_g\nliver,liver,-1e-5,1800\n", "-1e-5"},
      {"target,source,s_mGy_per_MBq_s,target_mass_g\nliver,liver,1e-5,1800\nliver,spleen,1e-7,1800\n"
       "spleen,spleen,1e-4,150\n", "spleen from source liver"},
      {"target,source,s_mGy_per_MBq_s,target_mass_g\nliver,liver,,1800\n", "s_mGy_per_MBq_s"},
  };
  for (const auto& bad_case : bad) {
    const auto& content = bad_case.first;  // not a structured binding: doctest's macros use lambdas
    const auto& expected = bad_case.second;
    CAPTURE(content);
    const std::string path = test::write_temp(content);
    try {
      load_user_svalue_table(path);
      FAIL("no error");
    } catch (const InputError& e) {
      CHECK(std::string(e.what()).find(expected) != std::string::npos);
      CHECK(std::string(e.what()).find(path) != std::string::npos);
    }
    std::remove(path.c_str());
  }
}

TEST_CASE("indexed S-value set: the same S-values as the set, NaN where it has none") {
  const SValueSet set = load_svalue_set(DATA, "icrp89-male");
  const IndexedSValueSet indexed(set, load_voi_region_map(DATA, "icrp89-male"));
  size_t checked = 0;
  for (const auto& [key, s] : set.s_mGy_per_MBq_s) {
    const size_t t = indexed.target_index(key.first), src = indexed.source_index(key.second);
    REQUIRE(t != IndexedSValueSet::npos);
    REQUIRE(src != IndexedSValueSet::npos);
    CHECK(indexed.s_dense(t, src) == s);  // a copy of the value, nothing computed
    ++checked;
  }
  CHECK(checked == set.s_mGy_per_MBq_s.size());
  CHECK(indexed.target_index("no such region") == IndexedSValueSet::npos);
  CHECK(indexed.source_index("no such region") == IndexedSValueSet::npos);
  CHECK(std::isnan(indexed.s_dense(IndexedSValueSet::npos, 0)));
  CHECK(std::isnan(indexed.s_dense(0, IndexedSValueSet::npos)));
  // a pair of known regions without a value: NaN, not 0 (the dose step then names the pair)
  SValueSet partial;
  partial.name = "partial";
  partial.targets = partial.sources = {"A", "B"};
  partial.s_mGy_per_MBq_s = {{{"A", "A"}, 1.0}, {{"A", "B"}, 2.0}, {{"B", "B"}, 4.0}};
  const IndexedSValueSet p(partial, {});
  CHECK(p.s_dense(p.target_index("A"), p.source_index("B")) == 2.0);
  CHECK(p.s_dense(p.target_index("B"), p.source_index("B")) == 4.0);
  CHECK(std::isnan(p.s_dense(p.target_index("B"), p.source_index("A"))));
}

TEST_CASE("calculators sharing one indexed set give the doses of one built from the files, and copy nothing") {
  const Nuclide lu = load_nuclide(DATA, "Lu-177");
  DoseOptions o;
  o.phantom = "icrp89-male";  // has a whole-body source: the remainder is exercised too
  const auto shared = std::make_shared<const IndexedSValueSet>(load_svalue_set(DATA, o.phantom),
                                                               load_voi_region_map(DATA, o.phantom));
  const SphereTable spheres = load_sphere_table(DATA, o.sphere_composition);
  const DoseCalculator from_files(DATA, lu, o);
  const DoseCalculator a(shared, spheres, lu, o), b(shared, spheres, lu, o);
  CHECK(&a.svalue_set() == &shared->set);  // the patient's calculator points at the shared set
  CHECK(&b.voi_map() == &shared->voi_map);
  const std::vector<DoseSourceInput> vois = {voi("liver", 50000, 1800), voi("kidneys", 14000, 310),
                                             voi("tumour_1", 3000, 20), voi("whole_body", 120000)};
  const auto expected = from_files.compute(vois, 7400, "t");
  for (const DoseCalculator* c : {&a, &b}) {
    const auto got = c->compute(vois, 7400, "t");
    REQUIRE(got.targets.size() == expected.targets.size());
    for (size_t i = 0; i < got.targets.size(); ++i) {
      CAPTURE(got.targets[i].target);
      CHECK(got.targets[i].target == expected.targets[i].target);
      CHECK(got.targets[i].dose_Gy == expected.targets[i].dose_Gy);  // same data, same arithmetic: bit for bit
    }
  }
  CHECK_THROWS_AS(DoseCalculator(nullptr, spheres, lu, o), std::logic_error);
}
