// The tlog-tiles server on a real loopback socket: a monitor written from the specs
// (tests/support/tlog_reference.h, libcurl and OpenSSL only) fetches the log, rebuilds the tree,
// checks the checkpoint's signature and cosignature and an inclusion proof; the server's limits
// hold against clients that misbehave.
#include "store/tlog_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "store/checkpoint.h"
#include "store/cosignature.h"
#include "tests/store/tlog_fixtures.h"
#include "tests/support/test_support.h"
#include "tests/support/tlog_reference.h"

namespace prov::store {
namespace {

using namespace tlogtest;
namespace ref = prov::testing::ref;
using Clock = std::chrono::steady_clock;

int connect_to(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Everything the server sends until it closes (or `timeout_ms` passes).
std::string read_all(int fd, int timeout_ms) {
  std::string out;
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  char buf[4096];
  while (Clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

std::string http_exchange(int port, const std::string& request, int timeout_ms = 3000) {
  int fd = connect_to(port);
  if (fd < 0) return "";
  if (!request.empty()) {
    [[maybe_unused]] ssize_t n = ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  }
  std::string out = read_all(fd, timeout_ms);
  ::close(fd);
  return out;
}

struct ServedLedger {
  testing::TempDir dir;
  PrivateKey key = ed25519();
  PrivateKey witness = ed25519();
  std::string log_vkey, witness_vkey;
  ServedLedger(size_t n) {
    auto l = Ledger::init(dir.file("ledger.db"));
    EXPECT_TRUE(l.is_ok());
    append_n(**l, key, n);
    EXPECT_TRUE((*l)->checkpoint(key).is_ok());
    PublicKey pub = key.public_key();
    LedgerCosignOptions o;
    o.name = "witness.example/w1";
    o.key = &witness;
    o.log_key = &pub;
    o.state_path = dir.file("witness.json");
    EXPECT_TRUE(cosign_ledger(**l, o).is_ok());
    log_vkey = *note_verifier_key(*(*l)->origin(), pub);
    witness_vkey = *cosignature_vkey(o.name, witness.public_key());
  }
};

TEST(TlogServer, AMonitorFromTheSpecsFollowsTheLog) {
  ServedLedger s(300);
  TlogServerOptions o;
  o.db = s.dir.file("ledger.db");
  auto server = TlogServer::start(o);
  ASSERT_TRUE(server.is_ok()) << server.status().to_string();
  const std::string url = (*server)->url();
  EXPECT_EQ(url.rfind("http://127.0.0.1:", 0), 0u);
  ref::Fetched f = ref::fetch_log(url, s.log_vkey);
  ASSERT_EQ(f.error, "");
  EXPECT_EQ(f.checkpoint.size, 300u);
  ASSERT_EQ(f.entries.size(), 300u);
  // The witness's cosignature travels with the checkpoint.
  ref::Vkey w;
  ASSERT_TRUE(ref::parse_vkey(s.witness_vkey, &w));
  EXPECT_TRUE(ref::note_signed_by(f.note, w));
  // The entries are the ledger's, and an inclusion proof computed from the fetched leaves
  // verifies against the signed root (and equals prov's own).
  auto l = Ledger::open(o.db);
  ASSERT_TRUE(l.is_ok());
  for (uint64_t i : {0u, 123u, 255u, 256u, 299u}) {
    auto e = (*l)->get(i);
    EXPECT_EQ(f.entries[i], entry_leaf_data(e->created_at, e->envelope));
    auto path = ref::path(f.leaves, i, 0, f.leaves.size());
    EXPECT_TRUE(ref::verify_inclusion(f.leaves[i], i, 300, path, f.checkpoint.root));
    auto mine = (*l)->inclusion_proof(i, 300);
    ASSERT_TRUE(mine.is_ok());
    ASSERT_EQ(mine->path.size(), path.size());
    for (size_t k = 0; k < path.size(); ++k) {
      EXPECT_EQ(std::string(mine->path[k].begin(), mine->path[k].end()), path[k]);
    }
  }
  auto ct = ref::http_get(url + "/checkpoint");
  EXPECT_EQ(ct.content_type, "text/plain; charset=utf-8");
  EXPECT_EQ(ref::http_get(url + "/tile/0/000").content_type, "application/octet-stream");
  EXPECT_EQ(ref::http_get(url + "/tile/0/001").status, 404);  // only 44 in tile 1
  EXPECT_EQ(ref::http_get(url + "/tile/0/001.p/44").status, 200);
  EXPECT_EQ(ref::http_get(url + "/checkpoint?x=1").status, 200);
  EXPECT_EQ(ref::http_get(url + "/admin").status, 404);

  // Monitors in parallel.
  std::vector<std::thread> threads;
  std::vector<std::string> errors(8);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] { errors[t] = ref::fetch_log(url, s.log_vkey).error + "."; });
  }
  for (auto& t : threads) t.join();
  for (const auto& e : errors) EXPECT_EQ(e, ".");
}

TEST(TlogServer, ReadOnlyAndBoundedAgainstBadClients) {
  ServedLedger s(3);
  TlogServerOptions o;
  o.db = s.dir.file("ledger.db");
  o.threads = 1;
  o.max_queued = 1;
  o.request_timeout_ms = 300;
  o.max_head_bytes = 1024;
  auto server = TlogServer::start(o);
  ASSERT_TRUE(server.is_ok()) << server.status().to_string();
  const int port = (*server)->port();
  std::string r =
      http_exchange(port, "POST /checkpoint HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
  EXPECT_EQ(r.rfind("HTTP/1.1 405 ", 0), 0u) << r;
  EXPECT_NE(r.find("Allow: GET, HEAD\r\n"), std::string::npos);
  r = http_exchange(port, "HEAD /checkpoint HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(r.rfind("HTTP/1.1 200 ", 0), 0u) << r;
  EXPECT_EQ(r.substr(r.find("\r\n\r\n") + 4), "");  // no body
  EXPECT_NE(r.find("Connection: close"), std::string::npos);
  r = http_exchange(port, "GET /checkpoint HTTP/1.0\n\n");
  EXPECT_EQ(r.rfind("HTTP/1.1 200 ", 0), 0u) << r;
  EXPECT_EQ(http_exchange(port, "BREW\r\n\r\n").rfind("HTTP/1.1 400 ", 0), 0u);
  EXPECT_EQ(
      http_exchange(port, "GET http://x/checkpoint HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 400 ", 0),
      0u);
  // A head over the limit: 431.
  r = http_exchange(port, "GET /checkpoint HTTP/1.1\r\nX: " + std::string(2000, 'a') + "\r\n\r\n");
  EXPECT_EQ(r.rfind("HTTP/1.1 431 ", 0), 0u) << r.substr(0, 40);
  // A client that sends half a head and waits: 408 once the request timeout passes.
  auto t0 = Clock::now();
  r = http_exchange(port, "GET /check");
  EXPECT_EQ(r.rfind("HTTP/1.1 408 ", 0), 0u) << r;
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(2));
  // One worker busy with a silent client, one connection queued: the next is refused with 503.
  int busy = connect_to(port);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  int queued = connect_to(port);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  r = http_exchange(port, "GET /checkpoint HTTP/1.1\r\n\r\n", 1000);
  EXPECT_EQ(r.rfind("HTTP/1.1 503 ", 0), 0u) << r;
  ::close(queued);
  ::close(busy);
  // Stopping with a client connected is prompt.
  int idle = connect_to(port);
  t0 = Clock::now();
  (*server)->stop();
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(2));
  ::close(idle);
  EXPECT_LT(connect_to(port), 0);
  // Bad options and a missing ledger are refused before anything listens.
  o.threads = 0;
  EXPECT_EQ(TlogServer::start(o).status().code(), StatusCode::kInvalidArgument);
  o.threads = 1;
  o.db = s.dir.file("missing.db");
  EXPECT_EQ(TlogServer::start(o).status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace prov::store
