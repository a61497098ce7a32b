// emit_mil.c — one kernel of the plan as a MIL program in the target's
// dialect (ANE-T07), printed the way Apple's tools print it: typed literals,
// every optional parameter written out (T02), constants in MILBlob v2 files
// (T06), I/O names whose alphabetical order is their order (T05), and
// [1, C, 1, S] fp16 I/O (B01, B02). Same graph, same bytes.
#include "codegen.h"

#include <stdlib.h>
#include <string.h>

typedef struct Emit {
  Arena *a;
  const Graph *g;
  const Kernel *k;
  const ParamSet *ps;
  const TargetProfile *t;
  bool v10;             // program(1.0): verbose scalar literals
  FILE *f;              // the text, into a memory stream
  const char **var;     // per node id: its MIL name in this kernel (own layout)
  const char **plain;   // per node id: its name in plain layout, once converted
  const char **tl;      // per node id: its name in token-last layout, once converted
  int tmp;              // counter for helper values
  const char *dt;       // "fp16" (the ANE's); "fp32" for exact reference runs
  Packing pk;           // dynamic weights: the params in the input
  const char **strip;   // per pack: its vector strip's slice of the input, once made
  IoBlock *in_blocks;   // per kernel input: where it is in which surface
  IoBlock *out_blocks;  // per kernel output
  int nin_surfaces, nout_surfaces;
  KernelMil *out;
} Emit;

static const char *fresh(Emit *e, const char *what) {
  return arena_printf(e->a, "%s_%d", what, e->tmp++);
}

static void put_dims(Emit *e, int rank, const int64_t *dims) {
  fputc('[', e->f);
  for (int i = 0; i < rank; i++)
    fprintf(e->f, "%s%lld", i ? ", " : "", (long long)dims[i]);
  fputc(']', e->f);
}

static void put_type(Emit *e, const char *dtype, int rank, const int64_t *dims) {
  fprintf(e->f, "tensor<%s, ", dtype);
  put_dims(e, rank, dims);
  fputc('>', e->f);
}

// A scalar literal: int32(1) (1.3) or tensor<int32, []>(1) (1.0).
static void put_scalar_open(Emit *e, const char *dtype) {
  if (e->v10)
    fprintf(e->f, "tensor<%s, []>(", dtype);
  else
    fprintf(e->f, "%s(", dtype);
}

static void put_name_attr(Emit *e, const char *name) {
  fputs("[name = ", e->f);
  put_scalar_open(e, "string");
  fprintf(e->f, "\"%s\")]", name);
}

static void put_scalar_type(Emit *e, const char *dtype) {
  if (e->v10)
    fprintf(e->f, "tensor<%s, []>", dtype);
  else
    fputs(dtype, e->f);
}

static void put_float(Emit *e, float v) {
  put_scalar_open(e, e->dt);
  fprintf(e->f, "%a)", e->dt[2] == '1' ? (double)fp16_to_f32(f32_to_fp16(v)) : (double)v);
}

//
// Constants
//
// ` NAME = const()[name = string("NAME"), val = ` after the value's type.
static void put_const_head(Emit *e, const char *name) {
  fprintf(e->f, " %s = const()[name = ", name);
  put_scalar_open(e, "string");
  fprintf(e->f, "\"%s\"), val = ", name);
}

static const char *const_fp16(Emit *e, const char *what, float v) {
  const char *name = fresh(e, what);
  fputs("            ", e->f);
  put_scalar_type(e, e->dt);
  put_const_head(e, name);
  put_float(e, v);
  fputs("];\n", e->f);
  return name;
}

static const char *const_ints(Emit *e, const char *what, int n, const int64_t *v) {
  const char *name = fresh(e, what);
  int64_t len = n;
  fputs("            ", e->f);
  put_type(e, "int32", 1, &len);
  put_const_head(e, name);
  put_type(e, "int32", 1, &len);
  fputs("(", e->f);
  put_dims(e, n, v);
  fputs(")];\n", e->f);
  return name;
}

static const char *const_scalar(Emit *e, const char *what, const char *dtype, const char *text) {
  const char *name = fresh(e, what);
  fputs("            ", e->f);
  put_scalar_type(e, dtype);
  put_const_head(e, name);
  put_scalar_open(e, dtype);
  fprintf(e->f, "%s)];\n", text);
  return name;
}

static const char *const_int(Emit *e, const char *what, int64_t v) {
  char buf[32];
  snprintf(buf, sizeof buf, "%lld", (long long)v);
  return const_scalar(e, what, "int32", buf);
}

static const char *const_bool(Emit *e, const char *what, bool v) {
  return const_scalar(e, what, "bool", v ? "true" : "false");
}

static const char *const_string(Emit *e, const char *what, const char *v) {
  char buf[64];
  snprintf(buf, sizeof buf, "\"%s\"", v);
  return const_scalar(e, what, "string", buf);
}

