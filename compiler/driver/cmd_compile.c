// cmd_compile.c — `anec compile M.anet`: run the front end and the pass
// pipeline, then write what --emit asks for: the compile report (the default
// without -o), the IR, or the artifact directory of lowered kernels (the
// default with -o DIR).
#include "driver.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum { EMIT_REPORT = 1, EMIT_IR = 2, EMIT_MIL = 4, EMIT_DOT = 8 };

typedef struct CompileArgs {
  CliFront c;
  unsigned emit;          // EMIT_* bits; 0: the default for -o
  const char *out;
  const TargetProfile *target;
  uint64_t seed;
  bool dynamic_weights;   // --weights=inputs
} CompileArgs;

static bool parse_emit(const OptSpec *s, const Opt *o, void *dst, const char *arg) {
  (void)o;
  CompileArgs *ca = dst;
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
      opts_error(s->prog, "--emit: unknown kind '%.*s' (known: report, ir, mil, dot)", (int)n,
                 p);
      return false;
    }
    p += n + (p[n] == ',');
  }
  unsigned files = ca->emit & (EMIT_REPORT | EMIT_IR | EMIT_DOT);
  bool one_file = files == EMIT_REPORT || files == EMIT_IR || files == EMIT_DOT;
  if (!(ca->emit & EMIT_MIL) ? !one_file : (ca->emit & EMIT_REPORT) != 0) {
    opts_error(s->prog, "--emit=%s: one of report, ir and dot; or mil with ir and dot", arg);
    return false;
  }
  return ca->emit != 0 || (opts_error(s->prog, "--emit needs a kind"), false);
}

static bool parse_seed(const OptSpec *s, const Opt *o, void *dst, const char *arg) {
  (void)o;
  char *end;
  errno = 0;
  *(uint64_t *)dst = strtoull(arg, &end, 10);
  if (errno || end == arg || *end || *arg == '-')
    opts_error(s->prog, "--seed expects a non-negative integer, got '%s'", arg);
  return !(errno || end == arg || *end || *arg == '-');
}

static bool parse_weights(const OptSpec *s, const Opt *o, void *dst, const char *arg) {
  (void)o;
  if (strcmp(arg, "baked") && strcmp(arg, "inputs")) {
    opts_error(s->prog, "--weights: expected baked or inputs, got '%s'", arg);
    return false;
  }
  *(bool *)dst = !strcmp(arg, "inputs");
  return true;
}

#define AT(field) offsetof(CompileArgs, field)
static const Opt opts[] = {
    {NULL, 'o', OPT_ARG_REQUIRED, "PATH",
     "the artifact directory (with --emit=mil, the default\n"
     "with -o; -o - prints the kernels' MIL text), or the\n"
     "file for report/ir (default: stdout)",
     .store = OPT_STORE_STR, .off = AT(out)},
    {"emit", 0, OPT_ARG_REQUIRED, "KINDS",
     "comma-separated: report (default without -o), ir,\n"
     "dot (the lowered graph for Graphviz), mil (the\n"
     "artifact directory; ir and dot also go into it)",
     .store = OPT_STORE_FN, .fn = parse_emit},
    {CLI_USE(CLI_OPT_TARGET, AT(target))},
    {CLI_USE(CLI_OPT_NO_CHECK, AT(c))},
    {"seed", 0, OPT_ARG_REQUIRED, "N", "seed of the parameter initializers (default 0)",
     .store = OPT_STORE_FN, .off = AT(seed), .fn = parse_seed},
    {"weights", 0, OPT_ARG_REQUIRED, "HOW",
     "baked (default: constants in MILBlob files) or inputs\n"
     "(packed into each kernel's input after the activation:\n"
     "one compiled kernel serves every layer of its shape)",
     .store = OPT_STORE_FN, .off = AT(dynamic_weights), .fn = parse_weights},
    {CLI_USE(CLI_OPT_TRAIN, AT(c))},
    {CLI_USE(CLI_OPT_DW, AT(c))},
    {CLI_USE(CLI_OPT_DEFINE, AT(c))},
    {CLI_USE(CLI_OPT_PRINT_AFTER, AT(c))},
    {CLI_USE(CLI_OPT_PRINT_AFTER_ALL, AT(c))},
    {CLI_USE(CLI_OPT_HELP, 0)},
};

static const OptSpec spec = {
    .prog = "anec compile",
    .opts = opts,
    .nopts = sizeof opts / sizeof *opts,
    .help_col = CLI_HELP_COL,
    .usage = "Usage: anec compile [OPTIONS] MODEL.anet\n"
             "Compile a model: print its report, emit its IR, or write the artifact directory\n"
             "of ANE kernels (MIL text, MILBlob weights, manifest.json).\n\n",
};

// 0 to go on, -1 after --help, else the exit code to return.
static int parse_args(CompileArgs *ca, int argc, char **argv) {
  int first, rc = cli_parse(&spec, ca, argc, argv, &first);
  if (rc)
    return rc;
  if (!cli_positional(&ca->c, argc, argv, first, "compile"))
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

// -o -: every kernel's MIL text on stdout, each after a
// `==> kernels/NAME/model.mil <==` line (as head(1) separates files); the
// weights are not written. Every kernel is emitted and checked
// (artifact_check, as artifact_write does) before anything is printed.
static bool print_kernels(Arena *a, const Graph *g, const ParamSet *ps, Diag *d) {
  int n = g->plan->nkernels;
  KernelMil *kms = arena_alloc(a, sizeof *kms * (size_t)(n + 1));
  bool ok = true;
  for (int k = 0; k < n && ok; k++)
    ok = emit_kernel(a, g, k, ps, false, &kms[k], d);
  ok = ok && artifact_check(g, kms, NULL, d);
  for (int k = 0; k < n; k++) {
    if (ok)
      printf("%s==> kernels/%s/model.mil <==\n", k ? "\n" : "", g->plan->kernels[k].name);
    if (ok)
      fwrite(kms[k].text, 1, kms[k].len, stdout);
    free(kms[k].text);
  }
  return ok && fflush(stdout) == 0;
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
  CompileArgs ca = {.c = {.diag = &d}, .target = target_default()};
  int rc = parse_args(&ca, argc, argv);
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
