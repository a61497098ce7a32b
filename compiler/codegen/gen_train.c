// gen_train.c — a lowered training graph as C: step.c, the schedule of one
// training step written out as a flat, commented list of runtime calls
// (stage a value into its block, run a kernel, a CPU op) with the memory
// plan's offsets, plus the model's tensor table and main(); and kernels.c,
// every kernel's MIL text and weight files embedded as data.
#include "codegen.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

typedef struct Gen {
  const Graph *g;
  FILE *f;
  Diag *d;
  int *param;         // per node id: its index in the tensor table, or -1
  Node **params;      // the tensor table: the graph's params in order
  int nparams;
  const int *shares;  // per kernel: the kernel whose program it runs
  int *prog;          // per kernel: its program's index
  int nprogs;
  int loss_step;      // the schedule step that computes the loss
  const Node *tokens, *targets;
  int64_t vocab;      // the logits' width
  int nbackground;    // steps run on the worker thread (--dw=cpu)
} Gen;

// Before step s: the wait for the background ops that join there.
static void put_join(Gen *G, int s) {
  const Plan *pl = G->g->plan;
  int from = -1, to = -1;
  for (int t = 0; t < s; t++)
    if (pl->steps[t].background && pl->steps[t].join == s)
      to = t, from = from < 0 ? t : from;
  if (from >= 0)
    fprintf(G->f, "  join(m); // the background ops of steps %02d-%02d\n", from, to);
}

static int64_t buf_offset(const Graph *g, const Node *n) { // in floats; -1: no buffer
  for (int i = 0; i < g->plan->nbufs; i++)
    if (g->plan->bufs[i].value == n)
      return g->plan->bufs[i].offset / 4;
  return -1;
}

// Where the step finds value n: a host buffer or a weight array.
static bool put_value(Gen *G, const Node *n) {
  if (n->op == OP_PARAM) {
    fprintf(G->f, "w[%d]", G->param[n->id]);
    return true;
  }
  int64_t off = buf_offset(G->g, n);
  if (off < 0) {
    diag_error(G->d, n->loc, "internal error: %%%d has no host buffer", n->id);
    return false;
  }
  fprintf(G->f, "m->A + %lld", (long long)off);
  return true;
}

static const char *value_label(Arena *a, const Node *n) {
  return n->name ? n->name : arena_printf(a, "%%%d %s", n->id, op_info[n->op].name);
}

//
// Kernels
//
static void put_block(Gen *G, const char *call, const char *tensor, const IoBlock *b,
                      const Node *n) {
  fprintf(G->f, "  %s(%s, &(StageBlock){%lld, %lld, %lld, %s}, ", call, tensor,
          (long long)b->row, (long long)b->rows, (long long)b->cols,
          n->layout == LAYOUT_TL ? "true" : "false");
  put_value(G, n);
  fprintf(G->f, "); // %s %s\n", value_label(G->g->arena, n), shape_str(G->g->arena, &n->shape));
}

// The weights: into this step's surfaces only when they changed since.
static void put_params(Gen *G, int s, const Packing *pk) {
  static const char *const modes[] = {"STAGE_TRANSPOSED", "STAGE_AS_IS", "STAGE_VECTOR"};
  if (!pk->n)
    return;
  fprintf(G->f, "  if (m->staged[%d] != m->weights) { // the weights changed since this step's "
          "last run\n", s);
  for (int i = 0; i < pk->n; i++) {
    const Pack *p = &pk->packs[i];
    fprintf(G->f, "    stage_param(&in[0], %s, %lld, %lld, %lld, %lld, w[%d]); // %s %s\n",
            modes[p->mode], (long long)p->row, (long long)p->col, (long long)p->rows,
            (long long)p->cols, G->param[p->param->id], p->param->name,
            shape_str(G->g->arena, &p->param->shape));
  }
  fprintf(G->f, "    m->staged[%d] = m->weights;\n  }\n", s);
}

