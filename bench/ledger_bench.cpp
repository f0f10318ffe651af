// Ledger figures (issue 8): signed appends/s in batched transactions, verify of a large ledger,
// inclusion and consistency proofs at that size.
//
//   (a) appends: N in-toto Statements are signed (Ed25519 DSSE, store/keys.h dsse_sign) and
//       appended with Ledger::append_batch in transactions of --batch envelopes, into a fresh
//       ledger each run. Signing and appending are timed separately; appending is measured
//       without (signer = nullptr) and with (signer = the public key: every signature is checked
//       before the payload is parsed) envelope signature checks.
//   (b) verify: a ledger of --big entries (built once, kept in --dir and reused) is verified with
//       Ledger::verify: PRAGMA integrity_check, every leaf recomputed from the stored bytes, the
//       envelope digest column, the DSSE structure and Statement re-parsed against the indexed
//       columns and subject rows, the whole tree rebuilt and every cached node compared, and the
//       stored checkpoint's Ed25519 signature and root. Envelope signatures are not checked
//       (no envelope_keys), which is reported separately for a sample.
//   (c) proofs at that size: inclusion proof generation + RFC 9162 verification, and consistency
//       proof generation + verification, at random indices / sizes.
//
// Usage: prov_ledger_bench [--appends N] [--batch B] [--runs R] [--big N] [--proofs P]
//                          [--dir DIR] [--skip-big]
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/sha256.h"
#include "store/checkpoint.h"
#include "store/keys.h"
#include "store/ledger.h"
#include "store/merkle.h"

using namespace prov;
using namespace prov::store;
using Clock = std::chrono::steady_clock;

namespace {

double secs_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

std::string hex_digest(const std::string& s) {
  return to_hex(sha256(s));
}

// A realistic in-toto Statement: one subject, a lineage verdict naming its parent.
std::string make_statement(uint64_t i, const std::string& tag) {
  std::string name = tag + "/model-" + std::to_string(i);
  std::string parent = tag + "/model-" + std::to_string(i / 2);
  return std::string("{\"_type\":\"https://in-toto.io/Statement/v1\",\"subject\":[{\"name\":\"") +
         name + "\",\"digest\":{\"sha256\":\"" + hex_digest(name) +
         "\"}}],\"predicateType\":\"https://prov.dev/verdict/v1\",\"predicate\":{\"verdict\":{"
         "\"relation\":\"fine_tune\",\"parent_digest\":\"sha256:" +
         hex_digest(parent) +
         "\",\"confidence\":0.97},\"tool\":\"prov\",\"seq\":" + std::to_string(i) + "}}";
}

// The envelope dsse_sign produces, with the key id computed once by the caller (dsse_sign derives
// it from the key on every call, which costs more than the Ed25519 signature). Ed25519 is
// deterministic, so the bytes are identical; main() checks that.
Result<std::string> dsse_sign_with_id(const std::string& payload, const PrivateKey& key,
                                      const std::string& key_id) {
  PROV_ASSIGN_OR_RETURN(std::string sig, key.sign(dsse_pae(kInTotoPayloadType, payload)));
  return "{\"payload\":\"" + base64_encode(payload) + "\",\"payloadType\":\"" + kInTotoPayloadType +
         "\",\"signatures\":[{\"keyid\":\"" + key_id + "\",\"sig\":\"" + base64_encode(sig) +
         "\"}]}";
}

// Signs statements [begin, end) with `threads` threads.
std::vector<std::string> sign_range(const PrivateKey& key, uint64_t begin, uint64_t end,
                                    const std::string& tag, int threads,
                                    const std::string& key_id = "") {
  std::vector<std::string> out(end - begin);
  std::vector<std::thread> pool;
  bool failed = false;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (uint64_t i = begin + t; i < end; i += threads) {
        auto env = key_id.empty() ? dsse_sign(kInTotoPayloadType, make_statement(i, tag), key)
                                  : dsse_sign_with_id(make_statement(i, tag), key, key_id);
        if (!env.is_ok()) {
          failed = true;
          return;
        }
        out[i - begin] = std::move(env).value();
      }
    });
  }
  for (auto& th : pool) th.join();
  if (failed) {
    std::fprintf(stderr, "signing failed\n");
    std::exit(1);
  }
  return out;
}

template <typename T>
T must(Result<T> r, const char* what) {
  if (!r.is_ok()) {
    std::fprintf(stderr, "%s: %s\n", what, r.status().to_string().c_str());
    std::exit(1);
  }
  return std::move(r).value();
}

void remove_db(const std::string& p) {
  ::unlink(p.c_str());
  ::unlink((p + "-wal").c_str());
  ::unlink((p + "-shm").c_str());
}

