// ir.h — the graph IR: sources and diagnostics, nodes and graphs with the
// op table (ops.h), shape inference, the plan that lowering attaches
// (kernels, schedule, buffers), and the IR's text and DOT forms. Built on the runtime's base; above the target.
#ifndef ANEC_IR_H
#define ANEC_IR_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base.h"
#include "target.h"

#define ANEC_VERSION "0.1.0"

#if defined(__GNUC__)
#define ANEC_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define ANEC_PRINTF(f, a)
#endif

//
// diag.c — source files and GCC-style diagnostics
//
// A location: file id (index into Diag.files, -1 = none) and a 1-based,
// inclusive range. Field names are bison's, so SrcLoc is also YYLTYPE.
typedef struct SrcLoc {
  int file;
  int first_line, first_column;
  int last_line, last_column;
} SrcLoc;

typedef struct SrcFile {
  char *name;  // as given on the command line ("samples/x.anet", "<prelude>")
  char *text;  // owned copy, NUL-terminated (the text itself may hold NULs)
  size_t len;
  size_t *lines; // diag.c's index, built on first use: offset of each line start
  int nlines;    // lines in the index (a final empty line does not count)
} SrcFile;

typedef enum { DIAG_ERROR, DIAG_WARNING, DIAG_NOTE } DiagLevel;

typedef struct Diag {
  SrcFile *files;
  int nfiles, capfiles;
  FILE *out;        // where diagnostics go (stderr in the driver)
  int errors;       // errors reported so far (also counts suppressed ones)
  int warnings;
  int max_errors;   // after this many errors, `stop` is set (default 20)
  bool stop;        // too many errors: callers bail out at the next check
  bool last_shown;  // whether the last error/warning was printed (notes follow it)
} Diag;

void diag_init(Diag *d, FILE *out);
void diag_free(Diag *d);
// Registers a copy of `text`; returns the file id.
int diag_add_file(Diag *d, const char *name, const char *text, size_t len);
// `file:line:col: error: msg`, the source line, and a caret with ~~~ under the
// range. A location with file < 0 prints `anec: error: msg`.
void diag_error(Diag *d, SrcLoc loc, const char *fmt, ...) ANEC_PRINTF(3, 4);
void diag_warning(Diag *d, SrcLoc loc, const char *fmt, ...) ANEC_PRINTF(3, 4);
void diag_note(Diag *d, SrcLoc loc, const char *fmt, ...) ANEC_PRINTF(3, 4);
void diag_report(Diag *d, DiagLevel lvl, SrcLoc loc, const char *fmt, va_list ap);
// The candidate closest to `name` by edit distance, or NULL if none is close.
const char *diag_suggest(const char *name, const char *const *cands, int n);
SrcLoc loc_none(void);
SrcLoc loc_span(SrcLoc a, SrcLoc b); // from the start of a to the end of b
// (utf8_decode, srcmsg_quote: runtime/srcmsg.c, declared in anert.h)


//
// The graph IR
//
#define MAX_RANK 6
#define MAX_DIM ((int64_t)1 << 31)         // largest single dimension (exclusive)
#define MAX_NUMEL ((int64_t)1 << 40)       // largest element count of one tensor
#define AXIS_ALL 99                        // reduce over every axis (result rank 0)

typedef enum { DT_F32, DT_F16, DT_I32 } DType;

typedef struct Shape {
  int rank;
  int64_t dims[MAX_RANK];
} Shape;

typedef struct Node Node;
typedef struct Graph Graph;
typedef struct Plan Plan;
typedef struct TargetProfile TargetProfile;

// Where a node runs. HOST: inputs and constants (no work: the host stages
// them); ANE: inside a kernel; CPU: a fallback op, with the rule that forced it.
typedef enum { DEV_HOST, DEV_ANE, DEV_CPU } Device;

// How a kernel holds a value. TL (token-last): logical [S, d1..dk] is
// [1, d1, 1, S] for k = 1 (the ANE's [1, C, 1, S]), [1, d1, .., dk, S] for
// k = 2, 3 and [1, 1, 1, S] for k = 0. PLAIN: the logical shape itself.
typedef enum { LAYOUT_PLAIN, LAYOUT_TL } Layout;

// Shape and type inference of one node from its inputs and attributes
// (ir/infer.c). Reports at n->loc and returns false on error.
typedef bool (*InferFn)(Node *n, struct Diag *d);

