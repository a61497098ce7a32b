// anert.h — the one header of libanert, the runtime: arena memory, located
// messages, fp16, the MIL program (typed, in memory), its reader, printer and
// MILBlob v2 weights, and the reference executor. It includes nothing from
// compiler/; the compiler includes it.
#ifndef ANERT_H
#define ANERT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#if defined(__GNUC__)
#define ANERT_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define ANERT_PRINTF(f, a)
#endif

//
// arena.c — bump allocation: everything of one compilation or one loaded
// program lives in one arena and is freed at once.
//
typedef struct ArenaBlock ArenaBlock;
typedef struct Arena {
  ArenaBlock *head;
  size_t total; // bytes handed out, for reports
} Arena;

void *arena_alloc(Arena *a, size_t n); // zeroed, 16-byte aligned; aborts on OOM
void *arena_grow(Arena *a, void *old, size_t old_n, size_t new_n); // copy-grow
char *arena_strdup(Arena *a, const char *s);
char *arena_strndup(Arena *a, const char *s, size_t n);
char *arena_printf(Arena *a, const char *fmt, ...) ANERT_PRINTF(2, 3);
void arena_free(Arena *a);

//
// strmap.c — a string-keyed hash map in an arena (names to anything); keys
// are not copied. Lookups and inserts are O(1) on average.
//
typedef struct StrMapEntry {
  const char *key;
  void *value;
} StrMapEntry;
typedef struct StrMap {
  Arena *arena;
  StrMapEntry *slots;
  size_t cap, len;
} StrMap;

void strmap_init(StrMap *m, Arena *a);
void *strmap_get(const StrMap *m, const char *key);            // NULL if absent
void strmap_put(StrMap *m, const char *key, void *value);      // insert or replace

//
// srcmsg.c — one located message in GCC's format:
//   file:line:col: LEVEL: message
//      12 | the source line
//         |     ^~~~
// Columns are 1-based bytes; the range ends at (last_line, last_column),
// inclusive. text == NULL or line beyond the text: the header line only.
//
typedef struct SrcSpan {
  int first_line, first_column;
  int last_line, last_column;
} SrcSpan;

void srcmsg_print(FILE *out, const char *file, const char *text, size_t len, SrcSpan span,
                  const char *level, const char *msg);
// Just the quoted line p[0..n) (no '\n') and its caret line.
void srcmsg_quote(FILE *out, const char *p, size_t n, SrcSpan span);
// Length of the well-formed UTF-8 sequence at s[0..n) (1 to 4), 0 if invalid.
int utf8_decode(const char *s, size_t n, uint32_t *cp);

//
// RtDiag — where runtime readers report errors about their input files.
//
typedef struct RtDiag {
  FILE *out;      // NULL: count only
  int errors;
  int max_errors; // 0: 20
  bool stop;      // too many errors: readers bail out
} RtDiag;

void rt_error(RtDiag *d, const char *file, const char *text, size_t len, SrcSpan span,
              const char *fmt, ...) ANERT_PRINTF(6, 7);
void rt_warning(RtDiag *d, const char *file, const char *text, size_t len, SrcSpan span,
                const char *fmt, ...) ANERT_PRINTF(6, 7);
// An error about a file as a whole: "file: error: msg" (file may be NULL).
void rt_error_file(RtDiag *d, const char *file, const char *fmt, ...) ANERT_PRINTF(3, 4);

// atomic.c — writes `path` through `fill` into a temp file next to it, then
// renames it over `path`: complete or absent, never half-written. Reports
// failures to `d` naming the file.
bool rt_write_atomic(const char *path, bool (*fill)(FILE *f, void *ctx), void *ctx, RtDiag *d);
// The whole of a regular file, malloc'd with a NUL after its n bytes; NULL
// (reported, naming the file) when it cannot be read.
unsigned char *rt_read_file(const char *path, size_t *n, RtDiag *d);
// Creates directory dir and its missing parents (mkdir -p); 0, or the errno
// of the first failure (ENOTDIR when dir exists but is not a directory).
int rt_mkdirs(const char *dir);

