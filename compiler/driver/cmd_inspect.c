// cmd_inspect.c — `anec inspect M.anet`: compile a model, lower it for one
// target and explain the result: each kernel in schedule order with its I/O,
// sizes and the DSL lines its ops came from, each CPU op with the catalog rule
// that put it there, and the totals. --json gives the same facts as one JSON
// object, --emit=dot the lowered graph for Graphviz. --train: the training
// step instead, with dispatches per layer and compiles per run.
#include "driver.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

typedef enum { EMIT_REPORT, EMIT_DOT } Emit;

typedef struct InspectArgs {
  CliFront c;
  const TargetProfile *target;
  Emit emit;
  bool json;
  const char *out;
} InspectArgs;

// What the report works from: the lowered graph and the model's source.
typedef struct Insp {
  const Graph *g;
  const Plan *pl;
  const Diag *d;
  int model_file; // file id of the model in d->files, or -1
  int compiles;   // programs compiled per run (kernels identical but for names share one)
} Insp;

// The training step's dispatches, by layer and phase (before or after the loss).
enum { MAX_LAYERS = 512 };
typedef struct StepCounts {
  int dispatches, layers;
  int fwd[MAX_LAYERS], bwd[MAX_LAYERS]; // per repeat copy, in order of first appearance
  const char *path[MAX_LAYERS];
  int path_len[MAX_LAYERS];
  int outside;                          // kernels of no single layer
  int outside_kernel[MAX_LAYERS];       // which
} StepCounts;

// Counts over the placed nodes.
typedef struct Totals {
  int ane_ops, cpu_ops;
  int64_t ane_flops, cpu_flops;
} Totals;

//
// Arguments
//

static bool set_emit(const OptSpec *s, const Opt *o, void *dst, const char *kind) {
  (void)o;
  bool ok = !strcmp(kind, "report") || !strcmp(kind, "dot");
  if (!ok)
    opts_error(s->prog, "--emit: unknown kind '%s' (known: report, dot)", kind);
  else
    *(Emit *)dst = !strcmp(kind, "dot") ? EMIT_DOT : EMIT_REPORT;
  return ok;
}

#define AT(field) offsetof(InspectArgs, field)
static const Opt opts[] = {
    {CLI_USE(CLI_OPT_TARGET, AT(target)), .letter = 't',
     .help = "target profile: m1 (M1, M2), m3 (M3), m4 (M4; the default), m5 (M5)"},
    {CLI_USE(CLI_OPT_TRAIN, AT(c)),
     .help = "the training step (forward, loss, backward; weights as\n"
             "inputs): dispatches per layer, compiles per run"},
    {CLI_USE(CLI_OPT_DW, AT(c))},
    {"json", 0, OPT_ARG_NONE, NULL, "write the report as one JSON object",
     .store = OPT_STORE_FLAG, .off = AT(json)},
    {"emit", 0, OPT_ARG_REQUIRED, "KIND", "what to write: report (default) or dot (Graphviz)",
     .store = OPT_STORE_FN, .off = AT(emit), .fn = set_emit},
    {NULL, 'o', OPT_ARG_REQUIRED, "FILE", "write the output to FILE instead of stdout",
     .store = OPT_STORE_STR, .off = AT(out)},
    {CLI_USE(CLI_OPT_DEFINE, AT(c))},
    {CLI_USE(CLI_OPT_PRINT_AFTER, AT(c))},
    {CLI_USE(CLI_OPT_PRINT_AFTER_ALL, AT(c))},
    {CLI_USE(CLI_OPT_HELP, 0)},
};

static const OptSpec spec = {
    .prog = "anec inspect",
    .opts = opts,
    .nopts = sizeof opts / sizeof *opts,
    .help_col = CLI_HELP_COL,
    .usage = "Usage: anec inspect [OPTIONS] MODEL.anet\n"
             "Compile and lower a model for a target chip; report what runs where and why:\n"
             "the kernels in schedule order (I/O, FLOPs, weights, SRAM, the DSL lines of\n"
             "their ops), the CPU ops with the catalog rule that put them there, and totals.\n\n",
};

