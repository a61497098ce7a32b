#!/usr/bin/env python3
"""torch_step.py - an independent PyTorch oracle for one training step of a
llama2.c-format Llama model, in float64 throughout.

Step mode (see tests/oracle/README.md):
  torch_step.py --model CKPT.bin --tokens TOKENS.u16 --seq S [--batch B]
                --out DIR [--logits-out LOGITS.npy] [--grad-clip C]
                [--lr LR] [--beta1 B1] [--beta2 B2] [--eps EPS] [--weight-decay WD]

  Micro-batch i (0 <= i < B) has inputs t[i*S : i*S+S] and targets
  t[i*S+1 : i*S+S+1] of the token file t (raw little-endian uint16 ids, at
  least B*S+1 of them; more are ignored). The loss is the mean over all B*S
  positions of the cross-entropy over the whole vocabulary; the gradients are
  the gradients of that mean. Then optional global-norm clipping and one AdamW
  step (step 1, moments starting at zero).

Random-model mode:
  torch_step.py --write-random-model OUT.bin [--dim 64 --hidden 160 --layers 2
                --heads 4 --kv-heads 2 --vocab 256 --seq 32 --seed 0 --std 0.1
                --unshared]

The forward is llama2.c's run.c written for a whole sequence: RMSNorm (eps
1e-5), RoPE on interleaved pairs (2i, 2i+1) at angle pos * 10000^(-2i/hs),
causal grouped-query attention (query head h reads kv head h / (heads /
kv_heads)) scaled by 1/sqrt(hs), SwiGLU w2(silu(w1 x) * w3 x), residuals,
final RMSNorm and logits = x wcls^T (wcls = the token embedding when tied).
"""

import argparse
import math
import os
import struct
import sys

import numpy as np

torch = None  # imported by need_torch(): --write-random-model needs only NumPy
DT = None     # torch.float64
HEADER = struct.Struct("<7i")
RMS_EPS = 1e-5
ROPE_THETA = 10000.0


class OracleError(Exception):
    pass


def need_torch():
    """Imports torch (exit 77 when it cannot be, which tests take for a skip)
    and makes float64 the default dtype."""
    global torch, DT
    if torch is None:
        try:
            import torch as t
        except ImportError:
            sys.stderr.write("torch_step.py: cannot import torch "
                             "(Debian: apt-get install python3-torch)\n")
            sys.exit(77)
        torch, DT = t, t.float64
        torch.set_default_dtype(DT)
    return torch


#
# llama2.c v0 checkpoints
#

class Config:
    def __init__(self, dim, hidden, layers, heads, kv_heads, vocab, seq, shared):
        self.dim, self.hidden, self.layers = dim, hidden, layers
        self.heads, self.kv_heads, self.vocab, self.seq = heads, kv_heads, vocab, seq
        self.shared = shared

    @property
    def hs(self):
        return self.dim // self.heads

    @property
    def kv_dim(self):
        return self.hs * self.kv_heads

    def check(self, where):
        vals = dict(dim=self.dim, hidden_dim=self.hidden, n_layers=self.layers,
                    n_heads=self.heads, n_kv_heads=self.kv_heads, vocab_size=self.vocab,
                    seq_len=self.seq)
        for k, v in vals.items():
            if v <= 0:
                raise OracleError(f"{where}: {k} is {v} (must be positive)")
        if self.dim % self.heads:
            raise OracleError(f"{where}: dim {self.dim} is not divisible by n_heads {self.heads}")
        if self.hs % 2:
            raise OracleError(f"{where}: head size {self.hs} is odd (RoPE rotates pairs)")
        if self.kv_heads > self.heads or self.heads % self.kv_heads:
            raise OracleError(f"{where}: n_heads {self.heads} is not a multiple of "
                              f"n_kv_heads {self.kv_heads}")

    def header(self):
        return HEADER.pack(self.dim, self.hidden, self.layers, self.heads, self.kv_heads,
                           self.vocab if self.shared else -self.vocab, self.seq)

    def describe(self):
        return (f"dim {self.dim}, hidden {self.hidden}, {self.layers} layers, {self.heads} heads, "
                f"{self.kv_heads} kv heads, vocab {self.vocab}, seq {self.seq}, "
                + ("tied classifier" if self.shared else "untied classifier (wcls)"))


