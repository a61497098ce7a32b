// test_robust.c — bad input through the whole front end (front_compile:
// source checks, lexer, parser, lowering, passes) never crashes or hangs:
// every sample truncated, mutated byte by byte and line by line (a fixed
// seed makes the runs repeatable), huge and deeply nested files, long
// chains of statements, layer calls and repeats. The invariant checked
// everywhere: front_compile returns NULL with errors reported, or a graph
// that verifies with no errors.
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "driver.h"

static FILE *devnull;     // where diagnostics go
static char tmpdir[64];
static char model_path[128]; // every input is written here, then compiled

static const char *const samples[] = {
    "stories15m", "stories110m", "stories260k", "qwen3_0_6b", "gpt2_124m", "layer768",
};
enum { NSAMPLES = sizeof samples / sizeof *samples };

static int group_setup(void **state) {
  (void)state;
  devnull = fopen("/dev/null", "w");
  strcpy(tmpdir, "/tmp/anec-test-robust-XXXXXX");
  if (!devnull || !mkdtemp(tmpdir))
    return -1;
  snprintf(model_path, sizeof model_path, "%s/m.anet", tmpdir);
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  fclose(devnull);
  unlink(model_path);
  return rmdir(tmpdir);
}

//
// Deterministic randomness: splitmix64 with a fixed seed per test
//
static uint64_t rng;

