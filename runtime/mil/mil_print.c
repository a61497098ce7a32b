// mil_print.c — prints a MilProgram as Apple's compiler does for its version
// (program(1.0): tensor<T, []> scalars; program(1.3): T), with floats as C99
// hex floats and arguments and attributes in stored order; and compares two
// programs structurally (mil_program_eq) for round-trip tests.
#include "mil.h"

#include <math.h>
#include <string.h>

typedef struct Printer {
  FILE *out;
  bool verbose;
  Arena scratch; // type spellings
} Printer;

//
// Scalars
//

// x as a C99 hex float the way Apple prints it: 0x1p-24, 0x1.5p-17,
// -0x1p+0, 0x0p+0 (normalized, trailing zero digits dropped).
static void put_float(FILE *out, double x) {
  if (isnan(x)) {
    fputs(signbit(x) ? "-nan" : "nan", out);
    return;
  }
  if (isinf(x)) {
    fputs(x < 0 ? "-inf" : "inf", out);
    return;
  }
  const char *sign = signbit(x) ? "-" : "";
  if (x == 0) {
    fprintf(out, "%s0x0p+0", sign);
    return;
  }
  int e;
  double m = frexp(fabs(x), &e); // [0.5, 1)
  uint64_t frac = (uint64_t)ldexp(m, 53) & (((uint64_t)1 << 52) - 1);
  char digits[16];
  snprintf(digits, sizeof digits, "%013llx", (unsigned long long)frac);
  int n = 13;
  while (n > 0 && digits[n - 1] == '0')
    n--;
  fprintf(out, "%s0x1%s%.*sp%+d", sign, n ? "." : "", n, digits, e - 1);
}

static void put_string(FILE *out, const char *s) {
  fputc('"', out);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      fprintf(out, "\\%c", c);
    else if (c == '\n' || c == '\t' || c == '\r')
      fprintf(out, "\\%c", c == '\n' ? 'n' : c == '\t' ? 't' : 'r');
    else if (c < 0x20 || c == 0x7f)
      fprintf(out, "\\x%02x", c);
    else
      fputc(c, out);
  }
  fputc('"', out);
}

static void put_scalar(FILE *out, const MilValue *v, int64_t k) {
  MilDType dt = v->type->dtype;
  if (dt == MIL_STRING)
    put_string(out, v->s[k]);
  else if (mil_dtype_is_float(dt))
    put_float(out, v->f[k]);
  else if (dt == MIL_BOOL)
    fputs(v->i[k] ? "true" : "false", out);
  else if (dt == MIL_UINT64)
    fprintf(out, "%llu", (unsigned long long)v->i[k]);
  else
    fprintf(out, "%lld", (long long)v->i[k]);
}

//
// Values
//

static void put_type(Printer *pr, const MilType *t) {
  fputs(mil_type_str(&pr->scratch, t, pr->verbose), pr->out);
}

// The elements of dimension `level` of a tensor literal, nested by its shape.
static void put_elems(Printer *pr, const MilValue *v, int level, int64_t *next) {
  fputc('[', pr->out);
  for (int64_t i = 0; i < v->type->dims[level]; i++) {
    fputs(i ? ", " : "", pr->out);
    if (level + 1 < v->type->rank)
      put_elems(pr, v, level + 1, next);
    else
      put_scalar(pr->out, v, (*next)++);
  }
  fputc(']', pr->out);
}

static void put_tensor(Printer *pr, const MilValue *v) {
  if (v->type->rank == 0 && v->count == 1) {
    put_scalar(pr->out, v, 0);
  } else if (mil_type_count(v->type) == v->count) {
    int64_t next = 0;
    put_elems(pr, v, 0, &next);
  } else { // a shape the elements do not fill: flat
    fputc('[', pr->out);
    for (int64_t i = 0; i < v->count; i++) {
      fputs(i ? ", " : "", pr->out);
      put_scalar(pr->out, v, i);
    }
    fputc(']', pr->out);
  }
}

static void put_value(Printer *pr, const MilValue *v);

static void put_items(Printer *pr, const MilValue *v, const char *open, const char *close) {
  fputs(open, pr->out);
  for (int i = 0; i < v->nitems; i++) {
    fputs(i ? ", " : "", pr->out);
    put_value(pr, v->items[i]);
  }
  fputs(close, pr->out);
}

static void put_dict(Printer *pr, const MilValue *v) {
  fputc('{', pr->out);
  for (int i = 0; i + 1 < v->nitems; i += 2) {
    fputs(i ? ", {" : "{", pr->out);
    put_value(pr, v->items[i]);
    fputs(", ", pr->out);
    put_value(pr, v->items[i + 1]);
    fputc('}', pr->out);
  }
  fputc('}', pr->out);
}

