// milcheck.c — the engine of `anec mil-check`: applies the constraint catalog
// to a parsed MIL program for one target profile and collects findings, each
// naming its rule. Rules the text cannot decide are the catalog's CHECK_NONE
// and CHECK_PARTIAL rows; the driver lists them. Parse errors (ANE-T01 bare
// literals, ANE-T04 names) never get here: the reader rejects them.
#include "target.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { FP16_MIN = -65504 };
// Extents beyond any real surface: size arithmetic on them is skipped (B05
// reports them), so that nothing below overflows.
#define HUGE_EXTENT ((int64_t)1 << 40)

// A weights file opened once per path (T06, T10).
typedef struct BlobFile {
  const char *path;      // as written in BLOBFILE
  const char *file_name; // the file itself (@model_path resolved by the reader)
  bool missing;     // not there: not checked
  bool bad;         // there but unreadable; its error is already reported
  MilBlobFile file;
  int uses;         // BLOBFILE values naming it (T07 on one-file-per-matrix targets)
} BlobFile;

typedef struct Ctx {
  MilCheck *c;
  const MilProgram *p;
  const TargetProfile *t;
  const MilFunc *f;      // the function being checked, or NULL
  Arena tmp;             // what lives for one run: the line index, the weight files
  size_t *lines;         // offset of each line start in p->text
  int nlines;
  BlobFile *blobs;
  int nblobs;
  int short_scalars;     // T07: scalar literals in short spelling on a verbose target
  MilLoc first_short;
  int odd_paths;         // T12: weight files not at @model_path/weights/<file>
  const BlobFile *first_odd;
  MilLoc first_odd_loc;
} Ctx;

//
// Findings
//

static void vfinding(Ctx *x, RuleId r, Severity s, MilLoc loc, const char *fmt, va_list ap) {
  if (s == SEV_OFF)
    return;
  MilCheck *c = x->c;
  if (c->n == c->cap) {
    int cap = c->cap ? 2 * c->cap : 16;
    c->findings = arena_grow(&c->arena, c->findings, (size_t)c->cap * sizeof *c->findings,
                             (size_t)cap * sizeof *c->findings);
    c->cap = cap;
  }
  char msg[1024];
  vsnprintf(msg, sizeof msg, fmt, ap);
  c->findings[c->n++] = (MilFinding){r, s, loc, x->f ? x->f->name : NULL,
                                     arena_strdup(&c->arena, msg)};
  c->count[s]++;
}

// A finding with the severity the target gives rule `r`.
ANERT_PRINTF(4, 5)
static void report(Ctx *x, RuleId r, MilLoc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfinding(x, r, target_rule_severity(x->t, r), loc, fmt, ap);
  va_end(ap);
}

// A finding with an explicit severity (still off where the target switches
// the rule off).
ANERT_PRINTF(5, 6)
static void report_as(Ctx *x, RuleId r, Severity s, MilLoc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfinding(x, r, target_rule_severity(x->t, r) == SEV_OFF ? SEV_OFF : s, loc, fmt, ap);
  va_end(ap);
}

static bool loc_before(MilLoc a, MilLoc b) {
  return a.line != b.line ? a.line < b.line : a.col < b.col;
}

// Stable insertion sort by location: findings arrive nearly in order.
static void findings_sort(MilCheck *c) {
  for (int i = 1; i < c->n; i++) {
    MilFinding f = c->findings[i];
    int j = i;
    for (; j > 0 && loc_before(f.loc, c->findings[j - 1].loc); j--)
      c->findings[j] = c->findings[j - 1];
    c->findings[j] = f;
  }
}

void milcheck_free(MilCheck *c) {
  arena_free(&c->arena);
  *c = (MilCheck){0};
}

//
// Places in the text that the program structure does not record
//

static void lines_index(Ctx *x) {
  const char *t = x->p->text;
  int n = 1;
  for (size_t i = 0; i < x->p->len; i++)
    n += t[i] == '\n';
  x->lines = arena_alloc(&x->tmp, (size_t)n * sizeof *x->lines);
  x->lines[0] = 0;
  x->nlines = 1;
  for (size_t i = 0; i < x->p->len; i++)
    if (t[i] == '\n')
      x->lines[x->nlines++] = i + 1;
}

// Byte offset of a location, or (size_t)-1 outside the text.
static size_t loc_offset(const Ctx *x, MilLoc loc) {
  if (loc.line < 1 || loc.line > x->nlines || loc.col < 1)
    return (size_t)-1;
  size_t off = x->lines[loc.line - 1] + (size_t)loc.col - 1;
  return off < x->p->len ? off : (size_t)-1;
}

// The location of text[off, off + n).
static MilLoc offset_loc(const Ctx *x, size_t off, size_t n) {
  int lo = 0, hi = x->nlines - 1;
  while (lo < hi) { // the last line starting at or before off
    int mid = (lo + hi + 1) / 2;
    if (x->lines[mid] <= off)
      lo = mid;
    else
      hi = mid - 1;
  }
  int col = (int)(off - x->lines[lo]) + 1;
  return (MilLoc){lo + 1, col, lo + 1, col + (int)(n ? n - 1 : 0)};
}

// The first occurrence of `needle` at or after `from`, as a location of
// `n` bytes starting `skip` bytes into it; `fallback` if there is none.
static MilLoc find_loc(const Ctx *x, size_t from, const char *needle, size_t skip, size_t n,
                       MilLoc fallback) {
  if (from >= x->p->len)
    return fallback;
  const char *hit = strstr(x->p->text + from, needle);
  return hit ? offset_loc(x, (size_t)(hit - x->p->text) + skip, n) : fallback;
}

//
// Types, bindings and constant parameters
//

static bool is_tensor(const MilType *t) { return t && t->kind == MIL_T_TENSOR; }

static bool starts_with(const char *s, const char *prefix) {
  return !strncmp(s, prefix, strlen(prefix));
}

