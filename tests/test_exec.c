// test_exec.c — the reference executor against fp64 references written
// here: every op on random inputs (fixed seeds, never zero), broadcasting,
// the conv variants, the hand-written ANE-style kernels of tests/mil/ with
// weights made by the test, and the errors of prepare and run. Outputs are
// poisoned with NaN before each run.
//
// Tolerances: an element passes when |got - want| <= tol * (|want| + f * rms(want)),
// f = 0 for elementwise ops, 1 where sums may cancel (reductions, products).
// EXEC_FP32: tol 1e-5 (2e-5 for long sums). EXEC_FP16: the reference takes the
// same fp16-rounded inputs; tol 2e-3 for one op (the output's rounding is
// 4.9e-4), 5e-3 to 1e-2 for chains of ops, each stated at its test. EXEC_FP16
// runs with the ANE quirks (exec.h, the default) unless a test says
// otherwise; the quirks' own tests (test_quirks_*) are exact (tolerance 0).
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "exec.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TOL32 1e-5
#define TOL16 2e-3

//
// Harness
//

typedef struct Run {
  MilProgram *p;
  const MilFunc *f;
  Exec *e;
  ExecPrecision prec;
  char err[8192];          // what prepare or run reported
  void *owned[64];         // freed by run_close
  int nowned;
} Run;

static void *run_keep(Run *r, void *p) {
  assert_true(r->nowned < 64);
  return r->owned[r->nowned++] = p;
}

static uint64_t rng(uint64_t *s) { // splitmix64
  uint64_t z = (*s += 0x9E3779B97F4A7C15u);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
  return z ^ (z >> 31);
}

static double uniform(uint64_t *s) {
  return (double)(rng(s) >> 11) * 0x1p-53;
}

// What the executor stores for x at precision prec.
static double stored(ExecPrecision prec, double x) {
  return prec == EXEC_FP16 ? fp16_to_f32(f32_to_fp16((float)x)) : (float)x;
}

// "$T" in the template becomes fp16 or fp32.
static char *subst(const char *tmpl, const char *t) {
  size_t n = strlen(tmpl);
  char *out = malloc(n * 2 + 1), *o = out;
  for (const char *p = tmpl; *p;)
    if (p[0] == '$' && p[1] == 'T')
      o += sprintf(o, "%s", t), p += 2;
    else
      *o++ = *p++;
  *o = '\0';
  return out;
}

// Reads and prepares with options o (NULL: the defaults, the ANE quirks on in
// fp16); false (with r->err) if either reported errors.
static bool run_try_opts(Run *r, const char *tmpl, ExecPrecision prec, const ExecOptions *o,
                         const char *model_dir) {
  memset(r, 0, sizeof *r);
  r->prec = prec;
  char *text = subst(tmpl, prec == EXEC_FP16 ? "fp16" : "fp32");
  FILE *out = fmemopen(r->err, sizeof r->err, "w");
  RtDiag d = {.out = out};
  r->p = mil_read_text("t.mil", text, strlen(text), model_dir ? model_dir : ".", &d);
  free(text);
  r->f = r->p ? mil_func(r->p, "main") : NULL;
  r->e = r->f ? (o ? exec_prepare_opts(r->p, r->f, prec, o, &d) : exec_prepare(r->p, r->f, prec, &d))
               : NULL;
  fclose(out);
  return r->e != NULL;
}

static bool run_try(Run *r, const char *tmpl, ExecPrecision prec, const char *model_dir) {
  return run_try_opts(r, tmpl, prec, NULL, model_dir);
}

static void run_open_opts(Run *r, const char *tmpl, ExecPrecision prec, const ExecOptions *o,
                          const char *model_dir) {
  if (!run_try_opts(r, tmpl, prec, o, model_dir))
    fail_msg("prepare failed:\n%s", r->err);
}

static void run_open(Run *r, const char *tmpl, ExecPrecision prec, const char *model_dir) {
  run_open_opts(r, tmpl, prec, NULL, model_dir);
}

static const ExecOptions quirks_on = {.ane_quirks = EXEC_QUIRKS_ON};
static const ExecOptions quirks_off = {.ane_quirks = EXEC_QUIRKS_OFF};

static void run_close(Run *r) {
  exec_free(r->e);
  mil_free(r->p);
  for (int i = 0; i < r->nowned; i++)
    free(r->owned[i]);
}

static const MilVar *run_input_var(const Run *r, const char *name) {
  for (int i = 0; i < r->f->ninputs; i++)
    if (!strcmp(r->f->vars[r->f->inputs[i]].name, name))
      return &r->f->vars[r->f->inputs[i]];
  fail_msg("no input %s", name);
  return NULL;
}

// Sets input `name` to the values v (already as stored); int inputs as int32.
static void run_set(Run *r, const char *name, const double *v) {
  const MilType *t = run_input_var(r, name)->type;
  RtTensor x = {mil_dtype_is_float(t->dtype) ? MIL_FP32 : MIL_INT32, t->rank, {0}, 0, NULL};
  memcpy(x.dims, t->dims, sizeof x.dims);
  x.count = rt_numel(t->rank, t->dims);
  x.data = malloc((size_t)x.count * 4 + 4);
  for (int64_t i = 0; i < x.count; i++)
    if (x.dtype == MIL_FP32)
      ((float *)x.data)[i] = (float)v[i];
    else
      ((int32_t *)x.data)[i] = (int32_t)v[i];
  RtDiag d = {.out = stderr};
  assert_true(exec_set_input(r->e, name, &x, &d));
  free(x.data);
}

// Random values of magnitude in [lo, hi) (random sign unless positive),
// rounded as stored; sets the input and returns them.
static double *run_random(Run *r, const char *name, uint64_t seed, double lo, double hi,
                          bool positive) {
  const MilType *t = run_input_var(r, name)->type;
  int64_t n = rt_numel(t->rank, t->dims);
  double *v = run_keep(r, malloc((size_t)n * sizeof *v + 8));
  for (int64_t i = 0; i < n; i++) {
    double m = lo + (hi - lo) * uniform(&seed);
    v[i] = stored(r->prec, positive || (rng(&seed) & 1) ? m : -m);
  }
  run_set(r, name, v);
  return v;
}

static void poison_outputs(Run *r) {
  for (int i = 0; i < r->f->noutputs; i++) {
    RtTensor o;
    assert_true(exec_get_output(r->e, r->f->vars[r->f->outputs[i]].name, &o));
    for (int64_t k = 0; k < o.count; k++)
      if (o.dtype == MIL_FP16)
        ((uint16_t *)o.data)[k] = 0x7E00;
      else if (o.dtype == MIL_FP32)
        ((float *)o.data)[k] = NAN;
      else
        ((int32_t *)o.data)[k] = INT32_MIN;
  }
}

static void run_exec(Run *r) {
  poison_outputs(r);
  FILE *out = fmemopen(r->err, sizeof r->err, "w");
  RtDiag d = {.out = out};
  bool ok = exec_run(r->e, &d);
  fclose(out);
  if (!ok)
    fail_msg("run failed:\n%s", r->err);
}

// Output `name` as doubles (n elements).
static double *run_get(Run *r, const char *name, int64_t *n) {
  RtTensor o;
  assert_true(exec_get_output(r->e, name, &o));
  double *v = run_keep(r, malloc((size_t)o.count * sizeof *v + 8));
  for (int64_t i = 0; i < o.count; i++)
    v[i] = o.dtype == MIL_FP16   ? fp16_to_f32(((uint16_t *)o.data)[i])
           : o.dtype == MIL_FP32 ? ((float *)o.data)[i]
                                 : ((int32_t *)o.data)[i];
  if (n)
    *n = o.count;
  return v;
}

static void expect_close(const char *what, const double *got, const double *want, int64_t n,
                         double tol, double f) {
  double rms = 0, worst = 0;
  int64_t at = 0;
  for (int64_t i = 0; i < n; i++)
    rms += want[i] * want[i];
  rms = n ? sqrt(rms / (double)n) : 0;
  for (int64_t i = 0; i < n; i++) {
    double diff = fabs(got[i] - want[i]);
    double err = diff == 0 ? 0 : isnan(diff) ? INFINITY : diff / (fabs(want[i]) + f * rms);
    if (isinf(want[i]) && got[i] == want[i])
      err = 0;
    if (err > worst)
      worst = err, at = i;
  }
  if (worst > tol)
    fail_msg("%s: max error %.3g at %lld (got %.9g, want %.9g), tolerance %.3g", what, worst,
             (long long)at, got[at], want[at], tol);
}

static double tol_for(ExecPrecision prec) {
  return prec == EXEC_FP16 ? TOL16 : TOL32;
}

static const char *prec_name(ExecPrecision prec) {
  return prec == EXEC_FP16 ? "fp16" : "fp32";
}

// The flat index into a tensor of `in` dims broadcast to `out` dims.
static int64_t bcast_index(int64_t i, int orank, const int64_t *out, int irank, const int64_t *in) {
  int64_t idx = 0, stride = 1;
  for (int d = orank - 1, j = irank - 1; d >= 0; d--, j--) {
    int64_t c = i % out[d];
    i /= out[d];
    if (j >= 0) {
      idx += (in[j] == 1 ? 0 : c) * stride;
      stride *= in[j];
    }
  }
  return idx;
}

//
// Elementwise
//

static double ref_unary(const char *op, double x) {
  if (!strcmp(op, "relu")) return x > 0 ? x : 0;
  if (!strcmp(op, "sigmoid")) return 1 / (1 + exp(-x));
  if (!strcmp(op, "tanh")) return tanh(x);
  if (!strcmp(op, "silu")) return x / (1 + exp(-x));
  if (!strcmp(op, "exp")) return exp(x);
  if (!strcmp(op, "log")) return log(x);                  // x + epsilon, by the caller
  if (!strcmp(op, "sqrt")) return sqrt(x);
  if (!strcmp(op, "rsqrt")) return 1 / sqrt(x + 1e-12);   // the default epsilon
  if (!strcmp(op, "gelu_EXACT")) return 0.5 * x * (1 + erf(x / sqrt(2)));
  if (!strcmp(op, "gelu_TANH_APPROXIMATION"))
    return 0.5 * x * (1 + tanh(sqrt(2 / 3.14159265358979323846) * (x + 0.044715 * x * x * x)));
  return x / (1 + exp(-1.702 * x)); // gelu_SIGMOID_APPROXIMATION
}

static void test_unary(void **state) {
  (void)state;
  const char *ops[] = {"relu", "sigmoid", "tanh", "silu", "exp", "log", "sqrt", "rsqrt",
                       "gelu_EXACT", "gelu_TANH_APPROXIMATION", "gelu_SIGMOID_APPROXIMATION"};
  for (int pi = 0; pi < 2; pi++)
    for (size_t k = 0; k < sizeof ops / sizeof *ops; k++) {
      char tmpl[1024], args[128] = "";
      bool gelu = !strncmp(ops[k], "gelu_", 5), positive = strstr("log sqrt rsqrt", ops[k]);
      if (gelu)
        snprintf(args, sizeof args, ", mode = string(\"%s\")", ops[k] + 5);
      if (!strcmp(ops[k], "log"))
        snprintf(args, sizeof args, ", epsilon = $T(0.001)");
      snprintf(tmpl, sizeof tmpl,
               "program(1.3)\n{\n  func main<ios18>(tensor<$T, [2, 3, 37]> x) {\n"
               "    tensor<$T, [2, 3, 37]> y = %s(x = x%s)[name = string(\"y\")];\n"
               "  } -> (y);\n}\n", gelu ? "gelu" : ops[k], args);
      Run r;
      run_open(&r, tmpl, (ExecPrecision)pi, NULL);
      double *x = run_random(&r, "x", 100 + k, positive ? 0.05 : 0.1, 3.0, positive);
      run_exec(&r);
      int64_t n;
      double *y = run_get(&r, "y", &n), want[222], eps = stored(r.prec, 1e-3); // log's
      for (int64_t i = 0; i < n; i++)
        want[i] = ref_unary(ops[k], !strcmp(ops[k], "log") ? x[i] + eps : x[i]);
      char what[64];
      snprintf(what, sizeof what, "%s %s", ops[k], prec_name(r.prec));
      expect_close(what, y, want, n, tol_for(r.prec), 0);
      run_close(&r);
    }
}

