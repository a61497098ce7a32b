// catalog.c — the constraint catalog instantiated from catalog.h, and the
// target profiles: what each chip accepts, as one table of values and
// switches that mil-check (and later placement) query. No logic about
// programs lives here; milcheck.c applies these facts.
#include "target.h"

#include <stdlib.h>
#include <string.h>

const Rule catalog_rules[RULE_COUNT] = {
#define X(ID, ACT, ACT_TEXT, CHECK, SEV, CONF, RETIRED, TEXT, SOURCE, NOTE)                      \
  [RULE_##ID] = {"ANE-" #ID, TEXT, ACT, ACT_TEXT, CHECK, SEV, CONF, RETIRED, SOURCE, NOTE},
#include "catalog.h"
#undef X
};

const Rule *rule_find(const char *id) {
  if (!strncmp(id, "ANE-", 4))
    id += 4;
  for (int i = 0; i < RULE_COUNT; i++)
    if (!strcmp(catalog_rules[i].id + 4, id))
      return &catalog_rules[i];
  return NULL;
}

const char *rule_action_name(RuleAction a) {
  static const char *const names[] = {
      [ACT_REJECT] = "reject",   [ACT_CPU] = "cpu",         [ACT_REWRITE] = "rewrite",
      [ACT_PAD] = "pad",         [ACT_SPLIT] = "split",     [ACT_PACK] = "pack",
      [ACT_WARN] = "warn",       [ACT_EMITTER] = "emitter", [ACT_LAYOUT] = "layout",
      [ACT_BUDGET] = "budget",   [ACT_COST] = "cost",       [ACT_RUNTIME] = "runtime",
  };
  return names[a];
}

const char *rule_confidence_name(RuleConfidence c) {
  static const char *const names[] = {"firm", "reported", "disputed"};
  return names[c];
}

const char *rule_check_name(RuleCheck c) {
  static const char *const names[] = {"static", "partial", "reader", "none"};
  return names[c];
}

const char *severity_name(Severity s) {
  static const char *const names[] = {"off", "info", "warning", "error"};
  return names[s];
}

//
// Target profiles
//
// Disputed rules take the safe side everywhere (B07 49,152 bytes, B08 equal
// sizes, B09 one input); a user who measured otherwise changes the profile.
const TargetProfile target_profiles[] = {
    {
        .name = "m1", .chips = "M1, M2",
        .program = "1.0", .opset = "ios16",
        .short_literals = false, .in_graph_cast = false, .weight_file_per_matrix = true,
        .max_spatial = 16384, .max_channels = 65536, .conv_cin_reject = 32000,
        .min_surface_bytes = 49152, .equal_io_sizes = true, .inputs = INPUTS_SINGLE,
        .matmul_k_multiple = 32, .matmul_k_error = true, // B10 was measured on an M1
        .surface_align = 64, .compile_budget = 119, .sram_bytes = (int64_t)32 << 20,
    },
    {
        .name = "m4", .chips = "M3, M4",
        .program = "1.3", .opset = "ios18",
        .short_literals = true, .in_graph_cast = true, .weight_file_per_matrix = false,
        .max_spatial = 16384, .max_channels = 65536, .conv_cin_reject = 32000,
        .min_surface_bytes = 49152, .equal_io_sizes = true, .inputs = INPUTS_SINGLE,
        .matmul_k_multiple = 32, .matmul_k_error = false,
        .surface_align = 64, .compile_budget = 119, .sram_bytes = (int64_t)32 << 20,
    },
    {
        .name = "m5", .chips = "M5",
        .program = "1.3", .opset = "ios18",
        .short_literals = true, .in_graph_cast = true, .weight_file_per_matrix = false,
        .max_spatial = 16384, .max_channels = 65536, .conv_cin_reject = 32000,
        .min_surface_bytes = 49152, .equal_io_sizes = true, .inputs = INPUTS_SINGLE,
        .matmul_k_multiple = 32, .matmul_k_error = false,
        .surface_align = 128, .compile_budget = 119, .sram_bytes = (int64_t)32 << 20,
    },
};
const int ntarget_profiles = sizeof target_profiles / sizeof *target_profiles;

const TargetProfile *target_find(const char *name) {
  for (int i = 0; i < ntarget_profiles; i++)
    if (!strcmp(target_profiles[i].name, name))
      return &target_profiles[i];
  return NULL;
}

const TargetProfile *target_default(void) { return target_find("m4"); }

void target_names(char *buf, size_t n) {
  size_t len = 0;
  buf[0] = '\0';
  for (int i = 0; i < ntarget_profiles && len < n; i++)
    len += (size_t)snprintf(buf + len, n - len, "%s%s", i ? ", " : "", target_profiles[i].name);
}

// Ops with an ANE path (ANE-T08): the ops the working ANE kernels use, and
// the elementwise, activation, normalization, pooling and layout ops Core ML
// places on the ANE. Not here, so CPU-only: gather*, scatter*, reduce_prod,
// argmax/argmin, RNN cells (lstm, gru, rnn), comparisons and select, while
// loops and conditions, and everything this list does not name. conv and pad
// are listed but checked further (3-D conv, constant-mode pad).
const AneOp ane_ops[] = {
    {"const", 15}, {"cast", 15},
    {"conv", 15}, {"conv_transpose", 15}, {"matmul", 15}, {"linear", 15},
    {"add", 15}, {"sub", 15}, {"mul", 15}, {"real_div", 15}, {"pow", 15},
    {"maximum", 15}, {"minimum", 15}, {"clip", 15},
    {"abs", 15}, {"sqrt", 15}, {"rsqrt", 15}, {"inverse", 15}, {"square", 15},
    {"exp", 15}, {"exp2", 15}, {"log", 15}, {"erf", 15},
    {"relu", 15}, {"relu6", 15}, {"leaky_relu", 15}, {"elu", 15}, {"prelu", 15},
    {"sigmoid", 15}, {"sigmoid_hard", 15}, {"tanh", 15}, {"silu", 15}, {"gelu", 15},
    {"softplus", 15}, {"softsign", 15}, {"softmax", 15},
    {"layer_norm", 15}, {"batch_norm", 15}, {"instance_norm", 15}, {"l2_norm", 15},
    {"reduce_sum", 15}, {"reduce_mean", 15}, {"reduce_max", 15}, {"reduce_min", 15},
    {"reduce_sum_square", 15}, {"reduce_l2_norm", 15}, {"reduce_log_sum_exp", 15},
    {"reshape", 15}, {"transpose", 15}, {"squeeze", 15}, {"expand_dims", 15}, {"tile", 15},
    {"slice_by_size", 15}, {"slice_by_index", 15}, {"concat", 15}, {"split", 15},
    {"band_part", 15}, {"pad", 15},
    {"avg_pool", 15}, {"max_pool", 15}, {"upsample_nearest_neighbor", 15},
    {"upsample_bilinear", 15},
    {"constexpr_affine_dequantize", 16},
    {"quantize", 17}, {"dequantize", 17},
    {"constexpr_blockwise_shift_scale", 18}, {"scaled_dot_product_attention", 18},
};
const int nane_ops = sizeof ane_ops / sizeof *ane_ops;

int opset_number(const char *opset) {
  if (strncmp(opset, "ios", 3) || opset[3] < '1' || opset[3] > '9')
    return 0;
  char *end;
  long v = strtol(opset + 3, &end, 10);
  return *end || v > 99 ? 0 : (int)v;
}

bool target_op_allowed(const TargetProfile *t, const char *mil_op) {
  if (!strcmp(mil_op, "cast") && !t->in_graph_cast)
    return false;
  for (int i = 0; i < nane_ops; i++)
    if (!strcmp(ane_ops[i].name, mil_op))
      return ane_ops[i].opset <= opset_number(t->opset);
  return false;
}

Severity target_rule_severity(const TargetProfile *t, RuleId r) {
  if (catalog_rules[r].retired || catalog_rules[r].check == CHECK_NONE)
    return SEV_OFF;
  switch (r) {
  case RULE_B04: return t->surface_align > 64 ? SEV_OFF : catalog_rules[r].severity; // B11 covers it
  case RULE_B08: return t->equal_io_sizes ? catalog_rules[r].severity : SEV_OFF;
  case RULE_B09: return t->inputs == INPUTS_SINGLE ? catalog_rules[r].severity : SEV_OFF;
  case RULE_B10: return t->matmul_k_error ? SEV_ERROR : catalog_rules[r].severity;
  case RULE_B11: return t->surface_align > 64 ? catalog_rules[r].severity : SEV_OFF;
  default: return catalog_rules[r].severity;
  }
}
