// adamw.c — the optimizer of training: AdamW on fp32 master weights with
// bias-corrected moments and decoupled weight decay (as PyTorch's AdamW),
// global-norm gradient clipping, and the learning-rate schedule (linear
// warmup, then cosine decay to a floor).
#include "train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { OPT_BLOCK = 1 << 15 }; // elements per block of work (128 KiB per array)

static int64_t opt_blocks(int64_t n) {
  return (n + OPT_BLOCK - 1) / OPT_BLOCK;
}

typedef struct AdamWJob {
  float beta1, beta2, eps, shrink, step, bc2_sqrt, gscale;
  float *w, *m, *v;
  const float *g;
  int64_t n;
} AdamWJob;

// torch's fp32 AdamW: m lerps to g, v to g², w -= step m / (sqrt(v) / bc2_sqrt + eps).
static void adamw_block(void *ctx, int64_t b) {
  const AdamWJob *j = ctx;
  int64_t lo = b * OPT_BLOCK, hi = lo + OPT_BLOCK < j->n ? lo + OPT_BLOCK : j->n;
  float *restrict w = j->w, *restrict m = j->m, *restrict v = j->v;
  const float *restrict g = j->g;
  for (int64_t i = lo; i < hi; i++) {
    float gi = j->gscale * g[i];
    m[i] = j->beta1 * m[i] + (1.0f - j->beta1) * gi;
    v[i] = j->beta2 * v[i] + (1.0f - j->beta2) * gi * gi;
    w[i] = w[i] * j->shrink - j->step * m[i] / (sqrtf(v[i]) / j->bc2_sqrt + j->eps);
  }
}

void adamw_update(const AdamW *o, int64_t t, float lr, float gscale, float *w, const float *g,
                  float *m, float *v, int64_t n, bool decay) {
  double c1 = 1.0 - pow(o->beta1, (double)t), c2 = 1.0 - pow(o->beta2, (double)t);
  AdamWJob j = {o->beta1, o->beta2, o->eps, decay ? 1.0f - lr * o->weight_decay : 1.0f,
                (float)(lr / c1), (float)sqrt(c2), gscale, w, m, v, g, n};
  rt_parallel(opt_blocks(n), adamw_block, &j);
}

typedef struct SumsqJob {
  const float *g;
  int64_t n;
  double *sums; // one per block
} SumsqJob;

// Eight partial sums, so that the loop vectorizes without reassociation.
static void sumsq_block(void *ctx, int64_t b) {
  const SumsqJob *j = ctx;
  int64_t lo = b * OPT_BLOCK, hi = lo + OPT_BLOCK < j->n ? lo + OPT_BLOCK : j->n, i = lo;
  double acc[8] = {0};
  for (; i + 8 <= hi; i += 8)
    for (int k = 0; k < 8; k++)
      acc[k] += (double)j->g[i + k] * j->g[i + k];
  for (; i < hi; i++)
    acc[0] += (double)j->g[i] * j->g[i];
  j->sums[b] = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

double grad_sumsq(const float *g, int64_t n) {
  int64_t blocks = opt_blocks(n);
  double sum = 0, small[64], *sums = blocks <= 64 ? small : malloc((size_t)blocks * sizeof(double));
  if (!sums) { // no memory for the partial sums: the same blocks, in this thread
    for (int64_t b = 0; b < blocks; b++) {
      SumsqJob one = {g + b * OPT_BLOCK, b + 1 < blocks ? OPT_BLOCK : n - b * OPT_BLOCK, small};
      sumsq_block(&one, 0);
      sum += small[0];
    }
    return sum;
  }
  SumsqJob j = {g, n, sums};
  rt_parallel(blocks, sumsq_block, &j);
  for (int64_t b = 0; b < blocks; b++)
    sum += sums[b];
  if (sums != small)
    free(sums);
  return sum;
}

double grad_global_norm(const float *const *grads, const int64_t *counts, int n) {
  double sum = 0;
  for (int k = 0; k < n; k++)
    sum += grad_sumsq(grads[k], counts[k]);
  return sqrt(sum);
}

float grad_clip_scale(double norm, float max_norm) {
  return max_norm > 0 && norm > max_norm ? (float)(max_norm / norm) : 1.0f;
}

float lr_schedule(int64_t step, int64_t warmup, int64_t total, float lr, float min_lr) {
  if (step < warmup)
    return lr * (float)(step + 1) / (float)warmup;
  if (step >= total || total <= warmup)
    return min_lr;
  double progress = (double)(step - warmup) / (double)(total - warmup);
  return (float)(min_lr + 0.5 * (1.0 + cos(3.14159265358979323846 * progress)) * (lr - min_lr));
}

//
// Loss scaling
//
void loss_scale_init(LossScale *ls, float scale, bool dynamic) {
  *ls = (LossScale){scale, dynamic, LOSS_SCALE_INTERVAL, 0, 0};
}

bool loss_scale_parse(const char *text, LossScale *ls) {
  if (!strcmp(text, "dynamic")) {
    loss_scale_init(ls, LOSS_SCALE_DYNAMIC_INIT, true);
    return true;
  }
  char *end;
  double v = strtod(text, &end);
  if (end == text || *end || !(v > 0) || !isfinite((float)v))
    return false;
  loss_scale_init(ls, (float)v, false);
  return true;
}

bool loss_scale_update(LossScale *ls, bool finite) {
  if (!finite) {
    ls->skipped++;
    ls->good = 0;
    if (ls->dynamic && ls->scale * 0.5f >= LOSS_SCALE_MIN)
      ls->scale *= 0.5f;
    return false;
  }
  if (ls->dynamic && ++ls->good >= ls->interval) {
    ls->good = 0;
    if (isfinite(ls->scale * 2.0f))
      ls->scale *= 2.0f;
  }
  return true;
}
