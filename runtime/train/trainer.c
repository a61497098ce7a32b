// trainer.c — the driver of a model's training (train_main): the command
// line, the output paths checked before the first step, the data, the
// optimizer loop around the model's step (micro-batches, loss scaling,
// clipping, AdamW), validation, checkpoints and bit-exact resume (latest:
// the newest good one), llama2.c --init / --export (saved elsewhere when
// the export fails), the progress log (write errors stop the run, its state
// saved) and the final report.
#include "train.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

//
// The command line
//
typedef struct TrainArgs {
  const char *data, *tokenizer, *val_data, *init, *export_to, *ckpt_dir, *resume, *log_json;
  const char *dump_grads;
  const char *backend, *precision, *loss_scale, *data_order, *ane_quirks;
  int64_t steps, batch, accum, warmup, val_every, val_batches, save_every;
  uint64_t seed;
  double lr, min_lr, beta1, beta2, eps, weight_decay, grad_clip;
  bool quiet;
} TrainArgs;

static const TrainArgs arg_defaults = {
    .tokenizer = "bytes", .backend = "ref", .precision = "fp16", .data_order = "random",
    .steps = 100, .batch = 1, .accum = 1, .val_batches = 8, .seed = 1337, .lr = 3e-4,
    .min_lr = -1, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.1, .grad_clip = 1,
};

// --resume: a checkpoint, or "latest" when no value follows.
static bool set_resume(const OptSpec *s, const Opt *o, void *dst, const char *arg) {
  (void)s, (void)o;
  *(const char **)dst = arg ? arg : "latest";
  return true;
}

// The flags: every value with its default in the help (or "required").
#define AT(field) offsetof(TrainArgs, field)
#define BIG 1e15 // steps and intervals: "no limit"
static const Opt flags[] = {
    {"data", 0, OPT_ARG_REQUIRED, "FILE",
     "training data: .bin = uint16 token ids, else text (required)",
     .store = OPT_STORE_STR, .off = AT(data)},
    {"tokenizer", 0, OPT_ARG_REQUIRED, "FILE|bytes",
     "text through a llama2.c tokenizer.bin, or each byte a token (default bytes)",
     .store = OPT_STORE_STR, .off = AT(tokenizer)},
    {"val-data", 0, OPT_ARG_REQUIRED, "FILE", "validation data, read as --data (default none)",
     .store = OPT_STORE_STR, .off = AT(val_data)},
    {"val-every", 0, OPT_ARG_REQUIRED, "N",
     "validate every N steps; 0: only at the end (default 0)",
     .store = OPT_STORE_INT, .off = AT(val_every), .lo = 0, .hi = BIG},
    {"val-batches", 0, OPT_ARG_REQUIRED, "N",
     "sequences a validation evaluates, from the start of the data (default 8)",
     .store = OPT_STORE_INT, .off = AT(val_batches), .lo = 1, .hi = 1 << 20},
    {"steps", 0, OPT_ARG_REQUIRED, "N",
     "steps in all, the schedule's length; a resumed run goes on to N (default 100)",
     .store = OPT_STORE_INT, .off = AT(steps), .lo = 0, .hi = BIG},
    {"batch", 0, OPT_ARG_REQUIRED, "N", "sequences per micro-batch (default 1)",
     .store = OPT_STORE_INT, .off = AT(batch), .lo = 1, .hi = 1 << 16},
    {"accum", 0, OPT_ARG_REQUIRED, "N",
     "micro-batches per step, their gradients accumulated (default 1)",
     .store = OPT_STORE_INT, .off = AT(accum), .lo = 1, .hi = 1 << 16},
    {"lr", 0, OPT_ARG_REQUIRED, "X", "peak learning rate (default 3e-4)",
     .store = OPT_STORE_REAL, .off = AT(lr), .lo = 0, .hi = FLT_MAX},
    {"min-lr", 0, OPT_ARG_REQUIRED, "X",
     "learning rate at the end of the cosine decay (default lr/10)",
     .store = OPT_STORE_REAL, .off = AT(min_lr), .lo = 0, .hi = FLT_MAX},
    {"warmup", 0, OPT_ARG_REQUIRED, "N", "steps of linear warmup (default 0)",
     .store = OPT_STORE_INT, .off = AT(warmup), .lo = 0, .hi = BIG},
    {"beta1", 0, OPT_ARG_REQUIRED, "X", "AdamW beta1 (default 0.9)",
     .store = OPT_STORE_REAL, .off = AT(beta1), .lo = 0, .hi = 1},
    {"beta2", 0, OPT_ARG_REQUIRED, "X", "AdamW beta2 (default 0.95)",
     .store = OPT_STORE_REAL, .off = AT(beta2), .lo = 0, .hi = 1},
    {"eps", 0, OPT_ARG_REQUIRED, "X", "AdamW epsilon (default 1e-8)",
     .store = OPT_STORE_REAL, .off = AT(eps), .lo = FLT_MIN, .hi = FLT_MAX},
    {"weight-decay", 0, OPT_ARG_REQUIRED, "X",
     "decoupled weight decay of the matrices (default 0.1)",
     .store = OPT_STORE_REAL, .off = AT(weight_decay), .lo = 0, .hi = FLT_MAX},
    {"grad-clip", 0, OPT_ARG_REQUIRED, "X",
     "clip the gradients' global norm to X; 0: off (default 1.0)",
     .store = OPT_STORE_REAL, .off = AT(grad_clip), .lo = 0, .hi = FLT_MAX},
    {"loss-scale", 0, OPT_ARG_REQUIRED, "N|dynamic",
     "loss scaling (default 1 with --precision fp32, else dynamic)",
     .store = OPT_STORE_STR, .off = AT(loss_scale)},
    {"seed", 0, OPT_ARG_REQUIRED, "N", "seed of the initializers and the data order (default 1337)",
     .store = OPT_STORE_U64, .off = AT(seed)},
    {"data-order", 0, OPT_ARG_REQUIRED, "random|sequential",
     "micro-batches at random offsets or one after another (default random)",
     .store = OPT_STORE_CHOICE, .off = AT(data_order)},
    {"init", 0, OPT_ARG_REQUIRED, "CKPT.bin",
     "start from llama2.c v0 weights, for models in its layout (default none)",
     .store = OPT_STORE_STR, .off = AT(init)},
    {"export", 0, OPT_ARG_REQUIRED, "OUT.bin",
     "write the trained weights as a llama2.c v0 checkpoint at the end (default none)",
     .store = OPT_STORE_STR, .off = AT(export_to)},
    {"ckpt-dir", 0, OPT_ARG_REQUIRED, "DIR",
     "save checkpoints DIR/step-NNNNNNNN.ckpt, DIR created if missing (default none)",
     .store = OPT_STORE_STR, .off = AT(ckpt_dir)},
    {"save-every", 0, OPT_ARG_REQUIRED, "N", "save every N steps; 0: only at the end (default 0)",
     .store = OPT_STORE_INT, .off = AT(save_every), .lo = 0, .hi = BIG},
    {"resume", 0, OPT_ARG_OPTIONAL, "[latest|PATH]",
     "go on from a checkpoint; latest: the highest step in --ckpt-dir (default none)",
     .store = OPT_STORE_FN, .off = AT(resume), .fn = set_resume},
    {"log-json", 0, OPT_ARG_REQUIRED, "FILE",
     "a JSON line per step and validation, appended to on --resume (default none)",
     .store = OPT_STORE_STR, .off = AT(log_json)},
    {"dump-grads", 0, OPT_ARG_REQUIRED, "DIR",
     "after each step, DIR/loss.npy and DIR/grad.NAME.npy: the mean gradients, unclipped",
     .store = OPT_STORE_STR, .off = AT(dump_grads)},
    {"backend", 0, OPT_ARG_REQUIRED, "ref|ane", "where the kernels run (default ref)",
     .store = OPT_STORE_CHOICE, .off = AT(backend)},
    {"precision", 0, OPT_ARG_REQUIRED, "fp16|fp32", "storage of the kernels' values (default fp16)",
     .store = OPT_STORE_CHOICE, .off = AT(precision)},
    {"ane-quirks", 0, OPT_ARG_REQUIRED, "on|off",
     "model the ANE's numeric cliffs on the ref backend (default on with fp16, off with\n"
     "fp32): matmul outputs saturate to inf from 32752 on, reduce_sum/mean add in fp16",
     .store = OPT_STORE_CHOICE, .off = AT(ane_quirks)},
    {"quiet", 'q', OPT_ARG_NONE, NULL, "no progress lines",
     .store = OPT_STORE_FLAG, .off = AT(quiet)},
    {"help", 'h', OPT_ARG_NONE, NULL, "show this help and exit", .store = OPT_STORE_HELP},
};
enum { NFLAGS = sizeof flags / sizeof flags[0], GO_ON = -1 };

