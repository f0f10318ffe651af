// Finding the tokenizer that belongs to a model (or a tokenizer path given directly).
#pragma once

#include <memory>
#include <string>

#include "core/status.h"
#include "model/tokenizers/tokenizer.h"

namespace prov::model {

// `explicit_path` (from --tokenizer) wins. Otherwise `path` is tried as a tokenizer itself
// (tokenizer.json, a GPT-2 directory, a .gguf, a llama2.c tok*.bin), then as a model whose
// tokenizer is found beside it (Model::tokenizer_path). kNotFound says where it looked.
Result<std::unique_ptr<Tokenizer>> open_tokenizer_for(const std::string& path,
                                                      const std::string& explicit_path);

}  // namespace prov::model
