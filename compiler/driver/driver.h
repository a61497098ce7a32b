// driver.h — the command line: main dispatches to one cmd_* per subcommand
// (cmd_NAME.c), the options they share (cli.c), the front half of every
// compile (front.c), and the runner of a lowered forward graph (runner.c).
#ifndef ANEC_DRIVER_H
#define ANEC_DRIVER_H

#include "codegen.h"
#include "dsl.h"
#include "eval.h"
#include "passes.h"
#include "exec.h"

//
// The driver: main.c dispatches to one function per subcommand, each
// in its own file (cmd_check.c, cmd_compile.c). They return the exit code:
// 0 ok, 1 errors in the input, 2 usage errors.
//
enum { EXIT_USER = 1, EXIT_USAGE = 2 };
int cmd_check(int argc, char **argv);
int cmd_compile(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_mil_check(int argc, char **argv);
int cmd_mil_run(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_build(int argc, char **argv);
int cmd_train(int argc, char **argv);

// front.c — load, parse, lower and run the pipeline: the shared
// front half of every subcommand. Returns NULL after reporting errors.
typedef struct FrontOpts {
  const Define *defs;
  int ndefs;
  PipelineOpts pipe;
} FrontOpts;
Graph *front_compile(Arena *a, Diag *d, const char *path, const FrontOpts *o);


// report.c — the compile report: model, parameters, FLOPs, ops
void report_print(const Graph *g, FILE *out);

// cli.c — options shared by the subcommands that compile a model
typedef struct CliFront {
  FrontOpts front;
  Define defs[64];
  char def_names[64][64];
  const char *cmd;     // the subcommand, for usage errors
  const char *model;   // the .anet path (the one positional argument)
} CliFront;
// Handles -D, --print-after, --print-after-all, --train (getopt_long codes below) into
// `c`, registering each define as a "<command line>" pseudo-file of `d`.
// Returns false after printing a usage error.
enum { OPT_PRINT_AFTER = 1000, OPT_PRINT_AFTER_ALL, OPT_EMIT, OPT_HELP, OPT_TRAIN, OPT_DW, OPT_FIRST_FREE };
bool cli_front_option(CliFront *c, Diag *d, int opt, const char *arg);
bool cli_positional(CliFront *c, int argc, char **argv, int optind_, const char *cmd);
void cli_usage_error(const char *cmd, const char *fmt, ...) ANEC_PRINTF(2, 3);
// The profile --target names; NULL after a usage error listing the known ones.
const TargetProfile *cli_target(const char *cmd, const char *name);
// Writes `len` bytes to `path` atomically (temp file in the same directory,
// then rename); "-" is stdout. Reports failures to stderr.
bool cli_write_file(const char *path, const char *data, size_t len);


// runner.c — a lowered forward graph on the reference backend
typedef struct Runner Runner;
// Emits and prepares every kernel (in a temporary artifact directory).
Runner *runner_open(Graph *g, const ParamSet *ps, ExecPrecision prec, Diag *d);
float *runner_input(Runner *r, const char *name);         // the host buffer to fill
bool runner_run(Runner *r, Diag *d);
const float *runner_output(Runner *r, const char *name);  // logical layout, fp32
void runner_close(Runner *r);


#endif
