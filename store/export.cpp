#include "store/export.h"

#include <openssl/rand.h>
#include <time.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <climits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "core/json.h"
#include "core/relation.h"
#include "core/sha256.h"

namespace prov::store {

namespace {

using nlohmann::json;

constexpr size_t kMaxDocumentBytes = size_t{64} << 20;
constexpr size_t kMaxEntries = 100000;
constexpr size_t kMaxProofHashes = 64;
constexpr char kDsseContentType[] = "application/vnd.dsse.envelope.v1+json";

// What the walks and the lineage need to know about one entry (its derived columns).
struct EntryLinks {
  uint64_t index = 0;
  std::vector<std::string> subjects;
  std::string relation;
  std::string parent;
};

// The roles of each entry relative to `model`, computed exactly as Ledger::query (subject),
// Ledger::ancestors and Ledger::descendants would over the same entries (without a depth limit).
std::map<uint64_t, std::set<std::string>> compute_roles(const std::string& model,
                                                        const std::vector<EntryLinks>& entries) {
  std::map<uint64_t, std::set<std::string>> roles;
  // Entries by subject and by parent, in entry order, so each walk step is a lookup.
  std::multimap<std::string, const EntryLinks*> by_subject, by_parent;
  for (const auto& e : entries) {
    std::set<std::string> distinct(e.subjects.begin(), e.subjects.end());
    for (const auto& s : distinct) by_subject.emplace(s, &e);
    if (!e.parent.empty()) by_parent.emplace(e.parent, &e);
  }
  for (const auto& e : entries) {
    roles[e.index];
    if (std::find(e.subjects.begin(), e.subjects.end(), model) != e.subjects.end()) {
      roles[e.index].insert("subject");
    }
  }
  {  // ancestors: entries whose subject is on the frontier and that name a parent
    std::set<std::string> seen{model};
    std::set<uint64_t> seen_entries;
    std::vector<std::string> frontier{model};
    while (!frontier.empty()) {
      std::vector<std::string> next;
      for (const auto& d : frontier) {
        auto range = by_subject.equal_range(d);
        for (auto it = range.first; it != range.second; ++it) {
          const EntryLinks& e = *it->second;
          if (e.parent.empty() || !seen_entries.insert(e.index).second) continue;
          if (seen.insert(e.parent).second) next.push_back(e.parent);
          roles[e.index].insert("ancestor");
        }
      }
      frontier = std::move(next);
    }
  }
  {  // descendants: entries whose parent is on the frontier
    std::set<std::string> seen{model};
    std::set<uint64_t> seen_entries;
    std::vector<std::string> frontier{model};
    while (!frontier.empty()) {
      std::vector<std::string> next;
      for (const auto& d : frontier) {
        auto range = by_parent.equal_range(d);
        for (auto it = range.first; it != range.second; ++it) {
          const EntryLinks& e = *it->second;
          if (!seen_entries.insert(e.index).second) continue;
          for (const auto& s : e.subjects) {
            if (seen.insert(s).second) next.push_back(s);
          }
          roles[e.index].insert("descendant");
        }
      }
      frontier = std::move(next);
    }
  }
  return roles;
}

json statement_json(const EntryLinks& f) {
  json j = {{"subjects", f.subjects}};
  if (!f.relation.empty()) j["relation"] = f.relation;
  if (!f.parent.empty()) j["parent_digest"] = f.parent;
  return j;
}

// The model's direct parents and children, in entry order.
json lineage_json(const std::string& model, const std::vector<EntryLinks>& entries) {
  json parents = json::array();
  json children = json::array();
  for (const auto& e : entries) {
    if (e.parent.empty()) continue;
    bool is_subject = std::find(e.subjects.begin(), e.subjects.end(), model) != e.subjects.end();
    if (is_subject) {
      parents.push_back({{"digest", e.parent}, {"relation", e.relation}, {"entry", e.index}});
    }
    if (e.parent == model) {
      for (const auto& s : e.subjects) {
        if (s == model) continue;
        children.push_back({{"digest", s}, {"relation", e.relation}, {"entry", e.index}});
      }
    }
  }
  return {{"parents", parents}, {"children", children}};
}

EntryLinks links_of(const LedgerEntry& e) {
  EntryLinks f;
  f.index = e.index;
  f.subjects = e.subjects;
  f.relation = e.relation;
  f.parent = e.parent_digest;
  return f;
}

std::string now_iso() {
  auto now = std::chrono::system_clock::now();
  time_t secs = std::chrono::system_clock::to_time_t(now);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[32];
  strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Everything an export needs: the relevant entries (index order), their roles, the checkpoint.
struct Collected {
  std::string model;
  std::vector<LedgerEntry> entries;
  std::vector<EntryLinks> facts;
  std::map<uint64_t, std::set<std::string>> roles;
  std::string note;
  Checkpoint checkpoint;
};

Result<Collected> collect(Ledger& ledger, const std::string& model_digest,
                          const ExportOptions& options) {
  Collected c;
  c.model = normalize_digest(model_digest);
  if (c.model.empty() || c.model.find(':') == std::string::npos) {
    return invalid_argument("model digest '" + model_digest + "' is not of the form sha256:HEX");
  }
  std::map<uint64_t, LedgerEntry> by_index;
  QueryFilter f;
  f.subject_digest = c.model;
  PROV_ASSIGN_OR_RETURN(auto subject_entries, ledger.query(f));
  PROV_ASSIGN_OR_RETURN(auto up, ledger.ancestors(c.model, INT_MAX));
  PROV_ASSIGN_OR_RETURN(auto down, ledger.descendants(c.model, INT_MAX));
  for (auto* list : {&subject_entries, &up, &down}) {
    for (auto& e : *list) by_index.emplace(e.index, std::move(e));
  }
  if (by_index.empty()) return not_found("the ledger has no entry about " + c.model);

  c.note = options.checkpoint_note;
  if (c.note.empty()) {
    PROV_ASSIGN_OR_RETURN(auto notes, ledger.checkpoints());
    if (notes.empty()) {
      return invalid_argument(ledger.path() +
                              ": no checkpoint stored: sign a checkpoint first: prov ledger "
                              "checkpoint");
    }
    c.note = notes.back();
  }
  PROV_ASSIGN_OR_RETURN(c.checkpoint, parse_checkpoint(c.note));
  PROV_ASSIGN_OR_RETURN(uint64_t size, ledger.size());
  if (c.checkpoint.tree_size > size) {
    return corrupt("checkpoint tree size " + std::to_string(c.checkpoint.tree_size) +
                   " exceeds the ledger size " + std::to_string(size));
  }
  PROV_ASSIGN_OR_RETURN(Hash root, ledger.root_at(c.checkpoint.tree_size));
  if (root != c.checkpoint.root) {
    return corrupt("checkpoint root does not match the ledger's root at tree size " +
                   std::to_string(c.checkpoint.tree_size));
  }
  for (auto& [index, e] : by_index) {
    if (index >= c.checkpoint.tree_size) {
      return invalid_argument("entry " + std::to_string(index) + " about " + c.model +
                              " is newer than the checkpoint (tree size " +
                              std::to_string(c.checkpoint.tree_size) +
                              "): sign a checkpoint first: prov ledger checkpoint");
    }
    c.facts.push_back(links_of(e));
    c.entries.push_back(std::move(e));
  }
  c.roles = compute_roles(c.model, c.facts);
  for (const auto& [index, r] : c.roles) {
    if (r.empty()) return internal_error("entry " + std::to_string(index) + " has no role");
  }
  return c;
}

// Names recorded about models, by digest ("alg:hex" -> distinct names, first met first).
using ModelNames = std::map<std::string, std::vector<std::string>>;

void add_name(ModelNames* names, const std::string& digest, const std::string& name) {
  auto& list = (*names)[digest];
  if (std::find(list.begin(), list.end(), name) == list.end()) list.push_back(name);
}

// The names an envelope records: the subject names of its in-toto Statement, then the parent's
// name as the predicate's reader gives it (Ledger::facts_of). Envelopes that do not parse
// contribute nothing.
void collect_names(const Ledger& ledger, const std::string& envelope, ModelNames* names) {
  auto env = dsse_parse(envelope);
  if (!env.is_ok()) return;
  auto parsed = parse_json(env->payload, "statement");
  if (!parsed.is_ok() || !parsed->is_object()) return;
  const json& st = *parsed;
  auto subj = st.find("subject");
  if (subj != st.end() && subj->is_array()) {
    for (const auto& s : *subj) {
      if (!s.is_object()) continue;
      auto name = s.find("name");
      auto digest = s.find("digest");
      if (name == s.end() || !name->is_string() || name->get<std::string>().empty() ||
          digest == s.end() || !digest->is_object()) {
        continue;
      }
      for (auto it = digest->begin(); it != digest->end(); ++it) {
        if (!it.value().is_string()) continue;
        add_name(names, normalize_digest(it.key() + ":" + it.value().get<std::string>()),
                 name->get<std::string>());
      }
    }
  }
  auto facts = ledger.facts_of(envelope);
  if (facts.is_ok() && !facts->parent_digest.empty() && !facts->parent_name.empty()) {
    add_name(names, facts->parent_digest, facts->parent_name);
  }
}

// Names of the models `entries` mention; a parent named only as a parent is looked up in (up to
// eight of) its own entries outside them.
ModelNames names_of(Ledger& ledger, const std::vector<LedgerEntry>& entries) {
  ModelNames names;
  for (const auto& e : entries) collect_names(ledger, e.envelope, &names);
  for (const auto& e : entries) {
    if (e.parent_digest.empty() || names.count(e.parent_digest)) continue;
    QueryFilter q;
    q.subject_digest = e.parent_digest;
    q.limit = 8;
    auto more = ledger.query(q);
    if (!more.is_ok()) continue;
    for (const auto& m : *more) collect_names(ledger, m.envelope, &names);
  }
  return names;
}

std::string name_or_digest(const ModelNames& names, const std::string& digest) {
  auto it = names.find(digest);
  return it == names.end() || it->second.empty() ? digest : it->second.front();
}

std::string root_hex(const Collected& c) {
  return to_hex(c.checkpoint.root);
}

// ---- disclosure ----

// The checkpoint body a disclosure and its index are bound to.
json checkpoint_ref(const Checkpoint& cp) {
  return {{"origin", cp.origin}, {"tree_size", cp.tree_size}, {"root", to_hex(cp.root)}};
}

// The in-toto Statement of a disclosure index: every entry the package covers (index, leaf hash,
// roles) at the checkpoint, about the model (docs/formats/disclosure.md).
json index_statement(const std::string& model, const Checkpoint& cp, const json& entries) {
  const size_t colon = model.find(':');
  json subject = {
      {"digest",
       {{model.substr(0, colon), model.substr(colon == std::string::npos ? 0 : colon + 1)}}}};
  return {
      {"_type", "https://in-toto.io/Statement/v1"},
      {"subject", json::array({subject})},
      {"predicateType", kDisclosureIndexPredicate},
      {"predicate", {{"model", model}, {"checkpoint", checkpoint_ref(cp)}, {"entries", entries}}}};
}

// The EU AI Act training-content summary fields the lineage answers (eu_summary_field): the
// direct parents the model is a modification of (template §1.2(ii)) and those whose outputs it
// was trained on (§2.5(ii)/(iii)), each {digest, relation, entry}, in entry order.
json eu_training_json(const json& lineage) {
  json dependencies = json::array();
  json generators = json::array();
  for (const auto& p : lineage.at("parents")) {
    switch (eu_summary_field(p.at("relation").get<std::string>())) {
      case EuSummaryField::kModelDependency:
        dependencies.push_back(p);
        break;
      case EuSummaryField::kSyntheticDataGenerator:
        generators.push_back(p);
        break;
      case EuSummaryField::kNone:
        break;
    }
  }
  return {{"model_dependencies", dependencies}, {"synthetic_data_generators", generators}};
}

Result<std::string> export_disclosure(Ledger& ledger, const Collected& c,
                                      const ExportOptions& options) {
  const json lineage = lineage_json(c.model, c.facts);
  json entries = json::array();
  json index_entries = json::array();
  for (size_t i = 0; i < c.entries.size(); ++i) {
    const LedgerEntry& e = c.entries[i];
    PROV_ASSIGN_OR_RETURN(auto proof, ledger.inclusion_proof(e.index, c.checkpoint.tree_size));
    if (!verify_inclusion(e.leaf_hash, e.index, c.checkpoint.tree_size, proof.path,
                          c.checkpoint.root)) {
      return corrupt("entry " + std::to_string(e.index) +
                     ": inclusion proof does not verify against the checkpoint");
    }
    json path = json::array();
    for (const auto& h : proof.path) path.push_back(to_hex(h));
    const auto& roles = c.roles.at(e.index);
    index_entries.push_back({{"index", e.index},
                             {"leaf_hash", to_hex(e.leaf_hash)},
                             {"roles", std::vector<std::string>(roles.begin(), roles.end())}});
    entries.push_back({{"index", e.index},
                       {"created_at", e.created_at},
                       {"envelope", base64_encode(e.envelope)},
                       {"leaf_hash", to_hex(e.leaf_hash)},
                       {"inclusion_proof", path},
                       {"statement", statement_json(c.facts[i])},
                       {"roles", std::vector<std::string>(roles.begin(), roles.end())}});
  }
  json doc = {{"schema", kDisclosureSchema},
              {"model", c.model},
              {"checkpoint",
               {{"origin", c.checkpoint.origin},
                {"tree_size", c.checkpoint.tree_size},
                {"root", root_hex(c)},
                {"note", c.note}}},
              {"entries", entries},
              {"lineage", lineage}};
  doc["eu_training_content"] = eu_training_json(lineage);
  if (options.index_key != nullptr) {
    std::string payload = index_statement(c.model, c.checkpoint, index_entries).dump();
    PROV_ASSIGN_OR_RETURN(std::string env,
                          dsse_sign(kInTotoPayloadType, payload, *options.index_key));
    doc["index"] = {{"envelope", base64_encode(env)}};
  }
  return doc.dump(2) + "\n";
}

// ---- what the mappings share ----

// A random RFC 4122 version 4 UUID, lowercase: every SPDX and CycloneDX export is a new document.
Result<std::string> uuid_v4() {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof(b)) != 1) return internal_error("no random bytes for a UUID");
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);
  static const char kHex[] = "0123456789abcdef";
  std::string h;
  for (unsigned char x : b) {
    h += kHex[x >> 4];
    h += kHex[x & 15];
  }
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
         "-" + h.substr(20, 12);
}

