#include "store/model_signing.h"

#include <algorithm>
#include <filesystem>
#include <map>

#include "core/file_io.h"
#include "core/sha256.h"

namespace prov::store {

namespace {

using nlohmann::json;
using nlohmann::ordered_json;

const char kInTotoType[] = "application/vnd.in-toto+json";
const char kStatementV1[] = "https://in-toto.io/Statement/v1";

bool is_hex64(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// The hint the reference records: hex SHA-256 of the key's PEM SubjectPublicKeyInfo text.
std::string key_hint(const PublicKey& key) {
  return to_hex(sha256(key.to_pem()));
}

const json* member(const json& j, const char* name, json::value_t type) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(name);
  if (it == j.end()) return nullptr;
  if (it->type() != type && !(type == json::value_t::number_unsigned && it->is_number_integer())) {
    return nullptr;
  }
  return &*it;
}

std::string list_names(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < 5; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > 5) out += ", ... (" + std::to_string(names.size()) + " in all)";
  return out;
}

}  // namespace

OmsManifest oms_manifest_for(const std::string& model_path, const std::string& signature_path,
                             std::vector<OmsResource> resources) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path model = fs::weakly_canonical(fs::absolute(model_path, ec), ec);
  OmsManifest m;
  m.model_name = model.filename().string();
  if (m.model_name.empty()) m.model_name = model.parent_path().filename().string();
  m.resources = std::move(resources);
  m.ignore_paths = {".git", ".gitattributes", ".github", ".gitignore"};
  const fs::path sig = fs::weakly_canonical(fs::absolute(signature_path, ec), ec);
  const fs::path rel = sig.lexically_relative(model);
  if (!rel.empty() && *rel.begin() != ".." && rel != ".") {
    m.ignore_paths.push_back(rel.generic_string());
  }
  std::sort(m.ignore_paths.begin(), m.ignore_paths.end());
  return m;
}

Result<std::string> oms_subject_digest(const std::vector<OmsResource>& resources) {
  std::string raw;
  raw.reserve(resources.size() * 32);
  for (const auto& r : resources) {
    auto d = from_hex(r.sha256);
    if (!is_hex64(r.sha256) || !d.is_ok()) {
      return invalid_argument("resource '" + r.name + "': digest is not 64 lowercase hex");
    }
    raw.append(d->begin(), d->end());
  }
  return to_hex(sha256(raw));
}

Result<std::string> oms_statement(const OmsManifest& m) {
  if (m.resources.empty()) return invalid_argument("a model signature needs at least one file");
  PROV_ASSIGN_OR_RETURN(std::string digest, oms_subject_digest(m.resources));
  ordered_json resources = ordered_json::array();
  for (const auto& r : m.resources) {
    resources.push_back({{"name", r.name}, {"algorithm", "sha256"}, {"digest", r.sha256}});
  }
  ordered_json statement = {
      {"_type", kStatementV1},
      {"subject",
       ordered_json::array({{{"name", m.model_name}, {"digest", {{"sha256", digest}}}}})},
      {"predicateType", kOmsPredicateType},
      {"predicate",
       {{"serialization",
         {{"method", "files"},
          {"hash_type", "sha256"},
          {"allow_symlinks", m.allow_symlinks},
          {"ignore_paths", m.ignore_paths}}},
        {"resources", resources}}}};
  return statement.dump(2);
}

Result<std::string> oms_sign(const OmsManifest& manifest, const PrivateKey& key) {
  if (key.type() != KeyType::kEcdsaP256) {
    return unsupported(std::string("OMS key signatures use elliptic-curve keys (the reference "
                                   "tool verifies no other); this is ") +
                       key_type_name(key.type()) +
                       ": make one with prov key generate --type ecdsa-p256");
  }
  PROV_ASSIGN_OR_RETURN(std::string payload, oms_statement(manifest));
  PROV_ASSIGN_OR_RETURN(std::string sig, key.sign(dsse_pae(kInTotoType, payload)));
  ordered_json bundle = {
      {"mediaType", kSigstoreBundleV03},
      {"verificationMaterial",
       {{"publicKey", {{"hint", key_hint(key.public_key())}}}, {"tlogEntries", json::array()}}},
      {"dsseEnvelope",
       {{"payload", base64_encode(payload)},
        {"payloadType", kInTotoType},
        {"signatures", ordered_json::array({{{"sig", base64_encode(sig)}, {"keyid", ""}}})}}}};
  return bundle.dump(2) + "\n";
}

