// ireval.c — the logical graph evaluated directly in fp64: the numerical
// oracle that emitted kernels are compared against, and the CPU fallback that
// runs CPU-placed ops (embed, ...) in the host runtime. Plain loops over
// logical, row-major values; written to be read, not to be fast.
#include "eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

// Evaluates node n from its inputs' values (logical layout, row-major, one
// double per element; int inputs such as token ids are stored as exact
// doubles) into out[shape_numel(&n->shape)]. Sources (PARAM, CONST,
// CAUSAL_MASK (-inf above the diagonal, as the IR defines it), ROPE_COS/SIN)
// take their values from ps (params_source_values) and ignore ins.
// Returns false, with a message in err, for an index out of range (embed,
// cross_entropy targets) or an op it cannot evaluate.
bool ireval_node(const Node *n, const ParamSet *ps, const double *const *ins, double *out,
                 char *err, size_t errlen);
// Evaluates the whole graph in node order; vals[i] (malloc'd, free with
// ireval_free) holds node i's values. Graph inputs come from `inputs`
// (by INPUT node name, row-major, doubles). NULL after an error (message in err).
double **ireval_graph(const Graph *g, const ParamSet *ps, const char *const *input_names,
                      const double *const *inputs, int ninputs, char *err, size_t errlen);
void ireval_free(const Graph *g, double **vals);

#define SQRT_HALF 0.70710678118654752440  // 1/√2
#define SQRT_2_PI 0.79788456080286535588  // √(2/π)

static bool fail(char *err, size_t errlen, const char *fmt, ...) ANEC_PRINTF(3, 4);
static bool fail(char *err, size_t errlen, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return false;
}

static const char *opname(const Node *n) {
  return (unsigned)n->op < OP_COUNT ? op_info[n->op].name : "?";
}

// Where a node is, for messages: " in layers.0/block" or "".
static const char *scope_of(const Node *n, char *buf, size_t len) {
  snprintf(buf, len, "%s%s", n->scope && *n->scope ? " in " : "", n->scope ? n->scope : "");
  return buf;
}

//
// Index helpers
//

// A tensor seen as [outer, dim, inner] around one axis (AXIS_ALL: [1, numel, 1]).
typedef struct View {
  int64_t outer, dim, inner;
} View;

static View view_at(const Shape *s, int axis) {
  View v = {1, 1, 1};
  for (int i = 0; i < s->rank; i++) {
    if (axis == AXIS_ALL || i == axis)
      v.dim *= s->dims[i];
    else if (i < axis)
      v.outer *= s->dims[i];
    else
      v.inner *= s->dims[i];
  }
  return v;
}

// The multi-index of element `flat` of a row-major tensor of shape s.
static void unravel(int64_t flat, const Shape *s, int64_t *idx) {
  for (int i = s->rank - 1; i >= 0; i--) {
    idx[i] = flat % s->dims[i];
    flat /= s->dims[i];
  }
}

// The element of `in` that NumPy broadcasting reads for index idx of `out`:
// trailing dims align, and a dim of 1 always reads index 0.
static int64_t bcast_offset(const Shape *in, const Shape *out, const int64_t *idx) {
  int shift = out->rank - in->rank;
  int64_t off = 0;
  for (int i = 0; i < in->rank; i++)
    off = off * in->dims[i] + (in->dims[i] == 1 ? 0 : idx[i + shift]);
  return off;
}

//
// Op families
//

static double gelu(double x, GeluMode mode) {
  if (mode == GELU_TANH)
    return 0.5 * x * (1 + tanh(SQRT_2_PI * (x + 0.044715 * x * x * x)));
  return 0.5 * x * (1 + erf(x * SQRT_HALF));
}

static double unary(const Node *n, double x) {
  switch (n->op) {
  case OP_NEG: return -x;
  case OP_EXP: return exp(x);
  case OP_LOG: return log(x);
  case OP_SQRT: return sqrt(x);
  case OP_RSQRT: return 1 / sqrt(x);
  case OP_POW: return pow(x, n->value);
  case OP_SIGMOID: return 1 / (1 + exp(-x));
  case OP_SILU: return x / (1 + exp(-x));
  case OP_TANH: return tanh(x);
  case OP_RELU: return x < 0 ? 0.0 : x; // NaN stays NaN
  case OP_GELU: return gelu(x, n->gelu);
  default: return NAN;
  }
}

