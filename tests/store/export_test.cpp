#include "store/export.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>

#include "tests/support/test_support.h"

namespace prov::store {
namespace {

using nlohmann::json;

std::string digest_of(const std::string& name) {
  return "sha256:" + to_hex(sha256("weights of " + name));
}

// A signed in-toto Statement naming model `subject`, derived from `parent` by `relation`; the
// predicate names the parent `parent_name` when given.
std::string make_envelope(const PrivateKey& key, const std::string& subject,
                          const std::string& parent = "", const std::string& relation = "",
                          const std::string& parent_name = "") {
  json st;
  st["_type"] = "https://in-toto.io/Statement/v1";
  st["subject"] = {{{"name", subject}, {"digest", {{"sha256", digest_of(subject).substr(7)}}}}};
  st["predicateType"] = "https://prov.dev/verdict/v1";
  st["predicate"]["tool"] = "test";
  if (!parent.empty()) {
    st["predicate"]["verdict"]["relation"] = relation;
    st["predicate"]["verdict"]["parent_digest"] = digest_of(parent);
    if (!parent_name.empty()) st["predicate"]["verdict"]["parent"] = parent_name;
  }
  auto env = dsse_sign(kInTotoPayloadType, st.dump(), key);
  EXPECT_TRUE(env.is_ok()) << env.status().to_string();
  return env.is_ok() ? *env : std::string();
}

// The predicate's owner, played by the test: a "https://prov.dev/verdict/v1" predicate names its
// relation and parent in predicate.verdict; any other type has no facts.
Result<EntryFacts> read_test_predicate(const std::string& type, const json& predicate) {
  EntryFacts f;
  if (type != "https://prov.dev/verdict/v1" || !predicate.is_object()) return f;
  auto v = predicate.find("verdict");
  if (v == predicate.end() || !v->is_object()) return f;
  f.relation = v->value("relation", "");
  f.parent_digest = v->value("parent_digest", "");
  f.parent_name = v->value("parent", "");
  return f;
}

LedgerOptions test_options() {
  LedgerOptions o;
  o.read_predicate = read_test_predicate;
  return o;
}

ExportVerifyOptions verify_options() {
  ExportVerifyOptions o;
  o.read_predicate = read_test_predicate;
  return o;
}

PrivateKey new_key() {
  auto k = PrivateKey::generate(KeyType::kEd25519);
  EXPECT_TRUE(k.is_ok());
  return std::move(k).value();
}

constexpr char kOrigin[] = "ledger.test/export";

// base → tuned (finetuned) → tuned-q4 (quantized); base → student (distilled_logits);
// an unrelated model; a checkpoint over all of it.
class ExportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto l = Ledger::init(dir_.file("l.db"), test_options());
    ASSERT_TRUE(l.is_ok()) << l.status().to_string();
    ledger_ = std::move(*l);
    envs_ = {make_envelope(key_, "org/base"), make_envelope(key_, "org/unrelated"),
             make_envelope(key_, "org/tuned", "org/base", "finetuned"),
             make_envelope(key_, "org/tuned-q4", "org/tuned", "quantized"),
             make_envelope(key_, "org/student", "org/base", "distilled_logits")};
    auto idx = ledger_->append_batch(envs_);
    ASSERT_TRUE(idx.is_ok()) << idx.status().to_string();
    auto cp = ledger_->checkpoint(key_, kOrigin);
    ASSERT_TRUE(cp.is_ok()) << cp.status().to_string();
    note_ = *cp;
  }

  // Disclosures are signed with an index by the checkpoint key unless `signed_index` is false.
  std::string export_of(const std::string& name, ExportFormat f, bool signed_index = true) {
    ExportOptions opt;
    opt.created = "2026-01-02T03:04:05Z";
    if (signed_index) opt.index_key = &key_;
    auto out = export_model(*ledger_, digest_of(name), f, opt);
    EXPECT_TRUE(out.is_ok()) << out.status().to_string();
    return out.is_ok() ? *out : std::string();
  }

  testing::TempDir dir_;
  PrivateKey key_ = new_key();
  PublicKey pub_ = key_.public_key();
  std::unique_ptr<Ledger> ledger_;
  std::vector<std::string> envs_;
  std::string note_;
};