// Bytes of a static tensor (sub-byte dtypes rounded up), -1 if dynamic;
// at most HUGE_EXTENT.
static int64_t type_bytes(const MilType *t) {
  int64_t n = is_tensor(t) ? mil_type_count(t) : -1;
  if (n < 0)
    return -1;
  return n >= HUGE_EXTENT ? HUGE_EXTENT : (n * mil_dtype_bits(t->dtype) + 7) / 8;
}

// "tensor<fp16, [1, 768, 1, 256]>"
static const char *type_text(Ctx *x, const MilType *t) {
  return t ? mil_type_str(&x->c->arena, t, false) : "a non-tensor value";
}

static const char *count_text(Ctx *x, int64_t v) {
  char buf[32];
  return arena_strdup(&x->c->arena, fmt_count(buf, sizeof buf, v));
}

static const MilType *binding_type(const MilFunc *f, const MilBinding *b) {
  if (b->kind == MIL_B_REF)
    return b->var >= 0 && b->var < f->nvars ? f->vars[b->var].type : NULL;
  return b->kind == MIL_B_VALUE ? b->value->type : NULL;
}

static const MilOp *producer(const MilFunc *f, int var) {
  int op = var >= 0 && var < f->nvars ? f->vars[var].op : -1;
  return op >= 0 ? &f->ops[op] : NULL;
}

static bool op_is(const MilOp *op, const char *name) { return op && !strcmp(op->op, name); }

// The constant a binding stands for: a literal, or the val of a const op.
static const MilValue *binding_const(const MilFunc *f, const MilBinding *b) {
  if (b->kind == MIL_B_VALUE)
    return b->value;
  const MilOp *op = b->kind == MIL_B_REF ? producer(f, b->var) : NULL;
  const MilAttr *val = op_is(op, "const") ? mil_attr(op->attrs, op->nattrs, "val") : NULL;
  return val ? val->value : NULL;
}

// A parameter of an op as a constant: an argument, or (as coremltools
// writes constexpr ops) an attribute of that name.
static const MilValue *param_const(const MilFunc *f, const MilOp *op, const char *name) {
  const MilArg *a = mil_arg(op, name);
  if (a)
    return binding_const(f, &a->b);
  const MilAttr *at = mil_attr(op->attrs, op->nattrs, name);
  return at ? at->value : NULL;
}

static bool has_param(const MilOp *op, const char *name) {
  return mil_arg(op, name) || mil_attr(op->attrs, op->nattrs, name);
}

static const char *param_string(const MilFunc *f, const MilOp *op, const char *name) {
  const MilValue *v = param_const(f, op, name);
  bool ok = v && v->kind == MIL_V_TENSOR && v->type->dtype == MIL_STRING && v->count == 1;
  return ok ? v->s[0] : NULL;
}

static bool param_bool(const MilFunc *f, const MilOp *op, const char *name, bool dflt) {
  const MilValue *v = param_const(f, op, name);
  bool ok = v && v->kind == MIL_V_TENSOR && v->type->dtype == MIL_BOOL && v->count == 1;
  return ok ? v->i[0] != 0 : dflt;
}

static const MilType *param_type(const MilFunc *f, const MilOp *op, const char *name) {
  const MilArg *a = mil_arg(op, name);
  return a ? binding_type(f, &a->b) : NULL;
}

static bool binding_uses(const MilBinding *b, int var) {
  if (b->kind == MIL_B_REF)
    return b->var == var;
  for (int i = 0; b->kind == MIL_B_TUPLE && i < b->nitems; i++)
    if (binding_uses(&b->items[i], var))
      return true;
  return false;
}

// Whether every op that reads `var` is a cast (a conversion at the boundary).
static bool only_cast_uses(const MilFunc *f, int var) {
  for (int i = 0; i < f->nops; i++)
    for (int j = 0; j < f->ops[i].nargs; j++)
      if (binding_uses(&f->ops[i].args[j].b, var) && !op_is(&f->ops[i], "cast"))
        return false;
  return true;
}

//
// ANE-T07: the program's dialect
//

// "1.3" -> 1003; parts clamped so that nothing overflows.
static long version_number(const char *v) {
  char *end;
  long major = strtol(v, &end, 10), minor = *end == '.' ? strtol(end + 1, &end, 10) : 0;
  major = major < 0 ? 0 : major > 999999 ? 999999 : major;
  return major * 1000 + (minor < 0 ? 0 : minor > 999 ? 999 : minor);
}

static void check_version(Ctx *x) {
  const char *v = x->p->version ? x->p->version : "";
  if (version_number(v) <= version_number(x->t->program))
    return;
  MilLoc loc = find_loc(x, 0, "program(", 8, strlen(v), (MilLoc){0});
  report(x, RULE_T07, loc,
         "program(%s) is newer than target %s accepts: %s (%s) takes program(%s) with %s and "
         "%s scalar literals",
         v, x->t->name, x->t->name, x->t->chips, x->t->program, x->t->opset,
         x->t->short_literals ? "short" : "verbose");
}

static void check_opset(Ctx *x) {
  const char *o = x->f->opset ? x->f->opset : "";
  int n = opset_number(o), max = opset_number(x->t->opset);
  if (n && n <= max)
    return;
  char needle[80];
  snprintf(needle, sizeof needle, "<%.70s>", o);
  size_t at = loc_offset(x, x->f->loc);
  MilLoc loc = at == (size_t)-1 ? x->f->loc : find_loc(x, at, needle, 1, strlen(o), x->f->loc);
  if (!n)
    report(x, RULE_T07, loc, "unknown opset '%s' in function '%s'; target %s uses %s", o,
           x->f->name, x->t->name, x->t->opset);
  else
    report(x, RULE_T07, loc, "function '%s' uses opset %s; target %s (%s) has at most %s", x->f->name,
           o, x->t->name, x->t->chips, x->t->opset);
}

