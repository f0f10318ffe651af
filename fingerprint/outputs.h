// Evidence layers 3 and 4 — output lineage and distillation, from signatures (probes/signature.h).
//
// Does the candidate answer like the reference more than models unrelated to the reference do?
// Every statistic S(C, X) measures how close the candidate C's answers are to a model X's, on the
// probes all signatures share, for X = the reference R and for each control K_1..K_m (models
// known to be unrelated to R; the strongest controls share R's data and recipe: seed twins).
//
// Statistics (higher = closer; docs/output-lineage.md has the formulas):
//   token level, when every signature used the candidate's tokenizer (same header `tokenizer`
//   and `vocab_size`):
//     top1_agreement          fraction of probes where the top-1 next tokens agree;
//     idiosyncratic_top1      top-1 agreement weighted, probe by probe, by how much the rest of
//                             the pool (R and controls, X left out) disagrees with X there: the
//                             idiosyncrasies a student inherits from its teacher;
//     topk_divergence         minus the mean Jensen-Shannon divergence of the two top-k lists,
//                             both cut to the shorter one, on the tokens either names plus a
//                             "rest" bucket per side holding the mass it did not list
//                             (probes/distribution.h): lists truncated by an engine compare
//                             without imputed probabilities;
//   text level (works across tokenizers):
//     greedy_prefix           mean common-prefix length of the greedy continuations, as a
//                             fraction of the longer one;
//     idiosyncratic_greedy    greedy_prefix weighted like idiosyncratic_top1;
//     cross_likelihood        the candidate's log-likelihood of X's greedy continuations, in nats
//                             per byte (needs the candidate's scores of those texts: a signature
//                             of cross_likelihood_suite, see below);
//     cross_likelihood_ratio  the same minus the mean log-likelihood the rest of the pool (R and
//                             the controls, X left out) gives X's texts: how much more likely the
//                             candidate finds X's texts than X's peers do, which cancels how
//                             predictable X's texts are (needs every pool model's scores);
//   distribution level, when every model has an image signature (full next-token log-probability
//   vectors on the same probes, probes::logit_image_v1) of the candidate's tokenizer:
//     logit_image             overlap of the two models' logit images. A model's log-probability
//                             vectors, centred over the vocabulary, all lie in the span of its
//                             (centred) unembedding matrix: a subspace of hidden-size dimensions
//                             that the rest of the network cannot leave. Each model's span is
//                             estimated from its vectors on the shared probes (eigenvectors of
//                             their Gram matrix above 1e-10 of the largest eigenvalue) and
//                             S = ||Q_C^T Q_X||_F^2 / min(rank_C, rank_X), the mean squared
//                             cosine of the principal angles: 1 for the same unembedding, near
//                             rank / vocabulary for unrelated random ones. Fine-tuning moves the
//                             unembedding far less than it moves the answers; an independent
//                             training draws a new one.
//
// The test, per statistic. H0: "the reference is no closer to the candidate than independent
// models are": S(C, R) is exchangeable with S(C, K_1..m). Under H0 and normal control scores,
//   t = (S(C,R) - mean_K) / (sd_K * sqrt(1 + 1/m))  ~  Student t with m - 1 degrees of freedom
// (a prediction interval for one more draw from the control population); p = P(T >= t),
// one-sided. The primary p-value combines the primary statistics (idiosyncratic_greedy;
// cross_likelihood_ratio when every pool model's scores are given; logit_image when every pool
// model has an image signature) by weighted Bonferroni: p = min(1, min_s p_s / w_s), with
// w = 0.1 for logit_image (a weight-derived copy gives it extreme p-values, so a small weight
// costs it nothing) and the rest shared equally by the others (1 / k without logit_image). The
// other statistics are reported as scores (their t) and feed the relation's kind. The calibration
// of these p-values is measured on independent pairs (docs/BENCHMARKS.md, "Output lineage"), not
// assumed. The rank of S(C, R) among the controls, (1 + #{K >= R}) / (1 + m), is reported beside
// it: exact under exchangeability alone, but never below 1 / (1 + m).
//
// Curve: the same test on the first n shared probes for n in `probe_grid`; probes_needed is the
// smallest n from which the primary p stays <= alpha.
//
// Relation (outputs only): related when p <= alpha, else `independent`; `inconclusive` (no
// p-value) when fewer than 2 controls or fewer than 10 shared probes remain. When related, the
// relation names the mechanism from the scores: `weight_derived` when logit_image is significant,
// the reference's image overlap exceeds the controls' mean by at least 0.15, and either the overlap
// is at least 0.9 (a copy) or no text-level primary statistic is significant (a fine-tune trained
// away from the reference's answers keeps its unembedding; a distilled student that learned the
// image learned the answers too); else `distilled_logit` when the full-distribution match
// (topk_divergence) stands out from the controls by t >= 3, else `distilled_seq`. With weights at
// hand the audit names the relation from the weights first. Direction,
// for distilled_seq with both sides' scores of each other's texts: gap_X = (log-likelihood X
// gives its own greedy texts - the one it gives the other's) per byte; a student trained on
// generated text is sharper on its own texts than its teacher is, so the side with the smaller
// gap is named the teacher, with the fraction of 1000 seeded bootstrap resamples of probes that
// agree. Both rules were set on the project's zoo (docs/BENCHMARKS.md has their measured accuracy,
// and a held-out check on zoo-dev); they are evidence detail, not part of the p-value.
//
// Errors (Result): a signature without records, signatures of different suites (kInvalidArgument
// naming the file). Thread-safe: no shared state but the optional ImageBasisCache, which locks.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/relation.h"
#include "core/status.h"
#include "probes/signature.h"
#include "probes/suite.h"

