// cmd_generate.c — `anec generate M.anet --weights CKPT.bin`: lowers the
// model, loads a llama2.c checkpoint into it, runs the compiled kernels on
// the reference backend over the whole sequence for every new token, and
// samples (greedy at temperature 0). Prints text, or ids with --print-ids.
#include "driver.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct GenArgs {
  CliFront c;
  const char *weights, *prompt, *ids, *tokenizer;
  long max_tokens;
  double temperature, topp;
  unsigned long long seed;
  bool print_ids;
  ExecPrecision prec;
  ExecOptions exec;
  const TargetProfile *target;
} GenArgs;

// A number in the row's [lo, hi].
static bool parse_number(const OptSpec *s, const Opt *o, const char *arg, double *out) {
  char *end;
  errno = 0;
  double v = strtod(arg, &end);
  if (errno || end == arg || *end || !(v >= o->lo && v <= o->hi)) {
    opts_error(s->prog, "--%s expects a number in [%g, %g], got '%s'", o->name, o->lo, o->hi,
               arg);
    return false;
  }
  *out = v;
  return true;
}

static bool set_real(const OptSpec *s, const Opt *o, void *dst, const char *arg) {
  return parse_number(s, o, arg, dst);
}

static bool set_long(const OptSpec *s, const Opt *o, void *dst, const char *arg) {
  double v;
  bool ok = parse_number(s, o, arg, &v);
  if (ok)
    *(long *)dst = (long)v;
  return ok;
}

static bool set_seed(const OptSpec *s, const Opt *o, void *dst, const char *arg) {
  double v;
  bool ok = parse_number(s, o, arg, &v);
  if (ok)
    *(unsigned long long *)dst = (unsigned long long)v;
  return ok;
}

static bool set_precision(const OptSpec *s, const Opt *o, void *dst, const char *arg) {
  (void)o;
  bool ok = !strcmp(arg, "fp16") || !strcmp(arg, "fp32");
  *(ExecPrecision *)dst = !strcmp(arg, "fp32") ? EXEC_FP32 : EXEC_FP16;
  if (!ok)
    opts_error(s->prog, "--precision: expected fp16 or fp32, got '%s'", arg);
  return ok;
}

#define AT(field) offsetof(GenArgs, field)
static const Opt opts[] = {
    {"weights", 0, OPT_ARG_REQUIRED, "FILE", "llama2.c v0 checkpoint (required)",
     .store = OPT_STORE_STR, .off = AT(weights)},
    {"prompt", 0, OPT_ARG_REQUIRED, "TEXT", "the prompt, encoded with --tokenizer",
     .store = OPT_STORE_STR, .off = AT(prompt)},
    {"ids", 0, OPT_ARG_REQUIRED, "\"1 2 3\"", "the prompt as token ids (default: BOS = 1)",
     .store = OPT_STORE_STR, .off = AT(ids)},
    {"tokenizer", 0, OPT_ARG_REQUIRED, "FILE",
     "llama2.c tokenizer.bin (for --prompt and text output), or\n"
     "bytes: every id below 256 is that byte (byte-level models)",
     .store = OPT_STORE_STR, .off = AT(tokenizer)},
    {"max-tokens", 0, OPT_ARG_REQUIRED, "N",
     "tokens to generate (default 64; at most the model's seq)",
     .store = OPT_STORE_FN, .off = AT(max_tokens), .lo = 0, .hi = 1 << 20, .fn = set_long},
    {"temperature", 0, OPT_ARG_REQUIRED, "T",
     "0 (default) is greedy; else sample from softmax(logits/T)",
     .store = OPT_STORE_FN, .off = AT(temperature), .lo = 0, .hi = 100, .fn = set_real},
    {"top-p", 0, OPT_ARG_REQUIRED, "P", "nucleus sampling threshold (default 0.9; 1 = off)",
     .store = OPT_STORE_FN, .off = AT(topp), .lo = 0, .hi = 1, .fn = set_real},
    {"seed", 0, OPT_ARG_REQUIRED, "N", "sampling seed (default 42)",
     .store = OPT_STORE_FN, .off = AT(seed), .lo = 0, .hi = 1e18, .fn = set_seed},
    {"print-ids", 0, OPT_ARG_NONE, NULL, "print the generated ids, space-separated, not text",
     .store = OPT_STORE_FLAG, .off = AT(print_ids)},
    {"precision", 0, OPT_ARG_REQUIRED, "P", "fp16 (ANE numerics, default) or fp32",
     .store = OPT_STORE_FN, .off = AT(prec), .fn = set_precision},
    {CLI_USE(CLI_OPT_ANE_QUIRKS, AT(exec))},
    {CLI_USE(CLI_OPT_TARGET, AT(target)), .help = "m1, m3, m4 (default), m5"},
    {CLI_USE(CLI_OPT_NO_CHECK, AT(c))},
    {CLI_USE(CLI_OPT_DEFINE, AT(c))},
    {CLI_USE(CLI_OPT_HELP, 0)},
};

