// test_dataset.c — runtime/dataset.c: .bin token files (round trip, odd
// size, ids out of range, empty), text as bytes and through llama2.c's
// tokenizer (the same ids as one tok_encode of the whole text), sequential
// micro-batches with their wrap, seeded random ones, and short data.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "train.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TOKENIZER ANEC_SOURCE_DIR "/samples/data/tokenizer.bin"
#define STORIES ANEC_SOURCE_DIR "/samples/data/tinystories_excerpt.txt"
#define VOCAB 32000

// A temp directory for the test's files, and the diagnostics in memory.
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
  strcpy(t->dir, "/tmp/test_dataset.XXXXXX");
  if (!mkdtemp(t->dir) || !(t->out = open_memstream(&t->buf, &t->len)))
    return -1;
  t->d = (RtDiag){.out = t->out};
  *state = t;
  return 0;
}

static int teardown(void **state) {
  T *t = *state;
  fclose(t->out);
  free(t->buf);
  DIR *dp = opendir(t->dir);
  for (struct dirent *e; dp && (e = readdir(dp));)
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
      snprintf(t->path, sizeof t->path, "%s/%s", t->dir, e->d_name), unlink(t->path);
  if (dp)
    closedir(dp);
  rmdir(t->dir);
  free(t);
  return 0;
}

// Writes bytes into dir/name; t->path names it.
static const char *put_file(T *t, const char *name, const void *p, size_t n) {
  snprintf(t->path, sizeof t->path, "%s/%s", t->dir, name);
  FILE *f = fopen(t->path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(p, 1, n, f), n);
  fclose(f);
  return t->path;
}

static const char *diags(T *t) {
  fflush(t->out);
  return t->buf ? t->buf : "";
}

// A load that fails with `msg` in its diagnostics, and leaves ds empty.
static void expect_load_error(T *t, const Tokenizer *tok, int vocab, const char *msg) {
  Dataset ds;
  int errors = t->d.errors;
  assert_false(dataset_load(&ds, t->path, tok, vocab, &t->d));
  assert_int_equal(t->d.errors, errors + 1);
  assert_null(ds.ids);
  assert_int_equal(ds.n, 0);
  if (!strstr(diags(t), msg))
    fail_msg("expected \"%s\" in:\n%s", msg, diags(t));
}

static void put_ids(T *t, const char *name, const uint16_t *ids, size_t n) {
  unsigned char *b = malloc(2 * n + 1);
  for (size_t i = 0; i < n; i++)
    b[2 * i] = (unsigned char)(ids[i] & 0xFF), b[2 * i + 1] = (unsigned char)(ids[i] >> 8);
  put_file(t, name, b, 2 * n);
  free(b);
}

static void test_bin_round_trip(void **state) {
  T *t = *state;
  const uint16_t ids[] = {0, 1, 255, 256, 258, 4660, 32767, 32768, 65534, 65535};
  put_ids(t, "tokens.bin", ids, 10);
  Dataset ds;
  assert_true(dataset_load(&ds, t->path, NULL, 65536, &t->d));
  assert_int_equal(ds.n, 10);
  assert_memory_equal(ds.ids, ids, sizeof ids);
  assert_string_equal(ds.path, t->path);
  dataset_free(&ds);
  assert_null(ds.ids);
  assert_int_equal(ds.n, 0);
  // Little-endian whatever the host: bytes 01 02 are id 0x0201.
  put_file(t, "le.bin", "\x01\x02", 2);
  assert_true(dataset_load(&ds, t->path, NULL, 65536, &t->d));
  assert_int_equal(ds.ids[0], 0x0201);
  dataset_free(&ds);
  assert_int_equal(t->d.errors, 0);
}

static void test_bin_odd_size(void **state) {
  T *t = *state;
  put_file(t, "odd.bin", "\x01\x00\x02\x00\x03", 5);
  expect_load_error(t, NULL, 256, "/odd.bin: error: has an odd size of 5 bytes; a .bin dataset "
                    "holds uint16 token ids\n");
}

