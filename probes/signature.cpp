#include "probes/signature.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <unordered_set>
#include <utility>

#include "signature.pb.h"

namespace prov::probes {
namespace {

constexpr char kMagic[8] = {'P', 'R', 'O', 'V', 'S', 'I', 'G', '\x01'};
constexpr size_t kMagicSize = sizeof(kMagic);
constexpr uint64_t kMaxFrameBytes = uint64_t{256} << 20;  // compressed payload of one frame
constexpr uint64_t kMaxContentBytes = uint64_t{1} << 30;  // decompressed payload of one frame
constexpr int kZstdLevel = 3;

std::string errno_text(int err) {
  return std::strerror(err);
}

// ---- proto <-> struct -------------------------------------------------------------------------

void set_optional_float(float v, pb::PositionRecord* p, void (pb::PositionRecord::*setter)(float)) {
  if (!std::isnan(v)) (p->*setter)(v);
}

void to_proto(const SignatureHeader& h, pb::SignatureHeader* p) {
  p->set_schema_version(h.schema_version);
  p->set_tool_version(h.tool_version);
  p->set_source(h.source);
  p->set_model_name(h.model_name);
  p->set_model_digest(h.model_digest);
  p->set_endpoint_url(h.endpoint_url);
  p->set_suite_name(h.suite_name);
  p->set_suite_version(h.suite_version);
  p->set_suite_digest(h.suite_digest);
  p->set_num_probes(h.num_probes);
  p->set_top_k(h.top_k);
  p->set_device(h.device);
  p->set_dtype(h.dtype);
  p->set_tokenizer(h.tokenizer);
  p->set_vocab_size(h.vocab_size);
  p->set_engine(h.engine);
  p->set_engine_version(h.engine_version);
  p->set_api(h.api);
  p->set_logprob_mode(h.logprob_mode);
  p->set_top_k_limit(h.top_k_limit);
  p->set_prompt_logprobs(h.prompt_logprobs);
  p->set_token_ids(h.token_ids);
}

SignatureHeader from_proto(const pb::SignatureHeader& p) {
  SignatureHeader h;
  h.schema_version = p.schema_version();
  h.tool_version = p.tool_version();
  h.source = p.source();
  h.model_name = p.model_name();
  h.model_digest = p.model_digest();
  h.endpoint_url = p.endpoint_url();
  h.suite_name = p.suite_name();
  h.suite_version = p.suite_version();
  h.suite_digest = p.suite_digest();
  h.num_probes = p.num_probes();
  h.top_k = p.top_k();
  h.device = p.device();
  h.dtype = p.dtype();
  h.tokenizer = p.tokenizer();
  h.vocab_size = p.vocab_size();
  h.engine = p.engine();
  h.engine_version = p.engine_version();
  h.api = p.api();
  h.logprob_mode = p.logprob_mode();
  h.top_k_limit = p.top_k_limit();
  h.prompt_logprobs = p.prompt_logprobs();
  h.token_ids = p.token_ids();
  return h;
}

void to_proto(const ProbeRecord& r, pb::ProbeRecord* p) {
  p->set_index(r.index);
  p->set_probe_id(r.probe_id);
  p->mutable_prompt_ids()->Add(r.prompt_ids.begin(), r.prompt_ids.end());
  for (const PositionRecord& pos : r.positions) {
    pb::PositionRecord* pp = p->add_positions();
    pp->set_token_id(pos.token_id);
    pp->set_token(pos.token);
    set_optional_float(pos.token_logprob, pp, &pb::PositionRecord::set_token_logprob);
    set_optional_float(pos.entropy, pp, &pb::PositionRecord::set_entropy);
    set_optional_float(pos.logsumexp, pp, &pb::PositionRecord::set_logsumexp);
    pb::TopK* top = pp->mutable_top();
    top->mutable_ids()->Add(pos.top.ids.begin(), pos.top.ids.end());
    for (const std::string& t : pos.top.tokens) top->add_tokens(t);
    top->mutable_logprobs()->Add(pos.top.logprobs.begin(), pos.top.logprobs.end());
    pp->mutable_logprobs()->Add(pos.logprobs.begin(), pos.logprobs.end());
  }
  p->mutable_continuation_ids()->Add(r.continuation_ids.begin(), r.continuation_ids.end());
  p->set_continuation_text(r.continuation_text);
  for (const ScoredText& s : r.scores) {
    pb::ScoredText* ps = p->add_scores();
    ps->set_text(s.text);
    ps->mutable_ids()->Add(s.ids.begin(), s.ids.end());
    for (const std::string& t : s.tokens) ps->add_tokens(t);
    ps->mutable_token_logprobs()->Add(s.token_logprobs.begin(), s.token_logprobs.end());
    ps->set_total_logprob(s.total_logprob);
  }
}

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

ProbeRecord from_proto(const pb::ProbeRecord& p) {
  ProbeRecord r;
  r.index = p.index();
  r.probe_id = p.probe_id();
  r.prompt_ids.assign(p.prompt_ids().begin(), p.prompt_ids().end());
  r.positions.reserve(p.positions_size());
  for (const pb::PositionRecord& pp : p.positions()) {
    PositionRecord pos;
    pos.token_id = pp.token_id();
    pos.token = pp.token();
    pos.token_logprob = pp.has_token_logprob() ? pp.token_logprob() : kNaN;
    pos.entropy = pp.has_entropy() ? pp.entropy() : kNaN;
    pos.logsumexp = pp.has_logsumexp() ? pp.logsumexp() : kNaN;
    pos.top.ids.assign(pp.top().ids().begin(), pp.top().ids().end());
    pos.top.tokens.assign(pp.top().tokens().begin(), pp.top().tokens().end());
    pos.top.logprobs.assign(pp.top().logprobs().begin(), pp.top().logprobs().end());
    pos.logprobs.assign(pp.logprobs().begin(), pp.logprobs().end());
    r.positions.push_back(std::move(pos));
  }
  r.continuation_ids.assign(p.continuation_ids().begin(), p.continuation_ids().end());
  r.continuation_text = p.continuation_text();
  r.scores.reserve(p.scores_size());
  for (const pb::ScoredText& ps : p.scores()) {
    ScoredText s;
    s.text = ps.text();
    s.ids.assign(ps.ids().begin(), ps.ids().end());
    s.tokens.assign(ps.tokens().begin(), ps.tokens().end());
    s.token_logprobs.assign(ps.token_logprobs().begin(), ps.token_logprobs().end());
    s.total_logprob = ps.total_logprob();
    r.scores.push_back(std::move(s));
  }
  return r;
}

// The parallel arrays of a record must line up: ids and tokens are each empty or as long as the
// logprobs they annotate, and top-k logprobs come with ids or tokens (or both). Returns "" when
// they do, else what is wrong.
std::string check_shapes(const ProbeRecord& r) {
  auto fits = [](size_t n, size_t want) { return n == 0 || n == want; };
  for (size_t j = 0; j < r.positions.size(); ++j) {
    const TopK& t = r.positions[j].top;
    if (!fits(t.ids.size(), t.logprobs.size()) || !fits(t.tokens.size(), t.logprobs.size())) {
      return "position " + std::to_string(j) + ": top-k has " + std::to_string(t.ids.size()) +
             " ids and " + std::to_string(t.tokens.size()) + " tokens for " +
             std::to_string(t.logprobs.size()) + " logprobs (each must be 0 or equal)";
    }
    if (!t.logprobs.empty() && t.ids.empty() && t.tokens.empty()) {
      return "position " + std::to_string(j) + ": top-k has " + std::to_string(t.logprobs.size()) +
             " logprobs but neither ids nor tokens";
    }
  }
  for (size_t j = 0; j < r.scores.size(); ++j) {
    const ScoredText& s = r.scores[j];
    if (!fits(s.ids.size(), s.token_logprobs.size()) ||
        !fits(s.tokens.size(), s.token_logprobs.size())) {
      return "score " + std::to_string(j) + ": " + std::to_string(s.ids.size()) + " ids and " +
             std::to_string(s.tokens.size()) + " tokens for " +
             std::to_string(s.token_logprobs.size()) + " token logprobs (each must be 0 or equal)";
    }
  }
  return "";
}

// ---- frames -----------------------------------------------------------------------------------

struct DCtxFree {
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};
struct CCtxFree {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};

// Serialises `msg` into one frame (4-byte little-endian length, then a zstd frame with content
// size and checksum), appended to `*out`.
Status encode_frame(const google::protobuf::MessageLite& msg, std::string* out) {
  const size_t size = msg.ByteSizeLong();
  if (size > kMaxContentBytes) {
    return invalid_argument("signature frame of " + std::to_string(size) +
                            " bytes exceeds the limit of " + std::to_string(kMaxContentBytes));
  }
  std::string raw;
  if (!msg.SerializeToString(&raw)) return internal_error("cannot serialise signature frame");
  std::unique_ptr<ZSTD_CCtx, CCtxFree> cctx(ZSTD_createCCtx());
  if (!cctx) return internal_error("ZSTD_createCCtx failed");
  size_t rc = ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_compressionLevel, kZstdLevel);
  if (!ZSTD_isError(rc)) rc = ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_checksumFlag, 1);
  if (!ZSTD_isError(rc)) rc = ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_contentSizeFlag, 1);
  if (ZSTD_isError(rc)) return internal_error(std::string("zstd: ") + ZSTD_getErrorName(rc));
  const size_t bound = ZSTD_compressBound(raw.size());
  const size_t start = out->size();
  out->resize(start + 4 + bound);
  const size_t n =
      ZSTD_compress2(cctx.get(), out->data() + start + 4, bound, raw.data(), raw.size());
  if (ZSTD_isError(n)) return internal_error(std::string("zstd: ") + ZSTD_getErrorName(n));
  if (n > kMaxFrameBytes) {
    return invalid_argument("compressed signature frame of " + std::to_string(n) +
                            " bytes exceeds the limit of " + std::to_string(kMaxFrameBytes));
  }
  const uint32_t len = static_cast<uint32_t>(n);
  for (int i = 0; i < 4; ++i) (*out)[start + i] = static_cast<char>((len >> (8 * i)) & 0xff);
  out->resize(start + 4 + n);
  return Status::ok();
}

