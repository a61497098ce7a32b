// test_parser.c — the .anet front end (dsl/lexer.l, dsl/parser.y, dsl/ast.c):
// AST shapes and locations of valid code, the exact text and place of lexical
// and syntax errors, and robustness on cut, mutated and random input.
#define _POSIX_C_SOURCE 200809L
#include "driver.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

//
// Helpers
//

// One parse of `len` bytes with diagnostics captured.
typedef struct Parse {
  Arena arena;
  Diag d;
  char *out; // the diagnostics
  size_t outlen;
  int file;
  Ast *ast;
} Parse;

static void parse_run(Parse *p, const char *src, size_t len, FILE *out) {
  memset(p, 0, sizeof *p);
  if (!out)
    out = open_memstream(&p->out, &p->outlen);
  assert_non_null(out);
  diag_init(&p->d, out);
  p->file = diag_add_file(&p->d, "t.anet", src, len);
  p->ast = parse_file(&p->arena, &p->d, p->file);
  fflush(out);
}

static void parse_done(Parse *p, bool own_out) {
  if (own_out)
    fclose(p->d.out);
  free(p->out);
  diag_free(&p->d);
  arena_free(&p->arena);
}

static void sexpr(FILE *o, const Ast *n);

static void sexpr_list(FILE *o, const Ast *n) {
  for (; n; n = n->next) {
    fputc(' ', o);
    sexpr(o, n);
  }
}

static void sexpr_named(FILE *o, const char *what, const Ast *n, const Ast *a, const Ast *b) {
  fprintf(o, "(%s %s", what, n->name);
  if (a) {
    fputc(' ', o);
    sexpr(o, a);
  }
  if (b) {
    fputc(' ', o);
    sexpr(o, b);
  }
}

// A compact s-expression of the tree, so that tests can compare shapes.
static void sexpr(FILE *o, const Ast *n) {
  switch (n->kind) {
  case AST_INT: fprintf(o, "%lld", (long long)n->ival); return;
  case AST_FLOAT: fprintf(o, "%gf", n->fval); return;
  case AST_STR: fprintf(o, "\"%s\"", n->str); return;
  case AST_NAME: fputs(n->name, o); return;
  case AST_LIST: fputs("[", o); sexpr_list(o, n->list); fputs(" ]", o); return;
  case AST_CALL: fprintf(o, "%s(", n->name); sexpr_list(o, n->list); fputs(" )", o); return;
  case AST_KWARG: fprintf(o, "%s=", n->name); sexpr(o, n->rhs); return;
  case AST_BINOP:
    fprintf(o, "(%c ", n->op); sexpr(o, n->lhs); fputc(' ', o); sexpr(o, n->rhs); fputs(")", o);
    return;
  case AST_NEG: fputs("(neg ", o); sexpr(o, n->lhs); fputs(")", o); return;
  case AST_ASSIGN: sexpr_named(o, "=", n, n->rhs, NULL); break;
  case AST_PARAM: sexpr_named(o, "param", n, n->lhs, n->rhs); break;
  case AST_INPUT: sexpr_named(o, "input", n, n->lhs, NULL); break;
  case AST_OUTPUT: sexpr_named(o, "output", n, n->rhs, NULL); break;
  case AST_RETURN: fputs("(return ", o); sexpr(o, n->rhs); break;
  case AST_LOSS: fputs("(loss ", o); sexpr(o, n->rhs); break;
  case AST_REPEAT:
    sexpr_named(o, "repeat", n, n->rhs, NULL); fputs(" {", o); sexpr_list(o, n->body); fputs(" }", o);
    break;
  case AST_MODEL: sexpr_named(o, "model", n, NULL, NULL); sexpr_list(o, n->body); break;
  case AST_LAYER:
    sexpr_named(o, "layer", n, NULL, NULL); fputs(" (", o); sexpr_list(o, n->list);
    fputs(" )", o); sexpr_list(o, n->body);
    break;
  case AST_FORMAL: fputs(n->name, o); if (n->rhs) { fputc('=', o); sexpr(o, n->rhs); } return;
  case AST_TYPE: fprintf(o, "%s[", n->name); sexpr_list(o, n->list); fputs(" ]", o); return;
  }
  fputs(")", o);
}

// The s-expressions of the top-level items of `src`, one a line; the
// source must parse without diagnostics.
static char *shape(const char *src) {
  Parse p;
  parse_run(&p, src, strlen(src), NULL);
  if (p.d.errors)
    fprintf(stderr, "unexpected diagnostics for:\n%s\n%s", src, p.out);
  assert_int_equal(p.d.errors, 0);
  char *text = NULL;
  size_t n = 0;
  FILE *o = open_memstream(&text, &n);
  for (const Ast *it = p.ast; it; it = it->next) {
    sexpr(o, it);
    fputc('\n', o);
  }
  fclose(o);
  parse_done(&p, true);
  return text;
}

