#include "model/formats/safetensors.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <map>
#include <memory>
#include <set>

#include <nlohmann/json.hpp>

#include "core/mapped_file.h"
#include "tests/support/test_support.h"

namespace prov::model {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using prov::testing::TempDir;

// ---- helpers ------------------------------------------------------------------------------

// A raw safetensors file: u64 header length, header text, data.
std::string raw_file(const std::string& header, const std::string& data = "") {
  std::string out(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  return out + header + data;
}

Result<Checkpoint> parse_bytes(const std::string& bytes) {
  auto owner = std::make_shared<const std::string>(bytes);
  return parse_safetensors_buffer(owner, reinterpret_cast<const uint8_t*>(owner->data()),
                                  owner->size(), "mem.safetensors");
}

template <typename T>
void expect_error(const Result<T>& r, StatusCode code, const std::string& substring) {
  ASSERT_FALSE(r.is_ok()) << "expected failure containing '" << substring << "'";
  EXPECT_EQ(r.status().code(), code) << r.status().to_string();
  EXPECT_NE(r.status().message().find(substring), std::string::npos)
      << "message: " << r.status().message() << "\nmissing: " << substring;
}

void expect_error(const Status& s, StatusCode code, const std::string& substring) {
  ASSERT_FALSE(s.is_ok()) << "expected failure containing '" << substring << "'";
  EXPECT_EQ(s.code(), code) << s.to_string();
  EXPECT_NE(s.message().find(substring), std::string::npos)
      << "message: " << s.message() << "\nmissing: " << substring;
}

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 31 + (i >> 8));
  return v;
}

const DType kAllDtypes[] = {DType::kF64,     DType::kF32,     DType::kF16, DType::kBF16,
                            DType::kF8_E4M3, DType::kF8_E5M2, DType::kI64, DType::kI32,
                            DType::kI16,     DType::kI8,      DType::kU8,  DType::kBool};

// One entry per dtype, with assorted shapes (including a scalar and an empty tensor).
std::vector<SafetensorsEntry> every_dtype_entries() {
  std::vector<SafetensorsEntry> out;
  const std::vector<std::vector<int64_t>> shapes = {{3, 5}, {7}, {}, {2, 3, 4}, {0, 3}, {1, 1, 9}};
  int i = 0;
  for (DType t : kAllDtypes) {
    SafetensorsEntry e;
    e.name = std::string("t.") + dtype_name(t);
    e.dtype = t;
    e.shape = shapes[i % shapes.size()];
    uint64_t numel = 1;
    for (int64_t d : e.shape) numel *= d;
    e.bytes = pattern(numel * dtype_info(t).block_bytes, static_cast<uint8_t>(i));
    out.push_back(std::move(e));
    ++i;
  }
  return out;
}

void expect_matches(const Checkpoint& ckpt, const std::vector<SafetensorsEntry>& entries) {
  ASSERT_EQ(ckpt.tensors.size(), entries.size());
  for (const SafetensorsEntry& e : entries) {
    const TensorRef* t = ckpt.find(e.name);
    ASSERT_NE(t, nullptr) << e.name;
    EXPECT_EQ(t->dtype, e.dtype) << e.name;
    EXPECT_EQ(t->shape, e.shape) << e.name;
    ASSERT_EQ(t->nbytes, e.bytes.size()) << e.name;
    if (!e.bytes.empty()) {
      EXPECT_EQ(std::memcmp(t->data, e.bytes.data(), t->nbytes), 0) << e.name;
    }
    EXPECT_TRUE(t->is_plain_layout());
    EXPECT_NE(t->keep_alive, nullptr);
  }
}

// ---- round trips --------------------------------------------------------------------------

