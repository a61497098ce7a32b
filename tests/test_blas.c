// test_blas.c — runtime/blas.c: rt_sgemm and rt_sgemm_batch against a
// double-precision product written out here, on every transpose pair, shapes
// that split over the pool (odd sizes, blocks not a multiple of 16) and ones
// that do not, alpha and beta, strided leading dimensions and batch offsets.
// Tolerance: 1e-5 relative to the sum of |terms|, next to one plain BLAS call
// within the same tolerance. A product run twice gives the same bits (its
// blocks are fixed by the shape, whichever thread runs them).
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__APPLE__)
#include <Accelerate/Accelerate.h>
#else
#include <cblas.h>
#endif

static void fill(float *v, int64_t n, uint64_t seed) {
  for (int64_t i = 0; i < n; i++) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    v[i] = (float)((double)(seed >> 11) * 0x1p-53 - 0.5) + 0.01f;
  }
}

typedef struct Shape {
  bool ta, tb;
  int64_t m, n, k, lda, ldb, ldc;
  float alpha, beta;
} Shape;

// op(A)[i, p] and op(B)[p, j] of row-major A, B.
static double at(const float *a, bool t, int64_t ld, int64_t i, int64_t p) {
  return t ? a[p * ld + i] : a[i * ld + p];
}

// Checks c against alpha op(A) op(B) + beta c0 in double; returns the max
// relative error.
static double check_product(const Shape *s, const float *a, const float *b, const float *c0,
                            const float *c) {
  double worst = 0;
  for (int64_t i = 0; i < s->m; i++)
    for (int64_t j = 0; j < s->n; j++) {
      double sum = 0, mag = 0;
      for (int64_t p = 0; p < s->k; p++) {
        double t = at(a, s->ta, s->lda, i, p) * at(b, !s->tb, s->ldb, j, p);
        sum += t, mag += fabs(t);
      }
      double want = s->alpha * sum + s->beta * c0[i * s->ldc + j];
      double err = fabs(c[i * s->ldc + j] - want) / (fabs(s->alpha) * mag + 1e-30);
      worst = err > worst ? err : worst;
    }
  return worst;
}

static int64_t a_size(const Shape *s) {
  return (s->ta ? s->k : s->m) * s->lda;
}

static int64_t b_size(const Shape *s) {
  return (s->tb ? s->n : s->k) * s->ldb;
}

static void plain_sgemm(const Shape *s, const float *a, const float *b, float *c) {
  cblas_sgemm(CblasRowMajor, s->ta ? CblasTrans : CblasNoTrans, s->tb ? CblasTrans : CblasNoTrans,
              (int)s->m, (int)s->n, (int)s->k, s->alpha, a, (int)s->lda, b, (int)s->ldb, s->beta,
              c, (int)s->ldc);
}

// One shape through rt_sgemm and through one plain call: both within
// tolerance; rt_sgemm again gives the same bits.
static void run_shape(const Shape *s, uint64_t seed) {
  int64_t cn = s->m * s->ldc;
  float *a = malloc(a_size(s) * 4), *b = malloc(b_size(s) * 4);
  float *c0 = malloc(cn * 4), *c = malloc(cn * 4), *again = malloc(cn * 4);
  float *plain = malloc(cn * 4);
  fill(a, a_size(s), seed), fill(b, b_size(s), seed + 1), fill(c0, cn, seed + 2);
  memcpy(c, c0, cn * 4), memcpy(again, c0, cn * 4), memcpy(plain, c0, cn * 4);
  rt_sgemm(s->ta, s->tb, s->m, s->n, s->k, s->alpha, a, s->lda, b, s->ldb, s->beta, c, s->ldc);
  rt_sgemm(s->ta, s->tb, s->m, s->n, s->k, s->alpha, a, s->lda, b, s->ldb, s->beta, again,
           s->ldc);
  plain_sgemm(s, a, b, plain);
  double err = check_product(s, a, b, c0, c), plain_err = check_product(s, a, b, c0, plain);
  if (!(err <= 1e-5 && plain_err <= 1e-5))
    print_error("m=%lld n=%lld k=%lld ta=%d tb=%d: max rel error %g (plain BLAS %g) > 1e-5\n",
                (long long)s->m, (long long)s->n, (long long)s->k, s->ta, s->tb, err, plain_err);
  assert_true(err <= 1e-5 && plain_err <= 1e-5);
  assert_memory_equal(c, again, cn * 4);
  free(a), free(b), free(c0), free(c), free(again), free(plain);
}

