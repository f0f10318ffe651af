#include "lineage/render_util.h"
#include "lineage/report_render.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace prov::lineage {
namespace render {

using nlohmann::json;

// Plots

constexpr double kPlotW = 760;

std::string weight_plot(const std::vector<ReportWeightLayer>& rows) {
  struct Series {
    std::string label;
    std::vector<std::pair<double, double>> pts;
  };
  std::vector<Series> series;
  std::map<std::pair<std::string, std::string>, size_t> index;
  double xlo = 0, xhi = 0;
  bool negative = false;
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    auto [it, inserted] = index.emplace(std::make_pair(r.reference, r.component), series.size());
    if (inserted) series.push_back({r.reference + " " + kMidDot + " " + r.component, {}});
    series[it->second].pts.push_back({static_cast<double>(r.layer), r.similarity});
    const double l = static_cast<double>(r.layer);
    xlo = i == 0 ? l : std::min(xlo, l);
    xhi = i == 0 ? l : std::max(xhi, l);
    if (r.similarity < 0) negative = true;
  }
  if (xhi - xlo < 1) xlo -= 1, xhi += 1;
  const double ylo = negative ? -1 : 0, yhi = 1;
  const Area a{64, 16, kPlotW - 64 - 20, 260};
  auto X = [&](double v) { return a.x0 + (v - xlo) / (xhi - xlo) * a.w; };
  auto Y = [&](double v) {
    return a.y0 + a.h - (std::clamp(v, ylo, yhi) - ylo) / (yhi - ylo) * a.h;
  };

  std::vector<Tick> xt, yt;
  const double xstep = std::max(1.0, std::round(nice_step(xhi - xlo, 10)));
  for (double v : linear_ticks(xlo, xhi, xstep)) xt.push_back({X(v), printf_str("%.0f", v)});
  for (double v : linear_ticks(ylo, yhi, negative ? 0.5 : 0.2)) {
    yt.push_back({Y(v), printf_str("%.6g", v)});
  }
  std::vector<LegendEntry> entries;
  for (size_t i = 0; i < series.size(); ++i) {
    entries.push_back({series[i].label, series_color(i), series_dash(i)});
  }
  double height = 0;
  const std::string leg = legend_below(entries, a, &height);

  std::string svg = svg_open(kPlotW, height, "Per-layer weight similarity");
  svg += frame(a, xt, yt, "layer", "similarity");
  if (negative) svg += line_el(a.x0, Y(0), a.x0 + a.w, Y(0), "#999999");
  for (size_t i = 0; i < series.size(); ++i) {
    auto pts = series[i].pts;
    std::stable_sort(pts.begin(), pts.end(),
                     [](const auto& p, const auto& q) { return p.first < q.first; });
    std::string list;
    for (const auto& [x, y] : pts) list += (list.empty() ? "" : " ") + n1(X(x)) + "," + n1(Y(y));
    const std::string dash = series_dash(i);
    svg += "<polyline points=\"" + list + "\" fill=\"none\" stroke=\"" + series_color(i) +
           "\" stroke-width=\"1.8\"" + (dash.empty() ? "" : " stroke-dasharray=\"" + dash + "\"") +
           "><title>" + esc(series[i].label) + "</title></polyline>\n";
    if (pts.size() <= 64) {
      for (const auto& [x, y] : pts) {
        svg += "<circle cx=\"" + n1(X(x)) + "\" cy=\"" + n1(Y(y)) + "\" r=\"2.5\" fill=\"" +
               series_color(i) + "\"/>\n";
      }
    }
  }
  svg += leg;
  svg += "</svg>\n";
  return svg;
}

std::string decade_label(long long k) {
  if (k == 0) return "1";
  if (k > 0 && k <= 6) return printf_str("%.0f", std::pow(10.0, static_cast<double>(k)));
  return "1e" + std::to_string(k);
}

long long decade_step(long long span) {
  for (long long s : {1, 2, 5, 10, 20, 25, 50, 100}) {
    if (span / s <= 8) return s;
  }
  return 100;
}

