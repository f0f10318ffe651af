// Checking exports with the official validators (tests/tools/validate_export.mjs): the
// CycloneDX 1.6 and SPDX 3.0.1 JSON schemas, the SPDX JSON-LD context and SHACL model, the Hugging
// Face card rules. Needs PROV_SOURCE_DIR (the repository root) defined by the test target.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "tests/support/test_support.h"

#ifndef PROV_SOURCE_DIR
#error "tests/tools/validate.h needs PROV_SOURCE_DIR"
#endif

namespace prov::testing {

struct Validation {
  enum Kind { kValid, kInvalid, kUnavailable } kind;
  std::string output;  // the reasons (invalid) or why it could not check (unavailable)
};

// Writes each {name, content} into `dir` and runs the validator of `format` ("cyclonedx", "spdx3",
// "hf-card") on all of them in one run.
inline Validation validate_exports(const TempDir& dir, const std::string& format,
                                   const std::vector<std::pair<std::string, std::string>>& files) {
  if (run_command("command -v node", false).code != 0) {
    return {Validation::kUnavailable, "node is not installed: run scripts/setup"};
  }
  std::string command =
      "node '" + std::string(PROV_SOURCE_DIR) + "/tests/tools/validate_export.mjs' " + format;
  for (const auto& [name, content] : files) {
    write_file(dir.file(name), content);
    command += " '" + dir.file(name) + "'";
  }
  Outcome o = run_command(command);
  if (o.code == 0) return {Validation::kValid, o.out};
  if (o.code == 77) return {Validation::kUnavailable, o.out};
  return {Validation::kInvalid, o.out};
}

}  // namespace prov::testing

// Validates the {name, content} pairs as `format`; skips the test (with the validator's reason)
// when the validators or the official schemas are absent.
#define PROV_EXPECT_VALID_EXPORTS(dir, format, ...)                                      \
  do {                                                                                   \
    ::prov::testing::Validation v_ =                                                     \
        ::prov::testing::validate_exports((dir), (format), __VA_ARGS__);                 \
    if (v_.kind == ::prov::testing::Validation::kUnavailable) GTEST_SKIP() << v_.output; \
    EXPECT_EQ(v_.kind, ::prov::testing::Validation::kValid)                              \
        << (format) << " export fails the official validator:\n"                         \
        << v_.output;                                                                    \
  } while (0)
#define PROV_EXPECT_VALID_EXPORT(dir, format, name, content) \
  PROV_EXPECT_VALID_EXPORTS(dir, format, {{(name), (content)}})
