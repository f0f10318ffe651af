#include "lineage/report.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

namespace prov::lineage {

namespace {

using nlohmann::json;

const std::vector<std::string> kConfidences = {"high", "medium", "low"};
const std::vector<std::string> kNodeKinds = {"candidate", "reference", "control"};

const std::vector<std::string>& relation_list() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (int i = 0; i < kRelationCount; ++i) out.push_back(relation_table()[i].name);
    return out;
  }();
  return names;
}

// ---------------------------------------------------------------------------------------------
// Reading, with field paths in error messages

std::string join_path(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

std::string index_path(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

std::string short_dump(const json& v) {
  std::string s = v.dump(-1, ' ', true, json::error_handler_t::replace);
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

std::string describe(const json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number()) return "the number " + short_dump(v);
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  return "an object";
}

Status missing(const std::string& path) {
  return invalid_argument("report field \"" + path + "\" is missing");
}

Status ill_typed(const std::string& path, const std::string& want, const json& got) {
  return invalid_argument("report field \"" + path + "\" must be " + want + ", not " +
                          describe(got));
}

const json* member(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

// A required member; *out is never null on success.
Status require(const json& obj, const std::string& path, const char* key, const json** out) {
  *out = member(obj, key);
  if (*out == nullptr) return missing(join_path(path, key));
  return Status::ok();
}

Status read_string(const json& obj, const std::string& path, const char* key, std::string* out) {
  const json* v;
  PROV_RETURN_IF_ERROR(require(obj, path, key, &v));
  if (!v->is_string()) return ill_typed(join_path(path, key), "a string", *v);
  *out = v->get<std::string>();
  return Status::ok();
}

// Optional string: absent or null gives nullopt.
Status read_opt_string(const json& obj, const std::string& path, const char* key,
                       std::optional<std::string>* out) {
  const json* v = member(obj, key);
  out->reset();
  if (v == nullptr || v->is_null()) return Status::ok();
  if (!v->is_string()) return ill_typed(join_path(path, key), "a string", *v);
  *out = v->get<std::string>();
  return Status::ok();
}

Status read_enum(const json& obj, const std::string& path, const char* key,
                 const std::vector<std::string>& allowed, std::string* out) {
  PROV_RETURN_IF_ERROR(read_string(obj, path, key, out));
  if (std::find(allowed.begin(), allowed.end(), *out) != allowed.end()) return Status::ok();
  std::string list;
  for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
  return invalid_argument("report field \"" + join_path(path, key) + "\" is " +
                          short_dump(json(*out)) + ", not one of: " + list);
}

// A p-value: a finite number in [0, 1], or null when `nullable`.
Status check_p(const json& v, const std::string& path, bool nullable, std::optional<double>* out) {
  out->reset();
  if (nullable && v.is_null()) return Status::ok();
  const std::string want = nullable ? "a number in [0, 1] or null" : "a number in [0, 1]";
  if (!v.is_number()) return ill_typed(path, want, v);
  const double d = v.get<double>();
  if (!std::isfinite(d) || d < 0.0 || d > 1.0) return ill_typed(path, want, v);
  *out = d;
  return Status::ok();
}

Status read_p(const json& obj, const std::string& path, const char* key,
              std::optional<double>* out) {
  const json* v;
  PROV_RETURN_IF_ERROR(require(obj, path, key, &v));
  return check_p(*v, join_path(path, key), true, out);
}

Status read_number(const json& obj, const std::string& path, const char* key, bool nullable,
                   std::optional<double>* out) {
  const json* v;
  PROV_RETURN_IF_ERROR(require(obj, path, key, &v));
  out->reset();
  if (nullable && v->is_null()) return Status::ok();
  const std::string want = nullable ? "a finite number or null" : "a finite number";
  if (!v->is_number() || !std::isfinite(v->get<double>())) {
    return ill_typed(join_path(path, key), want, *v);
  }
  *out = v->get<double>();
  return Status::ok();
}

Status check_int(const json& v, const std::string& path, int64_t min, int64_t* out) {
  const std::string want = "an integer >= " + std::to_string(min);
  if (!v.is_number_integer()) return ill_typed(path, want, v);
  if (v.is_number_unsigned() &&
      v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return ill_typed(path, want, v);
  }
  *out = v.get<int64_t>();
  if (*out < min) return ill_typed(path, want, v);
  return Status::ok();
}

// Optional integer: absent or null gives nullopt.
Status read_opt_int(const json& obj, const std::string& path, const char* key, int64_t min,
                    std::optional<int64_t>* out) {
  const json* v = member(obj, key);
  out->reset();
  if (v == nullptr || v->is_null()) return Status::ok();
  int64_t i = 0;
  PROV_RETURN_IF_ERROR(check_int(*v, join_path(path, key), min, &i));
  *out = i;
  return Status::ok();
}

Status read_object(const json& obj, const std::string& path, const char* key, const json** out) {
  PROV_RETURN_IF_ERROR(require(obj, path, key, out));
  if (!(*out)->is_object()) return ill_typed(join_path(path, key), "an object", **out);
  return Status::ok();
}

Status read_array(const json& obj, const std::string& path, const char* key, const json** out) {
  PROV_RETURN_IF_ERROR(require(obj, path, key, out));
  if (!(*out)->is_array()) return ill_typed(join_path(path, key), "an array", **out);
  return Status::ok();
}

Status need_object(const json& v, const std::string& path) {
  if (!v.is_object()) return ill_typed(path, "an object", v);
  return Status::ok();
}

bool is_hex64(const std::string& s) {
  if (s.size() != 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  });
}

// obj.digest.sha256: 64 hex digits.
Status read_sha256(const json& obj, const std::string& path, std::string* out) {
  const json* digest;
  PROV_RETURN_IF_ERROR(read_object(obj, path, "digest", &digest));
  const std::string dpath = join_path(path, "digest");
  PROV_RETURN_IF_ERROR(read_string(*digest, dpath, "sha256", out));
  if (!is_hex64(*out)) {
    return invalid_argument("report field \"" + join_path(dpath, "sha256") +
                            "\" must be 64 hexadecimal digits, not " + short_dump(json(*out)));
  }
  return Status::ok();
}

Status parse_graph(const json& g, const std::string& path, ReportGraph* out) {
  PROV_RETURN_IF_ERROR(need_object(g, path));
  const json* nodes;
  PROV_RETURN_IF_ERROR(read_array(g, path, "nodes", &nodes));
  std::map<std::string, size_t> by_id;
  for (size_t i = 0; i < nodes->size(); ++i) {
    const json& n = (*nodes)[i];
    const std::string npath = index_path(join_path(path, "nodes"), i);
    PROV_RETURN_IF_ERROR(need_object(n, npath));
    ReportNode node;
    PROV_RETURN_IF_ERROR(read_string(n, npath, "id", &node.id));
    PROV_RETURN_IF_ERROR(read_string(n, npath, "label", &node.label));
    PROV_RETURN_IF_ERROR(read_enum(n, npath, "kind", kNodeKinds, &node.kind));
    auto [it, inserted] = by_id.emplace(node.id, i);
    if (!inserted) {
      return invalid_argument("report field \"" + join_path(npath, "id") + "\" repeats the id of " +
                              index_path(join_path(path, "nodes"), it->second));
    }
    out->nodes.push_back(std::move(node));
  }
  const json* edges;
  PROV_RETURN_IF_ERROR(read_array(g, path, "edges", &edges));
  for (size_t i = 0; i < edges->size(); ++i) {
    const json& e = (*edges)[i];
    const std::string epath = index_path(join_path(path, "edges"), i);
    PROV_RETURN_IF_ERROR(need_object(e, epath));
    ReportEdge edge;
    for (const char* end : {"from", "to"}) {
      std::string id;
      PROV_RETURN_IF_ERROR(read_string(e, epath, end, &id));
      auto it = by_id.find(id);
      if (it == by_id.end()) {
        return invalid_argument("report field \"" + join_path(epath, end) + "\" is " +
                                short_dump(json(id)) + ", which names no node in " +
                                join_path(path, "nodes"));
      }
      (std::string(end) == "from" ? edge.from : edge.to) = it->second;
    }
    PROV_RETURN_IF_ERROR(read_string(e, epath, "relation", &edge.relation));
    PROV_RETURN_IF_ERROR(read_p(e, epath, "p_value", &edge.p_value));
    out->edges.push_back(std::move(edge));
  }
  return Status::ok();
}

Status read_environment(const json& e, ReportEnvironment* env) {
  PROV_RETURN_IF_ERROR(need_object(e, "environment"));
  PROV_RETURN_IF_ERROR(read_string(e, "environment", "device", &env->device));
  PROV_RETURN_IF_ERROR(read_string(e, "environment", "dtype", &env->dtype));
  PROV_RETURN_IF_ERROR(read_opt_int(e, "environment", "threads", 1, &env->threads));
  if (const json* runs = member(e, "runs"); runs != nullptr && !runs->is_null()) {
    if (!runs->is_array()) return ill_typed("environment.runs", "an array", *runs);
    env->runs.emplace();
    for (size_t i = 0; i < runs->size(); ++i) {
      const json& x = (*runs)[i];
      const std::string path = index_path("environment.runs", i);
      PROV_RETURN_IF_ERROR(need_object(x, path));
      ReportRun run;
      PROV_RETURN_IF_ERROR(read_string(x, path, "model", &run.model));
      PROV_RETURN_IF_ERROR(read_string(x, path, "role", &run.role));
      PROV_RETURN_IF_ERROR(read_string(x, path, "source", &run.source));
      PROV_RETURN_IF_ERROR(read_string(x, path, "device", &run.device));
      PROV_RETURN_IF_ERROR(read_string(x, path, "dtype", &run.dtype));
      PROV_RETURN_IF_ERROR(read_opt_string(x, path, "backend", &run.backend));
      PROV_RETURN_IF_ERROR(read_opt_string(x, path, "tool_version", &run.tool_version));
      PROV_RETURN_IF_ERROR(read_opt_string(x, path, "engine", &run.engine));
      PROV_RETURN_IF_ERROR(read_opt_string(x, path, "logprob_mode", &run.logprob_mode));
      PROV_RETURN_IF_ERROR(read_opt_int(x, path, "top_k_limit", 1, &run.top_k_limit));
      PROV_RETURN_IF_ERROR(read_opt_string(x, path, "statistics", &run.statistics));
      env->runs->push_back(std::move(run));
    }
  }
  return Status::ok();
}

Result<Report> read_report(const json& r) {
  Report rep;
  if (!r.is_object()) return invalid_argument("report must be a JSON object, not " + describe(r));
  const json* v;
  PROV_RETURN_IF_ERROR(require(r, "", "report_version", &v));
  int64_t version = 0;
  PROV_RETURN_IF_ERROR(check_int(*v, "report_version", 1, &version));
  if (version != 1) {
    return unsupported("report_version " + std::to_string(version) +
                       " is not supported (this renderer reads version 1)");
  }

  const json* c;
  PROV_RETURN_IF_ERROR(read_object(r, "", "candidate", &c));
  PROV_RETURN_IF_ERROR(read_string(*c, "candidate", "name", &rep.candidate.name));
  PROV_RETURN_IF_ERROR(read_opt_string(*c, "candidate", "path", &rep.candidate.path));
  PROV_RETURN_IF_ERROR(read_sha256(*c, "candidate", &rep.candidate.sha256));
  PROV_RETURN_IF_ERROR(read_opt_string(*c, "candidate", "source", &rep.candidate.source));

  const json* vd;
  PROV_RETURN_IF_ERROR(read_object(r, "", "verdict", &vd));
  ReportVerdict& verdict = rep.verdict;
  std::string relation;
  PROV_RETURN_IF_ERROR(read_enum(*vd, "verdict", "relation", relation_list(), &relation));
  verdict.relation = *parse_relation(relation);
  PROV_RETURN_IF_ERROR(require(*vd, "verdict", "parent", &v));
  if (v->is_string()) {
    verdict.parent = v->get<std::string>();
  } else if (!v->is_null()) {
    return ill_typed("verdict.parent", "a string or null", *v);
  }
  if (const json* ps = member(*vd, "parents"); ps != nullptr && !ps->is_null()) {
    if (!ps->is_array()) return ill_typed("verdict.parents", "an array of strings", *ps);
    verdict.parents.emplace();
    for (size_t i = 0; i < ps->size(); ++i) {
      if (!(*ps)[i].is_string()) {
        return ill_typed(index_path("verdict.parents", i), "a string", (*ps)[i]);
      }
      verdict.parents->push_back((*ps)[i].get<std::string>());
    }
  }
  PROV_RETURN_IF_ERROR(read_p(*vd, "verdict", "p_value", &verdict.p_value));
  std::string confidence;
  PROV_RETURN_IF_ERROR(read_enum(*vd, "verdict", "confidence", kConfidences, &confidence));
  verdict.confidence = *parse_confidence(confidence);
  PROV_RETURN_IF_ERROR(read_opt_string(*vd, "verdict", "parent_digest", &verdict.parent_digest));
  PROV_RETURN_IF_ERROR(read_string(*vd, "verdict", "summary", &verdict.summary));

  const json* refs;
  PROV_RETURN_IF_ERROR(read_array(r, "", "references", &refs));
  for (size_t i = 0; i < refs->size(); ++i) {
    const json& x = (*refs)[i];
    const std::string path = index_path("references", i);
    PROV_RETURN_IF_ERROR(need_object(x, path));
    ReportReference ref;
    PROV_RETURN_IF_ERROR(read_string(x, path, "name", &ref.name));
    PROV_RETURN_IF_ERROR(read_sha256(x, path, &ref.sha256));
    PROV_RETURN_IF_ERROR(read_string(x, path, "relation", &ref.relation));
    PROV_RETURN_IF_ERROR(read_p(x, path, "p_value", &ref.p_value));
    if (const json* h = member(x, "p_value_holm"); h != nullptr) {
      ref.has_holm = true;
      PROV_RETURN_IF_ERROR(check_p(*h, join_path(path, "p_value_holm"), true, &ref.p_value_holm));
    }
    PROV_RETURN_IF_ERROR(read_opt_string(x, path, "path", &ref.path));
    if (const json* o = member(x, "outputs"); o != nullptr && !o->is_null()) {
      const std::string opath = join_path(path, "outputs");
      PROV_RETURN_IF_ERROR(need_object(*o, opath));
      ReportReferenceOutputs out;
      PROV_RETURN_IF_ERROR(read_string(*o, opath, "relation", &out.relation));
      PROV_RETURN_IF_ERROR(read_p(*o, opath, "p_value", &out.p_value));
      if (const json* h = member(*o, "p_value_holm"); h != nullptr) {
        PROV_RETURN_IF_ERROR(
            check_p(*h, join_path(opath, "p_value_holm"), true, &out.p_value_holm));
      }
      ref.outputs = std::move(out);
    }
    rep.references.push_back(std::move(ref));
  }

  const json* ev;
  PROV_RETURN_IF_ERROR(read_array(r, "", "evidence", &ev));
  for (size_t i = 0; i < ev->size(); ++i) {
    const json& x = (*ev)[i];
    const std::string path = index_path("evidence", i);
    PROV_RETURN_IF_ERROR(need_object(x, path));
    ReportEvidence e;
    PROV_RETURN_IF_ERROR(read_string(x, path, "reference", &e.reference));
    PROV_RETURN_IF_ERROR(read_enum(x, path, "layer", evidence_layers(), &e.layer));
    PROV_RETURN_IF_ERROR(read_string(x, path, "method", &e.method));
    PROV_RETURN_IF_ERROR(read_string(x, path, "statistic", &e.statistic));
    PROV_RETURN_IF_ERROR(read_number(x, path, "value", true, &e.value));
    PROV_RETURN_IF_ERROR(read_p(x, path, "p_value", &e.p_value));
    PROV_RETURN_IF_ERROR(read_string(x, path, "null_hypothesis", &e.null_hypothesis));
    PROV_RETURN_IF_ERROR(read_opt_int(x, path, "probes", 0, &e.probes));
    PROV_RETURN_IF_ERROR(read_opt_int(x, path, "probes_needed", 0, &e.probes_needed));
    PROV_RETURN_IF_ERROR(read_opt_string(x, path, "combination", &e.combination));
    if (const json* d = member(x, "detail"); d != nullptr && !d->is_null()) {
      if (!d->is_object()) return ill_typed(join_path(path, "detail"), "an object", *d);
      e.detail = *d;
    }
    rep.evidence.push_back(std::move(e));
  }

  if (const json* wl = member(r, "weight_layers"); wl != nullptr && !wl->is_null()) {
    if (!wl->is_array()) return ill_typed("weight_layers", "an array", *wl);
    rep.weight_layers.emplace();
    for (size_t i = 0; i < wl->size(); ++i) {
      const json& x = (*wl)[i];
      const std::string path = index_path("weight_layers", i);
      PROV_RETURN_IF_ERROR(need_object(x, path));
      ReportWeightLayer w;
      PROV_RETURN_IF_ERROR(read_string(x, path, "reference", &w.reference));
      PROV_RETURN_IF_ERROR(require(x, path, "layer", &v));
      PROV_RETURN_IF_ERROR(
          check_int(*v, join_path(path, "layer"), std::numeric_limits<int32_t>::min(), &w.layer));
      PROV_RETURN_IF_ERROR(read_string(x, path, "component", &w.component));
      std::optional<double> sim;
      PROV_RETURN_IF_ERROR(read_number(x, path, "similarity", false, &sim));
      w.similarity = *sim;
      PROV_RETURN_IF_ERROR(read_p(x, path, "p_value", &w.p_value));
      rep.weight_layers->push_back(std::move(w));
    }
  }

  if (const json* pc = member(r, "probe_curve"); pc != nullptr && !pc->is_null()) {
    if (!pc->is_array()) return ill_typed("probe_curve", "an array", *pc);
    rep.probe_curve.emplace();
    for (size_t i = 0; i < pc->size(); ++i) {
      const json& x = (*pc)[i];
      const std::string path = index_path("probe_curve", i);
      PROV_RETURN_IF_ERROR(need_object(x, path));
      ReportProbeCurve curve;
      PROV_RETURN_IF_ERROR(read_string(x, path, "reference", &curve.reference));
      const json* probes;
      PROV_RETURN_IF_ERROR(read_array(x, path, "probes", &probes));
      for (size_t k = 0; k < probes->size(); ++k) {
        int64_t n = 0;
        PROV_RETURN_IF_ERROR(
            check_int((*probes)[k], index_path(join_path(path, "probes"), k), 1, &n));
        curve.probes.push_back(n);
      }
      const json* ps;
      PROV_RETURN_IF_ERROR(read_array(x, path, "p_value", &ps));
      for (size_t k = 0; k < ps->size(); ++k) {
        std::optional<double> p;
        PROV_RETURN_IF_ERROR(
            check_p((*ps)[k], index_path(join_path(path, "p_value"), k), false, &p));
        curve.p_values.push_back(*p);
      }
      if (curve.p_values.size() != curve.probes.size()) {
        return invalid_argument("report field \"" + join_path(path, "p_value") + "\" has " +
                                std::to_string(curve.p_values.size()) + " entries but \"" +
                                join_path(path, "probes") + "\" has " +
                                std::to_string(curve.probes.size()));
      }
      rep.probe_curve->push_back(std::move(curve));
    }
  }

  const json* g;
  PROV_RETURN_IF_ERROR(require(r, "", "graph", &g));
  PROV_RETURN_IF_ERROR(parse_graph(*g, "graph", &rep.graph));

  if (const json* s = member(r, "suite"); s != nullptr && !s->is_null()) {
    PROV_RETURN_IF_ERROR(need_object(*s, "suite"));
    ReportSuite suite;
    PROV_RETURN_IF_ERROR(read_string(*s, "suite", "name", &suite.name));
    PROV_RETURN_IF_ERROR(read_string(*s, "suite", "digest", &suite.digest));
    rep.suite = std::move(suite);
  }

  const json* tool;
  PROV_RETURN_IF_ERROR(read_object(r, "", "tool", &tool));
  PROV_RETURN_IF_ERROR(read_string(*tool, "tool", "name", &rep.tool_name));
  PROV_RETURN_IF_ERROR(read_string(*tool, "tool", "version", &rep.tool_version));

  if (const json* e = member(r, "environment"); e != nullptr && !e->is_null()) {
    ReportEnvironment env;
    PROV_RETURN_IF_ERROR(read_environment(*e, &env));
    rep.environment = std::move(env);
  }
  return rep;
}

// ---------------------------------------------------------------------------------------------
// Text

// ---------------------------------------------------------------------------------------------
// Writing

json opt_number(const std::optional<double>& v) {
  return v && std::isfinite(*v) ? json(*v) : json(nullptr);
}

json number_or_null(double v) {
  return std::isfinite(v) ? json(v) : json(nullptr);
}

json digest_json(const std::string& sha256) {
  return {{"sha256", sha256}};
}

json write_evidence(const ReportEvidence& e) {
  json row = {{"reference", e.reference},
              {"layer", e.layer},
              {"method", e.method},
              {"statistic", e.statistic},
              {"value", opt_number(e.value)},
              {"p_value", opt_number(e.p_value)},
              {"null_hypothesis", e.null_hypothesis}};
  if (e.probes) row["probes"] = *e.probes;
  if (e.probes_needed) row["probes_needed"] = *e.probes_needed;
  if (e.combination) row["combination"] = *e.combination;
  if (e.detail) row["detail"] = *e.detail;
  return row;
}

json write_reference(const ReportReference& r) {
  json ref = {{"name", r.name},
              {"digest", digest_json(r.sha256)},
              {"relation", r.relation},
              {"p_value", opt_number(r.p_value)}};
  if (r.path) ref["path"] = *r.path;
  if (r.has_holm) ref["p_value_holm"] = opt_number(r.p_value_holm);
  if (r.outputs) {
    ref["outputs"] = {{"relation", r.outputs->relation},
                      {"p_value", opt_number(r.outputs->p_value)},
                      {"p_value_holm", opt_number(r.outputs->p_value_holm)}};
  }
  return ref;
}

json write_environment(const ReportEnvironment& e) {
  json env = {{"device", e.device}, {"dtype", e.dtype}};
  if (e.threads) env["threads"] = *e.threads;
  if (e.runs) {
    json runs = json::array();
    for (const auto& r : *e.runs) {
      json run = {{"model", r.model},
                  {"role", r.role},
                  {"source", r.source},
                  {"device", r.device},
                  {"dtype", r.dtype}};
      if (r.backend) run["backend"] = *r.backend;
      if (r.tool_version) run["tool_version"] = *r.tool_version;
      if (r.engine) run["engine"] = *r.engine;
      if (r.logprob_mode) run["logprob_mode"] = *r.logprob_mode;
      if (r.top_k_limit) run["top_k_limit"] = *r.top_k_limit;
      if (r.statistics) run["statistics"] = *r.statistics;
      runs.push_back(std::move(run));
    }
    env["runs"] = std::move(runs);
  }
  return env;
}

}  // namespace

const char* confidence_name(Confidence c) {
  switch (c) {
    case Confidence::kHigh:
      return "high";
    case Confidence::kMedium:
      return "medium";
    case Confidence::kLow:
      return "low";
  }
  return "low";
}

std::optional<Confidence> parse_confidence(const std::string& name) {
  if (name == "high") return Confidence::kHigh;
  if (name == "medium") return Confidence::kMedium;
  if (name == "low") return Confidence::kLow;
  return std::nullopt;
}

int find_node(const ReportGraph& graph, const std::string& id) {
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    if (graph.nodes[i].id == id) return static_cast<int>(i);
  }
  return -1;
}