static void check_shape(const char *src, const char *expected) {
  char *got = shape(src);
  if (strcmp(got, expected) != 0)
    fprintf(stderr, "source:\n%s\n", src);
  assert_string_equal(got, expected);
  free(got);
}

// The complete diagnostic output for `src`.
static char *errors_of(const char *src, int *count) {
  Parse p;
  parse_run(&p, src, strlen(src), NULL);
  char *text = strdup(p.out ? p.out : "");
  *count = p.d.errors;
  parse_done(&p, true);
  return text;
}

// Only the `file:line:col: error: msg` lines.
static char *error_headers(const char *src) {
  int n;
  char *all = errors_of(src, &n);
  char *keep = calloc(strlen(all) + 1, 1), *w = keep;
  for (char *line = all; *line;) {
    char *end = strchr(line, '\n');
    size_t len = end ? (size_t)(end - line + 1) : strlen(line);
    if (strncmp(line, "t.anet:", 7) == 0) {
      memcpy(w, line, len);
      w += len;
    }
    line += len;
  }
  free(all);
  return keep;
}

static void check_errors(const char *src, const char *expected) {
  char *got = error_headers(src);
  if (strcmp(got, expected) != 0)
    fprintf(stderr, "source:\n%s\n", src);
  assert_string_equal(got, expected);
  free(got);
}

static void check_full(const char *src, const char *expected) {
  int n;
  char *got = errors_of(src, &n);
  assert_string_equal(got, expected);
  free(got);
}

// Parses `src` and hands back the first item (the parse is kept in *p).
static const Ast *first_item(Parse *p, const char *src) {
  parse_run(p, src, strlen(src), NULL);
  assert_int_equal(p->d.errors, 0);
  assert_non_null(p->ast);
  return p->ast;
}

static void check_loc(SrcLoc l, int l1, int c1, int l2, int c2) {
  assert_int_equal(l.first_line, l1);
  assert_int_equal(l.first_column, c1);
  assert_int_equal(l.last_line, l2);
  assert_int_equal(l.last_column, c2);
}

//
// Valid code: shapes
//

static void test_precedence(void **state) {
  (void)state;
  check_shape("x = 1 + 2 * 3\n", "(= x (+ 1 (* 2 3)))\n");
  check_shape("x = 1 - 2 - 3\n", "(= x (- (- 1 2) 3))\n");
  check_shape("x = a / b % c @ d\n", "(= x (@ (% (/ a b) c) d))\n");
  check_shape("x = a @ b + c @ d\n", "(= x (+ (@ a b) (@ c d)))\n");
  check_shape("x = -a * b\n", "(= x (* (neg a) b))\n");
  check_shape("x = a * -b\n", "(= x (* a (neg b)))\n");
  check_shape("x = - -a\n", "(= x (neg (neg a)))\n");
  check_shape("x = a - -1\n", "(= x (- a (neg 1)))\n");
  check_shape("x = (a + b) * c\n", "(= x (* (+ a b) c))\n");
  check_shape("x = -(a + b)\n", "(= x (neg (+ a b)))\n");
  check_shape("x = 2 * (3 + 4) / 5\n", "(= x (/ (* 2 (+ 3 4)) 5))\n");
}

static void test_literals(void **state) {
  (void)state;
  check_shape("x = 768\n", "(= x 768)\n");
  check_shape("x = 9223372036854775807\n", "(= x 9223372036854775807)\n");
  check_shape("x = 0.02\n", "(= x 0.02f)\n");
  check_shape("x = 1e-5\n", "(= x 1e-05f)\n");
  check_shape("x = 1.5E6\n", "(= x 1.5e+06f)\n");
  check_shape("x = .5\n", "(= x 0.5f)\n");
  check_shape("x = 2.\n", "(= x 2f)\n");
  check_shape("x = 1e+3\n", "(= x 1000f)\n");
  check_shape("x = \"tanh\"\n", "(= x \"tanh\")\n");
  check_shape("x = \"\"\n", "(= x \"\")\n");
  check_shape("x = \"a\\\"b\\\\c\"\n", "(= x \"a\"b\\c\")\n");
  check_shape("x = \"# not // a /* comment\"\n", "(= x \"# not // a /* comment\")\n");
  check_shape("x = \"π ≈ 3\"\n", "(= x \"π ≈ 3\")\n");
  check_shape("x = [ ]\n", "(= x [ ])\n");
  check_shape("x = [1, [2, 3], \"s\"]\n", "(= x [ 1 [ 2 3 ] \"s\" ])\n");
  check_shape("modelx = layer_1 + _r2\n", "(= modelx (+ layer_1 _r2))\n");
}