// Decompresses one complete zstd frame. The output grows only as data is actually produced, up to
// the size the frame declares (itself capped), so a hostile size field cannot make us allocate.
// Returns "" on success, else what is wrong.
std::string decompress_frame(ZSTD_DCtx* dctx, const std::string& src, std::string* out) {
  const unsigned long long declared = ZSTD_getFrameContentSize(src.data(), src.size());
  if (declared == ZSTD_CONTENTSIZE_ERROR) return "not a zstd frame";
  if (declared == ZSTD_CONTENTSIZE_UNKNOWN) return "zstd frame does not declare its content size";
  if (declared > kMaxContentBytes) {
    return "zstd frame declares " + std::to_string(declared) + " bytes of content (limit " +
           std::to_string(kMaxContentBytes) + ")";
  }
  const size_t csize = ZSTD_findFrameCompressedSize(src.data(), src.size());
  if (ZSTD_isError(csize)) return std::string("zstd: ") + ZSTD_getErrorName(csize);
  if (csize != src.size()) {
    return "zstd frame is " + std::to_string(csize) + " bytes but the frame length says " +
           std::to_string(src.size());
  }
  ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only);
  out->assign(std::min<uint64_t>(declared, 4 * uint64_t{src.size()} + 4096), '\0');
  ZSTD_inBuffer in{src.data(), src.size(), 0};
  ZSTD_outBuffer o{out->data(), out->size(), 0};
  for (;;) {
    const size_t in_before = in.pos;
    const size_t out_before = o.pos;
    const size_t r = ZSTD_decompressStream(dctx, &o, &in);
    if (ZSTD_isError(r)) return std::string("zstd: ") + ZSTD_getErrorName(r);
    if (r == 0) break;  // frame decoded, checksum verified
    if (o.pos == o.size && o.size < declared) {
      out->resize(std::min<uint64_t>(declared, 2 * uint64_t{out->size()} + 4096));
      o.dst = out->data();
      o.size = out->size();
      continue;
    }
    if (in.pos == in_before && o.pos == out_before) {
      return "zstd frame does not decode to its declared " + std::to_string(declared) + " bytes";
    }
  }
  if (o.pos != declared) {
    return "zstd frame decoded to " + std::to_string(o.pos) + " bytes, declared " +
           std::to_string(declared);
  }
  out->resize(o.pos);
  return "";
}

