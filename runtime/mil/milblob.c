// milblob.c — MILBlob v2 weight files (coremltools StorageFormat.hpp): loads a
// file and checks its header, checks each blob's metadata record when it is
// asked for, and writes files atomically. Every malformed case is an error
// naming the file and the offset; all fields are little-endian.
#include "mil.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { ALIGN = 64, HEADER_SIZE = 64, META_SIZE = 64, VERSION = 2 };
static const uint32_t SENTINEL = 0xDEADBEEF;

uint32_t milblob_dtype(MilDType t) {
  static const uint32_t codes[MIL_NDTYPES] = {
      [MIL_FP16] = MILBLOB_FP16,   [MIL_FP32] = MILBLOB_FP32,     [MIL_UINT8] = MILBLOB_UINT8,
      [MIL_INT8] = MILBLOB_INT8,   [MIL_BF16] = MILBLOB_BF16,     [MIL_INT16] = MILBLOB_INT16,
      [MIL_UINT16] = MILBLOB_UINT16, [MIL_INT4] = MILBLOB_INT4,   [MIL_UINT1] = MILBLOB_UINT1,
      [MIL_UINT2] = MILBLOB_UINT2, [MIL_UINT4] = MILBLOB_UINT4,   [MIL_INT32] = MILBLOB_INT32,
      [MIL_UINT32] = MILBLOB_UINT32,
  };
  return (unsigned)t < MIL_NDTYPES ? codes[t] : 0;
}

static bool dtype_known(uint32_t code) {
  return code >= MILBLOB_FP16 && code <= MILBLOB_FP8E5M2;
}

//
// Reading
//

// All of path, a regular file of at most RT_READ_MAX bytes, into f->bytes.
static bool load(MilBlobFile *f, const char *path, RtDiag *d) {
  f->bytes = rt_read_file(path, &f->len, d);
  return f->bytes != NULL;
}

static bool check_header(const MilBlobFile *f, RtDiag *d) {
  if (f->len < HEADER_SIZE) {
    rt_error_file(d, f->path, "file of %zu bytes is too short for the 64-byte MILBlob header",
                  f->len);
    return false;
  }
  uint32_t version = (uint32_t)rt_get_le(f->bytes + 4, 4);
  uint64_t count = rt_get_le(f->bytes, 4), room = (f->len - HEADER_SIZE) / META_SIZE;
  if (version != VERSION)
    rt_error_file(d, f->path, "unsupported MILBlob version %u at offset 4 (expected 2)", version);
  else if (count > room)
    rt_error_file(d, f->path,
                  "header at offset 0 claims %llu blobs, but the file (%zu bytes) has room "
                  "for at most %llu",
                  (unsigned long long)count, f->len, (unsigned long long)room);
  return version == VERSION && count <= room;
}

bool milblob_open(MilBlobFile *f, const char *path, RtDiag *d) {
  memset(f, 0, sizeof *f);
  f->path = strdup(path);
  if (!f->path) {
    rt_error_file(d, path, "cannot read: %s", strerror(ENOMEM));
    return false;
  }
  if (!load(f, path, d)) {
    milblob_close(f);
    return false;
  }
  if (!check_header(f, d)) {
    milblob_close(f);
    return false;
  }
  f->count = (uint32_t)rt_get_le(f->bytes, 4);
  return true;
}

// Where the metadata record at `offset` may be: aligned, after the header,
// inside the file.
static bool check_meta_offset(const MilBlobFile *f, uint64_t offset, RtDiag *d) {
  unsigned long long off = (unsigned long long)offset;
  if (offset % ALIGN)
    rt_error_file(d, f->path, "blob offset %llu is not a multiple of 64", off);
  else if (offset < HEADER_SIZE)
    rt_error_file(d, f->path, "blob offset %llu is inside the 64-byte file header", off);
  else if (offset > f->len || f->len - offset < META_SIZE)
    rt_error_file(d, f->path,
                  "blob metadata at offset %llu is beyond the end of the file (%zu bytes)", off,
                  f->len);
  else
    return true;
  return false;
}

