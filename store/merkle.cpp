#include "store/merkle.h"

#include <cstring>

namespace prov::store {

namespace {

bool is_power_of_two(uint64_t n) {
  return n != 0 && (n & (n - 1)) == 0;
}

int log2_exact(uint64_t n) {
  int l = 0;
  while ((uint64_t{1} << l) < n) ++l;
  return l;
}

Status inclusion_path(SubtreeSource& source, uint64_t m, uint64_t begin, uint64_t end,
                      std::vector<Hash>* out) {
  uint64_t n = end - begin;
  if (n <= 1) return Status::ok();
  uint64_t k = split_point(n);
  if (m < k) {
    PROV_RETURN_IF_ERROR(inclusion_path(source, m, begin, begin + k, out));
    PROV_ASSIGN_OR_RETURN(Hash h, subtree_root(source, begin + k, end));
    out->push_back(h);
  } else {
    PROV_RETURN_IF_ERROR(inclusion_path(source, m - k, begin + k, end, out));
    PROV_ASSIGN_OR_RETURN(Hash h, subtree_root(source, begin, begin + k));
    out->push_back(h);
  }
  return Status::ok();
}

Status sub_proof(SubtreeSource& source, uint64_t m, uint64_t begin, uint64_t end, bool whole,
                 std::vector<Hash>* out) {
  uint64_t n = end - begin;
  if (m == n) {
    if (!whole) {
      PROV_ASSIGN_OR_RETURN(Hash h, subtree_root(source, begin, end));
      out->push_back(h);
    }
    return Status::ok();
  }
  uint64_t k = split_point(n);
  if (m <= k) {
    PROV_RETURN_IF_ERROR(sub_proof(source, m, begin, begin + k, whole, out));
    PROV_ASSIGN_OR_RETURN(Hash h, subtree_root(source, begin + k, end));
    out->push_back(h);
  } else {
    PROV_RETURN_IF_ERROR(sub_proof(source, m - k, begin + k, end, false, out));
    PROV_ASSIGN_OR_RETURN(Hash h, subtree_root(source, begin, begin + k));
    out->push_back(h);
  }
  return Status::ok();
}

}  // namespace

Hash leaf_hash(const void* data, size_t len) {
  Sha256 h;
  const uint8_t prefix = 0x00;
  h.update(&prefix, 1);
  h.update(data, len);
  return h.finish();
}

Hash node_hash(const Hash& left, const Hash& right) {
  uint8_t buf[65];
  buf[0] = 0x01;
  std::memcpy(buf + 1, left.data(), 32);
  std::memcpy(buf + 33, right.data(), 32);
  return sha256(buf, sizeof(buf));
}

Hash empty_root() {
  return sha256("", 0);
}

uint64_t split_point(uint64_t n) {
  uint64_t k = 1;
  while ((k << 1) < n) k <<= 1;
  return k;
}

Hash root_from_leaves(const std::vector<Hash>& leaf_hashes) {
  MemoryTree t;
  for (const Hash& h : leaf_hashes) t.append_leaf_hash(h);
  auto r = t.root();
  return r.is_ok() ? *r : Hash{};  // a MemoryTree cannot fail on its own sizes
}

Result<Hash> subtree_root(SubtreeSource& source, uint64_t begin, uint64_t end) {
  if (end <= begin) return invalid_argument("merkle: empty subtree range");
  uint64_t n = end - begin;
  if (is_power_of_two(n)) {
    if (begin % n != 0) return invalid_argument("merkle: misaligned subtree range");
    int level = log2_exact(n);
    return source.perfect_subtree(level, begin >> level);
  }
  uint64_t k = split_point(n);
  if (begin % k != 0) return invalid_argument("merkle: misaligned subtree range");
  PROV_ASSIGN_OR_RETURN(Hash left, subtree_root(source, begin, begin + k));
  PROV_ASSIGN_OR_RETURN(Hash right, subtree_root(source, begin + k, end));
  return node_hash(left, right);
}

Result<Hash> tree_root(SubtreeSource& source, uint64_t tree_size) {
  if (tree_size == 0) return empty_root();
  return subtree_root(source, 0, tree_size);
}

Result<std::vector<Hash>> inclusion_proof(SubtreeSource& source, uint64_t index,
                                          uint64_t tree_size) {
  if (index >= tree_size) {
    return invalid_argument("merkle: leaf index " + std::to_string(index) +
                            " is not in a tree of " + std::to_string(tree_size) + " leaves");
  }
  std::vector<Hash> out;
  PROV_RETURN_IF_ERROR(inclusion_path(source, index, 0, tree_size, &out));
  return out;
}

Result<std::vector<Hash>> consistency_proof(SubtreeSource& source, uint64_t old_size,
                                            uint64_t new_size) {
  if (old_size > new_size) {
    return invalid_argument("merkle: old tree size " + std::to_string(old_size) +
                            " is larger than the new tree size " + std::to_string(new_size));
  }
  std::vector<Hash> out;
  if (old_size == 0 || old_size == new_size) return out;
  PROV_RETURN_IF_ERROR(sub_proof(source, old_size, 0, new_size, true, &out));
  return out;
}

bool verify_inclusion(const Hash& leaf, uint64_t index, uint64_t tree_size,
                      const std::vector<Hash>& proof, const Hash& root) {
  if (index >= tree_size) return false;
  uint64_t fn = index;
  uint64_t sn = tree_size - 1;
  Hash r = leaf;
  for (const Hash& p : proof) {
    if (sn == 0) return false;
    if ((fn & 1) || fn == sn) {
      r = node_hash(p, r);
      if (!(fn & 1)) {
        while (!(fn & 1) && fn != 0) {
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

bool verify_consistency(uint64_t old_size, uint64_t new_size, const Hash& old_root,
                        const Hash& new_root, const std::vector<Hash>& proof) {
  if (old_size > new_size) return false;
  if (old_size == new_size) return proof.empty() && old_root == new_root;
  if (old_size == 0) return proof.empty() && old_root == empty_root();
  if (proof.empty()) return false;
  std::vector<Hash> c;
  c.reserve(proof.size() + 1);
  if (is_power_of_two(old_size)) c.push_back(old_root);
  c.insert(c.end(), proof.begin(), proof.end());
  uint64_t fn = old_size - 1;
  uint64_t sn = new_size - 1;
  while (fn & 1) {
    fn >>= 1;
    sn >>= 1;
  }
  Hash fr = c[0];
  Hash sr = c[0];
  for (size_t i = 1; i < c.size(); ++i) {
    if (sn == 0) return false;
    if ((fn & 1) || fn == sn) {
      fr = node_hash(c[i], fr);
      sr = node_hash(c[i], sr);
      if (!(fn & 1)) {
        while (!(fn & 1) && fn != 0) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      sr = node_hash(sr, c[i]);
    }
    fn >>= 1;
    sn >>= 1;
  }
  return fr == old_root && sr == new_root && sn == 0;
}

void MemoryTree::append_leaf_hash(const Hash& h) {
  if (levels_.empty()) levels_.emplace_back();
  levels_[0].push_back(h);
  // Complete every perfect subtree the new leaf closes.
  size_t level = 0;
  while (levels_[level].size() % 2 == 0) {
    const auto& lv = levels_[level];
    Hash parent = node_hash(lv[lv.size() - 2], lv[lv.size() - 1]);
    if (levels_.size() <= level + 1) levels_.emplace_back();
    levels_[level + 1].push_back(parent);
    ++level;
  }
}

Result<Hash> MemoryTree::perfect_subtree(int level, uint64_t index) {
  if (level < 0 || static_cast<size_t>(level) >= levels_.size() || index >= levels_[level].size()) {
    return internal_error("merkle: perfect subtree (" + std::to_string(level) + ", " +
                          std::to_string(index) + ") is not in the tree");
  }
  return levels_[level][index];
}

}  // namespace prov::store
