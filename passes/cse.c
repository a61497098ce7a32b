// cse.c — common-subexpression elimination: nodes that compute the same value
// (same op, same inputs, same attributes) are merged into the first of them.
// This shares the constants, causal masks and rope tables that every layer
// builds for itself. INPUT and PARAM nodes are never merged.
#include "passes.h"

#include <string.h>

static uint64_t mix(uint64_t h, uint64_t v) {
  return (h ^ v) * 0x100000001b3u + (h >> 29);
}

static uint64_t mix_double(uint64_t h, double v) {
  uint64_t bits;
  memcpy(&bits, &v, sizeof bits);
  return mix(h, bits);
}

static bool same_double(double a, double b) {
  return memcmp(&a, &b, sizeof a) == 0;
}

// One hash and one comparison per attribute kind (AttrKind, ir.h).
static uint64_t hash_value(const Node *n, uint64_t h) {
  return mix_double(h, n->value);
}

static bool same_value(const Node *a, const Node *b) {
  return same_double(a->value, b->value);
}

static uint64_t hash_gelu(const Node *n, uint64_t h) {
  return mix(h, (uint64_t)n->gelu);
}

static bool same_gelu(const Node *a, const Node *b) {
  return a->gelu == b->gelu;
}

static uint64_t hash_axis(const Node *n, uint64_t h) {
  return mix(h, (uint64_t)n->axis);
}

static bool same_axis(const Node *a, const Node *b) {
  return a->axis == b->axis;
}

static uint64_t hash_range(const Node *n, uint64_t h) {
  return mix(mix(h, (uint64_t)n->begin), (uint64_t)n->end);
}

static bool same_range(const Node *a, const Node *b) {
  return a->begin == b->begin && a->end == b->end;
}

static uint64_t hash_transpose(const Node *n, uint64_t h) {
  return mix(h, (uint64_t)n->transpose_a * 2 + n->transpose_b);
}

static bool same_transpose(const Node *a, const Node *b) {
  return a->transpose_a == b->transpose_a && a->transpose_b == b->transpose_b;
}

// One entry per axis of the result (whose shapes node_same compares first).
static uint64_t hash_perm(const Node *n, uint64_t h) {
  for (int i = 0; i < n->shape.rank; i++)
    h = mix(h, (uint64_t)n->perm[i]);
  return h;
}

static bool same_perm(const Node *a, const Node *b) {
  return memcmp(a->perm, b->perm, sizeof(int) * (size_t)a->shape.rank) == 0;
}

// None for ATTR_TARGET: a reshape's value is its input and result shape,
// however the target was written ([256, -1] or [256, 36]); none for
// ATTR_NAME and ATTR_INIT: inputs and params are never merged.
static const struct {
  AttrKind attr;
  uint64_t (*hash)(const Node *n, uint64_t h);
  bool (*same)(const Node *a, const Node *b);
} attr_eqs[] = {
  {ATTR_VALUE, hash_value, same_value},
  {ATTR_THETA, hash_value, same_value},
  {ATTR_EXPONENT, hash_value, same_value},
  {ATTR_GELU, hash_gelu, same_gelu},
  {ATTR_AXIS, hash_axis, same_axis},
  {ATTR_RANGE, hash_range, same_range},
  {ATTR_TRANSPOSE, hash_transpose, same_transpose},
  {ATTR_PERM, hash_perm, same_perm},
};

// The attributes n's op uses, hashed; nodes that compare equal by same_attrs
// hash equal.
static uint64_t hash_attrs(const Node *n, uint64_t h) {
  for (size_t i = 0; i < sizeof attr_eqs / sizeof *attr_eqs; i++)
    if (op_info[n->op].attrs & attr_eqs[i].attr)
      h = attr_eqs[i].hash(n, h);
  return h;
}

// a and b have the same op.
static bool same_attrs(const Node *a, const Node *b) {
  for (size_t i = 0; i < sizeof attr_eqs / sizeof *attr_eqs; i++)
    if ((op_info[a->op].attrs & attr_eqs[i].attr) && !attr_eqs[i].same(a, b))
      return false;
  return true;
}

static uint64_t node_hash(const Node *n) {
  uint64_t h = mix(14695981039346656037u, (uint64_t)n->op);
  h = mix(mix(h, (uint64_t)n->dtype), (uint64_t)n->shape.rank);
  for (int i = 0; i < n->shape.rank; i++)
    h = mix(h, (uint64_t)n->shape.dims[i]);
  for (int i = 0; i < n->nin; i++)
    h = mix(h, (uint64_t)n->in[i]->id);
  return hash_attrs(n, h);
}

// Same op, type, inputs and attributes: the two compute the same value.
static bool node_same(const Node *a, const Node *b) {
  if (a->op != b->op || a->dtype != b->dtype || a->nin != b->nin ||
      !shape_eq(&a->shape, &b->shape))
    return false;
  for (int i = 0; i < a->nin; i++)
    if (a->in[i] != b->in[i])
      return false;
  return same_attrs(a, b);
}

// The earlier node equal to n, or n itself after entering it into the table.
static Node *table_find(Node **table, size_t cap, Node *n) {
  size_t h = node_hash(n) & (cap - 1);
  for (; table[h]; h = (h + 1) & (cap - 1))
    if (node_same(table[h], n))
      return table[h];
  table[h] = n;
  return n;
}

// Drops the nodes marked replaced and renumbers the rest in order.
static void drop_replaced(Graph *g) {
  int k = 0;
  for (int i = 0; i < g->nnodes; i++) {
    Node *n = g->nodes[i];
    if (n->repl)
      continue;
    n->id = k;
    g->nodes[k++] = n;
  }
  g->nnodes = k;
}

static Node *canon(Node *n) {
  return n && n->repl ? n->repl : n;
}

// requires: inferred graph; provides: no two nodes but inputs and params compute
// the same value, ids renumbered in order.
bool pass_cse(Graph *g, Diag *d) {
  (void)d;
  size_t cap = 16;
  while (cap < 2 * (size_t)g->nnodes)
    cap *= 2;
  Node **table = arena_alloc(g->arena, cap * sizeof(Node *));
  for (int i = 0; i < g->nnodes; i++)
    g->nodes[i]->repl = NULL;
  for (int i = 0; i < g->nnodes; i++) {
    Node *n = g->nodes[i];
    for (int k = 0; k < n->nin; k++)
      n->in[k] = canon(n->in[k]);
    if (n->op == OP_INPUT || n->op == OP_PARAM)
      continue;
    Node *first = table_find(table, cap, n);
    if (first != n)
      n->repl = first;
  }
  for (int k = 0; k < g->noutputs; k++)
    g->outputs[k] = canon(g->outputs[k]);
  g->loss = canon(g->loss);
  drop_replaced(g);
  return true;
}
