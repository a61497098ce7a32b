// exec.c — the reference executor's frame: prepares a MIL function once
// (a buffer per variable with its static shape, constants and BLOBFILE
// weights loaded, every op's operands and parameters checked, a memory plan
// that reuses buffers by liveness), then runs it many times with ANE
// numerics: fp16 storage after every op, fp32 arithmetic (exec_ops.c), and
// by default the ANE's numeric cliffs (exec.h: products saturate as this
// file stores them; the narrow sums are exec_ops.c's).
#include "exec-impl.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { ALIGN = 64 };

typedef struct Scratch {
  unsigned char *base;
  size_t cap, used, want; // want: bytes asked for during the current step
  void **extra;           // blocks past cap, freed when the step ends
  int nextra, capextra;
} Scratch;

struct Exec {
  Arena arena;            // steps, parameters, names
  const MilProgram *p;
  const MilFunc *f;
  ExecPrecision prec;
  bool quirks;            // the ANE quirks (exec.h): EXEC_FP16 only
  bool no_fusion;
  Buf *bufs;              // [0, f->nvars): the variables; then literals
  int nbufs, capbufs;
  Step *steps;
  int nsteps;
  void **slabs;           // the memory plan's blocks
  int nslabs;
  Scratch scratch;
};

struct Prep {
  Exec *e;
  RtDiag *d;
  MilBlobFile *files;     // weight files opened so far
  int nfiles;
  bool failed;
};

static void *aligned(size_t n) {
  void *p = NULL;
  return posix_memalign(&p, ALIGN, n ? (n + ALIGN - 1) / ALIGN * ALIGN : ALIGN) ? NULL : p;
}

static size_t elem_size(const Exec *e, const Buf *b) {
  return b->is_int || e->prec == EXEC_FP32 ? 4 : 2;
}

// The dtype b is stored in: int32, else fp32 or fp16 by precision.
static MilDType stored_dtype(const Exec *e, const Buf *b) {
  return b->is_int ? MIL_INT32 : e->prec == EXEC_FP32 ? MIL_FP32 : MIL_FP16;
}

//
// Shapes
//

void dims_strides(int rank, const int64_t *dims, int64_t *strides) {
  int64_t s = 1;
  for (int i = rank - 1; i >= 0; i--) {
    strides[i] = s;
    s *= dims[i];
  }
}

int64_t dims_offset(int64_t r, int rank, const int64_t *dims, const int64_t *strides) {
  int64_t off = 0;
  for (int i = rank - 1; i >= 0 && r; i--) {
    off += r % dims[i] * strides[i];
    r /= dims[i];
  }
  return off;
}

//
// Prepare-time helpers
//

bool prep_error(Prep *P, MilLoc loc, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  mil_error_at(P->d, P->e->p, loc, "%s", msg);
  P->failed = true;
  return false;
}

MilLoc prep_loc(const Step *s, const char *param) {
  const MilArg *a = param ? mil_arg(s->op, param) : NULL;
  if (a)
    return a->loc;
  const MilAttr *at = param ? mil_attr(s->op->attrs, s->op->nattrs, param) : NULL;
  return at ? at->loc : s->op->loc;
}

void *prep_alloc(Prep *P, size_t n) {
  return arena_alloc(&P->e->arena, n);
}

const Buf *prep_buf(const Prep *P, int buf) {
  return &P->e->bufs[buf];
}

// A buffer's shape and storage kind from a declared type.
static void buf_init(Buf *b, const char *name, const MilType *t, MilLoc loc) {
  memset(b, 0, sizeof *b);
  b->name = name;
  b->loc = loc;
  b->slab = b->alias = -1;
  b->last_use = -1;
  if (!t || t->kind != MIL_T_TENSOR || t->dtype == MIL_STRING)
    return;
  b->tensor = true;
  b->is_int = !mil_dtype_is_float(t->dtype);
  b->rank = t->rank;
  memcpy(b->dims, t->dims, sizeof b->dims);
  b->count = rt_numel(t->rank, t->dims);
  b->known = b->count >= 0;
}

static int buf_add(Exec *e, const char *name, const MilType *t, MilLoc loc) {
  if (e->nbufs == e->capbufs) {
    e->capbufs = e->capbufs ? 2 * e->capbufs : 64;
    Buf *nb = realloc(e->bufs, (size_t)e->capbufs * sizeof *nb);
    if (!nb)
      abort();
    e->bufs = nb;
  }
  buf_init(&e->bufs[e->nbufs], name, t, loc);
  return e->nbufs++;
}

//
// Constants and weights
//

// Storage for a constant: the data, and in fp16 precision its fp32 copy.
static bool buf_alloc_fixed(Prep *P, Buf *b) {
  Exec *e = P->e;
  b->data = aligned((size_t)b->count * elem_size(e, b));
  b->f32 = !b->is_int && e->prec == EXEC_FP16 ? aligned((size_t)b->count * 4) : NULL;
  b->owned = b->fixed = true;
  if (b->data && (b->f32 || b->is_int || e->prec == EXEC_FP32))
    return true;
  return prep_error(P, b->loc, "out of memory for constant '%s'", b->name);
}

// Stores fp32 values into a constant's storage (rounding to fp16 if needed).
static void fixed_store_f32(const Exec *e, Buf *b, const float *v) {
  if (e->prec == EXEC_FP32) {
    memcpy(b->data, v, (size_t)b->count * 4);
    return;
  }
  f32_to_fp16_n(v, b->data, (size_t)b->count);
  fp16_to_f32_n(b->data, b->f32, (size_t)b->count);
}

