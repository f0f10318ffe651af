// End-to-end tests of `prov audit` and `prov verify`: real checkpoints written by `prov example`
// and a zoo derivative, real keys, a real ledger; the signed report checked by the store library.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>

#include "lineage/audit.h"
#include "lineage/report.h"
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

// Golden reports: the same inputs give the same report as the version before the typed report
// (tests/golden/, written by that version), apart from the environment block, which now records
// what ran. Weights only: the weight tests compute the same bits on every machine.
void expect_golden_json(const json& got, const json& want, const std::string& path) {
  if (want.is_number() && got.is_number()) {
    const double a = got.get<double>(), b = want.get<double>();
    EXPECT_NEAR(a, b, 1e-9 * std::max(1.0, std::fabs(b))) << path;
    return;
  }
  ASSERT_EQ(got.type(), want.type()) << path;
  if (got.is_object()) {
    ASSERT_EQ(got.size(), want.size()) << path << ": " << got.dump();
    for (auto it = want.begin(); it != want.end(); ++it) {
      ASSERT_TRUE(got.contains(it.key())) << path << "." << it.key();
      expect_golden_json(got[it.key()], it.value(), path + "." + it.key());
    }
  } else if (got.is_array()) {
    ASSERT_EQ(got.size(), want.size()) << path;
    for (size_t i = 0; i < got.size(); ++i) {
      expect_golden_json(got[i], want[i], path + "[" + std::to_string(i) + "]");
    }
  } else {
    EXPECT_EQ(got, want) << path;
  }
}

std::string without_environment_line(const std::string& text) {
  return std::regex_replace(text, std::regex("Environment: [^\n]*"), "Environment: ...");
}

TEST(AuditGolden, ReportBytesUnchangedApartFromTheEnvironment) {
  const std::string golden = std::string(PROV_SOURCE_DIR) + "/tests/golden/";
  TempDir dir;
  for (const char* args : {"base --seed 1", "other --seed 2", "base16 --seed 1 --dtype BF16"}) {
    ASSERT_EQ(
        prov::testing::run_command("cd " + dir.path() + " && " + PROV_EXE + " example " + args)
            .code,
        0);
  }
  const std::pair<const char*, const char*> cases[] = {
      {"audit-quantized", "base16 --references other base"},
      {"audit-independent", "other --references base base16"}};
  for (const auto& [name, args] : cases) {
    Outcome r = prov::testing::run_command("cd " + dir.path() + " && " + PROV_EXE + " audit " +
                                           args + " --permutations 999 --report " + name);
    ASSERT_EQ(r.code, 0) << r.out;
    json got = json::parse(prov::testing::read_file(dir.file(std::string(name) + ".json")));
    json want = json::parse(prov::testing::read_file(golden + name + ".json"));
    // The environment: what ran (weights only: the CPU's float32 Gram products), not a constant.
    const json env = got["environment"];
    EXPECT_EQ(env["device"], "cpu");
    EXPECT_EQ(env["dtype"], "float32");
    EXPECT_GE(env["threads"].get<int>(), 1);
    EXPECT_FALSE(env.contains("runs"));
    got.erase("environment");
    want.erase("environment");
    expect_golden_json(got, want, name);
    for (const char* ext : {".md", ".html"}) {
      EXPECT_EQ(
          without_environment_line(prov::testing::read_file(dir.file(std::string(name) + ext))),
          without_environment_line(prov::testing::read_file(golden + name + ext)))
          << name << ext;
    }
  }
}

// Output tests need real models with tokenizers: the zoo-dev family (another training stack),
// its base B, a noised copy of B, and three independents (C, I1, I3), copied into one folder.
class AuditOutputs : public ::testing::Test {
 protected:
  void SetUp() override {
    PROV_REQUIRE_FIXTURES();
    namespace fs = std::filesystem;
    const std::string dev = prov::testing::fixtures_dir() + "/zoo-dev/";
    for (const char* m : {"B", "C", "I1", "I3"}) {
      fs::copy(dev + m, dir_.file(m), fs::copy_options::recursive);
    }
    ASSERT_TRUE(prov::zoo::add_noise(dev + "B", dir_.file("noised"), 0.002, 5).is_ok());
  }
  std::string outputs() const {
    return " --suite natural-v1:60 --xlik-probes 30 --image-probes 80 --cache " +
           dir_.file("cache");
  }
  TempDir dir_;
};

