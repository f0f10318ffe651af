// Tokenizer dispatch: picking a family from a path or a GGUF file.

#include "model/tokenizers/tokenizer.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "model/formats/checkpoint.h"
#include "model/formats/gguf.h"
#include "model/formats/model.h"

namespace prov::model {

namespace fs = std::filesystem;

Tokenizer::~Tokenizer() = default;

Result<std::unique_ptr<Tokenizer>> from_gguf_tokenizer(const GgufTokenizer& tokenizer,
                                                       bool add_space_prefix,
                                                       const std::string& what) {
  try {
    if (tokenizer.model == "llama") {
      return tokenizer_internal::make_gguf_spm(tokenizer, add_space_prefix, what);
    }
    if (tokenizer.model == "gpt2") return tokenizer_internal::make_gguf_bpe(tokenizer, what);
  } catch (const std::exception& e) {
    return corrupt(what + ": " + e.what());
  }
  return unsupported(what + ": tokenizer.ggml.model \"" + tokenizer.model +
                     "\" is not supported (supported: llama, gpt2)");
}

Result<std::unique_ptr<Tokenizer>> from_gguf(const GgufFile& file) {
  PROV_ASSIGN_OR_RETURN(GgufTokenizer tok, gguf_tokenizer(file));
  bool add_space_prefix = true;
  if (const GgufValue* v = file.get("tokenizer.ggml.add_space_prefix")) {
    if (auto b = v->as_bool()) add_space_prefix = *b;
  }
  return from_gguf_tokenizer(tok, add_space_prefix, "GGUF tokenizer");
}

Result<std::unique_ptr<Tokenizer>> from_gguf(const Checkpoint& checkpoint) {
  PROV_ASSIGN_OR_RETURN(GgufTokenizer tok, gguf_tokenizer(checkpoint));
  bool add_space_prefix = true;
  auto it = checkpoint.metadata.find("tokenizer.ggml.add_space_prefix");
  if (it != checkpoint.metadata.end() && it->is_boolean()) add_space_prefix = it->get<bool>();
  return from_gguf_tokenizer(tok, add_space_prefix, checkpoint.path);
}

namespace {

bool starts_with_gguf_magic(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return false;
  char magic[4] = {0, 0, 0, 0};
  size_t n = std::fread(magic, 1, 4, f);
  std::fclose(f);
  return n == 4 && magic[0] == 'G' && magic[1] == 'G' && magic[2] == 'U' && magic[3] == 'F';
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

Result<std::unique_ptr<Tokenizer>> load_gguf(const std::string& path) {
  PROV_ASSIGN_OR_RETURN(GgufFile file, read_gguf_file(path));
  auto t = from_gguf(file);
  if (!t.is_ok()) return t.status().with_context(path);
  return t;
}

}  // namespace

Result<std::unique_ptr<Tokenizer>> load_tokenizer(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    const std::string dir = path;
    if (fs::is_regular_file(dir + "/tokenizer.json", ec)) {
      return from_hf_json(dir + "/tokenizer.json");
    }
    if (fs::is_regular_file(dir + "/encoder.json", ec) &&
        fs::is_regular_file(dir + "/vocab.bpe", ec)) {
      return from_gpt2_files(dir + "/encoder.json", dir + "/vocab.bpe");
    }
    if (fs::is_regular_file(dir + "/tokenizer.bin", ec))
      return from_llama2c(dir + "/tokenizer.bin");
    std::vector<std::string> toks;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      const std::string name = e.path().filename().string();
      if (name.compare(0, 3, "tok") == 0 && ends_with(name, ".bin") && e.is_regular_file(ec)) {
        toks.push_back(e.path().string());
      }
    }
    std::sort(toks.begin(), toks.end());
    if (!toks.empty()) return from_llama2c(toks.front());
    return not_found(dir +
                     ": no tokenizer found (looked for tokenizer.json, encoder.json + vocab.bpe, "
                     "tokenizer.bin, tok*.bin)");
  }
  if (!fs::exists(path, ec)) return not_found(path + ": no such file or directory");
  if (ends_with(path, ".json")) return from_hf_json(path);
  if (ends_with(path, ".gguf") || starts_with_gguf_magic(path)) return load_gguf(path);
  return from_llama2c(path);
}

Result<std::unique_ptr<Tokenizer>> load_model_tokenizer(const Model& m) {
  if (m.tokenizer_path.empty() || m.tokenizer_kind == "none") {
    return not_found(m.checkpoint.path +
                     ": no tokenizer found beside the model (looked for tokenizer.json, "
                     "encoder.json + vocab.bpe, tok<vocab>.bin, tokenizer.bin)");
  }
  if (m.checkpoint.format == Format::kLlama2c) {
    return from_llama2c(m.tokenizer_path, static_cast<int32_t>(m.config.vocab_size));
  }
  return load_tokenizer(m.tokenizer_path);
}

}  // namespace prov::model
