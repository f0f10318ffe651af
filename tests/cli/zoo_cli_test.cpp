// prov zoo build end to end with the seconds-long "test" preset (same members and recipes as
// "tiny", barely trained). Needs the corpus packages (wordnet-base, fortunes-min) that
// scripts/setup installs; skips without them.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "tests/support/test_support.h"

namespace {

using prov::testing::Outcome;

Outcome prov(const std::string& args) {
  return prov::testing::run_command(std::string(PROV_EXE) + " " + args);
}

bool have_corpora() {
  return std::filesystem::exists("/usr/share/wordnet/data.noun") &&
         std::filesystem::exists("/usr/share/games/fortunes/fortunes");
}

TEST(ZooCli, BuildsEveryMemberWithLabelsAndReusesThem) {
  if (!have_corpora()) GTEST_SKIP() << "wordnet-base / fortunes-min not installed";
  prov::testing::TempDir dir;
  const std::string out = dir.file("zoo");
  Outcome r = prov("zoo build " + out + " --preset test");
  ASSERT_EQ(r.code, 0) << r.out;
  std::ifstream f(out + "/labels.json");
  auto labels = nlohmann::json::parse(f);
  const auto& m = labels["models"];
  std::map<std::string, int> by_relation;
  for (auto it = m.begin(); it != m.end(); ++it) {
    by_relation[it.value()["relation"].get<std::string>()]++;
    for (const char* file : {"config.json", "model.safetensors", "tokenizer.json"}) {
      EXPECT_TRUE(std::filesystem::exists(out + "/" + it.key() + "/" + file))
          << it.key() << " " << file;
    }
    EXPECT_TRUE(it.value()["val_loss"].is_number()) << it.key();
  }
  EXPECT_EQ(by_relation["base"], 2);
  EXPECT_EQ(by_relation["independent"], 3);
  EXPECT_EQ(by_relation["finetuned"], 2);
  EXPECT_EQ(by_relation["quantized"], 2);
  EXPECT_EQ(by_relation["permuted"], 1);
  EXPECT_EQ(by_relation["noised"], 1);
  EXPECT_EQ(by_relation["pruned"], 1);
  EXPECT_EQ(by_relation["merged"], 1);
  EXPECT_EQ(by_relation["distilled_logit"], 1);
  EXPECT_EQ(by_relation["distilled_seq"], 4);
  EXPECT_EQ(m["merged"]["parents"], nlohmann::json::array({"base_llama", "ft_strong"}));
  EXPECT_EQ(m["distill_seq_alt_tok"]["tokenizer"], "alt");
  // The members are runnable checkpoints.
  Outcome g = prov("generate " + out + "/distill_seq_100 --prompt entity --max-tokens 4 --json");
  ASSERT_EQ(g.code, 0) << g.out;

  // Weight lineage on the zoo's derivatives (identity layer, then the Gram tests).
  auto relation = [&](const std::string& cand, const std::string& ref) {
    Outcome c = prov("compare " + out + "/" + cand + " " + out + "/" + ref + " --json");
    EXPECT_EQ(c.code, 0) << c.out;
    return nlohmann::json::parse(c.out)["relation"].get<std::string>();
  };
  EXPECT_EQ(relation("base_llama", "base_llama"), "identical");
  EXPECT_EQ(relation("quant_q8_0", "base_llama"), "quantized");
  EXPECT_EQ(relation("quant_int8", "base_llama"), "quantized");
  EXPECT_EQ(relation("permuted", "base_llama"), "permuted");
  EXPECT_EQ(relation("noised", "base_llama"), "noised");
  EXPECT_EQ(relation("pruned", "base_llama"), "pruned");
  EXPECT_EQ(relation("ft_strong", "base_llama"), "finetuned");
  EXPECT_EQ(relation("ind_llama_seed", "base_llama"), "independent");
  EXPECT_EQ(relation("distill_seq_100", "base_llama"), "independent");

  // A second build reuses everything: same labels, same weights.
  const std::string before = prov::testing::read_file(out + "/base_llama/model.safetensors");
  Outcome again = prov("zoo build " + out + " --preset test");
  ASSERT_EQ(again.code, 0) << again.out;
  EXPECT_EQ(prov::testing::read_file(out + "/base_llama/model.safetensors"), before);
  std::ifstream f2(out + "/labels.json");
  EXPECT_EQ(nlohmann::json::parse(f2), labels);

  // Seed twins and replicate students are added to the same zoo; the rest is reused.
  Outcome more = prov("zoo build " + out + " --preset test --seed-twins 1 --student-seeds 1");
  ASSERT_EQ(more.code, 0) << more.out;
  EXPECT_EQ(prov::testing::read_file(out + "/base_llama/model.safetensors"), before);
  std::ifstream f3(out + "/labels.json");
  const auto m3 = nlohmann::json::parse(f3)["models"];
  EXPECT_EQ(m3.size(), m.size() + 6);
  EXPECT_EQ(m3["twin_llama_01"]["relation"], "independent");
  for (const char* s : {"distill_logit_s1", "distill_seq_100_s1", "distill_seq_50_s1",
                        "distill_seq_20_s1", "distill_seq_alt_tok_s1"}) {
    ASSERT_TRUE(m3.contains(s)) << s;
    EXPECT_EQ(m3[s]["parent"], "base_llama") << s;
    EXPECT_TRUE(std::filesystem::exists(out + "/" + s + "/model.safetensors")) << s;
  }
  EXPECT_EQ(m3["distill_seq_100_s1"]["relation"], "distilled_seq");
  EXPECT_EQ(m3["distill_logit_s1"]["relation"], "distilled_logit");
  EXPECT_EQ(m3["distill_seq_alt_tok_s1"]["tokenizer"], "alt");
  EXPECT_NE(m3["distill_seq_100_s1"]["recipe"], m3["distill_seq_100"]["recipe"]);

  EXPECT_EQ(prov("zoo build " + out + " --preset huge").code, 2);
}

}  // namespace
