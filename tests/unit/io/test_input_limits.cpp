// Input hardening (issue 10): bounded reading, JSON checks, CSV text checks, names, the problem
// list, and the check of results before they are written.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "lutdose/io/csv.h"
#include "lutdose/error.h"
#include "lutdose/io/input_file.h"
#include "lutdose/pipeline/result_checks.h"

using namespace lutdose;

TEST_CASE("read_input_file: /dev/zero stops at the limit, devices refused where files are required") {
  CHECK_THROWS_WITH_AS(read_input_file("/dev/zero", "CSV file", false), doctest::Contains("limit"), InputError);
  CHECK_THROWS_WITH_AS(read_input_file("/dev/null", "CSV file", true), doctest::Contains("not a regular file"),
                       InputError);
  CHECK_THROWS_WITH_AS(read_input_file("/", "CSV file", false), doctest::Contains("directory"), InputError);
}

TEST_CASE("parse_json_checked: depth, numbers beyond double, NUL") {
  nlohmann::json j;
  CHECK(models::parse_json_checked("{\"a\": [1, 2]}", j).empty());
  const std::string deep(100000, '[');
  CHECK(models::parse_json_checked(deep + std::string(100000, ']'), j).find("depth") != std::string::npos);
  CHECK(models::parse_json_checked("{\"a\": {\"b\": 1e400}}", j).find("range of a double") != std::string::npos);
  CHECK(models::parse_json_checked("{\"a\": [\"x\\u0000y\"]}", j).find("a[0]") != std::string::npos);
  CHECK(models::parse_json_checked("\xEF\xBB\xBF{\"a\": 1}", j).empty());  // byte-order mark
}

TEST_CASE("UTF-8 validation and quoting") {
  CHECK(models::valid_utf8("liver \xC3\xA9t\xC3\xA9"));
  CHECK_FALSE(models::valid_utf8("\xFF"));
  CHECK_FALSE(models::valid_utf8("\xC0\xAF"));          // overlong '/'
  CHECK_FALSE(models::valid_utf8("\xED\xA0\x80"));      // a UTF-16 surrogate
  CHECK_FALSE(models::valid_utf8("\xE2\x82"));          // cut short
  const std::string q = models::quote_value(std::string(15000000, '9'));
  CHECK(q.size() < 300);
  CHECK(q.find("15000000 bytes") != std::string::npos);
  CHECK(name_problem("liver").empty());
  CHECK_FALSE(name_problem(std::string("li\0ver", 6)).empty());
  CHECK_FALSE(name_problem(std::string(MAX_NAME_BYTES + 1, 'x')).empty());
  // C1 controls (U+0080-U+009F, e.g. NEL U+0085) and the line and paragraph separators U+2028/9
  // break lines or are invisible as C0 controls are (0.11 accepted them); other non-ASCII is fine
  for (const char* bad : {"li\xC2\x85ver", "\xC2\x80x", "x\xC2\x9F", "li\xE2\x80\xA8ver", "li\xE2\x80\xA9ver"})
    CHECK(name_problem(bad) == "holding a control character");
  for (const char* fine : {"h\xC3\xA9patique", "\xC2\xA0nbsp", "r\xC3\xB6ntgen", "\xE2\x80\xA7x"})
    CHECK(name_problem(fine).empty());
  // a name that a spreadsheet would run as a formula when it opens lutdose's CSV output (0.11
  // wrote "=cmd|..." unescaped into `fit --format csv`)
  for (const char* formula : {"=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1)"})
    CHECK(name_problem(formula).find("spreadsheet") != std::string::npos);
  CHECK(name_problem("kidney-left").empty());
  CHECK(name_problem("P=1").empty());
}

TEST_CASE("key_name_expected: a store key name of at most STORE_NAME_BYTES bytes, else what is expected") {
  CHECK(key_name_expected(std::string(STORE_NAME_BYTES, 'x'), "a patient id").empty());
  const std::string too_long = key_name_expected(std::string(STORE_NAME_BYTES + 1, 'x'), "a patient id");
  CHECK(too_long.find("a patient id of at most 64 bytes") == 0);  // 64: docs/store.md's column width
  CHECK(too_long.find("this one is 65 bytes") != std::string::npos);
  CHECK(key_name_expected(std::string(100, 'x'), "a VOI name").find("this one is 100 bytes") != std::string::npos);
  // the other problems of a name, as name_problem says them
  CHECK(key_name_expected("", "a VOI name") == "a VOI name (this one is empty)");
  CHECK(key_name_expected("=1+1", "a VOI name").find("formula") != std::string::npos);
}

TEST_CASE("join_problems lists the first ones and counts the rest") {
  std::vector<std::string> p;
  for (int i = 0; i < 1000; ++i) p.push_back("problem " + std::to_string(i));
  const std::string all = join_problems(p);
  CHECK(all.find("problem 49\n") != std::string::npos);
  CHECK(all.find("problem 50\n") == std::string::npos);
  CHECK(all.find("and 950 more") != std::string::npos);
}

