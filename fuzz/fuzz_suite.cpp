// libFuzzer harness: probe-suite JSONL parsing (probes/suite.h). A suite that parses must also
// give canonical bytes that parse back to the same digest.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "probes/suite.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  auto suite = prov::probes::parse_suite_jsonl(bytes, "fuzz.jsonl");
  if (!suite.is_ok()) return 0;
  const std::string canonical = prov::probes::canonical_jsonl(*suite);
  auto again = prov::probes::parse_suite_jsonl(canonical, "canonical.jsonl");
  if (!again.is_ok() || prov::probes::suite_digest(*again) != prov::probes::suite_digest(*suite)) {
    std::abort();  // the canonical form must round-trip
  }
  return 0;
}
