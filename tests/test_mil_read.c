// test_mil_read.c — the MIL reader, printer and MILBlob files: every corpus
// file parses and prints back byte for byte, exact located error messages for
// malformed programs, truncated and mutated input never crashes, and weight
// files round-trip while each kind of corruption gets its own error.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mil.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// The corpus: tests/data/mil-corpus (sources and licences in its README.md).
#define CORPUS ANEC_SOURCE_DIR "/tests/data/mil-corpus/apple-printed"

//
// Helpers
//

typedef struct Buf {
  char *s;
  size_t len;
  FILE *fp;
} Buf;

static void buf_open(Buf *b) {
  b->s = NULL;
  b->len = 0;
  b->fp = open_memstream(&b->s, &b->len);
  assert_non_null(b->fp);
}

static char *buf_close(Buf *b) {
  fclose(b->fp);
  return b->s;
}

static char *read_file(const char *path, size_t *len) {
  FILE *fp = fopen(path, "rb");
  assert_non_null(fp);
  Buf b;
  buf_open(&b);
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0)
    fwrite(chunk, 1, n, b.fp);
  fclose(fp);
  buf_close(&b);
  *len = b.len;
  return b.s;
}

// Reads src; *errs receives the messages (caller frees).
static MilProgram *read_src(const char *src, size_t len, char **errs) {
  Buf b;
  buf_open(&b);
  RtDiag d = {.out = b.fp};
  MilProgram *p = mil_read_text("t.mil", src, len, "/models/m", &d);
  buf_close(&b);
  if (p)
    assert_int_equal(d.errors, 0);
  else
    assert_true(d.errors > 0);
  *errs = b.s;
  return p;
}

static char *print_prog(const MilProgram *p) {
  Buf b;
  buf_open(&b);
  mil_print(p, b.fp);
  return buf_close(&b);
}

// print -> parse gives an equal program; returns the printed text.
static char *round_trip(const MilProgram *p) {
  char *text = print_prog(p), *errs;
  MilProgram *q = read_src(text, strlen(text), &errs);
  if (!q)
    fail_msg("printed program does not parse:\n%s\n%s", text, errs);
  assert_true(mil_program_eq(p, q));
  mil_free(q);
  free(errs);
  return text;
}

// Equal up to one final newline (the corpus files have none).
static bool same_text(const char *a, size_t na, const char *b, size_t nb) {
  if (na && a[na - 1] == '\n')
    na--;
  if (nb && b[nb - 1] == '\n')
    nb--;
  return na == nb && !memcmp(a, b, na);
}

static int compare_names(const void *a, const void *b) {
  return strcmp(a, b);
}

static int corpus_files(char names[][128], int max) {
  DIR *dir = opendir(CORPUS);
  assert_non_null(dir);
  int n = 0;
  for (struct dirent *e; (e = readdir(dir)) && n < max;) {
    size_t len = strlen(e->d_name);
    if (len > 4 && len < 128 && !strcmp(e->d_name + len - 4, ".mil"))
      strcpy(names[n++], e->d_name);
  }
  closedir(dir);
  qsort(names, (size_t)n, 128, compare_names);
  return n;
}

static char *corpus_path(const char *name) {
  size_t n = strlen(CORPUS) + strlen(name) + 2;
  char *path = malloc(n);
  snprintf(path, n, "%s/%s", CORPUS, name);
  return path;
}

static char *corpus_text(const char *name, size_t *len) {
  char *path = corpus_path(name), *text = read_file(path, len);
  free(path);
  return text;
}

//
// The corpus
//

static void test_corpus_parses_and_round_trips(void **state) {
  (void)state;
  char names[64][128];
  int n = corpus_files(names, 64);
  assert_true(n >= 24);
  for (int i = 0; i < n; i++) {
    char *path = corpus_path(names[i]);
    RtDiag d = {.out = stderr};
    MilProgram *p = mil_read_file(path, &d);
    if (!p)
      fail_msg("%s does not parse", names[i]);
    assert_string_equal(p->model_dir, CORPUS);
    size_t len;
    char *orig = read_file(path, &len);
    char *printed = round_trip(p);
    // Every corpus file prints back byte for byte (but for the final newline).
    if (!same_text(orig, len, printed, strlen(printed)))
      fail_msg("%s does not print back byte-exact:\n%s", names[i], printed);
    free(orig);
    free(path);
    free(printed);
    mil_free(p);
  }
}

