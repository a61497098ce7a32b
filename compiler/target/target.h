// target.h — the ANE as data: the constraint catalog (one row per rule,
// catalog.h), the target profiles of the chip families, and the MIL checker
// that applies them to any MIL program. MIL-level: it knows no graph IR.
#ifndef ANEC_TARGET_H
#define ANEC_TARGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "mil.h"

typedef struct TargetProfile TargetProfile;

//
// catalog.c — the ANE constraint catalog (the rows of catalog.h) and
// the target profiles: per-chip values and switches, as data that mil-check
// and placement query. Every decision names the rule that caused it.
//
typedef enum {
#define X(id, ...) RULE_##id,
#include "catalog.h"
#undef X
  RULE_COUNT
} RuleId;

typedef enum {
  ACT_REJECT, ACT_CPU, ACT_REWRITE, ACT_PAD, ACT_SPLIT, ACT_PACK, ACT_WARN,
  ACT_EMITTER, // the emitter writes it right; mil-check checks others' text
  ACT_LAYOUT,  // the layout pass and the runtime's packed buffers
  ACT_BUDGET,  // counted against a per-process budget
  ACT_COST,    // a cost-model preference, not a legality rule
  ACT_RUNTIME, // a duty of the runtime
  ACT_NUMERICS, // the ANE's arithmetic: model it, or keep values in range
} RuleAction;
typedef enum { CONF_FIRM, CONF_REPORTED, CONF_DISPUTED } RuleConfidence;
// The kind of evidence behind a rule or a profile value (the tags of
// shared/design/ane-hardware-evidence.md).
typedef enum {
  EV_SOURCE,   // [src] verified by reading code or emitted files
  EV_REPORTED, // [rep] reported by a project as measured on its hardware
  EV_INFERRED, // [inf] inferred from the evidence
  EV_DISPUTED, // sources disagree, or the evidence contradicts the rule as stated
  EV_PROFILE,  // set by a --profile file (profile values only)
} Evidence;
typedef enum {
  CHECK_STATIC,  // mil-check decides it from the program text
  CHECK_PARTIAL, // mil-check sees part of it (a bound, or advice)
  CHECK_READER,  // the MIL reader rejects violations as parse errors
  CHECK_NONE,    // not checkable statically
} RuleCheck;
typedef enum { SEV_OFF, SEV_INFO, SEV_WARNING, SEV_ERROR, SEV_COUNT } Severity;

typedef struct Rule {
  const char *id;          // "ANE-T03"
  const char *text;        // the rule in one line
  RuleAction action;
  const char *action_text; // the catalog's own words ("emitter; reject in mil-check")
  RuleCheck check;
  Severity severity;       // of mil-check findings, before the target's switches
  RuleConfidence confidence;
  Evidence evidence;
  const char *retired;     // NULL, or why the rule no longer applies
  const char *source;      // a short citation of the evidence
  const char *check_note;  // what mil-check looks at, or why it cannot
} Rule;
extern const Rule catalog_rules[RULE_COUNT];
const Rule *rule_find(const char *id); // "ANE-T03" or "T03"; NULL if unknown
const char *rule_action_name(RuleAction a);         // "emitter"
const char *rule_confidence_name(RuleConfidence c); // "firm"
const char *rule_check_name(RuleCheck c);           // "static"
const char *evidence_name(Evidence e);              // "reported"
int evidence_lookup(const char *name);              // Evidence, or -1
const char *severity_name(Severity s);              // "error"

typedef enum { INPUTS_SINGLE, INPUTS_MULTI } InputsMode;

// Where a profile value comes from: a field of TargetProfile by name, a
// short citation of the evidence file's source, and its kind.
typedef struct Cite {
  const char *field;  // "max_spatial"
  const char *source; // "ANEForge _targets.py _LIMITS (M1 '16385 rejects')"
  Evidence evidence;
} Cite;