static const char *model_name(const TrainModel *m) {
  return m->name ? m->name : "?";
}

// "PROG: error: message" on stderr.
static void report(const char *prog, const char *fmt, va_list ap) {
  fprintf(stderr, "%s: error: ", prog);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
}

static int usage_error(const char *prog, const char *fmt, ...) ANERT_PRINTF(2, 3);
static int usage_error(const char *prog, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  opts_verror(prog, fmt, ap);
  va_end(ap);
  return 2;
}

// The help's head: the usage line and the model (malloc'd).
static char *usage_head(const char *prog, const TrainModel *m) {
  static const char fmt[] =
      "Usage: %s --data FILE [OPTIONS]\nTrain model '%s': %d tokens a sequence, a vocabulary "
      "of %d.\nProgress lines and the report go to stdout, errors to stderr. Exit status: 0 "
      "done, 1 bad input,\n2 usage error.\n\n";
  int n = snprintf(NULL, 0, fmt, prog, model_name(m), m->seq, m->vocab);
  char *head = n > 0 ? malloc((size_t)n + 1) : NULL;
  if (head)
    snprintf(head, (size_t)n + 1, fmt, prog, model_name(m), m->seq, m->vocab);
  return head;
}

// The flags' values, or the exit status for help and usage errors.
static int parse_flags(TrainArgs *a, const char *prog, int argc, char **argv,
                       const TrainModel *m) {
  char *head = usage_head(prog, m);
  OptSpec spec = {.prog = prog, .opts = flags, .nopts = NFLAGS, .usage = head};
  int first;
  *a = arg_defaults;
  OptStatus st = opts_parse(&spec, a, argc, argv, &first);
  free(head);
  if (st != OPT_STATUS_OK)
    return st == OPT_STATUS_HELP ? 0 : 2;
  if (first < argc)
    return usage_error(prog, "unexpected argument '%s'", argv[first]);
  return GO_ON;
}

