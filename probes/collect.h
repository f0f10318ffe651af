// Signatures of Subjects, collected or reused: the backends that collect a signature (a
// checkpoint through the LibTorch plugin, an endpoint over HTTP, a signature file that needs no
// collection) behind one interface, and the signature cache that keeps what was collected.
//
// A cached signature is a file in the cache directory named by the model (checkpoint: its
// canonical path, size and modification time of its files, the device and dtype; endpoint: URL,
// model name and API style) and the suite digest. A partial file (an interrupted run) is
// completed, not redone. A checkpoint is loaded into the runtime once per Collector, however
// many suites it answers.
//
// Thread safety: a Collector is used by one thread at a time.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "probes/signature.h"
#include "probes/subject.h"
#include "probes/suite.h"

namespace prov::probes {

struct EndpointSettings {
  std::string api_key_env;  // environment variable holding the API key ("" = none)
  bool chat = false;        // /chat/completions instead of /completions
  int concurrency = 8;
  double timeout_s = 60;
  int retries = 5;
  double rate = 0;  // requests per second at most, 0 = no limit
};

// How signatures are collected now: one set of settings for every command that collects.
struct CollectSettings {
  std::string cache_dir;  // "" = $XDG_CACHE_HOME/prov/signatures or ~/.cache/prov/signatures
  std::string device = "cpu";
  std::string dtype = "float32";
  int batch = 16;
  std::string tokenizer;  // a tokenizer for local runs instead of the models' own ("" = theirs)
  bool quiet = true;      // no progress line or summary on stderr
  // Probes of logit-image-v1 collected from every local model for the logit_image statistic
  // (0 = none).
  int image_probes = 256;
  EndpointSettings endpoint;
};

// Where a collection writes.
struct CollectTarget {
  std::string suite_spec;        // built-in "natural-v1:1000" or a JSONL path
  const Suite* suite = nullptr;  // that suite, resolved
  std::string output;            // the signature file to write or complete
  bool resume = true;            // complete an existing partial file instead of starting over
  std::string what = "probe";    // names the work in progress lines and messages
};

// Collects one subject's signatures.
class Backend {
 public:
  virtual ~Backend() = default;
  // Writes (or completes) the subject's signature of target.suite into target.output. Failures
  // name the subject; a partial file keeps the probes completed so far.
  virtual Status collect(const CollectTarget& target) = 0;
  // What identifies this model and these settings in the signature cache.
  virtual Result<std::string> cache_key() = 0;
};

// The backend of `subject`: the plugin for a checkpoint, HTTP for an endpoint; kInvalidArgument
// for a signature file (it is read, never collected). `subject` must outlive the backend.
Result<std::unique_ptr<Backend>> open_backend(Subject& subject, const CollectSettings& settings);

// The signature cache directory (created when missing).
Result<std::string> signature_cache_dir(const CollectSettings& settings);

class Collector {
 public:
  explicit Collector(CollectSettings settings) : settings_(std::move(settings)) {}
  const CollectSettings& settings() const { return settings_; }

  // The subject's signature of `suite` (spec `suite_spec`), read once: the subject's own file
  // when it is a signature file (whose suite must be `suite`: kInvalidArgument naming both
  // otherwise), else the cached file, collected or completed now.
  Result<Signature> signature(Subject& subject, const std::string& suite_spec, const Suite& suite);

  // Collects into a file of the caller's (prov probe): the subject must not be a signature file.
  Status collect_to(Subject& subject, const CollectTarget& target);

 private:
  Result<Backend*> backend(Subject& subject);
  CollectSettings settings_;
  std::map<Subject*, std::unique_ptr<Backend>> backends_;
};

// kInvalidArgument unless `sig` was collected on `suite` (by its digest); `what` names it.
Status check_signature_suite(const Signature& sig, const std::string& what, const Suite& suite);

}  // namespace prov::probes