static void test_calls(void **state) {
  (void)state;
  check_shape("x = f()\n", "(= x f( ))\n");
  check_shape("x = f(a)\n", "(= x f( a ))\n");
  check_shape("x = rope(q, heads, theta = 1e6)\n", "(= x rope( q heads theta=1e+06f ))\n");
  check_shape("x = g(mode = \"tanh\", y = -1)\n", "(= x g( mode=\"tanh\" y=(neg 1) ))\n");
  check_shape("x = reshape(x, [s, -1])\n", "(= x reshape( x [ s (neg 1) ] ))\n");
  check_shape("x = f(g(h(1)), [a])\n", "(= x f( g( h( 1 ) ) [ a ] ))\n");
  check_shape("x = f(a) @ g(b)\n", "(= x (@ f( a ) g( b )))\n");
}

static void test_statements(void **state) {
  (void)state;
  check_shape("param wq: [dim, dim] = normal(0.02)\n",
              "(param wq [ dim dim ] normal( 0.02f ))\n");
  check_shape("param b: f16[dim] = zeros\n", "(param b f16[ dim ] zeros)\n");
  check_shape("param s: [] = ones\n", "(param s [ ] ones)\n");
  check_shape("input tokens: i32[seq]\n", "(input tokens i32[ seq ])\n");
  check_shape("input x: [seq, 2 * dim]\n", "(input x [ seq (* 2 dim) ])\n");
  check_shape("output logits = linear(x, emb)\n", "(output logits linear( x emb ))\n");
  check_shape("output x\n", "(output x)\n");
  check_shape("loss cross_entropy(logits, targets)\n", "(loss cross_entropy( logits targets ))\n");
  check_shape("return x + 1\n", "(return (+ x 1))\n");
}

static void test_declarations(void **state) {
  (void)state;
  check_shape("model tiny {\n  dim = 64\n  heads = 4\n\n  hd = dim / heads\n}\n",
              "(model tiny (= dim 64) (= heads 4) (= hd (/ dim heads)))\n");
  check_shape("model m { dim = 4 }\n", "(model m (= dim 4))\n");
  check_shape("model m { dim = 4; seq = 8 }", "(model m (= dim 4) (= seq 8))\n");
  check_shape("model m {}\n", "(model m)\n");
  check_shape("model m {\n}\n", "(model m)\n");
  check_shape("layer block(x) {\n  param wq: [dim, dim] = normal(0.02)\n  return x + linear(x, wq)\n}\n",
              "(layer block ( x ) (param wq [ dim dim ] normal( 0.02f )) (return (+ x linear( x wq ))))\n");
  check_shape("layer f(x, eps = 1e-5, n = 2) { return x }\n",
              "(layer f ( x eps=1e-05f n=2 ) (return x))\n");
  check_shape("layer nothing() {}\n", "(layer nothing ( ))\n");
  check_shape("layer f(\n  x,\n  y = 1\n) {\n  return x\n}\n", "(layer f ( x y=1 ) (return x))\n");
}

static void test_repeat(void **state) {
  (void)state;
  check_shape("repeat layers {\n  x = block(x)\n}\n", "(repeat layers { (= x block( x )) })\n");
  check_shape("repeat blocks: 2 * layers { x = f(x) }\n",
              "(repeat blocks (* 2 layers) { (= x f( x )) })\n");
  check_shape("repeat a {\n  repeat b: 2 {\n    x = 1\n  }\n  y = 2\n}\n",
              "(repeat a { (repeat b 2 { (= x 1) }) (= y 2) })\n");
  check_shape("repeat r {}\n", "(repeat r { })\n");
  check_shape("layer f(x) {\n  repeat r { x = g(x) }\n  return x\n}\n",
              "(layer f ( x ) (repeat r { (= x g( x )) }) (return x))\n");
}

