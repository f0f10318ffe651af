// The OpenAI-compatible server (probes/server.h) against hostile clients: a real server on
// 127.0.0.1, real sockets, and clients that send slowly, declare or stream oversize bodies, send
// prompts too long for the context or JSON made of many small objects, or saturate the server.
// Every loop here is bounded in time or count and stops by itself.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "model/tokenizers/tokenizer.h"
#include "probes/server.h"

namespace prov::probes {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// ---------------------------------------------------------------------------------------------
// A byte tokenizer (BOS 0, EOS 1, byte b is id b + 2) that counts its encode calls, and a backend
// that answers "a" tokens, optionally held until released.

class ByteTokenizer : public model::Tokenizer {
 public:
  Result<std::vector<int32_t>> encode(const std::string& text, bool add_special) const override {
    ++encode_calls;
    std::vector<int32_t> ids;
    ids.reserve(text.size() + 1);
    if (add_special) ids.push_back(0);
    for (unsigned char c : text) ids.push_back(static_cast<int32_t>(c) + 2);
    return ids;
  }
  Result<std::string> decode(const std::vector<int32_t>& ids, bool skip_special) const override {
    std::string out;
    for (int32_t id : ids) {
      if (id < 2) {
        if (!skip_special) out += id == 0 ? "<s>" : "</s>";
      } else if (id < 258) {
        out += static_cast<char>(id - 2);
      }
    }
    return out;
  }
  int32_t vocab_size() const override { return 258; }
  std::optional<int32_t> bos_id() const override { return 0; }
  std::optional<int32_t> eos_id() const override { return 1; }
  std::string kind() const override { return "test-bytes"; }
  std::optional<int32_t> token_to_id(const std::string& token) const override {
    if (token == "<s>") return 0;
    if (token == "</s>") return 1;
    if (token.size() == 1) return static_cast<unsigned char>(token[0]) + 2;
    return std::nullopt;
  }
  std::optional<std::string> id_to_token(int32_t id) const override {
    if (id < 0 || id >= 258) return std::nullopt;
    return decode({id}, false).value();
  }
  bool is_special(int32_t id) const override { return id < 2; }

  mutable std::atomic<int> encode_calls{0};
};

class TestBackend : public CompletionBackend {
 public:
  std::string model_name() const override { return "bytes"; }
  const model::Tokenizer& tokenizer() const override { return tok_; }
  int32_t context_length() const override { return 256; }
  std::string chat_template() const override { return ""; }

  Result<BackendResult> complete(const CompletionRequest& r) override {
    ++calls;
    ++in_call;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, seconds(20), [this] { return !held_; });  // bounded: never hangs a test
    }
    --in_call;
    if (static_cast<int64_t>(r.prompt_ids.size()) + r.max_tokens > context_length()) {
      return invalid_argument("context too long");
    }
    BackendResult out;
    for (int i = 0; i < r.max_tokens; ++i)
      out.generated.push_back(StepInfo{'a' + 2, -1.0f, {}, {}});
    return out;
  }

  void hold() {
    std::lock_guard<std::mutex> lock(mu_);
    held_ = true;
  }
  void release() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      held_ = false;
    }
    cv_.notify_all();
  }
  int encode_calls() const { return tok_.encode_calls.load(); }

  std::atomic<int> calls{0};
  std::atomic<int> in_call{0};

 private:
  ByteTokenizer tok_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool held_ = false;
};

// ---------------------------------------------------------------------------------------------
// A raw HTTP/1.1 client connection: non-blocking socket, every wait bounded.

struct RawResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  json error_message() const {
    json j = json::parse(body, nullptr, false);
    return j.is_object() && j.contains("error") ? j["error"]["message"] : json();
  }
};

