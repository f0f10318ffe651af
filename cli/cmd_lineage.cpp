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
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "cli/collect.h"
#include "cli/common.h"
#include "core/file_io.h"
#include "fingerprint/merge.h"
#include "fingerprint/weights.h"
#include "lineage/audit.h"
#include "lineage/graph.h"
#include "lineage/report_render.h"
#include "model/model.h"

namespace prov::cli {

namespace {

struct LineageOptions {
  std::vector<std::string> models;
  std::string svg, labels;
  int permutations = 999;
  double alpha = 0.01;
  bool json = false;
  // Output edges.
  std::vector<std::string> controls;
  std::string suite = "natural-v1:1000";
  int xlik_probes = 1000;
  double fdr = 0.05;
  CollectSettings collect;
};

// What must match between a teacher and its controls: architecture and sizes (checkpoints) and
// the tokenizer (signatures).
std::string shape_key(const model::Model* m, const probes::Signature& s) {
  std::string k = s.header.tokenizer + "|" + std::to_string(s.header.vocab_size);
  if (m != nullptr) {
    const auto& c = m->config;
    k += "|" + std::to_string(static_cast<int>(c.arch)) + "|" + std::to_string(c.hidden_size) +
         "|" + std::to_string(c.intermediate_size) + "|" + std::to_string(c.num_layers) + "|" +
         std::to_string(c.num_heads) + "|" + std::to_string(c.num_kv_heads);
  }
  return k;
}

// The output tests of `o.controls` for the weight roots of `forest`, then the forest with the
// discoveries attached. Progress on stderr.
Result<lineage::LineageForest> with_output_edges(const LineageOptions& o,
                                                 const std::vector<model::Model>& models,
                                                 const std::vector<std::string>& names,
                                                 const lineage::LineageForest& forest,
                                                 int* tests_run) {
  const size_t n = models.size();
  OutputSetRequest req;
  req.specs = o.models;
  req.specs.insert(req.specs.end(), o.controls.begin(), o.controls.end());
  for (size_t i = 0; i < n; ++i) req.what.push_back("model");
  req.suite = o.suite;
  req.xlik_probes = o.xlik_probes;
  std::fprintf(stderr, "collecting signatures of %zu models and %zu controls ...\n", n,
               o.controls.size());
  PROV_ASSIGN_OR_RETURN(OutputSet set, collect_output_set(req, o.collect));
  std::vector<std::string> control_shape;
  std::vector<std::unique_ptr<model::Model>> control_models;
  for (size_t j = 0; j < o.controls.size(); ++j) {
    std::unique_ptr<model::Model> cm;
    if (!is_signature_file(o.controls[j]) && !is_endpoint_spec(o.controls[j])) {
      PROV_ASSIGN_OR_RETURN(model::Model m, model::open_model(o.controls[j]));
      cm = std::make_unique<model::Model>(std::move(m));
    }
    control_shape.push_back(shape_key(cm.get(), set.signatures[n + j]));
    control_models.push_back(std::move(cm));
  }
  std::vector<bool> is_root(n, false);
  for (int r : forest.roots) is_root[static_cast<size_t>(r)] = true;
  std::vector<lineage::OutputPairResult> tests;
  fingerprint::OutputTestOptions opt;
  opt.alpha = o.fdr;
  fingerprint::ImageBasisCache image_cache;
  opt.image_cache = &image_cache;
  for (size_t t = 0; t < n; ++t) {
    const std::string key = shape_key(&models[t], set.signatures[t]);
    std::vector<fingerprint::NamedSignature> ctrl;
    for (size_t j = 0; j < o.controls.size(); ++j) {
      if (control_shape[j] != key) continue;
      ctrl.push_back({lineage::model_display_name(o.controls[j]), &set.signatures[n + j],
                      set.scores[n + j].get(), set.images[n + j].get()});
    }
    if (ctrl.size() < 2) continue;  // no control population like this teacher
    for (size_t s = 0; s < n; ++s) {
      if (s == t || !is_root[s]) continue;
      auto r = fingerprint::compare_outputs(
          {names[s], &set.signatures[s], set.scores[s].get(), set.images[s].get()},
          {names[t], &set.signatures[t], set.scores[t].get(), set.images[t].get()}, ctrl, opt);
      if (!r.is_ok()) return r.status().with_context(names[s] + " vs " + names[t] + " (outputs)");
      tests.push_back({static_cast<int>(s), static_cast<int>(t), std::move(*r)});
    }
  }
  *tests_run = static_cast<int>(tests.size());
  std::fprintf(stderr,
               "%zu output tests (students: the weight roots; teachers: models with "
               "controls of their shape)\n",
               tests.size());
  return lineage::attach_output_edges(forest, tests, o.fdr);
}

// A merge found among the weight comparisons: the model's tree parent, its second parent, the
// fit (fingerprint/merge.h).
struct MergeInfo {
  int parent = -1, second_parent = -1;
  fingerprint::MergeFit fit;
};

// Every model read as a fine-tune or noised copy of two or more others is fitted as a merge of
// each pair of them. For a merge, the parent with more weight relatives (the more central model,
// lower index on ties) becomes its tree parent, with the relation `merged` (hard direction
// evidence for build_forest); the comparisons with its other fine-tune / noised relatives,
// the second parent included, are dropped, so that those relatives join the tree through their
// own relations and not through the merge, which lies between them. Copies of the merge
// (identity relations) keep their edges.
Result<std::map<int, MergeInfo>> find_merges(const std::vector<model::Model>& models,
                                             const std::vector<std::string>& names,
                                             std::vector<lineage::PairResult>* pairs) {
  const int n = static_cast<int>(models.size());
  std::vector<int> degree(static_cast<size_t>(n), 0);
  std::vector<std::vector<int>> relatives(static_cast<size_t>(n));
  for (const auto& p : *pairs) {
    if (!fingerprint::is_weight_derived(p.result.relation)) continue;
    ++degree[static_cast<size_t>(p.candidate)];
    ++degree[static_cast<size_t>(p.reference)];
    if (fingerprint::reads_as_merge_parent(p.result.relation)) {
      relatives[static_cast<size_t>(p.candidate)].push_back(p.reference);
      relatives[static_cast<size_t>(p.reference)].push_back(p.candidate);
    }
  }
  std::vector<const model::Model*> model_ptrs;
  for (const auto& m : models) model_ptrs.push_back(&m);
  auto found = fingerprint::find_merges(model_ptrs, relatives);
  if (!found.is_ok()) return found.status().with_context("merge fit");
  std::map<int, MergeInfo> merges;
  for (const auto& [m, fm] : *found) {
    const int a = fm.a, b = fm.b;
    MergeInfo info;
    const bool a_first =
        degree[static_cast<size_t>(a)] > degree[static_cast<size_t>(b)] ||
        (degree[static_cast<size_t>(a)] == degree[static_cast<size_t>(b)] && a < b);
    info.parent = a_first ? a : b;
    info.second_parent = a_first ? b : a;
    info.fit = fm.fit;
    if (!a_first) info.fit.alpha = 1 - info.fit.alpha;  // alpha is the tree parent's weight
    merges[m] = std::move(info);
  }
  if (merges.empty()) return merges;
  std::vector<lineage::PairResult> kept;
  for (auto& p : *pairs) {
    const int ends[2] = {p.candidate, p.reference};
    bool drop = false;
    for (int side = 0; side < 2 && !drop; ++side) {
      const auto it = merges.find(ends[side]);
      if (it == merges.end() || !fingerprint::reads_as_merge_parent(p.result.relation)) continue;
      const int other = ends[1 - side];
      if (other != it->second.parent) {
        drop = true;
        continue;
      }
      p.candidate = ends[side];
      p.reference = other;
      p.result.relation = "merged";
      p.result.reason = "a merge of " + names[static_cast<size_t>(other)] + " and " +
                        names[static_cast<size_t>(it->second.second_parent)] + ": " +
                        it->second.fit.reason;
    }
    if (!drop) kept.push_back(std::move(p));
  }
  *pairs = std::move(kept);
  return merges;
}

int run_lineage(const LineageOptions& o) {
  const char* cmd = "lineage";
  const int n = static_cast<int>(o.models.size());
  std::vector<model::Model> models;
  std::vector<std::string> names;
  for (const auto& path : o.models) {
    auto m = model::open_model(path);
    if (!m.is_ok()) return report_error(cmd, m.status().with_context(path));
    models.push_back(std::move(*m));
    names.push_back(lineage::model_display_name(path));
  }
  // Bonferroni over the n (n - 1) / 2 pairs: each pair's test runs at alpha / pairs, so the chance
  // of any false edge from test A stays below alpha.
  const int npairs = std::max(1, n * (n - 1) / 2);
  const double pair_alpha = o.alpha / npairs;
  fingerprint::WeightTestOptions wo;
  wo.permutations = o.permutations;
  wo.alpha = pair_alpha;
  const bool tty = isatty(2);
  std::vector<lineage::PairResult> pairs;
  for (int j = 0; j < n; ++j) {
    for (int i = 0; i < j; ++i) {
      if (tty) {
        std::fprintf(stderr, "\rcomparing %s with %s ...%20s", names[j].c_str(), names[i].c_str(),
                     "");
      }
      auto r = fingerprint::compare_weights(models[j], models[i], wo);
      if (!r.is_ok()) {
        std::fprintf(stderr, "\n");
        return report_error(cmd, r.status().with_context(names[j] + " vs " + names[i]));
      }
      pairs.push_back({j, i, std::move(*r)});
    }
  }
  if (n > 1) std::fprintf(stderr, "%s%d pairs compared\n", tty ? "\r" : "", n * (n - 1) / 2);
  auto merges = find_merges(models, names, &pairs);
  if (!merges.is_ok()) return report_error(cmd, merges.status());
  auto forest = lineage::build_forest(n, pairs, pair_alpha);
  if (!forest.is_ok()) return report_error(cmd, forest.status());
  int output_tests = 0;
  if (!o.controls.empty()) {
    forest = with_output_edges(o, models, names, *forest, &output_tests);
    if (!forest.is_ok()) return report_error(cmd, forest.status());
  }
  const nlohmann::json graph = lineage::forest_graph_json(*forest, names);
  nlohmann::json accuracy;
  if (!o.labels.empty()) {
    auto text = read_small_file(o.labels, "labels");
    if (!text.is_ok()) return report_error(cmd, text.status());
    nlohmann::json labels = nlohmann::json::parse(*text, nullptr, false);
    if (labels.is_discarded() || !labels.contains("models") || !labels["models"].is_object()) {
      return report_error(cmd, corrupt(o.labels + ": not a labels file (no \"models\" object)"));
    }
    std::map<std::string, int> index;
    for (int i = 0; i < n; ++i) index[names[i]] = i;
    std::vector<int> expected(static_cast<size_t>(n), -1);
    for (int i = 0; i < n; ++i) {
      const auto it = labels["models"].find(names[i]);
      if (it == labels["models"].end() || !it->is_object()) continue;
      const std::string rel = it->value("relation", "");
      const auto parent = it->find("parent");
      // zoo-dev's labels say "finetune".
      const bool weight = rel == "finetune" || fingerprint::is_weight_derived(rel);
      const bool distilled = rel.rfind("distilled", 0) == 0;
      if ((weight || (distilled && !o.controls.empty())) && parent != it->end() &&
          parent->is_string() && index.count(*parent)) {
        expected[static_cast<size_t>(i)] = index[*parent];
      }
    }
    double undirected = 0;
    const double acc = lineage::edge_accuracy(*forest, expected, &undirected);
    accuracy = {{"parent_accuracy", acc}, {"undirected_edge_recall", undirected}};
  }
  if (!o.svg.empty()) {
    auto svg = lineage::render_graph_svg(graph);
    if (!svg.is_ok()) return report_error(cmd, svg.status());
    if (Status s = write_file_atomic(o.svg, *svg); !s.is_ok()) return report_error(cmd, s);
  }
  if (o.json) {
    nlohmann::json edges = nlohmann::json::array();
    for (const auto& e : forest->edges) {
      edges.push_back(
          {{"parent", names[e.parent]},
           {"child", names[e.child]},
           {"relation", e.relation},
           {"p_value", e.p_value ? nlohmann::json(*e.p_value) : nlohmann::json()},
           {"score", e.score},
           {"direction_basis", e.direction_basis},
           {"direction_confidence", e.direction_confidence},
           {"tested_against", e.via >= 0 ? nlohmann::json(names[e.via]) : nlohmann::json()}});
      const auto m = merges->find(e.child);
      if (m != merges->end() && m->second.parent == e.parent) {
        edges.back()["second_parent"] = names[m->second.second_parent];
        edges.back()["merge"] = {{"alpha", m->second.fit.alpha},
                                 {"relative_residual", m->second.fit.relative_residual},
                                 {"reason", m->second.fit.reason}};
      }
    }
    nlohmann::json roots = nlohmann::json::array();
    for (int r : forest->roots) roots.push_back(names[r]);
    nlohmann::json j = {{"models", names}, {"edges", edges}, {"roots", roots}, {"graph", graph}};
    if (!o.controls.empty()) j["output_tests"] = {{"tests", output_tests}, {"fdr", o.fdr}};
    if (!accuracy.is_null()) j["accuracy"] = accuracy;
    std::cout << j.dump(2) << "\n";
    return kExitOk;
  }
  std::printf("%-24s %-24s %-11s %9s  %s\n", "parent", "child", "relation", "p-value", "direction");
  for (const auto& e : forest->edges) {
    std::printf("%-24s %-24s %-11s %9s  %s (%s)\n", names[e.parent].c_str(), names[e.child].c_str(),
                e.relation.c_str(), lineage::format_p_value(e.p_value).c_str(),
                e.direction_confidence.c_str(), e.direction_basis.c_str());
  }
  std::cout << "roots:";
  for (int r : forest->roots) std::cout << " " << names[r];
  std::cout << "\n";
  for (const auto& [m, info] : *merges) {
    std::printf("merge: %s = %.3g x %s + %.3g x %s (fit leaves %.2g of its change)\n",
                names[m].c_str(), info.fit.alpha, names[info.parent].c_str(), 1 - info.fit.alpha,
                names[info.second_parent].c_str(), info.fit.relative_residual);
  }
  if (!accuracy.is_null()) {
    std::printf("parent accuracy %.3f, undirected edge recall %.3f (against %s)\n",
                accuracy["parent_accuracy"].get<double>(),
                accuracy["undirected_edge_recall"].get<double>(), o.labels.c_str());
  }
  if (!o.svg.empty()) std::cout << "wrote " << o.svg << "\n";
  return kExitOk;
}

}  // namespace

void register_lineage(CLI::App& app, Action* run) {
  auto o = std::make_shared<LineageOptions>();
  CLI::App* cmd =
      app.add_subcommand("lineage", "Recover the lineage forest of many models from their weights");
  cmd->add_option("MODELS", o->models, "models (checkpoint paths)")->required()->expected(1, -1);
  cmd->add_option("--svg", o->svg, "write the lineage graph as SVG");
  cmd->add_option("--labels", o->labels, "a zoo's labels.json: score the recovered parents");
  cmd->add_option("--permutations", o->permutations, "permutations of each weight test")
      ->check(CLI::Range(1, 1000000));
  cmd->add_option("--alpha", o->alpha, "family-wise level over all pairs (Bonferroni)")
      ->check(CLI::Range(1e-12, 0.5));
  cmd->add_flag("--json", o->json, "print edges, roots, graph (and accuracy) as JSON");
  cmd->add_option("--controls", o->controls,
                  "models unrelated to the possible teachers (checkpoints or signature files): "
                  "adds distillation edges from the output tests");
  add_collection_options(cmd, &o->suite, &o->xlik_probes, &o->collect);
  cmd->add_option("--fdr", o->fdr, "false discovery rate of the distillation edges")
      ->capture_default_str()
      ->check(CLI::Range(1e-12, 0.5));
  cmd->callback([o, run] { *run = [o] { return run_lineage(*o); }; });
}

}  // namespace prov::cli
