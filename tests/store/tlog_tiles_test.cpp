// C2SP tlog-tiles resources of a ledger, checked against the spec's own examples and against an
// independent RFC 6962 implementation (tests/support/tlog_reference.h).
#include "store/tlog_tiles.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include "store/checkpoint.h"
#include "store/ledger_text.h"
#include "tests/store/tlog_fixtures.h"
#include "tests/support/test_support.h"
#include "tests/support/tlog_reference.h"

namespace prov::store {
namespace {

using namespace tlogtest;
namespace ref = prov::testing::ref;

TEST(TlogTiles, PathsAsTheSpecWritesThem) {
  // "index 1234067 will be encoded as x001/x234/067"
  EXPECT_EQ(tile_index_path(1234067), "x001/x234/067");
  EXPECT_EQ(tile_index_path(0), "000");
  EXPECT_EQ(tile_index_path(999), "999");
  EXPECT_EQ(tile_index_path(1000), "x001/000");
  EXPECT_EQ(tile_path({false, 0, 1234067, 256}), "tile/0/x001/x234/067");
  EXPECT_EQ(tile_path({false, 2, 5, 17}), "tile/2/005.p/17");
  EXPECT_EQ(tile_path({true, 0, 1, 112}), "tile/entries/001.p/112");
  for (uint64_t index : {uint64_t{0}, uint64_t{7}, uint64_t{1000}, uint64_t{1234067},
                         uint64_t{18446744073709551615u}}) {
    for (unsigned w : {1u, 255u, 256u}) {
      for (bool entries : {false, true}) {
        TileRef t{entries, entries ? 0 : 3, index, w};
        auto back = parse_tile_path("/" + tile_path(t));
        ASSERT_TRUE(back.is_ok()) << tile_path(t);
        EXPECT_EQ(back->entries, entries);
        EXPECT_EQ(back->level, t.level);
        EXPECT_EQ(back->index, index);
        EXPECT_EQ(back->width, w);
      }
    }
  }
  // Only the canonical spelling is a resource.
  for (const char* bad :
       {"/tile/0/x000/001", "/tile/00/000", "/tile/64/000", "/tile/0/001.p/0", "/tile/0/001.p/256",
        "/tile/0/001.p/007", "/tile/0/1", "/tile/0/x001", "/tile/0/001/", "/tile/0/001.p",
        "/tile/entries", "/tile/", "/tile/a/000", "/tile/0/00a", "/tile/0/x001/x234/067/",
        "/tile/0/x018/x446/x744/x073/x709/x551/616", "/tile/entries/001.p/", "/checkpoints"}) {
    EXPECT_EQ(parse_tile_path(bad).status().code(), StatusCode::kNotFound) << bad;
  }
}

TEST(TlogTiles, TheSpecsTreeOf70000) {
  // "a tree of size 70,000 will be represented by 273 full level 0 tiles, one partial level 0
  // tile of width 112, one full level 1 tile, one partial level 1 tile of width 17, and one
  // partial level 2 tile of width 1."
  const auto tiles = tiles_for_tree(70000);
  size_t full0 = 0;
  std::vector<std::string> rest;
  for (const auto& t : tiles) {
    if (t.level == 0 && t.width == 256) {
      ++full0;
    } else {
      rest.push_back(tile_path(t));
    }
  }
  EXPECT_EQ(full0, 273u);
  EXPECT_EQ(rest, (std::vector<std::string>{"tile/0/273.p/112", "tile/1/000", "tile/1/001.p/17",
                                            "tile/2/000.p/1"}));
  // "a tree of size 256 will be represented by a full level 0 tile and a partial level 1 tile of
  // width 1."
  std::vector<std::string> of256;
  for (const auto& t : tiles_for_tree(256)) of256.push_back(tile_path(t));
  EXPECT_EQ(of256, (std::vector<std::string>{"tile/0/000", "tile/1/000.p/1"}));
  EXPECT_TRUE(tiles_for_tree(0).empty());
}

// Every tile of a 600-entry ledger, as served, against a tree rebuilt independently from the
// entries in the bundles.
TEST(TlogTiles, ServedTilesMatchAnIndependentTree) {
  testing::TempDir dir;
  PrivateKey key = ed25519();
  auto l = Ledger::init(dir.file("l.db"));
  ASSERT_TRUE(l.is_ok());
  Ledger& ledger = **l;
  // Nothing is published before the first checkpoint.
  EXPECT_EQ(answer_tlog_request(ledger, "GET", "/checkpoint").status, 404);
  append_n(ledger, key, 600);
  auto note = ledger.checkpoint(key);
  ASSERT_TRUE(note.is_ok()) << note.status().to_string();
  append_n(ledger, key, 300, "late");  // after the checkpoint: not published yet

  TlogAnswer cp = answer_tlog_request(ledger, "GET", "/checkpoint");
  EXPECT_EQ(cp.status, 200);
  EXPECT_EQ(cp.body, *note);
  EXPECT_EQ(cp.content_type, "text/plain; charset=utf-8");
  EXPECT_NE(cp.cache_control.find("no-cache"), std::string::npos);
  ref::Checkpoint parsed;
  ASSERT_TRUE(ref::parse_checkpoint(cp.body, &parsed));
  EXPECT_EQ(parsed.size, 600u);

  // Entries from the bundles; leaves recomputed from them.
  std::vector<ref::Bytes> leaves;
  for (uint64_t n = 0; n < 3; ++n) {
    const unsigned w = n < 2 ? 256 : 88;
    TlogAnswer b = answer_tlog_request(ledger, "GET", ref::tile_path(-1, n, w));
    ASSERT_EQ(b.status, 200) << ref::tile_path(-1, n, w) << ": " << b.body;
    EXPECT_EQ(b.content_type, "application/octet-stream");
    EXPECT_NE(b.cache_control.find("immutable"), std::string::npos);
    auto entries = split_entry_bundle(b.body);
    ASSERT_TRUE(entries.is_ok());
    ASSERT_EQ(entries->size(), w);
    for (unsigned i = 0; i < w; ++i) {
      auto e = ledger.get(n * 256 + i);
      ASSERT_TRUE(e.is_ok());
      EXPECT_EQ((*entries)[i], entry_leaf_data(e->created_at, e->envelope));
      leaves.push_back(ref::leaf_hash((*entries)[i]));
    }
  }
  ASSERT_EQ(ref::mth(leaves, 0, leaves.size()), parsed.root);
  for (const auto& t : tiles_for_tree(600)) {
    TlogAnswer a = answer_tlog_request(ledger, "GET", "/" + tile_path(t));
    ASSERT_EQ(a.status, 200) << tile_path(t);
    ASSERT_EQ(a.body.size(), 32u * t.width) << tile_path(t);
    const size_t per = t.level == 0 ? 1 : 256;
    for (unsigned i = 0; i < t.width; ++i) {
      const size_t first = (t.index * 256 + i) * per;
      EXPECT_EQ(a.body.substr(32 * i, 32), ref::mth(leaves, first, first + per))
          << tile_path(t) << " hash " << i;
    }
  }
  // Partial tiles of a smaller width are prefixes of the same, immutable hashes.
  TlogAnswer p5 = answer_tlog_request(ledger, "GET", "/tile/0/002.p/5");
  ASSERT_EQ(p5.status, 200);
  EXPECT_EQ(p5.body, answer_tlog_request(ledger, "GET", "/tile/0/002.p/88").body.substr(0, 160));
  // Not covered by the published checkpoint (600): 404, although the ledger has 900 entries.
  for (const char* path :
       {"/tile/0/002", "/tile/0/002.p/89", "/tile/entries/002", "/tile/entries/003.p/1",
        "/tile/1/000", "/tile/1/000.p/3", "/tile/2/000.p/1", "/tile/0/x001/000", "/nothing", "/"}) {
    EXPECT_EQ(answer_tlog_request(ledger, "GET", path).status, 404) << path;
  }
  // Read-only.
  for (const char* method : {"POST", "PUT", "DELETE", "PATCH"}) {
    EXPECT_EQ(answer_tlog_request(ledger, method, "/checkpoint").status, 405) << method;
  }
  EXPECT_EQ(answer_tlog_request(ledger, "HEAD", "/checkpoint").status, 200);
  // A new checkpoint publishes the rest: the full tile 2 now exists.
  ASSERT_TRUE(ledger.checkpoint(key).is_ok());
  EXPECT_EQ(answer_tlog_request(ledger, "GET", "/tile/0/002").status, 200);
  EXPECT_EQ(answer_tlog_request(ledger, "GET", "/tile/1/000.p/3").status, 200);
}

TEST(TlogTiles, AnEntryTooLongForABundleIsNamed) {
  testing::TempDir dir;
  PrivateKey key = ed25519();
  auto l = Ledger::init(dir.file("l.db"));
  ASSERT_TRUE(l.is_ok());
  ASSERT_TRUE((*l)->append(envelope(key, "small")).is_ok());
  ASSERT_TRUE((*l)->append(envelope(key, "big", 70000)).is_ok());
  ASSERT_TRUE((*l)->checkpoint(key).is_ok());
  TlogAnswer a = answer_tlog_request(**l, "GET", "/tile/entries/000.p/2");
  EXPECT_EQ(a.status, 500);
  EXPECT_NE(a.body.find("entry 1 is"), std::string::npos) << a.body;
  EXPECT_EQ(answer_tlog_request(**l, "GET", "/tile/entries/000.p/1").status, 200);
  EXPECT_EQ(answer_tlog_request(**l, "GET", "/tile/0/000.p/2").status, 200);
}

// Every ledger has an origin of its own, kept across opens, assigned to older ledgers on first
// open, and used by checkpoints unless one is given.
TEST(LedgerOrigin, UniquePerLedgerStableAndMigrated) {
  testing::TempDir a, b;
  PrivateKey key = ed25519();
  std::string oa, ob;
  {
    auto la = Ledger::init(a.file("ledger.db"));
    auto lb = Ledger::init(b.file("ledger.db"));
    ASSERT_TRUE(la.is_ok() && lb.is_ok());
    oa = *(*la)->origin();
    ob = *(*lb)->origin();
  }
  EXPECT_NE(oa, ob);  // same file name, different ledgers
  EXPECT_EQ(oa.rfind("prov-ledger/ledger.db/", 0), 0u) << oa;
  EXPECT_EQ(oa.size(), std::string("prov-ledger/ledger.db/").size() + 32);
  EXPECT_TRUE(valid_key_name(oa));
  auto la = Ledger::open(a.file("ledger.db"));
  ASSERT_TRUE(la.is_ok());
  EXPECT_EQ(*(*la)->origin(), oa);
  append_n(**la, key, 2);
  auto cp = parse_checkpoint(*(*la)->checkpoint(key));
  ASSERT_TRUE(cp.is_ok());
  EXPECT_EQ(cp->origin, oa);
  auto custom = parse_checkpoint(*(*la)->checkpoint(key, "example.com/log"));
  ASSERT_TRUE(custom.is_ok());
  EXPECT_EQ(custom->origin, "example.com/log");
  la->reset();

  // A ledger written by a prov without per-ledger origins (schema 2, no 'origin' row): it gets
  // one on its next open, and the schema is still prov's.
  const std::string old = b.file("old.db");
  {
    auto l = Ledger::init(old);
    ASSERT_TRUE(l.is_ok());
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(old.c_str(), &db), SQLITE_OK);
  for (const char* sql :
       {"DROP TRIGGER meta_no_delete", "DELETE FROM ledger_meta WHERE name = 'origin'",
        "CREATE TRIGGER meta_no_delete BEFORE DELETE ON ledger_meta\n"
        "  BEGIN SELECT RAISE(ABORT, 'prov ledger metadata is write-once'); END"}) {
    ASSERT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), SQLITE_OK) << sql;
  }
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "SELECT count(*) FROM ledger_meta WHERE name = 'origin'", -1, &st,
                     nullptr);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(st, 0), 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  auto lo = Ledger::open(old);
  ASSERT_TRUE(lo.is_ok()) << lo.status().to_string();
  auto origin = (*lo)->origin();
  ASSERT_TRUE(origin.is_ok()) << origin.status().to_string();
  EXPECT_EQ(origin->rfind("prov-ledger/old.db/", 0), 0u);
  auto v = (*lo)->verify();
  EXPECT_TRUE(v.is_ok()) << v.status().to_string();
  lo->reset();
  EXPECT_EQ(*(*Ledger::open(old))->origin(), *origin);  // kept
  EXPECT_EQ(default_origin("/x/my ledger+1.db", "ab"), "prov-ledger/my_ledger_1.db/ab");
}

}  // namespace
}  // namespace prov::store
