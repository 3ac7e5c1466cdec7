// SVG plots (report/svg_plot.h).
#include "lutdose/report/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <sstream>

#include "lutdose/report/html.h"

namespace lutdose::report {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kLeft = 72, kRight = 16, kTop = 28, kBottom = 46, kLegendRow = 16;

// A coordinate for SVG attributes: 2 decimals are far below a pixel.
std::string c2(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", v);
  return b;
}

std::string data_attributes(const std::vector<std::pair<std::string, std::string>>& data) {
  std::string s;
  for (const auto& [k, v] : data) s += " data-" + html_escape(k) + "=\"" + html_escape(v) + "\"";
  return s;
}

// An axis: data range [lo, hi] mapped to pixels [p0, p1]; log or linear.
struct Axis {
  double lo = 0, hi = 1, p0 = 0, p1 = 1;
  bool log = false;
  std::vector<double> ticks;
  double to_px(double v) const {
    const double f = log ? (std::log10(v) - std::log10(lo)) / (std::log10(hi) - std::log10(lo)) : (v - lo) / (hi - lo);
    return p0 + f * (p1 - p0);
  }
  bool shows(double v) const { return std::isfinite(v) && (!log || v > 0); }
};

Axis make_axis(double lo, double hi, bool log, double p0, double p1, bool include_zero) {
  Axis a;
  a.log = log;
  a.p0 = p0;
  a.p1 = p1;
  if (!(lo <= hi) || !std::isfinite(lo) || !std::isfinite(hi)) { lo = log ? 1 : 0; hi = log ? 10 : 1; }
  if (include_zero && !log) { lo = std::min(lo, 0.0); hi = std::max(hi, 0.0); }
  if (hi == lo) {
    hi = log ? lo * 10 : lo + std::max(1.0, std::fabs(lo));
    if (!log && lo > 0 && include_zero) lo = 0;
  }
  a.ticks = log ? log_decades(lo, hi) : nice_ticks(lo, hi, 7);
  if (a.ticks.size() >= 2) { a.lo = a.ticks.front(); a.hi = a.ticks.back(); }
  else { a.lo = lo; a.hi = hi; }
  return a;
}

// The finite data range of the plot's series along x or y (y only where the axis can show it).
// Curves and bands may not widen the y range beyond 30x below (log) or 2x above the points and
// their error bars: a poor candidate fit may run far off, and the data must stay readable.
// Reference lines (limits) are always inside: a limit cut off the plot would hide the margin.
std::pair<double, double> data_range(const PlotSpec& spec, bool y) {
  const double inf = std::numeric_limits<double>::infinity();
  double lo = inf, hi = -inf, plo = inf, phi = -inf, rlo = inf, rhi = -inf;
  auto take = [&](double v, bool point) {
    if (!std::isfinite(v) || (y && spec.log_y && v <= 0)) return;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
    if (point) { plo = std::min(plo, v); phi = std::max(phi, v); }
  };
  for (const auto& s : spec.series) {
    const bool point = s.kind == Series::Kind::points;
    for (double v : (y ? s.y : s.x)) {
      take(v, point);
      if (s.reference && std::isfinite(v) && !(spec.log_y && v <= 0)) { rlo = std::min(rlo, v); rhi = std::max(rhi, v); }
    }
    if (y) {
      for (double v : s.low) take(v, point);
      for (double v : s.high) take(v, point);
    }
  }
  if (y && std::isfinite(plo)) {
    if (spec.log_y) lo = std::max(lo, plo / 30);
    if (phi > 0) hi = std::min(hi, 2 * phi);
  }
  return {std::min(lo, rlo), std::max(hi, rhi > 0 ? 1.05 * rhi : rhi)};  // headroom: a limit not on the frame
}

std::string axes_svg(const Axis& ax, const Axis& ay, const PlotSpec& spec) {
  std::ostringstream o;
  o << "<g class=\"axes\" stroke=\"#000\" stroke-width=\"1\" font-size=\"11\">";
  o << "<rect x=\"" << c2(ax.p0) << "\" y=\"" << c2(ay.p1) << "\" width=\"" << c2(ax.p1 - ax.p0) << "\" height=\""
    << c2(ay.p0 - ay.p1) << "\" fill=\"none\"/>";
  for (double t : ax.ticks) {
    const double px = ax.to_px(t);
    o << "<line class=\"tick\" x1=\"" << c2(px) << "\" x2=\"" << c2(px) << "\" y1=\"" << c2(ay.p0) << "\" y2=\""
      << c2(ay.p0 + 4) << "\"/><text class=\"tick\" stroke=\"none\" text-anchor=\"middle\" x=\"" << c2(px)
      << "\" y=\"" << c2(ay.p0 + 16) << "\">" << tick_label(t) << "</text>";
  }
  for (double t : ay.ticks) {
    const double py = ay.to_px(t);
    o << "<line class=\"grid\" stroke=\"#ddd\" x1=\"" << c2(ax.p0) << "\" x2=\"" << c2(ax.p1) << "\" y1=\"" << c2(py)
      << "\" y2=\"" << c2(py) << "\"/><line class=\"tick\" x1=\"" << c2(ax.p0 - 4) << "\" x2=\"" << c2(ax.p0)
      << "\" y1=\"" << c2(py) << "\" y2=\"" << c2(py) << "\"/><text class=\"tick\" stroke=\"none\" "
      << "text-anchor=\"end\" x=\"" << c2(ax.p0 - 6) << "\" y=\"" << c2(py + 4) << "\">" << tick_label(t) << "</text>";
  }
  if (spec.zero_line && !ay.log && ay.lo < 0 && ay.hi > 0)
    o << "<line class=\"zero\" stroke=\"#555\" stroke-dasharray=\"2,2\" x1=\"" << c2(ax.p0) << "\" x2=\"" << c2(ax.p1)
      << "\" y1=\"" << c2(ay.to_px(0)) << "\" y2=\"" << c2(ay.to_px(0)) << "\"/>";
  o << "<text stroke=\"none\" text-anchor=\"middle\" font-size=\"12\" x=\"" << c2((ax.p0 + ax.p1) / 2) << "\" y=\""
    << c2(ay.p0 + 34) << "\">" << html_escape(spec.x_label) << "</text>";
  o << "<text stroke=\"none\" text-anchor=\"middle\" font-size=\"12\" transform=\"translate(14," << c2((ay.p0 + ay.p1) / 2)
    << ") rotate(-90)\">" << html_escape(spec.y_label) << "</text></g>";
  return o.str();
}

std::string points_svg(const Series& s, const Axis& ax, const Axis& ay) {
  std::ostringstream o;
  for (std::size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
    if (!ax.shows(s.x[i]) || !ay.shows(s.y[i])) continue;
    const double px = ax.to_px(s.x[i]), py = ay.to_px(s.y[i]);
    const double lo = i < s.low.size() ? s.low[i] : kNaN, hi = i < s.high.size() ? s.high[i] : kNaN;
    if (std::isfinite(lo) && std::isfinite(hi) && hi > lo) {
      const double plo = ay.shows(lo) ? ay.to_px(lo) : ay.p0, phi = ay.to_px(std::min(hi, ay.hi));
      o << "<path class=\"errorbar\" stroke=\"" << s.colour << "\" d=\"M" << c2(px) << ' ' << c2(plo) << 'V' << c2(phi)
        << "M" << c2(px - 3) << ' ' << c2(plo) << 'h' << 6 << "M" << c2(px - 3) << ' ' << c2(phi) << "h6\"/>";
    }
    o << "<circle class=\"" << html_escape(s.css_class) << "\" cx=\"" << c2(px) << "\" cy=\"" << c2(py)
      << "\" r=\"3.5\" fill=\"" << s.colour << "\" data-x=\"" << fmt_exact(s.x[i]) << "\" data-y=\"" << fmt_exact(s.y[i])
      << "\"/>";
  }
  return o.str();
}

// An SVG path through the points inside the axes; a point outside them breaks the line.
std::string path_through(const std::vector<double>& x, const std::vector<double>& y, const Axis& ax, const Axis& ay) {
  std::string d;
  bool pen_down = false;
  const double ylo = std::min(ay.lo, ay.hi), yhi = std::max(ay.lo, ay.hi);
  for (std::size_t i = 0; i < x.size() && i < y.size(); ++i) {
    const bool inside = ax.shows(x[i]) && ay.shows(y[i]) && y[i] >= ylo * (1 - 1e-9) && y[i] <= yhi * (1 + 1e-9);
    if (!inside) { pen_down = false; continue; }
    d += (pen_down ? 'L' : 'M') + c2(ax.to_px(x[i])) + ' ' + c2(ay.to_px(y[i])) + ' ';
    pen_down = true;
  }
  return d;
}

// A closed polygon's points, each clamped into the axes (bands).
std::string polygon_points(const std::vector<double>& x, const std::vector<double>& y, const Axis& ax, const Axis& ay) {
  std::string pts;
  for (std::size_t i = 0; i < x.size() && i < y.size(); ++i) {
    if (!ax.shows(x[i]) || !std::isfinite(y[i])) continue;
    const double py = ay.shows(y[i]) ? ay.to_px(y[i]) : ay.p0;
    pts += c2(ax.to_px(x[i])) + ',' + c2(std::clamp(py, ay.p1, ay.p0)) + ' ';
  }
  return pts;
}

std::string series_svg(const Series& s, const Axis& ax, const Axis& ay) {
  std::ostringstream o;
  o << "<g" << data_attributes(s.data) << ">";
  if (s.kind == Series::Kind::points) {
    o << points_svg(s, ax, ay);
  } else if (s.kind == Series::Kind::line) {
    o << "<path class=\"" << html_escape(s.css_class) << "\" fill=\"none\" stroke=\"" << s.colour
      << "\" stroke-width=\"" << c2(s.stroke_width) << "\"" << (s.dashed ? " stroke-dasharray=\"6,3\"" : "")
      << " d=\"" << path_through(s.x, s.y, ax, ay) << "\"/>";
  } else {
    std::vector<double> bx(s.x), by(s.high);
    for (std::size_t i = s.x.size(); i-- > 0;) {
      bx.push_back(s.x[i]);
      by.push_back(i < s.low.size() ? s.low[i] : kNaN);
    }
    o << "<polygon class=\"" << html_escape(s.css_class) << "\" fill=\"" << s.colour << "\" fill-opacity=\"0.2\" "
      << "stroke=\"none\" points=\"" << polygon_points(bx, by, ax, ay) << "\"/>";
  }
  o << "</g>";
  return o.str();
}

std::string legend_svg(const PlotSpec& spec, double y0) {
  std::ostringstream o;
  o << "<g class=\"legend\" font-size=\"11\">";
  double x = kLeft, y = y0;
  for (const auto& s : spec.series) {
    if (s.label.empty()) continue;
    const double w = 30 + 6.2 * static_cast<double>(s.label.size());
    if (x + w > spec.width && x > kLeft) { x = kLeft; y += kLegendRow; }
    if (s.kind == Series::Kind::points)
      o << "<circle cx=\"" << c2(x + 8) << "\" cy=\"" << c2(y - 4) << "\" r=\"3.5\" fill=\"" << s.colour << "\"/>";
    else if (s.kind == Series::Kind::band)
      o << "<rect x=\"" << c2(x) << "\" y=\"" << c2(y - 9) << "\" width=\"16\" height=\"10\" fill=\"" << s.colour
        << "\" fill-opacity=\"0.2\"/>";
    else
      o << "<line x1=\"" << c2(x) << "\" x2=\"" << c2(x + 16) << "\" y1=\"" << c2(y - 4) << "\" y2=\"" << c2(y - 4)
        << "\" stroke=\"" << s.colour << "\" stroke-width=\"" << c2(s.stroke_width) << "\""
        << (s.dashed ? " stroke-dasharray=\"6,3\"" : "") << "/>";
    o << "<text x=\"" << c2(x + 21) << "\" y=\"" << c2(y) << "\">" << html_escape(s.label) << "</text>";
    x += w;
  }
  o << "</g>";
  return o.str();
}

int legend_rows(const PlotSpec& spec) {
  int rows = 0;
  double x = kLeft;
  for (const auto& s : spec.series) {
    if (s.label.empty()) continue;
    const double w = 30 + 6.2 * static_cast<double>(s.label.size());
    if (rows == 0) rows = 1;
    if (x + w > spec.width && x > kLeft) { x = kLeft; ++rows; }
    x += w;
  }
  return rows;
}

}  // namespace