static void test_corpus_contents(void **state) {
  (void)state;
  size_t len;
  char *src = corpus_text("fixtures-fp16-subnormal-cast.mil", &len), *errs;
  MilProgram *p = read_src(src, len, &errs);
  assert_non_null(p);
  const MilFunc *f = mil_func(p, "main");
  assert_non_null(f);
  assert_string_equal(f->opset, "ios17");
  assert_int_equal(f->nops, 3);
  const MilValue *v = mil_attr(f->ops[0].attrs, f->ops[0].nattrs, "val")->value;
  assert_int_equal(v->count, 5);
  assert_true(v->f[0] == ldexp(1, -24));
  assert_true(v->f[1] == ldexp(0x15, -21));
  assert_true(v->f[4] == -ldexp(0x15, -21));
  const MilArg *x = mil_arg(&f->ops[1], "x");
  assert_int_equal(x->b.kind, MIL_B_REF);
  assert_int_equal(x->b.var, f->ops[0].outputs[0]);
  assert_int_equal(f->vars[f->outputs[0]].op, 2);
  mil_free(p);
  free(errs);
  free(src);

  src = corpus_text("fixtures-quantized-constexpr.mil", &len);
  p = read_src(src, len, &errs);
  assert_non_null(p);
  const MilOp *op = &p->funcs[0].ops[0];
  v = mil_attr(op->attrs, op->nattrs, "quantized_data")->value;
  assert_int_equal(v->kind, MIL_V_BLOB);
  assert_string_equal(v->blob_path, "@model_path/weights/weights.bin");
  assert_string_equal(v->blob_file, "/models/m/weights/weights.bin");
  assert_int_equal(v->blob_offset, 64);
  assert_int_equal(mil_attr(op->attrs, op->nattrs, "zero_point")->value->i[0], -1);
  mil_free(p);
  free(errs);
  free(src);
}

//
// Programs of our own: every construct of the grammar
//

static const char *const own_programs[] = {
    // program(1.3): multi-output, tuple arguments, an op without outputs,
    // state, nested tensor literals, strings with escapes, special floats,
    // integer extremes, list / tuple / dict literals, an unknown op.
    "program(1.3)\n"
    "[buildInfo = dict<string, string>({{\"a\\\"b\\\\c\", \"tab\\there\\nnl\"}, {\"empty\", \"\"}})]\n"
    "{\n"
    "    func main<ios18>(tensor<fp16, [1, 4, 1, 8]> x, state<tensor<fp16, [1, 4]>> s, tensor<int32, [?, 3]> ids) {\n"
    "            tensor<fp16, [1, 2, 1, 8]> a, tensor<fp16, [1, 2, 1, 8]> b = split(axis = int32(1), num_splits = int32(2), x = x)[name = string(\"split\")];\n"
    "            tensor<fp16, [1, 4, 1, 8]> c = concat(axis = int32(1), interleave = bool(false), values = (a, b, (a, b)))[name = string(\"cat\")];\n"
    "            tensor<int32, [2, 3]> m = const()[name = string(\"m\"), val = tensor<int32, [2, 3]>([[-2147483648, 2147483647, 0], [1, -1, 7]])];\n"
    "            tensor<fp32, [6]> f = const()[val = tensor<fp32, [6]>([inf, -inf, nan, 0x1p-149, -0x0p+0, 0x1.fffffep+127])];\n"
    "            uint64 big = const()[val = uint64(18446744073709551615)];\n"
    "            int64 small = const()[val = int64(-9223372036854775808)];\n"
    "            tensor<bool, [0]> none = const()[val = tensor<bool, [0]>([])];\n"
    "            tuple<int32, string, list<tensor<int32, [?]>, ?>> t = const()[val = tuple<int32, string, list<tensor<int32, [?]>, ?>>((int32_dummy_is_not_a_value_here))];\n"
    "            write_state(data = c, input = s)[name = string(\"ws\")];\n"
    "            tensor<fp16, [1, 4, 1, 8]> y = my_custom_op(x = c, k = fp16(0x1.5p-17), e = fp16(-0x1p+0));\n"
    "        } -> (y, m);\n"
    "}\n",
    // program(1.0): verbose scalars everywhere, two functions, BLOBFILE.
    "program(1.0)\n"
    "[buildInfo = dict<tensor<string, []>, tensor<string, []>>({{\"k\", \"v\"}})]\n"
    "{\n"
    "    func main<ios16>(tensor<fp16, [1, 10]> x) {\n"
    "            tensor<fp16, [10, 10]> w = const()[name = tensor<string, []>(\"w\"), val = tensor<fp16, [10, 10]>(BLOBFILE(path = tensor<string, []>(\"@model_path/weights/weight.bin\"), offset = tensor<uint64, []>(64)))];\n"
    "            tensor<bool, []> tx = const()[name = tensor<string, []>(\"tx\"), val = tensor<bool, []>(true)];\n"
    "            tensor<fp16, [1, 10]> y = matmul(transpose_x = tx, transpose_y = tensor<bool, []>(false), x = x, y = w)[name = tensor<string, []>(\"mm\")];\n"
    "            tensor<fp16, [1, 10]> z = mul(x = y, y = tensor<fp16, []>(0x1.8p+1))[name = tensor<string, []>(\"z\")];\n"
    "        } -> (z);\n"
    "    func other<ios16>(tensor<fp32, []> s) {\n"
    "            tensor<fp32, []> r = rsqrt(epsilon = tensor<fp32, []>(0x1.0c6f7ap-20), x = s);\n"
    "        } -> (r, s);\n"
    "}\n",
};

// The first program with its tuple literal filled in properly.
static char *own_program(int i) {
  const char *src = own_programs[i];
  const char *hole = "(int32_dummy_is_not_a_value_here)";
  const char *fill = "(7, \"s\", [[1, 2], [], [3]])";
  const char *at = strstr(src, hole);
  size_t n = strlen(src), h = strlen(hole), k = strlen(fill);
  char *out = malloc(n + k + 1);
  if (!at) {
    memcpy(out, src, n + 1);
    return out;
  }
  size_t pre = (size_t)(at - src);
  memcpy(out, src, pre);
  memcpy(out + pre, fill, k);
  memcpy(out + pre + k, at + h, n - pre - h + 1);
  return out;
}

