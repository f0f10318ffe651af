// The ledger as a C2SP tlog-tiles log: the resources a monitor or witness fetches, and the
// read-only answer to a GET of each of them (the HTTP server is store/tlog_server.h).
//
//   /checkpoint                   the published checkpoint (Ledger::latest_checkpoint) with its
//                                 cosignatures; text/plain; charset=utf-8; not cached
//   /tile/<L>/<N>[.p/<W>]         level-L hash tile N: the RFC 6962 MTH of each consecutive run
//                                 of 256^L leaves, 256 of them (8192 bytes) when full, W (1..255)
//                                 in a partial tile; application/octet-stream; immutable
//   /tile/entries/<N>[.p/<W>]     entry bundle N: the leaf data of entries 256N .. 256N+255 (or
//                                 the first W), each as a big-endian uint16 length and the bytes
//
// <N> is written in 3-digit groups, all but the last prefixed with 'x' (1234067 is
// x001/x234/067). Leaf data is prov's "prov-ledger-entry-v1\n" created_at "\n" envelope, whose
// RFC 6962 leaf hash SHA-256(0x00 || data) is the level-0 tile's hash, so a client recomputes
// every leaf from the bundles. Only what the published checkpoint covers is served: a tile whose
// hashes reach past its tree size is 404, as are empty and unknown resources. An entry longer
// than 65,535 bytes cannot be put in a bundle (the format's uint16 length): its bundle is
// answered 500 naming the entry.
//
// Thread safety: the functions are stateless; answer_tlog_request uses the given Ledger, which
// is used by one thread at a time (store/ledger.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "store/ledger.h"

namespace prov::store {

inline constexpr unsigned kTileWidth = 256;
inline constexpr size_t kMaxBundleEntryBytes = 65535;

// A tile or entry bundle resource. width 256 is a full tile, 1..255 a partial one.
struct TileRef {
  bool entries = false;  // an entry bundle (level is then 0)
  int level = 0;         // 0..63
  uint64_t index = 0;
  unsigned width = kTileWidth;
};

// "x001/x234/067" for 1234067; "000" for 0.
std::string tile_index_path(uint64_t index);
// "tile/<L>/<N>[.p/<W>]" or "tile/entries/<N>[.p/<W>]" (no leading slash).
std::string tile_path(const TileRef& tile);
// Parses a request path ("/tile/..."), accepting only the canonical encoding above.
// kNotFound for anything else.
Result<TileRef> parse_tile_path(const std::string& path);

// The tiles that make up a tree of `tree_size` leaves (the tlog-tiles example: 70,000 is 273
// full level-0 tiles, one level-0 partial of width 112, one full level-1 tile, a level-1 partial
// of 17 and a level-2 partial of 1), level by level, in index order; entry bundles excluded.
std::vector<TileRef> tiles_for_tree(uint64_t tree_size);

// A tile's bytes (hash tiles) or an entry bundle, read from the ledger; kNotFound when the tile
// is not covered by a tree of `tree_size` leaves; kInvalidArgument for a bundle entry over 65,535
// bytes.
Result<std::string> read_tile(Ledger& ledger, const TileRef& tile, uint64_t tree_size);

// Splits an entry bundle into its entries (kCorrupt on a truncated bundle).
Result<std::vector<std::string>> split_entry_bundle(const std::string& bundle);

struct TlogAnswer {
  int status = 200;
  std::string content_type;
  std::string cache_control;
  std::string body;
};
// The answer to `method` `path` (a GET or HEAD: HEAD gets GET's headers, and the caller sends no
// body). Only the resources above exist; any other method is 405.
TlogAnswer answer_tlog_request(Ledger& ledger, const std::string& method, const std::string& path);

}  // namespace prov::store