bool is_distillation(const std::string& relation) {
  return eu_summary_field(relation) == EuSummaryField::kSyntheticDataGenerator;
}

// The model's direct parents: entries about it that name a parent, in entry order.
std::vector<const EntryLinks*> direct_parents(const Collected& c) {
  std::vector<const EntryLinks*> out;
  for (const auto& f : c.facts) {
    if (!f.parent.empty() &&
        std::find(f.subjects.begin(), f.subjects.end(), c.model) != f.subjects.end()) {
      out.push_back(&f);
    }
  }
  return out;
}

// Hugging Face repo ids by digest: the ones given, and a base-model hint for the one weight-derived
// parent left without one (ExportOptions::base_model_hints).
struct RepoIds {
  std::map<std::string, std::string> by_digest;
  std::vector<std::string> unused_hints;
};

Result<RepoIds> resolve_repo_ids(const Collected& c, const ExportOptions& options) {
  RepoIds r;
  std::set<std::string> used;
  for (const auto& [digest, id] : options.repo_ids) {
    if (!is_hf_repo_id(id)) {
      return invalid_argument("'" + id + "' (for " + digest + ") is not a Hugging Face repo id");
    }
    r.by_digest[normalize_digest(digest)] = id;
    used.insert(id);
  }
  std::vector<std::string> hints;
  for (const auto& h : options.base_model_hints) {
    if (is_hf_repo_id(h) && !used.count(h) &&
        std::find(hints.begin(), hints.end(), h) == hints.end()) {
      hints.push_back(h);
    }
  }
  std::vector<std::string> without;
  for (const EntryLinks* p : direct_parents(c)) {
    if (eu_summary_field(p->relation) == EuSummaryField::kModelDependency &&
        !r.by_digest.count(p->parent) &&
        std::find(without.begin(), without.end(), p->parent) == without.end()) {
      without.push_back(p->parent);
    }
  }
  if (without.size() == 1 && hints.size() == 1) {
    r.by_digest[without[0]] = hints[0];
    hints.clear();
  }
  r.unused_hints = hints;
  return r;
}

