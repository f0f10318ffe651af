// The fused signature-extraction kernel: logits [N, V] (fp32/bf16/fp16) -> per row the top-k ids
// and log-probabilities, the entropy and the log-sum-exp, reading each row in its own dtype.
//
// One thread block per row. Every thread strides over the row (16-byte vector loads on the aligned
// body, scalar loads on the unaligned head and tail) and keeps
//   - an online softmax accumulator (m, s, t): m the running maximum, s = sum exp(x - m) and
//     t = sum exp(x - m) * (x - m). With lse = m + log s and p_i = exp(x_i - lse):
//       H = -sum p_i (x_i - lse) = lse - sum p_i x_i = lse - (m + t / s) = log s - t / s.
//     Two accumulators merge exactly: with M = max(m1, m2) and a_j = exp(m_j - M),
//       s = a_1 s_1 + a_2 s_2,  t = a_1 (t_1 + (m_1 - M) s_1) + a_2 (t_2 + (m_2 - M) s_2).
//     -inf logits contribute nothing (p = 0); NaN and +inf set a row flag instead.
//   - its share of the top-k candidates (below).
// Ranking: by the logit upcast to fp32, larger first, equal logits by lower id (the same order as
// the log-probabilities x - lse; see extract.cpp for why the logit and not the rounded
// log-probability is ranked). -0.0 and +0.0 are equal.
//
// Two ways of finding the top k:
//   - k <= 32 (kernel extract_small_k): each warp keeps its best k so far as a sorted list with one
//     entry per lane. The row is read in 16-byte vectors (8 bf16/fp16 or 4 fp32 values), several
//     loads in flight per thread, and everything per element is kept off the common path:
//       * the vector's maximum is compared once with the running maximum (a rescale of (s, t) is
//         needed only when it rises, about log(V) times per thread), then each element costs one
//         exp2 (ex2.approx) and a few FMAs;
//       * the same maximum is compared once with a filter: a lower bound on the row's k-th best,
//         seeded from a sample of the first chunk, then the best k-th entry any warp of the
//         block has published (shared memory). Only when some lane's vector may hold a
//         candidate does the warp offer the elements one by one (ballot for the slot, shuffle to
//         shift), which after the first few vectors is rare;
//       * NaN and +inf are not tested per element: they poison the accumulator (s NaN, m +inf),
//         and a row whose statistics come out non-finite is read again with the exact per-element
//         code, which sets the row flags (-inf logits need no such care: their exp2 is 0).
//     Warp 0 then merges the other warps' lists. The block's top k are each in their warp's
//     list (see WarpList), so this is exact.
//   - k > 32 (kernel extract_radix): a block-wide radix select on order-preserving 32-bit keys
//     (4 passes of 8 bits over the row, shared-memory histograms with warp-aggregated atomics)
//     finds the k-th largest key T; a last pass collects the keys > T (fewer than k) and, in id
//     order (block scan per tile of consecutive ids), the lowest-id keys equal to T; a bitonic
//     sort on (key, ~id) orders them. It reads the row up to 6 times (usually from L2); it is
//     the slower path.
//
// Everything is computed in fp32. Determinism: all reductions run in a fixed order, so the same
// input on the same GPU gives the same bits. (Which candidates the warps' lists hold on the way
// depends on timing through the shared filter, but the top k they end with is exact and unique.)
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cfloat>
#include <cstdint>

#include <cub/block/block_scan.cuh>

#include "probes/extract_cuda.h"