TEST(ExportFormatNames, ParseAndName) {
  for (const char* n : {"disclosure", "spdx3", "cyclonedx", "hf-card"}) {
    auto f = parse_export_format(n);
    ASSERT_TRUE(f.is_ok());
    EXPECT_STREQ(export_format_name(*f), n);
  }
  auto bad = parse_export_format("spdx");
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("hf-card"), std::string::npos);
}

TEST_F(ExportTest, DisclosureCarriesEnvelopesProofsAndCheckpoint) {
  std::string text = export_of("org/tuned", ExportFormat::kDisclosure);
  json doc = json::parse(text);
  EXPECT_EQ(doc["schema"], kDisclosureSchema);
  EXPECT_EQ(doc["model"], digest_of("org/tuned"));
  EXPECT_EQ(doc["checkpoint"]["note"], note_);
  EXPECT_EQ(doc["checkpoint"]["tree_size"], 5u);
  // The tuned model's own entry (2: subject + ancestor) and its child's (3: descendant).
  ASSERT_EQ(doc["entries"].size(), 2u);
  EXPECT_EQ(doc["entries"][0]["index"], 2u);
  EXPECT_EQ(doc["entries"][0]["roles"], json({"ancestor", "subject"}));
  EXPECT_EQ(doc["entries"][1]["index"], 3u);
  EXPECT_EQ(doc["entries"][1]["roles"], json({"descendant"}));
  // Envelopes round-trip byte for byte.
  auto env2 = base64_decode(doc["entries"][0]["envelope"].get<std::string>());
  ASSERT_TRUE(env2.is_ok());
  EXPECT_EQ(*env2, envs_[2]);
  EXPECT_EQ(doc["lineage"]["parents"][0]["digest"], digest_of("org/base"));
  EXPECT_EQ(doc["lineage"]["parents"][0]["relation"], "finetuned");
  EXPECT_EQ(doc["lineage"]["children"][0]["digest"], digest_of("org/tuned-q4"));

  ExportVerifyOptions vopt = verify_options();
  vopt.envelope_keys = {&pub_};
  auto rep = verify_export(text, pub_, vopt);
  ASSERT_TRUE(rep.is_ok()) << rep.status().to_string();
  EXPECT_EQ(rep->model_digest, digest_of("org/tuned"));
  EXPECT_EQ(rep->origin, kOrigin);
  EXPECT_EQ(rep->tree_size, 5u);
  EXPECT_EQ(rep->root, *ledger_->root());
  EXPECT_EQ(rep->entries_verified, 2u);
  EXPECT_EQ(rep->envelope_signatures_checked, 2u);
  EXPECT_EQ(rep->parents, std::vector<std::string>{digest_of("org/base")});
  EXPECT_EQ(rep->children, std::vector<std::string>{digest_of("org/tuned-q4")});
  EXPECT_TRUE(rep->complete);
  EXPECT_EQ(rep->index_entries, 2u);
  EXPECT_EQ(rep->index_key_id, pub_.key_id());
}

TEST_F(ExportTest, BaseModelDisclosureListsAllDescendants) {
  std::string text = export_of("org/base", ExportFormat::kDisclosure);
  json doc = json::parse(text);
  std::vector<uint64_t> idx;
  for (const auto& e : doc["entries"]) idx.push_back(e["index"]);
  EXPECT_EQ(idx, (std::vector<uint64_t>{0, 2, 3, 4}));  // not the unrelated entry 1
  EXPECT_EQ(doc["lineage"]["children"].size(), 2u);
  EXPECT_TRUE(verify_export(text, pub_, verify_options()).is_ok());
}

TEST_F(ExportTest, WrongKeysFail) {
  std::string text = export_of("org/tuned-q4", ExportFormat::kDisclosure);
  PrivateKey other = new_key();
  PublicKey other_pub = other.public_key();
  auto bad_cp = verify_export(text, other_pub, verify_options());
  EXPECT_EQ(bad_cp.status().code(), StatusCode::kInvalidArgument) << bad_cp.status().to_string();
  ExportVerifyOptions vopt = verify_options();
  vopt.envelope_keys = {&other_pub};
  auto bad_env = verify_export(text, pub_, vopt);
  EXPECT_EQ(bad_env.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad_env.status().message().find("envelope"), std::string::npos);
}

