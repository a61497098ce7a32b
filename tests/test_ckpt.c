// test_ckpt.c — runtime/ckpt.c: bit-exact round trips and the file layout
// (version 3: the model hash, then the plan hash, read back); version 2
// files read, their one hash as the plan's; the model hash covers names,
// ranks and dims only; every truncation and every corrupted byte refused
// with the reader's buffers untouched; wrong model, tensor names, counts,
// magic and version refused with their messages; impossible values under a valid checksum
// (non-finite weights, negative second moments, absurd steps and loss
// scales) refused; failed writes that leave nothing behind and
// an existing checkpoint intact; overwrites that replace the file whole.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "train.h"

#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

enum { NT = 3 };
#define HASH 0x0123456789ABCDEFull
#define PLAN 0x1122334455667788ull

// A small model's training state: three tensors (one empty) and scalars.
typedef struct Model {
  CkptTensor t[NT];
  float data[NT][3][6];
  Ckpt c;
} Model;

static const char *const names[NT] = {"tok_emb", "layers.0.wq", "empty"};
static const int64_t counts[NT] = {6, 5, 0};

// Values from seed, with the special ones a checkpoint must keep bit for bit:
// any finite weight and first moment, second moments not negative.
static void model_init(Model *m, uint32_t seed) {
  memset(m, 0, sizeof *m);
  uint32_t s = seed;
  for (int i = 0; i < NT; i++)
    for (int k = 0; k < 3; k++)
      for (int j = 0; j < 6; j++) {
        s = s * 1664525u + 1013904223u;
        uint32_t bits = (s >> 23 & 0xFF) == 0xFF ? s ^ 0x40000000u : s; // finite
        bits = k == 2 ? bits & 0x7FFFFFFFu : bits;                        // v >= 0
        memcpy(&m->data[i][k][j], &bits, 4);
      }
  const uint32_t special[] = {0x7F7FFFFF, 0x80000000, 0x00000001, 0xFF7FFFFF, 0x00800000};
  memcpy(m->data[0][0], special, sizeof special);
  for (int i = 0; i < NT; i++) {
    float *w = counts[i] ? m->data[i][0] : NULL;
    m->t[i] = (CkptTensor){names[i], counts[i], w, w ? m->data[i][1] : NULL,
                           w ? m->data[i][2] : NULL};
  }
  m->c = (Ckpt){HASH, PLAN ^ seed, 1234 + seed, 0xFEEDFACECAFEBEEFull ^ seed,
                {0xA5A5A5A5A5A5A5A5ull, 99}, 65536.0f, 17, 5 + seed, NT, m->t};
}

// Bitwise: the scalars and the elements of every tensor.
static bool model_eq(const Model *a, const Model *b) {
  const Ckpt *x = &a->c, *y = &b->c;
  for (int i = 0; i < NT; i++)
    for (int k = 0; k < 3; k++)
      if (memcmp(a->data[i][k], b->data[i][k], (size_t)counts[i] * sizeof(float)))
        return false;
  return x->model_hash == y->model_hash && x->plan_hash == y->plan_hash &&
         x->step == y->step && x->rng == y->rng && x->cursor.rng == y->cursor.rng &&
         x->cursor.next == y->cursor.next && !memcmp(&x->loss_scale, &y->loss_scale, 4) &&
         x->good_steps == y->good_steps && x->skipped == y->skipped;
}

// The test's directory and diagnostics in memory.
typedef struct T {
  char dir[64];
  char path[400];
  FILE *out;
  char *buf;
  size_t len;
  RtDiag d;
} T;

static int setup(void **state) {
  T *t = calloc(1, sizeof *t);
  strcpy(t->dir, "/tmp/test_ckpt.XXXXXX");
  if (!mkdtemp(t->dir) || !(t->out = open_memstream(&t->buf, &t->len)))
    return -1;
  t->d = (RtDiag){.out = t->out, .max_errors = 1 << 20};
  snprintf(t->path, sizeof t->path, "%s/run.ckpt", t->dir);
  *state = t;
  return 0;
}

static int dir_count(const char *dir) {
  DIR *dp = opendir(dir);
  int n = 0;
  while (dp && readdir(dp))
    n++;
  if (dp)
    closedir(dp);
  return n - 2;
}