static void test_own_programs_round_trip(void **state) {
  (void)state;
  for (int i = 0; i < 2; i++) {
    char *src = own_program(i), *errs;
    MilProgram *p = read_src(src, strlen(src), &errs);
    if (!p)
      fail_msg("own program %d:\n%s", i, errs);
    char *printed = round_trip(p);
    if (strcmp(src, printed))
      fail_msg("own program %d prints as\n%s", i, printed);
    free(printed);
    free(errs);
    free(src);
    mil_free(p);
  }
}

static void test_own_program_values(void **state) {
  (void)state;
  char *src = own_program(0), *errs;
  MilProgram *p = read_src(src, strlen(src), &errs);
  assert_non_null(p);
  const MilFunc *f = &p->funcs[0];
  assert_int_equal(f->ninputs, 3);
  assert_int_equal(f->vars[f->inputs[1]].type->kind, MIL_T_STATE);
  assert_int_equal(f->ops[0].noutputs, 2);
  const MilBinding *vals = &mil_arg(&f->ops[1], "values")->b;
  assert_int_equal(vals->kind, MIL_B_TUPLE);
  assert_int_equal(vals->nitems, 3);
  assert_int_equal(vals->items[2].kind, MIL_B_TUPLE);
  assert_int_equal(vals->items[1].var, f->ops[0].outputs[1]);
  const MilValue *f32 = mil_attr(f->ops[3].attrs, f->ops[3].nattrs, "val")->value;
  assert_true(isinf(f32->f[0]) && f32->f[0] > 0 && isinf(f32->f[1]) && f32->f[1] < 0);
  assert_true(isnan(f32->f[2]));
  assert_true(f32->f[3] == ldexp(1, -149) && signbit(f32->f[4]));
  assert_int_equal((uint64_t)mil_attr(f->ops[4].attrs, 1, "val")->value->i[0], UINT64_MAX);
  assert_int_equal(mil_attr(f->ops[5].attrs, 1, "val")->value->i[0], INT64_MIN);
  const MilValue *t = mil_attr(f->ops[7].attrs, 1, "val")->value;
  assert_int_equal(t->kind, MIL_V_TUPLE);
  assert_string_equal(t->items[1]->s[0], "s");
  const MilValue *list = t->items[2];
  assert_int_equal(list->nitems, 3);
  assert_int_equal(list->items[0]->type->dims[0], 2); // '?' taken from the literal
  assert_int_equal(list->items[1]->count, 0);
  assert_int_equal(f->ops[8].noutputs, 0);
  assert_string_equal(p->attrs[0].value->items[0]->s[0], "a\"b\\c");
  assert_string_equal(p->attrs[0].value->items[1]->s[0], "tab\there\nnl");
  mil_free(p);
  free(errs);
  free(src);
}

static void test_literal_forms(void **state) {
  (void)state;
  // Decimal floats round to the dtype; a flat list may fill a rank-2 tensor;
  // inline literals as arguments; \x escapes.
  const char *src = "program(1.3)\n{\n    func main<ios17>(tensor<fp16, [2, 2]> x) {\n"
                    "            tensor<fp16, [2, 2]> y = add(x = x, y = tensor<fp16, [2, 2]>([0.1, 1e-8, 65519, -2.5]));\n"
                    "            string s = const()[val = string(\"\\x41\\u\")];\n"
                    "        } -> (y);\n}\n";
  char *errs;
  MilProgram *p = read_src(src, strlen(src), &errs);
  assert_null(p); // \u is not an escape
  assert_non_null(strstr(errs, "t.mil:5:50: error: invalid escape sequence in string"));
  free(errs);
  char *fixed = strdup(src);
  memcpy(strstr(fixed, "\\u"), "BB", 2);
  p = read_src(fixed, strlen(fixed), &errs);
  assert_non_null(p);
  const MilValue *v = mil_arg(&p->funcs[0].ops[0], "y")->b.value;
  assert_true(v->f[0] == 0x1.998p-4); // fp16 nearest to 0.1
  assert_true(v->f[1] == 0.0); // below half the smallest subnormal
  assert_true(v->f[2] == 65504);
  assert_string_equal(mil_attr(p->funcs[0].ops[1].attrs, 1, "val")->value->s[0], "ABB");
  char *printed = round_trip(p);
  assert_non_null(strstr(printed, "tensor<fp16, [2, 2]>([[0x1.998p-4, 0x0p+0], [0x1.ffcp+15, -0x1.4p+1]])"));
  free(printed);
  mil_free(p);
  free(errs);
  free(fixed);
}

