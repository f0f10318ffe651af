#include "store/cosignature.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

#include <nlohmann/json.hpp>

#include "core/file_io.h"
#include "core/sha256.h"
#include "store/checkpoint.h"

namespace prov::store {

namespace {

const char kEmDash[] = "\xE2\x80\x94";
constexpr size_t kMaxProofLines = 63;
constexpr uint64_t kMaxTimestamp = (uint64_t{1} << 63) - 1;

std::string hash_b64(const Hash& h) {
  return base64_encode(std::string(h.begin(), h.end()));
}

Result<Hash> hash_from_b64(const std::string& line) {
  auto raw = base64_decode(line);
  if (!raw.is_ok() || raw->size() != 32) return corrupt("'" + line + "' is not a base64 hash");
  Hash h{};
  std::memcpy(h.data(), raw->data(), 32);
  return h;
}

Result<uint64_t> parse_size(const std::string& s) {
  if (s.empty() || s.size() > 20 || (s.size() > 1 && s[0] == '0')) {
    return corrupt("'" + s + "' is not a tree size");
  }
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return corrupt("'" + s + "' is not a tree size");
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return corrupt("'" + s + "' overflows 64 bits");
    v = v * 10 + d;
  }
  return v;
}

WitnessResponse answer(int status, std::string body) {
  return WitnessResponse{status, std::move(body)};
}

// An exclusive lock on `path` for the life of the object.
class FileLock {
 public:
  Status acquire(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd_ < 0) return io_error(path + ": " + std::strerror(errno));
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno != EINTR) return io_error(path + ": lock: " + std::strerror(errno));
    }
    return Status::ok();
  }
  ~FileLock() {
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  int fd_ = -1;
};

}  // namespace

Result<uint32_t> cosignature_key_id(const std::string& name, const PublicKey& key) {
  PROV_ASSIGN_OR_RETURN(std::string raw, key.raw_ed25519());
  Digest d = sha256(name + "\n" + std::string(1, '\x04') + raw);
  return (uint32_t{d[0]} << 24) | (uint32_t{d[1]} << 16) | (uint32_t{d[2]} << 8) | d[3];
}

Result<std::string> cosignature_vkey(const std::string& name, const PublicKey& key) {
  if (!valid_key_name(name)) return invalid_argument("invalid cosigner name '" + name + "'");
  PROV_ASSIGN_OR_RETURN(uint32_t id, cosignature_key_id(name, key));
  PROV_ASSIGN_OR_RETURN(std::string raw, key.raw_ed25519());
  char hex[9];
  std::snprintf(hex, sizeof hex, "%08x", id);
  return name + "+" + hex + "+" + base64_encode(std::string(1, '\x04') + raw);
}

std::string cosignature_message(uint64_t timestamp, const std::string& checkpoint_text) {
  return "cosignature/v1\ntime " + std::to_string(timestamp) + "\n" + checkpoint_text;
}

Result<std::string> cosign_checkpoint(const std::string& note, const std::string& name,
                                      const PrivateKey& key, uint64_t timestamp) {
  if (!valid_key_name(name)) {
    return invalid_argument("invalid cosigner name '" + name + "' (non-empty, no spaces, no '+')");
  }
  if (timestamp > kMaxTimestamp) return invalid_argument("cosignature timestamp above 2^63 - 1");
  if (key.type() != KeyType::kEd25519) return unsupported("cosignatures are Ed25519 (type 0x04)");
  std::string text;
  std::vector<std::string> lines;
  PROV_RETURN_IF_ERROR(split_signed_note(note, &text, &lines));
  PROV_ASSIGN_OR_RETURN(uint32_t id, cosignature_key_id(name, key.public_key()));
  PROV_ASSIGN_OR_RETURN(std::string sig, key.sign(cosignature_message(timestamp, text)));
  std::string blob;
  for (int shift = 24; shift >= 0; shift -= 8) blob.push_back(static_cast<char>(id >> shift));
  for (int shift = 56; shift >= 0; shift -= 8) {
    blob.push_back(static_cast<char>(timestamp >> shift));
  }
  blob += sig;
  return std::string(kEmDash) + " " + name + " " + base64_encode(blob);
}

