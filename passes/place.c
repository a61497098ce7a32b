// place.c — each node to the ANE or the CPU, by the catalog: an op without
// an ANE path on the target (ANE-T08), integer compute (ANE-B01) or a value
// past the channel and spatial limits (ANE-B05) runs on the CPU, and the node
// keeps the rule's ID. Inputs and constants stay with the host. An
// elementwise sum of values that live on the host anyway stays on the CPU
// (P08). With --dw=cpu, the weight gradients (dW = gᵀx products and their
// sums) too.
#include "passes.h"

#include <string.h>

// The rule that keeps n off the ANE on t, or -1.
static int cpu_rule(const Node *n, const TargetProfile *t) {
  const char *mil = op_info[n->op].mil;
  if (!mil || !target_op_allowed(t, mil))
    return RULE_T08;
  if (n->dtype == DT_I32)
    return RULE_B01;
  int64_t dims[MAX_RANK + 1];
  int rank = node_phys_shape(n, dims);
  if (n->layout == LAYOUT_TL && dims[rank - 1] > t->max_spatial)
    return RULE_B05;
  for (int i = 0; i < rank - (n->layout == LAYOUT_TL); i++)
    if (dims[i] > t->max_channels)
      return RULE_B05;
  if (n->as_conv && n->in[1]->shape.dims[1] >= t->conv_cin_reject)
    return RULE_B06;
  return -1;
}

// P08: elementwise work whose operands live on the host stays on the CPU.
// The set is ADD of same-shape operands: the one elementwise op the generated
// trainer runs on the CPU (rt_add) and the one autodiff uses to sum a value's
// gradients (a tied weight's, as Stories110M's embedding: k26). sub, mul, div
// would need a CPU case in gen_train.c and a runtime function first. Every
// non-constant operand is on the CPU, or n feeds only graph outputs
// (used[n] == 0), has a CPU operand, and its ANE operands are kernel outputs
// either way: on the ANE, n would be a kernel of its own (or one more output
// of its operand's) that only moves their bytes.
static bool host_elementwise(const Node *n, const int *used) {
  if (n->op != OP_ADD || n->dtype == DT_I32)
    return false;
  int ncpu = 0, nane = 0;
  for (int i = 0; i < n->nin; i++) {
    const Node *a = n->in[i];
    if (!shape_eq(&a->shape, &n->shape))
      return false;
    if (node_is_const(a))
      continue;
    if (a->dev == DEV_CPU)
      ncpu++;
    else if (a->dev == DEV_ANE)
      nane++;
    else
      return false; // a graph input: on the ANE it is a kernel input like any other
  }
  return ncpu > 0 && (nane == 0 || used[n->id] == 0);
}

// A weight gradient's products: from a grad.NAME output back through the
// sums that accumulate it (ADD) to the 2-D matmuls, marked live.
static void mark_dw(Node *n) {
  if (n->op == OP_ADD && n->shape.rank == 2 && n->in[0]->shape.rank == 2 &&
      n->in[1]->shape.rank == 2) {
    n->live = true;
    mark_dw(n->in[0]);
    mark_dw(n->in[1]);
  } else if (n->op == OP_MATMUL && n->in[0]->shape.rank == 2 && n->in[1]->shape.rank == 2) {
    n->live = true;
  }
}

// --dw=cpu: every weight gradient's products and sums to the CPU.
static void place_dw_cpu(Graph *g) {
  for (int i = 0; i < g->nnodes; i++)
    g->nodes[i]->live = false;
  for (int i = 0; i < g->noutputs; i++)
    if (!strncmp(g->output_names[i], "grad.", 5))
      mark_dw(g->outputs[i]);
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i]->live && g->nodes[i]->dev == DEV_ANE)
      g->nodes[i]->dev = DEV_CPU, g->nodes[i]->why = WHY_DW_CPU, g->nodes[i]->as_conv = false;
}

// requires: legalized graph, g->target; provides: n->dev of every node and
// n->why of every CPU node.
bool pass_place(Graph *g, Diag *d) {
  (void)d;
  int *used = arena_alloc(g->arena, sizeof *used * (size_t)(g->nnodes + 1));
  memset(used, 0, sizeof *used * (size_t)(g->nnodes + 1));
  for (int i = 0; i < g->nnodes; i++)
    for (int k = 0; k < g->nodes[i]->nin; k++)
      used[g->nodes[i]->in[k]->id]++;
  for (int i = 0; i < g->nnodes; i++) {
    Node *n = g->nodes[i];
    n->kernel = -1;
    n->why = -1;
    if (node_is_const(n) || n->op == OP_INPUT) {
      n->dev = DEV_HOST;
      continue;
    }
    n->why = cpu_rule(n, g->target);
    if (n->why < 0 && host_elementwise(n, used))
      n->why = RULE_P08;
    n->dev = n->why >= 0 ? DEV_CPU : DEV_ANE;
    n->as_conv = n->as_conv && n->dev == DEV_ANE;
  }
  if (g->dw_cpu)
    place_dw_cpu(g);
  return true;
}