TEST_CASE("parse_csv: BOM skipped, invalid UTF-8 and NUL named by line and column") {
  const CsvTable t = parse_csv("\xEF\xBB\xBFvoi,time_h\nliver,1\n", "t.csv");
  CHECK(t.header.front() == "voi");
  CHECK_THROWS_WITH_AS(parse_csv("voi,time_h\nli\xFFver,1\n", "t.csv"), doctest::Contains("t.csv:2: column voi"),
                       InputError);
  CHECK_THROWS_WITH_AS(parse_csv(std::string("voi,time_h\nli\0ver,1\n", 19), "t.csv"), doctest::Contains("NUL"),
                       InputError);
  CHECK_THROWS_WITH_AS(parse_csv("# \xC3\x28\nvoi,time_h\n", "t.csv"), doctest::Contains("t.csv:1"), InputError);
}

// Review of 2026-12-06: a CR inside an unquoted cell was dropped (kidn\reys read as kidneys) while
// a quoted one was kept (and refused by the name check); a quote inside an unquoted field was taken
// as the start of a quoted part (8"0" read as 80, ki"dneys opened a field over the next lines).
TEST_CASE("parse_csv: a CR inside a cell is kept, quoted or not, only a line's final CR is a line end") {
  const CsvTable crlf = parse_csv("voi,time_h\r\nliver,1\r\n", "t.csv");
  CHECK(crlf.rows.at(0).cells == std::vector<std::string>{"liver", "1"});
  // blank and blank-looking lines of a CRLF file are skipped (a line of only CR or blanks and CR)
  const CsvTable blank = parse_csv("voi,time_h\r\n\r\n  \t\r\nliver,1\r\n", "t.csv");
  CHECK(blank.rows.size() == 1);
  const CsvTable unquoted = parse_csv("voi,time_h\nkidn\reys,1\n", "t.csv");
  const CsvTable quoted = parse_csv("voi,time_h\n\"kidn\reys\",1\n", "t.csv");
  CHECK(unquoted.rows.at(0).cells.at(0) == "kidn\reys");
  CHECK(quoted.rows.at(0).cells.at(0) == "kidn\reys");
  // CRLF files with quoted fields, also one running over two lines (its inner CRLF is data)
  const CsvTable q = parse_csv("voi,note\r\n\"liver\",\"a\r\nb\"\r\n\"spleen\" , x\r\n", "t.csv");
  CHECK(q.rows.at(0).cells == std::vector<std::string>{"liver", "a\r\nb"});
  CHECK(q.rows.at(1).cells == std::vector<std::string>{"spleen", "x"});
}

TEST_CASE("parse_csv: a file with CR-only line ends is refused at its header, naming the cause") {
  // 0.11 read such a file as one header line with cells like "activity_MBq\rkidneys": the error
  // then named an unknown column, not the line ends
  for (const char* text : {"voi,time_h,activity_MBq\rkidneys,1,2\r", "\"voi\",time_h\rliver,1\r"})
    CHECK_THROWS_WITH_AS(parse_csv(text, "t.csv"),
                         "t.csv:1: the header holds a carriage return (CR) inside a cell: the file's lines seem to end "
                         "with CR only (classic Mac OS); expected LF or CRLF line ends",
                         InputError);
  // the streaming reader of batch's tables too
  const auto path = (std::filesystem::temp_directory_path() / "lutdose_test_cr_only.csv").string();
  std::ofstream(path, std::ios::binary) << "patient,administered_MBq\rP1,7400\r";
  CHECK_THROWS_WITH_AS(CsvReader{path}, doctest::Contains("CR only"), InputError);
  std::filesystem::remove(path);
}

TEST_CASE("parse_csv: a quote is allowed only around a whole field (RFC 4180)") {
  CHECK(parse_csv("voi,time_h\n\"kid,neys\", 1\n", "t.csv").rows.at(0).cells.at(0) == "kid,neys");
  CHECK(parse_csv("voi,time_h\n \"kidneys\" ,1\n", "t.csv").rows.at(0).cells.at(0) == "kidneys");
  for (const char* bad : {"voi,time_h\nkidneys,8\"0\"\n", "voi,time_h\n\"kid\"neys,1\n", "voi,time_h\nki\"dneys,1\nliver,2\n",
                          "vo\"i,time_h\nliver,1\n"})
    CHECK_THROWS_WITH_AS(parse_csv(bad, "t.csv"), doctest::Contains("a '\"' inside a field"), InputError);
  CHECK_THROWS_WITH_AS(parse_csv("voi,time_h\nki\"dneys,1\n", "t.csv"), doctest::Contains("t.csv:2"), InputError);
}

namespace {

// A run of input `input` with one cycle of patient P1: VOI liver (TIA tia_MBq_h) and one target's dose.
RunResult one_voi_run(const std::string& input, int cycle, double tia_MBq_h, const std::string& target, double dose_Gy) {
  RunResult r;
  r.provenance.options.tac_path = input;
  CycleResult c;
  c.patient = "P1";
  c.cycle = cycle;
  VoiResult v;
  v.tac.voi = "liver";
  v.tac.cycle = cycle;
  v.fit.tia_MBq_h = tia_MBq_h;
  c.vois.push_back(v);
  TargetDose d;
  d.target = target;
  d.dose_Gy = dose_Gy;
  c.doses.push_back(d);
  r.cycles.push_back(c);
  return r;
}

}  // namespace