// A rank-0 literal written `int32(1)` rather than `tensor<int32, []>(1)`.
static void note_scalar_spelling(Ctx *x, const MilValue *v) {
  if (x->t->short_literals || v->kind != MIL_V_TENSOR || v->type->rank != 0)
    return;
  size_t at = loc_offset(x, v->loc);
  if (at == (size_t)-1)
    return;
  const char *name = mil_dtype_name(v->type->dtype), *s = x->p->text + at;
  size_t n = strlen(name);
  if (strncmp(s, name, n) || s[n] != '(')
    return; // tensor<...>(...), or an element of a typed container
  if (x->short_scalars++ == 0)
    x->first_short = v->loc;
}

static void report_scalar_spelling(Ctx *x) {
  if (!x->short_scalars)
    return;
  report(x, RULE_T07, x->first_short,
         "%d scalar literal%s in short spelling (e.g. int32(1)); target %s (%s) needs the "
         "verbose program(1.0) spelling tensor<int32, []>(1)",
         x->short_scalars, x->short_scalars == 1 ? "" : "s", x->t->name, x->t->chips);
}

//
// ANE-T13: the program's buildInfo
//

static bool dict_has_key(const MilValue *v, const char *key) {
  for (int i = 0; v->kind == MIL_V_DICT && i + 1 < v->nitems; i += 2) {
    const MilValue *k = v->items[i];
    if (k->kind == MIL_V_TENSOR && k->type->dtype == MIL_STRING && k->count == 1 &&
        !strcmp(k->s[0], key))
      return true;
  }
  return false;
}

static void check_build_info(Ctx *x) {
  const MilAttr *bi = mil_attr(x->p->attrs, x->p->nattrs, "buildInfo");
  if (bi && dict_has_key(bi->value, "coremlc-version"))
    return;
  MilLoc loc = bi ? bi->loc : find_loc(x, 0, "program", 0, 7, (MilLoc){0});
  report(x, RULE_T13, loc,
         "%s; every ANE program known to run carries {\"coremlc-version\", \"3505.4.1\"} "
         "(maderix, Orion, fspecii, Apple's printer): add it",
         bi ? "buildInfo has no \"coremlc-version\" key" : "the program has no buildInfo");
}

//
// ANE-T06 (weights files), ANE-T10 (-inf) in values
//

// T10: elements that are -inf (an error), or finite but below the fp16
// minimum (a warning: they round to -inf in fp16), among n.
typedef struct MaskCount {
  int64_t ninf, nlow, n;
} MaskCount;

static void mask_add(MaskCount *m, double d) {
  m->ninf += isinf(d) && d < 0;
  m->nlow += !isinf(d) && d < FP16_MIN;
  m->n++;
}

static void report_mask(Ctx *x, MilLoc loc, const char *what, MaskCount m) {
  if (m.ninf)
    report(x, RULE_T10, loc,
           "%s holds -inf (%s of %s elements); write masked positions as -65504 (the fp16 "
           "minimum) or -40000",
           what, count_text(x, m.ninf), count_text(x, m.n));
  if (m.nlow)
    report_as(x, RULE_T10, SEV_WARNING, loc,
              "%s holds %s value%s below -65504: %s to -inf in fp16; use -65504 or -40000", what,
              count_text(x, m.nlow), m.nlow == 1 ? "" : "s", m.nlow == 1 ? "it rounds" : "they round");
}

// Little-endian fp16 or fp32 data of a weight blob.
static MaskCount mask_count_blob(const MilBlob *b) {
  MaskCount m = {0};
  bool half = b->dtype == MILBLOB_FP16;
  for (uint64_t i = 0; i + (half ? 2 : 4) <= b->size; i += half ? 2 : 4) {
    const unsigned char *p = b->data + i;
    uint32_t bits = half ? (uint32_t)(p[0] | p[1] << 8)
                         : (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                               (uint32_t)p[3] << 24;
    float f;
    memcpy(&f, &bits, 4);
    mask_add(&m, half ? fp16_to_f32((uint16_t)bits) : f);
  }
  return m;
}

static BlobFile *blob_file(Ctx *x, const MilValue *v) {
  for (int i = 0; i < x->nblobs; i++)
    if (!strcmp(x->blobs[i].path, v->blob_path))
      return &x->blobs[i];
  x->blobs = arena_grow(&x->tmp, x->blobs, (size_t)x->nblobs * sizeof *x->blobs,
                        (size_t)(x->nblobs + 1) * sizeof *x->blobs);
  BlobFile *b = &x->blobs[x->nblobs++];
  *b = (BlobFile){.path = v->blob_path, .file_name = v->blob_file ? v->blob_file : v->blob_path};
  return b;
}

// The first message a milblob call printed into `buf`, without its
// "file: error: " prefix.
static char *captured_message(Ctx *x, char *buf) {
  char *m = buf ? strstr(buf, "error: ") : NULL;
  m = m ? m + 7 : buf ? buf : "unreadable";
  m[strcspn(m, "\n")] = '\0';
  return arena_strdup(&x->c->arena, m);
}

static bool blob_open(Ctx *x, BlobFile *b, MilLoc loc) {
  const char *file = b->file_name;
  struct stat st;
  if (stat(file, &st) != 0) {
    b->missing = true;
    report_as(x, RULE_T06, SEV_INFO, loc, "not checked: weights file '%s' missing", file);
    return false;
  }
  char *buf = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&buf, &len);
  RtDiag d = {.out = mem};
  bool ok = mem && milblob_open(&b->file, file, &d);
  if (mem)
    fclose(mem);
  if (!ok)
    report(x, RULE_T06, loc, "weights file '%s': %s", file, captured_message(x, buf));
  free(buf);
  b->bad = !ok;
  return ok;
}

