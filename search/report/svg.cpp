#include "search/report/svg.h"

// The plot area is fixed (kPlot*); each axis is fitted to the data with a little padding and
// ticks at 1, 2 or 5 times a power of ten. Markers are drawn in order of importance (evaluations
// first, the baseline last) so that the ones that matter stay on top.

#include <algorithm>
#include <cmath>
#include <ostream>
#include <sstream>

#include "search/report/format.h"

namespace tightfit::search::report {

namespace {

// Chart geometry, in SVG user units (px at 100% zoom).
constexpr double kChartWidth = 650;
constexpr double kChartHeight = 400;
constexpr double kPlotLeft = 60;
constexpr double kPlotTop = 16;
constexpr double kPlotWidth = 400;
constexpr double kPlotHeight = 320;
constexpr double kLegendLeft = kPlotLeft + kPlotWidth + 20;
constexpr int kTargetTicks = 6;
// Share of the data range added on each side so that points do not sit on the axes.
constexpr double kRangePad = 0.04;
constexpr double kPi = 3.14159265358979323846;

std::string coord(double v) { return printf_str("%.1f", v); }

struct Axis {
  double lo = 0, hi = 1;
  std::vector<double> ticks;
  int decimals = 0;
};

/// Ticks at 1, 2 or 5 times a power of ten covering [lo, hi].
Axis nice_axis(double lo, double hi) {
  const bool non_negative = lo >= 0;
  if (!(hi > lo)) {
    const double half = lo != 0 ? std::fabs(lo) * 0.1 : 1.0;
    lo -= half;
    hi += half;
  }
  const double pad = (hi - lo) * kRangePad;
  lo -= pad;
  hi += pad;
  const double raw = (hi - lo) / (kTargetTicks - 1);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / mag;
  const double step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
  Axis a;
  a.lo = std::floor(lo / step) * step;
  if (non_negative) a.lo = std::max(a.lo, 0.0);  // no negative sizes or latencies on the axis
  a.hi = std::ceil(hi / step) * step;
  a.decimals = std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
  for (double t = a.lo; t <= a.hi + step * 1e-6; t += step) a.ticks.push_back(t);
  return a;
}

/// The points of a diamond of half-diagonal r around (x, y): a uniform baseline.
std::string diamond(double x, double y, double r) {
  return coord(x) + "," + coord(y - r) + " " + coord(x + r) + "," + coord(y) + " " + coord(x) +
         "," + coord(y + r) + " " + coord(x - r) + "," + coord(y);
}

/// The points of a five-pointed star of radius r around (x, y): the baseline.
std::string star(double x, double y, double r) {
  std::string pts;
  for (int k = 0; k < 10; ++k) {
    const double ang = -kPi / 2 + k * kPi / 5;
    const double rr = k % 2 == 0 ? r : r * 0.45;
    pts += (k ? " " : "") + coord(x + rr * std::cos(ang)) + "," + coord(y + rr * std::sin(ang));
  }
  return pts;
}

/// Data units to SVG user units, for one chart.
struct Scale {
  Axis x, y;

