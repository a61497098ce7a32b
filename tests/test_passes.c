// test_passes.c — the graph passes and their driver: CSE merges what computes
// the same value (and never parameters), DCE drops dead nodes but keeps the
// model's inputs and parameters, the verifier catches corrupted graphs, and
// the pipeline dumps stable IR text, and place keeps host-side sums on the CPU.
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capture.h"

typedef struct T {
  Graph *g;
  Capture c; // arena and captured diagnostics
} T;

static int setup(void **state) {
  T *t = calloc(1, sizeof *t);
  if (!capture_open(&t->c))
    return -1;
  t->g = graph_new(&t->c.arena);
  t->g->model = "tiny";
  t->g->file = "tiny.anet";
  *state = t;
  return 0;
}

static int teardown(void **state) {
  T *t = *state;
  capture_close(&t->c);
  free(t);
  return 0;
}

static const char *output(T *t) {
  return capture_text(&t->c);
}

// Line `line`, column `col` of the model file, which has no text here.
static SrcLoc at(int line, int col) {
  return (SrcLoc){-1, line, col, line, col};
}

static Shape sh(const char *dims) {
  Shape s = {0};
  for (char *end; *dims; dims = end) {
    s.dims[s.rank++] = strtoll(dims, &end, 10);
    if (end == dims)
      break;
  }
  return s;
}

static Node *source(T *t, OpKind op, const char *name, DType dt, const char *dims) {
  Node *n = graph_add(t->g, op, NULL, 0, loc_none());
  n->name = name;
  n->dtype = dt;
  n->shape = sh(dims);
  assert_true(node_infer(n, &t->c.d));
  return n;
}

static Node *konst(T *t, double v) {
  Node *n = graph_add(t->g, OP_CONST, NULL, 0, loc_none());
  n->value = v;
  return n;
}

// Adds an op node and infers it; attributes are set through `init`.
static Node *add(T *t, OpKind op, Node *a, Node *b) {
  Node *in[2] = {a, b};
  Node *n = graph_add(t->g, op, in, b ? 2 : 1, loc_none());
  assert_true(node_infer(n, &t->c.d));
  return n;
}

static Node *sum(T *t, Node *x, int axis) {
  Node *n = graph_add(t->g, OP_SUM, &x, 1, loc_none());
  n->axis = axis;
  assert_true(node_infer(n, &t->c.d));
  return n;
}

static int count_op(const Graph *g, OpKind op) {
  int k = 0;
  for (int i = 0; i < g->nnodes; i++)
    k += g->nodes[i]->op == op;
  return k;
}

static void assert_numbered(const Graph *g) {
  for (int i = 0; i < g->nnodes; i++)
    assert_int_equal(g->nodes[i]->id, i);
}

//
// CSE
//

static void test_cse_merges(void **state) {
  T *t = *state;
  Graph *g = t->g;
  Node *x = source(t, OP_INPUT, "x", DT_F32, "4 4");
  Node *m1 = source(t, OP_CAUSAL_MASK, NULL, DT_F32, "4 4");
  Node *c1 = konst(t, 1.0);
  Node *a1 = add(t, OP_ADD, add(t, OP_ADD, x, m1), c1);
  Node *m2 = source(t, OP_CAUSAL_MASK, NULL, DT_F32, "4 4");
  Node *c2 = konst(t, 1.0);
  Node *a2 = add(t, OP_ADD, add(t, OP_ADD, x, m2), c2);
  Node *c3 = konst(t, 2.0);
  Node *out = add(t, OP_MUL, add(t, OP_SUB, a1, a2), c3);
  graph_add_output(g, "y", out);
  graph_add_output(g, "a2", a2);
  assert_int_equal(g->nnodes, 12);
  assert_true(pass_cse(g, &t->c.d));
  assert_true(graph_verify(g, &t->c.d));
  assert_numbered(g);
  assert_int_equal(count_op(g, OP_CAUSAL_MASK), 1);
  assert_int_equal(count_op(g, OP_CONST), 2);
  assert_int_equal(count_op(g, OP_ADD), 2);
  assert_int_equal(g->nnodes, 8);
  assert_ptr_equal(g->outputs[1], a1);
  Node *s = g->outputs[0]->in[0];
  assert_ptr_equal(s->in[0], s->in[1]);
}