static int milblob_code(MilDType t) {
  switch (t) {
  case MIL_FP16: return MILBLOB_FP16;
  case MIL_FP32: return MILBLOB_FP32;
  case MIL_UINT8: return MILBLOB_UINT8;
  case MIL_INT8: return MILBLOB_INT8;
  case MIL_BF16: return MILBLOB_BF16;
  case MIL_INT16: return MILBLOB_INT16;
  case MIL_UINT16: return MILBLOB_UINT16;
  case MIL_INT4: return MILBLOB_INT4;
  case MIL_INT32: return MILBLOB_INT32;
  case MIL_UINT32: return MILBLOB_UINT32;
  default: return -1;
  }
}

// The blob itself: the record at the offset, its dtype and size against
// the declared type, and -inf in float data (T10).
static void check_blob_data(Ctx *x, BlobFile *b, const MilValue *v) {
  char *buf = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&buf, &len);
  RtDiag d = {.out = mem};
  MilBlob blob;
  bool ok = mem && milblob_get(&b->file, v->blob_offset, &blob, &d);
  if (mem)
    fclose(mem);
  if (!ok)
    report(x, RULE_T06, v->loc, "BLOBFILE offset %llu: %s", (unsigned long long)v->blob_offset,
           captured_message(x, buf));
  free(buf);
  if (!ok)
    return;
  int64_t want = type_bytes(v->type);
  if ((int)blob.dtype != milblob_code(v->type->dtype))
    report(x, RULE_T06, v->loc, "the blob at offset %llu holds MILBlob dtype %u, not %s",
           (unsigned long long)v->blob_offset, blob.dtype, mil_dtype_name(v->type->dtype));
  else if (want >= 0 && (uint64_t)want != blob.size)
    report(x, RULE_T06, v->loc, "the blob at offset %llu holds %s bytes; %s needs %s",
           (unsigned long long)v->blob_offset, count_text(x, (int64_t)blob.size),
           type_text(x, v->type), count_text(x, want));
  else if (blob.dtype == MILBLOB_FP16 || blob.dtype == MILBLOB_FP32)
    report_mask(x, v->loc, "the weight blob", mask_count_blob(&blob));
}

// T12: every anchor keeps its weight files at @model_path/weights/<file>.
static void note_blob_path(Ctx *x, const BlobFile *b, MilLoc loc) {
  static const char dir[] = "@model_path/weights/";
  const char *file = starts_with(b->path, dir) ? b->path + strlen(dir) : NULL;
  if (file && *file && !strchr(file, '/'))
    return;
  if (x->odd_paths++ == 0)
    x->first_odd = b, x->first_odd_loc = loc;
}

static void report_blob_paths(Ctx *x) {
  if (!x->odd_paths)
    return;
  report(x, RULE_T12, x->first_odd_loc,
         "weight file '%s'%s not at @model_path/weights/<file>, where every ANE loader that "
         "was run puts weight files; no other layout is known to resolve",
         x->first_odd->path,
         x->odd_paths == 1 ? " is"
                           : arena_printf(&x->c->arena, " and %d more weight files are",
                                          x->odd_paths - 1));
}

static void check_blob(Ctx *x, const MilValue *v) {
  if (v->blob_offset < 64 || v->blob_offset % 64)
    report(x, RULE_T06, v->loc,
           "BLOBFILE offset %llu is not a metadata offset: offsets are 64-byte aligned and "
           "at least 64 (the first blob's metadata follows the 64-byte file header)",
           (unsigned long long)v->blob_offset);
  BlobFile *b = blob_file(x, v);
  if (b->uses == 0)
    note_blob_path(x, b, v->loc);
  if (++b->uses == 2 && x->t->weight_file_per_matrix)
    report(x, RULE_T07, v->loc,
           "'%s' holds more than one BLOBFILE; target %s (%s) wants one weight file per matrix",
           v->blob_path, x->t->name, x->t->chips);
  if (b->missing || b->bad || v->blob_offset < 64 || v->blob_offset % 64)
    return;
  if (b->file.bytes || blob_open(x, b, v->loc))
    check_blob_data(x, b, v);
}

static void check_value(Ctx *x, const MilValue *v) {
  if (v->kind == MIL_V_BLOB) {
    check_blob(x, v);
    return;
  }
  for (int i = 0; i < v->nitems; i++)
    check_value(x, v->items[i]);
  if (v->kind != MIL_V_TENSOR)
    return;
  note_scalar_spelling(x, v);
  if (!mil_dtype_is_float(v->type->dtype) || !v->f)
    return;
  MaskCount m = {0};
  for (int64_t i = 0; i < v->count; i++)
    mask_add(&m, v->f[i]);
  report_mask(x, v->loc, "a literal", m);
}

static void check_binding_values(Ctx *x, const MilBinding *b) {
  if (b->kind == MIL_B_VALUE)
    check_value(x, b->value);
  for (int i = 0; b->kind == MIL_B_TUPLE && i < b->nitems; i++)
    check_binding_values(x, &b->items[i]);
}

static void check_op_values(Ctx *x, const MilOp *op) {
  for (int i = 0; i < op->nargs; i++)
    check_binding_values(x, &op->args[i].b);
  for (int i = 0; i < op->nattrs; i++)
    check_value(x, op->attrs[i].value);
}

//
// Ops: ANE-T02, T03, T07 (cast), T08, T09, T11, T14, B01, B06, B10, B12 (K), B14, P05
//

// Optional parameters that must be written out (T02). rsqrt's epsilon is T11's.
static const struct {
  const char *op;
  const char *params[6];
} explicit_params[] = {
    {"conv", {"pad_type", "pad", "strides", "dilations", "groups"}},
    {"conv_transpose", {"pad_type", "pad", "strides", "dilations", "groups"}},
    {"concat", {"interleave"}},
    {"gelu", {"mode"}},
    {"matmul", {"transpose_x", "transpose_y"}},
    {"softmax", {"axis"}},
    {"reduce_sum", {"axes", "keep_dims"}},
    {"reduce_mean", {"axes", "keep_dims"}},
    {"reduce_max", {"axes", "keep_dims"}},
    {"reduce_min", {"axes", "keep_dims"}},
    {"layer_norm", {"axes", "epsilon"}},
    {"slice_by_index", {"stride", "begin_mask", "end_mask", "squeeze_mask"}},
};