class RawConn {
 public:
  explicit RawConn(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    ::inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
      ::close(fd_);
      fd_ = -1;
      return;
    }
    ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
  }
  ~RawConn() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawConn(const RawConn&) = delete;
  RawConn& operator=(const RawConn&) = delete;

  bool ok() const { return fd_ >= 0; }
  size_t sent() const { return sent_; }

  // Sends all of `data`; false when the server closed or `timeout` passed first.
  bool send_all(std::string_view data, Clock::duration timeout = seconds(5)) {
    const auto deadline = Clock::now() + timeout;
    size_t off = 0;
    while (off < data.size()) {
      const ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n > 0) {
        off += static_cast<size_t>(n);
        sent_ += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        if (!wait(POLLOUT, deadline)) return false;
        continue;
      }
      return false;
    }
    return true;
  }

  // Reads one response (until its Content-Length or the close); nullopt when none came within
  // `timeout` or the connection was reset before a status line.
  std::optional<RawResponse> read_response(Clock::duration timeout = seconds(5)) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      if (auto r = parse(false)) return r;
      char buf[16384];
      const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n > 0) {
        in_.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n == 0) return parse(true);
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
        if (!wait(POLLIN, deadline)) return std::nullopt;
        continue;
      }
      return parse(true);  // reset: what arrived before it
    }
  }

  // True when the server closed the connection within `timeout` (what arrives is dropped).
  bool closed_within(Clock::duration timeout) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      char buf[16384];
      const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n == 0) return true;
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return true;
      if (n < 0 && !wait(POLLIN, deadline)) return false;
    }
  }

 private:
  bool wait(short events, Clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd_, events, 0};
    return ::poll(&p, 1, static_cast<int>(left)) > 0;
  }

  std::optional<RawResponse> parse(bool at_end) const {
    const size_t head_end = in_.find("\r\n\r\n");
    if (head_end == std::string::npos) return std::nullopt;
    RawResponse r;
    size_t line_end = in_.find("\r\n");
    const std::string status_line = in_.substr(0, line_end);
    if (status_line.size() < 12) return std::nullopt;
    r.status = std::atoi(status_line.c_str() + 9);
    size_t pos = line_end + 2;
    while (pos < head_end) {
      line_end = in_.find("\r\n", pos);
      std::string line = in_.substr(pos, line_end - pos);
      pos = line_end + 2;
      const size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string name = line.substr(0, colon);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      r.headers[name] = value;
    }
    r.body = in_.substr(head_end + 4);
    auto it = r.headers.find("content-length");
    if (it != r.headers.end()) {
      const size_t want = std::stoul(it->second);
      if (r.body.size() < want) {
        if (!at_end) return std::nullopt;
      } else {
        r.body.resize(want);
      }
    } else if (!at_end) {
      return std::nullopt;
    }
    return r;
  }

  int fd_ = -1;
  size_t sent_ = 0;
  std::string in_;
};

std::string post_head(const std::string& path, const std::string& extra_headers) {
  return "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" +
         extra_headers + "\r\n";
}

std::string post_request(const std::string& path, const std::string& body) {
  return post_head(path, "Content-Length: " + std::to_string(body.size()) + "\r\n") + body;
}

const char* const kGoodBody = R"({"prompt": "hello", "max_tokens": 2, "temperature": 0})";

struct Timed {
  int status = 0;
  double seconds = 0;
};

// One small completion over a fresh connection: its status (0: none came) and latency.
Timed good_request(int port, Clock::duration timeout = seconds(5)) {
  const auto t0 = Clock::now();
  RawConn c(port);
  Timed out;
  if (c.ok() && c.send_all(post_request("/v1/completions", kGoodBody), timeout)) {
    if (auto r = c.read_response(timeout)) out.status = r->status;
  }
  out.seconds = seconds_since(t0);
  return out;
}

std::unique_ptr<Server> start_server(CompletionBackend& backend, const ServerOptions& options) {
  auto s = Server::start(backend, options);
  EXPECT_TRUE(s.is_ok()) << s.status().to_string();
  return s.is_ok() ? std::move(s).value() : nullptr;
}

// Resident memory of this process (the server runs in it), in bytes.
size_t rss_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

// Attack clients, each running until `stop` or its own time bound.