static void put_kernel_step(Gen *G, int s, int ki) {
  const Kernel *k = &G->g->plan->kernels[ki];
  int nin = k->ninputs, nout = k->noutputs;
  IoBlock in[nin + 1], out[nout + 1];
  kernel_io_blocks(G->g, ki, true, in);
  kernel_io_blocks(G->g, ki, false, out);
  Packing pk;
  kernel_packing(G->g, ki, &pk);
  fprintf(G->f, "\n// %s: %d ops, %s\nstatic bool step_%02d(Model *m, float *const *w, RtDiag *d) {\n"
          "  RtKernel *k = &m->kernels[%d];\n  RtTensor *in = m->in[%d]; // this step's request\n"
          "  (void)w;\n",
          k->name, k->nnodes, fmt_si((char[32]){0}, 32, (double)k->flops, "FLOP"), s,
          G->prog[ki], s);
  put_join(G, s);
  fputs("  double t0 = now_ms();\n", G->f);
  for (int i = 0; i < nin; i++) {
    char t[32];
    snprintf(t, sizeof t, "&in[%d]", in[i].surface);
    put_block(G, "stage_put", t, &in[i], k->inputs[i]);
  }
  put_params(G, s, &pk);
  fputs("  double t1 = now_ms();\n  if (!rtk_run(k, in, d))\n    return false;\n"
        "  double t2 = now_ms();\n  RtTensor o;\n", G->f);
  for (int i = 0; i < nout; i++) {
    fprintf(G->f, "  if (!rtk_output(k, \"out%02d\", &o))\n    return false;\n", out[i].surface);
    put_block(G, "stage_get", "&o", &out[i], k->outputs[i]);
  }
  fputs("  m->staging_ms += (t1 - t0) + (now_ms() - t2);\n  m->kernel_ms += t2 - t1;\n"
        "  return true;\n}\n", G->f);
}

//
// CPU ops
//
static bool put_cpu_call(Gen *G, const Node *n) {
  FILE *f = G->f;
  const Node *a = n->in[0], *b = n->nin > 1 ? n->in[1] : NULL;
  long long s = a->shape.dims[0], c = a->shape.rank > 1 ? a->shape.dims[1] : 1;
  bool ok = true;
  switch (n->op) {
  case OP_EMBED: // (table [V, D], ids [S])
    fputs("  ok = rt_embed(", f), ok &= put_value(G, n), fputs(", ", f), ok &= put_value(G, a);
    fprintf(f, ", %lld, %lld, ", s, c), ok &= put_value(G, b);
    fprintf(f, ", %lld, d);\n", (long long)b->shape.dims[0]);
    break;
  case OP_CROSS_ENTROPY: // (logits [S, V], targets [S])
    fputs("  ok = rt_cross_entropy(", f), ok &= put_value(G, a), fputs(", ", f);
    ok &= put_value(G, b), fprintf(f, ", %lld, %lld, &m->loss, d);\n", s, c);
    break;
  case OP_CE_GRAD: // scaled: every gradient downstream is grad_scale times dL/dw
    fputs("  rt_cross_entropy_grad(", f), ok &= put_value(G, n), fputs(", ", f);
    ok &= put_value(G, a), fputs(", ", f), ok &= put_value(G, b);
    fprintf(f, ", %lld, %lld, m->grad_scale);\n", s, c);
    break;
  case OP_EMBED_GRAD: // (ids [S], g [S, D]) -> [V, D]
    fputs("  rt_embed_grad(", f), ok &= put_value(G, n);
    fprintf(f, ", %lld, %lld, ", (long long)n->shape.dims[0], (long long)n->shape.dims[1]);
    ok &= put_value(G, a), fputs(", ", f), ok &= put_value(G, b);
    fprintf(f, ", %lld);\n", s);
    break;
  case OP_MATMUL: { // 2-D (place's --dw=cpu): [m, k] x [k, n]
    long long m = n->shape.dims[0], nn = n->shape.dims[1];
    long long k = n->transpose_a ? a->shape.dims[0] : a->shape.dims[1];
    fputs("  rt_matmul(", f), ok &= put_value(G, n), fputs(", ", f), ok &= put_value(G, a);
    fputs(", ", f), ok &= put_value(G, b);
    fprintf(f, ", %lld, %lld, %lld, %s, %s);\n", m, nn, k, n->transpose_a ? "true" : "false",
            n->transpose_b ? "true" : "false");
    break;
  }
  case OP_ADD: // same shapes (place's --dw=cpu: sums of a weight's gradients)
    fputs("  rt_add(", f), ok &= put_value(G, n), fputs(", ", f), ok &= put_value(G, a);
    fputs(", ", f), ok &= put_value(G, b);
    fprintf(f, ", %lld);\n", (long long)shape_numel(&n->shape));
    break;
  default:
    diag_error(G->d, n->loc, "'%s' runs on the CPU here (%s) but the generated trainer has no "
               "CPU implementation of it yet", op_info[n->op].name,
               node_rule(n) ? node_rule(n)->id : "?");
    return false;
  }
  return ok;
}