// pool.c — worker threads, one per core (ANEC_THREADS overrides, at most
// 16): rt_parallel calls fn(ctx, b) once for each block b in 0..blocks-1,
// spread over the workers and the caller, and returns when all are done.
// Called while the pool is busy, or from inside a block, it runs the blocks
// in the calling thread. Blocks must not depend on each other's order.
typedef void RtBlockFn(void *ctx, int64_t block);
void rt_parallel(int64_t blocks, RtBlockFn *fn, void *ctx);
// The threads rt_parallel uses (workers + the caller); starts them.
int rt_threads(void);
// Whether the calling thread is inside a block of rt_parallel.
bool rt_in_parallel(void);
// blas.c — row-major sgemm: C[m, n] = alpha op(A) op(B) + beta C, op(A)
// [m, k] (A is [k, m] when ta), op(B) [k, n] (B is [n, k] when tb). With
// OpenBLAS and a pool of 2+ threads, a large product is split over the pool
// (OpenBLAS single-threaded meanwhile); the blocks are fixed by the shape, so
// the result does not depend on which thread runs which. Inside a block of
// rt_parallel it is one BLAS call.
void rt_sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
              int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc);
// count products of one shape; product i reads a + aoff[i], b + boff[i] and
// writes c + coff[i] (element offsets). Spread over the pool by products.
void rt_sgemm_batch(int64_t count, const int64_t *aoff, const int64_t *boff,
                    const int64_t *coff, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                    float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                    float beta, float *c, int64_t ldc);
// rt_parallel for blocks that multiply (rt_sgemm in each): OpenBLAS runs
// single-threaded meanwhile.
void rt_parallel_blas(int64_t blocks, RtBlockFn *fn, void *ctx);
// One background thread that runs submitted calls in order, each once.
// rt_worker_new is NULL when no thread can start; a NULL worker runs each
// submitted call at once, in the caller. rt_worker_wait returns when every
// call submitted so far has returned; rt_worker_free waits, then ends it.
typedef struct RtWorker RtWorker;
typedef void RtWorkFn(void *ctx);
RtWorker *rt_worker_new(void);
void rt_worker_submit(RtWorker *w, RtWorkFn *fn, void *ctx);
void rt_worker_wait(RtWorker *w);
void rt_worker_free(RtWorker *w);

//
// bytes.c — little-endian integers, FNV-1a 64, splitmix64
//
uint64_t rt_get_le(const unsigned char *p, int bytes); // bytes <= 8
void rt_put_le(unsigned char *p, uint64_t v, int bytes);
#define RT_FNV_OFFSET 0xCBF29CE484222325ull
// FNV-1a 64 of n bytes, continuing from h (RT_FNV_OFFSET to start).
uint64_t rt_fnv1a(uint64_t h, const void *p, size_t n);
// The next number of a splitmix64 stream (Steele, Lea, Flood 2014): every
// seed, 0 too, gives a good stream, the same on every platform.
uint64_t rt_splitmix64(uint64_t *state);
// n values of Normal(0, std) for the parameter `name`: Box-Muller on the
// splitmix64 stream seeded with FNV-1a 64 of the name xor seed. The
// compiler's initializer and the trainer's, the same values on every platform.
void rt_fill_normal(float *v, int64_t n, double std, const char *name, uint64_t seed);

//
// fp16.c — IEEE half precision; F16C / NEON where the CPU has them
//
float fp16_to_f32(uint16_t h);
uint16_t f32_to_fp16(float f); // round to nearest even, overflow to inf
void fp16_to_f32_n(const uint16_t *in, float *out, size_t n);
void f32_to_fp16_n(const float *in, uint16_t *out, size_t n);
bool fp16_has_f16c(void); // x86 with F16C (the bulk conversions use it); false elsewhere

