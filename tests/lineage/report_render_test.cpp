#include "lineage/report_render.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/test_support.h"

namespace prov::lineage {
namespace {

using nlohmann::json;

// The renderers take typed reports (report.h); these tests write reports as JSON, the form the
// schema is specified in, and read them first, as every caller does.
Result<std::string> render_html(const json& j) {
  PROV_ASSIGN_OR_RETURN(Report r, report_from_json(j));
  return lineage::render_html(r);
}
Result<std::string> render_markdown(const json& j) {
  PROV_ASSIGN_OR_RETURN(Report r, report_from_json(j));
  return lineage::render_markdown(r);
}
Result<std::string> render_graph_svg(const json& j) {
  PROV_ASSIGN_OR_RETURN(ReportGraph g, graph_from_json(j));
  return lineage::render_graph_svg(g);
}

std::string hex64(char c) {
  return std::string(64, c);
}

// A full report: a fine-tuned candidate, its parent, two unrelated references and a control.
json sample_report() {
  json r;
  r["report_version"] = 1;
  r["candidate"] = {{"name", "tinyllama-med-ft"},
                    {"path", "/models/tinyllama-med-ft/model.safetensors"},
                    {"digest", {{"sha256", hex64('a')}}}};
  r["verdict"] = {{"relation", "finetuned"},
                  {"parent", "tinyllama-1.1b"},
                  {"p_value", 2.3456e-41},
                  {"confidence", "high"},
                  {"summary",
                   "Fine-tuned from tinyllama-1.1b: per-layer weights align (after matching "
                   "neurons) far beyond chance, and output distributions agree.\nThe other "
                   "references show no relation."}};
  r["references"] = json::array({{{"name", "tinyllama-1.1b"},
                                  {"digest", {{"sha256", hex64('b')}}},
                                  {"relation", "finetuned"},
                                  {"p_value", 2.3456e-41},
                                  {"p_value_holm", 7.0368e-41}},
                                 {{"name", "llama2-7b"},
                                  {"digest", {{"sha256", hex64('c')}}},
                                  {"relation", "independent"},
                                  {"p_value", 0.62},
                                  {"p_value_holm", 1.0}},
                                 {{"name", "phi-2"},
                                  {"digest", {{"sha256", hex64('d')}}},
                                  {"relation", "independent"},
                                  {"p_value", nullptr},
                                  {"p_value_holm", nullptr}}});
  r["evidence"] =
      json::array({{{"reference", "tinyllama-1.1b"},
                    {"layer", "identity"},
                    {"method", "tensor-digest"},
                    {"statistic", "shared tensors"},
                    {"value", 0},
                    {"p_value", nullptr},
                    {"null_hypothesis", "no tensor is byte-identical"}},
                   {{"reference", "tinyllama-1.1b"},
                    {"layer", "weights"},
                    {"method", "permutation-aligned cosine"},
                    {"statistic", "mean cosine similarity"},
                    {"value", 0.9132},
                    {"p_value", 1.2e-302},
                    {"null_hypothesis", "weights of independently initialised models"},
                    {"combination", "fisher over 22 layers"},
                    {"detail", {{"layers", 22}, {"permutation", "hungarian"}}}},
                   {{"reference", "tinyllama-1.1b"},
                    {"layer", "outputs"},
                    {"method", "top-k agreement"},
                    {"statistic", "mean Jaccard of top-20"},
                    {"value", 0.71},
                    {"p_value", 3.1e-12},
                    {"null_hypothesis", "top-k overlap of unrelated models on this suite"},
                    {"probes", 256},
                    {"probes_needed", 48}},
                   {{"reference", "llama2-7b"},
                    {"layer", "outputs"},
                    {"method", "top-k agreement"},
                    {"statistic", "mean Jaccard of top-20"},
                    {"value", 0.12},
                    {"p_value", 0.62},
                    {"null_hypothesis", "top-k overlap of unrelated models on this suite"},
                    {"probes", 256}},
                   {{"reference", "phi-2"},
                    {"layer", "distillation"},
                    {"method", "sequence likelihood ratio"},
                    {"statistic", "log-likelihood ratio"},
                    {"value", -3.5},
                    {"p_value", 0.031},
                    {"null_hypothesis", "candidate was not trained on the reference's generations"},
                    {"probes", 128}},
                   {{"reference", "llama2-7b"},
                    {"layer", "weights"},
                    {"method", "embedding cosine"},
                    {"statistic", "max cosine"},
                    {"value", 0.04},
                    {"p_value", 0.008},
                    {"null_hypothesis", "weights of independently initialised models"}}});
  // Per-layer similarity: the parent stays near 0.9, an unrelated reference near 0.
  std::mt19937_64 rng(7);
  auto noise = [&]() { return static_cast<double>(rng() % 1000) / 1000.0 - 0.5; };
  json wl = json::array();
  for (const char* ref : {"tinyllama-1.1b", "llama2-7b"}) {
    for (const char* comp : {"attn.q", "mlp.up"}) {
      for (int layer = 0; layer < 22; ++layer) {
        const bool parent = std::string(ref) == "tinyllama-1.1b";
        const double sim = parent ? 0.95 - 0.006 * layer + 0.02 * noise() : 0.08 * noise();
        wl.push_back({{"reference", ref},
                      {"layer", layer},
                      {"component", comp},
                      {"similarity", sim},
                      {"p_value", parent ? 1e-20 : 0.5}});
      }
    }
  }
  r["weight_layers"] = wl;
  json pc = json::array();
  const std::vector<int> probes = {8, 16, 32, 64, 128, 256, 512};
  for (const char* ref : {"tinyllama-1.1b", "llama2-7b", "phi-2"}) {
    json ps = json::array();
    for (int n : probes) {
      if (std::string(ref) == "tinyllama-1.1b") {
        ps.push_back(std::pow(10.0, -0.09 * n));
      } else {
        ps.push_back(std::min(1.0, 0.3 + 0.4 * std::fabs(noise())));
      }
    }
    pc.push_back({{"reference", ref}, {"probes", probes}, {"p_value", ps}});
  }
  r["probe_curve"] = pc;
  r["graph"] = {
      {"nodes",
       json::array({{{"id", "base"}, {"label", "tinyllama-1.1b"}, {"kind", "reference"}},
                    {{"id", "cand"}, {"label", "tinyllama-med-ft"}, {"kind", "candidate"}},
                    {{"id", "chat"}, {"label", "tinyllama-chat"}, {"kind", "reference"}},
                    {{"id", "llama"}, {"label", "llama2-7b"}, {"kind", "reference"}},
                    {{"id", "phi"}, {"label", "phi-2"}, {"kind", "reference"}},
                    {{"id", "ctl"}, {"label", "random-init control"}, {"kind", "control"}}})},
      {"edges",
       json::array(
           {{{"from", "base"}, {"to", "cand"}, {"relation", "finetuned"}, {"p_value", 2.3456e-41}},
            {{"from", "base"}, {"to", "chat"}, {"relation", "finetuned"}, {"p_value", nullptr}},
            {{"from", "llama"}, {"to", "cand"}, {"relation", "independent"}, {"p_value", 0.62}}})}};
  r["suite"] = {{"name", "general-v1"}, {"digest", hex64('e')}};
  r["tool"] = {{"name", "prov"}, {"version", "0.4.0"}};
  r["environment"] = {{"device", "cpu"}, {"dtype", "float32"}};
  return r;
}

size_t count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t i = hay.find(needle); i != std::string::npos; i = hay.find(needle, i + 1)) ++n;
  return n;
}

