// source.c — reads a model file into the diagnostics' file table and checks
// that it is text the lexer can take: at most 64 MiB, no NUL bytes, valid
// UTF-8 (a leading byte-order mark becomes three spaces). Also registers the
// prelude embedded at build time.
#define _POSIX_C_SOURCE 200809L
#include "dsl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { SOURCE_MAX = 64 << 20 }; // largest model file, in bytes

// The buffer size to start reading fp with; sets *err for a directory or a
// regular file over the limit.
static size_t stream_first_cap(FILE *fp, int *err) {
  struct stat st;
  *err = 0;
  if (fstat(fileno(fp), &st) != 0)
    return 1 << 16;
  if (S_ISDIR(st.st_mode))
    *err = EISDIR;
  else if (S_ISREG(st.st_mode) && st.st_size > SOURCE_MAX)
    *err = EFBIG;
  else if (S_ISREG(st.st_mode))
    return (size_t)st.st_size + 1; // + 1 to see the end in one read
  return 1 << 16;
}

// Reads all of fp into a malloc'ed buffer. Returns 0 or an errno value;
// EFBIG stands for "larger than SOURCE_MAX".
static int read_stream(FILE *fp, char **text, size_t *len) {
  int err;
  size_t cap = stream_first_cap(fp, &err), n = 0, got;
  if (err)
    return err;
  char *buf = malloc(cap);
  while (buf && n <= SOURCE_MAX && (got = fread(buf + n, 1, cap - n, fp)) > 0) {
    n += got;
    if (n == cap) {
      cap = 2 * cap > SOURCE_MAX + 1 ? SOURCE_MAX + 1 : 2 * cap;
      char *grown = realloc(buf, cap);
      if (!grown)
        free(buf);
      buf = grown;
    }
  }
  if (!buf)
    err = ENOMEM;
  else if (n > SOURCE_MAX)
    err = EFBIG;
  else if (ferror(fp))
    err = errno ? errno : EIO;
  if (err)
    free(buf);
  *text = err ? NULL : buf;
  *len = n;
  return err;
}

static int read_file(const char *path, char **text, size_t *len) {
  FILE *fp;
  uint64_t size;
  int err = rt_open_regular(path, SOURCE_MAX, &fp, &size);
  if (err)
    return err == RT_ETOOBIG ? EFBIG : err;
  errno = 0;
  err = read_stream(fp, text, len);
  fclose(fp);
  return err;
}

// The location of byte `off` of file `id`, one byte wide.
static SrcLoc source_loc(const SrcFile *f, int id, size_t off) {
  int line = 1;
  size_t start = 0;
  for (const char *p = f->text; (p = memchr(p, '\n', off - (size_t)(p - f->text))); p++) {
    line++;
    start = (size_t)(p + 1 - f->text);
  }
  int col = (int)(off - start) + 1;
  return (SrcLoc){id, line, col, line, col};
}

// Reports the first NUL byte or malformed UTF-8 sequence of file `id`: only
// the first, since a binary file would otherwise bring thousands.
static bool source_check(Diag *d, int id) {
  const SrcFile *f = &d->files[id];
  size_t i = 0;
  while (i < f->len) {
    unsigned char c = (unsigned char)f->text[i];
    int k = c == 0 ? 0 : c < 0x80 ? 1 : utf8_decode(f->text + i, f->len - i, NULL);
    if (k == 0 && c == 0) {
      diag_error(d, source_loc(f, id, i), "NUL byte in source file");
      return false;
    }
    if (k == 0) {
      diag_error(d, source_loc(f, id, i), "invalid UTF-8 byte 0x%02x in source file", c);
      return false;
    }
    i += (size_t)k;
  }
  return true;
}

int source_load(Diag *d, const char *path) {
  char *text = NULL;
  size_t len = 0;
  int err = read_file(path, &text, &len);
  if (err == EFBIG) {
    diag_error(d, loc_none(), "cannot read '%s': file is larger than 64 MiB", path);
    return -1;
  }
  if (err) {
    diag_error(d, loc_none(), "cannot read '%s': %s", path, rt_open_strerror(err));
    return -1;
  }
  if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
    memcpy(text, "   ", 3); // a BOM: blanks keep the byte columns right
  int id = diag_add_file(d, path, text, len);
  free(text);
  return source_check(d, id) ? id : -1;
}

int source_load_prelude(Diag *d) {
  return diag_add_file(d, "<prelude>", anec_prelude_text, strlen(anec_prelude_text));
}
