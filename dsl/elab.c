// elab.c — elaborates the AST into the forward graph: evaluates the model
// header (with -D overrides), runs layer bodies call by call, unrolls
// `repeat` with per-copy parameter names, folds number arithmetic, and adds a
// graph node for every tensor operation, inferring its shape on the spot so
// errors point at the expression that caused them.
#include "dsl.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef enum { V_POISON, V_INT, V_FLOAT, V_STR, V_LIST, V_TENSOR } ValKind;

typedef struct Value Value;
struct Value {
  ValKind kind;
  int64_t i;
  double f;
  const char *s;
  Value *items;  // V_LIST
  int nitems;
  Node *node;    // V_TENSOR
  SrcLoc loc;    // the expression that produced it
  const char *name; // a number read from a hyper-parameter: its name
  SrcLoc origin;    // ... and where it was set
};

typedef struct Binding Binding;
struct Binding {
  const char *name;
  Value val;
  SrcLoc loc;     // where it was bound
  bool hyper;     // a hyper-parameter (read-only below the header)
  bool builtin;   // true, false: read-only, not reported as hyper-parameters
  Binding *next;
};

typedef struct Scope Scope;
struct Scope {
  Binding *vars;  // newest first
  StrMap map;     // name -> Binding
  Scope *parent;
  bool top;       // the model's top level (inputs, outputs, loss allowed)
};

typedef struct Frame Frame;
struct Frame {
  const Ast *layer;
  SrcLoc call;
  Frame *up;
};

typedef struct Lower {
  Arena *a;
  Diag *d;
  Graph *g;
  int model_file;
  Ast *layers[512];      // layer definitions visible to the model
  int nlayers;
  Scope *globals;        // hyper-parameters and constants
  Frame *frame;          // innermost layer call
  int depth;
  int eval_depth;        // active eval() calls: bounds the recursion
  const char *prefix;    // parameter name prefix: "layers.3."
  const char *scope;     // node scope: "layers.3/block/attention"
  StrMap params;         // full parameter name -> SrcLoc of its declaration
  StrMap inputs;         // input name -> Node
  StrMap outputs;        // output name -> Node
  int64_t steps;         // statements and repeat iterations run, for the budget
  const Define *defs;
  int ndefs;
  bool *def_used;
  bool has_loss;
  SrcLoc loss_loc;
} Lower;

// MAX_EXPR_DEPTH bounds eval()'s recursion: the parser's stack limits nesting
// in brackets, but not a left-associative chain like 1 + 1 + ... + 1.
// MAX_NODES and MAX_STEPS bound what a model may unroll to, so that nested
// repeats cannot make the compiler run for hours.
enum { MAX_CALL_DEPTH = 64, MAX_REPEAT = 100000, MAX_EXPR_DEPTH = 1000, MAX_NODES = 1 << 20 };
#define MAX_STEPS ((int64_t)5 * 1000 * 1000)

static Value eval(Lower *L, Scope *sc, const Ast *e);
static bool exec_block(Lower *L, Scope *sc, const Ast *body, Value *ret, bool *returned);

//
// Values and scopes
//
static Value v_poison(SrcLoc loc) { return (Value){.kind = V_POISON, .loc = loc}; }
static Value v_int(int64_t i, SrcLoc loc) { return (Value){.kind = V_INT, .i = i, .loc = loc}; }
static Value v_float(double f, SrcLoc loc) { return (Value){.kind = V_FLOAT, .f = f, .loc = loc}; }
static Value v_tensor(Node *n, SrcLoc loc) { return (Value){.kind = V_TENSOR, .node = n, .loc = loc}; }

static bool is_num(Value v) { return v.kind == V_INT || v.kind == V_FLOAT; }
static double num(Value v) { return v.kind == V_INT ? (double)v.i : v.f; }

static const char *kind_name(ValKind k) {
  switch (k) {
  case V_INT: return "an integer";
  case V_FLOAT: return "a number";
  case V_STR: return "a string";
  case V_LIST: return "a list";
  case V_TENSOR: return "a tensor";
  default: return "an invalid value";
  }
}

static Scope *scope_new(Lower *L, Scope *parent) {
  Scope *s = arena_alloc(L->a, sizeof *s);
  s->parent = parent;
  strmap_init(&s->map, L->a);
  return s;
}

static Binding *scope_find(Scope *sc, const char *name) {
  for (; sc; sc = sc->parent) {
    Binding *b = strmap_get(&sc->map, name);
    if (b)
      return b;
  }
  return NULL;
}

// Adds a new binding to the scope (the name must not be bound in it yet).
static Binding *scope_add(Lower *L, Scope *sc, Binding init) {
  Binding *b = arena_alloc(L->a, sizeof *b);
  *b = init;
  b->next = sc->vars;
  sc->vars = b;
  strmap_put(&sc->map, b->name, b);
  return b;
}

static void scope_set(Lower *L, Scope *sc, const char *name, Value v, SrcLoc loc) {
  Binding *b = strmap_get(&sc->map, name);
  if (b) {
    b->val = v;
    b->loc = loc;
    return;
  }
  scope_add(L, sc, (Binding){.name = name, .val = v, .loc = loc});
}

//
// Diagnostics with the layer call stack
//
static void note_stack(Lower *L) {
  for (Frame *f = L->frame; f; f = f->up)
    diag_note(L->d, f->call, "in layer '%s' called from here", f->layer->name);
}

static void error_at(Lower *L, SrcLoc loc, const char *fmt, ...) ANEC_PRINTF(3, 4);
static void error_at(Lower *L, SrcLoc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  diag_report(L->d, DIAG_ERROR, loc, fmt, ap);
  va_end(ap);
  note_stack(L);
}

// An error whose own notes follow; the caller ends it with note_stack().
static void error_begin(Lower *L, SrcLoc loc, const char *fmt, ...) ANEC_PRINTF(3, 4);
static void error_begin(Lower *L, SrcLoc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  diag_report(L->d, DIAG_ERROR, loc, fmt, ap);
  va_end(ap);
}

static const char *suggest_name(Lower *L, Scope *sc, const char *name, bool calls) {
  const char *cands[1024];
  int n = 0;
  for (Scope *s = sc; s; s = s->parent)
    for (Binding *b = s->vars; b && n < 1000; b = b->next)
      cands[n++] = b->name;
  if (calls) {
    for (int i = 0; i < L->nlayers && n < 1000; i++)
      cands[n++] = L->layers[i]->name;
    for (int i = 0; i < OP_COUNT && n < 1000; i++)
      if (op_info[i].arity != 0)
        cands[n++] = op_info[i].name;
    static const char *const builtins[] = {"size", "min", "causal_mask", "rope_cos", "rope_sin"};
    for (size_t i = 0; i < sizeof builtins / sizeof *builtins; i++)
      cands[n++] = builtins[i];
  }
  return diag_suggest(name, cands, n);
}

