#include "lineage/statement.h"

#include <cmath>
#include <set>
#include <utility>
#include <vector>

#include "core/json.h"
#include "store/ledger.h"

namespace prov::lineage {

namespace {

using nlohmann::json;

bool is_lower_hex64(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// The member `key` of `obj` (already known to be an object), or nullptr.
const json* member(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

// A required object member; kInvalidArgument naming `path` when absent or not an object.
Result<const json*> require_object(const json& obj, const char* key, const std::string& path) {
  const json* v = member(obj, key);
  if (v == nullptr) return invalid_argument("report lacks field '" + path + "'");
  if (!v->is_object()) {
    return invalid_argument("report field '" + path + "' must be an object, not " +
                            std::string(v->type_name()));
  }
  return v;
}

// A required non-empty string member.
Result<std::string> require_string(const json& obj, const char* key, const std::string& path) {
  const json* v = member(obj, key);
  if (v == nullptr) return invalid_argument("report lacks field '" + path + "'");
  if (!v->is_string()) {
    return invalid_argument("report field '" + path + "' must be a string, not " +
                            std::string(v->type_name()));
  }
  const auto& s = v->get_ref<const std::string&>();
  if (s.empty()) return invalid_argument("report field '" + path + "' is empty");
  return s;
}

// True iff `s` is valid UTF-8 (nlohmann's serialiser is the validator: it throws on bad bytes).
bool valid_utf8(const std::string& s) {
  try {
    (void)json(s).dump();
    return true;
  } catch (const json::exception&) {
    return false;
  }
}

// `s` as a JSON string literal, for messages (quotes and control characters escaped; invalid
// UTF-8 replaced by U+FFFD, so this never throws).
std::string json_quoted(const std::string& s) {
  return json(s).dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string child_path(const std::string& parent, const std::string& key) {
  return parent.empty() ? key : parent + "." + key;
}

// Checks what the canonical serialisation cannot represent faithfully: non-finite numbers
// (nlohmann would print null), invalid UTF-8 (it would throw), and nesting deeper than
// kMaxReportDepth (`level` counts the containers from the report's top, starting at 1).
Status check_serialisable(const json& v, const std::string& path, int level) {
  const std::string where = path.empty() ? "report" : "report field '" + path + "'";
  switch (v.type()) {
    case json::value_t::object:
    case json::value_t::array:
      if (level > kMaxReportDepth) {
        return invalid_argument(where + " nests deeper than " + std::to_string(kMaxReportDepth) +
                                " levels");
      }
      if (v.is_object()) {
        for (auto it = v.begin(); it != v.end(); ++it) {
          if (!valid_utf8(it.key())) {
            return invalid_argument(where + " has a key that is not valid UTF-8");
          }
          PROV_RETURN_IF_ERROR(check_serialisable(*it, child_path(path, it.key()), level + 1));
        }
      } else {
        for (size_t i = 0; i < v.size(); ++i) {
          PROV_RETURN_IF_ERROR(check_serialisable(
              v[i], (path.empty() ? std::string("report") : path) + "[" + std::to_string(i) + "]",
              level + 1));
        }
      }
      return Status::ok();
    case json::value_t::number_float:
      if (!std::isfinite(v.get<double>())) {
        return invalid_argument(where +
                                " is not a finite number (JSON cannot hold NaN or infinity)");
      }
      return Status::ok();
    case json::value_t::string:
      if (!valid_utf8(v.get_ref<const std::string&>())) {
        return invalid_argument(where + " is not valid UTF-8");
      }
      return Status::ok();
    case json::value_t::binary:
      return invalid_argument(where + " is a binary value (not representable in JSON)");
    case json::value_t::discarded:
      return invalid_argument(where + " is a discarded value");
    default:
      return Status::ok();
  }
}

// Drops the "DSSE: " prefix of store messages that get our own prefix.
std::string without_dsse_prefix(const std::string& m) {
  static const std::string kPrefix = "DSSE: ";
  return m.rfind(kPrefix, 0) == 0 ? m.substr(kPrefix.size()) : m;
}

// Why `text` is not JSON (text that nlohmann refused), naming truncation; `what` is what the text
// should have been ("envelope", "Statement").
std::string json_failure(const std::string& text, const std::string& what) {
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) return "it is empty";
  try {
    json unused = json::parse(text);
    (void)unused;
  } catch (const json::parse_error& e) {
    if (e.byte >= text.size()) {
      return "truncated: the JSON ends after " + std::to_string(text.size()) +
             " bytes, before the " + what + " is complete";
    }
    return "malformed JSON at byte " + std::to_string(e.byte);
  } catch (const json::exception&) {
  }
  return "malformed JSON";
}

// Why no signature verified, from the envelope's (unverified, structural) key ids.
std::string signature_failure(const std::string& envelope_json, const std::string& key_id) {
  auto env = store::dsse_parse(envelope_json);
  if (!env.is_ok()) return "the envelope does not parse";
  std::string others;
  bool anonymous = false;
  for (const auto& sig : env->signatures) {
    if (sig.keyid == key_id) {
      return "the envelope was changed after it was signed (payload, payload type or signature)";
    }
    if (!others.empty()) others += ", ";
    others += sig.keyid.empty() ? std::string("(no key id)") : sig.keyid;
    anonymous = anonymous || sig.keyid.empty();
  }
  if (anonymous) {
    return "it is signed by another key or was changed after signing (signature key ids: " +
           others + ")";
  }
  return "it is signed by another key (" + others + ")";
}

// Parses a signed payload: one JSON value, no duplicate object keys (they would let two readers
// see different reports under one signature), at most kMaxReportDepth + 1 levels (the Statement
// wraps the report). kCorrupt otherwise.
Result<json> parse_payload(const std::string& payload) {
  JsonLimits limits;
  limits.max_depth = kMaxReportDepth + 1;
  JsonFailure failure;
  auto j = parse_json(payload, "signed payload", limits, &failure);
  if (j.is_ok()) return j;
  switch (failure.kind) {
    case JsonFailure::kDuplicateKey:
      return corrupt("signed payload has the duplicate key " + json_quoted(failure.key));
    case JsonFailure::kTooDeep:
      return corrupt("signed payload nests deeper than " + std::to_string(kMaxReportDepth + 1) +
                     " levels");
    case JsonFailure::kSyntax:
      return corrupt("signed payload is not valid JSON (" + json_failure(payload, "Statement") +
                     ")");
    default:
      return corrupt("signed payload: " + failure.detail);
  }
}

// The string at obj[key] or "" (obj an object).
std::string string_member(const json& obj, const char* key) {
  const json* v = member(obj, key);
  return v != nullptr && v->is_string() ? v->get<std::string>() : std::string();
}

// The required fields of statement.h; kInvalidArgument naming the field.
Status check_required_fields(const json& report) {
  if (!report.is_object()) {
    return invalid_argument("report must be a JSON object, not " + std::string(report.type_name()));
  }
  const json* version = member(report, "report_version");
  if (version == nullptr) return invalid_argument("report lacks field 'report_version'");
  if (!version->is_number_integer() || *version != 1) {
    return invalid_argument("report field 'report_version' must be the integer 1, not " +
                            version->dump());
  }
  PROV_ASSIGN_OR_RETURN(const json* candidate, require_object(report, "candidate", "candidate"));
  PROV_RETURN_IF_ERROR(require_string(*candidate, "name", "candidate.name").status());
  PROV_ASSIGN_OR_RETURN(const json* digest,
                        require_object(*candidate, "digest", "candidate.digest"));
  PROV_ASSIGN_OR_RETURN(std::string sha256,
                        require_string(*digest, "sha256", "candidate.digest.sha256"));
  if (!is_lower_hex64(sha256)) {
    return invalid_argument(
        "report field 'candidate.digest.sha256' must be 64 lowercase hex characters, not " +
        json_quoted(sha256));
  }
  PROV_ASSIGN_OR_RETURN(const json* verdict, require_object(report, "verdict", "verdict"));
  PROV_RETURN_IF_ERROR(require_string(*verdict, "relation", "verdict.relation").status());
  PROV_ASSIGN_OR_RETURN(const json* tool, require_object(report, "tool", "tool"));
  PROV_RETURN_IF_ERROR(require_string(*tool, "name", "tool.name").status());
  PROV_RETURN_IF_ERROR(require_string(*tool, "version", "tool.version").status());
  return Status::ok();
}

}  // namespace

Result<std::string> canonical_statement(const json& report) {
  PROV_RETURN_IF_ERROR(check_required_fields(report));
  PROV_RETURN_IF_ERROR(check_serialisable(report, "", 1));
  const json& candidate = report["candidate"];
  // nlohmann::json keeps object members in a std::map<std::string, ...>: iteration, and so
  // dump(), is in byte order of the keys, whatever order they were inserted in.
  json statement = json::object();
  statement["_type"] = kStatementType;
  json subject = json::object();
  subject["name"] = candidate["name"];
  subject["digest"] = json::object();
  subject["digest"]["sha256"] = candidate["digest"]["sha256"];
  statement["subject"] = json::array();
  statement["subject"].push_back(std::move(subject));
  statement["predicateType"] = kReportPredicateType;
  statement["predicate"] = report;
  try {
    // indent -1: no whitespace; ensure_ascii false: UTF-8 as is; strict error handler.
    return statement.dump(-1, ' ', false, json::error_handler_t::strict);
  } catch (const json::exception& e) {  // unreachable after check_serialisable
    return invalid_argument(std::string("report cannot be serialised: ") + e.what());
  }
}

Result<std::string> make_statement(const Report& report) {
  const json j = report_to_json(report);
  // The writer's output must read back: a report that does not is never signed.
  Status valid = report_from_json(j).status();
  if (!valid.is_ok()) return valid;
  return canonical_statement(j);
}

Result<std::string> sign_report(const Report& report, const store::PrivateKey& key) {
  PROV_ASSIGN_OR_RETURN(std::string statement, make_statement(report));
  return store::dsse_sign(store::kInTotoPayloadType, statement, key);
}

Result<VerifiedReport> verify_report(const std::string& envelope_json,
                                     const store::PublicKey& key) {
  const std::string key_id = key.key_id();
  // 1-2. Structure, then the signature: the payload is not looked at before it verifies.
  auto env = store::dsse_verify(envelope_json, key);
  if (!env.is_ok()) {
    const Status& s = env.status();
    if (s.code() == StatusCode::kCorrupt) {
      std::string why = without_dsse_prefix(s.message());
      if (why == "envelope is not valid JSON") why = json_failure(envelope_json, "envelope");
      return corrupt("not a DSSE envelope: " + why);
    }
    return invalid_argument("signature does not verify under key " + key_id + ": " +
                            signature_failure(envelope_json, key_id));
  }
  // 3. What the signature covers is an in-toto Statement.
  if (env->payload_type != store::kInTotoPayloadType) {
    return invalid_argument("payload type " + json_quoted(env->payload_type) + " is not in-toto (" +
                            store::kInTotoPayloadType + ")");
  }
  // 4-6. The Statement.
  PROV_ASSIGN_OR_RETURN(json statement, parse_payload(env->payload));
  if (!statement.is_object()) {
    return corrupt("signed payload is a JSON " + std::string(statement.type_name()) +
                   ", not a Statement object");
  }
  const json* type = member(statement, "_type");
  if (type == nullptr || !type->is_string() || *type != kStatementType) {
    return invalid_argument("statement type " +
                            (type == nullptr ? std::string("(missing)") : type->dump()) +
                            " is not an in-toto Statement v1 (" + kStatementType + ")");
  }
  const json* predicate_type = member(statement, "predicateType");
  if (predicate_type == nullptr || !predicate_type->is_string() ||
      *predicate_type != kReportPredicateType) {
    return invalid_argument(
        "predicate type " +
        (predicate_type == nullptr ? std::string("(missing)") : predicate_type->dump()) +
        " is not a lineage report (" + kReportPredicateType + ")");
  }
  // 7. The report itself.
  const json* report = member(statement, "predicate");
  if (report == nullptr) return corrupt("signed report: the statement has no predicate");
  Status valid = check_required_fields(*report);
  if (!valid.is_ok()) return corrupt("signed report: " + valid.message());
  auto typed = report_from_json(*report);
  if (!typed.is_ok()) return corrupt("signed report: " + typed.status().message());
  // 8. The subject names the report's candidate, and nothing else.
  const json& candidate = (*report)["candidate"];
  const std::string cand_name = candidate["name"].get<std::string>();
  const std::string cand_sha = candidate["digest"]["sha256"].get<std::string>();
  const json* subjects = member(statement, "subject");
  if (subjects == nullptr || !subjects->is_array() || subjects->size() != 1) {
    const std::string found = subjects == nullptr ? std::string("no 'subject' field")
                              : !subjects->is_array()
                                  ? std::string("a 'subject' that is not an array")
                                  : std::to_string(subjects->size()) + " subjects";
    return corrupt(
        "subject does not match the report's candidate: a report statement has exactly "
        "one subject, this one has " +
        found);
  }
  const json& subject = (*subjects)[0];
  if (!subject.is_object()) {
    return corrupt("subject does not match the report's candidate: the subject is not an object");
  }
  const std::string subj_name = string_member(subject, "name");
  const json* subj_digest = member(subject, "digest");
  const std::string subj_sha = subj_digest != nullptr && subj_digest->is_object()
                                   ? string_member(*subj_digest, "sha256")
                                   : std::string();
  if (subj_name != cand_name) {
    return corrupt("subject does not match the report's candidate: subject name " +
                   json_quoted(subj_name) + ", candidate " + json_quoted(cand_name));
  }
  if (subj_sha != cand_sha) {
    return corrupt("subject does not match the report's candidate: subject sha256 " +
                   json_quoted(subj_sha) + ", candidate " + json_quoted(cand_sha));
  }
  VerifiedReport out;
  out.predicate = *report;
  out.report = std::move(*typed);
  out.statement = std::move(statement);
  out.key_id = key_id;
  return out;
}

}  // namespace prov::lineage
