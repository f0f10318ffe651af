// Fused CUDA kernels of fused_ops.h. Arithmetic in fp32; every value the reference materialises
// in the compute dtype is rounded to it here too (round to nearest even, as LibTorch does).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "model/runtime/fused_ops_cuda.h"

namespace prov::model::cuda_detail {

namespace {

__device__ __forceinline__ float to_f(float v) {
  return v;
}
__device__ __forceinline__ float to_f(__nv_bfloat16 v) {
  return __bfloat162float(v);
}
__device__ __forceinline__ float to_f(__half v) {
  return __half2float(v);
}

template <typename T>
__device__ __forceinline__ T from_f(float v);
template <>
__device__ __forceinline__ float from_f<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}
template <>
__device__ __forceinline__ __half from_f<__half>(float v) {
  return __float2half_rn(v);
}

// Rounds through the compute dtype.
template <typename T>
__device__ __forceinline__ float round_t(float v) {
  return to_f(from_f<T>(v));
}

constexpr int kNormThreads = 256;

// One block per row. The row is read once into registers/L1 (first loop) and once more from
// cache (second loop); sum of squares reduced across the block in fp32.
template <typename T>
__global__ void __launch_bounds__(kNormThreads)
    add_rms_norm_kernel(const T* __restrict__ h, const T* __restrict__ delta,
                        const T* __restrict__ w, T* __restrict__ sum_out, T* __restrict__ y,
                        int64_t H, float eps) {
  const int64_t row = blockIdx.x;
  const T* hr = h + row * H;
  const T* dr = delta != nullptr ? delta + row * H : nullptr;
  T* sr = sum_out != nullptr ? sum_out + row * H : nullptr;
  T* yr = y + row * H;
  float ss = 0.f;
  for (int64_t i = threadIdx.x; i < H; i += kNormThreads) {
    float v = to_f(hr[i]);
    if (dr != nullptr) {
      const T s = from_f<T>(v + to_f(dr[i]));
      sr[i] = s;
      v = to_f(s);
    }
    ss += v * v;
  }
  __shared__ float warp_sums[kNormThreads / 32];
  for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
  if ((threadIdx.x & 31) == 0) warp_sums[threadIdx.x >> 5] = ss;
  __syncthreads();
  __shared__ float inv_rms;
  if (threadIdx.x < 32) {
    float t = threadIdx.x < kNormThreads / 32 ? warp_sums[threadIdx.x] : 0.f;
    for (int o = 16; o > 0; o >>= 1) t += __shfl_xor_sync(0xffffffffu, t, o);
    if (threadIdx.x == 0) inv_rms = rsqrtf(t / static_cast<float>(H) + eps);
  }
  __syncthreads();
  const float r = inv_rms;
  const T* src = sr != nullptr ? sr : hr;
  for (int64_t i = threadIdx.x; i < H; i += kNormThreads) {
    const float normed = round_t<T>(to_f(src[i]) * r);
    yr[i] = from_f<T>(to_f(w[i]) * normed);
  }
}

template <typename T>
__global__ void silu_mul_kernel(const T* __restrict__ gu, T* __restrict__ out, int64_t rows,
                                int64_t I) {
  const int64_t n = rows * I;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < n;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = idx / I;
    const int64_t j = idx - r * I;
    const float g = to_f(gu[r * 2 * I + j]);
    const float u = to_f(gu[r * 2 * I + I + j]);
    const float s = round_t<T>(g / (1.f + expf(-g)));
    out[idx] = from_f<T>(s * u);
  }
}

template <typename T>
const char* add_rms_norm_t(const void* h, const void* delta, const void* w, void* sum_out, void* y,
                           int64_t rows, int64_t H, float eps, cudaStream_t s) {
  if (rows == 0) return nullptr;
  add_rms_norm_kernel<T><<<static_cast<unsigned>(rows), kNormThreads, 0, s>>>(
      static_cast<const T*>(h), static_cast<const T*>(delta), static_cast<const T*>(w),
      static_cast<T*>(sum_out), static_cast<T*>(y), H, eps);
  cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? nullptr : cudaGetErrorString(e);
}

template <typename T>
const char* silu_mul_t(const void* gu, void* out, int64_t rows, int64_t I, cudaStream_t s) {
  const int64_t n = rows * I;
  if (n == 0) return nullptr;
  const int threads = 256;
  const int64_t blocks = (n + threads - 1) / threads;
  const unsigned grid = static_cast<unsigned>(blocks < 65535 * 32 ? blocks : 65535 * 32);
  silu_mul_kernel<T>
      <<<grid, threads, 0, s>>>(static_cast<const T*>(gu), static_cast<T*>(out), rows, I);
  cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? nullptr : cudaGetErrorString(e);
}

}  // namespace

const char* launch_add_rms_norm(FusedDtype dt, const void* h, const void* delta, const void* w,
                                void* sum_out, void* y, int64_t rows, int64_t H, float eps,
                                void* stream) {
  auto s = static_cast<cudaStream_t>(stream);
  switch (dt) {
    case FusedDtype::kFloat32:
      return add_rms_norm_t<float>(h, delta, w, sum_out, y, rows, H, eps, s);
    case FusedDtype::kBFloat16:
      return add_rms_norm_t<__nv_bfloat16>(h, delta, w, sum_out, y, rows, H, eps, s);
    case FusedDtype::kFloat16:
      return add_rms_norm_t<__half>(h, delta, w, sum_out, y, rows, H, eps, s);
  }
  return "unknown dtype";
}

const char* launch_silu_mul(FusedDtype dt, const void* gu, void* out, int64_t rows, int64_t I,
                            void* stream) {
  auto s = static_cast<cudaStream_t>(stream);
  switch (dt) {
    case FusedDtype::kFloat32:
      return silu_mul_t<float>(gu, out, rows, I, s);
    case FusedDtype::kBFloat16:
      return silu_mul_t<__nv_bfloat16>(gu, out, rows, I, s);
    case FusedDtype::kFloat16:
      return silu_mul_t<__half>(gu, out, rows, I, s);
  }
  return "unknown dtype";
}

}  // namespace prov::model::cuda_detail
