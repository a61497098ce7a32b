// bench.h — what the benchmarks share: a monotonic clock in ms, the median
// of a set of timings, and the pause after a BLAS-alone baseline.
#ifndef BENCH_H
#define BENCH_H

#include <stdlib.h>
#include <time.h>

static inline double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static inline int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

// The median of t[0..n) (sorts t).
static inline double median(double *t, int n) {
  qsort(t, (size_t)n, sizeof *t, cmp_double);
  return t[n / 2];
}

// Rounds of (the measured thing, BLAS alone): the medians of both, and of
// the per-round ratios with their range (sorts the arrays).
#define MAX_ROUNDS 16

typedef struct Rounds {
  double time, blas, ratio, lo, hi;
} Rounds;

static inline Rounds rounds_summary(double *time, double *blas, int n) {
  double ratio[MAX_ROUNDS];
  for (int i = 0; i < n; i++)
    ratio[i] = time[i] / blas[i];
  Rounds r = {median(time, n), median(blas, n), median(ratio, n), 0, 0};
  r.lo = ratio[0], r.hi = ratio[n - 1]; // sorted by median()
  return r;
}

// After the BLAS-alone baseline: OpenBLAS's threads spin for about 0.1 s
// after a multithreaded call before they sleep, and on a 2-core machine they
// would take half the executor's cores (which runs OpenBLAS single-threaded
// inside its own pool). Half a second lets them go to sleep first.
static inline void settle(void) {
  nanosleep(&(struct timespec){0, 500000000}, NULL);
}

#endif
