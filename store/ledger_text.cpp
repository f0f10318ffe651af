#include "store/ledger_text.h"

#include <algorithm>
#include <cctype>

#include "core/sha256.h"

namespace prov::store {

namespace {

bool is_hex(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace

nlohmann::json entry_json(const LedgerEntry& e) {
  nlohmann::json j = {{"index", e.index},
                      {"leaf_hash", to_hex(e.leaf_hash)},
                      {"envelope_sha256", to_hex(sha256(e.envelope))},
                      {"subject_digest", e.subject_digest},
                      {"subjects", e.subjects},
                      {"created_at", e.created_at}};
  j["relation"] = e.relation.empty() ? nlohmann::json(nullptr) : nlohmann::json(e.relation);
  j["parent_digest"] =
      e.parent_digest.empty() ? nlohmann::json(nullptr) : nlohmann::json(e.parent_digest);
  return j;
}

std::string default_origin(const std::string& db, const std::string& id) {
  std::string base = db;
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  size_t slash = base.find_last_of('/');
  if (slash != std::string::npos) base = base.substr(slash + 1);
  if (base.empty()) base = "ledger";
  std::string out = "prov-ledger/" + base + "/" + id;
  for (char& c : out) {
    if (c == '+' || static_cast<unsigned char>(c) <= ' ' || c == 0x7f) c = '_';
  }
  return out;
}

std::string digest_problem(const std::string& v) {
  size_t colon = v.find(':');
  if (colon == std::string::npos) {
    return v.size() == 64 && is_hex(v) ? std::string()
                                       : "'" + v + "' is not a digest (sha256:HEX or 64 hex)";
  }
  std::string alg = v.substr(0, colon);
  bool alg_ok = !alg.empty();
  for (char c : alg) {
    alg_ok = alg_ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_');
  }
  if (!alg_ok || !is_hex(v.substr(colon + 1))) {
    return "'" + v + "' is not a digest (sha256:HEX or 64 hex)";
  }
  return std::string();
}

std::string utc_time_problem(const std::string& v) {
  static const char kShape[] = "dddd-dd-ddTdd:dd:dd";
  std::string t = v;
  if (!t.empty() && t.back() == 'Z') t.pop_back();
  const size_t n = std::min<size_t>(t.size(), 19);
  bool ok = n == 4 || n == 7 || n == 10 || n == 13 || n == 16 || n == 19;
  for (size_t i = 0; ok && i < n; ++i) {
    ok = kShape[i] == 'd' ? std::isdigit(static_cast<unsigned char>(t[i])) != 0 : t[i] == kShape[i];
  }
  if (ok && t.size() > 19) {
    ok = t[19] == '.' && t.size() > 20;
    for (size_t i = 20; ok && i < t.size(); ++i) {
      ok = std::isdigit(static_cast<unsigned char>(t[i])) != 0;
    }
  }
  return ok ? std::string()
            : "'" + v + "' is not a UTC ISO-8601 time (YYYY-MM-DDTHH:MM:SSZ or a prefix)";
}

}  // namespace prov::store
