// parser.y — the .anet grammar: builds the AST of one file from lexer.l's
// tokens, reports syntax errors in GCC style ("expected ')' before '{'") and
// recovers at statement ends so one run reports several errors.
// parse_file() itself, which drives scanner and parser, is in lexer.l.

%code requires {
#include "dsl.h"

#ifndef YY_TYPEDEF_YY_SCANNER_T
#define YY_TYPEDEF_YY_SCANNER_T
typedef void *yyscan_t;
#endif

// What an NL token stood for; syntax errors name it accordingly.
typedef enum { NL_NEWLINE, NL_SEMI, NL_BRACE, NL_EOF } NlKind;

enum { LEX_MAX_NEST = 64 };

// The scanner's state (flex's yyextra). Positions are 1-based; columns count bytes.
typedef struct LexState {
  Arena *arena;
  Diag *diag;
  int file;
  int line, col;          // position of the next byte
  size_t offset;          // byte offset of the next byte
  int depth;              // open ( and [; newlines inside them are not NLs
  bool nl_skipped;        // a newline inside them since the last token
  char open[LEX_MAX_NEST]; // which bracket each of the first levels opened
  int last;               // last token returned, 0 before the first
  NlKind nl;              // what it stood for, if it was NL
  size_t last_offset;     // its spelling, for messages
  int last_len;
  SrcLoc real_end;        // the last token that was not NL (file -1: none yet)
  SrcLoc comment;         // the "/*" of the block comment being skipped
  SrcLoc last_error;      // where the last error was reported (lexer or parser)
} LexState;

// The parser's state (%parse-param); `lex` is the scanner's yyextra.
typedef struct ParseCtx {
  LexState lex;
  Ast *items;  // the result: top-level items
} ParseCtx;

// A list under construction: O(1) appends.
typedef struct AstList {
  Ast *head, *tail;
} AstList;

#define YYLLOC_DEFAULT(Cur, Rhs, N)                                   \
  do {                                                                \
    if (N) {                                                          \
      (Cur).file = YYRHSLOC(Rhs, 1).file;                             \
      (Cur).first_line = YYRHSLOC(Rhs, 1).first_line;                 \
      (Cur).first_column = YYRHSLOC(Rhs, 1).first_column;             \
      (Cur).last_line = YYRHSLOC(Rhs, N).last_line;                   \
      (Cur).last_column = YYRHSLOC(Rhs, N).last_column;               \
    } else {                                                          \
      (Cur).file = YYRHSLOC(Rhs, 0).file;                             \
      (Cur).first_line = (Cur).last_line = YYRHSLOC(Rhs, 0).last_line; \
      (Cur).first_column = (Cur).last_column = YYRHSLOC(Rhs, 0).last_column; \
    }                                                                 \
  } while (0)
}

%code provides {
int yylex(YYSTYPE *yylval, YYLTYPE *yylloc, yyscan_t scanner);
// A token's spelling quoted for messages ('foo'), shortened when long.
char *parse_quote(Arena *a, const char *text, size_t len);
}

%code {
#include <string.h>

#define ARENA (ctx->lex.arena)

static void yyerror(YYLTYPE *loc, yyscan_t scanner, ParseCtx *ctx, const char *msg);
static AstList list_add(AstList l, Ast *item);
static Ast *parse_hyper(ParseCtx *ctx, Ast *stmt);
static bool parse_stop(ParseCtx *ctx);
}

%define api.pure full
%define api.location.type {SrcLoc}
%define parse.error custom
%define parse.lac full
%locations
%expect 0
%param {yyscan_t scanner}
%parse-param {ParseCtx *ctx}

%initial-action {
  @$ = (SrcLoc){ctx->lex.file, 1, 1, 1, 1};
}

%union {
  Ast *ast;
  AstList list;
  const char *str;
  int64_t ival;
  double fval;
}

%token END 0 "end of input"
%token <str> IDENT "identifier"
%token <ival> INT "integer"
%token <fval> FLOAT "number"
%token <str> STRING "string"
%token NL "newline"
%token MODEL "'model'" LAYER "'layer'" PARAM "'param'" INPUT "'input'"
%token OUTPUT "'output'" LOSS "'loss'" RETURN "'return'" REPEAT "'repeat'"

