// End-to-end tests of `prov ledger serve|cosign|proof`, `prov verify-proof`, `prov sign` and
// `prov verify-model`: the real executable, and checks written from the specs alone
// (tests/support/tlog_reference.h: libcurl, OpenSSL SHA-256 and Ed25519, RFC 6962 from
// scratch; tests/support/oms_reference.h: a signature made as the reference tool makes one).
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "store/keys.h"
#include "tests/support/oms_reference.h"
#include "tests/support/prov_cli.h"
#include "tests/support/test_support.h"
#include "tests/support/tlog_reference.h"

namespace {

namespace ref = prov::testing::ref;
using nlohmann::json;
using prov::testing::Outcome;
using prov::testing::run_prov;

// `prov ledger serve DB --port 0` as a child process; its first stdout line names the URL.
class LedgerServe {
 public:
  explicit LedgerServe(const std::string& db) {
    int fds[2];
    if (pipe(fds) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(fds[1], 1);
      close(fds[0]);
      execl(PROV_EXE, PROV_EXE, "ledger", "serve", db.c_str(), "--port", "0",
            static_cast<char*>(nullptr));
      _exit(127);
    }
    close(fds[1]);
    FILE* f = fdopen(fds[0], "r");
    char line[1024];
    if (f != nullptr && fgets(line, sizeof line, f) != nullptr) {
      line_ = line;
      auto a = line_.find("http://");
      auto b = line_.find("/ (origin ");
      if (a != std::string::npos && b != std::string::npos) url_ = line_.substr(a, b - a);
    }
    if (f != nullptr) fclose(f);
  }
  // SIGTERM; the exit status (-1 when it did not exit normally within 5 s).
  int stop() {
    if (pid_ <= 0) return -1;
    kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      int st = 0;
      if (waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
    return -1;
  }
  ~LedgerServe() { stop(); }
  const std::string& url() const { return url_; }
  const std::string& line() const { return line_; }

 private:
  pid_t pid_ = -1;
  std::string url_, line_;
};

// The 32 raw bytes of an Ed25519 public key PEM, read with OpenSSL alone.
std::string raw_ed25519(const std::string& pem_path) {
  const std::string pem = prov::testing::read_file(pem_path);
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* k = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  unsigned char raw[32];
  size_t n = sizeof raw;
  const bool ok = k != nullptr && EVP_PKEY_get_raw_public_key(k, raw, &n) == 1 && n == 32;
  EVP_PKEY_free(k);
  return ok ? std::string(reinterpret_cast<char*>(raw), 32) : std::string();
}

// A signed-note vkey of `type` (0x01 log, 0x04 witness), computed from the spec.
std::string vkey(const std::string& name, unsigned char type, const std::string& raw) {
  const std::string blob = std::string(1, static_cast<char>(type)) + raw;
  return name + "+" + ref::hex(ref::sha256(name + "\n" + blob).substr(0, 4)) + "+" +
         ref::b64encode(blob);
}

struct Log {
  prov::testing::TempDir dir;
  std::string db = dir.file("ledger.db");
  std::string key = dir.file("log.pem");
  std::string witness = dir.file("witness.pem");
  std::vector<std::string> envelopes;
  std::string origin;

