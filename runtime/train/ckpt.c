// ckpt.c — training checkpoints: the model's hash (of its tensors' names and
// shapes) and the plan's (of the generated step), the step, generator, data
// cursor, loss scale and skipped steps, and every tensor's fp32 weights and
// AdamW moments, in one little-endian file sealed by an FNV-1a 64 checksum.
// Written atomically (fsync'ed before the rename); read (version 3, or 2)
// into the caller's buffers only after every check has passed.
#include "train.h"

#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char ckpt_magic[8] = "ANECKPT"; // and its NUL
// Bytes before the first tensor (version 3; version 2: 8 fewer); the checksum.
enum { CKPT_HEADER = 84, CKPT_HEADER_V2 = 76, CKPT_TRAILER = 8 };

static uint32_t f32_bits(float x) {
  uint32_t u;
  memcpy(&u, &x, sizeof u);
  return u;
}

static float bits_f32(uint32_t u) {
  float x;
  memcpy(&x, &u, sizeof x);
  return x;
}

//
// The model hash
//

// The layout of a tensor's state; a hyper-parameter that changes what the
// values mean would be added here (and so change every model hash).
static const char state_tag[] = "anec training state: fp32 weights, AdamW m fp32, AdamW v fp32";

uint64_t ckpt_model_hash(const TrainTensor *t, int n) {
  uint64_t h = rt_fnv1a(RT_FNV_OFFSET, state_tag, sizeof state_tag);
  for (int i = 0; i < n; i++) {
    size_t len = t[i].name ? strlen(t[i].name) : 0;
    unsigned char b[8] = {(unsigned char)len};
    h = rt_fnv1a(rt_fnv1a(h, b, 1), t[i].name, len);
    b[0] = (unsigned char)t[i].rank;
    h = rt_fnv1a(h, b, 1);
    for (int k = 0; k < t[i].rank && k < 4; k++) {
      rt_put_le(b, (uint64_t)t[i].dims[k], 8);
      h = rt_fnv1a(h, b, 8);
    }
  }
  return h;
}

//
// Writing
//

typedef struct CkptOut {
  FILE *f;
  uint64_t hash; // of every byte written so far
} CkptOut;

static bool out_bytes(CkptOut *o, const void *p, size_t n) {
  o->hash = rt_fnv1a(o->hash, p, n);
  return fwrite(p, 1, n, o->f) == n;
}

static bool out_int(CkptOut *o, uint64_t v, int bytes) {
  unsigned char b[8];
  rt_put_le(b, v, bytes);
  return out_bytes(o, b, (size_t)bytes);
}

static bool out_floats(CkptOut *o, const float *x, int64_t n) {
  unsigned char b[4096];
  for (int64_t i = 0; i < n;) {
    size_t k = 0;
    for (; k < sizeof b && i < n; k += 4, i++)
      rt_put_le(b + k, f32_bits(x[i]), 4);
    if (!out_bytes(o, b, k))
      return false;
  }
  return true;
}

static bool out_header(CkptOut *o, const Ckpt *c) {
  return out_bytes(o, ckpt_magic, 8) && out_int(o, CKPT_VERSION, 4) &&
         out_int(o, c->model_hash, 8) && out_int(o, c->plan_hash, 8) &&
         out_int(o, (uint64_t)c->step, 8) && out_int(o, c->rng, 8) &&
         out_int(o, c->cursor.rng, 8) && out_int(o, (uint64_t)c->cursor.next, 8) &&
         out_int(o, f32_bits(c->loss_scale), 4) && out_int(o, (uint64_t)c->good_steps, 8) &&
         out_int(o, (uint64_t)c->skipped, 8) && out_int(o, (uint64_t)c->ntensors, 4);
}

static bool out_tensor(CkptOut *o, const CkptTensor *t) {
  size_t len = strlen(t->name);
  return out_int(o, len, 1) && out_bytes(o, t->name, len) &&
         out_int(o, (uint64_t)t->count, 8) && out_floats(o, t->w, t->count) &&
         out_floats(o, t->m, t->count) && out_floats(o, t->v, t->count);
}

