// Element types of checkpoint tensors, including the block-quantized GGUF types.
//
// Conversions of single scalars (fp16, bf16, fp8) live here so every reader shares them.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>

#include "core/status.h"

namespace prov::model {

enum class DType : uint8_t {
  kF64,
  kF32,
  kF16,
  kBF16,
  kF8_E4M3,
  kF8_E5M2,
  kI64,
  kI32,
  kI16,
  kI8,
  kU8,
  kBool,
  // GGUF block-quantized types (ggml layouts).
  kQ4_0,
  kQ4_1,
  kQ5_0,
  kQ5_1,
  kQ8_0,
  kQ2_K,
  kQ3_K,
  kQ4_K,
  kQ5_K,
  kQ6_K,
  // llama2.c v2: int8 values with one fp32 scale per `group_size` values, stored apart
  // (TensorRef::scales).
  kI8Grouped,
};

struct DTypeInfo {
  const char* name;      // safetensors spelling for plain types ("F32"), ggml name for quants
  uint32_t block_elems;  // elements per storage block (1 for plain types)
  uint32_t block_bytes;  // bytes per storage block
  bool is_float;         // a floating-point or quantized-real type
  bool quantized;        // needs dequantisation to be read as real numbers
};

const DTypeInfo& dtype_info(DType t);
inline const char* dtype_name(DType t) {
  return dtype_info(t).name;
}

// The safetensors dtype strings (F64, F32, F16, BF16, F8_E4M3, F8_E5M2, I64, I32, I16, I8, U8,
// BOOL); nullopt for anything else.
std::optional<DType> dtype_from_safetensors(const std::string& s);

// Bytes needed to store `numel` elements; kCorrupt if numel is not a whole number of blocks,
// or the size overflows. Not defined for kI8Grouped (the values alone take numel bytes).
Result<uint64_t> storage_bytes(DType t, uint64_t numel);

// Scalar conversions (IEEE binary16, bfloat16, OCP FP8 E4M3FN and E5M2).
float fp16_to_float(uint16_t h);
uint16_t float_to_fp16(float f);  // round to nearest even
inline float bf16_to_float(uint16_t b) {
  uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
uint16_t float_to_bf16(float f);  // round to nearest even, NaN stays NaN
float fp8_e4m3_to_float(uint8_t v);
float fp8_e5m2_to_float(uint8_t v);

}  // namespace prov::model
