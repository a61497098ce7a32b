// partition.c — maximal runs of ANE nodes become kernels, in schedule order.
// A kernel ends at a CPU op (but for weight gradients of --dw=cpu, which
// wait for it to end), or before a node whose weights would take it
// past the target's SRAM (ANE-P03) at a point where one value is live (so the
// next kernel has the one input ANE-B09 allows). Then each kernel's inputs,
// outputs, FLOPs and SRAM estimate.
#include "passes.h"

#include <string.h>

typedef struct Part {
  Graph *g;
  int *last_use;      // per node id: the last consumer's id (nnodes: a graph output)
  int *counted;       // per node id: the kernel whose weights count it, or -1
  int *live;          // per node id: values computed before it and needed from it on
  int64_t *segment;   // per node id with live == 1: weight bytes up to the next such node
  Kernel *cur;        // the open kernel, or NULL
} Part;

static bool is_value(const Node *n) { // something a kernel reads as an input
  return n->dev != DEV_HOST || n->op == OP_INPUT;
}

static bool is_weight(const Node *n) {
  return n->dev == DEV_HOST && n->op != OP_INPUT && n->shape.rank > 0;
}

static int64_t fp16_bytes(const Node *n) {
  return 2 * shape_numel(&n->shape);
}

// Bytes of constants n would add to kernel k.
static int64_t new_weight_bytes(const Part *p, const Node *n, int k) {
  int64_t b = 0;
  for (int i = 0; i < n->nin; i++)
    if (is_weight(n->in[i]) && p->counted[n->in[i]->id] != k)
      b += fp16_bytes(n->in[i]);
  return b;
}

static void last_uses(Part *p) {
  Graph *g = p->g;
  for (int i = 0; i < g->nnodes; i++)
    p->last_use[i] = i, p->counted[i] = -1;
  for (int i = 0; i < g->nnodes; i++)
    for (int k = 0; k < g->nodes[i]->nin; k++)
      p->last_use[g->nodes[i]->in[k]->id] = i;
  for (int k = 0; k < g->noutputs; k++)
    p->last_use[g->outputs[k]->id] = g->nnodes;
}

static void plan_push_step(Plan *pl, Arena *a, int kernel, Node *cpu) {
  pl->steps = arena_grow(a, pl->steps, sizeof *pl->steps * (size_t)pl->nsteps,
                         sizeof *pl->steps * (size_t)(pl->nsteps + 1));
  pl->steps[pl->nsteps++] = (PlanStep){kernel, cpu, false, -1};
}

static Kernel *kernel_open(Part *p) {
  Plan *pl = p->g->plan;
  Arena *a = p->g->arena;
  pl->kernels = arena_grow(a, pl->kernels, sizeof *pl->kernels * (size_t)pl->nkernels,
                           sizeof *pl->kernels * (size_t)(pl->nkernels + 1));
  Kernel *k = &pl->kernels[pl->nkernels++];
  memset(k, 0, sizeof *k);
  k->nodes = arena_alloc(a, sizeof *k->nodes * (size_t)p->g->nnodes);
  plan_push_step(pl, a, pl->nkernels - 1, NULL);
  return k;
}

static void kernel_add(Part *p, Node *n) {
  Kernel *k = p->cur;
  int ki = (int)(k - p->g->plan->kernels);
  k->weight_bytes += new_weight_bytes(p, n, ki);
  for (int i = 0; i < n->nin; i++)
    if (is_weight(n->in[i]))
      p->counted[n->in[i]->id] = ki;
  k->nodes[k->nnodes++] = n;
  k->flops += node_flops(n);
  n->kernel = ki;
}

// p->live[i]: values computed before node i and still needed at or after it.
static void live_counts(Part *p) {
  Graph *g = p->g;
  int *ends = arena_alloc(g->arena, sizeof(int) * (size_t)(g->nnodes + 2));
  for (int i = 0; i < g->nnodes; i++)
    if (is_value(g->nodes[i]))
      ends[p->last_use[i]]++;
  int live = 0;
  for (int i = 0; i < g->nnodes; i++) {
    p->live[i] = live;
    live += is_value(g->nodes[i]) - ends[i];
  }
}

