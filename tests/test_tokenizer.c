// test_tokenizer.c — llama2.c's tokenizer on the Llama-2 vocabulary: known
// encodings, encode/decode round trips of real text, byte fallback, and an
// error (never a crash) for each way a tokenizer file can be wrong.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "llm.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOKENIZER ANEC_SOURCE_DIR "/samples/data/tokenizer.bin"
#define VOCAB 32000

static int setup(void **state) {
  Tokenizer *t = malloc(sizeof *t);
  RtDiag d = {.out = stderr};
  if (!t || !tok_load(TOKENIZER, VOCAB, t, &d)) {
    free(t);
    return -1;
  }
  *state = t;
  return 0;
}

static int teardown(void **state) {
  tok_free(*state);
  free(*state);
  return 0;
}

static void expect_ids(const Tokenizer *t, const char *text, bool bos, bool eos, const int *want,
                       int nwant) {
  int *ids = malloc((strlen(text) + 3) * sizeof *ids);
  int n = tok_encode(t, text, bos, eos, ids);
  for (int i = 0; i < n && i < nwant; i++)
    if (ids[i] != want[i])
      fail_msg("\"%s\": id %d is %d, expected %d", text, i, ids[i], want[i]);
  assert_int_equal(n, nwant);
  free(ids);
}

static void test_known_encodings(void **state) {
  const Tokenizer *t = *state;
  assert_int_equal(t->vocab, VOCAB);
  assert_int_equal(t->max_len, 27);
  expect_ids(t, "I believe the meaning of life is", true, false,
             (const int[]){1, 306, 4658, 278, 6593, 310, 2834, 338}, 8);
  expect_ids(t, "", true, false, (const int[]){1}, 1);
  expect_ids(t, "", false, false, NULL, 0);
  expect_ids(t, "", true, true, (const int[]){1, 2}, 2);
  expect_ids(t, "I believe the meaning of life is", false, true,
             (const int[]){306, 4658, 278, 6593, 310, 2834, 338, 2}, 8);
  expect_ids(t, " ", false, false, (const int[]){259}, 1); // dummy prefix + " " merge into "  "
  expect_ids(t, "\xC3\xA9", false, false, (const int[]){904}, 1); // " " + "é" (29948) merge
}

// Concatenates the decoded tokens ids[from..n) (each after its predecessor).
static char *decode_all(const Tokenizer *t, const int *ids, int n, int from) {
  size_t cap = 16, len = 0;
  char *s = malloc(cap);
  s[0] = '\0';
  for (int i = from; i < n; i++) {
    const char *p = tok_decode(t, i > 0 ? ids[i - 1] : -1, ids[i]);
    size_t k = strlen(p);
    if (len + k + 1 > cap)
      s = realloc(s, cap = 2 * (len + k + 1));
    memcpy(s + len, p, k + 1);
    len += k;
  }
  return s;
}

static void expect_round_trip(const Tokenizer *t, const char *text) {
  int *ids = malloc((strlen(text) + 3) * sizeof *ids);
  int n = tok_encode(t, text, true, false, ids);
  assert_true(n >= 1 && n <= (int)strlen(text) + 2);
  assert_int_equal(ids[0], 1);
  for (int i = 0; i < n; i++)
    assert_true(ids[i] >= 0 && ids[i] < t->vocab);
  char *back = decode_all(t, ids, n, 1);
  if (strcmp(back, text))
    fail_msg("round trip:\n[%s]\nbecame\n[%s]", text, back);
  free(back);
  free(ids);
}

static char *read_text(const char *path, size_t max) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  char *s = malloc(max + 1);
  size_t n = fread(s, 1, max, f);
  fclose(f);
  s[n] = '\0';
  return s;
}