static double binary(OpKind op, double a, double b) {
  switch (op) {
  case OP_ADD: return a + b;
  case OP_SUB: return a - b;
  case OP_MUL: return a * b;
  case OP_DIV: return a / b;
  default: return NAN;
  }
}

static void eval_binary(const Node *n, const double *a, const double *b, double *out) {
  const Shape *so = &n->shape;
  int64_t idx[MAX_RANK];
  for (int64_t i = 0; i < shape_numel(so); i++) {
    unravel(i, so, idx);
    out[i] = binary(n->op, a[bcast_offset(&n->in[0]->shape, so, idx)],
                    b[bcast_offset(&n->in[1]->shape, so, idx)]);
  }
}

// SUM, MEAN, MAX along n->axis (or all of them); the output is [outer, inner].
static void eval_reduce(const Node *n, const double *x, double *out) {
  View v = view_at(&n->in[0]->shape, n->axis);
  for (int64_t o = 0; o < v.outer; o++)
    for (int64_t i = 0; i < v.inner; i++) {
      double acc = n->op == OP_MAX ? -INFINITY : 0.0;
      for (int64_t k = 0; k < v.dim; k++) {
        double e = x[(o * v.dim + k) * v.inner + i];
        if (n->op != OP_MAX)
          acc += e;
        else if (e > acc || isnan(e))
          acc = e;
      }
      out[o * v.inner + i] = n->op == OP_MEAN ? acc / (double)v.dim : acc;
    }
}

// exp(x - max) / Σ exp(x - max) along the axis: -inf entries give 0.
static void eval_softmax(const Node *n, const double *x, double *out) {
  View v = view_at(&n->in[0]->shape, n->axis);
  for (int64_t o = 0; o < v.outer; o++)
    for (int64_t i = 0; i < v.inner; i++) {
      const double *row = x + o * v.dim * v.inner + i;
      double *dst = out + o * v.dim * v.inner + i;
      double max = -INFINITY, sum = 0;
      for (int64_t k = 0; k < v.dim; k++)
        max = row[k * v.inner] > max ? row[k * v.inner] : max;
      for (int64_t k = 0; k < v.dim; k++)
        sum += dst[k * v.inner] = exp(row[k * v.inner] - max);
      for (int64_t k = 0; k < v.dim; k++)
        dst[k * v.inner] /= sum;
    }
}

static Shape batch_of(const Shape *s) {
  Shape b = *s;
  b.rank = s->rank - 2;
  return b;
}

// [..., M, K] @ [..., K, N]: transpose_a/b read an operand's last two dims
// swapped; the batch dims broadcast.
static void eval_matmul(const Node *n, const double *a, const double *b, double *out) {
  const Shape *sa = &n->in[0]->shape, *so = &n->shape;
  int64_t m = so->dims[so->rank - 2], cols = so->dims[so->rank - 1];
  int64_t k = sa->dims[n->transpose_a ? sa->rank - 2 : sa->rank - 1];
  Shape ba = batch_of(sa), bb = batch_of(&n->in[1]->shape), bo = batch_of(so);
  int64_t idx[MAX_RANK];
  for (int64_t t = 0; t < shape_numel(&bo); t++) {
    unravel(t, &bo, idx);
    const double *A = a + bcast_offset(&ba, &bo, idx) * m * k;
    const double *B = b + bcast_offset(&bb, &bo, idx) * k * cols;
    double *C = out + t * m * cols;
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < cols; j++) {
        double sum = 0;
        for (int64_t p = 0; p < k; p++)
          sum += A[n->transpose_a ? p * m + i : i * k + p] *
                 B[n->transpose_b ? j * k + p : p * cols + j];
        C[i * cols + j] = sum;
      }
  }
}

// Output axis i is input axis perm[i].
static void eval_transpose(const Node *n, const double *x, double *out) {
  const Shape *si = &n->in[0]->shape, *so = &n->shape;
  int64_t oidx[MAX_RANK], iidx[MAX_RANK];
  for (int64_t i = 0; i < shape_numel(so); i++) {
    unravel(i, so, oidx);
    for (int k = 0; k < so->rank; k++)
      iidx[n->perm[k]] = oidx[k];
    int64_t off = 0;
    for (int k = 0; k < si->rank; k++)
      off = off * si->dims[k] + iidx[k];
    out[i] = x[off];
  }
}

