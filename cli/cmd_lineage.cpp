// prov lineage MODELS... [--svg OUT] [--json] [--permutations N] [--alpha A] [--labels FILE]
//                        [--controls M... [--suite S] [--xlik-probes N] [--fdr Q] [--cache DIR]]
//
// Recovers the lineage forest of many models from their weights (lineage/graph.h over
// fingerprint/weights.h comparisons of every pair): edges with relation, direction (and how
// sure), p-value; roots = models with no parent among those given. Test A runs at alpha divided
// by the number of pairs (Bonferroni). With --controls, models that are roots by their weights
// may get a distillation parent from the output tests (fingerprint/outputs.h): every root is
// tested as a student against every model that has at least two controls of its own shape
// (architecture, sizes and tokenizer: the controls must stand for independent models like the
// teacher), and lineage::attach_output_edges draws the discoveries (Benjamini-Hochberg at
// --fdr). With --labels (a zoo's labels.json) it also scores the recovered parents against the
// known ones (weight parents, and distillation parents when --controls was given).
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "cli/options.h"
#include "core/file_io.h"
#include "lineage/recover.h"
#include "lineage/report_render.h"

namespace prov::cli {

namespace {

struct LineageCliOptions {
  lineage::LineageRequest request;
  std::string svg;
  bool json = false;
};

nlohmann::json result_json(const lineage::LineageResult& r, const LineageCliOptions& o) {
  const auto& names = r.names;
  nlohmann::json edges = nlohmann::json::array();
  for (const auto& e : r.forest.edges) {
    edges.push_back(
        {{"parent", names[e.parent]},
         {"child", names[e.child]},
         {"relation", relation_name(e.relation)},
         {"p_value", e.p_value ? nlohmann::json(*e.p_value) : nlohmann::json()},
         {"score", e.score},
         {"direction_basis", e.direction_basis},
         {"direction_confidence", e.direction_confidence},
         {"tested_against", e.via >= 0 ? nlohmann::json(names[e.via]) : nlohmann::json()}});
    const auto m = r.merges.find(e.child);
    if (m != r.merges.end() && m->second.parent == e.parent) {
      edges.back()["second_parent"] = names[m->second.second_parent];
      edges.back()["merge"] = {{"alpha", m->second.fit.alpha},
                               {"relative_residual", m->second.fit.relative_residual},
                               {"reason", m->second.fit.reason}};
    }
  }
  nlohmann::json roots = nlohmann::json::array();
  for (int i : r.forest.roots) roots.push_back(names[i]);
  nlohmann::json j = {{"models", names},
                      {"edges", edges},
                      {"roots", roots},
                      {"graph", lineage::graph_to_json(r.graph)}};
  if (!o.request.controls.empty()) {
    j["output_tests"] = {{"tests", r.output_tests}, {"fdr", o.request.fdr}};
  }
  if (r.parent_accuracy) {
    j["accuracy"] = {{"parent_accuracy", *r.parent_accuracy},
                     {"undirected_edge_recall", *r.undirected_edge_recall}};
  }
  return j;
}

void print_table(const lineage::LineageResult& r, const LineageCliOptions& o) {
  const auto& names = r.names;
  std::printf("%-24s %-24s %-11s %9s  %s\n", "parent", "child", "relation", "p-value", "direction");
  for (const auto& e : r.forest.edges) {
    std::printf("%-24s %-24s %-11s %9s  %s (%s)\n", shown(names[e.parent]).c_str(),
                shown(names[e.child]).c_str(), relation_name(e.relation),
                lineage::format_p_value(e.p_value).c_str(), e.direction_confidence.c_str(),
                e.direction_basis.c_str());
  }
  std::cout << "roots:";
  for (int i : r.forest.roots) std::cout << " " << shown(names[i]);
  std::cout << "\n";
  for (const auto& [m, info] : r.merges) {
    std::printf("merge: %s = %.3g x %s + %.3g x %s (fit leaves %.2g of its change)\n",
                shown(names[m]).c_str(), info.fit.alpha, shown(names[info.parent]).c_str(),
                1 - info.fit.alpha, shown(names[info.second_parent]).c_str(),
                info.fit.relative_residual);
  }
  if (r.parent_accuracy) {
    std::printf("parent accuracy %.3f, undirected edge recall %.3f (against %s)\n",
                *r.parent_accuracy, *r.undirected_edge_recall, o.request.labels.c_str());
  }
  if (!o.svg.empty()) std::cout << "wrote " << o.svg << "\n";
}

int run_lineage(const LineageCliOptions& o) {
  const char* cmd = "lineage";
  auto r = lineage::recover_lineage(o.request);
  if (!r.is_ok()) return report_error(cmd, r.status());
  if (!o.svg.empty()) {
    auto svg = lineage::render_graph_svg(r->graph);
    if (!svg.is_ok()) return report_error(cmd, svg.status());
    if (Status s = write_file_atomic(o.svg, *svg); !s.is_ok()) return report_error(cmd, s);
  }
  if (o.json) {
    std::cout << result_json(*r, o).dump(2) << "\n";
  } else {
    print_table(*r, o);
  }
  return kExitOk;
}

}  // namespace

void register_lineage(CLI::App& app, Action* run) {
  auto o = std::make_shared<LineageCliOptions>();
  lineage::LineageRequest& q = o->request;
  q.outputs.xlik_probes = 1000;
  CLI::App* cmd =
      app.add_subcommand("lineage", "Recover the lineage forest of many models from their weights");
  cmd->add_option("MODELS", q.models, "models (checkpoint paths)")->required()->expected(1, -1);
  cmd->add_option("--svg", o->svg, "write the lineage graph as SVG");
  cmd->add_option("--labels", q.labels, "a zoo's labels.json: score the recovered parents");
  cmd->add_option("--permutations", q.permutations, "permutations of each weight test")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  cmd->add_option("--alpha", q.alpha, "family-wise level over all pairs (Bonferroni)")
      ->capture_default_str()
      ->check(CLI::Range(1e-12, 0.5));
  cmd->add_flag("--json", o->json, "print edges, roots, graph (and accuracy) as JSON");
  cmd->add_option("--controls", q.controls,
                  "models unrelated to the possible teachers (checkpoints or signature files): "
                  "adds distillation edges from the output tests");
  add_collection_options(cmd, &q.outputs, &q.collect);
  cmd->add_option("--fdr", q.fdr, "false discovery rate of the distillation edges")
      ->capture_default_str()
      ->check(CLI::Range(1e-12, 0.5));
  cmd->callback([o, run] { *run = [o] { return run_lineage(*o); }; });
}

}  // namespace prov::cli
