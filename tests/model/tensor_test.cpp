#include "model/formats/tensor.h"

#include <gtest/gtest.h>

#include <cstring>

#include "core/sha256.h"

namespace prov::model {
namespace {

TensorRef f32_tensor(const std::vector<float>& v, std::vector<int64_t> shape) {
  auto buf = std::make_shared<std::vector<float>>(v);
  TensorRef t;
  t.name = "t";
  t.dtype = DType::kF32;
  t.shape = std::move(shape);
  t.data = reinterpret_cast<const uint8_t*>(buf->data());
  t.nbytes = buf->size() * 4;
  t.keep_alive = buf;
  return t;
}

TEST(Tensor, RopeRowOrderInvertsTheInterleavingPermutation) {
  // Two heads of head_dim 4: stored (interleaved) rows h*4 + 2i + j hold canonical rows
  // h*4 + j*2 + i.
  auto order = rope_interleaved_to_half_rows(2, 4);
  EXPECT_EQ(order, (std::vector<int64_t>{0, 2, 1, 3, 4, 6, 5, 7}));
}

TEST(Tensor, ViewTransformsApplyInFloatAndBytes) {
  // Stored 3x2 (transposed) of canonical 2x3 [[1,2,3],[4,5,6]].
  TensorRef t = f32_tensor({1, 4, 2, 5, 3, 6}, {2, 3});
  t.transposed = true;
  auto f = to_float32(t);
  ASSERT_TRUE(f.is_ok()) << f.status().to_string();
  EXPECT_EQ(*f, (std::vector<float>{1, 2, 3, 4, 5, 6}));
  auto b = canonical_bytes(t);
  ASSERT_TRUE(b.is_ok());
  std::vector<float> back(6);
  std::memcpy(back.data(), b->data(), 24);
  EXPECT_EQ(back, *f);
  EXPECT_EQ(*tensor_digest(t), to_hex(sha256(b->data(), b->size())));

  TensorRef r = f32_tensor({10, 11, 20, 21, 30, 31, 40, 41}, {4, 2});
  r.row_order = std::make_shared<std::vector<int64_t>>(std::vector<int64_t>{2, 0, 3, 1});
  EXPECT_EQ(*to_float32(r), (std::vector<float>{30, 31, 10, 11, 40, 41, 20, 21}));
}

TEST(Tensor, SizeMismatchIsCorrupt) {
  TensorRef t = f32_tensor({1, 2, 3}, {2, 2});
  EXPECT_EQ(to_float32(t).status().code(), StatusCode::kCorrupt);
  TensorRef i = f32_tensor({1, 2}, {2});
  i.dtype = DType::kI32;
  EXPECT_EQ(to_float32(i).status().code(), StatusCode::kUnsupported);
}

TEST(Tensor, GroupedInt8Dequantises) {
  auto buf = std::make_shared<std::vector<uint8_t>>(4 + 8);
  int8_t q[4] = {1, -2, 3, 127};
  float s[2] = {0.5f, 2.0f};
  std::memcpy(buf->data(), q, 4);
  std::memcpy(buf->data() + 4, s, 8);
  TensorRef t;
  t.name = "g";
  t.dtype = DType::kI8Grouped;
  t.shape = {4};
  t.data = buf->data();
  t.nbytes = 4;
  t.scales = buf->data() + 4;
  t.group_size = 2;
  t.keep_alive = buf;
  EXPECT_EQ(*to_float32(t), (std::vector<float>{0.5f, -1.0f, 6.0f, 254.0f}));
}

}  // namespace
}  // namespace prov::model

namespace prov::model {
namespace {

TEST(Tensor, GroupedInt8RowOrderMovesScalesWithRows) {
  // Two rows of 2 values, one group per row: stored row 1 is canonical row 0.
  auto buf = std::make_shared<std::vector<uint8_t>>(4 + 8);
  int8_t q[4] = {1, 2, 3, 4};
  float s[2] = {10.0f, 100.0f};
  std::memcpy(buf->data(), q, 4);
  std::memcpy(buf->data() + 4, s, 8);
  TensorRef t;
  t.name = "g";
  t.dtype = DType::kI8Grouped;
  t.shape = {2, 2};
  t.data = buf->data();
  t.nbytes = 4;
  t.scales = buf->data() + 4;
  t.group_size = 2;
  t.keep_alive = buf;
  t.row_order = std::make_shared<std::vector<int64_t>>(std::vector<int64_t>{1, 0});
  EXPECT_EQ(*to_float32(t), (std::vector<float>{300, 400, 10, 20}));
  auto b = canonical_bytes(t);
  ASSERT_TRUE(b.is_ok());
  ASSERT_EQ(b->size(), 12u);
  EXPECT_EQ((*b)[0], 3);
  float first_scale;
  std::memcpy(&first_scale, b->data() + 4, 4);
  EXPECT_EQ(first_scale, 100.0f);
}

}  // namespace
}  // namespace prov::model
