#include "model/runtime/runtime.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "model/runtime/generate.h"
#include "model/formats/gguf.h"
#include "model/formats/model.h"
#include "model/formats/safetensors.h"
#include "model/formats/synthetic.h"
#include "model/runtime/torch_view.h"
#include "tests/support/test_support.h"

namespace prov::model {
namespace {

namespace fs = std::filesystem;

// The reference outputs of one fixture model (hf/models/<name>/expected.safetensors).
struct Expected {
  Checkpoint file;                                          // keeps the views alive
  torch::Tensor input_ids, logits, prompt_ids, greedy_ids;  // the last two may be undefined
};

std::string model_dir(const std::string& name) {
  return testing::fixtures_dir() + "/hf/models/" + name;
}

Expected read_expected(const std::string& name) {
  Expected e;
  auto ck = read_safetensors(model_dir(name) + "/expected.safetensors");
  EXPECT_TRUE(ck.is_ok()) << ck.status().to_string();
  if (!ck.is_ok()) return e;
  e.file = std::move(ck).value();
  auto get = [&](const char* n) {
    const TensorRef* t = e.file.find(n);
    if (t == nullptr) return torch::Tensor();
    auto v = as_torch(*t);
    EXPECT_TRUE(v.is_ok()) << v.status().to_string();
    return v.is_ok() ? v->clone() : torch::Tensor();
  };
  e.input_ids = get("input_ids");
  e.logits = get("logits");
  e.prompt_ids = get("prompt_ids");
  e.greedy_ids = get("greedy_ids");
  return e;
}

double rel_err(const torch::Tensor& got, const torch::Tensor& ref) {
  torch::Tensor g = got.to(torch::kCPU, torch::kFloat64), r = ref.to(torch::kCPU, torch::kFloat64);
  return (g - r).norm().item<double>() / r.norm().item<double>();
}

std::vector<int64_t> to_vec(const torch::Tensor& t) {
  torch::Tensor c = t.to(torch::kCPU, torch::kInt64).contiguous().view(-1);
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}

std::unique_ptr<Transformer> load_fixture(const std::string& name, RuntimeOptions opts = {}) {
  auto m = open_model(model_dir(name));
  EXPECT_TRUE(m.is_ok()) << m.status().to_string();
  if (!m.is_ok()) return nullptr;
  auto t = Transformer::load(*m, opts);
  EXPECT_TRUE(t.is_ok()) << t.status().to_string();
  if (!t.is_ok()) return nullptr;
  return std::move(t).value();
}

const std::vector<std::string> kFixtureModels = {
    "llama", "mistral", "qwen2", "qwen3", "mixtral", "gpt2", "llama_sharded_bf16"};

TEST(RuntimeFixtures, EveryFixtureModelIsCovered) {
  PROV_REQUIRE_FIXTURES();
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(testing::fixtures_dir() + "/hf/models", ec)) {
    if (!entry.is_directory()) continue;
    const std::string name = entry.path().filename().string();
    EXPECT_NE(std::find(kFixtureModels.begin(), kFixtureModels.end(), name), kFixtureModels.end())
        << "fixture model " << name << " has no logits test";
  }
}

class FixtureModel : public ::testing::TestWithParam<std::string> {};

// Logits for input_ids within ||delta|| / ||ref|| <= 1e-4 (fp32 models) or 2e-2 (the bf16
// sharded checkpoint), and greedy continuations token for token.
//
// The bf16 checkpoint's reference logits are not bf16 values and sit 2.5e-4 from an fp32 pass over
// the stored bf16 weights but 8e-3 from a bf16 pass: they were computed in fp32 (from the weights
// before they were rounded to bf16). Both passes are checked against the 2e-2 bound.
TEST_P(FixtureModel, LogitsAndGreedyMatchReference) {
  PROV_REQUIRE_FIXTURES();
  const std::string name = GetParam();
  if (!fs::is_directory(model_dir(name))) GTEST_SKIP() << "no fixture " << name;
  const bool bf16 = name == "llama_sharded_bf16";
  auto tf = load_fixture(name);
  ASSERT_NE(tf, nullptr);
  Expected e = read_expected(name);
  ASSERT_TRUE(e.input_ids.defined() && e.logits.defined());
  auto logits = tf->forward(e.input_ids, torch::Tensor(), nullptr);
  ASSERT_TRUE(logits.is_ok()) << logits.status().to_string();
  ASSERT_EQ(logits->sizes(), e.logits.sizes());
  EXPECT_EQ(logits->scalar_type(), torch::kFloat32);
  const double err = rel_err(*logits, e.logits);
  std::cout << "[ fixture ] " << name << " relative logit error " << err << " (fp32 compute)\n";
  RecordProperty("relative_error", std::to_string(err));
  EXPECT_LE(err, bf16 ? 2e-2 : 1e-4);
  if (bf16) {
    RuntimeOptions o;
    o.dtype = torch::kBFloat16;
    auto tb = load_fixture(name, o);
    ASSERT_NE(tb, nullptr);
    auto lb = tb->forward(e.input_ids, torch::Tensor(), nullptr);
    ASSERT_TRUE(lb.is_ok()) << lb.status().to_string();
    const double errb = rel_err(*lb, e.logits);
    std::cout << "[ fixture ] " << name << " relative logit error " << errb << " (bf16 compute)\n";
    EXPECT_LE(errb, 2e-2);
  }
  if (!e.greedy_ids.defined()) return;
  ASSERT_TRUE(e.prompt_ids.defined());
  const std::vector<int64_t> prompt = to_vec(e.prompt_ids), want = to_vec(e.greedy_ids);
  SamplingOptions so;
  so.max_new_tokens = static_cast<int>(want.size() - prompt.size());
  auto got = generate(*tf, prompt, so);
  ASSERT_TRUE(got.is_ok()) << got.status().to_string();
  EXPECT_EQ(*got, want);
  // The batched greedy path agrees.
  auto batch = generate_greedy_batch(*tf, {prompt}, so.max_new_tokens);
  ASSERT_TRUE(batch.is_ok()) << batch.status().to_string();
  EXPECT_EQ(batch->at(0), want);
}

INSTANTIATE_TEST_SUITE_P(Hf, FixtureModel, ::testing::ValuesIn(kFixtureModels),
                         [](const auto& info) { return info.param; });

// Incremental decoding (prefill then one token at a time, then a chunk) reproduces a full pass.
class CachedModel : public ::testing::TestWithParam<std::string> {};

TEST_P(CachedModel, CachedDecodingMatchesFullForward) {
  PROV_REQUIRE_FIXTURES();
  auto tf = load_fixture(GetParam());
  ASSERT_NE(tf, nullptr);
  Expected e = read_expected(GetParam());
  auto full = tf->forward(e.input_ids, torch::Tensor(), nullptr);
  ASSERT_TRUE(full.is_ok());
  KVCache cache;
  std::vector<torch::Tensor> parts;
  auto run = [&](int64_t from, int64_t n) {
    auto r = tf->forward(e.input_ids.narrow(1, from, n), torch::Tensor(), &cache);
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    parts.push_back(*r);
  };
  run(0, 5);
  for (int64_t i = 5; i < 8; ++i) run(i, 1);
  run(8, 4);
  EXPECT_EQ(cache.length(), 12);
  EXPECT_EQ(cache.batch_size(), 2);
  const double err = rel_err(torch::cat(parts, 1), *full);
  EXPECT_LE(err, 1e-5) << GetParam();
  // last_position_only gives the last column of the full pass.
  auto last = tf->forward(e.input_ids, torch::Tensor(), nullptr, true);
  ASSERT_TRUE(last.is_ok());
  EXPECT_LE(rel_err(*last, full->narrow(1, 11, 1)), 1e-6);
  cache.clear();
  EXPECT_TRUE(cache.empty());
}

INSTANTIATE_TEST_SUITE_P(Hf, CachedModel, ::testing::Values("llama", "qwen3", "mixtral", "gpt2"),
                         [](const auto& info) { return info.param; });

// A left-padded batch gives every sequence the logits it gets alone.
class PaddedModel : public ::testing::TestWithParam<std::string> {};

TEST_P(PaddedModel, LeftPaddedBatchMatchesSingleSequences) {
  PROV_REQUIRE_FIXTURES();
  auto tf = load_fixture(GetParam());
  ASSERT_NE(tf, nullptr);
  Expected e = read_expected(GetParam());
  torch::Tensor a = e.input_ids[0].unsqueeze(0);                  // 12 tokens
  torch::Tensor b = e.input_ids[1].narrow(0, 0, 7).unsqueeze(0);  // 7 tokens
  torch::Tensor ids = torch::zeros({2, 12}, torch::kInt64);
  torch::Tensor mask = torch::zeros({2, 12}, torch::kInt64);
  ids[0].copy_(a[0]);
  mask[0].fill_(1);
  ids[1].narrow(0, 5, 7).copy_(b[0]);
  mask[1].narrow(0, 5, 7).fill_(1);
  auto batch = tf->forward(ids, mask, nullptr);
  ASSERT_TRUE(batch.is_ok()) << batch.status().to_string();
  auto ra = tf->forward(a, torch::Tensor(), nullptr);
  auto rb = tf->forward(b, torch::Tensor(), nullptr);
  ASSERT_TRUE(ra.is_ok() && rb.is_ok());
  EXPECT_LE(rel_err((*batch)[0], (*ra)[0]), 1e-5);
  EXPECT_LE(rel_err((*batch)[1].narrow(0, 5, 7), (*rb)[0]), 1e-5);
  EXPECT_LE(rel_err((*batch)[1][11], (*rb)[0][6]), 1e-5) << "last position";
  EXPECT_TRUE(torch::isfinite(*batch).all().item<bool>()) << "padded rows stay finite";
  // Without the mask the padded row differs (so the comparison above can fail).
  auto unmasked = tf->forward(ids, torch::Tensor(), nullptr);
  ASSERT_TRUE(unmasked.is_ok());
  EXPECT_GT(rel_err((*unmasked)[1][11], (*rb)[0][6]), 1e-3);
  // Batched greedy generation with padding equals generating each prompt alone.
  const std::vector<int64_t> pa = to_vec(a), pb = to_vec(b);
  auto gb = generate_greedy_batch(*tf, {pa, pb}, 6);
  ASSERT_TRUE(gb.is_ok()) << gb.status().to_string();
  SamplingOptions so;
  so.max_new_tokens = 6;
  auto ga = generate(*tf, pa, so);
  auto gbb = generate(*tf, pb, so);
  ASSERT_TRUE(ga.is_ok() && gbb.is_ok());
  EXPECT_EQ(gb->at(0), *ga);
  EXPECT_EQ(gb->at(1), *gbb);
}

INSTANTIATE_TEST_SUITE_P(Hf, PaddedModel, ::testing::Values("llama", "qwen2", "gpt2", "mixtral"),
                         [](const auto& info) { return info.param; });

// Sliding window (Mistral): with one layer, the last position sees exactly the last `window`
// tokens, and RoPE is relative, so it must equal a pass over those tokens alone.
TEST(Runtime, SlidingWindowLimitsAttention) {
  testing::TempDir dir;
  SyntheticSpec spec;
  spec.arch = Arch::kMistral;
  spec.num_layers = 1;
  spec.seed = 7;
  ASSERT_TRUE(write_synthetic_model(dir.path(), spec).is_ok());
  auto m = open_model(dir.path());
  ASSERT_TRUE(m.is_ok()) << m.status().to_string();
  auto full_attn = Transformer::load(*m);
  m->config.sliding_window = 4;
  auto windowed = Transformer::load(*m);
  ASSERT_TRUE(full_attn.is_ok() && windowed.is_ok());
  torch::manual_seed(0);
  torch::Tensor ids = torch::randint(3, spec.vocab_size, {1, 10}, torch::kInt64);
  auto w = (*windowed)->forward(ids, torch::Tensor(), nullptr);
  auto tail = (*windowed)->forward(ids.narrow(1, 6, 4), torch::Tensor(), nullptr);
  auto f = (*full_attn)->forward(ids, torch::Tensor(), nullptr);
  ASSERT_TRUE(w.is_ok() && tail.is_ok() && f.is_ok());
  EXPECT_LE(rel_err((*w)[0][9], (*tail)[0][3]), 1e-4);
  EXPECT_GT(rel_err((*f)[0][9], (*tail)[0][3]), 1e-3) << "the window must matter";
  EXPECT_LE(rel_err((*w).narrow(1, 0, 4), (*f).narrow(1, 0, 4)), 1e-6) << "inside the window";
  // Incremental decoding honours the window too.
  KVCache cache;
  std::vector<torch::Tensor> parts;
  for (int64_t i = 0; i < 10; ++i) {
    auto r = (*windowed)->forward(ids.narrow(1, i, 1), torch::Tensor(), &cache);
    ASSERT_TRUE(r.is_ok());
    parts.push_back(*r);
  }
  EXPECT_LE(rel_err(torch::cat(parts, 1), *w), 1e-5);
}

std::vector<uint8_t> f32_bytes(const torch::Tensor& t) {
  torch::Tensor c = t.to(torch::kCPU, torch::kFloat32).contiguous();
  const auto* p = reinterpret_cast<const uint8_t*>(c.data_ptr<float>());
  return {p, p + c.numel() * 4};
}

// The Mixtral fixture re-packed as llama.cpp stores it (GGUF architecture "llama" with experts
// stacked per layer, Q/K rows permuted for interleaved RoPE) runs to the same logits: the runtime
// sees the canonical layout whatever the file format.
TEST(Runtime, GgufPackedMixtralMatchesTheReference) {
  PROV_REQUIRE_FIXTURES();
  auto m = open_model(model_dir("mixtral"));
  ASSERT_TRUE(m.is_ok());
  const ModelConfig& c = m->config;
  GgufWriter w;
  w.add_kv("general.architecture", GgufValue::str("llama"));
  w.add_kv("llama.embedding_length", GgufValue::u32(static_cast<uint32_t>(c.hidden_size)));
  w.add_kv("llama.block_count", GgufValue::u32(static_cast<uint32_t>(c.num_layers)));
  w.add_kv("llama.feed_forward_length", GgufValue::u32(static_cast<uint32_t>(c.intermediate_size)));
  w.add_kv("llama.attention.head_count", GgufValue::u32(static_cast<uint32_t>(c.num_heads)));
  w.add_kv("llama.attention.head_count_kv", GgufValue::u32(static_cast<uint32_t>(c.num_kv_heads)));
  w.add_kv("llama.context_length",
           GgufValue::u32(static_cast<uint32_t>(c.max_position_embeddings)));
  w.add_kv("llama.rope.freq_base", GgufValue::f32(static_cast<float>(c.rope_theta)));
  w.add_kv("llama.attention.layer_norm_rms_epsilon",
           GgufValue::f32(static_cast<float>(c.norm_eps)));
  w.add_kv("llama.expert_count", GgufValue::u32(static_cast<uint32_t>(c.num_experts)));
  w.add_kv("llama.expert_used_count", GgufValue::u32(static_cast<uint32_t>(c.experts_per_token)));
  auto canon = [&](Role r, int layer = -1, int expert = -1) {
    const TensorRef* t = m->find(TensorRole{r, layer, expert, false});
    EXPECT_NE(t, nullptr);
    return *to_torch(*t);
  };
  // HF half-split rows -> interleaved rows (the inverse of rope_interleaved_to_half_rows).
  auto interleave = [](const torch::Tensor& x, int64_t heads) {
    auto order = rope_interleaved_to_half_rows(heads, x.size(0) / heads);
    torch::Tensor out = torch::empty_like(x);
    for (size_t i = 0; i < order.size(); ++i) out[order[i]].copy_(x[static_cast<int64_t>(i)]);
    return out;
  };
  auto add = [&](const std::string& name, const torch::Tensor& t) {
    ASSERT_TRUE(w.add_tensor(name, DType::kF32, t.sizes().vec(), f32_bytes(t)).is_ok()) << name;
  };
  add("token_embd.weight", canon(Role::kTokenEmbedding));
  add("output_norm.weight", canon(Role::kFinalNorm));
  add("output.weight", canon(Role::kLmHead));
  for (int i = 0; i < static_cast<int>(c.num_layers); ++i) {
    const std::string b = "blk." + std::to_string(i) + ".";
    add(b + "attn_norm.weight", canon(Role::kAttnNorm, i));
    add(b + "attn_q.weight", interleave(canon(Role::kAttnQ, i), c.num_heads));
    add(b + "attn_k.weight", interleave(canon(Role::kAttnK, i), c.num_kv_heads));
    add(b + "attn_v.weight", canon(Role::kAttnV, i));
    add(b + "attn_output.weight", canon(Role::kAttnO, i));
    add(b + "ffn_norm.weight", canon(Role::kMlpNorm, i));
    add(b + "ffn_gate_inp.weight", canon(Role::kRouter, i));
    for (auto [role, name] :
         {std::pair{Role::kMlpGate, "ffn_gate_exps"}, std::pair{Role::kMlpUp, "ffn_up_exps"},
          std::pair{Role::kMlpDown, "ffn_down_exps"}}) {
      std::vector<torch::Tensor> experts;
      for (int e = 0; e < static_cast<int>(c.num_experts); ++e)
        experts.push_back(canon(role, i, e));
      add(b + name + ".weight", torch::stack(experts));
    }
  }
  testing::TempDir dir;
  ASSERT_TRUE(w.write(dir.file("mixtral.gguf")).is_ok());
  auto g = open_model(dir.file("mixtral.gguf"));
  ASSERT_TRUE(g.is_ok()) << g.status().to_string();
  ASSERT_EQ(g->config.arch, Arch::kMixtral);
  auto tf = Transformer::load(*g);
  ASSERT_TRUE(tf.is_ok()) << tf.status().to_string();
  Expected e = read_expected("mixtral");
  auto logits = (*tf)->forward(e.input_ids, torch::Tensor(), nullptr);
  ASSERT_TRUE(logits.is_ok()) << logits.status().to_string();
  EXPECT_LE(rel_err(*logits, e.logits), 1e-4);
  SamplingOptions so;
  const std::vector<int64_t> prompt = to_vec(e.prompt_ids), want = to_vec(e.greedy_ids);
  so.max_new_tokens = static_cast<int>(want.size() - prompt.size());
  auto gen = generate(**tf, prompt, so);
  ASSERT_TRUE(gen.is_ok());
  EXPECT_EQ(*gen, want);
}

// The real GGUF fixture (F16 tensors, Llama-2 vocabulary) loads and runs.
TEST(Runtime, RealTinyGgufRuns) {
  PROV_REQUIRE_FIXTURES();
  const std::string path = testing::fixtures_dir() + "/real/llama-2-tiny-random.gguf";
  if (!fs::exists(path)) GTEST_SKIP() << "no " << path;
  auto m = open_model(path);
  ASSERT_TRUE(m.is_ok()) << m.status().to_string();
  auto tf = Transformer::load(*m);
  ASSERT_TRUE(tf.is_ok()) << tf.status().to_string();
  auto r =
      (*tf)->forward(torch::tensor({{1, 15043, 3186}}, torch::kInt64), torch::Tensor(), nullptr);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->size(2), m->config.vocab_size);
  EXPECT_TRUE(torch::isfinite(*r).all().item<bool>());
  SamplingOptions so;
  so.max_new_tokens = 4;
  auto g = generate(**tf, {1, 15043}, so);
  ASSERT_TRUE(g.is_ok()) << g.status().to_string();
  EXPECT_EQ(g->size(), 6u);
}

