#!/usr/bin/env bash
# artifact_replace.sh ANEC SRC [ROUNDS] — anec compile -o DIR over an
# existing artifact directory is atomic: runs killed (kill -9) at random
# moments leave DIR the complete old artifact or the complete new one, never
# a mix or nothing (the old one used to be deleted before the new one was
# renamed in), and the next run that finishes leaves no temporaries of ours
# (DIR.tmp.*, DIR.old.*) behind, those of killed runs included.
set -euo pipefail
anec=$1 src=$2 rounds=${3:-50}
model=$src/samples/stories260k.anet
t=$(mktemp -d "${TMPDIR:-/tmp}/anec-artifact-replace.XXXXXX")
trap 'rm -rf "$t"' EXIT
fail() { printf 'artifact_replace: %s\n' "$*" >&2; exit 1; }
cd "$t"

# The two artifacts the runs alternate between (seeds 1 and 2: other weights).
"$anec" compile "$model" --seed 1 -o ref1 || fail "compile ref1"
"$anec" compile "$model" --seed 2 -o ref2 || fail "compile ref2"
cmp -s ref1/kernels/*/weights/weight.bin ref2/kernels/*/weights/weight.bin 2>/dev/null &&
  fail "seeds 1 and 2 give the same weights: the check could not tell old from new"
# complete DIR: manifest.json whole, each file it lists there, and all of
# DIR equal to one of the two artifacts
complete() {
  [ -f "$1/manifest.json" ] || return 1
  [ "$(tail -c 2 "$1/manifest.json" | tr -d '\n')" = "}" ] || return 1
  local f
  for f in $(grep -o '"kernels/[^"]*"' "$1/manifest.json" | tr -d '"'); do
    [ -f "$1/$f" ] || return 1
  done
  diff -rq "$1" ref1 >/dev/null 2>&1 || diff -rq "$1" ref2 >/dev/null 2>&1
}
temps() { ls -d DIR.tmp.* DIR.old.* 2>/dev/null || true; }

# how long a run takes (ms): the kills land anywhere from its start to past its end
start=${EPOCHREALTIME/[.,]/}
"$anec" compile "$model" --seed 1 -o DIR || fail "the first compile"
ms=$(( (${EPOCHREALTIME/[.,]/} - start) / 1000 + 5 ))
killed=0
for ((i = 1; i <= rounds; i++)); do
  "$anec" compile "$model" --seed $((i % 2 + 1)) -o DIR >/dev/null 2>&1 &
  pid=$!
  delay=$((RANDOM % (ms + ms / 4 + 1)))
  sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
  kill -9 "$pid" 2>/dev/null || true
  rc=0
  wait "$pid" 2>/dev/null || rc=$?
  [ "$rc" -ne 137 ] || killed=$((killed + 1)) # 128 + SIGKILL
  complete DIR || fail "after kill $i (${delay} ms into a run of ~${ms} ms) DIR is not a complete artifact: $(find DIR 2>&1 | tr '\n' ' ')"
done
echo "$killed of $rounds runs killed before they ended (runs take ~${ms} ms)"
"$anec" compile "$model" --seed 1 -o DIR || fail "the compile after the kills"
complete DIR && diff -rq DIR ref1 >/dev/null || fail "the last compile did not write its artifact"
[ -z "$(temps)" ] || fail "temporaries left after a run that finished: $(temps)"
echo "ok"