bool milblob_get(const MilBlobFile *f, uint64_t offset, MilBlob *out, RtDiag *d) {
  if (!check_meta_offset(f, offset, d))
    return false;
  const unsigned char *m = f->bytes + offset;
  unsigned long long off = (unsigned long long)offset;
  uint32_t sentinel = (uint32_t)rt_get_le(m, 4), dtype = (uint32_t)rt_get_le(m + 4, 4);
  uint64_t size = rt_get_le(m + 8, 8), data = rt_get_le(m + 16, 8);
  if (sentinel != SENTINEL) {
    rt_error_file(d, f->path, "bad sentinel 0x%08x at offset %llu (expected 0xdeadbeef)", sentinel,
                  off);
  } else if (!dtype_known(dtype)) {
    rt_error_file(d, f->path, "unknown blob dtype %u at offset %llu", dtype, off + 4);
  } else if (data < offset + META_SIZE) {
    rt_error_file(d, f->path,
                  "blob data offset %llu at offset %llu points into the metadata or before it",
                  (unsigned long long)data, off + 16);
  } else if (data > f->len || size > f->len - data) {
    rt_error_file(d, f->path,
                  "blob data of %llu bytes at offset %llu (metadata at offset %llu) extends beyond "
                  "the end of the file (%zu bytes)",
                  (unsigned long long)size, (unsigned long long)data, off, f->len);
  } else {
    *out = (MilBlob){dtype, size, f->bytes + data};
    return true;
  }
  return false;
}

void milblob_close(MilBlobFile *f) {
  free(f->path);
  free(f->bytes);
  memset(f, 0, sizeof *f);
}

//
// Writing
//

static bool write_padding(FILE *fp, uint64_t *pos) {
  static const unsigned char zeros[ALIGN];
  size_t n = (size_t)((ALIGN - *pos % ALIGN) % ALIGN);
  *pos += n;
  return fwrite(zeros, 1, n, fp) == n;
}

// One blob at *pos (aligned): its metadata record, then its data.
static bool write_blob(FILE *fp, const MilBlob *b, uint64_t *pos) {
  unsigned char meta[META_SIZE] = {0};
  rt_put_le(meta, SENTINEL, 4);
  rt_put_le(meta + 4, b->dtype, 4);
  rt_put_le(meta + 8, b->size, 8);
  rt_put_le(meta + 16, *pos + META_SIZE, 8);
  *pos += META_SIZE + b->size;
  return fwrite(meta, 1, META_SIZE, fp) == META_SIZE &&
         (!b->size || fwrite(b->data, 1, (size_t)b->size, fp) == b->size);
}

static bool write_all(FILE *fp, const MilBlob *blobs, int n, uint64_t *offsets) {
  unsigned char header[HEADER_SIZE] = {0};
  rt_put_le(header, (uint64_t)n, 4);
  rt_put_le(header + 4, VERSION, 4);
  uint64_t pos = HEADER_SIZE;
  bool ok = fwrite(header, 1, HEADER_SIZE, fp) == HEADER_SIZE;
  for (int i = 0; ok && i < n; i++) {
    ok = write_padding(fp, &pos);
    if (offsets)
      offsets[i] = pos;
    ok = ok && write_blob(fp, &blobs[i], &pos);
  }
  return ok && fflush(fp) == 0 && fsync(fileno(fp)) == 0;
}

static bool check_blobs(const char *path, const MilBlob *blobs, int n, RtDiag *d) {
  for (int i = 0; i < n; i++) {
    if (!dtype_known(blobs[i].dtype)) {
      rt_error_file(d, path, "blob %d has unknown dtype %u", i, blobs[i].dtype);
      return false;
    }
    if (blobs[i].size && !blobs[i].data) {
      rt_error_file(d, path, "blob %d has %llu bytes but no data", i,
                    (unsigned long long)blobs[i].size);
      return false;
    }
  }
  return n >= 0;
}

typedef struct BlobWrite {
  const MilBlob *blobs;
  int n;
  uint64_t *offsets;
} BlobWrite;

static bool fill_blobs(FILE *f, void *ctx) {
  BlobWrite *w = ctx;
  return write_all(f, w->blobs, w->n, w->offsets);
}

bool milblob_write(const char *path, const MilBlob *blobs, int n, uint64_t *offsets, RtDiag *d) {
  if (!check_blobs(path, blobs, n, d))
    return false;
  BlobWrite w = {blobs, n, offsets};
  return rt_write_atomic(path, fill_blobs, &w, d);
}
