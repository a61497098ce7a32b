// layout.h — where values live in kernels: physical shapes (token-last or
// plain), kernel I/O surfaces with several values' blocks on their rows, and
// the dynamic weights' strips of columns. Shared by partitioning (sizes) and
// code generation (slices, staging).
#ifndef ANEC_LAYOUT_H
#define ANEC_LAYOUT_H

#include "ir.h"

// The token-last shape of logical [S, d1..dk] (see Layout). Returns the rank.
int tl_phys_shape(int rank, const int64_t *logical, int64_t *phys);
// Row-major [tokens, inner] values as [inner, tokens]: the token-last order.
void values_token_last(const float *v, int64_t tokens, int64_t inner, float *out);
// The physical shape a kernel gives n (its Layout). Returns the rank.
int node_phys_shape(const Node *n, int64_t *dims);
// Its [1, C, 1, S] shape at a kernel boundary (ANE-B02): token-last [S, C]
// as [1, C, 1, S], a plain value as [1, numel / last, 1, last].
void node_io_shape(const Node *n, int64_t dims[4]);

// --weights=inputs (dynamic weights, ANE-P01): a kernel's params travel in
// its one input surface (ANE-B09) after the activations' columns, so one
// compiled kernel serves every layer of the same shape. Per param, a block
// at rows [row, row + rows) of columns [col, col + cols): Wᵀ of a [a, b]
// matrix (b rows, a columns), the matrix as it is (a rows, b columns), or a
// vector (one column); the mode with fewer columns among those whose rows
// fit the surface's. Blocks stack in strips of columns while rows are left,
// and every strip starts at a multiple of STRIP_ALIGN columns: the
// matrices' strips in node order, then one shared strip of one-column
// lanes for the vectors that fit no rows left. Inference: params that fit
// none (or would pass the spatial limit) stay constants. Training
// (g->train): the surface grows rows for them, and a param that still does
// not fit is an error (partition reports it).
//
// 64 fp16 columns are 128 bytes, M5's row alignment (ANE-B11). The blocks
// are width-offset slices of the input, and every dynamic block of the
// working anchors starts at an aligned column (maderix: multiples of SEQ =
// 256); odd offsets (257, 1025, ...) were never shown to run.
enum { STRIP_ALIGN = 64 };
typedef enum { PACK_TRANSPOSED, PACK_AS_IS, PACK_VECTOR } PackMode; // = StageMode
typedef struct Pack {
  const Node *param;
  PackMode mode;
  int64_t row, col;       // where its block starts in the surface
  int64_t rows, cols;
} Pack;
enum { MAX_PACKS = 64 };
typedef struct Packing {
  int n;
  Pack packs[MAX_PACKS];
  int64_t col0;    // the first column after the activations
  int64_t cols;    // columns the params take from col0 (alignment included)
  int64_t rows;    // the surface's rows (at least the activations')
} Packing;
// The packing of kernel ki (n = 0 without g->dynamic_weights or when its
// inputs are not in one surface).
void kernel_packing(const Graph *g, int ki, Packing *pk);

// Kernel I/O surfaces. One surface per value, or, where the target wants
// one input (ANE-B09) or outputs alike in size (B08) and the kernel has
// several, one surface holding each value's block on its own rows: rows
// [row, row + rows) and columns [0, cols) of surface `surface` (in00 or
// out00). A block is the value's [C, S] (token-last) or [numel / last, last]
// (plain: its last axis).
typedef struct IoBlock {
  int surface;
  int64_t row, rows, cols;
} IoBlock;
// The blocks of kernel ki's inputs (or outputs), blocks[i] for
// Kernel.inputs[i]; returns the number of surfaces.
int kernel_io_blocks(const Graph *g, int ki, bool input, IoBlock *blocks);
// The [1, C, 1, W] dims of input (or output) surface s of kernel ki: its
// blocks, the packed params' columns for input 0, then unused columns up to
// the target's row alignment (ANE-B04, B11) and minimum surface size (B07).
void kernel_surface_shape(const Graph *g, int ki, bool input, int s, int64_t dims[4]);
// The surface holding kernel ki's input or output n.
void kernel_io_shape(const Graph *g, int ki, const Node *n, bool input, int64_t dims[4]);
// A value's block shape: rows and cols as above.
void value_block(const Node *n, int64_t *rows, int64_t *cols);


#endif