namespace prov::probes::cuda_detail {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kNoId = 0x7fffffff;  // sentinel id, ranks below every real element of equal value
constexpr int kSmallK = 32;
// extract_small_k: 16-byte loads issued per thread before any is used (bytes in flight).
constexpr int kUnroll = 4;
// extract_small_k keeps its registers within 64 so that 4 blocks (32 warps) fit on an SM.
constexpr int kSmallKMinBlocks = 4;
constexpr float kLog2e = 1.4426950408889634f;

// ---- element loading ----------------------------------------------------------------------------

struct F32 {
  using Storage = float;
  static constexpr int kVec = 4;
  __device__ static float cvt(float v) { return v; }
  __device__ static void unpack(const uint4& u, float* o) {
    o[0] = __uint_as_float(u.x);
    o[1] = __uint_as_float(u.y);
    o[2] = __uint_as_float(u.z);
    o[3] = __uint_as_float(u.w);
  }
};

// bfloat16 is the top half of an fp32: the upcast is an exact shift.
struct BF16 {
  using Storage = uint16_t;
  static constexpr int kVec = 8;
  __device__ static float cvt(uint16_t b) {
    return __uint_as_float(static_cast<uint32_t>(b) << 16);
  }
  __device__ static void unpack2(uint32_t w, float* o) {
    o[0] = __uint_as_float(w << 16);  // little-endian: the lower address is the low half
    o[1] = __uint_as_float(w & 0xffff0000u);
  }
  __device__ static void unpack(const uint4& u, float* o) {
    unpack2(u.x, o);
    unpack2(u.y, o + 2);
    unpack2(u.z, o + 4);
    unpack2(u.w, o + 6);
  }
};

struct F16 {
  using Storage = uint16_t;
  static constexpr int kVec = 8;
  __device__ static float cvt(uint16_t b) { return __half2float(__ushort_as_half(b)); }
  __device__ static void unpack2(uint32_t w, float* o) {
    o[0] = cvt(static_cast<uint16_t>(w & 0xffffu));
    o[1] = cvt(static_cast<uint16_t>(w >> 16));
  }
  __device__ static void unpack(const uint4& u, float* o) {
    unpack2(u.x, o);
    unpack2(u.y, o + 2);
    unpack2(u.z, o + 4);
    unpack2(u.w, o + 6);
  }
};

// Calls f(x, id, valid) for every element of the row, each exactly once with valid = true, by this
// thread's share. Warp-uniform: all 32 lanes of a warp make the same calls (lanes past the end of
// a stretch pass valid = false, x = -inf), so f may use warp collectives.
template <class E, class F>
__device__ __forceinline__ void for_each_in_row(const typename E::Storage* row, int vocab, F&& f) {
  using S = typename E::Storage;
  const int lane = threadIdx.x & 31;
  const int warp_first = threadIdx.x - lane;
  const uintptr_t addr = reinterpret_cast<uintptr_t>(row);
  int head = static_cast<int>(((16u - (addr & 15u)) & 15u) / sizeof(S));
  if (head > vocab) head = vocab;
  const int nvec = (vocab - head) / E::kVec;
  const int tail = head + nvec * E::kVec;
  for (int b = warp_first; b < head; b += kThreads) {
    const int i = b + lane;
    const bool ok = i < head;
    f(ok ? E::cvt(row[i]) : -INFINITY, i, ok);
  }
  const uint4* vp = reinterpret_cast<const uint4*>(row + head);
  for (int b = warp_first; b < nvec; b += kThreads) {
    const int j = b + lane;
    const bool ok = j < nvec;
    float v[E::kVec];
    if (ok) {
      E::unpack(__ldg(vp + j), v);
    } else {
#pragma unroll
      for (int e = 0; e < E::kVec; ++e) v[e] = -INFINITY;
    }
    const int base = head + j * E::kVec;
#pragma unroll
    for (int e = 0; e < E::kVec; ++e) f(v[e], base + e, ok);
  }
  for (int b = tail + warp_first; b < vocab; b += kThreads) {
    const int i = b + lane;
    const bool ok = i < vocab;
    f(ok ? E::cvt(row[i]) : -INFINITY, i, ok);
  }
}

// ---- softmax statistics -------------------------------------------------------------------------

struct Acc {
  float m;  // running maximum (-inf while empty)
  float s;  // sum exp(x - m); 0 exactly when empty
  float t;  // sum exp(x - m) * (x - m)
};

__device__ __forceinline__ void acc_add(Acc& a, float x) {
  if (x > a.m) {
    if (a.s > 0.f) {
      const float d = a.m - x;
      const float e = expf(d);
      a.t = e * (a.t + d * a.s);
      a.s *= e;
    }
    a.m = x;
    a.s += 1.f;
  } else if (x > -INFINITY) {
    const float d = x - a.m;
    const float e = expf(d);
    a.s += e;
    a.t += e * d;
  }
}

__device__ __forceinline__ Acc acc_merge(const Acc& a, const Acc& b) {
  if (b.s == 0.f) return a;
  if (a.s == 0.f) return b;
  const float mx = fmaxf(a.m, b.m);
  const float da = a.m - mx;
  const float db = b.m - mx;
  const float ea = expf(da);
  const float eb = expf(db);
  return {mx, a.s * ea + b.s * eb, ea * (a.t + da * a.s) + eb * (b.t + db * b.s)};
}

__device__ __forceinline__ int flags_of(float x) {
  return (x != x ? kRowHasNaN : 0) | (x == INFINITY ? kRowHasPosInf : 0);
}

// Block-wide merge of the accumulators and flags; thread 0 writes entropy, logsumexp and the row
// flags. Returns the row's log-sum-exp to every thread.
__device__ float finish_row_stats(Acc acc, int flags, int64_t row, float* entropy, float* lse_out,
                                  int32_t* row_flags) {
  __shared__ Acc s_acc[kWarps];
  __shared__ int s_flags[kWarps];
  __shared__ float s_lse;
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
    Acc o;
    o.m = __shfl_xor_sync(0xffffffffu, acc.m, off);
    o.s = __shfl_xor_sync(0xffffffffu, acc.s, off);
    o.t = __shfl_xor_sync(0xffffffffu, acc.t, off);
    flags |= __shfl_xor_sync(0xffffffffu, flags, off);
    acc = acc_merge(acc, o);
  }
  if (lane == 0) {
    s_acc[warp] = acc;
    s_flags[warp] = flags;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    Acc total = s_acc[0];
    int f = s_flags[0];
    for (int w = 1; w < kWarps; ++w) {
      total = acc_merge(total, s_acc[w]);
      f |= s_flags[w];
    }
    float lse;
    float h;
    if (total.s == 0.f) {  // no element above -inf
      f |= kRowAllNegInf;
      lse = -INFINITY;
      h = 0.f;
    } else {
      const float log_s = logf(total.s);
      lse = total.m + log_s;
      h = log_s - total.t / total.s;
    }
    entropy[row] = h;
    lse_out[row] = lse;
    row_flags[row] = f;
    s_lse = lse;
  }
  __syncthreads();
  return s_lse;
}

