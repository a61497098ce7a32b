// test_trainer.c — runtime/trainer.c through train_main with real files: a
// bigram language model with exact fp32 gradients learns (its loss falls);
// 2N steps = N steps + --resume + N steps bit for bit; --resume latest
// skips damaged checkpoints, naming them, and the log marks where the
// resumed steps start; a checkpoint of another plan (or format version 2)
// resumes with a warning, of other tensors' shapes not; batch and accum
// split the same sequences alike; loss scaling skips a step with inf
// gradients; usage errors exit 2, bad data, checkpoints, output paths and
// models exit 1 with the file named once, output paths before any step;
// write errors on the log or stdout stop the run with its state saved; a
// llama2.c-shaped model exports, re-imports and exports the same bytes, a
// failed export saves the weights elsewhere, and a config mismatch names
// its field.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "train.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DATA ANEC_SOURCE_DIR "/samples/data/tinyshakespeare.txt"

//
// The bigram model: logits[t] = emb[tokens[t]] + bias, mean cross-entropy
//
enum { V = 256, SEQ = 32 };

typedef struct Bigram {
  int calls;   // step calls since open
  int inf_at;  // the call whose gradients get an inf; -1: none
  int fail_at; // the call that fails without a message; -1: none
  const char *remove; // a directory removed at the first call (llama2.c model), or NULL
  int quirks;  // open's ane_quirks: 0, 1; -1 before open
} Bigram;

static const TrainTensor bigram_tensors[] = {
    {"emb", 2, {V, V}, true, TINIT_NORMAL, 0.02},
    {"bias", 1, {V}, false, TINIT_ZEROS, 0},
};

// The mean loss of a sequence; with g, its gradients times gs added into g.
static double bigram_loss(float *const *w, const int32_t *tok, const int32_t *tgt, float gs,
                          float *const *g) {
  double loss = 0;
  for (int t = 0; t < SEQ; t++) {
    const float *row = w[0] + (int64_t)tok[t] * V;
    float p[V], mx = -INFINITY, sum = 0;
    for (int v = 0; v < V; v++)
      p[v] = row[v] + w[1][v], mx = fmaxf(mx, p[v]);
    for (int v = 0; v < V; v++)
      sum += p[v] = expf(p[v] - mx);
    loss -= log(p[tgt[t]] / sum);
    for (int v = 0; g && v < V; v++) {
      float d = (p[v] / sum - (v == tgt[t])) * gs / SEQ;
      g[0][(int64_t)tok[t] * V + v] += d;
      g[1][v] += d;
    }
  }
  return loss / SEQ;
}

static bool bigram_open(TrainModel *m, const char *backend, bool fp32, bool ane_quirks,
                        RtDiag *d) {
  (void)fp32, (void)d;
  ((Bigram *)m->self)->calls = 0;
  ((Bigram *)m->self)->quirks = ane_quirks;
  return !strcmp(backend, "ref");
}

static bool bigram_step(TrainModel *m, float *const *w, const int32_t *tokens,
                        const int32_t *targets, float grad_scale, float *const *grads,
                        double *loss, RtDiag *d) {
  (void)d;
  Bigram *b = m->self;
  int call = b->calls++;
  *loss = bigram_loss(w, tokens, targets, grad_scale, grads);
  if (call == b->inf_at)
    grads[0][7] = INFINITY;
  return call != b->fail_at;
}

static bool bigram_eval(TrainModel *m, float *const *w, const int32_t *tokens,
                        const int32_t *targets, double *loss, RtDiag *d) {
  (void)m, (void)d;
  *loss = bigram_loss(w, tokens, targets, 0, NULL);
  return true;
}

static void bigram_counters(TrainModel *m, TrainCounters *out) {
  const Bigram *b = m->self;
  *out = (TrainCounters){1, 2.5, 0.01 * b->calls, 0.002 * b->calls, 0.001 * b->calls,
                         6.0 * SEQ * V};
}

static void bigram_close(TrainModel *m) {
  (void)m;
}

static TrainModel bigram_model(Bigram *b) {
  *b = (Bigram){0, -1, -1, NULL, -1};
  return (TrainModel){.name = "bigram", .hash = 0xB1A9A7ull, .seq = SEQ, .vocab = V,
                      .ntensors = 2, .tensors = bigram_tensors, .self = b, .open = bigram_open,
                      .step = bigram_step, .eval = bigram_eval, .counters = bigram_counters,
                      .close = bigram_close};
}

//
// The fixture: a temp directory, runs of train_main with stdout and stderr
// captured
//
typedef struct T {
  char dir[400];
  char *paths[32]; // from P, freed at the teardown
  int npaths;
  char *out, *err; // of the last run
} T;

