// Every serving dialect (probes/dialect.h) end to end: the endpoint client (endpoint.h) against
// `prov serve`'s server (server.h) speaking that dialect on 127.0.0.1, with a real small backend.
// Records are checked against what the backend itself computes (the "local" answer: ids, strings,
// log-probabilities within 1e-5 where the dialect carries them); faults come from the real server
// (ServerOptions::fault, rate limits), never from a stand-in.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>

#include <nlohmann/json.hpp>

#include "probes/collect.h"
#include "probes/dialect.h"
#include "probes/distribution.h"
#include "probes/endpoint.h"
#include "probes/server.h"
#include "probes/subject.h"
#include "tests/probes/bigram_backend.h"
#include "tests/support/test_support.h"

namespace prov::probes {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace testing;  // NOLINT: the shared backend of these tests

const Dialect kAll[] = {Dialect::kOpenAI, Dialect::kVllm,     Dialect::kSglang,
                        Dialect::kTgi,    Dialect::kLlamaCpp, Dialect::kAnthropic};

std::string name_of(const ::testing::TestParamInfo<Dialect>& info) {
  return dialect_name(info.param);
}

// What a dialect carries, as the tests compare it.
struct Carried {
  bool top = true;          // top-k log-probabilities and strings
  bool top_ids = true;      // top-k ids
  uint32_t k_limit = 0;     // alternatives the engine gives at most (0: as asked)
  bool prompt_ids = false;  // prompt_ids of text probes
  bool cont_ids = false;    // continuation_ids
  bool scoring = true;      // continuations and score texts
  bool scoring_top = true;  // alternatives at scored positions
  bool chat = false;        // the continuation answers the prompt as a user message
};

Carried carried(Dialect d, bool tokenizer) {
  Carried c;
  switch (d) {
    case Dialect::kOpenAI:
      break;
    case Dialect::kVllm:
      c.top_ids = tokenizer;
      c.prompt_ids = c.cont_ids = true;
      break;
    case Dialect::kSglang:
      c.prompt_ids = c.cont_ids = true;
      break;
    case Dialect::kTgi:
      c.k_limit = 5;
      c.prompt_ids = c.cont_ids = true;
      c.scoring_top = false;
      break;
    case Dialect::kLlamaCpp:
      c.cont_ids = true;
      c.scoring = false;
      break;
    case Dialect::kAnthropic:
      c.top = c.top_ids = c.scoring = false;
      c.chat = true;
      break;
  }
  return c;
}

// The local answer to a text probe: what the backend computes, as the local runner records it
// (prompt with BOS; continuation and score texts encoded without special tokens and appended).
ProbeRecord local_record(const BigramBackend& b, const Probe& p, uint32_t index) {
  ProbeRecord r;
  r.index = index;
  r.probe_id = p.id;
  r.prompt_ids = b.encode(*p.text);
  auto topk = [&](int32_t prev, int k) {
    TopK t;
    for (const auto& c : BigramBackend::top(b.logprobs(prev), k)) {
      t.ids.push_back(c.id);
      t.tokens.push_back(b.decode({c.id}));
      t.logprobs.push_back(c.logprob);
    }
    return t;
  };
  if (p.continuation) {
    std::vector<int32_t> ids = r.prompt_ids;
    for (int32_t id : b.encode(*p.continuation, false)) {
      PositionRecord pos;
      pos.top = topk(ids.back(), p.top_k);
      pos.token_id = id;
      pos.token = b.decode({id});
      pos.token_logprob = b.logprobs(ids.back())[static_cast<size_t>(id)];
      r.positions.push_back(std::move(pos));
      ids.push_back(id);
    }
  } else if (p.top_k > 0) {
    PositionRecord pos;
    pos.top = topk(r.prompt_ids.back(), p.top_k);
    r.positions.push_back(std::move(pos));
  }
  if (p.greedy_tokens > 0) {
    r.continuation_ids = b.greedy(r.prompt_ids, p.greedy_tokens);
    r.continuation_text = b.decode(r.continuation_ids);
  }
  for (const auto& text : p.score_texts) {
    ScoredText st;
    st.text = text;
    std::vector<int32_t> ids = r.prompt_ids;
    for (int32_t id : b.encode(text, false)) {
      const float lp = b.logprobs(ids.back())[static_cast<size_t>(id)];
      st.ids.push_back(id);
      st.tokens.push_back(b.decode({id}));
      st.token_logprobs.push_back(lp);
      st.total_logprob += lp;
      ids.push_back(id);
    }
    r.scores.push_back(std::move(st));
  }
  return r;
}

void expect_top(const TopK& got, const TopK& want, const Carried& c, const std::string& where) {
  const size_t k =
      c.k_limit > 0 ? std::min<size_t>(c.k_limit, want.logprobs.size()) : want.logprobs.size();
  ASSERT_EQ(got.logprobs.size(), k) << where;
  ASSERT_EQ(got.tokens.size(), k) << where;
  for (size_t i = 0; i < k; ++i) {
    EXPECT_EQ(got.tokens[i], want.tokens[i]) << where << " alternative " << i;
    EXPECT_NEAR(got.logprobs[i], want.logprobs[i], 1e-5) << where << " alternative " << i;
  }
  // Ids where the dialect carries them; where it gives some anyway (vLLM's prompt_logprobs), they
  // must be right.
  if (c.top_ids || !got.ids.empty()) {
    ASSERT_EQ(got.ids.size(), k) << where;
    for (size_t i = 0; i < k; ++i) EXPECT_EQ(got.ids[i], want.ids[i]) << where << " " << i;
  }
}

// `got` (through the dialect) against `want` (local), for what the dialect carries.
void expect_same(const ProbeRecord& got, const ProbeRecord& want, const Carried& c) {
  const std::string where = "probe " + want.probe_id;
  EXPECT_EQ(got.index, want.index) << where;
  EXPECT_EQ(got.probe_id, want.probe_id) << where;
  if (!c.chat) {
    EXPECT_EQ(got.continuation_text, want.continuation_text) << where;
  }
  if (c.prompt_ids) {
    EXPECT_EQ(got.prompt_ids, want.prompt_ids) << where;
  }
  if (c.cont_ids) {
    EXPECT_EQ(got.continuation_ids, want.continuation_ids) << where;
  }
  if (!c.top) {
    EXPECT_TRUE(got.positions.empty()) << where;
  } else {
    ASSERT_EQ(got.positions.size(), want.positions.size()) << where;
    for (size_t j = 0; j < want.positions.size(); ++j) {
      const PositionRecord& g = got.positions[j];
      const PositionRecord& w = want.positions[j];
      const std::string at = where + " position " + std::to_string(j);
      if (w.token_id >= 0) {
        EXPECT_EQ(g.token_id, w.token_id) << at;
        EXPECT_EQ(g.token, w.token) << at;
        EXPECT_NEAR(g.token_logprob, w.token_logprob, 1e-5) << at;
      }
      if (w.token_id < 0 || c.scoring_top) {
        expect_top(g.top, w.top, c, at);
      } else {
        EXPECT_TRUE(g.top.logprobs.empty()) << at;
      }
    }
  }
  ASSERT_EQ(got.scores.size(), c.scoring ? want.scores.size() : 0u) << where;
  for (size_t s = 0; s < got.scores.size(); ++s) {
    const ScoredText& g = got.scores[s];
    const ScoredText& w = want.scores[s];
    EXPECT_EQ(g.text, w.text) << where;
    EXPECT_EQ(g.tokens, w.tokens) << where;
    EXPECT_EQ(g.ids, w.ids) << where;
    ASSERT_EQ(g.token_logprobs.size(), w.token_logprobs.size()) << where;
    for (size_t i = 0; i < w.token_logprobs.size(); ++i) {
      EXPECT_NEAR(g.token_logprobs[i], w.token_logprobs[i], 1e-5) << where;
    }
    EXPECT_NEAR(g.total_logprob, w.total_logprob, 1e-4) << where;
  }
}

// A suite the dialect can answer: greedy probes with top-k, and (where the engine scores given
// text) a teacher-forced continuation and score texts.
Suite suite_for(Dialect d, int top_k = 5) {
  const bool scoring = dialect_traits(d).prompt_logprobs;
  Suite s;
  s.name = "dialects";
  s.version = "1";
  const std::vector<std::string> prompts = {"the cat", "the hat sat", "at the", "the"};
  for (size_t i = 0; i < prompts.size(); ++i) {
    Probe p = text_probe("g" + std::to_string(i), prompts[i], top_k, 3 + static_cast<int>(i));
    if (scoring && i == 1) p.score_texts = {" cat", " sat the"};
    s.probes.push_back(p);
  }
  if (scoring) {
    Probe c = text_probe("c0", "the cat", top_k, 0);
    c.continuation = " sat the cat";
    s.probes.push_back(c);
  }
  return s;
}

class Dialects : public ::testing::TestWithParam<Dialect> {
 protected:
  void SetUp() override { ASSERT_TRUE(backend_.ok()); }

