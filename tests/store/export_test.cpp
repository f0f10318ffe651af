#include "store/export.h"

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "tests/support/test_support.h"
#include "tests/tools/validate.h"

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
             make_envelope(key_, "org/student", "org/base", "distilled_logit")};
    auto idx = ledger_->append_batch(envs_);
    ASSERT_TRUE(idx.is_ok()) << idx.status().to_string();
    auto cp = ledger_->checkpoint(key_, kOrigin);
    ASSERT_TRUE(cp.is_ok()) << cp.status().to_string();
    note_ = *cp;
  }

  // Disclosures are signed with an index by the checkpoint key unless `signed_index` is false.
  // The mappings know the Hub repo ids in repo_ids_.
  std::string export_of(const std::string& name, ExportFormat f, bool signed_index = true) {
    ExportOptions opt;
    opt.created = "2026-01-02T03:04:05Z";
    opt.repo_ids = repo_ids_;
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
  std::map<std::string, std::string> repo_ids_;
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
      {"schema", [](json& d) { d["schema"] = "prov-disclosure/v4"; }},
      {"schema v2 (which has no EU fields)", [](json& d) { d["schema"] = "prov-disclosure/v2"; }},
      {"schema v1 (which has no index)", [](json& d) { d["schema"] = "prov-disclosure/v1"; }},
      {"EU dependency dropped",
       [](json& d) { d["eu_training_content"]["model_dependencies"] = json::array(); }},
      {"EU dependency moved to synthetic data",
       [](json& d) {
         std::swap(d["eu_training_content"]["model_dependencies"],
                   d["eu_training_content"]["synthetic_data_generators"]);
       }},
      {"EU fields dropped", [](json& d) { d.erase("eu_training_content"); }},
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

// The card names base models by Hub repo id only: the ones given (--repo-id), never a digest; a
// parent without one is left out, and a distillation teacher is no base model at all. Every card
// passes the Hub's metadata rules.
TEST_F(ExportTest, HfCardMapsRelations) {
  // No repo id known: no base_model, and a comment saying why (never the digest).
  std::string bare = export_of("org/tuned", ExportFormat::kHfCard);
  EXPECT_EQ(bare.find("\nbase_model:"), std::string::npos) << bare;
  EXPECT_NE(bare.find("# base_model omits " + digest_of("org/base") +
                      " (finetuned, ledger entry 2): no Hugging Face repo id is known"),
            std::string::npos)
      << bare;
  EXPECT_EQ(bare.find("base_model_relation:"), std::string::npos);

  repo_ids_ = {{digest_of("org/base"), "org/base"}, {digest_of("org/tuned"), "org/tuned"}};
  std::string tuned = export_of("org/tuned", ExportFormat::kHfCard);
  EXPECT_EQ(tuned.rfind("---\n", 0), 0u);
  EXPECT_NE(tuned.find("\nbase_model: \"org/base\"\n"), std::string::npos) << tuned;
  EXPECT_NE(tuned.find("base_model_relation: finetune\n"), std::string::npos);
  EXPECT_NE(tuned.find(to_hex(*ledger_->root())), std::string::npos);

  std::string q4 = export_of("org/tuned-q4", ExportFormat::kHfCard);
  EXPECT_NE(q4.find("\nbase_model: \"org/tuned\"\n"), std::string::npos) << q4;
  EXPECT_NE(q4.find("base_model_relation: quantized\n"), std::string::npos);

  // A distilled student shares no weights with its teacher: not a base_model, though its repo id
  // is known; the relation is kept in prov_provenance.
  std::string student = export_of("org/student", ExportFormat::kHfCard);
  EXPECT_EQ(student.find("\nbase_model:"), std::string::npos) << student;
  EXPECT_EQ(student.find("base_model_relation:"), std::string::npos) << student;
  EXPECT_NE(student.find("# not a base_model: " + digest_of("org/base")), std::string::npos)
      << student;
  EXPECT_NE(student.find("\"distilled_logit\""), std::string::npos);

  std::string base = export_of("org/base", ExportFormat::kHfCard);
  EXPECT_EQ(base.find("base_model:"), std::string::npos);
  EXPECT_NE(base.find("\n---\n"), std::string::npos);  // the front matter closes
  for (const std::string* card : {&bare, &tuned, &q4, &student, &base}) {
    EXPECT_EQ(card->find("base_model: \"sha256:"), std::string::npos) << *card;
  }
  PROV_EXPECT_VALID_EXPORTS(dir_, "hf-card",
                            {{"bare.md", bare},
                             {"tuned.md", tuned},
                             {"q4.md", q4},
                             {"student.md", student},
                             {"base.md", base}});
}

// A repo id the model's own files name (ExportOptions::base_model_hints) goes to the one parent
// without a repo id; hints that cannot be placed are named, not guessed.
TEST_F(ExportTest, HfCardTakesTheBaseModelFromTheModelsFiles) {
  ExportOptions opt;
  opt.base_model_hints = {"acme/base-7b"};
  auto card = export_model(*ledger_, digest_of("org/tuned"), ExportFormat::kHfCard, opt);
  ASSERT_TRUE(card.is_ok()) << card.status().to_string();
  EXPECT_NE(card->find("\nbase_model: \"acme/base-7b\"\nbase_model_relation: finetune\n"),
            std::string::npos)
      << *card;
  PROV_EXPECT_VALID_EXPORT(dir_, "hf-card", "hinted.md", *card);
  opt.base_model_hints = {"acme/base-7b", "acme/other"};
  card = export_model(*ledger_, digest_of("org/tuned"), ExportFormat::kHfCard, opt);
  ASSERT_TRUE(card.is_ok());
  EXPECT_EQ(card->find("\nbase_model:"), std::string::npos) << *card;
  EXPECT_NE(card->find("# the model's files name base models acme/base-7b, acme/other"),
            std::string::npos)
      << *card;
  // A repo id given for the parent wins; the hint is then unused.
  opt.repo_ids = {{digest_of("org/base"), "org/base"}};
  opt.base_model_hints = {"acme/base-7b"};
  card = export_model(*ledger_, digest_of("org/tuned"), ExportFormat::kHfCard, opt);
  ASSERT_TRUE(card.is_ok());
  EXPECT_NE(card->find("\nbase_model: \"org/base\"\n"), std::string::npos) << *card;
  // Not a repo id: refused.
  opt.repo_ids = {{digest_of("org/base"), "sha256:" + std::string(64, 'a')}};
  EXPECT_EQ(
      export_model(*ledger_, digest_of("org/tuned"), ExportFormat::kHfCard, opt).status().code(),
      StatusCode::kInvalidArgument);
}

TEST(ExportRepoIds, HubRepoIdRulesAndMappings) {
  for (const char* ok : {"org/name", "gpt2", "Org_1/model.v2-7B", "a/b"}) {
    EXPECT_TRUE(is_hf_repo_id(ok)) << ok;
  }
  for (const char* bad :
       {"", "sha256:abc", "org/", "/name", "org/na--me", "org/na..me", "org/name.git", "a/b/c",
        "org/-name", "org/name-", "org/na me", "https://huggingface.co/org/name"}) {
    EXPECT_FALSE(is_hf_repo_id(bad)) << bad;
  }
  EXPECT_FALSE(is_hf_repo_id("org/" + std::string(97, 'x')));
  auto m = parse_repo_ids({digest_of("a") + "=org/a", to_hex(sha256("weights of b")) + "=org/b"});
  ASSERT_TRUE(m.is_ok()) << m.status().to_string();
  EXPECT_EQ(m->at(digest_of("a")), "org/a");
  EXPECT_EQ(m->at(digest_of("b")), "org/b");  // a bare hex digest is normalised
  for (const std::vector<std::string>& bad : std::vector<std::vector<std::string>>{
           {"org/a"},
           {digest_of("a") + "=sha256:00"},
           {"notadigest=org/a"},
           {digest_of("a") + "=org/a", digest_of("a") + "=org/b"}}) {
    auto r = parse_repo_ids(bad);
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad.back();
  }
}

// The official CycloneDX 1.6 schema accepts every export; the model is a machine-learning-model
// component with a model card and its ancestors in pedigree; its digest is an OMS manifest digest,
// not a file hash; every export is a new BOM (a fresh RFC 4122 version 4 serial number).
TEST_F(ExportTest, CycloneDxComponentPedigreeAndDeclarations) {
  repo_ids_ = {{digest_of("org/tuned"), "org/tuned"}};
  const std::string text = export_of("org/tuned-q4", ExportFormat::kCycloneDx);
  json bom = json::parse(text);
  EXPECT_EQ(bom["bomFormat"], "CycloneDX");
  EXPECT_EQ(bom["specVersion"], "1.6");
  EXPECT_EQ(bom["version"], 1);
  const std::string serial = bom["serialNumber"];
  ASSERT_EQ(serial.size(), 45u) << serial;
  EXPECT_EQ(serial.rfind("urn:uuid:", 0), 0u);
  EXPECT_EQ(serial[23], '4') << "UUID version 4: " << serial;
  EXPECT_NE(std::string("89ab").find(serial[28]), std::string::npos) << "RFC 4122 variant";
  json again = json::parse(export_of("org/tuned-q4", ExportFormat::kCycloneDx));
  EXPECT_NE(again["serialNumber"], bom["serialNumber"]) << "a re-export is a new BOM";
  EXPECT_EQ(again["version"], 1);

  const json& c = bom["components"][0];
  EXPECT_EQ(c["type"], "machine-learning-model");
  EXPECT_EQ(c["name"], "org/tuned-q4");
  EXPECT_FALSE(c.contains("hashes")) << "the OMS digest is not the hash of a file";
  auto property = [](const json& comp, const std::string& name) {
    for (const auto& p : comp["properties"]) {
      if (p["name"] == name) return p["value"].get<std::string>();
    }
    return std::string();
  };
  EXPECT_EQ(property(c, "prov:oms:model_digest"), digest_of("org/tuned-q4"));
  EXPECT_TRUE(c.contains("modelCard"));
  EXPECT_NE(c["modelCard"]["properties"][0]["value"].get<std::string>().find(
                "quantized from org/tuned (ledger entry 3)"),
            std::string::npos);
  ASSERT_EQ(c["pedigree"]["ancestors"].size(), 2u);
  const json& parent = c["pedigree"]["ancestors"][0];  // direct parent first
  EXPECT_EQ(parent["name"], "org/tuned");              // its repo id
  EXPECT_EQ(parent["externalReferences"][0]["url"], "https://huggingface.co/org/tuned");
  EXPECT_EQ(c["pedigree"]["ancestors"][1]["name"], "org/base");
  EXPECT_EQ(property(c, "prov:euaiact:model_dependency").find(digest_of("org/tuned")), 0u);
  ASSERT_EQ(bom["declarations"]["evidence"].size(), 2u);
  std::string att =
      bom["declarations"]["evidence"][1]["data"][0]["contents"]["attachment"]["content"];
  EXPECT_EQ(*base64_decode(att), envs_[3]);

  // A distilled student: its teacher generated synthetic training data (EU AI Act template
  // 2.5), a dataset of its model card, not a model dependency.
  const std::string student_text = export_of("org/student", ExportFormat::kCycloneDx);
  json student = json::parse(student_text);
  const json& s = student["components"][0];
  EXPECT_EQ(property(s, "prov:euaiact:synthetic_data_from_model").find(digest_of("org/base")), 0u);
  EXPECT_EQ(property(s, "prov:euaiact:model_dependency"), "");
  ASSERT_EQ(s["modelCard"]["modelParameters"]["datasets"].size(), 1u);
  EXPECT_EQ(s["modelCard"]["modelParameters"]["datasets"][0]["type"], "dataset");
  PROV_EXPECT_VALID_EXPORTS(
      dir_, "cyclonedx",
      {{"q4.cdx.json", text},
       {"student.cdx.json", student_text},
       {"base.cdx.json", export_of("org/base", ExportFormat::kCycloneDx)},
       {"tuned.cdx.json", export_of("org/tuned", ExportFormat::kCycloneDx)},
       {"unrelated.cdx.json", export_of("org/unrelated", ExportFormat::kCycloneDx)}});
}

// The SPDX graph: an ai_AIPackage per model with the AI profile's required members and license
// relationships, lineage relationships with hasEvidence to the signed report, ids no other export
// reuses. The official JSON schema, JSON-LD context and SHACL model (with the AI profile's rules)
// accept it.
TEST_F(ExportTest, Spdx3GraphHasPackageAndLineageRelationships) {
  repo_ids_ = {{digest_of("org/base"), "org/base"}};
  const std::string text = export_of("org/tuned", ExportFormat::kSpdx3);
  json doc = json::parse(text);
  EXPECT_EQ(doc["@context"], "https://spdx.org/rdf/3.0.1/spdx-context.jsonld");
  std::map<std::string, json> by_id;
  std::map<std::string, std::string> package_of;  // digest -> spdxId
  std::vector<json> rels;
  for (const auto& el : doc["@graph"]) {
    if (el.contains("spdxId")) {
      EXPECT_EQ(by_id.count(el["spdxId"]), 0u) << "duplicate " << el["spdxId"];
      by_id[el["spdxId"]] = el;
    }
    if (el["type"] == "Relationship") rels.push_back(el);
    if (el["type"] == "ai_AIPackage") {
      ASSERT_EQ(el["externalIdentifier"].size(), 1u);
      const json& id = el["externalIdentifier"][0];
      EXPECT_EQ(id["issuingAuthority"], "OpenSSF model signing (OMS) manifest digest");
      package_of[id["identifier"]] = el["spdxId"];
      EXPECT_FALSE(el.contains("verifiedUsing")) << "the OMS digest is not the hash of a file";
      for (const char* k : {"suppliedBy", "software_downloadLocation", "software_packageVersion",
                            "software_primaryPurpose", "releaseTime"}) {
        EXPECT_TRUE(el.contains(k)) << k;
      }
      EXPECT_EQ(el["software_packageVersion"], id["identifier"]);
    }
    EXPECT_FALSE(el.contains("software_contentType")) << "not an SPDX 3.0.1 term";
  }
  ASSERT_EQ(package_of.size(), 3u);  // base, tuned, tuned-q4
  const std::string me = package_of[digest_of("org/tuned")];
  const std::string base = package_of[digest_of("org/base")];
  EXPECT_EQ(by_id[base]["name"], "org/base");
  EXPECT_EQ(by_id[base]["software_downloadLocation"], "https://huggingface.co/org/base");
  EXPECT_EQ(by_id[by_id[base]["suppliedBy"]]["type"], "Organization");
  EXPECT_EQ(by_id[by_id[base]["suppliedBy"]]["name"], "org");
  bool up = false, down = false;
  std::map<std::string, int> licenses;  // from -> count
  std::set<std::string> with_evidence;
  for (const auto& r : rels) {
    if (r["relationshipType"] == "descendantOf" && r["from"] == me && r["to"][0] == base) up = true;
    if (r["relationshipType"] == "ancestorOf" && r["from"] == me &&
        r["to"][0] == package_of[digest_of("org/tuned-q4")]) {
      down = true;
    }
    if (r["relationshipType"] == "hasDeclaredLicense") ++licenses[r["from"]];
    if (r["relationshipType"] == "hasEvidence") {
      with_evidence.insert(r["from"].get<std::string>());
      const json& file = by_id[r["to"][0]];
      EXPECT_EQ(file["type"], "software_File");
      EXPECT_EQ(file["contentType"], "application/vnd.dsse.envelope.v1+json");
    }
    EXPECT_TRUE(by_id.count(r["from"])) << r.dump();
  }
  EXPECT_TRUE(up);
  EXPECT_TRUE(down);
  for (const auto& [digest, id] : package_of) EXPECT_EQ(licenses[id], 1) << digest;
  for (const auto& r : rels) {
    if (r["relationshipType"] == "descendantOf" || r["relationshipType"] == "ancestorOf") {
      EXPECT_TRUE(with_evidence.count(r["spdxId"])) << "no evidence for " << r.dump();
    }
  }
  // The evidence file is the signed report as prov audit writes it: the envelope and a newline.
  bool file_found = false;
  for (const auto& [id, el] : by_id) {
    if (el["type"] != "software_File" || el["name"] != "ledger-entry-2.dsse.json") continue;
    file_found = true;
    EXPECT_EQ(el["verifiedUsing"][0]["hashValue"], to_hex(sha256(envs_[2] + "\n")));
  }
  EXPECT_TRUE(file_found);
  int documents = 0;
  for (const auto& [id, el] : by_id) {
    if (el["type"] != "SpdxDocument") continue;
    ++documents;
    EXPECT_EQ(el["rootElement"][0], me);
    for (const auto& e : el["element"]) EXPECT_TRUE(by_id.count(e)) << e;
  }
  EXPECT_EQ(documents, 1);
  PROV_EXPECT_VALID_EXPORTS(
      dir_, "spdx3",
      {{"tuned.spdx.json", text},
       {"base.spdx.json", export_of("org/base", ExportFormat::kSpdx3)},
       {"q4.spdx.json", export_of("org/tuned-q4", ExportFormat::kSpdx3)},
       {"student.spdx.json", export_of("org/student", ExportFormat::kSpdx3)},
       {"unrelated.spdx.json", export_of("org/unrelated", ExportFormat::kSpdx3)}});
}

// Two exports whose lineage overlaps (the base model's and the fine-tune's) share no element id,
// so the documents merge: the relationship that reads descendantOf in one and ancestorOf in the
// other are two elements, and the merged graph has one element per id.
TEST_F(ExportTest, Spdx3ExportsMergeWithoutIdClashes) {
  std::set<std::string> ids;
  for (const char* m : {"org/tuned", "org/base", "org/tuned"}) {
    const json doc = json::parse(export_of(m, ExportFormat::kSpdx3));
    for (const auto& el : doc["@graph"]) {
      if (el.contains("spdxId")) {
        EXPECT_TRUE(ids.insert(el["spdxId"].get<std::string>()).second)
            << el["spdxId"] << " is reused by another export";
      }
    }
  }
  EXPECT_GT(ids.size(), 30u);
}

// The validators the export tests rely on reject what the exports used to get wrong, so a pass
// means something: SPDX's software_contentType (not a 3.0.1 term; JSON-LD would drop it), an
// AIPackage without the AI profile's releaseTime or license relationships, a supplier that is no
// Agent; a CycloneDX component hash that is not one; a card naming its base model by digest.
TEST_F(ExportTest, ValidatorsRejectWhatTheExportsUsedToGetWrong) {
  const json spdx = json::parse(export_of("org/tuned", ExportFormat::kSpdx3));
  std::vector<std::pair<std::string, std::function<void(json&)>>> spdx_breaks = {
      {"software_contentType",
       [](json& d) {
         for (auto& el : d["@graph"]) {
           if (el["type"] == "software_File") {
             el["software_contentType"] = el["contentType"];
             el.erase("contentType");
           }
         }
       }},
      {"no releaseTime",
       [](json& d) {
         for (auto& el : d["@graph"]) {
           if (el["type"] == "ai_AIPackage") el.erase("releaseTime");
         }
       }},
      {"no declared license",
       [](json& d) {
         auto& g = d["@graph"];
         for (size_t i = 0; i < g.size(); ++i) {
           if (g[i].value("relationshipType", "") == "hasDeclaredLicense") {
             g.erase(i);
             break;
           }
         }
       }},
      {"supplier not an Agent",
       [](json& d) {
         for (auto& el : d["@graph"]) {
           if (el["type"] == "ai_AIPackage") el["suppliedBy"] = el["spdxId"];
         }
       }},
  };
  for (auto& [name, mutate] : spdx_breaks) {
    json d = spdx;
    mutate(d);
    auto v = testing::validate_exports(dir_, "spdx3", {{"broken.spdx.json", d.dump()}});
    if (v.kind == testing::Validation::kUnavailable) GTEST_SKIP() << v.output;
    EXPECT_EQ(v.kind, testing::Validation::kInvalid) << name << " passed the SPDX validator";
  }
  json bom = json::parse(export_of("org/tuned", ExportFormat::kCycloneDx));
  bom["components"][0]["hashes"] = {{{"alg", "SHA-256"}, {"content", digest_of("org/tuned")}}};
  EXPECT_EQ(testing::validate_exports(dir_, "cyclonedx", {{"broken.cdx.json", bom.dump()}}).kind,
            testing::Validation::kInvalid);
  std::string card = "---\nbase_model: \"" + digest_of("org/base") + "\"\n---\n";
  EXPECT_EQ(testing::validate_exports(dir_, "hf-card", {{"broken.md", card}}).kind,
            testing::Validation::kInvalid);
  card = "---\nbase_model: org/base\nbase_model_relation: finetuned\n---\n";
  EXPECT_EQ(testing::validate_exports(dir_, "hf-card", {{"broken2.md", card}}).kind,
            testing::Validation::kInvalid);
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

// A parent with no entry of its own is named by the predicate (through the reader); the Hugging
// Face relation comes from the relation table (relations that change the weights otherwise are
// "finetune", the Hub's word for them).
TEST(ExportNames, ParentNameFromReaderAndHfRelations) {
  testing::TempDir dir;
  PrivateKey key = new_key();
  auto l = Ledger::init(dir.file("l.db"), test_options());
  ASSERT_TRUE(l.is_ok());
  ASSERT_TRUE((*l)->append_batch(
                      {make_envelope(key, "org/child", "org/outside", "finetuned", "Outside Model"),
                       make_envelope(key, "org/merge", "org/child", "merged"),
                       make_envelope(key, "org/lora", "org/child", "adapter"),
                       make_envelope(key, "org/pruned", "org/child", "pruned"),
                       make_envelope(key, "org/copy", "org/child", "converted")})
                  .is_ok());
  ASSERT_TRUE((*l)->checkpoint(key, kOrigin).is_ok());
  ExportOptions opt;
  opt.repo_ids = {{digest_of("org/outside"), "outside/model"},
                  {digest_of("org/child"), "org/child"}};
  auto card = [&](Ledger& ledger, const std::string& name) {
    auto out = export_model(ledger, digest_of(name), ExportFormat::kHfCard, opt);
    EXPECT_TRUE(out.is_ok()) << out.status().to_string();
    return out.is_ok() ? *out : std::string();
  };
  std::string child = card(**l, "org/child");
  EXPECT_NE(child.find("base_model: \"outside/model\"\n"), std::string::npos) << child;
  EXPECT_NE(child.find("base_model_relation: finetune\n"), std::string::npos) << child;
  EXPECT_NE(child.find("derived from `outside/model` (finetuned)"), std::string::npos) << child;
  std::string merge = card(**l, "org/merge");
  EXPECT_NE(merge.find("base_model: \"org/child\"\n"), std::string::npos) << merge;
  EXPECT_NE(merge.find("base_model_relation: merge\n"), std::string::npos) << merge;
  EXPECT_NE(card(**l, "org/lora").find("base_model_relation: adapter\n"), std::string::npos);
  EXPECT_NE(card(**l, "org/pruned").find("base_model_relation: finetune\n"), std::string::npos);
  // A converted copy has no Hugging Face relation: base_model without one, and the reason.
  std::string copy = card(**l, "org/copy");
  EXPECT_NE(copy.find("base_model: \"org/child\"\n"), std::string::npos) << copy;
  EXPECT_EQ(copy.find("base_model_relation:"), std::string::npos) << copy;
  EXPECT_NE(copy.find("# base_model_relation omitted"), std::string::npos) << copy;
  // Without repo ids the parent's name is not a repo id either: the card says so.
  opt.repo_ids.clear();
  std::string unnamed = card(**l, "org/child");
  EXPECT_EQ(unnamed.find("\nbase_model:"), std::string::npos) << unnamed;
  EXPECT_NE(unnamed.find("derived from `Outside Model` (finetuned)"), std::string::npos) << unnamed;
  // recorded_parents: what the EU summary check compares with, names included.
  auto parents = recorded_parents(**l, digest_of("org/child"));
  ASSERT_TRUE(parents.is_ok()) << parents.status().to_string();
  ASSERT_EQ(parents->size(), 1u);
  EXPECT_EQ((*parents)[0].digest, digest_of("org/outside"));
  EXPECT_EQ((*parents)[0].relation, "finetuned");
  EXPECT_EQ((*parents)[0].entry, 0u);
  EXPECT_EQ((*parents)[0].names, std::vector<std::string>{"Outside Model"});
  EXPECT_EQ(recorded_parents(**l, digest_of("org/none")).status().code(), StatusCode::kNotFound);
}

TEST(ExportEuFields, TemplateFieldOfEachRelation) {
  for (const char* r : {"identical", "converted", "quantized", "permuted", "noised", "pruned",
                        "merged", "finetuned", "weight_derived", "adapter", "finetune", "", "x"}) {
    EXPECT_EQ(eu_summary_field(r), EuSummaryField::kModelDependency) << r;
  }
  for (const char* r : {"distilled_logit", "distilled_seq", "distillation"}) {
    EXPECT_EQ(eu_summary_field(r), EuSummaryField::kSyntheticDataGenerator) << r;
  }
  for (const char* r : {"independent", "inconclusive"}) {
    EXPECT_EQ(eu_summary_field(r), EuSummaryField::kNone) << r;
  }
}

// The disclosure carries the EU training-content fields, recomputed from the envelopes.
TEST_F(ExportTest, DisclosureCarriesTheEuTrainingContentFields) {
  json student = json::parse(export_of("org/student", ExportFormat::kDisclosure));
  EXPECT_EQ(student["schema"], "prov-disclosure/v3");
  const json& eu = student["eu_training_content"];
  EXPECT_EQ(eu["model_dependencies"], json::array());
  ASSERT_EQ(eu["synthetic_data_generators"].size(), 1u);
  EXPECT_EQ(eu["synthetic_data_generators"][0]["digest"], digest_of("org/base"));
  EXPECT_EQ(eu["synthetic_data_generators"][0]["relation"], "distilled_logit");
  EXPECT_EQ(eu["synthetic_data_generators"][0]["entry"], 4);
  EXPECT_TRUE(verify_export(student.dump(), pub_, verify_options()).is_ok());
  json tuned = json::parse(export_of("org/tuned", ExportFormat::kDisclosure));
  ASSERT_EQ(tuned["eu_training_content"]["model_dependencies"].size(), 1u);
  EXPECT_EQ(tuned["eu_training_content"]["model_dependencies"][0]["digest"], digest_of("org/base"));
  // Hiding the teacher fails verification.
  student["eu_training_content"]["synthetic_data_generators"] = json::array();
  auto r = verify_export(student.dump(), pub_, verify_options());
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("eu_training_content differs"), std::string::npos)
      << r.status().to_string();
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
  // Earlier versions verify: v2 (no EU fields), v1 (no index either).
  json v2 = json::parse(text);
  v2.erase("eu_training_content");
  v2["schema"] = kDisclosureSchemaV2;
  auto older = verify_export(v2.dump(), pub_, verify_options());
  ASSERT_TRUE(older.is_ok()) << older.status().to_string();
  json v1 = v2;
  v1["schema"] = kDisclosureSchemaV1;
  auto old = verify_export(v1.dump(), pub_, verify_options());
  ASSERT_TRUE(old.is_ok()) << old.status().to_string();
  EXPECT_FALSE(old->complete);
}

}  // namespace
}  // namespace prov::store
