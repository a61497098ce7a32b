// l2c_params.c — a llama2.c checkpoint as a model's parameter values: its
// arrays by llama2.c name (tok_emb, rms_final, wcls, and layers.N.wq as row N
// of wq), every shape and hyper-parameter checked against the model.
#include "eval.h"

#include <stddef.h>
#include <string.h>

// llama2.c's hyper-parameters by the names a model header gives them.
static const struct {
  const char *name;
  size_t offset; // of its int in L2cConfig
} l2c_hypers[] = {
    {"dim", offsetof(L2cConfig, dim)},         {"hidden", offsetof(L2cConfig, hidden)},
    {"layers", offsetof(L2cConfig, layers)},   {"heads", offsetof(L2cConfig, heads)},
    {"kv_heads", offsetof(L2cConfig, kv_heads)}, {"vocab", offsetof(L2cConfig, vocab)},
};
enum { NL2C_HYPERS = sizeof l2c_hypers / sizeof l2c_hypers[0] };

static int *config_field(L2cConfig *c, int i) {
  return (int *)((char *)c + l2c_hypers[i].offset);
}

// The checkpoint's value of hyper-parameter `name`, or -1 if it has none.
static int64_t ckpt_hyper(const L2cConfig *c, const char *name) {
  for (int i = 0; i < NL2C_HYPERS; i++)
    if (!strcmp(l2c_hypers[i].name, name))
      return *config_field((L2cConfig *)c, i);
  return -1;
}

// Whether `name` is one of llama2.c's arrays: tok_emb, rms_final, wcls or
// layers.N.{rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3}.
static bool l2c_param_name(const char *name) {
  static const char *const top[] = {"tok_emb", "rms_final", "wcls"};
  static const char *const per[] = {"rms_att", "wq", "wk", "wv", "wo", "rms_ffn", "w1", "w2", "w3"};
  for (int i = 0; i < 3; i++)
    if (!strcmp(name, top[i]))
      return true;
  const char *dot = strncmp(name, "layers.", 7) ? NULL : strchr(name + 7, '.');
  for (int i = 0; dot && i < 9; i++)
    if (!strcmp(dot + 1, per[i]))
      return true;
  return false;
}

bool graph_l2c_config(const Graph *g, int seq, L2cConfig *cfg) {
  *cfg = (L2cConfig){.seq = seq, .shared_cls = true};
  int found = 0;
  for (int i = 0; i < NL2C_HYPERS; i++)
    for (int k = 0; k < g->nhypers; k++)
      if (!strcmp(g->hypers[k].name, l2c_hypers[i].name) && g->hypers[k].is_int) {
        *config_field(cfg, i) = (int)g->hypers[k].ival;
        found++;
        break;
      }
  bool names = found == NL2C_HYPERS;
  for (int i = 0; names && i < g->nnodes; i++) {
    const Node *p = g->nodes[i];
    names = p->op != OP_PARAM || l2c_param_name(p->name);
    cfg->shared_cls = cfg->shared_cls && !(p->op == OP_PARAM && !strcmp(p->name, "wcls"));
  }
  return names;
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
