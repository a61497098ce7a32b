// ref_llama2c.h — an independent, plain fp32 llama2.c forward pass: one
// position at a time with a KV cache, as llama2.c's run.c computes it (GQA,
// interleaved RoPE, tied or untied classifier). A test oracle, not a runtime.
#ifndef REF_LLAMA2C_H
#define REF_LLAMA2C_H

#include "llm.h"

typedef struct RefModel RefModel;

// A model over ck's tensors (ck must outlive it); NULL when out of memory or
// when ck lacks an array of its config.
RefModel *ref_new(const L2cCheckpoint *ck);
void ref_free(RefModel *m);
// The logits (vocab of them) after token at position pos, valid until the next
// call. Positions must come in order 0, 1, 2, ... (pos < seq); NULL for a
// token or position out of range.
const float *ref_forward(RefModel *m, int token, int pos);
int ref_argmax(const float *x, int n); // the lowest index of the largest

// Greedy decoding for positions 0 .. steps-1 (at most seq): the token fed at
// position p is prompt[p] while p < nprompt, else out[p - 1]; out[p] is the
// argmax of the logits at p. So out[nprompt - 1 ...] is the greedy
// continuation of the prompt. Returns the positions run, -1 for a bad prompt
// (empty, ids out of range) or out of memory.
int ref_greedy(const L2cCheckpoint *ck, const int *prompt, int nprompt, int steps, int *out);

#endif
