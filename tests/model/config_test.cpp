#include "model/formats/config.h"

#include <gtest/gtest.h>

#include "tests/support/test_support.h"

namespace prov::model {
namespace {

nlohmann::json llama_v4() {
  return nlohmann::json::parse(R"({
    "model_type": "llama", "vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 14336,
    "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
    "max_position_embeddings": 131072, "rms_norm_eps": 1e-05, "rope_theta": 500000.0,
    "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    "tie_word_embeddings": false, "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009],
    "torch_dtype": "bfloat16"})");
}

TEST(Config, TransformersFourRopeSpelling) {
  auto c = config_from_hf_json(llama_v4(), nullptr, "config.json");
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->arch, Arch::kLlama);
  EXPECT_EQ(c->head_dim, 128);
  EXPECT_EQ(c->num_kv_heads, 8);
  EXPECT_DOUBLE_EQ(c->rope_theta, 500000.0);
  EXPECT_EQ(c->rope_scaling.type, "llama3");
  EXPECT_DOUBLE_EQ(c->rope_scaling.factor, 8.0);
  EXPECT_EQ(c->rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_EQ(c->eos_token_ids, (std::vector<int64_t>{128001, 128008, 128009}));
  EXPECT_EQ(c->torch_dtype, "bfloat16");
}

TEST(Config, TransformersFiveRopeSpellingMatches) {
  nlohmann::json j = llama_v4();
  j.erase("rope_theta");
  j.erase("rope_scaling");
  j["rope_parameters"] = {{"rope_theta", 500000.0},  {"rope_type", "llama3"},
                          {"factor", 8.0},           {"low_freq_factor", 1.0},
                          {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 8192}};
  auto c = config_from_hf_json(j, nullptr, "config.json");
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_DOUBLE_EQ(c->rope_theta, 500000.0);
  EXPECT_EQ(c->rope_scaling.type, "llama3");
  EXPECT_DOUBLE_EQ(c->rope_scaling.factor, 8.0);
}

TEST(Config, GenerationConfigOverridesTokens) {
  nlohmann::json gen = {{"bos_token_id", 7}, {"eos_token_id", 9}};
  auto c = config_from_hf_json(llama_v4(), &gen, "config.json");
  ASSERT_TRUE(c.is_ok());
  EXPECT_EQ(*c->bos_token_id, 7);
  EXPECT_EQ(c->eos_token_ids, (std::vector<int64_t>{9}));
}

TEST(Config, BadConfigsNameTheProblem) {
  nlohmann::json j = llama_v4();
  j["model_type"] = "mamba";
  auto c = config_from_hf_json(j, nullptr, "config.json");
  EXPECT_EQ(c.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(c.status().message().find("qwen2"), std::string::npos) << "lists supported archs";

  j = llama_v4();
  j.erase("hidden_size");
  c = config_from_hf_json(j, nullptr, "config.json");
  EXPECT_EQ(c.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(c.status().message().find("hidden_size"), std::string::npos);

  j = llama_v4();
  j["num_key_value_heads"] = 5;
  EXPECT_EQ(config_from_hf_json(j, nullptr, "c").status().code(), StatusCode::kCorrupt);
  j = llama_v4();
  j["num_attention_heads"] = "32";
  EXPECT_EQ(config_from_hf_json(j, nullptr, "c").status().code(), StatusCode::kCorrupt);
  EXPECT_EQ(config_from_hf_json(nlohmann::json::array(), nullptr, "c").status().code(),
            StatusCode::kCorrupt);
}

TEST(Config, JsonDepthAndSyntaxAreBounded) {
  std::string deep(100000, '[');
  auto r = parse_json_bounded(deep, "x.json");
  EXPECT_EQ(r.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(r.status().message().find("deeper"), std::string::npos);
  EXPECT_EQ(parse_json_bounded("{\"a\": ", "x.json").status().code(), StatusCode::kCorrupt);
  // Brackets inside strings do not count as nesting.
  EXPECT_TRUE(parse_json_bounded("{\"a\": \"" + std::string(1000, '[') + "\"}", "x").is_ok());
}

TEST(Config, FixtureConfigs) {
  PROV_REQUIRE_FIXTURES();
  const std::string base = testing::fixtures_dir() + "/hf/models/";
  struct Want {
    const char* dir;
    Arch arch;
    int64_t head_dim;
    bool tied;
    double theta;
  };
  for (const Want& w :
       {Want{"llama", Arch::kLlama, 16, false, 500000.0},
        Want{"qwen3", Arch::kQwen3, 32, true, 1000000.0},
        Want{"mixtral", Arch::kMixtral, 16, false, -1}, Want{"gpt2", Arch::kGpt2, 16, true, -1}}) {
    auto c = read_hf_config(base + w.dir);
    ASSERT_TRUE(c.is_ok()) << w.dir << ": " << c.status().to_string();
    EXPECT_EQ(c->arch, w.arch) << w.dir;
    EXPECT_EQ(c->head_dim, w.head_dim) << w.dir;
    EXPECT_EQ(c->tie_word_embeddings, w.tied) << w.dir;
    if (w.theta > 0) {
      EXPECT_DOUBLE_EQ(c->rope_theta, w.theta) << w.dir;
    }
  }
  auto mix = read_hf_config(base + "mixtral");
  EXPECT_EQ(mix->num_experts, 4);
  EXPECT_EQ(mix->experts_per_token, 2);
}

}  // namespace
}  // namespace prov::model