TEST(SafetensorsTest, RoundTripEveryDtypeSingleFile) {
  TempDir dir;
  const std::string path = dir.file("m.safetensors");
  auto entries = every_dtype_entries();
  ASSERT_TRUE(write_safetensors(path, entries, {{"format", "pt"}, {"note", "x\"y"}}).is_ok());
  EXPECT_FALSE(fs::exists(path + ".tmp"));

  auto r = read_safetensors(path);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  const Checkpoint& c = *r;
  EXPECT_EQ(c.format, Format::kSafetensors);
  EXPECT_EQ(c.path, path);
  EXPECT_EQ(c.files, std::vector<std::string>{path});
  expect_matches(c, entries);
  EXPECT_EQ(c.metadata, json({{"format", "pt"}, {"note", "x\"y"}}));

  // Data is laid out sorted by name, the data buffer starts 8-aligned, and tensors come back in
  // data order with consecutive offsets.
  const std::string bytes = prov::testing::read_file(path);
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ((8 + n) % 8, 0u);
  uint64_t expect_offset = 8 + n;
  for (size_t i = 0; i < c.tensors.size(); ++i) {
    if (i > 0) {
      EXPECT_LT(c.tensors[i - 1].name, c.tensors[i].name);
    }
    EXPECT_EQ(c.tensors[i].file_offset, expect_offset) << c.tensors[i].name;
    EXPECT_EQ(c.tensors[i].file, path);
    expect_offset += c.tensors[i].nbytes;
  }
  EXPECT_EQ(expect_offset, bytes.size());

  // In-memory serialisation produces the same bytes.
  auto mem = serialize_safetensors(entries, {{"format", "pt"}, {"note", "x\"y"}});
  ASSERT_TRUE(mem.is_ok());
  EXPECT_EQ(std::string(mem->begin(), mem->end()), bytes);
}

TEST(SafetensorsTest, RoundTripEveryDtypeSharded) {
  TempDir dir;
  auto entries = every_dtype_entries();
  uint64_t total = 0;
  for (const auto& e : entries) total += e.bytes.size();
  ASSERT_TRUE(write_safetensors_sharded(dir.path(), entries, 64).is_ok());

  const std::string index_path = dir.file("model.safetensors.index.json");
  json index = json::parse(prov::testing::read_file(index_path));
  EXPECT_EQ(index["metadata"]["total_size"].get<uint64_t>(), total);
  EXPECT_EQ(index["weight_map"].size(), entries.size());
  std::set<std::string> shard_names;
  for (auto& [k, v] : index["weight_map"].items()) shard_names.insert(v.get<std::string>());
  ASSERT_GT(shard_names.size(), 1u);
  const std::string n = std::to_string(shard_names.size());
  EXPECT_EQ(*shard_names.begin(), "model-00001-of-0000" + n + ".safetensors");
  EXPECT_EQ(*shard_names.rbegin(), "model-0000" + n + "-of-0000" + n + ".safetensors");

  for (const std::string& p : {dir.path(), index_path}) {
    auto r = read_safetensors(p);
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    expect_matches(*r, entries);
    EXPECT_EQ(r->files.size(), shard_names.size());
    EXPECT_EQ(r->metadata["index"]["total_size"].get<uint64_t>(), total);
    // Shards in sorted order, each tensor from the shard the index names.
    for (size_t i = 1; i < r->files.size(); ++i) EXPECT_LT(r->files[i - 1], r->files[i]);
    for (const TensorRef& t : r->tensors) {
      EXPECT_EQ(fs::path(t.file).filename().string(),
                index["weight_map"][t.name].get<std::string>());
    }
  }
}

TEST(SafetensorsTest, ShardedWriterGivesOversizedTensorItsOwnShard) {
  TempDir dir;
  std::vector<SafetensorsEntry> entries = {
      {"a", DType::kU8, {4}, pattern(4, 1)},
      {"big", DType::kU8, {100}, pattern(100, 2)},
      {"c", DType::kU8, {4}, pattern(4, 3)},
  };
  ASSERT_TRUE(write_safetensors_sharded(dir.path(), entries, 10).is_ok());
  EXPECT_TRUE(fs::exists(dir.file("model-00003-of-00003.safetensors")));
  auto r = read_safetensors(dir.path());
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  expect_matches(*r, entries);
}

