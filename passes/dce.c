// dce.c — dead-code elimination: drops the nodes no output and no loss depend
// on. Inputs and parameters stay even when unused: they are the model's
// interface and its weights, whatever this graph computes from them.
#include "passes.h"

// Marks live every node an output or the loss reaches, and every source the
// model declares; the nodes are in topological order, so one backward sweep
// sees each user before its inputs.
static void mark_live(Graph *g) {
  for (int i = 0; i < g->nnodes; i++) {
    Node *n = g->nodes[i];
    n->live = n->op == OP_INPUT || n->op == OP_PARAM;
  }
  for (int k = 0; k < g->noutputs; k++)
    g->outputs[k]->live = true;
  if (g->loss)
    g->loss->live = true;
  for (int i = g->nnodes - 1; i >= 0; i--) {
    Node *n = g->nodes[i];
    if (n->live)
      for (int k = 0; k < n->nin; k++)
        n->in[k]->live = true;
  }
}

// requires: verified graph; provides: only nodes that reach an output or the loss,
// and every input and param, ids renumbered in order.
bool pass_dce(Graph *g, Diag *d) {
  (void)d;
  mark_live(g);
  int k = 0;
  for (int i = 0; i < g->nnodes; i++) {
    Node *n = g->nodes[i];
    if (!n->live)
      continue;
    n->id = k;
    g->nodes[k++] = n;
  }
  g->nnodes = k;
  return true;
}