// Checks that every start tag is closed in order (HTML void elements and "/>" excepted).
// Returns "" when balanced, else what is wrong.
std::string tag_balance(const std::string& doc, bool html) {
  static const std::set<std::string> kVoid = {"meta", "br",  "hr",   "img",  "link",  "input",
                                              "col",  "wbr", "area", "base", "source"};
  std::vector<std::string> stack;
  size_t i = 0;
  while ((i = doc.find('<', i)) != std::string::npos) {
    const size_t j = doc.find('>', i);
    if (j == std::string::npos) return "unterminated tag at " + std::to_string(i);
    const std::string tag = doc.substr(i + 1, j - i - 1);
    i = j + 1;
    if (tag.empty()) return "empty tag";
    if (tag[0] == '!' || tag[0] == '?') continue;
    const bool closing = tag[0] == '/';
    const bool self = tag.back() == '/';
    size_t k = closing ? 1 : 0;
    std::string name;
    while (k < tag.size() && (std::isalnum(static_cast<unsigned char>(tag[k])) || tag[k] == '-'))
      name += tag[k++];
    if (name.empty()) return "tag without a name: <" + tag + ">";
    if (closing) {
      if (stack.empty() || stack.back() != name) {
        return "</" + name + "> closes " + (stack.empty() ? "nothing" : "<" + stack.back() + ">");
      }
      stack.pop_back();
    } else if (!self && !(html && kVoid.count(name))) {
      stack.push_back(name);
    }
  }
  return stack.empty() ? "" : "unclosed <" + stack.back() + ">";
}

