// exec-impl.h — private to the reference executor (exec.c, exec_ops.c): buffers,
// steps, the prepare-time helpers through which op kernels read their
// operands and parameters, and the op table. The public API is in exec.h.
#ifndef ANERT_EXEC_IMPL_H
#define ANERT_EXEC_IMPL_H

#include "exec.h"

// One tensor of the function: a variable, or a literal written as an op's
// argument. Floating tensors are stored as fp16 or fp32 (the precision),
// integers and bools as int32.
typedef struct Buf {
  const char *name;
  MilLoc loc;
  bool tensor;           // a tensor type (strings, lists... are parameters only)
  bool is_int;           // int32 storage; else floating
  bool known;            // dims known: declared, or computed by the producing op
  int rank;
  int64_t dims[MIL_MAX_RANK];
  int64_t count;
  void *data;            // the storage
  float *f32;            // fp16 precision, constants: the values widened once
  const MilValue *value; // const or literal: its value
  bool fixed;            // a constant, filled at prepare
  bool owned;            // data (and f32) allocated for this buffer alone
  bool is_input, is_output, is_set;
  int last_use;          // the last step that reads it, for the memory plan
  int slab;              // memory plan: the slab holding it, -1 for none
  int alias;             // storage inside another buffer's (a reshape's output, a
  int64_t alias_off;     // part of a concat): that buffer and the element offset; else -1
} Buf;

typedef struct Exec Exec;
typedef struct Prep Prep;
typedef struct Step Step;

typedef struct OpDef {
  const char *name;
  int code;                                        // the variant of a shared kernel
  bool (*prep)(Prep *P, Step *s);                  // operands, parameters, output shapes
  bool (*run)(Exec *e, const Step *s, RtDiag *d);  // false: an error reported to d
  bool moves; // only moves elements: runs on the storage (Step.esize bytes each), any precision
  bool saturates; // a product (ANE quirks: its output saturates, exec.h; the frame applies
                  // it as it stores the output, the op to what it keeps inside)
} OpDef;

// The source positions and strides of a copy: out[i] = in[base + sum idx * strides].
typedef struct Copy {
  int rank;
  int64_t dims[MIL_MAX_RANK];
  int64_t strides[MIL_MAX_RANK];
  int64_t base;
} Copy;

// A reduction's geometry: the offsets of every kept position and of every
// position along the reduced axes (row-major over each).
typedef struct Geom {
  int64_t nkeep, nred;
  int64_t *keep, *red;
} Geom;

struct Step {
  const MilOp *op;
  const OpDef *def;
  int *in;                // operand buffers in the order prep took them; -1: absent
  int nin;
  int *out;               // output buffers (the op's output variables)
  int nout;
  const void **iv;        // during a run: fp32 (or int32) views of the operands
  void **ov;              // and of the outputs
  // Parameters; each op uses some.
  int axis;               // softmax concat split gather
  bool keep_dims;         // reduce_*
  bool transpose_x, transpose_y; // matmul
  bool interleave;        // concat
  int mode;               // gelu: the mode; cast: the target MilDType
  double epsilon;         // rsqrt log layer_norm
  int64_t lower, upper;   // band_part
  int64_t strides[2], dilations[2], pads[4], groups; // conv: [top, bottom, left, right]
  Copy copy;              // transpose slice_by_index slice_by_size
  Geom geom;              // softmax reduce_* layer_norm
  // softmax: elementwise ops fused in as a row prologue (exec_fuse): row =
  // row OP in[1 + k] for k < nprologue, the softmax's own operand in[0]
  // being the first op's x. A fused-away step has def NULL.
  int nprologue;
  int prologue[2];        // binary op codes
  int64_t *prologue_off;  // [nprologue][rows]: operand 1 + j's element offset at row k
  int64_t prologue_step[2]; // and its stride along the row (0: broadcast)
  bool stored_io;         // iv[0] and ov[0] point at the storage (fp16 or fp32)
  bool stored_all;        // every iv and ov points at the storage: the op widens itself
  // A fused attention (def exec_attention_def): the first matmul, the
  // softmax and the second matmul it runs as one, copies of their steps.
  const Step *parts;
  int esize;              // def->moves: the bytes of a stored element (2 or 4)
};

