// test_diag.c — the exact text of diagnostics (header, quoted line, caret),
// the error cap, "did you mean" suggestions, and source_load's checks of
// model files (NUL bytes, malformed UTF-8, unreadable paths).
#define _POSIX_C_SOURCE 200809L
#include "driver.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// A Diag writing into a temporary file, and what it wrote.
typedef struct Fixture {
  Diag d;
  char *text;
  char dir[64]; // a temporary directory for source_load tests
} Fixture;

static int fixture_setup(void **state) {
  Fixture *fx = calloc(1, sizeof *fx);
  FILE *out = tmpfile();
  if (!fx || !out)
    return -1;
  diag_init(&fx->d, out);
  strcpy(fx->dir, "/tmp/anec-test-diag-XXXXXX");
  if (!mkdtemp(fx->dir))
    return -1;
  *state = fx;
  return 0;
}

static int fixture_teardown(void **state) {
  Fixture *fx = *state;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
  if (system(cmd) != 0)
    return -1;
  fclose(fx->d.out);
  diag_free(&fx->d);
  free(fx->text);
  free(fx);
  return 0;
}

// Everything written so far.
static const char *output(Fixture *fx) {
  FILE *out = fx->d.out;
  fflush(out);
  long n = ftell(out);
  free(fx->text);
  fx->text = calloc((size_t)n + 1, 1);
  rewind(out);
  assert_int_equal(fread(fx->text, 1, (size_t)n, out), (size_t)n);
  return fx->text;
}

static int add(Fixture *fx, const char *name, const char *text) {
  return diag_add_file(&fx->d, name, text, strlen(text));
}

static SrcLoc span(int file, int l1, int c1, int l2, int c2) {
  return (SrcLoc){file, l1, c1, l2, c2};
}

//
// Layout of one diagnostic
//

static void test_single_line_range(void **state) {
  Fixture *fx = *state;
  int f = add(fx, "samples/x.anet", "model m { dim = 8 }\n  q = linear(dimm, wq)\n");
  diag_error(&fx->d, span(f, 2, 14, 2, 17), "unknown name '%s'; did you mean '%s'?", "dimm", "dim");
  assert_string_equal(output(fx),
      "samples/x.anet:2:14: error: unknown name 'dimm'; did you mean 'dim'?\n"
      "    2 |   q = linear(dimm, wq)\n"
      "      |              ^~~~\n");
  assert_int_equal(fx->d.errors, 1);
}

static void test_caret_at_column_1(void **state) {
  Fixture *fx = *state;
  int f = add(fx, "m.anet", "x = foo\n");
  diag_warning(&fx->d, span(f, 1, 1, 1, 1), "unused '%s'", "x");
  assert_string_equal(output(fx),
      "m.anet:1:1: warning: unused 'x'\n"
      "    1 | x = foo\n"
      "      | ^\n");
  assert_int_equal(fx->d.warnings, 1);
  assert_int_equal(fx->d.errors, 0);
}

static void test_range_at_end_of_line(void **state) {
  Fixture *fx = *state;
  int f = add(fx, "m.anet", "x = foo\ny = bar");
  diag_error(&fx->d, span(f, 1, 5, 1, 7), "a");
  diag_error(&fx->d, span(f, 2, 5, 2, 7), "b");   // last line, no final newline
  diag_error(&fx->d, span(f, 1, 8, 1, 8), "c");   // just past the end: the newline
  diag_error(&fx->d, span(f, 1, 5, 1, 30), "d");  // range past the end is clamped
  assert_string_equal(output(fx),
      "m.anet:1:5: error: a\n"
      "    1 | x = foo\n"
      "      |     ^~~\n"
      "m.anet:2:5: error: b\n"
      "    2 | y = bar\n"
      "      |     ^~~\n"
      "m.anet:1:8: error: c\n"
      "    1 | x = foo\n"
      "      |        ^\n"
      "m.anet:1:5: error: d\n"
      "    1 | x = foo\n"
      "      |     ^~~~\n");
}

