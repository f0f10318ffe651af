// libFuzzer harness for the one entry point of untrusted JSON (core/json.h): tight limits so the
// fuzzer reaches every refusal, and the invariant that a parsed document serialises and reads back
// to the same value.
#include <cstdint>
#include <string>
#include <string_view>

#include "core/json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  prov::JsonLimits limits;
  limits.max_depth = 16;
  limits.max_values = 4096;
  limits.max_string_bytes = 1024;
  prov::JsonFailure failure;
  auto j = prov::parse_json(text, "fuzz.json", limits, &failure);
  if (!j.is_ok()) {
    if (failure.kind == prov::JsonFailure::kNone) __builtin_trap();  // a refusal says why
    return 0;
  }
  const std::string again = j->dump();
  auto k = prov::parse_json(again, "again", limits);
  if (!k.is_ok() || *k != *j) __builtin_trap();
  return 0;
}