// A unary op on tensors wide enough that the fp16 widening of x and the
// narrowing of y run in blocks over the pool (32768 elements a block, from
// 65536): below, between one and two blocks, and with a partial last block.
static void test_wide_conversions(void **state) {
  (void)state;
  const int64_t sizes[] = {40000, 65536, 3 * 32768 + 5};
  for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
    char tmpl[512];
    snprintf(tmpl, sizeof tmpl,
             "program(1.3)\n{\n  func main<ios18>(tensor<$T, [1, %lld]> x) {\n"
             "    tensor<$T, [1, %lld]> y = tanh(x = x)[name = string(\"y\")];\n"
             "  } -> (y);\n}\n", (long long)sizes[k], (long long)sizes[k]);
    Run r;
    run_open(&r, tmpl, EXEC_FP16, NULL);
    double *x = run_random(&r, "x", 300 + k, 0.1, 3.0, false);
    run_exec(&r);
    double *want = run_keep(&r, malloc((size_t)sizes[k] * sizeof *want));
    for (int64_t i = 0; i < sizes[k]; i++)
      want[i] = tanh(x[i]);
    char what[64];
    snprintf(what, sizeof what, "tanh of %lld fp16", (long long)sizes[k]);
    expect_close(what, run_get(&r, "y", NULL), want, sizes[k], TOL16, 0);
    run_close(&r);
  }
}

static double ref_binary(const char *op, double x, double y) {
  if (!strcmp(op, "add")) return x + y;
  if (!strcmp(op, "sub")) return x - y;
  if (!strcmp(op, "mul")) return x * y;
  if (!strcmp(op, "real_div")) return x / y;
  if (!strcmp(op, "maximum")) return x > y ? x : y;
  if (!strcmp(op, "minimum")) return x < y ? x : y;
  return pow(x, y);
}

// x [2, 1, 5] with y [3, 1] -> [2, 3, 5]; and with a scalar literal.
static void test_binary_broadcast(void **state) {
  (void)state;
  const char *ops[] = {"add", "sub", "mul", "real_div", "maximum", "minimum", "pow"};
  const int64_t xd[] = {2, 1, 5}, yd[] = {3, 1}, od[] = {2, 3, 5};
  for (int pi = 0; pi < 2; pi++)
    for (size_t k = 0; k < sizeof ops / sizeof *ops; k++) {
      char tmpl[1024];
      snprintf(tmpl, sizeof tmpl,
               "program(1.3)\n{\n  func main<ios18>(tensor<$T, [2, 1, 5]> x, "
               "tensor<$T, [3, 1]> y) {\n"
               "    tensor<$T, [2, 3, 5]> z = %s(x = x, y = y)[name = string(\"z\")];\n"
               "    tensor<$T, [2, 1, 5]> s = %s(x = x, y = $T(1.5))[name = string(\"s\")];\n"
               "    tensor<$T, [3, 1]> t = %s(x = $T(0.75), y = y)[name = string(\"t\")];\n"
               "  } -> (z, s, t);\n}\n", ops[k], ops[k], ops[k]);
      Run r;
      run_open(&r, tmpl, (ExecPrecision)pi, NULL);
      bool pos = !strcmp(ops[k], "pow");
      double *x = run_random(&r, "x", 7 + k, 0.25, 1.25, pos);
      double *y = run_random(&r, "y", 70 + k, 0.25, 1.25, pos);
      run_exec(&r);
      double wz[30], ws[10], wt[3];
      for (int64_t i = 0; i < 30; i++)
        wz[i] = ref_binary(ops[k], x[bcast_index(i, 3, od, 3, xd)],
                           y[bcast_index(i, 3, od, 2, yd)]);
      for (int i = 0; i < 10; i++)
        ws[i] = ref_binary(ops[k], x[i], 1.5);
      for (int i = 0; i < 3; i++)
        wt[i] = ref_binary(ops[k], 0.75, y[i]);
      char what[64];
      snprintf(what, sizeof what, "%s %s", ops[k], prec_name(r.prec));
      expect_close(what, run_get(&r, "z", NULL), wz, 30, tol_for(r.prec), 0);
      expect_close(what, run_get(&r, "s", NULL), ws, 10, tol_for(r.prec), 0);
      expect_close(what, run_get(&r, "t", NULL), wt, 3, tol_for(r.prec), 0);
      run_close(&r);
    }
}

//
// Reductions
//

static const char reduce_tmpl[] =
    "program(1.3)\n{\n  func main<ios18>(tensor<$T, [3, 4, 5]> x) {\n"
    "    tensor<int32, [1]> a1 = const()[name = string(\"a1\"), val = tensor<int32, [1]>([1])];\n"
    "    tensor<int32, [2]> a02 = const()[name = string(\"a02\"), val = tensor<int32, [2]>([0, -1])];\n"
    "    tensor<$T, [3, 1, 5]> s = reduce_sum(x = x, axes = a1, keep_dims = bool(true))[name = string(\"s\")];\n"
    "    tensor<$T, [4]> m = reduce_mean(x = x, axes = a02)[name = string(\"m\")];\n"
    "    tensor<$T, []> mx = reduce_max(x = x)[name = string(\"mx\")];\n"
    "    tensor<$T, [3, 4, 5]> p = softmax(x = x, axis = int32(1))[name = string(\"p\")];\n"
    "    tensor<$T, [3, 4, 5]> q = softmax(x = x)[name = string(\"q\")];\n"
    "  } -> (s, m, mx, p, q);\n}\n";

// fp16 with the ANE quirks (the default): the sums of 4 and 15 values add in
// fp16 and still hold 2e-3 of the RMS.
static void test_reductions(void **state) {
  (void)state;
  for (int pi = 0; pi < 2; pi++) {
    Run r;
    run_open(&r, reduce_tmpl, (ExecPrecision)pi, NULL);
    double *x = run_random(&r, "x", 5, 0.1, 2.0, false);
    run_exec(&r);
    double s[15] = {0}, m[4] = {0}, mx = -INFINITY, p[60], q[60];
    for (int a = 0; a < 3; a++)
      for (int b = 0; b < 4; b++)
        for (int c = 0; c < 5; c++) {
          double v = x[(a * 4 + b) * 5 + c];
          s[a * 5 + c] += v;
          m[b] += v / 15;
          mx = v > mx ? v : mx;
        }
    for (int a = 0; a < 3; a++)
      for (int c = 0; c < 5; c++) { // softmax over axis 1
        double z = 0;
        for (int b = 0; b < 4; b++)
          z += exp(x[(a * 4 + b) * 5 + c]);
        for (int b = 0; b < 4; b++)
          p[(a * 4 + b) * 5 + c] = exp(x[(a * 4 + b) * 5 + c]) / z;
      }
    for (int row = 0; row < 12; row++) { // over the last axis
      double z = 0;
      for (int c = 0; c < 5; c++)
        z += exp(x[row * 5 + c]);
      for (int c = 0; c < 5; c++)
        q[row * 5 + c] = exp(x[row * 5 + c]) / z;
    }
    double tol = tol_for(r.prec);
    expect_close("reduce_sum", run_get(&r, "s", NULL), s, 15, tol, 1);
    expect_close("reduce_mean", run_get(&r, "m", NULL), m, 4, tol, 1);
    expect_close("reduce_max", run_get(&r, "mx", NULL), &mx, 1, tol, 0);
    expect_close("softmax axis 1", run_get(&r, "p", NULL), p, 60, tol, 0);
    expect_close("softmax axis -1", run_get(&r, "q", NULL), q, 60, tol, 0);
    run_close(&r);
  }
}

// A last-axis softmax of 45 rows 1500 wide: the pool takes the rows in
// blocks of 21 (21, 21, 3), each with its own row buffers.
static const char softmax_rows_tmpl[] =
    "program(1.3)\n{\n  func main<ios18>(tensor<$T, [3, 15, 1500]> x) {\n"
    "    tensor<$T, [3, 15, 1500]> p = softmax(x = x, axis = int32(-1))[name = string(\"p\")];\n"
    "  } -> (p);\n}\n";

static void test_softmax_row_blocks(void **state) {
  (void)state;
  enum { ROWS = 45, W = 1500 };
  double *p = malloc(ROWS * W * sizeof *p);
  for (int pi = 0; pi < 2; pi++) {
    Run r;
    run_open(&r, softmax_rows_tmpl, (ExecPrecision)pi, NULL);
    double *x = run_random(&r, "x", 9, -4.0, 4.0, false);
    run_exec(&r);
    for (int row = 0; row < ROWS; row++) {
      double z = 0;
      for (int c = 0; c < W; c++)
        z += exp(x[row * W + c]);
      for (int c = 0; c < W; c++)
        p[row * W + c] = exp(x[row * W + c]) / z;
    }
    expect_close("softmax row blocks", run_get(&r, "p", NULL), p, ROWS * W, tol_for(r.prec), 1);
    run_close(&r);
  }
  free(p);
}

static const char layer_norm_tmpl[] =
    "program(1.3)\n{\n  func main<ios18>(tensor<$T, [1, 6, 1, 7]> x, tensor<$T, [6]> g, tensor<$T, [6]> b) {\n"
    "    tensor<int32, [1]> ax = const()[name = string(\"ax\"), val = tensor<int32, [1]>([1])];\n"
    "    tensor<$T, [1, 6, 1, 7]> y = layer_norm(x = x, axes = ax, gamma = g, beta = b, epsilon = $T(0.001))[name = string(\"y\")];\n"
    "    tensor<int32, [1]> last = const()[name = string(\"last\"), val = tensor<int32, [1]>([-1])];\n"
    "    tensor<$T, [1, 6, 1, 7]> z = layer_norm(x = x, axes = last)[name = string(\"z\")];\n"
    "  } -> (y, z);\n}\n";

// layer_norm over the channels of [1, C, 1, S] (the ANE layout) and over the last axis.
static void test_layer_norm(void **state) {
  (void)state;
  for (int pi = 0; pi < 2; pi++) {
    Run r;
    run_open(&r, layer_norm_tmpl, (ExecPrecision)pi, NULL);
    double *x = run_random(&r, "x", 11, 0.2, 2.0, false);
    double *g = run_random(&r, "g", 12, 0.5, 1.5, false);
    double *b = run_random(&r, "b", 13, 0.1, 1, false);
    run_exec(&r);
    double y[42], z[42], eps = stored(r.prec, 0.001);
    for (int s = 0; s < 7; s++) {
      double mean = 0, var = 0;
      for (int c = 0; c < 6; c++)
        mean += x[c * 7 + s] / 6;
      for (int c = 0; c < 6; c++)
        var += (x[c * 7 + s] - mean) * (x[c * 7 + s] - mean) / 6;
      for (int c = 0; c < 6; c++)
        y[c * 7 + s] = (x[c * 7 + s] - mean) / sqrt(var + eps) * g[c] + b[c];
    }
    for (int c = 0; c < 6; c++) {
      double mean = 0, var = 0;
      for (int s = 0; s < 7; s++)
        mean += x[c * 7 + s] / 7;
      for (int s = 0; s < 7; s++)
        var += (x[c * 7 + s] - mean) * (x[c * 7 + s] - mean) / 7;
      for (int s = 0; s < 7; s++)
        z[c * 7 + s] = (x[c * 7 + s] - mean) / sqrt(var + 1e-5);
    }
    expect_close("layer_norm axes [1]", run_get(&r, "y", NULL), y, 42, 2 * tol_for(r.prec), 1);
    expect_close("layer_norm axes [-1]", run_get(&r, "z", NULL), z, 42, 2 * tol_for(r.prec), 1);
    run_close(&r);
  }
}

//
// Data movement (exact in both precisions: the inputs are stored values)
//

