#pragma once
// The report's scatter plots as inline SVG: every evaluation as a grey dot, the front's members
// with their staircase, the uniform baselines as diamonds and the uncompressed baseline as a
// star, on axes with round ticks, with a legend beside the plot. Tooltips are SVG <title>s, so
// the page needs no JavaScript.

#include <optional>
#include <string>
#include <vector>

namespace tightfit::search::report {

/// One marker, in data units.
struct Point {
  double x = 0, y = 0;
  std::string tip;  ///< already escaped
  std::string label;
};

/// What one plot shows; y is maximized, so the front's staircase climbs to the right.
struct Chart {
  std::string title, x_label, y_label;
  std::vector<Point> all, front, uniform;
  std::optional<Point> baseline;
};

/// The chart as a <figure> holding an <svg>; a chart without points says so instead.
std::string render_chart(const Chart& c);

}  // namespace tightfit::search::report