// Sends a request head one byte every `interval`, never finishing it.
void slowloris(int port, const std::atomic<bool>& stop, milliseconds interval,
               Clock::duration bound = seconds(8)) {
  const auto deadline = Clock::now() + bound;
  RawConn c(port);
  if (!c.ok() || !c.send_all("POST /v1/completions HTTP/1.1\r\nHost: x\r\n")) return;
  while (!stop && Clock::now() < deadline) {
    if (!c.send_all("X", milliseconds(100))) return;  // the server closed it
    for (auto t = Clock::now(); !stop && Clock::now() - t < interval;) {
      std::this_thread::sleep_for(milliseconds(10));
    }
  }
}

// Declares a 1 GB body and streams it until the server answers or closes; reconnects, up to
// `connections` times.
void oversize_client(int port, const std::atomic<bool>& stop, std::atomic<int>* refused,
                     int connections = 1000, Clock::duration bound = seconds(8)) {
  const auto deadline = Clock::now() + bound;
  const std::string piece(64 << 10, 'x');
  for (int i = 0; i < connections && !stop && Clock::now() < deadline; ++i) {
    RawConn c(port);
    if (!c.ok()) return;
    c.send_all(post_head("/v1/completions", "Content-Length: 1000000000\r\n"));
    for (int i = 0; i < 64 && !stop && c.send_all(piece, milliseconds(200)); ++i) {
    }
    if (stop) return;  // cut short by the test, not by the server: no answer to wait for
    if (auto r = c.read_response(seconds(2)); r && r->status == 413) ++*refused;
  }
}

// Streams a chunked body of up to `max_bytes` per connection until the server stops reading;
// reconnects.
void chunked_client(int port, const std::atomic<bool>& stop, std::atomic<int>* refused,
                    size_t max_bytes = size_t{64} << 20, Clock::duration bound = seconds(8)) {
  const auto deadline = Clock::now() + bound;
  const std::string chunk = "10000\r\n" + std::string(0x10000, 'x') + "\r\n";
  while (!stop && Clock::now() < deadline) {
    RawConn c(port);
    if (!c.ok()) return;
    c.send_all(post_head("/v1/completions", "Transfer-Encoding: chunked\r\n"));
    while (!stop && c.sent() < max_bytes && c.send_all(chunk, milliseconds(200))) {
    }
    if (stop) return;  // cut short by the test, not by the server: no answer to wait for
    if (auto r = c.read_response(seconds(2)); r && r->status == 413) ++*refused;
  }
}

class ServerHostile : public ::testing::Test {
 protected:
  TestBackend backend_;
};

// ---------------------------------------------------------------------------------------------

TEST_F(ServerHostile, SlowlorisDoesNotBlockAGoodRequest) {
  ServerOptions so;
  so.threads = 2;  // fewer model slots than attackers
  auto server = start_server(backend_, so);
  ASSERT_NE(server, nullptr);
  std::atomic<bool> stop{false};
  std::vector<std::thread> attackers;
  for (int i = 0; i < 8; ++i) {
    attackers.emplace_back([&] { slowloris(server->port(), stop, milliseconds(200)); });
  }
  std::this_thread::sleep_for(milliseconds(300));
  for (int i = 0; i < 3; ++i) {
    Timed t = good_request(server->port());
    EXPECT_EQ(t.status, 200);
    EXPECT_LT(t.seconds, 2.0);
  }
  stop = true;
  for (auto& t : attackers) t.join();
}

