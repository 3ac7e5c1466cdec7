// Typed run options: validate() lists every problem at once; one mapping of option texts to typed
// fields for the command line and the case file; every option on both sides or documented as
// one-sided (issue 12 item 3).
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>

#include "lutdose/error.h"
#include "lutdose/pipeline/options.h"

using namespace lutdose;

namespace {
const std::string SRC = LUTDOSE_TEST_SOURCE_DIR;

bool has_line(const std::vector<std::string>& lines, const std::string& a, const std::string& b) {
  for (const auto& l : lines)
    if (l.find(a) != std::string::npos && l.find(b) != std::string::npos) return true;
  return false;
}
}  // namespace

TEST_CASE("options: validate() lists every problem at once, each with its field and value") {
  RunOptions o;
  CHECK(validate(o).empty());  // the defaults are valid
  o.administered_MBq = -5;
  o.fit.combined_b = -1;
  o.fit.candidates = {"E1", "E9"};
  DoseOptions d;
  d.organ_density_g_per_mL = 0;
  o.dose = d;
  o.mc_samples = -3;
  o.compartment_model = "m.json";
  o.residual = ResidualHandling::integrate_to_next;
  const auto p = validate(o);
  CHECK(p.size() == 6);
  CHECK(has_line(p, "--activity-MBq = '-5'", "expected an activity > 0 MBq"));
  CHECK(has_line(p, "fit.combined_b (--combined-b) = '-1'", "expected a number >= 0"));
  CHECK(has_line(p, "fit.functions (--functions) = 'E9'", "expected ids of the exponential family"));
  CHECK(has_line(p, "dose.organ_density_g_per_mL (--density-g-per-mL) = '0'", "expected a density from 0.2 to 3 g/mL"));
  CHECK(has_line(p, "uncertainty.monte_carlo_samples (--mc-samples) = '-3'", "expected a whole number from 0 to 1000000"));
  CHECK(has_line(p, "radiobiology.residual = 'integrate-to-next'", "none or subtract"));
  // validate_or_throw: all of them in one InputError, one per line
  try {
    validate_or_throw(o, "here");
    FAIL("expected an InputError");
  } catch (const InputError& e) {
    const std::string m = e.what();
    CHECK(std::count(m.begin(), m.end(), '\n') == 5);
    CHECK(m.rfind("here: ", 0) == 0);
  }
}

TEST_CASE("options: a population file (fit.population, --population) excludes reduced schedules and "
          "previous-cycles kinetics, also before it is read, and a compartment model once read as exponential") {
  RunOptions o;
  o.population_source.path = "cases/pop.json";  // a case's fit.population, read later by read_run_files
  CHECK(validate(o).empty());
  o.compartment_model = "blood_organ_linear";
  // not yet read: it may be a compartment population of that model (read_run_files checks it)
  CHECK(validate(o).empty());
  o.reduced = ReducedSchedule::madsen;
  o.fit.kinetics = Kinetics::previous_cycles;
  auto p = validate(o);
  CHECK(has_line(p, "fit.population (--population) = 'cases/pop.json'", "no fit.reduced"));
  CHECK_FALSE(has_line(p, "fit.population (--population) = 'cases/pop.json'", "no fit.model"));
  CHECK(has_line(p, "fit.kinetics (--kinetics) = 'previous-cycles'", "--population"));
  // read as a population of the exponential family: its MAP fits exponentials, not the model
  o.population = std::make_shared<const std::vector<PopulationModel>>();
  p = validate(o);
  CHECK(has_line(p, "fit.population (--population) = 'cases/pop.json'", "no fit.model"));
}

TEST_CASE("options: the ranges of the density and the Monte Carlo options, shared by both sides") {
  RunOptions o;
  DoseOptions d;
  d.organ_density_g_per_mL = 0.2;  // the bounds of DENSITY_RANGE_G_PER_ML are inclusive
  o.dose = d;
  o.mc_samples = 1000000;
  CHECK(validate(o).empty());
  o.dose->organ_density_g_per_mL = 3.01;
  o.mc_samples = 1000001;
  CHECK(validate(o).size() == 2);
  CHECK(validate_monte_carlo(0, 0).empty());
  const auto p = validate_monte_carlo(-5, -1);
  CHECK(has_line(p, "uncertainty.monte_carlo_samples (--mc-samples) = '-5'", "expected a whole number from 0 to 1000000"));
  CHECK(has_line(p, "uncertainty.seed (--mc-seed) = '-1'", "expected a whole number >= 0"));
}

TEST_CASE("options: one mapping from option texts to typed fields, by case key or command-line name") {
  FitOptions fit;
  DoseOptions dose;
  ReducedSchedule reduced = ReducedSchedule::none;
  ResidualHandling residual = ResidualHandling::none;
  const OptionFields f{fit, dose, reduced, residual};
  CHECK_FALSE(set_choice_option(f, "fit.reduced", "madsen"));
  CHECK(reduced == ReducedSchedule::madsen);
  CHECK_FALSE(set_choice_option(f, "--reduced", "prior"));  // the same option by its CLI name
  CHECK(reduced == ReducedSchedule::prior);
  CHECK_FALSE(set_choice_option(f, "radiobiology.residual", "integrate-to-next"));
  CHECK(residual == ResidualHandling::integrate_to_next);
  CHECK_FALSE(set_choice_option(f, "--error-model", "poisson"));
  CHECK(fit.error_model == ErrorModel::input);
  CHECK(fit.error_model_name == "poisson");
  CHECK_FALSE(fit.error_model_by_voi_kind);
  CHECK_FALSE(set_choice_option(f, "dose.mass_scaling", "inverse-mass"));
  CHECK(dose.mass_scaling == MassScaling::inverse_mass);
  // a bad value: what was expected, and the field unchanged
  const auto bad = set_choice_option(f, "fit.error_model", "poison");
  REQUIRE(bad);
  CHECK(*bad == "one of proportional, proportional-model, constant, combined, poisson, input");
  CHECK(fit.error_model == ErrorModel::input);
  CHECK_THROWS_AS(set_choice_option(f, "--combined-b", "1"), std::logic_error);  // not a choice option
  CHECK_THROWS_AS(option_spec("--no-such-option"), std::out_of_range);
}

TEST_CASE("options: every option is on both sides, or documented as one-sided in docs/case-file.md") {
  std::ifstream in(SRC + "/docs/case-file.md");
  std::stringstream text;
  text << in.rdbuf();
  const std::string doc = text.str();
  const auto section = doc.find("## Options on one side only");
  REQUIRE(section != std::string::npos);
  const std::string one_sided = doc.substr(section);
  for (const auto& s : run_option_specs()) {
    CAPTURE(s.cli);
    CAPTURE(s.key);
    CHECK(!(s.cli.empty() && s.key.empty()));
    const bool both = !s.cli.empty() && !s.key.empty();
    CHECK(both == s.one_sided.empty());  // one side only exactly when a reason is given
    if (!both) CHECK(one_sided.find("`" + (s.cli.empty() ? s.key : s.cli) + "`") != std::string::npos);
    // each choice option has a setter: a valid value is accepted
    if (!s.choices.empty()) {
      FitOptions fit;
      DoseOptions dose;
      ReducedSchedule reduced = ReducedSchedule::none;
      ResidualHandling residual = ResidualHandling::none;
      for (const auto& c : s.choices) CHECK_FALSE(set_choice_option({fit, dose, reduced, residual}, s.key, c));
    }
  }
}
