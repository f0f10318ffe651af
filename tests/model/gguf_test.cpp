// Tests of the GGUF reader and writer: round trips of every metadata and tensor type, the
// shared real GGUF fixture, the Llama Q/K row order, tokenizer extraction and hostile input.
#include "model/formats/gguf.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "model/formats/quants.h"
#include "tests/support/test_support.h"

namespace prov::model {
namespace {

using testing::TempDir;

// --- helpers -----------------------------------------------------------------------------------

// Little-endian byte builder for hand-made (hostile) files.
struct Bytes {
  std::vector<uint8_t> b;
  Bytes& u32(uint32_t v) { return raw(&v, 4); }
  Bytes& u64(uint64_t v) { return raw(&v, 8); }
  Bytes& u8(uint8_t v) { return raw(&v, 1); }
  Bytes& str(const std::string& s) {
    u64(s.size());
    return raw(s.data(), s.size());
  }
  Bytes& raw(const void* p, size_t n) {
    const uint8_t* c = static_cast<const uint8_t*>(p);
    b.insert(b.end(), c, c + n);
    return *this;
  }
  Bytes& header(uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    raw("GGUF", 4);
    u32(version);
    u64(n_tensors);
    return u64(n_kv);
  }
  Bytes& pad(size_t alignment) {
    while (b.size() % alignment != 0) b.push_back(0);
    return *this;
  }
};

// Parses bytes from an exactly-sized heap copy (so ASan sees any over-read).
Result<Checkpoint> parse_bytes(const std::vector<uint8_t>& bytes) {
  auto copy = std::make_shared<std::vector<uint8_t>>(bytes);
  return parse_gguf_buffer(copy, copy->data(), copy->size(), "mem.gguf");
}

std::vector<uint8_t> serialized(const GgufWriter& w, uint32_t version = 3,
                                uint64_t alignment = 32) {
  auto r = w.serialize(version, alignment);
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return r.is_ok() ? *r : std::vector<uint8_t>();
}

template <typename T>
std::vector<uint8_t> as_bytes(const std::vector<T>& v) {
  std::vector<uint8_t> out(v.size() * sizeof(T));
  if (!v.empty()) std::memcpy(out.data(), v.data(), out.size());
  return out;
}

std::vector<float> gaussian(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = g(rng);
  return v;
}

void expect_code(const Result<Checkpoint>& r, StatusCode code, const std::string& fragment) {
  ASSERT_FALSE(r.is_ok()) << "expected failure containing: " << fragment;
  EXPECT_EQ(r.status().code(), code) << r.status().to_string();
  EXPECT_NE(r.status().message().find(fragment), std::string::npos) << r.status().to_string();
}

// --- metadata round trip -----------------------------------------------------------------------

GgufArray nested_ints() {
  GgufArray inner1, inner2, outer;
  inner1.elem_type = inner2.elem_type = GgufType::kInt32;
  inner1.i = {1, 2};
  inner2.i = {-3};
  outer.elem_type = GgufType::kArray;
  outer.a = {inner1, inner2};
  return outer;
}

void add_every_type(GgufWriter* w) {
  w->add_kv("t.u8", GgufValue::u8(200));
  w->add_kv("t.i8", GgufValue::i8(-100));
  w->add_kv("t.u16", GgufValue::u16(60000));
  w->add_kv("t.i16", GgufValue::i16(-30000));
  w->add_kv("t.u32", GgufValue::u32(4000000000u));
  w->add_kv("t.i32", GgufValue::i32(-2000000000));
  w->add_kv("t.f32", GgufValue::f32(1.5f));
  w->add_kv("t.bool", GgufValue::boolean(true));
  w->add_kv("t.str", GgufValue::str("h\xc3\xa9llo"));
  w->add_kv("t.u64", GgufValue::u64((uint64_t{1} << 63) + 5));
  w->add_kv("t.i64", GgufValue::i64(-(int64_t{1} << 62)));
  w->add_kv("t.f64", GgufValue::f64(1e300));
  w->add_kv("t.bad_utf8", GgufValue::str("a\xff"
                                         "b"));
  w->add_kv("t.strs", GgufValue::strings({"x", "", "yz"}));
  w->add_kv("t.f32s", GgufValue::f32s({0.25f, -2.0f}));
  w->add_kv("t.i32s", GgufValue::i32s({-1, 7}));
  w->add_kv("t.nested", GgufValue::array(nested_ints()));
  GgufArray arrays_of_strings;
  arrays_of_strings.elem_type = GgufType::kArray;
  GgufArray s1;
  s1.elem_type = GgufType::kString;
  s1.s = {"a", "b"};
  arrays_of_strings.a = {s1};
  w->add_kv("t.nested_strs", GgufValue::array(arrays_of_strings));
  GgufArray empty;
  empty.elem_type = GgufType::kUint16;
  w->add_kv("t.empty", GgufValue::array(empty));
  // One array of each remaining element type.
  struct {
    const char* key;
    GgufType type;
  } arrays[] = {{"t.a_u8", GgufType::kUint8},   {"t.a_i8", GgufType::kInt8},
                {"t.a_u16", GgufType::kUint16}, {"t.a_i16", GgufType::kInt16},
                {"t.a_u32", GgufType::kUint32}, {"t.a_u64", GgufType::kUint64},
                {"t.a_i64", GgufType::kInt64},  {"t.a_f64", GgufType::kFloat64},
                {"t.a_bool", GgufType::kBool}};
  for (const auto& a : arrays) {
    GgufArray arr;
    arr.elem_type = a.type;
    switch (a.type) {
      case GgufType::kUint8:
        arr.u = {0, 255};
        break;
      case GgufType::kUint16:
        arr.u = {1, 65535};
        break;
      case GgufType::kUint32:
        arr.u = {2, 4294967295u};
        break;
      case GgufType::kUint64:
        arr.u = {3, std::numeric_limits<uint64_t>::max()};
        break;
      case GgufType::kInt8:
        arr.i = {-128, 127};
        break;
      case GgufType::kInt16:
        arr.i = {-32768, 32767};
        break;
      case GgufType::kInt64:
        arr.i = {std::numeric_limits<int64_t>::min(), 5};
        break;
      case GgufType::kFloat64:
        arr.f = {0.1, -1e-300};
        break;
      case GgufType::kBool:
        arr.b = {1, 0, 1};
        break;
      default:
        break;
    }
    w->add_kv(a.key, GgufValue::array(arr));
  }
}

void check_every_type(const GgufFile& f) {
  EXPECT_EQ(f.get("t.u8")->type, GgufType::kUint8);
  EXPECT_EQ(*f.get("t.u8")->as_uint(), 200u);
  EXPECT_EQ(f.get("t.i8")->type, GgufType::kInt8);
  EXPECT_EQ(*f.get("t.i8")->as_int(), -100);
  EXPECT_EQ(*f.get("t.u16")->as_int(), 60000);
  EXPECT_EQ(*f.get("t.i16")->as_int(), -30000);
  EXPECT_EQ(*f.get("t.u32")->as_uint(), 4000000000u);
  EXPECT_EQ(f.get("t.i32")->type, GgufType::kInt32);
  EXPECT_EQ(*f.get("t.i32")->as_int(), -2000000000);
  EXPECT_EQ(f.get("t.f32")->type, GgufType::kFloat32);
  EXPECT_EQ(*f.get("t.f32")->as_number(), 1.5);
  EXPECT_EQ(*f.get("t.bool")->as_bool(), true);
  EXPECT_EQ(*f.get("t.str")->as_string(), "h\xc3\xa9llo");
  EXPECT_EQ(*f.get("t.u64")->as_uint(), (uint64_t{1} << 63) + 5);
  EXPECT_FALSE(f.get("t.u64")->as_int().has_value());  // does not fit int64
  EXPECT_EQ(*f.get("t.i64")->as_int(), -(int64_t{1} << 62));
  EXPECT_FALSE(f.get("t.i64")->as_uint().has_value());
  EXPECT_EQ(*f.get("t.f64")->as_number(), 1e300);
  EXPECT_EQ(*f.get("t.bad_utf8")->as_string(),
            "a\xff"
            "b");  // raw bytes kept
  EXPECT_EQ(f.get("t.str")->as_int(), std::nullopt);
  EXPECT_EQ(f.get("t.u8")->as_string(), nullptr);
  EXPECT_EQ(f.get("missing"), nullptr);

  const GgufArray* strs = f.get("t.strs")->as_array();
  ASSERT_NE(strs, nullptr);
  EXPECT_EQ(strs->elem_type, GgufType::kString);
  EXPECT_EQ(strs->s, (std::vector<std::string>{"x", "", "yz"}));
  EXPECT_EQ(f.get("t.f32s")->as_array()->f, (std::vector<double>{0.25, -2.0}));
  EXPECT_EQ(f.get("t.i32s")->as_array()->i, (std::vector<int64_t>{-1, 7}));
  const GgufArray* nested = f.get("t.nested")->as_array();
  ASSERT_EQ(nested->elem_type, GgufType::kArray);
  ASSERT_EQ(nested->a.size(), 2u);
  EXPECT_EQ(nested->a[0].i, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(nested->a[1].i, (std::vector<int64_t>{-3}));
  EXPECT_EQ(f.get("t.nested_strs")->as_array()->a[0].s, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(f.get("t.empty")->as_array()->elem_type, GgufType::kUint16);
  EXPECT_EQ(f.get("t.empty")->as_array()->size(), 0u);
  EXPECT_EQ(f.get("t.a_u8")->as_array()->u, (std::vector<uint64_t>{0, 255}));
  EXPECT_EQ(f.get("t.a_i8")->as_array()->i, (std::vector<int64_t>{-128, 127}));
  EXPECT_EQ(f.get("t.a_u16")->as_array()->u, (std::vector<uint64_t>{1, 65535}));
  EXPECT_EQ(f.get("t.a_i16")->as_array()->i, (std::vector<int64_t>{-32768, 32767}));
  EXPECT_EQ(f.get("t.a_u32")->as_array()->u, (std::vector<uint64_t>{2, 4294967295u}));
  EXPECT_EQ(f.get("t.a_u64")->as_array()->u[1], std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(f.get("t.a_i64")->as_array()->i[0], std::numeric_limits<int64_t>::min());
  EXPECT_EQ(f.get("t.a_f64")->as_array()->f, (std::vector<double>{0.1, -1e-300}));
  EXPECT_EQ(f.get("t.a_bool")->as_array()->b, (std::vector<uint8_t>{1, 0, 1}));
  EXPECT_EQ(f.get("t.a_bool")->as_array()->elem_type, GgufType::kBool);
}

void check_every_type_json(const nlohmann::json& m) {
  EXPECT_EQ(m["t.u8"], 200);
  EXPECT_EQ(m["t.i8"], -100);
  EXPECT_EQ(m["t.u32"].get<uint64_t>(), 4000000000u);
  EXPECT_EQ(m["t.i32"], -2000000000);
  EXPECT_EQ(m["t.f32"].get<double>(), 1.5);
  EXPECT_EQ(m["t.bool"], true);
  EXPECT_EQ(m["t.str"], "h\xc3\xa9llo");
  EXPECT_EQ(m["t.u64"].get<uint64_t>(), (uint64_t{1} << 63) + 5);
  EXPECT_EQ(m["t.i64"].get<int64_t>(), -(int64_t{1} << 62));
  EXPECT_EQ(m["t.f64"].get<double>(), 1e300);
  EXPECT_EQ(m["t.bad_utf8"],
            "a\xef\xbf\xbd"
            "b");  // U+FFFD replaces the invalid byte
  EXPECT_EQ(m["t.strs"], nlohmann::json({"x", "", "yz"}));
  EXPECT_EQ(m["t.nested"], nlohmann::json::parse("[[1,2],[-3]]"));
  EXPECT_EQ(m["t.nested_strs"], nlohmann::json::parse("[[\"a\",\"b\"]]"));
  EXPECT_EQ(m["t.empty"], nlohmann::json::array());
  EXPECT_EQ(m["t.a_bool"], nlohmann::json::parse("[true,false,true]"));
  EXPECT_NO_THROW(m.dump());  // always dumpable
}

class GgufVersions : public ::testing::TestWithParam<std::pair<uint32_t, uint64_t>> {};

TEST_P(GgufVersions, MetadataRoundTrip) {
  const auto [version, alignment] = GetParam();
  GgufWriter w;
  w.add_kv("general.architecture", GgufValue::str("test"));
  add_every_type(&w);
  ASSERT_TRUE(w.add_tensor("x", DType::kF32, {3}, as_bytes(std::vector<float>{1, 2, 3})).is_ok());
  TempDir dir;
  const std::string path = dir.file("meta.gguf");
  ASSERT_TRUE(w.write(path, version, alignment).is_ok());

  auto f = read_gguf_file(path);
  ASSERT_TRUE(f.is_ok()) << f.status().to_string();
  EXPECT_EQ(f->version, version);
  EXPECT_EQ(f->alignment, alignment);
  EXPECT_EQ(f->data_offset % alignment, 0u);
  EXPECT_EQ(f->architecture(), "test");
  check_every_type(*f);
  // Keys keep file order.
  EXPECT_EQ(f->kv[0].first, "general.architecture");
  EXPECT_EQ(f->kv[1].first, "t.u8");

  auto c = read_gguf(path);
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->format, Format::kGguf);
  EXPECT_EQ(c->version, version);
  EXPECT_EQ(c->path, path);
  EXPECT_EQ(c->files, std::vector<std::string>{path});
  check_every_type_json(c->metadata);
  if (alignment != 32) {
    EXPECT_EQ(c->metadata["general.alignment"], alignment);
  }
}

INSTANTIATE_TEST_SUITE_P(V2V3, GgufVersions,
                         ::testing::Values(std::make_pair(2u, uint64_t{32}),
                                           std::make_pair(3u, uint64_t{32}),
                                           std::make_pair(2u, uint64_t{64}),
                                           std::make_pair(3u, uint64_t{64})));

// --- tensors -------------------------------------------------------------------------------------

TEST(Gguf, EveryTensorTypeRoundTrips) {
  const DType quants[] = {DType::kQ4_0, DType::kQ4_1, DType::kQ5_0, DType::kQ5_1, DType::kQ8_0,
                          DType::kQ2_K, DType::kQ3_K, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K};
  for (uint64_t alignment : {32u, 64u}) {
    GgufWriter w;
    w.add_kv("general.architecture", GgufValue::str("test"));
    std::vector<std::pair<std::string, std::vector<uint8_t>>> stored;
    const std::vector<float> x = gaussian(2 * 256, 11);
    for (DType t : quants) {
      auto q = quantize(t, x.data(), x.size());
      ASSERT_TRUE(q.is_ok());
      const std::string name = std::string("q.") + dtype_name(t);
      ASSERT_TRUE(w.add_tensor(name, t, {2, 256}, *q).is_ok()) << name;
      stored.emplace_back(name, *q);
    }
    std::vector<float> f32 = {1.0f, -2.5f, 3.25f, 0.0f, 5.0f, -6.0f};
    std::vector<uint16_t> f16, bf16;
    for (float v : f32) {
      f16.push_back(float_to_fp16(v));
      bf16.push_back(float_to_bf16(v));
    }
    std::vector<double> f64(f32.begin(), f32.end());
    ASSERT_TRUE(w.add_tensor("p.F32", DType::kF32, {2, 3}, as_bytes(f32)).is_ok());
    ASSERT_TRUE(w.add_tensor("p.F16", DType::kF16, {3, 2}, as_bytes(f16)).is_ok());
    ASSERT_TRUE(w.add_tensor("p.BF16", DType::kBF16, {1, 2, 3}, as_bytes(bf16)).is_ok());
    ASSERT_TRUE(w.add_tensor("p.F64", DType::kF64, {6}, as_bytes(f64)).is_ok());
    ASSERT_TRUE(w.add_tensor("p.I8", DType::kI8, {5}, {1, 2, 3, 4, 0xff}).is_ok());
    ASSERT_TRUE(
        w.add_tensor("p.I16", DType::kI16, {2}, as_bytes(std::vector<int16_t>{-1, 9})).is_ok());
    ASSERT_TRUE(
        w.add_tensor("p.I32", DType::kI32, {2}, as_bytes(std::vector<int32_t>{-1, 9})).is_ok());
    ASSERT_TRUE(
        w.add_tensor("p.I64", DType::kI64, {1, 1, 1, 2}, as_bytes(std::vector<int64_t>{-1, 9}))
            .is_ok());
    TempDir dir;
    ASSERT_TRUE(w.write(dir.file("t.gguf"), 3, alignment).is_ok());
    auto c = read_gguf(dir.file("t.gguf"));
    ASSERT_TRUE(c.is_ok()) << c.status().to_string();
    ASSERT_EQ(c->tensors.size(), 18u);
    EXPECT_EQ(c->tensors[0].name, "q.Q4_0");  // file order kept

    for (const auto& [name, bytes] : stored) {
      const TensorRef* t = c->find(name);
      ASSERT_NE(t, nullptr) << name;
      EXPECT_EQ(std::string(dtype_name(t->dtype)), name.substr(2));
      EXPECT_EQ(t->shape, (std::vector<int64_t>{2, 256}));
      ASSERT_EQ(t->nbytes, bytes.size());
      EXPECT_EQ(std::memcmp(t->data, bytes.data(), bytes.size()), 0) << name;
      EXPECT_EQ(t->file_offset % alignment, 0u);
      EXPECT_TRUE(t->is_plain_layout());
      auto vals = to_float32(*t);
      ASSERT_TRUE(vals.is_ok()) << vals.status().to_string();
      std::vector<float> want(x.size());
      ASSERT_TRUE(dequantize_blocks(t->dtype, bytes.data(),
                                    bytes.size() / dtype_info(t->dtype).block_bytes, want.data())
                      .is_ok());
      EXPECT_EQ(*vals, want) << name;
      for (size_t k = 0; k < x.size(); ++k) ASSERT_NEAR((*vals)[k], x[k], 1.6) << name;
    }
    for (const char* name : {"p.F32", "p.F16", "p.BF16", "p.F64"}) {
      auto vals = to_float32(*c->find(name));
      ASSERT_TRUE(vals.is_ok()) << name;
      EXPECT_EQ(*vals, f32) << name;
    }
    EXPECT_EQ(c->find("p.F16")->shape, (std::vector<int64_t>{3, 2}));
    EXPECT_EQ(c->find("p.BF16")->shape, (std::vector<int64_t>{1, 2, 3}));
    EXPECT_EQ(c->find("p.I64")->shape, (std::vector<int64_t>{1, 1, 1, 2}));
    EXPECT_EQ(c->find("p.I8")->dtype, DType::kI8);
    EXPECT_EQ(c->find("p.I16")->dtype, DType::kI16);
    EXPECT_EQ(c->find("p.I32")->dtype, DType::kI32);
    EXPECT_EQ(c->find("p.I64")->dtype, DType::kI64);
    EXPECT_EQ(c->find("p.I8")->data[4], 0xff);
    int32_t i32[2];
    std::memcpy(i32, c->find("p.I32")->data, 8);
    EXPECT_EQ(i32[0], -1);
    EXPECT_EQ(i32[1], 9);
  }
}

TEST(Gguf, TypeTables) {
  for (uint32_t id = 0; id < 64; ++id) {
    auto d = dtype_from_ggml_type(id);
    if (d) {
      EXPECT_EQ(ggml_type_from_dtype(*d), id);
    }
  }
  EXPECT_EQ(dtype_from_ggml_type(8), DType::kQ8_0);
  EXPECT_EQ(dtype_from_ggml_type(30), DType::kBF16);
  EXPECT_FALSE(dtype_from_ggml_type(9).has_value());
  EXPECT_FALSE(dtype_from_ggml_type(4).has_value());
  EXPECT_STREQ(ggml_type_name(16), "IQ2_XXS");
  EXPECT_STREQ(ggml_type_name(1000), "unknown");
  EXPECT_FALSE(ggml_type_from_dtype(DType::kI8Grouped).has_value());
  EXPECT_STREQ(gguf_type_name(GgufType::kFloat64), "FLOAT64");
}

TEST(Gguf, WriterRejectsBadTensors) {
  GgufWriter w;
  EXPECT_EQ(w.add_tensor("a", DType::kF32, {2}, {1, 2, 3}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(w.add_tensor("b", DType::kQ8_0, {2, 16}, std::vector<uint8_t>(34)).code(),
            StatusCode::kInvalidArgument);  // 16 is not a whole Q8_0 block
  EXPECT_EQ(w.add_tensor("c", DType::kU8, {1}, {1}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(w.add_tensor("d", DType::kF32, {}, {}).code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(w.serialize(3, 24).is_ok());
}

// --- the shared real fixture ---------------------------------------------------------------------

TEST(Gguf, GoldenLlama2TinyRandom) {
  PROV_REQUIRE_FIXTURES();
  const std::string path = testing::fixtures_dir() + "/real/llama-2-tiny-random.gguf";
  auto c = read_gguf(path);
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->format, Format::kGguf);
  EXPECT_EQ(c->version, 3u);
  EXPECT_EQ(c->metadata["general.architecture"], "llama");
  EXPECT_EQ(c->metadata["llama.embedding_length"], 8);
  EXPECT_EQ(c->metadata["llama.block_count"], 1);
  EXPECT_EQ(c->metadata["llama.attention.head_count"], 2);
  ASSERT_EQ(c->tensors.size(), 12u);
  EXPECT_EQ(c->tensors[0].name, "token_embd.weight");
  const TensorRef* emb = c->find("token_embd.weight");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(emb->dtype, DType::kF16);
  EXPECT_EQ(emb->shape, (std::vector<int64_t>{32000, 8}));
  EXPECT_EQ(emb->nbytes, 32000u * 8 * 2);
  EXPECT_EQ(emb->file_offset, 724416u);
  EXPECT_EQ(c->find("blk.0.ffn_down.weight")->shape, (std::vector<int64_t>{8, 32}));
  EXPECT_EQ(c->find("blk.0.ffn_up.weight")->shape, (std::vector<int64_t>{32, 8}));
  EXPECT_EQ(c->find("output_norm.weight")->dtype, DType::kF32);
  EXPECT_EQ(c->find("output_norm.weight")->shape, (std::vector<int64_t>{8}));
  auto e = to_float32(*emb);
  ASSERT_TRUE(e.is_ok());
  EXPECT_EQ(e->size(), 256000u);

  // Q and K (2 heads of 4) get the RoPE row order; V does not.
  const TensorRef* q = c->find("blk.0.attn_q.weight");
  ASSERT_TRUE(q->row_order);
  EXPECT_EQ(*q->row_order, (std::vector<int64_t>{0, 2, 1, 3, 4, 6, 5, 7}));
  EXPECT_TRUE(c->find("blk.0.attn_k.weight")->row_order);
  EXPECT_FALSE(c->find("blk.0.attn_v.weight")->row_order);
  auto qv = to_float32(*q);
  ASSERT_TRUE(qv.is_ok());
  for (int r = 0; r < 8; ++r) {
    for (int col = 0; col < 8; ++col) {
      uint16_t h;
      std::memcpy(&h, q->data + ((*q->row_order)[r] * 8 + col) * 2, 2);
      ASSERT_EQ((*qv)[r * 8 + col], fp16_to_float(h));
    }
  }

  auto tok = gguf_tokenizer(*c);
  ASSERT_TRUE(tok.is_ok()) << tok.status().to_string();
  EXPECT_EQ(tok->model, "llama");
  ASSERT_EQ(tok->tokens.size(), 32000u);
  EXPECT_EQ(tok->tokens[0], "<unk>");
  EXPECT_EQ(tok->tokens[1], "<s>");
  EXPECT_EQ(tok->tokens[2], "</s>");
  EXPECT_EQ(tok->tokens[13], "<0x0A>");
  EXPECT_EQ(tok->tokens[29871], "\xe2\x96\x81");  // U+2581, SentencePiece's space
  EXPECT_EQ(tok->scores.size(), 32000u);
  EXPECT_EQ(tok->scores[29889], -29630.0f);
  EXPECT_EQ(tok->token_types.size(), 32000u);
  EXPECT_EQ(tok->token_types[1], 3);   // control
  EXPECT_EQ(tok->token_types[13], 6);  // byte
  EXPECT_EQ(tok->bos_id, 1);
  EXPECT_EQ(tok->eos_id, 2);
  EXPECT_EQ(tok->unk_id, 0);
  EXPECT_FALSE(tok->pad_id.has_value());
  EXPECT_TRUE(tok->add_bos);  // llama.cpp's default for SentencePiece vocabularies
  EXPECT_FALSE(tok->add_eos);
  EXPECT_TRUE(tok->warnings.empty());

  // The typed path agrees.
  auto f = read_gguf_file(path);
  ASSERT_TRUE(f.is_ok());
  auto tok2 = gguf_tokenizer(*f);
  ASSERT_TRUE(tok2.is_ok());
  EXPECT_EQ(tok2->tokens, tok->tokens);
  EXPECT_EQ(tok2->scores, tok->scores);
  EXPECT_EQ(tok2->token_types, tok->token_types);
}

// --- Llama Q/K row order -------------------------------------------------------------------------

// What llama.cpp's converter does to HF q/k rows: view as [heads, 2, head_dim/2, cols], swap the
// middle two axes. Stored row h*hd + 2*i + j holds HF row h*hd + j*(hd/2) + i.
std::vector<float> permute_like_converter(const std::vector<float>& hf, int heads, int hd,
                                          int cols) {
  std::vector<float> out(hf.size());
  for (int h = 0; h < heads; ++h)
    for (int i = 0; i < hd / 2; ++i)
      for (int j = 0; j < 2; ++j)
        for (int c = 0; c < cols; ++c)
          out[(h * hd + 2 * i + j) * cols + c] = hf[(h * hd + j * (hd / 2) + i) * cols + c];
  return out;
}

TEST(Gguf, LlamaQKRowsComeBackInHfOrder) {
  const int heads = 4, kv_heads = 2, hd = 8, dim = heads * hd;
  std::vector<float> q_hf(dim * dim), k_hf(kv_heads * hd * dim), qb_hf(dim);
  for (size_t k = 0; k < q_hf.size(); ++k) q_hf[k] = static_cast<float>(k);
  for (size_t k = 0; k < k_hf.size(); ++k) k_hf[k] = -static_cast<float>(k);
  for (size_t k = 0; k < qb_hf.size(); ++k) qb_hf[k] = 0.5f * k;

  for (const char* arch : {"llama", "qwen2"}) {
    GgufWriter w;
    w.add_kv("general.architecture", GgufValue::str(arch));
    w.add_kv(std::string(arch) + ".attention.head_count", GgufValue::u32(heads));
    w.add_kv(std::string(arch) + ".attention.head_count_kv", GgufValue::u32(kv_heads));
    ASSERT_TRUE(w.add_tensor("blk.0.attn_q.weight", DType::kF32, {dim, dim},
                             as_bytes(permute_like_converter(q_hf, heads, hd, dim)))
                    .is_ok());
    ASSERT_TRUE(w.add_tensor("blk.0.attn_q.bias", DType::kF32, {dim},
                             as_bytes(permute_like_converter(qb_hf, heads, hd, 1)))
                    .is_ok());
    ASSERT_TRUE(w.add_tensor("blk.12.attn_k.weight", DType::kF32, {kv_heads * hd, dim},
                             as_bytes(permute_like_converter(k_hf, kv_heads, hd, dim)))
                    .is_ok());
    ASSERT_TRUE(
        w.add_tensor("blk.0.attn_v.weight", DType::kF32, {kv_heads * hd, dim}, as_bytes(k_hf))
            .is_ok());
    TempDir dir;
    ASSERT_TRUE(w.write(dir.file("m.gguf")).is_ok());
    auto c = read_gguf(dir.file("m.gguf"));
    ASSERT_TRUE(c.is_ok()) << c.status().to_string();
    auto q = to_float32(*c->find("blk.0.attn_q.weight"));
    auto qb = to_float32(*c->find("blk.0.attn_q.bias"));
    auto k = to_float32(*c->find("blk.12.attn_k.weight"));
    auto v = to_float32(*c->find("blk.0.attn_v.weight"));
    ASSERT_TRUE(q.is_ok() && qb.is_ok() && k.is_ok() && v.is_ok());
    EXPECT_EQ(*v, k_hf);
    if (std::string(arch) == "llama") {
      EXPECT_EQ(*q, q_hf);
      EXPECT_EQ(*qb, qb_hf);
      EXPECT_EQ(*k, k_hf);
    } else {  // other architectures are read as stored
      EXPECT_FALSE(c->find("blk.0.attn_q.weight")->row_order);
      EXPECT_EQ(*q, permute_like_converter(q_hf, heads, hd, dim));
    }
  }
}

TEST(Gguf, LlamaQuantizedQRowsMoveWhole) {
  const int heads = 2, hd = 4, cols = 64, rows = heads * hd;
  const std::vector<float> hf = gaussian(rows * cols, 5);
  auto q_hf = quantize(DType::kQ8_0, hf.data(), hf.size());
  ASSERT_TRUE(q_hf.is_ok());
  // Permute the quantized rows (2 blocks of 34 bytes each) the way the converter permutes rows.
  const size_t row_bytes = 2 * 34;
  std::vector<uint8_t> stored(q_hf->size());
  for (int h = 0; h < heads; ++h)
    for (int i = 0; i < hd / 2; ++i)
      for (int j = 0; j < 2; ++j)
        std::memcpy(&stored[(h * hd + 2 * i + j) * row_bytes],
                    &(*q_hf)[(h * hd + j * (hd / 2) + i) * row_bytes], row_bytes);
  GgufWriter w;
  w.add_kv("general.architecture", GgufValue::str("llama"));
  w.add_kv("llama.attention.head_count", GgufValue::u32(heads));
  ASSERT_TRUE(w.add_tensor("blk.3.attn_q.weight", DType::kQ8_0, {rows, cols}, stored).is_ok());
  auto c = parse_bytes(serialized(w));
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  auto got = to_float32(c->tensors[0]);
  ASSERT_TRUE(got.is_ok());
  std::vector<float> want(hf.size());
  ASSERT_TRUE(dequantize_blocks(DType::kQ8_0, q_hf->data(), hf.size() / 32, want.data()).is_ok());
  EXPECT_EQ(*got, want);
  auto canon = canonical_bytes(c->tensors[0]);
  ASSERT_TRUE(canon.is_ok());
  EXPECT_EQ(*canon, *q_hf);
}

TEST(Gguf, LlamaBadHeadCounts) {
  auto make = [](std::optional<uint32_t> heads, int rows, bool per_layer = false) {
    GgufWriter w;
    w.add_kv("general.architecture", GgufValue::str("llama"));
    if (heads) {
      if (per_layer) {
        GgufArray a;
        a.elem_type = GgufType::kUint32;
        a.u = {*heads};
        w.add_kv("llama.attention.head_count", GgufValue::array(a));
      } else {
        w.add_kv("llama.attention.head_count", GgufValue::u32(*heads));
      }
    }
    EXPECT_TRUE(
        w.add_tensor("blk.0.attn_q.weight", DType::kF32, {rows, 4}, std::vector<uint8_t>(rows * 16))
            .is_ok());
    return parse_bytes(serialized(w));
  };
  expect_code(make(3, 8), StatusCode::kCorrupt, "blk.0.attn_q.weight");  // 8 % 3 != 0
  expect_code(make(4, 12), StatusCode::kCorrupt, "heads of even size");  // head_dim 3 is odd
  expect_code(make(0, 8), StatusCode::kCorrupt, "heads of even size");
  expect_code(make(std::nullopt, 8), StatusCode::kCorrupt, "head_count");
  auto ok = make(2, 8, true);  // a per-layer head count is used for its layer
  ASSERT_TRUE(ok.is_ok()) << ok.status().to_string();
  EXPECT_EQ(*ok->tensors[0].row_order, rope_interleaved_to_half_rows(2, 4));
}

// --- tokenizer
// -------------------------------------------------------------------------------------

GgufWriter tokenizer_writer() {
  GgufWriter w;
  w.add_kv("general.architecture", GgufValue::str("gpt2"));
  w.add_kv("tokenizer.ggml.model", GgufValue::str("gpt2"));
  w.add_kv("tokenizer.ggml.pre", GgufValue::str("qwen2"));
  w.add_kv("tokenizer.ggml.tokens", GgufValue::strings({"a", "b", "ab", "<|end|>"}));
  w.add_kv("tokenizer.ggml.token_type", GgufValue::i32s({1, 1, 1, 3}));
  w.add_kv("tokenizer.ggml.merges", GgufValue::strings({"a b"}));
  w.add_kv("tokenizer.ggml.eos_token_id", GgufValue::u32(3));
  w.add_kv("tokenizer.ggml.padding_token_id", GgufValue::u32(3));
  w.add_kv("tokenizer.ggml.bos_token_id", GgufValue::u32(99));  // outside the vocabulary
  w.add_kv("tokenizer.ggml.add_eos_token", GgufValue::boolean(true));
  return w;
}

TEST(Gguf, TokenizerFromBothPaths) {
  GgufWriter w = tokenizer_writer();
  const std::vector<uint8_t> bytes = serialized(w);
  auto f = parse_gguf(bytes.data(), bytes.size(), "tok.gguf");
  ASSERT_TRUE(f.is_ok()) << f.status().to_string();
  auto c = parse_bytes(bytes);
  ASSERT_TRUE(c.is_ok());
  for (const auto& tok : {gguf_tokenizer(*f), gguf_tokenizer(*c)}) {
    ASSERT_TRUE(tok.is_ok()) << tok.status().to_string();
    EXPECT_EQ(tok->model, "gpt2");
    EXPECT_EQ(tok->pre, "qwen2");
    EXPECT_EQ(tok->tokens, (std::vector<std::string>{"a", "b", "ab", "<|end|>"}));
    EXPECT_TRUE(tok->scores.empty());
    EXPECT_EQ(tok->token_types, (std::vector<int32_t>{1, 1, 1, 3}));
    EXPECT_EQ(tok->merges, (std::vector<std::string>{"a b"}));
    EXPECT_EQ(tok->eos_id, 3);
    EXPECT_EQ(tok->pad_id, 3);
    EXPECT_FALSE(tok->bos_id.has_value());
    EXPECT_FALSE(tok->unk_id.has_value());
    ASSERT_EQ(tok->warnings.size(), 1u);
    EXPECT_NE(tok->warnings[0].find("bos_token_id"), std::string::npos);
    EXPECT_FALSE(tok->add_bos);  // gpt2 default
    EXPECT_TRUE(tok->add_eos);   // explicit
  }
}

TEST(Gguf, TokenizerErrors) {
  {
    GgufWriter w;
    w.add_kv("general.architecture", GgufValue::str("llama"));
    auto c = parse_bytes(serialized(w));
    ASSERT_TRUE(c.is_ok());
    EXPECT_EQ(gguf_tokenizer(*c).status().code(), StatusCode::kNotFound);
  }
  {
    GgufWriter w = tokenizer_writer();
    w.add_kv("tokenizer.ggml.scores", GgufValue::f32s({0.0f, 1.0f}));  // 2 scores, 4 tokens
    auto c = parse_bytes(serialized(w));
    ASSERT_TRUE(c.is_ok());
    auto t = gguf_tokenizer(*c);
    EXPECT_EQ(t.status().code(), StatusCode::kCorrupt);
    EXPECT_NE(t.status().message().find("2 entries for 4 tokens"), std::string::npos);
  }
  {
    GgufWriter w = tokenizer_writer();
    w.add_kv("tokenizer.ggml.token_type", GgufValue::i32s({1}));
    auto c = parse_bytes(serialized(w));
    EXPECT_EQ(gguf_tokenizer(*c).status().code(), StatusCode::kCorrupt);
  }
  {
    GgufWriter w = tokenizer_writer();
    w.add_kv("tokenizer.ggml.tokens", GgufValue::f32s({1.0f}));
    auto c = parse_bytes(serialized(w));
    EXPECT_EQ(gguf_tokenizer(*c).status().code(), StatusCode::kCorrupt);
  }
  {
    GgufWriter w = tokenizer_writer();
    w.add_kv("tokenizer.ggml.eos_token_id", GgufValue::str("3"));
    auto c = parse_bytes(serialized(w));
    EXPECT_EQ(gguf_tokenizer(*c).status().code(), StatusCode::kCorrupt);
  }
  {
    GgufWriter w = tokenizer_writer();
    w.add_kv("tokenizer.ggml.add_bos_token", GgufValue::u8(1));
    auto c = parse_bytes(serialized(w));
    EXPECT_EQ(gguf_tokenizer(*c).status().code(), StatusCode::kCorrupt);
  }
  Checkpoint st;
  st.format = Format::kSafetensors;
  EXPECT_EQ(gguf_tokenizer(st).status().code(), StatusCode::kInvalidArgument);
}

// --- hostile input -------------------------------------------------------------------------------

GgufWriter small_valid_writer() {
  GgufWriter w;
  w.add_kv("general.architecture", GgufValue::str("llama"));
  w.add_kv("llama.attention.head_count", GgufValue::u32(1));
  w.add_kv("n.nested", GgufValue::array(nested_ints()));
  w.add_kv("n.f64", GgufValue::f64(2.0));
  w.add_kv("n.strs", GgufValue::strings({"x", "yy"}));
  w.add_kv("n.bool", GgufValue::boolean(false));
  w.add_kv("n.i16", GgufValue::i16(-2));
  std::vector<float> a = {1, 2, 3, 4};
  EXPECT_TRUE(w.add_tensor("blk.0.attn_q.weight", DType::kF32, {2, 2}, as_bytes(a)).is_ok());
  std::vector<float> x(32, 0.5f);
  EXPECT_TRUE(
      w.add_tensor("q8", DType::kQ8_0, {1, 32}, *quantize(DType::kQ8_0, x.data(), 32)).is_ok());
  return w;
}

TEST(GgufHostile, EveryTruncationFailsCleanly) {
  const std::vector<uint8_t> full = serialized(small_valid_writer());
  auto whole = parse_bytes(full);
  ASSERT_TRUE(whole.is_ok()) << whole.status().to_string();
  // The last byte any tensor needs; the writer pads the file beyond it.
  uint64_t needed = 0;
  for (const TensorRef& t : whole->tensors) needed = std::max(needed, t.file_offset + t.nbytes);
  ASSERT_LT(needed, full.size() + 1);
  for (size_t len = 0; len < full.size(); ++len) {
    auto r = parse_bytes(std::vector<uint8_t>(full.begin(), full.begin() + len));
    if (len < needed) {
      ASSERT_FALSE(r.is_ok()) << "prefix of " << len << " bytes parsed";
      ASSERT_TRUE(r.status().code() == StatusCode::kCorrupt) << r.status().to_string();
    } else {
      ASSERT_TRUE(r.is_ok()) << len << ": " << r.status().to_string();
    }
  }
  EXPECT_EQ(parse_gguf(nullptr, 0, "empty").status().code(), StatusCode::kCorrupt);
}

TEST(GgufHostile, HugeCountsFailFast) {
  expect_code(parse_bytes(Bytes().header(3, uint64_t{1} << 63, 0).b), StatusCode::kCorrupt,
              "tensor count");
  expect_code(parse_bytes(Bytes().header(3, 0, uint64_t{1} << 63).b), StatusCode::kCorrupt,
              "metadata count");
  // A key of length 2^63.
  expect_code(parse_bytes(Bytes().header(3, 0, 1).u64(uint64_t{1} << 63).u32(0).u8(0).b),
              StatusCode::kCorrupt, "metadata key length");
  // A string value of length 2^63.
  expect_code(parse_bytes(Bytes().header(3, 0, 1).str("k").u32(8).u64(uint64_t{1} << 63).b),
              StatusCode::kCorrupt, "STRING value length");
  // Arrays of 2^62 elements, of each element size.
  for (uint32_t et : {0u, 4u, 8u, 9u, 12u}) {
    expect_code(
        parse_bytes(Bytes().header(3, 0, 1).str("k").u32(9).u32(et).u64(uint64_t{1} << 62).b),
        StatusCode::kCorrupt, "cannot fit");
  }
  // A string array element of length 2^63.
  expect_code(
      parse_bytes(Bytes().header(3, 0, 1).str("k").u32(9).u32(8).u64(1).u64(uint64_t{1} << 63).b),
      StatusCode::kCorrupt, "string array element");
  // A tensor name of length 2^63.
  Bytes t;
  t.header(3, 1, 0).u64(uint64_t{1} << 63);
  t.b.resize(t.b.size() + 64, 0);
  expect_code(parse_bytes(t.b), StatusCode::kCorrupt, "tensor name length");
}

Bytes nested_arrays(int levels) {
  Bytes b;
  b.header(3, 0, 1).str("deep").u32(9);
  for (int k = 1; k < levels; ++k) b.u32(9).u64(1);
  b.u32(0).u64(0);
  return b;
}

TEST(GgufHostile, NestingDepthIsLimited) {
  auto ok = parse_bytes(nested_arrays(kGgufMaxArrayDepth).b);
  ASSERT_TRUE(ok.is_ok()) << ok.status().to_string();
  expect_code(parse_bytes(nested_arrays(kGgufMaxArrayDepth + 1).b), StatusCode::kCorrupt,
              "nested deeper");
  expect_code(parse_bytes(nested_arrays(1000).b), StatusCode::kCorrupt, "nested deeper");
}

TEST(GgufHostile, BadValueTypes) {
  expect_code(parse_bytes(Bytes().header(3, 0, 1).str("k").u32(13).u8(0).b), StatusCode::kCorrupt,
              "unknown value type 13");
  expect_code(parse_bytes(Bytes().header(3, 0, 1).str("k").u32(9).u32(77).u64(0).b),
              StatusCode::kCorrupt, "unknown array element type 77");
  Bytes dup;
  dup.header(3, 0, 2).str("k").u32(0).u8(1).str("k").u32(0).u8(2);
  expect_code(parse_bytes(dup.b), StatusCode::kCorrupt, "duplicate metadata key");
}

TEST(GgufHostile, VersionsAndMagic) {
  expect_code(parse_bytes(Bytes().header(1, 0, 0).b), StatusCode::kUnsupported,
              "GGUF v1 (pre-2023) is not supported, re-convert the model");
  expect_code(parse_bytes(Bytes().header(4, 0, 0).b), StatusCode::kUnsupported, "version 4");
  expect_code(parse_bytes(Bytes().header(0x03000000u, 0, 0).b), StatusCode::kUnsupported,
              "big-endian");
  expect_code(parse_bytes(Bytes().raw("tjgg", 4).u32(3).b), StatusCode::kUnsupported, "pre-GGUF");
  expect_code(parse_bytes(Bytes().raw("PK\x03\x04", 4).u32(3).b), StatusCode::kCorrupt,
              "not a GGUF file");
  expect_code(parse_bytes(Bytes().raw("GG", 2).b), StatusCode::kCorrupt, "too short");
  // A valid v2 file with no tensors and no metadata.
  auto empty = parse_bytes(Bytes().header(2, 0, 0).b);
  ASSERT_TRUE(empty.is_ok()) << empty.status().to_string();
  EXPECT_EQ(empty->version, 2u);
  EXPECT_TRUE(empty->tensors.empty());
}

TEST(GgufHostile, UnknownTensorTypes) {
  for (auto [id, name] : {std::pair<uint32_t, const char*>{9, "Q8_1"},
                          {4, "Q4_2"},
                          {16, "IQ2_XXS"},
                          {500, "unknown"}}) {
    GgufWriter w;
    w.add_raw_tensor("blk.0.ffn_up.weight", id, {32}, std::vector<uint8_t>(64));
    auto r = parse_bytes(serialized(w));
    expect_code(r, StatusCode::kUnsupported, "blk.0.ffn_up.weight");
    EXPECT_NE(r.status().message().find(name), std::string::npos) << r.status().to_string();
    EXPECT_NE(r.status().message().find("type " + std::to_string(id)), std::string::npos);
  }
}

TEST(GgufHostile, BadTensorInfos) {
  auto with = [](uint32_t type, std::vector<uint64_t> ne, size_t bytes,
                 std::optional<uint64_t> offset = std::nullopt) {
    GgufWriter w;
    w.add_raw_tensor("t", type, std::move(ne), std::vector<uint8_t>(bytes), offset);
    return parse_bytes(serialized(w));
  };
  expect_code(with(0, {1, 1, 1, 1, 1}, 4), StatusCode::kCorrupt, "5 dimensions");
  expect_code(with(0, {}, 4), StatusCode::kCorrupt, "0 dimensions");
  expect_code(with(0, {4, 0}, 4), StatusCode::kCorrupt, "invalid dimension");
  expect_code(with(0, {uint64_t{1} << 63}, 4), StatusCode::kCorrupt, "invalid dimension");
  expect_code(with(0, {uint64_t{1} << 32, uint64_t{1} << 32}, 4), StatusCode::kCorrupt,
              "overflows");
  expect_code(with(8, {16, 2}, 68), StatusCode::kCorrupt, "not a multiple of the Q8_0 block");
  expect_code(with(12, {128, 2}, 288), StatusCode::kCorrupt, "Q4_K block size 256");
  expect_code(with(0, {4}, 16, 1), StatusCode::kCorrupt, "not a multiple of the alignment");
  expect_code(with(0, {4}, 0, uint64_t{1} << 40), StatusCode::kCorrupt, "past the end");
  expect_code(with(0, {4}, 0, uint64_t{0xffffffffffffffe0}), StatusCode::kCorrupt, "past the end");
  expect_code(with(0, {1000}, 16), StatusCode::kCorrupt, "past the end");  // data too short

  GgufWriter overlap;
  overlap.add_raw_tensor("a", 0, {32}, std::vector<uint8_t>(128));
  overlap.add_raw_tensor("b", 0, {16}, {}, 32);  // [32, 96) inside a's [0, 128)
  expect_code(parse_bytes(serialized(overlap)), StatusCode::kCorrupt, "overlap");

  GgufWriter dup;
  dup.add_raw_tensor("a", 0, {4}, std::vector<uint8_t>(16));
  dup.add_raw_tensor("a", 0, {4}, std::vector<uint8_t>(16));
  expect_code(parse_bytes(serialized(dup)), StatusCode::kCorrupt, "duplicate tensor name");
}

TEST(GgufHostile, BadAlignment) {
  for (uint32_t a : {0u, 3u, 48u}) {
    GgufWriter w;
    w.add_kv("general.alignment", GgufValue::u32(a));
    w.add_raw_tensor("t", 0, {4}, std::vector<uint8_t>(16));
    expect_code(parse_bytes(serialized(w)), StatusCode::kCorrupt, "not a nonzero power of two");
  }
  GgufWriter s;
  s.add_kv("general.alignment", GgufValue::str("32"));
  expect_code(parse_bytes(serialized(s)), StatusCode::kCorrupt, "general.alignment has type");
  // An enormous (power-of-two) alignment puts the data section past the end.
  GgufWriter big;
  big.add_kv("general.alignment", GgufValue::u64(uint64_t{1} << 63));
  big.add_raw_tensor("t", 0, {4}, {}, 0);
  expect_code(parse_bytes(serialized(big)), StatusCode::kCorrupt, "data section");
}

TEST(GgufHostile, FileErrors) {
  TempDir dir;
  EXPECT_EQ(read_gguf(dir.file("missing.gguf")).status().code(), StatusCode::kNotFound);
  testing::write_file(dir.file("v1.gguf"), Bytes().header(1, 0, 0).b);
  auto r = read_gguf(dir.file("v1.gguf"));
  EXPECT_EQ(r.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(r.status().message().find(dir.file("v1.gguf")), std::string::npos);
}

}  // namespace
}  // namespace prov::model
