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

typedef struct Exec Exec;
// Errors (unknown ops, bad parameters, shape mismatches, missing or bad
// weight files) go to d, located in the program's text. NULL after errors.
Exec *exec_prepare(const MilProgram *p, const MilFunc *f, ExecPrecision prec, RtDiag *d);
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
