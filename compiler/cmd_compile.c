// cmd_compile.c — `anec compile M.anet`: run the front end and the pass
// pipeline, then write what --emit asks for (default: the compile report).
#include "anec.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "Usage: anec compile [OPTIONS] MODEL.anet\n"
    "Compile a model and print its report, or emit an intermediate form.\n\n"
    "  -o FILE                 write the output to FILE instead of stdout\n"
    "      --emit=KIND         what to write: report (default) or ir (the graph IR)\n"
    "  -D NAME=VALUE           override a hyper-parameter of the model header\n"
    "      --print-after=PASS  print the IR after PASS (to stderr)\n"
    "      --print-after-all   print the IR after every pass\n"
    "  -h, --help              show this help and exit\n";

static const struct option long_opts[] = {
    {"help", no_argument, NULL, 'h'},
    {"emit", required_argument, NULL, OPT_EMIT},
    {"print-after", required_argument, NULL, OPT_PRINT_AFTER},
    {"print-after-all", no_argument, NULL, OPT_PRINT_AFTER_ALL},
    {0, 0, 0, 0},
};

typedef enum { EMIT_REPORT, EMIT_IR } Emit;

typedef struct CompileArgs {
  CliFront c;
  Emit emit;
  const char *out;
} CompileArgs;

// 0 to go on, else the exit code to return.
static int parse_args(CompileArgs *ca, Diag *d, int argc, char **argv) {
  int opt;
  optind = 1;
  opterr = 0;
  while ((opt = getopt_long(argc, argv, ":ho:D:", long_opts, NULL)) != -1) {
    switch (opt) {
    case 'h': fputs(usage, stdout); return -1;
    case 'o': ca->out = optarg; break;
    case OPT_EMIT:
      if (!strcmp(optarg, "ir"))
        ca->emit = EMIT_IR;
      else if (!strcmp(optarg, "report"))
        ca->emit = EMIT_REPORT;
      else {
        cli_usage_error("compile", "--emit: unknown kind '%s' (known: report, ir)", optarg);
        return EXIT_USAGE;
      }
      break;
    case '?':
    case ':':
      cli_usage_error("compile", opt == ':' ? "option '%s' needs a value" : "unknown option '%s'",
                      argv[optind - 1]);
      return EXIT_USAGE;
    default:
      if (!cli_front_option(&ca->c, d, opt, optarg))
        return EXIT_USAGE;
    }
  }
  return cli_positional(&ca->c, argc, argv, optind, "compile") ? 0 : EXIT_USAGE;
}

int cmd_compile(int argc, char **argv) {
  Diag d;
  diag_init(&d, stderr);
  CompileArgs ca = {.c = {.cmd = "compile"}, .emit = EMIT_REPORT, .out = "-"};
  int rc = parse_args(&ca, &d, argc, argv);
  if (rc) {
    diag_free(&d);
    return rc < 0 ? 0 : rc;
  }
  Arena a = {0};
  Graph *g = front_compile(&a, &d, ca.c.model, &ca.c.front);
  rc = EXIT_USER;
  if (g) {
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    if (ca.emit == EMIT_IR)
      graph_dump(g, mem, NULL);
    else
      report_print(g, mem);
    fclose(mem);
    rc = cli_write_file(ca.out, buf, len) ? 0 : EXIT_USER;
    free(buf);
  }
  arena_free(&a);
  diag_free(&d);
  return rc;
}
