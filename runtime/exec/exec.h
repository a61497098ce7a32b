// exec.h — the reference executor's public API: one MIL function run on
// the CPU with ANE numerics, and host tensors in and out as NumPy .npy
// files. exec-impl.h has the executor's private parts.
#ifndef ANERT_EXEC_H
#define ANERT_EXEC_H

#include "mil.h"

//
// exec.c, exec_ops.c — the reference executor: runs one MIL function on the
// CPU. Prepared once (constants and BLOBFILE weights loaded, every op's
// operands and parameters checked, static shapes computed and checked
// against the declared types, buffers planned by liveness), then run many
// times. Not for concurrent runs of one Exec.
//

// ANE quirks (ExecOptions.ane_quirks, anert.h; on by default in EXEC_FP16,
// never in EXEC_FP32): the numeric cliffs reported on M2 Pro and M5 by
// ANEForge (docs/numeric-cliffs.md, docs/developer/numerics.md), which the
// plain fp16 mode (fp32 arithmetic, wide sums, fp16 storage) does not have:
// - Products saturate: an output of matmul, linear, conv (a matmul on the
//   ANE's MAC array: the same accumulator and output path, assumed, not
//   measured) or either product of scaled_dot_product_attention whose fp32
//   value, bias included, has magnitude >= EXEC_ANE_SATURATION becomes
//   +/-inf before it is rounded to fp16. The sums themselves stay wide
//   ("matmul accumulates wide").
// - Narrow sums: reduce_sum and reduce_mean keep their running sum in fp16,
//   rounded after each addition, adding sequentially along the reduced axes
//   (row-major over them when there are several; the order is assumed);
//   reduce_mean then divides by the count. The sum of 4096 ones is 2048.
// softmax, layer_norm and the other reductions keep their wide internal
// sums (nothing is reported about them). Fusion never changes the bits:
// the fused attention saturates its scores and its output as the unfused
// matmuls do; the softmax prologue holds elementwise ops only.
// 32752 = 65504 / 2 (0x77FF, the largest fp16 below 2^15) is the figure
// ANEForge reports: "A matmul output becomes infinite near fp16_max / 2,
// approximately 32752 ... The boundary depends on the true output magnitude,
// not the contraction size" (docs/numeric-cliffs.md); the true (wide) value
// is compared, so 32751.9 stays finite (and rounds to 32752).
#define EXEC_ANE_SATURATION 32752.0f

typedef struct Exec Exec;
// Errors (unknown ops, bad parameters, shape mismatches, missing or bad
// weight files) go to d, located in the program's text. NULL after errors.
// opts: NULL for the defaults (ExecOptions, anert.h).
Exec *exec_prepare_opts(const MilProgram *p, const MilFunc *f, ExecPrecision prec,
                        const ExecOptions *opts, RtDiag *d);
// exec_prepare_opts with the defaults.
Exec *exec_prepare(const MilProgram *p, const MilFunc *f, ExecPrecision prec, RtDiag *d);
// Whether e models the ANE quirks (EXEC_FP16 and not EXEC_QUIRKS_OFF).
bool exec_ane_quirks(const Exec *e);
void exec_free(Exec *e);
// Copies t into input `name`: its shape must be the declared one; fp16 and
// fp32 data convert to the precision; int32 only for integer inputs.
bool exec_set_input(Exec *e, const char *name, const RtTensor *t, RtDiag *d);
// Makes t's data the storage of input `name`, read in place by every run (no
// copy) until exec_free: t must have the declared shape and the stored dtype
// (fp16 or fp32 by precision, int32 for integers). The caller keeps it alive
// and fills it before each run.
bool exec_bind_input(Exec *e, const char *name, const RtTensor *t, RtDiag *d);
// Runs the function; every input must have been set. Run-time errors: a
// gather index out of range.
bool exec_run(Exec *e, RtDiag *d);
// Output `name` as stored: fp16 or fp32 by precision, int32 for integers and
// bools; a view valid until the next run or exec_free. False if no such output.
bool exec_get_output(const Exec *e, const char *name, RtTensor *view);
// "x, w": the function's input or output names, for messages.
void exec_input_names(const Exec *e, char *buf, size_t cap);
void exec_output_names(const Exec *e, char *buf, size_t cap);
// "matmul, attention, ...": the steps a run takes, after fusion and
// aliasing (a reshape into its operand's storage takes none); their number.
int exec_step_names(const Exec *e, char *buf, size_t cap);

//
// npy.c — NumPy .npy files (versions 1.0-3.0) of float16, float32, int32 in
// C order. Errors name the file: bad magic, unsupported dtype, Fortran
// order, a malformed header, absurd shapes, data truncated or followed by
// more bytes. Big-endian data is swapped on reading.
//
bool npy_read(const char *path, RtTensor *out, RtDiag *d);
// Version 1.0, little-endian; atomic (temp file + rename).
bool npy_write(const char *path, const RtTensor *t, RtDiag *d);

#endif
