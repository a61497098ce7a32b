// anert.h — the public header of libanert, the runtime: what a generated
// trainer (step.c, kernels.c) needs and nothing else. Host tensors and
// their dtypes, where errors go, the kernels of a program on a backend, the
// staging of values into kernel surfaces, the step's CPU ops, the worker
// thread, and the driver (train_main) around a generated TrainModel.
// The rest of the runtime is in its areas' headers (base, mil, exec, llm, train).
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

// The dtypes of MIL (mil/mil.h has the rest of the program's types); host
// tensors hold fp16, fp32 or int32.
typedef enum {
  MIL_BOOL, MIL_STRING,
  MIL_FP16, MIL_FP32, MIL_FP64, MIL_BF16,
  MIL_INT4, MIL_INT8, MIL_INT16, MIL_INT32, MIL_INT64,
  MIL_UINT1, MIL_UINT2, MIL_UINT4, MIL_UINT8, MIL_UINT16, MIL_UINT32, MIL_UINT64,
  MIL_NDTYPES
} MilDType;

#define MIL_MAX_RANK 8
#define MIL_ANY (-1) // a `?` dimension or list length

//
// RtDiag — where runtime readers report errors about their input files
// (base/srcmsg.c; base.h has the located forms).
//
typedef struct RtDiag {
  FILE *out;      // NULL: count only
  int errors;
  int max_errors; // 0: 20
  bool stop;      // too many errors: readers bail out
} RtDiag;
// An error about a file as a whole: "file: error: msg" (file may be NULL).
void rt_error_file(RtDiag *d, const char *file, const char *fmt, ...) ANERT_PRINTF(3, 4);

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
// exec/ — the precision a program runs in on the reference backend.
//
typedef enum {
  EXEC_FP16, // ANE numerics: every floating tensor stored as fp16, rounded after each op;
             // arithmetic and accumulation in fp32
  EXEC_FP32, // every floating tensor stored as fp32: for exact comparisons
} ExecPrecision;
// The ANE's numeric cliffs as reported on M2 Pro and M5 (ANEForge
// docs/numeric-cliffs.md, docs/developer/numerics.md), modeled in EXEC_FP16
// only: a matmul, linear or conv output (and scaled_dot_product_attention's
// two products) of magnitude >= 32752 becomes +/-inf; reduce_sum and
// reduce_mean keep their running sum in fp16 (exec.h has the details).
typedef enum {
  EXEC_QUIRKS_DEFAULT, // on in EXEC_FP16, off in EXEC_FP32
  EXEC_QUIRKS_ON,      // as the default: EXEC_FP32 never models them
  EXEC_QUIRKS_OFF,     // fp16 storage with fp32 arithmetic and wide sums only
} ExecQuirks;
// How the reference executor runs a program; all zero (or a NULL pointer)
// is the default.
typedef struct ExecOptions {
  ExecQuirks ane_quirks;
  bool no_fusion; // every op its own step (no softmax prologue, transpose or attention fusion)
} ExecOptions;
typedef struct Exec Exec;
typedef struct MilProgram MilProgram;

//
// base/pool.c — one background thread for a step's overlapped CPU work
//
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
// opts: NULL for the defaults (ANE quirks on in EXEC_FP16).
bool rtk_open(RtKernel *k, const char *name, const char *mil, const RtFile *files, int nfiles,
              ExecPrecision prec, const ExecOptions *opts, RtDiag *d);
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

// The llama2.c configuration of a model (llm/llama2c.c reads and writes its files).
typedef struct L2cConfig {
  int dim, hidden, layers, heads, kv_heads, vocab, seq;
  bool shared_cls; // the classifier is tok_emb (the header's vocab is positive)
} L2cConfig;

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
  uint64_t hash;           // content hash of the generated step, the plan (checkpoints carry
                           // it; resuming one of another plan warns)
  int seq, vocab;          // tokens per sequence, vocabulary size
  int ntensors;
  const TrainTensor *tensors;
  bool has_l2c;            // the tensors follow llama2.c's layout: --init / --export allowed
  L2cConfig l2c;           // then: its config (seq = model seq, shared_cls as the model ties)
  void *self;              // the model's state
  // Called once after the flags are parsed: backend "ref" or "ane", fp32 or fp16 storage;
  // ane_quirks (never with fp32): the reference backend models the ANE's numeric
  // cliffs (ExecQuirks), --ane-quirks.
  bool (*open)(TrainModel *m, const char *backend, bool fp32, bool ane_quirks, RtDiag *d);
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
// (the step, zero-padded to 8 digits); --resume latest takes the newest one
// that reads back whole (skipped ones are named, with the reason).
int train_main(TrainModel *m, int argc, char **argv);

#endif