// The flags that depend on each other and on the model; the loss scale.
static int check_flags(TrainArgs *a, const char *prog, const TrainModel *m, LossScale *ls) {
  const char *l2c_flag = a->init ? "--init" : a->export_to ? "--export" : NULL;
  if (!a->data)
    return usage_error(prog, "--data FILE is required");
  if (a->resume && !strcmp(a->resume, "latest") && !a->ckpt_dir)
    return usage_error(prog, "--resume latest looks in --ckpt-dir: give it, or a checkpoint");
  if (a->init && a->resume)
    return usage_error(prog, "--init and --resume exclude each other");
  if (a->ane_quirks && !strcmp(a->ane_quirks, "on") && !strcmp(a->precision, "fp32"))
    return usage_error(prog, "--ane-quirks on models fp16 numerics: not with --precision fp32");
  if (l2c_flag && !m->has_l2c)
    return usage_error(prog, "%s: model '%s' does not follow llama2.c's layout", l2c_flag,
                       model_name(m));
  const char *scale = a->loss_scale                    ? a->loss_scale
                      : strcmp(a->precision, "fp32") ? "dynamic"
                                                     : "1";
  if (!loss_scale_parse(scale, ls))
    return usage_error(prog, "--loss-scale: expected a positive number or dynamic, got '%s'",
                       scale);
  if (a->min_lr < 0)
    a->min_lr = a->lr / 10;
  return GO_ON;
}

//
// The trainer's state
//
typedef struct Trainer {
  TrainModel *m;
  TrainArgs a;
  const char *prog;
  RtDiag d;
  AdamW opt;
  LossScale ls;
  Tokenizer tok;
  Dataset data, val;
  bool opened;             // m->open succeeded: m->close at the end
  int nt;                  // tensors
  int64_t *counts, total;  // elements of each tensor, of all
  float *w, *g, *mo, *ve;  // one allocation each: weights, gradients, AdamW m and v
  float **wt, **gt, **mt, **vt; // each tensor's slice of them
  CkptTensor *ck;          // the tensors as checkpoints hold them
  int32_t *tokens, *targets;
  DataCursor cursor;
  uint64_t rng;            // the trainer's own generator (saved; for dropout, sampling)
  uint64_t model_hash;     // ckpt_model_hash of the model's tensors
  int64_t step;            // steps done
  FILE *log;               // --log-json
  bool out_failed, log_failed; // a write to stdout, to the log failed (reported)
  bool exported;           // --export written
  // For the report
  double loss, val_loss;   // of the last step and the last validation (NaN: none)
  int64_t val_step, saved_step, steps_run;
  double train_ms;         // wall time of the steps run here
  TrainCounters used;      // the model's counters over those steps
} Trainer;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static void train_error(Trainer *t, const char *fmt, ...) ANERT_PRINTF(2, 3);
static void train_error(Trainer *t, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  report(t->prog, fmt, ap);
  va_end(ap);
  t->d.errors++;
}

// What a model must be for the driver: its functions, a sequence, tensors a
// checkpoint can name.
static const char *model_problem(const TrainModel *m) {
  if (!m->name || !m->open || !m->step || !m->eval || !m->counters || !m->close)
    return "lacks its name or one of its functions";
  if (m->seq < 1 || m->vocab < 1 || m->ntensors < 1 || !m->tensors)
    return "has no sequence, vocabulary or tensors";
  if (m->has_l2c && (m->l2c.seq != m->seq || m->l2c.vocab != m->vocab))
    return "has a llama2.c config whose seq or vocab is not the model's";
  for (int i = 0; i < m->ntensors; i++) {
    const TrainTensor *tt = &m->tensors[i];
    size_t len = tt->name ? strlen(tt->name) : 0;
    if (len == 0 || len > CKPT_MAX_NAME || tt->rank < 0 || tt->rank > 4 ||
        rt_numel(tt->rank, tt->dims) < 0)
      return "has a tensor without a name (1 to 255 bytes) or a shape of rank 0 to 4";
  }
  return NULL;
}

static void *alloc_or_report(Trainer *t, int64_t n, size_t size) {
  void *p = calloc((size_t)n + 1, size);
  if (!p)
    train_error(t, "out of memory for %lld values", (long long)n);
  return p;
}

// Points each tensor's slices into the four allocations.
static void slice_state(Trainer *t) {
  t->gt = t->wt + t->nt, t->mt = t->wt + 2 * t->nt, t->vt = t->wt + 3 * t->nt;
  int64_t off = 0;
  for (int i = 0; i < t->nt; i++) {
    t->wt[i] = t->w + off, t->gt[i] = t->g + off, t->mt[i] = t->mo + off, t->vt[i] = t->ve + off;
    t->ck[i] = (CkptTensor){t->m->tensors[i].name, t->counts[i], t->wt[i], t->mt[i], t->vt[i]};
    off += t->counts[i];
  }
}

static bool alloc_state(Trainer *t) {
  int nt = t->nt = t->m->ntensors, seq = t->m->seq;
  if (!(t->counts = alloc_or_report(t, nt, sizeof *t->counts)))
    return false;
  for (int i = 0; i < nt; i++)
    t->total += t->counts[i] = rt_numel(t->m->tensors[i].rank, t->m->tensors[i].dims);
  float **all[4] = {&t->w, &t->g, &t->mo, &t->ve};
  bool ok = (t->wt = alloc_or_report(t, 4 * nt, sizeof *t->wt)) &&
            (t->ck = alloc_or_report(t, nt, sizeof *t->ck)) &&
            (t->tokens = alloc_or_report(t, seq, 4)) && (t->targets = alloc_or_report(t, seq, 4));
  for (int k = 0; ok && k < 4; k++)
    ok = (*all[k] = alloc_or_report(t, t->total, sizeof(float))) != NULL;
  if (ok)
    slice_state(t);
  return ok;
}

