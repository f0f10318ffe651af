#include "store/export.h"

#include <time.h>

#include <algorithm>
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

// Names recorded about an envelope's models ("alg:hex" -> name): the subject names of its in-toto
// Statement, then the parent's name as the predicate's reader gives it (Ledger::facts_of). The
// first name met for a digest is kept; envelopes that do not parse contribute nothing.
void collect_names(const Ledger& ledger, const std::string& envelope,
                   std::map<std::string, std::string>* names) {
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
        std::string d = normalize_digest(it.key() + ":" + it.value().get<std::string>());
        names->emplace(d, name->get<std::string>());
      }
    }
  }
  auto facts = ledger.facts_of(envelope);
  if (facts.is_ok() && !facts->parent_digest.empty() && !facts->parent_name.empty()) {
    names->emplace(facts->parent_digest, facts->parent_name);
  }
}

std::map<std::string, std::string> model_names(Ledger& ledger, const Collected& c) {
  std::map<std::string, std::string> names;
  for (const auto& e : c.entries) collect_names(ledger, e.envelope, &names);
  // A parent referenced only as a parent may have entries of its own outside the lineage.
  for (const auto& f : c.facts) {
    if (f.parent.empty() || names.count(f.parent)) continue;
    QueryFilter q;
    q.subject_digest = f.parent;
    q.limit = 8;
    auto more = ledger.query(q);
    if (!more.is_ok()) continue;
    for (const auto& e : *more) collect_names(ledger, e.envelope, &names);
  }
  return names;
}

