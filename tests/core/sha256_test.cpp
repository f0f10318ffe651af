#include "core/sha256.h"

#include <gtest/gtest.h>

#include "core/mapped_file.h"
#include "core/thread_pool.h"
#include "tests/support/test_support.h"

namespace prov {
namespace {

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(to_hex(sha256("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(to_hex(sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Sha256 h;
  h.update("a");
  h.update("bc");
  EXPECT_EQ(to_hex(h.finish()), to_hex(sha256("abc")));
}

TEST(Sha256, FileStreamingMatchesInMemory) {
  testing::TempDir dir;
  std::string big(3 * (1 << 20) + 17, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 131 + 7);
  testing::write_file(dir.file("x"), big);
  auto d = sha256_file(dir.file("x"));
  ASSERT_TRUE(d.is_ok()) << d.status().to_string();
  EXPECT_EQ(to_hex(*d), to_hex(sha256(big)));
  EXPECT_EQ(sha256_file(dir.file("missing")).status().code(), StatusCode::kNotFound);
}

TEST(Hex, RoundTripAndErrors) {
  auto s = from_hex("00ff10");
  ASSERT_TRUE(s.is_ok());
  EXPECT_EQ(*s, std::string("\x00\xff\x10", 3));
  EXPECT_FALSE(from_hex("abc").is_ok());
  EXPECT_FALSE(from_hex("zz").is_ok());
}

TEST(MappedFile, MapsAndRejects) {
  testing::TempDir dir;
  testing::write_file(dir.file("a"), std::string("hello"));
  testing::write_file(dir.file("empty"), std::string());
  auto f = MappedFile::open(dir.file("a"));
  ASSERT_TRUE(f.is_ok());
  EXPECT_EQ((*f)->size(), 5u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>((*f)->data()), 5), "hello");
  auto e = MappedFile::open(dir.file("empty"));
  ASSERT_TRUE(e.is_ok());
  EXPECT_EQ((*e)->size(), 0u);
  EXPECT_EQ(MappedFile::open(dir.file("nope")).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(MappedFile::open(dir.path()).status().code(), StatusCode::kInvalidArgument);
}

TEST(ParallelFor, VisitsEveryIndexOnce) {
  std::vector<int> hits(1000, 0);
  parallel_for(hits.size(), 4, [&](size_t i) { hits[i]++; });
  for (int h : hits) EXPECT_EQ(h, 1);
}

}  // namespace
}  // namespace prov