// Reads exactly n bytes at `offset`. Returns "" on success, else the error.
std::string pread_all(int fd, void* buf, size_t n, uint64_t offset) {
  char* p = static_cast<char*>(buf);
  while (n > 0) {
    const ssize_t r = ::pread(fd, p, n, static_cast<off_t>(offset));
    if (r < 0) {
      if (errno == EINTR) continue;
      return errno_text(errno);
    }
    if (r == 0) return "unexpected end of file (was the file changed while being read?)";
    p += r;
    n -= static_cast<size_t>(r);
    offset += static_cast<uint64_t>(r);
  }
  return "";
}

Status write_all(int fd, const std::string& bytes, const std::string& path) {
  const char* p = bytes.data();
  size_t n = bytes.size();
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return io_error(path + ": write failed: " + errno_text(errno));
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return Status::ok();
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

// read_signature, also reporting where the last complete frame ends.
Result<Signature> read_impl(const std::string& path, bool* truncated_tail, uint64_t* good_end) {
  if (truncated_tail != nullptr) *truncated_tail = false;
  Fd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));  // no blocking on a FIFO
  if (fd.get() < 0) return io_error(path + ": cannot open: " + errno_text(errno));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return io_error(path + ": cannot stat: " + errno_text(errno));
  if (!S_ISREG(st.st_mode)) return io_error(path + ": not a regular file");
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);

  if (file_size == 0) return corrupt(path + ": empty file, not a prov signature file");
  char magic[kMagicSize] = {};
  const size_t head = static_cast<size_t>(std::min<uint64_t>(file_size, kMagicSize));
  if (std::string e = pread_all(fd.get(), magic, head, 0); !e.empty()) {
    return io_error(path + ": cannot read: " + e);
  }
  if (std::memcmp(magic, kMagic, std::min<size_t>(head, kMagicSize - 1)) != 0) {
    return corrupt(path + ": not a prov signature file (bad magic)");
  }
  if (head < kMagicSize) {
    return corrupt(path + ": file ends after " + std::to_string(file_size) +
                   " bytes, inside the magic; no complete header frame");
  }
  if (magic[kMagicSize - 1] != kMagic[kMagicSize - 1]) {
    return unsupported(path + ": signature container version " +
                       std::to_string(static_cast<unsigned char>(magic[kMagicSize - 1])) +
                       " (this prov reads 1) was written by a newer prov; upgrade");
  }

  std::unique_ptr<ZSTD_DCtx, DCtxFree> dctx(ZSTD_createDCtx());
  if (!dctx) return internal_error("ZSTD_createDCtx failed");

  Signature sig;
  bool have_header = false;
  std::unordered_set<uint32_t> seen;  // record indexes read so far
  uint64_t off = kMagicSize;
  std::string payload;
  std::string content;
  while (off < file_size) {
    const std::string where = path + ": " +
                              (have_header ? "record frame " + std::to_string(sig.records.size())
                                           : std::string("header frame")) +
                              " at byte offset " + std::to_string(off);
    const uint64_t left = file_size - off;
    if (left < 4) {
      if (truncated_tail != nullptr) *truncated_tail = true;
      break;
    }
    unsigned char lenb[4];
    if (std::string e = pread_all(fd.get(), lenb, 4, off); !e.empty()) {
      return io_error(where + ": cannot read: " + e);
    }
    const uint64_t len = uint64_t{lenb[0]} | (uint64_t{lenb[1]} << 8) | (uint64_t{lenb[2]} << 16) |
                         (uint64_t{lenb[3]} << 24);
    if (len == 0) return corrupt(where + ": frame length is 0");
    if (len > kMaxFrameBytes) {
      return corrupt(where + ": frame length " + std::to_string(len) + " exceeds the limit of " +
                     std::to_string(kMaxFrameBytes) + " bytes");
    }
    if (len > left - 4) {  // an interrupted write: drop it
      if (truncated_tail != nullptr) *truncated_tail = true;
      break;
    }
    payload.resize(static_cast<size_t>(len));  // len <= bytes actually in the file
    if (std::string e = pread_all(fd.get(), payload.data(), payload.size(), off + 4); !e.empty()) {
      return io_error(where + ": cannot read: " + e);
    }
    if (std::string e = decompress_frame(dctx.get(), payload, &content); !e.empty()) {
      return corrupt(where + ": " + e);
    }
    if (!have_header) {
      pb::SignatureHeader ph;
      if (!ph.ParseFromString(content)) {
        return corrupt(where + ": header is not a valid SignatureHeader protobuf");
      }
      if (ph.schema_version() > kSignatureSchemaVersion) {
        return unsupported(path + ": signature schema version " +
                           std::to_string(ph.schema_version()) + " (this prov reads up to " +
                           std::to_string(kSignatureSchemaVersion) +
                           ") was written by a newer prov; upgrade");
      }
      if (ph.schema_version() == 0) return corrupt(where + ": header has schema version 0");
      sig.header = from_proto(ph);
      have_header = true;
    } else {
      pb::ProbeRecord pr;
      if (!pr.ParseFromString(content)) {
        return corrupt(where + ": not a valid ProbeRecord protobuf");
      }
      if (pr.index() >= sig.header.num_probes) {
        return corrupt(where + ": record index " + std::to_string(pr.index()) +
                       " is not below the header's num_probes " +
                       std::to_string(sig.header.num_probes));
      }
      if (!seen.insert(pr.index()).second) {
        return corrupt(where + ": record index " + std::to_string(pr.index()) +
                       " repeats an earlier record's");
      }
      ProbeRecord rec = from_proto(pr);
      if (std::string e = check_shapes(rec); !e.empty()) return corrupt(where + ": " + e);
      sig.records.push_back(std::move(rec));
    }
    off += 4 + len;
  }
  if (!have_header) {
    return corrupt(path + ": no complete header frame (the file ends at byte " +
                   std::to_string(file_size) + ")");
  }
  if (good_end != nullptr) *good_end = off;
  // A collection resumed after a failure appends the probes it left out after later ones.
  std::stable_sort(sig.records.begin(), sig.records.end(),
                   [](const ProbeRecord& a, const ProbeRecord& b) { return a.index < b.index; });
  return sig;
}

