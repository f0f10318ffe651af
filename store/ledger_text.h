// The ledger as text for people and tools: an entry as JSON, the default checkpoint origin, and
// the checks of the digests and times users type into queries.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "store/ledger.h"

namespace prov::store {

// {index, leaf_hash, envelope_sha256, subject_digest, subjects, relation, parent_digest,
// created_at}; relation and parent_digest are null when absent.
nlohmann::json entry_json(const LedgerEntry& e);

// "prov-ledger/<file name of DB>/<id>", with characters a signed-note key name may not hold
// (whitespace, '+') replaced by '_': a ledger's own origin (Ledger::origin), `id` its random
// 128-bit id in hex.
std::string default_origin(const std::string& db, const std::string& id);

// "" when `v` is a model digest ("alg:HEX", alg of letters, digits, '-' and '_', or a bare
// 64-digit hex SHA-256), else why not.
std::string digest_problem(const std::string& v);
// "" when `v` is a UTC ISO-8601 time or a prefix of one
// (YYYY[-MM[-DD[THH[:MM[:SS[.fraction]]]]]][Z]), else why not.
std::string utc_time_problem(const std::string& v);

}  // namespace prov::store
