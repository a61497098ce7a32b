// test_elab.c — elaboration semantics, through the whole front end
// (front_compile: prelude + model, lowering, pass pipeline): parameter names
// under repeat, -D overrides, grouped-query and wide-head attention shapes,
// what CSE shares between layers, source sites and scopes of prelude nodes,
// compile-time arithmetic, layer redefinition and call arguments, and the
// six samples' parameter counts, outputs and IR dumps.
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "capture.h"

// Model texts are written here, one file per test (tests run one at a time).
static char tmpdir[64];

typedef struct T {
  Capture c; // arena and captured diagnostics
  Define defs[8];
  char def_names[8][64];
  int ndefs;
  char path[512]; // the model file of the last compile
  Graph *g;
} T;

static int group_setup(void **state) {
  (void)state;
  strcpy(tmpdir, "/tmp/anec-test-lower-XXXXXX");
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
  if (!t)
    return -1;
  if (!capture_open(&t->c))
    return -1;
  *state = t;
  return 0;
}

static int teardown(void **state) {
  T *t = *state;
  capture_close(&t->c);
  free(t);
  return 0;
}

// The diagnostics written so far.
static const char *diags(T *t) {
  return capture_text(&t->c);
}

// -D name=value, registered the way compiler/cli.c does it: the text
// "-D name=value" is a "<command line>" pseudo-file and the value points into it.
static void define(T *t, const char *arg) {
  const char *eq = strchr(arg, '=');
  assert_non_null(eq);
  assert_true(t->ndefs < 8 && eq - arg < 64);
  char text[256];
  int len = snprintf(text, sizeof text, "-D %s", arg);
  int i = t->ndefs++;
  Define *def = &t->defs[i];
  def->file = diag_add_file(&t->c.d, "<command line>", text, (size_t)len);
  memcpy(t->def_names[i], arg, (size_t)(eq - arg));
  t->def_names[i][eq - arg] = '\0';
  def->name = t->def_names[i];
  def->value = t->c.d.files[def->file].text + 3 + (eq - arg) + 1;
}

// Runs front_compile on `path` with the defines given so far.
static Graph *compile_path(T *t, const char *path) {
  snprintf(t->path, sizeof t->path, "%s", path);
  FrontOpts o = {.defs = t->defs, .ndefs = t->ndefs};
  t->g = front_compile(&t->c.arena, &t->c.d, path, &o);
  return t->g;
}

static Graph *compile_text(T *t, const char *text) {
  char path[128];
  snprintf(path, sizeof path, "%s/model.anet", tmpdir);
  unlink(path); // a new file: rewriting a truncated one makes ext4 flush it on close
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
  assert_int_equal(fclose(f), 0);
  return compile_path(t, path);
}

static const char *sample_path(const char *name) {
  static char path[512];
  snprintf(path, sizeof path, "%s/samples/%s.anet", ANEC_SOURCE_DIR, name);
  return path;
}

// Compiles and fails the test, showing the diagnostics, unless it succeeded.
static Graph *ok_text(T *t, const char *text) {
  Graph *g = compile_text(t, text);
  if (!g || t->c.d.errors)
    fail_msg("compile failed (%d errors):\n%s", t->c.d.errors, diags(t));
  return g;
}

static Graph *ok_sample(T *t, const char *name) {
  Graph *g = compile_path(t, sample_path(name));
  if (!g || t->c.d.errors)
    fail_msg("%s failed (%d errors):\n%s", name, t->c.d.errors, diags(t));
  assert_true(graph_verify(g, &t->c.d));
  return g;
}

// Compiles and expects failure with `msg` among the diagnostics.
static void err_text(T *t, const char *text, const char *msg) {
  Graph *g = compile_text(t, text);
  const char *out = diags(t);
  if (g || t->c.d.errors == 0 || !strstr(out, msg))
    fail_msg("expected an error containing \"%s\"; got %s with %d errors:\n%s", msg,
             g ? "a graph" : "NULL", t->c.d.errors, out);
}

// The id of the model file of the last compile.
static int model_file(T *t) {
  for (int i = t->c.d.nfiles - 1; i >= 0; i--)
    if (!strcmp(t->c.d.files[i].name, t->path))
      return i;
  fail_msg("model file %s not registered", t->path);
  return -1;
}

static int prelude_file(T *t) {
  for (int i = 0; i < t->c.d.nfiles; i++)
    if (!strcmp(t->c.d.files[i].name, "<prelude>"))
      return i;
  fail_msg("prelude not registered");
  return -1;
}

static Node *find_param(const Graph *g, const char *name) {
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i]->op == OP_PARAM && !strcmp(g->nodes[i]->name, name))
      return g->nodes[i];
  return NULL;
}

static void assert_param(const Graph *g, const char *name) {
  if (!find_param(g, name))
    fail_msg("no parameter named '%s'", name);
}

static void assert_no_param(const Graph *g, const char *name) {
  if (find_param(g, name))
    fail_msg("unexpected parameter '%s'", name);
}

static int count_op(const Graph *g, OpKind op) {
  int k = 0;
  for (int i = 0; i < g->nnodes; i++)
    k += g->nodes[i]->op == op;
  return k;
}

static Node *output_named(const Graph *g, const char *name) {
  for (int i = 0; i < g->noutputs; i++)
    if (!strcmp(g->output_names[i], name))
      return g->outputs[i];
  fail_msg("no output named '%s'", name);
  return NULL;
}

// Shapes compare as text, so a failure shows both: "[16, 32]".
static void assert_shape(T *t, const Node *n, const char *want) {
  assert_non_null(n);
  assert_string_equal(shape_str(&t->c.arena, &n->shape), want);
}