static int teardown(void **state) {
  T *t = *state;
  fclose(t->out);
  free(t->buf);
  DIR *dp = opendir(t->dir);
  char p[400];
  for (struct dirent *e; dp && (e = readdir(dp));)
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
      snprintf(p, sizeof p, "%s/%s", t->dir, e->d_name), unlink(p);
  if (dp)
    closedir(dp);
  rmdir(t->dir);
  free(t);
  return 0;
}

static const char *diags(T *t) {
  fflush(t->out);
  return t->buf ? t->buf : "";
}

static void expect_diag(T *t, const char *msg) {
  if (!strstr(diags(t), msg))
    fail_msg("expected \"%s\" in:\n%s", msg, diags(t));
}

static unsigned char *read_bytes(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  *n = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc(*n + 1);
  assert_int_equal(fread(b, 1, *n, f), *n);
  fclose(f);
  return b;
}

static void write_bytes(const char *path, const unsigned char *b, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(b, 1, n, f), n);
  fclose(f);
}

static uint64_t le64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 8; i-- > 0;)
    v = v << 8 | p[i];
  return v;
}

// A read of t->path that fails with one error containing msg and leaves
// the reader's model as it was.
static void expect_refused(T *t, const char *msg) {
  Model into, before;
  model_init(&into, 77);
  model_init(&before, 77);
  int errors = t->d.errors;
  assert_false(ckpt_read(t->path, &into.c, &t->d));
  assert_int_equal(t->d.errors, errors + 1);
  assert_true(model_eq(&into, &before));
  if (msg)
    expect_diag(t, msg);
}

static void test_round_trip(void **state) {
  T *t = *state;
  Model a, b;
  model_init(&a, 1);
  assert_true(ckpt_write(t->path, &a.c, &t->d));
  model_init(&b, 2);
  b.c.model_hash = HASH;
  assert_false(model_eq(&a, &b));
  assert_true(ckpt_read(t->path, &b.c, &t->d));
  assert_true(model_eq(&a, &b));
  assert_int_equal(t->d.errors, 0);
  size_t n;
  unsigned char *f = read_bytes(t->path, &n);
  assert_int_equal(n, 84 + (1 + 7 + 8 + 72) + (1 + 11 + 8 + 60) + (1 + 5 + 8) + 8);
  assert_memory_equal(f, "ANECKPT\0\x03\0\0\0\xEF\xCD\xAB\x89\x67\x45\x23\x01"
                         "\x89\x77\x66\x55\x44\x33\x22\x11\xD3\x04\0\0", 32); // seed 1
  assert_memory_equal(f + 80, "\x03\0\0\0\x07tok_emb\x06\0\0\0\0\0\0\0\xFF\xFF\x7F\x7F", 24);
  uint64_t h = 0xcbf29ce484222325ull; // FNV-1a 64
  for (size_t i = 0; i < n - 8; i++)
    h = (h ^ f[i]) * 0x100000001b3ull;
  assert_true(le64(f + n - 8) == h);
  snprintf(t->path, sizeof t->path, "%s/again.ckpt", t->dir);
  assert_true(ckpt_write(t->path, &b.c, &t->d)); // written back: the same bytes
  size_t n2;
  unsigned char *f2 = read_bytes(t->path, &n2);
  assert_int_equal(n2, n);
  assert_memory_equal(f, f2, n);
  assert_int_equal(dir_count(t->dir), 2);
  free(f), free(f2);
}

static void test_truncated(void **state) {
  T *t = *state;
  Model a;
  model_init(&a, 3);
  assert_true(ckpt_write(t->path, &a.c, &t->d));
  size_t n;
  unsigned char *f = read_bytes(t->path, &n);
  for (size_t k = 0; k < n; k++) {
    write_bytes(t->path, f, k);
    expect_refused(t, t->path);
  }
  expect_diag(t, "/run.ckpt: error: truncated: 0 bytes; a checkpoint has at least 92\n");
  expect_diag(t, "/run.ckpt: error: corrupted or truncated: the checksum of its ");
  unsigned char *longer = malloc(n + 1);
  memcpy(longer, f, n), longer[n] = 0;
  write_bytes(t->path, longer, n + 1);
  expect_refused(t, NULL);
  write_bytes(t->path, f, n);
  Model b;
  model_init(&b, 4);
  assert_true(ckpt_read(t->path, &b.c, &t->d));
  assert_true(model_eq(&a, &b));
  free(f), free(longer);
}