static void test_cse_keeps_distinct(void **state) {
  T *t = *state;
  Graph *g = t->g;
  Node *w1 = source(t, OP_PARAM, "w1", DT_F32, "4 4");
  Node *w2 = source(t, OP_PARAM, "w2", DT_F32, "4 4");
  source(t, OP_INPUT, "x1", DT_F32, "4");
  source(t, OP_INPUT, "x2", DT_F32, "4");
  sum(t, w1, 0);
  sum(t, w1, 1);
  add(t, OP_MATMUL, w1, w2);
  Node *mt = graph_add(g, OP_MATMUL, (Node *[]){w1, w2}, 2, loc_none());
  mt->transpose_b = true;
  assert_true(node_infer(mt, &t->c.d));
  source(t, OP_CAUSAL_MASK, NULL, DT_F32, "4 4");
  source(t, OP_CAUSAL_MASK, NULL, DT_F32, "8 8");
  Node *r1 = source(t, OP_ROPE_COS, NULL, DT_F32, "4 2");
  Node *r2 = source(t, OP_ROPE_COS, NULL, DT_F32, "4 2");
  Node *r3 = source(t, OP_ROPE_SIN, NULL, DT_F32, "4 2");
  r1->value = r3->value = 10000;
  r2->value = 500000;
  konst(t, 0.0);
  konst(t, -0.0);
  int before = g->nnodes;
  assert_true(pass_cse(g, &t->c.d));
  assert_int_equal(g->nnodes, before);
}

// Reshapes of one input to one shape are one value, however written.
static void test_cse_reshape(void **state) {
  T *t = *state;
  Node *x = source(t, OP_INPUT, "x", DT_F32, "4 6");
  Node *r1 = graph_add(t->g, OP_RESHAPE, &x, 1, loc_none());
  r1->target = sh("4 2 -1");
  Node *r2 = graph_add(t->g, OP_RESHAPE, &x, 1, loc_none());
  r2->target = sh("4 2 3");
  assert_true(node_infer(r1, &t->c.d) && node_infer(r2, &t->c.d));
  graph_add_output(t->g, "y", add(t, OP_ADD, r1, r2));
  assert_true(pass_cse(t->g, &t->c.d));
  assert_int_equal(t->g->nnodes, 3);
}

//
// DCE
//

static void test_dce(void **state) {
  T *t = *state;
  Graph *g = t->g;
  Node *x = source(t, OP_INPUT, "x", DT_F32, "4");
  source(t, OP_INPUT, "unused_in", DT_F32, "4");
  Node *w = source(t, OP_PARAM, "w", DT_F32, "4");
  source(t, OP_PARAM, "unused_w", DT_F32, "4");
  Node *dead = add(t, OP_EXP, add(t, OP_MUL, x, w), NULL);
  add(t, OP_RELU, dead, NULL);
  Node *y = add(t, OP_ADD, x, w);
  source(t, OP_CAUSAL_MASK, NULL, DT_F32, "4 4");
  Node *loss = sum(t, add(t, OP_SQRT, x, NULL), AXIS_ALL);
  graph_add_output(g, "y", y);
  g->loss = loss;
  assert_true(pass_dce(g, &t->c.d));
  assert_true(graph_verify(g, &t->c.d));
  assert_numbered(g);
  assert_int_equal(g->nnodes, 7);
  assert_int_equal(count_op(g, OP_INPUT), 2);
  assert_int_equal(count_op(g, OP_PARAM), 2);
  assert_int_equal(count_op(g, OP_EXP) + count_op(g, OP_MUL) + count_op(g, OP_RELU), 0);
  assert_int_equal(count_op(g, OP_CAUSAL_MASK), 0);
  assert_ptr_equal(g->outputs[0], y);
  assert_ptr_equal(g->loss, loss);
  assert_int_equal(loss->id, 6);
}

