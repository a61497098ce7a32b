// test_npy.c — .npy files: round trips of every dtype and rank, headers as
// numpy writes them (v1, v2, v3, double quotes, big-endian, 5L), the exact
// header we write, and one clear error for each way a file can be wrong.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "exec.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct Dir {
  char path[64];
} Dir;

static void dir_make(Dir *d) {
  strcpy(d->path, "/tmp/test_npy.XXXXXX");
  assert_non_null(mkdtemp(d->path));
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

static int dir_count(const Dir *d) {
  DIR *dp = opendir(d->path);
  int n = 0;
  while (readdir(dp))
    n++;
  closedir(dp);
  return n - 2;
}

static void write_bytes(const char *path, const void *p, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(p, 1, n, f), n);
  fclose(f);
}

// A file: the magic, version major.0, the header padded to `align` as numpy
// does, then `ndata` bytes of data.
static size_t make_npy(unsigned char *buf, int major, const char *dict, const void *data,
                       size_t ndata) {
  size_t pre = major == 1 ? 10 : 12, n = strlen(dict);
  size_t total = (pre + n + 1 + 63) / 64 * 64, hlen = total - pre;
  memcpy(buf, "\x93NUMPY", 6);
  buf[6] = (unsigned char)major, buf[7] = 0;
  for (size_t i = 0; i < pre - 8; i++)
    buf[8 + i] = (unsigned char)(hlen >> (8 * i));
  memset(buf + pre, ' ', hlen);
  memcpy(buf + pre, dict, n);
  buf[total - 1] = '\n';
  memcpy(buf + total, data, ndata);
  return total + ndata;
}

// Reads `bytes` back through a file; returns the error text ("" if none).
static char errbuf[4096];
static const char *read_result(const Dir *dir, const void *bytes, size_t n, RtTensor *t) {
  char path[128];
  snprintf(path, sizeof path, "%s/in.npy", dir->path);
  write_bytes(path, bytes, n);
  FILE *out = fmemopen(errbuf, sizeof errbuf, "w");
  RtDiag d = {.out = out};
  bool ok = npy_read(path, t, &d);
  fclose(out);
  assert_int_equal(ok, d.errors == 0);
  if (ok)
    errbuf[0] = '\0';
  return errbuf;
}

static void expect_error(const Dir *dir, const void *bytes, size_t n, const char *want) {
  RtTensor t;
  const char *e = read_result(dir, bytes, n, &t);
  if (!strstr(e, want))
    fail_msg("expected an error with '%s', got '%s'", want, e);
  assert_non_null(strstr(e, "in.npy: error: "));
  assert_null(t.data);
}

static void test_round_trip(void **state) {
  (void)state;
  Dir dir;
  dir_make(&dir);
  const MilDType types[] = {MIL_FP16, MIL_FP32, MIL_INT32};
  const int64_t shapes[][4] = {{0}, {5}, {2, 3}, {1, 768, 1, 7}};
  const int ranks[] = {0, 1, 2, 4};
  char path[128];
  snprintf(path, sizeof path, "%s/t.npy", dir.path);
  for (int ti = 0; ti < 3; ti++)
    for (int si = 0; si < 4; si++) {
      RtTensor t, u;
      assert_true(rt_tensor_alloc(&t, types[ti], ranks[si], shapes[si]));
      for (size_t b = 0; b < (size_t)t.count * rt_dtype_size(t.dtype); b++)
        ((unsigned char *)t.data)[b] = (unsigned char)(b * 37 + 11);
      RtDiag d = {.out = stderr};
      assert_true(npy_write(path, &t, &d)); // the second time over an existing file
      assert_true(npy_read(path, &u, &d));
      assert_int_equal(u.dtype, t.dtype);
      assert_int_equal(u.rank, t.rank);
      assert_int_equal(u.count, t.count);
      assert_memory_equal(u.dims, t.dims, (size_t)t.rank * sizeof *t.dims);
      assert_memory_equal(u.data, t.data, (size_t)t.count * rt_dtype_size(t.dtype));
      rt_tensor_free(&t), rt_tensor_free(&u);
    }
  assert_int_equal(dir_count(&dir), 1); // no temp files left behind
  dir_remove(&dir);
}

static void test_header_written(void **state) {
  (void)state;
  Dir dir;
  dir_make(&dir);
  char path[128];
  snprintf(path, sizeof path, "%s/h.npy", dir.path);
  RtTensor t;
  int64_t dims1[] = {3}, dims2[] = {2, 3};
  const char *want[] = {"{'descr': '<f2', 'fortran_order': False, 'shape': (3,), }",
                        "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"};
  for (int k = 0; k < 2; k++) {
    assert_true(rt_tensor_alloc(&t, k ? MIL_FP32 : MIL_FP16, k + 1, k ? dims2 : dims1));
    RtDiag d = {.out = stderr};
    assert_true(npy_write(path, &t, &d));
    unsigned char buf[256]; // numpy's header: 128 bytes for these
    FILE *f = fopen(path, "rb");
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    assert_int_equal(n, 128 + (size_t)t.count * rt_dtype_size(t.dtype));
    assert_memory_equal(buf, "\x93NUMPY\x01\x00\x76\x00", 10); // 128 - 10 = 118
    assert_memory_equal(buf + 10, want[k], strlen(want[k]));
    assert_int_equal(buf[127], '\n');
    assert_int_equal(buf[126], ' ');
    rt_tensor_free(&t);
  }
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0644);
  dir_remove(&dir);
}