static void test_corrupted(void **state) {
  T *t = *state;
  Model a;
  model_init(&a, 5);
  assert_true(ckpt_write(t->path, &a.c, &t->d));
  size_t n;
  unsigned char *f = read_bytes(t->path, &n);
  for (size_t i = 0; i < n; i++) {
    for (int flip = 0; flip < 2; flip++) {
      f[i] ^= flip ? 0xFF : (unsigned char)(1u << i % 8);
      write_bytes(t->path, f, n);
      expect_refused(t, t->path);
      f[i] ^= flip ? 0xFF : (unsigned char)(1u << i % 8);
    }
  }
  expect_diag(t, "/run.ckpt: error: not an anec checkpoint (bad magic)\n");
  expect_diag(t, "/run.ckpt: error: checkpoint format version 515 is not supported (this build "
              "reads versions 2 to 3)\n");
  expect_diag(t, "/run.ckpt: error: corrupted or truncated: the checksum of its 266 bytes is ");
  free(f);
}

// Writes m's checkpoint and expects the reader's model to refuse it.
static void expect_mismatch(T *t, Model *m, const char *msg) {
  assert_true(ckpt_write(t->path, &m->c, &t->d));
  expect_refused(t, msg);
}

static void test_wrong_model(void **state) {
  T *t = *state;
  Model m;
  model_init(&m, 6);
  m.c.model_hash = 0xFEDCBA9876543210ull;
  char msg[1000];
  snprintf(msg, sizeof msg, "%s: error: checkpoint '%s' is from a different model (hash "
           "0xfedcba9876543210, this model 0x0123456789abcdef)\n", t->path, t->path);
  expect_mismatch(t, &m, msg);
  model_init(&m, 6);
  m.t[1].name = "layers.0.wk";
  expect_mismatch(t, &m, "/run.ckpt: error: tensor 1 is 'layers.0.wk', this model's is "
                  "'layers.0.wq'\n");
  model_init(&m, 6);
  m.t[0].count = 5;
  expect_mismatch(t, &m, "/run.ckpt: error: tensor 'tok_emb' has 5 elements, this model's 6\n");
  model_init(&m, 6);
  m.t[2].name = "emptx";
  expect_mismatch(t, &m, "tensor 2 is 'emptx', this model's is 'empty'\n");
  model_init(&m, 6);
  m.c.ntensors = 2;
  expect_mismatch(t, &m, "/run.ckpt: error: has 2 tensors, this model 3\n");
  m.c.ntensors = 0;
  expect_mismatch(t, &m, "/run.ckpt: error: has 0 tensors, this model 3\n");
  m.t[0].name = "t\x01\xFF";
  m.c.ntensors = 3;
  expect_mismatch(t, &m, "tensor 0 is 't?\?', this model's is 'tok_emb'\n");
}

// FNV-1a 64 of every byte before the last 8, stored in them.
static void reseal(unsigned char *f, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n - 8; i++)
    h = (h ^ f[i]) * 0x100000001b3ull;
  for (int i = 0; i < 8; i++)
    f[n - 8 + i] = (unsigned char)(h >> 8 * i);
}

// A version 2 file (as anec wrote before version 3): no model hash, its one
// hash the plan's. Read whatever the reader's model hash, the tensors still
// checked; a different plan is the caller's to judge.
static void test_version2(void **state) {
  T *t = *state;
  Model a, b;
  model_init(&a, 15);
  assert_true(ckpt_write(t->path, &a.c, &t->d));
  size_t n;
  unsigned char *f = read_bytes(t->path, &n);
  memmove(f + 12, f + 20, n - 20); // the model hash out
  n -= 8;
  f[8] = 2;
  reseal(f, n);
  write_bytes(t->path, f, n);
  model_init(&b, 16);
  b.c.model_hash = 0xAAAAAAAAAAAAAAAAull, b.c.plan_hash = 0;
  assert_true(ckpt_read(t->path, &b.c, &t->d));
  assert_true(b.c.plan_hash == (PLAN ^ 15));
  b.c.model_hash = HASH;
  assert_true(model_eq(&a, &b));
  assert_int_equal(t->d.errors, 0);
  memcpy(f + 76 + 1, "TOK", 3); // another model's tensors
  reseal(f, n);
  write_bytes(t->path, f, n);
  expect_refused(t, "/run.ckpt: error: tensor 0 is 'TOK_emb', this model's is 'tok_emb'\n");
  write_bytes(t->path, f, 75);
  expect_refused(t, "/run.ckpt: error: truncated: 75 bytes; a checkpoint has at least 84\n");
  free(f);
}

