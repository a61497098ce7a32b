// test_llama2c.c — llama2.c checkpoints: the stories260K file's config, shapes
// and sums; byte-identical write/read round trips (tied and untied); an
// error, never a crash, for truncated, padded and garbage-header copies; and
// the arrays a parameter name denotes (l2c_slot).
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "llm.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STORIES260K ANEC_SOURCE_DIR "/tests/data/llama2c/stories260K_plctlab.bin"
#define FILE_BYTES 1056540

typedef struct Dir {
  char path[64];
} Dir;

static void dir_make(Dir *d) {
  strcpy(d->path, "/tmp/test_llama2c.XXXXXX");
  assert_non_null(mkdtemp(d->path));
}

static int dir_count(const Dir *d) {
  DIR *dp = opendir(d->path);
  int n = 0;
  while (readdir(dp))
    n++;
  closedir(dp);
  return n - 2;
}

static void dir_remove(Dir *d) {
  DIR *dp = opendir(d->path);
  struct dirent *e;
  char p[400];
  while ((e = readdir(dp)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
      snprintf(p, sizeof p, "%s/%s", d->path, e->d_name), unlink(p);
  closedir(dp);
  rmdir(d->path);
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

static void write_bytes(const char *path, const void *p, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(p, 1, n, f), n);
  fclose(f);
}

static double sum(const L2cTensor *t, bool squares) {
  double s = 0;
  int64_t n = rt_numel(t->rank, t->dims);
  for (int64_t i = 0; i < n; i++)
    s += squares ? (double)t->data[i] * t->data[i] : t->data[i];
  return s;
}

static void expect_tensor(const L2cCheckpoint *ck, const char *name, int rank, int64_t a,
                          int64_t b, int64_t c) {
  const L2cTensor *t = l2c_find(ck, name);
  if (!t)
    fail_msg("no tensor '%s'", name);
  assert_int_equal(t->rank, rank);
  int64_t want[3] = {a, b, c};
  for (int i = 0; i < rank; i++)
    assert_int_equal(t->dims[i], want[i]);
}

static void expect_config(const L2cConfig *a, const L2cConfig *b) {
  assert_int_equal(a->dim, b->dim);
  assert_int_equal(a->hidden, b->hidden);
  assert_int_equal(a->layers, b->layers);
  assert_int_equal(a->heads, b->heads);
  assert_int_equal(a->kv_heads, b->kv_heads);
  assert_int_equal(a->vocab, b->vocab);
  assert_int_equal(a->seq, b->seq);
  assert_int_equal(a->shared_cls, b->shared_cls);
}

static void test_read_stories260k(void **state) {
  (void)state;
  L2cCheckpoint ck;
  RtDiag d = {.out = stderr};
  assert_true(l2c_read(STORIES260K, &ck, &d));
  L2cConfig want = {64, 172, 5, 8, 4, 512, 512, true};
  expect_config(&ck.cfg, &want);
  assert_int_equal(ck.n, 13);
  assert_ptr_equal(ck.t[0].data, ck.all);
  expect_tensor(&ck, "tok_emb", 2, 512, 64, 0);
  expect_tensor(&ck, "rms_att", 2, 5, 64, 0);
  expect_tensor(&ck, "wq", 3, 5, 64, 64);
  expect_tensor(&ck, "wk", 3, 5, 32, 64);
  expect_tensor(&ck, "wv", 3, 5, 32, 64);
  expect_tensor(&ck, "wo", 3, 5, 64, 64);
  expect_tensor(&ck, "rms_ffn", 2, 5, 64, 0);
  expect_tensor(&ck, "w1", 3, 5, 172, 64);
  expect_tensor(&ck, "w2", 3, 5, 64, 172);
  expect_tensor(&ck, "w3", 3, 5, 172, 64);
  expect_tensor(&ck, "rms_final", 1, 64, 0, 0);
  expect_tensor(&ck, "freq_cis_real", 2, 512, 4, 0);
  expect_tensor(&ck, "freq_cis_imag", 2, 512, 4, 0);
  assert_null(l2c_find(&ck, "wcls"));
  int64_t total = 0;
  for (int i = 0; i < ck.n; i++) {
    assert_ptr_equal(ck.t[i].data, ck.all + total); // file order, one allocation
    total += rt_numel(ck.t[i].rank, ck.t[i].dims);
  }
  assert_int_equal(28 + 4 * total, FILE_BYTES);
  // Sums computed separately from the raw file (in double precision).
  assert_float_equal(sum(l2c_find(&ck, "tok_emb"), false), -752.3677446640068, 1e-6);
  assert_float_equal(sum(l2c_find(&ck, "wq"), true), 1060.138937408164, 1e-6);
  assert_float_equal(sum(l2c_find(&ck, "wk"), false), -24.900409052997816, 1e-6);
  assert_float_equal(sum(l2c_find(&ck, "w2"), false), 29.622342875869435, 1e-6);
  assert_float_equal(sum(l2c_find(&ck, "rms_final"), false), 115.95276230573654, 1e-6);
  assert_float_equal(l2c_find(&ck, "tok_emb")->data[0], -0.29474878311157227, 0);
  assert_float_equal(l2c_find(&ck, "w3")->data[5 * 172 * 64 - 1], 0.10603193938732147, 0);
  l2c_free(&ck);
  assert_null(ck.all);
}

// The file's RoPE tables are PyTorch's: within one float ulp of what we compute
// (libm's cosf/sinf and PyTorch's differ in the last bit for ~5% of the entries).
static void test_rope_tables(void **state) {
  (void)state;
  L2cCheckpoint ck, fresh;
  RtDiag d = {.out = stderr};
  assert_true(l2c_read(STORIES260K, &ck, &d));
  assert_true(l2c_alloc(&fresh, &ck.cfg, &d));
  for (int k = 0; k < 2; k++) {
    const char *name = k ? "freq_cis_imag" : "freq_cis_real";
    const L2cTensor *a = l2c_find(&ck, name), *b = l2c_find(&fresh, name);
    for (int p = 0; p < 512; p++)
      for (int i = 0; i < 4; i++) {
        double angle = p * pow(10000.0, -2.0 * i / 8);
        double exact = k ? sin(angle) : cos(angle);
        assert_float_equal(a->data[p * 4 + i], exact, 2e-5); // float angle: p * freq rounded
        assert_float_equal(b->data[p * 4 + i], a->data[p * 4 + i], 1.2e-7);
      }
  }
  l2c_free(&ck), l2c_free(&fresh);
}

static void test_round_trip(void **state) {
  (void)state;
  Dir dir;
  dir_make(&dir);
  char path[128], path2[128];
  snprintf(path, sizeof path, "%s/out.bin", dir.path);
  snprintf(path2, sizeof path2, "%s/out2.bin", dir.path);
  L2cCheckpoint ck, back;
  RtDiag d = {.out = stderr};
  assert_true(l2c_read(STORIES260K, &ck, &d));
  assert_true(l2c_write(path, &ck, &d));
  size_t n0, n1;
  unsigned char *orig = read_bytes(STORIES260K, &n0), *copy = read_bytes(path, &n1);
  assert_int_equal(n1, n0);
  assert_memory_equal(copy, orig, n0); // identical bytes
  assert_true(l2c_read(path, &back, &d));
  expect_config(&back.cfg, &ck.cfg);
  assert_memory_equal(back.all, ck.all, (n0 - 28));
  // Without RoPE tables, the writer computes them: the weights stay identical.
  L2cCheckpoint norope = ck;
  norope.n = 11;
  assert_true(l2c_write(path2, &norope, &d));
  free(copy);
  copy = read_bytes(path2, &n1);
  assert_int_equal(n1, n0);
  size_t weights = 28 + 4 * (size_t)(l2c_find(&ck, "freq_cis_real")->data - ck.all);
  assert_memory_equal(copy, orig, weights);
  assert_int_equal(dir_count(&dir), 2); // no temp files left behind
  free(orig), free(copy);
  l2c_free(&ck), l2c_free(&back);
  dir_remove(&dir);
}

// An untied checkpoint of another shape (MHA, seq 8) from l2c_alloc: written
// with a negative vocab_size and wcls last, read back the same.
static void test_untied(void **state) {
  (void)state;
  Dir dir;
  dir_make(&dir);
  char path[128];
  snprintf(path, sizeof path, "%s/untied.bin", dir.path);
  L2cConfig cfg = {16, 24, 2, 2, 2, 10, 8, false};
  L2cCheckpoint ck, back;
  RtDiag d = {.out = stderr};
  assert_true(l2c_alloc(&ck, &cfg, &d));
  assert_int_equal(ck.n, 14);
  expect_tensor(&ck, "wcls", 2, 10, 16, 0);
  expect_tensor(&ck, "wk", 3, 2, 16, 16);
  int64_t total = 0;
  for (int i = 0; i < ck.n; i++)
    total += rt_numel(ck.t[i].rank, ck.t[i].dims);
  for (int64_t i = 0; i < total; i++)
    if (ck.t[11].data > ck.all + i || ck.all + i >= ck.t[13].data)
      ck.all[i] = (float)sin((double)i); // weights, not the RoPE tables
  assert_float_equal(l2c_find(&ck, "freq_cis_real")->data[4], cosf(1.0f), 0); // p 1, pair 0
  assert_true(l2c_write(path, &ck, &d));
  size_t n;
  unsigned char *bytes = read_bytes(path, &n);
  assert_int_equal(n, 28 + 4 * (size_t)total);
  int32_t header[7];
  memcpy(header, bytes, sizeof header);
  assert_int_equal(header[5], -10);
  assert_true(l2c_read(path, &back, &d));
  expect_config(&back.cfg, &cfg);
  assert_int_equal(back.n, 14);
  assert_memory_equal(back.all, ck.all, (size_t)total * sizeof(float));
  free(bytes);
  l2c_free(&back);

  // What the writer refuses: a missing or misshapen array, a bad config.
  char buf[1024];
  FILE *out = fmemopen(buf, sizeof buf, "w");
  RtDiag e = {.out = out};
  L2cCheckpoint bad = ck;
  bad.n = 13; // no wcls
  assert_false(l2c_write(path, &bad, &e));
  bad = ck;
  bad.t[2].dims[1] = 15;
  assert_false(l2c_write(path, &bad, &e));
  bad = ck;
  bad.cfg.heads = 3;
  assert_false(l2c_write(path, &bad, &e));
  bad = ck;
  bad.cfg.shared_cls = true; // tied, but with a wcls
  assert_false(l2c_write(path, &bad, &e));
  fclose(out);
  assert_int_equal(e.errors, 4);
  assert_non_null(strstr(buf, "array 'wcls' is missing"));
  assert_non_null(strstr(buf, "array 'wq' has another shape, expected [2, 16, 16]"));
  assert_non_null(strstr(buf, "dim 16 is not divisible by n_heads 3"));
  assert_non_null(strstr(buf, "'wcls'"));
  assert_int_equal(dir_count(&dir), 1); // the good file only
  l2c_free(&ck);
  dir_remove(&dir);
}

// Reads `bytes` as a checkpoint file; returns the error text ("" if none).
static char errbuf[4096];
static const char *read_result(const Dir *dir, const void *bytes, size_t n) {
  char path[128];
  snprintf(path, sizeof path, "%s/in.bin", dir->path);
  write_bytes(path, bytes, n);
  FILE *out = fmemopen(errbuf, sizeof errbuf, "w");
  RtDiag d = {.out = out};
  L2cCheckpoint ck;
  bool ok = l2c_read(path, &ck, &d);
  fclose(out);
  assert_int_equal(ok, d.errors == 0);
  if (ok) {
    l2c_free(&ck);
    return "";
  }
  assert_null(ck.all);
  assert_int_equal(ck.n, 0);
  assert_non_null(strstr(errbuf, "in.bin: error: "));
  return errbuf;
}

static void expect_error(const Dir *dir, const void *bytes, size_t n, const char *want) {
  const char *e = read_result(dir, bytes, n);
  if (!strstr(e, want))
    fail_msg("expected an error with '%s', got '%s'", want, e);
}

static void expect_header_error(const Dir *dir, unsigned char *file, int field, int32_t v,
                                const char *want) {
  int32_t old;
  memcpy(&old, file + 4 * field, 4);
  memcpy(file + 4 * field, &v, 4);
  expect_error(dir, file, FILE_BYTES, want);
  memcpy(file + 4 * field, &old, 4);
}

static void test_bad_files(void **state) {
  (void)state;
  Dir dir;
  dir_make(&dir);
  size_t n;
  unsigned char *file = read_bytes(STORIES260K, &n);
  assert_int_equal(n, FILE_BYTES);
  assert_string_equal(read_result(&dir, file, n), "");
  expect_error(&dir, file, 0, "truncated: a llama2.c checkpoint starts with a 28-byte header");
  expect_error(&dir, file, 27, "found 27 bytes");
  expect_error(&dir, file, 28, "truncated: expected 1,056,540 bytes for dim 64, hidden 172, 5 "
                               "layers, 8 heads, 4 kv heads, vocab 512, seq 512, tied classifier; "
                               "found 28");
  expect_error(&dir, file, n / 2, "found 528,270");
  expect_error(&dir, file, n - 1, "truncated: expected 1,056,540 bytes");
  // Weights that are not finite: the first bad tensor and index named.
  unsigned char keep[4];
  const uint32_t nan_bits = 0x7FC00000, inf_bits = 0xFF800000;
  size_t wq3 = 28 + 4 * (512 * 64 + 5 * 64 + 3); // wq[0][0][3], after tok_emb and rms_att
  memcpy(keep, file + wq3, 4);
  memcpy(file + wq3, &nan_bits, 4);
  expect_error(&dir, file, n, "error: tensor 'wq' holds nan at index 3: weights must be finite");
  memcpy(file + 28 + 4 * 7, &inf_bits, 4);
  expect_error(&dir, file, n, "error: tensor 'tok_emb' holds -inf at index 7");
  memcpy(file + wq3, keep, 4);
  memcpy(file + 28 + 4 * 7, keep, 4);
  file = realloc(file, n + 1);
  file[n] = 0;
  expect_error(&dir, file, n + 1, "trailing bytes: expected 1,056,540 bytes");
  expect_header_error(&dir, file, 3, 0, "n_heads is 0 (must be positive)");
  expect_header_error(&dir, file, 0, 63, "dim 63 is not divisible by n_heads 8");
  expect_header_error(&dir, file, 0, 24, "head size 3 is odd");
  expect_header_error(&dir, file, 4, 3, "n_heads 8 is not a multiple of n_kv_heads 3");
  expect_header_error(&dir, file, 4, 16, "n_heads 8 is not a multiple of n_kv_heads 16");
  expect_header_error(&dir, file, 6, -1, "seq_len is -1");
  expect_header_error(&dir, file, 1, 0, "hidden_dim is 0");
  expect_header_error(&dir, file, 5, 0, "vocab_size is 0");
  expect_header_error(&dir, file, 5, INT32_MIN, "vocab_size -2147483648 is out of range");
  expect_header_error(&dir, file, 5, -512, "truncated: expected 1,187,612 bytes");
  expect_header_error(&dir, file, 0, 0x7FFFFFF0, "the arrays would be too large");
  expect_header_error(&dir, file, 2, INT32_MAX, "the arrays would be too large");
  expect_header_error(&dir, file, 1, 1 << 30, "truncated: expected 4,123,169,000,220 bytes");
  expect_header_error(&dir, file, 2, 1000, "truncated: expected 181,907,740 bytes");
  // Random headers: whatever they say, an error and no crash.
  srand(7);
  for (int i = 0; i < 200; i++) {
    unsigned char h[28];
    for (int k = 0; k < 28; k++)
      h[k] = (unsigned char)(i % 2 ? rand() : rand() % 4);
    memcpy(file, h, 28);
    read_result(&dir, file, 28 + (size_t)(rand() % 4096));
  }
  free(file);

  L2cCheckpoint ck;
  char buf[512];
  FILE *out = fmemopen(buf, sizeof buf, "w");
  RtDiag d = {.out = out};
  assert_false(l2c_read("/nonexistent/model.bin", &ck, &d));
  assert_false(l2c_read(dir.path, &ck, &d));
  fclose(out);
  assert_int_equal(d.errors, 2);
  assert_non_null(strstr(buf, "/nonexistent/model.bin: error: cannot open: "));
  assert_non_null(strstr(buf, "not a regular file"));
  dir_remove(&dir);
}

// l2c_slot: llama2.c's names whole, "layers.N.x" row N of a stacked array;
// no slot for rows out of range, unstacked arrays, malformed or unknown names.
static void test_slots(void **state) {
  (void)state;
  L2cConfig cfg = {16, 24, 2, 2, 1, 10, 8, false};
  L2cCheckpoint ck;
  RtDiag d = {.out = stderr};
  assert_true(l2c_alloc(&ck, &cfg, &d));
  L2cTensor v;
  assert_true(l2c_slot(&ck, "wcls", &v));
  assert_true(v.rank == 2 && v.dims[0] == 10 && v.dims[1] == 16);
  assert_true(v.data == l2c_find(&ck, "wcls")->data);
  assert_true(l2c_slot(&ck, "layers.1.wk", &v));
  assert_true(v.rank == 2 && v.dims[0] == 8 && v.dims[1] == 16);
  assert_true(v.data == l2c_find(&ck, "wk")->data + 8 * 16);
  assert_true(l2c_slot(&ck, "layers.0.rms_att", &v));
  assert_true(v.rank == 1 && v.dims[0] == 16 && v.data == l2c_find(&ck, "rms_att")->data);
  static const char *const none[] = {"layers.2.wq", "layers.0.rms_final", "layers.x.wq",
                                     "layers.-1.wq", "layers.0wq", "layers.0.", "w4",
                                     "layers.99999999999999999999.wq"};
  for (size_t i = 0; i < sizeof none / sizeof none[0]; i++)
    if (l2c_slot(&ck, none[i], &v))
      fail_msg("a slot for '%s'", none[i]);
  l2c_free(&ck);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_read_stories260k), cmocka_unit_test(test_rope_tables),
      cmocka_unit_test(test_round_trip),       cmocka_unit_test(test_untied),
      cmocka_unit_test(test_bad_files),        cmocka_unit_test(test_slots),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
