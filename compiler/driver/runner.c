// runner.c — runs a lowered forward graph on the reference backend: the
// kernels are emitted and written like `anec compile` writes them (into a
// temporary artifact directory), read back and prepared once on the
// executor; each run stages the host buffers (one arena, the memory plan's
// offsets), runs the schedule's kernels and CPU ops, and returns the outputs.
#include "driver.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct KernelIo {
  IoBlock *in, *out;      // per input and output value: its block
  int nin, nout;          // surfaces
  int64_t (*in_dims)[4];  // per input surface: [1, C, 1, W]
  Packing pk;
} KernelIo;

struct Runner {
  Graph *g;
  const ParamSet *ps;
  char dir[256];          // a temporary directory
  char art[300];          // the artifact directory in it
  MilProgram **progs;     // per kernel that has its own program (shares[k] == k)
  Exec **execs;
  int *shares;            // per kernel: the kernel whose program it runs
  KernelIo *io;           // per kernel: its surfaces, blocks and packed params
  float *arena;           // host buffers: the memory plan's arena
  float **host;           // per node id: its buffer in the arena, or NULL
};

// Kernel k's I/O geometry, once: surfaces, each value's block, packing.
static void kernel_io(Runner *r, int k) {
  const Kernel *kn = &r->g->plan->kernels[k];
  KernelIo *io = &r->io[k];
  Arena *a = r->g->arena;
  io->in = arena_alloc(a, sizeof(IoBlock) * (size_t)(kn->ninputs + 1));
  io->out = arena_alloc(a, sizeof(IoBlock) * (size_t)(kn->noutputs + 1));
  io->nin = kernel_io_blocks(r->g, k, true, io->in);
  io->nout = kernel_io_blocks(r->g, k, false, io->out);
  io->in_dims = arena_alloc(a, sizeof(int64_t[4]) * (size_t)(io->nin + 1));
  for (int s = 0; s < io->nin; s++)
    kernel_surface_shape(r->g, k, true, s, io->in_dims[s]);
  kernel_packing(r->g, k, &io->pk);
}

static bool prepare_kernels(Runner *r, ExecPrecision prec, const ExecOptions *eo, Diag *d) {
  const Plan *pl = r->g->plan;
  Arena *a = r->g->arena;
  RtDiag rd = {.out = d->out};
  for (int k = 0; k < pl->nkernels; k++) {
    kernel_io(r, k);
    if (r->shares[k] != k) { // one prepared program serves identical kernels
      r->execs[k] = r->execs[r->shares[k]];
      continue;
    }
    const char *path = arena_printf(a, "%s/kernels/%s/model.mil", r->art, pl->kernels[k].name);
    r->progs[k] = mil_read_file(path, &rd);
    r->execs[k] =
        r->progs[k] ? exec_prepare_opts(r->progs[k], &r->progs[k]->funcs[0], prec, eo, &rd) : NULL;
    if (!r->execs[k])
      return false;
  }
  return true;
}

static bool host_buffers(Runner *r) {
  const Plan *pl = r->g->plan;
  r->arena = calloc((size_t)pl->arena_bytes / 4 + 16, sizeof(float));
  r->host = calloc((size_t)r->g->nnodes + 1, sizeof *r->host);
  if (!r->arena || !r->host)
    return false;
  for (int i = 0; i < pl->nbufs; i++)
    r->host[pl->bufs[i].value->id] = r->arena + pl->bufs[i].offset / 4;
  return true;
}

Runner *runner_open(Graph *g, const ParamSet *ps, ExecPrecision prec, Diag *d) {
  return runner_open_opts(g, ps, prec, NULL, d);
}

