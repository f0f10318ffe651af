#include "lineage/publish.h"

#include "core/file_io.h"
#include "lineage/ledger_facts.h"
#include "lineage/report_render.h"
#include "lineage/statement.h"

namespace prov::lineage {

Result<Published> publish_report(const Report& report, const PublishOptions& o) {
  if (!o.ledger.empty() && o.key == nullptr) {
    return invalid_argument("--ledger needs --key: only signed reports are appended");
  }
  const nlohmann::json json = report_to_json(report);
  if (Status v = report_from_json(json).status(); !v.is_ok()) {
    return internal_error("the report does not validate: " + v.to_string());
  }
  Published out;
  if (o.key != nullptr) {
    PROV_ASSIGN_OR_RETURN(out.envelope, sign_report(report, *o.key));
    out.key_id = o.key->key_id();
  }
  if (!o.prefix.empty()) {
    PROV_ASSIGN_OR_RETURN(std::string md, render_markdown(report));
    PROV_ASSIGN_OR_RETURN(std::string html, render_html(report));
    std::vector<std::pair<std::string, std::string>> files = {
        {o.prefix + ".json", json.dump(2) + "\n"},
        {o.prefix + ".md", md},
        {o.prefix + ".html", html}};
    if (o.key != nullptr) files.emplace_back(o.prefix + ".dsse.json", out.envelope + "\n");
    for (const auto& [path, text] : files) {
      PROV_RETURN_IF_ERROR(write_file_atomic(path, text));
      out.written.push_back(path);
    }
  }
  if (!o.ledger.empty()) {
    auto ledger = open_ledger(o.ledger, /*create=*/true);
    if (!ledger.is_ok()) return ledger.status().with_context("--ledger");
    const store::PublicKey pub = o.key->public_key();
    auto index = (*ledger)->append(out.envelope, &pub);
    if (!index.is_ok()) return index.status().with_context("ledger append");
    PROV_ASSIGN_OR_RETURN(out.proof, (*ledger)->inclusion_proof(*index));
  }
  return out;
}

}  // namespace prov::lineage