static bool fill_ckpt(FILE *f, void *ctx) {
  const Ckpt *c = ctx;
  CkptOut o = {f, RT_FNV_OFFSET};
  bool ok = out_header(&o, c);
  for (int i = 0; ok && i < c->ntensors; i++)
    ok = out_tensor(&o, &c->t[i]);
  uint64_t sum = o.hash;
  return ok && out_int(&o, sum, 8);
}

// What the writer needs of a tensor: a name of 1 to 255 bytes, a count in
// range, and its three arrays.
static bool check_tensor(const CkptTensor *t, int i, const char *path, RtDiag *d) {
  size_t len = t->name ? strlen(t->name) : 0;
  if (len == 0 || len > CKPT_MAX_NAME) {
    rt_error_file(d, path, "cannot write: tensor %d has a name of %zu bytes (1 to %d)", i, len,
                  CKPT_MAX_NAME);
    return false;
  }
  if (t->count < 0 || t->count > RT_MAX_NUMEL) {
    rt_error_file(d, path, "cannot write: tensor '%s' has %lld elements", t->name,
                  (long long)t->count);
    return false;
  }
  if (t->count > 0 && (!t->w || !t->m || !t->v)) {
    rt_error_file(d, path, "cannot write: tensor '%s' lacks its weights or moments", t->name);
    return false;
  }
  return true;
}

// Makes the rename in path's directory durable; best effort (some file
// systems cannot sync a directory).
static void sync_dir(const char *path) {
  const char *slash = strrchr(path, '/');
  char *dir = !slash ? strdup(".") : strndup(path, slash == path ? 1 : (size_t)(slash - path));
  int fd = dir ? open(dir, O_RDONLY) : -1;
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
  free(dir);
}

bool ckpt_write(const char *path, const Ckpt *c, RtDiag *d) {
  if (c->ntensors < 0 || (c->ntensors > 0 && !c->t)) {
    rt_error_file(d, path, "cannot write: %d tensors", c->ntensors);
    return false;
  }
  for (int i = 0; i < c->ntensors; i++)
    if (!check_tensor(&c->t[i], i, path, d))
      return false;
  if (!rt_write_atomic(path, fill_ckpt, (void *)c, d))
    return false;
  sync_dir(path);
  return true;
}

//
// Reading
//

typedef struct CkptIn {
  const char *path;
  const unsigned char *p;
  size_t n;   // bytes of the file
  size_t end; // where the checksum starts
  size_t off;
  uint32_t version;
  size_t head; // bytes of its header: CKPT_HEADER or CKPT_HEADER_V2
  RtDiag *d;
} CkptIn;

// Magic, version and checksum, the checks before anything else is trusted.
static bool check_frame(CkptIn *in) {
  size_t k = in->n < 8 ? in->n : 8;
  if (memcmp(in->p, ckpt_magic, k)) {
    rt_error_file(in->d, in->path, "not an anec checkpoint (bad magic)");
    return false;
  }
  uint32_t version = in->n >= 12 ? (uint32_t)rt_get_le(in->p + 8, 4) : CKPT_VERSION;
  if (version < CKPT_VERSION_MIN || version > CKPT_VERSION) {
    rt_error_file(in->d, in->path, "checkpoint format version %u is not supported (this build "
                  "reads versions %d to %d)", version, CKPT_VERSION_MIN, CKPT_VERSION);
    return false;
  }
  in->version = version;
  in->head = version == CKPT_VERSION ? CKPT_HEADER : CKPT_HEADER_V2;
  if (in->n < in->head + CKPT_TRAILER) {
    rt_error_file(in->d, in->path, "truncated: %zu bytes; a checkpoint has at least %zu", in->n,
                  in->head + CKPT_TRAILER);
    return false;
  }
  in->end = in->n - CKPT_TRAILER;
  uint64_t stored = rt_get_le(in->p + in->end, 8), sum = rt_fnv1a(RT_FNV_OFFSET, in->p, in->end);
  if (stored != sum) {
    rt_error_file(in->d, in->path, "corrupted or truncated: the checksum of its %zu bytes is "
                  "0x%016llx, the file says 0x%016llx", in->end, (unsigned long long)sum,
                  (unsigned long long)stored);
    return false;
  }
  return true;
}