std::string repo_or_name(const RepoIds& repos, const ModelNames& names, const std::string& d) {
  auto it = repos.by_digest.find(d);
  return it != repos.by_digest.end() ? it->second : name_or_digest(names, d);
}

// One line of text for a comment or a sentence: control characters become spaces.
std::string one_line(std::string s) {
  for (char& ch : s) {
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) ch = ' ';
  }
  return s;
}

std::string relation_or_unspecified(const std::string& relation) {
  return relation.empty() ? std::string("unspecified") : relation;
}

// The signed report as a file: the envelope as `prov audit` writes it (OUT.dsse.json: the envelope
// and a newline). An envelope appended from such a file already ends with its newline.
std::string envelope_file_bytes(const std::string& envelope) {
  if (!envelope.empty() && envelope.back() == '\n') return envelope;
  return envelope + "\n";
}

// Each model's earliest append time in the entries (UTC, to the second), the time prov first
// recorded it.
std::map<std::string, std::string> first_recorded(const Collected& c) {
  std::map<std::string, std::string> first;
  auto note = [&](const std::string& d, const std::string& at) {
    std::string t = at.size() >= 19 ? at.substr(0, 19) + "Z" : at;
    auto it = first.find(d);
    if (it == first.end() || t < it->second) first[d] = t;
  };
  for (size_t i = 0; i < c.entries.size(); ++i) {
    for (const auto& s : c.facts[i].subjects) note(s, c.entries[i].created_at);
    if (!c.facts[i].parent.empty()) note(c.facts[i].parent, c.entries[i].created_at);
  }
  return first;
}

// ---- Hugging Face model card ----

// The Hugging Face base_model_relation for a recorded relation (the relation table's hf_relation),
// or "" when there is none. "adapter" is Hugging Face's own value, kept as recorded.
std::string hf_relation(const std::string& relation) {
  if (relation == "adapter") return "adapter";
  auto r = parse_relation(relation);
  return r ? relation_info(*r).hf_relation : "";
}

// A YAML double-quoted scalar (JSON string syntax is valid YAML).
std::string yq(const std::string& s) {
  return json(s).dump();
}

Result<std::string> export_hf_card(Ledger& ledger, const Collected& c, const RepoIds& repos) {
  const ModelNames names = names_of(ledger, c.entries);
  const auto parents = direct_parents(c);
  std::vector<std::string> base, relations, comments;
  for (const EntryLinks* p : parents) {
    const std::string what = p->parent + " (" + one_line(relation_or_unspecified(p->relation)) +
                             ", ledger entry " + std::to_string(p->index) + ")";
    if (is_distillation(p->relation)) {
      comments.push_back("not a base_model: " + what +
                         "; the model was trained on its outputs and shares no weights with it");
      continue;
    }
    auto it = repos.by_digest.find(p->parent);
    if (it == repos.by_digest.end()) {
      comments.push_back("base_model omits " + what +
                         ": no Hugging Face repo id is known for it (prov ledger export "
                         "--repo-id DIGEST=org/name)");
      continue;
    }
    if (std::find(base.begin(), base.end(), it->second) == base.end()) base.push_back(it->second);
    relations.push_back(hf_relation(p->relation));
  }
  std::string hf = relations.empty() ? "" : relations[0];
  for (const auto& r : relations) {
    if (r != hf) hf.clear();
  }
  std::string out = "---\n";
  if (base.size() == 1) {
    out += "base_model: " + yq(base[0]) + "\n";
  } else if (base.size() > 1) {
    out += "base_model:\n";
    for (const auto& b : base) out += "  - " + yq(b) + "\n";
  }
  if (!hf.empty()) {
    out += "base_model_relation: " + hf + "\n";
  } else if (!base.empty()) {
    comments.push_back(
        "base_model_relation omitted: a recorded relation has no Hugging Face value, or they "
        "differ (allowed: adapter, merge, quantized, finetune); see prov_provenance.relations");
  }
  if (!repos.unused_hints.empty()) {
    std::string list;
    for (const auto& h : repos.unused_hints) list += (list.empty() ? "" : ", ") + h;
    comments.push_back("the model's files name base models " + list +
                       "; map them to ledger parents with --repo-id DIGEST=org/name");
  }
  for (const auto& line : comments) out += "# " + line + "\n";
  out += "prov_provenance:\n";
  out += "  model_digest: " + yq(c.model) + "\n";
  if (!parents.empty()) {
    out += "  base_model_digests:\n";
    for (const EntryLinks* p : parents) out += "    - " + yq(p->parent) + "\n";
    out += "  relations:\n";
    for (const EntryLinks* p : parents) out += "    - " + yq(p->relation) + "\n";
    out += "  ledger_entries:\n";
    for (const EntryLinks* p : parents) out += "    - " + std::to_string(p->index) + "\n";
  }
  out += "  ledger_origin: " + yq(c.checkpoint.origin) + "\n";
  out += "  ledger_tree_size: " + std::to_string(c.checkpoint.tree_size) + "\n";
  out += "  ledger_root: " + yq(root_hex(c)) + "\n";
  out += "---\n\n## Provenance\n\n";
  out += "This model (OMS model digest `" + c.model + "`) is recorded in the prov ledger `" +
         one_line(c.checkpoint.origin) + "`";
  if (!parents.empty()) {
    out += " as derived from ";
    for (size_t i = 0; i < parents.size(); ++i) {
      if (i) out += ", ";
      out += "`" + one_line(repo_or_name(repos, names, parents[i]->parent)) + "`";
      if (!parents[i]->relation.empty()) out += " (" + one_line(parents[i]->relation) + ")";
    }
  }
  out += ". The " + std::to_string(c.entries.size()) +
         " ledger entries about it are included in the signed checkpoint of tree size " +
         std::to_string(c.checkpoint.tree_size) + " with root `" + root_hex(c) +
         "` (hex); a `prov ledger export --format disclosure` package verifies them offline.\n";
  return out;
}

// ---- SPDX 3.0.1 ----

