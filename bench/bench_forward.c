// bench_forward.c — the Stories110M forward (seq 256) as anec compiles it,
// run on the reference backend (every kernel and the embedding), next to
// BLAS doing the same matrix products alone: one sgemm per linear, two per
// attention head. The ratio is what the 1.5x target is about.
// Rounds of (BLAS alone, then the forward in each precision, the first of
// the two alternating), the ratio taken within each round: this VM's speed
// drifts over seconds, and whatever runs first after the baseline is slower.
#include "driver.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

#if defined(__APPLE__)
#include <Accelerate/Accelerate.h>
#else
#include <cblas.h>
#endif

enum { ROUNDS = 5, RUNS = 3 };
_Static_assert(ROUNDS <= MAX_ROUNDS, "rounds_summary holds MAX_ROUNDS");
#define TARGET 1.5 // anec's time over BLAS alone, at most


// One matrix product of the forward: C[m, n] = A[m, k] B[k, n], `batch` times.
typedef struct Gemm {
  int m, n, k, batch;
} Gemm;

// The products of every matmul node, as the executor runs them.
static int collect_gemms(const Graph *g, Gemm *out, int cap) {
  int n = 0;
  for (int i = 0; i < g->nnodes && n < cap; i++) {
    const Node *x = g->nodes[i];
    if (x->op != OP_MATMUL)
      continue;
    const Shape *s = &x->shape, *a = &x->in[0]->shape;
    int r = s->rank;
    int64_t batch = shape_numel(s) / (s->dims[r - 2] * s->dims[r - 1]);
    int k = (int)(x->transpose_a ? a->dims[a->rank - 2] : a->dims[a->rank - 1]);
    out[n++] = (Gemm){(int)s->dims[r - 2], (int)s->dims[r - 1], k, (int)batch};
  }
  return n;
}

static double blas_alone(const Gemm *gm, int n) {
  size_t most = 0;
  for (int i = 0; i < n; i++) {
    size_t sz = (size_t)gm[i].m * gm[i].k + (size_t)gm[i].k * gm[i].n + (size_t)gm[i].m * gm[i].n;
    most = sz > most ? sz : most;
  }
  float *buf = calloc(most, sizeof(float));
  for (size_t i = 0; i < most; i++)
    buf[i] = (float)((i * 2654435761u) % 1000) * 1e-4f;
  double t[RUNS];
  for (int run = 0; run < RUNS; run++) {
    double t0 = now_ms();
    for (int i = 0; i < n; i++) {
      const Gemm *q = &gm[i];
      float *a = buf, *b = buf + (size_t)q->m * q->k, *c = b + (size_t)q->k * q->n;
      for (int bt = 0; bt < q->batch; bt++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, q->m, q->n, q->k, 1, a, q->k, b,
                    q->n, 0, c, q->n);
    }
    t[run] = now_ms() - t0;
  }
  free(buf);
  return median(t, RUNS);
}

// One forward, the embedding included, in ms; exits on errors.
static double forward_once(Runner *r, Diag *d) {
  double t0 = now_ms();
  if (!runner_run(r, d))
    exit(1);
  return now_ms() - t0;
}

static Runner *forward_open(Graph *g, const ParamSet *ps, ExecPrecision prec, Diag *d) {
  Runner *r = runner_open(g, ps, prec, d);
  if (!r)
    exit(1);
  float *tokens = runner_input(r, "tokens");
  for (int i = 0; i < 256; i++)
    tokens[i] = (float)((i * 7919) % 32000);
  return r;
}

// The median of RUNS forwards after one warm-up.
static double forward(Runner *r, Diag *d) {
  double t[RUNS];
  forward_once(r, d);
  for (int run = 0; run < RUNS; run++)
    t[run] = forward_once(r, d);
  return median(t, RUNS);
}

static void print_row(int prec, double *ms, double *blas, double gflop) {
  Rounds r = rounds_summary(ms, blas, ROUNDS);
  printf("%-8s %10.1f %10.1f %7.2fx %6.2f-%.2fx %9.1f  %s\n", prec ? "fp32" : "fp16", r.time,
         r.blas, r.ratio, r.lo, r.hi, gflop / (r.time / 1e3), r.ratio <= TARGET ? "yes" : "NO");
}

int main(int argc, char **argv) {
  const char *model = argc > 1 ? argv[1] : "samples/stories110m.anet";
  Arena a = {0};
  Diag d;
  diag_init(&d, stderr);
  FrontOpts o = {0};
  Graph *g = front_compile(&a, &d, model, &o);
  if (!g || !lowering_run(g, &d, target_default(), NULL))
    return 1;
  ParamSet ps;
  params_init(&ps, &a);
  params_init_random(&ps, g, 1);
  Gemm gm[4096];
  int n = collect_gemms(g, gm, 4096);
  const char *core = getenv("OPENBLAS_CORETYPE"), *threads = getenv("OPENBLAS_NUM_THREADS");
  printf("%s forward on the reference backend vs BLAS alone: %d rounds, each the median of %d "
         "runs (ms); OPENBLAS_CORETYPE=%s, OPENBLAS_NUM_THREADS=%s\n\n", g->model, ROUNDS, RUNS,
         core ? core : "(unset)", threads ? threads : "(unset)");
  double gflop = (double)graph_flops(g) / 1e9, blas[2][ROUNDS], ms[2][ROUNDS];
  Runner *r[2] = {forward_open(g, &ps, EXEC_FP16, &d), forward_open(g, &ps, EXEC_FP32, &d)};
  for (int round = 0; round < ROUNDS; round++) {
    blas[0][round] = blas[1][round] = blas_alone(gm, n);
    settle();
    for (int i = 0; i < 2; i++) { // fp16 first in even rounds, fp32 in odd ones
      int p = (i + round) % 2;
      ms[p][round] = forward(r[p], &d);
    }
  }
  printf("%-8s %10s %10s %8s %11s %9s  %s   (%d kernels, %d matmul nodes, %.2f GFLOP)\n",
         "prec", "anec", "sgemm", "ratio", "rounds", "GFLOP/s", "<=1.5x", g->plan->nkernels, n,
         gflop);
  for (int p = 0; p < 2; p++)
    print_row(p, ms[p], blas[p], gflop);
  runner_close(r[0]), runner_close(r[1]);
  arena_free(&a);
  diag_free(&d);
  return 0;
}
