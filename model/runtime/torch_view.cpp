#include "model/runtime/torch_view.h"

#include <torch/torch.h>

namespace prov::model {

std::optional<torch::ScalarType> torch_scalar_type(DType t) {
  switch (t) {
    case DType::kF64:
      return torch::kFloat64;
    case DType::kF32:
      return torch::kFloat32;
    case DType::kF16:
      return torch::kFloat16;
    case DType::kBF16:
      return torch::kBFloat16;
    case DType::kI64:
      return torch::kInt64;
    case DType::kI32:
      return torch::kInt32;
    case DType::kI16:
      return torch::kInt16;
    case DType::kI8:
      return torch::kInt8;
    case DType::kU8:
      return torch::kUInt8;
    case DType::kBool:
      return torch::kBool;
    default:
      return std::nullopt;
  }
}

Result<torch::Tensor> as_torch(const TensorRef& t) {
  auto st = torch_scalar_type(t.dtype);
  if (!st) {
    return unsupported("tensor " + t.name + ": dtype " + dtype_name(t.dtype) +
                       " has no LibTorch equivalent; read it with to_torch()");
  }
  if (!t.is_plain_layout()) {
    return unsupported("tensor " + t.name +
                       " is stored in a permuted or transposed layout; "
                       "read it with to_torch()");
  }
  PROV_ASSIGN_OR_RETURN(uint64_t want, storage_bytes(t.dtype, t.numel()));
  if (want != t.nbytes) {
    return corrupt(t.file + ": tensor " + t.name + ": " + std::to_string(t.nbytes) +
                   " bytes stored, " + std::to_string(want) + " expected");
  }
  const size_t elem = dtype_info(t.dtype).block_bytes;
  if (reinterpret_cast<uintptr_t>(t.data) % elem != 0) {
    return corrupt(t.file + ": tensor " + t.name + " at offset " + std::to_string(t.file_offset) +
                   " is not aligned to its " + std::to_string(elem) +
                   "-byte element size; read it with to_torch()");
  }
  std::shared_ptr<const void> keep = t.keep_alive;
  try {
    return torch::from_blob(
        const_cast<uint8_t*>(t.data), t.shape, [keep](void*) mutable { keep.reset(); },
        torch::TensorOptions().dtype(*st));
  } catch (const c10::Error& e) {
    return internal_error("tensor " + t.name +
                          ": LibTorch refused the view: " + e.what_without_backtrace());
  }
}

Result<torch::Tensor> to_torch(const TensorRef& t, torch::ScalarType dtype,
                               const torch::Device& device) {
  try {
    if (auto st = torch_scalar_type(t.dtype); st && dtype_info(t.dtype).is_float) {
      // Native float dtype: view (or copy when unaligned) then apply the layout transforms.
      torch::Tensor base;
      auto view = t.is_plain_layout() ? as_torch(t) : Result<torch::Tensor>(unsupported(""));
      if (view.is_ok()) {
        base = *view;
      } else {
        TensorRef plain = t;
        plain.row_order.reset();
        plain.transposed = false;
        if (t.transposed) std::reverse(plain.shape.begin(), plain.shape.end());
        auto v2 = as_torch(plain);
        if (v2.is_ok()) {
          base = *v2;
        } else {
          PROV_ASSIGN_OR_RETURN(std::vector<float> f, to_float32(t));
          return torch::from_blob(f.data(), t.shape, torch::kFloat32)
              .to(device, dtype, false, true);
        }
        if (t.transposed) base = base.t();
        if (t.row_order) {
          auto idx = torch::from_blob(const_cast<int64_t*>(t.row_order->data()),
                                      {static_cast<int64_t>(t.row_order->size())}, torch::kInt64);
          base = base.index_select(0, idx);
        }
      }
      return base.to(device, dtype, false, /*copy=*/true).contiguous();
    }
    PROV_ASSIGN_OR_RETURN(std::vector<float> f, to_float32(t));
    return torch::from_blob(f.data(), t.shape, torch::kFloat32).to(device, dtype, false, true);
  } catch (const c10::Error& e) {
    return internal_error("tensor " + t.name + ": LibTorch error: " + e.what_without_backtrace());
  }
}

}  // namespace prov::model
