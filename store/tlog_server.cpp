#include "store/tlog_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <ostream>
#include <thread>
#include <vector>

#include "store/ledger.h"
#include "store/tlog_tiles.h"

namespace prov::store {

namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kLinger = std::chrono::milliseconds(200);
constexpr size_t kLingerBytes = 64 << 10;

const char* reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 431:
      return "Request Header Fields Too Large";
    case 503:
      return "Service Unavailable";
    default:
      return "Internal Server Error";
  }
}

enum class Wait { kReady, kTimeout, kStopped };

// Waits for `events` on `fd` until `deadline` or until `stop_fd` (when >= 0) turns readable.
Wait wait_for(int fd, short events, Clock::time_point deadline, int stop_fd) {
  for (;;) {
    const auto now = Clock::now();
    if (now >= deadline) return Wait::kTimeout;
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count();
    pollfd p[2] = {{fd, events, 0}, {stop_fd, POLLIN, 0}};
    const int n = ::poll(p, stop_fd >= 0 ? 2 : 1, static_cast<int>(std::min<long>(left, 60000)));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Wait::kStopped;
    if (n == 0) continue;  // the deadline is checked at the top
    if (stop_fd >= 0 && (p[1].revents & POLLIN)) return Wait::kStopped;
    if (p[0].revents & (events | POLLERR | POLLHUP)) return Wait::kReady;
  }
}

// Writes all of `data` before `deadline`.
bool write_all(int fd, const std::string& data, Clock::time_point deadline) {
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
        wait_for(fd, POLLOUT, deadline, -1) == Wait::kReady) {
      continue;
    }
    return false;
  }
  return true;
}

std::string response(const TlogAnswer& a, bool head) {
  std::string out = "HTTP/1.1 " + std::to_string(a.status) + " " + reason(a.status) + "\r\n";
  out += "Content-Type: " + a.content_type + "\r\n";
  out += "Content-Length: " + std::to_string(a.body.size()) + "\r\n";
  if (!a.cache_control.empty()) out += "Cache-Control: " + a.cache_control + "\r\n";
  if (a.status == 405) out += "Allow: GET, HEAD\r\n";
  out += "Connection: close\r\n\r\n";
  if (!head) out += a.body;
  return out;
}

TlogAnswer plain(int status, const std::string& message) {
  return TlogAnswer{status, "text/plain; charset=utf-8", "no-store", message + "\n"};
}

}  // namespace

struct TlogServer::Impl {
  TlogServerOptions options;
  std::string host;
  std::string origin;
  int listen_fd = -1;
  int stop_fds[2] = {-1, -1};
  int port = 0;
  std::vector<std::unique_ptr<Ledger>> ledgers;  // one per worker
  std::thread acceptor;
  std::vector<std::thread> workers;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<int> queue;
  bool stopping = false;
  bool stopped = false;

  ~Impl() {
    for (int fd : {listen_fd, stop_fds[0], stop_fds[1]}) {
      if (fd >= 0) ::close(fd);
    }
  }

  void accept_loop() {
    for (;;) {
      pollfd p[2] = {{listen_fd, POLLIN, 0}, {stop_fds[0], POLLIN, 0}};
      if (::poll(p, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (p[1].revents & POLLIN) return;
      if (!(p[0].revents & POLLIN)) continue;
      const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) continue;
      std::unique_lock<std::mutex> lock(mu);
      if (queue.size() >= static_cast<size_t>(options.max_queued)) {
        lock.unlock();
        const std::string busy = response(plain(503, "busy: retry later"), false);
        [[maybe_unused]] ssize_t n =
            ::send(fd, busy.data(), busy.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        ::close(fd);
        continue;
      }
      queue.push_back(fd);
      cv.notify_one();
    }
  }

  void work(Ledger& ledger) {
    for (;;) {
      int fd = -1;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [this] { return stopping || !queue.empty(); });
        if (stopping) return;
        fd = queue.front();
        queue.pop_front();
      }
      serve(fd, ledger);
      linger_and_close(fd);
    }
  }

  // Reads one request head and answers it.
  void serve(int fd, Ledger& ledger) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(options.request_timeout_ms);
    std::string head;
    size_t end = std::string::npos;
    char buf[4096];
    while (end == std::string::npos) {
      if (head.size() >= options.max_head_bytes) {
        reply(fd,
              plain(431, "request head over " + std::to_string(options.max_head_bytes) + " bytes"),
              false);
        return;
      }
      const ssize_t n =
          ::recv(fd, buf, std::min(sizeof buf, options.max_head_bytes - head.size()), 0);
      if (n > 0) {
        head.append(buf, static_cast<size_t>(n));
        end = head.find("\r\n\r\n");
        if (end == std::string::npos) end = head.find("\n\n");
        continue;
      }
      if (n == 0) return;  // closed before a whole request
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return;
      const Wait w = wait_for(fd, POLLIN, deadline, stop_fds[0]);
      if (w == Wait::kTimeout) reply(fd, plain(408, "request head not received in time"), false);
      if (w != Wait::kReady) return;
    }
    const std::string line = head.substr(0, head.find_first_of("\r\n"));
    const size_t sp1 = line.find(' ');
    const size_t sp2 = sp1 == std::string::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string::npos || line.compare(sp2 + 1, 7, "HTTP/1.") != 0) {
      reply(fd, plain(400, "malformed request line"), false);
      return;
    }
    const std::string method = line.substr(0, sp1);
    std::string target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    target = target.substr(0, target.find('?'));
    if (target.empty() || target[0] != '/') {
      reply(fd, plain(400, "request target must be a path"), false);
      return;
    }
    reply(fd, answer_tlog_request(ledger, method, target), method == "HEAD");
  }

  void reply(int fd, const TlogAnswer& a, bool head) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(options.write_timeout_ms);
    write_all(fd, response(a, head), deadline);
  }

  // Shuts the write side and drains what the client still sends (briefly), so that closing
  // with unread input does not reset the connection before the client read the answer.
  static void linger_and_close(int fd) {
    ::shutdown(fd, SHUT_WR);
    const auto deadline = Clock::now() + kLinger;
    size_t drained = 0;
    char buf[4096];
    while (drained < kLingerBytes && wait_for(fd, POLLIN, deadline, -1) == Wait::kReady) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0 && !(n < 0 && errno == EINTR)) break;
      if (n > 0) drained += static_cast<size_t>(n);
    }
    ::close(fd);
  }
};

