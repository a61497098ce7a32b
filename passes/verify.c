// verify.c — the IR verifier: the structural invariants every pass keeps
// (numbering, topological order, arity, membership, unique source names) and
// shape consistency (re-running inference reproduces every stored type).
// A failure is a compiler bug, reported as an internal error.
#include "passes.h"

#include <string.h>

static bool fail(Diag *d, const Node *n, int pos, const char *fmt, ...) ANEC_PRINTF(4, 5);

// `internal error: verifier: <what> at node %pos (op)` at the node's location.
static bool fail(Diag *d, const Node *n, int pos, const char *fmt, ...) {
  char what[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  bool op_ok = n && (unsigned)n->op < OP_COUNT;
  diag_error(d, n ? n->loc : loc_none(), "internal error: verifier: %s at node %%%d (%s)",
             what, pos, op_ok ? op_info[n->op].name : "?");
  return false;
}

static bool owns(const Graph *g, const Node *x) {
  return x && x->id >= 0 && x->id < g->nnodes && g->nodes[x->id] == x;
}

// Numbering, op, arity, and inputs that are earlier nodes of this graph.
static bool verify_node(Graph *g, int i, Diag *d) {
  Node *n = g->nodes[i];
  if (!n)
    return fail(d, NULL, i, "null node");
  if (n->id != i)
    return fail(d, n, i, "id %%%d differs from the position", n->id);
  if ((unsigned)n->op >= OP_COUNT)
    return fail(d, n, i, "invalid op %d", (int)n->op);
  int arity = op_info[n->op].arity;
  if (arity >= 0 ? n->nin != arity : n->nin < 1)
    return fail(d, n, i, "%d inputs where the op takes %d", n->nin, arity);
  if (n->nin > 0 && !n->in)
    return fail(d, n, i, "no input array");
  for (int k = 0; k < n->nin; k++) {
    const Node *x = n->in[k];
    if (!x)
      return fail(d, n, i, "input %d is null", k);
    if (!owns(g, x))
      return fail(d, n, i, "input %d is not a node of the graph", k);
    if (x->id >= i)
      return fail(d, n, i, "input %d (%%%d) does not precede its use", k, x->id);
  }
  return true;
}

// Outputs and the loss are nodes of the graph; the loss is a scalar.
static bool verify_results(Graph *g, Diag *d) {
  for (int k = 0; k < g->noutputs; k++) {
    const Node *x = g->outputs[k];
    const char *name = g->output_names && g->output_names[k] ? g->output_names[k] : "?";
    if (!owns(g, x)) {
      diag_error(d, x ? x->loc : loc_none(),
                 "internal error: verifier: output '%s' is not a node of the graph", name);
      return false;
    }
  }
  if (g->loss && !owns(g, g->loss)) {
    diag_error(d, g->loss->loc, "internal error: verifier: the loss is not a node of the graph");
    return false;
  }
  if (g->loss && g->loss->shape.rank != 0)
    return fail(d, g->loss, g->loss->id, "the loss has rank %d, not 0", g->loss->shape.rank);
  return true;
}

static uint64_t hash_str(const char *s) {
  uint64_t h = 14695981039346656037u;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211u;
  return h;
}

// INPUT and PARAM nodes have names, all different.
static bool verify_names(Graph *g, Diag *d) {
  size_t cap = 16;
  while (cap < 2 * (size_t)g->nnodes)
    cap *= 2;
  Node **table = arena_alloc(g->arena, cap * sizeof(Node *));
  for (int i = 0; i < g->nnodes; i++) {
    Node *n = g->nodes[i];
    if (n->op != OP_INPUT && n->op != OP_PARAM)
      continue;
    if (!n->name)
      return fail(d, n, i, "unnamed %s", op_info[n->op].name);
    size_t h = hash_str(n->name) & (cap - 1);
    for (; table[h]; h = (h + 1) & (cap - 1))
      if (strcmp(table[h]->name, n->name) == 0)
        return fail(d, n, i, "name '%s' is also %%%d's", n->name, table[h]->id);
    table[h] = n;
  }
  return true;
}

// Inference on a copy of the node reproduces its shape and dtype. `quiet`
// swallows the messages of a failing inference.
static bool verify_type(Graph *g, int i, Diag *quiet, Diag *d) {
  Node *n = g->nodes[i];
  Node copy = *n;
  if (!node_infer(&copy, quiet))
    return fail(d, n, i, "inference fails");
  if (shape_eq(&copy.shape, &n->shape) && copy.dtype == n->dtype)
    return true;
  return fail(d, n, i, "type %s%s differs from the inferred %s%s", dtype_name(n->dtype),
              shape_str(g->arena, &n->shape), dtype_name(copy.dtype),
              shape_str(g->arena, &copy.shape));
}

static bool verify_types(Graph *g, Diag *d) {
  FILE *sink = fopen("/dev/null", "w");
  if (!sink)
    sink = tmpfile();
  if (!sink) {
    diag_error(d, loc_none(), "internal error: verifier: cannot open a sink for diagnostics");
    return false;
  }
  Diag quiet = *d; // shares the source files; counts and prints on its own
  quiet.out = sink;
  quiet.errors = quiet.warnings = 0;
  quiet.stop = quiet.last_shown = false;
  bool ok = true;
  for (int i = 0; ok && i < g->nnodes; i++)
    ok = verify_type(g, i, &quiet, d);
  fclose(sink);
  return ok;
}

// requires: any graph; provides: true if it is well-formed, else one internal error.
bool graph_verify(Graph *g, Diag *d) {
  if (g->nnodes < 0 || (g->nnodes > 0 && !g->nodes) || g->noutputs < 0 ||
      (g->noutputs > 0 && !g->outputs)) {
    diag_error(d, loc_none(), "internal error: verifier: malformed node or output array");
    return false;
  }
  for (int i = 0; i < g->nnodes; i++)
    if (!verify_node(g, i, d))
      return false;
  return verify_results(g, d) && verify_names(g, d) && verify_types(g, d);
}
