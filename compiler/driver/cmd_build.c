// cmd_build.c — `anec build M.anet -o EXE`: lower the training graph, write
// the generated sources (EXE.d/step.c, EXE.d/kernels.c) and compile them
// against the runtime into a standalone trainer; `anec train M.anet ...`:
// the same trainer, built once per model content into a cache, then run
// with the remaining flags.
#include "driver.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char build_usage[] =
    "Usage: anec build [OPTIONS] MODEL.anet -o EXE\n"
    "Compile a model's training step (forward, loss, backward; every trained tensor a\n"
    "kernel input) into a standalone trainer: the generated sources go to EXE.d/\n"
    "(step.c: the schedule as runtime calls; kernels.c: the kernels' MIL and weights),\n"
    "compiled with the C compiler anec was built with. Run EXE --help for its flags.\n\n"
    "  -o EXE                  the trainer to write (required)\n"
    "      --target=NAME       the ANE generation: m1, m4 (default), m5\n"
    "      --dw=ane|cpu        weight gradients (dW) of the training step on the ANE\n"
    "                          (default) or as BLAS on the CPU\n"
    "  -D NAME=VALUE           override a hyper-parameter of the model header\n"
    "      --print-after=PASS  print the IR after PASS (to stderr)\n"
    "      --print-after-all   print the IR after every pass\n"
    "  -h, --help              show this help and exit\n";

static const char train_usage[] =
    "Usage: anec train MODEL.anet [-D NAME=VALUE]... [--target=NAME] [--dw=ane|cpu]\n"
    "                  [TRAINER FLAGS]\n"
    "Build the model's trainer (as anec build does; cached by the model's content and\n"
    "this anec, in $XDG_CACHE_HOME/anec or ~/.cache/anec) and run it with the trainer\n"
    "flags, e.g.\n"
    "  anec train samples/tiny_shakespeare.anet --data samples/data/tinyshakespeare.txt \\\n"
    "      --steps 200 --lr 1e-3\n"
    "`anec train MODEL.anet --help` lists the trainer's flags.\n";

typedef struct BuildArgs {
  CliFront c;
  const TargetProfile *target;
  const char *out;
} BuildArgs;

// Compiles the generated sources into `exe` (through a temp file).
static bool cc_trainer(const char *dir, const char *exe, Diag *d) {
  char *cmd = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&cmd, &len);
  fprintf(f, "'%s' %s -std=c11 -Wall -Wextra -D_POSIX_C_SOURCE=200809L -I'%s' '%s/step.c' "
          "'%s/kernels.c' '%s' %s -o '%s.tmp' && mv -f '%s.tmp' '%s'", ANEC_CC, ANEC_RT_CFLAGS,
          ANEC_RT_INCLUDE, dir, dir, ANEC_RT_LIB, ANEC_RT_LINK, exe, exe, exe);
  fclose(f);
  int rc = system(cmd);
  if (rc != 0)
    diag_error(d, loc_none(), "compiling the trainer failed (%s %d): %s",
               rc > 0 && WIFEXITED(rc) ? "exit status" : "wait status",
               rc > 0 && WIFEXITED(rc) ? WEXITSTATUS(rc) : rc, cmd);
  free(cmd);
  return rc == 0;
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

// Lowers the model's training graph and builds the trainer `exe`.
static bool build_trainer(Arena *a, Diag *d, const CliFront *c, const TargetProfile *t,
                          const char *exe) {
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
  char tmp[300];
  const char *td = getenv("TMPDIR");
  snprintf(tmp, sizeof tmp, "%.200s/anec-build.XXXXXX", td && *td ? td : "/tmp");
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
  ok = ok && write_sources(g, shares, arts, dir, d) && cc_trainer(dir, exe, d);
  rm_tree(tmp);
  return ok;
}