// Which header field differs first (all but tool_version), as "name: file has X, this run has Y";
// "" when none does.
std::string header_difference(const SignatureHeader& file, const SignatureHeader& want) {
  auto q = [](const std::string& s) {
    return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  };
  auto diff = [](const char* name, const std::string& a, const std::string& b) {
    return std::string(name) + ": the file has " + a + ", this run has " + b;
  };
#define PROV_SIG_CMP_STR(f) \
  if (file.f != want.f) return diff(#f, q(file.f), q(want.f))
#define PROV_SIG_CMP_NUM(f) \
  if (file.f != want.f) return diff(#f, std::to_string(file.f), std::to_string(want.f))
  PROV_SIG_CMP_NUM(schema_version);
  PROV_SIG_CMP_STR(source);
  PROV_SIG_CMP_STR(model_name);
  PROV_SIG_CMP_STR(model_digest);
  PROV_SIG_CMP_STR(endpoint_url);
  PROV_SIG_CMP_STR(suite_name);
  PROV_SIG_CMP_STR(suite_version);
  PROV_SIG_CMP_STR(suite_digest);
  PROV_SIG_CMP_NUM(num_probes);
  PROV_SIG_CMP_NUM(top_k);
  PROV_SIG_CMP_STR(device);
  PROV_SIG_CMP_STR(dtype);
  PROV_SIG_CMP_STR(tokenizer);
  PROV_SIG_CMP_NUM(vocab_size);
  PROV_SIG_CMP_STR(engine);
  PROV_SIG_CMP_STR(engine_version);
  PROV_SIG_CMP_STR(api);
  PROV_SIG_CMP_STR(logprob_mode);
  PROV_SIG_CMP_NUM(top_k_limit);
  PROV_SIG_CMP_NUM(prompt_logprobs);
  PROV_SIG_CMP_NUM(token_ids);
#undef PROV_SIG_CMP_STR
#undef PROV_SIG_CMP_NUM
  return "";
}

// JSON helpers: strings with invalid UTF-8 (partial token pieces) get U+FFFD for the bad bytes so
// the result always dumps; non-finite floats become null.
nlohmann::json json_text(const std::string& s) {
  nlohmann::json j = s;
  try {
    (void)j.dump();
    return j;
  } catch (const nlohmann::json::exception&) {
  }
  try {
    return nlohmann::json::parse(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  } catch (const nlohmann::json::exception&) {
    return nullptr;
  }
}

nlohmann::json json_texts(const std::vector<std::string>& v) {
  nlohmann::json a = nlohmann::json::array();
  for (const std::string& s : v) a.push_back(json_text(s));
  return a;
}

nlohmann::json json_float(double v) {
  if (!std::isfinite(v)) return nullptr;
  return v;
}

nlohmann::json json_floats(const std::vector<float>& v) {
  nlohmann::json a = nlohmann::json::array();
  for (float f : v) a.push_back(json_float(f));
  return a;
}

}  // namespace

Result<Signature> read_signature(const std::string& path, bool* truncated_tail) {
  return read_impl(path, truncated_tail, nullptr);
}

SignatureWriter::~SignatureWriter() {
  (void)close();
}

Result<std::unique_ptr<SignatureWriter>> SignatureWriter::create(const std::string& path,
                                                                 const SignatureHeader& header) {
  if (header.schema_version != kSignatureSchemaVersion) {
    return invalid_argument(path + ": cannot write signature schema version " +
                            std::to_string(header.schema_version) + " (this prov writes " +
                            std::to_string(kSignatureSchemaVersion) + ")");
  }
  pb::SignatureHeader ph;
  to_proto(header, &ph);
  std::string bytes(kMagic, kMagicSize);
  PROV_RETURN_IF_ERROR(encode_frame(ph, &bytes).with_context(path));
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644));
  if (fd.get() < 0) return io_error(path + ": cannot create: " + errno_text(errno));
  PROV_RETURN_IF_ERROR(write_all(fd.get(), bytes, path));
  std::unique_ptr<SignatureWriter> w(new SignatureWriter());
  w->fd_ = fd.release();
  w->path_ = path;
  w->num_probes_ = header.num_probes;
  w->end_ = bytes.size();
  return w;
}

