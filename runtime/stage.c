// stage.c — copies values between host buffers (fp32, logical layout) and
// their blocks in kernel surfaces ([1, R, 1, W], fp16 or fp32): token-last
// values transposed into [C, S] blocks, plain ones as they are, parameters
// into the columns after the activations (dynamic weights).
#include "anert.h"

static int64_t surface_width(const RtTensor *t) {
  return t->dims[t->rank - 1];
}

static void put_at(RtTensor *t, int64_t i, float v) {
  if (t->dtype == MIL_FP16)
    ((uint16_t *)t->data)[i] = f32_to_fp16(v);
  else
    ((float *)t->data)[i] = v;
}

static float get_at(const RtTensor *t, int64_t i) {
  return t->dtype == MIL_FP16 ? fp16_to_f32(((const uint16_t *)t->data)[i])
                              : ((const float *)t->data)[i];
}

void stage_put(RtTensor *surface, const StageBlock *b, const float *host) {
  int64_t w = surface_width(surface);
  for (int64_t r = 0; r < b->rows; r++)
    for (int64_t c = 0; c < b->cols; c++)
      put_at(surface, (b->row + r) * w + c,
             b->token_last ? host[c * b->rows + r] : host[r * b->cols + c]);
}

void stage_get(const RtTensor *surface, const StageBlock *b, float *host) {
  int64_t w = surface_width(surface);
  for (int64_t r = 0; r < b->rows; r++)
    for (int64_t c = 0; c < b->cols; c++) {
      float v = get_at(surface, (b->row + r) * w + c);
      if (b->token_last)
        host[c * b->rows + r] = v;
      else
        host[r * b->cols + c] = v;
    }
}

void stage_param(RtTensor *surface, StageMode mode, int64_t row, int64_t col, int64_t rows,
                 int64_t cols, const float *w) {
  int64_t width = surface_width(surface);
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c = 0; c < cols; c++) {
      float v = mode == STAGE_TRANSPOSED ? w[c * rows + r] : mode == STAGE_AS_IS ? w[r * cols + c]
                                                                                : w[r];
      put_at(surface, (row + r) * width + col + c, v);
    }
}
