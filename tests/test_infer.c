// test_infer.c — shape and type inference of every op, built by hand with
// graph_add: broadcasting, batched and transposed matmul, reshape with -1,
// negative axes and slice bounds, and the exact text of the errors users see.
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "capture.h"

typedef struct T {
  Graph *g;
  Capture c; // arena and captured diagnostics
  int file; // "t.anet", one line: "a = x + y"
  int nnames;
} T;

static int setup(void **state) {
  T *t = calloc(1, sizeof *t);
  if (!capture_open(&t->c))
    return -1;
  t->file = diag_add_file(&t->c.d, "t.anet", "a = x + y\n", 10);
  t->g = graph_new(&t->c.arena);
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

// "256 288" -> [256, 288]; "" -> []
static Shape sh(const char *dims) {
  Shape s = {0};
  for (char *end; *dims; dims = end) {
    s.dims[s.rank++] = strtoll(dims, &end, 10);
    if (end == dims)
      break;
  }
  return s;
}

static Node *source(T *t, OpKind op, DType dt, const char *dims) {
  Node *n = graph_add(t->g, op, NULL, 0, loc_none());
  n->name = arena_printf(&t->c.arena, "x%d", t->nnames++);
  n->dtype = dt;
  n->shape = sh(dims);
  assert_true(node_infer(n, &t->c.d));
  return n;
}

static Node *f32(T *t, const char *dims) {
  return source(t, OP_INPUT, DT_F32, dims);
}

static Node *i32(T *t, const char *dims) {
  return source(t, OP_INPUT, DT_I32, dims);
}

static Node *op1(T *t, OpKind op, Node *a) {
  return graph_add(t->g, op, &a, 1, loc_none());
}

static Node *op2(T *t, OpKind op, Node *a, Node *b) {
  Node *in[2] = {a, b};
  return graph_add(t->g, op, in, 2, loc_none());
}

// Infers n and checks its type against "f32[2, 3]"-style text.
static void expect_type(T *t, Node *n, const char *type) {
  bool ok = node_infer(n, &t->c.d);
  if (!ok)
    fprintf(stderr, "%s", output(t));
  assert_true(ok);
  char *got = arena_printf(&t->c.arena, "%s%s", dtype_name(n->dtype), shape_str(&t->c.arena, &n->shape));
  assert_string_equal(got, type);
}

// Inference of n fails with exactly this message (file-less: "anec: error: ").
static void expect_error(T *t, Node *n, const char *msg) {
  assert_false(node_infer(n, &t->c.d));
  const char *out = output(t);
  char *want = arena_printf(&t->c.arena, "anec: error: %s\n", msg);
  if (!strstr(out, want))
    fprintf(stderr, "want: %sgot:  %s", want, out);
  assert_non_null(strstr(out, want));
}

//
// Shapes
//

static void test_unary(void **state) {
  T *t = *state;
  expect_type(t, op1(t, OP_EXP, f32(t, "2 3")), "f32[2, 3]");
  expect_type(t, op1(t, OP_GELU, source(t, OP_INPUT, DT_F16, "7")), "f16[7]");
  expect_type(t, op1(t, OP_NEG, f32(t, "")), "f32[]");
}

static void test_broadcast(void **state) {
  T *t = *state;
  expect_type(t, op2(t, OP_ADD, f32(t, "256 288"), f32(t, "288")), "f32[256, 288]");
  expect_type(t, op2(t, OP_MUL, f32(t, "4 1 3"), f32(t, "5 1")), "f32[4, 5, 3]");
  expect_type(t, op2(t, OP_SUB, f32(t, ""), f32(t, "2 3")), "f32[2, 3]");
  expect_type(t, op2(t, OP_DIV, f32(t, "1"), f32(t, "7 1")), "f32[7, 1]");
}

static void test_reduce(void **state) {
  T *t = *state;
  Node *x = f32(t, "2 3 4");
  Node *n = op1(t, OP_SUM, x);
  n->axis = 1;
  expect_type(t, n, "f32[2, 1, 4]");
  n = op1(t, OP_MEAN, x);
  n->axis = -1;
  expect_type(t, n, "f32[2, 3, 1]");
  assert_int_equal(n->axis, 2);
  n = op1(t, OP_MAX, x);
  n->axis = AXIS_ALL;
  expect_type(t, n, "f32[]");
  n = op1(t, OP_SOFTMAX, x);
  n->axis = -1;
  expect_type(t, n, "f32[2, 3, 4]");
  assert_int_equal(n->axis, 2);
}

static Node *matmul(T *t, const char *a, const char *b, bool ta, bool tb) {
  Node *n = op2(t, OP_MATMUL, f32(t, a), f32(t, b));
  n->transpose_a = ta;
  n->transpose_b = tb;
  return n;
}

static void test_matmul(void **state) {
  T *t = *state;
  expect_type(t, matmul(t, "256 288", "288 64", false, false), "f32[256, 64]");
  expect_type(t, matmul(t, "256 288", "64 288", false, true), "f32[256, 64]");
  expect_type(t, matmul(t, "288 256", "288 64", true, false), "f32[256, 64]");
  expect_type(t, matmul(t, "288 256", "64 288", true, true), "f32[256, 64]");
  expect_type(t, matmul(t, "8 1 4 5", "3 5 6", false, false), "f32[8, 3, 4, 6]");
  expect_type(t, matmul(t, "2 4 5", "5 6", false, false), "f32[2, 4, 6]");
  expect_type(t, matmul(t, "6 4", "2 3 4 5", false, false), "f32[2, 3, 6, 5]");
}

static Node *reshape(T *t, Node *x, const char *target) {
  Node *n = op1(t, OP_RESHAPE, x);
  n->target = sh(target);
  return n;
}

static void test_reshape(void **state) {
  T *t = *state;
  Node *n = reshape(t, f32(t, "256 288"), "256 8 -1");
  expect_type(t, n, "f32[256, 8, 36]");
  assert_int_equal(n->target.dims[2], -1);
  expect_type(t, reshape(t, f32(t, "2 3"), "6"), "f32[6]");
  expect_type(t, reshape(t, f32(t, "2 3"), "-1"), "f32[6]");
  expect_type(t, reshape(t, f32(t, ""), "1 1"), "f32[1, 1]");
  expect_type(t, reshape(t, i32(t, "1"), ""), "i32[]");
}

static void test_transpose(void **state) {
  T *t = *state;
  Node *n = op1(t, OP_TRANSPOSE, f32(t, "2 3 4"));
  memcpy(n->perm, (int[]){1, 0, 2}, 3 * sizeof(int));
  expect_type(t, n, "f32[3, 2, 4]");
  n = op1(t, OP_TRANSPOSE, f32(t, "2 3 4"));
  memcpy(n->perm, (int[]){2, 0, 1}, 3 * sizeof(int));
  expect_type(t, n, "f32[4, 2, 3]");
  expect_type(t, op1(t, OP_TRANSPOSE, f32(t, "")), "f32[]");
}

static Node *slice(T *t, Node *x, int axis, int64_t begin, int64_t end) {
  Node *n = op1(t, OP_SLICE, x);
  n->axis = axis;
  n->begin = begin;
  n->end = end;
  return n;
}

static void test_slice(void **state) {
  T *t = *state;
  expect_type(t, slice(t, f32(t, "256 288"), 1, 0, 18), "f32[256, 18]");
  Node *n = slice(t, f32(t, "256 288"), -1, -10, -1);
  expect_type(t, n, "f32[256, 9]");
  assert_int_equal(n->axis, 1);
  assert_int_equal(n->begin, 278);
  assert_int_equal(n->end, 287);
  expect_type(t, slice(t, f32(t, "4"), 0, 3, 4), "f32[1]");
}

static void test_concat(void **state) {
  T *t = *state;
  Node *in[3] = {f32(t, "2 3"), f32(t, "2 5"), f32(t, "2 1")};
  Node *n = graph_add(t->g, OP_CONCAT, in, 3, loc_none());
  n->axis = 1;
  expect_type(t, n, "f32[2, 9]");
  Node *in2[2] = {f32(t, "2 3"), f32(t, "4 3")};
  n = graph_add(t->g, OP_CONCAT, in2, 2, loc_none());
  n->axis = -2;
  expect_type(t, n, "f32[6, 3]");
  assert_int_equal(n->axis, 0);
  n = graph_add(t->g, OP_CONCAT, in2, 1, loc_none());
  expect_type(t, n, "f32[2, 3]");
}

static void test_embed_loss(void **state) {
  T *t = *state;
  Node *table = source(t, OP_PARAM, DT_F32, "32000 288");
  expect_type(t, op2(t, OP_EMBED, table, i32(t, "256")), "f32[256, 288]");
  expect_type(t, op2(t, OP_EMBED, table, i32(t, "4 16")), "f32[4, 16, 288]");
  expect_type(t, op2(t, OP_CROSS_ENTROPY, f32(t, "256 32000"), i32(t, "256")), "f32[]");
  Node *mask = source(t, OP_CAUSAL_MASK, DT_F32, "256 256");
  expect_type(t, mask, "f32[256, 256]");
}

//
// Errors
//

static void test_error_unary(void **state) {
  T *t = *state;
  expect_error(t, op1(t, OP_EXP, i32(t, "256")),
               "'exp' needs a floating-point tensor, got i32[256]");
  expect_error(t, op1(t, OP_SOFTMAX, i32(t, "2")),
               "'softmax' needs a floating-point tensor, got i32[2]");
}

// The broadcast error in full: located at the node, with notes at the inputs.
static void test_error_broadcast(void **state) {
  T *t = *state;
  Node *x = f32(t, "256 288"), *y = f32(t, "256 64");
  x->loc = (SrcLoc){t->file, 1, 5, 1, 5};
  y->loc = (SrcLoc){t->file, 1, 9, 1, 9};
  Node *n = op2(t, OP_ADD, x, y);
  n->loc = (SrcLoc){t->file, 1, 5, 1, 9};
  assert_false(node_infer(n, &t->c.d));
  assert_string_equal(output(t),
                      "t.anet:1:5: error: cannot broadcast [256, 288] and [256, 64] in 'add'\n"
                      "    1 | a = x + y\n"
                      "      |     ^~~~~\n"
                      "t.anet:1:5: note: left operand has shape [256, 288]\n"
                      "    1 | a = x + y\n"
                      "      |     ^\n"
                      "t.anet:1:9: note: right operand has shape [256, 64]\n"
                      "    1 | a = x + y\n"
                      "      |         ^\n");
}

static void test_error_binary_types(void **state) {
  T *t = *state;
  expect_error(t, op2(t, OP_ADD, f32(t, "2"), source(t, OP_INPUT, DT_F16, "2")),
               "'add' operands have different element types: f32[2] and f16[2]");
  expect_error(t, op2(t, OP_MUL, f32(t, "2"), i32(t, "2")),
               "'mul' needs floating-point operands, got f32[2] and i32[2]");
}

static void test_error_axis(void **state) {
  T *t = *state;
  Node *n = op1(t, OP_SUM, f32(t, "2 3"));
  n->axis = 3;
  expect_error(t, n, "axis 3 is out of range for a tensor of rank 2");
  n = op1(t, OP_SOFTMAX, f32(t, ""));
  n->axis = -1;
  expect_error(t, n, "axis -1 is out of range for a tensor of rank 0");
  n = op1(t, OP_MEAN, f32(t, "2 3"));
  n->axis = -3;
  expect_error(t, n, "axis -3 is out of range for a tensor of rank 2");
}

static void test_error_matmul(void **state) {
  T *t = *state;
  expect_error(t, matmul(t, "256 288", "64 288", false, false),
               "cannot multiply [256, 288] by [64, 288]: inner dimensions 288 and 64 differ");
  expect_error(t, matmul(t, "256 288", "288 64", false, true),
               "cannot multiply [256, 288] by [288, 64] (transposed): inner dimensions 288 "
               "and 64 differ");
  assert_non_null(strstr(output(t), "anec: note: left operand has shape [256, 288]\n"
                                    "anec: note: right operand has shape [288, 64]\n"));
  expect_error(t, matmul(t, "288", "288 64", false, false),
               "'matmul' needs tensors of rank 2 or more, got [288] and [288, 64]");
  expect_error(t, matmul(t, "2 4 5", "3 5 6", false, false),
               "cannot broadcast batch dimensions [2] and [3] in 'matmul'");
  expect_error(t, matmul(t, "2097152 1", "1 2097152", false, false),
               "shape [2097152, 2097152] of result of 'matmul' has more than "
               "1099511627776 elements");
}

static void test_error_reshape(void **state) {
  T *t = *state;
  expect_error(t, reshape(t, f32(t, "256 770"), "256 12 -1"),
               "cannot reshape [256, 770] (197120 elements) into [256, 12, -1]");
  expect_error(t, reshape(t, f32(t, "256 288"), "256 12 32"),
               "cannot reshape [256, 288] (73728 elements) into [256, 12, 32] (98304 elements)");
  expect_error(t, reshape(t, f32(t, "4"), "-1 -1"), "reshape target [-1, -1] has more than one -1");
  expect_error(t, reshape(t, f32(t, "4"), "0 4"),
               "reshape target [0, 4] has invalid dimension 0; dimensions must be between 1 "
               "and 2147483647, or -1 once");
  expect_error(t, reshape(t, f32(t, "4"), "-2 -2"),
               "reshape target [-2, -2] has invalid dimension -2; dimensions must be between 1 "
               "and 2147483647, or -1 once");
  expect_error(t, reshape(t, f32(t, "2"), "1073741824 1073741824 1073741824"),
               "cannot reshape [2] (2 elements) into [1073741824, 1073741824, 1073741824] "
               "(more than 1099511627776 elements)");
  expect_error(t, reshape(t, f32(t, "1048576 1048576"), "-1"),
               "shape [1099511627776] of result of 'reshape' is invalid: every dimension must "
               "be between 1 and 2147483647");
}

static void test_error_transpose(void **state) {
  T *t = *state;
  Node *n = op1(t, OP_TRANSPOSE, f32(t, "2 3"));
  expect_error(t, n, "perm [0, 0] is not a permutation of 2 axes");
  n = op1(t, OP_TRANSPOSE, f32(t, "2 3"));
  n->perm[0] = 1;
  n->perm[1] = 2;
  expect_error(t, n, "perm [1, 2] is not a permutation of 2 axes");
  n = op1(t, OP_TRANSPOSE, f32(t, "2"));
  n->perm[0] = -1;
  expect_error(t, n, "perm [-1] is not a permutation of 1 axis");
}

static void test_error_slice(void **state) {
  T *t = *state;
  expect_error(t, slice(t, f32(t, "256 288"), 1, 300, 310),
               "slice [300, 310) does not fit axis 1 of [256, 288] (need 0 <= begin < end <= 288)");
  expect_error(t, slice(t, f32(t, "256 288"), -1, 5, 5),
               "slice [5, 5) does not fit axis 1 of [256, 288] (need 0 <= begin < end <= 288)");
  expect_error(t, slice(t, f32(t, "8"), 0, -9, 2),
               "slice [-9, 2) does not fit axis 0 of [8] (need 0 <= begin < end <= 8)");
  expect_error(t, slice(t, f32(t, "8"), 1, 0, 1), "axis 1 is out of range for a tensor of rank 1");
}

static void test_error_concat(void **state) {
  T *t = *state;
  Node *in[2] = {f32(t, "2 3"), f32(t, "3 3")};
  Node *n = graph_add(t->g, OP_CONCAT, in, 2, loc_none());
  n->axis = 1;
  expect_error(t, n, "cannot concatenate [2, 3] and [3, 3] along axis 1");
  assert_non_null(strstr(output(t), "anec: note: input 0 has shape [2, 3]\n"
                                    "anec: note: input 1 has shape [3, 3]\n"));
  Node *in2[2] = {f32(t, "2"), i32(t, "2")};
  expect_error(t, graph_add(t->g, OP_CONCAT, in2, 2, loc_none()),
               "cannot concatenate f32[2] and i32[2]: element types differ");
  Node *in3[2] = {f32(t, "2"), f32(t, "2 2")};
  expect_error(t, graph_add(t->g, OP_CONCAT, in3, 2, loc_none()),
               "cannot concatenate [2] and [2, 2] along axis 0");
  expect_error(t, graph_add(t->g, OP_CONCAT, NULL, 0, loc_none()),
               "'concat' needs at least one input");
}

static void test_error_embed_loss(void **state) {
  T *t = *state;
  Node *table = source(t, OP_PARAM, DT_F32, "100 8");
  expect_error(t, op2(t, OP_EMBED, table, f32(t, "256")), "'embed' ids must be i32, got f32[256]");
  expect_error(t, op2(t, OP_EMBED, i32(t, "100 8"), i32(t, "4")),
               "'embed' table must be a floating-point matrix [V, D], got i32[100, 8]");
  expect_error(t, op2(t, OP_EMBED, table, i32(t, "1 1 1 1 1 1")),
               "'embed' ids of rank 6 give a result of rank 7; at most 6 dimensions are supported");
  expect_error(t, op2(t, OP_CROSS_ENTROPY, f32(t, "256 32000"), i32(t, "255")),
               "'cross_entropy' targets must be i32[256] to match logits [256, 32000], got i32[255]");
  expect_error(t, op2(t, OP_CROSS_ENTROPY, f32(t, "32000"), i32(t, "1")),
               "'cross_entropy' logits must be a floating-point matrix [S, V], got f32[32000]");
}

static void test_error_source(void **state) {
  T *t = *state;
  Node *n = graph_add(t->g, OP_PARAM, NULL, 0, loc_none());
  n->name = "w";
  n->shape = sh("256 0");
  expect_error(t, n, "shape [256, 0] of parameter 'w' is invalid: every dimension must be "
                     "between 1 and 2147483647");
  n->shape = sh("65536 65536 65536");
  expect_error(t, n, "shape [65536, 65536, 65536] of parameter 'w' has more than "
                     "1099511627776 elements");
  n->shape = sh("2147483648");
  expect_error(t, n, "shape [2147483648] of parameter 'w' is invalid: every dimension must be "
                     "between 1 and 2147483647");
  n->shape.rank = MAX_RANK + 1;
  expect_error(t, n, "parameter 'w' has rank 7; at most 6 dimensions are supported");
  n = graph_add(t->g, OP_CAUSAL_MASK, NULL, 0, loc_none());
  n->shape = sh("4 5");
  expect_error(t, n, "'causal_mask' must be a square matrix, got [4, 5]");
}

static void test_error_inputs(void **state) {
  T *t = *state;
  Node *x = f32(t, "2");
  expect_error(t, op1(t, OP_ADD, x), "'add' takes 2 inputs, got 1");
  expect_error(t, op2(t, OP_EXP, x, x), "'exp' takes 1 input, got 2");
  expect_error(t, op2(t, OP_ADD, x, NULL), "internal error: input 1 of 'add' is missing");
  Node *n = op1(t, OP_RELU, x);
  n->in[0] = NULL;
  expect_error(t, n, "internal error: input 0 of 'relu' is missing");
  assert_int_equal(t->c.d.errors, 4);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_unary, setup, teardown),
    cmocka_unit_test_setup_teardown(test_broadcast, setup, teardown),
    cmocka_unit_test_setup_teardown(test_reduce, setup, teardown),
    cmocka_unit_test_setup_teardown(test_matmul, setup, teardown),
    cmocka_unit_test_setup_teardown(test_reshape, setup, teardown),
    cmocka_unit_test_setup_teardown(test_transpose, setup, teardown),
    cmocka_unit_test_setup_teardown(test_slice, setup, teardown),
    cmocka_unit_test_setup_teardown(test_concat, setup, teardown),
    cmocka_unit_test_setup_teardown(test_embed_loss, setup, teardown),
    cmocka_unit_test_setup_teardown(test_error_unary, setup, teardown),
    cmocka_unit_test_setup_teardown(test_error_broadcast, setup, teardown),
    cmocka_unit_test_setup_teardown(test_error_binary_types, setup, teardown),
    cmocka_unit_test_setup_teardown(test_error_axis, setup, teardown),
    cmocka_unit_test_setup_teardown(test_error_matmul, setup, teardown),
    cmocka_unit_test_setup_teardown(test_error_reshape, setup, teardown),
    cmocka_unit_test_setup_teardown(test_error_transpose, setup, teardown),
    cmocka_unit_test_setup_teardown(test_error_slice, setup, teardown),
    cmocka_unit_test_setup_teardown(test_error_concat, setup, teardown),
    cmocka_unit_test_setup_teardown(test_error_embed_loss, setup, teardown),
    cmocka_unit_test_setup_teardown(test_error_source, setup, teardown),
    cmocka_unit_test_setup_teardown(test_error_inputs, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
