#include "lineage/report_render.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace prov::lineage {
namespace {

using nlohmann::json;

constexpr const char* kReplacement = "\xEF\xBF\xBD";  // U+FFFD
constexpr const char* kDash = "\xE2\x80\x94";         // U+2014 em dash
constexpr const char* kEllipsis = "\xE2\x80\xA6";     // U+2026
constexpr const char* kArrow = "\xE2\x86\x92";        // U+2192
constexpr const char* kMidDot = "\xC2\xB7";           // U+00B7
constexpr const char* kMinus = "\xE2\x88\x92";        // U+2212 minus sign
constexpr const char* kScoreOnly = "score only (no calibrated test)";
constexpr const char* kSvgOpen = "<svg xmlns=\"http://www.w3.org/2000/svg\"";
constexpr const char* kFontFamily = "Helvetica, Arial, sans-serif";
constexpr double kPFloor = 1e-300;
constexpr double kMaxMinusLog10 = 300.0;

// ---------------------------------------------------------------------------------------------
// Parsed report

struct Candidate {
  std::string name;
  std::optional<std::string> path;
  std::string sha256;
};

struct Verdict {
  std::string relation;
  std::optional<std::string> parent;
  std::optional<std::vector<std::string>> parents;
  std::optional<double> p;
  std::string confidence;
  std::string summary;
};

struct Reference {
  std::string name;
  std::string sha256;
  std::string relation;
  std::optional<double> p;
  bool has_holm = false;
  std::optional<double> holm;
};

struct Evidence {
  std::string reference;
  std::string layer;
  std::string method;
  std::string statistic;
  std::optional<double> value;
  std::optional<double> p;
  std::string null_hypothesis;
  std::optional<int64_t> probes;
  std::optional<int64_t> probes_needed;
  std::optional<std::string> combination;
  std::optional<std::string> detail;  // compact JSON, keys sorted
};

struct WeightLayer {
  std::string reference;
  int64_t layer = 0;
  std::string component;
  double similarity = 0;
  std::optional<double> p;
};

struct ProbeCurve {
  std::string reference;
  std::vector<int64_t> probes;
  std::vector<double> p;
};

struct Node {
  std::string id;
  std::string label;
  std::string kind;
};

struct Edge {
  size_t from = 0;  // node indices
  size_t to = 0;
  std::string relation;
  std::optional<double> p;
};

struct Graph {
  std::vector<Node> nodes;
  std::vector<Edge> edges;
};

struct Report {
  Candidate candidate;
  Verdict verdict;
  std::vector<Reference> references;
  std::vector<Evidence> evidence;
  std::optional<std::vector<WeightLayer>> weight_layers;
  std::optional<std::vector<ProbeCurve>> probe_curve;
  Graph graph;
  std::optional<std::pair<std::string, std::string>> suite;  // name, digest
  std::string tool_name;
  std::string tool_version;
  std::optional<std::pair<std::string, std::string>> environment;  // device, dtype
};

const std::vector<std::string> kRelations = {
    "identical", "converted", "quantized",       "permuted",      "noised",      "pruned",
    "merged",    "finetuned", "distilled_logit", "distilled_seq", "independent", "inconclusive"};
const std::vector<std::string> kConfidences = {"high", "medium", "low"};
const std::vector<std::string> kEvidenceLayers = {"identity", "weights", "outputs", "distillation"};
const std::vector<std::string> kNodeKinds = {"candidate", "reference", "control"};

// ---------------------------------------------------------------------------------------------
// Reading with field paths in error messages

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

Status parse_graph(const json& g, const std::string& path, Graph* out) {
  PROV_RETURN_IF_ERROR(need_object(g, path));
  const json* nodes;
  PROV_RETURN_IF_ERROR(read_array(g, path, "nodes", &nodes));
  std::map<std::string, size_t> by_id;
  for (size_t i = 0; i < nodes->size(); ++i) {
    const json& n = (*nodes)[i];
    const std::string npath = index_path(join_path(path, "nodes"), i);
    PROV_RETURN_IF_ERROR(need_object(n, npath));
    Node node;
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
    Edge edge;
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
    PROV_RETURN_IF_ERROR(read_p(e, epath, "p_value", &edge.p));
    out->edges.push_back(std::move(edge));
  }
  return Status::ok();
}

Result<Report> parse_report(const json& r) {
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

  const json* vd;
  PROV_RETURN_IF_ERROR(read_object(r, "", "verdict", &vd));
  Verdict& verdict = rep.verdict;
  PROV_RETURN_IF_ERROR(read_enum(*vd, "verdict", "relation", kRelations, &verdict.relation));
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
  PROV_RETURN_IF_ERROR(read_p(*vd, "verdict", "p_value", &verdict.p));
  PROV_RETURN_IF_ERROR(read_enum(*vd, "verdict", "confidence", kConfidences, &verdict.confidence));
  PROV_RETURN_IF_ERROR(read_string(*vd, "verdict", "summary", &verdict.summary));

  const json* refs;
  PROV_RETURN_IF_ERROR(read_array(r, "", "references", &refs));
  for (size_t i = 0; i < refs->size(); ++i) {
    const json& x = (*refs)[i];
    const std::string path = index_path("references", i);
    PROV_RETURN_IF_ERROR(need_object(x, path));
    Reference ref;
    PROV_RETURN_IF_ERROR(read_string(x, path, "name", &ref.name));
    PROV_RETURN_IF_ERROR(read_sha256(x, path, &ref.sha256));
    PROV_RETURN_IF_ERROR(read_string(x, path, "relation", &ref.relation));
    PROV_RETURN_IF_ERROR(read_p(x, path, "p_value", &ref.p));
    if (const json* h = member(x, "p_value_holm"); h != nullptr) {
      ref.has_holm = true;
      PROV_RETURN_IF_ERROR(check_p(*h, join_path(path, "p_value_holm"), true, &ref.holm));
    }
    rep.references.push_back(std::move(ref));
  }

  const json* ev;
  PROV_RETURN_IF_ERROR(read_array(r, "", "evidence", &ev));
  for (size_t i = 0; i < ev->size(); ++i) {
    const json& x = (*ev)[i];
    const std::string path = index_path("evidence", i);
    PROV_RETURN_IF_ERROR(need_object(x, path));
    Evidence e;
    PROV_RETURN_IF_ERROR(read_string(x, path, "reference", &e.reference));
    PROV_RETURN_IF_ERROR(read_enum(x, path, "layer", kEvidenceLayers, &e.layer));
    PROV_RETURN_IF_ERROR(read_string(x, path, "method", &e.method));
    PROV_RETURN_IF_ERROR(read_string(x, path, "statistic", &e.statistic));
    PROV_RETURN_IF_ERROR(read_number(x, path, "value", true, &e.value));
    PROV_RETURN_IF_ERROR(read_p(x, path, "p_value", &e.p));
    PROV_RETURN_IF_ERROR(read_string(x, path, "null_hypothesis", &e.null_hypothesis));
    PROV_RETURN_IF_ERROR(read_opt_int(x, path, "probes", 0, &e.probes));
    PROV_RETURN_IF_ERROR(read_opt_int(x, path, "probes_needed", 0, &e.probes_needed));
    PROV_RETURN_IF_ERROR(read_opt_string(x, path, "combination", &e.combination));
    if (const json* d = member(x, "detail"); d != nullptr && !d->is_null()) {
      if (!d->is_object()) return ill_typed(join_path(path, "detail"), "an object", *d);
      e.detail = d->dump(-1, ' ', false, json::error_handler_t::replace);
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
      WeightLayer w;
      PROV_RETURN_IF_ERROR(read_string(x, path, "reference", &w.reference));
      PROV_RETURN_IF_ERROR(require(x, path, "layer", &v));
      PROV_RETURN_IF_ERROR(
          check_int(*v, join_path(path, "layer"), std::numeric_limits<int32_t>::min(), &w.layer));
      PROV_RETURN_IF_ERROR(read_string(x, path, "component", &w.component));
      std::optional<double> sim;
      PROV_RETURN_IF_ERROR(read_number(x, path, "similarity", false, &sim));
      w.similarity = *sim;
      PROV_RETURN_IF_ERROR(read_p(x, path, "p_value", &w.p));
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
      ProbeCurve curve;
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
        curve.p.push_back(*p);
      }
      if (curve.p.size() != curve.probes.size()) {
        return invalid_argument("report field \"" + join_path(path, "p_value") + "\" has " +
                                std::to_string(curve.p.size()) + " entries but \"" +
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
    std::pair<std::string, std::string> suite;
    PROV_RETURN_IF_ERROR(read_string(*s, "suite", "name", &suite.first));
    PROV_RETURN_IF_ERROR(read_string(*s, "suite", "digest", &suite.second));
    rep.suite = std::move(suite);
  }

  const json* tool;
  PROV_RETURN_IF_ERROR(read_object(r, "", "tool", &tool));
  PROV_RETURN_IF_ERROR(read_string(*tool, "tool", "name", &rep.tool_name));
  PROV_RETURN_IF_ERROR(read_string(*tool, "tool", "version", &rep.tool_version));

  if (const json* e = member(r, "environment"); e != nullptr && !e->is_null()) {
    PROV_RETURN_IF_ERROR(need_object(*e, "environment"));
    std::pair<std::string, std::string> env;
    PROV_RETURN_IF_ERROR(read_string(*e, "environment", "device", &env.first));
    PROV_RETURN_IF_ERROR(read_string(*e, "environment", "dtype", &env.second));
    rep.environment = std::move(env);
  }
  return rep;
}

// ---------------------------------------------------------------------------------------------
// Text

// Valid UTF-8, with control characters other than tab, LF and CR, DEL, U+FFFE/U+FFFF and every
// malformed sequence replaced by U+FFFD (so the text is also valid XML character data).
std::string sanitize(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) {
        out += kReplacement;
      } else {
        out += static_cast<char>(c);
      }
      ++i;
      continue;
    }
    size_t len = 0;
    uint32_t cp = 0;
    uint32_t min = 0;
    if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07, min = 0x10000;
    }
    bool ok = len != 0 && i + len <= n;
    for (size_t k = 1; ok && k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) ok = false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (!ok || cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) || cp == 0xFFFE ||
        cp == 0xFFFF) {
      out += kReplacement;
      ++i;
      continue;
    }
    out.append(s, i, len);
    i += len;
  }
  return out;
}

