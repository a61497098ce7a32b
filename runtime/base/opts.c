// opts.c — the command lines of anec's subcommands and of generated trainers:
// argv parsed against a table of options (OptSpec, base.h), each value
// stored where its row says, usage errors reported with the program's name
// and returned; and the --help printed from the same table.
#include "base.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

void opts_verror(const char *prog, const char *fmt, va_list ap) {
  fprintf(stderr, "%s: error: ", prog);
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\nTry '%s --help'.\n", prog);
}

void opts_error(const char *prog, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  opts_verror(prog, fmt, ap);
  va_end(ap);
}

// The row as it applies: an include's shared row with its overrides; *off
// (unless NULL) the offset of its destination.
static Opt opts_resolve(const Opt *row, size_t *off) {
  Opt r = *row;
  size_t sum = 0;
  for (; r.store == OPT_STORE_INCLUDE; row = row->use) {
    sum += row->off;
    Opt u = *row->use;
    u.letter = r.letter ? r.letter : u.letter;
    u.metavar = r.metavar ? r.metavar : u.metavar;
    u.help = r.help ? r.help : u.help;
    r = u;
  }
  if (off)
    *off = sum + r.off;
  return r;
}

//
// Storing a value
//

// A non-negative decimal integer (digits only) in [lo, hi].
static bool opts_uint(const char *s, double lo, double hi, uint64_t *out) {
  char *end;
  errno = 0;
  *out = isdigit((unsigned char)*s) ? strtoull(s, &end, 10) : 0;
  return isdigit((unsigned char)*s) && !errno && !*end && *out >= lo && *out <= hi;
}

static bool opts_real(const OptSpec *s, const Opt *o, double *p, const char *v) {
  char *end;
  double x = strtod(v, &end);
  if (end == v || *end || !(x >= o->lo && x < o->hi)) {
    opts_error(s->prog, "--%s: expected a number in [%g, %g), got '%s'", o->name, o->lo, o->hi,
               v);
    return false;
  }
  *p = x;
  return true;
}

// OPT_STORE_INT into an int64_t, OPT_STORE_U64 into a uint64_t.
static bool opts_int(const OptSpec *s, const Opt *o, void *p, const char *v) {
  bool u64 = o->store == OPT_STORE_U64;
  uint64_t u;
  if (!opts_uint(v, u64 ? 0 : o->lo, u64 ? 0x1p64 : o->hi, &u)) {
    if (u64)
      opts_error(s->prog, "--%s: expected a non-negative integer, got '%s'", o->name, v);
    else
      opts_error(s->prog, "--%s: expected an integer in [%.0f, %.0f], got '%s'", o->name, o->lo,
                 o->hi, v);
    return false;
  }
  if (u64)
    *(uint64_t *)p = u;
  else
    *(int64_t *)p = (int64_t)u;
  return true;
}

// One of the choices "a|b|c".
static bool opts_choice(const OptSpec *s, const Opt *o, void *p, const char *v) {
  size_t n = strlen(v);
  for (const char *c = o->metavar; n && (c = strstr(c, v)); c += n)
    if ((c == o->metavar || c[-1] == '|') && (c[n] == '|' || !c[n])) {
      *(const char **)p = v;
      return true;
    }
  opts_error(s->prog, "--%s: expected %s, got '%s'", o->name, o->metavar, v);
  return false;
}

static OptStatus opts_store(const OptSpec *s, const Opt *o, void *p, const char *v) {
  bool ok = true;
  switch (o->store) {
  case OPT_STORE_FN: ok = o->fn(s, o, p, v); break;
  case OPT_STORE_FLAG: *(bool *)p = true; break;
  case OPT_STORE_STR: *(const char **)p = v; break;
  case OPT_STORE_CHOICE: ok = opts_choice(s, o, p, v); break;
  case OPT_STORE_REAL: ok = opts_real(s, o, p, v); break;
  case OPT_STORE_HELP: opts_help(s, stdout); return OPT_STATUS_HELP;
  default: ok = opts_int(s, o, p, v);
  }
  return ok ? OPT_STATUS_OK : OPT_STATUS_ERROR;
}

//
// Parsing
//
typedef struct OptParse {
  const OptSpec *s;
  char *dst;
  int argc;
  char **argv;
  int next;  // the next argument to look at
  int first; // argv[first..next): the positional arguments so far
} OptParse;

// Moves argv[next], an option or its value, in front of the positional
// arguments so far.
static char *opts_take(OptParse *p) {
  char *a = p->argv[p->next];
  memmove(p->argv + p->first + 1, p->argv + p->first,
          sizeof *p->argv * (size_t)(p->next - p->first));
  p->argv[p->first++] = a;
  p->next++;
  return a;
}

// The row named by the n bytes at name: exact, else a unique prefix of one.
static const Opt *opts_find_long(const OptSpec *s, const char *name, size_t n) {
  const Opt *found = NULL;
  int prefixes = 0;
  for (int i = 0; i < s->nopts && n; i++) {
    Opt r = opts_resolve(&s->opts[i], NULL);
    if (!r.name || strncmp(r.name, name, n))
      continue;
    if (!r.name[n])
      return &s->opts[i];
    prefixes++;
    found = &s->opts[i];
  }
  return prefixes == 1 && !s->pass_unknown ? found : NULL;
}

static const Opt *opts_find_short(const OptSpec *s, char letter) {
  for (int i = 0; i < s->nopts; i++)
    if (opts_resolve(&s->opts[i], NULL).letter == letter)
      return &s->opts[i];
  return NULL;
}

