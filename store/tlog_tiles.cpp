#include "store/tlog_tiles.h"

#include <cstdio>

#include "store/checkpoint.h"

namespace prov::store {

namespace {

// 256^level, or 0 when it overflows 64 bits (no tree is that large).
uint64_t leaves_per_hash(int level) {
  return level >= 8 ? 0 : uint64_t{1} << (8 * level);
}

Result<uint64_t> parse_group(const std::string& s) {
  if (s.size() != 3) return not_found("bad tile index element");
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return not_found("bad tile index element");
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

TlogAnswer text_answer(int status, const std::string& message) {
  return TlogAnswer{status, "text/plain; charset=utf-8", "no-store", message + "\n"};
}

}  // namespace

std::string tile_index_path(uint64_t index) {
  std::string out;
  char buf[8];
  std::snprintf(buf, sizeof buf, "%03u", static_cast<unsigned>(index % 1000));
  out = buf;
  for (index /= 1000; index > 0; index /= 1000) {
    std::snprintf(buf, sizeof buf, "x%03u/", static_cast<unsigned>(index % 1000));
    out = buf + out;
  }
  return out;
}

std::string tile_path(const TileRef& tile) {
  std::string out = tile.entries ? "tile/entries/" : "tile/" + std::to_string(tile.level) + "/";
  out += tile_index_path(tile.index);
  if (tile.width < kTileWidth) out += ".p/" + std::to_string(tile.width);
  return out;
}

Result<TileRef> parse_tile_path(const std::string& path) {
  const std::string prefix = "/tile/";
  if (path.compare(0, prefix.size(), prefix) != 0 || path.size() > 200) {
    return not_found("not a tile path");
  }
  std::vector<std::string> parts;
  size_t pos = prefix.size();
  for (;;) {
    size_t slash = path.find('/', pos);
    parts.push_back(path.substr(pos, slash == std::string::npos ? std::string::npos : slash - pos));
    if (slash == std::string::npos) break;
    pos = slash + 1;
  }
  TileRef t;
  // The level (or "entries"), the index groups, and maybe ".p" suffix then the width.
  if (parts.size() < 2) return not_found("not a tile path");
  if (parts[0] == "entries") {
    t.entries = true;
  } else {
    const std::string& l = parts[0];
    if (l.empty() || l.size() > 2 || (l.size() > 1 && l[0] == '0') || l[0] < '0' || l[0] > '9' ||
        (l.size() == 2 && (l[1] < '0' || l[1] > '9'))) {
      return not_found("bad tile level");
    }
    t.level = std::stoi(l);
    if (t.level > 63) return not_found("tile level above 63");
  }
  size_t end = parts.size();
  std::string width;
  if (end >= 3 && parts[end - 2].size() > 2 &&
      parts[end - 2].compare(parts[end - 2].size() - 2, 2, ".p") == 0) {
    width = parts[end - 1];
    parts[end - 2].resize(parts[end - 2].size() - 2);
    --end;
  }
  if (end - 1 > 7) return not_found("tile index too long");
  uint64_t index = 0;
  for (size_t i = 1; i < end; ++i) {
    std::string g = parts[i];
    const bool last = i + 1 == end;
    if (!last) {
      if (g.empty() || g[0] != 'x') return not_found("bad tile index element");
      g = g.substr(1);
    }
    PROV_ASSIGN_OR_RETURN(uint64_t v, parse_group(g));
    if (index > (UINT64_MAX - v) / 1000) return not_found("tile index overflows");
    index = index * 1000 + v;
  }
  t.index = index;
  if (!width.empty()) {
    if (width.size() > 3 || width[0] == '0') return not_found("bad partial tile width");
    unsigned w = 0;
    for (char c : width) {
      if (c < '0' || c > '9') return not_found("bad partial tile width");
      w = w * 10 + static_cast<unsigned>(c - '0');
    }
    if (w < 1 || w > 255) return not_found("partial tile width outside 1..255");
    t.width = w;
  }
  // Only the canonical spelling (no "x000/" groups in front, no stray elements).
  if ("/" + tile_path(t) != path) return not_found("not the canonical tile path");
  return t;
}

std::vector<TileRef> tiles_for_tree(uint64_t tree_size) {
  std::vector<TileRef> out;
  for (int level = 0; level < 8; ++level) {
    const uint64_t per = leaves_per_hash(level);
    const uint64_t hashes = tree_size / per;  // complete subtrees at this tile level
    if (hashes == 0) break;
    for (uint64_t n = 0; n < hashes / kTileWidth; ++n) out.push_back({false, level, n, kTileWidth});
    if (hashes % kTileWidth != 0) {
      out.push_back(
          {false, level, hashes / kTileWidth, static_cast<unsigned>(hashes % kTileWidth)});
    }
  }
  return out;
}

Result<std::string> read_tile(Ledger& ledger, const TileRef& tile, uint64_t tree_size) {
  const uint64_t per = leaves_per_hash(tile.entries ? 0 : tile.level);
  if (per == 0 || tile.width < 1 || tile.width > kTileWidth ||
      tile.index > UINT64_MAX / kTileWidth / per) {
    return not_found("no such tile");
  }
  const uint64_t first = tile.index * kTileWidth;  // the first hash (or entry) of the tile
  const uint64_t hashes = tree_size / per;
  if (first + tile.width > hashes) return not_found("tile not covered by the checkpoint");
  if (tile.entries) {
    // One entry at a time: memory stays bounded by the bundle (at most 256 x 64 KiB) and one
    // envelope, whatever the envelopes' sizes.
    std::string out;
    for (uint64_t i = first; i < first + tile.width; ++i) {
      PROV_ASSIGN_OR_RETURN(LedgerEntry e, ledger.get(i));
      const std::string data = entry_leaf_data(e.created_at, e.envelope);
      if (data.size() > kMaxBundleEntryBytes) {
        return invalid_argument("entry " + std::to_string(e.index) + " is " +
                                std::to_string(data.size()) +
                                " bytes, more than an entry bundle holds (65,535)");
      }
      out.push_back(static_cast<char>(data.size() >> 8));
      out.push_back(static_cast<char>(data.size() & 0xff));
      out += data;
    }
    return out;
  }
  PROV_ASSIGN_OR_RETURN(std::vector<Hash> hashes_read,
                        ledger.subtree_hashes(8 * tile.level, first, tile.width));
  std::string out;
  out.reserve(hashes_read.size() * 32);
  for (const auto& h : hashes_read) out.append(reinterpret_cast<const char*>(h.data()), 32);
  return out;
}

Result<std::vector<std::string>> split_entry_bundle(const std::string& bundle) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < bundle.size()) {
    if (bundle.size() - pos < 2) return corrupt("entry bundle: truncated length");
    const size_t n = (static_cast<unsigned char>(bundle[pos]) << 8) |
                     static_cast<unsigned char>(bundle[pos + 1]);
    pos += 2;
    if (bundle.size() - pos < n) return corrupt("entry bundle: truncated entry");
    out.push_back(bundle.substr(pos, n));
    pos += n;
  }
  return out;
}

TlogAnswer answer_tlog_request(Ledger& ledger, const std::string& method, const std::string& path) {
  if (method != "GET" && method != "HEAD") {
    return text_answer(405, "read-only log: GET and HEAD only");
  }
  auto note = ledger.latest_checkpoint();
  if (!note.is_ok()) {
    if (note.status().code() == StatusCode::kNotFound) {
      return text_answer(404, "the ledger has no checkpoint yet");
    }
    return text_answer(500, note.status().to_string());
  }
  if (path == "/checkpoint") {
    return TlogAnswer{200, "text/plain; charset=utf-8", "no-cache, max-age=0", *note};
  }
  auto tile = parse_tile_path(path);
  if (!tile.is_ok()) return text_answer(404, "no such resource");
  auto cp = parse_checkpoint(*note);
  if (!cp.is_ok()) return text_answer(500, cp.status().to_string());
  auto body = read_tile(ledger, *tile, cp->tree_size);
  if (!body.is_ok()) {
    const StatusCode c = body.status().code();
    return text_answer(c == StatusCode::kNotFound ? 404 : 500, body.status().message());
  }
  return TlogAnswer{200, "application/octet-stream", "public, max-age=31536000, immutable",
                    std::move(*body)};
}

}  // namespace prov::store