static void check_explicit_params(Ctx *x, const MilOp *op) {
  for (size_t i = 0; i < sizeof explicit_params / sizeof *explicit_params; i++) {
    if (strcmp(explicit_params[i].op, op->op))
      continue;
    char missing[256] = "";
    int n = 0;
    for (const char *const *p = explicit_params[i].params; *p; p++)
      if (!has_param(op, *p))
        snprintf(missing + strlen(missing), sizeof missing - strlen(missing), "%s%s",
                 n++ ? ", " : "", *p);
    if (n)
      report(x, RULE_T02, op->loc,
             "'%s' leaves optional parameter%s %s to defaults; write %s explicitly (the ANE "
             "compiler rejects some omissions)",
             op->op, n == 1 ? "" : "s", missing, n == 1 ? "it" : "them");
  }
}

static bool no_ane_path_known(const char *op) {
  static const char *const known[] = {"gather", "scatter", "reduce_prod", "lstm", "gru", "rnn"};
  for (size_t i = 0; i < sizeof known / sizeof *known; i++)
    if (starts_with(op, known[i]))
      return true;
  return false;
}

static void check_op_set(Ctx *x, const MilOp *op) {
  if (target_op_allowed(x->t, op->op))
    return;
  if (op_is(op, "cast") && !x->t->in_graph_cast)
    report(x, RULE_T07, op->loc,
           "in-graph 'cast' is rejected on target %s (%s); give the program fp16 inputs and "
           "outputs",
           x->t->name, x->t->chips);
  else if (no_ane_path_known(op->op))
    report(x, RULE_T08, op->loc, "'%s' has no ANE path: it runs on the CPU", op->op);
  else
    report(x, RULE_T08, op->loc,
           "'%s' is not in target %s's ANE op set (ops with a known ANE path, opset %s): it "
           "runs on the CPU",
           op->op, x->t->name, x->t->opset);
}

// Whether an op is part of the fp16 compute that B01 is about: constants,
// casts and the int8 (de)quantizers are the boundary, not the compute.
static bool is_compute(const MilOp *op) {
  return !op_is(op, "const") && !op_is(op, "cast") && !op_is(op, "quantize") &&
         !op_is(op, "dequantize") && !starts_with(op->op, "constexpr_");
}

// B01 on what an op makes: fp16 is the ANE's one compute dtype (int8 only
// through the quantizers, which is_compute leaves out). Ops with no ANE path
// at all are T08's alone.
static void check_precision(Ctx *x, const MilOp *op) {
  bool ane = is_compute(op) && target_op_allowed(x->t, op->op);
  for (int i = 0; ane && i < op->noutputs; i++) {
    const MilVar *v = &x->f->vars[op->outputs[i]];
    if (!is_tensor(v->type) || v->type->dtype == MIL_FP16)
      continue;
    MilDType dt = v->type->dtype;
    const char *fix = mil_dtype_is_float(dt) ? "compute in fp16 and cast at the boundary"
                      : dt == MIL_INT8 || dt == MIL_UINT8
                          ? "int8 reaches the ANE only through quantize/dequantize"
                          : "the ANE computes in fp16 only";
    report(x, RULE_B01, op->loc, "'%s' computes in %s ('%s' is %s): the op leaves the ANE; %s",
           op->op, mil_dtype_name(dt), v->name, type_text(x, v->type), fix);
    return;
  }
}

static void check_conv(Ctx *x, const MilOp *op) {
  const MilType *bias = param_type(x->f, op, "bias"), *w = param_type(x->f, op, "weight");
  const MilType *in = param_type(x->f, op, "x");
  if (is_tensor(bias) && bias->rank != 1)
    report(x, RULE_T03, mil_arg(op, "bias")->loc,
           "conv bias is %s (rank %d); the ANE takes rank 1 [Cout]", type_text(x, bias),
           bias->rank);
  if (is_tensor(w) && w->rank == 5)
    report(x, RULE_T08, op->loc, "3-D conv (weight %s) has no ANE path: it runs on the CPU",
           type_text(x, w));
  if (is_tensor(in) && in->rank >= 2 && in->dims[1] >= x->t->conv_cin_reject)
    report(x, RULE_B06, op->loc,
           "conv with %s input channels: target %s rejects %s or more; split the contraction "
           "or use matmul",
           count_text(x, in->dims[1]), x->t->name, count_text(x, x->t->conv_cin_reject));
}

static void check_matmul(Ctx *x, const MilOp *op) {
  const MilType *a = param_type(x->f, op, "x");
  if (is_tensor(a) && a->rank >= 1) {
    bool tr = a->rank >= 2 && param_bool(x->f, op, "transpose_x", false);
    int64_t k = a->dims[a->rank - 1 - tr], m = x->t->matmul_k_multiple;
    if (k != MIL_ANY && k < HUGE_EXTENT && m > 0 && k % m)
      report(x, RULE_B10, op->loc,
             "matmul contraction dimension %lld is not a multiple of %lld (reported to give "
             "silent zeros); pad it to %lld",
             (long long)k, (long long)m, (long long)((k + m - 1) / m * m));
    if (k > x->t->max_spatial)
      report(x, RULE_B12, op->loc,
             "matmul contraction K = %s: target %s (%s) caps contractions at %s; split K into "
             "partial products",
             count_text(x, k), x->t->name, x->t->chips, count_text(x, x->t->max_spatial));
  }
  const char *names[] = {"x", "y"};
  for (int i = 0; i < 2; i++) {
    const MilArg *arg = mil_arg(op, names[i]);
    const MilValue *v = arg ? binding_const(x->f, &arg->b) : NULL;
    if (v && v->type->rank >= 2)
      report(x, RULE_P05, arg->loc,
             "matmul with a constant operand '%s': a 1x1 conv is ~3x faster for constant weights",
             names[i]);
  }
}

