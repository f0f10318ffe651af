// The tokenizer a GGUF file carries in its metadata (tokenizer.ggml.*: model, tokens, scores,
// token types, merges, special ids), read into a GgufTokenizer (gguf.h), from the file or from a
// checkpoint's metadata JSON.
#include "model/formats/gguf.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>

#include "core/byte_reader.h"
#include "core/mapped_file.h"

namespace prov::model {

namespace {

Status tok_error(const std::string& what, const std::string& key, const std::string& problem) {
  return corrupt(what + ": tokenizer metadata " + key + " " + problem);
}

Result<const GgufArray*> tok_array(const GgufFile& f, const std::string& what,
                                   const std::string& key, std::initializer_list<GgufType> types) {
  const GgufValue* v = f.get(key);
  if (v == nullptr) return static_cast<const GgufArray*>(nullptr);
  const GgufArray* a = v->as_array();
  if (a == nullptr)
    return tok_error(what, key, std::string("is a ") + gguf_type_name(v->type) + ", not an array");
  if (a->size() == 0) return a;  // an empty array's element type does not matter
  for (GgufType t : types) {
    if (a->elem_type == t) return a;
  }
  return tok_error(what, key,
                   std::string("is an array of ") + gguf_type_name(a->elem_type) + " (unexpected)");
}

Result<GgufTokenizer> tokenizer_from(const GgufFile& f, const std::string& what) {
  GgufTokenizer tok;
  const GgufValue* model = f.get("tokenizer.ggml.model");
  if (model == nullptr)
    return not_found(what + ": no tokenizer in the GGUF metadata (tokenizer.ggml.model)");
  if (model->as_string() == nullptr)
    return tok_error(what, "tokenizer.ggml.model", "is not a string");
  tok.model = *model->as_string();

  PROV_ASSIGN_OR_RETURN(const GgufArray* tokens,
                        tok_array(f, what, "tokenizer.ggml.tokens", {GgufType::kString}));
  if (tokens == nullptr) {
    if (tok.model != "none" && tok.model != "no_vocab") {
      return tok_error(what, "tokenizer.ggml.tokens", "is missing");
    }
  } else {
    tok.tokens = tokens->s;
  }
  const uint64_t n = tok.tokens.size();

  PROV_ASSIGN_OR_RETURN(
      const GgufArray* scores,
      tok_array(f, what, "tokenizer.ggml.scores", {GgufType::kFloat32, GgufType::kFloat64}));
  if (scores != nullptr) {
    if (scores->f.size() != n) {
      return tok_error(what, "tokenizer.ggml.scores",
                       "has " + std::to_string(scores->f.size()) + " entries for " +
                           std::to_string(n) + " tokens");
    }
    tok.scores.assign(scores->f.begin(), scores->f.end());
  }
  PROV_ASSIGN_OR_RETURN(
      const GgufArray* types,
      tok_array(f, what, "tokenizer.ggml.token_type",
                {GgufType::kInt8, GgufType::kInt16, GgufType::kInt32, GgufType::kInt64,
                 GgufType::kUint8, GgufType::kUint16, GgufType::kUint32, GgufType::kUint64}));
  if (types != nullptr) {
    if (types->size() != n) {
      return tok_error(
          what, "tokenizer.ggml.token_type",
          "has " + std::to_string(types->size()) + " entries for " + std::to_string(n) + " tokens");
    }
    tok.token_types.reserve(n);
    for (uint64_t k = 0; k < n; ++k) {
      std::optional<int64_t> v = types->int_at(k);
      if (!v || *v < std::numeric_limits<int32_t>::min() ||
          *v > std::numeric_limits<int32_t>::max()) {
        return tok_error(what, "tokenizer.ggml.token_type",
                         "entry " + std::to_string(k) + " is out of range");
      }
      tok.token_types.push_back(static_cast<int32_t>(*v));
    }
  }
  PROV_ASSIGN_OR_RETURN(const GgufArray* merges,
                        tok_array(f, what, "tokenizer.ggml.merges", {GgufType::kString}));
  if (merges != nullptr) tok.merges = merges->s;

  struct IdKey {
    const char* key;
    std::optional<int64_t>* out;
  };
  for (const IdKey& k : {IdKey{"tokenizer.ggml.bos_token_id", &tok.bos_id},
                         IdKey{"tokenizer.ggml.eos_token_id", &tok.eos_id},
                         IdKey{"tokenizer.ggml.unknown_token_id", &tok.unk_id},
                         IdKey{"tokenizer.ggml.padding_token_id", &tok.pad_id}}) {
    const GgufValue* v = f.get(k.key);
    if (v == nullptr) continue;
    std::optional<int64_t> id = v->as_int();
    if (!id) {
      if (v->as_uint()) {  // an integer too large for int64: certainly outside the vocabulary
        tok.warnings.push_back(std::string(k.key) + " is outside the vocabulary; ignored");
        continue;
      }
      return tok_error(what, k.key,
                       std::string("is a ") + gguf_type_name(v->type) + ", not an integer");
    }
    if (*id < 0 || static_cast<uint64_t>(*id) >= n) {
      tok.warnings.push_back(std::string(k.key) + " = " + std::to_string(*id) +
                             " is outside the vocabulary of " + std::to_string(n) +
                             " tokens; ignored");
      continue;
    }
    *k.out = *id;
  }

  tok.add_bos = tok.model == "llama" || tok.model == "bert";
  tok.add_eos = tok.model == "bert" || tok.model == "t5";
  for (auto [key, out] :
       {std::pair<const char*, bool*>{"tokenizer.ggml.add_bos_token", &tok.add_bos},
        std::pair<const char*, bool*>{"tokenizer.ggml.add_eos_token", &tok.add_eos}}) {
    const GgufValue* v = f.get(key);
    if (v == nullptr) continue;
    if (!v->as_bool())
      return tok_error(what, key, std::string("is a ") + gguf_type_name(v->type) + ", not a bool");
    *out = *v->as_bool();
  }
  if (const GgufValue* v = f.get("tokenizer.ggml.pre")) {
    if (v->as_string() == nullptr) return tok_error(what, "tokenizer.ggml.pre", "is not a string");
    tok.pre = *v->as_string();
  }
  return tok;
}

// JSON (as produced by gguf_metadata_json) back to a typed value.
Status json_to_value(const nlohmann::json& j, int depth, GgufValue* out);

Status json_to_array(const nlohmann::json& j, int depth, GgufArray* a) {
  if (depth > kGgufMaxArrayDepth) return corrupt("metadata arrays nested too deeply");
  bool all_str = true, all_bool = true, all_int = true, all_num = true, all_arr = true;
  for (const auto& e : j) {
    all_str &= e.is_string();
    all_bool &= e.is_boolean();
    all_int &= e.is_number_integer();
    all_num &= e.is_number() || e.is_null();  // NaN scores dump as null
    all_arr &= e.is_array();
  }
  if (all_str) {
    a->elem_type = GgufType::kString;
    for (const auto& e : j) a->s.push_back(e.get<std::string>());
  } else if (all_bool) {
    a->elem_type = GgufType::kBool;
    for (const auto& e : j) a->b.push_back(e.get<bool>() ? 1 : 0);
  } else if (all_int) {
    bool all_unsigned = true;
    for (const auto& e : j) all_unsigned &= e.is_number_unsigned();
    if (all_unsigned) {
      a->elem_type = GgufType::kUint64;
      for (const auto& e : j) a->u.push_back(e.get<uint64_t>());
    } else {
      a->elem_type = GgufType::kInt64;
      for (const auto& e : j) {
        if (e.is_number_unsigned() &&
            e.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
          return corrupt("metadata array mixes large unsigned and negative integers");
        }
        a->i.push_back(e.get<int64_t>());
      }
    }
  } else if (all_num) {
    a->elem_type = GgufType::kFloat64;
    for (const auto& e : j) {
      a->f.push_back(e.is_null() ? std::numeric_limits<double>::quiet_NaN() : e.get<double>());
    }
  } else if (all_arr) {
    a->elem_type = GgufType::kArray;
    for (const auto& e : j) {
      a->a.emplace_back();
      PROV_RETURN_IF_ERROR(json_to_array(e, depth + 1, &a->a.back()));
    }
  } else {
    return corrupt("metadata array mixes element types");
  }
  return Status::ok();
}

Status json_to_value(const nlohmann::json& j, int depth, GgufValue* out) {
  if (j.is_string()) {
    *out = GgufValue::str(j.get<std::string>());
  } else if (j.is_boolean()) {
    *out = GgufValue::boolean(j.get<bool>());
  } else if (j.is_number_unsigned()) {
    *out = GgufValue::u64(j.get<uint64_t>());
  } else if (j.is_number_integer()) {
    *out = GgufValue::i64(j.get<int64_t>());
  } else if (j.is_number_float()) {
    *out = GgufValue::f64(j.get<double>());
  } else if (j.is_array()) {
    GgufArray a;
    PROV_RETURN_IF_ERROR(json_to_array(j, depth + 1, &a));
    *out = GgufValue::array(std::move(a));
  } else {
    return corrupt("metadata value of unexpected JSON type");
  }
  return Status::ok();
}

}  // namespace

Result<GgufTokenizer> gguf_tokenizer(const GgufFile& file) {
  return tokenizer_from(file, "GGUF");
}

Result<GgufTokenizer> gguf_tokenizer(const Checkpoint& ckpt) {
  if (ckpt.format != Format::kGguf) {
    return invalid_argument(ckpt.path + ": not a GGUF checkpoint; it has no GGUF tokenizer");
  }
  if (!ckpt.metadata.is_object()) return corrupt(ckpt.path + ": metadata is not a JSON object");
  GgufFile f;
  try {
    for (const auto& [key, value] : ckpt.metadata.items()) {
      if (key.compare(0, 10, "tokenizer.") != 0) continue;
      GgufValue v;
      Status s = json_to_value(value, 0, &v);
      if (!s.is_ok()) return s.with_context(ckpt.path + ": " + key);
      f.kv.emplace_back(key, std::move(v));
    }
  } catch (const nlohmann::json::exception& e) {
    return corrupt(ckpt.path + ": tokenizer metadata: " + e.what());
  }
  f.build_index();
  return tokenizer_from(f, ckpt.path);
}

}  // namespace prov::model
