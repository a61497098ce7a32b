// test_generate.c — the lowered stories260K model on the reference backend
// against the independent llama2.c forward of tests/ref_llama2c.c: greedy
// ids identical for 200 tokens in fp32 and 32 tokens in fp16 (ANE numerics),
// and the logits of one forward close to the reference's at every position.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "driver.h"
#include "ref_llama2c.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define STORIES260K ANEC_SOURCE_DIR "/tests/data/llama2c/stories260K_plctlab.bin"
#define MODEL ANEC_SOURCE_DIR "/samples/stories260k.anet"

typedef struct Fixture {
  Arena arena;
  Diag diag;
  L2cCheckpoint ck;
  Graph *g;
  ParamSet ps;
  Define seq;            // -D seq=208: room for BOS and 200 tokens, a faster forward
} Fixture;

static Fixture *fixture_open(void) {
  Fixture *f = calloc(1, sizeof *f);
  RtDiag rd = {.out = stderr};
  diag_init(&f->diag, stderr);
  assert_true(l2c_read(STORIES260K, &f->ck, &rd));
  int file = diag_add_file(&f->diag, "<command line>", "-D seq=208", 10);
  f->seq = (Define){"seq", f->diag.files[file].text + 7, file};
  FrontOpts o = {.defs = &f->seq, .ndefs = 1};
  f->g = front_compile(&f->arena, &f->diag, MODEL, &o);
  assert_non_null(f->g);
  assert_true(lowering_run(f->g, &f->diag, target_default(), NULL));
  params_init(&f->ps, &f->arena);
  assert_true(params_load_l2c(&f->ps, f->g, &f->ck, STORIES260K, &f->diag));
  return f;
}

static void fixture_close(Fixture *f) {
  if (!f) // the setup failed (a missing checkpoint): already reported
    return;
  l2c_free(&f->ck);
  arena_free(&f->arena);
  diag_free(&f->diag);
  free(f);
}

// Greedy ids after BOS, the whole sequence re-run for every new token.
static void anec_greedy(Fixture *f, ExecPrecision prec, int steps, int *out) {
  Runner *r = runner_open(f->g, &f->ps, prec, &f->diag);
  assert_non_null(r);
  float *tokens = runner_input(r, "tokens");
  const float *logits = runner_output(r, "logits");
  int vocab = f->ck.cfg.vocab, ids[256] = {1};
  for (int n = 1; n <= steps; n++) {
    for (int i = 0; i < 208; i++)
      tokens[i] = i < n ? (float)ids[i] : 0;
    assert_true(runner_run(r, &f->diag));
    ids[n] = out[n - 1] = ref_argmax(logits + (n - 1) * vocab, vocab);
  }
  runner_close(r);
}

static void expect_same_ids(const char *what, const int *got, const int *want, int n) {
  for (int i = 0; i < n; i++)
    if (got[i] != want[i])
      fail_msg("%s: token %d is %d, the reference says %d", what, i, got[i], want[i]);
}

static void test_greedy_fp32_200(void **state) {
  Fixture *f = *state;
  int want[256], got[256], bos = 1;
  assert_int_equal(ref_greedy(&f->ck, &bos, 1, 200, want), 200);
  anec_greedy(f, EXEC_FP32, 200, got);
  expect_same_ids("fp32", got, want, 200);
}

static void test_greedy_fp16_32(void **state) {
  Fixture *f = *state;
  int want[256], got[256], bos = 1;
  assert_int_equal(ref_greedy(&f->ck, &bos, 1, 32, want), 32);
  anec_greedy(f, EXEC_FP16, 32, got);
  expect_same_ids("fp16", got, want, 32);
}

// One forward over a fixed token sequence: every position's logits against
// the reference's, tolerance 1e-4 (fp32) and 5e-2 (fp16) of the largest logit.
static void logits_case(Fixture *f, ExecPrecision prec, double tol) {
  Runner *r = runner_open(f->g, &f->ps, prec, &f->diag);
  assert_non_null(r);
  float *tokens = runner_input(r, "tokens");
  RefModel *m = ref_new(&f->ck);
  int vocab = f->ck.cfg.vocab;
  for (int i = 0; i < 208; i++)
    tokens[i] = (float)((i * 37 + 1) % vocab);
  assert_true(runner_run(r, &f->diag));
  const float *logits = runner_output(r, "logits");
  double worst = 0, scale = 0;
  for (int p = 0; p < 208; p++) {
    const float *want = ref_forward(m, (int)tokens[p], p);
    for (int v = 0; v < vocab; v++) {
      worst = fmax(worst, fabs(logits[p * vocab + v] - want[v]));
      scale = fmax(scale, fabs(want[v]));
    }
  }
  ref_free(m);
  runner_close(r);
  if (worst > tol * scale)
    fail_msg("%s logits: max error %.3g, tolerance %.3g (%.3g of the largest logit %.3g)",
             prec == EXEC_FP32 ? "fp32" : "fp16", worst, tol * scale, tol, scale);
}

static void test_logits_fp32(void **state) {
  logits_case(*state, EXEC_FP32, 1e-4);
}

static void test_logits_fp16(void **state) {
  logits_case(*state, EXEC_FP16, 5e-2);
}

static int setup(void **state) {
  *state = fixture_open();
  return 0;
}

static int teardown(void **state) {
  fixture_close(*state);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_logits_fp32),
      cmocka_unit_test(test_logits_fp16),
      cmocka_unit_test(test_greedy_fp32_200),
      cmocka_unit_test(test_greedy_fp16_32),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
