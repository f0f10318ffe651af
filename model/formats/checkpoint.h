// Checkpoint: the tensors and metadata of one model as its files store them.
//
// Readers (safetensors, GGUF, llama2.c) produce a Checkpoint; model.h turns it into the
// canonical description. A Checkpoint owns (through TensorRef::keep_alive) the mappings its
// tensors point into. Immutable after construction; safe to share across threads.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/formats/tensor.h"

namespace prov::model {

enum class Format { kSafetensors, kGguf, kLlama2c };
const char* format_name(Format f);  // "safetensors", "gguf", "llama2c"

struct Checkpoint {
  Format format = Format::kSafetensors;
  std::string path;                // what the user named: a file or a directory
  std::vector<std::string> files;  // the files the tensors came from
  std::vector<TensorRef> tensors;  // in file order (shard by shard)
  // Format metadata as JSON: safetensors `__metadata__` (per file, merged), GGUF key/values
  // (typed values as JSON numbers/strings/arrays), llama2.c header fields.
  nlohmann::json metadata = nlohmann::json::object();
  // Format version (GGUF 2/3, llama2.c 0/1/2; 0 for safetensors).
  uint32_t version = 0;

  const TensorRef* find(const std::string& name) const;
  void build_index();  // (re)builds the name index; readers call it once tensors are filled

 private:
  std::map<std::string, size_t> index_;
};

}  // namespace prov::model
