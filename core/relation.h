// The relation taxonomy (docs/METHODS.md, "Relation taxonomy"): what a verdict, an edge of the
// lineage graph, a ledger entry or a disclosure says one model is to another. One enum and one
// table of its properties, so that no module spells relations as free strings.
//
// The names (relation_name) are the wire form written in reports, signatures of findings, the
// ledger's relation column and the exports; parse_relation reads them back. They never change
// meaning: a new relation gets a new name.
//
// Thread safety: everything here is a pure function over a constant table.
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <string_view>

namespace prov {

enum class Relation {
  kIdentical,       // the same model (bit for bit, or the same values)
  kConverted,       // the same weights in another format, dtype or layout
  kQuantized,       // a quantized copy
  kPermuted,        // a function-preserving reordering of units, heads or dimensions
  kNoised,          // noise added to the weights
  kPruned,          // weights or layers removed
  kMerged,          // a weighted combination of several parents
  kFinetuned,       // trained further
  kWeightDerived,   // derived from the weights, by a relation the evidence does not name
  kDistilledLogit,  // trained against the reference's output distributions (no shared weights)
  kDistilledSeq,    // trained on text the reference generated (no shared weights)
  kIndependent,     // no evidence of derivation
  kInconclusive,    // the evidence does not decide
};

inline constexpr int kRelationCount = 13;

struct RelationInfo {
  Relation relation;
  const char* name;         // wire form: "finetuned", "distilled_seq", ...
  bool weight_derived;      // shares weights with its parent
  bool has_parent;          // a verdict of this relation names a parent
  bool identity_decided;    // decided by exact comparison, not by a test
  const char* hf_relation;  // Hugging Face base_model_relation, "" when none applies
  const char* meaning;      // "the parent, trained further": how reports word it
};

// The table row of `r`.
const RelationInfo& relation_info(Relation r);
// Every relation, in enum order.
const RelationInfo* relation_table();

inline const char* relation_name(Relation r) {
  return relation_info(r).name;
}
inline bool is_weight_derived(Relation r) {
  return relation_info(r).weight_derived;
}
inline bool has_parent(Relation r) {
  return relation_info(r).has_parent;
}
inline bool is_identity_decided(Relation r) {
  return relation_info(r).identity_decided;
}
inline bool is_distilled(Relation r) {
  return r == Relation::kDistilledLogit || r == Relation::kDistilledSeq;
}
// A verdict that names a relation to some parent (neither independent nor inconclusive).
inline bool is_related(Relation r) {
  return has_parent(r);
}

// The relation named `name` (the wire form above). Also accepts the labels other tools write for
// the same relations: "finetune" (Hugging Face, zoo-dev labels), "merge", "quantization".
// nullopt for anything else.
std::optional<Relation> parse_relation(std::string_view name);

// "identical, converted, ..." (every wire name, in enum order), for error messages.
std::string relation_names();

// Writes the wire name (for logs and test failure messages).
inline std::ostream& operator<<(std::ostream& os, Relation r) {
  return os << relation_name(r);
}

}  // namespace prov
