// fp16.c — IEEE 754 half precision: one portable, bit-exact conversion each
// way (round to nearest even, subnormals, inf, NaN kept quiet with its top
// payload bits), and bulk conversions that use F16C on x86 (checked at run
// time) or NEON on AArch64, which give the same bits.
#include "base.h"

#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define FP16_X86 1
#elif defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>
#define FP16_NEON 1
#endif

static uint32_t f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}

static float bits_f32(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

float fp16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1F, man = h & 0x3FF;
  if (exp == 0x1F) // inf, or NaN made quiet (as F16C and NEON do)
    return bits_f32(sign | 0x7F800000 | man << 13 | (man ? 0x400000 : 0));
  if (exp != 0)
    return bits_f32(sign | (exp + 112) << 23 | man << 13);
  // Subnormal or zero: man * 2^-24 is exact in fp32.
  float f = (float)man * 0x1p-24f;
  return sign ? -f : f;
}

uint16_t f32_to_fp16(float f) {
  uint32_t u = f32_bits(f);
  uint16_t sign = (uint16_t)(u >> 16 & 0x8000);
  uint32_t exp = u >> 23 & 0xFF, man = u & 0x7FFFFF;
  if (exp == 0xFF) // inf, or NaN: quiet, top payload bits kept
    return sign | 0x7C00 | (man ? 0x200 | man >> 13 : 0);
  int e = (int)exp - 127 + 15; // the half's biased exponent
  if (e >= 0x1F)
    return sign | 0x7C00;
  uint32_t m = man | 0x800000; // 24 significant bits (a zero exp gives e < -10)
  int shift = e > 0 ? 13 : 14 - e; // bits dropped from m
  if (shift > 24)
    return sign; // below half the smallest subnormal: rounds to zero
  uint32_t half = m >> shift, rest = m & ((1u << shift) - 1), mid = 1u << (shift - 1);
  if (rest > mid || (rest == mid && (half & 1)))
    half++; // a carry moves into the exponent (up to inf): that is right
  if (e > 0) // half holds the implicit bit (0x400): it adds one to e - 1
    half += (uint32_t)(e - 1) << 10;
  return sign | (uint16_t)half;
}

//
// Bulk conversions
//
#if FP16_X86
// F16C instructions are VEX-encoded: the CPU must have them and the OS must
// save AVX state. Clang's __builtin_cpu_supports has no "f16c"; every x86
// CPU with AVX2 has F16C, so clang asks for that.
static bool have_f16c(void) {
#if defined(__F16C__)
  return true;
#elif defined(__clang__)
  return __builtin_cpu_supports("avx2");
#else
  return __builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c");
#endif
}

__attribute__((target("avx,f16c"))) static size_t to_f32_f16c(const uint16_t *in, float *out,
                                                               size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(in + i))));
  return i;
}

__attribute__((target("avx,f16c"))) static size_t to_f16_f16c(const float *in, uint16_t *out,
                                                               size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128((__m128i *)(out + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT));
  return i;
}

static size_t to_f32_fast(const uint16_t *in, float *out, size_t n) {
  return have_f16c() ? to_f32_f16c(in, out, n) : 0;
}

static size_t to_f16_fast(const float *in, uint16_t *out, size_t n) {
  return have_f16c() ? to_f16_f16c(in, out, n) : 0;
}
#elif FP16_NEON
static size_t to_f32_fast(const uint16_t *in, float *out, size_t n) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4)
    vst1q_f32(out + i, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(in + i))));
  return i;
}

static size_t to_f16_fast(const float *in, uint16_t *out, size_t n) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4)
    vst1_u16(out + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(in + i))));
  return i;
}
#else
static size_t to_f32_fast(const uint16_t *in, float *out, size_t n) {
  (void)in, (void)out, (void)n;
  return 0;
}

static size_t to_f16_fast(const float *in, uint16_t *out, size_t n) {
  (void)in, (void)out, (void)n;
  return 0;
}
#endif

bool fp16_has_f16c(void) {
#if FP16_X86
  return have_f16c();
#else
  return false;
#endif
}

void fp16_to_f32_n(const uint16_t *in, float *out, size_t n) {
  for (size_t i = to_f32_fast(in, out, n); i < n; i++)
    out[i] = fp16_to_f32(in[i]);
}

void f32_to_fp16_n(const float *in, uint16_t *out, size_t n) {
  for (size_t i = to_f16_fast(in, out, n); i < n; i++)
    out[i] = f32_to_fp16(in[i]);
}