Result<uint64_t> verify_cosignature(const std::string& note, const std::string& name,
                                    const PublicKey& key) {
  std::string text;
  std::vector<std::string> lines;
  PROV_RETURN_IF_ERROR(split_signed_note(note, &text, &lines));
  PROV_ASSIGN_OR_RETURN(uint32_t id, cosignature_key_id(name, key));
  for (const auto& line : lines) {
    auto s = parse_signature_line(line);
    if (!s.is_ok() || s->key_name != name || s->key_id != id || s->signature.size() != 8 + 64) {
      continue;
    }
    uint64_t t = 0;
    for (int i = 0; i < 8; ++i) t = (t << 8) | static_cast<unsigned char>(s->signature[i]);
    if (t > kMaxTimestamp) continue;
    if (key.verify(cosignature_message(t, text), s->signature.substr(8)).is_ok()) return t;
  }
  char hex[9];
  std::snprintf(hex, sizeof hex, "%08x", id);
  return invalid_argument("no valid cosignature by '" + name + "' (key id " + hex + ")");
}

Result<WitnessState> parse_witness_state(const std::string& json_text) {
  nlohmann::json j = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || j.value("version", 0) != 1 || !j.contains("logs") ||
      !j["logs"].is_object()) {
    return corrupt("witness state: not a version-1 state file");
  }
  WitnessState state;
  for (const auto& [origin, log] : j["logs"].items()) {
    if (!log.is_object() || !log.contains("size") || !log["size"].is_number_unsigned() ||
        !log.contains("root") || !log["root"].is_string()) {
      return corrupt("witness state: malformed entry for '" + origin + "'");
    }
    auto root = hash_from_b64(log["root"].get<std::string>());
    if (!root.is_ok()) return root.status().with_context("witness state: " + origin);
    state[origin] = WitnessedTree{log["size"].get<uint64_t>(), *root};
  }
  return state;
}

std::string witness_state_json(const WitnessState& state) {
  nlohmann::json logs = nlohmann::json::object();
  for (const auto& [origin, tree] : state) {
    logs[origin] = {{"size", tree.size}, {"root", hash_b64(tree.root)}};
  }
  return nlohmann::json({{"version", 1}, {"logs", logs}}).dump(2) + "\n";
}

Result<AddCheckpointRequest> parse_add_checkpoint(const std::string& body) {
  AddCheckpointRequest r;
  size_t nl = body.find('\n');
  if (nl == std::string::npos || body.compare(0, 4, "old ") != 0) {
    return corrupt("add-checkpoint: the first line is not 'old <size>'");
  }
  auto old = parse_size(body.substr(4, nl - 4));
  if (!old.is_ok()) return old.status().with_context("add-checkpoint: old size");
  r.old_size = *old;
  size_t pos = nl + 1;
  for (;;) {
    nl = body.find('\n', pos);
    if (nl == std::string::npos) return corrupt("add-checkpoint: no empty line before the note");
    if (nl == pos) break;
    if (r.proof.size() == kMaxProofLines) {
      return corrupt("add-checkpoint: more than 63 consistency proof lines");
    }
    auto h = hash_from_b64(body.substr(pos, nl - pos));
    if (!h.is_ok()) return h.status().with_context("add-checkpoint: proof line");
    r.proof.push_back(*h);
    pos = nl + 1;
  }
  r.checkpoint = body.substr(nl + 1);
  return r;
}

std::string format_add_checkpoint(const AddCheckpointRequest& request) {
  std::string out = "old " + std::to_string(request.old_size) + "\n";
  for (const auto& h : request.proof) out += hash_b64(h) + "\n";
  return out + "\n" + request.checkpoint;
}

WitnessResponse witness_add_checkpoint(const std::string& body, const WitnessConfig& config,
                                       WitnessState* state, uint64_t timestamp) {
  auto req = parse_add_checkpoint(body);
  if (!req.is_ok()) return answer(400, req.status().message());
  auto cp = parse_checkpoint(req->checkpoint);
  if (!cp.is_ok()) return answer(400, cp.status().message());
  const WitnessLog* log = nullptr;
  for (const auto& l : config.logs) {
    if (l.origin == cp->origin && l.key != nullptr) log = &l;
  }
  if (log == nullptr) return answer(404, "unknown log origin '" + cp->origin + "'");
  if (!verify_checkpoint(req->checkpoint, log->origin, *log->key).is_ok()) {
    return answer(403, "the checkpoint carries no valid signature by the log's key");
  }
  if (req->old_size > cp->tree_size) {
    return answer(400, "old size " + std::to_string(req->old_size) + " exceeds the checkpoint's " +
                           std::to_string(cp->tree_size));
  }
  WitnessedTree seen{0, empty_root()};
  auto it = state->find(cp->origin);
  if (it != state->end()) seen = it->second;
  if (req->old_size != seen.size) return answer(409, std::to_string(seen.size) + "\n");
  if (req->old_size == 0 && !req->proof.empty()) {
    return answer(400, "the consistency proof from size 0 must be empty");
  }
  if (req->old_size == cp->tree_size && seen.root != cp->root) {
    return answer(409, "the checkpoint's root differs from the witnessed root at size " +
                           std::to_string(seen.size));
  }
  if (!verify_consistency(seen.size, cp->tree_size, seen.root, cp->root, req->proof)) {
    return answer(
        422, "the consistency proof from size " + std::to_string(seen.size) + " does not verify");
  }
  if (config.key == nullptr) return answer(500, "the witness has no key");
  auto line = cosign_checkpoint(req->checkpoint, config.name, *config.key, timestamp);
  if (!line.is_ok()) return answer(500, line.status().message());
  (*state)[cp->origin] = WitnessedTree{cp->tree_size, cp->root};
  return answer(200, *line + "\n");
}

