// test_ireval.c — the fp64 graph evaluator (compiler/ireval.c) against hand
// loops: broadcasting arithmetic, every unary op, reductions, data movement,
// rmsnorm, matmul with transposes and batch broadcasting, softmax, causal
// grouped-query attention, RoPE, embed + cross_entropy, and the errors for
// out-of-range token ids and missing inputs. Models are .anet text compiled
// by front_compile; parameters come from params_init_random.
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capture.h"

// Until anec.h declares them (compiler/ireval.c).
bool ireval_node(const Node *n, const ParamSet *ps, const double *const *ins, double *out,
                 char *err, size_t errlen);
double **ireval_graph(const Graph *g, const ParamSet *ps, const char *const *input_names,
                      const double *const *inputs, int ninputs, char *err, size_t errlen);
void ireval_free(const Graph *g, double **vals);

#define TOL 1e-12

// Model texts are written here, one file per test (tests run one at a time).
static char tmpdir[64];

typedef struct T {
  Capture c; // arena and captured diagnostics
  Graph *g;
  ParamSet ps;
  double **vals; // of the last run
  char err[512];
} T;

static int group_setup(void **state) {
  (void)state;
  strcpy(tmpdir, "/tmp/anec-test-ireval-XXXXXX");
  return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state) {
  (void)state;
  char path[128];
  snprintf(path, sizeof path, "%s/model.anet", tmpdir);
  unlink(path);
  return rmdir(tmpdir);
}

static int setup(void **state) {
  T *t = calloc(1, sizeof *t);
  if (!t || !capture_open(&t->c))
    return -1;
  *state = t;
  return 0;
}

static int teardown(void **state) {
  T *t = *state;
  if (t->g)
    ireval_free(t->g, t->vals);
  capture_close(&t->c);
  free(t);
  return 0;
}

// Compiles `text` (with the prelude) and gives its params seeded random values.
static Graph *build(T *t, const char *text) {
  char path[128];
  snprintf(path, sizeof path, "%s/model.anet", tmpdir);
  unlink(path);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
  assert_int_equal(fclose(f), 0);
  FrontOpts o = {0};
  t->g = front_compile(&t->c.arena, &t->c.d, path, &o);
  if (!t->g || t->c.d.errors)
    fail_msg("compile failed:\n%s", capture_text(&t->c));
  params_init(&t->ps, &t->c.arena);
  params_init_random(&t->ps, t->g, 7);
  return t->g;
}

// Evaluates the graph; NULL (message in t->err) after an error.
static double **try_run(T *t, const char *const *names, const double *const *inputs, int n) {
  ireval_free(t->g, t->vals);
  t->vals = ireval_graph(t->g, &t->ps, names, inputs, n, t->err, sizeof t->err);
  return t->vals;
}

static void run(T *t, const char *const *names, const double *const *inputs, int n) {
  if (!try_run(t, names, inputs, n))
    fail_msg("ireval_graph failed: %s", t->err);
}

static const Node *output_node(T *t, const char *name) {
  for (int i = 0; i < t->g->noutputs; i++)
    if (!strcmp(t->g->output_names[i], name))
      return t->g->outputs[i];
  fail_msg("no output named '%s'", name);
  return NULL;
}

// The values of an output after run().
static const double *out(T *t, const char *name) {
  return t->vals[output_node(t, name)->id];
}

static void assert_out_shape(T *t, const char *name, const char *want) {
  assert_string_equal(shape_str(&t->c.arena, &output_node(t, name)->shape), want);
}

static const float *param(T *t, const char *name) {
  for (int i = 0; i < t->g->nnodes; i++) {
    const Node *n = t->g->nodes[i];
    if (n->op == OP_PARAM && !strcmp(n->name, name))
      return params_get(&t->ps, n);
  }
  fail_msg("no parameter named '%s'", name);
  return NULL;
}

// Deterministic values in [lo, hi).
static void fill(double *v, int n, uint32_t seed, double lo, double hi) {
  for (int i = 0; i < n; i++) {
    seed = seed * 1664525u + 1013904223u;
    v[i] = lo + (hi - lo) * (double)(seed >> 8) / (double)(1u << 24);
  }
}