// The model hash (version 3; version 2 has none) and tensor count against
// the expected ones.
static bool check_header(CkptIn *in, const Ckpt *want) {
  uint64_t hash = rt_get_le(in->p + 12, 8);
  if (in->version == CKPT_VERSION && hash != want->model_hash) {
    rt_error_file(in->d, in->path, "checkpoint '%s' is from a different model (hash "
                  "0x%016llx, this model 0x%016llx)", in->path, (unsigned long long)hash,
                  (unsigned long long)want->model_hash);
    return false;
  }
  uint32_t n = (uint32_t)rt_get_le(in->p + in->head - 4, 4);
  if (want->ntensors < 0 || n != (uint32_t)want->ntensors || (n > 0 && !want->t)) {
    rt_error_file(in->d, in->path, "has %u tensors, this model %d", n, want->ntensors);
    return false;
  }
  in->off = in->head;
  return true;
}

// name[0..n) for a message: printable ASCII, '?' for other bytes.
static const char *printable(char *buf, const unsigned char *name, size_t n) {
  for (size_t i = 0; i < n; i++)
    buf[i] = name[i] >= 0x20 && name[i] < 0x7F ? (char)name[i] : '?';
  buf[n] = '\0';
  return buf;
}

// The name and count of tensor i at in->off against the expected tensor;
// *count receives the count.
static bool check_tensor_head(CkptIn *in, int i, const CkptTensor *want, int64_t *count) {
  size_t len = in->end - in->off >= 1 ? in->p[in->off] : 0;
  if (in->end - in->off < 1 + len + 8) {
    rt_error_file(in->d, in->path, "truncated in tensor %d (at byte %zu)", i, in->off);
    return false;
  }
  const unsigned char *name = in->p + in->off + 1;
  const char *w = want->name ? want->name : "";
  if (len != strlen(w) || memcmp(name, w, len)) {
    char buf[CKPT_MAX_NAME + 1];
    rt_error_file(in->d, in->path, "tensor %d is '%s', this model's is '%s'", i,
                  printable(buf, name, len), w);
    return false;
  }
  *count = (int64_t)rt_get_le(name + len, 8);
  if (*count != want->count) {
    rt_error_file(in->d, in->path, "tensor '%s' has %lld elements, this model's %lld", w,
                  (long long)*count, (long long)want->count);
    return false;
  }
  in->off += 1 + len + 8;
  return true;
}

// The data of a tensor of `count` elements at in->off: in the file, and
// somewhere to go.
static bool check_tensor_data(CkptIn *in, const CkptTensor *want, int64_t count) {
  const char *name = want->name ? want->name : "";
  if (count < 0 || (uint64_t)count > (in->end - in->off) / 12) {
    rt_error_file(in->d, in->path, "truncated in tensor '%s': %lld elements need %llu bytes, "
                  "%zu remain", name, (long long)count, (unsigned long long)count * 12,
                  in->end - in->off);
    return false;
  }
  if (count > 0 && (!want->w || !want->m || !want->v)) {
    rt_error_file(in->d, in->path, "cannot read tensor '%s': no buffers for it", name);
    return false;
  }
  return true;
}

// The first element of n floats at in->off that a trained tensor cannot hold
// (not finite; negative for the second moments), as an index; -1 for none.
static int64_t bad_float(const CkptIn *in, int64_t n, bool moment2) {
  for (int64_t i = 0; i < n; i++) {
    float x = bits_f32((uint32_t)rt_get_le(in->p + in->off + 4 * (size_t)i, 4));
    if (!isfinite(x) || (moment2 && x < 0))
      return i;
  }
  return -1;
}

