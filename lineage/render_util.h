// Internal to the report renderers (report_render.h): text escaping and number formatting, SVG
// building blocks, the lineage-graph drawing and the plots, shared by the HTML and Markdown
// renderings. Not a public header: everything here may change with the renderings.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "lineage/report.h"

namespace prov::lineage::render {

inline constexpr const char* kReplacement = "\xEF\xBF\xBD";  // U+FFFD
inline constexpr const char* kDash = "\xE2\x80\x94";         // U+2014 em dash
inline constexpr const char* kEllipsis = "\xE2\x80\xA6";     // U+2026
inline constexpr const char* kArrow = "\xE2\x86\x92";        // U+2192
inline constexpr const char* kMidDot = "\xC2\xB7";           // U+00B7
inline constexpr const char* kMinus = "\xE2\x88\x92";        // U+2212 minus sign
inline constexpr const char* kScoreOnly = "score only (no calibrated test)";
inline constexpr const char* kSvgOpen = "<svg xmlns=\"http://www.w3.org/2000/svg\"";
inline constexpr const char* kFontFamily = "Helvetica, Arial, sans-serif";
inline constexpr double kPFloor = 1e-300;
inline constexpr double kMaxMinusLog10 = 300.0;

// Text (render_util.cpp).
// Valid UTF-8, with control characters other than tab, LF and CR, DEL, U+FFFE/U+FFFF and every
// malformed sequence replaced by U+FFFD (so the text is also valid XML character data).
std::string sanitize(const std::string& s);
// HTML/XML character data and attribute values.
std::string esc(const std::string& s);
// Markdown inline text.
std::string md(const std::string& s);
std::vector<std::string> code_points(const std::string& clean);
std::string truncate(const std::string& s, size_t max);
double text_width(const std::string& s, double px);
std::string printf_str(const char* fmt, double v);
std::string format_number(double v);
std::string n1(double v);
std::string p_equals(const std::optional<double>& p);
double minus_log10(double p);
std::string int_str(int64_t v);

// SVG building blocks (render_util.cpp).
struct LegendEntry {
  std::string label;
  std::string color;
  std::string dash;  // "" solid; "box" for a filled swatch
};

struct Area {
  double x0, y0, w, h;
};

struct Tick {
  double px;
  std::string label;
};

std::string series_color(size_t i);
std::string series_dash(size_t i);
std::string svg_open(double w, double h, const std::string& title);
std::string text_el(double x, double y, const std::string& anchor, const std::string& content,
                    const std::string& extra = "");
std::string line_el(double x1, double y1, double x2, double y2, const std::string& stroke,
                    const std::string& extra = "");
double nice_step(double range, int target);
std::vector<double> linear_ticks(double lo, double hi, double step);
// Lays entries out left to right in rows within `width`, from (x, y); returns the SVG and sets
// *height.
std::string legend(const std::vector<LegendEntry>& entries, double x, double y, double width,
                   double* height);
// The legend placed under a plot area, and the plot's total height with it.
std::string legend_below(const std::vector<LegendEntry>& entries, const Area& a, double* height);
// Grid, axes, tick labels and axis titles around `a`.
std::string frame(const Area& a, const std::vector<Tick>& xt, const std::vector<Tick>& yt,
                  const std::string& xtitle, const std::string& ytitle);

// Shared wording (render_util.cpp).
std::string verdict_class(Relation r);
// A `detail` object as one line of compact JSON with sorted keys.
std::string detail_text(const nlohmann::json& d);
std::vector<std::string> verdict_parents(const ReportVerdict& v);
std::string probes_text(const ReportEvidence& e);
bool any_holm(const std::vector<ReportReference>& refs);
// The environment block in words ("device cpu, dtype float32, 2 CPU threads").
std::string environment_text(const ReportEnvironment& env);
// One line per signature run ("base (candidate, checkpoint): cpu, float32, libtorch").
std::vector<std::string> run_lines(const ReportEnvironment& env);

// Drawings (render_graph.cpp, render_plots.cpp).
std::string graph_svg(const ReportGraph& g, bool standalone);
std::string weight_plot(const std::vector<ReportWeightLayer>& rows);
std::string probe_plot(const std::vector<ReportProbeCurve>& curves);
std::string pvalue_bars(const std::vector<ReportEvidence>& rows);

// Runs a renderer, turning an exception (a broken invariant) into kInternal.
template <typename F>
Result<std::string> guarded(F&& f) {
  try {
    return f();
  } catch (const std::exception& e) {
    return internal_error(std::string("rendering the report failed: ") + e.what());
  }
}

}  // namespace prov::lineage::render
