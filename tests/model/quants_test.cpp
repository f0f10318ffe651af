// Tests of the ggml block dequantizers and quantizers.
//
// Each packer test builds blocks from chosen unpacked fields (scales, mins, integer quants) by
// packing bits the way the format describes them, computes the expected values from the unpacked
// fields with the format's formula, and requires dequantize_blocks to match bit for bit.
#include "model/formats/quants.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <ostream>
#include <random>
#include <vector>

#include "model/formats/dtype.h"

namespace prov::model {
namespace {

// Random fp16 scale in +-[lo, hi), returned as its bits (the float is fp16_to_float(bits)).
uint16_t random_half(std::mt19937& rng, float lo, float hi, bool allow_negative) {
  std::uniform_real_distribution<float> u(lo, hi);
  float v = u(rng);
  if (allow_negative && (rng() & 1)) v = -v;
  return float_to_fp16(v);
}

void put_half(std::vector<uint8_t>* b, size_t at, uint16_t h) {
  std::memcpy(b->data() + at, &h, 2);
}

int rand_int(std::mt19937& rng, int lo, int hi) {
  return std::uniform_int_distribution<int>(lo, hi)(rng);
}

// Compares bit patterns (so -0.0 vs 0.0 or a different rounding would fail).
void expect_same_bits(const std::vector<float>& want, const std::vector<float>& got) {
  ASSERT_EQ(want.size(), got.size());
  for (size_t k = 0; k < want.size(); ++k) {
    uint32_t a, b;
    std::memcpy(&a, &want[k], 4);
    std::memcpy(&b, &got[k], 4);
    ASSERT_EQ(a, b) << "element " << k << ": want " << want[k] << " got " << got[k];
  }
}

std::vector<float> dequant(DType t, const std::vector<uint8_t>& blocks) {
  const DTypeInfo& info = dtype_info(t);
  EXPECT_EQ(blocks.size() % info.block_bytes, 0u);
  const uint64_t nb = blocks.size() / info.block_bytes;
  std::vector<float> out(nb * info.block_elems);
  Status s = dequantize_blocks(t, blocks.data(), nb, out.data());
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  return out;
}

constexpr int kBlocks = 6;

// --- hand-computed values --------------------------------------------------------------------

TEST(Quants, Q8_0KnownValues) {
  std::vector<uint8_t> b(34, 0);
  put_half(&b, 0, 0x3800);  // 0.5
  b[2] = static_cast<uint8_t>(int8_t{-3});
  b[3] = 7;
  b[33] = static_cast<uint8_t>(int8_t{-128});
  std::vector<float> y = dequant(DType::kQ8_0, b);
  EXPECT_EQ(y[0], -1.5f);
  EXPECT_EQ(y[1], 3.5f);
  EXPECT_EQ(y[2], 0.0f);
  EXPECT_EQ(y[31], -64.0f);
}

TEST(Quants, Q4_0KnownValues) {
  std::vector<uint8_t> b(18, 0);
  put_half(&b, 0, 0x4000);  // 2.0
  b[2] = 0xf0;              // element 0: nibble 0 -> -8; element 16: nibble 15 -> 7
  b[3] = 0x89;              // element 1: 9 -> 1; element 17: 8 -> 0
  std::vector<float> y = dequant(DType::kQ4_0, b);
  EXPECT_EQ(y[0], -16.0f);
  EXPECT_EQ(y[16], 14.0f);
  EXPECT_EQ(y[1], 2.0f);
  EXPECT_EQ(y[17], 0.0f);
  EXPECT_EQ(y[2], -16.0f);  // zero byte: nibble 0 -> -8
}

TEST(Quants, Q6_KKnownValue) {
  // Element 0: ql[0] low nibble 5, qh[0] bits 0-1 = 2 -> q = 5 | 32 = 37 - 32 = 5;
  // scale[0] = -3, d = 0.5 -> -7.5.
  std::vector<uint8_t> b(210, 0);
  b[0] = 0x05;
  b[128] = 0x02;
  b[192] = static_cast<uint8_t>(int8_t{-3});
  put_half(&b, 208, 0x3800);
  std::vector<float> y = dequant(DType::kQ6_K, b);
  EXPECT_EQ(y[0], -7.5f);
  EXPECT_EQ(y[1], 0.5f * -3 * -32);  // all-zero bits: q = -32
}

// --- packer tests ----------------------------------------------------------------------------

TEST(Quants, Q4_0Packer) {
  std::mt19937 rng(1);
  std::vector<uint8_t> blocks;
  std::vector<float> want;
  for (int bi = 0; bi < kBlocks; ++bi) {
    std::vector<uint8_t> b(18, 0);
    const uint16_t dh = random_half(rng, 0.001f, 2.0f, true);
    put_half(&b, 0, dh);
    const float d = fp16_to_float(dh);
    int q[32];
    for (int& v : q) v = rand_int(rng, 0, 15);
    for (int j = 0; j < 16; ++j) b[2 + j] = static_cast<uint8_t>(q[j] | (q[j + 16] << 4));
    for (int j = 0; j < 32; ++j) want.push_back(static_cast<float>(q[j] - 8) * d);
    blocks.insert(blocks.end(), b.begin(), b.end());
  }
  expect_same_bits(want, dequant(DType::kQ4_0, blocks));
}

TEST(Quants, Q4_1Packer) {
  std::mt19937 rng(2);
  std::vector<uint8_t> blocks;
  std::vector<float> want;
  for (int bi = 0; bi < kBlocks; ++bi) {
    std::vector<uint8_t> b(20, 0);
    const uint16_t dh = random_half(rng, 0.001f, 2.0f, false);
    const uint16_t mh = random_half(rng, 0.001f, 3.0f, true);
    put_half(&b, 0, dh);
    put_half(&b, 2, mh);
    int q[32];
    for (int& v : q) v = rand_int(rng, 0, 15);
    for (int j = 0; j < 16; ++j) b[4 + j] = static_cast<uint8_t>(q[j] | (q[j + 16] << 4));
    for (int j = 0; j < 32; ++j) {
      want.push_back(static_cast<float>(q[j]) * fp16_to_float(dh) + fp16_to_float(mh));
    }
    blocks.insert(blocks.end(), b.begin(), b.end());
  }
  expect_same_bits(want, dequant(DType::kQ4_1, blocks));
}

// Q5_0/Q5_1: the 5th bits of the 32 elements form a little-endian u32 (bit j for element j).
void pack_q5_bits(const int* q, uint8_t* qh, uint8_t* qs) {
  uint8_t bits[4] = {0, 0, 0, 0};
  for (int j = 0; j < 32; ++j) {
    if (q[j] & 16) bits[j / 8] |= static_cast<uint8_t>(1 << (j % 8));
  }
  std::memcpy(qh, bits, 4);
  for (int j = 0; j < 16; ++j) qs[j] = static_cast<uint8_t>((q[j] & 15) | ((q[j + 16] & 15) << 4));
}

TEST(Quants, Q5_0Packer) {
  std::mt19937 rng(3);
  std::vector<uint8_t> blocks;
  std::vector<float> want;
  for (int bi = 0; bi < kBlocks; ++bi) {
    std::vector<uint8_t> b(22, 0);
    const uint16_t dh = random_half(rng, 0.001f, 2.0f, true);
    put_half(&b, 0, dh);
    int q[32];
    for (int& v : q) v = rand_int(rng, 0, 31);
    pack_q5_bits(q, b.data() + 2, b.data() + 6);
    for (int j = 0; j < 32; ++j) want.push_back(static_cast<float>(q[j] - 16) * fp16_to_float(dh));
    blocks.insert(blocks.end(), b.begin(), b.end());
  }
  expect_same_bits(want, dequant(DType::kQ5_0, blocks));
}

TEST(Quants, Q5_1Packer) {
  std::mt19937 rng(4);
  std::vector<uint8_t> blocks;
  std::vector<float> want;
  for (int bi = 0; bi < kBlocks; ++bi) {
    std::vector<uint8_t> b(24, 0);
    const uint16_t dh = random_half(rng, 0.001f, 2.0f, false);
    const uint16_t mh = random_half(rng, 0.001f, 3.0f, true);
    put_half(&b, 0, dh);
    put_half(&b, 2, mh);
    int q[32];
    for (int& v : q) v = rand_int(rng, 0, 31);
    pack_q5_bits(q, b.data() + 4, b.data() + 8);
    for (int j = 0; j < 32; ++j) {
      want.push_back(static_cast<float>(q[j]) * fp16_to_float(dh) + fp16_to_float(mh));
    }
    blocks.insert(blocks.end(), b.begin(), b.end());
  }
  expect_same_bits(want, dequant(DType::kQ5_1, blocks));
}

TEST(Quants, Q8_0Packer) {
  std::mt19937 rng(5);
  std::vector<uint8_t> blocks;
  std::vector<float> want;
  for (int bi = 0; bi < kBlocks; ++bi) {
    std::vector<uint8_t> b(34, 0);
    const uint16_t dh = random_half(rng, 0.0001f, 1.0f, true);
    put_half(&b, 0, dh);
    for (int j = 0; j < 32; ++j) {
      const int q = rand_int(rng, -128, 127);
      b[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(q));
      want.push_back(static_cast<float>(q) * fp16_to_float(dh));
    }
    blocks.insert(blocks.end(), b.begin(), b.end());
  }
  expect_same_bits(want, dequant(DType::kQ8_0, blocks));
}

// In Q2_K and Q3_K the 2-bit quants of a 256-element super-block are stored as two halves of
// 128 elements; in each half, 32 bytes hold four groups of 32 consecutive elements, group g in
// bits 2g..2g+1 of byte l for element half*128 + g*32 + l.
void pack_2bit(const int* q2, uint8_t* qs) {
  for (int half = 0; half < 2; ++half) {
    for (int g = 0; g < 4; ++g) {
      for (int l = 0; l < 32; ++l) {
        qs[half * 32 + l] |= static_cast<uint8_t>((q2[half * 128 + g * 32 + l] & 3) << (2 * g));
      }
    }
  }
}

TEST(Quants, Q2_KPacker) {
  std::mt19937 rng(6);
  std::vector<uint8_t> blocks;
  std::vector<float> want;
  for (int bi = 0; bi < kBlocks; ++bi) {
    std::vector<uint8_t> b(84, 0);
    const uint16_t dh = random_half(rng, 0.001f, 0.5f, true);
    const uint16_t mh = random_half(rng, 0.001f, 0.5f, true);
    int sc[16], mn[16], q[256];
    for (int k = 0; k < 16; ++k) {
      sc[k] = rand_int(rng, 0, 15);
      mn[k] = rand_int(rng, 0, 15);
      b[k] = static_cast<uint8_t>(sc[k] | (mn[k] << 4));
    }
    for (int& v : q) v = rand_int(rng, 0, 3);
    pack_2bit(q, b.data() + 16);
    put_half(&b, 80, dh);
    put_half(&b, 82, mh);
    const float d = fp16_to_float(dh), dmin = fp16_to_float(mh);
    for (int e = 0; e < 256; ++e) {
      const float dl = d * static_cast<float>(sc[e / 16]);
      const float ml = dmin * static_cast<float>(mn[e / 16]);
      want.push_back(dl * static_cast<float>(q[e]) - ml);
    }
    blocks.insert(blocks.end(), b.begin(), b.end());
  }
  expect_same_bits(want, dequant(DType::kQ2_K, blocks));
}

TEST(Quants, Q3_KPacker) {
  std::mt19937 rng(7);
  std::vector<uint8_t> blocks;
  std::vector<float> want;
  for (int bi = 0; bi < kBlocks; ++bi) {
    std::vector<uint8_t> b(110, 0);
    const uint16_t dh = random_half(rng, 0.001f, 0.5f, true);
    int sc[16], q[256];  // sc in [-32, 31], q in [-4, 3]
    for (int& v : sc) v = rand_int(rng, -32, 31);
    for (int& v : q) v = rand_int(rng, -4, 3);
    // Quants: q + 4 in 3 bits; low two bits as in Q2_K, the third in hmask: element
    // half*128 + g*32 + l has it in bit half*4 + g of hmask byte l.
    int low[256];
    for (int e = 0; e < 256; ++e) low[e] = (q[e] + 4) & 3;
    pack_2bit(low, b.data() + 32);
    for (int half = 0; half < 2; ++half) {
      for (int g = 0; g < 4; ++g) {
        for (int l = 0; l < 32; ++l) {
          const int v = q[half * 128 + g * 32 + l] + 4;
          if (v & 4) b[l] |= static_cast<uint8_t>(1 << (half * 4 + g));
        }
      }
    }
    // Scales: 6-bit sc + 32. Bytes 0..7: low nibbles of scales 0..7 (low half) and 8..15
    // (high half); bytes 8..11: top two bits, scale i in byte 8 + i % 4 at bit 2 * (i / 4).
    uint8_t* s = b.data() + 96;
    for (int k = 0; k < 8; ++k) {
      s[k] = static_cast<uint8_t>(((sc[k] + 32) & 15) | (((sc[k + 8] + 32) & 15) << 4));
    }
    for (int k = 0; k < 4; ++k) {
      uint8_t hi = 0;
      for (int r = 0; r < 4; ++r)
        hi |= static_cast<uint8_t>((((sc[r * 4 + k] + 32) >> 4) & 3) << (2 * r));
      s[8 + k] = hi;
    }
    put_half(&b, 108, dh);
    const float d = fp16_to_float(dh);
    for (int e = 0; e < 256; ++e) {
      const float dl = d * static_cast<float>(sc[e / 16]);
      want.push_back(dl * static_cast<float>(q[e]));
    }
    blocks.insert(blocks.end(), b.begin(), b.end());
  }
  expect_same_bits(want, dequant(DType::kQ3_K, blocks));
}

// Q4_K/Q5_K scales: 8 six-bit scales sc and mins m in 12 bytes. Bytes 0..3 hold sc[0..3] in
// their low 6 bits and the top 2 bits of sc[4..7]; bytes 4..7 likewise m[0..3] and the top bits of
// m[4..7]; bytes 8..11 hold the low nibbles of sc[4..7] (low half) and m[4..7] (high half).
void pack_k_scales(const int* sc, const int* m, uint8_t* p) {
  for (int k = 0; k < 4; ++k) {
    p[k] = static_cast<uint8_t>(sc[k] | ((sc[k + 4] >> 4) << 6));
    p[k + 4] = static_cast<uint8_t>(m[k] | ((m[k + 4] >> 4) << 6));
    p[k + 8] = static_cast<uint8_t>((sc[k + 4] & 15) | ((m[k + 4] & 15) << 4));
  }
}

void pack_k_body(bool five, std::mt19937& rng, std::vector<uint8_t>* blocks,
                 std::vector<float>* want) {
  const size_t size = five ? 176 : 144;
  std::vector<uint8_t> b(size, 0);
  const uint16_t dh = random_half(rng, 0.001f, 0.5f, true);
  const uint16_t mh = random_half(rng, 0.001f, 0.5f, true);
  put_half(&b, 0, dh);
  put_half(&b, 2, mh);
  int sc[8], mn[8], q[256];
  for (int k = 0; k < 8; ++k) {
    sc[k] = rand_int(rng, 0, 63);
    mn[k] = rand_int(rng, 0, 63);
  }
  for (int& v : q) v = rand_int(rng, 0, five ? 31 : 15);
  pack_k_scales(sc, mn, b.data() + 4);
  // Quants: pairs of 32-element sub-blocks share 32 bytes, the first in the low nibbles and
  // the second in the high nibbles. Q5_K's fifth bit of element e: bit e / 32 of qh byte e % 32.
  uint8_t* qs = b.data() + (five ? 48 : 16);
  for (int pair = 0; pair < 4; ++pair) {
    for (int l = 0; l < 32; ++l) {
      const int lo = q[pair * 64 + l], hi = q[pair * 64 + 32 + l];
      qs[pair * 32 + l] = static_cast<uint8_t>((lo & 15) | ((hi & 15) << 4));
    }
  }
  if (five) {
    for (int e = 0; e < 256; ++e) {
      if (q[e] & 16) b[16 + e % 32] |= static_cast<uint8_t>(1 << (e / 32));
    }
  }
  const float d = fp16_to_float(dh), dmin = fp16_to_float(mh);
  for (int e = 0; e < 256; ++e) {
    const float dl = d * static_cast<float>(sc[e / 32]);
    const float ml = dmin * static_cast<float>(mn[e / 32]);
    want->push_back(dl * static_cast<float>(q[e]) - ml);
  }
  blocks->insert(blocks->end(), b.begin(), b.end());
}

TEST(Quants, Q4_KPacker) {
  std::mt19937 rng(8);
  std::vector<uint8_t> blocks;
  std::vector<float> want;
  for (int bi = 0; bi < kBlocks; ++bi) pack_k_body(false, rng, &blocks, &want);
  expect_same_bits(want, dequant(DType::kQ4_K, blocks));
}

TEST(Quants, Q5_KPacker) {
  std::mt19937 rng(9);
  std::vector<uint8_t> blocks;
  std::vector<float> want;
  for (int bi = 0; bi < kBlocks; ++bi) pack_k_body(true, rng, &blocks, &want);
  expect_same_bits(want, dequant(DType::kQ5_K, blocks));
}

TEST(Quants, Q6_KPacker) {
  std::mt19937 rng(10);
  std::vector<uint8_t> blocks;
  std::vector<float> want;
  for (int bi = 0; bi < kBlocks; ++bi) {
    std::vector<uint8_t> b(210, 0);
    const uint16_t dh = random_half(rng, 0.0001f, 0.1f, true);
    int sc[16], q[256];  // sc int8, q in [-32, 31]
    for (int& v : sc) v = rand_int(rng, -128, 127);
    for (int& v : q) v = rand_int(rng, -32, 31);
    // Each half of 128 elements: 64 ql bytes and 32 qh bytes. Element half*128 + g*32 + l
    // (g < 4): low nibble in ql[half*64 + (g % 2)*32 + l] (low half of the byte for g < 2,
    // high for g >= 2), top two bits in qh[half*32 + l] at bit 2g.
    for (int half = 0; half < 2; ++half) {
      for (int g = 0; g < 4; ++g) {
        for (int l = 0; l < 32; ++l) {
          const int v = q[half * 128 + g * 32 + l] + 32;
          b[half * 64 + (g % 2) * 32 + l] |= static_cast<uint8_t>((v & 15) << (g < 2 ? 0 : 4));
          b[128 + half * 32 + l] |= static_cast<uint8_t>((v >> 4) << (2 * g));
        }
      }
    }
    for (int k = 0; k < 16; ++k) b[192 + k] = static_cast<uint8_t>(static_cast<int8_t>(sc[k]));
    put_half(&b, 208, dh);
    const float d = fp16_to_float(dh);
    for (int e = 0; e < 256; ++e) {
      want.push_back(d * static_cast<float>(sc[e / 16]) * static_cast<float>(q[e]));
    }
    blocks.insert(blocks.end(), b.begin(), b.end());
  }
  expect_same_bits(want, dequant(DType::kQ6_K, blocks));
}

// --- quantizers --------------------------------------------------------------------------------

struct Bound {
  DType type;
  double max_rel_rms;
};

void PrintTo(const Bound& b, std::ostream* os) {
  *os << dtype_name(b.type) << " < " << b.max_rel_rms;
}

class QuantizeRoundTrip : public ::testing::TestWithParam<Bound> {};

TEST_P(QuantizeRoundTrip, GaussianErrorBound) {
  const Bound p = GetParam();
  std::mt19937 rng(42);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> x(256 * 32);
  for (float& v : x) v = g(rng);
  auto q = quantize(p.type, x.data(), x.size());
  ASSERT_TRUE(q.is_ok()) << q.status().to_string();
  const DTypeInfo& info = dtype_info(p.type);
  ASSERT_EQ(q->size(), x.size() / info.block_elems * info.block_bytes);
  std::vector<float> y = dequant(p.type, *q);
  double num = 0, den = 0;
  for (size_t k = 0; k < x.size(); ++k) {
    num += (x[k] - y[k]) * (x[k] - y[k]);
    den += x[k] * x[k];
  }
  const double rel = std::sqrt(num / den);
  EXPECT_LT(rel, p.max_rel_rms) << info.name;
  // Not trivially zero: a 2- to 8-bit code cannot be lossless on Gaussian data.
  EXPECT_GT(rel, 0.0) << info.name;
}

INSTANTIATE_TEST_SUITE_P(AllTypes, QuantizeRoundTrip,
                         ::testing::Values(Bound{DType::kQ8_0, 0.01}, Bound{DType::kQ4_0, 0.1},
                                           Bound{DType::kQ4_1, 0.1}, Bound{DType::kQ5_0, 0.05},
                                           Bound{DType::kQ5_1, 0.05}, Bound{DType::kQ2_K, 0.35},
                                           Bound{DType::kQ3_K, 0.2}, Bound{DType::kQ4_K, 0.1},
                                           Bound{DType::kQ5_K, 0.05}, Bound{DType::kQ6_K, 0.025}),
                         [](const ::testing::TestParamInfo<Bound>& i) {
                           return dtype_name(i.param.type);
                         });

TEST(Quants, Q8_0ExactGridRoundTrips) {
  // Values on the grid k * 0.25 with max |k| = 127 give d = 0.25 exactly.
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>((j * 37) % 255 - 127) * 0.25f;
  x[5] = 127 * 0.25f;
  auto q = quantize(DType::kQ8_0, x.data(), x.size());
  ASSERT_TRUE(q.is_ok());
  expect_same_bits(x, dequant(DType::kQ8_0, *q));
}

TEST(Quants, ZerosStayZero) {
  for (DType t : {DType::kQ4_0, DType::kQ4_1, DType::kQ5_0, DType::kQ5_1, DType::kQ8_0,
                  DType::kQ2_K, DType::kQ3_K, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K}) {
    std::vector<float> x(256, 0.0f);
    auto q = quantize(t, x.data(), x.size());
    ASSERT_TRUE(q.is_ok()) << dtype_name(t);
    for (float v : dequant(t, *q)) ASSERT_EQ(v, 0.0f) << dtype_name(t);
  }
}

TEST(Quants, NonFiniteInputDoesNotCrash) {
  std::vector<float> x(256, 1.0f);
  x[3] = NAN;
  x[100] = INFINITY;
  x[200] = -INFINITY;
  for (DType t : {DType::kQ4_0, DType::kQ4_1, DType::kQ5_0, DType::kQ5_1, DType::kQ8_0,
                  DType::kQ2_K, DType::kQ3_K, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K}) {
    auto q = quantize(t, x.data(), x.size());
    ASSERT_TRUE(q.is_ok()) << dtype_name(t);
    EXPECT_EQ(dequant(t, *q).size(), 256u);
  }
}

TEST(Quants, RejectsBadArguments) {
  std::vector<float> x(40, 1.0f);
  auto partial = quantize(DType::kQ8_0, x.data(), 40);
  ASSERT_FALSE(partial.is_ok());
  EXPECT_EQ(partial.status().code(), StatusCode::kInvalidArgument);
  auto k = quantize(DType::kQ4_K, x.data(), 32);
  EXPECT_EQ(k.status().code(), StatusCode::kInvalidArgument);
  auto plain = quantize(DType::kF32, x.data(), 32);
  EXPECT_EQ(plain.status().code(), StatusCode::kUnsupported);
  float out[32];
  uint8_t raw[64] = {};
  EXPECT_EQ(dequantize_blocks(DType::kF16, raw, 1, out).code(), StatusCode::kUnsupported);
  EXPECT_EQ(dequantize_blocks(DType::kI8Grouped, raw, 1, out).code(), StatusCode::kUnsupported);
  EXPECT_TRUE(dequantize_blocks(DType::kQ8_0, raw, 0, out).is_ok());
}

}  // namespace
}  // namespace prov::model
