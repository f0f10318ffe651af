#include "probes/signature.h"

#include <gtest/gtest.h>
#include <zstd.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "signature.pb.h"
#include "tests/support/test_support.h"

namespace prov::probes {
namespace {

using prov::testing::read_file;
using prov::testing::TempDir;
using prov::testing::write_file;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();
const std::string kMagic("PROVSIG\x01", 8);

SignatureHeader make_header(uint32_t num_probes = 8) {
  SignatureHeader h;
  h.tool_version = "prov 0.3.0";
  h.source = "local";
  h.model_name = "/models/tiny-llama";
  h.model_digest = std::string(64, 'a');
  h.endpoint_url = "";
  h.suite_name = "natural-v1";
  h.suite_version = "1";
  h.suite_digest = std::string(64, 'b');
  h.num_probes = num_probes;
  h.top_k = 5;
  h.device = "cpu";
  h.dtype = "float32";
  h.tokenizer = "hf-bpe:sha256:" + std::string(64, 'c');
  h.vocab_size = 32000;
  return h;
}

// A deterministic record with a little of everything.
ProbeRecord make_record(uint32_t index, int k = 5, int positions = 2) {
  std::mt19937_64 rng(1000 + index);
  std::uniform_int_distribution<int32_t> id(0, 31999);
  std::uniform_real_distribution<float> lp(-12.f, 0.f);
  ProbeRecord r;
  r.index = index;
  r.probe_id = "p" + std::to_string(index);
  for (int i = 0; i < 12; ++i) r.prompt_ids.push_back(id(rng));
  for (int j = 0; j < positions; ++j) {
    PositionRecord p;
    p.token_id = id(rng);
    p.token = "tok" + std::to_string(p.token_id);
    p.token_logprob = lp(rng);
    for (int t = 0; t < k; ++t) {
      p.top.ids.push_back(id(rng));
      p.top.tokens.push_back("t" + std::to_string(t));
      p.top.logprobs.push_back(lp(rng));
    }
    p.entropy = 2.5f + j;
    p.logsumexp = 10.25f - j;
    r.positions.push_back(std::move(p));
  }
  r.continuation_ids = {id(rng), id(rng), id(rng)};
  r.continuation_text = " and then";
  ScoredText s;
  s.text = " sat";
  s.ids = {id(rng)};
  s.tokens = {" sat"};
  s.token_logprobs = {-1.5f};
  s.total_logprob = -1.5;
  r.scores.push_back(s);
  return r;
}

bool same_float(float a, float b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  return std::memcmp(&a, &b, sizeof a) == 0;  // also tells -0 from +0
}

void expect_same_floats(const std::vector<float>& a, const std::vector<float>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(same_float(a[i], b[i])) << i;
}

void expect_same_header(const SignatureHeader& a, const SignatureHeader& b) {
  EXPECT_EQ(a.schema_version, b.schema_version);
  EXPECT_EQ(a.tool_version, b.tool_version);
  EXPECT_EQ(a.source, b.source);
  EXPECT_EQ(a.model_name, b.model_name);
  EXPECT_EQ(a.model_digest, b.model_digest);
  EXPECT_EQ(a.endpoint_url, b.endpoint_url);
  EXPECT_EQ(a.suite_name, b.suite_name);
  EXPECT_EQ(a.suite_version, b.suite_version);
  EXPECT_EQ(a.suite_digest, b.suite_digest);
  EXPECT_EQ(a.num_probes, b.num_probes);
  EXPECT_EQ(a.top_k, b.top_k);
  EXPECT_EQ(a.device, b.device);
  EXPECT_EQ(a.dtype, b.dtype);
  EXPECT_EQ(a.tokenizer, b.tokenizer);
  EXPECT_EQ(a.vocab_size, b.vocab_size);
  EXPECT_EQ(a.engine, b.engine);
  EXPECT_EQ(a.engine_version, b.engine_version);
  EXPECT_EQ(a.api, b.api);
  EXPECT_EQ(a.logprob_mode, b.logprob_mode);
  EXPECT_EQ(a.top_k_limit, b.top_k_limit);
  EXPECT_EQ(a.prompt_logprobs, b.prompt_logprobs);
  EXPECT_EQ(a.token_ids, b.token_ids);
}

void expect_same_record(const ProbeRecord& a, const ProbeRecord& b) {
  EXPECT_EQ(a.index, b.index);
  EXPECT_EQ(a.probe_id, b.probe_id);
  EXPECT_EQ(a.prompt_ids, b.prompt_ids);
  ASSERT_EQ(a.positions.size(), b.positions.size());
  for (size_t j = 0; j < a.positions.size(); ++j) {
    const PositionRecord& p = a.positions[j];
    const PositionRecord& q = b.positions[j];
    EXPECT_EQ(p.token_id, q.token_id);
    EXPECT_EQ(p.token, q.token);
    EXPECT_TRUE(same_float(p.token_logprob, q.token_logprob));
    EXPECT_EQ(p.top.ids, q.top.ids);
    EXPECT_EQ(p.top.tokens, q.top.tokens);
    expect_same_floats(p.top.logprobs, q.top.logprobs);
    EXPECT_TRUE(same_float(p.entropy, q.entropy));
    EXPECT_TRUE(same_float(p.logsumexp, q.logsumexp));
    expect_same_floats(p.logprobs, q.logprobs);
  }
  EXPECT_EQ(a.continuation_ids, b.continuation_ids);
  EXPECT_EQ(a.continuation_text, b.continuation_text);
  ASSERT_EQ(a.scores.size(), b.scores.size());
  for (size_t j = 0; j < a.scores.size(); ++j) {
    EXPECT_EQ(a.scores[j].text, b.scores[j].text);
    EXPECT_EQ(a.scores[j].ids, b.scores[j].ids);
    EXPECT_EQ(a.scores[j].tokens, b.scores[j].tokens);
    expect_same_floats(a.scores[j].token_logprobs, b.scores[j].token_logprobs);
    const double x = a.scores[j].total_logprob, y = b.scores[j].total_logprob;
    EXPECT_TRUE(std::isnan(x) ? std::isnan(y) : std::memcmp(&x, &y, sizeof x) == 0);
  }
}

void write_signature(const std::string& path, const SignatureHeader& h,
                     const std::vector<ProbeRecord>& records) {
  auto w = SignatureWriter::create(path, h);
  ASSERT_TRUE(w.is_ok()) << w.status().to_string();
  for (const ProbeRecord& r : records) ASSERT_TRUE((*w)->write(r).is_ok());
  ASSERT_TRUE((*w)->close().is_ok());
}

// One frame built by hand (what the writer does), to craft files the writer refuses to make.
std::string frame_of(const google::protobuf::MessageLite& m) {
  const std::string raw = m.SerializeAsString();
  std::string z(ZSTD_compressBound(raw.size()), '\0');
  ZSTD_CCtx* c = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1);
  const size_t n = ZSTD_compress2(c, z.data(), z.size(), raw.data(), raw.size());
  ZSTD_freeCCtx(c);
  EXPECT_FALSE(ZSTD_isError(n));
  z.resize(n);
  std::string f(4, '\0');
  for (int i = 0; i < 4; ++i) f[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return f + z;
}

std::string header_frame(uint32_t schema_version, uint32_t num_probes) {
  pb::SignatureHeader h;
  h.set_schema_version(schema_version);
  h.set_num_probes(num_probes);
  return frame_of(h);
}

std::string record_frame(uint32_t index) {
  pb::ProbeRecord r;
  r.set_index(index);
  r.set_probe_id("p" + std::to_string(index));
  return frame_of(r);
}

TEST(Signature, RoundTripsEveryField) {
  TempDir dir;
  const std::string path = dir.file("sig.provsig");
  SignatureHeader h = make_header(10);
  h.model_name = "/modèles/日本語/\xff\xfe";  // not valid UTF-8: stored as bytes
  h.endpoint_url = "https://example.test/v1";

  std::vector<ProbeRecord> recs;
  recs.push_back(ProbeRecord());  // index 0, all empty: an empty protobuf, zero bytes of content

  ProbeRecord r = make_record(2);
  r.positions[0].token = "héllo 🙂";
  r.positions[0].top.tokens[1] = "日本";
  r.positions[0].top.tokens[2] = "\xe2\x96";  // half of "▁": a partial UTF-8 piece
  r.positions[0].top.tokens[3] = std::string("a\0b", 3);
  r.positions[0].top.tokens[4] = "";
  r.positions[0].top.logprobs[4] = -kInf;
  r.positions[0].top.logprobs[3] = -0.0f;
  r.positions[0].token_logprob = 0.0f;  // zero is a value, not "absent"
  r.positions[1].token_logprob = kNaN;
  r.positions[1].entropy = kNaN;
  r.positions[1].logsumexp = kNaN;
  r.positions[0].logprobs = {-0.25f, -1.5f, -kInf, -30.125f};  // a whole distribution
  r.positions[1].token_id = -1;
  r.positions[1].token.clear();
  r.positions[1].top.ids.clear();           // endpoint style: tokens and logprobs only
  r.positions.push_back(PositionRecord());  // all defaults: -1, "", NaN, empty top-k
  r.scores[0].total_logprob = -1.2345678901234567;
  r.scores.push_back(ScoredText{"", {}, {}, {}, 0.0});
  ScoredText no_ids;
  no_ids.text = " ran";
  no_ids.tokens = {" r", "an"};
  no_ids.token_logprobs = {-0.5f, kNaN};
  no_ids.total_logprob = std::nan("");
  r.scores.push_back(no_ids);
  recs.push_back(r);
  recs.push_back(make_record(9, 0, 0));  // the last probe, no positions at all
  write_signature(path, h, recs);

  bool truncated = true;
  auto sig = read_signature(path, &truncated);
  ASSERT_TRUE(sig.is_ok()) << sig.status().to_string();
  EXPECT_FALSE(truncated);
  expect_same_header(sig->header, h);
  ASSERT_EQ(sig->records.size(), recs.size());
  for (size_t i = 0; i < recs.size(); ++i) {
    SCOPED_TRACE(i);
    expect_same_record(sig->records[i], recs[i]);
  }
  EXPECT_TRUE(std::isnan(sig->records[1].scores[2].total_logprob));
  EXPECT_FALSE(sig->complete());

  // The JSON view: NaN and infinities are null, bad UTF-8 is replaced, and it always dumps.
  nlohmann::json j = signature_to_json(*sig);
  std::string dumped;
  ASSERT_NO_THROW(dumped = j.dump());
  EXPECT_EQ(j["num_records"], 3);
  EXPECT_EQ(j["complete"], false);
  EXPECT_EQ(j["header"]["num_probes"], 10);
  EXPECT_EQ(j["header"]["suite_name"], "natural-v1");
  EXPECT_EQ(j["header"]["model_name"], "/modèles/日本語/\xEF\xBF\xBD\xEF\xBF\xBD");
  const nlohmann::json& p0 = j["records"][1]["positions"][0];
  EXPECT_EQ(p0["token"], "héllo 🙂");
  EXPECT_EQ(p0["token_logprob"], 0.0);
  EXPECT_EQ(p0["top"]["tokens"][1], "日本");
  EXPECT_EQ(p0["top"]["tokens"][2], "\xEF\xBF\xBD");
  EXPECT_TRUE(p0["top"]["logprobs"][4].is_null());
  EXPECT_EQ(p0["top"]["ids"].size(), 5u);
  const nlohmann::json& p1 = j["records"][1]["positions"][1];
  EXPECT_TRUE(p1["token_logprob"].is_null());
  EXPECT_TRUE(p1["entropy"].is_null());
  EXPECT_TRUE(p1["logsumexp"].is_null());
  EXPECT_EQ(p1["token_id"], -1);
  EXPECT_TRUE(p1["top"]["ids"].empty());
  EXPECT_EQ(j["records"][1]["scores"][2]["token_logprobs"][1], nullptr);
  EXPECT_EQ(j["records"][1]["scores"][2]["total_logprob"], nullptr);
  EXPECT_EQ(j["records"][1]["positions"][2]["token_id"], -1);
  EXPECT_TRUE(j["records"][1]["positions"][2]["entropy"].is_null());
  EXPECT_TRUE(j["records"][0]["positions"].empty());
  EXPECT_EQ(dumped, signature_to_json(*sig).dump());  // deterministic
  nlohmann::json brief = signature_to_json(*sig, false);
  EXPECT_FALSE(brief.contains("records"));
  EXPECT_EQ(brief["num_records"], 3);
}

TEST(Signature, CompleteWhenEveryProbeHasARecord) {
  TempDir dir;
  const std::string path = dir.file("s");
  std::vector<ProbeRecord> recs;
  for (uint32_t i = 0; i < 4; ++i) recs.push_back(make_record(i));
  write_signature(path, make_header(4), recs);
  auto sig = read_signature(path);
  ASSERT_TRUE(sig.is_ok()) << sig.status().to_string();
  EXPECT_TRUE(sig->complete());
  EXPECT_EQ(signature_to_json(*sig)["complete"], true);
}

TEST(Signature, TruncatedTailAtEveryOffsetIsDropped) {
  TempDir dir;
  const SignatureHeader h = make_header(8);
  std::vector<ProbeRecord> recs = {make_record(0), make_record(1), make_record(2)};
  const std::string two = dir.file("two");
  const std::string three = dir.file("three");
  write_signature(two, h, {recs[0], recs[1]});
  write_signature(three, h, recs);
  const std::string good = read_file(two);
  const std::string full = read_file(three);
  ASSERT_EQ(full.compare(0, good.size(), good), 0);
  ASSERT_GT(full.size(), good.size() + 4);

  const std::string cut = dir.file("cut");
  for (size_t n = good.size(); n < full.size(); ++n) {
    SCOPED_TRACE(n);
    write_file(cut, full.substr(0, n));
    bool truncated = false;
    auto sig = read_signature(cut, &truncated);
    ASSERT_TRUE(sig.is_ok()) << sig.status().to_string();
    EXPECT_EQ(truncated, n > good.size());
    ASSERT_EQ(sig->records.size(), 2u);
    expect_same_record(sig->records[1], recs[1]);
    (void)signature_to_json(*sig).dump();
  }

  // Cut inside the magic or the header frame: no complete header, which is corrupt.
  write_signature(two, h, {});
  const size_t header_end = read_file(two).size();
  for (size_t n = 0; n < header_end; ++n) {
    SCOPED_TRACE(n);
    write_file(cut, full.substr(0, n));
    auto sig = read_signature(cut);
    ASSERT_FALSE(sig.is_ok());
    EXPECT_EQ(sig.status().code(), StatusCode::kCorrupt);
  }
}

TEST(Signature, CorruptMiddleFrameIsCorruptWithItsOffset) {
  TempDir dir;
  const SignatureHeader h = make_header(8);
  std::vector<ProbeRecord> recs = {make_record(0), make_record(1), make_record(2)};
  const std::string one = dir.file("one");
  const std::string two = dir.file("two");
  const std::string three = dir.file("three");
  write_signature(one, h, {recs[0]});
  write_signature(two, h, {recs[0], recs[1]});
  write_signature(three, h, recs);
  const size_t begin = read_file(one).size();  // the middle frame is [begin, end)
  const size_t end = read_file(two).size();
  const std::string full = read_file(three);

  const std::string bad = dir.file("bad");
  std::string bytes = full;
  bytes[(begin + 4 + end) / 2] ^= 0x40;  // inside the compressed payload
  write_file(bad, bytes);
  auto sig = read_signature(bad);
  ASSERT_FALSE(sig.is_ok());
  EXPECT_EQ(sig.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(sig.status().message().find("record frame 1 at byte offset " + std::to_string(begin)),
            std::string::npos)
      << sig.status().message();

  // Every single-byte change of the payload is caught, or (a few bits of the zstd frame header
  // such as the window size) changes nothing that is read.
  int caught = 0;
  for (size_t i = begin + 4; i < end; ++i) {
    SCOPED_TRACE(i);
    bytes = full;
    bytes[i] ^= 0x01;
    write_file(bad, bytes);
    auto s = read_signature(bad);
    if (s.is_ok()) {
      ASSERT_EQ(s->records.size(), 3u);
      expect_same_record(s->records[1], recs[1]);
    } else {
      EXPECT_EQ(s.status().code(), StatusCode::kCorrupt);
      EXPECT_NE(s.status().message().find("offset " + std::to_string(begin)), std::string::npos);
      ++caught;
    }
  }
  std::printf("[signature corruption] %d of %zu single-byte changes of a frame caught\n", caught,
              end - begin - 4);
  EXPECT_GE(caught, static_cast<int>(end - begin - 4) - 4);
}

TEST(Signature, ResumeAfterTruncationEqualsOneGoWrite) {
  TempDir dir;
  const SignatureHeader h = make_header(6);
  std::vector<ProbeRecord> recs;
  for (uint32_t i = 0; i < 6; ++i) recs.push_back(make_record(i));
  const std::string once = dir.file("once");
  write_signature(once, h, recs);

  // An interrupted run: records 0..2 written, record 3 cut half-way.
  const std::string four = dir.file("four");
  write_signature(four, h, {recs[0], recs[1], recs[2], recs[3]});
  const std::string three = dir.file("three");
  write_signature(three, h, {recs[0], recs[1], recs[2]});
  const size_t three_size = read_file(three).size();
  const std::string four_bytes = read_file(four);
  const std::string resumed = dir.file("resumed");
  write_file(resumed, four_bytes.substr(0, (three_size + four_bytes.size()) / 2));

  SignatureHeader rerun = h;
  rerun.tool_version = "prov 0.4.0";  // a newer build may resume
  std::vector<ProbeRecord> existing;
  auto w = SignatureWriter::append(resumed, rerun, &existing);
  ASSERT_TRUE(w.is_ok()) << w.status().to_string();
  ASSERT_EQ(existing.size(), 3u);
  expect_same_record(existing[2], recs[2]);
  // The file was cut back to its last good frame.
  EXPECT_EQ(read_file(resumed).size(), three_size);
  bool truncated = true;
  ASSERT_TRUE(read_signature(resumed, &truncated).is_ok());
  EXPECT_FALSE(truncated);

  Status st = (*w)->write(recs[2]);  // already there
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("index 2 is already in the file"), std::string::npos) << st.message();
  for (size_t i = existing.size(); i < recs.size(); ++i) {
    ASSERT_TRUE((*w)->write(recs[i]).is_ok());
  }
  ASSERT_TRUE((*w)->close().is_ok());
  EXPECT_EQ(read_file(resumed), read_file(once));

  // Appending to a complete, untruncated file adds nothing and leaves it as it was.
  auto w2 = SignatureWriter::append(resumed, h, &existing);
  ASSERT_TRUE(w2.is_ok()) << w2.status().to_string();
  EXPECT_EQ(existing.size(), 6u);
  EXPECT_EQ((*w2)->write(recs[5]).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE((*w2)->close().is_ok());
  EXPECT_EQ(read_file(resumed), read_file(once));
}

TEST(Signature, AppendRefusesADifferentHeaderNamingTheField) {
  TempDir dir;
  const std::string path = dir.file("s");
  const SignatureHeader h = make_header(4);
  write_signature(path, h, {make_record(0)});
  const std::string before = read_file(path);

  SignatureHeader other = h;
  other.model_digest = std::string(64, 'd');
  std::vector<ProbeRecord> existing;
  auto w = SignatureWriter::append(path, other, &existing);
  ASSERT_FALSE(w.is_ok());
  EXPECT_EQ(w.status().code(), StatusCode::kInvalidArgument);
  const std::string& m = w.status().message();
  EXPECT_NE(m.find("model_digest"), std::string::npos) << m;
  EXPECT_NE(m.find(std::string(64, 'a')), std::string::npos) << m;
  EXPECT_NE(m.find(std::string(64, 'd')), std::string::npos) << m;

  other = h;
  other.num_probes = 5;
  other.dtype = "bfloat16";  // num_probes comes first in the header
  w = SignatureWriter::append(path, other, &existing);
  ASSERT_FALSE(w.is_ok());
  EXPECT_NE(w.status().message().find("num_probes: the file has 4, this run has 5"),
            std::string::npos)
      << w.status().message();
  EXPECT_EQ(read_file(path), before);  // a refused append leaves the file alone
}

TEST(Signature, WriterRefusesBadRecords) {
  TempDir dir;
  auto w = SignatureWriter::create(dir.file("s"), make_header(3));
  ASSERT_TRUE(w.is_ok());
  EXPECT_EQ((*w)->write(make_record(3)).code(), StatusCode::kInvalidArgument);  // >= num_probes
  ProbeRecord bad = make_record(1);
  bad.positions[0].top.ids.pop_back();  // 4 ids for 5 logprobs
  Status st = (*w)->write(bad);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("position 0"), std::string::npos) << st.message();
  bad = make_record(1);
  bad.positions[1].top.ids.clear();
  bad.positions[1].top.tokens.clear();  // logprobs of nothing
  EXPECT_EQ((*w)->write(bad).code(), StatusCode::kInvalidArgument);
  bad = make_record(1);
  bad.scores[0].tokens.push_back("x");
  EXPECT_EQ((*w)->write(bad).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE((*w)->write(make_record(1)).is_ok());
  EXPECT_EQ((*w)->write(make_record(1)).code(), StatusCode::kInvalidArgument);  // repeated
  ASSERT_TRUE((*w)->write(make_record(2)).is_ok());
  ASSERT_TRUE((*w)->close().is_ok());
  EXPECT_EQ((*w)->write(make_record(0)).code(), StatusCode::kInvalidArgument);  // closed
  auto sig = read_signature(dir.file("s"));
  ASSERT_TRUE(sig.is_ok()) << sig.status().to_string();
  ASSERT_EQ(sig->records.size(), 2u);  // the refused records left no trace
  // A resumed collection fills the gap before later records; the reader sorts them.
  std::vector<ProbeRecord> existing;
  auto again = SignatureWriter::append(dir.file("s"), make_header(3), &existing);
  ASSERT_TRUE(again.is_ok()) << again.status().to_string();
  EXPECT_EQ((*again)->write(make_record(2)).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE((*again)->write(make_record(0)).is_ok());
  ASSERT_TRUE((*again)->close().is_ok());
  sig = read_signature(dir.file("s"));
  ASSERT_TRUE(sig.is_ok());
  ASSERT_EQ(sig->records.size(), 3u);
  for (uint32_t i = 0; i < 3; ++i) EXPECT_EQ(sig->records[i].index, i);

  SignatureHeader h = make_header(3);
  h.schema_version = kSignatureSchemaVersion + 1;
  EXPECT_EQ(SignatureWriter::create(dir.file("t"), h).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(SignatureWriter::create(dir.file("no/such/dir/s"), make_header()).status().code(),
            StatusCode::kIo);
}

TEST(Signature, EngineFieldsOfSchema2RoundTrip) {
  TempDir dir;
  const std::string path = dir.file("e.sig");
  SignatureHeader h = make_header(3);
  h.source = "endpoint";
  h.model_digest.clear();
  h.engine = "tgi";
  h.engine_version = "2.4.1";
  h.api = "tgi-generate";
  h.logprob_mode = "raw";
  h.top_k_limit = 5;
  h.prompt_logprobs = true;
  h.token_ids = true;
  write_signature(path, h, {make_record(0)});
  auto sig = read_signature(path);
  ASSERT_TRUE(sig.is_ok()) << sig.status().to_string();
  EXPECT_EQ(sig->header.schema_version, 2u);
  expect_same_header(sig->header, h);
  const auto j = signature_to_json(*sig, false)["header"];
  EXPECT_EQ(j["engine"], "tgi");
  EXPECT_EQ(j["top_k_limit"], 5);
  EXPECT_EQ(j["token_ids"], true);
  // Resuming with another engine version is refused, naming the field.
  SignatureHeader other = h;
  other.engine_version = "2.5.0";
  std::vector<ProbeRecord> existing;
  auto w = SignatureWriter::append(path, other, &existing);
  ASSERT_FALSE(w.is_ok());
  EXPECT_NE(w.status().message().find("engine_version"), std::string::npos);
}

TEST(Signature, Schema1FilesReadAndResumeAsTheyAre) {
  TempDir dir;
  const std::string path = dir.file("v1.sig");
  pb::SignatureHeader ph;
  SignatureHeader h = make_header(4);
  h.schema_version = 1;
  ph.set_schema_version(1);
  ph.set_tool_version(h.tool_version);
  ph.set_source(h.source);
  ph.set_model_name(h.model_name);
  ph.set_model_digest(h.model_digest);
  ph.set_suite_name(h.suite_name);
  ph.set_suite_version(h.suite_version);
  ph.set_suite_digest(h.suite_digest);
  ph.set_num_probes(h.num_probes);
  ph.set_top_k(h.top_k);
  ph.set_device(h.device);
  ph.set_dtype(h.dtype);
  ph.set_tokenizer(h.tokenizer);
  ph.set_vocab_size(h.vocab_size);
  write_file(path, kMagic + frame_of(ph) + record_frame(0));
  auto sig = read_signature(path);
  ASSERT_TRUE(sig.is_ok()) << sig.status().to_string();
  EXPECT_EQ(sig->header.schema_version, 1u);
  EXPECT_TRUE(sig->header.engine.empty());
  EXPECT_EQ(sig->header.top_k_limit, 0u);
  EXPECT_FALSE(sig->header.token_ids);
  // A local run of today (schema 2, no engine fields) completes the file, whose header stays.
  std::vector<ProbeRecord> existing;
  auto w = SignatureWriter::append(path, make_header(4), &existing);
  ASSERT_TRUE(w.is_ok()) << w.status().to_string();
  EXPECT_EQ(existing.size(), 1u);
  ASSERT_TRUE((*w)->write(make_record(1)).is_ok());
  ASSERT_TRUE((*w)->close().is_ok());
  sig = read_signature(path);
  ASSERT_TRUE(sig.is_ok());
  EXPECT_EQ(sig->header.schema_version, 1u);
  EXPECT_EQ(sig->records.size(), 2u);
  // An endpoint run of today does not mix into it.
  SignatureHeader e = make_header(4);
  e.engine = "vllm";
  EXPECT_FALSE(SignatureWriter::append(path, e, &existing).is_ok());
}

TEST(Signature, NewerSchemaIsUnsupported) {
  TempDir dir;
  const std::string path = dir.file("s");
  write_file(path, kMagic + header_frame(kSignatureSchemaVersion + 1, 2) + record_frame(0));
  auto sig = read_signature(path);
  ASSERT_FALSE(sig.is_ok());
  EXPECT_EQ(sig.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(sig.status().message().find("newer prov; upgrade"), std::string::npos)
      << sig.status().message();

  write_file(path, std::string("PROVSIG\x02", 8) + header_frame(1, 2));  // newer container
  EXPECT_EQ(read_signature(path).status().code(), StatusCode::kUnsupported);

  write_file(path, kMagic + header_frame(0, 2));  // schema 0: never written by prov
  EXPECT_EQ(read_signature(path).status().code(), StatusCode::kCorrupt);
}

TEST(Signature, RecordsRepeatedOrOutOfRangeAreCorrupt) {
  TempDir dir;
  const std::string path = dir.file("s");
  const std::string head = kMagic + header_frame(1, 4);
  write_file(path, head + record_frame(0) + record_frame(2) + record_frame(3));
  ASSERT_TRUE(read_signature(path).is_ok());

  const std::string bad_order = head + record_frame(0) + record_frame(2) + record_frame(2);
  write_file(path, bad_order);
  auto sig = read_signature(path);
  ASSERT_FALSE(sig.is_ok());
  EXPECT_EQ(sig.status().code(), StatusCode::kCorrupt);
  const size_t third = head.size() + record_frame(0).size() + record_frame(2).size();
  EXPECT_NE(sig.status().message().find("offset " + std::to_string(third)), std::string::npos)
      << sig.status().message();

  // Out of order (a resumed collection filled a gap): read, sorted.
  write_file(path, head + record_frame(1) + record_frame(3) + record_frame(0));
  auto sorted = read_signature(path);
  ASSERT_TRUE(sorted.is_ok()) << sorted.status().to_string();
  ASSERT_EQ(sorted->records.size(), 3u);
  EXPECT_EQ(sorted->records[0].index, 0u);
  EXPECT_EQ(sorted->records[2].index, 3u);
  write_file(path, head + record_frame(1) + record_frame(0) + record_frame(1));
  EXPECT_EQ(read_signature(path).status().code(), StatusCode::kCorrupt);
  write_file(path, head + record_frame(4));  // index == num_probes
  EXPECT_EQ(read_signature(path).status().code(), StatusCode::kCorrupt);

  // A record whose top-k ids do not line up with its logprobs.
  pb::ProbeRecord r;
  r.set_index(0);
  pb::TopK* top = r.add_positions()->mutable_top();
  top->add_ids(1);
  top->add_ids(2);
  top->add_logprobs(-1.f);
  write_file(path, head + frame_of(r));
  EXPECT_EQ(read_signature(path).status().code(), StatusCode::kCorrupt);
}

TEST(Signature, GarbageEmptyAndMissingFiles) {
  TempDir dir;
  const std::string path = dir.file("s");
  write_file(path, std::string());
  auto sig = read_signature(path);
  EXPECT_EQ(sig.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(sig.status().message().find("empty"), std::string::npos);

  std::mt19937_64 rng(7);
  for (int round = 0; round < 50; ++round) {
    std::string junk(1 + rng() % 300, '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    write_file(path, junk);
    EXPECT_EQ(read_signature(path).status().code(), StatusCode::kCorrupt);
    // Right magic, garbage after it: corrupt, or (when the junk's length field runs past the
    // end) a file without a complete header; never a crash.
    write_file(path, kMagic + junk);
    EXPECT_EQ(read_signature(path).status().code(), StatusCode::kCorrupt);
  }

  write_file(path, kMagic);
  EXPECT_EQ(read_signature(path).status().code(), StatusCode::kCorrupt);
  write_file(path, kMagic + std::string("\x05\x00\x00\x00hello", 9));  // not zstd
  EXPECT_EQ(read_signature(path).status().code(), StatusCode::kCorrupt);
  write_file(path, kMagic + std::string(4, '\0'));  // frame length 0
  EXPECT_EQ(read_signature(path).status().code(), StatusCode::kCorrupt);

  EXPECT_EQ(read_signature(dir.file("missing")).status().code(), StatusCode::kIo);
  EXPECT_EQ(read_signature(dir.path()).status().code(), StatusCode::kIo);  // a directory
  std::vector<ProbeRecord> existing;
  EXPECT_EQ(SignatureWriter::append(dir.file("missing"), make_header(), &existing).status().code(),
            StatusCode::kIo);
}

TEST(Signature, HugeFrameLengthIsCorruptNotTruncated) {
  TempDir dir;
  const std::string path = dir.file("s");
  const std::string ff("\xff\xff\xff\xff", 4);
  const std::string head = kMagic + header_frame(1, 4);
  write_file(path, head + record_frame(0) + ff + std::string(64, 'x'));
  bool truncated = false;
  auto sig = read_signature(path, &truncated);
  ASSERT_FALSE(sig.is_ok());
  EXPECT_EQ(sig.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(sig.status().message().find("4294967295"), std::string::npos) << sig.status().message();
  write_file(path, kMagic + ff);
  EXPECT_EQ(read_signature(path).status().code(), StatusCode::kCorrupt);

  // A frame whose zstd header claims far more content than the limit.
  // The first block of a 3 GiB stream (the rest never comes).
  const std::string start(4096, 'a');
  std::vector<char> big(ZSTD_compressBound(start.size()) + 64);
  ZSTD_CCtx* c = ZSTD_createCCtx();
  ZSTD_CCtx_setPledgedSrcSize(c, uint64_t{3} << 30);
  ZSTD_outBuffer out{big.data(), big.size(), 0};
  ZSTD_inBuffer in{start.data(), start.size(), 0};
  const size_t zr = ZSTD_compressStream2(c, &out, &in, ZSTD_e_flush);
  ZSTD_freeCCtx(c);
  ASSERT_FALSE(ZSTD_isError(zr));
  ASSERT_GT(out.pos, 0u);
  ASSERT_EQ(ZSTD_getFrameContentSize(big.data(), out.pos), uint64_t{3} << 30);
  std::string f(4, '\0');
  for (int i = 0; i < 4; ++i) f[i] = static_cast<char>((out.pos >> (8 * i)) & 0xff);
  write_file(path, head + f + std::string(big.data(), out.pos));
  sig = read_signature(path);
  EXPECT_EQ(sig.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(sig.status().message().find("3221225472 bytes of content (limit"), std::string::npos)
      << sig.status().message();
}

TEST(Signature, HighlyCompressibleRecordRoundTrips) {
  // Decompression grows its buffer as content arrives: a record far larger than its frame.
  TempDir dir;
  const std::string path = dir.file("s");
  ProbeRecord r = make_record(0);
  r.prompt_ids.assign(300000, 7);
  r.continuation_text.assign(100000, 'z');
  write_signature(path, make_header(1), {r});
  EXPECT_LT(read_file(path).size(), size_t{20000});
  auto sig = read_signature(path);
  ASSERT_TRUE(sig.is_ok()) << sig.status().to_string();
  ASSERT_EQ(sig->records.size(), 1u);
  expect_same_record(sig->records[0], r);
}

TEST(Signature, SizePerRecordAtTopK20) {
  TempDir dir;
  const std::string path = dir.file("s");
  const uint32_t n = 1000;
  SignatureHeader h = make_header(n);
  h.top_k = 20;
  auto w = SignatureWriter::create(path, h);
  ASSERT_TRUE(w.is_ok());
  const size_t header_bytes = read_file(path).size();
  for (uint32_t i = 0; i < n; ++i) ASSERT_TRUE((*w)->write(make_record(i, 20, 1)).is_ok());
  ASSERT_TRUE((*w)->close().is_ok());
  const size_t total = read_file(path).size();
  auto sig = read_signature(path);
  ASSERT_TRUE(sig.is_ok());
  EXPECT_TRUE(sig->complete());
  std::printf(
      "[signature size] %u records, one position of top-20 each (ids, tokens, logprobs), "
      "12 prompt ids, 3 greedy ids, 1 score: %zu bytes, %.1f bytes/record\n",
      n, total, static_cast<double>(total - header_bytes) / n);
  EXPECT_LT(total, size_t{n} * 1000);
}

}  // namespace
}  // namespace prov::probes
