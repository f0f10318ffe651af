// Offline proofs that an entry is in the ledger (C2SP tlog-proof@v1, ".tlog-proof" files):
//
//   c2sp.org/tlog-proof@v1
//   extra <base64 of the entry's leaf data>        optional (prov always writes it)
//   index <entry index, decimal>
//   <base64 hash>                                   the RFC 6962 inclusion proof, leaf's sibling
//   ...                                             first, up to the root's child (at most 64)
//   <empty line>
//   <the checkpoint, a signed note, verbatim, with its witness cosignatures>
//
// prov puts the entry's leaf data ("prov-ledger-entry-v1\n" created_at "\n" envelope, the bytes
// whose RFC 6962 leaf hash is in the tree) in `extra`, so the proof is self-contained; the extra
// data is not trusted: it is checked through its leaf hash like any other record.
// Parsing is bounded (64 MiB, 64 proof lines). Thread safety: stateless functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "store/ledger.h"
#include "store/merkle.h"
#include "store/tlog_policy.h"

namespace prov::store {

inline constexpr char kTlogProofHeader[] = "c2sp.org/tlog-proof@v1";

struct TlogProof {
  bool has_extra = false;
  std::string extra;  // decoded
  uint64_t index = 0;
  std::vector<Hash> path;
  std::string checkpoint;  // the signed note, verbatim
};

std::string format_tlog_proof(const TlogProof& proof);
// kCorrupt naming the line at fault (the checkpoint is parsed, not verified).
Result<TlogProof> parse_tlog_proof(const std::string& text);

// The proof of entry `index` against the ledger's published checkpoint (latest_checkpoint, with
// its cosignatures), the entry's leaf data as extra. kNotFound when there is no checkpoint;
// kInvalidArgument when the checkpoint does not cover the entry yet.
Result<TlogProof> ledger_tlog_proof(Ledger& ledger, uint64_t index);

struct TlogProofCheck {
  PolicyCheck policy;  // the checkpoint, the log and the witnesses that signed it
  uint64_t index = 0;
  std::string leaf_data;   // the record proven (the extra data, or what the caller gave)
  std::string created_at;  // when leaf_data is a prov ledger entry: its time, else ""
  std::string envelope;    // ... and its envelope, else ""
};
// Verifies a proof: the checkpoint against `policy` (log signature and witness quorum), then
// that the record's leaf hash is leaf `index` of the checkpoint's tree. The record is
// `leaf_data` when non-null, else the proof's extra data (kInvalidArgument when it has none).
// kCorrupt on a malformed proof; kInvalidArgument when a check fails.
Result<TlogProofCheck> verify_tlog_proof(const std::string& text, const TlogPolicy& policy,
                                         const std::string* leaf_data = nullptr);

// `prov verify-proof`: the proof under the policy file `policy_text`, or, when that is empty,
// under `log_key` alone (quorum none; its key name is the checkpoint's origin). When `envelope`
// is non-null the record must be a prov ledger entry carrying exactly that envelope
// (kInvalidArgument otherwise). kCorrupt on a malformed policy; else as verify_tlog_proof.
Result<TlogProofCheck> verify_tlog_proof_for(const std::string& proof_text,
                                             const std::string& policy_text,
                                             const PublicKey* log_key,
                                             const std::string* envelope = nullptr);
// `prov ledger proof`: the proof file text of entry `index` of the ledger file `db` (`out`:
// where the caller writes it, "" for standard output).
struct LedgerProofFile {
  std::string db, out;
  uint64_t index = 0;
};
Result<std::string> ledger_tlog_proof_file(const LedgerProofFile& file);
// `prov verify-proof`: verify_tlog_proof_for with its inputs read from files (policy, key and
// envelope may be empty: not given); returns tlog_proof_summary.
struct VerifyProofFiles {
  std::string proof, policy, key, envelope;
};
Result<std::string> verify_tlog_proof_files(const VerifyProofFiles& files);

// What a check showed, for people: "verified: entry N of ORIGIN (tree size S)" and lines for
// the time, the cosigning witnesses and the record's SHA-256.
std::string tlog_proof_summary(const TlogProofCheck& check);

}  // namespace prov::store
