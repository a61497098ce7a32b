// catalog.h — the ANE constraint catalog as data: one X-macro row per rule of
// tests/data/ane-constraints.md, in its order, with its ID. Include it with
// X defined; catalog.c instantiates the table, target.h the RuleId enum.
// Never delete a row: set RETIRED to the reason instead (NULL: in force).
//
// X(ID, ACTION, "action as the catalog words it", CHECK, SEVERITY, CONFIDENCE,
//   EVIDENCE, RETIRED, "one-line rule", "source", "how mil-check handles it")
//
// ACTION: what the compiler does about it (RuleAction, ACT_*). CHECK: how
// `anec mil-check` sees it (CHECK_*: static, partly static, by the MIL reader
// as a parse error, or not at all); SEVERITY: the default severity of its
// findings (a target profile may raise or switch it off, see catalog.c).
// CONFIDENCE: firm, reported or disputed, as the document says. EVIDENCE:
// the kind of evidence (Evidence, EV_*: verified from source, reported by a
// project, inferred, disputed); "source" cites it, after
// shared/design/ane-hardware-evidence.md.
// Strings may hold commas; adjacent literals are concatenated.

// A. Program text
X(T01, ACT_EMITTER, "emitter; reject in mil-check", CHECK_READER, SEV_ERROR, CONF_FIRM, EV_SOURCE,
  NULL,
  "every literal typed (int32(1), bool(false)); no bare literals",
  "Apple printer (mil-corpus); Orion \"inline bool rejected\"",
  "the MIL reader rejects bare literals: a parse error, reported without a rule ID")
X(T02, ACT_EMITTER, "emitter; warn in mil-check", CHECK_STATIC, SEV_WARNING, CONF_FIRM,
  EV_INFERRED, NULL,
  "every optional op parameter written explicitly (conv: pad_type, pad, strides, dilations, "
  "groups; concat: interleave; gelu: mode)",
  "maderix writes every one (mil_dynamic.h); omissions explain Orion's \"concat/gelu rejected\"",
  "ops whose optional parameters are omitted")
X(T03, ACT_EMITTER, "emitter; reject", CHECK_STATIC, SEV_ERROR, CONF_FIRM, EV_SOURCE, NULL,
  "conv bias is rank 1 [Cout]",
  "coremltools type inference",
  "conv bias rank")
X(T04, ACT_REJECT, "reject", CHECK_READER, SEV_ERROR, CONF_FIRM, EV_SOURCE, NULL,
  "returned names are defined values; SSA names unique",
  "MIL syntax (coremltools, Apple printer)",
  "the MIL reader rejects undefined and duplicate names: a parse error, reported without a rule ID")
X(T05, ACT_EMITTER,
  "emitter names I/O so both orders agree; runtime binds by sorted name",
  CHECK_STATIC, SEV_WARNING, CONF_DISPUTED, EV_DISPUTED, NULL,
  "inputs and outputs bind to buffers in alphabetical order of their names, not declaration "
  "order (disputed: fspecii binds in declaration order on M4); name them so both orders agree",
  "Orion #3/#13 (alphabetical) vs fspecii (x, W2, W1, W3 bound in declaration order, M4)",
  "declaration order of inputs and outputs against their alphabetical order")
X(T06, ACT_EMITTER, "emitter; reject malformed blobs", CHECK_STATIC, SEV_ERROR, CONF_FIRM,
  EV_SOURCE, NULL,
  "BLOBFILE offset = metadata offset (64 for the first blob); MILBlob v2 layout",
  "coremltools StorageFormat.hpp; Orion #8 (offset 128 gives silent garbage)",
  "BLOBFILE offsets; the weight file itself when it exists next to the program")
X(T07, ACT_EMITTER, "emitter by profile", CHECK_STATIC, SEV_ERROR, CONF_REPORTED, EV_REPORTED,
  NULL,
  "dialect per target: program(1.3) + ios18 short literals (M3+); program(1.0) + ios16 verbose "
  "literals, no in-graph cast, one weight file per matrix (M1/M2)",
  "maderix PR #6 (M1 Pro), ANE_BENCHMARK_REPORT.md:136-138 (M1: single-blob weights fail)",
  "program version, opsets, cast, weight files per matrix, scalar literal spelling")
X(T08, ACT_CPU, "cpu", CHECK_STATIC, SEV_ERROR, CONF_FIRM, EV_REPORTED, NULL,
  "only ops in the target's op set; gather, scatter*, reduce_prod, RNN cells, 3-D conv, "
  "constant-mode pad, dynamic shapes have no ANE path",
  "Core ML compute plans, hollance, ane-guide",
  "every op against the target's op set; 3-D conv; constant-mode pad")