//
// Graph nodes
//
// The innermost location in the model's own file: the node's own location,
// or the layer call that led to it.
static SrcLoc site_of(Lower *L, SrcLoc loc) {
  if (loc.file == L->model_file)
    return loc;
  for (Frame *f = L->frame; f; f = f->up)
    if (f->call.file == L->model_file)
      return f->call;
  return loc;
}

static Node *node_new(Lower *L, OpKind op, Node **in, int nin, SrcLoc loc) {
  if (L->g->nnodes == MAX_NODES) {
    error_at(L, loc, "the model unrolls to more than %d graph nodes", MAX_NODES);
    L->d->stop = true; // nothing after this would be worth reporting
  }
  Node *n = graph_add(L->g, op, in, nin, loc);
  n->site = site_of(L, loc);
  n->scope = L->scope;
  return n;
}

// Infers the node's shape; on failure the node is dropped from view
// (the value is poison) and the call stack is noted.
static Value finish(Lower *L, Node *n) {
  if (!node_infer(n, L->d)) {
    note_stack(L);
    return v_poison(n->loc);
  }
  return v_tensor(n, n->loc);
}

static Node *const_node(Lower *L, double value, SrcLoc loc) {
  Node *n = node_new(L, OP_CONST, NULL, 0, loc);
  n->value = value;
  n->dtype = DT_F32;
  n->shape.rank = 0;
  return n;
}

static Value op_nodes(Lower *L, OpKind op, Value *args, int nargs, SrcLoc loc) {
  Node *in[8];
  for (int i = 0; i < nargs; i++)
    in[i] = args[i].kind == V_TENSOR ? args[i].node : const_node(L, num(args[i]), args[i].loc);
  return finish(L, node_new(L, op, in, nargs, loc));
}

//
// Compile-time arithmetic
//
// Where a number operand came from, when it is a named hyper-parameter.
static void note_origin(Lower *L, Value v) {
  if (!v.name || v.origin.file < 0)
    return;
  if (v.kind == V_INT)
    diag_note(L->d, v.origin, "'%s' is %lld here", v.name, (long long)v.i);
  else
    diag_note(L->d, v.origin, "'%s' is %g here", v.name, v.f);
}

static Value arith_int(Lower *L, int op, Value a, Value b, SrcLoc loc) {
  int64_t r = 0;
  bool ovf = false;
  switch (op) {
  case '+': ovf = __builtin_add_overflow(a.i, b.i, &r); break;
  case '-': ovf = __builtin_sub_overflow(a.i, b.i, &r); break;
  case '*': ovf = __builtin_mul_overflow(a.i, b.i, &r); break;
  case '/':
  case '%':
    if (b.i == 0) {
      error_at(L, loc, "division by zero");
      return v_poison(loc);
    }
    if (a.i == INT64_MIN && b.i == -1) {
      ovf = true;
      break;
    }
    if (op == '%') {
      r = a.i % b.i;
      break;
    }
    if (a.i % b.i) {
      error_begin(L, loc, "%lld is not divisible by %lld: '/' on integers must divide exactly",
                  (long long)a.i, (long long)b.i);
      note_origin(L, a);
      note_origin(L, b);
      note_stack(L);
      return v_poison(loc);
    }
    r = a.i / b.i;
    break;
  }
  if (ovf) {
    error_at(L, loc, "integer overflow in '%lld %c %lld'", (long long)a.i, op, (long long)b.i);
    return v_poison(loc);
  }
  return v_int(r, loc);
}

static Value arith(Lower *L, int op, Value a, Value b, SrcLoc loc) {
  if (op == '@') {
    error_at(L, loc, "'@' needs tensors, not numbers");
    return v_poison(loc);
  }
  if (a.kind == V_INT && b.kind == V_INT)
    return arith_int(L, op, a, b, loc);
  double x = num(a), y = num(b);
  switch (op) {
  case '+': return v_float(x + y, loc);
  case '-': return v_float(x - y, loc);
  case '*': return v_float(x * y, loc);
  default: // '/' and '%'
    if (y == 0) {
      error_at(L, loc, "division by zero");
      return v_poison(loc);
    }
    return v_float(op == '/' ? x / y : fmod(x, y), loc);
  }
}

static Value eval_binop(Lower *L, Scope *sc, const Ast *e) {
  Value a = eval(L, sc, e->lhs), b = eval(L, sc, e->rhs);
  if (a.kind == V_POISON || b.kind == V_POISON)
    return v_poison(e->loc);
  if (is_num(a) && is_num(b))
    return arith(L, e->op, a, b, e->loc);
  bool ok_a = is_num(a) || a.kind == V_TENSOR, ok_b = is_num(b) || b.kind == V_TENSOR;
  if (!ok_a || !ok_b) {
    Value bad = ok_a ? b : a;
    error_at(L, bad.loc, "operand of '%c' must be a number or a tensor, not %s", e->op,
             kind_name(bad.kind));
    return v_poison(e->loc);
  }
  OpKind op;
  switch (e->op) {
  case '+': op = OP_ADD; break;
  case '-': op = OP_SUB; break;
  case '*': op = OP_MUL; break;
  case '/': op = OP_DIV; break;
  case '@':
    if (is_num(a) || is_num(b)) {
      error_at(L, e->loc, "'@' needs two tensors");
      return v_poison(e->loc);
    }
    op = OP_MATMUL;
    break;
  default:
    error_at(L, e->loc, "'%c' is not defined on tensors", e->op);
    return v_poison(e->loc);
  }
  Value args[2] = {a, b};
  return op_nodes(L, op, args, 2, e->loc);
}

static Value eval_neg(Lower *L, Scope *sc, const Ast *e) {
  Value a = eval(L, sc, e->lhs);
  switch (a.kind) {
  case V_INT:
    if (a.i == INT64_MIN)
      break;
    return v_int(-a.i, e->loc);
  case V_FLOAT: return v_float(-a.f, e->loc);
  case V_TENSOR: return op_nodes(L, OP_NEG, &a, 1, e->loc);
  case V_POISON: return a;
  default: break;
  }
  error_at(L, e->loc, "cannot negate %s", kind_name(a.kind));
  return v_poison(e->loc);
}

static Value eval_name(Lower *L, Scope *sc, const Ast *e) {
  Binding *b = scope_find(sc, e->name);
  if (b) {
    Value v = b->val;
    if (v.kind != V_TENSOR)
      v.loc = e->loc;
    if (b->hyper && !b->builtin) {
      v.name = b->name;
      v.origin = b->loc;
    }
    return v;
  }
  const char *s = suggest_name(L, sc, e->name, false);
  if (s)
    error_at(L, e->loc, "unknown name '%s'; did you mean '%s'?", e->name, s);
  else
    error_at(L, e->loc, "unknown name '%s'", e->name);
  return v_poison(e->loc);
}

static Value eval_list(Lower *L, Scope *sc, const Ast *e) {
  int n = ast_count(e->list);
  Value v = {.kind = V_LIST, .nitems = n, .loc = e->loc};
  v.items = arena_alloc(L->a, sizeof(Value) * (size_t)(n ? n : 1));
  int i = 0;
  for (const Ast *it = e->list; it; it = it->next) {
    v.items[i] = eval(L, sc, it);
    if (v.items[i++].kind == V_POISON)
      return v_poison(e->loc);
  }
  return v;
}

