// exec_ops.c — the reference executor's ops: for each, a prep function that
// takes its operands and parameters and computes its output shapes (checked
// against the declared ones), and a kernel over fp32 (or int32) views.
// Matrix products go through BLAS (rt_sgemm, blas.c). The ANE quirks (exec.h):
// products are marked `saturates` in the op table, reduce_sum / reduce_mean
// sum narrowly (reduce_sum_fp16).
#include "exec-impl.h"

#include <limits.h>
#include <math.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#define SQRT1_2 0.70710678118654752440f
#define SQRT_2_PI 0.79788456080286535588f // sqrt(2 / pi)

// exp(d) for d <= 0, as softmax uses it: below -87 (where expf leaves the
// normal range and glibc takes its slow underflow path) it is 0, off by
// less than 2e-38.
static float exp_nonpos(float d) {
  return d < -87.0f ? 0.0f : expf(d);
}

// Softmax rows are the executor's hottest loop after BLAS: they run on
// 8-lane vectors (GCC/Clang vector extensions), with 2 partial maxima and
// sums. On x86-64 Linux GCC also builds an AVX2 clone, picked at load time
// when the CPU has it (else SSE2 runs each vector as two halves); there is no
// FMA contraction under -std=c11, so both clones give the same bits.
typedef float F8 __attribute__((vector_size(32)));
typedef int32_t I8 __attribute__((vector_size(32)));
// The F8 helpers are always inlined (also at -O0): a call would pass F8 in
// AVX registers from the AVX2 clone and in memory from the default one.
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wunknown-warning-option"
#endif
#pragma GCC diagnostic ignored "-Wpsabi"

#define F8_INLINE static inline __attribute__((always_inline))

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#define VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define VECTOR_CLONES
#endif

F8_INLINE F8 f8_load(const float *p) {
  F8 v;
  memcpy(&v, p, sizeof v);
  return v;
}

F8_INLINE F8 f8_splat(float x) {
  return (F8){x, x, x, x, x, x, x, x};
}

F8_INLINE F8 f8_select(I8 mask, F8 a, F8 b) { // a where mask, else b
  return (F8)(((I8)a & mask) | ((I8)b & ~mask));
}

// exp(d) for d <= 0 within 2 ulp of expf: Cephes' polynomial after reducing
// by ln 2 (rounding by adding 1.5 * 2^23); 0 below -87.
F8_INLINE F8 exp8_nonpos(F8 d) {
  I8 under = d < f8_splat(-87.0f);
  d = f8_select(under, f8_splat(-87.0f), d);
  F8 n = (d * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  F8 r = d - n * 0.693359375f + n * 2.12194440e-4f;
  F8 p = r * 1.9875691500e-4f + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  I8 bits = (__builtin_convertvector(n, I8) + 127) << 23;
  return f8_select(under, f8_splat(0.0f), p * (F8)bits);
}

// By halving shuffles: reading the 8 lanes one by one costs more than the
// exponential it saves.
F8_INLINE bool f8_all_below(F8 v, float limit) {
  I8 m = v < f8_splat(limit);
  m &= __builtin_shufflevector(m, m, 4, 5, 6, 7, 0, 1, 2, 3);
  m &= __builtin_shufflevector(m, m, 2, 3, 0, 1, 6, 7, 4, 5);
  m &= __builtin_shufflevector(m, m, 1, 0, 3, 2, 5, 4, 7, 6);
  return m[0] != 0;
}

F8_INLINE float f8_hmax(F8 v) {
  float m = v[0];
  for (int i = 1; i < 8; i++)
    m = v[i] > m ? v[i] : m;
  return m;
}

F8_INLINE float f8_hsum(F8 v) {
  return ((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7]));
}

// Softmax of a contiguous row, in place: two partial maxima and sums so
// that the loops are not bound by one dependency chain. Its two halves: the
// row's maximum (NaNs never win), then exp(x - max) normalized.
VECTOR_CLONES static float softmax_row_max(const float *x, int64_t n) {
  int64_t n16 = n / 16 * 16;
  F8 vmax[2] = {f8_splat(-INFINITY), f8_splat(-INFINITY)};
  for (int64_t i = 0; i < n16; i += 16)
    for (int k = 0; k < 2; k++) {
      F8 v = f8_load(x + i + 8 * k);
      vmax[k] = f8_select(v > vmax[k], v, vmax[k]);
    }
  float max = -INFINITY;
  for (int k = 0; k < 2; k++)
    max = f8_hmax(vmax[k]) > max ? f8_hmax(vmax[k]) : max;
  for (int64_t i = n16; i < n; i++)
    max = x[i] > max ? x[i] : max;
  return max;
}

VECTOR_CLONES static void softmax_row_normalize(float *x, int64_t n, float max) {
  int64_t n16 = n / 16 * 16;
  F8 vsum[2] = {f8_splat(0), f8_splat(0)};
  float sum = 0;
  for (int64_t i = 0; i < n16; i += 16)
    for (int k = 0; k < 2; k++) {
      F8 d = f8_load(x + i + 8 * k) - max;
      // every lane below -87 (a masked stretch: causal attention's upper
      // triangle) is 0, as exp8_nonpos would give, without the polynomial
      F8 e = f8_all_below(d, -87.0f) ? f8_splat(0.0f) : exp8_nonpos(d);
      memcpy(x + i + 8 * k, &e, sizeof e);
      vsum[k] += e;
    }
  for (int64_t i = n16; i < n; i++)
    sum += x[i] = exp_nonpos(x[i] - max);
  float inv = 1.0f / (sum + f8_hsum(vsum[0] + vsum[1]));
  for (int64_t i = 0; i < n; i++)
    x[i] *= inv;
}

static void softmax_row(float *x, int64_t n) {
  softmax_row_normalize(x, n, softmax_row_max(x, n));
}

//
// Shared prep helpers
//

static bool need_float(Prep *P, Step *s, int k, const char *param) {
  const Buf *b = prep_buf(P, s->in[k]);
  return !b->is_int || prep_error(P, prep_loc(s, param), "'%s' of %s must be floating-point",
                                  param, s->op->op);
}

static bool fits_blas(Prep *P, Step *s, const int64_t *v, int n) {
  for (int i = 0; i < n; i++)
    if (v[i] > INT_MAX)
      return prep_error(P, s->op->loc, "%s is too large for BLAS (a dimension over %d)",
                        s->op->op, INT_MAX);
  return true;
}

static bool norm_axis(Prep *P, Step *s, const char *param, int64_t *axis, int rank) {
  if (*axis < -rank || *axis >= (rank ? rank : 1))
    return prep_error(P, prep_loc(s, param), "axis %lld is out of range for rank %d",
                      (long long)*axis, rank);
  if (*axis < 0)
    *axis += rank;
  return true;
}

// Axes as a bit mask; absent: every axis.
static bool prep_axes(Prep *P, Step *s, const char *param, int rank, unsigned *mask) {
  int64_t ax[MIL_MAX_RANK];
  int n = prep_ints(P, s, param, ax, MIL_MAX_RANK);
  if (n == -2)
    return false;
  *mask = n == -1 ? (1u << rank) - 1 : 0;
  for (int i = 0; i < n; i++) {
    if (!norm_axis(P, s, param, &ax[i], rank))
      return false;
    if (*mask & 1u << ax[i])
      return prep_error(P, prep_loc(s, param), "axis %lld is given twice", (long long)ax[i]);
    *mask |= 1u << ax[i];
  }
  return true;
}

// n booleans from a bool tensor (absent: all false).
static bool prep_flags(Prep *P, Step *s, const char *param, bool *out, int n) {
  bool bad = false;
  const MilValue *v = prep_const(P, s, param, &bad);
  memset(out, 0, (size_t)n * sizeof *out);
  if (bad || !v)
    return !bad;
  if (v->type->dtype != MIL_BOOL || v->count != n)
    return prep_error(P, prep_loc(s, param), "'%s' must be %d bools", param, n);
  for (int i = 0; i < n; i++)
    out[i] = v->i[i] != 0;
  return true;
}

// NumPy broadcasting of n shapes.
static bool bcast_shape(Prep *P, Step *s, const Buf *const *b, int n, int *rank,
                        int64_t *dims) {
  *rank = 0;
  for (int k = 0; k < n; k++)
    *rank = b[k]->rank > *rank ? b[k]->rank : *rank;
  for (int i = 0; i < *rank; i++) {
    dims[i] = 1;
    for (int k = 0; k < n; k++) {
      int j = i - (*rank - b[k]->rank);
      int64_t d = j < 0 ? 1 : b[k]->dims[j];
      if (d != 1 && dims[i] != 1 && d != dims[i]) {
        char x[200], y[200];
        return prep_error(P, s->op->loc, "%s cannot broadcast %s with %s", s->op->op,
                          rt_shape_str(x, sizeof x, b[0]->rank, b[0]->dims),
                          rt_shape_str(y, sizeof y, b[k]->rank, b[k]->dims));
      }
      dims[i] = d != 1 ? d : dims[i];
    }
  }
  return true;
}

// Element strides of `b` broadcast to dims[0..rank) (right-aligned; 0 where
// broadcast), for a tensor whose last `skip` dims are left out, each step of
// the rest being `inner` elements.
static void bcast_strides(const Buf *b, int skip, int rank, const int64_t *dims, int64_t inner,
                          int64_t *st) {
  int br = b->rank - skip;
  int64_t bst[MIL_MAX_RANK];
  dims_strides(br, b->dims, bst);
  for (int i = 0; i < rank; i++) {
    int j = i - (rank - br);
    st[i] = j < 0 || (b->dims[j] == 1 && dims[i] != 1) ? 0 : bst[j] * inner;
  }
}

static void geom_build(Prep *P, Geom *g, int rank, const int64_t *dims, unsigned mask) {
  int64_t st[MIL_MAX_RANK], kd[MIL_MAX_RANK], ks[MIL_MAX_RANK], rd[MIL_MAX_RANK],
      rs[MIL_MAX_RANK];
  int kr = 0, rr = 0;
  dims_strides(rank, dims, st);
  for (int i = 0; i < rank; i++) {
    if (mask & 1u << i)
      rd[rr] = dims[i], rs[rr++] = st[i];
    else
      kd[kr] = dims[i], ks[kr++] = st[i];
  }
  g->nkeep = rt_numel(kr, kd);
  g->nred = rt_numel(rr, rd);
  g->keep = prep_alloc(P, (size_t)g->nkeep * 8 + 8);
  g->red = prep_alloc(P, (size_t)g->nred * 8 + 8);
  for (int64_t k = 0; k < g->nkeep; k++)
    g->keep[k] = dims_offset(k, kr, kd, ks);
  for (int64_t r = 0; r < g->nred; r++)
    g->red[r] = dims_offset(r, rr, rd, rs);
}

