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
#include <set>

#include "tests/support/prov_cli.h"
#include "tests/support/test_support.h"

namespace {

using prov::testing::have_corpora;
using prov::testing::Outcome;
using prov::testing::run_prov;

TEST(ZooCli, BuildsEveryMemberWithLabelsAndReusesThem) {
  if (!have_corpora()) GTEST_SKIP() << "wordnet-base / fortunes-min not installed";
  prov::testing::TempDir dir;
  const std::string out = dir.file("zoo");
  Outcome r = run_prov("zoo build " + out + " --preset test");
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
  Outcome g =
      run_prov("generate " + out + "/distill_seq_100 --prompt entity --max-tokens 4 --json");
  ASSERT_EQ(g.code, 0) << g.out;

  // Weight lineage on the zoo's derivatives (identity layer, then the Gram tests).
  auto relation = [&](const std::string& cand, const std::string& ref) {
    Outcome c = run_prov("compare " + out + "/" + cand + " " + out + "/" + ref + " --json");
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
  // The merge reads as a fine-tune against one parent, and as `merged` given the other.
  EXPECT_EQ(relation("merged", "base_llama"), "finetuned");
  Outcome mg = run_prov("compare " + out + "/merged " + out + "/base_llama --merge-with " + out +
                        "/ft_strong --json");
  ASSERT_EQ(mg.code, 0) << mg.out;
  auto mj = nlohmann::json::parse(mg.out);
  EXPECT_EQ(mj["relation"], "merged");
  EXPECT_NEAR(mj["merge"]["alpha"].get<double>(), 0.5, 1e-3);
  EXPECT_EQ(mj["evidence"].back()["method"], "merge-fit");
  Outcome nm = run_prov("compare " + out + "/ft_light " + out + "/base_llama --merge-with " + out +
                        "/ft_strong --json");
  ASSERT_EQ(nm.code, 0) << nm.out;
  EXPECT_EQ(nlohmann::json::parse(nm.out)["relation"], "finetuned");
  EXPECT_EQ(
      run_prov("compare " + out + "/merged " + out + "/base_llama --merge-with " + out + "/nowhere")
          .code,
      2);
  // prov lineage finds the merge among the fine-tunes and hangs it under one parent.
  Outcome lin = run_prov("lineage " + out + "/base_llama " + out + "/ft_light " + out +
                             "/ft_strong " + out + "/merged --permutations 99 --json",
                         /*merge_stderr=*/false);
  ASSERT_EQ(lin.code, 0) << lin.out;
  bool merge_edge = false;
  const auto lj = nlohmann::json::parse(lin.out);
  for (const auto& e : lj["edges"]) {
    if (e["child"] != "merged") continue;
    merge_edge = true;
    EXPECT_EQ(e["relation"], "merged");
    EXPECT_EQ(e["parent"], "base_llama");
    EXPECT_EQ(e["second_parent"], "ft_strong");
    EXPECT_EQ(e["direction_basis"], "merge fit");
  }
  EXPECT_TRUE(merge_edge) << lin.out;

  // A second build reuses everything: same labels, same weights.
  const std::string before = prov::testing::read_file(out + "/base_llama/model.safetensors");
  Outcome again = run_prov("zoo build " + out + " --preset test");
  ASSERT_EQ(again.code, 0) << again.out;
  EXPECT_EQ(prov::testing::read_file(out + "/base_llama/model.safetensors"), before);
  std::ifstream f2(out + "/labels.json");
  EXPECT_EQ(nlohmann::json::parse(f2), labels);

  // Seed twins and replicate students are added to the same zoo; the rest is reused.
  Outcome more = run_prov("zoo build " + out + " --preset test --seed-twins 1 --student-seeds 1");
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

  EXPECT_EQ(run_prov("zoo build " + out + " --preset huge").code, 2);
}

// prov demo end to end on the test preset: the demo family, two signed audits in a fresh ledger,
// the disclosure package and the graph; a second run reuses the family and starts a new ledger.
TEST(ZooCli, DemoAuditsSignsAndExports) {
  if (!have_corpora()) GTEST_SKIP() << "wordnet-base / fortunes-min not installed";
  prov::testing::TempDir dir;
  const std::string out = dir.file("demo");
  Outcome r = run_prov("demo " + out + " --preset test");
  ASSERT_EQ(r.code, 0) << r.out;
  // The transcript names the commands it ran.
  EXPECT_NE(r.out.find("$ prov zoo build"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("$ prov audit"), std::string::npos) << r.out;
  // prov lineage ran the output tests of the weight roots against the independents.
  EXPECT_NE(r.out.find("output tests (students: the weight roots"), std::string::npos) << r.out;
  std::ifstream lf(out + "/family/labels.json");
  const auto labels = nlohmann::json::parse(lf);
  EXPECT_EQ(labels["family"], "demo");
  std::set<std::string> members;
  for (auto it = labels["models"].begin(); it != labels["models"].end(); ++it) {
    members.insert(it.key());
  }
  EXPECT_EQ(members, (std::set<std::string>{"base_llama", "ft_strong", "distill_seq_100",
                                            "ind_llama_seed", "twin_llama_01", "twin_llama_02",
                                            "twin_llama_03", "twin_llama_04"}));
  for (const char* f : {"audit-ft_strong.json", "audit-ft_strong.html", "audit-ft_strong.md",
                        "audit-ft_strong.dsse.json", "audit-distill_seq_100.json",
                        "audit-distill_seq_100.dsse.json", "ledger.db", "checkpoint.txt",
                        "disclosure-ft_strong.json", "lineage.svg", "key", "key.pub"}) {
    EXPECT_TRUE(std::filesystem::exists(out + "/" + f)) << f;
  }
  std::ifstream af(out + "/audit-ft_strong.json");
  const auto ft = nlohmann::json::parse(af);
  EXPECT_EQ(ft["verdict"]["relation"], "finetuned");
  EXPECT_EQ(ft["verdict"]["parent"], "base_llama");
  // The student's audit ran the output tests with the five independents as controls.
  std::ifstream sf(out + "/audit-distill_seq_100.json");
  const auto st = nlohmann::json::parse(sf);
  bool outputs = false;
  for (const auto& e : st["evidence"]) outputs |= e.value("layer", "") == "outputs";
  EXPECT_TRUE(outputs) << st.dump(1);
  // The ledger holds both signed reports and verifies; the envelopes verify with the public key.
  Outcome lv = run_prov("ledger verify " + out + "/ledger.db");
  EXPECT_EQ(lv.code, 0) << lv.out;
  Outcome q = run_prov("ledger query " + out + "/ledger.db --json");
  ASSERT_EQ(q.code, 0) << q.out;
  const auto entries = nlohmann::json::parse(q.out);
  ASSERT_EQ(entries.size(), 2u) << q.out;
  EXPECT_EQ(entries[0]["relation"], "finetuned");
  EXPECT_EQ(entries[0]["subject_digest"],
            "sha256:" + ft["candidate"]["digest"]["sha256"].get<std::string>());
  EXPECT_EQ(entries[1]["subject_digest"],
            "sha256:" + st["candidate"]["digest"]["sha256"].get<std::string>());
  EXPECT_EQ(
      run_prov("verify " + out + "/audit-distill_seq_100.dsse.json --key " + out + "/key.pub").code,
      0);

  // Again: the family is reused (same weights), the findings are fresh.
  const std::string before = prov::testing::read_file(out + "/family/base_llama/model.safetensors");
  Outcome again = run_prov("demo " + out + " --preset test");
  ASSERT_EQ(again.code, 0) << again.out;
  EXPECT_EQ(prov::testing::read_file(out + "/family/base_llama/model.safetensors"), before);
  Outcome q2 = run_prov("ledger query " + out + "/ledger.db --json");
  ASSERT_EQ(q2.code, 0) << q2.out;
  EXPECT_EQ(nlohmann::json::parse(q2.out).size(), 2u);

  // prov lineage --controls with a control that does not exist names it and exits 2.
  Outcome bad = run_prov("lineage " + out + "/family/base_llama " + out +
                         "/family/distill_seq_100 --controls " + out + "/missing " + out +
                         "/family/twin_llama_01 --cache " + out + "/cache");
  EXPECT_EQ(bad.code, 2) << bad.out;
  EXPECT_NE(bad.out.find("missing"), std::string::npos) << bad.out;

  // A preset it does not know is refused.
  EXPECT_EQ(run_prov("demo " + out + " --preset huge").code, 2);
}

}  // namespace