Result<std::unique_ptr<SignatureWriter>> SignatureWriter::append(
    const std::string& path, const SignatureHeader& header, std::vector<ProbeRecord>* existing) {
  bool truncated = false;
  uint64_t good_end = 0;
  PROV_ASSIGN_OR_RETURN(Signature sig, read_impl(path, &truncated, &good_end));
  // A version-1 file is completed as it is when only the schema version tells the headers apart
  // (the records have the same format; a run whose version-2 fields are empty is a local one).
  SignatureHeader want = header;
  if (sig.header.schema_version == 1 && header.engine.empty() && header.engine_version.empty() &&
      header.api.empty() && header.logprob_mode.empty() && header.top_k_limit == 0 &&
      !header.prompt_logprobs && !header.token_ids) {
    want.schema_version = 1;
  }
  if (std::string d = header_difference(sig.header, want); !d.empty()) {
    return invalid_argument(path + ": cannot resume: the file's header differs in " + d +
                            " (write a new file instead)");
  }
  Fd fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
  if (fd.get() < 0) return io_error(path + ": cannot open for appending: " + errno_text(errno));
  if (truncated) {
    if (::ftruncate(fd.get(), static_cast<off_t>(good_end)) != 0) {
      return io_error(path + ": cannot drop the truncated last frame (ftruncate to " +
                      std::to_string(good_end) + "): " + errno_text(errno));
    }
  }
  std::unique_ptr<SignatureWriter> w(new SignatureWriter());
  w->fd_ = fd.release();
  w->path_ = path;
  w->num_probes_ = sig.header.num_probes;
  w->end_ = good_end;
  for (const auto& r : sig.records) w->written_.insert(r.index);
  if (existing != nullptr) *existing = std::move(sig.records);
  return w;
}