std::string name_or_digest(const std::map<std::string, std::string>& names,
                           const std::string& digest) {
  auto it = names.find(digest);
  return it == names.end() ? digest : it->second;
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

Result<std::string> export_disclosure(Ledger& ledger, const Collected& c,
                                      const ExportOptions& options) {
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
              {"lineage", lineage_json(c.model, c.facts)}};
  if (options.index_key != nullptr) {
    std::string payload = index_statement(c.model, c.checkpoint, index_entries).dump();
    PROV_ASSIGN_OR_RETURN(std::string env,
                          dsse_sign(kInTotoPayloadType, payload, *options.index_key));
    doc["index"] = {{"envelope", base64_encode(env)}};
  }
  return doc.dump(2) + "\n";
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

Result<std::string> export_hf_card(Ledger& ledger, const Collected& c) {
  auto names = model_names(ledger, c);
  std::vector<std::string> parents, relations;
  std::vector<uint64_t> parent_entries;
  for (const auto& f : c.facts) {
    if (f.parent.empty() ||
        std::find(f.subjects.begin(), f.subjects.end(), c.model) == f.subjects.end()) {
      continue;
    }
    if (std::find(parents.begin(), parents.end(), f.parent) == parents.end()) {
      parents.push_back(f.parent);
    }
    relations.push_back(f.relation);
    parent_entries.push_back(f.index);
  }
  std::string hf;
  bool all_same = !relations.empty();
  for (const auto& r : relations) {
    std::string m = hf_relation(r);
    if (m.empty() || (!hf.empty() && m != hf)) all_same = false;
    if (hf.empty()) hf = m;
  }
  if (!all_same) hf.clear();

  std::string out = "---\n";
  if (parents.size() == 1) {
    out += "base_model: " + yq(name_or_digest(names, parents[0])) + "\n";
  } else if (parents.size() > 1) {
    out += "base_model:\n";
    for (const auto& p : parents) out += "  - " + yq(name_or_digest(names, p)) + "\n";
  }
  if (!hf.empty()) {
    out += "base_model_relation: " + hf + "\n";
  } else if (!relations.empty()) {
    out +=
        "# base_model_relation omitted: the recorded relation has no Hugging Face equivalent\n"
        "# (allowed: adapter, merge, quantized, finetune); see prov_provenance.relations.\n";
  }
  out += "prov_provenance:\n";
  out += "  model_digest: " + yq(c.model) + "\n";
  if (!parents.empty()) {
    out += "  base_model_digests:\n";
    for (const auto& p : parents) out += "    - " + yq(p) + "\n";
    out += "  relations:\n";
    for (const auto& r : relations) out += "    - " + yq(r) + "\n";
    out += "  ledger_entries:\n";
    for (uint64_t i : parent_entries) out += "    - " + std::to_string(i) + "\n";
  }
  out += "  ledger_origin: " + yq(c.checkpoint.origin) + "\n";
  out += "  ledger_tree_size: " + std::to_string(c.checkpoint.tree_size) + "\n";
  out += "  ledger_root: " + yq(root_hex(c)) + "\n";
  out += "---\n\n## Provenance\n\n";
  out +=
      "This model (`" + c.model + "`) is recorded in the prov ledger `" + c.checkpoint.origin + "`";
  if (!parents.empty()) {
    out += " as derived from ";
    for (size_t i = 0; i < parents.size(); ++i) {
      if (i) out += ", ";
      out += "`" + name_or_digest(names, parents[i]) + "`";
      if (i < relations.size() && !relations[i].empty()) out += " (" + relations[i] + ")";
    }
  }
  out += ". The " + std::to_string(c.entries.size()) +
         " ledger entries about it are included in the signed checkpoint of tree size " +
         std::to_string(c.checkpoint.tree_size) + " with root `" + root_hex(c) +
         "` (hex); a `prov ledger export --format disclosure` package verifies them offline.\n";
  return out;
}

// ---- SPDX 3.0.1 ----

// SPDX 3 HashAlgorithm vocabulary name for a digest algorithm, or "" when not mapped.
std::string spdx_hash_alg(const std::string& alg) {
  static const std::set<std::string> known = {"sha1",       "sha224",   "sha256",   "sha384",
                                              "sha512",     "sha3_256", "sha3_384", "sha3_512",
                                              "blake2b256", "blake3",   "md5"};
  std::string a = alg;
  std::replace(a.begin(), a.end(), '-', '_');
  return known.count(a) ? a : "";
}

std::pair<std::string, std::string> split_digest(const std::string& d) {
  size_t colon = d.find(':');
  if (colon == std::string::npos) return {"", d};
  return {d.substr(0, colon), d.substr(colon + 1)};
}

bool is_distillation(const std::string& relation) {
  return relation.rfind("distilled", 0) == 0;
}

Result<std::string> export_spdx3(Ledger& ledger, const Collected& c, const std::string& created) {
  auto names = model_names(ledger, c);
  const std::string ci = "_:creationinfo";
  const std::string doc_id = "urn:prov:disclosure:" + root_hex(c) + ":" + c.model;
  json graph = json::array();
  graph.push_back({{"type", "CreationInfo"},
                   {"@id", ci},
                   {"specVersion", "3.0.1"},
                   {"created", created},
                   {"createdBy", {"urn:prov:agent:prov"}},
                   {"createdUsing", {"urn:prov:tool:prov"}}});
  graph.push_back({{"type", "SoftwareAgent"},
                   {"spdxId", "urn:prov:agent:prov"},
                   {"name", "prov ledger export"},
                   {"creationInfo", ci}});
  graph.push_back(
      {{"type", "Tool"}, {"spdxId", "urn:prov:tool:prov"}, {"name", "prov"}, {"creationInfo", ci}});
  std::vector<std::string> element_ids;
  std::set<std::string> models{c.model};
  for (const auto& f : c.facts) {
    for (const auto& s : f.subjects) models.insert(s);
    if (!f.parent.empty()) models.insert(f.parent);
  }
  auto model_id = [](const std::string& d) { return "urn:prov:model:" + d; };
  for (const auto& m : models) {
    json pkg = {{"type", "ai_AIPackage"},
                {"spdxId", model_id(m)},
                {"creationInfo", ci},
                {"name", name_or_digest(names, m)},
                {"software_primaryPurpose", "model"}};
    auto [alg, hex] = split_digest(m);
    std::string spdx_alg = spdx_hash_alg(alg);
    if (!spdx_alg.empty()) {
      pkg["verifiedUsing"] = {{{"type", "Hash"}, {"algorithm", spdx_alg}, {"hashValue", hex}}};
    } else {
      pkg["comment"] = "digest " + m;
    }
    graph.push_back(pkg);
    element_ids.push_back(model_id(m));
  }
  for (size_t i = 0; i < c.entries.size(); ++i) {
    const LedgerEntry& e = c.entries[i];
    const EntryLinks& f = c.facts[i];
    std::string ev_id = "urn:prov:ledger-entry:" + std::to_string(e.index);
    graph.push_back(
        {{"type", "software_File"},
         {"spdxId", ev_id},
         {"creationInfo", ci},
         {"name", "ledger-entry-" + std::to_string(e.index) + ".dsse.json"},
         {"software_contentType", kDsseContentType},
         {"verifiedUsing",
          {{{"type", "Hash"}, {"algorithm", "sha256"}, {"hashValue", to_hex(sha256(e.envelope))}}}},
         {"comment", "DSSE envelope of prov ledger entry " + std::to_string(e.index) + " (leaf " +
                         to_hex(e.leaf_hash) + "), appended " + e.created_at}});
    element_ids.push_back(ev_id);
    std::vector<std::string> ev_targets;
    for (const auto& s : f.subjects) ev_targets.push_back(model_id(s));
    if (f.parent.empty()) {
      for (const auto& s : f.subjects) {
        std::string rid = "urn:prov:relationship:" + std::to_string(e.index) + ":evidence:" + s;
        graph.push_back({{"type", "Relationship"},
                         {"spdxId", rid},
                         {"creationInfo", ci},
                         {"from", model_id(s)},
                         {"to", {ev_id}},
                         {"relationshipType", "hasEvidence"}});
        element_ids.push_back(rid);
      }
      continue;
    }
    // Seen from the exported model: edges above it read "descendantOf", edges below "ancestorOf".
    const auto& roles = c.roles.at(e.index);
    bool below = roles.count("descendant") && !roles.count("ancestor");
    for (const auto& s : f.subjects) {
      std::string base = "urn:prov:relationship:" + std::to_string(e.index) + ":" + s;
      std::string comment = "prov relation: " + (f.relation.empty() ? "unspecified" : f.relation) +
                            " (ledger entry " + std::to_string(e.index) + ")";
      json rel = {
          {"type", "Relationship"}, {"spdxId", base}, {"creationInfo", ci}, {"comment", comment}};
      if (below) {
        rel["from"] = model_id(f.parent);
        rel["to"] = {model_id(s)};
        rel["relationshipType"] = "ancestorOf";
      } else {
        rel["from"] = model_id(s);
        rel["to"] = {model_id(f.parent)};
        rel["relationshipType"] = "descendantOf";
      }
      graph.push_back(rel);
      element_ids.push_back(base);
      std::string eid = base + ":evidence";
      graph.push_back({{"type", "Relationship"},
                       {"spdxId", eid},
                       {"creationInfo", ci},
                       {"from", base},
                       {"to", {ev_id}},
                       {"relationshipType", "hasEvidence"}});
      element_ids.push_back(eid);
    }
  }
  graph.push_back(
      {{"type", "SpdxDocument"},
       {"spdxId", doc_id},
       {"creationInfo", ci},
       {"name", "prov disclosure of " + c.model},
       {"profileConformance", {"core", "software", "ai"}},
       {"rootElement", {model_id(c.model)}},
       {"element", element_ids},
       {"comment", "Lineage recorded in the prov ledger " + c.checkpoint.origin +
                       ", signed checkpoint tree size " + std::to_string(c.checkpoint.tree_size) +
                       ", root " + root_hex(c) + " (hex)"}});
  json doc = {{"@context", "https://spdx.org/rdf/3.0.1/spdx-context.jsonld"}, {"@graph", graph}};
  return doc.dump(2) + "\n";
}

// ---- CycloneDX 1.6 ----

std::string cdx_hash_alg(const std::string& alg) {
  static const std::map<std::string, std::string> m = {
      {"sha1", "SHA-1"},        {"sha256", "SHA-256"},
      {"sha384", "SHA-384"},    {"sha512", "SHA-512"},
      {"sha3_256", "SHA3-256"}, {"sha3_384", "SHA3-384"},
      {"sha3_512", "SHA3-512"}, {"blake2b256", "BLAKE2b-256"},
      {"blake3", "BLAKE3"},     {"md5", "MD5"}};
  auto it = m.find(alg);
  return it == m.end() ? "" : it->second;
}

// A UUID (RFC 9562 version 8 layout) derived from `seed`, so an export is reproducible.
std::string uuid_from(const std::string& seed) {
  Digest d = sha256(seed);
  d[6] = static_cast<uint8_t>((d[6] & 0x0f) | 0x80);
  d[8] = static_cast<uint8_t>((d[8] & 0x3f) | 0x80);
  std::string h = to_hex(d);
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
         "-" + h.substr(20, 12);
}

// The CycloneDX declarations: one claim per ledger entry (a sentence naming subject, relation and
// parent) with the DSSE envelope as its evidence, and one attestation mapping to all claims.
json cdx_declarations(const Collected& c) {
  json claims = json::array();
  json evidence = json::array();
  json claim_refs = json::array();
  for (const auto& e : c.entries) {
    std::string n = std::to_string(e.index);
    const EntryLinks& f = c.facts[&e - &c.entries[0]];
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

Result<std::string> export_cyclonedx(Ledger& ledger, const Collected& c,
                                     const std::string& created) {
  auto names = model_names(ledger, c);
  auto ref = [](const std::string& d) { return "model:" + d; };
  auto component = [&](const std::string& d) {
    json comp = {{"type", "machine-learning-model"},
                 {"bom-ref", ref(d)},
                 {"name", name_or_digest(names, d)}};
    auto [alg, hex] = split_digest(d);
    std::string a = cdx_hash_alg(alg);
    if (!a.empty()) comp["hashes"] = {{{"alg", a}, {"content", hex}}};
    return comp;
  };
  // Ancestors (all, direct parents first) and descendants of the model.
  std::vector<std::string> ancestors, descendants;
  json props = json::array();
  for (size_t i = 0; i < c.facts.size(); ++i) {
    const EntryLinks& f = c.facts[i];
    if (f.parent.empty()) continue;
    const auto& roles = c.roles.at(f.index);
    bool direct_parent =
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
        std::string v = f.parent + " (" + (f.relation.empty() ? "unspecified" : f.relation) +
                        ", ledger entry " + std::to_string(f.index) + ")";
        props.push_back(
            {{"name", is_distillation(f.relation) ? "prov:euaiact:synthetic_data_from_model"
                                                  : "prov:euaiact:model_dependency"},
             {"value", v}});
        props.push_back({{"name", "prov:relation"}, {"value", f.relation}});
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
  model["properties"] = props;

  json doc = {{"bomFormat", "CycloneDX"},
              {"specVersion", "1.6"},
              {"serialNumber", "urn:uuid:" + uuid_from(c.model + "\n" + c.note)},
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

Status check_keys(const json& obj, std::initializer_list<const char*> keys,
                  const std::string& where) {
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
  if (schema != kDisclosureSchema && schema != kDisclosureSchemaV1) {
    return unsupported("disclosure schema '" + schema + "' is not " + kDisclosureSchema + " (or " +
                       kDisclosureSchemaV1 + "); a newer prov may read it");
  }
  // Version 1 has no index; in version 2 it is optional (a package exported without a key).
  const bool has_index = schema == kDisclosureSchema && doc.contains("index");
  if (has_index) {
    PROV_RETURN_IF_ERROR(check_keys(
        doc, {"schema", "model", "checkpoint", "entries", "lineage", "index"}, "disclosure"));
  } else {
    PROV_RETURN_IF_ERROR(
        check_keys(doc, {"schema", "model", "checkpoint", "entries", "lineage"}, "disclosure"));
  }
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
  for (const auto& p : lineage["parents"]) report.parents.push_back(p["digest"]);
  for (const auto& ch : lineage["children"]) report.children.push_back(ch["digest"]);
  report.entries_verified = facts.size();
  return report;
}

}  // namespace

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
  try {
    switch (format) {
      case ExportFormat::kDisclosure:
        return export_disclosure(ledger, c, options);
      case ExportFormat::kHfCard:
        return export_hf_card(ledger, c);
      case ExportFormat::kSpdx3:
        return export_spdx3(ledger, c, created);
      case ExportFormat::kCycloneDx:
        return export_cyclonedx(ledger, c, created);
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
