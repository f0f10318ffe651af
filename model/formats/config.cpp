#include "model/formats/config.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/json.h"

namespace prov::model {

namespace {
constexpr Arch kArchs[] = {Arch::kLlama, Arch::kMistral, Arch::kQwen2,
                           Arch::kQwen3, Arch::kMixtral, Arch::kGpt2};
}

const char* arch_name(Arch a) {
  switch (a) {
    case Arch::kLlama:
      return "llama";
    case Arch::kMistral:
      return "mistral";
    case Arch::kQwen2:
      return "qwen2";
    case Arch::kQwen3:
      return "qwen3";
    case Arch::kMixtral:
      return "mixtral";
    case Arch::kGpt2:
      return "gpt2";
  }
  return "unknown";
}

std::string supported_arch_list() {
  std::string s;
  for (Arch a : kArchs) {
    if (!s.empty()) s += ", ";
    s += arch_name(a);
  }
  return s;
}

std::optional<Arch> arch_from_name(const std::string& model_type) {
  for (Arch a : kArchs) {
    if (model_type == arch_name(a)) return a;
  }
  return std::nullopt;
}

Result<nlohmann::json> parse_json_bounded(const std::string& text, const std::string& what) {
  return parse_json(text, what);
}

Result<nlohmann::json> read_json_file(const std::string& path, uint64_t max_bytes) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return not_found(path + ": no such file");
  auto size = std::filesystem::file_size(path, ec);
  if (ec) return io_error(path + ": cannot stat: " + ec.message());
  if (size > max_bytes) {
    return corrupt(path + ": " + std::to_string(size) + " bytes is larger than the " +
                   std::to_string(max_bytes) + "-byte limit for a JSON file");
  }
  std::ifstream f(path, std::ios::binary);
  if (!f) return io_error(path + ": cannot open");
  std::stringstream ss;
  ss << f.rdbuf();
  return parse_json_bounded(ss.str(), path);
}

namespace {

// Typed field access with messages naming the field.
class Fields {
 public:
  Fields(const nlohmann::json& j, std::string what) : j_(j), what_(std::move(what)) {}

  Status int_field(const char* key, int64_t* out, bool required) const {
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) {
      if (required) return corrupt(what_ + ": missing \"" + key + "\"");
      return Status::ok();
    }
    if (!it->is_number_integer()) return corrupt(what_ + ": \"" + key + "\" is not an integer");
    *out = it->get<int64_t>();
    return Status::ok();
  }
  Status num_field(const nlohmann::json& j, const char* key, double* out) const {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return Status::ok();
    if (!it->is_number()) return corrupt(what_ + ": \"" + key + "\" is not a number");
    *out = it->get<double>();
    return Status::ok();
  }
  Status num_field(const char* key, double* out) const { return num_field(j_, key, out); }
  Status bool_field(const char* key, bool* out) const {
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return Status::ok();
    if (!it->is_boolean()) return corrupt(what_ + ": \"" + key + "\" is not a boolean");
    *out = it->get<bool>();
    return Status::ok();
  }
  Status str_field(const char* key, std::string* out) const {
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return Status::ok();
    if (!it->is_string()) return corrupt(what_ + ": \"" + key + "\" is not a string");
    *out = it->get<std::string>();
    return Status::ok();
  }

 private:
  const nlohmann::json& j_;
  std::string what_;
};

Status read_token_ids(const nlohmann::json& j, const std::string& what, ModelConfig* c) {
  auto it = j.find("bos_token_id");
  if (it != j.end() && it->is_number_integer()) c->bos_token_id = it->get<int64_t>();
  it = j.find("pad_token_id");
  if (it != j.end() && it->is_number_integer()) c->pad_token_id = it->get<int64_t>();
  it = j.find("eos_token_id");
  if (it != j.end() && !it->is_null()) {
    c->eos_token_ids.clear();
    if (it->is_number_integer()) {
      c->eos_token_ids.push_back(it->get<int64_t>());
    } else if (it->is_array()) {
      for (const auto& v : *it) {
        if (!v.is_number_integer()) return corrupt(what + ": \"eos_token_id\" holds a non-integer");
        c->eos_token_ids.push_back(v.get<int64_t>());
      }
    } else {
      return corrupt(what + ": \"eos_token_id\" is neither an integer nor a list");
    }
  }
  return Status::ok();
}