std::string probe_plot(const std::vector<ReportProbeCurve>& curves) {
  double min_probes = 0, max_probes = 0, min_logp = 0;
  bool any = false;
  for (const auto& c : curves) {
    for (size_t i = 0; i < c.probes.size(); ++i) {
      const double x = static_cast<double>(c.probes[i]);
      min_probes = any ? std::min(min_probes, x) : x;
      max_probes = any ? std::max(max_probes, x) : x;
      min_logp = std::min(min_logp, -minus_log10(c.p_values[i]));
      any = true;
    }
  }
  long long xlo = 0, xhi = 1;
  if (any) {
    xlo = static_cast<long long>(std::floor(std::log10(min_probes)));
    xhi = static_cast<long long>(std::ceil(std::log10(max_probes)));
    if (xhi <= xlo) xhi = xlo + 1;
  }
  long long ylo = std::min<long long>(-2, static_cast<long long>(std::floor(min_logp)));
  const long long ys = decade_step(-ylo);
  ylo = -((-ylo + ys - 1) / ys) * ys;  // the axis ends on a labelled decade
  const Area a{64, 16, kPlotW - 64 - 56, 260};
  auto X = [&](double probes) {
    return a.x0 +
           (std::log10(probes) - static_cast<double>(xlo)) / static_cast<double>(xhi - xlo) * a.w;
  };
  // log10 p runs from 0 (top) down to ylo (bottom).
  auto Y = [&](double p) { return a.y0 + a.h * -minus_log10(p) / static_cast<double>(ylo); };
  std::vector<Tick> xt, yt;
  const long long xs = decade_step(xhi - xlo);
  for (long long k = xlo; k <= xhi; k += xs) {
    xt.push_back({X(std::pow(10.0, static_cast<double>(k))), decade_label(k)});
  }
  for (long long k = 0; k >= ylo; k -= ys) {
    yt.push_back({a.y0 + a.h * static_cast<double>(k) / static_cast<double>(ylo), decade_label(k)});
  }
  std::vector<LegendEntry> entries;
  for (size_t i = 0; i < curves.size(); ++i) {
    entries.push_back({curves[i].reference, series_color(i), series_dash(i)});
  }
  double height = 0;
  const std::string leg = legend_below(entries, a, &height);

  std::string svg = svg_open(kPlotW, height, "p-value against number of probes");
  svg += frame(a, xt, yt, "number of probes (log scale)", "p-value (log scale)");
  const double y05 = Y(0.05), y01 = Y(0.01);
  svg += line_el(a.x0, y05, a.x0 + a.w, y05, "#b03a2e", "stroke-dasharray=\"6 4\"");
  svg += line_el(a.x0, y01, a.x0 + a.w, y01, "#b03a2e", "stroke-dasharray=\"2 3\"");
  svg += text_el(a.x0 + a.w + 4, y05 - 2, "start", "0.05", "font-size=\"11\" fill=\"#b03a2e\"");
  svg += text_el(a.x0 + a.w + 4, y01 + 11, "start", "0.01", "font-size=\"11\" fill=\"#b03a2e\"");
  for (size_t i = 0; i < curves.size(); ++i) {
    std::vector<std::pair<int64_t, double>> pts;
    for (size_t k = 0; k < curves[i].probes.size(); ++k) {
      pts.push_back({curves[i].probes[k], curves[i].p_values[k]});
    }
    std::stable_sort(pts.begin(), pts.end(),
                     [](const auto& p, const auto& q) { return p.first < q.first; });
    std::string list;
    for (const auto& [x, p] : pts) {
      list += (list.empty() ? "" : " ") + n1(X(static_cast<double>(x))) + "," + n1(Y(p));
    }
    const std::string dash = series_dash(i);
    svg += "<polyline points=\"" + list + "\" fill=\"none\" stroke=\"" + series_color(i) +
           "\" stroke-width=\"1.8\"" + (dash.empty() ? "" : " stroke-dasharray=\"" + dash + "\"") +
           "><title>" + esc(curves[i].reference) + "</title></polyline>\n";
    for (const auto& [x, p] : pts) {
      svg += "<circle cx=\"" + n1(X(static_cast<double>(x))) + "\" cy=\"" + n1(Y(p)) +
             "\" r=\"2.5\" fill=\"" + series_color(i) + "\"><title>" +
             esc(curves[i].reference + ": " + int_str(x) + " probes, " + p_equals(p)) +
             "</title></circle>\n";
    }
  }
  svg += leg;
  svg += "</svg>\n";
  return svg;
}

std::string layer_color(const std::string& layer) {
  if (layer == "identity") return "#6a3d9a";
  if (layer == "weights") return "#0072B2";
  if (layer == "outputs") return "#009E73";
  return "#D55E00";
}

