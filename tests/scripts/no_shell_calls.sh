#!/usr/bin/env bash
# no_shell_calls.sh SRC — the product (compiler/, runtime/, dsl/, passes/)
# runs no command line through a shell: no call of system() or popen()
# (anec build used to paste paths into one: a quote in -o ran a command).
# Tools run through posix_spawn with an argv array. A mention in a //
# comment is fine; a call is a failure.
set -euo pipefail
src=$1
fail() { printf 'no_shell_calls: %s\n' "$*" >&2; exit 1; }
cd "$src"
for d in compiler runtime dsl passes; do [ -d "$d" ] || fail "no folder $src/$d"; done

# system( / popen( as a whole word, also as `system (`, in C sources and the
# grammar files; then the part of each line before a // comment.
hits=$(grep -rnE --include='*.[chyl]' '(^|[^A-Za-z0-9_])(system|popen)[[:space:]]*\(' \
         compiler runtime dsl passes |
       awk '{ line = $0; sub(/^[^:]*:[^:]*:/, "", line); sub(/\/\/.*/, "", line)
              if (line ~ /(^|[^A-Za-z0-9_])(system|popen)[[:space:]]*\(/) print }' || true)
[ -z "$hits" ] || fail "calls that run a shell:
$hits"
# the check itself finds a call
probe=$(printf 'int f(void) { return system ("x"); } // popen(\n' |
        grep -E '(^|[^A-Za-z0-9_])(system|popen)[[:space:]]*\(' || true)
[ -n "$probe" ] || fail "the pattern does not match a call"
echo "ok"
