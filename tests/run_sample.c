// run_sample.c MODEL.anet — every kernel anec emits for a sample runs on the
// reference backend: the model is lowered for the default target with
// seeded random parameters, one forward runs in fp16 on random tokens (or
// N(0,1)-ish activations), and every output must be finite. Exit 0 on
// success; a message and 1 otherwise.
#include "driver.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *msg, const char *model) {
  fprintf(stderr, "run_sample: %s: %s\n", model, msg);
  return 1;
}

// Fills every graph input: token ids below the rows of the table that embeds
// them, else small values.
static void fill_inputs(const Graph *g, Runner *r) {
  uint32_t seed = 12345;
  for (int i = 0; i < g->nnodes; i++) {
    const Node *in = g->nodes[i];
    float *host = in->op == OP_INPUT ? runner_input(r, in->name) : NULL;
    int64_t rows = 1 << 20;
    for (int j = 0; j < g->nnodes; j++)
      if (g->nodes[j]->op == OP_EMBED && g->nodes[j]->in[1] == in)
        rows = g->nodes[j]->in[0]->shape.dims[0];
    for (int64_t k = 0; host && k < shape_numel(&in->shape); k++) {
      seed = seed * 1664525u + 1013904223u;
      host[k] = in->dtype == DT_I32 ? (float)(seed % (uint32_t)rows)
                                    : ((float)(seed >> 8) * 0x1p-24f - 0.5f) * 2.0f;
    }
  }
}

int main(int argc, char **argv) {
  if (argc != 2)
    return fail("usage: run_sample MODEL.anet", "?");
  Arena a = {0};
  Diag d;
  diag_init(&d, stderr);
  FrontOpts o = {0};
  Graph *g = front_compile(&a, &d, argv[1], &o);
  if (!g || !lowering_run(g, &d, target_default(), NULL))
    return fail("does not lower", argv[1]);
  ParamSet ps;
  params_init(&ps, &a);
  params_init_random(&ps, g, 3);
  Runner *r = runner_open(g, &ps, EXEC_FP16, &d);
  if (!r)
    return fail("kernels do not prepare", argv[1]);
  fill_inputs(g, r);
  int rc = runner_run(r, &d) ? 0 : fail("forward failed", argv[1]);
  for (int k = 0; !rc && k < g->noutputs; k++) {
    const float *v = runner_output(r, g->output_names[k]);
    for (int64_t i = 0; !rc && i < shape_numel(&g->outputs[k]->shape); i++)
      if (!isfinite(v[i]))
        rc = fail("an output is not finite", argv[1]);
  }
  if (!rc)
    printf("%s: %d kernels and %d CPU ops ran; outputs finite\n", argv[1], g->plan->nkernels,
           g->plan->nsteps - g->plan->nkernels);
  runner_close(r);
  arena_free(&a);
  diag_free(&d);
  return rc;
}