  std::unique_ptr<Server> serve(ServerOptions so = {}) {
    so.dialect = GetParam();
    if (GetParam() == Dialect::kAnthropic && so.api_key.empty()) so.api_key = "k-anthropic";
    return start_server(backend_, so);
  }

  EndpointOptions client_options(int port, bool with_tokenizer = true) {
    EndpointOptions o = fast_options(port);
    o.dialect = GetParam();
    if (with_tokenizer) o.tokenizer = &backend_.tokenizer();
    if (GetParam() == Dialect::kAnthropic) o.api_key = "k-anthropic";
    return o;
  }

  std::vector<ProbeRecord> collect(EndpointClient& client, const Suite& suite,
                                   const std::vector<bool>& skip = {}, Status* status = nullptr) {
    std::vector<ProbeRecord> got;
    Status st = client.run_suite(suite, skip, [&](const ProbeRecord& r) {
      got.push_back(r);
      return Status::ok();
    });
    if (status != nullptr) {
      *status = st;
    } else {
      EXPECT_TRUE(st.is_ok()) << st.to_string();
    }
    return got;
  }

  BigramBackend backend_;
};

INSTANTIATE_TEST_SUITE_P(AllDialects, Dialects, ::testing::ValuesIn(kAll), name_of);

TEST_P(Dialects, SignatureEqualsTheLocalAnswer) {
  auto server = serve();
  ASSERT_NE(server, nullptr);
  auto client = make_client(client_options(server->port()));
  ASSERT_NE(client, nullptr);
  const Suite suite = suite_for(GetParam());
  auto info = client->discover(5);
  ASSERT_TRUE(info.is_ok()) << info.status().to_string();
  EXPECT_EQ(info->engine, dialect_traits(GetParam()).engine);
  EXPECT_EQ(info->logprob_mode, dialect_traits(GetParam()).logprob_mode);
  EXPECT_EQ(info->prompt_logprobs, dialect_traits(GetParam()).prompt_logprobs);
  if (std::string(dialect_traits(GetParam()).version_path).size() > 0) {
    EXPECT_EQ(info->version, std::string("prov ") + "0.1.0") << info->api;
  }
  const auto got = collect(*client, suite);
  ASSERT_EQ(got.size(), suite.probes.size());
  const Carried c = carried(GetParam(), true);
  for (size_t i = 0; i < got.size(); ++i) {
    SCOPED_TRACE(dialect_name(GetParam()));
    expect_same(got[i], local_record(backend_, suite.probes[i], static_cast<uint32_t>(i)), c);
  }
  if (c.chat) {  // the answer to the prompt as a user message (the plain chat layout)
    auto ids = backend_.encode("User: " + *suite.probes[0].text + "\nAssistant:", true);
    EXPECT_EQ(got[0].continuation_text,
              backend_.decode(backend_.greedy(ids, suite.probes[0].greedy_tokens)));
  }
}

TEST_P(Dialects, WithoutATokenizerTheStringsStillMatch) {
  auto server = serve();
  ASSERT_NE(server, nullptr);
  auto client = make_client(client_options(server->port(), /*with_tokenizer=*/false));
  ASSERT_NE(client, nullptr);
  Suite suite = suite_for(GetParam());
  auto info = client->discover(5);
  ASSERT_TRUE(info.is_ok()) << info.status().to_string();
  const auto got = collect(*client, suite);
  ASSERT_EQ(got.size(), suite.probes.size());
  Carried c = carried(GetParam(), false);
  for (size_t i = 0; i < got.size(); ++i) {
    SCOPED_TRACE(dialect_name(GetParam()));
    // Without the tokenizer vLLM's scored texts go as text: the ids come from the server still.
    expect_same(got[i], local_record(backend_, suite.probes[i], static_cast<uint32_t>(i)), c);
  }
}

// ---- faults: retried or refused, nothing completed lost or repeated --------------------------

// The GET requests discover() sends (version and model descriptions), which run no model.
uint64_t describe_gets(Dialect d) {
  switch (d) {
    case Dialect::kVllm:
    case Dialect::kTgi:
    case Dialect::kLlamaCpp:
      return 1;
    case Dialect::kSglang:
      return 2;
    default:
      return 0;
  }
}

struct FaultCase {
  ServerFault fault;
  const char* name;
};

TEST_P(Dialects, TransientFaultsAreRetriedAndNothingIsRepeated) {
  for (FaultCase f :
       {FaultCase{ServerFault::kRateLimited, "429 Retry-After"},
        FaultCase{ServerFault::kServerError, "500"}, FaultCase{ServerFault::kOverloaded, "503/529"},
        FaultCase{ServerFault::kCutConnection, "cut connection"},
        FaultCase{ServerFault::kMalformedJson, "malformed JSON"}}) {
    SCOPED_TRACE(f.name);
    backend_.calls = 0;
    ServerOptions so;
    so.retry_after_s = 0;
    // Every third request to a model route gets the fault once.
    so.fault = [f](const std::string&, uint64_t n) {
      return n % 3 == 1 ? f.fault : ServerFault::kNone;
    };
    auto server = serve(so);
    ASSERT_NE(server, nullptr);
    auto client = make_client(client_options(server->port()));
    ASSERT_NE(client, nullptr);
    const Suite suite = suite_for(GetParam());
    ASSERT_TRUE(client->discover(5).is_ok());
    const auto got = collect(*client, suite);
    ASSERT_EQ(got.size(), suite.probes.size());
    for (size_t i = 0; i < got.size(); ++i) {
      expect_same(got[i], local_record(backend_, suite.probes[i], static_cast<uint32_t>(i)),
                  carried(GetParam(), true));
    }
    EXPECT_GT(client->counters().retries, 0u);
    // The model ran once per request that was answered (every call but discover()'s GETs): no
    // request was repeated once served.
    EXPECT_EQ(static_cast<uint64_t>(backend_.calls.load()),
              client->counters().calls - describe_gets(GetParam()));
  }
}

TEST_P(Dialects, WrongModelNameIsRefusedClearly) {
  auto server = serve();
  ASSERT_NE(server, nullptr);
  EndpointOptions o = client_options(server->port());
  o.model_name = "no-such-model";
  auto client = make_client(o);
  ASSERT_NE(client, nullptr);
  const Suite suite = suite_for(GetParam());
  Status st = client->discover(5).status();
  if (GetParam() == Dialect::kAnthropic) {
    // No preflight for a paid API: the first probe's request is refused instead.
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    std::vector<ProbeRecord> got = collect(*client, suite, {}, &st);
    EXPECT_TRUE(got.empty());
  }
  ASSERT_FALSE(st.is_ok());
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.to_string();
  EXPECT_NE(st.message().find("no-such-model"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("bigram"), std::string::npos) << st.message();
  EXPECT_EQ(client->counters().retries, 0u);  // refused, not retried
  EXPECT_EQ(backend_.calls.load(), 0);
}

TEST_P(Dialects, PersistentFailureKeepsWhatCompletedAndResumeCompletesTheRest) {
  std::atomic<bool> failing{true};
  ServerOptions so;
  so.retry_after_s = 0;
  // discover()'s requests to model routes (the others ask GET routes only).
  const int preflight =
      GetParam() == Dialect::kOpenAI || GetParam() == Dialect::kVllm || GetParam() == Dialect::kTgi
          ? 1
          : 0;
  // The server fails for good after the first three model requests (preflight included).
  so.fault = [&](const std::string&, uint64_t n) {
    return failing && n >= 3 ? ServerFault::kServerError : ServerFault::kNone;
  };
  auto server = serve(so);
  ASSERT_NE(server, nullptr);
  EndpointOptions o = client_options(server->port());
  o.concurrency = 1;
  o.max_retries = 1;
  Suite suite;
  for (int i = 0; i < 6; ++i)
    suite.probes.push_back(text_probe("p" + std::to_string(i), "the cat", 3, 2 + i));
  auto client = make_client(o);
  ASSERT_TRUE(client->discover(3).is_ok());
  Status st;
  auto first = collect(*client, suite, {}, &st);
  ASSERT_FALSE(st.is_ok());
  EXPECT_EQ(st.code(), StatusCode::kIo) << st.to_string();
  ASSERT_EQ(first.size(), static_cast<size_t>(3 - preflight));
  // Resume: only the missing probes are asked for.
  failing = false;
  std::vector<bool> skip(suite.probes.size(), false);
  for (const auto& r : first) skip[r.index] = true;
  const int calls_before = backend_.calls.load();
  auto second = collect(*client, suite, skip);
  EXPECT_EQ(backend_.calls.load() - calls_before, static_cast<int>(second.size()));
  std::set<uint32_t> seen;
  for (const auto& r : first) EXPECT_TRUE(seen.insert(r.index).second);
  for (const auto& r : second) EXPECT_TRUE(seen.insert(r.index).second) << "repeated " << r.index;
  EXPECT_EQ(seen.size(), suite.probes.size());
}

TEST(DialectResume, ProbesCompletedAfterAFailureUnderConcurrencyAreKept) {
  BigramBackend backend;
  ASSERT_TRUE(backend.ok());
  // The failing probe takes long (and is then refused by the model: its continuation does not
  // fit the context), so the probes after it run meanwhile.
  const size_t failing_prompt = backend.encode("the cat").size();
  backend.delay_for = [&](const CompletionRequest& r) {
    return r.prompt_ids.size() == failing_prompt ? 300 : 5;
  };
  ServerOptions so;
  so.dialect = Dialect::kVllm;
  auto server = start_server(backend, so);
  EndpointOptions o = fast_options(server->port());
  o.dialect = Dialect::kVllm;
  o.concurrency = 4;
  auto client = make_client(o);
  Suite suite;
  for (int i = 0; i < 12; ++i)
    suite.probes.push_back(text_probe("p" + std::to_string(i), "the", 3, 2));
  suite.probes[3].text = "the cat";
  suite.probes[3].greedy_tokens = 300;  // 400 from the model after its delay: not retried
  std::vector<uint32_t> seen;
  auto on_record = [&](const ProbeRecord& r) {
    seen.push_back(r.index);
    return Status::ok();
  };
  Status st = client->run_suite(suite, {}, on_record);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("context too long"), std::string::npos) << st.message();
  ASSERT_GE(seen.size(), 3u);
  EXPECT_EQ(seen[0], 0u);
  EXPECT_EQ(seen[2], 2u);
  EXPECT_GT(seen.size(), 3u);  // probes after the failed one that were in flight are kept
  for (size_t i = 3; i < seen.size(); ++i) EXPECT_GT(seen[i], 3u);
  EXPECT_EQ(backend.calls.load(), static_cast<int>(seen.size()) + 1);  // + the refused one
  // Resumed (the failed probe fixed): only what is missing is asked for.
  suite.probes[3].greedy_tokens = 2;
  backend.delay_for = nullptr;
  std::vector<bool> skip(12, false);
  for (uint32_t i : seen) skip[i] = true;
  const size_t before = seen.size();
  ASSERT_TRUE(client->run_suite(suite, skip, on_record).is_ok());
  EXPECT_EQ(seen.size(), 12u);
  EXPECT_EQ(backend.calls.load(), 12 + 1);
  std::set<uint32_t> unique(seen.begin(), seen.end());
  EXPECT_EQ(unique.size(), 12u);
  EXPECT_EQ(seen[before], 3u);
}

TEST_P(Dialects, RateLimitIsHonouredThroughRetryAfter) {
  ServerOptions so;
  so.rate_limit_rps = 3;
  auto server = serve(so);
  ASSERT_NE(server, nullptr);
  EndpointOptions o = client_options(server->port());
  o.concurrency = 4;
  o.backoff_max_s = 2;  // Retry-After (1 s) applies
  o.max_retries = 8;
  auto client = make_client(o);
  Suite suite;
  for (int i = 0; i < 5; ++i)
    suite.probes.push_back(text_probe("p" + std::to_string(i), "the", 2, 2));
  const auto t0 = Clock::now();
  const auto got = collect(*client, suite);
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  ASSERT_EQ(got.size(), 5u);
  EXPECT_GT(client->counters().retries, 0u);
  EXPECT_GE(s, 0.9);  // the 4th request waited for the next one-second window
}

// ---- budget and dry runs ---------------------------------------------------------------------

TEST_P(Dialects, BudgetStopsInProbeOrderAndResumePaysOnlyTheRest) {
  auto server = serve();
  ASSERT_NE(server, nullptr);
  Suite suite;
  for (int i = 0; i < 6; ++i) {
    suite.probes.push_back(text_probe("p" + std::to_string(i), "the hat", 2, 2));
  }
  EndpointOptions o = client_options(server->port());
  auto probe_client = make_client(o);
  const CostEstimate all = probe_client->estimate(suite, {});
  EXPECT_EQ(backend_.calls.load(), 0);  // an estimate sends nothing
  EXPECT_EQ(all.probes, 6u);
  const uint64_t pre = all.requests - 6;  // discover()'s requests
  EXPECT_EQ(pre, GetParam() == Dialect::kAnthropic ? 0u
                 : GetParam() == Dialect::kSglang || GetParam() == Dialect::kVllm ||
                         GetParam() == Dialect::kTgi
                     ? 2u
                     : 1u);
  EXPECT_EQ(all.completion_tokens, 12u);
  EXPECT_GT(all.prompt_tokens, 0u);

  o.max_requests = pre + 4;  // four probes fit
  o.concurrency = 3;
  auto client = make_client(o);
  ASSERT_TRUE(client->discover(2).is_ok());
  Status st;
  auto first = collect(*client, suite, {}, &st);
  ASSERT_FALSE(st.is_ok());
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("--max-requests"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("probe 4"), std::string::npos) << st.message();
  ASSERT_EQ(first.size(), 4u);
  for (uint32_t i = 0; i < 4; ++i) EXPECT_EQ(first[i].index, i);
  EXPECT_EQ(client->counters().calls, pre + 4);

  std::vector<bool> skip(6, false);
  for (const auto& r : first) skip[r.index] = true;
  EXPECT_EQ(client->estimate(suite, skip).probes, 2u);
  EndpointOptions more = client_options(server->port());
  more.max_tokens_total = 1000000;
  auto again = make_client(more);
  const int before = backend_.calls.load();
  auto rest = collect(*again, suite, skip);
  ASSERT_EQ(rest.size(), 2u);
  EXPECT_EQ(rest[0].index, 4u);
  EXPECT_EQ(backend_.calls.load() - before, 2);

  // A token budget too small for one probe stops before any request.
  EndpointOptions tight = client_options(server->port());
  tight.max_tokens_total = 2;
  auto none = make_client(tight);
  auto nothing = collect(*none, suite, {}, &st);
  EXPECT_TRUE(nothing.empty());
  EXPECT_NE(st.message().find("--max-tokens-total"), std::string::npos) << st.message();
  EXPECT_EQ(none->counters().requests, 0u);
}

// ---- a signature file through `prov probe`'s path (probes::collect_probe) --------------------

TEST(DialectCollect, FileRecordsTheEngineStopsOnBudgetAndResumesWithoutRepeats) {
  BigramBackend backend;
  ASSERT_TRUE(backend.ok());
  prov::testing::TempDir dir;
  prov::testing::write_file(dir.file("tokenizer.json"), tokenizer_json());
  ServerOptions so;
  so.dialect = Dialect::kTgi;
  auto server = start_server(backend, so);
  ASSERT_NE(server, nullptr);
  auto job_for = [&] {
    ProbeJob job;
    job.endpoint = "http://127.0.0.1:" + std::to_string(server->port());
    job.model_name = "bigram";
    job.settings.endpoint.dialect = "tgi";
    job.settings.tokenizer = dir.file("tokenizer.json");
    job.target.suite_spec = "natural-v1:6";
    job.target.output = dir.file("tgi.sig");
    return job;
  };
  // A dry run sends nothing and writes nothing.
  CostEstimate cost;
  ProbeJob dry = job_for();
  dry.target.dry_run = &cost;
  ASSERT_TRUE(collect_probe(dry).is_ok());
  EXPECT_EQ(cost.probes, 6u);
  EXPECT_EQ(cost.requests, 6u + 3u);  // GET /info, the preflight refused past the cap, again
  EXPECT_EQ(cost.completion_tokens, 6u * 16u);
  EXPECT_EQ(backend.calls.load(), 0);
  EXPECT_FALSE(std::ifstream(dir.file("tgi.sig")).good());

  // A budget of three probes: three kept, the error says how to go on.
  ProbeJob job = job_for();
  job.settings.endpoint.max_requests = 3 + 3;
  Status st = collect_probe(job);
  ASSERT_FALSE(st.is_ok());
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("--max-requests"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("3 of 6 probes are kept"), std::string::npos) << st.message();
  auto part = read_signature(dir.file("tgi.sig"));
  ASSERT_TRUE(part.is_ok()) << part.status().to_string();
  EXPECT_EQ(part->records.size(), 3u);
  const SignatureHeader& h = part->header;
  EXPECT_EQ(h.engine, "tgi");
  EXPECT_EQ(h.engine_version, "prov 0.1.0");
  EXPECT_EQ(h.api, "tgi-generate");
  EXPECT_EQ(h.device, "endpoint:tgi-generate");
  EXPECT_EQ(h.logprob_mode, "raw");
  EXPECT_EQ(h.top_k, 20u);
  EXPECT_EQ(h.top_k_limit, 5u);  // TGI's cap, learnt
  EXPECT_TRUE(h.prompt_logprobs);
  EXPECT_TRUE(h.token_ids);
  EXPECT_EQ(h.tokenizer, tokenizer_identity(backend.tokenizer()));
  EXPECT_EQ(h.vocab_size, backend.tokenizer().vocab_size());
  EXPECT_EQ(part->records[0].positions.at(0).top.ids.size(), 5u);

  // What is left to pay, then the rest: no probe asked twice.
  ProbeJob dry2 = job_for();
  dry2.target.dry_run = &cost;
  ASSERT_TRUE(collect_probe(dry2).is_ok());
  EXPECT_EQ(cost.probes, 3u);
  ProbeJob rest = job_for();
  ASSERT_TRUE(collect_probe(rest).is_ok());
  auto full = read_signature(dir.file("tgi.sig"));
  ASSERT_TRUE(full.is_ok());
  EXPECT_TRUE(full->complete());
  // One preflight per run and one request per probe.
  EXPECT_EQ(backend.calls.load(), 1 + 3 + 1 + 3);
}

// ---- truncation ------------------------------------------------------------------------------

TEST(DialectTruncation, TgiCapIsLearntAndRecorded) {
  BigramBackend backend;
  ASSERT_TRUE(backend.ok());
  ServerOptions so;
  so.dialect = Dialect::kTgi;
  auto server = start_server(backend, so);
  ASSERT_NE(server, nullptr);
  EndpointOptions o = fast_options(server->port());
  o.dialect = Dialect::kTgi;
  o.tokenizer = &backend.tokenizer();
  auto client = make_client(o);
  auto info = client->discover(20);
  ASSERT_TRUE(info.is_ok()) << info.status().to_string();
  EXPECT_EQ(info->top_k_limit, 5u);  // learnt from the 422 "must be >= 0 and <= 5"
  auto rec = client->run_probe(text_probe("t", "the cat", 20, 2), 0);
  ASSERT_TRUE(rec.is_ok()) << rec.status().to_string();
  ASSERT_EQ(rec->positions.size(), 1u);
  EXPECT_EQ(rec->positions[0].top.ids.size(), 5u);

  // Compared with the local top-20 through the rest bucket, the truncated list of the same
  // model is at divergence 0; another model's is not.
  const ProbeRecord local = local_record(backend, text_probe("t", "the cat", 20, 2), 0);
  KeyedLogprobs full, cut, other;
  for (size_t i = 0; i < local.positions[0].top.ids.size(); ++i) {
    full.emplace_back("#" + std::to_string(local.positions[0].top.ids[i]),
                      local.positions[0].top.logprobs[i]);
  }
  for (size_t i = 0; i < 5; ++i) {
    cut.emplace_back("#" + std::to_string(rec->positions[0].top.ids[i]),
                     rec->positions[0].top.logprobs[i]);
  }
  auto lp_other = backend.logprobs(7);
  for (const auto& c : BigramBackend::top(lp_other, 20)) {
    other.emplace_back("#" + std::to_string(c.id), c.logprob);
  }
  EXPECT_NEAR(js_divergence_with_rest(full, cut), 0.0, 1e-6);
  EXPECT_GT(js_divergence_with_rest(other, cut), 1e-3);
}

TEST(DialectTruncation, VllmMaxLogprobsIsLearnt) {
  BigramBackend backend;
  ASSERT_TRUE(backend.ok());
  ServerOptions so;
  so.dialect = Dialect::kVllm;
  so.max_top_logprobs = 4;  // vllm serve --max-logprobs 4
  auto server = start_server(backend, so);
  EndpointOptions o = fast_options(server->port());
  o.dialect = Dialect::kVllm;
  o.tokenizer = &backend.tokenizer();
  auto client = make_client(o);
  auto info = client->discover(20);
  ASSERT_TRUE(info.is_ok()) << info.status().to_string();
  EXPECT_EQ(info->top_k_limit, 4u);
  EXPECT_EQ(info->version, "prov 0.1.0");
  Probe p = text_probe("v", "the cat", 20, 1);
  p.score_texts = {" sat"};
  auto rec = client->run_probe(p, 0);
  ASSERT_TRUE(rec.is_ok()) << rec.status().to_string();
  EXPECT_EQ(rec->positions.at(0).top.ids.size(), 4u);
}

// ---- reasoning models ------------------------------------------------------------------------

TEST(DialectReasoning, RefusedLogprobsGiveATextOnlySignatureThatSaysSo) {
  BigramBackend backend;
  ASSERT_TRUE(backend.ok());
  ServerOptions so;
  so.reasoning_model = true;
  auto server = start_server(backend, so);
  EndpointOptions o = fast_options(server->port());
  o.chat = true;
  auto client = make_client(o);
  auto info = client->discover(5);
  ASSERT_TRUE(info.is_ok()) << info.status().to_string();
  EXPECT_EQ(info->logprob_mode, "none");
  EXPECT_EQ(info->api, "openai-chat");
  ASSERT_GE(info->notes.size(), 2u);
  auto rec = client->run_probe(text_probe("r", "the cat", 5, 4), 0);
  ASSERT_TRUE(rec.is_ok()) << rec.status().to_string();
  EXPECT_TRUE(rec->positions.empty());
  EXPECT_FALSE(rec->continuation_text.empty());

  // The refusals themselves, as OpenAI words them.
  httplib::Client http("127.0.0.1", server->port());
  auto r = http.Post("/v1/chat/completions",
                     R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": 2})",
                     "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  json e = json::parse(r->body)["error"];
  EXPECT_EQ(e["code"], "unsupported_parameter");
  EXPECT_EQ(e["param"], "max_tokens");
  EXPECT_NE(e["message"].get<std::string>().find("max_completion_tokens"), std::string::npos);
}

// ---- the wire formats, read with a plain HTTP client -----------------------------------------

json post_json(int port, const std::string& path, const json& body, int* status,
               httplib::Headers headers = {}) {
  httplib::Client cli("127.0.0.1", port);
  cli.set_read_timeout(5, 0);
  auto r = cli.Post(path.c_str(), headers, body.dump(), "application/json");
  *status = r ? r->status : 0;
  return r ? json::parse(r->body, nullptr, false) : json();
}

std::string post_raw(int port, const std::string& path, const json& body, int* status,
                     httplib::Headers headers = {}) {
  httplib::Client cli("127.0.0.1", port);
  cli.set_read_timeout(5, 0);
  auto r = cli.Post(path.c_str(), headers, body.dump(), "application/json");
  *status = r ? r->status : 0;
  return r ? r->body : "";
}

// The JSON payloads of server-sent events ("data:" lines), with their event names.
std::vector<std::pair<std::string, json>> events_of(const std::string& text) {
  std::vector<std::pair<std::string, json>> out;
  std::string event;
  size_t at = 0;
  while (at < text.size()) {
    size_t end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(at, end - at);
    if (line.rfind("event: ", 0) == 0) event = line.substr(7);
    if (line.rfind("data:", 0) == 0) {
      out.emplace_back(event, json::parse(line.substr(line[5] == ' ' ? 6 : 5), nullptr, false));
      event.clear();
    }
    at = end + 1;
  }
  return out;
}

std::string post_paths_for_test(Dialect d) {
  switch (d) {
    case Dialect::kSglang:
    case Dialect::kTgi:
      return "/generate";
    case Dialect::kLlamaCpp:
      return "/completion";
    case Dialect::kAnthropic:
      return "/v1/messages";
    default:
      return "/v1/completions";
  }
}

class WireFormat : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(backend_.ok()); }
  std::unique_ptr<Server> serve(Dialect d, ServerOptions so = {}) {
    so.dialect = d;
    return start_server(backend_, so);
  }
  BigramBackend backend_;
};

