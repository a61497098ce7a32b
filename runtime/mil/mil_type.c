// mil_type.c — MIL dtypes and types: the dtype table (names, widths, kinds,
// value ranges), type equality and spelling, and the small lookups into a
// program (mil_func, mil_arg, mil_attr).
#include "mil.h"

#include <math.h>
#include <string.h>

typedef struct DTypeInfo {
  const char *name;
  int bits;      // storage bits of one element; 0 for string
  bool is_float;
  bool is_signed; // integers: two's complement
} DTypeInfo;

static const DTypeInfo dtypes[MIL_NDTYPES] = {
    [MIL_BOOL] = {"bool", 8, false, false},     [MIL_STRING] = {"string", 0, false, false},
    [MIL_FP16] = {"fp16", 16, true, true},      [MIL_FP32] = {"fp32", 32, true, true},
    [MIL_FP64] = {"fp64", 64, true, true},      [MIL_BF16] = {"bf16", 16, true, true},
    [MIL_INT4] = {"int4", 4, false, true},      [MIL_INT8] = {"int8", 8, false, true},
    [MIL_INT16] = {"int16", 16, false, true},   [MIL_INT32] = {"int32", 32, false, true},
    [MIL_INT64] = {"int64", 64, false, true},   [MIL_UINT1] = {"uint1", 1, false, false},
    [MIL_UINT2] = {"uint2", 2, false, false},   [MIL_UINT4] = {"uint4", 4, false, false},
    [MIL_UINT8] = {"uint8", 8, false, false},   [MIL_UINT16] = {"uint16", 16, false, false},
    [MIL_UINT32] = {"uint32", 32, false, false}, [MIL_UINT64] = {"uint64", 64, false, false},
};

const char *mil_dtype_name(MilDType t) {
  return (unsigned)t < MIL_NDTYPES ? dtypes[t].name : "?";
}

int mil_dtype_lookup(const char *name) {
  for (int t = 0; t < MIL_NDTYPES; t++)
    if (!strcmp(dtypes[t].name, name))
      return t;
  return -1;
}

bool mil_dtype_is_float(MilDType t) {
  return (unsigned)t < MIL_NDTYPES && dtypes[t].is_float;
}

int mil_dtype_bits(MilDType t) {
  return (unsigned)t < MIL_NDTYPES ? dtypes[t].bits : 0;
}

bool mil_dtype_is_int(MilDType t) {
  return (unsigned)t < MIL_NDTYPES && t != MIL_BOOL && t != MIL_STRING && !dtypes[t].is_float;
}

// The range of an integer dtype as [lo, hi]; uint64's hi is UINT64_MAX.
void mil_dtype_int_range(MilDType t, int64_t *lo, uint64_t *hi) {
  int bits = mil_dtype_bits(t);
  if ((unsigned)t < MIL_NDTYPES && dtypes[t].is_signed) {
    *lo = bits >= 64 ? INT64_MIN : -((int64_t)1 << (bits - 1));
    *hi = bits >= 64 ? (uint64_t)INT64_MAX : ((uint64_t)1 << (bits - 1)) - 1;
  } else {
    *lo = 0;
    *hi = bits >= 64 ? UINT64_MAX : ((uint64_t)1 << bits) - 1;
  }
}

// x rounded to nearest-even with `mant` fraction bits and minimum normal
// exponent `emin` (subnormals below it); overflow is left to the caller.
static double round_to(double x, int mant, int emin) {
  if (x == 0 || !isfinite(x))
    return x;
  int e;
  frexp(x, &e); // |x| in [2^(e-1), 2^e)
  int lead = e - 1 < emin ? emin : e - 1;
  double quantum = ldexp(1.0, lead - mant);
  return nearbyint(x / quantum) * quantum;
}

// x rounded to the floating dtype t; false if a finite x overflows it.
bool mil_float_round(MilDType t, double x, double *out) {
  double r = x, max = HUGE_VAL;
  if (t == MIL_FP16) {
    r = round_to(x, 10, -14);
    max = 65504.0;
  } else if (t == MIL_BF16) {
    r = round_to(x, 7, -126);
    max = ldexp(255.0, 127 - 7);
  } else if (t == MIL_FP32) {
    r = round_to(x, 23, -126);
    max = ldexp(16777215.0, 127 - 23);
  }
  *out = r;
  return !isfinite(x) || fabs(r) <= max;
}

// program(1.0) through (1.2) spell scalars tensor<T, []>; 1.3 and later
// spell them T.
bool mil_version_verbose(const char *version) {
  int major = 0, minor = 0;
  const char *s = version;
  for (; *s >= '0' && *s <= '9'; s++)
    major = major < 1000 ? 10 * major + (*s - '0') : major;
  if (*s == '.')
    for (s++; *s >= '0' && *s <= '9'; s++)
      minor = minor < 1000 ? 10 * minor + (*s - '0') : minor;
  return major < 1 || (major == 1 && minor < 3);
}

