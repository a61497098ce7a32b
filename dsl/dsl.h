// dsl.h — the .anet front end: model files and the prelude, the lexer and
// parser (flex, bison), the AST, and elaboration into the forward graph.
#ifndef ANEC_DSL_H
#define ANEC_DSL_H

#include "ir.h"

//
// source.c — reading model files
//
// Reads `path`, rejects what is not text (NUL bytes, invalid UTF-8, over
// 64 MiB) with a located error, and registers it. Returns the file id or -1.
int source_load(Diag *d, const char *path);
// The prelude of standard layers (dsl/prelude.anet, embedded at build time).
int source_load_prelude(Diag *d);
extern const char anec_prelude_text[];

//
// ast.c — the abstract syntax tree built by the parser
//
typedef enum {
  // expressions
  AST_INT,    // ival
  AST_FLOAT,  // fval
  AST_STR,    // str
  AST_NAME,   // name
  AST_LIST,   // [list...]
  AST_CALL,   // name(list...); list holds expressions and AST_KWARGs
  AST_KWARG,  // name = rhs, inside a call
  AST_BINOP,  // lhs op rhs; op is one of + - * / % @
  AST_NEG,    // -lhs
  // statements
  AST_ASSIGN, // name = rhs
  AST_PARAM,  // param name: lhs(type) = rhs(initializer)
  AST_INPUT,  // input name: lhs(type)
  AST_RETURN, // return rhs
  AST_OUTPUT, // output name = rhs, or `output name` (rhs NULL)
  AST_LOSS,   // loss rhs
  AST_REPEAT, // repeat name [: rhs(count)] { body }; without rhs the count is `name`
  // declarations and parts
  AST_MODEL,  // model name { body }: hyper-parameter assignments
  AST_LAYER,  // layer name(list of AST_FORMAL) { body }
  AST_FORMAL, // name [= rhs(default)]
  AST_TYPE,   // name(dtype, "" when omitted)[list(dims)]
} AstKind;

typedef struct Ast Ast;
struct Ast {
  AstKind kind;
  SrcLoc loc;        // the whole construct
  SrcLoc name_loc;   // the name, where the construct has one
  Ast *next;         // next sibling in a list
  const char *name;
  int64_t ival;
  double fval;
  const char *str;
  int op;
  Ast *lhs, *rhs;
  Ast *list;
  Ast *body;
};

Ast *ast_new(Arena *a, AstKind kind, SrcLoc loc);
Ast *ast_int(Arena *a, SrcLoc loc, int64_t v);
Ast *ast_float(Arena *a, SrcLoc loc, double v);
Ast *ast_str(Arena *a, SrcLoc loc, const char *s);
Ast *ast_name(Arena *a, SrcLoc loc, const char *name);
Ast *ast_list(Arena *a, SrcLoc loc, Ast *items);
Ast *ast_call(Arena *a, SrcLoc loc, const char *name, SrcLoc name_loc, Ast *args);
Ast *ast_kwarg(Arena *a, SrcLoc loc, const char *name, SrcLoc name_loc, Ast *value);
Ast *ast_binop(Arena *a, SrcLoc loc, int op, Ast *lhs, Ast *rhs);
Ast *ast_neg(Arena *a, SrcLoc loc, Ast *operand);
Ast *ast_assign(Arena *a, SrcLoc loc, const char *name, SrcLoc name_loc, Ast *value);
Ast *ast_param(Arena *a, SrcLoc loc, const char *name, SrcLoc name_loc, Ast *type, Ast *init);
Ast *ast_input(Arena *a, SrcLoc loc, const char *name, SrcLoc name_loc, Ast *type);
Ast *ast_return(Arena *a, SrcLoc loc, Ast *value);
Ast *ast_output(Arena *a, SrcLoc loc, const char *name, SrcLoc name_loc, Ast *value);
Ast *ast_loss(Arena *a, SrcLoc loc, Ast *value);
Ast *ast_repeat(Arena *a, SrcLoc loc, const char *name, SrcLoc name_loc, Ast *count, Ast *body);
Ast *ast_model(Arena *a, SrcLoc loc, const char *name, SrcLoc name_loc, Ast *body);
Ast *ast_layer(Arena *a, SrcLoc loc, const char *name, SrcLoc name_loc, Ast *formals, Ast *body);
Ast *ast_formal(Arena *a, SrcLoc loc, const char *name, Ast *dflt);
Ast *ast_type(Arena *a, SrcLoc loc, const char *dtype, Ast *dims);
Ast *ast_append(Ast *list, Ast *item); // appends to a `next` list; returns the head
int ast_count(const Ast *list);

// parser.y + lexer.l — parses one registered file. Returns the list of
// top-level items (AST_MODEL, AST_LAYER, statements); errors go to `d`.
Ast *parse_file(Arena *a, Diag *d, int file);

//
// elab.c — elaborates the AST into the forward graph
//
typedef struct Define {
  const char *name;
  const char *value;  // text after '='
  int file;           // the "<command line>" pseudo-file holding "-D name=value"
} Define;

Graph *elab_program(Arena *a, Diag *d, Ast *prelude, Ast *model, int model_file,
                     const Define *defs, int ndefs);


#endif