static const char movement_tmpl[] =
    "program(1.3)\n{\n  func main<ios18>(tensor<$T, [2, 3, 4]> x, tensor<$T, [2, 2, 4]> w) {\n"
    "    tensor<int32, [3]> sh = const()[name = string(\"sh\"), val = tensor<int32, [3]>([0, -1, 2])];\n"
    "    tensor<$T, [2, 6, 2]> r = reshape(x = x, shape = sh)[name = string(\"r\")];\n"
    "    tensor<int32, [3]> pm = const()[name = string(\"pm\"), val = tensor<int32, [3]>([2, 0, 1])];\n"
    "    tensor<$T, [4, 2, 3]> t = transpose(x = x, perm = pm)[name = string(\"t\")];\n"
    "    tensor<$T, [1, 2, 3]> sz = slice_by_size(x = x, begin = tensor<int32, [3]>([1, 1, -3]), size = tensor<int32, [3]>([-1, 2, 3]))[name = string(\"sz\")];\n"
    "    tensor<$T, [2, 2, 2]> si = slice_by_index(x = x, begin = tensor<int32, [3]>([0, 2, 3]), end = tensor<int32, [3]>([0, 0, 0]), stride = tensor<int32, [3]>([1, -2, -2]), begin_mask = tensor<bool, [3]>([true, false, false]), end_mask = tensor<bool, [3]>([true, true, true]), squeeze_mask = tensor<bool, [3]>([false, false, false]))[name = string(\"si0\")];\n"
    "    tensor<$T, [3, 2]> sq = slice_by_index(x = x, begin = tensor<int32, [3]>([-1, 0, 1]), end = tensor<int32, [3]>([0, 3, 4]), stride = tensor<int32, [3]>([1, 1, 2]), squeeze_mask = tensor<bool, [3]>([true, false, false]))[name = string(\"sq\")];\n"
    "    tensor<$T, [2, 5, 4]> c = concat(values = (x, w), axis = int32(1))[name = string(\"c\")];\n"
    "    tensor<$T, [2, 6, 4]> ci = concat(values = (x, x), axis = int32(-2), interleave = bool(true))[name = string(\"ci\")];\n"
    "    tensor<$T, [2, 1, 4]> p0, tensor<$T, [2, 2, 4]> p1 = split(x = x, axis = int32(1), split_sizes = tensor<int32, [2]>([1, 2]))[name = string(\"p\")];\n"
    "    tensor<$T, [2, 3, 2]> h0, tensor<$T, [2, 3, 2]> h1 = split(x = x, axis = int32(2), num_splits = int32(2))[name = string(\"h\")];\n"
    "    tensor<$T, [2, 3, 4]> bp = band_part(x = x, lower = int32(0), upper = int32(1))[name = string(\"bp\")];\n"
    "  } -> (r, t, sz, si, sq, c, ci, p0, p1, h0, h1, bp);\n}\n";

static void expect_exact(const char *what, const double *got, const double *want, int64_t n) {
  expect_close(what, got, want, n, 0, 0);
}

#define X3(a, b, c) x[((a) * 3 + (b)) * 4 + (c)]

static void test_data_movement(void **state) {
  (void)state;
  for (int pi = 0; pi < 2; pi++) {
    Run r;
    run_open(&r, movement_tmpl, (ExecPrecision)pi, NULL);
    double *x = run_random(&r, "x", 21, 0.25, 1.25, false);
    double *w = run_random(&r, "w", 22, 0.25, 1.25, false);
    run_exec(&r);
    double t[24], sz[6], si[8], sq[6], c[40], ci[48], h0[12], h1[12], bp[24];
    int k = 0;
    expect_exact("reshape", run_get(&r, "r", NULL), x, 24);
    for (int a = 0; a < 4; a++)
      for (int b = 0; b < 2; b++)
        for (int d = 0; d < 3; d++)
          t[k++] = X3(b, d, a);
    expect_exact("transpose", run_get(&r, "t", NULL), t, 24);
    k = 0;
    for (int b = 1; b < 3; b++)
      for (int d = 1; d < 4; d++)
        sz[k++] = X3(1, b, d);
    expect_exact("slice_by_size", run_get(&r, "sz", NULL), sz, 6);
    k = 0; // axis 0 masked: all; axis 1 from 2 down by 2: 2, 0; axis 2 from 3: 3, 1
    for (int a = 0; a < 2; a++)
      for (int b = 2; b >= 0; b -= 2)
        for (int d = 3; d >= 0; d -= 2)
          si[k++] = X3(a, b, d);
    expect_exact("slice_by_index negative strides, masks", run_get(&r, "si", NULL), si, 8);
    k = 0;
    for (int b = 0; b < 3; b++)
      for (int d = 1; d < 4; d += 2)
        sq[k++] = X3(1, b, d);
    expect_exact("slice_by_index squeeze", run_get(&r, "sq", NULL), sq, 6);
    k = 0;
    for (int a = 0; a < 2; a++) {
      for (int b = 0; b < 3; b++)
        for (int d = 0; d < 4; d++)
          c[k++] = X3(a, b, d);
      for (int b = 0; b < 2; b++)
        for (int d = 0; d < 4; d++)
          c[k++] = w[(a * 2 + b) * 4 + d];
    }
    expect_exact("concat", run_get(&r, "c", NULL), c, 40);
    k = 0;
    for (int a = 0; a < 2; a++)
      for (int b = 0; b < 6; b++)
        for (int d = 0; d < 4; d++)
          ci[k++] = X3(a, b / 2, d);
    expect_exact("concat interleave", run_get(&r, "ci", NULL), ci, 48);
    double p0[8], p1[16];
    for (int a = 0, k0 = 0, k1 = 0; a < 2; a++)
      for (int b = 0; b < 3; b++)
        for (int d = 0; d < 4; d++)
          (b == 0 ? p0 : p1)[b == 0 ? k0++ : k1++] = X3(a, b, d);
    expect_exact("split sizes 0", run_get(&r, "p0", NULL), p0, 8);
    expect_exact("split sizes 1", run_get(&r, "p1", NULL), p1, 16);
    k = 0;
    for (int a = 0; a < 2; a++)
      for (int b = 0; b < 3; b++)
        for (int d = 0; d < 2; d++, k++)
          h0[k] = X3(a, b, d), h1[k] = X3(a, b, d + 2);
    expect_exact("split num 0", run_get(&r, "h0", NULL), h0, 12);
    expect_exact("split num 1", run_get(&r, "h1", NULL), h1, 12);
    k = 0;
    for (int a = 0; a < 2; a++)
      for (int b = 0; b < 3; b++)
        for (int d = 0; d < 4; d++, k++)
          bp[k] = b - d <= 0 && d - b <= 1 ? X3(a, b, d) : 0;
    expect_exact("band_part", run_get(&r, "bp", NULL), bp, 24);
    run_close(&r);
  }
}

// Reshapes share their operand's storage (no copy): the operand must then live
// as long as its aliases are read, or the plan would hand its slab to u.
static const char alias_tmpl[] =
    "program(1.3)\n{\n  func main<ios18>(tensor<$T, [4, 8]> x) {\n"
    "    tensor<$T, [4, 8]> t = exp(x = x)[name = string(\"t\")];\n"
    "    tensor<$T, [8, 4]> r = reshape(x = t, shape = tensor<int32, [2]>([8, 4]))[name = string(\"r\")];\n"
    "    tensor<$T, [32]> r2 = reshape(x = r, shape = tensor<int32, [1]>([32]))[name = string(\"r2\")];\n"
    "    tensor<$T, [4, 8]> u = mul(x = x, y = x)[name = string(\"u\")];\n"
    "    tensor<$T, [32]> v = reshape(x = u, shape = tensor<int32, [1]>([32]))[name = string(\"v\")];\n"
    "    tensor<$T, [32]> z = add(x = r2, y = v)[name = string(\"z\")];\n"
    "    tensor<$T, [4, 8]> zz = reshape(x = z, shape = tensor<int32, [2]>([4, 8]))[name = string(\"zz\")];\n"
    "  } -> (zz);\n}\n";

static void test_reshape_alias(void **state) {
  (void)state;
  for (int pi = 0; pi < 2; pi++) {
    Run r;
    run_open(&r, alias_tmpl, (ExecPrecision)pi, NULL);
    double *x = run_random(&r, "x", 23, 0.25, 1.25, false), want[32];
    run_exec(&r);
    for (int i = 0; i < 32; i++)
      want[i] = stored(r.prec, exp(x[i])) + stored(r.prec, x[i] * x[i]);
    expect_close("exp(x) + x*x through reshapes", run_get(&r, "zz", NULL), want, 32,
                 2 * tol_for(r.prec), 0);
    run_close(&r);
  }
}

static const char cast_gather_tmpl[] =
    "program(1.3)\n{\n  func main<ios18>(tensor<$T, [2, 5]> x, tensor<int32, [3]> ids, tensor<$T, [4, 3]> tab) {\n"
    "    tensor<int32, [2, 5]> xi = cast(x = x, dtype = string(\"int32\"))[name = string(\"xi\")];\n"
    "    tensor<$T, [2, 5]> xf = cast(x = xi, dtype = string(\"$T\"))[name = string(\"xf\")];\n"
    "    tensor<bool, [2, 5]> nz = cast(x = xi, dtype = string(\"bool\"))[name = string(\"nz\")];\n"
    "    tensor<$T, [2, 5]> sel = select(cond = nz, a = x, b = $T(-7))[name = string(\"sel\")];\n"
    "    tensor<$T, [3, 3]> g0 = gather(x = tab, indices = ids, axis = int32(0))[name = string(\"g0\")];\n"
    "    tensor<$T, [4, 3]> g1 = gather(x = tab, indices = ids, axis = int32(-1))[name = string(\"g1\")];\n"
    "  } -> (xi, xf, sel, g0, g1);\n}\n";

// cast truncates toward zero; select picks by a bool made by cast; gather
// wraps negative indices; an index out of range fails the run.
static void test_cast_select_gather(void **state) {
  (void)state;
  for (int pi = 0; pi < 2; pi++) {
    Run r;
    run_open(&r, cast_gather_tmpl, (ExecPrecision)pi, NULL);
    double *x = run_random(&r, "x", 31, 0.3, 3.0, false);
    double *tab = run_random(&r, "tab", 32, 0.25, 1.25, false), ids[3] = {2, -1, 0};
    run_set(&r, "ids", ids);
    run_exec(&r);
    double xi[10], sel[10], g0[9], g1[12];
    for (int i = 0; i < 10; i++) {
      xi[i] = trunc(x[i]);
      sel[i] = xi[i] != 0 ? x[i] : -7;
    }
    for (int a = 0; a < 3; a++)
      for (int c = 0; c < 3; c++)
        g0[a * 3 + c] = tab[(a == 1 ? 3 : (int)ids[a]) * 3 + c];
    for (int a = 0; a < 4; a++)
      for (int c = 0; c < 3; c++)
        g1[a * 3 + c] = tab[a * 3 + (c == 1 ? 2 : (int)ids[c])];
    expect_exact("cast to int32", run_get(&r, "xi", NULL), xi, 10);
    expect_exact("cast back", run_get(&r, "xf", NULL), xi, 10);
    expect_exact("select", run_get(&r, "sel", NULL), sel, 10);
    expect_exact("gather axis 0", run_get(&r, "g0", NULL), g0, 9);
    expect_exact("gather axis -1", run_get(&r, "g1", NULL), g1, 12);
    double bad[3] = {0, 4, 1};
    run_set(&r, "ids", bad);
    FILE *out = fmemopen(r.err, sizeof r.err, "w");
    RtDiag d = {.out = out};
    assert_false(exec_run(r.e, &d));
    fclose(out);
    assert_int_equal(d.errors, 1);
    assert_non_null(strstr(r.err, "t.mil:8:"));
    assert_non_null(strstr(r.err, "gather index 4 is out of range for an axis of 4"));
    run_close(&r);
  }
}

//
// Matrix products
//

