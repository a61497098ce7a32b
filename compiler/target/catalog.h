// catalog.h — the ANE constraint catalog as data: one X-macro row per rule of
// shared/design/ane-constraints.md, in its order, with its ID. Include it with
// X defined; catalog.c instantiates the table, target.h the RuleId enum.
// Never delete a row: set RETIRED to the reason instead (NULL: in force).
//
// X(ID, ACTION, "action as the catalog words it", CHECK, SEVERITY, CONFIDENCE,
//   RETIRED, "one-line rule", "source", "how mil-check handles it")
//
// ACTION: what the compiler does about it (RuleAction, ACT_*). CHECK: how
// `anec mil-check` sees it (CHECK_*: static, partly static, by the MIL reader
// as a parse error, or not at all); SEVERITY: the default severity of its
// findings (a target profile may raise or switch it off, see milcheck.c).
// Strings may hold commas; adjacent literals are concatenated.

// A. Program text
X(T01, ACT_EMITTER, "emitter; reject in mil-check", CHECK_READER, SEV_ERROR, CONF_FIRM, NULL,
  "every literal typed (int32(1), bool(false)); no bare literals",
  "Apple printer; Orion \"inline bool rejected\"",
  "the MIL reader rejects bare literals: a parse error, reported without a rule ID")
X(T02, ACT_EMITTER, "emitter; warn in mil-check", CHECK_STATIC, SEV_WARNING, CONF_FIRM, NULL,
  "every optional op parameter written explicitly (conv: pad_type, pad, strides, dilations, "
  "groups; concat: interleave; gelu: mode)",
  "omissions explain Orion's \"concat/gelu rejected\"",
  "ops whose optional parameters are omitted")
X(T03, ACT_EMITTER, "emitter; reject", CHECK_STATIC, SEV_ERROR, CONF_FIRM, NULL,
  "conv bias is rank 1 [Cout]",
  "coremltools type inference",
  "conv bias rank")
X(T04, ACT_REJECT, "reject", CHECK_READER, SEV_ERROR, CONF_FIRM, NULL,
  "returned names are defined values; SSA names unique",
  "firm",
  "the MIL reader rejects undefined and duplicate names: a parse error, reported without a rule ID")
X(T05, ACT_EMITTER,
  "emitter names I/O so both orders agree; runtime binds by sorted name",
  CHECK_STATIC, SEV_WARNING, CONF_REPORTED, NULL,
  "inputs and outputs bind to buffers in alphabetical order of their names, not declaration order",
  "Orion",
  "declaration order of inputs and outputs against their alphabetical order")
X(T06, ACT_EMITTER, "emitter; reject malformed blobs", CHECK_STATIC, SEV_ERROR, CONF_FIRM, NULL,
  "BLOBFILE offset = metadata offset (64 for the first blob); MILBlob v2 layout",
  "coremltools",
  "BLOBFILE offsets; the weight file itself when it exists next to the program")
X(T07, ACT_EMITTER, "emitter by profile", CHECK_STATIC, SEV_ERROR, CONF_REPORTED, NULL,
  "dialect per target: program(1.3) + ios18 short literals (M3+); program(1.0) + ios16 verbose "
  "literals, no in-graph cast, one weight file per matrix (M1/M2)",
  "maderix PR #6, benchmark report",
  "program version, opsets, cast, weight files per matrix, scalar literal spelling")
X(T08, ACT_CPU, "cpu", CHECK_STATIC, SEV_ERROR, CONF_FIRM, NULL,
  "only ops in the target's op set; gather, scatter*, reduce_prod, RNN cells, 3-D conv, "
  "constant-mode pad, dynamic shapes have no ANE path",
  "Core ML compute plans, hollance, ane-guide",
  "every op against the target's op set; 3-D conv; constant-mode pad")
X(T09, ACT_REWRITE, "rewrite", CHECK_STATIC, SEV_ERROR, CONF_FIRM, NULL,
  "scaled_dot_product_attention ignores attn_mask: causal attention is matmul -> scale -> add "
  "mask -> softmax -> matmul",
  "maderix, Apple coreai docs",
  "scaled_dot_product_attention with attn_mask")
X(T10, ACT_EMITTER, "emitter", CHECK_STATIC, SEV_ERROR, CONF_FIRM, NULL,
  "masked value -40000 (or the fp16 minimum -65504), never -inf",
  "Apple coreai docs; maderix uses -65504",
  "float literals and fp16/fp32 weight blobs holding -inf or values below -65504")
X(T11, ACT_REWRITE, "rewrite", CHECK_STATIC, SEV_WARNING, CONF_REPORTED, NULL,
  "prefer x * sigmoid(x) to silu; pow(x, -0.5) or rsqrt with explicit epsilon for norms",
  "coreai common issues, maderix kernels",
  "silu; rsqrt without epsilon")

// B. Tensors and buffers
X(B01, ACT_CPU, "cpu or cast at the boundary", CHECK_STATIC, SEV_ERROR, CONF_FIRM, NULL,
  "compute and I/O in fp16 (int8 via quantize/dequantize); an fp32 tensor or literal takes the "
  "op off the ANE",
  "Apple coreai, hollance",
  "I/O dtypes; ops computing in fp32 or int8")