constexpr char kSpdxNoAssertion[] = "https://spdx.org/rdf/3.0.1/terms/Core/NoAssertionElement";
constexpr char kOmsAuthority[] = "OpenSSF model signing (OMS) manifest digest";
constexpr char kOmsMeaning[] =
    "SHA-256 over the SHA-256 digests of the model's files in manifest order (OMS); not the hash "
    "of any one file";

// An SPDX 3.0.1 document under its own namespace (urn:prov:spdx:<uuid>): element ids are never
// shared with another export, so documents merge without clashes.
class SpdxDocumentBuilder {
 public:
  explicit SpdxDocumentBuilder(std::string ns) : ns_(std::move(ns)) {}
  std::string id(const std::string& local) const { return ns_ + ":" + local; }
  void add(json element) {
    element["creationInfo"] = kCreationInfo;
    if (element.contains("spdxId")) ids_.push_back(element["spdxId"]);
    graph_.push_back(std::move(element));
  }
  // A Relationship with a fresh id; returns the id.
  std::string relate(const std::string& from, const std::string& type,
                     const std::vector<std::string>& to, const std::string& comment = "") {
    std::string rid = id("relationship:" + std::to_string(++relationships_));
    json rel = {{"type", "Relationship"},
                {"spdxId", rid},
                {"from", from},
                {"to", to},
                {"relationshipType", type}};
    if (!comment.empty()) rel["comment"] = comment;
    add(std::move(rel));
    return rid;
  }
  json& graph() { return graph_; }
  const std::vector<std::string>& ids() const { return ids_; }
  static constexpr char kCreationInfo[] = "_:creationinfo";

 private:
  std::string ns_;
  json graph_ = json::array();
  std::vector<std::string> ids_;
  int relationships_ = 0;
};

// One ai_AIPackage: the profile's required members (suppliedBy, downloadLocation, packageVersion,
// primaryPurpose, releaseTime), with what prov does not know said in the comment, and the digest
// as an OMS external identifier.
json spdx_model_package(const std::string& spdx_id, const std::string& digest,
                        const std::string& name, const std::string& repo,
                        const std::string& supplier, const std::string& first_seen) {
  json pkg = {{"type", "ai_AIPackage"},
              {"spdxId", spdx_id},
              {"name", name},
              {"software_primaryPurpose", "model"},
              {"software_packageVersion", digest},
              {"software_downloadLocation",
               repo.empty() ? std::string(kSpdxNoAssertion) : "https://huggingface.co/" + repo},
              {"releaseTime", first_seen},
              {"suppliedBy", supplier},
              {"externalIdentifier",
               {{{"type", "ExternalIdentifier"},
                 {"externalIdentifierType", "other"},
                 {"identifier", digest},
                 {"issuingAuthority", kOmsAuthority},
                 {"comment", kOmsMeaning}}}}};
  std::string unknown = repo.empty() ? "supplier and download location, " : "";
  pkg["comment"] = "prov does not know this model's " + unknown +
                   "release time or license: releaseTime is the earliest time the prov ledger "
                   "recorded it (it was released no later), packageVersion its OMS model digest, "
                   "and the license relationships say NOASSERTION.";
  return pkg;
}

Result<std::string> export_spdx3(Ledger& ledger, const Collected& c, const std::string& created,
                                 const RepoIds& repos) {
  const ModelNames names = names_of(ledger, c.entries);
  PROV_ASSIGN_OR_RETURN(std::string uuid, uuid_v4());
  SpdxDocumentBuilder doc("urn:prov:spdx:" + uuid);
  doc.graph().push_back({{"type", "CreationInfo"},
                         {"@id", SpdxDocumentBuilder::kCreationInfo},
                         {"specVersion", "3.0.1"},
                         {"created", created},
                         {"createdBy", {doc.id("agent:prov")}},
                         {"createdUsing", {doc.id("tool:prov")}}});
  doc.add({{"type", "SoftwareAgent"}, {"spdxId", doc.id("agent:prov")}, {"name", "prov"}});
  doc.add({{"type", "Tool"}, {"spdxId", doc.id("tool:prov")}, {"name", "prov"}});

  std::set<std::string> models{c.model};
  for (const auto& f : c.facts) {
    for (const auto& s : f.subjects) models.insert(s);
    if (!f.parent.empty()) models.insert(f.parent);
  }
  const auto first = first_recorded(c);
  auto model_id = [&](const std::string& d) { return doc.id("model:" + d); };
  std::set<std::string> suppliers;
  for (const auto& m : models) {
    auto repo_it = repos.by_digest.find(m);
    const std::string repo = repo_it == repos.by_digest.end() ? "" : repo_it->second;
    std::string org = repo.substr(0, repo.find('/') == std::string::npos ? 0 : repo.find('/'));
    std::string supplier = doc.id(org.empty() ? "supplier:noassertion" : "supplier:" + org);
    if (suppliers.insert(supplier).second) {
      json agent = {{"type", org.empty() ? "Agent" : "Organization"},
                    {"spdxId", supplier},
                    {"name", org.empty() ? "NOASSERTION" : org}};
      agent["comment"] = org.empty() ? "The supplier is not known to prov."
                                     : "The Hugging Face Hub namespace of the model's repository.";
      doc.add(std::move(agent));
    }
    auto seen = first.find(m);
    json pkg = spdx_model_package(model_id(m), m, repo.empty() ? name_or_digest(names, m) : repo,
                                  repo, supplier, seen == first.end() ? "" : seen->second);
    std::string training;
    for (const auto& f : c.facts) {
      if (f.parent.empty() ||
          std::find(f.subjects.begin(), f.subjects.end(), m) == f.subjects.end())
        continue;
      training += (training.empty() ? "" : "; ") + relation_or_unspecified(f.relation) + " from " +
                  repo_or_name(repos, names, f.parent) + " (prov ledger entry " +
                  std::to_string(f.index) + ")";
    }
    if (!training.empty()) pkg["ai_informationAboutTraining"] = "Recorded lineage: " + training;
    doc.add(std::move(pkg));
    for (const char* type : {"hasDeclaredLicense", "hasConcludedLicense"}) {
      doc.relate(model_id(m), type, {"expandedlicensing_NoAssertionLicense"});
    }
  }
  for (size_t i = 0; i < c.entries.size(); ++i) {
    const LedgerEntry& e = c.entries[i];
    const EntryLinks& f = c.facts[i];
    const std::string n = std::to_string(e.index);
    const std::string ev_id = doc.id("ledger-entry:" + n);
    doc.add({{"type", "software_File"},
             {"spdxId", ev_id},
             {"name", "ledger-entry-" + n + ".dsse.json"},
             {"contentType", kDsseContentType},
             {"verifiedUsing",
              {{{"type", "Hash"},
                {"algorithm", "sha256"},
                {"hashValue", to_hex(sha256(envelope_file_bytes(e.envelope)))}}}},
             {"comment", "The signed report of prov ledger entry " + n +
                             ": its DSSE envelope as prov audit writes it (the envelope and a "
                             "newline); ledger leaf " +
                             to_hex(e.leaf_hash) + ", appended " + e.created_at}});
    if (f.parent.empty()) {
      for (const auto& s : f.subjects) doc.relate(model_id(s), "hasEvidence", {ev_id});
      continue;
    }
    // Seen from the exported model: edges above it read "descendantOf", edges below "ancestorOf".
    const auto& roles = c.roles.at(e.index);
    const bool below = roles.count("descendant") && !roles.count("ancestor");
    const std::string comment =
        "prov relation: " + relation_or_unspecified(f.relation) + " (ledger entry " + n + ")";
    for (const auto& s : f.subjects) {
      std::string rid =
          below ? doc.relate(model_id(f.parent), "ancestorOf", {model_id(s)}, comment)
                : doc.relate(model_id(s), "descendantOf", {model_id(f.parent)}, comment);
      doc.relate(rid, "hasEvidence", {ev_id});
    }
  }
  std::vector<std::string> elements = doc.ids();
  const std::string doc_id = doc.id("document");
  doc.graph().push_back(
      {{"type", "SpdxDocument"},
       {"spdxId", doc_id},
       {"creationInfo", SpdxDocumentBuilder::kCreationInfo},
       {"name", "prov disclosure of " + c.model},
       {"profileConformance", {"core", "software", "ai"}},
       {"rootElement", {model_id(c.model)}},
       {"element", elements},
       {"comment", "Lineage recorded in the prov ledger " + c.checkpoint.origin +
                       ", signed checkpoint tree size " + std::to_string(c.checkpoint.tree_size) +
                       ", root " + root_hex(c) + " (hex)"}});
  json out = {{"@context", "https://spdx.org/rdf/3.0.1/spdx-context.jsonld"},
              {"@graph", doc.graph()}};
  return out.dump(2) + "\n";
}

