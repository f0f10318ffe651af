#include "fingerprint/weight_fingerprint.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/file_io.h"
#include "core/sha256.h"
#include "core/thread_pool.h"
#include "fingerprint/gram_internal.h"
#include "model/formats/digest.h"
#include "model/formats/tensor.h"

namespace prov::fingerprint {

namespace {

constexpr char kMagic[8] = {'P', 'R', 'O', 'V', 'W', 'F', 'P', '\x01'};
constexpr uint64_t kMaxFileBytes = uint64_t{4} << 30;

int kind_from_name(const std::string& name) {
  for (int r = static_cast<int>(model::Role::kTokenEmbedding);
       r <= static_cast<int>(model::Role::kLmHead); ++r) {
    if (name == model::role_name(static_cast<model::Role>(r))) return r;
  }
  return -1;
}

// Rebuilds a GramSet from the stored triangles (diagonal 1: cosines).
Result<GramSet> gram_set_from(const pb::WeightFingerprint& fp, bool reference) {
  const size_t s = static_cast<size_t>(fp.dims_size());
  GramSet set;
  set.grams.resize(static_cast<size_t>(std::max<int64_t>(fp.num_layers(), 0)));
  for (const auto& g : fp.grams()) {
    if (g.layer() < 0 || g.layer() >= 1 << 20) return corrupt("Gram sketch with a bad layer");
    const int kind = kind_from_name(g.kind());
    if (kind < 0) return corrupt("Gram sketch of unknown matrix kind '" + g.kind() + "'");
    if (static_cast<size_t>(g.upper_size()) != s * (s - 1) / 2) {
      return corrupt("Gram sketch of layer " + std::to_string(g.layer()) + " " + g.kind() +
                     " has " + std::to_string(g.upper_size()) + " values, not " +
                     std::to_string(s * (s - 1) / 2));
    }
    if (static_cast<size_t>(g.layer()) >= set.grams.size()) set.grams.resize(g.layer() + 1);
    Eigen::MatrixXd m =
        Eigen::MatrixXd::Identity(static_cast<Eigen::Index>(s), static_cast<Eigen::Index>(s));
    size_t k = 0;
    for (size_t i = 0; i < s; ++i) {
      for (size_t j = i + 1; j < s; ++j, ++k) {
        m(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) =
            g.upper(static_cast<int>(k));
        m(static_cast<Eigen::Index>(j), static_cast<Eigen::Index>(i)) =
            g.upper(static_cast<int>(k));
      }
    }
    set.grams[static_cast<size_t>(g.layer())][kind] = std::move(m);
  }
  if (reference) {
    set.upper.resize(set.grams.size());
    for (size_t l = 0; l < set.grams.size(); ++l) {
      for (const auto& [kind, m] : set.grams[l]) set.upper[l][kind] = centred_upper(m);
    }
  }
  return set;
}

}  // namespace

Result<pb::WeightFingerprint> make_weight_fingerprint(const model::Model& m,
                                                      const std::string& tool_version,
                                                      const WeightTestOptions& options) {
  pb::WeightFingerprint fp;
  fp.set_schema_version(kWeightFingerprintVersion);
  fp.set_tool_version(tool_version);
  // One pass: the file digests (OMS manifest), the tensor digests and the Gram products are
  // tasks of one worker pool, largest first, so each byte is read from disk once and the cores
  // stay busy until the end.
  auto files = model::list_manifest_files(m.checkpoint.path);
  if (!files.is_ok()) return files.status();
  std::vector<Digest> file_digests(files->size());
  const auto& tensors = m.checkpoint.tensors;
  std::vector<std::string> tensor_digests(tensors.size());
  std::vector<SideTask> side;
  for (size_t i = 0; i < files->size(); ++i) {
    side.push_back({(*files)[i].size, [&, i]() -> Status {
                      auto d = sha256_file((*files)[i].path);
                      if (!d.is_ok()) return d.status();
                      file_digests[i] = *d;
                      return Status::ok();
                    }});
  }
  for (size_t i = 0; i < tensors.size(); ++i) {
    side.push_back({tensors[i].nbytes, [&, i]() -> Status {
                      auto d = model::tensor_digest(tensors[i]);
                      if (!d.is_ok()) return d.status();
                      tensor_digests[i] = *d;
                      return Status::ok();
                    }});
  }
  fp.set_hidden_size(m.config.hidden_size);
  fp.set_num_layers(m.config.num_layers);
  fp.set_seed(options.seed);
  const TestSeeds seeds = test_seeds(options.seed);
  const std::vector<int> dims = raw_test_dims(m.config.hidden_size, options.max_dims, seeds.subset);
  for (int d : dims) fp.add_dims(d);
  const unsigned threads = options.threads ? options.threads : std::min(default_thread_count(), 8u);
  auto sets = gram_sets(m, {GramView{dims, std::vector<double>(dims.size(), 1.0), 0, false}},
                        threads, side);
  if (!sets.is_ok()) return sets.status();
  const model::Manifest manifest = model::manifest_from(*files, file_digests);
  auto* id = fp.mutable_identity();
  id->set_schema_version(1);
  id->set_tool_version(tool_version);
  id->set_format(model::format_name(m.checkpoint.format));
  id->set_architecture(m.config.model_type);
  id->set_digest(manifest.digest);
  for (const auto& f : manifest.files) {
    auto* pf = id->add_files();
    pf->set_name(f.name);
    pf->set_sha256(f.sha256);
    pf->set_size(f.size);
  }
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& t = tensors[i];
    auto* pt = id->add_tensors();
    pt->set_name(t.name);
    pt->set_dtype(model::dtype_name(t.dtype));
    for (int64_t d : t.shape) pt->add_shape(d);
    pt->set_sha256(tensor_digests[i]);
  }
  const GramSet& set = sets->front();
  for (size_t l = 0; l < set.grams.size(); ++l) {
    for (const auto& [kind, g] : set.grams[l]) {
      auto* sk = fp.add_grams();
      sk->set_layer(static_cast<int32_t>(l));
      sk->set_kind(model::role_name(static_cast<model::Role>(kind)));
      for (Eigen::Index i = 0; i < g.rows(); ++i)
        for (Eigen::Index j = i + 1; j < g.cols(); ++j) sk->add_upper(static_cast<float>(g(i, j)));
    }
  }
  return fp;
}

