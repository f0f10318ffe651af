#include "model/formats/synthetic.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "model/formats/safetensors.h"

namespace prov::model {

uint64_t GaussianStream::next_u64() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

double GaussianStream::next() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  // Uniforms in (0, 1]: 53 random bits.
  double u1 = (static_cast<double>(next_u64() >> 11) + 1.0) / 9007199254740992.0;
  double u2 = static_cast<double>(next_u64() >> 11) / 9007199254740992.0;
  double r = std::sqrt(-2.0 * std::log(u1));
  spare_ = r * std::sin(2.0 * M_PI * u2);
  has_spare_ = true;
  return r * std::cos(2.0 * M_PI * u2);
}

nlohmann::json synthetic_config_json(const SyntheticSpec& s) {
  const char* cls = "LlamaForCausalLM";
  if (s.arch == Arch::kMistral) cls = "MistralForCausalLM";
  if (s.arch == Arch::kQwen2) cls = "Qwen2ForCausalLM";
  if (s.arch == Arch::kQwen3) cls = "Qwen3ForCausalLM";
  const char* dtype = s.dtype == DType::kBF16  ? "bfloat16"
                      : s.dtype == DType::kF16 ? "float16"
                                               : "float32";
  nlohmann::json j = {
      {"architectures", {cls}},
      {"model_type", arch_name(s.arch)},
      {"vocab_size", s.vocab_size},
      {"hidden_size", s.hidden_size},
      {"intermediate_size", s.intermediate_size},
      {"num_hidden_layers", s.num_layers},
      {"num_attention_heads", s.num_heads},
      {"num_key_value_heads", s.num_kv_heads},
      {"head_dim", s.hidden_size / s.num_heads},
      {"max_position_embeddings", s.max_position_embeddings},
      {"rms_norm_eps", 1e-6},
      {"rope_theta", 10000.0},
      {"hidden_act", "silu"},
      {"tie_word_embeddings", s.tie_word_embeddings},
      {"bos_token_id", 1},
      {"eos_token_id", 2},
      {"torch_dtype", dtype},
  };
  return j;
}

namespace {

std::vector<uint8_t> random_bytes(GaussianStream* g, uint64_t n, double std, DType dtype) {
  const size_t es = dtype_info(dtype).block_bytes;
  std::vector<uint8_t> out(n * es);
  for (uint64_t i = 0; i < n; ++i) {
    float v = static_cast<float>(g->next() * std);
    if (dtype == DType::kF32) {
      std::memcpy(&out[4 * i], &v, 4);
    } else {
      uint16_t h = dtype == DType::kBF16 ? float_to_bf16(v) : float_to_fp16(v);
      std::memcpy(&out[2 * i], &h, 2);
    }
  }
  return out;
}

std::vector<uint8_t> ones(uint64_t n, DType dtype) {
  GaussianStream unused(0);
  std::vector<uint8_t> out(n * dtype_info(dtype).block_bytes);
  for (uint64_t i = 0; i < n; ++i) {
    if (dtype == DType::kF32) {
      float v = 1.0f;
      std::memcpy(&out[4 * i], &v, 4);
    } else {
      uint16_t h = dtype == DType::kBF16 ? float_to_bf16(1.0f) : float_to_fp16(1.0f);
      std::memcpy(&out[2 * i], &h, 2);
    }
  }
  return out;
}

}  // namespace

Status write_synthetic_model(const std::string& dir, const SyntheticSpec& s) {
  if (s.arch != Arch::kLlama && s.arch != Arch::kMistral && s.arch != Arch::kQwen2 &&
      s.arch != Arch::kQwen3) {
    return invalid_argument(
        std::string("synthetic models support llama, mistral, qwen2, qwen3; not ") +
        arch_name(s.arch));
  }
  if (s.dtype != DType::kF32 && s.dtype != DType::kF16 && s.dtype != DType::kBF16) {
    return invalid_argument("synthetic models are written in F32, F16 or BF16");
  }
  if (s.num_heads <= 0 || s.hidden_size % s.num_heads != 0 || s.num_kv_heads <= 0 ||
      s.num_heads % s.num_kv_heads != 0) {
    return invalid_argument(
        "synthetic model: heads must divide hidden_size and kv heads divide heads");
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return io_error(dir + ": cannot create: " + ec.message());

  const int64_t H = s.hidden_size, I = s.intermediate_size, hd = H / s.num_heads;
  const int64_t q = s.num_heads * hd, kv = s.num_kv_heads * hd;
  GaussianStream g(s.seed);
  std::vector<SafetensorsEntry> entries;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, bool norm) {
    uint64_t n = 1;
    for (int64_t d : shape) n *= static_cast<uint64_t>(d);
    entries.push_back(
        {name, s.dtype, shape, norm ? ones(n, s.dtype) : random_bytes(&g, n, s.std, s.dtype)});
  };
  add("model.embed_tokens.weight", {s.vocab_size, H}, false);
  for (int64_t l = 0; l < s.num_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    add(p + "input_layernorm.weight", {H}, true);
    add(p + "self_attn.q_proj.weight", {q, H}, false);
    add(p + "self_attn.k_proj.weight", {kv, H}, false);
    add(p + "self_attn.v_proj.weight", {kv, H}, false);
    if (s.arch == Arch::kQwen2) {
      add(p + "self_attn.q_proj.bias", {q}, false);
      add(p + "self_attn.k_proj.bias", {kv}, false);
      add(p + "self_attn.v_proj.bias", {kv}, false);
    }
    if (s.arch == Arch::kQwen3) {
      add(p + "self_attn.q_norm.weight", {hd}, true);
      add(p + "self_attn.k_norm.weight", {hd}, true);
    }
    add(p + "self_attn.o_proj.weight", {H, q}, false);
    add(p + "post_attention_layernorm.weight", {H}, true);
    add(p + "mlp.gate_proj.weight", {I, H}, false);
    add(p + "mlp.up_proj.weight", {I, H}, false);
    add(p + "mlp.down_proj.weight", {H, I}, false);
  }
  add("model.norm.weight", {H}, true);
  if (!s.tie_word_embeddings) add("lm_head.weight", {s.vocab_size, H}, false);

  {
    std::ofstream f(dir + "/config.json", std::ios::trunc);
    f << synthetic_config_json(s).dump(2) << "\n";
    if (!f) return io_error(dir + "/config.json: cannot write");
  }
  if (s.max_shard_bytes == 0)
    return write_safetensors(dir + "/model.safetensors", entries, {{"format", "pt"}});
  return write_safetensors_sharded(dir, entries, s.max_shard_bytes);
}

}  // namespace prov::model
