#!/usr/bin/env bash
# check_layers.sh SRC — tools/check-layers passes on the tree, and fails,
# naming the file, the line and the layers, on copies of the tree with a
# deliberately wrong include: runtime -> compiler, target -> ir, passes ->
# codegen, ir -> driver, and another area's private exec-impl.h.
set -euo pipefail
src=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$src/tools/check-layers" "$src" >/dev/null

# check_bad FILE INCLUDE WANT: FILE with INCLUDE added after its first line
# must fail with WANT in the report.
check_bad() {
  local file=$1 inc=$2 want=$3 out rc=0
  rm -rf "$tmp/t" && mkdir "$tmp/t"
  (cd "$src" && cp -r --parents runtime compiler dsl passes tools "$tmp/t/")
  sed -i "1a #include \"$inc\"" "$tmp/t/$file"
  out=$("$tmp/t/tools/check-layers" "$tmp/t" 2>&1) || rc=$?
  if [ "$rc" -ne 1 ] || ! grep -qF -- "$want" <<<"$out"; then
    printf 'check-layers accepted %s including "%s" (rc %d):\n%s\n' "$file" "$inc" "$rc" "$out" >&2
    exit 1
  fi
}
check_bad runtime/base/arena.c ir.h 'runtime/base/arena.c:2: error: rt_base may not include "ir.h" (ir is above it)'
check_bad compiler/target/catalog.c ir.h 'compiler/target/catalog.c:2: error: target may not include "ir.h"'
check_bad passes/place.c codegen.h 'passes/place.c:2: error: passes may not include "codegen.h"'
check_bad compiler/ir/graph.c driver.h 'compiler/ir/graph.c:2: error: ir may not include "driver.h"'
check_bad runtime/train/stage.c exec-impl.h 'runtime/train/stage.c:2: error: "exec-impl.h" is private to rt_exec'
check_bad runtime/mil/mil_read.c train.h 'rt_mil may not include "train.h" (rt_train is above it)'
echo "check_layers: the tree passes; 6 wrong includes caught"
