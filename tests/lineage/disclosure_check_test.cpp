// The EU AI Act training-content summary checked against signed lineage reports in a ledger
// (lineage/disclosure_check.h), the base-model hints a model's own files give the card export
// (lineage/base_model_hints.h), and a signed report in the URL-safe base64 alphabet verifying
// (prov verify).
#include "lineage/disclosure_check.h"

#include <gtest/gtest.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "core/sha256.h"
#include "lineage/base_model_hints.h"
#include "lineage/ledger_facts.h"
#include "lineage/statement.h"
#include "model/formats/gguf.h"
#include "store/keys.h"
#include "tests/support/test_support.h"

namespace prov::lineage {
namespace {

using nlohmann::json;

std::string digest_of(const std::string& name) {
  return "sha256:" + to_hex(sha256("weights of " + name));
}

// A lineage report as prov audit writes one (docs/formats/report.md): `candidate` derived from
// `parent` by `relation` ("" for an independent verdict).
json report(const std::string& candidate, const std::string& parent, const std::string& relation) {
  json r;
  r["report_version"] = 1;
  r["candidate"] = {{"name", candidate}, {"digest", {{"sha256", digest_of(candidate).substr(7)}}}};
  r["verdict"] = {{"relation", relation.empty() ? "independent" : relation},
                  {"parent", parent.empty() ? json(nullptr) : json(parent)},
                  {"p_value", 1e-9},
                  {"confidence", "high"},
                  {"summary", relation.empty() ? "independent" : relation + " from " + parent}};
  if (!parent.empty()) r["verdict"]["parent_digest"] = digest_of(parent);
  r["references"] = json::array();
  r["evidence"] = json::array();
  r["graph"] = {{"nodes", json::array()}, {"edges", json::array()}};
  r["tool"] = {{"name", "prov"}, {"version", "test"}};
  return r;
}

std::string signed_report(const json& r, const store::PrivateKey& key) {
  auto statement = canonical_statement(r);
  EXPECT_TRUE(statement.is_ok()) << statement.status().to_string();
  auto env = store::dsse_sign(store::kInTotoPayloadType, *statement, key);
  EXPECT_TRUE(env.is_ok());
  return *env;
}

store::PrivateKey new_key() {
  auto k = store::PrivateKey::generate(store::KeyType::kEd25519);
  EXPECT_TRUE(k.is_ok());
  return std::move(k).value();
}

// acme/student was distilled (from sequences) from big/teacher and fine-tuned from acme/base;
// acme/base was fine-tuned from meta/llama; an independent verdict names no parent.
class DisclosureCheckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto l = open_ledger(dir_.file("ledger.db"), /*create=*/true);
    ASSERT_TRUE(l.is_ok()) << l.status().to_string();
    ledger_ = std::move(*l);
    for (const json& r :
         {report("acme/base", "meta/llama", "finetuned"),
          report("acme/student", "acme/base", "finetuned"),
          report("acme/student", "big/teacher", "distilled_seq"), report("acme/student", "", "")}) {
      auto i = ledger_->append(signed_report(r, key_));
      ASSERT_TRUE(i.is_ok()) << i.status().to_string();
    }
  }

  Result<DisclosureCheck> check(const json& summary) {
    PROV_ASSIGN_OR_RETURN(TrainingSummary s, parse_training_summary(summary.dump()));
    return check_training_summary(s, *ledger_);
  }

  static json summary(const json& dependencies, const json& on_market = json::array(),
                      bool synthetic_used = true) {
    return {{"schema", kTrainingSummarySchema},
            {"model", {{"digest", digest_of("acme/student")}}},
            {"general_information",
             {{"model_identification",
               {{"versioned_model_names", {"acme/student-v1"}},
                {"model_dependencies", dependencies},
                {"date_placed_on_market", "2026-01-01"}}}}},
            {"list_of_data_sources",
             {{"synthetic_data",
               {{"used", synthetic_used}, {"generated_by_models_on_market", on_market}}}}}};
  }

  testing::TempDir dir_;
  store::PrivateKey key_ = new_key();
  std::unique_ptr<store::Ledger> ledger_;
};

TEST_F(DisclosureCheckTest, EveryRecordedParentDeclaredIsComplete) {
  auto c = check(summary({"acme/base"}, {{{"name", "big/teacher"}}}));
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->model_digest, digest_of("acme/student"));
  ASSERT_EQ(c->findings.size(), 2u);  // the independent verdict names no parent
  EXPECT_TRUE(c->complete()) << disclosure_check_text(*c);
  EXPECT_EQ(c->findings[0].parent.digest, digest_of("acme/base"));
  EXPECT_EQ(c->findings[0].field, store::EuSummaryField::kModelDependency);
  EXPECT_EQ(c->findings[0].declared_as, "acme/base");
  EXPECT_EQ(c->findings[1].parent.digest, digest_of("big/teacher"));
  EXPECT_EQ(c->findings[1].field, store::EuSummaryField::kSyntheticDataGenerator);
  EXPECT_TRUE(c->unconfirmed.empty());
  json j = disclosure_check_json(*c);
  EXPECT_EQ(j["complete"], true);
  EXPECT_EQ(j["undeclared"], 0);
}

