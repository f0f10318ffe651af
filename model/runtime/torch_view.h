// LibTorch views of checkpoint tensors.
//
// as_torch() is zero-copy: the returned CPU tensor aliases the memory-mapped bytes and holds the
// mapping alive; it is read-only in practice (writing to it is undefined: the mapping is private
// and read-only). Conversion happens only when asked for, through to_torch().
#pragma once

#include <torch/types.h>

#include "core/status.h"
#include "model/formats/tensor.h"

namespace prov::model {

// The LibTorch scalar type of a plain dtype; nullopt for FP8 and quantized types (LibTorch 1.13
// has no FP8) — read those through to_torch().
std::optional<torch::ScalarType> torch_scalar_type(DType t);

// Zero-copy view of a tensor stored in a LibTorch-native dtype with a plain layout, as a CPU
// tensor of the canonical shape. kUnsupported when the dtype has no LibTorch equivalent or the
// layout needs a transform (use to_torch); kCorrupt for misaligned data.
Result<torch::Tensor> as_torch(const TensorRef& t);

// The tensor in canonical layout converted to `dtype` (a floating type) on `device`: dequantises,
// applies row orders and transposes. Always a fresh, contiguous tensor.
Result<torch::Tensor> to_torch(const TensorRef& t, torch::ScalarType dtype = torch::kFloat32,
                               const torch::Device& device = torch::kCPU);

}  // namespace prov::model