static const Hyper *hyper(const Graph *g, const char *name) {
  for (int i = 0; i < g->nhypers; i++)
    if (!strcmp(g->hypers[i].name, name))
      return &g->hypers[i];
  fail_msg("no hyper-parameter '%s'", name);
  return NULL;
}

static int64_t hyper_int(const Graph *g, const char *name) {
  const Hyper *h = hyper(g, name);
  if (!h->is_int)
    fail_msg("hyper-parameter '%s' is not an integer (%g)", name, h->fval);
  return h->ival;
}

static double hyper_float(const Graph *g, const char *name) {
  const Hyper *h = hyper(g, name);
  if (h->is_int)
    fail_msg("hyper-parameter '%s' is an integer (%lld), expected a float", name,
             (long long)h->ival);
  return h->fval;
}

// Shapes of the MATMUL nodes with rank-4 results, in graph order, as
// "[2, 2, 16, 16] [2, 2, 16, 8] ...".
static char *matmul4_shapes(T *t, const Graph *g, int max) {
  char *s = "";
  for (int i = 0, k = 0; i < g->nnodes && k < max; i++) {
    const Node *n = g->nodes[i];
    if (n->op == OP_MATMUL && n->shape.rank == 4) {
      s = arena_printf(&t->c.arena, "%s%s%s", s, k ? " " : "", shape_str(&t->c.arena, &n->shape));
      k++;
    }
  }
  return s;
}

static int count_matmul_shape(T *t, const Graph *g, const char *shape) {
  int k = 0;
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i]->op == OP_MATMUL && !strcmp(shape_str(&t->c.arena, &g->nodes[i]->shape), shape))
      k++;
  return k;
}

//
// A small Llama with grouped-query attention, used by several tests:
// 32 dims, 4 heads over 2 kv heads, params 1632 + layers * 9280.
//
static const char tiny_llama[] =
    "model tiny {\n"
    "  dim = 32\n"
    "  hidden = 64\n"
    "  layers = 4\n"
    "  heads = 4\n"
    "  kv_heads = 2\n"
    "  vocab = 50\n"
    "  seq = 16\n"
    "}\n"
    "input tokens: i32[seq]\n"
    "input targets: i32[seq]\n"
    "param tok_emb: [vocab, dim] = normal(0.02)\n"
    "param rms_final: [dim] = ones\n"
    "layer block(x) {\n"
    "  kv_dim = dim / heads * kv_heads\n"
    "  param rms_att: [dim] = ones\n"
    "  param wq: [dim, dim] = normal(0.02)\n"
    "  param wk: [kv_dim, dim] = normal(0.02)\n"
    "  param wv: [kv_dim, dim] = normal(0.02)\n"
    "  param wo: [dim, dim] = normal(0.02)\n"
    "  param rms_ffn: [dim] = ones\n"
    "  param w1: [hidden, dim] = normal(0.02)\n"
    "  param w2: [dim, hidden] = normal(0.02)\n"
    "  param w3: [hidden, dim] = normal(0.02)\n"
    "  h = rmsnorm(x, rms_att)\n"
    "  q = rope(linear(h, wq), heads)\n"
    "  k = rope(linear(h, wk), kv_heads)\n"
    "  v = linear(h, wv)\n"
    "  x = x + linear(attention(q, k, v, heads, kv_heads), wo)\n"
    "  return x + swiglu(rmsnorm(x, rms_ffn), w1, w2, w3)\n"
    "}\n"
    "x = embed(tok_emb, tokens)\n"
    "repeat layers {\n"
    "  x = block(x)\n"
    "}\n"
    "output logits = linear(rmsnorm(x, rms_final), tok_emb)\n"
    "loss cross_entropy(logits, targets)\n";

static int64_t tiny_params(int layers) {
  return 50 * 32 + 32 + (int64_t)layers * (32 + 32 * 32 + 2 * 16 * 32 + 32 * 32 + 32 + 3 * 64 * 32);
}

//
// Parameter names and repeat
//

static void test_top_level_params_are_plain(void **state) {
  T *t = *state;
  Graph *g = ok_text(t, tiny_llama);
  assert_param(g, "tok_emb");
  assert_param(g, "rms_final");
  assert_no_param(g, "layers.0.tok_emb");
}

static void test_params_in_repeat_are_prefixed(void **state) {
  T *t = *state;
  Graph *g = ok_text(t, tiny_llama);
  assert_param(g, "layers.0.wq");
  assert_param(g, "layers.3.wq");
  assert_param(g, "layers.3.w3");
  assert_no_param(g, "layers.4.wq");
  assert_no_param(g, "wq");
  assert_shape(t, find_param(g, "layers.3.wk"), "[16, 32]");
  assert_int_equal(count_op(g, OP_PARAM), 2 + 4 * 9);
  assert_int_equal(g->nblocks, 4);
  assert_int_equal(graph_param_count(g), tiny_params(4));
}

static void test_layer_outside_repeat_params_are_plain(void **state) {
  T *t = *state;
  Graph *g = ok_text(t,
      "model m { dim = 8 }\n"
      "input x: f32[4, dim]\n"
      "layer proj(x) {\n"
      "  param w: [dim, dim] = normal(0.02)\n"
      "  return linear(x, w)\n"
      "}\n"
      "output y = proj(x)\n");
  assert_param(g, "w");
  assert_int_equal(g->nblocks, 0);
}