// CRLF line ends and a UTF-8 byte-order mark read as the plain file does.
static void test_crlf_and_bom(void **state) {
  (void)state;
  size_t len;
  char *src = corpus_text("pipeline-weighted-model0.mil", &len), *errs, *errs2;
  char *crlf = malloc(2 * len + 4);
  size_t n = 0;
  memcpy(crlf, "\xEF\xBB\xBF", 3);
  n = 3;
  for (size_t i = 0; i < len; i++) {
    if (src[i] == '\n')
      crlf[n++] = '\r';
    crlf[n++] = src[i];
  }
  MilProgram *p = read_src(src, len, &errs), *q = read_src(crlf, n, &errs2);
  assert_non_null(p);
  assert_non_null(q);
  assert_true(mil_program_eq(p, q));
  mil_free(p);
  mil_free(q);
  free(errs);
  free(errs2);
  free(crlf);
  free(src);
}

//
// Errors, located, with their exact text
//

typedef struct ErrCase {
  const char *name;
  const char *body; // statements of main(tensor<fp32, [4]> x) returning y
  const char *want; // the first line of the output
} ErrCase;

#define PRE "program(1.3)\n{\n    func main<ios17>(tensor<fp32, [4]> x) {\n"
#define POST "        } -> (y);\n}\n"

static const ErrCase err_cases[] = {
    {"bare literal", "            tensor<fp32, [4]> y = gather(axis = 1, indices = x, x = x);\n",
     "t.mil:4:49: error: expected a typed literal such as int32(1)"},
    {"bare bool attribute", "            tensor<fp32, [4]> y = relu(x = x)[flag = false];\n",
     "t.mil:4:54: error: expected a typed literal such as int32(1)"},
    {"undefined name", "            tensor<fp32, [4]> y = relu(x = z);\n",
     "t.mil:4:44: error: undefined value 'z'"},
    {"redefinition", "            tensor<fp32, [4]> x = relu(x = x);\n            tensor<fp32, [4]> y = relu(x = x);\n",
     "t.mil:4:31: error: redefinition of 'x' (previous definition at 3:40)"},
    {"element count", "            tensor<int32, [4]> y = const()[val = tensor<int32, [4]>([1, 2, 3])];\n",
     "t.mil:4:69: error: tensor<int32, [4]> needs 4 values, found 3"},
    {"nested count", "            tensor<int32, [2, 2]> y = const()[val = tensor<int32, [2, 2]>([[1, 2], [3]])];\n",
     "t.mil:4:84: error: dimension 1 of tensor<int32, [2, 2]> has 2 entries, found 1"},
    {"bad dtype", "            tensor<fp17, [4]> y = relu(x = x);\n", "t.mil:4:20: error: unknown dtype 'fp17'"},
    {"unknown type", "            blob y = relu(x = x);\n", "t.mil:4:13: error: unknown type 'blob'"},
    {"unterminated string", "            tensor<fp32, [4]> y = relu(x = x)[name = string(\"abc];\n",
     "t.mil:4:61: error: unterminated string"},
    {"missing ;", "            tensor<fp32, [4]> a = relu(x = x)\n            tensor<fp32, [4]> y = relu(x = a);\n",
     "t.mil:4:46: error: expected ';' after statement"},
    {"missing -> (...)", "            tensor<fp32, [4]> y = relu(x = x);\n        }\n}\n",
     "t.mil:6:1: error: expected '->' after the body of function 'main', found '}'"},
    {"conv without weight", "            tensor<fp32, [4]> y = conv(x = x, groups = int32(1));\n",
     "t.mil:4:35: error: missing required parameter 'weight' for conv"},
    {"unknown matmul parameter", "            tensor<fp32, [4]> y = matmul(x = x, y = x, z = x);\n",
     "t.mil:4:56: error: unknown parameter 'z' for matmul"},
    {"returned name undefined", "            tensor<fp32, [4]> q = relu(x = x);\n",
     "t.mil:5:15: error: returned value 'y' is not defined"},
    {"BLOBFILE offset type",
     "            tensor<fp32, [4]> y = const()[val = tensor<fp32, [4]>(BLOBFILE(path = string(\"w.bin\"), offset = int32(64)))];\n",
     "t.mil:4:109: error: BLOBFILE offset must be uint64(N)"},
    {"BLOBFILE without offset",
     "            tensor<fp32, [4]> y = const()[val = tensor<fp32, [4]>(BLOBFILE(path = string(\"w.bin\")))];\n",
     "t.mil:4:67: error: BLOBFILE needs offset = uint64(N)"},
    {"fp value in int32", "            tensor<int32, [2]> y = const()[val = tensor<int32, [2]>([1, 1.5])];\n",
     "t.mil:4:73: error: floating-point value '1.5' in an int32 literal"},
    {"uint8 out of range", "            tensor<uint8, [2]> y = const()[val = tensor<uint8, [2]>([1, 256])];\n",
     "t.mil:4:73: error: value '256' is out of range for uint8"},
    {"fp16 out of range", "            fp16 y = const()[val = fp16(65520)];\n",
     "t.mil:4:41: error: value '65520' is out of range for fp16"},
    {"const type mismatch", "            tensor<fp32, [4]> y = const()[val = tensor<fp32, [2]>([1, 2])];\n",
     "t.mil:4:49: error: the value's type tensor<fp32, [2]> is not the declared type tensor<fp32, [4]>"},
    {"output count", "            tensor<fp32, [4]> y, tensor<fp32, [4]> y2 = relu(x = x);\n",
     "t.mil:4:57: error: relu has 1 output, not 2"},
    {"duplicate parameter", "            tensor<fp32, [4]> y = relu(x = x, x = x);\n",
     "t.mil:4:47: error: duplicate parameter 'x'"},
    {"bool as int", "            bool y = const()[val = bool(1)];\n",
     "t.mil:4:41: error: expected true or false (bool), found '1'"},
    {"tuple too long", "            tuple<int32> y = const()[val = tuple<int32>((1, 2))];\n",
     "t.mil:4:61: error: expected ')' (the tuple type has no more items), found '2'"},
    {"rank too high", "            tensor<fp32, [1, 1, 1, 1, 1, 1, 1, 1, 1]> y = relu(x = x);\n",
     "t.mil:4:51: error: tensor rank exceeds the maximum of 8"},
    {"literal with ? dims", "            tensor<fp32, [?]> y = add(x = x, y = tensor<fp32, [?]>([1]));\n",
     "t.mil:4:50: error: a literal's tensor type needs known dimensions, not tensor<fp32, [?]>"},
    {"malformed number", "            fp32 y = const()[val = fp32(1.5e)];\n",
     "t.mil:4:41: error: malformed number"},
    {"invalid UTF-8", "            tensor<fp32, [4]> y = relu(x = x\xff);\n",
     "t.mil:4:45: error: invalid UTF-8 byte 0xFF"},
    {"NUL byte", "            tensor<fp32, [4]> y = relu(x = x\0);\n", "t.mil:4:45: error: unexpected NUL byte"},
};

