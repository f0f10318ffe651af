// Checkpoint trust policies (C2SP tlog-policy): which logs may sign a checkpoint and which
// quorum of witnesses must cosign it.
//
// A policy file is lines of space- or tab-separated items ('#' comments and blank lines ignored):
//   log <vkey> [<url>]                 a log; its vkey's key name is its origin (type 0x01)
//   witness <name> <vkey> [<url>]      a witness (cosignature/v1 vkey, type 0x04)
//   group <name> <k>|all|any <name>... k of the named witnesses / groups (1 <= k <= n)
//   quorum <name>|none                 exactly once
// Names are defined before use, each member at most once per group, no duplicate keys; `none`
// is predefined for the quorum only. vkeys are "<name>+<8 hex key id>+<base64(type || key)>",
// their key id checked against the key. Octets 0x09, 0x0a, 0x20-0x7e and 0x80-0xff only. At most
// 256 logs, 256 witnesses and 256 groups; files up to 1 MiB.
//
// A checkpoint satisfies the policy when a signature line of one of the logs (key name = the
// checkpoint's origin) verifies and the quorum of witnesses has valid cosignatures on it.
// Thread safety: a parsed policy is immutable; the functions are stateless.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "store/checkpoint.h"
#include "store/keys.h"

namespace prov::store {

// A signed-note verifier key.
struct NoteVerifierKey {
  std::string name;
  uint32_t key_id = 0;
  uint8_t type = 0;  // 0x01 Ed25519 note signature, 0x04 cosignature/v1
  std::shared_ptr<const PublicKey> key;
};
// Parses a vkey of type 0x01 or 0x04 (kUnsupported for other types) and checks its key id
// against its name and key (kCorrupt otherwise, or when malformed).
Result<NoteVerifierKey> parse_vkey(const std::string& vkey);

struct TlogPolicy {
  struct Witness {
    std::string name;
    NoteVerifierKey vkey;
  };
  struct Group {
    std::string name;
    size_t threshold = 0;
    std::vector<std::string> members;  // witness or group names
  };
  std::vector<NoteVerifierKey> logs;
  std::vector<Witness> witnesses;
  std::vector<Group> groups;
  std::string quorum;  // a witness or group name, or "none"
};
// kCorrupt naming the line and what is wrong.
Result<TlogPolicy> parse_tlog_policy(const std::string& text);
// A policy of one log (key name `origin`, Ed25519 `key`) and `quorum none`.
Result<TlogPolicy> single_log_policy(const std::string& origin, const PublicKey& key);

struct PolicyCheck {
  Checkpoint checkpoint;
  std::string log;  // the name of the log whose signature verified
  std::vector<std::string>
      witnesses;  // the policy names of the witnesses whose cosignature verified
};
// Checks `note` against `policy`: kCorrupt on a malformed note, kInvalidArgument when no listed
// log signed it or the quorum is not met (naming the witnesses that did cosign).
Result<PolicyCheck> verify_checkpoint_policy(const std::string& note, const TlogPolicy& policy);

}  // namespace prov::store
