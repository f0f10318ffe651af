#include "model/formats/dtype.h"

#include <gtest/gtest.h>

#include <cmath>

namespace prov::model {
namespace {

TEST(DType, SafetensorsNamesRoundTrip) {
  for (const char* n : {"F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2", "I64", "I32", "I16",
                        "I8", "U8", "BOOL"}) {
    auto t = dtype_from_safetensors(n);
    ASSERT_TRUE(t.has_value()) << n;
    EXPECT_STREQ(dtype_name(*t), n);
  }
  EXPECT_FALSE(dtype_from_safetensors("Q8_0").has_value());
  EXPECT_FALSE(dtype_from_safetensors("F4").has_value());
}

TEST(DType, StorageBytes) {
  EXPECT_EQ(*storage_bytes(DType::kF32, 10), 40u);
  EXPECT_EQ(*storage_bytes(DType::kQ8_0, 64), 68u);
  EXPECT_EQ(*storage_bytes(DType::kQ4_K, 512), 288u);
  EXPECT_EQ(storage_bytes(DType::kQ8_0, 33).status().code(), StatusCode::kCorrupt);
  EXPECT_FALSE(storage_bytes(DType::kF64, 1ull << 62).is_ok());  // overflow
}

TEST(DType, HalfPrecisionConversions) {
  EXPECT_EQ(fp16_to_float(0x3c00), 1.0f);
  EXPECT_EQ(fp16_to_float(0xc000), -2.0f);
  EXPECT_EQ(fp16_to_float(0x7bff), 65504.0f);
  EXPECT_EQ(fp16_to_float(0x0001), std::ldexp(1.0f, -24));
  EXPECT_TRUE(std::isinf(fp16_to_float(0x7c00)));
  EXPECT_TRUE(std::isnan(fp16_to_float(0x7e00)));
  // Every finite half survives a round trip through float.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7c00) == 0x7c00) continue;
    EXPECT_EQ(float_to_fp16(fp16_to_float(static_cast<uint16_t>(h))), h) << h;
  }
  EXPECT_EQ(float_to_fp16(1e6f), 0x7c00);
  EXPECT_EQ(float_to_fp16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // tie rounds to even
  EXPECT_EQ(bf16_to_float(0x3f80), 1.0f);
  EXPECT_EQ(float_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(float_to_bf16(-3.0f), 0xc040);
}

TEST(DType, Fp8) {
  EXPECT_EQ(fp8_e4m3_to_float(0x38), 1.0f);    // 0.0111.000: 2^(7-7)
  EXPECT_EQ(fp8_e4m3_to_float(0x7e), 448.0f);  // largest finite
  EXPECT_EQ(fp8_e4m3_to_float(0x01), std::ldexp(1.0f, -9));
  EXPECT_TRUE(std::isnan(fp8_e4m3_to_float(0x7f)));
  EXPECT_EQ(fp8_e4m3_to_float(0xb8), -1.0f);
  EXPECT_EQ(fp8_e5m2_to_float(0x3c), 1.0f);
  EXPECT_EQ(fp8_e5m2_to_float(0x7b), 57344.0f);
  EXPECT_TRUE(std::isinf(fp8_e5m2_to_float(0x7c)));
}

}  // namespace
}  // namespace prov::model