// A case's whole source (bodies may hold a NUL: lengths are counted).
static char *case_source(const ErrCase *c, size_t *len) {
  size_t body = strlen(c->body);
  if (strstr(c->name, "NUL"))
    body += 1 + strlen(c->body + body + 1);
  bool own_end = strstr(c->name, "->") != NULL;
  size_t pre = strlen(PRE), post = own_end ? 0 : strlen(POST);
  char *s = malloc(pre + body + post + 1);
  memcpy(s, PRE, pre);
  memcpy(s + pre, c->body, body);
  memcpy(s + pre + body, POST, post);
  *len = pre + body + post;
  s[*len] = '\0';
  return s;
}

static void test_error_messages(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof err_cases / sizeof err_cases[0]; i++) {
    const ErrCase *c = &err_cases[i];
    size_t len;
    char *src = case_source(c, &len), *errs;
    MilProgram *p = read_src(src, len, &errs);
    if (p)
      fail_msg("%s: accepted", c->name);
    size_t first = strcspn(errs, "\n");
    if (strlen(c->want) != first || strncmp(errs, c->want, first))
      fail_msg("%s:\n got: %.*s\nwant: %s", c->name, (int)first, errs, c->want);
    free(errs);
    free(src);
  }
}

static void test_error_nesting_and_truncation(void **state) {
  (void)state;
  char src[4096], *errs;
  int n = snprintf(src, sizeof src, PRE "            list<fp32, ?> y = const()[val = ");
  for (int i = 0; i < 70; i++)
    n += snprintf(src + n, sizeof src - (size_t)n, "list<");
  n += snprintf(src + n, sizeof src - (size_t)n, "fp32");
  for (int i = 0; i < 70; i++)
    n += snprintf(src + n, sizeof src - (size_t)n, ", ?>");
  snprintf(src + n, sizeof src - (size_t)n, "([])];\n" POST);
  assert_null(read_src(src, strlen(src), &errs));
  assert_non_null(strstr(errs, "t.mil:4:360: error: nesting too deep (more than 64 levels)"));
  free(errs);

  const char *trunc = "program(1.3)\n{\n    func main<ios17>(tensor<fp32, [4]> x) {\n"
                      "            tensor<fp32, [4]> y = relu(x = x";
  assert_null(read_src(trunc, strlen(trunc), &errs));
  assert_string_equal(strtok(errs, "\n"), "t.mil:4:45: error: expected ',' or ')', found end of file");
  free(errs);
  assert_null(read_src("", 0, &errs));
  assert_string_equal(strtok(errs, "\n"), "t.mil:1:1: error: expected 'program', found end of file");
  free(errs);
}

// Several errors per file; a syntax error skips its statement only, and the
// names it would have defined do not cause more errors.
static void test_error_recovery(void **state) {
  (void)state;
  const char *src = PRE "            tensor<fp32, [4]> a = relu(x = x +);\n"
                        "            tensor<fp32, [4]> b = relu(x = a);\n"
                        "            tensor<int32, [2]> c = const()[val = tensor<int32, [2]>([1])];\n"
                        "            tensor<fp32, [4]> y = matmul(x = b, y = b, w = b);\n" POST;
  char *errs;
  assert_null(read_src(src, strlen(src), &errs));
  const char *want[] = {"t.mil:4:46: error: unexpected character '+'",
                        "t.mil:6:69: error: tensor<int32, [2]> needs 2 values, found 1",
                        "t.mil:7:56: error: unknown parameter 'w' for matmul"};
  int k = 0;
  for (char *line = strtok(errs, "\n"); line; line = strtok(NULL, "\n"))
    if (strstr(line, ": error: ")) {
      assert_true(k < 3);
      assert_string_equal(line, want[k++]);
    }
  assert_int_equal(k, 3);
  free(errs);
}

