// Signature extraction: the LibTorch reference against a double-precision brute force, the
// validation, and (when a GPU and the kernel are there) the fused CUDA kernel against the
// reference.
#include "probes/extract.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <torch/cuda.h>

namespace prov::probes {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// Seeded normal logits, rounded to `dtype`.
torch::Tensor random_logits(int64_t n, int64_t v, torch::ScalarType dtype, uint64_t seed,
                            float scale = 3.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> data(static_cast<size_t>(n * v));
  for (float& x : data) x = normal(rng);
  return torch::from_blob(data.data(), {n, v}, torch::kFloat32).clone().to(dtype);
}

// The values a computation should see: the logits upcast to fp32, as [N, V] on the CPU.
std::vector<std::vector<float>> rows_of(const torch::Tensor& logits) {
  const torch::Tensor x =
      logits.to(torch::kCPU).to(torch::kFloat32).reshape({-1, logits.size(-1)}).contiguous();
  std::vector<std::vector<float>> rows(x.size(0));
  for (int64_t r = 0; r < x.size(0); ++r) {
    const float* p = x.data_ptr<float>() + r * x.size(1);
    rows[r].assign(p, p + x.size(1));
  }
  return rows;
}

struct BruteRow {
  std::vector<int64_t> ids;
  std::vector<double> logprobs;
  double entropy = 0;
  double lse = 0;
};

// Everything in double, straight from the definitions; ranking by (-logit, id).
BruteRow brute_force(const std::vector<float>& x, int64_t k) {
  BruteRow b;
  double m = -std::numeric_limits<double>::infinity();
  for (float v : x) m = std::max(m, static_cast<double>(v));
  double s = 0;
  for (float v : x) {
    if (v != -kInf) s += std::exp(v - m);
  }
  b.lse = m + std::log(s);
  for (float v : x) {
    if (v == -kInf) continue;
    const double lp = v - b.lse;
    b.entropy -= std::exp(lp) * lp;
  }
  std::vector<int64_t> order(x.size());
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + k, order.end(),
                    [&](int64_t a, int64_t c) { return x[a] > x[c] || (x[a] == x[c] && a < c); });
  for (int64_t j = 0; j < k; ++j) {
    b.ids.push_back(order[j]);
    b.logprobs.push_back(static_cast<double>(x[order[j]]) - b.lse);
  }
  return b;
}

bool close(double got, double want, double tol) {
  if (std::isinf(want) || std::isinf(got)) return got == want;
  return std::fabs(got - want) <= tol + tol * std::fabs(want);
}

// Checks an extraction of `logits` against the brute force, row by row.
void expect_matches_brute(const torch::Tensor& logits, int64_t k, const Extracted& e, double tol,
                          const std::string& what) {
  const auto rows = rows_of(logits);
  const int64_t n = static_cast<int64_t>(rows.size());
  ASSERT_EQ(e.top_ids.sizes(), torch::IntArrayRef({n, k})) << what;
  ASSERT_EQ(e.top_logprobs.sizes(), torch::IntArrayRef({n, k})) << what;
  ASSERT_EQ(e.entropy.sizes(), torch::IntArrayRef({n})) << what;
  ASSERT_EQ(e.logsumexp.sizes(), torch::IntArrayRef({n})) << what;
  ASSERT_EQ(e.top_ids.scalar_type(), torch::kInt64) << what;
  ASSERT_EQ(e.top_logprobs.scalar_type(), torch::kFloat32) << what;
  const torch::Tensor ids = e.top_ids.to(torch::kCPU).contiguous();
  const torch::Tensor lps = e.top_logprobs.to(torch::kCPU).contiguous();
  const torch::Tensor ent = e.entropy.to(torch::kCPU).contiguous();
  const torch::Tensor lse = e.logsumexp.to(torch::kCPU).contiguous();
  for (int64_t r = 0; r < n; ++r) {
    const BruteRow b = brute_force(rows[r], k);
    EXPECT_TRUE(close(lse.data_ptr<float>()[r], b.lse, tol))
        << what << " row " << r << " lse " << lse.data_ptr<float>()[r] << " want " << b.lse;
    EXPECT_TRUE(close(ent.data_ptr<float>()[r], b.entropy, tol))
        << what << " row " << r << " entropy " << ent.data_ptr<float>()[r] << " want " << b.entropy;
    int mismatches = 0;
    for (int64_t j = 0; j < k && mismatches < 5; ++j) {
      const int64_t got_id = ids.data_ptr<int64_t>()[r * k + j];
      const float got_lp = lps.data_ptr<float>()[r * k + j];
      if (got_id != b.ids[j] || !close(got_lp, b.logprobs[j], tol)) {
        ++mismatches;
        ADD_FAILURE() << what << " row " << r << " rank " << j << ": id " << got_id << " logprob "
                      << got_lp << ", want id " << b.ids[j] << " logprob " << b.logprobs[j];
      }
    }
  }
}