// p->segment[i] for the cut points (one live value): the weights of the ANE
// nodes from i to the next cut point.
static void segment_weights(Part *p) {
  Graph *g = p->g;
  int start = -1;
  for (int i = 0; i <= g->nnodes; i++) {
    if (i == g->nnodes || p->live[i] == 1)
      start = i;
    if (i < g->nnodes && start >= 0 && g->nodes[i]->dev == DEV_ANE)
      for (int k = 0; k < g->nodes[i]->nin; k++)
        if (is_weight(g->nodes[i]->in[k]))
          p->segment[start] += fp16_bytes(g->nodes[i]->in[k]);
  }
}

// The fp16 bytes of the one value live before cut point i (kernel I/O).
static int64_t live_value_bytes(const Part *p, int i) {
  for (int j = i - 1; j >= 0; j--)
    if (is_value(p->g->nodes[j]) && p->last_use[j] >= i)
      return fp16_bytes(p->g->nodes[j]);
  return 0;
}

// Whether the scope's first part names a repeat copy: "layers.3".
static bool is_copy(const char *scope, size_t n) {
  const char *dot = memchr(scope, '.', n);
  return dot && dot + 1 < scope + n && strspn(dot + 1, "0123456789") == (size_t)(scope + n - dot - 1);
}

// Whether a and b are in the same repeat copy (or both outside any).
static bool same_block(const Node *a, const Node *b) {
  const char *x = a->scope ? a->scope : "", *y = b->scope ? b->scope : "";
  size_t n = strcspn(x, "/"), m = strcspn(y, "/");
  if (!is_copy(x, n) && !is_copy(y, m))
    return true;
  return n == m && !strncmp(x, y, n);
}

// Cut before n: a point where one value is live, and the segment it starts
// would take the open kernel's weights and I/O past the SRAM; with dynamic
// weights also where a repeat copy (a layer) begins, so that every layer is
// the same kernel. Training: at every change of layer, whatever is live.
static bool should_cut(const Part *p, const Node *n) {
  const Kernel *k = p->cur;
  if (p->g->train) // any number of live values: they pack (ANE-B09)
    return k->nnodes && !same_block(n, k->nodes[k->nnodes - 1]);
  if (k->nnodes == 0 || p->live[n->id] != 1)
    return false;
  if (p->g->dynamic_weights && !same_block(n, k->nodes[k->nnodes - 1]))
    return true;
  return k->weight_bytes + p->segment[n->id] + 2 * live_value_bytes(p, n->id) >
         p->g->target->sram_bytes;
}

static void node_list_add(Arena *a, Node ***list, int *n, Node *v) {
  for (int i = 0; i < *n; i++)
    if ((*list)[i] == v)
      return;
  *list = arena_grow(a, *list, sizeof **list * (size_t)*n, sizeof **list * (size_t)(*n + 1));
  (*list)[(*n)++] = v;
}

static bool is_graph_output(const Graph *g, const Node *n) {
  for (int k = 0; k < g->noutputs; k++)
    if (g->outputs[k] == n)
      return true;
  return false;
}

// Inputs, outputs and sizes of kernel ki, once every node is placed in one.
static void kernel_finish(Graph *g, int ki) {
  Kernel *k = &g->plan->kernels[ki];
  int64_t largest = 0;
  for (int i = 0; i < k->nnodes; i++) {
    Node *n = k->nodes[i];
    for (int j = 0; j < n->nin; j++)
      if (is_value(n->in[j]) && n->in[j]->kernel != ki)
        node_list_add(g->arena, &k->inputs, &k->ninputs, n->in[j]);
    if (is_graph_output(g, n))
      node_list_add(g->arena, &k->outputs, &k->noutputs, n);
    largest = fp16_bytes(n) > largest ? fp16_bytes(n) : largest;
  }
  for (int i = 0; i < g->nnodes; i++) // consumers outside the kernel
    for (int j = 0; j < g->nodes[i]->nin; j++)
      if (g->nodes[i]->kernel != ki && g->nodes[i]->in[j]->kernel == ki)
        node_list_add(g->arena, &k->outputs, &k->noutputs, g->nodes[i]->in[j]);
  for (int i = 0; i < k->ninputs; i++)
    k->io_bytes += fp16_bytes(k->inputs[i]);
  for (int i = 0; i < k->noutputs; i++)
    k->io_bytes += fp16_bytes(k->outputs[i]);
  k->sram_bytes = k->weight_bytes + k->io_bytes + largest;
}