static void test_read_file_errors(void **state) {
  (void)state;
  Buf b;
  buf_open(&b);
  RtDiag d = {.out = b.fp};
  assert_null(mil_read_file("/nonexistent/model.mil", &d));
  // A path directly under '/': its directory "/" (dir_of wrote 2 bytes into
  // 1 here; ASan reports it).
  assert_null(mil_read_file("/anec-no-such-file.mil", &d));
  // Not regular files: refused before reading (a device would be read for
  // ever, a FIFO would block the open).
  assert_null(mil_read_file("/dev/zero", &d));
  char fifo[] = "/tmp/test_mil_read.fifo.XXXXXX";
  int fd = mkstemp(fifo);
  assert_true(fd >= 0);
  close(fd);
  unlink(fifo);
  assert_int_equal(mkfifo(fifo, 0600), 0);
  assert_null(mil_read_file(fifo, &d));
  unlink(fifo);
  buf_close(&b);
  char want[600];
  snprintf(want, sizeof want,
           "/nonexistent/model.mil: error: cannot open: No such file or directory\n"
           "/anec-no-such-file.mil: error: cannot open: No such file or directory\n"
           "/dev/zero: error: cannot open: not a regular file\n"
           "%s: error: cannot open: not a regular file\n", fifo);
  assert_string_equal(b.s, want);
  free(b.s);
}

// A program whose one constant is BLOBFILE(path), read with @model_path
// /models/m; errors into *err (malloc'd) when err is not NULL.
static MilProgram *read_blob_program(const char *path, char **err) {
  char src[600];
  snprintf(src, sizeof src,
           "program(1.3)\n{\n  func main<ios18>(tensor<fp16, [1, 1]> x) {\n"
           "    tensor<fp16, [1, 1]> w = const()[name = string(\"w\"), val = "
           "tensor<fp16, [1, 1]>(BLOBFILE(path = string(\"%s\"), offset = uint64(64)))];\n"
           "    tensor<fp16, [1, 1]> y = add(x = x, y = w)[name = string(\"y\")];\n"
           "  } -> (y);\n}\n", path);
  Buf b;
  buf_open(&b);
  RtDiag d = {.out = b.fp};
  MilProgram *p = mil_read_text("m.mil", src, strlen(src), "/models/m", &d);
  buf_close(&b);
  if (err)
    *err = b.s;
  else
    free(b.s);
  return p;
}

// BLOBFILE paths stay inside the program's directory: absolute paths and
// ".." components are refused at the path, as parse errors.
static void test_blob_paths_confined(void **state) {
  (void)state;
  static const char *const bad[] = {"/etc/passwd", "@model_path/../secret.bin",
                                    "weights/../../x.bin", "@model_path/..", "..",
                                    "@model_pathweights/w.bin", "@model_path/"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char *err;
    MilProgram *p = read_blob_program(bad[i], &err);
    if (p || !strstr(err, "leaves the program's directory"))
      fail_msg("BLOBFILE path \"%s\" was accepted:\n%s", bad[i], err);
    free(err);
  }
  const char *good[] = {"@model_path/weights/weight.bin", "weights/w.bin", "a..b/w.bin"};
  for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
    MilProgram *p = read_blob_program(good[i], NULL);
    assert_non_null(p);
    const MilValue *v = p->funcs[0].ops[0].attrs[1].value;
    assert_non_null(strstr(v->blob_file, "/models/m/"));
    mil_free(p);
  }
}

//
// Truncated and mutated input: an error or a program, never a crash
//

// Parses src[0..len); a program that parses must also round-trip.
static void parse_any(const char *src, size_t len) {
  FILE *sink = fopen("/dev/null", "w");
  RtDiag d = {.out = sink}; // the caret printing must survive binary lines too
  MilProgram *p = mil_read_text("m.mil", src, len, ".", &d);
  fclose(sink);
  if (p) {
    free(round_trip(p));
    mil_free(p);
  }
}

static void test_prefixes(void **state) {
  (void)state;
  const char *files[] = {"fixtures-flexible-gather.mil", "unsupported-flexible-enumerated.mil",
                         "coremltools-add_model.mil"};
  for (int f = 0; f < 5; f++) {
    size_t len;
    char *src = f < 3 ? corpus_text(files[f], &len) : own_program(f - 3);
    len = f < 3 ? len : strlen(src);
    for (int k = 0; k <= 100; k++) {
      size_t n = len * (size_t)k / 100;
      char *copy = malloc(n + 1); // exactly n bytes readable: ASan checks overreads
      memcpy(copy, src, n);
      parse_any(copy, n);
      free(copy);
    }
    free(src);
  }
}