// 0 to go on, -1 after --help, else the exit code to return.
static int parse_args(InspectArgs *ia, int argc, char **argv) {
  int first, rc = cli_parse(&spec, ia, argc, argv, &first);
  if (rc)
    return rc;
  if (ia->json && ia->emit == EMIT_DOT) {
    cli_usage_error("inspect", "--json and --emit=dot exclude each other");
    return EXIT_USAGE;
  }
  return cli_positional(&ia->c, argc, argv, first, "inspect") ? 0 : EXIT_USAGE;
}

//
// Facts about nodes, kernels and source lines
//

static int model_file_id(const Diag *d, const Graph *g) {
  for (int i = d->nfiles - 1; i >= 0; i--)
    if (g->file && !strcmp(d->files[i].name, g->file))
      return i;
  return -1;
}

// The node's line in the model's own file, or -1 (prelude only).
static int node_line(const Insp *in, const Node *n) {
  return n->site.file >= 0 && n->site.file == in->model_file ? n->site.first_line : -1;
}

// Line `line` of the model, trimmed of blanks and a trailing // comment.
// Returns its length (0 if there is no such line) and sets *text.
static int line_text(const Insp *in, int line, const char **text) {
  *text = "";
  if (in->model_file < 0 || line < 1)
    return 0;
  const SrcFile *f = &in->d->files[in->model_file];
  const char *s = f->text, *end = f->text + f->len;
  for (int l = 1; l < line && s < end; s++)
    l += *s == '\n';
  const char *e = s;
  bool quoted = false;
  for (; e < end && *e != '\n' && (quoted || e + 1 >= end || e[0] != '/' || e[1] != '/'); e++)
    quoted ^= *e == '"';
  while (s < e && (*s == ' ' || *s == '\t'))
    s++;
  while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
    e--;
  *text = s;
  return (int)(e - s);
}

static const char *node_op_name(const Node *n) {
  return n->op == OP_MATMUL && n->as_conv ? "conv (linear)" : op_info[n->op].name;
}

static int list_index(Node *const *list, int n, const Node *v) {
  for (int i = 0; i < n; i++)
    if (list[i] == v)
      return i;
  return -1;
}

// The surface of kernel ki's input or output v, as the kernel declares it
// (packed params and padding included).
static char *io_shape_str(char *buf, size_t n, const Insp *in, int ki, const Node *v, bool input) {
  int64_t dims[4];
  kernel_io_shape(in->g, ki, v, input, dims);
  snprintf(buf, n, "[%lld, %lld, %lld, %lld]", (long long)dims[0], (long long)dims[1],
           (long long)dims[2], (long long)dims[3]);
  return buf;
}

// Where a kernel input comes from: "input x", "embed %4", "k00 out00".
static char *value_source(char *buf, size_t n, const Plan *pl, const Node *v) {
  if (v->op == OP_INPUT)
    snprintf(buf, n, "input %s", v->name ? v->name : "?");
  else if (v->dev == DEV_ANE && v->kernel >= 0)
    snprintf(buf, n, "k%02d out%02d", v->kernel,
             list_index(pl->kernels[v->kernel].outputs, pl->kernels[v->kernel].noutputs, v));
  else
    snprintf(buf, n, "%s %%%d", op_info[v->op].name, v->id);
  return buf;
}

// Where a value goes after step `from`: the later steps that read it and the
// graph outputs it is. Calls `fn` with one description each.
typedef void (*SinkFn)(const char *what, void *ctx);
static void value_sinks(const Insp *in, int from, const Node *v, SinkFn fn, void *ctx) {
  char buf[128];
  for (int s = from + 1; s < in->pl->nsteps; s++) {
    const PlanStep *st = &in->pl->steps[s];
    const Kernel *k = st->cpu ? NULL : &in->pl->kernels[st->kernel];
    if (st->cpu && list_index(st->cpu->in, st->cpu->nin, v) >= 0)
      snprintf(buf, sizeof buf, "%s %%%d", op_info[st->cpu->op].name, st->cpu->id);
    else if (k && list_index(k->inputs, k->ninputs, v) >= 0)
      snprintf(buf, sizeof buf, "k%02d in%02d", st->kernel, list_index(k->inputs, k->ninputs, v));
    else
      continue;
    fn(buf, ctx);
  }
  for (int i = 0; i < in->g->noutputs; i++)
    if (in->g->outputs[i] == v) {
      snprintf(buf, sizeof buf, "output %s", in->g->output_names[i]);
      fn(buf, ctx);
    }
}