TEST(SafetensorsTest, ZeroCopyIntoTheMapping) {
  TempDir dir;
  const std::string path = dir.file("z.safetensors");
  auto entries = every_dtype_entries();
  ASSERT_TRUE(write_safetensors(path, entries).is_ok());
  auto r = read_safetensors(path);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  const std::string bytes = prov::testing::read_file(path);
  for (const TensorRef& t : r->tensors) {
    auto mapping = std::static_pointer_cast<const MappedFile>(t.keep_alive);
    ASSERT_NE(mapping, nullptr);
    EXPECT_EQ(mapping->path(), path);
    EXPECT_EQ(t.data, mapping->data() + t.file_offset) << t.name;
    ASSERT_LE(t.file_offset + t.nbytes, bytes.size());
    EXPECT_EQ(std::memcmp(t.data, bytes.data() + t.file_offset, t.nbytes), 0) << t.name;
  }
  // The tensors keep the mapping alive after the checkpoint is gone.
  TensorRef kept = r->tensors.front();
  *r = Checkpoint();
  auto f = to_float32(kept);
  EXPECT_TRUE(f.is_ok() || f.status().code() == StatusCode::kUnsupported);
}

TEST(SafetensorsTest, BufferParseIsZeroCopy) {
  auto bytes = serialize_safetensors({{"w", DType::kF32, {2}, pattern(8, 5)}});
  ASSERT_TRUE(bytes.is_ok());
  auto owner = std::make_shared<std::vector<uint8_t>>(std::move(*bytes));
  auto r = parse_safetensors_buffer(owner, owner->data(), owner->size(), "buf");
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  const TensorRef& t = r->tensors.at(0);
  EXPECT_EQ(t.data, owner->data() + t.file_offset);
  EXPECT_EQ(t.keep_alive.get(), owner.get());
  EXPECT_EQ(t.file, "buf");
  EXPECT_EQ(r->files, std::vector<std::string>{"buf"});
}

TEST(SafetensorsTest, MisalignedOffsetsAreRead) {
  // A one-byte U8 tensor first pushes the F32 tensor to an odd offset.
  float values[3] = {1.5f, -2.0f, 0.25f};
  std::string data(1, '\x07');
  data.append(reinterpret_cast<const char*>(values), 12);
  auto r = parse_bytes(raw_file(R"({"b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                                R"("f":{"dtype":"F32","shape":[3],"data_offsets":[1,13]}})",
                                data));
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  ASSERT_EQ(r->tensors.size(), 2u);
  EXPECT_EQ(r->tensors[0].name, "b");
  auto f = to_float32(*r->find("f"));
  ASSERT_TRUE(f.is_ok()) << f.status().to_string();
  EXPECT_EQ(*f, std::vector<float>({1.5f, -2.0f, 0.25f}));
}

TEST(SafetensorsTest, TensorsComeInDataOrderNotHeaderOrder) {
  std::string data(8, '\0');
  auto r = parse_bytes(
      raw_file(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[4,8]},)"
               R"("z":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
               R"("__metadata__":null, "e":{"dtype":"F32","shape":[0],"data_offsets":[8,8]}}   )",
               data));
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  ASSERT_EQ(r->tensors.size(), 3u);
  EXPECT_EQ(r->tensors[0].name, "z");
  EXPECT_EQ(r->tensors[1].name, "a");
  EXPECT_EQ(r->tensors[2].name, "e");
  EXPECT_EQ(r->tensors[2].nbytes, 0u);
}

TEST(SafetensorsTest, DirectoryPrefersIndex) {
  TempDir dir;
  ASSERT_TRUE(
      write_safetensors(dir.file("model.safetensors"), {{"single", DType::kU8, {1}, {1}}}).is_ok());
  auto r = read_safetensors(dir.path());
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_NE(r->find("single"), nullptr);
  EXPECT_EQ(r->files, std::vector<std::string>{dir.file("model.safetensors")});
  EXPECT_EQ(r->path, dir.path());

  ASSERT_TRUE(
      write_safetensors_sharded(dir.path(), {{"sharded", DType::kU8, {1}, {2}}}, 1 << 20).is_ok());
  r = read_safetensors(dir.path());
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->find("single"), nullptr);
  EXPECT_NE(r->find("sharded"), nullptr);
  EXPECT_TRUE(r->metadata.contains("index"));
}

// ---- golden files -------------------------------------------------------------------------

std::string hf_model(const std::string& name) {
  return prov::testing::fixtures_dir() + "/hf/models/" + name;
}