Extracted must(Result<Extracted> r) {
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  if (!r.is_ok()) return Extracted{};
  return std::move(r).value();
}

TEST(ExtractReference, MatchesBruteForceAcrossDtypesSizesAndK) {
  const torch::ScalarType dtypes[] = {torch::kFloat32, torch::kBFloat16, torch::kFloat16};
  const int64_t vocabs[] = {1, 7, 1000, 151936};
  uint64_t seed = 1;
  for (torch::ScalarType dt : dtypes) {
    for (int64_t v : vocabs) {
      const int64_t n = v > 10000 ? 2 : 4;
      const torch::Tensor logits = random_logits(n, v, dt, seed++);
      std::vector<int64_t> ks = {1, 20, std::min<int64_t>(v, 1024)};
      for (int64_t k : ks) {
        if (k > v) continue;
        const std::string what =
            std::string(c10::toString(dt)) + " V=" + std::to_string(v) + " k=" + std::to_string(k);
        const Extracted e = must(extract_reference(logits, k));
        if (!e.top_ids.defined()) continue;
        expect_matches_brute(logits, k, e, 1e-5, what);
      }
    }
  }
}

TEST(ExtractReference, LogprobsAreSortedAndEntropyIsInRange) {
  const torch::Tensor logits = random_logits(3, 5000, torch::kFloat32, 99, 5.0f);
  const Extracted e = must(extract_reference(logits, 64));
  ASSERT_TRUE(e.top_ids.defined());
  const torch::Tensor diff = e.top_logprobs.slice(1, 0, 63) - e.top_logprobs.slice(1, 1, 64);
  EXPECT_TRUE((diff >= 0).all().item<bool>());
  EXPECT_TRUE((e.entropy >= 0).all().item<bool>());
  EXPECT_TRUE((e.entropy <= std::log(5000.0) + 1e-4).all().item<bool>());
  // A uniform distribution has entropy log V and lse = x + log V.
  const Extracted u = must(extract_reference(torch::full({1, 64}, 2.5f), 3));
  ASSERT_TRUE(u.entropy.defined());
  EXPECT_NEAR(u.entropy.item<float>(), std::log(64.0), 1e-5);
  EXPECT_NEAR(u.logsumexp.item<float>(), 2.5 + std::log(64.0), 1e-5);
}

TEST(ExtractReference, TiesGoToLowerIds) {
  // All equal: ids 0..k-1.
  const Extracted e = must(extract_reference(torch::zeros({2, 300}), 10));
  ASSERT_TRUE(e.top_ids.defined());
  EXPECT_TRUE(torch::equal(e.top_ids, torch::arange(10).repeat({2, 1})));
  // Few distinct values, many ties, including across the k boundary.
  std::vector<float> pattern(500);
  for (size_t i = 0; i < pattern.size(); ++i) pattern[i] = static_cast<float>((i * 7919) % 5);
  const torch::Tensor logits = torch::from_blob(pattern.data(), {1, 500}, torch::kFloat32).clone();
  for (int64_t k : {1, 50, 99, 100, 101, 250, 500}) {
    const Extracted t = must(extract_reference(logits, k));
    if (!t.top_ids.defined()) continue;
    expect_matches_brute(logits, k, t, 1e-5, "pattern k=" + std::to_string(k));
  }
  // -0.0 equals +0.0.
  const torch::Tensor zeros = torch::tensor({-1.0f, 0.0f, -0.0f, 0.0f, -0.0f});
  const Extracted z = must(extract_reference(zeros, 4));
  ASSERT_TRUE(z.top_ids.defined());
  EXPECT_TRUE(torch::equal(z.top_ids, torch::tensor({1, 2, 3, 4}, torch::kInt64).view({1, 4})));
  // bf16 logits in a narrow range collide a lot.
  const torch::Tensor narrow = random_logits(3, 2000, torch::kBFloat16, 7, 0.05f);
  for (int64_t k : {5, 200}) {
    const Extracted t = must(extract_reference(narrow, k));
    if (!t.top_ids.defined()) continue;
    expect_matches_brute(narrow, k, t, 1e-5, "bf16 narrow k=" + std::to_string(k));
  }
}

