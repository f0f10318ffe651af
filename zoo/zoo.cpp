#include "zoo/zoo.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>

#include <torch/torch.h>

#include "model/formats/model.h"
#include "model/runtime/runtime.h"
#include "model/formats/safetensors.h"
#include "model/formats/synthetic.h"
#include "model/tokenizers/tokenizer.h"
#include "zoo/bpe_trainer.h"
#include "zoo/corpus.h"
#include "zoo/derive.h"
#include "zoo/train.h"

namespace prov::zoo {

namespace fs = std::filesystem;

namespace {

struct Preset {
  int32_t vocab = 1024, vocab_alt = 768;
  int64_t hidden = 64, layers = 2, heads = 4, kv_heads = 2, inter = 176, ctx = 128;
  int base_steps = 1000, ft_light = 60, ft_strong = 250, heal = 150, student_steps = 1000;
  int batch = 16, seq = 64;
  double lr = 3e-3;
  size_t max_docs = 40000;
  int samples = 6000, sample_len = 48;
};

Result<Preset> preset_for(const std::string& name) {
  Preset p;
  if (name == "tiny") return p;
  if (name == "test") {
    // Seconds, for the test suite: the same members and recipes, barely trained.
    p.base_steps = 30;
    p.ft_light = 5;
    p.ft_strong = 10;
    p.heal = 5;
    p.student_steps = 30;
    p.max_docs = 3000;
    p.samples = 64;
    p.sample_len = 16;
    p.vocab = 384;
    p.vocab_alt = 320;
    return p;
  }
  if (name == "small") {
    p.vocab = 4096;
    p.vocab_alt = 3072;
    p.hidden = 256;
    p.layers = 4;
    p.heads = 8;
    p.kv_heads = 4;
    p.inter = 704;
    p.ctx = 256;
    p.base_steps = 3000;
    p.ft_light = 300;
    p.ft_strong = 1000;
    p.heal = 500;
    p.student_steps = 3000;
    p.batch = 32;
    p.seq = 128;
    p.max_docs = 0;  // everything
    p.samples = 20000;
    p.sample_len = 64;
    return p;
  }
  return invalid_argument("unknown zoo preset " + name + " (tiny, small, test)");
}

struct Member {
  std::string name;
  std::string relation;
  std::vector<std::string> parents;
  std::string detail;
  std::string tokenizer;  // "main" | "alt"
  nlohmann::json recipe;
};

// Rewrites string values that are paths inside `root` as paths relative to it (member names).
void relativize(nlohmann::json* j, const std::string& root) {
  const std::string prefix = (fs::path(root) / "").string();
  if (j->is_string()) {
    const std::string v = j->get<std::string>();
    if (v.rfind(prefix, 0) == 0) *j = v.substr(prefix.size());
  } else if (j->is_structured()) {
    for (auto& e : *j) relativize(&e, root);
  }
}

class Builder {
 public:
  explicit Builder(const ZooOptions& o) : o_(o) {}

  Result<nlohmann::json> run();

 private:
  void log(const std::string& s) const {
    if (o_.log) o_.log(s);
  }
  std::string dir(const std::string& name) const { return (fs::path(o_.out_dir) / name).string(); }
  Status prepare_data();
  Status prepare_tokenizers();
  // A fresh model of `arch` with initial weights (seeded), loaded trainable.
  Result<std::unique_ptr<model::Transformer>> fresh(const std::string& name, model::Arch arch,
                                                    const std::string& tok, uint64_t seed,
                                                    nlohmann::json* config_out);
  Result<std::unique_ptr<model::Transformer>> load(const std::string& name, bool trainable);
  Status save(const Member& m, const model::Transformer& tf, const nlohmann::json& config);
  // The labels entry (+ validation loss, + `extra` fields), after the files exist.
  Status record(const Member& m, const nlohmann::json& extra = nlohmann::json::object());
  bool reusable(const Member& m) const;
  mutable std::set<std::string> built_;  // members (re)built in this run
  const std::vector<int32_t>& stream(const std::string& what, const std::string& tok) const;
  TrainOptions train_opts(int steps, uint64_t seed, double lr = 0) const;