//
// Call arguments: positional and named, matched against formal names
//
typedef struct Args {
  Value v[8];
  bool set[8];
  SrcLoc loc[8];
} Args;

// Binds the call's arguments to `formals`; the first `nreq` are required.
static bool bind_args(Lower *L, Scope *sc, const Ast *call, const char *const *formals,
                      int nformals, int nreq, Args *out) {
  memset(out, 0, sizeof *out);
  int pos = 0;
  bool ok = true;
  for (const Ast *a = call->list; a; a = a->next) {
    int slot = -1;
    if (a->kind == AST_KWARG) {
      for (int i = 0; i < nformals; i++)
        if (!strcmp(formals[i], a->name))
          slot = i;
      if (slot < 0) {
        const char *s = diag_suggest(a->name, formals, nformals);
        error_at(L, a->name_loc, "'%s' has no argument named '%s'%s%s%s", call->name, a->name,
                 s ? "; did you mean '" : "", s ? s : "", s ? "'?" : "");
        ok = false;
        continue;
      }
    } else if ((slot = pos++) >= nformals) {
      error_at(L, a->loc, "too many arguments to '%s' (it takes %d)", call->name, nformals);
      return false;
    }
    if (out->set[slot]) {
      error_at(L, a->loc, "argument '%s' of '%s' given twice", formals[slot], call->name);
      ok = false;
      continue;
    }
    out->v[slot] = eval(L, sc, a->kind == AST_KWARG ? a->rhs : a);
    out->set[slot] = true;
    out->loc[slot] = a->loc;
    if (out->v[slot].kind == V_POISON)
      return false; // already reported; later arguments would only cascade
  }
  for (int i = 0; i < nreq && ok; i++)
    if (!out->set[i]) {
      error_at(L, call->loc, "missing argument '%s' in call to '%s'", formals[i], call->name);
      ok = false;
    }
  return ok;
}

// An op's signature, split: names in positional order, their defaults
// (NULL: required).
typedef struct Formals {
  const char *name[8];
  const char *dflt[8];
  int n, nreq;      // names; the required ones lead
  char text[96];    // the copy name and dflt point into
} Formals;

static void formals_parse(const char *sig, Formals *f) {
  memset(f, 0, sizeof *f);
  snprintf(f->text, sizeof f->text, "%s", sig ? sig : "");
  for (char *s = f->text; *s && f->n < 8; f->n++) {
    f->name[f->n] = s;
    s += strcspn(s, ",=");
    if (*s == '=') {
      *s++ = '\0';
      f->dflt[f->n] = s;
      s += strcspn(s, ",");
    } else {
      f->nreq = f->n + 1;
    }
    if (*s)
      *s++ = '\0';
    s += strspn(s, " ");
  }
}

// Binds the call's arguments to op's signature (ops.h).
static bool bind_op_args(Lower *L, Scope *sc, const Ast *call, OpKind op, Formals *f, Args *a) {
  formals_parse(op_info[op].args, f);
  return bind_args(L, sc, call, f->name, f->n, f->nreq, a);
}

static bool want_tensor(Lower *L, const Args *a, int i, const char *what) {
  if (a->v[i].kind == V_TENSOR)
    return true;
  error_at(L, a->loc[i], "%s must be a tensor, not %s", what, kind_name(a->v[i].kind));
  return false;
}

static bool want_int(Lower *L, const Args *a, int i, const char *what, int64_t *out) {
  if (a->v[i].kind == V_INT) {
    *out = a->v[i].i;
    return true;
  }
  error_at(L, a->loc[i], "%s must be an integer, not %s", what, kind_name(a->v[i].kind));
  return false;
}

static bool want_num(Lower *L, const Args *a, int i, const char *what, double *out) {
  if (is_num(a->v[i])) {
    *out = num(a->v[i]);
    return true;
  }
  error_at(L, a->loc[i], "%s must be a number, not %s", what, kind_name(a->v[i].kind));
  return false;
}

// A list of integers (a shape or a permutation).
static bool want_ints(Lower *L, const Args *a, int i, const char *what, int64_t *out, int *n) {
  Value v = a->v[i];
  if (v.kind != V_LIST) {
    error_at(L, a->loc[i], "%s must be a list of integers like [2, 3], not %s", what,
             kind_name(v.kind));
    return false;
  }
  if (v.nitems > MAX_RANK) {
    error_at(L, a->loc[i], "%s has %d entries; tensors have at most %d axes", what, v.nitems,
             MAX_RANK);
    return false;
  }
  for (int k = 0; k < v.nitems; k++) {
    if (v.items[k].kind != V_INT) {
      error_at(L, v.items[k].loc, "%s entries must be integers, not %s", what,
               kind_name(v.items[k].kind));
      return false;
    }
    out[k] = v.items[k].i;
  }
  *n = v.nitems;
  return true;
}

static bool want_axis(Lower *L, const Args *a, int i, int *axis) {
  int64_t v;
  if (!want_int(L, a, i, "axis", &v))
    return false;
  if (v < -MAX_RANK || v >= MAX_RANK) {
    error_at(L, a->loc[i], "axis %lld is out of range", (long long)v);
    return false;
  }
  *axis = (int)v;
  return true;
}

//
// Built-in functions that are not graph ops
//
static bool valid_dim(Lower *L, SrcLoc loc, int64_t v, const char *what) {
  if (v >= 1 && v < MAX_DIM)
    return true;
  error_at(L, loc, "%s %lld is out of range (1 to %lld)", what, (long long)v,
           (long long)(MAX_DIM - 1));
  return false;
}

static Value call_size(Lower *L, Scope *sc, const Ast *call) {
  static const char *const f[] = {"x", "axis"};
  Args a;
  int axis;
  if (!bind_args(L, sc, call, f, 2, 2, &a) || !want_tensor(L, &a, 0, "x") ||
      !want_axis(L, &a, 1, &axis))
    return v_poison(call->loc);
  const Shape *s = &a.v[0].node->shape;
  if (axis < -s->rank || axis >= s->rank) {
    error_at(L, a.loc[1], "axis %d is out of range for a tensor of rank %d", axis, s->rank);
    return v_poison(call->loc);
  }
  return v_int(s->dims[axis < 0 ? axis + s->rank : axis], call->loc);
}

// min(a, b) and max(a, b) of numbers; max(x, axis) of a tensor is a reduction.
static Value min_max(Lower *L, const Ast *call, const Args *a, bool is_max) {
  if (!is_num(a->v[0]) || !is_num(a->v[1])) {
    error_at(L, call->loc, "'%s' of two values needs numbers", call->name);
    return v_poison(call->loc);
  }
  bool first = is_max ? num(a->v[0]) >= num(a->v[1]) : num(a->v[0]) <= num(a->v[1]);
  Value r = first ? a->v[0] : a->v[1];
  r.loc = call->loc;
  return r;
}