TEST(SafetensorsGoldenTest, Llama) {
  PROV_REQUIRE_FIXTURES();
  const std::string path = hf_model("llama") + "/model.safetensors";
  auto r = read_safetensors(path);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->tensors.size(), 21u);
  EXPECT_EQ(r->metadata["format"], "pt");
  const TensorRef* embed = r->find("model.embed_tokens.weight");
  ASSERT_NE(embed, nullptr);
  EXPECT_EQ(embed->dtype, DType::kF32);
  EXPECT_EQ(embed->shape, std::vector<int64_t>({1024, 64}));
  EXPECT_EQ(embed->nbytes, 1024u * 64 * 4);
  const TensorRef* head = r->find("lm_head.weight");
  ASSERT_NE(head, nullptr);
  EXPECT_EQ(head->shape, std::vector<int64_t>({1024, 64}));
  EXPECT_EQ(r->tensors.front().name, "lm_head.weight");  // first in the data buffer
  const TensorRef* down = r->find("model.layers.1.mlp.down_proj.weight");
  ASSERT_NE(down, nullptr);
  EXPECT_EQ(down->shape, std::vector<int64_t>({64, 160}));
  const TensorRef* k = r->find("model.layers.0.self_attn.k_proj.weight");
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->shape, std::vector<int64_t>({32, 64}));

  auto values = to_float32(*embed);
  ASSERT_TRUE(values.is_ok());
  double sum_sq = 0;
  for (float v : *values) {
    ASSERT_TRUE(std::isfinite(v));
    sum_sq += double(v) * v;
  }
  const double rms = std::sqrt(sum_sq / values->size());
  EXPECT_GT(rms, 0.04);  // N(0, 0.08) weights
  EXPECT_LT(rms, 0.16);
}

TEST(SafetensorsGoldenTest, LlamaShardedBf16) {
  PROV_REQUIRE_FIXTURES();
  const std::string dir = hf_model("llama_sharded_bf16");
  json index = json::parse(prov::testing::read_file(dir + "/model.safetensors.index.json"));
  for (const std::string& p : {dir, dir + "/model.safetensors.index.json"}) {
    auto r = read_safetensors(p);
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    EXPECT_EQ(r->files.size(), 4u);
    EXPECT_EQ(fs::path(r->files[0]).filename(), "model-00001-of-00004.safetensors");
    EXPECT_EQ(fs::path(r->files[3]).filename(), "model-00004-of-00004.safetensors");
    EXPECT_EQ(r->tensors.size(), index["weight_map"].size());
    uint64_t total = 0;
    for (const TensorRef& t : r->tensors) {
      EXPECT_EQ(t.dtype, DType::kBF16) << t.name;
      EXPECT_EQ(fs::path(t.file).filename().string(),
                index["weight_map"][t.name].get<std::string>());
      total += t.nbytes;
    }
    EXPECT_EQ(total, index["metadata"]["total_size"].get<uint64_t>());
    EXPECT_EQ(r->metadata["index"], index["metadata"]);
    EXPECT_EQ(r->metadata["format"], "pt");
    const TensorRef* embed = r->find("model.embed_tokens.weight");
    ASSERT_NE(embed, nullptr);
    EXPECT_EQ(embed->shape, std::vector<int64_t>({1024, 64}));
    EXPECT_NE(r->find("lm_head.weight"), nullptr);
  }
}

TEST(SafetensorsGoldenTest, Qwen3TiedHasNoLmHead) {
  PROV_REQUIRE_FIXTURES();
  auto r = read_safetensors(hf_model("qwen3"));
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->find("lm_head.weight"), nullptr);
  ASSERT_NE(r->find("model.embed_tokens.weight"), nullptr);
  const TensorRef* qn = r->find("model.layers.0.self_attn.q_norm.weight");
  ASSERT_NE(qn, nullptr);
  EXPECT_EQ(qn->shape, std::vector<int64_t>({32}));
  const TensorRef* q = r->find("model.layers.0.self_attn.q_proj.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->shape, std::vector<int64_t>({128, 64}));
}

// ---- hostile and broken input -------------------------------------------------------------