static void test_bin_out_of_range(void **state) {
  T *t = *state;
  put_ids(t, "range.bin", (const uint16_t[]){1, 2, 299, 300, 4}, 5);
  expect_load_error(t, NULL, 300, "/range.bin: error: token 3 is 300, outside the vocabulary "
                    "of 300\n");
  Dataset ds;
  assert_true(dataset_load(&ds, t->path, NULL, 301, &t->d));
  dataset_free(&ds);
  expect_load_error(t, NULL, 0, "vocabulary size 0 (uint16 token ids need 1 to 65536)");
  expect_load_error(t, NULL, 65537, "vocabulary size 65537");
}

static void test_empty_and_missing(void **state) {
  T *t = *state;
  put_file(t, "empty.bin", "", 0);
  expect_load_error(t, NULL, 256, "/empty.bin: error: is empty: a dataset needs at least one "
                    "token\n");
  put_file(t, "empty.txt", "", 0);
  expect_load_error(t, NULL, 256, "/empty.txt: error: is empty");
  snprintf(t->path, sizeof t->path, "%s/missing.bin", t->dir);
  expect_load_error(t, NULL, 256, "/missing.bin: error: cannot open: No such file");
  snprintf(t->path, sizeof t->path, "%s", t->dir);
  expect_load_error(t, NULL, 256, ": error: cannot open: not a regular file\n");
}

static void test_text_bytes(void **state) {
  T *t = *state;
  const char text[] = "h\xC3\xA9llo\n\0\xFF";
  put_file(t, "bytes.txt", text, sizeof text - 1);
  Dataset ds;
  assert_true(dataset_load(&ds, t->path, NULL, 256, &t->d));
  assert_int_equal(ds.n, sizeof text - 1);
  for (int64_t i = 0; i < ds.n; i++)
    assert_int_equal(ds.ids[i], (unsigned char)text[i]);
  dataset_free(&ds);
  expect_load_error(t, NULL, 255, "/bytes.txt: error: cannot read as bytes without a tokenizer: "
                    "the vocabulary of 255 is smaller than 256\n");
}

// The whole file, NUL-terminated.
static char *read_text(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  *n = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc(*n + 1);
  assert_int_equal(fread(s, 1, *n, f), *n);
  s[*n] = '\0';
  fclose(f);
  return s;
}

// Loads text through the tokenizer and compares with one tok_encode of it all.
static void expect_whole_encoding(T *t, const Tokenizer *tok, const char *text) {
  size_t n = strlen(text);
  int *want = malloc((n + 3) * sizeof *want);
  int nwant = tok_encode(tok, text, true, false, want);
  put_file(t, "text.txt", text, n);
  Dataset ds;
  assert_true(dataset_load(&ds, t->path, tok, VOCAB, &t->d));
  for (int i = 0; i < nwant && i < ds.n; i++)
    if (ds.ids[i] != want[i])
      fail_msg("token %d is %d, one tok_encode gives %d", i, ds.ids[i], want[i]);
  assert_int_equal(ds.n, nwant);
  dataset_free(&ds);
  free(want);
}

// Text of many lines, blank ones, and lines long enough to be cut.
static char *mixed_text(void) {
  size_t n;
  char *stories = read_text(STORIES, &n);
  char *end = strchr(stories + 6000, '\n');
  *end = '\0';
  size_t len = strlen(stories);
  const char *sentence = "Tom said,  \"Look at the big red ball!\"   Then they played. ";
  size_t k = strlen(sentence), total = len + 2 + 60 * k + 40;
  char *s = malloc(total);
  memcpy(s, stories, len);
  char *p = s + len;
  p += sprintf(p, "\n\n");
  for (int i = 0; i < 60; i++) // a 3.5 KiB line: cut at word boundaries
    p += sprintf(p, "%s", sentence);
  sprintf(p, "\n  indented\n\ttab\n\n\nend");
  free(stories);
  return s;
}

// A line over the hard limit with no space: cut at codepoints, and still
// the text when decoded.
static void expect_decodes(T *t, const Tokenizer *tok) {
  size_t n = 3000 * 2 + 5;
  char *text = malloc(n + 1);
  for (size_t i = 0; i < 3000; i++)
    memcpy(text + 2 * i, "\xC3\xA9", 2);
  memcpy(text + 6000, "\nabc", 5);
  put_file(t, "long.txt", text, strlen(text));
  Dataset ds;
  assert_true(dataset_load(&ds, t->path, tok, VOCAB, &t->d));
  assert_int_equal(ds.ids[0], 1);
  char *back = calloc(n + 64, 1);
  for (int64_t i = 1; i < ds.n; i++)
    strcat(back, tok_decode(tok, ds.ids[i - 1], ds.ids[i]));
  assert_string_equal(back, text);
  free(back), free(text);
  dataset_free(&ds);
}

