#include "model/formats/model.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "model/formats/synthetic.h"
#include "tests/support/test_support.h"

namespace prov::model {
namespace {

TEST(Roles, HuggingFaceNames) {
  auto r = role_from_hf_name("model.layers.3.self_attn.q_proj.weight");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->to_string(), "layers.3.attn_q.weight");
  EXPECT_EQ(role_from_hf_name("model.layers.0.self_attn.k_proj.bias")->to_string(),
            "layers.0.attn_k.bias");
  EXPECT_EQ(role_from_hf_name("lm_head.weight")->role, Role::kLmHead);
  EXPECT_EQ(role_from_hf_name("model.layers.1.block_sparse_moe.experts.2.w3.weight")->to_string(),
            "layers.1.experts.2.mlp_up.weight");
  EXPECT_EQ(role_from_hf_name("transformer.h.1.attn.c_attn.weight")->to_string(),
            "layers.1.attn_qkv.weight");
  EXPECT_EQ(role_from_hf_name("h.0.mlp.c_proj.bias")->to_string(), "layers.0.mlp_down.bias");
  EXPECT_FALSE(role_from_hf_name("model.layers.0.self_attn.rotary_emb.inv_freq").has_value());
  EXPECT_FALSE(role_from_hf_name("model.layers.x.self_attn.q_proj.weight").has_value());
}

TEST(Roles, GgufNames) {
  EXPECT_EQ(role_from_gguf_name("blk.12.attn_output.weight")->to_string(),
            "layers.12.attn_o.weight");
  EXPECT_EQ(role_from_gguf_name("token_embd.weight")->role, Role::kTokenEmbedding);
  EXPECT_EQ(role_from_gguf_name("output.weight")->role, Role::kLmHead);
  EXPECT_EQ(role_from_gguf_name("blk.0.ffn_up_exps.weight")->to_string(),
            "layers.0.experts.*.mlp_up.weight");
  EXPECT_EQ(role_from_gguf_name("blk.0.ffn_gate.3.weight")->to_string(),
            "layers.0.experts.3.mlp_gate.weight");
  EXPECT_FALSE(role_from_gguf_name("rope_freqs.weight").has_value());
}

TEST(OpenModel, EveryFixtureModel) {
  PROV_REQUIRE_FIXTURES();
  struct Want {
    const char* dir;
    Arch arch;
    uint64_t params;
    size_t tensors;
    const char* dtype;
  };
  // Parameter counts summed from the files' own headers.
  for (const Want& w : {Want{"llama", Arch::kLlama, 217408, 21, "F32"},
                        Want{"mistral", Arch::kMistral, 217408, 21, "F32"},
                        Want{"qwen2", Arch::kQwen2, 152128, 26, "F32"},
                        Want{"qwen3", Arch::kQwen3, 176576, 24, "F32"},
                        Want{"mixtral", Arch::kMixtral, 402240, 41, "F32"},
                        Want{"gpt2", Arch::kGpt2, 182016, 28, "F32"},
                        Want{"llama_sharded_bf16", Arch::kLlama, 217408, 21, "BF16"}}) {
    auto m = open_model(testing::fixtures_dir() + "/hf/models/" + w.dir);
    ASSERT_TRUE(m.is_ok()) << w.dir << ": " << m.status().to_string();
    EXPECT_EQ(m->config.arch, w.arch) << w.dir;
    EXPECT_EQ(m->num_parameters(), w.params) << w.dir;
    EXPECT_EQ(m->checkpoint.tensors.size(), w.tensors) << w.dir;
    EXPECT_EQ(m->roles.size(), w.tensors) << w.dir << ": every tensor has a role";
    EXPECT_EQ(m->dtypes(), std::vector<std::string>{w.dtype}) << w.dir;
    ASSERT_NE(m->output_projection(), nullptr);
  }
}

TEST(OpenModel, Gpt2ConvWeightsReadAsOutByIn) {
  PROV_REQUIRE_FIXTURES();
  auto m = open_model(testing::fixtures_dir() + "/hf/models/gpt2");
  ASSERT_TRUE(m.is_ok()) << m.status().to_string();
  const TensorRef* qkv = m->find(Role::kAttnQKV, 0);
  ASSERT_NE(qkv, nullptr);
  EXPECT_EQ(qkv->shape, (std::vector<int64_t>{192, 64}));
  EXPECT_TRUE(qkv->transposed);
  // Canonical [out, in][r][c] is stored [in, out][c][r].
  auto f = to_float32(*qkv);
  ASSERT_TRUE(f.is_ok());
  float stored;
  std::memcpy(&stored, qkv->data + (5 * 192 + 7) * 4, 4);
  EXPECT_EQ((*f)[7 * 64 + 5], stored);
}

TEST(OpenModel, Stories260K) {
  PROV_REQUIRE_FIXTURES();
  auto m = open_model(testing::fixtures_dir() + "/real/stories260K.bin");
  ASSERT_TRUE(m.is_ok()) << m.status().to_string();
  EXPECT_EQ(m->checkpoint.format, Format::kLlama2c);
  EXPECT_EQ(m->config.hidden_size, 64);
  EXPECT_EQ(m->config.intermediate_size, 172);
  EXPECT_EQ(m->config.num_layers, 5);
  EXPECT_EQ(m->config.num_heads, 8);
  EXPECT_EQ(m->config.num_kv_heads, 4);
  EXPECT_EQ(m->config.vocab_size, 512);
  EXPECT_TRUE(m->config.tie_word_embeddings);
  // 512*64 embedding + 5 * (2*64 norms + 64*64 q + 2*32*64 k,v + 64*64 o + 3*172*64 mlp) + 64.
  EXPECT_EQ(m->num_parameters(), 260032u);
}

TEST(OpenModel, GgufLlama2) {
  PROV_REQUIRE_FIXTURES();
  auto m = open_model(testing::fixtures_dir() + "/real/llama-2-tiny-random.gguf");
  ASSERT_TRUE(m.is_ok()) << m.status().to_string();
  EXPECT_EQ(m->checkpoint.format, Format::kGguf);
  EXPECT_EQ(m->config.arch, Arch::kLlama);
  EXPECT_EQ(m->config.vocab_size, 32000);
  EXPECT_EQ(m->tokenizer_kind, "gguf:llama");
  EXPECT_EQ(m->dtypes().size(), 2u) << "F16 matrices, F32 norms";
}

TEST(OpenModel, SyntheticModelsOpenSingleAndSharded) {
  testing::TempDir dir;
  SyntheticSpec spec;
  spec.arch = Arch::kQwen2;
  spec.tie_word_embeddings = true;
  spec.dtype = DType::kBF16;
  ASSERT_TRUE(write_synthetic_model(dir.file("one"), spec).is_ok());
  spec.max_shard_bytes = 20000;
  ASSERT_TRUE(write_synthetic_model(dir.file("many"), spec).is_ok());
  auto a = open_model(dir.file("one"));
  auto b = open_model(dir.file("many"));
  ASSERT_TRUE(a.is_ok()) << a.status().to_string();
  ASSERT_TRUE(b.is_ok()) << b.status().to_string();
  EXPECT_GT(b->checkpoint.files.size(), 2u);
  EXPECT_EQ(a->num_parameters(), b->num_parameters());
  const TensorRef* qa = a->find(Role::kAttnQ, 1, /*bias=*/true);
  const TensorRef* qb = b->find(Role::kAttnQ, 1, /*bias=*/true);
  ASSERT_TRUE(qa && qb);
  EXPECT_EQ(*to_float32(*qa), *to_float32(*qb));
  // Same seed, same bytes: the writer is deterministic.
  ASSERT_TRUE(write_synthetic_model(dir.file("again"),
                                    [&] {
                                      auto s = spec;
                                      s.max_shard_bytes = 0;
                                      return s;
                                    }())
                  .is_ok());
  EXPECT_EQ(testing::read_file(dir.file("one/model.safetensors")),
            testing::read_file(dir.file("again/model.safetensors")));
}

TEST(OpenModel, BadInputIsNamed) {
  testing::TempDir dir;
  EXPECT_EQ(open_model(dir.file("missing")).status().code(), StatusCode::kNotFound);
  testing::write_file(dir.file("junk.bin"), std::string(100, 'x'));
  auto j = open_model(dir.file("junk.bin"));
  EXPECT_EQ(j.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(j.status().message().find("not a recognised checkpoint"), std::string::npos);

  // A tensor whose shape disagrees with config.json names the tensor and the expected shape.
  SyntheticSpec spec;
  ASSERT_TRUE(write_synthetic_model(dir.file("m"), spec).is_ok());
  nlohmann::json cfg = synthetic_config_json(spec);
  cfg["intermediate_size"] = 128;
  testing::write_file(dir.file("m/config.json"), cfg.dump());
  auto m = open_model(dir.file("m"));
  ASSERT_EQ(m.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(m.status().message().find("mlp.down_proj.weight"), std::string::npos)
      << m.status().message();
  EXPECT_NE(m.status().message().find("expected [64, 128]"), std::string::npos)
      << m.status().message();

  cfg["intermediate_size"] = 160;
  cfg["model_type"] = "rwkv";
  testing::write_file(dir.file("m/config.json"), cfg.dump());
  EXPECT_EQ(open_model(dir.file("m")).status().code(), StatusCode::kUnsupported);
}

// A config that declares far more layers than the file holds is refused before anything is
// allocated for them (fingerprint and generate used to die with std::bad_alloc).
TEST(OpenModel, DeclaredLayersMustBeThere) {
  testing::TempDir dir;
  SyntheticSpec spec;
  ASSERT_TRUE(write_synthetic_model(dir.file("m"), spec).is_ok());
  nlohmann::json cfg = synthetic_config_json(spec);
  cfg["num_hidden_layers"] = int64_t{1} << 31;
  testing::write_file(dir.file("m/config.json"), cfg.dump());
  auto m = open_model(dir.file("m"));
  ASSERT_EQ(m.status().code(), StatusCode::kCorrupt) << m.status().to_string();
  EXPECT_NE(m.status().message().find("declares 2147483648 layers but the checkpoint holds "
                                      "tensors for 2"),
            std::string::npos)
      << m.status().message();
}

}  // namespace
}  // namespace prov::model