static bool fill_literal(Prep *P, Buf *b, const MilValue *v) {
  if (v->count != b->count)
    return prep_error(P, v->loc, "the value has %lld elements, its type %lld",
                      (long long)v->count, (long long)b->count);
  if (b->is_int) {
    int32_t *o = b->data;
    for (int64_t i = 0; i < b->count; i++) {
      if (v->i[i] < INT32_MIN || v->i[i] > INT32_MAX)
        return prep_error(P, v->loc, "value %lld does not fit the executor's int32",
                          (long long)v->i[i]);
      o[i] = (int32_t)v->i[i];
    }
    return true;
  }
  float *tmp = malloc((size_t)b->count * 4 + 4);
  if (!tmp)
    return prep_error(P, v->loc, "out of memory");
  for (int64_t i = 0; i < b->count; i++)
    tmp[i] = (float)v->f[i];
  fixed_store_f32(P->e, b, tmp);
  free(tmp);
  return true;
}

static const MilBlobFile *open_weights(Prep *P, const char *path) {
  for (int i = 0; i < P->nfiles; i++)
    if (!strcmp(P->files[i].path, path))
      return &P->files[i];
  MilBlobFile f;
  if (!milblob_open(&f, path, P->d))
    return NULL;
  P->files = realloc(P->files, (size_t)(P->nfiles + 1) * sizeof *P->files);
  if (!P->files)
    abort();
  P->files[P->nfiles] = f;
  return &P->files[P->nfiles++];
}

// The blob's elements as fp32 or int32, into out (count elements).
static bool blob_convert(const MilBlob *bl, int64_t count, bool is_int, void *out) {
  static const unsigned char width[16] = {[MILBLOB_FP16] = 2, [MILBLOB_FP32] = 4,
                                          [MILBLOB_UINT8] = 1, [MILBLOB_INT8] = 1,
                                          [MILBLOB_BF16] = 2, [MILBLOB_INT16] = 2,
                                          [MILBLOB_UINT16] = 2, [MILBLOB_INT32] = 4,
                                          [MILBLOB_UINT32] = 4};
  unsigned w = bl->dtype < 16 ? width[bl->dtype] : 0;
  bool float_blob = bl->dtype == MILBLOB_FP16 || bl->dtype == MILBLOB_FP32 ||
                    bl->dtype == MILBLOB_BF16;
  if (!w || float_blob == is_int || bl->size != (uint64_t)count * w)
    return false;
  for (int64_t i = 0; i < count; i++) {
    const unsigned char *p = bl->data + (size_t)i * w;
    uint32_t u = 0;
    memcpy(&u, p, w);
    float *f = out;
    int32_t *n = out;
    switch (bl->dtype) {
    case MILBLOB_FP16: f[i] = fp16_to_f32((uint16_t)u); break;
    case MILBLOB_BF16: u <<= 16; /* fall through */
    case MILBLOB_FP32: memcpy(&f[i], &u, 4); break;
    case MILBLOB_INT8: n[i] = (int8_t)u; break;
    case MILBLOB_INT16: n[i] = (int16_t)u; break;
    case MILBLOB_UINT32:
      if (u > INT32_MAX)
        return false;
      /* fall through */
    default: n[i] = (int32_t)u; break; // INT32, UINT8, UINT16
    }
  }
  return true;
}

static bool fill_blob(Prep *P, Buf *b, const MilValue *v) {
  const MilBlobFile *file = open_weights(P, v->blob_file);
  MilBlob bl;
  if (!file || !milblob_get(file, v->blob_offset, &bl, P->d))
    return prep_error(P, v->loc, "cannot load the weights of '%s' from '%s'", b->name,
                      v->blob_file);
  void *tmp = malloc((size_t)b->count * 4 + 4);
  bool ok = tmp && blob_convert(&bl, b->count, b->is_int, tmp);
  if (ok && b->is_int)
    memcpy(b->data, tmp, (size_t)b->count * 4);
  else if (ok)
    fixed_store_f32(P->e, b, tmp);
  free(tmp);
  if (!ok)
    return prep_error(P, v->loc,
                      "the blob at offset %llu of '%s' (dtype code %u, %llu bytes) does not "
                      "hold the %lld %s elements of '%s'",
                      (unsigned long long)v->blob_offset, v->blob_file, bl.dtype,
                      (unsigned long long)bl.size, (long long)b->count,
                      mil_dtype_name(v->type->dtype), b->name);
  return true;
}

// Fills a constant buffer from its value, once.
static bool buf_materialize(Prep *P, Buf *b) {
  if (b->fixed)
    return true;
  if (!buf_alloc_fixed(P, b))
    return false;
  const MilValue *v = b->value;
  if (v->kind == MIL_V_BLOB)
    return fill_blob(P, b, v);
  if (v->kind != MIL_V_TENSOR)
    return prep_error(P, v->loc, "'%s' is not a tensor value", b->name);
  return fill_literal(P, b, v);
}

//
// Operands and parameters
//

static const MilValue *var_const_value(const Exec *e, int var) {
  const MilVar *v = &e->f->vars[var];
  if (v->op < 0 || strcmp(e->f->ops[v->op].op, "const"))
    return NULL;
  const MilOp *op = &e->f->ops[v->op];
  const MilAttr *val = mil_attr(op->attrs, op->nattrs, "val");
  return val ? val->value : NULL;
}

// The buffer a binding names; literals get a buffer of their own.
static int binding_buf(Prep *P, const MilBinding *b, const char *param) {
  Exec *e = P->e;
  int i = b->kind == MIL_B_REF ? b->var : -1;
  if (b->kind == MIL_B_VALUE) {
    i = buf_add(e, "literal", b->value->type, b->loc);
    e->bufs[i].value = b->value;
  }
  Buf *buf = i >= 0 ? &e->bufs[i] : NULL;
  if (!buf || !buf->tensor)
    return prep_error(P, b->loc, "'%s' must be a tensor", param), -1;
  if (!buf->known)
    return prep_error(P, b->loc, "the shape of '%s' is unknown (a '?' dimension)", buf->name),
           -1;
  if (buf->value && !buf_materialize(P, buf))
    return -1;
  return i;
}

