// Internal to the Hugging Face tokenizer (tokenizer_hf.cpp, hf_pipeline.cpp): the text
// helpers and the pipeline stages of tokenizer.json — normalizers, pre-tokenizers, decoders and
// post-processors — that the BPE model and the added-token matcher are wrapped in. Not a public
// header.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace prov::model::hf {

using nlohmann::json;

// Largest token id accepted from a file (bounds what a hostile file can make us allocate).
constexpr int64_t kMaxTokenId = (int64_t{1} << 24) - 1;

// UTF-8 and Unicode classes (hf_pipeline.cpp).
uint32_t decode_cp(const std::string& s, size_t i, size_t* len);
void append_utf8(std::string* out, uint32_t cp);
std::string to_valid_utf8(const std::string& in, bool* changed);
bool is_valid_utf8(const std::string& s);
bool is_whitespace(uint32_t c);
bool is_word_char(uint32_t c);
size_t prev_cp_start(const std::string& s, size_t end);

struct Pattern;  // a literal or a compiled regex (hf_pipeline.cpp)

class Json {
 public:
  static Status string_field(const json& j, const char* key, const std::string& where,
                             std::string* out, bool required) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) {
      if (required) return corrupt(where + ": missing \"" + key + "\"");
      return Status::ok();
    }
    if (!it->is_string()) return corrupt(where + ": \"" + key + "\" is not a string");
    *out = it->get<std::string>();
    return Status::ok();
  }
  static Status opt_string_field(const json& j, const char* key, const std::string& where,
                                 std::optional<std::string>* out) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return Status::ok();
    if (!it->is_string()) return corrupt(where + ": \"" + key + "\" is not a string");
    *out = it->get<std::string>();
    return Status::ok();
  }
  static Status bool_field(const json& j, const char* key, const std::string& where, bool* out) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return Status::ok();
    if (!it->is_boolean()) return corrupt(where + ": \"" + key + "\" is not a boolean");
    *out = it->get<bool>();
    return Status::ok();
  }
  static Status int_field(const json& j, const char* key, const std::string& where, int64_t* out) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return Status::ok();
    if (!it->is_number_integer()) return corrupt(where + ": \"" + key + "\" is not an integer");
    *out = it->get<int64_t>();
    return Status::ok();
  }
  static Status type_of(const json& j, const std::string& where, std::string* type) {
    if (!j.is_object()) return corrupt(where + ": expected an object");
    return string_field(j, "type", where, type, true);
  }
  // {"String": s} or {"Regex": r}
  static Status pattern(const json& j, const std::string& where, Pattern* out);
  // A single-character string field (replacement, content).
  static Status char_field(const json& j, const char* key, const std::string& where,
                           std::string* out, bool required);
};

struct Piece {
  std::string text;
  bool at_start = false;  // begins at offset 0 of the original text
};

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual Status normalize(std::string* s) const = 0;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Replaces `pieces` by their pre-tokens.
  virtual Status apply(std::vector<Piece>* pieces) const = 0;
};

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual Status decode_chain(std::vector<std::string>* tokens) const = 0;
};

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  virtual void process(std::vector<int32_t>* ids) const = 0;
  // The special token placed before the sequence, if any (used to guess BOS).
  virtual std::optional<int32_t> leading_special() const { return std::nullopt; }
  // Every id this processor can add.
  virtual void collect_ids(std::vector<int32_t>* ids) const = 0;
};

Result<std::unique_ptr<Normalizer>> parse_normalizer(const json& j, const std::string& where,
                                                     int depth);
Result<std::unique_ptr<PreTokenizer>> parse_pre_tokenizer(const json& j, const std::string& where,
                                                          int depth);
Result<std::unique_ptr<Decoder>> parse_decoder(const json& j, const std::string& where, int depth);
Result<std::unique_ptr<PostProcessor>> parse_post_processor(const json& j, const std::string& where,
                                                            int depth);
Status id_in_range(int64_t id, const std::string& where);

}  // namespace prov::model::hf