// The repeat path of a node's scope ("layers.3" of "layers.3/block/attention");
// length 0 at the top level.
static int repeat_path(const Node *n, const char **path) {
  *path = n->scope ? n->scope : "";
  int len = (int)strcspn(*path, "/");
  return memchr(*path, '.', (size_t)len) ? len : 0;
}

static bool same_repeat(const Node *a, const Node *b) {
  const char *pa, *pb;
  int la = repeat_path(a, &pa), lb = repeat_path(b, &pb);
  return la == lb && !memcmp(pa, pb, (size_t)la);
}

// The end of the run of kernel nodes from i that share one model line (and
// one repeat copy); prelude-only nodes stay with the line before them.
static int group_end(const Insp *in, const Kernel *k, int i) {
  int line = node_line(in, k->nodes[i]);
  int j = i + 1;
  while (j < k->nnodes && same_repeat(k->nodes[i], k->nodes[j]) &&
         (node_line(in, k->nodes[j]) == line || node_line(in, k->nodes[j]) < 0))
    j++;
  return j;
}

static Totals totals_of(const Graph *g) {
  Totals t = {0};
  for (int i = 0; i < g->nnodes; i++) {
    const Node *n = g->nodes[i];
    if (n->dev == DEV_ANE)
      t.ane_ops++, t.ane_flops += node_flops(n);
    else if (n->dev == DEV_CPU)
      t.cpu_ops++, t.cpu_flops += node_flops(n);
  }
  return t;
}

// part / whole in percent, rounded down (in double: the products overflow).
static int pct(double part, double whole) {
  return whole > 0 ? (int)(100.0 * part / whole) : 0;
}

static int step_of(const Plan *pl, int kernel, const Node *cpu) {
  for (int s = 0; s < pl->nsteps; s++)
    if (pl->steps[s].cpu == cpu && (cpu || pl->steps[s].kernel == kernel))
      return s;
  return -1;
}

static bool sram_over(const Insp *in, const Kernel *k) {
  return k->sram_bytes > in->g->target->sram_bytes;
}

static int dispatches(const Plan *pl) {
  int n = 0;
  for (int s = 0; s < pl->nsteps; s++)
    n += pl->steps[s].cpu == NULL;
  return n;
}

// The step of the loss (cross-entropy on the CPU), or nsteps.
static int loss_step(const Plan *pl) {
  int s = 0;
  while (s < pl->nsteps && !(pl->steps[s].cpu && pl->steps[s].cpu->op == OP_CROSS_ENTROPY))
    s++;
  return s;
}

// The repeat copy all of a kernel's nodes belong to: its path length, 0 if none.
static int kernel_layer(const Kernel *k, const char **path) {
  int len = repeat_path(k->nodes[0], path);
  for (int i = 1; i < k->nnodes && len; i++)
    len = same_repeat(k->nodes[0], k->nodes[i]) ? len : 0;
  return len;
}

static int layer_index(StepCounts *c, const char *path, int len) {
  for (int i = 0; i < c->layers; i++)
    if (c->path_len[i] == len && !memcmp(c->path[i], path, (size_t)len))
      return i;
  if (c->layers == MAX_LAYERS)
    return -1;
  c->path[c->layers] = path, c->path_len[c->layers] = len;
  return c->layers++;
}

static void step_counts(const Plan *pl, StepCounts *c) {
  memset(c, 0, sizeof *c);
  int loss = loss_step(pl);
  for (int s = 0; s < pl->nsteps; s++) {
    if (pl->steps[s].cpu)
      continue;
    const char *path;
    int len = kernel_layer(&pl->kernels[pl->steps[s].kernel], &path);
    int i = len ? layer_index(c, path, len) : -1;
    c->dispatches++;
    if (i < 0 && c->outside < MAX_LAYERS)
      c->outside_kernel[c->outside++] = pl->steps[s].kernel;
    else if (s < loss)
      c->fwd[i]++;
    else
      c->bwd[i]++;
  }
}

// Every layer has the same forward and backward counts as the first.
static bool uniform_layers(const StepCounts *c) {
  for (int i = 1; i < c->layers; i++)
    if (c->fwd[i] != c->fwd[0] || c->bwd[i] != c->bwd[0])
      return false;
  return true;
}

