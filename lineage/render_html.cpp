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

// HTML

constexpr const char* kCss = R"css(
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #ffffff; color: #1d1d1f; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 32px 40px; }
h1 { font-size: 1.65em; margin: 0 0 4px; overflow-wrap: anywhere; }
h2 { font-size: 1.2em; margin: 28px 0 8px; border-bottom: 1px solid #dddddd; padding-bottom: 4px; }
.sub { color: #555555; font-size: 0.9em; margin: 2px 0; overflow-wrap: anywhere; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace; font-size: 0.86em; }
.digest { word-break: break-all; }
.verdict { border: 2px solid #8a8a8a; border-left-width: 10px; border-radius: 8px; padding: 14px 18px; margin: 18px 0; background: #f5f5f5; }
.verdict.derived { border-color: #b9472f; background: #fcf1ee; }
.verdict.independent { border-color: #2e7d32; background: #eff7ef; }
.verdict .kicker { text-transform: uppercase; letter-spacing: 0.06em; font-size: 0.78em; color: #555555; }
.verdict .relation { font-size: 1.6em; font-weight: 700; margin: 2px 0 0; }
.verdict .meaning { color: #444444; margin: 0 0 8px; }
.verdict dl { display: grid; grid-template-columns: max-content 1fr; gap: 4px 18px; margin: 6px 0 0; }
.verdict dt { font-weight: 600; color: #444444; }
.verdict dd { margin: 0; overflow-wrap: anywhere; }
.summary { white-space: pre-line; }
.badge { display: inline-block; padding: 0 9px; border-radius: 10px; font-size: 0.85em; font-weight: 600; }
.conf-high { background: #1b5e20; color: #ffffff; }
.conf-medium { background: #f2b01e; color: #1d1d1f; }
.conf-low { background: #9e9e9e; color: #ffffff; }
table { border-collapse: collapse; width: 100%; font-size: 0.88em; margin: 6px 0; }
th, td { border: 1px solid #d4d4d4; padding: 5px 8px; text-align: left; vertical-align: top; overflow-wrap: break-word; }
th { background: #eef0f3; font-weight: 600; }
tbody tr:nth-child(even) td { background: #fafafa; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
td.p { white-space: nowrap; font-variant-numeric: tabular-nums; }
.note { display: block; color: #666666; font-size: 0.85em; font-style: italic; white-space: normal; }
.sub-line { display: block; color: #666666; font-size: 0.85em; }
tr.detail td { background: #f7f7f7; color: #444444; font-size: 0.9em; }
figure { margin: 10px 0 18px; }
figure svg { display: block; max-width: 100%; height: auto; }
figcaption { color: #555555; font-size: 0.86em; margin-top: 4px; }
footer { border-top: 1px solid #cccccc; margin-top: 32px; padding-top: 10px; color: #555555; font-size: 0.85em; }
footer p { margin: 2px 0; overflow-wrap: anywhere; }
@page { margin: 14mm; }
@media print {
  body { font-size: 10pt; }
  main { max-width: none; padding: 0 1px; }
  h2 { break-after: avoid; }
  figure, .verdict, tr { break-inside: avoid; }
  thead { display: table-header-group; }
  .verdict, .badge, th, tr.detail td { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
)css";

std::string html_p_cell(const std::optional<double>& p) {
  if (!p)
    return std::string("<td class=\"p\">") + kDash + "<span class=\"note\">" + kScoreOnly +
           "</span></td>";
  return "<td class=\"p\">" + esc(format_p_value(p)) + "</td>";
}

std::string html_p_inline(const std::optional<double>& p) {
  if (!p) return std::string(kDash) + " <span class=\"note\">" + kScoreOnly + "</span>";
  return esc(format_p_value(p));
}

std::string render_html_doc(const Report& r) {
  std::string h;
  h += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  h += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  h += "<title>Lineage report: " + esc(r.candidate.name) + "</title>\n";
  h += "<style>" + std::string(kCss) + "</style>\n</head>\n<body>\n<main>\n";

  // Header.
  h += "<header>\n<h1>Lineage report: " + esc(r.candidate.name) + "</h1>\n";
  if (r.candidate.path)
    h += "<p class=\"sub\">Path: <code>" + esc(*r.candidate.path) + "</code></p>\n";
  h += "<p class=\"sub\">OMS model digest: <code class=\"digest\">" + esc(r.candidate.sha256) +
       "</code></p>\n</header>\n";

  // Verdict.
  const ReportVerdict& v = r.verdict;
  h += "<section class=\"verdict " + verdict_class(v.relation) + "\" aria-label=\"Verdict\">\n";
  const std::string relation = relation_name(v.relation);
  const std::string confidence = confidence_name(v.confidence);
  h += "<div class=\"kicker\">Verdict</div>\n";
  h += "<div class=\"relation\">" + esc(relation) + "</div>\n";
  h += "<p class=\"meaning\">" + esc(relation_info(v.relation).meaning) + "</p>\n<dl>\n";
  const auto parents = verdict_parents(v);
  h += std::string("<dt>") + (parents.size() > 1 ? "Parents" : "Parent") + "</dt><dd>";
  if (parents.empty()) h += "none";
  for (size_t i = 0; i < parents.size(); ++i) h += (i ? ", " : "") + esc(parents[i]);
  h += "</dd>\n";
  h += "<dt>p-value</dt><dd>" + html_p_inline(v.p_value) + "</dd>\n";
  h += "<dt>Confidence</dt><dd><span class=\"badge conf-" + esc(confidence) + "\">" +
       esc(confidence) + "</span></dd>\n";
  h += "<dt>Summary</dt><dd class=\"summary\">" + esc(v.summary) + "</dd>\n</dl>\n</section>\n";

  // References.
  const bool holm = any_holm(r.references);
  h += "<section>\n<h2>References</h2>\n";
  if (r.references.empty()) {
    h += "<p>No reference models were compared.</p>\n";
  } else {
    h += "<table>\n<thead><tr><th>Reference</th><th>OMS model "
         "digest</th><th>Relation</th><th>p-value</th>";
    if (holm) h += "<th>p-value (Holm)</th>";
    h += "</tr></thead>\n<tbody>\n";
    for (const auto& ref : r.references) {
      h += "<tr><td>" + esc(ref.name) + "</td><td><code class=\"digest\">" + esc(ref.sha256) +
           "</code></td><td>" + esc(ref.relation) + "</td>" + html_p_cell(ref.p_value);
      if (holm) h += ref.has_holm ? html_p_cell(ref.p_value_holm) : "<td class=\"p\"></td>";
      h += "</tr>\n";
    }
    h += "</tbody>\n</table>\n";
  }
  h += "</section>\n";

  // Evidence.
  h += "<section>\n<h2>Evidence</h2>\n";
  if (r.evidence.empty()) {
    h += "<p>No evidence rows.</p>\n";
  } else {
    h += "<table>\n<thead><tr><th>Reference</th><th>Layer</th><th>Method</th><th>Statistic</th>"
         "<th>Value</th><th>p-value</th><th>Null hypothesis</th><th>Probes</th></tr></thead>\n"
         "<tbody>\n";
    for (const auto& e : r.evidence) {
      h += "<tr><td>" + esc(e.reference) + "</td><td>" + esc(e.layer) + "</td><td>" + esc(e.method);
      if (e.combination) {
        h += "<span class=\"sub-line\">combination: " + esc(*e.combination) + "</span>";
      }
      h += "</td><td>" + esc(e.statistic) + "</td><td class=\"num\">" +
           (e.value ? esc(format_number(*e.value)) : std::string(kDash)) + "</td>" +
           html_p_cell(e.p_value) + "<td>" + esc(e.null_hypothesis) + "</td><td class=\"num\">" +
           esc(probes_text(e)) + "</td></tr>\n";
      if (e.detail) {
        h += "<tr class=\"detail\"><td colspan=\"8\">detail: <code>" + esc(detail_text(*e.detail)) +
             "</code></td></tr>\n";
      }
    }
    h += "</tbody>\n</table>\n";
  }
  h += "</section>\n";

  // Graph.
  h += "<section>\n<h2>Lineage graph</h2>\n<figure>\n" + graph_svg(r.graph, false) +
       "<figcaption>Arrows point from parent to child and carry the relation and its p-value; "
       "the candidate is highlighted. Dashed grey edges: independent or inconclusive.</figcaption>"
       "\n</figure>\n</section>\n";

  if (r.weight_layers && !r.weight_layers->empty()) {
    h += "<section>\n<h2>Weight similarity by layer</h2>\n<figure>\n" +
         weight_plot(*r.weight_layers) +
         "<figcaption>Similarity of each layer's weights to the reference, one line per "
         "reference and component.</figcaption>\n</figure>\n</section>\n";
  }
  if (r.probe_curve && !r.probe_curve->empty()) {
    h += "<section>\n<h2>p-value against number of probes</h2>\n<figure>\n" +
         probe_plot(*r.probe_curve) +
         "<figcaption>How the p-value falls as probes are added (both axes logarithmic); dashed "
         "lines at p = 0.05 and p = 0.01.</figcaption>\n</figure>\n</section>\n";
  }
  if (!r.evidence.empty()) {
    h += "<section>\n<h2>p-value summary</h2>\n<figure>\n" + pvalue_bars(r.evidence) +
         "<figcaption>" + kMinus +
         "log10 p for each evidence row (longer is stronger evidence against its null "
         "hypothesis), capped at 300.</figcaption>\n</figure>\n</section>\n";
  }

  // Footer.
  h += "<footer>\n<p>Generated by " + esc(r.tool_name) + " " + esc(r.tool_version) +
       " (report format version 1).</p>\n";
  if (r.suite) {
    h += "<p>Probe suite: " + esc(r.suite->name) + ", digest <code class=\"digest\">" +
         esc(r.suite->digest) + "</code></p>\n";
  } else {
    h += "<p>Probe suite: none recorded.</p>\n";
  }
  if (r.environment) {
    h += "<p>Environment: " + esc(environment_text(*r.environment)) + "</p>\n";
    const auto runs = run_lines(*r.environment);
    if (!runs.empty()) {
      h += "<p>Signatures:</p>\n<ul class=\"runs\">\n";
      for (const auto& line : runs) h += "<li>" + esc(line) + "</li>\n";
      h += "</ul>\n";
    }
  } else {
    h += "<p>Environment: not recorded.</p>\n";
  }
  h += "</footer>\n</main>\n</body>\n</html>\n";
  return h;
}

// ---------------------------------------------------------------------------------------------
}  // namespace render

Result<std::string> render_html(const Report& report) {
  return render::guarded([&]() -> Result<std::string> { return render::render_html_doc(report); });
}

}  // namespace prov::lineage
