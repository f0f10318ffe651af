// Disclosure exports of the provenance ledger: what the ledger records about one model, in the
// project's own verifiable format or mapped onto SPDX 3.0 AI, CycloneDX 1.6 and Hugging Face
// model-card metadata.
//
// The disclosure format ("schema": "prov-disclosure/v2", docs/formats/disclosure.md) is a JSON
// document carrying, for every ledger entry relevant to the model (entries whose subject it is,
// and the entries found by Ledger::ancestors / Ledger::descendants), the DSSE envelope bytes
// (standard base64), the entry's index, append time, leaf hash and RFC 9162 inclusion proof
// against one signed C2SP checkpoint, which is embedded as its complete note. verify_export
// checks all of it offline, without the database: every leaf is recomputed from the envelope
// bytes and the append time (entry_leaf_data), every proof is checked against the checkpoint
// root, the checkpoint signature is checked, and every derived field (subjects, relation,
// parent, roles, lineage) is recomputed from the envelopes and must match. The verifier accepts
// no member it does not check, so any change to the document's content fails verification.
//
// Completeness: proving each entry genuine does not prove that none was left out. A package
// exported with a key (ExportOptions::index_key) carries a signed index: a DSSE envelope of an
// in-toto Statement (predicateType urn:prov:predicate:disclosure-index:v1) listing every entry
// the package covers (index, leaf hash, roles) at the package's checkpoint (origin, tree size,
// root). verify_export checks its signature and that the package holds exactly those entries;
// ExportVerifyReport::complete says whether the package was proven complete. The index proves
// completeness as of its checkpoint, as stated by the holder of the index key.
//
// The disclosure also carries the EU AI Act training-content summary fields that the lineage
// answers (member eu_training_content, recomputed by verify_export): the model dependencies of the
// AI Office's template, §1.2(ii), and the models that generated synthetic training data, §2.5(ii)
// and (iii) (eu_summary_field below; docs/formats/disclosure.md).
//
// The SPDX 3.0.1 (JSON-LD), CycloneDX 1.6 (JSON) and Hugging Face card (YAML front matter)
// exports are mappings for other tools, checked in the tests against the official schemas (the
// SPDX JSON schema, JSON-LD context and SHACL model with the AI profile's rules; the CycloneDX 1.6
// schema; the Hub's card rules). They reference the ledger entries and the checkpoint root but are
// not themselves verifiable offline. Each SPDX and CycloneDX export is a new document: its
// identifiers (SPDX element ids under a fresh urn:uuid namespace, the CycloneDX serialNumber, a
// random RFC 4122 version 4 UUID with version 1) are never reused by another export. A model's
// digest is its OMS manifest digest, not the hash of a file, and is labelled so (an SPDX
// ExternalIdentifier, a CycloneDX property); the signed report an SPDX export points at as
// evidence is the envelope file as `prov audit` writes it (the envelope and a newline).
//
// The relation and parent of an entry are the ledger's columns, which the predicate's reader
// filled (LedgerOptions); parent names come from Ledger::facts_of, subject names from the in-toto
// Statement. Verifying a disclosure recomputes relation and parent with the same kind of reader
// (ExportVerifyOptions::read_predicate).
//
// Thread safety: export_model uses the given Ledger (one thread at a time, as for any Ledger
// call); verify_export and the other functions are stateless.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"
#include "store/keys.h"
#include "store/ledger.h"
#include "store/merkle.h"

