// The smaller findings of issue 11 (item 8), one test each.
#include <doctest/doctest.h>

#include <cmath>

#include "lutdose/quantification.h"

using namespace lutdose;

TEST_CASE("a VOI volume equal to the smallest recovery-table volume is inside the table") {
  // 20 and 6.5 mL are volumes with exp(log(V)) < V in double precision (checked: the round trip
  // lands one ulp below): the slope d ln RC / d ln V at the lower end must not reject them.
  for (double v0 : {20.0, 6.5}) {
    CAPTURE(v0);
    REQUIRE(std::exp(std::log(v0)) < v0);  // the case the finding is about
    RecoveryTable t;
    t.volume_mL = {v0, 2 * v0, 10 * v0, 100 * v0};
    t.rc = {0.4, 0.6, 0.8, 0.95};
    CHECK(t.rc_at(v0, "test") == doctest::Approx(0.4).epsilon(1e-12));  // a table node: exact up to rounding
    double slope = 0;
    CHECK_NOTHROW(slope = t.dln_rc_dln_volume(v0));
    CHECK(slope > 0);  // RC rises with volume at the lower end
    CHECK(std::isfinite(slope));
  }
}