// NumPy matmul over broadcast batches, x [..., M, K] (or [..., K, M] when tx).
static void ref_matmul(const double *x, int xr, const int64_t *xd, bool tx, const double *y,
                       int yr, const int64_t *yd, bool ty, double *out) {
  int64_t M = tx ? xd[xr - 1] : xd[xr - 2], K = tx ? xd[xr - 2] : xd[xr - 1];
  int64_t N = ty ? yd[yr - 2] : yd[yr - 1];
  int br = (xr > yr ? xr : yr) - 2;
  int64_t bd[8], nb = 1;
  for (int i = 0; i < br; i++) {
    int j = i - (br - (xr - 2)), k = i - (br - (yr - 2));
    int64_t a = j >= 0 ? xd[j] : 1, b = k >= 0 ? yd[k] : 1;
    bd[i] = a > b ? a : b;
    nb *= bd[i];
  }
  for (int64_t b = 0; b < nb; b++) {
    const double *xb = x + bcast_index(b, br, bd, xr - 2, xd) * M * K;
    const double *yb = y + bcast_index(b, br, bd, yr - 2, yd) * K * N;
    for (int64_t m = 0; m < M; m++)
      for (int64_t n = 0; n < N; n++) {
        double acc = 0;
        for (int64_t k = 0; k < K; k++)
          acc += (tx ? xb[k * M + m] : xb[m * K + k]) * (ty ? yb[n * K + k] : yb[k * N + n]);
        out[(b * M + m) * N + n] = acc;
      }
  }
}

static const char matmul_tmpl[] =
    "program(1.3)\n{\n  func main<ios18>(tensor<$T, [2, 3, 4, 5]> a, tensor<$T, [5, 6]> b, "
    "tensor<$T, [3, 6, 5]> bt, tensor<$T, [2, 1, 5, 4]> at, tensor<$T, [6, 5]> w, tensor<$T, [6]> bias) {\n"
    "    tensor<$T, [2, 3, 4, 6]> m1 = matmul(x = a, y = b)[name = string(\"m1\")];\n"
    "    tensor<$T, [2, 3, 4, 6]> m2 = matmul(x = a, y = bt, transpose_y = bool(true))[name = string(\"m2\")];\n"
    "    tensor<$T, [2, 3, 4, 6]> m3 = matmul(x = at, y = bt, transpose_x = bool(true), transpose_y = bool(true))[name = string(\"m3\")];\n"
    "    tensor<$T, [2, 3, 4, 6]> l = linear(x = a, weight = w, bias = bias)[name = string(\"l\")];\n"
    "  } -> (m1, m2, m3, l);\n}\n";

static void test_matmul(void **state) {
  (void)state;
  const int64_t ad[] = {2, 3, 4, 5}, bd[] = {5, 6}, btd[] = {3, 6, 5}, atd[] = {2, 1, 5, 4};
  for (int pi = 0; pi < 2; pi++) {
    Run r;
    run_open(&r, matmul_tmpl, (ExecPrecision)pi, NULL);
    double *a = run_random(&r, "a", 41, 0.25, 1.25, false);
    double *b = run_random(&r, "b", 42, 0.25, 1.25, false);
    double *bt = run_random(&r, "bt", 43, 0.25, 1.25, false);
    double *at = run_random(&r, "at", 44, 0.25, 1.25, false);
    double *w = run_random(&r, "w", 45, 0.25, 1.25, false);
    double *bias = run_random(&r, "bias", 46, 0.25, 1.25, false);
    run_exec(&r);
    double want[144];
    double tol = tol_for(r.prec);
    ref_matmul(a, 4, ad, false, b, 2, bd, false, want);
    expect_close("matmul, shared y", run_get(&r, "m1", NULL), want, 144, tol, 1);
    ref_matmul(a, 4, ad, false, bt, 3, btd, true, want);
    expect_close("matmul transpose_y, batch broadcast", run_get(&r, "m2", NULL), want, 144, tol, 1);
    ref_matmul(at, 4, atd, true, bt, 3, btd, true, want);
    expect_close("matmul transpose_x and _y, both broadcast", run_get(&r, "m3", NULL), want,
                 144, tol, 1);
    for (int i = 0; i < 24; i++)
      for (int n = 0; n < 6; n++) {
        double acc = bias[n];
        for (int k = 0; k < 5; k++)
          acc += a[i * 5 + k] * w[n * 5 + k];
        want[i * 6 + n] = acc;
      }
    expect_close("linear", run_get(&r, "l", NULL), want, 144, tol, 1);
    run_close(&r);
  }
}

// A transpose of the last two axes read only by matmuls folds into their
// transpose flags (x of one, y of another, both of a third); one also read
// by an add stays a copy.
static const char fold_tmpl[] =
    "program(1.3)\n{\n  func main<ios18>(tensor<$T, [2, 3, 4]> x, tensor<$T, [2, 3, 5]> w, tensor<$T, [2, 6, 3]> v) {\n"
    "    tensor<$T, [2, 4, 3]> t = transpose(x = x, perm = tensor<int32, [3]>([0, 2, 1]))[name = string(\"t\")];\n"
    "    tensor<$T, [2, 4, 5]> a = matmul(x = t, y = w)[name = string(\"a\")];\n"
    "    tensor<$T, [2, 6, 4]> b = matmul(x = v, y = t, transpose_y = bool(true))[name = string(\"b\")];\n"
    "    tensor<$T, [2, 3, 3]> c = matmul(x = t, y = t, transpose_x = bool(true))[name = string(\"c\")];\n"
    "    tensor<$T, [2, 5, 3]> u = transpose(x = w, perm = tensor<int32, [3]>([0, 2, 1]))[name = string(\"u\")];\n"
    "    tensor<$T, [2, 5, 3]> uu = add(x = u, y = u)[name = string(\"uu\")];\n"
    "    tensor<$T, [2, 5, 4]> d = matmul(x = u, y = x)[name = string(\"d\")];\n"
    "  } -> (a, b, c, uu, d);\n}\n";

static void test_transpose_folds(void **state) {
  (void)state;
  const int64_t xd[] = {2, 3, 4}, wd[] = {2, 3, 5}, vd[] = {2, 6, 3};
  for (int pi = 0; pi < 2; pi++) {
    Run r;
    run_open(&r, fold_tmpl, (ExecPrecision)pi, NULL);
    double *x = run_random(&r, "x", 47, 0.25, 1.25, false);
    double *w = run_random(&r, "w", 48, 0.25, 1.25, false);
    double *v = run_random(&r, "v", 49, 0.25, 1.25, false);
    run_exec(&r);
    double want[48], tol = tol_for(r.prec);
    ref_matmul(x, 3, xd, true, w, 3, wd, false, want); // t = x^T
    expect_close("matmul(x = t)", run_get(&r, "a", NULL), want, 40, tol, 1);
    ref_matmul(v, 3, vd, false, x, 3, xd, false, want); // (t^T) = x
    expect_close("matmul(y = t, transpose_y)", run_get(&r, "b", NULL), want, 48, tol, 1);
    ref_matmul(x, 3, xd, false, x, 3, xd, true, want); // t^T t = x x^T
    expect_close("matmul(t, t, transpose_x)", run_get(&r, "c", NULL), want, 18, tol, 1);
    ref_matmul(w, 3, wd, true, x, 3, xd, false, want);
    expect_close("matmul(x = u), u also added", run_get(&r, "d", NULL), want, 40, tol, 1);
    run_close(&r);
  }
}

typedef struct ConvCase {
  int64_t n, c, h, w, o, kh, kw, sh, sw, dh, dw, groups;
  const char *pad_type;
  int64_t pad[4]; // custom: top, bottom, left, right
  bool bias, one_d;
} ConvCase;

static void conv_pads_of(const ConvCase *k, int64_t *pad) {
  memcpy(pad, k->pad, 4 * sizeof *pad);
  if (strncmp(k->pad_type, "same", 4))
    return;
  int64_t in[2] = {k->h, k->w}, kk[2] = {k->kh, k->kw};
  int64_t st[2] = {k->sh, k->sw}, dl[2] = {k->dh, k->dw};
  for (int i = 0; i < 2; i++) {
    int64_t out = (in[i] + st[i] - 1) / st[i];
    int64_t total = (out - 1) * st[i] + (kk[i] - 1) * dl[i] + 1 - in[i];
    total = total > 0 ? total : 0;
    pad[2 * i] = k->pad_type[4] ? total - total / 2 : total / 2;
    pad[2 * i + 1] = total - pad[2 * i];
  }
}

static void ref_conv(const ConvCase *k, const int64_t *pad, int64_t oh, int64_t ow,
                     const double *x, const double *w, const double *b, double *out) {
  int64_t cg = k->c / k->groups, og = k->o / k->groups;
  for (int64_t n = 0; n < k->n; n++)
    for (int64_t o = 0; o < k->o; o++)
      for (int64_t y = 0; y < oh; y++)
        for (int64_t z = 0; z < ow; z++) {
          double acc = b ? b[o] : 0;
          for (int64_t c = 0; c < cg; c++)
            for (int64_t i = 0; i < k->kh; i++)
              for (int64_t j = 0; j < k->kw; j++) {
                int64_t iy = y * k->sh - pad[0] + i * k->dh, ix = z * k->sw - pad[2] + j * k->dw;
                if (iy >= 0 && iy < k->h && ix >= 0 && ix < k->w)
                  acc += x[((n * k->c + o / og * cg + c) * k->h + iy) * k->w + ix] *
                         w[((o * cg + c) * k->kh + i) * k->kw + j];
              }
          out[((n * k->o + o) * oh + y) * ow + z] = acc;
        }
}

static char *dims_text(char *buf, bool one_d, int64_t a, int64_t b, int64_t c, int64_t d) {
  if (one_d)
    sprintf(buf, "[%lld, %lld, %lld]", (long long)a, (long long)b, (long long)d);
  else
    sprintf(buf, "[%lld, %lld, %lld, %lld]", (long long)a, (long long)b, (long long)c,
            (long long)d);
  return buf;
}

static void conv_case(const ConvCase *k, ExecPrecision prec) {
  int64_t pad[4];
  conv_pads_of(k, pad);
  int64_t oh = (k->h + pad[0] + pad[1] - (k->kh - 1) * k->dh - 1) / k->sh + 1;
  int64_t ow = (k->w + pad[2] + pad[3] - (k->kw - 1) * k->dw - 1) / k->sw + 1;
  char xt[64], wt[64], ot[64], tmpl[2048], params[512];
  if (k->one_d)
    snprintf(params, sizeof params, "strides = tensor<int32, [1]>([%lld]), dilations = "
             "tensor<int32, [1]>([%lld]), pad = tensor<int32, [2]>([%lld, %lld])",
             (long long)k->sw, (long long)k->dw, (long long)pad[2], (long long)pad[3]);
  else
    snprintf(params, sizeof params, "strides = tensor<int32, [2]>([%lld, %lld]), dilations = "
             "tensor<int32, [2]>([%lld, %lld]), pad = tensor<int32, [4]>([%lld, %lld, %lld, %lld])",
             (long long)k->sh, (long long)k->sw, (long long)k->dh, (long long)k->dw,
             (long long)k->pad[0], (long long)k->pad[1], (long long)k->pad[2],
             (long long)k->pad[3]);
  snprintf(tmpl, sizeof tmpl,
           "program(1.3)\n{\n  func main<ios18>(tensor<$T, %s> x, tensor<$T, %s> w, tensor<$T, [%lld]> b) {\n"
           "    tensor<$T, %s> y = conv(x = x, weight = w%s, pad_type = string(\"%s\"), %s, groups = int32(%lld))[name = string(\"y\")];\n"
           "  } -> (y);\n}\n",
           dims_text(xt, k->one_d, k->n, k->c, k->h, k->w),
           dims_text(wt, k->one_d, k->o, k->c / k->groups, k->kh, k->kw), (long long)k->o,
           dims_text(ot, k->one_d, k->n, k->o, oh, ow), k->bias ? ", bias = b" : "", k->pad_type,
           params, (long long)k->groups);
  Run r;
  run_open(&r, tmpl, prec, NULL);
  double *x = run_random(&r, "x", 51, 0.25, 1.25, false);
  double *w = run_random(&r, "w", 52, 0.25, 1.25, false);
  double *b = run_random(&r, "b", 53, 0.25, 1.25, false);
  run_exec(&r);
  int64_t n;
  double *y = run_get(&r, "y", &n), *want = malloc((size_t)n * sizeof *want);
  assert_int_equal(n, k->n * k->o * oh * ow);
  ref_conv(k, pad, oh, ow, x, w, k->bias ? b : NULL, want);
  char what[128];
  snprintf(what, sizeof what, "conv %s %s", ot, prec_name(prec));
  expect_close(what, y, want, n, tol_for(prec), 1);
  free(want);
  run_close(&r);
}

