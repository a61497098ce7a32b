// irdump.c — the text form of a graph: a header of counts, one line per node
// (`%3 = add %1, %2 : f32[256, 288]  ; file:line:col scope`), then the outputs
// and the loss. Stable and diffable: no addresses, fixed number formats.
#include "ir.h"

#include <math.h>

// %.9g, with one spelling of NaN on every libc.
static void put_double(FILE *out, double v) {
  if (isnan(v))
    fputs("nan", out);
  else
    fprintf(out, "%.9g", v);
}

static void put_shape(FILE *out, const Shape *s) {
  fputc('[', out);
  for (int i = 0; i < s->rank && i < MAX_RANK; i++)
    fprintf(out, "%s%lld", i ? ", " : "", (long long)s->dims[i]);
  fputc(']', out);
}

static void dump_hypers(const Graph *g, FILE *out) {
  fputs("; hyper", out);
  for (int i = 0; i < g->nhypers; i++) {
    const Hyper *h = &g->hypers[i];
    fprintf(out, " %s=", h->name);
    if (h->is_int)
      fprintf(out, "%lld", (long long)h->ival);
    else
      put_double(out, h->fval);
  }
  fputc('\n', out);
}

static void dump_header(const Graph *g, FILE *out, const char *after_pass) {
  fprintf(out, "; anec IR: model %s", g->model ? g->model : "?");
  if (g->file)
    fprintf(out, " (%s)", g->file);
  if (after_pass)
    fprintf(out, ", after '%s'", after_pass);
  fputc('\n', out);
  if (g->nhypers > 0)
    dump_hypers(g, out);
  int nsources = 0;
  for (int i = 0; i < g->nnodes; i++)
    nsources += g->nodes[i]->op == OP_INPUT || g->nodes[i]->op == OP_PARAM;
  char params[32], flops[32];
  fprintf(out, "; %d nodes, %d inputs+params, %s parameters, %s forward\n", g->nnodes, nsources,
          fmt_count(params, sizeof params, graph_param_count(g)),
          fmt_si(flops, sizeof flops, (double)graph_flops(g), "FLOP"));
}

// The attributes an op uses, after its operands.
static void dump_attrs(const Node *n, FILE *out) {
  switch (n->op) {
  case OP_INPUT: case OP_PARAM:
    fprintf(out, " %s", n->name ? n->name : "?");
    break;
  case OP_CONST:
    fputc(' ', out);
    put_double(out, n->value);
    break;
  case OP_ROPE_COS: case OP_ROPE_SIN:
    fputs(" theta=", out);
    put_double(out, n->value);
    break;
  case OP_POW:
    fputs(" exponent=", out);
    put_double(out, n->value);
    break;
  case OP_GELU:
    fputs(n->gelu == GELU_TANH ? " mode=tanh" : " mode=exact", out);
    break;
  case OP_SUM: case OP_MEAN: case OP_MAX:
    if (n->axis == AXIS_ALL) {
      fputs(" axis=all", out);
      break;
    }
    // fallthrough
  case OP_SOFTMAX: case OP_CONCAT:
    fprintf(out, " axis=%d", n->axis);
    break;
  case OP_SLICE:
    fprintf(out, " axis=%d begin=%lld end=%lld", n->axis, (long long)n->begin,
            (long long)n->end);
    break;
  case OP_MATMUL:
    fputs(n->transpose_a ? " transpose_a" : "", out);
    fputs(n->transpose_b ? " transpose_b" : "", out);
    break;
  case OP_RESHAPE:
    fputc(' ', out);
    put_shape(out, &n->target);
    break;
  case OP_TRANSPOSE:
    fputs(" perm=[", out);
    for (int i = 0; i < n->shape.rank && i < MAX_RANK; i++)
      fprintf(out, "%s%d", i ? ", " : "", n->perm[i]);
    fputc(']', out);
    break;
  default:
    break;
  }
}

static void dump_init(const Node *n, FILE *out) {
  switch (n->init) {
  case INIT_ZEROS: fputs(" = zeros", out); break;
  case INIT_ONES: fputs(" = ones", out); break;
  case INIT_NORMAL:
    fputs(" = normal(", out);
    put_double(out, n->init_std);
    fputc(')', out);
    break;
  case INIT_NONE: break;
  }
}

// `  ; file:line:col scope`, whichever parts are known.
static void dump_where(const Graph *g, const Node *n, FILE *out) {
  bool has_site = n->site.first_line > 0;
  bool has_scope = n->scope && *n->scope;
  if (!has_site && !has_scope)
    return;
  fputs("  ;", out);
  if (has_site)
    fprintf(out, " %s:%d:%d", g->file ? g->file : "?", n->site.first_line,
            n->site.first_column);
  if (has_scope)
    fprintf(out, " %s", n->scope);
}

static void dump_node(const Graph *g, const Node *n, FILE *out) {
  fprintf(out, "%%%d = %s", n->id, (unsigned)n->op < OP_COUNT ? op_info[n->op].name : "?");
  for (int k = 0; k < n->nin; k++)
    fprintf(out, "%s %%%d", k ? "," : "", n->in[k] ? n->in[k]->id : -1);
  dump_attrs(n, out);
  fprintf(out, " : %s", dtype_name(n->dtype));
  put_shape(out, &n->shape);
  if (n->op == OP_PARAM)
    dump_init(n, out);
  dump_where(g, n, out);
  fputc('\n', out);
}

void graph_dump(const Graph *g, FILE *out, const char *after_pass) {
  dump_header(g, out, after_pass);
  for (int i = 0; i < g->nnodes; i++)
    dump_node(g, g->nodes[i], out);
  for (int k = 0; k < g->noutputs; k++)
    fprintf(out, "output %s = %%%d\n",
            g->output_names && g->output_names[k] ? g->output_names[k] : "?",
            g->outputs[k] ? g->outputs[k]->id : -1);
  if (g->loss)
    fprintf(out, "loss = %%%d\n", g->loss->id);
}