// cmocka's assert_float_equal compares in float; these compare doubles,
// relative to the expected value's size.
#define assert_near(got, want, tol)                                                        \
  do {                                                                                     \
    double got_ = (got), want_ = (want);                                                   \
    if (!(fabs(got_ - want_) <= (tol) * (1 + fabs(want_))))                                \
      fail_msg("line %d: %s = %.17g, want %.17g", __LINE__, #got, got_, want_);            \
  } while (0)

static void assert_close(const double *got, const double *want, int n, double tol) {
  for (int i = 0; i < n; i++)
    if (!(fabs(got[i] - want[i]) <= tol * (1 + fabs(want[i]))))
      fail_msg("element %d: got %.17g, want %.17g", i, got[i], want[i]);
}

//
// (a) elementwise ops with broadcasting; unary ops; reductions; data movement
//

static void test_broadcast_arithmetic(void **state) {
  T *t = *state;
  build(t, "model m { n = 2 }\n"
           "input a: f32[n, 3]\n"
           "input b: f32[3]\n"
           "input c: f32[n, 1]\n"
           "output y = (a + b) * c - a / 2\n"
           "output z = 1 - b / c\n");
  double a[6], b[3], c[2];
  fill(a, 6, 1, -2, 2);
  fill(b, 3, 2, -2, 2);
  fill(c, 2, 3, 0.5, 2);
  const char *names[] = {"c", "a", "b"}; // any order
  const double *ins[] = {c, a, b};
  run(t, names, ins, 3);
  double y[6], z[6];
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 3; j++) {
      y[i * 3 + j] = (a[i * 3 + j] + b[j]) * c[i] - a[i * 3 + j] / 2;
      z[i * 3 + j] = 1 - b[j] / c[i];
    }
  assert_out_shape(t, "y", "[2, 3]");
  assert_out_shape(t, "z", "[2, 3]");
  assert_close(out(t, "y"), y, 6, TOL);
  assert_close(out(t, "z"), z, 6, TOL);
}

static void test_unary_ops(void **state) {
  T *t = *state;
  build(t, "model m { n = 8 }\n"
           "input x: f32[2, n]\n"
           "output neg = neg(x)\n"
           "output exp = exp(x)\n"
           "output log = log(x)\n"
           "output sqrt = sqrt(x)\n"
           "output rsqrt = rsqrt(x)\n"
           "output pow = pow(x, 1.5)\n"
           "output sigmoid = sigmoid(x - 1)\n"
           "output silu = silu(x - 1)\n"
           "output tanh = tanh(x - 1)\n"
           "output relu = relu(x - 1)\n"
           "output gelu = gelu(x - 1)\n"
           "output gelu_tanh = gelu(x - 1, mode = \"tanh\")\n");
  double x[16];
  fill(x, 16, 5, 0.1, 3);
  const char *names[] = {"x"};
  const double *ins[] = {x};
  run(t, names, ins, 1);
  for (int i = 0; i < 16; i++) {
    double v = x[i], u = v - 1;
    assert_near(out(t, "neg")[i], -v, TOL);
    assert_near(out(t, "exp")[i], exp(v), TOL);
    assert_near(out(t, "log")[i], log(v), TOL);
    assert_near(out(t, "sqrt")[i], sqrt(v), TOL);
    assert_near(out(t, "rsqrt")[i], 1 / sqrt(v), TOL);
    assert_near(out(t, "pow")[i], v * sqrt(v), TOL);
    assert_near(out(t, "sigmoid")[i], 1 / (1 + exp(-u)), TOL);
    assert_near(out(t, "silu")[i], u / (1 + exp(-u)), TOL);
    assert_near(out(t, "tanh")[i], tanh(u), TOL);
    assert_near(out(t, "relu")[i], u > 0 ? u : 0, TOL);
    assert_near(out(t, "gelu")[i], 0.5 * u * (1 + erf(u / sqrt(2))), TOL);
    double inner = sqrt(2 / 3.14159265358979323846) * (u + 0.044715 * u * u * u);
    assert_near(out(t, "gelu_tanh")[i], 0.5 * u * (1 + tanh(inner)), TOL);
  }
}