// The value of an option that takes one: inline (after '=' or the letter),
// else the next argument; NULL when there is none.
static const char *opts_value(OptParse *p, const Opt *o, const char *inline_value) {
  if (inline_value)
    return inline_value;
  bool next = p->next < p->argc;
  if (o->arg == OPT_ARG_OPTIONAL)
    next = next && p->argv[p->next][0] != '-';
  return next ? opts_take(p) : NULL;
}

static OptStatus opts_apply(OptParse *p, const Opt *row, const char *v, const char *spelled) {
  size_t off;
  Opt o = opts_resolve(row, &off);
  if (o.arg == OPT_ARG_NONE && v) {
    opts_error(p->s->prog, "option '%s' takes no value", spelled);
    return OPT_STATUS_ERROR;
  }
  if (o.arg != OPT_ARG_NONE)
    v = opts_value(p, &o, v);
  if (o.arg == OPT_ARG_REQUIRED && !v) {
    opts_error(p->s->prog, "option '%s' needs a value", spelled);
    return OPT_STATUS_ERROR;
  }
  return opts_store(p->s, &o, p->dst + off, v);
}

// --name, --name=value, --name value
static OptStatus opts_long(OptParse *p) {
  const char *a = p->argv[p->next], *name = a + 2, *eq = strchr(name, '=');
  size_t n = eq ? (size_t)(eq - name) : strlen(name);
  const Opt *row = opts_find_long(p->s, name, n);
  if (!row && p->s->pass_unknown)
    return p->next++, OPT_STATUS_OK;
  if (!row) {
    opts_error(p->s->prog, "unknown option '%s'", a);
    return OPT_STATUS_ERROR;
  }
  opts_take(p);
  char spelled[80];
  snprintf(spelled, sizeof spelled, "--%s", opts_resolve(row, NULL).name);
  return opts_apply(p, row, eq ? eq + 1 : NULL, spelled);
}

// -x, -xVALUE, -x VALUE, -xy (letters without values together)
static OptStatus opts_short(OptParse *p) {
  const char *a = p->argv[p->next];
  if (!opts_find_short(p->s, a[1]) && p->s->pass_unknown)
    return p->next++, OPT_STATUS_OK;
  opts_take(p);
  for (const char *c = a + 1; *c; c++) {
    const Opt *row = opts_find_short(p->s, *c);
    char spelled[3] = {'-', *c, '\0'};
    if (!row) {
      opts_error(p->s->prog, "unknown option '%s'", spelled);
      return OPT_STATUS_ERROR;
    }
    bool valued = opts_resolve(row, NULL).arg != OPT_ARG_NONE;
    OptStatus st = opts_apply(p, row, valued && c[1] ? c + 1 : NULL, spelled);
    if (st != OPT_STATUS_OK || valued)
      return st;
  }
  return OPT_STATUS_OK;
}

OptStatus opts_parse(const OptSpec *s, void *dst, int argc, char **argv, int *first) {
  OptParse p = {s, dst, argc, argv, 1, 1};
  OptStatus st = OPT_STATUS_OK;
  while (st == OPT_STATUS_OK && p.next < argc) {
    const char *a = argv[p.next];
    if (!strcmp(a, "--") && !s->pass_unknown) {
      opts_take(&p);
      break;
    }
    if (a[0] != '-' || !a[1])
      p.next++;
    else
      st = a[1] == '-' ? opts_long(&p) : opts_short(&p);
  }
  *first = p.first;
  return st;
}

//
// The help
//

// "-x, --name=V", "-x V", "    --name=V"; stacked (no help column): "--name V".
static int opts_label(char *buf, size_t n, const Opt *o, bool stacked) {
  const char *meta = o->arg == OPT_ARG_NONE ? "" : o->metavar ? o->metavar : "VALUE";
  const char *sep = !*meta ? "" : stacked || !o->name ? " " : "=";
  bool brackets = o->arg == OPT_ARG_OPTIONAL && !stacked;
  int len = 0;
  if (o->letter)
    len = snprintf(buf, n, "-%c%s", o->letter, o->name ? ", " : "");
  else if (!stacked)
    len = snprintf(buf, n, "    ");
  if (o->name)
    len += snprintf(buf + len, n - (size_t)len, "--%s", o->name);
  return len + snprintf(buf + len, n - (size_t)len, "%s%s%s%s", brackets ? "[" : "", sep, meta,
                        brackets ? "]" : "");
}

static void opts_help_row(const OptSpec *s, const Opt *o, FILE *out) {
  char label[160];
  int len = opts_label(label, sizeof label, o, s->help_col == 0);
  int col = s->help_col ? s->help_col : 8;
  fprintf(out, "  %s", label);
  if (!s->help_col || len + 4 > col)
    fprintf(out, "\n%*s", col, "");
  else
    fprintf(out, "%*s", col - 2 - len, "");
  for (const char *h = o->help ? o->help : ""; *h;) {
    size_t n = strcspn(h, "\n");
    fprintf(out, "%.*s", (int)n, h);
    h += n;
    if (*h && *++h)
      fprintf(out, "\n%*s", col, "");
  }
  fputc('\n', out);
}

void opts_help(const OptSpec *s, FILE *out) {
  if (s->usage)
    fputs(s->usage, out);
  for (int i = 0; i < s->nopts; i++) {
    Opt o = opts_resolve(&s->opts[i], NULL);
    opts_help_row(s, &o, out);
  }
  if (s->footer)
    fputs(s->footer, out);
}
