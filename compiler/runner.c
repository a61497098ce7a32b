// runner.c — runs a lowered forward graph on the reference backend: the
// kernels are emitted and written like `anec compile` writes them (into a
// temporary artifact directory), read back and prepared once on the
// executor; each run stages the host buffers (one arena, the memory plan's
// offsets), runs the schedule's kernels and CPU ops, and returns the outputs.
#include "anec.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct Runner {
  Graph *g;
  const ParamSet *ps;
  char dir[256];          // a temporary directory
  char art[300];          // the artifact directory in it
  MilProgram **progs;     // per kernel that has its own program (shares[k] == k)
  Exec **execs;
  int *shares;            // per kernel: the kernel whose program it runs
  Pack **packs;           // per kernel: its dynamic weights (npacks[k] of them)
  int *npacks;
  int64_t *pack_cols;
  int64_t **widths;       // per kernel: its surfaces' widths, inputs then outputs
  const char ***in_names, ***out_names;
  float *arena;           // host buffers: the memory plan's arena
  float **host;           // per node id: its buffer in the arena, or NULL
};

// The names emit_kernel gives a kernel's inputs and outputs.
static const char **io_names(Arena *a, const char *prefix, int n) {
  const char **v = arena_alloc(a, sizeof *v * (size_t)(n + 1));
  for (int i = 0; i < n; i++)
    v[i] = arena_printf(a, "%s%02d", prefix, i);
  return v;
}

// The [1, C, 1, W] surface widths of kernel k (kernel_io_shape), once.
static void surface_widths(Runner *r, int k) {
  const Kernel *kn = &r->g->plan->kernels[k];
  r->widths[k] = arena_alloc(r->g->arena, sizeof(int64_t) * (size_t)(kn->ninputs + kn->noutputs));
  for (int i = 0; i < kn->ninputs + kn->noutputs; i++) {
    int64_t dims[4];
    bool input = i < kn->ninputs;
    kernel_io_shape(r->g, k, input ? kn->inputs[i] : kn->outputs[i - kn->ninputs], input, dims);
    r->widths[k][i] = dims[3];
  }
}