// Every "http" in the document is the SVG namespace; nothing is loaded from anywhere.
void expect_self_contained(const std::string& doc) {
  EXPECT_EQ(count(doc, "http"), count(doc, "xmlns=\"http://www.w3.org/2000/svg\""));
  EXPECT_EQ(count(doc, "<script"), 0u);
  EXPECT_EQ(count(doc, "src=\""), 0u);  // attributes; escaped text may still say "src="
  EXPECT_EQ(count(doc, "href=\""), 0u);
  EXPECT_EQ(count(doc, "@import"), 0u);
  EXPECT_EQ(count(doc, "url("), count(doc, "url(#prov-arrow"));
  EXPECT_EQ(count(doc, "<link"), 0u);
  EXPECT_EQ(count(doc, "nan"), 0u);
  EXPECT_EQ(count(doc, "inf\""), 0u);
}

TEST(ReportRender, FullSampleRendersAsHtml) {
  auto html = render_html(sample_report());
  ASSERT_TRUE(html.is_ok()) << html.status().to_string();
  const std::string& h = *html;
  EXPECT_EQ(h.rfind("<!DOCTYPE html>\n", 0), 0u);
  EXPECT_NE(h.find("<title>Lineage report: tinyllama-med-ft</title>"), std::string::npos);
  EXPECT_EQ(count(h, "<svg"), 4u);  // graph + three plots
  EXPECT_EQ(count(h, "</svg>"), 4u);
  EXPECT_EQ(tag_balance(h, true), "");
  expect_self_contained(h);
  // Verdict box, tables, footer.
  EXPECT_NE(h.find("class=\"verdict derived\""), std::string::npos);
  EXPECT_NE(h.find("<div class=\"relation\">finetuned</div>"), std::string::npos);
  EXPECT_NE(h.find("2.35e-41"), std::string::npos);
  EXPECT_NE(h.find("conf-high"), std::string::npos);
  for (const char* name : {"llama2-7b", "phi-2", "random-init control"}) {
    EXPECT_NE(h.find(name), std::string::npos) << name;
  }
  EXPECT_NE(h.find("<th>p-value (Holm)</th>"), std::string::npos);
  EXPECT_NE(h.find("7.04e-41"), std::string::npos);
  // Every p-value cell is directly followed by its null hypothesis.
  EXPECT_NE(h.find("<td class=\"p\">3.10e-12</td><td>top-k overlap of unrelated models on this "
                   "suite</td><td class=\"num\">256 (needed 48)</td>"),
            std::string::npos);
  EXPECT_NE(h.find("<td class=\"p\">&lt; 1e-300</td><td>weights of independently"),
            std::string::npos);
  EXPECT_NE(h.find("combination: fisher over 22 layers"), std::string::npos);
  EXPECT_NE(h.find("{&quot;layers&quot;:22,&quot;permutation&quot;:&quot;hungarian&quot;}"),
            std::string::npos);
  EXPECT_NE(h.find("Generated by prov 0.4.0"), std::string::npos);
  EXPECT_NE(h.find(hex64('e')), std::string::npos);
  EXPECT_NE(h.find("device cpu, dtype float32"), std::string::npos);
  // Graph: every node drawn, the candidate highlighted, edge labels present.
  EXPECT_EQ(count(h, "class=\"node\""), 6u);
  EXPECT_EQ(count(h, "class=\"edge\""), 3u);
  EXPECT_NE(h.find("finetuned p=2.35e-41"), std::string::npos);
  EXPECT_NE(h.find("finetuned (score only)"), std::string::npos);
  EXPECT_NE(h.find("font-weight=\"bold\">tinyllama-med-ft</text>"), std::string::npos);
  // Plots: one polyline per (reference, component) and per probe curve; bar chart lines.
  EXPECT_EQ(count(h, "<polyline"), 4u + 3u);
  EXPECT_NE(h.find(">p = 0.05</text>"), std::string::npos);
  EXPECT_NE(h.find(">p = 0.01</text>"), std::string::npos);
}

