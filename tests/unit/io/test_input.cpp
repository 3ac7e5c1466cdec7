// Input parsing: the CSV reader and the TAC table's validation (the CLI tests cover the messages).
#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>

#include "lutdose/io/csv.h"
#include "lutdose/error.h"
#include "../test_util.h"
#include "lutdose/io/tac_table.h"

using namespace lutdose;

namespace {
using test::write_temp;
}  // namespace

TEST_CASE("CSV: quotes, comments, line numbers") {
  const auto path = write_temp("# comment\na,b\n\"x, y\",2\n\n\"he said \"\"hi\"\"\",3\n");
  const CsvTable t = read_csv(path);
  CHECK(t.header == std::vector<std::string>{"a", "b"});
  REQUIRE(t.rows.size() == 2);
  CHECK(t.rows[0].cells[0] == "x, y");
  CHECK(t.rows[0].line == 3);
  CHECK(t.rows[1].cells[0] == "he said \"hi\"");
  CHECK(t.rows[1].line == 5);
  std::remove(path.c_str());
}

TEST_CASE("numbers are parsed strictly") {
  double x;
  CHECK(parse_double(" 1.5e3 ", x));
  CHECK(x == 1500.0);
  CHECK(parse_double("+2", x));
  CHECK_FALSE(parse_double("1.5 MBq", x));
  CHECK_FALSE(parse_double("", x));
  CHECK_FALSE(parse_double("abc", x));
}

TEST_CASE("TAC table: grouping by patient, cycle and VOI with optional columns") {
  const auto path = write_temp(
      "patient,cycle,voi,time_h,activity_MBq,volume_mL\n"
      "p1,1,liver,4,100,1800\np1,1,liver,24,90,\np1,2,liver,4,95,1750\np2,1,liver,4,80,1700\n");
  const auto s = read_tac_table(path);
  REQUIRE(s.size() == 3);
  CHECK(s[0].patient == "p1");
  CHECK(s[0].time_h.size() == 2);
  CHECK(std::isnan(s[0].volume_mL[1]));
  CHECK(s[1].cycle == 2);
  CHECK(s[2].patient == "p2");
  std::remove(path.c_str());
}

// The reader looks a TAC up only when the row's TAC differs from the last row's (speed, 0.11):
// rows that come back to an earlier TAC must still join it, times checked within it.
TEST_CASE("TAC table: interleaved rows join the TAC of their first row, times checked per TAC") {
  const auto path = write_temp(
      "patient,cycle,voi,time_h,activity_MBq\n"
      "p1,1,liver,4,100\np1,1,spleen,4,10\np2,1,liver,4,80\np1,1,liver,24,90\np1,2,liver,4,95\n"
      "p1,1,spleen,24,9\np1,1,liver,48,70\n");
  const auto s = read_tac_table(path);
  REQUIRE(s.size() == 4);
  CHECK((s[0].patient == "p1" && s[0].cycle == 1 && s[0].voi == "liver"));
  CHECK(s[0].lines == std::vector<int>{2, 5, 8});
  CHECK(s[0].time_h(2) == 48.0);
  CHECK((s[1].voi == "spleen" && s[1].lines == std::vector<int>{3, 7}));
  CHECK((s[2].patient == "p2" && s[2].lines == std::vector<int>{4}));
  CHECK((s[3].cycle == 2 && s[3].lines == std::vector<int>{6}));
  std::remove(path.c_str());
  const auto back = write_temp("voi,time_h,activity_MBq\nliver,4,100\nspleen,4,1\nliver,24,90\nspleen,2,1\n");
  CHECK_THROWS_WITH_AS(read_tac_table(back),
                       doctest::Contains(":5: column time_h is '2'; expected times strictly increasing within VOI "
                                         "spleen (previous 4 h at line 3)"),
                       InputError);
  std::remove(back.c_str());
}

TEST_CASE("TAC table: bad values are InputErrors naming file, line, column and value") {
  const std::pair<const char*, const char*> cases[] = {
      {"voi,time_h,activity_MBq\nliver,4,-1\n", "activity_MBq"},
      {"voi,time_h,activity_MBq\nliver,4,nan\n", "'nan'"},
      {"voi,time_h,activity_MBq\nliver,4,1\nliver,4,2\n", "strictly increasing"},
      {"voi,time_h\nliver,4\n", "activity_MBq"},
      {"voi,time_h,activity_MBq,colour\nliver,4,1,red\n", "colour"},
      {"voi,time_h,activity_MBq,mass_g\nliver,4,1,0\n", "mass_g"},
  };
  for (const auto& c : cases) {
    const auto& content = c.first;  // not a structured binding: doctest's macros use lambdas
    const auto& expected = c.second;
    CAPTURE(content);
    const auto path = write_temp(content);
    try {
      read_tac_table(path);
      FAIL("no error");
    } catch (const InputError& e) {
      const std::string msg = e.what();
      CHECK(msg.find(path) != std::string::npos);
      CHECK(msg.find(expected) != std::string::npos);
    }
    std::remove(path.c_str());
  }
}