TEST_F(WireFormat, VllmPromptLogprobsIdsAndErrors) {
  auto server = serve(Dialect::kVllm);
  int status = 0;
  json j = post_json(server->port(), "/v1/completions",
                     {{"prompt", "the cat"},
                      {"max_tokens", 2},
                      {"temperature", 0},
                      {"logprobs", 2},
                      {"echo", true},
                      {"prompt_logprobs", 2},
                      {"return_token_ids", true}},
                     &status);
  ASSERT_EQ(status, 200) << j.dump();
  const json& c = j["choices"][0];
  auto ids = backend_.encode("the cat");
  EXPECT_EQ(c["prompt_token_ids"], ids);
  EXPECT_EQ(c["token_ids"], backend_.greedy(ids, 2));
  EXPECT_TRUE(c["stop_reason"].is_null());
  ASSERT_EQ(c["prompt_logprobs"].size(), ids.size());
  EXPECT_TRUE(c["prompt_logprobs"][0].is_null());
  const json& p1 = c["prompt_logprobs"][1][std::to_string(ids[1])];
  EXPECT_EQ(p1["decoded_token"], backend_.decode({ids[1]}));
  EXPECT_NEAR(p1["logprob"].get<double>(), backend_.logprobs(ids[0])[ids[1]], 1e-6);
  // vLLM's offsets add up the token strings: "<s>" takes 3 characters.
  EXPECT_EQ(c["logprobs"]["text_offset"][1], 3);
  EXPECT_FALSE(c["logprobs"].contains("top_logprobs_ids"));  // prov's extension is not vLLM's
  // --max-logprobs, in vLLM's words and error body.
  j = post_json(server->port(), "/v1/completions", {{"prompt", "the"}, {"logprobs", 30}}, &status);
  EXPECT_EQ(status, 400);
  EXPECT_EQ(j["object"], "error");
  EXPECT_EQ(j["type"], "BadRequestError");
  EXPECT_EQ(j["message"], "Requested sample logprobs of 30, which is greater than max allowed: 20");
  httplib::Client cli("127.0.0.1", server->port());
  auto v = cli.Get("/version");
  ASSERT_TRUE(v);
  EXPECT_EQ(json::parse(v->body)["version"], "prov 0.1.0");
}

