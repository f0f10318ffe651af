// libFuzzer harness for config.json parsing (bounded JSON + HF config interpretation).
#include <cstdint>
#include <string>

#include "model/formats/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto j = prov::model::parse_json_bounded(text, "fuzz.json");
  if (!j.is_ok()) return 0;
  auto c = prov::model::config_from_hf_json(*j, nullptr, "fuzz.json");
  if (c.is_ok()) (void)c->validate();
  return 0;
}
