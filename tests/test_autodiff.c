// test_autodiff.c — reverse mode (passes/autodiff.c, passes/grad.c) against
// central finite differences, everything evaluated in fp64 by ireval: every
// differentiable op, and one small layer of each sample family (Llama with
// GQA and RoPE, Qwen3 with per-head RMSNorm and half RoPE, GPT-2 with
// LayerNorm, tanh GELU and biases), each ending in cross-entropy. Tolerance:
// 1e-5 of max(|gradient|, 1e-2) per checked element.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "capture.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

typedef struct Case {
  Capture c;
  Graph *g;
  ParamSet ps;
  const char *names[4];
  double *inputs[4];
  int ninputs;
  char path[64];
} Case;

static void case_open(Case *k, const char *text) {
  memset(k, 0, sizeof *k);
  assert_true(capture_open(&k->c));
  strcpy(k->path, "/tmp/anec-test-autodiff-XXXXXX");
  int fd = mkstemp(k->path);
  assert_true(fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text));
  close(fd);
  FrontOpts o = {0};
  k->g = front_compile(&k->c.arena, &k->c.d, k->path, &o);
  if (!k->g)
    fail_msg("front end:\n%s", capture_text(&k->c));
  params_init(&k->ps, &k->c.arena);
  params_init_random(&k->ps, k->g, 11);
  uint64_t seed = 7;
  for (int i = 0; i < k->g->nnodes && k->ninputs < 4; i++) {
    const Node *in = k->g->nodes[i];
    if (in->op != OP_INPUT)
      continue;
    int64_t n = shape_numel(&in->shape);
    double *v = malloc(sizeof(double) * (size_t)n);
    for (int64_t j = 0; j < n; j++) {
      seed = seed * 6364136223846793005ull + 1442695040888963407ull;
      v[j] = in->dtype == DT_I32 ? (double)((seed >> 33) % 20)
                                 : (double)(seed >> 11) * 0x1p-53 - 0.5;
    }
    k->names[k->ninputs] = in->name;
    k->inputs[k->ninputs++] = v;
  }
}

static void case_close(Case *k) {
  for (int i = 0; i < k->ninputs; i++)
    free(k->inputs[i]);
  unlink(k->path);
  capture_close(&k->c);
}

static double loss_of(Case *k) {
  char err[256];
  double **v = ireval_graph(k->g, &k->ps, k->names, (const double *const *)k->inputs,
                            k->ninputs, err, sizeof err);
  if (!v)
    fail_msg("ireval: %s", err);
  double l = v[k->g->loss->id][0];
  ireval_free(k->g, v);
  return l;
}

// Every param's gradient against central differences at a few elements.
static void check_gradients(const char *text) {
  Case k;
  case_open(&k, text);
  int nforward = k.g->nnodes, nout = k.g->noutputs;
  if (!autodiff_build(k.g, &k.c.d) || !graph_verify(k.g, &k.c.d))
    fail_msg("autodiff:\n%s", capture_text(&k.c));
  char err[256];
  double **v = ireval_graph(k.g, &k.ps, k.names, (const double *const *)k.inputs, k.ninputs,
                            err, sizeof err);
  if (!v)
    fail_msg("ireval: %s", err);
  int checked = 0;
  for (int o = nout; o < k.g->noutputs; o++) {
    const Node *p = NULL;
    for (int i = 0; i < nforward; i++)
      if (k.g->nodes[i]->op == OP_PARAM && !strcmp(k.g->output_names[o] + 5, k.g->nodes[i]->name))
        p = k.g->nodes[i];
    assert_non_null(p);
    float *w = (float *)params_get(&k.ps, p);
    int64_t n = shape_numel(&p->shape);
    for (int t = 0; t < 3; t++) {
      int64_t at = (int64_t)((t * 7919u + 13u) % (uint64_t)n);
      float orig = w[at];
      w[at] = orig + 1e-3f;
      double up = loss_of(&k), d1 = (double)w[at] - orig;
      w[at] = orig - 1e-3f;
      double down = loss_of(&k), d2 = (double)orig - w[at];
      w[at] = orig;
      double fd = (up - down) / (d1 + d2), an = v[k.g->outputs[o]->id][at];
      if (fabs(fd - an) > 1e-5 * fmax(fabs(an), 1e-2) + 1e-9)
        fail_msg("%s[%lld]: autodiff %.10g, finite differences %.10g (error %.3g)",
                 k.g->output_names[o], (long long)at, an, fd, fabs(fd - an));
      checked++;
    }
  }
  assert_true(checked > 0);
  ireval_free(k.g, v);
  case_close(&k);
}

