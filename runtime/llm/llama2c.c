// llama2c.c — llama2.c "v0" checkpoints: the layout of the arrays a config
// implies, a strict reader (header values, sizes to the byte, no overflow on
// garbage headers) into one allocation, and an atomic writer.
#include "llm.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "llama2c.c assumes a little-endian host"
#endif

enum { L2C_HEADER = 28 }; // 7 int32

// n with thousands separators: "1,056,540".
static char *group_digits(char *buf, size_t cap, uint64_t n) {
  char tmp[32];
  int len = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)n), o = 0;
  for (int i = 0; i < len && (size_t)o + 2 < cap; i++) {
    if (i > 0 && (len - i) % 3 == 0)
      buf[o++] = ',';
    buf[o++] = tmp[i];
  }
  buf[o] = '\0';
  return buf;
}

static void config_str(char *buf, size_t cap, const L2cConfig *c) {
  snprintf(buf, cap, "dim %d, hidden %d, %d layers, %d heads, %d kv heads, vocab %d, seq %d, %s",
           c->dim, c->hidden, c->layers, c->heads, c->kv_heads, c->vocab, c->seq,
           c->shared_cls ? "tied classifier" : "untied classifier (wcls)");
}

static void set_tensor(L2cTensor *t, const char *name, int rank, int64_t a, int64_t b,
                       int64_t c) {
  *t = (L2cTensor){name, rank, {a, b, c}, NULL};
}

// The arrays of cfg in file order (dims only); returns how many.
static int layout(const L2cConfig *c, L2cTensor *t) {
  int64_t D = c->dim, H = c->hidden, L = c->layers, V = c->vocab, S = c->seq;
  int64_t hs = D / c->heads, KV = D / c->heads * c->kv_heads;
  set_tensor(&t[0], "tok_emb", 2, V, D, 0);
  set_tensor(&t[1], "rms_att", 2, L, D, 0);
  set_tensor(&t[2], "wq", 3, L, D, D);
  set_tensor(&t[3], "wk", 3, L, KV, D);
  set_tensor(&t[4], "wv", 3, L, KV, D);
  set_tensor(&t[5], "wo", 3, L, D, D);
  set_tensor(&t[6], "rms_ffn", 2, L, D, 0);
  set_tensor(&t[7], "w1", 3, L, H, D);
  set_tensor(&t[8], "w2", 3, L, D, H);
  set_tensor(&t[9], "w3", 3, L, H, D);
  set_tensor(&t[10], "rms_final", 1, D, 0, 0);
  set_tensor(&t[11], "freq_cis_real", 2, S, hs / 2, 0);
  set_tensor(&t[12], "freq_cis_imag", 2, S, hs / 2, 0);
  if (c->shared_cls)
    return 13;
  set_tensor(&t[13], "wcls", 2, V, D, 0);
  return 14;
}

// Elements of every array of cfg, -1 if one is over RT_MAX_NUMEL.
static int64_t layout_numel(const L2cConfig *c) {
  L2cTensor t[16];
  int n = layout(c, t);
  int64_t total = 0;
  for (int i = 0; i < n; i++) {
    int64_t k = rt_numel(t[i].rank, t[i].dims);
    if (k < 0)
      return -1;
    total += k;
  }
  return total;
}

// Whether c is a configuration llama2.c can run; if not, why (into why).
static bool config_ok(const L2cConfig *c, char *why, size_t cap) {
  const int v[7] = {c->dim, c->hidden, c->layers, c->heads, c->kv_heads, c->vocab, c->seq};
  static const char *const names[7] = {"dim", "hidden_dim", "n_layers", "n_heads",
                                       "n_kv_heads", "vocab_size", "seq_len"};
  for (int i = 0; i < 7; i++)
    if (v[i] <= 0) {
      snprintf(why, cap, "%s is %d (must be positive)", names[i], v[i]);
      return false;
    }
  if (c->dim % c->heads)
    snprintf(why, cap, "dim %d is not divisible by n_heads %d", c->dim, c->heads);
  else if (c->dim / c->heads % 2)
    snprintf(why, cap, "head size %d is odd (RoPE rotates pairs)", c->dim / c->heads);
  else if (c->kv_heads > c->heads || c->heads % c->kv_heads)
    snprintf(why, cap, "n_heads %d is not a multiple of n_kv_heads %d", c->heads, c->kv_heads);
  else if (layout_numel(c) < 0)
    snprintf(why, cap, "the arrays would be too large (over %lld elements each)",
             (long long)RT_MAX_NUMEL);
  else
    return true;
  return false;
}

// Reports a bad configuration: `what` is "header" (reading) or "configuration".
static bool check_config(const L2cConfig *c, const char *path, const char *what, RtDiag *d) {
  char why[160], cs[200];
  if (config_ok(c, why, sizeof why))
    return true;
  config_str(cs, sizeof cs, c);
  rt_error_file(d, path, "bad llama2.c checkpoint %s: %s (%s)", what, why, cs);
  return false;
}

