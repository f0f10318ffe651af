#include "store/tlog_proof.h"

#include <cstring>
#include <memory>

#include "core/file_io.h"
#include "core/sha256.h"
#include "store/checkpoint.h"

namespace prov::store {

namespace {

constexpr size_t kMaxProofBytes = size_t{64} << 20;
constexpr size_t kMaxPathLines = 64;
const char kEntryPrefix[] = "prov-ledger-entry-v1\n";

Result<uint64_t> parse_index(const std::string& s) {
  if (s.empty() || s.size() > 20 || (s.size() > 1 && s[0] == '0')) {
    return corrupt("tlog-proof: index '" + s + "' is not a decimal without leading zeros");
  }
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return corrupt("tlog-proof: index '" + s + "' is not decimal");
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return corrupt("tlog-proof: index overflows 64 bits");
    v = v * 10 + d;
  }
  return v;
}

}  // namespace

std::string format_tlog_proof(const TlogProof& proof) {
  std::string out = std::string(kTlogProofHeader) + "\n";
  if (proof.has_extra) out += "extra " + base64_encode(proof.extra) + "\n";
  out += "index " + std::to_string(proof.index) + "\n";
  for (const auto& h : proof.path) out += base64_encode(std::string(h.begin(), h.end())) + "\n";
  return out + "\n" + proof.checkpoint;
}

Result<TlogProof> parse_tlog_proof(const std::string& text) {
  if (text.size() > kMaxProofBytes) return corrupt("tlog-proof: larger than 64 MiB");
  TlogProof p;
  size_t pos = 0;
  auto next_line = [&](std::string* line) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) return false;
    *line = text.substr(pos, nl - pos);
    pos = nl + 1;
    return true;
  };
  std::string line;
  if (!next_line(&line) || line != kTlogProofHeader) {
    return corrupt("tlog-proof: the first line is not 'c2sp.org/tlog-proof@v1'");
  }
  if (!next_line(&line)) return corrupt("tlog-proof: truncated after the first line");
  if (line.compare(0, 6, "extra ") == 0) {
    auto extra = base64_decode(line.substr(6));
    if (!extra.is_ok()) return extra.status().with_context("tlog-proof: extra");
    p.has_extra = true;
    p.extra = std::move(*extra);
    if (!next_line(&line)) return corrupt("tlog-proof: truncated after the extra line");
  }
  if (line.compare(0, 6, "index ") != 0) return corrupt("tlog-proof: no 'index <n>' line");
  PROV_ASSIGN_OR_RETURN(p.index, parse_index(line.substr(6)));
  for (;;) {
    if (!next_line(&line)) return corrupt("tlog-proof: no empty line before the checkpoint");
    if (line.empty()) break;
    if (p.path.size() == kMaxPathLines) return corrupt("tlog-proof: more than 64 proof hashes");
    auto h = base64_decode(line);
    if (!h.is_ok() || h->size() != 32) {
      return corrupt("tlog-proof: proof line " + std::to_string(p.path.size() + 1) +
                     " is not a base64 SHA-256 hash");
    }
    Hash hash{};
    std::memcpy(hash.data(), h->data(), 32);
    p.path.push_back(hash);
  }
  p.checkpoint = text.substr(pos);
  PROV_RETURN_IF_ERROR(parse_checkpoint(p.checkpoint).status().with_context("tlog-proof"));
  return p;
}

Result<TlogProof> ledger_tlog_proof(Ledger& ledger, uint64_t index) {
  PROV_ASSIGN_OR_RETURN(std::string note, ledger.latest_checkpoint());
  PROV_ASSIGN_OR_RETURN(Checkpoint cp, parse_checkpoint(note));
  if (index >= cp.tree_size) {
    return invalid_argument(
        "entry " + std::to_string(index) + " is not covered by the published checkpoint (size " +
        std::to_string(cp.tree_size) + "): sign a new one with prov ledger checkpoint");
  }
  PROV_ASSIGN_OR_RETURN(InclusionProof inc, ledger.inclusion_proof(index, cp.tree_size));
  if (inc.root != cp.root) {
    return corrupt(ledger.path() + ": the published checkpoint's root does not match the tree");
  }
  PROV_ASSIGN_OR_RETURN(LedgerEntry e, ledger.get(index));
  TlogProof p;
  p.has_extra = true;
  p.extra = entry_leaf_data(e.created_at, e.envelope);
  p.index = index;
  p.path = std::move(inc.path);
  p.checkpoint = std::move(note);
  return p;
}