static Value call_min(Lower *L, Scope *sc, const Ast *call) {
  static const char *const f[] = {"a", "b"};
  Args a;
  if (!bind_args(L, sc, call, f, 2, 2, &a))
    return v_poison(call->loc);
  return min_max(L, call, &a, false);
}

static Value call_causal_mask(Lower *L, Scope *sc, const Ast *call) {
  Formals f;
  Args a;
  int64_t n;
  if (!bind_op_args(L, sc, call, OP_CAUSAL_MASK, &f, &a) || !want_int(L, &a, 0, "n", &n) ||
      !valid_dim(L, a.loc[0], n, "mask size"))
    return v_poison(call->loc);
  Node *m = node_new(L, OP_CAUSAL_MASK, NULL, 0, call->loc);
  m->shape = (Shape){.rank = 2, .dims = {n, n}};
  return finish(L, m);
}

static Value call_rope_table(Lower *L, Scope *sc, const Ast *call, OpKind op) {
  Formals f;
  Args a;
  int64_t seq, hd;
  double theta;
  if (!bind_op_args(L, sc, call, op, &f, &a) || !want_int(L, &a, 0, "seq", &seq) ||
      !want_int(L, &a, 1, "hd", &hd) || !want_num(L, &a, 2, "theta", &theta) ||
      !valid_dim(L, a.loc[0], seq, "sequence length") ||
      !valid_dim(L, a.loc[1], hd, "head dimension"))
    return v_poison(call->loc);
  if (hd % 2) {
    error_at(L, a.loc[1], "RoPE needs an even head dimension, got %lld", (long long)hd);
    return v_poison(call->loc);
  }
  if (!(theta > 0) || !isfinite(theta)) {
    error_at(L, a.loc[2], "RoPE base theta must be positive, got %g", theta);
    return v_poison(call->loc);
  }
  Node *t = node_new(L, op, NULL, 0, call->loc);
  t->shape = (Shape){.rank = 2, .dims = {seq, hd / 2}};
  t->value = theta;
  return finish(L, t);
}

// sqrt/exp/log of a number is folded; of a tensor it is a node.
static Value fold_math(Lower *L, const Ast *call, OpKind op, Value x) {
  double v = num(x), r;
  if (op == OP_SQRT || op == OP_RSQRT || op == OP_LOG) {
    if (v < 0 || (v == 0 && op != OP_SQRT)) {
      error_at(L, call->loc, "'%s' of %g is undefined", call->name, v);
      return v_poison(call->loc);
    }
  }
  switch (op) {
  case OP_SQRT: r = sqrt(v); break;
  case OP_RSQRT: r = 1 / sqrt(v); break;
  case OP_EXP: r = exp(v); break;
  case OP_LOG: r = log(v); break;
  default:
    error_at(L, call->loc, "'%s' needs a tensor, not a number", call->name);
    return v_poison(call->loc);
  }
  return v_float(r, call->loc);
}

//
// Graph ops called by name: the arguments bound by the op's signature, the
// attribute arguments converted by their names
//
// Converts attribute argument i (f->name[i]), or its default when not given,
// into the fields of t, the node to be.
typedef bool (*ArgFn)(Lower *L, const Args *a, int i, const Formals *f, Node *t);

static bool arg_axis(Lower *L, const Args *a, int i, const Formals *f, Node *t) {
  if (a->set[i])
    return want_axis(L, a, i, &t->axis);
  t->axis = strcmp(f->dflt[i], "all") ? atoi(f->dflt[i]) : AXIS_ALL;
  return true;
}

static bool arg_begin(Lower *L, const Args *a, int i, const Formals *f, Node *t) {
  return want_int(L, a, i, f->name[i], &t->begin);
}

static bool arg_end(Lower *L, const Args *a, int i, const Formals *f, Node *t) {
  return want_int(L, a, i, f->name[i], &t->end);
}

static bool arg_exponent(Lower *L, const Args *a, int i, const Formals *f, Node *t) {
  return want_num(L, a, i, f->name[i], &t->value);
}

static bool arg_mode(Lower *L, const Args *a, int i, const Formals *f, Node *t) {
  const char *m = !a->set[i] ? f->dflt[i] : a->v[i].kind == V_STR ? a->v[i].s : "";
  if (strcmp(m, "exact") && strcmp(m, "tanh")) {
    error_at(L, a->loc[i], "gelu mode must be \"exact\" or \"tanh\"");
    return false;
  }
  t->gelu = strcmp(m, "tanh") ? GELU_EXACT : GELU_TANH;
  return true;
}

static bool arg_shape(Lower *L, const Args *a, int i, const Formals *f, Node *t) {
  return want_ints(L, a, i, f->name[i], t->target.dims, &t->target.rank);
}

// One entry per axis of x (input 0); inference checks the entries.
static bool arg_perm(Lower *L, const Args *a, int i, const Formals *f, Node *t) {
  int64_t perm[MAX_RANK];
  int rank, xrank = a->v[0].node->shape.rank;
  if (!want_ints(L, a, i, f->name[i], perm, &rank))
    return false;
  if (rank != xrank) {
    error_at(L, a->loc[i], "perm has %d entries but the tensor has %d axes", rank, xrank);
    return false;
  }
  for (int k = 0; k < rank; k++)
    t->perm[k] = perm[k] < -MAX_RANK || perm[k] > MAX_RANK ? MAX_RANK : (int)perm[k];
  return true;
}

static bool arg_flag(Lower *L, const Args *a, int i, const Formals *f, bool *out) {
  int64_t v = a->set[i] ? 0 : strtoll(f->dflt[i], NULL, 10);
  if (a->set[i] && !want_int(L, a, i, f->name[i], &v))
    return false;
  *out = v != 0;
  return true;
}

static bool arg_transpose_a(Lower *L, const Args *a, int i, const Formals *f, Node *t) {
  return arg_flag(L, a, i, f, &t->transpose_a);
}

static bool arg_transpose_b(Lower *L, const Args *a, int i, const Formals *f, Node *t) {
  return arg_flag(L, a, i, f, &t->transpose_b);
}

// The attribute arguments of ops.h's signatures, by name.
static const struct {
  const char *name;
  ArgFn set;
} arg_kinds[] = {
  {"axis", arg_axis},       {"begin", arg_begin},
  {"end", arg_end},         {"exponent", arg_exponent},
  {"mode", arg_mode},       {"shape", arg_shape},
  {"perm", arg_perm},       {"transpose_a", arg_transpose_a},
  {"transpose_b", arg_transpose_b},
};

static bool arg_set(Lower *L, const Args *a, int i, const Formals *f, Node *t) {
  for (size_t k = 0; k < sizeof arg_kinds / sizeof *arg_kinds; k++)
    if (!strcmp(arg_kinds[k].name, f->name[i]))
      return arg_kinds[k].set(L, a, i, f, t);
  error_at(L, a->loc[i], "internal error: no argument kind '%s'", f->name[i]);
  return false;
}

