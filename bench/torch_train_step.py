#!/usr/bin/env python3
"""torch_train_step.py - time one training step of a llama2.c-architecture
model in float32 PyTorch on the CPU: the reference bench/bench_train.sh
compares anec's generated trainer with.

Usage:
  torch_train_step.py [--model 15m|110m] [--dim D --hidden H --layers L --heads N
                      --vocab V] [--seq S] [--batch B] [--steps N] [--warmup N]
                      [--threads T] [--seed N]

The model is the one samples/stories15m.anet and samples/stories110m.anet
describe (and tests/oracle/torch_step.py computes in float64): token
embedding, per layer RMSNorm (eps 1e-5), RoPE on interleaved pairs, causal
multi-head attention, a residual, RMSNorm, SwiGLU w2(silu(w1 x) * w3 x), a
residual; final RMSNorm and a classifier tied to the embedding. Random
initialization (normal(0.02), the output projections normal(0.02 /
sqrt(2 layers)), norms ones) and random token ids.

A step is what anec's trainer does: forward, mean cross-entropy over all
B*S positions, backward, clipping the global gradient norm to 1.0, and one
AdamW update (lr 3e-4, betas 0.9/0.95, eps 1e-8, weight decay 0.1 on the
matrices only). --warmup steps run untimed, then --steps timed ones; the
last line is machine-readable: "ms_per_step MEDIAN".

torch's sgemm may run on its own threads (Debian's torch calls the system
BLAS, OpenBLAS with pthreads) next to torch's OpenMP threads; OpenMP's
default spin-waiting then competes with them for the cores, and
OMP_WAIT_POLICY=PASSIVE can be much faster (bench/README.md).

Exit status: 0 done, 2 usage error, 77 when torch cannot be imported.
"""

import argparse
import math
import os
import statistics
import sys
import time

MODELS = {  # name: (dim, hidden, layers, heads, vocab, seq)
    "15m": (288, 768, 6, 6, 32000, 256),
    "110m": (768, 2048, 12, 12, 32000, 256),
}
RMS_EPS = 1e-5
ROPE_THETA = 10000.0


def import_torch():
    try:
        import torch
    except ImportError as e:
        sys.stderr.write(f"torch_train_step.py: cannot import torch ({e}; "
                         "Debian: apt-get install python3-torch)\n")
        sys.exit(77)
    return torch


