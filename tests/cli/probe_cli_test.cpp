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

#include "probes/dialect.h"
#include "probes/server.h"
#include "probes/signature.h"
#include "probes/suite.h"
#include "tests/support/prov_cli.h"
#include "tests/support/serve_process.h"
#include "tests/support/test_support.h"

namespace {

using prov::testing::Outcome;
using prov::testing::run_prov;

std::string model_dir() {
  return prov::testing::fixtures_dir() + "/zoo-dev/B";
}

// `prov serve MODEL --dialect D` as a child process on a free loopback port; stopped with SIGTERM.
// Its first stdout line names the address: "prov serve: NAME on http://127.0.0.1:PORT[/v1] (...)".
class DialectServe {
 public:
  DialectServe(const std::string& model, const std::string& dialect, const std::string& name) {
    int fds[2];
    if (pipe(fds) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(fds[1], 1);
      close(fds[0]);
      execl(PROV_EXE, PROV_EXE, "serve", model.c_str(), "--port", "0", "--name", name.c_str(),
            "--dialect", dialect.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    close(fds[1]);
    FILE* f = fdopen(fds[0], "r");
    std::array<char, 512> line{};
    if (f != nullptr && fgets(line.data(), line.size(), f) != nullptr) {
      const std::string s(line.data());
      const auto a = s.find("http://");
      const auto b = a == std::string::npos ? a : s.find(' ', a);
      if (b != std::string::npos) url_ = s.substr(a, b - a);
    }
    if (f != nullptr) fclose(f);
  }
  ~DialectServe() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int st = 0;
      waitpid(pid_, &st, 0);
    }
  }
  const std::string& url() const { return url_; }

