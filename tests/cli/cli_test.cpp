// End-to-end tests of the prov executable: real files, real process, exit codes.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "core/sha256.h"
#include "tests/support/prov_cli.h"
#include "tests/support/test_support.h"

namespace {

using prov::testing::Outcome;
using prov::testing::run_prov;

TEST(Cli, ExampleThenInspectJson) {
  prov::testing::TempDir dir;
  ASSERT_EQ(run_prov("example " + dir.file("m") + " --arch qwen2 --seed 3").code, 0);
  Outcome r = run_prov("inspect " + dir.file("m") + " --json");
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["format"], "safetensors");
  EXPECT_EQ(j["architecture"], "qwen2");
  EXPECT_EQ(j["num_layers"], 2);
  EXPECT_EQ(j["hidden_size"], 64);
  EXPECT_EQ(j["vocab_size"], 256);
  EXPECT_EQ(j["dtypes"], nlohmann::json::array({"F32"}));
  EXPECT_EQ(j["digest"].get<std::string>().size(), 64u);
  // qwen2 example: tied embeddings, qkv bias: 256*64 +
  // 2*(64+64*64+2*32*64+64+32+32+64*64+64+3*160*64) + 64
  EXPECT_EQ(j["num_parameters"],
            256 * 64 +
                2 * (64 + 64 * 64 + 2 * 32 * 64 + 64 + 32 + 32 + 64 * 64 + 64 + 3 * 160 * 64) + 64);

  Outcome human = run_prov("inspect " + dir.file("m"));
  EXPECT_EQ(human.code, 0);
  EXPECT_NE(human.out.find("qwen2"), std::string::npos);
  EXPECT_NE(human.out.find("sha256:" + j["digest"].get<std::string>()), std::string::npos);
}

TEST(Cli, DigestJsonMatchesFileHashes) {
  prov::testing::TempDir dir;
  ASSERT_EQ(run_prov("example " + dir.file("m") + " --shard-bytes 40000").code, 0);
  Outcome r = run_prov("digest " + dir.file("m") + " --json --tensors -o " + dir.file("id.pb"));
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  prov::Sha256 all;
  for (const auto& f : j["files"]) {
    auto d = prov::sha256_file(dir.file("m/" + f["name"].get<std::string>()));
    ASSERT_TRUE(d.is_ok());
    EXPECT_EQ(f["sha256"], prov::to_hex(*d));
    all.update(d->data(), d->size());
  }
  EXPECT_EQ(j["digest"], prov::to_hex(all.finish()));
  EXPECT_GT(j["files"].size(), 3u);
  EXPECT_EQ(j["tensors"].size(), 21u);
  EXPECT_FALSE(prov::testing::read_file(dir.file("id.pb")).empty());
}

TEST(Cli, BadInputExitsTwoWithAReason) {
  prov::testing::TempDir dir;
  Outcome missing = run_prov("inspect " + dir.file("nothing"));
  EXPECT_EQ(missing.code, 2);
  EXPECT_NE(missing.out.find("no such file"), std::string::npos) << missing.out;

  ASSERT_EQ(run_prov("example " + dir.file("m")).code, 0);
  std::string bytes = prov::testing::read_file(dir.file("m/model.safetensors"));
  prov::testing::write_file(dir.file("m/model.safetensors"), bytes.substr(0, bytes.size() / 2));
  Outcome trunc = run_prov("inspect " + dir.file("m"));
  EXPECT_EQ(trunc.code, 2) << trunc.out;
  EXPECT_NE(trunc.out.find("model.safetensors"), std::string::npos) << trunc.out;

  Outcome usage = run_prov("inspect");
  EXPECT_EQ(usage.code, 2);
  Outcome unknown = run_prov("frobnicate");
  EXPECT_EQ(unknown.code, 2);
}

TEST(Cli, FixtureCheckpointsOfEveryFormat) {
  PROV_REQUIRE_FIXTURES();
  const std::string f = prov::testing::fixtures_dir();
  for (const auto& [path, format] : std::vector<std::pair<std::string, std::string>>{
           {f + "/hf/models/llama_sharded_bf16", "safetensors"},
           {f + "/real/stories260K.bin", "llama2c"},
           {f + "/real/llama-2-tiny-random.gguf", "gguf"}}) {
    Outcome r = run_prov("inspect --json " + path);
    ASSERT_EQ(r.code, 0) << path << "\n" << r.out;
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["format"], format);
    EXPECT_EQ(j["architecture"], "llama");
  }
}

}  // namespace

namespace {

TEST(Cli, GenerateStories260KThroughTheTorchPlugin) {
  PROV_REQUIRE_FIXTURES();
  const std::string f = prov::testing::fixtures_dir();
  Outcome r = run_prov("generate " + f + "/real/stories260K.bin --max-tokens 20 --json");
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["ids"].size(), 21u);
  EXPECT_EQ(j["ids"][0], 1) << "starts from BOS";
  EXPECT_EQ(j["text"].get<std::string>().rfind(
                "Once upon a time, there was a little girl named Lily.", 0),
            0u)
      << j["text"];
  // Seeded sampling is reproducible.
  Outcome a = run_prov(
      "generate " + f +
      "/real/stories260K.bin --prompt Once --max-tokens 12 --temperature 0.9 --seed 5 --json");
  Outcome b = run_prov(
      "generate " + f +
      "/real/stories260K.bin --prompt Once --max-tokens 12 --temperature 0.9 --seed 5 --json");
  ASSERT_EQ(a.code, 0) << a.out;
  EXPECT_EQ(a.out, b.out);
}

TEST(Cli, GenerateRefusesBadRequests) {
  PROV_REQUIRE_FIXTURES();
  const std::string f = prov::testing::fixtures_dir();
  Outcome long_prompt =
      run_prov("generate " + f + "/hf/models/llama --max-tokens 1 --prompt-ids " + [] {
        std::string ids;
        for (int i = 0; i < 300; ++i) ids += (i ? "," : "") + std::to_string(i % 100);
        return ids;
      }());
  EXPECT_EQ(long_prompt.code, 2) << long_prompt.out;
  EXPECT_NE(long_prompt.out.find("256"), std::string::npos) << long_prompt.out;
  Outcome no_tok = run_prov("generate " + f + "/hf/models/llama --prompt hi");
  EXPECT_EQ(no_tok.code, 2);
  EXPECT_NE(no_tok.out.find("--tokenizer"), std::string::npos) << no_tok.out;
}

TEST(Cli, TokenizeGpt2AndLlama2) {
  PROV_REQUIRE_FIXTURES();
  const std::string f = prov::testing::fixtures_dir();
  Outcome g = run_prov("tokenize " + f + "/real/gpt2-tokenizer --text 'Hello world' --json");
  ASSERT_EQ(g.code, 0) << g.out;
  auto j = nlohmann::json::parse(g.out);
  EXPECT_EQ(j["ids"], nlohmann::json::array({15496, 995}));
  EXPECT_EQ(j["decoded"], "Hello world");
  Outcome l =
      run_prov("tokenize " + f + "/real/llama-2-tiny-random.gguf --text 'Hello world' --json");
  ASSERT_EQ(l.code, 0) << l.out;
  EXPECT_EQ(nlohmann::json::parse(l.out)["ids"], nlohmann::json::array({15043, 3186}));
}

}  // namespace