Result<OmsSignature> oms_verify(const std::string& bundle_json, const PublicKey& key) {
  const json b = json::parse(bundle_json, nullptr, /*allow_exceptions=*/false);
  if (b.is_discarded() || !b.is_object()) return corrupt("model signature: not a JSON object");
  const json* media = member(b, "mediaType", json::value_t::string);
  if (media == nullptr) return corrupt("model signature: no mediaType (not a Sigstore bundle)");
  if (media->get<std::string>() != kSigstoreBundleV03) {
    return unsupported("model signature: bundle media type '" + media->get<std::string>() +
                       "' (expected " + kSigstoreBundleV03 + ")");
  }
  const json* material = member(b, "verificationMaterial", json::value_t::object);
  const json* pk = material ? member(*material, "publicKey", json::value_t::object) : nullptr;
  const json* hint = pk ? member(*pk, "hint", json::value_t::string) : nullptr;
  if (hint != nullptr && !hint->get<std::string>().empty() &&
      hint->get<std::string>() != key_hint(key)) {
    return invalid_argument("model signature: made with another key (public key hint " +
                            hint->get<std::string>() + ", this key's " + key_hint(key) + ")");
  }
  const json* env = member(b, "dsseEnvelope", json::value_t::object);
  const json* payload_b64 = env ? member(*env, "payload", json::value_t::string) : nullptr;
  const json* type = env ? member(*env, "payloadType", json::value_t::string) : nullptr;
  const json* sigs = env ? member(*env, "signatures", json::value_t::array) : nullptr;
  if (payload_b64 == nullptr || type == nullptr || sigs == nullptr || sigs->empty()) {
    return corrupt("model signature: no DSSE envelope (payload, payloadType, signatures)");
  }
  auto payload = base64_decode(payload_b64->get<std::string>());
  if (!payload.is_ok()) return payload.status().with_context("model signature: payload");
  bool verified = false;
  for (const auto& s : *sigs) {
    const json* sig = member(s, "sig", json::value_t::string);
    if (sig == nullptr) continue;
    auto raw = base64_decode(sig->get<std::string>());
    if (raw.is_ok() && key.verify(dsse_pae(type->get<std::string>(), *payload), *raw).is_ok()) {
      verified = true;
      break;
    }
  }
  if (!verified) return invalid_argument("model signature: the signature does not verify");
  if (type->get<std::string>() != kInTotoType) {
    return corrupt("model signature: payload type '" + type->get<std::string>() + "'");
  }
  const json st = json::parse(*payload, nullptr, /*allow_exceptions=*/false);
  const json* st_type = member(st, "_type", json::value_t::string);
  if (st_type == nullptr || st_type->get<std::string>() != kStatementV1) {
    return corrupt("model signature: payload is not an in-toto Statement v1");
  }
  const json* pt = member(st, "predicateType", json::value_t::string);
  if (pt == nullptr || pt->get<std::string>() != kOmsPredicateType) {
    return unsupported("model signature: predicate type '" +
                       (pt ? pt->get<std::string>() : std::string()) + "' (expected " +
                       kOmsPredicateType + ")");
  }
  const json* subjects = member(st, "subject", json::value_t::array);
  if (subjects == nullptr || subjects->size() != 1) {
    return corrupt("model signature: expected exactly one subject");
  }
  OmsSignature out;
  const json& subject = (*subjects)[0];
  const json* name = member(subject, "name", json::value_t::string);
  const json* digests = member(subject, "digest", json::value_t::object);
  const json* sha = digests ? member(*digests, "sha256", json::value_t::string) : nullptr;
  if (sha == nullptr) return corrupt("model signature: the subject has no sha256 digest");
  out.model_name = name ? name->get<std::string>() : std::string();
  out.digest = sha->get<std::string>();
  const json* predicate = member(st, "predicate", json::value_t::object);
  const json* ser =
      predicate ? member(*predicate, "serialization", json::value_t::object) : nullptr;
  const json* resources =
      predicate ? member(*predicate, "resources", json::value_t::array) : nullptr;
  if (ser == nullptr || resources == nullptr) {
    return corrupt("model signature: predicate lacks serialization or resources");
  }
  const json* method = member(*ser, "method", json::value_t::string);
  if (method == nullptr || method->get<std::string>() != "files") {
    return unsupported("model signature: serialization method '" +
                       (method ? method->get<std::string>() : std::string()) +
                       "' (prov verifies per-file signatures, method \"files\")");
  }
  out.serialization = *ser;
  for (const auto& r : *resources) {
    const json* rn = member(r, "name", json::value_t::string);
    const json* alg = member(r, "algorithm", json::value_t::string);
    const json* dg = member(r, "digest", json::value_t::string);
    if (rn == nullptr || alg == nullptr || dg == nullptr) {
      return corrupt("model signature: a resource lacks name, algorithm or digest");
    }
    if (alg->get<std::string>() != "sha256") {
      return unsupported("model signature: resource '" + rn->get<std::string>() + "' hashed with " +
                         alg->get<std::string>() + " (prov verifies sha256)");
    }
    out.resources.push_back({rn->get<std::string>(), dg->get<std::string>()});
  }
  auto digest = oms_subject_digest(out.resources);
  if (!digest.is_ok()) return corrupt("model signature: " + digest.status().message());
  if (*digest != out.digest) {
    return corrupt("model signature: the resources hash to " + *digest +
                   ", not the subject digest " + out.digest);
  }
  return out;
}

