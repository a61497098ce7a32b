// cmd_mil_run.c — `anec mil-run F.mil --input NAME=X.npy --output NAME=Y.npy`:
// checks a MIL program against the target's constraint catalog, then runs
// one of its functions on the reference backend (libanert's executor) with
// inputs and outputs in NumPy .npy files.
#include "driver.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

// NAME=FILE, split in place.
typedef struct Binding {
  const char *name;
  const char *file;
} Binding;

typedef struct MilRunArgs {
  const char *path;
  const char *function;
  const TargetProfile *target;
  ExecPrecision prec;
  ExecOptions exec;
  bool no_check, verbose;
  Binding *inputs, *outputs;
  int ninputs, noutputs;
} MilRunArgs;

static bool add_binding(const OptSpec *s, Binding *list, int *n, const char *opt, char *arg) {
  char *eq = strchr(arg, '=');
  if (!eq || eq == arg || !eq[1]) {
    opts_error(s->prog, "%s expects NAME=FILE.npy, got '%s'", opt, arg);
    return false;
  }
  *eq = '\0';
  for (int i = 0; i < *n; i++)
    if (!strcmp(list[i].name, arg)) {
      opts_error(s->prog, "%s '%s' given twice", opt, arg);
      return false;
    }
  list[(*n)++] = (Binding){arg, eq + 1};
  return true;
}

static bool set_input(const OptSpec *s, const Opt *o, void *dst, const char *arg) {
  (void)o;
  MilRunArgs *a = dst;
  return add_binding(s, a->inputs, &a->ninputs, "--input", (char *)arg);
}

static bool set_output(const OptSpec *s, const Opt *o, void *dst, const char *arg) {
  (void)o;
  MilRunArgs *a = dst;
  return add_binding(s, a->outputs, &a->noutputs, "--output", (char *)arg);
}

static bool set_precision(const OptSpec *s, const Opt *o, void *dst, const char *arg) {
  (void)o;
  if (strcmp(arg, "fp16") && strcmp(arg, "fp32")) {
    opts_error(s->prog, "--precision must be fp16 or fp32, not '%s'", arg);
    return false;
  }
  *(ExecPrecision *)dst = arg[2] == '1' ? EXEC_FP16 : EXEC_FP32;
  return true;
}

#define AT(field) offsetof(MilRunArgs, field)
static const Opt opts[] = {
    {"input", 'i', OPT_ARG_REQUIRED, "NAME=FILE.npy",
     "bind the function's input NAME to a .npy file: float16,\n"
     "float32 or int32, C order, exactly the declared shape;\n"
     "float data is rounded to the precision; every input\n"
     "must be given",
     .store = OPT_STORE_FN, .fn = set_input},
    {"output", 'o', OPT_ARG_REQUIRED, "NAME=FILE.npy",
     "write the function's output NAME (repeatable); without\n"
     "any, a summary line per output is printed instead",
     .store = OPT_STORE_FN, .fn = set_output},
    {"precision", 0, OPT_ARG_REQUIRED, "fp16|fp32",
     "fp16 (the default): every tensor is stored as fp16 after\n"
     "each op, arithmetic in fp32, as on the ANE; fp32: stored\n"
     "as fp32, for exact comparisons",
     .store = OPT_STORE_FN, .off = AT(prec), .fn = set_precision},
    {CLI_USE(CLI_OPT_ANE_QUIRKS, AT(exec))},
    {CLI_USE(CLI_OPT_TARGET, AT(target)), .letter = 't',
     .help = "check the program against this target's constraint\n"
             "catalog before running (m1, m4, m5; default m4);\n"
             "errors stop the run, warnings are printed"},
    {"no-check", 0, OPT_ARG_NONE, NULL, "skip the catalog check",
     .store = OPT_STORE_FLAG, .off = AT(no_check)},
    {"function", 'f', OPT_ARG_REQUIRED, "NAME",
     "the function to run (default: main, or the only one)",
     .store = OPT_STORE_STR, .off = AT(function)},
    {"verbose", 'v', OPT_ARG_NONE, NULL,
     "print the steps the executor runs, after fusion\n"
     "(attention: matmul, softmax and matmul as one step,\n"
     "head by head), on stderr",
     .store = OPT_STORE_FLAG, .off = AT(verbose)},
    {CLI_USE(CLI_OPT_HELP, 0)},
};

