#include "model/runtime/runtime.h"

#include "model/runtime/fused_ops.h"

#include <cstdlib>
#include <mutex>
#include <thread>

#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <utility>

#include <torch/torch.h>
#include <torch/version.h>

#include "model/runtime/torch_view.h"

#if TORCH_VERSION_MAJOR >= 2
#define PROV_HAVE_SDPA 1
#else
#define PROV_HAVE_SDPA 0
#endif
// scaled_dot_product_attention takes grouped key/value heads directly (enable_gqa) from 2.5 on.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 5)
#define PROV_HAVE_SDPA_GQA 1
#else
#define PROV_HAVE_SDPA_GQA 0
#endif

namespace prov::model {

namespace {

constexpr double kPi = 3.14159265358979323846;

enum class Activation { kSilu, kGeluErf, kGeluTanh, kRelu };
enum class NormKind { kRms, kLayer };

std::optional<Activation> activation_from_name(const std::string& s) {
  if (s == "silu" || s == "swish") return Activation::kSilu;
  if (s == "gelu") return Activation::kGeluErf;
  if (s == "gelu_new" || s == "gelu_pytorch_tanh") return Activation::kGeluTanh;
  if (s == "relu") return Activation::kRelu;
  return std::nullopt;
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

const char* dtype_label(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat32:
      return "float32";
    case torch::kBFloat16:
      return "bfloat16";
    case torch::kFloat16:
      return "float16";
    default:
      return "unsupported";
  }
}

// The usual Hugging Face tensor name of a role (for messages).
std::string hf_name(const ModelConfig& c, const TensorRole& r) {
  const bool gpt2 = c.arch == Arch::kGpt2;
  const std::string suffix = r.bias ? ".bias" : ".weight";
  const std::string layer = gpt2 ? "transformer.h." + std::to_string(r.layer) + "."
                                 : "model.layers." + std::to_string(r.layer) + ".";
  std::string expert;
  if (r.expert >= 0) expert = "block_sparse_moe.experts." + std::to_string(r.expert) + ".";
  switch (r.role) {
    case Role::kTokenEmbedding:
      return gpt2 ? "transformer.wte.weight" : "model.embed_tokens.weight";
    case Role::kPositionEmbedding:
      return "transformer.wpe.weight";
    case Role::kFinalNorm:
      return (gpt2 ? "transformer.ln_f" : "model.norm") + suffix;
    case Role::kLmHead:
      return "lm_head.weight";
    case Role::kAttnNorm:
      return layer + (gpt2 ? "ln_1" : "input_layernorm") + suffix;
    case Role::kMlpNorm:
      return layer + (gpt2 ? "ln_2" : "post_attention_layernorm") + suffix;
    case Role::kAttnQ:
      return layer + "self_attn.q_proj" + suffix;
    case Role::kAttnK:
      return layer + "self_attn.k_proj" + suffix;
    case Role::kAttnV:
      return layer + "self_attn.v_proj" + suffix;
    case Role::kAttnQKV:
      return layer + "attn.c_attn" + suffix;
    case Role::kAttnO:
      return layer + (gpt2 ? "attn.c_proj" : "self_attn.o_proj") + suffix;
    case Role::kQNorm:
      return layer + "self_attn.q_norm" + suffix;
    case Role::kKNorm:
      return layer + "self_attn.k_norm" + suffix;
    case Role::kMlpGate:
      return layer + (r.expert >= 0 ? expert + "w1" : "mlp.gate_proj") + suffix;
    case Role::kMlpUp:
      if (gpt2) return layer + "mlp.c_fc" + suffix;
      return layer + (r.expert >= 0 ? expert + "w3" : "mlp.up_proj") + suffix;
    case Role::kMlpDown:
      if (gpt2) return layer + "mlp.c_proj" + suffix;
      return layer + (r.expert >= 0 ? expert + "w2" : "mlp.down_proj") + suffix;
    case Role::kRouter:
      return layer + "block_sparse_moe.gate" + suffix;
  }
  return r.to_string();
}

struct Expert {
  torch::Tensor gate_up;  // [2I, H]: gate rows then up rows
  torch::Tensor down;     // [H, I]
};

struct Layer {
  torch::Tensor attn_norm_w, attn_norm_b;
  torch::Tensor qkv_w, qkv_b;  // fused [q + 2 kv, H]; bias undefined when absent
  torch::Tensor o_w, o_b;
  torch::Tensor q_norm, k_norm;  // Qwen3
  torch::Tensor mlp_norm_w, mlp_norm_b;
  torch::Tensor gate_up_w, gate_up_b;  // gated MLP: [2I, H]
  torch::Tensor up_w, up_b;            // GPT-2 MLP (c_fc)
  torch::Tensor down_w, down_b;
  torch::Tensor router;  // MoE [E, H]
  std::vector<Expert> experts;
};

torch::Tensor activate(const torch::Tensor& x, Activation a) {
  switch (a) {
    case Activation::kSilu:
      return torch::silu(x);
    case Activation::kGeluErf:
      return torch::gelu(x);
    case Activation::kGeluTanh: {
      // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), as the reference writes it.
      const double k = std::sqrt(2.0 / kPi);
      return 0.5 * x * (1.0 + torch::tanh(k * (x + 0.044715 * torch::pow(x, 3.0))));
    }
    case Activation::kRelu:
      return torch::relu(x);
  }
  return x;
}

torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  return b.defined() ? torch::linear(x, w, b) : torch::linear(x, w);
}

torch::Tensor rotate_half(const torch::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

}  // namespace

bool runtime_has_sdpa() {
  return PROV_HAVE_SDPA != 0;
}

std::optional<torch::ScalarType> compute_dtype_from_name(const std::string& n) {
  if (n == "float32" || n == "fp32" || n == "f32") return torch::kFloat32;
  if (n == "bfloat16" || n == "bf16") return torch::kBFloat16;
  if (n == "float16" || n == "fp16" || n == "f16" || n == "half") return torch::kFloat16;
  return std::nullopt;
}

Status check_runtime_support(const ModelConfig& c) {
  switch (c.arch) {
    case Arch::kLlama:
    case Arch::kMistral:
    case Arch::kQwen2:
    case Arch::kQwen3:
    case Arch::kMixtral:
    case Arch::kGpt2:
      break;
    default:
      return unsupported("the runtime does not support architecture #" +
                         std::to_string(static_cast<int>(c.arch)) +
                         " (supported: " + supported_arch_list() + ")");
  }
  if (!activation_from_name(c.hidden_act)) {
    return unsupported("activation \"" + c.hidden_act +
                       "\" is not supported (supported: silu, gelu, gelu_new, "
                       "gelu_pytorch_tanh, relu)");
  }
  if (c.arch != Arch::kGpt2) {
    const RopeScaling& rs = c.rope_scaling;
    if (rs.type == "linear") {
      if (!(rs.factor > 0)) return unsupported("linear RoPE scaling needs a positive factor");
    } else if (rs.type == "llama3") {
      if (!(rs.factor > 0) || rs.original_max_position_embeddings <= 0 ||
          !(rs.high_freq_factor > rs.low_freq_factor) || !(rs.low_freq_factor > 0)) {
        return unsupported(
            "llama3 RoPE scaling needs factor > 0, original_max_position_embeddings > 0 and "
            "high_freq_factor > low_freq_factor > 0");
      }
    } else if (rs.type != "default") {
      return unsupported("RoPE scaling type \"" + rs.type +
                         "\" is not supported (supported: default, linear, llama3)");
    }
  }
  if (c.sliding_window && (c.arch == Arch::kQwen2 || c.arch == Arch::kQwen3)) {
    return unsupported(std::string(arch_name(c.arch)) +
                       " with use_sliding_window=true (sliding window on some layers only) is "
                       "not supported");
  }
  if (c.sliding_window && *c.sliding_window <= 0) {
    return unsupported("sliding_window must be positive, got " + std::to_string(*c.sliding_window));
  }
  if (c.arch == Arch::kMixtral &&
      (c.num_experts <= 0 || c.experts_per_token <= 0 || c.experts_per_token > c.num_experts)) {
    return unsupported("mixtral needs 1 <= num_experts_per_tok <= num_local_experts");
  }
  if (c.arch == Arch::kGpt2 && c.max_position_embeddings <= 0) {
    return unsupported("gpt2 needs n_positions > 0 (learned position embeddings)");
  }
  return Status::ok();
}

void KVCache::clear() {
  k_.clear();
  v_.clear();
  mask_ = torch::Tensor();
  length_ = capacity_ = batch_ = 0;
}

struct Transformer::Impl {
  ModelConfig config;
  RuntimeOptions options;
  Activation act = Activation::kSilu;
  NormKind norm = NormKind::kRms;
  bool sdpa = false;
  torch::Tensor embed;      // [V, H]
  torch::Tensor pos_embed;  // GPT-2 [P, H]
  torch::Tensor final_norm_w, final_norm_b;
  torch::Tensor lm_head;   // [V, H] (may alias embed)
  torch::Tensor inv_freq;  // [head_dim / 2] fp32 on the device
  std::vector<Layer> layers;
  int64_t params = 0;