// The weight file a blob goes to: one per kernel, or one per matrix (T07),
// at @model_path/weights/ as every ANE loader has it. @model_path is the
// kernel's own directory (kernels/NAME/model.mil), so the text names no
// kernel: identical kernels are identical bytes.
static WeightFile *weight_file(Emit *e, const char *name) {
  KernelMil *o = e->out;
  if (o->nfiles && !e->t->weight_file_per_matrix)
    return &o->files[0];
  o->files = arena_grow(e->a, o->files, sizeof *o->files * (size_t)o->nfiles,
                        sizeof *o->files * (size_t)(o->nfiles + 1));
  WeightFile *w = &o->files[o->nfiles++];
  memset(w, 0, sizeof *w);
  w->path = e->t->weight_file_per_matrix ? arena_printf(e->a, "weights/%s.bin", name)
                                         : "weights/weight.bin";
  w->next_offset = 64;
  return w;
}

// A tensor constant: fp16 values into a weight file, BLOBFILE in the text.
static const char *const_blob(Emit *e, const char *what, int rank, const int64_t *dims,
                              const float *v) {
  const char *name = fresh(e, what);
  int64_t n = 1;
  for (int i = 0; i < rank; i++)
    n *= dims[i];
  WeightFile *w = weight_file(e, name);
  bool half = e->dt[2] == '1';
  uint64_t bytes = (uint64_t)n * (half ? 2 : 4);
  void *data = arena_alloc(e->a, (size_t)(bytes ? bytes : 1));
  if (half)
    f32_to_fp16_n(v, data, (size_t)n);
  else
    memcpy(data, v, (size_t)bytes);
  w->blobs = arena_grow(e->a, w->blobs, sizeof *w->blobs * (size_t)w->nblobs,
                        sizeof *w->blobs * (size_t)(w->nblobs + 1));
  w->blobs[w->nblobs++] =
      (MilBlob){half ? MILBLOB_FP16 : MILBLOB_FP32, bytes, (unsigned char *)data};
  uint64_t offset = w->next_offset;
  w->next_offset = (offset + 64 + bytes + 63) / 64 * 64;
  fputs("            ", e->f);
  put_type(e, e->dt, rank, dims);
  put_const_head(e, name);
  put_type(e, e->dt, rank, dims);
  fputs("(BLOBFILE(path = ", e->f);
  put_scalar_open(e, "string");
  fprintf(e->f, "\"@model_path/%s\"), offset = ", w->path);
  put_scalar_open(e, "uint64");
  fprintf(e->f, "%llu)))];\n", (unsigned long long)offset);
  return name;
}

//
// Statements
//
typedef struct Arg {
  const char *name, *value;
} Arg;

static int arg_cmp(const void *a, const void *b) {
  return strcmp(((const Arg *)a)->name, ((const Arg *)b)->name);
}

// `tensor<fp16, dims> var = op(args, sorted by name)[name = string("var")];`
static void put_op(Emit *e, const char *var, const char *op, Arg *args, int nargs, int rank,
                   const int64_t *dims) {
  qsort(args, (size_t)nargs, sizeof *args, arg_cmp);
  fputs("            ", e->f);
  put_type(e, e->dt, rank, dims);
  fprintf(e->f, " %s = %s(", var, op);
  for (int i = 0; i < nargs; i++)
    fprintf(e->f, "%s%s = %s", i ? ", " : "", args[i].name, args[i].value);
  fputc(')', e->f);
  put_name_attr(e, var);
  fputs(";\n", e->f);
}

static const char *emit_reshape(Emit *e, const char *x, int rank, const int64_t *dims) {
  const char *shape = const_ints(e, "shape", rank, dims), *var = fresh(e, "reshape");
  Arg args[] = {{"shape", shape}, {"x", x}};
  put_op(e, var, "reshape", args, 2, rank, dims);
  return var;
}

static const char *emit_transpose(Emit *e, const char *x, int rank, const int64_t *in_dims,
                                  const int64_t *perm) {
  int64_t dims[MAX_RANK + 1];
  for (int i = 0; i < rank; i++)
    dims[i] = in_dims[perm[i]];
  const char *p = const_ints(e, "perm", rank, perm), *var = fresh(e, "transpose");
  Arg args[] = {{"perm", p}, {"x", x}};
  put_op(e, var, "transpose", args, 2, rank, dims);
  return var;
}

//
// Layouts
//
// Logical shape of n padded with leading 1s to rank r.
static void padded_shape(const Node *n, int r, int64_t *dims) {
  int pad = r - n->shape.rank;
  for (int i = 0; i < r; i++)
    dims[i] = i < pad ? 1 : n->shape.dims[i - pad];
}

// [S, D] <-> [D, S] through a 2-D transpose: the token axis first or last.
static const char *swap_token_axis(Emit *e, const char *x, int64_t rows, int64_t cols) {
  int64_t d2[2] = {rows, cols}, perm[2] = {1, 0};
  return emit_transpose(e, emit_reshape(e, x, 2, d2), 2, d2, perm);
}

static int64_t inner_count(const Node *n) { // elements per token
  return n->shape.rank && n->shape.dims[0] ? shape_numel(&n->shape) / n->shape.dims[0] : 1;
}

static const char *as_plain(Emit *e, const Node *n) {
  if (n->layout == LAYOUT_PLAIN || e->plain[n->id])
    return n->layout == LAYOUT_PLAIN ? e->var[n->id] : e->plain[n->id];
  const char *t = swap_token_axis(e, e->var[n->id], inner_count(n), n->shape.dims[0]);
  return e->plain[n->id] = n->shape.rank == 2 ? t : emit_reshape(e, t, n->shape.rank, n->shape.dims);
}

