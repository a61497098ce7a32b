// cmd_build.c — `anec build M.anet -o EXE`: lower the training graph, write
// the generated sources (EXE.d/step.c, EXE.d/kernels.c) and compile them
// against the runtime into a standalone trainer (build_trainer, which anec
// train uses too).
#include "driver.h"

#include <errno.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct BuildArgs {
  CliFront c;
  const TargetProfile *target;
  const char *out;
} BuildArgs;

enum { MAX_ARGS = 256 }; // of the C compiler's command line

// Appends the space-separated words of `flags` (CMake's lists of compile
// or link flags, joined with spaces) to argv; false if they do not fit.
static bool add_words(Arena *a, const char **argv, int *argc, const char *flags) {
  for (const char *p = flags; *p;) {
    size_t n = strcspn(p, " ");
    if (n && *argc >= MAX_ARGS - 16)
      return false;
    if (n)
      argv[(*argc)++] = arena_strndup(a, p, n);
    p += n + (p[n] == ' ');
  }
  return true;
}

// A path as a compiler argument: "./-x" for "-x", not an option.
static const char *path_arg(Arena *a, const char *path) {
  return path[0] == '-' ? arena_printf(a, "./%s", path) : path;
}

// Runs argv[0] (found on PATH if it has no '/') with argv, no shell in
// between, and waits for it; false (reported) unless it exits with 0.
static bool run_tool(const char *const *argv, Diag *d) {
  extern char **environ;
  pid_t pid;
  fflush(NULL);
  int err = posix_spawnp(&pid, argv[0], NULL, NULL, (char *const *)argv, environ);
  if (err) {
    diag_error(d, loc_none(), "cannot run the C compiler '%s': %s", argv[0], strerror(err));
    return false;
  }
  int st;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) {
      diag_error(d, loc_none(), "waiting for the C compiler '%s': %s", argv[0],
                 strerror(errno));
      return false;
    }
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
    return true;
  if (WIFSIGNALED(st))
    diag_error(d, loc_none(), "compiling the trainer failed: '%s' was killed by signal %d (%s)",
               argv[0], WTERMSIG(st), strsignal(WTERMSIG(st)));
  else
    diag_error(d, loc_none(), "compiling the trainer failed: '%s' exited with status %d",
               argv[0], WIFEXITED(st) ? WEXITSTATUS(st) : st);
  return false;
}

// Compiles the generated sources in dir into `exe`: into a temp file of our
// own next to it (exe.tmp.XXXXXX), then renamed over exe, so that exe is
// the complete old or the complete new trainer at every moment.
static bool cc_trainer(Arena *a, const char *dir, const char *exe, Diag *d) {
  const char *argv[MAX_ARGS];
  int argc = 0;
  argv[argc++] = ANEC_CC;
  bool fit = add_words(a, argv, &argc, ANEC_RT_CFLAGS);
  argv[argc++] = "-std=c11";
  argv[argc++] = "-Wall";
  argv[argc++] = "-Wextra";
  argv[argc++] = "-D_POSIX_C_SOURCE=200809L";
  argv[argc++] = "-I" ANEC_RT_INCLUDE;
  argv[argc++] = path_arg(a, arena_printf(a, "%s/step.c", dir));
  argv[argc++] = path_arg(a, arena_printf(a, "%s/kernels.c", dir));
  argv[argc++] = ANEC_RT_LIB;
  if (!fit || !add_words(a, argv, &argc, ANEC_RT_LINK)) { // 16 left for ours
    diag_error(d, loc_none(), "too many compile and link flags for the trainer");
    return false;
  }
  char *tmp = arena_printf(a, "%s.tmp.XXXXXX", exe);
  int fd = mkstemp(tmp);
  if (fd < 0) {
    diag_error(d, loc_none(), "cannot create a file next to '%s': %s", exe, strerror(errno));
    return false;
  }
  mode_t mask = umask(0);
  umask(mask);
  fchmod(fd, 0777 & ~mask); // the mode the compiler gives a new file (mkstemp's: 0600)
  close(fd);                // the compiler writes it
  argv[argc++] = "-o";
  argv[argc++] = tmp;
  argv[argc] = NULL;
  bool ok = run_tool(argv, d);
  if (ok && rename(tmp, exe) != 0) {
    diag_error(d, loc_none(), "cannot write '%s': %s", exe, strerror(errno));
    ok = false;
  }
  if (!ok)
    unlink(tmp);
  return ok;
}

static bool write_text(const char *path, const char *text, size_t len, Diag *d) {
  if (!cli_write_file(path, text, len)) {
    diag_error(d, loc_none(), "cannot write '%s'", path);
    return false;
  }
  return true;
}

