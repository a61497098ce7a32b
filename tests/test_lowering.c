// test_lowering.c — emitted kernels run on the reference backend against a
// direct fp64 evaluation of the IR (compiler/ireval.c), per op family and per
// sample layer (Llama with GQA, Qwen3 with per-head RMSNorm and half RoPE,
// GPT-2 with LayerNorm, GELU and biases), in fp32 and fp16 storage. Errors
// are relative to the output's RMS: at most 1e-4 (fp32) and 3e-2 (fp16).
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "capture.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

#define TOL32 1e-4
#define TOL16 3e-2

static uint64_t rng_next(uint64_t *s) { // splitmix64
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static Graph *compile_text_as(Capture *c, const char *text, const char *path, bool train) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  FrontOpts o = {.pipe = {.train = train}};
  Graph *g = front_compile(&c->arena, &c->d, path, &o);
  if (!g)
    fail_msg("front end failed:\n%s", capture_text(c));
  return g;
}

static Graph *compile_text(Capture *c, const char *text, const char *path) {
  return compile_text_as(c, text, path, false);
}

// Random inputs: token ids below the embedding's rows (targets: below the
// logits' width), else N(0, 1)-ish.
static double *input_values(const Node *in, const Graph *g, uint64_t *seed) {
  int64_t n = shape_numel(&in->shape), vocab = 1 << 30;
  for (int i = 0; i < g->nnodes; i++) {
    const Node *u = g->nodes[i];
    if (u->op == OP_EMBED && u->in[1] == in)
      vocab = u->in[0]->shape.dims[0];
    if ((u->op == OP_CROSS_ENTROPY || u->op == OP_CE_GRAD) && u->in[1] == in)
      vocab = u->in[0]->shape.dims[1];
  }
  double *v = malloc(sizeof(double) * (size_t)(n + 1));
  for (int64_t i = 0; i < n; i++) {
    uint64_t r = rng_next(seed);
    v[i] = in->dtype == DT_I32 ? (double)(r % (uint64_t)vocab)
                               : ((double)(r >> 11) * 0x1p-53 - 0.5) * 3.0;
  }
  return v;
}

static void compare(const char *what, const float *got, const double *want, int64_t n,
                    double tol) {
  double rms = 0, worst = 0;
  int64_t at = 0;
  for (int64_t i = 0; i < n; i++)
    rms += want[i] * want[i];
  rms = sqrt(rms / (double)(n ? n : 1)) + 1e-30;
  for (int64_t i = 0; i < n; i++) {
    double e = fabs(got[i] - want[i]) / rms;
    if (!(e <= worst))
      worst = e, at = i;
  }
  if (!(worst <= tol))
    fail_msg("%s: max error %.3g of the RMS %.3g at %lld (got %.7g, want %.7g), tolerance %.3g",
             what, worst, rms, (long long)at, (double)got[at], want[at], tol);
}

typedef enum { MODE_BAKED, MODE_DYNAMIC, MODE_TRAIN } Mode;

// Lowers `text` for target t, runs it in both precisions and checks every
// output against the fp64 evaluation of the same graph and parameters.
// MODE_TRAIN: the training graph (loss and gradients), dynamic weights.
static void check_model_mode(const char *name, const char *text, const TargetProfile *t,
                             Mode mode, double tol16) {
  Capture c = {0};
  assert_true(capture_open(&c));
  char path[] = "/tmp/anec-test-lowering-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  Graph *g = compile_text_as(&c, text, path, mode == MODE_TRAIN);
  g->dynamic_weights = mode != MODE_BAKED;
  if (!lowering_run(g, &c.d, t, NULL))
    fail_msg("%s: lowering failed:\n%s", name, capture_text(&c));
  ParamSet ps;
  params_init(&ps, &c.arena);
  params_init_random(&ps, g, 5);
  const char *names[8];
  const double *values[8];
  const Node *ins[8];
  int nin = 0;
  uint64_t seed = 99;
  for (int i = 0; i < g->nnodes && nin < 8; i++)
    if (g->nodes[i]->op == OP_INPUT) {
      ins[nin] = g->nodes[i];
      names[nin] = g->nodes[i]->name;
      values[nin++] = input_values(g->nodes[i], g, &seed);
    }
  char err[256];
  double **want = ireval_graph(g, &ps, names, values, nin, err, sizeof err);
  if (!want)
    fail_msg("%s: ireval: %s", name, err);
  for (int p = 0; p < 2; p++) {
    Runner *r = runner_open(g, &ps, (ExecPrecision)p, &c.d);
    if (!r)
      fail_msg("%s: runner_open failed:\n%s", name, capture_text(&c));
    for (int k = 0; k < nin; k++) {
      float *host = runner_input(r, names[k]);
      for (int64_t i = 0; host && i < shape_numel(&ins[k]->shape); i++)
        host[i] = (float)values[k][i];
    }
    if (!runner_run(r, &c.d))
      fail_msg("%s: run failed:\n%s", name, capture_text(&c));
    for (int o = 0; o < g->noutputs; o++) {
      char what[128];
      snprintf(what, sizeof what, "%s %s output %s (%s)", name, p ? "fp32" : "fp16",
               g->output_names[o], t->name);
      compare(what, runner_output(r, g->output_names[o]), want[g->outputs[o]->id],
              shape_numel(&g->outputs[o]->shape), p ? TOL32 : tol16);
    }
    runner_close(r);
  }
  ireval_free(g, want);
  for (int k = 0; k < nin; k++)
    free((void *)values[k]);
  unlink(path);
  capture_close(&c);
}

