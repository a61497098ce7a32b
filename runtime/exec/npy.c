// npy.c — NumPy .npy files of fp16, fp32 and int32 in C order: a strict
// reader (magic, version 1.0/2.0/3.0, the header dict with exactly descr,
// fortran_order and shape, data size to the byte) and an atomic writer
// (temp file in the same directory, then rename).
#include "exec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "npy.c assumes a little-endian host"
#endif

enum { NPY_MAX_HEADER = 1 << 20 }; // header bytes; numpy writes < 1 KiB

static const char npy_magic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};
static const char *const npy_keys[3] = {"descr", "fortran_order", "shape"};

typedef struct NpyHeader {
  MilDType dtype;
  bool swap;    // big-endian data
  bool fortran;
  bool seen[3]; // descr, fortran_order, shape
  int rank;
  int64_t dims[MIL_MAX_RANK];
} NpyHeader;

// A cursor over the header text; errors name the file.
typedef struct Lex {
  const char *p, *start, *end;
  const char *path;
  RtDiag *d;
} Lex;

static bool lex_fail(Lex *l, const char *fmt, ...) ANERT_PRINTF(2, 3);
static bool lex_fail(Lex *l, const char *fmt, ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  rt_error_file(l->d, l->path, "bad .npy header at byte %d: %s", (int)(l->p - l->start) + 1,
                msg);
  return false;
}

static void lex_space(Lex *l) {
  while (l->p < l->end && (*l->p == ' ' || *l->p == '\t'))
    l->p++;
}

static bool lex_eat(Lex *l, char c) {
  lex_space(l);
  if (l->p < l->end && *l->p == c) {
    l->p++;
    return true;
  }
  return false;
}

static bool lex_expect(Lex *l, char c) {
  return lex_eat(l, c) || lex_fail(l, "expected '%c'", c);
}

// A quoted Python string without escapes, up to n - 1 bytes.
static bool lex_string(Lex *l, char *buf, size_t n) {
  lex_space(l);
  char q = l->p < l->end ? *l->p : 0;
  if (q != '\'' && q != '"')
    return lex_fail(l, "expected a quoted string");
  const char *s = ++l->p;
  while (l->p < l->end && *l->p != q && *l->p != '\\' && *l->p != '\n')
    l->p++;
  if (l->p == l->end || *l->p != q || (size_t)(l->p - s) >= n)
    return lex_fail(l, "bad or overlong string");
  memcpy(buf, s, (size_t)(l->p - s));
  buf[l->p - s] = '\0';
  l->p++;
  return true;
}

static bool lex_word(Lex *l, const char *w) {
  lex_space(l);
  size_t n = strlen(w);
  if ((size_t)(l->end - l->p) < n || memcmp(l->p, w, n))
    return false;
  l->p += n;
  return true;
}

// A non-negative integer (Python 2's numpy wrote 5L).
static bool lex_dim(Lex *l, int64_t *v) {
  lex_space(l);
  if (l->p == l->end || *l->p < '0' || *l->p > '9')
    return lex_fail(l, "expected a dimension (a non-negative integer)");
  int64_t x = 0;
  while (l->p < l->end && *l->p >= '0' && *l->p <= '9') {
    if (x > (RT_MAX_NUMEL - 9) / 10)
      return lex_fail(l, "dimension too large");
    x = x * 10 + (*l->p++ - '0');
  }
  if (l->p < l->end && *l->p == 'L')
    l->p++;
  *v = x;
  return true;
}

static bool parse_shape(Lex *l, NpyHeader *h) {
  if (!lex_eat(l, '('))
    return lex_fail(l, "'shape' must be a tuple, like (2, 3) or (5,)");
  h->rank = 0;
  while (!lex_eat(l, ')')) {
    if (h->rank == MIL_MAX_RANK)
      return lex_fail(l, "more than %d dimensions", MIL_MAX_RANK);
    if (!lex_dim(l, &h->dims[h->rank++]))
      return false;
    if (!lex_eat(l, ',')) {
      if (h->rank == 1) // (5) is an int in Python, not a tuple
        return lex_fail(l, "expected ',' (a 1-tuple is written (n,))");
      if (!lex_expect(l, ')'))
        return false;
      break;
    }
  }
  if (rt_numel(h->rank, h->dims) < 0)
    return lex_fail(l, "shape too large (over %lld elements)", (long long)RT_MAX_NUMEL);
  return true;
}

