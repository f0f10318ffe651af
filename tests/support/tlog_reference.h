// An independent client of a C2SP tlog-tiles log, written from the specs for the tests: RFC 6962
// hashing and inclusion proofs, signed-note Ed25519 checks and the tile layout, on OpenSSL
// directly and libcurl. It shares no code with prov's store/ (merkle.h, checkpoint.h, keys.h),
// so a test that passes with it shows prov's output is what the specs say, not what prov reads.
// Header-only; link OpenSSL::Crypto and CURL::libcurl.
#pragma once

#include <curl/curl.h>
#include <openssl/evp.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace prov::testing::ref {

using Bytes = std::string;

inline Bytes sha256(const Bytes& data) {
  unsigned char out[32];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), out, &n, EVP_sha256(), nullptr);
  return Bytes(reinterpret_cast<char*>(out), 32);
}
inline Bytes leaf_hash(const Bytes& data) {
  return sha256(Bytes(1, '\x00') + data);
}
inline Bytes node_hash(const Bytes& l, const Bytes& r) {
  return sha256(Bytes(1, '\x01') + l + r);
}

// MTH(D[begin:end]) of RFC 6962 §2.1, recursively over leaf hashes.
inline Bytes mth(const std::vector<Bytes>& leaves, size_t begin, size_t end) {
  if (end == begin) return sha256("");
  if (end - begin == 1) return leaves[begin];
  size_t k = 1;
  while (k * 2 < end - begin) k *= 2;
  return node_hash(mth(leaves, begin, begin + k), mth(leaves, begin + k, end));
}

// PATH(m, D[begin:end]) of RFC 6962 §2.1.1.
inline std::vector<Bytes> path(const std::vector<Bytes>& leaves, size_t m, size_t begin,
                               size_t end) {
  if (end - begin <= 1) return {};
  size_t k = 1;
  while (k * 2 < end - begin) k *= 2;
  std::vector<Bytes> out;
  if (m < k) {
    out = path(leaves, m, begin, begin + k);
    out.push_back(mth(leaves, begin + k, end));
  } else {
    out = path(leaves, m - k, begin + k, end);
    out.push_back(mth(leaves, begin, begin + k));
  }
  return out;
}