json graph_to_json(const ReportGraph& g) {
  json nodes = json::array(), edges = json::array();
  for (const auto& n : g.nodes) {
    nodes.push_back({{"id", n.id}, {"label", n.label}, {"kind", n.kind}});
  }
  for (const auto& e : g.edges) {
    const std::string from = e.from < g.nodes.size() ? g.nodes[e.from].id : "";
    const std::string to = e.to < g.nodes.size() ? g.nodes[e.to].id : "";
    edges.push_back(
        {{"from", from}, {"to", to}, {"relation", e.relation}, {"p_value", opt_number(e.p_value)}});
  }
  return {{"nodes", nodes}, {"edges", edges}};
}

Result<ReportGraph> graph_from_json(const json& j, const std::string& path) {
  ReportGraph g;
  PROV_RETURN_IF_ERROR(parse_graph(j, path, &g));
  return g;
}

json report_to_json(const Report& r) {
  json rep;
  rep["report_version"] = r.report_version;
  rep["candidate"] = {{"name", r.candidate.name}, {"digest", digest_json(r.candidate.sha256)}};
  if (r.candidate.path) rep["candidate"]["path"] = *r.candidate.path;
  if (r.candidate.source) rep["candidate"]["source"] = *r.candidate.source;
  const ReportVerdict& v = r.verdict;
  json verdict = {{"relation", relation_name(v.relation)},
                  {"parent", v.parent ? json(*v.parent) : json(nullptr)},
                  {"p_value", opt_number(v.p_value)},
                  {"confidence", confidence_name(v.confidence)},
                  {"summary", v.summary}};
  if (v.parents) verdict["parents"] = *v.parents;
  if (v.parent_digest) verdict["parent_digest"] = *v.parent_digest;
  rep["verdict"] = std::move(verdict);
  rep["references"] = json::array();
  for (const auto& ref : r.references) rep["references"].push_back(write_reference(ref));
  rep["evidence"] = json::array();
  for (const auto& e : r.evidence) rep["evidence"].push_back(write_evidence(e));
  if (r.weight_layers) {
    rep["weight_layers"] = json::array();
    for (const auto& l : *r.weight_layers) {
      rep["weight_layers"].push_back({{"reference", l.reference},
                                      {"layer", l.layer},
                                      {"component", l.component},
                                      {"similarity", number_or_null(l.similarity)},
                                      {"p_value", opt_number(l.p_value)}});
    }
  }
  if (r.probe_curve) {
    rep["probe_curve"] = json::array();
    for (const auto& c : *r.probe_curve) {
      json ps = json::array();
      for (double p : c.p_values) ps.push_back(number_or_null(p));
      rep["probe_curve"].push_back(
          {{"reference", c.reference}, {"probes", c.probes}, {"p_value", ps}});
    }
  }
  rep["graph"] = graph_to_json(r.graph);
  if (r.suite) rep["suite"] = {{"name", r.suite->name}, {"digest", r.suite->digest}};
  rep["tool"] = {{"name", r.tool_name}, {"version", r.tool_version}};
  if (r.environment) rep["environment"] = write_environment(*r.environment);
  return rep;
}

Result<Report> report_from_json(const json& j) {
  return read_report(j);
}

Status validate_report(const json& j) {
  return read_report(j).status();
}

}  // namespace prov::lineage