Runner *runner_open_opts(Graph *g, const ParamSet *ps, ExecPrecision prec,
                         const ExecOptions *eo, Diag *d) {
  Runner *r = calloc(1, sizeof *r);
  int nk = g->plan->nkernels + 1;
  r->g = g, r->ps = ps;
  r->progs = calloc((size_t)nk, sizeof *r->progs);
  r->execs = calloc((size_t)nk, sizeof *r->execs);
  r->shares = calloc((size_t)nk, sizeof *r->shares);
  r->io = calloc((size_t)nk, sizeof *r->io);
  const char *tmp = getenv("TMPDIR");
  snprintf(r->dir, sizeof r->dir, "%.200s/anec-run.XXXXXX", tmp && *tmp ? tmp : "/tmp");
  bool ok = mkdtemp(r->dir) != NULL;
  if (!ok)
    diag_error(d, loc_none(), "cannot create a temporary directory in '%s'", r->dir);
  snprintf(r->art, sizeof r->art, "%s/model", r->dir);
  ok = ok && artifact_write(g, ps, r->art, prec == EXEC_FP32, NULL, r->shares, d);
  ok = ok && prepare_kernels(r, prec, eo, d) && host_buffers(r);
  if (!ok) {
    runner_close(r);
    return NULL;
  }
  return r;
}

void runner_close(Runner *r) {
  if (!r)
    return;
  for (int k = 0; k < r->g->plan->nkernels; k++) {
    if (r->progs[k]) // kernels sharing a program do not own it
      exec_free(r->execs[k]);
    mil_free(r->progs[k]);
  }
  if (r->dir[0] && !strstr(r->dir, "XXXXXX"))
    rm_tree(r->dir);
  free(r->progs), free(r->execs), free(r->shares), free(r->io);
  free(r->arena), free(r->host), free(r);
}

static Node *find_named(const Graph *g, const char *name, bool output) {
  if (output) {
    for (int k = 0; k < g->noutputs; k++)
      if (!strcmp(g->output_names[k], name))
        return g->outputs[k];
    return NULL;
  }
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i]->op == OP_INPUT && !strcmp(g->nodes[i]->name, name))
      return g->nodes[i];
  return NULL;
}

float *runner_input(Runner *r, const char *name) {
  Node *n = find_named(r->g, name, false);
  return n ? r->host[n->id] : NULL;
}

const float *runner_output(Runner *r, const char *name) {
  Node *n = find_named(r->g, name, true);
  return n ? r->host[n->id] : NULL;
}

//
// Running
//
static StageBlock stage_block(const IoBlock *b, const Node *n) {
  return (StageBlock){b->row, b->rows, b->cols, n->layout == LAYOUT_TL};
}

// Dynamic weights: each param into its block of input surface 0.
static void pack_params(const Runner *r, const Packing *pk, RtTensor *t) {
  for (int i = 0; i < pk->n; i++) {
    const Pack *p = &pk->packs[i];
    stage_param(t, (StageMode)p->mode, p->row, p->col, p->rows, p->cols,
                params_source_values(r->ps, p->param));
  }
}

// Input surface s of kernel k: its values' blocks (and params), then set.
static bool stage_input(Runner *r, int k, int s, RtDiag *rd) {
  const Kernel *kn = &r->g->plan->kernels[k];
  const KernelIo *io = &r->io[k];
  RtTensor t;
  if (!rt_tensor_alloc(&t, MIL_FP32, 4, io->in_dims[s]))
    return false;
  for (int i = 0; i < kn->ninputs; i++)
    if (io->in[i].surface == s) {
      StageBlock b = stage_block(&io->in[i], kn->inputs[i]);
      stage_put(&t, &b, r->host[kn->inputs[i]->id]);
    }
  if (s == 0)
    pack_params(r, &io->pk, &t);
  char name[16];
  snprintf(name, sizeof name, "in%02d", s);
  bool ok = exec_set_input(r->execs[k], name, &t, rd);
  rt_tensor_free(&t);
  return ok;
}

static bool run_kernel(Runner *r, int k, Diag *d) {
  const Kernel *kn = &r->g->plan->kernels[k];
  const KernelIo *io = &r->io[k];
  RtDiag rd = {.out = d->out};
  for (int s = 0; s < io->nin; s++)
    if (!stage_input(r, k, s, &rd))
      return false;
  if (!exec_run(r->execs[k], &rd))
    return false;
  for (int i = 0; i < kn->noutputs; i++) {
    RtTensor view;
    char name[16];
    snprintf(name, sizeof name, "out%02d", io->out[i].surface);
    if (!exec_get_output(r->execs[k], name, &view))
      return false;
    StageBlock b = stage_block(&io->out[i], kn->outputs[i]);
    stage_get(&view, &b, r->host[kn->outputs[i]->id]);
  }
  return true;
}

