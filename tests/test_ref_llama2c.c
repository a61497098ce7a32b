// test_ref_llama2c.c — the reference llama2.c forward pass (ref_llama2c.c) on
// stories260K: finite logits, deterministic greedy decoding, and position 0
// against a second, tiny evaluation in double precision written here.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ref_llama2c.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define STORIES260K ANEC_SOURCE_DIR "/tests/data/llama2c/stories260K_plctlab.bin"

static int setup(void **state) {
  L2cCheckpoint *ck = malloc(sizeof *ck);
  RtDiag d = {.out = stderr};
  if (!ck || !l2c_read(STORIES260K, ck, &d)) {
    free(ck);
    return -1;
  }
  *state = ck;
  return 0;
}

static int teardown(void **state) {
  l2c_free(*state);
  free(*state);
  return 0;
}

static void test_forward_finite(void **state) {
  const L2cCheckpoint *ck = *state;
  RefModel *m = ref_new(ck);
  assert_non_null(m);
  const float *logits = ref_forward(m, 1, 0);
  assert_non_null(logits);
  double mean = 0, var = 0;
  for (int i = 0; i < 512; i++) {
    assert_true(isfinite(logits[i]));
    mean += logits[i] / 512;
  }
  for (int i = 0; i < 512; i++)
    var += (logits[i] - mean) * (logits[i] - mean) / 512;
  assert_true(var > 1e-3); // not constant
  for (int p = 1; p < 40; p++) { // and further along, fed its own argmax
    logits = ref_forward(m, ref_argmax(logits, 512), p);
    for (int i = 0; i < 512; i++)
      assert_true(isfinite(logits[i]));
  }
  assert_null(ref_forward(m, 512, 40)); // token out of range
  assert_null(ref_forward(m, 1, 42));   // a position skipped
  ref_free(m);
}

static void test_greedy_deterministic(void **state) {
  const L2cCheckpoint *ck = *state;
  int a[200], b[200], prompt[] = {1};
  assert_int_equal(ref_greedy(ck, prompt, 1, 200, a), 200);
  assert_int_equal(ref_greedy(ck, prompt, 1, 200, b), 200);
  assert_memory_equal(a, b, sizeof a);
  int distinct = 0;
  for (int i = 0; i < 200; i++) {
    assert_true(a[i] >= 0 && a[i] < 512);
    distinct += i == 0 || a[i] != a[i - 1];
  }
  assert_true(distinct > 1);
  // A prompt that is the greedy output itself changes nothing.
  int forced[201] = {1};
  memcpy(forced + 1, a, 50 * sizeof *a);
  assert_int_equal(ref_greedy(ck, forced, 51, 200, b), 200);
  assert_memory_equal(a, b, sizeof a);
  int *all = malloc(512 * sizeof *all);
  assert_int_equal(ref_greedy(ck, prompt, 1, 100000, all), 512); // at most seq positions
  assert_memory_equal(all, a, sizeof a);
  free(all);
  assert_int_equal(ref_greedy(ck, prompt, 0, 10, b), -1);
  int bad[] = {1, 9999};
  assert_int_equal(ref_greedy(ck, bad, 2, 10, b), -1);
}

// Position 0 alone, in double precision: attention over one position is the
// value vector itself (softmax of one score is 1), so q, k and RoPE drop out;
// query head h takes kv head h / (heads / kv_heads).
static void rmsnorm_d(double *out, const double *x, const float *w, int n) {
  double ss = 0;
  for (int i = 0; i < n; i++)
    ss += x[i] * x[i];
  double s = 1 / sqrt(ss / n + 1e-5);
  for (int i = 0; i < n; i++)
    out[i] = w[i] * s * x[i];
}

static void matvec_d(double *out, const float *w, const double *x, int rows, int cols) {
  for (int r = 0; r < rows; r++) {
    out[r] = 0;
    for (int c = 0; c < cols; c++)
      out[r] += (double)w[(size_t)r * cols + c] * x[c];
  }
}

static void position0_logits(const L2cCheckpoint *ck, int token, double *logits) {
  const L2cConfig *c = &ck->cfg;
  int D = c->dim, H = c->hidden, hs = D / c->heads, KV = hs * c->kv_heads;
  double x[64], h[64], v[64], att[64], o[64], f1[172], f3[172];
  const float *emb = l2c_find(ck, "tok_emb")->data;
  for (int i = 0; i < D; i++)
    x[i] = emb[token * D + i];
  for (int l = 0; l < c->layers; l++) {
    rmsnorm_d(h, x, l2c_find(ck, "rms_att")->data + l * D, D);
    matvec_d(v, l2c_find(ck, "wv")->data + l * KV * D, h, KV, D);
    for (int i = 0; i < D; i++)
      att[i] = v[i / hs / (c->heads / c->kv_heads) * hs + i % hs];
    matvec_d(o, l2c_find(ck, "wo")->data + l * D * D, att, D, D);
    for (int i = 0; i < D; i++)
      x[i] += o[i];
    rmsnorm_d(h, x, l2c_find(ck, "rms_ffn")->data + l * D, D);
    matvec_d(f1, l2c_find(ck, "w1")->data + l * H * D, h, H, D);
    matvec_d(f3, l2c_find(ck, "w3")->data + l * H * D, h, H, D);
    for (int i = 0; i < H; i++)
      f1[i] = f1[i] / (1 + exp(-f1[i])) * f3[i];
    matvec_d(o, l2c_find(ck, "w2")->data + l * D * H, f1, D, H);
    for (int i = 0; i < D; i++)
      x[i] += o[i];
  }
  rmsnorm_d(h, x, l2c_find(ck, "rms_final")->data, D);
  matvec_d(logits, emb, h, c->vocab, D); // tied classifier
}

static void test_position0(void **state) {
  const L2cCheckpoint *ck = *state;
  assert_int_equal(ck->cfg.dim, 64);
  assert_int_equal(ck->cfg.hidden, 172);
  assert_true(ck->cfg.shared_cls);
  const int tokens[] = {1, 0, 2, 37, 511};
  for (int k = 0; k < 5; k++) {
    double want[512], worst = 0;
    position0_logits(ck, tokens[k], want);
    RefModel *m = ref_new(ck);
    const float *got = ref_forward(m, tokens[k], 0);
    for (int i = 0; i < 512; i++) {
      double err = fabs(got[i] - want[i]) / (1 + fabs(want[i]));
      worst = err > worst ? err : worst;
    }
    ref_free(m);
    if (worst > 1e-5)
      fail_msg("token %d: logits differ by up to %g", tokens[k], worst);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_forward_finite),
      cmocka_unit_test(test_greedy_deterministic),
      cmocka_unit_test(test_position0),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
