// atomic.c — whole files and directories: opening and reading input files
// (regular files only, of a bounded size: every reader of the toolchain goes
// through rt_open_regular), mkdir -p, and writing an output file so
// that it is either complete or absent: a temp file next to the target,
// filled, flushed to disk, then renamed over it. Every writer of the
// toolchain (IR dumps, .npy, weight blobs, checkpoints) uses it.
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE // syscall(), for renameat2 (rt_rename_exchange)
#endif
#include "base.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/syscall.h>
#endif

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

int rt_open_regular(const char *path, uint64_t max, FILE **f, uint64_t *size) {
  *f = NULL;
  // O_NONBLOCK: opening a FIFO for reading would wait for a writer.
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0)
    return errno;
  struct stat st;
  int err = fstat(fd, &st) != 0 ? errno : 0;
  if (!err && !S_ISREG(st.st_mode))
    err = RT_ENOTREG;
  if (!err && (uint64_t)st.st_size > max)
    err = RT_ETOOBIG;
  if (!err && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0)
    err = errno;
  if (!err && !(*f = fdopen(fd, "rb")))
    err = errno;
  if (err) {
    close(fd);
    return err;
  }
  *size = (uint64_t)st.st_size;
  return 0;
}

const char *rt_open_strerror(int err) {
  if (err == RT_ENOTREG)
    return "not a regular file";
  if (err == RT_ETOOBIG)
    return "file too large";
  return strerror(err);
}

unsigned char *rt_read_file_max(const char *path, uint64_t max, size_t *n, RtDiag *d) {
  FILE *f;
  uint64_t size = 0;
  unsigned char *buf = NULL;
  int err = rt_open_regular(path, max, &f, &size);
  *n = 0;
  if (err == RT_ETOOBIG) {
    rt_error_file(d, path, "cannot read: larger than %llu bytes", (unsigned long long)max);
    return NULL;
  }
  if (err) {
    rt_error_file(d, path, "cannot open: %s", rt_open_strerror(err));
    return NULL;
  }
  if (size >= SIZE_MAX / 2 || !(buf = malloc((size_t)size + 1)))
    rt_error_file(d, path, "out of memory for %llu bytes", (unsigned long long)size);
  else if (fread(buf, 1, (size_t)size, f) != (size_t)size) {
    rt_error_file(d, path, "read error: %s", ferror(f) ? strerror(errno) : "unexpected end");
    free(buf);
    buf = NULL;
  }
  fclose(f);
  if (!buf)
    return NULL;
  buf[size] = '\0';
  *n = (size_t)size;
  return buf;
}

unsigned char *rt_read_file(const char *path, size_t *n, RtDiag *d) {
  return rt_read_file_max(path, RT_READ_MAX, n, d);
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

int rt_rename_exchange(const char *a, const char *b) {
#if defined(__linux__) && defined(SYS_renameat2)
  // renameat2 through syscall(): glibc declares a wrapper only since 2.28
  enum { EXCHANGE = 1 << 1 }; // RENAME_EXCHANGE of <linux/fs.h>
  if (syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, EXCHANGE) == 0)
    return 0;
  return errno;
#else
  (void)a, (void)b;
  return ENOSYS;
#endif
}