  // hidden_only: return the final-normed hidden states in the compute dtype instead of logits.
  Result<torch::Tensor> forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                KVCache* cache, bool last_only, bool hidden_only = false) const;
  torch::Tensor norm_apply(const torch::Tensor& x, const torch::Tensor& w,
                           const torch::Tensor& b) const {
    if (norm == NormKind::kLayer) {
      return torch::layer_norm(x, {x.size(-1)}, w, b, config.norm_eps);
    }
    return rms_norm(x, w, config.norm_eps);
  }
  // The residual update h + pending (skipped when pending is undefined) and the normalisation
  // of the result; one fused pass for RMSNorm on CUDA. Returns {h, normed}.
  std::pair<torch::Tensor, torch::Tensor> add_norm(const torch::Tensor& h,
                                                   const torch::Tensor& pending,
                                                   const torch::Tensor& w,
                                                   const torch::Tensor& b) const {
    if (!pending.defined()) return {h, norm_apply(h, w, b)};
    if (norm == NormKind::kRms) return add_rms_norm(h, pending, w, config.norm_eps);
    torch::Tensor sum = h + pending;
    return {sum, norm_apply(sum, w, b)};
  }
  // allowed undefined: plain causal attention (no padding, no cache, no sliding window).
  torch::Tensor attention(const torch::Tensor& q, torch::Tensor k, torch::Tensor v,
                          const torch::Tensor& allowed) const;
  torch::Tensor mlp(const Layer& l, const torch::Tensor& x) const;
};

Transformer::Transformer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Transformer::~Transformer() = default;
const ModelConfig& Transformer::config() const {
  return impl_->config;
}
const RuntimeOptions& Transformer::options() const {
  return impl_->options;
}
bool Transformer::uses_sdpa() const {
  return impl_->sdpa;
}
int64_t Transformer::num_parameters() const {
  return impl_->params;
}