TEST_F(WireFormat, SglangGenerateMetaInfo) {
  auto server = serve(Dialect::kSglang);
  int status = 0;
  auto ids = backend_.encode("the cat");
  json j = post_json(server->port(), "/generate",
                     {{"text", "the cat"},
                      {"sampling_params", {{"max_new_tokens", 2}, {"temperature", 0}}},
                      {"return_logprob", true},
                      {"logprob_start_len", 0},
                      {"top_logprobs_num", 3},
                      {"token_ids_logprob", {5, 9}},
                      {"return_text_in_logprobs", true}},
                     &status);
  ASSERT_EQ(status, 200) << j.dump();
  const json& m = j["meta_info"];
  auto gen = backend_.greedy(ids, 2);
  EXPECT_EQ(j["text"], backend_.decode(gen));
  EXPECT_EQ(j["output_ids"], gen);
  EXPECT_EQ(m["finish_reason"]["type"], "length");
  EXPECT_EQ(m["prompt_tokens"], ids.size());
  ASSERT_EQ(m["input_token_logprobs"].size(), ids.size());
  EXPECT_TRUE(m["input_token_logprobs"][0][0].is_null());
  EXPECT_EQ(m["input_token_logprobs"][1][1], ids[1]);
  EXPECT_EQ(m["input_token_logprobs"][1][2], backend_.decode({ids[1]}));
  EXPECT_EQ(m["output_top_logprobs"][0].size(), 3u);
  EXPECT_EQ(m["output_token_ids_logprobs"][0][1][1], 9);
  EXPECT_NEAR(m["output_token_ids_logprobs"][0][1][0].get<double>(),
              backend_.logprobs(ids.back())[9], 1e-6);
  // No logprobs asked: none given; an error body in SGLang's shape.
  j = post_json(server->port(), "/generate", {{"text", "the"}}, &status);
  EXPECT_EQ(status, 200);
  EXPECT_FALSE(j["meta_info"].contains("input_token_logprobs"));
  j = post_json(server->port(), "/generate", {{"text", "the"}, {"input_ids", {4}}}, &status);
  EXPECT_EQ(status, 400);
  EXPECT_TRUE(j["error"]["message"].is_string());
  httplib::Client cli("127.0.0.1", server->port());
  auto info = cli.Get("/get_model_info");
  ASSERT_TRUE(info);
  EXPECT_EQ(json::parse(info->body)["model_path"], "bigram");
}