bool prep_in(Prep *P, Step *s, const char *name, bool required) {
  const MilArg *a = mil_arg(s->op, name);
  int i = -1;
  if (!a && required)
    return prep_error(P, s->op->loc, "%s needs '%s'", s->op->op, name);
  if (a && a->b.kind == MIL_B_TUPLE)
    return prep_error(P, a->loc, "'%s' must be one tensor, not a tuple", name);
  if (a && (i = binding_buf(P, &a->b, name)) < 0)
    return false;
  s->in[s->nin++] = i;
  return true;
}

bool prep_in_tuple(Prep *P, Step *s, const char *name) {
  const MilArg *a = mil_arg(s->op, name);
  if (!a || a->b.kind != MIL_B_TUPLE || a->b.nitems == 0)
    return prep_error(P, a ? a->loc : s->op->loc, "'%s' must be a tuple of tensors: (a, b)",
                      name);
  for (int k = 0; k < a->b.nitems; k++) {
    int i = binding_buf(P, &a->b.items[k], name);
    if (i < 0)
      return false;
    s->in[s->nin++] = i;
  }
  return true;
}

const MilValue *prep_const(Prep *P, Step *s, const char *name, bool *bad) {
  const MilArg *a = mil_arg(s->op, name);
  if (!a)
    return NULL;
  const MilValue *v = a->b.kind == MIL_B_VALUE ? a->b.value
                      : a->b.kind == MIL_B_REF ? var_const_value(P->e, a->b.var)
                                               : NULL;
  if (!v || v->kind != MIL_V_TENSOR) {
    *bad = true;
    prep_error(P, a->loc, "'%s' of %s must be a constant", name, s->op->op);
  }
  return v && v->kind == MIL_V_TENSOR ? v : NULL;
}

// A constant scalar of parameter `name`, checked for kind.
static const MilValue *const_scalar(Prep *P, Step *s, const char *name, const char *kind,
                                    bool ok_kind(MilDType), bool *bad) {
  const MilValue *v = prep_const(P, s, name, bad);
  if (v && (v->count != 1 || !ok_kind(v->type->dtype))) {
    *bad = true;
    prep_error(P, prep_loc(s, name), "'%s' of %s must be one %s", name, s->op->op, kind);
    return NULL;
  }
  return v;
}

static bool kind_int(MilDType t) {
  return mil_dtype_is_int(t);
}
static bool kind_bool(MilDType t) {
  return t == MIL_BOOL;
}
static bool kind_float(MilDType t) {
  return mil_dtype_is_float(t);
}
static bool kind_string(MilDType t) {
  return t == MIL_STRING;
}

bool prep_int(Prep *P, Step *s, const char *name, int64_t dflt, int64_t *out) {
  bool bad = false;
  const MilValue *v = const_scalar(P, s, name, "integer", kind_int, &bad);
  *out = v ? v->i[0] : dflt;
  return !bad;
}

bool prep_bool(Prep *P, Step *s, const char *name, bool dflt, bool *out) {
  bool bad = false;
  const MilValue *v = const_scalar(P, s, name, "bool", kind_bool, &bad);
  *out = v ? v->i[0] != 0 : dflt;
  return !bad;
}

bool prep_float(Prep *P, Step *s, const char *name, double dflt, double *out) {
  bool bad = false;
  const MilValue *v = const_scalar(P, s, name, "floating-point number", kind_float, &bad);
  *out = v ? v->f[0] : dflt;
  return !bad;
}

bool prep_string(Prep *P, Step *s, const char *name, const char *dflt, const char **out) {
  bool bad = false;
  const MilValue *v = const_scalar(P, s, name, "string", kind_string, &bad);
  *out = v ? v->s[0] : dflt;
  return !bad;
}

int prep_ints(Prep *P, Step *s, const char *name, int64_t *out, int max) {
  bool bad = false;
  const MilValue *v = prep_const(P, s, name, &bad);
  if (bad)
    return -2;
  if (!v)
    return -1;
  if (!mil_dtype_is_int(v->type->dtype) || v->type->rank > 1 || v->count > max)
    return prep_error(P, prep_loc(s, name), "'%s' of %s must be at most %d integers", name,
                      s->op->op, max),
           -2;
  for (int64_t i = 0; i < v->count; i++)
    out[i] = v->i[i];
  return (int)v->count;
}

bool prep_out(Prep *P, Step *s, int k, bool is_int, int rank, const int64_t *dims) {
  Buf *b = &P->e->bufs[s->out[k]];
  char want[200], got[200];
  rt_shape_str(got, sizeof got, rank, dims);
  if (!b->tensor)
    return prep_error(P, b->loc, "output '%s' of %s must be a tensor", b->name, s->op->op);
  if (b->is_int != is_int)
    return prep_error(P, b->loc, "output '%s' of %s is declared %s; the op computes %s",
                      b->name, s->op->op, is_int ? "floating" : "integer",
                      is_int ? "integers" : "floating values");
  bool same = b->rank == rank;
  for (int i = 0; same && i < rank; i++)
    same = b->dims[i] == dims[i] || b->dims[i] == MIL_ANY;
  if (!same)
    return prep_error(P, b->loc, "output '%s' of %s is declared %s; the op computes %s",
                      b->name, s->op->op, rt_shape_str(want, sizeof want, b->rank, b->dims),
                      got);
  memcpy(b->dims, dims, (size_t)rank * sizeof *dims);
  b->count = rt_numel(rank, dims);
  b->known = b->count >= 0;
  return b->known || prep_error(P, b->loc, "output '%s' is too large: %s", b->name, got);
}

//
// Prepare
//

static bool prep_step(Prep *P, Step *s, const MilOp *op) {
  s->op = op;
  s->def = exec_op_find(op->op);
  if (!s->def) {
    char names[1024];
    exec_op_names(names, sizeof names);
    return prep_error(P, op->loc, "the reference executor has no '%s' (it runs: const, %s)",
                      op->op, names);
  }
  int cap = op->nargs + 1;
  for (int i = 0; i < op->nargs; i++)
    cap += op->args[i].b.kind == MIL_B_TUPLE ? op->args[i].b.nitems : 0;
  s->in = prep_alloc(P, (size_t)cap * sizeof *s->in);
  s->iv = prep_alloc(P, (size_t)cap * sizeof *s->iv);
  s->out = op->outputs;
  s->nout = op->noutputs;
  s->ov = prep_alloc(P, (size_t)(s->nout + 1) * sizeof *s->ov);
  return s->def->prep(P, s);
}