static void test_round_trip(void **state) {
  const Tokenizer *t = *state;
  char *text = read_text(ANEC_SOURCE_DIR "/samples/data/tinystories_excerpt.txt", 4000);
  char *end = text;
  for (int lines = 0; lines < 9 && (end = strchr(end, '\n')); lines++)
    end++; // the first nine lines: paragraphs and the blank lines between them
  assert_non_null(end);
  *end = '\0';
  expect_round_trip(t, text);
  const char *line = strchr(text, '\n');
  *(char *)line = '\0';
  expect_round_trip(t, text); // one line alone
  expect_round_trip(t, "Hello, world!\n\tTabs, \"quotes\", 123 and caf\xC3\xA9.");
  expect_round_trip(t, "x");
  free(text);
}

// run.c's merge loop written out plainly (every pair looked up again after
// each merge, pieces found by a search of our own), to check the encoder's
// cached pairs against on real text.
static const Tokenizer *naive_t;
static int cmp_ids(const void *a, const void *b) {
  return strcmp(naive_t->pieces[*(const int *)a], naive_t->pieces[*(const int *)b]);
}

static int naive_lookup(const int *order, const char *s) {
  int lo = 0, hi = naive_t->vocab - 1;
  while (lo <= hi) {
    int mid = (lo + hi) / 2, c = strcmp(naive_t->pieces[order[mid]], s);
    if (!c)
      return order[mid];
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid - 1;
  }
  return -1;
}

static int naive_merge(const int *order, int *ids, int n) {
  char buf[128];
  for (;;) {
    float best = -1e10f;
    int at = -1, id = -1;
    for (int i = 0; i < n - 1; i++) {
      snprintf(buf, sizeof buf, "%s%s", naive_t->pieces[ids[i]], naive_t->pieces[ids[i + 1]]);
      int k = naive_lookup(order, buf);
      if (k != -1 && naive_t->scores[k] > best)
        best = naive_t->scores[k], id = k, at = i;
    }
    if (at == -1)
      return n;
    ids[at] = id;
    for (int i = at + 1; i < n - 1; i++)
      ids[i] = ids[i + 1];
    n--;
  }
}

// Compares the encodings of every line of a file (up to max lines).
static void compare_lines(const Tokenizer *t, const int *order, const char *path, int max) {
  char *text = read_text(path, 120000), *line = text, *nl;
  int *a = malloc(120000 * sizeof *a), *b = malloc(120000 * sizeof *b), lines = 0;
  for (; lines < max && (nl = strchr(line, '\n')); line = nl + 1, lines++) {
    *nl = '\0';
    int n = tok_encode(t, line, true, false, a);
    memcpy(b, a, (size_t)n * sizeof *a); // the initial tokens: before any merge ...
    int m = 1 + (*line != '\0');
    for (const char *c = line; *c;) { // ... one per codepoint (these texts have pieces for all)
      int len = 1;
      while ((c[len] & 0xC0) == 0x80)
        len++;
      char cp[8] = {0};
      memcpy(cp, c, (size_t)len);
      b[m++] = naive_lookup(order, cp);
      assert_true(b[m - 1] >= 0);
      c += len;
    }
    b[0] = 1;
    if (*line)
      b[1] = naive_lookup(order, " ");
    m = naive_merge(order, b, m);
    assert_int_equal(n, m);
    assert_memory_equal(a, b, (size_t)n * sizeof *a);
  }
  assert_int_equal(lines, max);
  free(a), free(b), free(text);
}

static void test_matches_plain_merges(void **state) {
  const Tokenizer *t = *state;
  int *order = malloc((size_t)t->vocab * sizeof *order);
  for (int i = 0; i < t->vocab; i++)
    order[i] = i;
  naive_t = t;
  qsort(order, (size_t)t->vocab, sizeof *order, cmp_ids);
  compare_lines(t, order, ANEC_SOURCE_DIR "/samples/data/tinystories_excerpt.txt", 150);
  compare_lines(t, order, ANEC_SOURCE_DIR "/samples/data/tinyshakespeare.txt", 1000);
  free(order);
}