static bool parse_descr(Lex *l, NpyHeader *h) {
  char s[32];
  if (lex_eat(l, '['))
    return lex_fail(l, "structured dtypes are not supported");
  if (!lex_string(l, s, sizeof s))
    return false;
  static const struct { const char *code; MilDType t; } codes[] = {
      {"f2", MIL_FP16}, {"f4", MIL_FP32}, {"i4", MIL_INT32}};
  for (int i = 0; i < 3; i++)
    if ((s[0] == '<' || s[0] == '>' || s[0] == '=') && !strcmp(s + 1, codes[i].code)) {
      h->dtype = codes[i].t;
      h->swap = s[0] == '>';
      return true;
    }
  return lex_fail(l, "dtype '%s' is not supported: use float16 ('<f2'), float32 ('<f4') or "
                     "int32 ('<i4')", s);
}

static bool parse_item(Lex *l, NpyHeader *h) {
  char key[32];
  if (!lex_string(l, key, sizeof key))
    return false;
  int k = 0;
  while (k < 3 && strcmp(key, npy_keys[k]))
    k++;
  if (k == 3)
    return lex_fail(l, "unknown key '%s'", key);
  if (h->seen[k])
    return lex_fail(l, "key '%s' given twice", key);
  h->seen[k] = true;
  if (!lex_expect(l, ':'))
    return false;
  if (k == 0)
    return parse_descr(l, h);
  if (k == 2)
    return parse_shape(l, h);
  if (lex_word(l, "True"))
    h->fortran = true;
  else if (!lex_word(l, "False"))
    return lex_fail(l, "'fortran_order' must be True or False");
  return true;
}

// The dict, then spaces and the final newline.
static bool parse_dict(Lex *l, NpyHeader *h) {
  if (!lex_expect(l, '{'))
    return false;
  while (!lex_eat(l, '}')) {
    if (!parse_item(l, h))
      return false;
    if (lex_eat(l, ','))
      continue;
    if (!lex_expect(l, '}'))
      return false;
    break;
  }
  for (int k = 0; k < 3; k++)
    if (!h->seen[k])
      return lex_fail(l, "missing key '%s'", npy_keys[k]);
  lex_space(l);
  if (l->p + 1 != l->end || *l->p != '\n')
    return lex_fail(l, "expected the end of the header (a newline) after the dict");
  if (h->fortran && h->rank > 1)
    return lex_fail(l, "Fortran-order arrays are not supported: save a C-order array "
                       "(numpy.ascontiguousarray)");
  return true;
}