namespace {

// Inverse RoPE frequencies in fp32, with the configured scaling applied, as the reference
// computes them: 1 / theta^(2i / d).
torch::Tensor rope_inv_freq(const ModelConfig& c, const torch::Device& device) {
  const int64_t d = c.head_dim;
  torch::Tensor exps =
      torch::arange(0, d, 2, torch::kInt64).to(torch::kFloat32) / static_cast<double>(d);
  torch::Tensor inv = 1.0 / torch::pow(c.rope_theta, exps);
  const RopeScaling& rs = c.rope_scaling;
  if (rs.type == "linear") {
    inv = inv / rs.factor;
  } else if (rs.type == "llama3") {
    const double old_ctx = static_cast<double>(rs.original_max_position_embeddings);
    const double low_wavelen = old_ctx / rs.low_freq_factor;
    const double high_wavelen = old_ctx / rs.high_freq_factor;
    torch::Tensor wavelen = 2 * kPi / inv;
    torch::Tensor scaled = torch::where(wavelen > low_wavelen, inv / rs.factor, inv);
    torch::Tensor smooth =
        (old_ctx / wavelen - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor);
    torch::Tensor smoothed = (1 - smooth) * scaled / rs.factor + smooth * scaled;
    torch::Tensor medium = torch::logical_not(wavelen < high_wavelen)
                               .logical_and(torch::logical_not(wavelen > low_wavelen));
    inv = torch::where(medium, smoothed, scaled);
  }
  return inv.to(device);
}

class Loader {
 public:
  Loader(const Model& m, const RuntimeOptions& o) : m_(m), o_(o) {}

  // The tensor of `role` in the compute dtype on the device; kNotFound / kCorrupt naming it.
  Result<torch::Tensor> get(Role role, int layer = -1, bool bias = false, int expert = -1) {
    TensorRole r{role, layer, expert, bias};
    const std::vector<int64_t> want = role_shape(m_.config, r);
    const TensorRef* t = m_.find(r);
    if (t == nullptr && expert >= 0) {
      // Stacked experts ([experts, rows, cols], GGUF): take one slice.
      TensorRole all = r;
      all.expert = TensorRole::kAllExperts;
      if (const TensorRef* s = m_.find(all)) {
        const std::vector<int64_t> stacked = role_shape(m_.config, all);
        if (s->shape != stacked) return bad_shape(*s, all, stacked);
        auto it = stacked_.find(s);
        if (it == stacked_.end()) {
          PROV_ASSIGN_OR_RETURN(torch::Tensor full, to_torch(*s, o_.dtype, o_.device));
          it = stacked_.emplace(s, full).first;
        }
        return it->second.select(0, expert).contiguous();
      }
    }
    if (t == nullptr) {
      return not_found(m_.checkpoint.path + ": missing tensor " + r.to_string() + " (" +
                       hf_name(m_.config, r) + "), expected shape " + shape_str(want));
    }
    if (t->shape != want) return bad_shape(*t, r, want);
    return to_torch(*t, o_.dtype, o_.device);
  }
  // An optional tensor: undefined when absent.
  Result<torch::Tensor> maybe(Role role, int layer, bool bias) {
    if (m_.find(role, layer, bias) == nullptr) return torch::Tensor();
    return get(role, layer, bias);
  }
  void release_stacked() { stacked_.clear(); }

 private:
  Status bad_shape(const TensorRef& t, const TensorRole& r, const std::vector<int64_t>& want) {
    return corrupt(t.file + ": tensor " + t.name + " (" + r.to_string() + ") has shape " +
                   shape_str(t.shape) + ", expected " + shape_str(want));
  }
  const Model& m_;
  const RuntimeOptions& o_;
  std::map<const TensorRef*, torch::Tensor> stacked_;
};

// LibTorch builds differ in which dtypes each device can multiply (1.13 has no fp16 GEMM on CPU).
Status probe_dtype(const RuntimeOptions& o) {
  try {
    auto opts = torch::TensorOptions().dtype(o.dtype).device(o.device);
    torch::Tensor a = torch::ones({4, 8}, opts);
    torch::Tensor w = torch::ones({3, 8}, opts);
    torch::Tensor y = torch::linear(a, w);
    torch::Tensor s = torch::matmul(a.view({1, 1, 4, 8}), a.view({1, 1, 4, 8}).transpose(-2, -1));
    (void)torch::softmax(s.to(torch::kFloat32), -1).to(o.dtype);
    (void)torch::silu(y);
    (void)torch::layer_norm(a, {8}, torch::ones({8}, opts), torch::zeros({8}, opts), 1e-5);
    (void)torch::embedding(
        w, torch::zeros({2}, torch::TensorOptions().dtype(torch::kInt64).device(o.device)));
    (void)y.to(torch::kCPU);
  } catch (const c10::Error& e) {
    return unsupported(std::string("compute dtype ") + dtype_label(o.dtype) + " on " +
                       o.device.str() + " is not supported by this LibTorch (" + TORCH_VERSION +
                       "): " + e.what_without_backtrace() + "; use another dtype or device");
  }
  return Status::ok();
}

}  // namespace

int configure_cpu_threads() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (std::getenv("OMP_NUM_THREADS") != nullptr) return;  // the user chose
    const std::string config = at::show_config();
    if (config.find("BLAS_INFO=mkl") == std::string::npos) {
      // A system BLAS (Debian's LibTorch: BLAS_INFO=generic, served by OpenBLAS) runs every GEMM
      // on its own threads, one per core. LibTorch's OpenMP workers on top of it oversubscribe
      // the cores: on 2 vCPUs a 100M-parameter forward ran at 121 tok/s with 2 LibTorch threads
      // and 264 tok/s with 1. Keep LibTorch at one thread and let the BLAS use the cores.
      torch::set_num_threads(1);
    } else {
      // MKL takes LibTorch's thread count: use every logical CPU.
      unsigned n = std::thread::hardware_concurrency();
      if (n > 0 && static_cast<int>(n) > torch::get_num_threads()) {
        torch::set_num_threads(static_cast<int>(n));
      }
    }
  });
  return torch::get_num_threads();
}

