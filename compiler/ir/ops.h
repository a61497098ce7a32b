// ops.h — the op table: one row per graph-IR op, the only list of ops.
// X(NAME, .anet name, arity (-1: one or more), MIL op it lowers to, inference,
//   gradient rule (passes/grad.c; NULL: none))
// Attributes used (fields of Node) are noted per row. Names starting with '%'
// are internal ops (autodiff's), not callable from .anet.

// sources: no inputs; shape set at creation
X(INPUT,         "input",         0, NULL,           infer_source, NULL)  // name, dtype
X(PARAM,         "param",         0, "const",        infer_source, NULL)  // name, init, init_std
X(CONST,         "const",         0, "const",        infer_source, NULL)  // value (rank 0)
X(CAUSAL_MASK,   "causal_mask",   0, "const",        infer_source, NULL)  // [n, n]: 0 on/below diagonal, -inf above
X(ROPE_COS,      "rope_cos",      0, "const",        infer_source, NULL)  // [seq, hd/2]: cos(p * value^(-2i/hd))
X(ROPE_SIN,      "rope_sin",      0, "const",        infer_source, NULL)  // [seq, hd/2]: sin(p * value^(-2i/hd))

// elementwise, NumPy broadcasting
X(ADD,           "add",           2, "add",          infer_binary, grad_add)
X(SUB,           "sub",           2, "sub",          infer_binary, grad_sub)
X(MUL,           "mul",           2, "mul",          infer_binary, grad_mul)
X(DIV,           "div",           2, "real_div",     infer_binary, grad_div)
X(NEG,           "neg",           1, "mul",          infer_unary, grad_neg)   // lowered as mul by -1
X(EXP,           "exp",           1, "exp",          infer_unary, grad_exp)
X(LOG,           "log",           1, "log",          infer_unary, grad_log)
X(SQRT,          "sqrt",          1, "sqrt",         infer_unary, grad_sqrt)
X(RSQRT,         "rsqrt",         1, "rsqrt",        infer_unary, grad_rsqrt)
X(POW,           "pow",           1, "pow",          infer_unary, grad_pow)   // value: exponent
X(SIGMOID,       "sigmoid",       1, "sigmoid",      infer_unary, grad_sigmoid)
X(SILU,          "silu",          1, "silu",         infer_unary, grad_silu)
X(TANH,          "tanh",          1, "tanh",         infer_unary, grad_tanh)
X(RELU,          "relu",          1, "relu",         infer_unary, NULL)
X(GELU,          "gelu",          1, "gelu",         infer_unary, grad_gelu)   // gelu

// reductions (keep the reduced axis as 1; AXIS_ALL gives rank 0)
X(SUM,           "sum",           1, "reduce_sum",   infer_reduce, grad_sum)  // axis
X(MEAN,          "mean",          1, "reduce_mean",  infer_reduce, grad_mean)  // axis
X(MAX,           "max",           1, "reduce_max",   infer_reduce, NULL)  // axis
X(SOFTMAX,       "softmax",       1, "softmax",      infer_softmax, grad_softmax) // axis

// contraction and data movement
X(MATMUL,        "matmul",        2, "matmul",       infer_matmul, grad_matmul)  // transpose_a, transpose_b
X(RESHAPE,       "reshape",       1, "reshape",      infer_reshape, grad_reshape) // target
X(TRANSPOSE,     "transpose",     1, "transpose",    infer_transpose, grad_transpose) // perm
X(SLICE,         "slice",         1, "slice_by_index", infer_slice, grad_slice) // axis, begin, end
X(CONCAT,        "concat",       -1, "concat",       infer_concat, grad_concat)  // axis
X(EMBED,         "embed",         2, "gather",       infer_embed, grad_embed)   // (table [V, D], ids [S] i32) -> [S, D]

// loss
X(CROSS_ENTROPY, "cross_entropy", 2, NULL,           infer_cross_entropy, grad_cross_entropy) // (logits [S, V], targets [S] i32) -> [] mean

// internal: made by autodiff (passes/autodiff.c), evaluated by ireval
X(BROADCAST,     "%broadcast",    1, "add",          infer_broadcast, NULL) // target: x broadcast to it (lowered as x + zeros)
X(EMBED_GRAD,    "%embed_grad",   2, NULL,           infer_embed_grad, NULL) // (ids [S], g [S, D]), target [V, D]: rows summed
X(CE_GRAD,       "%cross_entropy_grad", 2, NULL,     infer_ce_grad, NULL) // (logits [S, V], targets [S]) -> (softmax - onehot) / S
