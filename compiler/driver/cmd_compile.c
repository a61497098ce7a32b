// cmd_compile.c — `anec compile M.anet`: run the front end and the pass
// pipeline, then write what --emit asks for: the compile report (the default
// without -o), the IR, or the artifact directory of lowered kernels (the
// default with -o DIR).
#include "driver.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "Usage: anec compile [OPTIONS] MODEL.anet\n"
    "Compile a model: print its report, emit its IR, or write the artifact directory\n"
    "of ANE kernels (MIL text, MILBlob weights, manifest.json).\n\n"
    "  -o PATH                 the artifact directory (with --emit=mil, the default\n"
    "                          with -o; -o - prints the kernels' MIL text), or the\n"
    "                          file for report/ir (default: stdout)\n"
    "      --emit=KINDS        comma-separated: report (default without -o), ir,\n"
    "                          dot (the lowered graph for Graphviz), mil (the\n"
    "                          artifact directory; ir and dot also go into it)\n"
    "      --target=NAME       the ANE generation: m1, m4 (default), m5\n"
    "      --seed=N            seed of the parameter initializers (default 0)\n"
    "      --weights=HOW       baked (default: constants in MILBlob files) or inputs\n"
    "                          (packed into each kernel's input after the activation:\n"
    "                          one compiled kernel serves every layer of its shape)\n"
    "      --train             the training graph: forward, loss and backward (autodiff),\n"
    "                          one output grad.NAME per parameter (implies --weights=inputs\n"
    "                          when lowering)\n"
    "      --dw=ane|cpu        weight gradients (dW) of the training step on the ANE\n"
    "                          (default) or as BLAS on the CPU\n"
    "  -D NAME=VALUE           override a hyper-parameter of the model header\n"
    "      --print-after=PASS  print the IR after PASS (to stderr)\n"
    "      --print-after-all   print the IR after every pass\n"
    "  -h, --help              show this help and exit\n";

static const struct option long_opts[] = {
    {"help", no_argument, NULL, 'h'},
    {"emit", required_argument, NULL, OPT_EMIT},
    {"target", required_argument, NULL, OPT_FIRST_FREE},
    {"seed", required_argument, NULL, OPT_FIRST_FREE + 1},
    {"weights", required_argument, NULL, OPT_FIRST_FREE + 2},
    {"print-after", required_argument, NULL, OPT_PRINT_AFTER},
    {"print-after-all", no_argument, NULL, OPT_PRINT_AFTER_ALL},
    {"train", no_argument, NULL, OPT_TRAIN},
    {"dw", required_argument, NULL, OPT_DW},
    {0, 0, 0, 0},
};

enum { EMIT_REPORT = 1, EMIT_IR = 2, EMIT_MIL = 4, EMIT_DOT = 8 };

typedef struct CompileArgs {
  CliFront c;
  unsigned emit;          // EMIT_* bits; 0: the default for -o
  const char *out;
  const TargetProfile *target;
  uint64_t seed;
  bool dynamic_weights;   // --weights=inputs
} CompileArgs;

static bool parse_emit(CompileArgs *ca, const char *arg) {
  ca->emit = 0;
  for (const char *p = arg; *p;) {
    size_t n = strcspn(p, ",");
    if (n == 6 && !strncmp(p, "report", n))
      ca->emit |= EMIT_REPORT;
    else if (n == 2 && !strncmp(p, "ir", n))
      ca->emit |= EMIT_IR;
    else if (n == 3 && !strncmp(p, "mil", n))
      ca->emit |= EMIT_MIL;
    else if (n == 3 && !strncmp(p, "dot", n))
      ca->emit |= EMIT_DOT;
    else {
      cli_usage_error("compile", "--emit: unknown kind '%.*s' (known: report, ir, mil, dot)",
                      (int)n, p);
      return false;
    }
    p += n + (p[n] == ',');
  }
  unsigned files = ca->emit & (EMIT_REPORT | EMIT_IR | EMIT_DOT);
  bool one_file = files == EMIT_REPORT || files == EMIT_IR || files == EMIT_DOT;
  if (!(ca->emit & EMIT_MIL) ? !one_file : (ca->emit & EMIT_REPORT) != 0) {
    cli_usage_error("compile", "--emit=%s: one of report, ir and dot; or mil with ir and dot",
                    arg);
    return false;
  }
  return ca->emit != 0 || (cli_usage_error("compile", "--emit needs a kind"), false);
}

static bool parse_target(CompileArgs *ca, const char *arg) {
  return (ca->target = cli_target("compile", arg)) != NULL;
}

