// mil.h — MIL programs in memory: types, values, ops and functions; the
// reader of MIL text (both printers' dialects), the op signatures, the
// printer, and MILBlob v2 weight files.
#ifndef ANERT_MIL_H
#define ANERT_MIL_H

#include "base.h"

//
// The MIL program
//
const char *mil_dtype_name(MilDType t);          // "fp16"
int mil_dtype_lookup(const char *name);          // MilDType, or -1
bool mil_dtype_is_float(MilDType t);
int mil_dtype_bits(MilDType t);                  // 16 for fp16; 0 for string
bool mil_dtype_is_int(MilDType t);               // the intN / uintN dtypes
// The values an integer dtype holds: [lo, hi] (hi is UINT64_MAX for uint64).
void mil_dtype_int_range(MilDType t, int64_t *lo, uint64_t *hi);
// x rounded (nearest even) to the floating dtype t, as a double; false if a
// finite x overflows t. fp64 and inf/nan pass through.
bool mil_float_round(MilDType t, double x, double *out);


typedef enum { MIL_T_TENSOR, MIL_T_LIST, MIL_T_TUPLE, MIL_T_DICT, MIL_T_STATE } MilTypeKind;

// A scalar is a tensor of rank 0; `fp16` and `tensor<fp16, []>` are the
// same type (the printer chooses the spelling by dialect).
typedef struct MilType MilType;
struct MilType {
  MilTypeKind kind;
  MilDType dtype;              // TENSOR
  int rank;                    // TENSOR
  int64_t dims[MIL_MAX_RANK];  // TENSOR; MIL_ANY for '?'
  MilType *elem;               // LIST element, DICT value, STATE content
  MilType *key;                // DICT key
  int64_t length;              // LIST length or MIL_ANY
  MilType **items;             // TUPLE
  int nitems;
};

typedef struct MilLoc {
  int line, col;               // 1-based, of the first byte
  int last_line, last_col;     // inclusive end
} MilLoc;

typedef enum { MIL_V_TENSOR, MIL_V_BLOB, MIL_V_LIST, MIL_V_TUPLE, MIL_V_DICT } MilValueKind;

// A typed literal. Tensor elements are held widened: floating dtypes in `f`
// (exact for fp16/fp32), integers and bools in `i`, strings in `s`.
typedef struct MilValue MilValue;
struct MilValue {
  MilValueKind kind;
  MilType *type;
  int64_t count;               // TENSOR: number of elements
  double *f;
  int64_t *i;
  char **s;
  char *blob_path;             // BLOB: as written ("@model_path/weights/weight.bin")
  char *blob_file;             // BLOB: the file to open (@model_path resolved by the reader)
  uint64_t blob_offset;        // BLOB: offset of the blob's metadata record
  MilValue **items;            // LIST, TUPLE; DICT: key, value, key, value...
  int nitems;
  MilLoc loc;
};

// What an argument binds: a value by name, a literal, or a tuple of those.
typedef enum { MIL_B_REF, MIL_B_VALUE, MIL_B_TUPLE } MilBindingKind;
typedef struct MilBinding MilBinding;
struct MilBinding {
  MilBindingKind kind;
  const char *ref;             // REF: the name as written
  int var;                     // REF: index into MilFunc.vars (resolved by the reader)
  MilValue *value;             // VALUE
  MilBinding *items;           // TUPLE
  int nitems;
  MilLoc loc;
};

typedef struct MilArg {
  const char *name;            // parameter name: "x", "weight"
  MilBinding b;
  MilLoc loc;
} MilArg;

typedef struct MilAttr {
  const char *name;            // "name", "val", "buildInfo"
  MilValue *value;
  MilLoc loc;
} MilAttr;

// An SSA value of a function: an input or an op output.
typedef struct MilVar {
  const char *name;
  MilType *type;
  int op;                      // producing op index, -1 for function inputs
  MilLoc loc;
} MilVar;

typedef struct MilOp {
  const char *op;              // "conv"
  MilArg *args;                // as written (Apple's printer sorts them)
  int nargs;
  MilAttr *attrs;              // [name = string("conv"), val = ...]
  int nattrs;
  int *outputs;                // indices into MilFunc.vars
  int noutputs;
  MilLoc loc;
} MilOp;

typedef struct MilFunc {
  const char *name;            // "main"
  const char *opset;           // "ios18"
  int *inputs;                 // indices into vars
  int ninputs;
  MilAttr *attrs;              // function attributes (FlexibleShapeInformation)
  int nattrs;
  MilOp *ops;
  int nops;
  MilVar *vars;
  int nvars;
  int *outputs;                // indices into vars, in `-> (a, b)` order
  int noutputs;
  MilLoc loc;
} MilFunc;

typedef struct MilProgram {
  Arena arena;                 // owns everything below
  const char *path;            // the .mil file as given
  const char *model_dir;       // @model_path: the directory of the .mil file
  const char *text;            // the source text (NUL-terminated copy)
  size_t len;
  const char *version;         // "1.3"
  MilAttr *attrs;              // program attributes (buildInfo)
  int nattrs;
  MilFunc *funcs;
  int nfuncs;
} MilProgram;