static bool prepare_kernels(Runner *r, ExecPrecision prec, Diag *d) {
  const Plan *pl = r->g->plan;
  Arena *a = r->g->arena;
  RtDiag rd = {.out = d->out};
  for (int k = 0; k < pl->nkernels; k++) {
    r->packs[k] = arena_alloc(a, sizeof(Pack) * 64);
    r->npacks[k] = kernel_packing(r->g, k, r->packs[k], 64, &r->pack_cols[k]);
    r->in_names[k] = io_names(a, "in", pl->kernels[k].ninputs);
    r->out_names[k] = io_names(a, "out", pl->kernels[k].noutputs);
    surface_widths(r, k);
    if (r->shares[k] != k) { // one prepared program serves identical kernels
      r->execs[k] = r->execs[r->shares[k]];
      continue;
    }
    const char *path = arena_printf(a, "%s/kernels/%s.mil", r->art, pl->kernels[k].name);
    r->progs[k] = mil_read_file(path, &rd);
    r->execs[k] = r->progs[k] ? exec_prepare(r->progs[k], &r->progs[k]->funcs[0], prec, &rd)
                              : NULL;
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
  Runner *r = calloc(1, sizeof *r);
  int nk = g->plan->nkernels + 1;
  r->g = g, r->ps = ps;
  r->progs = calloc((size_t)nk, sizeof *r->progs);
  r->execs = calloc((size_t)nk, sizeof *r->execs);
  r->in_names = calloc((size_t)nk, sizeof *r->in_names);
  r->out_names = calloc((size_t)nk, sizeof *r->out_names);
  r->shares = calloc((size_t)nk, sizeof *r->shares);
  r->packs = calloc((size_t)nk, sizeof *r->packs);
  r->npacks = calloc((size_t)nk, sizeof *r->npacks);
  r->pack_cols = calloc((size_t)nk, sizeof *r->pack_cols);
  r->widths = calloc((size_t)nk, sizeof *r->widths);
  const char *tmp = getenv("TMPDIR");
  snprintf(r->dir, sizeof r->dir, "%.200s/anec-run.XXXXXX", tmp && *tmp ? tmp : "/tmp");
  bool ok = mkdtemp(r->dir) != NULL;
  if (!ok)
    diag_error(d, loc_none(), "cannot create a temporary directory in '%s'", r->dir);
  snprintf(r->art, sizeof r->art, "%s/model", r->dir);
  ok = ok && artifact_write(g, ps, r->art, prec == EXEC_FP32, NULL, r->shares, d);
  ok = ok && prepare_kernels(r, prec, d) && host_buffers(r);
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
  free(r->progs), free(r->execs), free(r->in_names), free(r->out_names);
  free(r->shares), free(r->packs), free(r->npacks), free(r->pack_cols), free(r->widths);
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
// Host (logical, row-major [S, rest]) <-> kernel surface ([1, rest, 1, S]).
static void to_surface(const Node *n, const float *v, float *out) {
  int64_t s = n->layout == LAYOUT_TL ? n->shape.dims[0] : 1, count = shape_numel(&n->shape);
  values_token_last(v, s, s ? count / s : 0, out);
}

// From a [C, width] surface whose first S columns hold the value.
static void from_surface(const Node *n, const RtTensor *t, int64_t width, float *out) {
  int64_t s = n->layout == LAYOUT_TL ? n->shape.dims[0] : 1, count = shape_numel(&n->shape);
  int64_t inner = s ? count / s : 0;
  for (int64_t c = 0; c < inner; c++)
    for (int64_t k = 0; k < s; k++) {
      int64_t i = c * width + k;
      float v = t->dtype == MIL_FP16 ? fp16_to_f32(((uint16_t *)t->data)[i])
                                     : ((float *)t->data)[i];
      out[k * inner + c] = v;
    }
}

// Dynamic weights: each param into its columns of the [C, width] surface.
static void pack_params(const Runner *r, int k, int64_t c, int64_t s, int64_t width,
                        float *surface) {
  for (int i = 0; i < r->npacks[k]; i++) {
    const Pack *p = &r->packs[k][i];
    const float *w = params_source_values(r->ps, p->param);
    for (int64_t row = 0; row < c; row++)
      for (int64_t j = 0; j < p->cols; j++) {
        float v = p->mode == PACK_TRANSPOSED ? w[j * c + row]
                  : p->mode == PACK_AS_IS    ? w[row * p->cols + j]
                  : row < p->param->shape.dims[0] ? w[row] : 0.0f;
        surface[row * width + s + p->col + j] = v;
      }
  }
}

// The activation's [C, S] surface into the first S columns of a wider one.
static void widen_rows(float *t, int64_t c, int64_t s, int64_t width) {
  for (int64_t row = c - 1; row >= 0; row--)
    memmove(t + row * width, t + row * s, sizeof(float) * (size_t)s);
}

static bool run_kernel(Runner *r, int k, Diag *d) {
  const Kernel *kn = &r->g->plan->kernels[k];
  RtDiag rd = {.out = d->out};
  for (int i = 0; i < kn->ninputs; i++) {
    RtTensor t;
    int64_t io[4], s;
    node_io_shape(kn->inputs[i], io);
    s = io[3];
    io[3] = r->widths[k][i];
    if (!rt_tensor_alloc(&t, MIL_FP32, 4, io))
      return false;
    to_surface(kn->inputs[i], r->host[kn->inputs[i]->id], t.data);
    widen_rows(t.data, io[1], s, io[3]);
    if (i == 0 && r->npacks[k])
      pack_params(r, k, io[1], s, io[3], t.data);
    bool ok = exec_set_input(r->execs[k], r->in_names[k][i], &t, &rd);
    rt_tensor_free(&t);
    if (!ok)
      return false;
  }
  if (!exec_run(r->execs[k], &rd))
    return false;
  for (int i = 0; i < kn->noutputs; i++) {
    RtTensor view;
    if (!exec_get_output(r->execs[k], r->out_names[k][i], &view))
      return false;
    from_surface(kn->outputs[i], &view, r->widths[k][kn->ninputs + i],
                 r->host[kn->outputs[i]->id]);
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