const std::vector<std::string>& okabe_ito() {
  static const std::vector<std::string> colours{"#000000", "#E69F00", "#56B4E9", "#009E73",
                                                "#F0E442", "#0072B2", "#D55E00", "#CC79A7"};
  return colours;
}

double nice_step(double lo, double hi, int max_ticks) {
  if (!std::isfinite(lo) || !std::isfinite(hi) || !(hi > lo) || max_ticks < 2) return kNaN;
  const double raw = (hi - lo) / (max_ticks - 1);
  double base = std::pow(10.0, std::floor(std::log10(raw)));
  for (int guard = 0; guard < 4; ++guard, base *= 10)
    for (double m : {1.0, 2.0, 5.0}) {
      const double step = m * base;
      const double n = std::ceil(hi / step - 1e-9) - std::floor(lo / step + 1e-9) + 1;
      if (n <= max_ticks) return step;
    }
  return kNaN;
}

std::vector<double> nice_ticks(double lo, double hi, int max_ticks) {
  const double step = nice_step(lo, hi, max_ticks);
  if (!std::isfinite(step)) return {};
  const auto first = static_cast<long long>(std::floor(lo / step + 1e-9));
  const auto last = static_cast<long long>(std::ceil(hi / step - 1e-9));
  std::vector<double> t;
  for (long long k = first; k <= last; ++k) t.push_back(static_cast<double>(k) * step);
  return t;
}

