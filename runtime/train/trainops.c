// trainops.c — the CPU ops of a training step that have no ANE path
// (ANE-T08): the embedding gather and its gradient, cross-entropy (mean
// over tokens) and its gradient; and the weight gradients --dw=cpu puts on
// the CPU (BLAS). fp32 in and out, sums in double; token ids arrive as the
// exact floats the host buffers hold.
#include "train.h"

#include <math.h>
#include <string.h>

static bool id_ok(float id, int64_t limit) {
  return id >= 0 && id < (float)limit && (float)(int64_t)id == id;
}

bool rt_embed(float *out, const float *table, int64_t rows, int64_t dim, const float *ids,
              int64_t n, RtDiag *d) {
  for (int64_t t = 0; t < n; t++) {
    if (!id_ok(ids[t], rows)) {
      rt_error_file(d, NULL, "embed: id %g at position %lld is out of range [0, %lld)",
                    (double)ids[t], (long long)t, (long long)rows);
      return false;
    }
    memcpy(out + t * dim, table + (int64_t)ids[t] * dim, sizeof(float) * (size_t)dim);
  }
  return true;
}

void rt_embed_grad(float *out, int64_t rows, int64_t dim, const float *ids, const float *g,
                   int64_t n) {
  memset(out, 0, sizeof(float) * (size_t)(rows * dim));
  for (int64_t t = 0; t < n; t++) // ids were checked by the forward's rt_embed
    for (int64_t c = 0; c < dim; c++)
      out[(int64_t)ids[t] * dim + c] += g[t * dim + c];
}

// log(sum(exp(row))) with the row's maximum taken out first.
static double log_sum_exp(const float *row, int64_t v) {
  double mx = -INFINITY, s = 0;
  for (int64_t j = 0; j < v; j++)
    mx = row[j] > mx ? row[j] : mx;
  for (int64_t j = 0; j < v; j++)
    s += exp(row[j] - mx);
  return mx + log(s);
}

bool rt_cross_entropy(const float *logits, const float *targets, int64_t n, int64_t vocab,
                      double *loss, RtDiag *d) {
  double total = 0;
  for (int64_t t = 0; t < n; t++) {
    if (!id_ok(targets[t], vocab)) {
      rt_error_file(d, NULL, "cross_entropy: target %g at position %lld is out of range [0, %lld)",
               (double)targets[t], (long long)t, (long long)vocab);
      return false;
    }
    const float *row = logits + t * vocab;
    total += log_sum_exp(row, vocab) - row[(int64_t)targets[t]];
  }
  *loss = n ? total / (double)n : 0;
  return true;
}

void rt_cross_entropy_grad(float *out, const float *logits, const float *targets, int64_t n,
                           int64_t vocab, float scale) {
  for (int64_t t = 0; t < n; t++) {
    const float *row = logits + t * vocab;
    double lse = log_sum_exp(row, vocab), k = (double)scale / (double)n;
    for (int64_t j = 0; j < vocab; j++)
      out[t * vocab + j] = (float)((exp(row[j] - lse) - (j == (int64_t)targets[t])) * k);
  }
}

void rt_matmul(float *out, const float *a, const float *b, int64_t m, int64_t n, int64_t k,
               bool ta, bool tb) {
  rt_sgemm(ta, tb, m, n, k, 1.0f, a, ta ? m : k, b, tb ? k : n, 0.0f, out, n);
}

void rt_add(float *out, const float *a, const float *b, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    out[i] = a[i] + b[i];
}
