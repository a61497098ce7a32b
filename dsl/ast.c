// ast.c — constructors of the .anet abstract syntax tree. The parser's
// grammar actions call these; every node lives in the compilation's arena.
// Which fields a kind uses is documented next to AstKind in dsl.h.
#include "dsl.h"

#include <string.h>

Ast *ast_new(Arena *a, AstKind kind, SrcLoc loc) {
  Ast *n = arena_alloc(a, sizeof(Ast));
  n->kind = kind;
  n->loc = loc;
  n->name_loc = loc_none();
  return n;
}

// The location of `name` written at the start of `loc` (identifiers never
// span lines), for constructors that are not given the name's location.
static SrcLoc name_at_start(SrcLoc loc, const char *name) {
  SrcLoc l = loc;
  l.last_line = l.first_line;
  l.last_column = l.first_column + (int)strlen(name) - 1;
  return l;
}

static Ast *ast_named(Arena *a, AstKind kind, SrcLoc loc, const char *name,
                      SrcLoc name_loc) {
  Ast *n = ast_new(a, kind, loc);
  n->name = name;
  n->name_loc = name_loc;
  return n;
}

Ast *ast_int(Arena *a, SrcLoc loc, int64_t v) {
  Ast *n = ast_new(a, AST_INT, loc);
  n->ival = v;
  return n;
}

Ast *ast_float(Arena *a, SrcLoc loc, double v) {
  Ast *n = ast_new(a, AST_FLOAT, loc);
  n->fval = v;
  return n;
}

Ast *ast_str(Arena *a, SrcLoc loc, const char *s) {
  Ast *n = ast_new(a, AST_STR, loc);
  n->str = s;
  return n;
}

Ast *ast_name(Arena *a, SrcLoc loc, const char *name) {
  return ast_named(a, AST_NAME, loc, name, loc);
}

Ast *ast_list(Arena *a, SrcLoc loc, Ast *items) {
  Ast *n = ast_new(a, AST_LIST, loc);
  n->list = items;
  return n;
}

Ast *ast_call(Arena *a, SrcLoc loc, const char *name, SrcLoc name_loc, Ast *args) {
  Ast *n = ast_named(a, AST_CALL, loc, name, name_loc);
  n->list = args;
  return n;
}

Ast *ast_kwarg(Arena *a, SrcLoc loc, const char *name, SrcLoc name_loc, Ast *value) {
  Ast *n = ast_named(a, AST_KWARG, loc, name, name_loc);
  n->rhs = value;
  return n;
}

Ast *ast_binop(Arena *a, SrcLoc loc, int op, Ast *lhs, Ast *rhs) {
  Ast *n = ast_new(a, AST_BINOP, loc);
  n->op = op;
  n->lhs = lhs;
  n->rhs = rhs;
  return n;
}

Ast *ast_neg(Arena *a, SrcLoc loc, Ast *operand) {
  Ast *n = ast_new(a, AST_NEG, loc);
  n->op = '-';
  n->lhs = operand;
  return n;
}

Ast *ast_assign(Arena *a, SrcLoc loc, const char *name, SrcLoc name_loc, Ast *value) {
  Ast *n = ast_named(a, AST_ASSIGN, loc, name, name_loc);
  n->rhs = value;
  return n;
}

Ast *ast_param(Arena *a, SrcLoc loc, const char *name, SrcLoc name_loc, Ast *type,
               Ast *init) {
  Ast *n = ast_named(a, AST_PARAM, loc, name, name_loc);
  n->lhs = type;
  n->rhs = init;
  return n;
}

Ast *ast_input(Arena *a, SrcLoc loc, const char *name, SrcLoc name_loc, Ast *type) {
  Ast *n = ast_named(a, AST_INPUT, loc, name, name_loc);
  n->lhs = type;
  return n;
}

Ast *ast_return(Arena *a, SrcLoc loc, Ast *value) {
  Ast *n = ast_new(a, AST_RETURN, loc);
  n->rhs = value;
  return n;
}

Ast *ast_output(Arena *a, SrcLoc loc, const char *name, SrcLoc name_loc, Ast *value) {
  Ast *n = ast_named(a, AST_OUTPUT, loc, name, name_loc);
  n->rhs = value;
  return n;
}

Ast *ast_loss(Arena *a, SrcLoc loc, Ast *value) {
  Ast *n = ast_new(a, AST_LOSS, loc);
  n->rhs = value;
  return n;
}

Ast *ast_repeat(Arena *a, SrcLoc loc, const char *name, SrcLoc name_loc, Ast *count,
                Ast *body) {
  Ast *n = ast_named(a, AST_REPEAT, loc, name, name_loc);
  n->rhs = count;
  n->body = body;
  return n;
}

Ast *ast_model(Arena *a, SrcLoc loc, const char *name, SrcLoc name_loc, Ast *body) {
  Ast *n = ast_named(a, AST_MODEL, loc, name, name_loc);
  n->body = body;
  return n;
}

Ast *ast_layer(Arena *a, SrcLoc loc, const char *name, SrcLoc name_loc, Ast *formals,
               Ast *body) {
  Ast *n = ast_named(a, AST_LAYER, loc, name, name_loc);
  n->list = formals;
  n->body = body;
  return n;
}

// `loc` starts with the formal's name.
Ast *ast_formal(Arena *a, SrcLoc loc, const char *name, Ast *dflt) {
  Ast *n = ast_named(a, AST_FORMAL, loc, name, name_at_start(loc, name));
  n->rhs = dflt;
  return n;
}

// `dtype` is "" when omitted; otherwise `loc` starts with it.
Ast *ast_type(Arena *a, SrcLoc loc, const char *dtype, Ast *dims) {
  Ast *n = ast_named(a, AST_TYPE, loc, dtype, loc_none());
  if (*dtype)
    n->name_loc = name_at_start(loc, dtype);
  n->list = dims;
  return n;
}

// Appending NULL (a statement dropped after an error) leaves the list as is.
Ast *ast_append(Ast *list, Ast *item) {
  if (!list)
    return item;
  Ast *tail = list;
  while (tail->next)
    tail = tail->next;
  tail->next = item;
  return list;
}

int ast_count(const Ast *list) {
  int n = 0;
  for (; list; list = list->next)
    n++;
  return n;
}