std::vector<double> log_decades(double lo, double hi) {
  if (!std::isfinite(lo) || !std::isfinite(hi) || lo <= 0 || hi < lo) return {};
  // 1e-9 relative slack: log10 of an exact power of ten may come out a hair off an integer.
  const int first = static_cast<int>(std::floor(std::log10(lo) + 1e-9));
  int last = static_cast<int>(std::ceil(std::log10(hi) - 1e-9));
  if (last <= first) last = first + 1;
  std::vector<double> t;
  for (int e = first; e <= last; ++e) t.push_back(std::pow(10.0, e));
  return t;
}

std::string tick_label(double v) {
  if (!std::isfinite(v)) return "";
  if (std::fabs(v) < 1e-12) return "0";
  char b[48];
  const double a = std::fabs(v);
  if (a >= 1e6 || a < 1e-3) {
    std::snprintf(b, sizeof b, "%.3g", v);  // "1e+06", "2.5e-05"
    const std::string s = b;
    const auto e = s.find('e');
    if (e == std::string::npos) return s;
    return s.substr(0, e) + "e" + std::to_string(std::atoi(s.c_str() + e + 1));  // "1e6", "2.5e-5"
  }
  std::snprintf(b, sizeof b, "%.6g", v);
  return b;
}

std::string render_plot(const PlotSpec& spec) {
  const int rows = legend_rows(spec);
  const double plot_bottom = spec.height - kBottom;
  const double total_h = spec.height + rows * kLegendRow + (spec.note.empty() ? 0 : kLegendRow);
  const auto [xlo, xhi] = data_range(spec, false);
  const auto [ylo, yhi] = data_range(spec, true);
  Axis ax = make_axis(xlo, xhi, false, kLeft, spec.width - kRight, true);
  if (spec.integer_x)
    ax.ticks.erase(std::remove_if(ax.ticks.begin(), ax.ticks.end(),  // ticks are k * step: 1e-9 absorbs rounding
                                  [](double t) { return std::fabs(t - std::round(t)) > 1e-9; }),
                   ax.ticks.end());
  const Axis ay = make_axis(ylo, yhi, spec.log_y, plot_bottom, kTop, !spec.log_y);
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"plot\" width=\"" << c2(spec.width) << "\" height=\""
    << c2(total_h) << "\" viewBox=\"0 0 " << c2(spec.width) << ' ' << c2(total_h) << "\" font-family=\"sans-serif\""
    << data_attributes(spec.data) << " data-scale=\"" << (spec.log_y ? "log" : "linear") << "\">";
  o << "<title>" << html_escape(spec.title) << "</title>";
  o << "<text x=\"" << c2(kLeft) << "\" y=\"16\" font-size=\"13\" font-weight=\"bold\">" << html_escape(spec.title)
    << "</text>";
  o << axes_svg(ax, ay, spec);
  if (!std::isfinite(xlo) || !std::isfinite(ylo))
    o << "<text x=\"" << c2((ax.p0 + ax.p1) / 2) << "\" y=\"" << c2((ay.p0 + ay.p1) / 2)
      << "\" text-anchor=\"middle\" font-size=\"12\">no data</text>";
  o << "<g class=\"series\">";
  for (const auto& s : spec.series)
    if (s.kind == Series::Kind::band) o << series_svg(s, ax, ay);  // bands under lines and points
  for (const auto& s : spec.series)
    if (s.kind == Series::Kind::line) o << series_svg(s, ax, ay);
  for (const auto& s : spec.series)
    if (s.kind == Series::Kind::points) o << series_svg(s, ax, ay);
  o << "</g>" << legend_svg(spec, spec.height + 2);
  if (!spec.note.empty())
    o << "<text class=\"note\" x=\"" << c2(kLeft) << "\" y=\"" << c2(total_h - 4) << "\" font-size=\"11\">"
      << html_escape(spec.note) << "</text>";
  o << "</svg>";
  return o.str();
}