// ---- CycloneDX 1.6 ----

// The CycloneDX declarations: one claim per ledger entry (a sentence naming subject, relation and
// parent) with the DSSE envelope as its evidence, and one attestation mapping to all claims.
json cdx_declarations(const Collected& c) {
  json claims = json::array();
  json evidence = json::array();
  json claim_refs = json::array();
  for (size_t i = 0; i < c.entries.size(); ++i) {
    const LedgerEntry& e = c.entries[i];
    const EntryLinks& f = c.facts[i];
    std::string n = std::to_string(e.index);
    std::string predicate =
        "ledger entry " + n + ": " + (f.subjects.empty() ? std::string("?") : f.subjects[0]);
    if (!f.parent.empty()) {
      predicate +=
          " " + (f.relation.empty() ? std::string("derived") : f.relation) + " from " + f.parent;
    }
    claims.push_back({{"bom-ref", "claim:entry:" + n},
                      {"target", "model:" + c.model},
                      {"predicate", predicate},
                      {"evidence", {"evidence:entry:" + n}}});
    claim_refs.push_back("claim:entry:" + n);
    evidence.push_back({{"bom-ref", "evidence:entry:" + n},
                        {"propertyName", "prov:ledger-entry"},
                        {"description", "DSSE envelope of prov ledger entry " + n + " (leaf " +
                                            to_hex(e.leaf_hash) + ")"},
                        {"created", e.created_at},
                        {"data",
                         {{{"name", "dsse-envelope"},
                           {"contents",
                            {{"attachment",
                              {{"contentType", kDsseContentType},
                               {"encoding", "base64"},
                               {"content", base64_encode(e.envelope)}}}}}}}}});
  }
  return {{"attestations",
           {{{"summary",
              "Provenance of " + c.model + " recorded in the prov ledger " + c.checkpoint.origin},
             {"map", {{{"claims", claim_refs}}}}}}},
          {"claims", claims},
          {"evidence", evidence}};
}

Result<std::string> export_cyclonedx(Ledger& ledger, const Collected& c, const std::string& created,
                                     const RepoIds& repos) {
  const ModelNames names = names_of(ledger, c.entries);
  auto ref = [](const std::string& d) { return "model:" + d; };
  // A model component: its digest is an OMS manifest digest, not a file hash, so it is a property
  // rather than a CycloneDX hash.
  auto component = [&](const std::string& d) {
    json comp = {{"type", "machine-learning-model"},
                 {"bom-ref", ref(d)},
                 {"name", repo_or_name(repos, names, d)}};
    auto it = repos.by_digest.find(d);
    if (it != repos.by_digest.end()) {
      comp["supplier"] = {{"name", it->second.substr(0, it->second.find('/'))}};
      comp["externalReferences"] = {
          {{"type", "distribution"}, {"url", "https://huggingface.co/" + it->second}}};
    }
    comp["properties"] = {{{"name", "prov:oms:model_digest"}, {"value", d}}};
    return comp;
  };
  // Ancestors (all, direct parents first) and descendants of the model.
  std::vector<std::string> ancestors, descendants;
  json props = json::array();
  json datasets = json::array();
  std::string lineage;
  for (const EntryLinks& f : c.facts) {
    if (f.parent.empty()) continue;
    const auto& roles = c.roles.at(f.index);
    const bool direct_parent =
        std::find(f.subjects.begin(), f.subjects.end(), c.model) != f.subjects.end();
    if (roles.count("ancestor")) {
      if (f.parent != c.model &&
          std::find(ancestors.begin(), ancestors.end(), f.parent) == ancestors.end()) {
        if (direct_parent) {
          ancestors.insert(ancestors.begin(), f.parent);
        } else {
          ancestors.push_back(f.parent);
        }
      }
      if (direct_parent) {
        const std::string rel = relation_or_unspecified(f.relation);
        const std::string n = std::to_string(f.index);
        props.push_back(
            {{"name", is_distillation(f.relation) ? "prov:euaiact:synthetic_data_from_model"
                                                  : "prov:euaiact:model_dependency"},
             {"value", f.parent + " (" + rel + ", ledger entry " + n + ")"}});
        props.push_back({{"name", "prov:relation"}, {"value", f.relation}});
        lineage += (lineage.empty() ? "" : "; ") + rel + " from " +
                   repo_or_name(repos, names, f.parent) + " (ledger entry " + n + ")";
        if (is_distillation(f.relation)) {
          datasets.push_back(
              {{"type", "dataset"},
               {"name", "outputs of " + repo_or_name(repos, names, f.parent)},
               {"description", "Synthetic training data generated by the model " + f.parent +
                                   " (prov relation " + rel + ", ledger entry " + n + ")"}});
        }
      }
    }
    if (roles.count("descendant")) {
      for (const auto& s : f.subjects) {
        if (s != c.model &&
            std::find(descendants.begin(), descendants.end(), s) == descendants.end()) {
          descendants.push_back(s);
        }
      }
    }
  }
  props.push_back({{"name", "prov:ledger:origin"}, {"value", c.checkpoint.origin}});
  props.push_back(
      {{"name", "prov:ledger:tree_size"}, {"value", std::to_string(c.checkpoint.tree_size)}});
  props.push_back({{"name", "prov:ledger:root"}, {"value", root_hex(c)}});

  json model = component(c.model);
  for (auto& p : props) model["properties"].push_back(p);
  json card = {{"bom-ref", "model-card:" + c.model}};
  if (!datasets.empty()) card["modelParameters"] = {{"datasets", datasets}};
  card["properties"] = {{{"name", "prov:lineage"},
                         {"value", lineage.empty() ? std::string("no parent recorded") : lineage}}};
  model["modelCard"] = card;
  json pedigree = json::object();
  if (!ancestors.empty()) {
    pedigree["ancestors"] = json::array();
    for (const auto& a : ancestors) pedigree["ancestors"].push_back(component(a));
  }
  if (!descendants.empty()) {
    pedigree["descendants"] = json::array();
    for (const auto& d : descendants) pedigree["descendants"].push_back(component(d));
  }
  if (!pedigree.empty()) {
    pedigree["notes"] = "Lineage recorded in the prov ledger " + c.checkpoint.origin +
                        " (checkpoint tree size " + std::to_string(c.checkpoint.tree_size) +
                        ", root " + root_hex(c) + ")";
    model["pedigree"] = pedigree;
  }
  PROV_ASSIGN_OR_RETURN(std::string uuid, uuid_v4());
  json doc = {{"bomFormat", "CycloneDX"},
              {"specVersion", "1.6"},
              {"serialNumber", "urn:uuid:" + uuid},
              {"version", 1},
              {"metadata",
               {{"timestamp", created},
                {"tools", {{"components", {{{"type", "application"}, {"name", "prov"}}}}}},
                {"properties", {{{"name", "prov:ledger:checkpoint"}, {"value", c.note}}}}}},
              {"components", {model}},
              {"declarations", cdx_declarations(c)}};
  return doc.dump(2) + "\n";
}