TEST(ReportRender, FullSampleRendersAsMarkdown) {
  json r = sample_report();
  r["references"][0]["name"] = "a|b";
  auto md = render_markdown(r);
  ASSERT_TRUE(md.is_ok()) << md.status().to_string();
  const std::string& m = *md;
  EXPECT_EQ(m.rfind("# Lineage report: tinyllama-med-ft\n", 0), 0u);
  EXPECT_NE(m.find("- **Relation:** finetuned"), std::string::npos);
  EXPECT_NE(m.find("- **p-value:** 2.35e-41"), std::string::npos);
  EXPECT_NE(m.find("| Reference | OMS model digest | Relation | p-value | p-value (Holm) |"),
            std::string::npos);
  EXPECT_NE(m.find("| a\\|b | `" + hex64('b') + "` | finetuned | 2.35e-41 | 7.04e-41 |"),
            std::string::npos);
  EXPECT_NE(m.find("| Null hypothesis | Probes |"), std::string::npos);
  EXPECT_NE(m.find("| < 1e-300 | weights of independently initialised models |"),
            std::string::npos);
  EXPECT_NE(m.find("score only (no calibrated test)"), std::string::npos);
  EXPECT_NE(m.find("- **tinyllama-1.1b** \xE2\x86\x92 **tinyllama-med-ft** (candidate): finetuned, "
                   "p-value 2.35e-41"),
            std::string::npos);
  EXPECT_NE(m.find("Nodes without edges: **phi-2**, **random-init control** (control)"),
            std::string::npos);
  EXPECT_NE(m.find("## Weight similarity by layer"), std::string::npos);
  EXPECT_NE(m.find("## p-value against number of probes"), std::string::npos);
  EXPECT_NE(m.find("Generated by prov 0.4.0"), std::string::npos);
  // Every table row has as many unescaped pipes as its header.
  size_t start = 0;
  while (start < m.size()) {
    const size_t end = m.find('\n', start);
    const std::string line = m.substr(start, end - start);
    start = end == std::string::npos ? m.size() : end + 1;
    if (line.empty() || line[0] != '|') continue;
    size_t pipes = 0;
    for (size_t i = 0; i < line.size(); ++i) {
      if (line[i] == '|' && (i == 0 || line[i - 1] != '\\')) ++pipes;
    }
    EXPECT_TRUE(pipes == 5 || pipes == 6 || pipes == 10 || pipes == 7 || pipes == 4) << line;
  }
}

