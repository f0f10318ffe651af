// The audit: one candidate against reference models, every evidence layer the access allows, one
// verdict (judge.h), and the typed lineage report (report.h) that is signed and rendered.
//
// An AuditSession resolves every model argument once into a Subject (probes/subject.h: each
// checkpoint opened and hashed at most once, names unique within the run), gathers the output
// evidence through a probes::Collector when controls are given (gather.h: signatures,
// cross-likelihood scores and logit images of the candidate, the references and the controls on
// one suite), runs the weight layers (fingerprint/weights.h) against every reference whose
// weights are at hand when the candidate's are, and lets judge() decide. A candidate without
// weights (an endpoint, a signature file) gets the output layers only.
//
// Evidence rows (per reference): identity (score only), gram-permutation (raw and Holm p-value,
// permutations), aligned-gram (score only); with outputs, one row per output statistic: the
// primary ones (layer `outputs` for idiosyncratic greedy agreement, `distillation` for the
// cross-likelihood ratio) carry the Holm-adjusted p-value of the combined test, the others are
// scores; probe_curve holds each reference's p-value against the number of probes. weight_layers:
// the per-layer similarity of the pair test A (or test B when only it saw the relation) used. The
// graph is a star: every reference a node, an edge reference -> candidate for each related
// reference. The environment block records what ran: the candidate's signature run (or, for
// weights alone, the CPU float32 arithmetic of the weight tests), the CPU threads, and every
// signature behind the output tests with its device, dtype and source.
//
// Determinism: the same inputs and options give the same report (no timestamps). Failures: a
// model that cannot be opened or read (the readers' errors with "candidate", "reference N" or the
// control's name in the context); a candidate without weights and without controls.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "fingerprint/outputs.h"
#include "fingerprint/weights.h"
#include "lineage/gather.h"
#include "lineage/judge.h"
#include "lineage/report.h"
#include "probes/collect.h"
#include "probes/subject.h"

namespace prov::lineage {

struct AuditRequest {
  std::string candidate;                // checkpoint, signature file or endpoint URL
  std::vector<std::string> references;  // checkpoints or signature files
  std::vector<std::string> controls;    // with any: the output and distillation layers run
  std::string endpoint_model;           // the model name of endpoint arguments
  double alpha = 0.01;                  // family-wise level over the references
  fingerprint::WeightTestOptions weights;
  OutputRequest outputs;
  probes::CollectSettings collect;
  std::string tool_version;
};

// What was measured against one reference, for tables and tests.
struct ReferenceOutcome {
  probes::Subject* subject = nullptr;
  std::string digest;                                       // the reference's model digest (hex)
  std::optional<fingerprint::WeightLineageResult> weights;  // when both sides had weights
  std::optional<fingerprint::OutputComparison> outputs;     // when the output layers ran
  std::optional<double> weight_p_holm, output_p_holm;
};

struct AuditResult {
  Report report;
  Verdict verdict;
  std::vector<ReferenceOutcome> references;
};

class AuditSession {
 public:
  explicit AuditSession(AuditRequest request);
  // Runs the audit once. kInvalidArgument for a request that cannot be audited (no reference, a
  // candidate without weights and without controls, a reference without weights or digest).
  Result<AuditResult> run();
  // The subjects resolved by run() (each checkpoint opened and hashed at most once).
  probes::SubjectSet& subjects() { return subjects_; }

 private:
  Status resolve();
  Status gather();
  Status weigh();
  Report build_report(const Verdict& verdict) const;
  ReportEnvironment environment() const;

  AuditRequest request_;
  probes::SubjectSet subjects_;
  probes::Collector collector_;
  probes::Subject* candidate_ = nullptr;
  std::vector<probes::Subject*> controls_;
  std::vector<ReferenceOutcome> outcomes_;
  std::optional<OutputSet> outputs_;
  std::string candidate_digest_, candidate_source_;
};

}  // namespace prov::lineage