Status read_rope(const nlohmann::json& j, const Fields& f, const std::string& what,
                 ModelConfig* c) {
  // transformers 4: rope_theta + rope_scaling at top level.
  PROV_RETURN_IF_ERROR(f.num_field("rope_theta", &c->rope_theta));
  const nlohmann::json* scaling = nullptr;
  auto it = j.find("rope_scaling");
  if (it != j.end() && it->is_object()) scaling = &*it;
  // transformers 5: rope_parameters {rope_theta, rope_type, factor, ...}; it may also be a map
  // per layer type ({"full_attention": {...}}) — take the full-attention entry then.
  it = j.find("rope_parameters");
  if (it != j.end() && it->is_object()) {
    const nlohmann::json* rp = &*it;
    auto full = rp->find("full_attention");
    if (full != rp->end() && full->is_object()) rp = &*full;
    PROV_RETURN_IF_ERROR(f.num_field(*rp, "rope_theta", &c->rope_theta));
    scaling = rp;
  }
  if (scaling != nullptr) {
    RopeScaling& rs = c->rope_scaling;
    rs.raw = *scaling;
    for (const char* key : {"rope_type", "type"}) {
      auto t = scaling->find(key);
      if (t != scaling->end() && t->is_string()) {
        rs.type = t->get<std::string>();
        break;
      }
    }
    PROV_RETURN_IF_ERROR(f.num_field(*scaling, "factor", &rs.factor));
    PROV_RETURN_IF_ERROR(f.num_field(*scaling, "low_freq_factor", &rs.low_freq_factor));
    PROV_RETURN_IF_ERROR(f.num_field(*scaling, "high_freq_factor", &rs.high_freq_factor));
    double omp = 0;
    PROV_RETURN_IF_ERROR(f.num_field(*scaling, "original_max_position_embeddings", &omp));
    rs.original_max_position_embeddings = static_cast<int64_t>(omp);
  }
  if (!(c->rope_theta > 0)) return corrupt(what + ": rope_theta must be positive");
  return Status::ok();
}

}  // namespace

Result<ModelConfig> config_from_hf_json(const nlohmann::json& j, const nlohmann::json* generation,
                                        const std::string& what) {
  if (!j.is_object()) return corrupt(what + ": config is not a JSON object");
  ModelConfig c;
  Fields f(j, what);
  PROV_RETURN_IF_ERROR(f.str_field("model_type", &c.model_type));
  if (c.model_type.empty()) return corrupt(what + ": missing \"model_type\"");
  auto arch = arch_from_name(c.model_type);
  if (!arch) {
    return unsupported(what + ": model_type \"" + c.model_type +
                       "\" is not supported (supported: " + supported_arch_list() + ")");
  }
  c.arch = *arch;
  auto archs = j.find("architectures");
  if (archs != j.end() && archs->is_array()) {
    for (const auto& a : *archs)
      if (a.is_string()) c.architectures.push_back(a.get<std::string>());
  }
  if (c.arch == Arch::kGpt2) {
    PROV_RETURN_IF_ERROR(f.int_field("vocab_size", &c.vocab_size, true));
    PROV_RETURN_IF_ERROR(f.int_field("n_embd", &c.hidden_size, true));
    PROV_RETURN_IF_ERROR(f.int_field("n_layer", &c.num_layers, true));
    PROV_RETURN_IF_ERROR(f.int_field("n_head", &c.num_heads, true));
    PROV_RETURN_IF_ERROR(f.int_field("n_positions", &c.max_position_embeddings, true));
    c.intermediate_size = 4 * c.hidden_size;
    PROV_RETURN_IF_ERROR(f.int_field("n_inner", &c.intermediate_size, false));
    c.num_kv_heads = c.num_heads;
    c.norm_eps = 1e-5;
    PROV_RETURN_IF_ERROR(f.num_field("layer_norm_epsilon", &c.norm_eps));
    c.hidden_act = "gelu_new";
    PROV_RETURN_IF_ERROR(f.str_field("activation_function", &c.hidden_act));
    c.tie_word_embeddings = true;
    c.attention_bias = true;
    c.mlp_bias = true;
  } else {
    PROV_RETURN_IF_ERROR(f.int_field("vocab_size", &c.vocab_size, true));
    PROV_RETURN_IF_ERROR(f.int_field("hidden_size", &c.hidden_size, true));
    PROV_RETURN_IF_ERROR(f.int_field("intermediate_size", &c.intermediate_size, true));
    PROV_RETURN_IF_ERROR(f.int_field("num_hidden_layers", &c.num_layers, true));
    PROV_RETURN_IF_ERROR(f.int_field("num_attention_heads", &c.num_heads, true));
    c.num_kv_heads = c.num_heads;
    PROV_RETURN_IF_ERROR(f.int_field("num_key_value_heads", &c.num_kv_heads, false));
    PROV_RETURN_IF_ERROR(f.int_field("max_position_embeddings", &c.max_position_embeddings, false));
    PROV_RETURN_IF_ERROR(f.num_field("rms_norm_eps", &c.norm_eps));
    PROV_RETURN_IF_ERROR(f.str_field("hidden_act", &c.hidden_act));
    PROV_RETURN_IF_ERROR(read_rope(j, f, what, &c));
    c.attention_bias = c.arch == Arch::kQwen2;
    PROV_RETURN_IF_ERROR(f.bool_field("attention_bias", &c.attention_bias));
    PROV_RETURN_IF_ERROR(f.bool_field("mlp_bias", &c.mlp_bias));
    if (c.arch == Arch::kMixtral) {
      PROV_RETURN_IF_ERROR(f.int_field("num_local_experts", &c.num_experts, true));
      PROV_RETURN_IF_ERROR(f.int_field("num_experts_per_tok", &c.experts_per_token, true));
    }
    auto sw = j.find("sliding_window");
    bool use_sw = true;
    PROV_RETURN_IF_ERROR(f.bool_field("use_sliding_window", &use_sw));
    if (use_sw && sw != j.end() && sw->is_number_integer()) c.sliding_window = sw->get<int64_t>();
  }
  c.tie_word_embeddings = c.arch == Arch::kGpt2;
  PROV_RETURN_IF_ERROR(f.bool_field("tie_word_embeddings", &c.tie_word_embeddings));
  c.head_dim = c.num_heads > 0 ? c.hidden_size / c.num_heads : 0;
  PROV_RETURN_IF_ERROR(f.int_field("head_dim", &c.head_dim, false));
  for (const char* key : {"dtype", "torch_dtype"}) {
    auto it = j.find(key);
    if (it != j.end() && it->is_string()) {
      c.torch_dtype = it->get<std::string>();
      break;
    }
  }
  PROV_RETURN_IF_ERROR(read_token_ids(j, what, &c));
  if (generation != nullptr && generation->is_object()) {
    PROV_RETURN_IF_ERROR(read_token_ids(*generation, what + " (generation_config.json)", &c));
  }
  PROV_RETURN_IF_ERROR(c.validate().with_context(what));
  return c;
}

