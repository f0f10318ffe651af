#include "model/formats/llama2c.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "tests/support/test_support.h"

namespace prov::model {
namespace {

using prov::testing::TempDir;

// A small valid configuration: head size 4, GQA (2 query heads per kv head), group size 8
// divides every matrix.
Llama2cHeader small_header(bool shared) {
  Llama2cHeader h;
  h.dim = 16;
  h.hidden_dim = 24;
  h.n_layers = 2;
  h.n_heads = 4;
  h.n_kv_heads = 2;
  h.vocab_size = 32;
  h.seq_len = 8;
  h.shared_classifier = shared;
  h.group_size = 8;
  return h;
}

// The smallest interesting configuration (1 layer, head size 4, GQA), for byte-by-byte loops.
Llama2cHeader tiny_header(bool shared) {
  Llama2cHeader h;
  h.dim = 8;
  h.hidden_dim = 8;
  h.n_layers = 1;
  h.n_heads = 2;
  h.n_kv_heads = 1;
  h.vocab_size = 4;
  h.seq_len = 2;
  h.shared_classifier = shared;
  h.group_size = 8;
  return h;
}

// Deterministic pseudo-random values in [-1, 1), different per tensor.
Llama2cWeights random_weights(const Llama2cHeader& h) {
  Llama2cWeights w;
  w.header = h;
  auto shapes = llama2c_tensor_shapes(h);
  EXPECT_TRUE(shapes.is_ok()) << shapes.status().to_string();
  uint64_t state = 0x9e3779b97f4a7c15ull;
  for (const auto& [name, shape] : *shapes) {
    uint64_t n = 1;
    for (int64_t d : shape) n *= static_cast<uint64_t>(d);
    std::vector<float> v(n);
    for (float& x : v) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      x = static_cast<float>(static_cast<int64_t>(state >> 40) - (1 << 23)) / (1 << 23);
    }
    w.tensors[name] = std::move(v);
  }
  return w;
}

std::vector<uint8_t> serialize_or_die(const Llama2cWeights& w, uint32_t version) {
  auto bytes = serialize_llama2c(w, version);
  EXPECT_TRUE(bytes.is_ok()) << bytes.status().to_string();
  return bytes.is_ok() ? *bytes : std::vector<uint8_t>{};
}

Result<Checkpoint> parse(const std::vector<uint8_t>& b) {
  return parse_llama2c_buffer(nullptr, b.data(), b.size(), "test.bin");
}

float f32_at(const std::vector<uint8_t>& b, uint64_t off) {
  float f;
  std::memcpy(&f, b.data() + off, 4);
  return f;
}

void put_i32(std::vector<uint8_t>* b, uint64_t off, int32_t v) {
  std::memcpy(b->data() + off, &v, 4);
}

uint64_t total_params(const Checkpoint& c) {
  uint64_t n = 0;
  for (const TensorRef& t : c.tensors) n += t.numel();
  return n;
}

// ---------------------------------------------------------------------------------------------
// Golden: the published stories260K model and its tokenizer.

TEST(Llama2cGolden, Stories260K) {
  PROV_REQUIRE_FIXTURES();
  const std::string path = prov::testing::fixtures_dir() + "/real/stories260K.bin";
  auto ckpt = read_llama2c(path);
  ASSERT_TRUE(ckpt.is_ok()) << ckpt.status().to_string();
  const Checkpoint& c = *ckpt;
  EXPECT_EQ(c.format, Format::kLlama2c);
  EXPECT_EQ(c.version, 0u);
  EXPECT_EQ(c.path, path);
  ASSERT_EQ(c.files.size(), 1u);
  EXPECT_EQ(c.metadata["dim"], 64);
  EXPECT_EQ(c.metadata["hidden_dim"], 172);
  EXPECT_EQ(c.metadata["n_layers"], 5);
  EXPECT_EQ(c.metadata["n_heads"], 8);
  EXPECT_EQ(c.metadata["n_kv_heads"], 4);
  EXPECT_EQ(c.metadata["vocab_size"], 512);
  EXPECT_EQ(c.metadata["seq_len"], 512);
  EXPECT_EQ(c.metadata["head_size"], 8);
  EXPECT_EQ(c.metadata["shared_classifier"], true);
  EXPECT_FALSE(c.metadata.contains("group_size"));

  // embed + 5 layers x 9 + final norm; no lm_head (shared classifier).
  ASSERT_EQ(c.tensors.size(), 47u);
  EXPECT_EQ(c.find("lm_head.weight"), nullptr);
  // 512*64 + 5*(64 + 64*64 + 2*32*64 + 64*64 + 64 + 3*172*64) + 64
  //   = 32768 + 5*45440 + 64 = 260032.
  EXPECT_EQ(total_params(c), 260032u);

  const TensorRef* embed = c.find("model.embed_tokens.weight");
  const TensorRef* q0 = c.find("model.layers.0.self_attn.q_proj.weight");
  const TensorRef* k0 = c.find("model.layers.0.self_attn.k_proj.weight");
  const TensorRef* v4 = c.find("model.layers.4.self_attn.v_proj.weight");
  const TensorRef* o0 = c.find("model.layers.0.self_attn.o_proj.weight");
  const TensorRef* gate = c.find("model.layers.2.mlp.gate_proj.weight");
  const TensorRef* down = c.find("model.layers.2.mlp.down_proj.weight");
  const TensorRef* up = c.find("model.layers.2.mlp.up_proj.weight");
  const TensorRef* ln0 = c.find("model.layers.0.input_layernorm.weight");
  const TensorRef* norm = c.find("model.norm.weight");
  for (const TensorRef* t : {embed, q0, k0, v4, o0, gate, down, up, ln0, norm}) {
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->dtype, DType::kF32);
    EXPECT_NE(t->keep_alive, nullptr);
  }
  EXPECT_EQ(embed->shape, (std::vector<int64_t>{512, 64}));
  EXPECT_EQ(q0->shape, (std::vector<int64_t>{64, 64}));
  EXPECT_EQ(k0->shape, (std::vector<int64_t>{32, 64}));
  EXPECT_EQ(v4->shape, (std::vector<int64_t>{32, 64}));
  EXPECT_EQ(o0->shape, (std::vector<int64_t>{64, 64}));
  EXPECT_EQ(gate->shape, (std::vector<int64_t>{172, 64}));
  EXPECT_EQ(down->shape, (std::vector<int64_t>{64, 172}));
  EXPECT_EQ(up->shape, (std::vector<int64_t>{172, 64}));
  EXPECT_EQ(norm->shape, (std::vector<int64_t>{64}));
  // Layout: header, embedding, then the attention norms of all layers.
  EXPECT_EQ(embed->file_offset, 28u);
  EXPECT_EQ(ln0->file_offset, 28u + 512 * 64 * 4);
  EXPECT_EQ(q0->file_offset, 28u + (512 * 64 + 5 * 64) * 4);
  EXPECT_EQ(ln0->data - embed->data, 512 * 64 * 4);  // views into one mapping
  EXPECT_TRUE(q0->row_order != nullptr);
  EXPECT_TRUE(k0->row_order != nullptr);
  EXPECT_TRUE(v4->is_plain_layout());

