// ref_logits.c — a test helper: the logits of tests/ref_llama2c.c's llama2.c
// forward (fp32, KV cache) at every position of a token sequence, for the
// PyTorch oracle's forward check (tests/test_oracle.sh).
//
//   ref_logits CKPT.bin TOKENS.u16 N OUT.npy
//
// feeds the first N ids of TOKENS.u16 (raw little-endian uint16) at positions
// 0 .. N-1 and writes float32 [N, vocab] to OUT.npy.
#include "exec.h"
#include "ref_llama2c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *msg, const char *arg) {
  fprintf(stderr, "ref_logits: %s%s\n", msg, arg ? arg : "");
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 5)
    return fail("usage: ref_logits CKPT.bin TOKENS.u16 N OUT.npy", NULL);
  RtDiag d = {.out = stderr};
  L2cCheckpoint ck;
  if (!l2c_read(argv[1], &ck, &d))
    return 1;
  char *end;
  long n = strtol(argv[3], &end, 10);
  if (*end || n < 1 || n > ck.cfg.seq)
    return fail("N must be in 1 .. the model's seq_len: ", argv[3]);
  FILE *f = fopen(argv[2], "rb");
  if (!f)
    return fail("cannot open ", argv[2]);
  uint16_t *ids = malloc((size_t)n * sizeof *ids);
  size_t got = ids ? fread(ids, sizeof *ids, (size_t)n, f) : 0;
  fclose(f);
  if (got != (size_t)n)
    return fail("too few ids in ", argv[2]);
  int vocab = ck.cfg.vocab;
  RtTensor out;
  RefModel *m = ref_new(&ck);
  if (!m || !rt_tensor_alloc(&out, MIL_FP32, 2, (int64_t[]){n, vocab}))
    return fail("out of memory", NULL);
  for (long p = 0; p < n; p++) {
    const float *logits = ref_forward(m, ids[p], (int)p);
    if (!logits)
      return fail("token out of range in ", argv[2]);
    memcpy((float *)out.data + p * vocab, logits, (size_t)vocab * sizeof(float));
  }
  bool ok = npy_write(argv[4], &out, &d);
  rt_tensor_free(&out);
  ref_free(m);
  free(ids);
  l2c_free(&ck);
  return ok ? 0 : 1;
}