static void test_line_structure(void **state) {
  (void)state;
  // statements spanning lines inside ( ) and [ ]
  check_shape("x = f(a,\n      b,\n\n      c = [1,\n 2])\n", "(= x f( a b c=[ 1 2 ] ))\n");
  check_shape("param w: [\n  dim,\n  dim\n] = zeros\n", "(param w [ dim dim ] zeros)\n");
  // ';' separators, empty statements
  check_shape("x = 1; y = 2\n", "(= x 1)\n(= y 2)\n");
  check_shape(";;x = 1;;\n;y = 2;", "(= x 1)\n(= y 2)\n");
  check_shape("layer f(x) { y = x; return y }\n", "(layer f ( x ) (= y x) (return y))\n");
  // no trailing newline, blank lines, CRLF, tabs
  check_shape("x = 1", "(= x 1)\n");
  check_shape("\n\n\nx = 1\n\n\n", "(= x 1)\n");
  check_shape("x = 1\r\ny = 2\r\n", "(= x 1)\n(= y 2)\n");
  check_shape("\tx\t=\t1\n", "(= x 1)\n");
  check_shape("", "");
  check_shape("\n \n", "");
}

static void test_comments(void **state) {
  (void)state;
  check_shape("// header\nx = 1 // trailing\n# hash\ny = 2 # trailing", "(= x 1)\n(= y 2)\n");
  check_shape("x = /* inline */ 1\n", "(= x 1)\n");
  check_shape("/* multi\n line\n */ x = 1\n", "(= x 1)\n");
  check_shape("x = f(a, /* spans\n lines */ b)\n", "(= x f( a b ))\n");
  check_shape("x = 1 /* a */ /* b */\ny = 2 /**/\n", "(= x 1)\n(= y 2)\n");
  check_shape("/* ** / * */ x = 2 /* *** */", "(= x 2)\n");
  check_shape("x = 1 // no newline at the end", "(= x 1)\n");
  check_shape("x = 1 /* comment at the end */", "(= x 1)\n");
  check_shape("model m { dim = 4 // c\n}\n", "(model m (= dim 4))\n");
  check_shape("x = f(a, // inside parens\n b)\n", "(= x f( a b ))\n");
}

// A program of ~40 lines using every construct: the fuzz tests below cut
// and mutate it.
static const char sample[] =
    "// tiny llama\n"
    "model tiny {\n"
    "  dim = 64; heads = 4\n"
    "  hidden = 4 * dim\n"
    "  seq = 32\n"
    "  vocab = 512\n"
    "  layers = 2\n"
    "}\n"
    "\n"
    "input tokens: i32[seq]\n"
    "input targets: i32[seq]\n"
    "param emb: [vocab, dim] = normal(0.02)\n"
    "\n"
    "/* one transformer block */\n"
    "layer block(x, eps = 1e-5) {\n"
    "  param wq: [dim, dim] = normal(0.02)\n"
    "  param wo: f32[dim, dim] = zeros\n"
    "  param g: [dim] = ones\n"
    "  h = rmsnorm(x, g, eps = eps)\n"
    "  q = linear(h, wq)\n"
    "  s = softmax(q @ transpose(h, [1, 0]) / sqrt(dim / heads),\n"
    "              axis = -1)\n"
    "  repeat inner: 2 {\n"
    "    q = q * 0.5 + -q % 3\n"
    "  }\n"
    "  return x + linear(s @ h, wo)\n"
    "}\n"
    "\n"
    "x = embed(emb, tokens)  # lookup\n"
    "repeat layers {\n"
    "  x = block(x)\n"
    "}\n"
    "repeat extra: layers - 1 { x = block(x, eps = 1e-6) }\n"
    "y = reshape(x, [seq,\n"
    "                dim])\n"
    "output logits = linear(y, emb)\n"
    "output hidden_state\n"
    "loss cross_entropy(logits, targets)\n"
    "z = concat([x, y], 0); w = \"tanh\"\n";

static void test_sample(void **state) {
  (void)state;
  char *got = shape(sample);
  assert_non_null(strstr(got, "(model tiny (= dim 64) (= heads 4) (= hidden (* 4 dim))"));
  assert_non_null(strstr(got, "(repeat inner 2 { (= q (+ (* q 0.5f) (% (neg q) 3))) })"));
  assert_non_null(strstr(got, "(= w \"tanh\")\n"));
  free(got);
}

//
// Locations
//

static void test_locations_expr(void **state) {
  (void)state;
  Parse p;
  const Ast *a = first_item(&p, "x = a + f(b,\n  c = 2) * -d\n");
  check_loc(a->loc, 1, 1, 2, 13);
  check_loc(a->name_loc, 1, 1, 1, 1);
  const Ast *sum = a->rhs;
  check_loc(sum->loc, 1, 5, 2, 13);
  check_loc(sum->lhs->loc, 1, 5, 1, 5);
  const Ast *prod = sum->rhs;
  check_loc(prod->loc, 1, 9, 2, 13);
  const Ast *call = prod->lhs;
  check_loc(call->loc, 1, 9, 2, 8);
  check_loc(call->name_loc, 1, 9, 1, 9);
  const Ast *kw = call->list->next;
  assert_int_equal(kw->kind, AST_KWARG);
  check_loc(kw->loc, 2, 3, 2, 7);
  check_loc(kw->name_loc, 2, 3, 2, 3);
  check_loc(prod->rhs->loc, 2, 12, 2, 13);
  parse_done(&p, true);
}

