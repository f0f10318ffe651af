// Running the prov executable from CLI tests. Needs PROV_EXE (the built binary's path), which
// the CLI test targets define.
#pragma once

#include <filesystem>
#include <string>

#include "tests/support/test_support.h"

#ifndef PROV_EXE
#error "tests/support/prov_cli.h needs PROV_EXE"
#endif

namespace prov::testing {

// `prov ARGS` through the shell; stderr merged into Outcome::out unless merge_stderr is false.
inline Outcome run_prov(const std::string& args, bool merge_stderr = true) {
  return run_command(std::string(PROV_EXE) + " " + args, merge_stderr);
}

// The Debian corpora the zoo trains on (wordnet-base, fortunes-min).
inline bool have_corpora() {
  return std::filesystem::exists("/usr/share/wordnet/data.noun") &&
         std::filesystem::exists("/usr/share/games/fortunes/fortunes");
}

}  // namespace prov::testing
