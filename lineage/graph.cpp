#include "lineage/graph.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <functional>
#include <map>
#include <numeric>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "lineage/judge.h"

namespace prov::lineage {
namespace {

using fingerprint::WeightLineageResult;

constexpr double kChangeScale = 0.05;  // aligned change at which closeness is 1/2

bool pair_related(const WeightLineageResult& r, double alpha) {
  return (r.p_value && *r.p_value < alpha) || is_weight_derived(r.relation);
}

// The relation of a weight edge: judge()'s verdict on the pair alone; a pair related only by a
// p-value below alpha that compare_weights (run at a stricter level) called independent is
// `finetuned`, the relation compare_weights gives a related pair without more specific evidence.
Relation edge_relation(const WeightLineageResult& r, double alpha) {
  JudgeInput in;
  in.references.push_back({"", &r, nullptr});
  in.alpha = alpha;
  const Verdict v = judge(in);
  return prov::is_related(v.relation) ? v.relation : Relation::kFinetuned;
}

double result_score(const WeightLineageResult& r) {
  if (r.relation == Relation::kIdentical || r.relation == Relation::kConverted) return 8;
  if (r.relation == Relation::kQuantized) return 6;
  double s = r.statistic;
  if (r.aligned.ran) s = std::max(s, r.aligned.statistic);
  s = std::min(1.0, std::max(-1.0, s));
  double c = 0;
  const double e = r.aligned_relative_error;
  if (r.relation == Relation::kPermuted) {
    c = 1;
  } else if (e > 0 && std::isfinite(e)) {
    c = 1 / (1 + e / kChangeScale);
  }
  return 2 * c + s;
}

// The parent a result's hard evidence names (-1: none), and its basis.
int hard_parent(const PairResult& p, std::string* basis) {
  const WeightLineageResult& r = p.result;
  if (r.relation == Relation::kQuantized) {
    *basis = "quantized side";
    if (r.identity.quantized_side == "candidate") return p.reference;
    if (r.identity.quantized_side == "reference") return p.candidate;
  } else if (r.relation == Relation::kPruned) {
    *basis = "pruned side";
    if (r.direction == "candidate is smaller") return p.reference;
    if (r.direction == "reference is smaller") return p.candidate;
  } else if (r.relation == Relation::kMerged) {
    *basis = "merge fit";  // the candidate is the merge (fingerprint/merge.h)
    return p.reference;
  }
  return -1;
}

Status validate(int n, const std::vector<PairResult>& pairs, double alpha) {
  if (n < 0) return invalid_argument("the number of models must be >= 0, got " + std::to_string(n));
  if (!std::isfinite(alpha) || alpha < 0 || alpha > 1) {
    return invalid_argument("alpha must be a finite level in [0, 1], got " + std::to_string(alpha));
  }
  for (size_t i = 0; i < pairs.size(); ++i) {
    const PairResult& p = pairs[i];
    const std::string where = "pairs[" + std::to_string(i) + "]: ";
    for (int idx : {p.candidate, p.reference}) {
      if (idx < 0 || idx >= n) {
        return invalid_argument(where + "model index " + std::to_string(idx) +
                                " is out of range for " + std::to_string(n) +
                                " models (valid: 0.." + std::to_string(n - 1) + ")");
      }
    }
    if (p.candidate == p.reference) {
      return invalid_argument(where + "compares model " + std::to_string(p.candidate) +
                              " with itself");
    }
    const WeightLineageResult& r = p.result;
    if (r.p_value && !(*r.p_value >= 0 && *r.p_value <= 1)) {
      return invalid_argument(where + "p_value " + std::to_string(*r.p_value) +
                              " is not in [0, 1]");
    }
    if (!std::isfinite(r.statistic)) {
      return invalid_argument(where + "statistic is not finite");
    }
    if (r.aligned.ran && !std::isfinite(r.aligned.statistic)) {
      return invalid_argument(where + "aligned.statistic is not finite");
    }
    if (std::isnan(r.aligned_relative_error) || r.aligned_relative_error < 0) {
      return invalid_argument(where + "aligned_relative_error must be >= 0 (or +inf)");
    }
  }
  return Status::ok();
}

// One unordered pair {lo, hi} after combining its results.
struct Link {
  int lo = 0, hi = 0;
  size_t rep = 0;  // index in `pairs` of the representative
  bool related = false;
  double score = 0;
  int hard_parent = -1;  // quantized/pruned evidence; -1: none
  std::string hard_basis;
  bool hard_conflict = false;  // related results point opposite ways
  bool identity = false;       // identical / converted
};

// Whether result a is a better representative than result b (file comment, step 4).
bool better(const PairResult& a, size_t ia, bool rel_a, double score_a, const PairResult& b,
            size_t ib, bool rel_b, double score_b) {
  if (rel_a != rel_b) return rel_a;
  if (score_a != score_b) return score_a > score_b;
  const double pa = a.result.p_value.value_or(1), pb = b.result.p_value.value_or(1);
  if (pa != pb) return pa < pb;
  const bool lo_a = a.candidate < a.reference, lo_b = b.candidate < b.reference;
  if (lo_a != lo_b) return lo_a;
  return ia < ib;
}

std::vector<Link> combine(const std::vector<PairResult>& pairs, double alpha) {
  std::map<std::pair<int, int>, Link> links;
  for (size_t i = 0; i < pairs.size(); ++i) {
    const PairResult& p = pairs[i];
    const int lo = std::min(p.candidate, p.reference), hi = std::max(p.candidate, p.reference);
    const bool rel = pair_related(p.result, alpha);
    const double score = result_score(p.result);
    auto it = links.find({lo, hi});
    if (it == links.end()) {
      Link l;
      l.lo = lo;
      l.hi = hi;
      l.rep = i;
      l.related = rel;
      l.score = score;
      it = links.emplace(std::make_pair(lo, hi), l).first;
    } else {
      Link& l = it->second;
      if (better(p, i, rel, score, pairs[l.rep], l.rep, l.related, l.score)) {
        l.rep = i;
        l.related = rel;
        l.score = score;
      }
    }
    if (rel) {
      Link& l = it->second;
      std::string basis;
      const int hp = hard_parent(p, &basis);
      if (hp >= 0) {
        if (l.hard_parent < 0 && !l.hard_conflict) {
          l.hard_parent = hp;
          l.hard_basis = basis;
        } else if (l.hard_parent >= 0 && l.hard_parent != hp) {
          l.hard_conflict = true;
          l.hard_parent = -1;
          l.hard_basis.clear();
        }
      }
    }
  }
  std::vector<Link> out;
  for (auto& kv : links) {
    Link& l = kv.second;
    if (!l.related) continue;
    const Relation rel = pairs[l.rep].result.relation;
    l.identity = rel == Relation::kIdentical || rel == Relation::kConverted;
    out.push_back(l);
  }
  return out;
}

int find_root(std::vector<int>& uf, int x) {
  while (uf[x] != x) {
    uf[x] = uf[uf[x]];
    x = uf[x];
  }
  return x;
}

// Marks (in `mark`, set to `stamp`) the nodes reachable from `from` without crossing the tree
// edge {from, blocked}.
void mark_side(const std::vector<std::vector<std::pair<int, size_t>>>& adj, int from, int blocked,
               std::vector<int>* mark, int stamp) {
  std::vector<int> stack = {from};
  (*mark)[from] = stamp;
  while (!stack.empty()) {
    const int u = stack.back();
    stack.pop_back();
    for (const auto& e : adj[u]) {
      const int v = e.first;
      if ((u == from && v == blocked) || (*mark)[v] == stamp) continue;
      (*mark)[v] = stamp;
      stack.push_back(v);
    }
  }
}

}  // namespace

Result<LineageForest> build_forest(int n, const std::vector<PairResult>& pairs, double alpha) {
  PROV_RETURN_IF_ERROR(validate(n, pairs, alpha));
  std::vector<Link> links = combine(pairs, alpha);

  // Kruskal: decreasing score, ties by (lo, hi). `links` is already in (lo, hi) order.
  std::stable_sort(links.begin(), links.end(),
                   [](const Link& a, const Link& b) { return a.score > b.score; });
  std::vector<int> uf(static_cast<size_t>(n));
  std::iota(uf.begin(), uf.end(), 0);
  std::vector<Link> tree;  // in Kruskal order
  for (const Link& l : links) {
    const int a = find_root(uf, l.lo), b = find_root(uf, l.hi);
    if (a == b) continue;
    uf[std::max(a, b)] = std::min(a, b);
    tree.push_back(l);
  }

  LineageForest forest;
  std::map<int, std::vector<int>> groups;  // by the smallest member (the union-find root)
  for (int i = 0; i < n; ++i) groups[find_root(uf, i)].push_back(i);
  for (auto& kv : groups) forest.components.push_back(std::move(kv.second));
  std::sort(forest.components.begin(), forest.components.end());

  // Tree adjacency: neighbour and index into `tree`.
  std::vector<std::vector<std::pair<int, size_t>>> adj(static_cast<size_t>(n));
  for (size_t k = 0; k < tree.size(); ++k) {
    adj[tree[k].lo].push_back({tree[k].hi, k});
    adj[tree[k].hi].push_back({tree[k].lo, k});
  }
  for (auto& a : adj) std::sort(a.begin(), a.end());

  // Constraints: hard edges first, then identity edges, each in Kruskal order.
  std::vector<size_t> order;
  for (size_t k = 0; k < tree.size(); ++k) {
    if (tree[k].hard_parent >= 0) order.push_back(k);
  }
  for (size_t k = 0; k < tree.size(); ++k) {
    if (tree[k].hard_parent < 0 && !tree[k].hard_conflict && tree[k].identity) order.push_back(k);
  }
  std::vector<char> accepted(tree.size(), 0);
  std::vector<char> rejected(tree.size(), 0);
  // valid[i]: i lies on the parent's side of every accepted constraint of its component.
  std::vector<char> valid(static_cast<size_t>(n), 1);
  std::vector<int> mark(static_cast<size_t>(n), -1);
  std::vector<int> comp_of(static_cast<size_t>(n), 0);
  for (size_t c = 0; c < forest.components.size(); ++c) {
    for (int i : forest.components[c]) comp_of[i] = static_cast<int>(c);
  }
  for (size_t idx = 0; idx < order.size(); ++idx) {
    const Link& l = tree[order[idx]];
    const int parent = l.hard_parent >= 0 ? l.hard_parent : l.lo;
    const int child = parent == l.lo ? l.hi : l.lo;
    const int stamp = static_cast<int>(idx);
    mark_side(adj, parent, child, &mark, stamp);
    bool any = false;
    for (int i : forest.components[comp_of[parent]]) {
      if (valid[i] && mark[i] == stamp) any = true;
    }
    if (!any) {
      rejected[order[idx]] = 1;
      continue;
    }
    accepted[order[idx]] = 1;
    for (int i : forest.components[comp_of[parent]]) {
      if (mark[i] != stamp) valid[i] = 0;
    }
  }

  // Roots and orientation away from them.
  std::vector<int> parent_of(static_cast<size_t>(n), -1);
  std::vector<size_t> edge_of(static_cast<size_t>(n), 0);
  for (const auto& comp : forest.components) {
    int root = comp.front();
    for (int i : comp) {
      if (valid[i]) {
        root = i;
        break;
      }
    }
    forest.roots.push_back(root);
    std::vector<int> stack = {root};
    while (!stack.empty()) {
      const int u = stack.back();
      stack.pop_back();
      for (const auto& e : adj[u]) {
        const int v = e.first;
        if (v == root || parent_of[v] >= 0) continue;
        parent_of[v] = u;
        edge_of[v] = e.second;
        stack.push_back(v);
      }
    }
  }
  std::sort(forest.roots.begin(), forest.roots.end());

  for (int child = 0; child < n; ++child) {
    if (parent_of[child] < 0) continue;
    const size_t k = edge_of[child];
    const Link& l = tree[k];
    const WeightLineageResult& r = pairs[l.rep].result;
    LineageEdge e;
    e.parent = parent_of[child];
    e.child = child;
    e.relation = edge_relation(r, alpha);
    e.p_value = r.p_value;
    e.score = l.score;
    e.direction_confidence = "low";
    const std::string basis = l.hard_parent >= 0 ? l.hard_basis : "identity";
    if (accepted[k]) {
      e.direction_basis = basis;
      if (l.hard_parent >= 0) e.direction_confidence = "high";
    } else if (rejected[k]) {
      e.direction_basis =
          basis + " (conflicts with stronger hard evidence; oriented from the chosen root)";
    } else if (l.hard_conflict) {
      e.direction_basis = "conflicting direction evidence (oriented from the chosen root)";
    } else {
      e.direction_basis = "undetermined (oriented from the chosen root)";
    }
    forest.edges.push_back(std::move(e));
  }
  return forest;
}

Result<LineageForest> attach_output_edges(const LineageForest& f,
                                          const std::vector<OutputPairResult>& tests, double q) {
  if (!(q >= 0 && q <= 1)) return invalid_argument("q must be in [0, 1]");
  int n = 0;
  for (const auto& c : f.components) n += static_cast<int>(c.size());
  for (size_t i = 0; i < tests.size(); ++i) {
    const auto& t = tests[i];
    const std::string where = "tests[" + std::to_string(i) + "]: ";
    if (t.student < 0 || t.student >= n || t.teacher < 0 || t.teacher >= n) {
      return invalid_argument(where + "model index out of range");
    }
    if (t.student == t.teacher)
      return invalid_argument(where + "student and teacher are one model");
    if (t.result.p_value && !(*t.result.p_value >= 0 && *t.result.p_value <= 1)) {
      return invalid_argument(where + "p-value outside [0, 1]");
    }
  }
  // Benjamini-Hochberg.
  std::vector<size_t> order;
  for (size_t i = 0; i < tests.size(); ++i) {
    if (tests[i].result.p_value) order.push_back(i);
  }
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const double pa = *tests[a].result.p_value, pb = *tests[b].result.p_value;
    if (pa != pb) return pa < pb;
    if (tests[a].student != tests[b].student) return tests[a].student < tests[b].student;
    return tests[a].teacher < tests[b].teacher;
  });
  const double m = static_cast<double>(tests.size());
  size_t k = 0;  // number of discoveries
  for (size_t r = 0; r < order.size(); ++r) {
    if (*tests[order[r]].result.p_value <= static_cast<double>(r + 1) * q / m) k = r + 1;
  }
  // Union-find over the weight components.
  std::vector<int> up(static_cast<size_t>(n));
  std::iota(up.begin(), up.end(), 0);
  std::function<int(int)> find = [&](int x) { return up[x] == x ? x : up[x] = find(up[x]); };
  std::vector<int> parent(static_cast<size_t>(n), -1);
  for (const LineageEdge& e : f.edges) {
    parent[e.child] = e.parent;
    up[find(e.child)] = find(e.parent);
  }
  // Weight copies answer like their originals: a test toward a copy counts toward the original.
  std::vector<int> copy_of(static_cast<size_t>(n), -1);
  for (const LineageEdge& e : f.edges) {
    if (is_identity_decided(e.relation) || e.relation == Relation::kPermuted ||
        e.relation == Relation::kNoised) {
      copy_of[e.child] = e.parent;
    }
  }
  auto original = [&](int x) {
    for (int hops = 0; copy_of[x] >= 0 && hops < n; ++hops) x = copy_of[x];
    return x;
  };
  LineageForest out;
  out.edges = f.edges;
  for (size_t r = 0; r < k; ++r) {
    const OutputPairResult& t = tests[order[r]];
    const int teacher = original(t.teacher);
    if (parent[t.student] >= 0 || teacher == t.student || find(t.student) == find(teacher)) {
      continue;
    }
    parent[t.student] = teacher;
    up[find(t.student)] = find(teacher);
    LineageEdge e;
    e.parent = teacher;
    e.child = t.student;
    e.relation = t.relation           ? *t.relation
                 : t.result.related() ? t.result.relation
                                      : Relation::kDistilledSeq;
    e.p_value = t.result.p_value;
    e.score = 0;
    e.direction_basis = "output test (the reference side is the teacher)";
    if (teacher != t.teacher) {
      e.direction_basis += "; tested against a weight copy of the teacher";
      e.via = t.teacher;
    }
    e.direction_confidence = "low";
    if (t.result.teacher == "reference" && t.result.direction_confidence >= 0.9) {
      e.direction_confidence = "high";
      e.direction_basis += "; cross-likelihood gaps agree";
    } else if (t.result.teacher == "candidate") {
      e.direction_basis += "; cross-likelihood gaps point the other way";
    }
    out.edges.push_back(std::move(e));
  }
  std::sort(out.edges.begin(), out.edges.end(),
            [](const LineageEdge& a, const LineageEdge& b) { return a.child < b.child; });
  std::map<int, std::vector<int>> comps;
  for (int i = 0; i < n; ++i) {
    if (parent[i] < 0) out.roots.push_back(i);
    comps[find(i)].push_back(i);
  }
  for (auto& [root, members] : comps) out.components.push_back(std::move(members));
  std::sort(out.components.begin(), out.components.end());
  return out;
}