Status oms_compare(const OmsSignature& signature, const std::vector<OmsResource>& model) {
  std::map<std::string, std::string> signed_files, local;
  for (const auto& r : signature.resources) signed_files[r.name] = r.sha256;
  // Files the signer left out (serialization.ignore_paths: a file, or a directory and all
  // below it) are left out here too, as the reference verifier does.
  std::vector<std::string> ignored;
  const json* ig = member(signature.serialization, "ignore_paths", json::value_t::array);
  for (size_t i = 0; ig != nullptr && i < ig->size(); ++i) {
    if ((*ig)[i].is_string()) ignored.push_back((*ig)[i].get<std::string>());
  }
  auto is_ignored = [&](const std::string& name) {
    for (const auto& p : ignored) {
      if (!p.empty() && (name == p || name.compare(0, p.size() + 1, p + "/") == 0)) return true;
    }
    return false;
  };
  for (const auto& r : model) {
    if (!is_ignored(r.name)) local[r.name] = r.sha256;
  }
  std::vector<std::string> changed, missing, extra;
  for (const auto& [name, digest] : signed_files) {
    auto it = local.find(name);
    if (it == local.end()) {
      missing.push_back(name);
    } else if (it->second != digest) {
      changed.push_back(name);
    }
  }
  for (const auto& [name, digest] : local) {
    if (!signed_files.count(name)) extra.push_back(name);
  }
  if (changed.empty() && missing.empty() && extra.empty()) return Status::ok();
  std::string msg = "the model does not match its signature:";
  if (!changed.empty()) msg += " changed: " + list_names(changed) + ";";
  if (!missing.empty()) msg += " missing: " + list_names(missing) + ";";
  if (!extra.empty()) msg += " not signed: " + list_names(extra) + ";";
  msg.pop_back();
  return invalid_argument(msg);
}

Result<std::string> oms_sign_files(const OmsFiles& f, const OmsHasher& hash) {
  PROV_ASSIGN_OR_RETURN(PrivateKey key, PrivateKey::load(f.key));
  PROV_ASSIGN_OR_RETURN(std::vector<OmsResource> files, hash(f.model));
  const OmsManifest m = oms_manifest_for(f.model, f.signature, std::move(files));
  PROV_ASSIGN_OR_RETURN(std::string digest, oms_subject_digest(m.resources));
  PROV_ASSIGN_OR_RETURN(std::string bundle, oms_sign(m, key));
  PROV_RETURN_IF_ERROR(write_file_atomic(f.signature, bundle, 0644));
  return "signed " + f.model + " sha256:" + digest + " (" + std::to_string(m.resources.size()) +
         " files) -> " + f.signature + "\n";
}

Result<std::string> oms_verify_files(const OmsFiles& f, const OmsHasher& hash) {
  PROV_ASSIGN_OR_RETURN(PublicKey key, PublicKey::load(f.key));
  PROV_ASSIGN_OR_RETURN(std::string bundle, read_small_file(f.signature, "model signature"));
  PROV_ASSIGN_OR_RETURN(OmsSignature sig, oms_verify(bundle, key));
  PROV_ASSIGN_OR_RETURN(std::vector<OmsResource> files, hash(f.model));
  PROV_RETURN_IF_ERROR(oms_compare(sig, files));
  return "verified: " + f.model + " sha256:" + sig.digest + " (" +
         std::to_string(sig.resources.size()) + " files, signed as " + sig.model_name + ")\n";
}

}  // namespace prov::store