//
// The verifier
//

static void expect_verify_error(T *t, const char *msg) {
  assert_false(graph_verify(t->g, &t->c.d));
  const char *out = output(t);
  if (!strstr(out, msg))
    fprintf(stderr, "want: %s\ngot:  %s", msg, out);
  assert_non_null(strstr(out, msg));
}

static void test_verify_ok(void **state) {
  T *t = *state;
  Node *x = source(t, OP_INPUT, "x", DT_F32, "2 3");
  Node *s = sum(t, add(t, OP_EXP, x, NULL), AXIS_ALL);
  t->g->loss = s;
  assert_true(graph_verify(t->g, &t->c.d));
  assert_int_equal(t->c.d.errors, 0);
  assert_string_equal(output(t), "");
}

static void test_verify_wrong_shape(void **state) {
  T *t = *state;
  Node *x = source(t, OP_INPUT, "x", DT_F32, "2 3");
  Node *a = add(t, OP_ADD, x, x);
  a->shape = sh("2 2");
  expect_verify_error(t, "anec: error: internal error: verifier: type f32[2, 2] differs from "
                         "the inferred f32[2, 3] at node %1 (add)\n");
  assert_int_equal(t->c.d.errors, 1); // the quiet re-inference counts nothing here
}

static void test_verify_failing_inference(void **state) {
  T *t = *state;
  Node *x = source(t, OP_INPUT, "x", DT_F32, "2 3");
  Node *s = sum(t, x, 1);
  s->axis = 5;
  expect_verify_error(t, "internal error: verifier: inference fails at node %1 (sum)\n");
  assert_null(strstr(output(t), "out of range"));
}

static void test_verify_order(void **state) {
  T *t = *state;
  Graph *g = t->g;
  Node *x = source(t, OP_INPUT, "x", DT_F32, "2");
  Node *e = add(t, OP_EXP, x, NULL);
  Node *r = add(t, OP_RELU, e, NULL);
  g->nodes[1] = r;
  g->nodes[2] = e;
  r->id = 1;
  e->id = 2;
  expect_verify_error(t, "internal error: verifier: input 0 (%2) does not precede its use "
                         "at node %1 (relu)\n");
}

static void test_verify_duplicate_name(void **state) {
  T *t = *state;
  source(t, OP_PARAM, "w", DT_F32, "2");
  source(t, OP_INPUT, "x", DT_F32, "2");
  source(t, OP_PARAM, "w", DT_F32, "3");
  expect_verify_error(t, "internal error: verifier: name 'w' is also %0's at node %2 (param)\n");
}

static void test_verify_structure(void **state) {
  T *t = *state;
  Graph *g = t->g;
  Node *x = source(t, OP_INPUT, "x", DT_F32, "2");
  Node *e = add(t, OP_EXP, x, NULL);
  e->id = 7;
  expect_verify_error(t, "internal error: verifier: id %7 differs from the position at node %1 (exp)\n");
  e->id = 1;
  Node stranger = *x;
  e->in[0] = &stranger;
  expect_verify_error(t, "internal error: verifier: input 0 is not a node of the graph at node %1 (exp)\n");
  e->in[0] = x;
  e->nin = 2;
  expect_verify_error(t, "internal error: verifier: 2 inputs where the op takes 1 at node %1 (exp)\n");
  e->nin = 1;
  g->loss = e;
  expect_verify_error(t, "internal error: verifier: the loss has rank 1, not 0 at node %1 (exp)\n");
  g->loss = NULL;
  graph_add_output(g, "y", &stranger);
  expect_verify_error(t, "internal error: verifier: output 'y' is not a node of the graph\n");
}

//
// The pipeline and the dump
//

