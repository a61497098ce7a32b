// grad.c — the gradient rule of every differentiable op, one short function
// each, named in the op table (ops.h). A rule gets node n (its output y) and
// gy = dL/dy, and adds dL/dinput through ad_accum, which reduces broadcast
// dimensions. Rules build plain IR with ad_op / ad_new.
#include "passes.h"

static Node *mul(Ad *c, Node *a, Node *b, const Node *like) {
  return ad_op(c, OP_MUL, a, b, like);
}

static Node *scaled(Ad *c, Node *a, double k, const Node *like) {
  return mul(c, a, ad_num(c, k, like), like);
}

void grad_add(Ad *c, Node *n, Node *gy) {
  ad_accum(c, n->in[0], gy);
  ad_accum(c, n->in[1], gy);
}

void grad_sub(Ad *c, Node *n, Node *gy) {
  ad_accum(c, n->in[0], gy);
  ad_accum(c, n->in[1], ad_op(c, OP_NEG, gy, NULL, n));
}

void grad_mul(Ad *c, Node *n, Node *gy) {
  ad_accum(c, n->in[0], mul(c, gy, n->in[1], n));
  ad_accum(c, n->in[1], mul(c, gy, n->in[0], n));
}

// y = a / b: da = gy / b, db = -gy y / b
void grad_div(Ad *c, Node *n, Node *gy) {
  Node *ga = ad_op(c, OP_DIV, gy, n->in[1], n);
  ad_accum(c, n->in[0], ga);
  ad_accum(c, n->in[1], ad_op(c, OP_NEG, mul(c, ga, n, n), NULL, n));
}

void grad_neg(Ad *c, Node *n, Node *gy) {
  ad_accum(c, n->in[0], ad_op(c, OP_NEG, gy, NULL, n));
}

void grad_exp(Ad *c, Node *n, Node *gy) {
  ad_accum(c, n->in[0], mul(c, gy, n, n));
}

void grad_log(Ad *c, Node *n, Node *gy) {
  ad_accum(c, n->in[0], ad_op(c, OP_DIV, gy, n->in[0], n));
}

// y = sqrt(x): dx = gy / (2 y)
void grad_sqrt(Ad *c, Node *n, Node *gy) {
  ad_accum(c, n->in[0], ad_op(c, OP_DIV, scaled(c, gy, 0.5, n), n, n));
}

// y = x^-1/2: dx = -gy y^3 / 2, computed as -(gy y) / x / 2: y^3 alone
// passes fp16's 65504 once x < 6e-4 (an RMSNorm of small activations)
// The mean under rsqrt(mean(v) + eps) (RMSNorm, LayerNorm), or NULL.
static Node *norm_mean(Node *u) {
  if (u->op == OP_ADD && node_is_const(u->in[1]))
    u = u->in[0];
  else if (u->op == OP_ADD && node_is_const(u->in[0]))
    u = u->in[1];
  return u->op == OP_MEAN ? u : NULL;
}

// y = x^-1/2: dx = -gy y / (2x). Under a norm's mean the gradient goes to
// the mean's input directly, its 1/count applied before dividing by the
// (small) mean: -gy y / (2 count x) stays in fp16's range where -gy y / (2x)
// would not (embeddings of std 0.02 at dim 288: mean ~4e-4, y ~50).
void grad_rsqrt(Ad *c, Node *n, Node *gy) {
  Node *m = norm_mean(n->in[0]);
  int64_t out = m ? shape_numel(&m->shape) : 1;
  double count = m ? (double)(shape_numel(&m->in[0]->shape) / (out ? out : 1)) : 1.0;
  Node *g = ad_op(c, OP_DIV, scaled(c, mul(c, gy, n, n), -0.5 / count, n), n->in[0], n);
  ad_accum(c, m ? m->in[0] : n->in[0], g);
}

// y = x^p: dx = gy p x^(p-1)
void grad_pow(Ad *c, Node *n, Node *gy) {
  Node *p = ad_new(c, OP_POW, &n->in[0], 1, n);
  p->value = n->value - 1;
  ad_accum(c, n->in[0], mul(c, gy, scaled(c, ad_done(c, p), n->value, n), n));
}

// dx = gy y (1 - y)
void grad_sigmoid(Ad *c, Node *n, Node *gy) {
  Node *one_minus = ad_op(c, OP_SUB, ad_num(c, 1.0, n), n, n);
  ad_accum(c, n->in[0], mul(c, gy, mul(c, n, one_minus, n), n));
}

// y = x s, s = sigmoid(x): dx = gy (s + y (1 - s))
void grad_silu(Ad *c, Node *n, Node *gy) {
  Node *s = ad_op(c, OP_SIGMOID, n->in[0], NULL, n);
  Node *one_minus = ad_op(c, OP_SUB, ad_num(c, 1.0, n), s, n);
  ad_accum(c, n->in[0], mul(c, gy, ad_op(c, OP_ADD, s, mul(c, n, one_minus, n), n), n));
}

// dx = gy (1 - y^2)
void grad_tanh(Ad *c, Node *n, Node *gy) {
  Node *one_minus = ad_op(c, OP_SUB, ad_num(c, 1.0, n), mul(c, n, n, n), n);
  ad_accum(c, n->in[0], mul(c, gy, one_minus, n));
}

