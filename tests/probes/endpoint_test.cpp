// The OpenAI-compatible server (probes/server.h) and the endpoint client (probes/endpoint.h),
// against each other and against small raw HTTP servers that misbehave on purpose.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <sys/socket.h>

#include <nlohmann/json.hpp>

#include "model/tokenizers/tokenizer.h"
#include "probes/endpoint.h"
#include "probes/server.h"
#include "tests/probes/bigram_backend.h"

namespace prov::probes {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace testing;  // NOLINT: the shared backend of these tests

class BackendFixture : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(backend_.ok()); }
  BigramBackend backend_;
};

// ---------------------------------------------------------------------------------------------
// The tokenizer behaves as the tests assume.

TEST_F(BackendFixture, TokenizerSanity) {
  auto ids = backend_.encode("the cat sat");
  ASSERT_EQ(ids.size(), 4u);
  EXPECT_EQ(ids[0], 0);  // BOS from the template
  EXPECT_EQ(backend_.decode({ids[1]}), "the");
  EXPECT_EQ(backend_.decode({ids[2]}), " cat");
  EXPECT_EQ(backend_.decode({ids[3]}), " sat");
  EXPECT_EQ(backend_.tokenizer().eos_id(), 1);
}

// ---------------------------------------------------------------------------------------------
// Client against the real server.

TEST_F(BackendFixture, CompletionProbeMatchesBackend) {
  auto server = start_server(backend_);
  ASSERT_NE(server, nullptr);
  auto client = make_client(fast_options(server->port()));
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(client->api_base(), "http://127.0.0.1:" + std::to_string(server->port()) + "/v1");

  auto rec = client->run_probe(text_probe("p1", "the cat", 5, 6), 7);
  ASSERT_TRUE(rec.is_ok()) << rec.status().to_string();
  EXPECT_EQ(rec->index, 7u);
  EXPECT_EQ(rec->probe_id, "p1");
  auto ids = backend_.encode("the cat");
  auto want = BigramBackend::top(backend_.logprobs(ids.back()), 5);
  ASSERT_EQ(rec->positions.size(), 1u);
  const TopK& top = rec->positions[0].top;
  ASSERT_EQ(top.ids.size(), 5u);
  ASSERT_EQ(top.tokens.size(), 5u);
  ASSERT_EQ(top.logprobs.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(top.ids[i], want[i].id);
    EXPECT_EQ(top.tokens[i], backend_.decode({want[i].id}));
    // Bit-exact through JSON: floats print round-trippably.
    EXPECT_EQ(top.logprobs[i], want[i].logprob) << i;
  }
  EXPECT_EQ(rec->positions[0].token_id, -1);
  EXPECT_TRUE(std::isnan(rec->positions[0].token_logprob));
  auto gen = backend_.greedy(ids, 6);
  EXPECT_EQ(rec->continuation_text, backend_.decode(gen));
  EXPECT_FALSE(rec->continuation_text.empty());
  EXPECT_EQ(client->counters().requests, 1u);
  EXPECT_EQ(client->counters().retries, 0u);

  // greedy_tokens == 0: the one generated token is not recorded; top_k == 0: no positions.
  auto rec0 = client->run_probe(text_probe("p0", "the cat", 3, 0), 0);
  ASSERT_TRUE(rec0.is_ok()) << rec0.status().to_string();
  EXPECT_TRUE(rec0->continuation_text.empty());
  EXPECT_EQ(rec0->positions.size(), 1u);
  auto rec_text = client->run_probe(text_probe("pt", "the cat", 0, 2), 0);
  ASSERT_TRUE(rec_text.is_ok());
  EXPECT_TRUE(rec_text->positions.empty());
  EXPECT_EQ(rec_text->continuation_text, backend_.decode(backend_.greedy(ids, 2)));
}

