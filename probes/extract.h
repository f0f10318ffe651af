// Signature extraction: logits -> (top-k ids and log-probabilities, entropy, log-sum-exp) per row.
//
// One function, two implementations: extract_reference() in LibTorch (any device: log_softmax in
// fp32, topk, entropy), and on CUDA a fused kernel (extract_cuda.cu) that reads each row of logits
// once in its own dtype (fp32/bf16/fp16), keeps an online max/sum/entropy accumulator and a
// per-thread top-k, and merges them per row, without materialising fp32 log-probabilities.
// extract_signature() dispatches: the kernel for CUDA tensors when it was built in, the reference
// otherwise. Results agree to the kernel tolerance documented in docs/runtime.md: the same top-k
// ids (ties broken towards the lower id) and log-probabilities within 1e-5 relative for fp32 input
// (bf16/fp16 input is upcast exactly, so the same holds).
#pragma once

#include <cstdint>

#include <torch/types.h>

#include "core/status.h"

namespace prov::probes {

struct Extracted {
  torch::Tensor top_ids;       // [N, k] int64, most likely first; ties: lower id first
  torch::Tensor top_logprobs;  // [N, k] float32
  torch::Tensor entropy;       // [N] float32, nats
  torch::Tensor logsumexp;     // [N] float32, of the raw logits
};

// logits: [N, V] (or [..., V], flattened to rows), float32/bfloat16/float16, on CPU or CUDA;
// 1 <= k <= min(V, 1024). Results are on the same device. kInvalidArgument for bad shapes, dtype
// or k; kInternal when LibTorch or CUDA fails.
Result<Extracted> extract_signature(const torch::Tensor& logits, int64_t k);
Result<Extracted> extract_reference(const torch::Tensor& logits, int64_t k);
// True when the fused CUDA kernel was compiled in.
bool extract_has_cuda_kernel();

}  // namespace prov::probes
