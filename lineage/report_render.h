// Renders a model-lineage audit report (lineage/report.h; the JSON predicate of a signed
// statement, format in docs/formats/report.md) for people: as Markdown, as one self-contained HTML
// page (inline CSS and inline SVG; no scripts, no external resources, no web fonts) and the lineage
// graph alone as a standalone SVG document.
//
// Every function here is a pure function of its argument: same report in, same bytes out (no
// clock, no locale, no hash-map order). They keep no state and are safe to call concurrently.
// The returned strings belong to the caller. Sources: render_util.{h,cpp} (text, SVG pieces),
// render_graph.cpp, render_plots.cpp, render_html.cpp, render_markdown.cpp.
//
// Strings taken from the report are escaped for their output (HTML/XML entities; Markdown
// backslash escapes, `|` in table cells, `<` `>` `&` as entities), control characters other than
// tab and newline and invalid UTF-8 are replaced by U+FFFD, so a hostile report cannot inject
// markup.
#pragma once

#include <optional>
#include <string>

#include "core/status.h"
#include "lineage/report.h"

namespace prov::lineage {

// The report as GitHub-flavoured Markdown: title, verdict, references and evidence tables, the
// lineage graph as a list of edges, short tables summarising the plots' data, and a footer.
Result<std::string> render_markdown(const Report& report);

// The report as one HTML5 document (starts with "<!DOCTYPE html>"): title, verdict box,
// references and evidence tables, the lineage graph and up to three plots as inline SVG (a plot
// whose data is absent is left out), and a footer.
Result<std::string> render_html(const Report& report);

// The report's graph alone as a standalone SVG document (XML declaration first), laid out
// top-down in layers from the roots; the same drawing render_html embeds. kInvalidArgument for an
// edge whose end names no node.
Result<std::string> render_graph_svg(const ReportGraph& graph);

// A p-value as shown in reports: three significant digits in scientific notation ("1.23e-45",
// "5.00e-02"), "< 1e-300" below 1e-300 (0 included), "—" (U+2014) for nullopt, "NaN" for NaN.
std::string format_p_value(std::optional<double> p);

}  // namespace prov::lineage