  Status trained_base(const std::string& name, model::Arch arch, const std::string& data,
                      const std::string& tok, uint64_t seed, const std::string& relation,
                      const std::string& detail);
  Status finetune(const std::string& name, const std::string& parent, int steps, double lr,
                  uint64_t seed, const std::string& detail);
  Status derived(const Member& m,
                 const std::function<Result<nlohmann::json>(const std::string&)>& make);
  Status ensure_teacher_samples();
  Status student(const std::string& name, model::Arch arch, const std::string& tok,
                 double teacher_fraction, bool logit, uint64_t seed, const std::string& detail);

  ZooOptions o_;
  Preset p_;
  torch::Device dev_ = torch::kCPU;
  nlohmann::json labels_, previous_;
  std::unique_ptr<model::Tokenizer> tok_main_, tok_alt_;
  std::map<std::string, std::vector<int32_t>> streams_;  // "<data>/<tok>"
  std::vector<std::string> w1_, w2_, val_, ft_;
  std::vector<std::vector<int32_t>> teacher_samples_;  // base_llama's generations (main tokenizer)
};

const std::vector<int32_t>& Builder::stream(const std::string& what, const std::string& tok) const {
  return streams_.at(what + "/" + tok);
}

TrainOptions Builder::train_opts(int steps, uint64_t seed, double lr) const {
  TrainOptions t;
  t.steps = steps;
  t.batch = p_.batch;
  t.seq_len = p_.seq;
  t.lr = lr > 0 ? lr : p_.lr;
  t.warmup = std::min(20, steps / 10 + 1);
  t.seed = seed;
  return t;
}

Result<std::vector<int32_t>> encode_docs(const model::Tokenizer& tok,
                                         const std::vector<std::string>& docs) {
  std::vector<int32_t> out;
  const int32_t sep = tok.eos_id().value_or(0);
  for (const std::string& d : docs) {
    PROV_ASSIGN_OR_RETURN(auto ids, tok.encode(d, false));
    out.insert(out.end(), ids.begin(), ids.end());
    out.push_back(sep);
  }
  return out;
}

Status Builder::prepare_data() {
  std::vector<std::string> docs;
  if (!o_.corpus_file.empty()) {
    PROV_ASSIGN_OR_RETURN(docs, load_corpus_file(o_.corpus_file));
  } else {
    PROV_ASSIGN_OR_RETURN(docs, load_corpus_package(o_.corpus_package));
  }
  if (p_.max_docs > 0 && docs.size() > p_.max_docs) {
    // An even subsample, so every part of the corpus is represented.
    std::vector<std::string> sub;
    const double step = static_cast<double>(docs.size()) / static_cast<double>(p_.max_docs);
    for (size_t i = 0; i < p_.max_docs; ++i) sub.push_back(docs[static_cast<size_t>(i * step)]);
    docs.swap(sub);
  }
  // Every 20th document is held out for validation; the rest split into halves W1 / W2.
  std::vector<std::string> train;
  for (size_t i = 0; i < docs.size(); ++i) (i % 20 == 19 ? val_ : train).push_back(docs[i]);
  split_halves(train, &w1_, &w2_);
  PROV_ASSIGN_OR_RETURN(ft_, load_corpus_package(o_.finetune_package));
  log("corpus: " + std::to_string(docs.size()) + " documents (W1 " + std::to_string(w1_.size()) +
      ", W2 " + std::to_string(w2_.size()) + ", validation " + std::to_string(val_.size()) +
      "); fine-tune domain " + std::to_string(ft_.size()) + " documents");
  return Status::ok();
}

Status Builder::prepare_tokenizers() {
  fs::create_directories(dir("tokenizers"));
  struct Spec {
    const char* name;
    int32_t vocab;
    std::vector<std::string>* docs_a;
    std::vector<std::string>* docs_b;
    std::unique_ptr<model::Tokenizer>* out;
  } specs[] = {{"main", p_.vocab, &w1_, &w2_, &tok_main_},
               {"alt", p_.vocab_alt, &w2_, nullptr, &tok_alt_}};
  for (auto& s : specs) {
    const std::string path = dir("tokenizers") + "/" + s.name + ".json";
    if (!(o_.reuse && fs::exists(path))) {
      std::vector<std::string> texts = *s.docs_a;
      if (s.docs_b) texts.insert(texts.end(), s.docs_b->begin(), s.docs_b->end());
      BpeTrainOptions bo;
      bo.vocab_size = s.vocab;
      auto t0 = std::chrono::steady_clock::now();
      PROV_ASSIGN_OR_RETURN(auto tj, train_byte_level_bpe(texts, bo));
      PROV_RETURN_IF_ERROR(write_tokenizer_json(path, tj));
      log(std::string("tokenizer ") + s.name + ": " + std::to_string(s.vocab) + " tokens in " +
          std::to_string(
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()) +
          " s");
    }
    PROV_ASSIGN_OR_RETURN(*s.out, model::from_hf_json(path));
  }
  for (const auto& [tname, tok] :
       {std::pair<std::string, model::Tokenizer*>{"main", tok_main_.get()},
        {"alt", tok_alt_.get()}}) {
    PROV_ASSIGN_OR_RETURN(streams_["w1/" + tname], encode_docs(*tok, w1_));
    PROV_ASSIGN_OR_RETURN(streams_["w2/" + tname], encode_docs(*tok, w2_));
    PROV_ASSIGN_OR_RETURN(streams_["val/" + tname], encode_docs(*tok, val_));
    PROV_ASSIGN_OR_RETURN(streams_["ft/" + tname], encode_docs(*tok, ft_));
  }
  log("token streams: W1 " + std::to_string(stream("w1", "main").size()) + ", W2 " +
      std::to_string(stream("w2", "main").size()) + ", fine-tune " +
      std::to_string(stream("ft", "main").size()) + " tokens (main tokenizer)");
  return Status::ok();
}

model::SyntheticSpec spec_for(const Preset& p, model::Arch arch, int32_t vocab, uint64_t seed) {
  model::SyntheticSpec s;
  s.arch = arch;
  s.vocab_size = vocab;
  s.hidden_size = p.hidden;
  s.intermediate_size = p.inter;
  s.num_layers = p.layers;
  s.num_heads = p.heads;
  s.num_kv_heads = p.kv_heads;
  s.max_position_embeddings = p.ctx;
  s.seed = seed;
  s.std = 0.02;
  return s;
}

nlohmann::json config_for(const Preset& p, model::Arch arch, int32_t vocab, int32_t eos) {
  const model::SyntheticSpec s = spec_for(p, arch, vocab, 0);
  nlohmann::json j = model::synthetic_config_json(s);
  j["bos_token_id"] = eos;
  j["eos_token_id"] = eos;
  j["torch_dtype"] = "float32";
  return j;
}

Result<std::unique_ptr<model::Transformer>> Builder::fresh(const std::string& name,
                                                           model::Arch arch, const std::string& tok,
                                                           uint64_t seed,
                                                           nlohmann::json* config_out) {
  const model::Tokenizer& t = tok == "main" ? *tok_main_ : *tok_alt_;
  const model::SyntheticSpec s = spec_for(p_, arch, t.vocab_size(), seed);
  const std::string d = dir(name);
  PROV_RETURN_IF_ERROR(model::write_synthetic_model(d, s));
  *config_out = config_for(p_, arch, t.vocab_size(), t.eos_id().value_or(0));
  {
    std::ofstream f(d + "/config.json", std::ios::trunc);
    f << config_out->dump(2) << "\n";
    if (!f) return Status(StatusCode::kIo, "cannot write " + d + "/config.json");
  }
  return load(name, true);
}

Result<std::unique_ptr<model::Transformer>> Builder::load(const std::string& name, bool trainable) {
  PROV_ASSIGN_OR_RETURN(model::Model m, model::open_model(dir(name)));
  model::RuntimeOptions ro;
  ro.device = dev_;
  ro.trainable = trainable;
  return model::Transformer::load(m, ro);
}

Status Builder::save(const Member& m, const model::Transformer& tf, const nlohmann::json& config) {
  PROV_ASSIGN_OR_RETURN(auto weights, tf.export_hf_weights(torch::kFloat32));
  std::vector<model::SafetensorsEntry> entries;
  for (auto& [name, t] : weights) {
    model::SafetensorsEntry e;
    e.name = name;
    e.dtype = model::DType::kF32;
    e.shape = t.sizes().vec();
    const auto* b = static_cast<const uint8_t*>(t.data_ptr());
    e.bytes.assign(b, b + t.numel() * 4);
    entries.push_back(std::move(e));
  }
  const std::string d = dir(m.name);
  fs::create_directories(d);
  PROV_RETURN_IF_ERROR(model::write_safetensors(d + "/model.safetensors", entries));
  std::ofstream f(d + "/config.json", std::ios::trunc);
  f << config.dump(2) << "\n";
  if (!f) return Status(StatusCode::kIo, "cannot write " + d + "/config.json");
  return Status::ok();
}

bool Builder::reusable(const Member& m) const {
  std::error_code ec;
  bool reuse = o_.reuse && previous_.contains("models") && previous_["models"].contains(m.name) &&
               previous_["models"][m.name].value("recipe", nlohmann::json()) == m.recipe &&
               fs::exists(dir(m.name) + "/model.safetensors", ec);
  // A member made from a parent that was rebuilt in this run is stale, whatever its recipe.
  for (const auto& p : m.parents) reuse = reuse && !built_.count(p);
  if (!reuse) built_.insert(m.name);
  return reuse;
}

Status Builder::record(const Member& m, const nlohmann::json& extra) {
  const std::string d = dir(m.name);
  std::error_code ec;
  fs::copy_file(dir("tokenizers") + "/" + m.tokenizer + ".json", d + "/tokenizer.json",
                fs::copy_options::overwrite_existing, ec);
  if (ec)
    return Status(StatusCode::kIo, "cannot copy the tokenizer into " + d + ": " + ec.message());
  PROV_ASSIGN_OR_RETURN(auto tf, load(m.name, false));
  PROV_ASSIGN_OR_RETURN(double val, eval_loss(*tf, stream("val", m.tokenizer), p_.seq, 64));
  nlohmann::json e;
  e["relation"] = m.relation;
  e["parent"] = m.parents.empty() ? nlohmann::json(nullptr) : nlohmann::json(m.parents[0]);
  if (m.parents.size() > 1) e["parents"] = m.parents;
  e["detail"] = m.detail;
  e["tokenizer"] = m.tokenizer;
  e["architecture"] = tf->config().arch == model::Arch::kQwen2 ? "qwen2" : "llama";
  e["recipe"] = m.recipe;
  e["val_loss"] = std::round(val * 10000.0) / 10000.0;
  for (auto it = extra.begin(); it != extra.end(); ++it) e[it.key()] = it.value();
  labels_["models"][m.name] = e;
  log(m.name + ": " + m.relation + (m.parents.empty() ? "" : " of " + m.parents[0]) +
      ", validation loss " + std::to_string(val));
  std::ofstream f(dir("labels.json"), std::ios::trunc);
  f << labels_.dump(1) << "\n";
  return f ? Status::ok() : Status(StatusCode::kIo, "cannot write labels.json");
}

Status Builder::trained_base(const std::string& name, model::Arch arch, const std::string& data,
                             const std::string& tok, uint64_t seed, const std::string& relation,
                             const std::string& detail) {
  Member m{name, relation, {}, detail, tok, {}};
  TrainOptions t = train_opts(p_.base_steps, seed);
  m.recipe = {{"kind", "trained from scratch"},
              {"arch", arch == model::Arch::kQwen2 ? "qwen2" : "llama"},
              {"data", data},
              {"init_seed", seed},
              {"train", train_options_json(t)}};
  if (reusable(m)) return record(m);
  nlohmann::json cfg;
  PROV_ASSIGN_OR_RETURN(auto tf, fresh(name, arch, tok, seed, &cfg));
  PROV_RETURN_IF_ERROR(train_lm(
      *tf, stream(data, tok), t,
      [&](int s, double l) {
        log("  " + name + " step " + std::to_string(s) + " loss " + std::to_string(l));
      },
      100));
  PROV_RETURN_IF_ERROR(save(m, *tf, cfg));
  return record(m);
}

Status Builder::finetune(const std::string& name, const std::string& parent, int steps, double lr,
                         uint64_t seed, const std::string& detail) {
  Member m{name, "finetuned", {parent}, detail, "main", {}};
  TrainOptions t = train_opts(steps, seed, lr);
  m.recipe = {{"kind", "full fine-tune"},
              {"from", parent},
              {"data", "ft"},
              {"train", train_options_json(t)}};
  if (reusable(m)) return record(m);
  PROV_ASSIGN_OR_RETURN(auto tf, load(parent, true));
  PROV_RETURN_IF_ERROR(train_lm(*tf, stream("ft", "main"), t));
  nlohmann::json cfg =
      config_for(p_, tf->config().arch, tok_main_->vocab_size(), tok_main_->eos_id().value_or(0));
  PROV_RETURN_IF_ERROR(save(m, *tf, cfg));
  return record(m);
}

Status Builder::derived(const Member& m0,
                        const std::function<Result<nlohmann::json>(const std::string&)>& make) {
  // The recipe compared for reuse is the requested one; what the derivative reports goes
  // beside it.
  if (reusable(m0)) {
    const auto& prev = previous_["models"][m0.name];
    return record(m0, prev.contains("derive_report")
                          ? nlohmann::json{{"derive_report", prev["derive_report"]}}
                          : nlohmann::json::object());
  }
  const std::string d = dir(m0.name);
  fs::remove_all(d);
  PROV_ASSIGN_OR_RETURN(nlohmann::json done, make(d));
  // Paths are machine-specific: the labels name members relative to the zoo directory.
  done.erase("output");
  relativize(&done, o_.out_dir);
  return record(m0, {{"derive_report", done}});
}

// base_llama's generations (main tokenizer), sampled once, when the first sequence student
// that is not reused needs them.
Status Builder::ensure_teacher_samples() {
  if (!teacher_samples_.empty()) return Status::ok();
  PROV_ASSIGN_OR_RETURN(auto teacher, load("base_llama", false));
  std::vector<std::vector<int32_t>> prompts;
  const int32_t eos = tok_main_->eos_id().value_or(0);
  for (size_t i = 0; i < w2_.size() && prompts.size() < 512; i += 7) {
    // The first word of a W2 document after the separator: the teacher continues from there.
    auto ids = tok_main_->encode(w2_[i].substr(0, w2_[i].find(' ')), false);
    if (!ids.is_ok() || ids->empty()) continue;
    std::vector<int32_t> p{eos};
    p.insert(p.end(), ids->begin(), ids->end());
    prompts.push_back(p);
  }
  auto t0 = std::chrono::steady_clock::now();
  PROV_ASSIGN_OR_RETURN(teacher_samples_, sample_texts(*teacher, prompts, p_.samples, p_.sample_len,
                                                       0.8, 0.95, 7, eos, 64));
  // Keep the prompt word in the text the students see.
  for (size_t i = 0; i < teacher_samples_.size(); ++i) {
    const auto& p = prompts[i % prompts.size()];
    teacher_samples_[i].insert(teacher_samples_[i].begin(), p.begin() + 1, p.end());
  }
  log("teacher samples: " + std::to_string(teacher_samples_.size()) + " in " +
      std::to_string(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()) +
      " s");
  return Status::ok();
}

Status Builder::student(const std::string& name, model::Arch arch, const std::string& tok,
                        double teacher_fraction, bool logit, uint64_t seed,
                        const std::string& detail) {
  Member m{name, logit ? "distilled_logit" : "distilled_seq", {"base_llama"}, detail, tok, {}};
  TrainOptions t = train_opts(p_.student_steps, seed);
  m.recipe = {
      {"kind", logit ? "logit distillation (KL to the teacher's next-token distribution)"
                     : "sequence distillation (trained from scratch on teacher-generated text)"},
      {"teacher", "base_llama"},
      {"arch", arch == model::Arch::kQwen2 ? "qwen2" : "llama"},
      {"init_seed", seed},
      {"train", train_options_json(t)}};
  if (!logit) {
    m.recipe["teacher_fraction"] = teacher_fraction;
    m.recipe["samples"] = {{"count", p_.samples},
                           {"length", p_.sample_len},
                           {"temperature", 0.8},
                           {"top_p", 0.95},
                           {"seed", 7}};
  } else {
    m.recipe["data"] = "w2";
  }
  if (reusable(m)) return record(m);
  nlohmann::json cfg;
  PROV_ASSIGN_OR_RETURN(auto tf, fresh(name, arch, tok, seed, &cfg));
  if (logit) {
    PROV_ASSIGN_OR_RETURN(auto teacher, load("base_llama", false));
    PROV_RETURN_IF_ERROR(train_logit_distill(*tf, *teacher, stream("w2", "main"), t));
  } else {
    // Teacher text, re-encoded with the student's tokenizer, mixed with real W2 text so that the
    // teacher's share of training tokens is teacher_fraction.
    PROV_RETURN_IF_ERROR(ensure_teacher_samples());
    const model::Tokenizer& st = tok == "main" ? *tok_main_ : *tok_alt_;
    const int32_t sep = st.eos_id().value_or(0);
    std::vector<int32_t> teacher_stream;
    for (const auto& s : teacher_samples_) {
      if (tok == "main") {
        teacher_stream.insert(teacher_stream.end(), s.begin(), s.end());
      } else {
        PROV_ASSIGN_OR_RETURN(std::string text, tok_main_->decode(s, true));
        PROV_ASSIGN_OR_RETURN(auto ids, st.encode(text, false));
        teacher_stream.insert(teacher_stream.end(), ids.begin(), ids.end());
      }
      teacher_stream.push_back(sep);
    }
    std::vector<int32_t> data = teacher_stream;
    if (teacher_fraction < 1.0) {
      const auto& real = stream("w2", tok);
      const size_t want_real = static_cast<size_t>(static_cast<double>(teacher_stream.size()) *
                                                   (1.0 - teacher_fraction) / teacher_fraction);
      // Interleave blocks of real text with blocks of teacher text in the right proportion.
      std::vector<int32_t> mixed;
      const size_t blocks = 64;
      for (size_t b = 0; b < blocks; ++b) {
        const size_t t0 = teacher_stream.size() * b / blocks,
                     t1 = teacher_stream.size() * (b + 1) / blocks;
        const size_t r0 = want_real * b / blocks, r1 = want_real * (b + 1) / blocks;
        mixed.insert(mixed.end(), teacher_stream.begin() + t0, teacher_stream.begin() + t1);
        for (size_t i = r0; i < r1; ++i) mixed.push_back(real[i % real.size()]);
      }
      data.swap(mixed);
    }
    PROV_RETURN_IF_ERROR(train_lm(*tf, data, t));
  }
  PROV_RETURN_IF_ERROR(save(m, *tf, cfg));
  return record(m);
}

Result<nlohmann::json> Builder::run() {
  PROV_ASSIGN_OR_RETURN(p_, preset_for(o_.preset));
  if (o_.family != "full" && o_.family != "demo") {
    return invalid_argument("unknown zoo family " + o_.family + " (full, demo)");
  }
  const bool full = o_.family == "full";
  // The demo's student is tested by its outputs against base_llama's seed twins as controls:
  // ind_llama_seed and at least 4 more.
  const int seed_twins = full ? o_.seed_twins : std::max(o_.seed_twins, 4);
  if (o_.device == "cuda") {
    if (!torch::cuda::is_available())
      return unsupported("--device cuda: LibTorch sees no CUDA device");
    dev_ = torch::Device(torch::kCUDA);
  } else if (o_.device != "cpu") {
    return invalid_argument("unknown device " + o_.device + " (cpu, cuda)");
  }
  std::error_code ec;
  fs::create_directories(o_.out_dir, ec);
  if (ec) return Status(StatusCode::kIo, "cannot create " + o_.out_dir + ": " + ec.message());
  {
    std::ifstream f(dir("labels.json"));
    if (f) previous_ = nlohmann::json::parse(f, nullptr, false);
    if (previous_.is_discarded()) previous_ = nlohmann::json();
  }
  torch::manual_seed(0);
  labels_ = {{"name", fs::path(o_.out_dir).filename().string()},
             {"made_with", "prov zoo build --preset " + o_.preset +
                               (full ? std::string() : " --family " + o_.family)},
             {"preset", o_.preset},
             {"family", o_.family},
             {"corpora",
              {{"main", o_.corpus_file.empty() ? o_.corpus_package : o_.corpus_file},
               {"finetune", o_.finetune_package},
               {"split",
                "every 20th document held out for validation; the rest in "
                "alternation into halves w1 and w2"}}},
             {"relations",
              "base/independent = trained from scratch with its own seed; finetuned = "
              "training continued from the parent; quantized/permuted/noised/pruned/"
              "merged = weight derivatives (zoo/derive.h); distilled_logit = trained "
              "from scratch against the parent's logits; distilled_seq = trained from "
              "scratch on text sampled from the parent"},
             {"models", nlohmann::json::object()}};
  PROV_RETURN_IF_ERROR(prepare_data());
  PROV_RETURN_IF_ERROR(prepare_tokenizers());
  using model::Arch;

  // Bases.
  PROV_RETURN_IF_ERROR(
      trained_base("base_llama", Arch::kLlama, "w1", "main", 11, "base", "llama on W1"));
  if (full) {
    PROV_RETURN_IF_ERROR(
        trained_base("base_qwen2", Arch::kQwen2, "w2", "main", 12, "base", "qwen2 on W2"));
  }
  // Independent controls.
  PROV_RETURN_IF_ERROR(trained_base("ind_llama_seed", Arch::kLlama, "w1", "main", 21, "independent",
                                    "base_llama's architecture and data, another seed"));
  if (full) {
    PROV_RETURN_IF_ERROR(trained_base("ind_qwen2_w2", Arch::kQwen2, "w2", "main", 22, "independent",
                                      "the students' architecture (qwen2) on real W2 text"));
    PROV_RETURN_IF_ERROR(trained_base("ind_llama_alt_tok", Arch::kLlama, "w1", "alt", 23,
                                      "independent", "llama on W1 with the other tokenizer"));
  }
  for (int k = 1; k <= seed_twins; ++k) {
    char name[32];
    std::snprintf(name, sizeof name, "twin_llama_%02d", k);
    PROV_RETURN_IF_ERROR(trained_base(name, Arch::kLlama, "w1", "main", 100 + k, "independent",
                                      "base_llama's architecture and data, seed " +
                                          std::to_string(100 + k) + " (calibration twin)"));
  }

  // Weight derivatives of base_llama.
  if (full) {
    PROV_RETURN_IF_ERROR(finetune("ft_light", "base_llama", p_.ft_light, 1e-3, 31,
                                  "light fine-tune on the fine-tune domain"));
  }
  PROV_RETURN_IF_ERROR(finetune("ft_strong", "base_llama", p_.ft_strong, 3e-3, 32,
                                "strong fine-tune on the fine-tune domain"));
  const std::string base = dir("base_llama");
  if (full) {  // the remaining weight derivatives
    for (const char* scheme : {"int8", "q8_0"}) {
      Member m{std::string("quant_") + scheme,
               "quantized",
               {"base_llama"},
               std::string(scheme) + " round trip of base_llama",
               "main",
               {{"kind", "quantize round trip"}, {"scheme", scheme}}};
      PROV_RETURN_IF_ERROR(derived(
          m, [&](const std::string& out) { return quantize_roundtrip(base, out, scheme); }));
    }
    {
      Member m{"permuted",
               "permuted",
               {"base_llama"},
               "function-preserving permutation of residual dims, MLP units and KV-head groups",
               "main",
               {{"kind", "permutation"}, {"seed", 41}}};
      PROV_RETURN_IF_ERROR(derived(
          m, [&](const std::string& out) { return permute(base, out, 41, true, true, true); }));
    }
    {
      Member m{"noised",       "noised",
               {"base_llama"}, "Gaussian noise, 5% of each tensor's std",
               "main",         {{"kind", "noise"}, {"relative_std", 0.05}, {"seed", 42}}};
      PROV_RETURN_IF_ERROR(
          derived(m, [&](const std::string& out) { return add_noise(base, out, 0.05, 42); }));
    }
    {
      Member m{"pruned",
               "pruned",
               {"base_llama"},
               "layer 0 only and 75% of its MLP units, healed by training on W1",
               "main",
               {{"kind", "prune + heal"},
                {"keep_layers", {0}},
                {"keep_mlp_fraction", 0.75},
                {"heal", train_options_json(train_opts(p_.heal, 43, 1e-3))}}};
      PROV_RETURN_IF_ERROR(derived(m, [&](const std::string& out) -> Result<nlohmann::json> {
        PROV_ASSIGN_OR_RETURN(nlohmann::json r, prune(base, out, {0}, 0.75));
        PROV_ASSIGN_OR_RETURN(model::Model pm, model::open_model(out));
        model::RuntimeOptions ro;
        ro.device = dev_;
        ro.trainable = true;
        PROV_ASSIGN_OR_RETURN(auto tf, model::Transformer::load(pm, ro));
        PROV_RETURN_IF_ERROR(train_lm(*tf, stream("w1", "main"), train_opts(p_.heal, 43, 1e-3)));
        std::ifstream cf(out + "/config.json");
        nlohmann::json cfg = nlohmann::json::parse(cf, nullptr, false);
        Member tmp{"pruned", "", {}, "", "main", {}};
        PROV_RETURN_IF_ERROR(save(tmp, *tf, cfg));
        return r;
      }));
    }
    {
      Member m{"merged",
               "merged",
               {"base_llama", "ft_strong"},
               "50/50 average of base_llama and ft_strong",
               "main",
               {{"kind", "merge"}, {"weight_a", 0.5}}};
      PROV_RETURN_IF_ERROR(derived(
          m, [&](const std::string& out) { return merge(base, dir("ft_strong"), out, 0.5); }));
    }
  }

  // Students of base_llama: each recipe once, then --student-seeds replicates with other seeds.
  struct StudentRecipe {
    const char* name;
    Arch arch;
    const char* tok;
    double teacher_fraction;
    bool logit;
    uint64_t seed;
    const char* detail;
  };
  const StudentRecipe recipes[] = {
      {"distill_logit", Arch::kQwen2, "main", 0, true, 51,
       "qwen2 trained on W2 against base_llama's logits"},
      {"distill_seq_100", Arch::kQwen2, "main", 1.0, false, 52,
       "qwen2 trained only on base_llama-generated text"},
      {"distill_seq_50", Arch::kQwen2, "main", 0.5, false, 53,
       "qwen2 trained on 50% base_llama-generated text, 50% W2"},
      {"distill_seq_20", Arch::kQwen2, "main", 0.2, false, 54,
       "qwen2 trained on 20% base_llama-generated text, 80% W2"},
      {"distill_seq_alt_tok", Arch::kLlama, "alt", 1.0, false, 55,
       "llama with the other tokenizer, trained only on base_llama-generated text"},
  };
  for (int k = 0; k <= o_.student_seeds; ++k) {
    for (size_t j = 0; j < std::size(recipes); ++j) {
      const StudentRecipe& r = recipes[j];
      if (!full && std::string(r.name) != "distill_seq_100") continue;
      if (k == 0) {
        PROV_RETURN_IF_ERROR(
            student(r.name, r.arch, r.tok, r.teacher_fraction, r.logit, r.seed, r.detail));
        continue;
      }
      const uint64_t seed = 500 + 10 * static_cast<uint64_t>(k) + j + 1;
      PROV_RETURN_IF_ERROR(student(std::string(r.name) + "_s" + std::to_string(k), r.arch, r.tok,
                                   r.teacher_fraction, r.logit, seed,
                                   std::string(r.detail) + " (replicate " + std::to_string(k) +
                                       ", seed " + std::to_string(seed) + ")"));
    }
  }
  return labels_;
}

}  // namespace

Result<nlohmann::json> build_zoo(const ZooOptions& options) {
  if (options.out_dir.empty()) return invalid_argument("the zoo needs an output directory");
  try {
    Builder b(options);
    return b.run();
  } catch (const c10::Error& e) {
    return internal_error(std::string("zoo build failed in LibTorch: ") +
                          e.what_without_backtrace());
  } catch (const std::exception& e) {
    return internal_error(std::string("zoo build failed: ") + e.what());
  }
}

}  // namespace prov::zoo
