// infer.c — shape and type inference: one function per op family (ops.h names
// them) computing a node's shape and dtype from its inputs and attributes, and
// reporting ill-shaped models at the node's location (node_infer).
// Shapes are logical, row-major, of rank 0..MAX_RANK.
#include "ir.h"

// A short text (a shape, a type) formatted into a value, so that calls like
// diag_error(d, loc, "%s", shape_text(&s).s) need no buffers or arena.
typedef struct Text {
  char s[48 * MAX_RANK];
} Text;

static Text ints_text(const int64_t *v, int n) {
  Text t;
  size_t len = (size_t)snprintf(t.s, sizeof t.s, "[");
  n = n < 0 ? 0 : n > MAX_RANK ? MAX_RANK : n;
  for (int i = 0; i < n; i++)
    len += (size_t)snprintf(t.s + len, sizeof t.s - len, "%s%lld", i ? ", " : "",
                            (long long)v[i]);
  snprintf(t.s + len, sizeof t.s - len, "]");
  return t;
}

static Text shape_text(const Shape *s) {
  return ints_text(s->dims, s->rank);
}

static Text type_text(const Node *x) {
  Text t;
  snprintf(t.s, sizeof t.s, "%s%s", dtype_name(x->dtype), shape_text(&x->shape).s);
  return t;
}

static const char *opname(const Node *n) {
  return op_info[n->op].name;
}

static bool is_float(DType t) {
  return t == DT_F32 || t == DT_F16;
}

// What a shape error talks about: "parameter 'wq'", "result of 'matmul'".
static Text subject_text(const Node *n) {
  Text t;
  if (n->op == OP_INPUT || n->op == OP_PARAM)
    snprintf(t.s, sizeof t.s, "%s '%s'", n->op == OP_INPUT ? "input" : "parameter",
             n->name ? n->name : "?");
  else
    snprintf(t.s, sizeof t.s, "result of '%s'", opname(n));
  return t;
}

// Rank and dims in range, the element count at most MAX_NUMEL: what
// inference guarantees of every node it accepts.
static bool shape_valid(const Shape *s) {
  if (s->rank < 0 || s->rank > MAX_RANK)
    return false;
  for (int i = 0; i < s->rank; i++)
    if (s->dims[i] < 1 || s->dims[i] >= MAX_DIM)
      return false;
  return shape_numel(s) >= 0;
}

// The input count matches the op's arity, and every input exists.
static bool check_inputs(Node *n, Diag *d) {
  if ((unsigned)n->op >= OP_COUNT) {
    diag_error(d, n->loc, "internal error: invalid op %d", (int)n->op);
    return false;
  }
  int arity = op_info[n->op].arity;
  if (arity >= 0 && n->nin != arity) {
    diag_error(d, n->loc, "'%s' takes %d input%s, got %d", opname(n), arity,
               arity == 1 ? "" : "s", n->nin);
    return false;
  }
  if (arity < 0 && n->nin < 1) {
    diag_error(d, n->loc, "'%s' needs at least one input", opname(n));
    return false;
  }
  for (int i = 0; i < n->nin; i++) {
    Node *x = n->in ? n->in[i] : NULL;
    if (!x) {
      diag_error(d, n->loc, "internal error: input %d of '%s' is missing", i, opname(n));
      return false;
    }
    if (!shape_valid(&x->shape)) {
      diag_error(d, n->loc, "internal error: input %d of '%s' has invalid shape %s", i,
                 opname(n), shape_text(&x->shape).s);
      return false;
    }
  }
  return true;
}

// Every dim in [1, MAX_DIM), the element count at most MAX_NUMEL.
static bool check_shape(Node *n, Diag *d, const Shape *s) {
  if (s->rank < 0 || s->rank > MAX_RANK) {
    diag_error(d, n->loc, "%s has rank %d; at most %d dimensions are supported",
               subject_text(n).s, s->rank, MAX_RANK);
    return false;
  }
  for (int i = 0; i < s->rank; i++) {
    if (s->dims[i] < 1 || s->dims[i] >= MAX_DIM) {
      diag_error(d, n->loc, "shape %s of %s is invalid: every dimension must be between 1 and %lld",
                 shape_text(s).s, subject_text(n).s, (long long)(MAX_DIM - 1));
      return false;
    }
  }
  if (shape_numel(s) < 0) {
    diag_error(d, n->loc, "shape %s of %s has more than %lld elements", shape_text(s).s,
               subject_text(n).s, (long long)MAX_NUMEL);
    return false;
  }
  return true;
}

