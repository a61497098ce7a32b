#!/usr/bin/env bash
# kernel_check.sh ANEC — the catalog check is always on: anec compile,
# build, train and generate check every kernel they emit (its fp16 MIL, as
# the surfaces are packed) against the target's catalog before anything is
# written. A model no legal plan holds on m1 is an error (exit 1) naming the
# kernel and the rule, with a note located in the model's own .anet file;
# nothing is left at the output (an earlier artifact directory stays as it
# was). --no-check is the way out. Two models: a Llama whose FFN is 70,000
# wide (its forward kernel packs 70,000+ channels in one output, ANE-B05)
# and an FFN 17,000 wide whose inference passes but whose training step
# packs its saved 17,000-row activations into one surface of 68,272
# channels (ANE-B05).
set -euo pipefail
anec=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
t=$(mktemp -d "${TMPDIR:-/tmp}/anec-kernel-check.XXXXXX")
trap 'rm -rf "$t"' EXIT
fail() { printf 'kernel_check: %s\n' "$*" >&2; exit 1; }
cd "$t"
export XDG_CACHE_HOME=$t/cache

cat >wide.anet <<'EOF'
// A Llama whose FFN is 70,000 wide: no ANE kernel holds its hidden layer.
model wide {
  dim = 16
  hidden = 70000
  layers = 1
  heads = 2
  kv_heads = 2
  vocab = 32
  seq = 16
}

input tokens: i32[seq]
input targets: i32[seq]

param tok_emb: [vocab, dim] = normal(0.02)
param rms_final: [dim] = ones

layer block(x) {
  param rms_att: [dim] = ones
  param wq: [dim, dim] = normal(0.02)
  param wk: [dim, dim] = normal(0.02)
  param wv: [dim, dim] = normal(0.02)
  param wo: [dim, dim] = normal(0.02)
  param rms_ffn: [dim] = ones
  param w1: [hidden, dim] = normal(0.02)
  param w2: [dim, hidden] = normal(0.02)
  param w3: [hidden, dim] = normal(0.02)

  h = rmsnorm(x, rms_att)
  q = rope(linear(h, wq), heads)
  k = rope(linear(h, wk), kv_heads)
  v = linear(h, wv)
  x = x + linear(attention(q, k, v, heads, kv_heads), wo)
  h = swiglu(rmsnorm(x, rms_ffn), w1, w2, w3)
  return x + h
}

x = embed(tok_emb, tokens)
repeat layers {
  x = block(x)
}
output logits = linear(rmsnorm(x, rms_final), tok_emb)
loss cross_entropy(logits, targets)
EOF
ffn_line=$(grep -n 'h = swiglu' wide.anet | cut -d: -f1)

cat >ffn.anet <<'EOF'
// An FFN 17,000 wide: its training step saves 17,000-row values.
model ffn {
  dim = 16
  hidden = 17000
  vocab = 256
  seq = 8
}
input tokens: i32[seq]
input targets: i32[seq]
param emb: [vocab, dim] = normal(0.02)
param w1: [hidden, dim] = normal(0.02)
param w2: [dim, hidden] = normal(0.02)
param w3: [hidden, dim] = normal(0.02)
x = embed(emb, tokens)
output logits = linear(x + swiglu(x, w1, w2, w3), emb)
loss cross_entropy(logits, targets)
EOF

# rejected WHAT FILE NOTE-LINE: the error names a kernel and ANE-B05, with a
# note at FILE:NOTE-LINE:COL and the last note naming --no-check.
rejected() {
  local kernel="^anec: error: kernel k[0-9]+[a-z0-9_]*: \[ANE-B05\] '[a-z0-9_]+' has [0-9,]+ "
  grep -Eq "${kernel}channels" err ||
    fail "$1: no error naming the kernel and [ANE-B05]: $(cat err)"
  grep -Eq "^$2:$3:[0-9]+: note: '[a-z0-9_]+' (holds|goes into|comes from) " err ||
    fail "$1: no note located at $2:$3: $(cat err)"
  grep -Eq "^anec: note: [0-9]+ kernels? of '[a-z]+' fails? the catalog of target m1; --no-check" \
    err ||
    fail "$1: no note naming --no-check: $(cat err)"
}
# run WHAT CMD...: exit 1 expected; stdout in out, stderr in err.
run1() {
  local what=$1 rc=0
  shift
  "$@" >out 2>err || rc=$?
  [ "$rc" -eq 1 ] || fail "$what: exit $rc, want 1: $(cat err)"
}
nothing_at() {
  local p
  for p in "$@"; do
    [ ! -e "$p" ] || fail "$p exists after a rejected kernel"
  done
  [ -z "$(ls -d ./*.tmp.* ./*.old.* 2>/dev/null)" ] ||
    fail "temporaries left: $(ls -d ./*.tmp.* ./*.old.*)"
}