// ---- verification helpers ----

Status check_keys(const json& obj, const std::vector<const char*>& keys, const std::string& where) {
  if (!obj.is_object()) return corrupt(where + " is not an object");
  for (const char* k : keys) {
    if (!obj.contains(k)) return corrupt(where + ": missing member '" + k + "'");
  }
  if (obj.size() != keys.size()) {
    for (auto it = obj.begin(); it != obj.end(); ++it) {
      if (std::find_if(keys.begin(), keys.end(), [&](const char* k) { return it.key() == k; }) ==
          keys.end()) {
        return corrupt(where + ": unknown member '" + it.key() + "'");
      }
    }
    return corrupt(where + ": duplicate members");
  }
  return Status::ok();
}

Result<std::string> get_string(const json& obj, const char* key, const std::string& where) {
  const json& v = obj.at(key);
  if (!v.is_string()) return corrupt(where + ": '" + key + "' is not a string");
  return v.get<std::string>();
}

Result<uint64_t> get_uint(const json& obj, const char* key, const std::string& where) {
  const json& v = obj.at(key);
  if (!v.is_number_unsigned()) {
    return corrupt(where + ": '" + key + "' is not a non-negative integer");
  }
  return v.get<uint64_t>();
}

Result<Hash> parse_hash_hex(const std::string& text, const std::string& where) {
  if (text.size() != 64) return corrupt(where + ": not 64 hex digits");
  auto raw = from_hex(text);
  if (!raw.is_ok()) return corrupt(where + ": not hex");
  Hash h;
  std::copy(raw->begin(), raw->end(), h.begin());
  if (to_hex(h) != text) return corrupt(where + ": hex must be lowercase");
  return h;
}

// The checkpoint member: signature first, then the informative members against the signed note.
Result<Checkpoint> verify_checkpoint_member(const json& cpj, const PublicKey& checkpoint_key) {
  PROV_RETURN_IF_ERROR(check_keys(cpj, {"origin", "tree_size", "root", "note"}, "checkpoint"));
  PROV_ASSIGN_OR_RETURN(std::string note, get_string(cpj, "note", "checkpoint"));
  PROV_ASSIGN_OR_RETURN(Checkpoint unverified, parse_checkpoint(note));
  auto cp = verify_checkpoint(note, unverified.origin, checkpoint_key);
  if (!cp.is_ok()) return cp.status().with_context("checkpoint");
  PROV_ASSIGN_OR_RETURN(std::string origin, get_string(cpj, "origin", "checkpoint"));
  PROV_ASSIGN_OR_RETURN(uint64_t tree_size, get_uint(cpj, "tree_size", "checkpoint"));
  PROV_ASSIGN_OR_RETURN(std::string root_text, get_string(cpj, "root", "checkpoint"));
  PROV_ASSIGN_OR_RETURN(Hash root, parse_hash_hex(root_text, "checkpoint root"));
  if (origin != cp->origin || tree_size != cp->tree_size || root != cp->root) {
    return corrupt("checkpoint: origin, tree_size or root differ from the signed note");
  }
  return cp;
}

// One member of `entries` (already checked for its members and index order): the leaf from
// created_at and the envelope, the inclusion proof against `cp`, the envelope signature (with
// keys), and the statement recomputed from the envelope. Returns the entry's links.
Result<EntryLinks> verify_entry(const json& ej, uint64_t index, const Checkpoint& cp,
                                const ExportVerifyOptions& options, ExportVerifyReport* report) {
  const std::string where = "entry " + std::to_string(index);
  PROV_ASSIGN_OR_RETURN(std::string created_at, get_string(ej, "created_at", where));
  PROV_ASSIGN_OR_RETURN(std::string env_b64, get_string(ej, "envelope", where));
  auto envelope = base64_decode(env_b64);
  if (!envelope.is_ok()) return envelope.status().with_context(where + ": envelope");
  if (base64_encode(*envelope) != env_b64) {
    return corrupt(where + ": envelope base64 is not canonical");
  }
  PROV_ASSIGN_OR_RETURN(std::string leaf_text, get_string(ej, "leaf_hash", where));
  PROV_ASSIGN_OR_RETURN(Hash claimed_leaf, parse_hash_hex(leaf_text, where + ": leaf_hash"));
  Hash leaf = leaf_hash(entry_leaf_data(created_at, *envelope));
  if (leaf != claimed_leaf) {
    return corrupt(where + ": leaf hash recomputed from created_at and the envelope differs");
  }
  const json& pj = ej.at("inclusion_proof");
  if (!pj.is_array() || pj.size() > kMaxProofHashes) {
    return corrupt(where + ": inclusion_proof is not an array of at most " +
                   std::to_string(kMaxProofHashes) + " hashes");
  }
  std::vector<Hash> path;
  for (size_t k = 0; k < pj.size(); ++k) {
    if (!pj[k].is_string()) return corrupt(where + ": inclusion_proof holds a non-string");
    PROV_ASSIGN_OR_RETURN(Hash h,
                          parse_hash_hex(pj[k].get<std::string>(),
                                         where + ": inclusion_proof[" + std::to_string(k) + "]"));
    path.push_back(h);
  }
  if (!verify_inclusion(leaf, index, cp.tree_size, path, cp.root)) {
    return corrupt(where + ": inclusion proof does not verify against the checkpoint root");
  }
  if (!options.envelope_keys.empty()) {
    bool ok = false;
    for (const PublicKey* k : options.envelope_keys) {
      if (k != nullptr && dsse_verify(*envelope, *k).is_ok()) {
        ok = true;
        break;
      }
    }
    if (!ok) return invalid_argument(where + ": no envelope signature verifies under the keys");
    ++report->envelope_signatures_checked;
  }
  auto fields = parse_statement_envelope(*envelope, options.read_predicate);
  if (!fields.is_ok()) return fields.status().with_context(where);
  const json& statement = ej.at("statement");
  if (!options.read_predicate &&
      (statement.contains("relation") || statement.contains("parent_digest"))) {
    return invalid_argument(where +
                            ": the statement records a relation or parent; verifying it needs "
                            "the predicate's reader (ExportVerifyOptions::read_predicate)");
  }
  EntryLinks f;
  f.index = index;
  f.subjects = fields->subjects;
  f.relation = fields->relation;
  f.parent = fields->parent_digest;
  if (statement != statement_json(f)) {
    return corrupt(where + ": statement differs from the envelope's");
  }
  return f;
}

// What the package claims about one entry, for the comparison with the signed index.
struct PackageEntry {
  std::string leaf_hash;  // lowercase hex, verified against the envelope
  const json* roles;
};

