// main.c — the `anec` binary: global options and the subcommand table. Each
// subcommand is one function in its own file (cmd_*.c).
#include "driver.h"

#include <string.h>


typedef struct Command {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *summary;
} Command;

static const Command commands[] = {
    {"check", cmd_check, "parse and type-check a model; print a one-line summary"},
    {"compile", cmd_compile, "compile a model: report, or --emit=ir for the graph"},
    {"inspect", cmd_inspect, "lower a model for a target: what runs where (ANE, CPU) and why"},
    {"generate", cmd_generate, "sample from a model with a llama2.c checkpoint on the reference backend"},
    {"build", cmd_build, "compile a model's training step into a standalone trainer"},
    {"train", cmd_train, "build a model's trainer (cached) and run it"},
    {"mil-check", cmd_mil_check, "check a MIL program against the ANE constraint catalog"},
    {"mil-run", cmd_mil_run, "run a MIL program on the reference backend (CPU, ANE numerics)"},
};
enum { NCOMMANDS = sizeof commands / sizeof *commands };

static void print_help(FILE *out) {
  fputs("Usage: anec COMMAND [OPTIONS] MODEL.anet\n"
        "anec compiles transformer models written in the .anet language into\n"
        "programs for Apple's Neural Engine, with CPU fallbacks.\n\nCommands:\n", out);
  for (int i = 0; i < NCOMMANDS; i++)
    fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
  fputs("\nOptions:\n"
        "  -h, --help     show this help and exit\n"
        "  -V, --version  show the version and exit\n\n"
        "Run 'anec COMMAND --help' for a command's options.\n"
        "Exit status: 0 success, 1 errors in the input, 2 usage errors.\n", out);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    print_help(stderr);
    return EXIT_USAGE;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
    print_help(stdout);
    return 0;
  }
  if (!strcmp(cmd, "-V") || !strcmp(cmd, "--version")) {
    printf("anec %s\n", ANEC_VERSION);
    return 0;
  }
  for (int i = 0; i < NCOMMANDS; i++)
    if (!strcmp(cmd, commands[i].name))
      return commands[i].run(argc - 1, argv + 1);
  const char *names[NCOMMANDS];
  for (int i = 0; i < NCOMMANDS; i++)
    names[i] = commands[i].name;
  const char *s = diag_suggest(cmd, names, NCOMMANDS);
  fprintf(stderr, "anec: error: unknown command '%s'%s%s%s\nTry 'anec --help'.\n", cmd,
          s ? "; did you mean '" : "", s ? s : "", s ? "'?" : "");
  return EXIT_USAGE;
}