static void put_blobfile(Printer *pr, const MilValue *v) {
  MilType str = {.kind = MIL_T_TENSOR, .dtype = MIL_STRING};
  MilType u64 = {.kind = MIL_T_TENSOR, .dtype = MIL_UINT64};
  fputs("BLOBFILE(path = ", pr->out);
  put_type(pr, &str);
  fputc('(', pr->out);
  put_string(pr->out, v->blob_path ? v->blob_path : "");
  fputs("), offset = ", pr->out);
  put_type(pr, &u64);
  fprintf(pr->out, "(%llu))", (unsigned long long)v->blob_offset);
}

// A value inside a typed literal: no type of its own.
static void put_value(Printer *pr, const MilValue *v) {
  switch (v->kind) {
  case MIL_V_TENSOR:
    put_tensor(pr, v);
    return;
  case MIL_V_BLOB:
    put_blobfile(pr, v);
    return;
  case MIL_V_LIST:
    put_items(pr, v, "[", "]");
    return;
  case MIL_V_TUPLE:
    put_items(pr, v, "(", ")");
    return;
  case MIL_V_DICT:
    put_dict(pr, v);
    return;
  }
}

static void put_literal(Printer *pr, const MilValue *v) {
  put_type(pr, v->type);
  fputc('(', pr->out);
  put_value(pr, v);
  fputc(')', pr->out);
}

//
// Programs
//

static void put_binding(Printer *pr, const MilBinding *b) {
  if (b->kind == MIL_B_REF) {
    fputs(b->ref, pr->out);
  } else if (b->kind == MIL_B_VALUE) {
    put_literal(pr, b->value);
  } else {
    fputc('(', pr->out);
    for (int i = 0; i < b->nitems; i++) {
      fputs(i ? ", " : "", pr->out);
      put_binding(pr, &b->items[i]);
    }
    fputc(')', pr->out);
  }
}

static void put_attrs(Printer *pr, const MilAttr *attrs, int n) {
  fputc('[', pr->out);
  for (int i = 0; i < n; i++) {
    fprintf(pr->out, "%s%s = ", i ? ", " : "", attrs[i].name);
    put_literal(pr, attrs[i].value);
  }
  fputc(']', pr->out);
}

static void put_var(Printer *pr, const MilFunc *f, int v) {
  put_type(pr, f->vars[v].type);
  fprintf(pr->out, " %s", f->vars[v].name);
}

static void put_op(Printer *pr, const MilFunc *f, const MilOp *op) {
  fputs("            ", pr->out);
  for (int i = 0; i < op->noutputs; i++) {
    fputs(i ? ", " : "", pr->out);
    put_var(pr, f, op->outputs[i]);
  }
  fprintf(pr->out, "%s%s(", op->noutputs ? " = " : "", op->op);
  for (int i = 0; i < op->nargs; i++) {
    fprintf(pr->out, "%s%s = ", i ? ", " : "", op->args[i].name);
    put_binding(pr, &op->args[i].b);
  }
  fputc(')', pr->out);
  if (op->nattrs)
    put_attrs(pr, op->attrs, op->nattrs);
  fputs(";\n", pr->out);
}

static void put_func(Printer *pr, const MilFunc *f) {
  fprintf(pr->out, "    func %s", f->name);
  if (f->opset)
    fprintf(pr->out, "<%s>", f->opset);
  fputc('(', pr->out);
  for (int i = 0; i < f->ninputs; i++) {
    fputs(i ? ", " : "", pr->out);
    put_var(pr, f, f->inputs[i]);
  }
  fputc(')', pr->out);
  if (f->nattrs) {
    fputc(' ', pr->out);
    put_attrs(pr, f->attrs, f->nattrs);
  }
  fputs(" {\n", pr->out);
  for (int i = 0; i < f->nops; i++)
    put_op(pr, f, &f->ops[i]);
  fputs("        } -> (", pr->out);
  for (int i = 0; i < f->noutputs; i++)
    fprintf(pr->out, "%s%s", i ? ", " : "", f->vars[f->outputs[i]].name);
  fputs(");\n", pr->out);
}