// The signed disclosure index (member `index`): its signature under `key`, its binding to the
// model and the checkpoint, and the package's entries against it, one for one. Any failure is
// kCorrupt: a package whose index does not verify or does not match is not the exported one.
Status verify_index(const json& ij, const std::string& model, const Checkpoint& cp,
                    const std::map<uint64_t, PackageEntry>& package, const PublicKey& key,
                    ExportVerifyReport* report) {
  PROV_RETURN_IF_ERROR(check_keys(ij, {"envelope"}, "disclosure index"));
  PROV_ASSIGN_OR_RETURN(std::string b64, get_string(ij, "envelope", "disclosure index"));
  auto envelope = base64_decode(b64);
  if (!envelope.is_ok()) return corrupt("disclosure index: envelope is not base64");
  if (base64_encode(*envelope) != b64) {
    return corrupt("disclosure index: envelope base64 is not canonical");
  }
  auto env = dsse_verify(*envelope, key);
  if (!env.is_ok()) {
    return corrupt(
        "disclosure index: its signature does not verify under key " + key.key_id().substr(0, 16) +
        " (the index was altered, or another key signed it: " + env.status().message() + ")");
  }
  if (env->payload_type != kInTotoPayloadType) {
    return corrupt("disclosure index: payloadType is not " + std::string(kInTotoPayloadType));
  }
  auto parsed = parse_json(env->payload, "disclosure index");
  if (!parsed.is_ok()) return parsed.status();
  const json& st = *parsed;
  if (!st.is_object() || st.value("_type", "") != "https://in-toto.io/Statement/v1" ||
      st.value("predicateType", "") != kDisclosureIndexPredicate) {
    return corrupt("disclosure index: not an in-toto Statement of type " +
                   std::string(kDisclosureIndexPredicate));
  }
  PROV_RETURN_IF_ERROR(
      check_keys(st, {"_type", "subject", "predicateType", "predicate"}, "disclosure index"));
  const json& pred = st.at("predicate");
  PROV_RETURN_IF_ERROR(
      check_keys(pred, {"model", "checkpoint", "entries"}, "disclosure index predicate"));
  if (st.at("subject") != index_statement(model, cp, json::array()).at("subject") ||
      pred.at("model") != model) {
    return corrupt("disclosure index: it is about another model than " + model);
  }
  if (pred.at("checkpoint") != checkpoint_ref(cp)) {
    return corrupt(
        "disclosure index: it is bound to another checkpoint than the package's (tree "
        "size " +
        std::to_string(cp.tree_size) + ")");
  }
  const json& listed = pred.at("entries");
  if (!listed.is_array() || listed.size() > kMaxEntries) {
    return corrupt("disclosure index: 'entries' is not an array of at most " +
                   std::to_string(kMaxEntries));
  }
  std::set<uint64_t> in_index;
  for (size_t i = 0; i < listed.size(); ++i) {
    const std::string where = "disclosure index: entries[" + std::to_string(i) + "]";
    PROV_RETURN_IF_ERROR(check_keys(listed[i], {"index", "leaf_hash", "roles"}, where));
    PROV_ASSIGN_OR_RETURN(uint64_t index, get_uint(listed[i], "index", where));
    PROV_ASSIGN_OR_RETURN(std::string leaf, get_string(listed[i], "leaf_hash", where));
    if (!in_index.insert(index).second) return corrupt(where + ": entry listed twice");
    auto it = package.find(index);
    if (it == package.end()) {
      return corrupt("entry " + std::to_string(index) +
                     " of the index is missing from the package (the signed index lists it: "
                     "an entry was removed)");
    }
    if (it->second.leaf_hash != leaf) {
      return corrupt("entry " + std::to_string(index) +
                     ": leaf hash differs from the signed index");
    }
    if (*it->second.roles != listed[i].at("roles")) {
      return corrupt("entry " + std::to_string(index) + ": roles differ from the signed index");
    }
  }
  for (const auto& [index, e] : package) {
    if (!in_index.count(index)) {
      return corrupt("entry " + std::to_string(index) +
                     " is in the package but not in the signed index");
    }
  }
  report->complete = true;
  report->index_entries = in_index.size();
  report->index_key_id = key.key_id();
  return Status::ok();
}

Result<ExportVerifyReport> verify_document(const json& doc, const PublicKey& checkpoint_key,
                                           const ExportVerifyOptions& options) {
  if (!doc.is_object()) return corrupt("disclosure is not an object");
  if (!doc.contains("schema")) return corrupt("disclosure: missing member 'schema'");
  PROV_ASSIGN_OR_RETURN(std::string schema, get_string(doc, "schema", "disclosure"));
  if (schema != kDisclosureSchema && schema != kDisclosureSchemaV2 &&
      schema != kDisclosureSchemaV1) {
    return unsupported("disclosure schema '" + schema + "' is not " + kDisclosureSchema + " (or " +
                       kDisclosureSchemaV2 + ", " + kDisclosureSchemaV1 +
                       "); a newer prov may read it");
  }
  // Version 1 has no index; from version 2 on it is optional (a package exported without a key).
  // Version 3 adds the EU training-content fields.
  const bool has_index = schema != kDisclosureSchemaV1 && doc.contains("index");
  const bool has_eu = schema == kDisclosureSchema;
  std::vector<const char*> members = {"schema", "model", "checkpoint", "entries", "lineage"};
  if (has_eu) members.push_back("eu_training_content");
  if (has_index) members.push_back("index");
  PROV_RETURN_IF_ERROR(check_keys(doc, members, "disclosure"));
  ExportVerifyReport report;
  PROV_ASSIGN_OR_RETURN(report.model_digest, get_string(doc, "model", "disclosure"));
  if (report.model_digest.empty() || normalize_digest(report.model_digest) != report.model_digest) {
    return corrupt("disclosure: model digest '" + report.model_digest + "' is not normalised");
  }
  PROV_ASSIGN_OR_RETURN(Checkpoint cp,
                        verify_checkpoint_member(doc.at("checkpoint"), checkpoint_key));
  report.origin = cp.origin;
  report.tree_size = cp.tree_size;
  report.root = cp.root;

  const json& entries = doc.at("entries");
  if (!entries.is_array()) return corrupt("disclosure: 'entries' is not an array");
  if (entries.empty()) return corrupt("disclosure: no entries");
  if (entries.size() > kMaxEntries) {
    return corrupt("disclosure: " + std::to_string(entries.size()) + " entries (limit " +
                   std::to_string(kMaxEntries) + ")");
  }
  std::vector<EntryLinks> facts;
  std::vector<const json*> stated;
  std::map<uint64_t, PackageEntry> package;
  bool have_prev = false;
  uint64_t prev = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    const json& ej = entries[i];
    std::string where = "entries[" + std::to_string(i) + "]";
    PROV_RETURN_IF_ERROR(check_keys(
        ej,
        {"index", "created_at", "envelope", "leaf_hash", "inclusion_proof", "statement", "roles"},
        where));
    PROV_ASSIGN_OR_RETURN(uint64_t index, get_uint(ej, "index", where));
    where = "entry " + std::to_string(index);
    if (have_prev && index <= prev) return corrupt(where + ": entries not in increasing order");
    have_prev = true;
    prev = index;
    if (index >= cp.tree_size) {
      return corrupt(where + ": index outside the checkpoint (tree size " +
                     std::to_string(cp.tree_size) + ")");
    }
    PROV_ASSIGN_OR_RETURN(EntryLinks f, verify_entry(ej, index, cp, options, &report));
    facts.push_back(std::move(f));
    stated.push_back(&ej.at("roles"));
    package[index] = PackageEntry{ej.at("leaf_hash").get<std::string>(), &ej.at("roles")};
  }
  // Completeness, before the lineage is recomputed: a removed entry is named as such rather than
  // as the lineage mismatch it also causes.
  if (has_index) {
    const PublicKey& key = options.index_key != nullptr ? *options.index_key : checkpoint_key;
    PROV_RETURN_IF_ERROR(
        verify_index(doc.at("index"), report.model_digest, cp, package, key, &report));
  } else if (options.require_complete) {
    return invalid_argument(
        "disclosure: the package carries no signed index, so it is not proven complete (entries "
        "may have been removed); export it with a key: prov ledger export --key KEY");
  }
  auto roles = compute_roles(report.model_digest, facts);
  for (size_t i = 0; i < facts.size(); ++i) {
    const auto& r = roles.at(facts[i].index);
    std::string where = "entry " + std::to_string(facts[i].index);
    if (r.empty()) return corrupt(where + ": not about " + report.model_digest);
    if (*stated[i] != json(std::vector<std::string>(r.begin(), r.end()))) {
      return corrupt(where + ": roles differ from the lineage recomputed from the envelopes");
    }
  }
  json lineage = lineage_json(report.model_digest, facts);
  if (doc.at("lineage") != lineage) {
    return corrupt("disclosure: lineage differs from the one recomputed from the envelopes");
  }
  if (has_eu && doc.at("eu_training_content") != eu_training_json(lineage)) {
    return corrupt(
        "disclosure: eu_training_content differs from the one recomputed from the envelopes");
  }
  for (const auto& p : lineage["parents"]) report.parents.push_back(p["digest"]);
  for (const auto& ch : lineage["children"]) report.children.push_back(ch["digest"]);
  report.entries_verified = facts.size();
  return report;
}

}  // namespace