static bool parse_seed(CompileArgs *ca, const char *arg) {
  char *end;
  errno = 0;
  ca->seed = strtoull(arg, &end, 10);
  if (errno || end == arg || *end || *arg == '-')
    cli_usage_error("compile", "--seed expects a non-negative integer, got '%s'", arg);
  return !(errno || end == arg || *end || *arg == '-');
}

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
      if (!parse_emit(ca, optarg))
        return EXIT_USAGE;
      break;
    case OPT_FIRST_FREE:
      if (!parse_target(ca, optarg))
        return EXIT_USAGE;
      break;
    case OPT_FIRST_FREE + 1:
      if (!parse_seed(ca, optarg))
        return EXIT_USAGE;
      break;
    case OPT_FIRST_FREE + 2:
      if (strcmp(optarg, "baked") && strcmp(optarg, "inputs")) {
        cli_usage_error("compile", "--weights: expected baked or inputs, got '%s'", optarg);
        return EXIT_USAGE;
      }
      ca->dynamic_weights = !strcmp(optarg, "inputs");
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
  if (!cli_positional(&ca->c, argc, argv, optind, "compile"))
    return EXIT_USAGE;
  if (!ca->emit)
    ca->emit = ca->out ? EMIT_MIL : EMIT_REPORT;
  if ((ca->emit & EMIT_MIL) && !ca->out) {
    cli_usage_error("compile", "--emit=mil writes a directory: give it with -o DIR");
    return EXIT_USAGE;
  }
  return 0;
}

// The text of one non-directory output (dot: of the lowered graph).
static char *text_of(const Graph *g, unsigned emit, size_t *len) {
  char *buf = NULL;
  FILE *mem = open_memstream(&buf, len);
  if (emit & EMIT_IR)
    graph_dump(g, mem, NULL);
  else if (emit & EMIT_DOT)
    plan_dot(g, mem);
  else
    report_print(g, mem);
  fclose(mem);
  return buf;
}

// -o -: every kernel's MIL text on stdout, each after a `==> kernels/NAME.mil <==`
// line (as head(1) separates files); the weights are not written.
static bool print_kernels(Arena *a, const Graph *g, const ParamSet *ps, Diag *d) {
  for (int k = 0; k < g->plan->nkernels; k++) {
    KernelMil km;
    if (!emit_kernel(a, g, k, ps, false, &km, d))
      return false;
    printf("%s==> kernels/%s.mil <==\n", k ? "\n" : "", g->plan->kernels[k].name);
    fwrite(km.text, 1, km.len, stdout);
    free(km.text);
  }
  return fflush(stdout) == 0;
}

// Lowers g and writes the artifact directory (with model.ir if asked).
static bool write_artifacts(Arena *a, Graph *g, Diag *d, const CompileArgs *ca) {
  size_t len;
  char *ir = ca->emit & EMIT_IR ? text_of(g, EMIT_IR, &len) : NULL;
  ParamSet ps;
  params_init(&ps, a);
  g->dynamic_weights = ca->dynamic_weights; // and with --train (lowering_run, P01)
  bool ok = lowering_run(g, d, ca->target, &ca->c.front.pipe);
  if (ok)
    params_init_random(&ps, g, ca->seed);
  char *dot = ok && (ca->emit & EMIT_DOT) ? text_of(g, EMIT_DOT, &len) : NULL;
  ArtifactExtras x = {0};
  if (ir)
    x.names[x.n] = "model.ir", x.texts[x.n++] = ir;
  if (dot)
    x.names[x.n] = "model.dot", x.texts[x.n++] = dot;
  if (!strcmp(ca->out, "-"))
    ok = ok && print_kernels(a, g, &ps, d);
  else
    ok = ok && artifact_write(g, &ps, ca->out, false, &x, NULL, d);
  free(ir);
  free(dot);
  return ok;
}

int cmd_compile(int argc, char **argv) {
  Diag d;
  diag_init(&d, stderr);
  CompileArgs ca = {.c = {.cmd = "compile"}, .target = target_default()};
  int rc = parse_args(&ca, &d, argc, argv);
  if (rc) {
    diag_free(&d);
    return rc < 0 ? 0 : rc;
  }
  Arena a = {0};
  Graph *g = front_compile(&a, &d, ca.c.model, &ca.c.front);
  rc = EXIT_USER;
  if (g && (ca.emit & EMIT_MIL)) {
    rc = write_artifacts(&a, g, &d, &ca) ? 0 : EXIT_USER;
  } else if (g && (ca.emit & EMIT_DOT) && !lowering_run(g, &d, ca.target, &ca.c.front.pipe)) {
    rc = EXIT_USER;
  } else if (g) {
    size_t len;
    char *buf = text_of(g, ca.emit, &len);
    rc = cli_write_file(ca.out ? ca.out : "-", buf, len) ? 0 : EXIT_USER;
    free(buf);
  }
  arena_free(&a);
  diag_free(&d);
  return rc;
}
