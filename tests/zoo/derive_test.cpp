#include "zoo/derive.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "model/formats/model.h"
#include "model/runtime/runtime.h"
#include "model/formats/safetensors.h"
#include "model/formats/synthetic.h"
#include "tests/support/test_support.h"

namespace prov::zoo {
namespace {

using model::Arch;
using model::DType;
using testing::TempDir;

model::SyntheticSpec small_spec(Arch arch, bool tied, uint64_t seed) {
  model::SyntheticSpec s;
  s.arch = arch;
  s.vocab_size = 96;
  s.hidden_size = 64;
  s.intermediate_size = 96;
  s.num_layers = 2;
  s.num_heads = 8;  // head_dim 8
  s.num_kv_heads = 4;
  s.max_position_embeddings = 64;
  s.tie_word_embeddings = tied;
  s.seed = seed;
  s.std = 0.15;
  return s;
}

// A synthetic checkpoint whose norm weights are random (1 + 0.3 N(0, 1)) instead of all ones,
// so that permuting them is observable.
void make_model(const std::string& dir, const model::SyntheticSpec& s, bool random_norms = true) {
  ASSERT_TRUE(model::write_synthetic_model(dir, s).is_ok());
  if (!random_norms) return;
  std::vector<model::SafetensorsEntry> entries;
  {
    auto ck = model::read_safetensors(dir + "/model.safetensors");
    ASSERT_TRUE(ck.is_ok()) << ck.status().to_string();
    model::GaussianStream g(s.seed + 1000);
    for (const auto& t : ck->tensors) {
      model::SafetensorsEntry e{t.name, t.dtype, t.shape, {t.data, t.data + t.nbytes}};
      if (t.name.find("norm") != std::string::npos) {
        ASSERT_EQ(t.dtype, DType::kF32);
        for (size_t i = 0; i < t.numel(); ++i) {
          float v = static_cast<float>(1.0 + 0.3 * g.next());
          std::memcpy(&e.bytes[4 * i], &v, 4);
        }
      }
      entries.push_back(std::move(e));
    }
  }
  ASSERT_TRUE(model::write_safetensors(dir + "/model.safetensors", entries).is_ok());
}

std::vector<float> tensor_values(const std::string& dir, const std::string& name) {
  auto ck = model::read_safetensors(dir);
  EXPECT_TRUE(ck.is_ok()) << ck.status().to_string();
  if (!ck.is_ok()) return {};
  const model::TensorRef* t = ck->find(name);
  EXPECT_NE(t, nullptr) << name;
  if (t == nullptr) return {};
  auto v = model::to_float32(*t);
  EXPECT_TRUE(v.is_ok());
  return v.is_ok() ? *v : std::vector<float>{};
}

std::vector<int64_t> tensor_shape(const std::string& dir, const std::string& name) {
  auto ck = model::read_safetensors(dir);
  if (!ck.is_ok()) return {};
  const model::TensorRef* t = ck->find(name);
  return t ? t->shape : std::vector<int64_t>{};
}

torch::Tensor token_ids(int64_t vocab) {
  std::mt19937_64 rng(7);
  std::vector<int64_t> ids(3 * 9);
  for (auto& id : ids) id = static_cast<int64_t>(rng() % static_cast<uint64_t>(vocab));
  return torch::tensor(ids, torch::kInt64).reshape({3, 9});
}

torch::Tensor logits_of(const std::string& dir) {
  auto m = model::open_model(dir);
  EXPECT_TRUE(m.is_ok()) << m.status().to_string();
  if (!m.is_ok()) return {};
  auto tf = model::Transformer::load(*m);
  EXPECT_TRUE(tf.is_ok()) << tf.status().to_string();
  if (!tf.is_ok()) return {};
  auto out = (*tf)->forward(token_ids(m->config.vocab_size), torch::Tensor(), nullptr);
  EXPECT_TRUE(out.is_ok()) << out.status().to_string();
  return out.is_ok() ? *out : torch::Tensor();
}

double rel_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).abs().max().item<double>()) / a.abs().max().item<double>();
}

// ||a - b||_F / ||a||_F of two logit tensors.
double rel_fro(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).norm().item<double>() / a.norm().item<double>();
}

