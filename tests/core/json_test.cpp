#include "core/json.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace prov {
namespace {

TEST(Json, ParsesDocumentsAndRefusesWhatTheLimitsSay) {
  auto ok = parse_json(R"({"a": [1, 2.5, "x", null, true], "b": {"c": {}}})", "doc");
  ASSERT_TRUE(ok.is_ok()) << ok.status().to_string();
  EXPECT_EQ((*ok)["a"][1], 2.5);
  EXPECT_TRUE((*ok)["b"]["c"].is_object());

  JsonFailure f;
  auto dup = parse_json(R"({"a": 1, "b": {"k": 1, "k": 2}})", "doc", {}, &f);
  ASSERT_FALSE(dup.is_ok());
  EXPECT_EQ(dup.status().code(), StatusCode::kCorrupt);
  EXPECT_EQ(f.kind, JsonFailure::kDuplicateKey);
  EXPECT_EQ(f.key, "k");
  EXPECT_NE(dup.status().message().find("duplicate key \"k\""), std::string::npos);
  JsonLimits allow;
  allow.allow_duplicate_keys = true;
  EXPECT_TRUE(parse_json(R"({"k": 1, "k": 2})", "doc", allow).is_ok());

  JsonLimits small;
  small.max_depth = 3;
  EXPECT_TRUE(parse_json("[[[1]]]", "doc", small).is_ok());
  auto deep = parse_json("[[[[1]]]]", "doc", small, &f);
  EXPECT_FALSE(deep.is_ok());
  EXPECT_EQ(f.kind, JsonFailure::kTooDeep);
  small = {};
  small.max_values = 5;
  EXPECT_FALSE(parse_json("[1,2,3,4,5,6]", "doc", small, &f).is_ok());
  EXPECT_EQ(f.kind, JsonFailure::kTooManyValues);
  small = {};
  small.max_string_bytes = 4;
  EXPECT_FALSE(parse_json(R"(["abcde"])", "doc", small, &f).is_ok());
  EXPECT_EQ(f.kind, JsonFailure::kStringTooLong);
  EXPECT_FALSE(parse_json(R"({"abcde": 1})", "doc", small, &f).is_ok());
  small = {};
  small.max_bytes = 3;
  EXPECT_FALSE(parse_json("[1,2]", "doc", small, &f).is_ok());
  EXPECT_EQ(f.kind, JsonFailure::kTooLarge);

  auto bad = parse_json(R"({"a": 1,})", "config.json", {}, &f);
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(f.kind, JsonFailure::kSyntax);
  EXPECT_NE(bad.status().message().find("config.json is not valid JSON (at byte"),
            std::string::npos)
      << bad.status().to_string();
  EXPECT_FALSE(parse_json("", "doc").is_ok());
  EXPECT_FALSE(parse_json("[1] [2]", "doc").is_ok());
  EXPECT_FALSE(parse_json("\"\xff\"", "doc").is_ok());  // invalid UTF-8
  // 10,000 levels refused without recursing that deep.
  EXPECT_FALSE(parse_json(std::string(10000, '[') + std::string(10000, ']'), "doc").is_ok());
}

// The shape that cost ~30 s through the callback parser: a 1 MB document of many small objects in
// one parent, and a long flat object. Linear: well under a second (100 ms on the dev machine).
TEST(Json, AdversarialMegabyteParsesInLinearTime) {
  std::string many = "[";
  while (many.size() < (1u << 20)) many += "{\"a\":{\"b\":1}},";
  many += "{}]";
  std::string flat = "{";
  for (int i = 0; flat.size() < (1u << 20); ++i) flat += "\"k" + std::to_string(i) + "\":[{}],";
  flat += "\"end\":0}";
  for (const std::string* doc : {&many, &flat}) {
    const auto t0 = std::chrono::steady_clock::now();
    auto j = parse_json(*doc, "doc");
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ASSERT_TRUE(j.is_ok()) << j.status().to_string();
    EXPECT_LT(s, 1.0) << doc->size() << " bytes took " << s << " s";
  }
}

}  // namespace
}  // namespace prov
