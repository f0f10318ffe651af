#include "core/byte_reader.h"

#include <gtest/gtest.h>

namespace prov {
namespace {

TEST(ByteReader, ReadsLittleEndianAndStopsAtTheEnd) {
  const uint8_t bytes[] = {1, 0, 0, 0, 0xff, 0xff, 'h', 'i'};
  ByteReader r(bytes, sizeof(bytes), "buf");
  uint32_t a = 0;
  int16_t b = 0;
  ASSERT_TRUE(r.read(&a, "a").is_ok());
  ASSERT_TRUE(r.read(&b, "b").is_ok());
  EXPECT_EQ(a, 1u);
  EXPECT_EQ(b, -1);
  std::string s;
  EXPECT_FALSE(r.read_string(3, &s, "name").is_ok());
  ASSERT_TRUE(r.read_string(2, &s, "name").is_ok());
  EXPECT_EQ(s, "hi");
  uint8_t c;
  Status st = r.read(&c, "tail");
  ASSERT_FALSE(st.is_ok());
  EXPECT_EQ(st.code(), StatusCode::kCorrupt);
  EXPECT_NE(st.message().find("offset 8"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("tail"), std::string::npos);
}

TEST(ByteReader, HugeLengthsDoNotOverflow) {
  const uint8_t bytes[4] = {};
  ByteReader r(bytes, 4, "buf");
  EXPECT_FALSE(r.skip(~0ull, "x").is_ok());
  EXPECT_FALSE(r.seek(5, "x").is_ok());
  uint64_t out;
  EXPECT_FALSE(checked_mul(1ull << 40, 1ull << 40, &out));
  EXPECT_TRUE(checked_mul(1ull << 20, 1ull << 20, &out));
  EXPECT_EQ(out, 1ull << 40);
  EXPECT_FALSE(checked_add(~0ull, 1, &out));
}

}  // namespace
}  // namespace prov