// Prepare-time helpers for the ops' prep functions (exec.c). Each reports
// its errors located at the argument (or the op) and returns false.
bool prep_error(Prep *P, MilLoc loc, const char *fmt, ...) ANERT_PRINTF(3, 4);
MilLoc prep_loc(const Step *s, const char *param); // the argument, else the op
void *prep_alloc(Prep *P, size_t n);               // zeroed, lives as long as the Exec
// Appends tensor operand `name` to s->in (-1 when absent and optional).
bool prep_in(Prep *P, Step *s, const char *name, bool required);
// Appends every tensor of the tuple argument `name`.
bool prep_in_tuple(Prep *P, Step *s, const char *name);
// The constant value of parameter `name`: a literal, or a const op's val.
// NULL when absent (no error) or not constant (error; *bad set).
const MilValue *prep_const(Prep *P, Step *s, const char *name, bool *bad);
bool prep_int(Prep *P, Step *s, const char *name, int64_t dflt, int64_t *out);
bool prep_bool(Prep *P, Step *s, const char *name, bool dflt, bool *out);
bool prep_float(Prep *P, Step *s, const char *name, double dflt, double *out);
bool prep_string(Prep *P, Step *s, const char *name, const char *dflt, const char **out);
// Up to max integers (a scalar or a rank-1 tensor): their count, or -1 if
// absent (no error) and -2 after an error.
int prep_ints(Prep *P, Step *s, const char *name, int64_t *out, int max);
// Checks output k against its declared type and records its shape.
bool prep_out(Prep *P, Step *s, int k, bool is_int, int rank, const int64_t *dims);
const Buf *prep_buf(const Prep *P, int buf);

// Run-time access for kernels.
const Buf *step_in(const Exec *e, const Step *s, int k);  // NULL if absent
const Buf *step_out(const Exec *e, const Step *s, int k);
void *exec_scratch(Exec *e, size_t bytes); // 64-byte aligned, until the step ends
// A floating buffer as fp32 (widened into scratch if stored as fp16), int32 as is.
const void *exec_view(Exec *e, const Buf *b);
bool exec_is_fp16(const Exec *e);
// ANE quirks (exec.h): |x| >= EXEC_ANE_SATURATION becomes +/-inf, in place
// (NaN stays NaN).
void exec_saturate(float *x, int64_t n);
// A run-time error located at `loc` in the program's text.
void exec_error_at(const Exec *e, RtDiag *d, MilLoc loc, const char *fmt, ...) ANERT_PRINTF(4, 5);

// exec_ops.c — the op table
const OpDef *exec_op_find(const char *name);
// Fusion facts: softmax over the last axis (that takes a prologue and runs
// on stored rows), and
// elementwise binary ops with the chain operand as x (their code, else -1).
bool exec_op_is_row_softmax(const Step *s);
// Fills s->prologue_off and s->prologue_step (rows x nprologue offsets, allocated by the caller).
void exec_op_prologue_offsets(const Exec *e, Step *s);
int exec_op_prologue_code(const Step *s);
void exec_op_names(char *buf, size_t cap); // "abs, add, ..." for messages
// Attention: matmul qk whose scores row softmax sm takes, whose
// probabilities matmul pv takes as x, run head by head as one step.
extern const OpDef exec_attention_def;
bool exec_attention_fits(const Exec *e, const Step *qk, const Step *sm, const Step *pv);

// Shapes, shared by both files.
void dims_strides(int rank, const int64_t *dims, int64_t *strides);
// The offset of row-major index r over dims[0..rank) with strides.
int64_t dims_offset(int64_t r, int rank, const int64_t *dims, const int64_t *strides);

#endif