static bool need_float(Node *n, Diag *d, const Node *x) {
  if (is_float(x->dtype))
    return true;
  diag_error(d, n->loc, "'%s' needs a floating-point tensor, got %s", opname(n),
             type_text(x).s);
  return false;
}

// Normalizes n->axis from [-rank, rank) to [0, rank).
static bool norm_axis(Node *n, Diag *d, int rank) {
  if (n->axis < -rank || n->axis >= rank) {
    diag_error(d, n->loc, "axis %d is out of range for a tensor of rank %d", n->axis, rank);
    return false;
  }
  if (n->axis < 0)
    n->axis += rank;
  return true;
}

// NumPy broadcasting: align trailing dims; each pair equal or one of them 1.
static bool broadcast(const Shape *a, const Shape *b, Shape *out) {
  int r = a->rank > b->rank ? a->rank : b->rank;
  out->rank = r;
  for (int i = 0; i < r; i++) {
    int ia = i - (r - a->rank), ib = i - (r - b->rank);
    int64_t x = ia < 0 ? 1 : a->dims[ia];
    int64_t y = ib < 0 ? 1 : b->dims[ib];
    if (x != y && x != 1 && y != 1)
      return false;
    out->dims[i] = x == 1 ? y : x;
  }
  return true;
}

static void note_operands(Diag *d, const Node *a, const Node *b) {
  diag_note(d, a->loc, "left operand has shape %s", shape_text(&a->shape).s);
  diag_note(d, b->loc, "right operand has shape %s", shape_text(&b->shape).s);
}

// Both operands floating-point and of the same dtype.
static bool check_operand_types(Node *n, Diag *d, const Node *a, const Node *b) {
  if (!is_float(a->dtype) || !is_float(b->dtype)) {
    diag_error(d, n->loc, "'%s' needs floating-point operands, got %s and %s", opname(n),
               type_text(a).s, type_text(b).s);
    return false;
  }
  if (a->dtype != b->dtype) {
    diag_error(d, n->loc, "'%s' operands have different element types: %s and %s",
               opname(n), type_text(a).s, type_text(b).s);
    return false;
  }
  return true;
}

bool infer_source(Node *n, Diag *d) {
  if (!check_inputs(n, d) || !check_shape(n, d, &n->shape))
    return false;
  const Shape *s = &n->shape;
  if ((unsigned)n->dtype > DT_I32) {
    diag_error(d, n->loc, "internal error: %s has invalid dtype %d", subject_text(n).s,
               (int)n->dtype);
    return false;
  }
  if (n->op == OP_CAUSAL_MASK && (s->rank != 2 || s->dims[0] != s->dims[1])) {
    diag_error(d, n->loc, "'causal_mask' must be a square matrix, got %s", shape_text(s).s);
    return false;
  }
  if ((n->op == OP_ROPE_COS || n->op == OP_ROPE_SIN) && s->rank != 2) {
    diag_error(d, n->loc, "'%s' must be a matrix [seq, hd/2], got %s", opname(n),
               shape_text(s).s);
    return false;
  }
  return true;
}

bool infer_unary(Node *n, Diag *d) {
  if (!check_inputs(n, d) || !need_float(n, d, n->in[0]))
    return false;
  n->shape = n->in[0]->shape;
  n->dtype = n->in[0]->dtype;
  return true;
}

bool infer_binary(Node *n, Diag *d) {
  if (!check_inputs(n, d))
    return false;
  Node *a = n->in[0], *b = n->in[1];
  if (!check_operand_types(n, d, a, b))
    return false;
  if (!broadcast(&a->shape, &b->shape, &n->shape)) {
    diag_error(d, n->loc, "cannot broadcast %s and %s in '%s'", shape_text(&a->shape).s,
               shape_text(&b->shape).s, opname(n));
    note_operands(d, a, b);
    return false;
  }
  n->dtype = a->dtype;
  return true;
}

