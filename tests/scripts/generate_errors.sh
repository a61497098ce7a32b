#!/usr/bin/env bash
# generate_errors.sh ANEC SRC — anec generate says what it cannot do: a
# checkpoint whose weights overflow fp16 (one weight -1.85e37, finite in fp32)
# gives NaN logits, refused with exit 1 and no ids (it used to print "0 0 0");
# a non-finite weight is refused when the checkpoint is read; a context that
# fills up before --max-tokens says so; --ane-quirks takes on or off.
set -euo pipefail
anec=$1 src=$2
model=$src/samples/stories260k.anet ckpt=$src/tests/data/llama2c/stories260K_plctlab.bin
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { printf 'generate_errors: %s\n' "$*" >&2; exit 1; }

# patch FILE OFFSET HEXBYTES: writes the bytes at OFFSET.
patch() { printf "$(sed 's/../\\x&/g' <<<"$3")" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }
wq3=$((28 + 4 * (512 * 64 + 5 * 64 + 3))) # wq[0][0][3]

cp "$ckpt" "$tmp/big.bin"
patch "$tmp/big.bin" "$wq3" 87af5efd # -1.85e37
rc=0
"$anec" generate "$model" --weights "$tmp/big.bin" --ids 1 --max-tokens 4 --print-ids \
  >"$tmp/out" 2>"$tmp/err" || rc=$?
[ "$rc" -eq 1 ] || fail "overflowing weights: exit $rc, want 1"
grep -q 'error: the logits after token 1 are not finite (NaN or inf)' "$tmp/err" ||
  fail "overflowing weights: no error: $(cat "$tmp/err")"
! grep -q '[0-9]' "$tmp/out" || fail "overflowing weights: ids printed: $(cat "$tmp/out")"

cp "$ckpt" "$tmp/nan.bin"
patch "$tmp/nan.bin" "$wq3" 0000c07f # NaN
rc=0
"$anec" generate "$model" --weights "$tmp/nan.bin" --ids 1 --max-tokens 4 >/dev/null \
  2>"$tmp/err" || rc=$?
[ "$rc" -eq 1 ] || fail "NaN weight: exit $rc, want 1"
grep -q "error: tensor 'wq' holds nan at index 3: weights must be finite" "$tmp/err" ||
  fail "NaN weight: $(cat "$tmp/err")"

"$anec" generate "$model" -D seq=8 --weights "$ckpt" --ids "1 2 3" --max-tokens 16 \
  --print-ids >"$tmp/out" 2>"$tmp/err" || fail "full context: exit $?"
grep -q "warning: stopped after 5 of 16 tokens: the model's context of 8 tokens is full" \
  "$tmp/err" || fail "full context: $(cat "$tmp/err")"
# --ane-quirks: on is the fp16 default (the same ids); off runs; on with fp32
# and any other value are usage errors.
ids() { "$anec" generate "$model" --weights "$ckpt" --ids 1 --max-tokens 8 --print-ids "$@"; }
[ "$(ids)" = "$(ids --ane-quirks=on)" ] || fail "--ane-quirks=on differs from the default"
ids --ane-quirks=off >/dev/null || fail "--ane-quirks=off: exit $?"
for bad in "--ane-quirks=on --precision fp32" "--ane-quirks=maybe"; do
  rc=0
  # shellcheck disable=SC2086 # two words
  ids $bad >/dev/null 2>"$tmp/err" || rc=$?
  [ "$rc" -eq 2 ] || fail "$bad: exit $rc, want 2"
  grep -q 'error: --ane-quirks' "$tmp/err" || fail "$bad: $(cat "$tmp/err")"
done
echo "generate_errors: overflow, NaN weight, full context and --ane-quirks checked"