  // Values read with an independent script from the file.
  auto e = to_float32(*embed);
  ASSERT_TRUE(e.is_ok());
  EXPECT_FLOAT_EQ((*e)[0], -0.29474878311157227f);
  EXPECT_FLOAT_EQ((*e)[1], 0.5618956089019775f);
  EXPECT_FLOAT_EQ((*e)[2], 0.1754225343465805f);
  auto l = to_float32(*ln0);
  ASSERT_TRUE(l.is_ok());
  EXPECT_FLOAT_EQ((*l)[0], 0.9722429513931274f);
  auto n = to_float32(*norm);
  ASSERT_TRUE(n.is_ok());
  EXPECT_FLOAT_EQ((*n)[0], 2.4583089351654053f);
  EXPECT_FLOAT_EQ((*n)[1], 1.3673226833343506f);
  // Q rows in HF order: canonical row 1 (head 0, first half, i=1) is stored row 2; canonical
  // row 4 (head 0, second half, i=0) is stored row 1.
  auto q = to_float32(*q0);
  ASSERT_TRUE(q.is_ok());
  EXPECT_FLOAT_EQ((*q)[0 * 64 + 0], 0.04439278692007065f);
  EXPECT_FLOAT_EQ((*q)[0 * 64 + 1], 0.07974770665168762f);
  EXPECT_FLOAT_EQ((*q)[1 * 64 + 0], 0.055401116609573364f);
  EXPECT_FLOAT_EQ((*q)[1 * 64 + 1], 0.08100877702236176f);
  EXPECT_FLOAT_EQ((*q)[4 * 64 + 0], 0.22455421090126038f);
  EXPECT_FLOAT_EQ((*q)[4 * 64 + 1], 0.12866616249084473f);
  auto k = to_float32(*k0);
  ASSERT_TRUE(k.is_ok());
  EXPECT_FLOAT_EQ((*k)[1 * 64], -0.30815765261650085f);
  EXPECT_FLOAT_EQ((*k)[4 * 64], -0.20091506838798523f);