// The weights from each tensor's initializer (the compiler's, for --seed).
static void init_weights(Trainer *t) {
  for (int i = 0; i < t->nt; i++) {
    const TrainTensor *tt = &t->m->tensors[i];
    for (int64_t k = 0; tt->init == TINIT_ONES && k < t->counts[i]; k++)
      t->wt[i][k] = 1.0f;
    if (tt->init == TINIT_NORMAL)
      rt_fill_normal(t->wt[i], t->counts[i], tt->init_std, tt->name, t->a.seed);
  }
}

// A data file with at least one sequence in it.
static bool load_data(Trainer *t, Dataset *ds, const char *path) {
  const Tokenizer *tok = t->tok.vocab ? &t->tok : NULL;
  DataCursor probe = {0, 0};
  return dataset_load(ds, path, tok, t->m->vocab, &t->d) &&
         dataset_batch(ds, &probe, true, t->m->seq, t->tokens, t->targets, &t->d);
}

static bool load_inputs(Trainer *t) {
  if (strcmp(t->a.tokenizer, "bytes") && !tok_load(t->a.tokenizer, t->m->vocab, &t->tok, &t->d))
    return false;
  return load_data(t, &t->data, t->a.data) &&
         (!t->a.val_data || load_data(t, &t->val, t->a.val_data));
}

// dir/name (malloc'd; NULL when out of memory).
static char *path_join(const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *p = malloc(n);
  if (p)
    snprintf(p, n, "%s/%s", dir, name);
  return p;
}

//
// llama2.c weights: --init and --export
//

// Where tensor i is in ck, checked against its shape; NULL (reported) if not there.
static float *l2c_place(Trainer *t, const L2cCheckpoint *ck, int i, const char *path) {
  const TrainTensor *tt = &t->m->tensors[i];
  L2cTensor v;
  bool ok = l2c_slot(ck, tt->name, &v) && v.rank == tt->rank;
  for (int k = 0; ok && k < v.rank; k++)
    ok = v.dims[k] == tt->dims[k];
  char shape[96];
  if (!ok)
    rt_error_file(&t->d, path, "tensor '%s' %s of model '%s' is not in llama2.c's layout",
                  tt->name, rt_shape_str(shape, sizeof shape, tt->rank, tt->dims), t->m->name);
  return ok ? v.data : NULL;
}

// The file's config against the model's, naming the first field that differs.
static bool same_config(Trainer *t, const L2cConfig *c, const char *path) {
  const L2cConfig *w = &t->m->l2c;
  const int have[7] = {c->dim, c->hidden, c->layers, c->heads, c->kv_heads, c->vocab, c->seq};
  const int want[7] = {w->dim, w->hidden, w->layers, w->heads, w->kv_heads, w->vocab, w->seq};
  static const char *const names[7] = {"dim", "hidden_dim", "n_layers", "n_heads",
                                       "n_kv_heads", "vocab_size", "seq_len"};
  for (int i = 0; i < 7; i++)
    if (have[i] != want[i]) {
      rt_error_file(&t->d, path, "%s is %d, model '%s' has %d", names[i], have[i], t->m->name,
                    want[i]);
      return false;
    }
  if (c->shared_cls != w->shared_cls)
    rt_error_file(&t->d, path, "the classifier is %s, model '%s' has it %s",
                  c->shared_cls ? "tied" : "untied (wcls)", t->m->name,
                  w->shared_cls ? "tied" : "untied (wcls)");
  return c->shared_cls == w->shared_cls;
}

// Copies every tensor's weights into ck (export) or out of it.
static bool copy_l2c(Trainer *t, const L2cCheckpoint *ck, const char *path, bool export) {
  for (int i = 0; i < t->nt; i++) {
    float *slot = l2c_place(t, ck, i, path);
    size_t n = (size_t)t->counts[i] * sizeof(float);
    if (!slot)
      return false;
    memcpy(export ? slot : t->wt[i], export ? t->wt[i] : slot, n);
  }
  return true;
}

static bool init_from_l2c(Trainer *t, const char *path) {
  L2cCheckpoint ck;
  bool ok = l2c_read(path, &ck, &t->d) && same_config(t, &ck.cfg, path) &&
            copy_l2c(t, &ck, path, false);
  l2c_free(&ck);
  return ok;
}

static bool export_l2c(Trainer *t, const char *path) {
  L2cCheckpoint ck;
  bool ok = l2c_alloc(&ck, &t->m->l2c, &t->d) && copy_l2c(t, &ck, path, true) &&
            l2c_write(path, &ck, &t->d);
  l2c_free(&ck);
  return ok;
}

// Where the weights go when --export fails: DIR/export-step-NNNNNNNN.bin in
// the checkpoint directory, else a new $TMPDIR (or /tmp) file; malloc'd,
// NULL when neither can be written.
static char *export_elsewhere(Trainer *t) {
  char name[48];
  snprintf(name, sizeof name, "export-step-%08lld.bin", (long long)t->step);
  char *path = t->a.ckpt_dir ? path_join(t->a.ckpt_dir, name) : NULL;
  if (path && export_l2c(t, path))
    return path;
  free(path);
  const char *tmp = getenv("TMPDIR");
  path = path_join(tmp && *tmp ? tmp : "/tmp", "anec-export-XXXXXX");
  int fd = path ? mkstemp(path) : -1;
  if (fd >= 0)
    close(fd);
  if (fd >= 0 && export_l2c(t, path))
    return path;
  if (fd >= 0)
    unlink(path);
  free(path);
  return NULL;
}

