// prov bench accuracy end to end: on a family built with `prov zoo build --preset test` (all
// access levels, a small probe suite) and on the shared zoo-dev fixtures (weights), plus its
// errors on bad families. The zoo build needs the corpus packages (wordnet-base, fortunes-min).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "tests/support/prov_cli.h"
#include "tests/support/test_support.h"

namespace {

using prov::testing::have_corpora;
using prov::testing::Outcome;
using prov::testing::run_prov;
using prov::testing::TempDir;

nlohmann::json read_json(const std::string& path) {
  std::ifstream f(path);
  return nlohmann::json::parse(f);
}

const nlohmann::json* find_class(const nlohmann::json& summary, const std::string& name) {
  for (const auto& c : summary["classes"]) {
    if (c["class"] == name) return &c;
  }
  return nullptr;
}

TEST(BenchCli, AccuracyOnATestZooAtEveryAccessLevel) {
  if (!have_corpora()) GTEST_SKIP() << "wordnet-base / fortunes-min not installed";
  TempDir dir;
  const std::string zoo = dir.file("zoo");
  Outcome b = run_prov("zoo build " + zoo + " --preset test");
  ASSERT_EQ(b.code, 0) << b.out;
  const std::string json = dir.file("acc.json"), md = dir.file("acc.md");
  const std::string args = "bench accuracy " + zoo +
                           " --suite natural-v1:30 --xlik-probes 20 --permutations 49 --cache " +
                           dir.file("cache") + " --json " + json + " --md " + md;
  Outcome r = run_prov(args);
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = read_json(json);
  const auto& s = j["summary"];
  const int n = s["families"][0]["models"].get<int>();
  EXPECT_EQ(n, 18);
  // Weights: every ordered pair.
  const auto& w = s["access"]["weights"];
  EXPECT_EQ(w["pairs"].get<int>(), n * (n - 1));
  EXPECT_EQ(j["pairs"]["weights"].size(), static_cast<size_t>(n * (n - 1)));
  EXPECT_EQ(w["errors"], 0);
  // base_llama and its 8 weight derivatives: 9 * 8 related ordered pairs.
  EXPECT_EQ(w["positives"].get<int>(), 72);
  // The quantized copies are decided by the identity layer.
  int quant = 0;
  for (const auto& p : j["pairs"]["weights"]) {
    if ((p["candidate"] == "quant_int8" || p["candidate"] == "quant_q8_0") &&
        p["reference"] == "base_llama") {
      EXPECT_EQ(p["relation"], "quantized") << p.dump();
      ++quant;
    }
  }
  EXPECT_EQ(quant, 2);
  const auto* q = find_class(w, "quantized");
  ASSERT_NE(q, nullptr);
  EXPECT_DOUBLE_EQ((*q)["auroc"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ((*q)["tpr_p_0.01"].get<double>(), 1.0);
  for (const char* level : {"weights", "outputs", "both"}) {
    const auto& a = s["access"][level];
    ASSERT_TRUE(a.is_object()) << level;
    for (const auto& c : a["classes"]) {
      if (c["auroc"].is_number()) {
        EXPECT_GE(c["auroc"].get<double>(), 0.0);
        EXPECT_LE(c["auroc"].get<double>(), 1.0);
      }
    }
    const auto& cal = a["calibration"][0];
    EXPECT_EQ(cal["subset"], "all negatives") << level;
    for (const char* al : {"alpha_0.01", "alpha_0.05"}) {
      EXPECT_TRUE(cal[al]["rejected"].is_number()) << level;
      EXPECT_TRUE(cal[al]["upper95"].is_number()) << level;
      EXPECT_LE(cal[al]["rejected"].get<int>(), cal[al]["n"].get<int>());
    }
    EXPECT_TRUE(a["relation_accuracy"]["pairs"].is_number()) << level;
    EXPECT_TRUE(a["parent_accuracy"]["candidates"].is_number()) << level;
    EXPECT_TRUE(a["test_null_hypothesis"].is_string()) << level;
  }
  // Outputs: 5 roots x 17 other members; base_llama is the ancestor of the 13 non-roots.
  const auto& o = s["access"]["outputs"];
  EXPECT_EQ(o["pairs"].get<int>(), 5 * 17);
  EXPECT_EQ(o["positives"].get<int>(), 13);
  EXPECT_NE(find_class(o, "distilled_logit"), nullptr);
  EXPECT_NE(find_class(o, "distilled_seq (other tokenizer)"), nullptr);
  // Leave-one-out controls: never the candidate or the reference.
  for (const auto& p : j["pairs"]["outputs"]) {
    for (const auto& c : p["controls"]) {
      EXPECT_NE(c, p["candidate"]);
      EXPECT_NE(c, p["reference"]);
    }
    EXPECT_GE(p["controls"].size(), 2u);
  }
  // Both: the weight-derived copies are named by the weights.
  const auto& both = s["access"]["both"];
  EXPECT_EQ(both["pairs"].get<int>(), 5 * 17);
  const auto* wd = find_class(both, "weight-derived");
  ASSERT_NE(wd, nullptr);
  EXPECT_DOUBLE_EQ((*wd)["auroc"].get<double>(), 1.0);
  // Lineage graph: the quantized copies hang under base_llama.
  ASSERT_EQ(s["lineage"].size(), 1u);
  int quant_edges = 0;
  for (const auto& e : s["lineage"][0]["edges"]) {
    if (e["relation"] == "quantized") {
      EXPECT_EQ(e["parent"], "base_llama") << e.dump();
      ++quant_edges;
    }
  }
  EXPECT_EQ(quant_edges, 2);
  // The Markdown is headed by the command line.
  const std::string text = prov::testing::read_file(md);
  EXPECT_NE(text.find("bench accuracy " + zoo), std::string::npos) << text;
  EXPECT_NE(text.find("--xlik-probes 20"), std::string::npos);
  EXPECT_NE(text.find("| calibration (negatives"), std::string::npos);
  EXPECT_NE(text.find("**Lineage graph from weights**"), std::string::npos);
}

TEST(BenchCli, ZooDevWeightDerivedPairsAreSeparated) {
  PROV_REQUIRE_FIXTURES();
  const std::string dev = prov::testing::fixtures_dir() + "/zoo-dev";
  if (!std::filesystem::exists(dev + "/labels.json")) GTEST_SKIP() << "no zoo-dev fixture";
  TempDir dir;
  // A document with a marked block: the tables replace its content, the rest stays.
  const std::string doc = dir.file("doc.md");
  {
    std::ofstream f(doc);
    f << "# before\n<!-- prov bench accuracy zoo-dev -->\nold tables\n"
         "<!-- /prov bench accuracy zoo-dev -->\n# after\n";
  }
  Outcome r = run_prov("bench accuracy " + dev + " --access weights --permutations 99 --json " +
                       dir.file("a.json") + " --update-doc " + doc);
  ASSERT_EQ(r.code, 0) << r.out;
  const std::string updated = prov::testing::read_file(doc);
  EXPECT_EQ(updated.find("old tables"), std::string::npos) << updated;
  EXPECT_EQ(updated.rfind("# before\n<!-- prov bench accuracy zoo-dev -->\n```sh\n", 0), 0u)
      << updated;
  EXPECT_NE(updated.find("| finetuned | 2 |"), std::string::npos) << updated;
  EXPECT_NE(updated.find("<!-- /prov bench accuracy zoo-dev -->\n# after\n"), std::string::npos);
  // Without the markers the document is left alone and the run fails, naming the block.
  const std::string plain = dir.file("plain.md");
  {
    std::ofstream f(plain);
    f << "no markers\n";
  }
  Outcome m = run_prov("bench accuracy " + dev +
                       " --access weights --permutations 9 --update-doc " + plain);
  EXPECT_EQ(m.code, 2) << m.out;
  EXPECT_NE(m.out.find("no block marked"), std::string::npos) << m.out;
  EXPECT_EQ(prov::testing::read_file(plain), "no markers\n");
  const auto s = read_json(dir.file("a.json"))["summary"];
  const auto& w = s["access"]["weights"];
  EXPECT_EQ(w["pairs"].get<int>(), 30);
  EXPECT_EQ(w["positives"].get<int>(), 2);  // B <-> B_ft_fortunes
  const auto* c = find_class(w, "finetuned");
  ASSERT_NE(c, nullptr);
  EXPECT_DOUBLE_EQ((*c)["auroc"].get<double>(), 1.0);
  EXPECT_EQ(w["relation_accuracy"]["correct"], 1);
  EXPECT_FALSE(s["access"].contains("outputs"));
}

TEST(BenchCli, BadFamiliesAreRefusedWithTheProblemNamed) {
  TempDir dir;
  std::filesystem::create_directory(dir.file("nolabels"));
  Outcome a = run_prov("bench accuracy " + dir.file("nolabels") + " --access weights");
  EXPECT_EQ(a.code, 2) << a.out;
  EXPECT_NE(a.out.find("labels.json"), std::string::npos) << a.out;

  std::filesystem::create_directory(dir.file("bad"));
  prov::testing::write_file(dir.file("bad/labels.json"), "{\"models\": [1, 2]");
  Outcome b = run_prov("bench accuracy " + dir.file("bad") + " --access weights");
  EXPECT_EQ(b.code, 2) << b.out;
  EXPECT_NE(b.out.find("not valid JSON"), std::string::npos) << b.out;

  std::filesystem::create_directory(dir.file("empty"));
  prov::testing::write_file(dir.file("empty/labels.json"),
                            R"({"models": {"m": {"relation": "base", "parent": null}}})");
  Outcome c = run_prov("bench accuracy " + dir.file("empty") + " --access weights");
  EXPECT_EQ(c.code, 2) << c.out;
  EXPECT_NE(c.out.find("no member"), std::string::npos) << c.out;

  Outcome d = run_prov("bench accuracy " + dir.file("empty") + " --access nonsense");
  EXPECT_EQ(d.code, 2) << d.out;
  EXPECT_NE(d.out.find("nonsense"), std::string::npos) << d.out;
}

}  // namespace
