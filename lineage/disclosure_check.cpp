#include "lineage/disclosure_check.h"

#include <algorithm>
#include <cctype>

#include "core/json.h"
#include "store/ledger_text.h"

namespace prov::lineage {

namespace {

using nlohmann::json;

// The member `key` of `obj` when it is present and of the wanted kind, else null; a present
// member of another kind is an error naming `where`.
Result<const json*> member(const json& obj, const char* key, json::value_t kind,
                           const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return static_cast<const json*>(nullptr);
  const bool ok = kind == json::value_t::boolean  ? it->is_boolean()
                  : kind == json::value_t::string ? it->is_string()
                  : kind == json::value_t::array  ? it->is_array()
                                                  : it->is_object();
  if (!ok) return invalid_argument(where + "." + key + " is not " + json(kind).type_name());
  return &*it;
}

Result<std::string> digest_of(const std::string& value, const std::string& where) {
  std::string problem = store::digest_problem(value);
  if (!problem.empty()) return invalid_argument(where + ": " + problem);
  return store::normalize_digest(value);
}

// A list of models: each a name, or {"name": ..., "digest": ...} with at least one of them.
Result<std::vector<DeclaredModel>> declared_models(const json* list, const std::string& where) {
  std::vector<DeclaredModel> out;
  if (list == nullptr) return out;
  for (size_t i = 0; i < list->size(); ++i) {
    const json& v = (*list)[i];
    const std::string at = where + "[" + std::to_string(i) + "]";
    DeclaredModel m;
    if (v.is_string()) {
      m.name = v.get<std::string>();
    } else if (v.is_object()) {
      PROV_ASSIGN_OR_RETURN(const json* name, member(v, "name", json::value_t::string, at));
      PROV_ASSIGN_OR_RETURN(const json* digest, member(v, "digest", json::value_t::string, at));
      if (name) m.name = name->get<std::string>();
      if (digest) {
        PROV_ASSIGN_OR_RETURN(m.digest, digest_of(digest->get<std::string>(), at + ".digest"));
      }
    } else {
      return invalid_argument(at + " is neither a model name nor {name, digest}");
    }
    if (m.name.empty() && m.digest.empty()) return invalid_argument(at + " names no model");
    out.push_back(std::move(m));
  }
  return out;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The declaration in `list` that names `parent`: by digest when it gives one, else by name.
const DeclaredModel* find_declared(const std::vector<DeclaredModel>& list,
                                   const store::RecordedParent& parent) {
  for (const auto& d : list) {
    if (!d.digest.empty()) {
      if (d.digest == parent.digest) return &d;
      continue;
    }
    for (const auto& n : parent.names) {
      if (lower(n) == lower(d.name)) return &d;
    }
  }
  return nullptr;
}

const char* field_label(store::EuSummaryField f) {
  switch (f) {
    case store::EuSummaryField::kModelDependency:
      return "model dependency (template 1.2(ii))";
    case store::EuSummaryField::kSyntheticDataGenerator:
      return "synthetic-data generator (template 2.5(ii)/(iii))";
    case store::EuSummaryField::kNone:
      break;
  }
  return "none";
}

const char* field_key(store::EuSummaryField f) {
  return f == store::EuSummaryField::kModelDependency          ? "model_dependencies"
         : f == store::EuSummaryField::kSyntheticDataGenerator ? "synthetic_data_generators"
                                                               : "none";
}

}  // namespace

Result<TrainingSummary> parse_training_summary(const std::string& text) {
  PROV_ASSIGN_OR_RETURN(json doc, parse_json(text, "training summary"));
  if (!doc.is_object()) return invalid_argument("training summary is not a JSON object");
  const std::string s = "summary";
  PROV_ASSIGN_OR_RETURN(const json* schema, member(doc, "schema", json::value_t::string, s));
  if (schema == nullptr || *schema != kTrainingSummarySchema) {
    return invalid_argument(std::string("summary.schema must be \"") + kTrainingSummarySchema +
                            "\" (docs/formats/training-summary.md)");
  }
  TrainingSummary out;
  PROV_ASSIGN_OR_RETURN(const json* model, member(doc, "model", json::value_t::object, s));
  if (model) {
    PROV_ASSIGN_OR_RETURN(const json* d,
                          member(*model, "digest", json::value_t::string, s + ".model"));
    if (d) {
      PROV_ASSIGN_OR_RETURN(out.model_digest, digest_of(*d, s + ".model.digest"));
    }
  }
  const json empty = json::object();
  PROV_ASSIGN_OR_RETURN(const json* general,
                        member(doc, "general_information", json::value_t::object, s));
  const std::string g = s + ".general_information";
  PROV_ASSIGN_OR_RETURN(
      const json* ident,
      member(general ? *general : empty, "model_identification", json::value_t::object, g));
  const std::string mi = g + ".model_identification";
  const json& id = ident ? *ident : empty;
  PROV_ASSIGN_OR_RETURN(const json* names,
                        member(id, "versioned_model_names", json::value_t::array, mi));
  if (names) {
    for (const auto& n : *names) {
      if (!n.is_string()) return invalid_argument(mi + ".versioned_model_names holds a non-string");
      out.model_names.push_back(n.get<std::string>());
    }
  }
  PROV_ASSIGN_OR_RETURN(const json* deps,
                        member(id, "model_dependencies", json::value_t::array, mi));
  PROV_ASSIGN_OR_RETURN(out.model_dependencies, declared_models(deps, mi + ".model_dependencies"));
  PROV_ASSIGN_OR_RETURN(const json* sources,
                        member(doc, "list_of_data_sources", json::value_t::object, s));
  const std::string ls = s + ".list_of_data_sources";
  PROV_ASSIGN_OR_RETURN(const json* synthetic, member(sources ? *sources : empty, "synthetic_data",
                                                      json::value_t::object, ls));
  if (synthetic) {
    const std::string sd = ls + ".synthetic_data";
    out.synthetic_data_declared = true;
    PROV_ASSIGN_OR_RETURN(const json* used, member(*synthetic, "used", json::value_t::boolean, sd));
    out.synthetic_data_used = used && used->get<bool>();
    PROV_ASSIGN_OR_RETURN(const json* on_market, member(*synthetic, "generated_by_models_on_market",
                                                        json::value_t::array, sd));
    PROV_ASSIGN_OR_RETURN(out.generators_on_market,
                          declared_models(on_market, sd + ".generated_by_models_on_market"));
    PROV_ASSIGN_OR_RETURN(const json* other, member(*synthetic, "generated_by_other_models",
                                                    json::value_t::array, sd));
    PROV_ASSIGN_OR_RETURN(out.generators_other,
                          declared_models(other, sd + ".generated_by_other_models"));
  }
  return out;
}

bool DisclosureCheck::complete() const {
  return undeclared() == 0;
}

size_t DisclosureCheck::undeclared() const {
  return static_cast<size_t>(std::count_if(findings.begin(), findings.end(),
                                           [](const LineageFinding& f) { return !f.declared; }));
}

Result<DisclosureCheck> check_training_summary(const TrainingSummary& summary,
                                               store::Ledger& ledger,
                                               const std::string& model_digest) {
  DisclosureCheck check;
  std::string model = model_digest.empty() ? summary.model_digest : model_digest;
  if (model.empty()) {
    return invalid_argument(
        "the summary does not name the model's digest (model.digest): give --model DIGEST");
  }
  PROV_ASSIGN_OR_RETURN(check.model_digest, digest_of(model, "model digest"));
  PROV_ASSIGN_OR_RETURN(auto parents, store::recorded_parents(ledger, check.model_digest));
  std::vector<DeclaredModel> generators = summary.generators_on_market;
  generators.insert(generators.end(), summary.generators_other.begin(),
                    summary.generators_other.end());
  std::vector<const DeclaredModel*> matched;
  for (const auto& p : parents) {
    const store::EuSummaryField field = store::eu_summary_field(p.relation);
    if (field == store::EuSummaryField::kNone) continue;
    auto same = std::find_if(
        check.findings.begin(), check.findings.end(),
        [&](const LineageFinding& f) { return f.parent.digest == p.digest && f.field == field; });
    if (same != check.findings.end()) {
      same->entries.push_back(p.entry);
      continue;
    }
    LineageFinding f;
    f.parent = p;
    f.entries = {p.entry};
    f.field = field;
    const bool dependency = field == store::EuSummaryField::kModelDependency;
    const auto& here = dependency ? summary.model_dependencies : generators;
    const auto& there = dependency ? generators : summary.model_dependencies;
    if (const DeclaredModel* d = find_declared(here, p)) {
      f.declared = true;
      f.declared_as = d->name.empty() ? d->digest : d->name;
      matched.push_back(d);
    } else if (const DeclaredModel* d = find_declared(there, p)) {
      matched.push_back(d);
      f.note = dependency ? "declared only as a synthetic-data generator (2.5), but the model "
                            "shares its weights: a model dependency (1.2(ii))"
                          : "declared only as a model dependency (1.2(ii)), but the model was "
                            "trained on its outputs: a synthetic-data generator (2.5(ii)/(iii))";
    } else if (!dependency && summary.synthetic_data_declared && !summary.synthetic_data_used) {
      f.note = "the summary says no synthetic data was used (2.5(i))";
    } else {
      f.note = "not declared";
    }
    check.findings.push_back(std::move(f));
  }
  auto unconfirmed = [&](const std::vector<DeclaredModel>& list, const char* where) {
    for (const auto& d : list) {
      if (std::find(matched.begin(), matched.end(), &d) != matched.end()) continue;
      check.unconfirmed.push_back(std::string(where) + ": " + (d.name.empty() ? d.digest : d.name));
    }
  };
  unconfirmed(summary.model_dependencies, "model_dependencies");
  unconfirmed(generators, "synthetic_data_generators");
  return check;
}

std::string disclosure_check_text(const DisclosureCheck& check) {
  std::string out = "model " + check.model_digest + ": " + std::to_string(check.findings.size()) +
                    " parent(s) in the ledger, " + std::to_string(check.undeclared()) +
                    " undeclared\n";
  for (bool declared : {false, true}) {
    for (const auto& f : check.findings) {
      if (f.declared != declared) continue;
      std::string entries;
      for (uint64_t e : f.entries) entries += (entries.empty() ? "" : ", ") + std::to_string(e);
      out += std::string(declared ? "  declared    " : "  UNDECLARED  ") + f.parent.digest + " (" +
             (f.parent.relation.empty() ? "unspecified" : f.parent.relation) + ", ledger entry " +
             entries + "): " + field_label(f.field);
      if (!f.parent.names.empty()) out += ", known as \"" + f.parent.names.front() + "\"";
      out += declared ? ", declared as \"" + f.declared_as + "\"\n" : ": " + f.note + "\n";
    }
  }
  for (const auto& u : check.unconfirmed) {
    out += "  unconfirmed " + u + ": no ledger entry records it as a parent of the model\n";
  }
  return out;
}

json disclosure_check_json(const DisclosureCheck& check) {
  json findings = json::array();
  for (const auto& f : check.findings) {
    json j = {{"digest", f.parent.digest},   {"relation", f.parent.relation},
              {"entries", f.entries},        {"names", f.parent.names},
              {"field", field_key(f.field)}, {"declared", f.declared}};
    if (f.declared) j["declared_as"] = f.declared_as;
    if (!f.note.empty()) j["note"] = f.note;
    findings.push_back(std::move(j));
  }
  return {{"model", check.model_digest},
          {"complete", check.complete()},
          {"undeclared", check.undeclared()},
          {"findings", findings},
          {"unconfirmed", check.unconfirmed}};
}

}  // namespace prov::lineage
