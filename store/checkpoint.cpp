#include "store/checkpoint.h"

#include <cstring>

#include "core/sha256.h"

namespace prov::store {

namespace {

const char kEmDash[] = "\xE2\x80\x94";  // U+2014, which starts every signature line
constexpr size_t kMaxNote = 1u << 20;
constexpr size_t kMaxSignatures = 100;

// Splits a note into its text (ending in "\n") and its signature lines.
Status split_note(const std::string& note, std::string* text, std::vector<std::string>* sigs) {
  if (note.size() > kMaxNote) return corrupt("checkpoint: note larger than 1 MiB");
  size_t blank = note.find("\n\n");
  if (blank == std::string::npos) {
    return corrupt("checkpoint: no blank line separating the text from the signatures");
  }
  *text = note.substr(0, blank + 1);
  size_t pos = blank + 2;
  if (pos >= note.size()) return corrupt("checkpoint: no signature lines");
  if (note.back() != '\n') return corrupt("checkpoint: the last signature line has no newline");
  while (pos < note.size()) {
    size_t nl = note.find('\n', pos);
    sigs->push_back(note.substr(pos, nl - pos));
    pos = nl + 1;
    if (sigs->size() > kMaxSignatures) return corrupt("checkpoint: more than 100 signatures");
  }
  return Status::ok();
}

Result<uint64_t> parse_decimal(const std::string& s) {
  if (s.empty() || s.size() > 20) return corrupt("checkpoint: tree size '" + s + "' is invalid");
  if (s.size() > 1 && s[0] == '0') {
    return corrupt("checkpoint: tree size '" + s + "' has a leading zero");
  }
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return corrupt("checkpoint: tree size '" + s + "' is not decimal");
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return corrupt("checkpoint: tree size overflows 64 bits");
    v = v * 10 + d;
  }
  return v;
}

Result<Checkpoint> parse_text(const std::string& text) {
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    lines.push_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  if (lines.size() < 3) return corrupt("checkpoint: fewer than 3 body lines");
  Checkpoint cp;
  cp.origin = lines[0];
  if (cp.origin.empty()) return corrupt("checkpoint: empty origin line");
  PROV_ASSIGN_OR_RETURN(cp.tree_size, parse_decimal(lines[1]));
  auto root = base64_decode(lines[2]);
  if (!root.is_ok()) return root.status().with_context("checkpoint root hash (line 3)");
  if (root->size() != 32) {
    return corrupt("checkpoint: root hash is " + std::to_string(root->size()) +
                   " bytes, expected 32");
  }
  std::memcpy(cp.root.data(), root->data(), 32);
  for (size_t i = 3; i < lines.size(); ++i) cp.extensions.push_back(lines[i]);
  return cp;
}

}  // namespace

std::string checkpoint_text(const Checkpoint& cp) {
  std::string out = cp.origin + "\n" + std::to_string(cp.tree_size) + "\n" +
                    base64_encode(std::string(cp.root.begin(), cp.root.end())) + "\n";
  for (const auto& e : cp.extensions) out += e + "\n";
  return out;
}

bool valid_key_name(const std::string& name) {
  if (name.empty()) return false;
  for (unsigned char c : name) {
    if (c <= 0x20 || c == '+' || c == 0x7f) return false;
  }
  return true;
}

Result<std::array<uint8_t, 4>> note_key_hash(const std::string& key_name, const PublicKey& key) {
  PROV_ASSIGN_OR_RETURN(std::string raw, key.raw_ed25519());
  std::string input = key_name + "\n";
  input.push_back('\x01');
  input += raw;
  Digest d = sha256(input);
  return std::array<uint8_t, 4>{d[0], d[1], d[2], d[3]};
}

Result<std::string> note_verifier_key(const std::string& key_name, const PublicKey& key) {
  if (!valid_key_name(key_name))
    return invalid_argument("invalid note key name '" + key_name + "'");
  PROV_ASSIGN_OR_RETURN(auto kh, note_key_hash(key_name, key));
  PROV_ASSIGN_OR_RETURN(std::string raw, key.raw_ed25519());
  return key_name + "+" + to_hex(kh.data(), kh.size()) + "+" + base64_encode("\x01" + raw);
}