// The attribute fields of Node an op uses, as bits of OpInfo.attrs (ops.h).
// Each kind has a printer (irdump.c; this order is the dump's) and, but for
// name, target and init, a hash and comparison (passes/cse.c).
typedef enum {
  ATTR_NAME = 1 << 0,      // name: ` tokens`
  ATTR_VALUE = 1 << 1,     // value, as itself: ` 0.5`
  ATTR_THETA = 1 << 2,     // value, as the RoPE base: ` theta=10000`
  ATTR_EXPONENT = 1 << 3,  // value, as the exponent: ` exponent=2`
  ATTR_GELU = 1 << 4,      // gelu: ` mode=tanh`
  ATTR_AXIS = 1 << 5,      // axis: ` axis=1`, ` axis=all`
  ATTR_RANGE = 1 << 6,     // begin, end: ` begin=0 end=2`
  ATTR_TRANSPOSE = 1 << 7, // transpose_a, transpose_b: ` transpose_b`
  ATTR_TARGET = 1 << 8,    // target: ` [256, -1]`
  ATTR_PERM = 1 << 9,      // perm, one entry per axis: ` perm=[1, 0]`
  ATTR_INIT = 1 << 10,     // init, init_std: ` = normal(0.02)`, after the type
} AttrKind;

typedef enum {
#define X(name, dsl, arity, mil, infer, grad, attrs, args) OP_##name,
#include "ops.h"
#undef X
  OP_COUNT
} OpKind;

typedef struct OpInfo {
  const char *name;  // as written in .anet and in IR dumps ('%': internal)
  int arity;         // number of inputs; -1 = one or more
  const char *mil;   // the MIL op it lowers to (NULL: none, e.g. inputs)
  InferFn infer;
  unsigned attrs;    // the AttrKind bits of the attributes it uses
  const char *args;  // its .anet signature, "x, axis=all" (NULL: not called by name)
} OpInfo;
extern const OpInfo op_info[OP_COUNT];
int op_lookup(const char *name); // OpKind with that .anet name, or -1

typedef enum { INIT_NONE, INIT_ZEROS, INIT_ONES, INIT_NORMAL } InitKind;
typedef enum { GELU_EXACT, GELU_TANH } GeluMode;

struct Node {
  int id;             // position in Graph.nodes; passes renumber
  OpKind op;
  int nin;
  Node **in;          // inputs
  Shape shape;        // set by inference (sources: at creation)
  DType dtype;
  SrcLoc loc;         // the .anet expression that created the node
  SrcLoc site;        // innermost location in the model's own file (== loc there)
  const char *name;   // INPUT/PARAM: full name ("layers.3.wq"); else NULL
  const char *scope;  // "layers.3/block/attention": repeat path / layer calls
  // Attributes: a fat struct; ops.h says which op uses which.
  int axis;           // SUM MEAN MAX SOFTMAX SLICE CONCAT (AXIS_ALL for reduce-all)
  int64_t begin, end; // SLICE: [begin, end) along axis
  Shape target;       // RESHAPE: requested shape, one dim may be -1
  int perm[MAX_RANK]; // TRANSPOSE
  bool transpose_a, transpose_b; // MATMUL
  double value;       // CONST value; POW exponent; ROPE_COS/ROPE_SIN theta
  GeluMode gelu;      // GELU
  InitKind init;      // PARAM
  double init_std;    // PARAM with INIT_NORMAL
  // lowering (passes/legalize.c, place.c, partition.c)
  Layout layout;      // computed values: how a kernel holds them (see Layout)
  bool as_conv;       // MATMUL x Wᵀ with W a param: a 1x1 conv (ANE-P05)
  Device dev;         // set by place
  int why;            // dev == DEV_CPU: the RuleId that put it there
  int kernel;         // dev == DEV_ANE: index into Plan.kernels (partition)
  // scratch for passes
  bool live;
  Node *repl;
};

typedef struct Hyper {
  const char *name;
  bool is_int;
  int64_t ival;
  double fval;
  SrcLoc loc;         // where it was set (the model header or -D)
} Hyper;

struct Graph {
  Arena *arena;
  const char *model;  // model name
  const char *file;   // model file name
  Node **nodes;
  int nnodes, capnodes;
  Node **outputs;
  const char **output_names;
  int noutputs;
  Node *loss;         // NULL for inference-only models
  bool train;         // the training graph: autodiff ran, lowering keeps the loss
  Hyper *hypers;
  int nhypers;
  int nblocks;        // iterations of the top-level repeat(s): "layers"
  // lowering
  const TargetProfile *target; // the profile legalize, place and partition obey
  bool dynamic_weights;        // --weights=inputs: params packed into kernel inputs
  bool dw_cpu;                 // --dw=cpu: place puts weight gradients on the CPU
  bool no_check;               // --no-check: artifact_write skips the catalog check
  Plan *plan;                  // kernels and schedule (partition)
};

