#include "fingerprint/merge.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "model/formats/model.h"
#include "model/formats/synthetic.h"
#include "tests/support/test_support.h"
#include "zoo/derive.h"

namespace prov::fingerprint {
namespace {

using testing::TempDir;

std::string make_model(const TempDir& dir, const std::string& name, model::DType dtype,
                       uint64_t seed) {
  model::SyntheticSpec s;
  s.seed = seed;
  s.dtype = dtype;
  const std::string path = dir.file(name);
  Status st = model::write_synthetic_model(path, s);
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  return path;
}

MergeFit fit(const std::string& m, const std::string& a, const std::string& b) {
  auto mm = model::open_model(m), ma = model::open_model(a), mb = model::open_model(b);
  EXPECT_TRUE(mm.is_ok() && ma.is_ok() && mb.is_ok());
  auto r = fit_merge(*mm, *ma, *mb);
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  if (!r.is_ok()) return {};
  std::printf("  %-10s = merge(%s, %s)? residual %.3g alpha %.3f: %s\n",
              m.substr(m.rfind('/') + 1).c_str(), a.substr(a.rfind('/') + 1).c_str(),
              b.substr(b.rfind('/') + 1).c_str(), r->relative_residual, r->alpha,
              r->is_merge ? "merge" : "no");
  return *r;
}

// Two "fine-tunes" of one base (independent noise of 5 % of each tensor's spread) and their
// weighted average, stored in fp32 and in bf16.
TEST(Merge, AWeightedAverageIsAMergeAndNothingElseIs) {
  for (model::DType dt : {model::DType::kF32, model::DType::kBF16}) {
    TempDir dir;
    const std::string base = make_model(dir, "base", dt, 1);
    const std::string ft1 = dir.file("ft1"), ft2 = dir.file("ft2"), m = dir.file("merged");
    ASSERT_TRUE(zoo::add_noise(base, ft1, 0.05, 7).is_ok());
    ASSERT_TRUE(zoo::add_noise(base, ft2, 0.05, 8).is_ok());
    ASSERT_TRUE(zoo::merge(ft1, ft2, m, 0.3).is_ok());

    MergeFit yes = fit(m, ft1, ft2);
    EXPECT_TRUE(yes.is_merge) << yes.reason;
    EXPECT_NEAR(yes.alpha, 0.3, 0.01);
    EXPECT_LT(yes.relative_residual, dt == model::DType::kF32 ? 1e-5 : 0.15);
    EXPECT_EQ(yes.null_hypothesis, "least-squares fit (no test statistic)");
    MergeFit swapped = fit(m, ft2, ft1);
    EXPECT_TRUE(swapped.is_merge);
    EXPECT_NEAR(swapped.alpha, 0.7, 0.01);

    // A fine-tune of one parent, and the base between two of its fine-tunes: not merges.
    MergeFit ft = fit(ft1, base, ft2);
    EXPECT_FALSE(ft.is_merge) << ft.reason;
    EXPECT_GT(ft.relative_residual, 0.5);
    MergeFit b = fit(base, ft1, ft2);
    EXPECT_FALSE(b.is_merge) << b.reason;
    EXPECT_GT(b.relative_residual, 0.6);
    // A model outside the segment between two others is not their merge, however well a line
    // through them fits: base = 2 merged(0.5) - ft2 lies on the line through merged and ft2.
    const std::string half = dir.file("half");
    ASSERT_TRUE(zoo::merge(base, ft2, half, 0.5).is_ok());
    MergeFit outside = fit(base, half, ft2);
    EXPECT_FALSE(outside.is_merge) << outside.reason;
    EXPECT_GT(outside.alpha, 1.5);
  }
}

TEST(Merge, ModelsWithNothingInCommonAreRefused) {
  TempDir dir;
  const std::string a = make_model(dir, "a", model::DType::kF32, 1);
  model::SyntheticSpec wide;
  wide.hidden_size = 96;
  wide.intermediate_size = 192;
  wide.vocab_size = 300;
  ASSERT_TRUE(model::write_synthetic_model(dir.file("wide"), wide).is_ok());
  auto ma = model::open_model(a), mw = model::open_model(dir.file("wide"));
  ASSERT_TRUE(ma.is_ok() && mw.is_ok());
  auto r = fit_merge(*mw, *ma, *ma);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("no tensor of equal shape"), std::string::npos);
}

}  // namespace
}  // namespace prov::fingerprint