Result<std::unique_ptr<Transformer>> Transformer::load(const Model& model,
                                                       const RuntimeOptions& options) {
  const ModelConfig& c = model.config;
  configure_cpu_threads();
  PROV_RETURN_IF_ERROR(check_runtime_support(c));
  if (options.dtype != torch::kFloat32 && options.dtype != torch::kBFloat16 &&
      options.dtype != torch::kFloat16) {
    return unsupported(std::string("compute dtype ") + c10::toString(options.dtype) +
                       " is not supported (use float32, bfloat16 or float16)");
  }
  try {
    if (options.device.is_cuda() && !torch::cuda::is_available()) {
      return unsupported("CUDA was asked for but LibTorch sees no CUDA device");
    }
    PROV_RETURN_IF_ERROR(probe_dtype(options));
    torch::NoGradGuard no_grad;
    auto impl = std::make_unique<Impl>();
    impl->config = c;
    impl->options = options;
    impl->act = *activation_from_name(c.hidden_act);
    const bool gpt2 = c.arch == Arch::kGpt2;
    impl->norm = gpt2 ? NormKind::kLayer : NormKind::kRms;
    impl->sdpa = PROV_HAVE_SDPA && options.use_sdpa;
    Loader ld(model, options);
    auto count = [&](const torch::Tensor& t) {
      if (t.defined()) impl->params += t.numel();
    };

    PROV_ASSIGN_OR_RETURN(impl->embed, ld.get(Role::kTokenEmbedding));
    count(impl->embed);
    if (gpt2) {
      PROV_ASSIGN_OR_RETURN(impl->pos_embed, ld.get(Role::kPositionEmbedding));
      count(impl->pos_embed);
    }
    PROV_ASSIGN_OR_RETURN(impl->final_norm_w, ld.get(Role::kFinalNorm));
    count(impl->final_norm_w);
    if (gpt2) {
      PROV_ASSIGN_OR_RETURN(impl->final_norm_b, ld.get(Role::kFinalNorm, -1, true));
      count(impl->final_norm_b);
    }
    if (c.tie_word_embeddings) {
      // The reference ties the head to the embedding, whatever lm_head.weight a file may hold.
      impl->lm_head = impl->embed;
    } else {
      PROV_ASSIGN_OR_RETURN(impl->lm_head, ld.get(Role::kLmHead));
      count(impl->lm_head);
    }

    // Which biases the reference model creates (it ignores any others a file may hold).
    const bool qkv_bias = gpt2 || c.attention_bias;
    const bool o_bias =
        gpt2 || (c.attention_bias && (c.arch == Arch::kLlama || c.arch == Arch::kQwen3));
    const bool mlp_bias = gpt2 || (c.mlp_bias && c.arch == Arch::kLlama);

    impl->layers.resize(static_cast<size_t>(c.num_layers));
    for (int i = 0; i < static_cast<int>(c.num_layers); ++i) {
      Layer& l = impl->layers[static_cast<size_t>(i)];
      PROV_ASSIGN_OR_RETURN(l.attn_norm_w, ld.get(Role::kAttnNorm, i));
      PROV_ASSIGN_OR_RETURN(l.mlp_norm_w, ld.get(Role::kMlpNorm, i));
      if (gpt2) {
        PROV_ASSIGN_OR_RETURN(l.attn_norm_b, ld.get(Role::kAttnNorm, i, true));
        PROV_ASSIGN_OR_RETURN(l.mlp_norm_b, ld.get(Role::kMlpNorm, i, true));
      }
      // Attention projections, fused as [q; k; v].
      if (model.find(Role::kAttnQKV, i) != nullptr ||
          (gpt2 && model.find(Role::kAttnQ, i) == nullptr)) {
        PROV_ASSIGN_OR_RETURN(l.qkv_w, ld.get(Role::kAttnQKV, i));
        if (qkv_bias) {
          PROV_ASSIGN_OR_RETURN(l.qkv_b, ld.get(Role::kAttnQKV, i, true));
        }
      } else {
        PROV_ASSIGN_OR_RETURN(torch::Tensor q, ld.get(Role::kAttnQ, i));
        PROV_ASSIGN_OR_RETURN(torch::Tensor k, ld.get(Role::kAttnK, i));
        PROV_ASSIGN_OR_RETURN(torch::Tensor v, ld.get(Role::kAttnV, i));
        l.qkv_w = torch::cat({q, k, v}, 0);
        if (qkv_bias) {
          PROV_ASSIGN_OR_RETURN(torch::Tensor qb, ld.get(Role::kAttnQ, i, true));
          PROV_ASSIGN_OR_RETURN(torch::Tensor kb, ld.get(Role::kAttnK, i, true));
          PROV_ASSIGN_OR_RETURN(torch::Tensor vb, ld.get(Role::kAttnV, i, true));
          l.qkv_b = torch::cat({qb, kb, vb}, 0);
        }
      }
      PROV_ASSIGN_OR_RETURN(l.o_w, ld.get(Role::kAttnO, i));
      if (o_bias) {
        if (gpt2) {
          PROV_ASSIGN_OR_RETURN(l.o_b, ld.get(Role::kAttnO, i, true));
        } else {
          PROV_ASSIGN_OR_RETURN(l.o_b, ld.maybe(Role::kAttnO, i, true));
        }
      }
      if (c.arch == Arch::kQwen3) {
        PROV_ASSIGN_OR_RETURN(l.q_norm, ld.get(Role::kQNorm, i));
        PROV_ASSIGN_OR_RETURN(l.k_norm, ld.get(Role::kKNorm, i));
      }
      // Feed-forward.
      if (gpt2) {
        PROV_ASSIGN_OR_RETURN(l.up_w, ld.get(Role::kMlpUp, i));
        PROV_ASSIGN_OR_RETURN(l.up_b, ld.get(Role::kMlpUp, i, true));
        PROV_ASSIGN_OR_RETURN(l.down_w, ld.get(Role::kMlpDown, i));
        PROV_ASSIGN_OR_RETURN(l.down_b, ld.get(Role::kMlpDown, i, true));
      } else if (c.arch == Arch::kMixtral) {
        PROV_ASSIGN_OR_RETURN(l.router, ld.get(Role::kRouter, i));
        for (int e = 0; e < static_cast<int>(c.num_experts); ++e) {
          Expert ex;
          PROV_ASSIGN_OR_RETURN(torch::Tensor g, ld.get(Role::kMlpGate, i, false, e));
          PROV_ASSIGN_OR_RETURN(torch::Tensor u, ld.get(Role::kMlpUp, i, false, e));
          PROV_ASSIGN_OR_RETURN(ex.down, ld.get(Role::kMlpDown, i, false, e));
          ex.gate_up = torch::cat({g, u}, 0);
          l.experts.push_back(std::move(ex));
        }
        ld.release_stacked();
      } else {
        PROV_ASSIGN_OR_RETURN(torch::Tensor g, ld.get(Role::kMlpGate, i));
        PROV_ASSIGN_OR_RETURN(torch::Tensor u, ld.get(Role::kMlpUp, i));
        PROV_ASSIGN_OR_RETURN(l.down_w, ld.get(Role::kMlpDown, i));
        l.gate_up_w = torch::cat({g, u}, 0);
        if (mlp_bias) {
          PROV_ASSIGN_OR_RETURN(torch::Tensor gb, ld.get(Role::kMlpGate, i, true));
          PROV_ASSIGN_OR_RETURN(torch::Tensor ub, ld.get(Role::kMlpUp, i, true));
          PROV_ASSIGN_OR_RETURN(l.down_b, ld.get(Role::kMlpDown, i, true));
          l.gate_up_b = torch::cat({gb, ub}, 0);
        }
      }
      for (const torch::Tensor* t :
           {&l.attn_norm_w, &l.attn_norm_b, &l.qkv_w, &l.qkv_b, &l.o_w, &l.o_b, &l.q_norm,
            &l.k_norm, &l.mlp_norm_w, &l.mlp_norm_b, &l.gate_up_w, &l.gate_up_b, &l.up_w, &l.up_b,
            &l.down_w, &l.down_b, &l.router}) {
        count(*t);
      }
      for (const Expert& e : l.experts) {
        count(e.gate_up);
        count(e.down);
      }
    }
    if (!gpt2) impl->inv_freq = rope_inv_freq(c, options.device);
    auto tf = std::unique_ptr<Transformer>(new Transformer(std::move(impl)));
    if (options.trainable) {
      for (torch::Tensor& t : tf->parameters()) t.requires_grad_(true);
    }
    return tf;
  } catch (const c10::Error& e) {
    return internal_error(model.checkpoint.path + ": LibTorch failed while loading the weights: " +
                          e.what_without_backtrace());
  } catch (const std::exception& e) {
    return internal_error(model.checkpoint.path + ": loading the weights failed: " + e.what());
  }
}