Result<TlogProofCheck> verify_tlog_proof(const std::string& text, const TlogPolicy& policy,
                                         const std::string* leaf_data) {
  PROV_ASSIGN_OR_RETURN(TlogProof p, parse_tlog_proof(text));
  TlogProofCheck out;
  PROV_ASSIGN_OR_RETURN(out.policy, verify_checkpoint_policy(p.checkpoint, policy));
  if (leaf_data == nullptr && !p.has_extra) {
    return invalid_argument("tlog-proof: no extra data, and no record to check against");
  }
  out.index = p.index;
  out.leaf_data = leaf_data != nullptr ? *leaf_data : p.extra;
  const Checkpoint& cp = out.policy.checkpoint;
  if (p.index >= cp.tree_size) {
    return invalid_argument("tlog-proof: index " + std::to_string(p.index) +
                            " is not in the checkpoint's tree of " + std::to_string(cp.tree_size));
  }
  if (!verify_inclusion(leaf_hash(out.leaf_data), p.index, cp.tree_size, p.path, cp.root)) {
    return invalid_argument("tlog-proof: the record is not leaf " + std::to_string(p.index) +
                            " of the checkpoint's tree (inclusion proof does not verify)");
  }
  const std::string prefix = kEntryPrefix;
  if (out.leaf_data.compare(0, prefix.size(), prefix) == 0) {
    size_t nl = out.leaf_data.find('\n', prefix.size());
    if (nl != std::string::npos) {
      out.created_at = out.leaf_data.substr(prefix.size(), nl - prefix.size());
      out.envelope = out.leaf_data.substr(nl + 1);
    }
  }
  return out;
}

Result<TlogProofCheck> verify_tlog_proof_for(const std::string& proof_text,
                                             const std::string& policy_text,
                                             const PublicKey* log_key,
                                             const std::string* envelope) {
  TlogPolicy policy;
  if (!policy_text.empty()) {
    PROV_ASSIGN_OR_RETURN(policy, parse_tlog_policy(policy_text));
  } else {
    if (log_key == nullptr) return invalid_argument("verify-proof needs a policy or a log key");
    PROV_ASSIGN_OR_RETURN(TlogProof p, parse_tlog_proof(proof_text));
    PROV_ASSIGN_OR_RETURN(Checkpoint cp, parse_checkpoint(p.checkpoint));
    PROV_ASSIGN_OR_RETURN(policy, single_log_policy(cp.origin, *log_key));
  }
  PROV_ASSIGN_OR_RETURN(TlogProofCheck check, verify_tlog_proof(proof_text, policy));
  if (envelope != nullptr && (check.created_at.empty() || check.envelope != *envelope)) {
    return invalid_argument("the proven entry does not carry this envelope");
  }
  return check;
}

Result<std::string> ledger_tlog_proof_file(const LedgerProofFile& f) {
  PROV_ASSIGN_OR_RETURN(auto ledger, Ledger::open(f.db));
  PROV_ASSIGN_OR_RETURN(TlogProof p, ledger_tlog_proof(*ledger, f.index));
  return format_tlog_proof(p);
}

Result<std::string> verify_tlog_proof_files(const VerifyProofFiles& f) {
  auto read = [](const std::string& path, const char* what) {
    return path.empty() ? Result<std::string>(std::string()) : read_small_file(path, what);
  };
  PROV_ASSIGN_OR_RETURN(std::string proof, read_small_file(f.proof, "tlog-proof"));
  PROV_ASSIGN_OR_RETURN(std::string policy, read(f.policy, "policy"));
  PROV_ASSIGN_OR_RETURN(std::string envelope, read(f.envelope, "envelope"));
  std::unique_ptr<PublicKey> key;
  if (!f.key.empty()) {
    PROV_ASSIGN_OR_RETURN(PublicKey k, PublicKey::load(f.key));
    key = std::make_unique<PublicKey>(std::move(k));
  }
  PROV_ASSIGN_OR_RETURN(
      TlogProofCheck check,
      verify_tlog_proof_for(proof, policy, key.get(), f.envelope.empty() ? nullptr : &envelope));
  return tlog_proof_summary(check);
}

std::string tlog_proof_summary(const TlogProofCheck& c) {
  std::string out = "verified: entry " + std::to_string(c.index) + " of " +
                    c.policy.checkpoint.origin + " (tree size " +
                    std::to_string(c.policy.checkpoint.tree_size) + ")\n";
  if (!c.created_at.empty()) out += "  appended   " + c.created_at + "\n";
  std::string who;
  for (const auto& w : c.policy.witnesses) who += (who.empty() ? "" : ", ") + w;
  out += "  witnesses  " + (who.empty() ? std::string("none") : who) + "\n";
  out += "  record     sha256:" + to_hex(sha256(c.envelope.empty() ? c.leaf_data : c.envelope)) +
         (c.envelope.empty() ? " (leaf data)\n" : " (envelope)\n");
  return out;
}

}  // namespace prov::store