static bool prep_same_shape_out(Prep *P, Step *s, bool is_int) {
  const Buf *x = prep_buf(P, s->in[0]);
  return prep_out(P, s, 0, is_int, x->rank, x->dims);
}

//
// Elementwise: unary
//
enum { U_RELU, U_SIGMOID, U_TANH, U_SILU, U_EXP, U_LOG, U_SQRT, U_RSQRT, U_GELU, U_ABS,
       U_SQUARE, U_ERF, U_IDENTITY };
enum { GELU_EXACT, GELU_TANH, GELU_SIGMOID };

static bool prep_gelu_mode(Prep *P, Step *s) {
  static const char *const modes[] = {"EXACT", "TANH_APPROXIMATION", "SIGMOID_APPROXIMATION"};
  const char *m;
  if (!prep_string(P, s, "mode", "EXACT", &m))
    return false;
  for (s->mode = 0; s->mode < 3; s->mode++)
    if (!strcmp(m, modes[s->mode]))
      return true;
  return prep_error(P, prep_loc(s, "mode"), "unknown gelu mode \"%s\" (EXACT, "
                    "TANH_APPROXIMATION, SIGMOID_APPROXIMATION)", m);
}

// coremltools: rsqrt(x) = 1 / sqrt(x + epsilon), epsilon 1e-12 by default;
// log(x) = log(x + epsilon), 1e-45 by default; no other op has epsilon.
static bool prep_unary(Prep *P, Step *s) {
  if (!prep_in(P, s, "x", true) || !need_float(P, s, 0, "x"))
    return false;
  int code = s->def->code;
  if (code == U_RSQRT && !prep_float(P, s, "epsilon", 1e-12, &s->epsilon))
    return false;
  if (code == U_LOG && !prep_float(P, s, "epsilon", 1e-45, &s->epsilon))
    return false;
  if (code == U_GELU && !prep_gelu_mode(P, s))
    return false;
  return prep_same_shape_out(P, s, false);
}

static float sigmoidf(float x) {
  return 1.0f / (1.0f + expf(-x));
}

static float gelu(int mode, float x) {
  if (mode == GELU_EXACT)
    return 0.5f * x * (1.0f + erff(x * SQRT1_2));
  if (mode == GELU_TANH)
    return 0.5f * x * (1.0f + tanhf(SQRT_2_PI * (x + 0.044715f * x * x * x)));
  return x * sigmoidf(1.702f * x);
}

static bool run_unary(Exec *e, const Step *s, RtDiag *d) {
  (void)d;
  const float *x = s->iv[0];
  float *o = s->ov[0], eps = (float)s->epsilon;
  int64_t n = step_out(e, s, 0)->count;
  switch (s->def->code) {
  case U_RELU: for (int64_t i = 0; i < n; i++) o[i] = x[i] > 0 ? x[i] : 0.0f; break;
  case U_SIGMOID: for (int64_t i = 0; i < n; i++) o[i] = sigmoidf(x[i]); break;
  case U_TANH: for (int64_t i = 0; i < n; i++) o[i] = tanhf(x[i]); break;
  case U_SILU: for (int64_t i = 0; i < n; i++) o[i] = x[i] * sigmoidf(x[i]); break;
  case U_EXP: for (int64_t i = 0; i < n; i++) o[i] = expf(x[i]); break;
  case U_LOG: for (int64_t i = 0; i < n; i++) o[i] = logf(x[i] + eps); break;
  case U_SQRT: for (int64_t i = 0; i < n; i++) o[i] = sqrtf(x[i]); break;
  case U_RSQRT: for (int64_t i = 0; i < n; i++) o[i] = 1.0f / sqrtf(x[i] + eps); break;
  case U_GELU: for (int64_t i = 0; i < n; i++) o[i] = gelu(s->mode, x[i]); break;
  case U_ABS: for (int64_t i = 0; i < n; i++) o[i] = fabsf(x[i]); break;
  case U_SQUARE: for (int64_t i = 0; i < n; i++) o[i] = x[i] * x[i]; break;
  case U_ERF: for (int64_t i = 0; i < n; i++) o[i] = erff(x[i]); break;
  default: memcpy(o, x, (size_t)n * 4); break;
  }
  return true;
}

//
// Elementwise: binary, with broadcasting
//
enum { B_ADD, B_SUB, B_MUL, B_DIV, B_MAX, B_MIN, B_POW };

static bool prep_binary(Prep *P, Step *s) {
  if (!prep_in(P, s, "x", true) || !prep_in(P, s, "y", true) || !need_float(P, s, 0, "x") ||
      !need_float(P, s, 1, "y"))
    return false;
  const Buf *b[2] = {prep_buf(P, s->in[0]), prep_buf(P, s->in[1])};
  int rank;
  int64_t dims[MIL_MAX_RANK];
  return bcast_shape(P, s, b, 2, &rank, dims) && prep_out(P, s, 0, false, rank, dims);
}

// o[i] = x[i] OP y[i] for i < n: loops the compiler vectorizes.
static void binary_contig(int code, float *restrict o, const float *restrict x,
                          const float *restrict y, int64_t n) {
  switch (code) {
  case B_ADD: for (int64_t i = 0; i < n; i++) o[i] = x[i] + y[i]; break;
  case B_SUB: for (int64_t i = 0; i < n; i++) o[i] = x[i] - y[i]; break;
  case B_MUL: for (int64_t i = 0; i < n; i++) o[i] = x[i] * y[i]; break;
  case B_DIV: for (int64_t i = 0; i < n; i++) o[i] = x[i] / y[i]; break;
  case B_MAX: for (int64_t i = 0; i < n; i++) o[i] = fmaxf(x[i], y[i]); break;
  case B_MIN: for (int64_t i = 0; i < n; i++) o[i] = fminf(x[i], y[i]); break;
  default: for (int64_t i = 0; i < n; i++) o[i] = powf(x[i], y[i]); break;
  }
}

enum { CHUNK = 256 };

// o[i] = x[i * ix] OP y[i * iy] for i < n, where a stride is 1 or 0 (a
// broadcast value, repeated into a chunk so that the loops stay contiguous).
static void binary_row(int code, float *o, const float *x, int64_t ix, const float *y,
                       int64_t iy, int64_t n) {
  float xs[CHUNK], ys[CHUNK];
  for (int i = 0; i < CHUNK && (!ix || !iy); i++)
    xs[i] = x[0], ys[i] = y[0];
  for (int64_t i = 0; i < n; i += CHUNK) {
    int64_t m = n - i < CHUNK ? n - i : CHUNK;
    binary_contig(code, o + i, ix ? x + i : xs, iy ? y + i : ys, m);
  }
}

static bool run_binary(Exec *e, const Step *s, RtDiag *d) {
  (void)d;
  const Buf *x = step_in(e, s, 0), *y = step_in(e, s, 1), *o = step_out(e, s, 0);
  const float *xv = s->iv[0], *yv = s->iv[1];
  float *ov = s->ov[0];
  if ((x->count == o->count || x->count == 1) && (y->count == o->count || y->count == 1)) {
    binary_row(s->def->code, ov, xv, x->count > 1, yv, y->count > 1, o->count);
    return true;
  }
  int r = o->rank;
  int64_t sx[MIL_MAX_RANK], sy[MIL_MAX_RANK], n = o->dims[r - 1];
  bcast_strides(x, 0, r, o->dims, 1, sx);
  bcast_strides(y, 0, r, o->dims, 1, sy);
  for (int64_t row = 0; n && row < o->count / n; row++)
    binary_row(s->def->code, ov + row * n, xv + dims_offset(row, r - 1, o->dims, sx),
               sx[r - 1], yv + dims_offset(row, r - 1, o->dims, sy), sy[r - 1], n);
  return true;
}

// select(cond, a, b): a where cond is non-zero, else b; broadcast.
static bool prep_select(Prep *P, Step *s) {
  if (!prep_in(P, s, "cond", true) || !prep_in(P, s, "a", true) || !prep_in(P, s, "b", true))
    return false;
  const Buf *b[3] = {prep_buf(P, s->in[0]), prep_buf(P, s->in[1]), prep_buf(P, s->in[2])};
  if (b[1]->is_int != b[2]->is_int)
    return prep_error(P, s->op->loc, "'a' and 'b' of select must have the same kind of dtype");
  int rank;
  int64_t dims[MIL_MAX_RANK];
  return bcast_shape(P, s, b, 3, &rank, dims) && prep_out(P, s, 0, b[1]->is_int, rank, dims);
}

static bool run_select(Exec *e, const Step *s, RtDiag *d) {
  (void)d;
  const Buf *o = step_out(e, s, 0), *c = step_in(e, s, 0);
  int r = o->rank;
  int64_t st[3][MIL_MAX_RANK];
  for (int k = 0; k < 3; k++)
    bcast_strides(step_in(e, s, k), 0, r, o->dims, 1, st[k]);
  const uint32_t *a = s->iv[1], *b = s->iv[2]; // 4-byte elements, copied as bits
  uint32_t *out = s->ov[0];
  for (int64_t i = 0; i < o->count; i++) {
    int64_t oc = dims_offset(i, r, o->dims, st[0]);
    bool t = c->is_int ? ((const int32_t *)s->iv[0])[oc] != 0
                       : ((const float *)s->iv[0])[oc] != 0.0f;
    out[i] = t ? a[dims_offset(i, r, o->dims, st[1])] : b[dims_offset(i, r, o->dims, st[2])];
  }
  return true;
}

//
// Reductions: reduce_*, softmax, layer_norm
//
enum { R_SUM, R_MEAN, R_MAX, R_MIN, R_PROD };

static bool prep_reduce(Prep *P, Step *s) {
  unsigned mask;
  if (!prep_in(P, s, "x", true) || !need_float(P, s, 0, "x"))
    return false;
  const Buf *x = prep_buf(P, s->in[0]);
  if (!prep_axes(P, s, "axes", x->rank, &mask) ||
      !prep_bool(P, s, "keep_dims", false, &s->keep_dims))
    return false;
  geom_build(P, &s->geom, x->rank, x->dims, mask);
  int64_t dims[MIL_MAX_RANK];
  int rank = 0;
  for (int i = 0; i < x->rank; i++)
    if (!(mask & 1u << i) || s->keep_dims)
      dims[rank++] = mask & 1u << i ? 1 : x->dims[i];
  return prep_out(P, s, 0, false, rank, dims);
}

