// End-to-end tests of `prov compare --outputs-only` and `prov suite cross`: real checkpoints (the
// zoo-dev fixtures and a noised copy of one), signatures and cross-likelihood scores collected by
// the command into its cache, and a candidate served over HTTP by `prov serve` on loopback.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "tests/support/prov_cli.h"
#include "tests/support/serve_process.h"
#include "tests/support/test_support.h"
#include "zoo/derive.h"

namespace {

using nlohmann::json;
using prov::testing::Outcome;
using prov::testing::run_prov;
using prov::testing::TempDir;

std::string dev(const std::string& name) {
  return prov::testing::fixtures_dir() + "/zoo-dev/" + name;
}

class OutputsCli : public ::testing::Test {
 protected:
  // One signature cache for the suite: the fixtures' signatures are collected once.
  static void SetUpTestSuite() { cache_ = new TempDir(); }
  static void TearDownTestSuite() {
    delete cache_;
    cache_ = nullptr;
  }
  void SetUp() override {
    PROV_REQUIRE_FIXTURES();
    ASSERT_TRUE(prov::zoo::add_noise(dev("B"), dir_.file("copy"), 0.002, 5).is_ok());
    controls_ = dev("C") + " " + dev("I1") + " " + dev("I3");
  }
  std::string common() const {
    return " --outputs-only --suite natural-v1:40 --xlik-probes 20 --cache " + cache_->file("c");
  }
  static TempDir* cache_;
  TempDir dir_;
  std::string controls_;
};

TempDir* OutputsCli::cache_ = nullptr;

TEST_F(OutputsCli, NoisedCopyIsRelatedAndAnIndependentIsNot) {
  Outcome r = run_prov("compare " + dir_.file("copy") + " " + dev("B") + " --controls " +
                           controls_ + common() + " --json",
                       /*merge_stderr=*/false);
  ASSERT_EQ(r.code, 0) << r.out;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["relation"], "related") << r.out;
  EXPECT_LT(j["p_value"].get<double>(), 0.01);
  EXPECT_EQ(j["probes_used"], 20);  // restricted to the scored probes
  EXPECT_EQ(j["controls"].size(), 3u);
  // idiosyncratic_greedy, cross_likelihood_ratio and logit_image (every model a checkpoint: each
  // answered logit-image-v1:256 with whole distributions).
  ASSERT_EQ(j["evidence"].size(), 3u);
  for (const auto& e : j["evidence"]) {
    EXPECT_FALSE(e["null_hypothesis"].get<std::string>().empty());
    EXPECT_EQ(e["probes"], e["statistic"] == "logit_image" ? 256 : 20) << e.dump();
  }
  EXPECT_EQ(j["logit_image"]["probes"], 256);
  EXPECT_GT(j["logit_image"]["candidate_rank"].get<int>(), 0);
  // A noised copy keeps the reference's unembedding: its logit image is B's.
  EXPECT_EQ(j["kind"], "weight_derived") << r.out;
  EXPECT_FALSE(j.contains("direction"));
  EXPECT_NE(j["combination"].get<std::string>().find("weighted Bonferroni"), std::string::npos);

  // Without the logit image, the copy reads as a distilled student (its answers are B's).
  Outcome t = run_prov("compare " + dir_.file("copy") + " " + dev("B") + " --controls " +
                           controls_ + common() + " --image-probes 0 --json",
                       false);
  ASSERT_EQ(t.code, 0) << t.out;
  const json tj = json::parse(t.out);
  EXPECT_EQ(tj["evidence"].size(), 2u);
  EXPECT_FALSE(tj.contains("logit_image"));
  EXPECT_TRUE(tj["kind"] == "distilled_logit" || tj["kind"] == "distilled_seq") << t.out;
  // The direction is given for sequence distillation only.
  EXPECT_EQ(tj.contains("direction"), tj["kind"] == "distilled_seq");

