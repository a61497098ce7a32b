#!/usr/bin/env bash
# define_repeat.sh ANEC SRC — a -D given twice: the last one wins, with a
# warning naming both (it used to fail: "model has no hyper-parameter 'dim'"),
# for every subcommand that takes -D (they share the option).
set -euo pipefail
anec=$1 src=$2
model=$src/samples/stories260k.anet
t=$(mktemp -d "${TMPDIR:-/tmp}/anec-define-repeat.XXXXXX")
trap 'rm -rf "$t"' EXIT
fail() { printf 'define_repeat: %s\n' "$*" >&2; exit 1; }
summary() { "$anec" check "$model" "$@" 2>"$t/err"; }

want32=$(summary -D dim=32) || fail "-D dim=32: $(cat "$t/err")"
want64=$(summary -D dim=64) || fail "-D dim=64: $(cat "$t/err")"
[ "$want32" != "$want64" ] || fail "dim=32 and dim=64 give the same model: $want32"

got=$(summary -D dim=64 -D dim=32) || fail "-D dim=64 -D dim=32: exit $?: $(cat "$t/err")"
[ "$got" = "$want32" ] || fail "-D dim=64 -D dim=32 gave '$got', want '$want32' (the last one)"
grep -q "warning: '-D dim=32' overrides the earlier '-D dim=64' (the last one wins)" "$t/err" ||
  fail "no warning naming both: $(cat "$t/err")"
! grep -q "error" "$t/err" || fail "errors: $(cat "$t/err")"

# the other order, with another -D in between, and a third time
got=$(summary -D dim=32 -D layers=1 -D dim=64) || fail "-D dim=32 -D layers=1 -D dim=64: $(cat "$t/err")"
[ "$got" = "$(summary -D layers=1 -D dim=64)" ] || fail "-D dim=32 -D layers=1 -D dim=64 gave '$got'"
got=$(summary -D dim=16 -D dim=64 -D dim=32) || fail "three -D dim: $(cat "$t/err")"
[ "$got" = "$want32" ] || fail "-D dim=16 -D dim=64 -D dim=32 gave '$got', want '$want32'"
[ "$(grep -c "warning: '-D dim=" "$t/err")" -eq 2 ] || fail "three -D dim: $(cat "$t/err")"

# the same value twice: a warning too, the same model
got=$(summary -D dim=32 -D dim=32) && [ "$got" = "$want32" ] || fail "-D dim=32 twice: $(cat "$t/err")"
# a name the model lacks, repeated: still its one error, not two
rc=0
summary -D nope=1 -D nope=2 >/dev/null || rc=$?
[ "$rc" -eq 1 ] && [ "$(grep -c "has no hyper-parameter 'nope'" "$t/err")" -eq 1 ] ||
  fail "-D nope twice: exit $rc: $(cat "$t/err")"
# compile takes -D through the same option
"$anec" compile "$model" --emit=ir -D dim=64 -D dim=32 >"$t/ir32" 2>"$t/err" ||
  fail "compile with -D dim twice: $(cat "$t/err")"
"$anec" compile "$model" --emit=ir -D dim=32 >"$t/ir" 2>/dev/null && cmp -s "$t/ir" "$t/ir32" ||
  fail "compile -D dim=64 -D dim=32 differs from -D dim=32"
echo "ok"
