#!/usr/bin/env bash
# test_oracle.sh [PYTHON [REF_LOGITS [SOURCE_DIR]]] — the PyTorch oracle of one
# training step (tests/oracle/torch_step.py) checked three ways:
#  (a) its forward on stories260K (GQA) against tests/ref_llama2c.c's fp32
#      llama2.c forward (the ref_logits helper) at 256 positions: max abs
#      logit error <= 5e-4 (logits reach ~19; the fp32 reference's own rounding
#      is ~1e-4 here, and a float32 run of the oracle is as far from float64;
#      RMSNorm eps 1e-6 or RoPE theta 10001 instead would be off by ~2e-2),
#      its loss against a NumPy cross-entropy; the same on the tiny models
#      of (b), tied and untied (max abs error <= 1e-5);
#  (b) its gradients (from the CLI's grad.*.npy) against central finite
#      differences of its own float64 loss on two tiny random GQA models, tied
#      and untied, two micro-batches: relative error < 1e-6; the loss of two
#      micro-batches against the mean of the per-micro-batch losses;
#  (c) its AdamW step (new.*.npy) against the update recomputed in NumPy from
#      the checkpoint, the gradients and the clipping factor (rel 1e-12).
# Exits 77 (skipped) only when PYTHON cannot import torch and numpy, unless
# ANEC_REQUIRE_ORACLE=1 (CI), when that is a failure.
set -euo pipefail
py=${1:-/usr/bin/python3}
ref=${2:-build/tests/ref_logits}
src=${3:-$(cd "$(dirname "$0")/.." && pwd)}
oracle=$src/tests/oracle/torch_step.py
model=$src/tests/data/llama2c/stories260K_plctlab.bin

if ! "$py" -c 'import torch, numpy' 2>/dev/null; then
  [ "${ANEC_REQUIRE_ORACLE:-0}" = 1 ] && { echo "FAIL: $py cannot import torch and numpy"; exit 1; }
  echo "SKIP: $py cannot import torch and numpy (Debian: apt-get install python3-torch python3-numpy)"
  exit 77
