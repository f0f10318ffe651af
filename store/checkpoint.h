// C2SP checkpoints (https://c2sp.org/tlog-checkpoint) carried in signed notes
// (https://c2sp.org/signed-note), Ed25519 signatures only.
//
// Format (every line ends in "\n"):
//   <origin>                 non-empty, no spaces required by us beyond "no newline"
//   <tree size>              ASCII decimal, no sign, no leading zeros
//   <root hash>              standard padded base64 of the 32-byte RFC 6962 root
//   [extension lines]        optional, non-empty, kept verbatim
//   <blank line>
//   — <key name> <base64(key hash || signature)>     one or more signature lines
// The signature covers the note text: every byte up to and including the newline that ends the
// last body line. The key hash of an Ed25519 note key is the first 4 bytes of
// SHA-256(key name || "\n" || 0x01 || 32-byte public key). Signature lines from unknown keys are
// ignored; a checkpoint verifies iff a line with our key name and key hash carries a valid
// Ed25519 signature.
//
// Parsing is bounded: at most 1 MiB of note text and 100 signature lines.
// Thread safety: stateless functions.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "store/keys.h"
#include "store/merkle.h"

namespace prov::store {

struct Checkpoint {
  std::string origin;
  uint64_t tree_size = 0;
  Hash root{};
  std::vector<std::string> extensions;  // extra body lines, without their newlines
};

// The note text of a checkpoint ("origin\nsize\nroot\n[ext\n]...").
std::string checkpoint_text(const Checkpoint& cp);

// A valid key name: non-empty, no whitespace, no '+' (signed-note rules).
bool valid_key_name(const std::string& name);

// The 4-byte key hash of an Ed25519 note key (kUnsupported for other key types).
Result<std::array<uint8_t, 4>> note_key_hash(const std::string& key_name, const PublicKey& key);

// The signed-note verifier key string "<name>+<hex key hash>+<base64(0x01 || public key)>".
Result<std::string> note_verifier_key(const std::string& key_name, const PublicKey& key);

// Signs a checkpoint; the result is the complete signed note. kInvalidArgument on a bad origin
// or key name, kUnsupported on a non-Ed25519 key.
Result<std::string> sign_checkpoint(const Checkpoint& cp, const std::string& key_name,
                                    const PrivateKey& key);

// Parses a signed checkpoint without checking signatures (kCorrupt with the line at fault).
Result<Checkpoint> parse_checkpoint(const std::string& note);

// Splits a signed note into its text (up to and including the newline before the blank line)
// and its signature lines (without their newlines), within the bounds above. kCorrupt on a
// malformed note.
Status split_signed_note(const std::string& note, std::string* text,
                         std::vector<std::string>* signature_lines);

// One signature line "— <key name> base64(key id || signature)", parsed (not verified).
struct NoteSignature {
  std::string key_name;
  uint32_t key_id = 0;    // the first 4 bytes, big-endian
  std::string signature;  // the bytes after the key id
};
// kCorrupt when the line lacks the em dash, has an invalid key name, bad base64 or fewer than 4
// bytes.
Result<NoteSignature> parse_signature_line(const std::string& line);

// Verifies any signed note (not only checkpoints) and returns its text. kCorrupt on a malformed
// note, kInvalidArgument when no signature line from (key_name, key) verifies.
Result<std::string> verify_note(const std::string& note, const std::string& key_name,
                                const PublicKey& key);

// Parses and verifies a checkpoint. kCorrupt on malformed notes, kInvalidArgument when no signature
// line from (key_name, key) verifies.
Result<Checkpoint> verify_checkpoint(const std::string& note, const std::string& key_name,
                                     const PublicKey& key);

}  // namespace prov::store
