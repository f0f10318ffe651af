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
#include "probes/endpoint.h"
#include "probes/signature.h"
#include "probes/subject.h"
#include "probes/suite.h"

namespace prov::probes {

struct EndpointSettings {
  std::string api_key_env;         // environment variable holding the API key ("" = none)
  std::string dialect = "openai";  // the engine's wire format (probes/dialect.h)
  bool chat = false;               // openai, vllm: /chat/completions instead of /completions
  int concurrency = 8;
  double timeout_s = 60;
  int retries = 5;
  double rate = 0;  // requests per second at most, 0 = no limit
  // Budget of one collection (0 = none): requests to the engine and tokens it reports as used
  // (endpoint.h, "Budget"). A collection stopped by it keeps its probes; rerunning completes it.
  uint64_t max_requests = 0;
  uint64_t max_tokens_total = 0;
  // The tokenizer the endpoints serve ("" = CollectSettings::tokenizer): with it their token ids
  // are recorded with its identity, so token-level statistics compare them with local models.
  std::string tokenizer;
};

// How signatures are collected now: one set of settings for every command that collects.
struct CollectSettings {
  std::string cache_dir;  // "" = $XDG_CACHE_HOME/prov/signatures or ~/.cache/prov/signatures
  std::string device = "cpu";
  std::string dtype = "float32";
  int batch = 16;
  // Local runs: a tokenizer instead of the models' own ("" = theirs). Endpoints: the tokenizer
  // the endpoint serves ("" = unknown): with it the engine's token ids are recorded with the
  // tokenizer's identity, so token-level statistics compare an endpoint with local models.
  std::string tokenizer;
  bool quiet = true;  // no progress line or summary on stderr
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
  // An existing file that cannot be completed (another model, setting or engine version) is
  // started over instead of refused (the signature cache: its files are prov's own).
  bool restart_mismatched = false;
  std::string what = "probe";  // names the work in progress lines and messages
  // Non-null: a dry run. The backend fills in what collecting the probes still missing from
  // `output` would cost, and sends and writes nothing (endpoints only; kInvalidArgument for a
  // checkpoint).
  CostEstimate* dry_run = nullptr;
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

// What `prov probe` collects: a checkpoint (`model`) or an endpoint (`endpoint` with its
// `model_name`), on the suite `target.suite_spec`, into `target.output`.
struct ProbeJob {
  std::string model;
  std::string endpoint, model_name;
  CollectSettings settings;
  CollectTarget target;  // suite and what are filled in by collect_probe
};

// Checks the job (exactly one of model and endpoint; an endpoint needs a model name; a signature
// file is not a model: kInvalidArgument), resolves an endpoint's suite (a checkpoint's runner
// sizes built-in suites to its vocabulary) and collects.
Status collect_probe(ProbeJob& job);

// kInvalidArgument unless `sig` was collected on `suite` (by its digest); `what` names it.
Status check_signature_suite(const Signature& sig, const std::string& what, const Suite& suite);

}  // namespace prov::probes
