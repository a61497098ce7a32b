// params.c — the values of a model's parameters and constants, fp32 in
// their logical layout: from the initializers (deterministic per name and
// seed) or set by a loader; and the values of the constant ops (causal mask,
// RoPE tables) that the emitter bakes into kernels.
#include "eval.h"

#include <math.h>
#include <string.h>

void params_init(ParamSet *ps, Arena *a) {
  ps->arena = a;
  strmap_init(&ps->map, a);
}

void params_init_random(ParamSet *ps, const Graph *g, uint64_t seed) {
  for (int i = 0; i < g->nnodes; i++) {
    const Node *n = g->nodes[i];
    if (n->op != OP_PARAM || strmap_get(&ps->map, n->name))
      continue;
    int64_t count = shape_numel(&n->shape);
    float *v = arena_alloc(ps->arena, sizeof(float) * (size_t)(count ? count : 1));
    if (n->init == INIT_ONES)
      for (int64_t k = 0; k < count; k++)
        v[k] = 1.0f;
    else if (n->init == INIT_NORMAL)
      rt_fill_normal(v, count, n->init_std, n->name, seed);
    strmap_put(&ps->map, n->name, v);
  }
}

void params_set(ParamSet *ps, const char *name, float *values) {
  strmap_put(&ps->map, arena_strdup(ps->arena, name), values);
}

const float *params_get(const ParamSet *ps, const Node *param) {
  return strmap_get(&ps->map, param->name);
}

// A slice of a constant: [outer, dim, inner] -> [outer, end - begin, inner].
static const float *slice_values(const ParamSet *ps, const Node *n) {
  const float *v = params_source_values(ps, n->in[0]);
  const Shape *s = &n->in[0]->shape;
  int64_t outer = 1, inner = 1, dim = s->dims[n->axis], len = n->end - n->begin;
  for (int i = 0; i < n->axis; i++)
    outer *= s->dims[i];
  for (int i = n->axis + 1; i < s->rank; i++)
    inner *= s->dims[i];
  float *out = v ? arena_alloc(ps->arena, sizeof(float) * (size_t)(outer * len * inner + 1)) : NULL;
  for (int64_t o = 0; out && o < outer; o++)
    memcpy(out + o * len * inner, v + (o * dim + n->begin) * inner,
           sizeof(float) * (size_t)(len * inner));
  return out;
}

// A constant broadcast to n->shape (numpy's rules: trailing axes aligned).
static const float *broadcast_values(const ParamSet *ps, const Node *n) {
  const float *v = params_source_values(ps, n->in[0]);
  const Shape *xs = &n->in[0]->shape, *s = &n->shape;
  int64_t count = shape_numel(s);
  float *out = v ? arena_alloc(ps->arena, sizeof(float) * (size_t)(count + 1)) : NULL;
  for (int64_t i = 0; out && i < count; i++) {
    int64_t rest = i, src = 0, stride = 1;
    for (int a = s->rank - 1; a >= 0; a--) {
      int64_t at = rest % s->dims[a], xa = a - (s->rank - xs->rank);
      rest /= s->dims[a];
      if (xa >= 0 && xs->dims[xa] != 1)
        src += at * stride;
      if (xa >= 0)
        stride *= xs->dims[xa];
    }
    out[i] = v[src];
  }
  return out;
}

// The values of a source node in its logical layout, or NULL if unknown.
const float *params_source_values(const ParamSet *ps, const Node *n) {
  if (n->op == OP_PARAM)
    return params_get(ps, n);
  if (n->op == OP_RESHAPE) // a constant reshaped: the same values
    return params_source_values(ps, n->in[0]);
  if (n->op == OP_SLICE)
    return slice_values(ps, n);
  if (n->op == OP_BROADCAST)
    return broadcast_values(ps, n);
  int64_t count = shape_numel(&n->shape);
  float *v = arena_alloc(ps->arena, sizeof(float) * (size_t)(count ? count : 1));
  const int64_t *d = n->shape.dims;
  switch (n->op) {
  case OP_CONST:
    v[0] = (float)n->value;
    return v;
  case OP_CAUSAL_MASK: // -65504, the fp16 minimum, not -inf (ANE-T10)
    for (int64_t r = 0; r < d[0]; r++)
      for (int64_t c = 0; c < d[1]; c++)
        v[r * d[1] + c] = c > r ? -65504.0f : 0.0f;
    return v;
  case OP_ROPE_COS:
  case OP_ROPE_SIN:
    for (int64_t p = 0; p < d[0]; p++)
      for (int64_t i = 0; i < d[1]; i++) {
        // in float, the way llama2.c computes its tables
        float freq = 1.0f / powf((float)n->value, (float)(2 * i) / (float)(2 * d[1]));
        float angle = (float)p * freq;
        v[p * d[1] + i] = n->op == OP_ROPE_COS ? cosf(angle) : sinf(angle);
      }
    return v;
  default:
    return NULL;
  }
}