// ---- ranking keys -------------------------------------------------------------------------------

// Order-preserving map of a float to uint32 (larger float -> larger key); -0.0 maps like +0.0.
__device__ __forceinline__ uint32_t order_key(float x) {
  if (x == 0.f) x = 0.f;
  const uint32_t b = __float_as_uint(x);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

__device__ __forceinline__ float key_value(uint32_t u) {
  return __uint_as_float((u & 0x80000000u) ? (u & 0x7fffffffu) : ~u);
}

// (key, id) packed so that a larger packed value ranks first: larger key, then lower id.
__device__ __forceinline__ unsigned long long pack(uint32_t key, int id) {
  return (static_cast<unsigned long long>(key) << 32) | (0xffffffffu - static_cast<uint32_t>(id));
}

// ---- small k: one sorted list per warp, one entry per lane
// ----------------------------------------

__device__ __forceinline__ bool better(float a, int ia, float b, int ib) {
  return a > b || (a == b && ia < ib);
}

// A warp's best k (k <= 32) so far: lane j holds the j-th best; lanes >= k hold sentinels. The
// threshold (the k-th best, on every lane) filters elements with one comparison; the few that
// pass are inserted one at a time by the whole warp (a ballot finds the slot, a shuffle shifts).
//
// The filter (flt) is the best known lower bound on the block's k-th best: the list's own
// threshold, or a bound another warp published, or one from a sample (see extract_small_k). Any
// (value, id) that at least k elements of the row rank at or above is a valid bound: an element
// ranked below it has k better ones and is not in the row's top k. (value, kNoId) stands for "the
// value v, any id" (k elements >= v), which lets equal values through. Every element of the
// row's top k passes every valid filter, so filtering by flt instead of thr keeps the result
// exact while the warp's own list may hold fewer than its own best k.
struct WarpList {
  float v = -INFINITY;
  int id = kNoId;
  float thr_v = -INFINITY;
  int thr_id = kNoId;
  float flt_v = -INFINITY;
  int flt_id = kNoId;

  // Warp-uniform. Offers each lane's (x, i) where `cand`.
  __device__ __forceinline__ void offer(float x, int i, bool cand, int k, int lane) {
    cand = cand && better(x, i, flt_v, flt_id);
    unsigned pending = __ballot_sync(0xffffffffu, cand);
    while (pending != 0u) {
      const int src = __ffs(pending) - 1;
      pending &= pending - 1u;
      const float cx = __shfl_sync(0xffffffffu, x, src);
      const int ci = __shfl_sync(0xffffffffu, i, src);
      if (better(cx, ci, flt_v, flt_id)) insert(cx, ci, k, lane);  // flt may have risen
    }
  }

  // Warp-uniform; (cx, ci) the same on every lane.
  __device__ __forceinline__ void insert(float cx, int ci, int k, int lane) {
    if (!better(cx, ci, thr_v, thr_id)) return;  // the threshold rose since the ballot
    // The entries worse than the candidate are a suffix [pos, k) of the sorted list.
    const unsigned worse = __ballot_sync(0xffffffffu, lane < k && better(cx, ci, v, id));
    const int pos = __ffs(worse) - 1;
    const float up_v = __shfl_up_sync(0xffffffffu, v, 1);
    const int up_id = __shfl_up_sync(0xffffffffu, id, 1);
    if (lane > pos && lane < k) {
      v = up_v;
      id = up_id;
    }
    if (lane == pos) {
      v = cx;
      id = ci;
    }
    thr_v = __shfl_sync(0xffffffffu, v, k - 1);
    thr_id = __shfl_sync(0xffffffffu, id, k - 1);
    raise_filter(thr_v, thr_id);
  }

  // Uniform: (fv, fid) a valid bound (above).
  __device__ __forceinline__ void raise_filter(float fv, int fid) {
    if (better(fv, fid, flt_v, flt_id)) {
      flt_v = fv;
      flt_id = fid;
    }
  }

  // Warp-uniform: raises the filter to the block's shared bound, a ranking key (0: none yet).
  // Other warps may be updating it: lane 0's read is broadcast so that all lanes agree.
  __device__ __forceinline__ void read_shared_filter(const unsigned long long* key) {
    unsigned long long c = *reinterpret_cast<const volatile unsigned long long*>(key);
    c = __shfl_sync(0xffffffffu, c, 0);
    if (c != 0ull) {
      raise_filter(key_value(static_cast<uint32_t>(c >> 32)),
                   static_cast<int>(0xffffffffu - static_cast<uint32_t>(c & 0xffffffffu)));
    }
  }
  // Lane 0 publishes the warp's filter to the block (a bound for one warp is one for all).
  __device__ __forceinline__ void publish_filter(unsigned long long* key, int lane) const {
    if (lane == 0 && flt_v > -INFINITY) atomicMax(key, pack(order_key(flt_v), flt_id));
  }
};

// ---- small k: the fast path --------------------------------------------------------------------

// 2^x, flushing denormal results to zero (they are below 2^-126 of the running maximum's weight
// and cannot change a sum that holds a 1). One MUFU instruction; max relative error ~2^-22.
__device__ __forceinline__ float exp2_ftz(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

// Streaming 16-byte load: read-only path, not kept in L1 (each byte is read once).
__device__ __forceinline__ uint4 load_stream(const uint4* p) {
  uint4 u;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(u.x), "=r"(u.y), "=r"(u.z), "=r"(u.w)
               : "l"(p));
  return u;
}

// The fast accumulator starts at m = -FLT_MAX (not -inf) with s = 0, so that -inf logits give
// exp2(-inf) = 0 instead of a NaN from -inf - (-inf); s == 0 still means "empty" to acc_merge.
__device__ __forceinline__ Acc fast_acc_empty() {
  return {-FLT_MAX, 0.f, 0.f};
}

// Moves the accumulator's reference point up to m_new (rare: the maximum rose). A NaN m_new (a
// vector of NaNs only) poisons s, which sends the row to the exact pass.
__device__ __noinline__ Acc fast_acc_raise(Acc a, float m_new) {
  if (m_new != m_new) {
    a.s = NAN;
    return a;
  }
  if (a.s > 0.f) {
    const float d = a.m - m_new;
    const float e = expf(d);
    a.t = e * (a.t + d * a.s);
    a.s *= e;
  }
  a.m = m_new;
  return a;
}

// Adds n values to the fast accumulator; returns their maximum (fmaxf: NaNs ignored).
//   NaN x:  exp2(NaN) = NaN poisons s.            +inf x: m becomes +inf.
//   -inf x: exp2(-inf) = 0; t adds 0 * max(d, -200) = 0 rather than 0 * -inf = NaN.
// Both poisoned cases are caught by row_stats_clean().
template <int N>
__device__ __forceinline__ float fast_acc_add(Acc& a, const float (&x)[N]) {
  float vmax = x[0];
#pragma unroll
  for (int e = 1; e < N; ++e) vmax = fmaxf(vmax, x[e]);
  if (!(vmax <= a.m)) a = fast_acc_raise(a, vmax);
  const float m = a.m;
#pragma unroll
  for (int e = 0; e < N; ++e) {
    const float d = x[e] - m;
    const float p = exp2_ftz(d * kLog2e);
    a.s += p;
    a.t = fmaf(p, fmaxf(d, -200.f), a.t);  // exp(-200) is 0 in fp32: the clamp changes nothing else
  }
  return vmax;
}

// Block-wide merge of the accumulators (and flags); every thread gets the total.
__device__ Acc block_merge(Acc acc, int& flags) {
  __shared__ Acc s_acc[kWarps];
  __shared__ int s_flags[kWarps];
  __shared__ Acc s_total;
  __shared__ int s_total_flags;
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
    Acc o;
    o.m = __shfl_xor_sync(0xffffffffu, acc.m, off);
    o.s = __shfl_xor_sync(0xffffffffu, acc.s, off);
    o.t = __shfl_xor_sync(0xffffffffu, acc.t, off);
    flags |= __shfl_xor_sync(0xffffffffu, flags, off);
    acc = acc_merge(acc, o);
  }
  if (lane == 0) {
    s_acc[warp] = acc;
    s_flags[warp] = flags;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    Acc total = s_acc[0];
    int f = s_flags[0];
    for (int w = 1; w < kWarps; ++w) {
      total = acc_merge(total, s_acc[w]);
      f |= s_flags[w];
    }
    s_total = total;
    s_total_flags = f;
  }
  __syncthreads();
  const Acc total = s_total;
  flags = s_total_flags;
  __syncthreads();  // s_total may be written again by a later call
  return total;
}

