#include "store/tlog_policy.h"

#include <map>
#include <set>

#include "core/sha256.h"
#include "store/cosignature.h"

namespace prov::store {

namespace {

constexpr size_t kMaxPolicyBytes = 1u << 20;
constexpr size_t kMaxEach = 256;

std::vector<std::string> tokens(const std::string& line) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

Result<size_t> parse_threshold(const std::string& s, size_t n) {
  if (s == "all") return n;
  if (s == "any") return size_t{1};
  if (s.empty() || s.size() > 6 || (s.size() > 1 && s[0] == '0')) {
    return corrupt("threshold '" + s + "' is not all, any or a decimal number");
  }
  size_t k = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return corrupt("threshold '" + s + "' is not a decimal number");
    k = k * 10 + static_cast<size_t>(c - '0');
  }
  if (k < 1 || k > n) {
    return corrupt("threshold " + s + " is not between 1 and the " + std::to_string(n) +
                   " members");
  }
  return k;
}

// One policy line (already split into tokens) applied to `p`; `defined` holds the witness and
// group names so far, `keys` the raw keys of logs and witnesses (duplicates are refused).
Status apply_line(const std::vector<std::string>& t, TlogPolicy* p, std::set<std::string>* defined,
                  std::set<std::string>* keys, bool* have_quorum) {
  const std::string& kind = t[0];
  auto new_key = [&](const NoteVerifierKey& k) -> Status {
    auto raw = k.key->raw_ed25519();
    if (!raw.is_ok() || !keys->insert(*raw).second) return corrupt("duplicate public key");
    return Status::ok();
  };
  if (kind == "log") {
    if (t.size() < 2 || t.size() > 3) return corrupt("expected 'log <vkey> [<url>]'");
    PROV_ASSIGN_OR_RETURN(NoteVerifierKey k, parse_vkey(t[1]));
    if (k.type != 0x01) return corrupt("a log's vkey must be an Ed25519 note key (type 0x01)");
    PROV_RETURN_IF_ERROR(new_key(k));
    if (p->logs.size() == kMaxEach) return corrupt("more than 256 logs");
    p->logs.push_back(std::move(k));
  } else if (kind == "witness") {
    if (t.size() < 3 || t.size() > 4) return corrupt("expected 'witness <name> <vkey> [<url>]'");
    if (t[1] == "none" || defined->count(t[1])) return corrupt("name '" + t[1] + "' is taken");
    PROV_ASSIGN_OR_RETURN(NoteVerifierKey k, parse_vkey(t[2]));
    if (k.type != 0x04) return corrupt("a witness's vkey must be a cosignature/v1 key (0x04)");
    PROV_RETURN_IF_ERROR(new_key(k));
    if (p->witnesses.size() == kMaxEach) return corrupt("more than 256 witnesses");
    defined->insert(t[1]);
    p->witnesses.push_back({t[1], std::move(k)});
  } else if (kind == "group") {
    if (t.size() < 4) return corrupt("expected 'group <name> <k>|all|any <name>...'");
    if (t[1] == "none" || defined->count(t[1])) return corrupt("name '" + t[1] + "' is taken");
    TlogPolicy::Group g;
    g.name = t[1];
    std::set<std::string> seen;
    for (size_t i = 3; i < t.size(); ++i) {
      if (!defined->count(t[i])) return corrupt("member '" + t[i] + "' is not defined above");
      if (!seen.insert(t[i]).second) return corrupt("member '" + t[i] + "' listed twice");
      g.members.push_back(t[i]);
    }
    PROV_ASSIGN_OR_RETURN(g.threshold, parse_threshold(t[2], g.members.size()));
    if (p->groups.size() == kMaxEach) return corrupt("more than 256 groups");
    defined->insert(g.name);
    p->groups.push_back(std::move(g));
  } else if (kind == "quorum") {
    if (t.size() != 2) return corrupt("expected 'quorum <name>'");
    if (*have_quorum) return corrupt("a second quorum line");
    if (t[1] != "none" && !defined->count(t[1])) {
      return corrupt("quorum '" + t[1] + "' is not defined above");
    }
    p->quorum = t[1];
    *have_quorum = true;
  } else {
    return corrupt("unknown keyword '" + kind + "'");
  }
  return Status::ok();
}

// Whether `name` (a witness or group of `p`) has witnessed, given the witnesses that cosigned.
bool witnessed(const TlogPolicy& p, const std::string& name, const std::set<std::string>& signed_by,
               int depth) {
  if (name == "none") return true;
  if (signed_by.count(name)) return true;
  if (depth > static_cast<int>(kMaxEach)) return false;
  for (const auto& g : p.groups) {
    if (g.name != name) continue;
    size_t n = 0;
    for (const auto& m : g.members) n += witnessed(p, m, signed_by, depth + 1) ? 1 : 0;
    return n >= g.threshold;
  }
  return false;
}

}  // namespace

