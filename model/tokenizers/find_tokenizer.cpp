#include "model/tokenizers/find_tokenizer.h"

#include "model/formats/model.h"

namespace prov::model {

Result<std::unique_ptr<Tokenizer>> open_tokenizer_for(const std::string& path,
                                                      const std::string& explicit_path) {
  if (!explicit_path.empty()) return load_tokenizer(explicit_path);
  auto direct = load_tokenizer(path);
  if (direct.is_ok()) return direct;
  // A llama2.c checkpoint is not a tokenizer, but its tokenizer file lies beside it.
  OpenOptions o;
  o.check_shapes = false;
  auto m = open_model(path, o);
  if (!m.is_ok()) return direct.status();
  auto tok = load_model_tokenizer(*m);
  if (!tok.is_ok() && tok.status().code() == StatusCode::kNotFound) {
    return not_found(tok.status().message() + "; pass --tokenizer");
  }
  return tok;
}

}  // namespace prov::model