namespace prov::fingerprint {

// Logit-image bases computed once per model and probe set, shared by the output tests of one run
// (prov bench compares every pair of a family). The signatures must outlive the cache: entries
// are keyed by the image signature's address. Thread-safe.
class ImageBasisCache {
 public:
  ImageBasisCache();
  ~ImageBasisCache();
  ImageBasisCache(const ImageBasisCache&) = delete;
  ImageBasisCache& operator=(const ImageBasisCache&) = delete;
  struct Impl;
  Impl* impl() const { return impl_; }

 private:
  Impl* impl_;
};

struct OutputTestOptions {
  double alpha = 0.01;
  int max_probes = 0;  // use at most this many shared probes (0 = all)
  std::vector<int> probe_grid = {10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000};
  uint64_t seed = 20251;                   // bootstrap for the direction's confidence
  ImageBasisCache* image_cache = nullptr;  // optional, see above
};

// A signature with the name it is reported under.
struct NamedSignature {
  std::string name;
  const probes::Signature* signature = nullptr;
  // This model's signature of a cross_likelihood_suite covering the pool's greedy texts (may be
  // null): the candidate's gives cross_likelihood; with the reference's and every control's too,
  // cross_likelihood_ratio and the direction.
  const probes::Signature* scores = nullptr;
  // This model's image signature (full log-probability vectors, e.g. logit-image-v1; may be
  // null): with every pool model's, logit_image.
  const probes::Signature* image = nullptr;
};

struct OutputStatistic {
  std::string name;
  bool primary = false;
  double reference = 0;          // S(C, R)
  std::vector<double> controls;  // S(C, K_j), in control order
  double control_mean = 0, control_sd = 0;
  double t = 0;  // prediction t statistic (score when not primary)
  int df = 0;
  double p_value = 1;  // one-sided P(T_df >= t)
  double rank_p = 1;   // (1 + #{K >= R}) / (1 + m)
};

struct OutputCurvePoint {
  int probes = 0;
  double p_value = 1;                           // primary, Bonferroni-combined
  std::vector<double> reference, control_mean;  // of each primary statistic, same order
};

struct OutputComparison {
  // independent | inconclusive, or when related the kind: weight_derived | distilled_logit |
  // distilled_seq.
  Relation relation = Relation::kInconclusive;
  bool related() const { return is_related(relation); }
  std::string reason;
  std::optional<double> p_value;
  std::string null_hypothesis;
  std::string combination;
  int probes_used = 0;
  int probes_needed = -1;  // -1: p never reached alpha on the grid
  std::vector<std::string> controls;
  std::vector<OutputStatistic> statistics;
  std::vector<OutputCurvePoint> curve;
  bool cross_tokenizer = false;  // token-level statistics left out
  int image_probes = 0;          // probes behind logit_image (0: not computed)
  int image_rank = 0;            // the candidate's logit-image rank on them
  // Direction (distilled_seq with both sides' cross-likelihood scores only).
  std::string teacher;              // "reference", "candidate" or "" (unknown)
  double direction_confidence = 0;  // bootstrap agreement
  double gap_reference = 0, gap_candidate = 0;
};

// The test above. Scores (NamedSignature::scores) restrict the test to the probes they cover.
Result<OutputComparison> compare_outputs(const NamedSignature& candidate,
                                         const NamedSignature& reference,
                                         const std::vector<NamedSignature>& controls,
                                         const OutputTestOptions& options = {});

// The suite that asks a model to score the greedy continuations in `signatures` (all of `base`,
// whose digest they must carry): one probe per base probe (the first `max_probes`, 0 = all; text
// probes only), same id and prompt, score_texts = the distinct non-empty greedy texts in byte
// order, no top-k, no greedy tokens. Named base.name + "-xlik". kInvalidArgument when a signature
// belongs to another suite or a base probe is given as ids.
Result<probes::Suite> cross_likelihood_suite(
    const probes::Suite& base, const std::vector<const probes::Signature*>& signatures,
    int max_probes = 0);

nlohmann::json output_result_json(const OutputComparison& r);

// Upper tail of Student's t: P(T_df >= t), df >= 1 (exposed for tests).
double student_t_upper(double t, double df);

}  // namespace prov::fingerprint
