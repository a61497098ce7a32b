// test_adamw.c — runtime/adamw.c against PyTorch's AdamW algorithm written
// out step by step in double precision here (torch.optim.AdamW's update:
// decay, lerp of the first moment, second moment, bias corrections, addcdiv),
// over 6 steps with clipping and the schedule; tolerance 1e-5 relative.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { N = 37, STEPS = 6 };

static double rnd(uint64_t *s) {
  *s = *s * 6364136223846793005ull + 1442695040888963407ull;
  return (double)(*s >> 11) * 0x1p-53 - 0.5;
}

typedef struct Ref {
  double w[N], m[N], v[N];
} Ref;

// torch.optim.AdamW, one step t for one tensor.
static void ref_step(Ref *r, const double *g, int t, double lr, const AdamW *o, bool decay) {
  double bc1 = 1 - pow(o->beta1, t), bc2_sqrt = sqrt(1 - pow(o->beta2, t));
  for (int i = 0; i < N; i++) {
    if (decay)
      r->w[i] *= 1 - lr * o->weight_decay;
    r->m[i] += (g[i] - r->m[i]) * (1 - o->beta1);
    r->v[i] = r->v[i] * o->beta2 + (1 - o->beta2) * g[i] * g[i];
    double denom = sqrt(r->v[i]) / bc2_sqrt + o->eps;
    r->w[i] -= lr / bc1 * r->m[i] / denom;
  }
}

static void expect_close(const char *what, int step, const float *got, const double *want) {
  for (int i = 0; i < N; i++)
    if (fabs(got[i] - want[i]) > 1e-5 * fmax(fabs(want[i]), 1e-3))
      fail_msg("%s after step %d [%d]: %.9g, want %.9g", what, step, i, (double)got[i], want[i]);
}

static void run_case(bool decay, float max_norm) {
  AdamW o = {0.9f, 0.95f, 1e-8f, 0.1f};
  uint64_t seed = decay ? 3 : 4;
  float w[N], m[N] = {0}, v[N] = {0}, g[N];
  Ref r = {{0}, {0}, {0}};
  for (int i = 0; i < N; i++)
    r.w[i] = w[i] = (float)rnd(&seed);
  for (int t = 1; t <= STEPS; t++) {
    double gd[N];
    for (int i = 0; i < N; i++)
      g[i] = (float)(rnd(&seed) * 4);
    const float *gs[1] = {g};
    int64_t counts[1] = {N};
    float scale = grad_clip_scale(grad_global_norm(gs, counts, 1), max_norm);
    double norm = 0;
    for (int i = 0; i < N; i++)
      norm += (double)g[i] * g[i];
    norm = sqrt(norm);
    double ref_scale = max_norm > 0 && norm > max_norm ? max_norm / norm : 1.0;
    assert_true(fabs(scale - ref_scale) <= 1e-6 * ref_scale);
    for (int i = 0; i < N; i++)
      gd[i] = (double)(g[i] *= scale);
    float lr = lr_schedule(t - 1, 3, STEPS, 1e-2f, 1e-3f);
    adamw_update(&o, t, lr, 1.0f, w, g, m, v, N, decay);
    ref_step(&r, gd, t, lr, &o, decay);
    expect_close("w", t, w, r.w);
    expect_close("m", t, m, r.m);
    expect_close("v", t, v, r.v);
  }
}

static void test_adamw_matches_torch_algorithm(void **state) {
  (void)state;
  run_case(true, 1.0f);  // matrices: decay, clipped (norms here are ~4)
  run_case(false, 0.0f); // norms and biases: no decay; clipping off
}

static void test_clip(void **state) {
  (void)state;
  float a[2] = {3, 0}, b[1] = {4};
  const float *gs[2] = {a, b};
  int64_t counts[2] = {2, 1};
  double norm = grad_global_norm(gs, counts, 2);
  assert_true(fabs(norm - 5.0) < 1e-12);
  assert_true(fabs(grad_clip_scale(norm, 1.0f) - 0.2f) < 1e-7);
  assert_true(grad_clip_scale(norm, 10.0f) == 1.0f);
  assert_true(grad_clip_scale(norm, 0.0f) == 1.0f);
}

static void test_schedule(void **state) {
  (void)state;
  assert_true(fabsf(lr_schedule(0, 10, 110, 1.0f, 0.1f) - 0.1f) < 1e-7f);  // warmup starts low
  assert_true(fabsf(lr_schedule(9, 10, 110, 1.0f, 0.1f) - 1.0f) < 1e-7f);  // and reaches lr
  assert_true(fabsf(lr_schedule(10, 10, 110, 1.0f, 0.1f) - 1.0f) < 1e-6f); // cosine starts at lr
  assert_true(fabsf(lr_schedule(60, 10, 110, 1.0f, 0.1f) - 0.55f) < 1e-6f); // half-way: the mean
  assert_true(fabsf(lr_schedule(110, 10, 110, 1.0f, 0.1f) - 0.1f) < 1e-7f); // the floor
  assert_true(fabsf(lr_schedule(500, 10, 110, 1.0f, 0.1f) - 0.1f) < 1e-7f);
  assert_true(fabsf(lr_schedule(5, 0, 0, 1.0f, 0.1f) - 0.1f) < 1e-7f);      // no schedule room
}