std::string pvalue_bars(const std::vector<ReportEvidence>& rows) {
  std::vector<std::string> labels;
  double label_w = 80;
  double vmax = 2.5;
  for (const auto& e : rows) {
    labels.push_back(truncate(e.reference + " " + kMidDot + " " + e.method, 44));
    label_w = std::max(label_w, text_width(labels.back(), 12) + 12);
    if (e.p_value) vmax = std::max(vmax, minus_log10(*e.p_value));
  }
  label_w = std::min(label_w, 300.0);
  // Up to 20 the axis is linear; beyond, it is compressed as log10(1 + x) so that p = 0.05,
  // p = 0.01 and moderate evidence stay visible next to a bar of 300.
  const bool compressed = vmax > 20;
  std::vector<double> ticks;
  double xmax = 0;
  if (compressed) {
    for (double t : {0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 300.0}) {
      if (xmax < vmax) ticks.push_back(xmax = t);
    }
  } else {
    const double step = nice_step(vmax, 6);
    xmax = std::ceil(vmax / step - 1e-9) * step;
    ticks = linear_ticks(0, xmax, step);
  }
  auto scale = [&](double v) { return compressed ? std::log10(1 + v) : v; };
  const double row_h = 22;
  const Area a{label_w + 8, 36, kPlotW - label_w - 8 - 96,
               row_h * static_cast<double>(rows.size())};
  auto X = [&](double v) { return a.x0 + scale(v) / scale(xmax) * a.w; };

  std::vector<LegendEntry> entries;
  for (const auto& l : evidence_layers()) {
    if (std::any_of(rows.begin(), rows.end(),
                    [&](const ReportEvidence& e) { return e.layer == l; })) {
      entries.push_back({l + " evidence", layer_color(l), "box"});
    }
  }
  double height = 0;
  const std::string leg = legend_below(entries, a, &height);

  std::string svg = svg_open(
      kPlotW, height, std::string("p-value summary (") + kMinus + "log10 p per evidence row)");
  for (double v : ticks) {
    svg += line_el(X(v), a.y0, X(v), a.y0 + a.h, "#e3e3e3");
    svg += line_el(X(v), a.y0 + a.h, X(v), a.y0 + a.h + 4, "#555555");
    svg += text_el(X(v), a.y0 + a.h + 17, "middle", printf_str("%.6g", v), "fill=\"#333333\"");
  }
  for (size_t i = 0; i < rows.size(); ++i) {
    const ReportEvidence& e = rows[i];
    const double y = a.y0 + row_h * static_cast<double>(i);
    svg += "<text x=\"" + n1(a.x0 - 6) + "\" y=\"" + n1(y + 15) +
           "\" text-anchor=\"end\" fill=\"#222222\"><title>" +
           esc(e.reference + " " + kMidDot + " " + e.method + " (" + e.statistic + ")") +
           "</title>" + esc(labels[i]) + "</text>\n";
    if (!e.p_value) {
      svg += text_el(a.x0 + 4, y + 15, "start", std::string(kDash) + " " + kScoreOnly,
                     "font-style=\"italic\" fill=\"#777777\"");
      continue;
    }
    const double v = minus_log10(*e.p_value);
    svg += "<rect x=\"" + n1(a.x0) + "\" y=\"" + n1(y + 4) + "\" width=\"" + n1(X(v) - a.x0) +
           "\" height=\"14\" fill=\"" + layer_color(e.layer) + "\"><title>" +
           esc(std::string(kMinus) + "log10 p = " + printf_str("%.3g", v) + " (" +
               p_equals(e.p_value) + ")") +
           "</title></rect>\n";
    svg += text_el(X(v) + 4, y + 15, "start", p_equals(e.p_value),
                   "font-size=\"11\" fill=\"#333333\" stroke=\"#ffffff\" stroke-width=\"3\" "
                   "paint-order=\"stroke\"");
  }
  svg += "<rect x=\"" + n1(a.x0) + "\" y=\"" + n1(a.y0) + "\" width=\"" + n1(a.w) + "\" height=\"" +
         n1(a.h) + "\" fill=\"none\" stroke=\"#555555\"/>\n";
  const double x05 = X(minus_log10(0.05)), x01 = X(2.0);
  svg += line_el(x05, a.y0 - 18, x05, a.y0 + a.h, "#b03a2e", "stroke-dasharray=\"6 4\"");
  svg += line_el(x01, a.y0 - 6, x01, a.y0 + a.h, "#b03a2e", "stroke-dasharray=\"2 3\"");
  svg += text_el(x05 + 3, a.y0 - 22, "start", "p = 0.05", "font-size=\"11\" fill=\"#b03a2e\"");
  svg += text_el(x01 + 3, a.y0 - 8, "start", "p = 0.01", "font-size=\"11\" fill=\"#b03a2e\"");
  svg += text_el(a.x0 + a.w / 2, a.y0 + a.h + 36, "middle",
                 std::string(kMinus) + "log10 p (capped at 300" +
                     (compressed ? "; axis compressed above 1: log scale of 1 + x)" : ")"),
                 "fill=\"#222222\"");
  svg += leg;
  svg += "</svg>\n";
  return svg;
}

// ---------------------------------------------------------------------------------------------
}  // namespace render

}  // namespace prov::lineage