bool is_hf_repo_id(const std::string& s) {
  auto word = [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) != 0 || ch == '_';
  };
  auto part_ok = [&](const std::string& p, size_t max) {
    if (p.empty() || p.size() > max || !word(p.front()) || !word(p.back())) return false;
    for (char ch : p) {
      if (!word(ch) && ch != '-' && ch != '.') return false;
    }
    return true;
  };
  const size_t slash = s.find('/');
  if (slash != std::string::npos && !part_ok(s.substr(0, slash), 256)) return false;
  const std::string name = slash == std::string::npos ? s : s.substr(slash + 1);
  if (!part_ok(name, 96)) return false;
  if (s.find("--") != std::string::npos || s.find("..") != std::string::npos) return false;
  return s.size() < 4 || s.compare(s.size() - 4, 4, ".git") != 0;
}

Result<std::map<std::string, std::string>> parse_repo_ids(const std::vector<std::string>& specs) {
  std::map<std::string, std::string> out;
  for (const auto& spec : specs) {
    const size_t eq = spec.find('=');
    if (eq == std::string::npos) {
      return invalid_argument("--repo-id '" + spec + "' is not DIGEST=org/name");
    }
    const std::string digest = normalize_digest(spec.substr(0, eq));
    const std::string repo = spec.substr(eq + 1);
    if (digest.find(':') == std::string::npos || digest.size() < 10) {
      return invalid_argument("--repo-id '" + spec + "': '" + spec.substr(0, eq) +
                              "' is not a digest (sha256:HEX)");
    }
    if (!is_hf_repo_id(repo)) {
      return invalid_argument("--repo-id '" + spec + "': '" + repo +
                              "' is not a Hugging Face repo id (org/name)");
    }
    auto [it, inserted] = out.emplace(digest, repo);
    if (!inserted && it->second != repo) {
      return invalid_argument("--repo-id maps " + digest + " to both " + it->second + " and " +
                              repo);
    }
  }
  return out;
}

EuSummaryField eu_summary_field(const std::string& relation) {
  auto r = parse_relation(relation);
  if (!r) {
    // Another tool's word for a distillation ("distillation", "distilled_logits"), else "adapter"
    // or a relation prov does not know: the model derives from the parent.
    return relation.rfind("distill", 0) == 0 ? EuSummaryField::kSyntheticDataGenerator
                                             : EuSummaryField::kModelDependency;
  }
  if (is_distilled(*r)) return EuSummaryField::kSyntheticDataGenerator;
  return has_parent(*r) ? EuSummaryField::kModelDependency : EuSummaryField::kNone;
}

Result<std::vector<RecordedParent>> recorded_parents(Ledger& ledger,
                                                     const std::string& model_digest) {
  const std::string model = normalize_digest(model_digest);
  if (model.empty() || model.find(':') == std::string::npos) {
    return invalid_argument("model digest '" + model_digest + "' is not of the form sha256:HEX");
  }
  QueryFilter f;
  f.subject_digest = model;
  PROV_ASSIGN_OR_RETURN(auto entries, ledger.query(f));
  if (entries.empty()) return not_found("the ledger has no entry about " + model);
  std::sort(entries.begin(), entries.end(),
            [](const LedgerEntry& a, const LedgerEntry& b) { return a.index < b.index; });
  const ModelNames names = names_of(ledger, entries);
  std::vector<RecordedParent> out;
  for (const auto& e : entries) {
    if (e.parent_digest.empty()) continue;
    RecordedParent p;
    p.digest = e.parent_digest;
    p.relation = e.relation;
    p.entry = e.index;
    auto it = names.find(e.parent_digest);
    if (it != names.end()) p.names = it->second;
    out.push_back(std::move(p));
  }
  return out;
}

Result<ExportFormat> parse_export_format(const std::string& name) {
  if (name == "disclosure") return ExportFormat::kDisclosure;
  if (name == "spdx3") return ExportFormat::kSpdx3;
  if (name == "cyclonedx") return ExportFormat::kCycloneDx;
  if (name == "hf-card") return ExportFormat::kHfCard;
  return invalid_argument("unknown export format '" + name +
                          "' (choose disclosure, spdx3, cyclonedx or hf-card)");
}

const char* export_format_name(ExportFormat format) {
  switch (format) {
    case ExportFormat::kDisclosure:
      return "disclosure";
    case ExportFormat::kSpdx3:
      return "spdx3";
    case ExportFormat::kCycloneDx:
      return "cyclonedx";
    case ExportFormat::kHfCard:
      return "hf-card";
  }
  return "?";
}

Result<std::string> export_model(Ledger& ledger, const std::string& model_digest,
                                 ExportFormat format, const ExportOptions& options) {
  PROV_ASSIGN_OR_RETURN(Collected c, collect(ledger, model_digest, options));
  std::string created = options.created.empty() ? now_iso() : options.created;
  PROV_ASSIGN_OR_RETURN(RepoIds repos, resolve_repo_ids(c, options));
  try {
    switch (format) {
      case ExportFormat::kDisclosure:
        return export_disclosure(ledger, c, options);
      case ExportFormat::kHfCard:
        return export_hf_card(ledger, c, repos);
      case ExportFormat::kSpdx3:
        return export_spdx3(ledger, c, created, repos);
      case ExportFormat::kCycloneDx:
        return export_cyclonedx(ledger, c, created, repos);
    }
  } catch (const std::exception& e) {
    // json::dump throws on strings that are not UTF-8 (names taken from envelopes).
    return corrupt(std::string("cannot serialise the export: ") + e.what());
  }
  return invalid_argument("unknown export format");
}

Result<ExportVerifyReport> verify_export(const std::string& content,
                                         const PublicKey& checkpoint_key,
                                         const ExportVerifyOptions& options) {
  if (content.size() > kMaxDocumentBytes) {
    return corrupt("disclosure: " + std::to_string(content.size()) + " bytes (limit " +
                   std::to_string(kMaxDocumentBytes) + ")");
  }
  auto parsed = parse_json(content, "disclosure");
  if (!parsed.is_ok()) return parsed.status();
  const json& doc = *parsed;
  try {
    return verify_document(doc, checkpoint_key, options);
  } catch (const std::exception& e) {
    return corrupt(std::string("disclosure: ") + e.what());
  }
}

}  // namespace prov::store
