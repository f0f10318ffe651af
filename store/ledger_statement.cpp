// What the ledger reads from an envelope: the in-toto Statement's subjects (the store's own
// format), and the predicate's lineage facts through the predicate owner's PredicateReader.
#include <cctype>
#include <exception>
#include <nlohmann/json.hpp>

#include "core/json.h"
#include "core/sha256.h"
#include "store/ledger.h"
#include "store/ledger_internal.h"

namespace prov::store {

namespace {

constexpr char kLeafPrefix[] = "prov-ledger-entry-v1\n";
constexpr char kContentPrefix[] = "prov-envelope-content-v1\n";

std::string string_at(const nlohmann::json& obj, const char* key) {
  auto it = obj.find(key);
  return (it != obj.end() && it->is_string()) ? it->get<std::string>() : std::string();
}

// The facts `reader` gives for the Statement's predicate (empty without a reader), the parent
// digest normalised. A reader that throws is reported as kCorrupt: nothing escapes the library.
Result<EntryFacts> read_facts(const nlohmann::json& statement, const PredicateReader& reader) {
  if (!reader) return EntryFacts{};
  static const nlohmann::json kNull;
  const std::string type = string_at(statement, "predicateType");
  auto pred = statement.find("predicate");
  try {
    Result<EntryFacts> f = reader(type, pred != statement.end() ? *pred : kNull);
    if (f.is_ok() && !f->parent_digest.empty()) {
      f->parent_digest = normalize_digest(f->parent_digest);
    }
    return f;
  } catch (const std::exception& e) {
    return corrupt("reading the predicate of type '" + type + "': " + e.what());
  }
}

}  // namespace

std::string entry_leaf_data(const std::string& created_at, const std::string& envelope) {
  std::string out = kLeafPrefix;
  out += created_at;
  out += '\n';
  out += envelope;
  return out;
}

std::string normalize_digest(const std::string& digest) {
  std::string d = digest;
  for (char& c : d) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (d.find(':') == std::string::npos && d.size() == 64) d = "sha256:" + d;
  return d;
}

namespace internal {

Digest content_digest(const DsseEnvelope& env) {
  Sha256 h;
  h.update(kContentPrefix);
  h.update(dsse_pae(env.payload_type, env.payload));
  return h.finish();
}

Result<StatementFields> statement_fields(const DsseEnvelope& env, const PredicateReader& reader) {
  if (env.payload_type != kInTotoPayloadType) {
    return corrupt("envelope payloadType is '" + env.payload_type + "', expected '" +
                   kInTotoPayloadType + "'");
  }
  auto parsed = parse_json(env.payload, "envelope payload");
  if (!parsed.is_ok()) return corrupt("envelope payload: " + parsed.status().message());
  const nlohmann::json& j = *parsed;
  if (!j.is_object()) {
    return corrupt("envelope payload is not a JSON object (in-toto Statement)");
  }
  std::string type = string_at(j, "_type");
  if (type.rfind("https://in-toto.io/Statement/", 0) != 0) {
    return corrupt("payload _type '" + type + "' is not an in-toto Statement");
  }
  auto subj = j.find("subject");
  if (subj == j.end() || !subj->is_array() || subj->empty()) {
    return corrupt("in-toto Statement has no subject");
  }
  StatementFields f;
  for (const auto& s : *subj) {
    if (!s.is_object()) return corrupt("in-toto subject is not an object");
    auto dig = s.find("digest");
    if (dig == s.end() || !dig->is_object() || dig->empty()) {
      return corrupt("in-toto subject has no digest");
    }
    auto pick = dig->find("sha256");
    if (pick == dig->end()) pick = dig->begin();
    if (!pick->is_string() || pick->get<std::string>().empty()) {
      return corrupt("in-toto subject digest value is not a string");
    }
    f.subjects.push_back(normalize_digest(pick.key() + ":" + pick->get<std::string>()));
  }
  PROV_ASSIGN_OR_RETURN(EntryFacts facts, read_facts(j, reader));
  f.relation = std::move(facts.relation);
  f.parent_digest = std::move(facts.parent_digest);
  f.parent_name = std::move(facts.parent_name);
  return f;
}

Status check_envelope_signature(const DsseEnvelope& env, const PublicKey& key,
                                const std::string& key_id) {
  std::string pae = dsse_pae(env.payload_type, env.payload);
  for (const auto& s : env.signatures) {
    if (!s.keyid.empty() && s.keyid != key_id) continue;
    if (key.verify(pae, s.sig).is_ok()) return Status::ok();
  }
  return invalid_argument("DSSE: no signature verifies under key " + key_id.substr(0, 16) + " (" +
                          std::to_string(env.signatures.size()) + " signature(s) present)");
}

}  // namespace internal

Result<Digest> envelope_content_digest(const std::string& envelope) {
  PROV_ASSIGN_OR_RETURN(DsseEnvelope env, dsse_parse(envelope));
  return internal::content_digest(env);
}

Result<StatementFields> parse_statement_envelope(const std::string& envelope,
                                                 const PredicateReader& reader) {
  PROV_ASSIGN_OR_RETURN(DsseEnvelope env, dsse_parse(envelope));
  return internal::statement_fields(env, reader);
}

Result<EntryFacts> Ledger::facts_of(const std::string& envelope) const {
  PROV_ASSIGN_OR_RETURN(StatementFields f,
                        parse_statement_envelope(envelope, options_.read_predicate));
  EntryFacts facts;
  facts.relation = std::move(f.relation);
  facts.parent_digest = std::move(f.parent_digest);
  facts.parent_name = std::move(f.parent_name);
  return facts;
}

}  // namespace prov::store