//
// The MIL program
//
typedef enum {
  MIL_BOOL, MIL_STRING,
  MIL_FP16, MIL_FP32, MIL_FP64, MIL_BF16,
  MIL_INT4, MIL_INT8, MIL_INT16, MIL_INT32, MIL_INT64,
  MIL_UINT1, MIL_UINT2, MIL_UINT4, MIL_UINT8, MIL_UINT16, MIL_UINT32, MIL_UINT64,
  MIL_NDTYPES
} MilDType;

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

#define MIL_MAX_RANK 8
#define MIL_ANY (-1) // a `?` dimension or list length

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

//
// tensor.c — host tensors: dense C-order arrays that cross the runtime's
// boundary (.npy files, executor inputs and outputs)
//
#define RT_MAX_NUMEL ((int64_t)1 << 40) // most elements of one tensor

typedef struct RtTensor {
  MilDType dtype;              // MIL_FP16, MIL_FP32 or MIL_INT32
  int rank;
  int64_t dims[MIL_MAX_RANK];
  int64_t count;               // elements: the product of dims (1 for rank 0)
  void *data;                  // count elements, native byte order
} RtTensor;

// The product of dims; -1 for a negative dim, a rank over MIL_MAX_RANK or
// more than RT_MAX_NUMEL elements.
int64_t rt_numel(int rank, const int64_t *dims);
size_t rt_dtype_size(MilDType t); // bytes of fp16, fp32, int32; 0 for others
// Zeroed storage (malloc'd); false for a bad shape or dtype, or out of memory.
bool rt_tensor_alloc(RtTensor *t, MilDType dtype, int rank, const int64_t *dims);
void rt_tensor_free(RtTensor *t); // for tensors from rt_tensor_alloc/npy_read
char *rt_shape_str(char *buf, size_t n, int rank, const int64_t *dims); // "[1, 768, ?]"

//
// npy.c — NumPy .npy files (versions 1.0-3.0) of float16, float32, int32 in
// C order. Errors name the file: bad magic, unsupported dtype, Fortran
// order, a malformed header, absurd shapes, data truncated or followed by
// more bytes. Big-endian data is swapped on reading.
//
bool npy_read(const char *path, RtTensor *out, RtDiag *d);
// Version 1.0, little-endian; atomic (temp file + rename).
bool npy_write(const char *path, const RtTensor *t, RtDiag *d);

//
// exec.c, exec_ops.c — the reference executor: runs one MIL function on the
// CPU. Prepared once (constants and BLOBFILE weights loaded, every op's
// operands and parameters checked, static shapes computed and checked
// against the declared types, buffers planned by liveness), then run many
// times. Not for concurrent runs of one Exec.
//
typedef enum {
  EXEC_FP16, // ANE numerics: every floating tensor stored as fp16, rounded after each op;
             // arithmetic and accumulation in fp32
  EXEC_FP32, // every floating tensor stored as fp32: for exact comparisons
} ExecPrecision;

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
// stage.c — values between the host (fp32, logical row-major) and the blocks
// of kernel surfaces ([1, R, 1, W], fp16 or fp32): the runtime's half of
// kernel I/O packing (ANE-B02 layouts, B08/B09 several values in one
// surface, P01 weights in the input).
//
// A value's block: rows [row, row + rows), columns [0, cols). Token-last: the
// host holds logical [cols = S, rows = C] and the block is its transpose;
// plain: the host's row-major [rows, cols] as it is.
typedef struct StageBlock {
  int64_t row, rows, cols;
  bool token_last;
} StageBlock;
void stage_put(RtTensor *surface, const StageBlock *b, const float *host);
void stage_get(const RtTensor *surface, const StageBlock *b, float *host);
// Dynamic weights: a parameter into rows [row, row + rows), columns [col, col + cols).
typedef enum {
  STAGE_TRANSPOSED, // w is [cols, rows]: the block holds its transpose
  STAGE_AS_IS,      // w is [rows, cols]
  STAGE_VECTOR,     // w is [rows]: one column
} StageMode;
void stage_param(RtTensor *surface, StageMode mode, int64_t row, int64_t col, int64_t rows,
                 int64_t cols, const float *w);

