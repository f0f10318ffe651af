// Small ledgers for the transparency-log tests: signed envelopes, a ledger of n entries with a
// checkpoint, and keys.
#pragma once

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/sha256.h"
#include "store/keys.h"
#include "store/ledger.h"

namespace prov::store::tlogtest {

inline PrivateKey ed25519() {
  auto k = PrivateKey::generate(KeyType::kEd25519);
  EXPECT_TRUE(k.is_ok());
  return std::move(k).value();
}

// A signed in-toto Statement about model `name`, `pad` bytes of predicate padding.
inline std::string envelope(const PrivateKey& key, const std::string& name, size_t pad = 0) {
  nlohmann::json st;
  st["_type"] = "https://in-toto.io/Statement/v1";
  st["subject"] = {{{"name", name}, {"digest", {{"sha256", to_hex(sha256(name))}}}}};
  st["predicateType"] = "https://example.com/test/v1";
  st["predicate"]["pad"] = std::string(pad, 'p');
  auto env = dsse_sign(kInTotoPayloadType, st.dump(), key);
  EXPECT_TRUE(env.is_ok());
  return *env;
}

// Appends entries named prefix0 .. prefix<n-1>.
inline void append_n(Ledger& l, const PrivateKey& key, size_t n, const std::string& prefix = "m") {
  std::vector<std::string> envs;
  for (size_t i = 0; i < n; ++i) envs.push_back(envelope(key, prefix + std::to_string(i)));
  auto r = l.append_batch(envs);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
}

}  // namespace prov::store::tlogtest