TEST(SafetensorsBadInputTest, EmptyAndShortFiles) {
  TempDir dir;
  prov::testing::write_file(dir.file("empty.safetensors"), std::string());
  expect_error(read_safetensors(dir.file("empty.safetensors")), StatusCode::kCorrupt,
               "empty.safetensors: file is 0 bytes, too short");
  prov::testing::write_file(dir.file("seven.safetensors"), std::string(7, '\x01'));
  expect_error(read_safetensors(dir.file("seven.safetensors")), StatusCode::kCorrupt,
               "file is 7 bytes, too short");
}

TEST(SafetensorsBadInputTest, HeaderLength) {
  // Past the end of the file.
  std::string f = raw_file("{}");
  uint64_t n = 100;
  std::memcpy(f.data(), &n, 8);
  expect_error(parse_bytes(f), StatusCode::kCorrupt,
               "header length 100 (at offset 0) runs past the end of the file (10 bytes)");
  // 2^63.
  n = uint64_t{1} << 63;
  std::memcpy(f.data(), &n, 8);
  expect_error(parse_bytes(f), StatusCode::kCorrupt,
               "header length 9223372036854775808 (at offset 0) runs past the end");
}

TEST(SafetensorsBadInputTest, HeaderOverTheLimit) {
  // A sparse file big enough to hold a 100 MB + 1 header.
  TempDir dir;
  const std::string path = dir.file("huge.safetensors");
  const uint64_t n = kSafetensorsMaxHeaderBytes + 1;
  std::string head(8, '\0');
  std::memcpy(head.data(), &n, 8);
  prov::testing::write_file(path, head + "{");
  fs::resize_file(path, 8 + n + 16);
  expect_error(read_safetensors(path), StatusCode::kCorrupt,
               "header length 100000001 exceeds the limit of 100000000 bytes");
}

TEST(SafetensorsBadInputTest, HeaderNotJson) {
  expect_error(parse_bytes(raw_file("{not json}")), StatusCode::kCorrupt,
               "mem.safetensors: header is not valid JSON");
  expect_error(parse_bytes(raw_file("")), StatusCode::kCorrupt, "header is not valid JSON");
  expect_error(parse_bytes(raw_file("{\"a\": \"\xff\"}")), StatusCode::kCorrupt,
               "header is not valid JSON");
}

TEST(SafetensorsBadInputTest, HeaderNotAnObject) {
  expect_error(parse_bytes(raw_file("[1, 2]")), StatusCode::kCorrupt,
               "header (file offset 8) is a JSON array, expected an object");
  expect_error(parse_bytes(raw_file("\"x\"")), StatusCode::kCorrupt, "is a JSON string");
}

TEST(SafetensorsBadInputTest, DeepNesting) {
  expect_error(parse_bytes(raw_file(std::string(100000, '['))), StatusCode::kCorrupt,
               "nesting is deeper than 64 levels");
  std::string nested = "{\"a\":";
  for (int i = 0; i < 70; ++i) nested += "{\"b\":";
  expect_error(parse_bytes(raw_file(nested)), StatusCode::kCorrupt, "deeper than 64");
}

TEST(SafetensorsBadInputTest, DuplicateKeys) {
  expect_error(parse_bytes(raw_file(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                                    R"("a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                                    "xy")),
               StatusCode::kCorrupt, "duplicate key \"a\"");
  expect_error(parse_bytes(raw_file(
                   R"({"a":{"dtype":"U8","dtype":"I8","shape":[1],"data_offsets":[0,1]}})", "x")),
               StatusCode::kCorrupt, "duplicate key \"dtype\"");
}

TEST(SafetensorsBadInputTest, UnknownDtype) {
  expect_error(
      parse_bytes(raw_file(R"({"w":{"dtype":"U16","shape":[2],"data_offsets":[0,4]}})", "abcd")),
      StatusCode::kUnsupported, "tensor \"w\": dtype \"U16\" is not supported");
  expect_error(
      parse_bytes(raw_file(R"({"w":{"dtype":7,"shape":[2],"data_offsets":[0,4]}})", "abcd")),
      StatusCode::kCorrupt, "\"dtype\" is a JSON number");
}

