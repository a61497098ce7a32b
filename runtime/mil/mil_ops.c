// mil_ops.c — the signatures of the MIL ops anec knows: one row per op with
// its required and optional parameters (iOS15–iOS18 opsets, as coremltools
// defines them) and how many outputs it has. The reader, the executor and the
// constraint checker all use this one table; ops not in it are not rejected.
#include "mil.h"

#include <string.h>

// Parameters may be given as arguments or, as for const and the constexpr
// ops, as attributes; `name` is every op's attribute and is not listed.
// Sorted by name. max_outputs -1: any number.
const MilOpSig mil_op_sigs[] = {
    // name                           required                 optional          outputs
    {"abs",                           "x",                     "",                         1, 1},
    {"add",                           "x y",                   "",                         1, 1},
    {"band_part",                     "x",                     "lower upper",              1, 1},
    {"cast",                          "x dtype",               "",                         1, 1},
    {"ceil",                          "x",                     "",                         1, 1},
    {"clip",                          "x alpha beta",          "",                         1, 1},
    {"concat",                        "values axis",           "interleave",               1, 1},
    {"const",                         "val",                   "",                         1, 1},
    {"constexpr_affine_dequantize",   "quantized_data zero_point scale axis", "",          1, 1},
    {"conv",                          "x weight",
                                      "bias strides pad_type pad dilations groups",        1, 1},
    {"cos",                           "x",                     "",                         1, 1},
    {"dequantize",                    "input scale",           "zero_point axis",          1, 1},
    {"equal",                         "x y",                   "",                         1, 1},
    {"erf",                           "x",                     "",                         1, 1},
    {"exp",                           "x",                     "",                         1, 1},
    {"expand_dims",                   "x axes",                "",                         1, 1},
    {"floor",                         "x",                     "",                         1, 1},
    {"floor_div",                     "x y",                   "",                         1, 1},
    {"gather",                        "x indices",
                                      "axis batch_dims validate_indices",                  1, 1},
    {"gelu",                          "x",                     "mode",                     1, 1},
    {"greater",                       "x y",                   "",                         1, 1},
    {"greater_equal",                 "x y",                   "",                         1, 1},
    {"identity",                      "x",                     "",                         1, 1},
    {"layer_norm",                    "x",                     "axes gamma beta epsilon",  1, 1},
    {"less",                          "x y",                   "",                         1, 1},
    {"less_equal",                    "x y",                   "",                         1, 1},
    {"linear",                        "x weight",              "bias",                     1, 1},
    {"log",                           "x",                     "epsilon",                  1, 1},
    {"logical_and",                   "x y",                   "",                         1, 1},
    {"logical_not",                   "x",                     "",                         1, 1},
    {"logical_or",                    "x y",                   "",                         1, 1},
    {"matmul",                        "x y",                   "transpose_x transpose_y",  1, 1},
    {"maximum",                       "x y",                   "",                         1, 1},
    {"minimum",                       "x y",                   "",                         1, 1},
    {"mul",                           "x y",                   "",                         1, 1},
    {"not_equal",                     "x y",                   "",                         1, 1},
    {"pow",                           "x y",                   "",                         1, 1},
    {"quantize",                      "input scale output_dtype", "zero_point axis",       1, 1},
    {"real_div",                      "x y",                   "",                         1, 1},
    {"reduce_argmax",                 "x",                     "axis keep_dims",           1, 1},
    {"reduce_argmin",                 "x",                     "axis keep_dims",           1, 1},
    {"reduce_max",                    "x",                     "axes keep_dims",           1, 1},
    {"reduce_mean",                   "x",                     "axes keep_dims",           1, 1},
    {"reduce_min",                    "x",                     "axes keep_dims",           1, 1},
    {"reduce_prod",                   "x",                     "axes keep_dims",           1, 1},
    {"reduce_sum",                    "x",                     "axes keep_dims",           1, 1},
    {"relu",                          "x",                     "",                         1, 1},
    {"reshape",                       "x shape",               "",                         1, 1},
    {"round",                         "x",                     "",                         1, 1},
    {"rsqrt",                         "x",                     "epsilon",                  1, 1},
    {"scaled_dot_product_attention",  "query key value",       "attn_mask",                1, 1},
    {"select",                        "cond a b",              "",                         1, 1},
    {"sigmoid",                       "x",                     "",                         1, 1},
    {"silu",                          "x",                     "",                         1, 1},
    {"sin",                           "x",                     "",                         1, 1},
    {"slice_by_index",                "x begin end",
                                      "stride begin_mask end_mask squeeze_mask",           1, 1},
    {"slice_by_size",                 "x begin size",          "",                         1, 1},
    {"softmax",                       "x",                     "axis",                     1, 1},
    {"split",                         "x axis",                "num_splits split_sizes",   1, -1},
    {"sqrt",                          "x",                     "",                         1, 1},
    {"square",                        "x",                     "",                         1, 1},
    {"squeeze",                       "x",                     "axes",                     1, 1},
    {"sub",                           "x y",                   "",                         1, 1},
    {"tanh",                          "x",                     "",                         1, 1},
    {"tile",                          "x reps",                "",                         1, 1},
    {"transpose",                     "x perm",                "",                         1, 1},
};

const int mil_op_nsigs = (int)(sizeof mil_op_sigs / sizeof mil_op_sigs[0]);

// Binary search: the table is sorted by name (a unit test checks).
const MilOpSig *mil_op_sig(const char *name) {
  int lo = 0, hi = mil_op_nsigs - 1;
  while (lo <= hi) {
    int mid = (lo + hi) / 2;
    int c = strcmp(name, mil_op_sigs[mid].name);
    if (c == 0)
      return &mil_op_sigs[mid];
    if (c < 0)
      hi = mid - 1;
    else
      lo = mid + 1;
  }
  return NULL;
}

const char *mil_param_next(const char *list, size_t *len) {
  list += strspn(list, " ");
  if (!*list)
    return NULL;
  *len = strcspn(list, " ");
  return list;
}

bool mil_param_in(const char *list, const char *name) {
  size_t n, want = strlen(name);
  for (const char *w = list; (w = mil_param_next(w, &n)); w += n)
    if (n == want && !memcmp(w, name, n))
      return true;
  return false;
}