static void check_model_with(const char *name, const char *text, const TargetProfile *t,
                             bool dynamic) {
  check_model_mode(name, text, t, dynamic ? MODE_DYNAMIC : MODE_BAKED, TOL16);
}

static void check_model_on(const char *name, const char *text, const TargetProfile *t) {
  check_model_with(name, text, t, false);
}

static void check_model(const char *name, const char *text) {
  check_model_on(name, text, target_default());
}

static void test_elementwise(void **state) {
  (void)state;
  check_model("elementwise", "model m { s = 32\n d = 64 }\n"
                             "input x: f32[s, d]\n"
                             "param w: [d] = normal(1.0)\n"
                             "y = (x * w + 0.5) / (x * x + 1) - x\n"
                             "output a = exp(-(x * x)) + sigmoid(x) * tanh(x) + relu(x)\n"
                             "output b = sqrt(x * x + 1) + log(x * x + 1) + rsqrt(x * x + 1)\n"
                             "output c = gelu(x) + gelu(x, mode = \"tanh\") + silu(y) + pow(x, 2)\n"
                             "output e = y\n");
}

// The whole sum e checks apart: the runner's fp16 has the ANE quirks
// (runtime/exec/exec.h), where sum(x) adds its 1536 values in fp16, the
// running sum wandering up to ~40 (spacing 1/32): it is off by 6.1% of the
// RMS. TOL16 (3e-2) holds for it only without the quirks (a wide sum); with
// them the fp16 tolerance is 0.1. The sums of 32 and 48 hold TOL16 either way.
#define TOL16_NARROW_SUM 0.1

static void test_reductions_softmax(void **state) {
  (void)state;
  check_model("reductions", "model m { s = 32\n d = 48 }\n"
                            "input x: f32[s, d]\n"
                            "output a = x - mean(x, -1) + sum(x, -1) * max(x, -1)\n"
                            "output b = softmax(x, -1)\n"
                            "output c = softmax(x, 0) + mean(x, 0)\n");
  check_model_mode("whole sum", "model m { s = 32\n d = 48 }\n"
                                "input x: f32[s, d]\n"
                                "output e = sum(x)\n",
                   target_default(), MODE_BAKED, TOL16_NARROW_SUM);
}

// The op forms a profile chooses (anchor_op_forms): the anchors'
// (reduce_sum then mul by 1/N, pow(x, -0.5)) on every built-in profile, and
// reduce_mean and rsqrt where a profile file asks for them; both run.
static void test_op_forms(void **state) {
  (void)state;
  const char *text = "model m { s = 32\n d = 48 }\n"
                     "input x: f32[s, d]\n"
                     "output a = x * rsqrt(mean(x * x, -1) + 1e-5)\n"
                     "output b = mean(x, 0) + mean(x)\n";
  TargetProfile current = *target_default();
  for (int t = 0; t < ntarget_profiles; t++)
    assert_true(target_profiles[t].anchor_op_forms);
  check_model_on("anchors' op forms", text, target_default());
  current.anchor_op_forms = false;
  check_model_on("current op forms", text, &current);
}

static void test_data_movement(void **state) {
  (void)state;
  check_model("movement", "model m { s = 32\n d = 64 }\n"
                          "input x: f32[s, d]\n"
                          "p = reshape(x, [s, 4, 8, 2])\n"
                          "a = slice(p, 3, 0, 1)\n"
                          "b = slice(p, 3, 1, 2)\n"
                          "output r = reshape(concat([b, a * 2], 3), [s, d])\n"
                          "output t = transpose(reshape(x, [s, 4, 16]), [1, 0, 2])\n"
                          "output u = transpose(x, [1, 0]) * 3\n"
                          "output v = reshape(transpose(transpose(reshape(x, [s, 4, 16]), "
                          "[1, 0, 2]), [1, 0, 2]), [s, d])\n");
}

