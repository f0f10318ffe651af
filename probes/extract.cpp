// Signature extraction: validation, the LibTorch reference and the dispatch to the CUDA kernel.
//
// Ranking rule (both implementations): rows are ranked by the logit upcast to fp32, larger first,
// equal logits by lower id; -0.0 equals +0.0. This is the order of the log-probabilities x - lse,
// except that rounding can make the fp32 log-probabilities of two different logits equal; the
// larger logit still comes first then. Ranking the logits rather than the rounded differences
// keeps the order a property of the input, identical for every way of computing lse.
//
// Reference top-k: torch::topk makes no promise about which of several equal values it returns or
// in which order, and a full stable sort costs O(V log V) per row. Instead each element gets a
// distinct int64 key: the fp32 logit's bits mapped to an order-preserving int32 in the high half,
// (2^32 - 1 - id) in the low half. Larger key = larger logit, then lower id, and since no two keys
// are equal, topk's answer (sorted) is unique: exactly the (-logit, id) order, in O(V) per row.
#include "probes/extract.h"

#include <algorithm>
#include <cstdint>
#include <exception>
#include <limits>
#include <string>

#ifdef PROV_WITH_CUDA_KERNELS
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include "probes/extract_cuda.h"
#endif

namespace prov::probes {
namespace {

constexpr int64_t kMaxK = 1024;
// Ids travel as int32 inside the kernel, with one value kept as a sentinel.
constexpr int64_t kMaxVocab = std::numeric_limits<int32_t>::max() - 1;

const char* dtype_name(torch::ScalarType t) {
  return c10::toString(t);
}

// Checks shape, dtype and k; returns the logits as contiguous rows [N, V] in their own dtype.
Result<torch::Tensor> as_rows(const torch::Tensor& logits, int64_t k) {
  if (!logits.defined()) return invalid_argument("logits: the tensor is undefined");
  if (logits.dim() < 1) {
    return invalid_argument(
        "logits: expected a tensor [..., V] with the vocabulary as last dimension, got a scalar");
  }
  const auto t = logits.scalar_type();
  if (t != torch::kFloat32 && t != torch::kBFloat16 && t != torch::kFloat16) {
    return invalid_argument(std::string("logits: dtype ") + dtype_name(t) +
                            " is not supported; use float32, bfloat16 or float16");
  }
  const int64_t v = logits.size(-1);
  if (v < 1) return invalid_argument("logits: the vocabulary dimension (last) is empty");
  if (v > kMaxVocab) {
    return invalid_argument("logits: vocabulary size " + std::to_string(v) +
                            " is too large (at most " + std::to_string(kMaxVocab) + ")");
  }
  const int64_t k_max = std::min(v, kMaxK);
  if (k < 1 || k > k_max) {
    return invalid_argument("top-k: k = " + std::to_string(k) +
                            " is out of range; need 1 <= k <= min(vocabulary size " +
                            std::to_string(v) + ", " + std::to_string(kMaxK) +
                            ") = " + std::to_string(k_max));
  }
  return logits.reshape({-1, v}).contiguous();
}

enum class RowProblem { kNaN, kPosInf, kAllNegInf };

Status row_problem(RowProblem p, int64_t row, int64_t n_rows) {
  const std::string where =
      " (first in row " + std::to_string(row) + " of " + std::to_string(n_rows) + ")";
  switch (p) {
    case RowProblem::kNaN:
      return invalid_argument("logits contain NaN" + where +
                              "; the model produced an invalid distribution");
    case RowProblem::kPosInf:
      return invalid_argument("logits contain +inf" + where +
                              "; the log-probabilities are undefined");
    case RowProblem::kAllNegInf:
      return invalid_argument("logits: a row has no finite logit, all are -inf" + where +
                              "; it is not a distribution");
  }
  return internal_error("unknown row problem");
}

// The first row flagged in `flagged` ([N] bool, any device), or -1.
int64_t first_flagged(const torch::Tensor& flagged) {
  if (!flagged.any().item<bool>()) return -1;
  return flagged.nonzero().select(1, 0).min().item<int64_t>();
}

// NaN, +inf and all -inf rows, checked in that order (the kernel reports the same).
Status check_rows(const torch::Tensor& x) {
  const int64_t n = x.size(0);
  int64_t r = first_flagged(torch::isnan(x).any(1));
  if (r >= 0) return row_problem(RowProblem::kNaN, r, n);
  r = first_flagged(torch::isposinf(x).any(1));
  if (r >= 0) return row_problem(RowProblem::kPosInf, r, n);
  r = first_flagged(torch::isneginf(x).all(1));
  if (r >= 0) return row_problem(RowProblem::kAllNegInf, r, n);
  return Status::ok();
}

Extracted empty_result(int64_t k, const torch::TensorOptions& opts) {
  Extracted out;
  out.top_ids = torch::empty({0, k}, opts.dtype(torch::kInt64));
  out.top_logprobs = torch::empty({0, k}, opts.dtype(torch::kFloat32));
  out.entropy = torch::empty({0}, opts.dtype(torch::kFloat32));
  out.logsumexp = torch::empty({0}, opts.dtype(torch::kFloat32));
  return out;
}

Result<Extracted> reference_rows(const torch::Tensor& rows, int64_t k) {
  torch::NoGradGuard no_grad;
  const int64_t n = rows.size(0);
  const int64_t v = rows.size(1);
  if (n == 0) return empty_result(k, rows.options());
  // fp32 copy; -0.0 -> +0.0 so that the bit keys below see equal logits as equal.
  torch::Tensor x = rows.to(torch::kFloat32).masked_fill(rows == 0, 0.0).contiguous();
  PROV_RETURN_IF_ERROR(check_rows(x));

  Extracted out;
  out.logsumexp = torch::logsumexp(x, {1});
  const torch::Tensor logp = x - out.logsumexp.unsqueeze(1);
  const torch::Tensor p = torch::exp(logp);
  // -inf logits have p = 0 and contribute 0 (not 0 * -inf = NaN).
  out.entropy = -torch::where(p > 0, p * logp, torch::zeros_like(p)).sum(1);

  const torch::Tensor bits = x.view(torch::kInt32);
  // Sign-magnitude -> two's-complement order: negative floats get their magnitude bits flipped.
  const torch::Tensor ordered =
      torch::where(bits >= 0, bits, torch::bitwise_xor(bits, 0x7fffffff)).to(torch::kInt64);
  const torch::Tensor ids = torch::arange(v, x.options().dtype(torch::kInt64));
  const torch::Tensor key = ordered * (int64_t{1} << 32) + ((int64_t{1} << 32) - 1 - ids);
  out.top_ids = std::get<1>(torch::topk(key, k, /*dim=*/1, /*largest=*/true, /*sorted=*/true));
  out.top_logprobs = logp.gather(1, out.top_ids);
  return out;
}

#ifdef PROV_WITH_CUDA_KERNELS
Result<Extracted> cuda_rows(const torch::Tensor& rows, int64_t k) {
  namespace cd = cuda_detail;
  const int64_t n = rows.size(0);
  const int64_t v = rows.size(1);
  const c10::cuda::CUDAGuard guard(rows.device());
  const auto opts = rows.options();
  if (n == 0) return empty_result(k, opts);
  cd::LogitsDtype dtype = cd::LogitsDtype::kFloat32;
  if (rows.scalar_type() == torch::kBFloat16) dtype = cd::LogitsDtype::kBFloat16;
  if (rows.scalar_type() == torch::kFloat16) dtype = cd::LogitsDtype::kFloat16;

  Extracted out;
  out.top_ids = torch::empty({n, k}, opts.dtype(torch::kInt64));
  out.top_logprobs = torch::empty({n, k}, opts.dtype(torch::kFloat32));
  out.entropy = torch::empty({n}, opts.dtype(torch::kFloat32));
  out.logsumexp = torch::empty({n}, opts.dtype(torch::kFloat32));
  torch::Tensor flags = torch::empty({n}, opts.dtype(torch::kInt32));
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream(rows.device().index()).stream();
  const char* err = cd::launch_extract(
      rows.data_ptr(), dtype, n, v, k, out.top_ids.data_ptr<int64_t>(),
      out.top_logprobs.data_ptr<float>(), out.entropy.data_ptr<float>(),
      out.logsumexp.data_ptr<float>(), flags.data_ptr<int32_t>(), static_cast<void*>(stream));
  if (err != nullptr) {
    return internal_error(std::string("signature-extraction kernel launch failed: ") + err);
  }
  // Copying the flags waits for the kernel; a fault in it surfaces here as a c10::Error.
  const torch::Tensor f = flags.to(torch::kCPU);
  const int32_t* fp = f.data_ptr<int32_t>();
  const struct {
    int32_t bit;
    RowProblem problem;
  } checks[] = {{cd::kRowHasNaN, RowProblem::kNaN},
                {cd::kRowHasPosInf, RowProblem::kPosInf},
                {cd::kRowAllNegInf, RowProblem::kAllNegInf}};
  for (const auto& c : checks) {
    for (int64_t r = 0; r < n; ++r) {
      if (fp[r] & c.bit) return row_problem(c.problem, r, n);
    }
  }
  return out;
}
#endif

}  // namespace

Result<Extracted> extract_reference(const torch::Tensor& logits, int64_t k) {
  try {
    PROV_ASSIGN_OR_RETURN(torch::Tensor rows, as_rows(logits, k));
    return reference_rows(rows, k);
  } catch (const c10::Error& e) {
    return internal_error(std::string("signature extraction (reference): LibTorch failed: ") +
                          e.what_without_backtrace());
  } catch (const std::exception& e) {
    return internal_error(std::string("signature extraction (reference) failed: ") + e.what());
  }
}

Result<Extracted> extract_signature(const torch::Tensor& logits, int64_t k) {
#ifdef PROV_WITH_CUDA_KERNELS
  if (logits.defined() && logits.is_cuda()) {
    try {
      PROV_ASSIGN_OR_RETURN(torch::Tensor rows, as_rows(logits, k));
      return cuda_rows(rows, k);
    } catch (const c10::Error& e) {
      return internal_error(std::string("signature extraction (CUDA kernel): LibTorch failed: ") +
                            e.what_without_backtrace());
    } catch (const std::exception& e) {
      return internal_error(std::string("signature extraction (CUDA kernel) failed: ") + e.what());
    }
  }
#endif
  return extract_reference(logits, k);
}

bool extract_has_cuda_kernel() {
#ifdef PROV_WITH_CUDA_KERNELS
  return true;
#else
  return false;
#endif
}

}  // namespace prov::probes