static void test_byte_fallback(void **state) {
  const Tokenizer *t = *state;
  // U+1F600 is not a piece: its four bytes F0 9F 98 80 become <0xF0> ... <0x80>.
  expect_ids(t, "\xF0\x9F\x98\x80", false, false, (const int[]){29871, 0xF0 + 3, 0x9F + 3,
                                                                 0x98 + 3, 0x80 + 3}, 5);
  expect_ids(t, "\x01", true, false, (const int[]){1, 29871, 4}, 3);
  assert_string_equal(t->pieces[4], "<0x01>");
  assert_string_equal(tok_decode(t, 29871, 4), "\x01");
  assert_string_equal(tok_decode(t, 5, 0x0A + 3), "\n");
  assert_int_equal(tok_decode(t, 1, 3)[0], '\0'); // <0x00>: the empty string
  expect_round_trip(t, "a\x01" "b \xF0\x9F\x98\x80!");
  expect_round_trip(t, "\xFF\xFE stray \x80\x80 bytes"); // invalid UTF-8 survives as bytes
}

static void test_decode(void **state) {
  const Tokenizer *t = *state;
  assert_string_equal(tok_decode(t, 1, 306), "I"); // " I" after BOS
  assert_string_equal(tok_decode(t, 306, 4658), " believe");
  assert_string_equal(tok_decode(t, 2, 4658), " believe");
  assert_string_equal(tok_decode(t, 1, -1), "");
  assert_string_equal(tok_decode(t, 1, VOCAB), "");
}

// Loads `bytes` as a tokenizer of `vocab` pieces; returns the error text ("" if none).
static char errbuf[4096];
static const char *load_result(const void *bytes, size_t n, int vocab) {
  char path[] = "/tmp/test_tokenizer.XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, bytes, n), (ssize_t)n);
  close(fd);
  FILE *out = fmemopen(errbuf, sizeof errbuf, "w");
  RtDiag d = {.out = out};
  Tokenizer t;
  bool ok = tok_load(path, vocab, &t, &d);
  fclose(out);
  unlink(path);
  assert_int_equal(ok, d.errors == 0);
  if (ok) {
    tok_free(&t);
    errbuf[0] = '\0';
  } else {
    assert_null(t.pieces);
    assert_non_null(strstr(errbuf, "/tmp/test_tokenizer."));
    assert_non_null(strstr(errbuf, ": error: "));
  }
  return errbuf;
}

static void expect_error(const void *bytes, size_t n, int vocab, const char *want) {
  const char *e = load_result(bytes, n, vocab);
  if (!strstr(e, want))
    fail_msg("expected an error with '%s', got '%s'", want, e);
}

