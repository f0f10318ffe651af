#include "fingerprint/identity.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "model/formats/dtype.h"
#include "model/formats/gguf.h"
#include "model/formats/model.h"
#include "model/formats/quants.h"
#include "model/formats/safetensors.h"
#include "model/formats/synthetic.h"
#include "model/formats/tensor.h"
#include "tests/support/test_support.h"
#include "zoo/derive.h"

namespace prov::fingerprint {
namespace {

namespace fs = std::filesystem;
using model::DType;
using model::Model;
using model::Role;
using model::TensorRef;
using testing::TempDir;

model::SyntheticSpec spec(model::Arch arch, DType dtype, uint64_t seed = 1) {
  model::SyntheticSpec s;
  s.arch = arch;
  s.dtype = dtype;
  s.seed = seed;
  return s;
}

std::string make_model(const TempDir& dir, const std::string& name, const model::SyntheticSpec& s) {
  const std::string path = dir.file(name);
  Status st = model::write_synthetic_model(path, s);
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  return path;
}

Model open(const std::string& path) {
  auto m = model::open_model(path);
  EXPECT_TRUE(m.is_ok()) << m.status().to_string();
  return std::move(m).value();
}

IdentityResult compare(const std::string& candidate, const std::string& reference) {
  Model a = open(candidate), b = open(reference);
  auto r = compare_identity(a, b);
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  if (!r.is_ok()) return {};
  return std::move(r).value();
}

// Largest relative error per scheme, printed for the record.
void report(const std::string& what, const IdentityResult& r) {
  std::map<std::string, double> worst;
  for (const TensorMatch& m : r.tensors) {
    if (!m.bit_identical) {
      auto& w = worst[m.scheme.empty() ? "(unexplained)" : m.scheme];
      w = std::max(w, m.relative_error);
    }
  }
  std::printf("[identity] %-34s relation=%-12s scheme=%-10s max_rel=%.5g", what.c_str(),
              r.relation.c_str(), r.scheme.c_str(), r.max_relative_error);
  for (const auto& [s, w] : worst) {
    std::printf("  %s:%.5g", s.c_str(), w);
    if (identity_error_bound(s) > 0) std::printf("(bound %.4g)", identity_error_bound(s));
  }
  std::printf("\n  reason: %s\n", r.reason.c_str());
}

// Every non-identical tensor of a quantized verdict is within its bound (checked, not assumed).
void expect_within_bounds(const IdentityResult& r) {
  for (const TensorMatch& m : r.tensors) {
    if (m.bit_identical) continue;
    EXPECT_TRUE(m.explained) << m.role;
    EXPECT_GT(m.bound, 0) << m.role;
    EXPECT_LE(m.relative_error, m.bound) << m.role << " " << m.scheme;
    EXPECT_GT(m.cosine, 0.95) << m.role;
  }
}

// The canonical tensors of `m` as safetensors entries with their HF names, optionally widened
// to fp32.
std::vector<model::SafetensorsEntry> entries(const Model& m, bool widen) {
  std::vector<model::SafetensorsEntry> out;
  for (const TensorRef& t : m.checkpoint.tensors) {
    model::SafetensorsEntry e;
    e.name = t.name;
    e.shape = t.shape;
    if (widen) {
      auto v = model::to_float32(t);
      EXPECT_TRUE(v.is_ok());
      e.dtype = DType::kF32;
      e.bytes.resize(v->size() * 4);
      std::memcpy(e.bytes.data(), v->data(), e.bytes.size());
    } else {
      auto b = model::canonical_bytes(t);
      EXPECT_TRUE(b.is_ok());
      e.dtype = t.dtype;
      e.bytes = *b;
    }
    out.push_back(std::move(e));
  }
  return out;
}

void copy_config(const std::string& from, const std::string& to) {
  fs::create_directories(to);
  fs::copy_file(fs::path(from) / "config.json", fs::path(to) / "config.json");
}

std::string gguf_name(const model::TensorRole& r) {
  static const std::map<Role, std::string> kNames = {
      {Role::kAttnNorm, "attn_norm"}, {Role::kAttnQ, "attn_q"},      {Role::kAttnK, "attn_k"},
      {Role::kAttnV, "attn_v"},       {Role::kAttnO, "attn_output"}, {Role::kMlpNorm, "ffn_norm"},
      {Role::kMlpGate, "ffn_gate"},   {Role::kMlpUp, "ffn_up"},      {Role::kMlpDown, "ffn_down"},
  };
  const std::string suffix = r.bias ? ".bias" : ".weight";
  if (r.role == Role::kTokenEmbedding) return "token_embd" + suffix;
  if (r.role == Role::kFinalNorm) return "output_norm" + suffix;
  if (r.role == Role::kLmHead) return "output" + suffix;
  return "blk." + std::to_string(r.layer) + "." + kNames.at(r.role) + suffix;
}

// Writes `m` (a llama model) as a GGUF file the way llama.cpp's converter lays it out (Q/K rows
// interleaved for RoPE); matrices in `matrix_type` (F32 or a ggml block type), vectors in F32.
std::string write_gguf(const Model& m, const std::string& path, DType matrix_type) {
  const model::ModelConfig& c = m.config;
  model::GgufWriter w;
  using model::GgufValue;
  w.add_kv("general.architecture", GgufValue::str("llama"));
  w.add_kv("llama.embedding_length", GgufValue::u32(static_cast<uint32_t>(c.hidden_size)));
  w.add_kv("llama.block_count", GgufValue::u32(static_cast<uint32_t>(c.num_layers)));
  w.add_kv("llama.feed_forward_length", GgufValue::u32(static_cast<uint32_t>(c.intermediate_size)));
  w.add_kv("llama.attention.head_count", GgufValue::u32(static_cast<uint32_t>(c.num_heads)));
  w.add_kv("llama.attention.head_count_kv", GgufValue::u32(static_cast<uint32_t>(c.num_kv_heads)));
  w.add_kv("llama.context_length",
           GgufValue::u32(static_cast<uint32_t>(c.max_position_embeddings)));
  w.add_kv("llama.rope.freq_base", GgufValue::f32(static_cast<float>(c.rope_theta)));
  w.add_kv("llama.attention.layer_norm_rms_epsilon",
           GgufValue::f32(static_cast<float>(c.norm_eps)));
  for (const auto& [role, index] : m.roles) {
    const TensorRef& t = m.checkpoint.tensors[index];
    auto v = model::to_float32(t);
    EXPECT_TRUE(v.is_ok());
    std::vector<float> stored = *v;
    if (role.role == Role::kAttnQ || role.role == Role::kAttnK) {
      const int64_t heads = role.role == Role::kAttnQ ? c.num_heads : c.num_kv_heads;
      const int64_t rows = t.shape[0], cols = t.shape[1];
      auto order = model::rope_interleaved_to_half_rows(heads, rows / heads);
      for (int64_t r = 0; r < rows; ++r) {
        std::memcpy(&stored[order[r] * cols], &(*v)[r * cols], cols * 4);
      }
    }
    DType type = t.shape.size() == 2 ? matrix_type : DType::kF32;
    std::vector<uint8_t> bytes;
    if (type == DType::kF32) {
      bytes.resize(stored.size() * 4);
      std::memcpy(bytes.data(), stored.data(), bytes.size());
    } else {
      auto q = model::quantize(type, stored.data(), stored.size());
      EXPECT_TRUE(q.is_ok()) << q.status().to_string();
      bytes = *q;
    }
    Status st = w.add_tensor(gguf_name(role), type, t.shape, std::move(bytes));
    EXPECT_TRUE(st.is_ok()) << st.to_string();
  }
  Status st = w.write(path);
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  return path;
}

TEST(Identity, SameDirectoryAndByteCopyAreIdentical) {
  TempDir dir;
  const std::string a = make_model(dir, "a", spec(model::Arch::kLlama, DType::kF32));
  IdentityResult same = compare(a, a);
  EXPECT_EQ(same.relation, "identical");
  EXPECT_EQ(same.null_hypothesis, "exact comparison (no test statistic)");
  fs::copy(a, dir.file("copy"), fs::copy_options::recursive);
  IdentityResult copy = compare(dir.file("copy"), a);
  report("byte copy", copy);
  EXPECT_EQ(copy.relation, "identical");
  EXPECT_NE(copy.reason.find("manifest"), std::string::npos) << copy.reason;

  // Same weights file, edited config: still identical (weight files byte-identical).
  fs::copy(a, dir.file("edited"), fs::copy_options::recursive);
  testing::write_file(dir.file("edited/generation_config.json"), std::string("{}"));
  IdentityResult edited = compare(dir.file("edited"), a);
  EXPECT_EQ(edited.relation, "identical");
  EXPECT_NE(edited.reason.find("weight file"), std::string::npos) << edited.reason;

  // With file digests off the byte copy is compared tensor by tensor.
  Model ma = open(dir.file("copy")), mb = open(a);
  IdentityOptions opt;
  opt.file_digests = false;
  auto r = compare_identity(ma, mb, opt);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->relation, "converted");
}

TEST(Identity, ReshardedAndWidenedAreConverted) {
  TempDir dir;
  for (DType dt : {DType::kF32, DType::kBF16}) {
    const std::string tag = dt == DType::kF32 ? "f32" : "bf16";
    const std::string a = make_model(dir, "a" + tag, spec(model::Arch::kQwen2, dt));
    Model m = open(a);
    const std::string sharded = dir.file("sharded" + tag);
    copy_config(a, sharded);
    ASSERT_TRUE(model::write_safetensors_sharded(sharded, entries(m, false), 20000).is_ok());
    IdentityResult r = compare(sharded, a);
    report("sharded " + tag, r);
    EXPECT_EQ(r.relation, "converted") << r.reason;
    EXPECT_EQ(r.tensors.size(), m.roles.size());
    for (const TensorMatch& t : r.tensors) {
      EXPECT_TRUE(t.bit_identical) << t.role;
      EXPECT_EQ(t.relative_error, 0);
      EXPECT_DOUBLE_EQ(t.cosine, 1.0);
    }
    // Canonical order: embedding first, lm_head last.
    EXPECT_EQ(r.tensors.front().role, "embed.weight");
    EXPECT_EQ(r.tensors.back().role, "lm_head.weight");
    EXPECT_EQ(r.tensors[1].role.rfind("layers.0.", 0), 0u) << r.tensors[1].role;
  }
  // bf16 widened to f32, both directions.
  Model bf = open(dir.file("abf16"));
  const std::string wide = dir.file("widened");
  copy_config(dir.file("abf16"), wide);
  ASSERT_TRUE(model::write_safetensors(wide + "/model.safetensors", entries(bf, true)).is_ok());
  IdentityResult r = compare(wide, dir.file("abf16"));
  report("bf16 widened to f32", r);
  EXPECT_EQ(r.relation, "converted") << r.reason;
  EXPECT_EQ(r.tensors[0].dtype_a, "F32");
  EXPECT_EQ(r.tensors[0].dtype_b, "BF16");
  EXPECT_EQ(compare(dir.file("abf16"), wide).relation, "converted");
}

TEST(Identity, GgufF32OfTheSameWeightsIsConverted) {
  TempDir dir;
  const std::string a = make_model(dir, "a", spec(model::Arch::kLlama, DType::kF32));
  Model m = open(a);
  const std::string g = write_gguf(m, dir.file("model.gguf"), DType::kF32);
  IdentityResult r = compare(g, a);
  report("gguf F32", r);
  EXPECT_EQ(r.relation, "converted") << r.reason;
  EXPECT_NE(r.reason.find("gguf vs safetensors"), std::string::npos) << r.reason;
}

TEST(Identity, ZooRoundTripsAreQuantized) {
  TempDir dir;
  struct Case {
    model::Arch arch;
    DType dtype;
  };
  for (const Case& c :
       {Case{model::Arch::kLlama, DType::kF32}, Case{model::Arch::kQwen2, DType::kBF16}}) {
    const std::string tag = c.dtype == DType::kF32 ? "llama-f32" : "qwen2-bf16";
    const std::string base = make_model(dir, "base-" + tag, spec(c.arch, c.dtype));
    for (const auto& [scheme, expect] : std::vector<std::pair<std::string, std::string>>{
             {"int8", "int8-row"}, {"q8_0", "Q8_0"}, {"q4_0", "Q4_0"}}) {
      const std::string out = dir.file(scheme + "-" + tag);
      auto recipe = zoo::quantize_roundtrip(base, out, scheme);
      ASSERT_TRUE(recipe.is_ok()) << recipe.status().to_string();
      IdentityResult r = compare(out, base);
      report("zoo " + scheme + " " + tag, r);
      EXPECT_EQ(r.relation, "quantized") << r.reason;
      EXPECT_EQ(r.scheme, expect);
      EXPECT_EQ(r.quantized_side, "candidate");
      expect_within_bounds(r);
      // Vectors (norms, biases) are kept bit for bit.
      for (const TensorMatch& t : r.tensors) {
        if (t.shape.size() == 1) {
          EXPECT_TRUE(t.bit_identical) << t.role;
        }
      }
      // Reversed roles: the reference is the quantized side.
      IdentityResult rev = compare(base, out);
      EXPECT_EQ(rev.relation, "quantized") << rev.reason;
      EXPECT_EQ(rev.scheme, expect);
      EXPECT_EQ(rev.quantized_side, "reference");
    }
  }
}

TEST(Identity, GgufBlockQuantsOfTheSourceAreQuantized) {
  TempDir dir;
  const std::string a = make_model(dir, "a", spec(model::Arch::kLlama, DType::kF32));
  Model m = open(a);
  // hidden 64 and intermediate 160 are not multiples of 256: k-quants need a wider model.
  model::SyntheticSpec wide = spec(model::Arch::kLlama, DType::kF32, 3);
  wide.hidden_size = 256;
  wide.intermediate_size = 512;
  wide.num_layers = 1;
  const std::string b = make_model(dir, "wide", wide);
  Model mw = open(b);
  for (DType t : {DType::kQ8_0, DType::kQ4_0, DType::kQ4_1, DType::kQ5_0, DType::kQ6_K,
                  DType::kQ5_K, DType::kQ4_K, DType::kQ3_K, DType::kQ2_K}) {
    const bool k_quant = model::dtype_info(t).block_elems == 256;
    const Model& src = k_quant ? mw : m;
    const std::string src_path = k_quant ? b : a;
    const std::string name = model::dtype_name(t);
    const std::string g = write_gguf(src, dir.file(name + ".gguf"), t);
    IdentityResult r = compare(g, src_path);
    report("gguf " + name, r);
    EXPECT_EQ(r.relation, "quantized") << r.reason;
    EXPECT_EQ(r.scheme, name);
    EXPECT_EQ(r.quantized_side, "candidate");
    expect_within_bounds(r);
  }
}

TEST(Identity, Bf16RoundingOfF32IsQuantized) {
  TempDir dir;
  const std::string a = make_model(dir, "a", spec(model::Arch::kQwen2, DType::kF32));
  Model m = open(a);
  std::vector<model::SafetensorsEntry> es = entries(m, false);
  for (auto& e : es) {
    std::vector<float> v(e.bytes.size() / 4);
    std::memcpy(v.data(), e.bytes.data(), e.bytes.size());
    e.dtype = DType::kBF16;
    e.bytes.resize(v.size() * 2);
    for (size_t i = 0; i < v.size(); ++i) {
      uint16_t h = model::float_to_bf16(v[i]);
      std::memcpy(&e.bytes[2 * i], &h, 2);
    }
  }
  const std::string out = dir.file("bf16");
  copy_config(a, out);
  ASSERT_TRUE(model::write_safetensors(out + "/model.safetensors", es).is_ok());
  IdentityResult r = compare(out, a);
  report("f32 rounded to bf16", r);
  EXPECT_EQ(r.relation, "quantized") << r.reason;
  EXPECT_EQ(r.scheme, "bf16");
  expect_within_bounds(r);
}

TEST(Identity, NoiseAndPermutationAreNoIdentityRelation) {
  TempDir dir;
  for (DType dt : {DType::kF32, DType::kBF16}) {
    const std::string tag = dt == DType::kF32 ? "f32" : "bf16";
    const std::string base = make_model(dir, "base" + tag, spec(model::Arch::kLlama, dt));
    for (double sigma : {0.01, 0.05}) {
      const std::string out = dir.file("noise" + std::to_string(sigma) + tag);
      ASSERT_TRUE(zoo::add_noise(base, out, sigma, 7).is_ok());
      IdentityResult r = compare(out, base);
      report("noise " + std::to_string(sigma) + " " + tag, r);
      EXPECT_EQ(r.relation, "none") << r.reason;
      EXPECT_TRUE(r.scheme.empty());
      EXPECT_GT(r.max_relative_error, sigma * 0.5);
      EXPECT_NE(r.reason.find("relative error"), std::string::npos);
    }
    const std::string perm = dir.file("perm" + tag);
    ASSERT_TRUE(zoo::permute(base, perm, 3, true, true, true).is_ok());
    IdentityResult p = compare(perm, base);
    report("permuted " + tag, p);
    EXPECT_EQ(p.relation, "none") << p.reason;
  }
}

// stop_at_first_difference: a merely related pair stops after the first group of tensors, with
// the same relation and the first differing tensor; explained pairs still compare every tensor.
TEST(Identity, StopsAtTheFirstDifferenceWithTheSameVerdict) {
  TempDir dir;
  const std::string base = make_model(dir, "base", spec(model::Arch::kLlama, DType::kBF16));
  const std::string noised = dir.file("noised");
  ASSERT_TRUE(zoo::add_noise(base, noised, 0.05, 7).is_ok());
  const std::string q8 = dir.file("q8");
  ASSERT_TRUE(zoo::quantize_roundtrip(base, q8, "q8_0").is_ok());
  Model mb = open(base), mn = open(noised), mq = open(q8);
  IdentityOptions stop;
  stop.stop_at_first_difference = true;
  for (unsigned threads : {1u, 3u}) {
    stop.threads = threads;
    auto full = compare_identity(mn, mb);
    auto early = compare_identity(mn, mb, stop);
    ASSERT_TRUE(full.is_ok() && early.is_ok());
    EXPECT_EQ(early->relation, "none");
    EXPECT_EQ(full->relation, "none");
    EXPECT_EQ(early->tensors.size(), 4u) << "a fixed group, whatever the thread count";
    EXPECT_LT(early->tensors.size(), full->tensors.size());
    EXPECT_EQ(early->tensors[0].role, full->tensors[0].role);
    EXPECT_EQ(early->tensors[0].relative_error, full->tensors[0].relative_error);
    EXPECT_NE(early->reason.find("stops there"), std::string::npos) << early->reason;
    auto quant = compare_identity(mq, mb, stop);
    ASSERT_TRUE(quant.is_ok());
    EXPECT_EQ(quant->relation, "quantized") << quant->reason;
    EXPECT_EQ(quant->tensors.size(), full->tensors.size());
  }
}

TEST(Identity, QuantizedNoisyCopyIsNotAQuantizationOfTheBase) {
  // A light "fine-tune" (noise at 1 % of each tensor's std) then quantized to Q8_0: the values
  // sit on a Q8_0 grid, but not around the base's values.
  TempDir dir;
  const std::string base = make_model(dir, "base", spec(model::Arch::kLlama, DType::kF32));
  ASSERT_TRUE(zoo::add_noise(base, dir.file("ft"), 0.01, 11).is_ok());
  ASSERT_TRUE(zoo::quantize_roundtrip(dir.file("ft"), dir.file("ftq"), "q8_0").is_ok());
  IdentityResult r = compare(dir.file("ftq"), base);
  report("noise 0.01 then q8_0", r);
  EXPECT_EQ(r.relation, "none") << r.reason;
  // The same as a GGUF Q8_0 file (rule 1, per-block step check).
  Model ft = open(dir.file("ft"));
  const std::string g = write_gguf(ft, dir.file("ftq8.gguf"), DType::kQ8_0);
  IdentityResult rg = compare(g, base);
  report("noise 0.01 then gguf Q8_0", rg);
  EXPECT_EQ(rg.relation, "none") << rg.reason;
}

TEST(Identity, PrunedOrResizedModelsAreIncomparable) {
  TempDir dir;
  const std::string base = make_model(dir, "base", spec(model::Arch::kLlama, DType::kF32));
  ASSERT_TRUE(zoo::prune(base, dir.file("pruned"), {0}, 1.0).is_ok());
  IdentityResult r = compare(dir.file("pruned"), base);
  report("pruned (1 of 2 layers)", r);
  EXPECT_EQ(r.relation, "incomparable");
  EXPECT_NE(r.reason.find("only in the reference (first: layers.1."), std::string::npos)
      << r.reason;
  ASSERT_TRUE(zoo::prune(base, dir.file("narrow"), {0, 1}, 0.5).is_ok());
  IdentityResult n = compare(dir.file("narrow"), base);
  EXPECT_EQ(n.relation, "incomparable");
  EXPECT_NE(n.reason.find("layers.0.mlp_gate.weight is [80, 64]"), std::string::npos) << n.reason;

  model::SyntheticSpec other = spec(model::Arch::kLlama, DType::kF32);
  other.hidden_size = 128;
  const std::string o = make_model(dir, "other", other);
  IdentityResult h = compare(o, base);
  report("hidden 128 vs 64", h);
  EXPECT_EQ(h.relation, "incomparable");
  EXPECT_NE(h.reason.find("embed.weight is [256, 128] in the candidate, [256, 64]"),
            std::string::npos)
      << h.reason;
  EXPECT_TRUE(h.tensors.empty());
}

}  // namespace
}  // namespace prov::fingerprint
