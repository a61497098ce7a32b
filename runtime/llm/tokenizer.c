// tokenizer.c — llama2.c's byte-pair tokenizer: loads tokenizer.bin (checked
// to the byte), encodes text the way llama2.c's run.c does (dummy prefix,
// codepoints with byte fallback, greedy merges of the best-scoring pair) and
// decodes one token at a time.
#include "llm.h"

#include <stdlib.h>
#include <string.h>

enum { TOK_BOS = 1, TOK_EOS = 2, TOK_BYTE0 = 3 }; // <0x00> is id 3 in Llama-2's vocabulary

typedef struct TokFile {
  const char *path;
  const unsigned char *p;
  size_t n;
  RtDiag *d;
} TokFile;

static int32_t get_i32(const unsigned char *p) {
  int32_t v;
  memcpy(&v, p, 4);
  return v;
}

// Checks the first `vocab` pieces; *text receives their bytes in all and *longest
// the longest piece's length.
static bool scan_pieces(const TokFile *f, int vocab, size_t *text, size_t *longest) {
  size_t off = 4;
  *text = *longest = 0;
  for (int i = 0; i < vocab; i++) {
    if (off == f->n) {
      rt_error_file(f->d, f->path, "has only %d pieces, the model's vocabulary has %d", i, vocab);
      return false;
    }
    if (f->n - off < 8) {
      rt_error_file(f->d, f->path, "truncated in piece %d (at byte %zu)", i, off);
      return false;
    }
    int32_t len = get_i32(f->p + off + 4);
    if (len < 0) {
      rt_error_file(f->d, f->path, "piece %d has a negative length %d (at byte %zu)", i,
                    (int)len, off + 4);
      return false;
    }
    if ((size_t)len > f->n - off - 8) {
      rt_error_file(f->d, f->path, "truncated: piece %d of %d bytes runs past the end of the "
                    "file (at byte %zu)", i, (int)len, off + 8);
      return false;
    }
    off += 8 + (size_t)len;
    *text += (size_t)len + 1;
    *longest = (size_t)len > *longest ? (size_t)len : *longest;
  }
  return true;
}

typedef struct SortKey {
  const char *s;
  int id;
} SortKey;

static int cmp_key(const void *a, const void *b) {
  const SortKey *x = a, *y = b;
  int c = strcmp(x->s, y->s);
  return c ? c : (x->id > y->id) - (x->id < y->id); // equal pieces: the lowest id first
}

// t->sorted: the ids in the order of their pieces' bytes.
static bool sort_pieces(Tokenizer *t) {
  SortKey *k = malloc((size_t)t->vocab * sizeof *k);
  if (!k)
    return false;
  for (int i = 0; i < t->vocab; i++)
    k[i] = (SortKey){t->pieces[i], i};
  qsort(k, (size_t)t->vocab, sizeof *k, cmp_key);
  for (int i = 0; i < t->vocab; i++)
    t->sorted[i] = k[i].id;
  free(k);
  return true;
}

// Copies the pieces and scores out of the file and sorts the lookup index.
static bool fill_pieces(Tokenizer *t, const TokFile *f, size_t text, size_t longest) {
  t->pieces = malloc((size_t)t->vocab * sizeof *t->pieces);
  t->scores = malloc((size_t)t->vocab * sizeof *t->scores);
  t->sorted = malloc((size_t)t->vocab * sizeof *t->sorted);
  t->text = malloc(text);
  t->scratch = malloc(2 * longest + 8);
  if (!t->pieces || !t->scores || !t->sorted || !t->text || !t->scratch)
    return false;
  char *q = t->text;
  for (size_t i = 0, off = 4; i < (size_t)t->vocab; i++) {
    size_t len = (size_t)get_i32(f->p + off + 4);
    memcpy(&t->scores[i], f->p + off, 4);
    memcpy(q, f->p + off + 8, len);
    q[len] = '\0';
    t->pieces[i] = q;
    q += len + 1, off += 8 + len;
  }
  return sort_pieces(t);
}

static bool parse_tokenizer(Tokenizer *t, const TokFile *f) {
  size_t text, longest;
  if (f->n < 4) {
    rt_error_file(f->d, f->path, "truncated: a tokenizer file starts with an int32 "
                  "max_token_length, found %zu bytes", f->n);
    return false;
  }
  t->max_len = get_i32(f->p);
  if (t->max_len <= 0) {
    rt_error_file(f->d, f->path, "bad max_token_length %d (must be positive)", t->max_len);
    return false;
  }
  if (!scan_pieces(f, t->vocab, &text, &longest))
    return false;
  if (!fill_pieces(t, f, text, longest)) {
    rt_error_file(f->d, f->path, "out of memory for %d pieces", t->vocab);
    return false;
  }
  size_t end = 4 + 8 * (size_t)t->vocab + (text - (size_t)t->vocab); // after the last piece read
  if (f->n > end)
    rt_warning(f->d, f->path, NULL, 0, (SrcSpan){0, 0, 0, 0},
               "holds more pieces than the model's vocabulary of %d: ids from %d on are not used",
               t->vocab, t->vocab);
  return true;
}

bool tok_load(const char *path, int vocab, Tokenizer *t, RtDiag *d) {
  memset(t, 0, sizeof *t);
  for (int b = 0; b < 256; b++)
    t->byte_pieces[2 * b] = (char)b;
  if (vocab <= 0) {
    rt_error_file(d, path, "cannot load: vocabulary size %d (must be positive)", vocab);
    return false;
  }
  size_t n;
  unsigned char *bytes = rt_read_file(path, &n, d);
  if (!bytes)
    return false;
  t->vocab = vocab;
  bool ok = parse_tokenizer(t, &(TokFile){path, bytes, n, d});
  free(bytes);
  if (!ok)
    tok_free(t);
  return ok;
}