fi
[ -x "$ref" ] || { echo "FAIL: no ref_logits helper at $ref"; exit 1; }
[ -f "$model" ] || { echo "FAIL: $model not found (stories260K, tests/data/llama2c)"; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# (a) the forward against llama2.c's, S = 256 positions of stories260K.
S=256
"$py" - "$work/ids.u16" $((S + 1)) <<'EOF'
import sys, numpy as np
n = int(sys.argv[2])
ids = [1] + [(i * 7919 + 13) % 512 for i in range(1, n)]  # BOS, then fixed ids < vocab 512
np.asarray(ids, dtype="<u2").tofile(sys.argv[1])
EOF
"$ref" "$model" "$work/ids.u16" "$S" "$work/ref.npy"
"$py" "$oracle" --model "$model" --tokens "$work/ids.u16" --seq "$S" --batch 1 \
  --out "$work/a" --logits-out "$work/a/logits.npy"
"$py" - "$work" <<'EOF'
import sys, numpy as np
w = sys.argv[1]
ref = np.load(f"{w}/ref.npy").astype(np.float64)
got = np.load(f"{w}/a/logits.npy")
assert got.shape == ref.shape, (got.shape, ref.shape)
err = np.abs(got - ref)
p, v = np.unravel_index(np.argmax(err), err.shape)
print(f"(a) forward vs ref_llama2c.c: {got.shape[0]} positions x {got.shape[1]} logits, "
      f"max abs error {err.max():.3g} (at position {p}, id {v}; logits up to {np.abs(ref).max():.3g})")
if not err.max() <= 5e-4:
    sys.exit("FAIL: the oracle's logits differ from llama2.c's by more than 5e-4")
ids = np.fromfile(f"{w}/ids.u16", dtype="<u2").astype(np.int64)
m = got.max(1, keepdims=True)
lse = (m + np.log(np.exp(got - m).sum(1, keepdims=True)))[:, 0]
ce = np.mean(lse - got[np.arange(len(got)), ids[1:len(got) + 1]])
loss = float(np.load(f"{w}/a/loss.npy"))
print(f"(a) loss {loss:.12g}, NumPy cross-entropy of the logits {ce:.12g}, "
      f"difference {abs(loss - ce):.3g}")
if not abs(loss - ce) <= 1e-12 * abs(ce):
    sys.exit("FAIL: loss.npy is not the mean cross-entropy of the logits")
EOF

# (b), (c) two tiny GQA models (4 query heads over 2 kv heads), tied and untied:
# two micro-batches of 8 positions, clipping at 0.05 (below the norm: it acts).
B=2 S=8 CLIP=0.05 LR=1e-2 B1=0.9 B2=0.95 EPS=1e-8 WD=0.1
"$py" - "$work/tiny.u16" $((B * S + 1)) <<'EOF'
import sys, numpy as np
n = int(sys.argv[2])
np.asarray([(i * 37 + 5) % 256 for i in range(n)], dtype="<u2").tofile(sys.argv[1])
EOF
for kind in tied untied; do
  extra=()
  [ "$kind" = untied ] && extra=(--unshared)
  "$py" "$oracle" --write-random-model "$work/$kind.bin" --dim 32 --hidden 48 --layers 2 \
    --heads 4 --kv-heads 2 --vocab 256 --seq 16 --seed 7 "${extra[@]}"
  "$py" "$oracle" --model "$work/$kind.bin" --tokens "$work/tiny.u16" --seq $S --batch $B \
    --grad-clip $CLIP --lr $LR --beta1 $B1 --beta2 $B2 --eps $EPS --weight-decay $WD \
    --out "$work/$kind" --logits-out "$work/$kind.logits.npy"
  "$ref" "$work/$kind.bin" "$work/tiny.u16" $S "$work/$kind.ref.npy"
done
"$py" - "$work" "$src/tests/oracle" $B $S $CLIP $LR $B1 $B2 $EPS $WD <<'EOF'
import sys, numpy as np
w, odir = sys.argv[1], sys.argv[2]
B, S = int(sys.argv[3]), int(sys.argv[4])
clip, lr, b1, b2, eps, wd = map(float, sys.argv[5:11])
sys.path.insert(0, odir)
import torch_step as ts
torch = ts.need_torch()
ids = np.fromfile(f"{w}/tiny.u16", dtype="<u2").astype(np.int64)
worst_fd = worst_adam = 0.0
for kind in ("tied", "untied"):
    c, arrays = ts.read_checkpoint(f"{w}/{kind}.bin")
    out = f"{w}/{kind}"
    P = ts.make_params(c, arrays)
    names = ts.param_names(c)
    ref = np.load(f"{w}/{kind}.ref.npy").astype(np.float64)
    err = np.abs(np.load(f"{w}/{kind}.logits.npy") - ref).max()
    print(f"({kind}) forward vs ref_llama2c.c: max abs error {err:.3g} "
          f"(logits up to {np.abs(ref).max():.3g})")
    if not err <= 1e-5:
        sys.exit(f"FAIL ({kind}): the oracle's logits differ from llama2.c's by {err:.3g}")
    assert ("wcls" in names) == (kind == "untied")
    grads = {n: np.load(f"{out}/grad.{n}.npy") for n in names}

    def loss_of(P, micro=None):
        with torch.no_grad():
            rows = range(B) if micro is None else [micro]
            x = torch.tensor(np.stack([ids[i * S: i * S + S] for i in rows]))
            y = torch.tensor(np.stack([ids[i * S + 1: i * S + S + 1] for i in rows]))
            logits = ts.forward(c, P, x)
            return float(torch.nn.functional.cross_entropy(logits.reshape(-1, c.vocab),
                                                           y.reshape(-1)))

    # The loss of B micro-batches is the mean of theirs (equal sizes).
    loss = float(np.load(f"{out}/loss.npy"))
    mean = sum(loss_of(P, i) for i in range(B)) / B
    if not abs(loss - mean) <= 1e-13 * abs(mean):
        sys.exit(f"FAIL ({kind}): loss {loss!r}, mean of the micro-batches' {mean!r}")

    # (b) central differences at the largest gradient entry of every parameter
    # and at one more entry (seeded) whose gradient is at least a tenth of it.
    rng = np.random.default_rng(11)
    h = 1e-5
    for n in names:
        g = grads[n]
        big = np.flatnonzero(np.abs(g.ravel()) >= 0.1 * np.abs(g).max())
        for flat in (int(np.argmax(np.abs(g))), int(rng.choice(big))):
            idx = np.unravel_index(flat, g.shape)
            p = P[n]
            with torch.no_grad():
                old = float(p[idx])
                p[idx] = old + h
                up = loss_of(P)
                p[idx] = old - h
                down = loss_of(P)
                p[idx] = old
            fd = (up - down) / (2 * h)
            rel = abs(fd - g[idx]) / max(abs(fd), abs(g[idx]))
            worst_fd = max(worst_fd, rel)
            if not rel < 1e-6:
                sys.exit(f"FAIL ({kind}): grad.{n}{list(idx)} = {g[idx]!r}, "
                         f"finite difference {fd!r}, relative error {rel:.3g}")

    # (c) clipping and AdamW, recomputed from the checkpoint's weights.
    norm = np.sqrt(sum((g * g).sum() for g in grads.values()))
    got_norm = float(np.load(f"{out}/grad_norm.npy"))
    if not abs(got_norm - norm) <= 1e-12 * norm:
        sys.exit(f"FAIL ({kind}): grad_norm {got_norm!r}, recomputed {norm!r}")
    if not norm > clip:
        sys.exit(f"FAIL ({kind}): the gradient norm {norm} is under the clip {clip}: "
                 "the test does not exercise clipping")
    scale = clip / norm
    for n in names:
        w0 = P[n].detach().numpy()
        g = grads[n] * scale
        m, v = (1 - b1) * g, (1 - b2) * g * g
        mhat, vhat = m / (1 - b1), v / (1 - b2)
        decay = w0.ndim >= 2  # matrices only: tok_emb, wq..w3, wcls
        want = (w0 * (1 - lr * wd) if decay else w0) - lr * mhat / (np.sqrt(vhat) + eps)
        got = np.load(f"{out}/new.{n}.npy")
        assert got.shape == w0.shape, (n, got.shape, w0.shape)
        rel = np.abs(got - want) / np.maximum(np.abs(want), 1e-30)
        worst_adam = max(worst_adam, float(rel.max()))
        if not rel.max() <= 1e-12:
            i = np.unravel_index(np.argmax(rel), rel.shape)
            sys.exit(f"FAIL ({kind}): new.{n}{list(i)} = {got[i]!r}, recomputed {want[i]!r}")
    print(f"({kind}) loss {loss:.6f}, grad norm {norm:.4g} clipped to {clip}; "
          f"{len(names)} parameters")
print(f"(b) gradients vs central differences (h = 1e-5): max relative error {worst_fd:.3g}")
print(f"(c) AdamW step vs NumPy: max relative error {worst_adam:.3g}")
EOF
echo "PASS"
