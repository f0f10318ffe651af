// The typed lineage report: one writer, one reader, and they agree.
#include "lineage/report.h"

#include <gtest/gtest.h>

#include <string>

namespace prov::lineage {
namespace {

Report full_report() {
  Report r;
  r.candidate = {"child", std::string("/m/child"), std::string(64, 'a'), std::string("endpoint x")};
  r.verdict.relation = Relation::kWeightDerived;
  r.verdict.parent = "base";
  r.verdict.parents = std::vector<std::string>{"base", "other"};
  r.verdict.parent_digest = "sha256:" + std::string(64, 'b');
  r.verdict.p_value = 1e-5;
  r.verdict.confidence = Confidence::kLow;
  r.verdict.summary = "shares base's logit image";
  ReportReference ref;
  ref.name = "base";
  ref.path = "/m/base";
  ref.sha256 = std::string(64, 'b');
  ref.relation = "not compared";
  ref.has_holm = true;  // null: no calibrated test
  ref.outputs = ReportReferenceOutputs{"weight_derived", 1e-5, 2e-5};
  r.references.push_back(ref);
  ReportEvidence e;
  e.reference = "base";
  e.layer = "outputs";
  e.method = "prediction t-test against controls";
  e.statistic = "logit_image";
  e.value = 0.97;
  e.p_value = 2e-5;
  e.null_hypothesis = "H0";
  e.probes = 256;
  e.probes_needed = 64;
  e.combination = "weighted Bonferroni";
  e.detail = nlohmann::json{{"t", 9.5}, {"controls", {"c1", "c2"}}};
  r.evidence.push_back(e);
  r.weight_layers = std::vector<ReportWeightLayer>{{"base", 0, "mean", 0.9, std::nullopt}};
  r.probe_curve = std::vector<ReportProbeCurve>{{"base", {8, 16}, {0.2, 0.01}}};
  r.graph.nodes = {{"candidate", "child", "candidate"}, {"ref1", "base", "reference"}};
  r.graph.edges = {{1, 0, "weight_derived", 2e-5}};
  r.suite = ReportSuite{"natural-v1 1", std::string(64, 'c')};
  r.tool_version = "0.1.0";
  r.environment = ReportEnvironment{"cpu", "float32", 2, std::vector<ReportRun>{}};
  r.environment->runs->push_back({"child", "candidate", "endpoint", "endpoint:completions", "",
                                  "openai-completions", "0.1.0"});
  return r;
}

TEST(Report, WriterAndReaderAgree) {
  const Report r = full_report();
  const nlohmann::json j = report_to_json(r);
  auto back = report_from_json(j);
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(report_to_json(*back), j);
  EXPECT_EQ(back->verdict.relation, Relation::kWeightDerived);
  EXPECT_EQ(back->environment->runs->at(0).backend, "openai-completions");
  EXPECT_TRUE(j["references"][0]["p_value_holm"].is_null());
  EXPECT_TRUE(j["verdict"]["p_value"].is_number());
  // Required-but-nullable fields are written as null; optional ones left out.
  Report bare;
  bare.candidate = {"c", std::nullopt, std::string(64, 'd'), std::nullopt};
  bare.tool_version = "x";
  const nlohmann::json b = report_to_json(bare);
  EXPECT_TRUE(b["verdict"]["parent"].is_null());
  EXPECT_TRUE(b["verdict"]["p_value"].is_null());
  EXPECT_FALSE(b["candidate"].contains("path"));
  EXPECT_FALSE(b.contains("weight_layers"));
  EXPECT_FALSE(b.contains("environment"));
  EXPECT_TRUE(validate_report(b).is_ok());
}

TEST(Report, TheReaderNamesTheFieldAtFault) {
  nlohmann::json j = report_to_json(full_report());
  auto check = [&](nlohmann::json bad, const std::string& field) {
    Status s = validate_report(bad);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << field;
    EXPECT_NE(s.message().find(field), std::string::npos) << s.to_string();
  };
  nlohmann::json x = j;
  x["verdict"]["relation"] = "cloned";
  check(x, "verdict.relation");
  x = j;
  x["environment"]["runs"][0].erase("device");
  check(x, "environment.runs[0].device");
  x = j;
  x["references"][0]["outputs"]["p_value"] = 2;
  check(x, "references[0].outputs.p_value");
  x = j;
  x["report_version"] = 2;
  EXPECT_EQ(validate_report(x).code(), StatusCode::kUnsupported);
  // Unknown keys are ignored (a later version may add fields).
  x = j;
  x["later"] = {{"a", 1}};
  EXPECT_TRUE(validate_report(x).is_ok());
}

}  // namespace
}  // namespace prov::lineage