  const std::string bytes = prov::testing::read_file(path);
  ASSERT_EQ(bytes.size(), 1056540u);
  EXPECT_TRUE(looks_like_llama2c(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
  EXPECT_FALSE(
      looks_like_llama2c(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size() - 4));
}

TEST(Llama2cGolden, Stories260KReexportsAsV1AndV2) {
  PROV_REQUIRE_FIXTURES();
  auto c0 = read_llama2c(prov::testing::fixtures_dir() + "/real/stories260K.bin");
  ASSERT_TRUE(c0.is_ok()) << c0.status().to_string();
  uint32_t version = 9;
  auto h = parse_llama2c_header(c0->tensors[0].data - 28, 28, "stories", &version);
  ASSERT_TRUE(h.is_ok()) << h.status().to_string();
  EXPECT_EQ(version, 0u);
  EXPECT_TRUE(h->shared_classifier);
  Llama2cHeader header = *h;
  header.group_size = 64;
  auto w = llama2c_weights_from_checkpoint(*c0, header);
  ASSERT_TRUE(w.is_ok()) << w.status().to_string();

  for (uint32_t v : {0u, 1u, 2u}) {
    SCOPED_TRACE("version " + std::to_string(v));
    std::vector<uint8_t> bytes = serialize_or_die(*w, v);
    auto c = parse(bytes);
    ASSERT_TRUE(c.is_ok()) << c.status().to_string();
    EXPECT_EQ(c->version, v);
    ASSERT_EQ(c->tensors.size(), c0->tensors.size());
    for (const TensorRef& t0 : c0->tensors) {
      const TensorRef* t = c->find(t0.name);
      ASSERT_NE(t, nullptr) << t0.name;
      auto a = to_float32(t0);
      auto b = to_float32(*t);
      ASSERT_TRUE(a.is_ok() && b.is_ok());
      ASSERT_EQ(a->size(), b->size());
      if (v < 2 || t->dtype == DType::kF32) {
        EXPECT_EQ(*a, *b) << t0.name;
      } else {
        float maxabs = 0, maxerr = 0;
        for (size_t i = 0; i < a->size(); ++i) {
          maxabs = std::max(maxabs, std::fabs((*a)[i]));
          maxerr = std::max(maxerr, std::fabs((*a)[i] - (*b)[i]));
        }
        EXPECT_LE(maxerr, maxabs / 127 / 2 * 1.0001f) << t0.name;
      }
    }
    if (v == 0) {
      // Re-exporting v0 reproduces the weights byte for byte (freq_cis tables aside).
      const std::string orig =
          prov::testing::read_file(prov::testing::fixtures_dir() + "/real/stories260K.bin");
      ASSERT_EQ(bytes.size(), orig.size());
      const size_t weights_end = 28 + 4 * 260032;
      EXPECT_EQ(std::memcmp(bytes.data(), orig.data(), weights_end), 0);
      // The RoPE tables agree to float rounding (angles up to 511 rad).
      float max_diff = 0;
      for (size_t off = weights_end; off < bytes.size(); off += 4) {
        float a, b;
        std::memcpy(&a, bytes.data() + off, 4);
        std::memcpy(&b, orig.data() + off, 4);
        max_diff = std::max(max_diff, std::fabs(a - b));
      }
      EXPECT_LT(max_diff, 1e-4f);
    }
  }
}

TEST(Llama2cGolden, Tok512) {
  PROV_REQUIRE_FIXTURES();
  const std::string path = prov::testing::fixtures_dir() + "/real/tok512.bin";
  auto tok = read_llama2c_tokenizer(path, 512);
  ASSERT_TRUE(tok.is_ok()) << tok.status().to_string();
  EXPECT_EQ(tok->max_token_length, 7);
  ASSERT_EQ(tok->tokens.size(), 512u);
  ASSERT_EQ(tok->scores.size(), 512u);
  EXPECT_EQ(tok->tokens[0], "<unk>");
  EXPECT_EQ(tok->tokens[1], "\n<s>\n");
  EXPECT_EQ(tok->tokens[2], "\n</s>\n");
  EXPECT_EQ(tok->tokens[3], "<0x00>");
  EXPECT_EQ(tok->tokens[258], "<0xFF>");
  EXPECT_EQ(tok->tokens[259], " t");
  EXPECT_EQ(tok->tokens[260], "he");
  EXPECT_EQ(tok->tokens[261], " a");
  EXPECT_EQ(tok->tokens[511], "\xe2\x80\x8a");
  EXPECT_EQ(tok->scores[0], 0.0f);
  EXPECT_EQ(tok->scores[260], -1.0f);
  EXPECT_EQ(tok->scores[261], -2.0f);
  EXPECT_EQ(tok->scores[511], -252.0f);

  auto all = read_llama2c_tokenizer(path);  // until EOF
  ASSERT_TRUE(all.is_ok()) << all.status().to_string();
  EXPECT_EQ(all->tokens, tok->tokens);

  auto fewer = read_llama2c_tokenizer(path, 511);
  ASSERT_FALSE(fewer.is_ok());
  EXPECT_EQ(fewer.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(fewer.status().message().find("trailing"), std::string::npos);
  auto more = read_llama2c_tokenizer(path, 513);
  ASSERT_FALSE(more.is_ok());
  EXPECT_EQ(more.status().code(), StatusCode::kCorrupt);

  // Writing it back gives the same bytes.
  auto bytes = serialize_llama2c_tokenizer(*tok);
  ASSERT_TRUE(bytes.is_ok());
  EXPECT_EQ(std::string(bytes->begin(), bytes->end()), prov::testing::read_file(path));
}

// ---------------------------------------------------------------------------------------------
// Round trips through the writers.

void expect_exact_round_trip(uint32_t version, bool shared) {
  SCOPED_TRACE("version " + std::to_string(version) + (shared ? " shared" : " unshared"));
  const Llama2cWeights w = random_weights(small_header(shared));
  TempDir dir;
  const std::string path = dir.file("m.bin");
  ASSERT_TRUE(write_llama2c(path, w, version).is_ok());
  auto c = read_llama2c(path);
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->version, version);
  EXPECT_EQ(c->metadata["shared_classifier"], shared);
  EXPECT_EQ(c->metadata["vocab_size"], 32);
  EXPECT_EQ(c->tensors.size(), w.tensors.size());
  EXPECT_EQ(c->find("lm_head.weight") != nullptr, !shared);
  for (const auto& [name, values] : w.tensors) {
    const TensorRef* t = c->find(name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(t->dtype, DType::kF32);
    auto got = to_float32(*t);
    ASSERT_TRUE(got.is_ok()) << got.status().to_string();
    EXPECT_EQ(*got, values) << name;
  }
  auto size = llama2c_file_size(w.header, version);
  ASSERT_TRUE(size.is_ok());
  EXPECT_EQ(prov::testing::read_file(path).size(), *size);
}

TEST(Llama2cRoundTrip, V0Shared) {
  expect_exact_round_trip(0, true);
}
TEST(Llama2cRoundTrip, V0Unshared) {
  expect_exact_round_trip(0, false);
}
TEST(Llama2cRoundTrip, V1Shared) {
  expect_exact_round_trip(1, true);
}
TEST(Llama2cRoundTrip, V1Unshared) {
  expect_exact_round_trip(1, false);
}

TEST(Llama2cRoundTrip, V0LayoutAndVocabSign) {
  // Sizes by hand: per layer 16+256+128+128+256+16+3*384 = 1952 floats; total
  // 512 + 2*1952 + 16 + freq_cis 2*8*2 = 4464 floats, + 28-byte header.
  const Llama2cWeights shared = random_weights(small_header(true));
  std::vector<uint8_t> b = serialize_or_die(shared, 0);
  ASSERT_EQ(b.size(), 28u + 4 * 4464);
  int32_t vocab;
  std::memcpy(&vocab, b.data() + 20, 4);
  EXPECT_EQ(vocab, 32);
  // Embedding right after the header; the attention norms of both layers follow.
  EXPECT_EQ(f32_at(b, 28), shared.tensors.at("model.embed_tokens.weight")[0]);
  EXPECT_EQ(f32_at(b, 28 + 4 * 512), shared.tensors.at("model.layers.0.input_layernorm.weight")[0]);
  EXPECT_EQ(f32_at(b, 28 + 4 * (512 + 16)),
            shared.tensors.at("model.layers.1.input_layernorm.weight")[0]);
  // freq_cis: cos(0) = 1 then, one row later, cos(1 * 1/10000^0) = cos(1).
  const uint64_t fc = 28 + 4 * (4464 - 32);
  EXPECT_EQ(f32_at(b, fc), 1.0f);
  EXPECT_NEAR(f32_at(b, fc + 8), std::cos(1.0f), 1e-6);
  EXPECT_TRUE(looks_like_llama2c(b.data(), b.size()));

  const Llama2cWeights unshared = random_weights(small_header(false));
  b = serialize_or_die(unshared, 0);
  ASSERT_EQ(b.size(), 28u + 4 * (4464 + 512));
  std::memcpy(&vocab, b.data() + 20, 4);
  EXPECT_EQ(vocab, -32);
  // The classifier comes last, after the freq_cis tables.
  EXPECT_EQ(f32_at(b, 28 + 4 * 4464), unshared.tensors.at("lm_head.weight")[0]);
  EXPECT_TRUE(looks_like_llama2c(b.data(), b.size()));
}

TEST(Llama2cRoundTrip, V1Layout) {
  const Llama2cWeights w = random_weights(small_header(false));
  std::vector<uint8_t> b = serialize_or_die(w, 1);
  uint32_t magic;
  int32_t version;
  std::memcpy(&magic, b.data(), 4);
  std::memcpy(&version, b.data() + 4, 4);
  EXPECT_EQ(magic, 0x616b3432u);
  EXPECT_EQ(std::string(b.begin(), b.begin() + 4), "24ka");
  EXPECT_EQ(version, 1);
  EXPECT_EQ(b[36], 0);  // shared_classifier
  // Norms first: attention norms of both layers, ffn norms, final norm; then the embedding.
  EXPECT_EQ(f32_at(b, 256), w.tensors.at("model.layers.0.input_layernorm.weight")[0]);
  EXPECT_EQ(f32_at(b, 256 + 4 * 32),
            w.tensors.at("model.layers.0.post_attention_layernorm.weight")[0]);
  EXPECT_EQ(f32_at(b, 256 + 4 * 64), w.tensors.at("model.norm.weight")[0]);
  EXPECT_EQ(f32_at(b, 256 + 4 * 80), w.tensors.at("model.embed_tokens.weight")[0]);
  // The classifier is last.
  EXPECT_EQ(f32_at(b, b.size() - 4), w.tensors.at("lm_head.weight").back());
  auto c = parse(b);
  ASSERT_TRUE(c.is_ok());
  EXPECT_EQ(c->find("model.embed_tokens.weight")->file_offset, 256u + 4 * 80);
  EXPECT_TRUE(looks_like_llama2c(b.data(), b.size()));
}

void expect_v2_round_trip(bool shared) {
  SCOPED_TRACE(shared ? "shared" : "unshared");
  const Llama2cWeights w = random_weights(small_header(shared));
  std::vector<uint8_t> b = serialize_or_die(w, 2);
  auto size = llama2c_file_size(w.header, 2);
  ASSERT_TRUE(size.is_ok());
  ASSERT_EQ(b.size(), *size);
  if (shared) {
    // By hand: 256 + norms 4*80 + embed 512+64*4 + per layer (q 384, k 192, v 192, o 384,
    // w1/w2/w3 576 each) x 2.
    EXPECT_EQ(b.size(), 256u + 320 + 768 + 2 * 2880);
  }
  int32_t gs;
  std::memcpy(&gs, b.data() + 37, 4);  // unaligned, right after shared_classifier
  EXPECT_EQ(gs, 8);
  EXPECT_EQ(b[36], shared ? 1 : 0);
  auto c = parse(b);
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->version, 2u);
  EXPECT_EQ(c->metadata["group_size"], 8);
  EXPECT_EQ(c->find("model.embed_tokens.weight")->file_offset, 256u + 320);
  EXPECT_EQ(c->find("model.layers.0.self_attn.q_proj.weight")->file_offset, 256u + 320 + 768);
  for (const auto& [name, values] : w.tensors) {
    const TensorRef* t = c->find(name);
    ASSERT_NE(t, nullptr) << name;
    auto got = to_float32(*t);
    ASSERT_TRUE(got.is_ok()) << got.status().to_string();
    ASSERT_EQ(got->size(), values.size());
    if (t->shape.size() == 1) {
      EXPECT_EQ(t->dtype, DType::kF32);
      EXPECT_EQ(*got, values) << name;
      continue;
    }
    ASSERT_EQ(t->dtype, DType::kI8Grouped) << name;
    EXPECT_EQ(t->group_size, 8u);
    EXPECT_EQ(t->nbytes, values.size());
    EXPECT_EQ(t->scales, t->data + t->nbytes);  // scales follow the values of each matrix
    // Stored order: rows permuted back for Q/K (identity otherwise).
    std::vector<float> stored(values.size());
    const uint64_t rows = t->shape[0], row_len = values.size() / rows;
    for (uint64_t r = 0; r < rows; ++r) {
      const uint64_t src = t->row_order ? (*t->row_order)[r] : r;
      for (uint64_t j = 0; j < row_len; ++j) stored[src * row_len + j] = values[r * row_len + j];
    }
    std::vector<float> deq(values.size());
    for (uint64_t g = 0; g < values.size() / 8; ++g) {
      float maxabs = 0;
      for (int k = 0; k < 8; ++k) maxabs = std::max(maxabs, std::fabs(stored[g * 8 + k]));
      float scale;
      std::memcpy(&scale, t->scales + 4 * g, 4);
      EXPECT_EQ(scale, maxabs / 127.0f) << name << " group " << g;
      for (int k = 0; k < 8; ++k) {
        const uint64_t i = g * 8 + k;
        const int8_t q = static_cast<int8_t>(t->data[i]);
        deq[i] = q * scale;
        EXPECT_LE(std::fabs(deq[i] - stored[i]), maxabs / 127 / 2 * 1.0001f) << name << " " << i;
      }
    }
    // to_float32 is exactly q * scale, in canonical row order.
    for (uint64_t r = 0; r < rows; ++r) {
      const uint64_t src = t->row_order ? (*t->row_order)[r] : r;
      for (uint64_t j = 0; j < row_len; ++j)
        ASSERT_EQ((*got)[r * row_len + j], deq[src * row_len + j]) << name;
    }
  }
}

TEST(Llama2cRoundTrip, V2Shared) {
  expect_v2_round_trip(true);
}
TEST(Llama2cRoundTrip, V2Unshared) {
  expect_v2_round_trip(false);
}

TEST(Llama2cRoundTrip, V2QuantizationRoundsLikeExportPy) {
  Llama2cHeader h = small_header(true);
  Llama2cWeights w = random_weights(h);
  // First group of the embedding: max |w| = 1.27 gives scale 1.27/127 and q = +-127 at the
  // extremes; zeros stay 0. Second group: scale exactly 1, so halves are ties, rounded to even
  // as torch.round does. The third group is all zeros and gets scale 0 (and q = 0).
  std::vector<float>& e = w.tensors["model.embed_tokens.weight"];
  const float group[8] = {1.27f, 0.0f, -0.635f, 0.5f, -1.27f, 0.0f, 0.25f, -0.125f};
  const float ties[8] = {127.0f, 2.5f, 3.5f, -0.5f, -2.5f, 0.0f, 1.0f, -127.0f};
  std::copy(group, group + 8, e.begin());
  std::copy(ties, ties + 8, e.begin() + 8);
  std::fill(e.begin() + 16, e.begin() + 24, 0.0f);
  std::vector<uint8_t> b = serialize_or_die(w, 2);
  auto c = parse(b);
  ASSERT_TRUE(c.is_ok());
  const TensorRef* t = c->find("model.embed_tokens.weight");
  float s0, s1, s2;
  std::memcpy(&s0, t->scales, 4);
  std::memcpy(&s1, t->scales + 4, 4);
  std::memcpy(&s2, t->scales + 8, 4);
  EXPECT_EQ(s0, 1.27f / 127.0f);
  EXPECT_EQ(s1, 1.0f);
  EXPECT_EQ(s2, 0.0f);
  const int8_t* q = reinterpret_cast<const int8_t*>(t->data);
  EXPECT_EQ(q[0], 127);
  EXPECT_EQ(q[4], -127);
  EXPECT_EQ(q[1], 0);
  EXPECT_EQ(q[2], static_cast<int8_t>(std::nearbyint(-0.635f / s0)));
  EXPECT_EQ(q[3], static_cast<int8_t>(std::nearbyint(0.5f / s0)));
  const int8_t tie_q[8] = {127, 2, 4, 0, -2, 0, 1, -127};
  for (int k = 0; k < 8; ++k) EXPECT_EQ(q[8 + k], tie_q[k]) << k;
  for (int k = 16; k < 24; ++k) EXPECT_EQ(q[k], 0);
}

TEST(Llama2cRoundTrip, QKRowOrder) {
  // Row r of every Q/K projection holds the value r: the stored file must carry Meta's
  // interleaved order, and the reader must give the rows back in HF order.
  Llama2cWeights w = random_weights(small_header(true));
  for (const char* name :
       {"model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.k_proj.weight"}) {
    std::vector<float>& v = w.tensors[name];
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i / 16);
  }
  std::vector<uint8_t> b = serialize_or_die(w, 1);
  auto c = parse(b);
  ASSERT_TRUE(c.is_ok());
  // Head size 4: within each head, HF rows (0,1 | 2,3) pair up as (0,2) and (1,3), stored
  // adjacently: stored rows hold HF rows 0,2,1,3, 4,6,5,7, ...
  const TensorRef* q = c->find("model.layers.0.self_attn.q_proj.weight");
  const TensorRef* k = c->find("model.layers.0.self_attn.k_proj.weight");
  const std::vector<float> q_expect = {0, 2, 1, 3, 4, 6, 5, 7, 8, 10, 9, 11, 12, 14, 13, 15};
  for (int r = 0; r < 16; ++r) {
    EXPECT_EQ(f32_at(b, q->file_offset + 4 * (16 * r)), q_expect[r]) << "stored q row " << r;
    EXPECT_EQ(f32_at(b, q->file_offset + 4 * (16 * r + 15)), q_expect[r]);
  }
  for (int r = 0; r < 8; ++r) {
    EXPECT_EQ(f32_at(b, k->file_offset + 4 * (16 * r)), q_expect[r]) << "stored k row " << r;
  }
  EXPECT_EQ(q->row_order->size(), 16u);
  EXPECT_EQ(k->row_order->size(), 8u);
  auto qf = to_float32(*q);
  auto kf = to_float32(*k);
  ASSERT_TRUE(qf.is_ok() && kf.is_ok());
  EXPECT_EQ(*qf, w.tensors["model.layers.0.self_attn.q_proj.weight"]);
  EXPECT_EQ(*kf, w.tensors["model.layers.0.self_attn.k_proj.weight"]);
  // V is not permuted.
  EXPECT_EQ(c->find("model.layers.0.self_attn.v_proj.weight")->row_order, nullptr);
}

TEST(Llama2cRoundTrip, Tokenizer) {
  Llama2cTokenizer tok;
  tok.max_token_length = 3;
  tok.tokens = {"<unk>", "", std::string("a\0b", 3), "\xff\xfe", "hello world"};
  tok.scores = {0.0f, -1.5f, 2.25f, -0.0f, 1e30f};
  TempDir dir;
  ASSERT_TRUE(write_llama2c_tokenizer(dir.file("tok.bin"), tok).is_ok());
  for (int32_t vocab : {5, -1}) {
    auto back = read_llama2c_tokenizer(dir.file("tok.bin"), vocab);
    ASSERT_TRUE(back.is_ok()) << back.status().to_string();
    EXPECT_EQ(back->max_token_length, 3);
    EXPECT_EQ(back->tokens, tok.tokens);
    EXPECT_EQ(back->scores, tok.scores);
  }
  Llama2cTokenizer bad = tok;
  bad.scores.pop_back();
  EXPECT_EQ(serialize_llama2c_tokenizer(bad).status().code(), StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// Hostile and malformed input.

// `v0`: no prefix may be sniffed as llama2.c either (a v1/v2 prefix is, by its magic).
void expect_every_prefix_fails(const std::vector<uint8_t>& full, bool v0) {
  for (size_t len = 0; len < full.size(); ++len) {
    // An exact-size heap copy, so that any read past the prefix is caught by ASan.
    std::vector<uint8_t> prefix(full.begin(), full.begin() + len);
    auto c = parse_llama2c_buffer(nullptr, prefix.empty() ? nullptr : prefix.data(), len, "p");
    ASSERT_FALSE(c.is_ok()) << "prefix of " << len << " bytes parsed";
    ASSERT_EQ(c.status().code(), StatusCode::kCorrupt) << c.status().to_string();
    if (v0) {
      ASSERT_FALSE(looks_like_llama2c(prefix.data(), len)) << len;
    }
  }
}

TEST(Llama2cBadInput, EveryTruncationFailsV0) {
  std::vector<uint8_t> b = serialize_or_die(random_weights(tiny_header(false)), 0);
  // 28 + 4 * (embed 32 + layer 8+64+32+32+64+8+3*64 + norm 8 + freq_cis 2*2*2 + lm_head 32)
  ASSERT_EQ(b.size(), 28u + 4 * 480);
  ASSERT_TRUE(parse(b).is_ok());
  expect_every_prefix_fails(b, true);
  auto c = parse_llama2c_buffer(nullptr, b.data(), b.size() - 1, "m.bin");
  EXPECT_EQ(c.status().message(),
            "m.bin: truncated: expected 1948 bytes for dim=8 hidden_dim=8 n_layers=1 n_heads=2 "
            "n_kv_heads=1 vocab_size=4 seq_len=2 (separate classifier) (llama2.c v0), got 1947");
  // Also with a larger model (partially: the prefixes around the header and each boundary).
  b = serialize_or_die(random_weights(small_header(true)), 0);
  for (size_t len :
       {size_t{0}, size_t{27}, size_t{28}, size_t{29}, b.size() - 32 * 4, b.size() - 1}) {
    std::vector<uint8_t> prefix(b.begin(), b.begin() + len);
    EXPECT_EQ(parse(prefix).status().code(), StatusCode::kCorrupt) << len;
  }
}

TEST(Llama2cBadInput, EveryTruncationFailsV2) {
  for (bool shared : {true, false}) {
    std::vector<uint8_t> b = serialize_or_die(random_weights(tiny_header(shared)), 2);
    ASSERT_TRUE(parse(b).is_ok());
    expect_every_prefix_fails(b, false);
  }
}

TEST(Llama2cBadInput, TrailingGarbage) {
  for (uint32_t v : {0u, 1u, 2u}) {
    std::vector<uint8_t> b = serialize_or_die(random_weights(small_header(true)), v);
    const size_t good = b.size();
    b.push_back(0);
    b.push_back(0);
    b.push_back(0);
    auto c = parse(b);
    ASSERT_FALSE(c.is_ok());
    EXPECT_EQ(c.status().code(), StatusCode::kCorrupt);
    EXPECT_NE(c.status().message().find("3 trailing bytes"), std::string::npos)
        << c.status().message();
    EXPECT_NE(c.status().message().find("expected " + std::to_string(good)), std::string::npos);
    if (v == 0) {
      EXPECT_FALSE(looks_like_llama2c(b.data(), b.size()));
    }
  }
}

// A v0 buffer of the right size for small_header(true), with header field `field` replaced.
std::vector<uint8_t> v0_with_field(int field, int32_t value) {
  std::vector<uint8_t> b = serialize_or_die(random_weights(small_header(true)), 0);
  put_i32(&b, 4 * field, value);
  return b;
}

Status v0_status(int field, int32_t value) {
  return parse(v0_with_field(field, value)).status();
}

TEST(Llama2cBadInput, ZeroAndNegativeFields) {
  const char* names[] = {"dim",        "hidden_dim", "n_layers", "n_heads",
                         "n_kv_heads", "vocab_size", "seq_len"};
  for (int f = 0; f < 7; ++f) {
    for (int32_t v : {0, -1, -1000000, INT32_MIN}) {
      Status st = v0_status(f, v);
      ASSERT_FALSE(st.is_ok()) << names[f] << "=" << v;
      EXPECT_EQ(st.code(), StatusCode::kCorrupt);
      // A negative v0 vocab is the unshared flag: the header is valid, the size is not.
      if (f != 5 || v == 0) {
        EXPECT_NE(st.message().find(std::string(names[f]) + "=" + std::to_string(v)),
                  std::string::npos)
            << st.message();
      }
    }
  }
}

TEST(Llama2cBadInput, ShapeConstraints) {
  Status st = v0_status(3, 3);  // dim 16, 3 heads
  EXPECT_EQ(st.code(), StatusCode::kCorrupt);
  EXPECT_NE(st.message().find("dim=16 is not divisible by n_heads=3"), std::string::npos)
      << st.message();
  st = v0_status(4, 3);  // 4 heads, 3 kv heads
  EXPECT_EQ(st.code(), StatusCode::kCorrupt);
  EXPECT_NE(st.message().find("n_heads=4 is not a multiple of n_kv_heads=3"), std::string::npos)
      << st.message();
  st = v0_status(4, 8);  // more kv heads than heads
  EXPECT_EQ(st.code(), StatusCode::kCorrupt);
  st = v0_status(3, 16);  // head size 1: odd
  EXPECT_EQ(st.code(), StatusCode::kCorrupt);
  EXPECT_NE(st.message().find("odd"), std::string::npos) << st.message();
  for (int f = 0; f < 7; ++f) {
    st = v0_status(f, 1 << 30);
    EXPECT_EQ(st.code(), StatusCode::kCorrupt);
    EXPECT_NE(st.message().find("implausibly large"), std::string::npos) << st.message();
  }
  // Largest plausible values everywhere: sizes are computed without overflow and reported.
  std::vector<uint8_t> b = serialize_or_die(random_weights(small_header(true)), 0);
  for (int f : {0, 1, 5, 6}) put_i32(&b, 4 * f, 1 << 16);
  put_i32(&b, 8, 1024);
  auto c = parse(b);
  EXPECT_EQ(c.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(c.status().message().find("truncated: expected "), std::string::npos);
}

std::vector<uint8_t> v2_bytes() {
  return serialize_or_die(random_weights(small_header(true)), 2);
}

TEST(Llama2cBadInput, V2GroupSize) {
  std::vector<uint8_t> b = v2_bytes();
  put_i32(&b, 37, 0);
  Status st = parse(b).status();
  EXPECT_EQ(st.code(), StatusCode::kCorrupt);
  EXPECT_NE(st.message().find("group_size=0 must be positive"), std::string::npos) << st.message();
  put_i32(&b, 37, -8);
  EXPECT_EQ(parse(b).status().code(), StatusCode::kCorrupt);
  put_i32(&b, 37, 7);
  st = parse(b).status();
  EXPECT_EQ(st.code(), StatusCode::kCorrupt);
  EXPECT_NE(st.message().find("group_size=7 does not divide"), std::string::npos) << st.message();
  put_i32(&b, 37, 16);  // divides everything, but the size no longer matches
  EXPECT_EQ(parse(b).status().code(), StatusCode::kCorrupt);
}

TEST(Llama2cBadInput, VersionsAndFlags) {
  std::vector<uint8_t> b = v2_bytes();
  put_i32(&b, 4, 7);
  Status st = parse(b).status();
  EXPECT_EQ(st.code(), StatusCode::kUnsupported);
  EXPECT_NE(st.message().find("version 7"), std::string::npos) << st.message();
  EXPECT_TRUE(looks_like_llama2c(b.data(), b.size()));  // the magic claims it
  put_i32(&b, 4, 0);
  EXPECT_EQ(parse(b).status().code(), StatusCode::kUnsupported);

  b = v2_bytes();
  b[36] = 2;  // shared_classifier must be 0 or 1
  EXPECT_EQ(parse(b).status().code(), StatusCode::kCorrupt);

  b = serialize_or_die(random_weights(small_header(true)), 1);
  put_i32(&b, 28, -32);  // v1 has no vocab sign convention
  st = parse(b).status();
  EXPECT_EQ(st.code(), StatusCode::kCorrupt);
  EXPECT_NE(st.message().find("vocab_size=-32"), std::string::npos) << st.message();
  // The v1 header is 256 bytes even when the weights would fit in less.
  std::vector<uint8_t> head(b.begin(), b.begin() + 100);
  st = parse(head).status();
  EXPECT_EQ(st.code(), StatusCode::kCorrupt);
  EXPECT_NE(st.message().find("256"), std::string::npos) << st.message();

  EXPECT_EQ(parse({}).status().code(), StatusCode::kCorrupt);
  EXPECT_EQ(read_llama2c("/nonexistent/model.bin").status().code(), StatusCode::kNotFound);
}

TEST(Llama2cBadInput, LooksLike) {
  std::vector<uint8_t> junk(4096, 0x41);
  EXPECT_FALSE(looks_like_llama2c(junk.data(), junk.size()));
  EXPECT_FALSE(looks_like_llama2c(nullptr, 0));
  std::vector<uint8_t> b = v0_with_field(0, 32);  // valid header, wrong size
  EXPECT_FALSE(looks_like_llama2c(b.data(), b.size()));
}

// Tokenizer bytes: max_token_length, then (score, length, bytes...) per token.
std::vector<uint8_t> tok_bytes(int32_t max_len, const std::vector<int32_t>& lens,
                               size_t payload_per_token) {
  std::vector<uint8_t> b(4);
  std::memcpy(b.data(), &max_len, 4);
  for (int32_t len : lens) {
    const size_t at = b.size();
    b.resize(at + 8 + payload_per_token, 'x');
    const float score = 1.0f;
    std::memcpy(b.data() + at, &score, 4);
    std::memcpy(b.data() + at + 4, &len, 4);
  }
  return b;
}

TEST(Llama2cBadInput, Tokenizer) {
  auto parse_tok = [](const std::vector<uint8_t>& b, int32_t vocab) {
    return parse_llama2c_tokenizer_buffer(b.data(), b.size(), vocab, "tok.bin");
  };
  // Well-formed: three tokens of 2 bytes.
  std::vector<uint8_t> ok = tok_bytes(2, {2, 2, 2}, 2);
  ASSERT_TRUE(parse_tok(ok, 3).is_ok());
  ASSERT_TRUE(parse_tok(ok, -1).is_ok());
  EXPECT_EQ(parse_tok(ok, -1)->tokens.size(), 3u);

  // Negative length.
  Status st = parse_tok(tok_bytes(2, {2, -1, 2}, 2), 3).status();
  EXPECT_EQ(st.code(), StatusCode::kCorrupt);
  EXPECT_NE(st.message().find("token 1 at offset 14 has negative length -1"), std::string::npos)
      << st.message();
  // Length past the end of the file.
  st = parse_tok(tok_bytes(2, {2, 2, 1000}, 2), 3).status();
  EXPECT_EQ(st.code(), StatusCode::kCorrupt);
  EXPECT_NE(st.message().find("runs past the end"), std::string::npos) << st.message();
  st = parse_tok(tok_bytes(2, {2, 2, INT32_MAX}, 2), -1).status();
  EXPECT_EQ(st.code(), StatusCode::kCorrupt);
  // Negative max_token_length.
  EXPECT_EQ(parse_tok(tok_bytes(-5, {2}, 2), 1).status().code(), StatusCode::kCorrupt);
  // A vocabulary the file cannot hold fails before allocating.
  st = parse_tok(ok, 1 << 30).status();
  EXPECT_EQ(st.code(), StatusCode::kCorrupt);
  EXPECT_NE(st.message().find("1073741824 tokens need at least"), std::string::npos)
      << st.message();
  // Longer than max_token_length is tolerated (seen in the wild).
  EXPECT_TRUE(parse_tok(tok_bytes(1, {2, 2, 2}, 2), 3).is_ok());
  // Every truncation fails, with a count or until EOF.
  for (size_t len = 0; len < ok.size(); ++len) {
    std::vector<uint8_t> prefix(ok.begin(), ok.begin() + len);
    EXPECT_FALSE(parse_tok(prefix, 3).is_ok()) << len;
    if (len != 4 && len != 14 && len != 24) {  // token boundaries are valid EOF-mode files
      EXPECT_FALSE(parse_tok(prefix, -1).is_ok()) << len;
    }
  }
  // Fewer tokens asked for than present: trailing bytes.
  st = parse_tok(ok, 2).status();
  EXPECT_EQ(st.code(), StatusCode::kCorrupt);
  EXPECT_NE(st.message().find("10 trailing bytes at offset 24"), std::string::npos) << st.message();
}

TEST(Llama2cWriter, RejectsBadRequests) {
  Llama2cWeights w = random_weights(small_header(true));
  EXPECT_TRUE(serialize_llama2c(w, 1).is_ok());
  EXPECT_EQ(serialize_llama2c(w, 3).status().code(), StatusCode::kInvalidArgument);

  Llama2cWeights missing = w;
  missing.tensors.erase("model.layers.1.mlp.up_proj.weight");
  Status st = serialize_llama2c(missing, 1).status();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("model.layers.1.mlp.up_proj.weight is missing"), std::string::npos);

  Llama2cWeights wrong = w;
  wrong.tensors["model.norm.weight"].push_back(1.0f);
  EXPECT_EQ(serialize_llama2c(wrong, 0).status().code(), StatusCode::kInvalidArgument);

  Llama2cWeights extra = w;
  extra.tensors["lm_head.weight"] = w.tensors["model.embed_tokens.weight"];
  st = serialize_llama2c(extra, 0).status();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("shared_classifier is true"), std::string::npos);

  Llama2cWeights bad_gs = w;
  bad_gs.header.group_size = 5;
  EXPECT_TRUE(serialize_llama2c(bad_gs, 1).is_ok());  // v1 ignores the group size
  EXPECT_EQ(serialize_llama2c(bad_gs, 2).status().code(), StatusCode::kInvalidArgument);

  Llama2cWeights bad_header = w;
  bad_header.header.n_heads = 3;
  EXPECT_EQ(serialize_llama2c(bad_header, 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(llama2c_tensor_shapes(bad_header.header).is_ok());

  TempDir dir;
  EXPECT_EQ(write_llama2c(dir.file("no/such/dir/m.bin"), w, 1).code(), StatusCode::kIo);
  EXPECT_EQ(write_llama2c(dir.file("bad.bin"), missing, 1).code(), StatusCode::kInvalidArgument);
}

TEST(Llama2cWriter, WeightsFromCheckpointChecksShapes) {
  const Llama2cWeights w = random_weights(small_header(false));
  std::vector<uint8_t> b = serialize_or_die(w, 1);
  auto c = parse(b);
  ASSERT_TRUE(c.is_ok());
  auto back = llama2c_weights_from_checkpoint(*c, w.header);
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(back->tensors, w.tensors);
  Llama2cHeader other = w.header;
  other.hidden_dim = 32;
  EXPECT_EQ(llama2c_weights_from_checkpoint(*c, other).status().code(),
            StatusCode::kInvalidArgument);
  other = w.header;
  other.n_layers = 3;
  EXPECT_EQ(llama2c_weights_from_checkpoint(*c, other).status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace prov::model
