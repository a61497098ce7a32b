#!/usr/bin/env bash
# test_train_oracle.sh ANEC SOURCE_DIR [PYTHON] — one step of anec's generated
# trainer against the PyTorch oracle (tests/oracle/torch_step.py, float64):
# a GQA Llama (dim 64, hidden 160, 2 layers, 4 heads over 2 kv heads, vocab
# 256, seq 32; samples/stories260k.anet with -D) initialised from a random
# llama2.c file, 4 sequences read in order, clipping at 0.05 (it acts) and
# one AdamW step; weight gradients on the ANE and, built with --dw=cpu, as
# BLAS on the CPU, in the background (worker thread) while the next kernels
# run. The trainer's --dump-grads gives its loss and unclipped mean
# gradients, --export its weights after the step. Tolerances, per
# tensor, against the oracle (measured when written: fp32 6e-6 of the RMS,
# fp16 2.7e-2 of the RMS and 0.3% of the updates off):
#   fp32 (2 micro-batches of 2, accumulated): loss relative 1e-6; gradients
#     max abs error <= 1e-4 x the oracle gradient's RMS; new weights within
#     0.02 lr (AdamW's first step is lr g/(|g| + eps): near-zero gradients
#     amplify the last bits);
#   fp16 (1 micro-batch of 4, loss scale 1024): loss relative 1e-3;
#     gradients <= 0.1 x RMS; 99% of the new weights within 0.1 lr (fp16
#     noise flips the sign of a few near-zero gradients, moving those by 2 lr).
# Exits 77 (skipped) when PYTHON cannot import torch and numpy, unless
# ANEC_REQUIRE_ORACLE=1 (CI), when that is a failure.
set -euo pipefail
anec=$1 src=$2 py=${3:-/usr/bin/python3}
oracle=$src/tests/oracle/torch_step.py
if ! "$py" -c 'import torch, numpy' 2>/dev/null; then
  [ "${ANEC_REQUIRE_ORACLE:-0}" = 1 ] && { echo "FAIL: $py cannot import torch and numpy"; exit 1; }
  echo "SKIP: $py cannot import torch and numpy (Debian: apt-get install python3-torch python3-numpy)"
  exit 77
fi
t=$(mktemp -d "${TMPDIR:-/tmp}/anec-train-oracle.XXXXXX")
trap 'rm -rf "$t"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

S=32 N=4 LR=1e-2 CLIP=0.05
shape=(-D dim=64 -D hidden=160 -D layers=2 -D heads=4 -D kv_heads=2 -D vocab=256 -D seq=$S)
"$py" "$oracle" --write-random-model "$t/m.bin" --dim 64 --hidden 160 --layers 2 --heads 4 \
  --kv-heads 2 --vocab 256 --seq $S --seed 3 --std 0.1
"$py" - "$t/tok.bin" $((N * S + 1)) <<'EOF'
import sys, numpy as np
rng = np.random.default_rng(5)
rng.integers(0, 256, int(sys.argv[2])).astype("<u2").tofile(sys.argv[1])
EOF
"$py" "$oracle" --model "$t/m.bin" --tokens "$t/tok.bin" --seq $S --batch $N \
  --grad-clip $CLIP --lr $LR --out "$t/ref"

"$anec" inspect --train --dw=cpu "$src/samples/stories260k.anet" "${shape[@]}" >"$t/inspect" ||
  fail "anec inspect --dw=cpu"
grep -q '^  \[--dw=cpu\] weight gradients as BLAS on the CPU' "$t/inspect" ||
  fail "anec inspect --train --dw=cpu lists no weight gradient on the CPU"
step=(--data "$t/tok.bin" --data-order sequential --steps 1 --warmup 0 --lr $LR --min-lr $LR
      --grad-clip $CLIP --init "$t/m.bin" -q)
for dw in ane cpu; do
  "$anec" build --dw=$dw "$src/samples/stories260k.anet" "${shape[@]}" -o "$t/tr-$dw" ||
    fail "anec build --dw=$dw"
  # --dw=cpu: the weight gradients run on the worker thread, joined before what reads them
  bg=$(grep -c 'rt_worker_submit' "$t/tr-$dw.d/step.c" || true)
  if [ $dw = cpu ] && { [ "$bg" -eq 0 ] || ! grep -q '^  join(m); // the background' "$t/tr-$dw.d/step.c"; }; then
    fail "--dw=cpu: step.c runs no weight gradient in the background"
  elif [ $dw = ane ] && [ "$bg" -ne 0 ]; then
    fail "--dw=ane: step.c runs ops in the background"
  fi
  "$t/tr-$dw" "${step[@]}" --precision fp32 --batch 2 --accum 2 --dump-grads "$t/$dw-fp32" \
    --export "$t/$dw-fp32.bin" >/dev/null || fail "fp32 step, --dw=$dw"
  "$t/tr-$dw" "${step[@]}" --precision fp16 --batch 4 --loss-scale 1024 \
    --dump-grads "$t/$dw-fp16" --export "$t/$dw-fp16.bin" >/dev/null || fail "fp16 step, --dw=$dw"
done

"$py" - "$t" "$src/tests/oracle" $LR <<'EOF'
import sys, numpy as np
t, odir, lr = sys.argv[1], sys.argv[2], float(sys.argv[3])
sys.path.insert(0, odir)
import torch_step as ts
ts.need_torch()
c, arrays = ts.read_checkpoint(f"{t}/m.bin")
names = ts.param_names(c)
ok = True
runs = [(dw + "-" + prec, *tol) for dw in ("ane", "cpu")
        for prec, *tol in (("fp32", 1e-6, 1e-4, 0.02, 1.0), ("fp16", 1e-3, 0.1, 0.1, 0.99))]
for prec, loss_tol, grad_tol, new_tol, new_frac in runs:
    want = float(np.load(f"{t}/ref/loss.npy"))
    got = float(np.load(f"{t}/{prec}/loss.npy"))
    rel = abs(got - want) / abs(want)
    print(f"{prec}: loss {got:.7f}, oracle {want:.7f}, relative error {rel:.2g} (tolerance {loss_tol})")
    ok &= rel <= loss_tol
    worst, at = 0.0, ""
    for n in names:
        r, g = np.load(f"{t}/ref/grad.{n}.npy"), np.load(f"{t}/{prec}/grad.{n}.npy")
        assert g.shape == r.shape, (n, g.shape, r.shape)
        e = np.abs(g - r).max() / np.sqrt((r * r).mean())
        if e > worst:
            worst, at = e, n
    print(f"{prec}: gradients, max abs error / RMS {worst:.3g} (grad.{at}; tolerance {grad_tol})")
    ok &= worst <= grad_tol
    c2, a2 = ts.read_checkpoint(f"{t}/{prec}.bin")
    P = ts.make_params(c2, a2)
    worst, frac = 0.0, 1.0
    for n in names:
        d = np.abs(P[n].detach().numpy() - np.load(f"{t}/ref/new.{n}.npy")) / lr
        worst, frac = max(worst, d.max()), min(frac, float((d <= new_tol).mean()))
    print(f"{prec}: new weights, max error {worst:.3g} lr; {100 * frac:.2f}% within {new_tol} lr "
          f"(tolerance {100 * new_frac:g}%)")
    ok &= frac >= new_frac
sys.exit(0 if ok else "FAIL: anec's step differs from the oracle's beyond the tolerances")
EOF
echo "PASS"