TEST_F(ExportTest, NoCheckpointOrNewerEntriesAreRefused) {
  auto l = Ledger::init(dir_.file("fresh.db"), test_options());
  ASSERT_TRUE(l.is_ok());
  ASSERT_TRUE((*l)->append(make_envelope(key_, "org/x")).is_ok());
  auto none = export_model(**l, digest_of("org/x"), ExportFormat::kDisclosure);
  EXPECT_EQ(none.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(none.status().message().find("sign a checkpoint first: prov ledger checkpoint"),
            std::string::npos);
  // An entry appended after the latest checkpoint cannot be proven against it.
  ASSERT_TRUE(
      ledger_->append(make_envelope(key_, "org/tuned-v2", "org/tuned", "finetuned")).is_ok());
  auto newer = export_model(*ledger_, digest_of("org/tuned"), ExportFormat::kDisclosure);
  EXPECT_EQ(newer.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(newer.status().message().find("entry 5"), std::string::npos);
  // Unknown model.
  auto unknown = export_model(*ledger_, digest_of("org/nothing"), ExportFormat::kDisclosure);
  EXPECT_EQ(unknown.status().code(), StatusCode::kNotFound);
  // A checkpoint that is not this ledger's.
  ExportOptions opt;
  opt.checkpoint_note = *sign_checkpoint({kOrigin, 5, Hash{}, {}}, kOrigin, key_);
  auto forged = export_model(*ledger_, digest_of("org/tuned"), ExportFormat::kDisclosure, opt);
  EXPECT_EQ(forged.status().code(), StatusCode::kCorrupt);
}

// Each targeted change to a verified document must fail verification.
TEST_F(ExportTest, TargetedMutationsFail) {
  std::string text = export_of("org/tuned", ExportFormat::kDisclosure);
  const json orig = json::parse(text);
  ASSERT_TRUE(verify_export(text, pub_, verify_options()).is_ok());
  std::vector<std::pair<std::string, std::function<void(json&)>>> mutations = {
      {"schema", [](json& d) { d["schema"] = "prov-disclosure/v3"; }},
      {"schema v1 (which has no index)", [](json& d) { d["schema"] = "prov-disclosure/v1"; }},
      {"model", [](json& d) { d["model"] = digest_of("org/base"); }},
      {"extra member", [](json& d) { d["comment"] = "x"; }},
      {"missing lineage", [](json& d) { d.erase("lineage"); }},
      {"envelope byte",
       [](json& d) {
         std::string env = *base64_decode(d["entries"][0]["envelope"].get<std::string>());
         env[env.size() / 2] ^= 1;
         d["entries"][0]["envelope"] = base64_encode(env);
       }},
      {"envelope swapped", [&](json& d) { d["entries"][0]["envelope"] = base64_encode(envs_[4]); }},
      {"created_at",
       [](json& d) { d["entries"][0]["created_at"] = "2020-01-01T00:00:00.000000Z"; }},
      {"leaf hash", [](json& d) { d["entries"][0]["leaf_hash"] = std::string(64, 'a'); }},
      {"index", [](json& d) { d["entries"][1]["index"] = 4; }},
      {"proof hash",
       [](json& d) {
         std::string h = d["entries"][0]["inclusion_proof"][0];
         h[0] = h[0] == '0' ? '1' : '0';
         d["entries"][0]["inclusion_proof"][0] = h;
       }},
      {"proof truncated", [](json& d) { d["entries"][0]["inclusion_proof"].erase(0); }},
      {"proof extended",
       [](json& d) { d["entries"][0]["inclusion_proof"].push_back(std::string(64, '0')); }},
      {"roles", [](json& d) { d["entries"][1]["roles"] = {"subject"}; }},
      {"statement relation", [](json& d) { d["entries"][0]["statement"]["relation"] = "merged"; }},
      {"entry dropped", [](json& d) { d["entries"].erase(1); }},
      {"index dropped", [](json& d) { d.erase("index"); }},  // verifies, but not as complete
      {"index envelope byte",
       [](json& d) {
         std::string env = *base64_decode(d["index"]["envelope"].get<std::string>());
         env[env.size() / 3] ^= 1;
         d["index"]["envelope"] = base64_encode(env);
       }},
      {"index extra member", [](json& d) { d["index"]["key"] = "x"; }},
      {"entry duplicated", [](json& d) { d["entries"].push_back(d["entries"][1]); }},
      {"entries reordered", [](json& d) { std::swap(d["entries"][0], d["entries"][1]); }},
      {"lineage relation", [](json& d) { d["lineage"]["parents"][0]["relation"] = "merged"; }},
      {"checkpoint root", [](json& d) { d["checkpoint"]["root"] = std::string(64, 'b'); }},
      {"checkpoint size", [](json& d) { d["checkpoint"]["tree_size"] = 6; }},
      {"checkpoint note",
       [](json& d) {
         std::string n = d["checkpoint"]["note"];
         n[n.find('\n') + 1] = '4';  // tree size line
         d["checkpoint"]["note"] = n;
       }},
      {"checkpoint note signature stripped",
       [](json& d) {
         std::string n = d["checkpoint"]["note"];
         d["checkpoint"]["note"] = n.substr(0, n.find("\n\n") + 2);
       }},
  };
  for (auto& [name, mutate] : mutations) {
    json d = orig;
    mutate(d);
    ASSERT_NE(d, orig) << name;
    auto r = verify_export(d.dump(2), pub_, verify_options());
    // Without its index a package still verifies entry by entry, but is not proven complete.
    EXPECT_FALSE(r.is_ok() && r->complete) << name << " passed verification as complete";
    if (name != "index dropped") {
      EXPECT_FALSE(r.is_ok()) << name << " passed verification";
    }
  }
  // Non-canonical base64 of the same envelope bytes is refused too.
  json d = orig;
  std::string b = d["entries"][0]["envelope"];
  d["entries"][0]["envelope"] = b + " ";
  EXPECT_FALSE(verify_export(d.dump(), pub_, verify_options()).is_ok());
  // Whitespace-only changes keep it valid.
  EXPECT_TRUE(verify_export(orig.dump(), pub_, verify_options()).is_ok());
  EXPECT_EQ(verify_export("{", pub_).status().code(), StatusCode::kCorrupt);
  EXPECT_EQ(verify_export("", pub_).status().code(), StatusCode::kCorrupt);
}

// 200 random single-byte changes: each fails to parse, fails verification, or (whitespace
// only) leaves the document's content unchanged.
TEST_F(ExportTest, RandomByteFlipsNeverPassWithChangedContent) {
  std::string text = export_of("org/tuned", ExportFormat::kDisclosure);
  const json orig = json::parse(text);
  std::mt19937_64 rng(8);
  int passed = 0, rejected = 0;
  for (int t = 0; t < 200; ++t) {
    std::string m = text;
    size_t pos = rng() % m.size();
    m[pos] = static_cast<char>(m[pos] ^ static_cast<char>(1 + rng() % 255));
    auto r = verify_export(m, pub_, verify_options());
    if (!r.is_ok()) {
      ++rejected;
      continue;
    }
    ++passed;
    json parsed = json::parse(m, nullptr, false);
    ASSERT_FALSE(parsed.is_discarded());
    EXPECT_EQ(parsed, orig) << "flip at " << pos << " passed with changed content";
  }
  EXPECT_GT(rejected, 150);
}

TEST_F(ExportTest, HfCardMapsRelations) {
  std::string tuned = export_of("org/tuned", ExportFormat::kHfCard);
  EXPECT_EQ(tuned.rfind("---\n", 0), 0u);
  EXPECT_NE(tuned.find("base_model: \"org/base\"\n"), std::string::npos) << tuned;
  EXPECT_NE(tuned.find("base_model_relation: finetune\n"), std::string::npos);
  EXPECT_NE(tuned.find(to_hex(*ledger_->root())), std::string::npos);

  std::string q4 = export_of("org/tuned-q4", ExportFormat::kHfCard);
  EXPECT_NE(q4.find("base_model: \"org/tuned\"\n"), std::string::npos) << q4;
  EXPECT_NE(q4.find("base_model_relation: quantized\n"), std::string::npos);

  std::string student = export_of("org/student", ExportFormat::kHfCard);
  EXPECT_NE(student.find("base_model: \"org/base\"\n"), std::string::npos);
  EXPECT_EQ(student.find("base_model_relation:"), std::string::npos) << student;
  EXPECT_NE(student.find("\"distilled_logits\""), std::string::npos);

  std::string base = export_of("org/base", ExportFormat::kHfCard);
  EXPECT_EQ(base.find("base_model:"), std::string::npos);
  // The front matter closes.
  EXPECT_NE(base.find("\n---\n"), std::string::npos);
}

TEST_F(ExportTest, CycloneDxComponentPedigreeAndDeclarations) {
  json bom = json::parse(export_of("org/tuned-q4", ExportFormat::kCycloneDx));
  EXPECT_EQ(bom["bomFormat"], "CycloneDX");
  EXPECT_EQ(bom["specVersion"], "1.6");
  EXPECT_EQ(bom["serialNumber"].get<std::string>().rfind("urn:uuid:", 0), 0u);
  const json& c = bom["components"][0];
  EXPECT_EQ(c["type"], "machine-learning-model");
  EXPECT_EQ(c["name"], "org/tuned-q4");
  EXPECT_EQ(c["hashes"][0]["alg"], "SHA-256");
  EXPECT_EQ("sha256:" + c["hashes"][0]["content"].get<std::string>(), digest_of("org/tuned-q4"));
  ASSERT_EQ(c["pedigree"]["ancestors"].size(), 2u);
  EXPECT_EQ(c["pedigree"]["ancestors"][0]["name"], "org/tuned");  // direct parent first
  EXPECT_EQ(c["pedigree"]["ancestors"][1]["name"], "org/base");
  bool dependency = false;
  for (const auto& p : c["properties"]) {
    if (p["name"] == "prov:euaiact:model_dependency") {
      dependency = p["value"].get<std::string>().find(digest_of("org/tuned")) == 0;
    }
  }
  EXPECT_TRUE(dependency);
  ASSERT_EQ(bom["declarations"]["evidence"].size(), 2u);
  std::string att =
      bom["declarations"]["evidence"][1]["data"][0]["contents"]["attachment"]["content"];
  EXPECT_EQ(*base64_decode(att), envs_[3]);

  json student = json::parse(export_of("org/student", ExportFormat::kCycloneDx));
  bool synthetic = false;
  for (const auto& p : student["components"][0]["properties"]) {
    if (p["name"] == "prov:euaiact:synthetic_data_from_model") synthetic = true;
    EXPECT_NE(p["name"], "prov:euaiact:model_dependency");
  }
  EXPECT_TRUE(synthetic);
}

TEST_F(ExportTest, Spdx3GraphHasPackageAndLineageRelationships) {
  json doc = json::parse(export_of("org/tuned", ExportFormat::kSpdx3));
  EXPECT_EQ(doc["@context"], "https://spdx.org/rdf/3.0.1/spdx-context.jsonld");
  std::map<std::string, json> by_id;
  std::vector<json> rels;
  for (const auto& el : doc["@graph"]) {
    if (el.contains("spdxId")) {
      EXPECT_EQ(by_id.count(el["spdxId"]), 0u) << "duplicate " << el["spdxId"];
      by_id[el["spdxId"]] = el;
    }
    if (el["type"] == "Relationship") rels.push_back(el);
  }
  std::string me = "urn:prov:model:" + digest_of("org/tuned");
  ASSERT_TRUE(by_id.count(me));
  EXPECT_EQ(by_id[me]["type"], "ai_AIPackage");
  EXPECT_EQ(by_id[me]["verifiedUsing"][0]["algorithm"], "sha256");
  EXPECT_EQ("sha256:" + by_id[me]["verifiedUsing"][0]["hashValue"].get<std::string>(),
            digest_of("org/tuned"));
  bool up = false, down = false, evidence = false;
  for (const auto& r : rels) {
    if (r["relationshipType"] == "descendantOf" && r["from"] == me &&
        r["to"][0] == "urn:prov:model:" + digest_of("org/base")) {
      up = true;
    }
    if (r["relationshipType"] == "ancestorOf" && r["from"] == me &&
        r["to"][0] == "urn:prov:model:" + digest_of("org/tuned-q4")) {
      down = true;
    }
    if (r["relationshipType"] == "hasEvidence") evidence = true;
    // Every referenced element exists in the graph.
    EXPECT_TRUE(by_id.count(r["from"])) << r.dump();
    for (const auto& t : r["to"]) EXPECT_TRUE(by_id.count(t)) << r.dump();
  }
  EXPECT_TRUE(up);
  EXPECT_TRUE(down);
  EXPECT_TRUE(evidence);
  int documents = 0;
  for (const auto& [id, el] : by_id) {
    if (el["type"] != "SpdxDocument") continue;
    ++documents;
    EXPECT_EQ(el["rootElement"][0], me);
    for (const auto& e : el["element"]) EXPECT_TRUE(by_id.count(e)) << e;
  }
  EXPECT_EQ(documents, 1);
}

// Relation and parent come from the predicate's reader: a verifier without one cannot check a
// document that records them, and says so; one without lineage verifies.
TEST_F(ExportTest, VerifyingLineageNeedsThePredicateReader) {
  std::string text = export_of("org/tuned", ExportFormat::kDisclosure);
  auto r = verify_export(text, pub_);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("reader"), std::string::npos) << r.status().to_string();
  std::string unrelated = export_of("org/unrelated", ExportFormat::kDisclosure);
  auto u = verify_export(unrelated, pub_);
  EXPECT_TRUE(u.is_ok()) << u.status().to_string();
  // A reader that disagrees with the exporting ledger's fails verification.
  ExportVerifyOptions other;
  other.read_predicate = [](const std::string& type, const json& p) {
    auto f = read_test_predicate(type, p);
    if (f.is_ok() && !f->relation.empty()) f->relation = "merged";
    return f;
  };
  auto d = verify_export(text, pub_, other);
  ASSERT_FALSE(d.is_ok());
  EXPECT_EQ(d.status().code(), StatusCode::kCorrupt);
}

// A parent with no entry of its own is named by the predicate (through the reader), and the
// Hugging Face relation comes from the relation table.
TEST(ExportNames, ParentNameFromReaderAndHfRelations) {
  testing::TempDir dir;
  PrivateKey key = new_key();
  auto l = Ledger::init(dir.file("l.db"), test_options());
  ASSERT_TRUE(l.is_ok());
  ASSERT_TRUE((*l)->append_batch(
                      {make_envelope(key, "org/child", "org/outside", "finetuned", "Outside Model"),
                       make_envelope(key, "org/merge", "org/child", "merged"),
                       make_envelope(key, "org/lora", "org/child", "adapter"),
                       make_envelope(key, "org/pruned", "org/child", "pruned")})
                  .is_ok());
  ASSERT_TRUE((*l)->checkpoint(key, kOrigin).is_ok());
  auto card = [&](Ledger& ledger, const std::string& name) {
    auto out = export_model(ledger, digest_of(name), ExportFormat::kHfCard);
    EXPECT_TRUE(out.is_ok()) << out.status().to_string();
    return out.is_ok() ? *out : std::string();
  };
  std::string child = card(**l, "org/child");
  EXPECT_NE(child.find("base_model: \"Outside Model\"\n"), std::string::npos) << child;
  EXPECT_NE(child.find("base_model_relation: finetune\n"), std::string::npos) << child;
  std::string merge = card(**l, "org/merge");
  EXPECT_NE(merge.find("base_model: \"org/child\"\n"), std::string::npos) << merge;
  EXPECT_NE(merge.find("base_model_relation: merge\n"), std::string::npos) << merge;
  EXPECT_NE(card(**l, "org/lora").find("base_model_relation: adapter\n"), std::string::npos);
  std::string pruned = card(**l, "org/pruned");
  EXPECT_EQ(pruned.find("base_model_relation:"), std::string::npos) << pruned;
  EXPECT_NE(pruned.find("base_model_relation omitted"), std::string::npos) << pruned;
  // The same file opened without a reader: the columns were filled at append time, but the
  // parent's name is the predicate's and is no longer read.
  auto plain = Ledger::open(dir.file("l.db"));
  ASSERT_TRUE(plain.is_ok());
  std::string unnamed = card(**plain, "org/child");
  EXPECT_NE(unnamed.find("base_model: \"" + digest_of("org/outside") + "\"\n"), std::string::npos)
      << unnamed;
}

// The signed index lists every entry the package covers: removing one (an adverse finding, say)
// is caught and named, and so is any change to the index itself.
TEST_F(ExportTest, SignedIndexCatchesARemovedEntry) {
  std::string text = export_of("org/base", ExportFormat::kDisclosure);
  const json orig = json::parse(text);
  ASSERT_TRUE(orig.contains("index"));
  auto ok = verify_export(text, pub_, verify_options());
  ASSERT_TRUE(ok.is_ok()) << ok.status().to_string();
  EXPECT_TRUE(ok->complete);
  EXPECT_EQ(ok->index_entries, 4u);  // entries 0, 2, 3, 4

  // The index is a DSSE envelope of an in-toto Statement bound to the model and the checkpoint.
  auto env = dsse_verify(*base64_decode(orig["index"]["envelope"].get<std::string>()), pub_);
  ASSERT_TRUE(env.is_ok()) << env.status().to_string();
  json st = json::parse(env->payload);
  EXPECT_EQ(st["predicateType"], kDisclosureIndexPredicate);
  EXPECT_EQ(st["predicate"]["model"], digest_of("org/base"));
  EXPECT_EQ(st["predicate"]["checkpoint"]["tree_size"], 5u);
  EXPECT_EQ(st["predicate"]["checkpoint"]["root"], to_hex(*ledger_->root()));
  ASSERT_EQ(st["predicate"]["entries"].size(), 4u);
  EXPECT_EQ(st["predicate"]["entries"][2]["index"], 3u);
  EXPECT_EQ(st["predicate"]["entries"][2]["leaf_hash"], orig["entries"][2]["leaf_hash"]);

  // Entry 3 (a grandchild) removed: the roles and lineage of what is left still agree, so only the
  // index tells.
  json d = orig;
  d["entries"].erase(2);
  ASSERT_EQ(d["entries"][2]["index"], 4u);
  auto r = verify_export(d.dump(), pub_, verify_options());
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(r.status().message().find("entry 3 of the index is missing from the package"),
            std::string::npos)
      << r.status().to_string();

  // The index edited to match (entry 3 dropped from it too), signature kept: refused.
  {
    json forged = d;
    json statement = st;
    statement["predicate"]["entries"].erase(2);
    json envj = json::parse(*base64_decode(orig["index"]["envelope"].get<std::string>()));
    envj["payload"] = base64_encode(statement.dump());
    forged["index"]["envelope"] = base64_encode(envj.dump());
    auto f = verify_export(forged.dump(), pub_, verify_options());
    ASSERT_FALSE(f.is_ok());
    EXPECT_EQ(f.status().code(), StatusCode::kCorrupt);
    EXPECT_NE(f.status().message().find("disclosure index: its signature does not verify"),
              std::string::npos)
        << f.status().to_string();
  }
  // ... or re-signed by a key other than the one the verifier trusts: refused as well; only
  // naming that key as the index key accepts it.
  {
    PrivateKey attacker = new_key();
    PublicKey attacker_pub = attacker.public_key();
    json statement = st;
    statement["predicate"]["entries"].erase(2);
    json forged = d;
    forged["index"]["envelope"] =
        base64_encode(*dsse_sign(kInTotoPayloadType, statement.dump(), attacker));
    auto f = verify_export(forged.dump(), pub_, verify_options());
    ASSERT_FALSE(f.is_ok());
    EXPECT_EQ(f.status().code(), StatusCode::kCorrupt);
    // The index proves completeness only under a key the verifier trusts.
    ExportVerifyOptions theirs = verify_options();
    theirs.index_key = &attacker_pub;
    auto t = verify_export(forged.dump(), pub_, theirs);
    ASSERT_TRUE(t.is_ok()) << t.status().to_string();
    EXPECT_TRUE(t->complete);
  }
  // ... or stripped: the entries still verify one by one, but the package is not complete.
  {
    json stripped = d;
    stripped.erase("index");
    auto p = verify_export(stripped.dump(), pub_, verify_options());
    ASSERT_TRUE(p.is_ok()) << p.status().to_string();
    EXPECT_FALSE(p->complete);
    EXPECT_EQ(p->index_entries, 0u);
    ExportVerifyOptions strict = verify_options();
    strict.require_complete = true;
    auto q = verify_export(stripped.dump(), pub_, strict);
    EXPECT_EQ(q.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(q.status().message().find("not proven complete"), std::string::npos)
        << q.status().to_string();
  }
}

TEST_F(ExportTest, SignedIndexIsBoundToItsModelAndCheckpoint) {
  const json tuned = json::parse(export_of("org/tuned", ExportFormat::kDisclosure));
  const json base = json::parse(export_of("org/base", ExportFormat::kDisclosure));
  // Another model's index.
  json d = tuned;
  d["index"] = base["index"];
  auto r = verify_export(d.dump(), pub_, verify_options());
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(r.status().message().find("another model"), std::string::npos)
      << r.status().to_string();
  // An entry of another package added: it is not in the index.
  d = tuned;
  d["entries"].insert(d["entries"].begin(), base["entries"][0]);
  r = verify_export(d.dump(), pub_, verify_options());
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("entry 0 is in the package but not in the signed index"),
            std::string::npos)
      << r.status().to_string();
  // The index of an export against a later checkpoint (after a new finding about the model).
  ASSERT_TRUE(
      ledger_->append(make_envelope(key_, "org/tuned-v2", "org/tuned", "finetuned")).is_ok());
  ASSERT_TRUE(ledger_->checkpoint(key_, kOrigin).is_ok());
  const json later = json::parse(export_of("org/tuned", ExportFormat::kDisclosure));
  ASSERT_EQ(later["entries"].size(), 3u);
  d = tuned;
  d["index"] = later["index"];
  r = verify_export(d.dump(), pub_, verify_options());
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("another checkpoint"), std::string::npos)
      << r.status().to_string();
  // The later package without its new entry (5).
  d = later;
  d["entries"].erase(2);
  r = verify_export(d.dump(), pub_, verify_options());
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("entry 5 of the index is missing from the package"),
            std::string::npos)
      << r.status().to_string();
  // A separate index key: the index verifies under it, not under the checkpoint key.
  PrivateKey exporter = new_key();
  PublicKey exporter_pub = exporter.public_key();
  ExportOptions opt;
  opt.index_key = &exporter;
  auto text = export_model(*ledger_, digest_of("org/tuned"), ExportFormat::kDisclosure, opt);
  ASSERT_TRUE(text.is_ok()) << text.status().to_string();
  EXPECT_EQ(verify_export(*text, pub_, verify_options()).status().code(), StatusCode::kCorrupt);
  ExportVerifyOptions vopt = verify_options();
  vopt.index_key = &exporter_pub;
  auto v = verify_export(*text, pub_, vopt);
  ASSERT_TRUE(v.is_ok()) << v.status().to_string();
  EXPECT_TRUE(v->complete);
  EXPECT_EQ(v->index_key_id, exporter_pub.key_id());
}