double edge_accuracy(const LineageForest& f, const std::vector<int>& expected_parent,
                     double* undirected_correct) {
  const size_t m = expected_parent.size();
  std::vector<int> got(m, -1);
  std::set<std::pair<int, int>> undirected;
  for (const LineageEdge& e : f.edges) {
    if (e.child >= 0 && static_cast<size_t>(e.child) < m) got[e.child] = e.parent;
    undirected.insert({std::min(e.parent, e.child), std::max(e.parent, e.child)});
  }
  size_t correct = 0, true_edges = 0, found = 0;
  for (size_t i = 0; i < m; ++i) {
    const int want = expected_parent[i];
    if (want < 0 ? got[i] < 0 : got[i] == want) ++correct;
    if (want >= 0) {
      ++true_edges;
      const int c = static_cast<int>(i);
      if (undirected.count({std::min(want, c), std::max(want, c)})) ++found;
    }
  }
  if (undirected_correct) {
    *undirected_correct =
        true_edges == 0 ? 1.0 : static_cast<double>(found) / static_cast<double>(true_edges);
  }
  return m == 0 ? 1.0 : static_cast<double>(correct) / static_cast<double>(m);
}

ReportGraph forest_graph(const LineageForest& f, const std::vector<std::string>& names,
                         int candidate_index) {
  int count = static_cast<int>(names.size());
  auto see = [&count](int i) { count = std::max(count, i + 1); };
  for (const LineageEdge& e : f.edges) {
    see(e.parent);
    see(e.child);
  }
  for (int r : f.roots) see(r);
  for (const auto& c : f.components) {
    for (int i : c) see(i);
  }
  auto id = [](int i) { return "m" + std::to_string(i); };
  ReportGraph g;
  for (int i = 0; i < count; ++i) {
    const std::string label = static_cast<size_t>(i) < names.size() ? names[i] : id(i);
    g.nodes.push_back({id(i), label, i == candidate_index ? "candidate" : "reference"});
  }
  for (const LineageEdge& e : f.edges) {
    if (e.parent < 0 || e.child < 0) continue;
    g.edges.push_back({static_cast<size_t>(e.parent), static_cast<size_t>(e.child),
                       relation_name(e.relation), e.p_value});
  }
  return g;
}

}  // namespace prov::lineage
