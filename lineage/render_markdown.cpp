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

// Markdown

std::string md_p(const std::optional<double>& p) {
  if (!p) return std::string(kDash) + " *" + kScoreOnly + "*";
  return format_p_value(p);  // our own text: digits, 'e', '-', '+', '<', ' '
}

std::string render_markdown_doc(const Report& r) {
  std::string m;
  m += "# Lineage report: " + md(r.candidate.name) + "\n\n";
  if (r.candidate.path) m += "- **Path:** " + md(*r.candidate.path) + "\n";
  m += "- **OMS model digest:** `" + r.candidate.sha256 + "`\n\n";

  const ReportVerdict& v = r.verdict;
  m += "## Verdict\n\n";
  m += "- **Relation:** " + md(relation_name(v.relation)) + " " + kDash + " " +
       md(relation_info(v.relation).meaning) + "\n";
  const auto parents = verdict_parents(v);
  m += std::string("- **") + (parents.size() > 1 ? "Parents" : "Parent") + ":** ";
  if (parents.empty()) m += "none";
  for (size_t i = 0; i < parents.size(); ++i) m += (i ? ", " : "") + md(parents[i]);
  m += "\n- **p-value:** " + md_p(v.p_value) + "\n";
  m += "- **Confidence:** " + md(confidence_name(v.confidence)) + "\n";
  m += "- **Summary:** " + md(v.summary) + "\n\n";

  const bool holm = any_holm(r.references);
  m += "## References\n\n";
  if (r.references.empty()) {
    m += "No reference models were compared.\n\n";
  } else {
    m += "| Reference | OMS model digest | Relation | p-value |" +
         std::string(holm ? " p-value (Holm) |" : "") + "\n|---|---|---|---|" +
         (holm ? "---|" : "") + "\n";
    for (const auto& ref : r.references) {
      m += "| " + md(ref.name) + " | `" + ref.sha256 + "` | " + md(ref.relation) + " | " +
           md_p(ref.p_value) + " |";
      if (holm) m += " " + (ref.has_holm ? md_p(ref.p_value_holm) : std::string()) + " |";
      m += "\n";
    }
    m += "\n";
  }

  m += "## Evidence\n\n";
  if (r.evidence.empty()) {
    m += "No evidence rows.\n\n";
  } else {
    m +=
        "| # | Reference | Layer | Method | Statistic | Value | p-value | Null hypothesis | Probes "
        "|\n|---|---|---|---|---|---|---|---|---|\n";
    bool details = false;
    for (size_t i = 0; i < r.evidence.size(); ++i) {
      const auto& e = r.evidence[i];
      std::string method = md(e.method);
      if (e.combination) method += " (combination: " + md(*e.combination) + ")";
      m += "| " + int_str(static_cast<int64_t>(i + 1)) + " | " + md(e.reference) + " | " +
           md(e.layer) + " | " + method + " | " + md(e.statistic) + " | " +
           (e.value ? format_number(*e.value) : std::string(kDash)) + " | " + md_p(e.p_value) +
           " | " + md(e.null_hypothesis) + " | " + probes_text(e) + " |\n";
      details = details || e.detail.has_value();
    }
    m += "\n";
    if (details) {
      m += "Details:\n\n";
      for (size_t i = 0; i < r.evidence.size(); ++i) {
        if (r.evidence[i].detail) {
          m += "- Row " + int_str(static_cast<int64_t>(i + 1)) + ": " +
               md(detail_text(*r.evidence[i].detail)) + "\n";
        }
      }
      m += "\n";
    }
  }

  m += "## Lineage graph\n\n";
  const ReportGraph& g = r.graph;
  auto node_text = [&](size_t u) {
    const ReportNode& node = g.nodes[u];
    return "**" + md(node.label) + "**" + (node.kind == "candidate" ? " (candidate)" : "") +
           (node.kind == "control" ? " (control)" : "");
  };
  if (g.edges.empty()) m += "No edges.\n";
  for (const auto& e : g.edges) {
    m += "- " + node_text(e.from) + " " + kArrow + " " + node_text(e.to) + ": " + md(e.relation) +
         ", p-value " + md_p(e.p_value) + "\n";
  }
  std::vector<bool> linked(g.nodes.size(), false);
  for (const auto& e : g.edges) linked[e.from] = linked[e.to] = true;
  std::string lone;
  for (size_t u = 0; u < g.nodes.size(); ++u) {
    if (!linked[u]) lone += (lone.empty() ? "" : ", ") + node_text(u);
  }
  if (!lone.empty()) m += "\nNodes without edges: " + lone + "\n";
  m += "\n";

  if (r.weight_layers && !r.weight_layers->empty()) {
    m += "## Weight similarity by layer\n\n";
    m += "| Reference | Component | Layers | Min | Mean | Max |\n|---|---|---|---|---|---|\n";
    struct Agg {
      std::string reference, component;
      size_t count = 0;
      double min = 0, max = 0, sum = 0;
    };
    std::vector<Agg> aggs;
    std::map<std::pair<std::string, std::string>, size_t> index;
    for (const auto& w : *r.weight_layers) {
      auto [it, inserted] = index.emplace(std::make_pair(w.reference, w.component), aggs.size());
      if (inserted) aggs.push_back({w.reference, w.component, 0, w.similarity, w.similarity, 0});
      Agg& a = aggs[it->second];
      ++a.count;
      a.min = std::min(a.min, w.similarity);
      a.max = std::max(a.max, w.similarity);
      a.sum += w.similarity;
    }
    for (const auto& a : aggs) {
      m += "| " + md(a.reference) + " | " + md(a.component) + " | " +
           int_str(static_cast<int64_t>(a.count)) + " | " + format_number(a.min) + " | " +
           format_number(a.sum / static_cast<double>(a.count)) + " | " + format_number(a.max) +
           " |\n";
    }
    m += "\n";
  }
  if (r.probe_curve && !r.probe_curve->empty()) {
    m += "## p-value against number of probes\n\n";
    m += "| Reference | Probes | p-values |\n|---|---|---|\n";
    for (const auto& c : *r.probe_curve) {
      std::string probes, ps;
      for (size_t i = 0; i < c.probes.size(); ++i) {
        probes += (i ? ", " : "") + int_str(c.probes[i]);
        ps += (i ? ", " : "") + format_p_value(c.p_values[i]);
      }
      m += "| " + md(c.reference) + " | " + probes + " | " + ps + " |\n";
    }
    m += "\n";
  }

  m += "---\n\n";
  m += "Generated by " + md(r.tool_name) + " " + md(r.tool_version) +
       " (report format version 1).  \n";
  if (r.suite) {
    m += "Probe suite: " + md(r.suite->name) + ", digest " + md(r.suite->digest) + ".  \n";
  } else {
    m += "Probe suite: none recorded.  \n";
  }
  if (r.environment) {
    m += "Environment: " + md(environment_text(*r.environment)) + ".\n";
    const auto runs = run_lines(*r.environment);
    if (!runs.empty()) {
      m += "\nSignatures:\n\n";
      for (const auto& line : runs) m += "- " + md(line) + "\n";
    }
  } else {
    m += "Environment: not recorded.\n";
  }
  return m;
}

}  // namespace render

Result<std::string> render_markdown(const Report& report) {
  return render::guarded(
      [&]() -> Result<std::string> { return render::render_markdown_doc(report); });
}

}  // namespace prov::lineage
