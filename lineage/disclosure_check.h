// The EU AI Act public summary of training content (Article 53(1)(d); the AI Office's "Template
// for the Public Summary of Training Content for general-purpose AI models", 2025) as a provider
// writes it, checked against the signed lineage findings in a ledger: every parent the ledger
// records for the model must be declared where the template asks for it, model dependencies
// (§1.2(ii)) for the models it was modified from, the synthetic-data generators (§2.5(ii)/(iii))
// for the models whose outputs it was trained on (store::eu_summary_field). `prov disclosure
// check` runs it; the JSON form of the summary and the field mapping are in
// docs/formats/training-summary.md.
//
// Thread safety: the functions are pure except check_training_summary, which uses the Ledger (one
// thread at a time).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "store/export.h"
#include "store/ledger.h"

namespace prov::lineage {

inline constexpr char kTrainingSummarySchema[] = "prov-eu-training-summary/v1";

// A model the summary names: by name (a versioned model name or Hub repo id, as written) and, when
// the provider gives it, by OMS model digest (then matched exactly).
struct DeclaredModel {
  std::string name;
  std::string digest;  // normalised, "" when not given
};

// The fields of the summary prov checks; the rest of the template is read past.
struct TrainingSummary {
  std::vector<std::string> model_names;             // §1.2(i) versioned model names
  std::string model_digest;                         // the model in the ledger ("" when not given)
  std::vector<DeclaredModel> model_dependencies;    // §1.2(ii)
  bool synthetic_data_declared = false;             // §2.5 present
  bool synthetic_data_used = false;                 // §2.5(i)
  std::vector<DeclaredModel> generators_on_market;  // §2.5(ii)
  std::vector<DeclaredModel> generators_other;      // §2.5(iii)
};

// Reads the JSON summary (docs/formats/training-summary.md). kCorrupt for text that is not JSON;
// kInvalidArgument naming the member for a wrong schema, a member of the wrong type or a malformed
// digest.
Result<TrainingSummary> parse_training_summary(const std::string& text);

// One parent the ledger records for the model, and whether the summary declares it.
struct LineageFinding {
  store::RecordedParent parent;   // the first entry recording it
  std::vector<uint64_t> entries;  // every entry recording it (same digest and template field)
  store::EuSummaryField field;    // where the template asks for it
  bool declared = false;          // named in that field
  std::string declared_as;        // the declaration that matched (its name, else its digest)
  std::string note;               // why not, when not: declared in the other field, §2.5(i) "no"
};

struct DisclosureCheck {
  std::string model_digest;
  std::vector<LineageFinding> findings;  // in entry order
  std::vector<std::string> unconfirmed;  // declarations no ledger entry records ("field: name")
  // Every lineage finding is declared where the template asks for it.
  bool complete() const;
  size_t undeclared() const;
};

// Compares the summary's declarations with the parents the ledger records for the model
// (store::recorded_parents). A declaration matches a parent by digest when it gives one, else by
// name (case-insensitive) against the names the ledger records for the parent. `model_digest`
// overrides the summary's. kInvalidArgument when neither names the model; kNotFound when the
// ledger has no entry about it; else the ledger's error.
Result<DisclosureCheck> check_training_summary(const TrainingSummary& summary,
                                               store::Ledger& ledger,
                                               const std::string& model_digest = "");

// The result for people (one line per finding, undeclared first) and as JSON: model, complete,
// undeclared, findings [{digest, relation, entries, field, declared, declared_as, note, names}],
// unconfirmed.
std::string disclosure_check_text(const DisclosureCheck& check);
nlohmann::json disclosure_check_json(const DisclosureCheck& check);

}  // namespace prov::lineage