%token ',' '=' ':' '(' ')' '[' ']' '{' '}'
%left '+' '-'
%left '*' '/' '%' '@'
%precedence NEG

%type <ast> item model layer block formal stmt type expr arg
%type <list> items hypers formals_opt formals stmts exprs_opt exprs args_opt args

%%

file:
  items                           { ctx->items = $1.head; }
;

items:
  %empty                          { $$ = (AstList){0}; }
| items item NL                   { $$ = list_add($1, $2); }
| items error NL                  { $$ = $1; if (parse_stop(ctx)) YYABORT; yyerrok; }
;

item: model | layer | stmt ;

model:
  MODEL IDENT '{' hypers '}'      { $$ = ast_model(ARENA, @$, $2, @2, $4.head); }
| MODEL error '{' hypers '}'      { $$ = NULL; if (parse_stop(ctx)) YYABORT; yyerrok; }
;

hypers:
  %empty                          { $$ = (AstList){0}; }
| hypers stmt NL                  { $$ = list_add($1, parse_hyper(ctx, $2)); }
| hypers error NL                 { $$ = $1; if (parse_stop(ctx)) YYABORT; yyerrok; }
;

layer:
  LAYER IDENT '(' formals_opt ')' block { $$ = ast_layer(ARENA, @$, $2, @2, $4.head, $6); }
| LAYER error block               { $$ = NULL; if (parse_stop(ctx)) YYABORT; yyerrok; }
;

formals_opt:
  %empty                          { $$ = (AstList){0}; }
| formals
;

formals:
  formal                          { $$ = list_add((AstList){0}, $1); }
| formals ',' formal              { $$ = list_add($1, $3); }
;

formal:
  IDENT                           { $$ = ast_formal(ARENA, @$, $1, NULL); }
| IDENT '=' expr                  { $$ = ast_formal(ARENA, @$, $1, $3); }
;

block:
  '{' stmts '}'                   { $$ = $2.head; }
;

stmts:
  %empty                          { $$ = (AstList){0}; }
| stmts stmt NL                   { $$ = list_add($1, $2); }
| stmts error NL                  { $$ = $1; if (parse_stop(ctx)) YYABORT; yyerrok; }
;

stmt:
  IDENT '=' expr                  { $$ = ast_assign(ARENA, @$, $1, @1, $3); }
| PARAM IDENT ':' type '=' expr   { $$ = ast_param(ARENA, @$, $2, @2, $4, $6); }
| INPUT IDENT ':' type            { $$ = ast_input(ARENA, @$, $2, @2, $4); }
| OUTPUT IDENT                    { $$ = ast_output(ARENA, @$, $2, @2, NULL); }
| OUTPUT IDENT '=' expr           { $$ = ast_output(ARENA, @$, $2, @2, $4); }
| LOSS expr                       { $$ = ast_loss(ARENA, @$, $2); }
| RETURN expr                     { $$ = ast_return(ARENA, @$, $2); }
| REPEAT IDENT block              { $$ = ast_repeat(ARENA, @$, $2, @2, NULL, $3); }
| REPEAT IDENT ':' expr block     { $$ = ast_repeat(ARENA, @$, $2, @2, $4, $5); }
| REPEAT error block              { $$ = NULL; if (parse_stop(ctx)) YYABORT; yyerrok; }
;

type:
  '[' exprs_opt ']'               { $$ = ast_type(ARENA, @$, "", $2.head); }
| IDENT '[' exprs_opt ']'         { $$ = ast_type(ARENA, @$, $1, $3.head); }
;

exprs_opt:
  %empty                          { $$ = (AstList){0}; }
| exprs
;

exprs:
  expr                            { $$ = list_add((AstList){0}, $1); }
| exprs ',' expr                  { $$ = list_add($1, $3); }
;

expr:
  expr '+' expr                   { $$ = ast_binop(ARENA, @$, '+', $1, $3); }