static void exec_init_bufs(Exec *e) {
  const MilFunc *f = e->f;
  for (int i = 0; i < f->nvars; i++) {
    int b = buf_add(e, f->vars[i].name, f->vars[i].type, f->vars[i].loc);
    e->bufs[b].value = var_const_value(e, i);
  }
  for (int i = 0; i < f->ninputs; i++)
    e->bufs[f->inputs[i]].is_input = true;
  for (int i = 0; i < f->noutputs; i++)
    e->bufs[f->outputs[i]].is_output = true;
}

static bool prep_inputs(Prep *P) {
  Exec *e = P->e;
  for (int i = 0; i < e->f->ninputs; i++) {
    Buf *b = &e->bufs[e->f->inputs[i]];
    char shape[200];
    if (!b->tensor || !b->known)
      return prep_error(P, b->loc, "input '%s' must be a tensor of static shape, not %s",
                        b->name, rt_shape_str(shape, sizeof shape, b->rank, b->dims));
    b->data = aligned((size_t)b->count * elem_size(e, b));
    b->owned = true;
    if (!b->data)
      return prep_error(P, b->loc, "out of memory for input '%s'", b->name);
  }
  return true;
}

static bool prep_outputs(Prep *P) {
  Exec *e = P->e;
  for (int i = 0; i < e->f->noutputs; i++) {
    Buf *b = &e->bufs[e->f->outputs[i]];
    if (!b->tensor || !b->known)
      return prep_error(P, b->loc, "output '%s' must be a tensor of known shape", b->name);
    if (b->value && !buf_materialize(P, b))
      return false;
  }
  return true;
}

// Memory plan: every op output gets a slab that no live tensor holds; a
// slab is free again after the last step that reads its tensor.
typedef struct Plan {
  size_t *size;
  bool *busy;
  int n;
} Plan;

// Best fit: the smallest free slab that holds `need`; else the largest free
// slab, grown; else a new one.
static int plan_take(Plan *pl, size_t need) {
  int fit = -1, big = -1;
  for (int i = 0; i < pl->n; i++) {
    if (pl->busy[i])
      continue;
    if (pl->size[i] >= need && (fit < 0 || pl->size[i] < pl->size[fit]))
      fit = i;
    if (big < 0 || pl->size[i] > pl->size[big])
      big = i;
  }
  int best = fit >= 0 ? fit : big >= 0 ? big : pl->n++;
  if (pl->size[best] < need)
    pl->size[best] = need;
  pl->busy[best] = true;
  return best;
}

// An alias's storage: its offset into the buffer it aliases.
static void *alias_data(const Exec *e, const Buf *b) {
  const Buf *r = &e->bufs[b->alias];
  return (char *)r->data + b->alias_off * (int64_t)elem_size(e, r);
}

// The buffer that holds b's storage: b, or the one it is an alias into.
static int root_index(const Exec *e, int b) {
  return e->bufs[b].alias >= 0 ? e->bufs[b].alias : b;
}

static Buf *buf_root(Exec *e, int b) {
  return &e->bufs[root_index(e, b)];
}

// Points every alias at its storage (after the plan, and when an input is rebound).
static void alias_resolve(Exec *e) {
  for (int i = 0; i < e->nbufs; i++)
    if (e->bufs[i].alias >= 0)
      e->bufs[i].data = alias_data(e, &e->bufs[i]);
}

// Liveness over storage: a buffer lives from the first step that writes it
// or a part of it until the last that reads it or an alias of it; one that
// is (or whose alias is) a function output, forever.
static void plan_liveness(Exec *e) {
  for (int i = 0; i < e->nsteps; i++) {
    const Step *s = &e->steps[i];
    for (int k = 0; k < s->nin + s->nout; k++) {
      int b = k < s->nin ? s->in[k] : s->out[k - s->nin];
      if (b >= 0)
        buf_root(e, b)->last_use = i;
    }
  }
  for (int b = 0; b < e->nbufs; b++)
    if (e->bufs[b].is_output)
      buf_root(e, b)->last_use = e->nsteps;
}

static bool plan_memory(Exec *e) {
  plan_liveness(e);
  int cap = 0;
  for (int i = 0; i < e->nsteps; i++)
    cap += e->steps[i].nout;
  Plan pl = {calloc((size_t)cap + 1, sizeof(size_t)), calloc((size_t)cap + 1, 1), 0};
  for (int i = 0; i < e->nsteps; i++) {
    const Step *s = &e->steps[i];
    for (int k = 0; k < s->nout; k++) {
      Buf *r = buf_root(e, s->out[k]); // a concat's part: its first part takes its slab
      if (r->slab < 0 && !r->is_input)
        r->slab = plan_take(&pl, (size_t)r->count * elem_size(e, r));
    }
    for (int k = 0; k < s->nin + s->nout; k++) {
      int bi = k < s->nin ? s->in[k] : s->out[k - s->nin];
      const Buf *b = bi >= 0 ? buf_root(e, bi) : NULL;
      if (b && b->slab >= 0 && b->last_use == i)
        pl.busy[b->slab] = false;
    }
  }
  e->slabs = calloc((size_t)pl.n + 1, sizeof *e->slabs);
  bool ok = e->slabs != NULL;
  for (int i = 0; ok && i < pl.n; i++)
    ok = (e->slabs[e->nslabs++] = aligned(pl.size[i])) != NULL;
  for (int i = 0; ok && i < e->nbufs; i++)
    if (e->bufs[i].slab >= 0)
      e->bufs[i].data = e->slabs[e->bufs[i].slab];
  if (ok)
    alias_resolve(e);
  free(pl.size);
  free(pl.busy);
  return ok;
}

