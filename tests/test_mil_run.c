// test_mil_run.c — `anec mil-run` end to end: .npy files in, the binary run,
// .npy files out, compared with fp64 references; the catalog check before
// running; and the errors a user meets (a missing or mis-shaped input, an
// unknown output, bad options), each with its exit status and message.
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
#include <sys/wait.h>

typedef struct Tmp {
  char dir[64];
  char out[8192], err[8192]; // the last run's stdout and stderr
} Tmp;

static void tmp_make(Tmp *t) {
  strcpy(t->dir, "/tmp/test_mil_run.XXXXXX");
  assert_non_null(mkdtemp(t->dir));
}

static void tmp_remove(const Tmp *t) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", t->dir);
  assert_int_equal(system(cmd), 0);
}

static void slurp(const char *path, char *buf, size_t cap) {
  FILE *f = fopen(path, "rb");
  size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
  buf[n] = '\0';
  if (f)
    fclose(f);
}

// Runs `anec mil-run ARGS` (in the temp dir); returns the exit status.
static int mil_run(Tmp *t, const char *args) {
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "cd '%s' && '%s' mil-run %s >out.txt 2>err.txt", t->dir,
           ANEC_BINARY, args);
  int st = system(cmd);
  char path[128];
  snprintf(path, sizeof path, "%s/out.txt", t->dir);
  slurp(path, t->out, sizeof t->out);
  snprintf(path, sizeof path, "%s/err.txt", t->dir);
  slurp(path, t->err, sizeof t->err);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void expect_run(Tmp *t, const char *args, int status, const char *in_err) {
  int got = mil_run(t, args);
  if (got != status || (in_err && !strstr(t->err, in_err)))
    fail_msg("mil-run %s: exit %d (want %d), stderr:\n%s\nwanted: %s", args, got, status, t->err,
             in_err ? in_err : "");
}

static uint64_t rng(uint64_t *s) { // splitmix64
  uint64_t z = (*s += 0x9E3779B97F4A7C15u);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
  return z ^ (z >> 31);
}

// A float32 .npy of fp16-exact random values in +-[0.25, 1.25).
static float *write_input(const Tmp *t, const char *name, int rank, const int64_t *dims) {
  RtTensor x;
  assert_true(rt_tensor_alloc(&x, MIL_FP32, rank, dims));
  uint64_t s = 5;
  float *v = x.data;
  for (int64_t i = 0; i < x.count; i++) {
    float m = 0.25f + (float)(rng(&s) >> 40) * 0x1p-24f;
    v[i] = fp16_to_f32(f32_to_fp16(rng(&s) & 1 ? m : -m));
  }
  char path[128];
  snprintf(path, sizeof path, "%s/%s", t->dir, name);
  RtDiag d = {.out = stderr};
  assert_true(npy_write(path, &x, &d));
  return v;
}

static RtTensor read_output(const Tmp *t, const char *name) {
  char path[128];
  snprintf(path, sizeof path, "%s/%s", t->dir, name);
  RtTensor y;
  RtDiag d = {.out = stderr};
  assert_true(npy_read(path, &y, &d));
  return y;
}

static double elem(const RtTensor *y, int64_t i) {
  return y->dtype == MIL_FP16 ? fp16_to_f32(((uint16_t *)y->data)[i]) : ((float *)y->data)[i];
}

// The dynamic-weights kernel of tests/mil in both precisions; it passes the
// catalog check for the default target.
static void test_dynamic_matmul_npy(void **state) {
  (void)state;
  Tmp t;
  tmp_make(&t);
  const int64_t dims[] = {1, 64, 1, 384};
  float *in = write_input(&t, "in.npy", 4, dims);
  double *want = malloc(128 * 256 * sizeof *want);
  for (int o = 0; o < 128; o++)
    for (int s = 0; s < 256; s++) {
      double acc = 0;
      for (int c = 0; c < 64; c++)
        acc += (double)in[c * 384 + s] * in[c * 384 + 256 + o];
      want[o * 256 + s] = acc;
    }
  char args[1024];
  for (int fp32 = 0; fp32 < 2; fp32++) {
    snprintf(args, sizeof args, "'%s/tests/mil/dynamic_matmul.mil' --input inp=in.npy -o y=y.npy%s",
             ANEC_SOURCE_DIR, fp32 ? " --precision=fp32" : "");
    expect_run(&t, args, 0, NULL);
    RtTensor y = read_output(&t, "y.npy");
    assert_int_equal(y.dtype, fp32 ? MIL_FP32 : MIL_FP16); // declared fp16; fp32 widens
    assert_int_equal(y.count, 128 * 256);
    assert_int_equal(y.dims[1], 128);
    double rms = 0, worst = 0, tol = fp32 ? 1e-5 : 2e-3;
    for (int i = 0; i < 128 * 256; i++)
      rms += want[i] * want[i] / (128 * 256);
    for (int i = 0; i < 128 * 256; i++) {
      double e = fabs(elem(&y, i) - want[i]) / (fabs(want[i]) + sqrt(rms));
      worst = e > worst ? e : worst;
    }
    if (!(worst <= tol))
      fail_msg("mil-run dynamic_matmul (%s): max error %.3g, tolerance %.3g",
               fp32 ? "fp32" : "fp16", worst, tol);
    rt_tensor_free(&y);
  }
  snprintf(args, sizeof args, "'%s/tests/mil/dynamic_matmul.mil' --input inp=in.npy",
           ANEC_SOURCE_DIR);
  expect_run(&t, args, 0, NULL); // no --output: a summary line per output
  assert_non_null(strstr(t.out, "y: fp16 [1, 128, 1, 256] min "));
  free(in), free(want);
  tmp_remove(&t);
}

