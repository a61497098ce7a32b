// graph.c — building the graph IR (nodes, outputs) and the questions asked of
// it everywhere: element counts, shape text, dtype names, parameter and FLOP
// counts. Passes that transform the graph live in passes/.
#include "ir.h"

#include <string.h>

Graph *graph_new(Arena *a) {
  Graph *g = arena_alloc(a, sizeof(Graph));
  g->arena = a;
  return g;
}

Node *graph_add(Graph *g, OpKind op, Node **in, int nin, SrcLoc loc) {
  if (g->nnodes == g->capnodes) {
    int cap = g->capnodes ? 2 * g->capnodes : 64;
    g->nodes = arena_grow(g->arena, g->nodes, sizeof(Node *) * (size_t)g->capnodes,
                          sizeof(Node *) * (size_t)cap);
    g->capnodes = cap;
  }
  Node *n = arena_alloc(g->arena, sizeof(Node));
  n->id = g->nnodes;
  n->op = op;
  n->nin = nin;
  if (nin > 0) {
    n->in = arena_alloc(g->arena, sizeof(Node *) * (size_t)nin);
    memcpy(n->in, in, sizeof(Node *) * (size_t)nin);
  }
  n->loc = loc;
  n->site = loc;
  g->nodes[g->nnodes++] = n;
  return n;
}

bool node_infer(Node *n, Diag *d) {
  if ((unsigned)n->op >= OP_COUNT) {
    diag_error(d, n->loc, "internal error: node %%%d has invalid op %d", n->id, (int)n->op);
    return false;
  }
  return op_info[n->op].infer(n, d);
}

// Outputs grow in powers of two; the capacity is implied by the count.
void graph_add_output(Graph *g, const char *name, Node *n) {
  int k = g->noutputs;
  if ((k & (k - 1)) == 0) {
    int cap = k ? 2 * k : 4;
    g->outputs = arena_grow(g->arena, g->outputs, sizeof(Node *) * (size_t)k,
                            sizeof(Node *) * (size_t)cap);
    g->output_names = arena_grow(g->arena, g->output_names, sizeof(char *) * (size_t)k,
                                 sizeof(char *) * (size_t)cap);
  }
  g->outputs[k] = n;
  g->output_names[k] = name;
  g->noutputs = k + 1;
}

// Element count; -1 when the rank is invalid, a dim is negative or the count
// exceeds MAX_NUMEL (none of which survives inference).
int64_t shape_numel(const Shape *s) {
  if (s->rank < 0 || s->rank > MAX_RANK)
    return -1;
  int64_t n = 1;
  for (int i = 0; i < s->rank; i++) {
    int64_t k = s->dims[i];
    if (k < 0 || (k > 0 && n > MAX_NUMEL / k))
      return -1;
    n *= k;
  }
  return n;
}

bool shape_eq(const Shape *a, const Shape *b) {
  if (a->rank != b->rank || a->rank < 0 || a->rank > MAX_RANK)
    return false;
  for (int i = 0; i < a->rank; i++)
    if (a->dims[i] != b->dims[i])
      return false;
  return true;
}

char *shape_str(Arena *a, const Shape *s) {
  char buf[32 * MAX_RANK];
  int len = snprintf(buf, sizeof buf, "[");
  int rank = s->rank < 0 ? 0 : s->rank > MAX_RANK ? MAX_RANK : s->rank;
  for (int i = 0; i < rank; i++)
    len += snprintf(buf + len, sizeof buf - (size_t)len, "%s%lld", i ? ", " : "",
                    (long long)s->dims[i]);
  snprintf(buf + len, sizeof buf - (size_t)len, "]");
  return arena_strdup(a, buf);
}

const char *dtype_name(DType t) {
  switch (t) {
  case DT_F32: return "f32";
  case DT_F16: return "f16";
  case DT_I32: return "i32";
  }
  return "?";
}

// a * b, saturating at INT64_MAX (both non-negative).
static int64_t mul_sat(int64_t a, int64_t b) {
  if (a <= 0 || b <= 0)
    return 0;
  return a > INT64_MAX / b ? INT64_MAX : a * b;
}

static int64_t add_sat(int64_t a, int64_t b) {
  return a > INT64_MAX - b ? INT64_MAX : a + b;
}

static int64_t numel0(const Shape *s) {
  int64_t n = shape_numel(s);
  return n < 0 ? 0 : n;
}

// matmul: 2·M·N·K per batch element; the output holds batch·M·N elements.
static int64_t matmul_flops(const Node *n) {
  if (n->nin != 2 || !n->in[0] || n->in[0]->shape.rank < 2)
    return 0;
  const Shape *a = &n->in[0]->shape;
  int64_t k = a->dims[n->transpose_a ? a->rank - 2 : a->rank - 1];
  return mul_sat(2, mul_sat(numel0(&n->shape), k));
}

// Forward FLOPs of one node, by convention:
//   matmul              2·M·N·K per batch element (a multiply-add is 2)
//   elementwise, unary  1 per output element (exp, gelu, ... count as 1)
//   sum, mean, max      1 per input element
//   softmax             5 per element (max, sub, exp, sum, div)
//   cross_entropy       4 per logit
//   sources and data movement (reshape, transpose, slice, concat, embed): 0
int64_t node_flops(const Node *n) {
  const Node *x = n->nin > 0 ? n->in[0] : NULL;
  switch (n->op) {
  case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV:
  case OP_NEG: case OP_EXP: case OP_LOG: case OP_SQRT: case OP_RSQRT:
  case OP_POW: case OP_SIGMOID: case OP_SILU: case OP_TANH: case OP_RELU:
  case OP_GELU:
    return numel0(&n->shape);
  case OP_SUM: case OP_MEAN: case OP_MAX:
    return x ? numel0(&x->shape) : 0;
  case OP_SOFTMAX:
    return mul_sat(5, numel0(&n->shape));
  case OP_MATMUL:
    return matmul_flops(n);
  case OP_CROSS_ENTROPY:
    return x ? mul_sat(4, numel0(&x->shape)) : 0;
  default:
    return 0;
  }
}

int64_t graph_param_count(const Graph *g) {
  int64_t total = 0;
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i]->op == OP_PARAM)
      total = add_sat(total, numel0(&g->nodes[i]->shape));
  return total;
}

int64_t graph_flops(const Graph *g) {
  int64_t total = 0;
  for (int i = 0; i < g->nnodes; i++)
    total = add_sat(total, node_flops(g->nodes[i]));
  return total;
}

// A constant: a param, a constant op, or a reshape, slice or broadcast of one.
bool node_is_const(const Node *n) {
  if (n->op == OP_RESHAPE || n->op == OP_SLICE || n->op == OP_BROADCAST)
    return node_is_const(n->in[0]);
  return op_info[n->op].arity == 0 && n->op != OP_INPUT;
}

// Not a catalog rule: the user's choice, reported like one.
static const Rule dw_cpu_rule = {
    .id = "--dw=cpu", .text = "weight gradients as BLAS on the CPU, by request",
    .action = ACT_CPU, .action_text = "place", .check = CHECK_NONE, .severity = SEV_INFO,
    .confidence = CONF_FIRM, .source = "anec", .check_note = ""};

const Rule *node_rule(const Node *n) {
  if (n->why == WHY_DW_CPU)
    return &dw_cpu_rule;
  return n->why >= 0 && n->why < RULE_COUNT ? &catalog_rules[n->why] : NULL;
}