TEST(ReportRender, HostileStringsAreEscaped) {
  json r = sample_report();
  const std::string evil = "<script>alert(\"x\")</script>\"&'";
  r["candidate"]["name"] = evil;
  r["candidate"]["path"] = "</code><img src=x onerror=alert(1)>";
  r["verdict"]["summary"] = evil + "\n# heading\n| cell |";
  r["references"][1]["name"] = evil;
  r["evidence"][0]["method"] = "</td><td>";
  r["evidence"][0]["null_hypothesis"] = "*bold* _it_ [link](x) `code` <b>";
  r["evidence"][1]["detail"] = {{"<k>", "</code>"}};
  r["graph"]["nodes"][0]["label"] = "<svg onload=alert(1)>";
  r["graph"]["edges"][0]["relation"] = "\"><script>";
  r["suite"]["digest"] = "</footer>";
  r["tool"]["version"] = std::string("1\x01\xff") + "2";  // control char, invalid UTF-8

  auto html = render_html(r);
  ASSERT_TRUE(html.is_ok()) << html.status().to_string();
  const std::string& h = *html;
  EXPECT_EQ(count(h, "<script"), 0u);
  EXPECT_EQ(count(h, "<img"), 0u);
  EXPECT_EQ(count(h, "<svg"), 4u);
  EXPECT_EQ(count(h, "<b>"), 0u);
  EXPECT_EQ(tag_balance(h, true), "");
  expect_self_contained(h);
  EXPECT_NE(h.find("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&quot;&amp;&#39;"),
            std::string::npos);
  EXPECT_NE(h.find("&lt;/td&gt;&lt;td&gt;"), std::string::npos);
  EXPECT_NE(h.find("&lt;svg onload=alert(1)&gt;"), std::string::npos);
  EXPECT_NE(h.find("1\xEF\xBF\xBD\xEF\xBF\xBD"
                   "2"),
            std::string::npos);
  EXPECT_EQ(h.find('\x01'), std::string::npos);

  auto md = render_markdown(r);
  ASSERT_TRUE(md.is_ok()) << md.status().to_string();
  const std::string& m = *md;
  EXPECT_EQ(count(m, "<script"), 0u);
  EXPECT_EQ(count(m, "<b>"), 0u);
  EXPECT_EQ(count(m, "<img"), 0u);
  EXPECT_NE(m.find("&lt;/td&gt;&lt;td&gt;"), std::string::npos);
  EXPECT_NE(m.find("\\*bold\\* \\_it\\_ \\[link\\](x) \\`code\\` &lt;b&gt;"), std::string::npos);
  EXPECT_NE(m.find("# heading \\| cell \\|"), std::string::npos);  // one line, pipes escaped
  EXPECT_EQ(m.find("\n# heading"), std::string::npos);

  auto svg = render_graph_svg(r["graph"]);
  ASSERT_TRUE(svg.is_ok()) << svg.status().to_string();
  EXPECT_EQ(count(*svg, "<script"), 0u);
  EXPECT_EQ(count(*svg, "<svg"), 1u);
  EXPECT_EQ(tag_balance(*svg, false), "");
}

// Removes the member at `pointer` (an object member) from a copy of the sample.
json without(const std::string& pointer) {
  json r = sample_report();
  const json::json_pointer ptr(pointer);
  r[ptr.parent_pointer()].erase(ptr.back());
  return r;
}

void expect_invalid(const json& r, const std::string& field) {
  for (const auto& res : {render_html(r), render_markdown(r)}) {
    ASSERT_FALSE(res.is_ok()) << field;
    EXPECT_EQ(res.status().code(), StatusCode::kInvalidArgument) << res.status().to_string();
    EXPECT_NE(res.status().message().find("\"" + field + "\""), std::string::npos)
        << res.status().message();
  }
  EXPECT_FALSE(validate_report(r).is_ok());
}

TEST(ReportRender, MissingRequiredFieldsAreNamed) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"/report_version", "report_version"},
      {"/candidate/name", "candidate.name"},
      {"/candidate/digest/sha256", "candidate.digest.sha256"},
      {"/verdict", "verdict"},
      {"/verdict/parent", "verdict.parent"},
      {"/verdict/p_value", "verdict.p_value"},
      {"/verdict/summary", "verdict.summary"},
      {"/references/2/digest", "references[2].digest"},
      {"/references/0/p_value", "references[0].p_value"},
      {"/evidence/1/null_hypothesis", "evidence[1].null_hypothesis"},
      {"/evidence/3/value", "evidence[3].value"},
      {"/weight_layers/5/similarity", "weight_layers[5].similarity"},
      {"/probe_curve/1/p_value", "probe_curve[1].p_value"},
      {"/graph/nodes/2/kind", "graph.nodes[2].kind"},
      {"/graph/edges/0/to", "graph.edges[0].to"},
      {"/graph/edges", "graph.edges"},
      {"/tool/version", "tool.version"},
      {"/tool", "tool"},
  };
  for (const auto& [pointer, field] : cases) expect_invalid(without(pointer), field);
}