static int setup(void **state) {
  T *t = calloc(1, sizeof *t);
  const char *tmp = getenv("TMPDIR");
  snprintf(t->dir, sizeof t->dir, "%s/test_trainer.XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(t->dir))
    return -1;
  *state = t;
  return 0;
}

static void remove_tree(const char *path) {
  DIR *dp = opendir(path);
  char p[1024];
  for (struct dirent *e; dp && (e = readdir(dp));)
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
      snprintf(p, sizeof p, "%s/%s", path, e->d_name), remove_tree(p);
  if (dp)
    closedir(dp), rmdir(path);
  else
    unlink(path);
}

static int teardown(void **state) {
  T *t = *state;
  remove_tree(t->dir);
  free(t->out), free(t->err);
  for (int i = 0; i < t->npaths; i++)
    free(t->paths[i]);
  free(t);
  return 0;
}

#define RUN_TO(t, m, out, ...) run_to(t, m, out, (const char *const[]){__VA_ARGS__, NULL})

// dir/name, valid until the teardown.
static const char *P(T *t, const char *name) {
  assert_true(t->npaths < 32);
  size_t n = strlen(t->dir) + strlen(name) + 2;
  char *p = t->paths[t->npaths++] = malloc(n);
  snprintf(p, n, "%s/%s", t->dir, name);
  return p;
}

static char *read_text(const char *path, size_t *n) {
  RtDiag d = {.out = stderr};
  char *text = (char *)rt_read_file(path, n, &d);
  assert_non_null(text);
  return text;
}

static bool same_files(const char *a, const char *b) {
  size_t na, nb;
  char *x = read_text(a, &na), *y = read_text(b, &nb);
  bool same = na == nb && !memcmp(x, y, na);
  free(x), free(y);
  return same;
}

// Redirects fd to a new file at path; returns the saved fd.
static int redirect(int fd, const char *path) {
  int saved = dup(fd), f = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  assert_true(saved >= 0 && f >= 0);
  dup2(f, fd);
  close(f);
  return saved;
}

// train_main(m, "train_test" args...) with stdout to `out` (NULL: a file
// read into t->out) and stderr in t->err.
static int run_to(T *t, TrainModel *m, const char *out, const char *const *args) {
  char *argv[64] = {"train_test"};
  int argc = 1;
  for (; args[argc - 1]; argc++)
    argv[argc] = (char *)args[argc - 1];
  char file[512], err[512];
  snprintf(file, sizeof file, "%s/.stdout", t->dir);
  snprintf(err, sizeof err, "%s/.stderr", t->dir);
  fflush(stdout), fflush(stderr);
  int so = redirect(1, out ? out : file), se = redirect(2, err);
  int rc = train_main(m, argc, argv);
  fflush(stdout), fflush(stderr);
  dup2(so, 1), dup2(se, 2);
  close(so), close(se);
  clearerr(stdout);
  size_t n;
  free(t->out), free(t->err);
  t->out = out ? strdup("") : read_text(file, &n);
  t->err = read_text(err, &n);
  return rc;
}

static int run(T *t, TrainModel *m, const char *const *args) {
  return run_to(t, m, NULL, args);
}

#define RUN(t, m, ...) run(t, m, (const char *const[]){__VA_ARGS__, NULL})

static void expect_in(const char *text, const char *what) {
  if (!strstr(text, what))
    fail_msg("expected \"%s\" in:\n%s", what, text);
}

static int count_of(const char *text, const char *what) {
  int n = 0;
  for (const char *p = text; (p = strstr(p, what)); p++)
    n++;
  return n;
}

//
// --log-json records
//
typedef struct Log {
  int n;          // step records, those a resume replaced dropped
  double loss[256];
  bool skipped[256];
  int nval;
  double val[16];
  int nresume;    // resume records
  char from[512]; // the last one's checkpoint
} Log;

// A log as its reader sees it: {"resume": S, "from": P} drops the records
// after step S, the next step record must be S + 1.
static Log read_log(const char *path) {
  Log log = {0};
  size_t n;
  char *text = read_text(path, &n);
  for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
    cJSON *j = cJSON_Parse(line);
    assert_non_null(j);
    cJSON *loss = cJSON_GetObjectItem(j, "loss"), *val = cJSON_GetObjectItem(j, "val_loss");
    cJSON *resume = cJSON_GetObjectItem(j, "resume");
    if (resume) {
      assert_true(resume->valueint >= 0 && resume->valueint <= log.n);
      log.n = resume->valueint, log.nresume++;
      snprintf(log.from, sizeof log.from, "%s", cJSON_GetObjectItem(j, "from")->valuestring);
    } else if (val)
      log.val[log.nval++] = val->valuedouble;
    else {
      assert_int_equal(cJSON_GetObjectItem(j, "step")->valueint, log.n + 1);
      log.skipped[log.n] = cJSON_IsTrue(cJSON_GetObjectItem(j, "skipped"));
      log.loss[log.n++] = loss->valuedouble;
    }
    cJSON_Delete(j);
  }
  free(text);
  return log;
}

static double mean(const double *x, int n) {
  double s = 0;
  for (int i = 0; i < n; i++)
    s += x[i];
  return s / n;
}

//
// Tests
//

// 60 steps of 4 sequences at lr 3e-2: the mean loss of the last 10 steps is
// at least 1.0 below that of the first 10 (5.20 -> 3.50 here; ln 256 = 5.55
// at the start); validation at step 30 and at the end, the second lower.
static void test_loss_falls(void **state) {
  T *t = *state;
  Bigram b;
  TrainModel m = bigram_model(&b);
  const char *json = P(t, "log.json");
  assert_int_equal(RUN(t, &m, "--data", DATA, "--steps", "60", "--batch", "4", "--lr", "3e-2",
                       "--val-data", DATA, "--val-every", "30", "--log-json", json),
                   0);
  Log l = read_log(json);
  assert_int_equal(l.n, 60);
  double first = mean(l.loss, 10), last = mean(l.loss + 50, 10);
  assert_true(fabs(l.loss[0] - log(256)) < 0.1);
  if (!(last < first - 1.0))
    fail_msg("loss %.4f -> %.4f", first, last);
  assert_int_equal(l.nval, 2); // at step 30 and 60, not twice at the end
  assert_true(l.val[1] < l.val[0]);
  expect_in(t->out, "step  60/60  loss ");
  expect_in(t->out, "step  30/60  val loss ");
  expect_in(t->out, "bigram: step 60/60, loss ");
  expect_in(t->out, "GFLOP/s");
  assert_string_equal(t->err, "");
}

// Reads a checkpoint of the bigram model into c (buffers malloc'd).
static bool read_bigram_ckpt(const char *path, Ckpt *c, CkptTensor *ts) {
  for (int i = 0; i < 2; i++) {
    int64_t n = i ? V : V * V;
    ts[i] = (CkptTensor){bigram_tensors[i].name, n, calloc((size_t)n, 4), calloc((size_t)n, 4),
                         calloc((size_t)n, 4)};
  }
  *c = (Ckpt){.model_hash = ckpt_model_hash(bigram_tensors, 2), .ntensors = 2, .t = ts};
  RtDiag d = {.out = stderr};
  return ckpt_read(path, c, &d);
}

static void free_ckpt(CkptTensor *ts) {
  for (int i = 0; i < 2; i++)
    free(ts[i].w), free(ts[i].m), free(ts[i].v);
}