static void test_conv(void **state) {
  (void)state;
  const ConvCase cases[] = {
      // 1x1 with bias (one sgemm), the ANE's [1, C, 1, S] layout
      {1, 16, 1, 20, 24, 1, 1, 1, 1, 1, 1, 1, "valid", {0}, true, false},
      // 3x3, custom pads, strides, dilations, groups, batch 2
      {2, 4, 7, 9, 6, 3, 3, 2, 1, 1, 2, 2, "custom", {1, 2, 0, 1}, true, false},
      {1, 3, 6, 5, 4, 3, 2, 2, 2, 1, 1, 1, "same", {0}, false, false},
      {1, 3, 6, 5, 4, 3, 2, 2, 2, 1, 1, 1, "same_lower", {0}, true, false},
      {1, 2, 5, 5, 3, 4, 4, 1, 1, 1, 1, 1, "same", {0}, true, false},       // odd total pad
      {1, 2, 5, 5, 3, 4, 4, 1, 1, 1, 1, 1, "same_lower", {0}, true, false},
      {1, 4, 5, 6, 4, 3, 3, 1, 1, 1, 1, 4, "valid", {0}, false, false}, // depthwise
      {1, 4, 1, 10, 5, 1, 3, 1, 1, 1, 1, 1, "custom", {0, 0, 1, 1}, true, true}, // 1-d
      {1, 8, 1, 12, 6, 1, 1, 1, 2, 1, 1, 2, "valid", {0}, true, false}, // 1x1 strided, groups
  };
  for (int pi = 0; pi < 2; pi++)
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
      conv_case(&cases[i], (ExecPrecision)pi);
}

static const char sdpa_tmpl[] =
    "program(1.3)\n{\n  func main<ios18>(tensor<$T, [2, 3, 8, 16]> q, tensor<$T, [2, 3, 10, 16]> k, "
    "tensor<$T, [2, 3, 10, 12]> v, tensor<$T, [1, 1, 8, 10]> m, tensor<bool, [8, 10]> keep) {\n"
    "    tensor<$T, [2, 3, 8, 12]> a = scaled_dot_product_attention(query = q, key = k, value = v, attn_mask = m)[name = string(\"a\")];\n"
    "    tensor<$T, [2, 3, 8, 12]> c = scaled_dot_product_attention(query = q, key = k, value = v, attn_mask = keep)[name = string(\"c\")];\n"
    "    tensor<$T, [2, 3, 8, 12]> u = scaled_dot_product_attention(query = q, key = k, value = v)[name = string(\"u\")];\n"
    "  } -> (a, c, u);\n}\n";

// softmax(q kᵀ / sqrt(E) + mask) v per batch and head; keep[l][s] as a bool mask.
static void ref_sdpa(const double *q, const double *k, const double *v, const double *m,
                     const double *keep, double *out) {
  for (int b = 0; b < 6; b++)
    for (int l = 0; l < 8; l++) {
      double s[10], max = -INFINITY, z = 0;
      for (int j = 0; j < 10; j++) {
        double acc = 0;
        for (int e = 0; e < 16; e++)
          acc += q[(b * 8 + l) * 16 + e] * k[(b * 10 + j) * 16 + e];
        s[j] = acc / 4 + (m ? m[l * 10 + j] : 0);
        s[j] = keep && !keep[l * 10 + j] ? -INFINITY : s[j];
        max = s[j] > max ? s[j] : max;
      }
      for (int j = 0; j < 10; j++)
        z += s[j] = exp(s[j] - max);
      for (int c = 0; c < 12; c++) {
        double acc = 0;
        for (int j = 0; j < 10; j++)
          acc += s[j] / z * v[(b * 10 + j) * 12 + c];
        out[(b * 8 + l) * 12 + c] = acc;
      }
    }
}

static void test_sdpa(void **state) {
  (void)state;
  for (int pi = 0; pi < 2; pi++) {
    Run r;
    run_open(&r, sdpa_tmpl, (ExecPrecision)pi, NULL);
    double *q = run_random(&r, "q", 61, 0.25, 1.25, false);
    double *k = run_random(&r, "k", 62, 0.25, 1.25, false);
    double *v = run_random(&r, "v", 63, 0.25, 1.25, false);
    double *m = run_random(&r, "m", 64, 0.25, 2, false), keep[80];
    for (int l = 0; l < 8; l++)
      for (int j = 0; j < 10; j++)
        keep[l * 10 + j] = j <= l + 2; // causal, shifted: no row fully masked
    run_set(&r, "keep", keep);
    run_exec(&r);
    double want[576], tol = 2 * tol_for(r.prec);
    ref_sdpa(q, k, v, m, NULL, want);
    expect_close("sdpa float mask", run_get(&r, "a", NULL), want, 576, tol, 1);
    ref_sdpa(q, k, v, NULL, keep, want);
    expect_close("sdpa bool mask", run_get(&r, "c", NULL), want, 576, tol, 1);
    ref_sdpa(q, k, v, NULL, NULL, want);
    expect_close("sdpa no mask", run_get(&r, "u", NULL), want, 576, tol, 1);
    run_close(&r);
  }
}

// An early value read again late: the memory plan must keep it alive while
// it reuses the others.
static const char liveness_tmpl[] =
    "program(1.3)\n{\n  func main<ios18>(tensor<$T, [64]> x) {\n"
    "    tensor<$T, [64]> a = exp(x = x)[name = string(\"a\")];\n"
    "    tensor<$T, [64]> b = mul(x = a, y = $T(2))[name = string(\"b\")];\n"
    "    tensor<$T, [64]> c = add(x = b, y = $T(1))[name = string(\"c\")];\n"
    "    tensor<$T, [64]> d = sub(x = c, y = $T(0.5))[name = string(\"d\")];\n"
    "    tensor<$T, [64]> e = mul(x = a, y = d)[name = string(\"e\")];\n"
    "    tensor<$T, [64]> f = tanh(x = e)[name = string(\"f\")];\n"
    "  } -> (f, b);\n}\n";

static void test_liveness_and_rerun(void **state) {
  (void)state;
  Run r;
  run_open(&r, liveness_tmpl, EXEC_FP32, NULL);
  for (uint64_t seed = 1; seed <= 3; seed++) { // prepared once, run many times
    double *x = run_random(&r, "x", seed, 0.1, 1, false), want[64], wb[64];
    run_exec(&r);
    for (int i = 0; i < 64; i++) {
      double a = exp(x[i]);
      wb[i] = 2 * a;
      want[i] = tanh(a * (2 * a + 1 - 0.5));
    }
    expect_close("liveness f", run_get(&r, "f", NULL), want, 64, TOL32, 0);
    expect_close("liveness b", run_get(&r, "b", NULL), wb, 64, TOL32, 0);
  }
  run_close(&r);
}

//
// ANE-style kernels from tests/mil, with weights written here
//

typedef struct Weights {
  char dir[64];
} Weights;

static void weights_dir(Weights *w) {
  strcpy(w->dir, "/tmp/test_exec.XXXXXX");
  assert_non_null(mkdtemp(w->dir));
  char sub[96];
  snprintf(sub, sizeof sub, "%s/weights", w->dir);
  assert_int_equal(mkdir(sub, 0755), 0);
}

// One fp16 blob of the values v (already fp16-exact) in weights/NAME.
static void weights_write(const Weights *w, const char *name, const double *v, int64_t n) {
  uint16_t *h = malloc((size_t)n * 2);
  for (int64_t i = 0; i < n; i++)
    h[i] = f32_to_fp16((float)v[i]);
  char path[160];
  snprintf(path, sizeof path, "%s/weights/%s", w->dir, name);
  MilBlob b = {MILBLOB_FP16, (uint64_t)n * 2, (const unsigned char *)h};
  uint64_t off;
  RtDiag d = {.out = stderr};
  assert_true(milblob_write(path, &b, 1, &off, &d));
  assert_int_equal(off, 64);
  free(h);
}

static void weights_remove(const Weights *w) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", w->dir);
  assert_int_equal(system(cmd), 0);
}

static char *read_source(const char *rel) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", ANEC_SOURCE_DIR, rel);
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
  s[n] = '\0';
  fclose(f);
  return s;
}

static double *random_values(int64_t n, uint64_t seed, double lo, double hi, bool positive) {
  double *v = malloc((size_t)n * sizeof *v);
  for (int64_t i = 0; i < n; i++) {
    double m = lo + (hi - lo) * uniform(&seed);
    v[i] = stored(EXEC_FP16, positive || (rng(&seed) & 1) ? m : -m);
  }
  return v;
}

// RMSNorm as maderix builds it: mul, reduce_sum, mul(1/D), add(eps),
// pow(-0.5), mul, mul(w). fp16: seven stored roundings, tol 5e-3, with and
// without the ANE quirks, each against its own reference: with them (the
// default) the sum of the 768 squares adds in fp16, sequentially, as the
// reference does too; without them the reference sum is wide. The quirks
// run does NOT hold 5e-3 against the wide sum (the narrow sum alone is off
// by up to 0.7% of the output: 2048 > sum > 1024, where fp16's spacing is 1).
static void test_mil_rmsnorm(void **state) {
  (void)state;
  Weights wd;
  weights_dir(&wd);
  double *w = random_values(768, 77, 0.5, 1.5, true);
  weights_write(&wd, "rms.bin", w, 768);
  char *text = read_source("tests/mil/rmsnorm.mil");
  for (int mode = 0; mode < 3; mode++) { // fp16 (quirks: the default), fp16 quirks off, fp32
    Run r;
    bool narrow = mode == 0;
    run_open_opts(&r, text, mode == 2 ? EXEC_FP32 : EXEC_FP16, mode == 1 ? &quirks_off : NULL,
                  wd.dir);
    assert_int_equal(exec_ane_quirks(r.e), narrow);
    for (uint64_t seed = 1; seed <= 2; seed++) {
      double *x = run_random(&r, "x", seed, 0.1, 2, false);
      run_exec(&r);
      double *want = run_keep(&r, malloc(768 * 64 * sizeof *want));
      double invd = stored(EXEC_FP16, 1.0 / 768), eps = stored(EXEC_FP16, 1e-5);
      for (int s = 0; s < 64; s++) {
        double ss = 0;
        for (int c = 0; c < 768; c++) // narrow: the stored squares, a stored running sum
          ss = narrow ? stored(EXEC_FP16, ss + stored(EXEC_FP16, x[c * 64 + s] * x[c * 64 + s]))
                      : ss + x[c * 64 + s] * x[c * 64 + s];
        double rr = pow(ss * invd + eps, -0.5);
        for (int c = 0; c < 768; c++)
          want[c * 64 + s] = x[c * 64 + s] * rr * w[c];
      }
      static const char *const what[3] = {"rmsnorm.mil fp16 quirks", "rmsnorm.mil fp16",
                                          "rmsnorm.mil fp32"};
      expect_close(what[mode], run_get(&r, "y", NULL), want, 768 * 64,
                   r.prec == EXEC_FP16 ? 5e-3 : 2e-5, 0);
    }
    run_close(&r);
  }
  free(text), free(w);
  weights_remove(&wd);
}