static void test_locations_literals(void **state) {
  (void)state;
  Parse p;
  const Ast *a = first_item(&p, "abc = [12, 0.5, \"s\\\"t\", (x)]");
  check_loc(a->loc, 1, 1, 1, 28);
  check_loc(a->name_loc, 1, 1, 1, 3);
  const Ast *l = a->rhs;
  check_loc(l->loc, 1, 7, 1, 28);
  check_loc(l->list->loc, 1, 8, 1, 9);
  check_loc(l->list->next->loc, 1, 12, 1, 14);
  check_loc(l->list->next->next->loc, 1, 17, 1, 22);
  check_loc(l->list->next->next->next->loc, 1, 26, 1, 26); // the name inside ( )
  parse_done(&p, true);
}

static void test_locations_decls(void **state) {
  (void)state;
  Parse p;
  const Ast *m = first_item(&p,
      "model m {\n"
      "  dim = 4\n"
      "}\n"
      "layer f(x, eps = 1e-5) {\n"
      "\tparam w: f32[dim] = zeros\n"
      "  input t: [2]\n"
      "  repeat r: 2 { output o }\n"
      "}\n");
  check_loc(m->loc, 1, 1, 3, 1);
  check_loc(m->name_loc, 1, 7, 1, 7);
  check_loc(m->body->loc, 2, 3, 2, 9);
  const Ast *f = m->next;
  check_loc(f->loc, 4, 1, 8, 1);
  check_loc(f->name_loc, 4, 7, 4, 7);
  check_loc(f->list->loc, 4, 9, 4, 9);
  check_loc(f->list->name_loc, 4, 9, 4, 9);
  check_loc(f->list->next->loc, 4, 12, 4, 21);
  check_loc(f->list->next->name_loc, 4, 12, 4, 14);
  const Ast *w = f->body;
  check_loc(w->loc, 5, 2, 5, 26);
  check_loc(w->name_loc, 5, 8, 5, 8);
  check_loc(w->lhs->loc, 5, 11, 5, 18);
  check_loc(w->lhs->name_loc, 5, 11, 5, 13);
  assert_string_equal(w->lhs->name, "f32");
  const Ast *t = w->next;
  assert_string_equal(t->lhs->name, "");
  check_loc(t->lhs->loc, 6, 12, 6, 14);
  const Ast *r = t->next;
  check_loc(r->loc, 7, 3, 7, 26);
  check_loc(r->name_loc, 7, 10, 7, 10);
  check_loc(r->body->loc, 7, 17, 7, 24);
  for (const Ast *it = p.ast; it; it = it->next)
    assert_int_equal(it->loc.file, p.file);
  parse_done(&p, true);
}

static void test_ast_helpers(void **state) {
  (void)state;
  Arena a = {0};
  SrcLoc l = {0, 1, 1, 1, 1};
  Ast *list = ast_append(NULL, ast_int(&a, l, 1));
  list = ast_append(list, NULL);
  list = ast_append(list, ast_int(&a, l, 2));
  list = ast_append(list, ast_int(&a, l, 3));
  assert_int_equal(ast_count(list), 3);
  assert_int_equal(list->next->next->ival, 3);
  assert_int_equal(ast_count(NULL), 0);
  Ast *o = ast_output(&a, l, "y", l, NULL);
  assert_int_equal(o->kind, AST_OUTPUT);
  assert_null(o->rhs);
  arena_free(&a);
}

//
// Errors: exact text and place
//