static void test_reductions(void **state) {
  T *t = *state;
  build(t, "model m { n = 2 }\n"
           "input x: f32[n, 3, 4]\n"
           "output s1 = sum(x, 1)\n"
           "output m2 = mean(x, -1)\n"
           "output x0 = max(x, 0)\n"
           "output all_sum = sum(x)\n"
           "output all_mean = mean(x)\n"
           "output all_max = max(x)\n");
  double x[24];
  fill(x, 24, 9, -5, 5);
  const char *names[] = {"x"};
  const double *ins[] = {x};
  run(t, names, ins, 1);
  assert_out_shape(t, "s1", "[2, 1, 4]");
  assert_out_shape(t, "m2", "[2, 3, 1]");
  assert_out_shape(t, "x0", "[1, 3, 4]");
  assert_out_shape(t, "all_sum", "[]");
  double s1[8] = {0}, m2[6] = {0}, x0[12], total = 0, top = -INFINITY;
  for (int k = 0; k < 12; k++)
    x0[k] = fmax(x[k], x[12 + k]);
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 3; j++)
      for (int k = 0; k < 4; k++) {
        double v = x[(i * 3 + j) * 4 + k];
        s1[i * 4 + k] += v;
        m2[i * 3 + j] += v / 4;
        total += v;
        top = fmax(top, v);
      }
  assert_close(out(t, "s1"), s1, 8, TOL);
  assert_close(out(t, "m2"), m2, 6, TOL);
  assert_close(out(t, "x0"), x0, 12, 0);
  assert_near(out(t, "all_sum")[0], total, TOL);
  assert_near(out(t, "all_mean")[0], total / 24, TOL);
  assert_near(out(t, "all_max")[0], top, 0);
}

static void test_data_movement(void **state) {
  T *t = *state;
  build(t, "model m { n = 2 }\n"
           "input x: f32[n, 3, 4]\n"
           "output tr = transpose(x, [2, 0, 1])\n"
           "output sl = slice(x, 2, 1, 3)\n"
           "output cat = concat([x, slice(x, 1, 0, 1), x * 2], 1)\n"
           "output rs = reshape(x, [4, -1])\n");
  double x[24];
  fill(x, 24, 11, -1, 1);
  const char *names[] = {"x"};
  const double *ins[] = {x};
  run(t, names, ins, 1);
  assert_out_shape(t, "tr", "[4, 2, 3]");
  assert_out_shape(t, "sl", "[2, 3, 2]");
  assert_out_shape(t, "cat", "[2, 7, 4]");
  assert_out_shape(t, "rs", "[4, 6]");
  const double *tr = out(t, "tr"), *sl = out(t, "sl"), *cat = out(t, "cat");
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 3; j++)
      for (int k = 0; k < 4; k++) {
        double v = x[(i * 3 + j) * 4 + k];
        assert_near(tr[(k * 2 + i) * 3 + j], v, 0);
        if (k >= 1 && k < 3)
          assert_near(sl[(i * 3 + j) * 2 + k - 1], v, 0);
        assert_near(cat[(i * 7 + j) * 4 + k], v, 0);
        if (j == 0)
          assert_near(cat[(i * 7 + 3) * 4 + k], v, 0);
        assert_near(cat[(i * 7 + 4 + j) * 4 + k], 2 * v, 0);
      }
  assert_close(out(t, "rs"), x, 24, 0);
}

//
// (b) rmsnorm, (c) matmul
//

static void test_rmsnorm(void **state) {
  T *t = *state;
  build(t, "model m { d = 8 }\n"
           "input x: f32[3, d]\n"
           "param w: [d] = normal(1.0)\n"
           "output y = rmsnorm(x, w)\n");
  double x[24], y[24];
  fill(x, 24, 13, -3, 3);
  const char *names[] = {"x"};
  const double *ins[] = {x};
  run(t, names, ins, 1);
  const float *w = param(t, "w");
  for (int r = 0; r < 3; r++) {
    double ss = 0;
    for (int i = 0; i < 8; i++)
      ss += x[r * 8 + i] * x[r * 8 + i];
    double scale = 1 / sqrt(ss / 8 + 1e-5);
    for (int i = 0; i < 8; i++)
      y[r * 8 + i] = x[r * 8 + i] * scale * w[i];
  }
  assert_close(out(t, "y"), y, 24, TOL);
}