TEST(ExtractReference, NegativeInfinityLogits) {
  std::vector<float> x = {-kInf, 1.0f, -kInf, 0.5f, -kInf, -kInf, 2.0f, -kInf};
  const torch::Tensor logits = torch::from_blob(x.data(), {1, 8}, torch::kFloat32).clone();
  const Extracted e = must(extract_reference(logits, 6));
  ASSERT_TRUE(e.top_ids.defined());
  EXPECT_TRUE(
      torch::equal(e.top_ids, torch::tensor({6, 1, 3, 0, 2, 4}, torch::kInt64).view({1, 6})));
  EXPECT_TRUE(std::isfinite(e.entropy.item<float>()));
  EXPECT_EQ(e.top_logprobs[0][3].item<float>(), -kInf);
  expect_matches_brute(logits, 6, e, 1e-5, "-inf");
  // One finite logit: probability 1, entropy 0.
  const Extracted one = must(extract_reference(torch::tensor({-kInf, 3.0f, -kInf}), 1));
  ASSERT_TRUE(one.top_ids.defined());
  EXPECT_EQ(one.top_ids.item<int64_t>(), 1);
  EXPECT_EQ(one.top_logprobs.item<float>(), 0.0f);
  EXPECT_EQ(one.entropy.item<float>(), 0.0f);
  EXPECT_EQ(one.logsumexp.item<float>(), 3.0f);
}

TEST(ExtractReference, RejectsInvalidDistributions) {
  torch::Tensor logits = random_logits(4, 16, torch::kFloat32, 3);
  logits[2][5] = std::numeric_limits<float>::quiet_NaN();
  auto r = extract_reference(logits, 3);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("NaN"), std::string::npos) << r.status().to_string();
  EXPECT_NE(r.status().message().find("row 2"), std::string::npos) << r.status().to_string();

  logits = random_logits(4, 16, torch::kBFloat16, 3);
  logits[1][0] = kInf;
  r = extract_reference(logits, 3);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("+inf"), std::string::npos) << r.status().to_string();

  logits = random_logits(4, 16, torch::kFloat16, 3);
  logits[3].fill_(-kInf);
  r = extract_reference(logits, 3);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("row 3"), std::string::npos) << r.status().to_string();
}

TEST(ExtractReference, RejectsBadArguments) {
  const torch::Tensor logits = random_logits(2, 2000, torch::kFloat32, 5);
  for (int64_t k : {int64_t{0}, int64_t{-1}, int64_t{1025}}) {
    auto r = extract_reference(logits, k);
    ASSERT_FALSE(r.is_ok()) << k;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("k = " + std::to_string(k)), std::string::npos)
        << r.status().to_string();
  }
  EXPECT_TRUE(extract_reference(logits, 1024).is_ok());
  auto r = extract_reference(random_logits(2, 7, torch::kFloat32, 5), 8);  // k > V
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  r = extract_reference(torch::zeros({3, 5}, torch::kFloat64), 1);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("dtype"), std::string::npos) << r.status().to_string();
  r = extract_reference(torch::zeros({3, 5}, torch::kInt64), 1);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  r = extract_reference(torch::tensor(1.0f), 1);  // scalar
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  r = extract_reference(torch::zeros({3, 0}), 1);  // empty vocabulary
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  r = extract_reference(torch::Tensor(), 1);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  // Zero rows are fine.
  const Extracted e = must(extract_reference(torch::zeros({0, 5}), 2));
  ASSERT_TRUE(e.top_ids.defined());
  EXPECT_EQ(e.top_ids.sizes(), torch::IntArrayRef({0, 2}));
  EXPECT_EQ(e.entropy.sizes(), torch::IntArrayRef({0}));
}