def layout(c):
    """The arrays of a v0 checkpoint in file order: (name, shape)."""
    D, H, L, V, KV = c.dim, c.hidden, c.layers, c.vocab, c.kv_dim
    arrays = [("tok_emb", (V, D)), ("rms_att", (L, D)), ("wq", (L, D, D)), ("wk", (L, KV, D)),
              ("wv", (L, KV, D)), ("wo", (L, D, D)), ("rms_ffn", (L, D)), ("w1", (L, H, D)),
              ("w2", (L, D, H)), ("w3", (L, H, D)), ("rms_final", (D,)),
              ("freq_cis_real", (c.seq, c.hs // 2)), ("freq_cis_imag", (c.seq, c.hs // 2))]
    if not c.shared:
        arrays.append(("wcls", (V, D)))
    return arrays


def read_checkpoint(path):
    """(Config, {array name: float32 numpy array}) of a llama2.c v0 file."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise OracleError(f"{path}: cannot open: {e.strerror}")
    if len(data) < HEADER.size:
        raise OracleError(f"{path}: truncated: a llama2.c checkpoint starts with a 28-byte "
                          f"header (7 int32), found {len(data)} bytes")
    d, h, l, nh, nkv, v, s = HEADER.unpack_from(data)
    c = Config(d, h, l, nh, nkv, abs(v), s, v > 0)
    c.check(f"{path}: bad llama2.c checkpoint header")
    arrays = layout(c)
    need = HEADER.size + 4 * sum(math.prod(shape) for _, shape in arrays)
    if len(data) != need:
        raise OracleError(f"{path}: {'truncated' if len(data) < need else 'trailing bytes'}: "
                          f"expected {need} bytes for {c.describe()}; found {len(data)}")
    out, off = {}, HEADER.size
    for name, shape in arrays:
        n = math.prod(shape)
        out[name] = np.frombuffer(data, dtype="<f4", count=n, offset=off).reshape(shape)
        off += 4 * n
    return c, out


def rope_tables(c):
    """llama2.c's freq_cis_real/imag: cos and sin of p * 10000^(-2i/hs), [seq, hs/2]."""
    i = np.arange(0, c.hs, 2, dtype=np.float32)[: c.hs // 2]
    freqs = 1.0 / (np.float32(ROPE_THETA) ** (i / np.float32(c.hs)))
    ang = np.outer(np.arange(c.seq, dtype=np.float32), freqs.astype(np.float32))
    return np.cos(ang).astype(np.float32), np.sin(ang).astype(np.float32)


def write_random_model(path, c, seed, std):
    """A v0 checkpoint with random weights: matrices normal(0, std), norm
    weights 1 + normal(0, 0.1); RoPE tables as llama2.c's export writes them."""
    c.check("--write-random-model")
    rng = np.random.default_rng(seed)
    re, im = rope_tables(c)
    parts = [c.header()]
    for name, shape in layout(c):
        if name == "freq_cis_real":
            a = re
        elif name == "freq_cis_imag":
            a = im
        elif name.startswith("rms"):
            a = 1.0 + 0.1 * rng.standard_normal(shape)
        else:
            a = std * rng.standard_normal(shape)
        parts.append(np.ascontiguousarray(a, dtype="<f4").tobytes())
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        for p in parts:
            f.write(p)
    os.replace(tmp, path)


#
# Parameters by anec's names (compiler/l2c_params.c: tok_emb, rms_final,
# wcls, and layers.N.wq for row N of the checkpoint's wq)
#

LAYER_ARRAYS = ("rms_att", "wq", "wk", "wv", "wo", "rms_ffn", "w1", "w2", "w3")


def param_names(c):
    names = ["tok_emb"]
    for l in range(c.layers):
        names += [f"layers.{l}.{a}" for a in LAYER_ARRAYS]
    names.append("rms_final")
    if not c.shared:
        names.append("wcls")
    return names


def make_params(c, arrays):
    """{anec name: float64 leaf tensor requiring grad}."""
    need_torch()
    params = {}
    for name in param_names(c):
        if name.startswith("layers."):
            _, l, a = name.split(".")
            src = arrays[a][int(l)]
        else:
            src = arrays[name]
        params[name] = torch.tensor(np.array(src, dtype=np.float64), dtype=DT,
                                    requires_grad=True)
    return params


#
# The forward, for whole sequences
#

def rmsnorm(x, w):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + RMS_EPS) * w


def rope(x, cos, sin):
    """x [B, S, heads, hs]: pairs (2i, 2i+1) rotated by cos/sin [S, hs/2]."""
    B, S, nh, hs = x.shape
    p = x.reshape(B, S, nh, hs // 2, 2)
    a, b = p[..., 0], p[..., 1]
    cos, sin = cos[None, :, None, :], sin[None, :, None, :]
    return torch.stack((a * cos - b * sin, a * sin + b * cos), dim=-1).reshape(B, S, nh, hs)


def rope_angles(c, S):
    i = torch.arange(0, c.hs, 2, dtype=DT)
    freqs = ROPE_THETA ** (-i / c.hs)
    ang = torch.arange(S, dtype=DT)[:, None] * freqs[None, :]
    return torch.cos(ang), torch.sin(ang)


def forward(c, P, tokens):
    """Logits [B, S, vocab] for int64 tokens [B, S]."""
    B, S = tokens.shape
    hs, group = c.hs, c.heads // c.kv_heads
    cos, sin = rope_angles(c, S)
    causal = torch.ones(S, S, dtype=torch.bool).tril()
    x = P["tok_emb"][tokens]
    for l in range(c.layers):
        w = lambda a: P[f"layers.{l}.{a}"]
        h = rmsnorm(x, w("rms_att"))
        q = rope((h @ w("wq").T).reshape(B, S, c.heads, hs), cos, sin)
        k = rope((h @ w("wk").T).reshape(B, S, c.kv_heads, hs), cos, sin)
        v = (h @ w("wv").T).reshape(B, S, c.kv_heads, hs)
        k = k.repeat_interleave(group, dim=2)  # query head h reads kv head h // group
        v = v.repeat_interleave(group, dim=2)
        scores = torch.einsum("bshd,bthd->bhst", q, k) / math.sqrt(hs)
        scores = scores.masked_fill(~causal, float("-inf"))
        att = torch.einsum("bhst,bthd->bshd", torch.softmax(scores, dim=-1), v)
        x = x + att.reshape(B, S, c.dim) @ w("wo").T
        h = rmsnorm(x, w("rms_ffn"))
        x = x + (torch.nn.functional.silu(h @ w("w1").T) * (h @ w("w3").T)) @ w("w2").T
    x = rmsnorm(x, P["rms_final"])
    cls = P["tok_emb"] if c.shared else P["wcls"]
    return x @ cls.T


def batch_tokens(c, ids, S, B):
    """(inputs, targets) int64 [B, S] of micro-batches over ids."""
    if S < 1 or B < 1:
        raise OracleError(f"--seq and --batch must be positive (got {S}, {B})")
    if S > c.seq:
        raise OracleError(f"--seq {S} is over the model's seq_len {c.seq}")
    if len(ids) < B * S + 1:
        raise OracleError(f"the tokens hold {len(ids)} ids; --batch {B} --seq {S} needs "
                          f"{B * S + 1} (B*S inputs and one more target)")
    t = torch.tensor(np.asarray(ids[: B * S + 1], dtype=np.int64))
    if int(t.max()) >= c.vocab:
        pos = int(torch.nonzero(t >= c.vocab)[0, 0])
        raise OracleError(f"token {int(t[pos])} at index {pos} is out of range "
                          f"(vocab {c.vocab})")
    inputs = torch.stack([t[i * S: i * S + S] for i in range(B)])
    targets = torch.stack([t[i * S + 1: i * S + S + 1] for i in range(B)])
    return inputs, targets


def loss_and_grads(c, P, inputs, targets):
    """(loss, logits [B, S, V]) with .grad of every parameter set: the mean
    cross-entropy over all B*S positions and its gradients."""
    for p in P.values():
        p.grad = None
    logits = forward(c, P, inputs)
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, c.vocab), targets.reshape(-1),
                                             reduction="mean")
    loss.backward()
    return loss.detach(), logits.detach()


def adamw_step(w, g, lr, beta1, beta2, eps, wd, decay):
    """One AdamW update (step t = 1, m = v = 0 before), PyTorch's order:
    w *= 1 - lr*wd (only when decay); m = beta1 m + (1-beta1) g;
    v = beta2 v + (1-beta2) g^2; w -= lr * mhat / (sqrt(vhat) + eps) with
    mhat = m / (1 - beta1), vhat = v / (1 - beta2)."""
    t = 1
    m = (1 - beta1) * g
    v = (1 - beta2) * g * g
    mhat = m / (1 - beta1 ** t)
    vhat = v / (1 - beta2 ** t)
    if decay:
        w = w * (1 - lr * wd)
    return w - lr * mhat / (torch.sqrt(vhat) + eps)


def train_step(c, arrays, ids, S, B, a):
    """Everything the step writes: {file stem: float64 numpy array}."""
    P = make_params(c, arrays)
    inputs, targets = batch_tokens(c, ids, S, B)
    loss, logits = loss_and_grads(c, P, inputs, targets)
    grads = {n: p.grad.detach().clone() for n, p in P.items()}
    norm = torch.sqrt(sum((g * g).sum() for g in grads.values()))
    scale = torch.tensor(1.0, dtype=DT)
    if a.grad_clip > 0 and norm > a.grad_clip:
        scale = a.grad_clip / norm
    out = {"loss": loss, "grad_norm": norm, "grad_scale": scale, "logits": logits[0]}
    with torch.no_grad():
        for n, p in P.items():
            out[f"grad.{n}"] = grads[n]
            out[f"new.{n}"] = adamw_step(p.detach(), grads[n] * scale, a.lr, a.beta1, a.beta2,
                                         a.eps, a.weight_decay, p.dim() >= 2)
    return {k: v.numpy().astype(np.float64) for k, v in out.items()}


def read_tokens(path):
    try:
        data = np.fromfile(path, dtype="<u2")
    except OSError as e:
        raise OracleError(f"{path}: cannot read: {e.strerror}")
    if os.path.getsize(path) % 2:
        raise OracleError(f"{path}: odd size: expected raw little-endian uint16 ids")
    return data


#
# Command line
#

def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="torch_step.py",
        description="One llama2.c training step (forward, backward, clipping, AdamW) in "
                    "float64 PyTorch; or --write-random-model.")
    ap.add_argument("--model", help="llama2.c v0 checkpoint")
    ap.add_argument("--tokens", help="raw little-endian uint16 token ids")
    ap.add_argument("--seq", type=int, help="positions per micro-batch (with --write-random-model: the model's seq_len, "
                         "default 32)")
    ap.add_argument("--batch", type=int, default=1, help="micro-batches (default 1)")
    ap.add_argument("--out", help="directory for the .npy outputs (created)")
    ap.add_argument("--logits-out", help="the first micro-batch's logits [S, V] as .npy")
    ap.add_argument("--grad-clip", type=float, default=0.0,
                    help="global L2 norm limit of the gradients (0: off, the default)")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--beta1", type=float, default=0.9)
    ap.add_argument("--beta2", type=float, default=0.95)
    ap.add_argument("--eps", type=float, default=1e-8)
    ap.add_argument("--weight-decay", type=float, default=0.1,
                    help="decoupled, on matrices only (rank >= 2)")
    g = ap.add_argument_group("random model")
    g.add_argument("--write-random-model", metavar="OUT.bin")
    g.add_argument("--dim", type=int, default=64)
    g.add_argument("--hidden", type=int, default=160)
    g.add_argument("--layers", type=int, default=2)
    g.add_argument("--heads", type=int, default=4)
    g.add_argument("--kv-heads", type=int, default=2)
    g.add_argument("--vocab", type=int, default=256)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--std", type=float, default=0.1, help="std of the random matrices")
    g.add_argument("--unshared", action="store_true", help="an untied classifier wcls")
    a = ap.parse_args(argv)
    if a.write_random_model:
        return a
    missing = [o for o, v in (("--model", a.model), ("--tokens", a.tokens), ("--seq", a.seq))
               if v is None]
    if a.out is None and a.logits_out is None:
        missing.append("--out (or --logits-out)")
    if missing:
        ap.error("missing " + ", ".join(missing))
    return a


def save(path, a):
    np.save(path, np.asarray(a, dtype=np.float64))


def main(argv):
    a = parse_args(argv)
    if a.write_random_model:
        seq = a.seq if a.seq is not None else 32  # the model's seq_len here
        c = Config(a.dim, a.hidden, a.layers, a.heads, a.kv_heads, a.vocab, seq, not a.unshared)
        write_random_model(a.write_random_model, c, a.seed, a.std)
        return 0
    c, arrays = read_checkpoint(a.model)
    need_torch()
    res = train_step(c, arrays, read_tokens(a.tokens), a.seq, a.batch, a)
    try:
        if a.out:
            os.makedirs(a.out, exist_ok=True)
            for k, v in res.items():
                if k != "logits":
                    save(os.path.join(a.out, k + ".npy"), v)
        if a.logits_out:
            save(a.logits_out, res["logits"])
    except OSError as e:
        raise OracleError(f"{e.filename}: cannot write: {e.strerror}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except OracleError as e:
        sys.stderr.write(f"torch_step.py: {e}\n")
        sys.exit(1)