double rel_change(const std::vector<float>& a, const std::vector<float>& b) {
  double d2 = 0, n2 = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    d2 += (static_cast<double>(b[i]) - a[i]) * (static_cast<double>(b[i]) - a[i]);
    n2 += static_cast<double>(a[i]) * a[i];
  }
  return std::sqrt(d2 / n2);
}

// Same tensor names, dtypes, shapes and bytes.
bool same_tensor_bytes(const std::string& a, const std::string& b) {
  auto ca = model::read_safetensors(a);
  auto cb = model::read_safetensors(b);
  if (!ca.is_ok() || !cb.is_ok() || ca->tensors.size() != cb->tensors.size()) return false;
  for (const auto& t : ca->tensors) {
    const auto* u = cb->find(t.name);
    if (u == nullptr || u->dtype != t.dtype || u->shape != t.shape || u->nbytes != t.nbytes ||
        std::memcmp(t.data, u->data, t.nbytes) != 0) {
      ADD_FAILURE() << "tensor " << t.name << " differs";
      return false;
    }
  }
  return true;
}

bool same_multiset(std::vector<float> a, std::vector<float> b) {
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  return a == b;
}

// --- permute ------------------------------------------------------------------------------------

struct ArchCase {
  Arch arch;
  bool tied;
  const char* label;
};

class PermuteTest : public ::testing::TestWithParam<ArchCase> {};

TEST_P(PermuteTest, EveryKindPreservesLogitsAndChangesWeights) {
  const ArchCase& c = GetParam();
  TempDir tmp;
  const std::string base = tmp.file("base");
  make_model(base, small_spec(c.arch, c.tied, 11));
  const torch::Tensor ref = logits_of(base);
  ASSERT_TRUE(ref.defined());

  struct Kind {
    const char* name;
    bool res, mlp, kv;
    const char* changed_tensor;  // must differ from the input
  };
  const Kind kinds[] = {
      {"residual", true, false, false, "model.embed_tokens.weight"},
      {"mlp", false, true, false, "model.layers.0.mlp.gate_proj.weight"},
      {"kv", false, false, true, "model.layers.1.self_attn.k_proj.weight"},
      {"all", true, true, true, "model.layers.0.self_attn.o_proj.weight"},
  };
  for (const Kind& k : kinds) {
    SCOPED_TRACE(std::string(c.label) + " " + k.name);
    const std::string out = tmp.file(k.name);
    auto r = permute(base, out, 42, k.res, k.mlp, k.kv);
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    EXPECT_EQ((*r)["derivative"], "permute");
    EXPECT_GT((*r)["relative_change"].get<double>(), 0.1);

    const auto before = tensor_values(base, k.changed_tensor);
    const auto after = tensor_values(out, k.changed_tensor);
    EXPECT_NE(before, after);
    EXPECT_TRUE(same_multiset(before, after));  // a permutation moves values, never changes them

    const torch::Tensor got = logits_of(out);
    ASSERT_TRUE(got.defined());
    const double d = rel_diff(ref, got);
    EXPECT_LT(d, 1e-5);
    std::cout << "[permute " << c.label << " " << k.name << "] logits max rel diff " << d << "\n";
  }
  // Residual permutation moves the norm weights too.
  EXPECT_NE(tensor_values(base, "model.norm.weight"),
            tensor_values(tmp.file("residual"), "model.norm.weight"));
}

INSTANTIATE_TEST_SUITE_P(Archs, PermuteTest,
                         ::testing::Values(ArchCase{Arch::kLlama, false, "llama"},
                                           ArchCase{Arch::kQwen2, true, "qwen2_tied"},
                                           ArchCase{Arch::kQwen2, false, "qwen2"},
                                           ArchCase{Arch::kQwen3, false, "qwen3"},
                                           ArchCase{Arch::kMistral, true, "mistral_tied"}),
                         [](const auto& info) { return std::string(info.param.label); });