| expr '-' expr                   { $$ = ast_binop(ARENA, @$, '-', $1, $3); }
| expr '*' expr                   { $$ = ast_binop(ARENA, @$, '*', $1, $3); }
| expr '/' expr                   { $$ = ast_binop(ARENA, @$, '/', $1, $3); }
| expr '%' expr                   { $$ = ast_binop(ARENA, @$, '%', $1, $3); }
| expr '@' expr                   { $$ = ast_binop(ARENA, @$, '@', $1, $3); }
| '-' expr %prec NEG              { $$ = ast_neg(ARENA, @$, $2); }
| INT                             { $$ = ast_int(ARENA, @$, $1); }
| FLOAT                           { $$ = ast_float(ARENA, @$, $1); }
| STRING                          { $$ = ast_str(ARENA, @$, $1); }
| IDENT                           { $$ = ast_name(ARENA, @$, $1); }
| IDENT '(' args_opt ')'          { $$ = ast_call(ARENA, @$, $1, @1, $3.head); }
| '(' expr ')'                    { $$ = $2; }
| '[' exprs_opt ']'               { $$ = ast_list(ARENA, @$, $2.head); }
;

args_opt:
  %empty                          { $$ = (AstList){0}; }
| args
;

args:
  arg                             { $$ = list_add((AstList){0}, $1); }
| args ',' arg                    { $$ = list_add($1, $3); }
;

arg:
  expr
| IDENT '=' expr                  { $$ = ast_kwarg(ARENA, @$, $1, @1, $3); }
;

%%

static AstList list_add(AstList l, Ast *item) {
  if (!item)
    return l;
  if (l.tail)
    l.tail->next = item;
  else
    l.head = item;
  l.tail = item;
  return l;
}

static bool parse_stop(ParseCtx *ctx) {
  return ctx->lex.diag->stop;
}

// A model header holds only `name = expr` lines.
static Ast *parse_hyper(ParseCtx *ctx, Ast *stmt) {
  if (!stmt || stmt->kind == AST_ASSIGN)
    return stmt;
  diag_error(ctx->lex.diag, stmt->loc,
             "only hyper-parameter assignments are allowed in a model header");
  return NULL;
}

//
// Syntax error messages
//

// Symbols of the expected-token set, grouped so that messages stay short.
enum {
  EXP_EXPR = 1,  // every token that starts an expression
  EXP_STMT = 2,  // every token that starts a statement
  EXP_TOP = 4,   // 'model'/'layer' too: anything goes, say nothing
};

// The character of a single-character token like '(' (0 for other tokens).
static int char_token(yysymbol_kind_t s) {
  const char *name = yysymbol_name(s);
  return name[0] == '\'' && name[1] && name[2] == '\'' && !name[3] ? name[1] : 0;
}

static bool starts_expr(yysymbol_kind_t s) {
  int c = char_token(s);
  return s == YYSYMBOL_INT || s == YYSYMBOL_FLOAT || s == YYSYMBOL_STRING ||
         s == YYSYMBOL_IDENT || (c && strchr("([-", c));
}

static bool starts_stmt(yysymbol_kind_t s) {
  return s == YYSYMBOL_IDENT || s == YYSYMBOL_PARAM || s == YYSYMBOL_INPUT ||
         s == YYSYMBOL_OUTPUT || s == YYSYMBOL_LOSS || s == YYSYMBOL_RETURN ||
         s == YYSYMBOL_REPEAT;
}

// Tokens that would continue what came before (an expression, or a name
// that could start a named argument): not worth listing next to others.
static bool continues_expr(yysymbol_kind_t s) {
  int c = char_token(s);
  return c && strchr("+-*/%@(=", c);
}

static int expected_groups(const yysymbol_kind_t *exp, int n) {
  int g = 0;
  for (int i = 0; i < n; i++) {
    if (exp[i] == YYSYMBOL_INT)
      g |= EXP_EXPR;
    if (exp[i] == YYSYMBOL_PARAM)
      g |= EXP_STMT;
    if (exp[i] == YYSYMBOL_MODEL)
      g |= EXP_TOP;
  }
  return g;
}

static bool in_group(int g, yysymbol_kind_t s) {
  return ((g & EXP_EXPR) && starts_expr(s)) || ((g & EXP_STMT) && starts_stmt(s));
}

