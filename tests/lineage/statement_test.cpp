#include "lineage/statement.h"

#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/sha256.h"
#include "lineage/ledger_facts.h"
#include "lineage/report.h"
#include "store/keys.h"
#include "store/ledger.h"
#include "tests/support/test_support.h"

namespace prov::lineage {
namespace {

using nlohmann::json;
using store::KeyType;
using store::PrivateKey;

std::string hex_of(const std::string& text) {
  return to_hex(sha256(text));
}

// A report that reads as one (report.h), with extra keys the schema ignores but the Statement
// carries unchanged.
json sample_report() {
  json r;
  r["report_version"] = 1;
  r["candidate"] = {{"name", "zoo/child-ft"}, {"digest", {{"sha256", hex_of("child")}}}};
  r["parent"] = {{"name", "zoo/base"}, {"digest", {{"sha256", hex_of("base")}}}};
  r["verdict"] = {{"relation", "finetuned"},
                  {"parent", "zoo/base"},
                  {"parent_digest", "sha256:" + hex_of("base")},
                  {"p_value", 1.5e-7},
                  {"confidence", "high"},
                  {"summary", "fine-tuned from zoo/base"}};
  r["references"] = json::array();
  r["graph"] = {{"nodes", json::array()}, {"edges", json::array()}};
  r["tool"] = {{"name", "prov"}, {"version", "0.1.0"}};
  auto row = [](const std::string& layer, double p) {
    return json{{"reference", "zoo/base"}, {"layer", layer},   {"method", "m"},
                {"statistic", "s"},        {"value", nullptr}, {"p_value", p},
                {"null_hypothesis", "H0"}};
  };
  r["evidence"] = json::array({row("identity", 1.5e-7), row("weights", 0.5)});
  r["evidence"][0]["tensors"] = 57;
  r["evidence"][1]["cosine"] = -0.25;
  r["evidence"][1]["note"] = "r\u00e9sum\u00e9";
  return r;
}

// The statement layer on JSON reports (canonical_statement), as the tests below build them.
Result<std::string> make_statement(const json& report) {
  return canonical_statement(report);
}

Result<std::string> sign_report(const json& report, const PrivateKey& key) {
  PROV_ASSIGN_OR_RETURN(std::string statement, canonical_statement(report));
  return store::dsse_sign(store::kInTotoPayloadType, statement, key);
}

PrivateKey make_key(KeyType t) {
  auto k = PrivateKey::generate(t);
  EXPECT_TRUE(k.is_ok()) << k.status().to_string();
  return std::move(k).value();
}

// Signs `payload` as-is (no validation), to build envelopes make_statement would never produce.
std::string sign_raw(const std::string& payload_type, const std::string& payload,
                     const PrivateKey& key) {
  auto env = store::dsse_sign(payload_type, payload, key);
  EXPECT_TRUE(env.is_ok()) << env.status().to_string();
  return env.is_ok() ? *env : std::string();
}

// The parsed statement that make_statement produces for sample_report().
json sample_statement() {
  auto s = make_statement(sample_report());
  EXPECT_TRUE(s.is_ok()) << s.status().to_string();
  return json::parse(*s);
}

void expect_rejected(const Result<VerifiedReport>& r, StatusCode code, const std::string& needle) {
  ASSERT_FALSE(r.is_ok()) << "expected rejection containing: " << needle;
  EXPECT_EQ(r.status().code(), code) << r.status().to_string();
  EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().to_string();
}

class SignedReportTest : public ::testing::TestWithParam<KeyType> {};

TEST_P(SignedReportTest, SignVerifyRoundTrip) {
  PrivateKey key = make_key(GetParam());
  json report = sample_report();
  auto env = sign_report(report, key);
  ASSERT_TRUE(env.is_ok()) << env.status().to_string();

  // The envelope carries exactly the canonical statement, as in-toto, with the signer's key id.
  auto parsed = store::dsse_parse(*env);
  ASSERT_TRUE(parsed.is_ok());
  EXPECT_EQ(parsed->payload_type, store::kInTotoPayloadType);
  EXPECT_EQ(parsed->payload, *make_statement(report));
  ASSERT_EQ(parsed->signatures.size(), 1u);
  EXPECT_EQ(parsed->signatures[0].keyid, key.key_id());

  // Same report, same statement; Ed25519 signatures are deterministic (RFC 8032), so the whole
  // envelope repeats, while ECDSA draws a fresh nonce per signature.
  auto env2 = sign_report(report, key);
  ASSERT_TRUE(env2.is_ok());
  EXPECT_EQ(store::dsse_parse(*env2)->payload, parsed->payload);
  if (GetParam() == KeyType::kEd25519) {
    EXPECT_EQ(*env2, *env);
  }

  auto v = verify_report(*env, key.public_key());
  ASSERT_TRUE(v.is_ok()) << v.status().to_string();
  EXPECT_EQ(v->predicate, report);
  EXPECT_EQ(v->report.verdict.relation, Relation::kFinetuned);
  // The typed path signs the same bytes.
  auto typed = report_from_json(report);
  ASSERT_TRUE(typed.is_ok()) << typed.status().to_string();
  EXPECT_EQ(store::dsse_parse(*lineage::sign_report(*typed, key))->payload,
            *lineage::make_statement(*typed));
  EXPECT_EQ(v->key_id, key.key_id());
  EXPECT_EQ(v->statement["_type"], "https://in-toto.io/Statement/v1");
  EXPECT_EQ(v->statement["predicateType"], kReportPredicateType);
  ASSERT_EQ(v->statement["subject"].size(), 1u);
  EXPECT_EQ(v->statement["subject"][0]["name"], "zoo/child-ft");
  EXPECT_EQ(v->statement["subject"][0]["digest"]["sha256"], hex_of("child"));

  // The ledger reads the same envelope: subject, relation and parent.
  auto fields = store::parse_statement_envelope(*env, predicate_facts);
  ASSERT_TRUE(fields.is_ok()) << fields.status().to_string();
  ASSERT_EQ(fields->subjects.size(), 1u);
  EXPECT_EQ(fields->subjects[0], "sha256:" + hex_of("child"));
  EXPECT_EQ(fields->relation, "finetuned");
  EXPECT_EQ(fields->parent_name, "zoo/base");
  EXPECT_EQ(fields->parent_digest, "sha256:" + hex_of("base"));

  // The public key read back from its PEM file verifies too.
  testing::TempDir dir;
  ASSERT_TRUE(key.write(dir.file("k.pem"), dir.file("k.pub")).is_ok());
  auto pub = store::PublicKey::load(dir.file("k.pub"));
  ASSERT_TRUE(pub.is_ok());
  EXPECT_TRUE(verify_report(*env, *pub).is_ok());
}

TEST_P(SignedReportTest, WrongKeyIsRejected) {
  PrivateKey key = make_key(GetParam());
  auto env = sign_report(sample_report(), key);
  ASSERT_TRUE(env.is_ok());
  for (KeyType t : {KeyType::kEd25519, KeyType::kEcdsaP256}) {
    PrivateKey other = make_key(t);
    expect_rejected(verify_report(*env, other.public_key()), StatusCode::kInvalidArgument,
                    "signature does not verify under key " + other.key_id() +
                        ": it is signed by another key (" + key.key_id() + ")");
  }
}

TEST_P(SignedReportTest, AnonymousSignatureByAnotherKeyIsRejected) {
  PrivateKey key = make_key(GetParam());
  auto env = sign_report(sample_report(), key);
  ASSERT_TRUE(env.is_ok());
  json e = json::parse(*env);
  e["signatures"][0].erase("keyid");
  EXPECT_TRUE(verify_report(e.dump(), key.public_key()).is_ok());  // key ids are optional
  PrivateKey other = make_key(GetParam());
  expect_rejected(verify_report(e.dump(), other.public_key()), StatusCode::kInvalidArgument,
                  "signed by another key or was changed after signing (signature key ids: (no "
                  "key id))");
}

TEST_P(SignedReportTest, TamperedPayloadIsRejected) {
  PrivateKey key = make_key(GetParam());
  auto env = sign_report(sample_report(), key);
  ASSERT_TRUE(env.is_ok());
  const json envelope = json::parse(*env);
  const std::string b64 = envelope["payload"];

  // One base64 character changed to another valid one (mid-string: still canonical base64).
  for (size_t pos : {size_t{0}, b64.size() / 3, b64.size() / 2, b64.size() - 8}) {
    json t = envelope;
    std::string p = b64;
    p[pos] = p[pos] == 'A' ? 'B' : 'A';
    t["payload"] = p;
    ASSERT_TRUE(store::base64_decode(p).is_ok()) << pos;
    expect_rejected(verify_report(t.dump(), key.public_key()), StatusCode::kInvalidArgument,
                    "signature does not verify under key " + key.key_id() +
                        ": the envelope was changed after it was signed");
  }
  // A character outside the base64 alphabet: the envelope itself is malformed.
  {
    json t = envelope;
    std::string p = b64;
    p[p.size() / 2] = '!';
    t["payload"] = p;
    expect_rejected(verify_report(t.dump(), key.public_key()), StatusCode::kCorrupt,
                    "not a DSSE envelope");
  }
  // A well-formed statement with another verdict, re-encoded under the old signature.
  {
    json changed = sample_report();
    changed["verdict"]["relation"] = "independent";
    auto stmt = make_statement(changed);
    ASSERT_TRUE(stmt.is_ok());
    json t = envelope;
    t["payload"] = store::base64_encode(*stmt);
    expect_rejected(verify_report(t.dump(), key.public_key()), StatusCode::kInvalidArgument,
                    "signature does not verify under key " + key.key_id() +
                        ": the envelope was changed after it was signed");
  }
  // The payload type changed after signing (it is covered by the PAE).
  {
    json t = envelope;
    t["payloadType"] = "application/json";
    expect_rejected(verify_report(t.dump(), key.public_key()), StatusCode::kInvalidArgument,
                    "signature does not verify");
  }
}

INSTANTIATE_TEST_SUITE_P(Types, SignedReportTest,
                         ::testing::Values(KeyType::kEd25519, KeyType::kEcdsaP256),
                         [](const auto& info) {
                           return info.param == KeyType::kEd25519 ? "Ed25519" : "P256";
                         });

TEST(VerifyReport, TruncatedAndNonEnvelopesAreCorrupt) {
  PrivateKey key = make_key(KeyType::kEd25519);
  auto env = sign_report(sample_report(), key);
  ASSERT_TRUE(env.is_ok());
  expect_rejected(verify_report(env->substr(0, env->size() / 2), key.public_key()),
                  StatusCode::kCorrupt, "not a DSSE envelope: truncated");
  expect_rejected(verify_report(env->substr(0, env->size() - 1), key.public_key()),
                  StatusCode::kCorrupt, "not a DSSE envelope: truncated");
  // Every cut is rejected as corrupt, never as a signature failure.
  for (size_t n = 0; n < env->size(); n += 7) {
    auto r = verify_report(env->substr(0, n), key.public_key());
    ASSERT_FALSE(r.is_ok()) << n;
    EXPECT_EQ(r.status().code(), StatusCode::kCorrupt) << n << ": " << r.status().to_string();
  }
  expect_rejected(verify_report("", key.public_key()), StatusCode::kCorrupt,
                  "not a DSSE envelope: it is empty");
  expect_rejected(verify_report("{\"payload\": 1 x}", key.public_key()), StatusCode::kCorrupt,
                  "not a DSSE envelope: malformed JSON at byte");
  expect_rejected(verify_report(*make_statement(sample_report()), key.public_key()),
                  StatusCode::kCorrupt, "not a DSSE envelope: missing string field 'payload'");
}

TEST(VerifyReport, WrongPayloadTypeSignedCorrectly) {
  PrivateKey key = make_key(KeyType::kEcdsaP256);
  std::string env = sign_raw("application/json", *make_statement(sample_report()), key);
  expect_rejected(verify_report(env, key.public_key()), StatusCode::kInvalidArgument,
                  "payload type \"application/json\" is not in-toto");
}

TEST(VerifyReport, WrongStatementAndPredicateTypesSignedCorrectly) {
  PrivateKey key = make_key(KeyType::kEd25519);
  {
    json s = sample_statement();
    s["predicateType"] = "https://slsa.dev/provenance/v1";
    expect_rejected(
        verify_report(sign_raw(store::kInTotoPayloadType, s.dump(), key), key.public_key()),
        StatusCode::kInvalidArgument,
        "predicate type \"https://slsa.dev/provenance/v1\" is not a lineage report");
    s.erase("predicateType");
    expect_rejected(
        verify_report(sign_raw(store::kInTotoPayloadType, s.dump(), key), key.public_key()),
        StatusCode::kInvalidArgument, "predicate type (missing) is not a lineage report");
  }
  {
    json s = sample_statement();
    s["_type"] = "https://in-toto.io/Statement/v0.1";
    expect_rejected(
        verify_report(sign_raw(store::kInTotoPayloadType, s.dump(), key), key.public_key()),
        StatusCode::kInvalidArgument,
        "statement type \"https://in-toto.io/Statement/v0.1\" is not an in-toto "
        "Statement v1");
  }
}

TEST(VerifyReport, SubjectMismatchSignedCorrectly) {
  PrivateKey key = make_key(KeyType::kEd25519);
  auto check = [&](const json& s, const std::string& detail) {
    expect_rejected(
        verify_report(sign_raw(store::kInTotoPayloadType, s.dump(), key), key.public_key()),
        StatusCode::kCorrupt, "subject does not match the report's candidate: " + detail);
  };
  json s = sample_statement();
  s["subject"][0]["name"] = "zoo/other";
  check(s, "subject name \"zoo/other\", candidate \"zoo/child-ft\"");
  s = sample_statement();
  s["subject"][0]["digest"]["sha256"] = hex_of("other");
  check(s, "subject sha256 \"" + hex_of("other") + "\"");
  s = sample_statement();
  s["subject"][0]["digest"].erase("sha256");
  s["subject"][0]["digest"]["sha512"] = std::string(128, 'a');
  check(s, "subject sha256 \"\"");
  s = sample_statement();
  s["subject"].push_back(s["subject"][0]);
  check(s, "a report statement has exactly one subject, this one has 2 subjects");
  s = sample_statement();
  s["subject"] = json::array();
  check(s, "a report statement has exactly one subject, this one has 0 subjects");
  s = sample_statement();
  s.erase("subject");
  check(s, "a report statement has exactly one subject, this one has no 'subject' field");
  s = sample_statement();
  s["subject"] = s["subject"][0];
  check(
      s,
      "a report statement has exactly one subject, this one has a 'subject' that is not an array");
  // The predicate's candidate changed instead of the subject: same failure.
  s = sample_statement();
  s["predicate"]["candidate"]["name"] = "zoo/renamed";
  check(s, "subject name \"zoo/child-ft\", candidate \"zoo/renamed\"");
}

TEST(VerifyReport, MalformedSignedPayloadsAreCorrupt) {
  PrivateKey key = make_key(KeyType::kEd25519);
  auto verify = [&](const std::string& payload) {
    return verify_report(sign_raw(store::kInTotoPayloadType, payload, key), key.public_key());
  };
  std::string stmt = *make_statement(sample_report());
  expect_rejected(verify(stmt.substr(0, stmt.size() - 1)), StatusCode::kCorrupt,
                  "signed payload is not valid JSON (truncated");
  expect_rejected(verify("[1,2]"), StatusCode::kCorrupt,
                  "signed payload is a JSON array, not a Statement object");
  // A duplicate key would let two readers see two different reports under one signature.
  std::string dup = stmt;
  dup.insert(1, "\"predicateType\":\"x\",");
  expect_rejected(verify(dup), StatusCode::kCorrupt,
                  "signed payload has the duplicate key \"predicateType\"");
  // A signed statement whose report lacks a required field.
  json s = sample_statement();
  s["predicate"]["tool"].erase("version");
  expect_rejected(verify(s.dump()), StatusCode::kCorrupt,
                  "signed report: report lacks field 'tool.version'");
  s = sample_statement();
  s.erase("predicate");
  expect_rejected(verify(s.dump()), StatusCode::kCorrupt, "the statement has no predicate");
  // Nesting past the limit.
  std::string deep = "{\"_type\":\"x\",\"deep\":" + std::string(kMaxReportDepth + 1, '[') +
                     std::string(kMaxReportDepth + 1, ']') + "}";
  expect_rejected(verify(deep), StatusCode::kCorrupt, "nests deeper than");
}

TEST(MakeStatement, SameReportSameBytes) {
  json a = sample_report();
  auto s1 = make_statement(a);
  auto s2 = make_statement(a);
  ASSERT_TRUE(s1.is_ok() && s2.is_ok());
  EXPECT_EQ(*s1, *s2);

  // The same report written with its keys in another order and other whitespace.
  const std::string text1 = R"({"report_version":1,"tool":{"version":"0.1.0","name":"prov"},
    "verdict":{"relation":"fine-tune"},"candidate":{"digest":{"sha256":")" +
                            hex_of("c") + R"("},"name":"m"},"z":[3,2.5,{"b":1,"a":null}]})";
  const std::string text2 = R"({ "z" : [ 3, 2.5, { "a" : null, "b" : 1 } ],
    "candidate" : { "name" : "m", "digest" : { "sha256" : ")" +
                            hex_of("c") + R"(" } }, "verdict" : { "relation" : "fine-tune" },
    "tool" : { "name" : "prov", "version" : "0.1.0" }, "report_version" : 1 })";
  auto t1 = make_statement(json::parse(text1));
  auto t2 = make_statement(json::parse(text2));
  ASSERT_TRUE(t1.is_ok() && t2.is_ok());
  EXPECT_EQ(*t1, *t2);
  // Insertion order through an insertion-ordered object does not matter either.
  nlohmann::ordered_json o;
  o["z"] = nlohmann::ordered_json::array({3, 2.5, {{"b", 1}, {"a", nullptr}}});
  o["tool"]["version"] = "0.1.0";
  o["tool"]["name"] = "prov";
  o["candidate"]["name"] = "m";
  o["candidate"]["digest"]["sha256"] = hex_of("c");
  o["verdict"]["relation"] = "fine-tune";
  o["report_version"] = 1;
  auto t3 = make_statement(json::parse(o.dump()));
  ASSERT_TRUE(t3.is_ok());
  EXPECT_EQ(*t3, *t1);

  // The exact bytes: keys sorted, no whitespace, integers plain, floats shortest round-trip.
  EXPECT_EQ(*t1,
            R"({"_type":"https://in-toto.io/Statement/v1","predicate":{"candidate":{"digest":)"
            R"({"sha256":")" +
                hex_of("c") +
                R"("},"name":"m"},"report_version":1,"tool":{"name":"prov","version":"0.1.0"},)"
                R"("verdict":{"relation":"fine-tune"},"z":[3,2.5,{"a":null,"b":1}]},)"
                R"("predicateType":"urn:prov:predicate:lineage-report:v1","subject":[{"digest":)"
                R"({"sha256":")" +
                hex_of("c") + R"("},"name":"m"}]})");

  // Canonical form is a fixed point: re-serialising the parsed predicate gives the same bytes.
  auto again = make_statement(json::parse(*s1)["predicate"]);
  ASSERT_TRUE(again.is_ok());
  EXPECT_EQ(*again, *s1);
}