static void test_nested_repeat_names(void **state) {
  T *t = *state;
  Graph *g = ok_text(t,
      "model m { dim = 8 }\n"
      "input x: f32[4, dim]\n"
      "layer proj(x) {\n"
      "  param w: [dim, dim] = normal(0.02)\n"
      "  return linear(x, w)\n"
      "}\n"
      "y = x\n"
      "repeat outer: 2 {\n"
      "  repeat inner: 3 {\n"
      "    y = proj(y)\n"
      "  }\n"
      "}\n"
      "output y\n");
  assert_param(g, "outer.0.inner.0.w");
  assert_param(g, "outer.1.inner.0.w");
  assert_param(g, "outer.1.inner.2.w");
  assert_no_param(g, "outer.2.inner.0.w");
  assert_no_param(g, "inner.0.w");
  assert_int_equal(count_op(g, OP_PARAM), 6);
  assert_int_equal(g->nblocks, 2); // top-level iterations only
  bool scoped = false;
  for (int i = 0; i < g->nnodes; i++)
    scoped |= !strcmp(g->nodes[i]->scope, "outer.1/inner.2/proj/linear");
  assert_true(scoped);
}

static void test_repeat_with_count_names_scope(void **state) {
  T *t = *state;
  Graph *g = ok_text(t,
      "model m {\n"
      "  dim = 8\n"
      "  n = 3\n"
      "}\n"
      "input x: f32[4, dim]\n"
      "layer proj(x) {\n"
      "  param w: [dim, dim] = normal(0.02)\n"
      "  return linear(x, w)\n"
      "}\n"
      "y = x\n"
      "repeat blocks: 2 * n {\n"
      "  y = proj(y)\n"
      "}\n"
      "output y\n");
  assert_param(g, "blocks.0.w");
  assert_param(g, "blocks.5.w");
  assert_no_param(g, "blocks.6.w");
  assert_no_param(g, "n.0.w");
  assert_int_equal(count_op(g, OP_PARAM), 6);
  assert_int_equal(g->nblocks, 6);
}

static void test_nblocks_sums_top_level_repeats(void **state) {
  T *t = *state;
  Graph *g = ok_text(t,
      "model m { dim = 8 }\n"
      "input x: f32[4, dim]\n"
      "layer twice(x) {\n"
      "  repeat r: 5 {\n"
      "    x = x + 1\n"
      "  }\n"
      "  return x\n"
      "}\n"
      "y = x\n"
      "repeat a: 2 {\n"
      "  y = twice(y)\n"
      "}\n"
      "repeat b: 3 {\n"
      "  y = y * 2\n"
      "}\n"
      "output y\n");
  assert_int_equal(g->nblocks, 5); // 2 + 3; the repeat inside the layer does not count
}

static void test_param_redefinition_in_same_scope(void **state) {
  T *t = *state;
  err_text(t,
      "model m { dim = 8 }\n"
      "input x: f32[4, dim]\n"
      "layer proj(x) {\n"
      "  param w: [dim, dim] = normal(0.02)\n"
      "  return linear(x, w)\n"
      "}\n"
      "output y = proj(proj(x))\n",
      "redefinition of parameter 'w'");
}

//
// -D overrides
//

static void test_define_changes_layer_count(void **state) {
  T *t = *state;
  define(t, "layers=2");
  Graph *g = ok_text(t, tiny_llama);
  assert_int_equal(g->nblocks, 2);
  assert_int_equal(count_op(g, OP_PARAM), 2 + 2 * 9);
  assert_int_equal(graph_param_count(g), tiny_params(2));
  assert_int_equal(hyper_int(g, "layers"), 2);
  assert_param(g, "layers.1.wq");
  assert_no_param(g, "layers.2.wq");
  // The hyper-parameter's location is the -D pseudo-file.
  assert_int_equal(hyper(g, "layers")->loc.file, t->defs[0].file);
}

static void test_define_seen_by_later_header_entries(void **state) {
  T *t = *state;
  define(t, "heads=2");
  Graph *g = ok_text(t,
      "model m {\n"
      "  dim = 16\n"
      "  heads = 4\n"
      "  kv_heads = heads\n"
      "  hd = dim / heads\n"
      "}\n"
      "input x: f32[4, dim]\n"
      "output y = x\n");
  assert_int_equal(hyper_int(g, "heads"), 2);
  assert_int_equal(hyper_int(g, "kv_heads"), 2);
  assert_int_equal(hyper_int(g, "hd"), 8);
  assert_int_equal(hyper_int(g, "dim"), 16);
}

static void test_define_float_value(void **state) {
  T *t = *state;
  define(t, "eps=1e-6");
  Graph *g = ok_text(t,
      "model m {\n"
      "  dim = 16\n"
      "  eps = 1e-5\n"
      "}\n"
      "input x: f32[4, dim]\n"
      "output y = x\n");
  assert_float_equal(hyper_float(g, "eps"), 1e-6, 1e-12);
}

static void test_define_of_sample(void **state) {
  T *t = *state;
  define(t, "layers=3");
  define(t, "vocab=1000");
  Graph *g = ok_sample(t, "stories15m");
  assert_int_equal(g->nblocks, 3);
  int64_t per_layer = 288 + 4 * 288 * 288 + 288 + 3 * 768 * 288;
  assert_int_equal(graph_param_count(g), 1000 * 288 + 288 + 3 * per_layer);
  assert_shape(t, output_named(g, "logits"), "[256, 1000]");
}

static void test_define_unknown_name(void **state) {
  T *t = *state;
  define(t, "layer=2");
  err_text(t, tiny_llama, "model 'tiny' has no hyper-parameter 'layer'; did you mean 'layers'?");
}

static void test_define_not_a_number(void **state) {
  T *t = *state;
  define(t, "layers=two");
  err_text(t, tiny_llama, "value of 'layers' must be a number");
}