  // A ledger of n entries, a checkpoint, and a witness's cosignature.
  explicit Log(int n) {
    EXPECT_EQ(run_prov("key generate --out " + key).code, 0);
    EXPECT_EQ(run_prov("key generate --out " + witness).code, 0);
    EXPECT_EQ(run_prov("ledger init " + db).code, 0);
    auto signer = prov::store::PrivateKey::load(key);
    EXPECT_TRUE(signer.is_ok());
    std::string args = "ledger append " + db;
    for (int i = 0; i < n; ++i) {
      json st = {{"_type", "https://in-toto.io/Statement/v1"},
                 {"subject",
                  {{{"name", "m" + std::to_string(i)},
                    {"digest", {{"sha256", ref::hex(ref::sha256(std::to_string(i)))}}}}}},
                 {"predicateType", "https://example.com/test/v1"},
                 {"predicate", {{"log", dir.path()}}}};  // each log's statements its own
      auto env = prov::store::dsse_sign("application/vnd.in-toto+json", st.dump(), *signer);
      const std::string path = dir.file("e" + std::to_string(i) + ".json");
      prov::testing::write_file(path, *env);
      envelopes.push_back(*env);
      args += " " + path;
    }
    Outcome a = run_prov(args);
    EXPECT_EQ(a.code, 0) << a.out;
    Outcome cp = run_prov("ledger checkpoint " + db + " --key " + key + " --json", false);
    EXPECT_EQ(cp.code, 0) << cp.out;
    origin = json::parse(cp.out)["origin"];
    Outcome w = run_prov("ledger cosign " + db + " --key " + witness +
                         " --name witness.example/w1 --log-key " + key + ".pub --state " +
                         dir.file("witness-state.json"));
    EXPECT_EQ(w.code, 0) << w.out;
  }
  std::string log_vkey() const { return vkey(origin, 0x01, raw_ed25519(key + ".pub")); }
  std::string witness_vkey() const {
    return vkey("witness.example/w1", 0x04, raw_ed25519(witness + ".pub"));
  }
};

// A monitor with a plain HTTP client fetches the tiles from `prov ledger serve`, rebuilds the
// tree, checks the checkpoint's signature and cosignature and an inclusion proof; the same
// entry's tlog-proof file from `prov ledger proof` says the same and verifies offline.
TEST(TlogCli, ServeTilesAndProofsFollowTheSpecs) {
  Log log(300);
  EXPECT_EQ(log.origin.rfind("prov-ledger/ledger.db/", 0), 0u) << log.origin;
  LedgerServe serve(log.db);
  ASSERT_FALSE(serve.url().empty()) << serve.line();
  EXPECT_NE(serve.line().find("(origin " + log.origin + ")"), std::string::npos);
  ref::Fetched f = ref::fetch_log(serve.url(), log.log_vkey());
  ASSERT_EQ(f.error, "");
  ASSERT_EQ(f.entries.size(), 300u);
  ref::Vkey w;
  ASSERT_TRUE(ref::parse_vkey(log.witness_vkey(), &w));
  EXPECT_TRUE(ref::note_signed_by(f.note, w));
  for (size_t i = 0; i < 300; i += 37) {
    const std::string& entry = f.entries[i];
    EXPECT_EQ(entry.substr(entry.size() - log.envelopes[i].size()), log.envelopes[i]);
    EXPECT_EQ(entry.rfind("prov-ledger-entry-v1\n", 0), 0u);
  }
  const size_t k = 257;
  const auto path = ref::path(f.leaves, k, 0, f.leaves.size());
  EXPECT_TRUE(ref::verify_inclusion(f.leaves[k], k, 300, path, f.checkpoint.root));
  EXPECT_EQ(ref::http_get(serve.url() + "/tile/0/001").status, 404);  // 44 of 256: partial only
  EXPECT_EQ(ref::http_get(serve.url() + "/nothing").status, 404);

  // The tlog-proof of entry k, read by the spec: extra = the entry, the proof = the path
  // computed from the tiles, the checkpoint = the one served.
  const std::string proof_file = log.dir.file("e257.tlog-proof");
  Outcome p = run_prov("ledger proof " + log.db + " 257 -o " + proof_file);
  ASSERT_EQ(p.code, 0) << p.out;
  const std::string text = prov::testing::read_file(proof_file);
  std::string expected =
      "c2sp.org/tlog-proof@v1\nextra " + ref::b64encode(f.entries[k]) + "\nindex 257\n";
  for (const auto& h : path) expected += ref::b64encode(h) + "\n";
  EXPECT_EQ(text, expected + "\n" + f.note);
  EXPECT_EQ(serve.stop(), 0);

  // prov verify-proof: with the log key; with a policy needing the witness; with one needing
  // a witness that did not cosign; with the entry's envelope and another.
  Outcome v = run_prov("verify-proof " + proof_file + " --key " + log.key + ".pub");
  EXPECT_EQ(v.code, 0) << v.out;
  EXPECT_NE(v.out.find("verified: entry 257 of " + log.origin), std::string::npos) << v.out;
  const std::string policy = log.dir.file("policy");
  prov::testing::write_file(
      policy, "log " + log.log_vkey() + "\nwitness W " + log.witness_vkey() + "\nquorum W\n");
  v = run_prov("verify-proof " + proof_file + " --policy " + policy);
  EXPECT_EQ(v.code, 0) << v.out;
  EXPECT_NE(v.out.find("witnesses  W"), std::string::npos) << v.out;
  const std::string strict = log.dir.file("strict");
  prov::testing::write_file(strict, "log " + log.log_vkey() + "\nwitness X " +
                                        vkey("x.example", 0x04, std::string(32, 'x')) +
                                        "\nquorum X\n");
  v = run_prov("verify-proof " + proof_file + " --policy " + strict);
  EXPECT_EQ(v.code, 2) << v.out;
  EXPECT_NE(v.out.find("quorum"), std::string::npos) << v.out;
  EXPECT_EQ(run_prov("verify-proof " + proof_file + " --key " + log.key + ".pub --envelope " +
                     log.dir.file("e257.json"))
                .code,
            0);
  EXPECT_EQ(run_prov("verify-proof " + proof_file + " --key " + log.key + ".pub --envelope " +
                     log.dir.file("e1.json"))
                .code,
            2);
  EXPECT_EQ(run_prov("verify-proof " + proof_file + " --key " + log.witness + ".pub").code, 2);
  EXPECT_EQ(run_prov("ledger proof " + log.db + " 300").code, 2);  // not in the checkpoint
}

// A second witness run sees a forked log under the same origin and refuses it.
TEST(TlogCli, WitnessRefusesAForkAndOriginsArePerLedger) {
  Log log(5);
  Log other(5);
  EXPECT_NE(log.origin, other.origin);  // same file name, different ledgers
  const std::string state = log.dir.file("witness-state.json");
  // Other entries signed under log's origin and key: a fork of log as far as the witness knows.
  ASSERT_EQ(run_prov("ledger init " + other.dir.file("fork.db")).code, 0);
  std::string args = "ledger append " + other.dir.file("fork.db");
  for (int i = 0; i < 5; ++i) args += " " + other.dir.file("e" + std::to_string(i) + ".json");
  ASSERT_EQ(run_prov(args + " " + log.dir.file("e0.json")).code, 0);  // 6 entries
  ASSERT_EQ(run_prov("ledger checkpoint " + other.dir.file("fork.db") + " --key " + log.key +
                     " --origin " + log.origin)
                .code,
            0);
  Outcome w = run_prov("ledger cosign " + other.dir.file("fork.db") + " --key " + log.witness +
                       " --name witness.example/w1 --log-key " + log.key + ".pub --state " + state);
  EXPECT_EQ(w.code, 2) << w.out;
  EXPECT_NE(w.out.find("consistency proof"), std::string::npos) << w.out;
  // A checkpoint not signed by the log key the witness trusts is refused.
  EXPECT_EQ(run_prov("ledger cosign " + log.db + " --key " + log.witness + " --name w --log-key " +
                     other.key + ".pub --state " + state)
                .code,
            2);
}

TEST(TlogCli, SignAndVerifyModelsAsTheReferenceTool) {
  prov::testing::TempDir dir;
  const std::string model = dir.file("tiny");
  std::filesystem::create_directories(model + "/sub");
  prov::testing::write_file(model + "/config.json", "{\"model_type\": \"llama\"}");
  prov::testing::write_file(model + "/model.safetensors", std::string(4096, '\x01'));
  prov::testing::write_file(model + "/sub/weights.bin", "weights");
  const std::string key = dir.file("ec.pem");
  ASSERT_EQ(run_prov("key generate --out " + key + " --type ecdsa-p256").code, 0);
  const std::string sig = model + "/model.sig";
  Outcome s = run_prov("sign " + model + " --key " + key + " -o " + sig);
  ASSERT_EQ(s.code, 0) << s.out;
  // The signature names the model by the digest prov gives it everywhere else.
  Outcome d = run_prov("digest " + model + " --json", false);
  ASSERT_EQ(d.code, 0);
  const std::string digest = json::parse(d.out)["digest"];
  json bundle = json::parse(prov::testing::read_file(sig));
  json st = json::parse(ref::b64decode(bundle["dsseEnvelope"]["payload"].get<std::string>()));
  EXPECT_EQ(st["subject"][0]["digest"]["sha256"], digest);
  EXPECT_EQ(st["subject"][0]["name"], "tiny");
  EXPECT_EQ(st["predicateType"], "https://model_signing/signature/v1.0");
  EXPECT_EQ(st["predicate"]["resources"].size(), 3u);  // model.sig itself is not signed
  EXPECT_NE(st["predicate"]["serialization"]["ignore_paths"].dump().find("model.sig"),
            std::string::npos);
  Outcome v = run_prov("verify-model " + model + " --signature " + sig + " --key " + key + ".pub");
  EXPECT_EQ(v.code, 0) << v.out;
  EXPECT_NE(v.out.find("verified: " + model + " sha256:" + digest), std::string::npos) << v.out;

  // A signature written as the reference tool writes it, with a key made by OpenSSL.
  ref::EcKey ec;
  prov::testing::write_file(dir.file("ref.pub"), ec.public_pem());
  std::vector<std::pair<std::string, std::string>> files;
  for (const char* name : {"config.json", "model.safetensors", "sub/weights.bin"}) {
    files.emplace_back(name, ref::hex(ref::sha256(prov::testing::read_file(model + "/" + name))));
  }
  std::string ref_digest;
  prov::testing::write_file(dir.file("ref.sig"),
                            ref::reference_signature(ec, "tiny", files, &ref_digest));
  EXPECT_EQ(ref_digest, digest);
  v = run_prov("verify-model " + model + " --signature " + dir.file("ref.sig") + " --key " +
               dir.file("ref.pub"));
  EXPECT_EQ(v.code, 0) << v.out;
  // Another key, a changed file, an Ed25519 signing key: exit 2, saying why.
  v = run_prov("verify-model " + model + " --signature " + sig + " --key " + dir.file("ref.pub"));
  EXPECT_EQ(v.code, 2) << v.out;
  prov::testing::write_file(model + "/sub/weights.bin", "tampered");
  v = run_prov("verify-model " + model + " --signature " + sig + " --key " + key + ".pub");
  EXPECT_EQ(v.code, 2) << v.out;
  EXPECT_NE(v.out.find("changed: sub/weights.bin"), std::string::npos) << v.out;
  ASSERT_EQ(run_prov("key generate --out " + dir.file("ed.pem")).code, 0);
  v = run_prov("sign " + model + " --key " + dir.file("ed.pem") + " -o " + dir.file("x.sig"));
  EXPECT_EQ(v.code, 2) << v.out;
  EXPECT_NE(v.out.find("ecdsa-p256"), std::string::npos) << v.out;
}

}  // namespace
