#include "lineage/accuracy.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "core/json.h"
#include "fingerprint/weights.h"

namespace prov::lineage {

namespace {

std::string last_component(std::string p) {
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  const auto k = p.find_last_of('/');
  return k == std::string::npos ? p : p.substr(k + 1);
}

bool contains(const std::vector<int>& v, int x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string fmt_rate(double v) {
  return std::isnan(v) ? "-" : fmt("%.2f", v);
}

std::string fmt_auroc(double v) {
  return std::isnan(v) ? "-" : fmt("%.3f", v);
}

std::string fmt_pct(double v) {
  return fmt("%.1f %%", 100 * v);
}

nlohmann::json num_or_null(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

std::string fmt_p(double p) {
  return p == 0 ? "0" : fmt("%.2g", p);
}

}  // namespace

int Family::find(const std::string& name) const {
  for (size_t i = 0; i < members.size(); ++i) {
    if (members[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

Result<Family> parse_family(const std::string& dir, const std::string& labels_text,
                            const std::function<bool(const std::string&)>& exists) {
  const std::string where = dir + "/labels.json";
  auto parsed = parse_json(labels_text, where);
  if (!parsed.is_ok()) return parsed.status();
  nlohmann::json j = std::move(*parsed);
  if (!j.is_object() || !j.contains("models") || !j["models"].is_object()) {
    return corrupt(where + ": not a labels file (no \"models\" object)");
  }
  struct Label {
    std::string relation, parent;
  };
  std::map<std::string, Label> labels;
  Family f;
  f.dir = dir;
  f.label = last_component(dir);
  for (auto it = j["models"].begin(); it != j["models"].end(); ++it) {
    const std::string& name = it.key();
    const auto& m = it.value();
    if (!m.is_object()) return corrupt(where + ": member \"" + name + "\" is not an object");
    const auto rel = m.find("relation");
    if (rel == m.end() || !rel->is_string() || rel->get<std::string>().empty()) {
      return corrupt(where + ": member \"" + name + "\" has no \"relation\" string");
    }
    Label l;
    l.relation = rel->get<std::string>();
    const auto par = m.find("parent");
    if (par != m.end() && !par->is_null()) {
      if (!par->is_string()) {
        return corrupt(where + ": member \"" + name +
                       "\": \"parent\" is neither a string nor null");
      }
      l.parent = par->get<std::string>();
      if (l.parent == name) return corrupt(where + ": member \"" + name + "\" is its own parent");
    }
    labels[name] = l;
    if (!exists(name)) continue;
    FamilyMember fm;
    fm.name = name;
    fm.path = dir + "/" + name;
    fm.label = l.relation;
    fm.relation = parse_relation(l.relation);
    fm.parent = l.parent;
    if (m.contains("architecture") && m["architecture"].is_string()) {
      fm.architecture = m["architecture"].get<std::string>();
    } else if (m.contains("detail") && m["detail"].is_string()) {
      const std::string d = m["detail"].get<std::string>();
      fm.architecture = d.substr(0, d.find(' '));
    }
    fm.tokenizer = m.contains("tokenizer") && m["tokenizer"].is_string()
                       ? m["tokenizer"].get<std::string>()
                       : "main";
    f.members.push_back(std::move(fm));
  }
  if (f.members.empty()) {
    return invalid_argument(where + ": no member listed there has a model folder in " + dir);
  }
  // Weight roots, through the labels (a parent without a folder still names the root).
  for (auto& m : f.members) {
    std::string cur = m.name;
    for (size_t steps = 0;; ++steps) {
      if (steps > labels.size())
        return corrupt(where + ": parent links of \"" + m.name + "\" form a cycle");
      const auto it = labels.find(cur);
      const auto rel = it == labels.end() ? std::nullopt : parse_relation(it->second.relation);
      if (it == labels.end() || it->second.parent.empty() || !rel || !is_weight_derived(*rel)) {
        break;
      }
      cur = it->second.parent;
    }
    m.weight_root = cur;
  }
  std::sort(f.members.begin(), f.members.end(),
            [](const FamilyMember& a, const FamilyMember& b) { return a.name < b.name; });
  return f;
}

Result<Family> load_family(const std::string& dir) {
  const std::string path = dir + "/labels.json";
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return not_found(dir + ": not a directory");
  if (!std::filesystem::exists(path, ec)) {
    return not_found(path + ": no labels.json (a family folder needs one)");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in.is_open()) return io_error(path + ": cannot be opened");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_family(dir, text.str(), [&](const std::string& name) {
    std::error_code e;
    return !name.empty() && name.find('/') == std::string::npos && name != "." && name != ".." &&
           std::filesystem::is_directory(dir + "/" + name, e);
  });
}

std::vector<int> ancestors(const Family& f, int i) {
  std::vector<int> out;
  int cur = i;
  while (cur >= 0 && !f.members[static_cast<size_t>(cur)].parent.empty()) {
    const int p = f.find(f.members[static_cast<size_t>(cur)].parent);
    if (p < 0 || p == i || contains(out, p)) break;
    out.push_back(p);
    cur = p;
  }
  return out;
}

std::vector<int> weight_ancestors(const Family& f, int i) {
  std::vector<int> out;
  int cur = i;
  while (cur >= 0) {
    const auto& m = f.members[static_cast<size_t>(cur)];
    if (!m.weight_derived()) break;
    const int p = f.find(m.parent);
    if (p < 0 || p == i || contains(out, p)) break;
    out.push_back(p);
    cur = p;
  }
  return out;
}

bool weight_related(const Family& fc, int c, const Family& fr, int r) {
  return fc.dir == fr.dir && fc.members[static_cast<size_t>(c)].weight_root ==
                                 fr.members[static_cast<size_t>(r)].weight_root;
}

std::string weight_class(const Family& f, int c, int r) {
  if (contains(weight_ancestors(f, c), r)) return f.members[static_cast<size_t>(c)].relation_text();
  if (contains(weight_ancestors(f, r), c)) return f.members[static_cast<size_t>(r)].relation_text();
  return "siblings (shared weight root)";
}

std::string output_class(const FamilyMember& m) {
  if (m.weight_derived()) return "weight-derived";
  if (m.relation != Relation::kDistilledSeq) return m.relation_text();
  if (m.tokenizer != "main") return "distilled_seq (other tokenizer)";
  std::string name = m.name;
  // Replicate students (zoo build --student-seeds): NAME_sK has NAME's recipe.
  const auto s = name.rfind("_s");
  if (s != std::string::npos && s + 2 < name.size() &&
      std::all_of(name.begin() + static_cast<long>(s) + 2, name.end(),
                  [](char ch) { return ch >= '0' && ch <= '9'; })) {
    name = name.substr(0, s);
  }
  for (const char* pct : {"100", "50", "20"}) {
    const std::string suffix = std::string("_") + pct;
    if (name.size() >= suffix.size() &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      return std::string("distilled_seq ") + pct + " %";
    }
  }
  return "distilled_seq 100 %";
}

std::vector<int> roots(const Family& f) {
  std::vector<int> out;
  for (size_t i = 0; i < f.members.size(); ++i) {
    if (f.members[i].parent.empty()) out.push_back(static_cast<int>(i));
  }
  return out;
}

namespace {

std::vector<int> peers_of(const Family& f, int reference) {
  const auto& r = f.members[static_cast<size_t>(reference)];
  std::vector<int> out;
  for (int k : roots(f)) {
    const auto& m = f.members[static_cast<size_t>(k)];
    if (k != reference && m.architecture == r.architecture && m.tokenizer == r.tokenizer) {
      out.push_back(k);
    }
  }
  return out;
}

}  // namespace

std::vector<int> output_controls(const Family& f, int reference, int candidate) {
  std::vector<int> pool = peers_of(f, reference);
  if (pool.size() < 3) {
    pool.clear();
    for (int k : roots(f)) {
      if (k != reference) pool.push_back(k);
    }
  }
  pool.erase(std::remove(pool.begin(), pool.end(), candidate), pool.end());
  return pool;
}

std::vector<OutputPair> output_pairs(const Family& f) {
  std::vector<OutputPair> out;
  for (int r : roots(f)) {
    const std::vector<int> peers = peers_of(f, r);
    for (size_t ci = 0; ci < f.members.size(); ++ci) {
      const int c = static_cast<int>(ci);
      if (c == r) continue;
      const auto& mc = f.members[ci];
      OutputPair p;
      p.candidate = c;
      p.reference = r;
      p.related = contains(ancestors(f, c), r);
      p.same_recipe = !p.related && mc.parent.empty() && contains(peers, c);
      p.direct = mc.parent == f.members[static_cast<size_t>(r)].name;
      p.cls = p.related ? output_class(mc) : "independent";
      p.controls = output_controls(f, r, c);
      out.push_back(std::move(p));
    }
  }
  return out;
}

std::optional<Relation> expected_relation(const std::string& access, const FamilyMember& m) {
  if (m.parent.empty() || !m.relation) return std::nullopt;
  if (access == "weights") return m.weight_derived() ? m.relation : std::nullopt;
  if (access == "outputs") {
    if (is_distilled(*m.relation)) return m.relation;
    return m.weight_derived() ? std::optional<Relation>(Relation::kWeightDerived) : std::nullopt;
  }
  return m.relation;
}

double auroc(const std::vector<double>& pos, const std::vector<double>& neg) {
  if (pos.empty() || neg.empty()) return std::numeric_limits<double>::quiet_NaN();
  double wins = 0;
  for (double p : pos) {
    for (double n : neg) wins += p > n ? 1.0 : (p == n ? 0.5 : 0.0);
  }
  return wins / (static_cast<double>(pos.size()) * static_cast<double>(neg.size()));
}

double tpr_at_fpr(const std::vector<double>& pos, const std::vector<double>& neg, double fpr) {
  if (pos.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::vector<double> n = neg;
  std::sort(n.begin(), n.end(), std::greater<double>());
  // At most k negatives strictly above the threshold.
  const size_t k = static_cast<size_t>(std::floor(fpr * static_cast<double>(n.size())));
  const double thr = k < n.size() ? n[k] : -std::numeric_limits<double>::infinity();
  size_t hit = 0;
  for (double p : pos) hit += p > thr ? 1 : 0;
  return static_cast<double>(hit) / static_cast<double>(pos.size());
}

// P(X = i) for X ~ Binomial(n, q), 0 < q < 1, through logarithms.
static double binomial_pmf(int i, int n, double q) {
  return std::exp(std::lgamma(n + 1.0) - std::lgamma(i + 1.0) - std::lgamma(n - i + 1.0) +
                  i * std::log(q) + (n - i) * std::log1p(-q));
}

double binomial_cdf(int k, int n, double q) {
  if (k < 0) return 0;
  if (k >= n) return 1;
  if (q <= 0) return 1;
  if (q >= 1) return 0;
  double sum = 0;
  for (int i = 0; i <= k; ++i) {
    sum += binomial_pmf(i, n, q);
  }
  return std::min(1.0, sum);
}

double binomial_upper_tail(int k, int n, double q) {
  if (k <= 0) return 1;
  if (k > n) return 0;
  if (q <= 0) return 0;
  if (q >= 1) return 1;
  // Summed from the tail itself, so that tiny probabilities keep their precision.
  double sum = 0;
  for (int i = k; i <= n; ++i) {
    sum += binomial_pmf(i, n, q);
  }
  return std::min(1.0, sum);
}

Calibration calibration(const std::vector<double>& p_values, double alpha) {
  Calibration c;
  c.alpha = alpha;
  c.n = static_cast<int>(p_values.size());
  for (double p : p_values) c.rejected += p < alpha ? 1 : 0;
  if (c.n == 0) {
    c.fraction = std::numeric_limits<double>::quiet_NaN();
    c.upper95 = 1;
    return c;
  }
  c.fraction = static_cast<double>(c.rejected) / c.n;
  c.binomial_p = binomial_upper_tail(c.rejected, c.n, alpha);
  if (c.rejected >= c.n) {
    c.upper95 = 1;
  } else {
    // The rate q at which P(X <= rejected) = 0.05; the CDF decreases in q.
    double lo = c.fraction, hi = 1;
    for (int it = 0; it < 100; ++it) {
      const double mid = 0.5 * (lo + hi);
      if (binomial_cdf(c.rejected, c.n, mid) > 0.05) {
        lo = mid;
      } else {
        hi = mid;
      }
    }
    c.upper95 = hi;
  }
  return c;
}

namespace {

nlohmann::json calibration_json(const std::vector<double>& p, double alpha) {
  const Calibration c = calibration(p, alpha);
  return {{"alpha", alpha},
          {"n", c.n},
          {"rejected", c.rejected},
          {"fraction", num_or_null(c.fraction)},
          {"upper95", c.upper95},
          {"binomial_p", c.binomial_p},
          {"within_binomial_slack", c.binomial_p >= 0.05}};
}

}  // namespace

nlohmann::json summarize(const std::vector<ScoredPair>& pairs, double alpha,
                         const std::string& access, const std::string& score_name) {
  nlohmann::json s;
  s["access"] = access;
  s["alpha"] = alpha;
  s["score"] = score_name;
  int positives = 0, negatives = 0, untested = 0;
  std::vector<double> neg_scores;
  std::map<std::string, std::vector<const ScoredPair*>> classes;
  std::vector<const ScoredPair*> related;
  for (const auto& p : pairs) {
    if (p.related) {
      ++positives;
      classes[p.cls].push_back(&p);
      related.push_back(&p);
    } else {
      ++negatives;
      if (p.score) neg_scores.push_back(*p.score);
    }
    if (!p.p) ++untested;
  }
  s["pairs"] = pairs.size();
  s["positives"] = positives;
  s["negatives"] = negatives;
  s["without_p_value"] = untested;
  auto class_row = [&](const std::string& name, const std::vector<const ScoredPair*>& g) {
    std::vector<double> pos;
    int with_score = 0, d1 = 0, d5 = 0;
    double pmin = 1, pmax = 0;
    bool any_p = false;
    for (const auto* p : g) {
      if (!p->score) continue;
      ++with_score;
      pos.push_back(*p->score);
      if (p->p) {
        any_p = true;
        pmin = std::min(pmin, *p->p);
        pmax = std::max(pmax, *p->p);
        d1 += *p->p <= 0.01 ? 1 : 0;
        d5 += *p->p <= 0.05 ? 1 : 0;
      }
    }
    const double n = with_score;
    nlohmann::json row = {
        {"class", name},
        {"n", g.size()},
        {"scored", with_score},
        {"tpr_p_0.01", with_score ? nlohmann::json(d1 / n) : nlohmann::json(nullptr)},
        {"tpr_p_0.05", with_score ? nlohmann::json(d5 / n) : nlohmann::json(nullptr)},
        {"auroc", num_or_null(auroc(pos, neg_scores))},
        {"tpr_fpr_0.01", num_or_null(tpr_at_fpr(pos, neg_scores, 0.01))},
        {"tpr_fpr_0.05", num_or_null(tpr_at_fpr(pos, neg_scores, 0.05))},
        {"p_min", any_p ? nlohmann::json(pmin) : nlohmann::json(nullptr)},
        {"p_max", any_p ? nlohmann::json(pmax) : nlohmann::json(nullptr)}};
    if (!pos.empty()) row["min_score"] = num_or_null(*std::min_element(pos.begin(), pos.end()));
    return row;
  };
  nlohmann::json cls = nlohmann::json::array();
  for (const auto& [name, g] : classes) cls.push_back(class_row(name, g));
  if (classes.size() > 1) cls.push_back(class_row("all related", related));
  s["classes"] = cls;
  s["max_negative_score"] =
      neg_scores.empty() ? nlohmann::json(nullptr)
                         : num_or_null(*std::max_element(neg_scores.begin(), neg_scores.end()));
  // Calibration on negatives, overall and per named subset.
  std::map<std::string, std::vector<double>> subsets;
  std::vector<double> all_p;
  int negatives_named = 0;
  for (const auto& p : pairs) {
    if (p.related) continue;
    if (p.significant) ++negatives_named;
    if (!p.p) continue;
    all_p.push_back(*p.p);
    if (!p.subset.empty()) subsets[p.subset].push_back(*p.p);
  }
  nlohmann::json cal = nlohmann::json::array();
  auto cal_row = [&](const std::string& name, const std::vector<double>& p) {
    return nlohmann::json{{"subset", name},
                          {"n", p.size()},
                          {"alpha_0.01", calibration_json(p, 0.01)},
                          {"alpha_0.05", calibration_json(p, 0.05)}};
  };
  cal.push_back(cal_row("all negatives", all_p));
  for (const auto& [name, p] : subsets) cal.push_back(cal_row(name, p));
  s["calibration"] = cal;
  s["negatives_named_related"] = negatives_named;
  int missed = 0;
  for (const auto* p : related) missed += p->significant ? 0 : 1;
  s["positives_not_detected"] = missed;
  // Relation accuracy on direct pairs.
  int named = 0, correct = 0;
  nlohmann::json misnamed = nlohmann::json::array();
  for (const auto& p : pairs) {
    if (!p.direct || !p.expected_relation) continue;
    ++named;
    if (p.verdict == *p.expected_relation) {
      ++correct;
    } else {
      misnamed.push_back({{"candidate", p.candidate},
                          {"reference", p.reference},
                          {"expected", relation_name(*p.expected_relation)},
                          {"named", relation_name(p.verdict)}});
    }
  }
  s["relation_accuracy"] = {
      {"pairs", named},
      {"correct", correct},
      {"accuracy", named ? nlohmann::json(double(correct) / named) : nlohmann::json(nullptr)},
      {"misnamed", misnamed}};
  // Parent accuracy: per candidate whose labeled parent is among its references.
  std::map<std::string, std::vector<const ScoredPair*>> by_candidate;
  for (const auto& p : pairs) by_candidate[p.candidate].push_back(&p);
  int cands = 0, parent_ok = 0;
  nlohmann::json wrong = nlohmann::json::array();
  for (const auto& [cand, g] : by_candidate) {
    bool eligible = false;
    for (const auto* p : g) {
      if (p->direct && p->expected_relation && p->reference == p->candidate_parent) {
        eligible = true;
      }
    }
    if (!eligible) continue;
    ++cands;
    const ScoredPair* best = nullptr;
    for (const auto* p : g) {
      if (!p->significant) continue;
      if (best == nullptr) {
        best = p;
        continue;
      }
      const double pp = p->p.value_or(1), bp = best->p.value_or(1);
      const double ps = p->score.value_or(-std::numeric_limits<double>::infinity());
      const double bs = best->score.value_or(-std::numeric_limits<double>::infinity());
      if (pp < bp || (pp == bp && (ps > bs || (ps == bs && p->reference < best->reference)))) {
        best = p;
      }
    }
    const std::string expected = g.front()->candidate_parent;
    if (best != nullptr && best->reference == expected) {
      ++parent_ok;
    } else {
      wrong.push_back({{"candidate", cand},
                       {"expected", expected},
                       {"chosen", best ? nlohmann::json(best->reference) : nlohmann::json()}});
    }
  }
  s["parent_accuracy"] = {
      {"candidates", cands},
      {"correct", parent_ok},
      {"accuracy", cands ? nlohmann::json(double(parent_ok) / cands) : nlohmann::json(nullptr)},
      {"wrong", wrong}};
  s["null_hypotheses"] = {
      {"calibration",
       "on negative pairs H0 holds by construction, so P(p < alpha) <= alpha; upper95 is the "
       "one-sided 95 % Clopper-Pearson bound of the rate, binomial_p = P(X >= rejected) for X ~ "
       "Binomial(n, alpha) (pairs share models, so these are descriptive)"},
      {"auroc",
       "0.5 when the score does not separate the class from the negatives (ties count 1/2)"},
      {"tpr_fpr",
       "threshold = the (floor(FPR n) + 1)-th largest negative score; TPR = fraction of the "
       "class strictly above it"},
      {"parent_accuracy",
       "the chosen parent is the significant reference with the smallest p-value (ties: larger "
       "score, then name); no significant reference counts as wrong"}};
  return s;
}

Result<nlohmann::json> lineage_edge_accuracy(const Family& f, const std::vector<PairResult>& pairs,
                                             double alpha, double aligned_z_threshold) {
  const int n = static_cast<int>(f.members.size());
  const int npairs = std::max(1, n * (n - 1) / 2);
  const double pair_alpha = alpha / npairs;
  std::vector<PairResult> lv = pairs;
  for (auto& pr : lv) {
    auto& r = pr.result;
    if (is_identity_decided(r.relation) || !is_weight_derived(r.relation)) continue;
    if (r.p_value && *r.p_value < pair_alpha) continue;
    if (r.aligned.ran && r.aligned.z_score >= aligned_z_threshold) {
      r.p_value.reset();
    } else {
      r.relation = Relation::kIndependent;
    }
  }
  auto forest = build_forest(n, lv, pair_alpha);
  if (!forest.is_ok()) return forest.status();
  std::vector<int> expected(static_cast<size_t>(n), -1);
  int true_edges = 0;
  for (int i = 0; i < n; ++i) {
    const auto& m = f.members[static_cast<size_t>(i)];
    if (m.weight_derived()) {
      expected[static_cast<size_t>(i)] = f.find(m.parent);
      if (expected[static_cast<size_t>(i)] >= 0) ++true_edges;
    }
  }
  double undirected = 0;
  const double acc = edge_accuracy(*forest, expected, &undirected);
  nlohmann::json edges = nlohmann::json::array();
  for (const auto& e : forest->edges) {
    const auto& child = f.members[static_cast<size_t>(e.child)];
    edges.push_back({{"parent", f.members[static_cast<size_t>(e.parent)].name},
                     {"child", child.name},
                     {"relation", relation_name(e.relation)},
                     {"correct", expected[static_cast<size_t>(e.child)] == e.parent}});
  }
  int parents_ok = 0;
  for (int i = 0; i < n; ++i) {
    int got = -1;
    for (const auto& e : forest->edges) {
      if (e.child == i) got = e.parent;
    }
    parents_ok += got == expected[static_cast<size_t>(i)] ? 1 : 0;
  }
  return nlohmann::json{
      {"family", f.label},
      {"models", n},
      {"pairs", npairs},
      {"pair_alpha", pair_alpha},
      {"true_edges", true_edges},
      {"parent_accuracy", acc},
      {"parents_correct", parents_ok},
      {"undirected_edge_recall", undirected},
      {"edges", edges},
      {"null_hypothesis",
       "per pair, test A's H0 (independently initialised and trained weights) at alpha / pairs "
       "(Bonferroni over the family's pairs); expected parents: weight-derived relations"}};
}

std::string render_accuracy_markdown(const nlohmann::json& result) {
  std::string md;
  md += "```sh\n" + result.value("command", std::string("prov bench accuracy")) + "\n```\n\n";
  if (result.contains("families")) {
    std::string fams;
    for (const auto& f : result["families"]) {
      if (!fams.empty()) fams += ", ";
      fams += f.value("label", std::string()) + " (" + std::to_string(f.value("models", 0)) +
              " models)";
    }
    md += "Families: " + fams + ".";
    if (result.contains("suite"))
      md += " Output suite: " + result["suite"].get<std::string>() + ".";
    md += "\n\n";
  }
  auto rate = [](const nlohmann::json& v) {
    return v.is_number() ? fmt_rate(v.get<double>()) : std::string("-");
  };
  const nlohmann::json levels = result.value("access", nlohmann::json::object());
  std::vector<std::string> order;
  for (const char* a : {"weights", "outputs", "both"}) {
    if (levels.contains(a)) order.push_back(a);
  }
  for (const auto& [name, v] : levels.items()) {
    if (std::find(order.begin(), order.end(), name) == order.end()) order.push_back(name);
  }
  for (const std::string& access : order) {
    const nlohmann::json& s = levels[access];
    md += "**" + access + "** — " + std::to_string(s.value("pairs", 0)) + " pairs (" +
          std::to_string(s.value("positives", 0)) + " positive, " +
          std::to_string(s.value("negatives", 0)) + " negative";
    if (s.value("without_p_value", 0) > 0) {
      md += "; " + std::to_string(s["without_p_value"].get<int>()) + " without a p-value";
    }
    md += "). Score: " + s.value("score", std::string()) + ".";
    if (result.contains("seconds") && result["seconds"].contains(access)) {
      md += " " + fmt("%.1f", result["seconds"][access].get<double>()) + " s.";
    }
    if (s.contains("test_null_hypothesis")) {
      md += " H0 of the test: " + s["test_null_hypothesis"].get<std::string>();
    }
    md += "\n\n";
    md +=
        "| class | n | TPR at p ≤ 0.01 | TPR at p ≤ 0.05 | AUROC vs all negatives | TPR at FPR 1 % "
        "| TPR at FPR 5 % | p-values |\n|---|---|---|---|---|---|---|---|\n";
    for (const auto& c : s["classes"]) {
      std::string pr = "-";
      if (c["p_min"].is_number()) {
        pr = fmt_p(c["p_min"].get<double>()) + " … " + fmt_p(c["p_max"].get<double>());
      }
      md += "| " + c["class"].get<std::string>() + " | " + std::to_string(c["n"].get<int>()) +
            " | " + rate(c["tpr_p_0.01"]) + " | " + rate(c["tpr_p_0.05"]) + " | " +
            (c["auroc"].is_number() ? fmt_auroc(c["auroc"].get<double>()) : "-") + " | " +
            rate(c["tpr_fpr_0.01"]) + " | " + rate(c["tpr_fpr_0.05"]) + " | " + pr + " |\n";
    }
    md +=
        "\n| calibration (negatives, p < α) | n | α = 0.01 | α = 0.05 | 95 % upper bound (0.01 / "
        "0.05) | within binomial slack |\n|---|---|---|---|---|---|\n";
    for (const auto& c : s["calibration"]) {
      const auto& a1 = c["alpha_0.01"];
      const auto& a5 = c["alpha_0.05"];
      auto cell = [&](const nlohmann::json& a) {
        return a["fraction"].is_number() ? std::to_string(a["rejected"].get<int>()) + " (" +
                                               fmt_pct(a["fraction"].get<double>()) + ")"
                                         : std::string("-");
      };
      md += "| " + c["subset"].get<std::string>() + " | " + std::to_string(c["n"].get<int>()) +
            " | " + cell(a1) + " | " + cell(a5) + " | " + fmt_pct(a1["upper95"].get<double>()) +
            " / " + fmt_pct(a5["upper95"].get<double>()) + " | " +
            (a1["within_binomial_slack"].get<bool>() && a5["within_binomial_slack"].get<bool>()
                 ? "yes"
                 : "no") +
            " |\n";
    }
    const auto& ra = s["relation_accuracy"];
    const auto& pa = s["parent_accuracy"];
    md += "\n| measure | value |\n|---|---|\n";
    std::string mis;
    for (const auto& m : ra["misnamed"]) {
      mis += (mis.empty() ? "; misnamed: " : ", ") + m["candidate"].get<std::string>() + " (" +
             m["expected"].get<std::string>() + " named " + m["named"].get<std::string>() + ")";
    }
    md += "| relation named correctly, direct (candidate, parent) pairs | " +
          std::to_string(ra["correct"].get<int>()) + " / " +
          std::to_string(ra["pairs"].get<int>()) + mis + " |\n";
    std::string wr;
    for (const auto& w : pa["wrong"]) {
      wr += (wr.empty() ? "; wrong: " : ", ") + w["candidate"].get<std::string>() + " (" +
            (w["chosen"].is_null() ? std::string("none significant")
                                   : "chose " + w["chosen"].get<std::string>()) +
            ")";
    }
    md += "| parent named correctly (smallest significant p) | " +
          std::to_string(pa["correct"].get<int>()) + " / " +
          std::to_string(pa["candidates"].get<int>()) + wr + " |\n";
    md += "| negatives named related / positives not detected | " +
          std::to_string(s.value("negatives_named_related", 0)) + " / " +
          std::to_string(s.value("positives_not_detected", 0)) + " |\n";
    if (s["max_negative_score"].is_number()) {
      md += "| highest negative score | " + fmt("%.3g", s["max_negative_score"].get<double>()) +
            " |\n";
    }
    md += "\n";
  }
  if (result.contains("lineage") && !result["lineage"].empty()) {
    md +=
        "**Lineage graph from weights** (build_forest, test A at α / pairs)\n\n| family | models "
        "| true edges | parent accuracy | undirected edge recall |\n|---|---|---|---|---|\n";
    for (const auto& l : result["lineage"]) {
      md += "| " + l["family"].get<std::string>() + " | " + std::to_string(l["models"].get<int>()) +
            " | " + std::to_string(l["true_edges"].get<int>()) + " | " +
            fmt("%.3f", l["parent_accuracy"].get<double>()) + " (" +
            std::to_string(l["parents_correct"].get<int>()) + " / " +
            std::to_string(l["models"].get<int>()) + ") | " +
            fmt("%.3f", l["undirected_edge_recall"].get<double>()) + " |\n";
    }
    md += "\n";
  }
  if (result.contains("both_rule"))
    md += "*both*: " + result["both_rule"].get<std::string>() + "\n";
  return md;
}

}  // namespace prov::lineage
