// Publishing a report: its files (OUT.json, OUT.md, OUT.html and, signed, OUT.dsse.json), the DSSE
// envelope signed with a key, and the envelope appended to a ledger with its inclusion proof.
//
// Thread safety: one call at a time per ledger file (the ledger serialises writers).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "lineage/report.h"
#include "store/keys.h"
#include "store/ledger.h"

namespace prov::lineage {

struct PublishOptions {
  std::string prefix;                      // "" = write no files
  const store::PrivateKey* key = nullptr;  // sign (needed for a ledger)
  std::string ledger;                      // "" = append to none; created when missing
};

struct Published {
  std::vector<std::string> written;  // paths, in the order written
  std::string envelope;              // "" when not signed
  std::string key_id;                // of the signing key
  std::optional<store::InclusionProof> proof;
};

// Validates the report (report_from_json of its JSON: kInternal when the writer's output does not
// read back), writes the files atomically, signs, appends. kInvalidArgument for a ledger without
// a key; the writers', signer's and ledger's errors otherwise (files written before a failure
// stay).
Result<Published> publish_report(const Report& report, const PublishOptions& options);

}  // namespace prov::lineage
