// sampler.c — choosing the next token from logits exactly as llama2.c's run.c
// does: argmax at temperature 0, else softmax of logits / T and a multinomial
// or top-p (nucleus) draw with its xorshift* generator.
#include "llm.h"

#include <math.h>
#include <stdlib.h>

void sampler_init(Sampler *s, int vocab, float temperature, float topp, uint64_t seed) {
  s->vocab = vocab > 0 ? vocab : 0;
  s->temperature = temperature;
  s->topp = topp;
  s->rng = seed ? seed : 0x9E3779B97F4A7C15ull; // xorshift stays at 0 from 0
  s->probs = s->vocab ? malloc((size_t)s->vocab * sizeof *s->probs) : NULL;
}

void sampler_free(Sampler *s) {
  free(s->probs);
  s->probs = NULL;
}

static uint32_t random_u32(uint64_t *state) {
  *state ^= *state >> 12;
  *state ^= *state << 25;
  *state ^= *state >> 27;
  return (uint32_t)((*state * 0x2545F4914F6CDD1Dull) >> 32);
}

static float random_f32(uint64_t *state) { // in [0, 1)
  return (float)(random_u32(state) >> 8) / 16777216.0f;
}

static int argmax(const float *x, int n) {
  int best = 0;
  for (int i = 1; i < n; i++)
    if (x[i] > x[best])
      best = i;
  return best;
}

static void softmax(float *x, int n) {
  float max = x[0], sum = 0.0f;
  for (int i = 1; i < n; i++)
    max = x[i] > max ? x[i] : max;
  for (int i = 0; i < n; i++) {
    x[i] = expf(x[i] - max);
    sum += x[i];
  }
  for (int i = 0; i < n; i++)
    x[i] /= sum;
}

static int sample_mult(const float *p, int n, float coin) {
  float cdf = 0.0f;
  for (int i = 0; i < n; i++) {
    cdf += p[i];
    if (coin < cdf)
      return i;
  }
  return n - 1; // rounding
}

static int cmp_prob(const void *a, const void *b) {
  const SamplerProb *x = a, *y = b;
  if (x->prob != y->prob)
    return x->prob > y->prob ? -1 : 1;
  return (x->index > y->index) - (x->index < y->index); // ties: the lower index first
}

// The smallest set of most probable tokens whose probabilities exceed topp,
// then a draw from it (tokens under (1 - topp) / (n - 1) cannot be in it).
static int sample_topp(const float *p, int n, float topp, SamplerProb *pi, float coin) {
  const float cutoff = (1.0f - topp) / (float)(n - 1);
  int n0 = 0;
  for (int i = 0; i < n; i++)
    if (p[i] >= cutoff)
      pi[n0++] = (SamplerProb){p[i], i};
  if (n0 == 0)
    return argmax(p, n);
  qsort(pi, (size_t)n0, sizeof *pi, cmp_prob);
  float cum = 0.0f;
  int last = n0 - 1;
  for (int i = 0; i < n0; i++) {
    cum += pi[i].prob;
    if (cum > topp) {
      last = i;
      break;
    }
  }
  float r = coin * cum, cdf = 0.0f;
  for (int i = 0; i <= last; i++) {
    cdf += pi[i].prob;
    if (r < cdf)
      return pi[i].index;
  }
  return pi[last].index; // rounding
}

int sampler_sample(Sampler *s, float *logits) {
  int n = s->vocab;
  bool finite = false; // -inf is a masked logit; NaN, +inf or nothing finite is not
  for (int i = 0; i < n; i++) {
    if (isnan(logits[i]) || logits[i] == INFINITY)
      return -1;
    finite = finite || isfinite(logits[i]);
  }
  if (!finite)
    return -1;
  if (n <= 1)
    return 0;
  if (s->temperature == 0.0f)
    return argmax(logits, n);
  for (int i = 0; i < n; i++)
    logits[i] /= s->temperature;
  softmax(logits, n);
  float coin = random_f32(&s->rng);
  if (s->topp <= 0.0f || s->topp >= 1.0f || !s->probs)
    return sample_mult(logits, n, coin);
  return sample_topp(logits, n, s->topp, s->probs, coin);
}