// True when the fast statistics of a row are those of a valid distribution: no NaN, no +inf and
// at least one logit above -inf (then s >= 1, the maximum's own term).
__device__ __forceinline__ bool row_stats_clean(const Acc& total) {
  return total.s >= 1.f && total.s <= FLT_MAX && total.m <= FLT_MAX && fabsf(total.t) <= FLT_MAX;
}

// Writes entropy, log-sum-exp and flags of a merged accumulator (thread 0); returns the lse.
__device__ __forceinline__ float write_row_stats(const Acc& total, int flags, int64_t row,
                                                 float* entropy, float* lse_out,
                                                 int32_t* row_flags) {
  float lse;
  float h;
  if (total.s == 0.f) {  // no element above -inf
    flags |= kRowAllNegInf;
    lse = -INFINITY;
    h = 0.f;
  } else {
    const float log_s = logf(total.s);
    lse = total.m + log_s;
    h = log_s - total.t / total.s;
  }
  if (threadIdx.x == 0) {
    entropy[row] = h;
    lse_out[row] = lse;
    row_flags[row] = flags;
  }
  return lse;
}

// The warp offers the elements of one vector to its list one by one (warp-uniform; `ok` false:
// this lane has no vector). Kept out of line: it runs for a small fraction of the vectors.
template <class E>
__device__ __noinline__ WarpList offer_vector(WarpList list, uint4 raw, int base, bool ok, int k,
                                              int lane, unsigned long long* block_filter) {
  list.read_shared_filter(block_filter);
  float v[E::kVec];
  E::unpack(raw, v);
#pragma unroll
  for (int e = 0; e < E::kVec; ++e) list.offer(v[e], base + e, ok, k, lane);
  list.publish_filter(block_filter, lane);
  return list;
}

