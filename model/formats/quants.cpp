// ggml block quantisation: dequantizers that reproduce ggml's reference arithmetic, and simple
// reference quantizers. Block layouts are described in docs/formats/gguf.md.
#include "model/formats/quants.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace prov::model {

namespace {

constexpr int kQK = 32;    // elements per legacy block
constexpr int kQKK = 256;  // elements per k-quant super-block

float load_fp16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return fp16_to_float(h);
}

void store_fp16(uint8_t* p, float f) {
  const uint16_t h = float_to_fp16(f);
  std::memcpy(p, &h, 2);
}

// ---------------------------------------------------------------------------------------------
// Dequantisation. Each function reads one block at `b` and writes its elements to `y`. The
// float arithmetic (which products are formed, in which order) is ggml's, so results are
// bit-identical to its reference dequantizers.

// Q4_0: fp16 d | 16 bytes: element j (j < 16) is the low nibble of byte j, element j + 16 the
// high nibble. x = (q - 8) * d.
void dequant_q4_0(const uint8_t* b, float* y) {
  const float d = load_fp16(b);
  const uint8_t* qs = b + 2;
  for (int j = 0; j < kQK / 2; ++j) {
    y[j] = static_cast<float>((qs[j] & 0x0f) - 8) * d;
    y[j + kQK / 2] = static_cast<float>((qs[j] >> 4) - 8) * d;
  }
}

// Q4_1: fp16 d | fp16 m | 16 bytes of nibbles (as Q4_0). x = q * d + m.
void dequant_q4_1(const uint8_t* b, float* y) {
  const float d = load_fp16(b);
  const float m = load_fp16(b + 2);
  const uint8_t* qs = b + 4;
  for (int j = 0; j < kQK / 2; ++j) {
    y[j] = static_cast<float>(qs[j] & 0x0f) * d + m;
    y[j + kQK / 2] = static_cast<float>(qs[j] >> 4) * d + m;
  }
}

// Fifth bit of element j of a Q5 block: bit j of the little-endian u32 qh.
inline int q5_high(uint32_t qh, int j) {
  return static_cast<int>((qh >> j) & 1u) << 4;
}

// Q5_0: fp16 d | u32 qh | 16 bytes of nibbles. x = (q - 16) * d, q = nibble | high bit << 4.
void dequant_q5_0(const uint8_t* b, float* y) {
  const float d = load_fp16(b);
  uint32_t qh;
  std::memcpy(&qh, b + 2, 4);
  const uint8_t* qs = b + 6;
  for (int j = 0; j < kQK / 2; ++j) {
    const int q0 = ((qs[j] & 0x0f) | q5_high(qh, j)) - 16;
    const int q1 = ((qs[j] >> 4) | q5_high(qh, j + kQK / 2)) - 16;
    y[j] = static_cast<float>(q0) * d;
    y[j + kQK / 2] = static_cast<float>(q1) * d;
  }
}

// Q5_1: fp16 d | fp16 m | u32 qh | 16 bytes of nibbles. x = q * d + m.
void dequant_q5_1(const uint8_t* b, float* y) {
  const float d = load_fp16(b);
  const float m = load_fp16(b + 2);
  uint32_t qh;
  std::memcpy(&qh, b + 4, 4);
  const uint8_t* qs = b + 8;
  for (int j = 0; j < kQK / 2; ++j) {
    const int q0 = (qs[j] & 0x0f) | q5_high(qh, j);
    const int q1 = (qs[j] >> 4) | q5_high(qh, j + kQK / 2);
    y[j] = static_cast<float>(q0) * d + m;
    y[j + kQK / 2] = static_cast<float>(q1) * d + m;
  }
}

// Q8_0: fp16 d | 32 int8. x = q * d.
void dequant_q8_0(const uint8_t* b, float* y) {
  const float d = load_fp16(b);
  for (int j = 0; j < kQK; ++j) y[j] = static_cast<float>(static_cast<int8_t>(b[2 + j])) * d;
}