TEST(ReportRender, IllTypedFieldsAreNamed) {
  json r = sample_report();
  r["evidence"][0]["p_value"] = "0.5";
  expect_invalid(r, "evidence[0].p_value");
  r = sample_report();
  r["references"][1]["p_value"] = 1.5;
  expect_invalid(r, "references[1].p_value");
  r = sample_report();
  r["verdict"]["relation"] = "cloned";
  expect_invalid(r, "verdict.relation");
  r = sample_report();
  r["verdict"]["confidence"] = "certain";
  expect_invalid(r, "verdict.confidence");
  r = sample_report();
  r["candidate"]["digest"]["sha256"] = "abc";
  expect_invalid(r, "candidate.digest.sha256");
  r = sample_report();
  r["evidence"][2]["probes"] = 2.5;
  expect_invalid(r, "evidence[2].probes");
  r = sample_report();
  r["evidence"][2]["layer"] = "vibes";
  expect_invalid(r, "evidence[2].layer");
  r = sample_report();
  r["probe_curve"][0]["p_value"].erase(0);
  expect_invalid(r, "probe_curve[0].p_value");
  r = sample_report();
  r["probe_curve"][0]["probes"][0] = 0;  // the probes axis is logarithmic
  expect_invalid(r, "probe_curve[0].probes[0]");
  r = sample_report();
  r["graph"]["edges"][1]["from"] = "nobody";
  expect_invalid(r, "graph.edges[1].from");
  r = sample_report();
  r["graph"]["nodes"][3]["id"] = "base";
  expect_invalid(r, "graph.nodes[3].id");
  r = sample_report();
  r["verdict"]["parents"] = {"a", 3};
  expect_invalid(r, "verdict.parents[1]");
  r = sample_report();
  r["suite"] = "general-v1";
  expect_invalid(r, "suite");

  EXPECT_EQ(render_html(json::array()).status().code(), StatusCode::kInvalidArgument);
  r = sample_report();
  r["report_version"] = 2;
  EXPECT_EQ(render_html(r).status().code(), StatusCode::kUnsupported);
  EXPECT_NE(render_html(r).status().message().find("report_version 2"), std::string::npos);
}

TEST(ReportRender, OptionalFieldsMayBeAbsent) {
  json r = sample_report();
  for (const char* key : {"weight_layers", "probe_curve", "suite", "environment"}) r.erase(key);
  r["candidate"].erase("path");
  r["references"][0].erase("p_value_holm");
  r["references"][1].erase("p_value_holm");
  r["references"][2].erase("p_value_holm");
  for (auto& e : r["evidence"]) {
    for (const char* key : {"probes", "probes_needed", "combination", "detail"}) e.erase(key);
  }
  auto html = render_html(r);
  ASSERT_TRUE(html.is_ok()) << html.status().to_string();
  EXPECT_EQ(count(*html, "<svg"), 2u);  // graph + p-value summary only
  EXPECT_EQ(html->find("Weight similarity"), std::string::npos);
  EXPECT_EQ(html->find("p-value (Holm)"), std::string::npos);
  EXPECT_NE(html->find("Probe suite: none recorded."), std::string::npos);
  EXPECT_EQ(tag_balance(*html, true), "");

  r["suite"] = nullptr;
  r["verdict"]["parent"] = nullptr;
  r["verdict"]["relation"] = "merged";
  r["verdict"]["parents"] = {"model-a", "model-b"};
  r["evidence"] = json::array();
  html = render_html(r);
  ASSERT_TRUE(html.is_ok()) << html.status().to_string();
  EXPECT_EQ(count(*html, "<svg"), 1u);  // no evidence: no bar chart
  EXPECT_NE(html->find("<dt>Parents</dt><dd>model-a, model-b</dd>"), std::string::npos);
  auto md = render_markdown(r);
  ASSERT_TRUE(md.is_ok()) << md.status().to_string();
  EXPECT_NE(md->find("- **Parents:** model-a, model-b"), std::string::npos);
  EXPECT_EQ(md->find("## Weight similarity"), std::string::npos);
}