TEST(SafetensorsBadInputTest, BadShapes) {
  expect_error(
      parse_bytes(raw_file(R"({"w":{"dtype":"U8","shape":[-1,4],"data_offsets":[0,4]}})", "abcd")),
      StatusCode::kCorrupt, "tensor \"w\": shape dimension 0 is negative (-1)");
  expect_error(
      parse_bytes(raw_file(R"({"w":{"dtype":"U8","shape":[2.5],"data_offsets":[0,4]}})", "abcd")),
      StatusCode::kCorrupt, "shape dimension 0 is 2.5, not a non-negative integer");
  expect_error(
      parse_bytes(raw_file(
          R"({"w":{"dtype":"U8","shape":[1099511627776,1099511627776],"data_offsets":[0,4]}})",
          "abcd")),
      StatusCode::kCorrupt, "tensor \"w\": the element count of its shape overflows 64 bits");
  // A zero dimension does not hide an overflowing product of the others.
  expect_error(
      parse_bytes(raw_file(
          R"({"w":{"dtype":"U8","shape":[0,4294967296,4294967296],"data_offsets":[0,0]}})")),
      StatusCode::kCorrupt, "overflows 64 bits");
  expect_error(
      parse_bytes(raw_file(R"({"w":{"dtype":"U8","shape":3,"data_offsets":[0,3]}})", "abc")),
      StatusCode::kCorrupt, "\"shape\" is a JSON number, not an array");
  expect_error(parse_bytes(raw_file(R"({"w":{"dtype":"U8","data_offsets":[0,3]}})", "abc")),
               StatusCode::kCorrupt, "missing \"shape\"");
  expect_error(parse_bytes(raw_file(R"({"w":[1,2]})")), StatusCode::kCorrupt,
               "tensor \"w\": expected an object");
}

TEST(SafetensorsBadInputTest, BadDataOffsets) {
  expect_error(
      parse_bytes(raw_file(R"({"w":{"dtype":"U8","shape":[4],"data_offsets":[0,8]}})", "abcd")),
      StatusCode::kCorrupt,
      "tensor \"w\": data_offsets [0, 8] run past the end of the data buffer (4 bytes");
  expect_error(
      parse_bytes(raw_file(R"({"w":{"dtype":"U8","shape":[0],"data_offsets":[4,2]}})", "abcd")),
      StatusCode::kCorrupt, "tensor \"w\": data_offsets [4, 2] end before they begin");
  expect_error(
      parse_bytes(raw_file(R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}})",
                           std::string(16, '\0'))),
      StatusCode::kCorrupt,
      "tensor \"w\": data_offsets [0, 12] hold 12 bytes but shape [2, 2] of F32 needs 16 bytes");
  expect_error(parse_bytes(raw_file(R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[0]}})", "a")),
               StatusCode::kCorrupt, "\"data_offsets\" must be two non-negative integers");
  expect_error(
      parse_bytes(raw_file(R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[-1,0]}})", "a")),
      StatusCode::kCorrupt, "\"data_offsets\" must be two non-negative integers");
  expect_error(
      parse_bytes(raw_file(
          R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[18446744073709551615,0]}})", "a")),
      StatusCode::kCorrupt, "end before they begin");
}

TEST(SafetensorsBadInputTest, OverlappingTensors) {
  expect_error(parse_bytes(raw_file(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                                    R"("b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})",
                                    std::string(24, '\0'))),
               StatusCode::kCorrupt,
               "tensors \"a\" (data_offsets [0, 16]) and \"b\" (data_offsets [8, 24]) overlap");
  // A tensor inside another, after a shorter one that starts at the same place.
  expect_error(parse_bytes(raw_file(R"({"a":{"dtype":"U8","shape":[16],"data_offsets":[0,16]},)"
                                    R"("b":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
                                    R"("c":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}})",
                                    std::string(16, '\0'))),
               StatusCode::kCorrupt, "overlap");
}

TEST(SafetensorsBadInputTest, BadMetadata) {
  expect_error(parse_bytes(raw_file(R"({"__metadata__":{"format":1}})")), StatusCode::kCorrupt,
               "\"__metadata__\" entry \"format\" is a JSON number, expected a string");
  expect_error(parse_bytes(raw_file(R"({"__metadata__":[]})")), StatusCode::kCorrupt,
               "\"__metadata__\" is a JSON array");
}