static const OptSpec spec = {
    .prog = "anec mil-run",
    .opts = opts,
    .nopts = sizeof opts / sizeof *opts,
    .help_col = 30,
    .usage =
        "Usage: anec mil-run [OPTIONS] PROGRAM.mil\n"
        "Run a MIL program on the reference backend: the CPU, with ANE numerics.\n"
        "Weights (BLOBFILE @model_path/...) are read relative to the program's directory.\n\n",
    .footer =
        "\nOutputs are written as declared: fp16 as float16, fp32 as float32 (every floating\n"
        "output as float32 with --precision=fp32), integers and bools as int32.\n"
        "Exit status: 0 success, 1 errors in the program, its inputs or the catalog check,\n"
        "2 usage errors.\n",
};

// 0 to go on, -1 after --help, else the exit code.
static int parse_args(MilRunArgs *a, int argc, char **argv) {
  int first, rc = cli_parse(&spec, a, argc, argv, &first);
  if (rc)
    return rc;
  if (!cli_quirks_fit(spec.prog, &a->exec, a->prec))
    return EXIT_USAGE;
  if (first >= argc) {
    cli_usage_error("mil-run", "no MIL program given");
    return EXIT_USAGE;
  }
  if (first + 1 < argc) {
    cli_usage_error("mil-run", "unexpected argument '%s'", argv[first + 1]);
    return EXIT_USAGE;
  }
  a->path = argv[first];
  return 0;
}

static const MilFunc *pick_function(const MilProgram *p, const char *name) {
  const MilFunc *f = mil_func(p, name ? name : "main");
  if (!f && !name && p->nfuncs == 1)
    f = &p->funcs[0];
  if (f)
    return f;
  char names[512] = "";
  for (int i = 0, k = 0; i < p->nfuncs && k < (int)sizeof names; i++)
    k += snprintf(names + k, sizeof names - (size_t)k, "%s%s", i ? ", " : "", p->funcs[i].name);
  fprintf(stderr, "%s: error: no function '%s' (the program has: %s)%s\n", p->path,
          name ? name : "main", names, name ? "" : "; choose one with --function");
  return NULL;
}

// The catalog's errors and warnings; false if there are errors.
static bool check_catalog(const MilProgram *p, const TargetProfile *t) {
  MilCheck c = {0};
  milcheck_run(&c, p, t);
  for (int i = 0; i < c.n; i++) {
    const MilFinding *f = &c.findings[i];
    if (f->severity < SEV_WARNING)
      continue;
    char msg[1200];
    snprintf(msg, sizeof msg, "[%s] %s", catalog_rules[f->rule].id, f->msg);
    SrcSpan span = {f->loc.line, f->loc.col, f->loc.last_line, f->loc.last_col};
    srcmsg_print(stderr, p->path, p->text, p->len, span,
                 f->severity == SEV_ERROR ? "error" : "warning", msg);
  }
  int errors = c.count[SEV_ERROR];
  if (errors)
    fprintf(stderr, "%s: %d error%s for target %s: not run (--no-check runs it anyway)\n",
            p->path, errors, errors == 1 ? "" : "s", t->name);
  milcheck_free(&c);
  return errors == 0;
}

static bool bind_inputs(const MilRunArgs *a, const MilFunc *f, Exec *e, const MilProgram *p,
                        RtDiag *d) {
  for (int i = 0; i < a->ninputs; i++) {
    RtTensor t;
    if (!npy_read(a->inputs[i].file, &t, d))
      return false;
    bool ok = exec_set_input(e, a->inputs[i].name, &t, d);
    rt_tensor_free(&t);
    if (!ok)
      return false;
  }
  for (int i = 0; i < f->ninputs; i++) {
    const MilVar *v = &f->vars[f->inputs[i]];
    bool given = false;
    for (int k = 0; k < a->ninputs && !given; k++)
      given = !strcmp(a->inputs[k].name, v->name);
    if (!given) {
      mil_error_at(d, p, v->loc, "input '%s' is not given (--input %s=FILE.npy)", v->name,
                   v->name);
      return false;
    }
  }
  return true;
}

