// A progress line on stderr for long work: "\r<what>: done/total (pct) rate/s, ETA 1m 05s",
// redrawn at most 5 times a second, only when stderr is a terminal and not quiet; finish() ends
// the line. Cheap to call per item.
//
// Thread safety: one Progress per thread (update() is not synchronised).
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

namespace prov {

class Progress {
 public:
  Progress(std::string what, bool quiet);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  void update(size_t done, size_t total);
  void finish();
  bool enabled() const { return enabled_; }

 private:
  std::string what_;
  bool enabled_;
  std::chrono::steady_clock::time_point start_, last_;
  bool printed_ = false;
};

// "1h 02m", "3m 05s", "12s".
std::string format_duration(double seconds);

}  // namespace prov