// One 16-byte vector of a row: statistics, then the top-k filter. Warp-uniform.
template <class E>
__device__ __forceinline__ void small_k_vector(const uint4& raw, int base, bool ok, Acc& acc,
                                               WarpList& list, int k, int lane,
                                               unsigned long long* block_filter) {
  float v[E::kVec];
  E::unpack(raw, v);
  if (!ok) {
#pragma unroll
    for (int e = 0; e < E::kVec; ++e) v[e] = -INFINITY;
  }
  const float vmax = fast_acc_add(acc, v);
  // Ties with the k-th entry may still win on the id: >=, not >.
  if (__any_sync(0xffffffffu, vmax >= list.flt_v)) {
    list = offer_vector<E>(list, raw, base, ok, k, lane, block_filter);
  }
}

// One element (the unaligned head and tail of a row). Warp-uniform.
template <class E>
__device__ __forceinline__ void small_k_scalar(const typename E::Storage* row, int i, bool ok,
                                               Acc& acc, WarpList& list, int k, int lane) {
  const float x[1] = {ok ? E::cvt(row[i]) : -INFINITY};
  fast_acc_add(acc, x);
  list.offer(x[0], i, ok, k, lane);
}

template <class E>
__global__ void __launch_bounds__(kThreads, kSmallKMinBlocks)
    extract_small_k(const typename E::Storage* __restrict__ logits, int vocab, int k,
                    int64_t* __restrict__ top_ids, float* __restrict__ top_logprobs,
                    float* __restrict__ entropy, float* __restrict__ lse_out,
                    int32_t* __restrict__ row_flags) {
  using S = typename E::Storage;
  const int64_t row = blockIdx.x;
  const S* x_row = logits + static_cast<size_t>(row) * vocab;
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int warp_first = threadIdx.x - lane;

  // The row as: an unaligned head (< 16 bytes), nvec aligned 16-byte vectors, a tail.
  const uintptr_t addr = reinterpret_cast<uintptr_t>(x_row);
  int head = static_cast<int>(((16u - (addr & 15u)) & 15u) / sizeof(S));
  if (head > vocab) head = vocab;
  const int nvec = (vocab - head) / E::kVec;
  const int tail = head + nvec * E::kVec;
  const uint4* vp = reinterpret_cast<const uint4*>(x_row + head);

  // The block-wide filter bound (a ranking key, larger = better; 0 = none yet).
  __shared__ unsigned long long s_filter;
  if (threadIdx.x == 0) s_filter = 0ull;
  __syncthreads();

  Acc acc = fast_acc_empty();
  WarpList list;
  // Seed the filter before any element is offered, so that the first vectors (when the list is
  // still empty and nearly everything would be inserted) cost few insertions: the k-th largest of
  // the 32 lanes' maxima over their first chunk is a valid bound (k elements are >= it). The
  // chunk is read again below, from cache.
  if (nvec >= kUnroll * kThreads) {
    float lane_max = -INFINITY;
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      float v[E::kVec];
      E::unpack(__ldg(vp + u * kThreads + threadIdx.x), v);
#pragma unroll
      for (int e = 0; e < E::kVec; ++e) lane_max = fmaxf(lane_max, v[e]);
    }
    int n_gt = 0;  // lanes with a larger maximum
    int n_ge = 0;  // lanes with a maximum at least as large
    for (int src = 0; src < 32; ++src) {
      const float o = __shfl_sync(0xffffffffu, lane_max, src);
      n_gt += o > lane_max ? 1 : 0;
      n_ge += o >= lane_max ? 1 : 0;
    }
    // The lanes holding the k-th largest value (none if NaNs confuse the order: no seed then).
    const unsigned holders = __ballot_sync(0xffffffffu, n_gt < k && k <= n_ge);
    if (holders != 0u) {
      list.raise_filter(__shfl_sync(0xffffffffu, lane_max, __ffs(holders) - 1), kNoId);
      list.publish_filter(&s_filter, lane);
    }
  }
  for (int b = warp_first; b < head; b += kThreads) {
    small_k_scalar<E>(x_row, b + lane, b + lane < head, acc, list, k, lane);
  }
  // Body: chunks of kUnroll * kThreads vectors; each thread issues its kUnroll loads (coalesced:
  // consecutive threads, consecutive vectors) before using any of them.
  int j0 = 0;
  for (; j0 + kUnroll * kThreads <= nvec; j0 += kUnroll * kThreads) {
    list.read_shared_filter(&s_filter);  // what the other warps found so far
    uint4 raw[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) raw[u] = load_stream(vp + j0 + u * kThreads + threadIdx.x);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int j = j0 + u * kThreads + threadIdx.x;
      small_k_vector<E>(raw[u], head + j * E::kVec, true, acc, list, k, lane, &s_filter);
    }
  }
  // The last partial chunk, one vector per thread at a time (whole warps, lanes past the end idle).
  for (int b = j0 + warp_first; b < nvec; b += kThreads) {
    const int j = b + lane;
    const bool ok = j < nvec;
    const uint4 raw = ok ? load_stream(vp + j) : make_uint4(0u, 0u, 0u, 0u);
    small_k_vector<E>(raw, head + j * E::kVec, ok, acc, list, k, lane, &s_filter);
  }
  for (int b = tail + warp_first; b < vocab; b += kThreads) {
    small_k_scalar<E>(x_row, b + lane, b + lane < vocab, acc, list, k, lane);
  }

  int flags = 0;
  Acc total = block_merge(acc, flags);
  if (!row_stats_clean(total)) {
    // NaN, +inf, -inf at a thread's start, or no finite logit: redo the statistics exactly,
    // element by element, with the row flags (block-uniform branch).
    Acc exact{-INFINITY, 0.f, 0.f};
    for_each_in_row<E>(x_row, vocab, [&](float x, int, bool ok) {
      if (ok) {
        flags |= flags_of(x);
        acc_add(exact, x);
      }
    });
    total = block_merge(exact, flags);
  }
  const float lse = write_row_stats(total, flags, row, entropy, lse_out, row_flags);

  // Warp 0 merges the other warps' sorted lists into its own. (A ranking of every entry against
  // all others in parallel measured slower: 8k shared-memory reads per entry.)
  __shared__ float s_v[kWarps][kSmallK];
  __shared__ int s_id[kWarps][kSmallK];
  s_v[warp][lane] = list.v;
  s_id[warp][lane] = list.id;
  __syncthreads();
  if (warp == 0) {
    for (int w = 1; w < kWarps; ++w) {
      for (int j = 0; j < k; ++j) {
        const float cx = s_v[w][j];
        const int ci = s_id[w][j];
        if (!better(cx, ci, list.thr_v, list.thr_id)) break;  // the rest of list w is worse
        list.insert(cx, ci, k, lane);
      }
    }
    if (lane < k) {
      top_ids[row * k + lane] = list.id;
      top_logprobs[row * k + lane] = list.v - lse;
    }
  }
}

