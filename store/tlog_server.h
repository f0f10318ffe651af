// `prov ledger serve`: the ledger as a read-only C2SP tlog-tiles log over HTTP/1.1
// (resources: store/tlog_tiles.h).
//
// A small server of its own (GET and HEAD, one request per connection, "Connection: close"), so
// that every limit is explicit: the request head must arrive whole within request_timeout_ms and
// within max_head_bytes; responses are written within write_timeout_ms; `threads` workers serve
// connections, each with its own read-only use of the ledger (one Ledger per thread), up to
// max_queued connections wait, and more are answered 503 at once. A request body is never read.
// Binds to loopback by default.
//
// Thread safety: start() and stop() from one thread; the server's own threads do the rest.
#pragma once

#include <memory>
#include <ostream>
#include <string>

#include "core/status.h"

namespace prov::store {

struct TlogServerOptions {
  std::string db;                  // the ledger file
  std::string host = "127.0.0.1";  // a numeric IPv4 or IPv6 address, or "localhost"
  int port = 0;                    // 0: a free port (see TlogServer::port)
  int threads = 4;
  int max_queued = 64;
  int request_timeout_ms = 5000;
  int write_timeout_ms = 10000;
  size_t max_head_bytes = 8192;
};

class TlogServer {
 public:
  // Opens the ledger (kNotFound / kCorrupt as Ledger::open), binds and listens (kIo naming the
  // address), and starts serving. kInvalidArgument on bad options.
  static Result<std::unique_ptr<TlogServer>> start(const TlogServerOptions& options);
  ~TlogServer();  // stop()
  TlogServer(const TlogServer&) = delete;
  TlogServer& operator=(const TlogServer&) = delete;

  int port() const;
  // "http://127.0.0.1:PORT" (IPv6 hosts in brackets).
  std::string url() const;
  // The ledger's origin (Ledger::origin).
  const std::string& origin() const;
  // Stops accepting, finishes the connections being served, joins every thread. Idempotent.
  void stop();

  struct Impl;

 private:
  explicit TlogServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Serves until SIGINT or SIGTERM (blocked in the calling thread for the duration and taken with
// sigwait), having written "prov ledger serve: <db> on <url>/ (origin <origin>)" and a newline
// to `announce` once listening. The Status is TlogServer::start's.
Status serve_tlog_until_signal(const TlogServerOptions& options, std::ostream& announce);

}  // namespace prov::store