// The attributes converted into t (the others zero, as in a new node).
static void attrs_copy(Node *n, const Node *t) {
  n->axis = t->axis;
  n->begin = t->begin;
  n->end = t->end;
  n->target = t->target;
  memcpy(n->perm, t->perm, sizeof n->perm);
  n->transpose_a = t->transpose_a;
  n->transpose_b = t->transpose_b;
  n->value = t->value;
  n->gelu = t->gelu;
}

// Argument i as the inputs of op (arity -1): a non-empty list of tensors.
static bool want_tensor_list(Lower *L, const Args *a, int i, OpKind op, Node ***in, int *nin) {
  Value l = a->v[i];
  if (l.kind != V_LIST || l.nitems == 0) {
    error_at(L, a->loc[i], "%s needs a non-empty list of tensors like [a, b]", op_info[op].name);
    return false;
  }
  *in = arena_alloc(L->a, sizeof(Node *) * (size_t)l.nitems);
  for (int k = 0; k < l.nitems; k++) {
    if (l.items[k].kind != V_TENSOR) {
      error_at(L, l.items[k].loc, "%s needs tensors, not %s", op_info[op].name,
               kind_name(l.items[k].kind));
      return false;
    }
    (*in)[k] = l.items[k].node;
  }
  *nin = l.nitems;
  return true;
}

// The node of a call: the inputs checked, the attribute arguments converted,
// then a list of inputs (concat's) checked.
static Value op_node(Lower *L, const Ast *call, OpKind op, const Formals *f, const Args *a) {
  int arity = op_info[op].arity, nin = arity;
  Node t = {0}, *fixed[8], **in = fixed;
  for (int i = 0; i < arity; i++) {
    if (!want_tensor(L, a, i, f->name[i]))
      return v_poison(call->loc);
    fixed[i] = a->v[i].node;
  }
  for (int i = arity < 0 ? 1 : arity; i < f->n; i++)
    if (!arg_set(L, a, i, f, &t))
      return v_poison(call->loc);
  if (arity < 0 && !want_tensor_list(L, a, 0, op, &in, &nin))
    return v_poison(call->loc);
  Node *n = node_new(L, op, in, nin, call->loc);
  attrs_copy(n, &t);
  return finish(L, n);
}

// add, sub, mul, div: of two numbers folded; a number with a tensor is a constant.
static Value call_binary(Lower *L, const Ast *call, OpKind op, Args *a) {
  SrcLoc loc = call->loc;
  if (!(a->v[0].kind == V_TENSOR || is_num(a->v[0])) ||
      !(a->v[1].kind == V_TENSOR || is_num(a->v[1]))) {
    error_at(L, loc, "'%s' needs numbers or tensors", call->name);
    return v_poison(loc);
  }
  if (is_num(a->v[0]) && is_num(a->v[1]))
    return arith(L, "+-*/"[op - OP_ADD], a->v[0], a->v[1], loc);
  return op_nodes(L, op, a->v, 2, loc);
}

static Value call_op(Lower *L, Scope *sc, const Ast *call, OpKind op) {
  Formals f;
  Args a;
  if (!bind_op_args(L, sc, call, op, &f, &a))
    return v_poison(call->loc);
  if (op_info[op].infer == infer_binary)
    return call_binary(L, call, op, &a);
  if (op == OP_MAX && is_num(a.v[0]) && a.set[1])
    return min_max(L, call, &a, true); // max(a, b) of two numbers
  if (f.n == 1 && is_num(a.v[0]))
    return fold_math(L, call, op, a.v[0]); // exp(2)
  return op_node(L, call, op, &f, &a);
}

//
// Layer calls
//
static const Ast *layer_find(Lower *L, const char *name) {
  for (int i = L->nlayers - 1; i >= 0; i--)
    if (!strcmp(L->layers[i]->name, name))
      return L->layers[i];
  return NULL;
}

static bool check_recursion(Lower *L, const Ast *layer, SrcLoc call) {
  for (Frame *f = L->frame; f; f = f->up)
    if (f->layer == layer) {
      error_begin(L, call, "recursive use of layer '%s'", layer->name);
      diag_note(L->d, layer->name_loc, "'%s' is defined here", layer->name);
      note_stack(L);
      return false;
    }
  if (L->depth >= MAX_CALL_DEPTH) {
    error_at(L, call, "layer calls nested deeper than %d", MAX_CALL_DEPTH);
    return false;
  }
  return true;
}

static Value call_layer(Lower *L, Scope *sc, const Ast *call, const Ast *layer) {
  if (!check_recursion(L, layer, call->loc))
    return v_poison(call->loc);
  const char *formals[8];
  int nf = 0, nreq = 0;
  for (const Ast *f = layer->list; f && nf < 8; f = f->next, nf++) {
    formals[nf] = f->name;
    if (!f->rhs)
      nreq = nf + 1;
  }
  Args a;
  if (!bind_args(L, sc, call, formals, nf, nreq, &a))
    return v_poison(call->loc);
  Frame frame = {.layer = layer, .call = call->loc, .up = L->frame};
  L->frame = &frame;
  L->depth++;
  const char *saved_scope = L->scope;
  L->scope = *L->scope ? arena_printf(L->a, "%s/%s", L->scope, layer->name) : layer->name;
  Scope *local = scope_new(L, L->globals);
  int i = 0;
  for (const Ast *f = layer->list; f && i < 8; f = f->next, i++) {
    Value v = a.set[i] ? a.v[i] : eval(L, L->globals, f->rhs);
    scope_set(L, local, f->name, v, f->loc);
  }
  Value ret = v_poison(call->loc);
  bool returned = false;
  bool ok = exec_block(L, local, layer->body, &ret, &returned);
  L->scope = saved_scope;
  L->depth--;
  L->frame = frame.up;
  if (ok && !returned) {
    error_begin(L, call->loc, "layer '%s' returns no value", layer->name);
    diag_note(L->d, layer->name_loc, "'%s' is defined here; end it with 'return'", layer->name);
    note_stack(L);
  }
  if (!ok || !returned)
    return v_poison(call->loc);
  if (ret.kind != V_TENSOR)
    ret.loc = call->loc;
  return ret;
}

static Value eval_call(Lower *L, Scope *sc, const Ast *call) {
  const Ast *layer = layer_find(L, call->name);
  if (layer)
    return call_layer(L, sc, call, layer);
  if (!strcmp(call->name, "size"))
    return call_size(L, sc, call);
  if (!strcmp(call->name, "causal_mask"))
    return call_causal_mask(L, sc, call);
  if (!strcmp(call->name, "rope_cos"))
    return call_rope_table(L, sc, call, OP_ROPE_COS);
  if (!strcmp(call->name, "rope_sin"))
    return call_rope_table(L, sc, call, OP_ROPE_SIN);
  if (!strcmp(call->name, "min"))
    return call_min(L, sc, call);
  int op = op_lookup(call->name);
  if (op >= 0 && op_info[op].arity != 0 && op_info[op].args)
    return call_op(L, sc, call, (OpKind)op);
  if (!strcmp(call->name, "normal") || !strcmp(call->name, "zeros") || !strcmp(call->name, "ones")) {
    error_at(L, call->loc, "initializer '%s' may only follow 'param NAME: [shape] ='", call->name);
    return v_poison(call->loc);
  }
  const char *s = suggest_name(L, sc, call->name, true);
  if (s)
    error_at(L, call->name_loc, "unknown layer or op '%s'; did you mean '%s'?", call->name, s);
  else
    error_at(L, call->name_loc, "unknown layer or op '%s'", call->name);
  return v_poison(call->loc);
}