bool infer_reduce(Node *n, Diag *d) {
  if (!check_inputs(n, d))
    return false;
  const Node *x = n->in[0];
  n->dtype = x->dtype;
  if (n->axis == AXIS_ALL) {
    n->shape = (Shape){.rank = 0};
    return true;
  }
  if (!norm_axis(n, d, x->shape.rank))
    return false;
  n->shape = x->shape;
  n->shape.dims[n->axis] = 1;
  return true;
}

bool infer_softmax(Node *n, Diag *d) {
  if (!check_inputs(n, d) || !need_float(n, d, n->in[0]))
    return false;
  if (!norm_axis(n, d, n->in[0]->shape.rank))
    return false;
  n->shape = n->in[0]->shape;
  n->dtype = n->in[0]->dtype;
  return true;
}

// The batch dims of a matmul operand: all but the last two.
static Shape batch_of(const Shape *s) {
  Shape b = *s;
  b.rank = s->rank - 2;
  return b;
}

static bool matmul_error(Node *n, Diag *d, int64_t ka, int64_t kb) {
  const Node *a = n->in[0], *b = n->in[1];
  diag_error(d, n->loc, "cannot multiply %s%s by %s%s: inner dimensions %lld and %lld differ",
             shape_text(&a->shape).s, n->transpose_a ? " (transposed)" : "",
             shape_text(&b->shape).s, n->transpose_b ? " (transposed)" : "",
             (long long)ka, (long long)kb);
  note_operands(d, a, b);
  return false;
}

// [..., M, K] @ [..., K, N] -> [..., M, N]; transpose_a/b swap an operand's
// last two dims first; the batch dims broadcast.
bool infer_matmul(Node *n, Diag *d) {
  if (!check_inputs(n, d))
    return false;
  Node *a = n->in[0], *b = n->in[1];
  if (!check_operand_types(n, d, a, b))
    return false;
  const Shape *sa = &a->shape, *sb = &b->shape;
  if (sa->rank < 2 || sb->rank < 2) {
    diag_error(d, n->loc, "'matmul' needs tensors of rank 2 or more, got %s and %s",
               shape_text(sa).s, shape_text(sb).s);
    return false;
  }
  int ra = sa->rank, rb = sb->rank;
  int64_t m = sa->dims[n->transpose_a ? ra - 1 : ra - 2];
  int64_t ka = sa->dims[n->transpose_a ? ra - 2 : ra - 1];
  int64_t kb = sb->dims[n->transpose_b ? rb - 1 : rb - 2];
  int64_t cols = sb->dims[n->transpose_b ? rb - 2 : rb - 1];
  if (ka != kb)
    return matmul_error(n, d, ka, kb);
  Shape ba = batch_of(sa), bb = batch_of(sb), out;
  if (!broadcast(&ba, &bb, &out)) {
    diag_error(d, n->loc, "cannot broadcast batch dimensions %s and %s in 'matmul'",
               shape_text(&ba).s, shape_text(&bb).s);
    note_operands(d, a, b);
    return false;
  }
  out.dims[out.rank++] = m;
  out.dims[out.rank++] = cols;
  if (!check_shape(n, d, &out))
    return false;
  n->shape = out;
  n->dtype = a->dtype;
  return true;
}

// The product of the target's dims other than -1 (capped just above
// MAX_NUMEL) and the index of the -1 (or -1); false after an error.
static bool reshape_target(Node *n, Diag *d, int64_t *known, int *hole) {
  const Shape *t = &n->target;
  if (t->rank < 0 || t->rank > MAX_RANK) {
    diag_error(d, n->loc, "reshape target has rank %d; at most %d dimensions are supported",
               t->rank, MAX_RANK);
    return false;
  }
  *known = 1;
  *hole = -1;
  for (int i = 0; i < t->rank; i++) {
    int64_t v = t->dims[i];
    if (v == -1 && *hole < 0) {
      *hole = i;
    } else if (v == -1) {
      diag_error(d, n->loc, "reshape target %s has more than one -1", shape_text(t).s);
      return false;
    } else if (v < 1 || v >= MAX_DIM) {
      diag_error(d, n->loc, "reshape target %s has invalid dimension %lld; dimensions must "
                 "be between 1 and %lld, or -1 once", shape_text(t).s, (long long)v,
                 (long long)(MAX_DIM - 1));
      return false;
    } else {
      *known = *known > MAX_NUMEL / v ? MAX_NUMEL + 1 : *known * v;
    }
  }
  return true;
}

