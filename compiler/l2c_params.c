// l2c_params.c — a llama2.c checkpoint as a model's parameter values: its
// arrays by llama2.c name (tok_emb, rms_final, wcls, and layers.N.wq as row N
// of wq), every shape and hyper-parameter checked against the model.
#include "anec.h"

#include <string.h>

// The checkpoint's value of hyper-parameter `name`, or -1 if it has none.
static int64_t ckpt_hyper(const L2cConfig *c, const char *name) {
  static const char *const names[] = {"dim", "hidden", "layers", "heads", "kv_heads", "vocab"};
  const int vals[] = {c->dim, c->hidden, c->layers, c->heads, c->kv_heads, c->vocab};
  for (int i = 0; i < 6; i++)
    if (!strcmp(names[i], name))
      return vals[i];
  return -1;
}

static bool check_hypers(const Graph *g, const L2cCheckpoint *ck, const char *path, Diag *d) {
  bool ok = true;
  for (int i = 0; i < g->nhypers; i++) {
    const Hyper *h = &g->hypers[i];
    int64_t v = ckpt_hyper(&ck->cfg, h->name);
    if (v < 0 || !h->is_int || h->ival == v)
      continue;
    diag_error(d, h->loc, "'%s' is %lld here but %lld in '%s' (override with -D %s=%lld)", h->name,
               (long long)h->ival, (long long)v, path, h->name, (long long)v);
    ok = false;
  }
  return ok;
}

static bool load_param(ParamSet *ps, const Node *p, const L2cCheckpoint *ck, const char *path,
                       Diag *d) {
  L2cTensor t;
  if (!l2c_slot(ck, p->name, &t)) {
    diag_error(d, p->loc, "parameter '%s' is not in the llama2.c checkpoint '%s'", p->name, path);
    return false;
  }
  bool same = t.rank == p->shape.rank;
  for (int i = 0; same && i < p->shape.rank; i++)
    same = t.dims[i] == p->shape.dims[i];
  if (!same) {
    diag_error(d, p->loc, "parameter '%s' is %s in the model but has another shape in '%s'",
               p->name, shape_str(ps->arena, &p->shape), path);
    return false;
  }
  params_set(ps, p->name, t.data);
  return true;
}

static bool has_param(const Graph *g, const char *name) {
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i]->op == OP_PARAM && !strcmp(g->nodes[i]->name, name))
      return true;
  return false;
}

bool params_load_l2c(ParamSet *ps, const Graph *g, const L2cCheckpoint *ck, const char *path,
                     Diag *d) {
  bool ok = check_hypers(g, ck, path, d);
  if (ok && !ck->cfg.shared_cls && !has_param(g, "wcls")) {
    diag_error(d, loc_none(), "'%s' has its own classifier 'wcls' but model '%s' has no "
               "parameter of that name (its classifier is tied to the embedding)", path, g->model);
    ok = false;
  }
  for (int i = 0; ok && i < g->nnodes; i++)
    if (g->nodes[i]->op == OP_PARAM)
      ok = load_param(ps, g->nodes[i], ck, path, d);
  return ok;
}