static void test_define_too_large(void **state) {
  T *t = *state;
  define(t, "layers=99999999999999999999");
  err_text(t, tiny_llama, "value of 'layers' is too large");
}

//
// Attention shapes
//

static void test_gqa_attention_shapes(void **state) {
  T *t = *state;
  Graph *g = ok_text(t,
      "model m {\n"
      "  dim = 32\n"
      "  heads = 4\n"
      "  kv_heads = 2\n"
      "  seq = 16\n"
      "}\n"
      "input q: f32[seq, dim]\n"
      "input k: f32[seq, dim / heads * kv_heads]\n"
      "input v: f32[seq, dim / heads * kv_heads]\n"
      "output a = attention(q, k, v, heads, kv_heads)\n");
  // [kv, g, S, S] scores, then [kv, g, S, hd]
  assert_string_equal(matmul4_shapes(t, g, 4), "[2, 2, 16, 16] [2, 2, 16, 8]");
  assert_shape(t, output_named(g, "a"), "[16, 32]");
  assert_int_equal(count_op(g, OP_SOFTMAX), 1);
  assert_int_equal(count_op(g, OP_CAUSAL_MASK), 1);
}

static void test_gqa_in_tiny_llama(void **state) {
  T *t = *state;
  Graph *g = ok_text(t, tiny_llama);
  assert_int_equal(count_matmul_shape(t, g, "[2, 2, 16, 16]"), 4);
  assert_int_equal(count_matmul_shape(t, g, "[2, 2, 16, 8]"), 4);
  assert_shape(t, output_named(g, "logits"), "[16, 50]");
}

static void test_heads_not_divisible_by_kv_heads(void **state) {
  T *t = *state;
  err_text(t,
      "model m {\n"
      "  dim = 24\n"
      "  heads = 4\n"
      "  kv_heads = 3\n"
      "  seq = 8\n"
      "}\n"
      "input q: f32[seq, dim]\n"
      "input k: f32[seq, 18]\n"
      "output a = attention(q, k, k, heads, kv_heads)\n",
      "4 is not divisible by 3");
}

// Qwen-style: head_dim 16 while dim / heads is 8.
static void test_wide_head_dim(void **state) {
  T *t = *state;
  Graph *g = ok_text(t,
      "model m {\n"
      "  dim = 32\n"
      "  heads = 4\n"
      "  kv_heads = 2\n"
      "  head_dim = 16\n"
      "  seq = 8\n"
      "}\n"
      "input x: f32[seq, dim]\n"
      "param q_proj: [heads * head_dim, dim] = normal(0.02)\n"
      "param k_proj: [kv_heads * head_dim, dim] = normal(0.02)\n"
      "param v_proj: [kv_heads * head_dim, dim] = normal(0.02)\n"
      "param o_proj: [dim, heads * head_dim] = normal(0.02)\n"
      "param q_norm: [head_dim] = ones\n"
      "q = rope_half(head_rmsnorm(linear(x, q_proj), q_norm, heads), heads, 1e6)\n"
      "k = rope_half(linear(x, k_proj), kv_heads, theta = 1e6)\n"
      "a = attention(q, k, linear(x, v_proj), heads, kv_heads)\n"
      "output y = linear(a, o_proj)\n");
  assert_string_equal(matmul4_shapes(t, g, 4), "[2, 2, 8, 8] [2, 2, 8, 16]");
  assert_shape(t, output_named(g, "y"), "[8, 32]");
  assert_int_equal(graph_param_count(g), 64 * 32 * 2 + 32 * 32 * 2 + 16);
  // rope tables are [seq, head_dim / 2], shared by q and k
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i]->op == OP_ROPE_COS) {
      assert_shape(t, g->nodes[i], "[8, 8]");
      assert_float_equal(g->nodes[i]->value, 1e6, 1);
    }
  assert_int_equal(count_op(g, OP_ROPE_COS), 1);
}

static void test_qwen3_sample_attention(void **state) {
  T *t = *state;
  Graph *g = ok_sample(t, "qwen3_0_6b");
  assert_int_equal(count_matmul_shape(t, g, "[8, 2, 256, 256]"), 28);
  assert_int_equal(count_matmul_shape(t, g, "[8, 2, 256, 128]"), 28);
  assert_shape(t, find_param(g, "layers.27.q_proj"), "[2048, 1024]");
  assert_shape(t, find_param(g, "layers.27.k_proj"), "[1024, 1024]");
}

static void test_gpt2_fused_qkv_slices(void **state) {
  T *t = *state;
  Graph *g = ok_sample(t, "gpt2_124m");
  int got[3] = {0};
  for (int i = 0; i < g->nnodes; i++) {
    const Node *n = g->nodes[i];
    if (n->op != OP_SLICE)
      continue;
    assert_int_equal(n->axis, 1);
    assert_int_equal(n->end - n->begin, 768);
    assert_int_equal(n->begin % 768, 0);
    assert_shape(t, n->in[0], "[1024, 2304]");
    assert_shape(t, n, "[1024, 768]");
    got[n->begin / 768]++;
  }
  assert_int_equal(got[0], 12);
  assert_int_equal(got[1], 12);
  assert_int_equal(got[2], 12);
  assert_int_equal(count_matmul_shape(t, g, "[12, 1, 1024, 1024]"), 12);
  assert_int_equal(count_matmul_shape(t, g, "[12, 1, 1024, 64]"), 12);
}

//
// CSE across layers
//

static void test_cse_shares_mask_and_rope_tables(void **state) {
  T *t = *state;
  define(t, "layers=3");
  Graph *g = ok_text(t, tiny_llama);
  assert_int_equal(g->nblocks, 3);
  assert_int_equal(count_op(g, OP_CAUSAL_MASK), 1);
  assert_int_equal(count_op(g, OP_ROPE_COS), 1);
  assert_int_equal(count_op(g, OP_ROPE_SIN), 1);
}

