#include "probes/subject.h"

#include <filesystem>
#include <fstream>
#include <map>

#include "core/sha256.h"
#include "model/formats/digest.h"

namespace prov::probes {

namespace fs = std::filesystem;

bool is_signature_file(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return false;
  std::ifstream f(path, std::ios::binary);
  char magic[8] = {};
  f.read(magic, 8);
  return f.gcount() == 8 && std::string(magic, 7) == "PROVSIG" && magic[7] == '\x01';
}

bool is_endpoint_spec(const std::string& spec) {
  return spec.rfind("http://", 0) == 0 || spec.rfind("https://", 0) == 0;
}

Result<const model::Model*> Subject::model() {
  if (kind_ != SubjectKind::kCheckpoint) {
    return invalid_argument(spec_ + " is not a checkpoint: its weights are not at hand");
  }
  if (!model_) {
    ++owner_->opens_;
    PROV_ASSIGN_OR_RETURN(model::Model m, model::open_model(source_));
    model_ = std::make_unique<model::Model>(std::move(m));
  }
  return model_.get();
}

Result<std::string> Subject::digest() {
  if (digest_) return *digest_;
  switch (kind_) {
    case SubjectKind::kCheckpoint: {
      ++owner_->hashes_;
      PROV_ASSIGN_OR_RETURN(auto manifest, model::compute_manifest(source_));
      digest_ = manifest.digest;
      break;
    }
    case SubjectKind::kSignatureFile: {
      PROV_ASSIGN_OR_RETURN(const Signature* sig, signature_file());
      digest_ = sig->header.model_digest;
      break;
    }
    case SubjectKind::kEndpoint:
      digest_ = "";
      break;
  }
  return *digest_;
}

Result<const Signature*> Subject::signature_file() {
  if (kind_ != SubjectKind::kSignatureFile) {
    return invalid_argument(spec_ + " is not a signature file");
  }
  if (!signature_) {
    PROV_ASSIGN_OR_RETURN(Signature sig, read_signature(source_));
    signature_ = std::make_unique<Signature>(std::move(sig));
  }
  return signature_.get();
}

Result<std::string> Subject::tokenizer_identity() {
  if (tokenizer_) return *tokenizer_;
  switch (kind_) {
    case SubjectKind::kCheckpoint: {
      PROV_ASSIGN_OR_RETURN(const model::Model* m, model());
      auto tok = model::load_model_tokenizer(*m);
      tokenizer_ = tok.is_ok() ? probes::tokenizer_identity(**tok) : std::string();
      break;
    }
    case SubjectKind::kSignatureFile: {
      PROV_ASSIGN_OR_RETURN(const Signature* sig, signature_file());
      tokenizer_ = sig->header.tokenizer;
      break;
    }
    case SubjectKind::kEndpoint:
      tokenizer_ = "";
      break;
  }
  return *tokenizer_;
}

bool Subject::same_model(Subject& other) {
  if (&other == this) return true;
  if (kind_ == SubjectKind::kEndpoint || other.kind_ == SubjectKind::kEndpoint) {
    return kind_ == other.kind_ && source_ == other.source_ &&
           endpoint_model_ == other.endpoint_model_;
  }
  auto a = digest();
  auto b = other.digest();
  return a.is_ok() && b.is_ok() && !a->empty() && *a == *b;
}

Result<Subject*> SubjectSet::add(const std::string& spec, const std::string& endpoint_model) {
  auto s = std::unique_ptr<Subject>(new Subject());
  s->spec_ = spec;
  s->owner_ = this;
  if (is_endpoint_spec(spec)) {
    if (endpoint_model.empty()) {
      return invalid_argument("endpoint " + spec + " needs a model name (--model-name)");
    }
    s->kind_ = SubjectKind::kEndpoint;
    s->source_ = spec;
    s->endpoint_model_ = endpoint_model;
  } else {
    std::error_code ec;
    const fs::path canon = fs::canonical(spec, ec);
    if (ec) return not_found("no such model: " + spec);
    s->source_ = canon.string();
    s->kind_ =
        is_signature_file(s->source_) ? SubjectKind::kSignatureFile : SubjectKind::kCheckpoint;
  }
  for (auto& have : subjects_) {
    if (have->kind_ == s->kind_ && have->source_ == s->source_ &&
        have->endpoint_model_ == s->endpoint_model_) {
      return have.get();
    }
  }
  subjects_.push_back(std::move(s));
  assign_names();
  return subjects_.back().get();
}

namespace {

// Path components of the path a subject was given as (its canonical path when that names no
// folder or file, as for "." or ".."), last first ("a/b/c" -> c, b, a).
std::vector<std::string> tail_components(const std::string& spec, const std::string& source) {
  std::string given = fs::path(spec).lexically_normal().string();
  while (given.size() > 1 && given.back() == '/') given.pop_back();
  const std::string last = fs::path(given).filename().string();
  std::vector<std::string> out;
  fs::path p(last.empty() || last == "." || last == ".." ? source : given);
  while (!p.empty() && p.has_filename()) {
    out.push_back(p.filename().string());
    p = p.parent_path();
  }
  if (out.empty()) out.push_back(source);
  return out;
}

std::string join_tail(const std::vector<std::string>& parts, size_t n) {
  std::string out;
  for (size_t i = std::min(n, parts.size()); i-- > 0;) {
    out += parts[i];
    if (i > 0) out += "/";
  }
  return out;
}

}  // namespace

void SubjectSet::assign_names() {
  const size_t n = subjects_.size();
  std::vector<std::vector<std::string>> parts(n);
  std::vector<size_t> depth(n, 1);
  for (size_t i = 0; i < n; ++i) {
    const Subject& s = *subjects_[i];
    parts[i] = s.kind_ == SubjectKind::kEndpoint ? std::vector<std::string>{s.endpoint_model_}
                                                 : tail_components(s.spec_, s.source_);
  }
  // Lengthen the tails of colliding names until they differ (or a path runs out).
  for (bool changed = true; changed;) {
    changed = false;
    std::map<std::string, std::vector<size_t>> by_name;
    for (size_t i = 0; i < n; ++i) by_name[join_tail(parts[i], depth[i])].push_back(i);
    for (const auto& [name, idx] : by_name) {
      if (idx.size() < 2) continue;
      for (size_t i : idx) {
        if (depth[i] < parts[i].size()) {
          ++depth[i];
          changed = true;
        }
      }
    }
  }
  for (size_t i = 0; i < n; ++i) subjects_[i]->name_ = join_tail(parts[i], depth[i]);
}

}  // namespace prov::probes