// --export; when that fails, the weights saved elsewhere, saying where.
static bool export_final(Trainer *t) {
  if ((t->exported = export_l2c(t, t->a.export_to)))
    return true;
  char *where = export_elsewhere(t);
  if (where)
    fprintf(stderr, "%s: note: the weights of step %lld are saved in %s instead\n", t->prog,
            (long long)t->step, where);
  else
    train_error(t, "the weights of step %lld could not be saved anywhere", (long long)t->step);
  free(where);
  return false;
}

//
// Checkpoints: DIR/step-NNNNNNNN.ckpt
//
// The step of a checkpoint's file name, -1 for other names.
static int64_t ckpt_step(const char *name) {
  if (strncmp(name, "step-", 5) || !isdigit((unsigned char)name[5]))
    return -1;
  char *end;
  errno = 0;
  long long s = strtoll(name + 5, &end, 10);
  return !errno && !strcmp(end, ".ckpt") ? s : -1;
}

// A checkpoint of dir: its step and file name.
typedef struct CkptFile {
  int64_t step;
  char *path;
} CkptFile;

static int by_step_down(const void *x, const void *y) {
  int64_t a = ((const CkptFile *)x)->step, b = ((const CkptFile *)y)->step;
  return (a < b) - (a > b);
}

// The checkpoints in dir, highest step first (*n of them, malloc'd; NULL
// when none or on error, reported).
static CkptFile *ckpt_list(Trainer *t, const char *dir, int *n) {
  DIR *dp = opendir(dir);
  if (!dp) {
    rt_error_file(&t->d, dir, "cannot open: %s", strerror(errno));
    return NULL;
  }
  CkptFile *files = NULL;
  *n = 0;
  for (struct dirent *e; (e = readdir(dp));) {
    int64_t step = ckpt_step(e->d_name);
    CkptFile *more = step < 0 ? NULL : realloc(files, ((size_t)*n + 1) * sizeof *files);
    char *path = more ? path_join(dir, e->d_name) : NULL;
    files = more ? more : files;
    if (path)
      files[(*n)++] = (CkptFile){step, path};
  }
  closedir(dp);
  if (*n == 0) {
    rt_error_file(&t->d, dir, "no checkpoint (step-NNNNNNNN.ckpt) to resume from");
    free(files);
    return NULL;
  }
  qsort(files, (size_t)*n, sizeof *files, by_step_down);
  return files;
}

static void ckpt_list_free(CkptFile *files, int n) {
  for (int i = 0; i < n; i++)
    free(files[i].path);
  free(files);
}

// Creates dir and its missing parents (mkdir -p) for flag.
static bool make_dirs(Trainer *t, const char *dir, const char *flag) {
  int err = rt_mkdirs(dir);
  if (err)
    rt_error_file(&t->d, dir, "%s: cannot create the directory: %s", flag, strerror(err));
  return !err;
}

static Ckpt ckpt_of(const Trainer *t) {
  return (Ckpt){t->model_hash, t->m->hash, t->step, t->rng, t->cursor, t->ls.scale, t->ls.good,
                t->ls.skipped, t->nt, t->ck};
}

static bool save_ckpt(Trainer *t) {
  char name[40];
  snprintf(name, sizeof name, "step-%08lld.ckpt", (long long)t->step);
  char *path = path_join(t->a.ckpt_dir, name);
  Ckpt c = ckpt_of(t);
  bool ok = path && ckpt_write(path, &c, &t->d);
  if (!path)
    train_error(t, "out of memory");
  free(path);
  if (ok)
    t->saved_step = t->step;
  return ok;
}

// {"resume": STEP, "from": "PATH"} in the log: the records of later steps
// replace those already there.
static void log_resume(Trainer *t, const char *path) {
  fprintf(t->log, "{\"resume\": %lld, \"from\": \"", (long long)t->step);
  for (const unsigned char *p = (const unsigned char *)path; *p; p++)
    if (*p == '"' || *p == '\\')
      fprintf(t->log, "\\%c", *p);
    else if (*p < 0x20)
      fprintf(t->log, "\\u%04x", *p);
    else
      fputc(*p, t->log);
  fputs("\"}\n", t->log);
}

// Everything the checkpoint at path holds (a static loss scale stays the
// flag's), its errors to d; a plan other than this one's is a warning.
static bool resume_from(Trainer *t, const char *path, RtDiag *d) {
  Ckpt c = ckpt_of(t);
  if (!ckpt_read(path, &c, d))
    return false;
  t->step = c.step, t->rng = c.rng, t->cursor = c.cursor;
  t->ls.scale = t->ls.dynamic ? c.loss_scale : t->ls.scale;
  t->ls.good = c.good_steps, t->ls.skipped = c.skipped;
  if (c.plan_hash != t->m->hash)
    rt_warning(&t->d, path, NULL, 0, (SrcSpan){0, 0, 0, 0},
               "resuming a checkpoint written by a different plan (other --target, --dw or "
               "anec version): the arithmetic may differ");
  printf("resumed from %s at step %lld\n", path, (long long)t->step);
  if (t->log)
    log_resume(t, path);
  return true;
}

// What a reader said of path ("path: error: WHAT\n"): WHAT, or all it said.
static const char *reader_reason(const char *text, const char *path) {
  size_t n = strlen(path);
  if (!text)
    return "cannot be read";
  return !strncmp(text, path, n) && !strncmp(text + n, ": error: ", 9) ? text + n + 9 : text;
}

