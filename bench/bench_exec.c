// bench_exec.c — how fast the reference executor runs two ANE kernel shapes
// of Stories110M (a 1x1 conv 768 -> 2048 at S = 256; 12-head causal
// attention at S = 256, dim 768), each next to BLAS doing the same matrix
// products alone: the executor's overhead is the ratio. See bench/README.md.
#include "exec.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "bench.h"

#if defined(__APPLE__)
#include <Accelerate/Accelerate.h>
#else
#include <cblas.h>
#endif

enum { WARMUP = 10, RUNS = 30 };
#define TARGET 1.5 // the executor's time over BLAS alone, at most


typedef void (*BenchFn)(void *ctx);

// The median time of one call, in ms.
static double time_median(BenchFn fn, void *ctx) {
  double t[RUNS];
  for (int i = 0; i < WARMUP; i++)
    fn(ctx);
  for (int i = 0; i < RUNS; i++) {
    double t0 = now_ms();
    fn(ctx);
    t[i] = now_ms() - t0;
  }
  return median(t, RUNS);
}

static void fill(float *v, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++) {
    seed = seed * 1664525u + 1013904223u;
    v[i] = ((float)(seed >> 8) * 0x1p-24f - 0.5f) * 0.2f + 0.01f;
  }
}

// One fp16 blob per file: weights/NAME in dir.
static void write_blob(const char *dir, const char *name, const float *v, size_t n) {
  uint16_t *h = malloc(n * 2);
  f32_to_fp16_n(v, h, n);
  char path[256];
  snprintf(path, sizeof path, "%s/weights/%s", dir, name);
  MilBlob b = {MILBLOB_FP16, n * 2, (const unsigned char *)h};
  uint64_t off;
  RtDiag d = {.out = stderr};
  if (!milblob_write(path, &b, 1, &off, &d))
    exit(1);
  free(h);
}

typedef struct Kernel {
  MilProgram *p;
  Exec *e;
} Kernel;

static Kernel kernel_open(const char *text, const char *dir, ExecPrecision prec) {
  RtDiag d = {.out = stderr};
  Kernel k = {mil_read_text("bench.mil", text, strlen(text), dir, &d), NULL};
  k.e = k.p ? exec_prepare(k.p, &k.p->funcs[0], prec, &d) : NULL;
  if (!k.e)
    exit(1);
  return k;
}

static void kernel_input(Kernel *k, const char *name, int rank, const int64_t *dims,
                         unsigned seed) {
  RtTensor t;
  RtDiag d = {.out = stderr};
  if (!rt_tensor_alloc(&t, MIL_FP32, rank, dims))
    exit(1);
  fill(t.data, (size_t)t.count, seed);
  if (!exec_set_input(k->e, name, &t, &d))
    exit(1);
  rt_tensor_free(&t);
}

static void kernel_run(void *ctx) {
  RtDiag d = {.out = stderr};
  if (!exec_run(((Kernel *)ctx)->e, &d))
    exit(1);
}

static void kernel_close(Kernel *k) {
  exec_free(k->e);
  mil_free(k->p);
}

//
// 1x1 conv 768 -> 2048, S = 256
//
static const char conv_mil[] =
    "program(1.3)\n{\n    func main<ios18>(tensor<fp16, [1, 768, 1, 256]> x) {\n"
    "            tensor<fp16, [2048, 768, 1, 1]> W = const()[name = string(\"W\"), val = "
    "tensor<fp16, [2048, 768, 1, 1]>(BLOBFILE(path = string(\"@model_path/weights/w.bin\"), "
    "offset = uint64(64)))];\n"
    "            tensor<fp16, [1, 2048, 1, 256]> y = conv(pad_type = string(\"valid\"), "
    "weight = W, x = x)[name = string(\"conv\")];\n"
    "        } -> (y);\n}\n";

typedef struct Gemms {
  float *a, *b, *c;
} Gemms;

static void conv_sgemm(void *ctx) {
  Gemms *g = ctx;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 2048, 256, 768, 1, g->a, 768, g->b,
              256, 0, g->c, 256);
}

//
// Causal attention, 12 heads of 64, S = 256
//
static const char attn_mil[] =
    "program(1.3)\n{\n    func main<ios18>(tensor<fp16, [1, 12, 256, 64]> q, "
    "tensor<fp16, [1, 12, 256, 64]> k, tensor<fp16, [1, 12, 256, 64]> v) {\n"
    "            tensor<fp16, [1, 12, 256, 256]> s = matmul(transpose_y = bool(true), x = q, y = k)"
    "[name = string(\"s\")];\n"
    "            tensor<fp16, [1, 12, 256, 256]> ss = mul(x = s, y = fp16(0.125))"
    "[name = string(\"ss\")];\n"
    "            tensor<fp16, [1, 1, 256, 256]> mask = const()[name = string(\"mask\"), val = "
    "tensor<fp16, [1, 1, 256, 256]>(BLOBFILE(path = string(\"@model_path/weights/mask.bin\"), "
    "offset = uint64(64)))];\n"
    "            tensor<fp16, [1, 12, 256, 256]> sm = add(x = ss, y = mask)"
    "[name = string(\"sm\")];\n"
    "            tensor<fp16, [1, 12, 256, 256]> p = softmax(axis = int32(-1), x = sm)"
    "[name = string(\"p\")];\n"
    "            tensor<fp16, [1, 12, 256, 64]> y = matmul(x = p, y = v)[name = string(\"y\")];\n"
    "        } -> (y);\n}\n";

typedef struct AttnGemms {
  float *q, *k, *v, *s, *y;
} AttnGemms;