// A 1x1 conv 768 -> 1024 with BLOBFILE weight and bias.
static void test_mil_conv1x1(void **state) {
  (void)state;
  Weights wd;
  weights_dir(&wd);
  double *W = random_values(1024 * 768, 78, 0.01, 0.05, false);
  double *b = random_values(1024, 79, 0.1, 1, false);
  weights_write(&wd, "weight.bin", W, 1024 * 768);
  weights_write(&wd, "bias.bin", b, 1024);
  char *text = read_source("tests/mil/conv1x1.mil");
  for (int pi = 0; pi < 2; pi++) {
    Run r;
    run_open(&r, text, (ExecPrecision)pi, wd.dir);
    double *x = run_random(&r, "x", 3, 0.1, 1, false);
    run_exec(&r);
    double *want = run_keep(&r, malloc(1024 * 32 * sizeof *want));
    for (int o = 0; o < 1024; o++)
      for (int s = 0; s < 32; s++) {
        double acc = b[o];
        for (int c = 0; c < 768; c++)
          acc += W[o * 768 + c] * x[c * 32 + s];
        want[o * 32 + s] = acc;
      }
    expect_close("conv1x1.mil", run_get(&r, "y", NULL), want, 1024 * 32,
                 r.prec == EXEC_FP16 ? TOL16 : 2e-5, 1);
    run_close(&r);
  }
  free(text), free(W), free(b);
  weights_remove(&wd);
}

// Dynamic weights in the input's spatial tail: [1, IC, 1, S + OC] with IC 64,
// S 256, OC 128 (legal on the ANE: mil-check accepts it); row c =
// [x[c, 0..S) | W[c, 0..OC)]; y[o, s] = sum_c x[c, s] W[c, o].
static void test_mil_dynamic_matmul(void **state) {
  (void)state;
  char *text = read_source("tests/mil/dynamic_matmul.mil");
  for (int pi = 0; pi < 2; pi++) {
    Run r;
    run_open(&r, text, (ExecPrecision)pi, NULL);
    double *in = run_random(&r, "inp", 9, 0.25, 1.25, false);
    double *want = run_keep(&r, malloc(128 * 256 * sizeof *want));
    run_exec(&r);
    for (int o = 0; o < 128; o++)
      for (int s = 0; s < 256; s++) {
        double acc = 0;
        for (int c = 0; c < 64; c++)
          acc += in[c * 384 + s] * in[c * 384 + 256 + o];
        want[o * 256 + s] = acc;
      }
    expect_close("dynamic_matmul.mil", run_get(&r, "y", NULL), want, 128 * 256, tol_for(r.prec), 1);
    run_close(&r);
  }
  free(text);
}

// Causal attention: Q Kᵀ, x 1/sqrt(hd), + constant mask (-65504 above the
// diagonal), softmax, x V. fp16: scores, probabilities and output stored as
// fp16, tol 1e-2 against |want| + rms.
static void test_mil_causal_attention(void **state) {
  (void)state;
  Weights wd;
  weights_dir(&wd);
  double mask[64 * 64];
  for (int i = 0; i < 64; i++)
    for (int j = 0; j < 64; j++)
      mask[i * 64 + j] = j > i ? -65504 : 0;
  weights_write(&wd, "mask.bin", mask, 64 * 64);
  char *text = read_source("tests/mil/causal_attention.mil");
  for (int pi = 0; pi < 2; pi++) {
    Run r;
    run_open(&r, text, (ExecPrecision)pi, wd.dir);
    double *q = run_random(&r, "q", 91, 0.1, 1, false);
    double *k = run_random(&r, "k", 92, 0.1, 1, false);
    double *v = run_random(&r, "v", 93, 0.1, 1, false);
    run_exec(&r);
    double *want = run_keep(&r, malloc(4 * 64 * 32 * sizeof *want));
    double scale = stored(EXEC_FP16, 1 / sqrt(32)); // the program's fp16 constant
    for (int h = 0; h < 4; h++)
      for (int i = 0; i < 64; i++) {
        double p[64], z = 0, max = -INFINITY;
        for (int j = 0; j <= i; j++) {
          p[j] = 0;
          for (int e = 0; e < 32; e++)
            p[j] += q[(h * 64 + i) * 32 + e] * k[(h * 64 + j) * 32 + e];
          p[j] *= scale;
          max = p[j] > max ? p[j] : max;
        }
        for (int j = 0; j <= i; j++)
          z += p[j] = exp(p[j] - max);
        for (int e = 0; e < 32; e++) {
          double acc = 0;
          for (int j = 0; j <= i; j++)
            acc += p[j] / z * v[(h * 64 + j) * 32 + e];
          want[(h * 64 + i) * 32 + e] = acc;
        }
      }
    expect_close("causal_attention.mil", run_get(&r, "y", NULL), want, 4 * 64 * 32,
                 r.prec == EXEC_FP16 ? 1e-2 : 2e-5, 1);
    run_close(&r);
  }
  free(text);
  weights_remove(&wd);
}

//
// Fusion: a last-axis softmax takes the elementwise ops feeding it alone as a
// row prologue. The fused program must give the same bits as the unfused one
// (the same ops with the intermediates also returned, which stops fusion).
//
static const char fused_tmpl[] =
    "program(1.3)\n{\n    func main<ios18>(tensor<$T, [2, 3, 5, %d]> x, "
    "tensor<$T, [2, 1, 5, %d]> m) {\n"
    "            tensor<$T, [2, 3, 5, %d]> a = real_div(x = x, y = $T(0.7))[name = string(\"a\")];\n"
    "            tensor<$T, [2, 3, 5, %d]> b = sub(x = a, y = m)[name = string(\"b\")];\n"
    "            tensor<$T, [2, 3, 5, %d]> p = softmax(axis = int32(-1), x = b)"
    "[name = string(\"p\")];\n"
    "        } -> (%s);\n}\n";

// Runs the template (rows `w` wide) returning `outputs` on the same random
// inputs; p's values.
static double *fused_run(Run *r, ExecPrecision prec, int w, const char *outputs, int64_t *n) {
  char tmpl[2048];
  snprintf(tmpl, sizeof tmpl, fused_tmpl, w, w, w, w, w, outputs);
  run_open(r, tmpl, prec, NULL);
  run_random(r, "x", 71, 0.5, 8, false);
  run_random(r, "m", 72, 0.1, 3, false);
  run_exec(r);
  return run_get(r, "p", n);
}

// Widths 37 (the 8-lane loops' scalar tails), 64 (vectors only) and 1500
// (the 30 rows in two blocks of the pool's threads, 21 and 9).
static void test_fused_softmax_same_bits(void **state) {
  (void)state;
  static const int widths[] = {37, 64, 1500};
  for (int wi = 0; wi < 3; wi++)
    for (int pi = 0; pi < 2; pi++) {
      Run r1, r2;
      int64_t n, n2;
      int w = widths[wi];
      double *fused = fused_run(&r1, (ExecPrecision)pi, w, "p", &n);
      double *unfused = fused_run(&r2, (ExecPrecision)pi, w, "p, a, b", &n2);
      assert_int_equal(n, n2);
      for (int64_t i = 0; i < n; i++)
        if (memcmp(&fused[i], &unfused[i], sizeof fused[i]))
          fail_msg("%s, width %d: fused %.9g != unfused %.9g at %lld", pi ? "fp32" : "fp16", w,
                   fused[i], unfused[i], (long long)i);
      run_close(&r1);
      run_close(&r2);
    }
}

//
// Fusion: attention. matmul (scores) -> mul, add -> softmax -> matmul runs as
// one step head by head (16 heads: at least one per thread of the pool). It
// must give the bits of the unfused steps (the same program also returning
// the scores, which stops the fusion), also when it stores the
// probabilities because the program returns them or another op (p2, a
// reshape that shares their storage) reads them.
//
typedef struct AttnCase {
  int L, S;
  const char *k, *v; // their types' shapes, "%d" for S
  bool ty;
} AttnCase;

// big: inputs whose products saturate under the ANE quirks (scores of
// magnitude up to about 1.7e5, values 2e4 to 6e4); o: the executor's options.
static double *attn_fuse_run_with(Run *r, ExecPrecision prec, const ExecOptions *o, bool big,
                                  const AttnCase *c, const char *outputs, char *steps,
                                  size_t cap) {
  char kt[64], vt[64], tmpl[2048];
  snprintf(kt, sizeof kt, c->k, c->S), snprintf(vt, sizeof vt, c->v, c->S);
  int L = c->L, S = c->S;
  snprintf(tmpl, sizeof tmpl,
           "program(1.3)\n{\n  func main<ios18>(tensor<$T, [2, 8, %d, 12]> q, tensor<$T, %s> k, "
           "tensor<$T, %s> v, tensor<$T, [1, 1, %d, %d]> m) {\n"
           "    tensor<$T, [2, 8, %d, %d]> s = matmul(x = q, y = k, transpose_y = bool(%s))"
           "[name = string(\"s\")];\n"
           "    tensor<$T, [2, 8, %d, %d]> ss = mul(x = s, y = $T(0.3))[name = string(\"ss\")];\n"
           "    tensor<$T, [2, 8, %d, %d]> sm = add(x = ss, y = m)[name = string(\"sm\")];\n"
           "    tensor<$T, [2, 8, %d, %d]> p = softmax(axis = int32(-1), x = sm)"
           "[name = string(\"p\")];\n"
           "    tensor<$T, [2, 8, %d, 9]> y = matmul(x = p, y = v)[name = string(\"y\")];\n"
           "    tensor<$T, [16, %d, %d]> p2 = reshape(x = p, shape = tensor<int32, [3]>([16, %d, %d]))"
           "[name = string(\"p2\")];\n"
           "  } -> (%s);\n}\n",
           L, kt, vt, L, S, L, S, c->ty ? "true" : "false", L, S, L, S, L, S, L, L, S, L, S,
           outputs);
  run_open_opts(r, tmpl, prec, o, NULL);
  run_random(r, "q", 81, big ? 50 : 0.1, big ? 120 : 2, false);
  run_random(r, "k", 82, big ? 50 : 0.1, big ? 120 : 2, false);
  run_random(r, "v", 83, big ? 20000 : 0.1, big ? 60000 : 2, big);
  double *m = run_keep(r, malloc((size_t)(L * S) * sizeof *m));
  uint64_t seed = 84;
  for (int i = 0; i < L; i++) // causal: -65504 above the diagonal, small values below
    for (int j = 0; j < S; j++)
      m[i * S + j] = j > i ? -65504 : stored(prec, 0.5 * uniform(&seed) - 0.25);
  run_set(r, "m", m);
  run_exec(r);
  exec_step_names(r->e, steps, cap);
  return run_get(r, "y", NULL);
}

static double *attn_fuse_run(Run *r, ExecPrecision prec, const AttnCase *c, const char *outputs,
                             char *steps, size_t cap) {
  return attn_fuse_run_with(r, prec, NULL, false, c, outputs, steps, cap);
}

static void expect_same_bits(const char *what, size_t ci, int pi, const double *got,
                             const double *want, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    if (memcmp(&got[i], &want[i], sizeof got[i]))
      fail_msg("case %zu, %s, %s: fused %.9g != unfused %.9g at %lld", ci, pi ? "fp32" : "fp16",
               what, got[i], want[i], (long long)i);
}

static void test_fused_attention_same_bits(void **state) {
  (void)state;
  static const AttnCase cases[] = {
      {5, 7, "[2, 8, %d, 12]", "[2, 8, %d, 9]", true},  // per head, scalar tails
      {64, 64, "[2, 1, 12, %d]", "[2, 1, %d, 9]", false}, // k, v shared by the heads; kᵀ stored
      {5, 7, "[%d, 12]", "[%d, 9]", true},               // rank-2 k and v
  };
  for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++)
    for (int pi = 0; pi < 2; pi++) {
      Run r1, r2, r3, r4;
      char fs[512], ps[512], rs[512], us[512];
      const AttnCase *c = &cases[ci];
      int64_t ny = 2 * 8 * c->L * 9, np = 2 * 8 * c->L * c->S;
      double *fused = attn_fuse_run(&r1, (ExecPrecision)pi, c, "y", fs, sizeof fs);
      double *kept = attn_fuse_run(&r2, (ExecPrecision)pi, c, "y, p", ps, sizeof ps);
      double *read = attn_fuse_run(&r3, (ExecPrecision)pi, c, "y, p2", rs, sizeof rs);
      double *unfused = attn_fuse_run(&r4, (ExecPrecision)pi, c, "y, s, p", us, sizeof us);
      if (!strstr(fs, "attention") || !strstr(ps, "attention") || !strstr(rs, "attention") ||
          strstr(us, "attention"))
        fail_msg("case %zu: fused steps '%s', with p '%s', p2 '%s', unfused '%s'", ci, fs, ps, rs,
                 us);
      const double *p = run_get(&r4, "p", NULL);
      expect_same_bits("y", ci, pi, fused, unfused, ny);
      expect_same_bits("y, p returned", ci, pi, kept, unfused, ny);
      expect_same_bits("p", ci, pi, run_get(&r2, "p", NULL), p, np);
      expect_same_bits("y, p read by a reshape", ci, pi, read, unfused, ny);
      expect_same_bits("p2", ci, pi, run_get(&r3, "p2", NULL), p, np);
      run_close(&r1), run_close(&r2), run_close(&r3), run_close(&r4);
    }
}


