// place.c — each node to the ANE or the CPU, by the catalog: an op without
// an ANE path on the target (ANE-T08), integer compute (ANE-B01) or a value
// past the channel and spatial limits (ANE-B05) runs on the CPU, and the node
// keeps the rule's ID. Inputs and constants stay with the host. With
// --dw=cpu, the weight gradients (dW = gᵀx products and their sums) too.
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
  for (int i = 0; i < g->nnodes; i++) {
    Node *n = g->nodes[i];
    n->kernel = -1;
    n->why = -1;
    if (node_is_const(n) || n->op == OP_INPUT) {
      n->dev = DEV_HOST;
      continue;
    }
    n->why = cpu_rule(n, g->target);
    n->dev = n->why >= 0 ? DEV_CPU : DEV_ANE;
    n->as_conv = n->as_conv && n->dev == DEV_ANE;
  }
  if (g->dw_cpu)
    place_dw_cpu(g);
  return true;
}
