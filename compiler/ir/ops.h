// ops.h — the op table: one row per graph-IR op, the only list of ops.
// X(NAME, .anet name, arity (-1: one or more), MIL op it lowers to, inference,
//   gradient rule (passes/grad.c; NULL: none), attributes, .anet signature)
// attributes: the AttrKind bits (ir.h) of the Node fields the op uses, which
//   the IR dump prints (irdump.c) and CSE compares (passes/cse.c); 0: none.
// .anet signature: the argument names of a call in positional order, the
//   optional ones with `=default` ("x, y, transpose_a=0"); the inputs come
//   first (one list of them for arity -1), then the attribute arguments, which
//   dsl/elab.c converts by name. NULL: not called by name.
// Names starting with '%' are internal ops (autodiff's), not callable from .anet.

// sources: no inputs; shape set at creation
X(INPUT,         "input",         0, NULL,           infer_source, NULL, ATTR_NAME, NULL)
X(PARAM,         "param",         0, "const",        infer_source, NULL, ATTR_NAME | ATTR_INIT, NULL)
X(CONST,         "const",         0, "const",        infer_source, NULL, ATTR_VALUE, NULL)  // rank 0
X(CAUSAL_MASK,   "causal_mask",   0, "const",        infer_source, NULL, 0, "n")  // [n, n]: 0 on/below diagonal, -inf above
X(ROPE_COS,      "rope_cos",      0, "const",        infer_source, NULL, ATTR_THETA, "seq, hd, theta")  // [seq, hd/2]: cos(p * theta^(-2i/hd))
X(ROPE_SIN,      "rope_sin",      0, "const",        infer_source, NULL, ATTR_THETA, "seq, hd, theta")  // [seq, hd/2]: sin(p * theta^(-2i/hd))

// elementwise, NumPy broadcasting
X(ADD,           "add",           2, "add",          infer_binary, grad_add, 0, "x, y")
X(SUB,           "sub",           2, "sub",          infer_binary, grad_sub, 0, "x, y")
X(MUL,           "mul",           2, "mul",          infer_binary, grad_mul, 0, "x, y")
X(DIV,           "div",           2, "real_div",     infer_binary, grad_div, 0, "x, y")
X(NEG,           "neg",           1, "mul",          infer_unary, grad_neg, 0, "x")   // lowered as mul by -1
X(EXP,           "exp",           1, "exp",          infer_unary, grad_exp, 0, "x")
X(LOG,           "log",           1, "log",          infer_unary, grad_log, 0, "x")
X(SQRT,          "sqrt",          1, "sqrt",         infer_unary, grad_sqrt, 0, "x")
X(RSQRT,         "rsqrt",         1, "rsqrt",        infer_unary, grad_rsqrt, 0, "x")
X(POW,           "pow",           1, "pow",          infer_unary, grad_pow, ATTR_EXPONENT, "x, exponent")
X(SIGMOID,       "sigmoid",       1, "sigmoid",      infer_unary, grad_sigmoid, 0, "x")
X(SILU,          "silu",          1, "silu",         infer_unary, grad_silu, 0, "x")
X(TANH,          "tanh",          1, "tanh",         infer_unary, grad_tanh, 0, "x")
X(RELU,          "relu",          1, "relu",         infer_unary, NULL, 0, "x")
X(GELU,          "gelu",          1, "gelu",         infer_unary, grad_gelu, ATTR_GELU, "x, mode=exact")

// reductions (keep the reduced axis as 1; AXIS_ALL gives rank 0)
X(SUM,           "sum",           1, "reduce_sum",   infer_reduce, grad_sum, ATTR_AXIS, "x, axis=all")
X(MEAN,          "mean",          1, "reduce_mean",  infer_reduce, grad_mean, ATTR_AXIS, "x, axis=all")
X(MAX,           "max",           1, "reduce_max",   infer_reduce, NULL, ATTR_AXIS, "x, axis=all")  // max(a, b) of numbers too
X(SOFTMAX,       "softmax",       1, "softmax",      infer_softmax, grad_softmax, ATTR_AXIS, "x, axis=-1")

// contraction and data movement
X(MATMUL,        "matmul",        2, "matmul",       infer_matmul, grad_matmul, ATTR_TRANSPOSE, "x, y, transpose_a=0, transpose_b=0")
X(RESHAPE,       "reshape",       1, "reshape",      infer_reshape, grad_reshape, ATTR_TARGET, "x, shape")
X(TRANSPOSE,     "transpose",     1, "transpose",    infer_transpose, grad_transpose, ATTR_PERM, "x, perm")
X(SLICE,         "slice",         1, "slice_by_index", infer_slice, grad_slice, ATTR_AXIS | ATTR_RANGE, "x, axis, begin, end")
X(CONCAT,        "concat",       -1, "concat",       infer_concat, grad_concat, ATTR_AXIS, "values, axis")
X(EMBED,         "embed",         2, "gather",       infer_embed, grad_embed, 0, "table, ids")  // table [V, D], ids [S] i32 -> [S, D]

// loss: logits [S, V], targets [S] i32 -> [] mean
X(CROSS_ENTROPY, "cross_entropy", 2, NULL,           infer_cross_entropy, grad_cross_entropy, 0, "logits, targets")

// internal: made by autodiff (passes/autodiff.c), evaluated by ireval. A target
// here is the result shape, which the dump shows: not among the attributes.
X(BROADCAST,     "%broadcast",    1, "add",          infer_broadcast, NULL, 0, NULL)  // x to target (lowered as x + zeros)
X(EMBED_GRAD,    "%embed_grad",   2, NULL,           infer_embed_grad, NULL, 0, NULL)  // (ids [S], g [S, D]), target [V, D]: rows summed
X(CE_GRAD,       "%cross_entropy_grad", 2, NULL,     infer_ce_grad, NULL, 0, NULL)  // (logits [S, V], targets [S]) -> (softmax - onehot) / S