// The ANE quirks' narrow sums (exec.h): reduce_sum / reduce_mean with the
// running sum rounded to fp16 after each addition, sequentially along the
// reduced axes. Adding two fp16 values in fp32 and rounding that to fp16
// rounds the exact sum once (24 >= 2 * 11 + 2 bits: the double rounding is
// innocuous), as an fp16 adder would. SUM_LANES kept positions at a time,
// each its own sum, so that the roundings go through the bulk conversions.
enum { SUM_LANES = 64 };

static void reduce_sum_fp16(const Geom *g, const float *x, float *o, bool mean) {
  float acc[SUM_LANES];
  uint16_t h[SUM_LANES];
  for (int64_t k0 = 0; k0 < g->nkeep; k0 += SUM_LANES) {
    int nk = g->nkeep - k0 < SUM_LANES ? (int)(g->nkeep - k0) : SUM_LANES;
    const int64_t *keep = g->keep + k0;
    memset(acc, 0, sizeof acc);
    for (int64_t r = 0; r < g->nred; r++) {
      const float *xr = x + g->red[r];
      for (int j = 0; j < nk; j++)
        acc[j] += xr[keep[j]];
      f32_to_fp16_n(acc, h, (size_t)nk);
      fp16_to_f32_n(h, acc, (size_t)nk);
    }
    for (int j = 0; j < nk; j++)
      o[k0 + j] = mean ? acc[j] / (float)g->nred : acc[j];
  }
}

static bool run_reduce(Exec *e, const Step *s, RtDiag *d) {
  (void)d;
  const Geom *g = &s->geom;
  const float *x = s->iv[0];
  float *o = s->ov[0];
  int code = s->def->code;
  if (exec_ane_quirks(e) && (code == R_SUM || code == R_MEAN)) {
    reduce_sum_fp16(g, x, o, code == R_MEAN);
    return true;
  }
  for (int64_t k = 0; k < g->nkeep; k++) {
    const float *xk = x + g->keep[k];
    float acc = code == R_MAX ? -INFINITY : code == R_MIN ? INFINITY : code == R_PROD ? 1 : 0;
    for (int64_t r = 0; r < g->nred; r++) {
      float v = xk[g->red[r]];
      acc = code == R_MAX ? fmaxf(acc, v) : code == R_MIN ? fminf(acc, v)
            : code == R_PROD ? acc * v : acc + v;
    }
    o[k] = code == R_MEAN ? acc / (float)g->nred : acc;
  }
  return true;
}

static bool prep_softmax(Prep *P, Step *s) {
  int64_t axis;
  if (!prep_in(P, s, "x", true) || !need_float(P, s, 0, "x") ||
      !prep_int(P, s, "axis", -1, &axis))
    return false;
  const Buf *x = prep_buf(P, s->in[0]);
  if (!norm_axis(P, s, "axis", &axis, x->rank))
    return false;
  s->axis = (int)axis;
  geom_build(P, &s->geom, x->rank, x->dims, 1u << axis);
  return prep_same_shape_out(P, s, false);
}

// One scalar prologue op, as binary_contig computes it.
static float prologue_op(int code, float x, float y) {
  switch (code) {
  case B_ADD: return x + y;
  case B_SUB: return x - y;
  case B_MUL: return x * y;
  default: return x / y;
  }
}

// The fp16 softmax row's first pass in one loop on x86 with F16C: widen
// (or, from fp32, round to fp16 as storing would), apply the prologue ops
// rounding to fp16 after each (as the unfused ops store), and take the
// maximum, 8 lanes at a time. The same bits as the pass-per-op path; false
// when the CPU lacks F16C.
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2,f16c"))) static float
prologue_row_f16c(const void *in, bool in_f32, float *row, int64_t n, int np, const int *code,
                  const float *const *y, const int64_t *iy) {
  const uint16_t *in16 = in;
  const float *in32 = in;
  __m256 vmax = _mm256_set1_ps(-INFINITY);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = in_f32 ? _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(in32 + i),
                                                        _MM_FROUND_TO_NEAREST_INT))
                      : _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(in16 + i)));
    for (int j = 0; j < np; j++) {
      __m256 w = iy[j] ? _mm256_loadu_ps(y[j] + i) : _mm256_set1_ps(y[j][0]);
      switch (code[j]) {
      case B_ADD: v = _mm256_add_ps(v, w); break;
      case B_SUB: v = _mm256_sub_ps(v, w); break;
      case B_MUL: v = _mm256_mul_ps(v, w); break;
      default: v = _mm256_div_ps(v, w); break;
      }
      v = _mm256_cvtph_ps(_mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
    }
    _mm256_storeu_ps(row + i, v);
    vmax = _mm256_max_ps(v, vmax); // v > vmax ? v : vmax
  }
  float lanes[8], max = -INFINITY;
  _mm256_storeu_ps(lanes, vmax);
  for (int l = 0; l < 8; l++)
    max = lanes[l] > max ? lanes[l] : max;
  for (; i < n; i++) {
    float v = fp16_to_f32(in_f32 ? f32_to_fp16(in32[i]) : in16[i]);
    for (int j = 0; j < np; j++)
      v = fp16_to_f32(f32_to_fp16(prologue_op(code[j], v, y[j][i * iy[j]])));
    row[i] = v;
    max = v > max ? v : max;
  }
  return max;
}

static bool prologue_row_fast(const void *in, bool in_f32, float *row, int64_t n, int np,
                              const int *code, const float *const *y, const int64_t *iy,
                              float *max) {
  if (!fp16_has_f16c())
    return false;
  *max = prologue_row_f16c(in, in_f32, row, n, np, code, y, iy);
  return true;
}
#else
static bool prologue_row_fast(const void *in, bool in_f32, float *row, int64_t n, int np,
                              const int *code, const float *const *y, const int64_t *iy,
                              float *max) {
  (void)in, (void)in_f32, (void)row, (void)n, (void)np, (void)code, (void)y, (void)iy, (void)max;
  return false;
}
#endif

// A row rounded to fp16 and back, through h (n halves).
static void round_row(const float *x, float *out, uint16_t *h, int64_t n) {
  f32_to_fp16_n(x, h, (size_t)n);
  fp16_to_f32_n(h, out, (size_t)n);
}

// n fp32 values into storage `to` (fp16 or fp32, as the precision stores)
// from element `at` on.
static void store_f32(const Exec *e, const float *x, void *to, int64_t at, int64_t n) {
  if (exec_is_fp16(e))
    f32_to_fp16_n(x, (uint16_t *)to + at, (size_t)n);
  else
    memcpy((float *)to + at, x, (size_t)n * 4);
}

// Row k (n wide) of a softmax over the last axis: widened from storage,
// then the fused prologue ops (rounded to fp16 after each, where the unfused
// ops would have stored fp16), the softmax, and narrowed back to storage.
// `in` and `out` are the row's storage (fp16 or fp32, as the precision
// stores; they may be the same); k places the prologue operands' rows.
// f32_rows: in and out are fp32 in either precision, fp16 rounding them as
// storing them would (the fused attention's rows, never stored).
static void softmax_last_axis_row(const Exec *e, const Step *s, int64_t k, const void *in,
                                  void *out, bool f32_rows, float *row, float *tmp,
                                  uint16_t *h) {
  int64_t n = s->geom.nred, rows = s->geom.nkeep, iy[2];
  const float *y[2];
  for (int j = 0; j < s->nprologue; j++) {
    y[j] = (const float *)s->iv[1 + j] + s->prologue_off[j * rows + k];
    iy[j] = s->prologue_step[j];
  }
  bool fp16 = exec_is_fp16(e), in_f32 = f32_rows || !fp16;
  float max;
  if (!fp16 || !prologue_row_fast(in, in_f32, row, n, s->nprologue, s->prologue, y, iy, &max)) {
    if (!in_f32)
      fp16_to_f32_n(in, row, (size_t)n);
    else if (fp16)
      round_row(in, row, h, n);
    else
      memcpy(row, in, (size_t)n * 4);
    for (int j = 0; j < s->nprologue; j++) {
      binary_row(s->prologue[j], tmp, row, 1, y[j], iy[j], n);
      if (fp16)
        round_row(tmp, row, h, n);
      else
        memcpy(row, tmp, (size_t)n * 4);
    }
    max = softmax_row_max(row, n);
  }
  softmax_row_normalize(row, n, max);
  if (fp16 && f32_rows)
    round_row(row, out, h, n);
  else
    store_f32(e, row, out, 0, n);
}

// Element `at` of storage `base` (fp16 or fp32, as the precision stores).
static void *stored_at(const Exec *e, const void *base, int64_t at) {
  return (char *)base + at * (exec_is_fp16(e) ? 2 : 4);
}

// Rows of a last-axis softmax in blocks over the pool's threads, each block
// with its own row buffers.
enum { SOFTMAX_BLOCK_ELEMS = 1 << 15 };

typedef struct SoftmaxRows {
  const Exec *e;
  const Step *s;
  int64_t rows_per_block;
  int64_t stride; // floats a block: row and tmp (n each), then h (n halves)
  float *buf;
} SoftmaxRows;

static void softmax_rows_block(void *ctx, int64_t blk) {
  const SoftmaxRows *sr = ctx;
  int64_t n = sr->s->geom.nred, nrows = sr->s->geom.nkeep, lo = blk * sr->rows_per_block;
  int64_t hi = lo + sr->rows_per_block < nrows ? lo + sr->rows_per_block : nrows;
  float *row = sr->buf + blk * sr->stride, *tmp = row + n;
  for (int64_t k = lo; k < hi; k++)
    softmax_last_axis_row(sr->e, sr->s, k, stored_at(sr->e, sr->s->iv[0], k * n),
                          stored_at(sr->e, sr->s->ov[0], k * n), false, row, tmp,
                          (uint16_t *)(tmp + n));
}