// The embedding gather, in fp32 straight from the table: rows of tok_emb.
static bool run_embed(Runner *r, const Node *n, Diag *d) {
  const Node *table = n->in[0];
  const float *t = r->host[table->id] ? r->host[table->id] : params_source_values(r->ps, table);
  const float *ids = r->host[n->in[1]->id];
  int64_t rows = table->shape.dims[0], dim = table->shape.dims[1];
  for (int64_t i = 0; t && ids && i < n->shape.dims[0]; i++) {
    int64_t id = (int64_t)ids[i];
    if (!(ids[i] >= 0 && ids[i] < (float)rows) || (float)id != ids[i]) {
      diag_error(d, n->loc, "'embed': id %g at position %lld is out of range [0, %lld)",
                 (double)ids[i], (long long)i, (long long)rows);
      return false;
    }
    memcpy(r->host[n->id] + i * dim, t + id * dim, sizeof(float) * (size_t)dim);
  }
  return t && ids;
}

// A concat (of pieces past the channel limit, ANE-B05) in fp32.
static bool run_concat(Runner *r, const Node *n) {
  int64_t outer = 1, inner = 1, at = 0, width = n->shape.dims[n->axis];
  for (int i = 0; i < n->axis; i++)
    outer *= n->shape.dims[i];
  for (int i = n->axis + 1; i < n->shape.rank; i++)
    inner *= n->shape.dims[i];
  for (int k = 0; k < n->nin; k++) {
    const Node *x = n->in[k];
    const float *v = r->host[x->id] ? r->host[x->id] : params_source_values(r->ps, x);
    int64_t len = x->shape.dims[n->axis];
    for (int64_t o = 0; v && o < outer; o++)
      memcpy(r->host[n->id] + (o * width + at) * inner, v + o * len * inner,
             sizeof(float) * (size_t)(len * inner));
    if (!v)
      return false;
    at += len;
  }
  return true;
}

// A CPU op through the fp64 evaluator, inputs from the host buffers.
static bool run_cpu(Runner *r, const Node *n, Diag *d) {
  if (n->op == OP_EMBED)
    return run_embed(r, n, d);
  if (n->op == OP_CONCAT)
    return run_concat(r, n);
  double *ins[16] = {0}, *out = malloc(sizeof(double) * (size_t)(shape_numel(&n->shape) + 1));
  bool ok = n->nin <= 16 && out;
  for (int i = 0; ok && i < n->nin; i++) {
    const Node *x = n->in[i];
    int64_t count = shape_numel(&x->shape);
    const float *host = r->host[x->id];
    const float *c = host ? NULL : params_source_values(r->ps, x);
    ins[i] = host || c ? malloc(sizeof(double) * (size_t)(count + 1)) : NULL;
    for (int64_t j = 0; ins[i] && j < count; j++)
      ins[i][j] = host ? host[j] : c[j];
    ok = ins[i] != NULL;
  }
  char err[256] = "out of memory";
  ok = ok && ireval_node(n, r->ps, (const double *const *)ins, out, err, sizeof err);
  if (!ok)
    diag_error(d, n->loc, "%s", err);
  for (int64_t j = 0; ok && j < shape_numel(&n->shape); j++)
    r->host[n->id][j] = (float)out[j];
  for (int i = 0; i < n->nin; i++)
    free(ins[i]);
  free(out);
  return ok;
}

bool runner_run(Runner *r, Diag *d) {
  const Plan *pl = r->g->plan;
  for (int s = 0; s < pl->nsteps; s++) {
    bool ok = pl->steps[s].cpu ? run_cpu(r, pl->steps[s].cpu, d)
                               : run_kernel(r, pl->steps[s].kernel, d);
    if (!ok)
      return false;
  }
  return true;
}