//
// rtkernel.c — one kernel of a generated program (MIL text and weight files
// embedded in it) prepared once on the reference executor, with its input
// surfaces allocated in the storage precision: stage into in[], run, read
// outputs.
//
// A weight file without its runs of zeros (padding and zero constants make
// up most of a training kernel's weights): data holds records of an 8-byte
// offset, an 8-byte count (both little-endian) and count bytes; the bytes
// between records, and up to len, are zero.
typedef struct RtFile {
  const char *path;            // relative to the program's @model_path
  const unsigned char *data;   // the records
  size_t data_len;             // bytes of the records
  size_t len;                  // bytes of the file
} RtFile;
// The file's bytes (malloc'd, len of them); NULL (reported) for a record
// outside the file or out of memory.
unsigned char *rt_file_bytes(const RtFile *f, RtDiag *d);
enum { RTK_MAX_IO = 8 };
typedef struct RtKernel {
  MilProgram *prog;
  Exec *exec;
  ExecPrecision prec;
  int nin;
  char in_name[RTK_MAX_IO][32]; // the function's inputs, in order (in00, in01, ...)
} RtKernel;
bool rtk_open(RtKernel *k, const char *name, const char *mil, const RtFile *files, int nfiles,
              ExecPrecision prec, RtDiag *d);
// A request's input surfaces (one kernel serves several requests, e.g. one
// per layer, each keeping what was staged into it): k->nin zeroed tensors
// in the function's input shapes and the storage dtype. False (none left
// allocated) when out of memory.
bool rtk_surfaces(const RtKernel *k, RtTensor *in);
void rtk_surfaces_free(const RtKernel *k, RtTensor *in);
// Runs the kernel on a request's surfaces, read in place.
bool rtk_run(RtKernel *k, RtTensor *in, RtDiag *d);
bool rtk_output(const RtKernel *k, const char *name, RtTensor *view);
void rtk_close(RtKernel *k);

//
// trainops.c — a training step's CPU ops (no ANE path, ANE-T08): fp32 host
// buffers, token ids as exact floats, sums in double
//
// out[t] = table[ids[t]] ([n, dim]); an id out of [0, rows) is an error.
bool rt_embed(float *out, const float *table, int64_t rows, int64_t dim, const float *ids,
              int64_t n, RtDiag *d);
// out = zeros [rows, dim], then out[ids[t]] += g[t].
void rt_embed_grad(float *out, int64_t rows, int64_t dim, const float *ids, const float *g,
                   int64_t n);
// The mean over n tokens of logsumexp(logits[t]) - logits[t][targets[t]].
bool rt_cross_entropy(const float *logits, const float *targets, int64_t n, int64_t vocab,
                      double *loss, RtDiag *d);
// Its gradient times scale: (softmax(logits[t]) - onehot(targets[t])) * scale / n.
void rt_cross_entropy_grad(float *out, const float *logits, const float *targets, int64_t n,
                           int64_t vocab, float scale);
// Weight gradients on the CPU (--dw=cpu): out [m, n] = op(a) op(b) by BLAS,
// op(a) [m, k] (a is [k, m] when ta), op(b) [k, n] (b is [n, k] when tb).
void rt_matmul(float *out, const float *a, const float *b, int64_t m, int64_t n, int64_t k,
               bool ta, bool tb);
// out[i] = a[i] + b[i], i < n (the sums of a weight's gradients).
void rt_add(float *out, const float *a, const float *b, int64_t n);