static void test_multi_line_range(void **state) {
  Fixture *fx = *state;
  int f = add(fx, "m.anet", "y = linear(x,\n           w)\n");
  diag_error(&fx->d, span(f, 1, 5, 2, 12), "bad call");
  diag_error(&fx->d, span(f, 1, 14, 2, 12), "at the end");
  assert_string_equal(output(fx),
      "m.anet:1:5: error: bad call\n"
      "    1 | y = linear(x,\n"
      "      |     ^~~~~~~~~\n"
      "m.anet:1:14: error: at the end\n"
      "    1 | y = linear(x,\n"
      "      |              ^\n");
}

static void test_tabs(void **state) {
  Fixture *fx = *state;
  int f = add(fx, "m.anet", "\tx =\tfoo\n");
  diag_error(&fx->d, span(f, 1, 6, 1, 8), "tab");
  assert_string_equal(output(fx),
      "m.anet:1:6: error: tab\n"
      "    1 |  x = foo\n"
      "      |      ^~~\n");
}

static void test_long_line(void **state) {
  Fixture *fx = *state;
  char line[302];
  memset(line, 'a', 300);
  memcpy(line + 9, "bcd", 3);
  line[300] = '\n';
  line[301] = '\0';
  int f = add(fx, "m.anet", line);
  diag_error(&fx->d, span(f, 1, 10, 1, 12), "early");
  diag_error(&fx->d, span(f, 1, 250, 1, 255), "late");
  diag_error(&fx->d, span(f, 1, 199, 1, 255), "across");
  char shown[256], expect[2048];
  snprintf(shown, sizeof shown, "%.9s%s%.188s ...", line, "bcd", line + 12);
  snprintf(expect, sizeof expect,
           "m.anet:1:10: error: early\n    1 | %s\n      | %9s^~~\n"
           "m.anet:1:250: error: late\n    1 | %s\n      | %201s^\n"
           "m.anet:1:199: error: across\n    1 | %s\n      | %198s^~~~\n",
           shown, "", shown, "", shown, "");
  assert_string_equal(output(fx), expect);
}

static void test_cut_does_not_split_a_character(void **state) {
  Fixture *fx = *state;
  char line[260];
  memset(line, 'a', 199);
  memcpy(line + 199, "\xC3\xA9zz\n", 6); // 'é' is bytes 200-201
  int f = add(fx, "m.anet", line);
  diag_error(&fx->d, span(f, 1, 1, 1, 1), "x");
  char expect[1024];
  snprintf(expect, sizeof expect, "m.anet:1:1: error: x\n    1 | %.199s ...\n      | ^\n", line);
  assert_string_equal(output(fx), expect);
}

static void test_utf8_before_caret(void **state) {
  Fixture *fx = *state;
  int f = add(fx, "m.anet", "s = \"h\xC3\xA9llo\" + foo\n");
  diag_error(&fx->d, span(f, 1, 16, 1, 18), "after é");
  diag_error(&fx->d, span(f, 1, 5, 1, 12), "the string");
  assert_string_equal(output(fx),
      "m.anet:1:16: error: after é\n"
      "    1 | s = \"h\xC3\xA9llo\" + foo\n"
      "      |               ^~~\n"
      "m.anet:1:5: error: the string\n"
      "    1 | s = \"h\xC3\xA9llo\" + foo\n"
      "      |     ^~~~~~~\n");
}

static void test_non_printable_bytes(void **state) {
  Fixture *fx = *state;
  const char text[] = "a\x01" "b\x7f" "c\xff" "d\xC2\x85" "e\xE2\x80\xAE" "f = foo\r\n";
  int f = diag_add_file(&fx->d, "m.anet", text, sizeof text - 1);
  diag_error(&fx->d, span(f, 1, 18, 1, 20), "x");
  assert_string_equal(output(fx),
      "m.anet:1:18: error: x\n"
      "    1 | a?b?c?d?e?f = foo\n"
      "      |               ^~~\n");
}

static void test_nul_byte_in_line(void **state) {
  Fixture *fx = *state;
  int f = diag_add_file(&fx->d, "m.anet", "ab\0cd\n", 6);
  diag_error(&fx->d, span(f, 1, 3, 1, 3), "nul");
  assert_string_equal(output(fx),
      "m.anet:1:3: error: nul\n"
      "    1 | ab?cd\n"
      "      |   ^\n");
}

