// anec.h — the one header of the compiler: arena memory, sources and
// diagnostics, the .anet AST, the graph IR with its op table, the passes and
// the front-end entry points. Every file of dsl/, passes/ and compiler/
// includes it; runtime/ never does.
#ifndef ANEC_H
#define ANEC_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "anert.h" // arena, fp16, MIL programs: the runtime the compiler builds on

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
// dsl/source.c — reading model files
//
// Reads `path`, rejects what is not text (NUL bytes, invalid UTF-8, over
// 64 MiB) with a located error, and registers it. Returns the file id or -1.
int source_load(Diag *d, const char *path);
// The prelude of standard layers (dsl/prelude.anet, embedded at build time).
int source_load_prelude(Diag *d);
extern const char anec_prelude_text[];

//
// dsl/ast.c — the abstract syntax tree built by the parser
//
typedef enum {
  // expressions
  AST_INT,    // ival
  AST_FLOAT,  // fval
  AST_STR,    // str
  AST_NAME,   // name
  AST_LIST,   // [list...]
  AST_CALL,   // name(list...); list holds expressions and AST_KWARGs
  AST_KWARG,  // name = rhs, inside a call
  AST_BINOP,  // lhs op rhs; op is one of + - * / % @
  AST_NEG,    // -lhs
  // statements
  AST_ASSIGN, // name = rhs
  AST_PARAM,  // param name: lhs(type) = rhs(initializer)
  AST_INPUT,  // input name: lhs(type)
  AST_RETURN, // return rhs
  AST_OUTPUT, // output name = rhs, or `output name` (rhs NULL)
  AST_LOSS,   // loss rhs
  AST_REPEAT, // repeat name [: rhs(count)] { body }; without rhs the count is `name`
  // declarations and parts
  AST_MODEL,  // model name { body }: hyper-parameter assignments
  AST_LAYER,  // layer name(list of AST_FORMAL) { body }
  AST_FORMAL, // name [= rhs(default)]
  AST_TYPE,   // name(dtype, "" when omitted)[list(dims)]
} AstKind;

typedef struct Ast Ast;
struct Ast {
  AstKind kind;
  SrcLoc loc;        // the whole construct
  SrcLoc name_loc;   // the name, where the construct has one
  Ast *next;         // next sibling in a list
  const char *name;
  int64_t ival;
  double fval;
  const char *str;
  int op;
  Ast *lhs, *rhs;
  Ast *list;
  Ast *body;
};

Ast *ast_new(Arena *a, AstKind kind, SrcLoc loc);
Ast *ast_int(Arena *a, SrcLoc loc, int64_t v);
Ast *ast_float(Arena *a, SrcLoc loc, double v);
Ast *ast_str(Arena *a, SrcLoc loc, const char *s);
Ast *ast_name(Arena *a, SrcLoc loc, const char *name);
Ast *ast_list(Arena *a, SrcLoc loc, Ast *items);
Ast *ast_call(Arena *a, SrcLoc loc, const char *name, SrcLoc name_loc, Ast *args);
Ast *ast_kwarg(Arena *a, SrcLoc loc, const char *name, SrcLoc name_loc, Ast *value);
Ast *ast_binop(Arena *a, SrcLoc loc, int op, Ast *lhs, Ast *rhs);
Ast *ast_neg(Arena *a, SrcLoc loc, Ast *operand);
Ast *ast_assign(Arena *a, SrcLoc loc, const char *name, SrcLoc name_loc, Ast *value);
Ast *ast_param(Arena *a, SrcLoc loc, const char *name, SrcLoc name_loc, Ast *type, Ast *init);
Ast *ast_input(Arena *a, SrcLoc loc, const char *name, SrcLoc name_loc, Ast *type);
Ast *ast_return(Arena *a, SrcLoc loc, Ast *value);
Ast *ast_output(Arena *a, SrcLoc loc, const char *name, SrcLoc name_loc, Ast *value);
Ast *ast_loss(Arena *a, SrcLoc loc, Ast *value);
Ast *ast_repeat(Arena *a, SrcLoc loc, const char *name, SrcLoc name_loc, Ast *count, Ast *body);
Ast *ast_model(Arena *a, SrcLoc loc, const char *name, SrcLoc name_loc, Ast *body);
Ast *ast_layer(Arena *a, SrcLoc loc, const char *name, SrcLoc name_loc, Ast *formals, Ast *body);
Ast *ast_formal(Arena *a, SrcLoc loc, const char *name, Ast *dflt);
Ast *ast_type(Arena *a, SrcLoc loc, const char *dtype, Ast *dims);
Ast *ast_append(Ast *list, Ast *item); // appends to a `next` list; returns the head
int ast_count(const Ast *list);