// HTML / XML text and attribute escaping.
std::string esc(const std::string& s) {
  const std::string clean = sanitize(s);
  std::string out;
  out.reserve(clean.size() + 16);
  for (char c : clean) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

bool is_ascii_alnum(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// Markdown inline text (also safe in a table cell): one line, Markdown punctuation escaped, HTML
// specials as entities.
std::string md(const std::string& s) {
  const std::string clean = sanitize(s);
  std::string out;
  out.reserve(clean.size() + 16);
  for (size_t i = 0; i < clean.size(); ++i) {
    const char c = clean[i];
    switch (c) {
      case '\r':
        if (i + 1 < clean.size() && clean[i + 1] == '\n') ++i;
        out += ' ';
        break;
      case '\n':
      case '\t':
        out += ' ';
        break;
      case '\\':
      case '|':
      case '*':
      case '[':
      case ']':
      case '`':
      case '~':
        out += '\\';
        out += c;
        break;
      case '_': {
        const bool inner = i > 0 && is_ascii_alnum(clean[i - 1]) && i + 1 < clean.size() &&
                           is_ascii_alnum(clean[i + 1]);
        if (!inner) out += '\\';
        out += c;
        break;
      }
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// Code points of already-sanitized UTF-8.
std::vector<std::string> code_points(const std::string& clean) {
  std::vector<std::string> out;
  for (size_t i = 0; i < clean.size();) {
    const auto c = static_cast<unsigned char>(clean[i]);
    size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : 4;
    len = std::min(len, clean.size() - i);
    out.push_back(clean.substr(i, len));
    i += len;
  }
  return out;
}

// At most `max` code points, the last one an ellipsis when cut. Sanitized, not escaped.
std::string truncate(const std::string& s, size_t max) {
  const std::string clean = sanitize(s);
  const auto cps = code_points(clean);
  if (cps.size() <= max) return clean;
  std::string out;
  for (size_t i = 0; i + 1 < max; ++i) out += cps[i];
  return out + kEllipsis;
}

// Estimated rendered width in px of `s` in a sans-serif font of `px` size (generous, so that
// boxes fit the text).
double text_width(const std::string& s, double px) {
  double units = 0;
  for (const auto& cp : code_points(sanitize(s))) {
    const auto lead = static_cast<unsigned char>(cp[0]);
    units += lead >= 0xE1 ? 1.0 : (cp == "W" || cp == "M" || cp == "m" || cp == "w") ? 0.85 : 0.6;
  }
  return units * px;
}

std::string printf_str(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

std::string format_number(double v) {
  if (v == 0) v = 0;  // no "-0"
  return printf_str("%.4g", v);
}

// An SVG coordinate with one decimal.
std::string n1(double v) {
  double r = std::round(v * 10.0) / 10.0;
  if (r == 0) r = 0;
  return printf_str("%.1f", r);
}

// "p=1.23e-45", "p < 1e-300", "score only" for null.
std::string p_equals(const std::optional<double>& p) {
  if (!p) return "score only";
  const std::string f = format_p_value(p);
  return f[0] == '<' ? "p " + f : "p=" + f;
}

// -log10(p), capped at 300.
double minus_log10(double p) {
  if (!(p >= kPFloor)) return kMaxMinusLog10;
  return std::min(kMaxMinusLog10, std::max(0.0, -std::log10(p)));
}

std::string int_str(int64_t v) {
  return std::to_string(v);
}

// ---------------------------------------------------------------------------------------------
// SVG helpers

const char* const kPalette[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                "#E69F00", "#56B4E9", "#000000", "#8C564B"};
const char* const kDashes[] = {"", "6 3", "2 2", "8 3 2 3"};

std::string series_color(size_t i) {
  return kPalette[i % 8];
}
std::string series_dash(size_t i) {
  return kDashes[(i / 8) % 4];
}

std::string svg_open(double w, double h, const std::string& title) {
  return std::string(kSvgOpen) + " viewBox=\"0 0 " + n1(w) + " " + n1(h) + "\" width=\"" + n1(w) +
         "\" height=\"" + n1(h) + "\" role=\"img\" font-family=\"" + kFontFamily +
         "\" font-size=\"12\"><title>" + esc(title) + "</title>\n<rect x=\"0\" y=\"0\" width=\"" +
         n1(w) + "\" height=\"" + n1(h) + "\" fill=\"#ffffff\"/>\n";
}

std::string text_el(double x, double y, const std::string& anchor, const std::string& content,
                    const std::string& extra = "") {
  return "<text x=\"" + n1(x) + "\" y=\"" + n1(y) + "\" text-anchor=\"" + anchor + "\"" +
         (extra.empty() ? "" : " " + extra) + ">" + esc(content) + "</text>\n";
}

std::string line_el(double x1, double y1, double x2, double y2, const std::string& stroke,
                    const std::string& extra = "") {
  return "<line x1=\"" + n1(x1) + "\" y1=\"" + n1(y1) + "\" x2=\"" + n1(x2) + "\" y2=\"" + n1(y2) +
         "\" stroke=\"" + stroke + "\"" + (extra.empty() ? "" : " " + extra) + "/>\n";
}

double nice_step(double range, int target) {
  if (!(range > 0)) return 1;
  const double raw = range / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / mag;
  const double nice = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
  return nice * mag;
}

std::vector<double> linear_ticks(double lo, double hi, double step) {
  std::vector<double> out;
  const auto a = static_cast<long long>(std::ceil(lo / step - 1e-9));
  const auto b = static_cast<long long>(std::floor(hi / step + 1e-9));
  for (long long i = a; i <= b; ++i) {
    double v = static_cast<double>(i) * step;
    if (std::fabs(v) < step * 1e-9) v = 0;
    out.push_back(v);
  }
  return out;
}

struct LegendEntry {
  std::string label;
  std::string color;
  std::string dash;  // "" solid; "box" for a filled swatch
};

// Lays entries out left to right in rows within `width`, from (x, y); returns the SVG and sets
// *height.
std::string legend(const std::vector<LegendEntry>& entries, double x, double y, double width,
                   double* height) {
  std::string svg;
  const double row_h = 18;
  double cx = x;
  double cy = y;
  for (const auto& e : entries) {
    const std::string label = truncate(e.label, 60);
    const double w = 28 + text_width(label, 12) + 16;
    if (cx > x && cx + w > x + width) {
      cx = x;
      cy += row_h;
    }
    if (e.dash == "box") {
      svg += "<rect x=\"" + n1(cx) + "\" y=\"" + n1(cy + 3) +
             "\" width=\"20\" height=\"10\" fill=\"" + e.color + "\"/>\n";
    } else {
      svg += line_el(
          cx, cy + 8, cx + 20, cy + 8, e.color,
          "stroke-width=\"2.5\"" + (e.dash.empty() ? "" : " stroke-dasharray=\"" + e.dash + "\""));
    }
    svg += text_el(cx + 26, cy + 12, "start", label);
    cx += w;
  }
  *height = entries.empty() ? 0 : cy - y + row_h;
  return svg;
}

struct Area {
  double x0, y0, w, h;
};

// The legend placed under a plot area, and the plot's total height with it.
std::string legend_below(const std::vector<LegendEntry>& entries, const Area& a, double* height) {
  double legend_h = 0;
  std::string leg = legend(entries, a.x0, a.y0 + a.h + 50, a.w, &legend_h);
  *height = a.y0 + a.h + 50 + legend_h + 8;
  return leg;
}

struct Tick {
  double px;
  std::string label;
};

// Grid, axes, tick labels and axis titles around `a`.
std::string frame(const Area& a, const std::vector<Tick>& xt, const std::vector<Tick>& yt,
                  const std::string& xtitle, const std::string& ytitle) {
  std::string svg;
  for (const auto& t : yt) {
    svg += line_el(a.x0, t.px, a.x0 + a.w, t.px, "#e3e3e3");
    svg += text_el(a.x0 - 6, t.px + 4, "end", t.label, "fill=\"#333333\"");
  }
  for (const auto& t : xt) {
    svg += line_el(t.px, a.y0 + a.h, t.px, a.y0 + a.h + 4, "#555555");
    svg += text_el(t.px, a.y0 + a.h + 17, "middle", t.label, "fill=\"#333333\"");
  }
  svg += "<rect x=\"" + n1(a.x0) + "\" y=\"" + n1(a.y0) + "\" width=\"" + n1(a.w) + "\" height=\"" +
         n1(a.h) + "\" fill=\"none\" stroke=\"#555555\"/>\n";
  svg += text_el(a.x0 + a.w / 2, a.y0 + a.h + 36, "middle", xtitle, "fill=\"#222222\"");
  svg += "<text transform=\"translate(14," + n1(a.y0 + a.h / 2) +
         ") rotate(-90)\" text-anchor=\"middle\" fill=\"#222222\">" + esc(ytitle) + "</text>\n";
  return svg;
}

// ---------------------------------------------------------------------------------------------
// Lineage graph

constexpr double kNodeH = 42;
constexpr double kRowGap = 96;
constexpr double kSlotGap = 28;
constexpr double kMaxRowWidth = 1060;
constexpr double kNodeFont = 13;
constexpr double kEdgeFont = 11;
constexpr const char* kLegendArrow = "parent to child";

bool muted_relation(const std::string& r) {
  return r == "independent" || r == "inconclusive";
}

std::string edge_label(const Edge& e) {
  if (!e.p) return e.relation + " (score only)";
  return e.relation + " " + p_equals(e.p);
}

struct Box {
  double x0, y0, x1, y1;
  bool overlaps(const Box& o) const { return x0 < o.x1 && o.x0 < x1 && y0 < o.y1 && o.y0 < y1; }
};

struct Pt {
  double x, y;
};

// A cubic Bézier from p0 to p3.
struct Curve {
  Pt p0, p1, p2, p3;
  Pt at(double t) const {
    const double u = 1 - t;
    const double a = u * u * u, b = 3 * u * u * t, c = 3 * u * t * t, d = t * t * t;
    return {a * p0.x + b * p1.x + c * p2.x + d * p3.x, a * p0.y + b * p1.y + c * p2.y + d * p3.y};
  }
};

std::string graph_svg(const Graph& g, bool standalone) {
  const size_t n = g.nodes.size();
  const size_t m = g.edges.size();

  // 1. Cycles: depth-first from the roots (no incoming edge), then from whatever is left, in
  // node order; an edge to a node still on the stack closes a cycle (a back edge).
  std::vector<std::vector<size_t>> out(n);
  std::vector<size_t> indeg(n, 0);
  for (size_t e = 0; e < m; ++e) {
    out[g.edges[e].from].push_back(e);
    if (g.edges[e].from != g.edges[e].to) ++indeg[g.edges[e].to];
  }
  std::vector<int> state(n, 0);  // 0 new, 1 on stack, 2 done
  std::vector<bool> back(m, false);
  auto dfs = [&](size_t start) {
    std::vector<std::pair<size_t, size_t>> stack = {{start, 0}};
    state[start] = 1;
    while (!stack.empty()) {
      const size_t u = stack.back().first;
      const size_t k = stack.back().second;
      if (k == out[u].size()) {
        state[u] = 2;
        stack.pop_back();
        continue;
      }
      ++stack.back().second;
      const size_t e = out[u][k];
      const size_t v = g.edges[e].to;
      if (state[v] == 1) {
        back[e] = true;
      } else if (state[v] == 0) {
        state[v] = 1;
        stack.push_back({v, 0});
      }
    }
  };
  for (size_t u = 0; u < n; ++u) {
    if (indeg[u] == 0 && state[u] == 0) dfs(u);
  }
  for (size_t u = 0; u < n; ++u) {
    if (state[u] == 0) dfs(u);
  }

  // 2. Layers. With back edges reversed (self-loops set aside) the edges form a DAG; each edge
  // spans from its upper end to its lower end, and a node's layer is its longest distance from
  // a root.
  std::vector<bool> loop(m);
  std::vector<size_t> upper(m), lower(m);
  std::vector<std::vector<size_t>> down(n);
  std::vector<size_t> pending(n, 0);
  for (size_t e = 0; e < m; ++e) {
    const Edge& ed = g.edges[e];
    loop[e] = ed.from == ed.to;
    if (loop[e]) continue;
    upper[e] = back[e] ? ed.to : ed.from;
    lower[e] = back[e] ? ed.from : ed.to;
    down[upper[e]].push_back(e);
    ++pending[lower[e]];
  }
  std::vector<size_t> layer(n, 0);
  std::set<size_t> ready;
  for (size_t u = 0; u < n; ++u) {
    if (pending[u] == 0) ready.insert(u);
  }
  while (!ready.empty()) {
    const size_t u = *ready.begin();
    ready.erase(ready.begin());
    for (size_t e : down[u]) {
      const size_t v = lower[e];
      layer[v] = std::max(layer[v], layer[u] + 1);
      if (--pending[v] == 0) ready.insert(v);
    }
  }

  // 3. An edge spanning several layers passes through one virtual point per layer crossed
  // (layout ids n, n+1, ...), so that it is routed around the nodes in between.
  std::vector<std::vector<size_t>> chain(m);
  size_t total = n;
  for (size_t e = 0; e < m; ++e) {
    if (loop[e]) continue;
    chain[e].push_back(upper[e]);
    for (size_t l = layer[upper[e]] + 1; l < layer[lower[e]]; ++l) {
      layer.push_back(l);
      chain[e].push_back(total++);
    }
    chain[e].push_back(lower[e]);
  }
  size_t layers = 0;
  for (size_t u = 0; u < total; ++u) layers = std::max(layers, layer[u] + 1);

  // 4. Order within a layer: input order, then two passes placing each node under the mean
  // position of its parents (stable, so ties keep input order).
  std::vector<std::vector<size_t>> rows(layers);
  for (size_t u = 0; u < total; ++u) rows[layer[u]].push_back(u);
  std::vector<double> pos(total, 0);
  auto update_pos = [&](size_t l) {
    const double mid = (static_cast<double>(rows[l].size()) - 1) / 2;
    for (size_t i = 0; i < rows[l].size(); ++i) pos[rows[l][i]] = static_cast<double>(i) - mid;
  };
  for (size_t l = 0; l < layers; ++l) update_pos(l);
  std::vector<std::vector<size_t>> parents(total);
  for (size_t e = 0; e < m; ++e) {
    for (size_t i = 1; i < chain[e].size(); ++i) parents[chain[e][i]].push_back(chain[e][i - 1]);
  }
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t l = 1; l < layers; ++l) {
      std::vector<std::pair<double, size_t>> keyed;
      for (size_t u : rows[l]) {
        double key = pos[u];
        if (!parents[u].empty()) {
          double sum = 0;
          for (size_t p : parents[u]) sum += pos[p];
          key = sum / static_cast<double>(parents[u].size());
        }
        keyed.push_back({key, u});
      }
      std::stable_sort(keyed.begin(), keyed.end(),
                       [](const auto& a, const auto& b) { return a.first < b.first; });
      for (size_t i = 0; i < keyed.size(); ++i) rows[l][i] = keyed[i].second;
      update_pos(l);
    }
  }

  // 5. Sizes and positions. A node's slot is wide enough for the label of an edge entering it
  // and for its self-loops; a layer wider than kMaxRowWidth wraps onto several visual rows.
  std::vector<std::string> shown(n);
  std::vector<double> w(total, 0), slot(total, 12), cx(total, 0), cy(total, 0);
  for (size_t u = 0; u < n; ++u) {
    shown[u] = truncate(g.nodes[u].label, 36);
    w[u] = std::clamp(text_width(shown[u], kNodeFont) + 28, 96.0, 330.0);
    slot[u] = w[u];
  }
  std::vector<std::string> elabel(m);
  std::vector<double> ew(m);
  std::vector<int> loops_at(n, 0);
  for (size_t e = 0; e < m; ++e) {
    elabel[e] = truncate(edge_label(g.edges[e]), 48);
    ew[e] = text_width(elabel[e], kEdgeFont) + 10;
    if (loop[e]) {
      ++loops_at[g.edges[e].from];
    } else if (chain[e].size() == 2) {
      slot[lower[e]] = std::max(slot[lower[e]], ew[e]);
    }
  }
  for (size_t u = 0; u < n; ++u) slot[u] += 2 * 18 * loops_at[u];  // kept symmetric
  const double legend_h = 30;
  const double margin = 20;
  std::vector<std::vector<size_t>> visual;
  for (const auto& row : rows) {
    std::vector<size_t> cur;
    double width = 0;
    for (size_t u : row) {
      const double sw = slot[u] + kSlotGap;
      if (!cur.empty() && width + sw > kMaxRowWidth) {
        visual.push_back(cur);
        cur.clear();
        width = 0;
      }
      cur.push_back(u);
      width += sw;
    }
    if (!cur.empty()) visual.push_back(cur);
  }
  double widest = 0;
  std::vector<double> row_width;
  for (const auto& row : visual) {
    double width = 0;
    for (size_t u : row) width += slot[u] + kSlotGap;
    row_width.push_back(width);
    widest = std::max(widest, width);
  }
  for (size_t r = 0; r < visual.size(); ++r) {
    double x = margin + (widest - row_width[r]) / 2;
    const double y = margin + legend_h + static_cast<double>(r) * (kNodeH + kRowGap) + kNodeH / 2;
    for (size_t u : visual[r]) {
      cx[u] = x + (slot[u] + kSlotGap) / 2;
      cy[u] = y;
      x += slot[u] + kSlotGap;
    }
  }

  // 6. Edge geometry: a chain of cubic segments from the upper node's bottom through the
  // virtual points to the lower node's top, drawn from source to target (so a reversed back
  // edge points upwards). Ends are spread along the node border, ordered by the other end's
  // position. Self-loops are small arcs on the node's top-right corner.
  std::vector<std::vector<size_t>> leaving(n), entering(n);
  for (size_t e = 0; e < m; ++e) {
    if (loop[e]) continue;
    leaving[chain[e].front()].push_back(e);
    entering[chain[e].back()].push_back(e);
  }
  std::vector<double> top_dx(m, 0), bottom_dx(m, 0);
  for (size_t u = 0; u < n; ++u) {
    auto spread = [&](std::vector<size_t>& list, bool leave, std::vector<double>& dx) {
      auto other = [&](size_t e) {
        return leave ? cx[chain[e][1]] : cx[chain[e][chain[e].size() - 2]];
      };
      std::stable_sort(list.begin(), list.end(),
                       [&](size_t a, size_t b) { return other(a) < other(b); });
      const double k = static_cast<double>(list.size());
      const double step = std::min(16.0, (w[u] - 24) / std::max(1.0, k));
      for (size_t i = 0; i < list.size(); ++i) {
        dx[list[i]] = (static_cast<double>(i) - (k - 1) / 2) * step;
      }
    };
    spread(leaving[u], true, top_dx);
    spread(entering[u], false, bottom_dx);
  }
  std::vector<std::vector<Curve>> segs(m);
  std::vector<int> loop_index(n, 0);
  for (size_t e = 0; e < m; ++e) {
    if (loop[e]) {
      const size_t u = g.edges[e].from;
      const double k = loop_index[u]++;
      const double right = cx[u] + w[u] / 2, top = cy[u] - kNodeH / 2;
      const double r = 22 + 14 * k;
      segs[e].push_back(
          {{right - 14, top}, {right - 14, top - r}, {right + r, top + 12}, {right, top + 12}});
      continue;
    }
    const auto& c = chain[e];
    for (size_t i = 0; i + 1 < c.size(); ++i) {
      const size_t a = c[i], b = c[i + 1];
      const Pt p0{cx[a] + (i == 0 ? top_dx[e] : 0), cy[a] + kNodeH / 2};
      const Pt p3{cx[b] + (i + 2 == c.size() ? bottom_dx[e] : 0), cy[b] - kNodeH / 2};
      const double dy = (p3.y - p0.y) / 2;
      segs[e].push_back({p0, {p0.x, p0.y + dy}, {p3.x, p3.y - dy}, p3});
      if (b >= n) {  // straight through the virtual point's row
        const Pt q0{cx[b], cy[b] - kNodeH / 2}, q3{cx[b], cy[b] + kNodeH / 2};
        segs[e].push_back({q0, {q0.x, q0.y + kNodeH / 3}, {q0.x, q3.y - kNodeH / 3}, q3});
      }
    }
    if (back[e]) {
      std::reverse(segs[e].begin(), segs[e].end());
      for (Curve& s : segs[e]) s = {s.p3, s.p2, s.p1, s.p0};
    }
  }

  // 7. Edge labels: the first of a few spots along the edge (from its source) that overlaps no
  // node and no label placed before it; the first spot when all are taken.
  std::vector<Box> taken;
  for (size_t u = 0; u < n; ++u) {
    taken.push_back({cx[u] - w[u] / 2, cy[u] - kNodeH / 2, cx[u] + w[u] / 2, cy[u] + kNodeH / 2});
  }
  double legend_w = 36 + text_width(kLegendArrow, 12);
  for (const char* k : {"candidate", "reference", "control"}) legend_w += 50 + text_width(k, 12);
  const Box legend_box{margin, margin - 4, margin + legend_w, margin + 18};
  for (size_t e = 0; e < m; ++e) {
    std::vector<Pt> spots;
    if (loop[e]) {
      const size_t u = g.edges[e].from;
      const Pt p = segs[e][0].at(0.5);
      spots = {{p.x + ew[e] / 2 + 2, p.y - 8},
               {cx[u], cy[u] - kNodeH / 2 - 12},
               {cx[u], cy[u] + kNodeH / 2 + 12}};
    } else {
      for (size_t s = 0; s < segs[e].size() && s < 5; ++s) {
        for (double t : {0.5, 0.35, 0.65, 0.22, 0.78}) spots.push_back(segs[e][s].at(t));
      }
    }
    Box chosen{spots[0].x - ew[e] / 2, spots[0].y - 8, spots[0].x + ew[e] / 2, spots[0].y + 8};
    for (const Pt& p : spots) {
      const Box b{p.x - ew[e] / 2, p.y - 8, p.x + ew[e] / 2, p.y + 8};
      if (!b.overlaps(legend_box) &&
          std::none_of(taken.begin(), taken.end(), [&](const Box& o) { return o.overlaps(b); })) {
        chosen = b;
        break;
      }
    }
    taken.push_back(chosen);
  }

  // 8. Bounds.
  double minx = 0, maxx = margin + std::max(widest, 380.0) + margin;
  double maxy = margin + legend_h + (visual.empty() ? 40.0 : 0.0);
  for (size_t u = 0; u < n; ++u) {
    maxx = std::max(maxx, cx[u] + w[u] / 2 + margin);
    maxy = std::max(maxy, cy[u] + kNodeH / 2 + margin);
  }
  for (size_t e = 0; e < m; ++e) {
    for (const Curve& s : segs[e]) {
      for (const Pt& p : {s.p0, s.p1, s.p2, s.p3}) {
        minx = std::min(minx, p.x - 4);
        maxx = std::max(maxx, p.x + 4);
        maxy = std::max(maxy, p.y + 4);
      }
    }
    minx = std::min(minx, taken[n + e].x0 - 4);
    maxx = std::max(maxx, taken[n + e].x1 + 4);
    maxy = std::max(maxy, taken[n + e].y1 + 4);
  }
  minx = std::floor(minx);
  const double width = std::ceil(maxx - minx);
  const double height = std::ceil(maxy);

  std::string svg;
  if (standalone) svg += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  svg += std::string(kSvgOpen) + " viewBox=\"" + n1(minx) + " 0 " + n1(width) + " " + n1(height) +
         "\" width=\"" + n1(width) + "\" height=\"" + n1(height) +
         "\" role=\"img\" font-family=\"" + kFontFamily +
         "\" font-size=\"12\"><title>Lineage graph</title>\n";
  svg += "<defs>\n";
  for (const auto& [id, color] : {std::pair<const char*, const char*>{"prov-arrow", "#444444"},
                                  {"prov-arrow-muted", "#999999"}}) {
    svg += std::string("<marker id=\"") + id +
           "\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"9\" markerHeight=\"9\" "
           "markerUnits=\"userSpaceOnUse\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"" +
           color + "\"/></marker>\n";
  }
  svg += "</defs>\n";
  svg += "<rect x=\"" + n1(minx) + "\" y=\"0\" width=\"" + n1(width) + "\" height=\"" + n1(height) +
         "\" fill=\"#ffffff\"/>\n";

  // Legend: node kinds.
  {
    double x = margin;
    const double y = margin;
    struct Kind {
      const char* name;
      const char* fill;
      const char* stroke;
      const char* extra;
    };
    for (const Kind& k :
         {Kind{"candidate", "#fff4cc", "#c98a00", "stroke-width=\"3\""},
          Kind{"reference", "#eaf2fb", "#3b6ea5", "stroke-width=\"1.5\""},
          Kind{"control", "#f2f2f2", "#888888", "stroke-width=\"1.5\" stroke-dasharray=\"4 3\""}}) {
      svg += "<rect x=\"" + n1(x) + "\" y=\"" + n1(y) +
             "\" width=\"22\" height=\"14\" rx=\"3\" fill=\"" + k.fill + "\" stroke=\"" + k.stroke +
             "\" " + k.extra + "/>\n";
      svg += text_el(x + 28, y + 11, "start", k.name, "fill=\"#333333\"");
      x += 28 + text_width(k.name, 12) + 22;
    }
    svg += line_el(x, y + 7, x + 30, y + 7, "#444444",
                   "stroke-width=\"1.5\" marker-end=\"url(#prov-arrow)\"");
    svg += text_el(x + 36, y + 11, "start", kLegendArrow, "fill=\"#333333\"");
  }
  if (n == 0)
    svg += text_el(margin, margin + legend_h + 20, "start", "(no nodes)", "fill=\"#666666\"");

  // Edges under nodes, labels over everything.
  for (size_t e = 0; e < m; ++e) {
    const Edge& ed = g.edges[e];
    const bool muted = muted_relation(ed.relation);
    std::string d = "M" + n1(segs[e][0].p0.x) + "," + n1(segs[e][0].p0.y);
    for (const Curve& c : segs[e]) {
      d += " C" + n1(c.p1.x) + "," + n1(c.p1.y) + " " + n1(c.p2.x) + "," + n1(c.p2.y) + " " +
           n1(c.p3.x) + "," + n1(c.p3.y);
    }
    svg += "<path class=\"edge\" d=\"" + d + "\" fill=\"none\" stroke=\"" +
           (muted ? "#999999" : "#444444") + "\" stroke-width=\"1.6\"" +
           (muted ? " stroke-dasharray=\"5 4\"" : "") + " marker-end=\"url(#" +
           (muted ? "prov-arrow-muted" : "prov-arrow") + ")\"><title>" +
           esc(g.nodes[ed.from].label + " " + kArrow + " " + g.nodes[ed.to].label + ": " +
               edge_label(ed)) +
           "</title></path>\n";
  }
  for (size_t u = 0; u < n; ++u) {
    const Node& node = g.nodes[u];
    const char* fill = "#eaf2fb";
    const char* stroke = "#3b6ea5";
    std::string extra = "stroke-width=\"1.5\"";
    if (node.kind == "candidate") {
      fill = "#fff4cc", stroke = "#c98a00", extra = "stroke-width=\"3\"";
    } else if (node.kind == "control") {
      fill = "#f2f2f2", stroke = "#888888", extra = "stroke-width=\"1.5\" stroke-dasharray=\"4 3\"";
    }
    svg +=
        "<g><title>" + esc(node.label + " (" + node.kind + ", id " + node.id + ")") + "</title>\n";
    svg += "<rect class=\"node\" x=\"" + n1(cx[u] - w[u] / 2) + "\" y=\"" + n1(cy[u] - kNodeH / 2) +
           "\" width=\"" + n1(w[u]) + "\" height=\"" + n1(kNodeH) + "\" rx=\"6\" fill=\"" + fill +
           "\" stroke=\"" + stroke + "\" " + extra + "/>\n";
    svg += text_el(cx[u], cy[u] - 2, "middle", shown[u],
                   std::string("font-size=\"13\" fill=\"#111111\"") +
                       (node.kind == "candidate" ? " font-weight=\"bold\"" : ""));
    svg += text_el(cx[u], cy[u] + 13, "middle", node.kind, "font-size=\"10\" fill=\"#666666\"");
    svg += "</g>\n";
  }
  for (size_t e = 0; e < m; ++e) {
    const Box& b = taken[n + e];
    svg += "<rect x=\"" + n1(b.x0) + "\" y=\"" + n1(b.y0) + "\" width=\"" + n1(b.x1 - b.x0) +
           "\" height=\"" + n1(b.y1 - b.y0) +
           "\" rx=\"3\" fill=\"#ffffff\" fill-opacity=\"0.92\" stroke=\"#dddddd\"/>\n";
    svg += text_el((b.x0 + b.x1) / 2, (b.y0 + b.y1) / 2 + 4, "middle", elabel[e],
                   "font-size=\"11\" fill=\"#222222\"");
  }
  svg += "</svg>\n";
  return svg;
}

// ---------------------------------------------------------------------------------------------
// Plots

constexpr double kPlotW = 760;

std::string weight_plot(const std::vector<WeightLayer>& rows) {
  struct Series {
    std::string label;
    std::vector<std::pair<double, double>> pts;
  };
  std::vector<Series> series;
  std::map<std::pair<std::string, std::string>, size_t> index;
  double xlo = 0, xhi = 0;
  bool negative = false;
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    auto [it, inserted] = index.emplace(std::make_pair(r.reference, r.component), series.size());
    if (inserted) series.push_back({r.reference + " " + kMidDot + " " + r.component, {}});
    series[it->second].pts.push_back({static_cast<double>(r.layer), r.similarity});
    const double l = static_cast<double>(r.layer);
    xlo = i == 0 ? l : std::min(xlo, l);
    xhi = i == 0 ? l : std::max(xhi, l);
    if (r.similarity < 0) negative = true;
  }
  if (xhi - xlo < 1) xlo -= 1, xhi += 1;
  const double ylo = negative ? -1 : 0, yhi = 1;
  const Area a{64, 16, kPlotW - 64 - 20, 260};
  auto X = [&](double v) { return a.x0 + (v - xlo) / (xhi - xlo) * a.w; };
  auto Y = [&](double v) {
    return a.y0 + a.h - (std::clamp(v, ylo, yhi) - ylo) / (yhi - ylo) * a.h;
  };

  std::vector<Tick> xt, yt;
  const double xstep = std::max(1.0, std::round(nice_step(xhi - xlo, 10)));
  for (double v : linear_ticks(xlo, xhi, xstep)) xt.push_back({X(v), printf_str("%.0f", v)});
  for (double v : linear_ticks(ylo, yhi, negative ? 0.5 : 0.2)) {
    yt.push_back({Y(v), printf_str("%.6g", v)});
  }
  std::vector<LegendEntry> entries;
  for (size_t i = 0; i < series.size(); ++i) {
    entries.push_back({series[i].label, series_color(i), series_dash(i)});
  }
  double height = 0;
  const std::string leg = legend_below(entries, a, &height);

  std::string svg = svg_open(kPlotW, height, "Per-layer weight similarity");
  svg += frame(a, xt, yt, "layer", "similarity");
  if (negative) svg += line_el(a.x0, Y(0), a.x0 + a.w, Y(0), "#999999");
  for (size_t i = 0; i < series.size(); ++i) {
    auto pts = series[i].pts;
    std::stable_sort(pts.begin(), pts.end(),
                     [](const auto& p, const auto& q) { return p.first < q.first; });
    std::string list;
    for (const auto& [x, y] : pts) list += (list.empty() ? "" : " ") + n1(X(x)) + "," + n1(Y(y));
    const std::string dash = series_dash(i);
    svg += "<polyline points=\"" + list + "\" fill=\"none\" stroke=\"" + series_color(i) +
           "\" stroke-width=\"1.8\"" + (dash.empty() ? "" : " stroke-dasharray=\"" + dash + "\"") +
           "><title>" + esc(series[i].label) + "</title></polyline>\n";
    if (pts.size() <= 64) {
      for (const auto& [x, y] : pts) {
        svg += "<circle cx=\"" + n1(X(x)) + "\" cy=\"" + n1(Y(y)) + "\" r=\"2.5\" fill=\"" +
               series_color(i) + "\"/>\n";
      }
    }
  }
  svg += leg;
  svg += "</svg>\n";
  return svg;
}

std::string decade_label(long long k) {
  if (k == 0) return "1";
  if (k > 0 && k <= 6) return printf_str("%.0f", std::pow(10.0, static_cast<double>(k)));
  return "1e" + std::to_string(k);
}

long long decade_step(long long span) {
  for (long long s : {1, 2, 5, 10, 20, 25, 50, 100}) {
    if (span / s <= 8) return s;
  }
  return 100;
}

std::string probe_plot(const std::vector<ProbeCurve>& curves) {
  double min_probes = 0, max_probes = 0, min_logp = 0;
  bool any = false;
  for (const auto& c : curves) {
    for (size_t i = 0; i < c.probes.size(); ++i) {
      const double x = static_cast<double>(c.probes[i]);
      min_probes = any ? std::min(min_probes, x) : x;
      max_probes = any ? std::max(max_probes, x) : x;
      min_logp = std::min(min_logp, -minus_log10(c.p[i]));
      any = true;
    }
  }
  long long xlo = 0, xhi = 1;
  if (any) {
    xlo = static_cast<long long>(std::floor(std::log10(min_probes)));
    xhi = static_cast<long long>(std::ceil(std::log10(max_probes)));
    if (xhi <= xlo) xhi = xlo + 1;
  }
  long long ylo = std::min<long long>(-2, static_cast<long long>(std::floor(min_logp)));
  const long long ys = decade_step(-ylo);
  ylo = -((-ylo + ys - 1) / ys) * ys;  // the axis ends on a labelled decade
  const Area a{64, 16, kPlotW - 64 - 56, 260};
  auto X = [&](double probes) {
    return a.x0 +
           (std::log10(probes) - static_cast<double>(xlo)) / static_cast<double>(xhi - xlo) * a.w;
  };
  // log10 p runs from 0 (top) down to ylo (bottom).
  auto Y = [&](double p) { return a.y0 + a.h * -minus_log10(p) / static_cast<double>(ylo); };
  std::vector<Tick> xt, yt;
  const long long xs = decade_step(xhi - xlo);
  for (long long k = xlo; k <= xhi; k += xs) {
    xt.push_back({X(std::pow(10.0, static_cast<double>(k))), decade_label(k)});
  }
  for (long long k = 0; k >= ylo; k -= ys) {
    yt.push_back({a.y0 + a.h * static_cast<double>(k) / static_cast<double>(ylo), decade_label(k)});
  }
  std::vector<LegendEntry> entries;
  for (size_t i = 0; i < curves.size(); ++i) {
    entries.push_back({curves[i].reference, series_color(i), series_dash(i)});
  }
  double height = 0;
  const std::string leg = legend_below(entries, a, &height);

  std::string svg = svg_open(kPlotW, height, "p-value against number of probes");
  svg += frame(a, xt, yt, "number of probes (log scale)", "p-value (log scale)");
  const double y05 = Y(0.05), y01 = Y(0.01);
  svg += line_el(a.x0, y05, a.x0 + a.w, y05, "#b03a2e", "stroke-dasharray=\"6 4\"");
  svg += line_el(a.x0, y01, a.x0 + a.w, y01, "#b03a2e", "stroke-dasharray=\"2 3\"");
  svg += text_el(a.x0 + a.w + 4, y05 - 2, "start", "0.05", "font-size=\"11\" fill=\"#b03a2e\"");
  svg += text_el(a.x0 + a.w + 4, y01 + 11, "start", "0.01", "font-size=\"11\" fill=\"#b03a2e\"");
  for (size_t i = 0; i < curves.size(); ++i) {
    std::vector<std::pair<int64_t, double>> pts;
    for (size_t k = 0; k < curves[i].probes.size(); ++k) {
      pts.push_back({curves[i].probes[k], curves[i].p[k]});
    }
    std::stable_sort(pts.begin(), pts.end(),
                     [](const auto& p, const auto& q) { return p.first < q.first; });
    std::string list;
    for (const auto& [x, p] : pts) {
      list += (list.empty() ? "" : " ") + n1(X(static_cast<double>(x))) + "," + n1(Y(p));
    }
    const std::string dash = series_dash(i);
    svg += "<polyline points=\"" + list + "\" fill=\"none\" stroke=\"" + series_color(i) +
           "\" stroke-width=\"1.8\"" + (dash.empty() ? "" : " stroke-dasharray=\"" + dash + "\"") +
           "><title>" + esc(curves[i].reference) + "</title></polyline>\n";
    for (const auto& [x, p] : pts) {
      svg += "<circle cx=\"" + n1(X(static_cast<double>(x))) + "\" cy=\"" + n1(Y(p)) +
             "\" r=\"2.5\" fill=\"" + series_color(i) + "\"><title>" +
             esc(curves[i].reference + ": " + int_str(x) + " probes, " + p_equals(p)) +
             "</title></circle>\n";
    }
  }
  svg += leg;
  svg += "</svg>\n";
  return svg;
}

std::string layer_color(const std::string& layer) {
  if (layer == "identity") return "#6a3d9a";
  if (layer == "weights") return "#0072B2";
  if (layer == "outputs") return "#009E73";
  return "#D55E00";
}

std::string pvalue_bars(const std::vector<Evidence>& rows) {
  std::vector<std::string> labels;
  double label_w = 80;
  double vmax = 2.5;
  for (const auto& e : rows) {
    labels.push_back(truncate(e.reference + " " + kMidDot + " " + e.method, 44));
    label_w = std::max(label_w, text_width(labels.back(), 12) + 12);
    if (e.p) vmax = std::max(vmax, minus_log10(*e.p));
  }
  label_w = std::min(label_w, 300.0);
  // Up to 20 the axis is linear; beyond, it is compressed as log10(1 + x) so that p = 0.05,
  // p = 0.01 and moderate evidence stay visible next to a bar of 300.
  const bool compressed = vmax > 20;
  std::vector<double> ticks;
  double xmax = 0;
  if (compressed) {
    for (double t : {0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 300.0}) {
      if (xmax < vmax) ticks.push_back(xmax = t);
    }
  } else {
    const double step = nice_step(vmax, 6);
    xmax = std::ceil(vmax / step - 1e-9) * step;
    ticks = linear_ticks(0, xmax, step);
  }
  auto scale = [&](double v) { return compressed ? std::log10(1 + v) : v; };
  const double row_h = 22;
  const Area a{label_w + 8, 36, kPlotW - label_w - 8 - 96,
               row_h * static_cast<double>(rows.size())};
  auto X = [&](double v) { return a.x0 + scale(v) / scale(xmax) * a.w; };

  std::vector<LegendEntry> entries;
  for (const auto& l : kEvidenceLayers) {
    if (std::any_of(rows.begin(), rows.end(), [&](const Evidence& e) { return e.layer == l; })) {
      entries.push_back({l + " evidence", layer_color(l), "box"});
    }
  }
  double height = 0;
  const std::string leg = legend_below(entries, a, &height);

  std::string svg = svg_open(
      kPlotW, height, std::string("p-value summary (") + kMinus + "log10 p per evidence row)");
  for (double v : ticks) {
    svg += line_el(X(v), a.y0, X(v), a.y0 + a.h, "#e3e3e3");
    svg += line_el(X(v), a.y0 + a.h, X(v), a.y0 + a.h + 4, "#555555");
    svg += text_el(X(v), a.y0 + a.h + 17, "middle", printf_str("%.6g", v), "fill=\"#333333\"");
  }
  for (size_t i = 0; i < rows.size(); ++i) {
    const Evidence& e = rows[i];
    const double y = a.y0 + row_h * static_cast<double>(i);
    svg += "<text x=\"" + n1(a.x0 - 6) + "\" y=\"" + n1(y + 15) +
           "\" text-anchor=\"end\" fill=\"#222222\"><title>" +
           esc(e.reference + " " + kMidDot + " " + e.method + " (" + e.statistic + ")") +
           "</title>" + esc(labels[i]) + "</text>\n";
    if (!e.p) {
      svg += text_el(a.x0 + 4, y + 15, "start", std::string(kDash) + " " + kScoreOnly,
                     "font-style=\"italic\" fill=\"#777777\"");
      continue;
    }
    const double v = minus_log10(*e.p);
    svg += "<rect x=\"" + n1(a.x0) + "\" y=\"" + n1(y + 4) + "\" width=\"" + n1(X(v) - a.x0) +
           "\" height=\"14\" fill=\"" + layer_color(e.layer) + "\"><title>" +
           esc(std::string(kMinus) + "log10 p = " + printf_str("%.3g", v) + " (" + p_equals(e.p) +
               ")") +
           "</title></rect>\n";
    svg += text_el(X(v) + 4, y + 15, "start", p_equals(e.p),
                   "font-size=\"11\" fill=\"#333333\" stroke=\"#ffffff\" stroke-width=\"3\" "
                   "paint-order=\"stroke\"");
  }
  svg += "<rect x=\"" + n1(a.x0) + "\" y=\"" + n1(a.y0) + "\" width=\"" + n1(a.w) + "\" height=\"" +
         n1(a.h) + "\" fill=\"none\" stroke=\"#555555\"/>\n";
  const double x05 = X(minus_log10(0.05)), x01 = X(2.0);
  svg += line_el(x05, a.y0 - 18, x05, a.y0 + a.h, "#b03a2e", "stroke-dasharray=\"6 4\"");
  svg += line_el(x01, a.y0 - 6, x01, a.y0 + a.h, "#b03a2e", "stroke-dasharray=\"2 3\"");
  svg += text_el(x05 + 3, a.y0 - 22, "start", "p = 0.05", "font-size=\"11\" fill=\"#b03a2e\"");
  svg += text_el(x01 + 3, a.y0 - 8, "start", "p = 0.01", "font-size=\"11\" fill=\"#b03a2e\"");
  svg += text_el(a.x0 + a.w / 2, a.y0 + a.h + 36, "middle",
                 std::string(kMinus) + "log10 p (capped at 300" +
                     (compressed ? "; axis compressed above 1: log scale of 1 + x)" : ")"),
                 "fill=\"#222222\"");
  svg += leg;
  svg += "</svg>\n";
  return svg;
}

// ---------------------------------------------------------------------------------------------
// Shared wording

std::string relation_meaning(const std::string& r) {
  static const std::map<std::string, std::string> kMeaning = {
      {"identical", "the same model as the parent"},
      {"converted", "the parent in another file format or dtype"},
      {"quantized", "a quantized copy of the parent"},
      {"permuted", "the parent with its neurons or heads permuted"},
      {"noised", "the parent with noise added to its weights"},
      {"pruned", "the parent with weights or layers removed"},
      {"merged", "a merge of several parent models"},
      {"finetuned", "the parent, trained further"},
      {"distilled_logit", "trained on the parent's output distributions"},
      {"distilled_seq", "trained on text generated by the parent"},
      {"independent", "no evidence of derivation from any reference"},
      {"inconclusive", "the evidence does not decide"}};
  auto it = kMeaning.find(r);
  return it == kMeaning.end() ? "" : it->second;
}

std::string verdict_class(const std::string& r) {
  if (r == "independent") return "independent";
  if (r == "inconclusive") return "inconclusive";
  return "derived";
}

std::vector<std::string> verdict_parents(const Verdict& v) {
  if (v.parents && !v.parents->empty()) return *v.parents;
  if (v.parent) return {*v.parent};
  return {};
}

std::string probes_text(const Evidence& e) {
  std::string s = e.probes ? int_str(*e.probes) : "";
  if (e.probes_needed) {
    s += std::string(s.empty() ? kDash : "") + " (needed " + int_str(*e.probes_needed) + ")";
  }
  return s;
}

bool any_holm(const std::vector<Reference>& refs) {
  return std::any_of(refs.begin(), refs.end(), [](const Reference& r) { return r.has_holm; });
}

// ---------------------------------------------------------------------------------------------
// HTML

constexpr const char* kCss = R"css(
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #ffffff; color: #1d1d1f; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 32px 40px; }
h1 { font-size: 1.65em; margin: 0 0 4px; overflow-wrap: anywhere; }
h2 { font-size: 1.2em; margin: 28px 0 8px; border-bottom: 1px solid #dddddd; padding-bottom: 4px; }
.sub { color: #555555; font-size: 0.9em; margin: 2px 0; overflow-wrap: anywhere; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace; font-size: 0.86em; }
.digest { word-break: break-all; }
.verdict { border: 2px solid #8a8a8a; border-left-width: 10px; border-radius: 8px; padding: 14px 18px; margin: 18px 0; background: #f5f5f5; }
.verdict.derived { border-color: #b9472f; background: #fcf1ee; }
.verdict.independent { border-color: #2e7d32; background: #eff7ef; }
.verdict .kicker { text-transform: uppercase; letter-spacing: 0.06em; font-size: 0.78em; color: #555555; }
.verdict .relation { font-size: 1.6em; font-weight: 700; margin: 2px 0 0; }
.verdict .meaning { color: #444444; margin: 0 0 8px; }
.verdict dl { display: grid; grid-template-columns: max-content 1fr; gap: 4px 18px; margin: 6px 0 0; }
.verdict dt { font-weight: 600; color: #444444; }
.verdict dd { margin: 0; overflow-wrap: anywhere; }
.summary { white-space: pre-line; }
.badge { display: inline-block; padding: 0 9px; border-radius: 10px; font-size: 0.85em; font-weight: 600; }
.conf-high { background: #1b5e20; color: #ffffff; }
.conf-medium { background: #f2b01e; color: #1d1d1f; }
.conf-low { background: #9e9e9e; color: #ffffff; }
table { border-collapse: collapse; width: 100%; font-size: 0.88em; margin: 6px 0; }
th, td { border: 1px solid #d4d4d4; padding: 5px 8px; text-align: left; vertical-align: top; overflow-wrap: break-word; }
th { background: #eef0f3; font-weight: 600; }
tbody tr:nth-child(even) td { background: #fafafa; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
td.p { white-space: nowrap; font-variant-numeric: tabular-nums; }
.note { display: block; color: #666666; font-size: 0.85em; font-style: italic; white-space: normal; }
.sub-line { display: block; color: #666666; font-size: 0.85em; }
tr.detail td { background: #f7f7f7; color: #444444; font-size: 0.9em; }
figure { margin: 10px 0 18px; }
figure svg { display: block; max-width: 100%; height: auto; }
figcaption { color: #555555; font-size: 0.86em; margin-top: 4px; }
footer { border-top: 1px solid #cccccc; margin-top: 32px; padding-top: 10px; color: #555555; font-size: 0.85em; }
footer p { margin: 2px 0; overflow-wrap: anywhere; }
@page { margin: 14mm; }
@media print {
  body { font-size: 10pt; }
  main { max-width: none; padding: 0 1px; }
  h2 { break-after: avoid; }
  figure, .verdict, tr { break-inside: avoid; }
  thead { display: table-header-group; }
  .verdict, .badge, th, tr.detail td { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
)css";

std::string html_p_cell(const std::optional<double>& p) {
  if (!p)
    return std::string("<td class=\"p\">") + kDash + "<span class=\"note\">" + kScoreOnly +
           "</span></td>";
  return "<td class=\"p\">" + esc(format_p_value(p)) + "</td>";
}

std::string html_p_inline(const std::optional<double>& p) {
  if (!p) return std::string(kDash) + " <span class=\"note\">" + kScoreOnly + "</span>";
  return esc(format_p_value(p));
}

std::string render_html_doc(const Report& r) {
  std::string h;
  h += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  h += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  h += "<title>Lineage report: " + esc(r.candidate.name) + "</title>\n";
  h += "<style>" + std::string(kCss) + "</style>\n</head>\n<body>\n<main>\n";

  // Header.
  h += "<header>\n<h1>Lineage report: " + esc(r.candidate.name) + "</h1>\n";
  if (r.candidate.path)
    h += "<p class=\"sub\">Path: <code>" + esc(*r.candidate.path) + "</code></p>\n";
  h += "<p class=\"sub\">SHA-256: <code class=\"digest\">" + esc(r.candidate.sha256) +
       "</code></p>\n</header>\n";

  // Verdict.
  const Verdict& v = r.verdict;
  h += "<section class=\"verdict " + verdict_class(v.relation) + "\" aria-label=\"Verdict\">\n";
  h += "<div class=\"kicker\">Verdict</div>\n";
  h += "<div class=\"relation\">" + esc(v.relation) + "</div>\n";
  h += "<p class=\"meaning\">" + esc(relation_meaning(v.relation)) + "</p>\n<dl>\n";
  const auto parents = verdict_parents(v);
  h += std::string("<dt>") + (parents.size() > 1 ? "Parents" : "Parent") + "</dt><dd>";
  if (parents.empty()) h += "none";
  for (size_t i = 0; i < parents.size(); ++i) h += (i ? ", " : "") + esc(parents[i]);
  h += "</dd>\n";
  h += "<dt>p-value</dt><dd>" + html_p_inline(v.p) + "</dd>\n";
  h += "<dt>Confidence</dt><dd><span class=\"badge conf-" + esc(v.confidence) + "\">" +
       esc(v.confidence) + "</span></dd>\n";
  h += "<dt>Summary</dt><dd class=\"summary\">" + esc(v.summary) + "</dd>\n</dl>\n</section>\n";

  // References.
  const bool holm = any_holm(r.references);
  h += "<section>\n<h2>References</h2>\n";
  if (r.references.empty()) {
    h += "<p>No reference models were compared.</p>\n";
  } else {
    h += "<table>\n<thead><tr><th>Reference</th><th>SHA-256</th><th>Relation</th><th>p-value</th>";
    if (holm) h += "<th>p-value (Holm)</th>";
    h += "</tr></thead>\n<tbody>\n";
    for (const auto& ref : r.references) {
      h += "<tr><td>" + esc(ref.name) + "</td><td><code class=\"digest\">" + esc(ref.sha256) +
           "</code></td><td>" + esc(ref.relation) + "</td>" + html_p_cell(ref.p);
      if (holm) h += ref.has_holm ? html_p_cell(ref.holm) : "<td class=\"p\"></td>";
      h += "</tr>\n";
    }
    h += "</tbody>\n</table>\n";
  }
  h += "</section>\n";

  // Evidence.
  h += "<section>\n<h2>Evidence</h2>\n";
  if (r.evidence.empty()) {
    h += "<p>No evidence rows.</p>\n";
  } else {
    h += "<table>\n<thead><tr><th>Reference</th><th>Layer</th><th>Method</th><th>Statistic</th>"
         "<th>Value</th><th>p-value</th><th>Null hypothesis</th><th>Probes</th></tr></thead>\n"
         "<tbody>\n";
    for (const auto& e : r.evidence) {
      h += "<tr><td>" + esc(e.reference) + "</td><td>" + esc(e.layer) + "</td><td>" + esc(e.method);
      if (e.combination) {
        h += "<span class=\"sub-line\">combination: " + esc(*e.combination) + "</span>";
      }
      h += "</td><td>" + esc(e.statistic) + "</td><td class=\"num\">" +
           (e.value ? esc(format_number(*e.value)) : std::string(kDash)) + "</td>" +
           html_p_cell(e.p) + "<td>" + esc(e.null_hypothesis) + "</td><td class=\"num\">" +
           esc(probes_text(e)) + "</td></tr>\n";
      if (e.detail) {
        h += "<tr class=\"detail\"><td colspan=\"8\">detail: <code>" + esc(*e.detail) +
             "</code></td></tr>\n";
      }
    }
    h += "</tbody>\n</table>\n";
  }
  h += "</section>\n";

  // Graph.
  h += "<section>\n<h2>Lineage graph</h2>\n<figure>\n" + graph_svg(r.graph, false) +
       "<figcaption>Arrows point from parent to child and carry the relation and its p-value; "
       "the candidate is highlighted. Dashed grey edges: independent or inconclusive.</figcaption>"
       "\n</figure>\n</section>\n";

  if (r.weight_layers && !r.weight_layers->empty()) {
    h += "<section>\n<h2>Weight similarity by layer</h2>\n<figure>\n" +
         weight_plot(*r.weight_layers) +
         "<figcaption>Similarity of each layer's weights to the reference, one line per "
         "reference and component.</figcaption>\n</figure>\n</section>\n";
  }
  if (r.probe_curve && !r.probe_curve->empty()) {
    h += "<section>\n<h2>p-value against number of probes</h2>\n<figure>\n" +
         probe_plot(*r.probe_curve) +
         "<figcaption>How the p-value falls as probes are added (both axes logarithmic); dashed "
         "lines at p = 0.05 and p = 0.01.</figcaption>\n</figure>\n</section>\n";
  }
  if (!r.evidence.empty()) {
    h += "<section>\n<h2>p-value summary</h2>\n<figure>\n" + pvalue_bars(r.evidence) +
         "<figcaption>" + kMinus +
         "log10 p for each evidence row (longer is stronger evidence against its null "
         "hypothesis), capped at 300.</figcaption>\n</figure>\n</section>\n";
  }

  // Footer.
  h += "<footer>\n<p>Generated by " + esc(r.tool_name) + " " + esc(r.tool_version) +
       " (report format version 1).</p>\n";
  if (r.suite) {
    h += "<p>Probe suite: " + esc(r.suite->first) + ", digest <code class=\"digest\">" +
         esc(r.suite->second) + "</code></p>\n";
  } else {
    h += "<p>Probe suite: none recorded.</p>\n";
  }
  if (r.environment) {
    h += "<p>Environment: device " + esc(r.environment->first) + ", dtype " +
         esc(r.environment->second) + "</p>\n";
  } else {
    h += "<p>Environment: not recorded.</p>\n";
  }
  h += "</footer>\n</main>\n</body>\n</html>\n";
  return h;
}

// ---------------------------------------------------------------------------------------------
// Markdown

std::string md_p(const std::optional<double>& p) {
  if (!p) return std::string(kDash) + " *" + kScoreOnly + "*";
  return format_p_value(p);  // our own text: digits, 'e', '-', '+', '<', ' '
}

std::string render_markdown_doc(const Report& r) {
  std::string m;
  m += "# Lineage report: " + md(r.candidate.name) + "\n\n";
  if (r.candidate.path) m += "- **Path:** " + md(*r.candidate.path) + "\n";
  m += "- **SHA-256:** `" + r.candidate.sha256 + "`\n\n";

  const Verdict& v = r.verdict;
  m += "## Verdict\n\n";
  m += "- **Relation:** " + md(v.relation) + " " + kDash + " " + md(relation_meaning(v.relation)) +
       "\n";
  const auto parents = verdict_parents(v);
  m += std::string("- **") + (parents.size() > 1 ? "Parents" : "Parent") + ":** ";
  if (parents.empty()) m += "none";
  for (size_t i = 0; i < parents.size(); ++i) m += (i ? ", " : "") + md(parents[i]);
  m += "\n- **p-value:** " + md_p(v.p) + "\n";
  m += "- **Confidence:** " + md(v.confidence) + "\n";
  m += "- **Summary:** " + md(v.summary) + "\n\n";

  const bool holm = any_holm(r.references);
  m += "## References\n\n";
  if (r.references.empty()) {
    m += "No reference models were compared.\n\n";
  } else {
    m += "| Reference | SHA-256 | Relation | p-value |" +
         std::string(holm ? " p-value (Holm) |" : "") + "\n|---|---|---|---|" +
         (holm ? "---|" : "") + "\n";
    for (const auto& ref : r.references) {
      m += "| " + md(ref.name) + " | `" + ref.sha256 + "` | " + md(ref.relation) + " | " +
           md_p(ref.p) + " |";
      if (holm) m += " " + (ref.has_holm ? md_p(ref.holm) : std::string()) + " |";
      m += "\n";
    }
    m += "\n";
  }

  m += "## Evidence\n\n";
  if (r.evidence.empty()) {
    m += "No evidence rows.\n\n";
  } else {
    m +=
        "| # | Reference | Layer | Method | Statistic | Value | p-value | Null hypothesis | Probes "
        "|\n|---|---|---|---|---|---|---|---|---|\n";
    bool details = false;
    for (size_t i = 0; i < r.evidence.size(); ++i) {
      const auto& e = r.evidence[i];
      std::string method = md(e.method);
      if (e.combination) method += " (combination: " + md(*e.combination) + ")";
      m += "| " + int_str(static_cast<int64_t>(i + 1)) + " | " + md(e.reference) + " | " +
           md(e.layer) + " | " + method + " | " + md(e.statistic) + " | " +
           (e.value ? format_number(*e.value) : std::string(kDash)) + " | " + md_p(e.p) + " | " +
           md(e.null_hypothesis) + " | " + probes_text(e) + " |\n";
      details = details || e.detail.has_value();
    }
    m += "\n";
    if (details) {
      m += "Details:\n\n";
      for (size_t i = 0; i < r.evidence.size(); ++i) {
        if (r.evidence[i].detail) {
          m += "- Row " + int_str(static_cast<int64_t>(i + 1)) + ": " + md(*r.evidence[i].detail) +
               "\n";
        }
      }
      m += "\n";
    }
  }

  m += "## Lineage graph\n\n";
  const Graph& g = r.graph;
  auto node_text = [&](size_t u) {
    const Node& node = g.nodes[u];
    return "**" + md(node.label) + "**" + (node.kind == "candidate" ? " (candidate)" : "") +
           (node.kind == "control" ? " (control)" : "");
  };
  if (g.edges.empty()) m += "No edges.\n";
  for (const auto& e : g.edges) {
    m += "- " + node_text(e.from) + " " + kArrow + " " + node_text(e.to) + ": " + md(e.relation) +
         ", p-value " + md_p(e.p) + "\n";
  }
  std::vector<bool> linked(g.nodes.size(), false);
  for (const auto& e : g.edges) linked[e.from] = linked[e.to] = true;
  std::string lone;
  for (size_t u = 0; u < g.nodes.size(); ++u) {
    if (!linked[u]) lone += (lone.empty() ? "" : ", ") + node_text(u);
  }
  if (!lone.empty()) m += "\nNodes without edges: " + lone + "\n";
  m += "\n";

  if (r.weight_layers && !r.weight_layers->empty()) {
    m += "## Weight similarity by layer\n\n";
    m += "| Reference | Component | Layers | Min | Mean | Max |\n|---|---|---|---|---|---|\n";
    struct Agg {
      std::string reference, component;
      size_t count = 0;
      double min = 0, max = 0, sum = 0;
    };
    std::vector<Agg> aggs;
    std::map<std::pair<std::string, std::string>, size_t> index;
    for (const auto& w : *r.weight_layers) {
      auto [it, inserted] = index.emplace(std::make_pair(w.reference, w.component), aggs.size());
      if (inserted) aggs.push_back({w.reference, w.component, 0, w.similarity, w.similarity, 0});
      Agg& a = aggs[it->second];
      ++a.count;
      a.min = std::min(a.min, w.similarity);
      a.max = std::max(a.max, w.similarity);
      a.sum += w.similarity;
    }
    for (const auto& a : aggs) {
      m += "| " + md(a.reference) + " | " + md(a.component) + " | " +
           int_str(static_cast<int64_t>(a.count)) + " | " + format_number(a.min) + " | " +
           format_number(a.sum / static_cast<double>(a.count)) + " | " + format_number(a.max) +
           " |\n";
    }
    m += "\n";
  }
  if (r.probe_curve && !r.probe_curve->empty()) {
    m += "## p-value against number of probes\n\n";
    m += "| Reference | Probes | p-values |\n|---|---|---|\n";
    for (const auto& c : *r.probe_curve) {
      std::string probes, ps;
      for (size_t i = 0; i < c.probes.size(); ++i) {
        probes += (i ? ", " : "") + int_str(c.probes[i]);
        ps += (i ? ", " : "") + format_p_value(c.p[i]);
      }
      m += "| " + md(c.reference) + " | " + probes + " | " + ps + " |\n";
    }
    m += "\n";
  }

  m += "---\n\n";
  m += "Generated by " + md(r.tool_name) + " " + md(r.tool_version) +
       " (report format version 1).  \n";
  if (r.suite) {
    m += "Probe suite: " + md(r.suite->first) + ", digest " + md(r.suite->second) + ".  \n";
  } else {
    m += "Probe suite: none recorded.  \n";
  }
  if (r.environment) {
    m += "Environment: device " + md(r.environment->first) + ", dtype " +
         md(r.environment->second) + ".\n";
  } else {
    m += "Environment: not recorded.\n";
  }
  return m;
}

template <typename F>
Result<std::string> guarded(F&& f) {
  try {
    return f();
  } catch (const std::exception& e) {
    return internal_error(std::string("rendering the report failed: ") + e.what());
  }
}

}  // namespace

std::string format_p_value(std::optional<double> p) {
  if (!p) return kDash;
  if (std::isnan(*p)) return "NaN";
  if (*p < kPFloor) return "< 1e-300";
  return printf_str("%.2e", *p);
}

Status validate_report(const nlohmann::json& report) {
  try {
    return parse_report(report).status();
  } catch (const std::exception& e) {
    return internal_error(std::string("checking the report failed: ") + e.what());
  }
}

Result<std::string> render_markdown(const nlohmann::json& report) {
  return guarded([&]() -> Result<std::string> {
    PROV_ASSIGN_OR_RETURN(Report r, parse_report(report));
    return render_markdown_doc(r);
  });
}

Result<std::string> render_html(const nlohmann::json& report) {
  return guarded([&]() -> Result<std::string> {
    PROV_ASSIGN_OR_RETURN(Report r, parse_report(report));
    return render_html_doc(r);
  });
}

Result<std::string> render_graph_svg(const nlohmann::json& graph) {
  return guarded([&]() -> Result<std::string> {
    Graph g;
    PROV_RETURN_IF_ERROR(parse_graph(graph, "graph", &g));
    return graph_svg(g, true);
  });
}

}  // namespace prov::lineage
