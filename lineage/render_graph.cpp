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

// Lineage graph

constexpr double kNodeH = 42;
constexpr double kRowGap = 96;
constexpr double kSlotGap = 28;
constexpr double kMaxRowWidth = 1060;
constexpr double kNodeFont = 13;
constexpr double kEdgeFont = 11;
constexpr const char* kLegendArrow = "parent to child";

bool muted_relation(const std::string& r) {
  return r == "independent" || r == "inconclusive";
}

std::string edge_label(const ReportEdge& e) {
  if (!e.p_value) return e.relation + " (score only)";
  return e.relation + " " + p_equals(e.p_value);
}

struct Box {
  double x0, y0, x1, y1;
  bool overlaps(const Box& o) const { return x0 < o.x1 && o.x0 < x1 && y0 < o.y1 && o.y0 < y1; }
};

struct Pt {
  double x, y;
};

// A cubic Bézier from p0 to p3.
struct Curve {
  Pt p0, p1, p2, p3;
  Pt at(double t) const {
    const double u = 1 - t;
    const double a = u * u * u, b = 3 * u * u * t, c = 3 * u * t * t, d = t * t * t;
    return {a * p0.x + b * p1.x + c * p2.x + d * p3.x, a * p0.y + b * p1.y + c * p2.y + d * p3.y};
  }
};