//
// Text report
//

static void text_header(const Insp *in, const Totals *t, FILE *out) {
  const Graph *g = in->g;
  char p[32], f[32], s[32];
  fprintf(out, "model %s (%s)\n", g->model, g->file);
  fprintf(out, "  target          %s (%s), SRAM %s\n", g->target->name, g->target->chips,
          fmt_si(s, sizeof s, (double)g->target->sram_bytes, "B"));
  fprintf(out, "  parameters      %s\n", fmt_count(p, sizeof p, graph_param_count(g)));
  fprintf(out, "  %-15s %s per sequence (ANE and CPU ops)\n",
          g->train ? "training step" : "forward",
          fmt_si(f, sizeof f, (double)t->ane_flops + (double)t->cpu_flops, "FLOP"));
}

typedef struct TextSinks {
  FILE *out;
  int n;
} TextSinks;

static void sink_text(const char *what, void *ctx) {
  TextSinks *ts = ctx;
  fprintf(ts->out, "%s%s", ts->n++ ? ", " : "-> ", what);
}

// "-> k01 in00, output logits" and a newline.
static void text_sinks(const Insp *in, int step, const Node *v, FILE *out) {
  TextSinks ts = {out, 0};
  value_sinks(in, step, v, sink_text, &ts);
  fputs(ts.n ? "\n" : "(unused)\n", out);
}

static void text_io(const Insp *in, int ki, FILE *out) {
  const Kernel *k = &in->pl->kernels[ki];
  char shape[64], from[128];
  for (int i = 0; i < k->ninputs; i++)
    fprintf(out, "  in%02d   %-20s <- %s\n", i, io_shape_str(shape, sizeof shape, in, ki, k->inputs[i], true),
            value_source(from, sizeof from, in->pl, k->inputs[i]));
  for (int i = 0; i < k->noutputs; i++) {
    fprintf(out, "  out%02d  %-20s ", i, io_shape_str(shape, sizeof shape, in, ki, k->outputs[i], false));
    text_sinks(in, step_of(in->pl, ki, NULL), k->outputs[i], out);
  }
}

// The op names of nodes [from, to), comma-separated, wrapped at 100 columns
// with continuation lines starting at column `col`.
static void text_ops(const Kernel *k, int from, int to, int col, FILE *out) {
  int x = col;
  for (int i = from; i < to; i++) {
    const char *name = node_op_name(k->nodes[i]);
    int w = (int)strlen(name);
    if (i > from && x + 2 + w > 100)
      fprintf(out, ",\n%*s", col, ""), x = col;
    else if (i > from)
      fputs(", ", out), x += 2;
    fputs(name, out);
    x += w;
  }
  fputc('\n', out);
}

enum { TEXT_COLUMN = 40 }; // widest source text before the op lists

static int text_width(const Insp *in, const Kernel *k) {
  int width = 9; // "(prelude)"
  const char *t;
  for (int i = 0; i < k->nnodes; i = group_end(in, k, i)) {
    int n = line_text(in, node_line(in, k->nodes[i]), &t);
    width = n > width ? n : width;
  }
  return width < TEXT_COLUMN ? width : TEXT_COLUMN;
}

// "  layers.3:" before the lines of each repeat copy, in a kernel that spans several.
static void text_repeat(const Kernel *k, int i, FILE *out) {
  bool mixed = false;
  for (int j = 1; j < k->nnodes && !mixed; j++)
    mixed = !same_repeat(k->nodes[0], k->nodes[j]);
  if (!mixed || (i > 0 && same_repeat(k->nodes[i - 1], k->nodes[i])))
    return;
  const char *path;
  int len = repeat_path(k->nodes[i], &path);
  fprintf(out, "  %.*s%s\n", len, path, len ? ":" : "(top level):");
}