TEST(SafetensorsBadInputTest, NotFound) {
  TempDir dir;
  expect_error(read_safetensors(dir.file("nope.safetensors")), StatusCode::kNotFound,
               "nope.safetensors");
  expect_error(read_safetensors(dir.path()), StatusCode::kNotFound,
               "neither model.safetensors.index.json nor model.safetensors");
}

// A directory with one real shard "s.safetensors" holding tensor "a", and an index written from
// `weight_map`.
struct IndexFixture {
  TempDir dir;
  std::string index;
  IndexFixture(std::initializer_list<std::pair<const std::string, std::string>> weight_map) {
    EXPECT_TRUE(
        write_safetensors(dir.file("s.safetensors"), {{"a", DType::kU8, {2}, {1, 2}}}).is_ok());
    index = dir.file("model.safetensors.index.json");
    prov::testing::write_file(index,
                              json({{"metadata", {{"total_size", 2}}},
                                    {"weight_map", std::map<std::string, std::string>(weight_map)}})
                                  .dump());
  }
};

TEST(SafetensorsBadInputTest, IndexMissingShard) {
  IndexFixture f{{"a", "s.safetensors"}, {"b", "gone.safetensors"}};
  expect_error(read_safetensors(f.index), StatusCode::kNotFound,
               "shard \"gone.safetensors\" named in the weight_map (for \"b\") is missing");
}

TEST(SafetensorsBadInputTest, IndexShardOutsideDirectory) {
  IndexFixture f{{"a", "../x.safetensors"}};
  expect_error(read_safetensors(f.index), StatusCode::kCorrupt,
               "names shard \"../x.safetensors\", which leaves the index's directory");
  IndexFixture g{{"a", "sub/../../x.safetensors"}};
  expect_error(read_safetensors(g.index), StatusCode::kCorrupt, "leaves the index's directory");
  IndexFixture h{{"a", "/etc/passwd"}};
  expect_error(read_safetensors(h.index), StatusCode::kCorrupt, "an absolute path");
}

TEST(SafetensorsBadInputTest, IndexNamesTensorAbsentFromShard) {
  IndexFixture f{{"a", "s.safetensors"}, {"ghost", "s.safetensors"}};
  expect_error(read_safetensors(f.dir.path()), StatusCode::kNotFound,
               "tensor \"ghost\" is mapped to shard \"s.safetensors\", which does not hold it");
}

TEST(SafetensorsBadInputTest, IndexInconsistentWithShards) {
  // The shard holds "a" but the map omits it.
  IndexFixture f{{"b", "s.safetensors"}};
  expect_error(read_safetensors(f.index), StatusCode::kCorrupt,
               "holds tensor \"a\", which the index's weight_map does not list");
  // The map assigns "a" to another shard than the one holding it.
  IndexFixture g{{"a", "t.safetensors"}};
  ASSERT_TRUE(write_safetensors(g.dir.file("t.safetensors"),
                                {{"a", DType::kU8, {1}, {1}}, {"z", DType::kU8, {1}, {1}}})
                  .is_ok());
  prov::testing::write_file(
      g.index, json({{"weight_map", {{"a", "t.safetensors"}, {"y", "s.safetensors"}}}}).dump());
  expect_error(read_safetensors(g.index), StatusCode::kCorrupt,
               "s.safetensors: holds tensor \"a\", which " + g.index +
                   " assigns to shard \"t.safetensors\"");
  // "a" stored in two shards.
  prov::testing::write_file(
      g.index, json({{"weight_map", {{"a", "s.safetensors"}, {"z", "t.safetensors"}}}}).dump());
  expect_error(read_safetensors(g.index), StatusCode::kCorrupt,
               "tensor \"a\" is stored in both shard \"s.safetensors\" and shard "
               "\"t.safetensors\"");
  // Broken index files.
  prov::testing::write_file(g.index, "[]");
  expect_error(read_safetensors(g.index), StatusCode::kCorrupt, "index is a JSON array");
  prov::testing::write_file(g.index, R"({"weight_map":{}})");
  expect_error(read_safetensors(g.index), StatusCode::kCorrupt, "\"weight_map\" is empty");
  prov::testing::write_file(g.index, R"({"weight_map":{"a":3}})");
  expect_error(read_safetensors(g.index), StatusCode::kCorrupt,
               "weight_map entry \"a\" is a JSON number");
  prov::testing::write_file(g.index, "");
  expect_error(read_safetensors(g.index), StatusCode::kCorrupt, "is not valid JSON");
  prov::testing::write_file(g.index, R"({"metadata":{}})");
  expect_error(read_safetensors(g.index), StatusCode::kCorrupt, "has no \"weight_map\"");
}