// resume_from with its error a warning that the file is skipped.
static bool resume_try(Trainer *t, const char *path) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  RtDiag d = {.out = f ? f : stderr};
  bool ok = resume_from(t, path, &d);
  if (f)
    fclose(f);
  const char *why = reader_reason(text, path);
  if (!ok)
    rt_warning(&t->d, path, NULL, 0, (SrcSpan){0, 0, 0, 0}, "skipped: %.*s",
               (int)strcspn(why, "\n"), why);
  free(text);
  return ok;
}

// --resume latest: the newest checkpoint of dir that reads, naming those skipped.
static bool resume_latest(Trainer *t, const char *dir) {
  int n = 0;
  CkptFile *files = ckpt_list(t, dir, &n);
  bool ok = false;
  for (int i = 0; i < n && !ok; i++)
    ok = resume_try(t, files[i].path);
  if (files && !ok)
    rt_error_file(&t->d, dir, "no checkpoint to resume from: all %d are damaged or of another "
                  "model", n);
  ckpt_list_free(files, n);
  return ok;
}

static bool resume(Trainer *t) {
  const char *want = t->a.resume;
  return strcmp(want, "latest") ? resume_from(t, want, &t->d) : resume_latest(t, t->a.ckpt_dir);
}

//
// The output paths, checked before the first step
//

// 0 if a file can be created in dir (a probe file created and removed), or the errno.
static int dir_probe(const char *dir) {
  char *p = path_join(dir, ".anec-probe-XXXXXX");
  int fd = p ? mkstemp(p) : -1, err = !p ? ENOMEM : fd < 0 ? errno : 0;
  if (fd >= 0)
    close(fd), unlink(p);
  free(p);
  return err;
}

// The directory of a file's path (malloc'd): "." for a bare name.
static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  return !slash ? strdup(".") : strndup(path, slash == path ? 1 : (size_t)(slash - path));
}

// A file flag's path: not a directory, in a directory a file can be created in.
static bool output_check_file(Trainer *t, const char *flag, const char *path) {
  struct stat st;
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
    rt_error_file(&t->d, path, "%s: is a directory", flag);
    return false;
  }
  char *dir = dir_of(path);
  int err = dir ? dir_probe(dir) : ENOMEM;
  if (err)
    rt_error_file(&t->d, path, "%s: cannot create a file in '%s': %s", flag, dir ? dir : path,
                  strerror(err));
  free(dir);
  return !err;
}

// A directory flag's: created if missing, a file can be created in it.
static bool output_check_dir(Trainer *t, const char *flag, const char *dir) {
  if (!make_dirs(t, dir, flag))
    return false;
  int err = dir_probe(dir);
  if (err)
    rt_error_file(&t->d, dir, "%s: cannot create a file in it: %s", flag, strerror(err));
  return !err;
}

static bool open_log(Trainer *t) {
  t->log = fopen(t->a.log_json, t->a.resume ? "a" : "w");
  if (!t->log)
    rt_error_file(&t->d, t->a.log_json, "--log-json: cannot open: %s", strerror(errno));
  return t->log != NULL;
}

// Every place the run writes to, before anything is loaded; the log opened.
static bool outputs_check(Trainer *t) {
  const TrainArgs *a = &t->a;
  return (!a->export_to || output_check_file(t, "--export", a->export_to)) &&
         (!a->ckpt_dir || output_check_dir(t, "--ckpt-dir", a->ckpt_dir)) &&
         (!a->dump_grads || output_check_dir(t, "--dump-grads", a->dump_grads)) &&
         (!a->log_json || open_log(t));
}

// Whether f took everything written to it (flushed); its first failure
// reported: "file: error: what: the reason".
static bool stream_check(Trainer *t, FILE *f, const char *file, const char *what, bool *failed) {
  errno = 0;
  bool ok = fflush(f) == 0 && !ferror(f);
  if (!ok && !*failed)
    rt_error_file(&t->d, file, "%s: %s", what, errno ? strerror(errno) : "write error");
  *failed |= !ok;
  return ok;
}

// The progress on stdout and the log: false, the run to stop, once either failed.
static bool flush_logs(Trainer *t) {
  bool out = stream_check(t, stdout, "stdout", "cannot write the progress", &t->out_failed);
  bool log = !t->log ||
             stream_check(t, t->log, t->a.log_json, "--log-json: cannot write", &t->log_failed);
  return out && log;
}

//
// The loop
//

// The model's call: on failure, an error unless the model reported one.
static bool model_call(Trainer *t, bool ok, int errors, const char *what) {
  if (!ok && t->d.errors == errors)
    train_error(t, "model '%s': its %s function failed after step %lld", t->m->name, what,
                (long long)t->step);
  return ok;
}

static bool next_batch(Trainer *t, Dataset *ds, DataCursor *c, bool sequential) {
  return dataset_batch(ds, c, sequential, t->m->seq, t->tokens, t->targets, &t->d);
}

// Gradients of accum x batch sequences: their mean times the loss scale.
static bool accumulate(Trainer *t, double *loss) {
  int64_t n = t->a.batch * t->a.accum;
  float scale = t->ls.scale / (float)n;
  bool sequential = !strcmp(t->a.data_order, "sequential");
  memset(t->g, 0, (size_t)t->total * sizeof(float));
  *loss = 0;
  for (int64_t i = 0; i < n; i++) {
    double l = 0;
    int errors = t->d.errors;
    if (!next_batch(t, &t->data, &t->cursor, sequential) ||
        !model_call(t, t->m->step(t->m, t->wt, t->tokens, t->targets, scale, t->gt, &l, &t->d),
                    errors, "step"))
      return false;
    *loss += l;
  }
  *loss /= (double)n;
  return true;
}