static void text_lines(const Insp *in, const Kernel *k, FILE *out) {
  int width = text_width(in, k), col = 2 + 4 + 2 + width + 2;
  for (int i = 0, j; i < k->nnodes; i = j) {
    j = group_end(in, k, i);
    text_repeat(k, i, out);
    int line = node_line(in, k->nodes[i]);
    const char *t;
    int n = line_text(in, line, &t);
    if (line < 0)
      fprintf(out, "  %4s  %-*s  ", "?", width, "(prelude)");
    else if (n <= width)
      fprintf(out, "  %4d  %-*.*s  ", line, width, n, t);
    else // a long line: its ops start on the next one
      fprintf(out, "  %4d  %.*s\n%*s", line, n, t, col, "");
    text_ops(k, i, j, col, out);
  }
}

static char *si(char buf[32], int64_t v, const char *unit) {
  return fmt_si(buf, 32, (double)v, unit);
}

static void text_kernel(const Insp *in, int ki, FILE *out) {
  const Kernel *k = &in->pl->kernels[ki];
  char f[32], io[32], w[32], s[32], lim[32];
  fprintf(out, "\nkernel %s: %d op%s, %s, I/O %s, weights %s, SRAM ~%s\n", k->name, k->nnodes,
          k->nnodes == 1 ? "" : "s", si(f, k->flops, "FLOP"), si(io, k->io_bytes, "B"),
          si(w, k->weight_bytes, "B"), si(s, k->sram_bytes, "B"));
  if (sram_over(in, k))
    fprintf(out, "  warning: [%s] SRAM estimate over the target's %s: %s\n",
            catalog_rules[RULE_P03].id, si(lim, in->g->target->sram_bytes, "B"),
            catalog_rules[RULE_P03].text);
  text_io(in, ki, out);
  text_lines(in, k, out);
}

// "  samples/m.anet:37  x = embed(tok_emb, tokens)"
static void text_site(const Insp *in, const Node *n, FILE *out) {
  const char *t;
  int line = node_line(in, n);
  int len = line_text(in, line, &t);
  if (line > 0)
    fprintf(out, "  %s:%d  %.*s\n", in->d->files[in->model_file].name, line, len, t);
  else
    fputs("  (prelude)\n", out);
}

static void text_cpu(const Insp *in, const Node *n, FILE *out) {
  Arena a = {0};
  char f[32];
  const Rule *r = node_rule(n);
  fprintf(out, "\ncpu %s %%%d: %s%s, %s\n", op_info[n->op].name, n->id, dtype_name(n->dtype),
          shape_str(&a, &n->shape), fmt_si(f, sizeof f, (double)node_flops(n), "FLOP"));
  arena_free(&a);
  text_site(in, n, out);
  fprintf(out, "  [%s] %s\n  ", r ? r->id : "?", r ? r->text : "(no rule recorded)");
  text_sinks(in, step_of(in->pl, -1, n), n, out);
}

// The one-line summary: "ANE: 412/480 ops (86%), 97% of FLOPs, 14 kernels, 3 CPU ops".
static void text_summary_line(const Insp *in, const Totals *t, FILE *out) {
  int total = t->ane_ops + t->cpu_ops, nk = in->pl->nkernels;
  double flops = (double)t->ane_flops + (double)t->cpu_flops;
  fprintf(out, "ANE: %d/%d ops (%d%%), %d%% of FLOPs, ", t->ane_ops, total,
          pct(t->ane_ops, total), pct((double)t->ane_flops, flops));
  fprintf(out, "%d kernel%s, %d CPU op%s\n", nk, nk == 1 ? "" : "s", t->cpu_ops,
          t->cpu_ops == 1 ? "" : "s");
}

// "  per layer   1 forward + 1 backward (12 layers)", or one line per layer.
static void text_layers(const Plan *pl, const StepCounts *c, FILE *out) {
  if (c->layers && uniform_layers(c))
    fprintf(out, "    per layer     %d forward + %d backward (%d layer%s)\n", c->fwd[0], c->bwd[0],
            c->layers, c->layers == 1 ? "" : "s");
  for (int i = 0; c->layers && !uniform_layers(c) && i < c->layers; i++)
    fprintf(out, "    %-13.*s %d forward + %d backward\n", c->path_len[i], c->path[i], c->fwd[i],
            c->bwd[i]);
  fprintf(out, "    outside       %d", c->outside);
  for (int i = 0; i < c->outside; i++)
    fprintf(out, "%s%s", i ? ", " : " (", pl->kernels[c->outside_kernel[i]].name);
  fputs(c->outside ? ")\n" : "\n", out);
}