// The case the template exists for: the provider lists its fine-tuning base but not the model it
// distilled from; the ledger's signed finding names it.
TEST_F(DisclosureCheckTest, UndeclaredDistillationParentIsFlagged) {
  auto c = check(summary({"acme/base"}, json::array(), /*synthetic_used=*/false));
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_FALSE(c->complete());
  EXPECT_EQ(c->undeclared(), 1u);
  const LineageFinding& f = c->findings[1];
  EXPECT_EQ(f.parent.digest, digest_of("big/teacher"));
  EXPECT_EQ(f.parent.relation, "distilled_seq");
  EXPECT_EQ(f.entries, std::vector<uint64_t>{2});
  EXPECT_FALSE(f.declared);
  EXPECT_NE(f.note.find("no synthetic data was used"), std::string::npos) << f.note;
  std::string text = disclosure_check_text(*c);
  EXPECT_NE(
      text.find("UNDECLARED  " + digest_of("big/teacher") + " (distilled_seq, ledger entry 2)"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find("\"big/teacher\""), std::string::npos) << text;  // the name it is known by
  json j = disclosure_check_json(*c);
  EXPECT_EQ(j["undeclared"], 1);
  EXPECT_EQ(j["findings"][1]["field"], "synthetic_data_generators");
  EXPECT_EQ(j["findings"][1]["declared"], false);
}

// Declared in the wrong place, or by a digest that is not the parent's: still undeclared. A digest
// that matches is exact whatever the name; models the ledger does not confirm are listed.
TEST_F(DisclosureCheckTest, WrongSectionWrongDigestAndUnconfirmedDeclarations) {
  auto c = check(summary({"acme/base", "BIG/Teacher"}));
  ASSERT_TRUE(c.is_ok());
  EXPECT_EQ(c->undeclared(), 1u);
  EXPECT_NE(c->findings[1].note.find("declared only as a model dependency"), std::string::npos)
      << c->findings[1].note;
  c = check(summary({{{"name", "acme/base"}, {"digest", digest_of("other")}}},
                    {{{"name", "renamed teacher"}, {"digest", digest_of("big/teacher")}}}));
  ASSERT_TRUE(c.is_ok());
  EXPECT_FALSE(c->findings[0].declared);  // right name, wrong digest
  EXPECT_TRUE(c->findings[1].declared);   // other name, right digest
  EXPECT_EQ(c->findings[1].declared_as, "renamed teacher");
  EXPECT_EQ(c->unconfirmed,
            std::vector<std::string>{"model_dependencies: acme/base"});  // the wrong-digest one
}

TEST_F(DisclosureCheckTest, MalformedSummariesAndUnknownModels) {
  json s = summary({"acme/base"});
  s["schema"] = "something/v1";
  EXPECT_EQ(check(s).status().code(), StatusCode::kInvalidArgument);
  s = summary("acme/base");  // not a list
  EXPECT_EQ(check(s).status().code(), StatusCode::kInvalidArgument);
  s = summary({{{"digest", "sha256:xyz"}}});
  EXPECT_EQ(check(s).status().code(), StatusCode::kInvalidArgument);
  s = summary({"acme/base"});
  s.erase("model");
  auto no_model = check(s);
  EXPECT_EQ(no_model.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(no_model.status().message().find("--model"), std::string::npos);
  s["model"] = {{"digest", digest_of("nobody")}};
  EXPECT_EQ(check(s).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(parse_training_summary("{").status().code(), StatusCode::kCorrupt);
  // The rest of the template is read past; absent sections declare nothing.
  json minimal = {{"schema", kTrainingSummarySchema},
                  {"model", {{"digest", digest_of("acme/base")}}},
                  {"provider", {{"name", "Acme"}}}};
  auto c = check(minimal);
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->undeclared(), 1u);  // meta/llama
  EXPECT_EQ(c->findings[0].note, "not declared");
}

// prov verify and the ledger take a signed report whose envelope uses the URL-safe alphabet.
TEST_F(DisclosureCheckTest, UrlSafeSignedReportVerifies) {
  const std::string standard = signed_report(report("acme/x", "acme/base", "finetuned"), key_);
  json env = json::parse(standard);
  auto url_safe = [](std::string b64) {
    for (char& c : b64) c = c == '+' ? '-' : c == '/' ? '_' : c;
    while (!b64.empty() && b64.back() == '=') b64.pop_back();
    return b64;
  };
  env["payload"] = url_safe(env["payload"]);
  env["signatures"][0]["sig"] = url_safe(env["signatures"][0]["sig"]);
  auto v = verify_report(env.dump(), key_.public_key());
  ASSERT_TRUE(v.is_ok()) << v.status().to_string();
  auto i = ledger_->append(env.dump(), nullptr);
  ASSERT_TRUE(i.is_ok()) << i.status().to_string();
  auto parents = store::recorded_parents(*ledger_, digest_of("acme/x"));
  ASSERT_TRUE(parents.is_ok());
  EXPECT_EQ((*parents)[0].digest, digest_of("acme/base"));
}

// Round trip: the card prov writes names the base model by repo id, and reading that card back
// (as --model-path does) gives the same repo id.
TEST_F(DisclosureCheckTest, HfCardRoundTripsThroughTheHintReader) {
  ASSERT_TRUE(ledger_->checkpoint(key_, "test.example/ledger").is_ok());
  store::ExportOptions opt;
  opt.repo_ids = {{digest_of("acme/base"), "acme/base-7b"}};
  auto card =
      store::export_model(*ledger_, digest_of("acme/student"), store::ExportFormat::kHfCard, opt);
  ASSERT_TRUE(card.is_ok()) << card.status().to_string();
  const std::string dir = dir_.file("student");
  std::filesystem::create_directories(dir);
  testing::write_file(dir + "/README.md", *card);
  auto hints = base_model_hints(dir);
  ASSERT_TRUE(hints.is_ok()) << hints.status().to_string();
  EXPECT_EQ(*hints, std::vector<std::string>{"acme/base-7b"}) << *card;
  // The teacher it was distilled from is no base model; the card says so.
  EXPECT_NE(card->find("# not a base_model: " + digest_of("big/teacher")), std::string::npos);
}

TEST(BaseModelHints, CardThenGgufThenConfig) {
  testing::TempDir dir;
  const std::string m = dir.file("model");
  std::filesystem::create_directories(m);
  // config.json alone: _name_or_path when it is a repo id, not a local path.
  testing::write_file(m + "/config.json", R"({"_name_or_path": "meta-llama/Llama-3.1-8B"})");
  EXPECT_EQ(*base_model_hints(m), std::vector<std::string>{"meta-llama/Llama-3.1-8B"});
  testing::write_file(m + "/config.json", R"({"_name_or_path": "/home/me/checkpoints/base"})");
  EXPECT_TRUE(base_model_hints(m)->empty());
  // A GGUF beside it: general.base_model.* and general.source.*.
  model::GgufWriter w;
  w.add_kv("general.architecture", model::GgufValue::str("llama"));
  w.add_kv("general.base_model.count", model::GgufValue::u32(2));
  w.add_kv("general.base_model.0.repo_url",
           model::GgufValue::str("https://huggingface.co/Qwen/Qwen2.5-7B"));
  w.add_kv("general.base_model.1.organization", model::GgufValue::str("mistralai"));
  w.add_kv("general.base_model.1.name", model::GgufValue::str("Mistral-7B-v0.1"));
  w.add_kv("general.source.huggingface.repository", model::GgufValue::str("acme/merged"));
  ASSERT_TRUE(w.write(m + "/model.gguf").is_ok());
  EXPECT_EQ(
      *base_model_hints(m),
      (std::vector<std::string>{"Qwen/Qwen2.5-7B", "mistralai/Mistral-7B-v0.1", "acme/merged"}));
  EXPECT_EQ(*base_model_hints(m + "/model.gguf"), *base_model_hints(m));
  // The model's own card comes first: a string, a flow list, a block list.
  testing::write_file(m + "/README.md", "---\nlicense: mit\nbase_model: \"org/one\"\n---\n# x\n");
  EXPECT_EQ(*base_model_hints(m), std::vector<std::string>{"org/one"});
  testing::write_file(m + "/README.md", "---\nbase_model: [org/one, 'org/two']\n---\n");
  EXPECT_EQ(*base_model_hints(m), (std::vector<std::string>{"org/one", "org/two"}));
  testing::write_file(m + "/README.md",
                      "---\nbase_model:\n  - org/one # first\n  - sha256:abc\n- org/three\n"
                      "tags: [a]\n---\n");
  EXPECT_EQ(*base_model_hints(m), (std::vector<std::string>{"org/one", "org/three"}));
  EXPECT_EQ(base_model_hints(dir.file("missing")).status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace prov::lineage