static void test_numpy_variants(void **state) {
  (void)state;
  Dir dir;
  dir_make(&dir);
  unsigned char buf[512];
  RtTensor t;
  const float f[3] = {1.5f, -2.0f, 3.25f};
  // v2.0 and v3.0 headers, double quotes, other key order, no trailing comma
  for (int major = 1; major <= 3; major++) {
    size_t n = make_npy(buf, major,
                        "{\"shape\": (3,), \"fortran_order\": False, \"descr\": \"<f4\"}", f,
                        sizeof f);
    assert_string_equal(read_result(&dir, buf, n, &t), "");
    assert_int_equal(t.dtype, MIL_FP32);
    assert_memory_equal(t.data, f, sizeof f);
    rt_tensor_free(&t);
  }
  // big-endian data; Python 2's long ints; rank 0; Fortran order at rank 1
  const unsigned char be[8] = {0x3F, 0xC0, 0, 0, 0xC0, 0, 0, 0};
  size_t n = make_npy(buf, 1, "{'descr': '>f4', 'fortran_order': True, 'shape': (2L,), }",
                      be, 8);
  assert_string_equal(read_result(&dir, buf, n, &t), "");
  assert_true(((float *)t.data)[0] == 1.5f && ((float *)t.data)[1] == -2.0f);
  rt_tensor_free(&t);
  const int32_t seven = 7;
  n = make_npy(buf, 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (), }", &seven, 4);
  assert_string_equal(read_result(&dir, buf, n, &t), "");
  assert_int_equal(t.rank, 0);
  assert_int_equal(t.count, 1);
  assert_int_equal(*(int32_t *)t.data, 7);
  rt_tensor_free(&t);
  dir_remove(&dir);
}

static void test_errors(void **state) {
  (void)state;
  Dir dir;
  dir_make(&dir);
  unsigned char buf[512], zeros[64] = {0};
  const struct {
    int major;
    const char *dict;
    size_t ndata;
    const char *want;
  } cases[] = {
      {1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 24, "Fortran-order"},
      {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", 16, "dtype '<f8'"},
      {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 20, "truncated"},
      {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 28, "trailing"},
      {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1073741824, 1073741824, 2), }",
       0, "shape too large"},
      {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }", 4,
       "more than 8 dimensions"},
      {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", 0, "expected a dim"},
      {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (5), }", 20, "1-tuple"},
      {1, "{'descr': '<f4', 'fortran_order': False, }", 4, "missing key 'shape'"},
      {1, "{'descr': '<f4', 'descr': '<f4', 'shape': (1,), }", 4, "given twice"},
      {1, "{'descr': '<f4', 'fortran_order': 0, 'shape': (1,), }", 4, "True or False"},
      {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}", 4,
       "unknown key 'x'"},
      {1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", 4,
       "structured"},
      {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), } x", 4, "end of the header"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    size_t n = make_npy(buf, cases[i].major, cases[i].dict, zeros, cases[i].ndata);
    expect_error(&dir, buf, n, cases[i].want);
  }
  size_t n = make_npy(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }",
                      zeros, 4);
  buf[0] = 'X';
  expect_error(&dir, buf, n, "bad magic");
  buf[0] = 0x93, buf[6] = 4;
  expect_error(&dir, buf, n, "version 4.0");
  buf[6] = 1;
  expect_error(&dir, buf, 40, "truncated .npy header");
  expect_error(&dir, buf, 0, "bad magic");
  buf[8] = 0xFF, buf[9] = 0xFF; // header length past the end of the file
  expect_error(&dir, buf, n, "truncated .npy header");
  dir_remove(&dir);
}

static void test_write_errors(void **state) {
  (void)state;
  RtTensor t;
  int64_t dims[] = {2};
  assert_true(rt_tensor_alloc(&t, MIL_FP32, 1, dims));
  FILE *out = fmemopen(errbuf, sizeof errbuf, "w");
  RtDiag d = {.out = out};
  assert_false(npy_write("/nonexistent-dir/x.npy", &t, &d));
  fclose(out);
  assert_non_null(strstr(errbuf, "/nonexistent-dir/x.npy: error: cannot write"));
  RtTensor u;
  assert_false(npy_read("/nonexistent-dir/x.npy", &u, &(RtDiag){0}));
  assert_null(u.data);
  rt_tensor_free(&t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip),     cmocka_unit_test(test_header_written),
      cmocka_unit_test(test_numpy_variants), cmocka_unit_test(test_errors),
      cmocka_unit_test(test_write_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
