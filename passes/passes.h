// passes.h — the passes over the graph IR, each `bool pass_x(Graph *, Diag *)`
// with a contract, listed in pipeline.c: the front pipeline (infer, cse,
// dce), autodiff with its gradient rules, and the lowering (legalize, place,
// partition) to kernels for a target.
#ifndef ANEC_PASSES_H
#define ANEC_PASSES_H

#include "ir.h"
#include "layout.h"

//
// passes/ — each pass is `bool pass_x(Graph *, Diag *)`; false means it
// reported an error. pipeline.c lists them in order.
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

// Reverse-mode rule of one op (grad.c; ops.h names them): given node n and
// the gradient gy of its output, adds the gradients of its inputs through ad_accum.
typedef struct Ad Ad;
typedef void (*GradFn)(Ad *c, Node *n, Node *gy);

//
// autodiff.c — reverse mode over the IR: appends the backward graph of
// g->loss and one output "grad.NAME" per param (its gradient, param-shaped).
// Reports ops without a gradient rule at their location.
//
bool autodiff_build(Graph *g, Diag *d);
// The pass of the training pipeline: autodiff_build, the loss as output
// "loss", g->train set.
bool pass_autodiff(Graph *g, Diag *d);
// For the rules (grad.c): new nodes located at `like`, inferred.
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

bool pass_legalize(Graph *g, Diag *d);
bool pass_place(Graph *g, Diag *d);
bool pass_partition(Graph *g, Diag *d);
extern const Pass lowering[];
extern const int nlowering;
// Runs the lowering pipeline for target t (verifier between passes). A
// training graph always takes its weights as inputs (P01); o->dw_cpu applies
// to training graphs only.
bool lowering_run(Graph *g, Diag *d, const TargetProfile *t, const PipelineOpts *o);

#endif