TEST(SafetensorsBadInputTest, CorruptShardNamesItsFile) {
  IndexFixture f{{"a", "s.safetensors"}};
  prov::testing::write_file(f.dir.file("s.safetensors"), std::string(3, '\0'));
  expect_error(read_safetensors(f.index), StatusCode::kCorrupt,
               "s.safetensors: file is 3 bytes, too short");
}

// ---- writer validation --------------------------------------------------------------------

TEST(SafetensorsWriterTest, RejectsInconsistentEntries) {
  TempDir dir;
  const std::string path = dir.file("w.safetensors");
  expect_error(write_safetensors(path, {{"w", DType::kF32, {2, 2}, pattern(15, 0)}}),
               StatusCode::kInvalidArgument, "15 bytes given, shape [2, 2] of F32 needs 16");
  expect_error(write_safetensors(path, {{"w", DType::kF32, {-2}, {}}}),
               StatusCode::kInvalidArgument, "negative dimension");
  expect_error(write_safetensors(path, {{"w", DType::kQ4_0, {32}, pattern(18, 0)}}),
               StatusCode::kInvalidArgument, "dtype Q4_0 cannot be stored in safetensors");
  expect_error(write_safetensors(path, {{"w", DType::kU8, {1}, {1}}, {"w", DType::kU8, {1}, {1}}}),
               StatusCode::kInvalidArgument, "duplicate tensor name \"w\"");
  expect_error(write_safetensors(path, {{"__metadata__", DType::kU8, {1}, {1}}}),
               StatusCode::kInvalidArgument, "reserved");
  expect_error(write_safetensors(path, {{"", DType::kU8, {1}, {1}}}), StatusCode::kInvalidArgument,
               "empty name");
  expect_error(write_safetensors(path, {{"bad\xff", DType::kU8, {1}, {1}}}),
               StatusCode::kInvalidArgument, "not valid UTF-8");
  expect_error(write_safetensors_sharded(dir.path(), {{"w", DType::kU8, {1}, {1}}}, 0),
               StatusCode::kInvalidArgument, "max_shard_bytes");
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".tmp"));
}

TEST(SafetensorsWriterTest, IoErrorLeavesNothingBehind) {
  TempDir dir;
  const std::string path = dir.file("no/such/dir/w.safetensors");
  expect_error(write_safetensors(path, {{"w", DType::kU8, {1}, {1}}}), StatusCode::kIo,
               "cannot create");
}

TEST(SafetensorsWriterTest, OverwritesAtomically) {
  TempDir dir;
  const std::string path = dir.file("w.safetensors");
  ASSERT_TRUE(write_safetensors(path, {{"old", DType::kU8, {1}, {1}}}).is_ok());
  ASSERT_TRUE(write_safetensors(path, {{"new", DType::kU8, {2}, {1, 2}}}).is_ok());
  auto r = read_safetensors(path);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->find("old"), nullptr);
  EXPECT_NE(r->find("new"), nullptr);
  EXPECT_FALSE(fs::exists(path + ".tmp"));
}

TEST(SafetensorsWriterTest, EmptyCheckpointRoundTrips) {
  auto bytes = serialize_safetensors({});
  ASSERT_TRUE(bytes.is_ok());
  EXPECT_EQ(bytes->size(), 16u);  // length + "{}" padded to 8
  auto r = parse_safetensors_buffer(nullptr, bytes->data(), bytes->size(), "empty");
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_TRUE(r->tensors.empty());
}

}  // namespace
}  // namespace prov::model
