// cmd_check.c — `anec check M.anet`: parse, elaborate and verify a model;
// diagnostics only, then a one-line summary.
#include "driver.h"

#include <getopt.h>
#include <string.h>

static const char usage[] =
    "Usage: anec check [OPTIONS] MODEL.anet\n"
    "Parse and type-check a model; print a one-line summary.\n\n"
    "  -D NAME=VALUE           override a hyper-parameter of the model header\n"
    "      --print-after=PASS  print the IR after PASS (to stderr)\n"
    "      --print-after-all   print the IR after every pass\n"
    "  -h, --help              show this help and exit\n";

static const struct option long_opts[] = {
    {"help", no_argument, NULL, 'h'},
    {"print-after", required_argument, NULL, OPT_PRINT_AFTER},
    {"print-after-all", no_argument, NULL, OPT_PRINT_AFTER_ALL},
    {0, 0, 0, 0},
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
  CliFront c = {.cmd = "check"};
  int opt, rc = EXIT_USAGE;
  optind = 1;
  opterr = 0;
  while ((opt = getopt_long(argc, argv, ":hD:", long_opts, NULL)) != -1) {
    if (opt == 'h') {
      fputs(usage, stdout);
      rc = 0;
      goto out;
    }
    if (opt == '?' || opt == ':') {
      cli_usage_error("check", opt == ':' ? "option '%s' needs a value" : "unknown option '%s'",
                      argv[optind - 1]);
      goto out;
    }
    if (!cli_front_option(&c, &d, opt, optarg))
      goto out;
  }
  if (!cli_positional(&c, argc, argv, optind, "check"))
    goto out;
  Arena a = {0};
  Graph *g = front_compile(&a, &d, c.model, &c.front);
  if (g)
    print_summary(g, c.model);
  rc = g ? 0 : EXIT_USER;
  arena_free(&a);
out:
  diag_free(&d);
  return rc;
}