// An integer parameter given as a constant, or `dflt`.
static int64_t param_int(const MilFunc *f, const MilOp *op, const char *name, int64_t dflt) {
  const MilValue *v = param_const(f, op, name);
  bool ok = v && v->kind == MIL_V_TENSOR && v->i && mil_dtype_is_int(v->type->dtype) &&
            v->count == 1;
  return ok ? v->i[0] : dflt;
}

// T14: the length softmax normalizes over is a power of 2.
static void check_softmax(Ctx *x, const MilOp *op) {
  const MilType *in = param_type(x->f, op, "x");
  if (!is_tensor(in) || in->rank < 1)
    return;
  int64_t axis = param_int(x->f, op, "axis", -1);
  axis += axis < 0 ? in->rank : 0;
  int64_t n = axis >= 0 && axis < in->rank ? in->dims[axis] : MIL_ANY;
  if (n <= 0 || n >= HUGE_EXTENT || (n & (n - 1)) == 0)
    return;
  int64_t p2 = 1;
  while (p2 < n)
    p2 *= 2;
  report(x, RULE_T14, op->loc,
         "softmax over axis %lld of length %lld (%s), not a power of 2: reported to fail with "
         "InvalidMILProgram (Espresso); pad the axis to %lld with masked entries",
         (long long)axis, (long long)n, type_text(x, in), (long long)p2);
}

// B14: a slice of a function input starts its width (last axis) at a
// multiple of the profile's strip alignment.
static void check_input_slice(Ctx *x, const MilOp *op) {
  const MilArg *a = mil_arg(op, "x");
  const MilValue *begin = param_const(x->f, op, "begin");
  if (!a || a->b.kind != MIL_B_REF || producer(x->f, a->b.var) || !begin || !begin->i ||
      begin->count < 1)
    return;
  int64_t col = begin->i[begin->count - 1], m = x->t->strip_align;
  if (m > 1 && col % m)
    report(x, RULE_B14, op->loc,
           "slice of input '%s' starts at width offset %lld, not a multiple of %lld elements: "
           "width-offset slices take the crop-DMA path (reported to saturate on A13/A14); "
           "start the strip at %lld",
           x->f->vars[a->b.var].name, (long long)col, (long long)m,
           (long long)((col + m - 1) / m * m));
}

static void check_op_specific(Ctx *x, const MilOp *op) {
  if (op_is(op, "softmax")) {
    check_softmax(x, op);
  } else if (op_is(op, "slice_by_size")) {
    check_input_slice(x, op);
  } else if (op_is(op, "conv")) {
    check_conv(x, op);
  } else if (op_is(op, "matmul")) {
    check_matmul(x, op);
  } else if (op_is(op, "scaled_dot_product_attention") && mil_arg(op, "attn_mask")) {
    report(x, RULE_T09, mil_arg(op, "attn_mask")->loc,
           "scaled_dot_product_attention ignores attn_mask on the ANE; write matmul, scale, "
           "add the mask, softmax, matmul");
  } else if (op_is(op, "silu")) {
    report(x, RULE_T11, op->loc, "prefer x * sigmoid(x) (mul and sigmoid) to 'silu'");
  } else if (op_is(op, "rsqrt") && !has_param(op, "epsilon")) {
    report(x, RULE_T11, op->loc,
           "'rsqrt' without epsilon; write epsilon explicitly or use pow(x, -0.5) after adding "
           "it");
  } else if (op_is(op, "pad")) {
    const char *mode = param_string(x->f, op, "mode");
    if (!mode || !strcmp(mode, "constant"))
      report(x, RULE_T08, op->loc,
             "constant-mode 'pad'%s has no ANE path: it runs on the CPU",
             mode ? "" : " (the default mode)");
  }
}

//
// Shapes of values: ANE-B03, B05, B12, B13
//

// B05: channels and spatial axes of a value of rank 4 or 5.
static void check_surface_extents(Ctx *x, const MilVar *v) {
  const MilType *t = v->type;
  if (t->dims[1] > x->t->max_channels)
    report(x, RULE_B05, v->loc, "'%s' has %s channels (%s); target %s takes %s at most; split",
           v->name, count_text(x, t->dims[1]), type_text(x, t), x->t->name,
           count_text(x, x->t->max_channels));
  for (int i = 2; i < t->rank; i++)
    if (t->dims[i] > x->t->max_spatial)
      report(x, RULE_B05, v->loc,
             "'%s' has spatial extent %s on axis %d (%s); target %s takes %s at most; split",
             v->name, count_text(x, t->dims[i]), i, type_text(x, t), x->t->name,
             count_text(x, x->t->max_spatial));
}

// Whether B05 reports axis i of a rank-5 value.
static bool surface_axis_reported(const TargetProfile *p, const MilType *t, int i) {
  return t->rank >= 4 && (i >= 2 || (i == 1 && t->dims[1] > p->max_channels));
}

// B12: every axis of a value that is not rank 4 is capped like a spatial axis.
static void check_axis_extents(Ctx *x, const MilVar *v) {
  const MilType *t = v->type;
  for (int i = 0; i < t->rank; i++)
    if (t->dims[i] > x->t->max_spatial && !surface_axis_reported(x->t, t, i))
      report(x, RULE_B12, v->loc,
             "'%s' has extent %s on axis %d (%s); target %s (%s) caps every axis of a value "
             "that is not rank 4 at %s; split, or keep it rank 4 [1, C, 1, S]",
             v->name, count_text(x, t->dims[i]), i, type_text(x, t), x->t->name, x->t->chips,
             count_text(x, x->t->max_spatial));
}