def cpu_count():
    """The CPUs this process may run on (the affinity mask), else os.cpu_count()."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def build(torch, dim, hidden, layers, heads, vocab, seq):
    """The model as a torch.nn.Module whose forward(tokens [B, S]) returns the logits."""
    nn, F = torch.nn, torch.nn.functional
    hs = dim // heads

    def normal(shape, std):
        return nn.Parameter(torch.randn(*shape) * std)

    def rmsnorm(x, w):
        return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + RMS_EPS) * w

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            out_std = 0.02 / math.sqrt(2 * layers)
            self.rms_att = nn.Parameter(torch.ones(dim))
            self.wq, self.wk, self.wv = (normal((dim, dim), 0.02) for _ in range(3))
            self.wo = normal((dim, dim), out_std)
            self.rms_ffn = nn.Parameter(torch.ones(dim))
            self.w1, self.w3 = normal((hidden, dim), 0.02), normal((hidden, dim), 0.02)
            self.w2 = normal((dim, hidden), out_std)

        def forward(self, x, cos, sin, mask):
            B, S, _ = x.shape
            h = rmsnorm(x, self.rms_att)
            # [B, S, dim] -> [B, heads, S, hs]
            q = rope(F.linear(h, self.wq).view(B, S, heads, hs), cos, sin).transpose(1, 2)
            k = rope(F.linear(h, self.wk).view(B, S, heads, hs), cos, sin).transpose(1, 2)
            v = F.linear(h, self.wv).view(B, S, heads, hs).transpose(1, 2)
            scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs)) + mask
            att = torch.softmax(scores, dim=-1) @ v
            x = x + F.linear(att.transpose(1, 2).reshape(B, S, dim), self.wo)
            h = rmsnorm(x, self.rms_ffn)
            return x + F.linear(F.silu(F.linear(h, self.w1)) * F.linear(h, self.w3), self.w2)

    def rope(x, cos, sin):
        """x [B, S, heads, hs]: pairs (2i, 2i+1) rotated by cos/sin [S, 1, hs/2]."""
        p = x.unflatten(-1, (hs // 2, 2))
        a, b = p[..., 0], p[..., 1]
        return torch.stack((a * cos - b * sin, a * sin + b * cos), dim=-1).flatten(-2)

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok_emb = normal((vocab, dim), 0.02)
            self.layers = nn.ModuleList(Block() for _ in range(layers))
            self.rms_final = nn.Parameter(torch.ones(dim))
            freqs = ROPE_THETA ** (-torch.arange(0, hs, 2, dtype=torch.float32) / hs)
            ang = torch.arange(seq, dtype=torch.float32)[:, None] * freqs[None, :]
            self.register_buffer("cos", torch.cos(ang)[:, None, :])  # [seq, 1, hs/2]
            self.register_buffer("sin", torch.sin(ang)[:, None, :])
            self.register_buffer("mask", torch.full((seq, seq), float("-inf")).triu(1))

        def forward(self, tokens):
            S = tokens.shape[1]
            cos, sin, mask = self.cos[:S], self.sin[:S], self.mask[:S, :S]
            x = F.embedding(tokens, self.tok_emb)
            for layer in self.layers:
                x = layer(x, cos, sin, mask)
            return F.linear(rmsnorm(x, self.rms_final), self.tok_emb)  # tied classifier

    return Model()


def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="torch_train_step.py",
        description="Time a float32 PyTorch training step (forward, cross-entropy, backward, "
                    "grad clip, AdamW) of a llama2.c-architecture model; prints "
                    "'ms_per_step MEDIAN' last.")
    ap.add_argument("--model", choices=sorted(MODELS), default="15m",
                    help="stories15m or stories110m shapes (default 15m)")
    for name in ("dim", "hidden", "layers", "heads", "vocab"):
        ap.add_argument(f"--{name}", type=int, help=f"override the model's {name}")
    ap.add_argument("--seq", type=int, help="tokens a sequence (default the model's, 256)")
    ap.add_argument("--batch", type=int, default=1, help="sequences a step (default 1)")
    ap.add_argument("--steps", type=int, default=5, help="timed steps (default 5)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    ap.add_argument("--threads", type=int, default=cpu_count(),
                    help="torch.set_num_threads (default: the CPUs available, %(default)s)")
    ap.add_argument("--seed", type=int, default=1337)
    a = ap.parse_args(argv)
    dim, hidden, layers, heads, vocab, seq = MODELS[a.model]
    a.dim = a.dim or dim
    a.hidden = a.hidden or hidden
    a.layers = a.layers or layers
    a.heads = a.heads or heads
    a.vocab = a.vocab or vocab
    a.seq = a.seq or seq
    for name in ("dim", "hidden", "layers", "heads", "vocab", "seq", "batch", "steps",
                 "threads"):
        if getattr(a, name) < 1:
            ap.error(f"--{name} must be positive (got {getattr(a, name)})")
    if a.warmup < 0:
        ap.error(f"--warmup must not be negative (got {a.warmup})")
    if a.dim % a.heads or (a.dim // a.heads) % 2:
        ap.error(f"--dim {a.dim} / --heads {a.heads} must be an even head size")
    return a


def main(argv):
    a = parse_args(argv)
    torch = import_torch()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    F = torch.nn.functional

    model = build(torch, a.dim, a.hidden, a.layers, a.heads, a.vocab, a.seq)
    params = list(model.parameters())
    matrices = [p for p in params if p.dim() >= 2]
    vectors = [p for p in params if p.dim() < 2]
    adamw_args = dict(lr=3e-4, betas=(0.9, 0.95), eps=1e-8)
    try:  # the multi-tensor implementation where this torch has it (1.12+)
        opt = torch.optim.AdamW([{"params": matrices, "weight_decay": 0.1},
                                 {"params": vectors, "weight_decay": 0.0}],
                                foreach=True, **adamw_args)
        impl = "foreach"
    except TypeError:
        opt = torch.optim.AdamW([{"params": matrices, "weight_decay": 0.1},
                                 {"params": vectors, "weight_decay": 0.0}], **adamw_args)
        impl = "for-loop"
    ids = torch.randint(0, a.vocab, (a.batch, a.seq + 1))
    tokens, targets = ids[:, :-1].contiguous(), ids[:, 1:].contiguous()

    nparams = sum(p.numel() for p in params)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()} "
          f"(of {cpu_count()} CPUs), OPENBLAS_NUM_THREADS="
          f"{os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, OPENBLAS_CORETYPE="
          f"{os.environ.get('OPENBLAS_CORETYPE', 'unset')}, OMP_WAIT_POLICY="
          f"{os.environ.get('OMP_WAIT_POLICY', 'unset')}")
    print(f"model dim {a.dim}, hidden {a.hidden}, {a.layers} layers, {a.heads} heads, "
          f"vocab {a.vocab}, seq {a.seq}, batch {a.batch}: {nparams / 1e6:.2f}M params, "
          f"float32, AdamW {impl}")

    times = []
    for i in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        logits = model(tokens)
        loss = F.cross_entropy(logits.view(-1, a.vocab), targets.view(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        ms = (time.perf_counter() - t0) * 1e3
        timed = i >= a.warmup
        if timed:
            times.append(ms)
        print(f"step {i + 1:3d}  loss {loss.item():.4f}  {ms:9.1f} ms"
              + ("" if timed else "  (warm-up)"), flush=True)
    med = statistics.median(times)
    print(f"min {min(times):.1f} ms, mean {statistics.mean(times):.1f} ms, "
          f"max {max(times):.1f} ms over {len(times)} timed steps")
    print(f"ms_per_step {med:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
