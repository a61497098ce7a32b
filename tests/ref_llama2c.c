// ref_llama2c.c — the llama2.c transformer written out from its math in plain
// fp32 loops: RMSNorm, interleaved RoPE, causal grouped-query attention with
// a KV cache, SwiGLU, residuals, final norm and classifier. Slow and simple on
// purpose: it is what faster implementations are compared against.
#include "ref_llama2c.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct RefModel {
  L2cConfig c;
  int hs, kv_dim;
  const float *emb, *rms_att, *wq, *wk, *wv, *wo, *rms_ffn, *w1, *w2, *w3, *rms_final, *cls;
  float *x, *h, *q, *k, *v, *att, *proj, *f1, *f3, *scores, *logits;
  float *kcache, *vcache; // [layers][seq][kv_dim]
  int next_pos;
};

static const float *weights(const L2cCheckpoint *ck, const char *name) {
  const L2cTensor *t = l2c_find(ck, name);
  return t ? t->data : NULL;
}

// out[n_out] = W[n_out, n_in] x[n_in]
static void matvec(float *out, const float *w, const float *x, int n_out, int n_in) {
  for (int r = 0; r < n_out; r++) {
    const float *row = w + (size_t)r * (size_t)n_in;
    float acc = 0.0f;
    for (int j = 0; j < n_in; j++)
      acc += row[j] * x[j];
    out[r] = acc;
  }
}

static void rmsnorm(float *out, const float *x, const float *w, int n) {
  float ss = 0.0f;
  for (int i = 0; i < n; i++)
    ss += x[i] * x[i];
  float scale = 1.0f / sqrtf(ss / (float)n + 1e-5f);
  for (int i = 0; i < n; i++)
    out[i] = w[i] * (scale * x[i]);
}

static void softmax(float *x, int n) {
  float max = x[0], sum = 0.0f;
  for (int i = 1; i < n; i++)
    max = x[i] > max ? x[i] : max;
  for (int i = 0; i < n; i++)
    sum += x[i] = expf(x[i] - max);
  for (int i = 0; i < n; i++)
    x[i] /= sum;
}

// Rotates the pairs (2j, 2j+1) of every head in v[n] by pos * 10000^(-2j/hs).
static void rope(float *v, int n, int hs, int pos) {
  for (int i = 0; i < n; i += 2) {
    int j = (i % hs) / 2;
    float freq = 1.0f / powf(10000.0f, (float)(2 * j) / (float)hs);
    float c = cosf((float)pos * freq), s = sinf((float)pos * freq);
    float a = v[i], b = v[i + 1];
    v[i] = a * c - b * s;
    v[i + 1] = a * s + b * c;
  }
}

static bool bind_weights(RefModel *m, const L2cCheckpoint *ck) {
  m->emb = weights(ck, "tok_emb"), m->rms_att = weights(ck, "rms_att");
  m->wq = weights(ck, "wq"), m->wk = weights(ck, "wk"), m->wv = weights(ck, "wv");
  m->wo = weights(ck, "wo"), m->rms_ffn = weights(ck, "rms_ffn");
  m->w1 = weights(ck, "w1"), m->w2 = weights(ck, "w2"), m->w3 = weights(ck, "w3");
  m->rms_final = weights(ck, "rms_final");
  m->cls = ck->cfg.shared_cls ? m->emb : weights(ck, "wcls");
  return m->emb && m->rms_att && m->wq && m->wk && m->wv && m->wo && m->rms_ffn && m->w1 &&
         m->w2 && m->w3 && m->rms_final && m->cls;
}

static float *zeros(size_t n) {
  return calloc(n ? n : 1, sizeof(float));
}

RefModel *ref_new(const L2cCheckpoint *ck) {
  RefModel *m = calloc(1, sizeof *m);
  if (!m)
    return NULL;
  const L2cConfig *c = &ck->cfg;
  m->c = *c;
  m->hs = c->dim / c->heads;
  m->kv_dim = m->hs * c->kv_heads;
  size_t cache = (size_t)c->layers * (size_t)c->seq * (size_t)m->kv_dim;
  m->x = zeros((size_t)c->dim), m->h = zeros((size_t)c->dim), m->q = zeros((size_t)c->dim);
  m->k = zeros((size_t)m->kv_dim), m->v = zeros((size_t)m->kv_dim);
  m->att = zeros((size_t)c->dim), m->proj = zeros((size_t)c->dim);
  m->f1 = zeros((size_t)c->hidden), m->f3 = zeros((size_t)c->hidden);
  m->scores = zeros((size_t)c->seq), m->logits = zeros((size_t)c->vocab);
  m->kcache = zeros(cache), m->vcache = zeros(cache);
  if (!bind_weights(m, ck) || !m->x || !m->h || !m->q || !m->k || !m->v || !m->att ||
      !m->proj || !m->f1 || !m->f3 || !m->scores || !m->logits || !m->kcache || !m->vcache) {
    ref_free(m);
    return NULL;
  }
  return m;
}