// Q2_K: 16 scale bytes (low nibble scale, high nibble min) | 64 bytes of 2-bit quants | fp16 d |
// fp16 dmin. Element e: sub-block e / 16; its 2 bits sit in byte (e / 128) * 32 + e % 32 at
// shift 2 * ((e % 128) / 32). x = (d * sc) * q - dmin * m.
void dequant_q2_k(const uint8_t* b, float* y) {
  const uint8_t* scales = b;
  const uint8_t* qs = b + 16;
  const float d = load_fp16(b + 80);
  const float dmin = load_fp16(b + 82);
  for (int e = 0; e < kQKK; ++e) {
    const uint8_t sc = scales[e / 16];
    const float dl = d * static_cast<float>(sc & 0x0f);
    const float ml = dmin * static_cast<float>(sc >> 4);
    const int q = (qs[(e / 128) * 32 + e % 32] >> (2 * ((e % 128) / 32))) & 3;
    y[e] = dl * static_cast<float>(q) - ml;
  }
}

// The 16 signed 6-bit scales of a Q3_K block from its 12 packed bytes: scale i has low nibble
// from byte i % 8 (low nibble for i < 8, high for i >= 8) and its top two bits from byte
// 8 + i % 4 at shift 2 * (i / 4); stored with a +32 bias.
void q3_k_scales(const uint8_t* p, int* out) {
  for (int i = 0; i < 16; ++i) {
    const int lo = i < 8 ? (p[i] & 0x0f) : (p[i - 8] >> 4);
    const int hi = (p[8 + i % 4] >> (2 * (i / 4))) & 3;
    out[i] = (lo | (hi << 4)) - 32;
  }
}

// Q3_K: 32 bytes hmask | 64 bytes of low 2 bits (as Q2_K) | 12 scale bytes | fp16 d.
// Element e: high bit is bit (e / 128) * 4 + (e % 128) / 32 of hmask byte e % 32; q = low2 - 4
// when that bit is clear, low2 when set. x = (d * sc) * q.
void dequant_q3_k(const uint8_t* b, float* y) {
  const uint8_t* hmask = b;
  const uint8_t* qs = b + 32;
  int sc[16];
  q3_k_scales(b + 96, sc);
  const float d = load_fp16(b + 108);
  for (int e = 0; e < kQKK; ++e) {
    const int group = (e % 128) / 32;
    const int low = (qs[(e / 128) * 32 + e % 32] >> (2 * group)) & 3;
    const int hbit = (hmask[e % 32] >> ((e / 128) * 4 + group)) & 1;
    const int q = low - (hbit ? 0 : 4);
    const float dl = d * static_cast<float>(sc[e / 16]);
    y[e] = dl * static_cast<float>(q);
  }
}

// Scale and min j (0..7) of a Q4_K/Q5_K block from its 12 packed bytes p: for j < 4 the low
// 6 bits of p[j] and p[j + 4]; for j >= 4 a nibble of p[j + 4] (low: scale, high: min) plus
// the top two bits of p[j - 4] (scale) and p[j] (min).
void k4_scale_min(int j, const uint8_t* p, int* sc, int* m) {
  if (j < 4) {
    *sc = p[j] & 63;
    *m = p[j + 4] & 63;
  } else {
    *sc = (p[j + 4] & 0x0f) | ((p[j - 4] >> 6) << 4);
    *m = (p[j + 4] >> 4) | ((p[j] >> 6) << 4);
  }
}