TlogServer::TlogServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

TlogServer::~TlogServer() {
  stop();
}

int TlogServer::port() const {
  return impl_->port;
}

const std::string& TlogServer::origin() const {
  return impl_->origin;
}

std::string TlogServer::url() const {
  const bool v6 = impl_->host.find(':') != std::string::npos;
  return "http://" + (v6 ? "[" + impl_->host + "]" : impl_->host) + ":" +
         std::to_string(impl_->port);
}

Result<std::unique_ptr<TlogServer>> TlogServer::start(const TlogServerOptions& options) {
  if (options.threads < 1 || options.threads > 256 || options.max_queued < 1 || options.port < 0 ||
      options.port > 65535 || options.request_timeout_ms < 1 || options.write_timeout_ms < 1 ||
      options.max_head_bytes < 64) {
    return invalid_argument("ledger serve: threads 1..256, port 0..65535, positive limits");
  }
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  for (int i = 0; i < options.threads; ++i) {
    PROV_ASSIGN_OR_RETURN(auto l, Ledger::open(options.db, /*create=*/false));
    impl->ledgers.push_back(std::move(l));
  }
  PROV_ASSIGN_OR_RETURN(impl->origin, impl->ledgers[0]->origin());
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(options.port);
  if (::getaddrinfo(options.host.c_str(), port.c_str(), &hints, &res) != 0 || res == nullptr) {
    return invalid_argument("ledger serve: cannot resolve host '" + options.host + "'");
  }
  std::string error = "no address";
  for (addrinfo* a = res; a != nullptr && impl->listen_fd < 0; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd, SOMAXCONN) == 0) {
      impl->listen_fd = fd;
      char host[INET6_ADDRSTRLEN] = {};
      sockaddr_storage ss{};
      socklen_t len = sizeof ss;
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
      if (ss.ss_family == AF_INET6) {
        auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
        ::inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof host);
        impl->port = ntohs(s6->sin6_port);
      } else {
        auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
        ::inet_ntop(AF_INET, &s4->sin_addr, host, sizeof host);
        impl->port = ntohs(s4->sin_port);
      }
      impl->host = host;
    } else {
      error = std::strerror(errno);
      ::close(fd);
    }
  }
  ::freeaddrinfo(res);
  if (impl->listen_fd < 0) {
    return io_error("ledger serve: cannot listen on " + options.host + ":" + port + ": " + error);
  }
  if (::pipe2(impl->stop_fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    return io_error(std::string("ledger serve: pipe: ") + std::strerror(errno));
  }
  Impl* raw = impl.get();
  try {
    for (auto& l : raw->ledgers) {
      Ledger* ledger = l.get();
      raw->workers.emplace_back([raw, ledger] { raw->work(*ledger); });
    }
    raw->acceptor = std::thread([raw] { raw->accept_loop(); });
  } catch (const std::system_error& e) {
    std::unique_ptr<TlogServer> partial(new TlogServer(std::move(impl)));
    partial->stop();
    return io_error(std::string("ledger serve: cannot start threads: ") + e.what());
  }
  return std::unique_ptr<TlogServer>(new TlogServer(std::move(impl)));
}

void TlogServer::stop() {
  Impl& s = *impl_;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    if (s.stopped) return;
    s.stopped = true;
    s.stopping = true;
  }
  char c = 1;
  [[maybe_unused]] ssize_t n = ::write(s.stop_fds[1], &c, 1);
  s.cv.notify_all();
  if (s.acceptor.joinable()) s.acceptor.join();
  if (s.listen_fd >= 0) ::close(s.listen_fd);
  s.listen_fd = -1;
  for (auto& w : s.workers) w.join();
  for (int fd : s.queue) ::close(fd);
  s.queue.clear();
}

Status serve_tlog_until_signal(const TlogServerOptions& options, std::ostream& announce) {
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  // Blocked before the server's threads start, so they inherit the mask and sigwait sees both.
  pthread_sigmask(SIG_BLOCK, &set, &old);
  auto server = TlogServer::start(options);
  if (!server.is_ok()) {
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return server.status();
  }
  announce << "prov ledger serve: " << options.db << " on " << (*server)->url() << "/ (origin "
           << (*server)->origin() << ")" << std::endl;
  int sig = 0;
  sigwait(&set, &sig);
  (*server)->stop();
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return Status::ok();
}

}  // namespace prov::store
