// blas.c — the runtime's one way to BLAS: row-major sgemm, alone or as a
// batch, spread over the pool's threads (a batch by products, a large
// product by blocks of rows or columns, each block one BLAS call). While the
// pool runs them OpenBLAS runs single-threaded: its spinning threads and the
// pool on the same cores slow each other down. Accelerate keeps its own.
#include "base.h"

#include <pthread.h>

#if defined(__APPLE__)
#include <Accelerate/Accelerate.h>
#else
#include <cblas.h>
#endif

// Products below this many multiply-adds run in one BLAS call: a block's
// hand-off to a worker costs more than it saves.
enum { SPLIT_MIN_MACS = 1 << 22 };

typedef struct Gemm {
  bool ta, tb;
  int64_t m, n, k;
  float alpha, beta;
  const float *a, *b;
  float *c;
  int64_t lda, ldb, ldc;
} Gemm;

static void gemm_call(const Gemm *g) {
  if (g->m == 0 || g->n == 0)
    return;
  cblas_sgemm(CblasRowMajor, g->ta ? CblasTrans : CblasNoTrans, g->tb ? CblasTrans : CblasNoTrans,
              (int)g->m, (int)g->n, (int)g->k, g->alpha, g->a, (int)g->lda, g->b, (int)g->ldb,
              g->beta, g->c, (int)g->ldc);
}

//
// OpenBLAS's threads, off while the pool multiplies
//
#if defined(OPENBLAS_VERSION)
static pthread_mutex_t blas_lock = PTHREAD_MUTEX_INITIALIZER;
static int blas_users, blas_saved; // callers inside blas_begin .. blas_end; their threads

static void blas_begin(void) {
  pthread_mutex_lock(&blas_lock);
  if (blas_users++ == 0) {
    blas_saved = openblas_get_num_threads();
    openblas_set_num_threads(1);
  }
  pthread_mutex_unlock(&blas_lock);
}

static void blas_end(void) {
  pthread_mutex_lock(&blas_lock);
  if (--blas_users == 0)
    openblas_set_num_threads(blas_saved);
  pthread_mutex_unlock(&blas_lock);
}

static bool pool_multiplies(void) {
  return rt_threads() > 1;
}
#else
static void blas_begin(void) {}
static void blas_end(void) {}
static bool pool_multiplies(void) {
  return false;
}
#endif

//
// One product in blocks
//
typedef struct Split {
  const Gemm *g;
  bool rows;          // blocks of C's rows, else of its columns
  int64_t step;       // rows or columns a block
} Split;

static void split_block(void *ctx, int64_t blk) {
  const Split *sp = ctx;
  Gemm g = *sp->g;
  int64_t lo = blk * sp->step, dim = sp->rows ? g.m : g.n;
  int64_t len = dim - lo < sp->step ? dim - lo : sp->step;
  if (sp->rows) { // rows lo.. of op(A) and of C
    g.a += g.ta ? lo : lo * g.lda;
    g.c += lo * g.ldc;
    g.m = len;
  } else { // columns lo.. of op(B) and of C
    g.b += g.tb ? lo * g.ldb : lo;
    g.c += lo;
    g.n = len;
  }
  gemm_call(&g);
}

// The larger of C's dimensions in one block per thread, rounded to 16 (whole
// register tiles in each block but the last).
static void gemm_split(const Gemm *g) {
  int64_t threads = rt_threads(), dim = g->m >= g->n ? g->m : g->n;
  int64_t step = ((dim + threads - 1) / threads + 15) / 16 * 16;
  Split sp = {g, g->m >= g->n, step};
  rt_parallel((dim + step - 1) / step, split_block, &sp);
}

static bool worth_splitting(const Gemm *g, int64_t count) {
  return pool_multiplies() && (double)g->m * (double)g->n * (double)g->k * (double)count >=
                                  (double)SPLIT_MIN_MACS;
}

void rt_sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
              int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
  Gemm g = {ta, tb, m, n, k, alpha, beta, a, b, c, lda, ldb, ldc};
  if (rt_in_parallel() || !worth_splitting(&g, 1)) {
    gemm_call(&g);
    return;
  }
  blas_begin();
  gemm_split(&g);
  blas_end();
}

//
// A batch: one product per block, or each product split when the batch is
// smaller than the pool
//
typedef struct Batch {
  const Gemm *g;
  const int64_t *aoff, *boff, *coff;
} Batch;

static Gemm batch_gemm(const Batch *bt, int64_t i) {
  Gemm g = *bt->g;
  g.a += bt->aoff[i], g.b += bt->boff[i], g.c += bt->coff[i];
  return g;
}

static void batch_block(void *ctx, int64_t i) {
  Gemm g = batch_gemm(ctx, i);
  gemm_call(&g);
}

void rt_sgemm_batch(int64_t count, const int64_t *aoff, const int64_t *boff,
                    const int64_t *coff, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                    float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                    float beta, float *c, int64_t ldc) {
  Gemm g = {ta, tb, m, n, k, alpha, beta, a, b, c, lda, ldb, ldc};
  Batch bt = {&g, aoff, boff, coff};
  if (!worth_splitting(&g, count)) {
    for (int64_t i = 0; i < count; i++)
      batch_block(&bt, i);
    return;
  }
  blas_begin();
  if (count >= rt_threads())
    rt_parallel(count, batch_block, &bt);
  else
    for (int64_t i = 0; i < count; i++) {
      Gemm gi = batch_gemm(&bt, i);
      gemm_split(&gi);
    }
  blas_end();
}

void rt_parallel_blas(int64_t blocks, RtBlockFn *fn, void *ctx) {
  if (!pool_multiplies()) { // one thread, or a BLAS with threads of its own
    for (int64_t b = 0; b < blocks; b++)
      fn(ctx, b);
    return;
  }
  blas_begin();
  rt_parallel(blocks, fn, ctx);
  blas_end();
}
