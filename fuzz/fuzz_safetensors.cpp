// libFuzzer harness for the safetensors reader.
//
// Parses the input as one in-memory safetensors file. When the parse succeeds it checks that every
// tensor lies inside the input, converts every float tensor of at most 2^22 elements to fp32, and
// checks that writing the tensors back and parsing the result gives the same tensors.
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "model/formats/safetensors.h"
#include "model/formats/tensor.h"

using prov::model::Checkpoint;
using prov::model::dtype_info;
using prov::model::SafetensorsEntry;
using prov::model::TensorRef;

namespace {

constexpr uint64_t kMaxConvertElems = uint64_t{1} << 22;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto parsed = prov::model::parse_safetensors_buffer(nullptr, data, size, "fuzz.safetensors");
  if (!parsed.is_ok()) {
    check(!parsed.status().message().empty());
    return 0;
  }
  const Checkpoint& ckpt = *parsed;
  std::vector<SafetensorsEntry> entries;
  bool round_trip = true;
  for (const TensorRef& t : ckpt.tensors) {
    // Every tensor lies inside the input, where its file offset says.
    check(t.file_offset <= size && t.nbytes <= size - t.file_offset);
    check(t.data == data + t.file_offset);
    check(ckpt.find(t.name) == &t);
    if (dtype_info(t.dtype).is_float && t.numel() <= kMaxConvertElems) {
      auto values = prov::model::to_float32(t);
      check(values.is_ok() && values->size() == t.numel());
    }
    if (t.name.empty()) round_trip = false;  // readable, but the writer refuses empty names
    entries.push_back(SafetensorsEntry{t.name, t.dtype, t.shape,
                                       std::vector<uint8_t>(t.data, t.data + t.nbytes)});
  }
  if (!round_trip) return 0;
  std::map<std::string, std::string> metadata;
  for (auto& [k, v] : ckpt.metadata.items()) metadata[k] = v.get<std::string>();
  auto bytes = prov::model::serialize_safetensors(entries, metadata);
  check(bytes.is_ok());
  auto again =
      prov::model::parse_safetensors_buffer(nullptr, bytes->data(), bytes->size(), "rewritten");
  check(again.is_ok());
  check(again->tensors.size() == ckpt.tensors.size());
  check(again->metadata == ckpt.metadata);
  for (const SafetensorsEntry& e : entries) {
    const TensorRef* t = again->find(e.name);
    check(t != nullptr && t->dtype == e.dtype && t->shape == e.shape &&
          t->nbytes == e.bytes.size());
    check(e.bytes.empty() || std::memcmp(t->data, e.bytes.data(), t->nbytes) == 0);
  }
  return 0;
}
