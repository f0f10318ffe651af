// Witness cosignatures of checkpoints (C2SP tlog-cosignature, the Ed25519 "cosignature/v1" type)
// and the witness side of C2SP tlog-witness's add-checkpoint, run offline.
//
// A cosignature is a signed-note signature line on a checkpoint:
//   — <witness name> base64(key id || timestamp || signature)
// key id    = SHA-256(name || "\n" || 0x04 || 32-byte Ed25519 public key)[:4]
// timestamp = 8 bytes, big-endian POSIX seconds (at most 2^63 - 1)
// signature = Ed25519 over "cosignature/v1\n" "time <timestamp in decimal>\n" || checkpoint text
// (the note text: origin, size, root and any extension lines, each ending in "\n"). A witness is
// named by its vkey "<name>+<hex key id>+<base64(0x04 || public key)>".
//
// add-checkpoint (request body: "old <size>\n", up to 63 base64 consistency-proof hashes one per
// line, an empty line, then the checkpoint): the witness cosigns a checkpoint of a log it knows
// (origin and Ed25519 key) only when the old size is the size it last cosigned for that origin
// and the RFC 6962 consistency proof from that tree to the new one verifies; it then records the
// new tree before answering. The answers carry the spec's HTTP status codes.
//
// Thread safety: stateless functions; the state file is locked (flock on "<state>.lock") for the
// whole check-and-update, so concurrent witness runs on one state file are serialised.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"
#include "store/keys.h"
#include "store/ledger.h"
#include "store/merkle.h"

namespace prov::store {

// The key id of an Ed25519 cosigner (kUnsupported for other key types).
Result<uint32_t> cosignature_key_id(const std::string& name, const PublicKey& key);
// "<name>+<8 hex>+<base64(0x04 || key)>"; kInvalidArgument on an invalid key name.
Result<std::string> cosignature_vkey(const std::string& name, const PublicKey& key);
// The bytes a cosignature signs: "cosignature/v1\ntime <timestamp>\n" + checkpoint_text.
std::string cosignature_message(uint64_t timestamp, const std::string& checkpoint_text);

// A cosignature line (no trailing newline) over the text of the checkpoint `note`. kCorrupt on a
// malformed note; kInvalidArgument on a bad name or a timestamp above 2^63 - 1; kUnsupported for
// a key that is not Ed25519.
Result<std::string> cosign_checkpoint(const std::string& note, const std::string& name,
                                      const PrivateKey& key, uint64_t timestamp);

// The timestamp of a valid cosignature by (name, key) on `note`. kCorrupt on a malformed note;
// kInvalidArgument when no line with that name and key id verifies.
Result<uint64_t> verify_cosignature(const std::string& note, const std::string& name,
                                    const PublicKey& key);

// --- the witness -------------------------------------------------------------------------------

// The tree a witness last cosigned for one log.
struct WitnessedTree {
  uint64_t size = 0;
  Hash root{};
};
// Per log origin. Stored as JSON: {"version": 1, "logs": {"<origin>": {"size": N, "root":
// "<base64>"}}}.
using WitnessState = std::map<std::string, WitnessedTree>;
Result<WitnessState> parse_witness_state(const std::string& json_text);
std::string witness_state_json(const WitnessState& state);

struct WitnessLog {
  std::string origin;              // the checkpoint origin, also the log's note key name
  const PublicKey* key = nullptr;  // the log's Ed25519 checkpoint key
};
struct WitnessConfig {
  std::string name;                 // the witness's name (its cosignatures' key name)
  const PrivateKey* key = nullptr;  // the witness's Ed25519 key
  std::vector<WitnessLog> logs;     // the logs it witnesses
};

struct AddCheckpointRequest {
  uint64_t old_size = 0;
  std::vector<Hash> proof;  // consistency proof from old_size to the checkpoint's size
  std::string checkpoint;   // the signed note, verbatim
};
// kCorrupt naming the line at fault.
Result<AddCheckpointRequest> parse_add_checkpoint(const std::string& body);
std::string format_add_checkpoint(const AddCheckpointRequest& request);

struct WitnessResponse {
  int http_status = 200;  // 200, or 400, 403, 404, 409, 422 as tlog-witness specifies
  std::string body;  // 200: the cosignature line(s), each ending in "\n"; 409 on a size mismatch:
                     // the witnessed size in decimal and "\n"; otherwise the reason
};
// add-checkpoint against `state` (updated on success). `timestamp` is the cosignature's time.
WitnessResponse witness_add_checkpoint(const std::string& body, const WitnessConfig& config,
                                       WitnessState* state, uint64_t timestamp);
// The same against the state kept in the file `state_path` (created when missing; mode 0600),
// locked for the whole call; the new state is written (atomically) before the answer is
// returned. The Status is a failure to read, lock or write the state file.
Result<WitnessResponse> witness_add_checkpoint_file(const std::string& state_path,
                                                    const std::string& body,
                                                    const WitnessConfig& config,
                                                    uint64_t timestamp);

// As a witness with state file `state_path`, cosigns `ledger`'s published checkpoint
// (latest_checkpoint): builds the add-checkpoint request from the ledger (the old size from the
// state, the consistency proof from the ledger's tree, which the witness verifies itself), and
// on success adds the cosignature to the ledger (add_cosignatures). Returns the cosigned note.
// A refusal is kInvalidArgument (kCorrupt when the consistency proof fails: the log is not an
// extension of what the witness saw) with the witness's reason.
struct LedgerCosignOptions {
  std::string name;                    // witness name
  const PrivateKey* key = nullptr;     // witness key (Ed25519)
  const PublicKey* log_key = nullptr;  // the log's checkpoint key the witness trusts
  std::string state_path;              // the witness's state file
  uint64_t timestamp = 0;              // 0: now
};
Result<std::string> cosign_ledger(Ledger& ledger, const LedgerCosignOptions& options);

// `prov ledger cosign`: cosign_ledger with the ledger and keys read from these files.
struct CosignFiles {
  std::string db, key, name, log_key, state;  // ledger, witness key, name, log key, state
};
Result<std::string> cosign_ledger_files(const CosignFiles& files);

}  // namespace prov::store