static Value eval_expr(Lower *L, Scope *sc, const Ast *e) {
  switch (e->kind) {
  case AST_INT: return v_int(e->ival, e->loc);
  case AST_FLOAT: return v_float(e->fval, e->loc);
  case AST_STR: return (Value){.kind = V_STR, .s = e->str, .loc = e->loc};
  case AST_NAME: return eval_name(L, sc, e);
  case AST_LIST: return eval_list(L, sc, e);
  case AST_CALL: return eval_call(L, sc, e);
  case AST_BINOP: return eval_binop(L, sc, e);
  case AST_NEG: return eval_neg(L, sc, e);
  default:
    error_at(L, e->loc, "expected an expression");
    return v_poison(e->loc);
  }
}

static Value eval(Lower *L, Scope *sc, const Ast *e) {
  if (L->d->stop)
    return v_poison(e->loc);
  bool leaf = e->kind == AST_INT || e->kind == AST_FLOAT || e->kind == AST_STR ||
              e->kind == AST_NAME; // no recursion below: one error per too-deep path
  if (L->eval_depth >= MAX_EXPR_DEPTH && !leaf) {
    error_at(L, e->loc, "expression nested too deeply");
    return v_poison(e->loc);
  }
  L->eval_depth++;
  Value v = eval_expr(L, sc, e);
  L->eval_depth--;
  return v;
}

//
// Statements
//
static bool assign(Lower *L, Scope *sc, const char *name, SrcLoc name_loc, Value v) {
  Binding *b = scope_find(sc, name);
  if (b && b->hyper) {
    error_begin(L, name_loc, "cannot assign to %s '%s'",
                b->builtin ? "constant" : "hyper-parameter", name);
    if (!b->builtin)
      diag_note(L->d, b->loc, "'%s' is set here", name);
    note_stack(L);
    return false;
  }
  scope_set(L, sc, name, v, name_loc);
  return true;
}

static bool parse_dtype(Lower *L, const Ast *type, DType *out) {
  static const char *const names[] = {"f32", "f16", "i32"};
  const char *t = type->name && *type->name ? type->name : "f32";
  for (int i = 0; i < 3; i++)
    if (!strcmp(t, names[i])) {
      *out = (DType)i;
      return true;
    }
  const char *s = diag_suggest(t, names, 3);
  error_at(L, type->loc, "unknown element type '%s'%s%s%s (known: f32, f16, i32)", t,
           s ? "; did you mean '" : "", s ? s : "", s ? "'?" : "");
  return false;
}

// A type `f32[dim, dim]` to dtype and shape; dims must be positive integers.
static bool eval_type(Lower *L, Scope *sc, const Ast *type, DType *dt, Shape *shape) {
  if (!parse_dtype(L, type, dt))
    return false;
  shape->rank = 0;
  for (const Ast *d = type->list; d; d = d->next) {
    if (shape->rank == MAX_RANK) {
      error_at(L, d->loc, "more than %d dimensions", MAX_RANK);
      return false;
    }
    Value v = eval(L, sc, d);
    if (v.kind == V_POISON)
      return false;
    if (v.kind != V_INT) {
      error_at(L, d->loc, "dimension must be an integer, not %s", kind_name(v.kind));
      return false;
    }
    if (!valid_dim(L, d->loc, v.i, "dimension"))
      return false;
    shape->dims[shape->rank++] = v.i;
  }
  return true;
}

static bool eval_init(Lower *L, Scope *sc, const Ast *e, Node *p) {
  const char *name = e->kind == AST_NAME || e->kind == AST_CALL ? e->name : "";
  if (!strcmp(name, "zeros") || !strcmp(name, "ones")) {
    if (e->kind == AST_CALL && e->list) {
      error_at(L, e->list->loc, "'%s' takes no arguments", name);
      return false;
    }
    p->init = name[0] == 'z' ? INIT_ZEROS : INIT_ONES;
    return true;
  }
  if (!strcmp(name, "normal") && e->kind == AST_CALL) {
    static const char *const f[] = {"std"};
    Args a;
    double std;
    if (!bind_args(L, sc, e, f, 1, 1, &a) || !want_num(L, &a, 0, "std", &std))
      return false;
    if (!(std >= 0) || !isfinite(std)) {
      error_at(L, a.loc[0], "standard deviation must be finite and >= 0, got %g", std);
      return false;
    }
    p->init = INIT_NORMAL;
    p->init_std = std;
    return true;
  }
  static const char *const inits[] = {"normal", "zeros", "ones"};
  const char *s = *name ? diag_suggest(name, inits, 3) : NULL;
  error_at(L, e->loc, "unknown initializer%s%s%s; expected normal(std), zeros or ones",
           s ? "; did you mean '" : "", s ? s : "", s ? "'?" : "");
  return false;
}

static bool declare_param_name(Lower *L, const char *full, SrcLoc loc) {
  SrcLoc *first = strmap_get(&L->params, full);
  if (first) {
    error_begin(L, loc, "redefinition of parameter '%s'", full);
    diag_note(L->d, *first, "'%s' was first declared here", full);
    note_stack(L);
    if (L->frame)
      diag_note(L->d, loc, "a layer that declares parameters is called once per scope; "
                           "wrap repeated uses in 'repeat'");
    return false;
  }
  SrcLoc *where = arena_alloc(L->a, sizeof *where);
  *where = loc;
  strmap_put(&L->params, full, where);
  return true;
}

static bool exec_param(Lower *L, Scope *sc, const Ast *s) {
  DType dt;
  Shape shape;
  if (!eval_type(L, sc, s->lhs, &dt, &shape))
    return false;
  if (dt == DT_I32) {
    error_at(L, s->lhs->loc, "parameters are floating-point (f32 or f16), not i32");
    return false;
  }
  const char *full = arena_printf(L->a, "%s%s", L->prefix, s->name);
  if (!declare_param_name(L, full, s->name_loc))
    return false;
  Node *p = node_new(L, OP_PARAM, NULL, 0, s->loc);
  p->name = full;
  p->dtype = dt;
  p->shape = shape;
  if (!eval_init(L, sc, s->rhs, p))
    return false;
  Value v = finish(L, p);
  return v.kind == V_TENSOR && assign(L, sc, s->name, s->name_loc, v);
}

