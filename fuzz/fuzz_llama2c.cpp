// libFuzzer harness for the llama2.c checkpoint and tokenizer parsers.
//
// Every input is parsed as a checkpoint (dequantizing each tensor of at most 1<<20 elements when
// the parse succeeds) and as a tokenizer file, both until EOF and with a vocabulary size taken
// from the first byte; a tokenizer parsed until EOF must serialize back to the input bytes.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "model/formats/llama2c.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace prov::model;
  (void)looks_like_llama2c(data, size);
  auto ckpt = parse_llama2c_buffer(nullptr, data, size, "fuzz.bin");
  if (ckpt.is_ok()) {
    for (const TensorRef& t : ckpt->tensors) {
      if (t.numel() > (1u << 20)) continue;
      auto values = to_float32(t);
      if (!values.is_ok()) __builtin_trap();  // a parsed tensor must always be readable
      (void)canonical_bytes(t);
    }
  }

  auto tok = parse_llama2c_tokenizer_buffer(data, size, -1, "fuzz.tok");
  if (tok.is_ok()) {
    auto bytes = serialize_llama2c_tokenizer(*tok);
    if (!bytes.is_ok() || bytes->size() != size ||
        (size > 0 && std::memcmp(bytes->data(), data, size) != 0)) {
      __builtin_trap();
    }
  }
  if (size > 0) (void)parse_llama2c_tokenizer_buffer(data, size, data[0], "fuzz.tok");
  return 0;
}