// ---- any k: radix select ------------------------------------------------------------------------

// Warp-uniform histogram update (bin -1: nothing to count). Lanes with the same bin are counted by
// one atomic, which matters because logits crowd into a few bins of the top byte.
__device__ __forceinline__ void hist_add(unsigned int* hist, int bin) {
  const unsigned peers = __match_any_sync(0xffffffffu, bin);
  if (bin >= 0 && static_cast<int>(threadIdx.x & 31) == __ffs(peers) - 1) {
    atomicAdd(&hist[bin], static_cast<unsigned>(__popc(peers)));
  }
}

template <class E>
__global__ void __launch_bounds__(kThreads)
    extract_radix(const typename E::Storage* __restrict__ logits, int vocab, int k,
                  int64_t* __restrict__ top_ids, float* __restrict__ top_logprobs,
                  float* __restrict__ entropy, float* __restrict__ lse_out,
                  int32_t* __restrict__ row_flags) {
  using Scan = cub::BlockScan<int, kThreads>;
  __shared__ unsigned int hist[256];
  __shared__ unsigned long long cand[kMaxK];
  __shared__ typename Scan::TempStorage scan_tmp;
  __shared__ uint32_t s_prefix;
  __shared__ int s_rank;  // rank (1-based) of the wanted key among the keys matching the prefix
  __shared__ int s_n_gt;
  __shared__ int s_n_eq;
  __shared__ bool s_done;

  const int64_t row = blockIdx.x;
  const typename E::Storage* x_row = logits + static_cast<size_t>(row) * vocab;
  const int tid = threadIdx.x;

  for (int i = tid; i < 256; i += kThreads) hist[i] = 0;
  if (tid == 0) {
    s_prefix = 0;
    s_rank = k;
    s_n_gt = 0;
    s_n_eq = 0;
  }
  __syncthreads();

  // Pass 1: statistics and the histogram of the top byte.
  Acc acc{-INFINITY, 0.f, 0.f};
  int flags = 0;
  for_each_in_row<E>(x_row, vocab, [&](float x, int, bool ok) {
    if (ok) {
      flags |= flags_of(x);
      acc_add(acc, x);
    }
    hist_add(hist, ok ? static_cast<int>(order_key(x) >> 24) : -1);
  });
  const float lse = finish_row_stats(acc, flags, row, entropy, lse_out, row_flags);

  // Passes 1-4: pick one byte of the k-th largest key at a time.
  uint32_t mask = 0;
  for (int shift = 24; shift >= 0; shift -= 8) {
    if (shift != 24) {
      const uint32_t prefix = s_prefix;
      for (int i = tid; i < 256; i += kThreads) hist[i] = 0;
      __syncthreads();
      for_each_in_row<E>(x_row, vocab, [&](float x, int, bool ok) {
        const uint32_t u = order_key(x);
        const bool match = ok && (u & mask) == prefix;
        hist_add(hist, match ? static_cast<int>((u >> shift) & 255u) : -1);
      });
    }
    __syncthreads();
    if (tid == 0) {
      int rank = s_rank;
      int d = 255;
      for (; d > 0; --d) {
        if (static_cast<int>(hist[d]) >= rank) break;
        rank -= static_cast<int>(hist[d]);
      }
      s_prefix |= static_cast<uint32_t>(d) << shift;
      s_rank = rank;
    }
    __syncthreads();
    mask |= 0xffu << shift;
  }
  const uint32_t threshold = s_prefix;
  const int n_eq_wanted = s_rank;    // the lowest-id keys equal to the threshold to take
  const int n_gt = k - n_eq_wanted;  // keys above the threshold: all taken

  // Collect: keys above the threshold in any order, keys equal to it in id order.
  for (int tile = 0; tile < vocab; tile += kThreads) {
    const int i = tile + tid;
    uint32_t u = 0;
    int eq = 0;
    if (i < vocab) {
      u = order_key(E::cvt(x_row[i]));
      if (u > threshold) {
        const int p = atomicAdd(&s_n_gt, 1);
        if (p < n_gt) cand[p] = pack(u, i);
      }
      eq = (u == threshold) ? 1 : 0;
    }
    int pos;
    int total;
    Scan(scan_tmp).ExclusiveSum(eq, pos, total);
    const int base = s_n_eq;
    if (eq && base + pos < n_eq_wanted) cand[n_gt + base + pos] = pack(u, i);
    __syncthreads();  // this tile's atomics and reads of s_n_eq are done
    if (tid == 0) {
      s_n_eq = base + total;
      s_done = s_n_eq >= n_eq_wanted && s_n_gt >= n_gt;
    }
    __syncthreads();
    // Uniform: s_done is next written after the next tile's first barrier (s_n_gt itself is not
    // read here, as faster threads may already be adding to it for the next tile).
    if (s_done) break;
  }

  // Bitonic sort, descending, of the k candidates padded with zeros (below every real entry).
  int padded = 1;
  while (padded < k) padded <<= 1;
  for (int i = k + tid; i < padded; i += kThreads) cand[i] = 0ull;
  for (int size = 2; size <= padded; size <<= 1) {
    for (int stride = size >> 1; stride > 0; stride >>= 1) {
      __syncthreads();
      for (int i = tid; i < padded; i += kThreads) {
        const int j = i ^ stride;
        if (j > i) {
          const unsigned long long a = cand[i];
          const unsigned long long b = cand[j];
          const bool descending = (i & size) == 0;
          if (descending ? (a < b) : (a > b)) {
            cand[i] = b;
            cand[j] = a;
          }
        }
      }
    }
  }
  __syncthreads();
  for (int r = tid; r < k; r += kThreads) {
    const unsigned long long c = cand[r];
    const uint32_t u = static_cast<uint32_t>(c >> 32);
    const int id = static_cast<int>(0xffffffffu - static_cast<uint32_t>(c & 0xffffffffu));
    top_ids[row * k + r] = id;
    top_logprobs[row * k + r] = key_value(u) - lse;
  }
}