TEST_F(ServerHostile, SlowRequestIsCutAtItsDeadline) {
  ServerOptions so;
  so.request_timeout_ms = 800;
  so.read_timeout_ms = 400;
  auto server = start_server(backend_, so);
  ASSERT_NE(server, nullptr);
  // A byte every 100 ms never trips the read timeout; the request deadline cuts it.
  RawConn slow(server->port());
  ASSERT_TRUE(slow.ok());
  const auto t0 = Clock::now();
  ASSERT_TRUE(slow.send_all("POST /v1/completions HTTP/1.1\r\n"));
  std::optional<RawResponse> r;
  for (int i = 0; i < 40 && !r; ++i) {
    slow.send_all("X", milliseconds(100));
    r = slow.read_response(milliseconds(100));
  }
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 408);
  EXPECT_GT(seconds_since(t0), 0.6);
  EXPECT_LT(seconds_since(t0), 3.0);
  // A client that sends nothing is cut at the read timeout.
  RawConn idle(server->port());
  ASSERT_TRUE(idle.ok());
  const auto t1 = Clock::now();
  auto r2 = idle.read_response(seconds(3));
  ASSERT_TRUE(r2.has_value());
  EXPECT_EQ(r2->status, 408);
  EXPECT_LT(seconds_since(t1), 2.0);
  // A body that stops short is cut too.
  RawConn partial(server->port());
  ASSERT_TRUE(partial.send_all(post_head("/v1/completions", "Content-Length: 100\r\n") + "{"));
  auto r3 = partial.read_response(seconds(3));
  ASSERT_TRUE(r3.has_value());
  EXPECT_EQ(r3->status, 408);
  EXPECT_EQ(good_request(server->port()).status, 200);
}

TEST_F(ServerHostile, DeclaredOversizeIsRefusedBeforeTheBody) {
  ServerOptions so;  // max_body_bytes 1 MiB
  auto server = start_server(backend_, so);
  ASSERT_NE(server, nullptr);
  RawConn c(server->port());
  const auto t0 = Clock::now();
  ASSERT_TRUE(c.send_all(post_head("/v1/completions", "Content-Length: 1000000000\r\n")));
  auto r = c.read_response(seconds(3));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 413);
  EXPECT_LT(seconds_since(t0), 1.0);
  EXPECT_NE(r->error_message().dump().find("1048576"), std::string::npos) << r->body;

  // With Expect: 100-continue the refusal comes instead of "100 Continue".
  RawConn e(server->port());
  ASSERT_TRUE(e.send_all(
      post_head("/v1/completions", "Content-Length: 5000000\r\nExpect: 100-continue\r\n")));
  auto re = e.read_response(seconds(3));
  ASSERT_TRUE(re.has_value());
  EXPECT_EQ(re->status, 413);

  // A client that streams its oversize body anyway still gets the 413, at once.
  std::atomic<bool> stop{false};
  std::atomic<int> refused{0};
  const auto t1 = Clock::now();
  oversize_client(server->port(), stop, &refused, 1);
  EXPECT_EQ(refused.load(), 1);
  EXPECT_LT(seconds_since(t1), 3.0);
  EXPECT_EQ(backend_.calls.load(), 0);
}

TEST_F(ServerHostile, ChunkedBodyIsCappedWhileRead) {
  ServerOptions so;
  so.max_body_bytes = 64 << 10;
  auto server = start_server(backend_, so);
  ASSERT_NE(server, nullptr);

  // Under the cap: served.
  {
    RawConn c(server->port());
    std::string body = kGoodBody;
    char size[16];
    std::snprintf(size, sizeof(size), "%zx", body.size() - 10);
    ASSERT_TRUE(c.send_all(post_head("/v1/completions", "Transfer-Encoding: chunked\r\n") + size +
                           "\r\n" + body.substr(0, body.size() - 10) + "\r\na\r\n" +
                           body.substr(body.size() - 10) + "\r\n0\r\n\r\n"));
    auto r = c.read_response();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 200) << r->body;
  }

  // Over the cap: 413, and the server stops reading. The client tries to push 256 MiB.
  const size_t rss_before = rss_bytes();
  RawConn c(server->port());
  ASSERT_TRUE(c.send_all(post_head("/v1/completions", "Transfer-Encoding: chunked\r\n")));
  std::atomic<bool> writer_done{false};
  std::thread writer([&] {
    const std::string chunk = "4000\r\n" + std::string(0x4000, 'x') + "\r\n";
    const auto deadline = Clock::now() + seconds(10);
    while (c.sent() < (size_t{256} << 20) && Clock::now() < deadline &&
           c.send_all(chunk, seconds(2))) {
    }
    writer_done = true;
  });
  const auto t0 = Clock::now();
  auto r = c.read_response(seconds(5));
  writer.join();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 413) << r->body;
  EXPECT_LT(seconds_since(t0), 5.0);
  // What the server accepted: the cap, what it drains while the 413 goes out, socket buffers.
  EXPECT_LT(c.sent(), size_t{64} << 20);
  EXPECT_LT(rss_bytes(), rss_before + (size_t{48} << 20));
  EXPECT_EQ(backend_.calls.load(), 1);  // the first request only
}