Graph *graph_new(Arena *a);
// Appends a node with the given inputs (copied). Attributes are zero; the
// caller sets them, then calls node_infer.
Node *graph_add(Graph *g, OpKind op, Node **in, int nin, SrcLoc loc);
bool node_infer(Node *n, Diag *d);
void graph_add_output(Graph *g, const char *name, Node *n);
int64_t shape_numel(const Shape *s);
bool shape_eq(const Shape *a, const Shape *b);
char *shape_str(Arena *a, const Shape *s);   // "[256, 288]"
const char *dtype_name(DType t);             // "f32"
int64_t node_flops(const Node *n);           // forward FLOPs of one node
int64_t graph_param_count(const Graph *g);   // elements of all PARAMs
int64_t graph_flops(const Graph *g);

// A constant: a param, a constant op, or a reshape, slice or broadcast of one (folded).
bool node_is_const(const Node *n);
// The rule that put n on the CPU, or NULL (target.h has the catalog).
const Rule *node_rule(const Node *n);
// Node.why of a weight gradient the user put on the CPU (--dw=cpu); node_rule
// gives a pseudo-rule "--dw=cpu" for it.
enum { WHY_DW_CPU = -2 };

// irdump.c — the stable, diffable text form of a graph
void graph_dump(const Graph *g, FILE *out, const char *after_pass);

// dot.c — the lowered graph (after partition) as a Graphviz digraph
void plan_dot(const Graph *g, FILE *out);

// infer.c — shape and type inference, one function per op family (ops.h
// names them); node_infer runs the one of a node's op.
bool infer_source(Node *n, Diag *d);
bool infer_unary(Node *n, Diag *d);
bool infer_binary(Node *n, Diag *d);
bool infer_reduce(Node *n, Diag *d);
bool infer_softmax(Node *n, Diag *d);
bool infer_matmul(Node *n, Diag *d);
bool infer_reshape(Node *n, Diag *d);
bool infer_transpose(Node *n, Diag *d);
bool infer_slice(Node *n, Diag *d);
bool infer_concat(Node *n, Diag *d);
bool infer_embed(Node *n, Diag *d);
bool infer_cross_entropy(Node *n, Diag *d);
bool infer_broadcast(Node *n, Diag *d);
bool infer_embed_grad(Node *n, Diag *d);
bool infer_ce_grad(Node *n, Diag *d);

//
// Lowering: the forward graph becomes ANE kernels and CPU ops. The passes of
// the lowering pipeline (passes/pipeline.c) run after the front pipeline,
// with g->target set.
//
typedef struct Kernel {
  const char *name;      // "k03_layers_2": kernels/NAME/model.mil
  Node **nodes;          // its ANE nodes, in schedule order
  int nnodes;
  Node **inputs;         // values it reads from outside: host, CPU ops, other kernels
  int ninputs;
  Node **outputs;        // values read outside it (or graph outputs)
  int noutputs;
  int64_t flops;
  int64_t weight_bytes;  // fp16 constants baked into it
  int64_t io_bytes;      // fp16 bytes of its inputs and outputs
  int64_t sram_bytes;    // estimate: weights + I/O + the largest intermediate (ANE-P03)
} Kernel;

// One entry of the forward schedule: a kernel, or a CPU op.
typedef struct PlanStep {
  int kernel;            // >= 0: Plan.kernels[kernel]
  Node *cpu;             // else this CPU node
  bool background;       // a --dw=cpu op: on the host's worker thread, overlapped with
  int join;              // the kernels up to step `join`, which waits for it (nsteps: the end)
} PlanStep;

// A value that crosses steps (kernel I/O, CPU op operands, graph inputs and
// outputs), with its lifetime in schedule steps and its place in one arena.
typedef struct PlanBuf {
  Node *value;
  int first, last;       // the step that writes it (-1: a graph input), the last reader
  int64_t bytes;         // fp32, logical layout (the host's copy)
  int64_t offset;        // in the arena, 64-byte aligned
} PlanBuf;

struct Plan {
  Kernel *kernels;
  int nkernels;
  PlanStep *steps;
  int nsteps;
  PlanBuf *bufs;
  int nbufs;
  int64_t arena_bytes;   // the memory plan's total
};



#endif