TEST(ExtractReference, NonContiguousAndBatchedInputs) {
  // [V, N] transposed: a non-contiguous [N, V].
  const torch::Tensor base = random_logits(300, 5, torch::kFloat16, 11);
  const torch::Tensor t = base.t();
  ASSERT_FALSE(t.is_contiguous());
  const Extracted a = must(extract_reference(t, 20));
  ASSERT_TRUE(a.top_ids.defined());
  expect_matches_brute(t, 20, a, 1e-5, "transposed");
  const Extracted b = must(extract_reference(t.contiguous(), 20));
  ASSERT_TRUE(b.top_ids.defined());
  EXPECT_TRUE(torch::equal(a.top_ids, b.top_ids));
  EXPECT_TRUE(torch::equal(a.top_logprobs, b.top_logprobs));

  // [B, T, V] is flattened to [B*T, V] rows.
  const torch::Tensor btv = random_logits(6, 100, torch::kBFloat16, 12).view({2, 3, 100});
  const Extracted c = must(extract_reference(btv, 4));
  ASSERT_TRUE(c.top_ids.defined());
  EXPECT_EQ(c.top_ids.sizes(), torch::IntArrayRef({6, 4}));
  expect_matches_brute(btv, 4, c, 1e-5, "[B,T,V]");
  // A 1-D tensor is one row.
  const Extracted d = must(extract_reference(torch::tensor({0.0f, 3.0f, 1.0f}), 2));
  ASSERT_TRUE(d.top_ids.defined());
  EXPECT_TRUE(torch::equal(d.top_ids, torch::tensor({1, 2}, torch::kInt64).view({1, 2})));
}

TEST(ExtractSignature, UsesTheReferenceOnCpu) {
  const torch::Tensor logits = random_logits(3, 777, torch::kBFloat16, 21);
  const Extracted a = must(extract_signature(logits, 9));
  const Extracted b = must(extract_reference(logits, 9));
  ASSERT_TRUE(a.top_ids.defined() && b.top_ids.defined());
  EXPECT_TRUE(torch::equal(a.top_ids, b.top_ids));
  EXPECT_TRUE(torch::equal(a.top_logprobs, b.top_logprobs));
  EXPECT_TRUE(torch::equal(a.entropy, b.entropy));
  EXPECT_TRUE(torch::equal(a.logsumexp, b.logsumexp));
  EXPECT_EQ(extract_signature(logits, 0).status().code(), StatusCode::kInvalidArgument);
}

// ---- the CUDA kernel ----------------------------------------------------------------------------

bool have_kernel() {
  return torch::cuda::is_available() && extract_has_cuda_kernel();
}

#define PROV_REQUIRE_KERNEL()                                                    \
  do {                                                                           \
    if (!have_kernel()) GTEST_SKIP() << "no CUDA device or kernel not built in"; \
  } while (0)

// The kernel on `logits` (moved to the GPU) against the reference on the CPU: the same ids, the
// values within tol.
void expect_kernel_matches_reference(const torch::Tensor& logits, int64_t k,
                                     const std::string& what, double tol = 1e-5) {
  const Extracted ref = must(extract_reference(logits.to(torch::kCPU), k));
  const Extracted got = must(extract_signature(logits.to(torch::kCUDA), k));
  ASSERT_TRUE(ref.top_ids.defined() && got.top_ids.defined()) << what;
  ASSERT_TRUE(got.top_ids.is_cuda()) << what;
  ASSERT_TRUE(got.entropy.is_cuda()) << what;
  const torch::Tensor gid = got.top_ids.cpu();
  const torch::Tensor glp = got.top_logprobs.cpu();
  const torch::Tensor gen = got.entropy.cpu();
  const torch::Tensor gls = got.logsumexp.cpu();
  EXPECT_TRUE(torch::equal(gid, ref.top_ids)) << what;
  if (!torch::equal(gid, ref.top_ids)) {
    const torch::Tensor bad = (gid != ref.top_ids).nonzero();
    const int64_t r = bad[0][0].item<int64_t>();
    const int64_t j = bad[0][1].item<int64_t>();
    ADD_FAILURE() << what << " first id mismatch at row " << r << " rank " << j << ": got "
                  << gid[r][j].item<int64_t>() << " want " << ref.top_ids[r][j].item<int64_t>();
  }
  const auto check = [&](const torch::Tensor& g, const torch::Tensor& w, const char* name) {
    const torch::Tensor gf = g.to(torch::kFloat64);
    const torch::Tensor wf = w.to(torch::kFloat64);
    const torch::Tensor both_inf = torch::isinf(gf) & torch::isinf(wf) & (gf == wf);
    const torch::Tensor ok = both_inf | ((gf - wf).abs() <= tol + tol * wf.abs());
    EXPECT_TRUE(ok.all().item<bool>())
        << what << " " << name << " max abs diff "
        << torch::where(both_inf, torch::zeros_like(gf), (gf - wf).abs()).max().item<double>();
  };
  check(glp, ref.top_logprobs, "logprobs");
  check(gen, ref.entropy, "entropy");
  check(gls, ref.logsumexp, "logsumexp");
}

