#include "probes/dialect.h"

namespace prov::probes {

namespace {

// name, engine, prompt_logprobs, prompt_alternatives, text_only, top_k_cap, token_ids,
// logprob_mode, version_path
const DialectTraits kTraits[] = {
    {"openai", "openai", true, true, false, 20, false, "raw", ""},
    {"vllm", "vllm", true, true, false, 20, true, "raw", "/version"},
    {"sglang", "sglang", true, true, false, 0, true, "raw", "/get_server_info"},
    {"tgi", "tgi", true, false, false, 5, true, "raw", "/info"},
    {"llamacpp", "llama.cpp", false, false, false, 0, true, "raw", "/props"},
    {"anthropic", "anthropic", false, false, true, 0, false, "none", ""},
};

}  // namespace

const DialectTraits& dialect_traits(Dialect dialect) {
  return kTraits[static_cast<int>(dialect)];
}

const char* dialect_name(Dialect dialect) {
  return dialect_traits(dialect).name;
}

Result<Dialect> parse_dialect(const std::string& name) {
  for (int i = 0; i < 6; ++i) {
    if (name == kTraits[i].name) return static_cast<Dialect>(i);
  }
  if (name == "llama.cpp") return Dialect::kLlamaCpp;
  return invalid_argument("unknown dialect '" + name +
                          "' (known: openai, vllm, sglang, tgi, llamacpp, anthropic)");
}

}  // namespace prov::probes