static void test_pipeline_table(void **state) {
  (void)state;
  assert_int_equal(npipeline, 3);
  assert_string_equal(pipeline[0].name, "infer");
  assert_string_equal(pipeline[1].name, "cse");
  assert_string_equal(pipeline[2].name, "dce");
  for (int i = 0; i < npipeline; i++) {
    assert_ptr_equal(pipeline_find(pipeline[i].name), &pipeline[i]);
    assert_non_null(strstr(pipeline[i].contract, "requires: "));
    assert_non_null(strstr(pipeline[i].contract, "provides: "));
  }
  assert_null(pipeline_find("nope"));
}

// A graph with one duplicate constant, one dead node and a big parameter.
static void build_small(T *t) {
  Node *x = source(t, OP_INPUT, "x", DT_F32, "2 1000");
  Node *w = source(t, OP_PARAM, "w", DT_F32, "1000 1000");
  w->init = INIT_ZEROS;
  Node *y = add(t, OP_MATMUL, x, w);
  Node *z = add(t, OP_ADD, add(t, OP_MUL, y, konst(t, 2)), konst(t, 2));
  add(t, OP_EXP, z, NULL);
  graph_add_output(t->g, "z", z);
}

static void test_pipeline_dump(void **state) {
  T *t = *state;
  build_small(t);
  char *text = NULL;
  size_t len = 0;
  FILE *dump = open_memstream(&text, &len);
  PipelineOpts o = {.print_after = "cse", .dump = dump};
  assert_true(pipeline_run(t->g, &t->c.d, &o));
  fclose(dump);
  assert_non_null(strstr(text, "; anec IR: model tiny (tiny.anet), after 'cse'\n"
                               "; 7 nodes, 2 inputs+params, 1,000,000 parameters, "
                               "4.01 MFLOP forward\n"));
  assert_null(strstr(text, "after 'infer'"));
  assert_null(strstr(text, "after 'dce'"));
  assert_int_equal(t->g->nnodes, 6);
  free(text);
}

static void test_pipeline_dump_all(void **state) {
  T *t = *state;
  build_small(t);
  char *text = NULL;
  size_t len = 0;
  FILE *dump = open_memstream(&text, &len);
  PipelineOpts o = {.print_after_all = true, .dump = dump};
  assert_true(pipeline_run(t->g, &t->c.d, &o));
  fclose(dump);
  const char *p = strstr(text, "after 'infer'");
  assert_non_null(p);
  p = strstr(p, "after 'cse'");
  assert_non_null(p);
  assert_non_null(strstr(p, "after 'dce'"));
  free(text);
}

static void test_pipeline_stops(void **state) {
  T *t = *state;
  build_small(t);
  t->g->nodes[2]->shape = sh("3 3");
  char *text = NULL;
  size_t len = 0;
  FILE *dump = open_memstream(&text, &len);
  PipelineOpts o = {.print_after_all = true, .dump = dump};
  assert_false(pipeline_run(t->g, &t->c.d, &o));
  fclose(dump);
  assert_string_equal(text, "");
  assert_non_null(strstr(output(t), "verifier: type f32[3, 3] differs"));
  free(text);
}