static bool exec_input(Lower *L, Scope *sc, const Ast *s) {
  if (!sc->top) {
    error_at(L, s->loc, "inputs are declared at the top level of the model, not in a layer");
    return false;
  }
  Node *prev = strmap_get(&L->inputs, s->name);
  if (prev) {
    error_at(L, s->name_loc, "redefinition of input '%s'", s->name);
    diag_note(L->d, prev->loc, "'%s' was first declared here", s->name);
    return false;
  }
  DType dt;
  Shape shape;
  if (!eval_type(L, sc, s->lhs, &dt, &shape))
    return false;
  Node *n = node_new(L, OP_INPUT, NULL, 0, s->loc);
  n->name = s->name;
  n->dtype = dt;
  n->shape = shape;
  strmap_put(&L->inputs, s->name, n);
  Value v = finish(L, n);
  return v.kind == V_TENSOR && assign(L, sc, s->name, s->name_loc, v);
}

static bool exec_output(Lower *L, Scope *sc, const Ast *s) {
  if (!sc->top) {
    error_at(L, s->loc, "outputs are declared at the top level of the model, not in a layer");
    return false;
  }
  if (strmap_get(&L->outputs, s->name)) {
    error_at(L, s->name_loc, "redefinition of output '%s'", s->name);
    return false;
  }
  Value v;
  if (s->rhs) {
    v = eval(L, sc, s->rhs);
    if (!assign(L, sc, s->name, s->name_loc, v) || v.kind == V_POISON)
      return false; // a poison binding keeps later uses silent
  } else {
    Ast name = {.kind = AST_NAME, .loc = s->name_loc, .name = s->name};
    v = eval(L, sc, &name);
  }
  if (v.kind == V_POISON)
    return false;
  if (v.kind != V_TENSOR) {
    error_at(L, s->loc, "output '%s' must be a tensor, not %s", s->name, kind_name(v.kind));
    return false;
  }
  graph_add_output(L->g, s->name, v.node);
  strmap_put(&L->outputs, s->name, v.node);
  return true;
}

static bool exec_loss(Lower *L, Scope *sc, const Ast *s) {
  if (!sc->top) {
    error_at(L, s->loc, "the loss is declared at the top level of the model, not in a layer");
    return false;
  }
  if (L->has_loss) {
    error_at(L, s->loc, "the model already has a loss");
    diag_note(L->d, L->loss_loc, "first loss declared here");
    return false;
  }
  Value v = eval(L, sc, s->rhs);
  if (v.kind == V_POISON)
    return false;
  if (v.kind != V_TENSOR || v.node->shape.rank != 0) {
    const char *what = v.kind == V_TENSOR ? arena_printf(L->a, "a tensor of shape %s",
                                                         shape_str(L->a, &v.node->shape))
                                          : kind_name(v.kind);
    error_at(L, s->rhs->loc, "the loss must be a scalar tensor, not %s", what);
    return false;
  }
  L->has_loss = true;
  L->loss_loc = s->loc;
  L->g->loss = v.node;
  return true;
}

// Counts one unit of elaboration work; false once the budget is spent.
static bool step(Lower *L, SrcLoc loc) {
  if (++L->steps <= MAX_STEPS)
    return true;
  if (!L->d->stop) {
    error_at(L, loc, "the model takes more than %lld elaboration steps (nested repeats?)",
             (long long)MAX_STEPS);
    L->d->stop = true;
  }
  return false;
}

static bool exec_repeat(Lower *L, Scope *sc, const Ast *s, Value *ret, bool *returned) {
  Ast name = {.kind = AST_NAME, .loc = s->name_loc, .name = s->name};
  Value count = eval(L, sc, s->rhs ? s->rhs : &name);
  if (count.kind == V_POISON)
    return false;
  if (count.kind != V_INT || count.i < 0 || count.i > MAX_REPEAT) {
    if (count.kind == V_INT)
      error_at(L, count.loc, "repeat count %lld is out of range (0 to %d)", (long long)count.i,
               MAX_REPEAT);
    else
      error_at(L, count.loc, "repeat count must be an integer, not %s", kind_name(count.kind));
    return false;
  }
  const char *saved_prefix = L->prefix, *saved_scope = L->scope;
  bool ok = true;
  for (int64_t i = 0; i < count.i && ok && !*returned && step(L, s->loc); i++) {
    L->prefix = arena_printf(L->a, "%s%s.%lld.", saved_prefix, s->name, (long long)i);
    L->scope = *saved_scope ? arena_printf(L->a, "%s/%s.%lld", saved_scope, s->name, (long long)i)
                            : arena_printf(L->a, "%s.%lld", s->name, (long long)i);
    ok = exec_block(L, sc, s->body, ret, returned);
  }
  L->prefix = saved_prefix;
  L->scope = saved_scope;
  if (sc->top && !L->frame && !*saved_prefix)
    L->g->nblocks += (int)count.i;
  return ok;
}

static bool exec_stmt(Lower *L, Scope *sc, const Ast *s, Value *ret, bool *returned) {
  if (!step(L, s->loc))
    return false;
  switch (s->kind) {
  case AST_ASSIGN: {
    Value v = eval(L, sc, s->rhs);
    return assign(L, sc, s->name, s->name_loc, v) && v.kind != V_POISON;
  }
  case AST_PARAM:
  case AST_INPUT: {
    bool ok = s->kind == AST_PARAM ? exec_param(L, sc, s) : exec_input(L, sc, s);
    if (!ok && !scope_find(sc, s->name)) // silence later uses of what failed
      scope_set(L, sc, s->name, v_poison(s->name_loc), s->name_loc);
    return ok;
  }
  case AST_OUTPUT: return exec_output(L, sc, s);
  case AST_LOSS: return exec_loss(L, sc, s);
  case AST_REPEAT: return exec_repeat(L, sc, s, ret, returned);
  case AST_RETURN:
    if (sc->top) {
      error_at(L, s->loc, "'return' outside a layer");
      return false;
    }
    *ret = eval(L, sc, s->rhs);
    *returned = true;
    return ret->kind != V_POISON;
  default:
    error_at(L, s->loc, "unexpected declaration inside a block");
    return false;
  }
}

// Runs statements in order. At the top level an error does not stop the
// following statements (several errors per run); inside a layer it does.
static bool exec_block(Lower *L, Scope *sc, const Ast *body, Value *ret, bool *returned) {
  bool ok = true;
  for (const Ast *s = body; s && !*returned && !L->d->stop; s = s->next) {
    if (!exec_stmt(L, sc, s, ret, returned)) {
      ok = false;
      if (!sc->top || L->frame)
        return false;
    }
  }
  return ok;
}

//
// The model header and -D overrides
//
static bool parse_define(Lower *L, const Define *def, Value *out) {
  char *end;
  SrcLoc loc = {.file = def->file, .first_line = 1, .last_line = 1};
  loc.first_column = 4 + (int)strlen(def->name) + 1;
  loc.last_column = loc.first_column + (int)strlen(def->value) - 1;
  if (loc.last_column < loc.first_column)
    loc.last_column = loc.first_column;
  errno = 0;
  long long iv = strtoll(def->value, &end, 10);
  if (*def->value && !*end) {
    if (errno == ERANGE) {
      error_at(L, loc, "value of '%s' is too large", def->name);
      return false;
    }
    *out = v_int(iv, loc);
    return true;
  }
  double fv = strtod(def->value, &end);
  if (*def->value && !*end && isfinite(fv)) {
    *out = v_float(fv, loc);
    return true;
  }
  error_at(L, loc, "value of '%s' must be a number", def->name);
  return false;
}

