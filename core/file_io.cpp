#include "core/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

namespace prov {

namespace {
std::string errno_text(int e) {
  return std::strerror(e);
}
}  // namespace

Status write_file_atomic(const std::string& path, const std::string& bytes, unsigned mode) {
  std::string tmp = path + ".tmp-XXXXXX";
  const int fd = ::mkstemp(tmp.data());
  if (fd < 0) {
    return {StatusCode::kIo,
            path + ": cannot create a temporary file next to it: " + errno_text(errno)};
  }
  std::string failure;
  if (::fchmod(fd, static_cast<mode_t>(mode)) != 0) {
    failure = tmp + ": chmod failed: " + errno_text(errno);
  }
  size_t done = 0;
  while (failure.empty() && done < bytes.size()) {
    const ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      failure = tmp + ": write failed: " + errno_text(errno);
    } else {
      done += static_cast<size_t>(w);
    }
  }
  if (failure.empty() && ::fsync(fd) != 0) failure = tmp + ": fsync failed: " + errno_text(errno);
  if (::close(fd) != 0 && failure.empty()) failure = tmp + ": close failed: " + errno_text(errno);
  if (failure.empty() && std::rename(tmp.c_str(), path.c_str()) != 0) {
    failure = "cannot rename " + tmp + " to " + path + ": " + errno_text(errno);
  }
  if (!failure.empty()) {
    ::unlink(tmp.c_str());
    return {StatusCode::kIo, failure};
  }
  const size_t slash = path.find_last_of('/');
  const std::string dir =
      slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
  return Status::ok();
}

namespace {
// Envelopes, checkpoint notes and disclosures larger than this are refused before they are read.
constexpr uint64_t kMaxInputBytes = uint64_t{64} << 20;
}  // namespace

Result<std::string> read_small_file(const std::string& path, const std::string& what) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return not_found(path + ": no such file");
    return io_error(path + ": cannot read " + what + ": " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) return invalid_argument(path + ": not a regular file (" + what + ")");
  if (static_cast<uint64_t>(st.st_size) > kMaxInputBytes) {
    return invalid_argument(path + ": " + std::to_string(st.st_size) +
                            " bytes, over the 64 MiB limit for a " + what);
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return io_error(path + ": cannot open " + what + ": " + std::strerror(errno));
  std::string bytes(static_cast<size_t>(st.st_size), '\0');
  if (!bytes.empty() && !in.read(&bytes[0], static_cast<std::streamsize>(bytes.size()))) {
    return io_error(path + ": short read of " + what);
  }
  return bytes;
}

}  // namespace prov