Result<torch::Tensor> Transformer::forward(const torch::Tensor& input_ids,
                                           const torch::Tensor& attention_mask, KVCache* cache,
                                           bool last_position_only) const {
  try {
    torch::NoGradGuard no_grad;
    return impl_->forward(input_ids, attention_mask, cache, last_position_only);
  } catch (const c10::Error& e) {
    return internal_error(std::string("LibTorch failed in the forward pass: ") +
                          e.what_without_backtrace());
  } catch (const std::exception& e) {
    return internal_error(std::string("forward pass failed: ") + e.what());
  }
}

Result<torch::Tensor> Transformer::forward_train(const torch::Tensor& input_ids) const {
  try {
    return impl_->forward(input_ids, {}, nullptr, false, false);
  } catch (const c10::Error& e) {
    return internal_error(std::string("LibTorch failed in the training forward pass: ") +
                          e.what_without_backtrace());
  } catch (const std::exception& e) {
    return internal_error(std::string("training forward pass failed: ") + e.what());
  }
}

std::vector<torch::Tensor> Transformer::parameters() const {
  std::vector<torch::Tensor> out;
  auto add = [&](const torch::Tensor& t) {
    if (!t.defined()) return;
    for (const torch::Tensor& o : out) {
      if (o.unsafeGetTensorImpl() == t.unsafeGetTensorImpl()) return;
    }
    out.push_back(t);
  };
  const Impl& m = *impl_;
  add(m.embed);
  add(m.pos_embed);
  for (const Layer& l : m.layers) {
    for (const torch::Tensor* t :
         {&l.attn_norm_w, &l.attn_norm_b, &l.qkv_w, &l.qkv_b, &l.o_w, &l.o_b, &l.q_norm, &l.k_norm,
          &l.mlp_norm_w, &l.mlp_norm_b, &l.gate_up_w, &l.gate_up_b, &l.up_w, &l.up_b, &l.down_w,
          &l.down_b, &l.router}) {
      add(*t);
    }
    for (const Expert& e : l.experts) {
      add(e.gate_up);
      add(e.down);
    }
  }
  add(m.final_norm_w);
  add(m.final_norm_b);
  add(m.lm_head);
  return out;
}

