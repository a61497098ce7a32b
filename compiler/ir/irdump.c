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

// One printer per attribute kind (AttrKind, ir.h).
static void dump_name(const Node *n, FILE *out) {
  fprintf(out, " %s", n->name ? n->name : "?");
}

static void dump_value(const Node *n, FILE *out) {
  fputc(' ', out);
  put_double(out, n->value);
}

static void dump_theta(const Node *n, FILE *out) {
  fputs(" theta=", out);
  put_double(out, n->value);
}

static void dump_exponent(const Node *n, FILE *out) {
  fputs(" exponent=", out);
  put_double(out, n->value);
}

static void dump_gelu(const Node *n, FILE *out) {
  fputs(n->gelu == GELU_TANH ? " mode=tanh" : " mode=exact", out);
}

static void dump_axis(const Node *n, FILE *out) {
  if (n->axis == AXIS_ALL)
    fputs(" axis=all", out);
  else
    fprintf(out, " axis=%d", n->axis);
}

static void dump_range(const Node *n, FILE *out) {
  fprintf(out, " begin=%lld end=%lld", (long long)n->begin, (long long)n->end);
}

static void dump_transpose(const Node *n, FILE *out) {
  fputs(n->transpose_a ? " transpose_a" : "", out);
  fputs(n->transpose_b ? " transpose_b" : "", out);
}

static void dump_target(const Node *n, FILE *out) {
  fputc(' ', out);
  put_shape(out, &n->target);
}

static void dump_perm(const Node *n, FILE *out) {
  fputs(" perm=[", out);
  for (int i = 0; i < n->shape.rank && i < MAX_RANK; i++)
    fprintf(out, "%s%d", i ? ", " : "", n->perm[i]);
  fputc(']', out);
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

// The printers in dump order.
static const struct {
  AttrKind attr;
  void (*dump)(const Node *n, FILE *out);
} attr_dumpers[] = {
  {ATTR_NAME, dump_name},         {ATTR_VALUE, dump_value},
  {ATTR_THETA, dump_theta},       {ATTR_EXPONENT, dump_exponent},
  {ATTR_GELU, dump_gelu},         {ATTR_AXIS, dump_axis},
  {ATTR_RANGE, dump_range},       {ATTR_TRANSPOSE, dump_transpose},
  {ATTR_TARGET, dump_target},     {ATTR_PERM, dump_perm},
  {ATTR_INIT, dump_init},
};

// The attributes of n's op among `which` (AttrKind bits).
static void dump_attrs(const Node *n, unsigned which, FILE *out) {
  unsigned attrs = (unsigned)n->op < OP_COUNT ? op_info[n->op].attrs & which : 0;
  for (size_t i = 0; i < sizeof attr_dumpers / sizeof *attr_dumpers; i++)
    if (attrs & attr_dumpers[i].attr)
      attr_dumpers[i].dump(n, out);
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
  dump_attrs(n, ~(unsigned)ATTR_INIT, out);
  fprintf(out, " : %s", dtype_name(n->dtype));
  put_shape(out, &n->shape);
  dump_attrs(n, ATTR_INIT, out); // the initializer follows the type
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
