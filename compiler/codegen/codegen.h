// codegen.h — what anec writes: one kernel as MIL text and MILBlob weights,
// the artifact directory with its manifest, and a training step as C
// (step.c, kernels.c) for the runtime.
#ifndef ANEC_CODEGEN_H
#define ANEC_CODEGEN_H

#include "eval.h"
#include "layout.h"

// emit_mil.c — one kernel as MIL text plus its weight files
typedef struct WeightFile {
  const char *path;     // relative to kernels/NAME/: "weights/weight.bin"
  MilBlob *blobs;
  int nblobs;
  uint64_t next_offset; // where the next blob's metadata goes
} WeightFile;
typedef struct KernelMil {
  char *text;           // malloc'd (free it)
  size_t len;
  WeightFile *files;
  int nfiles;
  const char **in_names;  // per Kernel.inputs: the name of the function input holding it
  const char **out_names; // per Kernel.outputs: the name of the output holding it
} KernelMil;
// fp32: every value and constant typed fp32 instead of the ANE's fp16 (for
// exact runs on the reference backend; not ANE-legal, ANE-B01).
bool emit_kernel(Arena *a, const Graph *g, int kernel, const ParamSet *ps, bool fp32,
                 KernelMil *out, Diag *d);

// gen_train.c — a lowered training graph as C (anec build): step.c,
// the step's schedule as runtime calls with the memory plan's offsets, the
// tensor table and main() calling the driver (runtime/train/trainer.c); and
// kernels.c, each program's MIL text and weight files from the artifact
// directories dirs[0] (fp16) and dirs[1] (fp32). shares: artifact_write's.
bool gen_train_step(const Graph *g, const int *shares, uint64_t hash, FILE *out, Diag *d);
bool gen_train_kernels(const Graph *g, const int *shares, const char *const dirs[2], FILE *out,
                       Diag *d);

// artifact.c — the artifact directory of `anec compile -o DIR`
typedef struct ArtifactExtras { // more files for DIR: model.ir, model.dot
  int n;
  const char *names[4];
  const char *texts[4];
} ArtifactExtras;
// Writes DIR (replacing an earlier artifact directory, nothing else): all of
// it or, after an error, none of it. The fp16 kernels are checked first
// (artifact_check): a kernel the target's catalog rejects is an error, and
// then nothing is written. The fp32 variant is not checked: it is not
// ANE-legal by design (ANE-B01). It is built in DIR.tmp.PID.XXXXXX and
// swapped in (Linux; elsewhere the old one is renamed aside first, to
// DIR.old.PID.XXXXXX): a reader, or a run killed at any moment, sees the
// complete old or the complete new DIR. Such temporaries of runs that are
// gone are removed first. A trailing '/' in DIR is ignored.
// Kernels whose text is the same (but for their own name) share the first
// one's files: shares[k] (if not NULL) is the kernel whose files k uses.
// More programs than the target's compile budget (ANE-P02) is an error.
bool artifact_write(const Graph *g, const ParamSet *ps, const char *dir, bool fp32,
                    const ArtifactExtras *x, int *shares, Diag *d);
// The programs a run compiles (kernels identical but for their names share
// one), with shares as above; -1 (reported) if a kernel cannot be emitted.
int artifact_compiles(const Graph *g, const ParamSet *ps, int *shares, Diag *d);
// The catalog check of the fp16 kernels' MIL text, as emitted (kms: one per
// kernel of g, from emit_kernel; shares: artifact_write's, or NULL to check
// every kernel), for g->target (milcheck_run), before anything of them is
// written; nothing if g->no_check (--no-check). Each error-severity finding
// is reported to d as `kernel NAME: [RULE] message`, with a note at the
// .anet source of each IR value it is about (by the emitter's names: opN_*,
// outNN, inNN), and a last note names --no-check. Warnings are not reported
// (anec mil-check shows them). The weight files' bytes are not checked (they
// are not written yet). False if a kernel is rejected.
bool artifact_check(const Graph *g, const KernelMil *kms, const int *shares, Diag *d);
// Removes path and, if it is a directory (not a link to one), what it holds.
void rm_tree(const char *path);
// A JSON array of the dims (cJSON), for manifest.json and inspect --json.
struct cJSON *json_dims(int rank, const int64_t *dims);


#endif
