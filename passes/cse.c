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

// The attributes `op` uses, hashed; nodes that compare equal by same_attrs
// hash equal.
static uint64_t hash_attrs(const Node *n, uint64_t h) {
  switch (n->op) {
  case OP_CONST: case OP_POW: case OP_ROPE_COS: case OP_ROPE_SIN:
    return mix_double(h, n->value);
  case OP_SUM: case OP_MEAN: case OP_MAX: case OP_SOFTMAX: case OP_CONCAT:
    return mix(h, (uint64_t)n->axis);
  case OP_SLICE:
    return mix(mix(mix(h, (uint64_t)n->axis), (uint64_t)n->begin), (uint64_t)n->end);
  case OP_MATMUL:
    return mix(h, (uint64_t)n->transpose_a * 2 + n->transpose_b);
  case OP_GELU:
    return mix(h, (uint64_t)n->gelu);
  default: // shapes (reshape, transpose, sources) are hashed by node_hash
    return h;
  }
}

static bool same_attrs(const Node *a, const Node *b) {
  switch (a->op) {
  case OP_CONST: case OP_POW: case OP_ROPE_COS: case OP_ROPE_SIN:
    return same_double(a->value, b->value);
  case OP_SUM: case OP_MEAN: case OP_MAX: case OP_SOFTMAX: case OP_CONCAT:
    return a->axis == b->axis;
  case OP_SLICE:
    return a->axis == b->axis && a->begin == b->begin && a->end == b->end;
  case OP_MATMUL:
    return a->transpose_a == b->transpose_a && a->transpose_b == b->transpose_b;
  case OP_GELU:
    return a->gelu == b->gelu;
  case OP_TRANSPOSE:
    return memcmp(a->perm, b->perm, sizeof(int) * (size_t)a->shape.rank) == 0;
  default: // RESHAPE: same input and result shape is the same value,
    return true; // however the target was written ([256, -1] or [256, 36])
  }
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
