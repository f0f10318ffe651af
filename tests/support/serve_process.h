// `prov serve` as a child process for end-to-end tests (needs PROV_EXE defined by the test target).
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>

namespace prov::testing {

// `prov serve` as a child process on a free loopback port; stopped with SIGTERM.
class ServeProcess {
 public:
  explicit ServeProcess(const std::string& model, const std::string& name = "B") {
    int fds[2];
    if (pipe(fds) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(fds[1], 1);
      close(fds[0]);
      execl(PROV_EXE, PROV_EXE, "serve", model.c_str(), "--port", "0", "--name", name.c_str(),
            static_cast<char*>(nullptr));
      _exit(127);
    }
    close(fds[1]);
    // The first stdout line names the address: "prov serve: B on http://127.0.0.1:PORT/v1 ...".
    FILE* f = fdopen(fds[0], "r");
    char line[512];
    if (f != nullptr && fgets(line, sizeof line, f) != nullptr) {
      std::string s(line);
      auto a = s.find("http://");
      auto b = s.find("/v1");
      if (a != std::string::npos && b != std::string::npos) url_ = s.substr(a, b - a);
    }
    if (f != nullptr) fclose(f);
  }
  ~ServeProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int st = 0;
      waitpid(pid_, &st, 0);
    }
  }
  const std::string& url() const { return url_; }

 private:
  pid_t pid_ = -1;
  std::string url_;
};

}  // namespace prov::testing