static void test_cse_shares_in_sample(void **state) {
  T *t = *state;
  define(t, "layers=3");
  Graph *g = ok_sample(t, "stories15m");
  assert_int_equal(count_op(g, OP_CAUSAL_MASK), 1);
  assert_int_equal(count_op(g, OP_ROPE_COS), 1);
  assert_int_equal(count_op(g, OP_ROPE_SIN), 1);
  assert_int_equal(count_op(g, OP_PARAM), 2 + 3 * 9);
}

//
// Sites and scopes
//

static void test_prelude_nodes_sited_in_model(void **state) {
  T *t = *state;
  Graph *g = ok_text(t, tiny_llama);
  int mf = model_file(t), pf = prelude_file(t), from_prelude = 0;
  for (int i = 0; i < g->nnodes; i++) {
    const Node *n = g->nodes[i];
    if (n->site.file != mf)
      fail_msg("node %%%d (%s, scope %s) has site in file %d, not the model's %d", n->id,
               op_info[n->op].name, n->scope, n->site.file, mf);
    if (n->loc.file == pf) {
      from_prelude++;
      assert_true(n->site.first_line > 0);
    } else {
      assert_int_equal(n->loc.file, mf);
      assert_int_equal(n->site.first_line, n->loc.first_line);
      assert_int_equal(n->site.first_column, n->loc.first_column);
    }
  }
  assert_true(from_prelude > 0);
}

// A prelude node's site is the innermost call in the model file.
static void test_prelude_site_is_model_call(void **state) {
  T *t = *state;
  Graph *g = ok_text(t,
      "model m { dim = 8 }\n"
      "input x: f32[4, dim]\n"
      "input w: f32[dim]\n"
      "output y = rmsnorm(x, w)\n");
  int pf = prelude_file(t);
  Node *rs = NULL;
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i]->op == OP_RSQRT)
      rs = g->nodes[i];
  assert_non_null(rs);
  assert_int_equal(rs->loc.file, pf);
  assert_int_equal(rs->site.first_line, 4);
  assert_int_equal(rs->site.first_column, 12); // rmsnorm(x, w)
  assert_string_equal(rs->scope, "rmsnorm");
}

static void test_scopes(void **state) {
  T *t = *state;
  Graph *g = ok_text(t, tiny_llama);
  bool attn = false, rope = false, top_embed = false;
  for (int i = 0; i < g->nnodes; i++) {
    const Node *n = g->nodes[i];
    assert_non_null(n->scope);
    if (!strcmp(n->scope, "layers.1/block/attention")) {
      attn = true;
      // the scope's nodes come from the prelude's attention layer
      assert_int_equal(n->loc.file, prelude_file(t));
    }
    rope |= !strcmp(n->scope, "layers.3/block/rope");
    if (n->op == OP_EMBED)
      top_embed = !strcmp(n->scope, "");
  }
  assert_true(attn);
  assert_true(rope);
  assert_true(top_embed);
  assert_string_equal(find_param(g, "layers.2.wq")->scope, "layers.2/block");
}

//
// Compile-time arithmetic
//

static const char arith_model[] =
    "model m {\n"
    "  dim = 48\n"
    "  heads = 6\n"
    "  kv_heads = 2\n"
    "  r = sqrt(16)\n"
    "  kv_dim = dim / heads * kv_heads\n"
    "  rem = 17 % 5\n"
    "  frem = 7.5 % 2\n"
    "  lo = min(dim, heads)\n"
    "  hi = max(3, 7.5)\n"
    "  hi_int = max(kv_heads, 1)\n"
    "  yes = true\n"
    "  no = false\n"
    "  neg = -dim + 1\n"
    "  prec = 2 + 3 * 4 - 10 / 5\n"
    "  par = (2 + 3) * 4\n"
    "  e0 = exp(0)\n"
    "  half = 1 / 2.0\n"
    "}\n"
    "input x: f32[kv_dim, dim]\n"
    "param p: [size(x, -1), size(x, 0)] = zeros\n"
    "output rowmax = max(x, -1)\n"
    "output allmax = max(x)\n"
    "output q = matmul(x, p, transpose_b = false)\n"
    "output q2 = matmul(x, p, transpose_a = true, transpose_b = true)\n";

static void test_arith_folds_in_header(void **state) {
  T *t = *state;
  Graph *g = ok_text(t, arith_model);
  assert_float_equal(hyper_float(g, "r"), 4.0, 0);
  assert_int_equal(hyper_int(g, "kv_dim"), 16);
  assert_int_equal(hyper_int(g, "rem"), 2);
  assert_float_equal(hyper_float(g, "frem"), 1.5, 0);
  assert_int_equal(hyper_int(g, "lo"), 6);
  assert_float_equal(hyper_float(g, "hi"), 7.5, 0);
  assert_int_equal(hyper_int(g, "hi_int"), 2);
  assert_int_equal(hyper_int(g, "yes"), 1);
  assert_int_equal(hyper_int(g, "no"), 0);
  assert_int_equal(hyper_int(g, "neg"), -47);
  assert_int_equal(hyper_int(g, "prec"), 12);
  assert_int_equal(hyper_int(g, "par"), 20);
  assert_float_equal(hyper_float(g, "e0"), 1.0, 0);
  assert_float_equal(hyper_float(g, "half"), 0.5, 0);
  // true and false are constants, not hyper-parameters
  for (int i = 0; i < g->nhypers; i++) {
    assert_string_not_equal(g->hypers[i].name, "true");
    assert_string_not_equal(g->hypers[i].name, "false");
  }
  assert_int_equal(g->nhypers, 17);
  assert_string_equal(g->hypers[0].name, "dim"); // header order
  assert_string_equal(g->hypers[16].name, "half");
}