static void test_errors(void **state) {
  (void)state;
  FILE *f = fopen(TOKENIZER, "rb");
  assert_non_null(f);
  static unsigned char real[433869];
  assert_int_equal(fread(real, 1, sizeof real, f), sizeof real);
  fclose(f);
  assert_string_equal(load_result(real, sizeof real, VOCAB), "");
  assert_string_equal(load_result(real, sizeof real, 512), ""); // a prefix of the pieces
  expect_error(real, sizeof real, VOCAB + 1, "has only 32000 pieces");
  expect_error(real, sizeof real / 2, VOCAB, "truncated");
  expect_error(real, sizeof real - 1, VOCAB, "truncated: piece 31999");
  expect_error(real, 6, VOCAB, "truncated in piece 0");
  expect_error(real, 4, VOCAB, "has only 0 pieces");
  expect_error(real, 0, VOCAB, "truncated: a tokenizer file starts with");
  expect_error(real, 3, VOCAB, "found 3 bytes");
  expect_error(real, sizeof real, 0, "vocabulary size 0");
  unsigned char neg[] = {27, 0, 0, 0, 0, 0, 0, 0, 0xFE, 0xFF, 0xFF, 0xFF, 'a', 'b'};
  expect_error(neg, sizeof neg, 1, "piece 0 has a negative length -2");
  unsigned char huge[] = {27, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0x7F, 'a', 'b'};
  expect_error(huge, sizeof huge, 1, "runs past the end");
  unsigned char badmax[] = {0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 1, 0, 0, 0, 'a'};
  expect_error(badmax, sizeof badmax, 1, "bad max_token_length -1");
  unsigned char tiny[] = {1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 'a'};
  assert_string_equal(load_result(tiny, sizeof tiny, 1), "");
  // Corrupted bytes anywhere in the first pieces: loaded or an error, never a crash.
  static unsigned char mutant[4096];
  srand(11);
  for (int i = 0; i < 300; i++) {
    memcpy(mutant, real, sizeof mutant);
    for (int k = 0; k < 1 + i % 4; k++)
      mutant[rand() % 4096] = (unsigned char)rand();
    load_result(mutant, sizeof mutant, 300);
  }

  Tokenizer t;
  char buf[512];
  FILE *out = fmemopen(buf, sizeof buf, "w");
  RtDiag d = {.out = out};
  assert_false(tok_load("/nonexistent/tokenizer.bin", VOCAB, &t, &d));
  assert_false(tok_load("/tmp", VOCAB, &t, &d));
  fclose(out);
  assert_int_equal(d.errors, 2);
  assert_non_null(strstr(buf, "/nonexistent/tokenizer.bin: error: cannot open: "));
  assert_non_null(strstr(buf, "/tmp: error: cannot open: not a regular file"));
}

// A vocabulary without byte pieces or " ": byte fallback becomes <unk>, no
// dummy prefix; nothing reads outside the vocabulary.
static void test_small_vocab(void **state) {
  (void)state;
  static const char *const pieces[] = {"<unk>", "<s>", "</s>", "a", "aa"};
  unsigned char bytes[128];
  size_t n = 0;
  memcpy(bytes, &(int32_t){5}, 4), n += 4; // max_token_length
  for (int i = 0; i < 5; i++) {
    float score = i == 4 ? 1.0f : 0.0f;
    int32_t len = (int32_t)strlen(pieces[i]);
    memcpy(bytes + n, &score, 4), memcpy(bytes + n + 4, &len, 4);
    memcpy(bytes + n + 8, pieces[i], (size_t)len), n += 8 + (size_t)len;
  }
  char path[] = "/tmp/test_tokenizer.XXXXXX";
  int fd = mkstemp(path);
  assert_int_equal(write(fd, bytes, n), (ssize_t)n);
  close(fd);
  Tokenizer t;
  char buf[512] = "";
  FILE *out = fmemopen(buf, sizeof buf, "w");
  RtDiag d = {.out = out};
  assert_true(tok_load(path, 4, &t, &d)); // more pieces than the model's vocabulary: said
  tok_free(&t);
  assert_true(tok_load(path, 5, &t, &d)); // exactly the vocabulary: nothing to say
  fclose(out);
  assert_int_equal(d.errors, 0);
  char want_warning[400];
  snprintf(want_warning, sizeof want_warning, "%s: warning: holds more pieces than the model's "
           "vocabulary of 4: ids from 4 on are not used\n", path);
  assert_string_equal(buf, want_warning);
  unlink(path);
  int ids[16];
  int want[] = {1, 4, 4, 0, 2}; // BOS "aa" "aa" <unk> (for z) EOS
  assert_int_equal(tok_encode(&t, "aaaaz", true, true, ids), 5);
  assert_memory_equal(ids, want, sizeof want);
  assert_string_equal(tok_decode(&t, 4, 4), "aa");
  tok_free(&t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_known_encodings), cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_byte_fallback),   cmocka_unit_test(test_decode),
      cmocka_unit_test(test_errors),          cmocka_unit_test(test_small_vocab),
      cmocka_unit_test(test_matches_plain_merges),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
