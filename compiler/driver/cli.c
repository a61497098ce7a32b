// cli.c — command-line pieces shared by the subcommands that compile a
// model: -D overrides, --print-after, the model path, usage errors, and
// atomic output files.
#include "driver.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void cli_usage_error(const char *cmd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "anec %s: error: ", cmd);
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\nTry 'anec %s --help'.\n", cmd);
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

// -D name=value: the text is kept as a pseudo-file so errors can point into it.
static bool add_define(CliFront *c, Diag *d, const char *arg) {
  const char *eq = strchr(arg, '=');
  if (!eq || !valid_ident(arg, (size_t)(eq - arg)) || !eq[1]) {
    cli_usage_error(c->cmd, "-D expects NAME=VALUE, got '%s'", arg);
    return false;
  }
  if (c->front.ndefs == (int)(sizeof c->defs / sizeof *c->defs)) {
    cli_usage_error(c->cmd, "too many -D options");
    return false;
  }
  char text[512];
  int len = snprintf(text, sizeof text, "-D %s", arg);
  if (len < 0 || (size_t)len >= sizeof text || eq - arg >= 64) {
    cli_usage_error(c->cmd, "-D option too long");
    return false;
  }
  int i = c->front.ndefs++;
  Define *def = &c->defs[i];
  def->file = diag_add_file(d, "<command line>", text, (size_t)len);
  memcpy(c->def_names[i], arg, (size_t)(eq - arg));
  c->def_names[i][eq - arg] = '\0';
  def->name = c->def_names[i];
  def->value = d->files[def->file].text + 3 + (eq - arg) + 1; // inside the pseudo-file
  c->front.defs = c->defs;
  return true;
}

bool cli_front_option(CliFront *c, Diag *d, int opt, const char *arg) {
  switch (opt) {
  case 'D': return add_define(c, d, arg);
  case OPT_PRINT_AFTER:
    if (!pipeline_find(arg)) {
      char known[512] = "";
      for (int i = 0; i < npipeline; i++)
        snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", i ? ", " : "",
                 pipeline[i].name);
      cli_usage_error(c->cmd, "--print-after: unknown pass '%s' (passes: %s)", arg, known);
      return false;
    }
    c->front.pipe.print_after = arg;
    return true;
  case OPT_PRINT_AFTER_ALL: c->front.pipe.print_after_all = true; return true;
  case OPT_TRAIN: c->front.pipe.train = true; return true;
  case OPT_DW:
    if (strcmp(arg, "ane") && strcmp(arg, "cpu")) {
      cli_usage_error(c->cmd, "--dw: unknown device '%s' (known: ane, cpu)", arg);
      return false;
    }
    c->front.pipe.dw_cpu = !strcmp(arg, "cpu");
    return true;
  }
  return false;
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

const TargetProfile *cli_target(const char *cmd, const char *name) {
  const TargetProfile *t = target_find(name);
  if (!t) {
    char known[128];
    target_names(known, sizeof known);
    cli_usage_error(cmd, "--target: unknown target '%s' (known: %s)", name, known);
  }
  return t;
}