bool infer_reshape(Node *n, Diag *d) {
  int64_t known;
  int hole;
  if (!check_inputs(n, d) || !reshape_target(n, d, &known, &hole))
    return false;
  const Node *x = n->in[0];
  int64_t total = shape_numel(&x->shape);
  Shape out = n->target;
  if (hole >= 0 && total % known == 0) {
    out.dims[hole] = total / known;
  } else if (hole >= 0) {
    diag_error(d, n->loc, "cannot reshape %s (%lld elements) into %s",
               shape_text(&x->shape).s, (long long)total, shape_text(&n->target).s);
    return false;
  } else if (known != total) {
    diag_error(d, n->loc, "cannot reshape %s (%lld elements) into %s (%s%lld elements)",
               shape_text(&x->shape).s, (long long)total, shape_text(&n->target).s,
               known > MAX_NUMEL ? "more than " : "", (long long)(known > MAX_NUMEL ? MAX_NUMEL : known));
    return false;
  }
  if (!check_shape(n, d, &out))
    return false;
  n->shape = out;
  n->dtype = x->dtype;
  return true;
}

// perm[i] names the input axis that becomes output axis i.
bool infer_transpose(Node *n, Diag *d) {
  if (!check_inputs(n, d))
    return false;
  const Shape *s = &n->in[0]->shape;
  bool seen[MAX_RANK] = {false};
  for (int i = 0; i < s->rank; i++) {
    int p = n->perm[i];
    if (p < 0 || p >= s->rank || seen[p]) {
      int64_t perm[MAX_RANK];
      for (int j = 0; j < s->rank; j++)
        perm[j] = n->perm[j];
      diag_error(d, n->loc, "perm %s is not a permutation of %d ax%s",
                 ints_text(perm, s->rank).s, s->rank, s->rank == 1 ? "is" : "es");
      return false;
    }
    seen[p] = true;
  }
  n->shape.rank = s->rank;
  for (int i = 0; i < s->rank; i++)
    n->shape.dims[i] = s->dims[n->perm[i]];
  n->dtype = n->in[0]->dtype;
  return true;
}

// [begin, end) along axis; negative bounds count from the end and are stored
// back normalized.
bool infer_slice(Node *n, Diag *d) {
  if (!check_inputs(n, d))
    return false;
  const Shape *s = &n->in[0]->shape;
  if (!norm_axis(n, d, s->rank))
    return false;
  int64_t dim = s->dims[n->axis];
  int64_t b = n->begin < 0 ? n->begin + dim : n->begin;
  int64_t e = n->end < 0 ? n->end + dim : n->end;
  if (b < 0 || b >= e || e > dim) {
    diag_error(d, n->loc, "slice [%lld, %lld) does not fit axis %d of %s "
               "(need 0 <= begin < end <= %lld)", (long long)n->begin, (long long)n->end,
               n->axis, shape_text(s).s, (long long)dim);
    return false;
  }
  n->begin = b;
  n->end = e;
  n->shape = *s;
  n->shape.dims[n->axis] = e - b;
  n->dtype = n->in[0]->dtype;
  return true;
}

// Input i matches input 0 in dtype, rank, and every dim but the axis.
static bool concat_fits(Node *n, Diag *d, int i) {
  const Node *x0 = n->in[0], *x = n->in[i];
  if (x->dtype != x0->dtype) {
    diag_error(d, n->loc, "cannot concatenate %s and %s: element types differ",
               type_text(x0).s, type_text(x).s);
    return false;
  }
  bool ok = x->shape.rank == x0->shape.rank;
  for (int j = 0; ok && j < x0->shape.rank; j++)
    ok = j == n->axis || x->shape.dims[j] == x0->shape.dims[j];
  if (ok)
    return true;
  diag_error(d, n->loc, "cannot concatenate %s and %s along axis %d",
             shape_text(&x0->shape).s, shape_text(&x->shape).s, n->axis);
  diag_note(d, x0->loc, "input 0 has shape %s", shape_text(&x0->shape).s);
  diag_note(d, x->loc, "input %d has shape %s", i, shape_text(&x->shape).s);
  return false;
}