X(T09, ACT_REWRITE, "rewrite", CHECK_STATIC, SEV_ERROR, CONF_FIRM, EV_REPORTED, NULL,
  "scaled_dot_product_attention ignores attn_mask: causal attention is matmul -> scale -> add "
  "mask -> softmax -> matmul",
  "Apple coreai docs; maderix writes the decomposed form",
  "scaled_dot_product_attention with attn_mask")
X(T10, ACT_EMITTER, "emitter", CHECK_STATIC, SEV_ERROR, CONF_FIRM, EV_SOURCE, NULL,
  "masked value -40000 (or the fp16 minimum -65504), never -inf",
  "Apple coreai docs; maderix mask -65504 (mil_dynamic.h get_mask_blob)",
  "float literals and fp16/fp32 weight blobs holding -inf or values below -65504")
X(T11, ACT_REWRITE, "rewrite", CHECK_STATIC, SEV_WARNING, CONF_REPORTED, EV_REPORTED, NULL,
  "prefer x * sigmoid(x) to silu; pow(x, -0.5) or rsqrt with explicit epsilon for norms",
  "coreai common issues; maderix, fspecii kernels (pow(x, -0.5))",
  "silu; rsqrt without epsilon")
// Severity: an error once the plans follow it (today's emitter writes
// @model_path/<kernel>/weights/ paths).
X(T12, ACT_EMITTER, "emitter; warn in mil-check", CHECK_STATIC, SEV_WARNING, CONF_FIRM, EV_SOURCE,
  NULL,
  "BLOBFILE paths are @model_path/weights/<file>; no anchor shows that other layouts resolve",
  "maderix training_dynamic/io.h:107-112 (creates only weights/), Orion, fspecii: all "
  "@model_path/weights/<file>",
  "every BLOBFILE path")
// Severity: an error once the plans follow it (today's emitter writes no
// coremlc keys).
X(T13, ACT_EMITTER, "emitter; warn in mil-check", CHECK_STATIC, SEV_WARNING, CONF_REPORTED,
  EV_INFERRED, NULL,
  "buildInfo carries the coremlc-version key, as every working ANE program does",
  "maderix mil_dynamic.h:8, Orion mil_builder.m, fspecii stories_mil.h, maderix PR #6 (M1): "
  "{{\"coremlc-version\", \"3505.4.1\"}}; Apple printer (mil-corpus)",
  "the program's buildInfo")
X(T14, ACT_PAD, "pad the axis to a power of 2 with masked entries", CHECK_STATIC, SEV_WARNING,
  CONF_REPORTED, EV_REPORTED, NULL,
  "softmax over an axis whose length is not a power of 2 fails (InvalidMILProgram)",
  "Espresso notes",
  "the length of each softmax's axis")

// B. Tensors and buffers
X(B01, ACT_CPU, "cpu or cast at the boundary", CHECK_STATIC, SEV_ERROR, CONF_FIRM, EV_REPORTED,
  NULL,
  "compute and I/O in fp16 (int8 via quantize/dequantize); an fp32 tensor or literal takes the "
  "op off the ANE",
  "Apple coreai, hollance; ANEForge docs/developer/numerics.md (fp16 compute only)",
  "I/O dtypes; ops computing in fp32 or int8")
X(B02, ACT_LAYOUT, "layout pass; runtime writes packed", CHECK_STATIC, SEV_ERROR, CONF_FIRM,
  EV_SOURCE, NULL,
  "I/O tensors rank 4 [1, C, 1, S], dense, no stride padding",
  "maderix io.h:79-90, Orion #14, ml-ane-transformers",
  "I/O shapes")
X(B03, ACT_REJECT, "reject / rewrite", CHECK_STATIC, SEV_ERROR, CONF_FIRM, EV_REPORTED, NULL,
  "intermediates rank <= 5; static shapes only",
  "Apple coreai; ANEForge docs/developer/op-quirks.md",
  "ranks and ? dimensions of every value")
X(B04, ACT_PAD, "pad S or re-layout", CHECK_STATIC, SEV_WARNING, CONF_FIRM, EV_REPORTED, NULL,
  "last axis contiguous and 64-byte aligned (>= 32 fp16 elements); a singleton last axis wastes "
  "32x memory",
  "Apple coreai",
  "the last axis of each I/O tensor")