// --verbose names the steps the executor runs (16 heads: one per thread at
// least, which fusion asks for): attention's matmul, scale,
// softmax and matmul as one step; returning the scores too keeps the
// matmuls apart (the scale still fused into the softmax).
static const char attn_mil[] =
    "program(1.3)\n{\n  func main<ios18>(tensor<fp16, [1, 16, 64, 32]> q, "
    "tensor<fp16, [1, 16, 64, 32]> k, tensor<fp16, [1, 16, 64, 32]> v) {\n"
    "    tensor<fp16, [1, 16, 64, 64]> s = matmul(x = q, y = k, transpose_y = bool(true))"
    "[name = string(\"s\")];\n"
    "    tensor<fp16, [1, 16, 64, 64]> ss = mul(x = s, y = fp16(0.125))[name = string(\"ss\")];\n"
    "    tensor<fp16, [1, 16, 64, 64]> p = softmax(axis = int32(-1), x = ss)"
    "[name = string(\"p\")];\n"
    "    tensor<fp16, [1, 16, 64, 32]> y = matmul(x = p, y = v)[name = string(\"y\")];\n"
    "  } -> (%s);\n}\n";

static void write_text(const Tmp *t, const char *name, const char *text) {
  char path[128];
  snprintf(path, sizeof path, "%s/%s", t->dir, name);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static void test_verbose_steps(void **state) {
  (void)state;
  Tmp t;
  tmp_make(&t);
  const int64_t qd[] = {1, 16, 64, 32};
  free(write_input(&t, "q.npy", 4, qd));
  char text[2048];
  snprintf(text, sizeof text, attn_mil, "y");
  write_text(&t, "fused.mil", text);
  snprintf(text, sizeof text, attn_mil, "y, s");
  write_text(&t, "apart.mil", text);
  const char *run = " --no-check -i q=q.npy -i k=q.npy -i v=q.npy";
  char args[512];
  snprintf(args, sizeof args, "fused.mil -v%s", run);
  expect_run(&t, args, 0, "fused.mil: function main: 1 step: attention\n");
  snprintf(args, sizeof args, "apart.mil --verbose%s", run);
  expect_run(&t, args, 0, "apart.mil: function main: 3 steps: matmul, softmax, matmul\n");
  snprintf(args, sizeof args, "fused.mil%s", run);
  expect_run(&t, args, 0, NULL);
  assert_null(strstr(t.err, "step")); // only when asked
  tmp_remove(&t);
}

static void test_errors(void **state) {
  (void)state;
  Tmp t;
  tmp_make(&t);
  const int64_t good[] = {1, 64, 1, 384}, bad[] = {1, 64, 384};
  free(write_input(&t, "in.npy", 4, good));
  free(write_input(&t, "bad.npy", 3, bad));
  char mil[512], args[1024];
  snprintf(mil, sizeof mil, "'%s/tests/mil/dynamic_matmul.mil'", ANEC_SOURCE_DIR);
  snprintf(args, sizeof args, "%s", mil);
  expect_run(&t, args, 1, "error: input 'inp' is not given (--input inp=FILE.npy)");
  snprintf(args, sizeof args, "%s -i inp=bad.npy", mil);
  expect_run(&t, args, 1, "input 'inp' is given as [1, 64, 384]; the function declares "
                          "[1, 64, 1, 384]");
  snprintf(args, sizeof args, "%s -i x=in.npy", mil);
  expect_run(&t, args, 1, "function 'main' has no input 'x'; its inputs: inp");
  snprintf(args, sizeof args, "%s -i inp=in.npy -o z=z.npy", mil);
  expect_run(&t, args, 1, "the function has no output 'z'; its outputs: y");
  snprintf(args, sizeof args, "%s -i inp=missing.npy", mil);
  expect_run(&t, args, 1, "missing.npy: error: cannot open");
  snprintf(args, sizeof args, "%s -i inp=in.npy --function other", mil);
  expect_run(&t, args, 1, "no function 'other' (the program has: main)");
  snprintf(args, sizeof args, "%s --precision=fp8", mil);
  expect_run(&t, args, 2, "--precision must be fp16 or fp32");
  snprintf(args, sizeof args, "%s -i inp", mil);
  expect_run(&t, args, 2, "--input expects NAME=FILE.npy");
  snprintf(args, sizeof args, "%s -i inp=in.npy -i inp=in.npy", mil);
  expect_run(&t, args, 2, "--input 'inp' given twice");
  expect_run(&t, "", 2, "no MIL program given");
  expect_run(&t, "--help", 0, NULL);
  assert_non_null(strstr(t.out, "--precision=fp16|fp32"));
  assert_non_null(strstr(t.out, "--no-check"));
  // The catalog check runs first: this kernel's I/O is not legal on the ANE.
  snprintf(args, sizeof args, "'%s/tests/mil/causal_attention.mil' -i q=in.npy -i k=in.npy "
           "-i v=in.npy", ANEC_SOURCE_DIR);
  expect_run(&t, args, 1, "[ANE-B02]");
  assert_non_null(strstr(t.err, "not run (--no-check runs it anyway)"));
  tmp_remove(&t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_dynamic_matmul_npy),
      cmocka_unit_test(test_verbose_steps),
      cmocka_unit_test(test_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