// The model hash: the same tensors, the same hash whatever their decay or
// initializer; another name, rank, dim or order, another hash.
static void test_model_hash(void **state) {
  (void)state;
  TrainTensor a[2] = {{"emb", 2, {4, 8}, true, TINIT_NORMAL, 0.02},
                      {"bias", 1, {8}, false, TINIT_ZEROS, 0}};
  TrainTensor b[2];
  uint64_t h = ckpt_model_hash(a, 2);
  memcpy(b, a, sizeof b);
  b[0].decay = false, b[0].init = TINIT_ONES, b[0].init_std = 1, b[1].dims[1] = 99;
  assert_true(ckpt_model_hash(b, 2) == h); // dims past the rank do not count
  b[0].dims[0] = 8, b[0].dims[1] = 4;
  assert_true(ckpt_model_hash(b, 2) != h); // transposed: the same count
  memcpy(b, a, sizeof b);
  b[1].rank = 2, b[1].dims[0] = 1, b[1].dims[1] = 8;
  assert_true(ckpt_model_hash(b, 2) != h);
  memcpy(b, a, sizeof b);
  b[1].name = "bias2";
  assert_true(ckpt_model_hash(b, 2) != h);
  b[0] = a[1], b[1] = a[0];
  assert_true(ckpt_model_hash(b, 2) != h);
  assert_true(ckpt_model_hash(a, 1) != h);
}

// A checkpoint written with one impossible value (a valid checksum: crafted,
// not corrupted) must be refused naming it, the reader's buffers untouched.
static void expect_impossible(T *t, Model *m, const char *msg) {
  assert_true(ckpt_write(t->path, &m->c, &t->d));
  expect_refused(t, msg);
  model_init(m, 8);
}

static void test_impossible_values(void **state) {
  T *t = *state;
  Model m;
  model_init(&m, 8);
  m.c.loss_scale = INFINITY;
  expect_impossible(t, &m, "error: impossible loss scale (step 1242, loss scale inf");
  m.c.loss_scale = 0.0f;
  expect_impossible(t, &m, "error: impossible loss scale");
  m.c.step = (int64_t)1 << 62;
  expect_impossible(t, &m, "error: impossible step (step 4611686018427387904,");
  m.c.step = -1;
  expect_impossible(t, &m, "error: impossible step");
  m.c.skipped = m.c.step + 1;
  expect_impossible(t, &m, "error: impossible count of skipped steps");
  m.c.good_steps = -3;
  expect_impossible(t, &m, "error: impossible count of good steps");
  m.c.cursor.next = -1;
  expect_impossible(t, &m, "error: impossible data cursor");
  m.data[1][0][3] = NAN;
  expect_impossible(t, &m, "error: tensor 'layers.0.wq': weight 3 is nan; a checkpoint holds "
                    "finite values\n");
  m.data[0][1][5] = -INFINITY;
  expect_impossible(t, &m, "error: tensor 'tok_emb': AdamW first moment 5 is -inf");
  m.data[1][2][0] = -1.0f;
  expect_impossible(t, &m, "error: tensor 'layers.0.wq': AdamW second moment 0 is -1; a "
                    "checkpoint holds finite values, not negative\n");
}

static void test_not_a_file(void **state) {
  T *t = *state;
  snprintf(t->path, sizeof t->path, "%s/missing.ckpt", t->dir);
  expect_refused(t, "/missing.ckpt: error: cannot open: No such file or directory\n");
  snprintf(t->path, sizeof t->path, "%s", t->dir);
  expect_refused(t, ": error: cannot open: not a regular file\n");
}