X(B05, ACT_SPLIT, "split", CHECK_STATIC, SEV_ERROR, CONF_REPORTED, EV_REPORTED, NULL,
  "spatial extent <= the family's cap (16,384 on M1-M3, 65,536 on M4/M5); channels <= 65,536 "
  "on all",
  "ANEForge _targets.py _LIMITS (M1 '16385 rejects', '65537 rejects'; M2, M5 measured), "
  "rustane #13 (M3 Ultra)",
  "channel and spatial axes of rank-4 and rank-5 I/O and op results")
X(B06, ACT_SPLIT, "split the contraction or use matmul", CHECK_STATIC, SEV_ERROR, CONF_REPORTED,
  EV_REPORTED, NULL,
  "conv input channels: a 32000-input-channel conv is rejected (32000 outputs work)",
  "maderix training/ane_classifier.h; fspecii ane_classifier.h",
  "conv input channels against the profile's limit")
X(B07, ACT_PAD, "pad", CHECK_STATIC, SEV_ERROR, CONF_DISPUTED, EV_DISPUTED, NULL,
  "I/O surfaces too small compile but fail at eval: the reports fit a per-row (last-axis) "
  "minimum of 64 bytes; a fixed minimum of ~49,152 bytes (e.g. [768,16] fp32) is disputed",
  "Orion #4 (fp32 [768,16] = 768 rows x 64 B runs, [768,1] fails 0x1d), #14; per-row reading "
  "inferred; 8 KiB surfaces in maderix tests",
  "I/O rows against the profile's per-row minimum; I/O sizes against its (disputed) byte minimum")
X(B08, ACT_PAD, "pad to the largest, or pack into one tensor", CHECK_STATIC, SEV_ERROR,
  CONF_DISPUTED, EV_DISPUTED, NULL,
  "all inputs of one program the same allocation size, all outputs the same size (error 0x1d "
  "otherwise)",
  "Orion #2/#12, maderix README vs fspecii (unequal multi-inputs on M4); profile switch",
  "I/O sizes, when the profile's equal-sizes switch is on")
X(B09, ACT_PACK, "pack inputs on channels or spatially", CHECK_STATIC, SEV_ERROR, CONF_DISPUTED,
  EV_DISPUTED, NULL,
  "one input tensor per program (multi-input fails with 0x1d)",
  "maderix README:192 vs Orion #12 and fspecii (unequal inputs, rank-3 [1,32000,768], M4); "
  "profile switch inputs=single|multi",
  "the number of inputs, when the profile says inputs=single")
X(B10, ACT_PAD, "pad", CHECK_STATIC, SEV_WARNING, CONF_REPORTED, EV_REPORTED, NULL,
  "matmul contraction dimension a multiple of 32 (silent zeros otherwise)",
  "one M1 user (maderix issue #47)",
  "matmul contraction dimensions (an error on profiles that say so)")
X(B11, ACT_PAD, "pad", CHECK_STATIC, SEV_ERROR, CONF_REPORTED, EV_REPORTED, NULL,
  "surfaces 128-byte aligned on M5",
  "maderix PR #35 (M5)",
  "the last axis of each I/O tensor, on profiles with 128-byte surfaces")
// Severity: an error once the plans follow it (on m1 and m3 the classifier
// kernels of Stories110M, GPT-2 and Qwen3 exceed 16,384).
X(B12, ACT_SPLIT, "split or tile; warn in mil-check", CHECK_STATIC, SEV_WARNING, CONF_REPORTED,
  EV_REPORTED, NULL,
  "every axis of a value that is not rank 4, and every matmul contraction K, <= the family's "
  "spatial cap (16,384 on M1-M3, 65,536 on M4/M5)",
  "ANEForge _targets.py _LIMITS max_tensor_dim and preflight() (non-rank-4 tensors capped on "
  "every axis); rustane #13 (M3 Ultra: width 17,920 fails)",
  "every axis of values of rank 1-3 and 5 (other than B05's) and every matmul contraction")
// Severity: an error once the plans follow it (attention and RoPE are
// lowered at rank 5 today).
X(B13, ACT_REWRITE, "lower to rank 4; warn in mil-check", CHECK_STATIC, SEV_WARNING,
  CONF_REPORTED, EV_REPORTED, NULL,
  "no value of rank 5: transpose+matmul fails ANECCompile at rank >= 5; work at rank 4 "
  "([1, H, S, D])",
  "ANEForge docs/developer/op-quirks.md, wall rank5_transpose_matmul; maderix, fspecii stay at "
  "rank 4",
  "every value of rank 5 (higher ranks are B03's)")
