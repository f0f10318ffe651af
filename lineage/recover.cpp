#include "lineage/recover.h"

#include <algorithm>
#include <cstdio>

#include "core/file_io.h"
#include "core/json.h"
#include "core/progress.h"
#include "fingerprint/weights.h"
#include "lineage/judge.h"
#include "model/formats/model.h"
#include "probes/subject.h"

namespace prov::lineage {

namespace {

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

// Every model read as a fine-tune or noised copy of two or more others is fitted as a merge of
// each pair of them. For a merge, the parent with more weight relatives (the more central model,
// lower index on ties) becomes its tree parent, with the relation `merged` (hard direction
// evidence for build_forest); the comparisons with its other fine-tune / noised relatives,
// the second parent included, are dropped, so that those relatives join the tree through their
// own relations and not through the merge, which lies between them. Copies of the merge
// (identity relations) keep their edges.
Result<std::map<int, MergeInfo>> find_merges(const std::vector<const model::Model*>& models,
                                             const std::vector<std::string>& names,
                                             std::vector<PairResult>* pairs) {
  const int n = static_cast<int>(models.size());
  std::vector<int> degree(static_cast<size_t>(n), 0);
  std::vector<std::vector<int>> relatives(static_cast<size_t>(n));
  for (const auto& p : *pairs) {
    if (!is_weight_derived(p.result.relation)) continue;
    ++degree[static_cast<size_t>(p.candidate)];
    ++degree[static_cast<size_t>(p.reference)];
    if (fingerprint::reads_as_merge_parent(p.result.relation)) {
      relatives[static_cast<size_t>(p.candidate)].push_back(p.reference);
      relatives[static_cast<size_t>(p.reference)].push_back(p.candidate);
    }
  }
  auto found = fingerprint::find_merges(models, relatives);
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
  std::vector<PairResult> kept;
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
      p.result.relation = Relation::kMerged;
      p.result.reason = "a merge of " + names[static_cast<size_t>(other)] + " and " +
                        names[static_cast<size_t>(it->second.second_parent)] + ": " +
                        it->second.fit.reason;
    }
    if (!drop) kept.push_back(std::move(p));
  }
  *pairs = std::move(kept);
  return merges;
}

// Every pair's weights compared: j > i, candidate j, reference i.
Result<std::vector<PairResult>> compare_all(const std::vector<const model::Model*>& models,
                                            const std::vector<std::string>& names,
                                            const fingerprint::WeightTestOptions& wo, bool quiet) {
  const int n = static_cast<int>(models.size());
  std::vector<PairResult> pairs;
  Progress bar("comparing weights (pairs)", quiet);
  const size_t total = static_cast<size_t>(n) * static_cast<size_t>(std::max(0, n - 1)) / 2;
  for (int j = 0; j < n; ++j) {
    for (int i = 0; i < j; ++i) {
      auto r = fingerprint::compare_weights(*models[j], *models[i], wo);
      if (!r.is_ok()) return r.status().with_context(names[j] + " vs " + names[i]);
      pairs.push_back({j, i, std::move(*r)});
      bar.update(pairs.size(), total);
    }
  }
  bar.finish();
  if (n > 1 && !quiet) std::fprintf(stderr, "%zu pairs compared\n", total);
  return pairs;
}

// The output tests of the controls for the weight roots of `forest`, then the forest with the
// discoveries attached. Each edge's relation is judge()'s for the pair (both weights compared).
Result<LineageForest> with_output_edges(const LineageRequest& o,
                                        std::vector<probes::Subject*>& models,
                                        std::vector<probes::Subject*>& controls,
                                        const std::vector<PairResult>& pairs,
                                        const LineageForest& forest, int* tests_run) {
  const size_t n = models.size();
  if (!o.quiet) {
    std::fprintf(stderr, "collecting signatures of %zu models and %zu controls ...\n", n,
                 controls.size());
  }
  std::vector<probes::Subject*> all = models;
  all.insert(all.end(), controls.begin(), controls.end());
  probes::Collector collector(o.collect);
  PROV_ASSIGN_OR_RETURN(OutputSet set, gather_outputs(all, o.outputs, collector));
  std::vector<std::string> control_shape;
  for (size_t j = 0; j < controls.size(); ++j) {
    const model::Model* cm = nullptr;
    if (controls[j]->has_weights()) {
      PROV_ASSIGN_OR_RETURN(cm, controls[j]->model());
    }
    control_shape.push_back(shape_key(cm, set.signatures[n + j]));
  }
  std::vector<bool> is_root(n, false);
  for (int r : forest.roots) is_root[static_cast<size_t>(r)] = true;
  std::map<std::pair<int, int>, const fingerprint::WeightLineageResult*> weights;
  for (const auto& p : pairs) {
    weights[{std::min(p.candidate, p.reference), std::max(p.candidate, p.reference)}] = &p.result;
  }
  std::vector<OutputPairResult> tests;
  fingerprint::OutputTestOptions opt;
  opt.alpha = o.fdr;
  fingerprint::ImageBasisCache image_cache;
  opt.image_cache = &image_cache;
  for (size_t t = 0; t < n; ++t) {
    PROV_ASSIGN_OR_RETURN(const model::Model* tm, models[t]->model());
    const std::string key = shape_key(tm, set.signatures[t]);
    std::vector<fingerprint::NamedSignature> ctrl;
    for (size_t j = 0; j < controls.size(); ++j) {
      if (control_shape[j] == key) ctrl.push_back(set.named(n + j, controls[j]->name()));
    }
    if (ctrl.size() < 2) continue;  // no control population like this teacher
    for (size_t s = 0; s < n; ++s) {
      if (s == t || !is_root[s]) continue;
      auto r = fingerprint::compare_outputs(set.named(s, models[s]->name()),
                                            set.named(t, models[t]->name()), ctrl, opt);
      if (!r.is_ok()) {
        return r.status().with_context(models[s]->name() + " vs " + models[t]->name() +
                                       " (outputs)");
      }
      OutputPairResult test{static_cast<int>(s), static_cast<int>(t), std::move(*r), {}};
      const auto w = weights.find({std::min(s, t), std::max(s, t)});
      const ReferenceEvidence ev{models[t]->name(), w == weights.end() ? nullptr : w->second,
                                 &test.result};
      test.relation = judged_output_relation(ev);
      tests.push_back(std::move(test));
    }
  }
  *tests_run = static_cast<int>(tests.size());
  if (!o.quiet) {
    std::fprintf(stderr,
                 "%zu output tests (students: the weight roots; teachers: models with controls of "
                 "their shape)\n",
                 tests.size());
  }
  return attach_output_edges(forest, tests, o.fdr);
}