static void attn_sgemm(void *ctx) {
  AttnGemms *g = ctx;
  for (int h = 0; h < 12; h++) {
    size_t qo = (size_t)h * 256 * 64, so = (size_t)h * 256 * 256;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, 256, 256, 64, 0.125f, g->q + qo, 64,
                g->k + qo, 64, 0, g->s + so, 256);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 256, 64, 256, 1, g->s + so, 256,
                g->v + qo, 64, 0, g->y + qo, 64);
  }
}

// A kernel's measurement: rounds of (BLAS alone, then the executor in each
// precision, the first of the two alternating), each time the median of RUNS
// calls after WARMUP; the ratio is taken within a round, so that the VM's
// slow drifts (whole seconds at half speed) do not land on one column only.
enum { ROUNDS = 5 };
_Static_assert(ROUNDS <= MAX_ROUNDS, "rounds_summary holds MAX_ROUNDS");

typedef struct Row {
  const char *what;
  double gflop;
  BenchFn blas;
  void *blas_ctx;
  Kernel *k[2]; // fp16, fp32
} Row;

static void print_row(const Row *row, int prec, double *exec, double *blas) {
  Rounds r = rounds_summary(exec, blas, ROUNDS);
  printf("%-32s %-5s %9.3f %9.3f %7.2fx %6.2f-%.2fx %8.1f  %s\n", row->what,
         prec ? "fp32" : "fp16", r.time, r.blas, r.ratio, r.lo, r.hi, row->gflop / (r.time / 1e3),
         r.ratio <= TARGET ? "yes" : "NO");
}

static void measure(const Row *row) {
  double exec[2][ROUNDS], blas[2][ROUNDS];
  for (int r = 0; r < ROUNDS; r++) {
    blas[0][r] = blas[1][r] = time_median(row->blas, row->blas_ctx);
    settle();
    for (int i = 0; i < 2; i++) { // fp16 first in even rounds, fp32 in odd ones
      int prec = (i + r) % 2;
      exec[prec][r] = time_median(kernel_run, row->k[prec]);
    }
  }
  for (int prec = 0; prec < 2; prec++)
    print_row(row, prec, exec[prec], blas[prec]);
}

static void bench_conv(const char *dir) {
  float *w = malloc(2048 * 768 * 4), *x = malloc(768 * 256 * 4), *y = malloc(2048 * 256 * 4);
  fill(w, 2048 * 768, 1);
  fill(x, 768 * 256, 2);
  write_blob(dir, "w.bin", w, 2048 * 768);
  Gemms g = {w, x, y};
  const int64_t xd[] = {1, 768, 1, 256};
  Kernel k[2];
  for (int prec = 0; prec < 2; prec++) {
    k[prec] = kernel_open(conv_mil, dir, (ExecPrecision)prec);
    kernel_input(&k[prec], "x", 4, xd, 2);
  }
  measure(&(Row){"conv 1x1 768->2048, S=256", 2.0 * 2048 * 768 * 256 / 1e9, conv_sgemm, &g,
                 {&k[0], &k[1]}});
  kernel_close(&k[0]), kernel_close(&k[1]);
  free(w), free(x), free(y);
}

static void bench_attention(const char *dir) {
  size_t n = 12 * 256 * 64;
  float *mask = malloc(256 * 256 * 4);
  for (int i = 0; i < 256; i++)
    for (int j = 0; j < 256; j++)
      mask[i * 256 + j] = j > i ? -65504.0f : 0.0f;
  write_blob(dir, "mask.bin", mask, 256 * 256);
  AttnGemms g = {malloc(n * 4), malloc(n * 4), malloc(n * 4), malloc(12 * 256 * 256 * 4),
                 malloc(n * 4)};
  fill(g.q, n, 3), fill(g.k, n, 4), fill(g.v, n, 5);
  const int64_t d[] = {1, 12, 256, 64};
  Kernel k[2];
  for (int prec = 0; prec < 2; prec++) {
    k[prec] = kernel_open(attn_mil, dir, (ExecPrecision)prec);
    kernel_input(&k[prec], "q", 4, d, 3), kernel_input(&k[prec], "k", 4, d, 4);
    kernel_input(&k[prec], "v", 4, d, 5);
  }
  measure(&(Row){"causal attention 12x64, S=256", 12 * 2 * 2.0 * 256 * 256 * 64 / 1e9,
                 attn_sgemm, &g, {&k[0], &k[1]}});
  kernel_close(&k[0]), kernel_close(&k[1]);
  free(mask), free(g.q), free(g.k), free(g.v), free(g.s), free(g.y);
}

int main(int argc, char **argv) {
  bool conv = argc < 2, attention = argc < 2;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "conv"))
      conv = true;
    else if (!strcmp(argv[i], "attention"))
      attention = true;
    else {
      fprintf(stderr, "usage: bench_exec [conv] [attention]  (both by default)\n");
      return 2;
    }
  }
  char dir[] = "/tmp/bench_exec.XXXXXX", sub[64];
  if (!mkdtemp(dir))
    return 1;
  snprintf(sub, sizeof sub, "%s/weights", dir);
  mkdir(sub, 0755);
  const char *core = getenv("OPENBLAS_CORETYPE"), *threads = getenv("OPENBLAS_NUM_THREADS");
  printf("reference executor vs BLAS alone: %d rounds, each the median of %d runs (ms); "
         "OPENBLAS_CORETYPE=%s, OPENBLAS_NUM_THREADS=%s, %d pool threads\n\n",
         ROUNDS, RUNS, core ? core : "(unset)", threads ? threads : "(unset)", rt_threads());
  printf("%-32s %-5s %9s %9s %8s %11s %8s  %s\n", "kernel", "prec", "executor", "sgemm",
         "ratio", "rounds", "GFLOP/s", "<=1.5x");
  if (conv)
    bench_conv(dir);
  if (attention)
    bench_attention(dir);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : 1;
}
