// kernel_io.c — where a kernel's inputs and outputs live in its I/O
// surfaces: one [1, C, 1, W] tensor per value, or several values' blocks
// stacked on the rows of one surface (ANE-B09 one input, B08 outputs alike
// in size), and with dynamic weights (ANE-P01) the params' blocks in the
// columns after the activations.
#include "layout.h"

#include <string.h>

void value_block(const Node *n, int64_t *rows, int64_t *cols) {
  int64_t io[4];
  node_io_shape(n, io);
  *rows = io[1], *cols = io[3];
}

// Whether kernel ki holds its inputs (outputs) in one packed surface.
static bool packs_io(const Graph *g, int ki, bool input) {
  const Kernel *k = &g->plan->kernels[ki];
  if (input)
    return k->ninputs > 1 && g->target->inputs == INPUTS_SINGLE;
  if (k->noutputs < 2 || !g->target->equal_io_sizes)
    return false;
  for (int i = 1; i < k->noutputs; i++) { // alike in size: separate surfaces do
    int64_t a[4], b[4];
    node_io_shape(k->outputs[0], a);
    node_io_shape(k->outputs[i], b);
    if (a[1] * a[3] != b[1] * b[3])
      return true;
  }
  return false;
}

int kernel_io_blocks(const Graph *g, int ki, bool input, IoBlock *blocks) {
  const Kernel *k = &g->plan->kernels[ki];
  int n = input ? k->ninputs : k->noutputs;
  bool packed = packs_io(g, ki, input);
  int64_t row = 0;
  for (int i = 0; i < n; i++) {
    IoBlock *b = &blocks[i];
    value_block(input ? k->inputs[i] : k->outputs[i], &b->rows, &b->cols);
    b->surface = packed ? 0 : i;
    b->row = packed ? row : 0;
    row += b->rows;
  }
  return packed && n ? 1 : n;
}

// Rows and columns of surface s's values (before params and padding).
static void surface_extent(const Graph *g, int ki, bool input, int s, int64_t *rows,
                           int64_t *cols) {
  const Kernel *k = &g->plan->kernels[ki];
  int n = input ? k->ninputs : k->noutputs;
  IoBlock blocks[n + 1];
  kernel_io_blocks(g, ki, input, blocks);
  *rows = 0, *cols = 0;
  for (int i = 0; i < n; i++)
    if (blocks[i].surface == s) {
      *rows = blocks[i].row + blocks[i].rows > *rows ? blocks[i].row + blocks[i].rows : *rows;
      *cols = blocks[i].cols > *cols ? blocks[i].cols : *cols;
    }
}

//
// Dynamic weights
//
// The candidate modes of param p: rows and columns of its block.
static int pack_modes(const Node *p, Pack *m) {
  const Shape *s = &p->shape;
  if (s->rank == 1) {
    m[0] = (Pack){p, PACK_VECTOR, 0, 0, s->dims[0], 1};
    return 1;
  }
  if (s->rank != 2)
    return 0;
  m[0] = (Pack){p, PACK_TRANSPOSED, 0, 0, s->dims[1], s->dims[0]};
  m[1] = (Pack){p, PACK_AS_IS, 0, 0, s->dims[0], s->dims[1]};
  return 2;
}

// p's mode in a surface of `rows` rows (grown in training when that is the
// only way) with `room` columns left; false if none fits.
static bool pack_choose(const Graph *g, const Node *p, int64_t *rows, int64_t room, Pack *out) {
  Pack m[2];
  int n = pack_modes(p, m), best = -1;
  for (int i = 0; i < n; i++) // fewest columns among those that fit the rows
    if (m[i].rows <= *rows && m[i].cols <= room && (best < 0 || m[i].cols < m[best].cols))
      best = i;
  for (int i = 0; g->train && best < 0 && i < n; i++) // else fewest rows
    if (m[i].rows <= g->target->max_channels && m[i].cols <= room &&
        (best < 0 || m[i].rows < m[best].rows))
      best = i;
  if (best < 0)
    return false;
  *out = m[best];
  *rows = out->rows > *rows ? out->rows : *rows;
  return true;
}

static bool packed_already(const Packing *pk, const Node *p) {
  for (int q = 0; q < pk->n; q++)
    if (pk->packs[q].param == p)
      return true;
  return false;
}

// Places a block of rows x cols: in the first strip of columns at least
// as wide with the rows left, else in a new strip after the others.
static void pack_place(Packing *pk, Pack *p, int64_t (*strips)[3], int *nstrips) {
  for (int i = 0; i < *nstrips; i++) { // strips[i]: column, width, rows used
    if (strips[i][1] >= p->cols && strips[i][2] + p->rows <= pk->rows) {
      p->col = strips[i][0], p->row = strips[i][2];
      strips[i][2] += p->rows;
      return;
    }
  }
  p->col = pk->col0 + pk->cols, p->row = 0;
  strips[*nstrips][0] = p->col, strips[*nstrips][1] = p->cols, strips[*nstrips][2] = p->rows;
  (*nstrips)++;
  pk->cols += p->cols;
}

void kernel_packing(const Graph *g, int ki, Packing *pk) {
  const Kernel *k = &g->plan->kernels[ki];
  memset(pk, 0, sizeof *pk);
  IoBlock blocks[k->ninputs + 1];
  if (!g->dynamic_weights || k->ninputs == 0 || kernel_io_blocks(g, ki, true, blocks) != 1 ||
      (!g->train && k->inputs[0]->layout != LAYOUT_TL))
    return;
  surface_extent(g, ki, true, 0, &pk->rows, &pk->col0);
  int64_t strips[MAX_PACKS][3];
  int nstrips = 0;
  for (int i = 0; i < k->nnodes; i++)
    for (int j = 0; j < k->nodes[i]->nin && pk->n < MAX_PACKS; j++) {
      const Node *p = k->nodes[i]->in[j];
      Pack *slot = &pk->packs[pk->n];
      int64_t room = g->target->max_spatial - pk->col0 - pk->cols;
      if (p->op != OP_PARAM || packed_already(pk, p) || !pack_choose(g, p, &pk->rows, room, slot))
        continue;
      pack_place(pk, slot, strips, &nstrips);
      pk->n++;
    }
}

void kernel_surface_shape(const Graph *g, int ki, bool input, int s, int64_t d[4]) {
  d[0] = 1, d[2] = 1;
  surface_extent(g, ki, input, s, &d[1], &d[3]);
  if (input && s == 0) {
    Packing pk;
    kernel_packing(g, ki, &pk);
    if (pk.n)
      d[1] = pk.rows, d[3] = pk.col0 + pk.cols;
  }
  int64_t align = g->target->surface_align / 2; // fp16 elements per aligned row
  int64_t least = d[1] ? (g->target->min_surface_bytes / 2 + d[1] - 1) / d[1] : 0;
  int64_t w = d[3] > least ? d[3] : least;
  d[3] = (w + align - 1) / align * align;
}

void kernel_io_shape(const Graph *g, int ki, const Node *n, bool input, int64_t d[4]) {
  const Kernel *k = &g->plan->kernels[ki];
  Node **vals = input ? k->inputs : k->outputs;
  int nv = input ? k->ninputs : k->noutputs, s = 0;
  IoBlock blocks[nv + 1];
  kernel_io_blocks(g, ki, input, blocks);
  for (int i = 0; i < nv; i++)
    if (vals[i] == n)
      s = blocks[i].surface;
  kernel_surface_shape(g, ki, input, s, d);
}
