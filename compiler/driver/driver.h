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
  bool no_check; // --no-check: Graph.no_check (artifact_write's catalog check off)
} FrontOpts;
Graph *front_compile(Arena *a, Diag *d, const char *path, const FrontOpts *o);


// report.c — the compile report: model, parameters, FLOPs, ops
void report_print(const Graph *g, FILE *out);

// cli.c — the options the subcommands share, declared once in cli_opts:
// a subcommand's table includes the rows it takes (CLI_USE), in its order.
typedef struct CliFront {
  FrontOpts front;
  Define defs[64];
  char def_names[64][64];
  Diag *diag;          // where each -D is registered as a "<command line>" pseudo-file
  const char *model;   // the .anet path (the one positional argument)
} CliFront;
// The rows of cli_opts and what their destination is (CLI_USE's off).
enum {
  CLI_OPT_DEFINE,          // -D NAME=VALUE: CliFront
  CLI_OPT_PRINT_AFTER,     // --print-after=PASS: CliFront
  CLI_OPT_PRINT_AFTER_ALL, // --print-after-all: CliFront
  CLI_OPT_TRAIN,           // --train: CliFront
  CLI_OPT_DW,              // --dw=ane|cpu: CliFront
  CLI_OPT_TARGET,          // --target=NAME: const TargetProfile *
  CLI_OPT_NO_CHECK,        // --no-check: CliFront
  CLI_OPT_ANE_QUIRKS,      // --ane-quirks=on|off: ExecOptions
  CLI_OPT_HELP,            // -h, --help
  CLI_OPT_COUNT
};
extern const Opt cli_opts[CLI_OPT_COUNT];
// A row of a subcommand's table: cli_opts[ROW] stored at offset OFF of its
// destination (then .letter, .help may follow to override the shared ones).
#define CLI_USE(ROW, OFF) .store = OPT_STORE_INCLUDE, .use = &cli_opts[ROW], .off = (OFF)
enum { CLI_HELP_COL = 26 }; // of the options' help in the subcommands' --help
// opts_parse: 0 to go on, -1 after --help, EXIT_USAGE after a usage error.
int cli_parse(const OptSpec *s, void *dst, int argc, char **argv, int *first);
// --ane-quirks=on with --precision=fp32 is a usage error (fp32 has no ANE
// numerics to model); true when the pair is fine.
bool cli_quirks_fit(const char *prog, const ExecOptions *eo, ExecPrecision prec);
// The model: the one positional argument, argv[first].
bool cli_positional(CliFront *c, int argc, char **argv, int first, const char *cmd);
void cli_usage_error(const char *cmd, const char *fmt, ...) ANEC_PRINTF(2, 3);
// Writes `len` bytes to `path` atomically (temp file in the same directory,
// then rename); "-" is stdout. Reports failures to stderr.
bool cli_write_file(const char *path, const char *data, size_t len);

// cmd_build.c — lowers the model's training graph and builds the trainer
// `exe` (as anec build does; anec train builds into its cache with it).
bool build_trainer(Arena *a, Diag *d, const CliFront *c, const TargetProfile *t,
                   const char *exe);


// runner.c — a lowered forward graph on the reference backend
typedef struct Runner Runner;
// Emits and prepares every kernel (in a temporary artifact directory).
Runner *runner_open(Graph *g, const ParamSet *ps, ExecPrecision prec, Diag *d);
// The same with the executor's options (NULL: the defaults).
Runner *runner_open_opts(Graph *g, const ParamSet *ps, ExecPrecision prec,
                         const ExecOptions *eo, Diag *d);
float *runner_input(Runner *r, const char *name);         // the host buffer to fill
bool runner_run(Runner *r, Diag *d);
const float *runner_output(Runner *r, const char *name);  // logical layout, fp32
void runner_close(Runner *r);


#endif