// Whether two checkpoints hold the same weights and moments, bit for bit.
static bool same_state(const CkptTensor *a, const CkptTensor *b) {
  for (int i = 0; i < 2; i++) {
    size_t n = (size_t)a[i].count * 4;
    if (memcmp(a[i].w, b[i].w, n) || memcmp(a[i].m, b[i].m, n) || memcmp(a[i].v, b[i].v, n))
      return false;
  }
  return true;
}

// Warmup + cosine, random order, dynamic loss scale with a skipped step
// before the checkpoint: 16 steps straight = resume from step 8's checkpoint.
static void test_resume_exact(void **state) {
  T *t = *state;
  Bigram b;
  TrainModel m = bigram_model(&b);
  const char *a = P(t, "a"), *c = P(t, "c");
#define SCHEDULE "--steps", "16", "--warmup", "4", "--lr", "1e-2", "--batch", "2", "-q"
  b.inf_at = 4; // step 3's first sequence
  assert_int_equal(RUN(t, &m, "--data", DATA, SCHEDULE, "--save-every", "8", "--ckpt-dir", a), 0);
  Ckpt ck;
  CkptTensor ts[2];
  assert_true(read_bigram_ckpt(P(t, "a/step-00000008.ckpt"), &ck, ts));
  assert_int_equal(ck.skipped, 1);
  assert_true(ck.loss_scale == 32768.0f);
  free_ckpt(ts);
  m = bigram_model(&b);
  assert_int_equal(RUN(t, &m, "--data", DATA, SCHEDULE, "--ckpt-dir", c, "--resume",
                       P(t, "a/step-00000008.ckpt")),
                   0);
  expect_in(t->out, "bigram: step 16/16, loss ");
  assert_true(same_files(P(t, "a/step-00000016.ckpt"), P(t, "c/step-00000016.ckpt")));
#undef SCHEDULE
}

// Sequential order, a constant learning rate: a run of 8 steps, then
// --resume latest to 16 = 16 steps straight; the resumed log goes on.
static void test_resume_sequential(void **state) {
  T *t = *state;
  Bigram b;
  TrainModel m = bigram_model(&b);
  const char *a = P(t, "a"), *c = P(t, "deep/er/c"), *la = P(t, "a.json"), *lc = P(t, "c.json");
#define SCHEDULE "--lr", "1e-2", "--min-lr", "1e-2", "--data-order", "sequential", "-q"
  assert_int_equal(RUN(t, &m, "--data", DATA, SCHEDULE, "--steps", "16", "--ckpt-dir", a,
                       "--log-json", la),
                   0);
  assert_int_equal(RUN(t, &m, "--data", DATA, SCHEDULE, "--steps", "8", "--ckpt-dir", c,
                       "--log-json", lc),
                   0);
  assert_int_equal(RUN(t, &m, "--data", DATA, SCHEDULE, "--steps", "16", "--ckpt-dir", c,
                       "--resume", "--log-json", lc),
                   0);
  expect_in(t->out, "resumed from ");
  expect_in(t->out, "/c/step-00000008.ckpt at step 8\n");
  assert_true(same_files(P(t, "a/step-00000016.ckpt"), P(t, "deep/er/c/step-00000016.ckpt")));
  Log x = read_log(la), y = read_log(lc);
  assert_int_equal(y.n, 16);
  assert_memory_equal(x.loss, y.loss, sizeof x.loss);
  assert_int_equal(RUN(t, &m, "--data", DATA, SCHEDULE, "--steps", "16", "--ckpt-dir", c,
                       "--resume", "latest"),
                   0); // nothing left to do
  expect_in(t->out, "at step 16\nbigram: step 16/16, 0 skipped");
#undef SCHEDULE
}

// --batch 2 --accum 1 and --batch 1 --accum 2 see the same two sequences:
// the same loss at step 1 (within 1e-6 relative; in fact bit for bit) and
// the same weights after it.
static void test_accumulation(void **state) {
  T *t = *state;
  Bigram b;
  TrainModel m = bigram_model(&b);
  const char *la = P(t, "a.json"), *lb = P(t, "b.json");
  assert_int_equal(RUN(t, &m, "--data", DATA, "--steps", "1", "--batch", "2", "--ckpt-dir",
                       P(t, "a"), "--log-json", la),
                   0);
  assert_int_equal(RUN(t, &m, "--data", DATA, "--steps", "1", "--accum", "2", "--ckpt-dir",
                       P(t, "b"), "--log-json", lb),
                   0);
  double x = read_log(la).loss[0], y = read_log(lb).loss[0];
  assert_true(fabs(x - y) <= 1e-6 * fabs(x));
  assert_true(same_files(P(t, "a/step-00000001.ckpt"), P(t, "b/step-00000001.ckpt")));
}

// An inf in step 3's gradients: reported skipped, the weights and moments
// as after step 2, the dynamic scale halved; step 4 updates again. A static
// scale stays.
static void test_loss_scaling(void **state) {
  T *t = *state;
  Bigram b;
  TrainModel m = bigram_model(&b);
  b.inf_at = 2;
  const char *json = P(t, "log.json");
  assert_int_equal(RUN(t, &m, "--data", DATA, "--steps", "5", "--save-every", "1", "--ckpt-dir",
                       P(t, "a"), "--log-json", json),
                   0);
  Log l = read_log(json);
  for (int i = 0; i < 5; i++)
    assert_int_equal(l.skipped[i], i == 2);
  expect_in(t->out, "step   3/5  loss ");
  expect_in(t->out, "(skipped: inf/NaN gradients)");
  expect_in(t->out, "1 skipped (inf/NaN gradients)");
  Ckpt c2, c3, c4;
  CkptTensor t2[2], t3[2], t4[2];
  assert_true(read_bigram_ckpt(P(t, "a/step-00000002.ckpt"), &c2, t2));
  assert_true(read_bigram_ckpt(P(t, "a/step-00000003.ckpt"), &c3, t3));
  assert_true(read_bigram_ckpt(P(t, "a/step-00000004.ckpt"), &c4, t4));
  assert_true(same_state(t2, t3));
  assert_false(same_state(t3, t4));
  assert_true(c2.loss_scale == 65536.0f && c3.loss_scale == 32768.0f);
  assert_true(c3.skipped == 1 && c4.skipped == 1 && c4.step == 4);
  free_ckpt(t2), free_ckpt(t3), free_ckpt(t4);

  m = bigram_model(&b);
  b.inf_at = 0;
  assert_int_equal(RUN(t, &m, "--data", DATA, "--steps", "2", "--loss-scale", "1024",
                       "--ckpt-dir", P(t, "s")),
                   0);
  assert_true(read_bigram_ckpt(P(t, "s/step-00000002.ckpt"), &c2, t2));
  assert_true(c2.loss_scale == 1024.0f && c2.skipped == 1);
  free_ckpt(t2);
}