TEST_F(WireFormat, TgiGenerateDetailsStreamAndValidation) {
  auto server = serve(Dialect::kTgi);
  int status = 0;
  auto ids = backend_.encode("the cat");
  json params = {{"max_new_tokens", 3},
                 {"details", true},
                 {"decoder_input_details", true},
                 {"top_n_tokens", 2}};
  json j = post_json(server->port(), "/generate", {{"inputs", "the cat"}, {"parameters", params}},
                     &status);
  ASSERT_EQ(status, 200) << j.dump();
  auto gen = backend_.greedy(ids, 3);
  EXPECT_EQ(j["generated_text"], backend_.decode(gen));
  const json& d = j["details"];
  EXPECT_EQ(d["finish_reason"], "length");
  EXPECT_EQ(d["generated_tokens"], 3);
  ASSERT_EQ(d["prefill"].size(), ids.size());
  EXPECT_TRUE(d["prefill"][0]["logprob"].is_null());
  EXPECT_EQ(d["tokens"][1]["id"], gen[1]);
  EXPECT_EQ(d["top_tokens"][0].size(), 2u);
  // Streaming: the same tokens as events; prefill details refused there.
  params.erase("decoder_input_details");
  std::string sse = post_raw(server->port(), "/generate_stream",
                             {{"inputs", "the cat"}, {"parameters", params}}, &status);
  ASSERT_EQ(status, 200) << sse;
  auto ev = events_of(sse);
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_EQ(ev[1].second["token"]["id"], gen[1]);
  EXPECT_TRUE(ev[0].second["generated_text"].is_null());
  EXPECT_EQ(ev[2].second["generated_text"], backend_.decode(gen));
  params["decoder_input_details"] = true;
  j = post_json(server->port(), "/generate_stream", {{"inputs", "the"}, {"parameters", params}},
                &status);
  EXPECT_EQ(status, 422);
  EXPECT_EQ(j["error_type"], "validation");
  EXPECT_NE(j["error"].get<std::string>().find("not supported when streaming"), std::string::npos);
  j = post_json(server->port(), "/generate",
                {{"inputs", "the"}, {"parameters", {{"top_n_tokens", 20}}}}, &status);
  EXPECT_EQ(status, 422);
  EXPECT_EQ(j["error"], "`top_n_tokens` must be >= 0 and <= 5. Given: 20");
  j = post_json(server->port(), "/generate",
                {{"inputs", "the"}, {"parameters", {{"max_new_tokens", 0}}}}, &status);
  EXPECT_EQ(status, 422);
}