static void test_size_and_tensor_max(void **state) {
  T *t = *state;
  Graph *g = ok_text(t, arith_model);
  assert_shape(t, find_param(g, "p"), "[48, 16]");
  Node *rowmax = output_named(g, "rowmax");
  assert_int_equal(rowmax->op, OP_MAX);
  assert_shape(t, rowmax, "[16, 1]");
  Node *allmax = output_named(g, "allmax");
  assert_int_equal(allmax->op, OP_MAX);
  assert_int_equal(allmax->axis, AXIS_ALL);
  assert_shape(t, allmax, "[]");
  Node *q = output_named(g, "q");
  assert_false(q->transpose_b);
  assert_shape(t, q, "[16, 16]");
  Node *q2 = output_named(g, "q2");
  assert_true(q2->transpose_a && q2->transpose_b);
  assert_shape(t, q2, "[48, 48]");
}

static void test_number_mixed_with_tensor_is_const(void **state) {
  T *t = *state;
  Graph *g = ok_text(t,
      "model m { dim = 8 }\n"
      "input x: f32[4, dim]\n"
      "output y = x * sqrt(dim * 2) + 1\n");
  assert_int_equal(count_op(g, OP_SQRT), 0); // folded
  bool four = false, one = false;
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i]->op == OP_CONST) {
      four |= g->nodes[i]->value == 4.0;
      one |= g->nodes[i]->value == 1.0;
    }
  assert_true(four && one);
  assert_int_equal(count_op(g, OP_CONST), 2);
}

static void test_arith_inexact_division(void **state) {
  T *t = *state;
  err_text(t,
           "model m {\n  dim = 48\n  heads = 5\n  hd = dim / heads\n}\n"
           "input x: f32[4]\noutput y = x\n",
           "48 is not divisible by 5: '/' on integers must divide exactly");
}

static void test_arith_division_by_zero(void **state) {
  T *t = *state;
  err_text(t, "model m {\n  a = 1 % 0\n}\ninput x: f32[4]\noutput y = x\n", "division by zero");
}

static void test_arith_overflow(void **state) {
  T *t = *state;
  err_text(t, "model m {\n  a = 9223372036854775807 + 1\n}\ninput x: f32[4]\noutput y = x\n",
           "integer overflow");
}

static void test_min_of_tensor_is_error(void **state) {
  T *t = *state;
  err_text(t, "model m { a = 1 }\ninput x: f32[4]\noutput y = min(x, 1)\n",
           "'min' of two values needs numbers");
}

static void test_true_is_constant(void **state) {
  T *t = *state;
  err_text(t, "model m { a = 1 }\ninput x: f32[4]\ntrue = 0\noutput y = x\n",
           "cannot assign to constant 'true'");
}

static void test_sqrt_of_negative(void **state) {
  T *t = *state;
  err_text(t, "model m {\n  a = sqrt(0 - 4)\n}\ninput x: f32[4]\noutput y = x\n",
           "'sqrt' of -4 is undefined");
}

static void test_matmul_of_numbers_is_error(void **state) {
  T *t = *state;
  err_text(t, "model m {\n  a = 2 @ 3\n}\ninput x: f32[4]\noutput y = x\n",
           "'@' needs tensors, not numbers");
}

static void test_float_remainder_by_zero(void **state) {
  T *t = *state;
  err_text(t, "model m {\n  a = 5.0 % 0\n}\ninput x: f32[4]\noutput y = x\n",
           "division by zero");
}

// A left-deep chain has no brackets for the parser to limit; the lowering
// stops at 1000 levels with one error instead of overflowing its stack.
static void test_expression_depth_limit(void **state) {
  T *t = *state;
  size_t n = 1500, len = 64 + 4 * n;
  char *text = malloc(len);
  assert_non_null(text);
  strcpy(text, "model m {\n  a = 1");
  for (size_t i = 0; i < n; i++)
    strcat(text, " + 1");
  strcat(text, "\n}\ninput x: f32[4]\noutput y = x\n");
  err_text(t, text, "expression nested too deeply");
  free(text);
  assert_int_equal(t->c.d.errors, 1);
}

static void test_expression_below_depth_limit(void **state) {
  T *t = *state;
  size_t n = 900, len = 64 + 4 * n;
  char *text = malloc(len);
  assert_non_null(text);
  strcpy(text, "model m {\n  a = 1");
  for (size_t i = 0; i < n; i++)
    strcat(text, " + 1");
  strcat(text, "\n}\ninput x: f32[4]\noutput y = x\n");
  Graph *g = ok_text(t, text);
  free(text);
  assert_int_equal(hyper_int(g, "a"), 901);
}

//
// Layers: redefinition, defaults, named arguments
//

static void test_model_redefines_prelude_layer(void **state) {
  T *t = *state;
  Graph *g = ok_text(t,
      "model m { dim = 8 }\n"
      "layer rmsnorm(x, w, eps = 1e-5) {\n"
      "  return x * w\n"
      "}\n"
      "input x: f32[4, dim]\n"
      "input w: f32[dim]\n"
      "output y = rmsnorm(x, w)\n");
  assert_int_equal(count_op(g, OP_RSQRT), 0);
  assert_int_equal(count_op(g, OP_MEAN), 0);
  assert_int_equal(count_op(g, OP_MUL), 1);
  assert_int_equal(output_named(g, "y")->loc.file, model_file(t));
}

