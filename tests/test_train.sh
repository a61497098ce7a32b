#!/bin/bash
# test_train.sh — anec build and anec train end to end on the tiny
# Shakespeare sample (2 layers, seq 64 here): the generated sources compile
# warning-free with -Wall -Wextra, fp16 training with dynamic loss scaling
# lowers the loss by at least 1.0 nat in 40 steps, a run of 10 steps and a
# run of 5 + --resume 5 end in byte-identical checkpoints (the log marking
# the resume), a checkpoint resumes with a warning in a trainer of another
# plan (--dw=cpu, --target m1), weights staged into the kernels follow the
# updates, and anec train builds once into its cache and then reuses it.
# Usage: test_train.sh ANEC SOURCE_DIR
set -u
anec=$1 src=$2
t=$(mktemp -d "${TMPDIR:-/tmp}/anec-test-train.XXXXXX")
trap 'rm -rf "$t"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
model=$src/samples/tiny_shakespeare.anet data=$src/samples/data/tinyshakespeare.txt
small=(-D layers=2 -D seq=64)

"$anec" build "$model" "${small[@]}" -o "$t/tr" 2>"$t/build.err" || { cat "$t/build.err"; fail "anec build"; }
grep -q "warning" "$t/build.err" && { cat "$t/build.err"; fail "the generated sources have warnings"; }
[ -s "$t/tr.d/step.c" ] && [ -x "$t/tr" ] || fail "no step.c or trainer"

# fp16 training: the loss falls
"$t/tr" --data "$data" --steps 40 --batch 4 --lr 3e-3 --warmup 5 -q --log-json "$t/log.json" \
  >"$t/run.out" 2>&1 || { cat "$t/run.out"; fail "training run"; }
first=$(grep '"loss"' "$t/log.json" | head -1 | sed 's/.*"loss": *\([-0-9.e+]*\).*/\1/')
last=$(grep '"loss"' "$t/log.json" | tail -5 | sed 's/.*"loss": *\([-0-9.e+]*\).*/\1/' |
       awk '{s += $1} END {print s / NR}')
awk -v a="$first" -v b="$last" 'BEGIN {exit !(b < a - 1.0)}' ||
  fail "loss did not fall by 1.0: first $first, mean of the last five $last"
echo "loss: first $first, mean of the last five $last"

# resume: 10 steps = 5 steps + resume 5, bit for bit
common=(--data "$data" --steps 10 --batch 2 --lr 1e-3 -q)
"$t/tr" "${common[@]}" --ckpt-dir "$t/a" >/dev/null || fail "run a"
"$t/tr" "${common[@]}" --ckpt-dir "$t/b" --save-every 5 --log-json "$t/b.json" >/dev/null ||
  fail "run b"
rm -f "$t/b/step-00000010.ckpt"
"$t/tr" "${common[@]}" --ckpt-dir "$t/b" --resume latest --log-json "$t/b.json" >/dev/null ||
  fail "run b resumed"
cmp "$t/a/step-00000010.ckpt" "$t/b/step-00000010.ckpt" || fail "resumed run differs"
grep -qx "{\"resume\": 5, \"from\": \"$t/b/step-00000005.ckpt\"}" "$t/b.json" ||
  fail "no resume record in the log: $(cat "$t/b.json")"

# another plan (the dW on the CPU, another ANE generation) resumes the same
# tensors: a warning, not a refusal
"$t/tr" --data "$data" --steps 2 --batch 2 -q --ckpt-dir "$t/p" >/dev/null || fail "run p"
plan=(--data "$data" --steps 3 --batch 2 -q --resume "$t/p/step-00000002.ckpt")
for other in --dw=cpu "--target m1"; do
  d=$t/plan${other//[^a-z0-9]/}
  # shellcheck disable=SC2086 # $other: one flag or a flag and its value
  "$anec" build "$model" "${small[@]}" $other -o "$d" >"$d.out" 2>&1 ||
    { cat "$d.out"; fail "anec build $other"; }
  "$d" "${plan[@]}" --ckpt-dir "$d.ck" >"$d.out" 2>&1 || { cat "$d.out"; fail "resume $other"; }
  grep -q "warning: resuming a checkpoint written by a different plan" "$d.out" ||
    { cat "$d.out"; fail "resume $other: no warning"; }
  [ -s "$d.ck/step-00000003.ckpt" ] || fail "resume $other: no step 3"
done

# staged weights follow the updates: the validation after 3 steps (kernels
# keep their weights staged between updates) equals that of a fresh trainer
# started from the exported weights
val() { sed -n 's/.*val loss \([0-9.]*\).*/\1/p' "$1"; }
"$t/tr" --data "$data" --val-data "$data" --steps 3 --lr 3e-3 --export "$t/w3.bin" -q \
  >"$t/v3.out" 2>&1 || { cat "$t/v3.out"; fail "3 steps with validation"; }
"$t/tr" --data "$data" --val-data "$data" --steps 0 --init "$t/w3.bin" -q >"$t/v0.out" 2>&1 ||
  { cat "$t/v0.out"; fail "validation of the exported weights"; }
[ -n "$(val "$t/v3.out")" ] && [ "$(val "$t/v3.out")" = "$(val "$t/v0.out")" ] ||
  fail "val loss after 3 steps $(val "$t/v3.out"), of its exported weights $(val "$t/v0.out")"

# anec train: built into the cache once, then reused
export XDG_CACHE_HOME=$t/cache
"$anec" train "$model" "${small[@]}" --data "$data" --steps 2 -q >"$t/t1.out" 2>&1 ||
  { cat "$t/t1.out"; fail "anec train"; }
grep -q "building the trainer" "$t/t1.out" || fail "anec train did not build"
"$anec" train "$model" "${small[@]}" --data "$data" --steps 2 -q >"$t/t2.out" 2>&1 ||
  { cat "$t/t2.out"; fail "anec train (cached)"; }
grep -q "building the trainer" "$t/t2.out" && fail "anec train rebuilt a cached trainer"
# another anec build (here: the same with a byte appended) does not reuse it (Linux: the key
# covers /proc/self/exe)
if [ -r /proc/self/exe ]; then
  cp "$anec" "$t/anec2" && printf 'x' >>"$t/anec2"
  "$t/anec2" train "$model" "${small[@]}" --data "$data" --steps 1 -q >"$t/t3.out" 2>&1 ||
    { cat "$t/t3.out"; fail "anec train by another anec"; }
  grep -q "building the trainer" "$t/t3.out" || fail "another anec reused the cached trainer"
fi
echo "ok"