// Appends `envs` in batches; returns seconds.
double append_all(const std::string& db, const std::vector<std::string>& envs, size_t batch,
                  const PublicKey* signer) {
  remove_db(db);
  auto l = must(Ledger::init(db), "init");
  auto t0 = Clock::now();
  for (size_t i = 0; i < envs.size(); i += batch) {
    std::vector<std::string> b(envs.begin() + i, envs.begin() + std::min(envs.size(), i + batch));
    must(l->append_batch(b, signer), "append_batch");
  }
  double s = secs_since(t0);
  if (must(l->size(), "size") != envs.size()) {
    std::fprintf(stderr, "size mismatch\n");
    std::exit(1);
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t appends = 20000, batch = 1000, big = 1000000, proofs = 1000;
  int runs = 5;
  bool skip_big = false;
  std::string dir = "/tmp/prov_ledger_bench";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--appends")
      appends = std::stoull(next());
    else if (a == "--batch")
      batch = std::stoull(next());
    else if (a == "--runs")
      runs = std::stoi(next());
    else if (a == "--big")
      big = std::stoull(next());
    else if (a == "--proofs")
      proofs = std::stoull(next());
    else if (a == "--dir")
      dir = next();
    else if (a == "--skip-big")
      skip_big = true;
    else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  ::mkdir(dir.c_str(), 0755);
  PrivateKey key = must(PrivateKey::generate(KeyType::kEd25519), "keygen");
  PublicKey pub = key.public_key();

  // (a) Appends.
  std::vector<double> sign_s, sign_fast_s, append_s, append_checked_s;
  const std::string key_id = pub.key_id();
  for (int r = 0; r < runs; ++r) {
    std::string tag = "run" + std::to_string(r);
    auto t0 = Clock::now();
    auto envs = sign_range(key, 0, appends, tag, 1);
    sign_s.push_back(secs_since(t0));
    t0 = Clock::now();
    auto envs2 = sign_range(key, 0, appends, tag, 1, key_id);
    sign_fast_s.push_back(secs_since(t0));
    if (envs2 != envs) {
      std::fprintf(stderr, "dsse_sign_with_id differs from dsse_sign\n");
      return 1;
    }
    append_s.push_back(append_all(dir + "/a.db", envs, batch, nullptr));
    append_checked_s.push_back(append_all(dir + "/a.db", envs, batch, &pub));
  }
  remove_db(dir + "/a.db");
  double n = static_cast<double>(appends);
  double sgf = median(sign_fast_s);
  double sg = median(sign_s), ap = median(append_s), apc = median(append_checked_s);
  std::printf("(a) signed appends: %llu envelopes/run, transactions of %llu, median of %d runs\n",
              static_cast<unsigned long long>(appends), static_cast<unsigned long long>(batch),
              runs);
  std::printf("  %-52s %10s %12s\n", "step", "seconds", "per second");
  std::printf("  %-52s %10.3f %12.0f\n", "DSSE Ed25519 signing (1 thread)", sg, n / sg);
  std::printf("  %-52s %10.3f %12.0f\n", "DSSE Ed25519 signing, key id computed once", sgf,
              n / sgf);
  std::printf("  %-52s %10.3f %12.0f\n", "append_batch, no signature check", ap, n / ap);
  std::printf("  %-52s %10.3f %12.0f\n", "append_batch, signature checked (signer key)", apc,
              n / apc);
  std::printf("  %-52s %10.3f %12.0f\n", "sign + append, one thread", sg + ap, n / (sg + ap));
  std::printf("  %-52s %10.3f %12.0f\n", "sign + append (checked), one thread", sg + apc,
              n / (sg + apc));
  std::printf("  %-52s %10.3f %12.0f\n", "sign (key id once) + append, one thread", sgf + ap,
              n / (sgf + ap));
  std::fflush(stdout);
  if (skip_big) return 0;

  // (b) Verify of a large ledger (built once).
  std::string bigdb = dir + "/big" + std::to_string(big) + ".db";
  const std::string origin = "bench.prov.dev/ledger";
  std::string pem_path = bigdb + ".key.pem";
  struct stat st {};
  std::optional<PrivateKey> loaded;  // the big ledger's key when it exists already
  bool have = ::stat(bigdb.c_str(), &st) == 0;
  if (have) {
    auto k = PrivateKey::load(pem_path);
    auto l = Ledger::open(bigdb);
    if (!k.is_ok() || !l.is_ok() || must((*l)->size(), "size") != big ||
        must((*l)->checkpoints(), "checkpoints").empty()) {
      have = false;
    } else {
      loaded.emplace(std::move(k).value());
    }
  }
  if (!have) {
    remove_db(bigdb);
    ::unlink(pem_path.c_str());
    std::printf("building a %llu-entry ledger in %s ...\n", static_cast<unsigned long long>(big),
                bigdb.c_str());
    std::fflush(stdout);
    Status ws = key.write(pem_path, "");
    if (!ws.is_ok()) {
      std::fprintf(stderr, "writing key: %s\n", ws.to_string().c_str());
      return 1;
    }
    auto l = must(Ledger::init(bigdb), "init");
    const std::string key_id = key.public_key().key_id();
    if (must(dsse_sign_with_id(make_statement(7, "x"), key, key_id), "sign") !=
        must(dsse_sign(kInTotoPayloadType, make_statement(7, "x"), key), "sign")) {
      std::fprintf(stderr, "dsse_sign_with_id differs from dsse_sign\n");
      return 1;
    }
    auto t0 = Clock::now();
    double sign_total = 0;
    const uint64_t chunk = 20000;
    for (uint64_t i = 0; i < big; i += chunk) {
      auto ts = Clock::now();
      auto envs = sign_range(key, i, std::min(big, i + chunk), "big", 2, key_id);
      sign_total += secs_since(ts);
      for (size_t j = 0; j < envs.size(); j += batch) {
        std::vector<std::string> b(envs.begin() + j,
                                   envs.begin() + std::min(envs.size(), j + batch));
        must(l->append_batch(b), "append_batch");
      }
    }
    must(l->checkpoint(key, origin), "checkpoint");
    std::printf("  built in %.1f s (signing %.1f s with 2 threads, key id computed once)\n",
                secs_since(t0), sign_total);
  }
  PublicKey bigpub = loaded ? loaded->public_key() : key.public_key();
  stat(bigdb.c_str(), &st);
  std::printf("(b) verify of %llu entries (%s, %.0f MiB)\n", static_cast<unsigned long long>(big),
              bigdb.c_str(), static_cast<double>(st.st_size) / (1 << 20));
  std::vector<double> verify_s, verify_noint_s;
  int vruns = std::max(1, std::min(runs, 3));
  for (int r = 0; r < vruns; ++r) {
    auto l = must(Ledger::open(bigdb), "open");
    VerifyOptions o;
    o.checkpoint_key = &bigpub;
    auto t0 = Clock::now();
    auto rep = must(l->verify(o), "verify");
    verify_s.push_back(secs_since(t0));
    if (rep.tree_size != big || rep.checkpoints_checked != 1) {
      std::fprintf(stderr, "unexpected verify report\n");
      return 1;
    }
    o.integrity_check = false;
    t0 = Clock::now();
    must(l->verify(o), "verify");
    verify_noint_s.push_back(secs_since(t0));
  }
  std::printf("  %-52s %10.2f s (median of %d)\n", "verify, with PRAGMA integrity_check",
              median(verify_s), vruns);
  std::printf("  %-52s %10.2f s (median of %d)\n", "verify, without integrity_check",
              median(verify_noint_s), vruns);
  {
    // Envelope signature checking cost, from a sample (verify with envelope_keys re-checks
    // every envelope's Ed25519 signature).
    auto l = must(Ledger::open(bigdb), "open");
    const uint64_t sample = 20000;
    auto t0 = Clock::now();
    for (uint64_t i = 0; i < sample; ++i) {
      auto e = must(l->get(i * (big / sample)), "get");
      must(dsse_verify(e.envelope, bigpub), "dsse_verify");
    }
    double per = secs_since(t0) / sample;
    std::printf("  %-52s %10.1f us/entry (x%llu = %.1f s on 1 core)\n",
                "(envelope Ed25519 check, sampled; not in verify above)", per * 1e6,
                static_cast<unsigned long long>(big), per * static_cast<double>(big));
  }

  // (c) Proofs.
  {
    auto l = must(Ledger::open(bigdb), "open");
    Hash root = must(l->root(), "root");
    std::mt19937_64 rng(8);
    std::vector<double> incl;
    for (uint64_t k = 0; k < proofs; ++k) {
      uint64_t idx = rng() % big;
      auto t0 = Clock::now();
      auto p = must(l->inclusion_proof(idx), "inclusion_proof");
      bool ok = verify_inclusion(p.leaf_hash, p.index, p.tree_size, p.path, root);
      incl.push_back(secs_since(t0));
      if (!ok) {
        std::fprintf(stderr, "inclusion proof %llu does not verify\n",
                     static_cast<unsigned long long>(idx));
        return 1;
      }
    }
    std::vector<double> cons, roots;
    for (uint64_t k = 0; k < proofs; ++k) {
      uint64_t old = 1 + rng() % (big - 1);
      auto t0 = Clock::now();
      Hash old_root = must(l->root_at(old), "root_at");
      roots.push_back(secs_since(t0));
      t0 = Clock::now();
      auto p = must(l->consistency_proof(old), "consistency_proof");
      bool ok = verify_consistency(old, big, old_root, root, p);
      cons.push_back(secs_since(t0));
      if (!ok) {
        std::fprintf(stderr, "consistency proof from %llu does not verify\n",
                     static_cast<unsigned long long>(old));
        return 1;
      }
    }
    std::printf("(c) proofs at %llu entries, %llu random indices/sizes (seed 8)\n",
                static_cast<unsigned long long>(big), static_cast<unsigned long long>(proofs));
    std::printf("  %-52s %8.1f us median, %8.1f us p99\n", "inclusion proof: generate + verify",
                median(incl) * 1e6, percentile(incl, 0.99) * 1e6);
    std::printf("  %-52s %8.1f us median, %8.1f us p99\n", "consistency proof: generate + verify",
                median(cons) * 1e6, percentile(cons, 0.99) * 1e6);
    std::printf("  %-52s %8.1f us median, %8.1f us p99\n", "(root_at(old size), for the above)",
                median(roots) * 1e6, percentile(roots, 0.99) * 1e6);
  }
  return 0;
}