Status ModelConfig::validate() const {
  auto positive = [](int64_t v, const char* name) -> Status {
    if (v <= 0) return corrupt(std::string(name) + " must be positive, got " + std::to_string(v));
    if (v > (int64_t{1} << 40))
      return corrupt(std::string(name) + " is implausibly large: " + std::to_string(v));
    return Status::ok();
  };
  PROV_RETURN_IF_ERROR(positive(vocab_size, "vocab_size"));
  PROV_RETURN_IF_ERROR(positive(hidden_size, "hidden_size"));
  PROV_RETURN_IF_ERROR(positive(intermediate_size, "intermediate_size"));
  PROV_RETURN_IF_ERROR(positive(num_layers, "num_layers"));
  PROV_RETURN_IF_ERROR(positive(num_heads, "num_heads"));
  PROV_RETURN_IF_ERROR(positive(num_kv_heads, "num_kv_heads"));
  PROV_RETURN_IF_ERROR(positive(head_dim, "head_dim"));
  if (num_heads % num_kv_heads != 0) {
    return corrupt("num_heads (" + std::to_string(num_heads) +
                   ") is not a multiple of num_kv_heads (" + std::to_string(num_kv_heads) + ")");
  }
  if (arch != Arch::kGpt2 && head_dim % 2 != 0) {
    return corrupt("head_dim " + std::to_string(head_dim) + " is odd; RoPE needs an even head_dim");
  }
  if (arch == Arch::kMixtral) {
    PROV_RETURN_IF_ERROR(positive(num_experts, "num_experts"));
    if (experts_per_token <= 0 || experts_per_token > num_experts) {
      return corrupt("num_experts_per_tok must be in [1, num_experts]");
    }
  }
  return Status::ok();
}

Result<ModelConfig> read_hf_config(const std::string& dir) {
  const std::string cpath = dir + "/config.json";
  PROV_ASSIGN_OR_RETURN(nlohmann::json cfg, read_json_file(cpath));
  const std::string gpath = dir + "/generation_config.json";
  std::error_code ec;
  if (std::filesystem::exists(gpath, ec)) {
    PROV_ASSIGN_OR_RETURN(nlohmann::json gen, read_json_file(gpath));
    return config_from_hf_json(cfg, &gen, cpath);
  }
  return config_from_hf_json(cfg, nullptr, cpath);
}

}  // namespace prov::model