static void test_lexical_errors(void **state) {
  (void)state;
  check_errors("x = /* abc\ny = 2\n", "t.anet:1:5: error: unterminated comment\n");
  check_errors("x = \"abc\ny = 2\n",
               "t.anet:1:5: error: missing terminating '\"' character\n");
  check_errors("x = \"abc\\\"\n", "t.anet:1:5: error: missing terminating '\"' character\n");
  check_errors("x = 1 $ 2\ny = 3 $\n",
               "t.anet:1:7: error: stray '$' in program\n"
               "t.anet:2:7: error: stray '$' in program\n");
  check_errors("x = a.b\n", "t.anet:1:6: error: stray '.' in program\n");
  check_errors("x = 1\x01\n", "t.anet:1:6: error: stray '\\x01' in program\n");
  check_errors("x = \xff\n", "t.anet:1:5: error: stray '\\xff' in program\n");
  check_errors("x = \xe2\x80\x9ctanh\xe2\x80\x9d\n",
               "t.anet:1:5: error: stray '\xe2\x80\x9c' (U+201C) in program\n"
               "t.anet:1:12: error: stray '\xe2\x80\x9d' (U+201D) in program\n");
  check_errors("\xef\xbb\xbfx = 1\xe2\x80\x8b\n",
               "t.anet:1:1: error: stray U+FEFF in program\n"
               "t.anet:1:9: error: stray U+200B in program\n"); // columns count bytes
  check_errors("x = 99999999999999999999\n",
               "t.anet:1:5: error: integer literal '99999999999999999999' is too large\n");
  check_errors("x = 9223372036854775808\n",
               "t.anet:1:5: error: integer literal '9223372036854775808' is too large\n");
  // the parser does not complain again where the lexer did
  check_errors("x = 1 99999999999999999999\n",
               "t.anet:1:7: error: integer literal '99999999999999999999' is too large\n");
  check_errors("x = 1e999\n", "t.anet:1:5: error: number '1e999' is out of range\n");
  check_errors("x = 12abc + 1.2.3\n",
               "t.anet:1:5: error: invalid number '12abc'\n"
               "t.anet:1:13: error: invalid number '1.2.3'\n");
  check_errors("x = \"a\\qb\" + \"\\n\"\n",
               "t.anet:1:7: error: unknown escape sequence: '\\q'\n"
               "t.anet:1:15: error: unknown escape sequence: '\\n'\n");
  check_errors("x = f(a; b)\ny = [1; 2]\n",
               "t.anet:1:8: error: expected ')' before ';'\n"
               "t.anet:2:7: error: expected ']' before ';'\n");
}

static void test_syntax_errors(void **state) {
  (void)state;
  check_errors("x = f(a, b\ny = 2\n", "t.anet:2:1: error: expected ',' or ')' before 'y'\n");
  check_errors("x = 1 foo\n", "t.anet:1:7: error: expected newline or ';' before 'foo'\n");
  check_errors("model m { param x: [1] = zeros }\n",
               "t.anet:1:11: error: only hyper-parameter assignments are allowed in a model header\n");
  check_errors("model m {\n  repeat r { x = 1 }\n  output y\n}\n",
               "t.anet:2:3: error: only hyper-parameter assignments are allowed in a model header\n"
               "t.anet:3:3: error: only hyper-parameter assignments are allowed in a model header\n");
  check_errors("x = ()\n", "t.anet:1:6: error: expected expression before ')'\n");
  check_errors("x = f(,)\n", "t.anet:1:7: error: expected expression or ')' before ','\n");
  check_errors("x = \n", "t.anet:1:4: error: expected expression at end of line\n");
  check_errors("x = ", "t.anet:1:4: error: expected expression at end of input\n");
  check_errors("x = 1 +  // comment\n", "t.anet:1:8: error: expected expression at end of line\n");
  check_errors("layer f(x { }\n", "t.anet:1:11: error: expected ',' or ')' before '{'\n");
  check_errors("}\n", "t.anet:1:1: error: unexpected '}'\n");
  check_errors("x = 1\n}\ny = 2\n", "t.anet:2:1: error: unexpected '}'\n");
  check_errors("layer f() { x = }\n", "t.anet:1:17: error: expected expression before '}'\n");
  check_errors("x = (1; y = 2\n", "t.anet:1:7: error: expected ')' before ';'\n");
  check_errors("x\n", "t.anet:1:2: error: expected '=' at end of line\n");
  check_errors("param 3\n", "t.anet:1:7: error: expected identifier before '3'\n");
  check_errors("param w [d] = zeros\n", "t.anet:1:9: error: expected ':' before '['\n");
  check_errors("param w: [d d] = zeros\n", "t.anet:1:13: error: expected ',' or ']' before 'd'\n");
  check_errors("param w: [d] zeros\n", "t.anet:1:14: error: expected '=' before 'zeros'\n");
  check_errors("input x: f32 foo\n", "t.anet:1:14: error: expected '[' before 'foo'\n");
  check_errors("repeat layers\n{\n  x = 1\n}\n",
               "t.anet:1:14: error: expected ':' or '{' at end of line\n");
  check_errors("model m {\n", "t.anet:1:10: error: expected statement or '}' at end of input\n");
  check_errors("model m { dim = 4 } x = 1\n",
               "t.anet:1:21: error: expected newline or ';' before 'x'\n");
  check_errors("layer f() {\n  layer g() {}\n}\n",
               "t.anet:2:3: error: expected statement or '}' before 'layer'\n");
  check_errors("x = ((1)\n", "t.anet:1:9: error: expected ')' at end of input\n");
  check_errors("x = f(1 \"a very long string that does not fit in a message\")\n",
               "t.anet:1:9: error: expected ',' or ')' before '\"a very long string that does not fi...'\n");
}

