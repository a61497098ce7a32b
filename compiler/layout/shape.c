// shape.c — the physical shapes of values in kernels: token-last
// [1, C, 1, S] where the token axis survives (ANE-B02), plain elsewhere, and
// a value's [1, C, 1, S] shape at a kernel boundary.
#include "layout.h"

int tl_phys_shape(int rank, const int64_t *logical, int64_t *dims) {
  if (rank <= 2) { // [S] or [S, C]: [1, C, 1, S]
    dims[0] = 1, dims[1] = rank == 2 ? logical[1] : 1, dims[2] = 1, dims[3] = logical[0];
    return 4;
  }
  dims[0] = 1;
  for (int i = 1; i < rank; i++)
    dims[i] = logical[i];
  dims[rank] = logical[0];
  return rank + 1;
}

int node_phys_shape(const Node *n, int64_t *dims) {
  const Shape *s = &n->shape;
  if (n->layout == LAYOUT_TL)
    return tl_phys_shape(s->rank, s->dims, dims);
  for (int i = 0; i < s->rank; i++)
    dims[i] = s->dims[i];
  return s->rank;
}

void values_token_last(const float *v, int64_t tokens, int64_t inner, float *out) {
  for (int64_t t = 0; t < tokens; t++)
    for (int64_t c = 0; c < inner; c++)
      out[c * tokens + t] = v[t * inner + c];
}

void node_io_shape(const Node *n, int64_t dims[4]) {
  int64_t numel = shape_numel(&n->shape);
  int64_t last = n->layout == LAYOUT_TL ? n->shape.dims[0]
                 : n->shape.rank       ? n->shape.dims[n->shape.rank - 1] : 1;
  dims[0] = 1, dims[1] = last ? numel / last : 0, dims[2] = 1, dims[3] = last;
}