TEST_F(WireFormat, LlamaCppCompletionProbabilitiesAndPostSampling) {
  auto server = serve(Dialect::kLlamaCpp);
  int status = 0;
  auto ids = backend_.encode("the cat");
  json j = post_json(server->port(), "/completion",
                     {{"prompt", "the cat"},
                      {"n_predict", 2},
                      {"temperature", 0},
                      {"n_probs", 3},
                      {"return_tokens", true}},
                     &status);
  ASSERT_EQ(status, 200) << j.dump();
  auto gen = backend_.greedy(ids, 2);
  EXPECT_EQ(j["content"], backend_.decode(gen));
  EXPECT_EQ(j["tokens"], gen);
  EXPECT_EQ(j["stop_type"], "limit");
  EXPECT_EQ(j["tokens_evaluated"], ids.size());
  const json& cp = j["completion_probabilities"];
  ASSERT_EQ(cp.size(), 2u);
  EXPECT_EQ(cp[0]["id"], gen[0]);
  EXPECT_EQ(cp[0]["top_logprobs"].size(), 3u);
  EXPECT_NEAR(cp[0]["top_logprobs"][0]["logprob"].get<double>(),
              BigramBackend::top(backend_.logprobs(ids.back()), 1)[0].logprob, 1e-6);
  // After the sampler (greedy): the chosen token has probability 1.
  j = post_json(server->port(), "/completion",
                {{"prompt", "the cat"},
                 {"n_predict", 1},
                 {"temperature", 0},
                 {"n_probs", 3},
                 {"post_sampling_probs", true}},
                &status);
  ASSERT_EQ(status, 200);
  EXPECT_EQ(j["completion_probabilities"][0]["prob"], 1.0);
  EXPECT_EQ(j["completion_probabilities"][0]["top_probs"][1]["prob"], 0.0);
  // Streaming: the pieces add up to the content.
  std::string sse = post_raw(
      server->port(), "/completion",
      {{"prompt", "the cat"}, {"n_predict", 4}, {"temperature", 0}, {"stream", true}}, &status);
  ASSERT_EQ(status, 200);
  std::string text;
  auto ev = events_of(sse);
  ASSERT_EQ(ev.size(), 5u);
  for (const auto& e : ev) text += e.second["content"].get<std::string>();
  EXPECT_EQ(text, backend_.decode(backend_.greedy(ids, 4)));
  EXPECT_EQ(ev.back().second["stop"], true);
  httplib::Client cli("127.0.0.1", server->port());
  auto props = cli.Get("/props");
  ASSERT_TRUE(props);
  EXPECT_EQ(json::parse(props->body)["build_info"], "prov 0.1.0");
}

