// adamw.c — the optimizer of training: AdamW on fp32 master weights with
// bias-corrected moments and decoupled weight decay (as PyTorch's AdamW),
// global-norm gradient clipping, and the learning-rate schedule (linear
// warmup, then cosine decay to a floor).
#include "anert.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void adamw_update(const AdamW *o, int64_t t, float lr, float *w, const float *g, float *m,
                  float *v, int64_t n, bool decay) {
  double c1 = 1.0 - pow(o->beta1, (double)t), c2 = 1.0 - pow(o->beta2, (double)t);
  float shrink = decay ? 1.0f - lr * o->weight_decay : 1.0f;
  for (int64_t i = 0; i < n; i++) {
    m[i] = o->beta1 * m[i] + (1.0f - o->beta1) * g[i];
    v[i] = o->beta2 * v[i] + (1.0f - o->beta2) * g[i] * g[i];
    double step = lr * ((double)m[i] / c1) / (sqrt((double)v[i] / c2) + o->eps);
    w[i] = (float)((double)(w[i] * shrink) - step);
  }
}

double grad_global_norm(const float *const *grads, const int64_t *counts, int n) {
  double sum = 0;
  for (int k = 0; k < n; k++)
    for (int64_t i = 0; i < counts[k]; i++)
      sum += (double)grads[k][i] * grads[k][i];
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

bool grads_finite(const float *const *grads, const int64_t *counts, int n) {
  for (int k = 0; k < n; k++) {
    uint32_t bad = 0; // an all-ones exponent: inf or NaN (an OR the compiler vectorizes)
    for (int64_t i = 0; i < counts[k]; i++) {
      uint32_t u;
      memcpy(&u, &grads[k][i], 4);
      bad |= (u & 0x7F800000u) == 0x7F800000u;
    }
    if (bad)
      return false;
  }
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
