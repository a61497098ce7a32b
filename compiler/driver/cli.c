// cli.c — command-line pieces the subcommands share: the options declared
// once (cli_opts: -D overrides, --print-after, --train, --dw, --target,
// --no-check, --help), the model path, usage errors, and atomic output files.
#include "driver.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void cli_usage_error(const char *cmd, const char *fmt, ...) {
  char prog[64];
  snprintf(prog, sizeof prog, "anec %s", cmd);
  va_list ap;
  va_start(ap, fmt);
  opts_verror(prog, fmt, ap);
  va_end(ap);
}

static bool ident_char(char ch, bool first) {
  return ch == '_' || ((ch | 32) >= 'a' && (ch | 32) <= 'z') || (!first && ch >= '0' && ch <= '9');
}

static bool valid_ident(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!ident_char(s[i], i == 0))
      return false;
  return n > 0;
}

// The earlier -D of the name arg[0..n), or -1.
static int find_define(const CliFront *c, const char *arg, size_t n) {
  for (int i = 0; i < c->front.ndefs; i++)
    if (strlen(c->def_names[i]) == n && !memcmp(c->def_names[i], arg, n))
      return i;
  return -1;
}

// The name of a "<command line>" pseudo-file's -D ("-D name=value"): cols 4..
static SrcLoc define_loc(const CliFront *c, int file) {
  const SrcFile *f = &c->diag->files[file];
  return (SrcLoc){.file = file, .first_line = 1, .first_column = 4, .last_line = 1,
                  .last_column = (int)f->len};
}

// -D name=value: the text is kept as a pseudo-file so errors can point into it.
// A name given again replaces its earlier value (the last one wins, with a
// warning naming both): the elaboration sees each name once.
static bool cli_define(const OptSpec *s, const Opt *o, void *dst, const char *arg) {
  (void)o;
  CliFront *c = dst;
  const char *eq = strchr(arg, '=');
  if (!eq || !valid_ident(arg, (size_t)(eq - arg)) || !eq[1])
    return opts_error(s->prog, "-D expects NAME=VALUE, got '%s'", arg), false;
  int i = find_define(c, arg, (size_t)(eq - arg));
  if (i < 0 && c->front.ndefs == (int)(sizeof c->defs / sizeof *c->defs))
    return opts_error(s->prog, "too many -D options"), false;
  char text[512];
  int len = snprintf(text, sizeof text, "-D %s", arg);
  if (len < 0 || (size_t)len >= sizeof text || eq - arg >= 64)
    return opts_error(s->prog, "-D option too long"), false;
  int file = diag_add_file(c->diag, "<command line>", text, (size_t)len);
  if (i >= 0) {
    int old = c->defs[i].file;
    diag_warning(c->diag, define_loc(c, file),
                 "'-D %s' overrides the earlier '%s' (the last one wins)", arg,
                 c->diag->files[old].text);
    diag_note(c->diag, define_loc(c, old), "the earlier value, ignored");
  } else {
    i = c->front.ndefs++;
  }
  Define *def = &c->defs[i];
  def->file = file;
  memcpy(c->def_names[i], arg, (size_t)(eq - arg));
  c->def_names[i][eq - arg] = '\0';
  def->name = c->def_names[i];
  def->value = c->diag->files[def->file].text + 3 + (eq - arg) + 1; // inside the pseudo-file
  c->front.defs = c->defs;
  return true;
}

static bool cli_print_after(const OptSpec *s, const Opt *o, void *dst, const char *arg) {
  (void)o;
  if (!pipeline_find(arg)) {
    char known[512] = "";
    for (int i = 0; i < npipeline; i++)
      snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", i ? ", " : "",
               pipeline[i].name);
    opts_error(s->prog, "--print-after: unknown pass '%s' (passes: %s)", arg, known);
    return false;
  }
  ((CliFront *)dst)->front.pipe.print_after = arg;
  return true;
}

static bool cli_dw(const OptSpec *s, const Opt *o, void *dst, const char *arg) {
  (void)o;
  if (strcmp(arg, "ane") && strcmp(arg, "cpu")) {
    opts_error(s->prog, "--dw: unknown device '%s' (known: ane, cpu)", arg);
    return false;
  }
  ((CliFront *)dst)->front.pipe.dw_cpu = !strcmp(arg, "cpu");
  return true;
}

// --target: a profile's name; a usage error lists the known ones.
static bool cli_target(const OptSpec *s, const Opt *o, void *dst, const char *arg) {
  (void)o;
  const TargetProfile *t = target_find(arg);
  if (!t) {
    char known[128];
    target_names(known, sizeof known);
    opts_error(s->prog, "--target: unknown target '%s' (known: %s)", arg, known);
    return false;
  }
  *(const TargetProfile **)dst = t;
  return true;
}