TEST_F(WireFormat, AnthropicMessagesHeadersErrorsAndStream) {
  ServerOptions so;
  so.api_key = "sk-ant";
  auto server = serve(Dialect::kAnthropic, so);
  int status = 0;
  httplib::Headers h = {{"x-api-key", "sk-ant"}, {"anthropic-version", "2023-06-01"}};
  json req = {{"model", "bigram"},
              {"max_tokens", 3},
              {"temperature", 0},
              {"messages", {{{"role", "user"}, {"content", "the cat"}}}}};
  json j = post_json(server->port(), "/v1/messages", req, &status, h);
  ASSERT_EQ(status, 200) << j.dump();
  auto ids = backend_.encode("User: the cat\nAssistant:", true);
  const std::string want = backend_.decode(backend_.greedy(ids, 3));
  EXPECT_EQ(j["type"], "message");
  EXPECT_EQ(j["content"][0]["text"], want);
  EXPECT_EQ(j["stop_reason"], "max_tokens");
  EXPECT_EQ(j["usage"]["output_tokens"], 3);
  // The key in x-api-key, the version header required, errors in Anthropic's shape.
  j = post_json(server->port(), "/v1/messages", req, &status,
                {{"x-api-key", "wrong"}, {"anthropic-version", "2023-06-01"}});
  EXPECT_EQ(status, 401);
  EXPECT_EQ(j["type"], "error");
  EXPECT_EQ(j["error"]["type"], "authentication_error");
  j = post_json(server->port(), "/v1/messages", req, &status, {{"x-api-key", "sk-ant"}});
  EXPECT_EQ(status, 400);
  EXPECT_NE(j["error"]["message"].get<std::string>().find("anthropic-version"), std::string::npos);
  json no_max = req;
  no_max.erase("max_tokens");
  j = post_json(server->port(), "/v1/messages", no_max, &status, h);
  EXPECT_EQ(status, 400);
  EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  // Streaming: message_start .. message_stop, the deltas adding up to the text.
  req["stream"] = true;
  std::string sse = post_raw(server->port(), "/v1/messages", req, &status, h);
  ASSERT_EQ(status, 200);
  auto ev = events_of(sse);
  ASSERT_GE(ev.size(), 6u);
  EXPECT_EQ(ev.front().first, "message_start");
  EXPECT_EQ(ev.back().first, "message_stop");
  std::string text;
  for (const auto& e : ev) {
    if (e.first == "content_block_delta") text += e.second["delta"]["text"].get<std::string>();
  }
  EXPECT_EQ(text, want);
  EXPECT_EQ(ev[ev.size() - 2].second["delta"]["stop_reason"], "max_tokens");
}