// --ane-quirks reaches the model's open: on by default with fp16, never with
// fp32 (--ane-quirks on with fp32 is a usage error, test_usage_errors).
static void test_ane_quirks_flag(void **state) {
  T *t = *state;
  static const struct {
    const char *args[4];
    int quirks;
  } cases[] = {
      {{NULL}, 1},
      {{"--ane-quirks", "on"}, 1},
      {{"--ane-quirks", "off"}, 0},
      {{"--precision", "fp32"}, 0},
      {{"--precision", "fp32", "--ane-quirks", "off"}, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    Bigram b;
    TrainModel m = bigram_model(&b);
    const char *args[10] = {"--data", DATA, "--steps", "1", "--quiet"};
    for (int k = 0; k < 4 && cases[i].args[k]; k++)
      args[5 + k] = cases[i].args[k];
    if (run(t, &m, args) != 0 || b.quirks != cases[i].quirks)
      fail_msg("case %zu: open got ane_quirks %d, expected %d:\n%s", i, b.quirks,
               cases[i].quirks, t->err);
  }
}

// Usage errors: exit 2, one message and the hint, nothing on stdout.
static void test_usage_errors(void **state) {
  T *t = *state;
  Bigram b;
  TrainModel m = bigram_model(&b);
  static const struct {
    const char *args[6], *msg;
  } cases[] = {
      {{"--data", DATA, "--lr", "abc"}, "--lr: expected a number in [0, "},
      {{"--data", DATA, "--steps", "-3"}, "--steps: expected an integer in [0, "},
      {{"--data", DATA, "--steps", "10x"}, "got '10x'"},
      {{"--data", DATA, "--batch", "0"}, "--batch: expected an integer in [1, 65536], got '0'"},
      {{"--data", DATA, "--beta1", "1"}, "--beta1: expected a number in [0, 1), got '1'"},
      {{"--data", DATA, "--eps", "0"}, "--eps: expected a number in ["},
      {{"--data", DATA, "--seed", "-1"}, "--seed: expected a non-negative integer, got '-1'"},
      {{"--data", DATA, "--bogus"}, "unknown option '--bogus'"},
      {{"--data", DATA, "-D", "dim=8"}, "unknown option '-D'"},
      {{"--data", DATA, "--steps"}, "option '--steps' needs a value"},
      {{"--data", DATA, "--quiet=yes"}, "option '--quiet' takes no value"},
      {{"--steps", "3"}, "--data FILE is required"},
      {{"--data", DATA, "--backend", "gpu"}, "--backend: expected ref|ane, got 'gpu'"},
      {{"--data", DATA, "--precision", "fp1"}, "--precision: expected fp16|fp32, got 'fp1'"},
      {{"--data", DATA, "--ane-quirks", "yes"}, "--ane-quirks: expected on|off, got 'yes'"},
      {{"--data", DATA, "--ane-quirks", "on", "--precision", "fp32"},
       "--ane-quirks on models fp16 numerics: not with --precision fp32"},
      {{"--data", DATA, "--data-order", "rand"}, "expected random|sequential, got 'rand'"},
      {{"--data", DATA, "--loss-scale", "0"}, "expected a positive number or dynamic, got '0'"},
      {{"--data", DATA, "--resume"}, "--resume latest looks in --ckpt-dir"},
      {{"--data", DATA, "--init", "x.bin"}, "--init: model 'bigram' does not follow llama2.c"},
      {{"--data", DATA, "--export", "x.bin"}, "--export: model 'bigram' does not follow"},
      {{"--data", DATA, "--init", "a", "--resume", "b"}, "--init and --resume exclude each other"},
      {{"--data", DATA, "extra"}, "unexpected argument 'extra'"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *const *args = cases[i].args;
    if (run(t, &m, args) != 2 || strncmp(t->err, "train_test: error: ", 19) ||
        !strstr(t->err, cases[i].msg) || count_of(t->err, "error") != 1 || *t->out)
      fail_msg("case %zu: expected \"%s\", got:\n%s", i, cases[i].msg, t->err);
    expect_in(t->err, "\nTry 'train_test --help'.\n");
  }
}

// Every flag in the help, each with a value with its default (or required).
static void test_help(void **state) {
  T *t = *state;
  Bigram b;
  TrainModel m = bigram_model(&b);
  static const char *const flags[] = {
      "data FILE", "tokenizer FILE|bytes", "val-data FILE", "val-every N", "val-batches N",
      "steps N", "batch N", "accum N", "lr X", "min-lr X", "warmup N", "beta1 X", "beta2 X",
      "eps X", "weight-decay X", "grad-clip X", "loss-scale N|dynamic", "seed N",
      "data-order random|sequential", "init CKPT.bin", "export OUT.bin", "ckpt-dir DIR",
      "save-every N", "resume [latest|PATH]", "log-json FILE", "backend ref|ane",
      "precision fp16|fp32", "ane-quirks on|off", "quiet", "help"};
  assert_int_equal(RUN(t, &m, "--steps", "3", "--help", "--bogus"), 0);
  for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
    char want[64];
    snprintf(want, sizeof want, "--%s\n", flags[i]);
    const char *at = strstr(t->out, want), *help = at ? at + strlen(want) : NULL;
    const char *end = help ? strchr(help, '\n') : NULL;
    char line[200] = "";
    if (end)
      snprintf(line, sizeof line, "%.*s", (int)(end - help), help);
    bool valued = strchr(flags[i], ' ') != NULL;
    if (!end || (valued && !strstr(line, "(default") && !strstr(line, "(required)")))
      fail_msg("--%s is not in the help with its default:\n%s", flags[i], t->out);
  }
  expect_in(t->out, "\n  -q, --quiet\n");
  expect_in(t->out, "\n  -h, --help\n");
  assert_string_equal(t->err, "");
}

// A run that fails on its input: exit 1, one error naming the file.
static void expect_bad_input(T *t, TrainModel *m, const char *const *args, const char *file,
                             const char *msg) {
  int rc = run(t, m, args);
  char want[1024];
  snprintf(want, sizeof want, "%s: error: %s", file, msg);
  if (rc != 1 || !strstr(t->err, want) || count_of(t->err, "error") != 1)
    fail_msg("exit %d, expected \"%s\" in:\n%s", rc, want, t->err);
}

#define BAD(t, m, file, msg, ...) \
  expect_bad_input(t, m, (const char *const[]){__VA_ARGS__, NULL}, file, msg)

static void write_file(const char *path, const void *p, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(p, 1, n, f), n);
  fclose(f);
}