static void test_wide_line_numbers(void **state) {
  Fixture *fx = *state;
  size_t n = 123456;
  char *text = malloc(2 * n + 8);
  for (size_t i = 0; i < n; i++)
    memcpy(text + 2 * i, "x\n", 2);
  int f = diag_add_file(&fx->d, "m.anet", text, 2 * n);
  free(text);
  diag_error(&fx->d, span(f, 9999, 1, 9999, 1), "four");
  diag_error(&fx->d, span(f, 123456, 1, 123456, 1), "six");
  assert_string_equal(output(fx),
      "m.anet:9999:1: error: four\n"
      " 9999 | x\n"
      "      | ^\n"
      "m.anet:123456:1: error: six\n"
      " 123456 | x\n"
      "        | ^\n");
}

static void test_past_eof(void **state) {
  Fixture *fx = *state;
  int f = add(fx, "m.anet", "x = 1\n");
  int e = add(fx, "e.anet", "");
  diag_error(&fx->d, span(f, 2, 1, 2, 1), "unexpected end of file");
  diag_error(&fx->d, span(f, 7, 3, 7, 3), "far");
  diag_error(&fx->d, span(e, 1, 1, 1, 1), "empty");
  assert_string_equal(output(fx),
      "m.anet:2:1: error: unexpected end of file\n"
      "m.anet:7:3: error: far\n"
      "e.anet:1:1: error: empty\n");
}

static void test_no_location(void **state) {
  Fixture *fx = *state;
  diag_error(&fx->d, loc_none(), "cannot read '%s'", "x.anet");
  diag_warning(&fx->d, loc_none(), "w");
  diag_note(&fx->d, loc_none(), "n");
  int f = add(fx, "m.anet", "x\n");
  diag_error(&fx->d, span(f, 0, 0, 0, 0), "whole file");
  diag_error(&fx->d, span(f, 1, 0, 1, 0), "whole line");
  assert_string_equal(output(fx),
      "anec: error: cannot read 'x.anet'\n"
      "anec: warning: w\n"
      "anec: note: n\n"
      "m.anet: error: whole file\n"
      "m.anet:1: error: whole line\n");
}

static void test_note_after_error(void **state) {
  Fixture *fx = *state;
  int f = add(fx, "m.anet", "a = 1\na = 2\n");
  diag_error(&fx->d, span(f, 2, 1, 2, 1), "'a' set twice");
  diag_note(&fx->d, span(f, 1, 1, 1, 1), "first set here");
  assert_string_equal(output(fx),
      "m.anet:2:1: error: 'a' set twice\n"
      "    2 | a = 2\n"
      "      | ^\n"
      "m.anet:1:1: note: first set here\n"
      "    1 | a = 1\n"
      "      | ^\n");
  assert_int_equal(fx->d.errors, 1);
}

static void test_max_errors(void **state) {
  Fixture *fx = *state;
  fx->d.max_errors = 2;
  diag_error(&fx->d, loc_none(), "e1");
  diag_note(&fx->d, loc_none(), "n1");
  diag_error(&fx->d, loc_none(), "e2");
  assert_false(fx->d.stop);
  diag_error(&fx->d, loc_none(), "e3");
  assert_true(fx->d.stop);
  diag_note(&fx->d, loc_none(), "n3");
  diag_warning(&fx->d, loc_none(), "w4");
  diag_error(&fx->d, loc_none(), "e5");
  assert_string_equal(output(fx),
      "anec: error: e1\n"
      "anec: note: n1\n"
      "anec: error: e2\n"
      "anec: fatal: too many errors (2), stopping\n");
  assert_int_equal(fx->d.errors, 4);
  assert_int_equal(fx->d.warnings, 1);
}

static void test_max_errors_default(void **state) {
  Fixture *fx = *state;
  for (int i = 0; i < 25; i++)
    diag_error(&fx->d, loc_none(), "e%d", i + 1);
  const char *out = output(fx);
  assert_non_null(strstr(out, "anec: error: e20\nanec: fatal: too many errors (20), stopping\n"));
  assert_null(strstr(out, "e21"));
  assert_int_equal(fx->d.errors, 25);
}

