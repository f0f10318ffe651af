// prov key generate --out KEY [--type ed25519|ecdsa-p256] [--json]: a new signing key pair.
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "store/keys.h"

namespace prov::cli {

namespace {

struct KeyGenerateOptions {
  std::string out;
  std::string type = "ed25519";
  bool json = false;
};

int run_key_generate(const KeyGenerateOptions& o) {
  store::KeyType type;
  if (o.type == "ed25519") {
    type = store::KeyType::kEd25519;
  } else if (o.type == "ecdsa-p256") {
    type = store::KeyType::kEcdsaP256;
  } else {
    return report_error("key generate",
                        invalid_argument("--type must be ed25519 or ecdsa-p256, not " + o.type));
  }
  auto key = store::PrivateKey::generate(type);
  if (!key.is_ok()) return report_error("key generate", key.status());
  const std::string pub_path = o.out + ".pub";
  // PrivateKey::write creates both files with O_EXCL|O_NOFOLLOW (private 0600, public 0644): an
  // existing file or a symbolic link at either path is refused, never written through, and a
  // refused public path leaves no private key behind.
  Status s = key->write(o.out, pub_path);
  if (!s.is_ok()) return report_error("key generate", s);
  const std::string id = key->public_key().key_id();
  if (o.json) {
    nlohmann::json j = {{"key_id", id},
                        {"type", store::key_type_name(type)},
                        {"private_key", o.out},
                        {"public_key", pub_path}};
    std::cout << j.dump(2) << "\n";
    return kExitOk;
  }
  std::cout << id << "\n";
  std::cerr << "wrote " << o.out << " (private, mode 0600) and " << pub_path << " ("
            << store::key_type_name(type) << ")\n";
  return kExitOk;
}

}  // namespace

void register_key(CLI::App& app, Action* run) {
  CLI::App* key = app.add_subcommand("key", "Signing keys for envelopes and ledger checkpoints");
  key->require_subcommand(1);

  auto gen = std::make_shared<KeyGenerateOptions>();
  CLI::App* cmd = key->add_subcommand(
      "generate", "Generate a key pair: KEY (private PKCS#8 PEM, mode 0600) and KEY.pub");
  cmd->add_option("--out", gen->out,
                  "Private key path (must not exist, nor <path>.pub, which receives the public "
                  "key; symbolic links are refused)")
      ->required()
      ->check([](const std::string& v) {
        return v.empty() || v.back() == '/' ? std::string("--out must name a file") : std::string();
      });
  cmd->add_option("--type", gen->type, "ed25519 (default; needed for checkpoints) or ecdsa-p256")
      ->check(CLI::IsMember({"ed25519", "ecdsa-p256"}));
  cmd->add_flag("--json", gen->json, "Print JSON: key_id, type, private_key, public_key");
  cmd->callback([gen, run] { *run = [gen] { return run_key_generate(*gen); }; });
}

}  // namespace prov::cli