// ---- launch -------------------------------------------------------------------------------------

template <class E>
const char* launch_typed(const void* logits, int64_t n_rows, int64_t vocab, int64_t k,
                         int64_t* top_ids, float* top_logprobs, float* entropy, float* lse,
                         int32_t* row_flags, cudaStream_t stream) {
  const auto* x = static_cast<const typename E::Storage*>(logits);
  const dim3 grid(static_cast<unsigned>(n_rows));
  const dim3 block(kThreads);
  const int v = static_cast<int>(vocab);
  const int kk = static_cast<int>(k);
#define PROV_EXTRACT_ARGS x, v, kk, top_ids, top_logprobs, entropy, lse, row_flags
  if (kk <= kSmallK) {
    extract_small_k<E><<<grid, block, 0, stream>>>(PROV_EXTRACT_ARGS);
  } else {
    extract_radix<E><<<grid, block, 0, stream>>>(PROV_EXTRACT_ARGS);
  }
#undef PROV_EXTRACT_ARGS
  const cudaError_t err = cudaGetLastError();
  return err == cudaSuccess ? nullptr : cudaGetErrorString(err);
}

}  // namespace

const char* launch_extract(const void* logits, LogitsDtype dtype, int64_t n_rows, int64_t vocab,
                           int64_t k, int64_t* top_ids, float* top_logprobs, float* entropy,
                           float* logsumexp, int32_t* row_flags, void* stream) {
  if (n_rows < 0 || n_rows > 0x7fffffff || vocab < 1 || vocab >= kNoId || k < 1 || k > vocab ||
      k > kMaxK) {
    return "launch_extract: shape out of range";
  }
  if (n_rows == 0) return nullptr;
  auto st = static_cast<cudaStream_t>(stream);
  switch (dtype) {
    case LogitsDtype::kFloat32:
      return launch_typed<F32>(logits, n_rows, vocab, k, top_ids, top_logprobs, entropy, logsumexp,
                               row_flags, st);
    case LogitsDtype::kBFloat16:
      return launch_typed<BF16>(logits, n_rows, vocab, k, top_ids, top_logprobs, entropy, logsumexp,
                                row_flags, st);
    case LogitsDtype::kFloat16:
      return launch_typed<F16>(logits, n_rows, vocab, k, top_ids, top_logprobs, entropy, logsumexp,
                               row_flags, st);
  }
  return "launch_extract: unknown dtype";
}

}  // namespace prov::probes::cuda_detail