void mil_print(const MilProgram *p, FILE *out) {
  const char *version = p->version ? p->version : "1.3";
  Printer pr = {out, mil_version_verbose(version), {0}};
  fprintf(out, "program(%s)\n", version);
  if (p->nattrs) {
    put_attrs(&pr, p->attrs, p->nattrs);
    fputc('\n', out);
  }
  fputs("{\n", out);
  for (int i = 0; i < p->nfuncs; i++)
    put_func(&pr, &p->funcs[i]);
  fputs("}\n", out);
  arena_free(&pr.scratch);
}

//
// Structural equality
//

static bool str_eq(const char *a, const char *b) {
  return a == b || (a && b && !strcmp(a, b));
}

static bool value_eq(const MilValue *a, const MilValue *b);

static bool elems_eq(const MilValue *a, const MilValue *b) {
  size_t n = (size_t)a->count;
  MilDType dt = a->type->dtype;
  if (dt == MIL_STRING) {
    for (size_t k = 0; k < n; k++)
      if (!str_eq(a->s[k], b->s[k]))
        return false;
    return true;
  }
  if (mil_dtype_is_float(dt))
    return !n || !memcmp(a->f, b->f, n * sizeof(double)); // bitwise: -0 != 0
  return !n || !memcmp(a->i, b->i, n * sizeof(int64_t));
}

static bool value_eq(const MilValue *a, const MilValue *b) {
  if (a->kind != b->kind || !mil_type_eq(a->type, b->type) || a->count != b->count ||
      a->nitems != b->nitems)
    return false;
  if (a->kind == MIL_V_BLOB)
    return str_eq(a->blob_path, b->blob_path) && a->blob_offset == b->blob_offset;
  if (a->kind == MIL_V_TENSOR)
    return elems_eq(a, b);
  for (int i = 0; i < a->nitems; i++)
    if (!value_eq(a->items[i], b->items[i]))
      return false;
  return true;
}

static bool binding_eq(const MilBinding *a, const MilBinding *b) {
  if (a->kind != b->kind || a->nitems != b->nitems)
    return false;
  if (a->kind == MIL_B_REF)
    return str_eq(a->ref, b->ref) && a->var == b->var;
  if (a->kind == MIL_B_VALUE)
    return value_eq(a->value, b->value);
  for (int i = 0; i < a->nitems; i++)
    if (!binding_eq(&a->items[i], &b->items[i]))
      return false;
  return true;
}

static bool attrs_eq(const MilAttr *a, int na, const MilAttr *b, int nb) {
  if (na != nb)
    return false;
  for (int i = 0; i < na; i++)
    if (!str_eq(a[i].name, b[i].name) || !value_eq(a[i].value, b[i].value))
      return false;
  return true;
}

static bool ints_eq(const int *a, int na, const int *b, int nb) {
  return na == nb && (!na || !memcmp(a, b, sizeof(int) * (size_t)na));
}

static bool op_eq(const MilOp *a, const MilOp *b) {
  if (!str_eq(a->op, b->op) || a->nargs != b->nargs ||
      !ints_eq(a->outputs, a->noutputs, b->outputs, b->noutputs) ||
      !attrs_eq(a->attrs, a->nattrs, b->attrs, b->nattrs))
    return false;
  for (int i = 0; i < a->nargs; i++)
    if (!str_eq(a->args[i].name, b->args[i].name) || !binding_eq(&a->args[i].b, &b->args[i].b))
      return false;
  return true;
}

static bool func_eq(const MilFunc *a, const MilFunc *b) {
  if (!str_eq(a->name, b->name) || !str_eq(a->opset, b->opset) || a->nops != b->nops ||
      a->nvars != b->nvars || !ints_eq(a->inputs, a->ninputs, b->inputs, b->ninputs) ||
      !ints_eq(a->outputs, a->noutputs, b->outputs, b->noutputs) ||
      !attrs_eq(a->attrs, a->nattrs, b->attrs, b->nattrs))
    return false;
  for (int i = 0; i < a->nvars; i++)
    if (!str_eq(a->vars[i].name, b->vars[i].name) || a->vars[i].op != b->vars[i].op ||
        !mil_type_eq(a->vars[i].type, b->vars[i].type))
      return false;
  for (int i = 0; i < a->nops; i++)
    if (!op_eq(&a->ops[i], &b->ops[i]))
      return false;
  return true;
}

bool mil_program_eq(const MilProgram *a, const MilProgram *b) {
  if (!str_eq(a->version, b->version) || a->nfuncs != b->nfuncs ||
      !attrs_eq(a->attrs, a->nattrs, b->attrs, b->nattrs))
    return false;
  for (int i = 0; i < a->nfuncs; i++)
    if (!func_eq(&a->funcs[i], &b->funcs[i]))
      return false;
  return true;
}
