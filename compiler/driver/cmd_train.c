// cmd_train.c — `anec train M.anet [-D ...] [--target T] [--dw D] [--no-check]
// FLAGS...`: builds the model's trainer once per model content (and anec)
// into a cache, as anec build does, then runs it with the remaining flags.
#include "driver.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char train_usage[] =
    "Usage: anec train MODEL.anet [-D NAME=VALUE]... [--target=NAME] [--dw=ane|cpu]\n"
    "                  [--no-check] [TRAINER FLAGS]\n"
    "Build the model's trainer (as anec build does; cached by the model's content and\n"
    "this anec, in $XDG_CACHE_HOME/anec or ~/.cache/anec) and run it with the trainer\n"
    "flags, e.g.\n"
    "  anec train samples/tiny_shakespeare.anet --data samples/data/tinyshakespeare.txt \\\n"
    "      --steps 200 --lr 1e-3\n"
    "`anec train MODEL.anet --help` lists the trainer's flags.\n";

typedef struct TrainCmdArgs {
  CliFront c;
  const TargetProfile *target;
} TrainCmdArgs;

// anec's own options; every other argument, options too, goes to the trainer.
#define AT(field) offsetof(TrainCmdArgs, field)
static const Opt opts[] = {
    {CLI_USE(CLI_OPT_DEFINE, AT(c))},
    {CLI_USE(CLI_OPT_TARGET, AT(target))},
    {CLI_USE(CLI_OPT_DW, AT(c))},
    {CLI_USE(CLI_OPT_NO_CHECK, AT(c))},
};

static const OptSpec spec = {
    .prog = "anec train",
    .opts = opts,
    .nopts = sizeof opts / sizeof *opts,
    .help_col = CLI_HELP_COL,
    .pass_unknown = true,
};

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

// The cache key: the model file, the overrides, the target, --dw, --no-check
// and this anec: its version, the runtime library the trainer links and
// (where the OS names it: Linux) anec's own executable, so that a rebuilt
// anec of the same version does not reuse trainers it would generate
// differently.
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
  if (c->front.no_check) // a trainer built unchecked is not the checked one's
    h = rt_fnv1a(h, "no-check", 9);
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

static bool is_model(const char *s) {
  return strlen(s) > 5 && !strcmp(s + strlen(s) - 5, ".anet");
}

// Splits argv: anec's own options into ta, the first argument ending in
// .anet is the model, the rest, in order, goes into rest (for the trainer).
// 0 to go on, -1 after --help, else the exit code.
static int train_args(TrainCmdArgs *ta, int argc, char **argv, char **rest, int *nrest) {
  int first, rc = cli_parse(&spec, ta, argc, argv, &first);
  for (int i = first; !rc && i < argc; i++)
    if (!ta->c.model && is_model(argv[i]))
      ta->c.model = argv[i];
    else
      rest[(*nrest)++] = argv[i];
  if (rc || ta->c.model)
    return rc;
  if (*nrest > 1 && (!strcmp(rest[1], "--help") || !strcmp(rest[1], "-h"))) {
    fputs(train_usage, stdout);
    return -1;
  }
  cli_usage_error("train", "no model file given (MODEL.anet)");
  return EXIT_USAGE;
}

//
// The cache entry of a model: DIR/trainer and DIR/trainer.stamp, written
// after the trainer is in place, with its size and FNV-1a 64 hash. An entry
// is used only when the trainer matches its stamp; anything else (a stamp
// missing, a trainer truncated or damaged) is rebuilt. Builders of one entry
// take turns (a lock on DIR/lock; without locks they still work, each into a
// temp file of its own renamed over DIR/trainer): a run never sees a
// trainer half-written, and runs the complete old or the complete new one.
//

// "size N\nfnv1a HEX\n" of the file at path, or NULL if it cannot be read.
static char *stamp_of(Arena *a, const char *path) {
  RtDiag quiet = {0}; // an unreadable entry is rebuilt, not reported
  size_t n;
  unsigned char *bytes = rt_read_file(path, &n, &quiet);
  if (!bytes)
    return NULL;
  uint64_t h = rt_fnv1a(RT_FNV_OFFSET, bytes, n);
  free(bytes);
  return arena_printf(a, "size %llu\nfnv1a %016llx\n", (unsigned long long)n,
                      (unsigned long long)h);
}