// Bad data, tokenizer, checkpoints, output paths and a failing model.
static void test_bad_input(void **state) {
  T *t = *state;
  Bigram b;
  TrainModel m = bigram_model(&b);
  const char *missing = P(t, "missing.txt"), *odd = P(t, "odd.bin"), *small = P(t, "small.txt");
  write_file(odd, "abc", 3);
  write_file(small, "tiny text", 9);
  BAD(t, &m, missing, "cannot open: No such file", "--data", missing);
  BAD(t, &m, odd, "has an odd size of 3 bytes", "--data", odd);
  BAD(t, &m, small, "has 9 tokens; a micro-batch needs seq+1 = 33", "--data", small);
  BAD(t, &m, small, "has 9 tokens", "--data", DATA, "--val-data", small);
  BAD(t, &m, missing, "cannot open", "--data", DATA, "--tokenizer", missing);

  const char *dir = P(t, "ck"), *ckpt = P(t, "ck/step-00000002.ckpt");
  assert_int_equal(RUN(t, &m, "--data", DATA, "--steps", "2", "--ckpt-dir", dir), 0);
  size_t n;
  char *bytes = read_text(ckpt, &n);
  bytes[n / 2] ^= 0x10;
  const char *bad = P(t, "bad.ckpt");
  write_file(bad, bytes, n);
  free(bytes);
  BAD(t, &m, bad, "corrupted or truncated", "--data", DATA, "--resume", bad);
  const char *empty = P(t, "empty");
  mkdir(empty, 0777);
  BAD(t, &m, empty, "no checkpoint (step-NNNNNNNN.ckpt) to resume from", "--data", DATA,
      "--ckpt-dir", empty, "--resume", "latest");
  BAD(t, &m, P(t, "no/dir/log.json"), "--log-json: cannot open: No such file", "--data", DATA,
      "--log-json", P(t, "no/dir/log.json"));
  BAD(t, &m, P(t, "odd.bin/ck"), "--ckpt-dir: cannot create the directory: Not a directory",
      "--data", DATA, "--ckpt-dir", P(t, "odd.bin/ck"));

  b.fail_at = 3;
  int rc = RUN(t, &m, "--data", DATA, "--steps", "5", "--batch", "2");
  assert_int_equal(rc, 1);
  assert_string_equal(t->err, "train_test: error: model 'bigram': its step function failed "
                              "after step 1\n");
  BAD(t, &m, "train_test", "model 'bigram': cannot open the ane backend", "--data", DATA,
      "--backend", "ane");
}

// Flips a byte in the middle of a file.
static void damage(const char *path) {
  size_t n;
  char *bytes = read_text(path, &n);
  bytes[n / 2] ^= 0x10;
  write_file(path, bytes, n);
  free(bytes);
}

// --resume latest when the newest checkpoints are damaged: the newest good
// one, each skipped file named with the reader's error; its log record
// {"resume": 8, "from": ...} drops the steps the resumed run does again,
// so the log reads as 16 steps straight. None good: an error.
static void test_resume_fallback(void **state) {
  T *t = *state;
  Bigram b;
  TrainModel m = bigram_model(&b);
  const char *a = P(t, "a"), *c = P(t, "c"), *la = P(t, "a.json"), *lc = P(t, "c.json");
#define SCHEDULE "--lr", "1e-2", "--min-lr", "1e-2", "--data-order", "sequential", "-q"
  assert_int_equal(RUN(t, &m, "--data", DATA, SCHEDULE, "--steps", "16", "--ckpt-dir", a,
                       "--log-json", la),
                   0);
  assert_int_equal(RUN(t, &m, "--data", DATA, SCHEDULE, "--steps", "12", "--save-every", "8",
                       "--ckpt-dir", c, "--log-json", lc),
                   0);
  damage(P(t, "c/step-00000012.ckpt"));
  write_file(P(t, "c/step-00000010.ckpt"), "x", 1);
  assert_int_equal(RUN(t, &m, "--data", DATA, SCHEDULE, "--steps", "16", "--ckpt-dir", c,
                       "--resume", "latest", "--log-json", lc),
                   0);
  expect_in(t->err, "/c/step-00000012.ckpt: warning: skipped: corrupted or truncated: the "
                    "checksum of its ");
  expect_in(t->err, "/c/step-00000010.ckpt: warning: skipped: not an anec checkpoint (bad "
                    "magic)\n");
  assert_int_equal(count_of(t->err, "error"), 0);
  expect_in(t->out, "/c/step-00000008.ckpt at step 8\n");
  assert_true(same_files(P(t, "a/step-00000016.ckpt"), P(t, "c/step-00000016.ckpt")));
  Log x = read_log(la), y = read_log(lc);
  assert_int_equal(y.n, 16);
  assert_int_equal(y.nresume, 1);
  assert_string_equal(y.from, P(t, "c/step-00000008.ckpt"));
  assert_memory_equal(x.loss, y.loss, sizeof x.loss);

  damage(P(t, "c/step-00000008.ckpt"));
  damage(P(t, "c/step-00000016.ckpt"));
  BAD(t, &m, c, "no checkpoint to resume from: all 4 are damaged or of another model",
      "--data", DATA, SCHEDULE, "--steps", "16", "--ckpt-dir", c, "--resume", "latest");
  assert_int_equal(count_of(t->err, "warning: skipped: "), 4);
#undef SCHEDULE
}

