#include "model/formats/checkpoint.h"

namespace prov::model {

const char* format_name(Format f) {
  switch (f) {
    case Format::kSafetensors:
      return "safetensors";
    case Format::kGguf:
      return "gguf";
    case Format::kLlama2c:
      return "llama2c";
  }
  return "unknown";
}

const TensorRef* Checkpoint::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors[it->second];
}

void Checkpoint::build_index() {
  index_.clear();
  for (size_t i = 0; i < tensors.size(); ++i) index_.emplace(tensors[i].name, i);
}

}  // namespace prov::model