// AdamW's update number step - skipped, with the gradients unscaled and
// clipped on the fly (sumsq: of the scaled gradients).
static void update(Trainer *t, float scale, double sumsq, float lr) {
  float clip = grad_clip_scale(sqrt(sumsq) / scale, (float)t->a.grad_clip);
  int64_t k = t->step - t->ls.skipped + 1;
  for (int i = 0; i < t->nt; i++)
    adamw_update(&t->opt, k, lr, clip / scale, t->wt[i], t->gt[i], t->mt[i], t->vt[i],
                 t->counts[i], t->m->tensors[i].decay);
  t->m->weights_version++;
}

// --dump-grads: the step's loss and its gradients divided by the loss scale
// (before clipping), one fp32 .npy per tensor in its logical shape.
static bool dump_grads(Trainer *t, double loss, float scale) {
  const char *dir = t->a.dump_grads;
  float l = (float)loss;
  RtTensor v = {MIL_FP32, 0, {0}, 1, &l};
  char *path = path_join(dir, "loss.npy");
  bool ok = make_dirs(t, dir, "--dump-grads") && npy_write(path, &v, &t->d);
  free(path);
  float *g = alloc_or_report(t, t->total, sizeof(float));
  for (int i = 0; ok && g && i < t->nt; i++) {
    const TrainTensor *tt = &t->m->tensors[i];
    for (int64_t k = 0; k < t->counts[i]; k++)
      g[k] = t->gt[i][k] / scale;
    char name[256];
    snprintf(name, sizeof name, "grad.%s.npy", tt->name);
    v = (RtTensor){MIL_FP32, tt->rank, {0}, t->counts[i], g};
    memcpy(v.dims, tt->dims, sizeof(int64_t) * (size_t)tt->rank);
    path = path_join(dir, name);
    ok = npy_write(path, &v, &t->d);
    free(path);
  }
  free(g);
  return ok && g;
}

// One optimizer step; st receives its statistics.
static bool train_step(Trainer *t, TrainStat *st) {
  double loss, t0 = now_ms();
  if (!accumulate(t, &loss))
    return false;
  float scale = t->ls.scale; // the backward's: the update may change it
  if (t->a.dump_grads && !dump_grads(t, loss, scale))
    return false;
  double sumsq = grad_sumsq(t->g, t->total); // inf or NaN when a gradient is
  bool apply = loss_scale_update(&t->ls, isfinite(sumsq));
  float lr = lr_schedule(t->step, t->a.warmup, t->a.steps, (float)t->a.lr, (float)t->a.min_lr);
  if (apply)
    update(t, scale, sumsq, lr);
  t->step++;
  double ms = now_ms() - t0, tokens = (double)(t->a.batch * t->a.accum * t->m->seq);
  *st = (TrainStat){t->step, t->a.steps, loss, lr, ms, tokens / (ms / 1e3), !apply};
  t->loss = loss;
  return true;
}

static void add_counters(TrainCounters *sum, const TrainCounters *a, const TrainCounters *b) {
  sum->kernel_ms += b->kernel_ms - a->kernel_ms;
  sum->cpu_ms += b->cpu_ms - a->cpu_ms;
  sum->staging_ms += b->staging_ms - a->staging_ms;
}

// A step with its accounting, its progress line and its log record.
static bool run_step(Trainer *t) {
  TrainCounters before, after;
  TrainStat st;
  t->m->counters(t->m, &before);
  if (!train_step(t, &st))
    return false;
  t->m->counters(t->m, &after);
  add_counters(&t->used, &before, &after);
  t->steps_run++;
  t->train_ms += st.ms;
  double eta_ms = t->train_ms / (double)t->steps_run * (double)(t->a.steps - t->step);
  if (!t->a.quiet)
    trainlog_progress(stdout, &st, eta_ms / 1e3);
  if (t->log)
    trainlog_json_step(t->log, &st);
  return flush_logs(t);
}

// The mean loss of the first --val-batches sequences of the val data.
static bool validate(Trainer *t) {
  DataCursor c = {0, 0};
  double sum = 0;
  for (int64_t i = 0; i < t->a.val_batches; i++) {
    double l = 0;
    int errors = t->d.errors;
    if (!next_batch(t, &t->val, &c, true) ||
        !model_call(t, t->m->eval(t->m, t->wt, t->tokens, t->targets, &l, &t->d), errors, "eval"))
      return false;
    sum += l;
  }
  t->val_loss = sum / (double)t->a.val_batches, t->val_step = t->step;
  if (!t->a.quiet)
    printf("step %*lld/%lld  val loss %.4f\n", t->a.steps >= 1000 ? 5 : 3, (long long)t->step,
           (long long)t->a.steps, t->val_loss);
  if (t->log)
    trainlog_json_val(t->log, t->step, t->val_loss);
  return flush_logs(t);
}

static bool every(int64_t step, int64_t n) {
  return n > 0 && step % n == 0;
}

static bool train_loop(Trainer *t) {
  t->m->weights_version++; // set up: initialized, imported or resumed
  while (t->step < t->a.steps) {
    if (!run_step(t) || (t->a.val_data && every(t->step, t->a.val_every) && !validate(t)) ||
        (t->a.ckpt_dir && every(t->step, t->a.save_every) && !save_ckpt(t)))
      return false;
  }
  return true;
}