// A write that fails: an error naming the path, and nothing new in the directory.
static void expect_write_fails(T *t, const Ckpt *c, const char *path, const char *msg) {
  int errors = t->d.errors, files = dir_count(t->dir);
  assert_false(ckpt_write(path, c, &t->d));
  assert_int_equal(t->d.errors, errors + 1);
  assert_int_equal(dir_count(t->dir), files);
  expect_diag(t, msg);
}

static void test_failed_write(void **state) {
  T *t = *state;
  Model m;
  model_init(&m, 8);
  char path[500];
  snprintf(path, sizeof path, "%s/no/such/dir/run.ckpt", t->dir);
  expect_write_fails(t, &m.c, path, "/no/such/dir/run.ckpt: error: cannot write: No such file");
  char name[300];
  memset(name, 'x', 256), name[256] = '\0';
  m.t[1].name = name;
  expect_write_fails(t, &m.c, t->path, "/run.ckpt: error: cannot write: tensor 1 has a name of "
                     "256 bytes (1 to 255)\n");
  m.t[1].name = "";
  expect_write_fails(t, &m.c, t->path, "tensor 1 has a name of 0 bytes");
  m.t[1].name = names[1], m.t[1].m = NULL;
  expect_write_fails(t, &m.c, t->path, "cannot write: tensor 'layers.0.wq' lacks its weights or "
                     "moments\n");
  m.t[1].m = m.data[1][1], m.t[1].count = -1;
  expect_write_fails(t, &m.c, t->path, "cannot write: tensor 'layers.0.wq' has -1 elements\n");
}

// A write that fails half way (the file size limit) keeps the old checkpoint.
static void test_failed_write_keeps_old(void **state) {
  T *t = *state;
  Model a, b;
  model_init(&a, 9);
  assert_true(ckpt_write(t->path, &a.c, &t->d));
  model_init(&b, 10);
  struct rlimit old, small = {100, 0};
  assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
  small.rlim_max = old.rlim_max;
  signal(SIGXFSZ, SIG_IGN);
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
  bool ok = ckpt_write(t->path, &b.c, &t->d);
  setrlimit(RLIMIT_FSIZE, &old);
  signal(SIGXFSZ, SIG_DFL);
  assert_false(ok);
  expect_diag(t, "/run.ckpt: error: cannot write: File too large\n");
  assert_int_equal(dir_count(t->dir), 1);
  Model c;
  model_init(&c, 11);
  assert_true(ckpt_read(t->path, &c.c, &t->d));
  assert_true(model_eq(&c, &a));
}

static void test_overwrite(void **state) {
  T *t = *state;
  Model a, b, c;
  model_init(&a, 12);
  model_init(&b, 13);
  assert_true(ckpt_write(t->path, &a.c, &t->d));
  size_t na;
  unsigned char *fa = read_bytes(t->path, &na);
  int fd = open(t->path, O_RDONLY); // the old file, still open
  assert_true(fd >= 0);
  b.data[1][2][4] = 42.0f;
  assert_true(ckpt_write(t->path, &b.c, &t->d));
  assert_int_equal(dir_count(t->dir), 1);
  model_init(&c, 14);
  assert_true(ckpt_read(t->path, &c.c, &t->d));
  assert_true(model_eq(&c, &b));
  unsigned char *old = malloc(na + 1);
  assert_int_equal(read(fd, old, na + 1), na); // replaced by a rename, not rewritten in place
  assert_memory_equal(old, fa, na);
  close(fd);
  free(fa), free(old);
  assert_int_equal(t->d.errors, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
      cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
      cmocka_unit_test_setup_teardown(test_corrupted, setup, teardown),
      cmocka_unit_test_setup_teardown(test_wrong_model, setup, teardown),
      cmocka_unit_test_setup_teardown(test_version2, setup, teardown),
      cmocka_unit_test(test_model_hash),
      cmocka_unit_test_setup_teardown(test_impossible_values, setup, teardown),
      cmocka_unit_test_setup_teardown(test_not_a_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_failed_write, setup, teardown),
      cmocka_unit_test_setup_teardown(test_failed_write_keeps_old, setup, teardown),
      cmocka_unit_test_setup_teardown(test_overwrite, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
