// Signed lineage reports: an in-toto Statement v1 whose predicate is a lineage report, in a DSSE
// envelope (docs/formats/statement.md).
//
// The Statement is
//   {"_type": "https://in-toto.io/Statement/v1",
//    "predicate": <report>,
//    "predicateType": "urn:prov:predicate:lineage-report:v1",
//    "subject": [{"digest": {"sha256": <candidate.digest.sha256>}, "name": <candidate.name>}]}
// serialised canonically (docs/formats/statement.md, "Canonical serialisation"): object keys
// sorted by their UTF-8 bytes, no whitespace outside strings, strings as UTF-8 with only '"', '\'
// and control characters escaped, integers in plain decimal, other numbers by one shortest
// round-trip rule. The same report always gives the same bytes.
//
// The report's schema (docs/formats/report.md) is report.h's; on top of it the Statement needs
// these fields filled, the ones it is built from:
//   "report_version": 1 (an integer),
//   "candidate": {"name": non-empty string, "digest": {"sha256": 64 lowercase hex}},
//   "verdict": {"relation": non-empty string},
//   "tool": {"name": non-empty string, "version": non-empty string}.
//
// Thread safety: all functions are pure (no shared state); concurrent calls are safe. Nothing
// here throws: JSON errors become Status values.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "lineage/report.h"
#include "store/keys.h"

namespace prov::lineage {

inline constexpr char kReportPredicateType[] = "urn:prov:predicate:lineage-report:v1";
inline constexpr char kStatementType[] = "https://in-toto.io/Statement/v1";
// Deepest nesting (objects and arrays) accepted in a report or a signed Statement.
inline constexpr int kMaxReportDepth = 64;

// The canonical Statement bytes of a report in JSON form: only the required fields below are
// checked (the rest is carried unchanged), numbers must be finite, strings valid UTF-8, nesting at
// most kMaxReportDepth. make_statement's last step; exposed for reports written by other tools and
// for tests of the serialisation. kInvalidArgument naming the field ('candidate.name').
Result<std::string> canonical_statement(const nlohmann::json& report);

// The canonical Statement bytes for `report` (report_to_json). kInvalidArgument naming the field
// when the report does not read back (report_from_json), a required field is empty, the digest is
// not lowercase hex, a string is not valid UTF-8, or the report nests deeper than
// kMaxReportDepth.
Result<std::string> make_statement(const Report& report);

// make_statement, then a DSSE envelope (store::dsse_sign) with payloadType
// store::kInTotoPayloadType and one signature by `key`. Returns the envelope JSON; fails as
// make_statement does.
Result<std::string> sign_report(const Report& report, const store::PrivateKey& key);

struct VerifiedReport {
  nlohmann::json statement;  // the whole parsed Statement
  nlohmann::json predicate;  // its predicate, as signed
  Report report;             // the predicate read as a report
  std::string key_id;        // the key id (hex SHA-256 of the DER public key) that verified it
};

// Verifies a signed report, in this order, stopping at the first failure:
//  1. the envelope parses as DSSE (kCorrupt: "not a DSSE envelope: <reason>", e.g. a truncated
//     file that is not JSON any more, or bad base64);
//  2. some signature verifies under `key` over PAE(payloadType, payload) (kInvalidArgument:
//     "signature does not verify under key <key id>: it is signed by another key (<ids>)" or
//     ": the envelope was changed after it was signed ..."): the payload is not read before;
//  3. payloadType is application/vnd.in-toto+json (kInvalidArgument: "payload type X is not
//     in-toto");
//  4. the payload is one JSON object without duplicate keys, nesting at most kMaxReportDepth
//     (kCorrupt: "signed payload is not valid JSON", "... duplicate key ...");
//  5. _type is https://in-toto.io/Statement/v1 (kInvalidArgument: "statement type X is not an
//     in-toto Statement v1");
//  6. predicateType is kReportPredicateType (kInvalidArgument: "predicate type X is not a lineage
//     report");
//  7. the predicate has the required report fields and reads as a report (report_from_json;
//     kCorrupt: "signed report: ...");
//  8. exactly one subject, whose name and digest.sha256 equal the predicate's candidate (kCorrupt:
//     "subject does not match the report's candidate: ...").
// kCorrupt means the bytes are malformed or inconsistent; kInvalidArgument means a well-formed
// envelope that is not what was asked for (another signer, another payload or predicate type).
Result<VerifiedReport> verify_report(const std::string& envelope_json, const store::PublicKey& key);

}  // namespace prov::lineage