TEST(ReportRender, OutputIsDeterministic) {
  const json r = sample_report();
  const json copy = json::parse(r.dump(2));
  EXPECT_EQ(*render_html(r), *render_html(r));
  EXPECT_EQ(*render_html(r), *render_html(copy));
  EXPECT_EQ(*render_markdown(r), *render_markdown(copy));
  EXPECT_EQ(*render_graph_svg(r["graph"]), *render_graph_svg(copy["graph"]));
  EXPECT_EQ(*render_html(r), *render_html(sample_report()));
}

struct NodeBox {
  double x, y;
  bool operator<(const NodeBox& o) const { return x < o.x || (x == o.x && y < o.y); }
};

std::vector<NodeBox> node_boxes(const std::string& svg) {
  std::vector<NodeBox> out;
  static const std::regex re("class=\"node\" x=\"(-?[0-9.]+)\" y=\"(-?[0-9.]+)\"");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), re); it != std::sregex_iterator();
       ++it) {
    out.push_back({std::stod((*it)[1]), std::stod((*it)[2])});
  }
  return out;
}

TEST(ReportRender, GraphWithCyclesAndIsolatedNodesRenders) {
  json g;
  g["nodes"] = json::array();
  for (const char* id : {"a", "b", "c", "lonely", "self", "cand", "x", "y"}) {
    g["nodes"].push_back({{"id", id},
                          {"label", std::string("node ") + id},
                          {"kind", id == std::string("cand") ? "candidate" : "reference"}});
  }
  auto edge = [](const char* from, const char* to, json p) {
    return json{{"from", from}, {"to", to}, {"relation", "finetuned"}, {"p_value", p}};
  };
  g["edges"] = json::array({edge("a", "b", 0.001), edge("b", "c", 1e-9), edge("c", "a", nullptr),
                            edge("self", "self", 0.5), edge("c", "cand", 0.0), edge("x", "y", 0.2),
                            edge("y", "x", 0.3), edge("x", "y", 0.25)});
  auto svg = render_graph_svg(g);
  ASSERT_TRUE(svg.is_ok()) << svg.status().to_string();
  const std::string& s = *svg;
  EXPECT_EQ(s.rfind("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=", 0), 0u);
  EXPECT_EQ(tag_balance(s, false), "");
  expect_self_contained(s);
  EXPECT_EQ(count(s, "class=\"edge\""), 8u);
  EXPECT_NE(s.find("finetuned p &lt; 1e-300"), std::string::npos);
  const auto boxes = node_boxes(s);
  ASSERT_EQ(boxes.size(), 8u);
  EXPECT_EQ(std::set<NodeBox>(boxes.begin(), boxes.end()).size(), 8u);
  // a is a root of the cycle a→b→c→a (first in node order), so b and c lie below it.
  EXPECT_LT(boxes[0].y, boxes[1].y);
  EXPECT_LT(boxes[1].y, boxes[2].y);
  EXPECT_LT(boxes[2].y, boxes[5].y);

  // A graph with only a cycle (no root at all), and an empty graph.
  json ring;
  ring["nodes"] = json::array({{{"id", "p"}, {"label", "p"}, {"kind", "reference"}},
                               {{"id", "q"}, {"label", "q"}, {"kind", "control"}}});
  ring["edges"] = json::array({edge("p", "q", 0.1), edge("q", "p", 0.1)});
  auto ring_svg = render_graph_svg(ring);
  ASSERT_TRUE(ring_svg.is_ok()) << ring_svg.status().to_string();
  EXPECT_EQ(node_boxes(*ring_svg).size(), 2u);
  auto empty = render_graph_svg(json{{"nodes", json::array()}, {"edges", json::array()}});
  ASSERT_TRUE(empty.is_ok()) << empty.status().to_string();
  EXPECT_EQ(tag_balance(*empty, false), "");

  // A wide layer wraps rather than growing without bound.
  json wide;
  wide["nodes"] = json::array({{{"id", "root"}, {"label", "root"}, {"kind", "reference"}}});
  wide["edges"] = json::array();
  for (int i = 0; i < 40; ++i) {
    const std::string id = "child-with-a-longish-name-" + std::to_string(i);
    wide["nodes"].push_back({{"id", id}, {"label", id}, {"kind", "reference"}});
    wide["edges"].push_back(
        {{"from", "root"}, {"to", id}, {"relation", "quantized"}, {"p_value", 1e-5}});
  }
  auto wide_svg = render_graph_svg(wide);
  ASSERT_TRUE(wide_svg.is_ok());
  const auto wb = node_boxes(*wide_svg);
  ASSERT_EQ(wb.size(), 41u);
  for (const auto& b : wb) EXPECT_LT(b.x, 1400.0);

  // Bad graphs name the field.
  json bad = g;
  bad["edges"][2]["to"] = "zz";
  auto r = render_graph_svg(bad);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("\"graph.edges[2].to\""), std::string::npos);
  EXPECT_EQ(render_graph_svg(json("x")).status().code(), StatusCode::kInvalidArgument);
}

