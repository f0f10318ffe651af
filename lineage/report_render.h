// Renders a model-lineage audit report (the JSON predicate of a signed statement, format in
// docs/formats/report.md) for people: as Markdown, as one self-contained HTML page (inline CSS
// and inline SVG; no scripts, no external resources, no web fonts) and the lineage graph alone
// as a standalone SVG document.
//
// Every function here is a pure function of its argument: same JSON in, same bytes out (no
// clock, no locale, no hash-map order). They keep no state and are safe to call concurrently.
// The caller keeps ownership of the JSON; the returned strings belong to the caller.
//
// Strings taken from the JSON are escaped for their output (HTML/XML entities; Markdown
// backslash escapes, `|` in table cells, `<` `>` `&` as entities), control characters other than
// tab and newline and invalid UTF-8 are replaced by U+FFFD, so a hostile report cannot inject
// markup.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace prov::lineage {

// Checks `report` against the report schema (version 1). Returns OK, or kInvalidArgument naming
// the first missing or ill-typed field by its path in the report ("verdict.p_value",
// "evidence[2].null_hypothesis", "graph.edges[0].to"), checked in the order of the format page;
// kUnsupported when "report_version" is an integer other than 1.
Status validate_report(const nlohmann::json& report);

// The report as GitHub-flavoured Markdown: title, verdict, references and evidence tables, the
// lineage graph as a list of edges, short tables summarising the plots' data, and a footer.
// Fails as validate_report does.
Result<std::string> render_markdown(const nlohmann::json& report);

// The report as one HTML5 document (starts with "<!DOCTYPE html>"): title, verdict box,
// references and evidence tables, the lineage graph and up to three plots as inline SVG (a plot
// whose data is absent is left out), and a footer. Fails as validate_report does.
Result<std::string> render_html(const nlohmann::json& report);

// The report's "graph" object alone as a standalone SVG document (XML declaration first), laid
// out top-down in layers from the roots; the same drawing render_html embeds. Fails with
// kInvalidArgument naming the first bad field ("graph.nodes[1].kind"), a duplicate node id, or an
// edge end that names no node.
Result<std::string> render_graph_svg(const nlohmann::json& graph);

// A p-value as shown in reports: three significant digits in scientific notation ("1.23e-45",
// "5.00e-02"), "< 1e-300" below 1e-300 (0 included), "—" (U+2014) for nullopt, "NaN" for NaN.
std::string format_p_value(std::optional<double> p);

}  // namespace prov::lineage