static void test_text_tokenizer(void **state) {
  T *t = *state;
  struct stat st;
  if (stat(TOKENIZER, &st) != 0)
    fail_msg("%s not found", TOKENIZER);
  Tokenizer tok;
  assert_true(tok_load(TOKENIZER, VOCAB, &tok, &t->d));
  put_file(t, "known.txt", "I believe the meaning of life is", 32);
  Dataset ds;
  assert_true(dataset_load(&ds, t->path, &tok, VOCAB, &t->d));
  const uint16_t want[] = {1, 306, 4658, 278, 6593, 310, 2834, 338};
  assert_int_equal(ds.n, 8);
  assert_memory_equal(ds.ids, want, sizeof want);
  dataset_free(&ds);
  expect_load_error(t, &tok, 1000, "/known.txt: error: token 2 is 4658, outside the vocabulary "
                    "of 1000\n");
  put_file(t, "nul.txt", "ab\0c", 4);
  expect_load_error(t, &tok, VOCAB, "/nul.txt: error: byte 2 is NUL: not text");
  char *text = mixed_text();
  expect_whole_encoding(t, &tok, text);
  expect_whole_encoding(t, &tok, "\n\nstarts with blank lines\n");
  expect_whole_encoding(t, &tok, "x");
  free(text);
  expect_decodes(t, &tok);
  tok_free(&tok);
}

// A dataset of ids 0, 1, ..., n - 1.
static Dataset iota(int64_t n) {
  Dataset ds = {malloc((size_t)n * sizeof(uint16_t)), n, NULL};
  for (int64_t i = 0; i < n; i++)
    ds.ids[i] = (uint16_t)i;
  return ds;
}

// The next sequential batch starts at token `start`.
static void expect_seq(const Dataset *ds, DataCursor *c, int seq, int start, int64_t next) {
  int32_t in[8], tg[8];
  assert_true(dataset_batch(ds, c, true, seq, in, tg, NULL));
  for (int i = 0; i < seq; i++) {
    assert_int_equal(in[i], start + i);
    assert_int_equal(tg[i], start + i + 1);
  }
  assert_int_equal(c->next, next);
}

static void test_sequential(void **state) {
  (void)state;
  Dataset ds = iota(10);
  DataCursor c;
  data_cursor_init(&c, 7);
  assert_int_equal(c.rng, 7);
  assert_int_equal(c.next, 0);
  expect_seq(&ds, &c, 3, 0, 1); // tokens [0, 3]
  expect_seq(&ds, &c, 3, 3, 2); // [3, 6]
  expect_seq(&ds, &c, 3, 6, 3); // [6, 9]: the last token is a target
  expect_seq(&ds, &c, 3, 0, 1); // [9, 12] runs past the end: batch 0
  expect_seq(&ds, &c, 3, 3, 2);
  assert_int_equal(c.rng, 7); // sequential order draws nothing
  ds.n = 7;                   // [0, 3], [3, 6], then wrap
  c.next = 0;
  expect_seq(&ds, &c, 3, 0, 1);
  expect_seq(&ds, &c, 3, 3, 2);
  expect_seq(&ds, &c, 3, 0, 1);
  c.next = INT64_MAX; // a cursor from a bad checkpoint: no overflow, batch 0
  expect_seq(&ds, &c, 3, 0, 1);
  c.next = -5;
  expect_seq(&ds, &c, 3, 0, 1);
  ds.n = 4; // exactly one batch
  expect_seq(&ds, &c, 3, 0, 1);
  expect_seq(&ds, &c, 3, 0, 1);
  free(ds.ids);
}

