// report.c — the human-readable compile report of a graph: hyper-parameters,
// interface, parameter count and size, forward FLOPs, and where they go by op.
#include "driver.h"

#include <string.h>

static void print_hypers(const Graph *g, FILE *out) {
  fputs("  hyper-parameters ", out);
  for (int i = 0; i < g->nhypers; i++) {
    const Hyper *h = &g->hypers[i];
    if (h->is_int)
      fprintf(out, " %s=%lld", h->name, (long long)h->ival);
    else
      fprintf(out, " %s=%g", h->name, h->fval);
  }
  fputc('\n', out);
}

static void print_interface(const Graph *g, FILE *out) {
  Arena a = {0};
  fputs("  inputs           ", out);
  for (int i = 0, k = 0; i < g->nnodes; i++) {
    const Node *n = g->nodes[i];
    if (n->op == OP_INPUT)
      fprintf(out, "%s %s %s%s", k++ ? "," : "", n->name, dtype_name(n->dtype),
              shape_str(&a, &n->shape));
  }
  fputs("\n  outputs          ", out);
  for (int i = 0; i < g->noutputs; i++)
    fprintf(out, "%s %s %s%s", i ? "," : "", g->output_names[i], dtype_name(g->outputs[i]->dtype),
            shape_str(&a, &g->outputs[i]->shape));
  if (g->loss)
    fprintf(out, "%s loss (%s)", g->noutputs ? "," : "", op_info[g->loss->op].name);
  fputc('\n', out);
  arena_free(&a);
}

static void print_totals(const Graph *g, FILE *out) {
  int tensors = 0;
  for (int i = 0; i < g->nnodes; i++)
    tensors += g->nodes[i]->op == OP_PARAM;
  int64_t params = graph_param_count(g);
  char p[32], bytes[32], n[32], flops[32];
  fprintf(out, "  parameters        %s in %d tensors (%s as f32)\n",
          fmt_count(p, sizeof p, params), tensors, fmt_si(bytes, sizeof bytes, (double)params * 4, "B"));
  fprintf(out, "  layers            %d\n", g->nblocks);
  fprintf(out, "  graph             %s nodes after %d passes\n", fmt_count(n, sizeof n, g->nnodes),
          npipeline);
  fprintf(out, "  forward           %s per sequence\n",
          fmt_si(flops, sizeof flops, (double)graph_flops(g), "FLOP"));
}

static void print_ops(const Graph *g, FILE *out) {
  int count[OP_COUNT] = {0};
  int64_t flops[OP_COUNT] = {0};
  for (int i = 0; i < g->nnodes; i++) {
    count[g->nodes[i]->op]++;
    flops[g->nodes[i]->op] += node_flops(g->nodes[i]);
  }
  double total = (double)graph_flops(g);
  fprintf(out, "ops                count   share of FLOPs\n");
  for (int op = 0; op < OP_COUNT; op++)
    if (count[op])
      fprintf(out, "  %-15s %6d   %6.2f%%\n", op_info[op].name, count[op],
              total > 0 ? 100.0 * (double)flops[op] / total : 0.0);
}

void report_print(const Graph *g, FILE *out) {
  fprintf(out, "model %s (%s)\n", g->model, g->file);
  print_hypers(g, out);
  print_interface(g, out);
  print_totals(g, out);
  print_ops(g, out);
}