// Candidate, reference and controls that all share one file name (model.bin downloads, runs
// saved as "model"): models are told apart by their content, so the verdict is the one the same
// files get under unique names, and the report names them by their path tails.
TEST_F(AuditOutputs, CollidingNamesGiveTheVerdictOfUniqueNames) {
  namespace fs = std::filesystem;
  const std::vector<std::string> members = {"noised", "B", "C", "I1", "I3"};
  for (const auto& m : members) {
    fs::create_directories(dir_.file("runs/" + m));
    fs::copy(dir_.file(m), dir_.file("runs/" + m + "/model"), fs::copy_options::recursive);
  }
  auto audit = [&](const std::function<std::string(const std::string&)>& path) {
    Outcome r = run_prov("audit " + path("noised") + " --references " + path("B") + " --controls " +
                             path("C") + " " + path("I1") + " " + path("I3") + outputs() +
                             " --permutations 999 --json",
                         /*merge_stderr=*/false);
    EXPECT_EQ(r.code, 0) << r.out;
    return json::parse(r.out)["report"];
  };
  const json unique = audit([&](const std::string& m) { return dir_.file(m); });
  const json same = audit([&](const std::string& m) { return dir_.file("runs/" + m + "/model"); });
  EXPECT_EQ(same["verdict"]["relation"], unique["verdict"]["relation"]);
  EXPECT_EQ(same["verdict"]["p_value"], unique["verdict"]["p_value"]);
  EXPECT_EQ(same["candidate"]["digest"], unique["candidate"]["digest"]);
  EXPECT_EQ(same["candidate"]["name"], "noised/model");
  EXPECT_EQ(same["verdict"]["parent"], "B/model");
  // Every output row ran against the three controls, none dropped as "the candidate".
  int rows = 0;
  for (const auto& e : same["evidence"]) {
    if (e["layer"] != "outputs" && e["layer"] != "distillation") continue;
    ++rows;
    EXPECT_EQ(e["detail"]["controls"], json::array({"C/model", "I1/model", "I3/model"}))
        << e.dump();
  }
  EXPECT_GT(rows, 0);
  for (size_t i = 0; i < unique["evidence"].size(); ++i) {
    EXPECT_EQ(same["evidence"][i]["p_value"], unique["evidence"][i]["p_value"]) << i;
    EXPECT_EQ(same["evidence"][i]["value"], unique["evidence"][i]["value"]) << i;
  }
}

// One audit opens and hashes each checkpoint once, however many stages (weights, signatures,
// cross-likelihood scores, logit images) read it.
TEST_F(AuditOutputs, EachCheckpointIsOpenedAndHashedOnce) {
  ::setenv("PROV_TORCH_PLUGIN", PROV_TORCH_PLUGIN_PATH, 1);
  prov::lineage::AuditRequest q;
  q.candidate = dir_.file("noised");
  q.references = {dir_.file("B"), dir_.file("C")};
  q.controls = {dir_.file("I1"), dir_.file("I3"), dir_.file("C")};
  q.outputs.suite = "natural-v1:60";
  q.outputs.xlik_probes = 30;
  q.collect.image_probes = 80;
  q.collect.cache_dir = dir_.file("session-cache");
  q.weights.permutations = 99;
  q.tool_version = "test";
  prov::lineage::AuditSession session(q);
  auto r = session.run();
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  // C is a reference and a control: one subject.
  EXPECT_EQ(session.subjects().size(), 5u);
  EXPECT_EQ(session.subjects().opens(), 5u);
  EXPECT_EQ(session.subjects().hashes(), 5u);
  // Every model's signatures were collected (three suites each) and recorded in the report.
  ASSERT_TRUE(r->report.environment && r->report.environment->runs);
  EXPECT_EQ(r->report.environment->runs->size(), 6u);  // one per role
  for (const auto& run : *r->report.environment->runs) {
    EXPECT_EQ(run.device, "cpu");
    EXPECT_EQ(run.dtype, "float32");
    EXPECT_EQ(run.source, "checkpoint");
  }
  // A noised copy shares B's weights (issue 21 is about which name it gets).
  EXPECT_TRUE(prov::is_weight_derived(r->report.verdict.relation)) << r->report.verdict.relation;
}