Result<std::string> sign_checkpoint(const Checkpoint& cp, const std::string& key_name,
                                    const PrivateKey& key) {
  if (!valid_key_name(key_name)) {
    return invalid_argument("invalid note key name '" + key_name +
                            "' (non-empty, no spaces, no '+')");
  }
  if (cp.origin.empty() || cp.origin.find('\n') != std::string::npos) {
    return invalid_argument("checkpoint origin must be one non-empty line");
  }
  for (const auto& e : cp.extensions) {
    if (e.empty() || e.find('\n') != std::string::npos) {
      return invalid_argument("checkpoint extension lines must be non-empty single lines");
    }
  }
  if (key.type() != KeyType::kEd25519) {
    return unsupported("checkpoints are signed with Ed25519 keys only");
  }
  PROV_ASSIGN_OR_RETURN(auto kh, note_key_hash(key_name, key.public_key()));
  std::string text = checkpoint_text(cp);
  PROV_ASSIGN_OR_RETURN(std::string sig, key.sign(text));
  std::string blob(kh.begin(), kh.end());
  blob += sig;
  return text + "\n" + kEmDash + " " + key_name + " " + base64_encode(blob) + "\n";
}

Status split_signed_note(const std::string& note, std::string* text,
                         std::vector<std::string>* signature_lines) {
  text->clear();
  signature_lines->clear();
  return split_note(note, text, signature_lines);
}

Result<NoteSignature> parse_signature_line(const std::string& line) {
  const std::string dash = std::string(kEmDash) + " ";
  if (line.compare(0, dash.size(), dash) != 0) {
    return corrupt("signed note: signature line does not start with an em dash and a space");
  }
  size_t space = line.find(' ', dash.size());
  if (space == std::string::npos) return corrupt("signed note: signature line has no signature");
  NoteSignature s;
  s.key_name = line.substr(dash.size(), space - dash.size());
  if (!valid_key_name(s.key_name)) {
    return corrupt("signed note: invalid key name '" + s.key_name + "'");
  }
  auto blob = base64_decode(line.substr(space + 1));
  if (!blob.is_ok()) return blob.status().with_context("signed note: signature of " + s.key_name);
  if (blob->size() < 4) return corrupt("signed note: signature of " + s.key_name + " too short");
  for (int i = 0; i < 4; ++i) s.key_id = (s.key_id << 8) | static_cast<unsigned char>((*blob)[i]);
  s.signature = blob->substr(4);
  return s;
}

Result<Checkpoint> parse_checkpoint(const std::string& note) {
  std::string text;
  std::vector<std::string> sigs;
  PROV_RETURN_IF_ERROR(split_note(note, &text, &sigs));
  return parse_text(text);
}

Result<Checkpoint> verify_checkpoint(const std::string& note, const std::string& key_name,
                                     const PublicKey& key) {
  // Parse first so that a malformed body is reported as such even when correctly signed.
  PROV_RETURN_IF_ERROR(parse_checkpoint(note).status());
  PROV_ASSIGN_OR_RETURN(std::string text, verify_note(note, key_name, key));
  return parse_text(text);
}

Result<std::string> verify_note(const std::string& note, const std::string& key_name,
                                const PublicKey& key) {
  std::string text;
  std::vector<std::string> sigs;
  PROV_RETURN_IF_ERROR(split_note(note, &text, &sigs));
  PROV_ASSIGN_OR_RETURN(auto kh, note_key_hash(key_name, key));
  const std::string prefix = std::string(kEmDash) + " " + key_name + " ";
  for (size_t i = 0; i < sigs.size(); ++i) {
    const std::string& line = sigs[i];
    if (line.compare(0, std::strlen(kEmDash) + 1, std::string(kEmDash) + " ") != 0) {
      return corrupt("checkpoint: signature line " + std::to_string(i + 1) +
                     " does not start with an em dash and a space");
    }
    if (line.compare(0, prefix.size(), prefix) != 0) continue;  // another signer
    auto blob = base64_decode(line.substr(prefix.size()));
    if (!blob.is_ok() || blob->size() != 4 + 64) continue;
    if (std::memcmp(blob->data(), kh.data(), 4) != 0) continue;
    if (key.verify(text, blob->substr(4)).is_ok()) return text;
  }
  return invalid_argument("signed note: no valid signature by '" + key_name + "' (key hash " +
                          to_hex(kh.data(), kh.size()) + ")");
}

}  // namespace prov::store