namespace {

constexpr double kLabelWidth = 190, kRowHeight = 22, kChartWidth = 620;

// The opening of a chart's <svg> with its title; `rows` rows of kRowHeight under it.
std::string chart_open(const std::string& title, std::size_t rows,
                       const std::vector<std::pair<std::string, std::string>>& data, const std::string& css_class) {
  const double h = kTop + static_cast<double>(rows) * kRowHeight + kBottom;
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"" << css_class << "\" width=\"" << c2(kChartWidth)
    << "\" height=\"" << c2(h) << "\" viewBox=\"0 0 " << c2(kChartWidth) << ' ' << c2(h)
    << "\" font-family=\"sans-serif\" font-size=\"11\"" << data_attributes(data) << "><title>" << html_escape(title)
    << "</title><text x=\"4\" y=\"16\" font-size=\"13\" font-weight=\"bold\">" << html_escape(title) << "</text>";
  return o.str();
}

// The value axis of a chart at the bottom of `rows` rows: ticks, labels and the axis label.
std::string value_axis(const Axis& ax, std::size_t rows, const std::string& x_label) {
  const double y = kTop + static_cast<double>(rows) * kRowHeight;
  std::ostringstream o;
  o << "<g class=\"axes\" stroke=\"#000\"><line x1=\"" << c2(ax.p0) << "\" x2=\"" << c2(ax.p1) << "\" y1=\"" << c2(y)
    << "\" y2=\"" << c2(y) << "\"/>";
  for (double t : ax.ticks)
    o << "<line class=\"grid\" stroke=\"#ddd\" x1=\"" << c2(ax.to_px(t)) << "\" x2=\"" << c2(ax.to_px(t))
      << "\" y1=\"" << c2(kTop) << "\" y2=\"" << c2(y + 4) << "\"/><text class=\"tick\" stroke=\"none\" "
      << "text-anchor=\"middle\" x=\"" << c2(ax.to_px(t)) << "\" y=\"" << c2(y + 16) << "\">" << tick_label(t)
      << "</text>";
  o << "<text stroke=\"none\" text-anchor=\"middle\" font-size=\"12\" x=\"" << c2((ax.p0 + ax.p1) / 2)
    << "\" y=\"" << c2(y + 34) << "\">" << html_escape(x_label) << "</text></g>";
  return o.str();
}

// Row label at the left of row `i`.
std::string row_label(std::size_t i, const std::string& label) {
  const double y = kTop + (static_cast<double>(i) + 0.5) * kRowHeight + 4;
  return "<text text-anchor=\"end\" x=\"" + c2(kLabelWidth - 6) + "\" y=\"" + c2(y) + "\">" + html_escape(label) +
         "</text>";
}

}  // namespace