static bool run_softmax(Exec *e, const Step *s, RtDiag *d) {
  (void)d;
  const Geom *g = &s->geom;
  if (s->stored_io) { // the last axis: rows in blocks
    int64_t per = SOFTMAX_BLOCK_ELEMS / (g->nred ? g->nred : 1);
    per = per < 1 ? 1 : per;
    int64_t blocks = (g->nkeep + per - 1) / per, stride = 2 * g->nred + (g->nred + 1) / 2;
    SoftmaxRows sr = {e, s, per, stride, exec_scratch(e, (size_t)(blocks * stride) * 4)};
    rt_parallel(blocks, softmax_rows_block, &sr);
    return true;
  }
  for (int64_t k = 0; k < g->nkeep; k++) {
    const float *x = (const float *)s->iv[0] + g->keep[k];
    float *o = (float *)s->ov[0] + g->keep[k], max = -INFINITY, sum = 0;
    for (int64_t r = 0; r < g->nred; r++)
      max = x[g->red[r]] > max ? x[g->red[r]] : max;
    for (int64_t r = 0; r < g->nred; r++)
      sum += o[g->red[r]] = exp_nonpos(x[g->red[r]] - max);
    for (int64_t r = 0; r < g->nred; r++)
      o[g->red[r]] /= sum;
  }
  return true;
}

void exec_op_prologue_offsets(const Exec *e, Step *s) {
  const Buf *o = step_out(e, s, 0);
  int r = o->rank;
  int64_t sy[MIL_MAX_RANK], rows = s->geom.nkeep;
  for (int j = 0; j < s->nprologue; j++) {
    bcast_strides(step_in(e, s, 1 + j), 0, r, o->dims, 1, sy);
    s->prologue_step[j] = sy[r - 1];
    for (int64_t k = 0; k < rows; k++)
      s->prologue_off[j * rows + k] = dims_offset(k, r - 1, o->dims, sy);
  }
}

bool exec_op_is_row_softmax(const Step *s) {
  const Geom *g = &s->geom;
  return s->def->run == run_softmax && g->nred > 0 && g->red[g->nred - 1] == g->nred - 1;
}

int exec_op_prologue_code(const Step *s) {
  bool row_op = s->def->code == B_ADD || s->def->code == B_SUB || s->def->code == B_MUL ||
                s->def->code == B_DIV;
  return s->def->run == run_binary && row_op ? s->def->code : -1;
}

// layer_norm(x, axes, gamma, beta, epsilon = 1e-5): gamma and beta have the
// shape of the normalized axes (in increasing axis order).
static bool prep_layer_norm(Prep *P, Step *s) {
  unsigned mask;
  if (!prep_in(P, s, "x", true) || !need_float(P, s, 0, "x"))
    return false;
  const Buf *x = prep_buf(P, s->in[0]);
  if (!prep_axes(P, s, "axes", x->rank, &mask) || !prep_in(P, s, "gamma", false) ||
      !prep_in(P, s, "beta", false) || !prep_float(P, s, "epsilon", 1e-5, &s->epsilon))
    return false;
  geom_build(P, &s->geom, x->rank, x->dims, mask);
  for (int k = 1; k <= 2; k++) {
    const Buf *b = s->in[k] >= 0 ? prep_buf(P, s->in[k]) : NULL;
    const char *name = k == 1 ? "gamma" : "beta";
    if (b && (b->is_int || b->count != s->geom.nred))
      return prep_error(P, prep_loc(s, name), "'%s' must hold %lld floats (the normalized "
                        "axes), not %lld", name, (long long)s->geom.nred, (long long)b->count);
  }
  return prep_same_shape_out(P, s, false);
}

static bool run_layer_norm(Exec *e, const Step *s, RtDiag *d) {
  (void)e, (void)d;
  const Geom *g = &s->geom;
  const float *gamma = s->iv[1], *beta = s->iv[2];
  for (int64_t k = 0; k < g->nkeep; k++) {
    const float *x = (const float *)s->iv[0] + g->keep[k];
    float *o = (float *)s->ov[0] + g->keep[k], mean = 0, var = 0;
    for (int64_t r = 0; r < g->nred; r++)
      mean += x[g->red[r]];
    mean /= (float)g->nred;
    for (int64_t r = 0; r < g->nred; r++)
      var += (x[g->red[r]] - mean) * (x[g->red[r]] - mean);
    float inv = 1.0f / sqrtf(var / (float)g->nred + (float)s->epsilon);
    for (int64_t r = 0; r < g->nred; r++)
      o[g->red[r]] = (x[g->red[r]] - mean) * inv * (gamma ? gamma[r] : 1.0f) +
                     (beta ? beta[r] : 0.0f);
  }
  return true;
}

//
// Data movement: reshape, transpose, slices, concat, split, gather, cast, band_part
//

static bool prep_reshape(Prep *P, Step *s) {
  int64_t dims[MIL_MAX_RANK];
  if (!prep_in(P, s, "x", true))
    return false;
  const Buf *x = prep_buf(P, s->in[0]);
  int n = prep_ints(P, s, "shape", dims, MIL_MAX_RANK), infer = -1;
  if (n < 0)
    return n == -2 ? false : prep_error(P, s->op->loc, "reshape needs a constant 'shape'");
  int64_t known = 1;
  for (int i = 0; i < n; i++) {
    if (dims[i] == 0 && i < x->rank) // 0: the input's dimension
      dims[i] = x->dims[i];
    if (dims[i] == -1 && infer < 0)
      infer = i;
    else if (dims[i] < 0)
      return prep_error(P, prep_loc(s, "shape"), "bad dimension %lld in 'shape'",
                        (long long)dims[i]);
    else
      known *= dims[i];
  }
  if (infer >= 0 && known > 0 && x->count % known == 0)
    dims[infer] = x->count / known;
  char a[200], b[200];
  if (rt_numel(n, dims) != x->count)
    return prep_error(P, prep_loc(s, "shape"), "cannot reshape %s into %s",
                      rt_shape_str(a, sizeof a, x->rank, x->dims),
                      rt_shape_str(b, sizeof b, n, dims));
  return prep_out(P, s, 0, x->is_int, n, dims);
}

static bool run_copy(Exec *e, const Step *s, RtDiag *d) {
  (void)d;
  memcpy(s->ov[0], s->iv[0], (size_t)(step_out(e, s, 0)->count * s->esize));
  return true;
}

// One row of a strided copy: n elements of esize bytes, inc elements apart.
static void copy_row(void *o, const void *x, int64_t n, int64_t inc, int esize) {
  if (inc == 1)
    memcpy(o, x, (size_t)(n * esize));
  else if (esize == 2)
    for (int64_t i = 0; i < n; i++)
      ((uint16_t *)o)[i] = ((const uint16_t *)x)[i * inc];
  else
    for (int64_t i = 0; i < n; i++)
      ((uint32_t *)o)[i] = ((const uint32_t *)x)[i * inc];
}

// Out-of-place strided copy (transpose and the slices): rows of the last dim.
static bool run_strided(Exec *e, const Step *s, RtDiag *d) {
  (void)d;
  const Copy *c = &s->copy;
  const char *x = (const char *)s->iv[0] + c->base * s->esize;
  char *o = s->ov[0];
  int64_t count = step_out(e, s, 0)->count;
  if (c->rank == 0) {
    memcpy(o, x, (size_t)s->esize);
    return true;
  }
  int64_t n = c->dims[c->rank - 1], inc = c->strides[c->rank - 1];
  for (int64_t row = 0; n && row < count / n; row++) {
    int64_t at = dims_offset(row, c->rank - 1, c->dims, c->strides);
    copy_row(o + row * n * s->esize, x + at * s->esize, n, inc, s->esize);
  }
  return true;
}

static bool prep_transpose(Prep *P, Step *s) {
  int64_t perm[MIL_MAX_RANK], xst[MIL_MAX_RANK];
  if (!prep_in(P, s, "x", true))
    return false;
  const Buf *x = prep_buf(P, s->in[0]);
  int n = prep_ints(P, s, "perm", perm, MIL_MAX_RANK);
  unsigned seen = 0;
  if (n == -2)
    return false;
  if (n != x->rank)
    return prep_error(P, prep_loc(s, "perm"), "'perm' must have %d entries", x->rank);
  dims_strides(x->rank, x->dims, xst);
  s->copy.rank = n;
  for (int i = 0; i < n; i++) {
    if (!norm_axis(P, s, "perm", &perm[i], n) || (seen & 1u << perm[i]))
      return prep_error(P, prep_loc(s, "perm"), "'perm' is not a permutation of the axes");
    seen |= 1u << perm[i];
    s->copy.dims[i] = x->dims[perm[i]];
    s->copy.strides[i] = xst[perm[i]];
  }
  return prep_out(P, s, 0, x->is_int, n, s->copy.dims);
}

// slice_by_size(x, begin, size): size -1 takes the rest of the axis; a
// negative begin counts from the end.
static bool prep_slice_by_size(Prep *P, Step *s) {
  int64_t begin[MIL_MAX_RANK], size[MIL_MAX_RANK], xst[MIL_MAX_RANK];
  if (!prep_in(P, s, "x", true))
    return false;
  const Buf *x = prep_buf(P, s->in[0]);
  int nb = prep_ints(P, s, "begin", begin, MIL_MAX_RANK);
  int ns = prep_ints(P, s, "size", size, MIL_MAX_RANK);
  if (nb == -2 || ns == -2)
    return false;
  if (nb != x->rank || ns != x->rank)
    return prep_error(P, s->op->loc, "'begin' and 'size' must be constants of %d entries",
                      x->rank);
  dims_strides(x->rank, x->dims, xst);
  s->copy.rank = x->rank;
  for (int i = 0; i < x->rank; i++) {
    int64_t b = begin[i] < 0 ? begin[i] + x->dims[i] : begin[i];
    int64_t n = size[i] == -1 ? x->dims[i] - b : size[i];
    if (b < 0 || n < 0 || b + n > x->dims[i])
      return prep_error(P, s->op->loc, "slice [%lld, %lld + %lld) of axis %d is outside [0, %lld)",
                        (long long)b, (long long)b, (long long)n, i, (long long)x->dims[i]);
    s->copy.dims[i] = n;
    s->copy.strides[i] = xst[i];
    s->copy.base += b * xst[i];
  }
  return prep_out(P, s, 0, x->is_int, x->rank, s->copy.dims);
}