// dsl/parser.y + dsl/lexer.l — parses one registered file. Returns the list of
// top-level items (AST_MODEL, AST_LAYER, statements); errors go to `d`.
Ast *parse_file(Arena *a, Diag *d, int file);

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
// (passes/infer.c). Reports at n->loc and returns false on error.
typedef bool (*InferFn)(Node *n, struct Diag *d);

typedef enum {
#define X(name, dsl, arity, mil, infer, grad) OP_##name,
#include "ops.h"
#undef X
  OP_COUNT
} OpKind;

// Reverse-mode rule of one op (passes/grad.c): given node n and the gradient
// gy of its output, adds the gradients of its inputs through ad_accum.
typedef struct Ad Ad;
typedef void (*GradFn)(Ad *c, Node *n, Node *gy);

typedef struct OpInfo {
  const char *name;  // as written in .anet and in IR dumps ('%': internal)
  int arity;         // number of inputs; -1 = one or more
  const char *mil;   // the MIL op it lowers to (NULL: none, e.g. inputs)
  InferFn infer;
  GradFn grad;       // NULL: not differentiable (yet)
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
char *fmt_count(char *buf, size_t n, int64_t v);              // "1,234,567"
char *fmt_si(char *buf, size_t n, double v, const char *unit); // "2.10 GFLOP"
int64_t node_flops(const Node *n);           // forward FLOPs of one node
int64_t graph_param_count(const Graph *g);   // elements of all PARAMs
int64_t graph_flops(const Graph *g);

// compiler/report.c — the compile report: model, parameters, FLOPs, ops
void report_print(const Graph *g, FILE *out);

// compiler/irdump.c — the stable, diffable text form of a graph
void graph_dump(const Graph *g, FILE *out, const char *after_pass);

// inference functions named in ops.h (passes/infer.c)
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
// passes/autodiff.c — reverse mode over the IR: appends the backward graph of
// g->loss and one output "grad.NAME" per param (its gradient, param-shaped).
// Reports ops without a gradient rule at their location.
//
bool autodiff_build(Graph *g, Diag *d);
// The pass of the training pipeline: autodiff_build, the loss as output
// "loss", g->train set.
bool pass_autodiff(Graph *g, Diag *d);
// For the rules (passes/grad.c): new nodes located at `like`, inferred.
Node *ad_op(Ad *c, OpKind op, Node *a, Node *b, const Node *like);
Node *ad_num(Ad *c, double v, const Node *like);       // a scalar constant
Node *ad_new(Ad *c, OpKind op, Node **in, int nin, const Node *like); // set attributes,
Node *ad_done(Ad *c, Node *n);                         // then infer it
// Adds g (reduced or broadcast to x's shape) to x's gradient.
void ad_accum(Ad *c, Node *x, Node *g);
Diag *ad_diag(Ad *c); // for a rule's own errors,
void ad_fail(Ad *c);  // after which autodiff_build fails
// The gradient rules named in ops.h
void grad_add(Ad *c, Node *n, Node *gy);
void grad_sub(Ad *c, Node *n, Node *gy);
void grad_mul(Ad *c, Node *n, Node *gy);
void grad_div(Ad *c, Node *n, Node *gy);
void grad_neg(Ad *c, Node *n, Node *gy);
void grad_exp(Ad *c, Node *n, Node *gy);
void grad_log(Ad *c, Node *n, Node *gy);
void grad_sqrt(Ad *c, Node *n, Node *gy);
void grad_rsqrt(Ad *c, Node *n, Node *gy);
void grad_pow(Ad *c, Node *n, Node *gy);
void grad_sigmoid(Ad *c, Node *n, Node *gy);
void grad_silu(Ad *c, Node *n, Node *gy);
void grad_tanh(Ad *c, Node *n, Node *gy);
void grad_gelu(Ad *c, Node *n, Node *gy);
void grad_sum(Ad *c, Node *n, Node *gy);
void grad_mean(Ad *c, Node *n, Node *gy);
void grad_softmax(Ad *c, Node *n, Node *gy);
void grad_matmul(Ad *c, Node *n, Node *gy);
void grad_reshape(Ad *c, Node *n, Node *gy);
void grad_transpose(Ad *c, Node *n, Node *gy);
void grad_slice(Ad *c, Node *n, Node *gy);
void grad_concat(Ad *c, Node *n, Node *gy);
void grad_embed(Ad *c, Node *n, Node *gy);
void grad_cross_entropy(Ad *c, Node *n, Node *gy);

//
// passes/ — each pass is `bool pass_x(Graph *, Diag *)`; false means it
// reported an error. passes/pipeline.c lists them in order.
//
typedef bool (*PassFn)(Graph *g, Diag *d);
typedef struct Pass {
  const char *name;
  PassFn run;
  const char *contract; // one line: what it requires and provides
} Pass;
extern const Pass pipeline[];
extern const int npipeline;
extern const Pass autodiff_pass; // with --train: after pipeline[0] (infer)

bool pass_infer(Graph *g, Diag *d);
bool pass_dce(Graph *g, Diag *d);
bool pass_cse(Graph *g, Diag *d);
bool graph_verify(Graph *g, Diag *d); // structural + shape verifier

typedef struct PipelineOpts {
  const char *print_after; // pass name, or NULL
  bool print_after_all;
  FILE *dump;              // where --print-after dumps go
  bool train;              // the training pipeline (autodiff) instead of the forward one
  bool dw_cpu;             // --dw=cpu: weight gradients as BLAS on the CPU (place)
} PipelineOpts;
const Pass *pipeline_find(const char *name);
bool pipeline_run(Graph *g, Diag *d, const PipelineOpts *o);

//
// dsl/lower.c — elaborates the AST into the forward graph
//
typedef struct Define {
  const char *name;
  const char *value;  // text after '='
  int file;           // the "<command line>" pseudo-file holding "-D name=value"
} Define;

Graph *lower_program(Arena *a, Diag *d, Ast *prelude, Ast *model, int model_file,
                     const Define *defs, int ndefs);

// compiler/front.c — load, parse, lower and run the pipeline: the shared
// front half of every subcommand. Returns NULL after reporting errors.
typedef struct FrontOpts {
  const Define *defs;
  int ndefs;
  PipelineOpts pipe;
} FrontOpts;
Graph *front_compile(Arena *a, Diag *d, const char *path, const FrontOpts *o);

//
// compiler/catalog.c — the ANE constraint catalog (the rows of catalog.h) and
// the target profiles: per-chip values and switches, as data that mil-check
// and placement query. Every decision names the rule that caused it.
//
typedef enum {
#define X(id, ...) RULE_##id,
#include "catalog.h"
#undef X
  RULE_COUNT
} RuleId;

typedef enum {
  ACT_REJECT, ACT_CPU, ACT_REWRITE, ACT_PAD, ACT_SPLIT, ACT_PACK, ACT_WARN,
  ACT_EMITTER, // the emitter writes it right; mil-check checks others' text
  ACT_LAYOUT,  // the layout pass and the runtime's packed buffers
  ACT_BUDGET,  // counted against a per-process budget
  ACT_COST,    // a cost-model preference, not a legality rule
  ACT_RUNTIME, // a duty of the runtime
} RuleAction;
typedef enum { CONF_FIRM, CONF_REPORTED, CONF_DISPUTED } RuleConfidence;
typedef enum {
  CHECK_STATIC,  // mil-check decides it from the program text
  CHECK_PARTIAL, // mil-check sees part of it (a bound, or advice)
  CHECK_READER,  // the MIL reader rejects violations as parse errors
  CHECK_NONE,    // not checkable statically
} RuleCheck;
typedef enum { SEV_OFF, SEV_INFO, SEV_WARNING, SEV_ERROR, SEV_COUNT } Severity;

typedef struct Rule {
  const char *id;          // "ANE-T03"
  const char *text;        // the rule in one line
  RuleAction action;
  const char *action_text; // the catalog's own words ("emitter; reject in mil-check")
  RuleCheck check;
  Severity severity;       // of mil-check findings, before the target's switches
  RuleConfidence confidence;
  const char *retired;     // NULL, or why the rule no longer applies
  const char *source;
  const char *check_note;  // what mil-check looks at, or why it cannot
} Rule;
extern const Rule catalog_rules[RULE_COUNT];
const Rule *rule_find(const char *id); // "ANE-T03" or "T03"; NULL if unknown
const Rule *node_rule(const Node *n);  // the rule that put n on the CPU, or NULL
// Node.why of a weight gradient the user put on the CPU (--dw=cpu); node_rule
// gives a pseudo-rule "--dw=cpu" for it.
enum { WHY_DW_CPU = -2 };
const char *rule_action_name(RuleAction a);         // "emitter"
const char *rule_confidence_name(RuleConfidence c); // "firm"
const char *rule_check_name(RuleCheck c);           // "static"
const char *severity_name(Severity s);              // "error"

typedef enum { INPUTS_SINGLE, INPUTS_MULTI } InputsMode;

struct TargetProfile {
  const char *name;            // what --target takes: "m4"
  const char *chips;           // "M3, M4"
  const char *program;         // T07: MIL version written, and the highest accepted
  const char *opset;           // T07: function opset written, and the highest accepted
  bool short_literals;         // T07: scalars as int32(1), else tensor<int32, []>(1)
  bool in_graph_cast;          // T07: `cast` may appear inside a program
  bool weight_file_per_matrix; // T07: every BLOBFILE in a file of its own
  int64_t max_spatial;         // B05: largest spatial extent
  int64_t max_channels;        // B05: most channels
  int64_t conv_cin_reject;     // B06: conv input channels from this count on fail
  int64_t min_surface_bytes;   // B07: smallest I/O surface that evaluates
  bool equal_io_sizes;         // B08: inputs alike in size, outputs alike
  InputsMode inputs;           // B09
  int matmul_k_multiple;       // B10: contraction dimension a multiple of this
  bool matmul_k_error;         // B10: an error here (else a warning)
  int surface_align;           // B04 (64) or B11 (128): bytes per I/O row
  int compile_budget;          // P02: compiles per process
  int64_t sram_bytes;          // P03: on-chip SRAM
};

extern const TargetProfile target_profiles[];
extern const int ntarget_profiles;
const TargetProfile *target_find(const char *name); // NULL if unknown
const TargetProfile *target_default(void);          // m4
void target_names(char *buf, size_t n);             // "m1, m4, m5"
// Whether `mil_op` has an ANE path on `t` (ANE-T08; `cast` per ANE-T07).
bool target_op_allowed(const TargetProfile *t, const char *mil_op);
// The ops with an ANE path and the first opset that has each (15 = ios15).
typedef struct AneOp {
  const char *name;
  int opset;
} AneOp;
extern const AneOp ane_ops[];
extern const int nane_ops;
int opset_number(const char *opset); // "ios18" -> 18; 0 if not of that form
// The severity of a rule's findings on `t`: the rule's own, raised or
// switched off (SEV_OFF) by the profile (B08, B09, B10, B11).
Severity target_rule_severity(const TargetProfile *t, RuleId r);

//
// compiler/milcheck.c — applies the catalog to a MIL program for one target
//
typedef struct MilFinding {
  RuleId rule;
  Severity severity;
  MilLoc loc;       // line 0: about the program as a whole
  const char *func; // the function it is about, or NULL
  const char *msg;
} MilFinding;

typedef struct MilCheck {
  Arena arena;           // the findings and their messages
  MilFinding *findings;  // in source order
  int n, cap;
  int count[SEV_COUNT];  // findings per severity
} MilCheck;

// Checks `p` against every statically checkable rule for `t`; findings are
// appended to `c` (zero-initialize it first) and sorted by location.
void milcheck_run(MilCheck *c, const MilProgram *p, const TargetProfile *t);
void milcheck_free(MilCheck *c);

//
// Lowering: the forward graph becomes ANE kernels and CPU ops. The passes of
// the lowering pipeline (passes/pipeline.c) run after the front pipeline,
// with g->target set.
//
typedef struct Kernel {
  const char *name;      // "k03_layers_2": kernels/NAME.mil
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

bool pass_legalize(Graph *g, Diag *d);
bool pass_place(Graph *g, Diag *d);
bool pass_partition(Graph *g, Diag *d);
extern const Pass lowering[];
extern const int nlowering;
// Runs the lowering pipeline for target t (verifier between passes). A
// training graph always takes its weights as inputs (P01); o->dw_cpu applies
// to training graphs only.
bool lowering_run(Graph *g, Diag *d, const TargetProfile *t, const PipelineOpts *o);
// A constant: a param, a constant op, or a reshape, slice or broadcast of one (folded).
bool node_is_const(const Node *n);
// The token-last shape of logical [S, d1..dk] (see Layout). Returns the rank.
int tl_phys_shape(int rank, const int64_t *logical, int64_t *phys);
// Row-major [tokens, inner] values as [inner, tokens]: the token-last order.
void values_token_last(const float *v, int64_t tokens, int64_t inner, float *out);
// The physical shape a kernel gives n (its Layout). Returns the rank.
int node_phys_shape(const Node *n, int64_t *dims);
// Its [1, C, 1, S] shape at a kernel boundary (ANE-B02): token-last [S, C]
// as [1, C, 1, S], a plain value as [1, numel / last, 1, last].
void node_io_shape(const Node *n, int64_t dims[4]);

// compiler/params.c — parameter values: fp32, logical layout, by name
typedef struct ParamSet {
  Arena *arena;
  StrMap map;           // param name -> float[numel]
} ParamSet;
void params_init(ParamSet *ps, Arena *a);
// Values from the initializers for every param not yet set: deterministic
// for a given name and seed.
void params_init_random(ParamSet *ps, const Graph *g, uint64_t seed);
void params_set(ParamSet *ps, const char *name, float *values); // not copied
const float *params_get(const ParamSet *ps, const Node *param); // NULL if unset
// A source node's values (params, constants, causal mask, RoPE tables).
const float *params_source_values(const ParamSet *ps, const Node *n);

// --weights=inputs (dynamic weights, ANE-P01): a kernel's params travel in
// its one input surface (ANE-B09) after the activations' columns, so one
// compiled kernel serves every layer of the same shape. Per param, a block
// at rows [row, row + rows) of columns [col, col + cols): Wᵀ of a [a, b]
// matrix (b rows, a columns), the matrix as it is (a rows, b columns), or a
// vector (one column); the mode with fewer columns among those whose rows
// fit the surface's. Blocks stack in strips of columns while rows are left. Inference: params that fit none (or would pass the
// spatial limit) stay constants. Training (g->train): the surface grows
// rows for them, and a param that still does not fit is an error
// (partition reports it).
typedef enum { PACK_TRANSPOSED, PACK_AS_IS, PACK_VECTOR } PackMode; // = StageMode
typedef struct Pack {
  const Node *param;
  PackMode mode;
  int64_t row, col;       // where its block starts in the surface
  int64_t rows, cols;
} Pack;
enum { MAX_PACKS = 64 };
typedef struct Packing {
  int n;
  Pack packs[MAX_PACKS];
  int64_t col0;    // the first column after the activations
  int64_t cols;    // columns the params take
  int64_t rows;    // the surface's rows (at least the activations')
} Packing;
// The packing of kernel ki (n = 0 without g->dynamic_weights or when its
// inputs are not in one surface).
void kernel_packing(const Graph *g, int ki, Packing *pk);

// Kernel I/O surfaces. One surface per value, or, where the target wants
// one input (ANE-B09) or outputs alike in size (B08) and the kernel has
// several, one surface holding each value's block on its own rows: rows
// [row, row + rows) and columns [0, cols) of surface `surface` (in00 or
// out00). A block is the value's [C, S] (token-last) or [numel / last, last]
// (plain: its last axis).
typedef struct IoBlock {
  int surface;
  int64_t row, rows, cols;
} IoBlock;
// The blocks of kernel ki's inputs (or outputs), blocks[i] for
// Kernel.inputs[i]; returns the number of surfaces.
int kernel_io_blocks(const Graph *g, int ki, bool input, IoBlock *blocks);
// The [1, C, 1, W] dims of input (or output) surface s of kernel ki: its
// blocks, the packed params' columns for input 0, then unused columns up to
// the target's row alignment (ANE-B04, B11) and minimum surface size (B07).
void kernel_surface_shape(const Graph *g, int ki, bool input, int s, int64_t dims[4]);
// The surface holding kernel ki's input or output n.
void kernel_io_shape(const Graph *g, int ki, const Node *n, bool input, int64_t dims[4]);
// A value's block shape: rows and cols as above.
void value_block(const Node *n, int64_t *rows, int64_t *cols);

// compiler/emit_mil.c — one kernel as MIL text plus its weight files
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

// compiler/gen_train.c — a lowered training graph as C (anec build): step.c,
// the step's schedule as runtime calls with the memory plan's offsets, the
// tensor table and main() calling the driver (runtime/trainer.c); and
// kernels.c, each program's MIL text and weight files from the artifact
// directories dirs[0] (fp16) and dirs[1] (fp32). shares: artifact_write's.
bool gen_train_step(const Graph *g, const int *shares, uint64_t hash, FILE *out, Diag *d);
bool gen_train_kernels(const Graph *g, const int *shares, const char *const dirs[2], FILE *out,
                       Diag *d);

// compiler/dot.c — the lowered graph (after partition) as a Graphviz digraph
void plan_dot(const Graph *g, FILE *out);

// compiler/artifact.c — the artifact directory of `anec compile -o DIR`
typedef struct ArtifactExtras { // more files for DIR: model.ir, model.dot
  int n;
  const char *names[4];
  const char *texts[4];
} ArtifactExtras;
// Writes DIR (replacing an earlier artifact directory, nothing else): all of
// it or, after an error, none of it.
// Kernels whose text is the same (but for their own name) share the first
// one's files: shares[k] (if not NULL) is the kernel whose files k uses.
// More programs than the target's compile budget (ANE-P02) is an error.
bool artifact_write(const Graph *g, const ParamSet *ps, const char *dir, bool fp32,
                    const ArtifactExtras *x, int *shares, Diag *d);
// The programs a run compiles (kernels identical but for their names share
// one), with shares as above; -1 (reported) if a kernel cannot be emitted.
int artifact_compiles(const Graph *g, const ParamSet *ps, int *shares, Diag *d);
// Removes path and, if it is a directory (not a link to one), what it holds.
void rm_tree(const char *path);
// A JSON array of the dims (cJSON), for manifest.json and inspect --json.
struct cJSON *json_dims(int rank, const int64_t *dims);

// compiler/ireval.c — the logical graph evaluated directly in fp64: the
// numerical oracle of the tests and the host's CPU fallback ops.
// Evaluates node n from its inputs' values (logical layout, row-major; int
// values such as token ids as exact doubles) into out[numel]. Sources take
// their values from ps. False, with a message in err, for an index out of
// range or an op it cannot evaluate.
bool ireval_node(const Node *n, const ParamSet *ps, const double *const *ins, double *out,
                 char *err, size_t errlen);
// The whole graph in node order: vals[i] holds node i's values (free with
// ireval_free). Inputs by INPUT name. NULL after an error (message in err).
double **ireval_graph(const Graph *g, const ParamSet *ps, const char *const *input_names,
                      const double *const *inputs, int ninputs, char *err, size_t errlen);
void ireval_free(const Graph *g, double **vals);

// compiler/l2c_params.c — a llama2.c checkpoint as parameter values (kept
// pointing into ck): names tok_emb, rms_final, wcls, layers.N.wq...; every
// shape and hyper-parameter checked, errors at the model's declarations.
bool params_load_l2c(ParamSet *ps, const Graph *g, const L2cCheckpoint *ck, const char *path,
                     Diag *d);
// The llama2.c configuration of g (seq given; shared_cls: no param 'wcls'):
// true when g's header sets dim, hidden, layers, heads, kv_heads and vocab
// and every param has one of llama2.c's names (--init / --export apply).
bool graph_l2c_config(const Graph *g, int seq, L2cConfig *cfg);

// compiler/runner.c — a lowered forward graph on the reference backend
typedef struct Runner Runner;
// Emits and prepares every kernel (in a temporary artifact directory).
Runner *runner_open(Graph *g, const ParamSet *ps, ExecPrecision prec, Diag *d);
float *runner_input(Runner *r, const char *name);         // the host buffer to fill
bool runner_run(Runner *r, Diag *d);
const float *runner_output(Runner *r, const char *name);  // logical layout, fp32
void runner_close(Runner *r);

//
// The driver: compiler/main.c dispatches to one function per subcommand, each
// in its own file (cmd_check.c, cmd_compile.c). They return the exit code:
// 0 ok, 1 errors in the input, 2 usage errors.
//
enum { EXIT_USER = 1, EXIT_USAGE = 2 };
int cmd_check(int argc, char **argv);
int cmd_compile(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_mil_check(int argc, char **argv);
int cmd_mil_run(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_build(int argc, char **argv);
int cmd_train(int argc, char **argv);

// compiler/cli.c — options shared by the subcommands that compile a model
typedef struct CliFront {
  FrontOpts front;
  Define defs[64];
  char def_names[64][64];
  const char *cmd;     // the subcommand, for usage errors
  const char *model;   // the .anet path (the one positional argument)
} CliFront;
// Handles -D, --print-after, --print-after-all, --train (getopt_long codes below) into
// `c`, registering each define as a "<command line>" pseudo-file of `d`.
// Returns false after printing a usage error.
enum { OPT_PRINT_AFTER = 1000, OPT_PRINT_AFTER_ALL, OPT_EMIT, OPT_HELP, OPT_TRAIN, OPT_DW, OPT_FIRST_FREE };
bool cli_front_option(CliFront *c, Diag *d, int opt, const char *arg);
bool cli_positional(CliFront *c, int argc, char **argv, int optind_, const char *cmd);
void cli_usage_error(const char *cmd, const char *fmt, ...) ANEC_PRINTF(2, 3);
// The profile --target names; NULL after a usage error listing the known ones.
const TargetProfile *cli_target(const char *cmd, const char *name);
// Writes `len` bytes to `path` atomically (temp file in the same directory,
// then rename); "-" is stdout. Reports failures to stderr.
bool cli_write_file(const char *path, const char *data, size_t len);

#endif
