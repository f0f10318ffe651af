// End-to-end tests of `prov audit` and `prov verify`: real checkpoints written by `prov example`
// and a zoo derivative, real keys, a real ledger; the signed report checked by the store library.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "lineage/report_render.h"
#include "store/keys.h"
#include "store/ledger.h"
#include "tests/support/prov_cli.h"
#include "tests/support/test_support.h"
#include "zoo/derive.h"

namespace {

using nlohmann::json;
using prov::testing::Outcome;
using prov::testing::run_prov;
using prov::testing::TempDir;

class AuditCli : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(run_prov("example " + dir_.file("base") + " --seed 1").code, 0);
    ASSERT_EQ(run_prov("example " + dir_.file("other") + " --seed 2").code, 0);
    ASSERT_TRUE(prov::zoo::add_noise(dir_.file("base"), dir_.file("noised"), 0.05, 3).is_ok());
    ASSERT_EQ(run_prov("key generate --out " + dir_.file("key")).code, 0);
  }
  TempDir dir_;
};

TEST_F(AuditCli, NamesTheParentSignsAppendsAndVerifies) {
  const std::string out = dir_.file("report");
  Outcome r =
      run_prov("audit " + dir_.file("noised") + " --references " + dir_.file("other") + " " +
                   dir_.file("base") + " --permutations 999 --report " + out + " --key " +
                   dir_.file("key") + " --ledger " + dir_.file("l.db") + " --json",
               /*merge_stderr=*/false);
  ASSERT_EQ(r.code, 0) << r.out;
  const json j = json::parse(r.out);
  const json& v = j["report"]["verdict"];
  EXPECT_EQ(v["relation"], "noised") << r.out;
  EXPECT_EQ(v["parent"], "base");
  // Holm over two references: the smallest raw p (1/1000) doubled.
  EXPECT_DOUBLE_EQ(v["p_value"].get<double>(), 2.0 / 1000);
  EXPECT_EQ(j["report"]["references"][0]["relation"], "independent");
  EXPECT_TRUE(prov::lineage::validate_report(j["report"]).is_ok());
  for (const char* ext : {".json", ".md", ".html", ".dsse.json"}) {
    EXPECT_FALSE(prov::testing::read_file(out + ext).empty()) << ext;
  }
  EXPECT_NE(prov::testing::read_file(out + ".html").find("<svg"), std::string::npos);
  EXPECT_EQ(j["inclusion_proof"]["index"], 0);

  // The ledger holds the signed report with the parent's digest.
  auto ledger = prov::store::Ledger::open(dir_.file("l.db"));
  ASSERT_TRUE(ledger.is_ok());
  auto e = (*ledger)->get(0);
  ASSERT_TRUE(e.is_ok());
  EXPECT_EQ(e->relation, "noised");
  EXPECT_EQ(e->parent_digest, v["parent_digest"].get<std::string>());
  EXPECT_EQ(e->envelope + "\n", prov::testing::read_file(out + ".dsse.json"));

  Outcome ok = run_prov("verify " + out + ".dsse.json --key " + dir_.file("key.pub"));
  EXPECT_EQ(ok.code, 0) << ok.out;
  EXPECT_NE(ok.out.find("OK: noised noised (parent base)"), std::string::npos) << ok.out;

  // Tampering with the signed report, or another key, is refused.
  std::string env = prov::testing::read_file(out + ".dsse.json");
  const size_t at = env.find("\"payload\":\"") + 20;
  env[at] = env[at] == 'A' ? 'B' : 'A';
  std::ofstream(dir_.file("tampered.json")) << env;
  Outcome bad = run_prov("verify " + dir_.file("tampered.json") + " --key " + dir_.file("key.pub"));
  EXPECT_EQ(bad.code, 2) << bad.out;
  ASSERT_EQ(run_prov("key generate --out " + dir_.file("other_key")).code, 0);
  Outcome wrong = run_prov("verify " + out + ".dsse.json --key " + dir_.file("other_key.pub"));
  EXPECT_EQ(wrong.code, 2) << wrong.out;
}

TEST_F(AuditCli, SameInputsGiveTheSameReportBytes) {
  auto audit = [&](const std::string& out) {
    Outcome r = run_prov("audit " + dir_.file("noised") + " --references " + dir_.file("base") +
                         " --permutations 99 --report " + out);
    EXPECT_EQ(r.code, 0) << r.out;
    return prov::testing::read_file(out + ".json");
  };
  const std::string a = audit(dir_.file("a")), b = audit(dir_.file("b"));
  EXPECT_FALSE(a.empty());
  EXPECT_EQ(a, b);
}

TEST_F(AuditCli, IndependentAndBadInput) {
  Outcome r = run_prov("audit " + dir_.file("other") + " --references " + dir_.file("base") +
                       " --permutations 99");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("verdict:    independent"), std::string::npos) << r.out;
  // A ledger without a key, a missing reference, a broken key file.
  EXPECT_EQ(run_prov("audit " + dir_.file("other") + " --references " + dir_.file("base") +
                     " --ledger " + dir_.file("x.db"))
                .code,
            2);
  Outcome missing =
      run_prov("audit " + dir_.file("other") + " --references " + dir_.file("nothing"));
  EXPECT_EQ(missing.code, 2) << missing.out;
  EXPECT_NE(missing.out.find("reference 1"), std::string::npos) << missing.out;
  std::ofstream(dir_.file("badkey")) << "not a key";
  EXPECT_EQ(run_prov("audit " + dir_.file("other") + " --references " + dir_.file("base") +
                     " --key " + dir_.file("badkey"))
                .code,
            2);
}

TEST_F(AuditCli, LineageRecoversTheDerivativeAndScoresAgainstLabels) {
  std::ofstream(dir_.file("labels.json"))
      << R"({"models": {"base": {"relation": "base", "parent": null},
                        "noised": {"relation": "noised", "parent": "base"},
                        "other": {"relation": "independent", "parent": null}}})";
  Outcome r = run_prov("lineage " + dir_.file("base") + " " + dir_.file("noised") + " " +
                           dir_.file("other") + " --permutations 99 --json --labels " +
                           dir_.file("labels.json") + " --svg " + dir_.file("g.svg"),
                       /*merge_stderr=*/false);
  ASSERT_EQ(r.code, 0) << r.out;
  const json j = json::parse(r.out);
  ASSERT_EQ(j["edges"].size(), 1u) << r.out;
  EXPECT_EQ(j["edges"][0]["parent"], "base");
  EXPECT_EQ(j["edges"][0]["child"], "noised");
  EXPECT_EQ(j["edges"][0]["relation"], "noised");
  EXPECT_EQ(j["roots"], json::array({"base", "other"}));
  EXPECT_DOUBLE_EQ(j["accuracy"]["parent_accuracy"].get<double>(), 1.0);
  EXPECT_NE(prov::testing::read_file(dir_.file("g.svg")).find("<svg"), std::string::npos);
  EXPECT_EQ(run_prov("lineage " + dir_.file("base") + " " + dir_.file("nothing")).code, 2);
}

}  // namespace