static void test_linear_and_matmul(void **state) {
  (void)state;
  check_model("matmul", "model m { s = 32\n d = 64\n h = 96 }\n"
                        "input x: f32[s, d]\n"
                        "param w: [h, d] = normal(0.1)\n"
                        "param b: [h] = normal(0.1)\n"
                        "output y = linear(x, w)\n"
                        "output z = linear_bias(x, w, b)\n"
                        "q = reshape(x, [s, 8, 8])\n"       // k = 8: padded to 32 (ANE-B10)
                        "output g = matmul(transpose(q, [1, 0, 2]), transpose(q, [1, 0, 2]), "
                        "transpose_b = true)\n");
}

static const char llama_layer[] =
    "model llama { dim = 64\n hidden = 160\n heads = 4\n kv_heads = 2\n seq = 32\n"
    " vocab = 96 }\n"
    "input tokens: i32[seq]\n"
    "param tok_emb: [vocab, dim] = normal(0.5)\n"
    "param rms_att: [dim] = normal(1.0)\n"
    "param wq: [dim, dim] = normal(0.1)\n"
    "param wk: [dim / 2, dim] = normal(0.1)\n"
    "param wv: [dim / 2, dim] = normal(0.1)\n"
    "param wo: [dim, dim] = normal(0.1)\n"
    "param rms_ffn: [dim] = ones\n"
    "param w1: [hidden, dim] = normal(0.1)\n"
    "param w2: [dim, hidden] = normal(0.1)\n"
    "param w3: [hidden, dim] = normal(0.1)\n"
    "x = embed(tok_emb, tokens)\n"
    "h = rmsnorm(x, rms_att)\n"
    "q = rope(linear(h, wq), heads)\n"
    "k = rope(linear(h, wk), kv_heads)\n"
    "v = linear(h, wv)\n"
    "x = x + linear(attention(q, k, v, heads, kv_heads), wo)\n"
    "x = x + swiglu(rmsnorm(x, rms_ffn), w1, w2, w3)\n"
    "output logits = linear(x, tok_emb)\n";

static void test_llama_layer(void **state) {
  (void)state;
  for (int i = 0; i < ntarget_profiles; i++)
    check_model_on("llama layer", llama_layer, &target_profiles[i]);
}

static void test_qwen3_layer(void **state) {
  (void)state;
  check_model("qwen3 layer",
              "model qwen { dim = 64\n heads = 4\n kv_heads = 2\n head_dim = 32\n seq = 32 }\n"
              "input x: f32[seq, dim]\n"
              "param q_proj: [heads * head_dim, dim] = normal(0.1)\n"
              "param k_proj: [kv_heads * head_dim, dim] = normal(0.1)\n"
              "param v_proj: [kv_heads * head_dim, dim] = normal(0.1)\n"
              "param o_proj: [dim, heads * head_dim] = normal(0.1)\n"
              "param q_norm: [head_dim] = normal(1.0)\n"
              "param k_norm: [head_dim] = normal(1.0)\n"
              "q = rope_half(head_rmsnorm(linear(x, q_proj), q_norm, heads), heads, 1e6)\n"
              "k = rope_half(head_rmsnorm(linear(x, k_proj), k_norm, kv_heads), kv_heads, 1e6)\n"
              "v = linear(x, v_proj)\n"
              "output y = x + linear(attention(q, k, v, heads, kv_heads), o_proj)\n");
}

static void test_gpt2_layer(void **state) {
  (void)state;
  check_model("gpt2 layer",
              "model gpt { dim = 64\n heads = 4\n seq = 32 }\n"
              "input x: f32[seq, dim]\n"
              "param ln_w: [dim] = normal(1.0)\n"
              "param ln_b: [dim] = normal(0.1)\n"
              "param w_qkv: [3 * dim, dim] = normal(0.1)\n"
              "param b_qkv: [3 * dim] = normal(0.1)\n"
              "param w_fc: [4 * dim, dim] = normal(0.1)\n"
              "param b_fc: [4 * dim] = normal(0.1)\n"
              "param w_proj: [dim, 4 * dim] = normal(0.1)\n"
              "param b_proj: [dim] = normal(0.1)\n"
              "qkv = linear_bias(layernorm(x, ln_w, ln_b), w_qkv, b_qkv)\n"
              "q = slice(qkv, 1, 0, dim)\n"
              "k = slice(qkv, 1, dim, 2 * dim)\n"
              "v = slice(qkv, 1, 2 * dim, 3 * dim)\n"
              "x = x + attention(q, k, v, heads, heads)\n"
              "output y = x + mlp_gelu(layernorm(x, ln_w, ln_b), w_fc, b_fc, w_proj, b_proj)\n");
}

