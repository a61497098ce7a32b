#!/usr/bin/env bash
# build_paths.sh ANEC SRC — anec build and anec train take any path: quotes,
# spaces, $, $( ) and backquotes in -o, in TMPDIR, in XDG_CACHE_HOME and in
# HOME are file names, never shell syntax (anec build used to run the C
# compiler through system() with the paths pasted in: -o "x'; touch PWNED;
# echo '" ran touch). -o naming an existing directory is an error, and
# leaves nothing behind (it used to exit 0 with the trainer at DIR/NAME.tmp).
set -euo pipefail
anec=$1 src=$2
model=$src/samples/tiny_shakespeare.anet data=$src/samples/data/tinyshakespeare.txt
t=$(mktemp -d "${TMPDIR:-/tmp}/anec-build-paths.XXXXXX")
trap 'rm -rf "$t"' EXIT
fail() { printf 'build_paths: %s\n' "$*" >&2; exit 1; }
# Commands a shell would run from a path with these names leave PWNED* files.
pwned() {
  local f
  f=$(find "$t" -name 'PWNED*' | head -1)
  [ -z "$f" ] || fail "$1: a shell ran a command from a path (it made $f)"
}
evil="e v'; touch PWNED; echo '\" \$HOME \$(touch PWNED2) \`touch PWNED3\` \\ ; &"
mkdir -p "$t/w" "$t/$evil/tmp"
cd "$t/w" # where the injected commands would run

# The example of the report: a trainer at that literal path, or a clean error.
rc=0
"$anec" build "$model" -o "x'; touch PWNED; echo '" >"$t/out" 2>&1 || rc=$?
pwned "-o \"x'; touch PWNED; echo '\""
case $rc in
  0) [ -x "x'; touch PWNED; echo '" ] || fail "-o with a quote: exit 0 but no trainer at that path"
     "./x'; touch PWNED; echo '" --help >/dev/null || fail "the trainer at a path with a quote" ;;
  1) grep -q 'error:' "$t/out" || fail "-o with a quote: exit 1 without an error message" ;;
  *) fail "-o with a quote: exit $rc: $(cat "$t/out")" ;;
esac

# -o in a directory with every such character, built through an odd TMPDIR;
# the trainer runs a step
exe="$t/$evil/tr $evil"
TMPDIR="$t/$evil/tmp" "$anec" build "$model" -o "$exe" >"$t/out" 2>&1 ||
  fail "anec build -o '$exe': $(cat "$t/out")"
pwned "anec build -o with quotes, spaces and \$"
[ -x "$exe" ] && [ -s "$exe.d/step.c" ] || fail "no trainer or step.c at '$exe'"
"$exe" --data "$data" --steps 1 --batch 1 -q >"$t/out" 2>&1 || fail "running '$exe': $(cat "$t/out")"
[ -z "$(ls -A "$t/$evil/tmp")" ] || fail "anec build left files in TMPDIR: $(ls -A "$t/$evil/tmp")"

# a path that starts with '-' is not an option of the C compiler
"$anec" build "$model" -o -tr >"$t/out" 2>&1 || fail "anec build -o -tr: $(cat "$t/out")"
[ -x ./-tr ] || fail "no trainer ./-tr"

# -o DIR, an existing directory: an error, DIR as it was, no stray files
mkdir dir
for o in dir dir/; do
  rc=0
  "$anec" build "$model" -o "$o" >"$t/out" 2>&1 || rc=$?
  [ "$rc" -eq 1 ] || fail "anec build -o $o (a directory): exit $rc, want 1: $(cat "$t/out")"
  grep -q "error: 'dir/\?' is a directory" "$t/out" || fail "-o $o: $(cat "$t/out")"
  [ -z "$(ls -A dir)" ] || fail "-o $o left files in the directory: $(ls -A dir)"
done
left=$(find "$t/w" -name '*.tmp*')
[ -z "$left" ] || fail "temporary files left: $left"

# anec train: its cache under an odd XDG_CACHE_HOME, or HOME, and TMPDIR
train() { # ENV... -- the environment of one anec train run
  env "$@" "$anec" train "$model" --data "$data" --steps 1 --batch 1 -q >"$t/out" 2>&1 ||
    fail "anec train with $*: $(cat "$t/out")"
  grep -q "building the trainer" "$t/out" || fail "anec train with $* did not build: $(cat "$t/out")"
}
train XDG_CACHE_HOME="$t/$evil/cache" TMPDIR="$t/$evil/tmp"
ls "$t/$evil/cache/anec/"*/trainer >/dev/null 2>&1 || fail "no trainer in the cache under XDG_CACHE_HOME"
train -u XDG_CACHE_HOME HOME="$t/$evil/home" TMPDIR="$t/$evil/tmp"
ls "$t/$evil/home/.cache/anec/"*/trainer >/dev/null 2>&1 || fail "no trainer in the cache under HOME"
pwned "anec train with quotes, spaces and \$ in XDG_CACHE_HOME, HOME, TMPDIR"
echo "ok"