// Prelude layers that call a redefined layer get the model's version too:
// calls are resolved by name, newest definition first (swiglu calls linear).
static void test_redefinition_seen_by_prelude_layers(void **state) {
  T *t = *state;
  Graph *g = ok_text(t,
      "model m { dim = 8 }\n"
      "layer linear(x, w) {\n"
      "  return x * w\n"
      "}\n"
      "input x: f32[4, dim]\n"
      "input w: f32[dim]\n"
      "output y = swiglu(x, w, w, w)\n");
  assert_int_equal(count_op(g, OP_MATMUL), 0);
  assert_int_equal(count_op(g, OP_SILU), 1);
  assert_shape(t, output_named(g, "y"), "[4, 8]");
}

static void test_layer_defaults_and_kwargs(void **state) {
  T *t = *state;
  Graph *g = ok_text(t,
      "model m { n = 16 }\n"
      "layer rs(x, rows = 2, cols = -1) {\n"
      "  return reshape(x, [rows, cols])\n"
      "}\n"
      "input x: f32[n]\n"
      "output a = rs(x)\n"
      "output b = rs(x, 4)\n"
      "output c = rs(x, cols = 16, rows = 1)\n"
      "output d = rs(cols = 2, x = x, rows = -1)\n");
  assert_shape(t, output_named(g, "a"), "[2, 8]");
  assert_shape(t, output_named(g, "b"), "[4, 4]");
  assert_shape(t, output_named(g, "c"), "[1, 16]");
  assert_shape(t, output_named(g, "d"), "[8, 2]");
}

static void test_default_sees_hyper_parameters(void **state) {
  T *t = *state;
  Graph *g = ok_text(t,
      "model m {\n  n = 16\n  rows = 4\n}\n"
      "layer rs(x, r = rows * 2) {\n"
      "  return reshape(x, [r, -1])\n"
      "}\n"
      "input x: f32[n]\n"
      "output a = rs(x)\n");
  assert_shape(t, output_named(g, "a"), "[8, 2]");
}

static void test_kwarg_unknown_name(void **state) {
  T *t = *state;
  err_text(t,
      "model m { n = 16 }\n"
      "layer rs(x, rows = 2) {\n  return reshape(x, [rows, -1])\n}\n"
      "input x: f32[n]\n"
      "output a = rs(x, rowz = 4)\n",
      "'rs' has no argument named 'rowz'; did you mean 'rows'?");
}

static void test_kwarg_given_twice(void **state) {
  T *t = *state;
  err_text(t,
      "model m { n = 16 }\n"
      "layer rs(x, rows = 2) {\n  return reshape(x, [rows, -1])\n}\n"
      "input x: f32[n]\n"
      "output a = rs(x, 4, rows = 4)\n",
      "argument 'rows' of 'rs' given twice");
}

static void test_missing_argument(void **state) {
  T *t = *state;
  err_text(t,
      "model m { n = 16 }\n"
      "layer rs(x, rows) {\n  return reshape(x, [rows, -1])\n}\n"
      "input x: f32[n]\n"
      "output a = rs(x)\n",
      "missing argument 'rows' in call to 'rs'");
}

static void test_recursive_layer(void **state) {
  T *t = *state;
  err_text(t,
      "model m { n = 16 }\n"
      "layer f(x) {\n  return g(x)\n}\n"
      "layer g(x) {\n  return f(x)\n}\n"
      "input x: f32[n]\n"
      "output a = f(x)\n",
      "recursive use of layer 'f'");
}

//
// The samples
//

typedef struct Sample {
  const char *name;
  int64_t params;
  int nblocks;
  const char *out;       // the first output's name
  const char *out_shape;
} Sample;

static const Sample samples[] = {
    {"stories15m", 15191712, 6, "logits", "[256, 32000]"},
    {"stories110m", 109529856, 12, "logits", "[256, 32000]"},
    {"stories260k", 260032, 5, "logits", "[512, 512]"},
    {"qwen3_0_6b", 596049920, 28, "logits", "[256, 151936]"},
    {"gpt2_124m", 124439808, 12, "logits", "[1024, 50257]"},
    {"layer768", 7079424, 1, "y", "[512, 768]"},
};

static void check_sample(T *t, const Sample *s) {
  Graph *g = ok_sample(t, s->name);
  assert_string_equal(g->model, s->name);
  assert_int_equal(graph_param_count(g), s->params);
  assert_int_equal(g->nblocks, s->nblocks);
  assert_int_equal(g->noutputs, 1);
  assert_string_equal(g->output_names[0], s->out);
  assert_shape(t, g->outputs[0], s->out_shape);
  assert_non_null(g->loss);
  assert_int_equal(g->loss->shape.rank, 0);
  assert_int_equal(g->loss->dtype, DT_F32);
}

static void test_sample_stories15m(void **state) { check_sample(*state, &samples[0]); }
static void test_sample_stories110m(void **state) { check_sample(*state, &samples[1]); }
static void test_sample_stories260k(void **state) { check_sample(*state, &samples[2]); }
static void test_sample_qwen3_0_6b(void **state) { check_sample(*state, &samples[3]); }
static void test_sample_gpt2_124m(void **state) { check_sample(*state, &samples[4]); }
static void test_sample_layer768(void **state) { check_sample(*state, &samples[5]); }

static void test_sample_loss_kinds(void **state) {
  T *t = *state;
  Graph *g = ok_sample(t, "stories15m");
  assert_int_equal(g->loss->op, OP_CROSS_ENTROPY);
  g = ok_sample(t, "layer768");
  assert_int_equal(g->loss->op, OP_MEAN); // mse
  assert_int_equal(g->loss->axis, AXIS_ALL);
}