X(B14, ACT_LAYOUT, "layout: strips at multiples of 64 columns; reject in mil-check",
  CHECK_STATIC, SEV_ERROR, CONF_REPORTED, EV_INFERRED, NULL,
  "a slice of a function input starts at a width (last-axis) offset that is a multiple of 64 "
  "elements",
  "maderix mil_dynamic.h:62-81 (blocks at multiples of SEQ = 256); ANEForge "
  "docs/numeric-cliffs.md (width-offset slices take the crop-DMA path, x16 saturation on A13/A14)",
  "the width offset of every slice_by_size of a function input")

// C. Programs and the process
X(P01, ACT_REWRITE, "weights as inputs (dynamic weights) for anything trained", CHECK_NONE,
  SEV_INFO, CONF_FIRM, EV_REPORTED, NULL,
  "weights are baked at compile time; changing a weight needs a recompile",
  "maderix, Orion",
  "whether a constant will change is a property of how the program is used, not of its text")
X(P02, ACT_BUDGET,
  "count compiles, refuse a plan that exceeds the budget, restart from checkpoint if ever needed",
  CHECK_NONE, SEV_INFO, CONF_FIRM, EV_REPORTED, NULL,
  "~119 compiles per process before compiles fail",
  "maderix README:190, Orion #5",
  "a budget of the process that compiles, not of one program")
X(P03, ACT_COST, "cost model; split kernels / tile", CHECK_PARTIAL, SEV_WARNING, CONF_REPORTED,
  EV_REPORTED, NULL,
  "working set beyond SRAM falls off a cliff: ~283 GFLOPS/MB at 12.5 MB, 59 at 32 MB, 8 at "
  "128 MB",
  "maderix docs/ANE_INTERNALS.md sram_probe (M4 Max)",
  "only a lower bound: weights plus I/O against the profile's SRAM; intermediates need a schedule")
X(P04, ACT_COST, "fuse; cost model", CHECK_NONE, SEV_INFO, CONF_REPORTED, EV_REPORTED, NULL,
  "each dispatch costs ~0.1-0.2 ms; deep programs (16-64 ops) approach peak",
  "maderix, forks",
  "dispatch cost is a matter of the whole schedule, not of one program")
X(P05, ACT_COST, "prefer conv where weights are constants", CHECK_PARTIAL, SEV_INFO,
  CONF_REPORTED, EV_REPORTED, NULL,
  "1x1 conv ~3x faster than matmul for constant weights",
  "maderix blog",
  "advice only: matmul with a constant operand")
X(P06, ACT_RUNTIME, "check every BOOL/NSError; name the kernel and its DSL origin", CHECK_NONE,
  SEV_INFO, CONF_FIRM, EV_REPORTED, NULL,
  "a failed compile or eval must never pass silently",
  "user demand (coremltools, coreai-models #205)",
  "a duty of the runtime that compiles and evaluates, not a property of the program")
X(P07, ACT_BUDGET, "count loaded programs; unload before loading past the budget", CHECK_NONE,
  SEV_INFO, CONF_REPORTED, EV_REPORTED, NULL,
  "~120 programs loaded at once per process; past it, loads fail with \"Program load failure "
  "(0x20004)\"",
  "jundot/omlx #2781",
  "a budget of the process that loads programs, not of one program")
X(P08, ACT_COST, "cpu", CHECK_NONE, SEV_INFO, CONF_REPORTED, EV_INFERRED, NULL,
  "a sum whose operands come to the host anyway (a CPU operand, the others on the CPU or read "
  "only by outputs) stays on the CPU: a kernel would only move their bytes (k26: 24.6 MFLOP "
  "over 147 MB)",
  "ane-hardware-evidence.md summary #10 (Stories110M k26, the add of the embedding's two "
  "gradients: in [1,64000,1,768])",
  "where an operand lives is a matter of the placement, not of one program's text")

// D. Numerics
X(N01, ACT_NUMERICS, "model it in the executor; keep matmul outputs in range", CHECK_NONE,
  SEV_INFO, CONF_REPORTED, EV_REPORTED, NULL,
  "matmul outputs saturate to +-inf near |y| ~ 32,752",
  "ANEForge docs/numeric-cliffs.md (M2 Pro, M5)",
  "depends on the values at run time, not on the program text")
X(N02, ACT_NUMERICS, "model it in the executor; sum by matmul with ones", CHECK_NONE, SEV_INFO,
  CONF_REPORTED, EV_REPORTED, NULL,
  "reduce_sum accumulates in fp16 (matmul accumulates wide): long sums lose precision or overflow",
  "ANEForge docs/developer/numerics.md",
  "depends on the values at run time, not on the program text")
