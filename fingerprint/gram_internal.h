// Shared between weights.cpp and weight_fingerprint.cpp: the Gram-matrix sets of the weight
// tests and the permutation test on two of them (weights.h describes both). Not a public API.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <vector>

#include <Eigen/Dense>

#include "core/status.h"
#include "fingerprint/weights.h"
#include "model/formats/model.h"

namespace prov::fingerprint {

struct GramSet {
  // per layer: matrix kind (model::Role as int) -> cosine Gram matrix on the test dimensions;
  // for the reference side also its centred, unit-norm off-diagonal upper triangle.
  std::vector<std::map<int, Eigen::MatrixXd>> grams;
  std::vector<std::map<int, std::vector<double>>> upper;
};

struct GramTestResult {
  double t = 0, z = 0, p = 1, null_mean = 0, null_sd = 0;
  std::vector<LayerSimilarity> layers;
  double max_gram_difference = 0;  // same depth: max relative Frobenius difference
  bool empty = true;               // no layer pair with a matrix kind in common
};

// One set of Gram matrices to compute: residual dimensions `dims` with `signs`, `structured`
// leading eigen-components removed; `reference` also fills GramSet::upper.
struct GramView {
  std::vector<int> dims;
  std::vector<double> signs;
  int structured = 0;
  bool reference = false;
};

// Work to run in the same worker pool as the Gram products (make_weight_fingerprint's digests),
// so that one pass over a checkpoint keeps every core busy; `bytes` orders the tasks (largest
// first).
struct SideTask {
  uint64_t bytes = 0;
  std::function<Status()> run;
};

// The cosine Gram matrices of every layer's matrices for each view, reading each tensor once;
// `side` tasks run alongside. The first failure (Gram or side task) is returned.
Result<std::vector<GramSet>> gram_sets(const model::Model& m, const std::vector<GramView>& views,
                                       unsigned threads, const std::vector<SideTask>& side = {});

// Asks the kernel to read ahead the weight matrices gram_sets will read first (its order), up to
// budget_bytes: for a caller with other work to do before gram_sets on a checkpoint that is not
// in the page cache. A hint; returns once the reads are requested.
void prefetch_gram_tensors(const model::Model& m, uint64_t budget_bytes);

// The off-diagonal upper triangle of `g`, centred and scaled to unit norm.
std::vector<double> centred_upper(const Eigen::MatrixXd& g);

// The seeds of one comparison, drawn from WeightTestOptions::seed: test A's permutations, test
// B's permutations, the dimension subset.
struct TestSeeds {
  uint64_t a = 0, b = 0, subset = 0;
};
TestSeeds test_seeds(uint64_t seed);
// Test A's dimensions: all of [0, hidden), or a seeded subset of max_dims of them, ascending.
std::vector<int> raw_test_dims(int64_t hidden, int max_dims, uint64_t subset_seed);

// Test A / test B's statistic and its signed-permutation distribution over `s` dimensions.
GramTestResult permutation_test(const GramSet& reference, const GramSet& candidate, int s,
                                int permutations, uint64_t seed, unsigned threads);

}  // namespace prov::fingerprint