// Moves buffer q's storage (and that of its aliases) to offset `off` of r's.
static void alias_into(Exec *e, int q, int r, int64_t off) {
  for (int i = 0; i < e->nbufs; i++)
    if (e->bufs[i].alias == q)
      e->bufs[i].alias = r, e->bufs[i].alias_off += off;
  e->bufs[q].alias = r, e->bufs[q].alias_off = off;
}

// A reshape keeps its elements in order: its output shares its operand's
// storage. Not a constant's (which owns its storage) nor into a function
// output (whose storage stays its own, as a caller may expect).
static bool alias_reshape(Exec *e, Step *s) {
  const Buf *in = &e->bufs[s->in[0]];
  if (in->fixed || e->bufs[s->out[0]].is_output)
    return false;
  e->bufs[s->out[0]].alias = root_index(e, s->in[0]);
  e->bufs[s->out[0]].alias_off = in->alias >= 0 ? in->alias_off : 0;
  return true;
}

// Whether part k of a concat can be computed in place, into its output:
// its storage is a buffer of its own that ops write (not an input, constant
// or function output), shared with no other part.
static bool part_placeable(Exec *e, const Step *s, int k) {
  const Buf *p = &e->bufs[s->in[k]];
  int q = root_index(e, s->in[k]);
  const Buf *root = &e->bufs[q];
  if (root->fixed || root->is_input || root->is_output || root->count != p->count ||
      q == s->out[0])
    return false;
  for (int j = 0; j < k; j++)
    if (buf_root(e, s->in[j]) == root)
      return false;
  return true;
}

// A concat whose parts are whole blocks of its output (not interleaved, 1s
// before the axis): each part is computed in place, at its offset.
static bool alias_concat(Exec *e, Step *s) {
  const Buf *o = &e->bufs[s->out[0]];
  if (s->interleave || rt_numel(s->axis, o->dims) != 1)
    return false;
  for (int k = 0; k < s->nin; k++)
    if (!part_placeable(e, s, k))
      return false;
  int64_t off = 0;
  for (int k = 0; k < s->nin; k++) {
    alias_into(e, root_index(e, s->in[k]), s->out[0], off);
    off += e->bufs[s->in[k]].count;
  }
  return true;
}

// Aliasing: reshapes and block concats become storage shared with their
// operands, and their steps go. Before the plan.
static void exec_alias(Exec *e) {
  for (int i = 0; i < e->nsteps; i++) {
    Step *s = &e->steps[i];
    if (!s->def)
      continue;
    bool gone = !strcmp(s->op->op, "reshape")  ? alias_reshape(e, s)
                : !strcmp(s->op->op, "concat") ? alias_concat(e, s)
                                               : false;
    if (gone)
      s->def = NULL;
  }
}

// Fusion: a softmax over the last axis takes the elementwise ops that feed it
// and nothing else (attention's scale and mask) as a row prologue, so the
// scores are read once, not three times; the prologue rounds to fp16 where
// the ops would have stored, so the numbers are the same. Before the plan.
static int buf_readers(const Exec *e, int b) {
  int n = 0;
  for (int i = 0; i < e->nsteps; i++)
    for (int k = 0; e->steps[i].def && k < e->steps[i].nin; k++)
      n += e->steps[i].in[k] == b;
  return n;
}

// The step that writes buffer b, if it writes only b and b is read once.
static Step *sole_producer(Exec *e, int b) {
  if (e->bufs[b].is_output || buf_readers(e, b) != 1)
    return NULL;
  for (int i = 0; i < e->nsteps; i++) {
    Step *p = &e->steps[i];
    if (p->def && p->nout == 1 && p->out[0] == b)
      return p;
  }
  return NULL;
}

static void fuse_softmax(Exec *e, Step *s) {
  s->stored_io = !e->bufs[s->in[0]].fixed && !e->bufs[s->in[0]].is_int;
  if (!s->stored_io)
    return;
  Step *chain[2];
  int n = 0, head = s->in[0];
  for (Step *p; n < 2 && (p = sole_producer(e, head)) && exec_op_prologue_code(p) >= 0;) {
    if (e->bufs[p->in[0]].count != e->bufs[head].count)
      break; // the chain operand is broadcast: not a row of the output
    chain[n++] = p;
    head = p->in[0];
  }
  if (!n)
    return;
  int *in = arena_alloc(&e->arena, (size_t)(n + 1) * sizeof *in);
  const void **iv = arena_alloc(&e->arena, (size_t)(n + 1) * sizeof *iv);
  in[0] = head;
  for (int k = 0; k < n; k++) { // in application order: the chain's head first
    Step *p = chain[n - 1 - k];
    in[1 + k] = p->in[1];
    s->prologue[k] = exec_op_prologue_code(p);
    p->def = NULL;
  }
  s->in = in, s->iv = iv, s->nin = n + 1, s->nprologue = n;
  s->prologue_off = arena_alloc(&e->arena, (size_t)(n * s->geom.nkeep) * sizeof *s->prologue_off);
  exec_op_prologue_offsets(e, s); // once, not per row of every run
}

// Whether transpose step t swaps the last two axes of its operand, and only them.
static bool swaps_last_two(const Exec *e, const Step *t) {
  const Buf *x = &e->bufs[t->in[0]];
  int r = x->rank;
  int64_t st[MIL_MAX_RANK];
  dims_strides(r, x->dims, st);
  bool ok = r >= 2 && t->copy.rank == r && t->copy.strides[r - 2] == st[r - 1] &&
            t->copy.strides[r - 1] == st[r - 2];
  for (int i = 0; ok && i < r - 2; i++)
    ok = t->copy.strides[i] == st[i];
  return ok;
}

