// prov ledger serve|cosign|proof, verify-proof (the ledger as a C2SP transparency log, see
// docs/formats/ledger.md) and prov sign|verify-model (OMS, docs/formats/model-signature.md).
#include <iostream>

#include "cli/common.h"
#include "model/formats/digest.h"
#include "store/cosignature.h"
#include "store/model_signing.h"
#include "store/tlog_proof.h"
#include "store/tlog_server.h"

namespace prov::cli {

namespace {

// Writes `text` to `out` (standard output when empty), or reports why there is none.
int emit(const char* cmd, const Result<std::string>& text, const std::string& out = "") {
  Status s = !text.is_ok() ? text.status()
             : out.empty() ? Status::ok()
                           : write_text_file(out, *text);
  if (text.is_ok() && out.empty()) std::cout << *text;
  return s.is_ok() ? kExitOk : report_error(cmd, s);
}

void on_run(CLI::App* c, Action* run, Action action) {
  c->callback([run, action] { *run = action; });
}

// The model's files as its OMS manifest lists them: the model digest of reports and ledgers.
Result<std::vector<store::OmsResource>> hash_model(const std::string& model) {
  PROV_ASSIGN_OR_RETURN(auto m, model::compute_manifest(model));
  std::vector<store::OmsResource> out;
  for (const auto& f : m.files) out.push_back({f.name, f.sha256});
  return out;
}

}  // namespace

void register_tlog(CLI::App& ledger_cmd, CLI::App& app, Action* run) {
  auto s = std::make_shared<store::TlogServerOptions>();
  CLI::App* c = ledger_cmd.add_subcommand("serve", "Serve the ledger read-only as C2SP tlog-tiles");
  c->add_option("DB", s->db, "ledger file")->required();
  c->add_option("--host", s->host, "address to listen on (default 127.0.0.1)");
  c->add_option("--port", s->port, "port (default 0: a free one, printed)");
  on_run(c, run, [s] {
    Status st = store::serve_tlog_until_signal(*s, std::cout);
    return st.is_ok() ? kExitOk : report_error("ledger serve", st);
  });
  auto w = std::make_shared<store::CosignFiles>();
  c = ledger_cmd.add_subcommand("cosign", "As a witness, cosign the ledger's latest checkpoint");
  c->add_option("DB", w->db, "ledger file")->required();
  c->add_option("--key", w->key, "witness Ed25519 private key PEM")->required();
  c->add_option("--name", w->name, "witness name (its note key name)")->required();
  c->add_option("--log-key", w->log_key, "the log's checkpoint public key PEM")->required();
  c->add_option("--state", w->state, "witness state file (last cosigned size per log)")->required();
  on_run(c, run, [w] { return emit("ledger cosign", store::cosign_ledger_files(*w)); });
  auto p = std::make_shared<store::LedgerProofFile>();
  c = ledger_cmd.add_subcommand("proof", "C2SP tlog-proof of one entry against the checkpoint");
  c->add_option("DB", p->db, "ledger file")->required();
  c->add_option("ENTRY", p->index, "entry index")->required();
  c->add_option("-o,--out", p->out, "output file (.tlog-proof; default: standard output)");
  on_run(c, run, [p] { return emit("ledger proof", store::ledger_tlog_proof_file(*p), p->out); });
  auto v = std::make_shared<store::VerifyProofFiles>();
  c = app.add_subcommand("verify-proof", "Verify a C2SP tlog-proof offline");
  c->add_option("PROOF", v->proof, "the .tlog-proof file")->required();
  c->add_option("--key", v->key, "the log's checkpoint public key PEM (no witnesses required)");
  c->add_option("--policy", v->policy, "C2SP tlog-policy file: logs and witness quorum");
  c->add_option("--envelope", v->envelope, "the entry must carry this DSSE envelope");
  on_run(c, run, [v] { return emit("verify-proof", store::verify_tlog_proof_files(*v)); });
}

void register_sign(CLI::App& app, Action* run) {
  for (const char* name : {"sign", "verify-model"}) {
    const bool sign = name[0] == 's';
    auto o = std::make_shared<store::OmsFiles>();
    CLI::App* c = app.add_subcommand(name, sign ? "Sign a model (OpenSSF model signing v1.0)"
                                                : "Verify a model against its OMS signature");
    c->add_option("MODEL", o->model, "model directory or file")->required();
    c->add_option("--key", o->key, sign ? "ECDSA P-256 private key PEM" : "public key PEM")
        ->required();
    c->add_option("-o,--signature", o->signature, "signature file (default model.sig)");
    on_run(c, run, [o, name, sign] {
      return emit(name, sign ? store::oms_sign_files(*o, hash_model)
                             : store::oms_verify_files(*o, hash_model));
    });
  }
}

}  // namespace prov::cli