//
// The ANE quirks (exec.h): on by default in fp16, never in fp32. Products
// (matmul, linear, conv, sdpa) of magnitude >= 32752 become +/-inf; reduce_sum
// and reduce_mean add in fp16, sequentially along the reduced axes.
//

// Exact comparison (tolerance 0: every value is an fp16 value and every fp32
// sum exact): +/-inf must match, NaN must be NaN. On failure: the max error
// (inf where one side is infinite), where, and the values.
static void expect_values(const char *what, const double *got, const double *want, int64_t n) {
  double worst = 0;
  int64_t at = -1;
  for (int64_t i = 0; i < n; i++) {
    bool same = got[i] == want[i] || (isnan(got[i]) && isnan(want[i]));
    double err = same ? 0 : isfinite(got[i]) && isfinite(want[i]) ? fabs(got[i] - want[i]) : INFINITY;
    if (!same && (at < 0 || err > worst))
      worst = err, at = i;
  }
  if (at >= 0)
    fail_msg("%s: max error %.9g at %lld (got %.9g, want %.9g), tolerance 0", what, worst,
             (long long)at, got[at], want[at]);
}

static const char saturate_tmpl[] =
    "program(1.3)\n{\n  func main<ios18>(tensor<$T, [4, 64]> x, tensor<$T, [64, 4]> y, "
    "tensor<$T, [1, 2]> lx, tensor<$T, [2, 2]> lw, tensor<$T, [1, 2, 1, 1]> cx, "
    "tensor<$T, [2, 2, 1, 1]> cw, tensor<$T, [1, 2, 4]> sq, tensor<$T, [1, 2, 2]> sv) {\n"
    "    tensor<$T, [4, 4]> z = matmul(x = x, y = y)[name = string(\"z\")];\n"
    "    tensor<$T, [1, 2]> l = linear(x = lx, weight = lw)[name = string(\"l\")];\n"
    "    tensor<$T, [1, 2, 1, 1]> c = conv(x = cx, weight = cw, pad_type = string(\"valid\"))"
    "[name = string(\"c\")];\n"
    "    tensor<$T, [1, 2, 4]> zero = mul(x = sq, y = $T(0))[name = string(\"zero\")];\n"
    "    tensor<$T, [1, 2, 2]> a = scaled_dot_product_attention(query = zero, key = sq, "
    "value = sv)[name = string(\"a\")];\n"
    "  } -> (z, l, c, a);\n}\n";

// The matmul's rows: 25 x 64 (an exact output of 40000 = 64 * 25 * 25, the
// partial sums below the limit: the sum is wide, only the output saturates);
// 16376 + 16376 = 32752 (the limit itself); 16368 + 16368 = 32736 (the
// largest fp16 below it); 16376 + 16368 + 7 = 32751 (below the limit: finite,
// rounded to 32752 as stored). y's columns: 25s, -25s, the first three 1,
// their negation.
static void saturate_inputs(Run *r) {
  double x[4 * 64] = {0}, y[64 * 4] = {0};
  for (int k = 0; k < 64; k++)
    x[k] = 25, y[k * 4] = 25, y[k * 4 + 1] = -25;
  x[64] = x[65] = 16376, x[128] = x[129] = 16368;
  x[192] = 16376, x[193] = 16368, x[194] = 7;
  for (int k = 0; k < 3; k++)
    y[k * 4 + 2] = 1, y[k * 4 + 3] = -1;
  double lx[2] = {20000, 20000}, lw[4] = {1, 1, 1, 0}, cw[4] = {1, 1, 1, 0};
  double sq[8] = {1, 2, 3, 4, 5, 6, 7, 8}, sv[4] = {40000, 30000, 40000, 30000};
  run_set(r, "x", x), run_set(r, "y", y);
  run_set(r, "lx", lx), run_set(r, "lw", lw);
  run_set(r, "cx", lx), run_set(r, "cw", cw);
  run_set(r, "sq", sq), run_set(r, "sv", sv);
}

// A matmul whose exact output is 40000: inf with the quirks, 40000 without
// (an fp16 value); linear, conv (a matmul on the ANE) and sdpa's output alike.
static void test_quirks_saturation(void **state) {
  (void)state;
  const double inf = INFINITY;
  // fp16 with the quirks (the default, and EXEC_QUIRKS_ON), fp16 without, fp32 (never).
  static const double want_z[3][16] = {
      {inf, -inf, 75, -75, inf, -inf, inf, -inf, inf, -inf, 32736, -32736, inf, -inf, 32752, -32752},
      {40000, -40000, 75, -75, inf, -inf, 32752, -32752, inf, -inf, 32736, -32736, inf, -inf, 32752,
       -32752},
      {40000, -40000, 75, -75, 818800, -818800, 32752, -32752, 818400, -818400, 32736, -32736,
       818775, -818775, 32751, -32751}};
  static const double want_l[3][2] = {{inf, 20000}, {40000, 20000}, {40000, 20000}};
  static const double want_a[3][4] = {{inf, 30000, inf, 30000}, {40000, 30000, 40000, 30000},
                                      {40000, 30000, 40000, 30000}};
  static const struct {
    ExecPrecision prec;
    const ExecOptions *o;
    int want; // the row of the tables
  } cases[] = {{EXEC_FP16, NULL, 0},        {EXEC_FP16, &quirks_on, 0},
               {EXEC_FP16, &quirks_off, 1}, {EXEC_FP32, NULL, 2},
               {EXEC_FP32, &quirks_on, 2}};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    Run r;
    run_open_opts(&r, saturate_tmpl, cases[i].prec, cases[i].o, NULL);
    int w = cases[i].want;
    assert_int_equal(exec_ane_quirks(r.e), w == 0);
    saturate_inputs(&r);
    run_exec(&r);
    char what[64];
    snprintf(what, sizeof what, "case %zu matmul", i);
    expect_values(what, run_get(&r, "z", NULL), want_z[w], 16);
    snprintf(what, sizeof what, "case %zu linear", i);
    expect_values(what, run_get(&r, "l", NULL), want_l[w], 2);
    snprintf(what, sizeof what, "case %zu conv", i);
    expect_values(what, run_get(&r, "c", NULL), want_l[w], 2);
    snprintf(what, sizeof what, "case %zu sdpa", i); // uniform weights: the mean of v
    expect_values(what, run_get(&r, "a", NULL), want_a[w], 4);
    run_close(&r);
  }
}

static const char narrow_tmpl[] =
    "program(1.3)\n{\n  func main<ios18>(tensor<$T, [1, 4096]> ones, "
    "tensor<$T, [1, 768, 1, 64]> x) {\n"
    "    tensor<int32, [1]> a1 = const()[name = string(\"a1\"), val = tensor<int32, [1]>([1])];\n"
    "    tensor<int32, [1]> a3 = const()[name = string(\"a3\"), val = tensor<int32, [1]>([3])];\n"
    "    tensor<int32, [2]> a13 = const()[name = string(\"a13\"), val = tensor<int32, [2]>([1, 3])];\n"
    "    tensor<$T, [1]> s = reduce_sum(x = ones, axes = a1)[name = string(\"s\")];\n"
    "    tensor<$T, [1]> m = reduce_mean(x = ones, axes = a1)[name = string(\"m\")];\n"
    "    tensor<$T, [1, 1, 1, 64]> c = reduce_sum(x = x, axes = a1, keep_dims = bool(true))"
    "[name = string(\"c\")];\n"
    "    tensor<$T, [1, 768, 1]> t = reduce_sum(x = x, axes = a3)[name = string(\"t\")];\n"
    "    tensor<$T, [1, 1]> b = reduce_mean(x = x, axes = a13)[name = string(\"b\")];\n"
    "  } -> (s, m, c, t, b);\n}\n";

// fp16 running sums over x [1, 768, 1, 64] along `axes` (a bit mask),
// sequentially, row-major over the reduced axes; kept positions in order.
static void ref_narrow_sum(const double *x, unsigned axes, bool mean, double *out) {
  static const int dims[4] = {1, 768, 1, 64};
  int64_t nkeep = 1, nred = 1;
  for (int a = 0; a < 4; a++)
    *(axes & 1u << a ? &nred : &nkeep) *= dims[a];
  for (int64_t k = 0; k < nkeep; k++) {
    double acc = 0;
    for (int64_t r = 0; r < nred; r++) {
      int64_t kk = k, rr = r, idx[4];
      for (int a = 3; a >= 0; a--) { // split k over the kept axes, r over the reduced ones
        int64_t *from = axes & 1u << a ? &rr : &kk;
        idx[a] = *from % dims[a];
        *from /= dims[a];
      }
      acc = stored(EXEC_FP16, acc + x[((idx[0] * 768 + idx[1]) * 1 + idx[2]) * 64 + idx[3]]);
    }
    out[k] = mean ? stored(EXEC_FP16, acc / (double)nred) : acc;
  }
}

// reduce_sum of 4096 ones: fp16's plateau 2048 (2048 + 1 rounds back to
// 2048) with the quirks, 4096 without; reduce_mean 0.5 and 1. Random sums
// over a strided axis, the last axis and two axes match a reference that
// rounds its running sum to fp16 after each addition: tolerance 0.
static void test_quirks_narrow_sums(void **state) {
  (void)state;
  for (int mode = 0; mode < 3; mode++) { // fp16 quirks (the default), fp16 off, fp32
    Run r;
    ExecPrecision prec = mode == 2 ? EXEC_FP32 : EXEC_FP16;
    run_open_opts(&r, narrow_tmpl, prec, mode == 1 ? &quirks_off : NULL, NULL);
    double *ones = run_keep(&r, malloc(4096 * sizeof *ones));
    for (int i = 0; i < 4096; i++)
      ones[i] = 1;
    run_set(&r, "ones", ones);
    double *x = run_random(&r, "x", 91, 0.1, 2, false);
    run_exec(&r);
    double s = mode ? 4096 : 2048, m = mode ? 1 : 0.5;
    char what[64];
    snprintf(what, sizeof what, "reduce_sum of 4096 ones, mode %d", mode);
    expect_values(what, run_get(&r, "s", NULL), &s, 1);
    snprintf(what, sizeof what, "reduce_mean of 4096 ones, mode %d", mode);
    expect_values(what, run_get(&r, "m", NULL), &m, 1);
    if (mode == 0) {
      double c[64], t[768], b;
      ref_narrow_sum(x, 1u << 1, false, c);
      ref_narrow_sum(x, 1u << 3, false, t);
      ref_narrow_sum(x, 1u << 1 | 1u << 3, true, &b);
      expect_values("narrow reduce_sum axis 1", run_get(&r, "c", NULL), c, 64);
      expect_values("narrow reduce_sum axis 3", run_get(&r, "t", NULL), t, 768);
      expect_values("narrow reduce_mean axes 1, 3", run_get(&r, "b", NULL), &b, 1);
    }
    run_close(&r);
  }
}