// Weights, first and second moments of a tensor of `count` elements at
// in->off: every value finite, the second moments not negative.
static bool check_values(CkptIn *in, const char *name, int64_t count) {
  static const char *const what[3] = {"weight", "AdamW first moment", "AdamW second moment"};
  for (int k = 0; k < 3; k++) {
    int64_t i = bad_float(in, count, k == 2);
    if (i >= 0) {
      float x = bits_f32((uint32_t)rt_get_le(in->p + in->off + 4 * (size_t)i, 4));
      rt_error_file(in->d, in->path, "tensor '%s': %s %lld is %g; a checkpoint holds finite "
                    "values%s", name, what[k], (long long)i, (double)x,
                    k == 2 ? ", not negative" : "");
      return false;
    }
    in->off += 4 * (size_t)count;
  }
  return true;
}

static void read_floats(CkptIn *in, float *x, int64_t n) {
  for (int64_t i = 0; i < n; i++, in->off += 4)
    x[i] = bits_f32((uint32_t)rt_get_le(in->p + in->off, 4));
}

// Walks the tensors from in->off: checks every one (fill false), or copies
// their data into the expected tensors (fill true, after a check).
static bool walk_tensors(CkptIn *in, const Ckpt *want, bool fill) {
  for (int i = 0; i < want->ntensors; i++) {
    const CkptTensor *t = &want->t[i];
    int64_t count;
    if (!check_tensor_head(in, i, t, &count) || !check_tensor_data(in, t, count))
      return false;
    if (!fill) {
      if (!check_values(in, t->name ? t->name : "", count))
        return false;
      continue;
    }
    read_floats(in, t->w, count);
    read_floats(in, t->m, count);
    read_floats(in, t->v, count);
  }
  if (in->off != in->end) {
    rt_error_file(in->d, in->path, "%zu bytes after the last tensor", in->end - in->off);
    return false;
  }
  return true;
}

static void read_scalars(const CkptIn *in, Ckpt *into);

// The step, counters and loss scale within what a run can reach.
static bool check_scalars(const CkptIn *in) {
  Ckpt c;
  read_scalars(in, &c);
  const char *bad = NULL;
  if (c.step < 0 || c.step > CKPT_MAX_STEP)
    bad = "step";
  else if (c.cursor.next < 0)
    bad = "data cursor";
  else if (!isfinite(c.loss_scale) || c.loss_scale < LOSS_SCALE_MIN || c.loss_scale > 0x1p64f)
    bad = "loss scale";
  else if (c.good_steps < 0 || c.good_steps > c.step)
    bad = "count of good steps";
  else if (c.skipped < 0 || c.skipped > c.step)
    bad = "count of skipped steps";
  if (bad)
    rt_error_file(in->d, in->path, "impossible %s (step %lld, loss scale %g, good %lld, skipped "
                  "%lld, cursor %lld)", bad, (long long)c.step, (double)c.loss_scale,
                  (long long)c.good_steps, (long long)c.skipped, (long long)c.cursor.next);
  return !bad;
}

// The plan hash and what follows it (at 12 in version 2, 20 in version 3).
static void read_scalars(const CkptIn *in, Ckpt *into) {
  const unsigned char *p = in->p + in->head - CKPT_HEADER_V2;
  into->plan_hash = rt_get_le(p + 12, 8);
  into->step = (int64_t)rt_get_le(p + 20, 8);
  into->rng = rt_get_le(p + 28, 8);
  into->cursor.rng = rt_get_le(p + 36, 8);
  into->cursor.next = (int64_t)rt_get_le(p + 44, 8);
  into->loss_scale = bits_f32((uint32_t)rt_get_le(p + 52, 4));
  into->good_steps = (int64_t)rt_get_le(p + 56, 8);
  into->skipped = (int64_t)rt_get_le(p + 64, 8);
}

bool ckpt_read(const char *path, Ckpt *into, RtDiag *d) {
  size_t n;
  unsigned char *bytes = rt_read_file(path, &n, d);
  if (!bytes)
    return false;
  CkptIn in = {path, bytes, n, 0, 0, 0, 0, d};
  bool ok = check_frame(&in) && check_header(&in, into) && check_scalars(&in) &&
            walk_tensors(&in, into, false);
  if (ok) {
    in.off = in.head;
    walk_tensors(&in, into, true);
    read_scalars(&in, into);
  }
  free(bytes);
  return ok;
}