// The RoPE tables of llama2.c: angle p * 10000^(-2i/hs) for pair i at position p.
static void rope_row(const L2cConfig *c, int p, bool imag, float *row) {
  int hs = c->dim / c->heads;
  for (int i = 0; i < hs / 2; i++) {
    float freq = 1.0f / powf(10000.0f, (float)(2 * i) / (float)hs);
    float a = (float)p * freq;
    row[i] = imag ? sinf(a) : cosf(a);
  }
}

// Points the tensors of ck->cfg's layout into ck->all (allocated here).
static bool alloc_all(L2cCheckpoint *ck) {
  int64_t total = layout_numel(&ck->cfg);
  if (total < 0 || (uint64_t)total > SIZE_MAX / sizeof(float))
    return false;
  ck->all = calloc(total ? (size_t)total : 1, sizeof(float));
  if (!ck->all)
    return false;
  ck->n = layout(&ck->cfg, ck->t);
  float *p = ck->all;
  for (int i = 0; i < ck->n; i++) {
    ck->t[i].data = p;
    p += rt_numel(ck->t[i].rank, ck->t[i].dims);
  }
  return true;
}

bool l2c_alloc(L2cCheckpoint *ck, const L2cConfig *cfg, RtDiag *d) {
  memset(ck, 0, sizeof *ck);
  ck->cfg = *cfg;
  if (!check_config(cfg, NULL, "configuration", d))
    return false;
  if (!alloc_all(ck)) {
    rt_error_file(d, NULL, "out of memory for a llama2.c checkpoint");
    return false;
  }
  const L2cTensor *re = l2c_find(ck, "freq_cis_real"), *im = l2c_find(ck, "freq_cis_imag");
  for (int p = 0; p < cfg->seq; p++) {
    rope_row(cfg, p, false, re->data + (int64_t)p * re->dims[1]);
    rope_row(cfg, p, true, im->data + (int64_t)p * im->dims[1]);
  }
  return true;
}

const L2cTensor *l2c_find(const L2cCheckpoint *ck, const char *name) {
  for (int i = 0; i < ck->n; i++)
    if (!strcmp(ck->t[i].name, name))
      return &ck->t[i];
  return NULL;
}

bool l2c_slot(const L2cCheckpoint *ck, const char *name, L2cTensor *view) {
  long layer = -1;
  if (!strncmp(name, "layers.", 7)) { // "layers.3.wq": row 3 of "wq"
    char *end;
    layer = name[7] >= '0' && name[7] <= '9' ? strtol(name + 7, &end, 10) : -1;
    if (layer < 0 || *end != '.')
      return false;
    name = end + 1;
  }
  const L2cTensor *t = l2c_find(ck, name);
  int skip = layer >= 0;
  if (!t || (skip && (t->rank < 2 || layer >= t->dims[0])))
    return false;
  *view = (L2cTensor){t->name, t->rank - skip, {0}, t->data};
  for (int i = 0; i < view->rank; i++)
    view->dims[i] = t->dims[i + skip];
  view->data += skip ? layer * rt_numel(view->rank, view->dims) : 0;
  return true;
}

void l2c_free(L2cCheckpoint *ck) {
  free(ck->all);
  memset(ck, 0, sizeof *ck);
}

//
// Reading
//

// The header's config; false for a vocab_size no int can negate.
static bool parse_header(const unsigned char *h, L2cConfig *c, const char *path, RtDiag *d) {
  int32_t v[7];
  memcpy(v, h, sizeof v);
  if (v[5] == INT32_MIN) {
    rt_error_file(d, path, "bad llama2.c checkpoint header: vocab_size %d is out of range",
                  (int)v[5]);
    return false;
  }
  *c = (L2cConfig){v[0], v[1], v[2], v[3], v[4], v[5] < 0 ? -v[5] : v[5], v[6], v[5] > 0};
  return check_config(c, path, "header", d);
}

// The file opened, and its size; NULL (reported) if it cannot be opened or is
// no regular file.
static FILE *open_sized(const char *path, uint64_t *size, RtDiag *d) {
  FILE *f;
  int err = rt_open_regular(path, RT_READ_MAX, &f, size);
  if (err)
    rt_error_file(d, path, "cannot open: %s", rt_open_strerror(err));
  return err ? NULL : f;
}

static bool check_size(const L2cConfig *c, uint64_t have, const char *path, RtDiag *d) {
  uint64_t need = L2C_HEADER + (uint64_t)layout_numel(c) * sizeof(float);
  if (have == need)
    return true;
  char cs[200], a[32], b[32];
  config_str(cs, sizeof cs, c);
  rt_error_file(d, path, "%s: expected %s bytes for %s; found %s",
                have < need ? "truncated" : "trailing bytes", group_digits(a, sizeof a, need), cs,
                group_digits(b, sizeof b, have));
  return false;
}

// Every weight finite; else an error naming the first tensor and index that is not.
static bool check_finite(const L2cCheckpoint *ck, const char *path, RtDiag *d) {
  for (int k = 0; k < ck->n; k++) {
    const L2cTensor *t = &ck->t[k];
    int64_t count = 1;
    for (int i = 0; i < t->rank; i++)
      count *= t->dims[i];
    for (int64_t i = 0; i < count; i++)
      if (!isfinite(t->data[i])) {
        rt_error_file(d, path, "tensor '%s' holds %g at index %lld: weights must be finite",
                      t->name, (double)t->data[i], (long long)i);
        return false;
      }
  }
  return true;
}

