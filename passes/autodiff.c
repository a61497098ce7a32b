// autodiff.c — reverse mode over the graph IR: from the loss (seeded with
// 1) back through every node in reverse topological order, each op's rule
// from the op table (passes/grad.c) adding its inputs' gradients; then one
// output "grad.NAME" per param. The backward graph is plain IR: the same
// passes (and ireval) take it.
#include "passes.h"

#include <string.h>

struct Ad {
  Graph *g;
  Diag *d;
  Node **grad;    // per node id (forward nodes only): its gradient so far, or NULL
  int nforward;   // nodes before autodiff: the ones with a grad slot
  Node *cur;      // the node whose rule runs: accumulations take its place
  bool ok;
};

Diag *ad_diag(Ad *c) {
  return c->d;
}

void ad_fail(Ad *c) {
  c->ok = false;
}

Node *ad_new(Ad *c, OpKind op, Node **in, int nin, const Node *like) {
  Node *n = graph_add(c->g, op, in, nin, like->loc);
  n->site = like->site;
  n->scope = like->scope;
  return n;
}

Node *ad_done(Ad *c, Node *n) {
  if (c->ok && !node_infer(n, c->d))
    c->ok = false;
  return n;
}

Node *ad_op(Ad *c, OpKind op, Node *a, Node *b, const Node *like) {
  Node *in[2] = {a, b};
  return ad_done(c, ad_new(c, op, in, b ? 2 : 1, like));
}

Node *ad_num(Ad *c, double v, const Node *like) {
  Node *n = ad_new(c, OP_CONST, NULL, 0, like);
  n->value = v;
  n->dtype = DT_F32;
  return n; // rank 0: its shape is set at creation
}

// g summed over the axes where x has 1 (or none), then reshaped to x's
// shape; broadcast up where x is larger.
static Node *unbroadcast(Ad *c, Node *g, const Node *x) {
  const Shape *xs = &x->shape;
  int lead = g->shape.rank - xs->rank;
  for (int i = 0; i < g->shape.rank && c->ok; i++) {
    int64_t xd = i < lead ? 1 : xs->dims[i - lead];
    if (xd == 1 && g->shape.dims[i] != 1) {
      Node *s = ad_new(c, OP_SUM, &g, 1, g);
      s->axis = i;
      g = ad_done(c, s);
    }
  }
  if (c->ok && !shape_eq(&g->shape, xs) && shape_numel(&g->shape) == shape_numel(xs)) {
    Node *r = ad_new(c, OP_RESHAPE, &g, 1, g);
    r->target = *xs;
    g = ad_done(c, r);
  }
  if (c->ok && !shape_eq(&g->shape, xs)) {
    Node *b = ad_new(c, OP_BROADCAST, &g, 1, g);
    b->target = *xs;
    g = ad_done(c, b);
  }
  return g;
}

void ad_accum(Ad *c, Node *x, Node *g) {
  if (!c->ok || x->id >= c->nforward || x->dtype == DT_I32 || x->op == OP_CONST ||
      x->op == OP_CAUSAL_MASK || x->op == OP_ROPE_COS || x->op == OP_ROPE_SIN)
    return; // integers and constants take no gradient
  const Node *at = c->cur ? c->cur : x; // in the consumer's layer, as the schedule runs
  g = unbroadcast(c, g, x);
  c->grad[x->id] = c->grad[x->id] ? ad_op(c, OP_ADD, c->grad[x->id], g, at) : g;
}

// A param's gradient, or zeros of its shape when the loss does not use it.
static Node *param_grad(Ad *c, Node *p) {
  if (c->grad[p->id])
    return c->grad[p->id];
  Node *zero = ad_num(c, 0.0, p), *b = ad_new(c, OP_BROADCAST, &zero, 1, p);
  b->target = p->shape;
  return ad_done(c, b);
}

// The gradient rule of each op: the last column of ops.h (NULL: none).
static const GradFn grad_rule[OP_COUNT] = {
#define X(name, dsl, arity, mil, infer, grad, attrs, args) [OP_##name] = grad,
#include "ops.h"
#undef X
};

static void backward(Ad *c) {
  for (int i = c->nforward - 1; i >= 0 && c->ok; i--) {
    Node *n = c->g->nodes[i], *gy = c->grad[i];
    if (!gy)
      continue;
    if (!grad_rule[n->op]) {
      if (op_info[n->op].arity == 0)
        continue;
      diag_error(c->d, n->loc, "'%s' has no gradient rule yet: this model cannot be trained",
                 op_info[n->op].name);
      c->ok = false;
      return;
    }
    c->cur = n;
    grad_rule[n->op](c, n, gy);
  }
  c->cur = NULL;
}

bool autodiff_build(Graph *g, Diag *d) {
  if (!g->loss) {
    diag_error(d, loc_none(), "model '%s' has no loss to differentiate", g->model);
    return false;
  }
  Ad c = {g, d, arena_alloc(g->arena, sizeof(Node *) * (size_t)(g->nnodes + 1)), g->nnodes, NULL,
          true};
  c.grad[g->loss->id] = ad_num(&c, 1.0, g->loss);
  backward(&c);
  for (int i = 0; i < c.nforward && c.ok; i++) {
    Node *p = g->nodes[i];
    if (p->op == OP_PARAM)
      graph_add_output(g, arena_printf(g->arena, "grad.%s", p->name), param_grad(&c, p));
  }
  return c.ok;
}

// requires: inferred graph with a loss; provides: the backward graph, the
// outputs "loss" and grad.NAME per param, g->train.
bool pass_autodiff(Graph *g, Diag *d) {
  if (!autodiff_build(g, d))
    return false;
  graph_add_output(g, "loss", g->loss);
  g->train = true;
  return true;
}