static void test_loc_span(void **state) {
  (void)state;
  SrcLoc a = span(3, 1, 5, 1, 9), b = span(3, 4, 2, 4, 7);
  SrcLoc s = loc_span(a, b);
  assert_int_equal(s.file, 3);
  assert_int_equal(s.first_line, 1);
  assert_int_equal(s.first_column, 5);
  assert_int_equal(s.last_line, 4);
  assert_int_equal(s.last_column, 7);
  assert_int_equal(loc_span(loc_none(), b).first_line, 4);
  assert_int_equal(loc_none().file, -1);
}

//
// Suggestions
//

static void test_suggest(void **state) {
  (void)state;
  const char *const c[] = {"dim", "heads", "hidden", "layers", "vocab", "seq", "kv_heads"};
  int n = (int)(sizeof c / sizeof *c);
  assert_string_equal(diag_suggest("dimm", c, n), "dim");
  assert_null(diag_suggest("haeds", c, n));                     // 2 edits, limit 1
  assert_string_equal(diag_suggest("hiden", c, n), "hidden");
  assert_string_equal(diag_suggest("kv_head", c, n), "kv_heads");
  assert_string_equal(diag_suggest("Vocab", c, n), "vocab");    // case-sensitive: 1 edit
  assert_null(diag_suggest("xyz", c, n));
  assert_null(diag_suggest("dim", c, n));                       // never the name itself
  assert_null(diag_suggest("embedding", c, n));
  assert_null(diag_suggest("x", NULL, 0));
}

static void test_suggest_limits(void **state) {
  (void)state;
  const char *const c[] = {"seq", "sex", "set"};
  assert_string_equal(diag_suggest("seg", c, 3), "seq"); // tie: the first
  const char *const d[] = {"ab", "xy"};
  assert_string_equal(diag_suggest("a", d, 2), "ab");    // limit max(1, 1/3)
  const char *const e[] = {"transpose"};
  assert_null(diag_suggest("trnspoes", e, 1));                        // 3 edits, limit 2
  assert_string_equal(diag_suggest("transpsoe", e, 1), "transpose");  // 2 edits, limit 3
}

//
// source_load
//

static char *write_file(Fixture *fx, const char *name, const char *data, size_t n) {
  static char path[128];
  snprintf(path, sizeof path, "%s/%s", fx->dir, name);
  FILE *fp = fopen(path, "wb");
  assert_non_null(fp);
  assert_int_equal(fwrite(data, 1, n, fp), n);
  fclose(fp);
  return path;
}

static void test_source_valid(void **state) {
  Fixture *fx = *state;
  const char text[] = "model m { dim = 8 }\n// h\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\n";
  char *path = write_file(fx, "ok.anet", text, sizeof text - 1);
  int id = source_load(&fx->d, path);
  assert_true(id >= 0);
  assert_string_equal(fx->d.files[id].name, path);
  assert_int_equal(fx->d.files[id].len, sizeof text - 1);
  assert_memory_equal(fx->d.files[id].text, text, sizeof text);
  assert_string_equal(output(fx), "");
  assert_int_equal(fx->d.errors, 0);
}

static void test_source_bom(void **state) {
  Fixture *fx = *state;
  char *path = write_file(fx, "bom.anet", "\xEF\xBB\xBFx = 1\n", 9);
  int id = source_load(&fx->d, path);
  assert_true(id >= 0);
  assert_string_equal(fx->d.files[id].text, "   x = 1\n");
}

static void test_source_empty(void **state) {
  Fixture *fx = *state;
  char *path = write_file(fx, "empty.anet", "", 0);
  int id = source_load(&fx->d, path);
  assert_true(id >= 0);
  assert_int_equal(fx->d.files[id].len, 0);
  assert_string_equal(fx->d.files[id].text, "");
  assert_int_equal(fx->d.errors, 0);
}

