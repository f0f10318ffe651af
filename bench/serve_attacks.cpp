// prov_serve_attacks HOST PORT [--seconds N] [--pid PID] [--api-key-env VAR]
//
// Runs the hostile-client attacks of the "Hostile clients" review against a running `prov serve`
// (or any OpenAI-compatible server) on the loopback interface, one after the other, and measures
// during each the latency of good requests (POST /v1/completions, a small prompt, one token) and,
// with --pid, the server's resident memory (/proc/PID/status: VmRSS sampled every 100 ms, VmHWM
// at the end of each attack). Prints a Markdown table.
//
// Attacks (each runs --seconds, default 10; every client stops by itself):
//   slowloris x8        a request head sent one byte every 2 s, reconnecting when cut;
//   oversize x4         Content-Length: 1 GB, the body streamed (16 MiB at most per connection);
//   chunked flood x4    a chunked body streamed (16 MiB per connection, 256 MiB per client);
//   adversarial JSON x4 a ~1 MB body of small objects (refused after parsing: max_tokens -1);
//   combined            all of the above at once.
// Only loopback hosts are accepted (127.0.0.0/8, ::1, localhost): this is a test tool, not a
// weapon. Exit codes: 0 done, 2 bad arguments or no server answering a good request.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
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

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

struct Target {
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  std::string host_header;
  std::string auth_header;  // "Authorization: Bearer ...\r\n" or ""
};

// Fills `t` for a loopback host; false for anything else.
bool loopback_target(const std::string& host, int port, Target* t) {
  std::string h = host == "localhost" ? "127.0.0.1" : host;
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&t->addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&t->addr);
  if (::inet_pton(AF_INET, h.c_str(), &v4->sin_addr) == 1) {
    if ((ntohl(v4->sin_addr.s_addr) >> 24) != 127) return false;
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    t->addr_len = sizeof(sockaddr_in);
    t->host_header = h + ":" + std::to_string(port);
    return true;
  }
  t->addr = {};
  if (::inet_pton(AF_INET6, h.c_str(), &v6->sin6_addr) == 1) {
    if (!IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr)) return false;
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    t->addr_len = sizeof(sockaddr_in6);
    t->host_header = "[" + h + "]:" + std::to_string(port);
    return true;
  }
  return false;
}

// One client connection: non-blocking socket, every wait bounded.
class Conn {
 public:
  explicit Conn(const Target& t) {
    fd_ = ::socket(t.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd_ < 0) return;
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&t.addr), t.addr_len) != 0) {
      if (errno != EINPROGRESS || !wait(POLLOUT, Clock::now() + seconds(5)) || so_error() != 0) {
        ::close(fd_);
        fd_ = -1;
      }
    }
  }
  ~Conn() {
    if (fd_ >= 0) ::close(fd_);
  }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  bool ok() const { return fd_ >= 0; }
  uint64_t sent() const { return sent_; }

  // False when the server closed or `timeout` passed first.
  bool send_all(std::string_view data, Clock::duration timeout) {
    const auto deadline = Clock::now() + timeout;
    size_t off = 0;
    while (off < data.size()) {
      const ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n > 0) {
        off += static_cast<size_t>(n);
        sent_ += static_cast<uint64_t>(n);
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

  // The status of the response (read to its end), or 0 when none came within `timeout`.
  int read_status(Clock::duration timeout) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      if (int s = parse(false)) return s;
      char buf[16384];
      const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n > 0) {
        in_.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        if (!wait(POLLIN, deadline)) return 0;
        continue;
      }
      return parse(true);
    }
  }

 private:
  int so_error() const {
    int e = 0;
    socklen_t len = sizeof(e);
    ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &e, &len);
    return e;
  }
  bool wait(short events, Clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd_, events, 0};
    return ::poll(&p, 1, static_cast<int>(left)) > 0;
  }
  // The status once the whole response is in (or at the end of the stream), else 0.
  int parse(bool at_end) const {
    const size_t head_end = in_.find("\r\n\r\n");
    if (head_end == std::string::npos || in_.size() < 12) return 0;
    const int status = std::atoi(in_.c_str() + 9);
    std::string head = in_.substr(0, head_end);
    for (char& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const size_t cl = head.find("\r\ncontent-length:");
    if (cl != std::string::npos) {
      const size_t want = std::strtoull(head.c_str() + cl + 17, nullptr, 10);
      if (in_.size() - head_end - 4 >= want) return status;
    }
    return at_end ? status : 0;
  }

  int fd_ = -1;
  uint64_t sent_ = 0;
  std::string in_;
};