// The checkpoint at `from` rewritten at `to` in format version 2: no model
// hash, the plan hash where version 3 has the model hash.
static void write_version2(const char *from, const char *to) {
  size_t n;
  unsigned char *f = (unsigned char *)read_text(from, &n);
  memmove(f + 12, f + 20, n - 20);
  n -= 8;
  f[8] = 2;
  uint64_t h = 0xcbf29ce484222325ull; // FNV-1a 64
  for (size_t i = 0; i < n - 8; i++)
    h = (h ^ f[i]) * 0x100000001b3ull;
  for (int i = 0; i < 8; i++)
    f[n - 8 + i] = (unsigned char)(h >> 8 * i);
  write_file(to, f, n);
  free(f);
}

// Two checkpoints' weights and moments, bit for bit (their plan hashes may differ).
static bool same_weights(const char *a, const char *b) {
  Ckpt x, y;
  CkptTensor tx[2], ty[2];
  bool rx = read_bigram_ckpt(a, &x, tx), ry = read_bigram_ckpt(b, &y, ty);
  bool same = rx && ry && same_state(tx, ty) && x.step == y.step;
  free_ckpt(tx), free_ckpt(ty);
  return same;
}

static const char other_plan[] = "warning: resuming a checkpoint written by a different plan "
                                 "(other --target, --dw or anec version): the arithmetic may "
                                 "differ\n";

// A checkpoint of another plan (TrainModel.hash: another --target, --dw or
// anec version) resumes with a warning (here to the same bits: the bigram's
// arithmetic is the same); one of format version 2 too, silently when its
// hash is this plan's. Tensors of other shapes, the same counts: refused.
static void test_resume_other_plan(void **state) {
  T *t = *state;
  Bigram b;
  TrainModel m = bigram_model(&b);
  const char *ck8 = P(t, "c/step-00000008.ckpt"), *v2 = P(t, "v2.ckpt");
  const char *a16 = P(t, "a/step-00000016.ckpt");
#define SCHEDULE "--data", DATA, "--lr", "1e-2", "--min-lr", "1e-2", "-q"
  assert_int_equal(RUN(t, &m, SCHEDULE, "--steps", "16", "--ckpt-dir", P(t, "a")), 0);
  assert_int_equal(RUN(t, &m, SCHEDULE, "--steps", "8", "--ckpt-dir", P(t, "c")), 0);
  write_version2(ck8, v2);
  m.hash ^= 1;
  assert_int_equal(RUN(t, &m, SCHEDULE, "--steps", "16", "--ckpt-dir", P(t, "c"), "--resume"), 0);
  expect_in(t->err, other_plan);
  expect_in(t->err, "/c/step-00000008.ckpt: warning: ");
  assert_true(same_weights(a16, P(t, "c/step-00000016.ckpt")));
  assert_int_equal(RUN(t, &m, SCHEDULE, "--steps", "16", "--ckpt-dir", P(t, "e"), "--resume", v2),
                   0);
  expect_in(t->err, other_plan);
  m.hash ^= 1;
  assert_int_equal(RUN(t, &m, SCHEDULE, "--steps", "16", "--ckpt-dir", P(t, "d"), "--resume", v2),
                   0);
  assert_string_equal(t->err, "");
  assert_true(same_files(a16, P(t, "d/step-00000016.ckpt")));
  assert_true(same_weights(a16, P(t, "e/step-00000016.ckpt")));

  static const TrainTensor reshaped[] = {
      {"emb", 2, {V, V}, true, TINIT_NORMAL, 0.02},
      {"bias", 2, {1, V}, false, TINIT_ZEROS, 0},
  };
  m.tensors = reshaped;
  BAD(t, &m, ck8, "checkpoint '", SCHEDULE, "--steps", "16", "--resume", ck8);
  expect_in(t->err, "' is from a different model (hash 0x");
#undef SCHEDULE
}

// --log-json on a full device, or the progress to one: the failure
// reported once, the run stopped after the step whose lines were lost, its
// checkpoint saved; exit 1. Quiet, only the final report is lost.
static void test_write_errors(void **state) {
  T *t = *state;
  if (access("/dev/full", W_OK))
    skip();
  Bigram b;
  TrainModel m = bigram_model(&b);
  Ckpt c;
  CkptTensor ts[2];
  assert_int_equal(RUN(t, &m, "--data", DATA, "--steps", "5", "--ckpt-dir", P(t, "a"),
                       "--log-json", "/dev/full", "-q"),
                   1);
  expect_in(t->err, "/dev/full: error: --log-json: cannot write: No space left on device\n");
  expect_in(t->err, "stopped at step 1 of 5; --resume from ");
  assert_int_equal(count_of(t->err, "error"), 1);
  assert_true(read_bigram_ckpt(P(t, "a/step-00000001.ckpt"), &c, ts));
  free_ckpt(ts);

  assert_int_equal(RUN_TO(t, &m, "/dev/full", "--data", DATA, "--steps", "5", "--ckpt-dir",
                          P(t, "b")),
                   1);
  expect_in(t->err, "stdout: error: cannot write the progress: No space left on device\n"
                    "train_test: note: stopped at step 1 of 5; --resume from ");
  assert_int_equal(count_of(t->err, "error"), 1);
  assert_true(read_bigram_ckpt(P(t, "b/step-00000001.ckpt"), &c, ts));
  free_ckpt(ts);

  assert_int_equal(RUN_TO(t, &m, "/dev/full", "--data", DATA, "--steps", "2", "--ckpt-dir",
                          P(t, "q"), "-q"),
                   1);
  assert_int_equal(count_of(t->err, "error"), 1);
  expect_in(t->err, "stdout: error: cannot write the progress: No space left on device\n");
  assert_true(read_bigram_ckpt(P(t, "q/step-00000002.ckpt"), &c, ts));
  free_ckpt(ts);
}