bool infer_concat(Node *n, Diag *d) {
  if (!check_inputs(n, d) || !norm_axis(n, d, n->in[0]->shape.rank))
    return false;
  Shape out = n->in[0]->shape;
  int64_t sum = 0;
  for (int i = 0; i < n->nin; i++) {
    if (!concat_fits(n, d, i))
      return false;
    sum += n->in[i]->shape.dims[n->axis];
  }
  out.dims[n->axis] = sum;
  if (!check_shape(n, d, &out))
    return false;
  n->shape = out;
  n->dtype = n->in[0]->dtype;
  return true;
}

// (table [V, D], ids i32[...]) -> [..., D]
bool infer_embed(Node *n, Diag *d) {
  if (!check_inputs(n, d))
    return false;
  const Node *table = n->in[0], *ids = n->in[1];
  if (table->shape.rank != 2 || !is_float(table->dtype)) {
    diag_error(d, n->loc, "'embed' table must be a floating-point matrix [V, D], got %s",
               type_text(table).s);
    return false;
  }
  if (ids->dtype != DT_I32) {
    diag_error(d, n->loc, "'embed' ids must be i32, got %s", type_text(ids).s);
    return false;
  }
  if (ids->shape.rank >= MAX_RANK) {
    diag_error(d, n->loc, "'embed' ids of rank %d give a result of rank %d; at most %d "
               "dimensions are supported", ids->shape.rank, ids->shape.rank + 1, MAX_RANK);
    return false;
  }
  Shape out = ids->shape;
  out.dims[out.rank++] = table->shape.dims[1];
  if (!check_shape(n, d, &out))
    return false;
  n->shape = out;
  n->dtype = table->dtype;
  return true;
}

// (logits [S, V], targets i32[S]) -> f32[], the mean over rows.
bool infer_cross_entropy(Node *n, Diag *d) {
  if (!check_inputs(n, d))
    return false;
  const Node *logits = n->in[0], *targets = n->in[1];
  if (logits->shape.rank != 2 || !is_float(logits->dtype)) {
    diag_error(d, n->loc, "'cross_entropy' logits must be a floating-point matrix [S, V], "
               "got %s", type_text(logits).s);
    return false;
  }
  int64_t rows = logits->shape.dims[0];
  if (targets->dtype != DT_I32 || targets->shape.rank != 1 || targets->shape.dims[0] != rows) {
    diag_error(d, n->loc, "'cross_entropy' targets must be i32[%lld] to match logits %s, "
               "got %s", (long long)rows, shape_text(&logits->shape).s, type_text(targets).s);
    return false;
  }
  n->shape = (Shape){.rank = 0};
  n->dtype = DT_F32;
  return true;
}

// %broadcast: x to n->target, NumPy rules (autodiff's).
bool infer_broadcast(Node *n, Diag *d) {
  const Shape *x = &n->in[0]->shape, *t = &n->target;
  bool ok = x->rank <= t->rank;
  for (int i = 0; ok && i < x->rank; i++) {
    int64_t xd = x->dims[x->rank - 1 - i], td = t->dims[t->rank - 1 - i];
    ok = xd == td || xd == 1;
  }
  if (!ok) {
    diag_error(d, n->loc, "internal error: cannot broadcast %s to %s", shape_text(x).s,
               shape_text(t).s);
    return false;
  }
  n->shape = *t;
  n->dtype = n->in[0]->dtype;
  return true;
}

// %embed_grad(ids [S], g [S, D]) -> n->target [V, D]: g's rows summed per id.
bool infer_embed_grad(Node *n, Diag *d) {
  const Shape *g = &n->in[1]->shape;
  if (n->target.rank != 2 || g->rank != 2 || g->dims[1] != n->target.dims[1]) {
    diag_error(d, n->loc, "internal error: bad embed gradient shapes");
    return false;
  }
  n->shape = n->target;
  n->dtype = n->in[1]->dtype;
  return true;
}

// %cross_entropy_grad(logits [S, V], targets [S]) -> [S, V].
bool infer_ce_grad(Node *n, Diag *d) {
  (void)d;
  n->shape = n->in[0]->shape;
  n->dtype = n->in[0]->dtype;
  return true;
}
