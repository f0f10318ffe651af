#include "model/formats/dtype.h"

#include <cmath>

namespace prov::model {

const DTypeInfo& dtype_info(DType t) {
  // Block sizes and bytes follow ggml's type traits (QK_K = 256).
  static const DTypeInfo kInfo[] = {
      {"F64", 1, 8, true, false},       {"F32", 1, 4, true, false},
      {"F16", 1, 2, true, false},       {"BF16", 1, 2, true, false},
      {"F8_E4M3", 1, 1, true, false},   {"F8_E5M2", 1, 1, true, false},
      {"I64", 1, 8, false, false},      {"I32", 1, 4, false, false},
      {"I16", 1, 2, false, false},      {"I8", 1, 1, false, false},
      {"U8", 1, 1, false, false},       {"BOOL", 1, 1, false, false},
      {"Q4_0", 32, 18, true, true},     {"Q4_1", 32, 20, true, true},
      {"Q5_0", 32, 22, true, true},     {"Q5_1", 32, 24, true, true},
      {"Q8_0", 32, 34, true, true},     {"Q2_K", 256, 84, true, true},
      {"Q3_K", 256, 110, true, true},   {"Q4_K", 256, 144, true, true},
      {"Q5_K", 256, 176, true, true},   {"Q6_K", 256, 210, true, true},
      {"I8_GROUPED", 1, 1, true, true},
  };
  return kInfo[static_cast<int>(t)];
}

std::optional<DType> dtype_from_safetensors(const std::string& s) {
  static const DType kPlain[] = {DType::kF64,     DType::kF32,     DType::kF16, DType::kBF16,
                                 DType::kF8_E4M3, DType::kF8_E5M2, DType::kI64, DType::kI32,
                                 DType::kI16,     DType::kI8,      DType::kU8,  DType::kBool};
  for (DType t : kPlain) {
    if (s == dtype_info(t).name) return t;
  }
  return std::nullopt;
}

Result<uint64_t> storage_bytes(DType t, uint64_t numel) {
  const DTypeInfo& info = dtype_info(t);
  if (numel % info.block_elems != 0) {
    return corrupt(std::to_string(numel) + " elements is not a whole number of " + info.name +
                   " blocks of " + std::to_string(info.block_elems));
  }
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(numel / info.block_elems, info.block_bytes, &bytes)) {
    return corrupt("tensor byte size overflows 64 bits");
  }
  return bytes;
}

float fp16_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  const uint32_t mant = h & 0x3ff;
  uint32_t u;
  if (exp == 0) {
    if (mant == 0) {
      u = sign;
    } else {  // subnormal: value = mant * 2^-24
      float f = std::ldexp(static_cast<float>(mant), -24);
      std::memcpy(&u, &f, 4);
      u |= sign;
    }
  } else if (exp == 31) {
    u = sign | 0x7f800000u | (mant << 13);
  } else {
    u = sign | ((exp + 112) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t float_to_fp16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  const uint32_t absx = x & 0x7fffffffu;
  if (absx >= 0x7f800000u) {  // inf or NaN
    return sign | 0x7c00 | (absx > 0x7f800000u ? 0x200 : 0);
  }
  if (absx >= 0x477ff000u) return sign | 0x7c00;  // rounds to >= 65520: overflow to inf
  if (absx < 0x38800000u) {                       // below the smallest normal: subnormal or zero
    float a;
    std::memcpy(&a, &absx, 4);
    // value / 2^-24 rounded to nearest even.
    float q = std::nearbyint(a * 16777216.0f);
    return sign | static_cast<uint16_t>(q);
  }
  // Normal: rebias exponent, round mantissa to 10 bits (nearest even).
  uint32_t mant_round = absx + 0x0fffu + ((absx >> 13) & 1u);
  return sign | static_cast<uint16_t>((mant_round - (112u << 23)) >> 13);
}

uint16_t float_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

float fp8_e4m3_to_float(uint8_t v) {
  // E4M3FN: bias 7, no infinities, S.1111.111 is NaN.
  const bool neg = v & 0x80;
  const int exp = (v >> 3) & 0xf;
  const int mant = v & 0x7;
  float r;
  if (exp == 0xf && mant == 0x7) {
    r = NAN;
  } else if (exp == 0) {
    r = std::ldexp(static_cast<float>(mant), -9);  // subnormal: mant/8 * 2^-6
  } else {
    r = std::ldexp(1.0f + mant / 8.0f, exp - 7);
  }
  return neg ? -r : r;
}

float fp8_e5m2_to_float(uint8_t v) {
  // E5M2 is the top byte of an IEEE binary16.
  return fp16_to_float(static_cast<uint16_t>(v) << 8);
}

}  // namespace prov::model