  // I1 against B, controls C and I3 (B's other independents): not related.
  Outcome n = run_prov(
      "compare " + dev("I1") + " " + dev("B") + " --controls " + controls_ + common() + " --json",
      false);
  ASSERT_EQ(n.code, 0) << n.out;
  const json k = json::parse(n.out);
  EXPECT_EQ(k["relation"], "independent") << n.out;
  EXPECT_EQ(k["controls"].size(), 2u);  // I1 left out of its own controls
  EXPECT_GT(k["p_value"].get<double>(), 0.01);

  // The cached signatures make a rerun give the same bytes.
  Outcome again = run_prov("compare " + dir_.file("copy") + " " + dev("B") + " --controls " +
                               controls_ + common() + " --json",
                           false);
  EXPECT_EQ(again.out, r.out);
}

TEST_F(OutputsCli, SignatureFilesAndCrossSuites) {
  // Signatures collected by prov probe, then compared from the files alone.
  for (const std::string m : {"B", "C", "I1", "I3"}) {
    ASSERT_EQ(
        run_prov("probe " + dev(m) + " --suite natural-v1:30 -q -o " + dir_.file(m + ".sig")).code,
        0);
  }
  ASSERT_EQ(run_prov("probe " + dir_.file("copy") + " --suite natural-v1:30 -q -o " +
                     dir_.file("copy.sig"))
                .code,
            0);
  Outcome r = run_prov("compare " + dir_.file("copy.sig") + " " + dir_.file("B.sig") +
                       " --outputs-only --controls " + dir_.file("C.sig") + " " +
                       dir_.file("I1.sig") + " " + dir_.file("I3.sig"));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("relation:  related"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("idiosyncratic_greedy"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("cross_likelihood"), std::string::npos) << r.out;  // no scores given

  // prov suite cross writes a valid scoring suite over the signatures' texts.
  Outcome x =
      run_prov("suite cross --suite natural-v1:30 --probes 10 --signatures " + dir_.file("B.sig") +
               " " + dir_.file("C.sig") + " -o " + dir_.file("x.jsonl"));
  ASSERT_EQ(x.code, 0) << x.out;
  EXPECT_NE(x.out.find("10 probes"), std::string::npos) << x.out;
  Outcome show = run_prov("suite show " + dir_.file("x.jsonl") + " --json", false);
  ASSERT_EQ(show.code, 0) << show.out;
  EXPECT_EQ(json::parse(show.out)["name"], "natural-v1-xlik");

  // Bad input: another suite, too few controls, a missing control.
  Outcome other = run_prov("suite cross --suite natural-v1:31 --signatures " + dir_.file("B.sig") +
                           " -o " + dir_.file("y.jsonl"));
  EXPECT_EQ(other.code, 2) << other.out;
  Outcome few = run_prov("compare " + dir_.file("copy.sig") + " " + dir_.file("B.sig") +
                         " --outputs-only --controls " + dir_.file("C.sig"));
  EXPECT_EQ(few.code, 0) << few.out;
  EXPECT_NE(few.out.find("inconclusive"), std::string::npos) << few.out;
  Outcome none =
      run_prov("compare " + dir_.file("copy.sig") + " " + dir_.file("B.sig") + " --outputs-only");
  EXPECT_EQ(none.code, 2) << none.out;
  Outcome missing = run_prov("compare " + dir_.file("copy.sig") + " " + dir_.file("B.sig") +
                             " --outputs-only --controls " + dir_.file("nothing") + " " +
                             dir_.file("C.sig") + common());
  EXPECT_EQ(missing.code, 2) << missing.out;
  EXPECT_NE(missing.out.find("nothing"), std::string::npos) << missing.out;
}

TEST_F(OutputsCli, ServedCandidateIsProbedOverHttp) {
  prov::testing::ServeProcess server(dir_.file("copy"), "suspect");
  ASSERT_FALSE(server.url().empty()) << "prov serve did not print its address";
  Outcome r = run_prov("compare " + server.url() + " " + dev("B") + " --model-name suspect" +
                           " --controls " + controls_ + common() + " --json",
                       false);
  ASSERT_EQ(r.code, 0) << r.out;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["relation"], "related") << r.out;
  EXPECT_EQ(j["evidence"].size(), 2u) << r.out;  // scores collected through echo
  // A dead endpoint is an I/O failure naming it.
  Outcome dead = run_prov("compare http://127.0.0.1:1 " + dev("B") + " --model-name x" +
                          " --controls " + controls_ + common() + " --retries 0 --json");
  EXPECT_EQ(dead.code, 3) << dead.out;
  EXPECT_NE(dead.out.find("127.0.0.1:1"), std::string::npos) << dead.out;
}

}  // namespace

