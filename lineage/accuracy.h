// Accuracy of the lineage tests on families with known lineage (prov bench accuracy).
//
// A family is a folder of model checkpoints with a labels.json: the `prov zoo build` layout
// ({"models": {name: {relation, parent, architecture, tokenizer, detail, ...}}}) or zoo-dev's
// (the same keys without "architecture", whose first word of "detail" names it, and relation
// "finetune" for a fine-tune). Only members whose folder exists are loaded.
//
// Ground truth, per access level:
//  weights  every ordered pair of models (across families too) is a test. Two models are
//           weight-related when they are in the same family and have the same weight root: the
//           model reached by following `parent` links through weight-derived relations
//           (fingerprint::is_weight_derived, and "finetune"). Every other pair, students and
//           their teachers included, is independent under the weight test's H0.
//  outputs  per family, the references are the roots (bases and independents: no parent); every
//           other member is a candidate. A pair is positive when the reference is an ancestor of
//           the candidate through any relation (weights or distillation). The controls of the test
//           of reference R are R's seed twins (the other roots with R's architecture and
//           tokenizer) when there are at least 3 of them, else every other root; the candidate and
//           the reference are always left out (leave-one-out from the independents).
//  both     the output pairs, with both layers' evidence combined per pair (the CLI's rule).
//
// Classes of positive pairs: outputs and both: "weight-derived" (the candidate's relation is
// weight-derived), "distilled_logit", "distilled_seq 100 %", "distilled_seq 50 %",
// "distilled_seq 20 %" (from the member name's _100/_50/_20 suffix; replicate students `_sK`
// map to their recipe), "distilled_seq (other tokenizer)" (tokenizer other than "main"); weights:
// the relation of the descendant when one model is a weight ancestor of the other, else
// "siblings (shared weight root)". Negatives are class "independent".
//
// Metrics (summarize): per class AUROC of the score against all negatives (ties count 1/2), TPR at
// empirical FPR 1 % / 5 % (threshold: the (floor(fpr * n) + 1)-th largest negative score; a
// positive counts when strictly above it), TPR at p <= 0.01 / 0.05; calibration on negatives
// (fraction with p < alpha, its one-sided 95 % Clopper-Pearson upper bound, and the binomial
// P(X >= rejections) under rate alpha); relation accuracy on direct (candidate, parent) pairs;
// parent accuracy (for each candidate with a labeled parent among its references: is the parent
// the significant reference with the smallest p, ties by the larger score?). Lineage-graph edge
// accuracy comes from build_forest + edge_accuracy (graph.h) on the weight results of a family.
//
// Everything here is pure and deterministic; nothing runs a model. Thread-safe.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/relation.h"
#include "core/status.h"
#include "lineage/graph.h"