Result<std::vector<std::pair<std::string, torch::Tensor>>> Transformer::export_hf_weights(
    torch::ScalarType dtype) const {
  const Impl& m = *impl_;
  const ModelConfig& c = m.config;
  if (c.arch != Arch::kLlama && c.arch != Arch::kMistral && c.arch != Arch::kQwen2 &&
      c.arch != Arch::kQwen3) {
    return unsupported("exporting weights is implemented for llama, mistral, qwen2 and qwen3");
  }
  std::vector<std::pair<std::string, torch::Tensor>> out;
  auto put = [&](const std::string& name, const torch::Tensor& t) {
    if (t.defined()) out.emplace_back(name, t.detach().to(torch::kCPU, dtype).contiguous());
  };
  const int64_t qd = c.num_heads * c.head_dim, kvd = c.num_kv_heads * c.head_dim;
  const int64_t I = c.intermediate_size;
  put("model.embed_tokens.weight", m.embed);
  for (size_t i = 0; i < m.layers.size(); ++i) {
    const Layer& l = m.layers[i];
    const std::string p = "model.layers." + std::to_string(i) + ".";
    put(p + "input_layernorm.weight", l.attn_norm_w);
    put(p + "self_attn.q_proj.weight", l.qkv_w.narrow(0, 0, qd));
    put(p + "self_attn.k_proj.weight", l.qkv_w.narrow(0, qd, kvd));
    put(p + "self_attn.v_proj.weight", l.qkv_w.narrow(0, qd + kvd, kvd));
    if (l.qkv_b.defined()) {
      put(p + "self_attn.q_proj.bias", l.qkv_b.narrow(0, 0, qd));
      put(p + "self_attn.k_proj.bias", l.qkv_b.narrow(0, qd, kvd));
      put(p + "self_attn.v_proj.bias", l.qkv_b.narrow(0, qd + kvd, kvd));
    }
    put(p + "self_attn.o_proj.weight", l.o_w);
    put(p + "self_attn.o_proj.bias", l.o_b);
    put(p + "self_attn.q_norm.weight", l.q_norm);
    put(p + "self_attn.k_norm.weight", l.k_norm);
    put(p + "post_attention_layernorm.weight", l.mlp_norm_w);
    put(p + "mlp.gate_proj.weight", l.gate_up_w.narrow(0, 0, I));
    put(p + "mlp.up_proj.weight", l.gate_up_w.narrow(0, I, I));
    put(p + "mlp.down_proj.weight", l.down_w);
    if (l.gate_up_b.defined()) {
      put(p + "mlp.gate_proj.bias", l.gate_up_b.narrow(0, 0, I));
      put(p + "mlp.up_proj.bias", l.gate_up_b.narrow(0, I, I));
      put(p + "mlp.down_proj.bias", l.down_b);
    }
  }
  put("model.norm.weight", m.final_norm_w);
  if (!c.tie_word_embeddings) put("lm_head.weight", m.lm_head);
  return out;
}

Result<torch::Tensor> Transformer::forward_hidden(const torch::Tensor& input_ids,
                                                  const torch::Tensor& attention_mask,
                                                  KVCache* cache) const {
  try {
    torch::NoGradGuard no_grad;
    return impl_->forward(input_ids, attention_mask, cache, false, /*hidden_only=*/true);
  } catch (const c10::Error& e) {
    return internal_error(std::string("LibTorch failed in the forward pass: ") +
                          e.what_without_backtrace());
  } catch (const std::exception& e) {
    return internal_error(std::string("forward pass failed: ") + e.what());
  }
}

Result<torch::Tensor> Transformer::logits_from_hidden(const torch::Tensor& hidden) const {
  const int64_t H = impl_->config.hidden_size;
  if (!hidden.defined() || hidden.dim() < 1 || hidden.size(-1) != H) {
    return invalid_argument("hidden states must end in the model's hidden size " +
                            std::to_string(H));
  }
  try {
    torch::NoGradGuard no_grad;
    return torch::linear(hidden.to(impl_->options.device, impl_->options.dtype), impl_->lm_head);
  } catch (const c10::Error& e) {
    return internal_error(std::string("LibTorch failed in the output head: ") +
                          e.what_without_backtrace());
  }
}

torch::Tensor Transformer::Impl::attention(const torch::Tensor& q, torch::Tensor k, torch::Tensor v,
                                           const torch::Tensor& allowed) const {
  // q [B, H, T, d]; k, v [B, KV, S, d]; allowed [B, 1, T, S] bool.
  const int64_t n_rep = config.num_heads / config.num_kv_heads;
#if PROV_HAVE_SDPA_GQA
  if (sdpa && !allowed.defined()) {
    // Plain causal attention with grouped heads: no copies of the key/value heads.
    return at::scaled_dot_product_attention(q, k, v, {}, 0.0, true, std::nullopt, n_rep > 1);
  }
#endif
  if (n_rep > 1) {
    // Query head h uses key/value head h / n_rep (the reference's repeat_kv).
    auto rep = [&](const torch::Tensor& x) {
      return x.unsqueeze(2)
          .expand({x.size(0), x.size(1), n_rep, x.size(2), x.size(3)})
          .reshape({x.size(0), x.size(1) * n_rep, x.size(2), x.size(3)});
    };
    k = rep(k);
    v = rep(v);
  }
#if PROV_HAVE_SDPA
  if (sdpa) {
    // Default scale 1/sqrt(head_dim), which every supported architecture uses. Without a mask the
    // is_causal form lets LibTorch pick its fused (flash) kernels.
    if (!allowed.defined()) return at::scaled_dot_product_attention(q, k, v, {}, 0.0, true);
    return at::scaled_dot_product_attention(q, k, v, allowed, 0.0, false);
  }
#endif
  torch::Tensor mask = allowed;
  if (!mask.defined()) {
    const int64_t T = q.size(2);
    auto o = torch::TensorOptions().dtype(torch::kBool).device(q.device());
    mask = torch::ones({T, T}, o).tril().view({1, 1, T, T});
  }
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  torch::Tensor scores = torch::matmul(q, k.transpose(-2, -1)) * scale;
  scores = scores.to(torch::kFloat32)
               .masked_fill(mask.logical_not(), std::numeric_limits<float>::lowest());
  torch::Tensor probs = torch::softmax(scores, -1).to(q.scalar_type());
  return torch::matmul(probs, v);
}