Result<WitnessResponse> witness_add_checkpoint_file(const std::string& state_path,
                                                    const std::string& body,
                                                    const WitnessConfig& config,
                                                    uint64_t timestamp) {
  FileLock lock;
  PROV_RETURN_IF_ERROR(lock.acquire(state_path + ".lock"));
  WitnessState state;
  if (::access(state_path.c_str(), F_OK) == 0) {
    PROV_ASSIGN_OR_RETURN(std::string text, read_small_file(state_path, "witness state"));
    auto parsed = parse_witness_state(text);
    if (!parsed.is_ok()) return parsed.status().with_context(state_path);
    state = std::move(*parsed);
  }
  WitnessResponse r = witness_add_checkpoint(body, config, &state, timestamp);
  if (r.http_status == 200) {
    PROV_RETURN_IF_ERROR(write_file_atomic(state_path, witness_state_json(state), 0600));
  }
  return r;
}

Result<std::string> cosign_ledger(Ledger& ledger, const LedgerCosignOptions& o) {
  if (o.key == nullptr || o.log_key == nullptr) {
    return invalid_argument("cosign: a witness key and the log's key are needed");
  }
  PROV_ASSIGN_OR_RETURN(std::string note, ledger.latest_checkpoint());
  PROV_ASSIGN_OR_RETURN(Checkpoint cp, parse_checkpoint(note));
  // The old size is what this witness last cosigned for the origin.
  uint64_t old_size = 0;
  if (::access(o.state_path.c_str(), F_OK) == 0) {
    PROV_ASSIGN_OR_RETURN(std::string text, read_small_file(o.state_path, "witness state"));
    auto state = parse_witness_state(text);
    if (!state.is_ok()) return state.status().with_context(o.state_path);
    auto it = state->find(cp.origin);
    if (it != state->end()) old_size = it->second.size;
  }
  if (old_size > cp.tree_size) {
    return invalid_argument("the witness cosigned size " + std::to_string(old_size) + " of " +
                            cp.origin + ", larger than the published " +
                            std::to_string(cp.tree_size) + ": the log was rolled back");
  }
  AddCheckpointRequest req;
  req.old_size = old_size;
  req.checkpoint = note;
  PROV_ASSIGN_OR_RETURN(req.proof, ledger.consistency_proof(old_size, cp.tree_size));
  WitnessConfig config;
  config.name = o.name;
  config.key = o.key;
  config.logs.push_back({cp.origin, o.log_key});
  const uint64_t now = o.timestamp != 0 ? o.timestamp : static_cast<uint64_t>(std::time(nullptr));
  PROV_ASSIGN_OR_RETURN(
      WitnessResponse r,
      witness_add_checkpoint_file(o.state_path, format_add_checkpoint(req), config, now));
  if (r.http_status == 422) return corrupt("witness: " + r.body);
  if (r.http_status != 200) {
    return invalid_argument("witness refused (" + std::to_string(r.http_status) + "): " + r.body);
  }
  return ledger.add_cosignatures(note + r.body);
}

Result<std::string> cosign_ledger_files(const CosignFiles& f) {
  PROV_ASSIGN_OR_RETURN(PrivateKey key, PrivateKey::load(f.key));
  PROV_ASSIGN_OR_RETURN(PublicKey log_key, PublicKey::load(f.log_key));
  PROV_ASSIGN_OR_RETURN(auto ledger, Ledger::open(f.db));
  return cosign_ledger(*ledger, {f.name, &key, &log_key, f.state, 0});
}

}  // namespace prov::store