static const char *as_tl(Emit *e, const Node *n) {
  if (n->layout == LAYOUT_TL || e->tl[n->id])
    return n->layout == LAYOUT_TL ? e->var[n->id] : e->tl[n->id];
  int64_t phys[MAX_RANK + 1];
  int rank = tl_phys_shape(n->shape.rank, n->shape.dims, phys);
  const char *t = swap_token_axis(e, e->var[n->id], n->shape.dims[0], inner_count(n));
  return e->tl[n->id] = emit_reshape(e, t, rank, phys);
}

static const Pack *pack_of(const Emit *e, const Node *p) {
  for (int i = 0; i < e->pk.n; i++)
    if (e->pk.packs[i].param == p)
      return &e->pk.packs[i];
  return NULL;
}

// Rows [row, row + rows) and columns [col, col + cols) of a surface.
static const char *surface_slice(Emit *e, const char *x, int64_t row, int64_t rows, int64_t col,
                                 int64_t cols, const char *what) {
  int64_t begin[4] = {0, row, 0, col}, size[4] = {1, rows, 1, cols};
  const char *var = fresh(e, what);
  Arg args[] = {{"begin", const_ints(e, "begin", 4, begin)},
                {"size", const_ints(e, "size", 4, size)}, {"x", x}};
  put_op(e, var, "slice_by_size", args, 3, 4, size);
  return var;
}

// The vector strip at column `col` (a multiple of STRIP_ALIGN): one slice
// of the input, from that aligned column (ANE-B14), over the rows and lanes
// its vectors use; made at the first use and shared by its lanes.
static const char *vector_strip(Emit *e, int64_t col) {
  int64_t rows = 0, cols = 0;
  int first = -1;
  for (int i = 0; i < e->pk.n; i++) {
    const Pack *q = &e->pk.packs[i];
    if (q->col < col || q->col >= col + STRIP_ALIGN)
      continue;
    if (first < 0)
      first = i;
    if (e->strip[i])
      return e->strip[i];
    rows = q->row + q->rows > rows ? q->row + q->rows : rows;
    cols = q->col + q->cols - col > cols ? q->col + q->cols - col : cols;
  }
  return e->strip[first] = surface_slice(e, "in00", 0, rows, col, cols, "strip");
}

// A param's block in the input (its first `rows` rows): [1, rows, 1, cols].
// A vector's lane (an unaligned column) is sliced from its strip's slice.
static const char *packed_slice(Emit *e, const Pack *p, int64_t rows) {
  int64_t lane = p->col % STRIP_ALIGN;
  if (!lane)
    return surface_slice(e, "in00", p->row, rows, p->col, p->cols, "packed");
  return surface_slice(e, vector_strip(e, p->col - lane), p->row, rows, lane, p->cols, "packed");
}

// A packed matrix [a, b] as a rank-r operand in layout L, for any use but a
// linear's weight (the backward's products).
static const char *packed_matrix(Emit *e, const Node *n, const Pack *p, Layout L, int r) {
  int64_t block[2] = {p->rows, p->cols}, perm[2] = {1, 0};
  const char *m = emit_reshape(e, packed_slice(e, p, p->rows), 2, block); // [a, b] or [b, a]
  if (p->mode == PACK_TRANSPOSED)
    m = emit_transpose(e, m, 2, block, perm);
  int64_t logical[MAX_RANK], phys[MAX_RANK + 1];
  padded_shape(n, r, logical);
  if (L == LAYOUT_PLAIN)
    return r == 2 ? m : emit_reshape(e, m, r, logical);
  const char *t = swap_token_axis(e, m, logical[0], shape_numel(&n->shape) / logical[0]);
  return emit_reshape(e, t, tl_phys_shape(r, logical, phys), phys);
}

// A packed vector param as an operand of a rank-r op in layout L.
static const char *packed_vector(Emit *e, const Node *n, const Pack *p, Layout L, int r) {
  int64_t logical[MAX_RANK], phys[MAX_RANK + 1];
  padded_shape(n, r, logical);
  int rank = L == LAYOUT_PLAIN ? r : tl_phys_shape(r, logical, phys);
  return emit_reshape(e, packed_slice(e, p, n->shape.dims[0]), rank,
                      L == LAYOUT_PLAIN ? logical : phys);
}

// A source node as an operand of a rank-r op in layout L.
static const char *source_operand(Emit *e, const Node *n, Layout L, int r) {
  const Pack *pk = pack_of(e, n);
  if (pk && pk->mode == PACK_VECTOR)
    return packed_vector(e, n, pk, L, r);
  if (pk)
    return packed_matrix(e, n, pk, L, r);
  const float *v = params_source_values(e->ps, n);
  if (shape_numel(&n->shape) == 1 && n->op == OP_CONST)
    return const_fp16(e, "c", v[0]);
  int64_t logical[MAX_RANK], phys[MAX_RANK + 1];
  padded_shape(n, r, logical);
  if (L == LAYOUT_PLAIN)
    return const_blob(e, "w", r, logical, v);
  int rank = tl_phys_shape(r, logical, phys);
  float *t = arena_alloc(e->a, sizeof(float) * (size_t)(shape_numel(&n->shape) + 1));
  int64_t count = shape_numel(&n->shape);
  values_token_last(v, logical[0], logical[0] ? count / logical[0] : 0, t);
  return const_blob(e, "w", rank, phys, t);
}