TEST_F(BackendFixture, IdsPromptInCompletionMode) {
  auto server = start_server(backend_);
  ASSERT_NE(server, nullptr);
  auto client = make_client(fast_options(server->port()));
  ASSERT_NE(client, nullptr);
  Probe p;
  p.id = "r1";
  p.ids = std::vector<int32_t>{5, 9, 12, 30};
  p.top_k = 4;
  p.greedy_tokens = 3;
  auto rec = client->run_probe(p, 2);
  ASSERT_TRUE(rec.is_ok()) << rec.status().to_string();
  EXPECT_EQ(rec->prompt_ids, *p.ids);
  auto want = BigramBackend::top(backend_.logprobs(30), 4);
  ASSERT_EQ(rec->positions.size(), 1u);
  ASSERT_EQ(rec->positions[0].top.ids.size(), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(rec->positions[0].top.ids[i], want[i].id);
  EXPECT_EQ(rec->continuation_text, backend_.decode(backend_.greedy(*p.ids, 3)));
  // A continuation after an ids prompt cannot be sent as text.
  p.score_texts = {" cat"};
  auto bad = client->run_probe(p, 2);
  EXPECT_EQ(bad.status().code(), StatusCode::kUnsupported);
}

TEST_F(BackendFixture, ContinuationAndScoreTexts) {
  auto server = start_server(backend_);
  ASSERT_NE(server, nullptr);
  auto client = make_client(fast_options(server->port()));
  ASSERT_NE(client, nullptr);
  Probe p = text_probe("c1", "the cat", 3, 0);
  p.continuation = " sat the cat";
  p.score_texts = {" sat", "s", " cat sat"};
  auto rec = client->run_probe(p, 0);
  ASSERT_TRUE(rec.is_ok()) << rec.status().to_string();
  const size_t prompt_len = backend_.encode("the cat").size();

  // Continuation: one position per token, each with its predicting distribution.
  auto full = backend_.encode("the cat sat the cat");
  ASSERT_EQ(rec->positions.size(), full.size() - prompt_len);
  for (size_t j = 0; j < rec->positions.size(); ++j) {
    const auto& pos = rec->positions[j];
    int32_t prev = full[prompt_len + j - 1], id = full[prompt_len + j];
    auto lp = backend_.logprobs(prev);
    EXPECT_EQ(pos.token_id, id);
    EXPECT_EQ(pos.token, backend_.decode({id}));
    EXPECT_EQ(pos.token_logprob, lp[id]);
    auto want = BigramBackend::top(lp, 3);
    ASSERT_EQ(pos.top.ids.size(), 3u);
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(pos.top.ids[i], want[i].id);
      EXPECT_EQ(pos.top.logprobs[i], want[i].logprob);
    }
  }
  EXPECT_TRUE(rec->continuation_text.empty());

  ASSERT_EQ(rec->scores.size(), 3u);
  for (size_t s = 0; s < 3; ++s) {
    const ScoredText& st = rec->scores[s];
    EXPECT_EQ(st.text, p.score_texts[s]);
    auto ids = backend_.encode("the cat" + p.score_texts[s]);
    std::vector<int32_t> want_ids(ids.begin() + prompt_len, ids.end());
    EXPECT_EQ(st.ids, want_ids) << s;
    ASSERT_EQ(st.token_logprobs.size(), want_ids.size());
    double total = 0;
    std::string joined;
    for (size_t i = 0; i < want_ids.size(); ++i) {
      float lp = backend_.logprobs(ids[prompt_len + i - 1])[want_ids[i]];
      EXPECT_EQ(st.token_logprobs[i], lp);
      total += lp;
      joined += st.tokens[i];
    }
    EXPECT_DOUBLE_EQ(st.total_logprob, total);
    EXPECT_EQ(joined, p.score_texts[s]);
  }
  // "s" merges into nothing: the prompt "the cat" ends with " cat" and "s" is a new token.
  EXPECT_EQ(rec->scores[1].ids.size(), 1u);
  // No main request (greedy 0 with a continuation): 1 continuation + 3 scores.
  EXPECT_EQ(client->counters().requests, 4u);

  // A text that merges into the prompt's last token cannot be scored on its own.
  Probe straddle = text_probe("s1", "the ca", 0, 0);
  straddle.score_texts = {"t"};
  auto bad = client->run_probe(straddle, 0);
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument) << bad.status().to_string();
  EXPECT_NE(bad.status().message().find("'s1'"), std::string::npos);
}

