#include "cli/probe_common.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>

#include "cli/common.h"

namespace prov::cli {

Progress::Progress(std::string what, bool quiet)
    : what_(std::move(what)), enabled_(!quiet && isatty(2) != 0) {
  start_ = last_ = std::chrono::steady_clock::now();
}

void Progress::update(size_t done, size_t total) {
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  if (done != total && now - last_ < std::chrono::milliseconds(200)) return;
  last_ = now;
  const double s = std::chrono::duration<double>(now - start_).count();
  std::fprintf(stderr, "\r%s: %zu/%zu (%.0f%%) %.1f/s   ", what_.c_str(), done, total,
               total ? 100.0 * double(done) / double(total) : 100.0,
               s > 0 ? double(done) / s : 0.0);
  std::fflush(stderr);
  printed_ = true;
}

void Progress::finish() {
  if (printed_) std::fprintf(stderr, "\n");
  printed_ = false;
}

Result<std::unique_ptr<probes::SignatureWriter>> open_signature_for(
    const std::string& path, const probes::SignatureHeader& header, bool resume,
    std::vector<bool>* skip, size_t* already) {
  skip->assign(header.num_probes, false);
  *already = 0;
  std::error_code ec;
  if (resume && std::filesystem::exists(path, ec)) {
    std::vector<probes::ProbeRecord> existing;
    PROV_ASSIGN_OR_RETURN(auto w, probes::SignatureWriter::append(path, header, &existing));
    for (const auto& r : existing) {
      if (r.index < skip->size()) (*skip)[r.index] = true;
    }
    *already = existing.size();
    return w;
  }
  return probes::SignatureWriter::create(path, header);
}

SignatureSink::SignatureSink(std::string command, std::string path, bool resume, bool quiet)
    : command_(std::move(command)),
      path_(std::move(path)),
      resume_(resume),
      quiet_(quiet),
      bar_(command_, quiet),
      t0_(std::chrono::steady_clock::now()) {}

Status SignatureSink::begin(const probes::SignatureHeader& header, std::vector<bool>* skip) {
  total_ = header.num_probes;
  PROV_ASSIGN_OR_RETURN(writer_, open_signature_for(path_, header, resume_, skip, &already_));
  if (already_ > 0 && !quiet_) {
    std::cerr << "prov " << command_ << ": resuming " << path_ << " (" << already_ << " of "
              << total_ << " probes already collected)\n";
  }
  t0_ = std::chrono::steady_clock::now();
  return Status::ok();
}

Status SignatureSink::record(const probes::ProbeRecord& r) {
  if (!writer_) return internal_error("signature record before the header");
  ++written_;
  return writer_->write(r);
}

void SignatureSink::progress(size_t done, size_t total) {
  bar_.update(done, total);
}

int SignatureSink::finish(int exit_code) {
  bar_.finish();
  if (!writer_) return exit_code;
  Status cl = writer_->close();
  if (exit_code != kExitOk) {
    std::cerr << "prov " << command_ << ": " << already_ + written_ << " of " << total_
              << " probes are in " << path_ << "; rerun the same command to complete it\n";
    return exit_code;
  }
  if (!cl.is_ok()) return report_error(command_, cl);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  if (!quiet_) {
    std::fprintf(stderr,
                 "prov %s: %zu probes collected in %.2f s (%.1f probes/s); %s is complete\n",
                 command_.c_str(), written_, s, s > 0 ? double(written_) / s : 0.0, path_.c_str());
  }
  return kExitOk;
}

}  // namespace prov::cli