X(B02, ACT_LAYOUT, "layout pass; runtime writes packed", CHECK_STATIC, SEV_ERROR, CONF_FIRM, NULL,
  "I/O tensors rank 4 [1, C, 1, S], dense, no stride padding",
  "maderix, Orion #14, ml-ane-transformers",
  "I/O shapes")
X(B03, ACT_REJECT, "reject / rewrite", CHECK_STATIC, SEV_ERROR, CONF_FIRM, NULL,
  "intermediates rank <= 5; static shapes only",
  "Apple coreai",
  "ranks and ? dimensions of every value")
X(B04, ACT_PAD, "pad S or re-layout", CHECK_STATIC, SEV_WARNING, CONF_FIRM, NULL,
  "last axis contiguous and 64-byte aligned (>= 32 fp16 elements); a singleton last axis wastes "
  "32x memory",
  "Apple coreai",
  "the last axis of each I/O tensor")
X(B05, ACT_SPLIT, "split", CHECK_STATIC, SEV_ERROR, CONF_REPORTED, NULL,
  "spatial extent <= 16384; channels <= 65536 (M1 measurement; larger chips same or more)",
  "ane-guide, ANEForge, PR #26",
  "channel and spatial axes of rank-4 and rank-5 I/O and op results")
X(B06, ACT_SPLIT, "split the contraction or use matmul", CHECK_STATIC, SEV_ERROR, CONF_REPORTED,
  NULL,
  "conv input channels: a 32000-input-channel conv is rejected (32000 outputs work)",
  "maderix",
  "conv input channels against the profile's limit")
X(B07, ACT_PAD, "pad", CHECK_STATIC, SEV_ERROR, CONF_DISPUTED, NULL,
  "minimum I/O surface size ~49,152 bytes (e.g. [768,16] fp16); smaller compiles but fails at eval",
  "disputed: Orion #4 vs 8 KiB surfaces in maderix tests; profile value",
  "I/O sizes against the profile's minimum")
X(B08, ACT_PAD, "pad to the largest, or pack into one tensor", CHECK_STATIC, SEV_ERROR,
  CONF_DISPUTED, NULL,
  "all inputs of one program the same allocation size, all outputs the same size (error 0x1d "
  "otherwise)",
  "disputed: Orion #2/#12, maderix README vs forks; profile switch",
  "I/O sizes, when the profile's equal-sizes switch is on")
X(B09, ACT_PACK, "pack inputs on channels or spatially", CHECK_STATIC, SEV_ERROR, CONF_DISPUTED,
  NULL,
  "one input tensor per program (multi-input fails with 0x1d)",
  "disputed: maderix README vs its own tests and forks; profile switch inputs=single|multi",
  "the number of inputs, when the profile says inputs=single")
X(B10, ACT_PAD, "pad", CHECK_STATIC, SEV_WARNING, CONF_REPORTED, NULL,
  "matmul contraction dimension a multiple of 32 (silent zeros otherwise)",
  "one M1 user (issue #47)",
  "matmul contraction dimensions (an error on profiles that say so)")
X(B11, ACT_PAD, "pad", CHECK_STATIC, SEV_ERROR, CONF_REPORTED, NULL,
  "surfaces 128-byte aligned on M5",
  "PR #35",
  "the last axis of each I/O tensor, on profiles with 128-byte surfaces")

// C. Programs and the process
X(P01, ACT_REWRITE, "weights as inputs (dynamic weights) for anything trained", CHECK_NONE,
  SEV_INFO, CONF_FIRM, NULL,
  "weights are baked at compile time; changing a weight needs a recompile",
  "firm",
  "whether a constant will change is a property of how the program is used, not of its text")
X(P02, ACT_BUDGET,
  "count compiles, refuse a plan that exceeds the budget, restart from checkpoint if ever needed",
  CHECK_NONE, SEV_INFO, CONF_FIRM, NULL,
  "~119 compiles per process before compiles fail",
  "maderix, Orion",
  "a budget of the process that compiles, not of one program")
X(P03, ACT_SPLIT, "split kernels / tile; cost model", CHECK_PARTIAL, SEV_WARNING, CONF_FIRM, NULL,
  "working set of one program > ~32 MB SRAM costs ~30%",
  "maderix measurements",
  "only a lower bound: weights plus I/O against the profile's SRAM; intermediates need a schedule")
X(P04, ACT_COST, "fuse; cost model", CHECK_NONE, SEV_INFO, CONF_REPORTED, NULL,
  "each dispatch costs ~0.1-0.2 ms; deep programs (16-64 ops) approach peak",
  "maderix, forks",
  "dispatch cost is a matter of the whole schedule, not of one program")
X(P05, ACT_COST, "prefer conv where weights are constants", CHECK_PARTIAL, SEV_INFO,
  CONF_REPORTED, NULL,
  "1x1 conv ~3x faster than matmul for constant weights",
  "maderix blog",
  "advice only: matmul with a constant operand")
X(P06, ACT_RUNTIME, "check every BOOL/NSError; name the kernel and its DSL origin", CHECK_NONE,
  SEV_INFO, CONF_FIRM, NULL,
  "a failed compile or eval must never pass silently",
  "user demand (coremltools, coreai-models #205)",
  "a duty of the runtime that compiles and evaluates, not a property of the program")