std::string post_head(const Target& t, const std::string& extra) {
  return "POST /v1/completions HTTP/1.1\r\nHost: " + t.host_header +
         "\r\nContent-Type: application/json\r\n" + t.auth_header + extra + "\r\n";
}

std::string post_request(const Target& t, const std::string& body) {
  return post_head(t, "Content-Length: " + std::to_string(body.size()) + "\r\n") + body;
}

// What the attack clients of one phase did.
struct AttackStats {
  std::atomic<uint64_t> connections{0};
  std::atomic<uint64_t> bytes{0};
  std::mutex mu;
  std::map<int, uint64_t> answers;  // status -> count; 0: no answer (cut, reset or timed out)
  void answer(int status) {
    std::lock_guard<std::mutex> lock(mu);
    ++answers[status];
  }
};

using Attack = std::function<void(const Target&, const std::atomic<bool>&, AttackStats&)>;

// Sleeps up to `d`, waking early when `stop` is set.
void nap(const std::atomic<bool>& stop, Clock::duration d) {
  const auto until = Clock::now() + d;
  while (!stop && Clock::now() < until) std::this_thread::sleep_for(milliseconds(20));
}

void slowloris(const Target& t, const std::atomic<bool>& stop, AttackStats& st) {
  while (!stop) {
    Conn c(t);
    if (!c.ok()) return nap(stop, seconds(1));
    ++st.connections;
    bool cut =
        !c.send_all("POST /v1/completions HTTP/1.1\r\nHost: " + t.host_header + "\r\n", seconds(2));
    const std::string header = "X-Slow: " + std::string(4000, 'a') + "\r\n";
    for (size_t i = 0; !cut && !stop && i < header.size(); ++i) {
      nap(stop, seconds(2));
      cut = !c.send_all(std::string_view(&header[i], 1), seconds(2));
    }
    st.bytes += c.sent();
    if (stop) return;
    st.answer(c.read_status(seconds(2)));  // what the server said when it cut us (408)
  }
}

void oversize(const Target& t, const std::atomic<bool>& stop, AttackStats& st) {
  const std::string piece(64 << 10, 'x');
  uint64_t total = 0;
  while (!stop && total < (uint64_t{256} << 20)) {
    Conn c(t);
    if (!c.ok()) return nap(stop, seconds(1));
    ++st.connections;
    bool open = c.send_all(post_head(t, "Content-Length: 1073741824\r\n"), seconds(2));
    for (int i = 0; open && !stop && i < 256; ++i) open = c.send_all(piece, milliseconds(500));
    total += c.sent();
    st.bytes += c.sent();
    if (stop) return;
    st.answer(c.read_status(seconds(2)));
  }
}

void chunked_flood(const Target& t, const std::atomic<bool>& stop, AttackStats& st) {
  const std::string chunk = "10000\r\n" + std::string(0x10000, 'x') + "\r\n";
  uint64_t total = 0;
  while (!stop && total < (uint64_t{256} << 20)) {
    Conn c(t);
    if (!c.ok()) return nap(stop, seconds(1));
    ++st.connections;
    bool open = c.send_all(post_head(t, "Transfer-Encoding: chunked\r\n"), seconds(2));
    while (open && !stop && c.sent() < (uint64_t{16} << 20)) {
      open = c.send_all(chunk, milliseconds(500));
    }
    total += c.sent();
    st.bytes += c.sent();
    if (stop) return;
    st.answer(c.read_status(seconds(2)));
  }
}

std::string adversarial_body() {
  std::string body = R"({"prompt": "hi", "max_tokens": -1, "x": [)";
  while (body.size() < 1'000'000) body += R"({"a":[{}]},)";
  return body + "{}]}";
}

