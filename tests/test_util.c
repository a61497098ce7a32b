// test_util.c — the small shared pieces: arena allocation, number
// formatting, and atomic output files (cli_write_file).
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "driver.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void test_arena_zeroed_aligned(void **state) {
  (void)state;
  Arena a = {0};
  for (size_t n = 1; n < 5000; n += 97) {
    unsigned char *p = arena_alloc(&a, n);
    assert_int_equal((uintptr_t)p % 16, 0);
    for (size_t i = 0; i < n; i++)
      assert_int_equal(p[i], 0);
    memset(p, 0xab, n);
  }
  void *big = arena_alloc(&a, (size_t)3 << 20); // larger than a block
  assert_non_null(big);
  arena_free(&a);
  assert_null(a.head);
}

static void test_arena_strings(void **state) {
  (void)state;
  Arena a = {0};
  assert_string_equal(arena_strdup(&a, "wq"), "wq");
  assert_string_equal(arena_strndup(&a, "layers.3.wq", 6), "layers");
  assert_string_equal(arena_printf(&a, "%s.%d.%s", "layers", 3, "wq"), "layers.3.wq");
  int *v = arena_alloc(&a, 4 * sizeof(int));
  for (int i = 0; i < 4; i++)
    v[i] = i + 1;
  int *w = arena_grow(&a, v, 4 * sizeof(int), 8 * sizeof(int));
  assert_int_equal(w[3], 4);
  assert_int_equal(w[7], 0);
  arena_free(&a);
}

static void test_fmt_count(void **state) {
  (void)state;
  char b[32];
  assert_string_equal(fmt_count(b, sizeof b, 0), "0");
  assert_string_equal(fmt_count(b, sizeof b, 999), "999");
  assert_string_equal(fmt_count(b, sizeof b, 1000), "1,000");
  assert_string_equal(fmt_count(b, sizeof b, 109529856), "109,529,856");
  assert_string_equal(fmt_count(b, sizeof b, -1234567), "-1,234,567");
}

static void test_fmt_si(void **state) {
  (void)state;
  char b[32];
  assert_string_equal(fmt_si(b, sizeof b, 999, "FLOP"), "999 FLOP");
  assert_string_equal(fmt_si(b, sizeof b, 11690, "FLOP"), "11.69 KFLOP");
  assert_string_equal(fmt_si(b, sizeof b, 58.64e9, "FLOP"), "58.64 GFLOP");
  assert_string_equal(fmt_si(b, sizeof b, 999999.9, "B"), "1.00 MB"); // never "1000.00 KB"
  assert_string_equal(fmt_si(b, sizeof b, 438118424, "B"), "438.12 MB");
}

static char *read_all(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  static char buf[256];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

static int count_entries(const char *dir) {
  DIR *d = opendir(dir);
  int n = 0;
  for (struct dirent *e; (e = readdir(d));)
    n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

static void test_write_file_atomic(void **state) {
  (void)state;
  char dir[] = "/tmp/anec-util-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char path[128];
  snprintf(path, sizeof path, "%s/out.ir", dir);
  assert_true(cli_write_file(path, "first\n", 6));
  assert_true(cli_write_file(path, "second\n", 7)); // replaces, never appends
  assert_string_equal(read_all(path), "second\n");
  assert_int_equal(count_entries(dir), 1);          // no temp file left behind
  unlink(path);
  rmdir(dir);
}

static void test_write_file_failure_leaves_nothing(void **state) {
  (void)state;
  char dir[] = "/tmp/anec-util-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char path[128];
  snprintf(path, sizeof path, "%s/missing/out.ir", dir); // parent does not exist
  fflush(stderr);
  int saved = dup(2), null = open("/dev/null", O_WRONLY); // the error message is expected
  dup2(null, 2);
  bool ok = cli_write_file(path, "x", 1);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  close(null);
  assert_false(ok);
  assert_int_equal(count_entries(dir), 0);
  rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_arena_zeroed_aligned),
      cmocka_unit_test(test_arena_strings),
      cmocka_unit_test(test_fmt_count),
      cmocka_unit_test(test_fmt_si),
      cmocka_unit_test(test_write_file_atomic),
      cmocka_unit_test(test_write_file_failure_leaves_nothing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