// Operand n of a rank-r op computing in layout L.
static const char *operand(Emit *e, const Node *n, Layout L, int r) {
  if (node_is_const(n))
    return source_operand(e, n, L, r);
  if (n->shape.rank == r)
    return L == LAYOUT_TL ? as_tl(e, n) : as_plain(e, n);
  int64_t logical[MAX_RANK], phys[MAX_RANK + 1];
  padded_shape(n, r, logical);
  const char *p = emit_reshape(e, as_plain(e, n), r, logical);
  if (L == LAYOUT_PLAIN)
    return p;
  const char *t = swap_token_axis(e, p, logical[0], shape_numel(&n->shape) / logical[0]);
  return emit_reshape(e, t, tl_phys_shape(r, logical, phys), phys);
}

//
// Ops
//
static int phys_axis(const Node *n, int axis) { // n's logical axis in its layout
  if (n->layout != LAYOUT_TL)
    return axis;
  int64_t dims[MAX_RANK + 1];
  int rank = node_phys_shape(n, dims);
  return axis == 0 ? rank - 1 : axis;
}

static const char *gelu_mode(GeluMode m) {
  return m == GELU_TANH ? "TANH_APPROXIMATION" : "EXACT";
}

static void emit_binary(Emit *e, const Node *n, const char *var, int rank, const int64_t *dims) {
  static const char *const mil[] = {[OP_ADD] = "add", [OP_SUB] = "sub", [OP_MUL] = "mul",
                                    [OP_DIV] = "real_div"};
  Arg args[] = {{"x", operand(e, n->in[0], n->layout, n->shape.rank)},
                {"y", operand(e, n->in[1], n->layout, n->shape.rank)}};
  put_op(e, var, mil[n->op], args, 2, rank, dims);
}

// x broadcast to n's shape as x + zeros, the zeros only as large as the
// axes x lacks (an add broadcasts; MIL's tile is not needed).
static void emit_broadcast(Emit *e, const Node *n, const char *var, int rank,
                           const int64_t *dims) {
  const Node *x = n->in[0];
  int r = n->shape.rank, pad = r - x->shape.rank;
  int64_t zl[MAX_RANK], phys[MAX_RANK + 1];
  for (int i = 0; i < r; i++)
    zl[i] = i >= pad && x->shape.dims[i - pad] == n->shape.dims[i] ? 1 : n->shape.dims[i];
  int64_t count = 1;
  for (int i = 0; i < r; i++)
    count *= zl[i];
  float *zeros = arena_alloc(e->a, sizeof(float) * (size_t)(count + 1));
  Shape zs = {.rank = r};
  memcpy(zs.dims, zl, sizeof(int64_t) * (size_t)r);
  const char *z = n->layout == LAYOUT_PLAIN
                      ? const_blob(e, "zeros", r, zl, zeros)
                      : const_blob(e, "zeros", tl_phys_shape(r, zs.dims, phys), phys, zeros);
  Arg args[] = {{"x", operand(e, x, n->layout, r)}, {"y", z}};
  put_op(e, var, "add", args, 2, rank, dims);
}

// Unary ops; SILU as x * sigmoid(x) and NEG as x * -1 (ANE-T11), rsqrt as
// pow(x, -0.5) where the profile takes the anchors' forms (T08), else rsqrt
// and log with their epsilon written out.
static void emit_unary(Emit *e, const Node *n, const char *var, int rank, const int64_t *dims) {
  const char *x = operand(e, n->in[0], n->layout, n->shape.rank);
  Arg args[2] = {{"x", x}, {NULL, NULL}};
  int nargs = 1;
  const char *op = op_info[n->op].mil;
  if (n->op == OP_SILU) {
    const char *sig = fresh(e, "sigmoid");
    put_op(e, sig, "sigmoid", args, 1, rank, dims);
    args[1] = (Arg){"y", sig}, op = "mul", nargs = 2;
  } else if (n->op == OP_NEG) {
    args[1] = (Arg){"y", const_fp16(e, "minus_one", -1.0f)}, nargs = 2;
  } else if (n->op == OP_POW) {
    args[1] = (Arg){"y", const_fp16(e, "exponent", (float)n->value)}, nargs = 2;
  } else if (n->op == OP_RSQRT && e->t->anchor_op_forms) { // the anchors' form
    args[1] = (Arg){"y", const_fp16(e, "exponent", -0.5f)}, op = "pow", nargs = 2;
  } else if (n->op == OP_RSQRT || n->op == OP_LOG) {
    args[1] = (Arg){"epsilon", const_fp16(e, "epsilon", 0.0f)}, nargs = 2;
  } else if (n->op == OP_GELU) {
    args[1] = (Arg){"mode", const_string(e, "mode", gelu_mode(n->gelu))}, nargs = 2;
  }
  put_op(e, var, op, args, nargs, rank, dims);
}