// step.c and kernels.c from the two artifact directories (fp16, fp32).
static bool write_sources(Graph *g, const int *shares, const char *const arts[2],
                          const char *dir, Diag *d) {
  char *kt = NULL, *st = NULL;
  size_t kn = 0, sn = 0;
  FILE *kf = open_memstream(&kt, &kn), *sf = open_memstream(&st, &sn);
  bool ok = gen_train_kernels(g, shares, arts, kf, d) && gen_train_step(g, shares, 0, sf, d);
  fclose(kf), fclose(sf);
  // the model's hash: its kernels and its schedule, as generated
  uint64_t hash = rt_fnv1a(rt_fnv1a(RT_FNV_OFFSET, kt, kn), st, sn);
  free(st), st = NULL;
  sf = open_memstream(&st, &sn);
  ok = ok && gen_train_step(g, shares, hash, sf, d);
  fclose(sf);
  ok = ok && write_text(arena_printf(g->arena, "%s/kernels.c", dir), kt, kn, d) &&
       write_text(arena_printf(g->arena, "%s/step.c", dir), st, sn, d);
  free(kt), free(st);
  return ok;
}

bool build_trainer(Arena *a, Diag *d, const CliFront *c, const TargetProfile *t,
                   const char *exe) {
  struct stat st;
  if (stat(exe, &st) == 0 && S_ISDIR(st.st_mode)) {
    diag_error(d, loc_none(), "'%s' is a directory: -o names the trainer to write (a file)", exe);
    return false;
  }
  FrontOpts fo = c->front;
  fo.pipe.train = true;
  Graph *g = front_compile(a, d, c->model, &fo);
  if (!g)
    return false;
  if (!lowering_run(g, d, t, &fo.pipe))
    return false;
  ParamSet ps;
  params_init(&ps, a);
  params_init_random(&ps, g, 0); // constants only: every param is an input
  const char *td = getenv("TMPDIR");
  char *tmp = arena_printf(a, "%s/anec-build.XXXXXX", td && *td ? td : "/tmp");
  if (!mkdtemp(tmp)) {
    diag_error(d, loc_none(), "cannot create a temporary directory: %s", strerror(errno));
    return false;
  }
  const char *arts[2] = {arena_printf(a, "%s/fp16", tmp), arena_printf(a, "%s/fp32", tmp)};
  int *shares = arena_alloc(a, sizeof(int) * (size_t)(g->plan->nkernels + 1));
  const char *dir = arena_printf(a, "%s.d", exe);
  bool ok = artifact_write(g, &ps, arts[0], false, NULL, shares, d) &&
            artifact_write(g, &ps, arts[1], true, NULL, NULL, d);
  if (ok && mkdir(dir, 0777) && errno != EEXIST) {
    diag_error(d, loc_none(), "cannot create '%s': %s", dir, strerror(errno));
    ok = false;
  }
  ok = ok && write_sources(g, shares, arts, dir, d) && cc_trainer(a, dir, exe, d);
  rm_tree(tmp);
  return ok;
}

#define AT(field) offsetof(BuildArgs, field)
static const Opt opts[] = {
    {NULL, 'o', OPT_ARG_REQUIRED, "EXE", "the trainer to write (required)",
     .store = OPT_STORE_STR, .off = AT(out)},
    {CLI_USE(CLI_OPT_TARGET, AT(target))},
    {CLI_USE(CLI_OPT_NO_CHECK, AT(c))},
    {CLI_USE(CLI_OPT_DW, AT(c))},
    {CLI_USE(CLI_OPT_DEFINE, AT(c))},
    {CLI_USE(CLI_OPT_PRINT_AFTER, AT(c))},
    {CLI_USE(CLI_OPT_PRINT_AFTER_ALL, AT(c))},
    {CLI_USE(CLI_OPT_HELP, 0)},
};

static const OptSpec spec = {
    .prog = "anec build",
    .opts = opts,
    .nopts = sizeof opts / sizeof *opts,
    .help_col = CLI_HELP_COL,
    .usage =
        "Usage: anec build [OPTIONS] MODEL.anet -o EXE\n"
        "Compile a model's training step (forward, loss, backward; every trained tensor a\n"
        "kernel input) into a standalone trainer: the generated sources go to EXE.d/\n"
        "(step.c: the schedule as runtime calls; kernels.c: the kernels' MIL and weights),\n"
        "compiled with the C compiler anec was built with. Run EXE --help for its flags.\n\n",
};

int cmd_build(int argc, char **argv) {
  Diag d;
  diag_init(&d, stderr);
  BuildArgs ba = {.c = {.diag = &d}, .target = target_default()};
  int first, rc = cli_parse(&spec, &ba, argc, argv, &first);
  if (!rc && !cli_positional(&ba.c, argc, argv, first, "build"))
    rc = EXIT_USAGE;
  if (!rc && !ba.out)
    rc = (cli_usage_error("build", "no output given: -o EXE"), EXIT_USAGE);
  Arena a = {0};
  if (!rc)
    rc = build_trainer(&a, &d, &ba.c, ba.target, ba.out) ? 0 : EXIT_USER;
  arena_free(&a);
  diag_free(&d);
  return rc < 0 ? 0 : rc;
}