TEST(Runtime, MissingTensorIsNamedWithItsShape) {
  PROV_REQUIRE_FIXTURES();
  auto m = open_model(model_dir("llama"));
  ASSERT_TRUE(m.is_ok());
  auto& roles = m->roles;
  roles.erase(std::remove_if(roles.begin(), roles.end(),
                             [](const auto& r) {
                               return r.first == TensorRole{Role::kAttnK, 1};
                             }),
              roles.end());
  auto t = Transformer::load(*m);
  ASSERT_FALSE(t.is_ok());
  EXPECT_EQ(t.status().code(), StatusCode::kNotFound);
  const std::string msg = t.status().message();
  EXPECT_NE(msg.find("layers.1.attn_k.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("model.layers.1.self_attn.k_proj.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[32, 64]"), std::string::npos) << msg;
}

TEST(Runtime, MisshapenTensorIsNamedWithTheExpectedShape) {
  PROV_REQUIRE_FIXTURES();
  auto m = open_model(model_dir("llama"));
  ASSERT_TRUE(m.is_ok());
  for (auto& [role, index] : m->roles) {
    if (role == TensorRole{Role::kMlpDown, 0}) m->checkpoint.tensors[index].shape = {160, 64};
  }
  auto t = Transformer::load(*m);
  ASSERT_FALSE(t.is_ok());
  EXPECT_EQ(t.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(t.status().message().find("model.layers.0.mlp.down_proj.weight"), std::string::npos);
  EXPECT_NE(t.status().message().find("expected [64, 160]"), std::string::npos)
      << t.status().message();
}

TEST(Runtime, TooLongPromptIsRefusedWithTheLimit) {
  PROV_REQUIRE_FIXTURES();
  auto tf = load_fixture("llama");
  ASSERT_NE(tf, nullptr);
  ASSERT_EQ(tf->config().max_position_embeddings, 256);
  auto r = tf->forward(torch::ones({1, 257}, torch::kInt64), torch::Tensor(), nullptr);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("256"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("257"), std::string::npos) << r.status().message();
  // Exactly the limit is fine, and so is a longer padded row whose real tokens fit.
  EXPECT_TRUE(tf->forward(torch::ones({1, 256}, torch::kInt64), torch::Tensor(), nullptr).is_ok());
  torch::Tensor mask = torch::ones({1, 258}, torch::kInt64);
  mask.narrow(1, 0, 2).zero_();
  EXPECT_TRUE(tf->forward(torch::ones({1, 258}, torch::kInt64), mask, nullptr).is_ok());
  // Through the cache: the refused step leaves the cache as it was.
  KVCache cache;
  ASSERT_TRUE(tf->forward(torch::ones({1, 250}, torch::kInt64), torch::Tensor(), &cache).is_ok());
  auto over = tf->forward(torch::ones({1, 10}, torch::kInt64), torch::Tensor(), &cache);
  ASSERT_FALSE(over.is_ok());
  EXPECT_NE(over.status().message().find("256"), std::string::npos);
  EXPECT_EQ(cache.length(), 250);
  EXPECT_TRUE(tf->forward(torch::ones({1, 6}, torch::kInt64), torch::Tensor(), &cache).is_ok());
  EXPECT_EQ(cache.length(), 256);
  // generate() refuses too long a prompt and stops when the context is full.
  SamplingOptions so;
  so.max_new_tokens = 20;
  auto g = generate(*tf, std::vector<int64_t>(257, 5), so);
  EXPECT_EQ(g.status().code(), StatusCode::kInvalidArgument);
  g = generate(*tf, std::vector<int64_t>(250, 5), so);
  ASSERT_TRUE(g.is_ok()) << g.status().to_string();
  EXPECT_EQ(g->size(), 257u) << "the last token is predicted from 256 positions";
  auto gb = generate_greedy_batch(*tf, {std::vector<int64_t>(250, 5), {7, 8}}, 20);
  ASSERT_TRUE(gb.is_ok()) << gb.status().to_string();
  EXPECT_EQ(gb->at(0), *g);
  EXPECT_EQ(gb->at(1).size(), 9u) << "the batch stops when its longest row is full";
}

TEST(Runtime, MalformedInputsAreRejected) {
  PROV_REQUIRE_FIXTURES();
  auto tf = load_fixture("llama");
  ASSERT_NE(tf, nullptr);
  auto code = [&](const torch::Tensor& ids, const torch::Tensor& mask, KVCache* c = nullptr) {
    auto r = tf->forward(ids, mask, c);
    return r.status().code();
  };
  const torch::Tensor none;
  EXPECT_EQ(code(torch::ones({4}, torch::kInt64), none), StatusCode::kInvalidArgument);
  EXPECT_EQ(code(torch::ones({1, 3}, torch::kFloat32), none), StatusCode::kInvalidArgument);
  EXPECT_EQ(code(torch::full({1, 3}, 1024, torch::kInt64), none), StatusCode::kInvalidArgument);
  EXPECT_EQ(code(torch::full({1, 3}, -1, torch::kInt64), none), StatusCode::kInvalidArgument);
  EXPECT_EQ(code(torch::ones({1, 3}, torch::kInt64), torch::ones({1, 2}, torch::kInt64)),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(code(torch::ones({1, 3}, torch::kInt64), torch::full({1, 3}, 2, torch::kInt64)),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(code(torch::ones({1, 3}, torch::kInt32), none), StatusCode::kOk)
      << "int32 ids accepted";
  KVCache cache;
  EXPECT_EQ(code(torch::ones({2, 3}, torch::kInt64), none, &cache), StatusCode::kOk);
  EXPECT_EQ(code(torch::ones({1, 1}, torch::kInt64), none, &cache), StatusCode::kInvalidArgument)
      << "batch size differs from the cache's";
  auto other = load_fixture("qwen3");  // another head_dim
  ASSERT_NE(other, nullptr);
  auto r = other->forward(torch::ones({2, 1}, torch::kInt64), none, &cache);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << "another model's cache";
  EXPECT_EQ(cache.length(), 3);
  KVCache moved = std::move(cache);
  EXPECT_EQ(moved.length(), 3);
  EXPECT_EQ(code(torch::ones({2, 1}, torch::kInt64), none, &moved), StatusCode::kOk);
  EXPECT_EQ(moved.length(), 4);
}

TEST(Runtime, UnsupportedConfigurationsAreRefused) {
  PROV_REQUIRE_FIXTURES();
  auto m = open_model(model_dir("llama"));
  ASSERT_TRUE(m.is_ok());
  Model bad = *m;
  bad.config.arch = static_cast<Arch>(42);
  auto t = Transformer::load(bad);
  ASSERT_FALSE(t.is_ok());
  EXPECT_EQ(t.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(t.status().message().find(supported_arch_list()), std::string::npos);
  bad = *m;
  bad.config.rope_scaling.type = "yarn";
  EXPECT_EQ(Transformer::load(bad).status().code(), StatusCode::kUnsupported);
  bad = *m;
  bad.config.hidden_act = "mystery";
  t = Transformer::load(bad);
  EXPECT_EQ(t.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(t.status().message().find("mystery"), std::string::npos);
  RuntimeOptions o;
  o.dtype = torch::kFloat64;
  EXPECT_EQ(Transformer::load(*m, o).status().code(), StatusCode::kUnsupported);
  if (!torch::cuda::is_available()) {
    o = RuntimeOptions();
    o.device = torch::Device(torch::kCUDA, 0);
    EXPECT_EQ(Transformer::load(*m, o).status().code(), StatusCode::kUnsupported);
  }
}

TEST(Runtime, RopeScalingChangesLogits) {
  PROV_REQUIRE_FIXTURES();
  auto m = open_model(model_dir("llama"));
  ASSERT_TRUE(m.is_ok());
  Expected e = read_expected("llama");
  auto base = Transformer::load(*m);
  ASSERT_TRUE(base.is_ok());
  auto ref = (*base)->forward(e.input_ids, torch::Tensor(), nullptr);
  ASSERT_TRUE(ref.is_ok());
  // llama3 scaling keeps high frequencies and divides low ones by the factor; with factor 1 it is
  // the identity.
  Model l3 = *m;
  l3.config.rope_scaling.type = "llama3";
  l3.config.rope_scaling.factor = 1.0;
  l3.config.rope_scaling.low_freq_factor = 1.0;
  l3.config.rope_scaling.high_freq_factor = 4.0;
  l3.config.rope_scaling.original_max_position_embeddings = 64;
  auto same = Transformer::load(l3);
  ASSERT_TRUE(same.is_ok()) << same.status().to_string();
  auto r1 = (*same)->forward(e.input_ids, torch::Tensor(), nullptr);
  ASSERT_TRUE(r1.is_ok());
  EXPECT_LE(rel_err(*r1, *ref), 1e-6);
  l3.config.rope_scaling.factor = 8.0;
  auto scaled = Transformer::load(l3);
  ASSERT_TRUE(scaled.is_ok());
  auto r2 = (*scaled)->forward(e.input_ids, torch::Tensor(), nullptr);
  ASSERT_TRUE(r2.is_ok());
  EXPECT_GT(rel_err(*r2, *ref), 1e-4);
  // Linear scaling by f at position p equals no scaling at position p / f: with f = 1 identity.
  Model lin = *m;
  lin.config.rope_scaling.type = "linear";
  lin.config.rope_scaling.factor = 1.0;
  auto r3 = Transformer::load(lin);
  ASSERT_TRUE(r3.is_ok());
  auto r3l = (*r3)->forward(e.input_ids, torch::Tensor(), nullptr);
  ASSERT_TRUE(r3l.is_ok());
  EXPECT_LE(rel_err(*r3l, *ref), 1e-6);
}

TEST(Runtime, Bfloat16OnCpuStaysCloseToTheFp32Reference) {
  PROV_REQUIRE_FIXTURES();
  RuntimeOptions o;
  o.dtype = torch::kBFloat16;
  for (const std::string& name : kFixtureModels) {
    auto tf = load_fixture(name, o);
    ASSERT_NE(tf, nullptr);
    Expected e = read_expected(name);
    auto r = tf->forward(e.input_ids, torch::Tensor(), nullptr);
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    EXPECT_EQ(r->scalar_type(), torch::kFloat32);
    const double err = rel_err(*r, e.logits);
    std::cout << "[ bf16 cpu ] " << name << " relative logit error " << err << "\n";
    EXPECT_LE(err, 3e-2) << name;
    EXPECT_GT(err, 1e-4) << name << ": really computed in bf16";
  }
}

TEST(Runtime, Float16OnCpuRunsOrIsRefusedClearly) {
  PROV_REQUIRE_FIXTURES();
  auto m = open_model(model_dir("llama"));
  ASSERT_TRUE(m.is_ok());
  RuntimeOptions o;
  o.dtype = torch::kFloat16;
  auto tf = Transformer::load(*m, o);
  if (!tf.is_ok()) {
    EXPECT_EQ(tf.status().code(), StatusCode::kUnsupported);
    EXPECT_NE(tf.status().message().find("float16"), std::string::npos) << tf.status().message();
    std::cout << "[ fp16 cpu ] " << tf.status().to_string() << "\n";
    return;
  }
  Expected e = read_expected("llama");
  auto r = (*tf)->forward(e.input_ids, torch::Tensor(), nullptr);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_LE(rel_err(*r, e.logits), 1e-2);
}

// Explicit attention and at::scaled_dot_product_attention agree (only meaningful when the linked
// LibTorch has SDPA; otherwise both paths are the explicit one).
TEST(Runtime, ExplicitAttentionMatchesSdpa) {
  PROV_REQUIRE_FIXTURES();
  RuntimeOptions explicit_opts;
  explicit_opts.use_sdpa = false;
  auto a = load_fixture("qwen3");
  auto b = load_fixture("qwen3", explicit_opts);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->uses_sdpa(), runtime_has_sdpa());
  EXPECT_FALSE(b->uses_sdpa());
  Expected e = read_expected("qwen3");
  torch::Tensor mask = torch::ones({2, 12}, torch::kInt64);
  mask[1].narrow(0, 0, 3).zero_();
  auto ra = a->forward(e.input_ids, mask, nullptr);
  auto rb = b->forward(e.input_ids, mask, nullptr);
  ASSERT_TRUE(ra.is_ok() && rb.is_ok());
  EXPECT_LE(rel_err(ra->narrow(1, 3, 9), rb->narrow(1, 3, 9)), 1e-5);
}

TEST(Runtime, CudaMatchesCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  PROV_REQUIRE_FIXTURES();
  for (const std::string name : {"llama", "qwen2", "mixtral", "gpt2"}) {
    Expected e = read_expected(name);
    for (auto dt : {torch::kFloat32, torch::kBFloat16, torch::kFloat16}) {
      RuntimeOptions o;
      o.device = torch::Device(torch::kCUDA, 0);
      o.dtype = dt;
      auto tf = load_fixture(name, o);
      ASSERT_NE(tf, nullptr);
      auto r = tf->forward(e.input_ids, torch::Tensor(), nullptr);
      ASSERT_TRUE(r.is_ok()) << r.status().to_string();
      EXPECT_TRUE(r->is_cuda());
      EXPECT_LE(rel_err(*r, e.logits), dt == torch::kFloat32 ? 1e-4 : 3e-2) << name;
      if (dt != torch::kFloat32) continue;
      const std::vector<int64_t> prompt = to_vec(e.prompt_ids), want = to_vec(e.greedy_ids);
      SamplingOptions so;
      so.max_new_tokens = static_cast<int>(want.size() - prompt.size());
      auto g = generate(*tf, prompt, so);
      ASSERT_TRUE(g.is_ok());
      EXPECT_EQ(*g, want) << name;
    }
  }
}

TEST(Runtime, ComputeDtypeNames) {
  EXPECT_EQ(compute_dtype_from_name("bf16"), torch::kBFloat16);
  EXPECT_EQ(compute_dtype_from_name("float32"), torch::kFloat32);
  EXPECT_EQ(compute_dtype_from_name("half"), torch::kFloat16);
  EXPECT_FALSE(compute_dtype_from_name("int8").has_value());
}

TEST(Runtime, ParameterCountCountsTiedWeightsOnce) {
  PROV_REQUIRE_FIXTURES();
  for (const std::string name : {"llama", "qwen2", "gpt2"}) {
    auto m = open_model(model_dir(name));
    ASSERT_TRUE(m.is_ok());
    auto t = Transformer::load(*m);
    ASSERT_TRUE(t.is_ok());
    EXPECT_EQ(static_cast<uint64_t>((*t)->num_parameters()), m->num_parameters()) << name;
  }
}

}  // namespace
}  // namespace prov::model
