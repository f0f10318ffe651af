#include "probes/runner.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <unordered_map>

#include "model/runtime/generate.h"
#include "probes/extract.h"

namespace prov::probes {

namespace {

// One sequence of a forward pass: a probe's prompt followed by its teacher-forced continuation
// (kind 0) or by one of its score texts (kind s + 1).
struct Seq {
  size_t probe = 0;  // index into the chunk's probe list
  int kind = 0;
  std::vector<int64_t> ids;
  int64_t prompt_len = 0;
  int64_t n_record = 0;  // positions recorded, starting at the last prompt token
};

struct Encoded {
  std::vector<int32_t> prompt;
  std::vector<int32_t> continuation;
  std::vector<std::vector<int32_t>> scores;
};

Result<std::vector<int32_t>> encode_text(const model::Tokenizer* tok, const std::string& text,
                                         bool add_special, const Probe& p, const char* what) {
  if (tok == nullptr) {
    return invalid_argument("probe " + p.id + ": its " + what +
                            " is text but the model has no tokenizer (pass --tokenizer)");
  }
  auto ids = tok->encode(text, add_special);
  if (!ids.is_ok()) return ids.status().with_context("probe " + p.id + ": encoding its " + what);
  return ids;
}

Result<Encoded> encode_probe(const model::Tokenizer* tok, const Probe& p, int64_t vocab,
                             int64_t context) {
  Encoded e;
  if (p.ids) {
    e.prompt = *p.ids;
  } else {
    PROV_ASSIGN_OR_RETURN(e.prompt, encode_text(tok, *p.text, true, p, "prompt"));
  }
  if (e.prompt.empty()) return invalid_argument("probe " + p.id + ": the prompt has no tokens");
  for (int32_t id : e.prompt) {
    if (id < 0 || id >= vocab) {
      return invalid_argument("probe " + p.id + ": token id " + std::to_string(id) +
                              " is outside the model's vocabulary [0, " + std::to_string(vocab) +
                              ")");
    }
  }
  if (p.continuation) {
    PROV_ASSIGN_OR_RETURN(e.continuation,
                          encode_text(tok, *p.continuation, false, p, "continuation"));
  }
  for (const std::string& s : p.score_texts) {
    PROV_ASSIGN_OR_RETURN(auto ids, encode_text(tok, s, false, p, "score text"));
    e.scores.push_back(std::move(ids));
  }
  auto check_len = [&](size_t n, const char* what) -> Status {
    if (context > 0 && static_cast<int64_t>(n) > context) {
      return invalid_argument("probe " + p.id + ": " + what + " of " + std::to_string(n) +
                              " tokens is longer than the model's context of " +
                              std::to_string(context));
    }
    return Status::ok();
  };
  PROV_RETURN_IF_ERROR(check_len(e.prompt.size() + e.continuation.size(), "prompt+continuation"));
  for (const auto& s : e.scores)
    PROV_RETURN_IF_ERROR(check_len(e.prompt.size() + s.size(), "prompt+score text"));
  PROV_RETURN_IF_ERROR(check_len(e.prompt.size() + static_cast<size_t>(p.greedy_tokens),
                                 "prompt+greedy continuation"));
  return e;
}

}  // namespace

std::string token_string(const model::Tokenizer* tokenizer, int32_t id) {
  if (tokenizer == nullptr) return "";
  auto s = tokenizer->decode({id}, /*skip_special=*/false);
  return s.is_ok() ? *s : "";
}

LocalRunner::LocalRunner(const model::Transformer& model, const model::Tokenizer* tokenizer,
                         RunnerOptions options)
    : model_(model), tokenizer_(tokenizer), options_(options) {
  options_.batch_size = std::max(1, options_.batch_size);
  options_.extract_rows = std::max(1, options_.extract_rows);
}

Status LocalRunner::run(const Suite& suite, const std::vector<bool>& skip,
                        const std::function<Status(const ProbeRecord&)>& on_record,
                        const std::function<void(size_t, size_t)>& on_progress) const {
  const size_t n = suite.probes.size();
  if (!skip.empty() && skip.size() != n) {
    return invalid_argument("skip list has " + std::to_string(skip.size()) +
                            " entries for a suite of " + std::to_string(n) + " probes");
  }
  const model::ModelConfig& cfg = model_.config();
  const int64_t vocab = cfg.vocab_size;
  const int64_t context = cfg.max_position_embeddings;
  const torch::Device dev = model_.options().device;
  const size_t B = static_cast<size_t>(options_.batch_size);
  const size_t chunk = 8 * B;
  std::unordered_map<int32_t, std::string> piece_cache;
  auto piece = [&](int32_t id) -> const std::string& {
    auto it = piece_cache.find(id);
    if (it == piece_cache.end()) it = piece_cache.emplace(id, token_string(tokenizer_, id)).first;
    return it->second;
  };
  // Greedy continuations stop at the end-of-sequence token, as servers do: the tokenizer's when
  // there is one, else the config's.
  std::vector<int64_t> stop_ids;
  if (tokenizer_ != nullptr && tokenizer_->eos_id()) {
    stop_ids.push_back(*tokenizer_->eos_id());
  } else {
    stop_ids = cfg.eos_token_ids;
  }
  size_t done = 0;
  size_t todo = 0;
  for (size_t i = 0; i < n; ++i) todo += (skip.empty() || !skip[i]) ? 1 : 0;

  for (size_t c0 = 0; c0 < n; c0 += chunk) {
    const size_t c1 = std::min(n, c0 + chunk);
    bool any = false;
    for (size_t i = c0; i < c1; ++i) any |= skip.empty() || !skip[i];
    if (!any) continue;
    const size_t m = c1 - c0;
    std::vector<Encoded> enc(m);
    std::vector<ProbeRecord> recs(m);
    std::vector<Seq> seqs;
    for (size_t j = 0; j < m; ++j) {
      const Probe& p = suite.probes[c0 + j];
      PROV_ASSIGN_OR_RETURN(enc[j], encode_probe(tokenizer_, p, vocab, context));
      recs[j].index = static_cast<uint32_t>(c0 + j);
      recs[j].probe_id = p.id;
      recs[j].prompt_ids = enc[j].prompt;
      Seq s;
      s.probe = j;
      s.ids.assign(enc[j].prompt.begin(), enc[j].prompt.end());
      s.ids.insert(s.ids.end(), enc[j].continuation.begin(), enc[j].continuation.end());
      s.prompt_len = static_cast<int64_t>(enc[j].prompt.size());
      s.n_record = std::max<int64_t>(1, static_cast<int64_t>(enc[j].continuation.size()));
      recs[j].positions.resize(static_cast<size_t>(s.n_record));
      seqs.push_back(std::move(s));
      for (size_t t = 0; t < enc[j].scores.size(); ++t) {
        Seq sc;
        sc.probe = j;
        sc.kind = static_cast<int>(t) + 1;
        sc.ids.assign(enc[j].prompt.begin(), enc[j].prompt.end());
        sc.ids.insert(sc.ids.end(), enc[j].scores[t].begin(), enc[j].scores[t].end());
        sc.prompt_len = s.prompt_len;
        sc.n_record = static_cast<int64_t>(enc[j].scores[t].size());
        ScoredText st;
        st.text = p.score_texts[t];
        st.ids = enc[j].scores[t];
        recs[j].scores.push_back(std::move(st));
        if (sc.n_record > 0) seqs.push_back(std::move(sc));
      }
    }
    // Length bucketing inside the chunk (a stable order that depends only on the suite).
    std::vector<size_t> order(seqs.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return seqs[a].ids.size() < seqs[b].ids.size(); });

    try {
      torch::NoGradGuard no_grad;
      for (size_t b0 = 0; b0 < order.size(); b0 += B) {
        const size_t b1 = std::min(order.size(), b0 + B);
        const int64_t nb = static_cast<int64_t>(b1 - b0);
        int64_t T = 0;
        bool ragged = false;
        for (size_t q = b0; q < b1; ++q) T = std::max<int64_t>(T, seqs[order[q]].ids.size());
        for (size_t q = b0; q < b1; ++q)
          ragged |= static_cast<int64_t>(seqs[order[q]].ids.size()) != T;
        torch::Tensor ids = torch::zeros({nb, T}, torch::kInt64);
        torch::Tensor mask = torch::zeros({nb, T}, torch::kInt64);
        auto ia = ids.accessor<int64_t, 2>();
        auto ma = mask.accessor<int64_t, 2>();
        std::vector<int64_t> rows;  // flat positions b * T + t to record, seq by seq
        for (size_t q = b0; q < b1; ++q) {
          const Seq& s = seqs[order[q]];
          const int64_t b = static_cast<int64_t>(q - b0);
          const int64_t off = T - static_cast<int64_t>(s.ids.size());  // left padding
          for (size_t t = 0; t < s.ids.size(); ++t) {
            ia[b][off + static_cast<int64_t>(t)] = s.ids[t];
            ma[b][off + static_cast<int64_t>(t)] = 1;
          }
          for (int64_t r = 0; r < s.n_record; ++r)
            rows.push_back(b * T + off + s.prompt_len - 1 + r);
        }
        PROV_ASSIGN_OR_RETURN(
            torch::Tensor hidden,
            model_.forward_hidden(ids.to(dev), ragged ? mask.to(dev) : torch::Tensor(), nullptr));
        torch::Tensor flat = hidden.reshape({nb * T, hidden.size(-1)});
        torch::Tensor row_idx = torch::tensor(rows, torch::kInt64).to(dev);
        // Targets: the token after each recorded position (-1 when there is none).
        std::vector<int64_t> targets;
        int64_t kmax = 1;
        bool want_full = false;  // some probe of the batch records whole distributions
        for (size_t q = b0; q < b1; ++q) {
          const Seq& s = seqs[order[q]];
          kmax = std::max<int64_t>(kmax, suite.probes[c0 + s.probe].top_k);
          want_full |= s.kind == 0 && suite.probes[c0 + s.probe].full_logprobs;
          for (int64_t r = 0; r < s.n_record; ++r) {
            const int64_t t = s.prompt_len + r;
            targets.push_back(t < static_cast<int64_t>(s.ids.size()) ? s.ids[static_cast<size_t>(t)]
                                                                     : -1);
          }
        }
        kmax = std::min<int64_t>(kmax, vocab);
        const int64_t R = static_cast<int64_t>(rows.size());
        torch::Tensor top_ids, top_lp, ent, lse, tgt_lp, full_lp;
        {
          std::vector<torch::Tensor> ti, tl, en, ls, tg, fl;
          torch::Tensor tgt_all = torch::tensor(targets, torch::kInt64).to(dev);
          for (int64_t r0 = 0; r0 < R; r0 += options_.extract_rows) {
            const int64_t r = std::min<int64_t>(options_.extract_rows, R - r0);
            PROV_ASSIGN_OR_RETURN(torch::Tensor logits, model_.logits_from_hidden(flat.index_select(
                                                            0, row_idx.narrow(0, r0, r))));
            PROV_ASSIGN_OR_RETURN(Extracted x, extract_signature(logits, kmax));
            torch::Tensor tg_ids = tgt_all.narrow(0, r0, r).clamp_min(0).unsqueeze(1);
            tg.push_back(logits.gather(1, tg_ids).squeeze(1).to(torch::kFloat32) - x.logsumexp);
            ti.push_back(x.top_ids);
            tl.push_back(x.top_logprobs);
            en.push_back(x.entropy);
            ls.push_back(x.logsumexp);
            if (want_full) {
              fl.push_back(logits.to(torch::kFloat32) - x.logsumexp.unsqueeze(1));
            }
          }
          if (want_full) full_lp = torch::cat(fl).to(torch::kCPU).contiguous();
          top_ids = torch::cat(ti).to(torch::kCPU).contiguous();
          top_lp = torch::cat(tl).to(torch::kCPU).contiguous();
          ent = torch::cat(en).to(torch::kCPU).contiguous();
          lse = torch::cat(ls).to(torch::kCPU).contiguous();
          tgt_lp = torch::cat(tg).to(torch::kCPU).contiguous();
        }
        const int64_t* pid = top_ids.data_ptr<int64_t>();
        const float* plp = top_lp.data_ptr<float>();
        const float* pent = ent.data_ptr<float>();
        const float* plse = lse.data_ptr<float>();
        const float* ptg = tgt_lp.data_ptr<float>();
        int64_t row = 0;
        for (size_t q = b0; q < b1; ++q) {
          const Seq& s = seqs[order[q]];
          const Probe& p = suite.probes[c0 + s.probe];
          ProbeRecord& rec = recs[s.probe];
          for (int64_t r = 0; r < s.n_record; ++r, ++row) {
            const int64_t target = targets[static_cast<size_t>(row)];
            if (s.kind == 0) {
              PositionRecord& pos = rec.positions[static_cast<size_t>(r)];
              const int64_t k = std::min<int64_t>(p.top_k, kmax);
              for (int64_t i = 0; i < k; ++i) {
                const int32_t id = static_cast<int32_t>(pid[row * kmax + i]);
                pos.top.ids.push_back(id);
                pos.top.logprobs.push_back(plp[row * kmax + i]);
                if (tokenizer_ != nullptr) pos.top.tokens.push_back(piece(id));
              }
              if (p.full_stats) {
                pos.entropy = pent[row];
                pos.logsumexp = plse[row];
              }
              if (p.full_logprobs) {
                const int64_t width = full_lp.size(1);
                const float* f = full_lp.data_ptr<float>() + row * width;
                pos.logprobs.assign(f, f + width);
              }
              if (target >= 0) {
                pos.token_id = static_cast<int32_t>(target);
                pos.token = piece(pos.token_id);
                pos.token_logprob = ptg[row];
              }
            } else {
              ScoredText& st = rec.scores[static_cast<size_t>(s.kind - 1)];
              st.token_logprobs.push_back(ptg[row]);
              st.total_logprob += ptg[row];
              if (tokenizer_ != nullptr) st.tokens.push_back(piece(static_cast<int32_t>(target)));
            }
          }
        }
      }
    } catch (const c10::Error& e) {
      return internal_error(std::string("LibTorch failed while probing: ") +
                            e.what_without_backtrace());
    }

    // Greedy continuations, batched by requested length (prompts sorted by length inside).
    std::map<int, std::vector<size_t>> by_len;
    for (size_t j = 0; j < m; ++j) {
      if (suite.probes[c0 + j].greedy_tokens > 0)
        by_len[suite.probes[c0 + j].greedy_tokens].push_back(j);
    }
    for (auto& [len, js] : by_len) {
      std::stable_sort(js.begin(), js.end(), [&](size_t a, size_t b) {
        return enc[a].prompt.size() < enc[b].prompt.size();
      });
      for (size_t g0 = 0; g0 < js.size(); g0 += B) {
        const size_t g1 = std::min(js.size(), g0 + B);
        std::vector<std::vector<int64_t>> prompts;
        for (size_t q = g0; q < g1; ++q) {
          prompts.emplace_back(enc[js[q]].prompt.begin(), enc[js[q]].prompt.end());
        }
        PROV_ASSIGN_OR_RETURN(auto outs,
                              model::generate_greedy_batch(model_, prompts, len, stop_ids));
        for (size_t q = g0; q < g1; ++q) {
          ProbeRecord& rec = recs[js[q]];
          const auto& out = outs[q - g0];
          rec.continuation_ids.assign(
              out.begin() + static_cast<std::ptrdiff_t>(prompts[q - g0].size()), out.end());
          // Like an API server, the end-of-sequence token ends the text and is not part of it.
          if (!rec.continuation_ids.empty() &&
              std::find(stop_ids.begin(), stop_ids.end(), rec.continuation_ids.back()) !=
                  stop_ids.end()) {
            rec.continuation_ids.pop_back();
          }
          if (tokenizer_ != nullptr) {
            auto text = tokenizer_->decode(rec.continuation_ids, /*skip_special=*/false);
            if (text.is_ok()) rec.continuation_text = *text;
          }
        }
      }
    }
    for (size_t j = 0; j < m; ++j) {
      if (!skip.empty() && skip[c0 + j]) continue;
      PROV_RETURN_IF_ERROR(on_record(recs[j]));
      ++done;
    }
    if (on_progress) on_progress(done, todo);
  }
  return Status::ok();
}

Result<std::vector<ProbeRecord>> LocalRunner::run_all(const Suite& suite) const {
  std::vector<ProbeRecord> out;
  out.reserve(suite.probes.size());
  PROV_RETURN_IF_ERROR(run(suite, {}, [&](const ProbeRecord& r) {
    out.push_back(r);
    return Status::ok();
  }));
  return out;
}

}  // namespace prov::probes