TEST(ExtractCuda, MatchesReferenceAcrossDtypesSizesAndK) {
  PROV_REQUIRE_KERNEL();
  const torch::ScalarType dtypes[] = {torch::kFloat32, torch::kBFloat16, torch::kFloat16};
  const int64_t vocabs[] = {1, 7, 31, 1000, 1001, 4099, 151936};
  const int64_t ks[] = {1, 2, 3, 5, 8, 16, 17, 20, 32, 33, 100, 257, 1024};
  uint64_t seed = 100;
  for (torch::ScalarType dt : dtypes) {
    for (int64_t v : vocabs) {
      const int64_t n = v > 10000 ? 3 : 5;
      const torch::Tensor logits = random_logits(n, v, dt, seed++);
      for (int64_t k : ks) {
        if (k > v) continue;
        expect_kernel_matches_reference(
            logits, k,
            std::string(c10::toString(dt)) + " V=" + std::to_string(v) + " k=" + std::to_string(k));
      }
      if (v <= 1024) {
        expect_kernel_matches_reference(
            logits, v, std::string(c10::toString(dt)) + " V=" + std::to_string(v) + " k=V");
      }
    }
  }
}

TEST(ExtractCuda, TiesNegativeInfinityAndSignedZeros) {
  PROV_REQUIRE_KERNEL();
  for (int64_t k : {1, 10, 32, 33, 500, 1024}) {
    // All equal.
    expect_kernel_matches_reference(torch::zeros({3, 3000}), k, "zeros k=" + std::to_string(k));
    // A few distinct values.
    std::vector<float> pattern(3000);
    for (size_t i = 0; i < pattern.size(); ++i) {
      pattern[i] = static_cast<float>((i * 7919) % 7) - 3.0f;
    }
    expect_kernel_matches_reference(
        torch::from_blob(pattern.data(), {1, 3000}, torch::kFloat32).clone(), k,
        "pattern k=" + std::to_string(k));
    // Signed zeros on top, then many -inf (k larger than the number of finite logits).
    std::vector<float> z(2000, -kInf);
    for (size_t i = 0; i < 40; ++i) z[i * 37] = (i % 2) ? 0.0f : -0.0f;
    for (size_t i = 0; i < 10; ++i) z[i * 101 + 3] = -1.0f - static_cast<float>(i);
    expect_kernel_matches_reference(torch::from_blob(z.data(), {1, 2000}, torch::kFloat32).clone(),
                                    k, "zeros/-inf k=" + std::to_string(k));
    // bf16/fp16 in a narrow range collide a lot.
    expect_kernel_matches_reference(random_logits(4, 20000, torch::kBFloat16, 5, 0.05f), k,
                                    "bf16 narrow k=" + std::to_string(k));
    expect_kernel_matches_reference(random_logits(4, 20000, torch::kFloat16, 6, 0.01f), k,
                                    "fp16 narrow k=" + std::to_string(k));
  }
  // The best logits crowded into one warp's stretch, and into the unaligned tail.
  for (int64_t start : {int64_t{1000}, int64_t{49990 - 40}}) {
    torch::Tensor crowded = random_logits(2, 49990, torch::kBFloat16, 8, 1.0f);
    crowded.narrow(1, start, 40).copy_(torch::arange(40).to(torch::kBFloat16).add(10).flip(0));
    for (int64_t k : {1, 32, 40, 64}) {
      expect_kernel_matches_reference(
          crowded, k, "crowded at " + std::to_string(start) + " k=" + std::to_string(k));
    }
  }
  // Ascending logits: every element displaces a candidate.
  const torch::Tensor up = torch::arange(50000, torch::kFloat32).mul(1e-3).view({1, 50000});
  expect_kernel_matches_reference(up, 32, "ascending k=32");
  expect_kernel_matches_reference(up, 1000, "ascending k=1000");
}

