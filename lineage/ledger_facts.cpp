#include "lineage/ledger_facts.h"

#include "lineage/report.h"
#include "lineage/statement.h"

namespace prov::lineage {

Result<store::EntryFacts> predicate_facts(const std::string& predicate_type,
                                          const nlohmann::json& predicate) {
  store::EntryFacts f;
  if (predicate_type != kReportPredicateType) return f;
  auto report = report_from_json(predicate);
  if (!report.is_ok()) return corrupt("lineage report: " + report.status().message());
  const ReportVerdict& v = report->verdict;
  f.relation = relation_name(v.relation);
  if (v.parent_digest) f.parent_digest = *v.parent_digest;
  if (v.parent) f.parent_name = *v.parent;
  return f;
}

store::LedgerOptions ledger_options() {
  store::LedgerOptions o;
  o.read_predicate = predicate_facts;
  return o;
}

Result<std::unique_ptr<store::Ledger>> open_ledger(const std::string& path, bool create) {
  return store::Ledger::open(path, create, ledger_options());
}

}  // namespace prov::lineage