static bool exec_header_line(Lower *L, const Ast *s) {
  Binding *prev = strmap_get(&L->globals->map, s->name);
  if (prev) {
    error_at(L, s->name_loc, "redefinition of hyper-parameter '%s'", s->name);
    diag_note(L->d, prev->loc, "'%s' was first set here", s->name);
    return false;
  }
  Value v;
  SrcLoc where = s->name_loc;
  int def = -1;
  for (int i = 0; i < L->ndefs; i++)
    if (!strcmp(L->defs[i].name, s->name))
      def = i;
  if (def >= 0) {
    L->def_used[def] = true;
    if (!parse_define(L, &L->defs[def], &v))
      return false;
    where = v.loc;
  } else {
    v = eval(L, L->globals, s->rhs);
  }
  if (v.kind == V_POISON)
    return false;
  if (!is_num(v) && v.kind != V_STR) {
    error_at(L, s->rhs->loc, "hyper-parameter '%s' must be a number, not %s", s->name,
             kind_name(v.kind));
    return false;
  }
  scope_add(L, L->globals, (Binding){.name = s->name, .val = v, .loc = where, .hyper = true});
  return true;
}

static void record_hypers(Lower *L) {
  int n = 0;
  for (Binding *b = L->globals->vars; b; b = b->next)
    n += b->hyper && !b->builtin && is_num(b->val);
  Graph *g = L->g;
  g->hypers = arena_alloc(L->a, sizeof(Hyper) * (size_t)(n ? n : 1));
  g->nhypers = n;
  for (Binding *b = L->globals->vars; b; b = b->next) // newest first: fill from the end
    if (b->hyper && !b->builtin && is_num(b->val))
      g->hypers[--n] = (Hyper){.name = b->name, .is_int = b->val.kind == V_INT,
                               .ival = b->val.i, .fval = b->val.f, .loc = b->loc};
}

static bool exec_header(Lower *L, const Ast *model) {
  bool ok = true;
  for (const Ast *s = model->body; s && !L->d->stop; s = s->next)
    ok &= exec_header_line(L, s);
  for (int i = 0; i < L->ndefs; i++) {
    if (L->def_used[i])
      continue;
    const char *names[256];
    int n = 0;
    for (const Ast *s = model->body; s && n < 256; s = s->next)
      names[n++] = s->name;
    const char *sug = diag_suggest(L->defs[i].name, names, n);
    SrcLoc loc = {.file = L->defs[i].file, .first_line = 1, .first_column = 4, .last_line = 1};
    loc.last_column = 3 + (int)strlen(L->defs[i].name);
    error_at(L, loc, "model '%s' has no hyper-parameter '%s'%s%s%s", model->name,
             L->defs[i].name, sug ? "; did you mean '" : "", sug ? sug : "", sug ? "'?" : "");
    ok = false;
  }
  record_hypers(L);
  return ok;
}

//
// Declarations
//
static void add_layer(Lower *L, Ast *layer) {
  for (int i = 0; i < L->nlayers; i++) {
    Ast *prev = L->layers[i];
    if (strcmp(prev->name, layer->name) || prev->loc.file != layer->loc.file)
      continue;
    error_at(L, layer->name_loc, "redefinition of layer '%s'", layer->name);
    diag_note(L->d, prev->name_loc, "'%s' was first defined here", layer->name);
    return;
  }
  if (L->nlayers == (int)(sizeof L->layers / sizeof *L->layers)) {
    error_at(L, layer->name_loc, "too many layer definitions");
    return;
  }
  for (Ast *f = layer->list; f; f = f->next)
    for (Ast *g = f->next; g; g = g->next)
      if (!strcmp(f->name, g->name))
        error_at(L, g->loc, "layer '%s' has two arguments named '%s'", layer->name, g->name);
  if (ast_count(layer->list) > 8)
    error_at(L, layer->name_loc, "layer '%s' has more than 8 arguments", layer->name);
  L->layers[L->nlayers++] = layer;
}

static const Ast *find_model(Lower *L, Ast *items) {
  const Ast *model = NULL;
  for (const Ast *it = items; it; it = it->next) {
    if (it->kind != AST_MODEL)
      continue;
    if (model) {
      error_at(L, it->name_loc, "a file describes one model; '%s' is the second", it->name);
      diag_note(L->d, model->name_loc, "model '%s' is declared here", model->name);
      continue;
    }
    model = it;
  }
  if (!model) {
    SrcLoc loc = {.file = L->model_file, .first_line = 1, .first_column = 1, .last_line = 1,
                  .last_column = 1};
    error_at(L, loc, items ? "no 'model' header in this file" : "empty model file");
    diag_note(L->d, loc, "a model starts with a header like 'model name { dim = 64 }'");
  }
  return model;
}

static void add_constants(Lower *L) {
  static const char *const names[] = {"true", "false"};
  for (int i = 0; i < 2; i++)
    scope_add(L, L->globals, (Binding){.name = names[i], .val = v_int(i == 0, loc_none()),
                                       .loc = loc_none(), .hyper = true, .builtin = true});
}

Graph *elab_program(Arena *a, Diag *d, Ast *prelude, Ast *model_items, int model_file,
                     const Define *defs, int ndefs) {
  Lower L = {.a = a, .d = d, .g = graph_new(a), .model_file = model_file, .defs = defs,
             .ndefs = ndefs, .prefix = "", .scope = ""};
  L.def_used = arena_alloc(a, sizeof(bool) * (size_t)(ndefs + 1));
  strmap_init(&L.params, a);
  strmap_init(&L.inputs, a);
  strmap_init(&L.outputs, a);
  L.globals = scope_new(&L, NULL);
  add_constants(&L);
  int errors = d->errors;
  for (Ast *it = prelude; it; it = it->next)
    if (it->kind == AST_LAYER)
      add_layer(&L, it);
  for (Ast *it = model_items; it; it = it->next)
    if (it->kind == AST_LAYER)
      add_layer(&L, it);
  const Ast *model = find_model(&L, model_items);
  if (!model)
    return NULL;
  L.g->model = model->name;
  L.g->file = d->files[model_file].name;
  if (!exec_header(&L, model))
    return NULL;
  Scope *top = scope_new(&L, L.globals);
  top->top = true;
  for (Ast *it = model_items; it && !d->stop; it = it->next) {
    if (it->kind == AST_MODEL || it->kind == AST_LAYER)
      continue;
    Value ret;
    bool returned = false;
    exec_stmt(&L, top, it, &ret, &returned);
  }
  if (d->errors == errors && !L.g->noutputs && !L.g->loss) {
    error_at(&L, model->name_loc, "model '%s' has no output and no loss", model->name);
    diag_note(d, model->name_loc, "declare one with 'output logits = ...' or 'loss ...'");
  }
  return d->errors == errors ? L.g : NULL;
}