// A transpose of the last two axes read only by matmuls goes into their
// transpose_x / transpose_y: BLAS reads the operand transposed, no copy.
static void fuse_transpose(Exec *e, Step *t) {
  int b = t->out[0];
  if (e->bufs[b].is_output || !swaps_last_two(e, t))
    return;
  for (int i = 0; i < e->nsteps; i++) {
    const Step *s = &e->steps[i];
    for (int k = 0; s->def && k < s->nin; k++)
      if (s->in[k] == b && (strcmp(s->op->op, "matmul") || k > 1))
        return; // a reader that is not a matmul's x or y
  }
  for (int i = 0; i < e->nsteps; i++) {
    Step *s = &e->steps[i];
    for (int k = 0; s->def && k < 2 && !strcmp(s->op->op, "matmul"); k++)
      if (s->in[k] == b) {
        s->in[k] = t->in[0];
        if (k == 0)
          s->transpose_x = !s->transpose_x;
        else
          s->transpose_y = !s->transpose_y;
      }
  }
  t->def = NULL;
}

// The first step that reads buffer b, if any.
static Step *first_reader(Exec *e, int b) {
  for (int i = 0; i < e->nsteps; i++)
    for (int k = 0; e->steps[i].def && k < e->steps[i].nin; k++)
      if (e->steps[i].in[k] == b)
        return &e->steps[i];
  return NULL;
}

static bool is_matmul(const Step *s) {
  return s && s->def && !strcmp(s->op->op, "matmul");
}

// Attention: scores = matmul(q, k) read only by a row softmax s (after its
// prologue), whose probabilities a matmul reads first, as its x: that
// matmul's step runs all three head by head (exec_attention_def). The
// scores are never stored; the probabilities only when a later step or the
// caller reads them too (a training forward saves them), as its second
// output. After the softmax and transpose fusions (the parts keep their
// prologue and transpose flags).
static void fuse_attention(Exec *e, Step *s) {
  int p = s->out[0];
  Step *qk = s->stored_io ? sole_producer(e, s->in[0]) : NULL, *pv = first_reader(e, p);
  if (!is_matmul(qk) || !is_matmul(pv) || pv->in[0] != p || pv->in[1] == p ||
      pv->transpose_x || !exec_attention_fits(e, qk, s, pv))
    return;
  bool keep_p = e->bufs[p].is_output || buf_readers(e, p) > 1;
  Step *parts = arena_alloc(&e->arena, 3 * sizeof *parts);
  parts[0] = *qk, parts[1] = *s, parts[2] = *pv;
  int np = s->nprologue, nin = 3 + np;
  int *in = arena_alloc(&e->arena, (size_t)nin * sizeof *in);
  int *out = arena_alloc(&e->arena, 2 * sizeof *out);
  in[0] = qk->in[0], in[1] = qk->in[1], in[2 + np] = pv->in[1];
  for (int j = 0; j < np; j++)
    in[2 + j] = s->in[1 + j];
  out[0] = pv->out[0], out[1] = p;
  pv->def = &exec_attention_def, pv->parts = parts, pv->stored_all = true;
  pv->in = in, pv->nin = nin;
  pv->out = out, pv->nout = keep_p ? 2 : 1;
  pv->iv = arena_alloc(&e->arena, (size_t)nin * sizeof *pv->iv);
  pv->ov = arena_alloc(&e->arena, 2 * sizeof *pv->ov);
  qk->def = NULL, s->def = NULL;
}

static void exec_fuse(Exec *e) {
  for (int i = 0; i < e->nsteps; i++)
    if (e->steps[i].def && exec_op_is_row_softmax(&e->steps[i]))
      fuse_softmax(e, &e->steps[i]);
  for (int i = 0; i < e->nsteps; i++)
    if (e->steps[i].def && !strcmp(e->steps[i].op->op, "transpose"))
      fuse_transpose(e, &e->steps[i]);
  for (int i = 0; i < e->nsteps; i++)
    if (e->steps[i].def && exec_op_is_row_softmax(&e->steps[i]))
      fuse_attention(e, &e->steps[i]);
}

// Drops the steps that fusion and aliasing took away.
static void exec_compact(Exec *e) {
  int n = 0;
  for (int i = 0; i < e->nsteps; i++)
    if (e->steps[i].def)
      e->steps[n++] = e->steps[i];
  e->nsteps = n;
}

static bool prep_all(Prep *P) {
  Exec *e = P->e;
  exec_init_bufs(e);
  if (!prep_inputs(P))
    return false;
  e->steps = arena_alloc(&e->arena, (size_t)(e->f->nops + 1) * sizeof *e->steps);
  for (int i = 0; i < e->f->nops && !P->d->stop; i++) {
    if (!strcmp(e->f->ops[i].op, "const"))
      continue; // materialized where used as a tensor
    if (prep_step(P, &e->steps[e->nsteps], &e->f->ops[i]))
      e->nsteps++;
  }
  if (P->failed || !prep_outputs(P))
    return false;
  if (!e->no_fusion)
    exec_fuse(e);
  exec_alias(e);
  exec_compact(e);
  return plan_memory(e) || prep_error(P, e->f->loc, "out of memory for the buffers");
}

Exec *exec_prepare_opts(const MilProgram *p, const MilFunc *f, ExecPrecision prec,
                        const ExecOptions *opts, RtDiag *d) {
  static const ExecOptions defaults;
  opts = opts ? opts : &defaults;
  Exec *e = calloc(1, sizeof *e);
  if (!e)
    return NULL;
  e->p = p;
  e->f = f;
  e->prec = prec;
  e->quirks = prec == EXEC_FP16 && opts->ane_quirks != EXEC_QUIRKS_OFF;
  e->no_fusion = opts->no_fusion;
  Prep P = {.e = e, .d = d};
  bool ok = prep_all(&P) && !P.failed;
  for (int i = 0; i < P.nfiles; i++)
    milblob_close(&P.files[i]);
  free(P.files);
  if (!ok) {
    exec_free(e);
    return NULL;
  }
  return e;
}