// Reductions; a mean as reduce_sum then mul by 1/N where the profile takes
// the anchors' forms (T08: maderix, fspecii), else reduce_mean.
static void emit_reduce(Emit *e, const Node *n, const char *var, int rank, const int64_t *dims) {
  const Node *x = n->in[0];
  const char *xv = operand(e, x, n->layout, x->shape.rank);
  int64_t axes[MAX_RANK + 1];
  int naxes = 0;
  if (n->axis == AXIS_ALL)
    for (int i = 0; i < x->shape.rank; i++)
      axes[naxes++] = i;
  else
    axes[naxes++] = phys_axis(n, n->axis);
  Arg args[] = {{"axes", const_ints(e, "axes", naxes, axes)},
                {"keep_dims", const_bool(e, "keep_dims", n->axis != AXIS_ALL)}, {"x", xv}};
  if (n->op != OP_MEAN || !e->t->anchor_op_forms) {
    put_op(e, var, op_info[n->op].mil, args, 3, rank, dims);
    return;
  }
  int64_t count = n->axis == AXIS_ALL ? shape_numel(&x->shape) : x->shape.dims[n->axis];
  const char *sum = fresh(e, "sum");
  put_op(e, sum, "reduce_sum", args, 3, rank, dims);
  Arg scale[] = {{"x", sum}, {"y", const_fp16(e, "inv_count", 1.0f / (float)count)}};
  put_op(e, var, "mul", scale, 2, rank, dims);
}

static void emit_softmax(Emit *e, const Node *n, const char *var, int rank, const int64_t *dims) {
  Arg args[] = {{"axis", const_int(e, "axis", phys_axis(n, n->axis))},
                {"x", operand(e, n->in[0], n->layout, n->shape.rank)}};
  put_op(e, var, "softmax", args, 2, rank, dims);
}

// A linear x Wᵀ on [1, in, 1, S] as a 1x1 conv with W as [out, in, 1, 1].
static void emit_conv(Emit *e, const Node *n, const char *var, int rank, const int64_t *dims) {
  const Node *w = n->in[1];
  int64_t wd[4] = {w->shape.dims[0], w->shape.dims[1], 1, 1}, two[2] = {1, 1}, pad[4] = {0};
  const char *x = operand(e, n->in[0], LAYOUT_TL, 2);
  const char *wv = const_blob(e, "weight", 4, wd, params_source_values(e->ps, w));
  Arg args[] = {{"dilations", const_ints(e, "dilations", 2, two)},
                {"groups", const_int(e, "groups", 1)},
                {"pad", const_ints(e, "pad", 4, pad)},
                {"pad_type", const_string(e, "pad_type", "valid")},
                {"strides", const_ints(e, "strides", 2, two)},
                {"weight", wv}, {"x", x}};
  put_op(e, var, "conv", args, 7, rank, dims);
}

// Zeros appended along `axis` of x (rank, dims) up to `to`: the contraction
// of a matmul padded to a multiple of 32 (ANE-B10) changes no product.
static const char *pad_axis_as(Emit *e, const char *var, const char *x, int rank, int64_t *dims,
                               int axis, int64_t to) {
  int64_t zd[MAX_RANK];
  memcpy(zd, dims, sizeof(int64_t) * (size_t)rank);
  zd[axis] = to - dims[axis];
  int64_t nz = 1;
  for (int i = 0; i < rank; i++)
    nz *= zd[i];
  float *zeros = arena_alloc(e->a, sizeof(float) * (size_t)nz);
  char values[256];
  snprintf(values, sizeof values, "(%s, %s)", x, const_blob(e, "zeros", rank, zd, zeros));
  dims[axis] = to;
  var = var ? var : fresh(e, "padded");
  Arg args[] = {{"axis", const_int(e, "axis", axis)},
                {"interleave", const_bool(e, "interleave", false)},
                {"values", arena_strdup(e->a, values)}};
  put_op(e, var, "concat", args, 3, rank, dims);
  return var;
}

static const char *pad_axis(Emit *e, const char *x, int rank, int64_t *dims, int axis,
                            int64_t to) {
  return pad_axis_as(e, NULL, x, rank, dims, axis, to);
}

// One operand of a matmul: its name, rank, dims and transpose flag.
typedef struct MmArg {
  const char *v;
  int rank;
  int64_t dims[MAX_RANK];
  bool t;
} MmArg;

// var = matmul(x, y), the contraction padded with zeros to the target's
// multiple (ANE-B10).
static void put_matmul(Emit *e, const char *var, MmArg x, MmArg y, int rank,
                       const int64_t *dims) {
  int xk = x.t ? x.rank - 2 : x.rank - 1, yk = y.t ? y.rank - 1 : y.rank - 2;
  int m = e->t->matmul_k_multiple;
  if (m > 1 && x.dims[xk] % m) {
    int64_t to = (x.dims[xk] + m - 1) / m * m;
    x.v = pad_axis(e, x.v, x.rank, x.dims, xk, to);
    y.v = pad_axis(e, y.v, y.rank, y.dims, yk, to);
  }
  Arg args[] = {{"transpose_x", const_bool(e, "transpose_x", x.t)},
                {"transpose_y", const_bool(e, "transpose_y", y.t)}, {"x", x.v}, {"y", y.v}};
  put_op(e, var, "matmul", args, 4, rank, dims);
}

static MmArg mm_arg(const char *v, int rank, const int64_t *dims, bool t) {
  MmArg a = {v, rank, {0}, t};
  memcpy(a.dims, dims, sizeof(int64_t) * (size_t)rank);
  return a;
}