// The llama2.c checkpoint of stories260K: a 28-byte header (7 int32), then
// float32 weights, then the RoPE tables freq_cis_real and freq_cis_imag
// (seq * head_size / 2 floats each), the classifier shared with the embedding.
// The checkpoint is tests/data/llama2c/stories260K_plctlab.bin.
static void test_stories260k_matches_checkpoint(void **state) {
  T *t = *state;
  const char *path = ANEC_SOURCE_DIR "/tests/data/llama2c/stories260K_plctlab.bin";
  struct stat st;
  if (stat(path, &st) != 0)
    fail_msg("%s not found", path);
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  int32_t hdr[7]; // dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len
  assert_int_equal(fread(hdr, sizeof hdr, 1, f), 1);
  fclose(f);
  Graph *g = ok_sample(t, "stories260k");
  assert_int_equal(hdr[0], hyper_int(g, "dim"));
  assert_int_equal(hdr[1], hyper_int(g, "hidden"));
  assert_int_equal(hdr[2], hyper_int(g, "layers"));
  assert_int_equal(hdr[3], hyper_int(g, "heads"));
  assert_int_equal(hdr[4], hyper_int(g, "kv_heads"));
  assert_int_equal(hdr[5], hyper_int(g, "vocab")); // positive: shared classifier
  assert_int_equal(hdr[6], hyper_int(g, "seq"));
  assert_int_equal((st.st_size - 28) % 4, 0);
  int64_t floats = (st.st_size - 28) / 4;
  int64_t seq = hdr[6], head = hdr[0] / hdr[3];
  int64_t freq_cis = 2 * seq * head / 2;
  assert_int_equal(graph_param_count(g), floats - freq_cis);
}

//
// IR dumps are deterministic
//

static char *dump_of(const char *sample, size_t *len) {
  Arena a = {0};
  Diag d;
  FILE *quiet = fopen("/dev/null", "w");
  assert_non_null(quiet);
  diag_init(&d, quiet);
  FrontOpts o = {0};
  Graph *g = front_compile(&a, &d, sample_path(sample), &o);
  assert_non_null(g);
  char *buf = NULL;
  FILE *out = open_memstream(&buf, len);
  assert_non_null(out);
  graph_dump(g, out, NULL);
  fclose(out);
  diag_free(&d);
  arena_free(&a);
  fclose(quiet);
  return buf;
}

static void check_dump_stable(const char *sample) {
  size_t n1, n2;
  char *a = dump_of(sample, &n1), *b = dump_of(sample, &n2);
  size_t i = 0;
  while (i < n1 && i < n2 && a[i] == b[i])
    i++;
  if (i < n1 || i < n2) {
    size_t line = 1;
    for (size_t k = 0; k < i; k++)
      line += a[k] == '\n';
    fail_msg("%s: dumps differ at byte %zu (line %zu); sizes %zu and %zu", sample, i, line, n1,
             n2);
  }
  assert_true(n1 > 1000);
  free(a);
  free(b);
}

static void test_dump_deterministic(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof samples / sizeof *samples; i++)
    check_dump_stable(samples[i].name);
}

int main(void) {
#define T_(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
  const struct CMUnitTest tests[] = {
      T_(test_top_level_params_are_plain),
      T_(test_params_in_repeat_are_prefixed),
      T_(test_layer_outside_repeat_params_are_plain),
      T_(test_nested_repeat_names),
      T_(test_repeat_with_count_names_scope),
      T_(test_nblocks_sums_top_level_repeats),
      T_(test_param_redefinition_in_same_scope),
      T_(test_define_changes_layer_count),
      T_(test_define_seen_by_later_header_entries),
      T_(test_define_float_value),
      T_(test_define_of_sample),
      T_(test_define_unknown_name),
      T_(test_define_not_a_number),
      T_(test_define_too_large),
      T_(test_gqa_attention_shapes),
      T_(test_gqa_in_tiny_llama),
      T_(test_heads_not_divisible_by_kv_heads),
      T_(test_wide_head_dim),
      T_(test_qwen3_sample_attention),
      T_(test_gpt2_fused_qkv_slices),
      T_(test_cse_shares_mask_and_rope_tables),
      T_(test_cse_shares_in_sample),
      T_(test_prelude_nodes_sited_in_model),
      T_(test_prelude_site_is_model_call),
      T_(test_scopes),
      T_(test_arith_folds_in_header),
      T_(test_size_and_tensor_max),
      T_(test_number_mixed_with_tensor_is_const),
      T_(test_arith_inexact_division),
      T_(test_arith_division_by_zero),
      T_(test_arith_overflow),
      T_(test_min_of_tensor_is_error),
      T_(test_true_is_constant),
      T_(test_sqrt_of_negative),
      T_(test_matmul_of_numbers_is_error),
      T_(test_float_remainder_by_zero),
      T_(test_expression_depth_limit),
      T_(test_expression_below_depth_limit),
      T_(test_model_redefines_prelude_layer),
      T_(test_redefinition_seen_by_prelude_layers),
      T_(test_layer_defaults_and_kwargs),
      T_(test_default_sees_hyper_parameters),
      T_(test_kwarg_unknown_name),
      T_(test_kwarg_given_twice),
      T_(test_missing_argument),
      T_(test_recursive_layer),
      T_(test_sample_stories15m),
      T_(test_sample_stories110m),
      T_(test_sample_stories260k),
      T_(test_sample_qwen3_0_6b),
      T_(test_sample_gpt2_124m),
      T_(test_sample_layer768),
      T_(test_sample_loss_kinds),
      T_(test_stories260k_matches_checkpoint),
      T_(test_dump_deterministic),
  };
#undef T_
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