static void test_elementwise_ops(void **state) {
  (void)state;
  check_gradients("model m { s = 4\n d = 6 }\n"
                  "input x: f32[s, d]\n"
                  "param a: [d] = normal(0.5)\n"
                  "param b: [s, d] = normal(0.5)\n"
                  "p = x * a + b\n"
                  "q = exp(p) + log(p * p + 1) + sqrt(b * b + 1) - rsqrt(a * a + 1)\n"
                  "r = pow(p, 3) / (b * b + 2) + sigmoid(p) * tanh(b) + silu(p - a)\n"
                  "t = gelu(q, mode = \"tanh\") - r\n"
                  "loss mean(t * t)\n");
}

static void test_reductions_and_softmax(void **state) {
  (void)state;
  check_gradients("model m { s = 4\n d = 6 }\n"
                  "input x: f32[s, d]\n"
                  "param a: [s, d] = normal(0.5)\n"
                  "y = softmax(x + a, -1) * sum(a, 0) + mean(a * x, -1) - softmax(a, 0)\n"
                  "loss sum(y * y)\n");
}

static void test_matmul_and_movement(void **state) {
  (void)state;
  check_gradients("model m { s = 4\n d = 6 }\n"
                  "input x: f32[s, d]\n"
                  "param w: [8, d] = normal(0.5)\n"
                  "param u: [d, 8] = normal(0.5)\n"
                  "h = matmul(x, w, transpose_b = true)\n"
                  "g = matmul(h, u, transpose_a = false, transpose_b = true)\n"
                  "k = matmul(u, x, transpose_a = true, transpose_b = true)\n"
                  "r = reshape(transpose(reshape(h, [s, 2, 4]), [1, 0, 2]), [2, 16])\n"
                  "c = concat([slice(g, 1, 0, 3), slice(g, 1, 3, 6) * 2], 1)\n"
                  "b = matmul(reshape(h, [s, 1, 8]), reshape(w, [1, 8, d]))\n"
                  "loss mean(c * c) + mean(r * r) + mean(k) + mean(b * b)\n");
}

static const char llama[] =
    "model llama { dim = 16\n hidden = 24\n heads = 4\n kv_heads = 2\n seq = 8\n vocab = 20 }\n"
    "input tokens: i32[seq]\n"
    "input targets: i32[seq]\n"
    "param tok_emb: [vocab, dim] = normal(0.5)\n"
    "param rms_att: [dim] = normal(1.0)\n"
    "param wq: [dim, dim] = normal(0.3)\n"
    "param wk: [dim / 2, dim] = normal(0.3)\n"
    "param wv: [dim / 2, dim] = normal(0.3)\n"
    "param wo: [dim, dim] = normal(0.3)\n"
    "param w1: [hidden, dim] = normal(0.3)\n"
    "param w2: [dim, hidden] = normal(0.3)\n"
    "param w3: [hidden, dim] = normal(0.3)\n"
    "x = embed(tok_emb, tokens)\n"
    "h = rmsnorm(x, rms_att)\n"
    "x = x + linear(attention(rope(linear(h, wq), heads), rope(linear(h, wk), kv_heads),\n"
    "                         linear(h, wv), heads, kv_heads), wo)\n"
    "x = x + swiglu(rmsnorm(x, rms_att), w1, w2, w3)\n"
    "loss cross_entropy(linear(x, tok_emb), targets)\n";