// A --dw=cpu op (matmul, add; no errors): submitted to the worker thread.
static bool put_background_step(Gen *G, int s, const Node *n) {
  int join = G->g->plan->steps[s].join;
  char until[32] = "the end of the step";
  if (join < G->g->plan->nsteps)
    snprintf(until, sizeof until, "step_%02d", join);
  fprintf(G->f, "\n// %s %%%d on the CPU (--dw=cpu), in the background: overlapped with the "
          "kernels up to %s\nstatic void bg_%02d(void *ctx) {\n  Model *m = ctx;\n",
          op_info[n->op].name, n->id, until, s);
  bool ok = put_cpu_call(G, n);
  fprintf(G->f, "}\n\nstatic bool step_%02d(Model *m, float *const *w, RtDiag *d) {\n"
          "  (void)w, (void)d;\n", s);
  put_join(G, s);
  fprintf(G->f, "  rt_worker_submit(m->bg, bg_%02d, m);\n  return true;\n}\n", s);
  G->nbackground++;
  return ok;
}

static bool put_cpu_step(Gen *G, int s, const Node *n) {
  if (G->g->plan->steps[s].background)
    return put_background_step(G, s, n);
  const Rule *r = node_rule(n);
  fprintf(G->f, "\n// %s %%%d on the CPU (%s): %s\n"
          "static bool step_%02d(Model *m, float *const *w, RtDiag *d) {\n"
          "  (void)w, (void)d;\n",
          op_info[n->op].name, n->id, r ? r->id : "?", r ? r->text : "", s);
  put_join(G, s);
  fputs("  double t0 = now_ms();\n  bool ok = true;\n", G->f);
  bool ok = put_cpu_call(G, n);
  fputs("  m->cpu_ms += now_ms() - t0;\n  return ok;\n}\n", G->f);
  return ok;
}