Status SignatureWriter::write(const ProbeRecord& record) {
  if (fd_ < 0) return invalid_argument(path_ + ": signature writer is closed");
  if (broken_) {
    return io_error(path_ +
                    ": an earlier write failed and could not be undone; the file must be "
                    "resumed with append()");
  }
  if (written_.count(record.index) != 0) {
    return invalid_argument(path_ + ": record index " + std::to_string(record.index) +
                            " is already in the file");
  }
  if (record.index >= num_probes_) {
    return invalid_argument(path_ + ": record index " + std::to_string(record.index) +
                            " is not below num_probes " + std::to_string(num_probes_));
  }
  if (std::string e = check_shapes(record); !e.empty()) {
    return invalid_argument(path_ + ": record " + std::to_string(record.index) + ": " + e);
  }
  pb::ProbeRecord pr;
  to_proto(record, &pr);
  std::string frame;
  PROV_RETURN_IF_ERROR(
      encode_frame(pr, &frame).with_context(path_ + ": record " + std::to_string(record.index)));
  Status st = write_all(fd_, frame, path_);
  if (!st.is_ok()) {
    // Drop whatever part of the frame reached the file, so the next frame follows a good one.
    if (::ftruncate(fd_, static_cast<off_t>(end_)) != 0) broken_ = true;
    return st;
  }
  end_ += frame.size();
  written_.insert(record.index);
  return Status::ok();
}