// The start of the next random batch of seq tokens.
static int64_t next_start(const Dataset *ds, DataCursor *c, int seq) {
  int32_t in[8], tg[8];
  assert_true(dataset_batch(ds, c, false, seq, in, tg, NULL));
  for (int i = 0; i < seq; i++)
    assert_int_equal(in[i], in[0] + i), assert_int_equal(tg[i], in[0] + i + 1);
  return in[0];
}

// Random starts are splitmix64 draws modulo m = n - seq, on every platform.
static void test_random_draws(void **state) {
  (void)state;
  Dataset ds = iota(1004);
  DataCursor c;
  data_cursor_init(&c, 42);
  assert_int_equal(next_start(&ds, &c, 4), 413); // draws from 42, % 1000
  assert_int_equal(next_start(&ds, &c, 4), 291);
  assert_int_equal(next_start(&ds, &c, 4), 858);
  assert_int_equal(c.next, 0);
  free(ds.ids);
  ds = iota(65536 + 8); // m = 2^16: the low 16 bits of the draws
  data_cursor_init(&c, 0);
  const int want[] = {0xcdaf, 0x65f4, 0x454f}; // 0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4, ...
  for (int k = 0; k < 3; k++) {
    assert_int_equal(next_start(&ds, &c, 8), want[k]);
    assert_int_equal(c.rng, (uint64_t)(k + 1) * 0x9E3779B97F4A7C15ull); // one draw each
  }
  free(ds.ids);
}

// Starts in [0, n - seq - 1], every one reached; the same for the same seed.
static void test_random_bounds(void **state) {
  (void)state;
  Dataset ds = iota(20);
  DataCursor a, b;
  data_cursor_init(&a, 2024), data_cursor_init(&b, 2024);
  int seen[16] = {0};
  for (int k = 0; k < 2000; k++) {
    int64_t s = next_start(&ds, &a, 4);
    assert_int_equal(next_start(&ds, &b, 4), s);
    assert_in_range(s, 0, 15);
    seen[s]++;
  }
  for (int s = 0; s < 16; s++)
    assert_true(seen[s] > 0);
  data_cursor_init(&b, 2025);
  int same = 0;
  for (int k = 0; k < 50; k++)
    same += next_start(&ds, &a, 4) == next_start(&ds, &b, 4);
  assert_true(same < 25);
  ds.n = 5; // one possible start
  for (int k = 0; k < 5; k++)
    assert_int_equal(next_start(&ds, &a, 4), 0);
  free(ds.ids);
}

static void test_too_short(void **state) {
  T *t = *state;
  put_ids(t, "short.bin", (const uint16_t[]){5, 6, 7, 8}, 4);
  Dataset ds;
  assert_true(dataset_load(&ds, t->path, NULL, 256, &t->d));
  DataCursor c;
  data_cursor_init(&c, 1);
  int32_t in[8], tg[8];
  assert_false(dataset_batch(&ds, &c, true, 4, in, tg, &t->d));
  assert_false(dataset_batch(&ds, &c, false, 4, in, tg, &t->d));
  assert_true(strstr(diags(t), "/short.bin: error: has 4 tokens; a micro-batch needs "
                     "seq+1 = 5\n") != NULL);
  assert_false(dataset_batch(&ds, &c, true, 0, in, tg, &t->d));
  assert_non_null(strstr(diags(t), "/short.bin: error: cannot make micro-batches of 0 tokens"));
  assert_int_equal(c.rng, 1);
  assert_int_equal(c.next, 0);
  assert_true(dataset_batch(&ds, &c, true, 3, in, tg, &t->d));
  assert_int_equal(tg[2], 8);
  dataset_free(&ds);
  Dataset mem = iota(2);
  assert_false(dataset_batch(&mem, &c, false, 2, in, tg, &t->d));
  assert_non_null(strstr(diags(t), "anec: error: the dataset has 2 tokens; a micro-batch needs "
                         "seq+1 = 3\n"));
  free(mem.ids);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_bin_round_trip, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bin_odd_size, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bin_out_of_range, setup, teardown),
      cmocka_unit_test_setup_teardown(test_empty_and_missing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_text_bytes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_text_tokenizer, setup, teardown),
      cmocka_unit_test(test_sequential),
      cmocka_unit_test(test_random_draws),
      cmocka_unit_test(test_random_bounds),
      cmocka_unit_test_setup_teardown(test_too_short, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