//
// The step, the tensor table and main
//
static void put_prologue(Gen *G, uint64_t hash) {
  const Graph *g = G->g;
  fprintf(G->f, "// step.c — the training step of model '%s' (%s), generated by anec %s for "
          "target %s.\n// Forward kernels, the loss on the CPU, backward kernels; the driver "
          "(runtime/trainer.c)\n// accumulates, clips and updates. Host buffers: one arena, "
          "offsets in floats.\n#include \"anert.h\"\n\n#include <stdlib.h>\n#include <string.h>\n#include <time.h>\n\n",
          g->model, g->file, ANEC_VERSION, g->target->name);
  fprintf(G->f, "#define MODEL_HASH 0x%016llxull\n#define ARENA_FLOATS %lld\n#define NKERNELS %d\n"
          "#define NSTEPS %d\n#define NTENSORS %d\n#define FLOPS_PER_SEQ %.17g // forward and "
          "backward\n\n", (unsigned long long)hash, (long long)(g->plan->arena_bytes / 4 + 16),
          G->nprogs, g->plan->nsteps, G->nparams, (double)graph_flops(g));
  fputs("extern const char *const anec_mil[2][NKERNELS];      // fp16, fp32 (kernels.c)\n"
        "extern const RtFile *const anec_files[2][NKERNELS];\n"
        "extern const int anec_nfiles[2][NKERNELS];\n"
        "extern const char *const anec_kernel_names[NKERNELS];\n\n"
        "typedef struct Model {\n  RtKernel kernels[NKERNELS];\n"
        "  RtTensor in[NSTEPS][RTK_MAX_IO]; // each kernel step's request: its input surfaces\n"
        "  uint64_t staged[NSTEPS];         // the weights version staged into them\n"
        "  uint64_t weights;                // the driver's weights version\n"
        "  float *A;          // the host buffers\n"
        "  RtWorker *bg;      // runs the background (--dw=cpu) ops\n"
        "  double loss;\n  float grad_scale;\n  double kernel_ms, "
        "cpu_ms, staging_ms, compile_ms;\n} Model;\n\n"
        "static double now_ms(void) {\n  struct timespec t;\n  clock_gettime(CLOCK_MONOTONIC, "
        "&t);\n  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;\n}\n\n"
        "// Waits for the background ops submitted so far; the wait counts as CPU-op time.\n"
        "static void join(Model *m) {\n  double t0 = now_ms();\n  rt_worker_wait(m->bg);\n"
        "  m->cpu_ms += now_ms() - t0;\n}\n", G->f);
}

static bool put_steps(Gen *G) {
  const Plan *pl = G->g->plan;
  bool ok = true;
  for (int s = 0; s < pl->nsteps && ok; s++) {
    if (pl->steps[s].cpu)
      ok = put_cpu_step(G, s, pl->steps[s].cpu);
    else
      put_kernel_step(G, s, pl->steps[s].kernel);
  }
  return ok;
}

static void put_phase(Gen *G, const char *name, int from, int to, const char *what) {
  fprintf(G->f, "\n// %s\nstatic bool %s(Model *m, float *const *w, RtDiag *d) {\n"
          "  return true", what, name);
  for (int s = from; s < to; s++)
    fprintf(G->f, "%s&& step_%02d(m, w, d)", (s - from) % 4 == 3 ? "\n         " : " ", s);
  fputs(";\n}\n", G->f);
}

// Per step: the program its kernel runs, -1 for a CPU op.
static void put_step_programs(Gen *G) {
  const Plan *pl = G->g->plan;
  fputs("static const int step_program[NSTEPS] = {", G->f);
  for (int s = 0; s < pl->nsteps; s++)
    fprintf(G->f, "%s%s%d", s ? "," : "", s % 16 == 15 ? "\n    " : " ",
            pl->steps[s].cpu ? -1 : G->prog[pl->steps[s].kernel]);
  fputs("};\n", G->f);
}

static void put_tensors(Gen *G) {
  static const char *const inits[] = {[INIT_NONE] = "TINIT_ZEROS", [INIT_ZEROS] = "TINIT_ZEROS",
                                      [INIT_ONES] = "TINIT_ONES", [INIT_NORMAL] = "TINIT_NORMAL"};
  fputs("\n// The trained tensors: name, shape, weight decay (matrices), initializer.\n"
        "static const TrainTensor tensors[NTENSORS] = {\n", G->f);
  for (int i = 0; i < G->nparams; i++) {
    const Node *p = G->params[i];
    fprintf(G->f, "    {\"%s\", %d, {", p->name, p->shape.rank);
    for (int k = 0; k < p->shape.rank; k++)
      fprintf(G->f, "%s%lld", k ? ", " : "", (long long)p->shape.dims[k]);
    fprintf(G->f, "}, %s, %s, %.9g},\n", p->shape.rank >= 2 ? "true" : "false", inits[p->init],
            p->init_std);
  }
  fputs("};\n", G->f);
}