// Without a key the package has no index: it verifies entry by entry and says it is not complete;
// a package of the previous schema version (which never had one) too.
TEST_F(ExportTest, PackageWithoutIndexIsNotProvenComplete) {
  std::string text = export_of("org/tuned", ExportFormat::kDisclosure, /*signed_index=*/false);
  json doc = json::parse(text);
  EXPECT_EQ(doc["schema"], kDisclosureSchema);
  EXPECT_FALSE(doc.contains("index"));
  auto r = verify_export(text, pub_, verify_options());
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_FALSE(r->complete);
  EXPECT_EQ(r->entries_verified, 2u);
  // Entry 3 removed (and the lineage edited to match): undetectable without an index, so the
  // package can only ever be reported as not complete.
  doc["entries"].erase(1);
  doc["lineage"]["children"] = json::array();
  auto removed = verify_export(doc.dump(), pub_, verify_options());
  ASSERT_TRUE(removed.is_ok()) << removed.status().to_string();
  EXPECT_FALSE(removed->complete);
  json v1 = json::parse(text);
  v1["schema"] = kDisclosureSchemaV1;
  auto old = verify_export(v1.dump(), pub_, verify_options());
  ASSERT_TRUE(old.is_ok()) << old.status().to_string();
  EXPECT_FALSE(old->complete);
}

}  // namespace
}  // namespace prov::store