// The number rule, pinned on examples, and round-trip exactness on many random doubles.
TEST(MakeStatement, NumbersAreDeterministicAndRoundTripExact) {
  auto number_text = [](const json& v) {
    json r = sample_report();
    r["x"] = v;
    std::string s = *make_statement(r);
    const std::string key = "\"x\":";
    size_t at = s.find(key);
    size_t end = s.find('}', at);
    return s.substr(at + key.size(), end - at - key.size());
  };
  EXPECT_EQ(number_text(1.0), "1.0");
  EXPECT_EQ(number_text(-0.0), "-0.0");
  EXPECT_EQ(number_text(0.1), "0.1");
  EXPECT_EQ(number_text(2.5), "2.5");
  EXPECT_EQ(number_text(0.0001), "0.0001");
  EXPECT_EQ(number_text(0.00001), "1e-05");
  EXPECT_EQ(number_text(1.5e-7), "1.5e-07");
  EXPECT_EQ(number_text(123456.0), "123456.0");
  EXPECT_EQ(number_text(1e14), "100000000000000.0");
  EXPECT_EQ(number_text(1e15), "1e+15");
  EXPECT_EQ(number_text(1.25e15), "1.25e+15");
  EXPECT_EQ(number_text(1e100), "1e+100");
  EXPECT_EQ(number_text(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(number_text(int64_t{-42}), "-42");
  EXPECT_EQ(number_text(uint64_t{18446744073709551615u}), "18446744073709551615");

  std::mt19937_64 rng(20240607);
  json arr = json::array();
  std::vector<double> values;
  while (values.size() < 2000) {
    uint64_t bits = rng();
    double d;
    std::memcpy(&d, &bits, sizeof d);
    if (!std::isfinite(d)) continue;
    values.push_back(d);
    arr.push_back(d);
  }
  json r = sample_report();
  r["values"] = arr;
  auto s = make_statement(r);
  ASSERT_TRUE(s.is_ok());
  json back = json::parse(*s)["predicate"]["values"];
  ASSERT_EQ(back.size(), values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    double got = back[i].get<double>();
    ASSERT_EQ(std::memcmp(&got, &values[i], sizeof got), 0)
        << i << ": " << values[i] << " came back as " << got;
  }
  EXPECT_EQ(*make_statement(json::parse(*s)["predicate"]), *s);
}

TEST(MakeStatement, MissingOrBadRequiredFieldsNameTheField) {
  struct Case {
    const char* field;
    std::function<void(json&)> mutate;
  };
  const std::vector<Case> cases = {
      {"report_version", [](json& r) { r.erase("report_version"); }},
      {"report_version", [](json& r) { r["report_version"] = 2; }},
      {"report_version", [](json& r) { r["report_version"] = 1.0; }},
      {"report_version", [](json& r) { r["report_version"] = "1"; }},
      {"candidate", [](json& r) { r.erase("candidate"); }},
      {"candidate", [](json& r) { r["candidate"] = "zoo/child-ft"; }},
      {"candidate.name", [](json& r) { r["candidate"].erase("name"); }},
      {"candidate.name", [](json& r) { r["candidate"]["name"] = ""; }},
      {"candidate.name", [](json& r) { r["candidate"]["name"] = 7; }},
      {"candidate.digest", [](json& r) { r["candidate"].erase("digest"); }},
      {"candidate.digest.sha256", [](json& r) { r["candidate"]["digest"].erase("sha256"); }},
      {"candidate.digest.sha256",
       [](json& r) { r["candidate"]["digest"]["sha256"] = hex_of("child").substr(1); }},
      {"candidate.digest.sha256",
       [](json& r) {
         std::string h = hex_of("child");
         for (char& c : h) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
         r["candidate"]["digest"]["sha256"] = h;
       }},
      {"candidate.digest.sha256",
       [](json& r) { r["candidate"]["digest"]["sha256"] = "sha256:" + hex_of("child"); }},
      {"candidate.digest.sha256",
       [](json& r) { r["candidate"]["digest"]["sha256"] = std::string(63, 'a') + "g"; }},
      {"verdict", [](json& r) { r.erase("verdict"); }},
      {"verdict.relation", [](json& r) { r["verdict"].erase("relation"); }},
      {"verdict.relation", [](json& r) { r["verdict"]["relation"] = nullptr; }},
      {"tool", [](json& r) { r.erase("tool"); }},
      {"tool.name", [](json& r) { r["tool"].erase("name"); }},
      {"tool.version", [](json& r) { r["tool"].erase("version"); }},
  };
  for (const auto& c : cases) {
    json r = sample_report();
    c.mutate(r);
    auto s = make_statement(r);
    ASSERT_FALSE(s.is_ok()) << c.field << " " << r.dump();
    EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument) << c.field;
    EXPECT_NE(s.status().message().find("'" + std::string(c.field) + "'"), std::string::npos)
        << c.field << ": " << s.status().message();
    PrivateKey key = make_key(KeyType::kEd25519);
    EXPECT_EQ(sign_report(r, key).status().code(), StatusCode::kInvalidArgument) << c.field;
  }
  EXPECT_EQ(make_statement(json::array()).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(make_statement(json()).status().code(), StatusCode::kInvalidArgument);
}

TEST(MakeStatement, UnrepresentableValuesAreRefused) {
  json r = sample_report();
  r["evidence"][1]["cosine"] = std::nan("");
  auto s = make_statement(r);
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.status().message().find("'evidence[1].cosine' is not a finite number"),
            std::string::npos)
      << s.status().message();
  r = sample_report();
  r["verdict"]["confidence"] = -INFINITY;
  EXPECT_NE(make_statement(r).status().message().find("'verdict.confidence'"), std::string::npos);
  r = sample_report();
  r["tool"]["build"] = std::string("ab\xff", 3);
  s = make_statement(r);
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.status().message().find("'tool.build' is not valid UTF-8"), std::string::npos)
      << s.status().message();
  r = sample_report();
  r["notes"][std::string("k\xc3", 2)] = 1;
  EXPECT_NE(make_statement(r).status().message().find("key that is not valid UTF-8"),
            std::string::npos);
  // kMaxReportDepth levels are fine (the report object is level 1), one more is not.
  r = sample_report();
  json deep = json::array();
  for (int i = 0; i < kMaxReportDepth - 2; ++i) deep = json::array({deep});
  r["deep"] = deep;
  EXPECT_TRUE(make_statement(r).is_ok()) << make_statement(r).status().to_string();
  PrivateKey key = make_key(KeyType::kEd25519);
  auto env = sign_report(r, key);
  ASSERT_TRUE(env.is_ok());
  EXPECT_TRUE(verify_report(*env, key.public_key()).is_ok());
  r["deep"] = json::array({deep});
  EXPECT_NE(make_statement(r).status().message().find("nests deeper than"), std::string::npos);
}

