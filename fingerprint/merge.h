// Merges: is a model a weighted average of two others? (The `merged` relation of METHODS.md:
// similar to two parents.)
//
// fit_merge(m, a, b) fits, tensor by tensor, m ~ alpha_t a + (1 - alpha_t) b by least squares
// over the tensors the three models share by role (model/formats/model.h TensorRole) with equal shapes,
// read as canonical fp32 values (dequantised, GGUF row order undone):
//
//   d = m - b, e = a - b;  alpha_t = <d, e> / <e, e>;  residual_t = |d|^2 - <d, e>^2 / <e, e>
//   (a tensor equal in both parents, e = 0, adds |d|^2 to the residual and no alpha).
//
// relative_residual = sqrt(sum residual_t / min(|m - a|^2, |m - b|^2)): the part of m's change
// from its nearer parent that no average of the two parents explains. A linear merge (task
// arithmetic, model soups, zoo/derive.h merge) leaves only rounding: about 1e-6 in fp32, 0.08
// when the merge of two parents 5 % apart is stored in bf16 (tests/fingerprint/merge_test.cpp).
// A model fine-tuned from one parent leaves all of its change (1.0), and a model whose two
// "parents" changed independently from it (a base between two of its fine-tunes) at least
// 1/sqrt(2): with d and e - d independent, the fit explains at most half of the nearer distance.
// kMergeResidual = 0.25 sits between. alpha is the fit's weight of `a` over all tensors (the
// alpha_t averaged with weights <e, e>).
//
// is_merge: relative_residual <= kMergeResidual and alpha inside [kMergeAlphaMin,
// 1 - kMergeAlphaMin] (m lies between its parents, and both contribute). This is an exact
// algebraic fit, not a test: no null hypothesis and no p-value. Merges that are not linear per
// tensor (TIES, DARE, SLERP over large angles) are not recognised, nor are merges of models with
// reordered dimensions.
//
// Failures: kInvalidArgument when the three models share no tensor of equal shape (or m is one of
// its parents by identity); the readers' errors.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/relation.h"
#include "core/status.h"
#include "model/formats/model.h"

namespace prov::fingerprint {

inline constexpr double kMergeResidual = 0.25;
inline constexpr double kMergeAlphaMin = 0.02;

struct MergeFit {
  double alpha = 0;                     // weight of `a` (b gets 1 - alpha)
  double relative_residual = 1;         // see above
  double alpha_min = 0, alpha_max = 0;  // range of the per-tensor alpha_t
  int tensors = 0;                      // tensors fitted
  bool is_merge = false;
  std::string reason;  // one sentence for the user
  std::string null_hypothesis = "least-squares fit (no test statistic)";
};

// Worker threads: 0 = min(default_thread_count(), 8).
Result<MergeFit> fit_merge(const model::Model& m, const model::Model& a, const model::Model& b,
                           unsigned threads = 0);

// The weight relations under which a merge reads against one of its parents (finetuned,
// noised): the comparisons whose models are worth fitting as a merge's parents.
bool reads_as_merge_parent(Relation relation);

// The two of `relatives` (models already found to share weights with m) that m is a merge of:
// every pair is fitted and the merge with the smallest residual wins (ties: the first pair in
// order). nullopt when no pair is a merge; pairs that share no tensor shape with m are skipped.
struct MergeParents {
  size_t a = 0, b = 0;  // indices into relatives (a < b)
  MergeFit fit;
};
Result<std::optional<MergeParents>> find_merge(const model::Model& m,
                                               const std::vector<const model::Model*>& relatives,
                                               unsigned threads = 0);

// find_merge for every model i of `models` with relatives[i] (indices into models; at least two
// needed). The result maps a merge to its two parents, as indices into models (a < b).
struct FoundMerge {
  int a = 0, b = 0;
  MergeFit fit;
};
Result<std::map<int, FoundMerge>> find_merges(const std::vector<const model::Model*>& models,
                                              const std::vector<std::vector<int>>& relatives);

}  // namespace prov::fingerprint
