// Unit tests of the report helpers (engine/include/lutdose/report/): axis ticks, tick labels,
// HTML escaping, number formatting, box-plot quartiles, the candidate curve's band and the
// results loader's checks. Expected values are worked out by hand (in the comments).
#include <doctest/doctest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "lutdose/error.h"
#include "lutdose/report/chromium.h"
#include "lutdose/report/fit_curve.h"
#include "lutdose/report/html.h"
#include "lutdose/report/patient_report.h"
#include "lutdose/report/results_loader.h"
#include "lutdose/report/svg_plot.h"

using namespace lutdose::report;

namespace {
// Tick values are k * step in floating point (0.6000000000000001): 1e-12 relative is far below
// any visible difference and far above the rounding of one product.
void check_ticks(const std::vector<double>& got, const std::vector<double>& want) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-12));
}
}  // namespace

TEST_CASE("report: nice linear ticks are 1, 2 or 5 times a power of ten and cover the range") {
  // [0, 123], at most 7 ticks: step 10 needs 14 ticks, 20 needs 8 (0..140), 50 needs 4.
  CHECK(nice_step(0, 123, 7) == 50);
  check_ticks(nice_ticks(0, 123, 7), {0, 50, 100, 150});
  // [0, 1], 6 ticks: step 0.1 needs 11, 0.2 needs exactly 6.
  check_ticks(nice_ticks(0, 1, 6), {0, 0.2, 0.4, 0.6, 0.8, 1});
  // [-3.2, 7.9], 7 ticks: step 1 needs 13 (-4..8), step 2 needs 7 (-4..8).
  check_ticks(nice_ticks(-3.2, 7.9, 7), {-4, -2, 0, 2, 4, 6, 8});
  // No range, or fewer than 2 ticks allowed: no ticks.
  CHECK(std::isnan(nice_step(1, 1, 7)));
  CHECK(nice_ticks(2, 1, 7).empty());
  CHECK(nice_ticks(0, 1, 1).empty());
  CHECK(nice_ticks(0, NAN, 7).empty());
}

TEST_CASE("report: log axes run over whole decades") {
  check_ticks(log_decades(3, 4500), {1, 10, 100, 1000, 10000});
  check_ticks(log_decades(1, 100), {1, 10, 100});           // exact powers are not widened
  check_ticks(log_decades(0.02, 0.05), {0.01, 0.1});        // within one decade: that decade
  check_ticks(log_decades(5, 5), {1, 10});                  // one value: its decade
  CHECK(log_decades(0, 10).empty());                        // 0 has no logarithm
  CHECK(log_decades(10, 1).empty());
}

TEST_CASE("report: tick labels are short and exact") {
  CHECK(tick_label(0.5) == "0.5");
  CHECK(tick_label(250) == "250");
  CHECK(tick_label(1000) == "1000");
  CHECK(tick_label(100000) == "100000");
  CHECK(tick_label(1e6) == "1e6");
  CHECK(tick_label(2.5e-5) == "2.5e-5");
  CHECK(tick_label(0.001) == "0.001");
  CHECK(tick_label(0.6000000000000001) == "0.6");
  CHECK(tick_label(-0.0) == "0");
  CHECK(tick_label(3 * 0.1 - 0.3) == "0");  // 5.5e-17: a tick at zero computed as k * step
}

