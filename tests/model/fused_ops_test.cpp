#include "model/runtime/fused_ops.h"

#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

namespace prov::model {
namespace {

torch::Tensor rms_ref(const torch::Tensor& x, const torch::Tensor& w, double eps) {
  torch::Tensor xf = x.to(torch::kFloat32);
  xf = xf * torch::rsqrt(xf.pow(2).mean(-1, true) + eps);
  return w * xf.to(x.scalar_type());
}

TEST(FusedOps, CpuPathsEqualTheReferenceFormulas) {
  torch::manual_seed(3);
  for (auto dt : {torch::kFloat32, torch::kBFloat16}) {
    torch::Tensor h = torch::randn({3, 5, 64}).to(dt), d = torch::randn({3, 5, 64}).to(dt);
    torch::Tensor w = (torch::rand({64}) + 0.5).to(dt);
    EXPECT_TRUE(torch::equal(rms_norm(h, w, 1e-6), rms_ref(h, w, 1e-6)));
    auto [sum, y] = add_rms_norm(h, d, w, 1e-6);
    EXPECT_TRUE(torch::equal(sum, h + d));
    EXPECT_TRUE(torch::equal(y, rms_ref(h + d, w, 1e-6)));
    torch::Tensor gu = torch::randn({4, 2, 2 * 48}).to(dt);
    EXPECT_TRUE(
        torch::equal(silu_mul(gu, 48), torch::silu(gu.narrow(-1, 0, 48)) * gu.narrow(-1, 48, 48)));
  }
}

TEST(FusedOps, CudaKernelsMatchTheReference) {
  if (!torch::cuda::is_available() || !fused_ops_have_cuda()) {
    GTEST_SKIP() << "no CUDA device or the fused kernels were not built";
  }
  torch::manual_seed(4);
  for (auto dt : {torch::kFloat32, torch::kBFloat16, torch::kFloat16}) {
    for (int64_t H : {64, 896, 3584, 1000}) {
      torch::Tensor h = torch::randn({7, 33, H}).to(dt), d = torch::randn({7, 33, H}).to(dt);
      torch::Tensor w = (torch::rand({H}) + 0.5).to(dt);
      // The reference formulas run by LibTorch on the same device.
      h = h.cuda();
      d = d.cuda();
      w = w.cuda();
      torch::Tensor s_cpu = (h + d).cpu(), y_cpu = rms_ref(h + d, w, 1e-6).cpu();
      auto [s_gpu, y_gpu] = add_rms_norm(h, d, w, 1e-6);
      EXPECT_TRUE(torch::equal(s_cpu, s_gpu.cpu())) << "dtype " << dt << " H " << H;
      // Only the order of the fp32 sum of squares differs: at most one rounding step apart.
      const double tol = dt == torch::kFloat32 ? 1e-5 : (dt == torch::kBFloat16 ? 1.6e-2 : 2e-3);
      torch::Tensor diff = (y_cpu.to(torch::kFloat32) - y_gpu.cpu().to(torch::kFloat32)).abs();
      torch::Tensor scale = y_cpu.to(torch::kFloat32).abs().clamp_min(1.0);
      EXPECT_LE((diff / scale).max().item<double>(), tol) << "dtype " << dt << " H " << H;
      // In the 16-bit dtypes the final rounding hides the fp32 summation order: nearly every
      // element is bit-identical. (In fp32 a one-ulp change of the row's scale shows everywhere.)
      if (dt != torch::kFloat32) {
        EXPECT_GE((y_cpu == y_gpu.cpu()).to(torch::kFloat32).mean().item<double>(), 0.99)
            << "dtype " << dt << " H " << H;
      }
      torch::Tensor gu = torch::randn({5, 9, 2 * H}).to(dt).cuda();
      torch::Tensor want = torch::silu(gu.narrow(-1, 0, H)) * gu.narrow(-1, H, H);
      torch::Tensor got = silu_mul(gu, H);
      EXPECT_GE((want == got).to(torch::kFloat32).mean().item<double>(), 0.999)
          << "dtype " << dt << " H " << H;
      EXPECT_LE(((want - got).abs() / want.abs().clamp_min(1.0)).max().item<double>(), tol);
    }
  }
}

}  // namespace
}  // namespace prov::model