static bool check_outputs(const MilRunArgs *a, Exec *e, RtDiag *d) {
  for (int i = 0; i < a->noutputs; i++) {
    RtTensor view;
    if (!exec_get_output(e, a->outputs[i].name, &view)) {
      char names[512];
      exec_output_names(e, names, sizeof names);
      rt_error_file(d, a->path, "the function has no output '%s'; its outputs: %s",
                    a->outputs[i].name, names);
      return false;
    }
  }
  return true;
}

// An output as written: the declared dtype (floats as fp32 in fp32 precision).
static bool write_output(const MilVar *v, const RtTensor *view, const char *file, RtDiag *d) {
  RtTensor t = *view;
  bool widen = view->dtype == MIL_FP16 && v->type->dtype != MIL_FP16;
  if (widen) {
    if (!rt_tensor_alloc(&t, MIL_FP32, view->rank, view->dims))
      return false;
    fp16_to_f32_n(view->data, t.data, (size_t)t.count);
  }
  bool ok = npy_write(file, &t, d);
  if (widen)
    rt_tensor_free(&t);
  return ok;
}

static void print_summary(const char *name, const RtTensor *t) {
  double lo = INFINITY, hi = -INFINITY, sum = 0;
  for (int64_t i = 0; i < t->count; i++) {
    double x = t->dtype == MIL_FP16   ? fp16_to_f32(((const uint16_t *)t->data)[i])
               : t->dtype == MIL_FP32 ? ((const float *)t->data)[i]
                                      : ((const int32_t *)t->data)[i];
    lo = x < lo ? x : lo;
    hi = x > hi ? x : hi;
    sum += x;
  }
  char shape[200];
  printf("%s: %s %s min %.6g max %.6g mean %.6g\n", name, mil_dtype_name(t->dtype),
         rt_shape_str(shape, sizeof shape, t->rank, t->dims), lo, hi,
         t->count ? sum / (double)t->count : 0.0);
}

static bool write_outputs(const MilRunArgs *a, const MilFunc *f, Exec *e, RtDiag *d) {
  for (int i = 0; i < f->noutputs; i++) {
    const MilVar *v = &f->vars[f->outputs[i]];
    RtTensor view;
    exec_get_output(e, v->name, &view);
    if (!a->noutputs)
      print_summary(v->name, &view);
    for (int k = 0; k < a->noutputs; k++)
      if (!strcmp(a->outputs[k].name, v->name) && !write_output(v, &view, a->outputs[k].file, d))
        return false;
  }
  return true;
}

// --verbose: "F.mil: function main: 3 steps: conv, add, attention".
static void print_steps(const MilRunArgs *a, const MilFunc *f, const Exec *e) {
  size_t cap = (size_t)f->nops * 64 + 64;
  char *names = malloc(cap);
  if (!names)
    return;
  int n = exec_step_names(e, names, cap);
  fprintf(stderr, "%s: function %s: %d step%s: %s\n", a->path, f->name, n, n == 1 ? "" : "s",
          names);
  free(names);
}

static int run_program(const MilRunArgs *a) {
  RtDiag d = {.out = stderr};
  MilProgram *p = mil_read_file(a->path, &d);
  const MilFunc *f = p ? pick_function(p, a->function) : NULL;
  Exec *e = NULL;
  bool ok = f && (a->no_check || check_catalog(p, a->target));
  ok = ok && (e = exec_prepare_opts(p, f, a->prec, &a->exec, &d)) != NULL;
  if (ok && a->verbose)
    print_steps(a, f, e);
  ok = ok && check_outputs(a, e, &d) && bind_inputs(a, f, e, p, &d) && exec_run(e, &d);
  ok = ok && write_outputs(a, f, e, &d);
  exec_free(e);
  mil_free(p);
  return ok ? 0 : EXIT_USER;
}

int cmd_mil_run(int argc, char **argv) {
  MilRunArgs a = {.target = target_default(), .prec = EXEC_FP16};
  a.inputs = calloc((size_t)argc + 1, sizeof *a.inputs);
  a.outputs = calloc((size_t)argc + 1, sizeof *a.outputs);
  int rc = a.inputs && a.outputs ? parse_args(&a, argc, argv) : EXIT_USER;
  if (rc == 0)
    rc = run_program(&a);
  free(a.inputs);
  free(a.outputs);
  return rc < 0 ? 0 : rc;
}