Status write_weight_fingerprint(const std::string& path, const pb::WeightFingerprint& fp) {
  std::string bytes;
  if (!fp.SerializeToString(&bytes)) return internal_error("cannot serialise a weight fingerprint");
  return write_file_atomic(path, std::string(kMagic, sizeof kMagic) + bytes);
}

bool is_weight_fingerprint_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char head[sizeof kMagic] = {};
  if (!f.read(head, sizeof head)) return false;
  return std::memcmp(head, kMagic, sizeof kMagic) == 0;
}

Result<pb::WeightFingerprint> read_weight_fingerprint(const std::string& path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) return not_found(path + ": cannot open");
  const std::streamoff size = f.tellg();
  if (size < 0) return io_error(path + ": cannot read");
  if (static_cast<uint64_t>(size) > kMaxFileBytes) {
    return corrupt(path + ": " + std::to_string(size) +
                   " bytes is larger than any weight "
                   "fingerprint (4 GiB)");
  }
  f.seekg(0);
  std::string bytes(static_cast<size_t>(size), '\0');
  if (!f.read(bytes.data(), size)) return io_error(path + ": cannot read");
  if (bytes.size() < sizeof kMagic || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0) {
    return corrupt(path + ": not a prov weight fingerprint (no PROVWFP magic)");
  }
  pb::WeightFingerprint fp;
  if (!fp.ParseFromArray(bytes.data() + sizeof kMagic,
                         static_cast<int>(bytes.size() - sizeof kMagic))) {
    return corrupt(path + ": the weight fingerprint does not decode (truncated or damaged)");
  }
  if (fp.schema_version() > kWeightFingerprintVersion) {
    return unsupported(path + ": weight fingerprint schema version " +
                       std::to_string(fp.schema_version()) + " is newer than this prov (" +
                       std::to_string(kWeightFingerprintVersion) + "); upgrade prov");
  }
  for (int d : fp.dims()) {
    if (d < 0 || d >= fp.hidden_size()) {
      return corrupt(path + ": dimension " + std::to_string(d) + " outside the hidden size " +
                     std::to_string(fp.hidden_size()));
    }
  }
  auto check = gram_set_from(fp, false);
  if (!check.is_ok()) return check.status().with_context(path);
  return fp;
}