static void check_var_shape(Ctx *x, const MilVar *v, int *ndynamic, const MilVar **first) {
  const MilType *t = v->type;
  if (!is_tensor(t))
    return;
  if (t->rank > 5)
    report(x, RULE_B03, v->loc, "'%s' has rank %d (%s); the ANE takes rank 5 at most", v->name,
           t->rank, type_text(x, t));
  else if (t->rank == 5)
    report(x, RULE_B13, v->loc,
           "'%s' has rank 5 (%s): transpose+matmul fails to compile at rank 5 or more "
           "(ANEForge); lower it to rank 4",
           v->name, type_text(x, t));
  if (mil_type_count(t) < 0 && (*ndynamic)++ == 0)
    *first = v;
  if (v->op >= 0 && op_is(&x->f->ops[v->op], "const"))
    return;
  if (t->rank >= 4)
    check_surface_extents(x, v);
  if (t->rank != 4)
    check_axis_extents(x, v);
}

static void check_shapes(Ctx *x) {
  int ndynamic = 0;
  const MilVar *first = NULL;
  for (int i = 0; i < x->f->nvars; i++)
    check_var_shape(x, &x->f->vars[i], &ndynamic, &first);
  if (ndynamic)
    report(x, RULE_B03, first->loc,
           "'%s' has a dynamic shape (%s)%s; the ANE takes static shapes only", first->name,
           type_text(x, first->type),
           ndynamic > 1 ? arena_printf(&x->c->arena, " and so do %d more values in '%s'",
                                       ndynamic - 1, x->f->name)
                        : "");
}

//
// Inputs and outputs: ANE-T05, B01, B02, B04, B07, B08, B09, B11
//

static void check_io_order(Ctx *x, const int *vars, int n, const char *kind) {
  for (int i = 1; i < n; i++) {
    const MilVar *a = &x->f->vars[vars[i - 1]], *b = &x->f->vars[vars[i]];
    if (strcmp(a->name, b->name) > 0) {
      report(x, RULE_T05, b->loc,
             "%s '%s' is declared after '%s' but binds before it if buffers bind in "
             "alphabetical order of the names (Orion; disputed: fspecii binds in declaration "
             "order on M4); rename so both orders agree",
             kind, b->name, a->name);
      return;
    }
  }
}

// B01 at the boundary: fp16 I/O, or fp32 converted by a cast right there
// where the target has in-graph casts.
static void check_io_dtype(Ctx *x, int var, bool input) {
  const MilVar *v = &x->f->vars[var];
  MilDType dt = v->type->dtype;
  if (dt == MIL_FP16)
    return;
  bool boundary = mil_dtype_is_float(dt) && x->t->in_graph_cast &&
                  (input ? only_cast_uses(x->f, var) : op_is(producer(x->f, var), "cast"));
  if (!boundary)
    report(x, RULE_B01, v->loc, "%s '%s' is %s; ANE I/O is fp16%s", input ? "input" : "output",
           v->name, mil_dtype_name(dt),
           x->t->in_graph_cast && mil_dtype_is_float(dt)
               ? " (or a float converted by cast right at the boundary)"
               : "");
}

static void check_io_layout(Ctx *x, const MilVar *v, const char *kind) {
  const MilType *t = v->type;
  if (t->rank != 4 || t->dims[0] != 1 || t->dims[2] != 1)
    report(x, RULE_B02, v->loc, "%s '%s' is %s; ANE I/O is rank 4 [1, C, 1, S]", kind, v->name,
           type_text(x, t));
  int64_t s = t->rank ? t->dims[t->rank - 1] : 1, bits = mil_dtype_bits(t->dtype);
  int align = x->t->surface_align;
  if (s == MIL_ANY || s >= HUGE_EXTENT || bits < 8 || s * bits / 8 % align == 0)
    return;
  int64_t per = align * 8 / bits;
  report(x, align > 64 ? RULE_B11 : RULE_B04, v->loc,
         "%s '%s': last axis %lld x %s = %lld bytes, not a multiple of %d%s; pad S to %lld", kind,
         v->name, (long long)s, mil_dtype_name(t->dtype), (long long)(s * bits / 8), align,
         align > 64 ? arena_printf(&x->c->arena, " (target %s's surfaces are %d-byte aligned)",
                                   x->t->name, align)
                    : "",
         (long long)((s + per - 1) / per * per));
}

// B07: rows (the last axis) under the per-row minimum, else the whole
// surface under the disputed byte minimum.
static void check_io_size(Ctx *x, const MilVar *v, const char *kind) {
  const MilType *t = v->type;
  int64_t bytes = type_bytes(t), min = x->t->min_surface_bytes, row_min = x->t->min_row_bytes;
  int64_t s = t->rank ? t->dims[t->rank - 1] : 1, bits = mil_dtype_bits(t->dtype);
  if (bytes < 0 || bits < 8 || s < 0 || s >= HUGE_EXTENT)
    return;
  int64_t row = s * bits / 8, per = bits / 8;
  if (row < row_min) {
    report(x, RULE_B07, v->loc,
           "%s '%s' has rows of %lld bytes (last axis %lld x %s), under target %s's %lld-byte "
           "per-row minimum: it compiles but fails at eval; pad S to %lld",
           kind, v->name, (long long)row, (long long)s, mil_dtype_name(t->dtype), x->t->name,
           (long long)row_min, (long long)((row_min + per - 1) / per));
    return;
  }
  if (bytes >= min)
    return;
  per = s ? bytes / s : 0;
  const char *hint = per > 0 && t->rank
                         ? arena_printf(&x->c->arena, "; pad S to %lld", (long long)((min + per - 1) / per))
                         : "";
  report(x, RULE_B07, v->loc,
         "%s '%s' is %s bytes; surfaces under %s bytes fail at eval on target %s (disputed: "
         "the reports also fit a per-row minimum; profile value)%s",
         kind, v->name, count_text(x, bytes), count_text(x, min), x->t->name, hint);
}

static void check_io_tensor(Ctx *x, int var, bool input) {
  const MilVar *v = &x->f->vars[var];
  const char *kind = input ? "input" : "output";
  if (!is_tensor(v->type)) {
    report(x, RULE_B02, v->loc, "%s '%s' is not a tensor; ANE I/O is rank 4 [1, C, 1, S] fp16",
           kind, v->name);
    return;
  }
  check_io_dtype(x, var, input);
  check_io_layout(x, v, kind);
  check_io_size(x, v, kind);
}