//
// llama2c.c — llama2.c "v0" checkpoints: a header of 7 int32 {dim, hidden,
// layers, heads, kv_heads, vocab, seq} (vocab < 0: an untied classifier
// `wcls` follows the other arrays), then fp32 arrays grouped over all layers,
// matrices [out, in] row-major. Errors name the file and what is wrong.
//
typedef struct L2cConfig {
  int dim, hidden, layers, heads, kv_heads, vocab, seq;
  bool shared_cls; // the classifier is tok_emb (the header's vocab is positive)
} L2cConfig;
// One array of the checkpoint: "tok_emb" [V, D], "rms_att" [L, D], "wq" [L, D, D],
// "wk" and "wv" [L, KV, D], "wo" [L, D, D], "rms_ffn" [L, D], "w1" and "w3"
// [L, H, D], "w2" [L, D, H], "rms_final" [D], "freq_cis_real" and
// "freq_cis_imag" [S, hs/2], "wcls" [V, D] (untied only); KV = D * kv_heads /
// heads, hs = D / heads. In this (file) order in L2cCheckpoint.t.
typedef struct L2cTensor {
  const char *name;
  int rank;
  int64_t dims[3];
  float *data;
} L2cTensor;
typedef struct L2cCheckpoint {
  L2cConfig cfg;
  L2cTensor t[16];
  int n;
  float *all; // one allocation holding every tensor's data
} L2cCheckpoint;

// Reads and validates a checkpoint: header values positive and within limits,
// dim divisible by heads, an even head size, heads divisible by kv_heads, and
// the file size exactly that of the header and every array.
bool l2c_read(const char *path, L2cCheckpoint *ck, RtDiag *d);
// Every tensor of cfg's layout, zeroed, and the RoPE tables computed; false
// (an error without a file name) for a bad configuration or out of memory.
bool l2c_alloc(L2cCheckpoint *ck, const L2cConfig *cfg, RtDiag *d);
const L2cTensor *l2c_find(const L2cCheckpoint *ck, const char *name); // NULL if absent
// The array a model's parameter name denotes, as a view into ck: llama2.c's
// name ("tok_emb", "rms_final", "wcls") the whole array, "layers.3.wq" row 3
// of the stacked "wq" (rank one less). False if ck has none.
bool l2c_slot(const L2cCheckpoint *ck, const char *name, L2cTensor *view);
// Writes ck atomically. Every array of cfg's layout must be in ck with its
// shape; freq_cis_real/imag are written from ck when present (a file read
// back byte for byte), computed from the config when absent.
bool l2c_write(const char *path, const L2cCheckpoint *ck, RtDiag *d);
void l2c_free(L2cCheckpoint *ck);

//
// tokenizer.c — llama2.c's BPE tokenizer (tokenizer.bin: int32 max_token_length,
// then per piece a float32 score, an int32 length and its bytes), encoding and
// decoding exactly as llama2.c's run.c does. Not for concurrent use of one
// Tokenizer (encoding uses its scratch buffer).
//
typedef struct Tokenizer {
  int vocab;            // pieces, the model's vocabulary size
  char **pieces;        // NUL-terminated
  float *scores;        // merge priority of each piece
  int max_len;          // the file's max_token_length
  int *sorted;          // piece ids sorted by their bytes (strcmp), for lookups
  char *text;           // the bytes of every piece
  char *scratch;        // two pieces joined, for merges
  char byte_pieces[512]; // "\xNN\0" for each byte, what <0xNN> pieces decode to
} Tokenizer;

// Loads the first `vocab` pieces of a tokenizer file. Errors name the file:
// truncated data, negative lengths, fewer pieces than vocab.
bool tok_load(const char *path, int vocab, Tokenizer *t, RtDiag *d);
void tok_free(Tokenizer *t);
// Encodes UTF-8 text: BOS (1) if asked, the piece " " when text is not empty
// (SentencePiece's dummy prefix), every codepoint as its piece or as byte
// tokens (<0xNN>: id NN + 3), then merges of the best-scoring adjacent pair
// (the leftmost of equals) while any pair is a piece; EOS (2) if asked.
// ids has room for strlen(text) + 3. Returns the number of ids.
int tok_encode(const Tokenizer *t, const char *text, bool bos, bool eos, int *ids);
// The text of token id following token prev: the leading space of a piece
// after BOS is dropped, <0xNN> pieces are the byte NN. Points into t; "" for
// an id out of range.
const char *tok_decode(const Tokenizer *t, int prev, int id);

