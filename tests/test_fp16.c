// test_fp16.c — half precision conversions against references written here:
// every one of the 65536 halves, every rounding tie, its neighbours and a
// million random floats; the bulk (F16C / NEON) paths against the scalar ones.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint32_t bits_of(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}

static float float_of(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

// The value of a finite half, from its definition.
static double ref_half_value(uint16_t h) {
  int exp = h >> 10 & 0x1F, man = h & 0x3FF;
  double v = exp == 0 ? ldexp(man, -24) : ldexp(1024 + man, exp - 25);
  return h & 0x8000 ? -v : v;
}

// The half nearest to x (finite or inf, not NaN), ties to the even one,
// by binary search over the positive finite halves, which sort as integers.
static uint16_t ref_to_half(double x) {
  uint16_t sign = signbit(x) ? 0x8000 : 0;
  double a = fabs(x);
  if (a >= 65520.0) // 65504 + half an ulp: the tie goes to inf (0x7BFF is odd)
    return sign | 0x7C00;
  int lo = 0, hi = 0x7BFF; // largest half <= a lies in [lo, hi]
  while (lo < hi) {
    int mid = (lo + hi + 1) / 2;
    if (ref_half_value((uint16_t)mid) <= a)
      lo = mid;
    else
      hi = mid - 1;
  }
  if (lo == 0x7BFF)
    return sign | 0x7BFF;
  double below = a - ref_half_value((uint16_t)lo), above = ref_half_value((uint16_t)(lo + 1)) - a;
  int pick = below < above ? lo : above < below ? lo + 1 : (lo & 1 ? lo + 1 : lo);
  return sign | (uint16_t)pick;
}

static uint64_t rng_next(uint64_t *s) { // splitmix64
  uint64_t z = (*s += 0x9E3779B97F4A7C15u);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
  return z ^ (z >> 31);
}

static bool half_is_nan(uint16_t h) {
  return (h & 0x7C00) == 0x7C00 && (h & 0x3FF);
}

static void test_all_halves_to_float(void **state) {
  (void)state;
  for (uint32_t i = 0; i < 65536; i++) {
    uint16_t h = (uint16_t)i;
    float f = fp16_to_f32(h);
    if (half_is_nan(h)) {
      assert_true(isnan(f));
      assert_int_equal(bits_of(f) >> 31, h >> 15);
      assert_int_equal(bits_of(f) >> 13 & 0x3FF, (h & 0x3FF) | 0x200); // payload, made quiet
    } else if ((h & 0x7FFF) == 0x7C00) {
      assert_true(isinf(f) && (f < 0) == (h >> 15));
    } else {
      assert_true((double)f == ref_half_value(h));
      assert_int_equal(signbit(f) != 0, h >> 15);
    }
  }
}

static void test_all_halves_round_trip(void **state) {
  (void)state;
  for (uint32_t i = 0; i < 65536; i++) {
    uint16_t h = (uint16_t)i, back = f32_to_fp16(fp16_to_f32(h));
    if (half_is_nan(h))
      assert_int_equal(back, h | 0x200); // quiet NaN, same sign and payload
    else
      assert_int_equal(back, h);
  }
}

// Floats that matter for rounding: every tie between neighbouring halves
// (exact in fp32) and both of its float neighbours, the overflow edge, the
// subnormal edges, specials, and random bit patterns.
static float *make_cases(size_t *n) {
  size_t cap = 4 * 65536 + 1000064, k = 0;
  float *v = malloc(cap * sizeof *v);
  assert_non_null(v);
  for (int h = 0; h < 0x7BFF; h++) {
    float mid = (float)((ref_half_value((uint16_t)h) + ref_half_value((uint16_t)(h + 1))) / 2);
    v[k++] = mid;
    v[k++] = nextafterf(mid, 0);
    v[k++] = -nextafterf(mid, INFINITY);
  }
  const float special[] = {0.0f, -0.0f, 65504.0f, 65519.99f, 65520.0f, 65536.0f, 1e30f,
                           0x1p-24f, 0x1p-25f, 0x1.000002p-25f, 0x1p-26f, 0x1p-14f, 1e-45f,
                           0x1.8p-24f, 0x1.4p-24f, INFINITY, -INFINITY, 1.0f, -2.5f, 3.14159f};
  for (size_t i = 0; i < sizeof special / sizeof *special; i++) {
    v[k++] = special[i];
    v[k++] = -special[i];
  }
  uint64_t s = 42;
  for (int i = 0; i < 1000000; i++) {
    uint32_t u = (uint32_t)rng_next(&s);
    if (i & 1) // half the cases in the range where halves live
      u = (u & 0x807FFFFF) | (uint32_t)(100 + (u >> 23) % 50) << 23;
    v[k++] = float_of(u);
  }
  *n = k;
  return v;
}

static void test_float_to_half_reference(void **state) {
  (void)state;
  size_t n;
  float *v = make_cases(&n);
  for (size_t i = 0; i < n; i++) {
    uint16_t got = f32_to_fp16(v[i]);
    if (isnan(v[i])) {
      assert_true(half_is_nan(got) && (got & 0x200));
      assert_int_equal(got >> 15, bits_of(v[i]) >> 31);
      continue;
    }
    uint16_t want = ref_to_half(v[i]);
    if (got != want)
      fail_msg("f32_to_fp16(%a) = 0x%04x, want 0x%04x", (double)v[i], got, want);
  }
  free(v);
}

// The bulk conversions (F16C or NEON where the CPU has them) agree with the
// scalar ones bit for bit, including at odd lengths and unaligned starts.
static void test_bulk_matches_scalar(void **state) {
  (void)state;
  uint16_t *h = malloc(65536 * sizeof *h), *h2 = malloc(65536 * sizeof *h2);
  float *f = malloc(65536 * sizeof *f);
  for (uint32_t i = 0; i < 65536; i++)
    h[i] = (uint16_t)i;
  fp16_to_f32_n(h + 3, f + 1, 65533);
  for (uint32_t i = 0; i < 65533; i++)
    assert_int_equal(bits_of(f[i + 1]), bits_of(fp16_to_f32(h[i + 3])));
  size_t n;
  float *v = make_cases(&n);
  uint16_t *out = malloc(n * sizeof *out);
  for (size_t start = 0; start < 3; start++) {
    f32_to_fp16_n(v + start, out, n - start - start % 2);
    for (size_t i = 0; i < n - start - start % 2; i++)
      assert_int_equal(out[i], f32_to_fp16(v[start + i]));
  }
  for (size_t len = 0; len < 20; len++) { // short tails
    f32_to_fp16_n(v, h2, len);
    fp16_to_f32_n(h2, f, len);
    for (size_t i = 0; i < len; i++)
      assert_int_equal(bits_of(f[i]), bits_of(fp16_to_f32(f32_to_fp16(v[i]))));
  }
  free(v), free(out), free(h), free(h2), free(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_all_halves_to_float),
      cmocka_unit_test(test_all_halves_round_trip),
      cmocka_unit_test(test_float_to_half_reference),
      cmocka_unit_test(test_bulk_matches_scalar),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