void tok_free(Tokenizer *t) {
  free(t->pieces), free(t->scores), free(t->sorted), free(t->text), free(t->scratch);
  memset(t, 0, sizeof *t);
}

// The lowest id whose piece is s, or -1.
static int tok_lookup(const Tokenizer *t, const char *s) {
  int lo = 0, hi = t->vocab; // first sorted entry >= s
  while (lo < hi) {
    int mid = lo + (hi - lo) / 2;
    if (strcmp(t->pieces[t->sorted[mid]], s) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < t->vocab && !strcmp(t->pieces[t->sorted[lo]], s) ? t->sorted[lo] : -1;
}

// The byte-fallback token of byte b: <0xNN> is id NN + 3 (<unk> where the
// vocabulary has no byte pieces that far).
static int byte_token(const Tokenizer *t, unsigned char b) {
  return b + TOK_BYTE0 < t->vocab ? b + TOK_BYTE0 : 0;
}

// One token per codepoint found in the vocabulary, else one per byte; as
// run.c, a sequence is cut after 4 bytes and stray continuation bytes join it.
static int encode_codepoints(const Tokenizer *t, const char *text, int *ids, int n) {
  char cp[8];
  size_t len = 0;
  for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
    if ((*c & 0xC0) != 0x80)
      len = 0;
    cp[len++] = (char)*c;
    cp[len] = '\0';
    if ((c[1] & 0xC0) == 0x80 && len < 4)
      continue;
    int id = tok_lookup(t, cp);
    if (id >= 0)
      ids[n++] = id;
    else
      for (size_t i = 0; i < len; i++)
        ids[n++] = byte_token(t, (unsigned char)cp[i]);
    len = 0;
  }
  return n;
}

// The piece that joins tokens a and b, or -1.
static int pair_piece(const Tokenizer *t, int a, int b) {
  if (a < 0 || b < 0 || a >= t->vocab || b >= t->vocab)
    return -1;
  size_t la = strlen(t->pieces[a]), lb = strlen(t->pieces[b]);
  memcpy(t->scratch, t->pieces[a], la);
  memcpy(t->scratch + la, t->pieces[b], lb + 1);
  return tok_lookup(t, t->scratch);
}

// The leftmost pair whose joined piece scores best (above -1e10, as run.c);
// its position, or -1. cache[i]: the piece of pair i, or NULL to look up.
static int best_pair(const Tokenizer *t, const int *ids, int n, const int *cache, int *piece) {
  float best = -1e10f;
  int at = -1;
  for (int i = 0; i + 1 < n; i++) {
    int p = cache ? cache[i] : pair_piece(t, ids[i], ids[i + 1]);
    if (p >= 0 && t->scores[p] > best)
      best = t->scores[p], *piece = p, at = i;
  }
  return at;
}

// Merges until no pair is a piece; returns the new count.
static int merge_pairs(const Tokenizer *t, int *ids, int n) {
  int *cache = n > 1 ? malloc((size_t)(n - 1) * sizeof *cache) : NULL; // NULL: slower, same
  for (int i = 0; cache && i + 1 < n; i++)
    cache[i] = pair_piece(t, ids[i], ids[i + 1]);
  int at, piece = -1;
  while ((at = best_pair(t, ids, n, cache, &piece)) >= 0) {
    ids[at] = piece;
    memmove(ids + at + 1, ids + at + 2, (size_t)(n - at - 2) * sizeof *ids);
    n--;
    if (!cache)
      continue;
    if (n - at - 2 > 0) // pairs after the merged one move down by one
      memmove(cache + at + 1, cache + at + 2, (size_t)(n - at - 2) * sizeof *cache);
    if (at > 0)
      cache[at - 1] = pair_piece(t, ids[at - 1], ids[at]);
    if (at + 1 < n)
      cache[at] = pair_piece(t, ids[at], ids[at + 1]);
  }
  free(cache);
  return n;
}

int tok_encode(const Tokenizer *t, const char *text, bool bos, bool eos, int *ids) {
  int n = 0;
  if (!text)
    text = "";
  if (bos)
    ids[n++] = TOK_BOS;
  int space = *text ? tok_lookup(t, " ") : -1; // run.c would add -1 without a " " piece
  if (space >= 0)
    ids[n++] = space;
  n = merge_pairs(t, ids, encode_codepoints(t, text, ids, n));
  if (eos)
    ids[n++] = TOK_EOS;
  return n;
}

static int hex_digit(char c) {
  return c >= '0' && c <= '9' ? c - '0'
         : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                : -1;
}

// The byte of a piece "<0xNN>" (as run.c's sscanf "<0x%02hhX>": one or two
// hex digits after "<0x", the rest unchecked), or -1.
static int byte_of_piece(const char *p) {
  if (strncmp(p, "<0x", 3) || hex_digit(p[3]) < 0)
    return -1;
  int hi = hex_digit(p[3]), lo = hex_digit(p[4]);
  return lo < 0 ? hi : hi * 16 + lo;
}

const char *tok_decode(const Tokenizer *t, int prev, int id) {
  if (id < 0 || id >= t->vocab)
    return "";
  const char *p = t->pieces[id];
  if (prev == TOK_BOS && p[0] == ' ')
    p++;
  int b = byte_of_piece(p);
  return b >= 0 ? t->byte_pieces + 2 * b : p;
}