static void emit_matmul(Emit *e, const Node *n, const char *var, int rank, const int64_t *dims) {
  const Node *x = n->in[0], *y = n->in[1];
  MmArg xa = mm_arg(operand(e, x, LAYOUT_PLAIN, x->shape.rank), x->shape.rank, x->shape.dims,
                    n->transpose_a);
  MmArg ya = mm_arg(operand(e, y, LAYOUT_PLAIN, y->shape.rank), y->shape.rank, y->shape.dims,
                    n->transpose_b);
  put_matmul(e, var, xa, ya, rank, dims);
}

// A linear whose weight is packed in the input (dynamic weights): on the
// [in, S] activation, out = W x as a matmul with the [C, cols] block: Wᵀ
// (transposed, the block is [in, out]) or W itself (the block is [out, in]).
static void emit_packed_linear(Emit *e, const Node *n, const Pack *p, const char *var, int rank,
                               const int64_t *dims) {
  const Node *w = n->in[1];
  int64_t out = w->shape.dims[0], in = w->shape.dims[1], s = n->shape.dims[0];
  int64_t xd[2] = {in, s}, bd[2] = {p->rows, p->cols};
  const char *x = emit_reshape(e, operand(e, n->in[0], LAYOUT_TL, 2), 2, xd);
  const char *b = emit_reshape(e, packed_slice(e, p, p->rows), 2, bd);
  int64_t yd[2] = {out, s};
  const char *y = fresh(e, "linear");
  put_matmul(e, y, mm_arg(b, 2, bd, p->mode == PACK_TRANSPOSED), mm_arg(x, 2, xd, false), 2, yd);
  Arg args[] = {{"shape", const_ints(e, "shape", rank, dims)}, {"x", y}};
  put_op(e, var, "reshape", args, 2, rank, dims);
}

static void emit_reshape_op(Emit *e, const Node *n, const char *var, int rank,
                            const int64_t *dims) {
  const Node *x = n->in[0];
  Arg args[] = {{"shape", const_ints(e, "shape", rank, dims)},
                {"x", operand(e, x, n->layout, x->shape.rank)}};
  put_op(e, var, "reshape", args, 2, rank, dims);
}

// A transpose between layouts in one transpose and one reshape: token-last
// rank >= 3 to plain (the token axis is physical axis r), or plain to
// token-last (the output's first axis goes last).
static bool emit_transpose_across(Emit *e, const Node *n, const char *var, int rank,
                                  const int64_t *dims) {
  const Node *x = n->in[0];
  int r = n->shape.rank;
  int64_t perm[MAX_RANK + 1], xd[MAX_RANK + 1];
  int tr = r;
  node_phys_shape(x, xd);
  if (x->layout == LAYOUT_TL && x->shape.rank >= 3) { // [1, d1.., S] -> logical order
    perm[0] = 0;
    for (int j = 0; j < r; j++)
      perm[j + 1] = n->perm[j] == 0 ? r : n->perm[j];
    tr = r + 1;
  } else if (x->layout == LAYOUT_PLAIN && n->layout == LAYOUT_TL && r >= 3) {
    for (int j = 1; j < r; j++)
      perm[j - 1] = n->perm[j];
    perm[r - 1] = n->perm[0];
  } else {
    return false;
  }
  const char *t = emit_transpose(e, e->var[x->id], tr, xd, perm);
  Arg args[] = {{"shape", const_ints(e, "shape", rank, dims)}, {"x", t}};
  put_op(e, var, "reshape", args, 2, rank, dims);
  return true;
}

static void emit_transpose_op(Emit *e, const Node *n, const char *var, int rank,
                              const int64_t *dims) {
  if (n->layout != n->in[0]->layout && emit_transpose_across(e, n, var, rank, dims))
    return;
  int64_t perm[MAX_RANK + 1];
  for (int i = 0; i < rank; i++)
    perm[i] = i; // token-last: the token axis stays last, the rest as asked
  for (int i = 0; i < n->shape.rank; i++)
    if (n->layout == LAYOUT_PLAIN)
      perm[i] = n->perm[i];
    else if (i > 0 && n->shape.rank > 2)
      perm[i] = n->perm[i];
  Arg args[] = {{"perm", const_ints(e, "perm", rank, perm)},
                {"x", operand(e, n->in[0], n->layout, n->shape.rank)}};
  put_op(e, var, "transpose", args, 2, rank, dims);
}

static void emit_slice(Emit *e, const Node *n, const char *var, int rank, const int64_t *dims) {
  int64_t begin[MAX_RANK + 1] = {0};
  begin[phys_axis(n, n->axis)] = n->begin;
  Arg args[] = {{"begin", const_ints(e, "begin", rank, begin)},
                {"size", const_ints(e, "size", rank, dims)},
                {"x", operand(e, n->in[0], n->layout, n->shape.rank)}};
  put_op(e, var, "slice_by_size", args, 3, rank, dims);
}

static void emit_concat(Emit *e, const Node *n, const char *var, int rank, const int64_t *dims) {
  size_t cap = 16;
  for (int k = 0; k < n->nin; k++)
    cap += 64;
  char *values = arena_alloc(e->a, cap);
  strcpy(values, "(");
  for (int k = 0; k < n->nin; k++) {
    strcat(values, k ? ", " : "");
    strcat(values, operand(e, n->in[k], n->layout, n->shape.rank));
  }
  strcat(values, ")");
  Arg args[] = {{"axis", const_int(e, "axis", phys_axis(n, n->axis))},
                {"interleave", const_bool(e, "interleave", false)},
                {"values", values}};
  put_op(e, var, "concat", args, 3, rank, dims);
}