std::string render_bar_chart(const std::string& title, const std::string& x_label, const std::vector<Bar>& bars,
                             const std::vector<std::pair<std::string, std::string>>& data) {
  double hi = 0;
  for (const auto& b : bars)
    if (std::isfinite(b.value)) hi = std::max(hi, b.value);
  const Axis ax = make_axis(0, hi > 0 ? hi : 1, false, kLabelWidth, kChartWidth - 60, true);
  std::ostringstream o;
  o << chart_open(title, bars.size(), data, "chart bars");
  for (std::size_t i = 0; i < bars.size(); ++i) {
    const auto& b = bars[i];
    const double y = kTop + static_cast<double>(i) * kRowHeight + 4;
    o << row_label(i, b.label);
    if (std::isfinite(b.value)) {
      const double w = std::max(0.0, ax.to_px(b.value) - ax.p0);
      o << "<rect class=\"bar\" x=\"" << c2(ax.p0) << "\" y=\"" << c2(y) << "\" width=\"" << c2(w)
        << "\" height=\"" << c2(kRowHeight - 8) << "\" fill=\"" << b.colour << "\" data-value=\"" << fmt_exact(b.value)
        << "\"/><text x=\"" << c2(ax.p0 + w + 4) << "\" y=\"" << c2(y + 11) << "\">" << fmt(b.value, 3) << "</text>";
    } else {
      o << "<text class=\"unknown\" x=\"" << c2(ax.p0 + 4) << "\" y=\"" << c2(y + 11) << "\">"
        << html_escape(b.unknown_text) << "</text>";
    }
  }
  o << value_axis(ax, bars.size(), x_label) << "</svg>";
  return o.str();
}