Result<FingerprintComparison> compare_fingerprints(const pb::WeightFingerprint& candidate,
                                                   const pb::WeightFingerprint& reference,
                                                   const WeightTestOptions& options) {
  FingerprintComparison out;
  out.null_hypothesis = "exact comparison (no test statistic)";
  const auto& ci = candidate.identity();
  const auto& ri = reference.identity();
  if (!ci.digest().empty() && ci.digest() == ri.digest()) {
    out.relation = Relation::kIdentical;
    out.reason = "the OMS manifest digests are equal (" + ci.digest() + ")";
    return out;
  }
  if (ci.tensors_size() > 0 && ci.tensors_size() == ri.tensors_size()) {
    bool same = true;
    for (int i = 0; i < ci.tensors_size() && same; ++i) {
      same = ci.tensors(i).sha256() == ri.tensors(i).sha256();
    }
    if (same) {
      out.relation = Relation::kConverted;
      out.reason = "every tensor's canonical bytes are equal (" +
                   std::to_string(ci.tensors_size()) + " tensor digests); the files differ";
      return out;
    }
  }
  auto inconclusive = [&](std::string why) {
    out.relation = Relation::kInconclusive;
    out.reason = std::move(why);
    return out;
  };
  if (candidate.hidden_size() != reference.hidden_size()) {
    return inconclusive("hidden sizes differ (" + std::to_string(candidate.hidden_size()) + " vs " +
                        std::to_string(reference.hidden_size()) +
                        "): the exact test needs equal widths; compare the checkpoints");
  }
  if (candidate.seed() != reference.seed() || candidate.dims_size() != reference.dims_size() ||
      !std::equal(candidate.dims().begin(), candidate.dims().end(), reference.dims().begin())) {
    return inconclusive("the fingerprints were made with different dimension subsets (seeds " +
                        std::to_string(candidate.seed()) + " and " +
                        std::to_string(reference.seed()) + ")");
  }
  auto gr = gram_set_from(reference, true);
  if (!gr.is_ok()) return gr.status().with_context("reference fingerprint");
  auto gc = gram_set_from(candidate, false);
  if (!gc.is_ok()) return gc.status().with_context("candidate fingerprint");
  const unsigned threads = options.threads ? options.threads : std::min(default_thread_count(), 8u);
  const TestSeeds seeds = test_seeds(candidate.seed());
  const GramTestResult t = permutation_test(*gr, *gc, candidate.dims_size(),
                                            std::max(options.permutations, 1), seeds.a, threads);
  if (t.empty) return inconclusive("the two models have no weight matrix kind in common");
  out.null_hypothesis =
      "the candidate's weights were initialised and trained independently of the reference's "
      "(exact signed permutation test of per-layer Gram matrices at the same residual indices)";
  out.p_value = t.p;
  out.statistic = t.t;
  out.z_score = t.z;
  out.permutations = std::max(options.permutations, 1);
  out.layers = t.layers;
  char buf[160];
  std::snprintf(buf, sizeof buf,
                "raw-index Gram test p = %.3g (%d signed permutations, "
                "similarity %.3g, z = %.3g)",
                t.p, out.permutations, t.t, t.z);
  if (t.p < options.alpha) {
    out.relation = Relation::kWeightDerived;
    out.reason = std::string("shares weights with the reference: ") + buf +
                 "; naming the derivation needs the checkpoints";
  } else {
    out.relation = Relation::kIndependent;
    out.reason = std::string("no evidence of shared weights: ") + buf;
  }
  return out;
}

}  // namespace prov::fingerprint