//
// sampler.c — the next token from logits, as llama2.c samples: temperature 0
// is argmax (the lowest index of equals); otherwise softmax(logits / T), then
// top-p (nucleus) sampling when 0 < topp < 1, else plain multinomial, with
// llama2.c's xorshift* generator.
//
typedef struct SamplerProb {
  float prob;
  int index;
} SamplerProb;
typedef struct Sampler {
  int vocab;
  float temperature, topp;
  uint64_t rng;       // xorshift* state, never 0
  SamplerProb *probs; // top-p scratch, vocab entries (NULL: multinomial instead)
} Sampler;

void sampler_init(Sampler *s, int vocab, float temperature, float topp, uint64_t seed);
// Samples one id in [0, vocab); overwrites logits with probabilities when T > 0.
int sampler_sample(Sampler *s, float *logits);
void sampler_free(Sampler *s);

//
// adamw.c — AdamW on fp32 master weights (bias-corrected moments, decoupled
// weight decay: PyTorch's torch.optim.AdamW), global-norm clipping, and the
// learning-rate schedule
//
typedef struct AdamW {
  float beta1, beta2, eps, weight_decay;
} AdamW;
// Update number t (1, 2, ...) of n weights w with gradients gscale * g and
// moments m, v (zero before the first): w -= lr wd w (when decay: matrices,
// not norms or biases), then w -= lr m_hat / (sqrt(v_hat) + eps). fp32
// arithmetic, as torch's; on all cores.
void adamw_update(const AdamW *o, int64_t t, float lr, float gscale, float *w, const float *g,
                  float *m, float *v, int64_t n, bool decay);
// The sum of squares of g[0..n), in double and on all cores; inf or NaN when
// any element is. Summed in fixed blocks: the same bits on any core count.
double grad_sumsq(const float *g, int64_t n);
// sqrt of the sum of squares of every gradient (n tensors of counts[k]).
double grad_global_norm(const float *const *grads, const int64_t *counts, int n);
// The factor that brings a global norm down to max_norm (1: under it, or
// max_norm <= 0 for no clipping).
float grad_clip_scale(double norm, float max_norm);
// The learning rate of step (0, 1, ...): lr (s + 1) / warmup during the
// warmup, then cosine from lr down to min_lr at step `total`, min_lr after.
float lr_schedule(int64_t step, int64_t warmup, int64_t total, float lr, float min_lr);

// Loss scaling: backward starts from loss * scale so that small fp16
// gradients do not flush to zero; the update divides it out. A step whose
// gradients hold an inf or NaN is skipped (counted in `skipped`). Dynamic
// scaling (PyTorch's GradScaler rules) also halves the scale then, and
// doubles it after `interval` good steps in a row; a static scale stays.
typedef struct LossScale {
  float scale;
  bool dynamic;
  int64_t interval; // good steps before a dynamic scale grows (2000)
  int64_t good;     // good steps since the last change
  int64_t skipped;  // steps skipped so far
} LossScale;
enum { LOSS_SCALE_INTERVAL = 2000 };
#define LOSS_SCALE_DYNAMIC_INIT 65536.0f
#define LOSS_SCALE_MIN 0x1p-24f
void loss_scale_init(LossScale *ls, float scale, bool dynamic);
// Parses "N" (N > 0, finite) or "dynamic"; false for anything else.
bool loss_scale_parse(const char *text, LossScale *ls);
// After a step's backward: whether to apply the update (gradients finite);
// adjusts the scale and counters for the next step.
bool loss_scale_update(LossScale *ls, bool finite);