// Loads `data` from a file named m.anet in the fixture's directory, chdir'ed
// there so the path in messages is short; expects failure.
#define LOAD_BAD(state, lit) load_bad(*(state), lit, sizeof lit - 1)
static const char *load_bad(Fixture *fx, const char *data, size_t n) {
  write_file(fx, "m.anet", data, n);
  char cwd[4096];
  assert_non_null(getcwd(cwd, sizeof cwd));
  assert_int_equal(chdir(fx->dir), 0);
  int id = source_load(&fx->d, "m.anet");
  assert_int_equal(chdir(cwd), 0);
  assert_int_equal(id, -1);
  assert_int_equal(fx->d.errors, 1);
  assert_int_equal(fx->d.nfiles, 1); // registered all the same
  return output(fx);
}

static void test_source_nul(void **state) {
  assert_string_equal(LOAD_BAD(state, "x = 1\ny = a\0b\0\n"),
      "m.anet:2:6: error: NUL byte in source file\n"
      "    2 | y = a?b?\n"
      "      |      ^\n");
}

static void test_source_bad_byte(void **state) {
  assert_string_equal(LOAD_BAD(state, "x = \xff\xfe\n"),
      "m.anet:1:5: error: invalid UTF-8 byte 0xff in source file\n"
      "    1 | x = ??\n"
      "      |     ^\n");
}

static void test_source_overlong(void **state) {
  assert_string_equal(LOAD_BAD(state, "\xC3\xA9\n// \xC0\x80\n"),
      "m.anet:2:4: error: invalid UTF-8 byte 0xc0 in source file\n"
      "    2 | // ??\n"
      "      |    ^\n");
}

static void test_source_surrogate(void **state) {
  assert_string_equal(LOAD_BAD(state, "a\xED\xA0\x80z"),
      "m.anet:1:2: error: invalid UTF-8 byte 0xed in source file\n"
      "    1 | a???z\n"
      "      |  ^\n");
}

static void test_source_truncated(void **state) {
  assert_string_equal(LOAD_BAD(state, "x = 1\n\xE2\x82"),
      "m.anet:2:1: error: invalid UTF-8 byte 0xe2 in source file\n"
      "    2 | ??\n"
      "      | ^\n");
}

static void test_source_too_high(void **state) {
  assert_string_equal(LOAD_BAD(state, "\xF4\x90\x80\x80"),
      "m.anet:1:1: error: invalid UTF-8 byte 0xf4 in source file\n"
      "    1 | ????\n"
      "      | ^\n");
}

static void test_source_missing(void **state) {
  Fixture *fx = *state;
  char expect[256];
  snprintf(expect, sizeof expect, "anec: error: cannot read '/nonexistent/m.anet': %s\n",
           strerror(ENOENT));
  assert_int_equal(source_load(&fx->d, "/nonexistent/m.anet"), -1);
  assert_string_equal(output(fx), expect);
  assert_int_equal(fx->d.nfiles, 0);
}

static void test_source_directory(void **state) {
  Fixture *fx = *state;
  char expect[256];
  snprintf(expect, sizeof expect, "anec: error: cannot read '%s': not a regular file\n",
           fx->dir);
  assert_int_equal(source_load(&fx->d, fx->dir), -1);
  assert_string_equal(output(fx), expect);
}

// A FIFO is refused at once, not waited on (opening it would block until a
// writer came).
static void test_source_fifo(void **state) {
  Fixture *fx = *state;
  char path[300], expect[400];
  snprintf(path, sizeof path, "%s/model.fifo", fx->dir);
  assert_int_equal(mkfifo(path, 0600), 0);
  snprintf(expect, sizeof expect, "anec: error: cannot read '%s': not a regular file\n", path);
  assert_int_equal(source_load(&fx->d, path), -1);
  unlink(path);
  assert_string_equal(output(fx), expect);
}

static void test_source_too_large(void **state) {
  Fixture *fx = *state;
  char *path = write_file(fx, "big.anet", "", 0);
  assert_int_equal(truncate(path, (64 << 20) + 1), 0); // sparse: cheap
  char expect[256];
  snprintf(expect, sizeof expect,
           "anec: error: cannot read '%s': file is larger than 64 MiB\n", path);
  assert_int_equal(source_load(&fx->d, path), -1);
  assert_string_equal(output(fx), expect);
}