Exec *exec_prepare(const MilProgram *p, const MilFunc *f, ExecPrecision prec, RtDiag *d) {
  return exec_prepare_opts(p, f, prec, NULL, d);
}

bool exec_ane_quirks(const Exec *e) {
  return e->quirks;
}

void exec_free(Exec *e) {
  if (!e)
    return;
  for (int i = 0; i < e->nbufs; i++)
    if (e->bufs[i].owned)
      free(e->bufs[i].data), free(e->bufs[i].f32);
  for (int i = 0; i < e->nslabs; i++)
    free(e->slabs[i]);
  for (int i = 0; i < e->scratch.nextra; i++)
    free(e->scratch.extra[i]);
  free(e->scratch.extra);
  free(e->scratch.base);
  free(e->slabs);
  free(e->bufs);
  arena_free(&e->arena);
  free(e);
}

//
// Running
//

void *exec_scratch(Exec *e, size_t bytes) {
  Scratch *s = &e->scratch;
  bytes = (bytes + ALIGN - 1) / ALIGN * ALIGN;
  s->want += bytes;
  if (s->used + bytes <= s->cap) {
    s->used += bytes;
    return s->base + s->used - bytes;
  }
  if (s->nextra == s->capextra) {
    s->capextra = s->capextra ? 2 * s->capextra : 8;
    s->extra = realloc(s->extra, (size_t)s->capextra * sizeof *s->extra);
  }
  void *p = s->extra ? aligned(bytes) : NULL;
  if (!p)
    abort(); // out of memory in the middle of a kernel
  return s->extra[s->nextra++] = p;
}

// After a step: one block large enough for every later step like it.
static void scratch_reset(Scratch *s) {
  for (int i = 0; i < s->nextra; i++)
    free(s->extra[i]);
  if (s->nextra) {
    free(s->base);
    s->base = aligned(s->want);
    s->cap = s->base ? s->want : 0;
  }
  s->nextra = 0;
  s->used = s->want = 0;
}

const Buf *step_in(const Exec *e, const Step *s, int k) {
  return s->in[k] >= 0 ? &e->bufs[s->in[k]] : NULL;
}

const Buf *step_out(const Exec *e, const Step *s, int k) {
  return &e->bufs[s->out[k]];
}

bool exec_is_fp16(const Exec *e) {
  return e->prec == EXEC_FP16;
}

void exec_error_at(const Exec *e, RtDiag *d, MilLoc loc, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  mil_error_at(d, e->p, loc, "%s", msg);
}

void exec_saturate(float *x, int64_t n) {
  for (int64_t i = 0; i < n; i++) // a branch-free select: vectorized
    x[i] = fabsf(x[i]) >= EXEC_ANE_SATURATION ? copysignf(INFINITY, x[i]) : x[i];
}

// fp16 <-> fp32 of a whole tensor, in blocks over the pool when it is large
// (an attention's scores: 786k elements, 0.2 ms on one core). The blocks
// convert element by element, so the bits are those of one call.
enum { CONVERT_BLOCK = 1 << 15 };

typedef struct Convert {
  const void *in;
  void *out;
  size_t n;
  bool widen;    // fp16 -> fp32, else fp32 -> fp16
  bool saturate; // fp32 -> fp16 of a product under the ANE quirks: saturated first, in place
} Convert;

static void convert_range(const Convert *c, size_t lo, size_t n) {
  if (c->saturate) // in cache, just before it is narrowed: no pass of its own
    exec_saturate((float *)c->in + lo, (int64_t)n);
  if (c->widen)
    fp16_to_f32_n((const uint16_t *)c->in + lo, (float *)c->out + lo, n);
  else
    f32_to_fp16_n((const float *)c->in + lo, (uint16_t *)c->out + lo, n);
}

static void convert_block(void *ctx, int64_t blk) {
  const Convert *c = ctx;
  size_t lo = (size_t)blk * CONVERT_BLOCK;
  convert_range(c, lo, c->n - lo < CONVERT_BLOCK ? c->n - lo : CONVERT_BLOCK);
}

static void convert(const void *in, void *out, size_t n, bool widen, bool saturate) {
  Convert c = {in, out, n, widen, saturate};
  if (n < 2 * CONVERT_BLOCK)
    convert_range(&c, 0, n);
  else
    rt_parallel((int64_t)((n + CONVERT_BLOCK - 1) / CONVERT_BLOCK), convert_block, &c);
}

// A kernel's view of an operand: fp32 (widened from fp16 if need be) or int32.
const void *exec_view(Exec *e, const Buf *b) {
  if (b->is_int || e->prec == EXEC_FP32)
    return b->data;
  if (b->f32)
    return b->f32;
  float *v = exec_scratch(e, (size_t)b->count * 4);
  convert(b->data, v, (size_t)b->count, true, false);
  return v;
}

// A step that reads and writes the storage itself: views are its business.
static bool step_stored(Exec *e, Step *s, RtDiag *d) {
  for (int k = 0; k < s->nin; k++)
    s->iv[k] = s->in[k] >= 0 ? e->bufs[s->in[k]].data : NULL;
  for (int k = 0; k < s->nout; k++)
    s->ov[k] = e->bufs[s->out[k]].data;
  bool ok = s->def->run(e, s, d);
  scratch_reset(&e->scratch);
  return ok;
}

// A mover (reshape, slices, transpose, concat, split) copies stored elements
// as they are: no widening to fp32 and back.
static bool step_move(Exec *e, Step *s, RtDiag *d) {
  s->esize = (int)elem_size(e, &e->bufs[s->out[0]]);
  return step_stored(e, s, d);
}

