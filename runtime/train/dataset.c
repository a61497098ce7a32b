// dataset.c — the token stream a trainer learns from: a .bin file of
// little-endian uint16 ids, or a text file tokenized (BPE or bytes), and a
// cursor that cuts it into micro-batches in sequential or random order,
// deterministic on every platform (splitmix64).
#include "train.h"

#include <stdlib.h>
#include <string.h>

enum { DATA_MAX_VOCAB = 65536 }; // ids are uint16
enum { DATA_CHUNK_SOFT = 1024, DATA_CHUNK_HARD = 4096 }; // bytes of text per tok_encode call

static bool has_suffix(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && !strcmp(s + n - k, suffix);
}

// Raw little-endian uint16 ids, each checked against the vocabulary.
static bool load_bin(Dataset *ds, const unsigned char *p, size_t n, int vocab, RtDiag *d) {
  if (n % 2) {
    rt_error_file(d, ds->path, "has an odd size of %zu bytes; a .bin dataset holds uint16 "
                  "token ids", n);
    return false;
  }
  ds->n = (int64_t)(n / 2);
  for (int64_t i = 0; i < ds->n; i++) {
    ds->ids[i] = (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
    if (ds->ids[i] >= vocab) {
      rt_error_file(d, ds->path, "token %lld is %u, outside the vocabulary of %d",
                    (long long)i, ds->ids[i], vocab);
      return false;
    }
  }
  return true;
}

// Byte-level text: every byte is its id.
static bool load_bytes(Dataset *ds, const unsigned char *p, size_t n, int vocab, RtDiag *d) {
  if (vocab < 256) {
    rt_error_file(d, ds->path, "cannot read as bytes without a tokenizer: the vocabulary of "
                  "%d is smaller than 256", vocab);
    return false;
  }
  for (size_t i = 0; i < n; i++)
    ds->ids[i] = p[i];
  ds->n = (int64_t)n;
  return true;
}

// The end of the chunk of text that starts at `at`: before the next line
// break, or in a long line before a space that follows a non-space (no
// Llama-2 piece spans either), or, failing both, at a codepoint boundary.
static size_t chunk_end(const char *s, size_t len, size_t at) {
  size_t end = at + 1;
  for (; end < len && s[end] != '\n' && end - at < DATA_CHUNK_HARD; end++)
    if (end - at >= DATA_CHUNK_SOFT && s[end] == ' ' && s[end - 1] != ' ')
      return end;
  if (end < len && s[end] != '\n')
    while (end > at + 1 && ((unsigned char)s[end] & 0xC0) == 0x80)
      end--;
  return end;
}

// Text through a tokenizer, a chunk at a time. A chunk after the first is
// encoded after a sentinel "\n", which takes tok_encode's dummy prefix in its
// place; the ids of "\n" alone (the dummy and the line break) are dropped.
typedef struct TextLoad {
  Dataset *ds;
  const Tokenizer *tok;
  int vocab;
  RtDiag *d;
  int *ids;      // scratch: one chunk's encoding
  char *chunk;   // scratch: "\n" + one chunk, NUL-terminated
  int prefix[8]; // the ids of "\n" alone: dropped from every later chunk
  int nprefix;
} TextLoad;

// Appends ids[from..n) to the dataset, each checked against the vocabulary.
static bool append_ids(TextLoad *l, const int *ids, int from, int n) {
  for (int i = from; i < n; i++) {
    if (ids[i] < 0 || ids[i] >= l->vocab) {
      rt_error_file(l->d, l->ds->path, "token %lld is %d, outside the vocabulary of %d",
                    (long long)l->ds->n, ids[i], l->vocab);
      return false;
    }
    l->ds->ids[l->ds->n++] = (uint16_t)ids[i];
  }
  return true;
}

// Encodes text[at..end): the first chunk as tok_encode would (with BOS), a
// later one after the sentinel, whose ids are then dropped.
static bool encode_chunk(TextLoad *l, const char *text, size_t at, size_t end) {
  size_t n = end - at;
  l->chunk[0] = '\n';
  memcpy(l->chunk + 1, text + at, n);
  l->chunk[n + 1] = '\0';
  if (at == 0)
    return append_ids(l, l->ids, 0, tok_encode(l->tok, l->chunk + 1, true, false, l->ids));
  int k = tok_encode(l->tok, l->chunk, false, false, l->ids);
  if (k < l->nprefix || memcmp(l->ids, l->prefix, (size_t)l->nprefix * sizeof *l->ids)) {
    rt_error_file(l->d, l->ds->path, "cannot tokenize byte %zu on: the tokenizer merges a "
                  "line break with the text after it", at);
    return false;
  }
  return append_ids(l, l->ids, l->nprefix, k);
}

static bool encode_text(TextLoad *l, const char *text, size_t len) {
  l->nprefix = tok_encode(l->tok, "\n", false, false, l->prefix);
  for (size_t at = 0, end; at < len; at = end) {
    end = chunk_end(text, len, at);
    if (!encode_chunk(l, text, at, end))
      return false;
  }
  return true;
}

// Text through the tokenizer: BOS, then the text, a chunk at a time.
static bool load_text(Dataset *ds, const char *text, size_t len, const Tokenizer *tok, int vocab,
                      RtDiag *d) {
  const char *nul = memchr(text, '\0', len);
  if (nul) {
    rt_error_file(d, ds->path, "byte %zu is NUL: not text (name a token file '.bin')",
                  (size_t)(nul - text));
    return false;
  }
  TextLoad l = {ds, tok, vocab, d, malloc((DATA_CHUNK_HARD + 4) * sizeof(int)),
                malloc(DATA_CHUNK_HARD + 2), {0}, 0};
  bool ok = l.ids && l.chunk;
  if (!ok)
    rt_error_file(d, ds->path, "out of memory");
  ok = ok && encode_text(&l, text, len);
  free(l.ids), free(l.chunk);
  return ok;
}

static bool load_file(Dataset *ds, const unsigned char *p, size_t n, const Tokenizer *tok,
                      int vocab, RtDiag *d) {
  ds->ids = malloc((n + 2) * sizeof *ds->ids); // text: BOS, dummy prefix, at most a token a byte
  if (!ds->ids) {
    rt_error_file(d, ds->path, "out of memory for %zu tokens", n + 2);
    return false;
  }
  if (has_suffix(ds->path, ".bin"))
    return load_bin(ds, p, n, vocab, d);
  if (!tok)
    return load_bytes(ds, p, n, vocab, d);
  return load_text(ds, (const char *)p, n, tok, vocab, d);
}

bool dataset_load(Dataset *ds, const char *path, const Tokenizer *tok, int vocab, RtDiag *d) {
  memset(ds, 0, sizeof *ds);
  if (vocab <= 0 || vocab > DATA_MAX_VOCAB) {
    rt_error_file(d, path, "cannot load: vocabulary size %d (uint16 token ids need 1 to %d)",
                  vocab, DATA_MAX_VOCAB);
    return false;
  }
  size_t n = 0;
  unsigned char *bytes = rt_read_file(path, &n, d);
  if (!bytes)
    return false;
  if (n == 0) {
    rt_error_file(d, path, "is empty: a dataset needs at least one token");
    free(bytes);
    return false;
  }
  ds->path = strdup(path);
  if (!ds->path)
    rt_error_file(d, path, "out of memory");
  bool ok = ds->path && load_file(ds, bytes, n, tok, vocab, d);
  free(bytes);
  if (!ok)
    dataset_free(ds);
  return ok;
}

void dataset_free(Dataset *ds) {
  free(ds->ids), free(ds->path);
  memset(ds, 0, sizeof *ds);
}

//
// Micro-batches
//

void data_cursor_init(DataCursor *c, uint64_t seed) {
  c->rng = seed;
  c->next = 0;
}

// Uniform in [0, m), m > 0: draws below 2^64 mod m are redrawn (no modulo bias).
static uint64_t uniform_below(uint64_t *state, uint64_t m) {
  uint64_t threshold = -m % m, r;
  while ((r = rt_splitmix64(state)) < threshold)
    ;
  return r % m;
}

// The start of sequential micro-batch c->next (batch 0 when it runs past the end).
static int64_t sequential_start(int64_t n, int seq, DataCursor *c) {
  int64_t i = c->next;
  if (i < 0 || i > (n - seq - 1) / seq) // i * seq + seq > n - 1, without overflow
    i = 0;
  c->next = i + 1;
  return i * seq;
}

bool dataset_batch(const Dataset *ds, DataCursor *c, bool sequential, int seq, int32_t *inputs,
                   int32_t *targets, RtDiag *d) {
  const char *who = ds->path ? "" : "the dataset ";
  if (seq < 1) {
    rt_error_file(d, ds->path, "%scannot make micro-batches of %d tokens", who, seq);
    return false;
  }
  if (ds->n < (int64_t)seq + 1) {
    rt_error_file(d, ds->path, "%shas %lld tokens; a micro-batch needs seq+1 = %lld", who,
                  (long long)ds->n, (long long)seq + 1);
    return false;
  }
  int64_t s = sequential ? sequential_start(ds->n, seq, c)
                         : (int64_t)uniform_below(&c->rng, (uint64_t)(ds->n - seq));
  for (int i = 0; i < seq; i++) {
    inputs[i] = ds->ids[s + i];
    targets[i] = ds->ids[s + i + 1];
  }
  return true;
}