static void names_add(const char **names, int *n, int max, const char *name) {
  if (*n < max)
    names[*n] = name;
  (*n)++;
}

// Names of the expected tokens, groups collapsed and expression operators
// left out when something else is possible. Returns how many there are; only
// the first `max` are stored. 0 means "too many to be worth listing".
static int expected_names(const yypcontext_t *yyctx, const char **names, int max) {
  yysymbol_kind_t exp[YYNTOKENS];
  int n = yypcontext_expected_tokens(yyctx, exp, YYNTOKENS);
  int g = expected_groups(exp, n);
  if (g & EXP_TOP)
    return 0;
  bool others = g != 0;
  for (int i = 0; i < n; i++)
    others |= !in_group(g, exp[i]) && !continues_expr(exp[i]);
  int m = 0;
  if (g & EXP_EXPR)
    names_add(names, &m, max, "expression");
  if (g & EXP_STMT)
    names_add(names, &m, max, "statement");
  for (int i = 0; i < n; i++)
    if (!in_group(g, exp[i]) && !(others && continues_expr(exp[i])))
      names_add(names, &m, max, exp[i] == YYSYMBOL_NL ? "newline" : yysymbol_name(exp[i]));
  if (m == 1 && strcmp(names[0], "newline") == 0)
    names[0] = "newline or ';'";
  return m;
}

// "'x'", "'x' or 'y'", "'x', 'y' or 'z'"
static char *join_names(Arena *a, const char **names, int n) {
  char *s = arena_strdup(a, names[0]);
  for (int i = 1; i < n; i++)
    s = arena_printf(a, "%s%s%s", s, i == n - 1 ? " or " : ", ", names[i]);
  return s;
}

// Where the error is, phrased after "expected X": "before 'foo'", "at end of line".
static const char *lookahead_text(ParseCtx *ctx, yysymbol_kind_t tok, bool *before) {
  LexState *ls = &ctx->lex;
  *before = true;
  if (tok == YYSYMBOL_YYEOF || (tok == YYSYMBOL_NL && ls->nl == NL_EOF)) {
    *before = false;
    return "end of input";
  }
  if (tok == YYSYMBOL_NL && ls->nl == NL_NEWLINE) {
    *before = false;
    return "end of line";
  }
  if (tok == YYSYMBOL_NL)
    return ls->nl == NL_SEMI ? "';'" : "'}'";
  const char *text = ls->diag->files[ls->file].text + ls->last_offset;
  return parse_quote(ls->arena, text, (size_t)ls->last_len);
}

char *parse_quote(Arena *a, const char *text, size_t len) {
  if (len <= 40)
    return arena_printf(a, "'%.*s'", (int)len, text);
  int n = 36;
  while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80)
    n--; // do not cut a UTF-8 character
  return arena_printf(a, "'%.*s...'", n, text);
}

static bool same_start(SrcLoc a, SrcLoc b) {
  return a.file == b.file && a.first_line == b.first_line &&
         a.first_column == b.first_column;
}

static int yyreport_syntax_error(const yypcontext_t *yyctx, yyscan_t scanner,
                                 ParseCtx *ctx) {
  (void)scanner;
  SrcLoc loc = *yypcontext_location(yyctx);
  if (same_start(loc, ctx->lex.last_error))
    return 0; // the lexer already complained about this token
  ctx->lex.last_error = loc;
  enum { MAX_LISTED = 4 };
  const char *names[MAX_LISTED];
  int n = expected_names(yyctx, names, MAX_LISTED);
  bool before;
  const char *where = lookahead_text(ctx, yypcontext_token(yyctx), &before);
  Diag *d = ctx->lex.diag;
  if (n == 0 || n > MAX_LISTED)
    diag_error(d, loc, "unexpected %s", where);
  else
    diag_error(d, loc, "expected %s %s %s", join_names(ARENA, names, n),
               before ? "before" : "at", where);
  return 0;
}

// Only called when the parser stack overflows ("memory exhausted").
static void yyerror(YYLTYPE *loc, yyscan_t scanner, ParseCtx *ctx, const char *msg) {
  (void)scanner;
  (void)msg;
  diag_error(ctx->lex.diag, *loc, "expression nested too deeply");
}