// RFC 9162 §2.1.3.2.
inline bool verify_inclusion(const Bytes& leaf, uint64_t index, uint64_t size,
                             const std::vector<Bytes>& proof, const Bytes& root) {
  if (index >= size) return false;
  uint64_t fn = index, sn = size - 1;
  Bytes r = leaf;
  for (const Bytes& p : proof) {
    if (sn == 0) return false;
    if ((fn & 1) || fn == sn) {
      r = node_hash(p, r);
      if (!(fn & 1)) {
        while (fn != 0 && !(fn & 1)) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      r = node_hash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  return sn == 0 && r == root;
}

inline Bytes b64decode(const std::string& s) {
  std::vector<unsigned char> out(s.size() + 3);
  const int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(s.data()),
                                static_cast<int>(s.size()));
  if (n < 0) return "";
  size_t len = static_cast<size_t>(n);
  if (!s.empty() && s.back() == '=') --len;
  if (s.size() > 1 && s[s.size() - 2] == '=') --len;
  return Bytes(reinterpret_cast<char*>(out.data()), len);
}
inline std::string b64encode(const Bytes& b) {
  std::vector<unsigned char> out(4 * ((b.size() + 2) / 3) + 1);
  EVP_EncodeBlock(out.data(), reinterpret_cast<const unsigned char*>(b.data()),
                  static_cast<int>(b.size()));
  return std::string(reinterpret_cast<char*>(out.data()));
}

inline bool ed25519_verify(const Bytes& pub32, const Bytes& msg, const Bytes& sig) {
  EVP_PKEY* k = EVP_PKEY_new_raw_public_key(
      EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(pub32.data()), 32);
  if (k == nullptr) return false;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = EVP_DigestVerifyInit(ctx, nullptr, nullptr, nullptr, k) == 1 &&
            EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                             reinterpret_cast<const unsigned char*>(msg.data()), msg.size()) == 1;
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(k);
  return ok;
}

// A signed note verifier key "<name>+<hex id>+<base64(type || key)>".
struct Vkey {
  std::string name;
  Bytes id;  // 4 bytes
  unsigned char type = 0;
  Bytes pub;  // 32 bytes
};
inline bool parse_vkey(const std::string& v, Vkey* out) {
  size_t a = v.find('+'), b = v.find('+', a + 1);
  if (a == std::string::npos || b == std::string::npos || b - a != 9) return false;
  out->name = v.substr(0, a);
  out->id.clear();
  for (size_t i = a + 1; i < b; i += 2) {
    out->id.push_back(static_cast<char>(std::stoi(v.substr(i, 2), nullptr, 16)));
  }
  Bytes blob = b64decode(v.substr(b + 1));
  if (blob.size() != 33) return false;
  out->type = static_cast<unsigned char>(blob[0]);
  out->pub = blob.substr(1);
  return sha256(out->name + "\n" + blob).substr(0, 4) == out->id;
}

struct Note {
  std::string text;                // up to and including the last body newline
  std::vector<std::string> lines;  // signature lines
};
inline bool split_note(const std::string& note, Note* out) {
  size_t blank = note.rfind("\n\n");
  if (blank == std::string::npos) return false;
  out->text = note.substr(0, blank + 1);
  out->lines.clear();
  size_t pos = blank + 2;
  while (pos < note.size()) {
    size_t nl = note.find('\n', pos);
    if (nl == std::string::npos) return false;
    out->lines.push_back(note.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return !out->lines.empty();
}

// True when a line of `note` by `key` (type 0x01: signs the text; type 0x04: cosignature/v1
// over "cosignature/v1\ntime <t>\n" || text) verifies.
inline bool note_signed_by(const std::string& note, const Vkey& key) {
  Note n;
  if (!split_note(note, &n)) return false;
  const std::string prefix = "\xE2\x80\x94 " + key.name + " ";
  for (const auto& line : n.lines) {
    if (line.compare(0, prefix.size(), prefix) != 0) continue;
    Bytes sig = b64decode(line.substr(prefix.size()));
    if (sig.size() < 4 || sig.substr(0, 4) != key.id) continue;
    if (key.type == 0x01 && sig.size() == 68 && ed25519_verify(key.pub, n.text, sig.substr(4))) {
      return true;
    }
    if (key.type == 0x04 && sig.size() == 76) {
      uint64_t t = 0;
      for (int i = 4; i < 12; ++i) t = (t << 8) | static_cast<unsigned char>(sig[i]);
      const std::string msg = "cosignature/v1\ntime " + std::to_string(t) + "\n" + n.text;
      if (ed25519_verify(key.pub, msg, sig.substr(12))) return true;
    }
  }
  return false;
}

// The checkpoint body of a note: origin, size, root (raw).
struct Checkpoint {
  std::string origin;
  uint64_t size = 0;
  Bytes root;
};
inline bool parse_checkpoint(const std::string& note, Checkpoint* out) {
  Note n;
  if (!split_note(note, &n)) return false;
  size_t a = n.text.find('\n'), b = n.text.find('\n', a + 1), c = n.text.find('\n', b + 1);
  if (c == std::string::npos) return false;
  out->origin = n.text.substr(0, a);
  out->size = std::stoull(n.text.substr(a + 1, b - a - 1));
  out->root = b64decode(n.text.substr(b + 1, c - b - 1));
  return out->root.size() == 32;
}

// The tlog-tiles path of tile `n` at `level` (or of entry bundle `n` when level < 0), partial
// width w (0 or 256: full), written out from the spec's example.
inline std::string tile_path(int level, uint64_t n, unsigned w) {
  std::vector<unsigned> groups;
  do {
    groups.push_back(static_cast<unsigned>(n % 1000));
    n /= 1000;
  } while (n > 0);
  std::string out = level < 0 ? "/tile/entries/" : "/tile/" + std::to_string(level) + "/";
  for (size_t i = groups.size(); i-- > 0;) {
    char buf[8];
    std::snprintf(buf, sizeof buf, i > 0 ? "x%03u/" : "%03u", groups[i]);
    out += buf;
  }
  if (w != 0 && w != 256) out += ".p/" + std::to_string(w);
  return out;
}

// An HTTP GET with libcurl: the status (0 when the request failed) and the body.
struct HttpResult {
  long status = 0;
  std::string body;
  std::string content_type;
};
inline HttpResult http_get(const std::string& url) {
  HttpResult r;
  CURL* c = curl_easy_init();
  if (c == nullptr) return r;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
  curl_easy_setopt(
      c, CURLOPT_WRITEFUNCTION, +[](char* p, size_t s, size_t n, void* ud) {
        static_cast<std::string*>(ud)->append(p, s * n);
        return s * n;
      });
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
  if (curl_easy_perform(c) == CURLE_OK) {
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    char* ct = nullptr;
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
    if (ct != nullptr) r.content_type = ct;
  }
  curl_easy_cleanup(c);
  return r;
}

// A monitor's view of a log fetched over HTTP from `base` ("http://host:port"): the checkpoint
// verified under the log's vkey, every entry from the entry bundles, the leaf hashes recomputed
// and checked against the level-0 tiles, and the tree rebuilt from the leaves and checked against
// the checkpoint root and the higher-level tiles. `error` says what failed.
struct Fetched {
  Checkpoint checkpoint;
  std::string note;
  std::vector<Bytes> entries;  // leaf data
  std::vector<Bytes> leaves;   // leaf hashes
  std::string error;
};
inline Fetched fetch_log(const std::string& base, const std::string& log_vkey) {
  Fetched f;
  Vkey key;
  if (!parse_vkey(log_vkey, &key) || key.type != 0x01) {
    f.error = "bad log vkey";
    return f;
  }
  HttpResult cp = http_get(base + "/checkpoint");
  if (cp.status != 200) {
    f.error = "GET /checkpoint: " + std::to_string(cp.status);
    return f;
  }
  f.note = cp.body;
  if (!parse_checkpoint(cp.body, &f.checkpoint) || f.checkpoint.origin != key.name ||
      !note_signed_by(cp.body, key)) {
    f.error = "checkpoint does not verify under the log key";
    return f;
  }
  const uint64_t size = f.checkpoint.size;
  for (uint64_t n = 0; n * 256 < size; ++n) {
    const unsigned w = static_cast<unsigned>(std::min<uint64_t>(256, size - n * 256));
    HttpResult bundle = http_get(base + tile_path(-1, n, w));
    HttpResult tile = http_get(base + tile_path(0, n, w));
    if (bundle.status != 200 || tile.status != 200 || tile.body.size() != 32u * w) {
      f.error = "GET tile or bundle " + std::to_string(n) + ": " + std::to_string(bundle.status) +
                "/" + std::to_string(tile.status);
      return f;
    }
    size_t pos = 0;
    for (unsigned i = 0; i < w; ++i) {
      if (bundle.body.size() - pos < 2) {
        f.error = "bundle truncated";
        return f;
      }
      const size_t len = (static_cast<unsigned char>(bundle.body[pos]) << 8) |
                         static_cast<unsigned char>(bundle.body[pos + 1]);
      Bytes entry = bundle.body.substr(pos + 2, len);
      pos += 2 + len;
      Bytes leaf = leaf_hash(entry);
      if (leaf != tile.body.substr(32 * i, 32)) {
        f.error = "entry " + std::to_string(n * 256 + i) + " does not hash to its level-0 tile";
        return f;
      }
      f.entries.push_back(entry);
      f.leaves.push_back(leaf);
    }
    if (pos != bundle.body.size()) {
      f.error = "bundle has trailing bytes";
      return f;
    }
  }
  if (mth(f.leaves, 0, f.leaves.size()) != f.checkpoint.root) {
    f.error = "the rebuilt tree's root is not the checkpoint's";
    return f;
  }
  // Level-1 tiles: each hash the MTH of a full run of 256 leaves.
  const uint64_t l1 = size / 256;
  for (uint64_t n = 0; n * 256 < l1; ++n) {
    const unsigned w = static_cast<unsigned>(std::min<uint64_t>(256, l1 - n * 256));
    HttpResult tile = http_get(base + tile_path(1, n, w));
    for (unsigned i = 0; tile.status == 200 && i < w; ++i) {
      const size_t first = (n * 256 + i) * 256;
      if (tile.body.substr(32 * i, 32) != mth(f.leaves, first, first + 256)) tile.status = -1;
    }
    if (tile.status != 200 || tile.body.size() != 32u * w) {
      f.error = "level-1 tile " + std::to_string(n) + " is wrong";
      return f;
    }
  }
  return f;
}

}  // namespace prov::testing::ref
