// bench_forward.c — the Stories110M forward (seq 256) as anec compiles it,
// run on the reference backend (every kernel and the embedding), next to
// BLAS doing the same matrix products alone: one sgemm per linear, two per
// attention head. The ratio is what the 1.5x target is about.
#include "anec.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

#if defined(__APPLE__)
#include <Accelerate/Accelerate.h>
#else
#include <cblas.h>
#endif

enum { RUNS = 5 };


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

static double forward(Graph *g, const ParamSet *ps, ExecPrecision prec, Diag *d) {
  Runner *r = runner_open(g, ps, prec, d);
  if (!r)
    exit(1);
  float *tokens = runner_input(r, "tokens");
  for (int i = 0; i < 256; i++)
    tokens[i] = (float)((i * 7919) % 32000);
  double t[RUNS];
  runner_run(r, d); // warm-up
  for (int run = 0; run < RUNS; run++) {
    double t0 = now_ms();
    if (!runner_run(r, d))
      exit(1);
    t[run] = now_ms() - t0;
  }
  runner_close(r);
  return median(t, RUNS);
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
  printf("%s forward on the reference backend vs BLAS alone (median of %d, ms); "
         "OPENBLAS_CORETYPE=%s, OPENBLAS_NUM_THREADS=%s\n\n", g->model, RUNS,
         core ? core : "(unset)", threads ? threads : "(unset)");
  double blas = blas_alone(gm, n), gflop = (double)graph_flops(g) / 1e9;
  printf("%-8s %10s %10s %8s %9s   (%d kernels, %d matmul nodes, %.2f GFLOP)\n", "prec",
         "anec", "sgemm", "ratio", "GFLOP/s", g->plan->nkernels, n, gflop);
  for (int p = 0; p < 2; p++) {
    double ms = forward(g, &ps, (ExecPrecision)p, &d);
    printf("%-8s %10.1f %10.1f %7.2fx %9.1f\n", p ? "fp32" : "fp16", ms, blas, ms / blas,
           gflop / (ms / 1e3));
  }
  arena_free(&a);
  diag_free(&d);
  return 0;
}