// One axis of slice_by_index, as NumPy/TensorFlow strided slices: negative
// begin/end count from the end, masks take the whole axis, a squeezed axis
// takes the element at begin. Returns the count, -1 if out of range.
static int64_t slice_axis(int64_t dim, int64_t b, int64_t e, int64_t st, bool bm, bool em,
                          bool squeeze, int64_t *start) {
  if (squeeze) {
    *start = b < 0 ? b + dim : b;
    return *start >= 0 && *start < dim ? 1 : -1;
  }
  b = bm ? (st > 0 ? 0 : dim - 1) : b < 0 ? b + dim : b;
  e = em ? (st > 0 ? dim : -1) : e < 0 ? e + dim : e;
  int64_t lo = st > 0 ? 0 : -1, hi = st > 0 ? dim : dim - 1;
  b = b < lo ? lo : b > hi ? hi : b;
  e = e < lo ? lo : e > hi ? hi : e;
  *start = b;
  int64_t span = st > 0 ? e - b : b - e, step = st > 0 ? st : -st;
  return span > 0 ? (span + step - 1) / step : 0;
}

static bool prep_slice_by_index(Prep *P, Step *s) {
  int64_t begin[MIL_MAX_RANK], end[MIL_MAX_RANK], stride[MIL_MAX_RANK], xst[MIL_MAX_RANK];
  bool bm[MIL_MAX_RANK], em[MIL_MAX_RANK], sq[MIL_MAX_RANK];
  if (!prep_in(P, s, "x", true))
    return false;
  const Buf *x = prep_buf(P, s->in[0]);
  int r = x->rank, nb = prep_ints(P, s, "begin", begin, r), ne = prep_ints(P, s, "end", end, r);
  int ns = prep_ints(P, s, "stride", stride, r);
  if (nb == -2 || ne == -2 || ns == -2 || !prep_flags(P, s, "begin_mask", bm, r) ||
      !prep_flags(P, s, "end_mask", em, r) || !prep_flags(P, s, "squeeze_mask", sq, r))
    return false;
  if (nb != r || ne != r || (ns != -1 && ns != r))
    return prep_error(P, s->op->loc, "'begin', 'end' and 'stride' must be constants of %d "
                      "entries", r);
  dims_strides(r, x->dims, xst);
  int64_t dims[MIL_MAX_RANK];
  int rank = 0;
  s->copy.rank = r;
  for (int i = 0; i < r; i++) {
    int64_t st = ns == -1 ? 1 : stride[i], start;
    int64_t n = st ? slice_axis(x->dims[i], begin[i], end[i], st, bm[i], em[i], sq[i], &start)
                   : -1;
    if (n < 0)
      return prep_error(P, s->op->loc, "axis %d: stride 0, or squeezed index out of range", i);
    s->copy.dims[i] = n;
    s->copy.strides[i] = xst[i] * st;
    s->copy.base += start * xst[i];
    if (!sq[i])
      dims[rank++] = n;
  }
  return prep_out(P, s, 0, x->is_int, rank, dims);
}

static bool prep_concat(Prep *P, Step *s) {
  int64_t axis;
  if (!prep_in_tuple(P, s, "values") || !prep_int(P, s, "axis", 0, &axis) ||
      !prep_bool(P, s, "interleave", false, &s->interleave))
    return false;
  const Buf *a = prep_buf(P, s->in[0]);
  if (!norm_axis(P, s, "axis", &axis, a->rank))
    return false;
  int64_t dims[MIL_MAX_RANK];
  memcpy(dims, a->dims, sizeof dims);
  dims[axis] = 0;
  for (int k = 0; k < s->nin; k++) {
    const Buf *b = prep_buf(P, s->in[k]);
    bool ok = b->rank == a->rank && b->is_int == a->is_int;
    for (int i = 0; ok && i < a->rank; i++)
      ok = i == axis ? !s->interleave || b->dims[i] == a->dims[i] : b->dims[i] == a->dims[i];
    if (!ok)
      return prep_error(P, prep_loc(s, "values"), "value %d ('%s') of concat does not match "
                        "the first in rank, dtype or a dimension other than the axis", k, b->name);
    dims[axis] += b->dims[axis];
  }
  s->axis = (int)axis;
  return prep_out(P, s, 0, a->is_int, a->rank, dims);
}

// outer x axis x inner blocks: the element counts around `axis`.
static void around_axis(const Buf *b, int axis, int64_t *outer, int64_t *inner) {
  *outer = rt_numel(axis, b->dims);
  *inner = rt_numel(b->rank - axis - 1, b->dims + axis + 1);
}

static bool run_concat(Exec *e, const Step *s, RtDiag *d) {
  (void)d;
  const Buf *o = step_out(e, s, 0);
  int64_t outer, inner, done = 0, oa = o->dims[s->axis];
  around_axis(o, s->axis, &outer, &inner);
  inner *= s->esize; // bytes from here on
  for (int k = 0; k < s->nin; k++) {
    const char *x = s->iv[k];
    int64_t a = step_in(e, s, k)->dims[s->axis];
    for (int64_t i = 0; i < outer; i++) {
      char *dst = (char *)s->ov[0] + i * oa * inner;
      if (!s->interleave)
        memcpy(dst + done * inner, x + i * a * inner, (size_t)(a * inner));
      else
        for (int64_t j = 0; j < a; j++)
          memcpy(dst + (j * s->nin + k) * inner, x + (i * a + j) * inner, (size_t)inner);
    }
    done += a;
  }
  return true;
}

static bool prep_split(Prep *P, Step *s) {
  int64_t axis, num, sizes[64];
  if (!prep_in(P, s, "x", true) || !prep_int(P, s, "axis", 0, &axis) ||
      !prep_int(P, s, "num_splits", 0, &num))
    return false;
  const Buf *x = prep_buf(P, s->in[0]);
  int ns = prep_ints(P, s, "split_sizes", sizes, 64);
  if (ns == -2 || !norm_axis(P, s, "axis", &axis, x->rank))
    return false;
  int64_t dim = x->dims[axis], total = 0;
  if (ns == -1 && (num != s->nout || num <= 0 || dim % num))
    return prep_error(P, s->op->loc, "split needs 'num_splits' = %d dividing %lld, or "
                      "'split_sizes'", s->nout, (long long)dim);
  if (ns != -1 && ns != s->nout)
    return prep_error(P, prep_loc(s, "split_sizes"), "split has %d outputs but %d sizes",
                      s->nout, ns);
  for (int k = 0; k < s->nout; k++) {
    int64_t dims[MIL_MAX_RANK];
    memcpy(dims, x->dims, sizeof dims);
    dims[axis] = ns == -1 ? dim / num : sizes[k];
    if (dims[axis] < 0)
      return prep_error(P, prep_loc(s, "split_sizes"), "negative split size");
    if (!prep_out(P, s, k, x->is_int, x->rank, dims))
      return false;
    total += dims[axis];
  }
  s->axis = (int)axis;
  return total == dim || prep_error(P, s->op->loc, "split sizes add up to %lld, not %lld",
                                    (long long)total, (long long)dim);
}

static bool run_split(Exec *e, const Step *s, RtDiag *d) {
  (void)d;
  const Buf *x = step_in(e, s, 0);
  int64_t outer, inner, done = 0, xa = x->dims[s->axis];
  around_axis(x, s->axis, &outer, &inner);
  inner *= s->esize; // bytes from here on
  for (int k = 0; k < s->nout; k++) {
    int64_t a = step_out(e, s, k)->dims[s->axis];
    for (int64_t i = 0; i < outer; i++)
      memcpy((char *)s->ov[k] + i * a * inner, (const char *)s->iv[0] + (i * xa + done) * inner,
             (size_t)(a * inner));
    done += a;
  }
  return true;
}

// gather(x, indices, axis): negative indices count from the end (CPU
// semantics); an index out of range is an error of the run.
static bool prep_gather(Prep *P, Step *s) {
  int64_t axis, batch;
  if (!prep_in(P, s, "x", true) || !prep_in(P, s, "indices", true) ||
      !prep_int(P, s, "axis", 0, &axis) || !prep_int(P, s, "batch_dims", 0, &batch))
    return false;
  const Buf *x = prep_buf(P, s->in[0]), *ix = prep_buf(P, s->in[1]);
  if (batch != 0)
    return prep_error(P, prep_loc(s, "batch_dims"), "gather with batch_dims is not supported");
  if (!ix->is_int)
    return prep_error(P, prep_loc(s, "indices"), "'indices' of gather must be integers");
  if (!norm_axis(P, s, "axis", &axis, x->rank) || x->rank + ix->rank - 1 > MIL_MAX_RANK)
    return prep_error(P, s->op->loc, "gather result has too many dimensions");
  int64_t dims[MIL_MAX_RANK];
  int r = 0;
  for (int i = 0; i < x->rank; i++)
    if (i != axis)
      dims[r++] = x->dims[i];
    else
      for (int j = 0; j < ix->rank; j++)
        dims[r++] = ix->dims[j];
  s->axis = (int)axis;
  return prep_out(P, s, 0, x->is_int, r, dims);
}

static bool run_gather(Exec *e, const Step *s, RtDiag *d) {
  const Buf *x = step_in(e, s, 0), *ix = step_in(e, s, 1);
  const int32_t *idx = s->iv[1];
  int64_t outer, inner, a = x->dims[s->axis];
  around_axis(x, s->axis, &outer, &inner);
  for (int64_t t = 0; t < ix->count; t++)
    if (idx[t] < -a || idx[t] >= a) {
      exec_error_at(e, d, s->op->loc, "gather index %d is out of range for an axis of %lld",
                    idx[t], (long long)a);
      return false;
    }
  for (int64_t i = 0; i < outer; i++)
    for (int64_t t = 0; t < ix->count; t++) {
      int64_t j = idx[t] < 0 ? idx[t] + a : idx[t];
      memcpy((uint32_t *)s->ov[0] + (i * ix->count + t) * inner,
             (const uint32_t *)s->iv[0] + (i * a + j) * inner, (size_t)inner * 4);
    }
  return true;
}

// cast(x, dtype): floats to integers truncate toward zero; to bool: != 0.
// Floating results are stored at the executor's precision.
static bool prep_cast(Prep *P, Step *s) {
  const char *name;
  if (!prep_in(P, s, "x", true) || !prep_string(P, s, "dtype", NULL, &name))
    return false;
  int t = name ? mil_dtype_lookup(name) : -1;
  if (t != MIL_FP16 && t != MIL_FP32 && t != MIL_INT32 && t != MIL_BOOL)
    return prep_error(P, prep_loc(s, "dtype"), "cast to '%s' is not supported (fp16, fp32, "
                      "int32, bool)", name ? name : "?");
  s->mode = t;
  return prep_same_shape_out(P, s, t == MIL_INT32 || t == MIL_BOOL);
}