static bool step_run(Exec *e, Step *s, RtDiag *d) {
  if (s->def->moves)
    return step_move(e, s, d);
  if (s->stored_all)
    return step_stored(e, s, d);
  for (int k = 0; k < s->nin; k++) {
    const Buf *b = s->in[k] >= 0 ? &e->bufs[s->in[k]] : NULL;
    s->iv[k] = !b ? NULL : k == 0 && s->stored_io ? b->data : exec_view(e, b);
  }
  for (int k = 0; k < s->nout; k++) {
    const Buf *b = &e->bufs[s->out[k]];
    bool as_stored = b->is_int || e->prec == EXEC_FP32 || (k == 0 && s->stored_io);
    s->ov[k] = as_stored ? b->data : exec_scratch(e, (size_t)b->count * 4);
  }
  bool ok = s->def->run(e, s, d);
  bool saturate = e->quirks && s->def->saturates; // the ANE quirks: fp16 only, so never stored_io
  for (int k = 0; k < s->nout; k++) { // ANE numerics: every stored tensor is fp16
    const Buf *b = &e->bufs[s->out[k]];
    if (s->ov[k] != b->data)
      convert(s->ov[k], b->data, (size_t)b->count, false, saturate);
  }
  scratch_reset(&e->scratch);
  return ok;
}

bool exec_run(Exec *e, RtDiag *d) {
  for (int i = 0; i < e->f->ninputs; i++) {
    const Buf *b = &e->bufs[e->f->inputs[i]];
    if (!b->is_set) {
      mil_error_at(d, e->p, b->loc, "input '%s' was not given", b->name);
      return false;
    }
  }
  for (int i = 0; i < e->nsteps; i++)
    if (!step_run(e, &e->steps[i], d))
      return false;
  return true;
}

//
// Inputs and outputs by name
//

static int find_var(const Exec *e, const int *vars, int n, const char *name) {
  for (int i = 0; i < n; i++)
    if (!strcmp(e->f->vars[vars[i]].name, name))
      return vars[i];
  return -1;
}

static void list_names(const Exec *e, const int *vars, int n, char *buf, size_t cap) {
  size_t k = 0;
  buf[0] = '\0';
  for (int i = 0; i < n && k < cap; i++)
    k += (size_t)snprintf(buf + k, cap - k, "%s%s", i ? ", " : "", e->f->vars[vars[i]].name);
}

void exec_input_names(const Exec *e, char *buf, size_t cap) {
  list_names(e, e->f->inputs, e->f->ninputs, buf, cap);
}

void exec_output_names(const Exec *e, char *buf, size_t cap) {
  list_names(e, e->f->outputs, e->f->noutputs, buf, cap);
}

int exec_step_names(const Exec *e, char *buf, size_t cap) {
  size_t k = 0;
  buf[0] = '\0';
  for (int i = 0; i < e->nsteps && k < cap; i++)
    k += (size_t)snprintf(buf + k, cap - k, "%s%s", i ? ", " : "", e->steps[i].def->name);
  return e->nsteps;
}

static bool check_input(const Exec *e, const Buf *b, const RtTensor *t, RtDiag *d) {
  char want[200], got[200];
  bool same = t->rank == b->rank && !memcmp(t->dims, b->dims, (size_t)b->rank * 8);
  if (!same) {
    mil_error_at(d, e->p, b->loc, "input '%s' is given as %s; the function declares %s",
                 b->name, rt_shape_str(got, sizeof got, t->rank, t->dims),
                 rt_shape_str(want, sizeof want, b->rank, b->dims));
    return false;
  }
  if ((t->dtype == MIL_INT32) != b->is_int || rt_dtype_size(t->dtype) == 0) {
    mil_error_at(d, e->p, b->loc, "input '%s' is given as %s; the function declares %s",
                 b->name, mil_dtype_name(t->dtype),
                 mil_dtype_name(e->f->vars[b - e->bufs].type->dtype));
    return false;
  }
  return true;
}

// Input `name`, checked against t's shape and kind; NULL (reported, an
// unknown name listing the inputs) if either fails.
static Buf *find_input(Exec *e, const char *name, const RtTensor *t, RtDiag *d) {
  int v = find_var(e, e->f->inputs, e->f->ninputs, name);
  if (v < 0) {
    char names[512];
    exec_input_names(e, names, sizeof names);
    mil_error_at(d, e->p, e->f->loc, "function '%s' has no input '%s'; its inputs: %s",
                 e->f->name, name, names);
    return NULL;
  }
  return check_input(e, &e->bufs[v], t, d) ? &e->bufs[v] : NULL;
}

bool exec_set_input(Exec *e, const char *name, const RtTensor *t, RtDiag *d) {
  Buf *b = find_input(e, name, t, d);
  if (!b)
    return false;
  size_t n = (size_t)b->count;
  if (b->is_int || (t->dtype == MIL_FP32) == (e->prec == EXEC_FP32))
    memcpy(b->data, t->data, n * rt_dtype_size(t->dtype));
  else if (t->dtype == MIL_FP32)
    f32_to_fp16_n(t->data, b->data, n);
  else
    fp16_to_f32_n(t->data, b->data, n);
  b->is_set = true;
  return true;
}

bool exec_bind_input(Exec *e, const char *name, const RtTensor *t, RtDiag *d) {
  Buf *b = find_input(e, name, t, d);
  if (!b)
    return false;
  if (t->dtype != stored_dtype(e, b)) {
    mil_error_at(d, e->p, b->loc, "input '%s' is bound as %s; the executor stores it as %s",
                 b->name, mil_dtype_name(t->dtype), mil_dtype_name(stored_dtype(e, b)));
    return false;
  }
  if (b->owned)
    free(b->data);
  b->owned = false;
  b->data = t->data;
  alias_resolve(e); // reshapes of the input see the new storage
  b->is_set = true;
  return true;
}

bool exec_get_output(const Exec *e, const char *name, RtTensor *view) {
  int v = find_var(e, e->f->outputs, e->f->noutputs, name);
  if (v < 0)
    return false;
  const Buf *b = &e->bufs[v];
  view->dtype = stored_dtype(e, b);
  view->rank = b->rank;
  memcpy(view->dims, b->dims, sizeof view->dims);
  view->count = b->count;
  view->data = b->data;
  return true;
}