static void test_matmul_transpose_b(void **state) {
  T *t = *state;
  build(t, "model m { k = 4 }\n"
           "input x: f32[3, k]\n"
           "param w: [5, k] = normal(0.5)\n"
           "output y = linear(x, w)\n");
  double x[12], y[15];
  fill(x, 12, 17, -1, 1);
  const char *names[] = {"x"};
  const double *ins[] = {x};
  run(t, names, ins, 1);
  const float *w = param(t, "w");
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 5; j++) {
      y[i * 5 + j] = 0;
      for (int p = 0; p < 4; p++)
        y[i * 5 + j] += x[i * 4 + p] * w[j * 4 + p];
    }
  assert_out_shape(t, "y", "[3, 5]");
  assert_close(out(t, "y"), y, 15, TOL);
}

// [2, 1, 3, 4] @ [3, 4, 5] -> [2, 3, 3, 5]; the same with transpose_a on [2, 1, 4, 3].
static void test_matmul_batch_broadcast(void **state) {
  T *t = *state;
  build(t, "model m { k = 4 }\n"
           "input a: f32[2, 1, 3, k]\n"
           "input b: f32[3, k, 5]\n"
           "input c: f32[2, 1, k, 3]\n"
           "output y = matmul(a, b)\n"
           "output z = matmul(c, b, transpose_a = true)\n");
  double a[24], b[60], c[24];
  fill(a, 24, 19, -1, 1);
  fill(b, 60, 23, -1, 1);
  fill(c, 24, 29, -1, 1);
  const char *names[] = {"a", "b", "c"};
  const double *ins[] = {a, b, c};
  run(t, names, ins, 3);
  assert_out_shape(t, "y", "[2, 3, 3, 5]");
  assert_out_shape(t, "z", "[2, 3, 3, 5]");
  double y[90], z[90];
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 3; j++)
      for (int r = 0; r < 3; r++)
        for (int col = 0; col < 5; col++) {
          double sy = 0, sz = 0;
          for (int p = 0; p < 4; p++) {
            sy += a[(i * 3 + r) * 4 + p] * b[(j * 4 + p) * 5 + col];
            sz += c[(i * 4 + p) * 3 + r] * b[(j * 4 + p) * 5 + col];
          }
          y[((i * 3 + j) * 3 + r) * 5 + col] = sy;
          z[((i * 3 + j) * 3 + r) * 5 + col] = sz;
        }
  assert_close(out(t, "y"), y, 90, TOL);
  assert_close(out(t, "z"), z, 90, TOL);
}

//
// (d) softmax and causal grouped-query attention
//

static void test_softmax_rows(void **state) {
  T *t = *state;
  build(t, "model m { n = 4 }\n"
           "input x: f32[n, 6]\n"
           "output p = softmax(x)\n"
           "output q = softmax(x, 0)\n");
  double x[24];
  fill(x, 24, 31, -4, 4);
  x[5] = 700; // large values must not overflow
  const char *names[] = {"x"};
  const double *ins[] = {x};
  run(t, names, ins, 1);
  const double *p = out(t, "p"), *q = out(t, "q");
  for (int r = 0; r < 4; r++) {
    double sum = 0;
    for (int i = 0; i < 6; i++) {
      sum += p[r * 6 + i];
      assert_near(p[r * 6 + i] / p[r * 6], exp(x[r * 6 + i] - x[r * 6]), 1e-9);
    }
    assert_near(sum, 1, TOL);
  }
  for (int c = 0; c < 6; c++) {
    double sum = 0;
    for (int r = 0; r < 4; r++)
      sum += q[r * 6 + c];
    assert_near(sum, 1, TOL);
  }
}