TEST_CASE("report: html_escape makes input text inert") {
  CHECK(html_escape("<script>alert(\"x&y\")</script>") ==
        "&lt;script&gt;alert(&quot;x&amp;y&quot;)&lt;/script&gt;");
  CHECK(html_escape("O'Brien") == "O&#39;Brien");
  CHECK(html_escape("kidney_left") == "kidney_left");
  CHECK(html_escape("\xC3\xA9t\xC3\xA9") == "\xC3\xA9t\xC3\xA9");          // valid UTF-8 (été) is kept
  CHECK(html_escape("a\xFF" "b") == "a\xEF\xBF\xBD" "b");                 // an invalid byte becomes U+FFFD
  CHECK(html_escape("\xC0\xAF") == "\xEF\xBF\xBD\xEF\xBF\xBD");           // an overlong '/' is two bad bytes
  CHECK(html_escape("\xED\xA0\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // a UTF-16 surrogate
  CHECK(html_escape("a\x01" "b\tc\n") == "ab\tc\n");                       // control characters dropped
}

TEST_CASE("report: numbers in tables") {
  CHECK(fmt(7651.4) == "7651");
  CHECK(fmt(2.68706) == "2.687");
  CHECK(fmt(0.0009443812) == "0.0009444");  // below 1e-3: %.4g, which keeps fixed notation down to 1e-4
  CHECK(fmt(1.5e-5) == "1.5e-05");
  CHECK(fmt(2.5e7) == "2.5e+07");
  CHECK(fmt(0.996, 3) == "0.996");
  CHECK(fmt(0) == "0.000");
  CHECK(fmt(NAN) == "\xE2\x80\x94");
  CHECK(fmt_exact(0.1) == "0.1");
  CHECK(fmt_exact(INFINITY) == "\xE2\x80\x94");
}

TEST_CASE("report: box-plot quartiles (type 7)") {
  // {1, 2, 3, 4}: q1 at h = 0.75 -> 1.75, median 2.5, q3 at h = 2.25 -> 3.25.
  const auto f = five_numbers({4, NAN, 1, 3, 2});
  REQUIRE(f.size() == 5);
  CHECK(f[0] == 1);
  CHECK(f[1] == 1.75);
  CHECK(f[2] == 2.5);
  CHECK(f[3] == 3.25);
  CHECK(f[4] == 4);
  CHECK(std::isnan(five_numbers({})[2]));
}

TEST_CASE("report: the selected curve's band is the delta method on the exponential") {
  // E1: A(t) = A1 exp(-(l1 + lp) t), A1 = 100 MBq, l1 = 0.01 /h, lp = 0.005 /h. At t = 10 h:
  // A = 100 e^-0.15 = 86.0708; J = (e^-0.15, -A1 t e^-0.15) = (0.860708, -860.708);
  // u^2 = J C J^T = 0.860708^2 4 + 2 (0.860708)(-860.708)(0.001) + 860.708^2 1e-6 = 2.222455.
  // Infinite dof: k = 1.959964 (normal 97.5 % quantile).
  const nlohmann::json c = {{"function", "E1"}, {"fitted", true},
                            {"parameters", {{"A1_MBq", 100.0}, {"lambda1_bio_per_h", 0.01}}},
                            {"covariance", {{4.0, 0.001}, {0.001, 1e-6}}}, {"tia_u_dof", "infinite"}};
  const auto s = sample_candidate(c, 0.005, 20, 3, 0.95);  // t = 0, 10, 20 h
  REQUIRE(s.drawn);
  REQUIRE(s.band);
  REQUIRE(s.t_h.size() == 3);
  CHECK(s.t_h[1] == 10);
  const double a = 100 * std::exp(-0.15), e = std::exp(-0.15);
  const double u = std::sqrt(e * e * 4 + 2 * e * (-1000 * e) * 0.001 + 1e6 * e * e * 1e-6);
  // 1e-12 relative: the same few products evaluated in another order.
  CHECK(s.a_MBq[1] == doctest::Approx(a).epsilon(1e-12));
  CHECK(u == doctest::Approx(1.4907899456).epsilon(1e-9));  // the hand value above, to its 10 digits
  // 1e-6 relative: the normal quantile 1.959963985 is given to 10 digits.
  CHECK(s.high_MBq[1] == doctest::Approx(a + 1.959963985 * u).epsilon(1e-6));
  CHECK(s.low_MBq[1] == doctest::Approx(a - 1.959963985 * u).epsilon(1e-6));
  // Unknown dof: curve, no band; a compartment model: no curve.
  auto no_dof = c;
  no_dof["tia_u_dof"] = nullptr;
  const auto s2 = sample_candidate(no_dof, 0.005, 20, 3, 0.95);
  CHECK(s2.drawn);
  CHECK_FALSE(s2.band);
  CHECK(s2.band_why_not == "degrees of freedom unknown");
  CHECK_FALSE(sample_candidate({{"function", "compartment:x"}, {"fitted", true}}, 0.005, 20, 3, 0.95).drawn);
}

TEST_CASE("report: results files of another format are refused with the field named") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("lutdose-report-unit-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream((dir / name).string()) << text;
    return (dir / name).string();
  };
  auto message = [](const std::string& path) {
    try {
      load_results(path);
    } catch (const lutdose::InputError& e) {
      return std::string(e.what());
    } catch (const std::exception& e) {
      return std::string("not an InputError: ") + e.what();
    }
    return std::string("no error");
  };
  const std::string old = message(write("old.json", R"({"lutdose_version":"0.8.0","patients":[]})"));
  CHECK(old.find("format_version") != std::string::npos);
  CHECK(old.find("missing") != std::string::npos);
  // Regression: the message asked for "results.json of lutdose 0.9 or later" while lutdose 0.8.0
  // writes format_version 1: it names the format and the remedy, not a release.
  CHECK(old.find("0.9") == std::string::npos);
  CHECK(old.find("rerun lutdose run") != std::string::npos);
  CHECK(message(write("v2.json", R"({"format":"lutdose-results","format_version":2})")).find("2") != std::string::npos);
  CHECK(message(write("cut.json", R"({"format":"lutdose-res)")).find("not valid JSON") != std::string::npos);
  CHECK(message((dir / "absent").string()).find("missing") != std::string::npos);
  // Regression: a number beyond double's range was an internal error (exit 1), not bad input.
  const std::string huge = message(write("huge.json", R"({"format":"lutdose-results","format_version":1e999})"));
  CHECK(huge.rfind("not an InputError", 0) == std::string::npos);
  CHECK(huge.find("huge.json") != std::string::npos);
  CHECK(huge.find("1e999") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("report: plots escape their text and leave out what a log axis cannot show") {
  PlotSpec spec;
  spec.title = "<b>liver</b>";
  spec.log_y = true;
  Series s;
  s.kind = Series::Kind::points;
  s.css_class = "point";
  s.colour = okabe_ito()[0];
  s.x = {1, 2, 3};
  s.y = {0, 10, 100};  // 0 has no place on a log axis
  spec.series.push_back(s);
  spec.data = {{"voi", "x\"><script>"}};
  const std::string svg = render_plot(spec);
  CHECK(svg.find("<b>") == std::string::npos);
  CHECK(svg.find("&lt;b&gt;liver&lt;/b&gt;") != std::string::npos);
  CHECK(svg.find("<script>") == std::string::npos);
  std::size_t circles = 0;
  for (std::size_t at = svg.find("class=\"point\""); at != std::string::npos; at = svg.find("class=\"point\"", at + 1))
    ++circles;
  CHECK(circles == 2);
  // The y axis spans the decades 10 to 100 (the points 10 and 100): tick labels "10" and "100".
  CHECK(svg.find(">10</text>") != std::string::npos);
  CHECK(svg.find(">100</text>") != std::string::npos);
}

TEST_CASE("report: the cumulative plots show the limits of the organs at risk on their axes") {
  // Regression: the y range was capped at twice the largest point, so a limit far above the
  // cumulative doses (23 Gy against 6 Gy) fell off the plot and only its legend entry showed.
  const auto doses = [](double d, double b) {
    return nlohmann::json::array({{{"target", "kidneys"}, {"kind", "organ"}, {"dose_Gy", d}, {"bed_Gy", b}}});
  };
  nlohmann::json patient = {{"id", "P1"},
                            {"cycles", nlohmann::json::array({{{"cycle", 1}, {"vois", nlohmann::json::array()}, {"doses", doses(3, 3.2)}},
                                                              {{"cycle", 2}, {"vois", nlohmann::json::array()}, {"doses", doses(3, 3.2)}}})},
                            {"cumulative", {{"doses", doses(6, 6.4)}}}};
  const nlohmann::json doc = {{"patients", nlohmann::json::array({patient})}};
  ReportContext ctx;
  ctx.limits = {{"kidney*", "dose_Gy", 23, "test"}, {"kidney*", "bed_Gy", 40, "test"}};
  const std::string html = patient_report_html(doc, ctx);
  const auto plot_of = [&](const std::string& title) {
    const auto at = html.find(title);
    REQUIRE(at != std::string::npos);
    return html.substr(at, html.find("</svg>", at) - at);
  };
  // Nice ticks of [0, 23] with at most 7: step 5, up to 25; of [0, 40]: step 10, up to 40.
  // Without the limits the axes end at 14 (dose, 2 x 6 Gy) and 14 (BED, 2 x 6.4 Gy).
  CHECK(plot_of("Cumulative absorbed dose of the organs at risk").find(">25</text>") != std::string::npos);
  CHECK(plot_of("Cumulative BED of the organs at risk").find(">40</text>") != std::string::npos);
  // A limit is not drawn on the plot's frame: 5 % headroom above it, [0, 42] has ticks up to 50.
  CHECK(plot_of("Cumulative BED of the organs at risk").find(">50</text>") != std::string::npos);
  // The x axis counts cycles: ticks at whole numbers only (0, 1, 2), no "after cycle 0.5".
  CHECK(plot_of("Cumulative absorbed dose of the organs at risk").find(">0.5</text>") == std::string::npos);
  CHECK(plot_of("Cumulative absorbed dose of the organs at risk").find(">1</text>") != std::string::npos);
}

TEST_CASE("report: lutdose plot names the option that matches nothing and lists what there is") {
  // Regression: a --patient or --cycle the results do not hold was reported as a missing --voi
  // with "expected a VOI of the results: none", and the file was called "results".
  const nlohmann::json doc = {
      {"patients", nlohmann::json::array({{{"id", "P1"},
                                           {"cycles", nlohmann::json::array({{{"cycle", 1},
                                                                             {"vois", nlohmann::json::array({{{"name", "liver"}}})}}})}}})}};
  auto message = [&](const std::string& patient, const std::string& voi, int cycle) {
    try {
      voi_plot_svg(doc, patient, voi, cycle, false, "dir/results.json");
    } catch (const lutdose::InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::string patient = message("NOPE", "liver", 0);
  CHECK(patient.find("dir/results.json") != std::string::npos);
  CHECK(patient.find("--patient") != std::string::npos);
  CHECK(patient.find("NOPE") != std::string::npos);
  CHECK(patient.find("P1") != std::string::npos);
  const std::string cycle = message("", "liver", 5);
  CHECK(cycle.find("--cycle") != std::string::npos);
  CHECK(cycle.find("'5'") != std::string::npos);
  CHECK(cycle.find(": 1") != std::string::npos);
  const std::string voi = message("P1", "brain", 1);
  CHECK(voi.find("--voi") != std::string::npos);
  CHECK(voi.find("liver") != std::string::npos);
}

TEST_CASE("report: a PNG gets lutdose's text chunk after its IHDR") {
  // A PNG's first 33 bytes: signature, IHDR (length 13, type, 13 data bytes, CRC); then the rest.
  const std::string head = std::string("\x89PNG\r\n\x1a\n", 8) + std::string("\0\0\0\x0d", 4) + "IHDR" +
                           std::string(13, 'h') + "CRC!";
  const std::string png = head + "IDAT...";
  const std::string marked = png_with_text(png, "Software", "lutdose plot");
  // Chunk: length 21 ("Software" + NUL + "lutdose plot"), "tEXt", data, CRC-32 of type and data:
  // 0x64e81bb2, computed independently with Python's zlib.crc32(b"tEXtSoftware\0lutdose plot").
  const std::string chunk = std::string("\0\0\0\x15", 4) + "tEXtSoftware" + std::string(1, '\0') + "lutdose plot" +
                            std::string("\x64\xe8\x1b\xb2", 4);
  CHECK(marked == head + chunk + "IDAT...");
  CHECK_THROWS_AS(png_with_text("GIF89a", "Software", "x"), std::invalid_argument);
}

TEST_CASE("report: a page Chromium is given that cannot be written whole is an error, not a short PDF") {
  // Regression: the page went to Chromium through an unchecked std::ofstream, so a full temporary
  // disk gave a PDF of a truncated page without an error. Here a file-size limit (RLIMIT_FSIZE, with
  // SIGXFSZ ignored so the write fails with EFBIG) lets the stand-in Chromium write its 4-byte PDF
  // but not the 64 KiB page.
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("lutdose-test-chromium-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path fake = dir / "chromium";
  std::ofstream(fake) << "#!/bin/sh\nfor a; do case \"$a\" in --print-to-pdf=*) printf '%%PDF' > \"${a#--print-to-pdf=}\";; "
                         "esac; done\n";
  fs::permissions(fake, fs::perms::owner_all);
  ::setenv("LUTDOSE_CHROMIUM", fake.c_str(), 1);
  const std::string page(64 * 1024, 'x');
  CHECK(html_to_pdf(page) == "%PDF");  // the stand-in works without a limit
  struct rlimit old{};
  REQUIRE(::getrlimit(RLIMIT_FSIZE, &old) == 0);
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old;
  small.rlim_cur = 4096;
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
  std::string message;
  try {
    html_to_pdf(page);
  } catch (const std::exception& e) {
    message = e.what();
  }
  ::setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, old_handler);
  ::unsetenv("LUTDOSE_CHROMIUM");
  fs::remove_all(dir);
  CHECK(message.find("cannot write") != std::string::npos);
  CHECK(message.find("page.html") != std::string::npos);
}