// One error per broken statement; the parse goes on after each.
static void test_error_recovery(void **state) {
  (void)state;
  check_errors("x = )\ny = 2\nz = (\nw = 3 3\nv = 1\n",
               "t.anet:1:5: error: expected expression before ')'\n"
               "t.anet:4:3: error: expected ')' before '='\n");
  check_errors("x = )\ny = 2\nz = (1 +)\nw = 3 3\nv = 1\n",
               "t.anet:1:5: error: expected expression before ')'\n"
               "t.anet:3:9: error: expected expression before ')'\n"
               "t.anet:4:7: error: expected newline or ';' before '3'\n");
  // a broken header: its body is skipped, no "unexpected '}'" afterwards
  check_errors("layer f(x y) {\n  return x\n}\nz = 1 +\n",
               "t.anet:1:11: error: expected ',' or ')' before 'y'\n"
               "t.anet:4:8: error: expected expression at end of line\n");
  check_errors("model m: {\n  dim = 2\n}\nx = )\n",
               "t.anet:1:8: error: expected '{' before ':'\n"
               "t.anet:4:5: error: expected expression before ')'\n");
  check_errors("repeat r: {\n  x = 1\n}\ny = ]\n",
               "t.anet:1:11: error: expected expression before '{'\n"
               "t.anet:4:5: error: expected expression before ']'\n");
  // errors inside a block leave the block intact
  check_errors("layer f(x) {\n  y = = 1\n  z = 2 2\n  return x\n}\nw = )\n",
               "t.anet:2:7: error: expected expression before '='\n"
               "t.anet:3:9: error: expected newline or ';' before '2'\n"
               "t.anet:6:5: error: expected expression before ')'\n");
  // a missing ')' does not swallow the next declaration
  check_errors("x = f(a\nlayer g() { return 1 }\ny = )\n",
               "t.anet:1:8: error: expected ',' or ')' at end of line\n"
               "t.anet:3:5: error: expected expression before ')'\n");
  // an unterminated comment hides the rest: nothing more is reported
  check_errors("model m {\n  dim = 2 /* oops\n}\n", "t.anet:2:11: error: unterminated comment\n");
}

static void test_error_layout(void **state) {
  (void)state;
  check_full("x = /* abc\n",
             "t.anet:1:5: error: unterminated comment\n"
             "    1 | x = /* abc\n"
             "      |     ^~\n");
  check_full("x = 1 foo\n",
             "t.anet:1:7: error: expected newline or ';' before 'foo'\n"
             "    1 | x = 1 foo\n"
             "      |       ^~~\n");
  check_full("model m { param x: [1] = zeros }\n",
             "t.anet:1:11: error: only hyper-parameter assignments are allowed in a model header\n"
             "    1 | model m { param x: [1] = zeros }\n"
             "      |           ^~~~~~~~~~~~~~~~~~~~\n");
  check_full("x = 123456789012345678901 + 1\n",
             "t.anet:1:5: error: integer literal '123456789012345678901' is too large\n"
             "    1 | x = 123456789012345678901 + 1\n"
             "      |     ^~~~~~~~~~~~~~~~~~~~~\n");
}

static void test_nesting_limit(void **state) {
  (void)state;
  enum { N = 20000 };
  char *src = malloc(2 * N + 16);
  strcpy(src, "x = ");
  memset(src + 4, '(', N);
  strcpy(src + 4 + N, "1");
  memset(src + 5 + N, ')', N);
  src[5 + 2 * N] = '\0';
  int n;
  char *out = errors_of(src, &n);
  assert_int_equal(n, 1);
  assert_non_null(strstr(out, "error: expression nested too deeply\n"));
  free(out);
  free(src);
}

//
// Robustness
//