static void text_summary(const Insp *in, const Totals *t, FILE *out) {
  const Plan *pl = in->pl;
  const TargetProfile *tp = in->g->target;
  char af[32], tf[32], arena[32];
  StepCounts c;
  step_counts(pl, &c);
  fprintf(out, "\nsummary\n  dispatches      %d per %s\n", c.dispatches,
          in->g->train ? "training step (one sequence)" : "forward");
  if (in->g->train)
    text_layers(pl, &c, out);
  fprintf(out, "  compiles        %d per run (%d kernel%s; budget %d per process)\n", in->compiles,
          pl->nkernels, pl->nkernels == 1 ? "" : "s", tp->compile_budget);
  if (in->compiles > tp->compile_budget)
    fprintf(out, "  warning: [%s] %s\n", catalog_rules[RULE_P02].id, catalog_rules[RULE_P02].text);
  fprintf(out, "  ANE share       %d of %d ops, %s of %s (%d%%)\n", t->ane_ops,
          t->ane_ops + t->cpu_ops, fmt_si(af, sizeof af, (double)t->ane_flops, "FLOP"),
          fmt_si(tf, sizeof tf, (double)t->ane_flops + (double)t->cpu_flops, "FLOP"),
          pct((double)t->ane_flops, (double)t->ane_flops + (double)t->cpu_flops));
  fprintf(out, "  host arena      %s in %d buffers\n",
          fmt_si(arena, sizeof arena, (double)pl->arena_bytes, "B"), pl->nbufs);
  text_summary_line(in, t, out);
}

static void text_report(const Insp *in, FILE *out) {
  Totals t = totals_of(in->g);
  text_header(in, &t, out);
  for (int s = 0; s < in->pl->nsteps; s++) {
    const PlanStep *st = &in->pl->steps[s];
    if (st->cpu)
      text_cpu(in, st->cpu, out);
    else
      text_kernel(in, st->kernel, out);
  }
  text_summary(in, &t, out);
}

//
// JSON (cJSON builds the document)
//

static void sink_json(const char *what, void *ctx) {
  cJSON_AddItemToArray(ctx, cJSON_CreateString(what));
}

static void json_add_line_text(const Insp *in, cJSON *o, int line) {
  const char *t;
  int len = line_text(in, line, &t);
  char *text = strndup(t, (size_t)len);
  cJSON_AddStringToObject(o, "text", text ? text : "");
  free(text);
}

static cJSON *json_io(const Insp *in, int ki, const Node *v, int i, bool input) {
  cJSON *o = cJSON_CreateObject();
  char name[16], from[128];
  int64_t dims[4];
  snprintf(name, sizeof name, "%s%02d", input ? "in" : "out", i);
  kernel_io_shape(in->g, ki, v, input, dims);
  cJSON_AddStringToObject(o, "name", name);
  cJSON_AddItemToObject(o, "shape", json_dims(4, dims));
  if (input)
    cJSON_AddStringToObject(o, "from", value_source(from, sizeof from, in->pl, v));
  else
    value_sinks(in, step_of(in->pl, ki, NULL), v, sink_json, cJSON_AddArrayToObject(o, "to"));
  return o;
}

static cJSON *json_line(const Insp *in, const Kernel *k, int from, int to) {
  cJSON *o = cJSON_CreateObject();
  int line = node_line(in, k->nodes[from]);
  const char *path;
  int len = repeat_path(k->nodes[from], &path);
  char *scope = strndup(path, (size_t)len);
  cJSON_AddNumberToObject(o, "line", line);
  json_add_line_text(in, o, line);
  cJSON_AddStringToObject(o, "repeat", scope ? scope : "");
  free(scope);
  cJSON *ops = cJSON_AddArrayToObject(o, "ops");
  for (int i = from; i < to; i++)
    cJSON_AddItemToArray(ops, cJSON_CreateString(node_op_name(k->nodes[i])));
  return o;
}