std::vector<double> five_numbers(std::vector<double> v) {
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return !std::isfinite(x); }), v.end());
  if (v.empty()) return std::vector<double>(5, kNaN);
  std::sort(v.begin(), v.end());
  auto q = [&](double p) {
    const double h = (static_cast<double>(v.size()) - 1) * p;
    const auto k = static_cast<std::size_t>(std::floor(h));
    return k + 1 < v.size() ? v[k] + (h - static_cast<double>(k)) * (v[k + 1] - v[k]) : v[k];
  };
  return {v.front(), q(0.25), q(0.5), q(0.75), v.back()};
}

namespace {

// One box of a box plot in row `i` (Tukey whiskers; outliers singly).
std::string box_svg(std::size_t i, const std::vector<double>& values, const Axis& ax, const std::string& colour) {
  const auto f = five_numbers(values);
  if (!std::isfinite(f[0])) return "";
  const double iqr = f[3] - f[1], fence_lo = f[1] - 1.5 * iqr, fence_hi = f[3] + 1.5 * iqr;
  double wlo = f[2], whi = f[2];
  for (double v : values)
    if (std::isfinite(v) && v >= fence_lo && v <= fence_hi) { wlo = std::min(wlo, v); whi = std::max(whi, v); }
  const double y0 = kTop + static_cast<double>(i) * kRowHeight + 4, ym = y0 + (kRowHeight - 8) / 2;
  std::ostringstream o;
  o << "<g class=\"box\" data-median=\"" << fmt_exact(f[2]) << "\" data-q1=\"" << fmt_exact(f[1]) << "\" data-q3=\""
    << fmt_exact(f[3]) << "\"><path stroke=\"#000\" d=\"M" << c2(ax.to_px(wlo)) << ' ' << c2(ym) << 'H'
    << c2(ax.to_px(f[1])) << 'M' << c2(ax.to_px(f[3])) << ' ' << c2(ym) << 'H' << c2(ax.to_px(whi)) << "\"/>";
  o << "<rect x=\"" << c2(ax.to_px(f[1])) << "\" y=\"" << c2(y0) << "\" width=\"" << c2(ax.to_px(f[3]) - ax.to_px(f[1]))
    << "\" height=\"" << c2(kRowHeight - 8) << "\" fill=\"" << colour << "\" fill-opacity=\"0.5\" stroke=\"#000\"/>";
  o << "<line stroke=\"#000\" stroke-width=\"2\" x1=\"" << c2(ax.to_px(f[2])) << "\" x2=\"" << c2(ax.to_px(f[2]))
    << "\" y1=\"" << c2(y0) << "\" y2=\"" << c2(y0 + kRowHeight - 8) << "\"/>";
  for (double v : values)
    if (std::isfinite(v) && (v < fence_lo || v > fence_hi))
      o << "<circle class=\"outlier\" cx=\"" << c2(ax.to_px(v)) << "\" cy=\"" << c2(ym) << "\" r=\"2\" fill=\"none\" "
        << "stroke=\"#000\"/>";
  o << "</g>";
  return o.str();
}

}  // namespace

std::string render_box_plot(const std::string& title, const std::string& x_label, const std::vector<BoxGroup>& groups,
                            const std::vector<std::pair<std::string, std::string>>& data) {
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (const auto& g : groups)
    for (double v : g.values)
      if (std::isfinite(v)) { lo = std::min(lo, v); hi = std::max(hi, v); }
  const Axis ax = make_axis(lo, hi, false, kLabelWidth, kChartWidth - 70, true);
  std::ostringstream o;
  o << chart_open(title, groups.size(), data, "chart boxes");
  for (std::size_t i = 0; i < groups.size(); ++i) {
    std::size_t n = 0;
    for (double v : groups[i].values) n += std::isfinite(v) ? 1 : 0;
    o << row_label(i, groups[i].label) << box_svg(i, groups[i].values, ax, okabe_ito()[1 + i % 7]);
    o << "<text x=\"" << c2(kChartWidth - 64) << "\" y=\"" << c2(kTop + (static_cast<double>(i) + 0.5) * kRowHeight + 4)
      << "\">n = " << n << "</text>";
  }
  o << value_axis(ax, groups.size(), x_label) << "</svg>";
  return o.str();
}

}  // namespace lutdose::report
