// dot.c — the lowered graph for Graphviz: one cluster per kernel (one fill
// colour each), CPU ops in red with the rule that put them there, inputs and
// outputs as ellipses; params and constants left out.
#include "ir.h"

static const char *const palette[] = {"#a6cee3", "#b2df8a", "#fdbf6f", "#cab2d6", "#ffff99",
                                      "#8dd3c7", "#bebada", "#80b1d3", "#fccde5", "#ccebc5"};
enum { NPALETTE = sizeof palette / sizeof *palette };

// A quoted DOT string: backslashes and quotes escaped, newlines as \n.
static void dot_str(FILE *out, const char *s) {
  fputc('"', out);
  for (; *s; s++)
    if (*s == '\n')
      fputs("\\n", out);
    else
      fprintf(out, *s == '"' || *s == '\\' ? "\\%c" : "%c", *s);
  fputc('"', out);
}

static bool dot_shown(const Node *n) {
  return n->dev != DEV_HOST || n->op == OP_INPUT;
}

static void dot_node(const Node *n, const char *indent, FILE *out) {
  Arena a = {0};
  const char *shape = shape_str(&a, &n->shape);
  fprintf(out, "%sn%d [label=", indent, n->id);
  if (n->op == OP_INPUT) {
    dot_str(out, arena_printf(&a, "%s\n%s%s", n->name, dtype_name(n->dtype), shape));
    fputs(", shape=ellipse];\n", out);
  } else if (n->dev == DEV_CPU) {
    const Rule *r = node_rule(n);
    dot_str(out, arena_printf(&a, "%%%d %s %s\nCPU [%s]", n->id, op_info[n->op].name, shape,
                              r ? r->id : "?"));
    fputs(", fillcolor=\"#e41a1c\", fontcolor=white];\n", out);
  } else {
    dot_str(out, arena_printf(&a, "%%%d %s %s", n->id, n->as_conv ? "conv" : op_info[n->op].name,
                              shape));
    fprintf(out, ", fillcolor=\"%s\"];\n", palette[n->kernel % NPALETTE]);
  }
  arena_free(&a);
}

static void dot_kernel(const Graph *g, int ki, FILE *out) {
  const Kernel *k = &g->plan->kernels[ki];
  fprintf(out, "  subgraph cluster_k%02d {\n    label=", ki);
  dot_str(out, k->name);
  fprintf(out, ";\n    style=rounded;\n");
  for (int i = 0; i < k->nnodes; i++)
    dot_node(k->nodes[i], "    ", out);
  fputs("  }\n", out);
}

static void dot_edges(const Graph *g, FILE *out) {
  for (int i = 0; i < g->nnodes; i++) {
    const Node *n = g->nodes[i];
    for (int j = 0; dot_shown(n) && j < n->nin; j++)
      if (dot_shown(n->in[j]))
        fprintf(out, "  n%d -> n%d;\n", n->in[j]->id, n->id);
  }
  for (int i = 0; i < g->noutputs; i++) {
    fprintf(out, "  out%d [label=", i);
    dot_str(out, g->output_names[i]);
    fprintf(out, ", shape=ellipse];\n  n%d -> out%d;\n", g->outputs[i]->id, i);
  }
}

void plan_dot(const Graph *g, FILE *out) {
  fputs("digraph ", out);
  dot_str(out, g->model);
  fputs(" {\n  node [shape=box, style=filled, fillcolor=white, fontsize=10];\n", out);
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i]->op == OP_INPUT || g->nodes[i]->dev == DEV_CPU)
      dot_node(g->nodes[i], "  ", out);
  for (int ki = 0; ki < g->plan->nkernels; ki++)
    dot_kernel(g, ki, out);
  dot_edges(g, out);
  fputs("}\n", out);
}