// Truncation toward zero, saturating; NaN gives 0.
static int32_t float_to_int(float f) {
  if (isnan(f))
    return 0;
  return (int32_t)fmaxf(fminf(f, 2147483520.0f), -2147483648.0f);
}

static bool run_cast(Exec *e, const Step *s, RtDiag *d) {
  (void)d;
  const Buf *x = step_in(e, s, 0);
  int64_t n = x->count;
  const float *xf = s->iv[0];
  const int32_t *xi = s->iv[0];
  float *of = s->ov[0];
  int32_t *oi = s->ov[0];
  for (int64_t i = 0; i < n; i++) {
    if (s->mode == MIL_BOOL)
      oi[i] = x->is_int ? xi[i] != 0 : xf[i] != 0.0f;
    else if (s->mode == MIL_INT32)
      oi[i] = x->is_int ? xi[i] : float_to_int(xf[i]);
    else
      of[i] = x->is_int ? (float)xi[i] : xf[i];
  }
  return true;
}

// band_part(x, lower, upper): keeps element (m, n) of each matrix (the last
// two axes) when m - n <= lower and n - m <= upper; -1 keeps that side.
static bool prep_band_part(Prep *P, Step *s) {
  if (!prep_in(P, s, "x", true) || !prep_int(P, s, "lower", -1, &s->lower) ||
      !prep_int(P, s, "upper", -1, &s->upper))
    return false;
  if (prep_buf(P, s->in[0])->rank < 2)
    return prep_error(P, s->op->loc, "band_part needs a tensor of rank 2 or more");
  return prep_same_shape_out(P, s, prep_buf(P, s->in[0])->is_int);
}

static bool run_band_part(Exec *e, const Step *s, RtDiag *d) {
  (void)d;
  const Buf *x = step_in(e, s, 0);
  int64_t M = x->dims[x->rank - 2], N = x->dims[x->rank - 1];
  const uint32_t *in = s->iv[0];
  uint32_t *o = s->ov[0];
  for (int64_t i = 0; i < x->count; i++) {
    int64_t m = i / N % M, n = i % N;
    bool keep = (s->lower < 0 || m - n <= s->lower) && (s->upper < 0 || n - m <= s->upper);
    o[i] = keep ? in[i] : 0; // the bits of 0.0f and of int 0
  }
  return true;
}

//
// Matrix products: matmul, linear, conv, scaled_dot_product_attention
//

// A matmul operand as a batch of matrices: rank-1 x is [1, K], rank-1 y [K, 1].
static void as_matrix(const Buf *b, bool is_y, int64_t *rows, int64_t *cols) {
  if (b->rank == 1) {
    *rows = is_y ? b->dims[0] : 1;
    *cols = is_y ? 1 : b->dims[0];
    return;
  }
  *rows = b->dims[b->rank - 2];
  *cols = b->dims[b->rank - 1];
}

static bool prep_matmul(Prep *P, Step *s) {
  if (!prep_in(P, s, "x", true) || !prep_in(P, s, "y", true) || !need_float(P, s, 0, "x") ||
      !need_float(P, s, 1, "y") || !prep_bool(P, s, "transpose_x", false, &s->transpose_x) ||
      !prep_bool(P, s, "transpose_y", false, &s->transpose_y))
    return false;
  const Buf *x = prep_buf(P, s->in[0]), *y = prep_buf(P, s->in[1]);
  if (x->rank < 1 || y->rank < 1)
    return prep_error(P, s->op->loc, "matmul needs tensors of rank 1 or more");
  int64_t xr, xc, yr, yc;
  as_matrix(x, false, &xr, &xc);
  as_matrix(y, true, &yr, &yc);
  bool tx = s->transpose_x && x->rank > 1, ty = s->transpose_y && y->rank > 1;
  int64_t m = tx ? xc : xr, k = tx ? xr : xc, k2 = ty ? yc : yr, n = ty ? yr : yc;
  if (k != k2)
    return prep_error(P, s->op->loc, "matmul: x has %lld columns, y %lld rows", (long long)k,
                      (long long)k2);
  Buf bx = *x, by = *y; // the batch dims, broadcast
  bx.rank = x->rank > 2 ? x->rank - 2 : 0;
  by.rank = y->rank > 2 ? y->rank - 2 : 0;
  const Buf *b[2] = {&bx, &by};
  int rank;
  int64_t dims[MIL_MAX_RANK], mk[3] = {m, n, k};
  if (!bcast_shape(P, s, b, 2, &rank, dims) || !fits_blas(P, s, mk, 3))
    return false;
  if (x->rank > 1)
    dims[rank++] = m;
  if (y->rank > 1)
    dims[rank++] = n;
  return prep_out(P, s, 0, false, rank, dims);
}

// A matmul step as a batch of products: op(x) [m, k] · op(y) [k, n], the
// leading dims of x and y, and the batch (nb products over the output's
// first br dims, x and y broadcast to them by strides sx, sy).
typedef struct MatBatch {
  bool tx, ty;
  int64_t m, n, k, ldx, ldy, nb;
  int br;
  const int64_t *dims; // the output's
  int64_t sx[MIL_MAX_RANK], sy[MIL_MAX_RANK];
} MatBatch;

static void mat_batch(const Exec *e, const Step *s, MatBatch *mb) {
  const Buf *x = step_in(e, s, 0), *y = step_in(e, s, 1), *o = step_out(e, s, 0);
  int64_t xr, yr;
  as_matrix(x, false, &xr, &mb->ldx);
  as_matrix(y, true, &yr, &mb->ldy);
  mb->tx = s->transpose_x && x->rank > 1, mb->ty = s->transpose_y && y->rank > 1;
  mb->m = mb->tx ? mb->ldx : xr, mb->k = mb->tx ? xr : mb->ldx, mb->n = mb->ty ? yr : mb->ldy;
  mb->br = o->rank - (x->rank > 1) - (y->rank > 1);
  mb->dims = o->dims;
  mb->nb = rt_numel(mb->br, o->dims);
  bcast_strides(x, x->rank > 1 ? 2 : 1, mb->br, o->dims, xr * mb->ldx, mb->sx);
  bcast_strides(y, y->rank > 1 ? 2 : 1, mb->br, o->dims, yr * mb->ldy, mb->sy);
}

// Product b's element offsets into x, y and the output.
static void mat_offsets(const MatBatch *mb, int64_t b, int64_t off[3]) {
  off[0] = dims_offset(b, mb->br, mb->dims, mb->sx);
  off[1] = dims_offset(b, mb->br, mb->dims, mb->sy);
  off[2] = b * mb->m * mb->n;
}

static bool run_matmul(Exec *e, const Step *s, RtDiag *d) {
  (void)d;
  const Buf *x = step_in(e, s, 0), *y = step_in(e, s, 1);
  MatBatch mb;
  mat_batch(e, s, &mb);
  const float *xv = s->iv[0], *yv = s->iv[1];
  float *ov = s->ov[0];
  int64_t m = mb.m, n = mb.n, k = mb.k, nb = mb.nb;
  bool y_shared = rt_numel(y->rank - 2 > 0 ? y->rank - 2 : 0, y->dims) == 1;
  if (nb > 1 && y_shared && !mb.tx && x->count == nb * m * k) { // one product for every batch
    rt_sgemm(false, mb.ty, nb * m, n, k, 1, xv, mb.ldx, yv, mb.ldy, 0, ov, n);
    return true;
  }
  int64_t *off = exec_scratch(e, (size_t)(3 * nb) * sizeof *off); // of x, y and out
  for (int64_t b = 0; b < nb; b++) {
    int64_t o[3];
    mat_offsets(&mb, b, o);
    off[b] = o[0], off[nb + b] = o[1], off[2 * nb + b] = o[2];
  }
  rt_sgemm_batch(nb, off, off + nb, off + 2 * nb, mb.tx, mb.ty, m, n, k, 1, xv, mb.ldx, yv,
                 mb.ldy, 0, ov, n);
  return true;
}

//
// Fused attention (exec_fuse): scores = matmul(q, k), the row softmax with
// its prologue (scale, mask), out = matmul(probabilities, v), head by head.
// A head's scores stay in the cache between the three, as fp32; each value
// is rounded to fp16 where the unfused ops store it (and under the ANE
// quirks saturated where they would saturate), so the numbers are theirs.
//

bool exec_attention_fits(const Exec *e, const Step *qk, const Step *sm, const Step *pv) {
  const Buf *q = step_in(e, qk, 0), *k = step_in(e, qk, 1), *sc = step_out(e, qk, 0);
  const Buf *p = step_out(e, sm, 0), *v = step_in(e, pv, 1), *o = step_out(e, pv, 0);
  int r = sc->rank;
  if (q->rank < 2 || k->rank < 2 || v->rank < 2 || r < 3 || p->rank != r || o->rank != r ||
      memcmp(p->dims, sc->dims, (size_t)r * 8) || memcmp(o->dims, p->dims, (size_t)(r - 2) * 8))
    return false;
  return rt_numel(r - 2, sc->dims) >= rt_threads(); // a head for every thread
}

typedef struct Attention {
  const Exec *e;
  const Step *sm;          // the softmax, its prologue operands as fp32 views
  const void *q, *k, *v;   // as stored: [..., m, kd], [..., n, kd] (as the flags read), [..., n, ev]
  void *out;               // as stored: [..., m, ev]
  void *probs;             // as stored, [..., m, n]; NULL when only the product reads them
  MatBatch qk, pv;
  int64_t lanes, lane_floats;
  float *buf;              // per lane: scores [m, n], softmax row buffers; fp16: q k v out
} Attention;

// A head's operand as fp32: widened into `to` when stored as fp16.
static const float *head_in(const Attention *a, const void *base, int64_t off, int64_t n,
                            float *to) {
  if (!exec_is_fp16(a->e))
    return (const float *)base + off;
  fp16_to_f32_n((const uint16_t *)base + off, to, (size_t)n);
  return to;
}