static uint64_t rng_next(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

static void test_random_mutations(void **state) {
  (void)state;
  static const char interesting[] = "()[]{}<>,=;?\"\\-.0159ex@_ \n\0\xff\x80";
  uint64_t seed = 0x9E3779B97F4A7C15u;
  size_t len;
  char *corpus = corpus_text("fixtures-flexible-gather.mil", &len);
  char *own = own_program(0);
  for (int i = 0; i < 600; i++) {
    const char *base = i % 2 ? own : corpus;
    size_t n = i % 2 ? strlen(own) : len;
    char *copy = malloc(n);
    memcpy(copy, base, n);
    uint64_t r = rng_next(&seed);
    size_t at = (size_t)(r % n);
    copy[at] = r >> 32 & 1 ? interesting[(r >> 33) % (sizeof interesting - 1)] : (char)(r >> 40);
    parse_any(copy, n);
    free(copy);
  }
  free(corpus);
  free(own);
}

//
// The op table
//

static void test_op_table(void **state) {
  (void)state;
  for (int i = 1; i < mil_op_nsigs; i++)
    assert_true(strcmp(mil_op_sigs[i - 1].name, mil_op_sigs[i].name) < 0);
  static const char *const needed[] = {
      "const", "cast", "conv", "matmul", "add", "sub", "mul", "real_div", "maximum", "minimum",
      "pow", "rsqrt", "sqrt", "exp", "log", "sigmoid", "tanh", "relu", "silu", "gelu", "softmax",
      "reduce_sum", "reduce_mean", "reduce_max", "reduce_argmax", "reshape", "transpose",
      "slice_by_size", "slice_by_index", "concat", "split", "layer_norm", "band_part", "select",
      "gather", "less", "greater", "scaled_dot_product_attention", "constexpr_affine_dequantize"};
  for (size_t i = 0; i < sizeof needed / sizeof needed[0]; i++)
    assert_non_null(mil_op_sig(needed[i]));
  assert_null(mil_op_sig("frobnicate"));
  const MilOpSig *conv = mil_op_sig("conv");
  assert_true(mil_param_in(conv->required, "weight"));
  assert_true(mil_param_in(conv->optional, "pad_type"));
  assert_false(mil_param_in(conv->optional, "pad_typ"));
  size_t n;
  const char *w = mil_param_next(conv->required, &n);
  assert_true(n == 1 && *w == 'x');
  w = mil_param_next(w + n, &n);
  assert_true(n == 6 && !strncmp(w, "weight", 6));
  assert_null(mil_param_next(w + n, &n));
  assert_int_equal(mil_op_sig("split")->max_outputs, -1);
}

//
// MILBlob v2
//

typedef struct BlobFixture {
  char dir[64], path[96];
  uint16_t h[3];
  float f[5];
  int8_t q[70];
  uint64_t offsets[3];
} BlobFixture;

static void blob_fixture(BlobFixture *x) {
  strcpy(x->dir, "/tmp/anec_milblob_XXXXXX");
  assert_non_null(mkdtemp(x->dir));
  snprintf(x->path, sizeof x->path, "%s/weight.bin", x->dir);
  uint16_t h[3] = {0x3C00, 0x0001, 0xFBFF};
  float f[5] = {1.5f, -2, 0, 1e-30f, 3.25f};
  memcpy(x->h, h, sizeof h);
  memcpy(x->f, f, sizeof f);
  for (int i = 0; i < 70; i++)
    x->q[i] = (int8_t)(i * 7 - 100);
  MilBlob blobs[3] = {{MILBLOB_FP16, sizeof h, (const unsigned char *)x->h},
                      {MILBLOB_FP32, sizeof f, (const unsigned char *)x->f},
                      {MILBLOB_INT8, sizeof x->q, (const unsigned char *)x->q}};
  RtDiag d = {.out = stderr};
  assert_true(milblob_write(x->path, blobs, 3, x->offsets, &d));
}

static void blob_fixture_free(BlobFixture *x) {
  unlink(x->path);
  rmdir(x->dir);
}

static void test_milblob_round_trip(void **state) {
  (void)state;
  BlobFixture x;
  blob_fixture(&x);
  assert_int_equal(x.offsets[0], 64);
  assert_int_equal(x.offsets[1], 192);  // 128 + 6 bytes, aligned
  assert_int_equal(x.offsets[2], 320);  // 256 + 20 bytes, aligned
  RtDiag d = {.out = stderr};
  MilBlobFile f;
  assert_true(milblob_open(&f, x.path, &d));
  assert_int_equal(f.count, 3);
  assert_int_equal(f.len, 320 + 64 + 70);
  MilBlob b;
  assert_true(milblob_get(&f, x.offsets[0], &b, &d));
  assert_true(b.dtype == MILBLOB_FP16 && b.size == 6 && !memcmp(b.data, x.h, 6));
  assert_int_equal(b.data - f.bytes, 128);
  assert_true(milblob_get(&f, x.offsets[1], &b, &d));
  assert_true(b.dtype == MILBLOB_FP32 && b.size == 20 && !memcmp(b.data, x.f, 20));
  assert_true(milblob_get(&f, x.offsets[2], &b, &d));
  assert_true(b.dtype == MILBLOB_INT8 && b.size == 70 && !memcmp(b.data, x.q, 70));
  assert_int_equal(d.errors, 0);
  assert_int_equal(milblob_dtype(MIL_FP16), MILBLOB_FP16);
  assert_int_equal(milblob_dtype(MIL_STRING), 0);
  milblob_close(&f);
  blob_fixture_free(&x);
}

// Patches `n` bytes (little-endian v) at `at` of the fixture's file, or
// truncates it to `at` bytes when n == 0.
static void patch(const BlobFixture *x, long at, uint64_t v, int n) {
  if (n == 0) {
    assert_int_equal(truncate(x->path, at), 0);
    return;
  }
  FILE *fp = fopen(x->path, "r+b");
  assert_non_null(fp);
  fseek(fp, at, SEEK_SET);
  for (int i = 0; i < n; i++, v >>= 8)
    fputc((int)(v & 0xFF), fp);
  fclose(fp);
}

typedef struct BlobCase {
  long at;
  uint64_t value;
  int n;           // bytes patched; 0: truncate at `at`
  uint64_t offset; // the blob asked for
  const char *want;
} BlobCase;

static void test_milblob_corruption(void **state) {
  (void)state;
  static const BlobCase cases[] = {
      {4, 1, 4, 64, "weight.bin: error: unsupported MILBlob version 1 at offset 4 (expected 2)"},
      {0, 1000, 4, 64, "weight.bin: error: header at offset 0 claims 1000 blobs, but the file (454 bytes) has room for at most 6"},
      {40, 0, 0, 64, "weight.bin: error: file of 40 bytes is too short for the 64-byte MILBlob header"},
      {192, 0xDEADBEEE, 4, 192, "weight.bin: error: bad sentinel 0xdeadbeee at offset 192 (expected 0xdeadbeef)"},
      {196, 99, 4, 192, "weight.bin: error: unknown blob dtype 99 at offset 196"},
      {0, 0, -1, 100, "weight.bin: error: blob offset 100 is not a multiple of 64"},
      {0, 0, -1, 0, "weight.bin: error: blob offset 0 is inside the 64-byte file header"},
      {0, 0, -1, 448, "weight.bin: error: blob metadata at offset 448 is beyond the end of the file (454 bytes)"},
      {336, 1000, 8, 320, "weight.bin: error: blob data of 70 bytes at offset 1000 (metadata at offset 320) extends beyond the end of the file (454 bytes)"},
      {328, UINT64_MAX, 8, 320, "weight.bin: error: blob data of 18446744073709551615 bytes at offset 384 (metadata at offset 320) extends beyond the end of the file (454 bytes)"},
      {336, 64, 8, 320, "weight.bin: error: blob data offset 64 at offset 336 points into the metadata or before it"},
      {420, 0, 0, 320, "weight.bin: error: blob data of 70 bytes at offset 384 (metadata at offset 320) extends beyond the end of the file (420 bytes)"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const BlobCase *c = &cases[i];
    BlobFixture x;
    blob_fixture(&x);
    if (c->n >= 0)
      patch(&x, c->at, c->value, c->n);
    Buf b;
    buf_open(&b);
    RtDiag d = {.out = b.fp};
    MilBlobFile f;
    MilBlob blob;
    bool ok = milblob_open(&f, x.path, &d) && milblob_get(&f, c->offset, &blob, &d);
    milblob_close(&f);
    buf_close(&b);
    assert_false(ok);
    char want[512];
    snprintf(want, sizeof want, "%s/%s\n", x.dir, c->want);
    if (strcmp(b.s, want))
      fail_msg("case %zu:\n got: %s want: %s", i, b.s, want);
    free(b.s);
    blob_fixture_free(&x);
  }
}

static void test_milblob_write_errors(void **state) {
  (void)state;
  Buf b;
  buf_open(&b);
  RtDiag d = {.out = b.fp};
  MilBlob bad = {77, 4, (const unsigned char *)"abcd"};
  assert_false(milblob_write("/tmp/never.bin", &bad, 1, NULL, &d));
  MilBlob ok = {MILBLOB_UINT8, 4, (const unsigned char *)"abcd"};
  assert_false(milblob_write("/nonexistent/dir/w.bin", &ok, 1, NULL, &d));
  MilBlobFile f;
  assert_false(milblob_open(&f, "/nonexistent/w.bin", &d));
  buf_close(&b);
  assert_string_equal(b.s, "/tmp/never.bin: error: blob 0 has unknown dtype 77\n"
                           "/nonexistent/dir/w.bin: error: cannot write: No such file or directory\n"
                           "/nonexistent/w.bin: error: cannot open: No such file or directory\n");
  free(b.s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_corpus_parses_and_round_trips),
      cmocka_unit_test(test_corpus_contents),
      cmocka_unit_test(test_own_programs_round_trip),
      cmocka_unit_test(test_own_program_values),
      cmocka_unit_test(test_literal_forms),
      cmocka_unit_test(test_crlf_and_bom),
      cmocka_unit_test(test_error_messages),
      cmocka_unit_test(test_error_nesting_and_truncation),
      cmocka_unit_test(test_error_recovery),
      cmocka_unit_test(test_read_file_errors),
      cmocka_unit_test(test_blob_paths_confined),
      cmocka_unit_test(test_prefixes),
      cmocka_unit_test(test_random_mutations),
      cmocka_unit_test(test_op_table),
      cmocka_unit_test(test_milblob_round_trip),
      cmocka_unit_test(test_milblob_corruption),
      cmocka_unit_test(test_milblob_write_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
