#include "model/runtime/torch_view.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "model/formats/model.h"
#include "model/formats/synthetic.h"
#include "tests/support/test_support.h"

namespace prov::model {
namespace {

TEST(TorchView, ZeroCopyViewAliasesTheMapping) {
  testing::TempDir dir;
  SyntheticSpec spec;
  spec.dtype = DType::kBF16;
  ASSERT_TRUE(write_synthetic_model(dir.path(), spec).is_ok());
  auto m = open_model(dir.path());
  ASSERT_TRUE(m.is_ok()) << m.status().to_string();
  const TensorRef* emb = m->find(Role::kTokenEmbedding);
  auto v = as_torch(*emb);
  ASSERT_TRUE(v.is_ok()) << v.status().to_string();
  EXPECT_EQ(v->scalar_type(), torch::kBFloat16);
  EXPECT_EQ(v->data_ptr(), static_cast<const void*>(emb->data)) << "no copy";
  EXPECT_EQ(v->sizes(), torch::IntArrayRef(emb->shape));
  auto f = to_torch(*emb, torch::kFloat32);
  ASSERT_TRUE(f.is_ok());
  auto ref = to_float32(*emb);
  EXPECT_TRUE(torch::equal(*f, torch::from_blob(ref->data(), emb->shape, torch::kFloat32)));
  // The view outlives the Model that produced it.
  torch::Tensor kept = *v;
  m = Result<Model>(not_found("dropped"));
  EXPECT_TRUE(torch::equal(kept.to(torch::kFloat32), *f));
}

TEST(TorchView, TransformsMatchTheTorchFreePath) {
  PROV_REQUIRE_FIXTURES();
  auto m = open_model(testing::fixtures_dir() + "/hf/models/gpt2");
  ASSERT_TRUE(m.is_ok());
  const TensorRef* qkv = m->find(Role::kAttnQKV, 0);
  EXPECT_EQ(as_torch(*qkv).status().code(), StatusCode::kUnsupported)
      << "transposed needs to_torch";
  auto t = to_torch(*qkv);
  ASSERT_TRUE(t.is_ok());
  auto ref = to_float32(*qkv);
  EXPECT_TRUE(torch::equal(*t, torch::from_blob(ref->data(), qkv->shape, torch::kFloat32)));
  EXPECT_TRUE(t->is_contiguous());
}

TEST(TorchView, RowOrderAppliedByIndexSelect) {
  auto buf = std::make_shared<std::vector<float>>(std::vector<float>{0, 1, 2, 3, 4, 5, 6, 7});
  TensorRef r;
  r.name = "q";
  r.dtype = DType::kF32;
  r.shape = {4, 2};
  r.data = reinterpret_cast<const uint8_t*>(buf->data());
  r.nbytes = 32;
  r.keep_alive = buf;
  r.row_order = std::make_shared<std::vector<int64_t>>(std::vector<int64_t>{3, 1, 0, 2});
  auto t = to_torch(r, torch::kFloat64);
  ASSERT_TRUE(t.is_ok());
  EXPECT_EQ(t->scalar_type(), torch::kFloat64);
  auto expect = torch::tensor({6., 7., 2., 3., 0., 1., 4., 5.}, torch::kFloat64).reshape({4, 2});
  EXPECT_TRUE(torch::equal(*t, expect));
}

}  // namespace
}  // namespace prov::model
