// mil_read.c — reads MIL text into a MilProgram: a hand-written lexer and a
// recursive-descent parser that resolves names, checks every literal against
// its type and every known op's parameters against its signature (mil_ops.c).
// Errors are located in the text; a syntax error in a statement skips to the
// next ';', anywhere else it ends the reading.
#include "mil.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum {
  MAX_DEPTH = 64,          // nesting of types, literals and tuple bindings
  MAX_NUMBER = 400,        // longest number token, in bytes
  MAX_FILE = 1 << 30,      // largest .mil file read
};

//
// Lexer
//

typedef enum { TK_IDENT, TK_NUM, TK_STR, TK_PUNCT, TK_EOF, TK_ERROR } TokKind;

typedef struct Token {
  TokKind kind;
  const char *s; // its bytes in the text (TK_ERROR: the offending ones)
  int len;
  int line, col;
  const char *msg; // TK_ERROR: what is wrong
} Token;

typedef struct Lexer {
  Arena *a;
  const char *p, *end, *line_start;
  int line;
  int last_line, last_col; // the last byte of the last token, for TK_EOF
} Lexer;

static bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

static bool is_xdigit(char c) {
  return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

static bool is_ident_char(char c) {
  return is_alpha(c) || is_digit(c) || c == '@';
}

static Token lex_token(Lexer *L, TokKind kind, const char *s, int len) {
  Token t = {kind, s, len, L->line, (int)(s - L->line_start) + 1, NULL};
  L->last_line = t.line;
  L->last_col = t.col + (len > 0 ? len - 1 : 0);
  return t;
}

static Token lex_error(Lexer *L, const char *s, int len, const char *msg) {
  Token t = lex_token(L, TK_ERROR, s, len);
  t.msg = msg;
  return t;
}

static void skip_space(Lexer *L) {
  for (; L->p < L->end; L->p++) {
    if (*L->p == '\n') {
      L->line++;
      L->line_start = L->p + 1;
    } else if (!strchr(" \t\r\f\v", *L->p) || !*L->p) {
      return;
    }
  }
}

// Whether the word w (not followed by an identifier character) is at p.
static bool word_at(const char *p, const char *end, const char *w) {
  size_t n = strlen(w);
  return (size_t)(end - p) >= n && !memcmp(p, w, n) && (p + n == end || !is_ident_char(p[n]));
}

static const char *skip_digits(const char *p, const char *end, bool hex) {
  while (p < end && (hex ? is_xdigit(*p) : is_digit(*p)))
    p++;
  return p;
}

// The end of the number at p: -?(inf|nan|0x H[.H][p[+-]D]|D[.D][e[+-]D]).
static const char *scan_number(const char *p, const char *end) {
  if (*p == '-')
    p++;
  if (word_at(p, end, "inf") || word_at(p, end, "nan"))
    return p + 3;
  bool hex = end - p > 2 && p[0] == '0' && (p[1] | 0x20) == 'x';
  p = skip_digits(hex ? p + 2 : p, end, hex);
  if (p < end && *p == '.')
    p = skip_digits(p + 1, end, hex);
  if (p < end && (*p | 0x20) == (hex ? 'p' : 'e')) {
    const char *q = p + 1;
    if (q < end && (*q == '+' || *q == '-'))
      q++;
    if (q < end && is_digit(*q))
      p = skip_digits(q, end, false);
  }
  return p;
}

static Token lex_number(Lexer *L) {
  const char *s = L->p, *e = scan_number(s, L->end);
  bool bad = e < L->end && (is_ident_char(*e) || *e == '.');
  while (bad && e < L->end && (is_ident_char(*e) || *e == '.' || *e == '+' || *e == '-'))
    e++;
  L->p = e;
  if (bad)
    return lex_error(L, s, (int)(e - s), "malformed number");
  return lex_token(L, TK_NUM, s, (int)(e - s));
}

// Length of the escape sequence at p (p[0] == '\\'), 0 if invalid. A NUL
// escape is invalid: strings are C strings in memory.
static int escape_len(const char *p, const char *end) {
  if (end - p < 2)
    return 0;
  if (strchr("\\\"'ntrabfv", p[1]) && p[1])
    return 2;
  if (p[1] == 'x' && end - p >= 4 && is_xdigit(p[2]) && is_xdigit(p[3]) &&
      (p[2] != '0' || p[3] != '0'))
    return 4;
  return 0;
}

// Length of the string character at p, 0 if it cannot be one; *msg says why.
static int string_char_len(const char *p, const char *end, const char **msg) {
  if (*p == '\\') {
    *msg = "invalid escape sequence in string";
    return escape_len(p, end);
  }
  if (*p == '\0' || ((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f) {
    *msg = "control character in string";
    return 0;
  }
  *msg = "invalid UTF-8 in string";
  return utf8_decode(p, (size_t)(end - p), NULL);
}

static Token lex_string(Lexer *L) {
  const char *s = L->p, *q = s + 1, *bad = NULL, *why = NULL;
  int badlen = 0;
  while (q < L->end && *q != '"' && *q != '\n' && !(*q == '\\' && q + 1 < L->end && q[1] == '\n')) {
    const char *msg;
    int n = string_char_len(q, L->end, &msg);
    if (n == 0 && !bad) {
      bad = q;
      badlen = *q == '\\' && q + 1 < L->end ? 2 : 1;
      why = msg;
    }
    q += n ? n : 1;
  }
  if (q >= L->end || *q != '"') {
    L->p = q;
    return lex_error(L, s, (int)(q - s), "unterminated string");
  }
  L->p = q + 1;
  if (bad)
    return lex_error(L, bad, badlen, why);
  return lex_token(L, TK_STR, s, (int)(L->p - s));
}

// A byte no token starts with.
static Token lex_stray(Lexer *L) {
  const char *s = L->p;
  uint32_t c;
  int n = utf8_decode(s, (size_t)(L->end - s), &c);
  L->p += n ? n : 1;
  if (n == 0)
    return lex_error(L, s, 1, arena_printf(L->a, "invalid UTF-8 byte 0x%02X", (unsigned char)*s));
  if (c == 0)
    return lex_error(L, s, 1, "unexpected NUL byte");
  if (c < 0x20 || c == 0x7f)
    return lex_error(L, s, 1, arena_printf(L->a, "unexpected control character 0x%02X", c));
  return lex_error(L, s, n, arena_printf(L->a, "unexpected character '%.*s'", n, s));
}

// After a '-': whether a negative number goes on (digits, inf or nan).
static bool number_follows(const char *p, const char *end) {
  return p < end && (is_digit(*p) || word_at(p, end, "inf") || word_at(p, end, "nan"));
}

static Token lex(Lexer *L) {
  skip_space(L);
  if (L->p >= L->end) {
    Token t = {TK_EOF, L->end, 0, L->last_line, L->last_col + 1, NULL};
    return t;
  }
  const char *s = L->p;
  if (is_alpha(*s)) {
    while (L->p < L->end && is_ident_char(*L->p))
      L->p++;
    return lex_token(L, TK_IDENT, s, (int)(L->p - s));
  }
  if (is_digit(*s) || (*s == '-' && number_follows(s + 1, L->end)))
    return lex_number(L);
  if (*s == '"')
    return lex_string(L);
  if (*s == '-' && L->end - s > 1 && s[1] == '>') {
    L->p += 2;
    return lex_token(L, TK_PUNCT, s, 2);
  }
  if (*s && strchr("()[]{}<>,=;?", *s)) {
    L->p++;
    return lex_token(L, TK_PUNCT, s, 1);
  }
  return lex_stray(L);
}

//
// Parser state and helpers
//

typedef struct Parser {
  MilProgram *p;
  Arena *a;
  RtDiag *d;
  Lexer lx;
  Token tok, prev, next; // the current, the last consumed and the peeked token
  bool has_next;
  int depth;
  bool verbose;          // program(1.0) spelling in messages
  int fn;                // the function being read: index into p->funcs
  int *slots;            // its names: open addressing, var index + 1
  int nslots, nnames;
  bool cascade;          // a syntax error in this function: quiet undefined names
} Parser;

static void advance(Parser *P) {
  P->prev = P->tok;
  if (P->has_next) {
    P->tok = P->next;
    P->has_next = false;
  } else if (P->tok.kind != TK_EOF) {
    P->tok = lex(&P->lx);
  }
}

static Token *peek(Parser *P) {
  if (!P->has_next) {
    P->next = P->tok.kind == TK_EOF ? P->tok : lex(&P->lx);
    P->has_next = true;
  }
  return &P->next;
}

static bool tok_text_is(const Token *t, const char *text) {
  return (size_t)t->len == strlen(text) && !memcmp(t->s, text, (size_t)t->len);
}

static bool tok_is(const Token *t, const char *punct) {
  return t->kind == TK_PUNCT && tok_text_is(t, punct);
}

static bool tok_word(const Token *t, const char *w) {
  return t->kind == TK_IDENT && tok_text_is(t, w);
}

static bool is(Parser *P, const char *punct) {
  return tok_is(&P->tok, punct);
}

static bool accept(Parser *P, const char *punct) {
  if (!is(P, punct))
    return false;
  advance(P);
  return true;
}

static MilLoc tok_loc(const Token *t) {
  int last = t->col + (t->len > 0 ? t->len - 1 : 0);
  return (MilLoc){t->line, t->col, t->line, last};
}

// From the start of `first` to the end of the last consumed token.
static MilLoc loc_from(Parser *P, const Token *first) {
  MilLoc a = tok_loc(first), b = tok_loc(&P->prev);
  a.last_line = b.last_line;
  a.last_col = b.last_col;
  return a;
}

static char *tok_str(Parser *P, const Token *t) {
  return arena_strndup(P->a, t->s, (size_t)t->len);
}

static void err_at(Parser *P, MilLoc loc, const char *fmt, ...) ANERT_PRINTF(3, 4);
static void err_at(Parser *P, MilLoc loc, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  mil_error_at(P->d, P->p, loc, "%s", msg);
}

// How much of a token an error message quotes: 40 bytes, not cutting a
// UTF-8 character (string tokens may hold any).
static int shown_len(const Token *t) {
  int n = t->len > 40 ? 40 : t->len;
  while (n < t->len && n > 0 && ((unsigned char)t->s[n] & 0xC0) == 0x80)
    n--;
  return n;
}

// A syntax error at the current token: what was expected and what is there,
// or the lexer's complaint if the token is a malformed one.
static bool expected(Parser *P, const char *what) {
  Token *t = &P->tok;
  if (t->kind == TK_ERROR)
    err_at(P, tok_loc(t), "%s", t->msg);
  else if (t->kind == TK_EOF)
    err_at(P, tok_loc(t), "expected %s, found end of file", what);
  else
    err_at(P, tok_loc(t), "expected %s, found '%.*s'%s", what, shown_len(t), t->s,
           shown_len(t) < t->len ? "..." : "");
  return false;
}

static bool expect(Parser *P, const char *punct) {
  if (accept(P, punct))
    return true;
  char what[8];
  snprintf(what, sizeof what, "'%s'", punct);
  return expected(P, what);
}

// The ',' between items of a list that `close` ends.
static bool expect_sep(Parser *P, const char *close) {
  if (accept(P, ","))
    return true;
  char what[16];
  snprintf(what, sizeof what, "',' or '%s'", close);
  return expected(P, what);
}

static bool enter(Parser *P) {
  if (P->depth >= MAX_DEPTH) {
    err_at(P, tok_loc(&P->tok), "nesting too deep (more than %d levels)", MAX_DEPTH);
    return false;
  }
  P->depth++;
  return true;
}

// Room for element n of an array that only grows by one: its capacity is
// implied by n (4, then powers of two).
static void *vec_push(Arena *a, void *arr, int64_t n, size_t size) {
  if (n == 0)
    return arena_alloc(a, 4 * size);
  if (n < 4 || (n & (n - 1)))
    return arr;
  return arena_grow(a, arr, (size_t)n * size, 2 * (size_t)n * size);
}

static MilFunc *cur_fn(Parser *P) {
  return &P->p->funcs[P->fn];
}

//
// Names of the current function
//

static uint32_t hash_str(const char *s) {
  uint32_t h = 2166136261u;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

static void names_reset(Parser *P) {
  P->nslots = 64;
  P->nnames = 0;
  P->slots = arena_alloc(P->a, sizeof(int) * (size_t)P->nslots);
}

// The slot for name: the one holding it, or the empty one where it goes.
static int *names_slot(Parser *P, const char *name) {
  const MilFunc *f = cur_fn(P);
  uint32_t mask = (uint32_t)P->nslots - 1;
  for (uint32_t i = hash_str(name) & mask;; i = (i + 1) & mask) {
    int *s = &P->slots[i];
    if (*s == 0 || !strcmp(f->vars[*s - 1].name, name))
      return s;
  }
}

static int names_find(Parser *P, const char *name) {
  return *names_slot(P, name) - 1;
}

static void names_add(Parser *P, int var) {
  if (2 * (P->nnames + 1) > P->nslots) {
    int *old = P->slots, n = P->nslots;
    P->nslots *= 2;
    P->slots = arena_alloc(P->a, sizeof(int) * (size_t)P->nslots);
    for (int i = 0; i < n; i++)
      if (old[i])
        *names_slot(P, cur_fn(P)->vars[old[i] - 1].name) = old[i];
  }
  *names_slot(P, cur_fn(P)->vars[var].name) = var + 1;
  P->nnames++;
}

// Adds a value of the current function; a second definition of a name is an
// error (the first one stays visible).
static int define_var(Parser *P, const Token *name, MilType *type, int op) {
  MilFunc *f = cur_fn(P);
  char *s = tok_str(P, name);
  int prev = names_find(P, s);
  if (prev >= 0)
    err_at(P, tok_loc(name), "redefinition of '%s' (previous definition at %d:%d)", s,
           f->vars[prev].loc.line, f->vars[prev].loc.col);
  f->vars = vec_push(P->a, f->vars, f->nvars, sizeof(MilVar));
  f->vars[f->nvars] = (MilVar){s, type, op, tok_loc(name)};
  if (prev < 0)
    names_add(P, f->nvars);
  return f->nvars++;
}

//
// Types
//

static MilType *new_type(Parser *P, MilTypeKind kind) {
  MilType *t = arena_alloc(P->a, sizeof(MilType));
  t->kind = kind;
  return t;
}

static char *type_str(Parser *P, const MilType *t) {
  return mil_type_str(P->a, t, P->verbose);
}

// A dimension or a list length: a non-negative integer or '?'.
static bool parse_extent(Parser *P, int64_t *out) {
  if (accept(P, "?")) {
    *out = MIL_ANY;
    return true;
  }
  Token *t = &P->tok;
  if (t->kind != TK_NUM || t->len > 15 || (int)strspn(t->s, "0123456789") < t->len)
    return expected(P, "a dimension (an integer or '?')");
  *out = 0;
  for (int i = 0; i < t->len; i++)
    *out = 10 * *out + (t->s[i] - '0');
  advance(P);
  return true;
}

static bool parse_dtype(Parser *P, MilDType *dt) {
  if (P->tok.kind != TK_IDENT)
    return expected(P, "a dtype");
  char *name = tok_str(P, &P->tok);
  int t = mil_dtype_lookup(name);
  if (t < 0) {
    err_at(P, tok_loc(&P->tok), "unknown dtype '%s'", name);
    return false;
  }
  *dt = (MilDType)t;
  advance(P);
  return true;
}

// tensor<DT, [d0, d1, ...]> after `tensor`
static MilType *parse_tensor_type(Parser *P) {
  MilType *t = new_type(P, MIL_T_TENSOR);
  if (!expect(P, "<") || !parse_dtype(P, &t->dtype) || !expect(P, ",") || !expect(P, "["))
    return NULL;
  while (!accept(P, "]")) {
    if (t->rank > 0 && !expect_sep(P, "]"))
      return NULL;
    if (t->rank == MIL_MAX_RANK) {
      err_at(P, tok_loc(&P->tok), "tensor rank exceeds the maximum of %d", MIL_MAX_RANK);
      return NULL;
    }
    if (!parse_extent(P, &t->dims[t->rank++]))
      return NULL;
  }
  return expect(P, ">") ? t : NULL;
}

static MilType *parse_type(Parser *P);

// list<T, N|?>, tuple<T, ...>, dict<K, V> or state<T>, after the keyword
static MilType *parse_compound_type(Parser *P, MilTypeKind kind) {
  MilType *t = new_type(P, kind);
  if (!expect(P, "<"))
    return NULL;
  if (kind == MIL_T_TUPLE) {
    while (!is(P, ">")) {
      if (t->nitems > 0 && !expect_sep(P, ">"))
        return NULL;
      t->items = vec_push(P->a, t->items, t->nitems, sizeof(MilType *));
      if (!(t->items[t->nitems++] = parse_type(P)))
        return NULL;
    }
  } else if (kind == MIL_T_DICT) {
    if (!(t->key = parse_type(P)) || !expect(P, ",") || !(t->elem = parse_type(P)))
      return NULL;
  } else if (!(t->elem = parse_type(P))) {
    return NULL;
  }
  if (kind == MIL_T_LIST && (!expect(P, ",") || !parse_extent(P, &t->length)))
    return NULL;
  return expect(P, ">") ? t : NULL;
}

// The dtype an identifier names, or -1.
static int tok_dtype(const Token *t) {
  char name[16];
  if (t->kind != TK_IDENT || t->len >= (int)sizeof name)
    return -1;
  memcpy(name, t->s, (size_t)t->len);
  name[t->len] = '\0';
  return mil_dtype_lookup(name);
}

static MilType *parse_type1(Parser *P) {
  static const char *const kinds[] = {"list", "tuple", "dict", "state"};
  static const MilTypeKind kind_of[] = {MIL_T_LIST, MIL_T_TUPLE, MIL_T_DICT, MIL_T_STATE};
  Token t = P->tok;
  if (t.kind != TK_IDENT) {
    expected(P, "a type");
    return NULL;
  }
  int dt = tok_dtype(&t);
  advance(P);
  if (dt >= 0) {
    MilType *s = new_type(P, MIL_T_TENSOR);
    s->dtype = (MilDType)dt;
    return s;
  }
  if (tok_word(&t, "tensor"))
    return parse_tensor_type(P);
  for (int i = 0; i < 4; i++)
    if (tok_word(&t, kinds[i]))
      return parse_compound_type(P, kind_of[i]);
  err_at(P, tok_loc(&t), "unknown type '%.*s'", t.len, t.s);
  return NULL;
}

static MilType *parse_type(Parser *P) {
  if (!enter(P))
    return NULL;
  MilType *t = parse_type1(P);
  P->depth--;
  return t;
}

// Whether the current identifier starts a type: a dtype or a type keyword.
static bool at_type(Parser *P) {
  static const char *const words[] = {"tensor", "list", "tuple", "dict", "state"};
  if (P->tok.kind != TK_IDENT)
    return false;
  for (int i = 0; i < 5; i++)
    if (tok_word(&P->tok, words[i]))
      return true;
  return tok_dtype(&P->tok) >= 0;
}

// Whether a typed literal starts here: TYPE( or TYPE<.
static bool at_literal(Parser *P) {
  return at_type(P) && (tok_is(peek(P), "(") || tok_is(peek(P), "<"));
}

//
// Scalars of tensor literals
//

typedef struct Num {
  bool is_int, neg;
  uint64_t mag; // is_int: the magnitude
  double f;     // !is_int: the value
} Num;

static bool num_decode_int(const char *s, bool hex, uint64_t *mag) {
  uint64_t v = 0;
  for (; *s; s++) {
    unsigned d = is_digit(*s) ? (unsigned)(*s - '0') : (unsigned)((*s | 0x20) - 'a' + 10);
    unsigned base = hex ? 16 : 10;
    if (v > (UINT64_MAX - d) / base)
      return false;
    v = v * base + d;
  }
  *mag = v;
  return true;
}

// The number token t; false with an error if it is not one.
static bool num_decode(Parser *P, const Token *t, Num *n) {
  char buf[MAX_NUMBER + 1];
  if (t->len > MAX_NUMBER) {
    err_at(P, tok_loc(t), "number too long");
    return false;
  }
  memcpy(buf, t->s, (size_t)t->len);
  buf[t->len] = '\0';
  n->neg = buf[0] == '-';
  char *body = buf + n->neg;
  bool hex = (body[1] | 0x20) == 'x' && body[0] == '0';
  n->is_int = !strpbrk(body, hex ? ".pP" : ".eEn");
  if (n->is_int && hex && !body[2]) {
    err_at(P, tok_loc(t), "malformed number '%s'", buf);
    return false;
  }
  if (n->is_int) {
    if (num_decode_int(hex ? body + 2 : body, hex, &n->mag))
      return true;
    err_at(P, tok_loc(t), "integer '%s' is too large", buf);
    return false;
  }
  char *end;
  n->f = !strcmp(body, "nan") ? (n->neg ? -NAN : NAN) : strtod(buf, &end);
  if (!strcmp(body, "nan") || end == buf + t->len)
    return true;
  err_at(P, tok_loc(t), "malformed number '%s'", buf);
  return false;
}

// A number for the current token, which may be the word inf or nan.
static bool take_num(Parser *P, Num *n, const char *dtype, bool want_int) {
  Token t = P->tok;
  if (t.kind == TK_IDENT && (tok_word(&t, "inf") || tok_word(&t, "nan"))) {
    *n = (Num){false, false, 0, tok_word(&t, "inf") ? INFINITY : NAN};
  } else if (t.kind != TK_NUM) {
    char what[40];
    snprintf(what, sizeof what, "%s (%s)", want_int ? "an integer" : "a number", dtype);
    return expected(P, what);
  } else if (!num_decode(P, &t, n)) {
    return false;
  }
  advance(P);
  return true;
}

static bool parse_float_elem(Parser *P, MilDType dt, double *out) {
  Token t = P->tok;
  Num n;
  if (!take_num(P, &n, mil_dtype_name(dt), false))
    return false;
  double x = n.is_int ? (n.neg ? -(double)n.mag : (double)n.mag) : n.f;
  bool inf_text = t.len >= 3 && !memcmp(t.s + t.len - 3, "inf", 3);
  if (!mil_float_round(dt, x, out) || (isinf(x) && !inf_text)) {
    err_at(P, tok_loc(&t), "value '%.*s' is out of range for %s", t.len, t.s, mil_dtype_name(dt));
    return false;
  }
  return true;
}

static int64_t u64_to_i64(uint64_t u) {
  int64_t i;
  memcpy(&i, &u, sizeof i);
  return i;
}

static bool parse_int_elem(Parser *P, MilDType dt, int64_t *out) {
  Token t = P->tok;
  Num n;
  if (!take_num(P, &n, mil_dtype_name(dt), true))
    return false;
  if (!n.is_int) {
    err_at(P, tok_loc(&t), "floating-point value '%.*s' in %s %s literal", t.len, t.s,
           dt >= MIL_UINT1 ? "a" : "an", mil_dtype_name(dt));
    return false;
  }
  int64_t lo;
  uint64_t hi;
  mil_dtype_int_range(dt, &lo, &hi);
  uint64_t neg_max = lo < 0 ? (uint64_t)(-(lo + 1)) + 1 : 0;
  if (n.neg ? n.mag > neg_max : n.mag > hi) {
    err_at(P, tok_loc(&t), "value '%.*s' is out of range for %s", t.len, t.s, mil_dtype_name(dt));
    return false;
  }
  *out = n.neg ? u64_to_i64(0 - n.mag) : u64_to_i64(n.mag);
  return true;
}

static bool parse_bool_elem(Parser *P, int64_t *out) {
  if (!tok_word(&P->tok, "true") && !tok_word(&P->tok, "false"))
    return expected(P, "true or false (bool)");
  *out = tok_word(&P->tok, "true");
  advance(P);
  return true;
}

static char escape_char(char c) {
  static const char from[] = "ntrabfv", to[] = "\n\t\r\a\b\f\v";
  const char *p = strchr(from, c);
  return p ? to[p - from] : c;
}

// The contents of a string token (checked by the lexer) with escapes decoded.
static char *string_decode(Parser *P, const Token *t) {
  char *s = arena_alloc(P->a, (size_t)t->len), *o = s;
  for (const char *p = t->s + 1; p < t->s + t->len - 1; p++) {
    if (*p != '\\') {
      *o++ = *p;
    } else if (p[1] == 'x') {
      *o++ = (char)strtol((char[]){p[2], p[3], '\0'}, NULL, 16);
      p += 3;
    } else {
      *o++ = escape_char(*++p);
    }
  }
  return s;
}

static bool parse_string_elem(Parser *P, char **out) {
  if (P->tok.kind != TK_STR)
    return expected(P, "a string");
  *out = string_decode(P, &P->tok);
  advance(P);
  return true;
}

// Appends one element, as the tensor value's dtype says, to v.
static bool parse_scalar(Parser *P, MilValue *v) {
  MilDType dt = v->type->dtype;
  int64_t n = v->count;
  bool ok;
  if (dt == MIL_STRING) {
    v->s = vec_push(P->a, v->s, n, sizeof(char *));
    ok = parse_string_elem(P, &v->s[n]);
  } else if (mil_dtype_is_float(dt)) {
    v->f = vec_push(P->a, v->f, n, sizeof(double));
    ok = parse_float_elem(P, dt, &v->f[n]);
  } else {
    v->i = vec_push(P->a, v->i, n, sizeof(int64_t));
    ok = dt == MIL_BOOL ? parse_bool_elem(P, &v->i[n]) : parse_int_elem(P, dt, &v->i[n]);
  }
  v->count += ok;
  return ok;
}

//
// Literal values, read as their type directs
//

static MilValue *parse_value(Parser *P, MilType *t);

static MilValue *new_value(Parser *P, MilValueKind kind, MilType *t) {
  MilValue *v = arena_alloc(P->a, sizeof(MilValue));
  v->kind = kind;
  v->type = t;
  return v;
}

static void check_count(Parser *P, const MilValue *v, const Token *open) {
  int64_t want = mil_type_count(v->type);
  if (want < 0)
    err_at(P, loc_from(P, open), "cannot infer the shape of this %s literal", type_str(P, v->type));
  else if (want != v->count)
    err_at(P, loc_from(P, open), "%s needs %lld value%s, found %lld", type_str(P, v->type),
           (long long)want, want == 1 ? "" : "s", (long long)v->count);
}

// Bracketed elements of dimension `level` of the tensor literal v: nested
// lists down to the last dimension, or one flat list of all elements. A '?'
// dimension of v's type takes the length found.
static bool parse_elems(Parser *P, MilValue *v, int level) {
  MilType *t = v->type;
  Token open = P->tok;
  if (!expect(P, "["))
    return false;
  bool nested = level + 1 < t->rank && (level > 0 || is(P, "["));
  int64_t n = 0;
  for (; !is(P, "]"); n++) {
    if (n > 0 && !expect_sep(P, "]"))
      return false;
    if (nested && !enter(P))
      return false;
    bool ok = nested ? parse_elems(P, v, level + 1) : parse_scalar(P, v);
    P->depth -= nested;
    if (!ok)
      return false;
  }
  advance(P);
  if (!nested && level == 0 && t->rank > 1)
    check_count(P, v, &open);
  else if (t->dims[level] == MIL_ANY)
    t->dims[level] = n;
  else if (t->dims[level] != n && t->rank == 1)
    check_count(P, v, &open);
  else if (t->dims[level] != n)
    err_at(P, loc_from(P, &open), "dimension %d of %s has %lld entries, found %lld", level,
           type_str(P, t), (long long)t->dims[level], (long long)n);
  return true;
}

static MilValue *parse_tensor_value(Parser *P, MilType *t) {
  MilType *concrete = t;
  if (mil_type_count(t) < 0) { // '?' dims: the literal tells them
    concrete = new_type(P, MIL_T_TENSOR);
    *concrete = *t;
  }
  MilValue *v = new_value(P, MIL_V_TENSOR, concrete);
  Token first = P->tok;
  if (t->rank == 0 ? !parse_scalar(P, v) : !parse_elems(P, v, 0))
    return NULL;
  if (mil_type_count(concrete) < 0)
    check_count(P, v, &first);
  return v;
}

// [v, ...] of a list<T, N>
static MilValue *parse_list_value(Parser *P, MilType *t) {
  MilValue *v = new_value(P, MIL_V_LIST, t);
  Token open = P->tok;
  if (!expect(P, "["))
    return NULL;
  for (; !accept(P, "]"); v->nitems++) {
    if (v->nitems > 0 && !expect_sep(P, "]"))
      return NULL;
    v->items = vec_push(P->a, v->items, v->nitems, sizeof(MilValue *));
    if (!(v->items[v->nitems] = parse_value(P, t->elem)))
      return NULL;
  }
  if (t->length != MIL_ANY && t->length != v->nitems)
    err_at(P, loc_from(P, &open), "%s needs %lld items, found %d", type_str(P, t),
           (long long)t->length, v->nitems);
  return v;
}

// (v, ...) of a tuple<A, B, ...>
static MilValue *parse_tuple_value(Parser *P, MilType *t) {
  MilValue *v = new_value(P, MIL_V_TUPLE, t);
  if (!expect(P, "("))
    return NULL;
  v->items = arena_alloc(P->a, sizeof(MilValue *) * (size_t)(t->nitems + 1));
  for (; !accept(P, ")"); v->nitems++) {
    if (v->nitems > 0 && !expect_sep(P, ")"))
      return NULL;
    if (v->nitems == t->nitems) {
      expected(P, "')' (the tuple type has no more items)");
      return NULL;
    }
    if (!(v->items[v->nitems] = parse_value(P, t->items[v->nitems])))
      return NULL;
  }
  if (v->nitems < t->nitems) {
    err_at(P, tok_loc(&P->prev), "%s needs %d items, found %d", type_str(P, t), t->nitems,
           v->nitems);
    return NULL;
  }
  return v;
}

// {{k, v}, ...} of a dict<K, V>; items hold key, value, key, value, ...
static MilValue *parse_dict_value(Parser *P, MilType *t) {
  MilValue *v = new_value(P, MIL_V_DICT, t);
  if (!expect(P, "{"))
    return NULL;
  for (int n = 0; !accept(P, "}"); n++) {
    if (n > 0 && !expect_sep(P, "}"))
      return NULL;
    if (!expect(P, "{"))
      return NULL;
    v->items = vec_push(P->a, v->items, v->nitems, sizeof(MilValue *));
    if (!(v->items[v->nitems++] = parse_value(P, t->key)) || !expect(P, ","))
      return NULL;
    v->items = vec_push(P->a, v->items, v->nitems, sizeof(MilValue *));
    if (!(v->items[v->nitems++] = parse_value(P, t->elem)) || !expect(P, "}"))
      return NULL;
  }
  return v;
}

static MilValue *parse_value1(Parser *P, MilType *t) {
  switch (t->kind) {
  case MIL_T_TENSOR:
    return parse_tensor_value(P, t);
  case MIL_T_LIST:
    return parse_list_value(P, t);
  case MIL_T_TUPLE:
    return parse_tuple_value(P, t);
  case MIL_T_DICT:
    return parse_dict_value(P, t);
  case MIL_T_STATE:
    break;
  }
  err_at(P, tok_loc(&P->tok), "a %s has no literal value", type_str(P, t));
  return NULL;
}

static MilValue *parse_value(Parser *P, MilType *t) {
  if (!enter(P))
    return NULL;
  Token first = P->tok;
  MilValue *v = parse_value1(P, t);
  P->depth--;
  if (v)
    v->loc = loc_from(P, &first);
  return v;
}

//
// BLOBFILE(path = string("..."), offset = uint64(N))
//

static MilValue *parse_literal(Parser *P);

static bool is_scalar_of(const MilValue *v, MilDType dt) {
  return v->kind == MIL_V_TENSOR && v->type->rank == 0 && v->type->dtype == dt;
}

// Whether a weight path stays inside the program's directory: relative, no
// ".." component.
static bool blob_path_inside(const char *rel) {
  if (rel[0] == '/')
    return false;
  for (const char *c = rel; *c; c += strcspn(c, "/"), c += *c == '/')
    if (c[0] == '.' && c[1] == '.' && (c[2] == '/' || c[2] == '\0'))
      return false;
  return true;
}

// @model_path/x -> model_dir/x; relative paths are taken from model_dir too.
// NULL for a path that would leave model_dir (absolute, or through "..").
static char *blob_resolve(Parser *P, const char *path) {
  const char *rel = path;
  if (!strncmp(path, "@model_path", 11)) {
    rel = path + 11;
    if (*rel != '/')
      return NULL;
    rel++;
  }
  if (!*rel || !blob_path_inside(rel))
    return NULL;
  return arena_printf(P->a, "%s/%s", P->p->model_dir, rel);
}

// One `path = ...` or `offset = ...` of a BLOBFILE.
static bool parse_blob_field(Parser *P, MilValue *v, bool *has_path, bool *has_offset) {
  Token name = P->tok;
  if (!tok_word(&name, "path") && !tok_word(&name, "offset"))
    return expected(P, "'path' or 'offset'");
  advance(P);
  MilValue *x;
  if (!expect(P, "=") || !(x = parse_literal(P)))
    return false;
  bool path = tok_word(&name, "path");
  if (!is_scalar_of(x, path ? MIL_STRING : MIL_UINT64)) {
    err_at(P, x->loc, "BLOBFILE %s must be %s", path ? "path" : "offset",
           path ? "string(\"...\")" : "uint64(N)");
  } else if (path) {
    v->blob_path = x->s[0];
    v->blob_file = blob_resolve(P, x->s[0]);
    if (!v->blob_file)
      err_at(P, x->loc, "BLOBFILE path \"%s\" leaves the program's directory: weight files "
             "are @model_path/... or relative, without '..'", x->s[0]);
  } else {
    v->blob_offset = (uint64_t)x->i[0];
  }
  *(path ? has_path : has_offset) = true;
  return true;
}

static MilValue *parse_blobfile(Parser *P, MilType *t) {
  Token first = P->tok;
  advance(P);
  MilValue *v = new_value(P, MIL_V_BLOB, t);
  bool has_path = false, has_offset = false;
  if (!expect(P, "("))
    return NULL;
  for (int n = 0; !accept(P, ")"); n++)
    if ((n > 0 && !expect_sep(P, ")")) || !parse_blob_field(P, v, &has_path, &has_offset))
      return NULL;
  v->loc = loc_from(P, &first);
  if (!has_path || !has_offset)
    err_at(P, v->loc, "BLOBFILE needs %s",
           has_path ? "offset = uint64(N)" : "path = string(\"...\")");
  else if (t->dtype == MIL_STRING)
    err_at(P, v->loc, "BLOBFILE data cannot be of type string");
  v->count = mil_type_count(t);
  return v;
}

// TYPE(value): a literal always carries its type. A tensor's type must be
// fully known (no '?'); its data may be a BLOBFILE reference instead.
static MilValue *parse_literal1(Parser *P) {
  Token first = P->tok;
  MilType *t = parse_type(P);
  if (!t || !expect(P, "("))
    return NULL;
  if (t->kind == MIL_T_TENSOR && mil_type_count(t) < 0) {
    err_at(P, loc_from(P, &first), "a literal's tensor type needs known dimensions, not %s",
           type_str(P, t));
    return NULL;
  }
  MilValue *v;
  if (t->kind == MIL_T_TENSOR && tok_word(&P->tok, "BLOBFILE"))
    v = parse_blobfile(P, t);
  else
    v = parse_value(P, t);
  if (!v || !expect(P, ")"))
    return NULL;
  v->loc = loc_from(P, &first);
  return v;
}

static MilValue *parse_literal(Parser *P) {
  if (!enter(P))
    return NULL;
  MilValue *v = parse_literal1(P);
  P->depth--;
  return v;
}

// Where a typed literal is required: reports a bare `1` or `false`.
static MilValue *parse_required_literal(Parser *P) {
  if (at_literal(P))
    return parse_literal(P);
  TokKind k = P->tok.kind;
  if (k == TK_NUM || k == TK_STR || k == TK_IDENT || is(P, "[") || is(P, "{")) {
    err_at(P, tok_loc(&P->tok), "expected a typed literal such as int32(1)");
    return NULL;
  }
  expected(P, "a value");
  return NULL;
}

//
// Arguments, attributes, statements
//

static bool parse_binding(Parser *P, MilBinding *b);

static bool parse_tuple_binding(Parser *P, MilBinding *b) {
  b->kind = MIL_B_TUPLE;
  advance(P);
  for (; !accept(P, ")"); b->nitems++) {
    if (b->nitems > 0 && !expect_sep(P, ")"))
      return false;
    b->items = vec_push(P->a, b->items, b->nitems, sizeof(MilBinding));
    if (!parse_binding(P, &b->items[b->nitems]))
      return false;
  }
  return true;
}

static bool parse_ref(Parser *P, MilBinding *b) {
  b->kind = MIL_B_REF;
  b->ref = tok_str(P, &P->tok);
  b->var = names_find(P, b->ref);
  if (b->var < 0 && (tok_word(&P->tok, "true") || tok_word(&P->tok, "false") ||
                     tok_word(&P->tok, "inf") || tok_word(&P->tok, "nan"))) {
    err_at(P, tok_loc(&P->tok), "expected a typed literal such as int32(1)");
    return false;
  }
  if (b->var < 0 && !P->cascade)
    err_at(P, tok_loc(&P->tok), "undefined value '%s'", b->ref);
  advance(P);
  return true;
}

// A name, a typed literal, or a tuple of those: `values = (a, b)`.
static bool parse_binding(Parser *P, MilBinding *b) {
  Token first = P->tok;
  bool ok;
  b->var = -1;
  if (!enter(P))
    return false;
  if (is(P, "("))
    ok = parse_tuple_binding(P, b);
  else if (at_literal(P) || P->tok.kind != TK_IDENT)
    ok = (b->kind = MIL_B_VALUE, b->value = parse_required_literal(P)) != NULL;
  else
    ok = parse_ref(P, b);
  P->depth--;
  b->loc = loc_from(P, &first);
  return ok;
}

// (name = binding, ...)
static bool parse_args(Parser *P, MilOp *op) {
  if (!expect(P, "("))
    return false;
  for (; !accept(P, ")"); op->nargs++) {
    if (op->nargs > 0 && !expect_sep(P, ")"))
      return false;
    op->args = vec_push(P->a, op->args, op->nargs, sizeof(MilArg));
    MilArg *a = &op->args[op->nargs];
    Token name = P->tok;
    if (name.kind != TK_IDENT)
      return expected(P, "a parameter name");
    advance(P);
    a->name = tok_str(P, &name);
    if (!expect(P, "=") || !parse_binding(P, &a->b))
      return false;
    a->loc = loc_from(P, &name);
  }
  return true;
}

// [name = literal, ...]
static bool parse_attrs(Parser *P, MilAttr **attrs, int *nattrs) {
  advance(P);
  for (; !accept(P, "]"); (*nattrs)++) {
    if (*nattrs > 0 && !expect_sep(P, "]"))
      return false;
    *attrs = vec_push(P->a, *attrs, *nattrs, sizeof(MilAttr));
    MilAttr *a = &(*attrs)[*nattrs];
    Token name = P->tok;
    if (name.kind != TK_IDENT)
      return expected(P, "an attribute name");
    advance(P);
    a->name = tok_str(P, &name);
    if (!expect(P, "=") || !(a->value = parse_required_literal(P)))
      return false;
    a->loc = loc_from(P, &name);
  }
  return true;
}

static void check_dup_names(Parser *P, const MilOp *op) {
  for (int i = 0; i < op->nargs; i++)
    for (int j = 0; j < i; j++)
      if (!strcmp(op->args[i].name, op->args[j].name))
        err_at(P, op->args[i].loc, "duplicate parameter '%s'", op->args[i].name);
  for (int i = 0; i < op->nattrs; i++)
    for (int j = 0; j < op->nargs; j++)
      if (!strcmp(op->attrs[i].name, op->args[j].name))
        err_at(P, op->attrs[i].loc, "parameter '%s' given twice", op->attrs[i].name);
  for (int i = 0; i < op->nattrs; i++)
    for (int j = 0; j < i; j++)
      if (!strcmp(op->attrs[i].name, op->attrs[j].name))
        err_at(P, op->attrs[i].loc, "duplicate attribute '%s'", op->attrs[i].name);
}

static bool op_has_param(const MilOp *op, const char *name, size_t n) {
  for (int i = 0; i < op->nargs; i++)
    if (strlen(op->args[i].name) == n && !memcmp(op->args[i].name, name, n))
      return true;
  for (int i = 0; i < op->nattrs; i++)
    if (strlen(op->attrs[i].name) == n && !memcmp(op->attrs[i].name, name, n))
      return true;
  return false;
}

static void check_unknown(Parser *P, const MilOpSig *sig, const char *name, MilLoc loc) {
  if (!mil_param_in(sig->required, name) && !mil_param_in(sig->optional, name))
    err_at(P, loc, "unknown parameter '%s' for %s", name, sig->name);
}

// Required parameters present, no unknown ones, a plausible output count.
static void check_signature(Parser *P, const MilOp *op) {
  const MilOpSig *sig = mil_op_sig(op->op);
  if (!sig)
    return;
  size_t n;
  for (const char *w = sig->required; (w = mil_param_next(w, &n)); w += n)
    if (!op_has_param(op, w, n))
      err_at(P, op->loc, "missing required parameter '%.*s' for %s", (int)n, w, op->op);
  for (int i = 0; i < op->nargs; i++)
    check_unknown(P, sig, op->args[i].name, op->args[i].loc);
  for (int i = 0; i < op->nattrs; i++)
    if (strcmp(op->attrs[i].name, "name"))
      check_unknown(P, sig, op->attrs[i].name, op->attrs[i].loc);
  int k = op->noutputs;
  if (k < sig->min_outputs || (sig->max_outputs >= 0 && k > sig->max_outputs))
    err_at(P, op->loc, "%s has %s%d output%s, not %d", op->op,
           sig->max_outputs == sig->min_outputs ? "" : "at least ", sig->min_outputs,
           sig->min_outputs == 1 ? "" : "s", k);
}

// const: the value's type is the declared one.
static void check_const(Parser *P, const MilOp *op) {
  const MilAttr *val = mil_attr(op->attrs, op->nattrs, "val");
  if (strcmp(op->op, "const") || !val || op->noutputs != 1)
    return;
  const MilVar *out = &cur_fn(P)->vars[op->outputs[0]];
  if (!mil_type_eq(val->value->type, out->type))
    err_at(P, val->value->loc, "the value's type %s is not the declared type %s",
           type_str(P, val->value->type), type_str(P, out->type));
}

// `;` ends a statement. If it is missing at the end of a line, the error
// points just past the statement and reading goes on.
static bool expect_semicolon(Parser *P) {
  if (accept(P, ";"))
    return true;
  if (P->tok.kind == TK_ERROR || (P->tok.line == P->prev.line && !is(P, "}")))
    return expected(P, "';'");
  int col = P->prev.col + P->prev.len;
  err_at(P, (MilLoc){P->prev.line, col, P->prev.line, col}, "expected ';' after statement");
  return true;
}

typedef struct OutDecl {
  MilType *type;
  Token name;
} OutDecl;

// T a, T b =   (none for an op without outputs: `write_state(...)`)
static bool parse_out_decls(Parser *P, OutDecl **outs, int *n) {
  if (P->tok.kind == TK_IDENT && tok_is(peek(P), "("))
    return true;
  do {
    *outs = vec_push(P->a, *outs, *n, sizeof(OutDecl));
    OutDecl *o = &(*outs)[*n];
    if (!(o->type = parse_type(P)))
      return false;
    if (P->tok.kind != TK_IDENT)
      return expected(P, "a name");
    o->name = P->tok;
    advance(P);
    (*n)++;
  } while (accept(P, ","));
  return expect(P, "=");
}

// T name = op(arg = binding, ...)[attr = literal, ...];
static bool parse_stmt(Parser *P) {
  OutDecl *outs = NULL;
  int nouts = 0;
  MilOp op = {0};
  if (!parse_out_decls(P, &outs, &nouts))
    return false;
  if (P->tok.kind != TK_IDENT)
    return expected(P, "an op name");
  op.op = tok_str(P, &P->tok);
  op.loc = tok_loc(&P->tok);
  advance(P);
  if (!parse_args(P, &op) || (is(P, "[") && !parse_attrs(P, &op.attrs, &op.nattrs)) ||
      !expect_semicolon(P))
    return false;
  MilFunc *f = cur_fn(P);
  op.outputs = arena_alloc(P->a, sizeof(int) * (size_t)(nouts + 1));
  for (int i = 0; i < nouts; i++)
    op.outputs[op.noutputs++] = define_var(P, &outs[i].name, outs[i].type, f->nops);
  f->ops = vec_push(P->a, f->ops, f->nops, sizeof(MilOp));
  f->ops[f->nops++] = op;
  check_dup_names(P, &op);
  check_signature(P, &op);
  check_const(P, &op);
  return true;
}

// After a syntax error in a statement: past the next ';', or up to the
// `} ->` that ends the function.
static void skip_stmt(Parser *P) {
  P->cascade = true;
  while (P->tok.kind != TK_EOF) {
    if (accept(P, ";"))
      return;
    if (is(P, "}") && tok_is(peek(P), "->"))
      return;
    advance(P);
  }
}

//
// Functions and the program
//

// (T a, T b, ...)
static bool parse_params(Parser *P) {
  if (!expect(P, "("))
    return false;
  for (int n = 0; !accept(P, ")"); n++) {
    if (n > 0 && !expect_sep(P, ")"))
      return false;
    MilType *t = parse_type(P);
    if (!t)
      return false;
    if (P->tok.kind != TK_IDENT)
      return expected(P, "a parameter name");
    int v = define_var(P, &P->tok, t, -1);
    advance(P);
    MilFunc *f = cur_fn(P);
    f->inputs = vec_push(P->a, f->inputs, f->ninputs, sizeof(int));
    f->inputs[f->ninputs++] = v;
  }
  return true;
}

// -> (a, b);
static bool parse_returns(Parser *P) {
  MilFunc *f = cur_fn(P);
  if (!is(P, "->")) {
    char what[300];
    snprintf(what, sizeof what, "'->' after the body of function '%.200s'", f->name);
    return expected(P, what);
  }
  advance(P);
  if (!expect(P, "("))
    return false;
  for (; !accept(P, ")"); f->noutputs++) {
    if (f->noutputs > 0 && !expect_sep(P, ")"))
      return false;
    if (P->tok.kind != TK_IDENT)
      return expected(P, "a returned name");
    int v = names_find(P, tok_str(P, &P->tok));
    if (v < 0 && !P->cascade)
      err_at(P, tok_loc(&P->tok), "returned value '%.*s' is not defined", P->tok.len, P->tok.s);
    f->outputs = vec_push(P->a, f->outputs, f->noutputs, sizeof(int));
    f->outputs[f->noutputs] = v;
    advance(P);
  }
  return expect(P, ";");
}

static bool parse_body(Parser *P) {
  if (!expect(P, "{"))
    return false;
  while (!is(P, "}") && P->tok.kind != TK_EOF && !P->d->stop) {
    P->depth = 0;
    if (!parse_stmt(P))
      skip_stmt(P);
  }
  return expect(P, "}");
}

// func NAME<OPSET>(params) [attrs] { stmts } -> (outs);
static bool parse_func(Parser *P) {
  MilProgram *p = P->p;
  Token first = P->tok;
  advance(P);
  if (P->tok.kind != TK_IDENT)
    return expected(P, "a function name");
  p->funcs = vec_push(P->a, p->funcs, p->nfuncs, sizeof(MilFunc));
  P->fn = p->nfuncs++;
  MilFunc *f = cur_fn(P);
  f->name = tok_str(P, &P->tok);
  if (mil_func(p, f->name) != f)
    err_at(P, tok_loc(&P->tok), "redefinition of function '%s'", f->name);
  advance(P);
  names_reset(P);
  P->cascade = false;
  if (accept(P, "<")) {
    if (P->tok.kind != TK_IDENT)
      return expected(P, "an opset name");
    f->opset = tok_str(P, &P->tok);
    advance(P);
    if (!expect(P, ">"))
      return false;
  }
  if (!parse_params(P) || (is(P, "[") && !parse_attrs(P, &f->attrs, &f->nattrs)))
    return false;
  if (!parse_body(P) || !parse_returns(P))
    return false;
  f->loc = loc_from(P, &first);
  return true;
}

// program(VER) [attrs] { func ... }
static void parse_program(Parser *P) {
  MilProgram *p = P->p;
  if (!tok_word(&P->tok, "program")) {
    expected(P, "'program'");
    return;
  }
  advance(P);
  if (!expect(P, "("))
    return;
  if (P->tok.kind != TK_NUM) {
    expected(P, "a program version such as 1.3");
    return;
  }
  p->version = tok_str(P, &P->tok);
  P->verbose = mil_version_verbose(p->version);
  advance(P);
  if (!expect(P, ")") || (is(P, "[") && !parse_attrs(P, &p->attrs, &p->nattrs)) || !expect(P, "{"))
    return;
  while (tok_word(&P->tok, "func") && !P->d->stop)
    if (!parse_func(P))
      return;
  if (P->d->stop)
    return;
  if (!accept(P, "}"))
    expected(P, "'func' or '}'");
  else if (P->tok.kind != TK_EOF)
    expected(P, "end of file after the program");
}

//
// Entry points
//

void mil_error_at(RtDiag *d, const MilProgram *p, MilLoc loc, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  SrcSpan span = {loc.line, loc.col, loc.last_line, loc.last_col};
  rt_error(d, p->path, p->text, p->len, span, "%s", msg);
}

MilProgram *mil_read_text(const char *name, const char *text, size_t len, const char *model_dir,
                          RtDiag *d) {
  RtDiag to_stderr = {.out = stderr};
  d = d ? d : &to_stderr;
  MilProgram *p = calloc(1, sizeof *p);
  if (!p || len > (size_t)MAX_FILE) {
    rt_error_file(d, name, p ? "file too large" : "out of memory");
    free(p);
    return NULL;
  }
  p->path = arena_strdup(&p->arena, name ? name : "<mil>");
  p->model_dir = arena_strdup(&p->arena, model_dir ? model_dir : ".");
  p->text = arena_strndup(&p->arena, text, len);
  p->len = len;
  int errors = d->errors;
  Parser P = {.p = p, .a = &p->arena, .d = d};
  const char *start = p->text + (len >= 3 && !memcmp(p->text, "\xEF\xBB\xBF", 3) ? 3 : 0); // BOM
  P.lx = (Lexer){&p->arena, start, p->text + len, p->text, 1, 1, 0};
  P.tok = lex(&P.lx);
  parse_program(&P);
  if (d->errors != errors) {
    mil_free(p);
    return NULL;
  }
  return p;
}

// The directory of path, as @model_path: "." for a bare file name.
static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash)
    return strdup(".");
  return slash == path ? strdup("/") : strndup(path, (size_t)(slash - path));
}

MilProgram *mil_read_file(const char *path, RtDiag *d) {
  RtDiag to_stderr = {.out = stderr};
  d = d ? d : &to_stderr;
  char *dir = dir_of(path);
  if (!dir) {
    rt_error_file(d, path, "cannot read: %s", strerror(ENOMEM));
    return NULL;
  }
  size_t len = 0;
  char *text = (char *)rt_read_file_max(path, MAX_FILE, &len, d);
  MilProgram *p = text ? mil_read_text(path, text, len, dir, d) : NULL;
  free(text);
  free(dir);
  return p;
}

void mil_free(MilProgram *p) {
  if (!p)
    return;
  arena_free(&p->arena);
  free(p);
}
