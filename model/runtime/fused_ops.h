// Fused transformer operations with the reference's rounding, for the runtime's hot paths.
//
// Each function has a LibTorch reference (always built; what runs on CPU) and, on CUDA tensors
// when the kernels were compiled in (fused_ops_cuda.cu, a CUDA LibTorch), a single fused kernel
// that reads its inputs once and writes its outputs once. The kernels reproduce the reference's
// roundings step by step (fp32 arithmetic, a rounding to the compute dtype wherever the
// reference materialises a tensor), so they differ from it only by the order of the fp32 sum in
// the RMS statistic. tests/model/fused_ops_test.cpp compares both on a GPU.
#pragma once

#include <torch/types.h>

namespace prov::model {

// Hugging Face LlamaRMSNorm: w * (x.float() * rsqrt(mean(x.float()^2) + eps)).to(x.dtype).
torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& w, double eps);

// h + delta (in the compute dtype), and rms_norm of that sum: the residual update followed by the
// next normalisation, in one pass on CUDA. Returns {sum, normed}.
std::pair<torch::Tensor, torch::Tensor> add_rms_norm(const torch::Tensor& h,
                                                     const torch::Tensor& delta,
                                                     const torch::Tensor& w, double eps);

// silu(gu[..., :I]) * gu[..., I:] for the fused gate/up projection gu [..., 2I] (the silu
// result is rounded to the compute dtype before the product, as the reference computes it).
torch::Tensor silu_mul(const torch::Tensor& gu, int64_t I);

// True when the fused CUDA kernels were compiled in.
bool fused_ops_have_cuda();

}  // namespace prov::model