namespace {

TEST_F(OutputsCli, AuditAddsOutputEvidenceAndProbeCurves) {
  // A checkpoint candidate: the weights name the relation, the outputs add their rows.
  Outcome r = run_prov("audit " + dir_.file("copy") + " --references " + dev("B") + " --controls " +
                           controls_ + " --permutations 99" +
                           " --suite natural-v1:40 --xlik-probes 20 --cache " + cache_->file("c") +
                           " --report " + dir_.file("rep") + " --json",
                       false);
  ASSERT_EQ(r.code, 0) << r.out;
  const json j = json::parse(r.out)["report"];
  // A copy with 0.2 % noise: a weight relation (noised or finetuned), decided by the weights.
  EXPECT_TRUE(j["verdict"]["relation"] == "noised" || j["verdict"]["relation"] == "finetuned")
      << r.out;
  EXPECT_EQ(j["verdict"]["parent"], "B");
  int output_rows = 0, primary_with_p = 0;
  for (const auto& e : j["evidence"]) {
    if (e["layer"] == "outputs" || e["layer"] == "distillation") {
      ++output_rows;
      EXPECT_EQ(e["probes"], e["statistic"] == "logit_image" ? 256 : 20) << e.dump();
      if (!e["p_value"].is_null()) ++primary_with_p;
    }
  }
  EXPECT_EQ(output_rows, 8);  // 8 statistics (same tokenizer, scores and images of every model)
  EXPECT_EQ(primary_with_p, 3);
  ASSERT_EQ(j["probe_curve"].size(), 1u);
  EXPECT_EQ(j["probe_curve"][0]["probes"].back(), 20);
  EXPECT_FALSE(j["suite"]["digest"].get<std::string>().empty());
  const std::string out_rel = j["references"][0]["outputs"]["relation"];
  EXPECT_EQ(out_rel, "weight_derived");  // seen from the outputs: B's logit image
  EXPECT_NE(prov::testing::read_file(dir_.file("rep.html")).find("<svg"), std::string::npos);

  // A served candidate has no weights: the verdict rests on the outputs, with low confidence.
  prov::testing::ServeProcess server(dir_.file("copy"), "suspect");
  ASSERT_FALSE(server.url().empty());
  Outcome e =
      run_prov("audit " + server.url() + " --model-name suspect --references " + dev("B") +
                   " --controls " + controls_ + " --suite natural-v1:40 --xlik-probes 20 --cache " +
                   cache_->file("c") + " --json",
               false);
  ASSERT_EQ(e.code, 0) << e.out;
  const json k = json::parse(e.out)["report"];
  EXPECT_EQ(k["verdict"]["parent"], "B") << e.out;
  EXPECT_EQ(k["verdict"]["confidence"], "low");
  EXPECT_TRUE(k["verdict"]["relation"] == "distilled_seq" ||
              k["verdict"]["relation"] == "distilled_logit");
  EXPECT_EQ(k["candidate"]["name"], "suspect");
  EXPECT_EQ(k["candidate"]["digest"]["sha256"].get<std::string>().size(), 64u);
  EXPECT_NE(k["verdict"]["summary"].get<std::string>().find("cannot be told"), std::string::npos);
  for (const auto& ev : k["evidence"]) EXPECT_NE(ev["layer"], "weights");

  // Without controls a weightless candidate is refused.
  Outcome no = run_prov("audit " + server.url() + " --model-name suspect --references " + dev("B"));
  EXPECT_EQ(no.code, 2) << no.out;
  EXPECT_NE(no.out.find("--controls"), std::string::npos) << no.out;
}

}  // namespace
