#include "probes/suite.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "core/sha256.h"
#include "tests/support/test_support.h"

namespace prov::probes {
namespace {

bool same_probe(const Probe& a, const Probe& b) {
  return a.id == b.id && a.text == b.text && a.ids == b.ids && a.top_k == b.top_k &&
         a.full_stats == b.full_stats && a.greedy_tokens == b.greedy_tokens &&
         a.continuation == b.continuation && a.score_texts == b.score_texts;
}

void expect_same_suite(const Suite& a, const Suite& b) {
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.version, b.version);
  EXPECT_EQ(a.description, b.description);
  ASSERT_EQ(a.probes.size(), b.probes.size());
  for (size_t i = 0; i < a.probes.size(); ++i) {
    EXPECT_TRUE(same_probe(a.probes[i], b.probes[i])) << "probe " << i;
  }
}

Suite small_suite() {
  Suite s;
  s.name = "demo";
  s.version = "2";
  s.description = "a small suite";
  Probe a;
  a.id = "p1";
  a.text = "The cat";
  a.greedy_tokens = 16;
  a.continuation = " sat on the mat";
  a.score_texts = {" sat", " ran"};
  Probe b;
  b.id = "r1";
  b.ids = std::vector<int32_t>{1, 523, 77};
  b.top_k = 5;
  b.full_stats = false;
  s.probes = {a, b};
  return s;
}

const char* kSmallCanonical =
    R"({"description":"a small suite","suite":"demo","version":"2"})"
    "\n"
    R"({"continuation":" sat on the mat","full_stats":true,"greedy_tokens":16,"id":"p1",)"
    R"("score_texts":[" sat"," ran"],"text":"The cat","top_k":20})"
    "\n"
    R"({"continuation":null,"full_stats":false,"greedy_tokens":0,"id":"r1","ids":[1,523,77],)"
    R"("score_texts":[],"top_k":5})"
    "\n";

Result<Suite> parse(const std::string& text) {
  return parse_suite_jsonl(text, "t.jsonl");
}

const std::string kHeader = "{\"suite\":\"s\",\"version\":\"1\"}\n";

// Parses a header plus `probe_line` (line 2) and expects `code` with `needle` in the message.
void expect_probe_error(const std::string& probe_line, StatusCode code, const std::string& needle) {
  auto r = parse(kHeader + probe_line + "\n");
  ASSERT_FALSE(r.is_ok()) << probe_line;
  EXPECT_EQ(r.status().code(), code) << r.status().to_string();
  EXPECT_NE(r.status().message().find("t.jsonl:2: "), std::string::npos) << r.status().to_string();
  EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().to_string();
}

TEST(SuiteCanonical, ExactBytesSortedKeysDefaultsWritten) {
  EXPECT_EQ(canonical_jsonl(small_suite()), kSmallCanonical);
  EXPECT_EQ(suite_digest(small_suite()), to_hex(sha256(std::string(kSmallCanonical))));
  EXPECT_TRUE(validate_suite(small_suite()).is_ok());
}

TEST(SuiteCanonical, CanonicalBytesParseBackToTheSameSuite) {
  auto r = parse(kSmallCanonical);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  expect_same_suite(*r, small_suite());
  EXPECT_EQ(canonical_jsonl(*r), kSmallCanonical);
}

TEST(SuiteCanonical, KeyOrderWhitespaceBlankLinesAndDefaultsDoNotChangeTheDigest) {
  const std::string input =
      "\n  \t\r\n"
      "{ \"version\" : \"2\",\t\"description\": \"a small suite\", \"suite\": \"demo\" }\r\n"
      "\n"
      "{\"text\": \"The cat\", \"score_texts\": [\" sat\", \" ran\"], \"greedy_tokens\": 16, "
      "\"continuation\": \" sat on the mat\", \"id\": \"p1\"}\n"
      "   \n"
      "{\"id\":\"r1\",\"top_k\":5,\"full_stats\":false,\"ids\":[ 1, 523 , 77 ], "
      "\"continuation\": null, \"score_texts\": []}";  // no final newline
  auto r = parse(input);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(suite_digest(*r), suite_digest(small_suite()));
  EXPECT_EQ(canonical_jsonl(*r), kSmallCanonical);
}

TEST(SuiteCanonical, EveryFieldChangesTheDigest) {
  std::vector<Suite> variants;
  variants.push_back(small_suite());
  auto vary = [&](auto edit) {
    Suite s = small_suite();
    edit(s);
    ASSERT_TRUE(validate_suite(s).is_ok()) << validate_suite(s).to_string();
    variants.push_back(s);
  };
  vary([](Suite& s) { s.name = "demo2"; });
  vary([](Suite& s) { s.version = "3"; });
  vary([](Suite& s) { s.description = ""; });
  vary([](Suite& s) { s.probes[0].id = "p2"; });
  vary([](Suite& s) { s.probes[0].text = "The cat "; });
  vary([](Suite& s) { s.probes[1].ids = std::vector<int32_t>{1, 523, 78}; });
  vary([](Suite& s) { s.probes[1].ids = std::vector<int32_t>{1, 523}; });
  vary([](Suite& s) { s.probes[0].top_k = 21; });
  vary([](Suite& s) { s.probes[0].top_k = 0; });
  vary([](Suite& s) { s.probes[0].full_stats = false; });
  vary([](Suite& s) { s.probes[0].greedy_tokens = 17; });
  vary([](Suite& s) { s.probes[0].continuation.reset(); });
  vary([](Suite& s) { s.probes[1].continuation = ""; });  // "" is not absent
  vary([](Suite& s) { s.probes[0].score_texts = {" ran", " sat"}; });
  vary([](Suite& s) { s.probes[0].score_texts.clear(); });
  vary([](Suite& s) { s.probes[1].score_texts = {""}; });
  vary([](Suite& s) { std::swap(s.probes[0], s.probes[1]); });
  vary([](Suite& s) { s.probes.pop_back(); });
  vary([](Suite& s) {  // text "[1]" vs ids [1]: the key differs, not just the value
    s.probes[1].ids.reset();
    s.probes[1].text = "[1,523,77]";
  });
  std::set<std::string> digests;
  for (const Suite& s : variants) digests.insert(suite_digest(s));
  EXPECT_EQ(digests.size(), variants.size());
}

TEST(SuiteCanonical, NonAsciiTextIsWrittenAsUtf8AndEscapesAreCanonical) {
  auto a = parse(kHeader + "{\"id\":\"u\",\"text\":\"caf\\u00e9 \\\"q\\\"\\n\\t\"}\n");
  auto b = parse(kHeader + "{\"id\":\"u\",\"text\":\"caf\xc3\xa9 \\\"q\\\"\\u000a\\u0009\"}\n");
  ASSERT_TRUE(a.is_ok()) << a.status().to_string();
  ASSERT_TRUE(b.is_ok()) << b.status().to_string();
  EXPECT_EQ(*a->probes[0].text, "caf\xc3\xa9 \"q\"\n\t");
  EXPECT_EQ(suite_digest(*a), suite_digest(*b));
  EXPECT_NE(canonical_jsonl(*a).find("\"text\":\"caf\xc3\xa9 \\\"q\\\"\\n\\t\""), std::string::npos)
      << canonical_jsonl(*a);
}

TEST(SuiteParse, ProbeErrorsNameTheLineAndTheProblem) {
  const auto bad = StatusCode::kInvalidArgument;
  expect_probe_error(R"({"id":"a","text":"x","topk":3})", bad, "unknown key \"topk\"");
  expect_probe_error(R"({"id":"a","text":"x","ids":[1]})", bad, "both \"text\" and \"ids\"");
  expect_probe_error(R"({"id":"a"})", bad, "neither \"text\" nor \"ids\"");
  expect_probe_error(R"({"text":"x"})", bad, "no \"id\"");
  expect_probe_error(R"({"id":"","text":"x"})", bad, "\"id\" must not be empty");
  expect_probe_error("{\"id\":\"" + std::string(kMaxProbeIdBytes + 1, 'x') + "\",\"text\":\"x\"}",
                     bad, "more than the limit");
  expect_probe_error(R"({"id":7,"text":"x"})", bad, "\"id\" must be a string");
  expect_probe_error(R"({"id":"a","text":""})", bad, "\"text\" must not be empty");
  expect_probe_error(R"({"id":"a","text":["x"]})", bad, "\"text\" must be a string");
  expect_probe_error(R"({"id":"a","ids":[]})", bad, "\"ids\" must not be empty");
  expect_probe_error(R"({"id":"a","ids":[1,-2]})", bad, "ids[1]");
  expect_probe_error(R"({"id":"a","ids":[2147483648]})", bad, "out of range");
  expect_probe_error(R"({"id":"a","ids":[1.5]})", bad, "must be an integer");
  expect_probe_error(R"({"id":"a","ids":"1 2"})", bad, "must be an array");
  expect_probe_error(R"({"id":"a","text":"x","top_k":1001})", bad,
                     "t.jsonl:2: probe \"a\": \"top_k\" 1001 is out of range 0..1000");
  expect_probe_error(R"({"id":"a","text":"x","top_k":-1})", bad, "out of range 0..1000");
  expect_probe_error(R"({"id":"a","text":"x","top_k":20.0})", bad, "must be an integer");
  expect_probe_error(R"({"id":"a","text":"x","top_k":"20"})", bad, "must be an integer");
  expect_probe_error(R"({"id":"a","text":"x","top_k":18446744073709551615})", bad, "out of range");
  expect_probe_error(R"({"id":"a","text":"x","greedy_tokens":4097})", bad, "0..4096");
  expect_probe_error(R"({"id":"a","text":"x","full_stats":1})", bad, "true or false");
  expect_probe_error(R"({"id":"a","text":"x","continuation":5})", bad, "\"continuation\"");
  expect_probe_error(R"({"id":"a","text":"x","score_texts":"s"})", bad, "array of strings");
  expect_probe_error(R"({"id":"a","text":"x","score_texts":["s",1]})", bad, "score_texts[1]");
  expect_probe_error(R"({"id":"a","text":"x","id":"b"})", bad, "\"id\" appears twice");
  expect_probe_error(R"(["id","a"])", bad, "expected a JSON object");
  // Not JSON at all: kCorrupt.
  expect_probe_error(R"({"id":"a","text":"x",})", StatusCode::kCorrupt, "not valid JSON");
  expect_probe_error("{\"id\":\"a\",\"text\":\"\xff\"}", StatusCode::kCorrupt, "not valid JSON");
  expect_probe_error("{\"id\":\"a\",\"text\":\"\xed\xa0\x80\"}", StatusCode::kCorrupt,
                     "not valid JSON");  // UTF-8-encoded surrogate
  expect_probe_error(R"({"id":"a","text":"\ud800"})", StatusCode::kCorrupt, "not valid JSON");
  expect_probe_error(R"({"id":"a","text":"x","score_texts":[[[[[[[[["deep"]]]]]]]]]})",
                     StatusCode::kCorrupt, "nested deeper than 8");
}

TEST(SuiteParse, DepthIsCountedOutsideStringsOnly) {
  // Brackets inside a string do not count towards the nesting limit.
  auto r = parse(kHeader + R"({"id":"a","text":"[[[[[[[[[[{{{{{{{{{{ \"[[[[[[[[[["})" + "\n");
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(*r->probes[0].text, "[[[[[[[[[[{{{{{{{{{{ \"[[[[[[[[[[");
  // A hostile line nested a million deep is refused before it is parsed.
  std::string deep(1000000, '[');
  auto d = parse(kHeader + deep + "\n");
  ASSERT_FALSE(d.is_ok());
  EXPECT_EQ(d.status().code(), StatusCode::kCorrupt);
}

TEST(SuiteParse, HeaderAndWholeFileErrors) {
  auto r = parse("");
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("empty suite"), std::string::npos);
  r = parse("\n \n");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);

  r = parse(kHeader);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("has no probes"), std::string::npos);

  r = parse("{\"id\":\"a\",\"text\":\"x\"}\n");
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("t.jsonl:1: "), std::string::npos);
  EXPECT_NE(r.status().message().find("found a probe"), std::string::npos)
      << r.status().to_string();

  r = parse("{\"suite\":\"s\"}\n{\"id\":\"a\",\"text\":\"x\"}\n");
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("\"version\" is missing"), std::string::npos);

  r = parse("{\"suite\":\"s\",\"version\":1}\n{\"id\":\"a\",\"text\":\"x\"}\n");
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("\"version\" must be a string"), std::string::npos);

  r = parse("{\"suite\":\"\",\"version\":\"1\"}\n{\"id\":\"a\",\"text\":\"x\"}\n");
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("must not be empty"), std::string::npos);

  r = parse(
      "{\"suite\":\"s\",\"version\":\"1\",\"author\":\"x\"}\n{\"id\":\"a\",\"text\":\"x\"}\n");
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("unknown key \"author\" in the header"), std::string::npos);

  // Duplicate probe ids: the second occurrence's line is named (line 5 after a blank line).
  r = parse(kHeader + "{\"id\":\"a\",\"text\":\"x\"}\n{\"id\":\"b\",\"text\":\"y\"}\n\n" +
            "{\"id\":\"a\",\"ids\":[1]}\n");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("t.jsonl:5: duplicate probe id \"a\""), std::string::npos)
      << r.status().to_string();
}

TEST(SuiteParse, LineLengthLimit) {
  // A line just under the limit parses; one byte over is refused before parsing.
  const std::string prefix = "{\"id\":\"a\",\"text\":\"";
  const std::string suffix = "\"}";
  std::string fits =
      prefix + std::string(kMaxSuiteLineBytes - prefix.size() - suffix.size(), 'x') + suffix;
  ASSERT_EQ(fits.size(), kMaxSuiteLineBytes);
  auto ok = parse(kHeader + fits + "\n");
  ASSERT_TRUE(ok.is_ok()) << ok.status().to_string();
  std::string over =
      prefix + std::string(fits.size() - prefix.size() - suffix.size() + 1, 'x') + suffix;
  auto r = parse(kHeader + over + "\n");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(r.status().message().find("t.jsonl:2: line is 1048577 bytes"), std::string::npos)
      << r.status().to_string();
}

TEST(SuiteValidate, CatchesWhatTheParserWouldRefuse) {
  Suite s = small_suite();
  EXPECT_TRUE(validate_suite(s).is_ok());
  s.probes[0].text = std::string("bad \xc3");  // truncated UTF-8 sequence
  Status st = validate_suite(s);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("probe 0 (\"p1\"): \"text\" is not valid UTF-8"), std::string::npos)
      << st.to_string();
  // canonical_jsonl does not fail on it (U+FFFD is written instead).
  EXPECT_NE(canonical_jsonl(s).find("bad \xef\xbf\xbd"), std::string::npos);

  s = small_suite();
  s.probes[1].score_texts = {"\xc0\xaf"};  // overlong "/"
  EXPECT_FALSE(validate_suite(s).is_ok());
  s = small_suite();
  s.probes[1].id = "p1";
  EXPECT_NE(validate_suite(s).message().find("duplicate id \"p1\""), std::string::npos);
  s = small_suite();
  s.probes[0].ids = std::vector<int32_t>{1};
  EXPECT_NE(validate_suite(s).message().find("both"), std::string::npos);
  s = small_suite();
  s.probes[1].ids = std::vector<int32_t>{-1};
  EXPECT_FALSE(validate_suite(s).is_ok());
  s = small_suite();
  s.probes[1].greedy_tokens = -1;
  EXPECT_FALSE(validate_suite(s).is_ok());
  s = small_suite();
  s.version = "";
  EXPECT_FALSE(validate_suite(s).is_ok());
  s = small_suite();
  s.probes.clear();
  EXPECT_FALSE(validate_suite(s).is_ok());
  s = small_suite();
  s.probes[0].text = std::string("\xf0\x9f\x98\x80 emoji and \xe2\x82\xac");  // 4- and 3-byte
  EXPECT_TRUE(validate_suite(s).is_ok());
}

TEST(SuiteFile, WriteIsCanonicalAtomicAndReadsBack) {
  testing::TempDir dir;
  const std::string path = dir.file("suite.jsonl");
  testing::write_file(path, std::string("old contents"));
  ASSERT_TRUE(write_suite_file(path, small_suite()).is_ok());
  EXPECT_EQ(testing::read_file(path), kSmallCanonical);
  auto digest = sha256_file(path);
  ASSERT_TRUE(digest.is_ok());
  EXPECT_EQ(to_hex(*digest), suite_digest(small_suite()));
  // No temporary file is left next to it.
  size_t entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1u);
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);

  auto r = read_suite_file(path);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  expect_same_suite(*r, small_suite());
}

TEST(SuiteFile, Errors) {
  testing::TempDir dir;
  // An invalid suite is not written at all.
  Suite bad = small_suite();
  bad.probes[1].top_k = 5000;
  Status st = write_suite_file(dir.file("bad.jsonl"), bad);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("top_k"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir.file("bad.jsonl")));

  EXPECT_EQ(write_suite_file(dir.file("no/such/dir/s.jsonl"), small_suite()).code(),
            StatusCode::kIo);
  EXPECT_EQ(read_suite_file(dir.file("missing.jsonl")).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(read_suite_file(dir.path()).status().code(), StatusCode::kInvalidArgument);

  // Over the size limit: refused from its size alone (a sparse file, nothing is read).
  const std::string big = dir.file("big.jsonl");
  testing::write_file(big, std::string("x"));
  ASSERT_EQ(::truncate(big.c_str(), static_cast<off_t>(kMaxSuiteFileBytes + 1)), 0);
  auto r = read_suite_file(big);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("limit"), std::string::npos);

  // Parse errors name the file and line.
  const std::string broken = dir.file("broken.jsonl");
  testing::write_file(broken, kHeader + "{\"id\":\"a\",\"text\":\"x\",\"k\":1}\n");
  r = read_suite_file(broken);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find(broken + ":2: "), std::string::npos)
      << r.status().to_string();
}

TEST(NaturalV1, UniqueVariedAndWellFormed) {
  Suite s = natural_v1(5000);
  EXPECT_EQ(s.name, "natural-v1");
  EXPECT_EQ(s.version, "1");
  ASSERT_EQ(s.probes.size(), 5000u);
  EXPECT_TRUE(validate_suite(s).is_ok()) << validate_suite(s).to_string();
  std::set<std::string> texts;
  const std::regex unfilled(R"(\{\^?[a-z_]+\})");
  for (size_t i = 0; i < s.probes.size(); ++i) {
    const Probe& p = s.probes[i];
    char id[32];
    std::snprintf(id, sizeof(id), "n%06zu", i + 1);
    ASSERT_EQ(p.id, id);
    ASSERT_TRUE(p.text.has_value());
    EXPECT_FALSE(p.ids.has_value());
    EXPECT_EQ(p.top_k, 20);
    EXPECT_TRUE(p.full_stats);
    EXPECT_EQ(p.greedy_tokens, 16);
    EXPECT_FALSE(p.continuation.has_value());
    texts.insert(*p.text);
    // Templates are filled completely and articles agree ("an owl", not "a owl").
    EXPECT_FALSE(std::regex_search(*p.text, unfilled)) << *p.text;
    for (const char* wrong : {" a a", " a e", " a i", " a o", " a u", " an b", " an t"}) {
      EXPECT_EQ(p.text->find(wrong), std::string::npos) << *p.text;
    }
  }
  EXPECT_EQ(texts.size(), 5000u);
  // Every domain shows up among the default 2000.
  std::map<std::string, int> domains = {{"Once upon a time", 0},
                                        {"The capital of", 0},
                                        {"def ", 0},
                                        {"What is ", 0},
                                        {"Translate to ", 0},
                                        {"1. ", 0},
                                        {"Assistant:", 0},
                                        {"Q: ", 0}};
  for (size_t i = 0; i < 2000; ++i) {
    for (auto& [marker, hits] : domains) {
      if (s.probes[i].text->find(marker) != std::string::npos) ++hits;
    }
  }
  for (const auto& [marker, hits] : domains) EXPECT_GE(hits, 10) << marker;
}

TEST(NaturalV1, PrefixStableAndPinned) {
  Suite small = natural_v1(100);
  Suite large = natural_v1(300);
  ASSERT_EQ(small.probes.size(), 100u);
  for (size_t i = 0; i < 100; ++i) EXPECT_TRUE(same_probe(small.probes[i], large.probes[i]));
  EXPECT_EQ(natural_v1().probes.size(), 2000u);
  EXPECT_EQ(suite_digest(natural_v1(2000)), suite_digest(natural_v1()));
  // Golden: natural-v1 is a published, versioned suite. If this changes, the generator changed;
  // that needs a new suite version, not a new golden value.
  EXPECT_EQ(suite_digest(small),
            "beb9c2898de0143fda9138ff0a32fcb7a258edb5d6816e5a1edf8341a335ed6e");
  EXPECT_EQ(*small.probes[0].text, "Q: Why do squirrels swim in circles?\nA:");
  EXPECT_TRUE(natural_v1(0).probes.empty());
  EXPECT_TRUE(natural_v1(-5).probes.empty());
}

TEST(NaturalV1, TwentyThousandUnique) {
  Suite s = natural_v1(20000);
  ASSERT_EQ(s.probes.size(), 20000u);
  std::set<std::string> texts;
  for (const Probe& p : s.probes) texts.insert(*p.text);
  EXPECT_EQ(texts.size(), 20000u);
}

TEST(RandomTokensV1, DeterministicInRangeAndPinned) {
  Suite s = random_tokens_v1(32000);
  EXPECT_EQ(s.name, "random-tokens-v1");
  EXPECT_EQ(s.version, "1");
  EXPECT_NE(s.description.find("32000"), std::string::npos) << s.description;
  EXPECT_NE(s.description.find("seed 1"), std::string::npos) << s.description;
  ASSERT_EQ(s.probes.size(), 512u);
  EXPECT_TRUE(validate_suite(s).is_ok());
  EXPECT_EQ(s.probes[0].id, "r000001");
  EXPECT_EQ(s.probes[511].id, "r000512");
  for (const Probe& p : s.probes) {
    ASSERT_TRUE(p.ids.has_value());
    EXPECT_FALSE(p.text.has_value());
    ASSERT_EQ(p.ids->size(), 16u);
    EXPECT_EQ(p.top_k, 20);
    EXPECT_TRUE(p.full_stats);
    EXPECT_EQ(p.greedy_tokens, 0);
    for (int32_t id : *p.ids) {
      EXPECT_GE(id, 3);
      EXPECT_LT(id, 32000);
    }
  }
  EXPECT_EQ(suite_digest(random_tokens_v1(32000)), suite_digest(s));
  EXPECT_NE(suite_digest(random_tokens_v1(32000, 512, 16, 2)), suite_digest(s));
  EXPECT_NE(suite_digest(random_tokens_v1(32001)), suite_digest(s));
  // The first sequences do not depend on how many are asked for.
  Suite few = random_tokens_v1(32000, 3);
  for (size_t i = 0; i < 3; ++i) EXPECT_TRUE(same_probe(few.probes[i], s.probes[i]));
  // Golden (see NaturalV1.PrefixStableAndPinned).
  Suite pinned = random_tokens_v1(1000, 4, 8);
  EXPECT_EQ(*pinned.probes[0].ids, (std::vector<int32_t>{136, 138, 452, 23, 352, 911, 472, 77}));
  EXPECT_EQ(suite_digest(pinned),
            "b3e31706b07dcdf749d71ab58cdc423993ab272fd5259fad2b3f81abc9bfee32");
}

TEST(RandomTokensV1, SmallVocabulariesAndEdges) {
  // Every id of a small range is drawn, and nothing outside it.
  Suite s = random_tokens_v1(13, 50, 20);
  std::set<int32_t> seen;
  for (const Probe& p : s.probes) seen.insert(p.ids->begin(), p.ids->end());
  EXPECT_EQ(seen.size(), 10u);
  EXPECT_EQ(*seen.begin(), 3);
  EXPECT_EQ(*seen.rbegin(), 12);
  // first_id beyond the vocabulary is clamped to its last id.
  Suite tiny = random_tokens_v1(2, 2, 4);
  ASSERT_EQ(tiny.probes.size(), 2u);
  for (int32_t id : *tiny.probes[0].ids) EXPECT_EQ(id, 1);
  EXPECT_TRUE(random_tokens_v1(0).probes.empty());
  EXPECT_TRUE(random_tokens_v1(100, 0).probes.empty());
  EXPECT_TRUE(random_tokens_v1(100, 5, 0).probes.empty());
}

TEST(LogitImageV1, NaturalPromptsRecordingOnlyWholeDistributions) {
  const Suite img = logit_image_v1(6), nat = natural_v1(6);
  EXPECT_EQ(img.name, "logit-image-v1");
  ASSERT_EQ(img.probes.size(), 6u);
  for (size_t i = 0; i < img.probes.size(); ++i) {
    EXPECT_EQ(img.probes[i].id, nat.probes[i].id);
    EXPECT_EQ(img.probes[i].text, nat.probes[i].text);
    EXPECT_TRUE(img.probes[i].full_logprobs);
    EXPECT_EQ(img.probes[i].top_k, 0);
    EXPECT_EQ(img.probes[i].greedy_tokens, 0);
    EXPECT_FALSE(img.probes[i].full_stats);
  }
  EXPECT_TRUE(validate_suite(img).is_ok());
  // The key is written only when true, so suites without it kept their digests (natural-v1's is
  // pinned above).
  EXPECT_NE(canonical_jsonl(img).find("\"full_logprobs\":true"), std::string::npos);
  EXPECT_EQ(canonical_jsonl(nat).find("full_logprobs"), std::string::npos);
  auto back = parse_suite_jsonl(canonical_jsonl(img), "img");
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(suite_digest(*back), suite_digest(img));
  auto r = resolve_suite("logit-image-v1:6");
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(suite_digest(*r), suite_digest(img));
  r = resolve_suite("logit-image-v1");
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->probes.size(), 256u);
  // Explicit false is the default; anything but a boolean is refused.
  auto f = parse_suite_jsonl(
      "{\"suite\":\"s\",\"version\":\"1\"}\n{\"id\":\"a\",\"text\":\"x\",\"full_logprobs\":false}"
      "\n",
      "f");
  ASSERT_TRUE(f.is_ok());
  EXPECT_FALSE(f->probes[0].full_logprobs);
  auto bad = parse_suite_jsonl(
      "{\"suite\":\"s\",\"version\":\"1\"}\n{\"id\":\"a\",\"text\":\"x\",\"full_logprobs\":1}\n",
      "b");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("full_logprobs"), std::string::npos);
}

TEST(ResolveSuite, BuiltinsCountsFilesAndErrors) {
  auto r = resolve_suite("natural-v1");
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->probes.size(), 2000u);
  r = resolve_suite("natural-v1:7");
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(suite_digest(*r), suite_digest(natural_v1(7)));
  for (const char* bad : {"natural-v1:", "natural-v1:0", "natural-v1:-1", "natural-v1:1e3",
                          "natural-v1:1000001", "natural-v1:99999999999", "natural-v1: 5"}) {
    auto b = resolve_suite(bad);
    ASSERT_FALSE(b.is_ok()) << bad;
    EXPECT_EQ(b.status().code(), StatusCode::kInvalidArgument) << bad;
  }

  r = resolve_suite("random-tokens-v1");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("vocabulary size"), std::string::npos);
  r = resolve_suite("random-tokens-v1", 500);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(suite_digest(*r), suite_digest(random_tokens_v1(500)));
  r = resolve_suite("random-tokens-v1:3", 500);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->probes.size(), 3u);

  testing::TempDir dir;
  ASSERT_TRUE(write_suite_file(dir.file("mine.jsonl"), small_suite()).is_ok());
  r = resolve_suite(dir.file("mine.jsonl"));
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  expect_same_suite(*r, small_suite());

  r = resolve_suite("natural-v2");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("natural-v1"), std::string::npos);
  EXPECT_NE(r.status().message().find("random-tokens-v1"), std::string::npos);
  EXPECT_EQ(resolve_suite(dir.file("nope.jsonl")).status().code(), StatusCode::kNotFound);

  auto builtins = builtin_suites();
  ASSERT_EQ(builtins.size(), 3u);
  EXPECT_EQ(builtins[0].name, "natural-v1");
  EXPECT_FALSE(builtins[0].needs_vocab);
  EXPECT_EQ(builtins[1].name, "random-tokens-v1");
  EXPECT_TRUE(builtins[1].needs_vocab);
  EXPECT_EQ(builtins[2].name, "logit-image-v1");
  EXPECT_FALSE(builtins[2].needs_vocab);
  EXPECT_NE(r.status().message().find("logit-image-v1"), std::string::npos);
}

}  // namespace
}  // namespace prov::probes
