// pipeline.c — the passes in the order they run, and the driver that runs
// them: the verifier before the first pass and after each one, and the
// --print-after dumps.
#include "passes.h"

#include <string.h>

// requires: nodes in topological order; provides: shape and dtype of every node.
bool pass_infer(Graph *g, Diag *d) {
  for (int i = 0; i < g->nnodes; i++)
    if (!node_infer(g->nodes[i], d))
      return false;
  return true;
}

const Pass pipeline[] = {
  {"infer", pass_infer,
   "requires: nodes in topological order; provides: shape and dtype of every node"},
  {"cse", pass_cse,
   "requires: inferred graph; provides: no two nodes but inputs and params compute the same value"},
  {"dce", pass_dce,
   "requires: verified graph; provides: only nodes that reach an output or the loss, "
   "and every input and param"},
};
const int npipeline = sizeof pipeline / sizeof pipeline[0];

// The training pipeline is the front pipeline with this pass after infer:
// the graph becomes the forward, the loss and its backward.
const Pass autodiff_pass = {
  "autodiff", pass_autodiff,
  "requires: inferred graph with a loss; provides: the backward graph, outputs loss and "
  "grad.NAME per param"};

// After the front pipeline, for a target: the forward graph to kernels.
const Pass lowering[] = {
  {"legalize", pass_legalize,
   "requires: inferred graph; provides: forward only (no loss) unless training, layouts, "
   "linears as convs"},
  {"place", pass_place,
   "requires: legalized graph, target; provides: ANE or CPU per node, the rule of each CPU node"},
  {"partition", pass_partition,
   "requires: placed graph; provides: kernels with their I/O and the schedule (g->plan)"},
};
const int nlowering = sizeof lowering / sizeof lowering[0];

const Pass *pipeline_find(const char *name) {
  for (int i = 0; i < npipeline; i++)
    if (name && strcmp(pipeline[i].name, name) == 0)
      return &pipeline[i];
  if (name && !strcmp(name, autodiff_pass.name))
    return &autodiff_pass;
  for (int i = 0; i < nlowering; i++)
    if (name && strcmp(lowering[i].name, name) == 0)
      return &lowering[i];
  return NULL;
}

static bool wants_dump(const PipelineOpts *o, const char *pass) {
  return o && (o->print_after_all || (o->print_after && strcmp(o->print_after, pass) == 0));
}

// Runs passes[0..n), verifying the graph after each; stops at the first failure.
static bool passes_run(const Pass *passes, int n, Graph *g, Diag *d, const PipelineOpts *o) {
  for (int i = 0; i < n; i++) {
    const Pass *p = &passes[i];
    if (!p->run(g, d) || !graph_verify(g, d))
      return false;
    if (wants_dump(o, p->name))
      graph_dump(g, o->dump ? o->dump : stderr, p->name);
  }
  return true;
}

bool pipeline_run(Graph *g, Diag *d, const PipelineOpts *o) {
  if (!graph_verify(g, d))
    return false;
  if (o && o->train) // infer, autodiff, then the rest
    return passes_run(pipeline, 1, g, d, o) && passes_run(&autodiff_pass, 1, g, d, o) &&
           passes_run(pipeline + 1, npipeline - 1, g, d, o);
  return passes_run(pipeline, npipeline, g, d, o);
}

bool lowering_run(Graph *g, Diag *d, const TargetProfile *t, const PipelineOpts *o) {
  g->target = t;
  g->dynamic_weights = g->dynamic_weights || g->train; // trained tensors are inputs (P01)
  g->dw_cpu = o && o->dw_cpu && g->train;
  return passes_run(lowering, nlowering, g, d, o);
}