// tanh approximation only: with u = k (x + a x^3), t = tanh(u),
// dy/dx = (1 + t) / 2 + x (1 - t^2) k (1 + 3 a x^2) / 2
void grad_gelu(Ad *c, Node *n, Node *gy) {
  if (n->gelu != GELU_TANH) {
    diag_error(ad_diag(c), n->loc, "gelu(mode = \"exact\") has no gradient rule yet; "
               "use mode = \"tanh\" to train");
    ad_fail(c);
    return;
  }
  Node *x = n->in[0], *x2 = mul(c, x, x, n);
  Node *u = scaled(c, ad_op(c, OP_ADD, x, scaled(c, mul(c, x2, x, n), 0.044715, n), n),
                   0.79788456080286535588, n);
  Node *t = ad_op(c, OP_TANH, u, NULL, n);
  Node *left = scaled(c, ad_op(c, OP_ADD, ad_num(c, 1.0, n), t, n), 0.5, n);
  Node *sech2 = ad_op(c, OP_SUB, ad_num(c, 1.0, n), mul(c, t, t, n), n);
  Node *du = scaled(c, ad_op(c, OP_ADD, ad_num(c, 1.0, n), scaled(c, x2, 3 * 0.044715, n), n),
                    0.79788456080286535588 * 0.5, n);
  Node *right = mul(c, mul(c, x, sech2, n), du, n);
  ad_accum(c, x, mul(c, gy, ad_op(c, OP_ADD, left, right, n), n));
}

// y keeps the summed axis as 1: gy broadcasts back (ad_accum does it)
void grad_sum(Ad *c, Node *n, Node *gy) {
  ad_accum(c, n->in[0], gy);
}

void grad_mean(Ad *c, Node *n, Node *gy) {
  int64_t out = shape_numel(&n->shape), count = shape_numel(&n->in[0]->shape) / (out ? out : 1);
  ad_accum(c, n->in[0], scaled(c, gy, 1.0 / (double)count, n));
}

// dx = y (gy - sum(gy y, axis))
void grad_softmax(Ad *c, Node *n, Node *gy) {
  Node *gyy = mul(c, gy, n, n), *s = ad_new(c, OP_SUM, &gyy, 1, n);
  s->axis = n->axis;
  ad_accum(c, n->in[0], mul(c, n, ad_op(c, OP_SUB, gy, ad_done(c, s), n), n));
}

static Node *matmul(Ad *c, Node *a, Node *b, bool ta, bool tb, const Node *like) {
  Node *in[2] = {a, b}, *m = ad_new(c, OP_MATMUL, in, 2, like);
  m->transpose_a = ta, m->transpose_b = tb;
  return ad_done(c, m);
}

// y = op(a) op(b); ad_accum sums the broadcast batch dimensions
void grad_matmul(Ad *c, Node *n, Node *gy) {
  Node *a = n->in[0], *b = n->in[1];
  bool ta = n->transpose_a, tb = n->transpose_b;
  ad_accum(c, a, ta ? matmul(c, b, gy, tb, true, n) : matmul(c, gy, b, false, !tb, n));
  ad_accum(c, b, tb ? matmul(c, gy, a, true, ta, n) : matmul(c, a, gy, !ta, false, n));
}

void grad_reshape(Ad *c, Node *n, Node *gy) {
  Node *r = ad_new(c, OP_RESHAPE, &gy, 1, n);
  r->target = n->in[0]->shape;
  ad_accum(c, n->in[0], ad_done(c, r));
}

void grad_transpose(Ad *c, Node *n, Node *gy) {
  Node *t = ad_new(c, OP_TRANSPOSE, &gy, 1, n);
  for (int i = 0; i < n->shape.rank; i++)
    t->perm[n->perm[i]] = i;
  ad_accum(c, n->in[0], ad_done(c, t));
}

// zeros of shape s, as a broadcast scalar
static Node *zeros(Ad *c, Shape s, const Node *like) {
  Node *z = ad_num(c, 0.0, like), *b = ad_new(c, OP_BROADCAST, &z, 1, like);
  b->target = s;
  return ad_done(c, b);
}

// gy padded back with zeros before and after the slice
void grad_slice(Ad *c, Node *n, Node *gy) {
  const Shape *x = &n->in[0]->shape;
  Node *parts[3];
  int np = 0;
  Shape s = *x;
  if (n->begin > 0)
    s.dims[n->axis] = n->begin, parts[np++] = zeros(c, s, n);
  parts[np++] = gy;
  if (n->end < x->dims[n->axis])
    s.dims[n->axis] = x->dims[n->axis] - n->end, parts[np++] = zeros(c, s, n);
  Node *cat = ad_new(c, OP_CONCAT, parts, np, n);
  cat->axis = n->axis;
  ad_accum(c, n->in[0], np > 1 ? ad_done(c, cat) : gy);
}

void grad_concat(Ad *c, Node *n, Node *gy) {
  int64_t at = 0;
  for (int k = 0; k < n->nin; k++) {
    Node *s = ad_new(c, OP_SLICE, &gy, 1, n);
    s->axis = n->axis, s->begin = at, s->end = at + n->in[k]->shape.dims[n->axis];
    at = s->end;
    ad_accum(c, n->in[k], ad_done(c, s));
  }
}

void grad_embed(Ad *c, Node *n, Node *gy) {
  Node *in[2] = {n->in[1], gy}, *e = ad_new(c, OP_EMBED_GRAD, in, 2, n);
  e->target = n->in[0]->shape;
  ad_accum(c, n->in[0], ad_done(c, e));
}

void grad_cross_entropy(Ad *c, Node *n, Node *gy) {
  Node *g = ad_op(c, OP_CE_GRAD, n->in[0], n->in[1], n);
  ad_accum(c, n->in[0], mul(c, g, gy, n));
}
