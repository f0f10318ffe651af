// Launchers of the fused CUDA kernels (fused_ops_cuda.cu). Internal to model/: raw device
// pointers, no LibTorch types, so nvcc never compiles LibTorch headers. Each returns nullptr on
// success or a CUDA error string.
#pragma once

#include <cstdint>

namespace prov::model::cuda_detail {

enum class FusedDtype { kFloat32, kBFloat16, kFloat16 };

// rows x H: sum = h + delta (when delta != nullptr; written to sum_out), y = rms_norm(sum or h).
const char* launch_add_rms_norm(FusedDtype dt, const void* h, const void* delta, const void* w,
                                void* sum_out, void* y, int64_t rows, int64_t H, float eps,
                                void* stream);

// rows x 2I -> rows x I.
const char* launch_silu_mul(FusedDtype dt, const void* gu, void* out, int64_t rows, int64_t I,
                            void* stream);

}  // namespace prov::model::cuda_detail
