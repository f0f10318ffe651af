#include "model/formats/model.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <set>

#include "core/mapped_file.h"
#include "model/formats/gguf.h"
#include "model/formats/llama2c.h"
#include "model/formats/safetensors.h"

namespace fs = std::filesystem;

namespace prov::model {

const char* role_name(Role r) {
  switch (r) {
    case Role::kTokenEmbedding:
      return "embed";
    case Role::kPositionEmbedding:
      return "pos_embed";
    case Role::kAttnNorm:
      return "attn_norm";
    case Role::kAttnQ:
      return "attn_q";
    case Role::kAttnK:
      return "attn_k";
    case Role::kAttnV:
      return "attn_v";
    case Role::kAttnQKV:
      return "attn_qkv";
    case Role::kAttnO:
      return "attn_o";
    case Role::kQNorm:
      return "q_norm";
    case Role::kKNorm:
      return "k_norm";
    case Role::kMlpNorm:
      return "mlp_norm";
    case Role::kMlpGate:
      return "mlp_gate";
    case Role::kMlpUp:
      return "mlp_up";
    case Role::kMlpDown:
      return "mlp_down";
    case Role::kRouter:
      return "router";
    case Role::kFinalNorm:
      return "final_norm";
    case Role::kLmHead:
      return "lm_head";
  }
  return "unknown";
}

std::string TensorRole::to_string() const {
  std::string s;
  if (layer >= 0) s += "layers." + std::to_string(layer) + ".";
  if (expert >= 0) s += "experts." + std::to_string(expert) + ".";
  if (expert == kAllExperts) s += "experts.*.";
  s += role_name(role);
  s += bias ? ".bias" : ".weight";
  return s;
}

namespace {

bool starts_with(const std::string& s, const char* p) {
  return s.rfind(p, 0) == 0;
}

// Parses "<digits>." at the front of s; returns the number and strips it, or -1.
int take_index(std::string* s) {
  size_t i = 0;
  while (i < s->size() && i < 9 && (*s)[i] >= '0' && (*s)[i] <= '9') ++i;
  if (i == 0 || i >= s->size() || (*s)[i] != '.') return -1;
  int v = std::stoi(s->substr(0, i));
  s->erase(0, i + 1);
  return v;
}

// Splits "x.weight" / "x.bias"; returns false for other suffixes.
bool split_param(const std::string& s, std::string* stem, bool* bias) {
  auto ends = [&](const char* suf) {
    size_t n = std::strlen(suf);
    return s.size() > n && s.compare(s.size() - n, n, suf) == 0;
  };
  if (ends(".weight")) {
    *stem = s.substr(0, s.size() - 7);
    *bias = false;
    return true;
  }
  if (ends(".bias")) {
    *stem = s.substr(0, s.size() - 5);
    *bias = true;
    return true;
  }
  return false;
}

std::optional<Role> lookup(const std::string& stem,
                           std::initializer_list<std::pair<const char*, Role>> table) {
  for (const auto& [name, role] : table) {
    if (stem == name) return role;
  }
  return std::nullopt;
}

}  // namespace

std::optional<TensorRole> role_from_hf_name(const std::string& full) {
  std::string name = full;
  if (name == "lm_head.weight") return TensorRole{Role::kLmHead};
  for (const char* prefix : {"model.", "transformer."}) {
    if (starts_with(name, prefix)) {
      name.erase(0, std::strlen(prefix));
      break;
    }
  }
  std::string stem;
  bool bias = false;
  if (!split_param(name, &stem, &bias)) return std::nullopt;
  if (auto r = lookup(stem, {{"embed_tokens", Role::kTokenEmbedding},
                             {"wte", Role::kTokenEmbedding},
                             {"wpe", Role::kPositionEmbedding},
                             {"norm", Role::kFinalNorm},
                             {"ln_f", Role::kFinalNorm}})) {
    return TensorRole{*r, -1, -1, bias};
  }
  std::string rest = stem;
  if (starts_with(rest, "layers.")) {
    rest.erase(0, 7);
  } else if (starts_with(rest, "h.")) {
    rest.erase(0, 2);
  } else {
    return std::nullopt;
  }
  int layer = take_index(&rest);
  if (layer < 0) return std::nullopt;
  if (auto r = lookup(rest, {{"input_layernorm", Role::kAttnNorm},
                             {"post_attention_layernorm", Role::kMlpNorm},
                             {"self_attn.q_proj", Role::kAttnQ},
                             {"self_attn.k_proj", Role::kAttnK},
                             {"self_attn.v_proj", Role::kAttnV},
                             {"self_attn.o_proj", Role::kAttnO},
                             {"self_attn.q_norm", Role::kQNorm},
                             {"self_attn.k_norm", Role::kKNorm},
                             {"mlp.gate_proj", Role::kMlpGate},
                             {"mlp.up_proj", Role::kMlpUp},
                             {"mlp.down_proj", Role::kMlpDown},
                             {"block_sparse_moe.gate", Role::kRouter},
                             {"mlp.gate", Role::kRouter},
                             {"ln_1", Role::kAttnNorm},
                             {"ln_2", Role::kMlpNorm},
                             {"attn.c_attn", Role::kAttnQKV},
                             {"attn.c_proj", Role::kAttnO},
                             {"mlp.c_fc", Role::kMlpUp},
                             {"mlp.c_proj", Role::kMlpDown}})) {
    return TensorRole{*r, layer, -1, bias};
  }
  for (const char* prefix : {"block_sparse_moe.experts.", "mlp.experts."}) {
    if (!starts_with(rest, prefix)) continue;
    rest.erase(0, std::strlen(prefix));
    int expert = take_index(&rest);
    if (expert < 0) return std::nullopt;
    if (auto r = lookup(rest, {{"w1", Role::kMlpGate},
                               {"w2", Role::kMlpDown},
                               {"w3", Role::kMlpUp},
                               {"gate_proj", Role::kMlpGate},
                               {"up_proj", Role::kMlpUp},
                               {"down_proj", Role::kMlpDown}})) {
      return TensorRole{*r, layer, expert, bias};
    }
  }
  return std::nullopt;
}

std::optional<TensorRole> role_from_gguf_name(const std::string& name) {
  std::string stem;
  bool bias = false;
  if (!split_param(name, &stem, &bias)) return std::nullopt;
  if (auto r = lookup(stem, {{"token_embd", Role::kTokenEmbedding},
                             {"position_embd", Role::kPositionEmbedding},
                             {"output_norm", Role::kFinalNorm},
                             {"output", Role::kLmHead}})) {
    return TensorRole{*r, -1, -1, bias};
  }
  if (!starts_with(stem, "blk.")) return std::nullopt;
  std::string rest = stem.substr(4);
  int layer = take_index(&rest);
  if (layer < 0) return std::nullopt;
  if (auto r = lookup(rest, {{"attn_norm", Role::kAttnNorm},
                             {"attn_q", Role::kAttnQ},
                             {"attn_k", Role::kAttnK},
                             {"attn_v", Role::kAttnV},
                             {"attn_qkv", Role::kAttnQKV},
                             {"attn_output", Role::kAttnO},
                             {"attn_q_norm", Role::kQNorm},
                             {"attn_k_norm", Role::kKNorm},
                             {"ffn_norm", Role::kMlpNorm},
                             {"ffn_gate", Role::kMlpGate},
                             {"ffn_up", Role::kMlpUp},
                             {"ffn_down", Role::kMlpDown},
                             {"ffn_gate_inp", Role::kRouter}})) {
    return TensorRole{*r, layer, -1, bias};
  }
  if (auto r = lookup(rest, {{"ffn_gate_exps", Role::kMlpGate},
                             {"ffn_up_exps", Role::kMlpUp},
                             {"ffn_down_exps", Role::kMlpDown}})) {
    return TensorRole{*r, layer, TensorRole::kAllExperts, bias};
  }
  // Older GGUF MoE files: blk.N.ffn_gate.E.weight
  for (auto [prefix, role] :
       {std::pair{"ffn_gate.", Role::kMlpGate}, std::pair{"ffn_up.", Role::kMlpUp},
        std::pair{"ffn_down.", Role::kMlpDown}}) {
    if (!starts_with(rest, prefix)) continue;
    std::string e = rest.substr(std::strlen(prefix)) + ".";
    int expert = take_index(&e);
    if (expert >= 0 && e.empty()) return TensorRole{role, layer, expert, bias};
  }
  return std::nullopt;
}

const TensorRef* Model::find(const TensorRole& role) const {
  for (const auto& [r, i] : roles) {
    if (r == role) return &checkpoint.tensors[i];
  }
  return nullptr;
}

const TensorRef* Model::output_projection() const {
  if (const TensorRef* t = find(Role::kLmHead)) return t;
  return find(Role::kTokenEmbedding);
}

uint64_t Model::num_parameters() const {
  uint64_t n = 0;
  for (const auto& [r, i] : roles) n += checkpoint.tensors[i].numel();
  return n;
}

std::vector<std::string> Model::dtypes() const {
  std::set<std::string> s;
  for (const auto& t : checkpoint.tensors) s.insert(dtype_name(t.dtype));
  return {s.begin(), s.end()};
}

namespace {

// --- GGUF / llama2.c metadata to ModelConfig ------------------------------------------------

const nlohmann::json* meta(const Checkpoint& c, const std::string& key) {
  auto it = c.metadata.find(key);
  return it == c.metadata.end() ? nullptr : &*it;
}

Status meta_int(const Checkpoint& c, const std::string& key, int64_t* out, bool required) {
  const nlohmann::json* v = meta(c, key);
  if (v == nullptr) {
    if (required) return corrupt(c.path + ": GGUF metadata lacks \"" + key + "\"");
    return Status::ok();
  }
  if (v->is_number_integer() || v->is_number_unsigned()) {
    *out = v->get<int64_t>();
    return Status::ok();
  }
  if (v->is_array() && !v->empty() && v->front().is_number_integer()) {
    // Per-layer arrays (e.g. head_count_kv of hybrid models): take the first layer's value.
    *out = v->front().get<int64_t>();
    return Status::ok();
  }
  return corrupt(c.path + ": GGUF metadata \"" + key + "\" is not an integer");
}

Status meta_num(const Checkpoint& c, const std::string& key, double* out) {
  const nlohmann::json* v = meta(c, key);
  if (v == nullptr) return Status::ok();
  if (!v->is_number()) return corrupt(c.path + ": GGUF metadata \"" + key + "\" is not a number");
  *out = v->get<double>();
  return Status::ok();
}

}  // namespace

Result<ModelConfig> config_from_gguf(const Checkpoint& c) {
  const nlohmann::json* a = meta(c, "general.architecture");
  if (a == nullptr || !a->is_string()) {
    return corrupt(c.path + ": GGUF metadata lacks \"general.architecture\"");
  }
  const std::string arch = a->get<std::string>();
  ModelConfig cfg;
  cfg.model_type = arch;
  const std::string p = arch + ".";
  int64_t experts = 0;
  PROV_RETURN_IF_ERROR(meta_int(c, p + "expert_count", &experts, false));
  if (arch == "llama") {
    cfg.arch = experts > 0 ? Arch::kMixtral : Arch::kLlama;
  } else if (auto known = arch_from_name(arch)) {
    cfg.arch = *known;
  } else {
    return unsupported(c.path + ": GGUF architecture \"" + arch +
                       "\" is not supported (supported: " + supported_arch_list() + ")");
  }
  PROV_RETURN_IF_ERROR(meta_int(c, p + "embedding_length", &cfg.hidden_size, true));
  PROV_RETURN_IF_ERROR(meta_int(c, p + "block_count", &cfg.num_layers, true));
  PROV_RETURN_IF_ERROR(meta_int(c, p + "feed_forward_length", &cfg.intermediate_size, true));
  PROV_RETURN_IF_ERROR(meta_int(c, p + "attention.head_count", &cfg.num_heads, true));
  cfg.num_kv_heads = cfg.num_heads;
  PROV_RETURN_IF_ERROR(meta_int(c, p + "attention.head_count_kv", &cfg.num_kv_heads, false));
  PROV_RETURN_IF_ERROR(meta_int(c, p + "context_length", &cfg.max_position_embeddings, false));
  cfg.head_dim = cfg.num_heads > 0 ? cfg.hidden_size / cfg.num_heads : 0;
  PROV_RETURN_IF_ERROR(meta_int(c, p + "attention.key_length", &cfg.head_dim, false));
  PROV_RETURN_IF_ERROR(meta_num(c, p + "rope.freq_base", &cfg.rope_theta));
  PROV_RETURN_IF_ERROR(meta_num(c, p + "attention.layer_norm_rms_epsilon", &cfg.norm_eps));
  if (cfg.arch == Arch::kGpt2) {
    PROV_RETURN_IF_ERROR(meta_num(c, p + "attention.layer_norm_epsilon", &cfg.norm_eps));
    cfg.hidden_act = "gelu_new";
    cfg.attention_bias = cfg.mlp_bias = true;
  }
  cfg.num_experts = experts;
  PROV_RETURN_IF_ERROR(meta_int(c, p + "expert_used_count", &cfg.experts_per_token, false));
  if (const TensorRef* emb = c.find("token_embd.weight"); emb != nullptr && !emb->shape.empty()) {
    cfg.vocab_size = emb->shape[0];
  } else {
    PROV_RETURN_IF_ERROR(meta_int(c, p + "vocab_size", &cfg.vocab_size, false));
  }
  cfg.tie_word_embeddings = c.find("output.weight") == nullptr;
  cfg.attention_bias = cfg.attention_bias || c.find("blk.0.attn_q.bias") != nullptr;
  int64_t id = 0;
  if (meta(c, "tokenizer.ggml.bos_token_id") != nullptr) {
    PROV_RETURN_IF_ERROR(meta_int(c, "tokenizer.ggml.bos_token_id", &id, true));
    cfg.bos_token_id = id;
  }
  if (meta(c, "tokenizer.ggml.eos_token_id") != nullptr) {
    PROV_RETURN_IF_ERROR(meta_int(c, "tokenizer.ggml.eos_token_id", &id, true));
    cfg.eos_token_ids = {id};
  }
  PROV_RETURN_IF_ERROR(cfg.validate().with_context(c.path));
  return cfg;
}

Result<ModelConfig> config_from_llama2c(const Checkpoint& c) {
  ModelConfig cfg;
  cfg.arch = Arch::kLlama;
  cfg.model_type = "llama";
  auto get = [&](const char* key, int64_t* out) -> Status {
    const nlohmann::json* v = meta(c, key);
    if (v == nullptr || !v->is_number_integer()) {
      return internal_error(c.path + ": llama2.c header field " + key + " missing");
    }
    *out = v->get<int64_t>();
    return Status::ok();
  };
  PROV_RETURN_IF_ERROR(get("dim", &cfg.hidden_size));
  PROV_RETURN_IF_ERROR(get("hidden_dim", &cfg.intermediate_size));
  PROV_RETURN_IF_ERROR(get("n_layers", &cfg.num_layers));
  PROV_RETURN_IF_ERROR(get("n_heads", &cfg.num_heads));
  PROV_RETURN_IF_ERROR(get("n_kv_heads", &cfg.num_kv_heads));
  PROV_RETURN_IF_ERROR(get("vocab_size", &cfg.vocab_size));
  PROV_RETURN_IF_ERROR(get("seq_len", &cfg.max_position_embeddings));
  if (cfg.vocab_size < 0) cfg.vocab_size = -cfg.vocab_size;
  cfg.head_dim = cfg.num_heads > 0 ? cfg.hidden_size / cfg.num_heads : 0;
  cfg.rope_theta = 10000.0;
  cfg.norm_eps = 1e-5;
  cfg.tie_word_embeddings = c.find("lm_head.weight") == nullptr;
  // llama2.c's tokenizer: 1 = BOS, 2 = EOS.
  cfg.bos_token_id = 1;
  cfg.eos_token_ids = {2};
  PROV_RETURN_IF_ERROR(cfg.validate().with_context(c.path));
  return cfg;
}

std::vector<int64_t> role_shape(const ModelConfig& c, const TensorRole& r) {
  const int64_t H = c.hidden_size, I = c.intermediate_size, hd = c.head_dim;
  const int64_t q = c.num_heads * hd, kv = c.num_kv_heads * hd;
  std::vector<int64_t> w;  // weight shape; bias = first dim
  switch (r.role) {
    case Role::kTokenEmbedding:
      w = {c.vocab_size, H};
      break;
    case Role::kLmHead:
      w = {c.vocab_size, H};
      break;
    case Role::kPositionEmbedding:
      w = {c.max_position_embeddings, H};
      break;
    case Role::kAttnNorm:
    case Role::kMlpNorm:
    case Role::kFinalNorm:
      return {H};
    case Role::kQNorm:
    case Role::kKNorm:
      return {hd};
    case Role::kAttnQ:
      w = {q, H};
      break;
    case Role::kAttnK:
    case Role::kAttnV:
      w = {kv, H};
      break;
    case Role::kAttnQKV:
      w = {q + 2 * kv, H};
      break;
    case Role::kAttnO:
      w = {H, q};
      break;
    case Role::kMlpGate:
    case Role::kMlpUp:
      w = {I, H};
      break;
    case Role::kMlpDown:
      w = {H, I};
      break;
    case Role::kRouter:
      w = {c.num_experts, H};
      break;
  }
  if (r.bias) return {w[0]};
  if (r.expert == TensorRole::kAllExperts) w.insert(w.begin(), c.num_experts);
  return w;
}

namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// GPT-2 stores its Conv1D weights as [in, out]; present them as [out, in].
void canonicalise_gpt2(Checkpoint* ckpt, const std::vector<std::pair<TensorRole, size_t>>& roles) {
  for (const auto& [r, i] : roles) {
    if (r.bias) continue;
    if (r.role == Role::kAttnQKV || r.role == Role::kAttnO || r.role == Role::kMlpUp ||
        r.role == Role::kMlpDown) {
      TensorRef& t = ckpt->tensors[i];
      if (t.shape.size() == 2) {
        std::swap(t.shape[0], t.shape[1]);
        t.transposed = !t.transposed;
      }
    }
  }
}

Status map_roles(Model* m, bool gguf) {
  for (size_t i = 0; i < m->checkpoint.tensors.size(); ++i) {
    const std::string& name = m->checkpoint.tensors[i].name;
    auto role = gguf ? role_from_gguf_name(name) : role_from_hf_name(name);
    if (role) {
      m->roles.emplace_back(*role, i);
    } else {
      m->unmapped.push_back(name);
    }
  }
  if (m->config.arch == Arch::kGpt2 && m->checkpoint.format == Format::kSafetensors) {
    canonicalise_gpt2(&m->checkpoint, m->roles);
  }
  return Status::ok();
}

Status check_model(const Model& m) {
  const ModelConfig& c = m.config;
  if (m.find(Role::kTokenEmbedding) == nullptr) {
    return corrupt(m.checkpoint.path + ": no token embedding tensor found");
  }
  // Every layer the config declares must hold tensors: a config that declares more layers than the
  // file has would make every later stage allocate for layers that are not there.
  int64_t layers_seen = 0;
  for (const auto& [r, i] : m.roles) layers_seen = std::max<int64_t>(layers_seen, r.layer + 1);
  if (c.num_layers > layers_seen) {
    return corrupt(m.checkpoint.path + ": the config declares " + std::to_string(c.num_layers) +
                   " layers but the checkpoint holds tensors for " + std::to_string(layers_seen));
  }
  for (const auto& [r, i] : m.roles) {
    const TensorRef& t = m.checkpoint.tensors[i];
    if (r.layer >= c.num_layers) {
      return corrupt(t.file + ": tensor " + t.name + " belongs to layer " +
                     std::to_string(r.layer) + " but the model has " +
                     std::to_string(c.num_layers) + " layers");
    }
    std::vector<int64_t> want = role_shape(c, r);
    if (t.shape != want) {
      return corrupt(t.file + ": tensor " + t.name + " (" + r.to_string() + ") has shape " +
                     shape_str(t.shape) + ", expected " + shape_str(want) + " from the config");
    }
  }
  return Status::ok();
}

void find_tokenizer(Model* m, const std::string& dir) {
  std::error_code ec;
  if (m->checkpoint.format == Format::kGguf) {
    auto it = m->checkpoint.metadata.find("tokenizer.ggml.model");
    if (it != m->checkpoint.metadata.end() && it->is_string()) {
      m->tokenizer_kind = "gguf:" + it->get<std::string>();
      m->tokenizer_path = m->checkpoint.path;
    }
    return;
  }
  if (fs::is_regular_file(dir + "/tokenizer.json", ec)) {
    m->tokenizer_kind = "tokenizer.json";
    m->tokenizer_path = dir + "/tokenizer.json";
  } else if (fs::is_regular_file(dir + "/vocab.bpe", ec) &&
             fs::is_regular_file(dir + "/encoder.json", ec)) {
    m->tokenizer_kind = "vocab.bpe+encoder.json";
    m->tokenizer_path = dir;
  } else if (m->checkpoint.format == Format::kLlama2c) {
    for (const std::string& name :
         {"tok" + std::to_string(m->config.vocab_size) + ".bin", std::string("tokenizer.bin")}) {
      if (fs::is_regular_file(dir + "/" + name, ec)) {
        m->tokenizer_kind = "llama2c:" + name;
        m->tokenizer_path = dir + "/" + name;
        break;
      }
    }
  }
}

bool has_suffix(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

}  // namespace

Result<Model> open_model(const std::string& path, const OpenOptions& options) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return not_found(path + ": no such file or directory");
  Model m;
  std::string dir;
  bool gguf = false;
  if (fs::is_directory(path, ec)) {
    dir = path;
    PROV_ASSIGN_OR_RETURN(m.checkpoint, read_safetensors(path));
    PROV_ASSIGN_OR_RETURN(m.config, read_hf_config(path));
  } else if (has_suffix(path, ".safetensors") || has_suffix(path, ".safetensors.index.json")) {
    dir = fs::path(path).parent_path().string();
    if (dir.empty()) dir = ".";
    PROV_ASSIGN_OR_RETURN(m.checkpoint, read_safetensors(path));
    if (!fs::exists(dir + "/config.json", ec)) {
      return not_found(path +
                       ": a safetensors file needs a config.json beside it to describe the model");
    }
    PROV_ASSIGN_OR_RETURN(m.config, read_hf_config(dir));
  } else {
    dir = fs::path(path).parent_path().string();
    if (dir.empty()) dir = ".";
    PROV_ASSIGN_OR_RETURN(auto file, MappedFile::open(path));
    if (file->size() >= 4 && std::memcmp(file->data(), "GGUF", 4) == 0) {
      gguf = true;
      PROV_ASSIGN_OR_RETURN(m.checkpoint, read_gguf(path));
      PROV_ASSIGN_OR_RETURN(m.config, config_from_gguf(m.checkpoint));
    } else if (looks_like_llama2c(file->data(), file->size())) {
      PROV_ASSIGN_OR_RETURN(m.checkpoint, read_llama2c(path));
      PROV_ASSIGN_OR_RETURN(m.config, config_from_llama2c(m.checkpoint));
    } else {
      return invalid_argument(path +
                              ": not a recognised checkpoint (expected a Hugging Face directory, "
                              "a .safetensors file, a GGUF file or a llama2.c .bin file)");
    }
  }
  PROV_RETURN_IF_ERROR(map_roles(&m, gguf));
  if (options.check_shapes) PROV_RETURN_IF_ERROR(check_model(m));
  find_tokenizer(&m, dir);
  return m;
}

}  // namespace prov::model