void ref_free(RefModel *m) {
  if (!m)
    return;
  free(m->x), free(m->h), free(m->q), free(m->k), free(m->v), free(m->att), free(m->proj);
  free(m->f1), free(m->f3), free(m->scores), free(m->logits), free(m->kcache), free(m->vcache);
  free(m);
}

// Causal attention of every query head over positions 0..pos of layer l's cache;
// query head h reads kv head h / (heads / kv_heads).
static void attention(RefModel *m, int l, int pos) {
  int group = m->c.heads / m->c.kv_heads;
  size_t base = (size_t)l * (size_t)m->c.seq * (size_t)m->kv_dim;
  for (int h = 0; h < m->c.heads; h++) {
    const float *q = m->q + h * m->hs;
    size_t off = base + (size_t)(h / group * m->hs);
    for (int t = 0; t <= pos; t++) {
      const float *k = m->kcache + off + (size_t)t * (size_t)m->kv_dim;
      float dot = 0.0f;
      for (int i = 0; i < m->hs; i++)
        dot += q[i] * k[i];
      m->scores[t] = dot / sqrtf((float)m->hs);
    }
    softmax(m->scores, pos + 1);
    float *out = m->att + h * m->hs;
    memset(out, 0, (size_t)m->hs * sizeof *out);
    for (int t = 0; t <= pos; t++) {
      const float *v = m->vcache + off + (size_t)t * (size_t)m->kv_dim;
      for (int i = 0; i < m->hs; i++)
        out[i] += m->scores[t] * v[i];
    }
  }
}

static void attention_block(RefModel *m, int l, int pos) {
  int D = m->c.dim, KV = m->kv_dim;
  rmsnorm(m->h, m->x, m->rms_att + (size_t)l * D, D);
  matvec(m->q, m->wq + (size_t)l * D * D, m->h, D, D);
  matvec(m->k, m->wk + (size_t)l * KV * D, m->h, KV, D);
  matvec(m->v, m->wv + (size_t)l * KV * D, m->h, KV, D);
  rope(m->q, D, m->hs, pos);
  rope(m->k, KV, m->hs, pos);
  size_t row = ((size_t)l * (size_t)m->c.seq + (size_t)pos) * (size_t)KV;
  memcpy(m->kcache + row, m->k, (size_t)KV * sizeof(float));
  memcpy(m->vcache + row, m->v, (size_t)KV * sizeof(float));
  attention(m, l, pos);
  matvec(m->proj, m->wo + (size_t)l * D * D, m->att, D, D);
  for (int i = 0; i < D; i++)
    m->x[i] += m->proj[i];
}

static void ffn_block(RefModel *m, int l) {
  int D = m->c.dim, H = m->c.hidden;
  rmsnorm(m->h, m->x, m->rms_ffn + (size_t)l * D, D);
  matvec(m->f1, m->w1 + (size_t)l * H * D, m->h, H, D);
  matvec(m->f3, m->w3 + (size_t)l * H * D, m->h, H, D);
  for (int i = 0; i < H; i++)
    m->f1[i] = m->f1[i] / (1.0f + expf(-m->f1[i])) * m->f3[i]; // silu(w1 x) * w3 x
  matvec(m->proj, m->w2 + (size_t)l * D * H, m->f1, D, H);
  for (int i = 0; i < D; i++)
    m->x[i] += m->proj[i];
}

const float *ref_forward(RefModel *m, int token, int pos) {
  if (token < 0 || token >= m->c.vocab || pos < 0 || pos >= m->c.seq || pos > m->next_pos)
    return NULL;
  m->next_pos = pos + 1;
  int D = m->c.dim;
  memcpy(m->x, m->emb + (size_t)token * D, (size_t)D * sizeof(float));
  for (int l = 0; l < m->c.layers; l++) {
    attention_block(m, l, pos);
    ffn_block(m, l);
  }
  rmsnorm(m->x, m->x, m->rms_final, D);
  matvec(m->logits, m->cls, m->x, m->c.vocab, D);
  return m->logits;
}

int ref_argmax(const float *x, int n) {
  int best = 0;
  for (int i = 1; i < n; i++)
    if (x[i] > x[best])
      best = i;
  return best;
}

int ref_greedy(const L2cCheckpoint *ck, const int *prompt, int nprompt, int steps, int *out) {
  if (nprompt < 1)
    return -1;
  RefModel *m = ref_new(ck);
  if (!m)
    return -1;
  int n = steps < ck->cfg.seq ? steps : ck->cfg.seq;
  for (int p = 0; p < n; p++) {
    const float *logits = ref_forward(m, p < nprompt ? prompt[p] : out[p - 1], p);
    if (!logits) {
      n = -1;
      break;
    }
    out[p] = ref_argmax(logits, ck->cfg.vocab);
  }
  ref_free(m);
  return n;
}