// An outside verifier needs only the DSSE v1 PAE and the openssl command line: the PAE is built
// here from the envelope's fields (not with store::dsse_pae) and checked with `openssl pkeyutl`
// (Ed25519) or `openssl dgst -sha256 -verify` (ECDSA P-256).
TEST(VerifyReport, OpensslCommandLineVerifiesThePae) {
  if (testing::run_command("command -v openssl >/dev/null").code != 0) {
    GTEST_SKIP() << "openssl command line tool not installed";
  }
  testing::TempDir dir;
  for (KeyType t : {KeyType::kEd25519, KeyType::kEcdsaP256}) {
    PrivateKey key = make_key(t);
    auto env = sign_report(sample_report(), key);
    ASSERT_TRUE(env.is_ok());
    json e = json::parse(*env);
    std::string type = e["payloadType"];
    std::string body = *store::base64_decode(e["payload"].get<std::string>());
    std::string sig = *store::base64_decode(e["signatures"][0]["sig"].get<std::string>());
    std::string pae = "DSSEv1 " + std::to_string(type.size()) + " " + type + " " +
                      std::to_string(body.size()) + " " + body;
    testing::write_file(dir.file("pae.bin"), pae);
    testing::write_file(dir.file("sig.bin"), sig);
    testing::write_file(dir.file("pub.pem"), key.public_key().to_pem());
    testing::write_file(dir.file("bad.bin"), pae + " ");
    const std::string common = " -pubin -inkey " + dir.file("pub.pem");
    auto cmd = [&](const std::string& msg) {
      if (t == KeyType::kEd25519) {
        return "openssl pkeyutl -verify -rawin" + common + " -sigfile " + dir.file("sig.bin") +
               " -in " + dir.file(msg);
      }
      return "openssl dgst -sha256 -verify " + dir.file("pub.pem") + " -signature " +
             dir.file("sig.bin") + " " + dir.file(msg);
    };
    auto ok = testing::run_command(cmd("pae.bin"));
    EXPECT_EQ(ok.code, 0) << store::key_type_name(t) << ": " << ok.out;
    EXPECT_NE(ok.out.find("Verified"), std::string::npos) << ok.out;
    auto bad = testing::run_command(cmd("bad.bin"));
    EXPECT_NE(bad.code, 0) << store::key_type_name(t) << ": " << bad.out;
  }
}

}  // namespace
}  // namespace prov::lineage