static void eval_slice(const Node *n, const double *x, double *out) {
  View vi = view_at(&n->in[0]->shape, n->axis), vo = view_at(&n->shape, n->axis);
  for (int64_t o = 0; o < vo.outer; o++)
    for (int64_t k = 0; k < vo.dim; k++)
      memcpy(out + (o * vo.dim + k) * vo.inner, x + (o * vi.dim + n->begin + k) * vi.inner,
             sizeof(double) * (size_t)vo.inner);
}

static void eval_concat(const Node *n, const double *const *ins, double *out) {
  View vo = view_at(&n->shape, n->axis);
  int64_t at = 0; // where along the axis input j starts
  for (int j = 0; j < n->nin; j++) {
    View vj = view_at(&n->in[j]->shape, n->axis);
    for (int64_t o = 0; o < vo.outer; o++)
      memcpy(out + (o * vo.dim + at) * vo.inner, ins[j] + o * vj.dim * vj.inner,
             sizeof(double) * (size_t)(vj.dim * vj.inner));
    at += vj.dim;
  }
}

// Whether id is an integer in [0, limit).
static bool index_ok(double id, int64_t limit) {
  return id >= 0 && id < (double)limit && id == floor(id);
}

// (table [V, D], ids [...]) -> [..., D]: row ids[s] of the table.
static bool eval_embed(const Node *n, const double *table, const double *ids, double *out,
                       char *err, size_t errlen) {
  int64_t vocab = n->in[0]->shape.dims[0], dim = n->in[0]->shape.dims[1];
  int64_t count = shape_numel(&n->in[1]->shape);
  char where[256];
  for (int64_t s = 0; s < count; s++) {
    if (!index_ok(ids[s], vocab))
      return fail(err, errlen, "'embed'%s: id %g at position %lld is out of range [0, %lld)",
                  scope_of(n, where, sizeof where), ids[s], (long long)s, (long long)vocab);
    memcpy(out + s * dim, table + (int64_t)ids[s] * dim, sizeof(double) * (size_t)dim);
  }
  return true;
}

// (logits [S, V], targets [S]) -> the mean over rows of logsumexp(row) - row[target].
static bool eval_cross_entropy(const Node *n, const double *logits, const double *targets,
                               double *out, char *err, size_t errlen) {
  int64_t rows = n->in[0]->shape.dims[0], vocab = n->in[0]->shape.dims[1];
  char where[256];
  double total = 0;
  for (int64_t s = 0; s < rows; s++) {
    const double *row = logits + s * vocab;
    if (!index_ok(targets[s], vocab))
      return fail(err, errlen, "'cross_entropy'%s: target %g at row %lld is out of range "
                  "[0, %lld)", scope_of(n, where, sizeof where), targets[s], (long long)s,
                  (long long)vocab);
    double max = -INFINITY, sum = 0;
    for (int64_t v = 0; v < vocab; v++)
      max = row[v] > max ? row[v] : max;
    for (int64_t v = 0; v < vocab; v++)
      sum += exp(row[v] - max);
    total += max + log(sum) - row[(int64_t)targets[s]];
  }
  out[0] = total / (double)rows;
  return true;
}

// %broadcast: x to n's shape.
static void eval_broadcast(const Node *n, const double *x, double *out) {
  int64_t idx[MAX_RANK];
  for (int64_t i = 0; i < shape_numel(&n->shape); i++) {
    unravel(i, &n->shape, idx);
    out[i] = x[bcast_offset(&n->in[0]->shape, &n->shape, idx)];
  }
}

// %embed_grad(ids [S], g [S, D]) -> [V, D]: row ids[s] += g[s].
static bool eval_embed_grad(const Node *n, const double *ids, const double *g, double *out,
                            char *err, size_t errlen) {
  int64_t vocab = n->shape.dims[0], dim = n->shape.dims[1], rows = n->in[1]->shape.dims[0];
  memset(out, 0, sizeof(double) * (size_t)(vocab * dim));
  for (int64_t s = 0; s < rows; s++) {
    if (!index_ok(ids[s], vocab))
      return fail(err, errlen, "embed gradient: id %g out of range [0, %lld)", ids[s],
                  (long long)vocab);
    for (int64_t k = 0; k < dim; k++)
      out[(int64_t)ids[s] * dim + k] += g[s * dim + k];
  }
  return true;
}