//
// A model in llama2.c's layout: dim 8, hidden 16, 2 layers, 2 heads, 1 kv
// head, vocab 256, seq 16; its loss is 0.01 * sum(w^2) / 2
//
enum { L2C_TENSORS = 2 + 2 * 9 };
static char l2c_names[L2C_TENSORS][32];
static TrainTensor l2c_tensors[L2C_TENSORS];

static void add_tensor(int *n, const char *name, int64_t rows, int64_t cols) {
  snprintf(l2c_names[*n], sizeof l2c_names[*n], "%s", name);
  bool matrix = cols > 0;
  l2c_tensors[*n] = (TrainTensor){l2c_names[*n], matrix ? 2 : 1, {rows, cols}, matrix,
                                  matrix ? TINIT_NORMAL : TINIT_ONES, 0.02};
  (*n)++;
}

static bool l2c_step(TrainModel *m, float *const *w, const int32_t *tokens,
                     const int32_t *targets, float grad_scale, float *const *grads,
                     double *loss, RtDiag *d) {
  (void)tokens, (void)targets, (void)d;
  Bigram *b = m->self;
  if (b->calls++ == 0 && b->remove)
    assert_int_equal(rmdir(b->remove), 0);
  *loss = 0;
  for (int i = 0; i < m->ntensors; i++)
    for (int64_t k = 0; k < rt_numel(m->tensors[i].rank, m->tensors[i].dims); k++) {
      *loss += 0.005 * w[i][k] * w[i][k];
      grads[i][k] += 0.01f * w[i][k] * grad_scale;
    }
  return true;
}

static TrainModel l2c_model(Bigram *b) {
  static const char *const arrays[9] = {"rms_att", "wq", "wk", "wv", "wo",
                                        "rms_ffn", "w1", "w2", "w3"};
  static const int64_t shapes[9][2] = {{8, 0}, {8, 8}, {4, 8}, {4, 8}, {8, 8},
                                       {8, 0}, {16, 8}, {8, 16}, {16, 8}};
  int n = 0;
  char name[32];
  add_tensor(&n, "tok_emb", 256, 8);
  for (int l = 0; l < 2; l++)
    for (int k = 0; k < 9; k++) {
      snprintf(name, sizeof name, "layers.%d.%s", l, arrays[k]);
      add_tensor(&n, name, shapes[k][0], shapes[k][1]);
    }
  add_tensor(&n, "rms_final", 8, 0);
  TrainModel m = bigram_model(b); // its open, eval, counters and close
  m.name = "tiny_l2c", m.hash = 0x12C, m.seq = 16, m.ntensors = n, m.tensors = l2c_tensors;
  m.has_l2c = true, m.l2c = (L2cConfig){8, 16, 2, 2, 1, 256, 16, true};
  m.step = l2c_step;
  return m;
}

// Export after 3 steps; --init from it and export again (0 steps, or a step
// at lr 0): the same bytes. The initial weights are the initializers' and
// layers.N.* rows of the stacked arrays. A config mismatch names its field.
static void test_l2c_init_export(void **state) {
  T *t = *state;
  Bigram b;
  TrainModel m = l2c_model(&b);
  const char *x0 = P(t, "x0.bin"), *x1 = P(t, "x1.bin"), *x2 = P(t, "x2.bin"),
             *x3 = P(t, "x3.bin");
  assert_int_equal(RUN(t, &m, "--data", DATA, "--steps", "0", "--export", x0), 0);
  assert_int_equal(RUN(t, &m, "--data", DATA, "--steps", "3", "--lr", "1e-2", "--export", x1), 0);
  assert_int_equal(RUN(t, &m, "--data", DATA, "--steps", "0", "--init", x1, "--export", x2), 0);
  assert_int_equal(RUN(t, &m, "--data", DATA, "--steps", "1", "--lr", "0", "--init", x1,
                       "--export", x3),
                   0);
  assert_false(same_files(x0, x1));
  assert_true(same_files(x1, x2));
  assert_true(same_files(x1, x3));

  L2cCheckpoint ck;
  RtDiag d = {.out = stderr};
  assert_true(l2c_read(x0, &ck, &d));
  float want[8 * 8];
  rt_fill_normal(want, 64, 0.02, "layers.1.wq", 1337);
  assert_memory_equal(l2c_find(&ck, "wq")->data + 64, want, sizeof want);
  assert_true(l2c_find(&ck, "rms_ffn")->data[15] == 1.0f);
  ck.cfg.layers = 3; // the file of another config
  L2cCheckpoint other;
  assert_true(l2c_alloc(&other, &ck.cfg, &d));
  const char *y = P(t, "y.bin");
  assert_true(l2c_write(y, &other, &d));
  l2c_free(&other), l2c_free(&ck);
  BAD(t, &m, y, "n_layers is 3, model 'tiny_l2c' has 2", "--data", DATA, "--init", y);
  BAD(t, &m, P(t, "none.bin"), "cannot open", "--data", DATA, "--init", P(t, "none.bin"));
}

// A run refused before its first step: exit 1, "file: error: msg", no step run.
static void expect_refused(T *t, TrainModel *m, const char *const *args, const char *file,
                           const char *msg) {
  Bigram *b = m->self;
  b->calls = 0;
  expect_bad_input(t, m, args, file, msg);
  assert_int_equal(b->calls, 0);
  assert_null(strstr(t->out, "step"));
}

