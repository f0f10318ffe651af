// Helpers shared by the tests: fixtures location, scratch directories, small file writers.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace prov::testing {

// ../shared/fixtures (or $PROV_FIXTURES); empty string when absent. Tests that need it call
// PROV_REQUIRE_FIXTURES() first, which skips with a message when it is missing.
std::string fixtures_dir();

// A fresh empty directory under the system temp dir, removed when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void write_file(const std::string& path, const std::string& bytes);
void write_file(const std::string& path, const std::vector<uint8_t>& bytes);
std::string read_file(const std::string& path);

// A finished child process: its exit code (-1 when it did not exit normally) and its output.
struct Outcome {
  int code;
  std::string out;
};
// Runs `command` through the shell and collects its stdout (and stderr, when merge_stderr).
Outcome run_command(const std::string& command, bool merge_stderr = true);

}  // namespace prov::testing

#define PROV_REQUIRE_FIXTURES()                                                           \
  do {                                                                                    \
    if (::prov::testing::fixtures_dir().empty())                                          \
      GTEST_SKIP() << "shared fixtures not found (../shared/fixtures or $PROV_FIXTURES)"; \
  } while (0)
