// stage.c — copies values between host buffers (fp32, logical layout) and
// their blocks in kernel surfaces ([1, R, 1, W], fp16 or fp32): token-last
// values transposed into [C, S] blocks, plain ones as they are, parameters
// into the columns after the activations (dynamic weights). Rows convert in
// bulk (F16C where the CPU has it); transposes go through cache-sized tiles.
#include "train.h"

#include <string.h>

enum { TILE = 64 }; // a transposed tile: TILE x TILE floats, 16 KB

static int64_t surface_width(const RtTensor *t) {
  return t->dims[t->rank - 1];
}

static void store_row(RtTensor *s, int64_t at, const float *src, int64_t n) {
  if (s->dtype == MIL_FP16)
    f32_to_fp16_n(src, (uint16_t *)s->data + at, (size_t)n);
  else
    memcpy((float *)s->data + at, src, (size_t)n * sizeof(float));
}

static void load_row(const RtTensor *s, int64_t at, float *dst, int64_t n) {
  if (s->dtype == MIL_FP16)
    fp16_to_f32_n((const uint16_t *)s->data + at, dst, (size_t)n);
  else
    memcpy(dst, (const float *)s->data + at, (size_t)n * sizeof(float));
}

static int64_t min64(int64_t a, int64_t b) {
  return a < b ? a : b;
}

// Surface rows [row, row + rows), columns [col, col + cols) from host: its
// row-major [rows, cols], or (transposed) the transpose of its [cols, rows].
static void put_block(RtTensor *s, int64_t row, int64_t col, int64_t rows, int64_t cols,
                      const float *host, bool transposed) {
  int64_t w = surface_width(s);
  if (!transposed) {
    for (int64_t r = 0; r < rows; r++)
      store_row(s, (row + r) * w + col, host + r * cols, cols);
    return;
  }
  float tile[TILE * TILE];
  for (int64_t r0 = 0; r0 < rows; r0 += TILE)
    for (int64_t c0 = 0; c0 < cols; c0 += TILE) {
      int64_t nr = min64(TILE, rows - r0), nc = min64(TILE, cols - c0);
      for (int64_t c = 0; c < nc; c++)
        for (int64_t r = 0; r < nr; r++)
          tile[r * TILE + c] = host[(c0 + c) * rows + r0 + r];
      for (int64_t r = 0; r < nr; r++)
        store_row(s, (row + r0 + r) * w + col + c0, tile + r * TILE, nc);
    }
}

// The inverse of put_block at column 0.
static void get_block(const RtTensor *s, int64_t row, int64_t rows, int64_t cols, float *host,
                      bool transposed) {
  int64_t w = surface_width(s);
  if (!transposed) {
    for (int64_t r = 0; r < rows; r++)
      load_row(s, (row + r) * w, host + r * cols, cols);
    return;
  }
  float tile[TILE * TILE];
  for (int64_t r0 = 0; r0 < rows; r0 += TILE)
    for (int64_t c0 = 0; c0 < cols; c0 += TILE) {
      int64_t nr = min64(TILE, rows - r0), nc = min64(TILE, cols - c0);
      for (int64_t r = 0; r < nr; r++)
        load_row(s, (row + r0 + r) * w + c0, tile + r * TILE, nc);
      for (int64_t c = 0; c < nc; c++)
        for (int64_t r = 0; r < nr; r++)
          host[(c0 + c) * rows + r0 + r] = tile[r * TILE + c];
    }
}

void stage_put(RtTensor *surface, const StageBlock *b, const float *host) {
  put_block(surface, b->row, 0, b->rows, b->cols, host, b->token_last);
}

void stage_get(const RtTensor *surface, const StageBlock *b, float *host) {
  get_block(surface, b->row, b->rows, b->cols, host, b->token_last);
}

// A vector [rows] is the transpose of a [1, rows] matrix: one column.
void stage_param(RtTensor *surface, StageMode mode, int64_t row, int64_t col, int64_t rows,
                 int64_t cols, const float *w) {
  put_block(surface, row, col, rows, mode == STAGE_VECTOR ? 1 : cols, w, mode != STAGE_AS_IS);
}
