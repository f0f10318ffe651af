#include "core/relation.h"

#include <gtest/gtest.h>

#include <set>
#include <sstream>
#include <string>

namespace prov {
namespace {

TEST(Relation, EveryRelationRoundTripsThroughItsName) {
  std::set<std::string> names;
  for (int i = 0; i < kRelationCount; ++i) {
    const RelationInfo& row = relation_table()[i];
    EXPECT_EQ(static_cast<int>(row.relation), i) << row.name;
    EXPECT_EQ(&relation_info(row.relation), &row);
    EXPECT_EQ(parse_relation(row.name), row.relation);
    EXPECT_TRUE(names.insert(row.name).second) << "duplicate name " << row.name;
    EXPECT_NE(std::string(row.meaning), "") << row.name;
  }
  EXPECT_EQ(parse_relation("finetune"), Relation::kFinetuned);
  EXPECT_EQ(parse_relation("merge"), Relation::kMerged);
  EXPECT_EQ(parse_relation("base"), std::nullopt);
  EXPECT_EQ(parse_relation(""), std::nullopt);
  std::ostringstream os;
  os << Relation::kDistilledSeq;
  EXPECT_EQ(os.str(), "distilled_seq");
  EXPECT_EQ(relation_names().rfind("identical, converted, quantized", 0), 0u);
}

TEST(Relation, PropertiesFollowTheTaxonomy) {
  // METHODS.md: the first eight are weight-derived, the distilled ones share no weights.
  for (Relation r : {Relation::kIdentical, Relation::kConverted, Relation::kQuantized,
                     Relation::kPermuted, Relation::kNoised, Relation::kPruned, Relation::kMerged,
                     Relation::kFinetuned, Relation::kWeightDerived}) {
    EXPECT_TRUE(is_weight_derived(r)) << r;
    EXPECT_TRUE(has_parent(r)) << r;
    EXPECT_FALSE(is_distilled(r)) << r;
  }
  for (Relation r : {Relation::kDistilledLogit, Relation::kDistilledSeq}) {
    EXPECT_FALSE(is_weight_derived(r)) << r;
    EXPECT_TRUE(has_parent(r)) << r;
    EXPECT_TRUE(is_distilled(r)) << r;
  }
  for (Relation r : {Relation::kIndependent, Relation::kInconclusive}) {
    EXPECT_FALSE(is_weight_derived(r)) << r;
    EXPECT_FALSE(has_parent(r)) << r;
  }
  int identity = 0;
  for (int i = 0; i < kRelationCount; ++i) identity += relation_table()[i].identity_decided;
  EXPECT_EQ(identity, 3);
  EXPECT_TRUE(is_identity_decided(Relation::kQuantized));
  // Hugging Face's base_model_relation: only the relations that are one of its values by
  // definition.
  EXPECT_STREQ(relation_info(Relation::kFinetuned).hf_relation, "finetune");
  EXPECT_STREQ(relation_info(Relation::kQuantized).hf_relation, "quantized");
  EXPECT_STREQ(relation_info(Relation::kMerged).hf_relation, "merge");
  EXPECT_STREQ(relation_info(Relation::kDistilledSeq).hf_relation, "");
  EXPECT_STREQ(relation_info(Relation::kIdentical).hf_relation, "");
}

}  // namespace
}  // namespace prov