// Every node lies in the file and its range is not reversed.
static void check_tree(const Ast *n, int file) {
  for (; n; n = n->next) {
    assert_int_equal(n->loc.file, file);
    assert_true(n->loc.first_line >= 1 && n->loc.first_column >= 1);
    assert_true(n->loc.first_line < n->loc.last_line ||
                (n->loc.first_line == n->loc.last_line &&
                 n->loc.first_column <= n->loc.last_column));
    check_tree(n->lhs, file);
    check_tree(n->rhs, file);
    check_tree(n->list, file);
    check_tree(n->body, file);
  }
}

// Parses without looking at the diagnostics; the arena is the caller's so
// that many small parses share its blocks.
static void parse_quietly(Arena *a, const char *src, size_t len, FILE *sink) {
  Diag d;
  diag_init(&d, sink);
  int file = diag_add_file(&d, "t.anet", src, len);
  check_tree(parse_file(a, &d, file), file);
  diag_free(&d);
}

static void test_prefixes(void **state) {
  (void)state;
  FILE *sink = fopen("/dev/null", "w");
  assert_non_null(sink);
  Arena a = {0};
  size_t n = strlen(sample);
  for (size_t i = 0; i <= n; i++)
    parse_quietly(&a, sample, i, sink);
  arena_free(&a);
  fclose(sink);
}

// Every byte of the sample replaced by each of a few troublemakers, parsed
// whole and cut right after the change.
static void test_mutations(void **state) {
  (void)state;
  static const char values[] = {'(', ')', '{', '}', '[', '\n', '"', '/', '*', ';',
                                '=', 'x', '.', '$', (char)0xff, (char)0xc3};
  FILE *sink = fopen("/dev/null", "w");
  assert_non_null(sink);
  Arena a = {0};
  size_t n = strlen(sample);
  char *buf = malloc(n + 1);
  for (size_t i = 0; i < n; i++) {
    for (size_t v = 0; v < sizeof values; v++) {
      memcpy(buf, sample, n + 1);
      buf[i] = values[v];
      parse_quietly(&a, buf, n, sink);
      parse_quietly(&a, buf, i + 1, sink);
    }
    if (i % 64 == 63)
      arena_free(&a);
  }
  arena_free(&a);
  free(buf);
  fclose(sink);
}

static void test_random_bytes(void **state) {
  (void)state;
  enum { N = 1 << 20 };
  char *buf = malloc(N);
  uint32_t x = 12345;
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < N; i++) {
      x = x * 1103515245u + 12345u;
      buf[i] = (char)(x >> 16);
      if (round == 1) // text-like: mostly tokens
        buf[i] = "ab(){}[]=+-*/,:;\n 0123\"#.e"[(x >> 16) % 26];
      if (buf[i] == '\0')
        buf[i] = 'z';
    }
    if (round == 2) // one long valid line followed by garbage
      memset(buf, '(', N / 2);
    Parse p;
    FILE *sink = fopen("/dev/null", "w");
    parse_run(&p, buf, N, sink);
    if (round != 2) {
      assert_true(p.d.stop);
      assert_true(p.d.errors > p.d.max_errors);
    }
    check_tree(p.ast, p.file);
    parse_done(&p, false);
    fclose(sink);
  }
  free(buf);
}

// Valid input of many statements parses in linear time.
static void test_long_file(void **state) {
  (void)state;
  enum { LINES = 200000 };
  char *src = malloc((size_t)LINES * 32);
  char *w = src;
  for (int i = 0; i < LINES; i++)
    w += sprintf(w, "x%d = x + %d\n", i % 1000, i);
  Parse p;
  parse_run(&p, src, (size_t)(w - src), NULL);
  assert_int_equal(p.d.errors, 0);
  assert_int_equal(ast_count(p.ast), LINES);
  parse_done(&p, true);
  free(src);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_precedence),
      cmocka_unit_test(test_literals),
      cmocka_unit_test(test_calls),
      cmocka_unit_test(test_statements),
      cmocka_unit_test(test_declarations),
      cmocka_unit_test(test_repeat),
      cmocka_unit_test(test_line_structure),
      cmocka_unit_test(test_comments),
      cmocka_unit_test(test_sample),
      cmocka_unit_test(test_locations_expr),
      cmocka_unit_test(test_locations_literals),
      cmocka_unit_test(test_locations_decls),
      cmocka_unit_test(test_ast_helpers),
      cmocka_unit_test(test_lexical_errors),
      cmocka_unit_test(test_syntax_errors),
      cmocka_unit_test(test_error_recovery),
      cmocka_unit_test(test_error_layout),
      cmocka_unit_test(test_nesting_limit),
      cmocka_unit_test(test_prefixes),
      cmocka_unit_test(test_mutations),
      cmocka_unit_test(test_random_bytes),
      cmocka_unit_test(test_long_file),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