TEST(Permute, FollowsTheDocumentedConvention) {
  TempDir tmp;
  const auto spec = small_spec(Arch::kQwen2, false, 3);
  make_model(tmp.file("a"), spec);
  ASSERT_TRUE(permute(tmp.file("a"), tmp.file("b"), 9, true, true, true).is_ok());

  std::mt19937_64 rng(9);
  const auto res = fisher_yates(&rng, spec.hidden_size);
  const auto mlp0 = fisher_yates(&rng, spec.intermediate_size);
  const auto kv0 = fisher_yates(&rng, spec.num_kv_heads);
  auto sorted = res;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < spec.hidden_size; ++i) ASSERT_EQ(sorted[i], i);

  const int64_t H = spec.hidden_size, I = spec.intermediate_size, hd = 8, group = 2;
  // embed: out[v, i] = in[v, R[i]]
  auto e0 = tensor_values(tmp.file("a"), "model.embed_tokens.weight");
  auto e1 = tensor_values(tmp.file("b"), "model.embed_tokens.weight");
  for (int64_t v = 0; v < spec.vocab_size; ++v)
    for (int64_t i = 0; i < H; ++i) ASSERT_EQ(e1[v * H + i], e0[v * H + res[i]]);
  // layer 0 gate: out[j, i] = in[M[j], R[i]]
  auto g0 = tensor_values(tmp.file("a"), "model.layers.0.mlp.gate_proj.weight");
  auto g1 = tensor_values(tmp.file("b"), "model.layers.0.mlp.gate_proj.weight");
  for (int64_t j = 0; j < I; ++j)
    for (int64_t i = 0; i < H; ++i) ASSERT_EQ(g1[j * H + i], g0[mlp0[j] * H + res[i]]);
  // layer 0 k bias: head h' <- K[h']; q bias: group block h' <- K[h'].
  auto kb0 = tensor_values(tmp.file("a"), "model.layers.0.self_attn.k_proj.bias");
  auto kb1 = tensor_values(tmp.file("b"), "model.layers.0.self_attn.k_proj.bias");
  auto qb0 = tensor_values(tmp.file("a"), "model.layers.0.self_attn.q_proj.bias");
  auto qb1 = tensor_values(tmp.file("b"), "model.layers.0.self_attn.q_proj.bias");
  for (int64_t h = 0; h < spec.num_kv_heads; ++h) {
    for (int64_t d = 0; d < hd; ++d) ASSERT_EQ(kb1[h * hd + d], kb0[kv0[h] * hd + d]);
    for (int64_t d = 0; d < hd * group; ++d)
      ASSERT_EQ(qb1[h * hd * group + d], qb0[kv0[h] * hd * group + d]);
  }
}

TEST(Permute, IsDeterministicPerSeed) {
  TempDir tmp;
  make_model(tmp.file("a"), small_spec(Arch::kLlama, false, 5));
  ASSERT_TRUE(permute(tmp.file("a"), tmp.file("p1"), 1, true, true, true).is_ok());
  ASSERT_TRUE(permute(tmp.file("a"), tmp.file("p2"), 1, true, true, true).is_ok());
  ASSERT_TRUE(permute(tmp.file("a"), tmp.file("p3"), 2, true, true, true).is_ok());
  const std::string p1 = testing::read_file(tmp.file("p1/model.safetensors"));
  EXPECT_EQ(p1, testing::read_file(tmp.file("p2/model.safetensors")));
  EXPECT_NE(p1, testing::read_file(tmp.file("p3/model.safetensors")));
  EXPECT_EQ(testing::read_file(tmp.file("a/config.json")),
            testing::read_file(tmp.file("p1/config.json")));
}

// --- quantize ----------------------------------------------------------------------------------

