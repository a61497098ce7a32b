// pool.c — the runtime's threads. The pool, one thread per core: rt_parallel
// runs a function over blocks 0..n-1 on all of them (the caller included)
// and returns when every block is done; workers sleep between jobs (no
// spinning against OpenBLAS's threads); a call made while the pool is busy,
// or from a worker, runs its blocks in the calling thread. And RtWorker, one
// background thread that runs submitted calls in order (a training step's
// CPU weight gradients, overlapped with the next kernel).
#include "base.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

enum { POOL_MAX_THREADS = 16 };

typedef struct Pool {
  pthread_mutex_t busy; // held by the caller of a job
  pthread_mutex_t lock; // guards what follows
  pthread_cond_t wake, done;
  int threads;       // workers + the caller
  uint64_t job;      // a job's number: workers wait for it to change
  int joined;        // workers that took the current job
  int running;       // workers inside it
  RtBlockFn *fn;
  void *ctx;
  int64_t blocks;
  atomic_llong next; // the next block to take
} Pool;

static Pool pool = {.busy = PTHREAD_MUTEX_INITIALIZER,
                    .lock = PTHREAD_MUTEX_INITIALIZER,
                    .wake = PTHREAD_COND_INITIALIZER,
                    .done = PTHREAD_COND_INITIALIZER};
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;
static _Thread_local bool in_worker; // a pool thread: it runs nothing but blocks
static _Thread_local bool in_block;  // the caller, while it runs blocks itself

// Takes blocks until none are left.
static void pool_work(RtBlockFn *fn, void *ctx, int64_t blocks) {
  for (int64_t b; (b = atomic_fetch_add(&pool.next, 1)) < blocks;)
    fn(ctx, b);
}

static void *pool_worker(void *arg) {
  (void)arg;
  in_worker = true;
  uint64_t seen = 0;
  pthread_mutex_lock(&pool.lock);
  for (;;) {
    while (pool.job == seen)
      pthread_cond_wait(&pool.wake, &pool.lock);
    seen = pool.job;
    RtBlockFn *fn = pool.fn;
    void *ctx = pool.ctx;
    int64_t blocks = pool.blocks;
    pool.joined++, pool.running++;
    pthread_mutex_unlock(&pool.lock);
    pool_work(fn, ctx, blocks);
    pthread_mutex_lock(&pool.lock);
    pool.running--;
    pthread_cond_signal(&pool.done);
  }
  return NULL;
}

// ANEC_THREADS, else the online cores; at most POOL_MAX_THREADS.
static int pool_size(void) {
  const char *env = getenv("ANEC_THREADS");
  long n = env ? strtol(env, NULL, 10) : sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : n > POOL_MAX_THREADS ? POOL_MAX_THREADS : (int)n;
}

static void pool_start(void) {
  pool.threads = 1;
  for (int i = 1, n = pool_size(); i < n; i++) {
    pthread_t th;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&th, &attr, pool_worker, NULL) == 0)
      pool.threads++;
    pthread_attr_destroy(&attr);
  }
}

int rt_threads(void) {
  pthread_once(&pool_once, pool_start);
  return pool.threads;
}

bool rt_in_parallel(void) {
  return in_worker || in_block;
}

static void run_serial(int64_t blocks, RtBlockFn *fn, void *ctx) {
  bool was = in_block;
  in_block = true;
  for (int64_t b = 0; b < blocks; b++)
    fn(ctx, b);
  in_block = was;
}

void rt_parallel(int64_t blocks, RtBlockFn *fn, void *ctx) {
  if (blocks <= 1 || in_worker || rt_threads() == 1 || pthread_mutex_trylock(&pool.busy)) {
    run_serial(blocks, fn, ctx);
    return;
  }
  pthread_mutex_lock(&pool.lock);
  pool.fn = fn, pool.ctx = ctx, pool.blocks = blocks;
  atomic_store(&pool.next, 0);
  pool.joined = 0;
  pool.job++;
  pthread_cond_broadcast(&pool.wake);
  pthread_mutex_unlock(&pool.lock);
  in_block = true;
  pool_work(fn, ctx, blocks);
  in_block = false;
  pthread_mutex_lock(&pool.lock);
  // Every worker takes every job (a late one finds no blocks left): the
  // job's fields must stay until the last has taken it and left.
  while (pool.joined < pool.threads - 1 || pool.running > 0)
    pthread_cond_wait(&pool.done, &pool.lock);
  pthread_mutex_unlock(&pool.lock);
  pthread_mutex_unlock(&pool.busy);
}

//
// RtWorker
//
enum { WORKER_QUEUE = 64 };

struct RtWorker {
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t work, idle;
  struct {
    RtWorkFn *fn;
    void *ctx;
  } queue[WORKER_QUEUE];
  int head, count; // the queue: count calls from head on
  bool busy, stop; // a call is running; the thread is to end
};

static void *worker_main(void *arg) {
  RtWorker *w = arg;
  pthread_mutex_lock(&w->lock);
  for (;;) {
    while (!w->count && !w->stop)
      pthread_cond_wait(&w->work, &w->lock);
    if (!w->count)
      break;
    RtWorkFn *fn = w->queue[w->head].fn;
    void *ctx = w->queue[w->head].ctx;
    w->head = (w->head + 1) % WORKER_QUEUE, w->count--, w->busy = true;
    pthread_mutex_unlock(&w->lock);
    fn(ctx);
    pthread_mutex_lock(&w->lock);
    w->busy = false;
    pthread_cond_broadcast(&w->idle);
  }
  pthread_mutex_unlock(&w->lock);
  return NULL;
}

RtWorker *rt_worker_new(void) {
  RtWorker *w = calloc(1, sizeof *w);
  if (!w)
    return NULL;
  pthread_mutex_init(&w->lock, NULL);
  pthread_cond_init(&w->work, NULL);
  pthread_cond_init(&w->idle, NULL);
  if (pthread_create(&w->thread, NULL, worker_main, w) == 0)
    return w;
  pthread_cond_destroy(&w->idle);
  pthread_cond_destroy(&w->work);
  pthread_mutex_destroy(&w->lock);
  free(w);
  return NULL;
}

void rt_worker_submit(RtWorker *w, RtWorkFn *fn, void *ctx) {
  if (!w) {
    fn(ctx);
    return;
  }
  pthread_mutex_lock(&w->lock);
  while (w->count == WORKER_QUEUE) // full: wait for room
    pthread_cond_wait(&w->idle, &w->lock);
  w->queue[(w->head + w->count) % WORKER_QUEUE].fn = fn;
  w->queue[(w->head + w->count) % WORKER_QUEUE].ctx = ctx;
  w->count++;
  pthread_cond_signal(&w->work);
  pthread_mutex_unlock(&w->lock);
}

void rt_worker_wait(RtWorker *w) {
  if (!w)
    return;
  pthread_mutex_lock(&w->lock);
  while (w->count || w->busy)
    pthread_cond_wait(&w->idle, &w->lock);
  pthread_mutex_unlock(&w->lock);
}

void rt_worker_free(RtWorker *w) {
  if (!w)
    return;
  pthread_mutex_lock(&w->lock);
  w->stop = true; // the thread ends once the queue is empty
  pthread_cond_signal(&w->work);
  pthread_mutex_unlock(&w->lock);
  pthread_join(w->thread, NULL);
  pthread_cond_destroy(&w->idle);
  pthread_cond_destroy(&w->work);
  pthread_mutex_destroy(&w->lock);
  free(w);
}