namespace prov::store {

inline constexpr char kDisclosureSchema[] = "prov-disclosure/v3";  // written
inline constexpr char kDisclosureSchemaV2[] =
    "prov-disclosure/v2";  // still verified (no EU fields)
inline constexpr char kDisclosureSchemaV1[] = "prov-disclosure/v1";  // still verified (no index)
inline constexpr char kDisclosureIndexPredicate[] = "urn:prov:predicate:disclosure-index:v1";

enum class ExportFormat { kDisclosure, kSpdx3, kCycloneDx, kHfCard };

// "disclosure", "spdx3", "cyclonedx", "hf-card" (kInvalidArgument naming the choices otherwise).
Result<ExportFormat> parse_export_format(const std::string& name);
const char* export_format_name(ExportFormat format);

struct ExportOptions {
  // The signed checkpoint note to prove the entries against. Empty: the ledger's latest stored
  // checkpoint. Its root must equal the ledger's root at its tree size.
  std::string checkpoint_note;
  // Creation time written into SPDX / CycloneDX documents (ISO-8601 UTC). Empty: now.
  std::string created;
  // Signs the disclosure index (format disclosure only; any key type). Null: the package carries
  // no index, and verify_export reports it not proven complete.
  const PrivateKey* index_key = nullptr;
  // Hugging Face repo ids ("org/name", is_hf_repo_id) of models, by digest: the card's base_model,
  // and the download location and supplier in SPDX and CycloneDX. A parent with no repo id is left
  // out of base_model (the card says why): a digest is not a Hub identifier.
  std::map<std::string, std::string> repo_ids;
  // Repo ids the exported model's own files name as its base models (lineage/base_model_hints.h:
  // card base_model, GGUF general.base_model.* and general.source.*, config _name_or_path). When
  // exactly one direct weight-derived parent has no repo id in repo_ids and exactly one hint is not
  // already used there, that parent takes it; other hints are named in a card comment.
  std::vector<std::string> base_model_hints;
};

// True when `s` is a Hugging Face Hub repo id as huggingface_hub validates one: an optional
// "namespace/" and a name, each of [A-Za-z0-9_.-] (the name 1-96 of them), starting and ending
// with a letter, digit or '_', with no "--" or "..", not ending in ".git".
bool is_hf_repo_id(const std::string& s);

// Reads "DIGEST=org/name" mappings (--repo-id): kInvalidArgument naming the first malformed one
// (not DIGEST=REPO, a malformed digest, not a repo id, a digest mapped twice to different ids).
// Keys are normalised digests.
Result<std::map<std::string, std::string>> parse_repo_ids(const std::vector<std::string>& specs);

// Where the EU AI Office's "Template for the Public Summary of Training Content for general-purpose
// AI models" (2025) asks about a direct parent recorded with `relation`: §1.2(ii) model
// dependencies (the model is a modification of it: every relation that shares weights, "adapter",
// and relations prov does not know), §2.5(ii)/(iii) synthetic data (the model was trained on data
// the parent generated: distilled_logit, distilled_seq, and other tools' words starting with
// "distill"), or neither (independent, inconclusive).
enum class EuSummaryField { kNone, kModelDependency, kSyntheticDataGenerator };
EuSummaryField eu_summary_field(const std::string& relation);

// One direct parent of a model, as the ledger records it.
struct RecordedParent {
  std::string digest;  // normalised
  std::string relation;
  uint64_t entry = 0;              // the ledger entry that records it
  std::vector<std::string> names;  // names the ledger gives it (subject names, the predicate's)
};
// The model's direct parents (every entry about `model_digest` that names a parent, in entry
// order). kNotFound when the ledger has no entry about the model; kInvalidArgument for a malformed
// digest; else the ledger's error.
Result<std::vector<RecordedParent>> recorded_parents(Ledger& ledger,
                                                     const std::string& model_digest);

// Exports what the ledger records about `model_digest` ("sha256:hex" or bare hex) in `format`;
// returns the document text. Fails with kNotFound when the ledger has no entry about the model,
// kInvalidArgument when no checkpoint is stored ("sign a checkpoint first: prov ledger
// checkpoint") or when an entry about the model is newer than the checkpoint, kCorrupt when
// the given checkpoint does not match the ledger, or with the ledger's error.
Result<std::string> export_model(Ledger& ledger, const std::string& model_digest,
                                 ExportFormat format, const ExportOptions& options = {});

struct ExportVerifyOptions {
  // When non-empty, every envelope must carry a DSSE signature verifying under one of these.
  std::vector<const PublicKey*> envelope_keys;
  // Reads each envelope's predicate to recompute the statements' relation and parent (the reader
  // the ledger was opened with; lineage/ledger_facts.h for lineage reports). Empty: a document
  // whose statements record a relation or parent cannot be verified (kInvalidArgument).
  PredicateReader read_predicate;
  // The key the disclosure index must be signed by. Null: the checkpoint key.
  const PublicKey* index_key = nullptr;
  // Refuse (kInvalidArgument) a package without a signed index instead of reporting it
  // incomplete.
  bool require_complete = false;
};

struct ExportVerifyReport {
  std::string model_digest;
  std::string origin;  // the checkpoint origin (its key name)
  uint64_t tree_size = 0;
  Hash root{};
  uint64_t entries_verified = 0;
  uint64_t envelope_signatures_checked = 0;
  std::vector<std::string> parents;   // digests the model was derived from (direct)
  std::vector<std::string> children;  // digests derived from the model (direct)
  // True iff a signed index verified and the package holds exactly the entries it lists. False:
  // every entry is genuine, but entries may have been removed.
  bool complete = false;
  uint64_t index_entries = 0;
  std::string index_key_id;  // the key that signed the index, when complete
};

// Verifies a disclosure document offline. The checkpoint signature is checked under
// `checkpoint_key` with the checkpoint origin as key name. kCorrupt names the first malformed
// or unverifiable member (bad JSON, unknown or missing member, leaf or proof mismatch, derived
// field mismatch, or the reader's error), and a signed index that does not verify, is bound to
// another model or checkpoint, or does not list exactly the package's entries ("entry 3 of the
// index is missing from the package"); kInvalidArgument when a checkpoint or envelope signature
// does not verify, when a statement records a relation or parent and no reader is given, or when
// require_complete is set and there is no index; kUnsupported for another schema. Documents of
// schema prov-disclosure/v2 (no eu_training_content) and v1 (no index either) still verify, v1 as
// not complete. Input is
// untrusted: sizes are bounded (64 MiB document, 100,000 entries, 64 proof hashes per entry).
Result<ExportVerifyReport> verify_export(const std::string& content,
                                         const PublicKey& checkpoint_key,
                                         const ExportVerifyOptions& options = {});

}  // namespace prov::store
