// SVG plots drawn by lutdose (docs/report.md): scatter points with error bars, curves, bands,
// horizontal bar charts and box plots, with axes in units, readable tick labels (nice linear
// ticks, log-scale decades) and a legend. Colours: the Okabe-Ito palette, safe for the common
// colour-vision deficiencies (Okabe M, Ito K. Color Universal Design (CUD): how to make figures
// and presentations that are friendly to colorblind people. 2008, https://jfly.uni-koeln.de/color/;
// Wong B. Points of view: Color blindness. Nat Methods 2011;8:441).
//
// Every string that reaches the SVG is escaped (html_escape). The elements carry classes for
// styling and tests: "point", "errorbar", "curve", "band", "bar", "box", "tick", "legend".
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace lutdose::report {

//! The eight Okabe-Ito colours (#RRGGBB): black, orange, sky blue, bluish green, yellow, blue,
//! vermillion, reddish purple. Throws nothing.
const std::vector<std::string>& okabe_ito();

//! A "nice" tick step for [lo, hi] with at most max_ticks ticks: 1, 2 or 5 times a power of ten,
//! the smallest such step giving no more than max_ticks ticks. NaN when the range is not finite,
//! hi <= lo, or max_ticks < 2. Throws nothing.
double nice_step(double lo, double hi, int max_ticks);

//! Linear axis ticks: multiples of nice_step(lo, hi, max_ticks) from the largest multiple <= lo
//! to the smallest >= hi (the axis is extended to them). Empty when nice_step is NaN. Throws nothing.
std::vector<double> nice_ticks(double lo, double hi, int max_ticks);

//! Log axis ticks: the powers of ten from the largest <= lo to the smallest >= hi (lo > 0); at
//! least two. Empty when lo <= 0, hi < lo or either is not finite. Throws nothing.
std::vector<double> log_decades(double lo, double hi);

//! A tick label: the shortest of fixed notation with up to 6 significant digits ("0.5", "250",
//! "1000", "0.001") and, for |v| >= 1e6 or 0 < |v| < 1e-3, "1e6" / "2.5e-4" forms. Exact zero
//! prints "0" (also -0 and values within 1e-12 of a step of a tick series). Throws nothing.
std::string tick_label(double v);

//! One series of a plot.
struct Series {
  enum class Kind { points, line, band };
  Kind kind = Kind::line;
  std::string label;      //!< legend text (empty: not in the legend)
  std::string css_class;  //!< class attribute of the series' elements ("point", "curve candidate", ...)
  std::string colour;     //!< #RRGGBB
  std::vector<double> x, y;          //!< points and lines
  std::vector<double> low, high;     //!< points: error bar ends (NaN: none); band: lower/upper curve
  bool dashed = false;
  double stroke_width = 1.5;
  std::vector<std::pair<std::string, std::string>> data;  //!< data-* attributes of the series' group
  bool reference = false;  //!< a reference line (e.g. a limit): inside the y range with 5 % headroom
};

//! A line plot (x linear; y linear or log).
struct PlotSpec {
  std::string title, x_label, y_label;  //!< labels carry their units, e.g. "time [h]"
  bool log_y = false;
  bool zero_line = false;  //!< a horizontal line at y = 0 (residual plots)
  bool integer_x = false;  //!< x counts something (cycles): ticks at whole numbers only
  double width = 520, height = 330;
  std::vector<std::pair<std::string, std::string>> data;  //!< data-* attributes of the <svg>
  std::vector<Series> series;
  std::string note;  //!< a line of text under the plot (e.g. points not shown on a log scale)
};

//! The plot as an <svg> element (inline SVG, no external resources). A log-scale y skips values
//! <= 0 (the caller says so in `note`). An empty plot (no finite data) draws its axes and the text
//! "no data". Throws nothing.
std::string render_plot(const PlotSpec& spec);

//! One bar of a horizontal bar chart; value NaN draws no bar and prints `unknown_text`.
struct Bar {
  std::string label;
  double value = 0;
  std::string colour;
  std::string unknown_text = "unknown";
};

//! A horizontal bar chart (e.g. an uncertainty budget): one row per bar, labels on the left, the
//! value axis (x_label with unit) at the bottom starting at 0. Throws nothing.
std::string render_bar_chart(const std::string& title, const std::string& x_label, const std::vector<Bar>& bars,
                             const std::vector<std::pair<std::string, std::string>>& data = {});

//! One box of a box plot: the values of one group (NaN values are left out and counted).
struct BoxGroup {
  std::string label;
  std::vector<double> values;
};

//! Quartiles (type 7, linear interpolation as R's default and numpy's) of sorted finite values:
//! {min, q1, median, q3, max}; NaNs when empty. Throws nothing.
std::vector<double> five_numbers(std::vector<double> sorted_values);

//! Horizontal box plots (Tukey: whiskers to the most extreme value within 1.5 IQR of the box,
//! points beyond drawn singly), one row per group, with n per group. Throws nothing.
std::string render_box_plot(const std::string& title, const std::string& x_label, const std::vector<BoxGroup>& groups,
                            const std::vector<std::pair<std::string, std::string>>& data = {});

}  // namespace lutdose::report
