// Internal: the launcher of the fused signature-extraction kernel (extract_cuda.cu).
//
// Deliberately free of LibTorch and CUDA headers so that nvcc never compiles torch headers and
// extract.cpp can declare the launcher without the CUDA toolkit on its include path. The tensor
// handling (validation, allocation, device guard, current stream) lives in extract.cpp.
// Not part of the public API: include probes/extract.h instead.
#pragma once

#include <cstdint>

namespace prov::probes::cuda_detail {

enum class LogitsDtype { kFloat32 = 0, kBFloat16 = 1, kFloat16 = 2 };

// Row problem bits written to row_flags[r] (0 = the row is a valid distribution).
inline constexpr int32_t kRowHasNaN = 1;
inline constexpr int32_t kRowHasPosInf = 2;
inline constexpr int32_t kRowAllNegInf = 4;

// Largest k the kernel supports (the public contract's limit).
inline constexpr int64_t kMaxK = 1024;

// Launches the kernel on `stream` (a cudaStream_t) and returns without synchronising.
//   logits: device pointer to n_rows * vocab contiguous elements of `dtype` (row-major);
//   1 <= k <= min(vocab, kMaxK); 1 <= vocab < 2^31 - 1; n_rows < 2^31.
//   Outputs (device pointers, caller-allocated): top_ids [n_rows, k], top_logprobs [n_rows, k],
//   entropy [n_rows], logsumexp [n_rows], row_flags [n_rows] (bits above).
// Returns nullptr on success, else a static description of the CUDA launch error. Results of rows
// whose flag is non-zero are unspecified. Thread safety: as for any CUDA launch.
const char* launch_extract(const void* logits, LogitsDtype dtype, int64_t n_rows, int64_t vocab,
                           int64_t k, int64_t* top_ids, float* top_logprobs, float* entropy,
                           float* logsumexp, int32_t* row_flags, void* stream);

}  // namespace prov::probes::cuda_detail