// One evidence set, three commands: the verdict bench accuracy publishes for a pair is the one
// prov audit ships and the relation prov lineage draws.
TEST_F(AuditOutputs, AuditBenchAndLineageGiveTheSameVerdict) {
  // One architecture label for all: every other root is a control of B's tests.
  std::ofstream(dir_.file("labels.json"))
      << R"({"models": {"B": {"relation": "base", "parent": null, "architecture": "x"},
                        "noised": {"relation": "noised", "parent": "B", "architecture": "x"},
                        "C": {"relation": "independent", "parent": null, "architecture": "x"},
                        "I1": {"relation": "independent", "parent": null, "architecture": "x"},
                        "I3": {"relation": "independent", "parent": null, "architecture": "x"}}})";
  const std::string common = outputs() + " --permutations 999";
  Outcome bench = run_prov("bench accuracy " + dir_.path() + " --access weights,both" + common +
                           " --json " + dir_.file("bench.json"));
  ASSERT_EQ(bench.code, 0) << bench.out;
  const json rows = json::parse(prov::testing::read_file(dir_.file("bench.json")))["pairs"];
  auto bench_verdict = [&](const std::string& level, const std::string& cand,
                           const std::string& ref) {
    for (const auto& row : rows[level]) {
      if (row["candidate"] == cand && row["reference"] == ref) return row["verdict"];
    }
    ADD_FAILURE() << "no " << level << " row " << cand << " vs " << ref;
    return json();
  };
  // Weights alone.
  for (const std::string cand : {"noised", "C"}) {
    Outcome a = run_prov("audit " + dir_.file(cand) + " --references " + dir_.file("B") +
                             " --permutations 999 --json",
                         false);
    ASSERT_EQ(a.code, 0) << a.out;
    EXPECT_EQ(json::parse(a.out)["report"]["verdict"]["relation"],
              bench_verdict("weights", cand, "B"))
        << cand;
  }
  // Both layers: the bench's controls of (noised, B) are the other roots.
  Outcome a = run_prov("audit " + dir_.file("noised") + " --references " + dir_.file("B") +
                           " --controls " + dir_.file("C") + " " + dir_.file("I1") + " " +
                           dir_.file("I3") + common + " --json",
                       false);
  ASSERT_EQ(a.code, 0) << a.out;
  const json verdict = json::parse(a.out)["report"]["verdict"];
  EXPECT_EQ(verdict["relation"], bench_verdict("both", "noised", "B"));
  const auto relation = prov::parse_relation(verdict["relation"].get<std::string>());
  ASSERT_TRUE(relation.has_value());
  EXPECT_TRUE(prov::is_weight_derived(*relation)) << verdict.dump();
  // prov lineage at the same per-pair level (3 pairs: alpha 0.03 is 0.01 per pair).
  Outcome l = run_prov("lineage " + dir_.file("B") + " " + dir_.file("noised") + " " +
                           dir_.file("C") + " --permutations 999 --alpha 0.03 --json",
                       false);
  ASSERT_EQ(l.code, 0) << l.out;
  const json lj = json::parse(l.out);
  ASSERT_EQ(lj["edges"].size(), 1u) << l.out;
  EXPECT_EQ(lj["edges"][0]["child"], "noised");
  EXPECT_EQ(lj["edges"][0]["relation"], verdict["relation"]);
}

}  // namespace
