// kernel_io.c — where a kernel's inputs and outputs live in its I/O
// surfaces: one [1, C, 1, W] tensor per value, or several values' blocks
// stacked on the rows of one surface (ANE-B09 one input, B08 outputs alike
// in size), and with dynamic weights (ANE-P01) the params' blocks in the
// columns after the activations, in strips that start at aligned columns.
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

static int64_t strip_aligned(int64_t col) {
  return (col + STRIP_ALIGN - 1) / STRIP_ALIGN * STRIP_ALIGN;
}

// Strips of columns: each starts at a multiple of STRIP_ALIGN; a block goes
// on the rows left in the first strip at least as wide, else starts a new
// one at `next`. A matrix's strip is its width rounded up to STRIP_ALIGN;
// vectors share strips of STRIP_ALIGN one-column lanes.
typedef struct Strips {
  int n;
  struct { int64_t col, width, rows; } s[2 * MAX_PACKS]; // rows: rows used
  int64_t next;        // the column of the next strip
  int64_t lanes_col;   // the open vector strip's column (-1: none)
  int lanes;           // its lanes in use
} Strips;

static void strip_add(Strips *st, Pack *p, int64_t col, int64_t width) {
  st->s[st->n].col = col, st->s[st->n].width = width, st->s[st->n].rows = p->rows;
  st->n++;
  p->col = col, p->row = 0;
}

// Places a block in a strip's rows left; false (not placed) when it would
// pass the spatial limit.
static bool pack_place(const Graph *g, Packing *pk, Strips *st, Pack *p) {
  for (int i = 0; i < st->n; i++)
    if (st->s[i].width >= p->cols && st->s[i].rows + p->rows <= pk->rows) {
      p->col = st->s[i].col, p->row = st->s[i].rows;
      st->s[i].rows += p->rows;
      return true;
    }
  int64_t max = g->target->max_spatial;
  if (p->mode != PACK_VECTOR) {
    if (st->next + p->cols > max)
      return false;
    strip_add(st, p, st->next, strip_aligned(p->cols));
    st->next += strip_aligned(p->cols);
  } else {
    if (st->lanes_col < 0 || st->lanes == STRIP_ALIGN) // a new vector strip
      st->lanes_col = st->next, st->lanes = 0, st->next += STRIP_ALIGN;
    if (st->lanes_col + st->lanes >= max)
      return false;
    strip_add(st, p, st->lanes_col + st->lanes++, 1);
  }
  int64_t end = p->col + p->cols - pk->col0;
  pk->cols = end > pk->cols ? end : pk->cols;
  return true;
}

// The params in node order, each in its mode; their blocks are placed as
// they come, the vectors' after all the matrices'.
void kernel_packing(const Graph *g, int ki, Packing *pk) {
  const Kernel *k = &g->plan->kernels[ki];
  memset(pk, 0, sizeof *pk);
  IoBlock blocks[k->ninputs + 1];
  if (!g->dynamic_weights || k->ninputs == 0 || kernel_io_blocks(g, ki, true, blocks) != 1 ||
      (!g->train && k->inputs[0]->layout != LAYOUT_TL))
    return;
  surface_extent(g, ki, true, 0, &pk->rows, &pk->col0);
  Strips st = {.next = strip_aligned(pk->col0), .lanes_col = -1};
  for (int i = 0; i < k->nnodes; i++)
    for (int j = 0; j < k->nodes[i]->nin && pk->n < MAX_PACKS; j++) {
      const Node *p = k->nodes[i]->in[j];
      Pack *slot = &pk->packs[pk->n];
      int64_t room = g->target->max_spatial - st.next;
      if (p->op != OP_PARAM || packed_already(pk, p) || !pack_choose(g, p, &pk->rows, room, slot))
        continue;
      if (slot->mode == PACK_VECTOR || pack_place(g, pk, &st, slot))
        pk->n++;
    }
  int n = 0; // the vectors, into the rows left or lanes after the matrices
  for (int i = 0; i < pk->n; i++)
    if (pk->packs[i].mode != PACK_VECTOR || pack_place(g, pk, &st, &pk->packs[i]))
      pk->packs[n++] = pk->packs[i];
  pk->n = n;
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
