// catalog.c — the constraint catalog instantiated from catalog.h, and the
// target profiles: what each chip accepts, as one table of values and
// switches that mil-check (and later placement) query. No logic about
// programs lives here; milcheck.c applies these facts.
#include "target.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

const Rule catalog_rules[RULE_COUNT] = {
#define X(ID, ACT, ACT_TEXT, CHECK, SEV, CONF, EV, RETIRED, TEXT, SOURCE, NOTE)                  \
  [RULE_##ID] = {"ANE-" #ID, TEXT, ACT, ACT_TEXT, CHECK, SEV, CONF, EV, RETIRED, SOURCE, NOTE},
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
      [ACT_NUMERICS] = "numerics",
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

static const char *const evidence_names[] = {
    [EV_SOURCE] = "source",     [EV_REPORTED] = "reported", [EV_INFERRED] = "inferred",
    [EV_DISPUTED] = "disputed", [EV_PROFILE] = "profile",
};

const char *evidence_name(Evidence e) { return evidence_names[e]; }

int evidence_lookup(const char *name) {
  for (int i = 0; i < (int)(sizeof evidence_names / sizeof *evidence_names); i++)
    if (!strcmp(evidence_names[i], name))
      return i;
  return -1;
}

const char *severity_name(Severity s) {
  static const char *const names[] = {"off", "info", "warning", "error"};
  return names[s];
}

//
// Target profiles
//
// One per chip family, each value with its citation (Cite: the source as
// shared/design/ane-hardware-evidence.md gives it, and the kind of
// evidence). Disputed rules take the safe side everywhere (B07 49,152 bytes,
// B08 equal sizes, B09 one input); a user who measured otherwise loads a
// profile file over a built-in one (target_profile_load, profile.c).

// The fields of TargetProfile by name, with the range a profile file may
// give each and the rules that read it.
#define FIELD(f, kind, lo, hi, rules) {#f, kind, offsetof(TargetProfile, f), lo, hi, rules}
const ProfileField profile_fields[] = {
    FIELD(name, PF_STR, 0, 0, NULL),
    FIELD(chips, PF_STR, 0, 0, NULL),
    FIELD(program, PF_VERSION, 0, 0, "T07"),
    FIELD(opset, PF_OPSET, 0, 0, "T07"),
    FIELD(short_literals, PF_BOOL, 0, 1, "T07"),
    FIELD(in_graph_cast, PF_BOOL, 0, 1, "T07"),
    FIELD(weight_file_per_matrix, PF_BOOL, 0, 1, "T07"),
    FIELD(max_spatial, PF_I64, 1, (int64_t)1 << 31, "B05, B12"),
    FIELD(max_channels, PF_I64, 1, (int64_t)1 << 31, "B05"),
    FIELD(conv_cin_reject, PF_I64, 1, (int64_t)1 << 31, "B06"),
    FIELD(min_surface_bytes, PF_I64, 0, (int64_t)1 << 31, "B07"),
    FIELD(min_row_bytes, PF_I64, 0, 1 << 20, "B07"),
    FIELD(equal_io_sizes, PF_BOOL, 0, 1, "B08"),
    FIELD(inputs, PF_INPUTS, 0, 1, "B09"),
    FIELD(matmul_k_multiple, PF_INT, 1, 4096, "B10"),
    FIELD(matmul_k_error, PF_BOOL, 0, 1, "B10"),
    FIELD(surface_align, PF_POW2, 1, 4096, "B04, B11"),
    FIELD(strip_align, PF_INT, 1, 1 << 16, "B14"),
    FIELD(anchor_op_forms, PF_BOOL, 0, 1, "T08"),
    FIELD(compile_budget, PF_INT, 1, 1000000, "P02"),
    FIELD(sram_bytes, PF_I64, 1, (int64_t)1 << 40, "P03"),
    FIELD(program_budget, PF_INT, 1, 1000000, "P07"),
};
#undef FIELD
const int nprofile_fields = sizeof profile_fields / sizeof *profile_fields;

// Citations every family shares.
#define CITES_COMMON                                                                               \
  {"max_channels", "ANEForge _targets.py _LIMITS channel_extent ('65537 rejects', all families)", \
   EV_REPORTED},                                                                                   \
  {"conv_cin_reject", "maderix training/ane_classifier.h, fspecii ane_classifier.h",               \
   EV_REPORTED},                                                                                   \
  {"min_surface_bytes", "Orion #4 (fp32 [768,16]); disputed (B07): the safe side", EV_DISPUTED},   \
  {"min_row_bytes", "Orion #4, #14: every report fits 64 B per row (B07)", EV_INFERRED},           \
  {"equal_io_sizes", "Orion #2/#12 vs fspecii (unequal inputs on M4): the safe side",              \
   EV_DISPUTED},                                                                                   \
  {"inputs", "maderix README:192 (0x1d) vs Orion #12, fspecii: the safe side", EV_DISPUTED},       \
  {"matmul_k_multiple", "one M1 user (maderix issue #47)", EV_REPORTED},                           \
  {"strip_align", "maderix mil_dynamic.h:62-81 (blocks at multiples of 256); 64 fp16 = 128 B",     \
   EV_INFERRED},                                                                                   \
  {"anchor_op_forms", "maderix, fspecii: reduce_sum + mul(1/N), pow(x, -0.5); reduce_mean "       \
                      "disputed (Espresso), rsqrt only reported (ANEForge)",                       \
   EV_SOURCE},                                                                                     \
  {"compile_budget", "maderix README:190, Orion #5", EV_REPORTED},                                 \
  {"program_budget", "jundot/omlx #2781 ('120-program budget', 0x20004)", EV_REPORTED}

#define CITE_ALIGN_64 {"surface_align", "Apple coreai (B04)", EV_REPORTED}
#define CITE_K_WARNING {"matmul_k_error", "reported on an M1 only: a warning here", EV_INFERRED}
#define CITE_ONE_FILE                                                                              \
  {"weight_file_per_matrix", "maderix inmem_peak.m (128 blobs in one file; M3, M4, M5)",           \
   EV_REPORTED}
#define SRAM_PROBE "maderix README, docs/ANE_INTERNALS.md sram_probe"

static const Cite m1_cites[] = {
    {"program", "maderix PR #6 ('Tested on M1 Pro')", EV_REPORTED},
    {"opset", "maderix PR #6 ('Tested on M1 Pro')", EV_REPORTED},
    {"short_literals", "maderix PR #6: verbose program(1.0) literals", EV_REPORTED},
    {"in_graph_cast", "maderix PR #6: no cast on M1/M2, fp16 I/O", EV_REPORTED},
    {"weight_file_per_matrix", "maderix ANE_BENCHMARK_REPORT.md:136-138 (single-blob weights FAIL)",
     EV_REPORTED},
    {"max_spatial", "ANEForge _targets.py _LIMITS max_tensor_dim (M1 '16385 rejects', M2)",
     EV_REPORTED},
    {"matmul_k_error", "reported on an M1 (maderix issue #47)", EV_REPORTED},
    CITE_ALIGN_64,
    {"sram_bytes", SRAM_PROBE " (measured on M4 Max)", EV_INFERRED},
    CITES_COMMON,
    {NULL, NULL, EV_SOURCE},
};

static const Cite m3_cites[] = {
    {"program", "rustane runs maderix-style program(1.3) kernels on M3 Ultra", EV_INFERRED},
    {"opset", "rustane runs maderix-style ios18 kernels on M3 Ultra", EV_INFERRED},
    {"short_literals", "rustane runs maderix-style program(1.3) kernels on M3 Ultra", EV_INFERRED},
    {"in_graph_cast", "maderix README:182 (cast in-graph on M4)", EV_INFERRED},
    CITE_ONE_FILE,
    {"max_spatial", "ANEForge _targets.py _LIMITS (A15: 16,384), rustane #13 (M3 Ultra: 17,920 "
                    "fails)",
     EV_REPORTED},
    CITE_K_WARNING,
    CITE_ALIGN_64,
    {"sram_bytes", SRAM_PROBE " (measured on M4 Max)", EV_INFERRED},
    CITES_COMMON,
    {NULL, NULL, EV_SOURCE},
};

static const Cite m4_cites[] = {
    {"program", "maderix, Orion, fspecii kernels (M4)", EV_REPORTED},
    {"opset", "maderix, Orion, fspecii kernels (M4)", EV_REPORTED},
    {"short_literals", "maderix, Orion, fspecii kernels (M4)", EV_REPORTED},
    {"in_graph_cast", "maderix README:182 (fp32 I/O through an in-graph cast, M4)", EV_REPORTED},
    CITE_ONE_FILE,
    {"max_spatial", "ANEForge _targets.py _LIMITS (A16: 65,536, measured on M5; M4 is A16 by its "
                    "family ladder); fspecii K = 32,000 on M4",
     EV_INFERRED},
    CITE_K_WARNING,
    CITE_ALIGN_64,
    {"sram_bytes", SRAM_PROBE " (M4 Max)", EV_REPORTED},
    CITES_COMMON,
    {NULL, NULL, EV_SOURCE},
};

static const Cite m5_cites[] = {
    {"program", "maderix benchmarks/ANE_BENCHMARK_REPORT.md (program(1.3) on M5)", EV_REPORTED},
    {"opset", "maderix benchmarks/ANE_BENCHMARK_REPORT.md (ios18 on M5)", EV_REPORTED},
    {"short_literals", "maderix benchmarks/ANE_BENCHMARK_REPORT.md (program(1.3) on M5)",
     EV_REPORTED},
    {"in_graph_cast", "maderix README:182 (cast in-graph on M4)", EV_INFERRED},
    CITE_ONE_FILE,
    {"max_spatial", "ANEForge _targets.py _LIMITS (A16: 65,536, measured on M5)", EV_REPORTED},
    CITE_K_WARNING,
    {"surface_align", "maderix PR #35 (M5: 128-byte surfaces)", EV_REPORTED},
    {"sram_bytes", SRAM_PROBE " (measured on M4 Max)", EV_INFERRED},
    CITES_COMMON,
    {NULL, NULL, EV_SOURCE},
};

// What every family shares: B05 channels, B06, the disputed rules' safe
// side (B07-B09), B10, strips (B14), the anchors' op forms (T08), the
// budgets (P02, P07), SRAM (P03).
#define PROFILE_COMMON                                                                             \
  .max_channels = 65536, .conv_cin_reject = 32000, .min_surface_bytes = 49152,                     \
  .min_row_bytes = 64, .equal_io_sizes = true, .inputs = INPUTS_SINGLE, .matmul_k_multiple = 32,  \
  .strip_align = 64, .anchor_op_forms = true, .compile_budget = 119, .sram_bytes = (int64_t)32 << 20,                       \
  .program_budget = 120

const TargetProfile target_profiles[] = {
    {
        .name = "m1", .chips = "M1, M2",
        .program = "1.0", .opset = "ios16",
        .short_literals = false, .in_graph_cast = false, .weight_file_per_matrix = true,
        .max_spatial = 16384, .matmul_k_error = true, .surface_align = 64,
        PROFILE_COMMON, .cites = m1_cites,
    },
    {
        .name = "m3", .chips = "M3",
        .program = "1.3", .opset = "ios18",
        .short_literals = true, .in_graph_cast = true, .weight_file_per_matrix = false,
        .max_spatial = 16384, .matmul_k_error = false, .surface_align = 64,
        PROFILE_COMMON, .cites = m3_cites,
    },
    {
        .name = "m4", .chips = "M4",
        .program = "1.3", .opset = "ios18",
        .short_literals = true, .in_graph_cast = true, .weight_file_per_matrix = false,
        .max_spatial = 65536, .matmul_k_error = false, .surface_align = 64,
        PROFILE_COMMON, .cites = m4_cites,
    },
    {
        .name = "m5", .chips = "M5",
        .program = "1.3", .opset = "ios18",
        .short_literals = true, .in_graph_cast = true, .weight_file_per_matrix = false,
        .max_spatial = 65536, .matmul_k_error = false, .surface_align = 128,
        PROFILE_COMMON, .cites = m5_cites,
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

const ProfileField *profile_field(const char *name) {
  for (int i = 0; i < nprofile_fields; i++)
    if (!strcmp(profile_fields[i].name, name))
      return &profile_fields[i];
  return NULL;
}

const Cite *target_cite(const TargetProfile *t, const char *field) {
  for (const Cite *c = t->cites; c && c->field; c++)
    if (!strcmp(c->field, field))
      return c;
  return NULL;
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
  case RULE_B14: return t->strip_align > 1 ? catalog_rules[r].severity : SEV_OFF;
  default: return catalog_rules[r].severity;
  }
}