// The grad.NAME buffers added into the driver's accumulators.
static void put_accumulate(Gen *G) {
  fputs("\nstatic void accumulate(const Model *m, float *const *grads) {\n", G->f);
  for (int o = 0; o < G->g->noutputs; o++) {
    const char *name = G->g->output_names[o];
    const Node *n = G->g->outputs[o];
    if (strncmp(name, "grad.", 5) || buf_offset(G->g, n) < 0)
      continue;
    for (int i = 0; i < G->nparams; i++)
      if (!strcmp(G->params[i]->name, name + 5))
        fprintf(G->f, "  for (int64_t i = 0; i < %lld; i++) // %s\n    grads[%d][i] += "
                "m->A[%lld + i];\n", (long long)shape_numel(&n->shape), name, i,
                (long long)buf_offset(G->g, n));
  }
  fputs("}\n", G->f);
}

static void put_ids(Gen *G) {
  fprintf(G->f, "\n// Token ids into their host buffers, as exact floats.\n"
          "static void load_ids(Model *m, const int32_t *tokens, const int32_t *targets) {\n"
          "  for (int i = 0; i < %lld; i++) {\n", (long long)G->tokens->shape.dims[0]);
  fprintf(G->f, "    m->A[%lld + i] = (float)tokens[i];\n    m->A[%lld + i] = (float)targets[i];\n"
          "  }\n}\n", (long long)buf_offset(G->g, G->tokens), (long long)buf_offset(G->g, G->targets));
}

static const char model_glue[] =
    "\nstatic bool model_open(TrainModel *tm, const char *backend, bool fp32, bool ane_quirks,\n"
    "                       RtDiag *d) {\n"
    "  Model *m = tm->self;\n"
    "  ExecOptions eo = {.ane_quirks = ane_quirks ? EXEC_QUIRKS_ON : EXEC_QUIRKS_OFF};\n"
    "  if (strcmp(backend, \"ref\")) {\n"
    "    rt_error_file(d, NULL, \"backend '%s' is not available in this build (known: ref)\", backend);\n"
    "    return false;\n  }\n"
    "  m->A = calloc(ARENA_FLOATS, sizeof(float));\n"
    "  m->bg = BACKGROUND_OPS ? rt_worker_new() : NULL; // NULL: they run in this thread\n"
    "  double t0 = now_ms();\n"
    "  for (int i = 0; m->A && i < NKERNELS; i++)\n"
    "    if (!rtk_open(&m->kernels[i], anec_kernel_names[i], anec_mil[fp32][i], anec_files[fp32][i],\n"
    "                  anec_nfiles[fp32][i], fp32 ? EXEC_FP32 : EXEC_FP16, &eo, d))\n"
    "      return false;\n"
    "  m->compile_ms = now_ms() - t0;\n"
    "  for (int s = 0; m->A && s < NSTEPS; s++)\n"
    "    if (step_program[s] >= 0 && !rtk_surfaces(&m->kernels[step_program[s]], m->in[s])) {\n"
    "      rt_error_file(d, NULL, \"out of memory for the input surfaces of step %d\", s);\n"
    "      return false;\n    }\n"
    "  return m->A != NULL;\n}\n\n"
    "static bool model_step(TrainModel *tm, float *const *w, const int32_t *tokens,\n"
    "                       const int32_t *targets, float grad_scale, float *const *grads,\n"
    "                       double *loss, RtDiag *d) {\n"
    "  Model *m = tm->self;\n"
    "  m->weights = tm->weights_version;\n"
    "  load_ids(m, tokens, targets);\n"
    "  m->grad_scale = grad_scale;\n"
    "  if (!forward(m, w, d) || !backward(m, w, d))\n    return false;\n"
    "  join(m);\n  accumulate(m, grads);\n  *loss = m->loss;\n  return true;\n}\n\n"
    "static bool model_eval(TrainModel *tm, float *const *w, const int32_t *tokens,\n"
    "                       const int32_t *targets, double *loss, RtDiag *d) {\n"
    "  Model *m = tm->self;\n"
    "  m->weights = tm->weights_version;\n"
    "  load_ids(m, tokens, targets);\n"
    "  if (!forward(m, w, d))\n    return false;\n  *loss = m->loss;\n  return true;\n}\n\n"
    "static void model_counters(TrainModel *tm, TrainCounters *c) {\n"
    "  const Model *m = tm->self;\n"
    "  *c = (TrainCounters){NKERNELS, m->compile_ms, m->kernel_ms, m->cpu_ms, m->staging_ms,\n"
    "                       FLOPS_PER_SEQ};\n}\n\n"
    "static void model_close(TrainModel *tm) {\n"
    "  Model *m = tm->self;\n"
    "  rt_worker_free(m->bg); // after its last ops\n"
    "  for (int s = 0; s < NSTEPS; s++)\n"
    "    if (step_program[s] >= 0)\n      rtk_surfaces_free(&m->kernels[step_program[s]], m->in[s]);\n"
    "  for (int i = 0; i < NKERNELS; i++)\n    rtk_close(&m->kernels[i]);\n"
    "  free(m->A);\n}\n";

