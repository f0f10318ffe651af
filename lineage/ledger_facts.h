// The lineage module's side of the ledger: how a signed lineage report's facts (relation, parent
// digest and name) reach the ledger's columns and the exports, read from the typed report
// (report.h) rather than by the store from the predicate's JSON.
#pragma once

#include <memory>
#include <string>

#include "core/status.h"
#include "store/ledger.h"

namespace prov::lineage {

// The facts of a predicate: for a lineage report (kReportPredicateType), its verdict's relation,
// parent_digest and parent, after report_from_json accepted it (kCorrupt naming the field
// otherwise); empty facts for any other predicate type.
Result<store::EntryFacts> predicate_facts(const std::string& predicate_type,
                                          const nlohmann::json& predicate);

// Ledger options whose reader is predicate_facts.
store::LedgerOptions ledger_options();

// Opens (with `create`, creates when missing) a ledger that reads lineage reports.
Result<std::unique_ptr<store::Ledger>> open_ledger(const std::string& path, bool create = false);

}  // namespace prov::lineage