static void test_sgemm_transposes(void **state) {
  (void)state;
  for (int t = 0; t < 4; t++) {
    bool ta = t & 1, tb = t & 2;
    // 300 x 200 x 100 = 6M MACs: split by rows; then a wide one split by columns.
    Shape rows = {ta, tb, 301, 203, 97, ta ? 301 : 97, tb ? 97 : 203, 203, 1, 0};
    Shape cols = {ta, tb, 67, 1001, 70, ta ? 67 : 70, tb ? 70 : 1001, 1001, 0.5f, 0};
    run_shape(&rows, 10 + t);
    run_shape(&cols, 20 + t);
  }
}

static void test_sgemm_strides_and_beta(void **state) {
  (void)state;
  // Leading dimensions wider than the rows, beta adds the old C.
  Shape big = {false, true, 257, 255, 129, 131, 133, 260, -0.75f, 1.5f};
  Shape small = {true, false, 5, 7, 3, 9, 8, 11, 2, 0.25f}; // below the split threshold
  run_shape(&big, 30);
  run_shape(&small, 31);
}

static void test_sgemm_empty(void **state) {
  (void)state;
  float c[4] = {1, 2, 3, 4};
  rt_sgemm(false, false, 0, 4, 3, 1, c, 3, c, 4, 0, c, 4);
  rt_sgemm(false, false, 1, 0, 3, 1, c, 3, c, 1, 0, c, 1);
  assert_true(c[0] == 1 && c[3] == 4);
}

// A batch over heads: products at offsets, fewer and more than the threads.
static void run_batch(int64_t count, int64_t m, int64_t n, int64_t k, uint64_t seed) {
  Shape s = {false, true, m, n, k, k, k, n, 0.125f, 0};
  int64_t as = m * k, bs = n * k, cs = m * n;
  float *a = malloc(count * as * 4), *b = malloc(count * bs * 4), *c = malloc(count * cs * 4);
  float *zero = calloc(cs, 4);
  int64_t *aoff = malloc(count * 8), *boff = malloc(count * 8), *coff = malloc(count * 8);
  fill(a, count * as, seed), fill(b, count * bs, seed + 1);
  for (int64_t i = 0; i < count; i++) // C in reverse order: offsets are honoured
    aoff[i] = i * as, boff[i] = i * bs, coff[i] = (count - 1 - i) * cs;
  for (int64_t i = 0; i < count * cs; i++)
    c[i] = NAN;
  rt_sgemm_batch(count, aoff, boff, coff, s.ta, s.tb, m, n, k, s.alpha, a, s.lda, b, s.ldb, 0, c,
                 s.ldc);
  for (int64_t i = 0; i < count; i++) {
    double err = check_product(&s, a + aoff[i], b + boff[i], zero, c + coff[i]);
    if (!(err <= 1e-5))
      print_error("batch %lld product %lld: max rel error %g > 1e-5\n", (long long)count,
                  (long long)i, err);
    assert_true(err <= 1e-5);
  }
  free(a), free(b), free(c), free(zero), free(aoff), free(boff), free(coff);
}

static void test_sgemm_batch(void **state) {
  (void)state;
  run_batch(12, 256, 256, 64, 40); // the attention bench's scores
  run_batch(1, 300, 290, 70, 41);  // fewer products than threads: each split
  run_batch(3, 9, 5, 4, 42);       // too small to spread
}

int main(void) {
  setenv("ANEC_THREADS", "2", 0); // the split paths run even on one core
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sgemm_transposes),
      cmocka_unit_test(test_sgemm_strides_and_beta),
      cmocka_unit_test(test_sgemm_empty),
      cmocka_unit_test(test_sgemm_batch),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