// Dynamic weights: three layers, every param packed into the one input of
// the one layer kernel that serves all three (ANE-P01, B09).
static const char llama_stack[] =
    "model llama { dim = 64\n hidden = 160\n heads = 4\n kv_heads = 2\n seq = 32\n"
    " vocab = 96\n layers = 3 }\n"
    "input tokens: i32[seq]\n"
    "param tok_emb: [vocab, dim] = normal(0.5)\n"
    "param rms_final: [dim] = normal(1.0)\n"
    "layer block(x) {\n"
    "  param rms_att: [dim] = normal(1.0)\n"
    "  param wq: [dim, dim] = normal(0.1)\n"
    "  param wk: [dim / 2, dim] = normal(0.1)\n"
    "  param wv: [dim / 2, dim] = normal(0.1)\n"
    "  param wo: [dim, dim] = normal(0.1)\n"
    "  param rms_ffn: [dim] = normal(1.0)\n"
    "  param w1: [hidden, dim] = normal(0.1)\n"
    "  param w2: [dim, hidden] = normal(0.1)\n"
    "  param w3: [hidden, dim] = normal(0.1)\n"
    "  h = rmsnorm(x, rms_att)\n"
    "  x = x + linear(attention(rope(linear(h, wq), heads), rope(linear(h, wk), kv_heads),\n"
    "                           linear(h, wv), heads, kv_heads), wo)\n"
    "  return x + swiglu(rmsnorm(x, rms_ffn), w1, w2, w3)\n"
    "}\n"
    "x = embed(tok_emb, tokens)\n"
    "repeat layers {\n  x = block(x)\n}\n"
    "output logits = linear(rmsnorm(x, rms_final), tok_emb)\n";

static void test_dynamic_weights(void **state) {
  (void)state;
  for (int i = 0; i < ntarget_profiles; i++)
    check_model_with("dynamic weights", llama_stack, &target_profiles[i], true);
}

// The training step: forward, cross-entropy, backward, every gradient an
// output; layers' forward and backward kernels with their several values
// packed into one input and one output surface (ANE-B08, B09), every param
// a kernel input (P01). fp16: gradients pass through fp16 storage at every
// op of three layers' backward, hence the wider tolerance. Measured with the
// ANE quirks (the runner's default, runtime/exec/exec.h: narrow RMSNorm and
// softmax-backward sums): median 3.1%, worst 9.4% of the RMS, in layer 0's
// w3; without them: median 2.5%, worst 6.4%. 0.1 holds both ways.
#define TOL16_TRAIN 0.1

static void test_train_step(void **state) {
  (void)state;
  char text[sizeof llama_stack + 128];
  snprintf(text, sizeof text, "%sinput targets: i32[seq]\nloss cross_entropy(logits, targets)\n",
           llama_stack);
  for (int i = 0; i < ntarget_profiles; i++)
    check_model_mode("llama train step", text, &target_profiles[i], MODE_TRAIN, TOL16_TRAIN);
}

