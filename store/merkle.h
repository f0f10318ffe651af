// RFC 6962 / RFC 9162 Merkle tree hashing, proof generation and proof verification.
//
// Hashing (RFC 9162 §2.1.1): leaf hash = SHA-256(0x00 || data), interior node hash =
// SHA-256(0x01 || left || right), the root of an empty tree is SHA-256(""). A tree of n leaves
// splits at k, the largest power of two strictly smaller than n.
//
// Proof generation reads hashes through a SubtreeSource: it is asked only for the hashes of
// *perfect* subtrees (2^level leaves starting at a multiple of 2^level), so a store can keep a
// table of those and serve any proof with O(log^2 n) point lookups, without loading the tree.
//
// Thread safety: the free functions are thread-safe; a MemoryTree is not safe to mutate while
// another thread reads it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/sha256.h"
#include "core/status.h"

namespace prov::store {

using Hash = Digest;

Hash leaf_hash(const void* data, size_t len);
inline Hash leaf_hash(const std::string& data) {
  return leaf_hash(data.data(), data.size());
}
Hash node_hash(const Hash& left, const Hash& right);
Hash empty_root();  // SHA-256 of the empty string

// Largest power of two strictly smaller than n (n >= 2).
uint64_t split_point(uint64_t n);

// MTH over a list of leaf hashes (RFC 9162 §2.1.1), computed in memory.
Hash root_from_leaves(const std::vector<Hash>& leaf_hashes);

// Where proof generation reads perfect-subtree hashes from.
class SubtreeSource {
 public:
  virtual ~SubtreeSource() = default;
  // The hash of the perfect subtree of 2^level leaves whose first leaf is index << level
  // (level 0 is a leaf hash). Called only for subtrees inside the tree being proven. Returns
  // the store's error (kCorrupt when the store lacks a node it should have).
  virtual Result<Hash> perfect_subtree(int level, uint64_t index) = 0;
};

// MTH of the leaves [begin, end) of the tree, where begin is a multiple of the largest power of
// two <= end - begin (true of every subtree in the RFC 6962 decomposition). Fails with
// kInvalidArgument on an empty or misaligned range, or with the source's error.
Result<Hash> subtree_root(SubtreeSource& source, uint64_t begin, uint64_t end);

// MTH of the first tree_size leaves (empty_root() for 0).
Result<Hash> tree_root(SubtreeSource& source, uint64_t tree_size);

// PATH(index, D[tree_size]) of RFC 6962 §2.1.1 / the inclusion proof of RFC 9162 §2.1.3.1,
// ordered from the leaf's sibling up to the root's child. kInvalidArgument unless
// index < tree_size.
Result<std::vector<Hash>> inclusion_proof(SubtreeSource& source, uint64_t index,
                                          uint64_t tree_size);

// PROOF(old_size, D[new_size]) of RFC 6962 §2.1.2 / RFC 9162 §2.1.4.1. Empty when
// old_size == 0 or old_size == new_size. kInvalidArgument unless old_size <= new_size.
Result<std::vector<Hash>> consistency_proof(SubtreeSource& source, uint64_t old_size,
                                            uint64_t new_size);

// RFC 9162 §2.1.3.2: true iff `proof` proves that `leaf` is leaf `index` of the tree of
// `tree_size` leaves whose root is `root`.
bool verify_inclusion(const Hash& leaf, uint64_t index, uint64_t tree_size,
                      const std::vector<Hash>& proof, const Hash& root);

// RFC 9162 §2.1.4.2: true iff `proof` proves that the tree (old_size, old_root) is a prefix of
// (new_size, new_root). old_size == new_size needs an empty proof and equal roots; old_size == 0
// needs an empty proof and old_root == empty_root() (the empty tree is a prefix of any tree).
bool verify_consistency(uint64_t old_size, uint64_t new_size, const Hash& old_root,
                        const Hash& new_root, const std::vector<Hash>& proof);

// An in-memory append-only tree keeping every perfect-subtree hash (about 2n hashes): used by
// tests, by verification (which rebuilds the tree from recomputed leaves) and by small tools.
class MemoryTree : public SubtreeSource {
 public:
  void append_leaf_hash(const Hash& h);
  uint64_t size() const { return levels_.empty() ? 0 : levels_[0].size(); }
  Result<Hash> perfect_subtree(int level, uint64_t index) override;
  Result<Hash> root() { return tree_root(*this, size()); }
  // levels()[l][i] is the perfect subtree (l, i); exposed so a store can compare its cache.
  const std::vector<std::vector<Hash>>& levels() const { return levels_; }

 private:
  std::vector<std::vector<Hash>> levels_;
};

}  // namespace prov::store
