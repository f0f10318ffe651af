// End-to-end tests of prov probe / serve / suite / signature: real checkpoints, real processes,
// a real HTTP server on a loopback port.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "probes/signature.h"
#include "tests/support/prov_cli.h"
#include "tests/support/serve_process.h"
#include "tests/support/test_support.h"

namespace {

using prov::testing::Outcome;
using prov::testing::run_prov;

std::string model_dir() {
  return prov::testing::fixtures_dir() + "/zoo-dev/B";
}

TEST(ProbeCli, SuitesListShowAndExport) {
  Outcome l = run_prov("suite list --json");
  ASSERT_EQ(l.code, 0) << l.out;
  auto j = nlohmann::json::parse(l.out);
  ASSERT_GE(j.size(), 2u);
  EXPECT_EQ(j[0]["name"], "natural-v1");
  prov::testing::TempDir dir;
  Outcome e = run_prov("suite export natural-v1:50 -o " + dir.file("s.jsonl"));
  ASSERT_EQ(e.code, 0) << e.out;
  Outcome s1 = run_prov("suite show " + dir.file("s.jsonl") + " --json --limit 2");
  Outcome s2 = run_prov("suite show natural-v1:50 --json --limit 2");
  ASSERT_EQ(s1.code, 0) << s1.out;
  auto a = nlohmann::json::parse(s1.out), b = nlohmann::json::parse(s2.out);
  EXPECT_EQ(a["num_probes"], 50);
  EXPECT_EQ(a["digest"], b["digest"]);  // the exported file is the same suite
  EXPECT_EQ(run_prov("suite show no-such-suite").code, 2);
}

TEST(ProbeCli, LocalProbeIsCompleteResumableAndDeterministic) {
  PROV_REQUIRE_FIXTURES();
  prov::testing::TempDir dir;
  const std::string sig = dir.file("b.sig");
  Outcome r = run_prov("probe " + model_dir() + " --suite natural-v1:40 -o " + sig + " --batch 8");
  ASSERT_EQ(r.code, 0) << r.out;
  auto full = prov::probes::read_signature(sig);
  ASSERT_TRUE(full.is_ok()) << full.status().to_string();
  ASSERT_TRUE(full->complete());
  EXPECT_EQ(full->records.size(), 40u);
  EXPECT_EQ(full->header.suite_name, "natural-v1");
  EXPECT_EQ(full->header.model_digest.size(), 64u);
  const std::string original = prov::testing::read_file(sig);

  // Interrupted run: cut the file in the middle of a frame; the rerun completes it to the same
  // bytes as the uninterrupted run.
  std::filesystem::resize_file(sig, original.size() * 2 / 3);
  bool truncated = false;
  auto part = prov::probes::read_signature(sig, &truncated);
  ASSERT_TRUE(part.is_ok()) << part.status().to_string();
  EXPECT_FALSE(part->complete());
  Outcome again =
      run_prov("probe " + model_dir() + " --suite natural-v1:40 -o " + sig + " --batch 8");
  ASSERT_EQ(again.code, 0) << again.out;
  EXPECT_NE(again.out.find("resuming"), std::string::npos) << again.out;
  EXPECT_EQ(prov::testing::read_file(sig), original);

  // The same file for another suite is refused, and nothing stored is lost.
  Outcome other = run_prov("probe " + model_dir() + " --suite natural-v1:41 -o " + sig);
  EXPECT_EQ(other.code, 2) << other.out;
  EXPECT_EQ(prov::testing::read_file(sig), original);

  Outcome show = run_prov("signature show " + sig);
  ASSERT_EQ(show.code, 0) << show.out;
  EXPECT_NE(show.out.find("40 of 40"), std::string::npos) << show.out;
}

TEST(ProbeCli, EndpointSignatureThroughProvServeEqualsTheLocalOne) {
  PROV_REQUIRE_FIXTURES();
  prov::testing::TempDir dir;
  prov::testing::ServeProcess server(model_dir());
  ASSERT_FALSE(server.url().empty()) << "prov serve did not print its address";
  Outcome remote =
      run_prov("probe --endpoint " + server.url() + " --model-name B --suite natural-v1:12 -o " +
               dir.file("remote.sig") + " --concurrency 4");
  ASSERT_EQ(remote.code, 0) << remote.out;
  Outcome local = run_prov("probe " + model_dir() + " --suite natural-v1:12 -o " +
                           dir.file("local.sig") + " --batch 1");
  ASSERT_EQ(local.code, 0) << local.out;
  auto r = prov::probes::read_signature(dir.file("remote.sig"));
  auto l = prov::probes::read_signature(dir.file("local.sig"));
  ASSERT_TRUE(r.is_ok() && l.is_ok());
  ASSERT_EQ(r->records.size(), 12u);
  EXPECT_EQ(r->header.source, "endpoint");
  for (size_t i = 0; i < 12; ++i) {
    const auto& rp = r->records[i].positions.at(0).top;
    const auto& lp = l->records[i].positions.at(0).top;
    ASSERT_EQ(rp.tokens.size(), 20u) << "probe " << i;
    EXPECT_EQ(rp.ids, lp.ids) << "probe " << i;
    EXPECT_EQ(rp.tokens, lp.tokens) << "probe " << i;
    for (size_t k = 0; k < 20; ++k)
      EXPECT_NEAR(rp.logprobs[k], lp.logprobs[k], 1e-5) << i << "/" << k;
    EXPECT_EQ(r->records[i].continuation_text, l->records[i].continuation_text) << "probe " << i;
  }
}

TEST(ProbeCli, DivergenceSuiteKeepsThePromptsWhereModelsDisagree) {
  PROV_REQUIRE_FIXTURES();
  prov::testing::TempDir dir;
  const std::string z = prov::testing::fixtures_dir() + "/zoo-dev/";
  Outcome r = run_prov("suite build --models " + z + "B " + z + "C " + z +
                       "I1 --pool 60 --keep 12 -o " + dir.file("div.jsonl"));
  ASSERT_EQ(r.code, 0) << r.out;
  // "mean disagreement per model pair: X kept vs Y pool": the kept prompts disagree more.
  double kept = 0, pool = 0;
  auto at = r.out.find("model pair: ");
  ASSERT_NE(at, std::string::npos) << r.out;
  ASSERT_EQ(std::sscanf(r.out.c_str() + at, "model pair: %lf kept vs %lf pool", &kept, &pool), 2);
  EXPECT_GT(kept, pool);
  Outcome show = run_prov("suite show " + dir.file("div.jsonl") + " --json --limit 0");
  ASSERT_EQ(show.code, 0) << show.out;
  auto j = nlohmann::json::parse(show.out);
  EXPECT_EQ(j["name"], "divergence");
  EXPECT_EQ(j["num_probes"], 12);
  EXPECT_EQ(run_prov("suite build --models " + z + "B -o " + dir.file("x.jsonl")).code, 2);
}

TEST(ProbeCli, UnreachableEndpointFailsNamingTheAddress) {
  prov::testing::TempDir dir;
  // Nothing listens on port 9 of the loopback interface (discard service is not run in tests).
  Outcome r =
      run_prov("probe --endpoint http://127.0.0.1:9 --model-name x --suite natural-v1:3 -o " +
               dir.file("x.sig") + " --retries 1 --timeout 2");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("127.0.0.1:9"), std::string::npos) << r.out;
}

}  // namespace