// Dynamic weights' blocks (ANE-P01): every matrix strip starts at a multiple
// of STRIP_ALIGN columns after the activations, the vectors share lanes of
// such strips (or rows left under a matrix), no two blocks overlap, and all
// lie in the input surface. Inference and the training step, every target.
static void check_strips(const char *name, const char *text, bool train) {
  for (int t = 0; t < ntarget_profiles; t++) {
    Capture c = {0};
    assert_true(capture_open(&c));
    char path[] = "/tmp/anec-test-lowering-XXXXXX";
    close(mkstemp(path));
    Graph *g = compile_text_as(&c, text, path, train);
    g->dynamic_weights = true;
    if (!lowering_run(g, &c.d, &target_profiles[t], NULL))
      fail_msg("%s: lowering failed:\n%s", name, capture_text(&c));
    int packed = 0;
    for (int ki = 0; ki < g->plan->nkernels; ki++) {
      Packing pk;
      int64_t surface[4];
      kernel_packing(g, ki, &pk);
      kernel_surface_shape(g, ki, true, 0, surface);
      packed += pk.n;
      for (int i = 0; i < pk.n; i++) {
        const Pack *a = &pk.packs[i];
        int64_t strip = a->col / STRIP_ALIGN * STRIP_ALIGN;
        if ((a->mode != PACK_VECTOR && a->col != strip) || strip < pk.col0 ||
            a->row + a->rows > surface[1] || a->col + a->cols > surface[3])
          fail_msg("%s (%s) %s: %s's block at row %lld, column %lld (%lld x %lld) is not an "
                   "aligned strip of [1, %lld, 1, %lld] after column %lld", name,
                   target_profiles[t].name, g->plan->kernels[ki].name, a->param->name,
                   (long long)a->row, (long long)a->col, (long long)a->rows,
                   (long long)a->cols, (long long)surface[1], (long long)surface[3],
                   (long long)pk.col0);
        for (int j = 0; j < i; j++) {
          const Pack *b = &pk.packs[j];
          if (a->row < b->row + b->rows && b->row < a->row + a->rows &&
              a->col < b->col + b->cols && b->col < a->col + a->cols)
            fail_msg("%s (%s) %s: the blocks of %s and %s overlap", name,
                     target_profiles[t].name, g->plan->kernels[ki].name, a->param->name,
                     b->param->name);
        }
      }
    }
    assert_true(packed > 0);
    ParamSet ps; // and the emitted kernels slice the input at aligned columns only
    params_init(&ps, &c.arena);
    params_init_random(&ps, g, 5);
    for (int ki = 0; ki < g->plan->nkernels; ki++) {
      KernelMil km;
      if (!emit_kernel(&c.arena, g, ki, &ps, false, &km, &c.d))
        fail_msg("%s: emit failed:\n%s", name, capture_text(&c));
      MilProgram *mp = mil_read_text("k.mil", km.text, km.len, "/tmp", NULL);
      assert_non_null(mp);
      MilCheck mc = {0};
      milcheck_run(&mc, mp, &target_profiles[t]);
      for (int i = 0; i < mc.n; i++)
        if (mc.findings[i].rule == RULE_B14)
          fail_msg("%s (%s) %s: %s", name, target_profiles[t].name, g->plan->kernels[ki].name,
                   mc.findings[i].msg);
      milcheck_free(&mc);
      mil_free(mp);
      free(km.text);
    }
    unlink(path);
    capture_close(&c);
  }
}

static void test_aligned_strips(void **state) {
  (void)state;
  char text[sizeof llama_stack + 128];
  snprintf(text, sizeof text, "%sinput targets: i32[seq]\nloss cross_entropy(logits, targets)\n",
           llama_stack);
  check_strips("dynamic weights", llama_stack, false);
  check_strips("train step", text, true);
}

// A classifier wider than the target's channel limit (here 64) is split into
// equal convs, concatenated on the CPU (ANE-B05).
static void test_wide_linear_split(void **state) {
  (void)state;
  TargetProfile narrow = *target_default();
  narrow.max_channels = 64;
  const char *text = "model m { s = 32\n d = 48\n v = 192 }\n"
                     "input x: f32[s, d]\n"
                     "param w: [v, d] = normal(0.1)\n"
                     "output y = linear(x * 2, w)\n";
  check_model_on("wide linear", text, &narrow);
  Capture c = {0}; // and the plan: 3 convs of 64 on the ANE, the concat on the CPU
  assert_true(capture_open(&c));
  char path[] = "/tmp/anec-test-lowering-XXXXXX";
  close(mkstemp(path));
  Graph *g = compile_text(&c, text, path);
  assert_true(lowering_run(g, &c.d, &narrow, NULL));
  int convs = 0, cpu = 0;
  for (int i = 0; i < g->nnodes; i++) {
    convs += g->nodes[i]->as_conv && g->nodes[i]->dev == DEV_ANE && g->nodes[i]->shape.dims[1] == 64;
    cpu += g->nodes[i]->dev == DEV_CPU;
    if (g->nodes[i]->dev == DEV_CPU)
      assert_int_equal(g->nodes[i]->op, OP_CONCAT);
  }
  assert_int_equal(convs, 3);
  assert_int_equal(cpu, 1);
  unlink(path);
  capture_close(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_elementwise),     cmocka_unit_test(test_reductions_softmax),
      cmocka_unit_test(test_data_movement),   cmocka_unit_test(test_linear_and_matmul),
      cmocka_unit_test(test_llama_layer),     cmocka_unit_test(test_qwen3_layer),
      cmocka_unit_test(test_gpt2_layer),      cmocka_unit_test(test_wide_linear_split),
      cmocka_unit_test(test_dynamic_weights), cmocka_unit_test(test_train_step),
      cmocka_unit_test(test_aligned_strips),  cmocka_unit_test(test_op_forms),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