void adversarial_json(const Target& t, const std::atomic<bool>& stop, AttackStats& st) {
  static const std::string request = post_request(t, adversarial_body());
  while (!stop) {
    Conn c(t);
    if (!c.ok()) return nap(stop, seconds(1));
    ++st.connections;
    const bool sent = c.send_all(request, seconds(10));
    st.bytes += c.sent();
    if (stop) return;
    st.answer(sent ? c.read_status(seconds(30)) : 0);
  }
}

// Resident memory of `pid` in KiB: VmRSS and VmHWM (0 when unreadable).
std::pair<uint64_t, uint64_t> memory_kib(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  uint64_t rss = 0, hwm = 0;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) rss = std::strtoull(line.c_str() + 6, nullptr, 10);
    if (line.rfind("VmHWM:", 0) == 0) hwm = std::strtoull(line.c_str() + 6, nullptr, 10);
  }
  return {rss, hwm};
}

struct Good {
  int status = 0;
  double ms = 0;
};

Good good_request(const Target& t) {
  static const std::string request =
      post_request(t, R"({"prompt": "Hello", "max_tokens": 1, "temperature": 0})");
  const auto t0 = Clock::now();
  Good g;
  Conn c(t);
  if (c.ok() && c.send_all(request, seconds(10))) g.status = c.read_status(seconds(10));
  g.ms = seconds_since(t0) * 1000;
  return g;
}

struct Phase {
  std::string name;
  std::vector<std::pair<Attack, int>> attackers;  // attack, clients
};

struct Row {
  std::string name;
  int clients = 0;
  std::vector<Good> good;
  uint64_t connections = 0, bytes = 0;
  std::map<int, uint64_t> answers;
  uint64_t peak_rss_kib = 0, hwm_kib = 0;
};

Row run_phase(const Target& t, const Phase& p, double secs, int pid) {
  Row row;
  row.name = p.name;
  AttackStats st;
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (const auto& [attack, n] : p.attackers) {
    row.clients += n;
    for (int i = 0; i < n; ++i) threads.emplace_back([&, a = attack] { a(t, stop, st); });
  }
  std::atomic<uint64_t> peak{0};
  std::thread sampler;
  if (pid > 0) {
    sampler = std::thread([&] {
      while (!stop) {
        peak = std::max<uint64_t>(peak, memory_kib(pid).first);
        std::this_thread::sleep_for(milliseconds(100));
      }
    });
  }
  const auto t0 = Clock::now();
  nap(stop, milliseconds(row.clients > 0 ? 500 : 0));  // let the attack take hold
  while (seconds_since(t0) < secs) {
    row.good.push_back(good_request(t));
    std::this_thread::sleep_for(milliseconds(100));
  }
  stop = true;
  for (auto& th : threads) th.join();
  if (sampler.joinable()) sampler.join();
  row.connections = st.connections;
  row.bytes = st.bytes;
  row.answers = st.answers;
  if (pid > 0) {
    const auto [rss, hwm] = memory_kib(pid);
    row.peak_rss_kib = std::max<uint64_t>(peak, rss);
    row.hwm_kib = hwm;
  }
  return row;
}

std::string fmt_ms(double ms) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), ms < 10 ? "%.2f" : "%.0f", ms);
  return buf;
}

void print_table(const std::vector<Row>& rows, bool with_memory) {
  std::printf(
      "| attack | clients | good requests | good 200 | median ms | max ms | attack conns | "
      "attack MiB sent | attack answers |%s\n",
      with_memory ? " server peak RSS MiB | VmHWM MiB |" : "");
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---|%s\n", with_memory ? "---:|---:|" : "");
  for (const Row& r : rows) {
    std::vector<double> ms;
    size_t ok = 0;
    for (const Good& g : r.good) {
      ms.push_back(g.ms);
      ok += g.status == 200;
    }
    std::sort(ms.begin(), ms.end());
    const std::string median = ms.empty() ? "-" : fmt_ms(ms[ms.size() / 2]);
    const std::string max = ms.empty() ? "-" : fmt_ms(ms.back());
    std::string answers;
    for (const auto& [status, n] : r.answers) {
      if (!answers.empty()) answers += ", ";
      answers +=
          (status == 0 ? std::string("none") : std::to_string(status)) + " ×" + std::to_string(n);
    }
    std::printf("| %s | %d | %zu | %zu | %s | %s | %llu | %.1f | %s |", r.name.c_str(), r.clients,
                r.good.size(), ok, median.c_str(), max.c_str(),
                static_cast<unsigned long long>(r.connections),
                static_cast<double>(r.bytes) / (1 << 20), answers.empty() ? "-" : answers.c_str());
    if (with_memory) {
      std::printf(" %.1f | %.1f |", r.peak_rss_kib / 1024.0, r.hwm_kib / 1024.0);
    }
    std::printf("\n");
  }
}

