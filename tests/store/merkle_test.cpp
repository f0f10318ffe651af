#include "store/merkle.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace prov::store {
namespace {

Hash h(const std::string& hex) {
  auto bytes = from_hex(hex);
  Hash out{};
  EXPECT_TRUE(bytes.is_ok());
  EXPECT_EQ(bytes->size(), 32u);
  std::copy(bytes->begin(), bytes->end(), out.begin());
  return out;
}

// The Certificate Transparency reference leaves (RFC 6962 test data).
std::vector<std::string> ct_leaves() {
  return {std::string(),
          std::string("\x00", 1),
          "\x10",
          "\x20\x21",
          "\x30\x31",
          "\x40\x41\x42\x43",
          "\x50\x51\x52\x53\x54\x55\x56\x57",
          "\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f"};
}

// Published roots for tree sizes 1..8.
const char* kCtRoots[] = {
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

MemoryTree ct_tree() {
  MemoryTree t;
  for (const auto& l : ct_leaves()) t.append_leaf_hash(leaf_hash(l));
  return t;
}

TEST(Merkle, EmptyAndLeafHashes) {
  EXPECT_EQ(to_hex(empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(to_hex(leaf_hash("")), kCtRoots[0]);
  MemoryTree t;
  auto r = t.root();
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(*r, empty_root());
}

TEST(Merkle, CtReferenceRoots) {
  auto leaves = ct_leaves();
  std::vector<Hash> hashes;
  MemoryTree t;
  for (size_t n = 1; n <= leaves.size(); ++n) {
    hashes.push_back(leaf_hash(leaves[n - 1]));
    t.append_leaf_hash(hashes.back());
    EXPECT_EQ(to_hex(root_from_leaves(hashes)), kCtRoots[n - 1]) << "size " << n;
    auto r = tree_root(t, n);
    ASSERT_TRUE(r.is_ok());
    EXPECT_EQ(to_hex(*r), kCtRoots[n - 1]) << "size " << n;
  }
}

TEST(Merkle, CtReferenceInclusionProofs) {
  MemoryTree t = ct_tree();
  struct V {
    uint64_t index, size;
    std::vector<const char*> path;
  };
  std::vector<V> vectors = {
      {0,
       8,
       {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
      {5,
       8,
       {"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
      {0, 1, {}},
  };
  auto leaves = ct_leaves();
  for (const auto& v : vectors) {
    auto p = inclusion_proof(t, v.index, v.size);
    ASSERT_TRUE(p.is_ok()) << p.status().to_string();
    ASSERT_EQ(p->size(), v.path.size());
    for (size_t i = 0; i < v.path.size(); ++i) EXPECT_EQ(to_hex((*p)[i]), v.path[i]);
    EXPECT_TRUE(
        verify_inclusion(leaf_hash(leaves[v.index]), v.index, v.size, *p, h(kCtRoots[v.size - 1])));
  }
}

TEST(Merkle, CtReferenceConsistencyProofs) {
  MemoryTree t = ct_tree();
  struct V {
    uint64_t m, n;
    std::vector<const char*> proof;
  };
  std::vector<V> vectors = {
      {1, 1, {}},
      {2,
       8,
       {"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
      {6,
       8,
       {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
  };
  for (const auto& v : vectors) {
    auto p = consistency_proof(t, v.m, v.n);
    ASSERT_TRUE(p.is_ok());
    ASSERT_EQ(p->size(), v.proof.size()) << v.m << "->" << v.n;
    for (size_t i = 0; i < v.proof.size(); ++i) EXPECT_EQ(to_hex((*p)[i]), v.proof[i]);
    EXPECT_TRUE(verify_consistency(v.m, v.n, h(kCtRoots[v.m - 1]), h(kCtRoots[v.n - 1]), *p));
  }
}

TEST(Merkle, ArgumentErrors) {
  MemoryTree t = ct_tree();
  EXPECT_EQ(inclusion_proof(t, 8, 8).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(consistency_proof(t, 5, 3).status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(inclusion_proof(t, 0, 9).is_ok());  // the source lacks the 9th leaf
  Hash r8 = h(kCtRoots[7]);
  auto p = inclusion_proof(t, 5, 8);
  ASSERT_TRUE(p.is_ok());
  EXPECT_FALSE(verify_inclusion(leaf_hash(ct_leaves()[5]), 8, 8, *p, r8));
  EXPECT_FALSE(verify_inclusion(leaf_hash(ct_leaves()[5]), 4, 8, *p, r8));
  EXPECT_FALSE(verify_consistency(8, 6, r8, h(kCtRoots[5]), {}));
  EXPECT_FALSE(verify_consistency(6, 8, h(kCtRoots[5]), r8, {}));
  EXPECT_TRUE(verify_consistency(0, 8, empty_root(), r8, {}));
  EXPECT_FALSE(verify_consistency(0, 8, r8, r8, {}));
  EXPECT_FALSE(verify_consistency(4, 4, h(kCtRoots[3]), r8, {}));
}

// Every (index, size) and (m, n) up to 64. Every single-bit flip of every proof element is
// rejected for trees up to 8 leaves; above that, four flipped bits per element, at varying
// positions, keeps the test fast.
TEST(Merkle, ExhaustiveRoundTripsAndBitFlips) {
  const uint64_t kMax = 64;
  MemoryTree t;
  std::vector<Hash> roots{empty_root()};
  for (uint64_t i = 0; i < kMax; ++i) {
    t.append_leaf_hash(leaf_hash("leaf " + std::to_string(i)));
    roots.push_back(*t.root());
  }
  const auto& leaves = t.levels()[0];
  size_t checked = 0, flips = 0;
  for (uint64_t n = 1; n <= kMax; ++n) {
    for (uint64_t i = 0; i < n; ++i) {
      auto p = inclusion_proof(t, i, n);
      ASSERT_TRUE(p.is_ok());
      ASSERT_TRUE(verify_inclusion(leaves[i], i, n, *p, roots[n])) << i << "/" << n;
      EXPECT_FALSE(verify_inclusion(leaves[(i + 1) % n], i, n, *p, roots[n]) && n > 1);
      if (!p->empty()) {
        auto shorter = *p;
        shorter.pop_back();
        EXPECT_FALSE(verify_inclusion(leaves[i], i, n, shorter, roots[n]));
      }
      auto longer = *p;
      longer.push_back(leaves[0]);
      EXPECT_FALSE(verify_inclusion(leaves[i], i, n, longer, roots[n]));
      for (size_t e = 0; e < p->size(); ++e) {
        for (int bit = 0; bit < 256; bit += (n <= 8 ? 1 : 64)) {
          int b = n <= 8 ? bit : bit + static_cast<int>((e + i + bit / 64) % 64);
          auto bad = *p;
          bad[e][b / 8] ^= static_cast<uint8_t>(1u << (b % 8));
          ASSERT_FALSE(verify_inclusion(leaves[i], i, n, bad, roots[n]));
          ++flips;
        }
      }
      ++checked;
    }
    for (uint64_t m = 0; m <= n; ++m) {
      auto p = consistency_proof(t, m, n);
      ASSERT_TRUE(p.is_ok());
      ASSERT_TRUE(verify_consistency(m, n, roots[m], roots[n], *p)) << m << "->" << n;
      if (m > 0 && m < n) {
        EXPECT_FALSE(verify_consistency(m, n, roots[m - 1], roots[n], *p));
        EXPECT_FALSE(verify_consistency(m, n, roots[m], roots[n - 1], *p));
        auto shorter = *p;
        shorter.pop_back();
        EXPECT_FALSE(verify_consistency(m, n, roots[m], roots[n], shorter));
        auto longer = *p;
        longer.push_back(leaves[0]);
        EXPECT_FALSE(verify_consistency(m, n, roots[m], roots[n], longer));
      }
      for (size_t e = 0; e < p->size(); ++e) {
        for (int bit = 0; bit < 256; bit += (n <= 8 ? 1 : 64)) {
          int b = n <= 8 ? bit : bit + static_cast<int>((e + m + bit / 64) % 64);
          auto bad = *p;
          bad[e][b / 8] ^= static_cast<uint8_t>(1u << (b % 8));
          ASSERT_FALSE(verify_consistency(m, n, roots[m], roots[n], bad)) << m << "->" << n;
          ++flips;
        }
      }
      ++checked;
    }
  }
  EXPECT_GT(checked, 4000u);
  EXPECT_GT(flips, 30000u);
}

}  // namespace
}  // namespace prov::store