// %cross_entropy_grad(logits [S, V], targets [S]): (softmax(row) - onehot) / S.
static bool eval_ce_grad(const Node *n, const double *logits, const double *targets,
                         double *out, char *err, size_t errlen) {
  int64_t rows = n->shape.dims[0], vocab = n->shape.dims[1];
  for (int64_t s = 0; s < rows; s++) {
    const double *row = logits + s * vocab;
    double max = -INFINITY, sum = 0;
    if (!index_ok(targets[s], vocab))
      return fail(err, errlen, "cross_entropy gradient: target %g out of range", targets[s]);
    for (int64_t v = 0; v < vocab; v++)
      max = row[v] > max ? row[v] : max;
    for (int64_t v = 0; v < vocab; v++)
      sum += exp(row[v] - max);
    for (int64_t v = 0; v < vocab; v++)
      out[s * vocab + v] = (exp(row[v] - max) / sum - (v == (int64_t)targets[s])) / (double)rows;
  }
  return true;
}

// PARAM, CONST, CAUSAL_MASK, ROPE_COS, ROPE_SIN.
static bool eval_source(const Node *n, const ParamSet *ps, double *out, char *err,
                        size_t errlen) {
  int64_t count = shape_numel(&n->shape);
  if (n->op == OP_CONST) { // rank 0, but any shape is filled
    for (int64_t i = 0; i < count; i++)
      out[i] = n->value;
    return true;
  }
  if (n->op == OP_CAUSAL_MASK) { // -inf, not the -65504 the emitter bakes
    int64_t s = n->shape.dims[0];
    for (int64_t r = 0; r < s; r++)
      for (int64_t c = 0; c < s; c++)
        out[r * s + c] = c > r ? -INFINITY : 0.0;
    return true;
  }
  const float *v = ps ? params_source_values(ps, n) : NULL;
  if (!v)
    return fail(err, errlen, "no values for %s%s%s%s", opname(n), n->name ? " '" : "",
                n->name ? n->name : "", n->name ? "'" : "");
  for (int64_t i = 0; i < count; i++)
    out[i] = v[i];
  return true;
}

// The attributes inference normalizes are in range (a node that skipped it
// must not make the loops read outside their buffers).
static bool attrs_ok(const Node *n) {
  int rank = n->nin > 0 ? n->in[0]->shape.rank : 0;
  switch (n->op) {
  case OP_SUM: case OP_MEAN: case OP_MAX:
    return n->axis == AXIS_ALL || (n->axis >= 0 && n->axis < rank);
  case OP_SOFTMAX: case OP_CONCAT:
    return n->axis >= 0 && n->axis < rank;
  case OP_SLICE:
    return n->axis >= 0 && n->axis < rank && n->begin >= 0 &&
           n->begin + n->shape.dims[n->axis] <= n->in[0]->shape.dims[n->axis];
  case OP_MATMUL:
    return rank >= 2 && n->in[1]->shape.rank >= 2 && n->shape.rank >= 2;
  case OP_EMBED:
    return rank == 2;
  case OP_CROSS_ENTROPY:
    return rank == 2 && n->in[1]->shape.rank == 1;
  case OP_CAUSAL_MASK:
    return n->shape.rank == 2 && n->shape.dims[0] == n->shape.dims[1];
  default:
    return true;
  }
}

static bool inputs_ok(const Node *n, const double *const *ins) {
  int arity = op_info[n->op].arity;
  if (arity >= 0 ? n->nin != arity : n->nin < 1)
    return false;
  for (int i = 0; i < n->nin; i++)
    if (!n->in[i] || !ins || !ins[i])
      return false;
  return true;
}