static void put_main(Gen *G) {
  const Graph *g = G->g;
  int64_t seq = G->tokens->shape.dims[0];
  L2cConfig c;
  bool l2c = graph_l2c_config(g, (int)seq, &c);
  fprintf(G->f, "\nint main(int argc, char **argv) {\n  static Model m;\n"
          "  TrainModel tm = {\n      .name = \"%s\", .hash = MODEL_HASH, .seq = %lld, .vocab = %lld,\n"
          "      .ntensors = NTENSORS, .tensors = tensors, .has_l2c = %s,\n"
          "      .l2c = {%d, %d, %d, %d, %d, %d, %d, %s},\n"
          "      .self = &m, .open = model_open, .step = model_step, .eval = model_eval,\n"
          "      .counters = model_counters, .close = model_close};\n"
          "  return train_main(&tm, argc, argv);\n}\n",
          g->model, (long long)seq, (long long)G->vocab, l2c ? "true" : "false", c.dim, c.hidden,
          c.layers, c.heads, c.kv_heads, c.vocab, c.seq, c.shared_cls ? "true" : "false");
}

//
// Entry points
//
// The tensor table, the programs, the token inputs and the loss step.
static bool gen_init(Gen *G, const Graph *g, const int *shares, Diag *d) {
  *G = (Gen){.g = g, .d = d, .shares = shares, .loss_step = -1};
  G->param = arena_alloc(g->arena, sizeof(int) * (size_t)(g->nnodes + 1));
  G->params = arena_alloc(g->arena, sizeof(Node *) * (size_t)(g->nnodes + 1));
  G->prog = arena_alloc(g->arena, sizeof(int) * (size_t)(g->plan->nkernels + 1));
  for (int i = 0; i < g->nnodes; i++) {
    Node *n = g->nodes[i];
    G->param[i] = n->op == OP_PARAM ? G->nparams : -1;
    if (n->op == OP_PARAM)
      G->params[G->nparams++] = n;
    if (n->op == OP_EMBED && n->in[1]->op == OP_INPUT)
      G->tokens = n->in[1];
    if (n->op == OP_CROSS_ENTROPY && n->in[1]->op == OP_INPUT)
      G->targets = n->in[1], G->vocab = n->in[0]->shape.dims[1];
  }
  for (int k = 0; k < g->plan->nkernels; k++)
    G->prog[k] = shares[k] == k ? G->nprogs++ : G->prog[shares[k]];
  for (int s = 0; s < g->plan->nsteps; s++)
    if (g->plan->steps[s].cpu && g->plan->steps[s].cpu->op == OP_CROSS_ENTROPY)
      G->loss_step = s;
  if (!G->tokens || !G->targets || G->loss_step < 0 || !g->train) {
    diag_error(d, loc_none(), "model '%s' cannot be trained by a generated trainer: it needs "
               "an embedding of an input (tokens) and a loss cross_entropy(logits, targets) of "
               "an input", g->model);
    return false;
  }
  return true;
}

