// eval.h — host-side values of a graph: parameter values (from the
// initializers or llama2.c checkpoints) and the fp64 evaluator (the tests'
// numerical oracle).
#ifndef ANEC_EVAL_H
#define ANEC_EVAL_H

#include "ir.h"
#include "llm.h"

// params.c — parameter values: fp32, logical layout, by name
typedef struct ParamSet {
  Arena *arena;
  StrMap map;           // param name -> float[numel]
} ParamSet;
void params_init(ParamSet *ps, Arena *a);
// Values from the initializers for every param not yet set: deterministic
// for a given name and seed.
void params_init_random(ParamSet *ps, const Graph *g, uint64_t seed);
void params_set(ParamSet *ps, const char *name, float *values); // not copied
const float *params_get(const ParamSet *ps, const Node *param); // NULL if unset
// A source node's values (params, constants, causal mask, RoPE tables).
const float *params_source_values(const ParamSet *ps, const Node *n);

// ireval.c — the logical graph evaluated directly in fp64: the
// numerical oracle of the tests and the host's CPU fallback ops.
// Evaluates node n from its inputs' values (logical layout, row-major; int
// values such as token ids as exact doubles) into out[numel]. Sources take
// their values from ps. False, with a message in err, for an index out of
// range or an op it cannot evaluate.
bool ireval_node(const Node *n, const ParamSet *ps, const double *const *ins, double *out,
                 char *err, size_t errlen);
// The whole graph in node order: vals[i] holds node i's values (free with
// ireval_free). Inputs by INPUT name. NULL after an error (message in err).
double **ireval_graph(const Graph *g, const ParamSet *ps, const char *const *input_names,
                      const double *const *inputs, int ninputs, char *err, size_t errlen);
void ireval_free(const Graph *g, double **vals);

// l2c_params.c — a llama2.c checkpoint as parameter values (kept
// pointing into ck): names tok_emb, rms_final, wcls, layers.N.wq...; every
// shape and hyper-parameter checked, errors at the model's declarations.
bool params_load_l2c(ParamSet *ps, const Graph *g, const L2cCheckpoint *ck, const char *path,
                     Diag *d);
// The llama2.c configuration of g (seq given; shared_cls: no param 'wcls'):
// true when g's header sets dim, hidden, layers, heads, kv_heads and vocab
// and every param has one of llama2.c's names (--init / --export apply).
bool graph_l2c_config(const Graph *g, int seq, L2cConfig *cfg);


#endif
