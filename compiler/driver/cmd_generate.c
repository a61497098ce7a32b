// cmd_generate.c — `anec generate M.anet --weights CKPT.bin`: lowers the
// model, loads a llama2.c checkpoint into it, runs the compiled kernels on
// the reference backend over the whole sequence for every new token, and
// samples (greedy at temperature 0). Prints text, or ids with --print-ids.
#include "driver.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "Usage: anec generate [OPTIONS] MODEL.anet --weights CKPT.bin\n"
    "Generate tokens with a model and a llama2.c checkpoint, running the compiled\n"
    "ANE kernels on the reference backend.\n\n"
    "      --weights=FILE      llama2.c v0 checkpoint (required)\n"
    "      --prompt=TEXT       the prompt, encoded with --tokenizer\n"
    "      --ids=\"1 2 3\"       the prompt as token ids (default: BOS = 1)\n"
    "      --tokenizer=FILE    llama2.c tokenizer.bin (for --prompt and text output), or\n"
    "                          bytes: every id below 256 is that byte (byte-level models)\n"
    "      --max-tokens=N      tokens to generate (default 64; at most the model's seq)\n"
    "      --temperature=T     0 (default) is greedy; else sample from softmax(logits/T)\n"
    "      --top-p=P           nucleus sampling threshold (default 0.9; 1 = off)\n"
    "      --seed=N            sampling seed (default 42)\n"
    "      --print-ids         print the generated ids, space-separated, not text\n"
    "      --precision=P       fp16 (ANE numerics, default) or fp32\n"
    "      --target=NAME       m1, m4 (default), m5\n"
    "  -D NAME=VALUE           override a hyper-parameter of the model header\n"
    "  -h, --help              show this help and exit\n";

enum {
  OPT_WEIGHTS = OPT_FIRST_FREE, OPT_PROMPT, OPT_IDS, OPT_TOKENIZER, OPT_MAX, OPT_TEMP, OPT_TOPP,
  OPT_SEED, OPT_PRINT_IDS, OPT_PRECISION, OPT_TARGET
};

static const struct option long_opts[] = {
    {"help", no_argument, NULL, 'h'},
    {"weights", required_argument, NULL, OPT_WEIGHTS},
    {"prompt", required_argument, NULL, OPT_PROMPT},
    {"ids", required_argument, NULL, OPT_IDS},
    {"tokenizer", required_argument, NULL, OPT_TOKENIZER},
    {"max-tokens", required_argument, NULL, OPT_MAX},
    {"temperature", required_argument, NULL, OPT_TEMP},
    {"top-p", required_argument, NULL, OPT_TOPP},
    {"seed", required_argument, NULL, OPT_SEED},
    {"print-ids", no_argument, NULL, OPT_PRINT_IDS},
    {"precision", required_argument, NULL, OPT_PRECISION},
    {"target", required_argument, NULL, OPT_TARGET},
    {0, 0, 0, 0},
};

typedef struct GenArgs {
  CliFront c;
  const char *weights, *prompt, *ids, *tokenizer;
  long max_tokens;
  double temperature, topp;
  unsigned long long seed;
  bool print_ids;
  ExecPrecision prec;
  const TargetProfile *target;
} GenArgs;

static bool parse_number(const char *opt, const char *arg, double lo, double hi, double *out) {
  char *end;
  errno = 0;
  double v = strtod(arg, &end);
  if (errno || end == arg || *end || !(v >= lo && v <= hi)) {
    cli_usage_error("generate", "--%s expects a number in [%g, %g], got '%s'", opt, lo, hi, arg);
    return false;
  }
  *out = v;
  return true;
}

static bool parse_choice(GenArgs *g, int opt, const char *arg) {
  if (opt == OPT_PRECISION) {
    bool ok = !strcmp(arg, "fp16") || !strcmp(arg, "fp32");
    g->prec = !strcmp(arg, "fp32") ? EXEC_FP32 : EXEC_FP16;
    if (!ok)
      cli_usage_error("generate", "--precision: expected fp16 or fp32, got '%s'", arg);
    return ok;
  }
  return (g->target = cli_target("generate", arg)) != NULL;
}

static bool parse_opt(GenArgs *g, Diag *d, int opt, const char *arg) {
  double v;
  switch (opt) {
  case OPT_WEIGHTS: g->weights = arg; return true;
  case OPT_PROMPT: g->prompt = arg; return true;
  case OPT_IDS: g->ids = arg; return true;
  case OPT_TOKENIZER: g->tokenizer = arg; return true;
  case OPT_PRINT_IDS: g->print_ids = true; return true;
  case OPT_MAX:
    if (!parse_number("max-tokens", arg, 0, 1 << 20, &v))
      return false;
    g->max_tokens = (long)v;
    return true;
  case OPT_TEMP: return parse_number("temperature", arg, 0, 100, &g->temperature);
  case OPT_TOPP: return parse_number("top-p", arg, 0, 1, &g->topp);
  case OPT_SEED:
    if (!parse_number("seed", arg, 0, 1e18, &v))
      return false;
    g->seed = (unsigned long long)v;
    return true;
  case OPT_PRECISION: case OPT_TARGET: return parse_choice(g, opt, arg);
  default: return cli_front_option(&g->c, d, opt, arg);
  }
}

static int parse_args(GenArgs *g, Diag *d, int argc, char **argv) {
  int opt;
  optind = 1;
  opterr = 0;
  while ((opt = getopt_long(argc, argv, ":hD:", long_opts, NULL)) != -1) {
    if (opt == 'h') {
      fputs(usage, stdout);
      return -1;
    }
    if (opt == '?' || opt == ':') {
      cli_usage_error("generate", opt == ':' ? "option '%s' needs a value" : "unknown option '%s'",
                      argv[optind - 1]);
      return EXIT_USAGE;
    }
    if (!parse_opt(g, d, opt, optarg))
      return EXIT_USAGE;
  }
  if (!cli_positional(&g->c, argc, argv, optind, "generate"))
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
  for (long t = 0; ok && t < a->max_tokens && gen->n < gen->seq; t++) {
    for (int64_t i = 0; i < gen->seq; i++)
      gen->tokens[i] = i < gen->n ? (float)gen->ids[i] : 0.0f;
    ok = runner_run(gen->r, d);
    if (!ok)
      break;
    memcpy(row, gen->logits + (gen->n - 1) * gen->vocab, sizeof(float) * (size_t)gen->vocab);
    int id = sampler_sample(&s, row);
    emit_token(a, tok, gen->ids[gen->n - 1], id, t == 0);
    gen->ids[gen->n++] = id;
  }
  if (a->print_ids || tok || bytes_mode(a))
    putchar('\n');
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
  gen->r = runner_open(gen->g, ps, a->prec, d);
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
  GenArgs a = {.c = {.cmd = "generate"}, .max_tokens = 64, .topp = 0.9, .seed = 42,
               .prec = EXEC_FP16, .target = target_default()};
  int rc = parse_args(&a, &d, argc, argv);
  if (!rc)
    rc = run(&a, &d);
  diag_free(&d);
  return rc < 0 ? 0 : rc;
}
