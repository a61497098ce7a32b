// rtkernel.c — one compiled kernel of a generated program on the reference
// backend: its MIL text and weight files (embedded in the program) read and
// prepared once, its input surfaces allocated once in the storage precision,
// then staged and run per dispatch.
#include "exec.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

unsigned char *rt_file_bytes(const RtFile *f, RtDiag *d) {
  unsigned char *out = calloc(f->len ? f->len : 1, 1);
  if (!out) {
    rt_error_file(d, f->path, "out of memory for its %zu bytes", f->len);
    return NULL;
  }
  for (size_t at = 0; at < f->data_len;) {
    uint64_t off = f->data_len - at >= 16 ? rt_get_le(f->data + at, 8) : UINT64_MAX;
    uint64_t n = f->data_len - at >= 16 ? rt_get_le(f->data + at + 8, 8) : 0;
    if (off > f->len || n > f->len - off || n > f->data_len - at - 16) {
      rt_error_file(d, f->path, "the record at byte %zu is outside the file", at);
      free(out);
      return NULL;
    }
    memcpy(out + off, f->data + at + 16, n);
    at += 16 + n;
  }
  return out;
}

// Writes the weight files under dir (paths relative to it, one directory level deep or more).
static bool write_files(const char *dir, const RtFile *files, int n, RtDiag *d) {
  for (int i = 0; i < n; i++) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, files[i].path);
    char *slash = strrchr(path, '/'); // its directory, under dir
    *slash = '\0';
    rt_mkdirs(path);
    *slash = '/';
    unsigned char *bytes = rt_file_bytes(&files[i], d);
    if (!bytes)
      return false;
    FILE *f = fopen(path, "wb");
    bool ok = f && fwrite(bytes, 1, files[i].len, f) == files[i].len;
    ok = (f && fclose(f) == 0) && ok;
    free(bytes);
    if (!ok) {
      rt_error_file(d, path, "cannot write a kernel's weights");
      return false;
    }
  }
  return true;
}

// Removes what write_files wrote, then the directories.
static void remove_files(const char *dir, const RtFile *files, int n) {
  for (int i = 0; i < n; i++) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, files[i].path);
    unlink(path);
    for (char *s = strrchr(path, '/'); s && s > path + strlen(dir); s = strrchr(path, '/')) {
      *s = '\0';
      rmdir(path);
    }
  }
  rmdir(dir);
}

static bool input_names(RtKernel *k) {
  const MilFunc *f = &k->prog->funcs[0];
  if (f->ninputs > RTK_MAX_IO)
    return false;
  k->nin = f->ninputs;
  for (int i = 0; i < k->nin; i++)
    snprintf(k->in_name[i], sizeof k->in_name[i], "%s", f->vars[f->inputs[i]].name);
  return true;
}

bool rtk_surfaces(const RtKernel *k, RtTensor *in) {
  const MilFunc *f = &k->prog->funcs[0];
  for (int i = 0; i < k->nin; i++) {
    const MilType *t = f->vars[f->inputs[i]].type;
    if (!rt_tensor_alloc(&in[i], k->prec == EXEC_FP16 ? MIL_FP16 : MIL_FP32, t->rank, t->dims)) {
      while (i-- > 0)
        rt_tensor_free(&in[i]);
      return false;
    }
  }
  return true;
}

void rtk_surfaces_free(const RtKernel *k, RtTensor *in) {
  for (int i = 0; i < k->nin; i++)
    rt_tensor_free(&in[i]);
}

bool rtk_open(RtKernel *k, const char *name, const char *mil, const RtFile *files, int nfiles,
              ExecPrecision prec, const ExecOptions *opts, RtDiag *d) {
  memset(k, 0, sizeof *k);
  const char *tmp = getenv("TMPDIR");
  char dir[512];
  snprintf(dir, sizeof dir, "%.400s/anec-kernel.XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(dir)) {
    rt_error_file(d, dir, "cannot create a temporary directory");
    return false;
  }
  bool ok = write_files(dir, files, nfiles, d);
  k->prog = ok ? mil_read_text(name, mil, strlen(mil), dir, d) : NULL;
  k->exec = k->prog ? exec_prepare_opts(k->prog, &k->prog->funcs[0], prec, opts, d) : NULL;
  remove_files(dir, files, nfiles); // the executor holds the weights now
  k->prec = prec;
  if (!k->exec || !input_names(k)) {
    rtk_close(k);
    return false;
  }
  return true;
}

bool rtk_run(RtKernel *k, RtTensor *in, RtDiag *d) {
  for (int i = 0; i < k->nin; i++) // binding is cheap: no copy, the executor reads them in place
    if (!exec_bind_input(k->exec, k->in_name[i], &in[i], d))
      return false;
  return exec_run(k->exec, d);
}

bool rtk_output(const RtKernel *k, const char *name, RtTensor *view) {
  return exec_get_output(k->exec, name, view);
}

void rtk_close(RtKernel *k) {
  exec_free(k->exec);
  mil_free(k->prog);
  memset(k, 0, sizeof *k);
}
