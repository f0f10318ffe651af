#include "core/status.h"

#include <gtest/gtest.h>

namespace prov {
namespace {

Result<int> half(int x) {
  if (x % 2 != 0) return invalid_argument(std::to_string(x) + " is odd");
  return x / 2;
}

Result<int> quarter(int x) {
  PROV_ASSIGN_OR_RETURN(int h, half(x));
  PROV_ASSIGN_OR_RETURN(int q, half(h));
  return q;
}

TEST(Status, OkAndError) {
  EXPECT_TRUE(Status::ok().is_ok());
  Status s = corrupt("file.bin: truncated");
  EXPECT_FALSE(s.is_ok());
  EXPECT_EQ(s.code(), StatusCode::kCorrupt);
  EXPECT_EQ(s.to_string(), "corrupt: file.bin: truncated");
  EXPECT_EQ(s.with_context("reading").message(), "reading: file.bin: truncated");
}

TEST(Result, PropagatesFirstError) {
  EXPECT_EQ(*quarter(8), 2);
  auto r = quarter(6);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "3 is odd");
}

}  // namespace
}  // namespace prov