  double sx(double v) const { return kPlotLeft + (v - x.lo) / (x.hi - x.lo) * kPlotWidth; }
  double sy(double v) const {
    return kPlotTop + kPlotHeight - (v - y.lo) / (y.hi - y.lo) * kPlotHeight;
  }
};

/// Axes that hold every point (`pts` is not empty).
Scale fit_scale(const std::vector<const Point*>& pts) {
  double x_lo = pts[0]->x, x_hi = x_lo, y_lo = pts[0]->y, y_hi = y_lo;
  for (const Point* p : pts) {
    x_lo = std::min(x_lo, p->x), x_hi = std::max(x_hi, p->x);
    y_lo = std::min(y_lo, p->y), y_hi = std::max(y_hi, p->y);
  }
  return {nice_axis(x_lo, x_hi), nice_axis(y_lo, y_hi)};
}

std::string tick_text(double t, int decimals) {
  return printf_str(("%." + std::to_string(decimals) + "f").c_str(), t);
}

/// The plot's frame, grid, ticks and axis labels.
void draw_axes(std::ostream& o, const Chart& c, const Scale& s) {
  const double bottom = kPlotTop + kPlotHeight, right = kPlotLeft + kPlotWidth;
  o << "<rect class=\"plot\" x=\"" << kPlotLeft << "\" y=\"" << kPlotTop << "\" width=\""
    << kPlotWidth << "\" height=\"" << kPlotHeight << "\"/>\n";
  for (double t : s.x.ticks) {
    const std::string x = coord(s.sx(t));
    o << "<line class=\"grid\" x1=\"" << x << "\" y1=\"" << kPlotTop << "\" x2=\"" << x
      << "\" y2=\"" << bottom << "\"/><text class=\"tick\" x=\"" << x << "\" y=\"" << bottom + 16
      << "\" text-anchor=\"middle\">" << tick_text(t, s.x.decimals) << "</text>\n";
  }
  for (double t : s.y.ticks) {
    const std::string y = coord(s.sy(t));
    o << "<line class=\"grid\" x1=\"" << kPlotLeft << "\" y1=\"" << y << "\" x2=\"" << right
      << "\" y2=\"" << y << "\"/><text class=\"tick\" x=\"" << kPlotLeft - 6 << "\" y=\"" << y
      << "\" dy=\"0.32em\" text-anchor=\"end\">" << tick_text(t, s.y.decimals) << "</text>\n";
  }
  o << "<text class=\"label\" x=\"" << kPlotLeft + kPlotWidth / 2 << "\" y=\"" << bottom + 40
    << "\" text-anchor=\"middle\">" << esc(c.x_label) << "</text>\n"
    << "<text class=\"label\" transform=\"translate(18 " << kPlotTop + kPlotHeight / 2
    << ") rotate(-90)\" text-anchor=\"middle\">" << esc(c.y_label) << "</text>\n";
}

/// The front's staircase in this projection: members that raise the best accuracy so far, in
/// order of x; the line holds each level until the next member (what is attainable at x). ""
/// when no member is plotted.
std::string staircase_path(const std::vector<Point>& front, const Scale& s) {
  std::vector<Point> sorted = front;
  std::sort(sorted.begin(), sorted.end(),
            [](const Point& a, const Point& b) { return a.x < b.x || (a.x == b.x && a.y > b.y); });
  std::string path;
  double best = -INFINITY;
  for (const auto& p : sorted) {
    if (p.y <= best) continue;
    path += path.empty() ? "M" + coord(s.sx(p.x)) + " " + coord(s.sy(p.y))
                         : " H" + coord(s.sx(p.x)) + " V" + coord(s.sy(p.y));
    best = p.y;
  }
  if (!path.empty()) path += " H" + coord(kPlotLeft + kPlotWidth);
  return path;
}

/// Every evaluation as a grey dot, then the staircase and the markers on top.
void draw_points(std::ostream& o, const Chart& c, const Scale& s) {
  for (const auto& p : c.all)
    o << "<circle class=\"ev\" cx=\"" << coord(s.sx(p.x)) << "\" cy=\"" << coord(s.sy(p.y))
      << "\" r=\"2.5\"><title>" << p.tip << "</title></circle>\n";
  const std::string path = staircase_path(c.front, s);
  if (!path.empty()) o << "<path class=\"step\" d=\"" << path << "\"/>\n";
  for (const auto& p : c.uniform)
    o << "<polygon class=\"uniform\" points=\"" << diamond(s.sx(p.x), s.sy(p.y), 8) << "\"><title>"
      << p.tip << "</title></polygon>\n";
  for (const auto& p : c.front) {
    o << "<circle class=\"front\" cx=\"" << coord(s.sx(p.x)) << "\" cy=\"" << coord(s.sy(p.y))
      << "\" r=\"5\"><title>" << p.tip << "</title></circle>";
    if (!p.label.empty())
      o << "<text class=\"pt\" x=\"" << coord(s.sx(p.x) + 7) << "\" y=\"" << coord(s.sy(p.y) - 6)
        << "\">" << esc(p.label) << "</text>";
    o << "\n";
  }
  if (c.baseline)
    o << "<polygon class=\"baseline\" points=\""
      << star(s.sx(c.baseline->x), s.sy(c.baseline->y), 9) << "\"><title>" << c.baseline->tip
      << "</title></polygon>\n";
}

/// The legend, right of the plot so it never hides a point.
void draw_legend(std::ostream& o, const Chart& c) {
  double ly = kPlotTop + 10;
  auto legend = [&](const std::string& symbol, const std::string& text) {
    o << symbol << "<text class=\"legend\" x=\"" << kLegendLeft + 18 << "\" y=\"" << ly
      << "\" dy=\"0.32em\">" << esc(text) << "</text>\n";
    ly += 22;
  };
  const double lx = kLegendLeft + 6;
  legend("<circle class=\"ev key\" cx=\"" + coord(lx) + "\" cy=\"" + coord(ly) + "\" r=\"2.5\"/>",
         "evaluation (" + std::to_string(c.all.size()) + ")");
  legend("<circle class=\"front key\" cx=\"" + coord(lx) + "\" cy=\"" + coord(ly) + "\" r=\"5\"/>",
         "front member (" + std::to_string(c.front.size()) + ")");
  legend("<path class=\"step key\" d=\"M" + coord(lx - 8) + " " + coord(ly + 4) + " H" + coord(lx) +
             " V" + coord(ly - 4) + " H" + coord(lx + 8) + "\"/>",
         "front staircase");
  if (c.baseline)
    legend("<polygon class=\"baseline key\" points=\"" + star(lx, ly, 8) + "\"/>", "uncompressed");
  if (!c.uniform.empty())
    legend("<polygon class=\"uniform key\" points=\"" + diamond(lx, ly, 7) + "\"/>",
           "uniform (" + std::to_string(c.uniform.size()) + ")");
}

}  // namespace

std::string render_chart(const Chart& c) {
  std::vector<const Point*> pts;
  for (const auto* set : {&c.all, &c.front, &c.uniform})
    for (const auto& p : *set) pts.push_back(&p);
  if (c.baseline) pts.push_back(&*c.baseline);

  std::ostringstream o;
  o << "<figure class=\"chart\"><figcaption>" << esc(c.title) << "</figcaption>\n"
    << "<svg width=\"" << kChartWidth << "\" height=\"" << kChartHeight << "\" viewBox=\"0 0 "
    << kChartWidth << ' ' << kChartHeight << "\" role=\"img\" aria-label=\"" << esc(c.title)
    << "\">\n";
  if (pts.empty()) {
    o << "<text x=\"" << kChartWidth / 2 << "\" y=\"" << kChartHeight / 2
      << "\" text-anchor=\"middle\" class=\"empty\">no successful evaluations to plot</text>\n"
      << "</svg></figure>\n";
    return o.str();
  }
  const Scale scale = fit_scale(pts);
  draw_axes(o, c, scale);
  draw_points(o, c, scale);
  draw_legend(o, c);
  o << "</svg></figure>\n";
  return o.str();
}

}  // namespace tightfit::search::report