//
// trainlog.c — a training run's progress line and --log-json records
//
typedef struct TrainStat {
  int64_t step, steps; // step is 1-based: step of steps
  double loss, lr, ms, tok_s;
  bool skipped;        // loss scaling skipped the update
} TrainStat;
// "step  12/200  loss 3.4567  lr 3.00e-04  412.3 ms/step  1240 tok/s  ETA 1m17s"
void trainlog_progress(FILE *f, const TrainStat *st, double eta_seconds);
// {"step": 12, "loss": 3.4567, "lr": 0.0003, "ms": 412.3, "tok_s": 1240, "skipped": false}
// (inf and NaN as null); and {"step": 12, "val_loss": 3.61}.
void trainlog_json_step(FILE *f, const TrainStat *st);
void trainlog_json_val(FILE *f, int64_t step, double val_loss);
// "1h02m", "3m07s", "41s"; "?" for a negative or absurd time.
void trainlog_duration(double seconds, char *buf, size_t cap);

//
// dataset.c — the token stream a trainer learns from, and the cursor that
// cuts it into micro-batches
//
typedef struct Dataset {
  uint16_t *ids;    // n token ids, each below the vocabulary size
  int64_t n;
  char *path;       // the file loaded, for messages (NULL: "the dataset")
} Dataset;
// Loads `path`. A name ending in ".bin" is raw little-endian uint16 token ids
// (an odd byte count or an id >= vocab is an error naming it). Any other file
// is UTF-8 text: with a tokenizer, BOS (1) and then the text as tok_encode
// encodes it (dummy prefix, no EOS), computed a line at a time (lines over
// 1 KiB are cut before a word's space, over 4 KiB anywhere), which gives the
// same ids as one call when no piece spans a line break or a word boundary,
// as in Llama-2's vocabulary; text must have no NUL byte then. Without one
// (tok NULL), every byte is its id (vocab must be at least 256). vocab is at
// most 65536. An empty file is an error. Errors name the file.
bool dataset_load(Dataset *ds, const char *path, const Tokenizer *tok, int vocab, RtDiag *d);
void dataset_free(Dataset *ds);

// Where the next micro-batch comes from. rng is the state of splitmix64
// (Steele, Lea, Flood 2014; Vigna's reference code): each draw adds
// 0x9E3779B97F4A7C15 to the state and mixes it; the same numbers on every
// platform, any seed (0 too) good. next: the next sequential micro-batch.
typedef struct DataCursor {
  uint64_t rng;
  int64_t next;
} DataCursor;
void data_cursor_init(DataCursor *c, uint64_t seed); // rng = seed, next = 0
// Fills inputs[0..seq) and targets[0..seq) = tokens [s, s + seq) and
// [s + 1, s + seq + 1). Random order: s uniform in [0, n - seq - 1] (one
// splitmix64 draw, redrawn while below 2^64 mod (n - seq), then modulo).
// Sequential: micro-batch i = c->next starts at s = i * seq; when that runs
// past the end (s + seq >= n), i is 0 instead; c->next becomes i + 1. An
// error if seq < 1 or n < seq + 1.
bool dataset_batch(const Dataset *ds, DataCursor *c, bool sequential, int seq, int32_t *inputs,
                   int32_t *targets, RtDiag *d);

//
// ckpt.c — training checkpoints: everything a run needs to resume bit for
// bit. One little-endian file (version CKPT_VERSION):
//   "ANECKPT\0", u32 version, u64 model hash, i64 step, u64 rng,
//   u64 cursor.rng, i64 cursor.next, f32 loss scale, i64 good steps,
//   i64 skipped steps, u32 tensor count, per tensor: u8 name length
//   (1..255), the name (no NUL), i64 element count, then count fp32
//   weights, count AdamW m, count AdamW v; u64 FNV-1a 64 of every byte before it.
//
enum { CKPT_VERSION = 2, CKPT_MAX_NAME = 255 };
typedef struct CkptTensor {
  const char *name;
  int64_t count;
  float *w, *m, *v; // count floats each (NULL when count is 0)
} CkptTensor;
typedef struct Ckpt {
  uint64_t model_hash; // the compiled model's content hash
  int64_t step;
  uint64_t rng;        // the trainer's own generator (dropout, sampling)
  DataCursor cursor;
  float loss_scale;
  int64_t good_steps;  // good steps since the last loss-scale change
  int64_t skipped;     // steps skipped so far: AdamW has made step - skipped updates
  int ntensors;
  CkptTensor *t;
} Ckpt;
// Writes c atomically: a temp file in path's directory, written, flushed,
// fsync'ed, renamed over path (then the directory fsync'ed). On any failure
// the temp file is removed, path is untouched, and the error names it.
bool ckpt_write(const char *path, const Ckpt *c, RtDiag *d);
// Reads path into `into`, which holds what the model expects: model_hash,
// ntensors and every tensor's name, count and buffers. The whole file is
// read, then checked in this order: magic, version, checksum, model hash,
// tensor count, each tensor's name and count, no trailing bytes; only then
// are the scalars and buffers filled. On error (named file, what is wrong)
// `into` is unchanged.
bool ckpt_read(const char *path, Ckpt *into, RtDiag *d);

