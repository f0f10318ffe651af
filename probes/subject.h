// Subjects: the models a command studies — a checkpoint, a signature file or a served endpoint —
// each resolved once. A Subject opens its checkpoint at most once (the memory-mapped weights
// view), computes its OMS identity digest at most once, reads a signature file at most once, and
// carries a display name that is unique among the subjects of its SubjectSet. Every stage of an
// audit takes Subjects, so nothing re-opens or re-hashes a model, and models are matched by digest
// (or, for endpoints, by their URL and model name), never by their names.
//
// Display names: the last path component (the endpoint's model name for endpoints); when two
// subjects of one set would share a name, each of them is named by the shortest tail of its path
// that tells them apart ("run1/model.bin", "run2/model.bin"). Names may change while subjects are
// added: read them once the set is complete.
//
// Thread safety: a SubjectSet and its Subjects are used by one thread at a time.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "model/formats/model.h"
#include "model/tokenizers/tokenizer.h"
#include "probes/signature.h"

namespace prov::probes {

enum class SubjectKind { kCheckpoint, kSignatureFile, kEndpoint };

class SubjectSet;

class Subject {
 public:
  SubjectKind kind() const { return kind_; }
  bool has_weights() const { return kind_ == SubjectKind::kCheckpoint; }
  // As given (a path or URL).
  const std::string& spec() const { return spec_; }
  // The checkpoint or signature file's canonical path; the URL for an endpoint.
  const std::string& source() const { return source_; }
  const std::string& name() const { return name_; }
  // Endpoints: the served model's name (from --model-name).
  const std::string& endpoint_model() const { return endpoint_model_; }

  // Checkpoints: the model (weights view), opened on first use and kept. kInvalidArgument for
  // other kinds; the reader's error (naming the file) when it cannot be opened.
  Result<const model::Model*> model();
  // The identity digest (64 hex): for a checkpoint its OMS manifest digest, computed once; for a
  // signature file the model digest it records ("" when it records none, e.g. an endpoint's);
  // "" for an endpoint.
  Result<std::string> digest();
  // Signature files: the signature, read once.
  Result<const Signature*> signature_file();
  // The tokenizer's identity ("hf-bpe:sha256:<16 hex>", see SignatureHeader::tokenizer): read from
  // a signature file, computed from the checkpoint's tokenizer once, "" when unknown.
  Result<std::string> tokenizer_identity();

  // Same model: equal digests when both have one, else the same endpoint URL and model name,
  // else the same subject.
  bool same_model(Subject& other);

 private:
  friend class SubjectSet;
  Subject() = default;
  SubjectKind kind_ = SubjectKind::kCheckpoint;
  std::string spec_, source_, name_, endpoint_model_;
  SubjectSet* owner_ = nullptr;
  std::unique_ptr<model::Model> model_;
  std::optional<std::string> digest_, tokenizer_;
  std::unique_ptr<Signature> signature_;
};

class SubjectSet {
 public:
  SubjectSet() = default;
  SubjectSet(const SubjectSet&) = delete;
  SubjectSet& operator=(const SubjectSet&) = delete;

  // Resolves `spec`: "http://" or "https://" → an endpoint serving `endpoint_model` (required);
  // a regular file starting with the signature magic → a signature file; anything else → a
  // checkpoint (opened lazily). The same canonical path (or the same URL and model name) added
  // twice gives the same Subject. kNotFound when a path does not exist; kInvalidArgument for an
  // endpoint without a model name. The returned pointer lives as long as the set.
  Result<Subject*> add(const std::string& spec, const std::string& endpoint_model = "");

  size_t size() const { return subjects_.size(); }
  Subject& at(size_t i) { return *subjects_[i]; }

  // How often a checkpoint was opened (model::open_model) and hashed (model::compute_manifest)
  // through this set: once per checkpoint at most, whatever the number of stages.
  size_t opens() const { return opens_; }
  size_t hashes() const { return hashes_; }

 private:
  friend class Subject;
  void assign_names();
  std::vector<std::unique_ptr<Subject>> subjects_;
  size_t opens_ = 0, hashes_ = 0;
};

// True when `path` is a regular file that starts with the signature magic.
bool is_signature_file(const std::string& path);
// True for "http://..." and "https://..." arguments.
bool is_endpoint_spec(const std::string& spec);

// The tokenizer's kind and a digest of its vocabulary (every id's piece, in id order), so that two
// signatures compare token ids only when both models use the same vocabulary.
std::string tokenizer_identity(const model::Tokenizer& tokenizer);

}  // namespace prov::probes