static cJSON *json_kernel(const Insp *in, int ki) {
  const Kernel *k = &in->pl->kernels[ki];
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "name", k->name);
  cJSON_AddNumberToObject(o, "ops", k->nnodes);
  cJSON_AddNumberToObject(o, "flops", (double)k->flops);
  cJSON_AddNumberToObject(o, "io_bytes", (double)k->io_bytes);
  cJSON_AddNumberToObject(o, "weight_bytes", (double)k->weight_bytes);
  cJSON_AddNumberToObject(o, "sram_bytes", (double)k->sram_bytes);
  cJSON_AddBoolToObject(o, "sram_over", sram_over(in, k));
  cJSON *ins = cJSON_AddArrayToObject(o, "inputs");
  for (int i = 0; i < k->ninputs; i++)
    cJSON_AddItemToArray(ins, json_io(in, ki, k->inputs[i], i, true));
  cJSON *outs = cJSON_AddArrayToObject(o, "outputs");
  for (int i = 0; i < k->noutputs; i++)
    cJSON_AddItemToArray(outs, json_io(in, ki, k->outputs[i], i, false));
  cJSON *lines = cJSON_AddArrayToObject(o, "lines");
  for (int i = 0, j; i < k->nnodes; i = j) {
    j = group_end(in, k, i);
    cJSON_AddItemToArray(lines, json_line(in, k, i, j));
  }
  return o;
}

static cJSON *json_cpu(const Insp *in, const Node *n) {
  cJSON *o = cJSON_CreateObject();
  const Rule *r = node_rule(n);
  int line = node_line(in, n);
  cJSON_AddNumberToObject(o, "id", n->id);
  cJSON_AddStringToObject(o, "op", op_info[n->op].name);
  cJSON_AddItemToObject(o, "shape", json_dims(n->shape.rank, n->shape.dims));
  cJSON_AddNumberToObject(o, "line", line);
  json_add_line_text(in, o, line);
  cJSON_AddStringToObject(o, "rule", r ? r->id : "?");
  cJSON_AddStringToObject(o, "reason", r ? r->text : "");
  value_sinks(in, step_of(in->pl, -1, n), n, sink_json, cJSON_AddArrayToObject(o, "to"));
  return o;
}

// Dispatches per layer: {"layers.0": {"forward": 1, "backward": 1}, ...}.
static cJSON *json_train(const Insp *in) {
  StepCounts c;
  step_counts(in->pl, &c);
  cJSON *o = cJSON_CreateObject(), *layers = cJSON_AddObjectToObject(o, "per_layer");
  for (int i = 0; i < c.layers; i++) {
    char name[128];
    snprintf(name, sizeof name, "%.*s", c.path_len[i], c.path[i]);
    cJSON *l = cJSON_AddObjectToObject(layers, name);
    cJSON_AddNumberToObject(l, "forward", c.fwd[i]);
    cJSON_AddNumberToObject(l, "backward", c.bwd[i]);
  }
  cJSON *outside = cJSON_AddArrayToObject(o, "outside_layers");
  for (int i = 0; i < c.outside; i++)
    cJSON_AddItemToArray(outside, cJSON_CreateString(in->pl->kernels[c.outside_kernel[i]].name));
  return o;
}

static cJSON *json_summary(const Insp *in, const Totals *t) {
  cJSON *o = cJSON_CreateObject();
  int total = t->ane_ops + t->cpu_ops;
  cJSON_AddNumberToObject(o, "ane_ops", t->ane_ops);
  cJSON_AddNumberToObject(o, "total_ops", total);
  cJSON_AddNumberToObject(o, "ane_ops_pct", pct(t->ane_ops, total));
  cJSON_AddNumberToObject(o, "ane_flops_pct", pct((double)t->ane_flops,
                                                  (double)t->ane_flops + (double)t->cpu_flops));
  cJSON_AddNumberToObject(o, "kernels", in->pl->nkernels);
  cJSON_AddNumberToObject(o, "cpu_ops", t->cpu_ops);
  cJSON_AddNumberToObject(o, "dispatches", dispatches(in->pl));
  cJSON_AddNumberToObject(o, "compiles", in->compiles);
  if (in->g->train)
    cJSON_AddItemToObject(o, "train", json_train(in));
  cJSON_AddNumberToObject(o, "arena_bytes", (double)in->pl->arena_bytes);
  return o;
}

static cJSON *json_target(const TargetProfile *tp) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "name", tp->name);
  cJSON_AddStringToObject(o, "chips", tp->chips);
  cJSON_AddNumberToObject(o, "sram_bytes", (double)tp->sram_bytes);
  cJSON_AddNumberToObject(o, "compile_budget", tp->compile_budget);
  return o;
}

