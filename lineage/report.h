// The lineage report, typed: what prov concluded about one candidate model — derived from which
// reference, how, on what evidence — in one struct with one JSON writer (report_to_json), one
// reader that validates as it reads (report_from_json), and the schema written down in
// docs/formats/report.md (report_version 1). Everything that writes, signs, renders, stores or
// exports a report goes through these two functions; nothing else reads the JSON.
//
// Optional fields (std::optional) are written only when set; fields the schema calls "required,
// may be null" are always written (null when empty). The JSON writer sorts keys, so the same
// Report always gives the same bytes.
//
// Thread safety: plain data and pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/relation.h"
#include "core/status.h"

namespace prov::lineage {

inline constexpr int kReportVersion = 1;

// The evidence layers a report row may name (ReportEvidence::layer), in display order.
inline const std::vector<std::string>& evidence_layers() {
  static const std::vector<std::string> layers = {"identity", "weights", "outputs", "distillation"};
  return layers;
}

enum class Confidence { kHigh, kMedium, kLow };
const char* confidence_name(Confidence c);  // "high", "medium", "low"
std::optional<Confidence> parse_confidence(const std::string& name);

struct ReportCandidate {
  std::string name;
  std::optional<std::string> path;    // checkpoint, signature file or endpoint URL
  std::string sha256;                 // the OMS model digest (64 hex), or see `source`
  std::optional<std::string> source;  // how a candidate without weights was observed
};

struct ReportVerdict {
  Relation relation = Relation::kInconclusive;
  std::optional<std::string> parent;                // written as null when empty
  std::optional<std::vector<std::string>> parents;  // several parents (merges)
  std::optional<std::string> parent_digest;         // "sha256:<hex>" of the parent
  std::optional<double> p_value;                    // written as null when empty
  Confidence confidence = Confidence::kLow;
  std::string summary;
};

struct ReportReferenceOutputs {
  std::string relation;  // distilled_logit | distilled_seq | weight_derived | independent | ...
  std::optional<double> p_value;
  std::optional<double> p_value_holm;
};

struct ReportReference {
  std::string name;
  std::optional<std::string> path;
  std::string sha256;
  std::string relation;  // free text (normally a relation name; "not compared")
  std::optional<double> p_value;
  // Written when set; `has_holm` with an empty value writes null ("no calibrated test").
  bool has_holm = false;
  std::optional<double> p_value_holm;
  std::optional<ReportReferenceOutputs> outputs;
};

struct ReportEvidence {
  std::string reference;
  std::string layer;  // identity | weights | outputs | distillation
  std::string method;
  std::string statistic;
  std::optional<double> value;  // null when the statistic has no finite value
  std::optional<double> p_value;
  std::string null_hypothesis;
  std::optional<int64_t> probes;
  std::optional<int64_t> probes_needed;
  std::optional<std::string> combination;
  std::optional<nlohmann::json> detail;  // an object
};

struct ReportWeightLayer {
  std::string reference;
  int64_t layer = 0;
  std::string component;
  double similarity = 0;
  std::optional<double> p_value;
};

struct ReportProbeCurve {
  std::string reference;
  std::vector<int64_t> probes;
  std::vector<double> p_values;
};

struct ReportNode {
  std::string id;
  std::string label;
  std::string kind;  // candidate | reference | control
};

struct ReportEdge {
  size_t from = 0, to = 0;  // indices into nodes (written as the nodes' ids)
  std::string relation;
  std::optional<double> p_value;
};

struct ReportGraph {
  std::vector<ReportNode> nodes;
  std::vector<ReportEdge> edges;
};

struct ReportSuite {
  std::string name;
  std::string digest;
};

// What one model run behind the report used (a signature collected or read).
struct ReportRun {
  std::string model;                        // display name
  std::string role;                         // candidate | reference | control
  std::string source;                       // checkpoint | endpoint | signature file
  std::string device;                       // "cpu", "cuda:0", "endpoint:completions", ...
  std::string dtype;                        // "float32", ... ("" when the engine does not say)
  std::optional<std::string> backend;       // "libtorch 2.1.2", "openai-completions", ...
  std::optional<std::string> tool_version;  // prov version that collected it
  // Endpoint runs (signature schema 2): the engine and its version ("vllm 0.8.4"), its
  // log-probability mode ("raw", "processed", "none"), the most alternatives it gave per
  // position when fewer than the suite asked for, and which statistics its answers allow
  // ("token-level: ..." or "text-level: <why>").
  std::optional<std::string> engine;
  std::optional<std::string> logprob_mode;
  std::optional<int64_t> top_k_limit;
  std::optional<std::string> statistics;
};

struct ReportEnvironment {
  std::string device;  // where the models ran (the candidate's run; "cpu" for weights alone)
  std::string dtype;   // their compute dtype ("none" when no model was run)
  std::optional<int64_t> threads;              // CPU threads of the weight tests
  std::optional<std::vector<ReportRun>> runs;  // one per signature behind the output tests
};

struct Report {
  int report_version = kReportVersion;
  ReportCandidate candidate;
  ReportVerdict verdict;
  std::vector<ReportReference> references;
  std::vector<ReportEvidence> evidence;
  std::optional<std::vector<ReportWeightLayer>> weight_layers;
  std::optional<std::vector<ReportProbeCurve>> probe_curve;
  ReportGraph graph;
  std::optional<ReportSuite> suite;
  std::string tool_name = "prov";
  std::string tool_version;
  std::optional<ReportEnvironment> environment;
};

// The report as JSON (docs/formats/report.md). Non-finite numbers, which JSON cannot hold, are
// written as null.
nlohmann::json report_to_json(const Report& report);

// Reads and validates a report. kInvalidArgument naming the first missing or ill-typed field by
// its path ("verdict.p_value", "evidence[2].null_hypothesis", "graph.edges[0].to"), checked in the
// order of the format page; kUnsupported when "report_version" is an integer other than 1.
// Unknown keys are ignored.
Result<Report> report_from_json(const nlohmann::json& json);

// report_from_json(json) succeeds.
Status validate_report(const nlohmann::json& json);

// Graph helpers.
// Index of the node with `id`, or -1.
int find_node(const ReportGraph& graph, const std::string& id);
// Reads a graph object alone (the "graph" member of a report); `path` prefixes field names.
Result<ReportGraph> graph_from_json(const nlohmann::json& json, const std::string& path = "graph");
nlohmann::json graph_to_json(const ReportGraph& graph);

}  // namespace prov::lineage