int cmd_build(int argc, char **argv) {
  static const struct option opts[] = {
      {"help", no_argument, NULL, 'h'},
      {"target", required_argument, NULL, OPT_FIRST_FREE},
      {"dw", required_argument, NULL, OPT_DW},
      {"print-after", required_argument, NULL, OPT_PRINT_AFTER},
      {"print-after-all", no_argument, NULL, OPT_PRINT_AFTER_ALL},
      {0, 0, 0, 0}};
  Diag d;
  diag_init(&d, stderr);
  BuildArgs ba = {.c = {.cmd = "build"}, .target = target_default()};
  int opt, rc = 0;
  optind = 1, opterr = 0;
  while (!rc && (opt = getopt_long(argc, argv, ":ho:D:", opts, NULL)) != -1) {
    if (opt == 'h')
      rc = (fputs(build_usage, stdout), -1);
    else if (opt == 'o')
      ba.out = optarg;
    else if (opt == OPT_FIRST_FREE)
      rc = (ba.target = cli_target("build", optarg)) ? 0 : EXIT_USAGE;
    else if (opt == '?' || opt == ':')
      rc = (cli_usage_error("build", opt == ':' ? "option '%s' needs a value"
                                                : "unknown option '%s'", argv[optind - 1]),
            EXIT_USAGE);
    else if (!cli_front_option(&ba.c, &d, opt, optarg))
      rc = EXIT_USAGE;
  }
  if (!rc && !cli_positional(&ba.c, argc, argv, optind, "build"))
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

//
// anec train
//
// Folds a file's bytes into h; a file that cannot be read leaves h as it is.
static uint64_t hash_file(uint64_t h, const char *path) {
  RtDiag quiet = {0}; // no messages: the key just goes without it
  size_t n;
  unsigned char *bytes = rt_read_file(path, &n, &quiet);
  if (bytes)
    h = rt_fnv1a(h, bytes, n);
  free(bytes);
  return h;
}

// The cache key: the model file, the overrides, the target and this anec:
// its version, the runtime library the trainer links and (where the OS
// names it: Linux) anec's own executable, so that a rebuilt anec of the
// same version does not reuse trainers it would generate differently.
static uint64_t train_key(const char *model, const CliFront *c, const TargetProfile *t,
                          Diag *d) {
  RtDiag rd = {.out = d->out};
  size_t n;
  unsigned char *text = rt_read_file(model, &n, &rd);
  if (!text)
    return 0;
  uint64_t h = rt_fnv1a(RT_FNV_OFFSET, text, n);
  free(text);
  for (int i = 0; i < c->front.ndefs; i++) {
    const char *def = d->files[c->defs[i].file].text;
    h = rt_fnv1a(h, def, strlen(def) + 1);
  }
  h = rt_fnv1a(h, t->name, strlen(t->name) + 1);
  h = rt_fnv1a(h, c->front.pipe.dw_cpu ? "dw=cpu" : "dw=ane", 7);
  h = rt_fnv1a(h, ANEC_VERSION, sizeof ANEC_VERSION);
  h = hash_file(hash_file(h, ANEC_RT_LIB), "/proc/self/exe");
  return rt_fnv1a(h, anec_prelude_text, strlen(anec_prelude_text));
}

static char *cache_dir(Arena *a) {
  const char *x = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
  if (x && *x)
    return arena_printf(a, "%s/anec", x);
  return arena_printf(a, "%s/.cache/anec", home && *home ? home : "/tmp");
}

// Splits argv: anec's own options (-D, --target, --dw) and the model into c;
// the rest, in order, into rest (for the trainer).
static int train_args(int argc, char **argv, CliFront *c, Diag *d, const TargetProfile **t,
                      char **rest, int *nrest) {
  for (int i = 1; i < argc; i++) {
    const char *s = argv[i];
    bool dopt = !strcmp(s, "-D"), topt = !strcmp(s, "--target"), wopt = !strcmp(s, "--dw");
    if ((dopt || topt || wopt) && i + 1 >= argc)
      return cli_usage_error("train", "option '%s' needs a value", s), EXIT_USAGE;
    if (dopt || !strncmp(s, "-D", 2)) {
      if (!cli_front_option(c, d, 'D', dopt ? argv[++i] : s + 2))
        return EXIT_USAGE;
    } else if (wopt || !strncmp(s, "--dw=", 5)) {
      if (!cli_front_option(c, d, OPT_DW, wopt ? argv[++i] : s + 5))
        return EXIT_USAGE;
    } else if (topt || !strncmp(s, "--target=", 9)) {
      if (!(*t = cli_target("train", topt ? argv[++i] : s + 9)))
        return EXIT_USAGE;
    } else if (!c->model && strlen(s) > 5 && !strcmp(s + strlen(s) - 5, ".anet")) {
      c->model = s;
    } else {
      rest[(*nrest)++] = argv[i];
    }
  }
  return 0;
}

int cmd_train(int argc, char **argv) {
  Diag d;
  diag_init(&d, stderr);
  CliFront c = {.cmd = "train"};
  const TargetProfile *t = target_default();
  char **rest = calloc((size_t)argc + 2, sizeof *rest);
  int nrest = 1, rc = train_args(argc, argv, &c, &d, &t, rest, &nrest);
  Arena a = {0};
  if (!rc && !c.model) {
    bool help = nrest > 1 && (!strcmp(rest[1], "--help") || !strcmp(rest[1], "-h"));
    if (help)
      fputs(train_usage, stdout);
    else
      cli_usage_error("train", "no model file given (MODEL.anet)");
    rc = help ? -1 : EXIT_USAGE;
  }
  uint64_t key = rc ? 0 : train_key(c.model, &c, t, &d);
  if (!rc && !key)
    rc = EXIT_USER;
  char *dir = rc ? NULL : arena_printf(&a, "%s/%016llx", cache_dir(&a), (unsigned long long)key);
  char *exe = dir ? arena_printf(&a, "%s/trainer", dir) : NULL;
  if (exe && access(exe, X_OK) != 0) {
    fprintf(stderr, "anec train: building the trainer of %s (cached in %s)\n", c.model, dir);
    int err = rt_mkdirs(dir);
    if (err)
      diag_error(&d, loc_none(), "cannot create '%s': %s", dir, strerror(err));
    if (err || !build_trainer(&a, &d, &c, t, exe))
      rc = EXIT_USER;
  }
  if (!rc) {
    fflush(NULL);
    rest[0] = arena_printf(&a, "anec train %s", c.model); // the trainer's name in messages
    execv(exe, rest);
    diag_error(&d, loc_none(), "cannot run '%s': %s", exe, strerror(errno));
    rc = EXIT_USER;
  }
  free(rest);
  arena_free(&a);
  diag_free(&d);
  return rc < 0 ? 0 : rc;
}