bool ireval_node(const Node *n, const ParamSet *ps, const double *const *ins, double *out,
                 char *err, size_t errlen) {
  if ((unsigned)n->op >= OP_COUNT)
    return fail(err, errlen, "cannot evaluate op %d", (int)n->op);
  if (!inputs_ok(n, ins))
    return fail(err, errlen, "'%s' has missing inputs", opname(n));
  if (!attrs_ok(n))
    return fail(err, errlen, "'%s' has attributes out of range (was its shape inferred?)",
                opname(n));
  switch (n->op) {
  case OP_INPUT:
    return fail(err, errlen, "input '%s' has no value here (ireval_graph supplies inputs)",
                n->name ? n->name : "?");
  case OP_PARAM: case OP_CONST: case OP_CAUSAL_MASK: case OP_ROPE_COS: case OP_ROPE_SIN:
    return eval_source(n, ps, out, err, errlen);
  case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV:
    eval_binary(n, ins[0], ins[1], out);
    return true;
  case OP_NEG: case OP_EXP: case OP_LOG: case OP_SQRT: case OP_RSQRT: case OP_POW:
  case OP_SIGMOID: case OP_SILU: case OP_TANH: case OP_RELU: case OP_GELU:
    for (int64_t i = 0; i < shape_numel(&n->shape); i++)
      out[i] = unary(n, ins[0][i]);
    return true;
  case OP_SUM: case OP_MEAN: case OP_MAX:
    eval_reduce(n, ins[0], out);
    return true;
  case OP_SOFTMAX:
    eval_softmax(n, ins[0], out);
    return true;
  case OP_MATMUL:
    eval_matmul(n, ins[0], ins[1], out);
    return true;
  case OP_RESHAPE:
    memcpy(out, ins[0], sizeof(double) * (size_t)shape_numel(&n->shape));
    return true;
  case OP_TRANSPOSE:
    eval_transpose(n, ins[0], out);
    return true;
  case OP_SLICE:
    eval_slice(n, ins[0], out);
    return true;
  case OP_CONCAT:
    eval_concat(n, ins, out);
    return true;
  case OP_EMBED:
    return eval_embed(n, ins[0], ins[1], out, err, errlen);
  case OP_CROSS_ENTROPY:
    return eval_cross_entropy(n, ins[0], ins[1], out, err, errlen);
  case OP_BROADCAST:
    eval_broadcast(n, ins[0], out);
    return true;
  case OP_EMBED_GRAD:
    return eval_embed_grad(n, ins[0], ins[1], out, err, errlen);
  case OP_CE_GRAD:
    return eval_ce_grad(n, ins[0], ins[1], out, err, errlen);
  default:
    return fail(err, errlen, "cannot evaluate op '%s'", opname(n));
  }
}

//
// The whole graph
//

// An INPUT node's values from the caller's list, copied into out.
static bool graph_input(const Node *n, const char *const *names, const double *const *inputs,
                        int ninputs, double *out, char *err, size_t errlen) {
  for (int k = 0; k < ninputs; k++) {
    if (!names[k] || !n->name || strcmp(names[k], n->name))
      continue;
    if (!inputs[k])
      return fail(err, errlen, "input '%s' has no values", n->name);
    memcpy(out, inputs[k], sizeof(double) * (size_t)shape_numel(&n->shape));
    return true;
  }
  return fail(err, errlen, "no values given for input '%s'", n->name ? n->name : "?");
}

// Node i's values into vals[i]; its inputs are earlier nodes.
static bool graph_node(const Graph *g, int i, const ParamSet *ps, const char *const *names,
                       const double *const *inputs, int ninputs, double **vals, char *err,
                       size_t errlen) {
  const Node *n = g->nodes[i];
  int64_t count = shape_numel(&n->shape);
  if (count < 0 || n->id != i)
    return fail(err, errlen, "internal error: node %d ('%s') is not numbered or shaped",
                i, opname(n));
  vals[i] = malloc(sizeof(double) * (size_t)(count ? count : 1));
  const double **ins = calloc((size_t)(n->nin ? n->nin : 1), sizeof(double *));
  bool ok = vals[i] && ins;
  for (int k = 0; ok && k < n->nin; k++) {
    const Node *x = n->in[k];
    ok = x && x->id >= 0 && x->id < i && g->nodes[x->id] == x;
    if (ok)
      ins[k] = vals[x->id];
    else
      fail(err, errlen, "internal error: input %d of node %d is not an earlier node", k, i);
  }
  if (!vals[i] || !ins)
    fail(err, errlen, "out of memory evaluating node %d", i);
  else if (ok && n->op == OP_INPUT)
    ok = graph_input(n, names, inputs, ninputs, vals[i], err, errlen);
  else if (ok)
    ok = ireval_node(n, ps, ins, vals[i], err, errlen);
  free(ins);
  return ok;
}

double **ireval_graph(const Graph *g, const ParamSet *ps, const char *const *input_names,
                      const double *const *inputs, int ninputs, char *err, size_t errlen) {
  double **vals = calloc((size_t)(g->nnodes ? g->nnodes : 1), sizeof(double *));
  if (!vals) {
    fail(err, errlen, "out of memory");
    return NULL;
  }
  for (int i = 0; i < g->nnodes; i++) {
    if (!graph_node(g, i, ps, input_names, inputs, ninputs, vals, err, errlen)) {
      ireval_free(g, vals);
      return NULL;
    }
  }
  return vals;
}

void ireval_free(const Graph *g, double **vals) {
  if (!vals)
    return;
  for (int i = 0; i < g->nnodes; i++)
    free(vals[i]);
  free(vals);
}