//
// Types
//

bool mil_type_eq(const MilType *a, const MilType *b) {
  if (a == b)
    return true;
  if (!a || !b || a->kind != b->kind)
    return false;
  switch (a->kind) {
  case MIL_T_TENSOR:
    return a->dtype == b->dtype && a->rank == b->rank &&
           !memcmp(a->dims, b->dims, sizeof(a->dims[0]) * (size_t)a->rank);
  case MIL_T_LIST:
    return a->length == b->length && mil_type_eq(a->elem, b->elem);
  case MIL_T_DICT:
    return mil_type_eq(a->key, b->key) && mil_type_eq(a->elem, b->elem);
  case MIL_T_STATE:
    return mil_type_eq(a->elem, b->elem);
  case MIL_T_TUPLE:
    if (a->nitems != b->nitems)
      return false;
    for (int i = 0; i < a->nitems; i++)
      if (!mil_type_eq(a->items[i], b->items[i]))
        return false;
    return true;
  }
  return false;
}

// Number of elements of a tensor type, -1 if a dimension is '?'.
int64_t mil_type_count(const MilType *t) {
  int64_t n = 1;
  for (int i = 0; i < t->rank; i++) {
    if (t->dims[i] < 0)
      return -1;
    n = t->dims[i] && n > INT64_MAX / t->dims[i] ? INT64_MAX : n * t->dims[i];
  }
  return n;
}

// A growing string in an arena.
typedef struct StrBuf {
  Arena *a;
  char *s;
  size_t len, cap;
} StrBuf;

static void sb_put(StrBuf *b, const char *s) {
  size_t n = strlen(s);
  if (b->len + n + 1 > b->cap) {
    size_t cap = 2 * (b->len + n + 1);
    b->s = arena_grow(b->a, b->s, b->cap, cap);
    b->cap = cap;
  }
  memcpy(b->s + b->len, s, n + 1);
  b->len += n;
}

static void sb_int(StrBuf *b, int64_t v) {
  char num[24];
  snprintf(num, sizeof num, "%lld", (long long)v);
  sb_put(b, v == MIL_ANY ? "?" : num);
}

static void type_put(StrBuf *b, const MilType *t, bool verbose);

static void tensor_type_put(StrBuf *b, const MilType *t, bool verbose) {
  if (t->rank == 0 && !verbose) {
    sb_put(b, mil_dtype_name(t->dtype));
    return;
  }
  sb_put(b, "tensor<");
  sb_put(b, mil_dtype_name(t->dtype));
  sb_put(b, ", [");
  for (int i = 0; i < t->rank; i++) {
    sb_put(b, i ? ", " : "");
    sb_int(b, t->dims[i]);
  }
  sb_put(b, "]>");
}

static void type_put(StrBuf *b, const MilType *t, bool verbose) {
  static const char *const opens[] = {[MIL_T_LIST] = "list<", [MIL_T_TUPLE] = "tuple<",
                                      [MIL_T_DICT] = "dict<", [MIL_T_STATE] = "state<"};
  if (t->kind == MIL_T_TENSOR) {
    tensor_type_put(b, t, verbose);
    return;
  }
  sb_put(b, opens[t->kind]);
  if (t->kind == MIL_T_DICT) {
    type_put(b, t->key, verbose);
    sb_put(b, ", ");
  }
  for (int i = 0; i < t->nitems; i++) { // tuple
    sb_put(b, i ? ", " : "");
    type_put(b, t->items[i], verbose);
  }
  if (t->kind != MIL_T_TUPLE)
    type_put(b, t->elem, verbose);
  if (t->kind == MIL_T_LIST) {
    sb_put(b, ", ");
    sb_int(b, t->length);
  }
  sb_put(b, ">");
}

char *mil_type_str(Arena *a, const MilType *t, bool verbose) {
  StrBuf b = {a, NULL, 0, 0};
  sb_put(&b, "");
  type_put(&b, t, verbose);
  return b.s;
}

//
// Lookups
//

const MilFunc *mil_func(const MilProgram *p, const char *name) {
  for (int i = 0; i < p->nfuncs; i++)
    if (!strcmp(p->funcs[i].name, name))
      return &p->funcs[i];
  return NULL;
}

const MilArg *mil_arg(const MilOp *op, const char *name) {
  for (int i = 0; i < op->nargs; i++)
    if (!strcmp(op->args[i].name, name))
      return &op->args[i];
  return NULL;
}

const MilAttr *mil_attr(const MilAttr *attrs, int n, const char *name) {
  for (int i = 0; i < n; i++)
    if (!strcmp(attrs[i].name, name))
      return &attrs[i];
  return NULL;
}
