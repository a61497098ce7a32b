// legalize.c — the forward graph in the ANE's terms: the loss is dropped
// (training adds it back), linears with a param weight become 1x1 convs
// (ANE-P05), and every computed value gets the layout a kernel holds it in:
// token-last ([1, C, 1, S], ANE-B02) wherever the token axis survives, plain
// elsewhere (attention's per-head matrices).
#include "passes.h"

static bool is_source(const Node *n) {
  return node_is_const(n) || n->op == OP_INPUT;
}

static bool is_tl(const Node *n) {
  return !node_is_const(n) && n->layout == LAYOUT_TL;
}

// A token-last value keeps its token axis first and at most 3 more (rank 5).
static bool tl_fits(const Node *n) {
  return n->shape.rank >= 1 && n->shape.rank <= 4 && n->dtype != DT_I32;
}

// Elementwise: token-last when an operand of the result's rank is.
static Layout layout_elementwise(const Node *n) {
  for (int k = 0; k < n->nin; k++)
    if (is_tl(n->in[k]) && n->in[k]->shape.rank == n->shape.rank &&
        n->in[k]->shape.dims[0] == n->shape.dims[0])
      return LAYOUT_TL;
  return LAYOUT_PLAIN;
}

static bool is_linear(const Node *n) {
  const Node *x = n->in[0], *w = n->in[1];
  return n->transpose_b && !n->transpose_a && w->op == OP_PARAM && w->shape.rank == 2 &&
         is_tl(x) && x->shape.rank == 2;
}

// Attention's output [S, heads, hd] comes from a transpose of per-head
// matrices; token-last when its first axis has the model's token count.
static Layout layout_transpose(const Node *n, int64_t tokens) {
  if (is_tl(n->in[0]))
    return n->perm[0] == 0 ? LAYOUT_TL : LAYOUT_PLAIN;
  return n->shape.rank >= 3 && n->shape.dims[0] == tokens ? LAYOUT_TL : LAYOUT_PLAIN;
}

static Layout layout_of(Node *n, int64_t tokens) {
  const Node *x = n->nin ? n->in[0] : NULL;
  switch (n->op) {
  case OP_EMBED:
    return LAYOUT_TL;
  case OP_INPUT:
    return n->dtype != DT_I32 && n->shape.rank >= 2 ? LAYOUT_TL : LAYOUT_PLAIN;
  case OP_SUM: case OP_MEAN: case OP_MAX: case OP_SOFTMAX: case OP_SLICE:
    return is_tl(x) && n->axis != 0 && n->axis != AXIS_ALL ? LAYOUT_TL : LAYOUT_PLAIN;
  case OP_MATMUL:
    n->as_conv = is_linear(n);
    return n->as_conv ? LAYOUT_TL : LAYOUT_PLAIN;
  case OP_RESHAPE:
    return is_tl(x) && n->shape.rank >= 1 && n->shape.dims[0] == x->shape.dims[0]
               ? LAYOUT_TL : LAYOUT_PLAIN;
  case OP_TRANSPOSE:
    return layout_transpose(n, tokens);
  case OP_CONCAT:
    for (int k = 0; k < n->nin; k++)
      if (!is_source(n->in[k]) && !is_tl(n->in[k]))
        return LAYOUT_PLAIN;
    return n->axis != 0 ? LAYOUT_TL : LAYOUT_PLAIN;
  default:
    return is_source(n) ? LAYOUT_PLAIN : layout_elementwise(n);
  }
}

// ANE-B05 (split): a linear with more output channels than the target takes
// becomes k equal slices of its weight, k convs and a concat of their
// outputs (which place then puts on the CPU). k: the fewest equal pieces
// under the limit (equal: ANE-B08 wants a kernel's outputs alike in size).
static int split_count(int64_t channels, int64_t limit) {
  for (int64_t k = (channels + limit - 1) / limit; k <= 256; k++)
    if (channels % k == 0)
      return (int)k;
  return 0;
}

static Node *derived(Graph *g, OpKind op, Node **in, int nin, const Node *like) {
  Node *n = graph_add(g, op, in, nin, like->loc);
  n->site = like->site, n->scope = like->scope;
  return n;
}

static bool split_linear(Graph *g, Node *n, int k, Diag *d) {
  Node *x = n->in[0], *w = n->in[1], **pieces = arena_alloc(g->arena, sizeof(Node *) * (size_t)k);
  int64_t c = w->shape.dims[0];
  for (int j = 0; j < k; j++) {
    Node *ws = derived(g, OP_SLICE, &w, 1, n);
    ws->axis = 0, ws->begin = c / k * j, ws->end = c / k * (j + 1);
    Node *in[2] = {x, ws};
    Node *mm = derived(g, OP_MATMUL, in, 2, n);
    mm->transpose_b = true;
    if (!node_infer(ws, d) || !node_infer(mm, d))
      return false;
    ws->layout = LAYOUT_PLAIN, mm->layout = LAYOUT_TL, mm->as_conv = true;
    pieces[j] = mm;
  }
  n->op = OP_CONCAT, n->in = pieces, n->nin = k, n->axis = 1, n->as_conv = false;
  return true;
}

// Moves the nodes appended after `old_count` to just before the node each
// replaced (the first node of the original list that reads it), keeping
// the order topological; ids renumbered.
static void place_new_nodes(Graph *g, int old_count) {
  Node **order = arena_alloc(g->arena, sizeof(Node *) * (size_t)g->nnodes);
  int n = 0, next_new = old_count;
  for (int i = 0; i < old_count; i++) {
    Node *v = g->nodes[i];
    for (int k = 0; k < v->nin; k++) // pull in the new nodes v reads (they precede it)
      while (next_new < g->nnodes && v->in[k]->id >= old_count && next_new <= v->in[k]->id)
        order[n++] = g->nodes[next_new++];
    order[n++] = v;
  }
  while (next_new < g->nnodes)
    order[n++] = g->nodes[next_new++];
  for (int i = 0; i < n; i++)
    (g->nodes[i] = order[i])->id = i;
}

static bool split_wide_linears(Graph *g, Diag *d) {
  int old = g->nnodes;
  for (int i = 0; i < old; i++) {
    Node *n = g->nodes[i];
    int k = n->as_conv ? split_count(n->shape.dims[1], g->target->max_channels) : 0;
    if (n->as_conv && n->shape.dims[1] > g->target->max_channels && k > 1 &&
        !split_linear(g, n, k, d))
      return false;
  }
  place_new_nodes(g, old);
  return true;
}

// requires: inferred graph; provides: the forward graph only (no loss)
// unless g->train, n->layout of every node and n->as_conv of linears.
bool pass_legalize(Graph *g, Diag *d) {
  if (!g->train)
    g->loss = NULL;
  if (!pass_dce(g, d))
    return false;
  int64_t tokens = -1; // the first token-last value's token count
  for (int i = 0; i < g->nnodes; i++) {
    Node *n = g->nodes[i];
    n->layout = node_is_const(n) ? LAYOUT_PLAIN : layout_of(n, tokens);
    if (n->layout == LAYOUT_TL && !tl_fits(n))
      n->layout = LAYOUT_PLAIN, n->as_conv = false;
    if (n->layout == LAYOUT_TL && tokens < 0)
      tokens = n->shape.dims[0];
  }
  return split_wide_linears(g, d);
}
