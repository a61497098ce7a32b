// pipeline.c — the passes in the order they run, and the driver that runs
// them: the verifier before the first pass and after each one, and the
// --print-after dumps.
#include "anec.h"

#include <string.h>

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

const Pass *pipeline_find(const char *name) {
  for (int i = 0; i < npipeline; i++)
    if (name && strcmp(pipeline[i].name, name) == 0)
      return &pipeline[i];
  return NULL;
}

static bool wants_dump(const PipelineOpts *o, const char *pass) {
  return o && (o->print_after_all || (o->print_after && strcmp(o->print_after, pass) == 0));
}

// Runs every pass, verifying the graph before the first and after each;
// stops at the first failure.
bool pipeline_run(Graph *g, Diag *d, const PipelineOpts *o) {
  if (!graph_verify(g, d))
    return false;
  for (int i = 0; i < npipeline; i++) {
    const Pass *p = &pipeline[i];
    if (!p->run(g, d) || !graph_verify(g, d))
      return false;
    if (wants_dump(o, p->name))
      graph_dump(g, o->dump ? o->dump : stderr, p->name);
  }
  return true;
}
