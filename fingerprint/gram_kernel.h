// The Gram products of the weight tests: G += A^T A for a tall fp32 matrix A stored row-major
// ([k rows, n columns], n a multiple of kGramColumnBlock; pad with zero columns). This is most of
// the arithmetic of a weight fingerprint and of `prov compare` on checkpoints.
//
// The loop is compiled for AVX-512, AVX2 and baseline x86-64 and picked at run time
// (target_clones). Floating-point contraction is off in this file and the summation order is the
// same in every variant, so every machine computes the same bits: fingerprints are reproducible.
#pragma once

#include <cstdint>

namespace prov::fingerprint {

inline constexpr int kGramColumnBlock = 32;

// g: n x n row-major; every entry (i, j) with i <= j is incremented by sum_r a[r][i] a[r][j]
// (some entries below the diagonal too; only the upper triangle is meaningful).
void gram_accumulate(const float* a, int64_t k, int n, float* g);

}  // namespace prov::fingerprint