int usage() {
  std::fprintf(stderr,
               "usage: prov_serve_attacks HOST PORT [--seconds N] [--pid PID] "
               "[--api-key-env VAR]\n"
               "  HOST must be a loopback address (127.0.0.0/8, ::1, localhost)\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return usage();
  const std::string host = argv[1];
  const int port = std::atoi(argv[2]);
  double secs = 10;
  int pid = 0;
  std::string key_env;
  for (int i = 3; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) return usage();
    if (a == "--seconds") {
      secs = std::atof(argv[++i]);
    } else if (a == "--pid") {
      pid = std::atoi(argv[++i]);
    } else if (a == "--api-key-env") {
      key_env = argv[++i];
    } else {
      return usage();
    }
  }
  if (port < 1 || port > 65535 || !(secs >= 1 && secs <= 600) || pid < 0) return usage();
  Target t;
  if (!loopback_target(host, port, &t)) {
    std::fprintf(stderr, "prov_serve_attacks: refusing '%s': only loopback hosts are attacked\n",
                 host.c_str());
    return 2;
  }
  if (!key_env.empty()) {
    const char* key = std::getenv(key_env.c_str());
    if (key == nullptr || *key == '\0') {
      std::fprintf(stderr, "prov_serve_attacks: environment variable %s is not set\n",
                   key_env.c_str());
      return 2;
    }
    t.auth_header = std::string("Authorization: Bearer ") + key + "\r\n";
  }
  if (pid > 0 && memory_kib(pid).second == 0) {
    std::fprintf(stderr, "prov_serve_attacks: cannot read /proc/%d/status\n", pid);
    return 2;
  }
  const Good probe = good_request(t);
  if (probe.status != 200) {
    std::fprintf(
        stderr,
        "prov_serve_attacks: a good request to %s got %s; is the server up (and "
        "does it need --api-key-env)?\n",
        t.host_header.c_str(),
        probe.status == 0 ? "no answer" : ("HTTP " + std::to_string(probe.status)).c_str());
    return 2;
  }

  const std::vector<Phase> phases = {
      {"none (baseline)", {}},
      {"slowloris ×8", {{slowloris, 8}}},
      {"declared oversize ×4", {{oversize, 4}}},
      {"chunked flood ×4", {{chunked_flood, 4}}},
      {"adversarial JSON ×4", {{adversarial_json, 4}}},
      {"combined", {{slowloris, 8}, {oversize, 4}, {chunked_flood, 4}, {adversarial_json, 4}}},
  };
  std::fprintf(stderr, "prov_serve_attacks: %s, %zu attacks of %.0f s each\n",
               t.host_header.c_str(), phases.size(), secs);
  std::vector<Row> rows;
  for (const Phase& p : phases) {
    std::fprintf(stderr, "  %s ...\n", p.name.c_str());
    rows.push_back(run_phase(t, p, secs, pid));
  }
  std::printf(
      "Target http://%s, %.0f s per attack; good request: POST /v1/completions "
      "(\"Hello\", max_tokens 1) every 100 ms, one at a time.\n\n",
      t.host_header.c_str(), secs);
  print_table(rows, pid > 0);
  if (pid > 0) {
    std::printf(
        "\nPeak RSS: the largest VmRSS sampled during the attack; VmHWM: the process's "
        "high-water mark since it started (cumulative).\n");
  }
  return 0;
}
