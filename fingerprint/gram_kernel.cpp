#include "fingerprint/gram_kernel.h"

#include <algorithm>

namespace prov::fingerprint {

// Register tiles of kRows x kGramColumnBlock accumulators over row blocks of kDepth rows of `a`
// (kDepth x n floats stay in the L2 cache while every tile of the upper triangle reads them).
__attribute__((target_clones("avx512f", "avx2", "default"))) void gram_accumulate(const float* a,
                                                                                  int64_t k, int n,
                                                                                  float* g) {
  constexpr int kRows = 8, kCols = kGramColumnBlock;
  constexpr int64_t kDepth = 256;
  for (int64_t r0 = 0; r0 < k; r0 += kDepth) {
    const int64_t r1 = std::min(k, r0 + kDepth);
    for (int i0 = 0; i0 < n; i0 += kRows) {
      for (int j0 = (i0 / kCols) * kCols; j0 < n; j0 += kCols) {
        float acc[kRows][kCols] = {};
        for (int64_t r = r0; r < r1; ++r) {
          const float* row = a + r * n;
          for (int ii = 0; ii < kRows; ++ii) {
            const float x = row[i0 + ii];
            for (int jj = 0; jj < kCols; ++jj) acc[ii][jj] += x * row[j0 + jj];
          }
        }
        for (int ii = 0; ii < kRows; ++ii) {
          float* out = g + static_cast<int64_t>(i0 + ii) * n + j0;
          for (int jj = 0; jj < kCols; ++jj) out[jj] += acc[ii][jj];
        }
      }
    }
  }
}

}  // namespace prov::fingerprint