static bool read_checkpoint(FILE *f, uint64_t size, const char *path, L2cCheckpoint *ck,
                            RtDiag *d) {
  unsigned char h[L2C_HEADER];
  char b[32];
  if (size < L2C_HEADER || fread(h, 1, L2C_HEADER, f) != L2C_HEADER) {
    rt_error_file(d, path, "truncated: a llama2.c checkpoint starts with a 28-byte header "
                  "(7 int32), found %s bytes", group_digits(b, sizeof b, size));
    return false;
  }
  if (!parse_header(h, &ck->cfg, path, d) || !check_size(&ck->cfg, size, path, d))
    return false;
  if (!alloc_all(ck)) {
    rt_error_file(d, path, "out of memory for %s bytes of weights",
                  group_digits(b, sizeof b, size - L2C_HEADER));
    return false;
  }
  size_t n = (size_t)(size - L2C_HEADER) / sizeof(float);
  if (fread(ck->all, sizeof(float), n, f) != n) {
    rt_error_file(d, path, "read error: %s", ferror(f) ? strerror(errno) : "unexpected end");
    return false;
  }
  return check_finite(ck, path, d);
}

bool l2c_read(const char *path, L2cCheckpoint *ck, RtDiag *d) {
  memset(ck, 0, sizeof *ck);
  uint64_t size;
  FILE *f = open_sized(path, &size, d);
  if (!f)
    return false;
  bool ok = read_checkpoint(f, size, path, ck, d);
  fclose(f);
  if (!ok)
    l2c_free(ck);
  return ok;
}

//
// Writing
//

typedef struct L2cWrite {
  const L2cCheckpoint *ck;
  const L2cTensor *t[16]; // ck's tensor for each array of the layout; NULL: compute it
  int n;
} L2cWrite;

// Whether ck's tensor has the layout's shape.
static bool same_shape(const L2cTensor *a, const L2cTensor *want) {
  if (a->rank != want->rank || !a->data)
    return false;
  for (int i = 0; i < a->rank; i++)
    if (a->dims[i] != want->dims[i])
      return false;
  return true;
}

// Matches ck's tensors to the layout of its config; reports what does not fit.
static bool plan_write(const L2cCheckpoint *ck, L2cWrite *w, const char *path, RtDiag *d) {
  L2cTensor want[16];
  char shape[96];
  w->ck = ck;
  w->n = layout(&ck->cfg, want);
  if (ck->cfg.shared_cls && l2c_find(ck, "wcls")) {
    rt_error_file(d, path, "cannot write: a tied checkpoint (shared_cls) with a 'wcls' array");
    return false;
  }
  for (int i = 0; i < w->n; i++) {
    w->t[i] = l2c_find(ck, want[i].name);
    bool rope = i == 11 || i == 12;
    if (w->t[i] && same_shape(w->t[i], &want[i]))
      continue;
    if (rope && !w->t[i])
      continue;
    rt_shape_str(shape, sizeof shape, want[i].rank, want[i].dims);
    rt_error_file(d, path, "cannot write: array '%s' %s, expected %s", want[i].name,
                  w->t[i] ? "has another shape" : "is missing", shape);
    return false;
  }
  return true;
}

static bool fill_rope(FILE *f, const L2cConfig *c, bool imag) {
  float row[1024]; // on the heap for heads over 2048 wide
  int half = c->dim / c->heads / 2;
  float *buf = half <= 1024 ? row : malloc((size_t)half * sizeof(float));
  bool ok = buf != NULL;
  for (int p = 0; ok && p < c->seq; p++) {
    rope_row(c, p, imag, buf);
    ok = fwrite(buf, sizeof(float), (size_t)half, f) == (size_t)half;
  }
  if (buf != row)
    free(buf);
  return ok;
}

static bool fill_checkpoint(FILE *f, void *ctx) {
  const L2cWrite *w = ctx;
  const L2cConfig *c = &w->ck->cfg;
  int32_t h[7] = {c->dim, c->hidden, c->layers, c->heads, c->kv_heads,
                  c->shared_cls ? c->vocab : -c->vocab, c->seq};
  if (fwrite(h, sizeof h, 1, f) != 1)
    return false;
  for (int i = 0; i < w->n; i++) {
    if (!w->t[i]) {
      if (!fill_rope(f, c, i == 12))
        return false;
      continue;
    }
    size_t k = (size_t)rt_numel(w->t[i]->rank, w->t[i]->dims);
    if (fwrite(w->t[i]->data, sizeof(float), k, f) != k)
      return false;
  }
  return true;
}

bool l2c_write(const char *path, const L2cCheckpoint *ck, RtDiag *d) {
  L2cWrite w;
  if (!check_config(&ck->cfg, path, "configuration", d) || !plan_write(ck, &w, path, d))
    return false;
  return rt_write_atomic(path, fill_checkpoint, &w, d);
}
