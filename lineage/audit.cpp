#include "lineage/audit.h"

#include <cmath>

#include "core/sha256.h"
#include "core/thread_pool.h"

namespace prov::lineage {

namespace {

std::optional<double> finite_or_none(double v) {
  return std::isfinite(v) ? std::optional<double>(v) : std::nullopt;
}

nlohmann::json opt_json(const std::optional<double>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

bool is_hex64(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

const char* source_name(probes::SubjectKind k) {
  switch (k) {
    case probes::SubjectKind::kCheckpoint:
      return "checkpoint";
    case probes::SubjectKind::kSignatureFile:
      return "signature file";
    case probes::SubjectKind::kEndpoint:
      return "endpoint";
  }
  return "checkpoint";
}

// The rows of one output comparison against `name`.
void output_rows(const std::string& name, const fingerprint::OutputComparison& oc,
                 const std::optional<double>& p_holm, std::vector<ReportEvidence>* rows) {
  for (const auto& st : oc.statistics) {
    ReportEvidence e;
    e.reference = name;
    e.layer = st.name.find("likelihood") != std::string::npos ? "distillation" : "outputs";
    e.method = "prediction t-test against controls";
    e.statistic = st.name;
    e.value = finite_or_none(st.reference);
    if (st.primary) e.p_value = p_holm;
    e.null_hypothesis = oc.null_hypothesis;
    e.probes = st.name == "logit_image" ? oc.image_probes : oc.probes_used;
    nlohmann::json detail = {
        {"t", std::isfinite(st.t) ? nlohmann::json(st.t) : nlohmann::json(nullptr)},
        {"df", st.df},
        {"primary", st.primary},
        {"statistic_p_value", st.primary ? nlohmann::json(st.p_value) : nlohmann::json(nullptr)},
        {"rank_p", st.rank_p},
        {"control_mean", st.control_mean},
        {"control_sd", st.control_sd},
        {"controls", oc.controls}};
    if (st.primary) {
      e.combination = oc.combination + "; Holm-Bonferroni over the references";
      if (oc.probes_needed >= 0) e.probes_needed = oc.probes_needed;
      if (!oc.teacher.empty()) {
        detail["direction"] = {{"teacher", oc.teacher},
                               {"bootstrap_agreement", oc.direction_confidence}};
      }
    }
    e.detail = std::move(detail);
    rows->push_back(std::move(e));
  }
}

// The rows of one weight comparison against `name`.
void weight_rows(const std::string& name, const fingerprint::WeightLineageResult& w,
                 const std::optional<double>& p_holm, std::vector<ReportEvidence>* rows) {
  if (!w.identity.relation.empty()) {
    ReportEvidence e;
    e.reference = name;
    e.layer = "identity";
    e.method = "identity";
    e.statistic = "max relative tensor error";
    if (w.identity.relation != "incomparable")
      e.value = finite_or_none(w.identity.max_relative_error);
    e.null_hypothesis = w.identity.null_hypothesis;
    e.detail = nlohmann::json{{"result", w.identity.relation}, {"reason", w.identity.reason}};
    rows->push_back(std::move(e));
  }
  if (w.permutations > 0) {
    ReportEvidence e;
    e.reference = name;
    e.layer = "weights";
    e.method = "gram-permutation";
    e.statistic = "mean per-layer Gram correlation (raw indices)";
    e.value = finite_or_none(w.statistic);
    e.p_value = p_holm;
    e.null_hypothesis = w.null_hypothesis;
    e.combination = "Holm-Bonferroni over the references";
    e.detail = nlohmann::json{{"raw_p_value", opt_json(w.p_value)},
                              {"permutations", w.permutations},
                              {"z_score", w.z_score},
                              {"dimensions", w.test_dims}};
    rows->push_back(std::move(e));
  }
  if (w.aligned.ran) {
    ReportEvidence e;
    e.reference = name;
    e.layer = "weights";
    e.method = "aligned-gram";
    e.statistic = "z-score of the vocabulary-aligned Gram similarity";
    e.value = finite_or_none(w.aligned.z_score);
    e.null_hypothesis = w.aligned.null_hypothesis;
    e.detail = nlohmann::json{{"similarity", w.aligned.statistic},
                              {"shared_tokens", w.shared_tokens},
                              {"matched_dimensions", w.matched_dims}};
    rows->push_back(std::move(e));
  }
}

}  // namespace

AuditSession::AuditSession(AuditRequest request)
    : request_(std::move(request)), collector_(request_.collect) {}

Status AuditSession::resolve() {
  const std::string& em = request_.endpoint_model;
  auto c = subjects_.add(request_.candidate, em);
  if (!c.is_ok()) return c.status().with_context("candidate");
  candidate_ = *c;
  const bool with_outputs = !request_.controls.empty();
  if (!candidate_->has_weights() && !with_outputs) {
    return invalid_argument(
        "a candidate without weights (endpoint or signature) needs --controls for the output "
        "tests");
  }
  for (size_t i = 0; i < request_.references.size(); ++i) {
    const std::string& spec = request_.references[i];
    const std::string ctx = "reference " + std::to_string(i + 1) + " (" + spec + ")";
    auto r = subjects_.add(spec, em);
    if (!r.is_ok()) return r.status().with_context(ctx);
    if ((*r)->kind() == probes::SubjectKind::kEndpoint) {
      return invalid_argument(ctx +
                              ": an endpoint cannot be a reference (its weights and digest "
                              "are unknown); give a checkpoint or its signature file");
    }
    if (!(*r)->has_weights()) {
      if (!with_outputs) return invalid_argument(ctx + ": no weights and no controls");
      auto d = (*r)->digest();
      if (!d.is_ok()) return d.status().with_context(ctx);
      if (!is_hex64(*d)) {
        return invalid_argument(ctx +
                                ": its signature records no model digest (an endpoint "
                                "signature cannot be a reference)");
      }
    }
    ReferenceOutcome o;
    o.subject = *r;
    if (!(*r)->has_weights()) o.digest = *(*r)->digest();
    outcomes_.push_back(std::move(o));
  }
  for (const auto& spec : request_.controls) {
    auto s = subjects_.add(spec, em);
    if (!s.is_ok()) return s.status().with_context("control " + spec);
    controls_.push_back(*s);
  }
  return Status::ok();
}

Status AuditSession::gather() {
  if (request_.controls.empty()) return Status::ok();
  std::vector<probes::Subject*> all = {candidate_};
  for (const auto& o : outcomes_) all.push_back(o.subject);
  all.insert(all.end(), controls_.begin(), controls_.end());
  PROV_ASSIGN_OR_RETURN(OutputSet set, gather_outputs(all, request_.outputs, collector_));
  outputs_ = std::move(set);
  const size_t nref = outcomes_.size();
  std::vector<fingerprint::NamedSignature> ctrl;
  for (size_t j = 0; j < controls_.size(); ++j) {
    ctrl.push_back(outputs_->named(1 + nref + j, controls_[j]->name()));
  }
  fingerprint::OutputTestOptions test;
  test.alpha = request_.alpha;
  const auto cand = outputs_->named(0, candidate_->name());
  for (size_t i = 0; i < nref; ++i) {
    auto& o = outcomes_[i];
    auto r =
        fingerprint::compare_outputs(cand, outputs_->named(1 + i, o.subject->name()), ctrl, test);
    if (!r.is_ok()) {
      return r.status().with_context("reference " + std::to_string(i + 1) + " (" +
                                     o.subject->spec() + ")");
    }
    o.outputs = std::move(*r);
  }
  return Status::ok();
}

Status AuditSession::weigh() {
  const model::Model* cm = nullptr;
  if (candidate_->has_weights()) {
    auto m = candidate_->model();
    if (!m.is_ok()) return m.status().with_context("candidate");
    auto cd = candidate_->digest();
    if (!cd.is_ok()) return cd.status().with_context("candidate");
    cm = *m;
    candidate_digest_ = *cd;
  }
  for (size_t i = 0; i < outcomes_.size(); ++i) {
    auto& o = outcomes_[i];
    if (!o.subject->has_weights()) continue;
    const std::string ctx = "reference " + std::to_string(i + 1) + " (" + o.subject->spec() + ")";
    auto rm = o.subject->model();
    if (!rm.is_ok()) return rm.status().with_context(ctx);
    auto rd = o.subject->digest();
    if (!rd.is_ok()) return rd.status().with_context(ctx);
    o.digest = *rd;
    if (cm == nullptr) continue;
    auto w = fingerprint::compare_weights(*cm, **rm, request_.weights);
    if (!w.is_ok()) return w.status().with_context(ctx);
    o.weights = std::move(*w);
  }
  if (cm != nullptr) return Status::ok();
  // A candidate known only by its answers.
  const auto& sig = outputs_->signatures[0];
  const auto& h = sig.header;
  candidate_source_ = candidate_->kind() == probes::SubjectKind::kEndpoint
                          ? "endpoint " + candidate_->spec() + " model " + candidate_->name()
                          : "signature " + candidate_->spec();
  if (is_hex64(h.model_digest)) {
    candidate_digest_ = h.model_digest;
  } else {
    std::string text;
    for (const auto& r : sig.records) text += r.probe_id + "\t" + r.continuation_text + "\n";
    candidate_digest_ = to_hex(sha256(text));
    candidate_source_ += " (digest: SHA-256 of its probe ids and greedy answers)";
  }
  return Status::ok();
}

Result<AuditResult> AuditSession::run() {
  PROV_RETURN_IF_ERROR(resolve());
  PROV_RETURN_IF_ERROR(gather());
  PROV_RETURN_IF_ERROR(weigh());
  JudgeInput in;
  for (const auto& o : outcomes_) {
    ReferenceEvidence e;
    e.name = o.subject->name();
    e.weights = o.weights ? &*o.weights : nullptr;
    e.outputs = o.outputs ? &*o.outputs : nullptr;
    in.references.push_back(e);
  }
  in.candidate_weights = candidate_->has_weights();
  in.outputs_run = outputs_.has_value();
  in.alpha = request_.alpha;
  in.aligned_z_threshold = request_.weights.aligned_z_threshold;
  AuditResult out;
  out.verdict = judge(in);
  for (size_t i = 0; i < outcomes_.size(); ++i) {
    outcomes_[i].weight_p_holm = out.verdict.weight_p_holm[i];
    outcomes_[i].output_p_holm = out.verdict.output_p_holm[i];
  }
  out.report = build_report(out.verdict);
  out.references = outcomes_;
  return out;
}

Report AuditSession::build_report(const Verdict& verdict) const {
  Report rep;
  rep.candidate.name = candidate_->name();
  rep.candidate.path = request_.candidate;
  rep.candidate.sha256 = candidate_digest_;
  if (!candidate_source_.empty()) rep.candidate.source = candidate_source_;
  ReportVerdict& v = rep.verdict;
  v.relation = verdict.relation;
  if (verdict.parent >= 0) {
    v.parent = outcomes_[static_cast<size_t>(verdict.parent)].subject->name();
    v.parent_digest = "sha256:" + outcomes_[static_cast<size_t>(verdict.parent)].digest;
  }
  v.p_value = verdict.p_value;
  v.confidence = verdict.confidence;
  v.summary = verdict.summary;
  rep.weight_layers.emplace();
  rep.graph.nodes.push_back({"candidate", candidate_->name(), "candidate"});
  std::vector<ReportProbeCurve> curves;
  for (size_t i = 0; i < outcomes_.size(); ++i) {
    const auto& o = outcomes_[i];
    const std::string& name = o.subject->name();
    ReportReference ref;
    ref.name = name;
    ref.path = o.subject->spec();
    ref.sha256 = o.digest;
    ref.relation = o.weights ? relation_name(o.weights->relation) : "not compared";
    if (o.weights) ref.p_value = o.weights->p_value;
    ref.has_holm = true;
    ref.p_value_holm = o.weight_p_holm;
    if (o.outputs) {
      const auto& oc = *o.outputs;
      ref.outputs = ReportReferenceOutputs{relation_name(oc.relation), oc.p_value, o.output_p_holm};
      if (!o.weights) {
        ref.relation = relation_name(oc.relation);
        ref.p_value = oc.p_value;
        ref.p_value_holm = o.output_p_holm;
      }
      output_rows(name, oc, o.output_p_holm, &rep.evidence);
      if (!oc.curve.empty()) {
        ReportProbeCurve c;
        c.reference = name;
        for (const auto& pt : oc.curve) {
          c.probes.push_back(pt.probes);
          c.p_values.push_back(pt.p_value);
        }
        curves.push_back(std::move(c));
      }
    }
    rep.references.push_back(std::move(ref));
    if (o.weights) {
      const auto& w = *o.weights;
      weight_rows(name, w, o.weight_p_holm, &rep.evidence);
      for (const auto& l : w.layers) {
        rep.weight_layers->push_back({name, l.candidate_layer, "mean", l.similarity,
                                      w.p_value ? std::optional<double>(l.p_value) : std::nullopt});
      }
    }
    const size_t node = rep.graph.nodes.size();
    rep.graph.nodes.push_back({"ref" + std::to_string(i + 1), name, "reference"});
    if (o.weights && is_weight_derived(o.weights->relation)) {
      rep.graph.edges.push_back({node, 0, relation_name(o.weights->relation), o.weight_p_holm});
    } else if (o.outputs && o.output_p_holm && *o.output_p_holm < request_.alpha) {
      ReferenceEvidence e{name, o.weights ? &*o.weights : nullptr, &*o.outputs};
      rep.graph.edges.push_back(
          {node, 0, relation_name(judged_output_relation(e)), o.output_p_holm});
    }
  }
  if (outputs_) {
    rep.probe_curve = std::move(curves);
    const auto& h = outputs_->signatures[0].header;
    rep.suite = ReportSuite{h.suite_name + " " + h.suite_version, h.suite_digest};
  }
  rep.tool_version = request_.tool_version;
  rep.environment = environment();
  return rep;
}

namespace {

// What an endpoint signature's header says about its engine and the statistics it allows.
void endpoint_run(const probes::SignatureHeader& h, ReportRun* run) {
  run->backend =
      !h.api.empty() ? h.api : (h.device == "endpoint:chat" ? "openai-chat" : "openai-completions");
  if (!h.engine.empty()) {
    run->engine = h.engine + (h.engine_version.empty() ? "" : " " + h.engine_version);
  }
  if (!h.logprob_mode.empty()) run->logprob_mode = h.logprob_mode;
  if (h.top_k_limit > 0 && h.top_k_limit < h.top_k) run->top_k_limit = h.top_k_limit;
  if (h.engine.empty()) return;  // a signature of schema 1 does not say
  if (h.token_ids && !h.tokenizer.empty()) {
    run->statistics = "token-level: the engine's token ids, tokenizer " + h.tokenizer;
  } else if (h.logprob_mode == "none") {
    run->statistics = "text-level: the engine returns text only";
  } else if (!h.token_ids) {
    run->statistics = "text-level: the engine returns no token ids";
  } else {
    run->statistics = "text-level: no --tokenizer named the engine's vocabulary";
  }
  if (run->top_k_limit) {
    *run->statistics += "; top-k truncated to " + std::to_string(h.top_k_limit) +
                        " (distributions compared with a rest bucket)";
  }
  if (!h.prompt_logprobs) *run->statistics += "; no prompt log-probabilities (no cross-likelihood)";
}

}  // namespace

ReportEnvironment AuditSession::environment() const {
  ReportEnvironment env;
  // The weight tests' arithmetic: fp32 Gram products on the CPU (fingerprint/gram_kernel.h).
  env.device = "cpu";
  env.dtype = "float32";
  env.threads = static_cast<int64_t>(default_thread_count());
  if (!outputs_) return env;
  std::vector<probes::Subject*> all = {candidate_};
  std::vector<std::string> roles = {"candidate"};
  for (const auto& o : outcomes_) {
    all.push_back(o.subject);
    roles.push_back("reference");
  }
  for (auto* c : controls_) {
    all.push_back(c);
    roles.push_back("control");
  }
  env.runs.emplace();
  for (size_t i = 0; i < all.size(); ++i) {
    const auto& h = outputs_->signatures[i].header;
    ReportRun run;
    run.model = all[i]->name();
    run.role = roles[i];
    run.source = source_name(all[i]->kind());
    run.device = h.device;
    run.dtype = h.dtype;
    if (h.source == "local") {
      run.backend = "libtorch";
    } else if (h.source == "endpoint") {
      endpoint_run(h, &run);
    }
    if (!h.tool_version.empty()) run.tool_version = h.tool_version;
    env.runs->push_back(std::move(run));
  }
  // The candidate's own run says where its answers came from.
  const auto& ch = outputs_->signatures[0].header;
  env.device = ch.device.empty() ? "unknown" : ch.device;
  env.dtype = ch.dtype.empty() ? "unknown" : ch.dtype;
  return env;
}

}  // namespace prov::lineage