// Reads the magic, version and header; leaves f at the data.
static bool read_header(FILE *f, const char *path, NpyHeader *h, RtDiag *d) {
  unsigned char pre[12];
  size_t got = fread(pre, 1, 10, f);
  if (got < 8 || memcmp(pre, npy_magic, 6)) {
    rt_error_file(d, path, "not a .npy file (bad magic)");
    return false;
  }
  int major = pre[6], minor = pre[7];
  if ((major < 1 || major > 3) || minor != 0) {
    rt_error_file(d, path, ".npy format version %d.%d is not supported (1.0, 2.0, 3.0 are)",
                  major, minor);
    return false;
  }
  size_t lenbytes = major == 1 ? 2 : 4;
  if (got < 10 || (lenbytes == 4 && fread(pre + 10, 1, 2, f) != 2)) {
    rt_error_file(d, path, "truncated .npy header");
    return false;
  }
  size_t hlen = pre[8] | (size_t)pre[9] << 8;
  if (lenbytes == 4)
    hlen |= (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
  if (hlen > NPY_MAX_HEADER) {
    rt_error_file(d, path, ".npy header of %zu bytes is too large", hlen);
    return false;
  }
  char *text = malloc(hlen + 1);
  if (!text || fread(text, 1, hlen, f) != hlen) {
    free(text);
    rt_error_file(d, path, "truncated .npy header");
    return false;
  }
  Lex l = {text, text, text + hlen, path, d};
  memset(h, 0, sizeof *h);
  bool ok = parse_dict(&l, h);
  free(text);
  return ok;
}

static void swap_bytes(void *data, int64_t n, size_t size) {
  unsigned char *p = data;
  for (int64_t i = 0; i < n; i++, p += size)
    for (size_t a = 0, b = size - 1; a < b; a++, b--) {
      unsigned char t = p[a];
      p[a] = p[b], p[b] = t;
    }
}

// The data: exactly count elements, nothing after them.
static bool read_data(FILE *f, const char *path, const NpyHeader *h, RtTensor *t, RtDiag *d) {
  struct stat st;
  long pos = ftell(f);
  size_t need = (size_t)rt_numel(h->rank, h->dims) * rt_dtype_size(h->dtype);
  if (pos < 0 || fstat(fileno(f), &st) != 0) {
    rt_error_file(d, path, "cannot read: %s", strerror(errno));
    return false;
  }
  uint64_t have = (uint64_t)st.st_size - (uint64_t)pos;
  char shape[160];
  rt_shape_str(shape, sizeof shape, h->rank, h->dims);
  if (have != need) {
    rt_error_file(d, path, "%s: a %s %s array needs %zu bytes of data, the file has %llu",
                  have < need ? "truncated" : "trailing bytes", mil_dtype_name(h->dtype),
                  shape, need, (unsigned long long)have);
    return false;
  }
  if (!rt_tensor_alloc(t, h->dtype, h->rank, h->dims)) {
    rt_error_file(d, path, "out of memory for a %s array", shape);
    return false;
  }
  if (fread(t->data, 1, need, f) != need) {
    rt_error_file(d, path, "read error: %s", strerror(errno));
    rt_tensor_free(t);
    return false;
  }
  if (h->swap)
    swap_bytes(t->data, t->count, rt_dtype_size(h->dtype));
  return true;
}

bool npy_read(const char *path, RtTensor *out, RtDiag *d) {
  memset(out, 0, sizeof *out);
  FILE *f;
  uint64_t size;
  int err = rt_open_regular(path, RT_READ_MAX, &f, &size);
  if (err) {
    rt_error_file(d, path, "cannot open: %s", rt_open_strerror(err));
    return false;
  }
  NpyHeader h;
  bool ok = read_header(f, path, &h, d) && read_data(f, path, &h, out, d);
  fclose(f);
  return ok;
}

// The magic, version, length and dict, padded with spaces so that the data
// starts at a multiple of 64 bytes. Returns the total length.
static size_t npy_format_header(const RtTensor *t, char *buf, size_t cap) {
  static const char *const descr[MIL_NDTYPES] = {[MIL_FP16] = "<f2", [MIL_FP32] = "<f4",
                                                 [MIL_INT32] = "<i4"};
  char dict[512];
  int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                   descr[t->dtype]);
  for (int i = 0; i < t->rank; i++)
    n += snprintf(dict + n, sizeof dict - (size_t)n, "%s%lld", i ? ", " : "",
                  (long long)t->dims[i]);
  n += snprintf(dict + n, sizeof dict - (size_t)n, "%s), }", t->rank == 1 ? "," : "");
  size_t pre = 10, total = (pre + (size_t)n + 1 + 63) / 64 * 64; // v1: dict < 64 KiB
  if (total > cap)
    return 0;
  size_t hlen = total - pre;
  memcpy(buf, npy_magic, 6);
  buf[6] = 1, buf[7] = 0;
  buf[8] = (char)(hlen & 0xFF), buf[9] = (char)(hlen >> 8);
  memset(buf + pre, ' ', hlen);
  memcpy(buf + pre, dict, (size_t)n);
  buf[total - 1] = '\n';
  return total;
}

typedef struct NpyWrite {
  const char *header;
  size_t hn;
  const RtTensor *t;
} NpyWrite;

static bool fill_npy(FILE *f, void *ctx) {
  const NpyWrite *w = ctx;
  size_t bytes = (size_t)w->t->count * rt_dtype_size(w->t->dtype);
  return fwrite(w->header, 1, w->hn, f) == w->hn && fwrite(w->t->data, 1, bytes, f) == bytes;
}

bool npy_write(const char *path, const RtTensor *t, RtDiag *d) {
  char header[640];
  size_t hn = rt_dtype_size(t->dtype) && rt_numel(t->rank, t->dims) == t->count
                  ? npy_format_header(t, header, sizeof header)
                  : 0;
  if (!hn) {
    rt_error_file(d, path, "cannot write a tensor of dtype %s, rank %d as .npy",
                  mil_dtype_name(t->dtype), t->rank);
    return false;
  }
  NpyWrite w = {header, hn, t};
  return rt_write_atomic(path, fill_npy, &w, d);
}