struct TargetProfile {
  const char *name;            // what --target takes: "m4"
  const char *chips;           // "M4"
  const char *program;         // T07: MIL version written, and the highest accepted
  const char *opset;           // T07: function opset written, and the highest accepted
  bool short_literals;         // T07: scalars as int32(1), else tensor<int32, []>(1)
  bool in_graph_cast;          // T07: `cast` may appear inside a program
  bool weight_file_per_matrix; // T07: every BLOBFILE in a file of its own
  int64_t max_spatial;         // B05, B12: largest spatial / contraction extent, and every
                               // axis of a value that is not rank 4
  int64_t max_channels;        // B05: most channels
  int64_t conv_cin_reject;     // B06: conv input channels from this count on fail
  int64_t min_surface_bytes;   // B07: smallest I/O surface (disputed; the safe side)
  int64_t min_row_bytes;       // B07: smallest I/O row (last axis)
  bool equal_io_sizes;         // B08: inputs alike in size, outputs alike
  InputsMode inputs;           // B09
  int matmul_k_multiple;       // B10: contraction dimension a multiple of this
  bool matmul_k_error;         // B10: an error here (else a warning)
  int surface_align;           // B04 (64) or B11 (128): bytes per I/O row
  int strip_align;             // B14: elements; width offsets of slices of an input
  bool anchor_op_forms;        // T08: a mean as reduce_sum then mul by 1/N, an rsqrt as
                               // pow(x, -0.5), the forms the anchors ran; else reduce_mean,
                               // rsqrt (disputed, or only reported)
  int compile_budget;          // P02: compiles per process
  int64_t sram_bytes;          // P03: on-chip SRAM
  int program_budget;          // P07: programs loaded at once per process
  const Cite *cites;           // where each value comes from; ends at a NULL field
};

// The fields of a TargetProfile a --profile file may set, by name (all but
// `name`'s default and `cites`): the loader, the JSON writer and the tests
// walk this table.
typedef enum {
  PF_STR,     // const char *
  PF_VERSION, // const char *: "1.3"
  PF_OPSET,   // const char *: "ios18"
  PF_BOOL,    // bool
  PF_I64,     // int64_t in [lo, hi]
  PF_INT,     // int in [lo, hi]
  PF_POW2,    // int in [lo, hi], a power of 2
  PF_INPUTS,  // InputsMode: "single", "multi"
} ProfileFieldKind;
typedef struct ProfileField {
  const char *name;      // "max_spatial"
  ProfileFieldKind kind;
  size_t off;            // offsetof(TargetProfile, name)
  int64_t lo, hi;        // PF_I64, PF_INT: the range
  const char *rules;     // the rules that read it: "B05, B12"; NULL for descriptions
} ProfileField;
extern const ProfileField profile_fields[];
extern const int nprofile_fields;
const ProfileField *profile_field(const char *name); // NULL if unknown
// A field's value: numbers, bools and InputsMode as integers; strings.
int64_t profile_field_int(const TargetProfile *t, const ProfileField *f);
const char *profile_field_str(const TargetProfile *t, const ProfileField *f);
// The value as a profile file spells it ("65536", "true", "single", "1.3").
const char *profile_field_text(const TargetProfile *t, const ProfileField *f, char *buf,
                               size_t n);
// The citation of a field of `t` (NULL if it has none).
const Cite *target_cite(const TargetProfile *t, const char *field);

extern const TargetProfile target_profiles[];
extern const int ntarget_profiles;
const TargetProfile *target_find(const char *name); // NULL if unknown
const TargetProfile *target_default(void);          // m4
void target_names(char *buf, size_t n);             // "m1, m3, m4, m5"
// Reads a JSON profile over the built-in profile its "base" names: any field
// of TargetProfile by name, "name" (default: the base's), and "sources"
// ({"FIELD": {"source": "...", "evidence": "reported"}}) for the fields it
// sets. Every field is validated; each error names the file and the field
// (reported to d). The profile and its strings live in `a`; NULL on errors.
const TargetProfile *target_profile_load(const char *path, Arena *a, RtDiag *d);
// Whether `mil_op` has an ANE path on `t` (ANE-T08; `cast` per ANE-T07).
bool target_op_allowed(const TargetProfile *t, const char *mil_op);
// The ops with an ANE path and the first opset that has each (15 = ios15).
typedef struct AneOp {
  const char *name;
  int opset;
} AneOp;
extern const AneOp ane_ops[];
extern const int nane_ops;
int opset_number(const char *opset); // "ios18" -> 18; 0 if not of that form
// The severity of a rule's findings on `t`: the rule's own, raised or
// switched off (SEV_OFF) by the profile (B04, B08, B09, B10, B11, B14).
Severity target_rule_severity(const TargetProfile *t, RuleId r);

//
// milcheck.c — applies the catalog to a MIL program for one target
//
typedef struct MilFinding {
  RuleId rule;
  Severity severity;
  MilLoc loc;       // line 0: about the program as a whole
  const char *func; // the function it is about, or NULL
  const char *msg;
} MilFinding;

typedef struct MilCheck {
  Arena arena;           // the findings and their messages
  MilFinding *findings;  // in source order
  int n, cap;
  int count[SEV_COUNT];  // findings per severity
} MilCheck;

// Checks `p` against every statically checkable rule for `t`; findings are
// appended to `c` (zero-initialize it first) and sorted by location.
void milcheck_run(MilCheck *c, const MilProgram *p, const TargetProfile *t);
void milcheck_free(MilCheck *c);

#endif