// Every attribute printer and the header, compared exactly.
static void test_dump_golden(void **state) {
  T *t = *state;
  Graph *g = t->g;
  Hyper hypers[] = {{.name = "dim", .is_int = true, .ival = 4},
                    {.name = "eps", .fval = 1e-5}};
  g->hypers = hypers;
  g->nhypers = 2;
  Node *tok = source(t, OP_INPUT, "tokens", DT_I32, "3");
  tok->site = at(2, 1);
  Node *emb = source(t, OP_PARAM, "emb", DT_F32, "10 4");
  emb->init = INIT_NORMAL;
  emb->init_std = 0.02;
  emb->site = at(3, 1);
  Node *x = add(t, OP_EMBED, emb, tok);
  x->site = at(5, 7);
  x->scope = "layers.0/block";
  Node *eps = konst(t, 1e-5);
  Node *a = add(t, OP_ADD, x, eps);
  sum(t, a, 1)->op = OP_MEAN;
  sum(t, a, AXIS_ALL);
  Node *r = graph_add(g, OP_RESHAPE, &a, 1, loc_none());
  r->target = sh("3 2 -1");
  Node *tr = graph_add(g, OP_TRANSPOSE, &r, 1, loc_none());
  memcpy(tr->perm, (int[]){1, 0, 2}, 3 * sizeof(int));
  Node *s = graph_add(g, OP_SLICE, &tr, 1, loc_none());
  s->end = 1;
  s->axis = 2;
  Node *ge = graph_add(g, OP_GELU, &s, 1, loc_none());
  ge->gelu = GELU_TANH;
  Node *pw = graph_add(g, OP_POW, &ge, 1, loc_none());
  pw->value = 2;
  source(t, OP_CAUSAL_MASK, NULL, DT_F32, "3 3");
  Node *rc = source(t, OP_ROPE_COS, NULL, DT_F32, "3 2");
  rc->value = 10000;
  Node *logits = graph_add(g, OP_MATMUL, (Node *[]){x, emb}, 2, loc_none());
  logits->transpose_b = true;
  Node *sm = graph_add(g, OP_SOFTMAX, &logits, 1, loc_none());
  sm->axis = -1;
  Node *cat = graph_add(g, OP_CONCAT, (Node *[]){x, x}, 2, loc_none());
  Node *ce = graph_add(g, OP_CROSS_ENTROPY, (Node *[]){logits, tok}, 2, loc_none());
  graph_add_output(g, "logits", logits);
  g->loss = ce;
  (void)cat, (void)sm;
  assert_true(pass_infer(g, &t->c.d));
  char *text = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&text, &len);
  graph_dump(g, out, "dce");
  fclose(out);
  assert_string_equal(text,
    "; anec IR: model tiny (tiny.anet), after 'dce'\n"
    "; hyper dim=4 eps=1e-05\n"
    "; 18 nodes, 2 inputs+params, 40 parameters, 558 FLOP forward\n"
    "%0 = input tokens : i32[3]  ; tiny.anet:2:1\n"
    "%1 = param emb : f32[10, 4] = normal(0.02)  ; tiny.anet:3:1\n"
    "%2 = embed %1, %0 : f32[3, 4]  ; tiny.anet:5:7 layers.0/block\n"
    "%3 = const 1e-05 : f32[]\n"
    "%4 = add %2, %3 : f32[3, 4]\n"
    "%5 = mean %4 axis=1 : f32[3, 1]\n"
    "%6 = sum %4 axis=all : f32[]\n"
    "%7 = reshape %4 [3, 2, -1] : f32[3, 2, 2]\n"
    "%8 = transpose %7 perm=[1, 0, 2] : f32[2, 3, 2]\n"
    "%9 = slice %8 axis=2 begin=0 end=1 : f32[2, 3, 1]\n"
    "%10 = gelu %9 mode=tanh : f32[2, 3, 1]\n"
    "%11 = pow %10 exponent=2 : f32[2, 3, 1]\n"
    "%12 = causal_mask : f32[3, 3]\n"
    "%13 = rope_cos theta=10000 : f32[3, 2]\n"
    "%14 = matmul %2, %1 transpose_b : f32[3, 10]\n"
    "%15 = softmax %14 axis=1 : f32[3, 10]\n"
    "%16 = concat %2, %2 axis=0 : f32[6, 4]\n"
    "%17 = cross_entropy %14, %0 : f32[]\n"
    "output logits = %14\n"
    "loss = %17\n");
  free(text);
}

static void test_flops(void **state) {
  T *t = *state;
  Node *a = source(t, OP_INPUT, "a", DT_F32, "2 3 4");
  Node *b = source(t, OP_PARAM, "b", DT_F32, "4 5");
  Node *m = add(t, OP_MATMUL, a, b);
  assert_int_equal(node_flops(m), 2 * 2 * 3 * 5 * 4);
  assert_int_equal(node_flops(add(t, OP_SOFTMAX, m, NULL)), 5 * 30);
  assert_int_equal(node_flops(sum(t, a, 0)), 24);
  assert_int_equal(node_flops(a), 0);
  assert_int_equal(graph_param_count(t->g), 20);
  assert_int_equal(graph_flops(t->g), 240 + 150 + 24);
}