TEST_F(BackendFixture, ChatProbeWithChatMl) {
  backend_.set_chat_template(kChatMlTemplate);
  auto server = start_server(backend_);
  ASSERT_NE(server, nullptr);
  auto o = fast_options(server->port());
  o.chat = true;
  auto client = make_client(o);
  ASSERT_NE(client, nullptr);
  auto rec = client->run_probe(text_probe("chat1", "the cat", 4, 5), 1);
  ASSERT_TRUE(rec.is_ok()) << rec.status().to_string();
  auto ids = backend_.encode("<|im_start|>user\nthe cat<|im_end|>\n<|im_start|>assistant\n",
                             /*special=*/false);
  ASSERT_GT(ids.size(), 6u);
  EXPECT_EQ(ids[0], 2);  // <|im_start|> recognised as a special token
  auto want = BigramBackend::top(backend_.logprobs(ids.back()), 4);
  ASSERT_EQ(rec->positions.size(), 1u);
  const TopK& top = rec->positions[0].top;
  EXPECT_TRUE(top.ids.empty());  // chat reports strings only
  ASSERT_EQ(top.tokens.size(), 4u);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(top.tokens[i], backend_.decode({want[i].id}));
    EXPECT_EQ(top.logprobs[i], want[i].logprob);
  }
  EXPECT_EQ(rec->continuation_text, backend_.decode(backend_.greedy(ids, 5)));

  Probe scored = text_probe("chat2", "the cat", 4, 0);
  scored.score_texts = {" sat"};
  EXPECT_EQ(client->run_probe(scored, 0).status().code(), StatusCode::kUnsupported);
  Probe by_ids;
  by_ids.id = "chat3";
  by_ids.ids = std::vector<int32_t>{5, 6};
  EXPECT_EQ(client->run_probe(by_ids, 0).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(BackendFixture, WrongApiKeyIsNotRetried) {
  ServerOptions so;
  so.api_key = "s3cret-server-key";
  auto server = start_server(backend_, so);
  ASSERT_NE(server, nullptr);
  auto o = fast_options(server->port());
  o.api_key = "hunter2-client-key";
  auto client = make_client(o);
  ASSERT_NE(client, nullptr);
  auto rec = client->run_probe(text_probe("k", "the cat", 2, 1), 0);
  ASSERT_FALSE(rec.is_ok());
  EXPECT_EQ(rec.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(rec.status().message().find("401"), std::string::npos) << rec.status().message();
  EXPECT_EQ(rec.status().message().find("hunter2"), std::string::npos);
  EXPECT_EQ(client->counters().requests, 1u);
  EXPECT_EQ(client->counters().retries, 0u);
  EXPECT_EQ(backend_.calls.load(), 0);

  o.api_key = "s3cret-server-key";
  auto good = make_client(o);
  ASSERT_NE(good, nullptr);
  EXPECT_TRUE(good->run_probe(text_probe("k", "the cat", 2, 1), 0).is_ok());
}

TEST_F(BackendFixture, SuiteAgainstServerConcurrently) {
  ServerOptions so;
  so.threads = 4;
  auto server = start_server(backend_, so);
  ASSERT_NE(server, nullptr);
  auto o = fast_options(server->port());
  o.concurrency = 8;
  auto client = make_client(o);
  ASSERT_NE(client, nullptr);
  const std::vector<std::string> words = {"the", "cat", "sat", "at", "hat", "ch"};
  Suite suite;
  for (int i = 0; i < 30; ++i) {
    std::string text = words[i % words.size()] + " " + words[(i * 7 + 1) % words.size()];
    Probe p = text_probe("p" + std::to_string(i), text, 3, 1 + i % 4);
    if (i % 5 == 0) p.score_texts = {" cat"};
    suite.probes.push_back(p);
  }
  std::vector<ProbeRecord> got;
  Status s = client->run_suite(suite, {}, [&](const ProbeRecord& r) {
    got.push_back(r);
    return Status::ok();
  });
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  ASSERT_EQ(got.size(), suite.probes.size());
  for (size_t i = 0; i < got.size(); ++i) {
    const Probe& p = suite.probes[i];
    EXPECT_EQ(got[i].index, i);
    auto ids = backend_.encode(*p.text);
    auto want = BigramBackend::top(backend_.logprobs(ids.back()), 3);
    ASSERT_EQ(got[i].positions.size(), 1u);
    ASSERT_EQ(got[i].positions[0].top.ids.size(), 3u);
    for (int k = 0; k < 3; ++k) {
      EXPECT_EQ(got[i].positions[0].top.ids[k], want[k].id);
      EXPECT_EQ(got[i].positions[0].top.logprobs[k], want[k].logprob);
    }
    EXPECT_EQ(got[i].continuation_text, backend_.decode(backend_.greedy(ids, p.greedy_tokens)));
    EXPECT_EQ(got[i].scores.size(), p.score_texts.size());
  }
}

// ---------------------------------------------------------------------------------------------
// The server's wire format, read with a plain HTTP client.

struct Reply {
  int status = 0;
  json body;
};

Reply post(int port, const std::string& path, const std::string& body,
           const std::string& auth = "") {
  httplib::Client cli("127.0.0.1", port);
  cli.set_read_timeout(5, 0);
  httplib::Headers h;
  if (!auth.empty()) h.emplace("Authorization", auth);
  auto r = cli.Post(path.c_str(), h, body, "application/json");
  Reply out;
  if (!r) return out;
  out.status = r->status;
  out.body = json::parse(r->body, nullptr, false);
  return out;
}

TEST_F(BackendFixture, ServerCompletionWireFormat) {
  auto server = start_server(backend_);
  ASSERT_NE(server, nullptr);
  const int port = server->port();
  // Echo: the text starts with the prompt as sent; BOS takes no room; offsets in code points.
  json req = {{"model", "bigram"}, {"prompt", "the cat"}, {"max_tokens", 3},
              {"temperature", 0},  {"logprobs", 2},       {"echo", true}};
  Reply r = post(port, "/v1/completions", req.dump());
  ASSERT_EQ(r.status, 200) << r.body.dump();
  auto prompt_ids = backend_.encode("the cat");
  auto gen = backend_.greedy(prompt_ids, 3);
  const json& c = r.body["choices"][0];
  EXPECT_EQ(c["text"], "the cat" + backend_.decode(gen));
  EXPECT_EQ(c["finish_reason"], "length");
  const json& lp = c["logprobs"];
  ASSERT_EQ(lp["tokens"].size(), prompt_ids.size() + 3);
  EXPECT_TRUE(lp["token_logprobs"][0].is_null());
  EXPECT_TRUE(lp["top_logprobs"][0].is_null());
  EXPECT_EQ(lp["tokens"][0], "<s>");
  EXPECT_EQ(lp["text_offset"][0], 0);
  EXPECT_EQ(lp["text_offset"][1], 0);  // "the"
  EXPECT_EQ(lp["text_offset"][2], 3);  // " cat"
  EXPECT_EQ(lp["text_offset"][3], 7);  // first generated token
  EXPECT_EQ(lp["token_ids"][4], gen[1]);
  EXPECT_EQ(lp["top_logprobs_ids"][3].size(), 2u);
  EXPECT_EQ(lp["top_logprobs_ids"][3][0]["id"],
            BigramBackend::top(backend_.logprobs(prompt_ids.back()), 2)[0].id);
  EXPECT_EQ(r.body["usage"]["prompt_tokens"], prompt_ids.size());
  EXPECT_EQ(r.body["usage"]["completion_tokens"], 3);
  EXPECT_EQ(r.body["usage"]["total_tokens"], prompt_ids.size() + 3);
  // Full float precision: the JSON number parses back to the float exactly.
  float want = backend_.logprobs(prompt_ids[1])[prompt_ids[2]];
  EXPECT_EQ(static_cast<float>(lp["token_logprobs"][2].get<double>()), want);
  EXPECT_EQ(lp["token_logprobs"][2].get<double>(), static_cast<double>(want));

  // return_tokens_as_token_ids and a stop string cutting the text.
  std::string gen_text = backend_.decode(backend_.greedy(prompt_ids, 8));
  ASSERT_GE(gen_text.size(), 4u);
  std::string stop = gen_text.substr(2, 2);
  size_t cut = gen_text.find(stop);
  json req2 = {{"prompt", "the cat"}, {"max_tokens", 8}, {"temperature", 0},
               {"logprobs", 1},       {"stop", stop},    {"return_tokens_as_token_ids", true}};
  Reply r2 = post(port, "/v1/completions", req2.dump());
  ASSERT_EQ(r2.status, 200) << r2.body.dump();
  EXPECT_EQ(r2.body["choices"][0]["text"], gen_text.substr(0, cut));
  EXPECT_EQ(r2.body["choices"][0]["finish_reason"], "stop");
  const json& lp2 = r2.body["choices"][0]["logprobs"];
  ASSERT_FALSE(lp2["tokens"].empty());
  std::string t0 = lp2["tokens"][0];
  EXPECT_EQ(t0.rfind("token_id:", 0), 0u) << t0;
  EXPECT_TRUE(lp2["top_logprobs"][0].begin().key().rfind("token_id:", 0) == 0);

  // Prompt as ids; sampling with a seed is repeatable.
  json req3 = {{"prompt", {4, 5, 6}}, {"max_tokens", 6}, {"temperature", 1.0}, {"seed", 42}};
  Reply a = post(port, "/v1/completions", req3.dump());
  Reply b = post(port, "/v1/completions", req3.dump());
  ASSERT_EQ(a.status, 200);
  EXPECT_EQ(a.body["choices"][0]["text"], b.body["choices"][0]["text"]);
  EXPECT_TRUE(a.body["choices"][0]["logprobs"].is_null());
}

TEST_F(BackendFixture, ServerErrors) {
  ServerOptions so;
  so.max_body_bytes = 4096;
  auto server = start_server(backend_, so);
  ASSERT_NE(server, nullptr);
  const int port = server->port();
  auto expect_error = [&](const Reply& r, int status, const std::string& needle) {
    EXPECT_EQ(r.status, status) << r.body.dump();
    ASSERT_TRUE(r.body.is_object() && r.body.contains("error")) << r.body.dump();
    std::string m = r.body["error"]["message"];
    EXPECT_NE(m.find(needle), std::string::npos) << m;
    EXPECT_EQ(r.body["error"]["code"], status);
  };
  expect_error(post(port, "/v1/completions", "{not json"), 400, "invalid JSON");
  expect_error(post(port, "/v1/completions", "[1]"), 400, "JSON object");
  expect_error(post(port, "/v1/completions", R"({"prompt": "the", "max_tokens": -1})"), 400,
               "max_tokens");
  expect_error(post(port, "/v1/completions", R"({"prompt": "the", "logprobs": 99})"), 400,
               "logprobs");
  expect_error(post(port, "/v1/completions", R"({"prompt": [1, 100000]})"), 400, "token ids");
  expect_error(post(port, "/v1/completions", R"({"prompt": ["a", "b"]})"), 400, "batches");
  expect_error(post(port, "/v1/completions", R"({"model": "other", "prompt": "the"})"), 404,
               "other");
  expect_error(post(port, "/v1/nothing", "{}"), 404, "/v1/nothing");
  expect_error(post(port, "/v1/completions", std::string(5000, ' ')), 413, "4096");
  expect_error(post(port, "/v1/completions", R"({"prompt": "the", "max_tokens": 300})"), 400,
               "context");  // the backend's kInvalidArgument
  expect_error(post(port, "/v1/chat/completions", R"({"messages": []})"), 400, "messages");
  expect_error(
      post(port, "/v1/chat/completions", R"({"messages": [{"role": "robot", "content": "x"}]})"),
      400, "robot");
  std::string deep(200, '[');
  expect_error(post(port, "/v1/completions", deep), 400, "deeper");

  httplib::Client cli("127.0.0.1", port);
  auto models = cli.Get("/v1/models");
  ASSERT_TRUE(models);
  EXPECT_EQ(models->status, 200);
  EXPECT_EQ(json::parse(models->body)["data"][0]["id"], "bigram");
  auto health = cli.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

TEST_F(BackendFixture, ServerChatWireFormatAndPlainFallback) {
  auto server = start_server(backend_);  // no chat template: plain "User: ..." fallback
  ASSERT_NE(server, nullptr);
  json req = {{"messages", {{{"role", "user"}, {"content", "the cat"}}}},
              {"max_tokens", 2},
              {"temperature", 0},
              {"logprobs", true},
              {"top_logprobs", 2}};
  Reply r = post(server->port(), "/v1/chat/completions", req.dump());
  ASSERT_EQ(r.status, 200) << r.body.dump();
  // The fallback has capital letters this vocabulary lacks (dropped); BOS comes from the
  // tokenizer.
  auto ids = backend_.encode("User: the cat\nAssistant:", true);
  auto gen = backend_.greedy(ids, 2);
  const json& c = r.body["choices"][0];
  EXPECT_EQ(c["message"]["role"], "assistant");
  EXPECT_EQ(c["message"]["content"], backend_.decode(gen));
  const json& content = c["logprobs"]["content"];
  ASSERT_EQ(content.size(), 2u);
  std::string tok = content[1]["token"];
  EXPECT_EQ(tok, backend_.decode({gen[1]}));
  EXPECT_EQ(content[1]["bytes"].size(), tok.size());
  EXPECT_EQ(content[1]["top_logprobs"].size(), 2u);
  EXPECT_EQ(static_cast<float>(content[1]["logprob"].get<double>()),
            backend_.logprobs(gen[0])[gen[1]]);
  EXPECT_EQ(r.body["usage"]["completion_tokens"], 2);
}

TEST_F(BackendFixture, ServerStopsWithRequestsInFlightAndWaitReturns) {
  auto server = start_server(backend_);
  ASSERT_NE(server, nullptr);
  std::thread waiter([&] { server->wait(); });
  backend_.delay_ms = 150;
  Reply r;
  std::thread in_flight([&] {
    r = post(server->port(), "/v1/completions", R"({"prompt": "the", "max_tokens": 1})");
  });
  while (backend_.calls.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  server->stop();  // the request in flight still gets its answer
  in_flight.join();
  EXPECT_EQ(r.status, 200);
  waiter.join();
  server->stop();                                                      // idempotent
  EXPECT_EQ(post(server->port(), "/v1/completions", "{}").status, 0);  // nothing listens
}

// ---------------------------------------------------------------------------------------------
// Misbehaving servers.

// Raises cpp-httplib's listen backlog of 5 (as the real server does), so that eight clients
// connecting at once are not delayed by dropped connection attempts.
class BacklogServer : public httplib::Server {
 public:
  void widen_backlog() { ::listen(svr_sock_, SOMAXCONN); }
};

class RawServer {
 public:
  explicit RawServer(std::function<void(const httplib::Request&, httplib::Response&)> handler) {
    svr_.set_tcp_nodelay(true);
    svr_.Post("/v1/completions", handler);
    svr_.Post("/v1/chat/completions", handler);
    port_ = svr_.bind_to_any_port("127.0.0.1");
    svr_.widen_backlog();
    thread_ = std::thread([this] { svr_.listen_after_bind(); });
    while (!svr_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~RawServer() { stop(); }
  void stop() {
    if (thread_.joinable()) {
      svr_.stop();
      thread_.join();
    }
  }
  int port() const { return port_; }

 private:
  BacklogServer svr_;
  std::thread thread_;
  int port_ = 0;
};

std::string completion_body(const std::string& text) {
  json j = {{"choices",
             {{{"index", 0}, {"text", text}, {"logprobs", nullptr}, {"finish_reason", "length"}}}}};
  return j.dump();
}

TEST(EndpointReliability, RetriesServiceUnavailable) {
  std::atomic<int> n{0};
  RawServer raw([&](const httplib::Request&, httplib::Response& res) {
    if (n++ < 2) {
      res.status = 503;
      res.set_content(R"({"error": {"message": "warming up"}})", "application/json");
      return;
    }
    res.set_content(completion_body(" ok"), "application/json");
  });
  auto client = make_client(fast_options(raw.port()));
  ASSERT_NE(client, nullptr);
  auto rec = client->run_probe(text_probe("a", "x", 0, 2), 0);
  ASSERT_TRUE(rec.is_ok()) << rec.status().to_string();
  EXPECT_EQ(rec->continuation_text, " ok");
  EXPECT_TRUE(rec->positions.empty());  // no logprobs from this server: a text-only record
  EXPECT_EQ(client->counters().requests, 3u);
  EXPECT_EQ(client->counters().retries, 2u);

  // Persistent 503: kIo after the retries, with the server's message.
  n = -100;
  auto failed = client->run_probe(text_probe("b", "x", 0, 2), 0);
  EXPECT_EQ(failed.status().code(), StatusCode::kIo);
  EXPECT_NE(failed.status().message().find("warming up"), std::string::npos);
  EXPECT_NE(failed.status().message().find("4 attempts"), std::string::npos);
}

TEST(EndpointReliability, HonoursRetryAfter) {
  std::atomic<int> n{0};
  RawServer raw([&](const httplib::Request&, httplib::Response& res) {
    if (n++ == 0) {
      res.status = 429;
      res.set_header("Retry-After", "1");
      res.set_content(R"({"error": {"message": "slow down"}})", "application/json");
      return;
    }
    res.set_content(completion_body("done"), "application/json");
  });
  auto o = fast_options(raw.port());
  o.backoff_max_s = 5;  // the cap is above Retry-After
  auto client = make_client(o);
  ASSERT_NE(client, nullptr);
  auto t0 = Clock::now();
  auto rec = client->run_probe(text_probe("a", "x", 0, 1), 0);
  double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  ASSERT_TRUE(rec.is_ok()) << rec.status().to_string();
  EXPECT_GE(elapsed, 0.95);  // the backoff alone would be ~2 ms
  EXPECT_LT(elapsed, 1.8);
  EXPECT_EQ(client->counters().retries, 1u);
}

TEST(EndpointReliability, MalformedJsonIsCorruptAfterRetries) {
  std::atomic<int> n{0};
  RawServer raw([&](const httplib::Request&, httplib::Response& res) {
    ++n;
    res.set_content("{\"choices\": [", "application/json");
  });
  auto client = make_client(fast_options(raw.port()));
  ASSERT_NE(client, nullptr);
  auto rec = client->run_probe(text_probe("a", "x", 0, 1), 0);
  ASSERT_FALSE(rec.is_ok());
  EXPECT_EQ(rec.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(rec.status().message().find("http://127.0.0.1:" + std::to_string(raw.port()) +
                                        "/v1/completions"),
            std::string::npos)
      << rec.status().message();
  EXPECT_EQ(n.load(), 4);  // 1 + max_retries
  EXPECT_EQ(client->counters().retries, 3u);

  // Valid JSON of the wrong shape is retried the same way.
  RawServer shape([&](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"choices": []})", "application/json");
  });
  auto c2 = make_client(fast_options(shape.port()));
  ASSERT_NE(c2, nullptr);
  auto r2 = c2->run_probe(text_probe("a", "x", 0, 1), 0);
  EXPECT_EQ(r2.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(r2.status().message().find("choices[0]"), std::string::npos);
  EXPECT_EQ(c2->counters().requests, 4u);
}

TEST(EndpointReliability, ConnectionClosedMidBody) {
  std::atomic<int> n{0};
  RawServer raw([&](const httplib::Request&, httplib::Response& res) {
    if (n++ == 3) {  // the last attempt succeeds
      res.set_content(completion_body("whole"), "application/json");
      return;
    }
    res.set_content_provider(1000, "application/json",
                             [](size_t offset, size_t, httplib::DataSink& sink) {
                               if (offset > 0) return false;
                               sink.write("{\"choices\": [{\"text\"", 20);
                               return false;  // closes the connection with 980 bytes missing
                             });
  });
  auto client = make_client(fast_options(raw.port()));
  ASSERT_NE(client, nullptr);
  auto rec = client->run_probe(text_probe("a", "x", 0, 1), 0);
  ASSERT_TRUE(rec.is_ok()) << rec.status().to_string();
  EXPECT_EQ(rec->continuation_text, "whole");
  EXPECT_EQ(client->counters().retries, 3u);
  n = -100;  // never whole again
  auto bad = client->run_probe(text_probe("a", "x", 0, 1), 0);
  EXPECT_EQ(bad.status().code(), StatusCode::kCorrupt) << bad.status().to_string();
  EXPECT_NE(bad.status().message().find("cut short"), std::string::npos);
}

TEST(EndpointReliability, NothingListening) {
  int port;
  {
    RawServer gone([](const httplib::Request&, httplib::Response&) {});
    port = gone.port();
  }
  auto o = fast_options(port);
  o.max_retries = 1;
  auto client = make_client(o);
  ASSERT_NE(client, nullptr);
  auto rec = client->run_probe(text_probe("a", "x", 0, 1), 0);
  ASSERT_FALSE(rec.is_ok());
  EXPECT_EQ(rec.status().code(), StatusCode::kIo);
  EXPECT_NE(rec.status().message().find("cannot connect"), std::string::npos)
      << rec.status().message();
  EXPECT_NE(rec.status().message().find("127.0.0.1:" + std::to_string(port)), std::string::npos);
  EXPECT_EQ(client->counters().requests, 2u);
}

TEST(EndpointSuite, RefusesWholeDistributionsBeforeAnyRequest) {
  std::atomic<int> n{0};
  RawServer raw([&](const httplib::Request&, httplib::Response& res) {
    ++n;
    res.set_content(completion_body("x"), "application/json");
  });
  auto client = make_client(fast_options(raw.port()));
  ASSERT_NE(client, nullptr);
  Suite s = logit_image_v1(3);
  Status st = client->run_suite(
      s, {}, [](const ProbeRecord&) { return Status::ok(); }, nullptr);
  ASSERT_FALSE(st.is_ok());
  EXPECT_EQ(st.code(), StatusCode::kUnsupported);
  EXPECT_NE(st.message().find("full_logprobs"), std::string::npos) << st.message();
  EXPECT_EQ(n.load(), 0);
}

TEST(EndpointReliability, OtherClientErrorsAreNotRetried) {
  std::atomic<int> n{0};
  RawServer raw([&](const httplib::Request&, httplib::Response& res) {
    ++n;
    res.status = 422;
    res.set_content(R"({"detail": "max_tokens must be at least 1"})", "application/json");
  });
  auto client = make_client(fast_options(raw.port()));
  ASSERT_NE(client, nullptr);
  auto rec = client->run_probe(text_probe("a", "x", 0, 1), 0);
  EXPECT_EQ(rec.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(rec.status().message().find("at least 1"), std::string::npos);
  EXPECT_EQ(n.load(), 1);
}

TEST(EndpointClientParsing, TopLogprobsVariants) {
  // A server that rejects max_tokens 0 (asked again with 1), reports "token_id:N" keys in the
  // main request, and offsets as OpenAI does.
  std::atomic<int> zero_rejections{0}, scored{0};
  RawServer raw([&](const httplib::Request& req, httplib::Response& res) {
    json body = json::parse(req.body);
    if (!body.value("echo", false)) {
      json lp = {
          {"tokens", {"token_id:9"}},
          {"token_logprobs", {-0.5}},
          {"top_logprobs", {{{"token_id:9", -0.5}, {"token_id:3", -1.25}, {"token_id:4", -1.25}}}},
          {"text_offset", {0}}};
      res.set_content(json({{"choices", {{{"text", "z"}, {"logprobs", lp}}}}}).dump(),
                      "application/json");
      return;
    }
    if (body["max_tokens"] == 0) {
      ++zero_rejections;
      res.status = 400;
      res.set_content(R"({"error": {"message": "max_tokens must be >= 1"}})", "application/json");
      return;
    }
    // prompt "ab" + text " cd": tokens a, b, " c", "d" + one generated token "!". The second
    // time with a BOS "<s>" first and offsets that add up the token strings, as vLLM reports
    // them ("<s>" counted though the text lacks it).
    json lp = {
        {"tokens", {"a", "b", " c", "d", "!"}},
        {"token_logprobs", {nullptr, -1.0, -2.0, -3.0, -0.1}},
        {"top_logprobs", {nullptr, {{"b", -1.0}}, {{" c", -2.0}}, {{"d", -3.0}}, {{"!", -0.1}}}},
        {"text_offset", {0, 1, 2, 4, 5}}};
    if (scored++ == 1) {
      lp = {{"tokens", {"<s>", "a", "b", " c", "d", "!"}},
            {"token_logprobs", {nullptr, -0.5, -1.0, -2.0, -3.0, -0.1}},
            {"top_logprobs",
             {nullptr, {{"a", -0.5}}, {{"b", -1.0}}, {{" c", -2.0}}, {{"d", -3.0}}, {{"!", -0.1}}}},
            {"text_offset", {0, 3, 4, 5, 7, 8}}};
    }
    json j = {{"choices", {{{"text", "ab cd!"}, {"logprobs", lp}}}},
              {"usage", {{"prompt_tokens", 4}, {"completion_tokens", 1}}}};
    res.set_content(j.dump(), "application/json");
  });
  auto client = make_client(fast_options(raw.port()));
  ASSERT_NE(client, nullptr);
  Probe p = text_probe("v", "ab", 3, 1);
  p.score_texts = {" cd", " cd"};
  auto rec = client->run_probe(p, 0);
  ASSERT_TRUE(rec.is_ok()) << rec.status().to_string();
  ASSERT_EQ(rec->positions.size(), 1u);
  // ids only; ties broken towards the lower id.
  EXPECT_EQ(rec->positions[0].top.ids, (std::vector<int32_t>{9, 3, 4}));
  EXPECT_TRUE(rec->positions[0].top.tokens.empty());
  EXPECT_EQ(rec->continuation_text, "z");
  ASSERT_EQ(rec->scores.size(), 2u);
  EXPECT_EQ(rec->scores[0].tokens, (std::vector<std::string>{" c", "d"}));
  EXPECT_EQ(rec->scores[0].token_logprobs, (std::vector<float>{-2.0f, -3.0f}));
  EXPECT_DOUBLE_EQ(rec->scores[0].total_logprob, -5.0);
  EXPECT_TRUE(rec->scores[0].ids.empty());  // this server reports no ids
  EXPECT_EQ(rec->scores[1].tokens, rec->scores[0].tokens);
  EXPECT_EQ(rec->scores[1].token_logprobs, rec->scores[0].token_logprobs);
  // Rejected once, then max_tokens 1 at once.
  EXPECT_EQ(zero_rejections.load(), 1);
}

// ---------------------------------------------------------------------------------------------
// run_suite

TEST(EndpointSuite, OrderedDeliveryUnderConcurrency) {
  std::mutex mu;
  std::mt19937_64 rng(7);
  std::atomic<int> in_flight{0}, max_in_flight{0};
  RawServer raw([&](const httplib::Request& req, httplib::Response& res) {
    int now = ++in_flight;
    int prev = max_in_flight.load();
    while (now > prev && !max_in_flight.compare_exchange_weak(prev, now)) {
    }
    int delay;
    {
      std::lock_guard<std::mutex> lock(mu);
      delay = static_cast<int>(rng() % 25);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(delay));
    json body = json::parse(req.body);
    --in_flight;
    if (body["prompt"] == "prompt 29") {
      res.status = 400;
      res.set_content(R"({"error": {"message": "no"}})", "application/json");
      return;
    }
    res.set_content(completion_body("re: " + body["prompt"].get<std::string>()),
                    "application/json");
  });
  auto o = fast_options(raw.port());
  o.concurrency = 8;
  auto client = make_client(o);
  ASSERT_NE(client, nullptr);
  Suite suite;
  suite.name = "t";
  for (int i = 0; i < 40; ++i) {
    suite.probes.push_back(
        text_probe("p" + std::to_string(i), "prompt " + std::to_string(i), 0, 1));
  }
  std::vector<bool> skip(40, false);
  skip[3] = skip[4] = skip[20] = true;
  std::vector<uint32_t> seen;
  size_t last_done = 0, total = 0;
  auto on_record = [&](const ProbeRecord& r) {
    if (r.continuation_text != "re: prompt " + std::to_string(r.index)) {
      return internal_error("wrong record for " + std::to_string(r.index));
    }
    seen.push_back(r.index);
    return Status::ok();
  };
  auto on_progress = [&](size_t done, size_t of) {
    last_done = done;
    total = of;
  };
  // Probe 29 fails: everything before it arrives in order; probes after it that had completed
  // (in flight when it failed) arrive after them, each once, in order; none starts after.
  Status s = client->run_suite(suite, skip, on_record, on_progress);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.to_string();
  EXPECT_NE(s.message().find("probe 29"), std::string::npos) << s.message();
  std::vector<uint32_t> want;
  for (uint32_t i = 0; i < 29; ++i) {
    if (!skip[i]) want.push_back(i);
  }
  ASSERT_GE(seen.size(), want.size());
  EXPECT_EQ(std::vector<uint32_t>(seen.begin(), seen.begin() + want.size()), want);
  for (size_t i = want.size(); i < seen.size(); ++i) {
    EXPECT_GT(seen[i], 29u);
    EXPECT_LE(seen[i], 29u + 8u);  // at most `concurrency` probes were in flight
    if (i > want.size()) {
      EXPECT_GT(seen[i], seen[i - 1]);
    }
  }
  EXPECT_EQ(total, 37u);
  EXPECT_EQ(last_done, seen.size());
  EXPECT_GE(max_in_flight.load(), 2);
  EXPECT_LE(max_in_flight.load(), 8);

  // Without the failing probe: every non-skipped probe, in order.
  skip[29] = true;
  seen.clear();
  s = client->run_suite(suite, skip, on_record, on_progress);
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  want.clear();
  for (uint32_t i = 0; i < 40; ++i) {
    if (!skip[i]) want.push_back(i);
  }
  EXPECT_EQ(seen, want);
  EXPECT_EQ(last_done, 36u);

  // An error from on_record stops the run and comes back.
  size_t calls = 0;
  s = client->run_suite(suite, {}, [&](const ProbeRecord&) {
    return ++calls == 5 ? io_error("disk full") : Status::ok();
  });
  EXPECT_EQ(s.code(), StatusCode::kIo);
  EXPECT_EQ(calls, 5u);
  EXPECT_EQ(client->run_suite(suite, std::vector<bool>(3), on_record).code(),
            StatusCode::kInvalidArgument);
}

TEST(EndpointSuite, RateLimitSpacesRequests) {
  std::mutex mu;
  std::vector<Clock::time_point> arrivals;
  RawServer raw([&](const httplib::Request&, httplib::Response& res) {
    {
      std::lock_guard<std::mutex> lock(mu);
      arrivals.push_back(Clock::now());
    }
    res.set_content(completion_body("x"), "application/json");
  });
  auto o = fast_options(raw.port());
  o.rate_limit_rps = 20;
  o.concurrency = 4;
  auto client = make_client(o);
  ASSERT_NE(client, nullptr);
  Suite suite;
  for (int i = 0; i < 6; ++i) suite.probes.push_back(text_probe("p", "x", 0, 1));
  auto t0 = Clock::now();
  ASSERT_TRUE(
      client->run_suite(suite, {}, [](const ProbeRecord&) { return Status::ok(); }).is_ok());
  double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  EXPECT_GE(elapsed, 0.24);  // 5 gaps of 50 ms
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(arrivals.size(), 6u);
  std::sort(arrivals.begin(), arrivals.end());
  // Arrival times carry scheduling noise; their span and typical gap still show the spacing.
  std::vector<double> gaps;
  for (size_t i = 1; i < arrivals.size(); ++i) {
    gaps.push_back(std::chrono::duration<double>(arrivals[i] - arrivals[i - 1]).count());
  }
  std::sort(gaps.begin(), gaps.end());
  EXPECT_GE(std::chrono::duration<double>(arrivals.back() - arrivals.front()).count(), 0.2);
  EXPECT_GE(gaps[gaps.size() / 2], 0.04);
}

TEST(EndpointOptionsCheck, RejectsBadOptions) {
  EndpointOptions o;
  o.base_url = "ftp://x";
  EXPECT_EQ(EndpointClient::create(o).status().code(), StatusCode::kInvalidArgument);
  o.base_url = "http://127.0.0.1:1/v1/";
  auto c = EndpointClient::create(o);
  ASSERT_TRUE(c.is_ok());
  EXPECT_EQ((*c)->api_base(), "http://127.0.0.1:1/v1");
  o.concurrency = 0;
  EXPECT_EQ(EndpointClient::create(o).status().code(), StatusCode::kInvalidArgument);
  o.concurrency = 8;
  o.timeout_s = 0;
  EXPECT_EQ(EndpointClient::create(o).status().code(), StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// Chat templates.

using Messages = std::vector<std::pair<std::string, std::string>>;

std::string apply(const std::string& tmpl, const Messages& m, const std::string& bos = "",
                  const std::string& eos = "") {
  auto r = apply_chat_template(tmpl, m, bos, eos);
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return r.is_ok() ? r.value() : "";
}

TEST(ChatTemplate, ChatMl) {
  EXPECT_EQ(apply(kChatMlTemplate, {{"system", "Be brief."}, {"user", "Hi"}}),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\n");
}

TEST(ChatTemplate, Llama3) {
  const std::string t = "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>' }}";
  EXPECT_EQ(apply(t, {{"system", "S"}, {"user", " Hi \n"}, {"assistant", "Yo"}, {"user", "Q"}},
                  "<|begin_of_text|>", "<|end_of_text|>"),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nYo<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nQ<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplate, Llama2) {
  const std::string t = "{{ bos_token + '[INST] ' + content + ' [/INST]' }}";
  EXPECT_EQ(apply(t, {{"user", "Hi"}}, "<s>", "</s>"), "<s>[INST] Hi [/INST]");
  EXPECT_EQ(apply(t, {{"system", "Sys"}, {"user", "Hi"}, {"assistant", "Hello"}, {"user", "Q"}},
                  "<s>", "</s>"),
            "<s>[INST] <<SYS>>\nSys\n<</SYS>>\n\nHi [/INST] Hello </s><s>[INST] Q [/INST]");
  // Roles must alternate and end with the user.
  EXPECT_EQ(apply_chat_template(t, {{"user", "a"}, {"user", "b"}}, "<s>", "</s>").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(
      apply_chat_template(t, {{"user", "a"}, {"assistant", "b"}}, "<s>", "</s>").status().code(),
      StatusCode::kInvalidArgument);
}

TEST(ChatTemplate, Zephyr) {
  const std::string t = "{{ '<|user|>\\n' + message['content'] + eos_token }}";
  EXPECT_EQ(apply(t, {{"system", "S"}, {"user", "U"}}, "<s>", "</s>"),
            "<|system|>\nS</s>\n<|user|>\nU</s>\n<|assistant|>\n");
}

TEST(ChatTemplate, PlainFallbackAndErrors) {
  EXPECT_EQ(apply("", {{"system", "S"}, {"user", "U"}}), "System: S\nUser: U\nAssistant:");
  EXPECT_EQ(apply_chat_template("{{ messages | custom }}", {{"user", "x"}}, "", "").status().code(),
            StatusCode::kUnsupported);
  EXPECT_EQ(apply_chat_template(kChatMlTemplate, {}, "", "").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(apply_chat_template(kChatMlTemplate, {{"wizard", "x"}}, "", "").status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace prov::probes