//
// trainer.c — the driver of a model's training: train_main parses the
// command line and runs the loop (data, micro-batches, loss scaling,
// clipping, AdamW, validation, checkpoints and resume, llama2.c --init and
// --export, the progress log, the final report) around a model's step, which
// the compiler generates as a TrainModel.
//
typedef enum { TINIT_ZEROS, TINIT_ONES, TINIT_NORMAL } TrainInit;
typedef struct TrainTensor {
  const char *name;     // "layers.0.wq": llama2.c's names where the model follows its layout
  int rank;
  int64_t dims[4];
  bool decay;           // AdamW weight decay applies (matrices: rank >= 2)
  TrainInit init;
  double init_std;      // TINIT_NORMAL: rt_fill_normal(name, --seed)
} TrainTensor;

typedef struct TrainCounters {  // the model's own accounting, for the final report
  int compiles;                 // kernel programs prepared
  double compile_ms;
  double kernel_ms, cpu_ms, staging_ms;  // totals since open
  double flops_per_seq;         // forward + backward FLOPs of one sequence
} TrainCounters;

typedef struct TrainModel TrainModel;
struct TrainModel {
  const char *name;        // model name, for messages
  uint64_t hash;           // content hash of the compiled model (checkpoints carry it)
  int seq, vocab;          // tokens per sequence, vocabulary size
  int ntensors;
  const TrainTensor *tensors;
  bool has_l2c;            // the tensors follow llama2.c's layout: --init / --export allowed
  L2cConfig l2c;           // then: its config (seq = model seq, shared_cls as the model ties)
  void *self;              // the model's state
  // Called once after the flags are parsed: backend "ref" or "ane", fp32 or fp16 storage.
  bool (*open)(TrainModel *m, const char *backend, bool fp32, RtDiag *d);
  // One sequence: loss (mean over its seq tokens) of weights w (one fp32 array per
  // tensor, logical row-major layout), and dL/dw * grad_scale ADDED into grads.
  bool (*step)(TrainModel *m, float *const *w, const int32_t *tokens, const int32_t *targets,
               float grad_scale, float *const *grads, double *loss, RtDiag *d);
  // The loss only (validation).
  bool (*eval)(TrainModel *m, float *const *w, const int32_t *tokens, const int32_t *targets,
               double *loss, RtDiag *d);
  void (*counters)(TrainModel *m, TrainCounters *out);
  // Bumped by the driver (from 1) whenever it writes the weights: a model may
  // keep what it derived from them (staged surfaces) while it stays the same.
  uint64_t weights_version;
  void (*close)(TrainModel *m);
};
// Parses argv (argv[0] names the program in messages), runs the training and
// returns the exit status: 0 done, 1 bad input (data, checkpoints, model
// errors), 2 usage errors. Never calls exit(). Progress lines and the report
// go to stdout, errors to stderr. Checkpoints are DIR/step-NNNNNNNN.ckpt
// (the step, zero-padded to 8 digits); --resume latest takes the highest step.
int train_main(TrainModel *m, int argc, char **argv);

#endif