static uint64_t rnd(void) {
  uint64_t z = (rng += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static size_t rnd_below(size_t n) {
  return (size_t)(rnd() % n);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

//
// Files
//
static char *read_sample(const char *name, size_t *len) {
  char path[512];
  snprintf(path, sizeof path, "%s/samples/%s.anet", ANEC_SOURCE_DIR, name);
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  assert_int_equal(fseek(f, 0, SEEK_END), 0);
  long n = ftell(f);
  assert_true(n > 0);
  rewind(f);
  char *text = malloc((size_t)n + 1);
  assert_non_null(text);
  assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  text[n] = '\0';
  *len = (size_t)n;
  return text;
}

// A new file each time: rewriting a truncated one makes ext4 flush it on close.
static void write_file(const char *path, const char *text, size_t len) {
  unlink(path);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(text, 1, len, f), len);
  assert_int_equal(fclose(f), 0);
}

//
// One run of the front end
//
typedef struct Result {
  bool compiled;
  int errors;
  bool stop;
  double secs;
} Result;

// Compiles `text`; fails the test, naming the input `what`, unless
// front_compile returned NULL with errors or a verified graph without any.
// A failing input is kept in /tmp/anec-test-robust-failure.anet.
static Result run_text(const char *text, size_t len, const char *what) {
  write_file(model_path, text, len);
  Arena a = {0};
  Diag d;
  diag_init(&d, devnull);
  FrontOpts o = {0};
  double t0 = now();
  Graph *g = front_compile(&a, &d, model_path, &o);
  Result r = {.compiled = g != NULL, .errors = d.errors, .stop = d.stop, .secs = now() - t0};
  bool good = g ? d.errors == 0 && graph_verify(g, &d) && d.errors == 0 : d.errors > 0;
  int errors = d.errors;
  diag_free(&d);
  arena_free(&a);
  if (!good) {
    write_file("/tmp/anec-test-robust-failure.anet", text, len);
    fail_msg("%s: front_compile returned %s with %d errors (input kept in "
             "/tmp/anec-test-robust-failure.anet)",
             what, g ? "a graph" : "NULL", errors);
  }
  return r;
}

static Result run_str(const char *text, const char *what) {
  return run_text(text, strlen(text), what);
}

// A growable byte buffer, for building inputs.
typedef struct Buf {
  char *p;
  size_t n, cap;
} Buf;

static void buf_add(Buf *b, const char *s, size_t n) {
  if (b->n + n + 1 > b->cap) {
    b->cap = 2 * (b->n + n + 1);
    b->p = realloc(b->p, b->cap);
    assert_non_null(b->p);
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = '\0';
}

static void buf_str(Buf *b, const char *s) {
  buf_add(b, s, strlen(s));
}

static void buf_repeat(Buf *b, const char *s, size_t times) {
  for (size_t i = 0; i < times; i++)
    buf_str(b, s);
}

//
// Mutations of the samples
//

static void test_sample_truncations(void **state) {
  (void)state;
  enum { CUTS = 200 };
  for (int s = 0; s < NSAMPLES; s++) {
    size_t len;
    char *text = read_sample(samples[s], &len);
    int compiled = 0;
    for (int i = 0; i < CUTS; i++) {
      size_t cut = len * (size_t)i / CUTS;
      char what[128];
      snprintf(what, sizeof what, "%s cut at byte %zu", samples[s], cut);
      compiled += run_text(text, cut, what).compiled;
    }
    print_message("%s: %d truncations, %d compiled\n", samples[s], CUTS, compiled);
    free(text);
  }
}

// The replacement bytes: punctuation, letters, digits, NUL and 0xff.
static const char mutation_bytes[] =
    "(){}[],=:+-*/@\"#\n;"
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_"
    "0123456789"
    "\xff";
enum { NMUTATION_BYTES = sizeof mutation_bytes }; // the final '\0' counts: NUL is one

static void test_sample_byte_mutations(void **state) {
  (void)state;
  enum { MUTATIONS = 300 };
  for (int s = 0; s < NSAMPLES; s++) {
    rng = 0x616e6563u + (uint64_t)s; // fixed seed per sample
    size_t len;
    char *text = read_sample(samples[s], &len);
    char *m = malloc(len + 2);
    assert_non_null(m);
    int compiled = 0;
    for (int i = 0; i < MUTATIONS; i++) {
      size_t at = rnd_below(len), n = len;
      int op = (int)rnd_below(4); // 0, 1: replace; 2: delete; 3: duplicate
      unsigned char c = (unsigned char)mutation_bytes[rnd_below(NMUTATION_BYTES)];
      char what[160];
      memcpy(m, text, len);
      if (op <= 1) {
        m[at] = (char)c;
        snprintf(what, sizeof what, "%s: byte %zu replaced by 0x%02x", samples[s], at, c);
      } else if (op == 2) {
        memmove(m + at, m + at + 1, len - at - 1);
        n = len - 1;
        snprintf(what, sizeof what, "%s: byte %zu deleted", samples[s], at);
      } else {
        memmove(m + at + 1, m + at, len - at);
        n = len + 1;
        snprintf(what, sizeof what, "%s: byte %zu duplicated", samples[s], at);
      }
      compiled += run_text(m, n, what).compiled;
    }
    print_message("%s: %d byte mutations, %d compiled\n", samples[s], MUTATIONS, compiled);
    free(m);
    free(text);
  }
}

// Lines of `text` as [start, end) offsets, the newline included.
static int split_lines(const char *text, size_t len, size_t *start, size_t *end, int max) {
  int n = 0;
  for (size_t i = 0; i < len && n < max;) {
    const char *nl = memchr(text + i, '\n', len - i);
    size_t e = nl ? (size_t)(nl - text) + 1 : len;
    start[n] = i;
    end[n++] = e;
    i = e;
  }
  return n;
}

static void test_sample_line_mutations(void **state) {
  (void)state;
  enum { MUTATIONS = 100, MAX_LINES = 512 };
  static size_t start[MAX_LINES], end[MAX_LINES];
  for (int s = 0; s < NSAMPLES; s++) {
    rng = 0x6c696e65u + (uint64_t)s;
    size_t len;
    char *text = read_sample(samples[s], &len);
    int nlines = split_lines(text, len, start, end, MAX_LINES);
    assert_true(nlines > 2 && nlines < MAX_LINES);
    int compiled = 0;
    for (int i = 0; i < MUTATIONS; i++) {
      int op = (int)rnd_below(3), a = (int)rnd_below((size_t)nlines);
      int b = (a + 1 + (int)rnd_below((size_t)nlines - 1)) % nlines; // b != a
      Buf m = {0};
      char what[160];
      for (int k = 0; k < nlines; k++) {
        int line = k;
        if (op == 0 && k == a)
          continue; // delete line a
        if (op == 2 && (k == a || k == b))
          line = k == a ? b : a; // swap lines a and b
        buf_add(&m, text + start[line], end[line] - start[line]);
        if (op == 1 && k == a)
          buf_add(&m, text + start[line], end[line] - start[line]); // duplicate line a
        if (m.n && m.p[m.n - 1] != '\n')
          buf_str(&m, "\n"); // a moved last line without a newline
      }
      if (op == 0)
        snprintf(what, sizeof what, "%s: line %d deleted", samples[s], a + 1);
      else if (op == 1)
        snprintf(what, sizeof what, "%s: line %d duplicated", samples[s], a + 1);
      else
        snprintf(what, sizeof what, "%s: lines %d and %d swapped", samples[s], a + 1, b + 1);
      compiled += run_text(m.p ? m.p : "", m.n, what).compiled;
      free(m.p);
    }
    print_message("%s: %d line mutations, %d compiled\n", samples[s], MUTATIONS, compiled);
    free(text);
  }
}

//
// Huge inputs
//

enum { TEN_MB = 10 << 20 };

static void test_random_bytes_10mb(void **state) {
  (void)state;
  rng = 0x62797465u;
  char *text = malloc(TEN_MB);
  assert_non_null(text);
  for (size_t i = 0; i < TEN_MB; i++)
    text[i] = (char)(rnd() >> 56);
  Result r = run_text(text, TEN_MB, "10 MB of random bytes");
  free(text);
  assert_false(r.compiled);
  assert_true(r.errors > 0);
  print_message("10 MB random bytes: %.2f s\n", r.secs);
  assert_true(r.secs < 10);
}

static void test_random_printable_10mb(void **state) {
  (void)state;
  rng = 0x61736369u;
  char *text = malloc(TEN_MB);
  assert_non_null(text);
  for (size_t i = 0; i < TEN_MB; i++) {
    uint64_t x = rnd();
    text[i] = (x & 31) == 0 ? '\n' : (char)(' ' + (x >> 32) % 95);
  }
  Result r = run_text(text, TEN_MB, "10 MB of random printable ASCII");
  free(text);
  assert_false(r.compiled);
  assert_true(r.errors >= 20);
  assert_true(r.stop); // the error limit ended the run
  print_message("10 MB random printable text: %.2f s\n", r.secs);
  assert_true(r.secs < 10);
}

static void test_100k_open_parens(void **state) {
  (void)state;
  Buf b = {0};
  buf_str(&b, "model m { a = 1 }\nx = ");
  buf_repeat(&b, "(", 100000);
  buf_str(&b, "\n");
  Result r = run_text(b.p, b.n, "100,000 '('");
  free(b.p);
  assert_false(r.compiled);
}

static void test_100k_open_parens_alone(void **state) {
  (void)state;
  Buf b = {0};
  buf_repeat(&b, "(", 100000);
  Result r = run_text(b.p, b.n, "a file of 100,000 '('");
  free(b.p);
  assert_false(r.compiled);
}

// bison's stack limit: a clean "nested too deeply" error, no crash.
static void test_50k_nested_parens(void **state) {
  (void)state;
  Buf b = {0};
  buf_str(&b, "model m { a = 1 }\ninput t: f32[4]\nx = ");
  buf_repeat(&b, "(", 50000);
  buf_str(&b, "1");
  buf_repeat(&b, ")", 50000);
  buf_str(&b, "\noutput y = t * x\n");
  Result r = run_text(b.p, b.n, "((((1)))) 50,000 deep");
  free(b.p);
  assert_false(r.compiled);
  assert_int_equal(r.errors, 1);
}

static void test_1mb_comment_line(void **state) {
  (void)state;
  Buf b = {0};
  buf_str(&b, "model m { a = 1 }\n// ");
  buf_repeat(&b, "comment ", 1 << 17);
  buf_str(&b, "\ninput t: f32[4]\noutput y = t\n");
  assert_true(b.n > (1 << 20));
  Result r = run_text(b.p, b.n, "a 1 MB comment line");
  free(b.p);
  assert_true(r.compiled);
}

static void test_1mb_flat_list_line(void **state) {
  (void)state;
  Buf b = {0};
  buf_str(&b, "model m { a = 1 }\ninput t: f32[4]\nl = [1");
  buf_repeat(&b, ", 12", 1 << 18);
  buf_str(&b, "]\noutput y = t\n");
  Result r = run_text(b.p, b.n, "a 1 MB list on one line");
  free(b.p);
  assert_true(r.compiled);
}

static void test_1mb_garbage_line(void **state) {
  (void)state;
  Buf b = {0};
  buf_str(&b, "model m { a = 1 }\nx = ");
  buf_repeat(&b, "$", 1 << 20);
  buf_str(&b, "\n");
  Result r = run_text(b.p, b.n, "a 1 MB line of '$'");
  free(b.p);
  assert_false(r.compiled);
  assert_true(r.stop);
}

// 1 + 1 + ... on one 1 MB line: a left-deep tree 262,145 levels deep. The
// lowering bounds its recursion and reports the nesting.
static void test_1mb_sum_chain_line(void **state) {
  (void)state;
  Buf b = {0};
  buf_str(&b, "model m { a = 1 }\ninput t: f32[4]\nx = 1");
  buf_repeat(&b, " + 1", 1 << 18);
  buf_str(&b, "\noutput y = t * x\n");
  Result r = run_text(b.p, b.n, "a 1 MB line '1 + 1 + ...'");
  free(b.p);
  assert_false(r.compiled);
  assert_int_equal(r.errors, 1);
}

//
// Long chains: statements, expressions, layer calls, repeats
//

static void test_200k_statements(void **state) {
  (void)state;
  Buf b = {0};
  buf_str(&b, "model m { a = 1 }\ninput t: f32[4]\nx = 0\n");
  buf_repeat(&b, "x = x + 1\n", 200000);
  buf_str(&b, "output y = t * x\n");
  write_file(model_path, b.p, b.n);
  free(b.p);
  Arena a = {0};
  Diag d;
  diag_init(&d, devnull);
  FrontOpts o = {0};
  double t0 = now();
  Graph *g = front_compile(&a, &d, model_path, &o);
  print_message("200,000 statements: %.2f s\n", now() - t0);
  assert_non_null(g);
  assert_int_equal(d.errors, 0);
  // every statement ran: x reached 200000
  bool found = false;
  for (int i = 0; i < g->nnodes; i++)
    found |= g->nodes[i]->op == OP_CONST && g->nodes[i]->value == 200000.0;
  assert_true(found);
  diag_free(&d);
  arena_free(&a);
}

static Result chain(const char *head, const char *item, int n, const char *tail, const char *what) {
  Buf b = {0};
  buf_str(&b, "model m { a = 1 }\ninput t: f32[4, 4]\nx = ");
  buf_str(&b, head);
  buf_repeat(&b, item, (size_t)n);
  buf_str(&b, tail);
  buf_str(&b, "\noutput y = t\n");
  Result r = run_text(b.p, b.n, what);
  free(b.p);
  return r;
}

// Expression depth below the lowering's limit (1000) compiles...
static void test_deep_expressions_within_limit(void **state) {
  (void)state;
  assert_true(chain("t", " + t", 900, "", "t + t ... 900 terms").compiled);
  assert_true(chain("", "-", 900, "1", "- - ... 1, 900 signs").compiled);
  Buf b = {0};
  buf_repeat(&b, "relu(", 900);
  buf_str(&b, "t");
  buf_repeat(&b, ")", 900);
  assert_true(chain(b.p, "", 0, "", "relu(relu(... 900 deep").compiled);
  free(b.p);
}

// ... and beyond it is a clean error, not a stack overflow.
static void test_deep_expressions_beyond_limit(void **state) {
  (void)state;
  assert_false(chain("t", " + t", 100000, "", "t + t ... 100,000 terms").compiled);
  assert_false(chain("", "-", 5000, "1", "- - ... 1, 5,000 signs").compiled);
  Buf b = {0};
  buf_repeat(&b, "relu(", 4000);
  buf_str(&b, "t");
  buf_repeat(&b, ")", 4000);
  assert_false(chain(b.p, "", 0, "", "relu(relu(... 4,000 deep").compiled);
  free(b.p);
  b = (Buf){0};
  buf_repeat(&b, "linear(", 4000);
  buf_str(&b, "t");
  buf_repeat(&b, ", t)", 4000);
  assert_false(chain(b.p, "", 0, "", "linear(linear(... 4,000 deep").compiled);
  free(b.p);
  b = (Buf){0};
  buf_repeat(&b, "[", 4000);
  buf_repeat(&b, "]", 4000);
  assert_false(chain(b.p, "", 0, "", "[[[...]]] 4,000 deep").compiled);
  free(b.p);
}

// l0 calls l1 ... calls l99: the lowering stops at its call depth limit.
static void test_100_layer_call_chain(void **state) {
  (void)state;
  Buf b = {0};
  buf_str(&b, "model m { a = 1 }\ninput t: f32[4]\n");
  char line[96];
  for (int i = 0; i < 99; i++) {
    snprintf(line, sizeof line, "layer l%d(x) {\n  return l%d(x + 1)\n}\n", i, i + 1);
    buf_str(&b, line);
  }
  buf_str(&b, "layer l99(x) {\n  return x\n}\noutput y = l0(t)\n");
  write_file(model_path, b.p, b.n);
  free(b.p);
  Arena a = {0};
  Diag d;
  char *msgs = NULL;
  size_t n = 0;
  FILE *out = open_memstream(&msgs, &n);
  assert_non_null(out);
  diag_init(&d, out);
  FrontOpts o = {0};
  Graph *g = front_compile(&a, &d, model_path, &o);
  fclose(out);
  assert_null(g);
  assert_int_equal(d.errors, 1);
  if (!strstr(msgs, "layer calls nested deeper than 64"))
    fail_msg("unexpected diagnostics:\n%.2000s", msgs);
  free(msgs);
  diag_free(&d);
  arena_free(&a);
}

static void test_64_layer_call_chain_compiles(void **state) {
  (void)state;
  Buf b = {0};
  buf_str(&b, "model m { a = 1 }\ninput t: f32[4]\n");
  char line[96];
  for (int i = 0; i < 63; i++) {
    snprintf(line, sizeof line, "layer l%d(x) {\n  return l%d(x + 1)\n}\n", i, i + 1);
    buf_str(&b, line);
  }
  buf_str(&b, "layer l63(x) {\n  return x\n}\noutput y = l0(t)\n");
  Result r = run_text(b.p, b.n, "64 nested layer calls");
  free(b.p);
  assert_true(r.compiled);
}

// The largest repeat count: 100,000 copies of a one-node body.
static void test_repeat_100000(void **state) {
  (void)state;
  Result r = run_str("model m { n = 100000 }\n"
                     "input t: f32[4]\n"
                     "y = t\n"
                     "repeat n {\n"
                     "  y = y + 1\n"
                     "}\n"
                     "output y\n",
                     "repeat 100,000");
  print_message("repeat 100,000: %.2f s\n", r.secs);
  assert_true(r.compiled);
  assert_true(r.secs < 30);
}

static void test_repeat_count_out_of_range(void **state) {
  (void)state;
  assert_false(run_str("model m { n = 100001 }\ninput t: f32[4]\ny = t\n"
                       "repeat n {\n  y = y + 1\n}\noutput y\n", "repeat 100,001").compiled);
  assert_false(run_str("model m { n = -1 }\ninput t: f32[4]\ny = t\n"
                       "repeat n {\n  y = y + 1\n}\noutput y\n", "repeat -1").compiled);
  assert_false(run_str("model m { n = 2.5 }\ninput t: f32[4]\ny = t\n"
                       "repeat n {\n  y = y + 1\n}\noutput y\n", "repeat 2.5").compiled);
}

// Nested repeats multiply: 300 x 300 iterations of a body that
// only rebinds a number.
static void test_nested_repeats_of_numbers(void **state) {
  (void)state;
  Result r = run_str("model m { n = 300 }\n"
                     "input t: f32[4]\n"
                     "x = 0\n"
                     "repeat a: n {\n"
                     "  repeat b: n {\n"
                     "    x = x + 1\n"
                     "  }\n"
                     "}\n"
                     "output y = t * x\n",
                     "300 x 300 repeats");
  print_message("300 x 300 nested repeats: %.2f s\n", r.secs);
  assert_true(r.compiled);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sample_truncations),
      cmocka_unit_test(test_sample_byte_mutations),
      cmocka_unit_test(test_sample_line_mutations),
      cmocka_unit_test(test_random_bytes_10mb),
      cmocka_unit_test(test_random_printable_10mb),
      cmocka_unit_test(test_100k_open_parens),
      cmocka_unit_test(test_100k_open_parens_alone),
      cmocka_unit_test(test_50k_nested_parens),
      cmocka_unit_test(test_1mb_comment_line),
      cmocka_unit_test(test_1mb_flat_list_line),
      cmocka_unit_test(test_1mb_garbage_line),
      cmocka_unit_test(test_1mb_sum_chain_line),
      cmocka_unit_test(test_200k_statements),
      cmocka_unit_test(test_deep_expressions_within_limit),
      cmocka_unit_test(test_deep_expressions_beyond_limit),
      cmocka_unit_test(test_100_layer_call_chain),
      cmocka_unit_test(test_64_layer_call_chain_compiles),
      cmocka_unit_test(test_repeat_100000),
      cmocka_unit_test(test_repeat_count_out_of_range),
      cmocka_unit_test(test_nested_repeats_of_numbers),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