// Q4_K: fp16 d | fp16 dmin | 12 scale bytes | 128 bytes of nibbles. Element e: sub-block e / 32;
// nibble in byte (e / 64) * 32 + e % 32, low for (e % 64) < 32 else high.
// x = (d * sc) * q - dmin * m.
void dequant_q4_k(const uint8_t* b, float* y) {
  const float d = load_fp16(b);
  const float dmin = load_fp16(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qs = b + 16;
  for (int s = 0; s < 8; ++s) {
    int sc, m;
    k4_scale_min(s, scales, &sc, &m);
    const float dl = d * static_cast<float>(sc);
    const float ml = dmin * static_cast<float>(m);
    const uint8_t* q = qs + (s / 2) * 32;
    const int shift = (s % 2) * 4;
    for (int l = 0; l < 32; ++l) {
      y[s * 32 + l] = dl * static_cast<float>((q[l] >> shift) & 0x0f) - ml;
    }
  }
}

// Q5_K: as Q4_K plus 32 bytes qh before the nibbles: the fifth bit of element e is bit e / 32
// of qh byte e % 32.
void dequant_q5_k(const uint8_t* b, float* y) {
  const float d = load_fp16(b);
  const float dmin = load_fp16(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qh = b + 16;
  const uint8_t* qs = b + 48;
  for (int s = 0; s < 8; ++s) {
    int sc, m;
    k4_scale_min(s, scales, &sc, &m);
    const float dl = d * static_cast<float>(sc);
    const float ml = dmin * static_cast<float>(m);
    const uint8_t* q = qs + (s / 2) * 32;
    const int shift = (s % 2) * 4;
    for (int l = 0; l < 32; ++l) {
      const int v = ((q[l] >> shift) & 0x0f) | (((qh[l] >> s) & 1) << 4);
      y[s * 32 + l] = dl * static_cast<float>(v) - ml;
    }
  }
}

// Q6_K: 128 bytes ql (low nibbles) | 64 bytes qh (2 high bits) | 16 int8 scales | fp16 d.
// Element e = n*128 + k*32 + l (k < 4, l < 32): low nibble from ql[n*64 + (k&1)*32 + l]
// (low half for k < 2, high for k >= 2), high bits from qh[n*32 + l] at shift 2k; q = 6 bits
// - 32; sub-block e / 16. x = (d * sc) * q.
void dequant_q6_k(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
  const float d = load_fp16(b + 208);
  for (int e = 0; e < kQKK; ++e) {
    const int n = e / 128, k = (e % 128) / 32, l = e % 32;
    const int low = (ql[n * 64 + (k & 1) * 32 + l] >> (k < 2 ? 0 : 4)) & 0x0f;
    const int high = (qh[n * 32 + l] >> (2 * k)) & 3;
    const int q = (low | (high << 4)) - 32;
    y[e] = d * static_cast<float>(sc[e / 16]) * static_cast<float>(q);
  }
}

using DequantFn = void (*)(const uint8_t*, float*);

DequantFn dequant_fn(DType t) {
  switch (t) {
    case DType::kQ4_0:
      return dequant_q4_0;
    case DType::kQ4_1:
      return dequant_q4_1;
    case DType::kQ5_0:
      return dequant_q5_0;
    case DType::kQ5_1:
      return dequant_q5_1;
    case DType::kQ8_0:
      return dequant_q8_0;
    case DType::kQ2_K:
      return dequant_q2_k;
    case DType::kQ3_K:
      return dequant_q3_k;
    case DType::kQ4_K:
      return dequant_q4_k;
    case DType::kQ5_K:
      return dequant_q5_k;
    case DType::kQ6_K:
      return dequant_q6_k;
    default:
      return nullptr;
  }
}

// ---------------------------------------------------------------------------------------------
// Quantisation.

// Round-half-away-from-zero to an integer clamped to [lo, hi]; NaN maps to 0 clamped.
int round_clamp(float v, int lo, int hi) {
  if (std::isnan(v)) v = 0.0f;
  if (v <= static_cast<float>(lo)) return lo;
  if (v >= static_cast<float>(hi)) return hi;
  return static_cast<int>(std::round(v));
}

// Truncation toward zero clamped to [lo, hi] (ggml's legacy quantizers add 0.5 and truncate).
int trunc_clamp(float v, int lo, int hi) {
  if (std::isnan(v)) v = 0.0f;
  if (v <= static_cast<float>(lo)) return lo;
  if (v >= static_cast<float>(hi)) return hi;
  return static_cast<int>(v);
}

// The element of x[0..n) with the largest magnitude (keeping its sign).
float signed_absmax(const float* x, int n) {
  float amax = 0.0f, v = 0.0f;
  for (int i = 0; i < n; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      v = x[i];
    }
  }
  return v;
}

void quant_q4_0(const float* x, uint8_t* b) {
  const float mx = signed_absmax(x, kQK);
  const float d = mx / -8.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  store_fp16(b, d);
  for (int j = 0; j < kQK / 2; ++j) {
    const int q0 = trunc_clamp(x[j] * id + 8.5f, 0, 15);
    const int q1 = trunc_clamp(x[j + kQK / 2] * id + 8.5f, 0, 15);
    b[2 + j] = static_cast<uint8_t>(q0 | (q1 << 4));
  }
}

void quant_q4_1(const float* x, uint8_t* b) {
  float lo = x[0], hi = x[0];
  for (int j = 1; j < kQK; ++j) {
    lo = std::min(lo, x[j]);
    hi = std::max(hi, x[j]);
  }
  const float d = (hi - lo) / 15.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  store_fp16(b, d);
  store_fp16(b + 2, lo);
  for (int j = 0; j < kQK / 2; ++j) {
    const int q0 = trunc_clamp((x[j] - lo) * id + 0.5f, 0, 15);
    const int q1 = trunc_clamp((x[j + kQK / 2] - lo) * id + 0.5f, 0, 15);
    b[4 + j] = static_cast<uint8_t>(q0 | (q1 << 4));
  }
}

void pack_q5(const int* q, uint8_t* qh_out, uint8_t* qs) {
  uint32_t qh = 0;
  for (int j = 0; j < kQK / 2; ++j) {
    const int q0 = q[j], q1 = q[j + kQK / 2];
    qs[j] = static_cast<uint8_t>((q0 & 0x0f) | ((q1 & 0x0f) << 4));
    qh |= static_cast<uint32_t>((q0 >> 4) & 1) << j;
    qh |= static_cast<uint32_t>((q1 >> 4) & 1) << (j + kQK / 2);
  }
  std::memcpy(qh_out, &qh, 4);
}

void quant_q5_0(const float* x, uint8_t* b) {
  const float mx = signed_absmax(x, kQK);
  const float d = mx / -16.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  store_fp16(b, d);
  int q[kQK];
  for (int j = 0; j < kQK; ++j) q[j] = trunc_clamp(x[j] * id + 16.5f, 0, 31);
  pack_q5(q, b + 2, b + 6);
}

void quant_q5_1(const float* x, uint8_t* b) {
  float lo = x[0], hi = x[0];
  for (int j = 1; j < kQK; ++j) {
    lo = std::min(lo, x[j]);
    hi = std::max(hi, x[j]);
  }
  const float d = (hi - lo) / 31.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  store_fp16(b, d);
  store_fp16(b + 2, lo);
  int q[kQK];
  for (int j = 0; j < kQK; ++j) q[j] = trunc_clamp((x[j] - lo) * id + 0.5f, 0, 31);
  pack_q5(q, b + 4, b + 8);
}

void quant_q8_0(const float* x, uint8_t* b) {
  float amax = 0.0f;
  for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  store_fp16(b, d);
  for (int j = 0; j < kQK; ++j) {
    b[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(round_clamp(x[j] * id, -127, 127)));
  }
}

// --- k-quant helpers ---------------------------------------------------------------------------
// A sub-block is fitted first in full precision (scale, and for the asymmetric types a min),
// then the per-sub-block scales are themselves quantized against a super-block fp16 scale, and
// finally every value is re-quantized against the scale it will actually be decoded with.

// Least-squares scale s (and offset b <= 0 when `with_offset`) for x ~ s * q + b, given q.
void fit_affine(const float* x, const int* q, int n, bool with_offset, float* s, float* b) {
  double sq = 0, sqq = 0, sx = 0, sqx = 0;
  for (int i = 0; i < n; ++i) {
    sq += q[i];
    sqq += static_cast<double>(q[i]) * q[i];
    sx += x[i];
    sqx += static_cast<double>(q[i]) * x[i];
  }
  *s = 0.0f;
  *b = 0.0f;
  if (with_offset) {
    const double det = n * sqq - sq * sq;
    if (det > 0) {
      const double ss = (n * sqx - sq * sx) / det;
      const double bb = (sqq * sx - sq * sqx) / det;
      if (bb <= 0 && ss >= 0) {
        *s = static_cast<float>(ss);
        *b = static_cast<float>(bb);
        return;
      }
    }
  }
  if (sqq > 0) *s = static_cast<float>(sqx / sqq);
  if (with_offset && *s < 0) *s = 0.0f;
}

float sq_error(const float* x, const int* q, int n, float s, float b) {
  float e = 0.0f;
  for (int i = 0; i < n; ++i) {
    const float r = s * static_cast<float>(q[i]) + b - x[i];
    e += r * r;
  }
  return e;
}

// Asymmetric sub-block fit: x ~ s * q - m with q in [0, nmax], s >= 0, m >= 0.
void fit_asymmetric(const float* x, int n, int nmax, float* s_out, float* m_out) {
  float lo = 0.0f, hi = 0.0f;  // the range always includes zero (m >= 0)
  for (int i = 0; i < n; ++i) {
    if (std::isfinite(x[i])) {
      lo = std::min(lo, x[i]);
      hi = std::max(hi, x[i]);
    }
  }
  *s_out = 0.0f;
  *m_out = -lo;
  if (!(hi > lo)) return;
  float best = std::numeric_limits<float>::infinity();
  int q[32];
  // Try a spread of grid resolutions around the min/max one; keep the best least-squares fit.
  for (int k = -8; k <= 8; ++k) {
    const float iscale = (static_cast<float>(nmax) + 0.1f * k) / (hi - lo);
    for (int i = 0; i < n; ++i) q[i] = round_clamp(iscale * (x[i] - lo), 0, nmax);
    float s, b;
    fit_affine(x, q, n, true, &s, &b);
    const float err = sq_error(x, q, n, s, b);
    if (err < best) {
      best = err;
      *s_out = s;
      *m_out = -b;
    }
  }
}

// Symmetric sub-block fit: x ~ s * q with q in [-nneg, nneg - 1] (s may be negative).
float fit_symmetric(const float* x, int n, int nneg) {
  const float mx = signed_absmax(x, n);
  if (mx == 0.0f || !std::isfinite(mx)) return 0.0f;
  float best = std::numeric_limits<float>::infinity(), best_s = 0.0f;
  int q[16];
  for (int k = -8; k <= 8; ++k) {
    const float iscale = -(static_cast<float>(nneg) + 0.1f * k) / mx;
    for (int i = 0; i < n; ++i) q[i] = round_clamp(iscale * x[i], -nneg, nneg - 1);
    float s, b;
    fit_affine(x, q, n, false, &s, &b);
    const float err = sq_error(x, q, n, s, 0.0f);
    if (err < best) {
      best = err;
      best_s = s;
    }
  }
  return best_s;
}

// Quantizes non-negative values v[0..n) to integers in [0, qmax] against a fp16 super scale;
// returns the (fp16-rounded) super scale.
float quantize_unsigned_scales(const float* v, int n, int qmax, int* q, float* stored) {
  float mx = 0.0f;
  for (int i = 0; i < n; ++i) mx = std::max(mx, v[i]);
  const float d = fp16_to_float(float_to_fp16(mx / static_cast<float>(qmax)));
  for (int i = 0; i < n; ++i) q[i] = d > 0.0f ? round_clamp(v[i] / d, 0, qmax) : 0;
  *stored = d;
  return d;
}

// Quantizes signed values v[0..n) to integers in [-(qmax+1), qmax] against a fp16 super scale.
float quantize_signed_scales(const float* v, int n, int qmax, int* q) {
  const float mx = signed_absmax(v, n);
  const float d = fp16_to_float(float_to_fp16(mx / -static_cast<float>(qmax + 1)));
  for (int i = 0; i < n; ++i) q[i] = d != 0.0f ? round_clamp(v[i] / d, -(qmax + 1), qmax) : 0;
  return d;
}

// Re-quantizes x against the decoded scale dl and min ml: q = round((x + ml) / dl).
int requant_asym(float x, float dl, float ml, int nmax) {
  return dl > 0.0f ? round_clamp((x + ml) / dl, 0, nmax) : 0;
}

void quant_q2_k(const float* x, uint8_t* b) {
  float s[16], m[16];
  for (int j = 0; j < 16; ++j) fit_asymmetric(x + 16 * j, 16, 3, &s[j], &m[j]);
  int qs_sc[16], qs_m[16];
  float d, dmin;
  quantize_unsigned_scales(s, 16, 15, qs_sc, &d);
  quantize_unsigned_scales(m, 16, 15, qs_m, &dmin);
  std::memset(b, 0, 84);
  for (int j = 0; j < 16; ++j) b[j] = static_cast<uint8_t>(qs_sc[j] | (qs_m[j] << 4));
  store_fp16(b + 80, d);
  store_fp16(b + 82, dmin);
  for (int e = 0; e < kQKK; ++e) {
    const float dl = d * static_cast<float>(qs_sc[e / 16]);
    const float ml = dmin * static_cast<float>(qs_m[e / 16]);
    const int q = requant_asym(x[e], dl, ml, 3);
    b[16 + (e / 128) * 32 + e % 32] |= static_cast<uint8_t>(q << (2 * ((e % 128) / 32)));
  }
}

void quant_q3_k(const float* x, uint8_t* b) {
  float s[16];
  for (int j = 0; j < 16; ++j) s[j] = fit_symmetric(x + 16 * j, 16, 4);
  int sc[16];
  const float d = quantize_signed_scales(s, 16, 31, sc);
  std::memset(b, 0, 110);
  uint8_t* hmask = b;
  uint8_t* qs = b + 32;
  uint8_t* scales = b + 96;
  for (int i = 0; i < 16; ++i) {
    const int v = sc[i] + 32;  // 6 bits
    if (i < 8) {
      scales[i] |= static_cast<uint8_t>(v & 0x0f);
    } else {
      scales[i - 8] |= static_cast<uint8_t>((v & 0x0f) << 4);
    }
    scales[8 + i % 4] |= static_cast<uint8_t>(((v >> 4) & 3) << (2 * (i / 4)));
  }
  store_fp16(b + 108, d);
  for (int e = 0; e < kQKK; ++e) {
    const float dl = d * static_cast<float>(sc[e / 16]);
    const int q = dl != 0.0f ? round_clamp(x[e] / dl, -4, 3) : 0;
    const int v = q + 4;  // 3 bits: low two in qs, the third in hmask
    const int group = (e % 128) / 32;
    qs[(e / 128) * 32 + e % 32] |= static_cast<uint8_t>((v & 3) << (2 * group));
    hmask[e % 32] |= static_cast<uint8_t>((v >> 2) << ((e / 128) * 4 + group));
  }
}

// Packs 8 six-bit scales and mins into the 12-byte Q4_K/Q5_K layout (inverse of k4_scale_min).
void pack_k4_scales(const int* sc, const int* m, uint8_t* p) {
  for (int j = 0; j < 4; ++j) {
    p[j] = static_cast<uint8_t>((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
    p[j + 4] = static_cast<uint8_t>((m[j] & 63) | ((m[j + 4] >> 4) << 6));
    p[j + 8] = static_cast<uint8_t>((sc[j + 4] & 0x0f) | ((m[j + 4] & 0x0f) << 4));
  }
}

// Q4_K (nmax 15) and Q5_K (nmax 31) share their scale handling.
void quant_k4_k5(const float* x, uint8_t* b, bool five) {
  const int nmax = five ? 31 : 15;
  float s[8], m[8];
  for (int j = 0; j < 8; ++j) fit_asymmetric(x + 32 * j, 32, nmax, &s[j], &m[j]);
  int qsc[8], qm[8];
  float d, dmin;
  quantize_unsigned_scales(s, 8, 63, qsc, &d);
  quantize_unsigned_scales(m, 8, 63, qm, &dmin);
  std::memset(b, 0, five ? 176 : 144);
  store_fp16(b, d);
  store_fp16(b + 2, dmin);
  pack_k4_scales(qsc, qm, b + 4);
  uint8_t* qh = b + 16;
  uint8_t* qs = five ? b + 48 : b + 16;
  for (int e = 0; e < kQKK; ++e) {
    const int sb = e / 32;
    const float dl = d * static_cast<float>(qsc[sb]);
    const float ml = dmin * static_cast<float>(qm[sb]);
    const int q = requant_asym(x[e], dl, ml, nmax);
    qs[(sb / 2) * 32 + e % 32] |= static_cast<uint8_t>((q & 0x0f) << ((sb % 2) * 4));
    if (five) qh[e % 32] |= static_cast<uint8_t>(((q >> 4) & 1) << sb);
  }
}

void quant_q6_k(const float* x, uint8_t* b) {
  float s[16];
  for (int j = 0; j < 16; ++j) s[j] = fit_symmetric(x + 16 * j, 16, 32);
  int sc[16];
  const float d = quantize_signed_scales(s, 16, 127, sc);
  std::memset(b, 0, 210);
  uint8_t* ql = b;
  uint8_t* qh = b + 128;
  for (int i = 0; i < 16; ++i) b[192 + i] = static_cast<uint8_t>(static_cast<int8_t>(sc[i]));
  store_fp16(b + 208, d);
  for (int e = 0; e < kQKK; ++e) {
    const float dl = d * static_cast<float>(sc[e / 16]);
    const int q = dl != 0.0f ? round_clamp(x[e] / dl, -32, 31) : 0;
    const int v = q + 32;
    const int n = e / 128, k = (e % 128) / 32, l = e % 32;
    ql[n * 64 + (k & 1) * 32 + l] |= static_cast<uint8_t>((v & 0x0f) << (k < 2 ? 0 : 4));
    qh[n * 32 + l] |= static_cast<uint8_t>((v >> 4) << (2 * k));
  }
}

using QuantFn = void (*)(const float*, uint8_t*);

QuantFn quant_fn(DType t) {
  switch (t) {
    case DType::kQ4_0:
      return quant_q4_0;
    case DType::kQ4_1:
      return quant_q4_1;
    case DType::kQ5_0:
      return quant_q5_0;
    case DType::kQ5_1:
      return quant_q5_1;
    case DType::kQ8_0:
      return quant_q8_0;
    case DType::kQ2_K:
      return quant_q2_k;
    case DType::kQ3_K:
      return quant_q3_k;
    case DType::kQ4_K:
      return [](const float* x, uint8_t* b) { quant_k4_k5(x, b, false); };
    case DType::kQ5_K:
      return [](const float* x, uint8_t* b) { quant_k4_k5(x, b, true); };
    case DType::kQ6_K:
      return quant_q6_k;
    default:
      return nullptr;
  }
}

}  // namespace

Status dequantize_blocks(DType t, const uint8_t* src, uint64_t nblocks, float* dst) {
  DequantFn fn = dequant_fn(t);
  if (fn == nullptr) {
    return unsupported(std::string("dtype ") + dtype_name(t) + " is not a ggml block type");
  }
  const DTypeInfo& info = dtype_info(t);
  for (uint64_t i = 0; i < nblocks; ++i) {
    fn(src + i * info.block_bytes, dst + i * info.block_elems);
  }
  return Status::ok();
}

Result<std::vector<uint8_t>> quantize(DType t, const float* src, uint64_t n) {
  QuantFn fn = quant_fn(t);
  if (fn == nullptr) {
    return unsupported(std::string("cannot quantize to ") + dtype_name(t) +
                       ": not a ggml block type");
  }
  const DTypeInfo& info = dtype_info(t);
  if (n % info.block_elems != 0) {
    return invalid_argument(std::to_string(n) + " values is not a whole number of " + info.name +
                            " blocks of " + std::to_string(info.block_elems));
  }
  const uint64_t nblocks = n / info.block_elems;
  std::vector<uint8_t> out(nblocks * info.block_bytes);
  for (uint64_t i = 0; i < nblocks; ++i) {
    fn(src + i * info.block_elems, out.data() + i * info.block_bytes);
  }
  return out;
}

}  // namespace prov::model