TEST(ReportRender, PValueFormatting) {
  EXPECT_EQ(format_p_value(1.234e-45), "1.23e-45");
  EXPECT_EQ(format_p_value(1.235e-45).size(), 8u);
  EXPECT_EQ(format_p_value(0.05), "5.00e-02");
  EXPECT_EQ(format_p_value(1.0), "1.00e+00");
  EXPECT_EQ(format_p_value(9.996e-5), "1.00e-04");
  EXPECT_EQ(format_p_value(1e-300), "1.00e-300");
  EXPECT_EQ(format_p_value(9.99e-301), "< 1e-300");
  EXPECT_EQ(format_p_value(4.9e-324), "< 1e-300");
  EXPECT_EQ(format_p_value(0.0), "< 1e-300");
  EXPECT_EQ(format_p_value(std::nullopt), "\xE2\x80\x94");
  EXPECT_EQ(format_p_value(std::nan("")), "NaN");

  json r = sample_report();
  r["verdict"]["p_value"] = nullptr;
  r["evidence"][3]["p_value"] = 0.0;
  auto html = render_html(r);
  ASSERT_TRUE(html.is_ok());
  EXPECT_NE(html->find("<dt>p-value</dt><dd>\xE2\x80\x94 <span class=\"note\">score only (no "
                       "calibrated test)</span></dd>"),
            std::string::npos);
  EXPECT_NE(html->find("<td class=\"p\">\xE2\x80\x94<span class=\"note\">score only (no calibrated "
                       "test)</span></td><td>no tensor is byte-identical</td>"),
            std::string::npos);
  EXPECT_NE(html->find("<td class=\"p\">&lt; 1e-300</td><td>top-k overlap"), std::string::npos);
  auto md = render_markdown(r);
  ASSERT_TRUE(md.is_ok());
  EXPECT_NE(md->find("- **p-value:** \xE2\x80\x94 *score only (no calibrated test)*"),
            std::string::npos);
}

// Writes the sample report's renderings when PROV_REPORT_SAMPLE_OUT names an HTML path (the
// Markdown and the graph SVG go next to it, with ".md" and ".svg" appended), for screenshots.
TEST(ReportRender, WritesSampleWhenAsked) {
  const json r = sample_report();
  auto html = render_html(r);
  auto md = render_markdown(r);
  auto svg = render_graph_svg(r["graph"]);
  ASSERT_TRUE(html.is_ok() && md.is_ok() && svg.is_ok());
  const char* out = std::getenv("PROV_REPORT_SAMPLE_OUT");
  if (out == nullptr || *out == '\0') return;
  testing::write_file(out, *html);
  testing::write_file(std::string(out) + ".md", *md);
  testing::write_file(std::string(out) + ".svg", *svg);
  EXPECT_EQ(testing::read_file(out), *html);
}

}  // namespace
}  // namespace prov::lineage