static const OptSpec spec = {
    .prog = "anec generate",
    .opts = opts,
    .nopts = sizeof opts / sizeof *opts,
    .help_col = CLI_HELP_COL,
    .usage = "Usage: anec generate [OPTIONS] MODEL.anet --weights CKPT.bin\n"
             "Generate tokens with a model and a llama2.c checkpoint, running the compiled\n"
             "ANE kernels on the reference backend.\n\n",
};

// 0 to go on, -1 after --help, else the exit code to return.
static int parse_args(GenArgs *g, int argc, char **argv) {
  int first, rc = cli_parse(&spec, g, argc, argv, &first);
  if (rc)
    return rc;
  if (!cli_quirks_fit(spec.prog, &g->exec, g->prec))
    return EXIT_USAGE;
  if (!cli_positional(&g->c, argc, argv, first, "generate"))
    return EXIT_USAGE;
  if (!g->weights || (g->prompt && g->ids) || (g->prompt && !g->tokenizer)) {
    cli_usage_error("generate", !g->weights ? "--weights=CKPT.bin is required"
                                : g->ids    ? "give --prompt or --ids, not both"
                                            : "--prompt needs --tokenizer");
    return EXIT_USAGE;
  }
  return 0;
}

//
// Generation
//
typedef struct Gen {
  Graph *g;
  Runner *r;
  float *tokens;          // the runner's input buffer [seq]
  const float *logits;    // [seq, vocab]
  int64_t seq, vocab;
  int *ids;
  int n;
} Gen;

// The INPUT that an embed reads: the model's token ids.
static const Node *token_input(const Graph *g) {
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i]->op == OP_EMBED && g->nodes[i]->in[1]->op == OP_INPUT)
      return g->nodes[i]->in[1];
  return NULL;
}

static bool parse_ids(const char *text, const char *opt, int *ids, int *n, int cap, int64_t vocab) {
  for (const char *p = text; *p;) {
    char *end;
    long v = strtol(p, &end, 10);
    if (end == p || v < 0 || v >= vocab || *n == cap) {
      fprintf(stderr, "anec generate: error: %s: '%s' is not a list of at most %d ids in [0, %lld)\n",
              opt, text, cap, (long long)vocab);
      return false;
    }
    ids[(*n)++] = (int)v;
    p = end + strspn(end, " ,\t");
  }
  return true;
}

static bool bytes_mode(const GenArgs *a) {
  return a->tokenizer && !strcmp(a->tokenizer, "bytes");
}

static bool prompt_ids(Gen *gen, const GenArgs *a, const Tokenizer *tok) {
  if (a->prompt && bytes_mode(a)) {
    for (const char *p = a->prompt; *p && gen->n < gen->seq; p++)
      gen->ids[gen->n++] = (unsigned char)*p;
    return gen->n > 0;
  }
  if (a->prompt) {
    int *tmp = malloc(sizeof(int) * (strlen(a->prompt) + 3));
    int n = tmp ? tok_encode(tok, a->prompt, true, false, tmp) : 0;
    for (int i = 0; i < n && gen->n < gen->seq; i++)
      gen->ids[gen->n++] = tmp[i];
    free(tmp);
    return n > 0;
  }
  if (a->ids)
    return parse_ids(a->ids, "--ids", gen->ids, &gen->n, (int)gen->seq, gen->vocab);
  gen->ids[gen->n++] = 1; // BOS
  return true;
}

static void emit_token(const GenArgs *a, const Tokenizer *tok, int prev, int id, bool first) {
  if (a->print_ids)
    printf("%s%d", first ? "" : " ", id);
  else if (bytes_mode(a))
    putchar(id < 256 ? id : '?');
  else if (tok)
    fputs(tok_decode(tok, prev, id), stdout);
  fflush(stdout);
}