# anec compile -o DIR: the forward kernel
run1 "compile -o DIR" "$anec" compile wide.anet --target m1 -o art
rejected "compile -o DIR" wide.anet "$ffn_line"
nothing_at art
# -o -: nothing on stdout
run1 "compile -o -" "$anec" compile wide.anet --target m1 -o -
rejected "compile -o -" wide.anet "$ffn_line"
[ ! -s out ] || fail "compile -o -: printed MIL of a rejected plan"
# --no-check writes it; mil-check then finds the error the check reported
"$anec" compile wide.anet --target m1 -o art --no-check 2>err ||
  fail "compile --no-check: $(cat err)"
[ -f art/manifest.json ] || fail "compile --no-check: no artifact directory"
[ ! -s err ] || fail "compile --no-check: stderr: $(cat err)"
checked=0
for mil in art/kernels/*/model.mil; do
  "$anec" mil-check --target m1 "$mil" >/dev/null 2>&1 || checked=1
done
[ "$checked" = 1 ] || fail "mil-check accepts every kernel that the check rejected"
# an earlier artifact directory is left as it was (--seed 7: other weights)
cp -R art before
run1 "compile over DIR" "$anec" compile wide.anet --target m1 -o art --seed 7
rejected "compile over DIR" wide.anet "$ffn_line"
diff -r art before >/dev/null || fail "a rejected compile changed the earlier DIR"
rm -rf art before

# anec compile --train: the training step's kernels
run1 "compile --train" "$anec" compile ffn.anet --train --target m1 -o art
rejected "compile --train" ffn.anet 15
grep -q "^ffn.anet:15:28: note: 'out00' holds %[0-9]* (mul, f32\[8, 17000\]) from this" err ||
  fail "compile --train: no note at the swiglu: $(cat err)"
nothing_at art
"$anec" compile ffn.anet --train --target m1 -o art --no-check 2>err ||
  fail "compile --train --no-check: $(cat err)"
rm -rf art

# anec build and anec train (build_trainer: the same artifact_write)
run1 "build" "$anec" build ffn.anet --target m1 -o trainer
rejected "build" ffn.anet 15
nothing_at trainer trainer.d
run1 "build (forward too)" "$anec" build wide.anet --target m1 -o trainer
rejected "build (forward too)" wide.anet "$ffn_line"
nothing_at trainer trainer.d
run1 "train" "$anec" train ffn.anet --target m1 --steps 1
rejected "train" ffn.anet 15
[ -z "$(find cache -name trainer 2>/dev/null)" ] || fail "train: a trainer was cached"

# anec generate (the runner: the same artifact_write): a llama2.c checkpoint
# of wide's shapes, all zeros
le32() { # an int32, little-endian
  local i
  for i in 0 8 16 24; do printf "\\x$(printf %02x $(($1 >> i & 255)))"; done
}
{ for v in 16 70000 1 2 2 32 16; do le32 "$v"; done; } >ckpt.bin
# tok_emb, rms_att, wq wk wv wo, rms_ffn, w1 w2 w3, rms_final, freq_cis_real/imag
truncate -s $((28 + 4 * (32 * 16 + 16 + 4 * 16 * 16 + 16 + 3 * 70000 * 16 + 16 + 2 * 16 * 4))) \
  ckpt.bin
run1 "generate" "$anec" generate wide.anet --target m1 --weights ckpt.bin --max-tokens 2 \
  --print-ids
rejected "generate" wide.anet "$ffn_line"
[ ! -s out ] || fail "generate: printed ids: $(cat out)"
"$anec" generate wide.anet --target m1 --weights ckpt.bin --max-tokens 2 --print-ids --no-check \
  >out 2>err || fail "generate --no-check: $(cat err)"
grep -Eq '^[0-9]+ [0-9]+$' out || fail "generate --no-check: no ids: $(cat out)"

echo "kernel_check: compile, compile --train, build, train and generate stop on ANE-B05;" \
  "--no-check goes on"