static void test_source_large_file_late_error(void **state) {
  Fixture *fx = *state;
  size_t n = 10 << 20;
  char *text = malloc(n);
  for (size_t i = 0; i < n; i++)
    text[i] = i % 64 == 63 ? '\n' : 'x';
  text[n - 2] = '\0';
  write_file(fx, "m.anet", text, n);
  free(text);
  char cwd[4096];
  assert_non_null(getcwd(cwd, sizeof cwd));
  assert_int_equal(chdir(fx->dir), 0);
  assert_int_equal(source_load(&fx->d, "m.anet"), -1);
  assert_int_equal(chdir(cwd), 0);
  for (int i = 0; i < 1000; i++) // the line index makes each one cheap
    diag_warning(&fx->d, span(0, 163840, 62, 163840, 62), "w");
  const char *out = output(fx);
  const char *first = "m.anet:163840:63: error: NUL byte in source file\n";
  assert_memory_equal(out, first, strlen(first));
}

static void test_prelude(void **state) {
  Fixture *fx = *state;
  int id = source_load_prelude(&fx->d);
  assert_true(id >= 0);
  assert_string_equal(fx->d.files[id].name, "<prelude>");
  assert_string_equal(fx->d.files[id].text, anec_prelude_text);
}

//
// UTF-8
//

static void test_utf8_decode(void **state) {
  (void)state;
  uint32_t cp = 0;
  assert_int_equal(utf8_decode("A", 1, &cp), 1);
  assert_int_equal(cp, 'A');
  assert_int_equal(utf8_decode("\xC3\xA9", 2, &cp), 2);
  assert_int_equal(cp, 0xE9);
  assert_int_equal(utf8_decode("\xEF\xBF\xBF", 3, &cp), 3);
  assert_int_equal(cp, 0xFFFF);
  assert_int_equal(utf8_decode("\xF4\x8F\xBF\xBF", 4, &cp), 4);
  assert_int_equal(cp, 0x10FFFF);
  assert_int_equal(utf8_decode("\xC3\xA9", 1, NULL), 0);          // cut short
  assert_int_equal(utf8_decode("\xC1\xBF", 2, NULL), 0);          // overlong
  assert_int_equal(utf8_decode("\xE0\x9F\xBF", 3, NULL), 0);      // overlong
  assert_int_equal(utf8_decode("\xF0\x8F\xBF\xBF", 4, NULL), 0);  // overlong
  assert_int_equal(utf8_decode("\xED\xBF\xBF", 3, NULL), 0);      // surrogate
  assert_int_equal(utf8_decode("\xF8\x88\x80\x80\x80", 5, NULL), 0);
  assert_int_equal(utf8_decode("\x80", 1, NULL), 0);
  assert_int_equal(utf8_decode("\xE2\x28\xA1", 3, NULL), 0);
  assert_int_equal(utf8_decode("", 0, NULL), 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, fixture_setup, fixture_teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_single_line_range),  T(test_caret_at_column_1),
      T(test_range_at_end_of_line), T(test_multi_line_range),
      T(test_tabs),               T(test_long_line),
      T(test_cut_does_not_split_a_character), T(test_utf8_before_caret),
      T(test_non_printable_bytes), T(test_nul_byte_in_line),
      T(test_wide_line_numbers),  T(test_past_eof),
      T(test_no_location),        T(test_note_after_error),
      T(test_max_errors),         T(test_max_errors_default),
      T(test_loc_span),           T(test_suggest),
      T(test_suggest_limits),     T(test_source_valid),
      T(test_source_bom),         T(test_source_empty),
      T(test_source_nul),         T(test_source_bad_byte),
      T(test_source_overlong),    T(test_source_surrogate),
      T(test_source_truncated),   T(test_source_too_high),
      T(test_source_missing),     T(test_source_directory),   T(test_source_fifo),
      T(test_source_too_large),   T(test_source_large_file_late_error),
      T(test_prelude),            T(test_utf8_decode),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