// With the quirks, fusion never changes the bits. test_fused_softmax_same_bits
// and test_fused_attention_same_bits run fp16 with them (the default); here
// the attention cases on inputs whose scores and outputs saturate, fused
// (the default) and with no_fusion: the same bits.
static void test_quirks_fusion_same_bits(void **state) {
  (void)state;
  static const AttnCase cases[] = {
      {5, 7, "[2, 8, %d, 12]", "[2, 8, %d, 9]", true},
      {64, 64, "[2, 1, 12, %d]", "[2, 1, %d, 9]", false},
      {5, 7, "[%d, 12]", "[%d, 9]", true},
  };
  const ExecOptions unfused = {.ane_quirks = EXEC_QUIRKS_ON, .no_fusion = true};
  for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
    Run r1, r2;
    char fs[512], us[512];
    const AttnCase *c = &cases[ci];
    int64_t ny = 2 * 8 * c->L * 9, np = 2 * 8 * c->L * c->S;
    double *fused = attn_fuse_run_with(&r1, EXEC_FP16, NULL, true, c, "y, p", fs, sizeof fs);
    double *plain = attn_fuse_run_with(&r2, EXEC_FP16, &unfused, true, c, "y, p", us, sizeof us);
    if (!strstr(fs, "attention") || strstr(us, "attention") || !strstr(us, "mul"))
      fail_msg("case %zu: fused steps '%s', unfused '%s'", ci, fs, us);
    int inf = 0, finite = 0;
    for (int64_t i = 0; i < ny; i++)
      inf += isinf(plain[i]), finite += isfinite(plain[i]);
    if (!inf || !finite) // both the saturated and the finite paths are taken
      fail_msg("case %zu: %d saturated outputs and %d finite ones", ci, inf, finite);
    expect_same_bits("quirks y", ci, 0, fused, plain, ny);
    expect_same_bits("quirks p", ci, 0, run_get(&r1, "p", NULL), run_get(&r2, "p", NULL), np);
    run_close(&r1), run_close(&r2);
  }
}

//
// Errors
//

static void expect_prepare_error(const char *tmpl, const char *model_dir, const char *want) {
  Run r;
  bool ok = run_try(&r, tmpl, EXEC_FP16, model_dir);
  if (ok || !strstr(r.err, want))
    fail_msg("expected an error with '%s', got:\n%s", want, r.err);
  run_close(&r);
}

static void test_prepare_errors(void **state) {
  (void)state;
  expect_prepare_error(
      "program(1.3)\n{\n  func main<ios18>(tensor<$T, [1, 4, 1, 2]> x) {\n"
      "    tensor<$T, [2, 4, 1, 1]> W = const()[name = string(\"W\"), val = tensor<$T, [2, 4, 1, 1]>(BLOBFILE(path = string(\"@model_path/weights/missing.bin\"), offset = uint64(64)))];\n"
      "    tensor<$T, [1, 2, 1, 2]> y = conv(x = x, weight = W)[name = string(\"y\")];\n"
      "  } -> (y);\n}\n",
      "/nonexistent", "t.mil:4:");
  expect_prepare_error(
      "program(1.3)\n{\n  func main<ios18>(tensor<$T, [2]> x) {\n"
      "    tensor<$T, [2]> y = frobnicate(x = x)[name = string(\"y\")];\n  } -> (y);\n}\n",
      NULL, "t.mil:4:27: error: the reference executor has no 'frobnicate'");
  expect_prepare_error(
      "program(1.3)\n{\n  func main<ios18>(tensor<$T, [2, 3]> x, tensor<$T, [3]> y) {\n"
      "    tensor<$T, [2, 4]> z = add(x = x, y = y)[name = string(\"z\")];\n  } -> (z);\n}\n",
      NULL, "output 'z' of add is declared [2, 4]; the op computes [2, 3]");
  expect_prepare_error(
      "program(1.3)\n{\n  func main<ios18>(tensor<$T, [2, 3]> x, tensor<$T, [4]> y) {\n"
      "    tensor<$T, [2, 3]> z = mul(x = x, y = y)[name = string(\"z\")];\n  } -> (z);\n}\n",
      NULL, "mul cannot broadcast [2, 3] with [4]");
  expect_prepare_error(
      "program(1.3)\n{\n  func main<ios18>(tensor<$T, [2, 3]> x) {\n"
      "    tensor<$T, [5]> z = reshape(x = x, shape = tensor<int32, [1]>([5]))[name = string(\"z\")];\n  } -> (z);\n}\n",
      NULL, "cannot reshape [2, 3] into [5]");
  expect_prepare_error(
      "program(1.3)\n{\n  func main<ios18>(tensor<$T, [2, 3]> x, tensor<int32, [1]> ax) {\n"
      "    tensor<$T, [2]> z = reduce_sum(x = x, axes = ax)[name = string(\"z\")];\n  } -> (z);\n}\n",
      NULL, "'axes' of reduce_sum must be a constant");
}

// The missing weight file is named, with the line of the const that needs it.
static void test_missing_weights_message(void **state) {
  (void)state;
  Run r;
  assert_false(run_try(&r, "program(1.3)\n{\n  func main<ios18>(tensor<$T, [2]> x) {\n"
                           "    tensor<$T, [2]> w = const()[name = string(\"w\"), val = tensor<$T, [2]>(BLOBFILE(path = string(\"@model_path/weights/w.bin\"), offset = uint64(64)))];\n"
                           "    tensor<$T, [2]> y = mul(x = x, y = w)[name = string(\"y\")];\n"
                           "  } -> (y);\n}\n",
                       EXEC_FP16, "/nonexistent"));
  assert_non_null(strstr(r.err, "/nonexistent/weights/w.bin"));
  assert_non_null(strstr(r.err, "t.mil:4:"));
  assert_non_null(strstr(r.err, "cannot load the weights of 'w'"));
  run_close(&r);
}

static void test_input_errors(void **state) {
  (void)state;
  Run r;
  run_open(&r, liveness_tmpl, EXEC_FP16, NULL);
  char err[2048];
  FILE *out = fmemopen(err, sizeof err, "w");
  RtDiag d = {.out = out};
  float v[65] = {1};
  RtTensor wrong = {MIL_FP32, 1, {65}, 65, v}, ints = {MIL_INT32, 1, {64}, 64, v};
  assert_false(exec_run(r.e, &d));                         // x not given
  assert_false(exec_set_input(r.e, "x", &wrong, &d));      // shape
  assert_false(exec_set_input(r.e, "x", &ints, &d));       // dtype
  assert_false(exec_set_input(r.e, "y", &wrong, &d));      // name
  fclose(out);
  assert_non_null(strstr(err, "input 'x' was not given"));
  assert_non_null(strstr(err, "input 'x' is given as [65]; the function declares [64]"));
  assert_non_null(strstr(err, "input 'x' is given as int32; the function declares fp16"));
  assert_non_null(strstr(err, "function 'main' has no input 'y'; its inputs: x"));
  RtTensor o;
  assert_false(exec_get_output(r.e, "a", &o)); // not an output of the function
  run_close(&r);
}

// A concat of whole blocks computes its parts in place: a part read after
// the concat, a part reached through a reshape, and (not placeable) the
// function's input itself, which falls back to copying.
static const char place_tmpl[] =
    "program(1.3)\n{\n  func main<ios18>(tensor<$T, [1, 2, 4]> x) {\n"
    "    tensor<$T, [1, 2, 4]> a = exp(x = x)[name = string(\"a\")];\n"
    "    tensor<$T, [8]> b0 = mul(x = tensor<$T, [8]>([1, 2, 3, 4, 5, 6, 7, 8]), y = tensor<$T, [8]>([2, 2, 2, 2, 2, 2, 2, 2]))[name = string(\"b0\")];\n"
    "    tensor<$T, [1, 2, 4]> b = reshape(x = b0, shape = tensor<int32, [3]>([1, 2, 4]))[name = string(\"b\")];\n"
    "    tensor<$T, [1, 4, 4]> c = concat(values = (a, b), axis = int32(1))[name = string(\"c\")];\n"
    "    tensor<$T, [1, 2, 4]> d = add(x = a, y = x)[name = string(\"d\")];\n"
    "    tensor<$T, [1, 4, 4]> e = concat(values = (d, x), axis = int32(1))[name = string(\"e\")];\n"
    "    tensor<$T, [1, 4, 4]> f = add(x = c, y = e)[name = string(\"f\")];\n"
    "  } -> (f);\n}\n";

static void test_concat_in_place(void **state) {
  (void)state;
  for (int pi = 0; pi < 2; pi++) {
    Run r;
    run_open(&r, place_tmpl, (ExecPrecision)pi, NULL);
    double *x = run_random(&r, "x", 24, 0.25, 1.25, false), want[16];
    run_exec(&r);
    for (int i = 0; i < 8; i++) {
      double a = stored(r.prec, exp(x[i])), d = stored(r.prec, a + x[i]);
      want[i] = stored(r.prec, a + d);
      want[8 + i] = stored(r.prec, 2.0 * (i + 1) + x[i]);
    }
    expect_close("concats in place", run_get(&r, "f", NULL), want, 16, 2 * tol_for(r.prec), 0);
    run_close(&r);
  }
}

// A bound input is read in place by every run, its reshapes included; a
// binding of another dtype than the stored one is refused.
static const char bind_tmpl[] =
    "program(1.3)\n{\n  func main<ios18>(tensor<$T, [2, 3]> x) {\n"
    "    tensor<$T, [3, 2]> r = reshape(x = x, shape = tensor<int32, [2]>([3, 2]))[name = string(\"r\")];\n"
    "    tensor<$T, [3, 2]> y = mul(x = r, y = r)[name = string(\"y\")];\n"
    "  } -> (y);\n}\n";

static void test_bind_input(void **state) {
  (void)state;
  Run r;
  run_open(&r, bind_tmpl, EXEC_FP32, NULL);
  float v[6] = {1, 2, 3, 4, 5, 6};
  RtTensor x = {MIL_FP32, 2, {2, 3}, 6, v};
  RtDiag d = {.out = stderr};
  assert_true(exec_bind_input(r.e, "x", &x, &d));
  for (int pass = 0; pass < 2; pass++) {
    run_exec(&r);
    double *y = run_get(&r, "y", NULL), want[6];
    for (int i = 0; i < 6; i++)
      want[i] = (double)v[i] * v[i];
    expect_values(pass ? "y after the bound x changed" : "y of the bound x", y, want, 6);
    for (int i = 0; i < 6; i++)
      v[i] = -0.5f * v[i];
  }
  char err[1024];
  FILE *out = fmemopen(err, sizeof err, "w");
  RtDiag e = {.out = out};
  uint16_t h[6] = {0};
  RtTensor half = {MIL_FP16, 2, {2, 3}, 6, h};
  assert_false(exec_bind_input(r.e, "x", &half, &e));
  fclose(out);
  assert_non_null(strstr(err, "input 'x' is bound as fp16; the executor stores it as fp32"));
  run_close(&r);
}

int main(void) {
  setenv("ANEC_THREADS", "2", 0); // the pool's paths run even on one core
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_unary),
      cmocka_unit_test(test_binary_broadcast),
      cmocka_unit_test(test_reductions),
      cmocka_unit_test(test_softmax_row_blocks),
      cmocka_unit_test(test_wide_conversions),
      cmocka_unit_test(test_layer_norm),
      cmocka_unit_test(test_data_movement),
      cmocka_unit_test(test_reshape_alias),
      cmocka_unit_test(test_bind_input),
      cmocka_unit_test(test_concat_in_place),
      cmocka_unit_test(test_cast_select_gather),
      cmocka_unit_test(test_matmul),
      cmocka_unit_test(test_transpose_folds),
      cmocka_unit_test(test_conv),
      cmocka_unit_test(test_sdpa),
      cmocka_unit_test(test_liveness_and_rerun),
      cmocka_unit_test(test_mil_rmsnorm),
      cmocka_unit_test(test_mil_conv1x1),
      cmocka_unit_test(test_mil_dynamic_matmul),
      cmocka_unit_test(test_mil_causal_attention),
      cmocka_unit_test(test_fused_softmax_same_bits),
      cmocka_unit_test(test_fused_attention_same_bits),
      cmocka_unit_test(test_quirks_saturation),
      cmocka_unit_test(test_quirks_narrow_sums),
      cmocka_unit_test(test_quirks_fusion_same_bits),
      cmocka_unit_test(test_prepare_errors),
      cmocka_unit_test(test_missing_weights_message),
      cmocka_unit_test(test_input_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
