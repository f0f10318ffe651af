// CompletionBackend (server.h) over the LibTorch runtime: what `prov serve` runs.
//
// Each request runs on its own KV cache, so requests are served concurrently. Scores and top-k
// lists come from the same path as the local runner's (final hidden state -> output head ->
// extract_signature), so a signature collected through the server equals the local one.
#pragma once

#include <string>

#include "model/runtime/runtime.h"
#include "model/tokenizers/tokenizer.h"
#include "probes/server.h"

namespace prov::probes {

class LocalBackend : public CompletionBackend {
 public:
  // `model` and `tokenizer` must outlive the backend.
  LocalBackend(const model::Transformer& model, const model::Tokenizer& tokenizer, std::string name,
               std::string chat_template);
  std::string model_name() const override { return name_; }
  const model::Tokenizer& tokenizer() const override { return tokenizer_; }
  int32_t context_length() const override;
  std::string chat_template() const override { return chat_template_; }
  Result<BackendResult> complete(const CompletionRequest& request) override;

 private:
  const model::Transformer& model_;
  const model::Tokenizer& tokenizer_;
  std::string name_;
  std::string chat_template_;
};

}  // namespace prov::probes