// The causal mask is -inf above the diagonal (not the emitter's -65504), and
// softmax gives those entries exactly 0.
static void test_causal_mask_node(void **state) {
  T *t = *state;
  Graph *g = graph_new(&t->c.arena);
  Node *m = graph_add(g, OP_CAUSAL_MASK, NULL, 0, loc_none());
  m->shape = (Shape){2, {3, 3}};
  Node *s = graph_add(g, OP_SOFTMAX, &m, 1, loc_none());
  s->axis = -1;
  assert_true(node_infer(m, &t->c.d) && node_infer(s, &t->c.d));
  params_init(&t->ps, &t->c.arena);
  double mv[9], sv[9];
  assert_true(ireval_node(m, &t->ps, NULL, mv, t->err, sizeof t->err));
  const double *ins[] = {mv};
  assert_true(ireval_node(s, &t->ps, ins, sv, t->err, sizeof t->err));
  for (int r = 0; r < 3; r++)
    for (int c = 0; c < 3; c++) {
      if (c > r) {
        assert_true(isinf(mv[r * 3 + c]) && mv[r * 3 + c] < 0);
        assert_true(sv[r * 3 + c] == 0.0);
      } else {
        assert_true(mv[r * 3 + c] == 0.0);
        assert_near(sv[r * 3 + c], 1.0 / (r + 1), TOL);
      }
    }
}

static void test_attention_gqa(void **state) {
  T *t = *state;
  enum { S = 5, H = 4, KV = 2, HD = 3 };
  build(t, "model m {\n"
           "  seq = 5\n"
           "  nh = 4\n"
           "  nkv = 2\n"
           "  head_dim = 3\n"
           "}\n"
           "input q: f32[seq, nh * head_dim]\n"
           "input k: f32[seq, nkv * head_dim]\n"
           "input v: f32[seq, nkv * head_dim]\n"
           "output y = attention(q, k, v, nh, nkv)\n");
  double q[S * H * HD], k[S * KV * HD], v[S * KV * HD], y[S * H * HD];
  fill(q, S * H * HD, 37, -2, 2);
  fill(k, S * KV * HD, 41, -2, 2);
  fill(v, S * KV * HD, 43, -2, 2);
  const char *names[] = {"q", "k", "v"};
  const double *ins[] = {q, k, v};
  run(t, names, ins, 3);
  assert_out_shape(t, "y", "[5, 12]");
  for (int h = 0; h < H; h++) {
    int kh = h / (H / KV); // query head h reads kv head h / 2
    for (int i = 0; i < S; i++) {
      double score[S], max = -INFINITY, sum = 0;
      for (int j = 0; j <= i; j++) {
        score[j] = 0;
        for (int d = 0; d < HD; d++)
          score[j] += q[i * H * HD + h * HD + d] * k[j * KV * HD + kh * HD + d];
        score[j] /= sqrt(HD);
        max = fmax(max, score[j]);
      }
      for (int j = 0; j <= i; j++)
        sum += score[j] = exp(score[j] - max);
      for (int d = 0; d < HD; d++) {
        double acc = 0;
        for (int j = 0; j <= i; j++)
          acc += score[j] / sum * v[j * KV * HD + kh * HD + d];
        y[i * H * HD + h * HD + d] = acc;
      }
    }
  }
  assert_close(out(t, "y"), y, S * H * HD, 1e-12);
}

// Interleaved RoPE: pairs (x[2i], x[2i+1]) of each head rotated by p * θ^(-2i/hd),
// with the tables params_source_values gives (float, as llama2.c computes them).
static void test_rope(void **state) {
  T *t = *state;
  enum { S = 4, H = 2, HD = 6 };
  build(t, "model m { seq = 4 }\n"
           "input x: f32[seq, 12]\n"
           "output y = rope(x, 2)\n");
  double x[S * H * HD], y[S * H * HD];
  fill(x, S * H * HD, 47, -1, 1);
  const char *names[] = {"x"};
  const double *ins[] = {x};
  run(t, names, ins, 1);
  for (int p = 0; p < S; p++)
    for (int h = 0; h < H; h++)
      for (int i = 0; i < HD / 2; i++) {
        double angle = p * pow(10000.0, -2.0 * i / HD);
        double a = x[p * H * HD + h * HD + 2 * i], b = x[p * H * HD + h * HD + 2 * i + 1];
        y[p * H * HD + h * HD + 2 * i] = a * cos(angle) - b * sin(angle);
        y[p * H * HD + h * HD + 2 * i + 1] = a * sin(angle) + b * cos(angle);
      }
  assert_close(out(t, "y"), y, S * H * HD, 1e-6);
}

//
// (e) embed + cross_entropy, (f) errors
//