// Scores the forest against a zoo's labels.json: weight parents, and distillation parents when
// output edges were drawn.
Status score_against_labels(const LineageRequest& o, LineageResult* out) {
  PROV_ASSIGN_OR_RETURN(std::string text, read_small_file(o.labels, "labels"));
  PROV_ASSIGN_OR_RETURN(nlohmann::json labels, parse_json(text, o.labels));
  if (!labels.is_object() || !labels.contains("models") || !labels["models"].is_object()) {
    return corrupt(o.labels + ": not a labels file (no \"models\" object)");
  }
  const int n = static_cast<int>(out->names.size());
  std::map<std::string, int> index;
  for (int i = 0; i < n; ++i) index[out->names[i]] = i;
  std::vector<int> expected(static_cast<size_t>(n), -1);
  for (int i = 0; i < n; ++i) {
    const auto it = labels["models"].find(out->names[i]);
    if (it == labels["models"].end() || !it->is_object()) continue;
    const auto rel = parse_relation(it->value("relation", ""));
    const auto parent = it->find("parent");
    const bool weight = rel && is_weight_derived(*rel);
    const bool distilled = rel && is_distilled(*rel);
    if ((weight || (distilled && !o.controls.empty())) && parent != it->end() &&
        parent->is_string() && index.count(*parent)) {
      expected[static_cast<size_t>(i)] = index[*parent];
    }
  }
  double undirected = 0;
  out->parent_accuracy = edge_accuracy(out->forest, expected, &undirected);
  out->undirected_edge_recall = undirected;
  return Status::ok();
}

}  // namespace

Result<LineageResult> recover_lineage(const LineageRequest& o) {
  probes::SubjectSet subjects;
  std::vector<probes::Subject*> models, controls;
  for (const auto& path : o.models) {
    PROV_ASSIGN_OR_RETURN(probes::Subject * s, subjects.add(path));
    if (!s->has_weights()) return invalid_argument(path + ": not a checkpoint");
    models.push_back(s);
  }
  for (const auto& path : o.controls) {
    auto s = subjects.add(path);
    if (!s.is_ok()) return s.status().with_context("control " + path);
    controls.push_back(*s);
  }
  LineageResult out;
  std::vector<const model::Model*> opened;
  for (probes::Subject* s : models) {
    auto m = s->model();
    if (!m.is_ok()) return m.status().with_context(s->spec());
    opened.push_back(*m);
    out.names.push_back(s->name());
  }
  const int n = static_cast<int>(models.size());
  const int npairs = std::max(1, n * (n - 1) / 2);
  const double pair_alpha = o.alpha / npairs;
  fingerprint::WeightTestOptions wo;
  wo.permutations = o.permutations;
  wo.alpha = pair_alpha;
  PROV_ASSIGN_OR_RETURN(std::vector<PairResult> pairs, compare_all(opened, out.names, wo, o.quiet));
  const std::vector<PairResult> compared = pairs;
  PROV_ASSIGN_OR_RETURN(out.merges, find_merges(opened, out.names, &pairs));
  PROV_ASSIGN_OR_RETURN(out.forest, build_forest(n, pairs, pair_alpha));
  if (!controls.empty()) {
    PROV_ASSIGN_OR_RETURN(out.forest, with_output_edges(o, models, controls, compared, out.forest,
                                                        &out.output_tests));
  }
  out.graph = forest_graph(out.forest, out.names);
  if (!o.labels.empty()) PROV_RETURN_IF_ERROR(score_against_labels(o, &out));
  return out;
}

}  // namespace prov::lineage
