#include "model/runtime/fused_ops.h"

#ifdef PROV_WITH_CUDA_KERNELS
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include "model/runtime/fused_ops_cuda.h"
#endif

#include <stdexcept>
#include <string>

namespace prov::model {

namespace {

torch::Tensor rms_norm_reference(const torch::Tensor& x, const torch::Tensor& w, double eps) {
  torch::Tensor xf = x.to(torch::kFloat32);
  torch::Tensor var = xf.pow(2).mean(-1, /*keepdim=*/true);
  xf = xf * torch::rsqrt(var + eps);
  return w * xf.to(x.scalar_type());
}

#ifdef PROV_WITH_CUDA_KERNELS
bool fused_dtype(torch::ScalarType t, cuda_detail::FusedDtype* out) {
  switch (t) {
    case torch::kFloat32:
      *out = cuda_detail::FusedDtype::kFloat32;
      return true;
    case torch::kBFloat16:
      *out = cuda_detail::FusedDtype::kBFloat16;
      return true;
    case torch::kFloat16:
      *out = cuda_detail::FusedDtype::kFloat16;
      return true;
    default:
      return false;
  }
}

// The kernels take contiguous tensors of one dtype on one CUDA device.
bool use_kernel(std::initializer_list<const torch::Tensor*> ts, cuda_detail::FusedDtype* dt) {
  const torch::Tensor& first = **ts.begin();
  if (!first.is_cuda() || !fused_dtype(first.scalar_type(), dt)) return false;
  // The kernels have no backward: while autograd records, the LibTorch formulas run.
  if (torch::GradMode::is_enabled()) {
    for (const torch::Tensor* t : ts) {
      if (t->requires_grad()) return false;
    }
  }
  for (const torch::Tensor* t : ts) {
    if (!t->is_cuda() || t->scalar_type() != first.scalar_type() || t->device() != first.device()) {
      return false;
    }
  }
  return true;
}

void check(const char* err) {
  if (err != nullptr) throw std::runtime_error(std::string("CUDA kernel failed: ") + err);
}
#endif

}  // namespace

bool fused_ops_have_cuda() {
#ifdef PROV_WITH_CUDA_KERNELS
  return true;
#else
  return false;
#endif
}

torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& w, double eps) {
#ifdef PROV_WITH_CUDA_KERNELS
  cuda_detail::FusedDtype dt;
  if (use_kernel({&x, &w}, &dt) && w.dim() == 1 && x.size(-1) == w.size(0)) {
    c10::cuda::CUDAGuard guard(x.device());
    torch::Tensor xc = x.contiguous(), wc = w.contiguous();
    torch::Tensor y = torch::empty_like(xc);
    const int64_t H = xc.size(-1);
    check(cuda_detail::launch_add_rms_norm(dt, xc.data_ptr(), nullptr, wc.data_ptr(), nullptr,
                                           y.data_ptr(), xc.numel() / H, H, static_cast<float>(eps),
                                           at::cuda::getCurrentCUDAStream().stream()));
    return y;
  }
#endif
  return rms_norm_reference(x, w, eps);
}

std::pair<torch::Tensor, torch::Tensor> add_rms_norm(const torch::Tensor& h,
                                                     const torch::Tensor& delta,
                                                     const torch::Tensor& w, double eps) {
#ifdef PROV_WITH_CUDA_KERNELS
  cuda_detail::FusedDtype dt;
  if (use_kernel({&h, &delta, &w}, &dt) && w.dim() == 1 && h.size(-1) == w.size(0) &&
      h.sizes() == delta.sizes()) {
    c10::cuda::CUDAGuard guard(h.device());
    torch::Tensor hc = h.contiguous(), dc = delta.contiguous(), wc = w.contiguous();
    torch::Tensor sum = torch::empty_like(hc), y = torch::empty_like(hc);
    const int64_t H = hc.size(-1);
    check(cuda_detail::launch_add_rms_norm(
        dt, hc.data_ptr(), dc.data_ptr(), wc.data_ptr(), sum.data_ptr(), y.data_ptr(),
        hc.numel() / H, H, static_cast<float>(eps), at::cuda::getCurrentCUDAStream().stream()));
    return {sum, y};
  }
#endif
  torch::Tensor sum = h + delta;
  return {sum, rms_norm_reference(sum, w, eps)};
}

torch::Tensor silu_mul(const torch::Tensor& gu, int64_t I) {
#ifdef PROV_WITH_CUDA_KERNELS
  cuda_detail::FusedDtype dt;
  if (use_kernel({&gu}, &dt) && gu.size(-1) == 2 * I) {
    c10::cuda::CUDAGuard guard(gu.device());
    torch::Tensor g = gu.contiguous();
    auto shape = g.sizes().vec();
    shape.back() = I;
    torch::Tensor out = torch::empty(shape, g.options());
    check(cuda_detail::launch_silu_mul(dt, g.data_ptr(), out.data_ptr(), g.numel() / (2 * I), I,
                                       at::cuda::getCurrentCUDAStream().stream()));
    return out;
  }
#endif
  return torch::silu(gu.narrow(-1, 0, I)) * gu.narrow(-1, I, I);
}

}  // namespace prov::model