// "k03_layers_2": the index and the repeat copy of its first node.
static const char *kernel_name(Arena *a, int ki, const Node *first) {
  const char *scope = first->scope ? first->scope : "";
  size_t n = strcspn(scope, "/");
  char *name = arena_printf(a, "k%02d%s%.*s", ki, n ? "_" : "", (int)n, scope);
  for (char *c = name; *c; c++)
    if (!(*c >= 'a' && *c <= 'z') && !(*c >= 'A' && *c <= 'Z') && !(*c >= '0' && *c <= '9'))
      *c = '_';
  return name;
}

//
// Memory plan: host buffers for the values that cross steps, first fit by
// lifetime in schedule order.
//
static int step_of(const Plan *pl, const Node *n) {
  for (int s = 0; s < pl->nsteps; s++)
    if (pl->steps[s].cpu == n || (pl->steps[s].kernel >= 0 && pl->steps[s].kernel == n->kernel))
      return s;
  return -1; // a graph input
}

// n->live: ANE values that leave their kernel (the rest stay on the chip).
static void mark_crossing(Graph *g) {
  for (int i = 0; i < g->nnodes; i++)
    g->nodes[i]->live = false;
  for (int ki = 0; ki < g->plan->nkernels; ki++)
    for (int i = 0; i < g->plan->kernels[ki].noutputs; i++)
      g->plan->kernels[ki].outputs[i]->live = true;
}

// The values step s reads: its CPU op's operands, or its kernel's inputs.
static Node **step_inputs(const Plan *pl, int s, int *nin) {
  const PlanStep *st = &pl->steps[s];
  *nin = st->cpu ? st->cpu->nin : pl->kernels[st->kernel].ninputs;
  return st->cpu ? st->cpu->in : pl->kernels[st->kernel].inputs;
}

// Whether step s reads a value that a step in [from, to] writes.
static bool step_reads_from(const Plan *pl, int s, int from, int to) {
  int nin;
  Node **ins = step_inputs(pl, s, &nin);
  for (int k = 0; k < nin; k++)
    for (int t = from; t <= to; t++)
      if (pl->steps[t].cpu == ins[k])
        return true;
  return false;
}

// The --dw=cpu ops run in the background, in order, while the host goes on
// with the kernels after them: each run of them is joined before the next
// CPU op or the first kernel that reads what they write, else at the end.
static void plan_background(Plan *pl) {
  for (int s = 0; s < pl->nsteps; s++)
    pl->steps[s].background = pl->steps[s].cpu && pl->steps[s].cpu->why == WHY_DW_CPU;
  for (int s = 0; s < pl->nsteps;) {
    int e = s;
    while (e < pl->nsteps && pl->steps[e].background)
      e++;
    int join = e;
    while (join < pl->nsteps && !pl->steps[join].cpu && !step_reads_from(pl, join, s, e - 1))
      join++;
    for (int t = s; t < e; t++)
      pl->steps[t].join = join;
    s = e > s ? e : s + 1;
  }
}

static void buf_lifetimes(Graph *g) {
  Plan *pl = g->plan;
  pl->bufs = arena_alloc(g->arena, sizeof *pl->bufs * (size_t)(g->nnodes + 1));
  for (int i = 0; i < g->nnodes; i++) {
    Node *n = g->nodes[i];
    if (!is_value(n) || (n->dev == DEV_ANE && !n->live))
      continue;
    PlanBuf *b = &pl->bufs[pl->nbufs++];
    // graph inputs and outputs live through the whole run: the host sets
    // inputs once for any number of runs, and reads outputs after
    bool whole = is_graph_output(g, n) || n->op == OP_INPUT;
    *b = (PlanBuf){n, step_of(pl, n), whole ? pl->nsteps : -1, 4 * shape_numel(&n->shape), 0};
    for (int s = 0; s < pl->nsteps; s++) {
      const PlanStep *st = &pl->steps[s];
      int nin;
      Node **ins = step_inputs(pl, s, &nin);
      int until = st->background ? st->join : s; // a background op uses it until its join
      for (int k = 0; k < nin; k++)
        if (ins[k] == n && until > b->last)
          b->last = until;
    }
    if (b->first >= 0 && pl->steps[b->first].background && pl->steps[b->first].join > b->last)
      b->last = pl->steps[b->first].join; // written in the background until the join
  }
}

static bool overlaps(const PlanBuf *a, const PlanBuf *b) {
  return a->first <= b->last && b->first <= a->last;
}

