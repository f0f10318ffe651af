// Plumbing shared by the probe commands of the prov executable and of its LibTorch plugin:
// writing a signature file with resume, and the progress line.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "core/status.h"
#include "probes/signature.h"
#include "probes/suite.h"

namespace prov::cli {

// Prints "\r<what>: done/total (pct) rate/s" to stderr at most 5 times a second when stderr is a
// terminal; silent otherwise (and when quiet).
class Progress {
 public:
  Progress(std::string what, bool quiet);
  void update(size_t done, size_t total);
  void finish();

 private:
  std::string what_;
  bool enabled_;
  std::chrono::steady_clock::time_point start_, last_;
  bool printed_ = false;
};

// Opens `path` for the suite: appends to a matching partial file when resume is true and the
// file exists (returns the indices already present in *skip), else creates it. Fails when an
// existing file belongs to another model/suite/setting (the message says which field differs).
// *already = number of records already present.
Result<std::unique_ptr<probes::SignatureWriter>> open_signature_for(
    const std::string& path, const probes::SignatureHeader& header, bool resume,
    std::vector<bool>* skip, size_t* already);

// The executable's end of a signature collection: opens (or resumes) the file once the header
// is known, writes records, reports progress, and closes with a summary.
class SignatureSink {
 public:
  SignatureSink(std::string command, std::string path, bool resume, bool quiet);
  // Opens the file for `header`; *skip receives the probes already present.
  Status begin(const probes::SignatureHeader& header, std::vector<bool>* skip);
  Status record(const probes::ProbeRecord& r);
  void progress(size_t done, size_t total);
  // Closes the file; prints the summary, or, when `exit_code` != 0, how many probes the partial
  // file holds. Returns the final exit code.
  int finish(int exit_code);

 private:
  std::string command_, path_;
  bool resume_, quiet_;
  std::unique_ptr<probes::SignatureWriter> writer_;
  uint32_t total_ = 0;
  size_t already_ = 0, written_ = 0;
  Progress bar_;
  std::chrono::steady_clock::time_point t0_;
};

}  // namespace prov::cli
