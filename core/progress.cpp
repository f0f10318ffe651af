#include "core/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>

namespace prov {

Progress::Progress(std::string what, bool quiet)
    : what_(std::move(what)), enabled_(!quiet && isatty(2) != 0) {
  start_ = last_ = std::chrono::steady_clock::now();
}

Progress::~Progress() {
  finish();
}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const long s = std::lround(seconds);
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%ldh %02ldm", s / 3600, (s % 3600) / 60);
  } else if (s >= 60) {
    std::snprintf(buf, sizeof buf, "%ldm %02lds", s / 60, s % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%lds", s);
  }
  return buf;
}

void Progress::update(size_t done, size_t total) {
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  if (done != total && now - last_ < std::chrono::milliseconds(200)) return;
  last_ = now;
  const double s = std::chrono::duration<double>(now - start_).count();
  const double rate = s > 0 ? double(done) / s : 0.0;
  std::string eta;
  if (done > 0 && done < total && rate > 0) {
    eta = ", ETA " + format_duration(double(total - done) / rate);
  }
  std::fprintf(stderr, "\r%s: %zu/%zu (%.0f%%) %.1f/s%s   ", what_.c_str(), done, total,
               total ? 100.0 * double(done) / double(total) : 100.0, rate, eta.c_str());
  std::fflush(stderr);
  printed_ = true;
}

void Progress::finish() {
  if (printed_) std::fprintf(stderr, "\n");
  printed_ = false;
}

}  // namespace prov