bool gen_train_step(const Graph *g, const int *shares, uint64_t hash, FILE *out, Diag *d) {
  Gen G;
  if (!gen_init(&G, g, shares, d))
    return false;
  G.f = out;
  put_prologue(&G, hash);
  if (!put_steps(&G))
    return false;
  put_phase(&G, "forward", 0, G.loss_step + 1, "Forward to the loss.");
  put_phase(&G, "backward", G.loss_step + 1, g->plan->nsteps,
            "Backward from the loss's gradient (scaled by grad_scale) to every grad.NAME.");
  fprintf(out, "\n#define BACKGROUND_OPS %d // on the worker thread\n", G.nbackground);
  put_step_programs(&G);
  put_ids(&G);
  put_accumulate(&G);
  put_tensors(&G);
  fputs(model_glue, out);
  put_main(&G);
  return true;
}

//
// kernels.c: the programs' text and weight files as data
//
static void put_c_string(FILE *f, const char *s, size_t n) {
  fputs("    \"", f);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '\n')
      fputs(i + 1 < n ? "\\n\"\n    \"" : "\\n", f);
    else if (c == '"' || c == '\\')
      fprintf(f, "\\%c", c);
    else if (c < 32 || c > 126)
      fprintf(f, "\\%03o", c);
    else
      fputc(c, f);
  }
  fputs("\"", f);
}

enum { ZERO_RUN = 64 }; // zero runs at least this long are left out of the records

static size_t zeros_at(const unsigned char *p, size_t i, size_t n) {
  size_t j = i;
  while (j < n && !p[j])
    j++;
  return j - i;
}

// n bytes of a C array initializer, 24 to a line (*col counts them).
static void put_c_bytes(FILE *f, const unsigned char *p, size_t n, size_t *col) {
  for (size_t i = 0; i < n; i++)
    fprintf(f, "%s%u,", (*col)++ % 24 ? "" : "\n    ", p[i]);
}

// A weight file as RtFile records (runtime/anert.h): its bytes without runs
// of ZERO_RUN zeros or more. Returns the records' length.
static size_t put_bytes(FILE *f, const char *var, const unsigned char *p, size_t n) {
  fprintf(f, "static const unsigned char %s[] = {", var);
  size_t col = 0, len = 0;
  for (size_t i = 0; i < n;) {
    size_t z = zeros_at(p, i, n), end = i;
    if (z >= ZERO_RUN) { // left out
      i += z;
      continue;
    }
    while (end < n && (z = zeros_at(p, end, n)) < ZERO_RUN) // a record: up to a long zero run
      end += z ? z : 1;
    unsigned char head[16]; // the record's offset and count
    rt_put_le(head, i, 8), rt_put_le(head + 8, end - i, 8);
    put_c_bytes(f, head, 16, &col);
    put_c_bytes(f, p + i, end - i, &col);
    len += 16 + (end - i);
    i = end;
  }
  fputs(col ? "\n};\n" : "0};\n", f);
  return len;
}

