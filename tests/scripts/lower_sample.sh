#!/usr/bin/env bash
# lower_sample.sh ANEC MODEL TARGET [--twice|--once] [COMPILE-OPTION] — `anec
# compile` of MODEL for TARGET writes an artifact directory whose every
# kernel `anec mil-check` accepts for that target; with --twice, a second
# compile gives identical bytes (determinism). COMPILE-OPTION, e.g.
# --weights=inputs, goes to both compiles.
set -euo pipefail
anec=$1 model=$2 target=$3 twice=${4:-} extra=${5:---weights=baked}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$anec" compile "$model" --target="$target" "$extra" -o "$work/a"
test -f "$work/a/manifest.json"
n=0
for mil in "$work"/a/kernels/*/model.mil; do
  "$anec" mil-check --target="$target" "$mil" > "$work/check.txt" 2>&1 || {
    cat "$work/check.txt"; echo "FAIL: $mil is not legal for $target"; exit 1; }
  n=$((n + 1))
done
echo "$n kernels, all accepted by mil-check for $target"
if [ "$twice" = --twice ]; then
  "$anec" compile "$model" --target="$target" "$extra" -o "$work/b"
  diff -r "$work/a" "$work/b" > /dev/null || { echo "FAIL: two compiles differ"; exit 1; }
  echo "deterministic: two compiles are byte-identical"
fi