static void emit_node(Emit *e, const Node *n, const char *var) {
  int64_t dims[MAX_RANK + 1];
  int rank = node_phys_shape(n, dims);
  switch (n->op) {
  case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV:
    emit_binary(e, n, var, rank, dims); break;
  case OP_SUM: case OP_MEAN: case OP_MAX:
    emit_reduce(e, n, var, rank, dims); break;
  case OP_SOFTMAX: emit_softmax(e, n, var, rank, dims); break;
  case OP_MATMUL:
    if (n->as_conv && pack_of(e, n->in[1]))
      emit_packed_linear(e, n, pack_of(e, n->in[1]), var, rank, dims);
    else if (n->as_conv)
      emit_conv(e, n, var, rank, dims);
    else
      emit_matmul(e, n, var, rank, dims);
    break;
  case OP_RESHAPE: emit_reshape_op(e, n, var, rank, dims); break;
  case OP_TRANSPOSE: emit_transpose_op(e, n, var, rank, dims); break;
  case OP_SLICE: emit_slice(e, n, var, rank, dims); break;
  case OP_CONCAT: emit_concat(e, n, var, rank, dims); break;
  case OP_BROADCAST: emit_broadcast(e, n, var, rank, dims); break;
  default: emit_unary(e, n, var, rank, dims); break;
  }
}

//
// The program
//
// buildInfo: the keys of every program known to run on an ANE through the
// in-memory path (maderix, Orion, fspecii: Apple's printer's for program(1.3);
// maderix PR #6's one key on M1), then anec's own.
static void put_header(Emit *e) {
  fprintf(e->f, "program(%s)\n", e->t->program);
  if (e->v10)
    fputs("[buildInfo = dict<tensor<string, []>, tensor<string, []>>({"
          "{\"coremlc-version\", \"3505.4.1\"}, ", e->f);
  else
    fputs("[buildInfo = dict<string, string>({{\"coremlc-component-MIL\", \"3510.2.1\"}, "
          "{\"coremlc-version\", \"3505.4.1\"}, {\"coremltools-component-milinternal\", \"\"}, "
          "{\"coremltools-version\", \"9.0\"}, ", e->f);
  fprintf(e->f, "{\"anec\", \"%s\"}, {\"anec-target\", \"%s\"}})]\n{\n", ANEC_VERSION,
          e->t->name);
}

// Inputs named in00, in01, ... and outputs out00, ...: alphabetical order is
// declaration order (ANE-T05); one per surface.
static void put_signature(Emit *e) {
  int ki = (int)(e->k - e->g->plan->kernels);
  fprintf(e->f, "    func main<%s>(", e->t->opset);
  for (int i = 0; i < e->nin_surfaces; i++) {
    int64_t io[4];
    kernel_surface_shape(e->g, ki, true, i, io);
    fputs(i ? ", " : "", e->f);
    put_type(e, e->dt, 4, io);
    fprintf(e->f, " in%02d", i);
  }
  fputs(") {\n", e->f);
}

// Whether a kernel holds n in its [1, C, 1, S] shape already (no reshape).
static bool held_as_io(const Node *n) {
  int64_t io[4], phys[MAX_RANK + 1];
  node_io_shape(n, io);
  return node_phys_shape(n, phys) == 4 && !memcmp(io, phys, sizeof io);
}

// Whether a value's block is the whole of its surface.
static bool whole_surface(Emit *e, const IoBlock *b, bool input) {
  int64_t d[4];
  kernel_surface_shape(e->g, (int)(e->k - e->g->plan->kernels), input, b->surface, d);
  return b->row == 0 && b->rows == d[1] && b->cols == d[3];
}

// Kernel input i in its layout's shape: its block of the surface, reshaped.
static void bind_input(Emit *e, int i) {
  const Node *n = e->k->inputs[i];
  const IoBlock *b = &e->in_blocks[i];
  const char *x = e->out->in_names[i] = arena_printf(e->a, "in%02d", b->surface);
  if (!whole_surface(e, b, true))
    x = surface_slice(e, x, b->row, b->rows, 0, b->cols, "activation");
  int64_t phys[MAX_RANK + 1];
  int rank = node_phys_shape(n, phys);
  e->var[n->id] = held_as_io(n) ? x : emit_reshape(e, x, rank, phys);
}

// The output's name for a node that is output i as it is, else NULL.
static const char *output_name(Emit *e, const Node *n) {
  for (int i = 0; i < e->k->noutputs; i++)
    if (e->k->outputs[i] == n && held_as_io(n) && whole_surface(e, &e->out_blocks[i], false) &&
        n->op != OP_INPUT)
      return e->out->out_names[i] = arena_printf(e->a, "out%02d", i);
  return NULL;
}