// mil_read.c — parses MIL text and type-checks every op's arguments against
// its signature where the op is known (mil_ops.c). Errors go to `d` (NULL:
// stderr) located in the text. Returns NULL on errors (nothing to free then).
// BLOBFILE paths are resolved against model_dir (@model_path; mil_read_file:
// the .mil file's directory) into MilValue.blob_file, not opened.
MilProgram *mil_read_file(const char *path, RtDiag *d);
MilProgram *mil_read_text(const char *name, const char *text, size_t len, const char *model_dir,
                          RtDiag *d);
void mil_free(MilProgram *p);
void mil_error_at(RtDiag *d, const MilProgram *p, MilLoc loc, const char *fmt, ...)
    ANERT_PRINTF(4, 5);
const MilFunc *mil_func(const MilProgram *p, const char *name); // NULL if absent
const MilArg *mil_arg(const MilOp *op, const char *name);       // NULL if absent
const MilAttr *mil_attr(const MilAttr *attrs, int n, const char *name);
bool mil_type_eq(const MilType *a, const MilType *b);
int64_t mil_type_count(const MilType *t); // elements of a tensor type; -1 with a '?' dim
// Whether a program version spells scalars verbosely: program(1.0) writes
// tensor<int32, []>(1), program(1.3) int32(1).
bool mil_version_verbose(const char *version);
// A type as MIL spells it; verbose: rank-0 tensors as tensor<T, []> (program(1.0)).
char *mil_type_str(Arena *a, const MilType *t, bool verbose);

// mil_ops.c — the signatures of the known ops, one const table sorted by
// name. Parameter lists are space-separated names ("x weight"); a parameter
// may be an argument or (const, constexpr_*) an attribute; the `name`
// attribute is implied. Ops not in the table are accepted by the reader.
typedef struct MilOpSig {
  const char *name;            // "conv"
  const char *required;        // "x weight"
  const char *optional;        // "bias strides pad_type pad dilations groups"
  int min_outputs, max_outputs; // max_outputs -1: any number
} MilOpSig;
extern const MilOpSig mil_op_sigs[];
extern const int mil_op_nsigs;
const MilOpSig *mil_op_sig(const char *name); // NULL for an op not in the table
// The next name of a parameter list at or after `list` (its length in *len),
// NULL at the end: for (w = l; (w = mil_param_next(w, &n)); w += n) ...
const char *mil_param_next(const char *list, size_t *len);
bool mil_param_in(const char *list, const char *name);

// mil_print.c — prints a program the way Apple's tools do for its version:
// program(1.0) with verbose tensor<T, []>(v) scalars, program(1.3) with short
// scalars; floats as C99 hex floats; arguments and attributes as stored.
void mil_print(const MilProgram *p, FILE *out);
// Structural equality of two programs (types, values, ops, names), for
// round-trip tests; locations are ignored.
bool mil_program_eq(const MilProgram *a, const MilProgram *b);

// milblob.c — MILBlob v2 weight files (coremltools StorageFormat): a 64-byte
// header {u32 count, u32 version = 2}, then per blob at 64-byte aligned
// offsets a 64-byte metadata record {u32 sentinel 0xDEADBEEF, u32 dtype,
// u64 size, u64 data offset, ...} followed by the data.
enum { MILBLOB_FP16 = 1, MILBLOB_FP32 = 2, MILBLOB_UINT8 = 3, MILBLOB_INT8 = 4,
       MILBLOB_BF16 = 5, MILBLOB_INT16 = 6, MILBLOB_UINT16 = 7, MILBLOB_INT4 = 8,
       MILBLOB_UINT1 = 9, MILBLOB_UINT2 = 10, MILBLOB_UINT4 = 11, MILBLOB_UINT3 = 12,
       MILBLOB_UINT6 = 13, MILBLOB_INT32 = 14, MILBLOB_UINT32 = 15,
       MILBLOB_FP8E4M3FN = 16, MILBLOB_FP8E5M2 = 17 };
// The MILBLOB_* code of a MIL dtype, 0 if weight files cannot hold it.
uint32_t milblob_dtype(MilDType t);
typedef struct MilBlob {
  uint32_t dtype;              // MILBLOB_*
  uint64_t size;               // bytes of data
  const unsigned char *data;   // into the mapped/loaded file
} MilBlob;
typedef struct MilBlobFile {
  char *path;
  unsigned char *bytes;
  size_t len;
  uint32_t count;
} MilBlobFile;
// Loads and validates the header; errors name the file.
bool milblob_open(MilBlobFile *f, const char *path, RtDiag *d);
// The blob whose metadata record is at `offset` (BLOBFILE's offset), checked:
// alignment, sentinel, dtype known, data inside the file.
bool milblob_get(const MilBlobFile *f, uint64_t offset, MilBlob *out, RtDiag *d);
void milblob_close(MilBlobFile *f);
// Writes a MILBlob v2 file with `n` blobs; offsets[i] receives each blob's
// metadata offset (for BLOBFILE). Atomic (temp file + rename).
bool milblob_write(const char *path, const MilBlob *blobs, int n, uint64_t *offsets, RtDiag *d);

#endif