// --ane-quirks: on or off (ExecOptions.ane_quirks).
static bool cli_quirks(const OptSpec *s, const Opt *o, void *dst, const char *arg) {
  (void)o;
  bool on = !strcmp(arg, "on");
  if (!on && strcmp(arg, "off")) {
    opts_error(s->prog, "--ane-quirks must be on or off, not '%s'", arg);
    return false;
  }
  ((ExecOptions *)dst)->ane_quirks = on ? EXEC_QUIRKS_ON : EXEC_QUIRKS_OFF;
  return true;
}

bool cli_quirks_fit(const char *prog, const ExecOptions *eo, ExecPrecision prec) {
  if (eo->ane_quirks != EXEC_QUIRKS_ON || prec != EXEC_FP32)
    return true;
  opts_error(prog, "--ane-quirks=on models fp16 numerics; it does not go with --precision=fp32");
  return false;
}

#define FRONT(field) offsetof(CliFront, field)
const Opt cli_opts[CLI_OPT_COUNT] = {
    [CLI_OPT_DEFINE] = {NULL, 'D', OPT_ARG_REQUIRED, "NAME=VALUE",
                        "override a hyper-parameter of the model header",
                        .store = OPT_STORE_FN, .fn = cli_define},
    [CLI_OPT_PRINT_AFTER] = {"print-after", 0, OPT_ARG_REQUIRED, "PASS",
                             "print the IR after PASS (to stderr)",
                             .store = OPT_STORE_FN, .fn = cli_print_after},
    [CLI_OPT_PRINT_AFTER_ALL] = {"print-after-all", 0, OPT_ARG_NONE, NULL,
                                 "print the IR after every pass",
                                 .store = OPT_STORE_FLAG, .off = FRONT(front.pipe.print_after_all)},
    [CLI_OPT_TRAIN] = {"train", 0, OPT_ARG_NONE, NULL,
                       "the training graph: forward, loss and backward (autodiff),\n"
                       "one output grad.NAME per parameter (implies --weights=inputs\n"
                       "when lowering)",
                       .store = OPT_STORE_FLAG, .off = FRONT(front.pipe.train)},
    [CLI_OPT_DW] = {"dw", 0, OPT_ARG_REQUIRED, "ane|cpu",
                    "weight gradients (dW) of the training step on the ANE\n"
                    "(default) or as BLAS on the CPU",
                    .store = OPT_STORE_FN, .fn = cli_dw},
    [CLI_OPT_TARGET] = {"target", 0, OPT_ARG_REQUIRED, "NAME",
                        "the ANE generation: m1, m3, m4 (default), m5",
                        .store = OPT_STORE_FN, .fn = cli_target},
    [CLI_OPT_NO_CHECK] = {"no-check", 0, OPT_ARG_NONE, NULL,
                          "go on with kernels the target's catalog rejects\n"
                          "(by default they are an error; nothing is written)",
                          .store = OPT_STORE_FLAG, .off = FRONT(front.no_check)},
    [CLI_OPT_ANE_QUIRKS] = {"ane-quirks", 0, OPT_ARG_REQUIRED, "on|off",
                            "fp16: the ANE's reported numeric cliffs (matmul outputs\n"
                            "from 32,752 on become inf; reduce_sum adds in fp16);\n"
                            "default on, never with fp32",
                            .store = OPT_STORE_FN, .fn = cli_quirks},
    [CLI_OPT_HELP] = {"help", 'h', OPT_ARG_NONE, NULL, "show this help and exit",
                      .store = OPT_STORE_HELP},
};

int cli_parse(const OptSpec *s, void *dst, int argc, char **argv, int *first) {
  OptStatus st = opts_parse(s, dst, argc, argv, first);
  return st == OPT_STATUS_OK ? 0 : st == OPT_STATUS_HELP ? -1 : EXIT_USAGE;
}

bool cli_positional(CliFront *c, int argc, char **argv, int first, const char *cmd) {
  if (first >= argc) {
    cli_usage_error(cmd, "no model file given");
    return false;
  }
  if (argc - first > 1) {
    cli_usage_error(cmd, "unexpected argument '%s'", argv[first + 1]);
    return false;
  }
  c->model = argv[first];
  return true;
}

typedef struct Bytes {
  const char *data;
  size_t len;
} Bytes;

static bool fill_bytes(FILE *f, void *ctx) {
  const Bytes *b = ctx;
  return fwrite(b->data, 1, b->len, f) == b->len;
}

bool cli_write_file(const char *path, const char *data, size_t len) {
  if (!strcmp(path, "-"))
    return fwrite(data, 1, len, stdout) == len && fflush(stdout) == 0;
  RtDiag d = {.out = stderr};
  Bytes b = {data, len};
  return rt_write_atomic(path, fill_bytes, &b, &d);
}
