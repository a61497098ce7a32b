#!/usr/bin/env bash
# train_cache.sh ANEC SRC — anec train's cache of trainers: an entry is used
# only when the trainer matches its stamp (size and FNV-1a 64 hash, written
# after it), so a cached trainer truncated or damaged is rebuilt, not run
# (it used to be trusted when executable: every later run crashed); and
# runs of one model started together on an empty cache all succeed (one
# builds, into a temp file of its own renamed into place; the others wait
# for it or run the complete trainer).
set -euo pipefail
anec=$1 src=$2
model=$src/samples/tiny_shakespeare.anet data=$src/samples/data/tinyshakespeare.txt
t=$(mktemp -d "${TMPDIR:-/tmp}/anec-train-cache.XXXXXX")
trap 'rm -rf "$t"' EXIT
fail() { printf 'train_cache: %s\n' "$*" >&2; exit 1; }
export XDG_CACHE_HOME=$t/cache
run() { # NAME: one anec train run, its output in $t/NAME.out
  "$anec" train "$model" --data "$data" --steps 1 --batch 1 >"$t/$1.out" 2>&1
}
trained() { grep -q "step *1" "$t/$1.out" || fail "$1: no training step: $(cat "$t/$1.out")"; }

# 4 runs at once on an empty cache
pids=()
for i in 1 2 3 4; do run "c$i" & pids+=($!); done
for i in 1 2 3 4; do
  wait "${pids[$((i - 1))]}" || fail "concurrent run $i: exit $?: $(cat "$t/c$i.out")"
  trained "c$i"
done
entries=("$t/cache/anec/"*)
[ "${#entries[@]}" -eq 1 ] || fail "${#entries[@]} cache entries, want 1"
e=${entries[0]}
[ -x "$e/trainer" ] && [ -s "$e/trainer.stamp" ] || fail "no trainer and stamp in $e"
left=$(ls -A "$e" | grep -v -x -e trainer -e trainer.stamp -e trainer.d -e lock || true)
[ -z "$left" ] || fail "left in the cache entry: $left"
run cached && trained cached
! grep -q "building the trainer" "$t/cached.out" || fail "a valid cached trainer was rebuilt"

# damaged: truncated, then bytes changed in the middle (same size), then gone
# executable bit aside, a stamp that is missing
size=$(wc -c <"$e/trainer")
damage() {
  case $1 in
    truncated) truncate -s $((size / 2)) "$e/trainer" 2>/dev/null ||
                 { head -c $((size / 2)) "$e/trainer" >"$t/half" && cat "$t/half" >"$e/trainer"; } ;;
    corrupted) printf '\377\377\377\377\377\377\377\377' |
                 dd of="$e/trainer" bs=1 seek=$((size / 2)) conv=notrunc status=none ;;
    empty) : >"$e/trainer" ;;
    unstamped) rm -f "$e/trainer.stamp" ;;
  esac
}
for how in truncated corrupted empty unstamped; do
  damage "$how"
  run "$how" || fail "after the cached trainer was $how: exit $?: $(cat "$t/$how.out")"
  grep -q "building the trainer" "$t/$how.out" || fail "a $how cached trainer was not rebuilt"
  trained "$how"
  run "$how-again" && trained "$how-again"
  ! grep -q "building the trainer" "$t/$how-again.out" || fail "rebuilt twice after $how"
done
echo "ok"