torch::Tensor Transformer::Impl::mlp(const Layer& l, const torch::Tensor& x) const {
  if (config.arch == Arch::kGpt2) {
    return linear(activate(linear(x, l.up_w, l.up_b), act), l.down_w, l.down_b);
  }
  if (config.arch != Arch::kMixtral) {
    torch::Tensor gu = linear(x, l.gate_up_w, l.gate_up_b);
    const int64_t I = config.intermediate_size;
    torch::Tensor h = act == Activation::kSilu
                          ? silu_mul(gu, I)
                          : activate(gu.narrow(-1, 0, I), act) * gu.narrow(-1, I, I);
    return linear(h, l.down_w, l.down_b);
  }
  // Mixtral: router softmax in fp32, top-k, renormalise, weight each chosen expert's output.
  const auto shape = x.sizes().vec();
  torch::Tensor flat = x.reshape({-1, x.size(-1)});
  torch::Tensor router_logits = torch::linear(flat, l.router);
  torch::Tensor probs = torch::softmax(router_logits.to(torch::kFloat32), -1);
  auto [top_w, top_i] = torch::topk(probs, config.experts_per_token, -1);
  top_w = (top_w / top_w.sum(-1, /*keepdim=*/true)).to(x.scalar_type());
  torch::Tensor out = torch::zeros_like(flat);
  const int64_t I = config.intermediate_size;
  for (int64_t e = 0; e < static_cast<int64_t>(l.experts.size()); ++e) {
    torch::Tensor hit = (top_i == e).nonzero();  // [n, 2]: (token, slot)
    if (hit.size(0) == 0) continue;
    torch::Tensor tok = hit.select(1, 0);
    torch::Tensor slot = hit.select(1, 1);
    const Expert& ex = l.experts[static_cast<size_t>(e)];
    torch::Tensor xe = flat.index_select(0, tok);
    torch::Tensor gu = torch::linear(xe, ex.gate_up);
    torch::Tensor ye =
        torch::linear(activate(gu.narrow(-1, 0, I), act) * gu.narrow(-1, I, I), ex.down);
    torch::Tensor w = top_w.index({tok, slot}).unsqueeze(-1);
    out.index_add_(0, tok, ye * w);
  }
  return out.reshape(shape);
}