//
// Place
//

// A tied embedding's two gradients (embed_grad on the CPU, ANE-T08, and the
// classifier's dW from a kernel) are summed into grad.tok_emb: the sum stays
// on the CPU (ANE-P08) instead of becoming a kernel of one add (Stories110M's
// k26), and the trainer's step runs it as a CPU step.
static void test_place_host_sum(void **state) {
  T *t = *state;
  char path[] = "/tmp/anec-test-passes-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  static const char text[] = "model tied { vocab = 64\n dim = 32\n seq = 32 }\n"
                             "input tokens: i32[seq]\n"
                             "input targets: i32[seq]\n"
                             "param tok_emb: [vocab, dim] = normal(0.5)\n"
                             "x = embed(tok_emb, tokens)\n"
                             "output logits = linear(x * x, tok_emb)\n"
                             "loss cross_entropy(logits, targets)\n";
  assert_true(write(fd, text, sizeof text - 1) == (ssize_t)(sizeof text - 1));
  close(fd);
  FrontOpts o = {.pipe = {.train = true}};
  Graph *g = front_compile(&t->c.arena, &t->c.d, path, &o);
  unlink(path);
  if (!g)
    fail_msg("front end failed:\n%s", output(t));
  if (!lowering_run(g, &t->c.d, &target_profiles[0], NULL))
    fail_msg("lowering failed:\n%s", output(t));
  const Node *sum = NULL;
  for (int i = 0; i < g->noutputs; i++)
    if (!strcmp(g->output_names[i], "grad.tok_emb"))
      sum = g->outputs[i];
  assert_non_null(sum);
  assert_int_equal(sum->op, OP_ADD);
  assert_int_equal(sum->in[0]->dev == DEV_CPU || sum->in[1]->dev == DEV_CPU, true);
  assert_int_equal(sum->dev, DEV_CPU);
  assert_int_equal(sum->why, RULE_P08);
  assert_string_equal(node_rule(sum)->id, "ANE-P08");
  int steps = 0;
  for (int s = 0; s < g->plan->nsteps; s++)
    steps += g->plan->steps[s].cpu == sum;
  assert_int_equal(steps, 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_cse_merges, setup, teardown),
    cmocka_unit_test_setup_teardown(test_cse_keeps_distinct, setup, teardown),
    cmocka_unit_test_setup_teardown(test_cse_reshape, setup, teardown),
    cmocka_unit_test_setup_teardown(test_dce, setup, teardown),
    cmocka_unit_test_setup_teardown(test_verify_ok, setup, teardown),
    cmocka_unit_test_setup_teardown(test_verify_wrong_shape, setup, teardown),
    cmocka_unit_test_setup_teardown(test_verify_failing_inference, setup, teardown),
    cmocka_unit_test_setup_teardown(test_verify_order, setup, teardown),
    cmocka_unit_test_setup_teardown(test_verify_duplicate_name, setup, teardown),
    cmocka_unit_test_setup_teardown(test_verify_structure, setup, teardown),
    cmocka_unit_test_setup_teardown(test_pipeline_table, setup, teardown),
    cmocka_unit_test_setup_teardown(test_pipeline_dump, setup, teardown),
    cmocka_unit_test_setup_teardown(test_pipeline_dump_all, setup, teardown),
    cmocka_unit_test_setup_teardown(test_pipeline_stops, setup, teardown),
    cmocka_unit_test_setup_teardown(test_dump_golden, setup, teardown),
    cmocka_unit_test_setup_teardown(test_flops, setup, teardown),
    cmocka_unit_test_setup_teardown(test_place_host_sum, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