static void attention_head(const Attention *a, int64_t b, float *lane) {
  int64_t m = a->qk.m, n = a->qk.n, kd = a->qk.k, ev = a->pv.n, off[3];
  float *sc = lane, *row = sc + m * n, *tmp = row + n, *io = tmp + 2 * n;
  mat_offsets(&a->qk, b, off);
  const float *q = head_in(a, a->q, off[0], m * kd, io);
  const float *k = head_in(a, a->k, off[1], n * kd, io + m * kd);
  rt_sgemm(a->qk.tx, a->qk.ty, m, n, kd, 1, q, a->qk.ldx, k, a->qk.ldy, 0, sc, n); // [m, n]
  bool quirks = exec_ane_quirks(a->e);
  if (quirks) // as the unfused matmul stores its scores
    exec_saturate(sc, m * n);
  for (int64_t r = 0; r < m; r++) // probabilities in place, rounded where stores would round
    softmax_last_axis_row(a->e, a->sm, b * m + r, sc + r * n, sc + r * n, true, row, tmp,
                          (uint16_t *)(tmp + n));
  if (a->probs) // also read elsewhere: stored
    store_f32(a->e, sc, a->probs, b * m * n, m * n);
  mat_offsets(&a->pv, b, off);
  const float *v = head_in(a, a->v, off[1], n * ev, io);
  bool fp16 = exec_is_fp16(a->e);
  float *y = fp16 ? io + n * ev : (float *)a->out + off[2];
  rt_sgemm(false, a->pv.ty, m, ev, n, 1, sc, n, v, a->pv.ldy, 0, y, ev); // [m, ev]
  if (quirks)
    exec_saturate(y, m * ev);
  if (fp16) // fp32 wrote the storage itself
    store_f32(a->e, y, a->out, off[2], m * ev);
}

// Lane l computes heads l, l + lanes, ... in its own buffers.
static void attention_lane(void *ctx, int64_t lane) {
  const Attention *a = ctx;
  for (int64_t b = lane; b < a->qk.nb; b += a->lanes)
    attention_head(a, b, a->buf + lane * a->lane_floats);
}

// in: q, k, the softmax's prologue operands, v; out: the product, and the
// probabilities when they are read elsewhere; all as stored (stored_all).
// s->parts: the first matmul, the softmax, the second matmul.
static bool run_attention(Exec *e, const Step *s, RtDiag *d) {
  (void)d;
  const Step *parts = s->parts;
  int np = parts[1].nprologue;
  const void *smv[3] = {NULL};
  for (int j = 0; j < np; j++)
    smv[1 + j] = exec_view(e, step_in(e, s, 2 + j));
  Step sm = parts[1];
  sm.iv = smv;
  Attention a = {.e = e, .sm = &sm, .q = s->iv[0], .k = s->iv[1], .v = s->iv[2 + np],
                 .out = s->ov[0], .probs = s->nout > 1 ? s->ov[1] : NULL};
  mat_batch(e, &parts[0], &a.qk);
  mat_batch(e, &parts[2], &a.pv);
  int64_t m = a.qk.m, n = a.qk.n, kd = a.qk.k, ev = a.pv.n, mn = m * n;
  int64_t qk_io = (m + n) * kd, pv_io = (n + m) * ev; // fp16: a head's q and k, then v and out
  int64_t io = !exec_is_fp16(e) ? 0 : qk_io > pv_io ? qk_io : pv_io;
  a.lanes = a.qk.nb < rt_threads() ? a.qk.nb : rt_threads();
  a.lane_floats = (mn + 3 * n + io + 16) / 16 * 16; // 64-byte lanes
  a.buf = exec_scratch(e, (size_t)(a.lanes * a.lane_floats) * 4);
  rt_parallel_blas(a.lanes, attention_lane, &a);
  return true;
}

// Not `saturates`: it saturates its own two products (attention_head).
const OpDef exec_attention_def = {"attention", 0, NULL, run_attention, false, false};

// linear(x, weight[N, K], bias[N]): x[..., K] -> [..., N].
static bool prep_linear(Prep *P, Step *s) {
  if (!prep_in(P, s, "x", true) || !prep_in(P, s, "weight", true) ||
      !prep_in(P, s, "bias", false) || !need_float(P, s, 0, "x") ||
      !need_float(P, s, 1, "weight"))
    return false;
  const Buf *x = prep_buf(P, s->in[0]), *w = prep_buf(P, s->in[1]);
  const Buf *b = s->in[2] >= 0 ? prep_buf(P, s->in[2]) : NULL;
  if (x->rank < 1 || w->rank != 2 || w->dims[1] != x->dims[x->rank - 1] ||
      (b && b->count != w->dims[0]))
    return prep_error(P, s->op->loc, "linear needs x[..., K], weight[N, K] and bias[N]");
  int64_t dims[MIL_MAX_RANK];
  memcpy(dims, x->dims, sizeof dims);
  dims[x->rank - 1] = w->dims[0];
  return fits_blas(P, s, w->dims, 2) && prep_out(P, s, 0, false, x->rank, dims);
}

static void add_bias_rows(float *o, int64_t rows, int64_t n, const float *bias, bool per_row) {
  for (int64_t r = 0; bias && r < rows; r++)
    for (int64_t i = 0; i < n; i++)
      o[r * n + i] += per_row ? bias[r] : bias[i];
}

static bool run_linear(Exec *e, const Step *s, RtDiag *d) {
  (void)d;
  const Buf *w = step_in(e, s, 1);
  int64_t n = w->dims[0], k = w->dims[1], m = step_in(e, s, 0)->count / (k ? k : 1);
  rt_sgemm(false, true, m, n, k, 1, s->iv[0], k, s->iv[1], k, 0, s->ov[0], n);
  add_bias_rows(s->ov[0], m, n, s->iv[2], false);
  return true;
}

// conv(x[N, C, (H,) W], weight[O, C/groups, (kh,) kw], bias[O]): pad_type
// valid, custom (pad = [top, bottom, left, right]), same (extra padding at
// the end), same_lower (at the start). A 1-d conv is a 2-d one with H = 1.
static bool conv_pads(Prep *P, Step *s, int ns, const int64_t *in, const int64_t *k) {
  const char *pt;
  int64_t pad[4] = {0};
  if (!prep_string(P, s, "pad_type", "valid", &pt))
    return false;
  if (!strcmp(pt, "custom")) {
    int n = prep_ints(P, s, "pad", pad, 4);
    if (n != 2 * ns)
      return n == -2 ? false : prep_error(P, prep_loc(s, "pad"), "'pad' must have %d entries",
                                          2 * ns);
  } else if (!strcmp(pt, "same") || !strcmp(pt, "same_lower")) {
    for (int i = 0; i < ns; i++) {
      int64_t st = s->strides[2 - ns + i], out = (in[i] + st - 1) / st;
      int64_t eff = (k[i] - 1) * s->dilations[2 - ns + i] + 1;
      int64_t total = (out - 1) * st + eff - in[i];
      total = total > 0 ? total : 0;
      pad[2 * i] = pt[4] ? (total + 1) / 2 : total / 2;
      pad[2 * i + 1] = total - pad[2 * i];
    }
  } else if (strcmp(pt, "valid")) {
    return prep_error(P, prep_loc(s, "pad_type"), "unknown pad_type \"%s\" (valid, custom, "
                      "same, same_lower)", pt);
  }
  for (int i = 0; i < 2 * ns; i++)
    s->pads[4 - 2 * ns + i] = pad[i];
  return true;
}

static bool conv_params(Prep *P, Step *s, int ns, const Buf *x, const Buf *w) {
  int64_t v[2];
  s->strides[0] = s->strides[1] = s->dilations[0] = s->dilations[1] = 1;
  for (int k = 0; k < 2; k++) {
    const char *name = k ? "dilations" : "strides";
    int64_t *dst = k ? s->dilations : s->strides;
    int n = prep_ints(P, s, name, v, 2);
    if (n == -2 || (n != -1 && n != ns))
      return n == -2 ? false : prep_error(P, prep_loc(s, name), "'%s' must have %d entries",
                                          name, ns);
    for (int i = 0; i < n; i++)
      if ((dst[2 - ns + i] = v[i]) < 1)
        return prep_error(P, prep_loc(s, name), "'%s' must be positive", name);
  }
  if (!prep_int(P, s, "groups", 1, &s->groups))
    return false;
  if (s->groups < 1 || x->dims[1] % s->groups || w->dims[0] % s->groups ||
      w->dims[1] * s->groups != x->dims[1])
    return prep_error(P, s->op->loc, "conv: %lld input channels, weight %lld x %lld, groups %lld "
                      "do not fit", (long long)x->dims[1], (long long)w->dims[0],
                      (long long)w->dims[1], (long long)s->groups);
  return conv_pads(P, s, ns, x->dims + 2, w->dims + 2);
}

static bool prep_conv(Prep *P, Step *s) {
  if (!prep_in(P, s, "x", true) || !prep_in(P, s, "weight", true) ||
      !prep_in(P, s, "bias", false) || !need_float(P, s, 0, "x") ||
      !need_float(P, s, 1, "weight"))
    return false;
  const Buf *x = prep_buf(P, s->in[0]), *w = prep_buf(P, s->in[1]);
  const Buf *b = s->in[2] >= 0 ? prep_buf(P, s->in[2]) : NULL;
  if ((x->rank != 3 && x->rank != 4) || w->rank != x->rank)
    return prep_error(P, s->op->loc, "conv needs x and weight of rank 3 or 4 (1-d or 2-d)");
  if (b && (b->rank != 1 || b->count != w->dims[0]))
    return prep_error(P, prep_loc(s, "bias"), "'bias' must be [%lld]", (long long)w->dims[0]);
  int ns = x->rank - 2;
  if (!conv_params(P, s, ns, x, w))
    return false;
  int64_t dims[4] = {x->dims[0], w->dims[0]};
  for (int i = 0; i < ns; i++) {
    int j = 2 - ns + i;
    int64_t eff = (w->dims[2 + i] - 1) * s->dilations[j] + 1;
    int64_t span = x->dims[2 + i] + s->pads[2 * j] + s->pads[2 * j + 1] - eff;
    if (span < 0)
      return prep_error(P, s->op->loc, "conv: the kernel is larger than the padded input");
    dims[2 + i] = span / s->strides[j] + 1;
  }
  int64_t big[2] = {x->dims[1] * rt_numel(ns, w->dims + 2), rt_numel(ns, dims + 2)};
  return fits_blas(P, s, big, 2) && prep_out(P, s, 0, false, x->rank, dims);
}

typedef struct ConvGeom {
  int64_t h, w, kh, kw, oh, ow;
} ConvGeom;

