// cmd_check.c — `anec check M.anet`: parse, elaborate and verify a model;
// diagnostics only, then a one-line summary.
#include "driver.h"

#include <string.h>

static const Opt opts[] = {
    {CLI_USE(CLI_OPT_DEFINE, 0)},
    {CLI_USE(CLI_OPT_PRINT_AFTER, 0)},
    {CLI_USE(CLI_OPT_PRINT_AFTER_ALL, 0)},
    {CLI_USE(CLI_OPT_HELP, 0)},
};

static const OptSpec spec = {
    .prog = "anec check",
    .opts = opts,
    .nopts = sizeof opts / sizeof *opts,
    .help_col = CLI_HELP_COL,
    .usage = "Usage: anec check [OPTIONS] MODEL.anet\n"
             "Parse and type-check a model; print a one-line summary.\n\n",
};

static void print_summary(const Graph *g, const char *path) {
  int tensors = 0;
  for (int i = 0; i < g->nnodes; i++)
    tensors += g->nodes[i]->op == OP_PARAM;
  char params[32], nodes[32];
  fmt_count(params, sizeof params, graph_param_count(g));
  fmt_count(nodes, sizeof nodes, g->nnodes);
  printf("%s: model %s: %d layer%s, %s parameters in %d tensors, %s nodes\n", path, g->model,
         g->nblocks, g->nblocks == 1 ? "" : "s", params, tensors, nodes);
}

int cmd_check(int argc, char **argv) {
  Diag d;
  diag_init(&d, stderr);
  CliFront c = {.diag = &d};
  int first, rc = cli_parse(&spec, &c, argc, argv, &first);
  if (!rc && !cli_positional(&c, argc, argv, first, "check"))
    rc = EXIT_USAGE;
  Arena a = {0};
  Graph *g = rc ? NULL : front_compile(&a, &d, c.model, &c.front);
  if (g)
    print_summary(g, c.model);
  if (!rc)
    rc = g ? 0 : EXIT_USER;
  arena_free(&a);
  diag_free(&d);
  return rc < 0 ? 0 : rc;
}