TEST_CASE("check_results_finite: a non-finite TIA, dose or BED names the input and the target") {
  RunResult r = one_voi_run("case.json", 2, 1000, "spleen", 2.0);
  CHECK_NOTHROW(check_results_finite(r));  // BED NaN without tissue parameters is "not computed"
  r.cycles[0].doses[0].dose_Gy = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_WITH_AS(check_results_finite(r), doctest::Contains("case.json: patient P1, cycle 2, target spleen"),
                       InputError);
  r.cycles[0].doses[0].dose_Gy = 2.0;
  r.cycles[0].doses[0].alpha_beta_Gy = 2.6;
  r.cycles[0].doses[0].bed_Gy = std::numeric_limits<double>::infinity();
  CHECK_THROWS_WITH_AS(check_results_finite(r), doctest::Contains("BED"), InputError);
  r.cycles[0].doses[0].bed_Gy = 2.1;
  r.cycles[0].vois[0].fit.tia_MBq_h = std::numeric_limits<double>::infinity();
  CHECK_THROWS_WITH_AS(check_results_finite(r), doctest::Contains("VOI liver"), InputError);
}

TEST_CASE("append_csv_field and append_csv_number: the cells of csv_field and csv_number, appended") {
  // RFC 4180 cells written by hand; each appended after text already in the buffer
  const std::vector<std::pair<std::string, std::string>> fields = {
      {"", ""},           {"P0001", "P0001"},       {"a,b", "\"a,b\""},     {"say \"x\"", "\"say \"\"x\"\"\""},
      {"a\rb", "\"a\rb\""}, {"a\nb", "\"a\nb\""},     {" a", "\" a\""},       {"a\t", "\"a\t\""},
      {"a b", "a b"},     {"\xc3\xa9t\xc3\xa9", "\xc3\xa9t\xc3\xa9"}};
  for (const auto& [text, cell] : fields) {
    std::string out = "x,";
    append_csv_field(out, text);
    CHECK(out == "x," + cell);
    CHECK(csv_field(text) == cell);
  }
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  const std::vector<std::pair<double, std::string>> numbers = {
      {nan, ""}, {inf, "inf"}, {-inf, "-inf"}, {0.1, "0.1"}, {-2.5e-300, "-2.5e-300"}, {3.0, "3"}, {1e22, "1e+22"}};
  for (const auto& [x, cell] : numbers) {
    std::string out = "x,";
    append_csv_number(out, x);
    CHECK(out == "x," + cell);
    CHECK(csv_number(x) == cell);
  }
}

TEST_CASE("check_results_finite: the whole text of every message, in order") {
  // The texts are built only for a non-finite value (the check of a finite run builds none):
  // this pins them word for word.
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  RunResult r = one_voi_run("t.csv", 1, nan, "liver", inf);
  r.cycles[0].vois[0].tac.patient = "P1";
  r.cycles[0].vois[0].tac.lines = {3, 4};
  r.cycles[0].doses[0].alpha_beta_Gy = 2.5;
  r.cycles[0].doses[0].bed_Gy = nan;
  CumulativeDose s;
  s.target = "liver";
  s.dose_Gy = -inf;
  s.bed_Gy = inf;
  r.cumulative["P1"] = {s};
  const std::string tail = "; expected a finite value (the inputs of this target give none; check their magnitudes)";
  const std::string expected = "t.csv: patient P1, cycle 1, VOI liver (input lines 3, 4): the TIA (MBq h) is nan" +
                               tail + "\nt.csv: patient P1, cycle 1, target liver: the dose (Gy) is inf" + tail +
                               "\nt.csv: patient P1, cycle 1, target liver: the BED (Gy) is nan" + tail +
                               "\nt.csv: patient P1, all cycles, target liver: the summed dose (Gy) is -inf" + tail +
                               "\nt.csv: patient P1, all cycles, target liver: the summed BED (Gy) is inf" + tail;
  CHECK_THROWS_WITH_AS(check_results_finite(r), expected.c_str(), InputError);
  r.provenance.options.tac_path.clear();  // no file: "input"
  r.cycles[0].doses.clear();
  r.cumulative.clear();
  r.cycles[0].vois[0].tac.lines.clear();
  CHECK_THROWS_WITH_AS(check_results_finite(r),
                       ("input: patient P1, cycle 1, VOI liver: the TIA (MBq h) is nan" + tail).c_str(), InputError);
}

TEST_CASE("parse_json_checked: a key written twice in one object is an error naming it") {
  // The parser keeps only the last of two equal keys: the other value would be dropped silently.
  nlohmann::json j;
  const std::string why = models::parse_json_checked("{\"c\": [{\"a\": 7400, \"a\": 1}]}", j);
  CHECK(why.find("c[0].a") != std::string::npos);
  CHECK(why.find("twice") != std::string::npos);
  CHECK(models::parse_json_checked("{\"a\": {\"a\": 1}, \"b\": [{\"a\": 1}, {\"a\": 2}]}", j).empty());
}