Result<torch::Tensor> Transformer::Impl::forward(const torch::Tensor& input_ids,
                                                 const torch::Tensor& attention_mask,
                                                 KVCache* cache, bool last_only,
                                                 bool hidden_only) const {
  const ModelConfig& c = config;
  const torch::Device dev = options.device;
  if (!input_ids.defined() || input_ids.dim() != 2) {
    return invalid_argument("input_ids must be a 2-D [batch, tokens] tensor");
  }
  if (at::isFloatingType(input_ids.scalar_type()) || input_ids.scalar_type() == torch::kBool ||
      at::isComplexType(input_ids.scalar_type())) {
    return invalid_argument("input_ids must hold integer token ids");
  }
  const int64_t B = input_ids.size(0), T = input_ids.size(1);
  if (B == 0 || T == 0) return invalid_argument("input_ids is empty");
  torch::Tensor ids = input_ids.to(dev, torch::kInt64);
  {
    const int64_t lo = ids.min().item<int64_t>(), hi = ids.max().item<int64_t>();
    if (lo < 0 || hi >= c.vocab_size) {
      return invalid_argument("token id " + std::to_string(lo < 0 ? lo : hi) +
                              " is outside the vocabulary [0, " + std::to_string(c.vocab_size) +
                              ")");
    }
  }
  torch::Tensor mask;
  if (attention_mask.defined()) {
    if (attention_mask.dim() != 2 || attention_mask.size(0) != B || attention_mask.size(1) != T) {
      return invalid_argument("attention_mask must have the shape of input_ids [" +
                              std::to_string(B) + ", " + std::to_string(T) + "]");
    }
    mask = attention_mask.to(dev, torch::kInt64);
    if (mask.min().item<int64_t>() < 0 || mask.max().item<int64_t>() > 1) {
      return invalid_argument("attention_mask must hold only 0 and 1");
    }
  } else {
    mask = torch::ones({B, T}, torch::TensorOptions().dtype(torch::kInt64).device(dev));
  }
  const int64_t S = cache != nullptr ? cache->length_ : 0;
  if (S > 0 && cache->batch_ != B) {
    return invalid_argument("batch size " + std::to_string(B) + " differs from the cache's (" +
                            std::to_string(cache->batch_) + ")");
  }
  if (S > 0) {
    const torch::Tensor& k0 = cache->k_.empty() ? torch::Tensor() : cache->k_[0];
    if (cache->k_.size() != layers.size() || !k0.defined() || k0.size(1) != c.num_kv_heads ||
        k0.size(3) != c.head_dim || k0.scalar_type() != options.dtype || k0.device() != dev) {
      return invalid_argument(
          "the KV cache was filled by another model (layers, heads, dtype or "
          "device differ); clear() it first");
    }
  }
  torch::Tensor full_mask = S > 0 ? torch::cat({cache->mask_, mask}, 1) : mask;  // [B, S+T]
  const int64_t N = S + T;
  // Positions as the reference derives them for generation: cumsum(mask) - 1.
  torch::Tensor pos_full = full_mask.cumsum(1) - 1;
  torch::Tensor positions = pos_full.narrow(1, S, T).clamp_min(0);
  if (c.max_position_embeddings > 0) {
    const int64_t longest = full_mask.sum(1).max().item<int64_t>();
    if (longest > c.max_position_embeddings) {
      return invalid_argument("sequence of " + std::to_string(longest) +
                              " tokens is longer than the model's context of " +
                              std::to_string(c.max_position_embeddings) +
                              " positions (max_position_embeddings)");
    }
  }

  // allowed[b, 0, i, j]: query column S+i may attend to key column j.
  auto lopt = torch::TensorOptions().dtype(torch::kInt64).device(dev);
  torch::Tensor q_col = torch::arange(S, N, lopt).unsqueeze(1);  // [T, 1]
  torch::Tensor k_col = torch::arange(0, N, lopt).unsqueeze(0);  // [1, N]
  torch::Tensor causal = k_col <= q_col;
  if (c.sliding_window) causal = causal.logical_and(k_col > q_col - *c.sliding_window);
  // A padded query attends to itself only, so that no row is fully masked (its output is unused).
  torch::Tensor key_ok = full_mask.to(torch::kBool).view({B, 1, 1, N});
  torch::Tensor allowed =
      causal.view({1, 1, T, N}).logical_and(key_ok.logical_or((k_col == q_col).view({1, 1, T, N})));
  // No mask given, nothing cached and no sliding window: the attention is plainly causal.
  const bool plain_causal = !attention_mask.defined() && S == 0 && !c.sliding_window;
  if (plain_causal) allowed = torch::Tensor();

  const torch::ScalarType dt = options.dtype;
  torch::Tensor h = torch::embedding(embed, ids);  // [B, T, H]
  torch::Tensor cos, sin;
  if (c.arch == Arch::kGpt2) {
    h = h + torch::embedding(pos_embed, positions);
  } else {
    torch::Tensor freqs = positions.to(torch::kFloat32).unsqueeze(-1) * inv_freq;  // [B, T, d/2]
    torch::Tensor emb = torch::cat({freqs, freqs}, -1);
    cos = emb.cos().to(dt).unsqueeze(1);  // [B, 1, T, d]
    sin = emb.sin().to(dt).unsqueeze(1);
  }

  // Grow the cache (amortised doubling) before writing this step's keys and values.
  const int64_t KV = c.num_kv_heads, Hh = c.num_heads, d = c.head_dim;
  std::vector<torch::Tensor> new_k, new_v;
  int64_t new_capacity = 0;
  if (cache != nullptr) {
    new_capacity = cache->capacity_;
    if (N > new_capacity) {
      new_capacity = std::max<int64_t>({N, 2 * cache->capacity_, 16});
      if (c.max_position_embeddings > 0 && new_capacity > c.max_position_embeddings &&
          N <= c.max_position_embeddings) {
        new_capacity = c.max_position_embeddings;
      }
    }
    new_k.resize(layers.size());
    new_v.resize(layers.size());
  }

  // `pending` is the last sublayer's output, added to the residual stream together with the
  // next normalisation (add_norm).
  torch::Tensor pending;
  for (size_t li = 0; li < layers.size(); ++li) {
    const Layer& l = layers[li];
    torch::Tensor x;
    std::tie(h, x) = add_norm(h, pending, l.attn_norm_w, l.attn_norm_b);
    torch::Tensor qkv = linear(x, l.qkv_w, l.qkv_b);
    torch::Tensor q = qkv.narrow(-1, 0, Hh * d).view({B, T, Hh, d});
    torch::Tensor k = qkv.narrow(-1, Hh * d, KV * d).view({B, T, KV, d});
    torch::Tensor v = qkv.narrow(-1, (Hh + KV) * d, KV * d).view({B, T, KV, d});
    if (l.q_norm.defined()) {
      q = rms_norm(q, l.q_norm, c.norm_eps);
      k = rms_norm(k, l.k_norm, c.norm_eps);
    }
    q = q.transpose(1, 2);
    k = k.transpose(1, 2);
    v = v.transpose(1, 2);
    if (cos.defined()) {
      q = q * cos + rotate_half(q) * sin;
      k = k * cos + rotate_half(k) * sin;
    }
    torch::Tensor k_all = k, v_all = v;
    if (cache != nullptr) {
      torch::Tensor kb, vb;
      if (new_capacity != cache->capacity_ || cache->k_.empty()) {
        auto o = torch::TensorOptions().dtype(dt).device(dev);
        kb = torch::zeros({B, KV, new_capacity, d}, o);
        vb = torch::zeros({B, KV, new_capacity, d}, o);
        if (S > 0) {
          kb.narrow(2, 0, S).copy_(cache->k_[li].narrow(2, 0, S));
          vb.narrow(2, 0, S).copy_(cache->v_[li].narrow(2, 0, S));
        }
      } else {
        kb = cache->k_[li];
        vb = cache->v_[li];
      }
      // Writing past column S does not disturb what the cache already holds, so an error later in
      // this call leaves the cache's visible state (length, mask) unchanged.
      kb.narrow(2, S, T).copy_(k);
      vb.narrow(2, S, T).copy_(v);
      new_k[li] = kb;
      new_v[li] = vb;
      k_all = kb.narrow(2, 0, N);
      v_all = vb.narrow(2, 0, N);
    }
    torch::Tensor attn = attention(q, k_all, v_all, allowed);
    attn = attn.transpose(1, 2).reshape({B, T, Hh * d});
    pending = linear(attn, l.o_w, l.o_b);
    std::tie(h, x) = add_norm(h, pending, l.mlp_norm_w, l.mlp_norm_b);
    pending = mlp(l, x);
  }
  if (last_only) {
    h = h.narrow(1, T - 1, 1);
    if (pending.defined()) pending = pending.narrow(1, T - 1, 1);
  }
  h = add_norm(h, pending, final_norm_w, final_norm_b).second;
  torch::Tensor logits = hidden_only ? h : torch::linear(h, lm_head).to(torch::kFloat32);
  if (cache != nullptr) {
    cache->k_ = std::move(new_k);
    cache->v_ = std::move(new_v);
    cache->capacity_ = new_capacity;
    cache->mask_ = full_mask;
    cache->length_ = N;
    cache->batch_ = B;
  }
  return logits;
}

}  // namespace prov::model