Status SignatureWriter::close() {
  if (fd_ < 0) return Status::ok();
  const int fd = std::exchange(fd_, -1);
  Status st;
  if (::fsync(fd) != 0) st = io_error(path_ + ": fsync failed: " + errno_text(errno));
  if (::close(fd) != 0 && st.is_ok()) st = io_error(path_ + ": close failed: " + errno_text(errno));
  return st;
}

nlohmann::json signature_to_json(const Signature& sig, bool include_records) {
  using nlohmann::json;
  const SignatureHeader& h = sig.header;
  json header = {
      {"schema_version", h.schema_version},
      {"tool_version", json_text(h.tool_version)},
      {"source", json_text(h.source)},
      {"model_name", json_text(h.model_name)},
      {"model_digest", json_text(h.model_digest)},
      {"endpoint_url", json_text(h.endpoint_url)},
      {"suite_name", json_text(h.suite_name)},
      {"suite_version", json_text(h.suite_version)},
      {"suite_digest", json_text(h.suite_digest)},
      {"num_probes", h.num_probes},
      {"top_k", h.top_k},
      {"device", json_text(h.device)},
      {"dtype", json_text(h.dtype)},
      {"tokenizer", json_text(h.tokenizer)},
      {"vocab_size", h.vocab_size},
      {"engine", json_text(h.engine)},
      {"engine_version", json_text(h.engine_version)},
      {"api", json_text(h.api)},
      {"logprob_mode", json_text(h.logprob_mode)},
      {"top_k_limit", h.top_k_limit},
      {"prompt_logprobs", h.prompt_logprobs},
      {"token_ids", h.token_ids},
  };
  json out = {{"header", std::move(header)},
              {"complete", sig.complete()},
              {"num_records", sig.records.size()}};
  if (!include_records) return out;
  json records = json::array();
  for (const ProbeRecord& r : sig.records) {
    json positions = json::array();
    for (const PositionRecord& p : r.positions) {
      positions.push_back({
          {"token_id", p.token_id},
          {"token", json_text(p.token)},
          {"token_logprob", json_float(p.token_logprob)},
          {"top",
           {{"ids", p.top.ids},
            {"tokens", json_texts(p.top.tokens)},
            {"logprobs", json_floats(p.top.logprobs)}}},
          {"entropy", json_float(p.entropy)},
          {"logsumexp", json_float(p.logsumexp)},
          {"logprobs", json_floats(p.logprobs)},
      });
    }
    json scores = json::array();
    for (const ScoredText& s : r.scores) {
      scores.push_back({
          {"text", json_text(s.text)},
          {"ids", s.ids},
          {"tokens", json_texts(s.tokens)},
          {"token_logprobs", json_floats(s.token_logprobs)},
          {"total_logprob", json_float(s.total_logprob)},
      });
    }
    records.push_back({
        {"index", r.index},
        {"probe_id", json_text(r.probe_id)},
        {"prompt_ids", r.prompt_ids},
        {"positions", std::move(positions)},
        {"continuation_ids", r.continuation_ids},
        {"continuation_text", json_text(r.continuation_text)},
        {"scores", std::move(scores)},
    });
  }
  out["records"] = std::move(records);
  return out;
}

}  // namespace prov::probes