// Kernel `name`'s weight files under DIR/kernels/name/weights, as RtFiles
// whose paths are relative to the program's @model_path: weights/FILE.
static bool put_files(FILE *f, const char *dir, const char *name, int v, int p, int *count,
                      Diag *d) {
  char wdir[1024];
  snprintf(wdir, sizeof wdir, "%s/kernels/%s/weights", dir, name);
  DIR *dd = opendir(wdir);
  struct dirent *e;
  char files[64][256];
  *count = 0;
  while (dd && (e = readdir(dd)) && *count < 64)
    if (e->d_name[0] != '.')
      snprintf(files[(*count)++], 256, "%s", e->d_name);
  if (dd)
    closedir(dd);
  RtDiag rd = {.out = d->out};
  size_t lens[64][2]; // records, file
  for (int i = 0; i < *count; i++) {
    char path[1280], var[64];
    snprintf(path, sizeof path, "%.1000s/%.255s", wdir, files[i]);
    unsigned char *bytes = rt_read_file(path, &lens[i][1], &rd);
    if (!bytes)
      return false;
    snprintf(var, sizeof var, "w%d_%d_%d", v, p, i);
    lens[i][0] = put_bytes(f, var, bytes, lens[i][1]);
    free(bytes);
  }
  fprintf(f, "static const RtFile files%d_%d[%d] = {", v, p, *count ? *count : 1);
  for (int i = 0; i < *count; i++)
    fprintf(f, "\n    {\"weights/%s\", w%d_%d_%d, %zu, %zu},", files[i], v, p, i, lens[i][0],
            lens[i][1]);
  fputs(*count ? "\n};\n" : "{0}};\n", f);
  return true;
}

bool gen_train_kernels(const Graph *g, const int *shares, const char *const dirs[2], FILE *out,
                       Diag *d) {
  fputs("// kernels.c — the kernels of step.c: MIL text and weight files, fp16 and fp32 "
        "variants.\n// Generated by anec; not for reading.\n#include \"anert.h\"\n\n", out);
  const Plan *pl = g->plan;
  int nprogs = 0, *counts = arena_alloc(g->arena, sizeof(int) * 2 * (size_t)(pl->nkernels + 1));
  for (int k = 0; k < pl->nkernels; k++)
    nprogs += shares[k] == k;
  fprintf(out, "#define NKERNELS_ %d\n\n", nprogs);
  for (int v = 0; v < 2; v++)
    for (int k = 0, p = 0; k < pl->nkernels; k++) {
      if (shares[k] != k)
        continue;
      if (!put_files(out, dirs[v], pl->kernels[k].name, v, p, &counts[v * pl->nkernels + p], d))
        return false;
      p++;
    }
  fputs("const char *const anec_kernel_names[] = {", out);
  for (int k = 0; k < pl->nkernels; k++)
    if (shares[k] == k)
      fprintf(out, "\"%s\", ", pl->kernels[k].name);
  fputs("};\nconst char *const anec_mil[2][NKERNELS_] = {\n", out);
  RtDiag rd = {.out = d->out};
  for (int v = 0; v < 2; v++) {
    fputs("  {\n", out);
    for (int k = 0; k < pl->nkernels; k++) {
      if (shares[k] != k)
        continue;
      char path[1024];
      snprintf(path, sizeof path, "%s/kernels/%s/model.mil", dirs[v], pl->kernels[k].name);
      size_t n;
      char *text = (char *)rt_read_file(path, &n, &rd);
      if (!text)
        return false;
      put_c_string(out, text, n);
      fputs(",\n", out);
      free(text);
    }
    fputs("  },\n", out);
  }
  fputs("};\n", out);
  const char *tables[] = {"const RtFile *const anec_files[2][NKERNELS_]", "const int anec_nfiles[2][NKERNELS_]"};
  for (int t = 0; t < 2; t++) {
    fprintf(out, "%s = {\n", tables[t]);
    for (int v = 0; v < 2; v++) {
      fputs("  {", out);
      for (int p = 0; p < nprogs; p++)
        if (t == 0)
          fprintf(out, "files%d_%d, ", v, p);
        else
          fprintf(out, "%d, ", counts[v * pl->nkernels + p]);
      fputs("},\n", out);
    }
    fputs("};\n", out);
  }
  return true;
}
