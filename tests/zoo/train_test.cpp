#include "zoo/train.h"

#include <gtest/gtest.h>

#include <torch/torch.h>

#include "model/formats/model.h"
#include "model/formats/safetensors.h"
#include "model/formats/synthetic.h"
#include "tests/support/test_support.h"

namespace prov::zoo {
namespace {

std::unique_ptr<model::Transformer> make(const std::string& dir, model::Arch arch, uint64_t seed,
                                         bool trainable) {
  model::SyntheticSpec s;
  s.arch = arch;
  s.vocab_size = 64;
  s.hidden_size = 32;
  s.intermediate_size = 64;
  s.num_heads = 4;
  s.num_kv_heads = 2;
  s.max_position_embeddings = 64;
  s.seed = seed;
  s.std = 0.05;
  EXPECT_TRUE(model::write_synthetic_model(dir, s).is_ok());
  auto m = model::open_model(dir);
  EXPECT_TRUE(m.is_ok());
  model::RuntimeOptions ro;
  ro.trainable = trainable;
  auto tf = model::Transformer::load(*m, ro);
  EXPECT_TRUE(tf.is_ok()) << tf.status().to_string();
  return std::move(*tf);
}

// A learnable stream: a fixed pseudo-random cycle of 40 tokens repeated.
std::vector<int32_t> cycle_stream(size_t n) {
  std::vector<int32_t> cyc;
  std::mt19937_64 rng(5);
  for (int i = 0; i < 40; ++i) cyc.push_back(static_cast<int32_t>(uniform_below(rng, 60)) + 3);
  std::vector<int32_t> out;
  for (size_t i = 0; i < n; ++i) out.push_back(cyc[i % cyc.size()]);
  return out;
}

TEST(Train, LossFallsAndTheExportedCheckpointRunsTheSame) {
  for (auto arch : {model::Arch::kLlama, model::Arch::kQwen2}) {
    prov::testing::TempDir dir;
    auto tf = make(dir.file("m"), arch, 3, true);
    auto stream = cycle_stream(4000);
    auto before = eval_loss(*tf, stream, 32, 16);
    ASSERT_TRUE(before.is_ok());
    TrainOptions o;
    o.steps = 60;
    o.batch = 8;
    o.seq_len = 32;
    o.lr = 1e-2;
    ASSERT_TRUE(train_lm(*tf, stream, o).is_ok());
    auto after = eval_loss(*tf, stream, 32, 16);
    ASSERT_TRUE(after.is_ok());
    EXPECT_LT(*after, 0.5 * *before) << "loss " << *before << " -> " << *after;

    // Export, write, reload with the runtime: same logits.
    auto w = tf->export_hf_weights();
    ASSERT_TRUE(w.is_ok()) << w.status().to_string();
    std::vector<model::SafetensorsEntry> entries;
    for (auto& [name, t] : *w) {
      model::SafetensorsEntry e{name, model::DType::kF32, t.sizes().vec(), {}};
      const auto* b = static_cast<const uint8_t*>(t.data_ptr());
      e.bytes.assign(b, b + t.numel() * 4);
      entries.push_back(std::move(e));
    }
    ASSERT_TRUE(model::write_safetensors(dir.file("m") + "/model.safetensors", entries).is_ok());
    auto reloaded = model::open_model(dir.file("m"));
    ASSERT_TRUE(reloaded.is_ok());
    auto rt = model::Transformer::load(*reloaded);
    ASSERT_TRUE(rt.is_ok());
    torch::Tensor ids =
        torch::tensor(std::vector<int64_t>(stream.begin(), stream.begin() + 20)).unsqueeze(0);
    auto a = tf->forward(ids, {}, nullptr);
    auto b = (*rt)->forward(ids, {}, nullptr);
    ASSERT_TRUE(a.is_ok() && b.is_ok());
    EXPECT_TRUE(torch::allclose(*a, *b, 1e-5, 1e-5));
  }
}

TEST(Train, ReproducibleForAFixedSeed) {
  prov::testing::TempDir d1, d2;
  auto a = make(d1.file("m"), model::Arch::kLlama, 4, true);
  auto b = make(d2.file("m"), model::Arch::kLlama, 4, true);
  auto stream = cycle_stream(2000);
  TrainOptions o;
  o.steps = 10;
  o.batch = 4;
  o.seq_len = 16;
  ASSERT_TRUE(train_lm(*a, stream, o).is_ok());
  ASSERT_TRUE(train_lm(*b, stream, o).is_ok());
  auto wa = a->parameters(), wb = b->parameters();
  ASSERT_EQ(wa.size(), wb.size());
  for (size_t i = 0; i < wa.size(); ++i) EXPECT_TRUE(torch::equal(wa[i], wb[i]));
}

TEST(Train, LogitDistillationPullsTheStudentTowardsTheTeacher) {
  prov::testing::TempDir dir;
  auto teacher = make(dir.file("t"), model::Arch::kLlama, 8, false);
  auto student = make(dir.file("s"), model::Arch::kQwen2, 9, true);
  auto stream = cycle_stream(3000);
  torch::Tensor ids =
      torch::tensor(std::vector<int64_t>(stream.begin(), stream.begin() + 32)).unsqueeze(0);
  auto kl = [&] {
    auto t = teacher->forward(ids, {}, nullptr);
    auto s = student->forward(ids, {}, nullptr);
    torch::Tensor tl = torch::log_softmax(*t, -1), sl = torch::log_softmax(*s, -1);
    return (tl.exp() * (tl - sl)).sum(-1).mean().item<double>();
  };
  const double before = kl();
  TrainOptions o;
  o.steps = 60;
  o.batch = 8;
  o.seq_len = 32;
  o.lr = 1e-2;
  ASSERT_TRUE(train_logit_distill(*student, *teacher, stream, o).is_ok());
  EXPECT_LT(kl(), 0.5 * before);
}

TEST(Train, SamplingIsSeededAndStopsAtTheStopId) {
  prov::testing::TempDir dir;
  auto m = make(dir.file("m"), model::Arch::kLlama, 10, false);
  auto a = sample_texts(*m, {{1, 5}, {1, 6, 7}}, 5, 12, 0.8, 0.95, 3, 2, 4);
  auto b = sample_texts(*m, {{1, 5}, {1, 6, 7}}, 5, 12, 0.8, 0.95, 3, 2, 4);
  auto c = sample_texts(*m, {{1, 5}, {1, 6, 7}}, 5, 12, 0.8, 0.95, 4, 2, 4);
  ASSERT_TRUE(a.is_ok() && b.is_ok() && c.is_ok());
  EXPECT_EQ(*a, *b);
  EXPECT_NE(*a, *c);
  EXPECT_EQ(a->size(), 5u);
  for (const auto& s : *a) {
    EXPECT_LE(s.size(), 12u);
    for (int32_t id : s) EXPECT_NE(id, 2);
  }
}

TEST(Train, RefusesUntrainableModelsAndShortStreams) {
  prov::testing::TempDir dir;
  auto frozen = make(dir.file("f"), model::Arch::kLlama, 11, false);
  TrainOptions o;
  EXPECT_FALSE(train_lm(*frozen, cycle_stream(1000), o).is_ok());
  auto m = make(dir.file("m"), model::Arch::kLlama, 12, true);
  auto st = train_lm(*m, cycle_stream(10), o);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("at least"), std::string::npos);
}

}  // namespace
}  // namespace prov::zoo