TEST(Quantize, RoundTripsStayCloseAndKeepVectors) {
  for (const ArchCase& c :
       {ArchCase{Arch::kLlama, false, "llama"}, ArchCase{Arch::kQwen2, true, "qwen2_tied"}}) {
    TempDir tmp;
    const std::string base = tmp.file("base");
    make_model(base, small_spec(c.arch, c.tied, 21));
    const torch::Tensor ref = logits_of(base);
    struct Scheme {
      const char* name;
      double max_weight_err, max_logit_err, min_top1_agreement;
    };
    // Random synthetic models amplify weight error ~4x in the logits and have near-tied
    // top-1 tokens, hence the loose logit bounds; the ordering int8/q8_0 << q4_0 is checked too.
    std::map<std::string, double> logit_err;
    for (const Scheme& s : {Scheme{"int8", 0.01, 0.05, 0.8}, Scheme{"q8_0", 0.01, 0.05, 0.8},
                            Scheme{"q4_0", 0.15, 0.6, 0.2}}) {
      SCOPED_TRACE(std::string(c.label) + " " + s.name);
      const std::string out = tmp.file(s.name);
      auto r = quantize_roundtrip(base, out, s.name);
      ASSERT_TRUE(r.is_ok()) << r.status().to_string();
      const double werr = (*r)["relative_change"].get<double>();
      EXPECT_GT(werr, 0.0);
      EXPECT_LT(werr, s.max_weight_err);
      EXPECT_TRUE((*r)["skipped"].empty());
      // Matrices change by about the reported amount; norms and biases are kept bit for bit.
      const std::string q = "model.layers.1.self_attn.q_proj.weight";
      const double qerr = rel_change(tensor_values(base, q), tensor_values(out, q));
      EXPECT_GT(qerr, 0.0);
      EXPECT_LT(qerr, s.max_weight_err);
      EXPECT_EQ(tensor_values(base, "model.norm.weight"), tensor_values(out, "model.norm.weight"));
      if (c.arch == Arch::kQwen2) {
        const std::string b = "model.layers.0.self_attn.v_proj.bias";
        EXPECT_EQ(tensor_values(base, b), tensor_values(out, b));
      }
      const torch::Tensor got = logits_of(out);
      const double lerr = rel_fro(ref, got);
      EXPECT_LT(lerr, s.max_logit_err);
      const double agree =
          (ref.argmax(-1) == got.argmax(-1)).to(torch::kFloat64).mean().item<double>();
      EXPECT_GE(agree, s.min_top1_agreement);
      logit_err[s.name] = lerr;
      std::cout << "[quantize " << c.label << " " << s.name << "] weight rel err " << werr
                << ", logits rel err (Frobenius) " << lerr << ", max rel diff "
                << rel_diff(ref, got) << ", top-1 agreement " << agree << "\n";
    }
    EXPECT_LT(4 * logit_err["int8"], logit_err["q4_0"]);
    EXPECT_LT(4 * logit_err["q8_0"], logit_err["q4_0"]);
  }
}

TEST(Quantize, Int8IsPerRowAbsmax) {
  TempDir tmp;
  make_model(tmp.file("a"), small_spec(Arch::kLlama, false, 2));
  ASSERT_TRUE(quantize_roundtrip(tmp.file("a"), tmp.file("b"), "int8").is_ok());
  const std::string name = "model.layers.0.mlp.down_proj.weight";
  auto w = tensor_values(tmp.file("a"), name);
  auto q = tensor_values(tmp.file("b"), name);
  const int64_t cols = 96;
  for (int64_t r = 0; r < 64; ++r) {
    float amax = 0;
    for (int64_t j = 0; j < cols; ++j) amax = std::max(amax, std::fabs(w[r * cols + j]));
    const float s = amax / 127.0f;
    for (int64_t j = 0; j < cols; ++j) {
      const float k = q[r * cols + j] / s;
      ASSERT_NEAR(k, std::round(k), 1e-3);  // an integer multiple of the row scale
      ASSERT_LE(std::fabs(q[r * cols + j] - w[r * cols + j]), 0.5f * s * 1.0001f);
    }
  }
}

// --- noise -------------------------------------------------------------------------------------