// Output i as its [1, rows, 1, width] block: reshaped and padded with unused
// columns to the surface's width (ANE-B04/B07), named `var` (NULL: fresh).
static const char *output_block(Emit *e, int i, const char *var) {
  const Node *n = e->k->outputs[i];
  int64_t io[4], surface[4];
  node_io_shape(n, io);
  kernel_surface_shape(e->g, (int)(e->k - e->g->plan->kernels), false, e->out_blocks[i].surface,
                       surface);
  bool pad = surface[3] != io[3], shaped = held_as_io(n);
  const char *x = e->var[n->id];
  if (!shaped) {
    const char *to = !var ? fresh(e, "block") : pad ? fresh(e, "unpadded") : var;
    Arg args[] = {{"shape", const_ints(e, "shape", 4, io)}, {"x", x}};
    put_op(e, to, "reshape", args, 2, 4, io);
    x = to;
  }
  return pad ? pad_axis_as(e, var, x, 4, io, 3, surface[3]) : x;
}

// Several outputs in one surface: their blocks concatenated on the rows.
static void bind_packed_outputs(Emit *e) {
  size_t cap = 16 * (size_t)e->k->noutputs + 8, len = 0;
  char *values = arena_alloc(e->a, cap);
  for (int i = 0; i < e->k->noutputs; i++) {
    e->out->out_names[i] = "out00";
    len += (size_t)snprintf(values + len, cap - len, "%s%s", i ? ", " : "(", output_block(e, i, NULL));
  }
  snprintf(values + len, cap - len, ")");
  int64_t d[4];
  kernel_surface_shape(e->g, (int)(e->k - e->g->plan->kernels), false, 0, d);
  Arg args[] = {{"axis", const_int(e, "axis", 1)},
                {"interleave", const_bool(e, "interleave", false)}, {"values", values}};
  put_op(e, "out00", "concat", args, 3, 4, d);
}

static void bind_outputs(Emit *e) {
  const Kernel *k = e->k;
  if (e->nout_surfaces == 1 && k->noutputs > 1)
    bind_packed_outputs(e);
  for (int i = 0; i < k->noutputs && e->nout_surfaces == k->noutputs; i++)
    if (!e->out->out_names[i]) { // else the op that computes it is named out%02d
      e->out->out_names[i] = arena_printf(e->a, "out%02d", i);
      const char *x = output_block(e, i, e->out->out_names[i]);
      if (strcmp(x, e->out->out_names[i])) { // already shaped: a named copy
        int64_t io[4];
        kernel_surface_shape(e->g, (int)(k - e->g->plan->kernels), false, i, io);
        Arg args[] = {{"shape", const_ints(e, "shape", 4, io)}, {"x", x}};
        put_op(e, e->out->out_names[i], "reshape", args, 2, 4, io);
      }
    }
  fputs("        } -> (", e->f);
  for (int i = 0; i < e->nout_surfaces; i++)
    fprintf(e->f, "%sout%02d", i ? ", " : "", i);
  fputs(");\n}\n", e->f);
}

static bool params_present(const Emit *e, Diag *d) {
  for (int i = 0; i < e->k->nnodes; i++)
    for (int j = 0; j < e->k->nodes[i]->nin; j++) {
      const Node *p = e->k->nodes[i]->in[j];
      if (p->op == OP_PARAM && !params_get(e->ps, p)) {
        diag_error(d, p->loc, "no value for parameter '%s'", p->name);
        return false;
      }
    }
  return true;
}

bool emit_kernel(Arena *a, const Graph *g, int ki, const ParamSet *ps, bool fp32, KernelMil *out,
                 Diag *d) {
  const Kernel *k = &g->plan->kernels[ki];
  memset(out, 0, sizeof *out);
  Emit e = {.a = a, .g = g, .k = k, .ps = ps, .t = g->target,
            .v10 = !strcmp(g->target->program, "1.0"), .dt = fp32 ? "fp32" : "fp16", .out = out};
  if (!params_present(&e, d))
    return false;
  kernel_packing(g, ki, &e.pk);
  e.strip = arena_alloc(a, sizeof(char *) * (size_t)(e.pk.n + 1));
  e.in_blocks = arena_alloc(a, sizeof(IoBlock) * (size_t)(k->ninputs + 1));
  e.out_blocks = arena_alloc(a, sizeof(IoBlock) * (size_t)(k->noutputs + 1));
  e.nin_surfaces = kernel_io_blocks(g, ki, true, e.in_blocks);
  e.nout_surfaces = kernel_io_blocks(g, ki, false, e.out_blocks);
  e.var = arena_alloc(a, sizeof(char *) * (size_t)g->nnodes);
  e.plain = arena_alloc(a, sizeof(char *) * (size_t)g->nnodes);
  e.tl = arena_alloc(a, sizeof(char *) * (size_t)g->nnodes);
  out->in_names = arena_alloc(a, sizeof(char *) * (size_t)(k->ninputs + 1));
  out->out_names = arena_alloc(a, sizeof(char *) * (size_t)(k->noutputs + 1));
  e.f = open_memstream(&out->text, &out->len);
  if (!e.f)
    return false;
  put_header(&e);
  put_signature(&e);
  for (int i = 0; i < k->ninputs; i++)
    bind_input(&e, i);
  for (int i = 0; i < k->nnodes; i++) {
    const Node *n = k->nodes[i];
    const char *out_name = output_name(&e, n);
    const char *op = op_info[n->op].name;
    e.var[n->id] = out_name ? out_name : arena_printf(a, "op%d_%s", i, op + (*op == '%'));
    emit_node(&e, n, e.var[n->id]);
  }
  bind_outputs(&e);
  return fclose(e.f) == 0;
}