static void test_llama_layer(void **state) {
  (void)state;
  check_gradients(llama);
}

static void test_qwen3_layer(void **state) {
  (void)state;
  check_gradients(
      "model qwen { dim = 16\n heads = 4\n kv_heads = 2\n head_dim = 8\n seq = 8\n vocab = 20 }\n"
      "input tokens: i32[seq]\n"
      "input targets: i32[seq]\n"
      "param emb: [vocab, dim] = normal(0.5)\n"
      "param q_proj: [heads * head_dim, dim] = normal(0.3)\n"
      "param k_proj: [kv_heads * head_dim, dim] = normal(0.3)\n"
      "param v_proj: [kv_heads * head_dim, dim] = normal(0.3)\n"
      "param o_proj: [dim, heads * head_dim] = normal(0.3)\n"
      "param q_norm: [head_dim] = normal(1.0)\n"
      "param k_norm: [head_dim] = normal(1.0)\n"
      "x = embed(emb, tokens)\n"
      "q = rope_half(head_rmsnorm(linear(x, q_proj), q_norm, heads), heads, 1e6)\n"
      "k = rope_half(head_rmsnorm(linear(x, k_proj), k_norm, kv_heads), kv_heads, 1e6)\n"
      "x = x + linear(attention(q, k, linear(x, v_proj), heads, kv_heads), o_proj)\n"
      "loss cross_entropy(linear(x, emb), targets)\n");
}

static void test_gpt2_layer(void **state) {
  (void)state;
  check_gradients(
      "model gpt { dim = 16\n heads = 4\n seq = 8\n vocab = 20 }\n"
      "input tokens: i32[seq]\n"
      "input targets: i32[seq]\n"
      "param wte: [vocab, dim] = normal(0.5)\n"
      "param wpe: [seq, dim] = normal(0.1)\n"
      "param ln_w: [dim] = normal(1.0)\n"
      "param ln_b: [dim] = normal(0.1)\n"
      "param w_qkv: [3 * dim, dim] = normal(0.3)\n"
      "param b_qkv: [3 * dim] = normal(0.1)\n"
      "param w_fc: [4 * dim, dim] = normal(0.3)\n"
      "param b_fc: [4 * dim] = normal(0.1)\n"
      "param w_proj: [dim, 4 * dim] = normal(0.3)\n"
      "param b_proj: [dim] = normal(0.1)\n"
      "x = embed(wte, tokens) + wpe\n"
      "qkv = linear_bias(layernorm(x, ln_w, ln_b), w_qkv, b_qkv)\n"
      "x = x + attention(slice(qkv, 1, 0, dim), slice(qkv, 1, dim, 2 * dim),\n"
      "                  slice(qkv, 1, 2 * dim, 3 * dim), heads, heads)\n"
      "x = x + mlp_gelu(layernorm(x, ln_w, ln_b), w_fc, b_fc, w_proj, b_proj)\n"
      "loss cross_entropy(linear(x, wte), targets)\n");
}

// An op without a rule is reported where the model uses it.
static void test_no_rule_is_an_error(void **state) {
  (void)state;
  Case k;
  case_open(&k, "model m { s = 4 }\ninput x: f32[s, s]\nparam w: [s, s] = ones\n"
                "loss mean(relu(x * w))\n");
  assert_false(autodiff_build(k.g, &k.c.d));
  assert_non_null(strstr(capture_text(&k.c), "'relu' has no gradient rule yet"));
  case_close(&k);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_elementwise_ops),     cmocka_unit_test(test_reductions_and_softmax),
      cmocka_unit_test(test_matmul_and_movement), cmocka_unit_test(test_llama_layer),
      cmocka_unit_test(test_qwen3_layer),         cmocka_unit_test(test_gpt2_layer),
      cmocka_unit_test(test_no_rule_is_an_error),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