TEST(Noise, ChangesEachTensorByTheRelativeStd) {
  TempDir tmp;
  const std::string base = tmp.file("base");
  make_model(base, small_spec(Arch::kQwen2, true, 8), /*random_norms=*/false);
  auto r = add_noise(base, tmp.file("n"), 0.01, 77);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  const double overall = (*r)["relative_change"].get<double>();
  EXPECT_NEAR(overall, 0.01, 0.001);
  std::cout << "[noise 0.01] overall weight rel change " << overall << "\n";
  for (const char* name :
       {"model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight",
        "model.layers.1.mlp.down_proj.weight", "model.layers.1.self_attn.k_proj.bias"}) {
    const double rc = rel_change(tensor_values(base, name), tensor_values(tmp.file("n"), name));
    EXPECT_NEAR(rc, 0.01, 0.002) << name;
  }
  // All-ones norms have std 0: unchanged.
  EXPECT_EQ(tensor_values(base, "model.layers.0.input_layernorm.weight"),
            tensor_values(tmp.file("n"), "model.layers.0.input_layernorm.weight"));
  // Same seed, same bytes; another seed, other bytes.
  ASSERT_TRUE(add_noise(base, tmp.file("n2"), 0.01, 77).is_ok());
  ASSERT_TRUE(add_noise(base, tmp.file("n3"), 0.01, 78).is_ok());
  const std::string n = testing::read_file(tmp.file("n/model.safetensors"));
  EXPECT_EQ(n, testing::read_file(tmp.file("n2/model.safetensors")));
  EXPECT_NE(n, testing::read_file(tmp.file("n3/model.safetensors")));
}

TEST(Noise, KeepsTheInputDtype) {
  TempDir tmp;
  auto spec = small_spec(Arch::kLlama, false, 4);
  spec.dtype = DType::kBF16;
  make_model(tmp.file("a"), spec, false);
  ASSERT_TRUE(add_noise(tmp.file("a"), tmp.file("b"), 0.05, 1).is_ok());
  auto ck = model::read_safetensors(tmp.file("b"));
  ASSERT_TRUE(ck.is_ok());
  for (const auto& t : ck->tensors) EXPECT_EQ(t.dtype, DType::kBF16) << t.name;
  const std::string q = "model.layers.0.self_attn.q_proj.weight";
  EXPECT_NEAR(rel_change(tensor_values(tmp.file("a"), q), tensor_values(tmp.file("b"), q)), 0.05,
              0.01);
}

// --- prune -------------------------------------------------------------------------------------

TEST(Prune, DropsLayersAndWeakestUnits) {
  for (const ArchCase& c :
       {ArchCase{Arch::kLlama, false, "llama"}, ArchCase{Arch::kQwen2, true, "qwen2_tied"}}) {
    SCOPED_TRACE(c.label);
    TempDir tmp;
    auto spec = small_spec(c.arch, c.tied, 31);
    spec.num_layers = 3;
    const std::string base = tmp.file("base"), out = tmp.file("p");
    make_model(base, spec);
    testing::write_file(tmp.file("base/tokenizer.json"), std::string("{\"x\": 1}"));
    auto r = prune(base, out, {0, 2}, 0.5);
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    EXPECT_EQ((*r)["intermediate_size"]["after"], 48);

    auto m = model::open_model(out);
    ASSERT_TRUE(m.is_ok()) << m.status().to_string();
    EXPECT_EQ(m->config.num_layers, 2);
    EXPECT_EQ(m->config.intermediate_size, 48);
    EXPECT_EQ(m->config.tie_word_embeddings, c.tied);
    EXPECT_EQ(m->tokenizer_kind, "tokenizer.json");
    EXPECT_EQ(testing::read_file(tmp.file("p/tokenizer.json")), "{\"x\": 1}");
    EXPECT_EQ(tensor_shape(out, "model.layers.1.mlp.gate_proj.weight"),
              (std::vector<int64_t>{48, 64}));
    EXPECT_EQ(tensor_shape(out, "model.layers.1.mlp.down_proj.weight"),
              (std::vector<int64_t>{64, 48}));
    EXPECT_TRUE(tensor_shape(out, "model.layers.2.mlp.up_proj.weight").empty());
    // New layer 1 is old layer 2: attention unchanged.
    EXPECT_EQ(tensor_values(base, "model.layers.2.self_attn.q_proj.weight"),
              tensor_values(out, "model.layers.1.self_attn.q_proj.weight"));

    // The kept units are the 48 best by ||gate_j|| ||up_j|| ||down_:,j||, in order.
    const auto g = tensor_values(base, "model.layers.2.mlp.gate_proj.weight");
    const auto u = tensor_values(base, "model.layers.2.mlp.up_proj.weight");
    const auto d = tensor_values(base, "model.layers.2.mlp.down_proj.weight");
    std::vector<std::pair<double, int>> score;
    for (int j = 0; j < 96; ++j) {
      double a = 0, b = 0, e = 0;
      for (int h = 0; h < 64; ++h) {
        a += double(g[j * 64 + h]) * g[j * 64 + h];
        b += double(u[j * 64 + h]) * u[j * 64 + h];
        e += double(d[h * 96 + j]) * d[h * 96 + j];
      }
      score.push_back({-std::sqrt(a) * std::sqrt(b) * std::sqrt(e), j});
    }
    std::sort(score.begin(), score.end());
    std::vector<int> keep;
    for (int i = 0; i < 48; ++i) keep.push_back(score[i].second);
    std::sort(keep.begin(), keep.end());
    const auto g1 = tensor_values(out, "model.layers.1.mlp.gate_proj.weight");
    const auto d1 = tensor_values(out, "model.layers.1.mlp.down_proj.weight");
    for (int i = 0; i < 48; ++i) {
      for (int h = 0; h < 64; ++h) {
        ASSERT_EQ(g1[i * 64 + h], g[keep[i] * 64 + h]);
        ASSERT_EQ(d1[h * 48 + i], d[h * 96 + keep[i]]);
      }
    }
    if (c.arch == Arch::kQwen2) {
      EXPECT_EQ(tensor_values(base, "model.layers.2.self_attn.q_proj.bias"),
                tensor_values(out, "model.layers.1.self_attn.q_proj.bias"));
    }
    const torch::Tensor logits = logits_of(out);
    ASSERT_TRUE(logits.defined());
    EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{3, 9, 96}));
    EXPECT_TRUE(torch::isfinite(logits).all().item<bool>());
  }
}