// The columns of one group: row (c, i, j) holds input channel c shifted by
// kernel tap (i, j) at every output position; zeros in the padding.
static void im2col(const Step *s, const ConvGeom *g, int64_t cg, const float *x, float *col) {
  for (int64_t c = 0; c < cg; c++)
    for (int64_t i = 0; i < g->kh; i++)
      for (int64_t j = 0; j < g->kw; j++) {
        float *row = col + ((c * g->kh + i) * g->kw + j) * g->oh * g->ow;
        for (int64_t oy = 0; oy < g->oh; oy++) {
          int64_t iy = oy * s->strides[0] - s->pads[0] + i * s->dilations[0];
          for (int64_t ox = 0; ox < g->ow; ox++) {
            int64_t ix = ox * s->strides[1] - s->pads[2] + j * s->dilations[1];
            bool in = iy >= 0 && iy < g->h && ix >= 0 && ix < g->w;
            row[oy * g->ow + ox] = in ? x[(c * g->h + iy) * g->w + ix] : 0.0f;
          }
        }
      }
}

static bool run_conv(Exec *e, const Step *s, RtDiag *d) {
  (void)d;
  const Buf *x = step_in(e, s, 0), *w = step_in(e, s, 1), *o = step_out(e, s, 0);
  bool two = x->rank == 4;
  ConvGeom g = {two ? x->dims[2] : 1, x->dims[x->rank - 1], two ? w->dims[2] : 1,
                w->dims[w->rank - 1], two ? o->dims[2] : 1, o->dims[o->rank - 1]};
  int64_t n = x->dims[0], c = x->dims[1], oc = w->dims[0], grp = s->groups;
  int64_t cg = c / grp, og = oc / grp, kdim = cg * g.kh * g.kw, pix = g.oh * g.ow;
  bool direct = g.kh == 1 && g.kw == 1 && s->strides[0] == 1 && s->strides[1] == 1 &&
                !s->pads[0] && !s->pads[1] && !s->pads[2] && !s->pads[3];
  float *col = direct ? NULL : exec_scratch(e, (size_t)(kdim * pix) * 4);
  const float *xv = s->iv[0], *wv = s->iv[1];
  float *ov = s->ov[0];
  for (int64_t b = 0; b < n; b++)
    for (int64_t gi = 0; gi < grp; gi++) {
      const float *xg = xv + (b * c + gi * cg) * g.h * g.w;
      if (!direct)
        im2col(s, &g, cg, xg, col);
      rt_sgemm(false, false, og, pix, kdim, 1, wv + gi * og * kdim, kdim, direct ? xg : col, pix,
            0, ov + (b * oc + gi * og) * pix, pix);
    }
  for (int64_t b = 0; b < n; b++)
    add_bias_rows(ov + b * oc * pix, oc, pix, s->iv[2], true);
  return true;
}

// scaled_dot_product_attention(query[..., L, E], key[..., S, E],
// value[..., S, Ev], attn_mask[..., L, S]): softmax(q kᵀ / sqrt(E) + mask) v;
// a bool mask keeps where true (false is -inf), a float mask is added.
static bool prep_sdpa(Prep *P, Step *s) {
  if (!prep_in(P, s, "query", true) || !prep_in(P, s, "key", true) ||
      !prep_in(P, s, "value", true) || !prep_in(P, s, "attn_mask", false))
    return false;
  const Buf *q = prep_buf(P, s->in[0]), *k = prep_buf(P, s->in[1]), *v = prep_buf(P, s->in[2]);
  int r = q->rank;
  bool ok = r >= 2 && k->rank == r && v->rank == r && !q->is_int && !k->is_int && !v->is_int &&
            k->dims[r - 1] == q->dims[r - 1] && v->dims[r - 2] == k->dims[r - 2];
  for (int i = 0; ok && i < r - 2; i++)
    ok = k->dims[i] == q->dims[i] && v->dims[i] == q->dims[i];
  if (!ok)
    return prep_error(P, s->op->loc, "scaled_dot_product_attention needs floating query[..., L, "
                      "E], key[..., S, E], value[..., S, Ev] with the same batch dims");
  Buf scores = *q;
  scores.dims[r - 1] = k->dims[r - 2];
  const Buf *b[2] = {&scores, s->in[3] >= 0 ? prep_buf(P, s->in[3]) : &scores};
  int rank;
  int64_t dims[MIL_MAX_RANK], big[3] = {q->dims[r - 2], k->dims[r - 2], v->dims[r - 1]};
  if (!bcast_shape(P, s, b, 2, &rank, dims) || !fits_blas(P, s, big, 3))
    return false;
  if (rank != r || memcmp(dims, scores.dims, (size_t)r * 8))
    return prep_error(P, prep_loc(s, "attn_mask"), "'attn_mask' must broadcast to the scores");
  memcpy(dims, q->dims, sizeof dims);
  dims[r - 1] = v->dims[r - 1];
  return prep_out(P, s, 0, false, r, dims);
}

// Adds the mask's rows for batch b to the scores [L, S].
static void add_mask(const Buf *m, const void *mv, const int64_t *dims, int r, int64_t b,
                     float *sc) {
  int64_t st[MIL_MAX_RANK], L = dims[r - 2], S = dims[r - 1];
  bcast_strides(m, 0, r, dims, 1, st);
  int64_t base = dims_offset(b, r - 2, dims, st);
  for (int64_t l = 0; l < L; l++)
    for (int64_t j = 0; j < S; j++) {
      int64_t at = base + l * st[r - 2] + j * st[r - 1];
      if (m->is_int)
        sc[l * S + j] = ((const int32_t *)mv)[at] ? sc[l * S + j] : -INFINITY;
      else
        sc[l * S + j] += ((const float *)mv)[at];
    }
}

static bool run_sdpa(Exec *e, const Step *s, RtDiag *d) {
  (void)d;
  const Buf *q = step_in(e, s, 0), *k = step_in(e, s, 1), *v = step_in(e, s, 2);
  const Buf *m = step_in(e, s, 3);
  int r = q->rank;
  int64_t L = q->dims[r - 2], E = q->dims[r - 1], S = k->dims[r - 2], Ev = v->dims[r - 1];
  int64_t nb = rt_numel(r - 2, q->dims), dims[MIL_MAX_RANK];
  memcpy(dims, q->dims, sizeof dims);
  dims[r - 1] = S;
  float *sc = exec_scratch(e, (size_t)(L * S) * 4), scale = 1.0f / sqrtf((float)E);
  for (int64_t b = 0; b < nb; b++) {
    rt_sgemm(false, true, L, S, E, scale, (const float *)s->iv[0] + b * L * E, E,
          (const float *)s->iv[1] + b * S * E, E, 0, sc, S);
    if (exec_ane_quirks(e)) // the first product (the frame saturates the second as it stores it)
      exec_saturate(sc, L * S);
    if (m)
      add_mask(m, s->iv[3], dims, r, b, sc);
    for (int64_t l = 0; l < L; l++)
      softmax_row(sc + l * S, S);
    rt_sgemm(false, false, L, Ev, S, 1, sc, S, (const float *)s->iv[2] + b * S * Ev, Ev, 0,
          (float *)s->ov[0] + b * L * Ev, Ev);
  }
  return true;
}

//
// The op table, sorted by name
//
static const OpDef op_defs[] = {
    {"abs", U_ABS, prep_unary, run_unary, false, false},
    {"add", B_ADD, prep_binary, run_binary, false, false},
    {"band_part", 0, prep_band_part, run_band_part, false, false},
    {"cast", 0, prep_cast, run_cast, false, false},
    {"concat", 0, prep_concat, run_concat, true, false},
    {"conv", 0, prep_conv, run_conv, false, true},
    {"erf", U_ERF, prep_unary, run_unary, false, false},
    {"exp", U_EXP, prep_unary, run_unary, false, false},
    {"gather", 0, prep_gather, run_gather, false, false},
    {"gelu", U_GELU, prep_unary, run_unary, false, false},
    {"identity", U_IDENTITY, prep_unary, run_unary, false, false},
    {"layer_norm", 0, prep_layer_norm, run_layer_norm, false, false},
    {"linear", 0, prep_linear, run_linear, false, true},
    {"log", U_LOG, prep_unary, run_unary, false, false},
    {"matmul", 0, prep_matmul, run_matmul, false, true},
    {"maximum", B_MAX, prep_binary, run_binary, false, false},
    {"minimum", B_MIN, prep_binary, run_binary, false, false},
    {"mul", B_MUL, prep_binary, run_binary, false, false},
    {"pow", B_POW, prep_binary, run_binary, false, false},
    {"real_div", B_DIV, prep_binary, run_binary, false, false},
    {"reduce_max", R_MAX, prep_reduce, run_reduce, false, false},
    {"reduce_mean", R_MEAN, prep_reduce, run_reduce, false, false},
    {"reduce_min", R_MIN, prep_reduce, run_reduce, false, false},
    {"reduce_prod", R_PROD, prep_reduce, run_reduce, false, false},
    {"reduce_sum", R_SUM, prep_reduce, run_reduce, false, false},
    {"relu", U_RELU, prep_unary, run_unary, false, false},
    {"reshape", 0, prep_reshape, run_copy, true, false},
    {"rsqrt", U_RSQRT, prep_unary, run_unary, false, false},
    {"scaled_dot_product_attention", 0, prep_sdpa, run_sdpa, false, true},
    {"select", 0, prep_select, run_select, false, false},
    {"sigmoid", U_SIGMOID, prep_unary, run_unary, false, false},
    {"silu", U_SILU, prep_unary, run_unary, false, false},
    {"slice_by_index", 0, prep_slice_by_index, run_strided, true, false},
    {"slice_by_size", 0, prep_slice_by_size, run_strided, true, false},
    {"softmax", 0, prep_softmax, run_softmax, false, false},
    {"split", 0, prep_split, run_split, true, false},
    {"sqrt", U_SQRT, prep_unary, run_unary, false, false},
    {"square", U_SQUARE, prep_unary, run_unary, false, false},
    {"sub", B_SUB, prep_binary, run_binary, false, false},
    {"tanh", U_TANH, prep_unary, run_unary, false, false},
    {"transpose", 0, prep_transpose, run_strided, true, false},
};
enum { NOPS = sizeof op_defs / sizeof *op_defs };

const OpDef *exec_op_find(const char *name) {
  for (int i = 0; i < NOPS; i++)
    if (!strcmp(op_defs[i].name, name))
      return &op_defs[i];
  return NULL;
}

void exec_op_names(char *buf, size_t cap) {
  size_t k = 0;
  buf[0] = '\0';
  for (int i = 0; i < NOPS && k < cap; i++)
    k += (size_t)snprintf(buf + k, cap - k, "%s%s", i ? ", " : "", op_defs[i].name);
}