static void json_steps(const Insp *in, cJSON *doc) {
  cJSON *kernels = cJSON_AddArrayToObject(doc, "kernels");
  cJSON *cpus = cJSON_AddArrayToObject(doc, "cpu_ops");
  cJSON *sched = cJSON_AddArrayToObject(doc, "schedule");
  char name[128];
  for (int s = 0; s < in->pl->nsteps; s++) {
    const PlanStep *st = &in->pl->steps[s];
    if (st->cpu) {
      cJSON_AddItemToArray(cpus, json_cpu(in, st->cpu));
      snprintf(name, sizeof name, "%s %%%d", op_info[st->cpu->op].name, st->cpu->id);
    } else {
      cJSON_AddItemToArray(kernels, json_kernel(in, st->kernel));
      snprintf(name, sizeof name, "%s", in->pl->kernels[st->kernel].name);
    }
    cJSON_AddItemToArray(sched, cJSON_CreateString(name));
  }
}

// The report as one JSON object; NULL if cJSON ran out of memory.
static char *json_report(const Insp *in) {
  Totals t = totals_of(in->g);
  cJSON *doc = cJSON_CreateObject();
  cJSON_AddStringToObject(doc, "model", in->g->model);
  cJSON_AddStringToObject(doc, "file", in->g->file);
  cJSON_AddItemToObject(doc, "target", json_target(in->g->target));
  cJSON_AddNumberToObject(doc, "params", (double)graph_param_count(in->g));
  cJSON_AddNumberToObject(doc, "flops", (double)t.ane_flops + (double)t.cpu_flops);
  json_steps(in, doc);
  cJSON_AddItemToObject(doc, "summary", json_summary(in, &t));
  char *s = cJSON_Print(doc);
  cJSON_Delete(doc);
  return s;
}

//
// The command
//

static bool write_output(const InspectArgs *ia, const Insp *in) {
  char *buf = NULL;
  size_t len = 0;
  if (ia->json) {
    char *doc = json_report(in);
    buf = doc ? malloc(strlen(doc) + 2) : NULL;
    if (buf)
      len = (size_t)sprintf(buf, "%s\n", doc);
    cJSON_free(doc);
  } else {
    FILE *mem = open_memstream(&buf, &len);
    if (mem) {
      if (ia->emit == EMIT_DOT)
        plan_dot(in->g, mem);
      else
        text_report(in, mem);
      fclose(mem);
    }
  }
  if (!buf)
    fputs("anec inspect: error: out of memory\n", stderr);
  bool ok = buf && cli_write_file(ia->out, buf, len);
  free(buf);
  return ok;
}

// Programs compiled per run. Training kernels take their weights as inputs,
// so layers share programs: emitted to compare them. Forward kernels bake
// their weights, so each is its own program.
static int run_compiles(Graph *g, Diag *d) {
  if (!g->train)
    return g->plan->nkernels;
  ParamSet ps;
  params_init(&ps, g->arena);
  params_init_random(&ps, g, 0); // constants only: every param is an input
  int *shares = arena_alloc(g->arena, sizeof(int) * (size_t)(g->plan->nkernels + 1));
  return artifact_compiles(g, &ps, shares, d);
}

int cmd_inspect(int argc, char **argv) {
  Diag d;
  diag_init(&d, stderr);
  InspectArgs ia = {.c = {.diag = &d}, .target = target_default(), .out = "-"};
  int rc = parse_args(&ia, argc, argv);
  if (rc) {
    diag_free(&d);
    return rc < 0 ? 0 : rc;
  }
  Arena a = {0};
  Graph *g = front_compile(&a, &d, ia.c.model, &ia.c.front);
  PipelineOpts pipe = ia.c.front.pipe;
  pipe.dump = pipe.dump ? pipe.dump : stderr;
  rc = EXIT_USER;
  if (g && lowering_run(g, &d, ia.target, &pipe)) {
    Insp in = {g, g->plan, &d, model_file_id(&d, g), run_compiles(g, &d)};
    rc = in.compiles >= 0 && write_output(&ia, &in) ? 0 : EXIT_USER;
  }
  arena_free(&a);
  diag_free(&d);
  return rc;
}