//
// The report
//
static void print_share(const char *what, double ms, double step_ms) {
  printf("  %-10s %9.2f ms  %5.1f%%\n", what, ms, step_ms > 0 ? 100 * ms / step_ms : 0);
}

static void print_efficiency(Trainer *t) {
  TrainCounters c;
  t->m->counters(t->m, &c);
  double n = (double)t->steps_run, step_ms = t->train_ms / n, u = 1 / n;
  double seqs = n * (double)(t->a.batch * t->a.accum), s = t->train_ms / 1e3;
  double host = step_ms - (t->used.kernel_ms + t->used.cpu_ms + t->used.staging_ms) * u;
  printf("%-12s %9.2f ms  %d program%s\n", "compile", c.compile_ms, c.compiles,
         c.compiles == 1 ? "" : "s");
  printf("%-12s %9.2f ms  %lld steps in %.2f s\n", "step", step_ms, (long long)n, s);
  print_share("kernels", t->used.kernel_ms * u, step_ms);
  print_share("CPU ops", t->used.cpu_ms * u, step_ms);
  print_share("staging", t->used.staging_ms * u, step_ms);
  print_share("host/other", host, step_ms);
  printf("%-12s %9.2f GFLOP/s  %.0f tok/s\n", "throughput", c.flops_per_seq * seqs / s / 1e9,
         seqs * t->m->seq / s);
}

static void print_report(Trainer *t) {
  printf("%s: step %lld/%lld", t->m->name, (long long)t->step, (long long)t->a.steps);
  if (t->steps_run)
    printf(", loss %.4f", t->loss);
  if (t->val_step >= 0)
    printf(", val loss %.4f", t->val_loss);
  printf(", %lld skipped (inf/NaN gradients)\n", (long long)t->ls.skipped);
  if (t->steps_run)
    print_efficiency(t);
}

//
// The run
//

// Everything before the first step: the model checked, the output paths,
// data, weights (from the initializers, --init or --resume), the model opened.
static bool setup(Trainer *t) {
  const char *problem = model_problem(t->m);
  if (problem) {
    train_error(t, "model '%s' %s", model_name(t->m), problem);
    return false;
  }
  t->opt = (AdamW){(float)t->a.beta1, (float)t->a.beta2, (float)t->a.eps,
                   (float)t->a.weight_decay};
  data_cursor_init(&t->cursor, t->a.seed);
  t->rng = ~t->a.seed; // a stream apart from the data order's
  t->model_hash = ckpt_model_hash(t->m->tensors, t->m->ntensors);
  if (!outputs_check(t) || !alloc_state(t) || !load_inputs(t))
    return false;
  init_weights(t);
  if ((t->a.init && !init_from_l2c(t, t->a.init)) || (t->a.resume && !resume(t)))
    return false;
  int errors = t->d.errors;
  bool fp32 = !strcmp(t->a.precision, "fp32");
  bool quirks = !fp32 && (!t->a.ane_quirks || !strcmp(t->a.ane_quirks, "on"));
  t->opened = t->m->open(t->m, t->a.backend, fp32, quirks, &t->d);
  if (!t->opened && t->d.errors == errors)
    train_error(t, "model '%s': cannot open the %s backend", t->m->name, t->a.backend);
  return t->opened;
}

// The checkpoint and --export of the step reached, unless done at this step.
static bool save_outputs(Trainer *t) {
  bool ok = !t->a.ckpt_dir || t->saved_step == t->step || save_ckpt(t);
  return (!t->a.export_to || t->exported || export_final(t)) && ok;
}

// After the last step: validation unless done at this step, the outputs, the report.
static bool finish(Trainer *t) {
  if ((t->a.val_data && t->val_step != t->step && !validate(t)) || !save_outputs(t))
    return false;
  print_report(t);
  return flush_logs(t);
}

// A run stopped by a failed write to stdout or the log: its state saved, and said.
static void save_stopped(Trainer *t) {
  save_outputs(t);
  bool ckpt = t->a.ckpt_dir && t->saved_step == t->step;
  fprintf(stderr, "%s: note: stopped at step %lld of %lld", t->prog, (long long)t->step,
          (long long)t->a.steps);
  if (ckpt)
    fprintf(stderr, "; --resume from %s/step-%08lld.ckpt", t->a.ckpt_dir, (long long)t->step);
  fputc('\n', stderr);
}

static bool close_all(Trainer *t) {
  bool ok = !t->log || fclose(t->log) == 0;
  if (!ok && !t->log_failed)
    rt_error_file(&t->d, t->a.log_json, "--log-json: cannot write: %s", strerror(errno));
  if (t->opened)
    t->m->close(t->m);
  tok_free(&t->tok);
  dataset_free(&t->data), dataset_free(&t->val);
  free(t->counts), free(t->wt), free(t->ck), free(t->w), free(t->g), free(t->mo), free(t->ve);
  free(t->tokens), free(t->targets);
  return ok;
}

int train_main(TrainModel *m, int argc, char **argv) {
  Trainer t = {.m = m, .prog = argc > 0 && argv[0] ? argv[0] : "train", .d = {.out = stderr},
               .loss = NAN, .val_loss = NAN, .val_step = -1, .saved_step = -1};
  int rc = parse_flags(&t.a, t.prog, argc, argv, m);
  if (rc == GO_ON)
    rc = check_flags(&t.a, t.prog, m, &t.ls);
  if (rc != GO_ON)
    return rc;
  bool ok = setup(&t) && train_loop(&t) && finish(&t);
  if (!ok && (t.out_failed || t.log_failed))
    save_stopped(&t);
  return close_all(&t) && ok ? 0 : 1;
}