// Whether exe is an executable that matches its stamp.
static bool entry_valid(Arena *a, const char *exe, const char *stamp) {
  if (access(exe, X_OK) != 0)
    return false;
  RtDiag quiet = {0};
  size_t n;
  char *want = (char *)rt_read_file_max(stamp, 4096, &n, &quiet);
  char *have = want ? stamp_of(a, exe) : NULL;
  bool ok = have && strlen(want) == n && !strcmp(want, have);
  free(want);
  return ok;
}

// Waits for the entry's lock: its descriptor, or -1 when the file system
// has no locks (the build then goes on unlocked).
static int lock_entry(Arena *a, const char *dir) {
  int fd = open(arena_printf(a, "%s/lock", dir), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
  while (fd >= 0 && fcntl(fd, F_SETLKW, &fl) != 0)
    if (errno != EINTR) {
      close(fd);
      return -1;
    }
  return fd;
}

// Removes what builds killed on the way left in the entry: the temp files of
// the trainer and of the stamp. Only under the lock: no other build is on.
static void remove_temps(Arena *a, const char *dir) {
  DIR *dp = opendir(dir);
  for (struct dirent *e; dp && (e = readdir(dp));)
    if (!strncmp(e->d_name, "trainer.tmp.", 12) || !strncmp(e->d_name, "trainer.stamp.tmp", 17))
      unlink(arena_printf(a, "%s/%s", dir, e->d_name));
  if (dp)
    closedir(dp);
}

// Builds the entry's trainer (under its lock, unless another run built it
// meanwhile) and writes its stamp; false after reporting errors.
static bool build_entry(Arena *a, Diag *d, const TrainCmdArgs *ta, const char *dir,
                        const char *exe, const char *stamp) {
  int err = rt_mkdirs(dir);
  if (err) {
    diag_error(d, loc_none(), "cannot create '%s': %s", dir, strerror(err));
    return false;
  }
  int lock = lock_entry(a, dir);
  bool ok = entry_valid(a, exe, stamp); // another run's, built while we waited
  if (!ok) {
    bool damaged = access(exe, F_OK) == 0;
    fprintf(stderr, "anec train: %sbuilding the trainer of %s (cached in %s%s)\n",
            damaged ? "re" : "", ta->c.model, dir,
            damaged ? "; the cached one does not match its stamp" : "");
    if (lock >= 0)
      remove_temps(a, dir);
    ok = build_trainer(a, d, &ta->c, ta->target, exe);
    char *text = ok ? stamp_of(a, exe) : NULL;
    if (ok && !text)
      diag_error(d, loc_none(), "cannot read the trainer '%s' just built", exe);
    ok = text && cli_write_file(stamp, text, strlen(text));
  }
  if (lock >= 0)
    close(lock); // releases it
  return ok;
}

// The cached trainer of the model, built if it is not there yet (or does
// not match its stamp).
static char *cached_trainer(Arena *a, Diag *d, const TrainCmdArgs *ta) {
  uint64_t key = train_key(ta->c.model, &ta->c, ta->target, d);
  if (!key)
    return NULL;
  char *dir = arena_printf(a, "%s/%016llx", cache_dir(a), (unsigned long long)key);
  char *exe = arena_printf(a, "%s/trainer", dir);
  char *stamp = arena_printf(a, "%s/trainer.stamp", dir);
  if (entry_valid(a, exe, stamp))
    return exe;
  return build_entry(a, d, ta, dir, exe, stamp) ? exe : NULL;
}

int cmd_train(int argc, char **argv) {
  Diag d;
  diag_init(&d, stderr);
  TrainCmdArgs ta = {.c = {.diag = &d}, .target = target_default()};
  char **rest = calloc((size_t)argc + 2, sizeof *rest);
  int nrest = 1, rc = train_args(&ta, argc, argv, rest, &nrest);
  Arena a = {0};
  char *exe = rc ? NULL : cached_trainer(&a, &d, &ta);
  if (exe) {
    fflush(NULL);
    rest[0] = arena_printf(&a, "anec train %s", ta.c.model); // the trainer's name in messages
    execv(exe, rest);
    diag_error(&d, loc_none(), "cannot run '%s': %s", exe, strerror(errno));
  }
  if (!rc)
    rc = EXIT_USER;
  free(rest);
  arena_free(&a);
  diag_free(&d);
  return rc < 0 ? 0 : rc;
}