Result<NoteVerifierKey> parse_vkey(const std::string& vkey) {
  size_t a = vkey.find('+');
  size_t b = a == std::string::npos ? a : vkey.find('+', a + 1);
  if (b == std::string::npos) return corrupt("vkey '" + vkey + "' is not name+id+key");
  NoteVerifierKey k;
  k.name = vkey.substr(0, a);
  if (!valid_key_name(k.name)) return corrupt("vkey '" + vkey + "': invalid key name");
  const std::string hex = vkey.substr(a + 1, b - a - 1);
  auto id = from_hex(hex);
  if (hex.size() != 8 || !id.is_ok()) return corrupt("vkey '" + vkey + "': key id is not 8 hex");
  for (unsigned char c : *id) k.key_id = (k.key_id << 8) | c;
  auto blob = base64_decode(vkey.substr(b + 1));
  if (!blob.is_ok() || blob->empty()) return corrupt("vkey '" + vkey + "': bad base64 key");
  k.type = static_cast<uint8_t>((*blob)[0]);
  if (k.type != 0x01 && k.type != 0x04) {
    return unsupported("vkey '" + vkey + "': signature type " + std::to_string(k.type) +
                       " (only Ed25519 note keys 0x01 and cosignature/v1 keys 0x04)");
  }
  if (blob->size() != 33) return corrupt("vkey '" + vkey + "': not a 32-byte Ed25519 key");
  auto key = PublicKey::from_raw_ed25519(blob->substr(1));
  if (!key.is_ok()) return key.status().with_context("vkey '" + vkey + "'");
  Digest d = sha256(k.name + "\n" + *blob);
  const uint32_t expect =
      (uint32_t{d[0]} << 24) | (uint32_t{d[1]} << 16) | (uint32_t{d[2]} << 8) | d[3];
  if (expect != k.key_id) return corrupt("vkey '" + vkey + "': key id does not match the key");
  k.key = std::make_shared<const PublicKey>(std::move(*key));
  return k;
}

Result<TlogPolicy> parse_tlog_policy(const std::string& text) {
  if (text.size() > kMaxPolicyBytes) return corrupt("policy: larger than 1 MiB");
  TlogPolicy p;
  std::set<std::string> defined, keys;
  bool have_quorum = false;
  size_t pos = 0;
  for (int n = 1; pos < text.size(); ++n) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    const std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    for (unsigned char c : line) {
      if (c != '\t' && (c < 0x20 || c == 0x7f)) {
        return corrupt("policy line " + std::to_string(n) + ": control character");
      }
    }
    const auto t = tokens(line);
    if (t.empty() || t[0][0] == '#') continue;
    Status s = apply_line(t, &p, &defined, &keys, &have_quorum);
    if (!s.is_ok()) return corrupt("policy line " + std::to_string(n) + ": " + s.message());
  }
  if (!have_quorum) return corrupt("policy: no quorum line");
  return p;
}

Result<TlogPolicy> single_log_policy(const std::string& origin, const PublicKey& key) {
  PROV_ASSIGN_OR_RETURN(std::string vkey, note_verifier_key(origin, key));
  PROV_ASSIGN_OR_RETURN(NoteVerifierKey k, parse_vkey(vkey));
  TlogPolicy p;
  p.logs.push_back(std::move(k));
  p.quorum = "none";
  return p;
}

Result<PolicyCheck> verify_checkpoint_policy(const std::string& note, const TlogPolicy& policy) {
  PolicyCheck out;
  PROV_ASSIGN_OR_RETURN(out.checkpoint, parse_checkpoint(note));
  for (const auto& log : policy.logs) {
    if (log.name == out.checkpoint.origin && verify_note(note, log.name, *log.key).is_ok()) {
      out.log = log.name;
      break;
    }
  }
  if (out.log.empty()) {
    return invalid_argument("checkpoint of '" + out.checkpoint.origin +
                            "' carries no valid signature by a log of the policy");
  }
  std::set<std::string> signed_by;
  for (const auto& w : policy.witnesses) {
    if (verify_cosignature(note, w.vkey.name, *w.vkey.key).is_ok()) {
      signed_by.insert(w.name);
      out.witnesses.push_back(w.name);
    }
  }
  if (!witnessed(policy, policy.quorum, signed_by, 0)) {
    std::string who;
    for (const auto& w : out.witnesses) who += (who.empty() ? "" : ", ") + w;
    return invalid_argument("checkpoint does not meet the quorum '" + policy.quorum +
                            "' (valid cosignatures: " + (who.empty() ? "none" : who) + ")");
  }
  return out;
}

}  // namespace prov::store