TEST(Prune, FractionOneKeepsMlpAndSubsetsLayerTypes) {
  TempDir tmp;
  auto spec = small_spec(Arch::kLlama, false, 1);
  spec.num_layers = 3;
  make_model(tmp.file("a"), spec, false);
  auto cfg = model::read_json_file(tmp.file("a/config.json"));
  ASSERT_TRUE(cfg.is_ok());
  (*cfg)["layer_types"] = {"full_attention", "x", "full_attention"};
  testing::write_file(tmp.file("a/config.json"), cfg->dump());
  auto r = prune(tmp.file("a"), tmp.file("b"), {1}, 1.0);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  auto out_cfg = model::read_json_file(tmp.file("b/config.json"));
  ASSERT_TRUE(out_cfg.is_ok());
  EXPECT_EQ((*out_cfg)["num_hidden_layers"], 1);
  EXPECT_EQ((*out_cfg)["intermediate_size"], 96);
  EXPECT_EQ((*out_cfg)["layer_types"], nlohmann::json({"x"}));
  EXPECT_EQ(tensor_values(tmp.file("a"), "model.layers.1.mlp.down_proj.weight"),
            tensor_values(tmp.file("b"), "model.layers.0.mlp.down_proj.weight"));
}

// --- merge -------------------------------------------------------------------------------------

TEST(Merge, SelfMergeIsIdentityAndHalfIsTheMean) {
  TempDir tmp;
  make_model(tmp.file("a"), small_spec(Arch::kQwen2, true, 1));
  make_model(tmp.file("b"), small_spec(Arch::kQwen2, true, 2));
  auto self = merge(tmp.file("a"), tmp.file("a"), tmp.file("aa"), 0.3);
  ASSERT_TRUE(self.is_ok()) << self.status().to_string();
  EXPECT_EQ((*self)["relative_change"].get<double>(), 0.0);
  EXPECT_TRUE(same_tensor_bytes(tmp.file("a"), tmp.file("aa")));

  auto half = merge(tmp.file("a"), tmp.file("b"), tmp.file("ab"), 0.5);
  ASSERT_TRUE(half.is_ok()) << half.status().to_string();
  for (const char* name : {"model.embed_tokens.weight", "model.layers.1.mlp.up_proj.weight",
                           "model.layers.0.self_attn.q_proj.bias", "model.norm.weight"}) {
    const auto a = tensor_values(tmp.file("a"), name);
    const auto b = tensor_values(tmp.file("b"), name);
    const auto m = tensor_values(tmp.file("ab"), name);
    ASSERT_EQ(m.size(), a.size());
    for (size_t i = 0; i < a.size(); ++i) {
      ASSERT_EQ(m[i], static_cast<float>((double(a[i]) + double(b[i])) / 2)) << name << " " << i;
    }
  }
  auto one = merge(tmp.file("a"), tmp.file("b"), tmp.file("a1"), 1.0);
  ASSERT_TRUE(one.is_ok());
  EXPECT_TRUE(same_tensor_bytes(tmp.file("a"), tmp.file("a1")));
}