// Dynamic scaling: halve and skip on a non-finite gradient, double after
// `interval` good steps in a row; a static scale skips but never changes.
static void test_loss_scale(void **state) {
  (void)state;
  LossScale ls;
  assert_true(loss_scale_parse("dynamic", &ls));
  assert_true(ls.dynamic && ls.scale == 65536.0f);
  ls.interval = 3;
  assert_false(loss_scale_update(&ls, false));
  assert_true(ls.scale == 32768.0f && ls.skipped == 1);
  assert_true(loss_scale_update(&ls, true) && loss_scale_update(&ls, true));
  assert_true(ls.scale == 32768.0f);
  assert_true(loss_scale_update(&ls, true));
  assert_true(ls.scale == 65536.0f && ls.good == 0);
  assert_true(loss_scale_update(&ls, true) && loss_scale_update(&ls, true));
  assert_false(loss_scale_update(&ls, false)); // the run of good steps starts over
  assert_true(loss_scale_update(&ls, true) && loss_scale_update(&ls, true));
  assert_true(ls.scale == 32768.0f && ls.skipped == 2);

  assert_true(loss_scale_parse("128", &ls));
  assert_false(ls.dynamic);
  assert_false(loss_scale_update(&ls, false));
  for (int i = 0; i < 5000; i++)
    assert_true(loss_scale_update(&ls, true));
  assert_true(ls.scale == 128.0f && ls.skipped == 1);
  assert_true(loss_scale_parse("0.5", &ls) && ls.scale == 0.5f);

  const char *bad[] = {"", "0", "-2", "inf", "nan", "1e39", "12x", "dynamicx"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    if (loss_scale_parse(bad[i], &ls))
      fail_msg("loss_scale_parse accepted '%s'", bad[i]);

  loss_scale_init(&ls, LOSS_SCALE_MIN, true); // never below the minimum
  assert_false(loss_scale_update(&ls, false));
  assert_true(ls.scale == LOSS_SCALE_MIN);
}

// A step's finiteness check: the sum of squares is inf or NaN when a gradient is.
static void test_sumsq_finite(void **state) {
  (void)state;
  float a[8] = {1, -2, 0x1p-149f, 3.4e38f, -0.0f, 0, 0, 0};
  assert_true(isfinite(grad_sumsq(a, 8)));
  float bad[3] = {INFINITY, -INFINITY, NAN};
  for (int k = 0; k < 3; k++) {
    a[7] = bad[k];
    assert_false(isfinite(grad_sumsq(a, 8)));
  }
  assert_true(grad_sumsq(a, 7) == 1 + 4 + 0x1p-298 + (double)3.4e38f * 3.4e38f);
}

// Many blocks (spread over the pool's threads): the sum of squares against
// a serial double sum (relative 1e-12), and AdamW with a gradient factor
// against the double reference of one tensor in pieces (relative 1e-5).
static void test_many_blocks(void **state) {
  (void)state;
  enum { BIG = 5 * 32768 + 123 };
  float *g = malloc(BIG * sizeof(float)), *w = malloc(BIG * sizeof(float));
  float *m = calloc(BIG, sizeof(float)), *v = calloc(BIG, sizeof(float));
  assert_non_null(g && w && m && v);
  uint64_t seed = 7;
  double want = 0;
  for (int i = 0; i < BIG; i++) {
    g[i] = (float)rnd(&seed), w[i] = (float)rnd(&seed);
    want += (double)g[i] * g[i];
  }
  double got = grad_sumsq(g, BIG);
  if (fabs(got - want) > 1e-12 * want)
    fail_msg("grad_sumsq %.17g, want %.17g", got, want);
  AdamW o = {0.9f, 0.95f, 1e-8f, 0.1f};
  float w0[N];
  memcpy(w0, w + BIG - N, sizeof w0);
  adamw_update(&o, 1, 1e-2f, 0.25f, w, g, m, v, BIG, true);
  Ref r = {{0}, {0}, {0}};
  double gd[N];
  for (int i = 0; i < N; i++)
    r.w[i] = w0[i], gd[i] = 0.25 * g[BIG - N + i];
  ref_step(&r, gd, 1, 1e-2f, &o, true);
  expect_close("w (the last block)", 1, w + BIG - N, r.w);
  expect_close("m (the last block)", 1, m + BIG - N, r.m);
  free(g), free(w), free(m), free(v);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_adamw_matches_torch_algorithm),
      cmocka_unit_test(test_clip),
      cmocka_unit_test(test_schedule),
      cmocka_unit_test(test_loss_scale),
      cmocka_unit_test(test_sumsq_finite),
      cmocka_unit_test(test_many_blocks),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