static void buf_offsets(Plan *pl) {
  for (int i = 0; i < pl->nbufs; i++) {
    PlanBuf *b = &pl->bufs[i];
    int64_t off = 0;
    for (bool moved = true; moved;) { // the lowest offset clear of every live overlap
      moved = false;
      for (int j = 0; j < i; j++) {
        const PlanBuf *o = &pl->bufs[j];
        if (overlaps(b, o) && off < o->offset + o->bytes && o->offset < off + b->bytes)
          off = (o->offset + o->bytes + 63) / 64 * 64, moved = true;
      }
    }
    b->offset = off;
    pl->arena_bytes = off + b->bytes > pl->arena_bytes ? off + b->bytes : pl->arena_bytes;
  }
}

// Training: every param a kernel reads travels in its input (ANE-P01), or
// each step would need a compile.
static bool params_all_packed(Graph *g, Diag *d) {
  for (int ki = 0; ki < g->plan->nkernels; ki++) {
    const Kernel *k = &g->plan->kernels[ki];
    Packing pk;
    kernel_packing(g, ki, &pk);
    for (int i = 0; i < k->nnodes; i++)
      for (int j = 0; j < k->nodes[i]->nin; j++) {
        const Node *p = k->nodes[i]->in[j];
        bool found = p->op != OP_PARAM;
        for (int q = 0; q < pk.n && !found; q++)
          found = pk.packs[q].param == p;
        if (!found) {
          diag_error(d, p->loc, "parameter '%s' %s does not fit the input of kernel %s "
                     "(ANE-B05: %lld channels, %lld columns): it cannot be trained there",
                     p->name, shape_str(g->arena, &p->shape), k->name,
                     (long long)g->target->max_channels, (long long)g->target->max_spatial);
          return false;
        }
      }
  }
  return true;
}

// Weight gradients on the CPU (--dw=cpu) wait for the open kernel to end
// instead of cutting it: nothing in it reads them.
static bool reads_any(const Node *n, Node *const *later, int nlater) {
  for (int i = 0; i < n->nin; i++)
    for (int j = 0; j < nlater; j++)
      if (n->in[i] == later[j])
        return true;
  return false;
}

// Ends the open kernel and schedules the waiting CPU nodes after it.
static void flush_later(Part *p, Node **later, int *nlater) {
  p->cur = NULL;
  for (int i = 0; i < *nlater; i++)
    plan_push_step(p->g->plan, p->g->arena, -1, later[i]);
  *nlater = 0;
}

// requires: placed graph; provides: g->plan (kernels in schedule order with
// their I/O, the schedule of kernels and CPU ops), n->kernel of ANE nodes.
bool pass_partition(Graph *g, Diag *d) {
  size_t cap = (size_t)g->nnodes + 1;
  Part p = {g, arena_alloc(g->arena, sizeof(int) * cap), arena_alloc(g->arena, sizeof(int) * cap),
            arena_alloc(g->arena, sizeof(int) * cap), arena_alloc(g->arena, sizeof(int64_t) * cap),
            NULL};
  g->plan = arena_alloc(g->arena, sizeof *g->plan);
  last_uses(&p);
  live_counts(&p);
  segment_weights(&p);
  Node **later = arena_alloc(g->arena, sizeof *later * cap);
  int nlater = 0;
  for (int i = 0; i < g->nnodes; i++) {
    Node *n = g->nodes[i];
    if (n->dev == DEV_CPU && n->why == WHY_DW_CPU) {
      later[nlater++] = n;
    } else if (n->dev == DEV_CPU) {
      flush_later(&p, later, &nlater);
      p.cur = NULL;
      plan_push_step(g->plan, g->arena, -1, n);
    } else if (n->dev == DEV_ANE) {
      if (reads_any(n, later, nlater) || (p.cur && should_cut(&p, n)))
        flush_later(&p, later, &nlater);
      if (!p.cur)
        p.cur = kernel_open(&p);
      kernel_add(&p, n);
    }
  }
  flush_later(&p, later, &nlater);
  for (int ki = 0; ki < g->plan->nkernels; ki++) {
    kernel_finish(g, ki);
    g->plan->kernels[ki].name = kernel_name(g->arena, ki, g->plan->kernels[ki].nodes[0]);
  }
  mark_crossing(g);
  plan_background(g->plan);
  buf_lifetimes(g);
  buf_offsets(g->plan);
  return !g->train || params_all_packed(g, d);
}