 private:
  pid_t pid_ = -1;
  std::string url_;
};

// What each dialect carries (docs/probes.md): alternatives at most, top-k ids, the prompt's ids,
// the continuation's ids.
struct DialectCase {
  const char* name;
  size_t top;
  bool prompt_ids;
  bool continuation_ids;
};

const DialectCase kLogprobDialects[] = {{"openai", 20, false, false},
                                        {"vllm", 20, true, true},
                                        {"sglang", 20, true, true},
                                        {"tgi", 5, true, true},
                                        {"llamacpp", 20, false, true}};

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

// Every dialect of `prov serve`, probed in that dialect with the served tokenizer named: the
// signature equals the local one in what the dialect carries (ids, strings, log-probabilities
// within 1e-5; TGI's 5 alternatives of the local 20), and its header names the engine.
TEST(ProbeCli, EveryDialectThroughProvServeEqualsTheLocalSignature) {
  PROV_REQUIRE_FIXTURES();
  prov::testing::TempDir dir;
  Outcome local = run_prov("probe " + model_dir() + " --suite natural-v1:12 -o " +
                           dir.file("local.sig") + " --batch 1");
  ASSERT_EQ(local.code, 0) << local.out;
  auto l = prov::probes::read_signature(dir.file("local.sig"));
  ASSERT_TRUE(l.is_ok());
  for (const DialectCase& d : kLogprobDialects) {
    SCOPED_TRACE(d.name);
    DialectServe server(model_dir(), d.name, "B");
    ASSERT_FALSE(server.url().empty()) << "prov serve did not print its address";
    const std::string out = dir.file(std::string(d.name) + ".sig");
    Outcome remote = run_prov("probe --endpoint " + server.url() + " --model-name B --dialect " +
                              d.name + " --tokenizer " + model_dir() +
                              " --suite natural-v1:12 -o " + out + " --concurrency 4");
    ASSERT_EQ(remote.code, 0) << remote.out;
    auto r = prov::probes::read_signature(out);
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    ASSERT_EQ(r->records.size(), 12u);
    const auto& h = r->header;
    auto dialect = prov::probes::parse_dialect(d.name);
    ASSERT_TRUE(dialect.is_ok());
    EXPECT_EQ(h.engine, prov::probes::dialect_traits(*dialect).engine);
    EXPECT_EQ(h.logprob_mode, "raw");
    EXPECT_EQ(h.top_k_limit, d.top < 20 ? d.top : 0u);
    EXPECT_TRUE(h.token_ids);
    EXPECT_EQ(h.tokenizer, l->header.tokenizer);  // token-level statistics compare them
    EXPECT_EQ(h.vocab_size, l->header.vocab_size);
    if (std::string(d.name) != "openai") {
      EXPECT_EQ(h.engine_version, "prov 0.1.0");
    }
    for (size_t i = 0; i < 12; ++i) {
      const auto& rr = r->records[i];
      const auto& lr = l->records[i];
      const auto& rp = rr.positions.at(0).top;
      const auto& lp = lr.positions.at(0).top;
      ASSERT_EQ(rp.tokens.size(), d.top) << "probe " << i;
      ASSERT_EQ(rp.ids.size(), d.top) << "probe " << i;
      for (size_t k = 0; k < d.top; ++k) {
        EXPECT_EQ(rp.ids[k], lp.ids[k]) << i << "/" << k;
        EXPECT_EQ(rp.tokens[k], lp.tokens[k]) << i << "/" << k;
        EXPECT_NEAR(rp.logprobs[k], lp.logprobs[k], 1e-5) << i << "/" << k;
      }
      EXPECT_EQ(rr.continuation_text, lr.continuation_text) << "probe " << i;
      if (d.prompt_ids) {
        EXPECT_EQ(rr.prompt_ids, lr.prompt_ids) << "probe " << i;
      }
      if (d.continuation_ids) {
        EXPECT_EQ(rr.continuation_ids, lr.continuation_ids) << "probe " << i;
      }
    }
  }
}

// The Messages API carries text only, and its text answers the prompt as a user message: it
// equals the local continuation of the prompt laid out as the server lays out chat (the plain
// "User: ...\nAssistant:" layout of a model without a chat template).
TEST(ProbeCli, AnthropicDialectAnswersAsTheLocalModelDoesToTheChatLayout) {
  PROV_REQUIRE_FIXTURES();
  if (!prov::probes::read_chat_template(model_dir()).empty()) {
    GTEST_SKIP() << "the fixture has a chat template; the plain layout does not apply";
  }
  prov::testing::TempDir dir;
  const prov::probes::Suite natural = prov::probes::natural_v1(8);
  {
    std::ofstream f(dir.file("chat.jsonl"));
    f << nlohmann::json({{"suite", "chat-layout"}, {"version", "1"}}).dump() << "\n";
    for (const auto& p : natural.probes) {
      f << nlohmann::json({{"id", p.id},
                           {"text", "User: " + *p.text + "\nAssistant:"},
                           {"top_k", 0},
                           {"greedy_tokens", p.greedy_tokens}})
               .dump()
        << "\n";
    }
  }
  Outcome local = run_prov("probe " + model_dir() + " --suite " + dir.file("chat.jsonl") + " -o " +
                           dir.file("local.sig") + " --batch 1");
  ASSERT_EQ(local.code, 0) << local.out;
  DialectServe server(model_dir(), "anthropic", "B");
  ASSERT_FALSE(server.url().empty());
  Outcome remote =
      run_prov("probe --endpoint " + server.url() + " --model-name B --dialect anthropic " +
               "--suite natural-v1:8 -o " + dir.file("a.sig"));
  ASSERT_EQ(remote.code, 0) << remote.out;
  auto r = prov::probes::read_signature(dir.file("a.sig"));
  auto l = prov::probes::read_signature(dir.file("local.sig"));
  ASSERT_TRUE(r.is_ok() && l.is_ok());
  EXPECT_EQ(r->header.engine, "anthropic");
  EXPECT_EQ(r->header.logprob_mode, "none");
  EXPECT_EQ(r->header.engine_version, "2023-06-01");
  ASSERT_EQ(r->records.size(), 8u);
  for (size_t i = 0; i < 8; ++i) {
    EXPECT_TRUE(r->records[i].positions.empty());
    EXPECT_EQ(r->records[i].continuation_text, l->records[i].continuation_text) << "probe " << i;
  }
}

// An audit of B served in each dialect (a weightless candidate: outputs only) names B as the
// parent; the report records the engine and what its answers leave out. The Messages API
// answers chat-formatted prompts, which raw continuations of the references do not match, so
// its verdict is not compared; its report must say it is text only.
TEST(ProbeCli, AuditThroughEveryDialectNamesTheSameParent) {
  PROV_REQUIRE_FIXTURES();
  prov::testing::TempDir dir;
  const std::string z = prov::testing::fixtures_dir() + "/zoo-dev/";
  const std::string controls = z + "C " + z + "I1 " + z + "I3";
  for (const char* d : {"openai", "vllm", "sglang", "tgi", "llamacpp", "anthropic"}) {
    SCOPED_TRACE(d);
    const std::string name(d);
    DialectServe server(model_dir(), name, "suspect");
    ASSERT_FALSE(server.url().empty());
    // llama.cpp and the Messages API score no given text: no cross-likelihood probes.
    const bool scores = name != "llamacpp" && name != "anthropic";
    Outcome e = run_prov("audit " + server.url() + " --model-name suspect --dialect " + name +
                             " --references " + model_dir() + " --controls " + controls +
                             " --suite natural-v1:40 --xlik-probes " + (scores ? "20" : "0") +
                             " --cache " + dir.file("c") + " --json",
                         false);
    ASSERT_EQ(e.code, 0) << e.out;
    const auto k = nlohmann::json::parse(e.out)["report"];
    const auto& run = k["environment"]["runs"][0];
    EXPECT_EQ(run["role"], "candidate");
    EXPECT_EQ(run["source"], "endpoint");
    EXPECT_EQ(run["engine"].get<std::string>().rfind(
                  prov::probes::dialect_traits(*prov::probes::parse_dialect(name)).engine, 0),
              0u)
        << run.dump();
    const std::string stats = run["statistics"];
    EXPECT_NE(stats.find("text-level"), std::string::npos) << stats;  // no --tokenizer named
    if (name == "tgi") {
      EXPECT_EQ(run["top_k_limit"], 5);
      EXPECT_NE(stats.find("truncated to 5"), std::string::npos) << stats;
    }
    if (name == "llamacpp") {
      EXPECT_NE(stats.find("no prompt log-probabilities"), std::string::npos) << stats;
    }
    if (name == "anthropic") {
      EXPECT_NE(stats.find("text only"), std::string::npos) << stats;
      EXPECT_EQ(run["logprob_mode"], "none");
      continue;
    }
    EXPECT_EQ(k["verdict"]["parent"], "B") << e.out;
  }
}

// The cost controls of `prov probe`: a dry run prints the requests and tokens and sends nothing;
// a request budget stops the collection with the completed probes kept; collecting again
// completes the file without asking for them again.
TEST(ProbeCli, DryRunAndBudgetOverAnEndpoint) {
  PROV_REQUIRE_FIXTURES();
  prov::testing::TempDir dir;
  DialectServe server(model_dir(), "sglang", "B");
  ASSERT_FALSE(server.url().empty());
  const std::string base = "probe --endpoint " + server.url() +
                           " --model-name B --dialect sglang --suite natural-v1:10 -o " +
                           dir.file("s.sig");
  Outcome dry = run_prov(base + " --dry-run", false);
  ASSERT_EQ(dry.code, 0) << dry.out;
  EXPECT_NE(dry.out.find("10 probes to collect: 12 requests"), std::string::npos) << dry.out;
  EXPECT_FALSE(std::filesystem::exists(dir.file("s.sig")));
  Outcome part = run_prov(base + " --max-requests 6");  // GET x2 and four probes
  EXPECT_EQ(part.code, 2) << part.out;
  EXPECT_NE(part.out.find("--max-requests"), std::string::npos) << part.out;
  auto sig = prov::probes::read_signature(dir.file("s.sig"));
  ASSERT_TRUE(sig.is_ok());
  EXPECT_EQ(sig->records.size(), 4u);
  Outcome rest_dry = run_prov(base + " --dry-run", false);
  EXPECT_NE(rest_dry.out.find("6 probes to collect"), std::string::npos) << rest_dry.out;
  Outcome rest = run_prov(base);
  ASSERT_EQ(rest.code, 0) << rest.out;
  EXPECT_NE(rest.out.find("resuming"), std::string::npos) << rest.out;
  sig = prov::probes::read_signature(dir.file("s.sig"));
  ASSERT_TRUE(sig.is_ok());
  EXPECT_TRUE(sig->complete());
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
