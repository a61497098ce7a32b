// atomic.c — whole files and directories: reading one into memory (the
// runtime's readers of tokenizers, datasets and checkpoints), mkdir -p, and writing an output file so
// that it is either complete or absent: a temp file next to the target,
// filled, flushed to disk, then renamed over it. Every writer of the
// toolchain (IR dumps, .npy, weight blobs, checkpoints) uses it.
#include "base.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// Fills a temp file created from `tmp` (a mkstemp template); 0 or an errno.
static int fill_temp(char *tmp, bool (*fill)(FILE *f, void *ctx), void *ctx) {
  int fd = mkstemp(tmp);
  if (fd < 0)
    return errno;
  FILE *f = fdopen(fd, "wb");
  if (!f) {
    int err = errno;
    close(fd);
    return err;
  }
  errno = 0;
  int err = fchmod(fd, 0644) == 0 && fill(f, ctx) ? 0 : errno ? errno : EIO;
  if (!err && (fflush(f) != 0 || fsync(fd) != 0))
    err = errno ? errno : EIO;
  if (fclose(f) != 0 && !err)
    err = errno ? errno : EIO;
  return err;
}

bool rt_write_atomic(const char *path, bool (*fill)(FILE *f, void *ctx), void *ctx, RtDiag *d) {
  size_t n = strlen(path);
  char *tmp = malloc(n + 11);
  int err = ENOMEM;
  if (tmp) {
    memcpy(tmp, path, n);
    memcpy(tmp + n, ".tmpXXXXXX", 11);
    err = fill_temp(tmp, fill, ctx);
    if (!err && rename(tmp, path) != 0)
      err = errno;
    if (err)
      unlink(tmp); // harmless when mkstemp failed: the template names no file
  }
  free(tmp);
  if (err)
    rt_error_file(d, path, "cannot write: %s", strerror(err));
  return !err;
}

unsigned char *rt_read_file(const char *path, size_t *n, RtDiag *d) {
  FILE *f = fopen(path, "rb");
  struct stat st;
  unsigned char *buf = NULL;
  if (!f || fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode))
    rt_error_file(d, path, "cannot open: %s", f ? "not a regular file" : strerror(errno));
  else if ((uint64_t)st.st_size >= SIZE_MAX / 2 || !(buf = malloc((size_t)st.st_size + 1)))
    rt_error_file(d, path, "out of memory for %lld bytes", (long long)st.st_size);
  else if (fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
    rt_error_file(d, path, "read error: %s", ferror(f) ? strerror(errno) : "unexpected end");
    free(buf), buf = NULL;
  }
  if (buf)
    buf[st.st_size] = '\0';
  *n = buf ? (size_t)st.st_size : 0;
  if (f)
    fclose(f);
  return buf;
}

int rt_mkdirs(const char *dir) {
  char *p = strdup(dir);
  int err = p ? 0 : ENOMEM;
  for (char *s = p ? strchr(p + 1, '/') : NULL; !err && s; s = strchr(s + 1, '/')) {
    *s = '\0'; // a parent
    err = mkdir(p, 0777) != 0 && errno != EEXIST ? errno : 0;
    *s = '/';
  }
  free(p);
  if (!err && mkdir(dir, 0777) != 0 && errno != EEXIST)
    err = errno;
  struct stat st;
  if (!err && (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)))
    err = ENOTDIR;
  return err;
}