#define REFUSED(t, m, file, msg, ...) \
  expect_refused(t, m, (const char *const[]){__VA_ARGS__, NULL}, file, msg)

static bool has_probe(const char *dir) {
  DIR *dp = opendir(dir);
  bool found = false;
  for (struct dirent *e; dp && (e = readdir(dp));)
    found |= !strncmp(e->d_name, ".anec-probe", 11);
  if (dp)
    closedir(dp);
  return found;
}

// Output paths that cannot be written are refused before the first step,
// naming the flag and the path: a missing directory, a read-only one (/proc;
// a mode of 0555 when not root), a directory as a file; nothing is left
// behind where they can be.
static void test_outputs_checked(void **state) {
  T *t = *state;
  Bigram b;
  TrainModel m = l2c_model(&b);
  char msg[1024];
  const char *nodir = P(t, "no/dir/w.bin");
  snprintf(msg, sizeof msg, "--export: cannot create a file in '%s/no/dir': No such file or "
           "directory\n", t->dir);
  REFUSED(t, &m, nodir, msg, "--data", DATA, "--steps", "3", "--export", nodir);
  REFUSED(t, &m, t->dir, "--export: is a directory\n", "--data", DATA, "--export", t->dir);
  REFUSED(t, &m, "/proc/anec-test.bin", "--export: cannot create a file in '/proc': ", "--data",
          DATA, "--export", "/proc/anec-test.bin");
  REFUSED(t, &m, "/proc/self", "--ckpt-dir: cannot create a file in it: ", "--data", DATA,
          "--ckpt-dir", "/proc/self");
  REFUSED(t, &m, "/proc/anec-test", "--ckpt-dir: cannot create the directory: ", "--data", DATA,
          "--ckpt-dir", "/proc/anec-test");
  REFUSED(t, &m, "/proc/x/log.json", "--log-json: cannot open: ", "--data", DATA, "--log-json",
          "/proc/x/log.json");
  REFUSED(t, &m, "/proc/g", "--dump-grads: cannot create the directory: ", "--data", DATA,
          "--dump-grads", "/proc/g");
  const char *ro = P(t, "ro"), *in_ro = P(t, "ro/w.bin");
  assert_int_equal(mkdir(ro, 0555), 0);
  if (geteuid() != 0) {
    REFUSED(t, &m, ro, "--ckpt-dir: cannot create a file in it: Permission denied\n", "--data",
            DATA, "--ckpt-dir", ro);
    REFUSED(t, &m, in_ro, "Permission denied\n", "--data", DATA, "--export", in_ro);
  }
  chmod(ro, 0755);
  assert_int_equal(RUN(t, &m, "--data", DATA, "--steps", "1", "--export", P(t, "w.bin"),
                       "--ckpt-dir", P(t, "ck"), "--dump-grads", P(t, "g")),
                   0);
  assert_false(has_probe(t->dir) || has_probe(P(t, "ck")) || has_probe(P(t, "g")));
}

// An export that still fails at the end (its directory removed during the
// run): exit 1, the weights saved in the checkpoint directory, else in a
// new $TMPDIR file, the message saying where.
static void test_export_fallback(void **state) {
  T *t = *state;
  Bigram b;
  TrainModel m = l2c_model(&b);
  const char *want = P(t, "want.bin"), *gone = P(t, "gone"), *out = P(t, "gone/w.bin");
  const char *tmp = P(t, "tmp");
#define RUN3(...) RUN(t, &m, "--data", DATA, "--steps", "3", "--lr", "1e-2", __VA_ARGS__)
  assert_int_equal(RUN3("--export", want), 0);
  assert_int_equal(mkdir(gone, 0777), 0);
  b.remove = gone;
  assert_int_equal(RUN3("--export", out, "--ckpt-dir", P(t, "ck")), 1);
  expect_in(t->err, "/gone/w.bin: error: cannot write: No such file or directory\n");
  char msg[1024];
  snprintf(msg, sizeof msg, "train_test: note: the weights of step 3 are saved in "
           "%s/ck/export-step-00000003.bin instead\n", t->dir);
  expect_in(t->err, msg);
  assert_int_equal(count_of(t->err, "error"), 1);
  assert_true(same_files(want, P(t, "ck/export-step-00000003.bin")));

  char *old = getenv("TMPDIR") ? strdup(getenv("TMPDIR")) : NULL;
  assert_int_equal(mkdir(gone, 0777), 0);
  assert_int_equal(mkdir(tmp, 0777), 0);
  setenv("TMPDIR", tmp, 1);
  int rc = RUN3("--export", out);
  old ? setenv("TMPDIR", old, 1) : unsetenv("TMPDIR");
  free(old);
  assert_int_equal(rc, 1);
  snprintf(msg, sizeof msg, "are saved in %s/anec-export-", tmp);
  expect_in(t->err, msg);
  char *at = strstr(t->err, msg) + strlen("are saved in "), *end = strstr(at, " instead\n");
  assert_non_null(end);
  *end = '\0';
  assert_true(same_files(want, at));
  b.remove = NULL;
#undef RUN3
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_loss_falls, setup, teardown),
      cmocka_unit_test_setup_teardown(test_resume_exact, setup, teardown),
      cmocka_unit_test_setup_teardown(test_resume_sequential, setup, teardown),
      cmocka_unit_test_setup_teardown(test_accumulation, setup, teardown),
      cmocka_unit_test_setup_teardown(test_loss_scaling, setup, teardown),
      cmocka_unit_test_setup_teardown(test_usage_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ane_quirks_flag, setup, teardown),
      cmocka_unit_test_setup_teardown(test_help, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
      cmocka_unit_test_setup_teardown(test_resume_fallback, setup, teardown),
      cmocka_unit_test_setup_teardown(test_resume_other_plan, setup, teardown),
      cmocka_unit_test_setup_teardown(test_write_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_l2c_init_export, setup, teardown),
      cmocka_unit_test_setup_teardown(test_outputs_checked, setup, teardown),
      cmocka_unit_test_setup_teardown(test_export_fallback, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