static const char lm_text[] =
    "model m {\n"
    "  vocab = 7\n"
    "  dim = 4\n"
    "  seq = 5\n"
    "}\n"
    "input tokens: i32[seq]\n"
    "input targets: i32[seq]\n"
    "param emb: [vocab, dim] = normal(0.5)\n"
    "param w: [vocab, dim] = normal(0.5)\n"
    "x = embed(emb, tokens)\n"
    "output logits = linear(x, w)\n"
    "loss cross_entropy(logits, targets)\n";

static void test_embed_cross_entropy(void **state) {
  T *t = *state;
  enum { V = 7, D = 4, S = 5 };
  build(t, lm_text);
  double tokens[S] = {3, 0, 6, 3, 1}, targets[S] = {0, 6, 3, 1, 2};
  const char *names[] = {"tokens", "targets"};
  const double *ins[] = {tokens, targets};
  run(t, names, ins, 2);
  const float *emb = param(t, "emb"), *w = param(t, "w");
  double logits[S * V], loss = 0;
  for (int s = 0; s < S; s++) {
    const float *row = emb + (int)tokens[s] * D;
    double max = -INFINITY, sum = 0;
    for (int v = 0; v < V; v++) {
      logits[s * V + v] = 0;
      for (int d = 0; d < D; d++)
        logits[s * V + v] += row[d] * (double)w[v * D + d];
      max = fmax(max, logits[s * V + v]);
    }
    for (int v = 0; v < V; v++)
      sum += exp(logits[s * V + v] - max);
    loss += max + log(sum) - logits[s * V + (int)targets[s]];
  }
  loss /= S;
  assert_out_shape(t, "logits", "[5, 7]");
  assert_close(out(t, "logits"), logits, S * V, TOL);
  assert_non_null(t->g->loss);
  assert_near(t->vals[t->g->loss->id][0], loss, TOL);
}

static void expect_error(T *t, const double *tokens, const double *targets, const char *msg) {
  const char *names[] = {"tokens", "targets"};
  const double *ins[] = {tokens, targets};
  assert_null(try_run(t, names, ins, 2));
  if (!strstr(t->err, msg))
    fail_msg("expected an error containing \"%s\", got \"%s\"", msg, t->err);
}

static void test_token_out_of_range(void **state) {
  T *t = *state;
  build(t, lm_text);
  double ok[5] = {0, 1, 2, 3, 4};
  double big[5] = {0, 1, 7, 3, 4}, negative[5] = {0, -1, 2, 3, 4};
  double fraction[5] = {0, 1, 2.5, 3, 4}, nan_id[5] = {0, 1, NAN, 3, 4};
  expect_error(t, big, ok, "'embed': id 7 at position 2 is out of range [0, 7)");
  expect_error(t, negative, ok, "id -1 at position 1 is out of range");
  expect_error(t, fraction, ok, "id 2.5 at position 2");
  expect_error(t, nan_id, ok, "'embed'");
  expect_error(t, ok, big, "'cross_entropy': target 7 at row 2 is out of range [0, 7)");
  run(t, (const char *[]){"tokens", "targets"}, (const double *[]){ok, ok}, 2);
}

static void test_missing_input(void **state) {
  T *t = *state;
  build(t, lm_text);
  double ok[5] = {0, 1, 2, 3, 4};
  const char *names[] = {"tokens"};
  const double *ins[] = {ok};
  assert_null(try_run(t, names, ins, 1));
  assert_string_equal(t->err, "no values given for input 'targets'");
  // ireval_node does not evaluate inputs itself.
  const Node *in = NULL;
  for (int i = 0; i < t->g->nnodes && !in; i++)
    if (t->g->nodes[i]->op == OP_INPUT)
      in = t->g->nodes[i];
  double v[5];
  assert_false(ireval_node(in, &t->ps, NULL, v, t->err, sizeof t->err));
}

int main(void) {
#define T_(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
  const struct CMUnitTest tests[] = {
      T_(test_broadcast_arithmetic),
      T_(test_unary_ops),
      T_(test_reductions),
      T_(test_data_movement),
      T_(test_rmsnorm),
      T_(test_matmul_transpose_b),
      T_(test_matmul_batch_broadcast),
      T_(test_softmax_rows),
      T_(test_causal_mask_node),
      T_(test_attention_gqa),
      T_(test_rope),
      T_(test_embed_cross_entropy),
      T_(test_token_out_of_range),
      T_(test_missing_input),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