TEST(Merge, RefusesMismatchedCheckpoints) {
  TempDir tmp;
  make_model(tmp.file("a"), small_spec(Arch::kLlama, false, 1), false);
  auto wide = small_spec(Arch::kLlama, false, 2);
  wide.intermediate_size = 128;
  make_model(tmp.file("w"), wide, false);
  make_model(tmp.file("t"), small_spec(Arch::kLlama, true, 3), false);
  make_model(tmp.file("q"), small_spec(Arch::kQwen2, false, 3), false);

  auto r = merge(tmp.file("a"), tmp.file("w"), tmp.file("o1"), 0.5);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("down_proj.weight has shape [64, 96] in"), std::string::npos)
      << r.status().message();
  r = merge(tmp.file("a"), tmp.file("t"), tmp.file("o2"), 0.5);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("lm_head.weight"), std::string::npos) << r.status().message();
  r = merge(tmp.file("a"), tmp.file("q"), tmp.file("o3"), 0.5);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("architectures differ"), std::string::npos);
  r = merge(tmp.file("a"), tmp.file("a"), tmp.file("o4"), 1.5);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
}

// --- errors ------------------------------------------------------------------------------------

TEST(Derive, BadInputsGiveClearErrors) {
  TempDir tmp;
  const std::string a = tmp.file("a");
  make_model(a, small_spec(Arch::kLlama, false, 1), false);

  auto r = permute(tmp.file("missing"), tmp.file("o"), 1, true, false, false);
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("missing"), std::string::npos);

  r = prune(a, tmp.file("o"), {0, 2}, 0.5);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("out of range (the model has 2 layers)"), std::string::npos)
      << r.status().message();
  r = prune(a, tmp.file("o"), {-1}, 0.5);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  r = prune(a, tmp.file("o"), {1, 0}, 0.5);
  EXPECT_NE(r.status().message().find("strictly increasing"), std::string::npos);
  r = prune(a, tmp.file("o"), {0}, 0.0);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  r = prune(a, tmp.file("o"), {}, 0.5);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);

  r = quantize_roundtrip(a, tmp.file("o"), "q3");
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("int8, q8_0 or q4_0"), std::string::npos);
  r = add_noise(a, tmp.file("o"), -0.1, 1);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  r = add_noise(a, tmp.file("o"), std::nan(""), 1);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  r = permute(a, tmp.file("o"), 1, false, false, false);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);

  // The output may not be the input, nor a non-empty directory; the input is left intact.
  const std::string before = testing::read_file(a + "/model.safetensors");
  r = add_noise(a, a, 0.1, 1);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("is the input"), std::string::npos);
  std::filesystem::create_directories(tmp.file("full"));
  testing::write_file(tmp.file("full/x"), std::string("x"));
  r = add_noise(a, tmp.file("full"), 0.1, 1);
  EXPECT_NE(r.status().message().find("not empty"), std::string::npos);
  EXPECT_EQ(before, testing::read_file(a + "/model.safetensors"));

  // A directory without a checkpoint.
  std::filesystem::create_directories(tmp.file("empty"));
  testing::write_file(tmp.file("empty/readme"), std::string("x"));
  r = quantize_roundtrip(tmp.file("empty"), tmp.file("o"), "int8");
  EXPECT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("empty"), std::string::npos);
}

}  // namespace
}  // namespace prov::zoo