TEST_F(WireFormat, RateLimitAnswers429WithRetryAfterInEachDialect) {
  for (Dialect d : kAll) {
    SCOPED_TRACE(dialect_name(d));
    ServerOptions so;
    so.rate_limit_rps = 1;
    auto server = serve(d, so);
    const std::string path = post_paths_for_test(d);
    httplib::Client cli("127.0.0.1", server->port());
    httplib::Headers h = {{"anthropic-version", "2023-06-01"}};
    auto a = cli.Post(path.c_str(), h, "{}", "application/json");
    auto b = cli.Post(path.c_str(), h, "{}", "application/json");
    ASSERT_TRUE(a && b);
    EXPECT_NE(a->status, 429);
    EXPECT_EQ(b->status, 429);
    EXPECT_EQ(b->get_header_value("Retry-After"), "1");
    EXPECT_FALSE(b->body.empty());
  }
}

// ---- the rest bucket -------------------------------------------------------------------------

TEST(RestBucket, TruncatedListsCompareWithARestBucketPerSide) {
  const float l = std::log(0.5f), m = std::log(0.3f), s = std::log(0.1f);
  KeyedLogprobs a = {{"x", l}, {"y", m}, {"z", s}};
  KeyedLogprobs b = {{"x", l}, {"z", m}};
  SharedBuckets sb = shared_buckets(a, b);  // both cut to 2: a's {x, y}, b's {x, z}
  ASSERT_EQ(sb.keys, (std::vector<std::string>{"x", "y", "z"}));
  ASSERT_EQ(sb.p.size(), 4u);
  EXPECT_NEAR(sb.p[1], 0.3, 1e-6);
  EXPECT_EQ(sb.p[2], 0.0);          // z is not listed on a's side: its mass is in a's rest
  EXPECT_NEAR(sb.p[3], 0.2, 1e-6);  // a's rest
  EXPECT_NEAR(sb.q[3], 0.2, 1e-6);  // b's rest
  EXPECT_GT(js_divergence_with_rest(a, b), 0.05);
  EXPECT_NEAR(js_divergence_with_rest(a, a), 0.0, 1e-9);
  // The same distribution truncated deeper or shallower compares at 0.
  KeyedLogprobs a2 = {{"x", l}, {"y", m}};
  EXPECT_NEAR(js_divergence_with_rest(a, a2), 0.0, 1e-9);
  // Nothing in common: far apart (not collapsed into one bucket).
  KeyedLogprobs c = {{"u", l}, {"v", m}};
  EXPECT_GT(js_divergence_with_rest(a2, c), 0.4);
  EXPECT_NEAR(total_variation_with_rest(a2, c), 0.8, 1e-6);
  EXPECT_NEAR(js_divergence_with_rest(a, {}), std::log(2.0), 1e-12);
  // Rounding past 1 is scaled back; the rest bucket is never negative.
  SharedBuckets over = shared_buckets({{"x", 0.0f}, {"y", -0.01f}}, {{"x", 0.0f}, {"y", 0.0f}});
  EXPECT_GE(over.p.back(), 0.0);
  double sum = 0;
  for (double v : over.p) sum += v;
  EXPECT_NEAR(sum, 1.0, 1e-9);
}

TEST(DialectNames, ParseAndTraits) {
  for (Dialect d : kAll) {
    auto p = parse_dialect(dialect_name(d));
    ASSERT_TRUE(p.is_ok());
    EXPECT_EQ(*p, d);
  }
  EXPECT_EQ(*parse_dialect("llama.cpp"), Dialect::kLlamaCpp);
  auto bad = parse_dialect("ollama");
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("sglang"), std::string::npos);
  EXPECT_EQ(dialect_traits(Dialect::kTgi).top_k_cap, 5u);
  EXPECT_TRUE(dialect_traits(Dialect::kAnthropic).text_only);
  EXPECT_FALSE(dialect_traits(Dialect::kLlamaCpp).prompt_logprobs);
}

}  // namespace
}  // namespace prov::probes