TEST_F(ServerHostile, OverlongPromptIsRefusedBeforeTokenizing) {
  ServerOptions so;
  so.max_body_bytes = 16 << 20;
  auto server = start_server(backend_, so);
  ASSERT_NE(server, nullptr);
  const json big = {{"prompt", std::string(10'000'000, 'a')}, {"max_tokens", 1}};
  RawConn c(server->port());
  const auto t0 = Clock::now();
  ASSERT_TRUE(c.send_all(post_request("/v1/completions", big.dump()), seconds(10)));
  auto r = c.read_response(seconds(10));
  const double took = seconds_since(t0);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->error_message().dump().find("context"), std::string::npos) << r->body;
  EXPECT_LT(took, 1.0);
  EXPECT_EQ(backend_.encode_calls(), 0);
  EXPECT_EQ(backend_.calls.load(), 0);

  // The same for chat messages, and for a list of ids longer than the context.
  const json chat = {{"messages", {{{"role", "user"}, {"content", std::string(100'000, 'a')}}}}};
  RawConn c2(server->port());
  ASSERT_TRUE(c2.send_all(post_request("/v1/chat/completions", chat.dump())));
  auto r2 = c2.read_response();
  ASSERT_TRUE(r2.has_value());
  EXPECT_EQ(r2->status, 400);
  const json ids = {{"prompt", std::vector<int>(1000, 5)}};
  RawConn c3(server->port());
  ASSERT_TRUE(c3.send_all(post_request("/v1/completions", ids.dump())));
  auto r3 = c3.read_response();
  ASSERT_TRUE(r3.has_value());
  EXPECT_EQ(r3->status, 400);
  EXPECT_EQ(backend_.encode_calls(), 0);
  // A prompt that fits is still tokenized and served.
  EXPECT_EQ(good_request(server->port()).status, 200);
  EXPECT_GT(backend_.encode_calls(), 0);
}

TEST_F(ServerHostile, AdversarialJsonParsesInLinearTime) {
  ServerOptions so;
  auto server = start_server(backend_, so);
  ASSERT_NE(server, nullptr);
  // Four clients at once, each sending ~1 MB bodies (the old parser took ~30 s on the first).
  auto answer_all = [&](const std::string& body) {
    std::vector<std::thread> clients;
    std::vector<RawResponse> results(4);
    std::vector<double> took(4, 99);
    for (int i = 0; i < 4; ++i) {
      clients.emplace_back([&, i] {
        const auto t0 = Clock::now();
        RawConn c(server->port());
        if (c.send_all(post_request("/v1/completions", body))) {
          if (auto r = c.read_response(seconds(10))) results[i] = *r;
        }
        took[i] = seconds_since(t0);
      });
    }
    for (auto& t : clients) t.join();
    for (double t : took) EXPECT_LT(t, 1.0);
    return results;
  };
  // Many tiny objects: refused once past the value limit (a request needs far fewer values),
  // before the document grows to tens of times the body's size.
  std::string tiny = R"({"prompt": "hello", "max_tokens": 1, "x": [)";
  while (tiny.size() < 1'000'000) tiny += R"({"a":[{}]},)";
  tiny += "{}]}";
  ASSERT_LE(tiny.size(), so.max_body_bytes);
  for (const RawResponse& r : answer_all(tiny)) {
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(r.error_message().dump().find("values"), std::string::npos) << r.body;
  }
  // Small objects within the limit: parsed (unknown fields are ignored) and served.
  std::string small = R"({"prompt": "hello", "max_tokens": 1, "x": [)";
  while (small.size() < 1'000'000) small += R"({"k":")" + std::string(100, 'v') + R"("},)";
  small += "{}]}";
  ASSERT_LE(small.size(), so.max_body_bytes);
  for (const RawResponse& r : answer_all(small)) EXPECT_EQ(r.status, 200) << r.body;
  // Duplicate keys are refused.
  RawConn d(server->port());
  ASSERT_TRUE(d.send_all(post_request("/v1/completions", R"({"prompt": "a", "prompt": "b"})")));
  auto r = d.read_response();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->error_message().dump().find("duplicate"), std::string::npos) << r->body;
}

TEST_F(ServerHostile, SaturatedServerAnswers503WithRetryAfter) {
  ServerOptions so;
  so.threads = 1;
  so.max_queued_requests = 1;
  so.retry_after_s = 2;
  auto server = start_server(backend_, so);
  ASSERT_NE(server, nullptr);
  backend_.hold();
  RawConn a(server->port());
  ASSERT_TRUE(a.send_all(post_request("/v1/completions", kGoodBody)));
  for (int i = 0; i < 500 && backend_.in_call.load() == 0; ++i) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  ASSERT_EQ(backend_.in_call.load(), 1);
  // One of b and c waits in the queue, the other is refused.
  RawConn b(server->port()), c(server->port());
  ASSERT_TRUE(b.send_all(post_request("/v1/completions", kGoodBody)));
  ASSERT_TRUE(c.send_all(post_request("/v1/completions", kGoodBody)));
  std::optional<RawResponse> rb, rc;
  const auto t0 = Clock::now();
  while (!rb && !rc && seconds_since(t0) < 5) {
    rb = b.read_response(milliseconds(50));
    if (!rb) rc = c.read_response(milliseconds(50));
  }
  ASSERT_TRUE(rb || rc);
  const RawResponse& refused = rb ? *rb : *rc;
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_EQ(refused.headers.count("retry-after"), 1u);
  if (refused.headers.count("retry-after") == 1) {
    EXPECT_EQ(refused.headers.at("retry-after"), "2");
  }
  backend_.release();
  auto ra = a.read_response();
  ASSERT_TRUE(ra.has_value());
  EXPECT_EQ(ra->status, 200);
  auto other = rb ? c.read_response() : b.read_response();
  ASSERT_TRUE(other.has_value());
  EXPECT_EQ(other->status, 200);
  EXPECT_EQ(backend_.calls.load(), 2);
}

TEST_F(ServerHostile, ConnectionLimitAnswers503WithRetryAfter) {
  ServerOptions so;
  so.max_connections = 2;
  auto server = start_server(backend_, so);
  ASSERT_NE(server, nullptr);
  RawConn s1(server->port()), s2(server->port());
  ASSERT_TRUE(s1.send_all("POST /v1/completions HTTP/1.1\r\n"));
  ASSERT_TRUE(s2.send_all("POST /v1/completions HTTP/1.1\r\n"));
  std::this_thread::sleep_for(milliseconds(200));  // both are being read
  RawConn third(server->port());
  ASSERT_TRUE(third.ok());
  const auto t0 = Clock::now();
  auto r = third.read_response(seconds(3));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->headers.count("retry-after"), 1u);
  EXPECT_LT(seconds_since(t0), 1.0);
}

TEST_F(ServerHostile, StopReturnsPromptlyWithSlowClients) {
  ServerOptions so;  // request_timeout 10 s: the slow clients would be read for that long
  auto server = start_server(backend_, so);
  ASSERT_NE(server, nullptr);
  std::vector<std::unique_ptr<RawConn>> slow;
  for (int i = 0; i < 4; ++i) {
    slow.push_back(std::make_unique<RawConn>(server->port()));
    ASSERT_TRUE(slow.back()->send_all("POST /v1/completions HTTP/1.1\r\nHost: x\r\nX-"));
  }
  slow.push_back(std::make_unique<RawConn>(server->port()));  // mid-body
  ASSERT_TRUE(
      slow.back()->send_all(post_head("/v1/completions", "Content-Length: 1000\r\n") + "{\"a"));
  slow.push_back(std::make_unique<RawConn>(server->port()));  // connected, silent
  std::this_thread::sleep_for(milliseconds(200));
  const auto t0 = Clock::now();
  server->stop();
  EXPECT_LT(seconds_since(t0), 3.0);
  for (auto& c : slow) EXPECT_TRUE(c->closed_within(seconds(2)));
}

TEST_F(ServerHostile, BodyFramingIsChecked) {
  ServerOptions so;
  so.max_header_bytes = 4096;
  auto server = start_server(backend_, so);
  ASSERT_NE(server, nullptr);
  auto status_of = [&](const std::string& request) {
    RawConn c(server->port());
    if (!c.send_all(request)) return -1;
    auto r = c.read_response(seconds(3));
    return r ? r->status : 0;
  };
  EXPECT_EQ(status_of(post_head("/v1/completions", "") + kGoodBody), 411);
  EXPECT_EQ(status_of(post_head("/v1/completions", "Transfer-Encoding: gzip\r\n")), 400);
  EXPECT_EQ(status_of(post_head("/v1/completions",
                                "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n")),
            400);
  EXPECT_EQ(status_of(post_head("/v1/completions", "Content-Length: 12x\r\n")), 400);
  // A body for any other endpoint is refused unread, whatever its size.
  EXPECT_EQ(status_of(post_head("/health", "Content-Length: 100000000\r\n")), 404);
  EXPECT_EQ(status_of(post_head("/v1/models", "Transfer-Encoding: chunked\r\n")), 404);
  EXPECT_EQ(status_of(post_head("/v1/completions",
                                "X-Big: " + std::string(8000, 'b') + "\r\nContent-Length: 2\r\n") +
                      "{}"),
            431);
  EXPECT_EQ(status_of(post_request("/v1/completions", kGoodBody)), 200);
}

// The issue's scenario: a good request is answered within ~2 s while 8 slowloris, 4 declared
// oversize and 4 chunked-flood clients attack.
TEST_F(ServerHostile, GoodRequestsAnsweredDuringCombinedAttack) {
  ServerOptions so;
  so.threads = 4;  // prov serve's default
  auto server = start_server(backend_, so);
  ASSERT_NE(server, nullptr);
  const int port = server->port();
  std::atomic<bool> stop{false};
  std::atomic<int> oversize_refused{0}, chunked_refused{0};
  std::vector<std::thread> attackers;
  for (int i = 0; i < 8; ++i) {
    attackers.emplace_back([&] { slowloris(port, stop, milliseconds(500)); });
  }
  for (int i = 0; i < 4; ++i) {
    attackers.emplace_back([&] { oversize_client(port, stop, &oversize_refused); });
    attackers.emplace_back([&] { chunked_client(port, stop, &chunked_refused, 4 << 20); });
  }
  std::this_thread::sleep_for(milliseconds(300));
  double worst = 0;
  for (int i = 0; i < 5; ++i) {
    Timed t = good_request(port);
    EXPECT_EQ(t.status, 200);
    worst = std::max(worst, t.seconds);
    std::this_thread::sleep_for(milliseconds(100));
  }
  stop = true;
  for (auto& t : attackers) t.join();
  EXPECT_LT(worst, 2.0);
  EXPECT_GT(oversize_refused.load(), 0);
  EXPECT_GT(chunked_refused.load(), 0);
}

TEST(ServerOptionsCheck, RejectsBadLimits) {
  TestBackend backend;
  auto bad = [&](auto edit) {
    ServerOptions so;
    edit(so);
    return Server::start(backend, so).status().code();
  };
  EXPECT_EQ(bad([](ServerOptions& o) { o.max_connections = 0; }), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad([](ServerOptions& o) { o.max_queued_requests = -1; }),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(bad([](ServerOptions& o) { o.read_timeout_ms = 0; }), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad([](ServerOptions& o) { o.max_prompt_bytes_per_token = 0; }),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace prov::probes
