// ops.h — the op table: one row per graph-IR op, the only list of ops.
// X(NAME, .anet name, arity (-1: one or more), MIL op it lowers to, inference)
// Attributes used (fields of Node) are noted per row. Later issues add columns
// (gradient rule, ANE legality) here, never a second list.

// sources: no inputs; shape set at creation
X(INPUT,         "input",         0, NULL,           infer_source)  // name, dtype
X(PARAM,         "param",         0, "const",        infer_source)  // name, init, init_std
X(CONST,         "const",         0, "const",        infer_source)  // value (rank 0)
X(CAUSAL_MASK,   "causal_mask",   0, "const",        infer_source)  // [n, n]: 0 on/below diagonal, -inf above
X(ROPE_COS,      "rope_cos",      0, "const",        infer_source)  // [seq, hd/2]: cos(p * value^(-2i/hd))
X(ROPE_SIN,      "rope_sin",      0, "const",        infer_source)  // [seq, hd/2]: sin(p * value^(-2i/hd))

// elementwise, NumPy broadcasting
X(ADD,           "add",           2, "add",          infer_binary)
X(SUB,           "sub",           2, "sub",          infer_binary)
X(MUL,           "mul",           2, "mul",          infer_binary)
X(DIV,           "div",           2, "real_div",     infer_binary)
X(NEG,           "neg",           1, "mul",          infer_unary)   // lowered as mul by -1
X(EXP,           "exp",           1, "exp",          infer_unary)
X(LOG,           "log",           1, "log",          infer_unary)
X(SQRT,          "sqrt",          1, "sqrt",         infer_unary)
X(RSQRT,         "rsqrt",         1, "rsqrt",        infer_unary)
X(POW,           "pow",           1, "pow",          infer_unary)   // value: exponent
X(SIGMOID,       "sigmoid",       1, "sigmoid",      infer_unary)
X(SILU,          "silu",          1, "silu",         infer_unary)
X(TANH,          "tanh",          1, "tanh",         infer_unary)
X(RELU,          "relu",          1, "relu",         infer_unary)
X(GELU,          "gelu",          1, "gelu",         infer_unary)   // gelu

// reductions (keep the reduced axis as 1; AXIS_ALL gives rank 0)
X(SUM,           "sum",           1, "reduce_sum",   infer_reduce)  // axis
X(MEAN,          "mean",          1, "reduce_mean",  infer_reduce)  // axis
X(MAX,           "max",           1, "reduce_max",   infer_reduce)  // axis
X(SOFTMAX,       "softmax",       1, "softmax",      infer_softmax) // axis

// contraction and data movement
X(MATMUL,        "matmul",        2, "matmul",       infer_matmul)  // transpose_a, transpose_b
X(RESHAPE,       "reshape",       1, "reshape",      infer_reshape) // target
X(TRANSPOSE,     "transpose",     1, "transpose",    infer_transpose) // perm
X(SLICE,         "slice",         1, "slice_by_index", infer_slice) // axis, begin, end
X(CONCAT,        "concat",       -1, "concat",       infer_concat)  // axis
X(EMBED,         "embed",         2, "gather",       infer_embed)   // (table [V, D], ids [S] i32) -> [S, D]

// loss
X(CROSS_ENTROPY, "cross_entropy", 2, NULL,           infer_cross_entropy) // (logits [S, V], targets [S] i32) -> [] mean