static void check_io_sizes(Ctx *x, const int *vars, int n, const char *kind) {
  const MilVar *big = NULL;
  for (int i = 0; i < n; i++)
    if (type_bytes(x->f->vars[vars[i]].type) > (big ? type_bytes(big->type) : -1))
      big = &x->f->vars[vars[i]];
  for (int i = 0; big && i < n; i++) {
    const MilVar *v = &x->f->vars[vars[i]];
    int64_t bytes = type_bytes(v->type);
    if (bytes >= 0 && bytes < type_bytes(big->type))
      report(x, RULE_B08, v->loc,
             "%s '%s' is %s bytes, %s '%s' %s: the %ss of one program must be the same size "
             "(error 0x1d); pad to the largest or pack into one tensor",
             kind, v->name, count_text(x, bytes), kind, big->name,
             count_text(x, type_bytes(big->type)), kind);
  }
}

static void check_io(Ctx *x) {
  const MilFunc *f = x->f;
  check_io_order(x, f->inputs, f->ninputs, "input");
  check_io_order(x, f->outputs, f->noutputs, "output");
  for (int i = 0; i < f->ninputs; i++)
    check_io_tensor(x, f->inputs[i], true);
  for (int i = 0; i < f->noutputs; i++)
    check_io_tensor(x, f->outputs[i], false);
  check_io_sizes(x, f->inputs, f->ninputs, "input");
  check_io_sizes(x, f->outputs, f->noutputs, "output");
  if (f->ninputs > 1)
    report(x, RULE_B09, f->vars[f->inputs[1]].loc,
           "%d inputs; target %s takes one input tensor per program (0x1d otherwise, disputed: "
           "profile switch inputs=single); pack them on channels or spatially",
           f->ninputs, x->t->name);
}

//
// ANE-P03: weights plus I/O, a lower bound of the working set
//

// P03's curve: maderix sram_probe on an M4 Max, GFLOPS per MB of working set.
static const struct {
  double mb, gflops_per_mb;
} sram_curve[] = {{12.5, 282.6}, {32, 59.2}, {128, 8.0}};
enum { NSRAM_CURVE = sizeof sram_curve / sizeof *sram_curve };

// Throughput at a working set of `mb` as a share of the throughput at the
// curve's first point (log-log interpolation; the last point's beyond it).
static double sram_share(double mb) {
  const int last = NSRAM_CURVE - 1;
  double peak = sram_curve[0].mb * sram_curve[0].gflops_per_mb;
  if (mb <= sram_curve[0].mb)
    return 1;
  if (mb >= sram_curve[last].mb)
    return sram_curve[last].mb * sram_curve[last].gflops_per_mb / peak;
  int i = 1;
  while (mb > sram_curve[i].mb)
    i++;
  double u = log(mb / sram_curve[i - 1].mb) / log(sram_curve[i].mb / sram_curve[i - 1].mb);
  double g = exp(log(sram_curve[i - 1].gflops_per_mb) +
                 u * log(sram_curve[i].gflops_per_mb / sram_curve[i - 1].gflops_per_mb));
  return mb * g / peak;
}

static void check_working_set(Ctx *x) {
  int64_t bytes = 0;
  for (int i = 0; i < x->f->nvars; i++) {
    const MilVar *v = &x->f->vars[i];
    const MilOp *op = producer(x->f, i);
    bool io = !op, weight = op_is(op, "const") || (op && starts_with(op->op, "constexpr_"));
    for (int j = 0; !io && j < x->f->noutputs; j++)
      io = x->f->outputs[j] == i;
    int64_t b = io || weight ? type_bytes(v->type) : -1;
    bytes += b > 0 ? b : 0; // each at most HUGE_EXTENT: no overflow below 2^23 values
    if (bytes >= HUGE_EXTENT)
      break;
  }
  double mb = (double)bytes / (1 << 20), top = sram_curve[NSRAM_CURVE - 1].mb;
  if (bytes > x->t->sram_bytes)
    report(x, RULE_P03, x->f->loc,
           "function '%s': weights and I/O alone are %s bytes (%.1f MB), over the ~%s bytes of "
           "SRAM of target %s: past the SRAM cliff, expect %s%.0f%% of the throughput in SRAM "
           "(maderix sram_probe: ~283 GFLOPS/MB at 12.5 MB, 59 at 32 MB, 8 at 128 MB); split "
           "or tile",
           x->f->name, count_text(x, bytes), mb, count_text(x, x->t->sram_bytes), x->t->name,
           mb > top ? "under " : "~", 100 * sram_share(mb));
}

//
// The driver
//

static void check_func(Ctx *x, const MilFunc *f) {
  x->f = f;
  check_opset(x);
  for (int i = 0; i < f->nattrs; i++)
    check_value(x, f->attrs[i].value);
  check_io(x);
  for (int i = 0; i < f->nops; i++) {
    const MilOp *op = &f->ops[i];
    check_op_set(x, op);
    check_explicit_params(x, op);
    check_precision(x, op);
    check_op_specific(x, op);
    check_op_values(x, op);
  }
  check_shapes(x);
  check_working_set(x);
  x->f = NULL;
}

void milcheck_run(MilCheck *c, const MilProgram *p, const TargetProfile *t) {
  Ctx x = {.c = c, .p = p, .t = t};
  lines_index(&x);
  check_version(&x);
  check_build_info(&x);
  for (int i = 0; i < p->nfuncs; i++)
    check_func(&x, &p->funcs[i]);
  report_scalar_spelling(&x);
  report_blob_paths(&x);
  for (int i = 0; i < x.nblobs; i++)
    if (x.blobs[i].file.bytes)
      milblob_close(&x.blobs[i].file);
  arena_free(&x.tmp);
  findings_sort(c);
}