std::string graph_svg(const ReportGraph& g, bool standalone) {
  const size_t n = g.nodes.size();
  const size_t m = g.edges.size();

  // 1. Cycles: depth-first from the roots (no incoming edge), then from whatever is left, in
  // node order; an edge to a node still on the stack closes a cycle (a back edge).
  std::vector<std::vector<size_t>> out(n);
  std::vector<size_t> indeg(n, 0);
  for (size_t e = 0; e < m; ++e) {
    out[g.edges[e].from].push_back(e);
    if (g.edges[e].from != g.edges[e].to) ++indeg[g.edges[e].to];
  }
  std::vector<int> state(n, 0);  // 0 new, 1 on stack, 2 done
  std::vector<bool> back(m, false);
  auto dfs = [&](size_t start) {
    std::vector<std::pair<size_t, size_t>> stack = {{start, 0}};
    state[start] = 1;
    while (!stack.empty()) {
      const size_t u = stack.back().first;
      const size_t k = stack.back().second;
      if (k == out[u].size()) {
        state[u] = 2;
        stack.pop_back();
        continue;
      }
      ++stack.back().second;
      const size_t e = out[u][k];
      const size_t v = g.edges[e].to;
      if (state[v] == 1) {
        back[e] = true;
      } else if (state[v] == 0) {
        state[v] = 1;
        stack.push_back({v, 0});
      }
    }
  };
  for (size_t u = 0; u < n; ++u) {
    if (indeg[u] == 0 && state[u] == 0) dfs(u);
  }
  for (size_t u = 0; u < n; ++u) {
    if (state[u] == 0) dfs(u);
  }

  // 2. Layers. With back edges reversed (self-loops set aside) the edges form a DAG; each edge
  // spans from its upper end to its lower end, and a node's layer is its longest distance from
  // a root.
  std::vector<bool> loop(m);
  std::vector<size_t> upper(m), lower(m);
  std::vector<std::vector<size_t>> down(n);
  std::vector<size_t> pending(n, 0);
  for (size_t e = 0; e < m; ++e) {
    const ReportEdge& ed = g.edges[e];
    loop[e] = ed.from == ed.to;
    if (loop[e]) continue;
    upper[e] = back[e] ? ed.to : ed.from;
    lower[e] = back[e] ? ed.from : ed.to;
    down[upper[e]].push_back(e);
    ++pending[lower[e]];
  }
  std::vector<size_t> layer(n, 0);
  std::set<size_t> ready;
  for (size_t u = 0; u < n; ++u) {
    if (pending[u] == 0) ready.insert(u);
  }
  while (!ready.empty()) {
    const size_t u = *ready.begin();
    ready.erase(ready.begin());
    for (size_t e : down[u]) {
      const size_t v = lower[e];
      layer[v] = std::max(layer[v], layer[u] + 1);
      if (--pending[v] == 0) ready.insert(v);
    }
  }

  // 3. An edge spanning several layers passes through one virtual point per layer crossed
  // (layout ids n, n+1, ...), so that it is routed around the nodes in between.
  std::vector<std::vector<size_t>> chain(m);
  size_t total = n;
  for (size_t e = 0; e < m; ++e) {
    if (loop[e]) continue;
    chain[e].push_back(upper[e]);
    for (size_t l = layer[upper[e]] + 1; l < layer[lower[e]]; ++l) {
      layer.push_back(l);
      chain[e].push_back(total++);
    }
    chain[e].push_back(lower[e]);
  }
  size_t layers = 0;
  for (size_t u = 0; u < total; ++u) layers = std::max(layers, layer[u] + 1);

  // 4. Order within a layer: input order, then two passes placing each node under the mean
  // position of its parents (stable, so ties keep input order).
  std::vector<std::vector<size_t>> rows(layers);
  for (size_t u = 0; u < total; ++u) rows[layer[u]].push_back(u);
  std::vector<double> pos(total, 0);
  auto update_pos = [&](size_t l) {
    const double mid = (static_cast<double>(rows[l].size()) - 1) / 2;
    for (size_t i = 0; i < rows[l].size(); ++i) pos[rows[l][i]] = static_cast<double>(i) - mid;
  };
  for (size_t l = 0; l < layers; ++l) update_pos(l);
  std::vector<std::vector<size_t>> parents(total);
  for (size_t e = 0; e < m; ++e) {
    for (size_t i = 1; i < chain[e].size(); ++i) parents[chain[e][i]].push_back(chain[e][i - 1]);
  }
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t l = 1; l < layers; ++l) {
      std::vector<std::pair<double, size_t>> keyed;
      for (size_t u : rows[l]) {
        double key = pos[u];
        if (!parents[u].empty()) {
          double sum = 0;
          for (size_t p : parents[u]) sum += pos[p];
          key = sum / static_cast<double>(parents[u].size());
        }
        keyed.push_back({key, u});
      }
      std::stable_sort(keyed.begin(), keyed.end(),
                       [](const auto& a, const auto& b) { return a.first < b.first; });
      for (size_t i = 0; i < keyed.size(); ++i) rows[l][i] = keyed[i].second;
      update_pos(l);
    }
  }

  // 5. Sizes and positions. A node's slot is wide enough for the label of an edge entering it
  // and for its self-loops; a layer wider than kMaxRowWidth wraps onto several visual rows.
  std::vector<std::string> shown(n);
  std::vector<double> w(total, 0), slot(total, 12), cx(total, 0), cy(total, 0);
  for (size_t u = 0; u < n; ++u) {
    shown[u] = truncate(g.nodes[u].label, 36);
    w[u] = std::clamp(text_width(shown[u], kNodeFont) + 28, 96.0, 330.0);
    slot[u] = w[u];
  }
  std::vector<std::string> elabel(m);
  std::vector<double> ew(m);
  std::vector<int> loops_at(n, 0);
  for (size_t e = 0; e < m; ++e) {
    elabel[e] = truncate(edge_label(g.edges[e]), 48);
    ew[e] = text_width(elabel[e], kEdgeFont) + 10;
    if (loop[e]) {
      ++loops_at[g.edges[e].from];
    } else if (chain[e].size() == 2) {
      slot[lower[e]] = std::max(slot[lower[e]], ew[e]);
    }
  }
  for (size_t u = 0; u < n; ++u) slot[u] += 2 * 18 * loops_at[u];  // kept symmetric
  const double legend_h = 30;
  const double margin = 20;
  std::vector<std::vector<size_t>> visual;
  for (const auto& row : rows) {
    std::vector<size_t> cur;
    double width = 0;
    for (size_t u : row) {
      const double sw = slot[u] + kSlotGap;
      if (!cur.empty() && width + sw > kMaxRowWidth) {
        visual.push_back(cur);
        cur.clear();
        width = 0;
      }
      cur.push_back(u);
      width += sw;
    }
    if (!cur.empty()) visual.push_back(cur);
  }
  double widest = 0;
  std::vector<double> row_width;
  for (const auto& row : visual) {
    double width = 0;
    for (size_t u : row) width += slot[u] + kSlotGap;
    row_width.push_back(width);
    widest = std::max(widest, width);
  }
  for (size_t r = 0; r < visual.size(); ++r) {
    double x = margin + (widest - row_width[r]) / 2;
    const double y = margin + legend_h + static_cast<double>(r) * (kNodeH + kRowGap) + kNodeH / 2;
    for (size_t u : visual[r]) {
      cx[u] = x + (slot[u] + kSlotGap) / 2;
      cy[u] = y;
      x += slot[u] + kSlotGap;
    }
  }

  // 6. Edge geometry: a chain of cubic segments from the upper node's bottom through the
  // virtual points to the lower node's top, drawn from source to target (so a reversed back
  // edge points upwards). Ends are spread along the node border, ordered by the other end's
  // position. Self-loops are small arcs on the node's top-right corner.
  std::vector<std::vector<size_t>> leaving(n), entering(n);
  for (size_t e = 0; e < m; ++e) {
    if (loop[e]) continue;
    leaving[chain[e].front()].push_back(e);
    entering[chain[e].back()].push_back(e);
  }
  std::vector<double> top_dx(m, 0), bottom_dx(m, 0);
  for (size_t u = 0; u < n; ++u) {
    auto spread = [&](std::vector<size_t>& list, bool leave, std::vector<double>& dx) {
      auto other = [&](size_t e) {
        return leave ? cx[chain[e][1]] : cx[chain[e][chain[e].size() - 2]];
      };
      std::stable_sort(list.begin(), list.end(),
                       [&](size_t a, size_t b) { return other(a) < other(b); });
      const double k = static_cast<double>(list.size());
      const double step = std::min(16.0, (w[u] - 24) / std::max(1.0, k));
      for (size_t i = 0; i < list.size(); ++i) {
        dx[list[i]] = (static_cast<double>(i) - (k - 1) / 2) * step;
      }
    };
    spread(leaving[u], true, top_dx);
    spread(entering[u], false, bottom_dx);
  }
  std::vector<std::vector<Curve>> segs(m);
  std::vector<int> loop_index(n, 0);
  for (size_t e = 0; e < m; ++e) {
    if (loop[e]) {
      const size_t u = g.edges[e].from;
      const double k = loop_index[u]++;
      const double right = cx[u] + w[u] / 2, top = cy[u] - kNodeH / 2;
      const double r = 22 + 14 * k;
      segs[e].push_back(
          {{right - 14, top}, {right - 14, top - r}, {right + r, top + 12}, {right, top + 12}});
      continue;
    }
    const auto& c = chain[e];
    for (size_t i = 0; i + 1 < c.size(); ++i) {
      const size_t a = c[i], b = c[i + 1];
      const Pt p0{cx[a] + (i == 0 ? top_dx[e] : 0), cy[a] + kNodeH / 2};
      const Pt p3{cx[b] + (i + 2 == c.size() ? bottom_dx[e] : 0), cy[b] - kNodeH / 2};
      const double dy = (p3.y - p0.y) / 2;
      segs[e].push_back({p0, {p0.x, p0.y + dy}, {p3.x, p3.y - dy}, p3});
      if (b >= n) {  // straight through the virtual point's row
        const Pt q0{cx[b], cy[b] - kNodeH / 2}, q3{cx[b], cy[b] + kNodeH / 2};
        segs[e].push_back({q0, {q0.x, q0.y + kNodeH / 3}, {q0.x, q3.y - kNodeH / 3}, q3});
      }
    }
    if (back[e]) {
      std::reverse(segs[e].begin(), segs[e].end());
      for (Curve& s : segs[e]) s = {s.p3, s.p2, s.p1, s.p0};
    }
  }

  // 7. Edge labels: the first of a few spots along the edge (from its source) that overlaps no
  // node and no label placed before it; the first spot when all are taken.
  std::vector<Box> taken;
  for (size_t u = 0; u < n; ++u) {
    taken.push_back({cx[u] - w[u] / 2, cy[u] - kNodeH / 2, cx[u] + w[u] / 2, cy[u] + kNodeH / 2});
  }
  double legend_w = 36 + text_width(kLegendArrow, 12);
  for (const char* k : {"candidate", "reference", "control"}) legend_w += 50 + text_width(k, 12);
  const Box legend_box{margin, margin - 4, margin + legend_w, margin + 18};
  for (size_t e = 0; e < m; ++e) {
    std::vector<Pt> spots;
    if (loop[e]) {
      const size_t u = g.edges[e].from;
      const Pt p = segs[e][0].at(0.5);
      spots = {{p.x + ew[e] / 2 + 2, p.y - 8},
               {cx[u], cy[u] - kNodeH / 2 - 12},
               {cx[u], cy[u] + kNodeH / 2 + 12}};
    } else {
      for (size_t s = 0; s < segs[e].size() && s < 5; ++s) {
        for (double t : {0.5, 0.35, 0.65, 0.22, 0.78}) spots.push_back(segs[e][s].at(t));
      }
    }
    Box chosen{spots[0].x - ew[e] / 2, spots[0].y - 8, spots[0].x + ew[e] / 2, spots[0].y + 8};
    for (const Pt& p : spots) {
      const Box b{p.x - ew[e] / 2, p.y - 8, p.x + ew[e] / 2, p.y + 8};
      if (!b.overlaps(legend_box) &&
          std::none_of(taken.begin(), taken.end(), [&](const Box& o) { return o.overlaps(b); })) {
        chosen = b;
        break;
      }
    }
    taken.push_back(chosen);
  }

  // 8. Bounds.
  double minx = 0, maxx = margin + std::max(widest, 380.0) + margin;
  double maxy = margin + legend_h + (visual.empty() ? 40.0 : 0.0);
  for (size_t u = 0; u < n; ++u) {
    maxx = std::max(maxx, cx[u] + w[u] / 2 + margin);
    maxy = std::max(maxy, cy[u] + kNodeH / 2 + margin);
  }
  for (size_t e = 0; e < m; ++e) {
    for (const Curve& s : segs[e]) {
      for (const Pt& p : {s.p0, s.p1, s.p2, s.p3}) {
        minx = std::min(minx, p.x - 4);
        maxx = std::max(maxx, p.x + 4);
        maxy = std::max(maxy, p.y + 4);
      }
    }
    minx = std::min(minx, taken[n + e].x0 - 4);
    maxx = std::max(maxx, taken[n + e].x1 + 4);
    maxy = std::max(maxy, taken[n + e].y1 + 4);
  }
  minx = std::floor(minx);
  const double width = std::ceil(maxx - minx);
  const double height = std::ceil(maxy);

  std::string svg;
  if (standalone) svg += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  svg += std::string(kSvgOpen) + " viewBox=\"" + n1(minx) + " 0 " + n1(width) + " " + n1(height) +
         "\" width=\"" + n1(width) + "\" height=\"" + n1(height) +
         "\" role=\"img\" font-family=\"" + kFontFamily +
         "\" font-size=\"12\"><title>Lineage graph</title>\n";
  svg += "<defs>\n";
  for (const auto& [id, color] : {std::pair<const char*, const char*>{"prov-arrow", "#444444"},
                                  {"prov-arrow-muted", "#999999"}}) {
    svg += std::string("<marker id=\"") + id +
           "\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"9\" markerHeight=\"9\" "
           "markerUnits=\"userSpaceOnUse\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"" +
           color + "\"/></marker>\n";
  }
  svg += "</defs>\n";
  svg += "<rect x=\"" + n1(minx) + "\" y=\"0\" width=\"" + n1(width) + "\" height=\"" + n1(height) +
         "\" fill=\"#ffffff\"/>\n";

  // Legend: node kinds.
  {
    double x = margin;
    const double y = margin;
    struct Kind {
      const char* name;
      const char* fill;
      const char* stroke;
      const char* extra;
    };
    for (const Kind& k :
         {Kind{"candidate", "#fff4cc", "#c98a00", "stroke-width=\"3\""},
          Kind{"reference", "#eaf2fb", "#3b6ea5", "stroke-width=\"1.5\""},
          Kind{"control", "#f2f2f2", "#888888", "stroke-width=\"1.5\" stroke-dasharray=\"4 3\""}}) {
      svg += "<rect x=\"" + n1(x) + "\" y=\"" + n1(y) +
             "\" width=\"22\" height=\"14\" rx=\"3\" fill=\"" + k.fill + "\" stroke=\"" + k.stroke +
             "\" " + k.extra + "/>\n";
      svg += text_el(x + 28, y + 11, "start", k.name, "fill=\"#333333\"");
      x += 28 + text_width(k.name, 12) + 22;
    }
    svg += line_el(x, y + 7, x + 30, y + 7, "#444444",
                   "stroke-width=\"1.5\" marker-end=\"url(#prov-arrow)\"");
    svg += text_el(x + 36, y + 11, "start", kLegendArrow, "fill=\"#333333\"");
  }
  if (n == 0)
    svg += text_el(margin, margin + legend_h + 20, "start", "(no nodes)", "fill=\"#666666\"");

  // Edges under nodes, labels over everything.
  for (size_t e = 0; e < m; ++e) {
    const ReportEdge& ed = g.edges[e];
    const bool muted = muted_relation(ed.relation);
    std::string d = "M" + n1(segs[e][0].p0.x) + "," + n1(segs[e][0].p0.y);
    for (const Curve& c : segs[e]) {
      d += " C" + n1(c.p1.x) + "," + n1(c.p1.y) + " " + n1(c.p2.x) + "," + n1(c.p2.y) + " " +
           n1(c.p3.x) + "," + n1(c.p3.y);
    }
    svg += "<path class=\"edge\" d=\"" + d + "\" fill=\"none\" stroke=\"" +
           (muted ? "#999999" : "#444444") + "\" stroke-width=\"1.6\"" +
           (muted ? " stroke-dasharray=\"5 4\"" : "") + " marker-end=\"url(#" +
           (muted ? "prov-arrow-muted" : "prov-arrow") + ")\"><title>" +
           esc(g.nodes[ed.from].label + " " + kArrow + " " + g.nodes[ed.to].label + ": " +
               edge_label(ed)) +
           "</title></path>\n";
  }
  for (size_t u = 0; u < n; ++u) {
    const ReportNode& node = g.nodes[u];
    const char* fill = "#eaf2fb";
    const char* stroke = "#3b6ea5";
    std::string extra = "stroke-width=\"1.5\"";
    if (node.kind == "candidate") {
      fill = "#fff4cc", stroke = "#c98a00", extra = "stroke-width=\"3\"";
    } else if (node.kind == "control") {
      fill = "#f2f2f2", stroke = "#888888", extra = "stroke-width=\"1.5\" stroke-dasharray=\"4 3\"";
    }
    svg +=
        "<g><title>" + esc(node.label + " (" + node.kind + ", id " + node.id + ")") + "</title>\n";
    svg += "<rect class=\"node\" x=\"" + n1(cx[u] - w[u] / 2) + "\" y=\"" + n1(cy[u] - kNodeH / 2) +
           "\" width=\"" + n1(w[u]) + "\" height=\"" + n1(kNodeH) + "\" rx=\"6\" fill=\"" + fill +
           "\" stroke=\"" + stroke + "\" " + extra + "/>\n";
    svg += text_el(cx[u], cy[u] - 2, "middle", shown[u],
                   std::string("font-size=\"13\" fill=\"#111111\"") +
                       (node.kind == "candidate" ? " font-weight=\"bold\"" : ""));
    svg += text_el(cx[u], cy[u] + 13, "middle", node.kind, "font-size=\"10\" fill=\"#666666\"");
    svg += "</g>\n";
  }
  for (size_t e = 0; e < m; ++e) {
    const Box& b = taken[n + e];
    svg += "<rect x=\"" + n1(b.x0) + "\" y=\"" + n1(b.y0) + "\" width=\"" + n1(b.x1 - b.x0) +
           "\" height=\"" + n1(b.y1 - b.y0) +
           "\" rx=\"3\" fill=\"#ffffff\" fill-opacity=\"0.92\" stroke=\"#dddddd\"/>\n";
    svg += text_el((b.x0 + b.x1) / 2, (b.y0 + b.y1) / 2 + 4, "middle", elabel[e],
                   "font-size=\"11\" fill=\"#222222\"");
  }
  svg += "</svg>\n";
  return svg;
}

// ---------------------------------------------------------------------------------------------
}  // namespace render

Result<std::string> render_graph_svg(const ReportGraph& graph) {
  return render::guarded([&]() -> Result<std::string> {
    for (size_t i = 0; i < graph.edges.size(); ++i) {
      const auto& e = graph.edges[i];
      if (e.from >= graph.nodes.size() || e.to >= graph.nodes.size()) {
        return invalid_argument("graph.edges[" + std::to_string(i) + "] names no node");
      }
    }
    return render::graph_svg(graph, true);
  });
}

}  // namespace prov::lineage
