// libFuzzer harness for the GGUF reader: parses the input in memory, dequantizes every tensor
// of at most 1 << 20 elements (applying the Q/K row order), digests it, and extracts the
// tokenizer from both the typed and the JSON metadata.
#include <cstddef>
#include <cstdint>

#include "model/formats/gguf.h"
#include "model/formats/tensor.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace prov::model;
  using prov::Result;
  Result<Checkpoint> c = parse_gguf_buffer(nullptr, data, size, "fuzz.gguf");
  if (!c.is_ok()) return 0;
  for (const TensorRef& t : c->tensors) {
    if (t.numel() > (uint64_t{1} << 20)) continue;
    Result<std::vector<float>> v = to_float32(t);
    (void)v;
    Result<std::string> d = tensor_digest(t);
    (void)d;
  }
  Result<GgufTokenizer> tok = gguf_tokenizer(*c);
  (void)tok;
  Result<GgufFile> f = parse_gguf(data, size, "fuzz.gguf");
  if (f.is_ok()) {
    Result<GgufTokenizer> tok2 = gguf_tokenizer(*f);
    (void)tok2;
  }
  (void)c->metadata.dump();  // the JSON must always be dumpable
  return 0;
}