static bool generate(Gen *gen, const GenArgs *a, const Tokenizer *tok, Diag *d) {
  Sampler s;
  sampler_init(&s, (int)gen->vocab, (float)a->temperature, (float)a->topp, a->seed);
  float *row = malloc(sizeof(float) * (size_t)gen->vocab);
  bool ok = row != NULL;
  long t = 0;
  for (; ok && t < a->max_tokens && gen->n < gen->seq; t++) {
    for (int64_t i = 0; i < gen->seq; i++)
      gen->tokens[i] = i < gen->n ? (float)gen->ids[i] : 0.0f;
    ok = runner_run(gen->r, d);
    if (!ok)
      break;
    memcpy(row, gen->logits + (gen->n - 1) * gen->vocab, sizeof(float) * (size_t)gen->vocab);
    int id = sampler_sample(&s, row);
    if (id < 0) {
      diag_error(d, loc_none(), "the logits after token %d are not finite (NaN or inf): the "
                 "weights overflow the %s computation; nothing sampled", gen->n,
                 a->prec == EXEC_FP16 ? "fp16" : "fp32");
      ok = false;
      break;
    }
    emit_token(a, tok, gen->ids[gen->n - 1], id, t == 0);
    gen->ids[gen->n++] = id;
  }
  if (a->print_ids || tok || bytes_mode(a))
    putchar('\n');
  if (ok && t < a->max_tokens)
    diag_warning(d, loc_none(), "stopped after %ld of %ld tokens: the model's context of %lld "
                 "tokens is full", t, a->max_tokens, (long long)gen->seq);
  free(row);
  sampler_free(&s);
  return ok;
}

static bool setup(Gen *gen, Arena *ar, const GenArgs *a, L2cCheckpoint *ck, Diag *d) {
  ParamSet *ps = arena_alloc(ar, sizeof *ps);
  params_init(ps, ar);
  const Node *in = token_input(gen->g);
  if (!in || gen->g->noutputs < 1) {
    diag_error(d, loc_none(), "model '%s' has no token input read by embed, or no output",
               gen->g->model);
    return false;
  }
  if (!params_load_l2c(ps, gen->g, ck, a->weights, d))
    return false;
  gen->seq = in->shape.dims[0];
  gen->vocab = ck->cfg.vocab;
  gen->r = runner_open_opts(gen->g, ps, a->prec, &a->exec, d);
  if (!gen->r)
    return false;
  gen->tokens = runner_input(gen->r, in->name);
  gen->logits = runner_output(gen->r, gen->g->output_names[0]);
  gen->ids = arena_alloc(ar, sizeof(int) * (size_t)(gen->seq + 1));
  return gen->tokens && gen->logits;
}

static int run(const GenArgs *a, Diag *d) {
  Arena ar = {0};
  L2cCheckpoint ck = {0};
  Tokenizer tok = {0};
  RtDiag rd = {.out = stderr};
  Gen gen = {0};
  gen.g = front_compile(&ar, d, a->c.model, &a->c.front);
  bool ok = gen.g && lowering_run(gen.g, d, a->target, &a->c.front.pipe) &&
            l2c_read(a->weights, &ck, &rd) && setup(&gen, &ar, a, &ck, d);
  bool text = a->tokenizer && !bytes_mode(a);
  ok = ok && (!text || tok_load(a->tokenizer, ck.cfg.vocab, &tok, &rd));
  ok = ok && prompt_ids(&gen, a, text ? &tok : NULL);
  ok = ok && generate(&gen, a, text ? &tok : NULL, d);
  runner_close(gen.r);
  if (text)
    tok_free(&tok);
  l2c_free(&ck);
  arena_free(&ar);
  return ok ? 0 : EXIT_USER;
}

int cmd_generate(int argc, char **argv) {
  Diag d;
  diag_init(&d, stderr);
  GenArgs a = {.c = {.diag = &d}, .max_tokens = 64, .topp = 0.9, .seed = 42,
               .prec = EXEC_FP16, .target = target_default()};
  int rc = parse_args(&a, argc, argv);
  if (!rc)
    rc = run(&a, &d);
  diag_free(&d);
  return rc < 0 ? 0 : rc;
}