namespace prov::lineage {

struct FamilyMember {
  std::string name;
  std::string path;   // the member's folder
  std::string label;  // the relation as labels.json writes it ("finetune", "base", ...)
  // The label as a relation of the taxonomy ("finetune" -> finetuned); nullopt for labels that
  // name none ("base" and other words for roots, or a label prov does not know).
  std::optional<Relation> relation;
  std::string parent;        // "" for a root
  std::string architecture;  // "architecture", else the first word of "detail"
  std::string tokenizer;     // "main" when not given
  std::string weight_root;   // following parent links through weight-derived relations
  // Derived from its parent's weights (relation weight-derived and a parent named).
  bool weight_derived() const {
    return !parent.empty() && relation && is_weight_derived(*relation);
  }
  // The relation's wire name, else the label.
  std::string relation_text() const { return relation ? relation_name(*relation) : label; }
};

struct Family {
  std::string dir;
  std::string label;                  // the folder's last component
  std::vector<FamilyMember> members;  // sorted by name
  // Index of a member by name, -1 when absent.
  int find(const std::string& name) const;
};

// Reads DIR/labels.json. Errors: kNotFound (no labels.json), kCorrupt (not JSON, no "models"
// object, a member that is not an object, relation missing or not a string, parent neither a
// string nor null, a parent cycle), kInvalidArgument (no member has a folder in DIR). Messages
// name the file and the member.
Result<Family> load_family(const std::string& dir);
// The same from the text of a labels.json (`where` names it in messages); `exists(name)` says
// whether the member's folder is present.
Result<Family> parse_family(const std::string& dir, const std::string& labels_text,
                            const std::function<bool(const std::string&)>& exists);

// Ancestors of member i through any relation (parent, grandparent, ...), as member indices; a
// parent without a folder ends the chain.
std::vector<int> ancestors(const Family& f, int i);
// Ancestors of member i through weight-derived relations only.
std::vector<int> weight_ancestors(const Family& f, int i);

// Weight pairs.
bool weight_related(const Family& fc, int c, const Family& fr, int r);
std::string weight_class(const Family& f, int c, int r);  // for related pairs of one family

// Output pairs.
std::string output_class(const FamilyMember& m);  // class of a positive pair, by the candidate
std::vector<int> roots(const Family& f);          // members without a parent, by name
std::vector<int> output_controls(const Family& f, int reference, int candidate);
struct OutputPair {
  int candidate = 0, reference = 0;
  bool related = false;
  bool same_recipe = false;  // negative between roots of the reference's recipe (seed twins)
  bool direct = false;       // the reference is the candidate's labeled parent
  std::string cls;           // "independent" for negatives
  std::vector<int> controls;
};
// Every (candidate, root reference) pair of a family, references then candidates by name.
std::vector<OutputPair> output_pairs(const Family& f);

// The relation a direct (candidate, parent) pair should be named at an access level ("weights",
// "outputs", "both"); nullopt when that access cannot name it (weights: a non-weight relation).
// Outputs name a weight-derived relation only as `weight_derived` (the logit image shows a shared
// unembedding, not how it was derived).
std::optional<Relation> expected_relation(const std::string& access, const FamilyMember& m);

// Metrics.
double auroc(const std::vector<double>& pos, const std::vector<double>& neg);  // NaN if empty
double tpr_at_fpr(const std::vector<double>& pos, const std::vector<double>& neg, double fpr);
struct Calibration {
  double alpha = 0;
  int n = 0, rejected = 0;  // rejected: p < alpha
  double fraction = 0;
  double upper95 = 0;     // one-sided 95 % Clopper-Pearson upper bound of the rate
  double binomial_p = 1;  // P(X >= rejected), X ~ Binomial(n, alpha)
};
Calibration calibration(const std::vector<double>& p_values, double alpha);
// P(X <= k) for X ~ Binomial(n, q) (exposed for tests).
double binomial_cdf(int k, int n, double q);
// P(X >= k) for X ~ Binomial(n, q).
double binomial_upper_tail(int k, int n, double q);

// One scored (candidate, reference) pair at one access level.
struct ScoredPair {
  std::string candidate, reference;  // display names (family/name)
  std::string candidate_parent;      // display name of the labeled parent ("" for a root)
  bool related = false;
  std::string cls;     // "independent" for negatives
  std::string subset;  // a named subset of negatives with its own calibration ("" = none)
  bool direct = false;
  std::optional<Relation> expected_relation;   // nullopt = not scored for relation accuracy
  std::optional<double> p;                     // the p-value (none: not tested / inconclusive)
  std::optional<double> score;                 // higher = more related (none: left out of AUROC)
  Relation verdict = Relation::kInconclusive;  // named at this access level (judge())
  bool significant = false;                    // the verdict names a relation
};

// The summary of one access level: counts, classes, calibration, relation and parent accuracy,
// each with its null hypothesis. `score_name` describes the score.
nlohmann::json summarize(const std::vector<ScoredPair>& pairs, double alpha,
                         const std::string& access, const std::string& score_name);

// Lineage-graph edge accuracy of one family from the weight comparisons among its members
// (candidate/reference = member indices). Test A runs at alpha / (n (n - 1) / 2) (Bonferroni over
// the pairs, as prov lineage): a result compared at a looser level is re-levelled first (related
// only through test A's p-value, which is not below the stricter level: "independent"; related
// through the aligned score: kept, without p-value). Expected parents: weight-derived relations.
// Returns {models, pairs, true_edges, parent_accuracy, undirected_edge_recall, edges: [...]}.
Result<nlohmann::json> lineage_edge_accuracy(const Family& f, const std::vector<PairResult>& pairs,
                                             double alpha, double aligned_z_threshold);

// Markdown tables of a bench result ({"command", "access": {level: summary}, "lineage": ...}).
std::string render_accuracy_markdown(const nlohmann::json& result);

}  // namespace prov::lineage