TEST(ExtractCuda, UnalignedRowsManyRowsAndLayouts) {
  PROV_REQUIRE_KERNEL();
  // Row starts off 16-byte boundaries: an element offset into the storage, odd row lengths.
  for (torch::ScalarType dt : {torch::kFloat32, torch::kBFloat16, torch::kFloat16}) {
    const torch::Tensor flat = random_logits(1, 7 * 1003 + 3, dt, 31).view({-1}).to(torch::kCUDA);
    const torch::Tensor off = flat.narrow(0, 3, 7 * 1003).view({7, 1003});
    ASSERT_TRUE(off.is_contiguous());
    for (int64_t k : {4, 32, 64}) {
      expect_kernel_matches_reference(off, k, std::string("offset ") + c10::toString(dt));
    }
  }
  // Many rows.
  expect_kernel_matches_reference(random_logits(700, 1500, torch::kBFloat16, 32), 20, "700 rows");
  // Non-contiguous CUDA input and [B, T, V].
  const torch::Tensor t = random_logits(2000, 6, torch::kFloat32, 33).to(torch::kCUDA).t();
  expect_kernel_matches_reference(t, 5, "transposed");
  const torch::Tensor btv = random_logits(6, 3000, torch::kFloat16, 34).view({2, 3, 3000});
  expect_kernel_matches_reference(btv, 40, "[B,T,V]");
  // Zero rows.
  const Extracted e = must(extract_signature(torch::zeros({0, 10}, torch::kCUDA), 3));
  ASSERT_TRUE(e.top_ids.defined());
  EXPECT_EQ(e.top_ids.sizes(), torch::IntArrayRef({0, 3}));
}

TEST(ExtractCuda, RejectsWhatTheReferenceRejects) {
  PROV_REQUIRE_KERNEL();
  for (int64_t k : {5, 100}) {
    torch::Tensor logits = random_logits(4, 300, torch::kBFloat16, 41);
    logits[2][7] = std::numeric_limits<float>::quiet_NaN();
    logits[3][9] = kInf;
    auto ref = extract_reference(logits, k);
    auto got = extract_signature(logits.to(torch::kCUDA), k);
    ASSERT_FALSE(got.is_ok());
    EXPECT_EQ(got.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(got.status().message(), ref.status().message());

    logits = random_logits(4, 300, torch::kFloat32, 42);
    logits[1][0] = kInf;
    logits[0].fill_(-kInf);
    ref = extract_reference(logits, k);
    got = extract_signature(logits.to(torch::kCUDA), k);
    ASSERT_FALSE(got.is_ok());
    EXPECT_EQ(got.status().message(), ref.status().message());
    EXPECT_NE(got.status().message().find("+inf"), std::string::npos);

    logits = random_logits(4, 300, torch::kFloat16, 43);
    logits[3].fill_(-kInf);
    ref = extract_reference(logits, k);
    got = extract_signature(logits.to(torch::kCUDA), k);
    ASSERT_FALSE(got.is_ok());
    EXPECT_EQ(got.status().message(), ref.status().message());
  }
  EXPECT_EQ(extract_signature(torch::zeros({2, 10}, torch::kCUDA), 11).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(ExtractCuda, DeterministicAndReferenceRunsOnCuda) {
  PROV_REQUIRE_KERNEL();
  const torch::Tensor logits = random_logits(8, 151936, torch::kBFloat16, 51).to(torch::kCUDA);
  for (int64_t k : {20, 200}) {
    const Extracted a = must(extract_signature(logits, k));
    const Extracted b = must(extract_signature(logits, k));
    ASSERT_TRUE(a.top_ids.defined() && b.top_ids.defined());
    EXPECT_TRUE(torch::equal(a.top_ids, b.top_ids));
    EXPECT_TRUE(torch::equal(a.top_logprobs, b.top_logprobs));
    EXPECT_TRUE(torch::equal(a.entropy, b.entropy));
    EXPECT_TRUE(torch::equal(a.logsumexp, b.logsumexp));
    // The reference also runs on CUDA tensors, with results on the device.
    const Extracted r = must(extract_reference(logits, k));
    ASSERT_TRUE(r.top_ids.defined());
    EXPECT_TRUE(r.top_ids.is_cuda());
    EXPECT_TRUE(torch::equal(a.top_ids, r.top_ids));
  }
}

}  // namespace
}  // namespace prov::probes
