#include "model/formats/digest.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/sha256.h"
#include "model/formats/model.h"
#include "tests/support/test_support.h"

namespace prov::model {
namespace {

TEST(Digest, ManifestFollowsOmsRules) {
  testing::TempDir dir;
  std::filesystem::create_directories(dir.file("sub"));
  std::filesystem::create_directories(dir.file(".git"));
  testing::write_file(dir.file("b.txt"), std::string("bee"));
  testing::write_file(dir.file("a.txt"), std::string("ay"));
  testing::write_file(dir.file("sub/c.txt"), std::string("sea"));
  testing::write_file(dir.file("Z.txt"), std::string("zed"));
  testing::write_file(dir.file(".git/HEAD"), std::string("ref"));
  testing::write_file(dir.file(".gitattributes"), std::string("*"));
  testing::write_file(dir.file("model.sig"), std::string("sig"));
  auto m = compute_manifest(dir.path(), {2});
  ASSERT_TRUE(m.is_ok()) << m.status().to_string();
  std::vector<std::string> names;
  for (const auto& f : m->files) names.push_back(f.name);
  // Code-point order: uppercase before lowercase; '/' separators.
  EXPECT_EQ(names, (std::vector<std::string>{"Z.txt", "a.txt", "b.txt", "sub/c.txt"}));
  Sha256 all;
  for (const char* s : {"zed", "ay", "bee", "sea"}) {
    Digest d = sha256(std::string(s));
    all.update(d.data(), d.size());
  }
  EXPECT_EQ(m->digest, to_hex(all.finish()));
  EXPECT_EQ(m->files[1].sha256, to_hex(sha256(std::string("ay"))));

  // Any change to any file changes the digest; ignored files do not.
  testing::write_file(dir.file(".git/HEAD"), std::string("other"));
  EXPECT_EQ(compute_manifest(dir.path())->digest, m->digest);
  testing::write_file(dir.file("sub/c.txt"), std::string("Sea"));
  EXPECT_NE(compute_manifest(dir.path())->digest, m->digest);
}

TEST(Digest, SingleFileAndErrors) {
  testing::TempDir dir;
  testing::write_file(dir.file("m.gguf"), std::string("data"));
  auto m = compute_manifest(dir.file("m.gguf"));
  ASSERT_TRUE(m.is_ok());
  ASSERT_EQ(m->files.size(), 1u);
  EXPECT_EQ(m->files[0].name, "m.gguf");
  Digest inner = sha256(std::string("data"));
  EXPECT_EQ(m->digest, to_hex(sha256(inner.data(), inner.size())));
  EXPECT_EQ(compute_manifest(dir.file("none")).status().code(), StatusCode::kNotFound);
  std::filesystem::create_directories(dir.file("empty"));
  EXPECT_EQ(compute_manifest(dir.file("empty")).status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(manifest_excludes(".github/workflow.yml"));
  EXPECT_TRUE(manifest_excludes("x/.gitignore"));
  EXPECT_FALSE(manifest_excludes("gitlab.txt"));
  EXPECT_TRUE(manifest_excludes("model.sigstore.json"));
}

// A device, FIFO or dangling link in a model folder is refused, never left out of the identity
// (model.safetensors linked to /dev/zero used to digest "fine" without its weights).
TEST(Digest, NonRegularFilesAreRefused) {
  testing::TempDir dir;
  namespace fs = std::filesystem;
  fs::create_directories(dir.file("m"));
  testing::write_file(dir.file("m/config.json"), "{}");
  fs::create_symlink("/dev/zero", dir.file("m/model.safetensors"));
  auto r = compute_manifest(dir.file("m"));
  ASSERT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().to_string();
  EXPECT_NE(r.status().message().find("model.safetensors: not a regular file"), std::string::npos)
      << r.status().message();
  fs::remove(dir.file("m/model.safetensors"));
  fs::create_symlink(dir.file("nowhere"), dir.file("m/model.safetensors"));
  r = compute_manifest(dir.file("m"));
  ASSERT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("a link to nothing"), std::string::npos);
  // A link to a regular file is read through (the Hugging Face cache layout).
  fs::remove(dir.file("m/model.safetensors"));
  testing::write_file(dir.file("blob"), "weights");
  fs::create_symlink(dir.file("blob"), dir.file("m/model.safetensors"));
  EXPECT_TRUE(compute_manifest(dir.file("m")).is_ok());
}

TEST(Digest, ShardedFixtureMatchesSha256OfFiles) {
  PROV_REQUIRE_FIXTURES();
  const std::string dir = testing::fixtures_dir() + "/hf/models/llama_sharded_bf16";
  auto m = compute_manifest(dir);
  ASSERT_TRUE(m.is_ok());
  EXPECT_EQ(m->files.size(), 8u);  // config, expected, generation_config, 4 shards, index
  for (const auto& f : m->files) {
    EXPECT_EQ(f.sha256, to_hex(*sha256_file(dir + "/" + f.name))) << f.name;
  }
}

TEST(Digest, TensorDigestsAreLayoutIndependent) {
  PROV_REQUIRE_FIXTURES();
  // The bf16 sharded fixture and its tensors: digests equal sha256 of the stored bytes.
  auto m = open_model(testing::fixtures_dir() + "/hf/models/llama_sharded_bf16");
  ASSERT_TRUE(m.is_ok());
  auto td = compute_tensor_digests(m->checkpoint);
  ASSERT_TRUE(td.is_ok());
  ASSERT_EQ(td->size(), m->checkpoint.tensors.size());
  for (size_t i = 0; i < td->size(); ++i) {
    const auto& t = m->checkpoint.tensors[i];
    EXPECT_EQ((*td)[i].sha256, to_hex(sha256(t.data, t.nbytes))) << t.name;
  }
}

}  // namespace
}  // namespace prov::model
